//! `kelpie-avsync`: the audio benchmark's source (tests/bench/audio.mjs), an X client and a
//! PulseAudio player in one loop, so that a picture change and a sound leave the desktop
//! at the same instant.
//!
//! Usage: `kelpie-avsync [--period-ms N] [--burst-ms N] [--freq HZ] [--latency-ms N]` with
//! `DISPLAY` and `PULSE_SERVER` set (a Kelpie session has both).
//!
//! It maps one full-screen grey window with a `SQUARE`×`SQUARE` square at (`SQ_X`, `SQ_Y`)
//! and plays a continuous mono 48 kHz stream into the default sink through `pacat`
//! (`--latency-msec`, default 10): silence, written in `CHUNK_MS` chunks paced by the
//! clock, so that no more than pacat's own small buffer ever lies between us and
//! PulseAudio. Every `--period-ms` (default 500) it flips the square black↔white (drawn and
//! round-tripped to the X server) and, in the same tick, writes a chunk that starts a
//! `--burst-ms` (default 20) sine burst of `--freq` Hz (default 1000) at full onset (a click
//! an onset detector can time to the sample).
//!
//! Stdout, one JSON object per line:
//! * `{"ev":"ready","layout":{"sq_x","sq_y","sq_size"},"period_ms","burst_ms","freq","latency_ms"}`;
//! * `{"ev":"flip","n","white","video_ms","audio_ms"}` per flip: `video_ms` the wall clock
//!   (ms since the Unix epoch, fractional) once the X server has the new square,
//!   `audio_ms` just before the burst's first chunk is handed to pacat.

use std::io::Write;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use x11rb::connection::Connection;
use x11rb::errors::ReplyOrIdError;
use x11rb::protocol::xproto::{
    ChangeGCAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, Gcontext, Rectangle, Window, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

const USAGE: &str = "usage: kelpie-avsync [--period-ms N] [--burst-ms N] [--freq HZ] [--latency-ms N]";

const RATE: u32 = 48_000;
/// Audio is written in chunks of this many ms, each when the clock reaches its start: the
/// same size as the server's Opus frames, and small enough that a burst starts on time.
const CHUNK_MS: u64 = 10;
const CHUNK_SAMPLES: usize = (RATE as u64 * CHUNK_MS / 1000) as usize;
/// Burst amplitude (of full scale): loud enough to stand far above Opus's noise floor,
/// below clipping after the sink's resampling.
const AMPLITUDE: f64 = 0.5;
/// The square: large enough to survive any encoder quality and page scaling.
const SQUARE: i32 = 160;
const SQ_X: i32 = 32;
const SQ_Y: i32 = 32;

struct Args {
    period_ms: u64,
    burst_ms: u64,
    freq: f64,
    latency_ms: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { period_ms: 500, burst_ms: 20, freq: 1000.0, latency_ms: 10 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut number = |name: &str| -> Result<f64, String> {
            it.next().and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a number\n{USAGE}"))
        };
        match arg.as_str() {
            "--period-ms" => args.period_ms = number("--period-ms")? as u64,
            "--burst-ms" => args.burst_ms = number("--burst-ms")? as u64,
            "--freq" => args.freq = number("--freq")?,
            "--latency-ms" => args.latency_ms = number("--latency-ms")? as u64,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    if args.period_ms < 4 * CHUNK_MS || args.burst_ms == 0 || args.burst_ms >= args.period_ms {
        return Err(format!("need 0 < --burst-ms < --period-ms and --period-ms >= {}", 4 * CHUNK_MS));
    }
    if !(args.freq > 0.0 && args.freq < f64::from(RATE) / 2.0) {
        return Err("--freq must be in (0, 24000)".into());
    }
    Ok(args)
}

/// Writes one JSON line and flushes it; a closed stdout means the benchmark is gone.
fn emit(v: Value) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{v}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Wall clock in ms since the Unix epoch, to the microsecond.
fn wall_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64() * 1000.0).unwrap_or(0.0)
}

/// The samples of chunk `k` of a burst that started at chunk `start` (silence outside it).
fn chunk(k: u64, burst_start: Option<u64>, args: &Args) -> Vec<u8> {
    let mut out = Vec::with_capacity(CHUNK_SAMPLES * 2);
    let burst_samples = (args.burst_ms * u64::from(RATE) / 1000) as usize;
    for i in 0..CHUNK_SAMPLES {
        let v = match burst_start {
            Some(s) if k >= s => {
                let n = (k - s) as usize * CHUNK_SAMPLES + i;
                if n < burst_samples {
                    AMPLITUDE * (std::f64::consts::TAU * args.freq * n as f64 / f64::from(RATE)).sin()
                } else {
                    0.0
                }
            }
            _ => 0.0,
        };
        out.extend_from_slice(&((v * 32767.0) as i16).to_le_bytes());
    }
    out
}

fn start_player(latency_ms: u64) -> std::io::Result<(Child, ChildStdin)> {
    let mut child = Command::new("pacat")
        .args(["--playback", "--raw", "--format=s16le", "--channels=1", "--stream-name=kelpie-avsync"])
        .arg(format!("--rate={RATE}"))
        .arg(format!("--latency-msec={latency_ms}"))
        .arg(format!("--process-time-msec={}", CHUNK_MS.min(latency_ms)))
        .stdin(Stdio::piped())
        .spawn()?;
    let stdin = child.stdin.take().ok_or_else(|| std::io::Error::other("pacat has no stdin"))?;
    Ok((child, stdin))
}

struct Square {
    conn: RustConnection,
    win: Window,
    gc: Gcontext,
    white: u32,
    black: u32,
}

impl Square {
    fn draw(&self, white: bool) -> Result<(), ReplyOrIdError> {
        let pixel = if white { self.white } else { self.black };
        self.conn.change_gc(self.gc, &ChangeGCAux::new().foreground(pixel))?;
        let r = Rectangle { x: SQ_X as i16, y: SQ_Y as i16, width: SQUARE as u16, height: SQUARE as u16 };
        self.conn.poly_fill_rectangle(self.win, self.gc, &[r])?;
        // A round trip: the X server has drawn it when this returns.
        self.conn.sync()?;
        Ok(())
    }
}

/// An X failure, said as such.
fn x_err(e: impl std::fmt::Display) -> String {
    format!("X: {e}")
}

/// Maps the window (grey, black square) and waits until it is on screen.
fn open_window() -> Result<Square, String> {
    let (conn, screen_num) = x11rb::connect(None).map_err(|e| format!("cannot connect to the X server: {e}"))?;
    let screen = conn.setup().roots[screen_num].clone();
    let win = conn.generate_id().map_err(x_err)?;
    conn.create_window(
        screen.root_depth,
        win,
        screen.root,
        0,
        0,
        screen.width_in_pixels,
        screen.height_in_pixels,
        0,
        WindowClass::INPUT_OUTPUT,
        screen.root_visual,
        &CreateWindowAux::new()
            .override_redirect(1)
            .background_pixel(0x80_80_80)
            .event_mask(EventMask::STRUCTURE_NOTIFY),
    )
    .map_err(x_err)?;
    let gc = conn.generate_id().map_err(x_err)?;
    conn.create_gc(gc, win, &CreateGCAux::new().graphics_exposures(0)).map_err(x_err)?;
    conn.map_window(win).map_err(x_err)?;
    conn.flush().map_err(x_err)?;
    loop {
        match conn.wait_for_event().map_err(x_err)? {
            Event::MapNotify(e) if e.window == win => break,
            _ => {}
        }
    }
    // Xvfb's root visual is 24-bit TrueColor: these are its white and black.
    let square = Square { conn, win, gc, white: 0xff_ff_ff, black: 0 };
    square.draw(false).map_err(x_err)?;
    Ok(square)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let square = match open_window() {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("kelpie-avsync: {msg}");
            return ExitCode::from(1);
        }
    };
    let (mut player, mut pcm) = match start_player(args.latency_ms) {
        Ok(p) => p,
        Err(err) => {
            eprintln!("kelpie-avsync: cannot start pacat (pulseaudio-utils): {err}");
            return ExitCode::from(1);
        }
    };
    emit(json!({
        "ev": "ready",
        "layout": {"sq_x": SQ_X, "sq_y": SQ_Y, "sq_size": SQUARE},
        "period_ms": args.period_ms, "burst_ms": args.burst_ms, "freq": args.freq, "latency_ms": args.latency_ms,
    }));

    let chunks_per_flip = args.period_ms / CHUNK_MS;
    let start = Instant::now();
    let mut burst: Option<u64> = None;
    let mut white = false;
    let mut flips: u64 = 0;
    for k in 0u64.. {
        if let Some(wait) = (start + Duration::from_millis(k * CHUNK_MS)).checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        // Flip from the second period on: the first lets pacat's stream start.
        let flip = k >= chunks_per_flip && k % chunks_per_flip == 0;
        let mut video_ms = 0.0;
        if flip {
            white = !white;
            if let Err(err) = square.draw(white) {
                eprintln!("kelpie-avsync: X connection closed: {err}");
                return ExitCode::SUCCESS;
            }
            video_ms = wall_ms();
            burst = Some(k);
        }
        let data = chunk(k, burst, &args);
        let audio_ms = wall_ms();
        if let Err(err) = pcm.write_all(&data) {
            let status = player.try_wait().ok().flatten();
            eprintln!("kelpie-avsync: pacat stopped taking audio ({err}; exit {status:?})");
            return ExitCode::from(1);
        }
        if flip {
            emit(json!({"ev": "flip", "n": flips, "white": white, "video_ms": video_ms, "audio_ms": audio_ms}));
            flips += 1;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Args {
        Args { period_ms: 500, burst_ms: 20, freq: 1000.0, latency_ms: 10 }
    }

    fn samples(bytes: &[u8]) -> Vec<i16> {
        bytes.chunks(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect()
    }

    #[test]
    fn a_burst_spans_its_length_and_then_falls_silent() {
        let a = args();
        assert!(samples(&chunk(3, None, &a)).iter().all(|s| *s == 0));
        let first = samples(&chunk(10, Some(10), &a));
        assert_eq!(first.len(), CHUNK_SAMPLES);
        assert!(first[..48].iter().any(|s| s.unsigned_abs() > 10_000), "loud from its first millisecond");
        assert!(samples(&chunk(11, Some(10), &a)).iter().any(|s| *s != 0), "20 ms burst: the second chunk too");
        assert!(samples(&chunk(12, Some(10), &a)).iter().all(|s| *s == 0), "silent after 20 ms");
    }
}

//! `kelpie-content`: the benchmark's content generator, an X client that fills the screen
//! with content an encoder has to work for, stamped with the wall clock so that a viewer
//! can measure glass-to-glass latency, and with a square that changes colour on input so
//! that it can measure input-to-photon latency.
//!
//! Usage: `kelpie-content [--mode moving|static] [--fps N]` with `DISPLAY` set.
//!
//! It maps one full-screen override-redirect window and gives it the input focus. The
//! top-left corner holds the "HUD", which no other drawing touches:
//!
//! * **timestamp**: one row of `BLOCKS` blocks of `BLOCK`×`BLOCK` px, white = 1, black = 0:
//!   the start pattern `1010`, then the wall clock in milliseconds since the Unix epoch
//!   modulo 2^40, most significant bit first (40 blocks), then 4 parity bits, bit `k` being
//!   the XOR of the data bits whose index modulo 4 is `k`. Blocks this big, black on white,
//!   survive H.264 at low bitrates and 4:2:0 chroma; decoders sample their centres.
//! * **square**: `SQUARE`×`SQUARE` px of one of [`PALETTE`]'s colours, advanced to the next
//!   colour on every KeyPress and ButtonPress and redrawn at once.
//!
//! `--mode moving` (default) repaints everything else every frame at `--fps` (default 60):
//! scrolling text-like glyph rows on the left (fine detail that moves, as when a document
//! or a terminal scrolls) and bands of moving colour gradients on the right (motion plus
//! smooth colour), so the whole screen changes every frame. The timestamp is redrawn every
//! frame with the time taken *before* the frame was drawn, so a picture that shows a
//! timestamp was complete no earlier than it: latency measured from it is never too low.
//! `--mode static` draws once and afterwards redraws only the square and the timestamp, on
//! input (and everything on Expose).
//!
//! Everything is drawn with PolyFillRectangle batched by colour (a few hundred requests per
//! frame, no image uploads), so the generator itself costs little CPU; the X server's
//! cost of drawing is the benchmark's to measure.
//!
//! Stdout, one JSON object per line:
//! * `{"ev":"ready","width","height","mode","fps","layout":{...},"palette":[[r,g,b],...]}`
//!   once mapped and focused; `layout` gives the HUD geometry the viewer needs to decode;
//! * `{"ev":"input","t_ms","kind":"key"|"button","color"}` when the square changes colour
//!   (`t_ms`: the wall clock in ms, after the new colour was sent to the X server);
//! * `{"ev":"stats","frames","late","cpu_ms","t_ms"}` every second: frames drawn so far,
//!   frames that started after their deadline (the generator falling behind), and the
//!   process's own CPU time (user + system, ms).

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use x11rb::connection::Connection;
use x11rb::errors::ReplyOrIdError;
use x11rb::protocol::xproto::{
    ChangeGCAux, ClipOrdering, ConnectionExt as _, CreateGCAux, CreateWindowAux, EventMask, Gcontext, InputFocus,
    Rectangle, Screen, Window, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

const USAGE: &str = "usage: kelpie-content [--mode moving|static] [--fps N]";

/// Timestamp block size in pixels.
const BLOCK: i32 = 24;
/// Blocks in the timestamp row: start pattern, data bits, parity bits.
const START: [bool; 4] = [true, false, true, false];
const DATA_BITS: usize = 40;
const PARITY_BITS: usize = 4;
const BLOCKS: usize = START.len() + DATA_BITS + PARITY_BITS;
/// Top-left corner of the timestamp row.
const TS_X: i32 = 16;
const TS_Y: i32 = 16;
/// The input square.
const SQUARE: i32 = 64;
const SQ_X: i32 = 16;
const SQ_Y: i32 = TS_Y + BLOCK + 16;
/// The HUD: everything above is inside it, and nothing else draws there.
const HUD_W: i32 = TS_X + BLOCKS as i32 * BLOCK + 16;
const HUD_H: i32 = SQ_Y + SQUARE + 16;
const HUD_GREY: [u8; 3] = [0x80, 0x80, 0x80];

/// Colours of the square, far apart in RGB and in YUV.
const PALETTE: [[u8; 3]; 6] = [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255]];

/// Text area: paper and ink; glyph cell and line pitch.
const PAPER: [u8; 3] = [236, 236, 228];
const INK: [u8; 3] = [24, 28, 40];
const LINE_PITCH: i32 = 18;
const GLYPH_W: i32 = 7;
const GLYPH_H: i32 = 11;
const GLYPH_PITCH: i32 = 9;
/// Scroll speed of the text, px per second (so the picture moves the same at any fps).
const SCROLL_PX_PER_S: f64 = 240.0;
/// Gradient: colours in one cycle and column width.
const GRADIENT_STEPS: usize = 64;
const GRADIENT_COL: i32 = 8;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Moving,
    Static,
}

struct Args {
    mode: Mode,
    fps: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { mode: Mode::Moving, fps: 60.0 };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--mode" => {
                args.mode = match it.next().as_deref() {
                    Some("moving") => Mode::Moving,
                    Some("static") => Mode::Static,
                    other => return Err(format!("--mode must be moving or static, not {other:?}\n{USAGE}")),
                }
            }
            "--fps" => {
                let fps: f64 = it.next().and_then(|v| v.parse().ok()).ok_or("--fps needs a number")?;
                if !(fps > 0.0 && fps <= 240.0) {
                    return Err("--fps must be in (0, 240]".into());
                }
                args.fps = fps;
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// Writes one JSON line and flushes it (stdout is a pipe). A closed stdout means the
/// benchmark is gone, so we go too.
fn emit(v: Value) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{v}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

fn x_gone(err: impl std::fmt::Display) -> ! {
    eprintln!("kelpie-content: X connection closed: {err}");
    std::process::exit(0);
}

/// Wall clock in ms since the Unix epoch.
fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// User + system CPU time of this process in ms, from /proc/self/stat.
fn own_cpu_ms() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    // CLK_TCK is 100 on every Linux this runs on.
    Some(ticks * 10)
}

/// The blocks of the timestamp row for `ms`: true = white.
pub fn timestamp_bits(ms: u64) -> [bool; BLOCKS] {
    let v = ms & ((1u64 << DATA_BITS) - 1);
    let mut bits = [false; BLOCKS];
    bits[..START.len()].copy_from_slice(&START);
    for i in 0..DATA_BITS {
        let bit = (v >> (DATA_BITS - 1 - i)) & 1 == 1;
        bits[START.len() + i] = bit;
        if bit {
            let p = START.len() + DATA_BITS + i % PARITY_BITS;
            bits[p] = !bits[p];
        }
    }
    bits
}

/// Converts 8-bit RGB to a pixel value of the root visual (TrueColor, as on Xvfb).
#[derive(Clone, Copy)]
struct PixelFormat {
    masks: [u32; 3],
}

impl PixelFormat {
    fn of(screen: &Screen) -> Self {
        let visual =
            screen.allowed_depths.iter().flat_map(|d| d.visuals.iter()).find(|v| v.visual_id == screen.root_visual);
        let masks = visual.map_or([0xff0000, 0x00ff00, 0x0000ff], |v| [v.red_mask, v.green_mask, v.blue_mask]);
        Self { masks }
    }

    fn pixel(&self, rgb: [u8; 3]) -> u32 {
        let mut pixel = 0;
        for (mask, value) in self.masks.iter().zip(rgb) {
            if *mask == 0 {
                continue;
            }
            let shift = mask.trailing_zeros();
            let bits = (mask >> shift).count_ones();
            let scaled = if bits >= 8 { u32::from(value) << (bits - 8) } else { u32::from(value) >> (8 - bits) };
            pixel |= (scaled << shift) & mask;
        }
        pixel
    }
}

fn rect(x: i32, y: i32, w: i32, h: i32) -> Rectangle {
    Rectangle {
        x: x.clamp(i16::MIN.into(), i16::MAX.into()) as i16,
        y: y.clamp(i16::MIN.into(), i16::MAX.into()) as i16,
        width: w.clamp(0, u16::MAX.into()) as u16,
        height: h.clamp(0, u16::MAX.into()) as u16,
    }
}

/// Cheap deterministic hash.
fn mix(mut v: u64) -> u64 {
    v ^= v >> 33;
    v = v.wrapping_mul(0xff51_afd7_ed55_8ccd);
    v ^= v >> 33;
    v = v.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    v ^= v >> 33;
    v
}

/// A smooth cyclic gradient: hue around the circle with a slower brightness wave.
fn gradient_colour(i: usize) -> [u8; 3] {
    let t = i as f64 / GRADIENT_STEPS as f64;
    let tau = std::f64::consts::TAU;
    let light = 0.75 + 0.25 * (tau * 2.0 * t).cos();
    let c = |phase: f64| (127.5 + 127.5 * (tau * t + phase).cos()) * light;
    [c(0.0) as u8, c(tau / 3.0) as u8, c(2.0 * tau / 3.0) as u8]
}

/// Everything the drawing needs: the connection, window, GCs and pixel values.
struct Painter {
    conn: Arc<RustConnection>,
    win: Window,
    /// For the HUD (no clipping).
    hud_gc: Gcontext,
    /// For the content, clipped to everything outside the HUD.
    gc: Gcontext,
    white: u32,
    black: u32,
    grey: u32,
    paper: u32,
    ink: u32,
    palette: Vec<u32>,
    gradient: Vec<u32>,
    width: i32,
    height: i32,
    /// Index into PALETTE; guarded so the square is never drawn in a stale colour after
    /// an input changed it.
    colour: Mutex<usize>,
}

impl Painter {
    fn new(conn: Arc<RustConnection>, screen: &Screen, win: Window) -> Result<Self, ReplyOrIdError> {
        let format = PixelFormat::of(screen);
        let (width, height) = (i32::from(screen.width_in_pixels), i32::from(screen.height_in_pixels));
        let hud_gc = conn.generate_id()?;
        conn.create_gc(hud_gc, win, &CreateGCAux::new().graphics_exposures(0))?;
        let gc = conn.generate_id()?;
        conn.create_gc(gc, win, &CreateGCAux::new().graphics_exposures(0))?;
        let outside_hud = [rect(HUD_W, 0, width - HUD_W, HUD_H), rect(0, HUD_H, width, height - HUD_H)];
        conn.set_clip_rectangles(ClipOrdering::UNSORTED, gc, 0, 0, &outside_hud)?;
        Ok(Self {
            white: format.pixel([255, 255, 255]),
            black: format.pixel([0, 0, 0]),
            grey: format.pixel(HUD_GREY),
            paper: format.pixel(PAPER),
            ink: format.pixel(INK),
            palette: PALETTE.iter().map(|c| format.pixel(*c)).collect(),
            gradient: (0..GRADIENT_STEPS).map(|i| format.pixel(gradient_colour(i))).collect(),
            conn,
            win,
            hud_gc,
            gc,
            width,
            height,
            colour: Mutex::new(0),
        })
    }

    fn fill(&self, gc: Gcontext, pixel: u32, rects: &[Rectangle]) -> Result<(), ReplyOrIdError> {
        if rects.is_empty() {
            return Ok(());
        }
        self.conn.change_gc(gc, &ChangeGCAux::new().foreground(pixel))?;
        // Large batches are split by x11rb's request length handling (BIG-REQUESTS).
        self.conn.poly_fill_rectangle(self.win, gc, rects)?;
        Ok(())
    }

    fn hud_background(&self) -> Result<(), ReplyOrIdError> {
        self.fill(self.hud_gc, self.grey, &[rect(0, 0, HUD_W, HUD_H)])
    }

    fn timestamp(&self, ms: u64) -> Result<(), ReplyOrIdError> {
        let bits = timestamp_bits(ms);
        let (mut white, mut black) = (Vec::new(), Vec::new());
        for (i, bit) in bits.iter().enumerate() {
            let r = rect(TS_X + i as i32 * BLOCK, TS_Y, BLOCK, BLOCK);
            if *bit {
                white.push(r)
            } else {
                black.push(r)
            }
        }
        self.fill(self.hud_gc, self.white, &white)?;
        self.fill(self.hud_gc, self.black, &black)
    }

    /// Draws the square in the current colour (caller holds the colour lock).
    fn square(&self, colour: usize) -> Result<(), ReplyOrIdError> {
        self.fill(self.hud_gc, self.palette[colour % self.palette.len()], &[rect(SQ_X, SQ_Y, SQUARE, SQUARE)])
    }

    /// Advances the square's colour, draws it and the timestamp, and flushes; returns the
    /// new colour index.
    fn next_colour(&self) -> Result<usize, ReplyOrIdError> {
        let mut colour = self.colour.lock().unwrap_or_else(|e| e.into_inner());
        *colour = (*colour + 1) % PALETTE.len();
        self.square(*colour)?;
        self.timestamp(wall_ms())?;
        self.conn.flush()?;
        Ok(*colour)
    }

    /// Draws the whole HUD with `ms` as the timestamp.
    fn hud(&self, ms: u64, background: bool) -> Result<(), ReplyOrIdError> {
        let colour = self.colour.lock().unwrap_or_else(|e| e.into_inner());
        if background {
            self.hud_background()?;
        }
        self.timestamp(ms)?;
        self.square(*colour)
    }

    /// Draws the content of frame `t` (seconds since start): scrolling text on the left,
    /// moving gradient bands on the right. Clipped to outside the HUD.
    fn content(&self, t: f64, rects: &mut Vec<Rectangle>) -> Result<(), ReplyOrIdError> {
        let (w, h) = (self.width, self.height);
        let text_w = (w * 5 / 8) / 16 * 16;

        // Text: paper, then every glyph of the visible lines in ink, scrolled up.
        self.fill(self.gc, self.paper, &[rect(0, 0, text_w, h)])?;
        rects.clear();
        let scroll = (t * SCROLL_PX_PER_S) as i64;
        let first_line = scroll.div_euclid(i64::from(LINE_PITCH));
        let offset = scroll.rem_euclid(i64::from(LINE_PITCH)) as i32;
        let lines = h / LINE_PITCH + 2;
        let slots = (text_w - 16) / GLYPH_PITCH;
        for l in 0..lines {
            let line = (first_line + i64::from(l)) as u64;
            let y = l * LINE_PITCH - offset + (LINE_PITCH - GLYPH_H) / 2;
            let seed = mix(line.wrapping_add(0x9e37_79b9));
            if seed.is_multiple_of(9) {
                continue; // a blank line now and then, like paragraphs
            }
            let indent = ((seed >> 8) % 4) as i32 * 4;
            let len = slots / 3 + ((seed >> 16) % (2 * slots as u64 / 3 + 1)) as i32;
            let mut word_left = 0;
            for s in indent..len.min(slots) {
                let g = mix(seed ^ (s as u64).wrapping_mul(0x100_0193));
                if word_left == 0 {
                    word_left = 2 + (g % 9) as i32; // word length
                    continue; // the space before it
                }
                word_left -= 1;
                let x = 8 + s * GLYPH_PITCH;
                // A glyph: a stem of varying height, and sometimes a bar or a bowl.
                let tall = g >> 8 & 3 == 0;
                let (top, stem_h) = if tall { (0, GLYPH_H) } else { (4, GLYPH_H - 4) };
                let stem_x = x + ((g >> 12) % 3) as i32 * 2;
                rects.push(rect(stem_x, y + top, 2, stem_h));
                match g >> 16 & 3 {
                    0 => rects.push(rect(x, y + 4, GLYPH_W, 2)),
                    1 => rects.push(rect(x, y + GLYPH_H - 2, GLYPH_W, 2)),
                    2 => {
                        rects.push(rect(x, y + 4, GLYPH_W, 2));
                        rects.push(rect(x + GLYPH_W - 2, y + 4, 2, GLYPH_H - 4));
                    }
                    _ => {}
                }
            }
        }
        self.fill(self.gc, self.ink, rects)?;

        // Gradients: horizontal bands, each a cyclic gradient moving at its own speed and
        // direction; batched by colour.
        let grad_x = text_w;
        let bands = 6;
        let band_h = (h + bands - 1) / bands;
        let mut by_colour: Vec<Vec<Rectangle>> = vec![Vec::new(); GRADIENT_STEPS];
        for b in 0..bands {
            let speed = [180.0, -300.0, 420.0, -120.0, 240.0, -540.0][b as usize % 6];
            let phase = (t * speed) as i64;
            let cols = (w - grad_x + GRADIENT_COL - 1) / GRADIENT_COL;
            for c in 0..cols {
                let x = grad_x + c * GRADIENT_COL;
                let step = (i64::from(x) + phase).div_euclid(i64::from(GRADIENT_COL)) + i64::from(b) * 11;
                let idx = step.rem_euclid(GRADIENT_STEPS as i64) as usize;
                by_colour[idx].push(rect(x, b * band_h, GRADIENT_COL, band_h));
            }
        }
        for (rects, pixel) in by_colour.iter().zip(&self.gradient) {
            self.fill(self.gc, *pixel, rects)?;
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let (conn, screen_num) = match x11rb::connect(None) {
        Ok(c) => c,
        Err(err) => {
            eprintln!("kelpie-content: cannot connect to the X server: {err}");
            return ExitCode::from(1);
        }
    };
    match run(Arc::new(conn), screen_num, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => x_gone(err),
    }
}

fn run(conn: Arc<RustConnection>, screen_num: usize, args: &Args) -> Result<(), ReplyOrIdError> {
    let screen = conn.setup().roots[screen_num].clone();
    let win = conn.generate_id()?;
    let events = EventMask::KEY_PRESS | EventMask::BUTTON_PRESS | EventMask::EXPOSURE | EventMask::STRUCTURE_NOTIFY;
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
        // No background: we paint every pixel ourselves, and the server clearing the
        // window on expose would flash.
        &CreateWindowAux::new().override_redirect(1).event_mask(events),
    )?;
    let painter = Arc::new(Painter::new(conn.clone(), &screen, win)?);
    conn.map_window(win)?;
    conn.flush()?;

    let frames = Arc::new(AtomicU64::new(0));
    let late = Arc::new(AtomicU64::new(0));
    let mut rects = Vec::new();
    let start = Instant::now();
    let mut ready = false;
    loop {
        let event = conn.wait_for_event()?;
        match event {
            Event::MapNotify(e) if e.window == win && !ready => {
                conn.set_input_focus(InputFocus::PARENT, win, x11rb::CURRENT_TIME)?;
                // The first picture, complete, before anyone is told we are ready.
                painter.content(0.0, &mut rects)?;
                painter.hud(wall_ms(), true)?;
                conn.sync()?;
                ready = true;
                emit(json!({
                    "ev": "ready",
                    "width": painter.width,
                    "height": painter.height,
                    "mode": if args.mode == Mode::Moving { "moving" } else { "static" },
                    "fps": args.fps,
                    "layout": {
                        "ts_x": TS_X, "ts_y": TS_Y, "block": BLOCK,
                        "start": START, "data_bits": DATA_BITS, "parity_bits": PARITY_BITS,
                        "sq_x": SQ_X, "sq_y": SQ_Y, "sq_size": SQUARE,
                        "hud_w": HUD_W, "hud_h": HUD_H,
                    },
                    "palette": PALETTE,
                }));
                let (frames2, late2) = (frames.clone(), late.clone());
                std::thread::spawn(move || report_stats(&frames2, &late2));
                if args.mode == Mode::Moving {
                    let (painter, frames, late, fps) = (painter.clone(), frames.clone(), late.clone(), args.fps);
                    std::thread::spawn(move || {
                        let err = animate(&painter, fps, start, &frames, &late);
                        x_gone(match err {
                            Err(e) => e.to_string(),
                            Ok(()) => "animation stopped".into(),
                        });
                    });
                } else {
                    frames.store(1, Ordering::Relaxed);
                }
            }
            Event::Expose(e) if e.count == 0 && ready && args.mode == Mode::Static => {
                painter.content(0.0, &mut rects)?;
                painter.hud(wall_ms(), true)?;
                conn.flush()?;
            }
            Event::KeyPress(_) | Event::ButtonPress(_) if ready => {
                let kind = if matches!(event, Event::KeyPress(_)) { "key" } else { "button" };
                let colour = painter.next_colour()?;
                emit(json!({"ev": "input", "t_ms": wall_ms(), "kind": kind, "color": colour}));
            }
            Event::Error(e) => eprintln!("kelpie-content: X error {e:?}"),
            _ => {}
        }
    }
}

fn report_stats(frames: &AtomicU64, late: &AtomicU64) {
    loop {
        std::thread::sleep(Duration::from_secs(1));
        emit(json!({
            "ev": "stats",
            "frames": frames.load(Ordering::Relaxed),
            "late": late.load(Ordering::Relaxed),
            "cpu_ms": own_cpu_ms(),
            "t_ms": wall_ms(),
        }));
    }
}

/// Repaints at `fps`. The frame index follows the wall clock, so a slow X server makes us
/// skip frames (counted as late) rather than slow the motion down.
fn animate(
    painter: &Painter,
    fps: f64,
    start: Instant,
    frames: &AtomicU64,
    late: &AtomicU64,
) -> Result<(), ReplyOrIdError> {
    let period = Duration::from_secs_f64(1.0 / fps);
    let mut rects = Vec::with_capacity(16384);
    let mut next_frame: u64 = 1;
    loop {
        let due = start + period.mul_f64(next_frame as f64);
        match due.checked_duration_since(Instant::now()) {
            Some(wait) => std::thread::sleep(wait),
            None if Instant::now() - due > period / 2 => {
                late.fetch_add(1, Ordering::Relaxed);
            }
            None => {}
        }
        // The timestamp is taken before drawing: a picture showing it is at least this old.
        let stamp = wall_ms();
        let t = start.elapsed().as_secs_f64();
        painter.content(t, &mut rects)?;
        painter.hud(stamp, false)?;
        // A round trip, not just a flush: paces us to the X server, so requests cannot
        // pile up if it falls behind.
        painter.conn.sync()?;
        frames.fetch_add(1, Ordering::Relaxed);
        // Skip frames whose time has already passed.
        let now_frame = (start.elapsed().as_secs_f64() * fps) as u64;
        next_frame = (next_frame + 1).max(now_frame + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_layout() {
        let bits = timestamp_bits(0b1011);
        assert_eq!(&bits[..4], &START);
        assert!(bits[4..4 + 36].iter().all(|b| !b));
        assert_eq!(&bits[40..44], &[true, false, true, true]);
        // Parity: data bits 36..40 hold 1011; bit i goes to parity i % 4.
        assert_eq!(&bits[44..48], &[true, false, true, true]);
        let all = timestamp_bits((1 << 40) - 1);
        assert!(all[4..44].iter().all(|b| *b));
        assert_eq!(&all[44..48], &[false; 4]); // ten ones per group: even
    }
}

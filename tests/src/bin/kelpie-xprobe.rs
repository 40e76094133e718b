//! `kelpie-xprobe`: an X client that reports the input it receives as JSON lines.
//!
//! Integration and browser tests start it on the Xvfb display Kelpie streams, inject input
//! through Kelpie (data channel → XTest), and read stdout to see what an application would
//! have seen. It covers the whole screen with an override-redirect window (no window manager
//! needed) and takes the keyboard focus, so every injected event lands on it.
//!
//! Output, one JSON object per line, flushed immediately:
//!
//! * `{"ev":"ready","width":W,"height":H}` once the window is mapped and focused;
//! * `{"ev":"key","keycode":N,"keysym":N,"text":"H","state":N}` per key press;
//! * `{"ev":"key_up","keycode":N,"keysym":N,"state":N}` per key release (to check that
//!   "release all" really releases);
//! * `{"ev":"button","button":N,"down":B,"x":X,"y":Y}` per button press/release (wheel
//!   notches are buttons 4–7), root coordinates;
//! * `{"ev":"motion","x":X,"y":Y}` per pointer motion, only with `--motion`;
//! * `{"ev":"resize","width":W,"height":H}` when the root window changes size (RandR).
//!
//! `--animate FPS` repaints the whole window with moving bars and flickering blocks at that
//! rate, so the encoder has real work and frame-rate tests measure something; without it the
//! window is a static mid-grey. The probe exits with status 0 when the X server goes away.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kelpie_tests::keysym;
use serde_json::Value;
use x11rb::connection::Connection;
use x11rb::errors::ReplyOrIdError;
use x11rb::protocol::xproto::{
    ChangeGCAux, ChangeWindowAttributesAux, ConfigureWindowAux, ConnectionExt as _, CreateGCAux, CreateWindowAux,
    EventMask, InputFocus, KeyButMask, Mapping, Rectangle, Screen, Window, WindowClass, BUTTON_PRESS_EVENT,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

const USAGE: &str = "usage: kelpie-xprobe [--motion] [--animate FPS]";

struct Args {
    motion: bool,
    animate: Option<f64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { motion: false, animate: None };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--motion" => args.motion = true,
            "--animate" => {
                let fps: f64 = it.next().and_then(|v| v.parse().ok()).ok_or("--animate needs a frame rate")?;
                if !(fps > 0.0 && fps <= 240.0) {
                    return Err("--animate FPS must be in (0, 240]".into());
                }
                args.animate = Some(fps);
            }
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// Writes one JSON object as a line and flushes it: tests read stdout through a pipe, where
/// nothing would otherwise arrive until a buffer fills. Fields keep the order given (`ev`
/// first), which `serde_json::Map` would not. A closed stdout means the test is gone.
fn emit(fields: &[(&str, Value)]) {
    let body: Vec<String> = fields.iter().map(|(key, value)| format!("{}:{value}", Value::from(*key))).collect();
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{{{}}}", body.join(",")).and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

/// Ends the process because the X connection is unusable; that is the normal way to stop
/// (the test kills Xvfb), so it is not an error.
fn x_gone(err: impl std::fmt::Display) -> ! {
    eprintln!("kelpie-xprobe: X connection closed: {err}");
    std::process::exit(0);
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
            eprintln!("kelpie-xprobe: cannot connect to the X server: {err}");
            return ExitCode::from(1);
        }
    };
    match run(Arc::new(conn), screen_num, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => x_gone(err),
    }
}

/// Converts 8-bit RGB to a pixel value of the root visual (TrueColor assumed, as on Xvfb).
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

/// The keyboard mapping, refetched on MappingNotify because the server (or xdotool) may
/// bind keysyms to spare keycodes while typing characters the layout lacks.
struct Keymap {
    min_keycode: u8,
    per_keycode: usize,
    keysyms: Vec<u32>,
}

impl Keymap {
    fn fetch(conn: &RustConnection) -> Result<Self, ReplyOrIdError> {
        let setup = conn.setup();
        let (min, max) = (setup.min_keycode, setup.max_keycode);
        let reply = conn.get_keyboard_mapping(min, max - min + 1)?.reply()?;
        Ok(Self { min_keycode: min, per_keycode: usize::from(reply.keysyms_per_keycode), keysyms: reply.keysyms })
    }

    fn lookup(&self, keycode: u8, state: u16) -> u32 {
        let Some(index) = keycode.checked_sub(self.min_keycode) else {
            return 0;
        };
        let start = usize::from(index) * self.per_keycode;
        let group1_len = self.per_keycode.min(2);
        let syms = self.keysyms.get(start..start + group1_len).unwrap_or(&[]);
        let shift = state & u16::from(KeyButMask::SHIFT) != 0;
        let lock = state & u16::from(KeyButMask::LOCK) != 0;
        keysym::select_keysym(syms, shift, lock)
    }
}

fn run(conn: Arc<RustConnection>, screen_num: usize, args: &Args) -> Result<(), ReplyOrIdError> {
    let screen = conn.setup().roots[screen_num].clone();
    let format = PixelFormat::of(&screen);
    let grey = format.pixel([0x80, 0x80, 0x80]);
    let width = Arc::new(AtomicU32::new(u32::from(screen.width_in_pixels)));
    let height = Arc::new(AtomicU32::new(u32::from(screen.height_in_pixels)));

    let win = conn.generate_id()?;
    let events = EventMask::KEY_PRESS
        | EventMask::KEY_RELEASE
        | EventMask::BUTTON_PRESS
        | EventMask::BUTTON_RELEASE
        | EventMask::POINTER_MOTION
        | EventMask::EXPOSURE
        | EventMask::STRUCTURE_NOTIFY;
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
        &CreateWindowAux::new().background_pixel(grey).override_redirect(1).event_mask(events),
    )?;
    // Root ConfigureNotify tells us about RandR resizes, so the window keeps covering it.
    conn.change_window_attributes(
        screen.root,
        &ChangeWindowAttributesAux::new().event_mask(EventMask::STRUCTURE_NOTIFY),
    )?;
    let gc = conn.generate_id()?;
    conn.create_gc(gc, win, &CreateGCAux::new().foreground(grey).graphics_exposures(0))?;
    let mut keymap = Keymap::fetch(&conn)?;
    conn.map_window(win)?;
    conn.flush()?;

    let mut ready = false;
    loop {
        let event = conn.wait_for_event()?;
        match event {
            Event::MapNotify(e) if e.window == win && !ready => {
                // Focus can only be given to a viewable window, hence after MapNotify.
                conn.set_input_focus(InputFocus::PARENT, win, x11rb::CURRENT_TIME)?;
                conn.sync()?;
                ready = true;
                emit(&[
                    ("ev", "ready".into()),
                    ("width", width.load(Ordering::Relaxed).into()),
                    ("height", height.load(Ordering::Relaxed).into()),
                ]);
                if let Some(fps) = args.animate {
                    let (conn, width, height) = (conn.clone(), width.clone(), height.clone());
                    std::thread::spawn(move || {
                        let err = animate(&conn, win, format, fps, &width, &height);
                        x_gone(match err {
                            Err(e) => e.to_string(),
                            Ok(()) => "animation stopped".into(),
                        });
                    });
                }
            }
            Event::Expose(e) if e.count == 0 && args.animate.is_none() => {
                let rect = full_rect(&width, &height);
                conn.change_gc(gc, &ChangeGCAux::new().foreground(grey))?;
                conn.poly_fill_rectangle(win, gc, &[rect])?;
                conn.flush()?;
            }
            Event::KeyPress(e) => {
                let state = u16::from(e.state);
                let sym = keymap.lookup(e.detail, state);
                let text = keysym::keysym_to_char(sym).map(String::from).unwrap_or_default();
                emit(&[
                    ("ev", "key".into()),
                    ("keycode", e.detail.into()),
                    ("keysym", sym.into()),
                    ("text", text.into()),
                    ("state", state.into()),
                ]);
            }
            Event::KeyRelease(e) => {
                let state = u16::from(e.state);
                emit(&[
                    ("ev", "key_up".into()),
                    ("keycode", e.detail.into()),
                    ("keysym", keymap.lookup(e.detail, state).into()),
                    ("state", state.into()),
                ]);
            }
            Event::ButtonPress(e) | Event::ButtonRelease(e) => {
                let down = e.response_type & 0x7f == BUTTON_PRESS_EVENT;
                emit(&[
                    ("ev", "button".into()),
                    ("button", e.detail.into()),
                    ("down", down.into()),
                    ("x", e.root_x.into()),
                    ("y", e.root_y.into()),
                ]);
            }
            Event::MotionNotify(e) if args.motion => {
                emit(&[("ev", "motion".into()), ("x", e.root_x.into()), ("y", e.root_y.into())]);
            }
            Event::MappingNotify(e) if e.request == Mapping::KEYBOARD => {
                keymap = Keymap::fetch(&conn)?;
            }
            Event::ConfigureNotify(e) if e.window == screen.root => {
                let (w, h) = (u32::from(e.width), u32::from(e.height));
                if w != width.load(Ordering::Relaxed) || h != height.load(Ordering::Relaxed) {
                    width.store(w, Ordering::Relaxed);
                    height.store(h, Ordering::Relaxed);
                    conn.configure_window(win, &ConfigureWindowAux::new().width(w).height(h))?;
                    conn.flush()?;
                    emit(&[("ev", "resize".into()), ("width", w.into()), ("height", h.into())]);
                }
            }
            Event::Error(e) => eprintln!("kelpie-xprobe: X error {e:?}"),
            _ => {}
        }
    }
}

fn full_rect(width: &AtomicU32, height: &AtomicU32) -> Rectangle {
    Rectangle {
        x: 0,
        y: 0,
        width: width.load(Ordering::Relaxed).min(u32::from(u16::MAX)) as u16,
        height: height.load(Ordering::Relaxed).min(u32::from(u16::MAX)) as u16,
    }
}

/// Colour `i` of a 16-entry palette spread around the hue circle.
fn palette(i: usize) -> [u8; 3] {
    let h = (i % 16) as f64 / 16.0 * 6.0;
    let x = (255.0 * (1.0 - (h % 2.0 - 1.0).abs())) as u8;
    match h as u32 {
        0 => [255, x, 0],
        1 => [x, 255, 0],
        2 => [0, 255, x],
        3 => [0, x, 255],
        4 => [x, 0, 255],
        _ => [255, 0, x],
    }
}

/// Cheap deterministic hash, for block colours that change unpredictably frame to frame.
fn mix(mut v: u64) -> u64 {
    v ^= v >> 33;
    v = v.wrapping_mul(0xff51_afd7_ed55_8ccd);
    v ^= v >> 33;
    v
}

/// Repaints the window at `fps`: scrolling colour bars (motion the encoder can predict),
/// a band of randomly recoloured blocks (residual it cannot), and a bouncing white square.
/// The frame index follows wall-clock time, so a slow X server drops frames instead of
/// slowing the motion down.
fn animate(
    conn: &RustConnection,
    win: Window,
    format: PixelFormat,
    fps: f64,
    width: &AtomicU32,
    height: &AtomicU32,
) -> Result<(), ReplyOrIdError> {
    let gc = conn.generate_id()?;
    conn.create_gc(gc, win, &CreateGCAux::new().graphics_exposures(0))?;
    let colours: Vec<u32> = (0..16).map(|i| format.pixel(palette(i))).collect();
    let white = format.pixel([255, 255, 255]);
    let period = Duration::from_secs_f64(1.0 / fps);
    let start = Instant::now();
    let mut last_frame = u64::MAX;

    loop {
        let frame = (start.elapsed().as_secs_f64() * fps) as u64;
        if frame == last_frame {
            std::thread::sleep(period / 4);
            continue;
        }
        last_frame = frame;
        let w = i32::try_from(width.load(Ordering::Relaxed)).unwrap_or(i32::MAX);
        let h = i32::try_from(height.load(Ordering::Relaxed)).unwrap_or(i32::MAX);
        let rect = |x: i32, y: i32, rw: i32, rh: i32| Rectangle {
            x: x.clamp(i16::MIN.into(), i16::MAX.into()) as i16,
            y: y.clamp(i16::MIN.into(), i16::MAX.into()) as i16,
            width: rw.clamp(0, u16::MAX.into()) as u16,
            height: rh.clamp(0, u16::MAX.into()) as u16,
        };

        // Bars: 16 colours per screen width, scrolling 8 px per frame.
        let bar = (w / 16).max(1);
        let offset = ((frame * 8) % (bar as u64 * 16)) as i32;
        let mut bars: Vec<Vec<Rectangle>> = vec![Vec::new(); colours.len()];
        for k in -16..=16i32 {
            let x = k * bar + offset;
            if x + bar > 0 && x < w {
                bars[k.rem_euclid(16) as usize].push(rect(x, 0, bar, h));
            }
        }
        for (rects, colour) in bars.iter().zip(&colours) {
            conn.change_gc(gc, &ChangeGCAux::new().foreground(*colour))?;
            conn.poly_fill_rectangle(win, gc, rects)?;
        }

        // Blocks: the middle third, 32 px cells, each recoloured at random every frame.
        let cell = 32;
        let (band_y, band_h) = (h / 3, h / 3);
        let mut by_colour: Vec<Vec<Rectangle>> = vec![Vec::new(); colours.len()];
        for cy in 0..(band_h / cell).max(0) {
            for cx in 0..(w / cell).max(0) {
                let key = (frame << 32) ^ ((cy as u64) << 16) ^ cx as u64;
                let c = (mix(key) % colours.len() as u64) as usize;
                by_colour[c].push(rect(cx * cell, band_y + cy * cell, cell, cell));
            }
        }
        for (rects, colour) in by_colour.iter().zip(&colours) {
            if !rects.is_empty() {
                conn.change_gc(gc, &ChangeGCAux::new().foreground(*colour))?;
                conn.poly_fill_rectangle(win, gc, rects)?;
            }
        }

        // Square: bounces along the bottom third.
        let size = (h / 8).max(8);
        let span = (w - size).max(1) as u64;
        let pos = (frame * 12) % (2 * span);
        let x = if pos < span { pos } else { 2 * span - pos } as i32;
        conn.change_gc(gc, &ChangeGCAux::new().foreground(white))?;
        conn.poly_fill_rectangle(win, gc, &[rect(x, h - size - h / 12, size, size)])?;

        // A round trip, not just a flush: it paces us to the X server, so requests cannot
        // pile up unboundedly if it falls behind.
        conn.sync()?;
        let next = start + period.mul_f64((frame + 1) as f64);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
}

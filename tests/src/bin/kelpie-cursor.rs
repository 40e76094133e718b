//! `kelpie-cursor`: an X client that changes the displayed cursor on command, for the
//! remote-cursor tests.
//!
//! It covers the screen with an override-redirect window (no window manager needed), warps
//! the pointer into it, and then reads commands from stdin, one per line:
//!
//! * a cursor-font glyph name (`crosshair`, `watch`, `hand2`, `xterm`, `fleur`, `left_ptr`,
//!   `question_arrow`, `X_cursor`, `pencil`, `gumby`): make it the window's cursor;
//! * `blank`: a cursor with no visible pixel (how applications hide the pointer).
//!
//! Each name gets one X cursor, created on first use and reused afterwards, so naming it
//! again shows the same XFixes serial (the browser should then use its cached image).
//!
//! Output, one JSON object per line, flushed immediately:
//!
//! * `{"ev":"ready","width":W,"height":H}` once the window is mapped and the pointer in it;
//! * `{"ev":"cursor-set","name":N,"t_ms":T,"serial":S,"w":W,"h":H,"xhot":X,"yhot":Y,
//!   "opaque":O,"alpha_sum":A}` after each change: `t_ms` is the wall clock (ms since the
//!   epoch) just before the change was sent to the X server, the rest is what XFixes then
//!   reports as the displayed cursor (`opaque` = pixels with alpha > 0, `alpha_sum` = sum of
//!   alpha), so a test can check what reached the browser against X itself;
//! * `{"ev":"error","message":M}` for a command it does not know.
//!
//! It exits with status 0 at the end of stdin or when the X server goes away.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::json;
use x11rb::connection::Connection;
use x11rb::protocol::xfixes::ConnectionExt as _;
use x11rb::protocol::xproto::{
    ChangeWindowAttributesAux, ConnectionExt as _, CreateGCAux, CreateWindowAux, Cursor, EventMask, Font, Rectangle,
    Window, WindowClass,
};
use x11rb::rust_connection::RustConnection;

/// Glyph indices in the standard X cursor font (X11/cursorfont.h).
const GLYPHS: &[(&str, u16)] = &[
    ("X_cursor", 0),
    ("crosshair", 34),
    ("fleur", 52),
    ("gumby", 56),
    ("hand2", 60),
    ("left_ptr", 68),
    ("pencil", 86),
    ("question_arrow", 92),
    ("watch", 150),
    ("xterm", 152),
];

type AnyError = Box<dyn std::error::Error>;

fn emit(value: serde_json::Value) {
    let mut out = std::io::stdout().lock();
    if writeln!(out, "{value}").and_then(|()| out.flush()).is_err() {
        std::process::exit(0);
    }
}

fn now_ms() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn main() -> ExitCode {
    let (conn, screen_num) = match x11rb::connect(None) {
        Ok(c) => c,
        Err(err) => {
            eprintln!("kelpie-cursor: cannot connect to the X server: {err}");
            return ExitCode::from(1);
        }
    };
    match run(&conn, screen_num) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kelpie-cursor: X connection closed: {err}");
            ExitCode::SUCCESS
        }
    }
}

struct Client<'a> {
    conn: &'a RustConnection,
    window: Window,
    font: Font,
}

fn run(conn: &RustConnection, screen_num: usize) -> Result<(), AnyError> {
    let screen = &conn.setup().roots[screen_num];
    let (width, height) = (screen.width_in_pixels, screen.height_in_pixels);
    conn.xfixes_query_version(4, 0)?.reply()?;
    let window = conn.generate_id()?;
    conn.create_window(
        screen.root_depth,
        window,
        screen.root,
        0,
        0,
        width,
        height,
        0,
        WindowClass::INPUT_OUTPUT,
        screen.root_visual,
        &CreateWindowAux::new()
            .background_pixel(screen.white_pixel)
            .override_redirect(1)
            .event_mask(EventMask::EXPOSURE),
    )?;
    conn.map_window(window)?;
    conn.warp_pointer(x11rb::NONE, window, 0, 0, 0, 0, (width / 2) as i16, (height / 2) as i16)?;
    let font = conn.generate_id()?;
    conn.open_font(font, b"cursor")?.check()?;
    conn.get_input_focus()?.reply()?; // everything above is done
    emit(json!({"ev": "ready", "width": width, "height": height}));

    let client = Client { conn, window, font };
    let mut made: HashMap<String, Cursor> = HashMap::new();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let name = line.trim();
        if name.is_empty() {
            continue;
        }
        let cursor = match made.get(name) {
            Some(&c) => c,
            None if name == "blank" => client.blank_cursor()?,
            None => match GLYPHS.iter().find(|(n, _)| *n == name) {
                Some(&(_, glyph)) => client.glyph_cursor(glyph)?,
                None => {
                    emit(json!({"ev": "error", "message": format!("unknown cursor {name:?}")}));
                    continue;
                }
            },
        };
        made.insert(name.to_string(), cursor);
        client.set(name, cursor)?;
    }
    Ok(())
}

impl Client<'_> {
    fn glyph_cursor(&self, glyph: u16) -> Result<Cursor, AnyError> {
        let cursor = self.conn.generate_id()?;
        // Black shape with a white outline, as xterm and friends draw them.
        self.conn.create_glyph_cursor(
            cursor,
            self.font,
            self.font,
            glyph,
            glyph + 1,
            0,
            0,
            0,
            0xffff,
            0xffff,
            0xffff,
        )?;
        Ok(cursor)
    }

    /// A 1×1 cursor whose mask is empty: nothing is drawn.
    fn blank_cursor(&self) -> Result<Cursor, AnyError> {
        let (pixmap, gc, cursor) = (self.conn.generate_id()?, self.conn.generate_id()?, self.conn.generate_id()?);
        self.conn.create_pixmap(1, pixmap, self.window, 1, 1)?;
        self.conn.create_gc(gc, pixmap, &CreateGCAux::new().foreground(0))?;
        self.conn.poly_fill_rectangle(pixmap, gc, &[Rectangle { x: 0, y: 0, width: 1, height: 1 }])?;
        self.conn.create_cursor(cursor, pixmap, pixmap, 0, 0, 0, 0, 0, 0, 0, 0)?;
        self.conn.free_gc(gc)?;
        self.conn.free_pixmap(pixmap)?;
        Ok(cursor)
    }

    fn set(&self, name: &str, cursor: Cursor) -> Result<(), AnyError> {
        let t_ms = now_ms();
        self.conn.change_window_attributes(self.window, &ChangeWindowAttributesAux::new().cursor(cursor))?;
        self.conn.flush()?;
        // Requests run in order, so this is the image after the change.
        let img = self.conn.xfixes_get_cursor_image()?.reply()?;
        let alphas = img.cursor_image.iter().map(|p| p >> 24);
        let opaque = alphas.clone().filter(|&a| a > 0).count();
        let alpha_sum: u64 = alphas.map(u64::from).sum();
        emit(json!({
            "ev": "cursor-set", "name": name, "t_ms": t_ms, "serial": img.cursor_serial,
            "w": img.width, "h": img.height, "xhot": img.xhot, "yhot": img.yhot,
            "opaque": opaque, "alpha_sum": alpha_sum,
        }));
        Ok(())
    }
}

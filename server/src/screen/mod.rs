//! Resize-to-fit: the remote screen follows the browser window × devicePixelRatio.
//!
//! The browser asks for a size; this module adds a RandR mode for it on the fly, switches
//! the output to it and resizes the screen, then sets the DPI (RandR physical size and
//! `Xft.dpi`). The capture element sees the RandR change and renegotiates its caps, so the
//! stream continues without restarting the pipeline or the WebRTC connection.
//!
//! Requests are debounced: dragging a window edge sends dozens, and each RandR switch
//! makes every application relayout, so only the last one after a quiet moment counts.

mod debounce;
pub mod plan;
mod size;

pub use debounce::Debounce;

pub use size::ScreenSize;

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::randr::{self, ConnectionExt as _, ModeFlag, ModeInfo};
use x11rb::protocol::xproto::{self, AtomEnum, ConnectionExt as _, PropMode};
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;

use plan::{dpi_for, is_our_mode, millimetres, mode_name, target_size, with_xft_dpi, SizeRange};

/// Quiet time after the last request before the screen is resized.
const DEBOUNCE: Duration = Duration::from_millis(250);
/// A resize waits at most this long, however often requests come.
const DEBOUNCE_MAX: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ResizeError {
    #[error("cannot connect to X display {display}: {why}")]
    Connect { display: String, why: String },
    #[error("the X server does not support RandR 1.2 or later, so the screen cannot be resized")]
    NoRandr,
    #[error("the X server has no output to resize")]
    NoOutput,
    #[error("X request failed: {0}")]
    X(String),
}

fn x_err(e: impl std::fmt::Display) -> ResizeError {
    ResizeError::X(e.to_string())
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Request {
    width: u32,
    height: u32,
    dpr: f64,
}

/// Handle to the resize thread; cheap to clone.
#[derive(Clone)]
pub struct Resizer {
    tx: Sender<Request>,
}

impl Resizer {
    /// Resizes `display` on request, never beyond `max` (`--max-size`) nor what the encoder
    /// takes ([`plan::ENCODER_MAX`]).
    pub fn start(display: String, max: ScreenSize) -> Self {
        let (tx, rx) = mpsc::channel();
        let max = (max.width, max.height);
        let spawned = std::thread::Builder::new().name("kelpie-resize".into()).spawn(move || run(&display, max, rx));
        if let Err(e) = spawned {
            tracing::error!("resize: cannot start its thread: {e}; the screen keeps its size");
        }
        Self { tx }
    }

    /// Asks for the screen to become `width` × `height` device pixels at `dpr`.
    pub fn request(&self, width: u32, height: u32, dpr: f64) {
        let _ = self.tx.send(Request { width, height, dpr });
    }
}

fn run(display: &str, max: (u32, u32), rx: Receiver<Request>) {
    let mut last_applied: Option<Request> = None;
    let mut pending = Debounce::new(DEBOUNCE, DEBOUNCE_MAX);
    loop {
        let received = match pending.wait(Instant::now()) {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(wait) => rx.recv_timeout(wait),
        };
        match received {
            Ok(req) => pending.push(req, Instant::now()),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        let Some(req) = pending.take_due(Instant::now()) else { continue };
        if last_applied == Some(req) {
            continue;
        }
        let (width, height) = plan::capped(req.width, req.height, max);
        if (width, height) != (req.width, req.height) {
            tracing::info!(asked = %format!("{}x{}", req.width, req.height), "resize capped to {width}x{height} (--max-size or the encoder's limit)");
        }
        match resize(display, width, height, Some(dpi_for(req.dpr))) {
            Ok((w, h)) => {
                tracing::info!(width = w, height = h, dpi = dpi_for(req.dpr), "screen resized to fit the browser");
                last_applied = Some(req);
            }
            Err(e) => tracing::warn!("resize to {}x{} refused: {e}", req.width, req.height),
        }
    }
}

/// Resizes `display` to (about) `width` × `height` and, with `dpi`, sets its DPI.
/// Returns the size actually set.
pub fn resize(display: &str, width: u32, height: u32, dpi: Option<u32>) -> Result<(u16, u16), ResizeError> {
    let (conn, screen) = x11rb::connect(Some(display))
        .map_err(|e| ResizeError::Connect { display: display.to_owned(), why: e.to_string() })?;
    let root = conn.setup().roots[screen].root;
    let version = conn.randr_query_version(1, 5).map_err(x_err)?.reply().map_err(|_| ResizeError::NoRandr)?;
    if (version.major_version, version.minor_version) < (1, 2) {
        return Err(ResizeError::NoRandr);
    }
    let range = conn.randr_get_screen_size_range(root).map_err(x_err)?.reply().map_err(x_err)?;
    let range = SizeRange { min: (range.min_width, range.min_height), max: (range.max_width, range.max_height) };
    let (w, h) = target_size(width, height, range);
    let geometry = conn.get_geometry(root).map_err(x_err)?.reply().map_err(x_err)?;
    let dpi = dpi.unwrap_or(96);
    if (geometry.width, geometry.height) != (w, h) {
        switch_mode(&conn, root, w, h, dpi)?;
    } else {
        // Same size, maybe another DPI: only the physical size changes.
        conn.randr_set_screen_size(root, w, h, millimetres(w, dpi), millimetres(h, dpi)).map_err(x_err)?;
    }
    set_xft_dpi(&conn, root, dpi)?;
    // A round trip: every request above has been processed when this returns.
    conn.get_input_focus().map_err(x_err)?.reply().map_err(x_err)?;
    Ok((w, h))
}

fn switch_mode(conn: &RustConnection, root: xproto::Window, w: u16, h: u16, dpi: u32) -> Result<(), ResizeError> {
    let res = conn.randr_get_screen_resources_current(root).map_err(x_err)?.reply().map_err(x_err)?;
    // The output that shows the screen: the first connected one with a CRTC.
    let mut chosen = None;
    for &output in &res.outputs {
        let info = conn.randr_get_output_info(output, res.config_timestamp).map_err(x_err)?.reply().map_err(x_err)?;
        let crtc = if info.crtc != 0 { info.crtc } else { info.crtcs.first().copied().unwrap_or(0) };
        if crtc != 0 && info.connection == randr::Connection::CONNECTED {
            chosen = Some((output, crtc, info.modes));
            break;
        }
    }
    let (output, crtc, output_modes) = chosen.ok_or(ResizeError::NoOutput)?;

    let names = mode_names(&res);
    let existing = res.modes.iter().zip(&names).find(|(m, _)| (m.width, m.height) == (w, h)).map(|(m, _)| m.id);
    let mode = match existing {
        Some(id) => id,
        None => {
            let name = mode_name(w, h);
            let info = mode_info(w, h, name.len());
            conn.randr_create_mode(root, info, name.as_bytes()).map_err(x_err)?.reply().map_err(x_err)?.mode
        }
    };
    if !output_modes.contains(&mode) {
        conn.randr_add_output_mode(output, mode).map_err(x_err)?.check().map_err(x_err)?;
    }

    let crtc_info = conn.randr_get_crtc_info(crtc, res.config_timestamp).map_err(x_err)?.reply().map_err(x_err)?;
    let geometry = conn.get_geometry(root).map_err(x_err)?.reply().map_err(x_err)?;
    let (mm_w, mm_h) = (millimetres(w, dpi), millimetres(h, dpi));
    let grows = w > geometry.width || h > geometry.height;
    if grows {
        // The screen must hold the CRTC: grow it first (keeping the larger of both sides).
        let (gw, gh) = (w.max(geometry.width), h.max(geometry.height));
        conn.randr_set_screen_size(root, gw, gh, millimetres(gw, dpi), millimetres(gh, dpi))
            .map_err(x_err)?
            .check()
            .map_err(x_err)?;
    }
    let rotation = if crtc_info.rotation.bits() == 0 { randr::Rotation::ROTATE0 } else { crtc_info.rotation };
    let status = conn
        .randr_set_crtc_config(crtc, res.timestamp, res.config_timestamp, 0, 0, mode, rotation, &[output])
        .map_err(x_err)?
        .reply()
        .map_err(x_err)?
        .status;
    if status != randr::SetConfig::SUCCESS {
        return Err(ResizeError::X(format!("the X server refused the new mode ({status:?})")));
    }
    conn.randr_set_screen_size(root, w, h, mm_w, mm_h).map_err(x_err)?.check().map_err(x_err)?;
    forget_old_modes(conn, output, mode, &res, &names);
    Ok(())
}

/// Mode names, in the order of `res.modes`.
fn mode_names(res: &randr::GetScreenResourcesCurrentReply) -> Vec<Vec<u8>> {
    let mut at = 0usize;
    res.modes
        .iter()
        .map(|m| {
            let len = usize::from(m.name_len);
            let name = res.names.get(at..at + len).unwrap_or(&[]).to_vec();
            at += len;
            name
        })
        .collect()
}

/// Our earlier modes would pile up with every window resize; drop them (best effort).
fn forget_old_modes(
    conn: &RustConnection,
    output: randr::Output,
    current: randr::Mode,
    res: &randr::GetScreenResourcesCurrentReply,
    names: &[Vec<u8>],
) {
    for (m, name) in res.modes.iter().zip(names) {
        if m.id != current && is_our_mode(name) {
            let _ = conn.randr_delete_output_mode(output, m.id);
            let _ = conn.randr_destroy_mode(m.id);
        }
    }
}

/// A mode for a virtual screen: no blanking, a nominal 60 Hz dot clock.
fn mode_info(w: u16, h: u16, name_len: usize) -> ModeInfo {
    ModeInfo {
        id: 0,
        width: w,
        height: h,
        dot_clock: plan::dot_clock(w, h),
        hsync_start: w,
        hsync_end: w,
        htotal: w,
        hskew: 0,
        vsync_start: h,
        vsync_end: h,
        vtotal: h,
        name_len: name_len as u16,
        mode_flags: ModeFlag::from(0u32),
    }
}

fn set_xft_dpi(conn: &RustConnection, root: xproto::Window, dpi: u32) -> Result<(), ResizeError> {
    let atom = conn.intern_atom(false, b"RESOURCE_MANAGER").map_err(x_err)?.reply().map_err(x_err)?.atom;
    let current =
        conn.get_property(false, root, atom, AtomEnum::STRING, 0, 1 << 20).map_err(x_err)?.reply().map_err(x_err)?;
    if current.bytes_after > 0 {
        // Rewriting what was read would cut off the rest (review #29).
        tracing::warn!("the X resources are over 4 MiB; Xft.dpi is left as it is");
        return Ok(());
    }
    let updated = with_xft_dpi(&current.value, dpi);
    if updated != current.value {
        conn.change_property8(PropMode::REPLACE, root, atom, AtomEnum::STRING, &updated).map_err(x_err)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    /// A real Xvfb as Kelpie starts it (large framebuffer, `-noreset`: without it the server
    /// resets, and forgets the new size, as soon as its only client disconnects), resized
    /// right after start.
    #[test]
    fn a_fresh_xvfb_shrinks_and_grows_and_reports_the_new_size() {
        let mut xvfb = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1600x1200x24", "-nolisten", "tcp", "+extension", "RANDR"])
            .args(["-dpi", "96", "-ac", "-noreset"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb is installed");
        let stdout = xvfb.stdout.take().expect("stdout");
        // Killed even when an assertion below fails.
        struct Kill(std::process::Child);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
        let _xvfb = Kill(xvfb);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("display number");
        let display = format!(":{}", line.trim());
        let geometry = || {
            let (conn, screen) = x11rb::connect(Some(&display)).expect("connect");
            let root = conn.setup().roots[screen].root;
            let g = conn.get_geometry(root).expect("request").reply().expect("reply");
            (g.width, g.height)
        };
        let results = [(800, 600), (1280, 720), (1601, 999)].map(|(w, h)| {
            let set = resize(&display, w, h, Some(96));
            (set.ok(), geometry())
        });
        assert_eq!(results[0], (Some((800, 600)), (800, 600)));
        assert_eq!(results[1], (Some((1280, 720)), (1280, 720)), "grows back within the framebuffer");
        assert_eq!(results[2], (Some((1600, 998)), (1600, 998)), "clamped to the maximum and made even");
    }
}

//! Clipboard sync between the X desktop and browsers: UTF-8 text and PNG images, both
//! ways, in chunks over the `input` data channel (`docs/protocol.md`, "Clipboard").
//!
//! | module | job |
//! |---|---|
//! | [`chunks`] | reassembly and splitting of `clip` messages (pure) |
//! | [`formats`] | X targets and text encodings (pure) |
//! | [`pace`] | when a chunk may go to a viewer, when a viewer is given up on (pure) |
//! | [`sender`] | the thread that paces chunks to browsers |
//! | `x11` | the thread that watches and owns the X selections |
//!
//! Only the clipboard of the participant in control reaches X (the room checks); X
//! content goes to the outbox it is given, which the room limits to owners and guests.
//! A browser's paste is never replayed to participants who join later. `--clipboard
//! off` turns all of it off.

pub mod chunks;
pub mod formats;
pub mod pace;
pub mod sender;
mod serving;
mod x11;

use std::sync::{Arc, Mutex};

use chunks::DEFAULT_MAX_BYTES;
use sender::{Audience, Job};

use crate::outbox::Outbox;

use crate::input::protocol::ClipChunk;

/// How clipboard sync runs (from `--clipboard` and `--clipboard-max-bytes`).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub enabled: bool,
    /// Largest content passed either way, in bytes.
    pub max_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self { enabled: true, max_bytes: DEFAULT_MAX_BYTES }
    }
}

/// Tells a browser that clipboard sync is off, so it never reads the local clipboard.
const CLIPBOARD_OFF: &str = r#"{"t":"clipoff"}"#;

/// The clipboard subsystem as the HTTP layer sees it.
pub struct Clipboard {
    sink: Arc<dyn Outbox>,
    running: Option<Running>,
}

struct Running {
    x: x11::XClipboard,
    jobs: std::sync::mpsc::Sender<Job>,
    last: Arc<Mutex<Option<x11::Last>>>,
}

impl Clipboard {
    /// Starts the X and sender threads for `display`, unless `args` turn sync off.
    pub fn start(settings: Settings, display: String, sink: Arc<dyn Outbox>) -> Self {
        if !settings.enabled {
            tracing::info!("clipboard sync is off (--clipboard off)");
            return Self { sink, running: None };
        }
        let jobs = sender::start(sink.clone());
        let last = Arc::new(Mutex::new(None));
        let max_bytes = settings.max_bytes;
        let shared = x11::Shared { max_bytes, last: last.clone(), out: jobs.clone() };
        match x11::XClipboard::start(display, shared) {
            Ok(x) => Self { sink, running: Some(Running { x, jobs, last }) },
            Err(e) => {
                tracing::error!("clipboard: cannot start its thread ({e}); clipboard sync is off");
                Self { sink, running: None }
            }
        }
    }

    pub fn enabled(&self) -> bool {
        self.running.is_some()
    }

    /// A chunk from a controller's browser.
    pub fn from_browser(&self, viewer: u64, chunk: ClipChunk) {
        match &self.running {
            Some(r) => r.x.chunk(viewer, chunk),
            None => tracing::debug!(viewer, "clipboard: sync is off; chunk dropped"),
        }
    }

    /// A viewer's data channel opened: give it the current remote clipboard (or tell it
    /// sync is off).
    pub fn viewer_ready(&self, viewer: u64) {
        let Some(r) = &self.running else {
            self.sink.send(viewer, CLIPBOARD_OFF);
            return;
        };
        let last = r.last.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match last {
            Some(l) if !l.from_browser => {
                let _ = r.jobs.send(Job { clip: l.clip, to: Audience::One(viewer) });
            }
            Some(_) => tracing::debug!(viewer, "clipboard: holds another participant's paste; not replayed"),
            None => {}
        }
    }

    /// A participant left: its unfinished transfer is dropped now rather than aging out.
    pub fn participant_gone(&self, viewer: u64) {
        if let Some(r) = &self.running {
            r.x.gone(viewer);
        }
    }
}

//! Clipboard sync between the X desktop and browsers: UTF-8 text and PNG images, both
//! ways, in chunks over the `input` data channel (`docs/protocol.md`, "Clipboard").
//!
//! | module | job |
//! |---|---|
//! | [`chunks`] | reassembly and splitting of `clip` messages (pure) |
//! | [`formats`] | X targets and text encodings (pure) |
//! | [`sender`] | the thread that paces chunks to browsers |
//! | `x11` | the thread that watches and owns the X selections |
//!
//! Only controllers' clipboard reaches X (`App::handle_control` only sees controllers);
//! X content goes to every viewer. `--clipboard off` turns all of it off.

pub mod chunks;
pub mod formats;
pub mod sender;
mod x11;

use std::sync::{Arc, Mutex};

use chunks::{Clip, DEFAULT_MAX_BYTES};
use sender::{Audience, DataSink, Job};

use crate::input::protocol::ClipChunk;

/// Whether clipboard sync runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ClipboardMode {
    #[value(alias = "true", alias = "yes", alias = "1")]
    On,
    #[value(alias = "false", alias = "no", alias = "0")]
    Off,
}

/// Clipboard flags, flattened into [`crate::config::Config`].
#[derive(clap::Args, Debug, Clone)]
pub struct ClipboardArgs {
    /// Clipboard sync between the remote desktop and browsers (text and PNG images, both
    /// ways). `off` disables it entirely, e.g. for data-loss prevention: nothing is read
    /// from or written to either side's clipboard.
    #[arg(long = "clipboard", env = "KELPIE_CLIPBOARD", value_enum, default_value_t = ClipboardMode::On,
          value_name = "on|off")]
    pub mode: ClipboardMode,

    /// Largest clipboard content passed either way, in bytes; bigger content is dropped
    /// with a log line.
    #[arg(long = "clipboard-max-bytes", env = "KELPIE_CLIPBOARD_MAX_BYTES", default_value_t = DEFAULT_MAX_BYTES as u64,
          value_parser = clap::value_parser!(u64).range(1..=(256 << 20)), value_name = "BYTES")]
    pub max_bytes: u64,
}

impl Default for ClipboardArgs {
    fn default() -> Self {
        Self { mode: ClipboardMode::On, max_bytes: DEFAULT_MAX_BYTES as u64 }
    }
}

/// Tells a browser that clipboard sync is off, so it never reads the local clipboard.
const CLIPBOARD_OFF: &str = r#"{"t":"clipoff"}"#;

/// The clipboard subsystem as the HTTP layer sees it.
pub struct Clipboard {
    sink: Arc<dyn DataSink>,
    running: Option<Running>,
}

struct Running {
    x: x11::XClipboard,
    jobs: std::sync::mpsc::Sender<Job>,
    last: Arc<Mutex<Option<Arc<Clip>>>>,
}

impl Clipboard {
    /// Starts the X and sender threads for `display`, unless `args` turn sync off.
    pub fn start(args: &ClipboardArgs, display: String, sink: Arc<dyn DataSink>) -> Self {
        if args.mode == ClipboardMode::Off {
            tracing::info!("clipboard sync is off (--clipboard off)");
            return Self { sink, running: None };
        }
        let jobs = sender::start(sink.clone());
        let last = Arc::new(Mutex::new(None));
        let max_bytes = usize::try_from(args.max_bytes).unwrap_or(usize::MAX);
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
        if let Some(clip) = last {
            let _ = r.jobs.send(Job { clip, to: Audience::One(viewer) });
        }
    }
}

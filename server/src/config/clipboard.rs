//! Clipboard flags.

use clap::{Args, ValueEnum};

use crate::clipboard::chunks::DEFAULT_MAX_BYTES;
use crate::clipboard::Settings;

/// Whether clipboard sync runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClipboardMode {
    #[value(alias = "true", alias = "yes", alias = "1")]
    On,
    #[value(alias = "false", alias = "no", alias = "0")]
    Off,
}

/// Clipboard flags, flattened into [`super::Config`].
#[derive(Args, Debug, Clone)]
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

impl ClipboardArgs {
    /// What the clipboard subsystem needs of these flags.
    pub fn settings(&self) -> Settings {
        Settings {
            enabled: self.mode == ClipboardMode::On,
            max_bytes: usize::try_from(self.max_bytes).unwrap_or(usize::MAX),
        }
    }
}

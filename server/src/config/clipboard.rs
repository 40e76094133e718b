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
#[command(next_help_heading = "Clipboard")]
pub struct ClipboardArgs {
    /// Clipboard sync between the remote desktop and browsers (text and PNG images, both
    /// ways). `off` disables it entirely, e.g. for data-loss prevention: nothing is read
    /// from or written to either side's clipboard.
    #[arg(long = "clipboard", env = "KELPIE_CLIPBOARD", value_enum, default_value_t = ClipboardMode::On,
          value_name = "on|off")]
    pub mode: ClipboardMode,

    /// Largest clipboard content passed either way (`16M`, `512K` or bytes; at most 256M);
    /// bigger content is dropped with a log line.
    #[arg(long = "clipboard-max-bytes", env = "KELPIE_CLIPBOARD_MAX_BYTES", default_value = "16M",
          value_parser = parse_clipboard_bytes, value_name = "BYTES")]
    pub max_bytes: u64,
}

/// The most `--clipboard-max-bytes` may be: the reassembly buffer is held in memory.
const MAX_CLIPBOARD_BYTES: u64 = 256 << 20;

/// `--clipboard-max-bytes`: a size in the one syntax of every byte option, 1 B … 256 MiB.
pub fn parse_clipboard_bytes(s: &str) -> Result<u64, String> {
    let bytes = super::files::parse_bytes(s)?;
    if !(1..=MAX_CLIPBOARD_BYTES).contains(&bytes) {
        return Err(format!("{s:?}: the clipboard limit must be from 1 byte to 256M"));
    }
    Ok(bytes)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clipboard_limit_takes_the_same_sizes_as_uploads_within_its_bounds() {
        assert_eq!(parse_clipboard_bytes("16M"), Ok(DEFAULT_MAX_BYTES as u64));
        assert_eq!(parse_clipboard_bytes("2000000"), Ok(2_000_000));
        assert_eq!(parse_clipboard_bytes("256MiB"), Ok(MAX_CLIPBOARD_BYTES));
        for bad in ["0", "257M", "1G", "lots"] {
            assert!(parse_clipboard_bytes(bad).is_err(), "{bad}");
        }
    }
}

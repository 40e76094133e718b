//! File-transfer settings: where uploads land, how big they may be, and the off switch.

use std::path::PathBuf;

use clap::Args;

/// Default upload limit: large enough for data sets and installers people carry to a
/// remote desktop, small enough that one upload cannot quietly fill a home directory.
pub const DEFAULT_UPLOAD_MAX_BYTES: u64 = 2 * 1024 * 1024 * 1024;

#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Files")]
pub struct FileArgs {
    /// Folder that browser uploads go into and downloads come from (created if missing).
    /// Default: `$HOME/Desktop` of the user Kelpie runs as, so files show up on the desktop.
    #[arg(long, env = "KELPIE_FILES_DIR", value_name = "PATH")]
    pub files_dir: Option<PathBuf>,

    /// Largest file a browser may upload, in bytes or with a K/M/G suffix (powers of 1024),
    /// e.g. `500M`. Bigger uploads are refused with 413 and nothing is kept.
    #[arg(long, env = "KELPIE_UPLOAD_MAX_BYTES", value_name = "BYTES", value_parser = parse_size,
          default_value = "2G")]
    pub upload_max_bytes: u64,

    /// The most the files folder's files may add up to; an upload that would pass it is
    /// refused (507) before a byte is written. Uploads also always leave 64 MiB of the
    /// disk free. Default: no quota beyond the disk.
    #[arg(long, env = "KELPIE_FILES_QUOTA", value_name = "BYTES", value_parser = parse_size)]
    pub files_quota: Option<u64>,

    /// Turn browser file transfer (upload and download of the files folder) off entirely.
    #[arg(long, env = "KELPIE_NO_FILE_TRANSFER")]
    pub no_file_transfer: bool,
}

impl FileArgs {
    /// The folder to share, or `None` when transfers are off or there is no `$HOME` to
    /// derive the default from (the reason is returned for the log).
    pub fn folder(&self) -> Result<Option<PathBuf>, String> {
        if self.no_file_transfer {
            return Ok(None);
        }
        if let Some(dir) = &self.files_dir {
            return Ok(Some(dir.clone()));
        }
        match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
            Some(home) => Ok(Some(PathBuf::from(home).join("Desktop"))),
            None => Err("$HOME is not set, so there is no default files folder; set --files-dir".into()),
        }
    }
}

/// Parses an upload limit: a size ([`parse_bytes`]) of at least one byte.
pub fn parse_size(s: &str) -> Result<u64, String> {
    match parse_bytes(s)? {
        0 => Err("the upload limit must be at least 1 byte (use --no-file-transfer to turn uploads off)".into()),
        bytes => Ok(bytes),
    }
}

/// Parses `1048576`, `512K`, `500M`, `2G` (binary multiples; an optional trailing `B`/`iB`),
/// the one size syntax of every option that takes bytes.
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let upper = t.to_ascii_uppercase();
    let digits = upper.trim_end_matches("IB").trim_end_matches('B');
    let (number, shift) = match digits.chars().last() {
        Some('K') => (&digits[..digits.len() - 1], 10),
        Some('M') => (&digits[..digits.len() - 1], 20),
        Some('G') => (&digits[..digits.len() - 1], 30),
        Some('T') => (&digits[..digits.len() - 1], 40),
        _ => (digits, 0),
    };
    let n: u64 = number.trim().parse().map_err(|_| format!("{s:?} is not a size like 1048576, 500M or 2G"))?;
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_accept_plain_bytes_and_binary_suffixes() {
        assert_eq!(parse_size("1048576"), Ok(1 << 20));
        assert_eq!(parse_size("512k"), Ok(512 << 10));
        assert_eq!(parse_size("500M"), Ok(500 << 20));
        assert_eq!(parse_size("2GiB"), Ok(2 << 30));
        assert_eq!(parse_size(" 1G "), Ok(1 << 30));
    }

    #[test]
    fn garbage_zero_and_overflowing_sizes_are_refused() {
        for bad in ["", "big", "-1", "1.5G", "0", "99999999999T"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }
}

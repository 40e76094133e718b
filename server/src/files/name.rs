//! Which file names a browser may use: the pure policy, tested without a file system.
//!
//! A name from the network only ever becomes one path component inside the files
//! folder. Anything that could leave that folder (`..`, separators), hide a file (a
//! leading dot), confuse a terminal or a file manager (control and bidi characters), or
//! exceed what Linux file systems store (255 bytes) is refused with a reason the user
//! can act on.

use std::fmt;

/// Longest name Linux file systems store in one directory entry (NAME_MAX).
pub const MAX_NAME_BYTES: usize = 255;

/// A name that passed [`FileName::parse`]: safe to join onto the files folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileName(String);

/// Why a name is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NameError {
    #[error("the file name is empty")]
    Empty,
    #[error("{0:?} is not a file name")]
    DotName(String),
    #[error("file names cannot contain '/' or '\\' (no folders)")]
    Separator,
    #[error("file names cannot contain control characters")]
    Control,
    #[error("file names cannot contain right-to-left override characters (they disguise extensions)")]
    Bidi,
    #[error("names starting with '.' are hidden files; rename the file first")]
    Hidden,
    #[error("the file name is {0} bytes long; the limit is {MAX_NAME_BYTES}")]
    TooLong(usize),
}

/// Unicode bidirectional embeddings, overrides and isolates: `invoice<U+202E>fdp.exe`
/// shows as `invoiceexe.pdf`.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
}

impl FileName {
    /// Checks a name as received (already percent-decoded).
    pub fn parse(name: &str) -> Result<Self, NameError> {
        if name.is_empty() {
            return Err(NameError::Empty);
        }
        if name == "." || name == ".." {
            return Err(NameError::DotName(name.to_string()));
        }
        if name.contains(['/', '\\']) {
            return Err(NameError::Separator);
        }
        // `char::is_control` covers NUL, the C0 and C1 ranges and DEL.
        if name.chars().any(char::is_control) {
            return Err(NameError::Control);
        }
        if name.chars().any(is_bidi_control) {
            return Err(NameError::Bidi);
        }
        if name.starts_with('.') {
            return Err(NameError::Hidden);
        }
        if name.len() > MAX_NAME_BYTES {
            return Err(NameError::TooLong(name.len()));
        }
        Ok(Self(name.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FileName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::{FileName, NameError, MAX_NAME_BYTES};

    fn refused(name: &str) -> NameError {
        FileName::parse(name).expect_err(name)
    }

    #[test]
    fn ordinary_names_are_accepted_unchanged() {
        for good in ["report.pdf", "data set (2).csv", "Übersicht ñ 数据.txt", "a..b", "x.", "~notes", "-rf"] {
            assert_eq!(FileName::parse(good).map(|n| n.to_string()), Ok(good.to_string()));
        }
    }

    #[test]
    fn empty_and_dot_names_are_refused() {
        assert_eq!(refused(""), NameError::Empty);
        assert_eq!(refused("."), NameError::DotName(".".into()));
        assert_eq!(refused(".."), NameError::DotName("..".into()));
    }

    #[test]
    fn path_traversal_and_folders_are_refused() {
        for bad in ["../../etc/passwd", "a/b", "/etc/passwd", "..\\x", "a\\b", "x/"] {
            assert_eq!(refused(bad), NameError::Separator, "{bad}");
        }
    }

    #[test]
    fn control_characters_and_nul_are_refused() {
        for bad in ["a\0b", "line\nbreak", "tab\t", "esc\u{1b}[31m", "del\u{7f}", "c1\u{85}"] {
            assert_eq!(refused(bad), NameError::Control, "{bad:?}");
        }
    }

    #[test]
    fn bidi_overrides_are_refused() {
        assert_eq!(refused("invoice\u{202E}fdp.exe"), NameError::Bidi);
    }

    #[test]
    fn hidden_names_are_refused() {
        for bad in [".hidden", ".bashrc", "...", ".kelpie-upload-1.part"] {
            assert_eq!(refused(bad), NameError::Hidden, "{bad}");
        }
    }

    #[test]
    fn names_are_limited_to_255_bytes_not_characters() {
        assert!(FileName::parse(&"a".repeat(MAX_NAME_BYTES)).is_ok());
        assert_eq!(refused(&"a".repeat(256)), NameError::TooLong(256));
        // 128 two-byte characters: 128 characters, 256 bytes.
        assert_eq!(refused(&"é".repeat(128)), NameError::TooLong(256));
    }
}

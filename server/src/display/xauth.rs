//! The embedded display's access cookie: without it, any local user could connect to the
//! Xvfb (type into the desktop, read its screen and clipboard) whatever Kelpie's own
//! authentication says.
//!
//! One MIT-MAGIC-COOKIE-1 per run, in an Xauthority file only this user can read, inside
//! a directory created for it (never a predictable path another user could pre-create).
//! Xvfb gets it with `-auth`, Kelpie's own connections and the session through
//! `XAUTHORITY`. The entry uses the wildcard family and no display number, so it matches
//! whatever number Xvfb picks (`-displayfd`); both libXau and x11rb honour that.

use std::fs::{DirBuilder, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use ring::rand::SecureRandom as _;

/// Xauthority family matching every address (libXau's FamilyWild).
const FAMILY_WILD: u16 = 0xffff;
const PROTOCOL: &[u8] = b"MIT-MAGIC-COOKIE-1";

#[derive(Debug, thiserror::Error)]
pub enum CookieError {
    #[error("the system random number generator failed")]
    Random,
    #[error("cannot create the X cookie file under {dir}: {why}")]
    Io { dir: PathBuf, why: std::io::Error },
}

/// One Xauthority entry (big-endian lengths, as libXau writes them).
pub fn entry(family: u16, address: &[u8], number: &[u8], name: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = family.to_be_bytes().to_vec();
    for field in [address, number, name, data] {
        out.extend_from_slice(&(field.len() as u16).to_be_bytes());
        out.extend_from_slice(field);
    }
    out
}

/// A wildcard entry for `cookie`: any address, any display number.
pub fn wildcard_entry(cookie: &[u8]) -> Vec<u8> {
    entry(FAMILY_WILD, b"", b"", PROTOCOL, cookie)
}

/// Where a run's private directories go: `$XDG_RUNTIME_DIR` when it is set (private to the
/// user by design), else the temp directory (each new directory is 0700 either way).
pub fn private_base() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from).filter(|d| d.is_dir()).unwrap_or_else(std::env::temp_dir)
}

/// The cookie file of one run; removed (with its directory) when dropped.
#[derive(Debug)]
pub struct XCookie {
    dir: PathBuf,
    path: PathBuf,
}

impl XCookie {
    /// Creates a fresh cookie in a new 0700 directory under `base` (e.g. `$XDG_RUNTIME_DIR`
    /// or the temp directory).
    pub fn create_in(base: &Path) -> Result<Self, CookieError> {
        let rng = ring::rand::SystemRandom::new();
        let mut cookie = [0u8; 16];
        rng.fill(&mut cookie).map_err(|_| CookieError::Random)?;
        let mut tag = [0u8; 6];
        rng.fill(&mut tag).map_err(|_| CookieError::Random)?;
        let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
        let io = |why| CookieError::Io { dir: base.to_path_buf(), why };
        // create (not create_all): fails if anything, a symlink included, is already there.
        let dir = base.join(format!("kelpie-x-{}-{tag}", std::process::id()));
        DirBuilder::new().mode(0o700).create(&dir).map_err(io)?;
        let path = dir.join("Xauthority");
        let written = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| f.write_all(&wildcard_entry(&cookie)));
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(io(e));
        }
        Ok(Self { dir, path })
    }

    /// In `$XDG_RUNTIME_DIR` when it is set (private to the user by design), else in the
    /// temp directory (the new directory is 0700 either way).
    pub fn create() -> Result<Self, CookieError> {
        Self::create_in(&private_base())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for XCookie {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn an_entry_is_family_then_four_length_prefixed_fields() {
        let e = entry(0x0100, b"host", b"1", b"N", &[0xaa, 0xbb]);
        assert_eq!(e, [1, 0, 0, 4, b'h', b'o', b's', b't', 0, 1, b'1', 0, 1, b'N', 0, 2, 0xaa, 0xbb]);
        let w = wildcard_entry(&[7; 16]);
        assert_eq!(&w[..6], &[0xff, 0xff, 0, 0, 0, 0], "wildcard family, no address, no display number");
        assert_eq!(w.len(), 2 + 2 + 2 + 2 + PROTOCOL.len() + 2 + 16);
    }

    #[test]
    fn the_cookie_file_is_private_fresh_and_removed_on_drop() {
        let base = std::env::temp_dir();
        let a = XCookie::create_in(&base).unwrap();
        let b = XCookie::create_in(&base).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(a.path()), 0o600);
        assert_eq!(mode(a.path().parent().unwrap()), 0o700);
        assert_ne!(std::fs::read(a.path()).unwrap(), std::fs::read(b.path()).unwrap(), "a new cookie each time");
        let dir = a.path().parent().unwrap().to_path_buf();
        drop(a);
        assert!(!dir.exists());
    }
}

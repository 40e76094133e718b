//! Whether an upload fits: the per-file limit, the folder's quota and the disk's free
//! space. The decision is pure ([`admit`]); [`measure`] reads the two numbers it needs.
//!
//! Checked before the first byte is written, so an upload that cannot fit is refused with
//! a reason instead of filling the disk (on Kubernetes, filling the pod's `emptyDir` gets
//! the pod evicted with the user's work). An upload without a declared length gets the
//! room left as its limit, so it stops there.

use std::path::Path;

use super::store::human_size;

/// Free space an upload must leave on the disk, for the desktop's own work.
pub const RESERVE: u64 = 64 * 1024 * 1024;

/// Why an upload does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoRoom {
    #[error("the file is larger than this server's upload limit of {}", human_size(*.0))]
    Limit(u64),
    #[error("the files folder may hold {} (--files-quota) and already holds {}; {} are left", human_size(*quota), human_size(*used), human_size(quota.saturating_sub(*used)))]
    Quota { quota: u64, used: u64 },
    #[error("the disk holding the files folder has {} free, and uploads leave {} of it for the desktop", human_size(*free), human_size(RESERVE))]
    Disk { free: u64 },
    /// An upload of undeclared length ran past the room there was when it began.
    #[error("there was room for {} when this upload began (--files-quota or free disk space)", human_size(*.0))]
    Room(u64),
}

/// The most an upload may write now, or why `declared` bytes do not fit.
pub fn admit(declared: Option<u64>, limit: u64, quota: Option<u64>, used: u64, free: u64) -> Result<u64, NoRoom> {
    let by_quota = quota.map(|q| q.saturating_sub(used));
    let by_disk = free.saturating_sub(RESERVE);
    let allowance = limit.min(by_quota.unwrap_or(u64::MAX)).min(by_disk);
    let wanted = declared.unwrap_or(1);
    if wanted <= allowance {
        return Ok(allowance);
    }
    // The tightest bound is the reason given.
    Err(if allowance == by_disk && wanted > by_disk {
        NoRoom::Disk { free }
    } else if by_quota.is_some_and(|q| q == allowance && wanted > q) {
        NoRoom::Quota { quota: quota.unwrap_or(0), used }
    } else {
        NoRoom::Limit(limit)
    })
}

/// Bytes free for an unprivileged user on the file system holding `dir`.
pub fn free_bytes(dir: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "path holds a NUL byte"))?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: a NUL-terminated path and a pointer to a statvfs to fill.
    if unsafe { libc::statvfs(path.as_ptr(), st.as_mut_ptr()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled the struct.
    let st = unsafe { st.assume_init() };
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    const G: u64 = 1 << 30;
    const M: u64 = 1 << 20;

    #[test]
    fn an_upload_that_fits_gets_the_room_left_as_its_limit() {
        assert_eq!(admit(Some(10 * M), 2 * G, None, 0, 100 * G), Ok(2 * G));
        assert_eq!(admit(Some(10 * M), 2 * G, Some(100 * M), 30 * M, 100 * G), Ok(70 * M));
        assert_eq!(admit(None, 2 * G, None, 0, G), Ok(G - RESERVE), "undeclared: stops where the disk would");
    }

    #[test]
    fn the_tightest_bound_is_the_reason() {
        assert_eq!(admit(Some(3 * G), 2 * G, None, 0, 100 * G), Err(NoRoom::Limit(2 * G)));
        assert_eq!(
            admit(Some(80 * M), 2 * G, Some(100 * M), 30 * M, 100 * G),
            Err(NoRoom::Quota { quota: 100 * M, used: 30 * M })
        );
        assert_eq!(admit(Some(G), 2 * G, None, 0, G), Err(NoRoom::Disk { free: G }));
        assert_eq!(admit(None, 2 * G, Some(M), 2 * M, 100 * G), Err(NoRoom::Quota { quota: M, used: 2 * M }));
    }

    #[test]
    fn free_space_of_a_real_folder_is_read() {
        assert!(free_bytes(Path::new("/tmp")).expect("statvfs") > 0);
        assert!(free_bytes(Path::new("/no/such/folder")).is_err());
    }
}

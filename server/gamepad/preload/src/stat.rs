//! `stat` and friends for our device paths: a character device under the input major,
//! present while Kelpie's socket is. Everything else is libc's.
//!
//! On 64-bit glibc `struct stat` and `struct stat64` are the same, so one filler serves
//! every variant (checked at compile time).

use std::ffi::{c_char, c_int, CStr};

use kelpie_gamepad::paths::{Device, INPUT_MAJOR};

use super::{kelpie_present, real};

const _: () = assert!(std::mem::size_of::<libc::stat>() == std::mem::size_of::<libc::stat64>());

/// Whether `path` (NUL-terminated) is a socket now, asked of the real `stat`.
pub fn is_socket(path: &[u8]) -> bool {
    // SAFETY: a zeroed stat buffer and a NUL-terminated path.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        real::stat(path.as_ptr().cast(), &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
    }
}

/// Our device at `path`, when Kelpie is there to serve it.
///
/// # Safety
/// `path` is null or a C string.
unsafe fn ours(path: *const c_char) -> Option<Device> {
    if path.is_null() {
        return None;
    }
    // SAFETY: the caller's C string.
    let dev = Device::from_path(unsafe { CStr::from_ptr(path) }.to_bytes())?;
    kelpie_present().then_some(dev)
}

/// # Safety
/// `buf` points to a `struct stat`.
unsafe fn fill(dev: Device, buf: *mut libc::stat) -> c_int {
    if buf.is_null() {
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = libc::EFAULT };
        return -1;
    }
    // SAFETY: plain data, and the caller's buffer.
    unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        st.st_mode = libc::S_IFCHR | 0o660;
        st.st_rdev = libc::makedev(INPUT_MAJOR, dev.minor());
        st.st_nlink = 1;
        st.st_uid = libc::getuid();
        st.st_gid = libc::getgid();
        st.st_ino = 0x4b50_0000 + u64::from(dev.minor());
        st.st_blksize = 4096;
        let now = libc::time(std::ptr::null_mut());
        st.st_atime = now;
        st.st_mtime = now;
        st.st_ctime = now;
        *buf = st;
    }
    0
}

macro_rules! stat_like {
    ($name:ident, $real:ident) => {
        /// # Safety
        /// As the libc function of this name.
        #[no_mangle]
        pub unsafe extern "C" fn $name(path: *const c_char, buf: *mut libc::stat) -> c_int {
            // SAFETY: the caller's arguments.
            unsafe {
                match ours(path) {
                    Some(dev) => fill(dev, buf),
                    None => real::$real(path, buf),
                }
            }
        }
    };
}
stat_like!(stat, stat);
stat_like!(stat64, stat64);
stat_like!(lstat, lstat);
stat_like!(lstat64, lstat64);

/// The versioned wrappers binaries built against glibc before 2.33 call.
macro_rules! xstat_like {
    ($name:ident, $real:ident) => {
        /// # Safety
        /// As the glibc function of this name.
        #[no_mangle]
        pub unsafe extern "C" fn $name(ver: c_int, path: *const c_char, buf: *mut libc::stat) -> c_int {
            // SAFETY: the caller's arguments.
            unsafe {
                match ours(path) {
                    Some(dev) => fill(dev, buf),
                    None => real::$real(ver, path, buf),
                }
            }
        }
    };
}
xstat_like!(__xstat, xstat);
xstat_like!(__xstat64, xstat64);
xstat_like!(__lxstat, lxstat);
xstat_like!(__lxstat64, lxstat64);

macro_rules! fstatat_like {
    ($name:ident, $real:ident) => {
        /// Only absolute paths can name our devices, whatever `dirfd` is.
        ///
        /// # Safety
        /// As the libc function of this name.
        #[no_mangle]
        pub unsafe extern "C" fn $name(dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int) -> c_int {
            // SAFETY: the caller's arguments.
            unsafe {
                match ours(path) {
                    Some(dev) => fill(dev, buf),
                    None => real::$real(dirfd, path, buf, flags),
                }
            }
        }
    };
}
fstatat_like!(fstatat, fstatat);
fstatat_like!(fstatat64, fstatat64);

/// # Safety
/// As `access(2)`: our devices are readable and writable by this user.
#[no_mangle]
pub unsafe extern "C" fn access(path: *const c_char, mode: c_int) -> c_int {
    // SAFETY: the caller's arguments.
    unsafe {
        match ours(path) {
            Some(_) => 0,
            None => real::access(path, mode),
        }
    }
}

//! libc's own versions of what this library replaces, found with `dlsym(RTLD_NEXT)`
//! once and kept. A symbol that cannot be found fails the call with `ENOSYS`.

use std::ffi::{c_char, c_int, c_ulong, c_void};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The next definition of `name` (NUL-terminated) after this library, cached in `slot`.
fn next(slot: &AtomicUsize, name: &str) -> usize {
    let cached = slot.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    debug_assert!(name.ends_with('\0'));
    // SAFETY: a NUL-terminated name; dlsym is thread-safe.
    let found = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr().cast()) } as usize;
    slot.store(found, Ordering::Relaxed);
    found
}

fn missing() -> c_int {
    // SAFETY: errno is this thread's.
    unsafe { *libc::__errno_location() = libc::ENOSYS };
    -1
}

/// Declares `fn $name(args) -> c_int` calling the next `$sym` with the same arguments.
macro_rules! forward {
    ($(#[$doc:meta])* $name:ident, $sym:literal, ($($arg:ident: $ty:ty),*)) => {
        $(#[$doc])*
        /// # Safety
        /// As the libc function it forwards to.
        pub unsafe fn $name($($arg: $ty),*) -> c_int {
            static SLOT: AtomicUsize = AtomicUsize::new(0);
            match next(&SLOT, concat!($sym, "\0")) {
                0 => missing(),
                // SAFETY: the symbol has this C signature; arguments are the caller's.
                f => unsafe {
                    let f: unsafe extern "C" fn($($ty),*) -> c_int = std::mem::transmute(f);
                    f($($arg),*)
                },
            }
        }
    };
}

forward!(open, "open", (path: *const c_char, flags: c_int, mode: libc::mode_t));
forward!(open64, "open64", (path: *const c_char, flags: c_int, mode: libc::mode_t));
forward!(ioctl, "ioctl", (fd: c_int, request: c_ulong, arg: *mut c_void));
forward!(close, "close", (fd: c_int));
forward!(dup, "dup", (fd: c_int));
forward!(dup2, "dup2", (fd: c_int, new: c_int));
forward!(dup3, "dup3", (fd: c_int, new: c_int, flags: c_int));
forward!(access, "access", (path: *const c_char, mode: c_int));
forward!(stat, "stat", (path: *const c_char, buf: *mut libc::stat));
forward!(stat64, "stat64", (path: *const c_char, buf: *mut libc::stat));
forward!(lstat, "lstat", (path: *const c_char, buf: *mut libc::stat));
forward!(lstat64, "lstat64", (path: *const c_char, buf: *mut libc::stat));
forward!(xstat, "__xstat", (ver: c_int, path: *const c_char, buf: *mut libc::stat));
forward!(xstat64, "__xstat64", (ver: c_int, path: *const c_char, buf: *mut libc::stat));
forward!(lxstat, "__lxstat", (ver: c_int, path: *const c_char, buf: *mut libc::stat));
forward!(lxstat64, "__lxstat64", (ver: c_int, path: *const c_char, buf: *mut libc::stat));
forward!(fstatat, "fstatat", (dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int));
forward!(fstatat64, "fstatat64", (dirfd: c_int, path: *const c_char, buf: *mut libc::stat, flags: c_int));

/// `__open_2` and `__open64_2` (fortified opens without a mode).
/// # Safety
/// As `__open_2`.
pub unsafe fn open_2(sym: &'static str, path: *const c_char, flags: c_int) -> c_int {
    static SLOTS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
    let slot = if sym.starts_with("__open64") { &SLOTS[1] } else { &SLOTS[0] };
    match next(slot, sym) {
        0 => missing(),
        // SAFETY: `int __open_2(const char *, int)`.
        f => unsafe {
            let f: unsafe extern "C" fn(*const c_char, c_int) -> c_int = std::mem::transmute(f);
            f(path, flags)
        },
    }
}

/// `openat` and `openat64`.
/// # Safety
/// As `openat(2)`.
pub unsafe fn openat(sym: &'static str, dirfd: c_int, path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    static SLOTS: [AtomicUsize; 2] = [AtomicUsize::new(0), AtomicUsize::new(0)];
    let slot = if sym.starts_with("openat64") { &SLOTS[1] } else { &SLOTS[0] };
    match next(slot, sym) {
        0 => missing(),
        // SAFETY: `int openat(int, const char *, int, mode_t)`.
        f => unsafe {
            let f: unsafe extern "C" fn(c_int, *const c_char, c_int, libc::mode_t) -> c_int = std::mem::transmute(f);
            f(dirfd, path, flags, mode)
        },
    }
}

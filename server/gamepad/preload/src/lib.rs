//! `libkelpie_gamepad_preload.so`: preloaded into an app (`kelpie-gamepad APP`), it makes
//! `/dev/input/js0…3` and `/dev/input/event1000…1003` exist for that app alone.
//!
//! * `open` of one of those paths connects a Unix socket to Kelpie, says which device it
//!   wants ([`kelpie_gamepad::hello`]) and returns the socket. Kelpie writes the kernel's
//!   own event structs into it, so `read`, `poll`, `select` and `epoll` need nothing from
//!   here. When Kelpie cannot be reached, the real path is tried (a real pad, if any).
//! * `ioctl` on such a descriptor is answered by [`kelpie_gamepad::ioctl::answer`];
//!   anything else goes to libc.
//! * `stat`, `lstat`, `fstatat` and `access` of the paths describe a character device
//!   while Kelpie's socket exists, so that SDL2 and others that look before they open
//!   find one; `close` and `dup*` keep the table of our descriptors right.
//! * Opening `/dev/hidraw*` is reported to Kelpie once (Kelpie's pads are not HID).
//!
//! Nothing here allocates on the `close`/`dup` path or takes a lock: the descriptor table
//! is atomics, safe after `fork` and in signal handlers.

use std::ffi::{c_char, c_int, c_ulong, c_void, CStr};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use kelpie_gamepad::hello;
use kelpie_gamepad::ioctl::{self, Answer};
use kelpie_gamepad::paths::{self, Device, Kind};

mod real;
mod stat;

/// Descriptors tracked: ours are recorded here (0: not ours; 1..: js; 0x11..: evdev).
const MAX_FD: usize = 4096;
static FDS: [AtomicU8; MAX_FD] = [const { AtomicU8::new(0) }; MAX_FD];

fn tag(dev: Device) -> u8 {
    match dev.kind {
        Kind::Joystick => 1 + dev.pad as u8,
        Kind::Evdev => 0x11 + dev.pad as u8,
    }
}

fn lookup(fd: c_int) -> Option<Device> {
    let t = FDS.get(usize::try_from(fd).ok()?)?.load(Ordering::Relaxed);
    match t {
        1..=4 => Some(Device { kind: Kind::Joystick, pad: usize::from(t - 1) }),
        0x11..=0x14 => Some(Device { kind: Kind::Evdev, pad: usize::from(t - 0x11) }),
        _ => None,
    }
}

fn set_tag(fd: c_int, t: u8) {
    if let Some(slot) = usize::try_from(fd).ok().and_then(|i| FDS.get(i)) {
        slot.store(t, Ordering::Relaxed);
    }
}

fn set_errno(e: c_int) {
    // SAFETY: errno is this thread's.
    unsafe { *libc::__errno_location() = e };
}

/// Writes one line to stderr, prefixed, without allocating on failure paths that matter.
fn warn(text: &str) {
    let line = format!("kelpie-gamepad: {text}\n");
    // SAFETY: a plain write of an owned buffer.
    unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

/// Connects a socket to Kelpie at `path`; the descriptor, or why not.
fn connect(path: &[u8], cloexec: bool) -> Result<c_int, c_int> {
    // SAFETY: sockaddr_un is plain data; every libc call is checked.
    unsafe {
        let mut addr: libc::sockaddr_un = std::mem::zeroed();
        addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
        if path.len() >= addr.sun_path.len() {
            return Err(libc::ENAMETOOLONG);
        }
        for (d, s) in addr.sun_path.iter_mut().zip(path) {
            *d = *s as c_char;
        }
        let flags = libc::SOCK_STREAM | if cloexec { libc::SOCK_CLOEXEC } else { 0 };
        let fd = libc::socket(libc::AF_UNIX, flags, 0);
        if fd < 0 {
            return Err(*libc::__errno_location());
        }
        let len = std::mem::size_of::<libc::sa_family_t>() + path.len() + 1;
        if libc::connect(fd, (&raw const addr).cast(), len as libc::socklen_t) != 0 {
            let e = *libc::__errno_location();
            real::close(fd);
            return Err(e);
        }
        Ok(fd)
    }
}

fn write_all(fd: c_int, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        // SAFETY: writes from a live slice.
        let n = unsafe { libc::write(fd, bytes.as_ptr().cast(), bytes.len()) };
        if n <= 0 {
            return false;
        }
        bytes = &bytes[n as usize..];
    }
    true
}

fn socket_path() -> Vec<u8> {
    use std::os::unix::ffi::OsStrExt as _;
    paths::socket_from_env().as_os_str().as_bytes().to_vec()
}

/// Whether Kelpie's socket is there now (what `stat` of a device path depends on).
fn kelpie_present() -> bool {
    let mut path = socket_path();
    path.push(0);
    stat::is_socket(&path)
}

static WARNED: AtomicBool = AtomicBool::new(false);

/// `open` of one of our devices: a connected, greeted socket, or `None` to try the real
/// path instead.
fn open_device(dev: Device, flags: c_int) -> Option<c_int> {
    let path = socket_path();
    let fd = match connect(&path, flags & libc::O_CLOEXEC != 0) {
        Ok(fd) => fd,
        Err(e) => {
            if !WARNED.swap(true, Ordering::Relaxed) {
                let why = std::io::Error::from_raw_os_error(e);
                warn(&format!(
                    "cannot reach Kelpie at {} ({why}): {} is not available; is Kelpie running on this display, \
                     and is KELPIE_GAMEPAD_SOCKET right?",
                    String::from_utf8_lossy(&path),
                    dev.path()
                ));
            }
            return None;
        }
    };
    if usize::try_from(fd).map_or(true, |i| i >= MAX_FD) || !write_all(fd, &hello::open(dev)) {
        // SAFETY: our own descriptor.
        unsafe { real::close(fd) };
        set_errno(libc::EMFILE);
        return Some(-1);
    }
    if flags & libc::O_NONBLOCK != 0 {
        // SAFETY: fcntl on our own descriptor.
        unsafe { libc::fcntl(fd, libc::F_SETFL, libc::O_NONBLOCK) };
    }
    set_tag(fd, tag(dev));
    Some(fd)
}

static REPORTED_HIDRAW: AtomicBool = AtomicBool::new(false);

/// Tells Kelpie (and stderr) once that this app reads hidraw, where our pads are not.
fn report_hidraw(path: &[u8]) {
    if REPORTED_HIDRAW.swap(true, Ordering::Relaxed) {
        return;
    }
    let program = std::env::args_os().next().map(|a| a.to_string_lossy().into_owned()).unwrap_or_default();
    let text = format!(
        "{program} (pid {}) opened {}: Kelpie's gamepads are joystick and evdev devices, not HID, so this app may not see them",
        std::process::id(),
        String::from_utf8_lossy(path)
    );
    warn(&text);
    if let Ok(fd) = connect(&socket_path(), true) {
        write_all(fd, &hello::report(&text));
        // SAFETY: our own descriptor.
        unsafe { real::close(fd) };
    }
}

/// What every `open` variant does with a path before libc sees it.
///
/// # Safety
/// `path` is null or a C string.
unsafe fn intercept(path: *const c_char, flags: c_int) -> Option<c_int> {
    if path.is_null() {
        return None;
    }
    // SAFETY: the caller's C string.
    let bytes = unsafe { CStr::from_ptr(path) }.to_bytes();
    if let Some(dev) = Device::from_path(bytes) {
        return open_device(dev, flags);
    }
    if bytes.starts_with(b"/dev/hidraw") {
        report_hidraw(bytes);
    }
    None
}

/// # Safety
/// As `open(2)`.
#[no_mangle]
pub unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    // SAFETY: forwarded as given.
    unsafe { intercept(path, flags).unwrap_or_else(|| real::open(path, flags, mode)) }
}

/// # Safety
/// As `open64`.
#[no_mangle]
pub unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    // SAFETY: forwarded as given.
    unsafe { intercept(path, flags).unwrap_or_else(|| real::open64(path, flags, mode)) }
}

/// Fortified `open` (`_FORTIFY_SOURCE`), which programs built with it call instead.
///
/// # Safety
/// As `__open_2`.
#[no_mangle]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: forwarded as given.
    unsafe { intercept(path, flags).unwrap_or_else(|| real::open_2("__open_2\0", path, flags)) }
}

/// # Safety
/// As `__open64_2`.
#[no_mangle]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    // SAFETY: forwarded as given.
    unsafe { intercept(path, flags).unwrap_or_else(|| real::open_2("__open64_2\0", path, flags)) }
}

/// # Safety
/// As `openat(2)`. Only absolute paths can name our devices, whatever `dirfd` is.
#[no_mangle]
pub unsafe extern "C" fn openat(dirfd: c_int, path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    // SAFETY: forwarded as given.
    unsafe { intercept(path, flags).unwrap_or_else(|| real::openat("openat\0", dirfd, path, flags, mode)) }
}

/// # Safety
/// As `openat64`.
#[no_mangle]
pub unsafe extern "C" fn openat64(dirfd: c_int, path: *const c_char, flags: c_int, mode: libc::mode_t) -> c_int {
    // SAFETY: forwarded as given.
    unsafe { intercept(path, flags).unwrap_or_else(|| real::openat("openat64\0", dirfd, path, flags, mode)) }
}

/// `ioctl` is variadic in C; its third argument travels in a register like any other on
/// x86-64 and arm64 Linux, so a three-argument definition receives it intact.
///
/// # Safety
/// As `ioctl(2)`.
#[no_mangle]
pub unsafe extern "C" fn ioctl(fd: c_int, request: c_ulong, arg: *mut c_void) -> c_int {
    let Some(dev) = lookup(fd) else {
        // SAFETY: forwarded as given.
        return unsafe { real::ioctl(fd, request, arg) };
    };
    // The kernel reads the request as 32 bits; callers may have sign-extended it.
    match ioctl::answer(dev, request as u32) {
        Answer::Read { bytes, ret } => {
            if arg.is_null() {
                set_errno(libc::EFAULT);
                return -1;
            }
            // SAFETY: the caller's buffer is at least the request's size, which bounds
            // every answer but JSIOCGCORR's, which is joydev's own contract (one js_corr
            // per axis).
            unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), arg.cast::<u8>(), bytes.len()) };
            ret
        }
        Answer::Done(ret) => ret,
        Answer::Fail(e) => {
            set_errno(e);
            -1
        }
        // SAFETY: forwarded as given.
        Answer::Pass => unsafe { real::ioctl(fd, request, arg) },
    }
}

/// # Safety
/// As `close(2)`.
#[no_mangle]
pub unsafe extern "C" fn close(fd: c_int) -> c_int {
    set_tag(fd, 0);
    // SAFETY: forwarded as given.
    unsafe { real::close(fd) }
}

/// # Safety
/// As `dup(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: forwarded as given.
    let new = unsafe { real::dup(fd) };
    if new >= 0 {
        set_tag(new, lookup(fd).map_or(0, tag));
    }
    new
}

/// # Safety
/// As `dup2(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup2(fd: c_int, new: c_int) -> c_int {
    // SAFETY: forwarded as given.
    let r = unsafe { real::dup2(fd, new) };
    if r >= 0 {
        set_tag(r, lookup(fd).map_or(0, tag));
    }
    r
}

/// # Safety
/// As `dup3(2)`.
#[no_mangle]
pub unsafe extern "C" fn dup3(fd: c_int, new: c_int, flags: c_int) -> c_int {
    // SAFETY: forwarded as given.
    let r = unsafe { real::dup3(fd, new, flags) };
    if r >= 0 {
        set_tag(r, lookup(fd).map_or(0, tag));
    }
    r
}

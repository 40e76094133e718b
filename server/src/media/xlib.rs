//! A clear exit when the X server goes away under `ximagesrc`.
//!
//! `ximagesrc` talks to X through Xlib, whose default reaction to a lost connection is a
//! terse "XIO: fatal IO error" and `exit(1)` from inside a GStreamer thread. Xlib cannot
//! continue after that (the handler must not return), so Kelpie replaces the handler with
//! one that says what happened in Kelpie's own log and exits with a distinct status that a
//! supervisor (systemd, Kubernetes) can act on. Our own x11rb-based capture will make this
//! unnecessary.

use std::ffi::{c_int, c_void};

/// Exit status when the X display is lost.
pub const EXIT_X_GONE: i32 = 3;

type IoErrorHandler = unsafe extern "C" fn(*mut c_void) -> c_int;
type SetIoErrorHandler = unsafe extern "C" fn(Option<IoErrorHandler>) -> Option<IoErrorHandler>;

/// Installs the handler in the process's libX11 (loading it if needed). Returns false if
/// libX11 is not available, in which case nothing uses Xlib and nothing needs handling.
pub fn install_io_error_handler() -> bool {
    // SAFETY: dlopen/dlsym with valid NUL-terminated names; the symbol, if found, is
    // libX11's `XSetIOErrorHandler`, whose C signature matches `SetIoErrorHandler`.
    unsafe {
        let lib = libc::dlopen(c"libX11.so.6".as_ptr(), libc::RTLD_NOW | libc::RTLD_GLOBAL);
        if lib.is_null() {
            return false;
        }
        let sym = libc::dlsym(lib, c"XSetIOErrorHandler".as_ptr());
        if sym.is_null() {
            return false;
        }
        let set: SetIoErrorHandler = std::mem::transmute::<*mut c_void, SetIoErrorHandler>(sym);
        set(Some(on_io_error));
    }
    true
}

unsafe extern "C" fn on_io_error(_display: *mut c_void) -> c_int {
    tracing::error!(
        "lost the connection to the X display (the X server exited or was killed); \
         nothing left to capture, Kelpie exits with status {EXIT_X_GONE}"
    );
    exit_now(EXIT_X_GONE)
}

/// Exits without running atexit handlers: when the display died, X, clipboard and
/// GStreamer threads may still be running, and library destructors racing them could turn
/// the promised exit status into a crash.
pub fn exit_now(code: i32) -> ! {
    use std::io::Write as _;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    // SAFETY: _exit ends the process at once; nothing runs after it.
    unsafe { libc::_exit(code) }
}

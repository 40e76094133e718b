//! The X display Kelpie streams: an existing one, or an embedded Xvfb plus a session.
//! The embedded Xvfb admits only clients with this run's cookie ([`xauth`]).

pub mod gl;
pub mod xauth;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use x11rb::connection::Connection;

use crate::child::DiesWithKelpie as _;
use crate::screen::ScreenSize;
pub use xauth::XCookie;

/// Kelpie's secrets: never passed on to the X server or the desktop session, where any
/// program (or `env` typed into a shared terminal) would see them.
pub const SECRET_VARIABLES: [&str; 4] =
    ["KELPIE_BASIC_PASSWORD", "KELPIE_TOKEN_SECRET", "KELPIE_TURN_SECRET", "KELPIE_TURN_PASSWORD"];

/// How long an X server may take to accept connections.
const X_READY_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum DisplayError {
    #[error("cannot connect to X display {display}: {why}. Is the X server running and is DISPLAY/XAUTHORITY right?")]
    Unreachable { display: String, why: String },
    #[error("cannot start Xvfb ({0}). Install it with: apt-get install xvfb")]
    XvfbMissing(std::io::Error),
    #[error("Xvfb did not start: {0}")]
    XvfbFailed(String),
    #[error("cannot start the session command {cmd:?}: {why}")]
    Session { cmd: String, why: String },
    #[error(transparent)]
    Cookie(#[from] xauth::CookieError),
}

/// A display being streamed. Dropping it stops whatever Kelpie started.
pub struct Display {
    pub name: String,
    pub width: u16,
    pub height: u16,
    session: Option<Child>,
    xvfb: Option<Child>,
    /// The embedded display's cookie file, removed when the display goes.
    cookie: Option<XCookie>,
}

impl Display {
    /// Attaches to an existing display.
    pub fn attach(name: &str) -> Result<Self, DisplayError> {
        let (width, height) = screen_size(name)?;
        Ok(Self { name: name.to_owned(), width, height, session: None, xvfb: None, cookie: None })
    }

    /// Starts Xvfb on a free display number and a session on it; `before_session` runs in
    /// between with the display's name (what the session should find ready, such as the
    /// gamepad socket, is made there). Only clients with
    /// `cookie` may connect: Kelpie itself (the caller has pointed `XAUTHORITY` at it, see
    /// [`prepare_embedded`]) and the session.
    ///
    /// Xvfb cannot grow its screen past the size it started with, so it starts at
    /// `max_size` (or `size` if larger) and is shrunk to `size` with RandR before the
    /// session starts; browsers can then resize it anywhere up to the maximum.
    pub fn spawn_embedded(
        size: ScreenSize,
        max_size: ScreenSize,
        session: Option<&str>,
        session_env: &[(&str, String)],
        xvfb_env: &[(&str, String)],
        cookie: XCookie,
        before_session: &mut dyn FnMut(&str),
    ) -> Result<Self, DisplayError> {
        let frame = ScreenSize { width: size.width.max(max_size.width), height: size.height.max(max_size.height) };
        let mut xvfb = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", &format!("{}x24", frame), "-nolisten", "tcp"])
            // -noreset: Xvfb would otherwise reset (and forget a RandR size) whenever its last
            // client disconnects, e.g. between the start-up resize and the session.
            .args(["+extension", "RANDR", "+extension", "DAMAGE", "+extension", "XFIXES", "-dpi", "96", "-noreset"])
            .arg("-auth")
            .arg(cookie.path())
            .env_clear_secrets()
            .env_clear_gl_overrides()
            .envs(xvfb_env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .die_with_kelpie()
            .spawn()
            .map_err(DisplayError::XvfbMissing)?;
        let number = read_display_number(&mut xvfb).inspect_err(|_| {
            let _ = xvfb.kill();
            let _ = xvfb.wait();
        })?;
        let name = format!(":{number}");
        tracing::info!(x_display = %name, %size, "started embedded Xvfb");
        let mut display = Self { name, width: 0, height: 0, session: None, xvfb: Some(xvfb), cookie: None };
        let (mut w, mut h) = wait_until_ready(&display.name)?;
        if (u32::from(w), u32::from(h)) != (size.width, size.height) {
            match crate::screen::resize(&display.name, size.width, size.height, None) {
                Ok(set) => (w, h) = set,
                Err(e) => tracing::warn!("cannot set the embedded display to {size}: {e}; it stays at {w}x{h}"),
            }
        }
        display.width = w;
        display.height = h;
        let cmd = match session {
            Some(c) => c.to_owned(),
            None => default_session(),
        };
        before_session(&display.name);
        display.session = Some(spawn_session(&display.name, &cmd, cookie.path(), session_env)?);
        display.cookie = Some(cookie);
        Ok(display)
    }
}

/// Xvfb writes its display number to fd 1 once it is listening (`-displayfd 1`), which
/// avoids racing other X servers for a free number.
fn read_display_number(xvfb: &mut Child) -> Result<u32, DisplayError> {
    let out = xvfb.stdout.take().ok_or_else(|| DisplayError::XvfbFailed("no stdout".into()))?;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(out).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(X_READY_TIMEOUT)
        .map_err(|_| DisplayError::XvfbFailed("it did not report a display number in time".into()))?;
    line.trim()
        .parse()
        .map_err(|_| DisplayError::XvfbFailed(format!("it exited without a display number (output {line:?})")))
}

fn wait_until_ready(name: &str) -> Result<(u16, u16), DisplayError> {
    let deadline = Instant::now() + X_READY_TIMEOUT;
    loop {
        match screen_size(name) {
            Ok(size) => return Ok(size),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn screen_size(name: &str) -> Result<(u16, u16), DisplayError> {
    let unreachable = |why: String| DisplayError::Unreachable { display: name.to_owned(), why };
    let (conn, screen) = x11rb::connect(Some(name)).map_err(|e| unreachable(e.to_string()))?;
    let s = &conn.setup().roots[screen];
    Ok((s.width_in_pixels, s.height_in_pixels))
}

/// XFCE when installed (what `make run` installs), else a plain xterm.
fn default_session() -> String {
    let has = |cmd: &str| {
        std::env::var_os("PATH").map(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file())).unwrap_or(false)
    };
    if has("startxfce4") {
        if has("dbus-launch") {
            "dbus-launch --exit-with-session startxfce4".into()
        } else {
            "startxfce4".into()
        }
    } else {
        tracing::warn!("XFCE is not installed (apt-get install xfce4); starting an xterm as the session");
        "xterm".into()
    }
}

/// Creates the embedded display's cookie and points this process's `XAUTHORITY` at it, so
/// that every X connection Kelpie makes (x11rb, and Xlib inside GStreamer) presents it.
/// Call before any other thread starts: changing the environment is not thread-safe.
pub fn prepare_embedded() -> Result<XCookie, DisplayError> {
    let cookie = XCookie::create()?;
    std::env::set_var("XAUTHORITY", cookie.path());
    Ok(cookie)
}

/// Xvfb never loads zink, whatever the environment Kelpie was started in ([`gl`]).
trait ClearGlOverrides {
    fn env_clear_gl_overrides(&mut self) -> &mut Self;
}

impl ClearGlOverrides for Command {
    fn env_clear_gl_overrides(&mut self) -> &mut Self {
        for var in gl::ZINK_VARIABLES {
            self.env_remove(var);
        }
        self
    }
}

/// Child processes (the display's, and the embedded PulseAudio) never see Kelpie's
/// secrets, nor the heap tuning Kelpie set for itself ([`crate::heap::own_variables`]).
pub(crate) trait ClearSecrets {
    fn env_clear_secrets(&mut self) -> &mut Self;
}

impl ClearSecrets for Command {
    fn env_clear_secrets(&mut self) -> &mut Self {
        for var in SECRET_VARIABLES.iter().chain(crate::heap::own_variables()) {
            self.env_remove(var);
        }
        self
    }
}

/// `env`: more variables for the session (its sound server).
fn spawn_session(
    display: &str,
    cmd: &str,
    xauthority: &std::path::Path,
    env: &[(&str, String)],
) -> Result<Child, DisplayError> {
    // Desktop sessions are chatty on stderr; keep that out of Kelpie's own log.
    // The user id in the name: /tmp is shared, and another user's log of the same display
    // number would not be writable.
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let log_path = std::env::temp_dir().join(format!("kelpie-session-{uid}-{}.log", display.trim_start_matches(':')));
    let log = match open_session_log(&log_path) {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(log = %log_path.display(), "cannot write the session's log ({e}); its output is discarded");
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/null")
                .map_err(|e| DisplayError::Session { cmd: cmd.to_owned(), why: format!("/dev/null: {e}") })?
        }
    };
    let log_err = log.try_clone().map_err(|e| DisplayError::Session { cmd: cmd.to_owned(), why: e.to_string() })?;
    let shown = display.to_owned();
    tracing::info!(x_display = %shown, session = cmd, log = %log_path.display(), "starting session");
    Command::new("sh")
        .args(["-c", cmd])
        .env("DISPLAY", display)
        .env("XAUTHORITY", xauthority)
        .env_remove("WAYLAND_DISPLAY")
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .env_clear_secrets()
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .die_with_kelpie()
        .spawn()
        .map_err(|e| DisplayError::Session { cmd: cmd.to_owned(), why: e.to_string() })
}

/// A fresh session log at `path` in a shared directory: whatever is there is unlinked
/// (ours from a previous run; in a sticky /tmp nobody else's can be), and the new file is
/// created exclusively, 0600, refusing to follow a link, so nobody can point it elsewhere
/// (review #30).
fn open_session_log(path: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).custom_flags(libc::O_NOFOLLOW).open(path)
}

/// Sends `signal` to the process group led by `child` (spawned with `process_group(0)`).
fn signal_group(child: &Child, signal: i32) {
    let pgid = child.id() as libc::pid_t;
    // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
    unsafe {
        libc::kill(-pgid, signal);
    }
}

/// Ends a child and everything in its process group, politely first.
pub(crate) fn stop_group(child: &mut Child, what: &str) {
    signal_group(child, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            tracing::debug!("{what} stopped");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    signal_group(child, libc::SIGKILL);
    let _ = child.wait();
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(mut s) = self.session.take() {
            stop_group(&mut s, "session");
        }
        if let Some(mut x) = self.xvfb.take() {
            stop_group(&mut x, "Xvfb");
            tracing::info!(x_display = %self.name, "stopped embedded Xvfb");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::open_session_log;

    #[test]
    fn the_session_log_is_new_private_and_never_written_through_a_link() {
        let dir = std::env::temp_dir().join(format!("kelpie-log-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        let path = dir.join("session.log");
        std::fs::write(&path, "old run").unwrap();
        drop(open_session_log(&path).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"", "a previous run's log is replaced");
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);

        // A link planted at the path: the link goes, the file it names is untouched.
        let victim = dir.join("victim");
        std::fs::write(&victim, "keep me").unwrap();
        std::fs::remove_file(&path).unwrap();
        std::os::unix::fs::symlink(&victim, &path).unwrap();
        drop(open_session_log(&path).unwrap());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep me");
        assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

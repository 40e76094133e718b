//! Kelpie's own PulseAudio for the embedded desktop: started before the session (which
//! is pointed at it with `PULSE_SERVER`), restarted if it dies, stopped on exit.
//!
//! It runs as this user, never as a system instance, with its socket, cookie, state and
//! log in a fresh 0700 directory ([`script`](super::script) says why that is enough), so
//! it neither touches nor depends on the user's own sound setup (`~/.config/pulse`).

use std::fs::DirBuilder;
use std::os::unix::fs::DirBuilderExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::script;
use crate::child::DiesWithKelpie as _;
use crate::display::ClearSecrets as _;

/// How long the daemon may take to open its socket.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// Restarts back off from one second up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A daemon that ran this long before dying starts the backoff afresh.
const STABLE_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum PulseError {
    #[error("cannot create PulseAudio's directory {dir}: {why}")]
    Dir { dir: PathBuf, why: std::io::Error },
    #[error("cannot start pulseaudio ({0}); install it with: apt-get install pulseaudio pulseaudio-utils")]
    Missing(std::io::Error),
    #[error("pulseaudio exited at start-up ({status}); its log is {log}")]
    Exited { status: String, log: PathBuf },
    #[error("pulseaudio did not open its socket within {}s; its log is {log}", READY_TIMEOUT.as_secs())]
    NotReady { log: PathBuf },
}

/// The running daemon. Dropping it stops the daemon and removes its directory.
pub struct Daemon {
    dir: PathBuf,
    child: Arc<Mutex<Option<Child>>>,
    stop: Arc<AtomicBool>,
    restarts: Arc<AtomicU32>,
    supervisor: Option<std::thread::JoinHandle<()>>,
}

impl Daemon {
    /// Starts the daemon in a new private directory under `base` and waits until its
    /// socket accepts connections, then watches it: a daemon that dies is started again
    /// (the audio capture reconnects by itself).
    pub fn start_in(base: &Path) -> Result<Self, PulseError> {
        let dir = private_dir(base)?;
        let script_path = dir.join("kelpie.pa");
        let io = |why| PulseError::Dir { dir: dir.clone(), why };
        std::fs::write(&script_path, script::startup_script(&dir)).map_err(io)?;
        let child = match spawn(&dir) {
            Ok(c) => c,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let child = Arc::new(Mutex::new(Some(child)));
        if let Err(e) = wait_ready(&dir, &child) {
            stop_child(&child);
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        tracing::info!(
            server = %script::server_address(&dir),
            log = %dir.join("pulseaudio.log").display(),
            "started embedded PulseAudio"
        );
        let stop = Arc::new(AtomicBool::new(false));
        let restarts = Arc::new(AtomicU32::new(0));
        let supervisor = {
            let (dir, child, stop, restarts) = (dir.clone(), child.clone(), stop.clone(), restarts.clone());
            std::thread::Builder::new()
                .name("kelpie-pulse".into())
                .spawn(move || supervise(&dir, &child, &stop, &restarts))
                .ok()
        };
        Ok(Self { dir, child, stop, restarts, supervisor })
    }

    /// In `$XDG_RUNTIME_DIR` when set (private by design), else the temp directory.
    pub fn start() -> Result<Self, PulseError> {
        Self::start_in(&crate::display::xauth::private_base())
    }

    /// `PULSE_SERVER` for the session and Kelpie's own audio elements.
    pub fn server(&self) -> String {
        script::server_address(&self.dir)
    }

    /// The daemon's process id now (it changes when it is restarted).
    pub fn pid(&self) -> Option<u32> {
        self.child.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(Child::id)
    }

    /// Times the daemon was started again after dying.
    pub fn restarts(&self) -> u32 {
        self.restarts.load(Ordering::Relaxed)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.supervisor.take() {
            let _ = t.join();
        }
        stop_child(&self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
        tracing::info!("stopped embedded PulseAudio");
    }
}

/// A new 0700 directory: `create`, not `create_all`, fails if anything (a symlink
/// included) is already at the path, so no other user can have prepared it.
fn private_dir(base: &Path) -> Result<PathBuf, PulseError> {
    let mut tag = [0u8; 6];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut tag)
        .map_err(|_| PulseError::Dir { dir: base.to_path_buf(), why: std::io::Error::other("no randomness") })?;
    let tag: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    let dir = base.join(format!("kelpie-pulse-{}-{tag}", std::process::id()));
    DirBuilder::new().mode(0o700).create(&dir).map_err(|why| PulseError::Dir { dir: dir.clone(), why })?;
    Ok(dir)
}

fn spawn(dir: &Path) -> Result<Child, PulseError> {
    let log_path = dir.join("pulseaudio.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|why| PulseError::Dir { dir: dir.to_path_buf(), why })?;
    let mut cmd = Command::new("pulseaudio");
    cmd.arg("-n")
        .arg("-F")
        .arg(dir.join("kelpie.pa"))
        .args(["--daemonize=no", "--system=false", "--exit-idle-time=-1", "--use-pid-file=no"])
        .args(["--realtime=no", "--high-priority=no", "--log-target=stderr", "--log-level=notice"])
        // Its cookie, state and runtime files stay in the private directory.
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env("XDG_RUNTIME_DIR", dir)
        .env("PULSE_RUNTIME_PATH", dir)
        .env("PULSE_STATE_PATH", dir.join("state"))
        .env_remove("PULSE_SERVER")
        .env_remove("DISPLAY")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_clear_secrets();
    // Spawned from the main thread, then from the supervisor thread, which stops it
    // before ending (crate::child: the signal follows the spawning thread).
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .process_group(0)
        .die_with_kelpie()
        .spawn()
        .map_err(PulseError::Missing)
}

/// Waits until the socket accepts a connection (or the daemon exits).
fn wait_ready(dir: &Path, child: &Mutex<Option<Child>>) -> Result<(), PulseError> {
    let socket = script::socket_path(dir);
    let log = dir.join("pulseaudio.log");
    let deadline = Instant::now() + READY_TIMEOUT;
    while Instant::now() < deadline {
        if std::os::unix::net::UnixStream::connect(&socket).is_ok() {
            return Ok(());
        }
        if let Some(c) = child.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                return Err(PulseError::Exited { status: status.to_string(), log });
            }
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(PulseError::NotReady { log })
}

/// Restarts the daemon whenever it exits, until `stop`.
fn supervise(dir: &Path, child: &Mutex<Option<Child>>, stop: &AtomicBool, restarts: &AtomicU32) {
    let mut backoff = Duration::from_secs(1);
    let mut started = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(200));
        let exited = {
            let mut guard = child.lock().unwrap_or_else(|e| e.into_inner());
            match guard.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => {
                    guard.take();
                    Some(status.to_string())
                }
                Some(_) => None,
                None => Some("not running".into()),
            }
        };
        let Some(status) = exited else { continue };
        if started.elapsed() > STABLE_AFTER {
            backoff = Duration::from_secs(1);
        }
        tracing::warn!(
            "embedded PulseAudio exited ({status}); starting it again in {} s (log: {})",
            backoff.as_secs(),
            dir.join("pulseaudio.log").display()
        );
        let until = Instant::now() + backoff;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
        }
        if stop.load(Ordering::Relaxed) {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
        match spawn(dir) {
            Ok(c) => {
                *child.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
                match wait_ready(dir, child) {
                    Ok(()) => {
                        restarts.fetch_add(1, Ordering::Relaxed);
                        started = Instant::now();
                        tracing::info!("embedded PulseAudio is running again");
                    }
                    Err(e) => tracing::warn!("embedded PulseAudio did not come back: {e}"),
                }
            }
            Err(e) => tracing::warn!("cannot restart the embedded PulseAudio: {e}"),
        }
    }
}

/// Ends the daemon politely (SIGTERM to its group), then for good after 3 s.
fn stop_child(child: &Mutex<Option<Child>>) {
    if let Some(mut c) = child.lock().unwrap_or_else(|e| e.into_inner()).take() {
        crate::display::stop_group(&mut c, "PulseAudio");
    }
}

//! Gamepads without privileges: the browser's pads, as the controller's page sends them,
//! served to desktop apps through a per-desktop Unix socket that the preload library
//! (`kelpie-gamepad APP`) turns into `/dev/input/js*` and `event*` devices.
//!
//! [`hub`] is the pure core (state, readers, encoding); [`socket`] is the listener; this
//! module ties them together for the room's desk and `/health`.

pub mod hub;
pub mod socket;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use kelpie_gamepad::state::PadState;
use kelpie_gamepad::wire::Stamp;
use kelpie_gamepad::MAX_PADS;

pub use socket::GamepadError;

use crate::input::protocol::PadInput;
use crate::room::Id;

/// Told to the participant in control when an app reports it cannot use the pads.
type Notify = Box<dyn Fn(String) + Send + Sync>;

/// State shared by the room's thread (updates) and the socket's tasks (readers, reports).
pub struct Shared {
    hub: Mutex<hub::Hub>,
    notify: OnceLock<Notify>,
    reports: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, hub::Hub> {
        self.hub.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn report(&self, text: String) {
        self.reports.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("gamepad: {text}");
        if let Some(notify) = self.notify.get() {
            notify(text);
        }
    }
}

/// The wall-clock time events are stamped with (evdev's default clock is CLOCK_REALTIME).
pub fn now() -> Stamp {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Stamp { sec: t.as_secs() as i64, usec: i64::from(t.subsec_micros()) }
}

/// The running gamepad service. Dropping it stops listening and removes the socket.
pub struct Gamepads {
    shared: Arc<Shared>,
    path: PathBuf,
    accept: tokio::task::JoinHandle<()>,
}

impl Gamepads {
    /// Listens at `path`. `private_parent`: the path is Kelpie's default, whose directory
    /// Kelpie creates 0700 and refuses if anyone else could enter it.
    pub fn start(path: PathBuf, private_parent: bool) -> Result<Self, GamepadError> {
        if private_parent {
            if let Some(dir) = path.parent() {
                socket::ensure_private_dir(dir)?;
            }
        }
        let listener = socket::bind(&path)?;
        let shared = Arc::new(Shared { hub: Mutex::default(), notify: OnceLock::new(), reports: AtomicU64::new(0) });
        let accept = tokio::spawn(socket::accept_loop(listener, shared.clone()));
        tracing::info!(socket = %path.display(), "gamepads: apps started with kelpie-gamepad read the controller's pads here");
        Ok(Self { shared, path, accept })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Where reports from apps go (the participant in control); set once.
    pub fn on_report(&self, notify: impl Fn(String) + Send + Sync + 'static) {
        let _ = self.shared.notify.set(Box::new(notify));
    }

    /// A pad message from `from`, who holds control. Returns a notice for its page.
    pub fn apply(&self, from: Id, input: &PadInput) -> Option<String> {
        let mut hub = self.shared.lock();
        match input {
            PadInput::State { pad, buttons, axes } => {
                hub.update(from, usize::from(*pad), PadState::from_browser(buttons, axes), now())
            }
            PadInput::Gone { pad } => {
                hub.disconnect(from, usize::from(*pad), now());
                None
            }
        }
    }

    /// `from` lost control or left: its pads go to rest.
    pub fn release(&self, from: Id) {
        self.shared.lock().release(from, now());
    }

    pub fn readers(&self) -> [usize; MAX_PADS] {
        self.shared.lock().readers()
    }

    pub fn counts(&self) -> hub::Counts {
        self.shared.lock().counts()
    }

    /// Reports from apps that cannot use the pads (static binaries, hidraw).
    pub fn reports(&self) -> u64 {
        self.shared.reports.load(Ordering::Relaxed)
    }
}

impl Drop for Gamepads {
    fn drop(&mut self) {
        self.accept.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

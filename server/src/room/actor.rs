//! The thin shell around [`Room`]: it owns each participant (its session channel and,
//! through the ports, its transport, held input and pointer lock) and carries out the
//! effects of every transition.
//!
//! The state machine sits behind one mutex instead of in a task with a mailbox: a
//! keystroke is checked and queued on the GStreamer thread that received it, with no
//! extra hop. Effects are carried out while the lock is held, and every port call only
//! queues work, so the order in which the desktop sees a participant's input and its
//! departure is the order the room decided them: input authorised before a leave is
//! queued before the release, input after it is refused.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::mpsc::UnboundedSender;

use super::audience::Audience;
use super::ports::Desk;
use super::state::{name, parse_name, Act, Effect, Full, Id, Limits, Room};
pub use crate::auth::Identity;
use crate::auth::Role;
use crate::input::{parse_input, InputEvent};
use crate::signalling::{ControlAction, ServerMessage};
use crate::transport::{InboundHandler, SelfTest, Transports};

struct Inner {
    room: Room,
    /// Each participant's signalling session: room views and notices go there.
    sessions: HashMap<Id, UnboundedSender<ServerMessage>>,
}

/// The room of one desktop, shared by every connection.
pub struct RoomActor {
    inner: Mutex<Inner>,
    desk: Arc<dyn Desk>,
    transports: Arc<dyn Transports>,
    clipboard_audience: Audience,
    next_id: AtomicU64,
    /// Input-channel messages that did not parse (or were oversized): dropped, not refused.
    pub malformed: AtomicU64,
    /// Of those, the gamepad messages (`gp`, `gpoff`).
    pub malformed_gamepad: AtomicU64,
}

/// A slot in the room, taken before the greeting; given back on drop unless it became a
/// participant.
pub struct Reservation {
    room: Arc<RoomActor>,
    pub id: Id,
    joined: bool,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if !self.joined {
            self.room.lock().room.unreserve();
        }
    }
}

impl RoomActor {
    pub fn new(
        limits: Limits,
        desk: Arc<dyn Desk>,
        transports: Arc<dyn Transports>,
        clipboard_audience: Audience,
    ) -> Arc<Self> {
        Arc::new(Self {
            inner: Mutex::new(Inner { room: Room::new(limits), sessions: HashMap::new() }),
            desk,
            transports,
            clipboard_audience,
            next_id: AtomicU64::new(0),
            malformed: AtomicU64::new(0),
            malformed_gamepad: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn transports(&self) -> &Arc<dyn Transports> {
        &self.transports
    }

    /// Participants present now.
    pub fn len(&self) -> usize {
        self.lock().room.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The room's limits (`--max-viewers`, `--framerate`, `--bitrate`): what settings are clamped to.
    pub fn limits(&self) -> Limits {
        self.lock().room.limits()
    }

    /// The id of the participant holding control.
    pub fn controller(&self) -> Option<Id> {
        self.lock().room.controller()
    }

    /// What the room refused so far, by kind, for `/metrics`.
    pub fn refused(&self) -> Vec<(Act, u64)> {
        self.lock().room.refused()
    }

    /// Participants by role, for `/metrics`.
    pub fn roles(&self) -> Vec<(Role, usize)> {
        let inner = self.lock();
        let ids = inner.room.ids();
        Role::ALL.iter().map(|r| (*r, ids.iter().filter(|&&id| inner.room.role_of(id) == Some(*r)).count())).collect()
    }

    /// Takes a slot, or says the room is full.
    pub fn reserve(self: &Arc<Self>) -> Result<Reservation, Full> {
        self.lock().room.reserve()?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        Ok(Reservation { room: self.clone(), id, joined: false })
    }

    /// The reserved connection joins; room views reach it through `session`.
    pub fn join(&self, mut slot: Reservation, who: &Identity, session: UnboundedSender<ServerMessage>) {
        slot.joined = true;
        let id = slot.id;
        let mut inner = self.lock();
        inner.sessions.insert(id, session);
        let effects = inner.room.join(id, &who.user, who.role);
        self.clipboard_audience.set(inner.room.clipboard_audience());
        tracing::info!(participant = id, user = who.user, role = %who.role, "participant joined");
        self.carry_out(&mut inner, effects);
    }

    /// Participant `id` left (or is being removed): everything it holds is released
    /// here. Blocking: it waits for the transport to stop.
    pub fn leave(&self, id: Id) {
        {
            let mut inner = self.lock();
            if inner.room.role_of(id).is_none() {
                return;
            }
            let effects = inner.room.leave(id);
            // Under the lock: nothing this participant sent can be queued after this.
            self.desk.release_input(id);
            self.desk.participant_gone(id);
            inner.sessions.remove(&id);
            self.clipboard_audience.set(inner.room.clipboard_audience());
            self.carry_out(&mut inner, effects);
        }
        self.transports.close(id);
        tracing::info!(participant = id, "participant's transport closed");
    }

    /// Tells whoever holds control `text` (an app's report that it cannot use a gamepad).
    pub fn notify_controller(&self, text: String) {
        let inner = self.lock();
        if let Some(session) = inner.room.controller().and_then(|c| inner.sessions.get(&c)) {
            let _ = session.send(ServerMessage::Notice { text });
        }
    }

    /// A control request from `id`'s signalling session.
    pub fn control(&self, id: Id, action: ControlAction, to: Option<&str>) {
        let target = to.and_then(parse_name);
        let mut inner = self.lock();
        let effects = inner.room.control(id, action, target, Instant::now());
        self.carry_out(&mut inner, effects);
    }

    /// `id`'s input channel opened: the desktop pushes its current state to it.
    pub fn channel_open(&self, id: Id) {
        let inner = self.lock();
        let Some(role) = inner.room.role_of(id) else { return };
        self.desk.cursor_ready(id);
        if role >= Role::Guest {
            self.desk.clipboard_ready(id);
        }
    }

    /// The handler for `id`'s input-channel messages.
    pub fn inbound(self: &Arc<Self>, id: Id) -> InboundHandler {
        let room = Arc::downgrade(self);
        Arc::new(move |text: &str| {
            if let Some(room) = room.upgrade() {
                room.on_inbound(id, text);
            }
        })
    }

    /// One input-channel message from `id`: parsed, checked against the rules, routed.
    pub fn on_inbound(&self, id: Id, text: &str) {
        let event = match parse_input(text) {
            Ok(e) => e,
            Err(e) => {
                self.malformed.fetch_add(1, Ordering::Relaxed);
                if crate::input::protocol::looks_like_gamepad(text) {
                    self.malformed_gamepad.fetch_add(1, Ordering::Relaxed);
                }
                tracing::debug!(participant = id, "input dropped: {e}");
                return;
            }
        };
        if event == InputEvent::KeyframeRequest {
            // Anyone watching may ask for a picture.
            if self.lock().room.role_of(id).is_some() {
                self.transports.request_keyframe();
            }
            return;
        }
        if let InputEvent::Ping(_) | InputEvent::Probe(_) = event {
            // Anyone watching may test their own connection.
            if self.lock().room.role_of(id).is_some() {
                let test = match event {
                    InputEvent::Ping(n) => SelfTest::Ping(n),
                    InputEvent::Probe(bytes) => SelfTest::Probe(bytes),
                    _ => return,
                };
                self.transports.self_test(id, test);
            }
            return;
        }
        let mut inner = self.lock();
        let result = match event {
            InputEvent::Settings { framerate, bitrate_kbps } => {
                inner.room.settings(id, framerate, bitrate_kbps).map(|s| {
                    tracing::info!(participant = id, framerate = ?s.framerate, bitrate_kbps = ?s.bitrate_kbps, "stream settings");
                    self.desk.stream_settings(s.framerate, s.bitrate_kbps);
                    Vec::new()
                })
            }
            InputEvent::PointerLock(on) => inner.room.pointer_lock(id, on),
            InputEvent::Resize { width, height, dpr } => inner.room.authorize(id, Act::Resize).map(|()| {
                self.desk.resize(width, height, dpr);
                Vec::new()
            }),
            InputEvent::Gamepad(pad) => inner.room.authorize_gamepad(id, Instant::now()).map(|()| {
                self.desk.gamepad(id, pad).map(|text| vec![Effect::Notice { to: id, text }]).unwrap_or_default()
            }),
            InputEvent::Clip(chunk) => inner.room.authorize(id, Act::Clipboard).map(|()| {
                self.desk.clipboard(id, chunk);
                Vec::new()
            }),
            other => {
                let chars = match &other {
                    InputEvent::Text(t) => t.chars().count() as u32,
                    _ => 0,
                };
                inner.room.authorize_input(id, chars, Instant::now()).map(|()| {
                self.desk.input(id, other);
                Vec::new()
                })
            },
        };
        // Refusals are counted by the room itself; only their first log line comes back.
        let effects = result.unwrap_or_else(|(_, effects)| effects);
        self.carry_out(&mut inner, effects);
    }

    fn carry_out(&self, inner: &mut Inner, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Announce => {
                    for (id, session) in &inner.sessions {
                        let _ = session.send(inner.room.view_for(*id));
                    }
                }
                Effect::ReleaseInput(id) => self.desk.release_input(id),
                Effect::ShowPointer(on) => self.desk.show_pointer(on),
                Effect::Notice { to, text } => {
                    if let Some(session) = inner.sessions.get(&to) {
                        let _ = session.send(ServerMessage::Notice { text });
                    }
                }
                Effect::ControlMoved { from, to } => {
                    self.transports.control_moved(to);
                    let who = to.and_then(|t| inner.room.user_of(t)).unwrap_or("nobody");
                    tracing::info!(from = from.map(name), to = to.map(name), user = who, "control moved");
                }
                Effect::LogRefusal { id, act, why } => {
                    tracing::info!(
                        participant = id,
                        what = act.as_str(),
                        "refused: {why} (further refusals of this participant are only counted)"
                    );
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "actor_tests.rs"]
mod tests;

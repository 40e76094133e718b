//! The room's rules: who is here, who holds control, what each may do. Pure: no
//! sockets, no threads, no clock (time comes in as `now`), so every conversation is a
//! unit test.
//!
//! Rules:
//! - Exactly one participant holds keyboard and mouse (or nobody). The first owner to
//!   join gets it; a later owner, or the same one reconnecting, does not take it.
//! - Owners take control, or give it to an owner or guest. Guests ask for it; owners
//!   see the request. Viewers never hold it.
//! - When the holder leaves or releases, control goes to the owner present longest
//!   (other than the holder), or to nobody.
//! - Input, clipboard, resize, settings and pointer lock need control; settings are
//!   clamped to the operator's limits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::rate::{self, Bucket};
use crate::auth::Role;
use crate::signalling::{ControlAction, ParticipantView, ServerMessage};

/// A participant's id: the number in its `vN` name.
pub type Id = u64;

/// An unanswered control request is forgotten after this long, so a stale "asks for
/// control" marker does not linger in everyone's list.
pub const REQUEST_TTL: Duration = Duration::from_secs(120);

/// What the operator allows.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `--max-viewers`: participants at once, counting those still being greeted.
    pub max_participants: usize,
    /// `--framerate`: participants may ask for less, never more.
    pub max_framerate: u32,
    /// `--bitrate`: likewise.
    pub max_bitrate_kbps: u32,
}

/// What a participant does on its input channel, as far as the rules care.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Act {
    /// Keys, pointer, wheel, text, release-all.
    Input,
    Clipboard,
    Resize,
    Settings,
    PointerLock,
    /// A control request the role does not allow.
    Control,
    /// Input beyond the participant's rate ([`super::rate`]).
    Rate,
    /// Gamepad state for the desktop's virtual pads.
    Gamepad,
}

impl Act {
    pub const ALL: [Act; 8] = [
        Act::Input,
        Act::Clipboard,
        Act::Resize,
        Act::Settings,
        Act::PointerLock,
        Act::Control,
        Act::Rate,
        Act::Gamepad,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Act::Input => "input",
            Act::Clipboard => "clipboard",
            Act::Resize => "resize",
            Act::Settings => "settings",
            Act::PointerLock => "pointer_lock",
            Act::Control => "control",
            Act::Rate => "rate",
            Act::Gamepad => "gamepad",
        }
    }
}

/// Why the room refused something.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The participant is not (or no longer) in the room: it is being torn down.
    Gone,
    /// It does not hold control.
    NoControl,
    /// Its role never allows this.
    Role(Role),
    /// It sends faster than its input rate allows.
    TooFast,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Gone => f.write_str("the participant has left"),
            Refusal::NoControl => f.write_str("it does not hold control"),
            Refusal::Role(r) => write!(f, "its role ({r}) does not allow it"),
            Refusal::TooFast => f.write_str("it sends input faster than its rate allows"),
        }
    }
}

/// The room is full.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the desktop already has its maximum of {0} participants")]
pub struct Full(pub usize);

/// What the actor must carry out after a transition.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The room changed: send everyone its view ([`Room::view_for`]).
    Announce,
    /// This participant no longer holds control: release what it holds on the desktop.
    ReleaseInput(Id),
    /// Draw the cursor into the video (the holder is in pointer lock), or stop.
    ShowPointer(bool),
    /// A line for one participant's person.
    Notice { to: Id, text: String },
    /// Control moved (for the log).
    ControlMoved { from: Option<Id>, to: Option<Id> },
    /// The first refusal of this participant: log it once (every refusal is counted in
    /// [`Room::refused`]).
    LogRefusal { id: Id, act: Act, why: Refusal },
}

#[derive(Clone, Debug)]
struct Participant {
    user: String,
    role: Role,
    /// Join order: control falls back to the owner present longest.
    seq: u64,
    requested_at: Option<Instant>,
    pointer_locked: bool,
    refusal_logged: bool,
    events: Bucket,
    text: Bucket,
}

/// The room of one desktop.
#[derive(Debug)]
pub struct Room {
    limits: Limits,
    participants: BTreeMap<Id, Participant>,
    /// Slots taken by connections that are being greeted but have not joined yet.
    reserved: usize,
    controller: Option<Id>,
    next_seq: u64,
    pointer_shown: bool,
    /// Refusals so far, by the position of their [`Act`] in [`Act::ALL`].
    refused: [u64; Act::ALL.len()],
}

/// Stream settings after the room's clamps.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub framerate: Option<u32>,
    pub bitrate_kbps: Option<u32>,
}

pub fn name(id: Id) -> String {
    format!("v{id}")
}

/// The id in a `vN` name.
pub fn parse_name(s: &str) -> Option<Id> {
    s.strip_prefix('v')?.parse().ok()
}

impl Room {
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            participants: BTreeMap::new(),
            reserved: 0,
            controller: None,
            next_seq: 0,
            pointer_shown: false,
            refused: [0; Act::ALL.len()],
        }
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Takes a slot for a connection about to be greeted. Counting greeted-but-not-joined
    /// connections makes `--max-viewers` exact under concurrent connects.
    pub fn reserve(&mut self) -> Result<(), Full> {
        if self.participants.len() + self.reserved >= self.limits.max_participants {
            return Err(Full(self.limits.max_participants));
        }
        self.reserved += 1;
        Ok(())
    }

    /// Gives back a slot that never became a participant.
    pub fn unreserve(&mut self) {
        self.reserved = self.reserved.saturating_sub(1);
    }

    pub fn len(&self) -> usize {
        self.participants.len()
    }

    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    pub fn reserved(&self) -> usize {
        self.reserved
    }

    pub fn controller(&self) -> Option<Id> {
        self.controller
    }

    pub fn role_of(&self, id: Id) -> Option<Role> {
        self.participants.get(&id).map(|p| p.role)
    }

    pub fn user_of(&self, id: Id) -> Option<&str> {
        self.participants.get(&id).map(|p| p.user.as_str())
    }

    pub fn ids(&self) -> Vec<Id> {
        self.participants.keys().copied().collect()
    }

    /// `(act, refused so far)` for every kind, for `/metrics`.
    pub fn refused(&self) -> Vec<(Act, u64)> {
        Act::ALL.iter().copied().zip(self.refused).collect()
    }

    /// Participants whose role may have the remote clipboard.
    pub fn clipboard_audience(&self) -> Vec<Id> {
        self.participants.iter().filter(|(_, p)| p.role >= Role::Guest).map(|(id, _)| *id).collect()
    }

    /// A reserved connection becomes participant `id`.
    pub fn join(&mut self, id: Id, user: &str, role: Role) -> Vec<Effect> {
        self.unreserve();
        self.next_seq += 1;
        let p = Participant {
            user: user.to_owned(),
            role,
            seq: self.next_seq,
            requested_at: None,
            pointer_locked: false,
            refusal_logged: false,
            events: Bucket::new(rate::EVENTS),
            text: Bucket::new(rate::TEXT_CHARS),
        };
        self.participants.insert(id, p);
        let mut out = Vec::new();
        if role == Role::Owner && self.controller.is_none() {
            self.move_control(Some(id), &mut out);
        }
        out.push(Effect::Announce);
        out
    }

    /// Participant `id` left: control passes on if it held it.
    pub fn leave(&mut self, id: Id) -> Vec<Effect> {
        let mut out = Vec::new();
        if self.participants.remove(&id).is_none() {
            return out;
        }
        if self.controller == Some(id) {
            // Its input is released by the leave itself; no ReleaseInput for a departed id.
            self.controller = None;
            let next = self.longest_present_owner(None);
            out.push(Effect::ControlMoved { from: Some(id), to: None });
            if let Some(next) = next {
                self.move_control(Some(next), &mut out);
                out.push(Effect::Notice { to: next, text: "you have control".into() });
            }
        }
        self.update_pointer(&mut out);
        out.push(Effect::Announce);
        out
    }

    /// A control request from `id` at `now`.
    pub fn control(&mut self, id: Id, action: ControlAction, to: Option<Id>, now: Instant) -> Vec<Effect> {
        let mut out = self.expire(now);
        let Some(me) = self.participants.get(&id) else { return out };
        let (role, user) = (me.role, me.user.clone());
        match action {
            ControlAction::Request => {
                if !role.may_control() {
                    self.refuse(id, Act::Control, Refusal::Role(role), &mut out);
                    out.push(Effect::Notice { to: id, text: "view-only participants cannot control".into() });
                } else if self.controller == Some(id) {
                } else if role == Role::Owner && self.controller.is_none() {
                    self.move_control(Some(id), &mut out);
                    out.push(Effect::Announce);
                } else {
                    if let Some(p) = self.participants.get_mut(&id) {
                        p.requested_at = Some(now);
                    }
                    for owner in self.owners().into_iter().filter(|&o| o != id) {
                        out.push(Effect::Notice { to: owner, text: format!("{user} asks for control") });
                    }
                    out.push(Effect::Announce);
                }
            }
            ControlAction::Release => {
                if self.controller != Some(id) {
                    out.push(Effect::Notice { to: id, text: "you do not have control".into() });
                } else {
                    let next = self.longest_present_owner(Some(id));
                    self.move_control(next, &mut out);
                    if let Some(next) = next {
                        out.push(Effect::Notice { to: next, text: format!("{user} gave control back to you") });
                    }
                    out.push(Effect::Announce);
                }
            }
            ControlAction::Take => {
                if role != Role::Owner {
                    self.refuse(id, Act::Control, Refusal::Role(role), &mut out);
                    out.push(Effect::Notice { to: id, text: "only owners can take control".into() });
                } else if self.controller != Some(id) {
                    if let Some(old) = self.controller {
                        out.push(Effect::Notice { to: old, text: format!("{user} took control") });
                    }
                    self.move_control(Some(id), &mut out);
                    out.push(Effect::Announce);
                }
            }
            ControlAction::Grant => {
                let target = to.and_then(|t| self.participants.get(&t).map(|p| (t, p.role)));
                if role != Role::Owner {
                    self.refuse(id, Act::Control, Refusal::Role(role), &mut out);
                    out.push(Effect::Notice { to: id, text: "only owners can give control".into() });
                } else {
                    match target {
                        None => out.push(Effect::Notice { to: id, text: "no such participant".into() }),
                        Some((_, r)) if !r.may_control() => {
                            out.push(Effect::Notice { to: id, text: "view-only participants cannot control".into() })
                        }
                        Some((t, _)) if self.controller == Some(t) => {}
                        Some((t, _)) => {
                            if let Some(old) = self.controller.filter(|&o| o != id) {
                                out.push(Effect::Notice {
                                    to: old,
                                    text: format!("{user} gave control to someone else"),
                                });
                            }
                            self.move_control(Some(t), &mut out);
                            out.push(Effect::Notice { to: t, text: format!("{user} gave you control") });
                            out.push(Effect::Announce);
                        }
                    }
                }
            }
        }
        out
    }

    /// Forgets control requests older than [`REQUEST_TTL`].
    pub fn expire(&mut self, now: Instant) -> Vec<Effect> {
        let mut changed = false;
        for p in self.participants.values_mut() {
            if p.requested_at.is_some_and(|t| now.saturating_duration_since(t) >= REQUEST_TTL) {
                p.requested_at = None;
                changed = true;
            }
        }
        if changed {
            vec![Effect::Announce]
        } else {
            Vec::new()
        }
    }

    /// May `id` do `act` now? A refusal is logged once per participant.
    pub fn authorize(&mut self, id: Id, act: Act) -> Result<(), (Refusal, Vec<Effect>)> {
        let Some(p) = self.participants.get(&id) else { return Err((Refusal::Gone, Vec::new())) };
        let why = if act == Act::Clipboard && p.role == Role::Viewer {
            Some(Refusal::Role(p.role))
        } else if self.controller != Some(id) {
            Some(if p.role.may_control() { Refusal::NoControl } else { Refusal::Role(p.role) })
        } else {
            None
        };
        match why {
            None => Ok(()),
            Some(why) => {
                let mut out = Vec::new();
                self.refuse(id, act, why, &mut out);
                Err((why, out))
            }
        }
    }

    /// Input from `id` (one event, carrying `text_chars` characters of text): it must hold
    /// control, and the event must fit its rate buckets.
    pub fn authorize_input(&mut self, id: Id, text_chars: u32, now: Instant) -> Result<(), (Refusal, Vec<Effect>)> {
        self.authorize_paced(id, Act::Input, text_chars, now)
    }

    /// A gamepad message from `id`: like input, from the participant in control and within
    /// the same event bucket (a pad polled at 60 Hz is far below it), counted apart.
    pub fn authorize_gamepad(&mut self, id: Id, now: Instant) -> Result<(), (Refusal, Vec<Effect>)> {
        self.authorize_paced(id, Act::Gamepad, 0, now)
    }

    fn authorize_paced(
        &mut self,
        id: Id,
        act: Act,
        text_chars: u32,
        now: Instant,
    ) -> Result<(), (Refusal, Vec<Effect>)> {
        self.authorize(id, act)?;
        let fits = self.participants.get_mut(&id).is_some_and(|p| {
            // Text is checked first so that a refused txt does not cost an event token.
            (text_chars == 0 || p.text.take(text_chars, now)) && p.events.take(1, now)
        });
        if fits {
            return Ok(());
        }
        let mut out = Vec::new();
        self.refuse(id, Act::Rate, Refusal::TooFast, &mut out);
        Err((Refusal::TooFast, out))
    }

    /// Stream settings from `id`, clamped to the operator's limits.
    pub fn settings(
        &mut self,
        id: Id,
        framerate: Option<u32>,
        bitrate_kbps: Option<u32>,
    ) -> Result<Settings, (Refusal, Vec<Effect>)> {
        self.authorize(id, Act::Settings)?;
        Ok(Settings {
            framerate: framerate.map(|f| f.clamp(1, self.limits.max_framerate)),
            bitrate_kbps: bitrate_kbps.map(|k| k.min(self.limits.max_bitrate_kbps)),
        })
    }

    /// `id` entered or left pointer lock: the cursor is drawn into the video while the
    /// participant in control is locked (its browser hides every cursor).
    pub fn pointer_lock(&mut self, id: Id, on: bool) -> Result<Vec<Effect>, (Refusal, Vec<Effect>)> {
        if !on {
            // Leaving pointer lock is always accepted: it can only turn drawing off.
            let mut out = Vec::new();
            if let Some(p) = self.participants.get_mut(&id) {
                p.pointer_locked = false;
            }
            self.update_pointer(&mut out);
            return Ok(out);
        }
        self.authorize(id, Act::PointerLock)?;
        if let Some(p) = self.participants.get_mut(&id) {
            p.pointer_locked = true;
        }
        let mut out = Vec::new();
        self.update_pointer(&mut out);
        Ok(out)
    }

    /// The `room` message for participant `id`.
    pub fn view_for(&self, id: Id) -> ServerMessage {
        ServerMessage::Room {
            you: name(id),
            control: self.controller.map(name),
            participants: self
                .participants
                .iter()
                .map(|(pid, p)| ParticipantView {
                    id: name(*pid),
                    user: p.user.clone(),
                    role: p.role,
                    control: self.controller == Some(*pid),
                    requesting: p.requested_at.is_some(),
                })
                .collect(),
        }
    }

    fn owners(&self) -> Vec<Id> {
        self.participants.iter().filter(|(_, p)| p.role == Role::Owner).map(|(id, _)| *id).collect()
    }

    fn longest_present_owner(&self, except: Option<Id>) -> Option<Id> {
        self.participants
            .iter()
            .filter(|(id, p)| p.role == Role::Owner && Some(**id) != except)
            .min_by_key(|(_, p)| p.seq)
            .map(|(id, _)| *id)
    }

    fn move_control(&mut self, to: Option<Id>, out: &mut Vec<Effect>) {
        let from = self.controller;
        if from == to {
            return;
        }
        if let Some(old) = from {
            out.push(Effect::ReleaseInput(old));
        }
        self.controller = to;
        if let Some(p) = to.and_then(|t| self.participants.get_mut(&t)) {
            p.requested_at = None;
        }
        out.push(Effect::ControlMoved { from, to });
        self.update_pointer(out);
    }

    fn update_pointer(&mut self, out: &mut Vec<Effect>) {
        let shown = self.controller.and_then(|c| self.participants.get(&c)).is_some_and(|p| p.pointer_locked);
        if shown != self.pointer_shown {
            self.pointer_shown = shown;
            out.push(Effect::ShowPointer(shown));
        }
    }

    /// Counts a refusal of `id`, and asks for a log line the first time it is refused.
    fn refuse(&mut self, id: Id, act: Act, why: Refusal, out: &mut Vec<Effect>) {
        if let Some(i) = Act::ALL.iter().position(|a| *a == act) {
            self.refused[i] += 1;
        }
        if let Some(p) = self.participants.get_mut(&id) {
            if !p.refusal_logged {
                p.refusal_logged = true;
                out.push(Effect::LogRefusal { id, act, why });
            }
        }
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;

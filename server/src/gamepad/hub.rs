//! The desktop's four pads and the apps reading them (pure: time is passed in, readers
//! are [`Sink`]s). The room has already checked that the sender holds control.
//!
//! Every change is encoded once per reading device kind and written, under the caller's
//! lock, to every reader of that pad, so each app sees one participant's changes in the
//! order they were sent. A reader that cannot take a write whole (its app stopped
//! reading, ~8,000 events behind) is dropped rather than let fall out of step: a partial
//! event would misalign every read after it.

use kelpie_gamepad::paths::{Device, Kind};
use kelpie_gamepad::state::PadState;
use kelpie_gamepad::wire::{self, Stamp};
use kelpie_gamepad::MAX_PADS;

use crate::room::Id;

/// Where one reader's events go. `try_send` writes all of `bytes` or reports failure.
pub trait Sink: Send {
    fn try_send(&mut self, bytes: &[u8]) -> bool;
}

pub type ReaderId = u64;

struct Reader {
    id: ReaderId,
    device: Device,
    sink: Box<dyn Sink>,
}

#[derive(Default)]
struct Slot {
    state: PadState,
    /// The participant whose page drives this pad now.
    owner: Option<Id>,
    /// Whether that participant was told that no app reads the pad.
    told_unread: bool,
}

/// What the hub counted, for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Pad updates applied (each may change several buttons and axes).
    pub updates: u64,
    /// Readers dropped because they fell too far behind.
    pub dropped_readers: u64,
}

#[derive(Default)]
pub struct Hub {
    pads: [Slot; MAX_PADS],
    readers: Vec<Reader>,
    next_reader: ReaderId,
    counts: Counts,
}

/// Told to the page the first time it drives a pad no app has open.
pub fn unread_notice(pad: usize) -> String {
    format!(
        "Gamepad {} reaches no app yet: in the desktop, start the app with `kelpie-gamepad APP` \
         (docs/gamepads.md). Statically linked apps and apps that read hidraw cannot see it.",
        pad + 1
    )
}

impl Hub {
    /// Participant `from` set pad `pad` to `next`. Returns a notice for `from` when no
    /// app reads that pad (once, until the pad is let go).
    pub fn update(&mut self, from: Id, pad: usize, next: PadState, at: Stamp) -> Option<String> {
        let slot = self.pads.get_mut(pad)?;
        if slot.owner != Some(from) {
            slot.owner = Some(from);
            slot.told_unread = false;
        }
        self.counts.updates += 1;
        self.set(pad, next, at);
        let unread = !self.readers.iter().any(|r| r.device.pad == pad);
        let slot = &mut self.pads[pad];
        if unread && !slot.told_unread {
            slot.told_unread = true;
            return Some(unread_notice(pad));
        }
        None
    }

    /// `from`'s page lost pad `pad` (unplugged, or the tab gave it up): it goes to rest.
    pub fn disconnect(&mut self, from: Id, pad: usize, at: Stamp) {
        if self.pads.get(pad).is_some_and(|s| s.owner == Some(from)) {
            self.set(pad, PadState::default(), at);
            self.pads[pad].owner = None;
            self.pads[pad].told_unread = false;
        }
    }

    /// `from` lost control or left: every pad it drove goes to rest, as keys are released.
    pub fn release(&mut self, from: Id, at: Stamp) {
        for pad in 0..MAX_PADS {
            self.disconnect(from, pad, at);
        }
    }

    /// An app opened `device`: it gets the pad's state now (joydev's start-up events, or
    /// evdev events from rest) and every change after.
    pub fn add_reader(&mut self, device: Device, mut sink: Box<dyn Sink>, at: Stamp) -> Option<ReaderId> {
        let state = &self.pads.get(device.pad)?.state;
        let first = match device.kind {
            Kind::Joystick => wire::encode(Kind::Joystick, at, &state.all(), true),
            Kind::Evdev => wire::encode(Kind::Evdev, at, &PadState::default().changes_to(state), false),
        };
        if !first.is_empty() && !sink.try_send(&first) {
            self.counts.dropped_readers += 1;
            return None;
        }
        self.next_reader += 1;
        let id = self.next_reader;
        self.readers.push(Reader { id, device, sink });
        Some(id)
    }

    pub fn remove_reader(&mut self, id: ReaderId) {
        self.readers.retain(|r| r.id != id);
    }

    /// Readers of each pad now.
    pub fn readers(&self) -> [usize; MAX_PADS] {
        let mut n = [0; MAX_PADS];
        for r in &self.readers {
            n[r.device.pad] += 1;
        }
        n
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    pub fn state(&self, pad: usize) -> Option<&PadState> {
        self.pads.get(pad).map(|s| &s.state)
    }

    fn set(&mut self, pad: usize, next: PadState, at: Stamp) {
        let changes = self.pads[pad].state.changes_to(&next);
        self.pads[pad].state = next;
        if changes.is_empty() {
            return;
        }
        let js = wire::encode(Kind::Joystick, at, &changes, false);
        let ev = wire::encode(Kind::Evdev, at, &changes, false);
        let before = self.readers.len();
        self.readers.retain_mut(|r| {
            if r.device.pad != pad {
                return true;
            }
            let bytes = if r.device.kind == Kind::Joystick { &js } else { &ev };
            r.sink.try_send(bytes)
        });
        self.counts.dropped_readers += (before - self.readers.len()) as u64;
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;

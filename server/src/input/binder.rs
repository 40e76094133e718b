//! Temporary keycodes for keysyms the X keymap lacks.
//!
//! The browser sends what the user meant (`€`, `日`, `ñ` on a US-mapped server); X can only
//! type keysyms that some keycode carries. Selkies drops such keys; we bind the keysym to a
//! spare (empty) keycode just before pressing it and put the keycode back to empty once it
//! has been idle for a while, so the keymap ends as it began.
//!
//! Why idle time and round robin instead of "bind, press, unbind": X clients translate a
//! keycode with the keymap they hold when they *read* the event, after a MappingNotify. If
//! we rebind the keycode before a slow client has read the key press, it sees the new
//! keysym (the classic xdotool bug). Cycling through the least recently used spare and
//! restoring only after [`IDLE_RESTORE`] gives every client time to catch up.
//!
//! This module is pure: the injector applies its decisions with `ChangeKeyboardMapping`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A temporary binding idle this long is undone.
pub const IDLE_RESTORE: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Binding {
    keysym: u32,
    last_used: Instant,
    /// Presses not yet released: a held key keeps its keycode.
    held: u32,
}

/// What to do for a keysym the keymap lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bound {
    pub keycode: u8,
    /// The keycode must be (re)mapped to the keysym before pressing it.
    pub remap: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BindError {
    #[error("no spare keycode to bind keysym {0:#x} to (all are held or the keymap is full)")]
    NoSpare(u32),
}

/// The spare keycodes and what is temporarily bound to them.
#[derive(Debug, Default, Clone)]
pub struct KeycodeBinder {
    /// Keycodes with no keysyms in the real keymap, in the order they are handed out.
    spares: Vec<u8>,
    bound: HashMap<u8, Binding>,
}

impl KeycodeBinder {
    pub fn new(spares: Vec<u8>) -> Self {
        Self { spares, bound: HashMap::new() }
    }

    /// Keycodes this binder may use; called again when the keymap changes under us.
    /// Bindings on keycodes that are no longer spare are forgotten (someone else owns
    /// them now, and restoring them would clobber that).
    pub fn set_spares(&mut self, spares: Vec<u8>) {
        self.bound.retain(|kc, _| spares.contains(kc));
        self.spares = spares;
    }

    pub fn is_bound(&self, keycode: u8) -> bool {
        self.bound.contains_key(&keycode)
    }

    pub fn spare_count(&self) -> usize {
        self.spares.len()
    }

    /// A keycode that types `keysym`, for a key press at `now`.
    pub fn press(&mut self, keysym: u32, now: Instant) -> Result<Bound, BindError> {
        if let Some((&keycode, b)) = self.bound.iter_mut().find(|(_, b)| b.keysym == keysym) {
            b.last_used = now;
            b.held += 1;
            return Ok(Bound { keycode, remap: false });
        }
        // An unused spare first, else the least recently used binding that is not held.
        let free = self.spares.iter().copied().find(|kc| !self.bound.contains_key(kc));
        let keycode = match free {
            Some(kc) => kc,
            None => self
                .bound
                .iter()
                .filter(|(_, b)| b.held == 0)
                .min_by_key(|(kc, b)| (b.last_used, **kc))
                .map(|(&kc, _)| kc)
                .ok_or(BindError::NoSpare(keysym))?,
        };
        self.bound.insert(keycode, Binding { keysym, last_used: now, held: 1 });
        Ok(Bound { keycode, remap: true })
    }

    /// The key on `keycode` was released at `now`.
    pub fn release(&mut self, keycode: u8, now: Instant) {
        if let Some(b) = self.bound.get_mut(&keycode) {
            b.held = b.held.saturating_sub(1);
            b.last_used = now;
        }
    }

    /// Keycodes whose binding has been idle for [`IDLE_RESTORE`]: the caller maps them
    /// back to nothing. They are forgotten here.
    pub fn expire(&mut self, now: Instant) -> Vec<u8> {
        let mut due: Vec<u8> = self
            .bound
            .iter()
            .filter(|(_, b)| b.held == 0 && now.duration_since(b.last_used) >= IDLE_RESTORE)
            .map(|(&kc, _)| kc)
            .collect();
        due.sort_unstable();
        for kc in &due {
            self.bound.remove(kc);
        }
        due
    }

    /// Every bound keycode, for a full restore at shutdown or when X goes away.
    pub fn drain(&mut self) -> Vec<u8> {
        let mut all: Vec<u8> = self.bound.drain().map(|(kc, _)| kc).collect();
        all.sort_unstable();
        all
    }
}

/// Keycodes with no keysym at all in a `GetKeyboardMapping` reply.
pub fn spare_keycodes(first_keycode: u8, per_keycode: u8, keysyms: &[u32]) -> Vec<u8> {
    let per = usize::from(per_keycode.max(1));
    keysyms
        .chunks(per)
        .enumerate()
        .filter(|(_, row)| row.iter().all(|&k| k == 0))
        .filter_map(|(i, _)| u8::try_from(usize::from(first_keycode) + i).ok())
        // Keycodes under 8 do not exist in X; be safe with odd replies.
        .filter(|&kc| kc >= 8)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn first_press_binds_a_spare_and_asks_for_a_remap() {
        let mut b = KeycodeBinder::new(vec![200, 201]);
        assert_eq!(b.press(0x20ac, t0()), Ok(Bound { keycode: 200, remap: true }));
    }

    #[test]
    fn the_same_keysym_reuses_its_keycode_without_remapping() {
        let now = t0();
        let mut b = KeycodeBinder::new(vec![200, 201]);
        b.press(0x20ac, now).unwrap();
        b.release(200, now);
        assert_eq!(b.press(0x20ac, now), Ok(Bound { keycode: 200, remap: false }));
    }

    #[test]
    fn different_keysyms_get_different_keycodes_while_spares_last() {
        let now = t0();
        let mut b = KeycodeBinder::new(vec![200, 201, 202]);
        let k1 = b.press(0x10065e5, now).unwrap().keycode;
        b.release(k1, now);
        let k2 = b.press(0x1006728, now).unwrap().keycode;
        assert_ne!(k1, k2);
    }

    #[test]
    fn when_spares_run_out_the_least_recently_used_idle_binding_is_reused() {
        let now = t0();
        let mut b = KeycodeBinder::new(vec![200, 201]);
        b.press(1, now).unwrap();
        b.release(200, now);
        b.press(2, now + Duration::from_millis(10)).unwrap();
        b.release(201, now + Duration::from_millis(10));
        assert_eq!(b.press(3, now + Duration::from_millis(20)), Ok(Bound { keycode: 200, remap: true }));
    }

    #[test]
    fn held_keys_are_never_taken_away() {
        let now = t0();
        let mut b = KeycodeBinder::new(vec![200]);
        b.press(1, now).unwrap();
        assert_eq!(b.press(2, now), Err(BindError::NoSpare(2)));
    }

    #[test]
    fn idle_bindings_expire_and_held_ones_do_not() {
        let now = t0();
        let mut b = KeycodeBinder::new(vec![200, 201]);
        b.press(1, now).unwrap();
        b.release(200, now);
        b.press(2, now).unwrap(); // still held
        assert_eq!(b.expire(now + Duration::from_millis(500)), Vec::<u8>::new());
        assert_eq!(b.expire(now + IDLE_RESTORE), vec![200]);
        assert!(!b.is_bound(200));
        assert!(b.is_bound(201));
    }

    #[test]
    fn a_keymap_change_drops_bindings_on_keycodes_that_are_no_longer_spare() {
        let now = t0();
        let mut b = KeycodeBinder::new(vec![200, 201]);
        b.press(1, now).unwrap();
        b.set_spares(vec![201]);
        assert!(!b.is_bound(200));
        assert_eq!(b.press(1, now), Ok(Bound { keycode: 201, remap: true }));
    }

    #[test]
    fn spare_keycodes_are_the_empty_rows() {
        // keycodes 8, 9, 10 with two columns: 9 is empty.
        let syms = [0x61, 0x41, 0, 0, 0x62, 0];
        assert_eq!(spare_keycodes(8, 2, &syms), vec![9]);
    }
}

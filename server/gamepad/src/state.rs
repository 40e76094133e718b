//! A browser pad's state, mapped onto the virtual pad ([`crate::layout`]), and the
//! changes from one state to the next: what the server turns into kernel events.
//!
//! The page sends the W3C "standard" layout: buttons 0–3 A B X Y, 4–5 bumpers, 6–7 analog
//! triggers, 8 back, 9 start, 10–11 stick clicks, 12–15 d-pad up/down/left/right, 16 guide;
//! axes 0–1 left stick, 2–3 right stick, down and right positive (as in evdev). Pads the
//! browser does not map are sent in the same positions, which is the best guess there is.

use crate::layout::{AXES, BUTTONS};

/// Button values from the page: 0 (released) to 255 (fully pressed).
pub const BUTTON_MAX: u16 = 255;
/// Axis values from the page: −32767 to 32767.
pub const AXIS_MAX: i32 = 32767;
/// A page may send at most this many buttons and axes (real pads have up to ~20 buttons).
pub const MAX_BROWSER_BUTTONS: usize = 32;
pub const MAX_BROWSER_AXES: usize = 16;
/// A digital button counts as pressed from half way (the Gamepad API's own threshold).
const PRESSED_FROM: u16 = 128;

/// Indices in the standard layout.
mod std_index {
    pub const LT: usize = 6;
    pub const RT: usize = 7;
    pub const UP: usize = 12;
    pub const DOWN: usize = 13;
    pub const LEFT: usize = 14;
    pub const RIGHT: usize = 15;
}

/// Standard-layout button feeding each of [`BUTTONS`].
const BUTTON_SOURCES: [usize; 11] = [0, 1, 2, 3, 4, 5, 8, 9, 16, 10, 11];

/// The virtual pad's state: one entry per [`BUTTONS`] and [`AXES`] entry, in evdev units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PadState {
    pub buttons: [bool; BUTTONS.len()],
    pub axes: [i32; AXES.len()],
}

impl Default for PadState {
    fn default() -> Self {
        Self { buttons: [false; BUTTONS.len()], axes: AXES.map(|a| a.rest()) }
    }
}

/// One thing that changed, by its index in [`BUTTONS`] or [`AXES`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Change {
    Button { index: u8, pressed: bool },
    Axis { index: u8, value: i32 },
}

impl PadState {
    /// The virtual pad as the browser pad's standard-layout `buttons` and `axes` set it
    /// (values already validated to 0..=255 and −32767..=32767; missing ones are at rest).
    pub fn from_browser(buttons: &[u16], axes: &[i32]) -> Self {
        let b = |i: usize| buttons.get(i).copied().unwrap_or(0).min(BUTTON_MAX);
        let a = |i: usize| axes.get(i).copied().unwrap_or(0).clamp(-AXIS_MAX, AXIS_MAX);
        let pressed = |i: usize| b(i) >= PRESSED_FROM;
        let hat = |neg: usize, pos: usize| i32::from(pressed(pos)) - i32::from(pressed(neg));
        Self {
            buttons: BUTTON_SOURCES.map(pressed),
            axes: [
                a(0),
                a(1),
                i32::from(b(std_index::LT)),
                a(2),
                a(3),
                i32::from(b(std_index::RT)),
                hat(std_index::LEFT, std_index::RIGHT),
                hat(std_index::UP, std_index::DOWN),
            ],
        }
    }

    /// What differs from `self` in `next`: buttons first, then axes, each in layout order.
    pub fn changes_to(&self, next: &PadState) -> Vec<Change> {
        let buttons = (0..BUTTONS.len())
            .filter(|&i| self.buttons[i] != next.buttons[i])
            .map(|i| Change::Button { index: i as u8, pressed: next.buttons[i] });
        let axes = (0..AXES.len())
            .filter(|&i| self.axes[i] != next.axes[i])
            .map(|i| Change::Axis { index: i as u8, value: next.axes[i] });
        buttons.chain(axes).collect()
    }

    /// Everything, as changes from nothing: what joydev's start-up events carry.
    pub fn all(&self) -> Vec<Change> {
        let buttons = (0..BUTTONS.len()).map(|i| Change::Button { index: i as u8, pressed: self.buttons[i] });
        let axes = (0..AXES.len()).map(|i| Change::Axis { index: i as u8, value: self.axes[i] });
        buttons.chain(axes).collect()
    }

    pub fn is_at_rest(&self) -> bool {
        *self == PadState::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn standard(pressed: &[usize], analog: &[(usize, u16)], axes: [i32; 4]) -> PadState {
        let mut b = [0u16; 17];
        for &i in pressed {
            b[i] = 255;
        }
        for &(i, v) in analog {
            b[i] = v;
        }
        PadState::from_browser(&b, &axes)
    }

    #[test]
    fn standard_buttons_land_on_the_xbox_layout() {
        // A, start and guide → BTN_A, BTN_START, BTN_MODE.
        let s = standard(&[0, 9, 16], &[], [0; 4]);
        assert_eq!(s.buttons, [true, false, false, false, false, false, false, true, true, false, false]);
        // The stick clicks are buttons 10 and 11 in the browser, THUMBL/THUMBR here.
        let s = standard(&[10, 11], &[], [0; 4]);
        assert_eq!(&s.buttons[9..], &[true, true]);
    }

    #[test]
    fn triggers_are_axes_and_the_dpad_is_a_hat() {
        let s = standard(&[12, 15], &[(6, 200), (7, 30)], [0; 4]);
        assert_eq!(s.axes[2], 200, "left trigger on ABS_Z");
        assert_eq!(s.axes[5], 30, "right trigger on ABS_RZ");
        assert_eq!((s.axes[6], s.axes[7]), (1, -1), "right and up");
        // Both directions at once cancel, as a hat cannot point two ways.
        let s = standard(&[14, 15], &[], [0; 4]);
        assert_eq!(s.axes[6], 0);
    }

    #[test]
    fn sticks_keep_their_sign_and_are_clamped() {
        let s = PadState::from_browser(&[], &[-32767, 32767, 100_000, -5]);
        assert_eq!([s.axes[0], s.axes[1], s.axes[3], s.axes[4]], [-32767, 32767, 32767, -5]);
    }

    #[test]
    fn a_half_pressed_button_is_pressed_from_128() {
        assert!(!standard(&[], &[(0, 127)], [0; 4]).buttons[0]);
        assert!(standard(&[], &[(0, 128)], [0; 4]).buttons[0]);
    }

    #[test]
    fn changes_come_buttons_first_in_layout_order() {
        let a = PadState::default();
        let b = standard(&[1, 0], &[], [0, 500, 0, 0]);
        assert_eq!(
            a.changes_to(&b),
            vec![
                Change::Button { index: 0, pressed: true },
                Change::Button { index: 1, pressed: true },
                Change::Axis { index: 1, value: 500 },
            ]
        );
        assert!(b.changes_to(&b).is_empty());
        assert_eq!(b.changes_to(&a).len(), 3);
    }

    #[test]
    fn missing_entries_are_at_rest() {
        assert!(PadState::from_browser(&[], &[]).is_at_rest());
        assert_eq!(PadState::default().all().len(), 19);
    }
}

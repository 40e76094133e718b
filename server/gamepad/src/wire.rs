//! The kernel's event structs, byte for byte, in this machine's byte order: what a read
//! of a real `/dev/input/js*` or `/dev/input/event*` returns.

use crate::layout::{AXES, BUTTONS, EV_ABS, EV_KEY, EV_SYN, SYN_REPORT};
use crate::paths::Kind;
use crate::state::Change;

/// `struct js_event` (linux/joystick.h): time (ms), value, type, number.
pub const JS_EVENT_SIZE: usize = 8;
pub const JS_EVENT_BUTTON: u8 = 0x01;
pub const JS_EVENT_AXIS: u8 = 0x02;
/// Set on the events joydev sends when a device is opened, describing its state then.
pub const JS_EVENT_INIT: u8 = 0x80;

/// `struct input_event` on 64-bit Linux: a `struct timeval` of two longs, then type,
/// code and value.
pub const INPUT_EVENT_SIZE: usize = 24;

/// When an event happened: milliseconds for the joystick API, a timeval for evdev.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub sec: i64,
    pub usec: i64,
}

impl Stamp {
    pub fn millis(self) -> u32 {
        (self.sec.wrapping_mul(1000).wrapping_add(self.usec / 1000)) as u32
    }
}

pub fn js_event(time_ms: u32, value: i16, kind: u8, number: u8) -> [u8; JS_EVENT_SIZE] {
    let mut out = [0u8; JS_EVENT_SIZE];
    out[0..4].copy_from_slice(&time_ms.to_ne_bytes());
    out[4..6].copy_from_slice(&value.to_ne_bytes());
    out[6] = kind;
    out[7] = number;
    out
}

pub fn input_event(at: Stamp, kind: u16, code: u16, value: i32) -> [u8; INPUT_EVENT_SIZE] {
    let mut out = [0u8; INPUT_EVENT_SIZE];
    out[0..8].copy_from_slice(&at.sec.to_ne_bytes());
    out[8..16].copy_from_slice(&at.usec.to_ne_bytes());
    out[16..18].copy_from_slice(&kind.to_ne_bytes());
    out[18..20].copy_from_slice(&code.to_ne_bytes());
    out[20..24].copy_from_slice(&value.to_ne_bytes());
    out
}

/// `changes` as one device kind reads them: a js_event each, or the evdev events ending
/// in one `SYN_REPORT` (nothing at all for no changes). `init` marks joystick start-up
/// events.
pub fn encode(kind: Kind, at: Stamp, changes: &[Change], init: bool) -> Vec<u8> {
    let mut out = Vec::new();
    match kind {
        Kind::Joystick => {
            let flag = if init { JS_EVENT_INIT } else { 0 };
            for c in changes {
                let ev = match *c {
                    Change::Button { index, pressed } => {
                        js_event(at.millis(), i16::from(pressed), JS_EVENT_BUTTON | flag, index)
                    }
                    Change::Axis { index, value } => {
                        let v = AXES.get(usize::from(index)).map_or(0, |a| a.joystick_value(value));
                        js_event(at.millis(), v, JS_EVENT_AXIS | flag, index)
                    }
                };
                out.extend_from_slice(&ev);
            }
        }
        Kind::Evdev => {
            for c in changes {
                let ev = match *c {
                    Change::Button { index, pressed } => {
                        let Some(&code) = BUTTONS.get(usize::from(index)) else { continue };
                        input_event(at, EV_KEY, code, i32::from(pressed))
                    }
                    Change::Axis { index, value } => {
                        let Some(axis) = AXES.get(usize::from(index)) else { continue };
                        input_event(at, EV_ABS, axis.code, value)
                    }
                };
                out.extend_from_slice(&ev);
            }
            if !out.is_empty() {
                out.extend_from_slice(&input_event(at, EV_SYN, SYN_REPORT, 0));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::{ABS_Z, BTN_B};

    const AT: Stamp = Stamp { sec: 2, usec: 500_000 };

    #[test]
    fn a_js_event_is_time_value_type_number() {
        let e = js_event(0x0102_0304, -2, JS_EVENT_AXIS, 7);
        assert_eq!(u32::from_ne_bytes(e[0..4].try_into().unwrap()), 0x0102_0304);
        assert_eq!(i16::from_ne_bytes(e[4..6].try_into().unwrap()), -2);
        assert_eq!((e[6], e[7]), (JS_EVENT_AXIS, 7));
    }

    #[test]
    fn evdev_changes_end_in_one_syn_report() {
        let bytes = encode(
            Kind::Evdev,
            AT,
            &[Change::Button { index: 1, pressed: true }, Change::Axis { index: 2, value: 255 }],
            false,
        );
        assert_eq!(bytes.len(), 3 * INPUT_EVENT_SIZE);
        let field = |i: usize, at: usize| u16::from_ne_bytes(bytes[i * 24 + at..i * 24 + at + 2].try_into().unwrap());
        assert_eq!((field(0, 16), field(0, 18)), (EV_KEY, BTN_B));
        assert_eq!((field(1, 16), field(1, 18)), (EV_ABS, ABS_Z));
        assert_eq!(i32::from_ne_bytes(bytes[44..48].try_into().unwrap()), 255);
        assert_eq!((field(2, 16), field(2, 18)), (EV_SYN, SYN_REPORT));
        assert_eq!(i64::from_ne_bytes(bytes[0..8].try_into().unwrap()), 2);
        assert_eq!(i64::from_ne_bytes(bytes[8..16].try_into().unwrap()), 500_000);
        assert!(encode(Kind::Evdev, AT, &[], false).is_empty());
    }

    #[test]
    fn joystick_axes_use_joydev_values_and_init_is_flagged() {
        let bytes = encode(Kind::Joystick, AT, &[Change::Axis { index: 2, value: 0 }], true);
        assert_eq!(bytes.len(), JS_EVENT_SIZE);
        assert_eq!(i16::from_ne_bytes(bytes[4..6].try_into().unwrap()), -32767, "a released trigger");
        assert_eq!(bytes[6], JS_EVENT_AXIS | JS_EVENT_INIT);
        assert_eq!(u32::from_ne_bytes(bytes[0..4].try_into().unwrap()), 2500);
    }

    #[test]
    fn out_of_layout_indices_are_skipped_not_panicked_on() {
        assert!(encode(Kind::Evdev, AT, &[Change::Button { index: 200, pressed: true }], false).is_empty());
        assert_eq!(encode(Kind::Joystick, AT, &[Change::Axis { index: 200, value: 1 }], false).len(), 8);
    }
}

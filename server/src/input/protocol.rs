//! Parsing of the `input` data-channel messages (see `docs/protocol.md`).

use serde::Deserialize;

/// Largest input message accepted; real ones are under 60 bytes.
pub const MAX_INPUT_BYTES: usize = 4096;

/// A pointer button as the protocol numbers it (1 left, 2 middle, 3 right, 4 back, 5 forward).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Button(u8);

impl Button {
    /// The X11 button number. Back/forward are 8/9 in X because 4–7 are the wheel.
    pub fn x11(self) -> u8 {
        match self.0 {
            4 => 8,
            5 => 9,
            b => b,
        }
    }
}

/// One validated input event from a viewer.
#[derive(Clone, Debug, PartialEq)]
pub enum InputEvent {
    PointerMove { x: u32, y: u32 },
    Button { button: Button, down: bool },
    Wheel { dx: f64, dy: f64 },
    Key { keysym: u32, down: bool },
    ReleaseAll,
    KeyframeRequest,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InputError {
    #[error("input message of {0} bytes exceeds {MAX_INPUT_BYTES}")]
    TooLarge(usize),
    #[error("input message is not valid: {0}")]
    Malformed(String),
    #[error("{0}")]
    OutOfRange(&'static str),
}

#[derive(Deserialize)]
#[serde(tag = "t", deny_unknown_fields)]
enum Wire {
    #[serde(rename = "m")]
    Move { x: i64, y: i64 },
    #[serde(rename = "b")]
    Button { b: i64, d: bool },
    #[serde(rename = "w")]
    Wheel { dx: f64, dy: f64 },
    #[serde(rename = "k")]
    Key { k: i64, d: bool },
    #[serde(rename = "r")]
    ReleaseAll {},
    #[serde(rename = "kf")]
    Keyframe {},
}

/// The largest coordinate accepted: beyond any screen X can address (16-bit).
const MAX_COORD: i64 = 32767;
/// Keysyms are 29-bit values in X11.
const MAX_KEYSYM: i64 = 0x1FFF_FFFF;
/// A wheel message larger than this many notches is a bug, not a flick.
const MAX_WHEEL_NOTCHES: f64 = 100.0;

pub fn parse_input(text: &str) -> Result<InputEvent, InputError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(InputError::TooLarge(text.len()));
    }
    let wire: Wire = serde_json::from_str(text).map_err(|e| InputError::Malformed(e.to_string()))?;
    Ok(match wire {
        Wire::Move { x, y } => {
            if !(0..=MAX_COORD).contains(&x) || !(0..=MAX_COORD).contains(&y) {
                return Err(InputError::OutOfRange("pointer coordinates must be 0..=32767"));
            }
            InputEvent::PointerMove { x: x as u32, y: y as u32 }
        }
        Wire::Button { b, d } => {
            if !(1..=5).contains(&b) {
                return Err(InputError::OutOfRange("button must be 1..=5"));
            }
            InputEvent::Button { button: Button(b as u8), down: d }
        }
        Wire::Wheel { dx, dy } => {
            if !dx.is_finite() || !dy.is_finite() || dx.abs() > MAX_WHEEL_NOTCHES || dy.abs() > MAX_WHEEL_NOTCHES {
                return Err(InputError::OutOfRange("wheel deltas must be finite and at most 100 notches"));
            }
            InputEvent::Wheel { dx, dy }
        }
        Wire::Key { k, d } => {
            if !(1..=MAX_KEYSYM).contains(&k) {
                return Err(InputError::OutOfRange("keysym must be 1..=0x1fffffff"));
            }
            InputEvent::Key { keysym: k as u32, down: d }
        }
        Wire::ReleaseAll {} => InputEvent::ReleaseAll,
        Wire::Keyframe {} => InputEvent::KeyframeRequest,
    })
}

/// Turns fractional wheel deltas into whole notches, keeping the remainder so that smooth
/// trackpad scrolling adds up instead of being rounded away.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct WheelAccumulator {
    x: f64,
    y: f64,
}

/// Whole wheel notches to inject: positive is right/down.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Notches {
    pub x: i32,
    pub y: i32,
}

impl WheelAccumulator {
    pub fn add(&mut self, dx: f64, dy: f64) -> Notches {
        self.x += dx;
        self.y += dy;
        let n = Notches { x: self.x.trunc() as i32, y: self.y.trunc() as i32 };
        self.x -= f64::from(n.x);
        self.y -= f64::from(n.y);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_kind_parses() {
        assert_eq!(parse_input(r#"{"t":"m","x":10,"y":20}"#), Ok(InputEvent::PointerMove { x: 10, y: 20 }));
        assert_eq!(
            parse_input(r#"{"t":"b","b":3,"d":true}"#),
            Ok(InputEvent::Button { button: Button(3), down: true })
        );
        assert_eq!(parse_input(r#"{"t":"w","dx":0,"dy":-1.5}"#), Ok(InputEvent::Wheel { dx: 0.0, dy: -1.5 }));
        assert_eq!(parse_input(r#"{"t":"k","k":65,"d":false}"#), Ok(InputEvent::Key { keysym: 65, down: false }));
        assert_eq!(parse_input(r#"{"t":"r"}"#), Ok(InputEvent::ReleaseAll));
        assert_eq!(parse_input(r#"{"t":"kf"}"#), Ok(InputEvent::KeyframeRequest));
    }

    #[test]
    fn garbage_is_rejected_not_panicked_on() {
        for bad in [
            "",
            "\u{0}",
            "{",
            "[]",
            "null",
            r#"{"t":"zz"}"#,
            r#"{"t":"m","x":"1","y":2}"#,
            r#"{"t":"m","x":-1,"y":2}"#,
            r#"{"t":"m","x":1e300,"y":2}"#,
            r#"{"t":"b","b":0,"d":true}"#,
            r#"{"t":"b","b":6,"d":true}"#,
            r#"{"t":"k","k":0,"d":true}"#,
            r#"{"t":"k","k":4294967296,"d":true}"#,
            r#"{"t":"w","dx":1000,"dy":0}"#,
            r#"{"t":"m","x":1,"y":2,"evil":1}"#,
        ] {
            assert!(parse_input(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse_input(&" ".repeat(5000)), Err(InputError::TooLarge(5000)));
    }

    #[test]
    fn back_and_forward_map_past_the_wheel_buttons() {
        assert_eq!(Button(1).x11(), 1);
        assert_eq!(Button(3).x11(), 3);
        assert_eq!(Button(4).x11(), 8);
        assert_eq!(Button(5).x11(), 9);
    }

    #[test]
    fn fractional_wheel_deltas_accumulate_to_notches() {
        let mut acc = WheelAccumulator::default();
        assert_eq!(acc.add(0.0, 0.4), Notches { x: 0, y: 0 });
        assert_eq!(acc.add(0.0, 0.4), Notches { x: 0, y: 0 });
        assert_eq!(acc.add(0.0, 0.4), Notches { x: 0, y: 1 });
        assert_eq!(acc.add(-2.5, 0.0), Notches { x: -2, y: 0 });
        assert_eq!(acc.add(-0.5, 0.0), Notches { x: -1, y: 0 });
    }
}

//! What a client sends first on Kelpie's gamepad socket: 8 bytes, `KPAD`, a version, what
//! it wants, a pad slot and the length of the text that follows (reports only).
//!
//! * open: "send me this device's events"; Kelpie then writes that device's current state
//!   and every change, and the client reads nothing else.
//! * report: "this app cannot use the gamepads, and why" (a static binary, an app reading
//!   hidraw): Kelpie logs it and tells the participant in control, then closes.

use crate::paths::{Device, Kind};
use crate::MAX_PADS;

pub const MAGIC: &[u8; 4] = b"KPAD";
pub const VERSION: u8 = 1;
pub const HEADER: usize = 8;
/// Longest report text: a line for a log and a notice.
pub const MAX_REPORT: usize = 240;

const OPEN_JOYSTICK: u8 = 1;
const OPEN_EVDEV: u8 = 2;
const REPORT: u8 = 3;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hello {
    Open(Device),
    Report(String),
}

#[derive(Debug, PartialEq, Eq)]
pub enum HelloError {
    /// Not enough bytes yet; this many are needed in all.
    NeedMore(usize),
    BadMagic,
    Version(u8),
    Op(u8),
    Pad(u8),
    TooLong(usize),
}

impl std::fmt::Display for HelloError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HelloError::NeedMore(n) => write!(f, "incomplete greeting ({n} bytes needed)"),
            HelloError::BadMagic => write!(f, "not a Kelpie gamepad client"),
            HelloError::Version(v) => write!(f, "protocol version {v}, this Kelpie speaks {VERSION}"),
            HelloError::Op(o) => write!(f, "unknown request {o}"),
            HelloError::Pad(p) => write!(f, "pad {p} out of range (0..{MAX_PADS})"),
            HelloError::TooLong(n) => write!(f, "report of {n} bytes exceeds {MAX_REPORT}"),
        }
    }
}

impl std::error::Error for HelloError {}

pub fn open(device: Device) -> [u8; HEADER] {
    let op = match device.kind {
        Kind::Joystick => OPEN_JOYSTICK,
        Kind::Evdev => OPEN_EVDEV,
    };
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, op, device.pad as u8, 0]
}

/// A report, cut to [`MAX_REPORT`] bytes on a character boundary.
pub fn report(text: &str) -> Vec<u8> {
    let mut end = text.len().min(MAX_REPORT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = vec![MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], VERSION, REPORT, 0, end as u8];
    out.extend_from_slice(&text.as_bytes()[..end]);
    out
}

/// Parses a greeting from the start of `bytes`.
pub fn parse(bytes: &[u8]) -> Result<Hello, HelloError> {
    if bytes.len() < HEADER {
        return Err(HelloError::NeedMore(HEADER));
    }
    if &bytes[0..4] != MAGIC {
        return Err(HelloError::BadMagic);
    }
    if bytes[4] != VERSION {
        return Err(HelloError::Version(bytes[4]));
    }
    let (op, pad, len) = (bytes[5], bytes[6], usize::from(bytes[7]));
    match op {
        OPEN_JOYSTICK | OPEN_EVDEV => {
            if usize::from(pad) >= MAX_PADS {
                return Err(HelloError::Pad(pad));
            }
            let kind = if op == OPEN_JOYSTICK { Kind::Joystick } else { Kind::Evdev };
            Ok(Hello::Open(Device { kind, pad: usize::from(pad) }))
        }
        REPORT => {
            if len > MAX_REPORT {
                return Err(HelloError::TooLong(len));
            }
            let Some(text) = bytes.get(HEADER..HEADER + len) else { return Err(HelloError::NeedMore(HEADER + len)) };
            Ok(Hello::Report(String::from_utf8_lossy(text).into_owned()))
        }
        other => Err(HelloError::Op(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings_round_trip() {
        for kind in [Kind::Joystick, Kind::Evdev] {
            for d in Device::all(kind) {
                assert_eq!(parse(&open(d)), Ok(Hello::Open(d)));
            }
        }
        assert_eq!(parse(&report("static binary")), Ok(Hello::Report("static binary".into())));
    }

    #[test]
    fn reports_are_cut_on_a_character_boundary() {
        let long = "é".repeat(200);
        let bytes = report(&long);
        let Ok(Hello::Report(text)) = parse(&bytes) else { panic!("{bytes:?}") };
        assert!(text.len() <= MAX_REPORT && text.chars().all(|c| c == 'é'), "{text}");
    }

    #[test]
    fn bad_greetings_say_why() {
        assert_eq!(parse(b"KPA"), Err(HelloError::NeedMore(8)));
        assert_eq!(parse(b"XXXX\x01\x01\x00\x00"), Err(HelloError::BadMagic));
        assert_eq!(parse(b"KPAD\x02\x01\x00\x00"), Err(HelloError::Version(2)));
        assert_eq!(parse(b"KPAD\x01\x09\x00\x00"), Err(HelloError::Op(9)));
        assert_eq!(parse(b"KPAD\x01\x01\x04\x00"), Err(HelloError::Pad(4)));
        assert_eq!(parse(b"KPAD\x01\x03\x00\xff"), Err(HelloError::TooLong(255)));
        assert_eq!(parse(b"KPAD\x01\x03\x00\x05abc"), Err(HelloError::NeedMore(13)));
    }
}

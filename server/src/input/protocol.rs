//! Parsing of the `input` data-channel messages (see `docs/protocol.md`).

use serde::Deserialize;

/// Largest input message accepted; real ones are under 60 bytes.
pub const MAX_INPUT_BYTES: usize = 4096;
/// Largest clipboard chunk message accepted: clients send 45 KiB of data per chunk (60 KiB
/// of base64 plus its envelope), because webrtcbin's data channels carry messages of at
/// most 64 KiB; the margin tolerates other clients' chunk sizes.
pub const MAX_CLIP_MESSAGE_BYTES: usize = 96 * 1024;
/// Longest composed/IME text in one `txt` message, in characters.
pub const MAX_TEXT_CHARS: usize = 1024;

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
    PointerMove {
        x: u32,
        y: u32,
    },
    Button {
        button: Button,
        down: bool,
    },
    Wheel {
        dx: f64,
        dy: f64,
    },
    Key {
        keysym: u32,
        down: bool,
    },
    ReleaseAll,
    KeyframeRequest,
    /// Pointer-lock motion: move the pointer by this many remote pixels.
    RelativeMove {
        dx: i32,
        dy: i32,
    },
    /// Composed text (IME, dead keys, on-screen keyboards): typed character by character.
    Text(String),
    /// One piece of a clipboard transfer from the browser.
    Clip(ClipChunk),
    /// The browser's viewport in device pixels, for resize-to-fit; `dpr` sets the DPI.
    Resize {
        width: u32,
        height: u32,
        dpr: f64,
    },
    /// Stream settings from the client's settings panel; `None` leaves a value as it is.
    Settings {
        framerate: Option<u32>,
        bitrate_kbps: Option<u32>,
    },
    /// The viewer entered or left pointer lock: it sees no cursor but the one in the video.
    PointerLock(bool),
    /// The connection self-test: answer at once with a `pong` of the same id.
    Ping(u32),
    /// The connection self-test: send this many bytes of padding as fast as the link allows.
    Probe(u32),
    /// A browser gamepad's state, or its loss (for the desktop's virtual pads).
    Gamepad(PadInput),
}

/// One gamepad message: the whole state of pad `pad` in the W3C standard layout (buttons
/// 0..=255, axes −32767..=32767), sent when it changes, or that the page lost the pad.
#[derive(Clone, Debug, PartialEq)]
pub enum PadInput {
    State { pad: u8, buttons: Vec<u16>, axes: Vec<i32> },
    Gone { pad: u8 },
}

/// Largest bandwidth probe a viewer may ask for.
pub const MAX_PROBE_BYTES: u32 = 1024 * 1024;

/// A chunk of a clipboard transfer (`docs/protocol.md`): chunks of one `id` arrive in
/// order (the channel is ordered and reliable) and the one with `last` completes it.
#[derive(Clone, Debug, PartialEq)]
pub struct ClipChunk {
    pub id: u32,
    /// `text/plain` or `image/png`.
    pub mime: String,
    pub seq: u32,
    pub last: bool,
    /// Base64 of this chunk's bytes.
    pub data: String,
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
    #[serde(rename = "rm")]
    Relative { dx: i64, dy: i64 },
    #[serde(rename = "txt")]
    Text { s: String },
    #[serde(rename = "clip")]
    Clip { id: u32, mime: String, seq: u32, last: bool, data: String },
    #[serde(rename = "resize")]
    Resize { w: i64, h: i64, dpr: Option<f64> },
    #[serde(rename = "set")]
    Settings { fps: Option<i64>, kbps: Option<i64> },
    #[serde(rename = "lock")]
    Lock { on: bool },
    #[serde(rename = "ping")]
    Ping { id: i64 },
    #[serde(rename = "probe")]
    Probe { bytes: i64 },
    #[serde(rename = "gp")]
    Pad { p: i64, b: Vec<i64>, a: Vec<i64> },
    #[serde(rename = "gpoff")]
    PadGone { p: i64 },
}

/// Whether `text` is a gamepad message (`gp`, `gpoff`), for counting refusals of its kind
/// even when it does not parse. The page writes `t` first, as JSON.stringify keeps order.
pub fn looks_like_gamepad(text: &str) -> bool {
    let t = text.trim_start();
    t.starts_with(r#"{"t":"gp"#)
}

fn pad_index(p: i64) -> Result<u8, InputError> {
    if !(0..kelpie_gamepad::MAX_PADS as i64).contains(&p) {
        return Err(InputError::OutOfRange("gamepad index must be 0..=3"));
    }
    Ok(p as u8)
}

/// Clipboard formats that cross the data channel.
pub const CLIP_MIMES: [&str; 2] = ["text/plain", "image/png"];
/// Resize requests outside this range are refused (X screens are 16-bit; below 64 px
/// nothing is usable).
const MIN_SCREEN: i64 = 64;
const MAX_SCREEN: i64 = 16384;

/// The largest coordinate accepted: beyond any screen X can address (16-bit).
const MAX_COORD: i64 = 32767;
/// Keysyms are 29-bit values in X11.
const MAX_KEYSYM: i64 = 0x1FFF_FFFF;
/// A wheel message larger than this many notches is a bug, not a flick.
const MAX_WHEEL_NOTCHES: f64 = 100.0;

pub fn parse_input(text: &str) -> Result<InputEvent, InputError> {
    if text.len() > MAX_CLIP_MESSAGE_BYTES {
        return Err(InputError::TooLarge(text.len()));
    }
    let wire: Wire = serde_json::from_str(text).map_err(|e| InputError::Malformed(e.to_string()))?;
    if text.len() > MAX_INPUT_BYTES && !matches!(wire, Wire::Clip { .. }) {
        return Err(InputError::TooLarge(text.len()));
    }
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
        Wire::Relative { dx, dy } => {
            if !(-MAX_COORD..=MAX_COORD).contains(&dx) || !(-MAX_COORD..=MAX_COORD).contains(&dy) {
                return Err(InputError::OutOfRange("relative motion must be within ±32767"));
            }
            InputEvent::RelativeMove { dx: dx as i32, dy: dy as i32 }
        }
        Wire::Text { s } => {
            if s.is_empty() || s.chars().count() > MAX_TEXT_CHARS {
                return Err(InputError::OutOfRange("text must be 1..=1024 characters"));
            }
            InputEvent::Text(s)
        }
        Wire::Clip { id, mime, seq, last, data } => {
            if !CLIP_MIMES.contains(&mime.as_str()) {
                return Err(InputError::OutOfRange("clipboard type must be text/plain or image/png"));
            }
            InputEvent::Clip(ClipChunk { id, mime, seq, last, data })
        }
        Wire::Resize { w, h, dpr } => {
            let dpr = dpr.unwrap_or(1.0);
            if !(MIN_SCREEN..=MAX_SCREEN).contains(&w) || !(MIN_SCREEN..=MAX_SCREEN).contains(&h) {
                return Err(InputError::OutOfRange("resize must be 64..=16384 pixels each way"));
            }
            if !dpr.is_finite() || !(0.25..=8.0).contains(&dpr) {
                return Err(InputError::OutOfRange("device pixel ratio must be 0.25..=8"));
            }
            InputEvent::Resize { width: w as u32, height: h as u32, dpr }
        }
        Wire::Settings { fps, kbps } => {
            if fps.is_some_and(|f| !(1..=120).contains(&f)) {
                return Err(InputError::OutOfRange("frame rate must be 1..=120"));
            }
            if kbps.is_some_and(|k| !(100..=200_000).contains(&k)) {
                return Err(InputError::OutOfRange("bitrate must be 100..=200000 kbit/s"));
            }
            InputEvent::Settings { framerate: fps.map(|f| f as u32), bitrate_kbps: kbps.map(|k| k as u32) }
        }
        Wire::Lock { on } => InputEvent::PointerLock(on),
        Wire::Ping { id } => {
            if !(0..=i64::from(i32::MAX)).contains(&id) {
                return Err(InputError::OutOfRange("ping id must be 0..=2^31-1"));
            }
            InputEvent::Ping(id as u32)
        }
        Wire::Probe { bytes } => {
            if !(1..=i64::from(MAX_PROBE_BYTES)).contains(&bytes) {
                return Err(InputError::OutOfRange("probe size must be 1..=1048576 bytes"));
            }
            InputEvent::Probe(bytes as u32)
        }
        Wire::Pad { p, b, a } => {
            use kelpie_gamepad::state::{AXIS_MAX, BUTTON_MAX, MAX_BROWSER_AXES, MAX_BROWSER_BUTTONS};
            let pad = pad_index(p)?;
            if b.len() > MAX_BROWSER_BUTTONS || a.len() > MAX_BROWSER_AXES {
                return Err(InputError::OutOfRange("a gamepad has at most 32 buttons and 16 axes"));
            }
            if b.iter().any(|v| !(0..=i64::from(BUTTON_MAX)).contains(v)) {
                return Err(InputError::OutOfRange("gamepad buttons must be 0..=255"));
            }
            if a.iter().any(|v| !(-i64::from(AXIS_MAX)..=i64::from(AXIS_MAX)).contains(v)) {
                return Err(InputError::OutOfRange("gamepad axes must be -32767..=32767"));
            }
            InputEvent::Gamepad(PadInput::State {
                pad,
                buttons: b.into_iter().map(|v| v as u16).collect(),
                axes: a.into_iter().map(|v| v as i32).collect(),
            })
        }
        Wire::PadGone { p } => InputEvent::Gamepad(PadInput::Gone { pad: pad_index(p)? }),
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
        assert_eq!(parse_input(r#"{"t":"ping","id":7}"#), Ok(InputEvent::Ping(7)));
        assert_eq!(parse_input(r#"{"t":"probe","bytes":262144}"#), Ok(InputEvent::Probe(262_144)));
        assert_eq!(parse_input(r#"{"t":"rm","dx":-5,"dy":7}"#), Ok(InputEvent::RelativeMove { dx: -5, dy: 7 }));
        assert_eq!(parse_input(r#"{"t":"txt","s":"日本語"}"#), Ok(InputEvent::Text("日本語".into())));
        assert_eq!(
            parse_input(r#"{"t":"resize","w":1280,"h":720,"dpr":2}"#),
            Ok(InputEvent::Resize { width: 1280, height: 720, dpr: 2.0 })
        );
        assert_eq!(
            parse_input(r#"{"t":"set","fps":30}"#),
            Ok(InputEvent::Settings { framerate: Some(30), bitrate_kbps: None })
        );
        assert_eq!(parse_input(r#"{"t":"lock","on":true}"#), Ok(InputEvent::PointerLock(true)));
        let clip =
            format!(r#"{{"t":"clip","id":1,"mime":"text/plain","seq":0,"last":true,"data":"{}"}}"#, "A".repeat(60_000));
        assert!(matches!(parse_input(&clip), Ok(InputEvent::Clip(c)) if c.data.len() == 60_000 && c.last));
    }

    #[test]
    fn new_kinds_reject_bad_values() {
        for bad in [
            r#"{"t":"rm","dx":40000,"dy":0}"#,
            r#"{"t":"txt","s":""}"#,
            r#"{"t":"clip","id":1,"mime":"text/html","seq":0,"last":true,"data":""}"#,
            r#"{"t":"resize","w":10,"h":720}"#,
            r#"{"t":"resize","w":1280,"h":720,"dpr":0}"#,
            r#"{"t":"set","fps":0}"#,
            r#"{"t":"set","kbps":5}"#,
            r#"{"t":"ping","id":-1}"#,
            r#"{"t":"probe","bytes":0}"#,
            r#"{"t":"probe","bytes":2000000}"#,
        ] {
            assert!(parse_input(bad).is_err(), "{bad:?} accepted");
        }
        let long_text = format!(r#"{{"t":"txt","s":"{}"}}"#, "x".repeat(5000));
        assert_eq!(parse_input(&long_text), Err(InputError::TooLarge(long_text.len())));
        assert_eq!(parse_input(&" ".repeat(200_000)), Err(InputError::TooLarge(200_000)));
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
        let padded = format!(r#"{{"t":"r"}}{}"#, " ".repeat(5000));
        assert_eq!(parse_input(&padded), Err(InputError::TooLarge(padded.len())));
    }

    #[test]
    fn gamepad_messages_are_validated_and_bounded() {
        assert_eq!(
            parse_input(r#"{"t":"gp","p":1,"b":[0,255],"a":[-32767,32767]}"#),
            Ok(InputEvent::Gamepad(PadInput::State { pad: 1, buttons: vec![0, 255], axes: vec![-32767, 32767] }))
        );
        assert_eq!(parse_input(r#"{"t":"gpoff","p":3}"#), Ok(InputEvent::Gamepad(PadInput::Gone { pad: 3 })));
        let many = format!(r#"{{"t":"gp","p":0,"b":[{}],"a":[]}}"#, vec!["1"; 33].join(","));
        for bad in [
            r#"{"t":"gp","p":4,"b":[],"a":[]}"#,
            r#"{"t":"gp","p":-1,"b":[],"a":[]}"#,
            r#"{"t":"gp","p":0,"b":[256],"a":[]}"#,
            r#"{"t":"gp","p":0,"b":[-1],"a":[]}"#,
            r#"{"t":"gp","p":0,"b":[],"a":[32768]}"#,
            r#"{"t":"gp","p":0,"b":[0.5],"a":[]}"#,
            r#"{"t":"gp","p":0,"b":[]}"#,
            r#"{"t":"gp","p":0,"b":[],"a":[],"x":1}"#,
            r#"{"t":"gpoff","p":9}"#,
            many.as_str(),
        ] {
            assert!(parse_input(bad).is_err(), "{bad:?} accepted");
            assert!(looks_like_gamepad(bad), "{bad:?} not counted as a gamepad message");
        }
        let huge = format!(r#"{{"t":"gp","p":0,"b":[],"a":[]}}{}"#, " ".repeat(5000));
        assert_eq!(parse_input(&huge), Err(InputError::TooLarge(huge.len())));
        assert!(!looks_like_gamepad(r#"{"t":"k","k":65,"d":true}"#));
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

//! The gamepad socket's greeting (from any process of this user) and the ioctl answers
//! (any request number an app passes): never a panic, never an answer longer than the
//! request's size except JSIOCGCORR's documented one, and a pad's encoded events always
//! whole kernel structs.
#![no_main]

use kelpie_gamepad::hello;
use kelpie_gamepad::ioctl::{self, Answer};
use kelpie_gamepad::paths::{Device, Kind};
use kelpie_gamepad::state::PadState;
use kelpie_gamepad::wire::{self, Stamp};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = hello::parse(data);
    if data.len() >= 4 {
        let request = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]);
        let size = ((request >> 16) & 0x3fff) as usize;
        for kind in [Kind::Joystick, Kind::Evdev] {
            let device = Device { kind, pad: usize::from(data.get(4).copied().unwrap_or(0) % 4) };
            if let Answer::Read { bytes, .. } = ioctl::answer(device, request) {
                assert!(bytes.len() <= size || request == ioctl::JSIOCGCORR, "{request:#x}: {} > {size}", bytes.len());
            }
        }
    }
    let buttons: Vec<u16> = data.iter().take(32).map(|&b| u16::from(b)).collect();
    let axes: Vec<i32> = data.chunks(2).take(16).map(|c| i32::from(i16::from_ne_bytes([c[0], *c.get(1).unwrap_or(&0)]))).collect();
    let state = PadState::from_browser(&buttons, &axes);
    let changes = PadState::default().changes_to(&state);
    let at = Stamp { sec: 1, usec: 2 };
    assert_eq!(wire::encode(Kind::Joystick, at, &changes, false).len() % wire::JS_EVENT_SIZE, 0);
    assert_eq!(wire::encode(Kind::Evdev, at, &changes, false).len() % wire::INPUT_EVENT_SIZE, 0);
});

use std::sync::{Arc, Mutex};

use kelpie_gamepad::layout::{BTN_A, EV_KEY, EV_SYN};
use kelpie_gamepad::wire::{INPUT_EVENT_SIZE, JS_EVENT_BUTTON, JS_EVENT_INIT, JS_EVENT_SIZE};

use super::*;

const AT: Stamp = Stamp { sec: 1, usec: 0 };
const JS0: Device = Device { kind: Kind::Joystick, pad: 0 };
const EV0: Device = Device { kind: Kind::Evdev, pad: 0 };

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Sink for Capture {
    fn try_send(&mut self, bytes: &[u8]) -> bool {
        self.0.lock().unwrap().extend_from_slice(bytes);
        true
    }
}

impl Capture {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Takes `room` bytes, then refuses everything (an app that stopped reading).
struct Full(usize);

impl Sink for Full {
    fn try_send(&mut self, bytes: &[u8]) -> bool {
        if bytes.len() > self.0 {
            return false;
        }
        self.0 -= bytes.len();
        true
    }
}

fn pressed(buttons: &[usize]) -> PadState {
    let mut b = [0u16; 17];
    for &i in buttons {
        b[i] = 255;
    }
    PadState::from_browser(&b, &[])
}

/// (type, code, value) of each evdev event in `bytes`.
fn evdev(bytes: &[u8]) -> Vec<(u16, u16, i32)> {
    bytes
        .chunks(INPUT_EVENT_SIZE)
        .map(|e| {
            (
                u16::from_ne_bytes([e[16], e[17]]),
                u16::from_ne_bytes([e[18], e[19]]),
                i32::from_ne_bytes(e[20..24].try_into().unwrap()),
            )
        })
        .collect()
}

#[test]
fn every_reader_of_a_pad_gets_its_changes_in_its_own_format() {
    let mut hub = Hub::default();
    let (js, ev, other) = (Capture::default(), Capture::default(), Capture::default());
    hub.add_reader(JS0, Box::new(js.clone()), AT).unwrap();
    hub.add_reader(EV0, Box::new(ev.clone()), AT).unwrap();
    hub.add_reader(Device { kind: Kind::Joystick, pad: 1 }, Box::new(other.clone()), AT).unwrap();
    assert_eq!(js.take().len(), 19 * JS_EVENT_SIZE, "start-up events: 11 buttons, 8 axes");
    assert!(ev.take().is_empty(), "evdev at rest needs no start-up events");
    other.take();

    hub.update(7, 0, pressed(&[0]), AT);
    let j = js.take();
    assert_eq!(j.len(), JS_EVENT_SIZE);
    assert_eq!((j[4], j[6], j[7]), (1, JS_EVENT_BUTTON, 0));
    assert_eq!(evdev(&ev.take()), [(EV_KEY, BTN_A, 1), (EV_SYN, 0, 0)]);
    assert!(other.take().is_empty(), "pad 1's reader sees nothing of pad 0");
}

#[test]
fn an_app_opening_late_sees_the_state_now() {
    let mut hub = Hub::default();
    hub.update(7, 0, pressed(&[0]), AT);
    let (js, ev) = (Capture::default(), Capture::default());
    hub.add_reader(JS0, Box::new(js.clone()), AT).unwrap();
    hub.add_reader(EV0, Box::new(ev.clone()), AT).unwrap();
    let j = js.take();
    assert_eq!((j[4], j[6]), (1, JS_EVENT_BUTTON | JS_EVENT_INIT), "button A held, flagged as start-up");
    assert_eq!(evdev(&ev.take()), [(EV_KEY, BTN_A, 1), (EV_SYN, 0, 0)]);
}

#[test]
fn nothing_changed_writes_nothing() {
    let mut hub = Hub::default();
    let ev = Capture::default();
    hub.add_reader(EV0, Box::new(ev.clone()), AT).unwrap();
    hub.update(7, 0, PadState::default(), AT);
    assert!(ev.take().is_empty());
    assert_eq!(hub.counts().updates, 1);
}

#[test]
fn losing_control_or_the_pad_returns_it_to_rest() {
    let mut hub = Hub::default();
    let ev = Capture::default();
    hub.add_reader(EV0, Box::new(ev.clone()), AT).unwrap();
    hub.update(7, 0, pressed(&[0]), AT);
    ev.take();
    // Somebody else's release leaves participant 7's pad alone.
    hub.release(8, AT);
    assert!(ev.take().is_empty());
    hub.release(7, AT);
    assert_eq!(evdev(&ev.take()), [(EV_KEY, BTN_A, 0), (EV_SYN, 0, 0)]);
    assert!(hub.state(0).unwrap().is_at_rest());

    hub.update(7, 0, pressed(&[0]), AT);
    ev.take();
    hub.disconnect(7, 0, AT);
    assert_eq!(evdev(&ev.take()), [(EV_KEY, BTN_A, 0), (EV_SYN, 0, 0)]);
}

#[test]
fn a_reader_that_cannot_keep_up_is_dropped_whole() {
    let mut hub = Hub::default();
    let keeps = Capture::default();
    hub.add_reader(EV0, Box::new(Full(3 * INPUT_EVENT_SIZE)), AT).unwrap();
    hub.add_reader(EV0, Box::new(keeps.clone()), AT).unwrap();
    hub.update(7, 0, pressed(&[0]), AT);
    assert_eq!(hub.readers()[0], 2);
    hub.update(7, 0, pressed(&[]), AT);
    assert_eq!(hub.readers()[0], 1, "the full one is gone");
    assert_eq!(hub.counts().dropped_readers, 1);
    assert_eq!(evdev(&keeps.take()).len(), 4, "the other got both updates");
}

#[test]
fn the_page_is_told_once_when_no_app_reads_its_pad() {
    let mut hub = Hub::default();
    let first = hub.update(7, 1, pressed(&[0]), AT);
    assert!(first.as_deref().is_some_and(|t| t.contains("Gamepad 2") && t.contains("kelpie-gamepad")), "{first:?}");
    assert_eq!(hub.update(7, 1, pressed(&[]), AT), None, "only once");
    // Another participant driving it (after a control change) is told too.
    assert!(hub.update(8, 1, pressed(&[0]), AT).is_some());
    // With a reader there is nothing to say.
    hub.add_reader(Device { kind: Kind::Evdev, pad: 2 }, Box::new(Capture::default()), AT).unwrap();
    assert_eq!(hub.update(7, 2, pressed(&[0]), AT), None);
}

#[test]
fn out_of_range_pads_change_nothing() {
    let mut hub = Hub::default();
    assert_eq!(hub.update(7, 9, pressed(&[0]), AT), None);
    hub.disconnect(7, 9, AT);
    assert_eq!(hub.counts().updates, 0);
}

//! Test doubles for the room's ports, shared by the room's and the router's tests.

use std::sync::Mutex;

use tokio::sync::mpsc::UnboundedSender;

use super::ports::Desk;
use super::state::Id;
use crate::input::protocol::{ClipChunk, PadInput};
use crate::input::InputEvent;
use crate::outbox::Outbox;
use crate::transport::{Kind, OpenError, SelfTest, TransportEvent, Transports, Wire};

/// What the desktop or the transports were asked to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Did {
    Input(Id, InputEvent),
    Release(Id),
    Clip(Id),
    ClipReady(Id),
    CursorReady(Id),
    Gone(Id),
    Resize(u32, u32),
    Settings(Option<u32>, Option<u32>),
    Pointer(bool),
    Keyframe,
    Closed(Id),
    SelfTest(Id, SelfTest),
    Gamepad(Id, PadInput),
}

/// A desktop and transports that record every call. Who the transports were last told
/// holds control is kept apart, so that the call lists stay about the desktop.
#[derive(Default)]
pub struct Recorder(Mutex<Vec<Did>>, Mutex<Option<Option<Id>>>);

impl Recorder {
    pub fn push(&self, d: Did) {
        self.0.lock().unwrap().push(d);
    }
    /// The calls so far, in order; forgets them.
    pub fn take(&self) -> Vec<Did> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
    /// The last `control_moved` the transports heard (`None`: never).
    pub fn leader(&self) -> Option<Option<Id>> {
        *self.1.lock().unwrap()
    }
}

impl Desk for Recorder {
    fn input(&self, id: Id, event: InputEvent) {
        self.push(Did::Input(id, event));
    }
    fn release_input(&self, id: Id) {
        self.push(Did::Release(id));
    }
    fn gamepad(&self, id: Id, input: PadInput) -> Option<String> {
        self.push(Did::Gamepad(id, input));
        None
    }
    fn clipboard(&self, id: Id, _chunk: ClipChunk) {
        self.push(Did::Clip(id));
    }
    fn clipboard_ready(&self, id: Id) {
        self.push(Did::ClipReady(id));
    }
    fn cursor_ready(&self, id: Id) {
        self.push(Did::CursorReady(id));
    }
    fn participant_gone(&self, id: Id) {
        self.push(Did::Gone(id));
    }
    fn resize(&self, width: u32, height: u32, _dpr: f64) {
        self.push(Did::Resize(width, height));
    }
    fn stream_settings(&self, framerate: Option<u32>, bitrate_kbps: Option<u32>) {
        self.push(Did::Settings(framerate, bitrate_kbps));
    }
    fn show_pointer(&self, on: bool) {
        self.push(Did::Pointer(on));
    }
}

impl Transports for Recorder {
    fn open(&self, _: u64, _: Wire, _: UnboundedSender<TransportEvent>) -> Result<(), OpenError> {
        Ok(())
    }
    fn kinds(&self) -> Vec<(Kind, usize)> {
        vec![]
    }
    fn apply_answer(&self, _: u64, _: &str) {}
    fn add_ice(&self, _: u64, _: u32, _: &str) {}
    fn close(&self, id: u64) {
        self.push(Did::Closed(id));
    }
    fn request_keyframe(&self) {
        self.push(Did::Keyframe);
    }
    fn control_moved(&self, to: Option<u64>) {
        *self.1.lock().unwrap() = Some(to);
    }
    fn self_test(&self, id: u64, test: SelfTest) {
        self.push(Did::SelfTest(id, test));
    }
}

/// An outbox with nobody behind it.
pub struct NoOutbox;

impl Outbox for NoOutbox {
    fn viewer_ids(&self) -> Vec<u64> {
        vec![]
    }
    fn send(&self, _: u64, _: &str) -> bool {
        false
    }
    fn buffered(&self, _: u64) -> Option<u64> {
        None
    }
}

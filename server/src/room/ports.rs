//! What the room drives on the desktop side. The room knows only this trait; the
//! composition root ([`crate::app`]) implements it with the real input injector,
//! clipboard, resizer, cursor and media, and tests with a recorder.

use super::state::Id;
use crate::input::protocol::{ClipChunk, PadInput};
use crate::input::InputEvent;

/// The desktop as the room sees it. Every call only queues work: the room calls these
/// while it holds its lock, so that nothing a participant sent can overtake its leaving.
pub trait Desk: Send + Sync + 'static {
    /// Keys, pointer, wheel, text or release-all from the participant in control.
    fn input(&self, id: Id, event: InputEvent);
    /// Releases every key and button `id` holds, and puts its gamepads at rest.
    fn release_input(&self, id: Id);
    /// A gamepad message from the participant in control; may return a notice for it
    /// (no app reads that pad).
    fn gamepad(&self, id: Id, input: PadInput) -> Option<String>;
    /// A clipboard chunk from the participant in control.
    fn clipboard(&self, id: Id, chunk: ClipChunk);
    /// `id`'s data channel opened and it may have the remote clipboard: send it.
    fn clipboard_ready(&self, id: Id);
    /// `id`'s data channel opened: send it the current cursor.
    fn cursor_ready(&self, id: Id);
    /// `id` left: drop anything half-received from it.
    fn participant_gone(&self, id: Id);
    fn resize(&self, width: u32, height: u32, dpr: f64);
    /// Settings already clamped by the room.
    fn stream_settings(&self, framerate: Option<u32>, bitrate_kbps: Option<u32>);
    fn show_pointer(&self, on: bool);
}

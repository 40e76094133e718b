//! The outbox port: how subsystems send small messages to participants' browsers.
//!
//! A leaf module with no dependencies, so that clipboard and cursor (desktop side) can
//! talk to browsers without knowing which transport carries the message: media
//! implements it for the WebRTC data channels, the room wraps it to keep content from
//! participants whose role may not have it, and tests use fakes.

/// Sends text messages to participants, by participant id.
pub trait Outbox: Send + Sync + 'static {
    /// Participants that can be sent to now.
    fn viewer_ids(&self) -> Vec<u64>;
    /// Queues one message for `viewer`; false when it could not be queued (channel not
    /// open, or the browser stopped reading and its buffer is full).
    fn send(&self, viewer: u64, text: &str) -> bool;
    /// Bytes queued for `viewer`, `None` when it has no open channel.
    fn buffered(&self, viewer: u64) -> Option<u64>;
}

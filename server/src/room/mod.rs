//! The session layer: a room of participants per desktop, with roles and one holder of
//! keyboard and mouse.
//!
//! | file | job |
//! |---|---|
//! | [`state`] | the rules: join, leave, request, grant, take, release, what each may do (pure) |
//! | [`actor`] | owns each participant and carries out the rules' effects through the ports |
//! | [`ports`] | what the room drives on the desktop side |
//! | [`audience`] | an outbox that reaches only those who may have the clipboard |
//! | [`liveness`] | when a silent participant counts as gone (pure) |
//! | [`rate`] | token buckets: how much input a participant may send per second (pure) |
//!
//! The room imports neither GStreamer nor axum nor x11rb: transports and the desktop are
//! traits here, implemented by `media` and the composition root.

pub mod actor;
pub mod audience;
pub mod liveness;
pub mod ports;
pub mod rate;
pub mod state;
#[cfg(test)]
pub mod testing;

pub use actor::{Identity, Reservation, RoomActor};
pub use audience::Audience;
pub use liveness::Liveness;
pub use ports::Desk;
pub use state::{Act, Full, Id, Limits};

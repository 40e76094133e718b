//! Signalling: the JSON protocol of `/ws` and the pure per-viewer state machine.

pub mod messages;
pub mod session;

pub use messages::{ControlAction, ErrorCode, IceServer, ParticipantView, ServerMessage};
pub use session::{Action, Event, Session, Start};

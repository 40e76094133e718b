//! Signalling: the JSON protocol of `/ws` and the pure per-viewer state machine.

pub mod codec;
pub mod messages;
pub mod session;

pub use codec::{CodecCounts, CodecOutcome};
pub use messages::{ControlAction, ErrorCode, IceServer, ParticipantView, ServerMessage, StreamLimits};
pub use session::{Action, Event, Session, Start};

//! The transport port: what a participant's media transport looks like to the layers
//! above it (the room and the signalling shell), whichever kind carries it.
//!
//! Today the one implementation is the WebRTC one in `media` (a webrtcbin branch per
//! participant, subscribed to the desktop's tracks). A WebSocket transport is a second
//! implementation of [`Transports`]; nothing above this port changes for it.

use std::sync::Arc;

use tokio::sync::mpsc::UnboundedSender;

use crate::turn::ViewerIce;

/// What a transport tells the participant's signalling task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportEvent {
    Offer(String),
    Ice {
        candidate: String,
        sdp_mline_index: u32,
    },
    AnswerApplied,
    AnswerRejected(String),
    /// DTLS is up: media reaches the browser from now on.
    Connected,
    /// The `input` data channel is open: server-to-browser messages (cursor, clipboard)
    /// can be sent from now on.
    ChannelOpen,
    Failed(String),
}

/// Receives the raw text messages a participant's browser sends on its input channel.
/// Runs on a transport thread: it must only queue work.
pub type InboundHandler = Arc<dyn Fn(&str) + Send + Sync>;

/// Why a transport could not be opened for a participant.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(pub String);

/// Opens and drives participants' transports, by participant id.
pub trait Transports: Send + Sync + 'static {
    /// Creates the participant's transport, subscribed to every track; the offer and
    /// local candidates arrive on `events`, inbound messages go to `inbound`.
    fn open(
        &self,
        id: u64,
        ice: &ViewerIce,
        events: UnboundedSender<TransportEvent>,
        inbound: InboundHandler,
    ) -> Result<(), OpenError>;
    fn apply_answer(&self, id: u64, sdp: &str);
    fn add_ice(&self, id: u64, sdp_mline_index: u32, candidate: &str);
    /// Tears the participant's transport down. Blocking (waits for the branch to stop).
    fn close(&self, id: u64);
    /// Asks the shared encoder for a keyframe (merged with other recent requests).
    fn request_keyframe(&self);
}

//! The transport port: what a participant's media transport looks like to the layers
//! above it (the room and the signalling shell), whichever kind carries it.
//!
//! Two kinds carry media ([`Wire`]): WebRTC (a webrtcbin branch per participant in
//! `media`, subscribed to the desktop's tracks) and the WebSocket the participant's
//! signalling already uses (a [`feed::Feed`] of the encoder's access units, drained by the
//! socket's writer, in the binary [`frame`] format). The room only knows this port; which
//! kind a participant uses is the signalling shell's business.

pub mod feed;
pub mod frame;

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

/// Which kind of transport carries a participant's media (`docs/protocol.md`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// webrtcbin: UDP, ICE-TCP or TURN; congestion-controlled RTP.
    Webrtc,
    /// Binary frames on the signalling WebSocket: any path that carries HTTP.
    Websocket,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Webrtc => "webrtc",
            Kind::Websocket => "websocket",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which transports the server offers (`--transport`).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Policy {
    /// WebRTC first; the page falls back to the WebSocket when no WebRTC media arrives.
    #[default]
    Auto,
    /// WebRTC only (media needs UDP, ICE-TCP or TURN to reach the browser).
    Webrtc,
    /// The WebSocket only (media takes the page's own HTTP(S) path).
    Websocket,
}

impl Policy {
    /// The kinds a page may use, preferred first.
    pub fn offered(self) -> Vec<Kind> {
        match self {
            Policy::Auto => vec![Kind::Webrtc, Kind::Websocket],
            Policy::Webrtc => vec![Kind::Webrtc],
            Policy::Websocket => vec![Kind::Websocket],
        }
    }

    /// The kind a participant starts on: the one its page asked for if offered, else the
    /// preferred one.
    pub fn initial(self, asked: Option<Kind>) -> Kind {
        let offered = self.offered();
        asked.filter(|k| offered.contains(k)).unwrap_or(offered[0])
    }
}

/// What a transport is opened with.
pub enum Wire {
    /// A WebRTC peer connection: its ICE servers, and where its input channel's messages go.
    Webrtc { ice: ViewerIce, inbound: InboundHandler },
    /// The participant's WebSocket: the transport pushes frames into `feed`, the socket's
    /// writer sends them. (Inbound messages arrive on the socket and the shell hands them to
    /// the room itself.)
    Websocket { feed: Arc<feed::Feed> },
}

impl Wire {
    pub fn kind(&self) -> Kind {
        match self {
            Wire::Webrtc { .. } => Kind::Webrtc,
            Wire::Websocket { .. } => Kind::Websocket,
        }
    }
}

/// Why a transport could not be opened for a participant.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct OpenError(pub String);

/// Opens and drives participants' transports, by participant id.
pub trait Transports: Send + Sync + 'static {
    /// Creates the participant's transport, subscribed to every track. For WebRTC the
    /// offer and local candidates arrive on `events`; every kind reports `ChannelOpen` and
    /// `Connected` there once messages and media can flow.
    fn open(&self, id: u64, wire: Wire, events: UnboundedSender<TransportEvent>) -> Result<(), OpenError>;
    fn apply_answer(&self, id: u64, sdp: &str);
    fn add_ice(&self, id: u64, sdp_mline_index: u32, candidate: &str);
    /// Participants on each kind of transport now, for `/metrics`.
    fn kinds(&self) -> Vec<(Kind, usize)>;
    /// Tears the participant's transport down. Blocking (waits for the branch to stop).
    fn close(&self, id: u64);
    /// Asks the shared encoder for a keyframe (merged with other recent requests).
    fn request_keyframe(&self);
    /// Control moved to `to` (or to nobody): the shared encode follows its link.
    fn control_moved(&self, to: Option<u64>);
    /// A connection self-test from participant `id`, answered on its own transport.
    fn self_test(&self, id: u64, test: SelfTest);
}

/// The connection self-test a page can run (`docs/protocol.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfTest {
    /// Answer `pong` with this id at once: the round trip through the media transport.
    Ping(u32),
    /// Send this many bytes of padding as fast as the transport takes them.
    Probe(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_decides_what_a_page_may_start_on() {
        assert_eq!(Policy::Auto.initial(None), Kind::Webrtc);
        assert_eq!(Policy::Auto.initial(Some(Kind::Websocket)), Kind::Websocket);
        assert_eq!(Policy::Webrtc.initial(Some(Kind::Websocket)), Kind::Webrtc);
        assert_eq!(Policy::Websocket.initial(None), Kind::Websocket);
        assert_eq!(Policy::Websocket.initial(Some(Kind::Webrtc)), Kind::Websocket);
        assert_eq!(Policy::Auto.offered(), vec![Kind::Webrtc, Kind::Websocket]);
    }
}

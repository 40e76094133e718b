//! The one error type of the client side of this crate.

use std::time::Duration;

use thiserror::Error;
use tokio_tungstenite::tungstenite;

/// Why a signalling or WebRTC operation of the test client failed.
///
/// Tests often *expect* failures (a refused Origin, `server_full`, a protocol error), so the
/// variants keep what the server said in a form that can be matched on.
#[derive(Debug, Error)]
pub enum ClientError {
    /// The WebSocket layer failed, including a refused upgrade (see [`Self::http_status`]).
    #[error("websocket: {0}")]
    WebSocket(#[from] tungstenite::Error),
    /// webrtc-rs refused an operation (bad SDP, closed connection, …).
    #[error("webrtc: {0}")]
    WebRtc(#[from] webrtc::error::Error),
    /// A message we sent or received is not the JSON it should be.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),
    /// The URL cannot be used to derive an `Origin` or to connect.
    #[error("bad url {0:?}")]
    Url(String),
    /// Nothing happened within the allowed time. `what` names the awaited event.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// The event that did not happen.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// The server sent an `error` message (usually followed by closing the socket).
    #[error("server error {code}: {message}")]
    Server {
        /// The protocol error code, e.g. `server_full` or `bad_sdp`.
        code: String,
        /// The human-readable explanation.
        message: String,
    },
    /// The socket closed when a message was expected.
    #[error("signalling socket closed (code {code:?}, reason {reason:?})")]
    Closed {
        /// The close code, if the server sent a close frame.
        code: Option<u16>,
        /// The close reason, empty if none.
        reason: String,
    },
    /// The server sent something the protocol does not allow at this point.
    #[error("protocol violation by server: {0}")]
    Protocol(String),
}

impl ClientError {
    /// The HTTP status of a refused WebSocket upgrade (403 for a bad Origin, …), if that is
    /// what this error is.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            ClientError::WebSocket(tungstenite::Error::Http(response)) => Some(response.status().as_u16()),
            _ => None,
        }
    }

    /// The protocol error code, if the server refused us with an `error` message.
    pub fn server_code(&self) -> Option<&str> {
        match self {
            ClientError::Server { code, .. } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn timeout(what: impl Into<String>, after: Duration) -> Self {
        ClientError::Timeout { what: what.into(), after }
    }
}

/// Result alias for the client side of this crate.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

//! Kelpie's test support: a Rust WebRTC viewer, protocol helpers and X test clients.
//!
//! Integration tests (in `tests/tests/`) and the browser tests start a real `kelpie` on an
//! Xvfb display and check it from the outside, the way users see it:
//!
//! * [`client::ViewerClient`] connects like a browser (WebSocket signalling, WebRTC with
//!   trickle ICE, the `input` data channel) and measures the video that arrives: time to
//!   first frame, frame rate, keyframes, picture size.
//! * [`signalling::SignallingSocket`] is a bare WebSocket for feeding the server malformed
//!   or out-of-order signalling.
//! * [`h264`] is the minimum of H.264 needed to count frames without decoding them.
//! * [`keysym`] maps characters to keysyms and back, shared by tests and `kelpie-xprobe`.
//! * The `kelpie-xprobe` binary is an X client that prints the input it receives as JSON
//!   lines and can animate the screen to give the encoder work.
//!
//! Protocol reference: `docs/protocol.md`.

pub mod client;
pub mod error;
pub mod h264;
pub mod harness;
pub mod keysym;
pub mod signalling;
pub mod video;

pub use client::{ViewerClient, ViewerOptions, Welcome};
pub use error::ClientError;
pub use signalling::{Origin, ServerRefusal, SignallingSocket};
pub use video::ViewerStats;

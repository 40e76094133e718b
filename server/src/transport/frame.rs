//! The binary frames of the WebSocket transport (`docs/protocol.md`, "Media over the
//! WebSocket"): pure encoding and parsing, no sockets.
//!
//! Text frames on the socket stay signalling JSON; binary frames are the transport. The
//! first byte says what a binary frame holds, so the same socket carries video (later
//! audio) down and the data-channel protocol both ways without a second connection
//! through the proxy.

use bytes::{BufMut, Bytes, BytesMut};

/// A data-channel message (UTF-8 JSON of the input protocol), either direction.
pub const CHANNEL: u8 = 1;
/// One H.264 access unit (Annex B byte-stream), server to browser.
pub const VIDEO: u8 = 2;

/// Bit 0 of a video frame's flags: the access unit is a keyframe (IDR with SPS/PPS).
pub const FLAG_KEY: u8 = 1;

/// kind (1) + flags (1) + sequence (4) + timestamp in µs (8).
pub const VIDEO_HEADER: usize = 14;

/// The largest frame a browser may send: one clipboard chunk (the input protocol's largest
/// message) plus its kind byte, rounded up.
pub const MAX_CLIENT_FRAME: usize = 128 * 1024;

/// A video frame: header then the access unit. Built once per access unit and shared by
/// every socket viewer (`Bytes` clones are reference counts, not copies).
pub fn video(seq: u32, pts_us: u64, key: bool, au: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(VIDEO_HEADER + au.len());
    b.put_u8(VIDEO);
    b.put_u8(if key { FLAG_KEY } else { 0 });
    b.put_u32(seq);
    b.put_u64(pts_us);
    b.put_slice(au);
    b.freeze()
}

/// A data-channel message as a binary frame.
pub fn channel(text: &str) -> Bytes {
    let mut b = BytesMut::with_capacity(1 + text.len());
    b.put_u8(CHANNEL);
    b.put_slice(text.as_bytes());
    b.freeze()
}

/// Why a browser's binary frame was refused. Each one closes the socket: a client that
/// sends these is broken, and guessing what it meant would hide the bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty binary frame")]
    Empty,
    #[error("binary frame of {0} bytes exceeds the {MAX_CLIENT_FRAME} byte limit")]
    TooLarge(usize),
    #[error("binary frame of kind {0}: a browser may only send kind 1 (a data-channel message)")]
    UnknownKind(u8),
    #[error("data-channel frame is not UTF-8 text")]
    NotText,
}

/// A browser's binary frame: the data-channel message it carries.
pub fn parse_client(frame: &[u8]) -> Result<&str, FrameError> {
    if frame.len() > MAX_CLIENT_FRAME {
        return Err(FrameError::TooLarge(frame.len()));
    }
    let (&kind, rest) = frame.split_first().ok_or(FrameError::Empty)?;
    if kind != CHANNEL {
        return Err(FrameError::UnknownKind(kind));
    }
    std::str::from_utf8(rest).map_err(|_| FrameError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_header_is_kind_flags_sequence_timestamp() {
        let f = video(0x0102_0304, 0x1122_3344_5566_7788, true, &[0, 0, 0, 1, 0x65]);
        assert_eq!(&f[..VIDEO_HEADER], &[2, 1, 1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
        assert_eq!(&f[VIDEO_HEADER..], &[0, 0, 0, 1, 0x65]);
        assert_eq!(video(1, 0, false, &[])[1], 0);
    }

    #[test]
    fn channel_frames_round_trip() {
        let f = channel(r#"{"t":"k"}"#);
        assert_eq!(f[0], CHANNEL);
        assert_eq!(parse_client(&f), Ok(r#"{"t":"k"}"#));
    }

    #[test]
    fn malformed_client_frames_are_refused_with_their_reason() {
        assert_eq!(parse_client(&[]), Err(FrameError::Empty));
        assert_eq!(parse_client(&[2, 0, 0]), Err(FrameError::UnknownKind(2)));
        assert_eq!(parse_client(&[1, 0xff, 0xfe]), Err(FrameError::NotText));
        let big = vec![1u8; MAX_CLIENT_FRAME + 1];
        assert_eq!(parse_client(&big), Err(FrameError::TooLarge(MAX_CLIENT_FRAME + 1)));
        // Exactly at the limit is fine.
        let mut ok = vec![b'a'; MAX_CLIENT_FRAME];
        ok[0] = CHANNEL;
        assert!(parse_client(&ok).is_ok());
    }
}

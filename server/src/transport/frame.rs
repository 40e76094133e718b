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

/// A browser's acknowledgement of a video frame: its sequence number and when it arrived
/// (µs on the page's clock), for the socket viewer's bandwidth estimate.
pub const ACK: u8 = 3;
/// kind (1) + sequence (4) + arrival in µs (8).
pub const ACK_LEN: usize = 13;

/// One Opus packet of the desktop's sound (48 kHz stereo), server to browser, with the
/// video header's layout (flags 0).
pub const AUDIO: u8 = 4;
/// One Opus packet of the browser's microphone (48 kHz, one frame), browser to server,
/// with the same header layout.
pub const MIC: u8 = 5;
/// The largest Opus packet a microphone frame may carry: one 120 ms frame at 510 kbit/s,
/// Opus's maximum, is 7650 bytes.
pub const MAX_MIC_PACKET: usize = 8 * 1024;

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

/// An audio frame: the video header's layout (no flags), then one Opus packet.
pub fn audio(seq: u32, pts_us: u64, packet: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(VIDEO_HEADER + packet.len());
    b.put_u8(AUDIO);
    b.put_u8(0);
    b.put_u32(seq);
    b.put_u64(pts_us);
    b.put_slice(packet);
    b.freeze()
}

/// The sequence number of a video frame built by [`video`].
pub fn video_seq(f: &[u8]) -> Option<u32> {
    (f.len() >= VIDEO_HEADER && f[0] == VIDEO).then(|| u32::from_be_bytes([f[2], f[3], f[4], f[5]]))
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
    #[error(
        "binary frame of kind {0}: a browser may only send kind 1 (a data-channel message), 3 (an acknowledgement) \
or 5 (microphone audio)"
    )]
    UnknownKind(u8),
    #[error("acknowledgement of {0} bytes: it has {ACK_LEN}")]
    BadAck(usize),
    #[error("microphone frame of {0} bytes: it needs a {VIDEO_HEADER}-byte header and at most {MAX_MIC_PACKET} bytes of Opus")]
    BadMic(usize),
    #[error("data-channel frame is not UTF-8 text")]
    NotText,
}

/// What a browser's binary frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientFrame<'a> {
    /// A data-channel message.
    Channel(&'a str),
    /// Video frame `seq` arrived at `at_us` (the page's clock).
    Ack { seq: u32, at_us: u64 },
    /// One Opus packet of the microphone.
    Mic { seq: u32, packet: &'a [u8] },
}

/// A browser's binary frame.
pub fn parse_client(frame: &[u8]) -> Result<ClientFrame<'_>, FrameError> {
    if frame.len() > MAX_CLIENT_FRAME {
        return Err(FrameError::TooLarge(frame.len()));
    }
    let (&kind, rest) = frame.split_first().ok_or(FrameError::Empty)?;
    match kind {
        CHANNEL => std::str::from_utf8(rest).map(ClientFrame::Channel).map_err(|_| FrameError::NotText),
        ACK if frame.len() == ACK_LEN => {
            let seq = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]);
            let mut at = [0u8; 8];
            at.copy_from_slice(&rest[4..12]);
            Ok(ClientFrame::Ack { seq, at_us: u64::from_be_bytes(at) })
        }
        ACK => Err(FrameError::BadAck(frame.len())),
        MIC if frame.len() > VIDEO_HEADER && frame.len() - VIDEO_HEADER <= MAX_MIC_PACKET => Ok(ClientFrame::Mic {
            seq: u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]),
            packet: &frame[VIDEO_HEADER..],
        }),
        MIC => Err(FrameError::BadMic(frame.len())),
        other => Err(FrameError::UnknownKind(other)),
    }
}

/// Whether `frame` is an acknowledgement (which may still arrive just after the page
/// moved its media off the socket, and is then ignored).
pub fn is_ack(frame: &[u8]) -> bool {
    frame.len() == ACK_LEN && frame[0] == ACK
}

/// Whether `frame` is microphone audio (which may still arrive just after the page moved
/// its media off the socket, and is then dropped).
pub fn is_mic(frame: &[u8]) -> bool {
    frame.first() == Some(&MIC)
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
        assert_eq!(video_seq(&f), Some(0x0102_0304));
        assert_eq!(video_seq(&channel("x")), None);
    }

    #[test]
    fn audio_and_mic_frames_share_the_video_header_layout() {
        let f = audio(7, 20_000, &[0xfc, 1, 2]);
        assert_eq!(&f[..VIDEO_HEADER], &[4, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0x4e, 0x20]);
        assert_eq!(&f[VIDEO_HEADER..], &[0xfc, 1, 2]);
        let mut mic = f.to_vec();
        mic[0] = MIC;
        assert_eq!(parse_client(&mic), Ok(ClientFrame::Mic { seq: 7, packet: &[0xfc, 1, 2] }));
    }

    #[test]
    fn channel_frames_round_trip() {
        let f = channel(r#"{"t":"k"}"#);
        assert_eq!(f[0], CHANNEL);
        assert_eq!(parse_client(&f), Ok(ClientFrame::Channel(r#"{"t":"k"}"#)));
    }

    #[test]
    fn malformed_client_frames_are_refused_with_their_reason() {
        assert_eq!(parse_client(&[]), Err(FrameError::Empty));
        assert_eq!(parse_client(&[2, 0, 0]), Err(FrameError::UnknownKind(2)));
        assert_eq!(parse_client(&[3, 0, 0]), Err(FrameError::BadAck(3)));
        let ack = [3, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0x10, 0x00];
        assert_eq!(parse_client(&ack), Ok(ClientFrame::Ack { seq: 258, at_us: 4096 }));
        assert!(is_ack(&ack) && !is_ack(&[3, 0]));
        assert_eq!(parse_client(&[1, 0xff, 0xfe]), Err(FrameError::NotText));
        assert_eq!(parse_client(&[5, 0, 0, 0, 0, 1]), Err(FrameError::BadMic(6)), "short header");
        assert_eq!(parse_client(&[5; VIDEO_HEADER]), Err(FrameError::BadMic(VIDEO_HEADER)), "no packet");
        let huge = vec![5u8; VIDEO_HEADER + MAX_MIC_PACKET + 1];
        assert_eq!(parse_client(&huge), Err(FrameError::BadMic(huge.len())));
        let big = vec![1u8; MAX_CLIENT_FRAME + 1];
        assert_eq!(parse_client(&big), Err(FrameError::TooLarge(MAX_CLIENT_FRAME + 1)));
        // Exactly at the limit is fine.
        let mut ok = vec![b'a'; MAX_CLIENT_FRAME];
        ok[0] = CHANNEL;
        assert!(parse_client(&ok).is_ok());
    }
}

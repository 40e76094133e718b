//! Clipboard content on the data channel: reassembly of the browser's `clip` chunks and
//! splitting of X clipboard content into `clip` messages (`docs/protocol.md`).
//!
//! Pure: no sockets, no X. A transfer is a run of chunks with one `id`, `seq` counting
//! from 0, the one with `last` completing it. The channel is ordered and reliable, so a
//! chunk out of sequence means a broken or hostile sender: the transfer is dropped rather
//! than patched up, and the next transfer starts clean.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::Serialize;

use crate::input::protocol::ClipChunk;

/// Largest clipboard content accepted or sent by default: big enough for a screenshot
/// as PNG, small enough that a stuck transfer cannot eat the server's memory.
pub const DEFAULT_MAX_BYTES: usize = 16 * 1024 * 1024;

/// Raw bytes per outgoing chunk. As base64 that is 60 KiB, so a message with its envelope
/// stays under the 64 KiB SCTP max-message-size webrtcbin announces (bigger messages are
/// refused by both ends) and under the 96 KiB the input parser takes. A multiple of 3, so
/// no chunk but the last has base64 padding. The browser uses the same size.
pub const CHUNK_RAW_BYTES: usize = 45 * 1024;

/// Every `clip` message stays under this many bytes (see [`CHUNK_RAW_BYTES`]).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The formats that cross the data channel.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ClipMime {
    /// UTF-8 text.
    Text,
    /// A PNG image, passed through untouched.
    Png,
}

impl ClipMime {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text/plain" => Some(Self::Text),
            "image/png" => Some(Self::Png),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text/plain",
            Self::Png => "image/png",
        }
    }
}

/// Complete clipboard content.
#[derive(Clone, PartialEq, Eq)]
pub struct Clip {
    pub mime: ClipMime,
    pub bytes: Vec<u8>,
}

/// Never prints the content: clipboards hold passwords.
impl std::fmt::Debug for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Clip({}, {} bytes)", self.mime.as_str(), self.bytes.len())
    }
}

/// Why a browser's clipboard transfer was dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkError {
    #[error("clipboard transfer {id}: unsupported type {mime:?} (only text/plain and image/png)")]
    UnknownMime { id: u32, mime: String },
    #[error("clipboard transfer {id}: chunk {got} arrived where {expected} was expected")]
    OutOfOrder { id: u32, expected: u32, got: u32 },
    #[error("clipboard transfer {id}: chunk {seq} is not valid base64")]
    BadBase64 { id: u32, seq: u32 },
    #[error("clipboard transfer {id}: type changed from {from} to {to} mid-transfer")]
    MimeChanged { id: u32, from: &'static str, to: String },
    #[error("clipboard transfer {id}: over the {limit}-byte limit (--clipboard-max-bytes)")]
    TooLarge { id: u32, limit: usize },
    #[error("clipboard transfer {id}: text/plain content is not UTF-8")]
    NotUtf8 { id: u32 },
}

struct Partial {
    id: u32,
    mime: ClipMime,
    next_seq: u32,
    bytes: Vec<u8>,
}

/// Reassembles one sender's transfers. A chunk with `seq` 0 starts a new transfer and
/// abandons an unfinished one (the browser gave up on it); any error drops the transfer
/// in progress, so the state after an error is the same as after a completed transfer.
pub struct Reassembler {
    max_bytes: usize,
    current: Option<Partial>,
    /// The transfer last dropped: its remaining chunks are ignored quietly (one error
    /// per transfer, not one per chunk).
    dropped: Option<u32>,
}

impl Reassembler {
    pub fn new(max_bytes: usize) -> Self {
        Self { max_bytes, current: None, dropped: None }
    }

    /// Whether a transfer is under way (started, not yet completed or failed).
    pub fn in_progress(&self) -> bool {
        self.current.is_some()
    }

    /// Feeds one chunk; returns the content when `chunk` completes it.
    pub fn push(&mut self, chunk: &ClipChunk) -> Result<Option<Clip>, ChunkError> {
        if chunk.seq != 0 && self.dropped == Some(chunk.id) {
            return Ok(None);
        }
        let result = self.accept(chunk);
        if result.is_err() {
            self.current = None;
            self.dropped = Some(chunk.id);
        }
        result
    }

    fn accept(&mut self, chunk: &ClipChunk) -> Result<Option<Clip>, ChunkError> {
        let id = chunk.id;
        if chunk.seq == 0 {
            let mime =
                ClipMime::parse(&chunk.mime).ok_or_else(|| ChunkError::UnknownMime { id, mime: chunk.mime.clone() })?;
            self.current = Some(Partial { id, mime, next_seq: 0, bytes: Vec::new() });
        }
        let Some(partial) = self.current.as_mut() else {
            return Err(ChunkError::OutOfOrder { id, expected: 0, got: chunk.seq });
        };
        if partial.id != id || partial.next_seq != chunk.seq {
            let expected = if partial.id == id { partial.next_seq } else { 0 };
            return Err(ChunkError::OutOfOrder { id, expected, got: chunk.seq });
        }
        if partial.mime.as_str() != chunk.mime {
            return Err(ChunkError::MimeChanged { id, from: partial.mime.as_str(), to: chunk.mime.clone() });
        }
        // Checked before decoding too (with the least the chunk can decode to, padding
        // aside), so an oversized chunk costs no decoding work.
        if partial.bytes.len() + (chunk.data.len() / 4 * 3).saturating_sub(2) > self.max_bytes {
            return Err(ChunkError::TooLarge { id, limit: self.max_bytes });
        }
        let decoded = BASE64.decode(chunk.data.as_bytes()).map_err(|_| ChunkError::BadBase64 { id, seq: chunk.seq })?;
        if partial.bytes.len() + decoded.len() > self.max_bytes {
            return Err(ChunkError::TooLarge { id, limit: self.max_bytes });
        }
        partial.bytes.extend_from_slice(&decoded);
        partial.next_seq += 1;
        if !chunk.last {
            return Ok(None);
        }
        let Some(done) = self.current.take() else { return Ok(None) };
        if done.mime == ClipMime::Text && std::str::from_utf8(&done.bytes).is_err() {
            return Err(ChunkError::NotUtf8 { id });
        }
        Ok(Some(Clip { mime: done.mime, bytes: done.bytes }))
    }
}

#[derive(Serialize)]
struct WireChunk<'a> {
    t: &'static str,
    id: u32,
    mime: &'static str,
    seq: u32,
    last: bool,
    data: &'a str,
}

/// The `clip` messages that carry `clip` to a browser, in order; lazily, so a 16 MiB
/// clipboard is never held as base64 all at once. Empty content is one empty chunk.
pub fn messages(id: u32, clip: &Clip) -> impl Iterator<Item = String> + '_ {
    let count = clip.bytes.len().div_ceil(CHUNK_RAW_BYTES).max(1);
    (0..count).map(move |i| {
        let start = i * CHUNK_RAW_BYTES;
        let end = (start + CHUNK_RAW_BYTES).min(clip.bytes.len());
        let data = BASE64.encode(&clip.bytes[start..end]);
        let wire =
            WireChunk { t: "clip", id, mime: clip.mime.as_str(), seq: i as u32, last: i + 1 == count, data: &data };
        // Serializing a struct of strings, numbers and bools cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::protocol::{parse_input, MAX_CLIP_MESSAGE_BYTES};
    use crate::input::InputEvent;

    fn chunk(id: u32, mime: &str, seq: u32, last: bool, bytes: &[u8]) -> ClipChunk {
        ClipChunk { id, mime: mime.into(), seq, last, data: BASE64.encode(bytes) }
    }

    fn text(s: &str) -> Clip {
        Clip { mime: ClipMime::Text, bytes: s.as_bytes().to_vec() }
    }

    /// What a browser would send for `clip`: the server's own messages, parsed back.
    fn as_chunks(id: u32, clip: &Clip) -> Vec<ClipChunk> {
        messages(id, clip)
            .map(|m| match parse_input(&m) {
                Ok(InputEvent::Clip(c)) => c,
                other => panic!("not a clip chunk: {other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_single_chunk_transfer_completes_at_last() {
        let mut r = Reassembler::new(DEFAULT_MAX_BYTES);
        assert_eq!(r.push(&chunk(1, "text/plain", 0, true, b"hello")), Ok(Some(text("hello"))));
        assert!(!r.in_progress());
    }

    #[test]
    fn chunks_are_joined_in_order() {
        let mut r = Reassembler::new(DEFAULT_MAX_BYTES);
        assert_eq!(r.push(&chunk(7, "text/plain", 0, false, b"hel")), Ok(None));
        assert_eq!(r.push(&chunk(7, "text/plain", 1, false, b"lo ")), Ok(None));
        assert_eq!(r.push(&chunk(7, "text/plain", 2, true, "wörld".as_bytes())), Ok(Some(text("hello wörld"))));
    }

    #[test]
    fn a_skipped_chunk_drops_the_transfer() {
        let mut r = Reassembler::new(DEFAULT_MAX_BYTES);
        r.push(&chunk(1, "text/plain", 0, false, b"a")).unwrap();
        let err = r.push(&chunk(1, "text/plain", 2, true, b"c")).unwrap_err();
        assert_eq!(err, ChunkError::OutOfOrder { id: 1, expected: 1, got: 2 });
        assert!(!r.in_progress());
    }

    #[test]
    fn the_rest_of_a_dropped_transfer_is_ignored_without_more_errors() {
        let mut r = Reassembler::new(4);
        r.push(&chunk(1, "text/plain", 0, false, b"1234")).unwrap();
        assert!(r.push(&chunk(1, "text/plain", 1, false, b"5")).is_err());
        assert_eq!(r.push(&chunk(1, "text/plain", 2, true, b"6")), Ok(None));
        assert_eq!(r.push(&chunk(2, "text/plain", 0, true, b"ok")), Ok(Some(text("ok"))));
    }

    #[test]
    fn a_continuation_without_a_start_is_refused() {
        let mut r = Reassembler::new(DEFAULT_MAX_BYTES);
        assert!(matches!(r.push(&chunk(3, "text/plain", 1, true, b"x")), Err(ChunkError::OutOfOrder { .. })));
    }

    #[test]
    fn a_chunk_of_another_transfer_mid_way_is_refused() {
        let mut r = Reassembler::new(DEFAULT_MAX_BYTES);
        r.push(&chunk(1, "text/plain", 0, false, b"a")).unwrap();
        assert!(matches!(r.push(&chunk(2, "text/plain", 1, true, b"b")), Err(ChunkError::OutOfOrder { .. })));
    }

    #[test]
    fn a_new_transfer_replaces_an_abandoned_one() {
        let mut r = Reassembler::new(DEFAULT_MAX_BYTES);
        r.push(&chunk(1, "text/plain", 0, false, b"old")).unwrap();
        assert_eq!(r.push(&chunk(2, "text/plain", 0, true, b"new")), Ok(Some(text("new"))));
    }

    #[test]
    fn bad_base64_drops_the_transfer() {
        let mut r = Reassembler::new(DEFAULT_MAX_BYTES);
        r.push(&chunk(1, "text/plain", 0, false, b"a")).unwrap();
        let bad = ClipChunk { id: 1, mime: "text/plain".into(), seq: 1, last: true, data: "not base64!".into() };
        assert_eq!(r.push(&bad), Err(ChunkError::BadBase64 { id: 1, seq: 1 }));
        assert!(!r.in_progress());
    }

    #[test]
    fn a_type_change_mid_transfer_is_refused() {
        let mut r = Reassembler::new(DEFAULT_MAX_BYTES);
        r.push(&chunk(1, "text/plain", 0, false, b"a")).unwrap();
        assert!(matches!(r.push(&chunk(1, "image/png", 1, true, b"b")), Err(ChunkError::MimeChanged { .. })));
        assert!(!r.in_progress());
    }

    #[test]
    fn unknown_types_are_refused() {
        let mut r = Reassembler::new(DEFAULT_MAX_BYTES);
        assert!(matches!(r.push(&chunk(1, "text/html", 0, true, b"<b>")), Err(ChunkError::UnknownMime { .. })));
    }

    #[test]
    fn content_over_the_limit_is_refused_and_forgotten() {
        let mut r = Reassembler::new(10);
        r.push(&chunk(1, "text/plain", 0, false, b"123456")).unwrap();
        assert_eq!(r.push(&chunk(1, "text/plain", 1, true, b"789012")), Err(ChunkError::TooLarge { id: 1, limit: 10 }));
        assert!(!r.in_progress());
        // The next transfer is unaffected.
        assert_eq!(r.push(&chunk(2, "text/plain", 0, true, b"ok")), Ok(Some(text("ok"))));
    }

    #[test]
    fn content_exactly_at_the_limit_is_accepted() {
        let mut r = Reassembler::new(4);
        assert_eq!(r.push(&chunk(1, "text/plain", 0, true, b"1234")), Ok(Some(text("1234"))));
    }

    #[test]
    fn text_that_is_not_utf8_is_refused() {
        let mut r = Reassembler::new(DEFAULT_MAX_BYTES);
        assert_eq!(r.push(&chunk(1, "text/plain", 0, true, &[0xff, 0xfe])), Err(ChunkError::NotUtf8 { id: 1 }));
    }

    #[test]
    fn png_bytes_pass_untouched() {
        let bytes: Vec<u8> = (0..=255).collect();
        let mut r = Reassembler::new(DEFAULT_MAX_BYTES);
        let got = r.push(&chunk(1, "image/png", 0, true, &bytes)).unwrap();
        assert_eq!(got, Some(Clip { mime: ClipMime::Png, bytes }));
    }

    #[test]
    fn empty_content_is_one_last_chunk() {
        let clip = text("");
        let msgs: Vec<String> = messages(5, &clip).collect();
        assert_eq!(msgs, vec![r#"{"t":"clip","id":5,"mime":"text/plain","seq":0,"last":true,"data":""}"#]);
    }

    #[test]
    fn one_megabyte_splits_into_bounded_messages_and_joins_back_byte_exact() {
        let bytes: Vec<u8> = (0..1_048_576u32).map(|i| (i * 7 % 251) as u8).collect();
        let clip = Clip { mime: ClipMime::Png, bytes };
        assert!(messages(9, &clip).all(|m| m.len() < MAX_MESSAGE_BYTES && m.len() < MAX_CLIP_MESSAGE_BYTES));
        let chunks = as_chunks(9, &clip);
        assert_eq!(chunks.len(), 1_048_576usize.div_ceil(CHUNK_RAW_BYTES));
        assert_eq!(chunks.iter().filter(|c| c.last).count(), 1);
        let mut r = Reassembler::new(DEFAULT_MAX_BYTES);
        let mut done = None;
        for c in &chunks {
            done = r.push(c).unwrap();
        }
        assert_eq!(done, Some(clip));
    }

    #[test]
    fn content_of_an_exact_chunk_multiple_ends_on_a_full_chunk() {
        let clip = text(&"x".repeat(2 * CHUNK_RAW_BYTES));
        let chunks = as_chunks(1, &clip);
        assert_eq!(chunks.len(), 2);
        assert!(chunks[1].last && !chunks[0].last);
    }

    #[test]
    fn debug_output_never_shows_the_content() {
        assert_eq!(format!("{:?}", text("secret")), "Clip(text/plain, 6 bytes)");
    }
}

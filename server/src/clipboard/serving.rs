//! The INCR transfers Kelpie serves to X clients reading the browser's clipboard content,
//! kept apart from the X connection so that their bounds can be tested without one.
//!
//! Why bounded: every SelectionRequest for content larger than one property starts a
//! transfer that lives until the requestor has read it or [`SERVE_TIMEOUT`] passes. Before
//! this, each one held its own copy of the content and their number had no limit, so a
//! local X client asking for 500 conversions into distinct properties made Kelpie hold
//! 500 copies (security review 2026-12, finding 28). Now every transfer of one clip in one
//! format shares one encoding ([`Serving::encoded`]), and at most [`MAX_SERVING`] run at
//! once; further requests are refused (the requestor gets property None, as for a format
//! we do not hold) until one ends.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chunks::{Clip, ClipMime};
use super::formats::{encode_text, Target};

/// How long a requestor may take between reading two pieces.
pub const SERVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Transfers served at once. A paste reads one at a time; clipboard managers add one more.
pub const MAX_SERVING: usize = 8;

/// `clip` as the bytes of `target`: PNG as it is, text re-encoded for the target (Latin-1
/// for `STRING`, UTF-8 otherwise).
pub fn bytes_as(clip: &Clip, target: Target) -> Cow<'_, [u8]> {
    match clip.mime {
        ClipMime::Text => Cow::Owned(encode_text(target, &clip.bytes)),
        ClipMime::Png => Cow::Borrowed(&clip.bytes),
    }
}

/// One transfer: which window's property, in what type, how far it has come.
#[derive(Debug)]
pub struct Outgoing {
    pub requestor: u32,
    pub property: u32,
    pub type_: u32,
    pub bytes: Arc<[u8]>,
    pub offset: usize,
    pub deadline: Instant,
}

/// Why a transfer was not started.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{MAX_SERVING} clipboard transfers to X clients are already under way")]
pub struct Full;

#[derive(Default)]
pub struct Serving {
    transfers: Vec<Outgoing>,
    /// The last encoding made, shared by every transfer of that clip in that format.
    encoded: Option<(Arc<Clip>, Target, Arc<[u8]>)>,
}

impl Serving {
    /// `clip` as the bytes of `target`, made once per clip and target.
    pub fn encoded(&mut self, clip: &Arc<Clip>, target: Target) -> Arc<[u8]> {
        if let Some((c, t, bytes)) = &self.encoded {
            if Arc::ptr_eq(c, clip) && *t == target {
                return bytes.clone();
            }
        }
        let bytes: Arc<[u8]> = bytes_as(clip, target).into();
        self.encoded = Some((clip.clone(), target, bytes.clone()));
        bytes
    }

    /// Whether a transfer into this property could start now (one into the same property
    /// of the same window is replaced, so it never counts against the limit).
    pub fn admits(&self, requestor: u32, property: u32) -> Result<(), Full> {
        let others = self.transfers.iter().filter(|o| !(o.requestor == requestor && o.property == property)).count();
        if others >= MAX_SERVING {
            Err(Full)
        } else {
            Ok(())
        }
    }

    /// Starts a transfer, replacing one into the same property.
    pub fn start(&mut self, o: Outgoing) -> Result<(), Full> {
        self.admits(o.requestor, o.property)?;
        self.transfers.retain(|t| !(t.requestor == o.requestor && t.property == o.property));
        self.transfers.push(o);
        Ok(())
    }

    pub fn get_mut(&mut self, requestor: u32, property: u32) -> Option<&mut Outgoing> {
        self.transfers.iter_mut().find(|o| o.requestor == requestor && o.property == property)
    }

    /// Ends a transfer; true if its requestor has no other under way.
    pub fn finish(&mut self, requestor: u32, property: u32) -> Option<(Outgoing, bool)> {
        let i = self.transfers.iter().position(|o| o.requestor == requestor && o.property == property)?;
        let done = self.transfers.remove(i);
        let last = !self.transfers.iter().any(|o| o.requestor == requestor);
        Some((done, last))
    }

    /// Drops transfers whose requestor stopped reading; how many.
    pub fn expire(&mut self, now: Instant) -> usize {
        let before = self.transfers.len();
        self.transfers.retain(|o| o.deadline > now);
        before - self.transfers.len()
    }

    pub fn next_deadline(&self) -> Option<Instant> {
        self.transfers.iter().map(|o| o.deadline).min()
    }

    /// The shared encoding is dropped with the clip it came from.
    pub fn forget_encoding(&mut self) {
        self.encoded = None;
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.transfers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clip(text: &str) -> Arc<Clip> {
        Arc::new(Clip { mime: ClipMime::Text, bytes: text.as_bytes().to_vec() })
    }

    fn transfer(s: &mut Serving, c: &Arc<Clip>, requestor: u32, property: u32) -> Result<(), Full> {
        let bytes = s.encoded(c, Target::Utf8);
        s.start(Outgoing { requestor, property, type_: 1, bytes, offset: 0, deadline: Instant::now() + SERVE_TIMEOUT })
    }

    #[test]
    fn transfers_of_one_clip_share_one_copy_of_its_bytes() {
        let mut s = Serving::default();
        let c = clip(&"x".repeat(1 << 20));
        let a = s.encoded(&c, Target::Utf8);
        let b = s.encoded(&c, Target::Utf8);
        assert!(Arc::ptr_eq(&a, &b));
        // Another format, or another clip with the same content, is encoded anew.
        let latin = s.encoded(&c, Target::Latin1);
        assert!(!Arc::ptr_eq(&a, &latin));
        let c2 = clip(&"x".repeat(1 << 20));
        assert!(!Arc::ptr_eq(&s.encoded(&c2, Target::Utf8), &a));
    }

    #[test]
    fn five_hundred_requests_into_distinct_properties_hold_at_most_the_limit_and_one_copy() {
        let mut s = Serving::default();
        let c = clip(&"y".repeat(300_000));
        let mut refused = 0;
        for property in 0..500 {
            if transfer(&mut s, &c, 7, property) == Err(Full) {
                refused += 1;
            }
        }
        assert_eq!(s.len(), MAX_SERVING);
        assert_eq!(refused, 500 - MAX_SERVING);
        let first = s.get_mut(7, 0).unwrap().bytes.clone();
        for p in 1..MAX_SERVING as u32 {
            assert!(Arc::ptr_eq(&first, &s.get_mut(7, p).unwrap().bytes));
        }
        // The transfers, the cache and `first` itself: the only references to one buffer.
        assert_eq!(Arc::strong_count(&first), MAX_SERVING + 2);
    }

    #[test]
    fn a_finished_transfer_makes_room_and_a_repeat_into_the_same_property_replaces() {
        let mut s = Serving::default();
        let c = clip("z");
        for p in 0..MAX_SERVING as u32 {
            transfer(&mut s, &c, 1, p).unwrap();
        }
        assert_eq!(transfer(&mut s, &c, 2, 0), Err(Full));
        // The same window and property again: replaced, not refused.
        transfer(&mut s, &c, 1, 3).unwrap();
        assert_eq!(s.len(), MAX_SERVING);
        let (_, last) = s.finish(1, 0).unwrap();
        assert!(!last, "window 1 has other transfers");
        transfer(&mut s, &c, 2, 0).unwrap();
        let (_, last) = s.finish(2, 0).unwrap();
        assert!(last);
        assert!(s.finish(2, 0).is_none());
    }

    #[test]
    fn stalled_transfers_expire() {
        let mut s = Serving::default();
        let c = clip("w");
        transfer(&mut s, &c, 1, 1).unwrap();
        transfer(&mut s, &c, 1, 2).unwrap();
        s.get_mut(1, 2).unwrap().deadline += SERVE_TIMEOUT;
        let later = Instant::now() + SERVE_TIMEOUT + Duration::from_millis(1);
        assert_eq!(s.next_deadline(), Some(s.get_mut(1, 1).unwrap().deadline));
        assert_eq!(s.expire(later), 1);
        assert!(s.get_mut(1, 2).is_some());
    }
}

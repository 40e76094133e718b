//! Reading a viewer's NACKs (RFC 4585 generic NACK) for packets asked for more than once:
//! the sign that retransmission did not repair a loss, so the viewer needs a keyframe.
//! Pure, apart from the clock passed in.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// RTCP transport-layer feedback (RTPFB).
pub const RTPFB: u32 = 205;
/// Its generic NACK format.
pub const GENERIC_NACK: u32 = 1;
/// Sequence numbers remembered: a few seconds of video at a few Mbit/s.
const REMEMBERED: usize = 1024;
/// At most one keyframe from repeated NACKs per this long: a loss burst repeats many.
const KEYFRAME_EVERY: Duration = Duration::from_secs(1);

/// The sequence numbers a generic NACK's FCI asks for (each entry: a packet id and a
/// bitmask of the 16 after it).
pub fn requested(fci: &[u8]) -> Vec<u16> {
    let mut out = Vec::new();
    for e in fci.chunks_exact(4) {
        let pid = u16::from_be_bytes([e[0], e[1]]);
        let blp = u16::from_be_bytes([e[2], e[3]]);
        out.push(pid);
        out.extend((0..16).filter(|i| blp & (1 << i) != 0).map(|i| pid.wrapping_add(i + 1)));
    }
    out
}

/// Which packets a viewer has asked for.
#[derive(Debug, Default)]
pub struct Repeats {
    seen: VecDeque<u16>,
    last_keyframe: Option<Instant>,
}

impl Repeats {
    /// One NACK's FCI at `now`; true when a keyframe should be asked for (some packet
    /// was asked for before, and no keyframe was asked for this way within a second).
    pub fn nacked(&mut self, fci: &[u8], now: Instant) -> bool {
        let mut repeated = false;
        for seq in requested(fci) {
            if self.seen.contains(&seq) {
                repeated = true;
            } else {
                if self.seen.len() >= REMEMBERED {
                    self.seen.pop_front();
                }
                self.seen.push_back(seq);
            }
        }
        if !repeated || self.last_keyframe.is_some_and(|t| now.duration_since(t) < KEYFRAME_EVERY) {
            return false;
        }
        self.last_keyframe = Some(now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fci_entries_name_a_packet_and_up_to_sixteen_after_it() {
        assert_eq!(requested(&[0, 10, 0, 0]), vec![10]);
        assert_eq!(requested(&[0, 10, 0, 0b101]), vec![10, 11, 13]);
        assert_eq!(requested(&[0xff, 0xff, 0, 1]), vec![65535, 0], "wraps");
        assert_eq!(requested(&[0, 1, 0]), Vec::<u16>::new(), "a truncated entry is ignored");
    }

    #[test]
    fn a_packet_asked_for_twice_asks_for_a_keyframe_at_most_once_a_second() {
        let mut r = Repeats::default();
        let t = Instant::now();
        assert!(!r.nacked(&[0, 5, 0, 0], t), "first time: retransmission may repair it");
        assert!(!r.nacked(&[0, 6, 0, 0], t));
        assert!(r.nacked(&[0, 5, 0, 0], t + Duration::from_millis(100)), "asked again");
        assert!(!r.nacked(&[0, 6, 0, 0], t + Duration::from_millis(200)), "not again within a second");
        assert!(r.nacked(&[0, 6, 0, 0], t + Duration::from_millis(1200)));
    }
}

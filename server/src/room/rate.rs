//! Token buckets for what a participant may send per second (pure: `now` is passed in).
//!
//! Input is cheap to send and not always cheap to carry out: one `txt` message can ask for
//! up to 1,024 keymap changes on the X server. Each participant gets a bucket of input
//! events and one of text characters; a message that does not fit is refused and counted
//! like any other refusal. The sizes leave ordinary use far below them (a 1,000 Hz mouse
//! after the browser's coalescing, fast typing, an IME committing a sentence); long text
//! belongs on the clipboard, which has its own pacing.

use std::time::Instant;

/// Input events (keys, buttons, moves, wheel, text messages): a burst of 1,000, 500/s.
pub const EVENTS: (u32, u32) = (1000, 500);
/// Characters of `txt` messages: a burst of 256, 128/s.
pub const TEXT_CHARS: (u32, u32) = (256, 128);

/// `capacity` tokens, refilled at `per_sec`; starts full.
#[derive(Debug, Clone)]
pub struct Bucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl Bucket {
    pub fn new((capacity, per_sec): (u32, u32)) -> Self {
        Self { capacity: f64::from(capacity), per_sec: f64::from(per_sec), tokens: f64::from(capacity), last: None }
    }

    /// Takes `n` tokens if there are that many now; otherwise takes none.
    pub fn take(&mut self, n: u32, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.per_sec;
            self.tokens = (self.tokens + refill).min(self.capacity);
        }
        self.last = Some(now);
        if self.tokens >= f64::from(n) {
            self.tokens -= f64::from(n);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_up_to_the_capacity_passes_then_the_rate_rules() {
        let t0 = Instant::now();
        let mut b = Bucket::new((10, 5));
        assert!((0..10).all(|_| b.take(1, t0)));
        assert!(!b.take(1, t0), "empty");
        assert!(b.take(1, t0 + Duration::from_millis(200)), "5/s: one token per 200 ms");
        assert!(!b.take(1, t0 + Duration::from_millis(250)));
        assert!(b.take(10, t0 + Duration::from_secs(60)), "refills to the capacity, no more");
        assert!(!b.take(1, t0 + Duration::from_secs(60)));
    }

    #[test]
    fn a_request_larger_than_the_capacity_never_passes_and_costs_nothing() {
        let t0 = Instant::now();
        let mut b = Bucket::new(TEXT_CHARS);
        assert!(!b.take(1000, t0), "a 1,000-character txt never fits 256");
        assert!(b.take(256, t0), "and it took nothing");
    }
}

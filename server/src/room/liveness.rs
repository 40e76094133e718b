//! When a participant counts as gone although its socket never closed (a laptop lid
//! shut, a NAT that forgot the flow). Pure: the shell reports what it heard and when.

use std::time::{Duration, Instant};

/// Tracks the last sign of life of one participant.
#[derive(Debug, Clone, Copy)]
pub struct Liveness {
    last_heard: Instant,
    limit: Duration,
}

impl Liveness {
    pub fn new(now: Instant, limit: Duration) -> Self {
        Self { last_heard: now, limit }
    }

    /// Any frame or pong from the browser.
    pub fn heard(&mut self, now: Instant) {
        self.last_heard = self.last_heard.max(now);
    }

    /// `Err(silence)` once nothing was heard for longer than the limit.
    pub fn check(&self, now: Instant) -> Result<(), Duration> {
        let silence = now.saturating_duration_since(self.last_heard);
        if silence > self.limit {
            Err(silence)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_beyond_the_limit_is_death_and_any_frame_revives() {
        let t = Instant::now();
        let mut l = Liveness::new(t, Duration::from_secs(8));
        assert!(l.check(t + Duration::from_secs(8)).is_ok());
        assert_eq!(l.check(t + Duration::from_secs(9)), Err(Duration::from_secs(9)));
        l.heard(t + Duration::from_secs(5));
        assert!(l.check(t + Duration::from_secs(9)).is_ok());
        // A late report of an older frame does not move the clock back.
        l.heard(t + Duration::from_secs(1));
        assert!(l.check(t + Duration::from_secs(13)).is_ok());
        assert!(l.check(t + Duration::from_secs(14)).is_err());
    }
}

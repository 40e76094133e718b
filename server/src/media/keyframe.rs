//! Merging keyframe requests without losing any.
//!
//! Several viewers joining at once, or several PLIs for one loss, need one keyframe, not a
//! burst that floods the link. But a request must never be dropped outright: a viewer that
//! asks right after another got its keyframe would otherwise wait forever for a picture.

use std::time::{Duration, Instant};

/// What to do with a keyframe request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Force a keyframe now.
    Now,
    /// Force one after this delay (a timer must be started).
    After(Duration),
    /// One is already scheduled; it will serve this request too.
    AlreadyScheduled,
}

/// Rate limiter for keyframes: at most one per `min_interval`, and every request served.
#[derive(Debug)]
pub struct KeyframeGate {
    min_interval: Duration,
    last: Option<Instant>,
    scheduled: bool,
}

impl KeyframeGate {
    pub fn new(min_interval: Duration) -> Self {
        Self { min_interval, last: None, scheduled: false }
    }

    pub fn request(&mut self, now: Instant) -> Decision {
        if self.scheduled {
            return Decision::AlreadyScheduled;
        }
        match self.last {
            Some(t) if now.duration_since(t) < self.min_interval => {
                self.scheduled = true;
                Decision::After(self.min_interval - now.duration_since(t))
            }
            _ => {
                self.last = Some(now);
                Decision::Now
            }
        }
    }

    /// The scheduled keyframe was forced at `now`.
    pub fn fired(&mut self, now: Instant) {
        self.scheduled = false;
        self.last = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GAP: Duration = Duration::from_millis(250);

    #[test]
    fn first_request_is_served_at_once() {
        let mut g = KeyframeGate::new(GAP);
        assert_eq!(g.request(Instant::now()), Decision::Now);
    }

    #[test]
    fn a_request_inside_the_interval_is_deferred_not_dropped() {
        let mut g = KeyframeGate::new(GAP);
        let t0 = Instant::now();
        g.request(t0);
        assert_eq!(g.request(t0 + Duration::from_millis(100)), Decision::After(Duration::from_millis(150)));
        assert_eq!(g.request(t0 + Duration::from_millis(120)), Decision::AlreadyScheduled);
        g.fired(t0 + GAP);
        assert_eq!(g.request(t0 + GAP + Duration::from_millis(10)), Decision::After(Duration::from_millis(240)));
    }

    #[test]
    fn requests_spaced_wider_than_the_interval_are_each_served() {
        let mut g = KeyframeGate::new(GAP);
        let t0 = Instant::now();
        assert_eq!(g.request(t0), Decision::Now);
        assert_eq!(g.request(t0 + GAP), Decision::Now);
    }
}

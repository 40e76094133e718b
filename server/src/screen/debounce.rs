//! The resize debounce as a pure rule: the latest request wins once requests have been
//! quiet for a moment, but never later than a bound after the first one, so a window
//! dragged for a long time (or a client sending resizes without pause) still gets its
//! screen resized instead of starving every resize.

use std::time::{Duration, Instant};

/// Holds the newest value until it is due.
#[derive(Debug, Clone)]
pub struct Debounce<T> {
    quiet: Duration,
    max_wait: Duration,
    /// (newest value, when it came, when the first still-pending value came)
    pending: Option<(T, Instant, Instant)>,
}

impl<T> Debounce<T> {
    pub fn new(quiet: Duration, max_wait: Duration) -> Self {
        Self { quiet, max_wait, pending: None }
    }

    /// A new value at `now`; it replaces any pending one.
    pub fn push(&mut self, value: T, now: Instant) {
        let first = self.pending.as_ref().map_or(now, |p| p.2);
        self.pending = Some((value, now, first));
    }

    fn due_at(&self) -> Option<Instant> {
        let (_, last, first) = self.pending.as_ref()?;
        Some((*last + self.quiet).min(*first + self.max_wait))
    }

    /// How long to wait from `now` before the pending value is due (`None`: nothing pending).
    pub fn wait(&self, now: Instant) -> Option<Duration> {
        self.due_at().map(|at| at.saturating_duration_since(now))
    }

    /// The pending value, if it is due at `now`.
    pub fn take_due(&mut self, now: Instant) -> Option<T> {
        if self.due_at()? <= now {
            self.pending.take().map(|p| p.0)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q: Duration = Duration::from_millis(250);
    const MAX: Duration = Duration::from_secs(1);

    fn ms(t: Instant, n: u64) -> Instant {
        t + Duration::from_millis(n)
    }

    #[test]
    fn the_latest_value_wins_after_a_quiet_moment() {
        let t = Instant::now();
        let mut d = Debounce::new(Q, MAX);
        assert_eq!(d.wait(t), None);
        d.push(1, t);
        d.push(2, ms(t, 100));
        assert_eq!(d.take_due(ms(t, 300)), None, "only 200 ms quiet");
        assert_eq!(d.wait(ms(t, 300)), Some(Duration::from_millis(50)));
        assert_eq!(d.take_due(ms(t, 350)), Some(2));
        assert_eq!(d.take_due(ms(t, 2000)), None, "taken once");
    }

    #[test]
    fn a_stream_of_values_is_still_applied_within_the_bound() {
        let t = Instant::now();
        let mut d = Debounce::new(Q, MAX);
        let mut applied = Vec::new();
        for i in 0..30u64 {
            let now = ms(t, i * 100); // every 100 ms: never quiet for 250 ms
            d.push(i, now);
            applied.extend(d.take_due(now));
        }
        assert_eq!(applied, vec![10, 21], "a value goes through at most a second after the first pending one");
    }
}

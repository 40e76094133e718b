//! Where stopped participant branches wait before they are freed.
//!
//! GStreamer 1.22's webrtcbin frees its ICE transports while the libnice agent of the
//! same webrtcbin can still emit signals into them from its own thread (the transports
//! never disconnect their handlers), so freeing a branch right after a browser went away
//! mid-negotiation crashed the whole server with SIGSEGV (reproduced by reloading a page
//! right after it connected, three reloads on average). A stopped branch is therefore
//! kept, in NULL state and out of the pipeline, for [`GRACE`] before its last reference
//! goes; by then its agent has given up on the vanished peer and is silent. The cap bounds
//! what a reconnect storm can hold.
//!
//! The policy is pure (which graves are due at `now`); `Desktop` holds the graves and
//! drops what this returns outside its lock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long a stopped branch is kept before it is freed.
pub const GRACE: Duration = Duration::from_secs(30);
/// Most stopped branches kept at once; beyond that the oldest is freed early.
pub const CAP: usize = 64;

#[derive(Debug)]
pub struct Graves<T> {
    grace: Duration,
    cap: usize,
    kept: VecDeque<(Instant, T)>,
}

impl<T> Graves<T> {
    pub fn new(grace: Duration, cap: usize) -> Self {
        Self { grace, cap: cap.max(1), kept: VecDeque::new() }
    }

    /// Keeps `item`, stopped at `now`; returns what must be freed now (over the cap).
    pub fn bury(&mut self, item: T, now: Instant) -> Vec<T> {
        self.kept.push_back((now, item));
        let mut out = Vec::new();
        while self.kept.len() > self.cap {
            out.extend(self.kept.pop_front().map(|(_, t)| t));
        }
        out
    }

    /// What has waited its grace at `now`.
    pub fn due(&mut self, now: Instant) -> Vec<T> {
        let mut out = Vec::new();
        while self.kept.front().is_some_and(|(at, _)| now.saturating_duration_since(*at) >= self.grace) {
            out.extend(self.kept.pop_front().map(|(_, t)| t));
        }
        out
    }

    /// Everything, at shutdown.
    pub fn drain(&mut self) -> Vec<T> {
        self.kept.drain(..).map(|(_, t)| t).collect()
    }

    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grave_is_freed_only_after_its_grace() {
        let t = Instant::now();
        let mut g = Graves::new(Duration::from_secs(30), 8);
        assert!(g.bury("a", t).is_empty());
        assert!(g.bury("b", t + Duration::from_secs(10)).is_empty());
        assert!(g.due(t + Duration::from_secs(29)).is_empty());
        assert_eq!(g.due(t + Duration::from_secs(30)), vec!["a"]);
        assert_eq!(g.due(t + Duration::from_secs(40)), vec!["b"]);
        assert!(g.is_empty());
    }

    #[test]
    fn over_the_cap_the_oldest_goes_early() {
        let t = Instant::now();
        let mut g = Graves::new(Duration::from_secs(30), 2);
        g.bury(1, t);
        g.bury(2, t);
        assert_eq!(g.bury(3, t), vec![1]);
        assert_eq!(g.len(), 2);
        assert_eq!(g.drain(), vec![2, 3]);
    }
}

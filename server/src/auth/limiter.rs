//! Slows down password and token guessing: too many failures from one address within a
//! window block that address for a while. Time is passed in, so tests need no sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Failures allowed per address per window before it is blocked.
pub const MAX_FAILURES: u32 = 10;
/// The window, and how long a block lasts.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses remembered at most; beyond this the oldest entries are dropped so that a
/// flood of addresses cannot exhaust memory.
const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    since: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct FailureLimiter {
    entries: HashMap<IpAddr, Entry>,
}

impl FailureLimiter {
    /// Whether `ip` is blocked at `now`.
    pub fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        self.entries.get(&ip).and_then(|e| e.blocked_until).is_some_and(|t| now < t)
    }

    /// Records a failure; returns true if it caused a block.
    pub fn fail(&mut self, ip: IpAddr, now: Instant) -> bool {
        if self.entries.len() >= MAX_TRACKED && !self.entries.contains_key(&ip) {
            self.entries
                .retain(|_, e| now.duration_since(e.since) < WINDOW || e.blocked_until.is_some_and(|t| now < t));
            if self.entries.len() >= MAX_TRACKED {
                return false;
            }
        }
        let e = self.entries.entry(ip).or_insert(Entry { since: now, failures: 0, blocked_until: None });
        if now.duration_since(e.since) >= WINDOW {
            *e = Entry { since: now, failures: 0, blocked_until: None };
        }
        e.failures += 1;
        if e.failures >= MAX_FAILURES && e.blocked_until.is_none() {
            e.blocked_until = Some(now + WINDOW);
            return true;
        }
        false
    }

    /// A success clears the address's record.
    pub fn succeed(&mut self, ip: IpAddr) {
        self.entries.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn blocks_after_too_many_failures_and_unblocks_later() {
        let mut l = FailureLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES - 1 {
            assert!(!l.fail(IP, t0 + Duration::from_secs(u64::from(i))));
        }
        assert!(!l.is_blocked(IP, t0 + Duration::from_secs(10)));
        assert!(l.fail(IP, t0 + Duration::from_secs(10)));
        assert!(l.is_blocked(IP, t0 + Duration::from_secs(11)));
        assert!(!l.is_blocked(IP, t0 + Duration::from_secs(71)));
    }

    #[test]
    fn failures_spread_beyond_the_window_do_not_block() {
        let mut l = FailureLimiter::default();
        let t0 = Instant::now();
        for i in 0..30u64 {
            l.fail(IP, t0 + Duration::from_secs(i * 7));
        }
        assert!(!l.is_blocked(IP, t0 + Duration::from_secs(211)));
    }

    #[test]
    fn success_forgets_failures() {
        let mut l = FailureLimiter::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            l.fail(IP, t0);
        }
        l.succeed(IP);
        assert!(!l.fail(IP, t0));
    }
}

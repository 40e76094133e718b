//! Slows down password guessing without ever locking out the person who knows it.
//!
//! The old limiter blocked an address after ten failures, even for the right password.
//! Behind a proxy (ingress, jupyter-server-proxy, nginx, Open OnDemand) every user has
//! the proxy's address, so a stranger or the owner's own stale tabs locked everyone out.
//!
//! Now:
//! - Only wrong *passwords* count. Tokens are 256-bit HMACs: nobody guesses one, so a bad
//!   or expired token (a stale tab, a restarted desktop) costs its sender nothing and
//!   slows nobody else.
//! - Failures are counted per key: the client (the address the trusted proxy forwarded
//!   for, else the peer; IPv6 by /64, since one host holds a whole /64) plus the user
//!   name presented. A global budget catches guesses spread over many addresses.
//! - A key over its budget is not refused: its password checks are *delayed*
//!   ([`Throttle::delay`]) and, in the HTTP shell, run a few at a time. Right passwords
//!   get in, late; guessing drops to a few tries a second. Delaying right and wrong
//!   answers alike matters: if only failures waited, a guesser could tell a hit by its
//!   speed and abandon every slow request.
//! - A success does not wipe the key's failures (it would let a guesser who shares an
//!   address with the real user reset the count); failures age out with the window.
//!
//! Time is passed in, so tests need no sleeping.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Password failures allowed per key per window before its checks are delayed.
pub const MAX_FAILURES: u32 = 10;
/// Password failures allowed per window across all keys before every check is delayed.
pub const GLOBAL_MAX_FAILURES: u32 = 200;
/// The window failures are counted in.
pub const WINDOW: Duration = Duration::from_secs(60);
/// How long a check waits once over budget.
pub const DELAY: Duration = Duration::from_secs(2);
/// Keys remembered at most; beyond this new keys count only towards the global budget,
/// so that a flood of addresses cannot exhaust memory.
const MAX_TRACKED: usize = 10_000;

/// Who is failing: a client and the user name presented.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    client: IpAddr,
    user: String,
}

impl Key {
    /// The key for `client` presenting `user`. IPv6 clients are keyed by their /64.
    pub fn new(client: IpAddr, user: &str) -> Self {
        let client = match client {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let s = v6.segments();
                    IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
                }
            },
            v4 => v4,
        };
        // A user name is bounded so that the map's memory is too.
        Self { client, user: user.chars().take(64).collect() }
    }
}

#[derive(Debug, Clone, Copy)]
struct Window {
    since: Instant,
    failures: u32,
}

impl Window {
    fn new(now: Instant) -> Self {
        Self { since: now, failures: 0 }
    }

    fn current(&mut self, now: Instant) -> &mut Self {
        if now.duration_since(self.since) >= WINDOW {
            *self = Self::new(now);
        }
        self
    }
}

#[derive(Debug)]
pub struct Throttle {
    keys: HashMap<Key, Window>,
    global: Window,
}

impl Default for Throttle {
    fn default() -> Self {
        Self { keys: HashMap::new(), global: Window::new(Instant::now()) }
    }
}

impl Throttle {
    /// How long a password check for `key` waits at `now`: zero within budget.
    pub fn delay(&mut self, key: &Key, now: Instant) -> Duration {
        let own = self.keys.get_mut(key).map_or(0, |w| w.current(now).failures);
        let global = self.global.current(now).failures;
        if own >= MAX_FAILURES || global >= GLOBAL_MAX_FAILURES {
            DELAY
        } else {
            Duration::ZERO
        }
    }

    /// Records a wrong password for `key`; returns true when this failure used up the
    /// key's budget (the shell logs that once).
    pub fn fail(&mut self, key: &Key, now: Instant) -> bool {
        self.global.current(now).failures += 1;
        if self.keys.len() >= MAX_TRACKED && !self.keys.contains_key(key) {
            self.keys.retain(|_, w| now.duration_since(w.since) < WINDOW);
            if self.keys.len() >= MAX_TRACKED {
                return false;
            }
        }
        let w = self.keys.entry(key.clone()).or_insert_with(|| Window::new(now)).current(now);
        w.failures += 1;
        w.failures == MAX_FAILURES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str, user: &str) -> Key {
        Key::new(ip.parse().unwrap(), user)
    }

    #[test]
    fn a_key_is_delayed_after_its_budget_and_not_before() {
        let mut t = Throttle::default();
        let (k, t0) = (key("10.0.0.1", "kelpie"), Instant::now());
        for i in 0..MAX_FAILURES - 1 {
            assert_eq!(t.delay(&k, t0), Duration::ZERO);
            assert!(!t.fail(&k, t0 + Duration::from_secs(u64::from(i))));
        }
        assert!(t.fail(&k, t0 + Duration::from_secs(10)));
        assert_eq!(t.delay(&k, t0 + Duration::from_secs(11)), DELAY);
        // Others are not slowed: another user on the same address, another address.
        assert_eq!(t.delay(&key("10.0.0.1", "alice"), t0), Duration::ZERO);
        assert_eq!(t.delay(&key("10.0.0.2", "kelpie"), t0), Duration::ZERO);
        // The window ages out.
        assert_eq!(t.delay(&k, t0 + WINDOW + Duration::from_secs(1)), Duration::ZERO);
    }

    #[test]
    fn failures_spread_beyond_the_window_are_never_delayed() {
        let mut t = Throttle::default();
        let (k, t0) = (key("10.0.0.1", "u"), Instant::now());
        for i in 0..30u64 {
            let now = t0 + Duration::from_secs(i * 7);
            assert_eq!(t.delay(&k, now), Duration::ZERO, "failure {i}");
            t.fail(&k, now);
        }
    }

    #[test]
    fn ipv6_clients_share_their_slash_64_and_mapped_v4_is_v4() {
        assert_eq!(key("2001:db8:1:2:aaaa::1", "u"), key("2001:db8:1:2:bbbb::2", "u"));
        assert_ne!(key("2001:db8:1:2::1", "u"), key("2001:db8:1:3::1", "u"));
        assert_eq!(key("::ffff:10.0.0.1", "u"), key("10.0.0.1", "u"));
    }

    #[test]
    fn the_global_budget_catches_guesses_from_many_addresses() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        for i in 0..GLOBAL_MAX_FAILURES {
            t.fail(&key(&format!("10.1.{}.{}", i / 250, i % 250), "u"), t0);
        }
        assert_eq!(t.delay(&key("192.0.2.7", "u"), t0), DELAY);
        assert_eq!(t.delay(&key("192.0.2.7", "u"), t0 + WINDOW), Duration::ZERO);
    }

    #[test]
    fn memory_is_bounded_by_the_tracked_keys() {
        let mut t = Throttle::default();
        let t0 = Instant::now();
        for i in 0..(MAX_TRACKED as u32 + 50) {
            t.fail(&Key::new(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + i)), "u"), t0);
        }
        assert_eq!(t.keys.len(), MAX_TRACKED);
    }
}

//! The pacing rules of clipboard transfers to browsers, pure: what to do with a viewer
//! whose buffer holds this much, and when a viewer that does not drain is given up on.
//! The sender thread asks these with the real clock; tests with a fake one.

use std::time::{Duration, Instant};

/// A chunk is sent to a viewer only while less than this is queued for it: far below the
/// channel's 4 MiB drop limit, yet enough to keep a fast link busy.
pub const PACE_BYTES: u64 = 512 * 1024;
/// A viewer whose buffer does not drain for this long is skipped for this transfer.
pub const STALL_LIMIT: Duration = Duration::from_secs(15);

/// What to do now about one viewer and the next chunk.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Its buffer has room: send.
    Send,
    /// Its buffer is full: look again shortly.
    Wait,
    /// It has no open channel any more: drop it from the transfer.
    Gone,
}

/// The step for a viewer whose channel holds `buffered` bytes (`None`: no channel).
pub fn step(buffered: Option<u64>) -> Step {
    match buffered {
        None => Step::Gone,
        Some(b) if b < PACE_BYTES => Step::Send,
        Some(_) => Step::Wait,
    }
}

/// Whether the viewers still waiting for a chunk have waited too long.
#[derive(Copy, Clone, Debug)]
pub struct Stall {
    since: Instant,
}

impl Stall {
    /// Waiting for a chunk starts at `now`.
    pub fn new(now: Instant) -> Self {
        Self { since: now }
    }

    pub fn stalled(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.since) > STALL_LIMIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewer_gets_a_chunk_only_while_its_buffer_has_room() {
        assert_eq!(step(Some(0)), Step::Send);
        assert_eq!(step(Some(PACE_BYTES - 1)), Step::Send);
        assert_eq!(step(Some(PACE_BYTES)), Step::Wait);
        assert_eq!(step(None), Step::Gone);
    }

    #[test]
    fn waiting_longer_than_the_limit_is_a_stall() {
        let t = Instant::now();
        let s = Stall::new(t);
        assert!(!s.stalled(t + STALL_LIMIT));
        assert!(s.stalled(t + STALL_LIMIT + Duration::from_millis(1)));
    }
}

//! One viewer's bandwidth estimate, from what its browser reports about each packet (or,
//! on the WebSocket transport, each frame) that was sent to it: when it left, whether and
//! when it arrived, and how big it was.
//!
//! Pure logic, fed by the transports' shells (`media::twcc` for WebRTC's transport-wide
//! congestion-control feedback, the socket writer's acknowledgements for WebSockets).
//!
//! The signal is queueing delay, measured without synchronised clocks: a packet's one-way
//! delay is `received − sent` plus an unknown but constant clock offset, so its excess
//! over the smallest one-way delay seen lately is the time it spent in a queue. The
//! smallest excess within one feedback report is the *standing* queue (the packets of one
//! frame leave in a burst and queue behind each other even on a free link; the first of
//! them does not). The controller keeps that queue near empty:
//!
//! - **overuse** (standing queue over [`QUEUE_HIGH`], or loss over [`LOSS_HIGH`]): the
//!   estimate drops below what the path delivered over the last half second, further
//!   the longer the queue, so the queue drains instead of merely holding; then it waits a
//!   hold time before judging again;
//! - **underuse** (queue under [`QUEUE_LOW`], loss under [`LOSS_HIGH`]): the estimate
//!   grows ([`growth`]): fast back up to the capacity measured at the last overuse, then
//!   gently, then faster the longer the path stays clean; and only when the sender used
//!   at least [`APP_LIMITED`] of the estimate: an idle desktop proves nothing about the
//!   path, so its estimate neither grows nor collapses.
//!
//! Random loss under [`LOSS_HIGH`] (Wi-Fi, a lossy hop) is left to retransmission: backing
//! off for it would not make it go away.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The standing queue above which the path is overused.
pub const QUEUE_HIGH: Duration = Duration::from_millis(25);
/// The standing queue under which the path has room.
pub const QUEUE_LOW: Duration = Duration::from_millis(10);
/// Loss over the last second above which the estimate backs off.
pub const LOSS_HIGH: f64 = 0.10;
/// Growth per second while under the last rate that held without a queue (and the most
/// growth ever): ×3 a second brings a link that recovered from 1 to 6 Mbit/s back in
/// about 1.6 s; at ×2.5, a rise that came just after an overuse cut took 2.2 s.
pub const FAST_GROWTH: f64 = 3.0;
/// Growth per second above it (probing for more).
pub const SLOW_GROWTH: f64 = 1.08;
/// The sender must have used this share of the estimate for it to grow.
pub const APP_LIMITED: f64 = 0.6;
/// After a decrease, time for its effect to show before the next decision.
const HOLD: Duration = Duration::from_millis(300);
/// Above the last measured capacity, growth stays at [`SLOW_GROWTH`] this long...
pub const PROBE_GENTLY: Duration = Duration::from_millis(150);
/// ...then speeds up by this much per second (per second), up to [`FAST_GROWTH`].
pub const ACCELERATION: f64 = 8.0;
/// The smallest one-way delay is remembered this long (so a route change is learnt).
const BASE_WINDOW: Duration = Duration::from_secs(10);
/// Delivered and sent rates are measured over this window.
const RATE_WINDOW: Duration = Duration::from_millis(500);
/// Loss is counted over this window.
const LOSS_WINDOW: Duration = Duration::from_secs(1);
/// A report that lost more than this share of its packets was a burst (a queue
/// overflowing), not random loss.
pub const BURST_LOSS: f64 = 0.2;
/// Fewer packets than this in the loss window say nothing about loss.
const LOSS_MIN_PACKETS: usize = 20;

/// What the receiver said about one packet. Times are microseconds on each side's own
/// clock; only differences matter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketReport {
    pub sent_us: u64,
    /// `None`: reported lost.
    pub received_us: Option<u64>,
    pub bytes: u32,
}

/// The estimator's view now, for stats and the policy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Snapshot {
    pub estimate_bps: f64,
    pub delivered_bps: f64,
    pub sent_bps: f64,
    pub queue: Duration,
    pub loss: f64,
    pub state: State,
    /// The path has been overused at least once: the estimate is a measured limit, not
    /// only a starting guess still growing.
    pub congested: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No report yet: the estimate is the starting guess.
    Starting,
    Overuse,
    Hold,
    Normal,
    Underuse,
}

#[derive(Debug)]
pub struct Estimator {
    estimate: f64,
    /// The rate that last held without a queue, before an overuse: fast growth up to it.
    last_good: f64,
    /// (when, smallest one-way delay that second), newest last.
    base: VecDeque<(Instant, i64)>,
    /// (receiver µs, bytes) of received packets, for the delivered rate.
    delivered: VecDeque<(u64, u32)>,
    /// (sender µs, bytes) of every reported packet, for the sent rate.
    sent: VecDeque<(u64, u32)>,
    /// (when reported, lost?) per packet.
    fates: VecDeque<(Instant, bool)>,
    queue: Duration,
    hold_until: Option<Instant>,
    /// Since when the queue has stayed under [`QUEUE_LOW`].
    clean_since: Option<Instant>,
    congested: bool,
    /// A report lost more than [`BURST_LOSS`] of its packets and the queue has not
    /// drained since: the viewer's picture is likely broken beyond retransmission.
    burst: bool,
    /// Set when such a burst has drained: the viewer needs a keyframe.
    repair: bool,
    last_update: Option<Instant>,
    state: State,
}

impl Snapshot {
    /// The estimate once the viewer's transport has reported at least once (before, it
    /// is only the starting guess).
    pub fn measured_bps(&self) -> Option<f64> {
        (self.state != State::Starting).then_some(self.estimate_bps)
    }
}

impl Estimator {
    pub fn new(initial_bps: f64) -> Self {
        Self {
            estimate: initial_bps,
            last_good: initial_bps,
            base: VecDeque::new(),
            delivered: VecDeque::new(),
            sent: VecDeque::new(),
            fates: VecDeque::new(),
            queue: Duration::ZERO,
            hold_until: None,
            clean_since: None,
            congested: false,
            burst: false,
            repair: false,
            last_update: None,
            state: State::Starting,
        }
    }

    pub fn estimate_bps(&self) -> f64 {
        self.estimate
    }

    /// Caps the estimate (the policy's ceiling): growth beyond what could ever be sent
    /// would only make the next overuse slower to notice.
    pub fn cap(&mut self, max_bps: f64) {
        self.estimate = self.estimate.min(max_bps);
        self.last_good = self.last_good.min(max_bps);
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            estimate_bps: self.estimate,
            delivered_bps: rate(&self.delivered),
            sent_bps: rate(&self.sent),
            queue: self.queue,
            loss: self.loss(),
            state: self.state,
            congested: self.congested,
        }
    }

    fn loss(&self) -> f64 {
        if self.fates.len() < LOSS_MIN_PACKETS {
            return 0.0;
        }
        self.fates.iter().filter(|(_, lost)| *lost).count() as f64 / self.fates.len() as f64
    }

    /// One feedback report, received at `now`. Returns the new estimate.
    pub fn on_report(&mut self, now: Instant, packets: &[PacketReport]) -> f64 {
        let lost = packets.iter().filter(|p| p.received_us.is_none()).count();
        if packets.len() >= 5 && lost as f64 > BURST_LOSS * packets.len() as f64 && !self.burst {
            // One keyframe now, which may make it through the queue as it drains, and one
            // once it has (below), which will.
            self.burst = true;
            self.repair = true;
        }
        let mut min_owd: Option<i64> = None;
        for p in packets {
            self.fates.push_back((now, p.received_us.is_none()));
            self.sent.push_back((p.sent_us, p.bytes));
            if let Some(r) = p.received_us {
                self.delivered.push_back((r, p.bytes));
                let owd = r as i64 - p.sent_us as i64;
                min_owd = Some(min_owd.map_or(owd, |m: i64| m.min(owd)));
            }
        }
        self.trim(now);
        let Some(report_min) = min_owd else {
            // Everything in this report was lost: that is loss, not a queue reading.
            return self.decide(now);
        };
        self.remember_base(now, report_min);
        let base = self.base.iter().map(|(_, d)| *d).min().unwrap_or(report_min);
        let standing = Duration::from_micros((report_min - base).max(0) as u64);
        // Smoothed a little: one report's reading can be a lucky packet.
        self.queue = (self.queue + standing) / 2;
        if self.burst && self.queue < QUEUE_HIGH {
            self.burst = false;
            self.repair = true;
        }
        self.decide(now)
    }

    /// True when a loss burst starts and once more when it has drained: what was lost is
    /// too old to retransmit, and a browser waits seconds before it asks for a keyframe
    /// itself.
    pub fn take_repair(&mut self) -> bool {
        std::mem::take(&mut self.repair)
    }

    fn remember_base(&mut self, now: Instant, owd: i64) {
        match self.base.back_mut() {
            Some((t, d)) if now.duration_since(*t) < Duration::from_secs(1) => *d = (*d).min(owd),
            _ => self.base.push_back((now, owd)),
        }
        while self.base.front().is_some_and(|(t, _)| now.duration_since(*t) > BASE_WINDOW) {
            self.base.pop_front();
        }
    }

    fn trim(&mut self, now: Instant) {
        trim_by_clock(&mut self.delivered);
        trim_by_clock(&mut self.sent);
        while self.fates.front().is_some_and(|(t, _)| now.duration_since(*t) > LOSS_WINDOW) {
            self.fates.pop_front();
        }
    }

    fn decide(&mut self, now: Instant) -> f64 {
        let dt = self.last_update.map_or(Duration::ZERO, |t| now.duration_since(t)).min(Duration::from_millis(500));
        self.last_update = Some(now);
        if self.hold_until.is_some_and(|t| now < t) {
            self.state = State::Hold;
            return self.estimate;
        }
        let loss = self.loss();
        let delivered = rate(&self.delivered);
        if self.queue > QUEUE_HIGH || loss > LOSS_HIGH {
            self.state = State::Overuse;
            self.congested = true;
            let next = if self.queue > QUEUE_HIGH && delivered > 0.0 {
                // Drain, not just hold: the longer the queue, the deeper the cut (a 300 ms
                // queue drains in about half a second at 40 % of the path's rate).
                let factor = (0.9 - 1.6 * self.queue.as_secs_f64()).clamp(0.4, 0.85);
                // What the path delivered while queueing is its capacity now.
                self.last_good = delivered;
                delivered * factor
            } else {
                self.estimate * (1.0 - 0.5 * loss)
            };
            self.estimate = next.min(self.estimate);
            self.hold_until = Some(now + HOLD);
            self.clean_since = None;
            return self.estimate;
        }
        if self.queue > QUEUE_LOW {
            self.state = State::Normal;
            self.clean_since = None;
            return self.estimate;
        }
        self.state = State::Underuse;
        let clean = now.duration_since(*self.clean_since.get_or_insert(now));
        let sent = rate(&self.sent);
        if sent < APP_LIMITED * self.estimate {
            return self.estimate; // app-limited: nothing learnt about the path
        }
        self.estimate *= growth(self.estimate < self.last_good, clean).powf(dt.as_secs_f64());
        self.estimate
    }
}

/// Growth per second: fast back up to the capacity last measured; above it, slow at
/// first (the path was just full) and faster the longer it stays clean, so that a link
/// that got faster is used within a couple of seconds while a steady one is probed
/// gently.
pub fn growth(below_last_good: bool, clean: Duration) -> f64 {
    if below_last_good {
        return FAST_GROWTH;
    }
    let after = clean.saturating_sub(PROBE_GENTLY).as_secs_f64();
    (SLOW_GROWTH + ACCELERATION * after).min(FAST_GROWTH)
}

/// Drops samples older than [`RATE_WINDOW`] before the newest, by their own clock.
fn trim_by_clock(q: &mut VecDeque<(u64, u32)>) {
    let Some(&(newest, _)) = q.back() else { return };
    let window = RATE_WINDOW.as_micros() as u64;
    while q.front().is_some_and(|(t, _)| newest.saturating_sub(*t) > window) {
        q.pop_front();
    }
}

/// Bits per second over the samples' own time span (0 with fewer than two samples).
fn rate(q: &VecDeque<(u64, u32)>) -> f64 {
    let (Some(first), Some(last)) = (q.front(), q.back()) else { return 0.0 };
    let span = last.0.saturating_sub(first.0);
    if span < 50_000 {
        return 0.0; // under 50 ms: one burst, not a rate
    }
    // The first sample's bytes arrived before the span started.
    let bytes: u64 = q.iter().skip(1).map(|(_, b)| u64::from(*b)).sum();
    bytes as f64 * 8.0 / (span as f64 / 1e6)
}

#[cfg(test)]
#[path = "estimate_tests.rs"]
mod tests;

//! The estimator against a simulated bottleneck: a drop-tail FIFO of a given rate and
//! depth (as `tbf` makes one), a sender that sends each frame as one burst of 1200-byte
//! packets at the estimate, and feedback every 100 ms. Deterministic: "random" loss is a
//! fixed pattern.

use super::*;

const MTU: u32 = 1200;
const FPS: u64 = 30;
const CEILING: f64 = 8e6;

struct Link {
    rate_bps: f64,
    /// Drop-tail: a packet that would wait longer than this is dropped.
    depth: Duration,
    /// Every n-th packet is lost at random (0: none).
    lose_every: u64,
    /// When the queue is next free, µs.
    free_at: u64,
    count: u64,
}

impl Link {
    fn new(rate_bps: f64, depth_ms: u64) -> Self {
        Link { rate_bps, depth: Duration::from_millis(depth_ms), lose_every: 0, free_at: 0, count: 0 }
    }

    /// A packet entering at `t` µs: its arrival time (+ a 5 ms path and a clock offset), or None.
    fn send(&mut self, t: u64, bytes: u32) -> Option<u64> {
        self.count += 1;
        let start = self.free_at.max(t);
        if start - t > self.depth.as_micros() as u64 {
            return None;
        }
        self.free_at = start + (f64::from(bytes) * 8.0 / self.rate_bps * 1e6) as u64;
        if self.lose_every > 0 && self.count.is_multiple_of(self.lose_every) {
            return None;
        }
        Some(self.free_at + 5_000 + 123_456_789)
    }
}

struct Sim {
    est: Estimator,
    t0: Instant,
    now_us: u64,
    pending: Vec<PacketReport>,
    /// (µs, queue delay µs) of each packet that arrived.
    delays: Vec<(u64, u64)>,
    /// Sent bytes per frame, as the encoder would (min of estimate and what content needs).
    content_bps: f64,
}

impl Sim {
    fn new(initial: f64) -> Self {
        Sim {
            est: Estimator::new(initial),
            t0: Instant::now(),
            now_us: 0,
            pending: vec![],
            delays: vec![],
            content_bps: f64::INFINITY,
        }
    }

    /// Runs `secs` seconds over `link`; returns the estimate every 100 ms.
    fn run(&mut self, link: &mut Link, secs: f64) -> Vec<f64> {
        let mut trace = vec![];
        let end = self.now_us + (secs * 1e6) as u64;
        let frame_us = 1_000_000 / FPS;
        while self.now_us < end {
            let target = self.est.estimate_bps().min(self.content_bps);
            let mut left = (target / 8.0 / FPS as f64) as u32;
            while left > 0 {
                let bytes = left.min(MTU);
                left -= bytes;
                let arrival = link.send(self.now_us, bytes);
                if let Some(a) = arrival {
                    self.delays.push((self.now_us, a - 123_456_789 - 5_000 - self.now_us));
                }
                self.pending.push(PacketReport { sent_us: self.now_us, received_us: arrival, bytes });
            }
            self.now_us += frame_us;
            // Feedback every third frame (100 ms), about what has arrived by then.
            if (self.now_us / frame_us).is_multiple_of(3) {
                let now = self.t0 + Duration::from_micros(self.now_us);
                let cutoff = self.now_us + 123_456_789;
                let (ready, later): (Vec<_>, Vec<_>) =
                    self.pending.drain(..).partition(|p| p.received_us.is_none_or(|r| r <= cutoff));
                self.pending = later;
                self.est.on_report(now, &ready);
                self.est.cap(CEILING);
                trace.push(self.est.estimate_bps());
            }
        }
        trace
    }

    fn max_delay_after(&self, from_us: u64) -> Duration {
        Duration::from_micros(self.delays.iter().filter(|(t, _)| *t >= from_us).map(|(_, d)| *d).max().unwrap_or(0))
    }
}

#[test]
fn settles_under_a_3_mbit_link_with_a_short_queue() {
    let mut link = Link::new(3e6, 200);
    let mut sim = Sim::new(2e6);
    sim.run(&mut link, 10.0);
    let from = sim.now_us;
    let trace = sim.run(&mut link, 20.0);
    let mean = trace.iter().sum::<f64>() / trace.len() as f64;
    assert!((2.0e6..3.0e6).contains(&mean), "mean estimate {mean}");
    assert!(sim.max_delay_after(from) < Duration::from_millis(150), "queue {:?}", sim.max_delay_after(from));
}

#[test]
fn one_percent_random_loss_does_not_hold_it_down() {
    let mut link = Link::new(100e6, 200);
    link.lose_every = 100;
    let mut sim = Sim::new(2e6);
    let trace = sim.run(&mut link, 5.0);
    assert!(*trace.last().unwrap() >= CEILING * 0.99, "{:?}", trace.last());
}

#[test]
fn heavy_loss_backs_off() {
    let mut link = Link::new(100e6, 200);
    link.lose_every = 4; // 25 %
    let mut sim = Sim::new(4e6);
    let trace = sim.run(&mut link, 3.0);
    assert!(*trace.last().unwrap() < 2e6, "{:?}", trace.last());
}

#[test]
fn follows_a_step_down_and_back_up_within_two_seconds() {
    let mut link = Link::new(20e6, 200);
    let mut sim = Sim::new(2e6);
    let trace = sim.run(&mut link, 6.0);
    assert!(*trace.last().unwrap() >= CEILING * 0.99, "never reached the ceiling: {trace:?}");

    link.rate_bps = 2e6;
    let trace = sim.run(&mut link, 2.0);
    assert!(trace[trace.len() - 5..].iter().all(|&e| e < 2e6), "not under 2 Mbit/s 1.5 s after the drop: {trace:?}");
    let from = sim.now_us;
    sim.run(&mut link, 6.0);
    assert!(
        sim.max_delay_after(from) < Duration::from_millis(150),
        "queue at 2 Mbit/s: {:?}",
        sim.max_delay_after(from)
    );

    link.rate_bps = 20e6;
    let trace = sim.run(&mut link, 2.0);
    assert!(*trace.last().unwrap() >= 0.75 * CEILING, "2 s after the link came back: {trace:?}");
}

#[test]
fn an_idle_desktop_neither_grows_nor_collapses_the_estimate() {
    let mut link = Link::new(100e6, 200);
    let mut sim = Sim::new(3e6);
    sim.content_bps = 100e3;
    let trace = sim.run(&mut link, 20.0);
    assert!(trace.iter().all(|&e| e == 3e6), "{trace:?}");
}

#[test]
fn growth_is_fast_below_the_last_capacity_and_accelerates_above_it() {
    assert_eq!(growth(true, Duration::ZERO), FAST_GROWTH);
    assert_eq!(growth(false, Duration::ZERO), SLOW_GROWTH);
    assert_eq!(growth(false, PROBE_GENTLY), SLOW_GROWTH);
    assert!(growth(false, PROBE_GENTLY + Duration::from_millis(500)) > SLOW_GROWTH);
    assert_eq!(growth(false, Duration::from_secs(60)), FAST_GROWTH);
}

#[test]
fn a_loss_burst_asks_for_a_repair_as_it_starts_and_once_it_has_drained() {
    let mut e = Estimator::new(4e6);
    let t = Instant::now();
    let pkt = |i: u64, q: u64, lost: bool| PacketReport {
        sent_us: i * 1000,
        received_us: (!lost).then_some(i * 1000 + 5000 + q),
        bytes: 1200,
    };
    e.on_report(t, &(0..10).map(|i| pkt(i, 0, false)).collect::<Vec<_>>());
    assert!(!e.take_repair());
    // A queue of 200 ms that drops half of what arrives.
    e.on_report(t + Duration::from_millis(100), &(10..20).map(|i| pkt(i, 200_000, i % 2 == 0)).collect::<Vec<_>>());
    assert!(e.take_repair(), "one as the burst starts");
    e.on_report(t + Duration::from_millis(150), &(20..30).map(|i| pkt(i, 200_000, i % 2 == 0)).collect::<Vec<_>>());
    assert!(!e.take_repair(), "not again while the queue is still full");
    for k in 0..4 {
        e.on_report(
            t + Duration::from_millis(200 + 100 * k),
            &(30 + 10 * k..40 + 10 * k).map(|i| pkt(i, 0, false)).collect::<Vec<_>>(),
        );
    }
    assert!(e.take_repair(), "drained: one more keyframe");
    assert!(!e.take_repair(), "and only one");
}

#[test]
fn reports_with_only_losses_count_as_loss() {
    let mut e = Estimator::new(4e6);
    let t = Instant::now();
    let lost: Vec<_> = (0..30).map(|i| PacketReport { sent_us: i * 1000, received_us: None, bytes: 1200 }).collect();
    e.on_report(t, &lost);
    assert!(e.estimate_bps() < 4e6);
    assert_eq!(e.snapshot().state, State::Overuse);
    assert_eq!(e.snapshot().loss, 1.0);
}

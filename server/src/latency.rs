//! Where a frame's time goes, stage by stage, and how long input takes to reach X: the
//! figures `make bench` prints per stage (issue 13) and `/metrics` exposes as
//! `kelpie_frame_stage_seconds{stage,quantile}`.
//!
//! Pure core: a monotonic clock in nanoseconds that the capture element (another crate,
//! the same process) and the server read alike, sliding windows of stage durations with
//! their quantiles, and the mark of the latest input press. The GStreamer probes that feed
//! it live in `media::frame_timing`; the input thread feeds [`Latency::input_applied`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Nanoseconds on `CLOCK_MONOTONIC`: the clock `kelpiexsrc` stamps its damage and grab
/// times with (`Instant` is the same clock, but cannot be read as a number).
pub use kelpiegst::stamps::mono_ns;

/// One step of a frame's or an input event's way, in the order they happen.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Stage {
    /// First X damage → grab start: capture pacing (settle time, frame credit, the encoder
    /// still busy with the previous frame).
    Wait,
    /// The XShm grab of the damaged rectangles.
    Grab,
    /// BGRx → I420 of those rectangles and the copy into the output buffer.
    Convert,
    /// Capture's output → the encoder's input: the capture queue's thread hop.
    Queue,
    /// The encoder, input to output.
    Encode,
    /// Encoder output → first RTP packet of that frame handed to a viewer's webrtcbin: the
    /// viewer's payloader and its send queue.
    Send,
    /// First X damage → first RTP packet handed to webrtcbin: the server's whole share.
    Total,
    /// An input press's arrival from the network → its XTest request flushed to X.
    InputApply,
    /// That flush → the first X damage reported after it (the application drawing).
    InputToDamage,
    /// The press's arrival → the first RTP packet of the first frame grabbed after that
    /// damage: input-to-photon, as far as the server sees it.
    InputToSend,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::Wait,
        Stage::Grab,
        Stage::Convert,
        Stage::Queue,
        Stage::Encode,
        Stage::Send,
        Stage::Total,
        Stage::InputApply,
        Stage::InputToDamage,
        Stage::InputToSend,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Wait => "wait",
            Stage::Grab => "grab",
            Stage::Convert => "convert",
            Stage::Queue => "queue",
            Stage::Encode => "encode",
            Stage::Send => "send",
            Stage::Total => "total",
            Stage::InputApply => "input_apply",
            Stage::InputToDamage => "input_to_damage",
            Stage::InputToSend => "input_to_send",
        }
    }

    fn index(self) -> usize {
        Stage::ALL.iter().position(|s| *s == self).unwrap_or(0)
    }
}

/// Samples kept per stage: ten seconds of frames at 60 fps, so a quantile read at the end
/// of a bench window describes that window.
pub const WINDOW: usize = 600;

/// The last [`WINDOW`] durations of one stage, in nanoseconds.
#[derive(Debug, Default, Clone)]
pub struct Window {
    samples: VecDeque<u64>,
}

impl Window {
    pub fn push(&mut self, ns: u64) {
        if self.samples.len() == WINDOW {
            self.samples.pop_front();
        }
        self.samples.push_back(ns);
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The `q` quantile (0..=1) by nearest rank, in nanoseconds; `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.samples.is_empty() {
            return None;
        }
        let mut v: Vec<u64> = self.samples.iter().copied().collect();
        v.sort_unstable();
        let rank = (q.clamp(0.0, 1.0) * v.len() as f64).ceil() as usize;
        Some(v[rank.clamp(1, v.len()) - 1])
    }
}

/// The input press that the next damage is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Press {
    /// When it arrived from the network.
    pub arrived_ns: u64,
    /// When its XTest request was flushed.
    pub applied_ns: u64,
}

/// Every stage's window plus the pending input press; shared by the input thread and the
/// pipeline's streaming threads.
#[derive(Debug, Default)]
pub struct Latency {
    windows: Mutex<[Window; 10]>,
    pending_press: Mutex<Option<Press>>,
    frames: AtomicU64,
}

impl Latency {
    pub fn record(&self, stage: Stage, ns: u64) {
        self.windows.lock().unwrap_or_else(|e| e.into_inner())[stage.index()].push(ns);
    }

    /// A press (key or button down) reached X. Only the latest one waits for its damage:
    /// presses closer together than a frame share it.
    pub fn input_applied(&self, arrived_ns: u64, applied_ns: u64) {
        self.record(Stage::InputApply, applied_ns.saturating_sub(arrived_ns));
        *self.pending_press.lock().unwrap_or_else(|e| e.into_inner()) = Some(Press { arrived_ns, applied_ns });
    }

    /// A frame whose first damage came at `damage_ns` was grabbed: the pending press, if it
    /// reached X before that damage, is taken (recorded as input → damage) and returned so
    /// the frame can report input → send when it leaves.
    pub fn take_press_before(&self, damage_ns: u64) -> Option<Press> {
        let mut pending = self.pending_press.lock().unwrap_or_else(|e| e.into_inner());
        match *pending {
            Some(p) if p.applied_ns <= damage_ns => {
                *pending = None;
                drop(pending);
                self.record(Stage::InputToDamage, damage_ns - p.applied_ns);
                Some(p)
            }
            _ => None,
        }
    }

    pub fn frame_done(&self) {
        self.frames.fetch_add(1, Ordering::Relaxed);
    }

    /// Frames fully timed since start.
    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// (stage, samples, p50, p95) in seconds, for every stage with samples.
    pub fn summary(&self) -> Vec<(Stage, usize, f64, f64)> {
        let w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        Stage::ALL
            .iter()
            .filter_map(|s| {
                let win = &w[s.index()];
                Some((*s, win.len(), win.quantile(0.5)? as f64 / 1e9, win.quantile(0.95)? as f64 / 1e9))
            })
            .collect()
    }
}

/// The one per process: the input thread and the pipeline meet here without knowing each
/// other (input sits below media in the layers).
pub fn global() -> &'static Latency {
    static GLOBAL: std::sync::OnceLock<Latency> = std::sync::OnceLock::new();
    GLOBAL.get_or_init(Latency::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_by_nearest_rank() {
        let mut w = Window::default();
        assert_eq!(w.quantile(0.5), None);
        for v in 1..=100 {
            w.push(v);
        }
        assert_eq!(w.quantile(0.5), Some(50));
        assert_eq!(w.quantile(0.95), Some(95));
        assert_eq!(w.quantile(0.0), Some(1));
        assert_eq!(w.quantile(1.0), Some(100));
    }

    #[test]
    fn the_window_forgets_the_oldest() {
        let mut w = Window::default();
        for _ in 0..WINDOW {
            w.push(1_000);
        }
        for _ in 0..WINDOW {
            w.push(7);
        }
        assert_eq!(w.len(), WINDOW);
        assert_eq!(w.quantile(1.0), Some(7));
    }

    #[test]
    fn a_press_is_matched_to_the_first_damage_after_it_once() {
        let l = Latency::default();
        l.input_applied(100, 150);
        assert_eq!(l.take_press_before(120), None, "damage before the press reached X is not its effect");
        assert_eq!(l.take_press_before(400), Some(Press { arrived_ns: 100, applied_ns: 150 }));
        assert_eq!(l.take_press_before(500), None, "taken once");
        let s = l.summary();
        let find = |st: Stage| s.iter().find(|(x, ..)| *x == st).map(|(_, n, p50, _)| (*n, *p50));
        assert_eq!(find(Stage::InputApply), Some((1, 50e-9)));
        assert_eq!(find(Stage::InputToDamage), Some((1, 250e-9)));
        assert_eq!(find(Stage::Wait), None);
    }

    #[test]
    fn mono_clock_moves_forward() {
        let a = mono_ns();
        let b = mono_ns();
        assert!(a > 0 && b >= a);
    }
}

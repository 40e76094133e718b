//! When the next frame may be grabbed: the capture's pacing, kept pure so that it can be
//! tested against simulated content without a clock or a display.
//!
//! The rule: a token bucket of frame credit, refilled at the frame rate plus
//! [`DRIFT_ALLOWANCE`] and holding at most [`MAX_CREDIT`] frames; never two grabs closer
//! than half a frame interval; and [`SETTLE`] after the first damage, so that an
//! application's burst of drawing requests lands in one frame.
//!
//! Why the allowance: with a bucket refilled at exactly the frame rate, content that draws
//! a little faster than the stream (application and capture clocks drift against each
//! other; the bench's content runs at 1.02×) spends the bank, and from then on each
//! damaged frame waits a little longer for its credit than the one before, until it has
//! waited a whole interval and one drawn frame is merged into the next. The wait sweeps
//! evenly through 0..interval while the encoder sits idle, which put half a frame
//! interval into the median glass-to-glass latency (the "wait" stage in
//! docs/benchmarks.md: 16 ms p50 at 30 fps, 7 ms at 60 fps). Drift is the common case,
//! not the exception: a 60 Hz application in a 60 fps stream is never exactly 60 Hz on our
//! clock, and even 0.1 % faster sweeps the same way, only slower. With 10 % of allowance,
//! content a few percent faster than the stream is taken frame for frame, each one as soon
//! as it has settled. Why 10 % and not less: some frames cost two grabs. Damage is reported
//! when the damaged region goes from empty to non-empty, so the capture cannot see when an
//! application has finished drawing, and a frame that takes longer to draw than the settle
//! time is grabbed part-drawn; its rest comes as fresh damage and a grab of its own. On
//! the bench (1080p30, Xvfb ~4 ms a frame) that was about one frame in thirty, which with
//! 5 % of allowance and content at 1.02× was enough to drain the bank every second or two
//! and start the sweep again (per-frame log, 2026-12-08). The price is that the stream may
//! run up to 10 % above its nominal rate
//! (and above `max-framerate`, which adaptation sets) while the content does. Content much
//! faster than the stream (a 60 Hz application in a 30 fps stream) is sampled as before:
//! the bucket runs dry and each grab takes whatever was drawn last.

use std::time::{Duration, Instant};

/// How much faster than the nominal frame rate the bucket refills.
pub const DRIFT_ALLOWANCE: f64 = 0.10;
/// Frame credit can bank up to this many frames, so that a frame drawn a little early
/// (jitter in the application's timer) is not made to wait, and so that the extra grab of
/// a part-drawn frame is paid from the bank instead of delaying the frames after it (with
/// 1.5, each one made the next half-dozen frames wait for credit, 16 ms falling to 3 ms).
pub const MAX_CREDIT: f64 = 2.5;

/// Applications draw a frame as a burst of requests; capturing at the first damage event
/// would grab half-drawn frames and leave the rest for one frame later. Waiting this long
/// after the first damage lets a burst finish, at the cost of as much latency.
pub const SETTLE: Duration = Duration::from_millis(3);

/// The pacing state.
#[derive(Debug, Clone)]
pub struct Pacer {
    /// Frames that may be made now, as of `credit_at`.
    credit: f64,
    credit_at: Instant,
    /// When the last frame was decided on.
    last: Option<Instant>,
    /// Frames of credit earned per frame interval.
    rate: f64,
}

impl Pacer {
    pub fn new(now: Instant) -> Self {
        Self { credit: MAX_CREDIT, credit_at: now, last: None, rate: 1.0 + DRIFT_ALLOWANCE }
    }

    /// Like [`Pacer::new`] but with the bucket refilled at exactly the frame rate: the
    /// rule before the allowance, kept to show (in tests) what the allowance is for.
    #[cfg(test)]
    fn exact(now: Instant) -> Self {
        Self { rate: 1.0, ..Self::new(now) }
    }

    fn credit_at(&self, now: Instant, interval: Duration) -> f64 {
        let earned = now.saturating_duration_since(self.credit_at).as_secs_f64() / interval.as_secs_f64();
        (self.credit + earned * self.rate).min(MAX_CREDIT)
    }

    /// The earliest a new frame may be made, for damage first seen at `damaged_at`
    /// (`None`: not for damage, e.g. a refresh or a refinement frame).
    pub fn due(&self, now: Instant, interval: Duration, damaged_at: Option<Instant>) -> Instant {
        let short = (1.0 - self.credit_at(now, interval)).max(0.0);
        let credited = now + interval.mul_f64(short / self.rate);
        let spaced = self.last.map_or(now, |t| t + interval / 2);
        let settled = damaged_at.map_or(now, |t| t + SETTLE);
        credited.max(spaced).max(settled)
    }

    /// A frame was decided on at `at`: one frame of credit is spent.
    pub fn produced(&mut self, at: Instant, interval: Duration) {
        self.credit = self.credit_at(at, interval) - 1.0;
        self.credit_at = at;
        self.last = Some(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Content drawing every `period` from t = 0, captured at `fps` by `pacer`, with a
    /// grab taking `grab` (damage that arrives meanwhile waits for the next one). Returns
    /// each grab's time and its staleness: how long before the grab the newest drawing in
    /// it was made, which is what a viewer sees as latency.
    fn simulate(
        mut pacer: Pacer,
        period: Duration,
        fps: u32,
        grab: Duration,
        frames: usize,
    ) -> Vec<(Instant, Duration)> {
        let interval = Duration::from_secs(1) / fps;
        let t0 = pacer.credit_at;
        let mut out = Vec::new();
        let mut free_at = t0;
        let mut next_draw = t0;
        while out.len() < frames {
            // The first drawing not yet in a frame.
            let first = next_draw;
            let now = first.max(free_at);
            let due = pacer.due(now, interval, Some(first));
            let mut newest = first;
            while next_draw <= due {
                newest = next_draw;
                next_draw += period;
            }
            pacer.produced(due, interval);
            out.push((due, due - newest));
            free_at = due + grab;
        }
        out
    }

    fn ms(d: Duration) -> f64 {
        d.as_secs_f64() * 1000.0
    }

    fn mean(frames: &[(Instant, Duration)]) -> Duration {
        frames.iter().map(|f| f.1).sum::<Duration>() / frames.len() as u32
    }

    fn rate(frames: &[(Instant, Duration)]) -> f64 {
        (frames.len() - 1) as f64 / (frames.last().unwrap().0 - frames[0].0).as_secs_f64()
    }

    #[test]
    fn content_drifting_a_few_percent_fast_is_taken_frame_for_frame_after_the_settle_time() {
        for fps in [30, 60] {
            for speed in [1.0005, 1.02, 1.045] {
                let t0 = Instant::now();
                let period = (Duration::from_secs(1) / fps).div_f64(speed);
                let frames = simulate(Pacer::new(t0), period, fps, Duration::from_millis(3), 1200);
                let worst = frames.iter().map(|f| f.1).max().unwrap();
                assert_eq!(worst, SETTLE, "{fps} fps, content ×{speed}: worst {:.2} ms", ms(worst));
                let delivered = rate(&frames) / fps as f64;
                assert!((delivered - speed).abs() < 0.002, "{fps} fps, content ×{speed}: {delivered:.4}×");
            }
        }
    }

    #[test]
    fn without_the_allowance_the_same_content_waits_half_an_interval_on_average() {
        // What the allowance is for: the bucket at exactly the frame rate makes the wait
        // sweep through the whole interval.
        let fps = 30;
        let interval = Duration::from_secs(1) / fps;
        let t0 = Instant::now();
        let frames = simulate(Pacer::exact(t0), interval.div_f64(1.02), fps, Duration::from_millis(3), 1200);
        let m = mean(&frames);
        assert!(m > interval / 3, "mean staleness {:.2} ms", ms(m));
        let with = simulate(Pacer::new(t0), interval.div_f64(1.02), fps, Duration::from_millis(3), 1200);
        assert_eq!(mean(&with), SETTLE);
    }

    #[test]
    fn the_rate_never_runs_more_than_the_allowance_over_the_stream() {
        // Content drawing continuously (every 1 ms), and at twice the stream's rate.
        for fps in [30u32, 60] {
            for period in [Duration::from_millis(1), Duration::from_secs(1) / (2 * fps)] {
                let frames = simulate(Pacer::new(Instant::now()), period, fps, Duration::ZERO, 1000);
                let r = rate(&frames);
                // The bank of MAX_CREDIT frames may be spent once on top.
                let most = fps as f64 * (1.0 + DRIFT_ALLOWANCE) * (1.0 + MAX_CREDIT / 999.0);
                assert!(r <= most, "{fps} fps, period {:?}: {r:.2} frames/s", period);
                assert!(r >= fps as f64, "{fps} fps, period {:?}: {r:.2} frames/s", period);
            }
        }
    }

    #[test]
    fn content_far_faster_than_the_stream_is_sampled_with_at_most_one_drawing_period_of_staleness() {
        let fps = 30;
        let period = Duration::from_secs(1) / 60;
        let frames = simulate(Pacer::new(Instant::now()), period, fps, Duration::from_millis(3), 600);
        for f in &frames {
            assert!(f.1 < period + SETTLE, "staleness {:.2} ms", ms(f.1));
        }
    }

    #[test]
    fn a_lone_change_after_a_still_screen_is_taken_after_the_settle_time_only() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(1) / 60;
        let mut pacer = Pacer::new(t0);
        pacer.produced(t0, interval);
        let damage = t0 + Duration::from_secs(2);
        assert_eq!(pacer.due(damage, interval, Some(damage)), damage + SETTLE);
        // Not damage (a refresh): at once.
        assert_eq!(pacer.due(damage, interval, None), damage);
    }

    #[test]
    fn two_grabs_are_never_closer_than_half_an_interval() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(1) / 30;
        let mut pacer = Pacer::new(t0);
        pacer.produced(t0, interval);
        let damage = t0 + Duration::from_millis(1);
        assert_eq!(pacer.due(damage, interval, Some(damage)), t0 + interval / 2);
    }

    #[test]
    fn an_empty_bank_is_refilled_at_the_frame_rate_plus_the_allowance() {
        let t0 = Instant::now();
        let interval = Duration::from_secs(1) / 30;
        let mut pacer = Pacer::new(t0);
        // Grabs half an interval apart until less than a frame is left.
        let mut k = 0u32;
        while pacer.credit_at(t0 + interval * k / 2, interval) >= 1.0 {
            pacer.produced(t0 + interval * k / 2, interval);
            k += 1;
        }
        let now = t0 + interval * (k - 1) / 2;
        // The bank, the refill since t0, less the frames taken.
        let left = MAX_CREDIT + (k - 1) as f64 / 2.0 * (1.0 + DRIFT_ALLOWANCE) - k as f64;
        assert!((pacer.credit - left).abs() < 1e-6 && left < 1.0, "credit {} expected {left}", pacer.credit);
        let due = pacer.due(now, interval, None);
        let expected = now + interval.mul_f64((1.0 - left) / (1.0 + DRIFT_ALLOWANCE));
        let off = if due > expected { due - expected } else { expected - due };
        assert!(off < Duration::from_micros(1), "due {:?} after now, expected {:?}", due - now, expected - now);
    }

    /// Like [`simulate`], and every `every`-th drawing is grabbed part-drawn: its rest is
    /// reported 1 ms after the grab, as damage of its own. Returns each grab's wait since
    /// the first damage it carries.
    fn simulate_with_tails(mut pacer: Pacer, period: Duration, fps: u32, every: usize, frames: usize) -> Vec<Duration> {
        let interval = Duration::from_secs(1) / fps;
        let t0 = pacer.credit_at;
        let mut waits = Vec::new();
        let mut next_draw = t0;
        let mut drawn = 0usize;
        let mut tail: Option<Instant> = None;
        let mut free_at = t0;
        while waits.len() < frames {
            let first = tail.map_or(next_draw, |t| t.min(next_draw));
            let now = first.max(free_at);
            let due = pacer.due(now, interval, Some(first));
            let mut part_drawn = false;
            while next_draw <= due {
                drawn += 1;
                part_drawn = drawn.is_multiple_of(every);
                next_draw += period;
            }
            pacer.produced(due, interval);
            waits.push(due - first);
            tail = part_drawn.then(|| due + Duration::from_millis(1));
            free_at = due + Duration::from_millis(2);
        }
        waits
    }

    #[test]
    fn part_drawn_frames_once_a_second_do_not_drain_the_bank() {
        let fps = 30;
        let period = (Duration::from_secs(1) / fps).div_f64(1.02);
        let t0 = Instant::now();
        let waits = simulate_with_tails(Pacer::new(t0), period, fps, 30, 1200);
        // Every grab of a new drawing waits the settle time only; the rests of part-drawn
        // frames (one grab in 31) wait for the half-interval spacing, and nothing longer.
        // (The grab after such a rest may wait a little for the spacing too.)
        let settled = waits.iter().filter(|w| **w == SETTLE).count();
        assert!(settled >= 1200 - 2 * 1200 / 30 - 2, "{settled} of 1200 grabs waited the settle time only");
        let worst = waits.iter().max().unwrap();
        assert!(*worst < Duration::from_secs(1) / fps / 2, "worst wait {:.2} ms", ms(*worst));
        // With 5 % of allowance the same content drains the bank and sweeps again.
        let five = Pacer { rate: 1.05, ..Pacer::new(t0) };
        let waits = simulate_with_tails(five, period, fps, 30, 1200);
        let swept = waits.iter().filter(|w| **w > Duration::from_millis(10)).count();
        assert!(swept > 100, "{swept} of 1200 grabs waited over 10 ms with 5 %");
    }
}

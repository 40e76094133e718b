//! Whether the shared pipeline delivers frames: `/health` answers from this.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long without an encoded frame before the pipeline counts as stalled.
const STALL_AFTER: Duration = Duration::from_secs(3);

/// Whether the pipeline is delivering frames, readable from any thread.
#[derive(Debug)]
pub struct Health {
    started: Instant,
    failure: Mutex<Option<String>>,
    frames: AtomicU64,
    /// Milliseconds since `started` of the last encoded frame.
    last_frame_ms: AtomicU64,
    pub(super) playing: AtomicBool,
}

impl Health {
    pub(super) fn new() -> Self {
        Self {
            started: Instant::now(),
            failure: Mutex::new(None),
            frames: AtomicU64::new(0),
            last_frame_ms: AtomicU64::new(0),
            playing: AtomicBool::new(false),
        }
    }

    pub(super) fn frame(&self) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.last_frame_ms.store(self.started.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub(super) fn fail(&self, why: String) {
        let mut f = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(why);
        }
    }

    /// After a pipeline restart: the failure is over (stalls are still seen by `check`).
    pub(super) fn clear_failure(&self) {
        *self.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    pub fn frames(&self) -> u64 {
        self.frames.load(Ordering::Relaxed)
    }

    /// `Ok` when frames flow; otherwise why not.
    pub fn check(&self) -> Result<(), String> {
        if let Some(f) = self.failure.lock().unwrap_or_else(|e| e.into_inner()).clone() {
            return Err(f);
        }
        if !self.playing.load(Ordering::Relaxed) {
            return Err("pipeline is starting".into());
        }
        if self.frames() == 0 {
            return Err("no frame encoded yet".into());
        }
        let since =
            self.started.elapsed().saturating_sub(Duration::from_millis(self.last_frame_ms.load(Ordering::Relaxed)));
        if since > STALL_AFTER {
            return Err(format!("no frame encoded for {:.1} s (is the X display alive?)", since.as_secs_f64()));
        }
        Ok(())
    }
}

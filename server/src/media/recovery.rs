//! What an error of the shared pipeline leads to. The capture failing means the X display
//! is gone: nothing to restart, Kelpie exits (status 3). Any other element failing (the
//! encoder, a converter) may be a glitch: the pipeline is restarted once, every viewer
//! reconnects to the fresh one, and a second failure within [`RESTART_WINDOW`] makes
//! Kelpie exit (status 4) so that its supervisor (systemd, Kubernetes, the SLURM job)
//! starts it again, instead of staying up with `/health` at 503 for ever.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::{Desktop, TransportEvent};

/// A second failure this soon after a restart is not a glitch.
pub const RESTART_WINDOW: Duration = Duration::from_secs(600);

/// Exit status when the pipeline failed again after its restart.
pub const EXIT_PIPELINE_FAILED: i32 = 4;

/// Why Kelpie must stop streaming.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fatal {
    /// The capture failed: the X display is gone.
    DisplayLost(String),
    /// The pipeline failed, was restarted, and failed again.
    PipelineFailed(String),
}

/// What to do about a pipeline error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recovery {
    Restart,
    GiveUp,
}

/// Remembers the last restart (pure: time is passed in).
#[derive(Debug, Default)]
pub struct RestartPolicy {
    last: Option<Instant>,
    pub restarts: u64,
}

impl RestartPolicy {
    pub fn on_error(&mut self, now: Instant) -> Recovery {
        match self.last {
            Some(t) if now.duration_since(t) < RESTART_WINDOW => Recovery::GiveUp,
            _ => {
                self.last = Some(now);
                self.restarts += 1;
                Recovery::Restart
            }
        }
    }
}

impl Desktop {
    /// Handles an error posted by a pipeline element that is not a viewer's.
    pub(super) fn on_pipeline_error(&self, from_capture: bool, error: &str) {
        self.health.fail(format!("pipeline error: {error}"));
        if from_capture {
            tracing::error!("capture failed: {error}");
            self.fatal.send_replace(Some(Fatal::DisplayLost(format!("capture failed: {error}"))));
            return;
        }
        let decision = self.restarts.lock().unwrap_or_else(|e| e.into_inner()).on_error(Instant::now());
        match decision {
            Recovery::GiveUp => {
                tracing::error!(
                    "pipeline error again within {} min of its restart: {error}; Kelpie stops (exit status {EXIT_PIPELINE_FAILED})",
                    RESTART_WINDOW.as_secs() / 60
                );
                self.fatal.send_replace(Some(Fatal::PipelineFailed(error.to_string())));
            }
            Recovery::Restart => {
                tracing::error!("pipeline error: {error}; restarting the pipeline (viewers reconnect)");
                // Not on the bus thread's stack: stopping the pipeline joins its streaming
                // threads, and the bus must keep draining while it does.
                let me = self.me.clone();
                let spawned = std::thread::Builder::new().name("kelpie-restart".into()).spawn(move || {
                    if let Some(d) = me.upgrade() {
                        d.restart_pipeline();
                    }
                });
                if let Err(e) = spawned {
                    self.fatal.send_replace(Some(Fatal::PipelineFailed(format!("{error}; cannot restart: {e}"))));
                }
            }
        }
    }

    /// Every viewer is told its media failed (its page reconnects to the fresh pipeline),
    /// then the pipeline goes to NULL, which resets every element, and back to PLAYING.
    fn restart_pipeline(&self) {
        for (id, slot) in self.viewers().iter() {
            tracing::info!(viewer = id, "disconnecting for the pipeline restart");
            let _ = slot.events.send(TransportEvent::Failed("the desktop's pipeline restarted".into()));
        }
        if self.stop.load(Ordering::Relaxed) {
            return;
        }
        let _ = self.pipeline.set_state(gst::State::Null);
        self.health.clear_failure();
        match self.pipeline.set_state(gst::State::Playing) {
            Ok(_) => tracing::info!("pipeline restarted"),
            Err(e) => {
                tracing::error!("pipeline did not restart: {e}");
                self.fatal.send_replace(Some(Fatal::PipelineFailed(format!("restart failed: {e}"))));
            }
        }
    }

    /// Makes the encoder report an error, as a failing encoder would, to drill the
    /// recovery above (`kill -USR2`; docs/reliability.md).
    pub fn inject_encoder_error(&self) {
        tracing::warn!("fault drill: the encoder reports an error (SIGUSR2)");
        let msg =
            gst::message::Error::builder(gst::CoreError::Failed, "fault drill (SIGUSR2)").src(&self.encoder).build();
        if let Some(bus) = self.pipeline.bus() {
            let _ = bus.post(msg);
        }
    }

    /// Pipeline restarts so far (`/health`, `/metrics`).
    pub fn pipeline_restarts(&self) -> u64 {
        self.restarts.lock().unwrap_or_else(|e| e.into_inner()).restarts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_restart_then_give_up_unless_the_last_was_long_ago() {
        let mut p = RestartPolicy::default();
        let t0 = Instant::now();
        assert_eq!(p.on_error(t0), Recovery::Restart);
        assert_eq!(p.on_error(t0 + Duration::from_secs(5)), Recovery::GiveUp);
        assert_eq!(p.restarts, 1);
        // A glitch an hour later is a new glitch.
        let mut q = RestartPolicy::default();
        assert_eq!(q.on_error(t0), Recovery::Restart);
        assert_eq!(q.on_error(t0 + RESTART_WINDOW + Duration::from_secs(1)), Recovery::Restart);
        assert_eq!(q.restarts, 2);
    }
}

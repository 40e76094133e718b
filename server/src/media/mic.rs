//! The browser microphone into the desktop: Opus packets from the participant holding
//! control (over WebRTC or the WebSocket) are decoded and played into Kelpie's microphone
//! sink, whose virtual source desktop programs record from. Everyone else's packets are
//! counted and dropped: a viewer must not speak into the desktop.
//!
//! The playback pipeline is built when the first accepted packet arrives and kept; if
//! PulseAudio fails it is dropped and rebuilt on a later packet (after a pause, so a dead
//! server costs one attempt a second, not one per packet).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::audio::mic_chain;

/// After a failure, packets are dropped this long before the playback is rebuilt.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Whether a packet from `from` may reach the desktop's microphone (pure).
pub fn admits(controller: Option<u64>, from: u64) -> bool {
    controller == Some(from)
}

struct Playback {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
}

/// The microphone path, shared by every transport.
pub struct Mic {
    server: Option<String>,
    controller: Mutex<Option<u64>>,
    playback: Mutex<Option<Playback>>,
    retry_at: Mutex<Option<Instant>>,
    pub accepted: AtomicU64,
    pub refused: AtomicU64,
}

impl Mic {
    pub fn new(server: Option<String>) -> Self {
        Self {
            server,
            controller: Mutex::new(None),
            playback: Mutex::new(None),
            retry_at: Mutex::new(None),
            accepted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        }
    }

    /// Control moved: only `to` may send microphone audio from now on.
    pub fn set_controller(&self, to: Option<u64>) {
        *self.controller.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    /// One Opus packet from participant `from`, with its caps (`audio/x-opus`). False when
    /// refused (not in control) or dropped (no playback now).
    pub fn push(&self, from: u64, mut buffer: gst::Buffer, caps: &gst::Caps) -> bool {
        let controller = *self.controller.lock().unwrap_or_else(|e| e.into_inner());
        if !admits(controller, from) {
            if self.refused.fetch_add(1, Ordering::Relaxed).is_multiple_of(500) {
                tracing::info!(viewer = from, "microphone audio from a participant without control: dropped");
            }
            return false;
        }
        let mut playback = self.playback.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(p) = playback.as_ref() {
            if let Some(why) = failure(&p.pipeline) {
                tracing::warn!("microphone: {why}; retrying in {} s", RETRY_AFTER.as_secs());
                let _ = p.pipeline.set_state(gst::State::Null);
                *playback = None;
                *self.retry_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + RETRY_AFTER);
            }
        }
        if playback.is_none() {
            let due = self.retry_at.lock().unwrap_or_else(|e| e.into_inner()).is_none_or(|t| Instant::now() >= t);
            if !due {
                return false;
            }
            match self.build() {
                Ok(p) => {
                    tracing::info!(viewer = from, "microphone: playing into the desktop's default source");
                    *playback = Some(p);
                }
                Err(why) => {
                    tracing::warn!("microphone: {why}; retrying in {} s", RETRY_AFTER.as_secs());
                    *self.retry_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + RETRY_AFTER);
                    return false;
                }
            }
        }
        let Some(p) = playback.as_ref() else { return false };
        if p.src.caps().as_ref() != Some(caps) {
            p.src.set_caps(Some(caps));
        }
        // No timestamps: the sender's clock means nothing here, and the decoder plays
        // packets in order as they come (see `mic_chain`).
        let b = buffer.make_mut();
        b.set_pts(gst::ClockTime::NONE);
        b.set_dts(gst::ClockTime::NONE);
        let pushed = p.src.push_buffer(buffer).is_ok();
        if pushed {
            self.accepted.fetch_add(1, Ordering::Relaxed);
        }
        pushed
    }

    fn build(&self) -> Result<Playback, String> {
        let line = mic_chain(self.server.as_deref()).launch_line();
        let pipeline = gst::parse::launch(&line)
            .map_err(|e| format!("cannot build the playback: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "the playback is not a pipeline".to_string())?;
        let src = pipeline
            .by_name("in")
            .and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
            .ok_or("the playback has no appsrc")?;
        if pipeline.set_state(gst::State::Playing).is_err() {
            let why = failure(&pipeline).unwrap_or_else(|| "the playback would not start".into());
            let _ = pipeline.set_state(gst::State::Null);
            return Err(why);
        }
        Ok(Playback { pipeline, src })
    }
}

impl Drop for Mic {
    fn drop(&mut self) {
        if let Some(p) = self.playback.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = p.pipeline.set_state(gst::State::Null);
        }
    }
}

/// The playback's first error, if it has one.
fn failure(pipeline: &gst::Pipeline) -> Option<String> {
    let msg = pipeline.bus()?.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(format!("PulseAudio: {}", e.error())),
        _ => None,
    }
}

/// The caps of Opus packets that arrive without any (the WebSocket's).
pub fn socket_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-opus")
        .field("channel-mapping-family", 0i32)
        .field("channels", 2i32)
        .field("rate", 48_000i32)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_controller_reaches_the_microphone() {
        assert!(admits(Some(3), 3));
        assert!(!admits(Some(3), 4));
        assert!(!admits(None, 3), "nobody in control: nobody speaks");
    }

    #[test]
    fn packets_from_others_are_refused_and_counted() {
        gst::init().unwrap();
        let mic = Mic::new(Some("unix:/nonexistent/native".into()));
        mic.set_controller(Some(1));
        assert!(!mic.push(2, gst::Buffer::from_slice([0u8; 3]), &socket_caps()));
        assert_eq!(mic.refused.load(Ordering::Relaxed), 1);
        assert_eq!(mic.accepted.load(Ordering::Relaxed), 0);
    }
}

//! Runs the audio capture ([`super::audio::capture_chain`]) and keeps it running: every
//! Opus packet goes into the desktop pipeline's audio appsrc, and when PulseAudio is
//! missing, dies or stops delivering, the capture is rebuilt until it works again.
//! Video never waits for any of it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::audio::{capture_chain, AudioSettings, AudioState};
use super::pulse_probe::{self, Probe};

/// Retries back off from this…
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// …up to this, so audio is back within a few seconds of PulseAudio.
const MAX_RETRY: Duration = Duration::from_secs(4);
/// A capture that delivers nothing this long is rebuilt: a monitor sends packets (of
/// silence, too) every frame while its server lives, so this means the server is gone.
const STALL: Duration = Duration::from_secs(2);

/// What the capture is doing, shared with `/health`.
#[derive(Debug)]
pub struct AudioStatus {
    state: Mutex<AudioState>,
    /// Opus packets handed to the desktop pipeline.
    pub packets: AtomicU64,
    /// Times the capture was (re)built after a failure.
    pub recoveries: AtomicU64,
    /// How far behind the clock the last packet's timestamp was when it left the
    /// encoder, in µs: PulseAudio's and the capture's share of the sound's delay.
    pub capture_lag_us: AtomicU64,
    /// The capture pipeline running now, for counting its encoders.
    running: Mutex<Option<gst::glib::WeakRef<gst::Pipeline>>>,
}

impl AudioStatus {
    pub fn state(&self) -> AudioState {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Opus encoders in the running capture (one, whoever listens; zero when none runs).
    pub fn opus_encoders(&self) -> usize {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|w| w.upgrade());
        running.map_or(0, |p| count_factory(p.upcast_ref(), "opusenc"))
    }

    fn set(&self, s: AudioState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }
}

/// The running capture supervisor; dropping it stops the capture.
pub struct AudioOut {
    pub status: Arc<AudioStatus>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// How one run of the capture ended.
enum Ended {
    Stopped,
    /// Try again after a pause.
    Failed(String),
    /// Nothing a retry could fix (a missing GStreamer element).
    Permanent(String),
}

impl AudioOut {
    /// Starts capturing into `appsrc`, which lives in `desktop` (whose clock and base time
    /// the capture takes).
    pub fn start(settings: AudioSettings, desktop: &gst::Pipeline, appsrc: gst_app::AppSrc) -> Self {
        let status = Arc::new(AudioStatus {
            state: Mutex::new(AudioState::Starting),
            packets: AtomicU64::new(0),
            recoveries: AtomicU64::new(0),
            capture_lag_us: AtomicU64::new(0),
            running: Mutex::new(None),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp, desktop) = (status.clone(), stop.clone(), desktop.downgrade());
        let thread = std::thread::Builder::new()
            .name("kelpie-audio".into())
            .spawn(move || supervise(&settings, &desktop, &appsrc, &st, &sp))
            .map_err(|e| status.set(AudioState::Unavailable(format!("cannot start the audio thread: {e}"))))
            .ok();
        Self { status, stop, thread }
    }
}

impl Drop for AudioOut {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn supervise(
    settings: &AudioSettings,
    desktop: &gst::glib::WeakRef<gst::Pipeline>,
    appsrc: &gst_app::AppSrc,
    status: &Arc<AudioStatus>,
    stop: &AtomicBool,
) {
    let mut retry = FIRST_RETRY;
    let mut last_failure: Option<String> = None;
    while !stop.load(Ordering::Relaxed) {
        match run_once(settings, desktop, appsrc, status, stop, last_failure.is_some()) {
            Ended::Stopped => return,
            Ended::Permanent(why) => {
                tracing::error!("audio: {why}; streaming video without sound");
                status.set(AudioState::Unavailable(why));
                return;
            }
            Ended::Failed(why) => {
                if last_failure.as_deref() != Some(why.as_str()) {
                    tracing::warn!("audio: {why}; video goes on, and audio is retried until PulseAudio answers");
                } else {
                    tracing::debug!("audio: still failing: {why}");
                }
                status.set(AudioState::Unavailable(why.clone()));
                last_failure = Some(why);
            }
        }
        let until = Instant::now() + retry;
        while Instant::now() < until {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        retry = (retry * 2).min(MAX_RETRY);
        if last_failure.is_none() {
            retry = FIRST_RETRY;
        }
    }
}

/// Builds the capture, runs it until it fails or `stop`, and tears it down.
fn run_once(
    settings: &AudioSettings,
    desktop: &gst::glib::WeakRef<gst::Pipeline>,
    appsrc: &gst_app::AppSrc,
    status: &Arc<AudioStatus>,
    stop: &AtomicBool,
    recovering: bool,
) -> Ended {
    let chain = capture_chain(settings);
    for f in chain.factories() {
        if gst::ElementFactory::find(f).is_none() {
            let hint = match f {
                "opusenc" => "no Opus encoder: install gstreamer1.0-plugins-base",
                "pulsesrc" => "no PulseAudio source: install gstreamer1.0-plugins-good (pulseaudio plugin)",
                _ => "a GStreamer element is missing",
            };
            return Ended::Permanent(format!("{hint} (element {f})"));
        }
    }
    // Asked first: a pulsesrc that cannot connect leaks its libpulse thread (pulse_probe).
    if let Probe::Unreachable(why) = pulse_probe::probe(settings.server.as_deref()) {
        return Ended::Failed(describe(&format!("Failed to connect: {why}")));
    }
    let Some(main) = desktop.upgrade() else { return Ended::Stopped };
    let pipeline = match gst::parse::launch(&chain.launch_line()).map(|e| e.downcast::<gst::Pipeline>()) {
        Ok(Ok(p)) => p,
        Ok(Err(_)) => return Ended::Permanent("the capture is not a pipeline".into()),
        Err(e) => return Ended::Permanent(format!("cannot build the capture: {e}")),
    };
    // One clock and base time with the desktop pipeline: audio timestamps are its
    // running times, whenever the capture was (re)built.
    let clock = main.clock();
    let base = main.base_time().unwrap_or(gst::ClockTime::ZERO);
    if let Some(clock) = &clock {
        pipeline.use_clock(Some(clock));
        pipeline.set_start_time(gst::ClockTime::NONE);
        pipeline.set_base_time(base);
    }
    drop(main);
    let Some(sink) = pipeline.by_name("out").and_then(|e| e.downcast::<gst_app::AppSink>().ok()) else {
        return Ended::Permanent("the capture has no appsink".into());
    };
    let last_packet = Arc::new(Mutex::new(Instant::now()));
    let first = Arc::new(AtomicBool::new(true));
    {
        let (appsrc, status, last_packet, first) = (appsrc.clone(), status.clone(), last_packet.clone(), first.clone());
        let clock = clock.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |s| {
                    let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                    if first.swap(false, Ordering::Relaxed) {
                        if recovering {
                            status.recoveries.fetch_add(1, Ordering::Relaxed);
                            tracing::info!("audio: capturing from PulseAudio again");
                        } else {
                            tracing::info!("audio: capturing the desktop's default sink (Opus)");
                        }
                        status.set(AudioState::Playing);
                    }
                    if let (Some(caps), current) = (sample.caps(), appsrc.caps()) {
                        if current.as_ref().map(|c| c.as_ref()) != Some(caps) {
                            appsrc.set_caps(Some(&caps.to_owned()));
                        }
                    }
                    if let (Some(now), Some(pts)) =
                        (clock.as_ref().map(|c| c.time()), sample.buffer().and_then(|b| b.pts()))
                    {
                        let lag = now.saturating_sub(base).saturating_sub(pts);
                        status.capture_lag_us.store(lag.useconds(), Ordering::Relaxed);
                    }
                    if let Some(buffer) = sample.buffer_owned() {
                        // Never blocks: the appsrc drops its oldest packet when full.
                        let _ = appsrc.push_buffer(buffer);
                        status.packets.fetch_add(1, Ordering::Relaxed);
                    }
                    *last_packet.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
                    Ok(gst::FlowSuccess::Ok)
                })
                .build(),
        );
    }
    *status.running.lock().unwrap_or_else(|e| e.into_inner()) = Some(pipeline.downgrade());
    let ended = watch(&pipeline, &last_packet, stop);
    let _ = pipeline.set_state(gst::State::Null);
    ended
}

/// Plays the capture and waits for an error, a stall, or `stop`.
fn watch(pipeline: &gst::Pipeline, last_packet: &Mutex<Instant>, stop: &AtomicBool) -> Ended {
    if pipeline.set_state(gst::State::Playing).is_err() {
        return Ended::Failed(first_error(pipeline).unwrap_or_else(|| "the capture would not start".into()));
    }
    let Some(bus) = pipeline.bus() else { return Ended::Permanent("the capture has no bus".into()) };
    *last_packet.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if let Some(msg) = bus
            .timed_pop_filtered(gst::ClockTime::from_mseconds(200), &[gst::MessageType::Error, gst::MessageType::Eos])
        {
            return Ended::Failed(match msg.view() {
                gst::MessageView::Error(e) => describe(&e.error().to_string()),
                _ => "PulseAudio ended the stream".into(),
            });
        }
        let since = last_packet.lock().unwrap_or_else(|e| e.into_inner()).elapsed();
        if since > STALL {
            return Ended::Failed(format!("no sound from PulseAudio for {:.0} s", since.as_secs_f64()));
        }
    }
    Ended::Stopped
}

/// Elements made by `factory` anywhere inside `bin`.
pub fn count_factory(bin: &gst::Bin, factory: &str) -> usize {
    bin.iterate_recurse()
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.factory().is_some_and(|f| f.name() == factory))
        .count()
}

fn first_error(pipeline: &gst::Pipeline) -> Option<String> {
    let msg = pipeline.bus()?.pop_filtered(&[gst::MessageType::Error])?;
    match msg.view() {
        gst::MessageView::Error(e) => Some(describe(&e.error().to_string())),
        _ => None,
    }
}

/// pulsesrc's errors, said the way an administrator can act on them.
fn describe(error: &str) -> String {
    let lower = error.to_ascii_lowercase();
    if lower.contains("connection refused") || lower.contains("failed to connect") || lower.contains("connect") {
        format!("cannot reach PulseAudio ({error}); is it running, and is PULSE_SERVER right?")
    } else {
        format!("PulseAudio: {error}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_errors_name_the_fix() {
        assert!(describe("Failed to connect: Connection refused").contains("PULSE_SERVER"));
        assert_eq!(describe("Internal data stream error."), "PulseAudio: Internal data stream error.");
    }
}

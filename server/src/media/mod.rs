//! Media: one shared capture/encode pipeline per desktop; per viewer, a webrtcbin branch
//! (WebRTC) or a feed of the encoder's access units (WebSocket).

mod adapt;
pub mod annexb;
pub mod audio;
mod audio_channel;
mod audio_out;
pub mod encoder;
mod frame_timing;
pub mod grave;
mod health;
pub mod keyframe;
mod main_context;
mod mic;
mod nack;
pub mod pipeline;
mod ports;
mod pulse_probe;
pub mod recovery;
mod sctp_guard;
mod selftest;
mod sockets;
pub mod spec;
pub mod stats;
mod viewer;
pub mod xlib;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use tokio::sync::mpsc::UnboundedSender;

use crate::transport::feed::Feed;
use crate::transport::{Kind, TransportEvent, Wire};
pub use adapt::ViewerAdapt;
pub use audio::{AudioSettings, AudioState};
pub use encoder::{EncodeParams, EncoderChoice, EncoderKind, EncoderPreference, X264Tuning};
pub use health::Health;
pub use main_context::run_default_main_context;
pub use pipeline::CaptureSource;
pub use recovery::Fatal;
pub use viewer::{IceSettings, Track};
use viewer::{ViewerBranch, BIN_PREFIX};

/// GStreamer's DTLS elements generate their certificate (an RSA key) when the first one is
/// created, which put the cost — hundreds of milliseconds on a small machine — in front of
/// the first viewer's offer. Creating one in the background at start-up pays it while the
/// display and session start; later viewers share the cached certificate.
pub fn warm_up_dtls() {
    let spawned = std::thread::Builder::new().name("kelpie-dtls-warmup".into()).spawn(|| {
        let t = Instant::now();
        match gst::ElementFactory::make("dtlsdec").build() {
            Ok(_) => tracing::debug!(ms = t.elapsed().as_millis() as u64, "DTLS certificate ready"),
            Err(_) => tracing::debug!("no dtlsdec element to warm up (webrtcbin will say why if it matters)"),
        }
    });
    if let Err(e) = spawned {
        tracing::debug!("DTLS warm-up not started: {e}");
    }
}

/// Every keyframe request reaches the encoder as an upstream force-key-unit event on its
/// src pad: ours ([`force_keyframe_on`]) and browsers' (RTCP PLI/FIR, which webrtcbin turns
/// into that event). On a still screen the damage capture sends no frame the encoder could
/// make a keyframe of, so the viewer would wait for the next idle repeat (up to a second):
/// the probe asks the capture for a frame right away, whoever asked.
fn refresh_on_keyframe_requests(encoder: &gst::Element, capture: &gst::Element) {
    if !capture.has_property("idle-interval") {
        return; // ximagesrc sends frames continuously anyway
    }
    let Some(pad) = encoder.static_pad("src") else { return };
    let capture = capture.downgrade();
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        if info.event().is_some_and(|e| is_keyframe_request(e)) {
            if let Some(cap) = capture.upgrade() {
                cap.emit_by_name::<()>("refresh", &[]);
            }
        }
        gst::PadProbeReturn::Ok
    });
}

/// Whether `event` asks an encoder for a keyframe (ours, or a browser's PLI/FIR that
/// webrtcbin turned into an upstream force-key-unit event).
fn is_keyframe_request(event: &gst::EventRef) -> bool {
    event.type_() == gst::EventType::CustomUpstream && event.structure().is_some_and(|s| s.name() == "GstForceKeyUnit")
}

/// How long a viewer's offer waits for the encoder's first frame (see
/// [`Desktop::wait_for_video_caps`]).
const VIDEO_CAPS_WAIT: Duration = Duration::from_secs(5);

/// A viewer's data channel may hold this much unsent data before further messages to it
/// are refused; large transfers (clipboard) wait for [`Desktop::data_buffered`] to drop.
pub const DATA_BUFFER_LIMIT: u64 = 4 * 1024 * 1024;

/// Keyframe requests closer together than this are merged: several viewers joining or
/// several PLIs for the same loss need one keyframe, not a burst that floods the link.
const KEYFRAME_MIN_INTERVAL: Duration = Duration::from_millis(250);

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("GStreamer element {0} is missing")]
    MissingElement(String),
    #[error("building the pipeline failed: {0}")]
    Build(String),
    #[error("linking the viewer branch failed: {0}")]
    Link(String),
    #[error(transparent)]
    NoEncoder(#[from] encoder::NoEncoder),
}

/// The audio track, for `/health`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AudioReport {
    #[serde(flatten)]
    pub state: AudioState,
    /// Opus packets captured and handed to the subscriptions.
    pub packets: u64,
    /// Times the capture came back after PulseAudio failed.
    pub recoveries: u64,
    /// How old the last Opus packet was when it left the encoder (PulseAudio's buffers and
    /// the encoder's frame), in ms.
    pub capture_lag_ms: f64,
    /// Opus encoders running, in the capture and in every viewer's branch: one, however
    /// many listen.
    pub opus_encoders: usize,
    /// Microphone packets played into the desktop, and refused (sender not in control).
    pub mic_accepted: u64,
    pub mic_refused: u64,
}

/// How the stream meets each viewer's link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkSettings {
    /// Follow bandwidth estimates (`--adapt`); off: constant bitrate.
    pub adapt: bool,
    /// Forward error correction for WebRTC video, percent of the media packets (`--fec`).
    pub fec_percent: u32,
}

/// Asked to get this viewer a keyframe from the rung it is on (runs on a GStreamer thread).
pub(crate) type KeyframeHandler = Arc<dyn Fn() + Send + Sync>;

/// The low rung's elements (its access-unit tee is in each viewer's `Track`).
struct LowRung {
    /// Drops frames before its encoder while nobody is on it.
    valve: gst::Element,
    encoder: gst::Element,
    /// Merges its keyframe requests like the main encoder's.
    keyframes: Arc<Mutex<keyframe::KeyframeGate>>,
}

/// What carries one viewer's media.
enum Attached {
    Rtc(ViewerBranch),
    Socket(Arc<Feed>),
}

/// The per-viewer event channel plus what it needs to route bus errors.
struct ViewerSlot {
    attached: Attached,
    events: UnboundedSender<TransportEvent>,
}

impl ViewerSlot {
    fn branch(&self) -> Option<&ViewerBranch> {
        match &self.attached {
            Attached::Rtc(b) => Some(b),
            Attached::Socket(_) => None,
        }
    }

    fn send_text(&self, text: &str) -> bool {
        match &self.attached {
            Attached::Rtc(b) => b.send_text(text, DATA_BUFFER_LIMIT),
            Attached::Socket(feed) => feed.push_channel(text, DATA_BUFFER_LIMIT),
        }
    }
}

/// A desktop's shared pipeline.
pub struct Desktop {
    /// For work that outlives a call (the connection probe's sender thread).
    me: std::sync::Weak<Desktop>,
    pipeline: gst::Pipeline,
    /// The tracks every subscription takes: video, and audio unless `--audio off`.
    tracks: Vec<viewer::Track>,
    /// The audio capture, once the pipeline plays (`None` without audio).
    audio_out: Mutex<Option<audio_out::AudioOut>>,
    /// The browser microphone's way into the desktop (`None` without audio).
    mic: Option<Arc<mic::Mic>>,
    encoder: gst::Element,
    /// The second, lower-bitrate encode for viewers whose link cannot carry the main one.
    low: LowRung,
    capture: gst::Element,
    /// Each frame's time per stage, into `crate::latency` (and so `/metrics`).
    timing: Arc<frame_timing::FrameTiming>,
    /// Bytes a viewer's queue may hold: about three frames at the configured bitrate.
    viewer_queue_bytes: u32,
    ice: IceSettings,
    viewers: Mutex<HashMap<u64, ViewerSlot>>,
    /// The WebSocket viewers' feeds, offered every access unit.
    sockets: Arc<sockets::Sockets>,
    /// Stopped branches waiting to be freed (`grave`).
    graves: Mutex<grave::Graves<ViewerBranch>>,
    keyframes: Arc<Mutex<keyframe::KeyframeGate>>,
    pub health: Arc<Health>,
    pub stats: Arc<stats::MediaStats>,
    pub encoder_kind: EncoderKind,
    /// The frame rate the pipeline was built for; viewers may only ask for less.
    framerate: u32,
    /// When each viewer last ran the connection probe.
    probes: selftest::Probes,
    /// Bandwidth estimates and the bitrate policy (`crate::adapt`).
    adapt: Arc<Mutex<adapt::Adaptation>>,
    stop: Arc<AtomicBool>,
    /// Set once Kelpie cannot recover (the X display is gone, or the pipeline failed
    /// again after its restart) and should exit so that its supervisor restarts it.
    fatal: tokio::sync::watch::Sender<Option<Fatal>>,
    /// Restarts after pipeline errors ([`recovery`]).
    restarts: Mutex<recovery::RestartPolicy>,
}

impl Desktop {
    /// Builds and starts the pipeline for `display` with the chosen encoder.
    pub fn start(
        source: CaptureSource,
        display: &str,
        kind: EncoderKind,
        params: &EncodeParams,
        ice: IceSettings,
        link: LinkSettings,
        sound: Option<AudioSettings>,
    ) -> Result<Arc<Self>, MediaError> {
        let mut line = pipeline::desktop_launch_line(source, display, kind, params);
        if sound.is_some() {
            line = format!("{line} {}", spec::Chain(audio::track_stages()).launch_line());
        }
        tracing::debug!("pipeline: {line}");
        let pipeline = gst::parse::launch(&line)
            .map_err(|e| MediaError::Build(e.to_string()))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| MediaError::Build("not a pipeline".into()))?;
        let by_name = |n: &str| pipeline.by_name(n).ok_or_else(|| MediaError::Build(format!("no element {n}")));
        let au_tee = by_name(pipeline::VIDEO_AU_TEE)?;
        let low = LowRung {
            valve: by_name(pipeline::LOW_VALVE)?,
            encoder: by_name(pipeline::LOW_ENCODER)?,
            keyframes: Arc::new(Mutex::new(keyframe::KeyframeGate::new(KEYFRAME_MIN_INTERVAL))),
        };
        let mut tracks = vec![viewer::Track {
            name: "video",
            media: viewer::Media::Video,
            main: au_tee.clone(),
            low: Some(by_name(pipeline::LOW_AU_TEE)?),
            caps_from: Some(by_name(pipeline::VIDEO_RTP_TEE)?),
        }];
        if sound.is_some() {
            tracks.push(viewer::Track {
                name: "audio",
                media: viewer::Media::Audio,
                main: by_name(audio::AUDIO_AU_TEE)?,
                low: None,
                caps_from: None,
            });
        }
        let encoder = by_name("encoder")?;
        let capture = by_name("capture")?;
        let health = Arc::new(Health::new());
        let h = health.clone();
        if let Some(pad) = encoder.static_pad("src") {
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                h.frame();
                gst::PadProbeReturn::Ok
            });
        }
        refresh_on_keyframe_requests(&encoder, &capture);
        refresh_on_keyframe_requests(&low.encoder, &capture);
        let media_stats = Arc::new(stats::MediaStats::default());
        media_stats.attach(&encoder);
        let timing = frame_timing::FrameTiming::attach(&capture, &encoder);
        let desktop = Arc::new_cyclic(|me| Self {
            me: me.clone(),
            pipeline,
            tracks,
            audio_out: Mutex::new(None),
            mic: sound.as_ref().map(|s| Arc::new(mic::Mic::new(s.server.clone()))),
            encoder,
            low,
            capture,
            timing,
            viewer_queue_bytes: viewer_queue_bytes(params),
            ice,
            viewers: Mutex::new(HashMap::new()),
            sockets: Arc::new(sockets::Sockets::default()),
            graves: Mutex::new(grave::Graves::new(grave::GRACE, grave::CAP)),
            keyframes: Arc::new(Mutex::new(keyframe::KeyframeGate::new(KEYFRAME_MIN_INTERVAL))),
            health,
            stats: media_stats,
            encoder_kind: kind,
            framerate: params.framerate,
            probes: selftest::Probes::default(),
            adapt: Arc::new(Mutex::new({
                let mut a = adapt::Adaptation::new(link.adapt, params.bitrate_kbps, params.framerate);
                a.set_fec(link.fec_percent);
                a
            })),
            stop: Arc::new(AtomicBool::new(false)),
            fatal: tokio::sync::watch::channel(None).0,
            restarts: Mutex::new(Default::default()),
        });
        let weak = Arc::downgrade(&desktop);
        desktop.sockets.attach(&au_tee, move || {
            // Not on the encoder's thread: forcing a keyframe sends an event back into it.
            let weak = weak.clone();
            let _ = std::thread::Builder::new().name("kelpie-keyframe".into()).spawn(move || {
                if let Some(d) = weak.upgrade() {
                    d.request_keyframe();
                }
            });
        });
        if let Some(tee) = desktop.tracks.iter().find(|t| t.media == viewer::Media::Audio) {
            desktop.sockets.attach_audio(&tee.main);
        }
        desktop.spawn_bus_thread();
        desktop.spawn_stats_thread();
        desktop.spawn_adapt_thread();
        if !link.adapt {
            tracing::info!(kbps = params.bitrate_kbps, "bitrate adaptation off: constant bitrate for every viewer");
        }
        desktop
            .pipeline
            .set_state(gst::State::Playing)
            .map_err(|_| MediaError::Build("the pipeline refused to start (see the errors above)".into()))?;
        match sound {
            Some(settings) => desktop.start_audio(settings),
            None => tracing::info!("audio off (--audio off): streaming video only"),
        }
        Ok(desktop)
    }

    /// Starts the audio capture once the pipeline has its clock and base time (which the
    /// capture shares), waiting for that at most a few seconds.
    fn start_audio(&self, settings: AudioSettings) {
        let _ = self.pipeline.state(gst::ClockTime::from_seconds(5));
        let Some(src) = self.pipeline.by_name(audio::AUDIO_SRC).and_then(|e| e.downcast::<gst_app::AppSrc>().ok())
        else {
            tracing::error!("the pipeline has no audio source: streaming without sound");
            return;
        };
        tracing::info!(
            kbps = settings.bitrate_kbps,
            server = settings.server.as_deref().unwrap_or("libpulse default"),
            "audio: capturing the default sink's monitor"
        );
        *self.audio_out.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(audio_out::AudioOut::start(settings, &self.pipeline, src));
    }

    /// The audio track now (`None` with `--audio off`).
    pub fn audio_status(&self) -> Option<AudioReport> {
        let mic = self.mic.as_ref()?;
        let out = self.audio_out.lock().unwrap_or_else(|e| e.into_inner());
        let (state, packets, capture_encoders, recoveries, lag_us) = match out.as_ref() {
            Some(o) => (
                o.status.state(),
                o.status.packets.load(Ordering::Relaxed),
                o.status.opus_encoders(),
                o.status.recoveries.load(Ordering::Relaxed),
                o.status.capture_lag_us.load(Ordering::Relaxed),
            ),
            None => (AudioState::Starting, 0, 0, 0, 0),
        };
        Some(AudioReport {
            state,
            packets,
            recoveries,
            capture_lag_ms: lag_us as f64 / 1e3,
            opus_encoders: capture_encoders + audio_out::count_factory(self.pipeline.upcast_ref(), "opusenc"),
            mic_accepted: mic.accepted.load(Ordering::Relaxed),
            mic_refused: mic.refused.load(Ordering::Relaxed),
        })
    }

    fn graves(&self) -> std::sync::MutexGuard<'_, grave::Graves<ViewerBranch>> {
        self.graves.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn viewers(&self) -> std::sync::MutexGuard<'_, HashMap<u64, ViewerSlot>> {
        self.viewers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn adaptation(&self) -> std::sync::MutexGuard<'_, adapt::Adaptation> {
        self.adapt.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a viewer on `wire`. A WebRTC branch's offer and candidates arrive on
    /// `events`; a WebSocket viewer is connected at once and waits for a keyframe.
    pub fn add_viewer(&self, id: u64, wire: Wire, events: UnboundedSender<TransportEvent>) -> Result<(), MediaError> {
        let attached = match wire {
            Wire::Webrtc { ice, inbound } => {
                self.wait_for_video_caps(VIDEO_CAPS_WAIT);
                let branch = ViewerBranch::create(
                    id,
                    &self.pipeline,
                    &self.tracks,
                    self.viewer_queue_bytes,
                    self.adaptation().fec_percent(),
                    &self.ice,
                    &ice,
                    events.clone(),
                    inbound,
                    self.keyframe_handler(id),
                    self.mic.as_ref().map(|mic| {
                        let mic = mic.clone();
                        Arc::new(move |buffer: gst::Buffer, caps: &gst::Caps| {
                            mic.push(id, buffer, caps);
                        }) as viewer::MicHandler
                    }),
                )?;
                if let Some(pad) = branch.video_pad() {
                    self.timing.watch_sent(pad);
                }
                let me = self.me.clone();
                let keyframe = self.keyframe_handler(id);
                branch.watch_feedback(move |s| {
                    let packets = adapt::twcc_packets(s);
                    let Some(d) = me.upgrade() else { return };
                    let feedback = d.adaptation().report(id, Instant::now(), &packets);
                    if feedback.retune {
                        d.retune_now();
                    }
                    if feedback.keyframe {
                        tracing::debug!(viewer = id, "keyframe after a loss burst");
                        keyframe();
                    }
                });
                Attached::Rtc(branch)
            }
            Wire::Websocket { feed } => {
                if let Some(mic) = &self.mic {
                    let (mic, caps) = (mic.clone(), mic::socket_caps());
                    feed.set_mic(Arc::new(move |packet: &[u8]| {
                        mic.push(id, gst::Buffer::from_slice(packet.to_vec()), &caps);
                    }));
                }
                self.sockets.add(id, feed.clone());
                let _ = events.send(TransportEvent::ChannelOpen);
                let _ = events.send(TransportEvent::Connected);
                Attached::Socket(feed)
            }
        };
        self.adaptation().add_viewer(id);
        self.stats.add_viewer(id);
        self.viewers().insert(id, ViewerSlot { attached, events });
        Ok(())
    }

    /// Waits (at most `limit`) until the encoder's first frame has set the video caps that
    /// every offer's codec preferences are made from. A page that connects the moment the
    /// server listens would otherwise get an offer built from the payloader's template,
    /// and no picture (seen once in a fresh-clone CI run: the viewer joined 20 ms after
    /// start).
    fn wait_for_video_caps(&self, limit: Duration) {
        let has_caps = || {
            self.tracks
                .iter()
                .filter_map(|t| t.caps_from.as_ref())
                .all(|e| e.static_pad("sink").is_some_and(|p| p.current_caps().is_some()))
        };
        let deadline = Instant::now() + limit;
        while !has_caps() {
            if Instant::now() > deadline {
                tracing::warn!(
                    "no video frame encoded {} s after a viewer came: offering without codec preferences",
                    limit.as_secs()
                );
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The participant holding control changed: the encoder follows its estimate.
    /// Only it may speak into the desktop's microphone.
    pub fn set_leader(&self, id: Option<u64>) {
        self.adaptation().set_controller(id);
        if let Some(mic) = &self.mic {
            mic.set_controller(id);
        }
    }

    /// Each WebSocket viewer's video frames: (id, sent, skipped).
    pub fn socket_counts(&self) -> Vec<(u64, u64, u64)> {
        self.sockets.counts()
    }

    /// Viewers on each kind of transport.
    pub fn kinds(&self) -> Vec<(Kind, usize)> {
        let sockets = self.sockets.len();
        let total = self.viewers().len();
        vec![(Kind::Webrtc, total.saturating_sub(sockets)), (Kind::Websocket, sockets)]
    }

    pub fn apply_answer(&self, id: u64, sdp: &str) {
        if let Some(slot) = self.viewers().get(&id) {
            if let Some(b) = slot.branch() {
                b.apply_answer(sdp, slot.events.clone());
            }
        }
    }

    pub fn add_ice(&self, id: u64, sdp_mline_index: u32, candidate: &str) {
        if let Some(b) = self.viewers().get(&id).and_then(|s| s.branch()) {
            b.add_ice(sdp_mline_index, candidate);
        }
    }

    /// Sends a text message to one viewer's data channel (or socket); false if it could
    /// not be sent (channel not open, or the viewer is not reading and its buffer is full).
    pub fn send_data(&self, id: u64, text: &str) -> bool {
        self.viewers().get(&id).is_some_and(|s| s.send_text(text))
    }

    /// Sends a text message to every viewer whose data channel is open.
    pub fn broadcast_data(&self, text: &str) {
        for slot in self.viewers().values() {
            slot.send_text(text);
        }
    }

    /// Applies stream settings from a client's settings panel while streaming: the bitrate
    /// becomes the adaptation's ceiling and the frame rate its limit, up to the one Kelpie
    /// started with (`--framerate`). The encoder is retuned at once; the low rung follows
    /// on the adaptation thread's next tick (moving viewers waits for pads, and this runs
    /// under the room's lock).
    pub fn apply_settings(&self, framerate: Option<u32>, bitrate_kbps: Option<u32>) {
        if let Some(kbps) = bitrate_kbps {
            if self.encoder.find_property("bitrate").is_some() {
                self.adaptation().set_ceiling(kbps);
                tracing::info!(kbps, "bitrate changed");
            } else {
                tracing::warn!("this encoder has no bitrate property; bitrate unchanged");
            }
        }
        if let Some(fps) = framerate {
            // The damage capture paces itself below the negotiated rate without renegotiating
            // (changing caps mid-stream would stop the source with not-negotiated).
            if self.capture.find_property("max-framerate").is_some() {
                self.adaptation().set_max_fps(fps.min(self.framerate));
                tracing::info!(fps = fps.min(self.framerate), "frame rate changed");
            } else {
                tracing::warn!(fps, "the frame rate can only change while streaming with --capture damage");
            }
        }
        self.retune_now();
    }

    /// The stream settings in force: the bitrate ceiling (kbit/s, `None` for an encoder
    /// without the property) and the frame-rate limit, as chosen; and what adaptation runs
    /// the encoder at now (kbit/s, fps).
    pub fn stream_settings(&self) -> (Option<u32>, u32, Option<(u32, u32)>) {
        let a = self.adaptation();
        let kbps = self.encoder.find_property("bitrate").map(|_| (a.bounds().ceiling_bps / 1e3).round() as u32);
        (kbps, a.max_fps(), a.applied())
    }

    /// Draws the cursor into the video (or stops), for viewers in pointer lock. Only the
    /// damage capture can do this while streaming.
    pub fn set_show_pointer(&self, on: bool) {
        if self.capture.find_property("show-pointer").is_some() {
            self.capture.set_property("show-pointer", on);
            tracing::info!(on, "cursor drawn into the video (a viewer is in pointer lock)");
        } else {
            tracing::warn!("this capture cannot draw the cursor while streaming; pointer-lock users see none");
        }
    }

    /// Viewer ids present now.
    pub fn viewer_ids(&self) -> Vec<u64> {
        self.viewers().keys().copied().collect()
    }

    /// Bytes queued on a viewer's data channel, or `None` if it has no open channel.
    pub fn data_buffered(&self, id: u64) -> Option<u64> {
        self.viewers().get(&id).and_then(|s| match &s.attached {
            Attached::Rtc(b) => b.data_buffered(),
            Attached::Socket(feed) => Some(feed.channel_buffered()),
        })
    }

    /// Tears a viewer's branch down. Blocking (waits for the branch to stop).
    pub fn remove_viewer(&self, id: u64) {
        let attached = self.viewers().remove(&id).map(|s| s.attached);
        self.stats.forget_viewer(id);
        self.adaptation().remove_viewer(id);
        if let Some(Attached::Socket(feed)) = &attached {
            self.sockets.remove(id);
            feed.close();
            tracing::info!(viewer = id, "WebSocket viewer removed");
        }
        if let Some(Attached::Rtc(b)) = attached {
            b.stop(&self.pipeline);
            tracing::info!(viewer = id, "viewer branch removed");
            // Freed later (see `grave`); anything over the cap is dropped here, unlocked.
            let early = self.graves().bury(b, Instant::now());
            drop(early);
        }
    }

    /// Resolves with a reason once the desktop can no longer be streamed.
    pub fn fatal_error(&self) -> tokio::sync::watch::Receiver<Option<Fatal>> {
        self.fatal.subscribe()
    }

    pub fn viewer_count(&self) -> usize {
        self.viewers().len()
    }

    /// Viewer bins present in the pipeline right now (counted from GStreamer, not our map,
    /// so a leaked branch shows up).
    pub fn branch_count(&self) -> usize {
        self.pipeline
            .iterate_elements()
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| e.name().starts_with(BIN_PREFIX))
            .count()
    }

    /// Asks the encoder for a keyframe; requests closer than [`KEYFRAME_MIN_INTERVAL`] are
    /// merged into one forced at the end of the interval.
    pub fn request_keyframe(&self) {
        request_merged(&self.encoder, &self.keyframes);
    }

    /// Asks the low rung's encoder for a keyframe, merged like the main one's.
    fn request_low_keyframe(&self) {
        request_merged(&self.low.encoder, &self.low.keyframes);
    }

    /// Viewer `id`'s keyframe requests, sent to the rung it is on.
    fn keyframe_handler(&self, id: u64) -> KeyframeHandler {
        let me = self.me.clone();
        Arc::new(move || {
            let Some(d) = me.upgrade() else { return };
            let low = d.viewers().get(&id).is_some_and(|s| s.branch().is_some_and(|b| b.on_low()));
            if low {
                d.request_low_keyframe();
            } else {
                d.request_keyframe();
            }
        })
    }

    /// Stops the pipeline and every branch.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.audio_out.lock().unwrap_or_else(|e| e.into_inner()).take());
        let _ = self.pipeline.set_state(gst::State::Null);
        for slot in self.viewers().drain().map(|(_, s)| s) {
            if let Attached::Socket(feed) = slot.attached {
                feed.close();
            }
        }
        let graves = self.graves().drain();
        drop(graves);
    }

    fn spawn_bus_thread(self: &Arc<Self>) {
        let Some(bus) = self.pipeline.bus() else { return };
        let weak = Arc::downgrade(self);
        let stop = self.stop.clone();
        let spawned = std::thread::Builder::new().name("kelpie-bus".into()).spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(200)) else { continue };
                let Some(desktop) = weak.upgrade() else { return };
                desktop.on_bus_message(&msg);
            }
        });
        if let Err(e) = spawned {
            self.health.fail(format!("cannot start the bus thread: {e}"));
        }
    }

    /// Once a second: frame rate and bitrate of the encoder, and each viewer's network
    /// figures from webrtcbin.
    fn spawn_stats_thread(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let stop = self.stop.clone();
        let _ = std::thread::Builder::new().name("kelpie-stats".into()).spawn(move || {
            let mut last = (Instant::now(), 0u64, 0u64);
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_secs(1));
                let Some(d) = weak.upgrade() else { return };
                let (frames, bytes) = (d.health.frames(), d.stats.encoded_bytes());
                let secs = last.0.elapsed().as_secs_f64().max(1e-3);
                d.stats.set_rates((frames - last.1) as f64 / secs, (bytes - last.2) as f64 * 8.0 / secs);
                last = (Instant::now(), frames, bytes);
                let freed = d.graves().due(Instant::now());
                let any_freed = !freed.is_empty();
                drop(freed); // outside the lock: freeing a webrtcbin joins its threads
                if any_freed {
                    give_back_freed_memory();
                }
                for (id, slot) in d.viewers().iter() {
                    if let Some(b) = slot.branch() {
                        let st = d.stats.clone();
                        let id = *id;
                        b.request_stats(move |s| st.set_viewer(id, stats::viewer_net_from_stats(s)));
                    }
                }
            }
        });
    }

    fn on_bus_message(&self, msg: &gst::Message) {
        use gst::MessageView;
        match msg.view() {
            MessageView::Error(err) => {
                self.stats.errors.fetch_add(1, Ordering::Relaxed);
                let text = format!("{} ({})", err.error(), err.debug().unwrap_or_default());
                if let Some(id) = msg.src().and_then(viewer_of) {
                    match self.viewers().get(&id) {
                        Some(slot) => {
                            tracing::warn!(viewer = id, "viewer media error: {text}");
                            let _ = slot.events.send(TransportEvent::Failed(format!("media error: {}", err.error())));
                        }
                        // A branch being torn down reports its closing data channel as an error.
                        None => tracing::debug!(viewer = id, "media error from a departed viewer: {text}"),
                    }
                } else {
                    tracing::debug!("pipeline error details: {text}");
                    let from_capture = msg.src().is_some_and(|s| s.name() == "capture");
                    self.on_pipeline_error(from_capture, &err.error().to_string());
                }
            }
            MessageView::Warning(w) => tracing::warn!("pipeline warning: {}", w.error()),
            MessageView::StateChanged(s) if msg.src() == Some(self.pipeline.upcast_ref()) => {
                tracing::debug!(from = ?s.old(), to = ?s.current(), "pipeline state");
                self.health.playing.store(s.current() == gst::State::Playing, Ordering::Relaxed);
            }
            MessageView::Latency(_) => {
                let _ = self.pipeline.recalculate_latency();
            }
            _ => {}
        }
    }
}

impl Drop for Desktop {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// Forces a keyframe on `encoder` now, or at the end of `gate`'s interval.
fn request_merged(encoder: &gst::Element, gate: &Arc<Mutex<keyframe::KeyframeGate>>) {
    let decision = gate.lock().unwrap_or_else(|e| e.into_inner()).request(Instant::now());
    match decision {
        keyframe::Decision::Now => force_keyframe_on(encoder),
        keyframe::Decision::AlreadyScheduled => {}
        keyframe::Decision::After(delay) => {
            let encoder = encoder.downgrade();
            let gate = Arc::downgrade(gate);
            std::thread::spawn(move || {
                std::thread::sleep(delay);
                if let (Some(enc), Some(gate)) = (encoder.upgrade(), gate.upgrade()) {
                    gate.lock().unwrap_or_else(|e| e.into_inner()).fired(Instant::now());
                    force_keyframe_on(&enc);
                }
            });
        }
    }
}

/// Asks the encoder for a keyframe; the probe of [`refresh_on_keyframe_requests`] makes a
/// still damage capture send the frame it needs.
fn force_keyframe_on(encoder: &gst::Element) {
    let event = gst_video::UpstreamForceKeyUnitEvent::builder().all_headers(true).build();
    if let Some(pad) = encoder.static_pad("src") {
        pad.send_event(event);
    }
}

/// Three frames' worth of bytes at the configured bitrate, and never under 64 KiB.
///
/// Sized in bytes, not time: a damage-driven source sends nothing while the screen is still,
/// and a queue limited in time would read the gap before the next frame as a full queue and
/// drop that frame's packets.
fn viewer_queue_bytes(p: &EncodeParams) -> u32 {
    let per_frame = u64::from(p.bitrate_kbps) * 1000 / 8 / u64::from(p.framerate.max(1));
    (3 * per_frame).clamp(64 * 1024, 16 * 1024 * 1024) as u32
}

/// The viewer id of the bin an element belongs to, if any.
fn viewer_of(obj: &gst::Object) -> Option<u64> {
    let mut cur = Some(obj.clone());
    while let Some(o) = cur {
        if let Some(id) = o.name().strip_prefix(BIN_PREFIX).and_then(|n| n.parse().ok()) {
            return Some(id);
        }
        cur = o.parent();
    }
    None
}

/// Chooses the encoder for `pref` by really running each candidate, logging why.
pub fn select_encoder(
    pref: EncoderPreference,
    params: &EncodeParams,
    gpu: &crate::gpu::GpuFacts,
) -> Result<EncoderChoice, MediaError> {
    let choice = encoder::choose(pref, |kind| {
        encoder::precheck(kind, gpu)?;
        pipeline::probe_encoder(kind, params)
    })?;
    for line in choice.explanation() {
        if line.starts_with("using") {
            tracing::info!("{line}");
        } else if line.contains("falling back") {
            tracing::warn!("{line}");
        } else {
            tracing::info!("{line}");
        }
    }
    Ok(choice)
}

/// Hands the heap's free pages back to the system after a viewer's branch is freed.
///
/// Why: a webrtcbin's many small allocations are made from the arenas of the threads that
/// ran it (libnice, DTLS, SCTP), and glibc keeps freed arena memory mapped until told
/// otherwise, so a desktop that many viewers came to and left would hold their memory as
/// if it had leaked (`make soak` saw about +0.65 MB per viewer session, none of it live).
fn give_back_freed_memory() {
    // SAFETY: malloc_trim has no preconditions; it only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// webrtcbins created and not yet finalized (see `viewer::WEBRTCBINS_ALIVE`).
pub fn webrtcbins_alive() -> usize {
    viewer::WEBRTCBINS_ALIVE.load(Ordering::Relaxed)
}

/// Their ICE agents not yet finalized (see `viewer::ICE_AGENTS_ALIVE`).
pub fn ice_agents_alive() -> usize {
    viewer::ICE_AGENTS_ALIVE.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viewer_queues_hold_about_three_frames_of_bytes() {
        let p = EncodeParams { bitrate_kbps: 8000, framerate: 30, threads: 2, x264: encoder::X264Tuning::for_cores(2) };
        assert_eq!(viewer_queue_bytes(&p), 3 * 33_333);
        let tiny =
            EncodeParams { bitrate_kbps: 500, framerate: 60, threads: 2, x264: encoder::X264Tuning::for_cores(2) };
        assert_eq!(viewer_queue_bytes(&tiny), 64 * 1024);
    }
}

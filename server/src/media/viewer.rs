//! One viewer's branch of the shared pipeline: `track tee → queue → webrtcbin` for each
//! track, in its own bin
//! named `viewer-N` so it can be added and removed while the desktop keeps streaming.

use std::str::FromStr;
use std::sync::mpsc;
use std::time::Duration;

use gst::prelude::*;
use gst_webrtc::{
    WebRTCDataChannel, WebRTCPeerConnectionState, WebRTCRTPTransceiverDirection, WebRTCSDPType,
    WebRTCSessionDescription,
};
use tokio::sync::mpsc::UnboundedSender;

use super::MediaError;
use crate::transport::{InboundHandler, TransportEvent};

/// webrtcbins not yet finalized (GObject weak-ref notify), whether in the pipeline, in a
/// grave or leaked: `make soak` checks it returns to 0 once the room is empty.
pub static WEBRTCBINS_ALIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
/// Their ICE agents not yet finalized: an agent can outlive its webrtcbin when something
/// still holds it (a browser's mDNS candidate being resolved held one per page load until
/// GLib's default main context ran: `main_context`).
pub static ICE_AGENTS_ALIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Counts `object` in `counter` until it is finalized (a GObject weak-reference notify).
fn count_while_alive(object: &impl IsA<gst::glib::Object>, counter: &'static std::sync::atomic::AtomicUsize) {
    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    object.add_weak_ref_notify(move || {
        counter.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    });
}

/// Where webrtcbin may gather ICE candidates.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IceSettings {
    /// Local addresses for host candidates; empty means every interface.
    pub addresses: Vec<std::net::IpAddr>,
    /// UDP port range for media; `None` means any.
    pub ports: Option<(u16, u16)>,
}

/// Name prefix of viewer bins; the bus handler uses it to route errors to one viewer.
pub const BIN_PREFIX: &str = "viewer-";

/// What a track carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    Video,
    Audio,
}

/// One of the desktop's media tracks, as a branch subscribes to it: the encoded access
/// units (or Opus packets) of its rungs, which the branch payloads itself.
#[derive(Clone, Debug)]
pub struct Track {
    /// `video` or `audio`: names the branch's pad for that track, and its stream id.
    pub name: &'static str,
    pub media: Media,
    /// The main encode's access-unit tee.
    pub main: gst::Element,
    /// The low rung's (a lower-bitrate encode of the same picture); audio has one rung.
    pub low: Option<gst::Element>,
    /// The shared payloader's tee, whose caps every offer is made from; `None`: the
    /// track's caps are fixed ([`super::audio::rtp_caps`]).
    pub caps_from: Option<gst::Element>,
}

impl Track {
    fn payloader(&self) -> super::spec::Stage {
        match self.media {
            Media::Video => super::pipeline::payloader_stage(),
            Media::Audio => super::audio::payloader_stage(),
        }
    }

    fn rtp_caps(&self) -> String {
        match self.media {
            Media::Video => super::pipeline::rtp_caps(),
            Media::Audio => super::audio::rtp_caps(),
        }
    }
}

/// Receives the Opus packets of a participant's microphone (on a GStreamer thread).
pub type MicHandler = std::sync::Arc<dyn Fn(gst::Buffer, &gst::Caps) + Send + Sync>;

/// A subscription's link to one track: the tee pad it takes its access units from.
struct TrackLink {
    tee: gst::Element,
    pad: gst::Pad,
}

pub(super) struct ViewerBranch {
    pub bin: gst::Bin,
    webrtc: gst::Element,
    /// Changes when the viewer moves between rungs.
    links: std::sync::Mutex<Vec<TrackLink>>,
    tracks: Vec<Track>,
    /// Set when the branch moved to another rung: its access units are dropped until that
    /// rung's next keyframe (the decoder has no reference for its other frames).
    need_key: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// On the low rung now.
    on_low: std::sync::atomic::AtomicBool,
    /// webrtcbin's ULPFEC encoders for this branch (made once the answer is applied).
    fec: std::sync::Arc<std::sync::Mutex<Vec<gst::Element>>>,
    /// Each track's pad into webrtcbin: its rtpsession's congestion feedback comes back up
    /// through it as an upstream event.
    into_webrtc: Vec<gst::Pad>,
    /// Kept alive for as long as the viewer: dropping it would close the channel. Also
    /// carries server-to-browser messages.
    channel: Option<WebRTCDataChannel>,
    /// The sound's route when the page opened its low-latency `audio` channel.
    audio_route: Option<std::sync::Arc<super::audio_channel::AudioRoute>>,
    /// Closes the SCTP receive path before the branch stops (`sctp_guard`).
    sctp_guard: std::sync::Arc<super::sctp_guard::SctpGuard>,
}

impl ViewerBranch {
    /// The video track's pad into webrtcbin (where a frame's packets leave the server's
    /// queues), for the per-frame timing.
    pub fn video_pad(&self) -> Option<&gst::Pad> {
        self.into_webrtc.first()
    }

    /// Builds the branch (one queue and one send-only transceiver per track), links it
    /// to every track's tee and starts the offer.
    #[allow(clippy::too_many_arguments)] // one call site; a struct would only rename them
    pub fn create(
        id: u64,
        pipeline: &gst::Pipeline,
        tracks: &[Track],
        queue_bytes: u32,
        fec_percent: u32,
        ice: &IceSettings,
        servers: &crate::turn::ViewerIce,
        events: UnboundedSender<TransportEvent>,
        on_input: InboundHandler,
        on_keyframe: super::KeyframeHandler,
        on_mic: Option<MicHandler>,
    ) -> Result<Self, MediaError> {
        let make = |factory: &str| {
            gst::ElementFactory::make(factory).build().map_err(|_| MediaError::MissingElement(factory.to_string()))
        };
        let bin = gst::Bin::with_name(&format!("{BIN_PREFIX}{id}"));
        let webrtc = make("webrtcbin")?;
        count_while_alive(&webrtc, &WEBRTCBINS_ALIVE);
        webrtc.set_property_from_str("bundle-policy", "max-bundle");
        webrtc.set_property("latency", 0u32);
        configure_ice(&webrtc, ice, servers);
        bin.add(&webrtc).map_err(|e| MediaError::Link(e.to_string()))?;

        let mut ghosts = Vec::new();
        let mut into_webrtc = Vec::new();
        let need_key = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut audio_route = None;
        for track in tracks {
            let pay = element_of(&track.payloader())?;
            let rtp_caps =
                gst::Caps::from_str(&track.rtp_caps()).map_err(|e| MediaError::Build(format!("RTP caps: {e}")))?;
            let filter = gst::ElementFactory::make("capsfilter")
                .property("caps", &rtp_caps)
                .build()
                .map_err(|_| MediaError::MissingElement("capsfilter".into()))?;
            let queue = make("queue")?;
            // A few frames of packets at most; older packets leak first when a viewer falls behind.
            match track.media {
                Media::Video => {
                    queue.set_property("max-size-buffers", 0u32);
                    queue.set_property("max-size-bytes", queue_bytes);
                }
                // 200 ms of Opus frames; older ones would be played too late anyway.
                Media::Audio => {
                    queue.set_property("max-size-buffers", 20u32);
                    queue.set_property("max-size-bytes", 0u32);
                }
            }
            queue.set_property("max-size-time", 0u64);
            queue.set_property_from_str("leaky", "downstream");
            // Audio's RTP can be held back while the page's data channel carries the sound
            // (`audio_channel`); sticky events still pass, so the stream resumes cleanly.
            let valve = match track.media {
                Media::Audio => Some(
                    gst::ElementFactory::make("valve")
                        .property_from_str("drop-mode", "forward-sticky-events")
                        .build()
                        .map_err(|_| MediaError::MissingElement("valve".into()))?,
                ),
                Media::Video => None,
            };
            let chain: Vec<&gst::Element> =
                [Some(&pay), Some(&filter), valve.as_ref(), Some(&queue)].into_iter().flatten().collect();
            bin.add_many(chain.iter().copied()).map_err(|e| MediaError::Link(e.to_string()))?;
            gst::Element::link_many(chain.iter().copied())
                .map_err(|e| MediaError::Link(format!("payloader → queue: {e}")))?;
            let sink = webrtc
                .request_pad_simple("sink_%u")
                .ok_or_else(|| MediaError::Link("webrtcbin gave no sink pad".into()))?;
            let queue_src = queue.static_pad("src").ok_or_else(|| MediaError::Link("queue without src pad".into()))?;
            // Its own stream id per track: browsers then play audio as it comes instead of
            // holding video back to lip-sync it with audio's deeper jitter buffer.
            sink.set_property("msid", format!("kelpie-{}", track.name));
            queue_src.link(&sink).map_err(|e| MediaError::Link(format!("queue → webrtcbin: {e:?}")))?;
            let transceiver = sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
            let pay_sink = pay.static_pad("sink").ok_or_else(|| MediaError::Link("payloader without sink".into()))?;
            match track.media {
                Media::Video => {
                    into_webrtc.push(queue_src);
                    transceiver.set_property("direction", WebRTCRTPTransceiverDirection::Sendonly);
                    transceiver.set_property("do-nack", true);
                    if fec_percent > 0 {
                        // Parity packets (ULPFEC in RED) repair a random loss without a round
                        // trip; retransmission (NACK/RTX) repairs what they cannot.
                        transceiver.set_property_from_str("fec-type", "ulp-red");
                        transceiver.set_property("fec-percentage", fec_percent);
                    }
                    if let Some(caps) =
                        track.caps_from.as_ref().and_then(|t| t.static_pad("sink")).and_then(|p| p.current_caps())
                    {
                        transceiver.set_property("codec-preferences", codec_preferences(&caps));
                    }
                    gate_until_keyframe(&pay_sink, need_key.clone());
                    merge_keyframe_requests(&pay_sink, on_keyframe.clone());
                }
                Media::Audio => {
                    // Send and receive: the browser's microphone comes back on the same
                    // m-line once it is turned on, without renegotiating.
                    let direction = if on_mic.is_some() {
                        WebRTCRTPTransceiverDirection::Sendrecv
                    } else {
                        WebRTCRTPTransceiverDirection::Sendonly
                    };
                    transceiver.set_property("direction", direction);
                    transceiver.set_property("codec-preferences", &rtp_caps);
                    if let Some(valve) = valve {
                        audio_route = Some(super::audio_channel::attach(&webrtc, &pay_sink, valve));
                    }
                }
            }
            let ghost = gst::GhostPad::builder_with_target(&pay_sink)
                .map_err(|e| MediaError::Link(e.to_string()))?
                .name(track.name)
                .build();
            bin.add_pad(&ghost).map_err(|e| MediaError::Link(e.to_string()))?;
            ghosts.push(ghost);
        }

        connect_signals(&webrtc, events.clone());
        if let Some(on_mic) = on_mic {
            receive_microphone(&webrtc, &bin, on_mic);
        }
        let fec = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        watch_repair_elements(&bin, fec.clone(), on_keyframe.clone());
        let sctp_guard = super::sctp_guard::SctpGuard::attach(&bin);

        pipeline.add(&bin).map_err(|e| MediaError::Link(e.to_string()))?;
        let mut links: Vec<TrackLink> = Vec::new();
        let undo = |links: &[TrackLink]| {
            for l in links {
                l.tee.release_request_pad(&l.pad);
            }
            let _ = pipeline.remove(&bin);
            let _ = bin.set_state(gst::State::Null);
        };
        if let Err(e) = bin.sync_state_with_parent() {
            undo(&links);
            return Err(MediaError::Link(format!("starting viewer: {e}")));
        }
        for (track, ghost) in tracks.iter().zip(&ghosts) {
            let Some(pad) = track.main.request_pad_simple("src_%u") else {
                undo(&links);
                return Err(MediaError::Link("tee gave no src pad".into()));
            };
            if let Err(e) = pad.link(ghost) {
                track.main.release_request_pad(&pad);
                undo(&links);
                return Err(MediaError::Link(format!("{} track → viewer: {e:?}", track.name)));
            }
            links.push(TrackLink { tee: track.main.clone(), pad });
        }

        let channel = create_input_channel(&webrtc, on_input, events.clone());
        create_offer(&webrtc, events);
        Ok(Self {
            bin,
            webrtc,
            links: std::sync::Mutex::new(links),
            tracks: tracks.to_vec(),
            need_key,
            fec,
            on_low: std::sync::atomic::AtomicBool::new(false),
            into_webrtc,
            channel,
            audio_route,
            sctp_guard,
        })
    }

    /// Sets the parity share of this viewer's video (0: none; FEC was negotiated at
    /// `--fec`, so turning it on needs no renegotiation).
    pub fn set_fec(&self, percent: u32) {
        for e in self.fec.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            e.set_property("percentage", percent);
        }
    }

    pub fn on_low(&self) -> bool {
        self.on_low.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Moves the branch to the low rung or back: each track's link is swapped at a moment
    /// no buffer passes through it, and access units are dropped until the new rung's next
    /// keyframe (which the caller asks for). Blocking for at most 2 s.
    pub fn switch(&self, low: bool) {
        use std::sync::atomic::Ordering;
        if self.on_low() == low {
            return;
        }
        self.on_low.store(low, Ordering::Relaxed);
        self.need_key.store(true, Ordering::SeqCst);
        let mut links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        for (link, track) in links.iter_mut().zip(&self.tracks) {
            let Some(low_tee) = &track.low else { continue };
            let to = if low { low_tee.clone() } else { track.main.clone() };
            let Some(ghost) = link.pad.peer() else { continue };
            let (done_tx, done_rx) = mpsc::channel();
            let from = link.tee.clone();
            link.pad.add_probe(gst::PadProbeType::IDLE, move |pad, _| {
                let _ = pad.unlink(&ghost);
                from.release_request_pad(pad);
                let linked = to.request_pad_simple("src_%u").filter(|p| p.link(&ghost).is_ok());
                let _ = done_tx.send(linked.map(|p| (to.clone(), p)));
                gst::PadProbeReturn::Remove
            });
            match done_rx.recv_timeout(Duration::from_secs(2)) {
                Ok(Some((tee, pad))) => *link = TrackLink { tee, pad },
                Ok(None) => tracing::warn!(viewer = %self.bin.name(), "could not link the viewer to the other rung"),
                Err(_) => {
                    tracing::warn!(viewer = %self.bin.name(), "the rung's tee pad never went idle; viewer not moved")
                }
            }
        }
    }

    /// Hands each transport-wide congestion-control report of this viewer to `on_report`
    /// (on a GStreamer thread). The event goes on upstream, where nothing uses it: dropping
    /// it here makes rtpsession unref it twice (a GStreamer-CRITICAL per report on 1.22).
    pub fn watch_feedback(&self, on_report: impl Fn(&gst::StructureRef) + Send + Sync + 'static) {
        let on_report = std::sync::Arc::new(on_report);
        for pad in &self.into_webrtc {
            let on_report = on_report.clone();
            pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
                let Some(event) = info.event() else { return gst::PadProbeReturn::Ok };
                match event.structure() {
                    Some(s)
                        if event.type_() == gst::EventType::CustomUpstream && s.name() == super::adapt::TWCC_EVENT =>
                    {
                        on_report(s);
                        gst::PadProbeReturn::Ok
                    }
                    _ => gst::PadProbeReturn::Ok,
                }
            });
        }
    }

    pub fn apply_answer(&self, sdp: &str, events: UnboundedSender<TransportEvent>) {
        let msg = match gst_sdp::SDPMessage::parse_buffer(sdp.as_bytes()) {
            Ok(m) => m,
            Err(_) => {
                let _ = events.send(TransportEvent::AnswerRejected("SDP does not parse".into()));
                return;
            }
        };
        let answer = WebRTCSessionDescription::new(WebRTCSDPType::Answer, msg);
        let promise = gst::Promise::with_change_func(move |reply| {
            let event = match reply {
                Ok(Some(s)) if s.has_field("error") => {
                    let why = s
                        .get::<gst::glib::Error>("error")
                        .map(|e| e.to_string())
                        .unwrap_or_else(|_| "rejected by webrtcbin".into());
                    TransportEvent::AnswerRejected(why)
                }
                Ok(_) => TransportEvent::AnswerApplied,
                Err(e) => TransportEvent::AnswerRejected(format!("{e:?}")),
            };
            let _ = events.send(event);
        });
        self.webrtc.emit_by_name::<()>("set-remote-description", &[&answer, &promise]);
    }

    /// Asks webrtcbin for its statistics; `on_stats` runs on a GStreamer thread.
    ///
    /// Only once the peer connection is up: before, there is nothing to read (no RTCP
    /// yet), and GStreamer 1.22.0's `get-stats` during negotiation leaves memory behind.
    /// `make soak`, 500 sessions: the heap in use grew 21.5 MB with every viewer asked
    /// each second, 0.4 MB (plus one 6.6 MB mapping) with this; a connected viewer asked
    /// for 290 s held 0.2 MB more (docs/reliability.md, 2026-12-07).
    pub fn request_stats(&self, on_stats: impl FnOnce(&gst::StructureRef) + Send + 'static) {
        let state = self.webrtc.property::<WebRTCPeerConnectionState>("connection-state");
        if state != WebRTCPeerConnectionState::Connected {
            return;
        }
        let promise = gst::Promise::with_change_func(move |reply| {
            if let Ok(Some(s)) = reply {
                on_stats(s);
            }
        });
        self.webrtc.emit_by_name::<()>("get-stats", &[&None::<gst::Pad>, &promise]);
    }

    /// Sends one text message on the data channel; false when it is not open (yet) or
    /// its send buffer is over `max_buffered` bytes (a viewer that stopped reading).
    pub fn send_text(&self, text: &str, max_buffered: u64) -> bool {
        let Some(ch) = &self.channel else { return false };
        if ch.ready_state() != gst_webrtc::WebRTCDataChannelState::Open || ch.buffered_amount() > max_buffered {
            return false;
        }
        match ch.send_string_full(Some(text)) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(viewer = %self.bin.name(), "data channel send failed: {e}");
                false
            }
        }
    }

    pub fn data_buffered(&self) -> Option<u64> {
        let ch = self.channel.as_ref()?;
        (ch.ready_state() == gst_webrtc::WebRTCDataChannelState::Open).then(|| ch.buffered_amount())
    }

    pub fn add_ice(&self, sdp_mline_index: u32, candidate: &str) {
        self.webrtc.emit_by_name::<()>("add-ice-candidate", &[&sdp_mline_index, &candidate]);
    }

    /// Unlinks from every track's tee at a moment no buffer is passing, then stops the
    /// branch and takes it out of the pipeline. The caller keeps the stopped branch for a
    /// while before dropping it (see `media::grave`). Blocking: call from a
    /// blocking-friendly thread.
    pub fn stop(&self, pipeline: &gst::Pipeline) {
        // First, so that GStreamer's sctpdec cannot abort the process on the browser's
        // last packets while its association closes.
        self.sctp_guard.close();
        let links = self.links.lock().unwrap_or_else(|e| e.into_inner());
        for link in links.iter() {
            let (done_tx, done_rx) = mpsc::channel();
            let tee = link.tee.clone();
            link.pad.add_probe(gst::PadProbeType::IDLE, move |pad, _| {
                if let Some(peer) = pad.peer() {
                    let _ = pad.unlink(&peer);
                }
                tee.release_request_pad(pad);
                let _ = done_tx.send(());
                gst::PadProbeReturn::Remove
            });
            if done_rx.recv_timeout(Duration::from_secs(2)).is_err() {
                tracing::warn!(viewer = %self.bin.name(), "tee pad never went idle; removing the branch anyway");
                if let Some(peer) = link.pad.peer() {
                    let _ = link.pad.unlink(&peer);
                }
            }
        }
        let _ = self.bin.set_state(gst::State::Null);
        let _ = pipeline.remove(&self.bin);
    }
}

impl Drop for ViewerBranch {
    /// Says who else still holds the branch as it is freed: ours and the bin's are the only
    /// references a webrtcbin should have left (`make soak` counts the ones never freed).
    fn drop(&mut self) {
        tracing::debug!(
            viewer = %self.bin.name(),
            bin_refs = self.bin.ref_count(),
            webrtcbin_refs = self.webrtc.ref_count(),
            channel_refs = self.channel.as_ref().map(|c| c.ref_count()),
            sound_packets_on_channel = self.audio_route.as_ref().map(|r| r.sent.load(std::sync::atomic::Ordering::Relaxed)),
            sound_packets_dropped_on_channel = self.audio_route.as_ref().map(|r| r.dropped.load(std::sync::atomic::Ordering::Relaxed)),
            sctp_packets_refused_while_closing = self.sctp_guard.refused.load(std::sync::atomic::Ordering::Relaxed),
            "freeing a viewer branch"
        );
    }
}

/// How old a packet webrtcbin may still retransmit (NACK/RTX). Retransmission is for the
/// quick repair of random loss on a path whose queue adaptation keeps short; a packet
/// asked for later than this would arrive too late to matter, and resending it into a
/// full queue is how a link that just got slower collapses: every retransmission is lost
/// too and asked for again (seen: 15 Mbit/s of retransmissions into a 2 Mbit/s link for
/// seconds after a drop from 20).
pub const RTX_HISTORY_MS: u32 = 200;

/// Bounds the history of each retransmission sender webrtcbin makes for this branch,
/// keeps its FEC encoders (in `fec`) with no parity until the link proves lossy, and
/// watches its RTP session's NACKs: a packet asked for twice was not repaired by the
/// first retransmission (lost again, or older than the history), and the browser would
/// wait about three seconds before asking for a keyframe itself, so one is asked for now.
fn watch_repair_elements(
    bin: &gst::Bin,
    fec: std::sync::Arc<std::sync::Mutex<Vec<gst::Element>>>,
    on_keyframe: super::KeyframeHandler,
) {
    bin.connect_deep_element_added(move |_, _, element| match element.factory().map(|f| f.name()) {
        Some(n) if n == "rtprtxsend" => element.set_property("max-size-time", RTX_HISTORY_MS),
        Some(n) if n == "rtpulpfecenc" => {
            element.set_property("percentage", 0u32);
            fec.lock().unwrap_or_else(|e| e.into_inner()).push(element.clone());
        }
        Some(n) if n == "rtpsession" && element.find_property("internal-session").is_some() => {
            let session = element.property::<gst::glib::Object>("internal-session");
            if gst::glib::subclass::signal::SignalId::lookup("on-feedback-rtcp", session.type_()).is_none() {
                tracing::warn!(
                    "this GStreamer's RTP session has no on-feedback-rtcp signal: repeated NACKs go unnoticed"
                );
                return;
            }
            let nacks = std::sync::Mutex::new(super::nack::Repeats::default());
            let on_keyframe = on_keyframe.clone();
            session.connect("on-feedback-rtcp", false, move |values| {
                let kind = values.get(1).and_then(|v| v.get::<u32>().ok());
                let fmt = values.get(2).and_then(|v| v.get::<u32>().ok());
                let fci = values.get(5).and_then(|v| v.get::<Option<gst::Buffer>>().ok()).flatten();
                if let (Some(super::nack::RTPFB), Some(super::nack::GENERIC_NACK), Some(fci)) = (kind, fmt, fci) {
                    if let Ok(map) = fci.map_readable() {
                        let repeated =
                            nacks.lock().unwrap_or_else(|e| e.into_inner()).nacked(&map, std::time::Instant::now());
                        if repeated {
                            tracing::debug!("a packet was asked for twice: keyframe");
                            on_keyframe();
                        }
                    }
                }
                None
            });
        }
        _ => {}
    });
}

/// Links the browser's microphone stream, when it arrives on the audio m-line, to
/// `on_mic`: depayloaded Opus packets, handed over in an appsink's callback.
fn receive_microphone(webrtc: &gst::Element, bin: &gst::Bin, on_mic: MicHandler) {
    let bin = bin.downgrade();
    webrtc.connect_pad_added(move |_, pad| {
        if pad.direction() != gst::PadDirection::Src {
            return;
        }
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let audio = caps.structure(0).is_some_and(|s| s.get::<&str>("media").ok() == Some("audio"));
        let Some(bin) = bin.upgrade() else { return };
        if !audio {
            tracing::debug!(viewer = %bin.name(), %caps, "a stream from the browser that is not audio: ignored");
            return;
        }
        let linked = (|| -> Result<(), String> {
            let depay = gst::ElementFactory::make("rtpopusdepay").build().map_err(|_| "no rtpopusdepay")?;
            let sink = gst_app::AppSink::builder().sync(false).max_buffers(25).drop(true).build();
            let on_mic = on_mic.clone();
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |s| {
                        let sample = s.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        if let (Some(buffer), Some(caps)) = (sample.buffer_owned(), sample.caps()) {
                            on_mic(buffer, &caps.to_owned());
                        }
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
            bin.add_many([&depay, sink.upcast_ref()]).map_err(|e| e.to_string())?;
            depay.link(&sink).map_err(|e| e.to_string())?;
            depay.sync_state_with_parent().map_err(|e| e.to_string())?;
            sink.sync_state_with_parent().map_err(|e| e.to_string())?;
            let into = depay.static_pad("sink").ok_or("depayloader without sink")?;
            pad.link(&into).map_err(|e| format!("{e:?}"))?;
            Ok(())
        })();
        match linked {
            Ok(()) => tracing::info!(viewer = %bin.name(), "the browser's microphone stream arrived"),
            Err(e) => tracing::warn!(viewer = %bin.name(), "cannot take the browser's microphone stream: {e}"),
        }
    });
}

/// Hands each keyframe request (a browser's PLI or FIR, which webrtcbin turns into an
/// upstream force-key-unit event) to `on_request` instead of the encoder: requests from
/// every viewer are merged there, so a lossy link cannot make the shared encoder send a
/// keyframe per request.
fn merge_keyframe_requests(pad: &gst::Pad, on_request: super::KeyframeHandler) {
    pad.add_probe(gst::PadProbeType::EVENT_UPSTREAM, move |_, info| {
        if info.event().is_some_and(|e| super::is_keyframe_request(e)) {
            on_request();
            // Consumed here. `Drop` would do the same but makes GStreamer 1.22 log a
            // critical (an unref of NULL) for every request through these bindings.
            info.data.take();
            return gst::PadProbeReturn::Handled;
        }
        gst::PadProbeReturn::Ok
    });
}

/// Drops access units while `need_key` is set, until a keyframe (which clears it).
fn gate_until_keyframe(pad: &gst::Pad, need_key: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::Ordering;
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if !need_key.load(Ordering::SeqCst) {
            return gst::PadProbeReturn::Ok;
        }
        match info.buffer() {
            Some(b) if !b.flags().contains(gst::BufferFlags::DELTA_UNIT) => {
                need_key.store(false, Ordering::SeqCst);
                gst::PadProbeReturn::Ok
            }
            _ => {
                info.data.take(); // consumed: see merge_keyframe_requests
                gst::PadProbeReturn::Handled
            }
        }
    });
}

/// A GStreamer element made from its pure description.
fn element_of(stage: &super::spec::Stage) -> Result<gst::Element, MediaError> {
    let super::spec::Stage::Element { factory, name, props } = stage else {
        return Err(MediaError::Build("a caps stage is not an element".into()));
    };
    let mut b = gst::ElementFactory::make(factory);
    if let Some(n) = name {
        b = b.name(*n);
    }
    let e = b.build().map_err(|_| MediaError::MissingElement(factory.to_string()))?;
    for (k, v) in props {
        e.set_property_from_str(k, v);
    }
    Ok(e)
}

/// The stream's RTP caps without the parameter sets: those change with every resize (new
/// SPS), and webrtcbin refuses caps that no longer match its preferences. Browsers get the
/// parameter sets in-band (`config-interval=-1`), not from the SDP.
fn codec_preferences(caps: &gst::Caps) -> gst::Caps {
    let mut caps = caps.clone();
    for s in caps.make_mut().iter_mut() {
        s.remove_field("sprop-parameter-sets");
    }
    caps
}

fn configure_ice(webrtc: &gst::Element, ice: &IceSettings, servers: &crate::turn::ViewerIce) {
    if let Some(stun) = &servers.gst_stun {
        webrtc.set_property("stun-server", stun);
    }
    for turn in &servers.gst_turn {
        if !webrtc.emit_by_name::<bool>("add-turn-server", &[turn]) {
            // The URL carries credentials: never log it.
            tracing::warn!("webrtcbin refused a TURN server URL");
        }
    }
    if servers.relay_only {
        webrtc.set_property_from_str("ice-transport-policy", "relay");
    }
    let agent = webrtc.property::<gst::glib::Object>("ice-agent");
    count_while_alive(&agent, &ICE_AGENTS_ALIVE);
    no_upnp(&agent);
    for ip in &ice.addresses {
        if !agent.emit_by_name::<bool>("add-local-ip-address", &[&ip.to_string()]) {
            tracing::warn!(%ip, "the ICE agent refused this local address");
        }
    }
    if let Some((min, max)) = ice.ports {
        agent.set_property("min-rtp-port", u32::from(min));
        agent.set_property("max-rtp-port", u32::from(max));
    }
}

/// Turns off libnice's UPnP port mapping, which is on by default.
///
/// With it, every viewer's agent searched the host's LAN for an Internet gateway (SSDP
/// multicast) and started a GUPnP context with an HTTP server per interface (the
/// "gupnp-context … Address already in use" warnings under load). A desktop server has
/// no business asking a home router to forward ports: its reachable addresses are its
/// own, `--ice-address`, or a TURN relay. The nice agent sits behind webrtcbin's ICE
/// object (`agent`, GStreamer's libnice binding); another ICE implementation without it is
/// left as it is.
fn no_upnp(ice: &gst::glib::Object) {
    if ice.find_property("agent").is_none() {
        return;
    }
    let nice = ice.property::<gst::glib::Object>("agent");
    if nice.find_property("upnp").is_some() {
        nice.set_property("upnp", false);
    }
}

fn connect_signals(webrtc: &gst::Element, events: UnboundedSender<TransportEvent>) {
    let tx = events.clone();
    webrtc.connect("on-ice-candidate", false, move |values| {
        let mline = values.get(1).and_then(|v| v.get::<u32>().ok());
        let candidate = values.get(2).and_then(|v| v.get::<String>().ok());
        if let (Some(sdp_mline_index), Some(candidate)) = (mline, candidate) {
            let _ = tx.send(TransportEvent::Ice { candidate, sdp_mline_index });
        }
        None
    });
    webrtc.connect_notify(Some("connection-state"), move |w, _| {
        let state = w.property::<WebRTCPeerConnectionState>("connection-state");
        tracing::debug!(viewer = ?w.parent().map(|p| p.name()), ?state, "peer connection state");
        let event = match state {
            WebRTCPeerConnectionState::Connected => TransportEvent::Connected,
            WebRTCPeerConnectionState::Failed => {
                TransportEvent::Failed("WebRTC connection failed (ICE or DTLS)".into())
            }
            _ => return,
        };
        let _ = events.send(event);
    });
}

fn create_input_channel(
    webrtc: &gst::Element,
    on_input: InboundHandler,
    events: UnboundedSender<TransportEvent>,
) -> Option<WebRTCDataChannel> {
    let options = gst::Structure::builder("application/data-channel").field("ordered", true).build();
    let channel = webrtc.emit_by_name::<Option<WebRTCDataChannel>>("create-data-channel", &[&"input", &options]);
    match &channel {
        Some(ch) => {
            ch.connect_on_message_string(move |_, text| {
                if let Some(text) = text {
                    on_input(text);
                }
            });
            ch.connect_on_open(move |_| {
                let _ = events.send(TransportEvent::ChannelOpen);
            });
        }
        None => tracing::warn!("webrtcbin refused to create the input data channel; this viewer cannot send input"),
    }
    channel
}

fn create_offer(webrtc: &gst::Element, events: UnboundedSender<TransportEvent>) {
    let w = webrtc.downgrade();
    let promise = gst::Promise::with_change_func(move |reply| {
        let Some(webrtc) = w.upgrade() else { return };
        let offer = match reply {
            Ok(Some(s)) => s.get::<WebRTCSessionDescription>("offer").ok(),
            _ => None,
        };
        let Some(offer) = offer else {
            let _ = events.send(TransportEvent::Failed("webrtcbin could not create an offer".into()));
            return;
        };
        webrtc.emit_by_name::<()>("set-local-description", &[&offer, &None::<gst::Promise>]);
        match offer.sdp().as_text() {
            Ok(text) => {
                let _ = events.send(TransportEvent::Offer(text));
            }
            Err(e) => {
                let _ = events.send(TransportEvent::Failed(format!("offer SDP: {e}")));
            }
        }
    });
    webrtc.emit_by_name::<()>("create-offer", &[&None::<gst::Structure>, &promise]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_viewers_ice_agent_does_not_use_upnp() {
        gst::init().unwrap();
        let webrtc = gst::ElementFactory::make("webrtcbin").build().unwrap();
        let nice = || webrtc.property::<gst::glib::Object>("ice-agent").property::<gst::glib::Object>("agent");
        assert!(nice().property::<bool>("upnp"), "libnice's default changed: this test no longer shows anything");
        configure_ice(&webrtc, &IceSettings { addresses: vec![], ports: None }, &crate::turn::ViewerIce::default());
        assert!(!nice().property::<bool>("upnp"));
    }
}

//! One viewer's branch of the shared pipeline: `track tee → queue → webrtcbin` for each
//! track, in its own bin
//! named `viewer-N` so it can be added and removed while the desktop keeps streaming.

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

/// One of the desktop's media tracks, as a branch subscribes to it: the RTP fan-out of
/// one encode. (The access units before payloading are teed off in the pipeline too, for
/// transports that do not speak RTP.)
#[derive(Clone, Debug)]
pub struct Track {
    /// `video` (later `audio`): names the branch's queue for that track.
    pub name: &'static str,
    /// The tee after the payloader; each subscription takes one of its src pads.
    pub rtp: gst::Element,
}

/// A subscription's link to one track: the tee pad it takes its packets from.
struct TrackLink {
    tee: gst::Element,
    pad: gst::Pad,
}

pub(super) struct ViewerBranch {
    pub bin: gst::Bin,
    webrtc: gst::Element,
    links: Vec<TrackLink>,
    /// Each track's pad into webrtcbin: its rtpsession's congestion feedback comes back up
    /// through it as an upstream event.
    into_webrtc: Vec<gst::Pad>,
    /// Kept alive for as long as the viewer: dropping it would close the channel. Also
    /// carries server-to-browser messages.
    channel: Option<WebRTCDataChannel>,
}

impl ViewerBranch {
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
    ) -> Result<Self, MediaError> {
        let make = |factory: &str| {
            gst::ElementFactory::make(factory).build().map_err(|_| MediaError::MissingElement(factory.to_string()))
        };
        let bin = gst::Bin::with_name(&format!("{BIN_PREFIX}{id}"));
        let webrtc = make("webrtcbin")?;
        webrtc.set_property_from_str("bundle-policy", "max-bundle");
        webrtc.set_property("latency", 0u32);
        configure_ice(&webrtc, ice, servers);
        bin.add(&webrtc).map_err(|e| MediaError::Link(e.to_string()))?;

        let mut ghosts = Vec::new();
        let mut into_webrtc = Vec::new();
        for track in tracks {
            let queue = make("queue")?;
            // A few frames of packets at most; older packets leak first when a viewer falls behind.
            queue.set_property("max-size-buffers", 0u32);
            queue.set_property("max-size-bytes", queue_bytes);
            queue.set_property("max-size-time", 0u64);
            queue.set_property_from_str("leaky", "downstream");
            bin.add(&queue).map_err(|e| MediaError::Link(e.to_string()))?;
            let sink = webrtc
                .request_pad_simple("sink_%u")
                .ok_or_else(|| MediaError::Link("webrtcbin gave no sink pad".into()))?;
            let queue_src = queue.static_pad("src").ok_or_else(|| MediaError::Link("queue without src pad".into()))?;
            queue_src.link(&sink).map_err(|e| MediaError::Link(format!("queue → webrtcbin: {e:?}")))?;
            into_webrtc.push(queue_src);
            let transceiver = sink.property::<gst_webrtc::WebRTCRTPTransceiver>("transceiver");
            transceiver.set_property("direction", WebRTCRTPTransceiverDirection::Sendonly);
            transceiver.set_property("do-nack", true);
            if fec_percent > 0 {
                // Parity packets (ULPFEC in RED) repair a random loss without a round trip;
                // retransmission (NACK/RTX) repairs what they cannot.
                transceiver.set_property_from_str("fec-type", "ulp-red");
                transceiver.set_property("fec-percentage", fec_percent);
            }
            if let Some(caps) = track.rtp.static_pad("sink").and_then(|p| p.current_caps()) {
                transceiver.set_property("codec-preferences", codec_preferences(&caps));
            }
            let queue_sink = queue.static_pad("sink").ok_or_else(|| MediaError::Link("queue without sink".into()))?;
            let ghost = gst::GhostPad::builder_with_target(&queue_sink)
                .map_err(|e| MediaError::Link(e.to_string()))?
                .name(track.name)
                .build();
            bin.add_pad(&ghost).map_err(|e| MediaError::Link(e.to_string()))?;
            ghosts.push(ghost);
        }

        connect_signals(&webrtc, events.clone());

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
            let Some(pad) = track.rtp.request_pad_simple("src_%u") else {
                undo(&links);
                return Err(MediaError::Link("tee gave no src pad".into()));
            };
            if let Err(e) = pad.link(ghost) {
                track.rtp.release_request_pad(&pad);
                undo(&links);
                return Err(MediaError::Link(format!("{} track → viewer: {e:?}", track.name)));
            }
            links.push(TrackLink { tee: track.rtp.clone(), pad });
        }

        let channel = create_input_channel(&webrtc, on_input, events.clone());
        create_offer(&webrtc, events);
        Ok(Self { bin, webrtc, links, into_webrtc, channel })
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
    pub fn request_stats(&self, on_stats: impl FnOnce(&gst::StructureRef) + Send + 'static) {
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
        for link in &self.links {
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

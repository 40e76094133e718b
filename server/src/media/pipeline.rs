//! The desktop pipeline: capture → convert → encode → access-unit tee → payload → RTP
//! tee, as a pure [`Chain`],
//! plus the probe that checks an encoder chain really runs.

use std::time::Duration;

use gst::prelude::*;

use super::encoder::{encoder_stages, encoder_stages_from, EncodeParams, EncoderKind, RawFormat};
use super::spec::{Chain, Stage};

/// Where frames come from (`--capture`).
#[derive(Copy, Clone, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CaptureSource {
    /// Kelpie's damage-aware XShm source (kelpiexsrc), output in I420.
    Damage,
    /// GStreamer's ximagesrc plus videoconvert.
    Ximagesrc,
}

/// RTP payload type of the H.264 stream. The server makes the offer, so ours is used.
pub const H264_PAYLOAD_TYPE: u32 = 96;

/// RTP packets this size fit the smallest common path MTU (1280 for IPv6) with room for
/// SRTP, TURN and TCP framing overhead.
const RTP_MTU: u32 = 1200;

/// Capture stages for an X display. The queue lets capture and encoding run on separate
/// threads (one core each on small machines) while holding at most one frame.
pub fn capture_stages(source: CaptureSource, display: &str, framerate: u32) -> Vec<Stage> {
    let (src, caps) = match source {
        CaptureSource::Damage => (
            Stage::element("kelpiexsrc").named("capture").prop("display", display),
            format!("video/x-raw,format=I420,framerate={framerate}/1"),
        ),
        CaptureSource::Ximagesrc => (
            Stage::element("ximagesrc")
                .named("capture")
                .prop("display-name", display)
                .prop("use-damage", false)
                .prop("show-pointer", false),
            format!("video/x-raw,framerate={framerate}/1"),
        ),
    };
    vec![
        src,
        Stage::caps(caps),
        Stage::element("tee").named(RAW_TEE).prop("allow-not-linked", true),
        one_frame_queue("capture-queue"),
    ]
}

/// The captured frames' tee: the main encode and the low rung both take them.
pub const RAW_TEE: &str = "raw";
/// The low rung's encoded access units: viewers whose link cannot carry the main encode
/// are moved here (same picture size, so pointers map the same; a lower bitrate).
pub const LOW_AU_TEE: &str = "video-au-low";
/// Its valve: closed (dropping everything, encoding nothing) while nobody watches it.
pub const LOW_VALVE: &str = "low-valve";
/// Its encoder's element name.
pub const LOW_ENCODER: &str = "low-encoder";

/// The low rung, from the raw tee: a valve that keeps it idle until a viewer needs it,
/// a one-frame queue (it runs on its own thread and never holds the capture back), a
/// second encoder of the same kind, and its access-unit tee.
pub fn low_rung_stages(kind: EncoderKind, p: &EncodeParams, input: RawFormat) -> Vec<Stage> {
    let mut stages = vec![Stage::element("valve").named(LOW_VALVE).prop("drop", true), one_frame_queue("low-queue")];
    stages.extend(encoder_stages_from(kind, p, input).into_iter().map(|s| s.renamed("encoder", LOW_ENCODER)));
    stages.push(Stage::element("tee").named(LOW_AU_TEE).prop("allow-not-linked", true));
    stages
}

/// The raw format each capture source produces.
pub fn raw_format(source: CaptureSource) -> RawFormat {
    match source {
        CaptureSource::Damage => RawFormat::I420,
        CaptureSource::Ximagesrc => RawFormat::Bgrx,
    }
}

/// A queue that holds at most one buffer and drops the older one when full, so a slow
/// stage makes frames skip instead of latency grow.
fn one_frame_queue(name: &'static str) -> Stage {
    Stage::element("queue")
        .named(name)
        .prop("max-size-buffers", 1)
        .prop("max-size-bytes", 0)
        .prop("max-size-time", 0)
        .prop("leaky", "downstream")
}

/// The transport-wide sequence number header extension (draft-holmer-rmcat): browsers
/// report each packet's arrival time for it, which is what the bandwidth estimate reads.
pub const TWCC_URI: &str = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01";
/// Its RTP header extension id in our offer.
pub const TWCC_EXT_ID: u32 = 1;

/// RTP caps fed to every viewer. The rtcp-fb fields make webrtcbin offer NACK, PLI and FIR
/// so browsers can ask for retransmits and keyframes, and transport-cc with the extmap
/// (which the payloader adds to every packet, `auto-header-extension`) so that they send
/// congestion-control feedback.
pub fn rtp_caps() -> String {
    format!(
        "application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,payload={H264_PAYLOAD_TYPE},\
rtcp-fb-nack=(boolean)true,rtcp-fb-nack-pli=(boolean)true,rtcp-fb-ccm-fir=(boolean)true,\
rtcp-fb-transport-cc=(boolean)true,extmap-{TWCC_EXT_ID}=(string)\"{TWCC_URI}\""
    )
}

/// The video track's tee of encoded access units (H.264 byte-stream, before RTP): the
/// point where a transport that does not speak RTP (a WebSocket) subscribes.
pub const VIDEO_AU_TEE: &str = "video-au";
/// The video track's tee of RTP packets: WebRTC subscriptions take a pad of it each.
pub const VIDEO_RTP_TEE: &str = "video-rtp";

/// The video track after the encoder: the access-unit tee, then payloader and RTP fan-out.
/// Both tees push in the encoder's thread (no queue): a tee with idle pads costs nothing.
pub fn rtp_stages() -> Vec<Stage> {
    vec![
        Stage::element("tee").named(VIDEO_AU_TEE).prop("allow-not-linked", true),
        payloader_stage().named("payloader"),
        Stage::caps(rtp_caps()),
        Stage::element("tee").named(VIDEO_RTP_TEE).prop("allow-not-linked", true),
    ]
}

/// The H.264 payloader: parameter sets with every keyframe (a viewer may join or switch
/// rungs at any keyframe), one packet per NAL unit as soon as it is complete.
/// The shared one after the access-unit tee only settles the RTP caps that every viewer's
/// offer is made from; each WebRTC viewer payloads its own copy of the rung it is on, so
/// that moving it between rungs keeps its SSRC and sequence numbers.
pub fn payloader_stage() -> Stage {
    Stage::element("rtph264pay")
        .prop("config-interval", -1)
        .prop("aggregate-mode", "zero-latency")
        .prop("mtu", RTP_MTU)
        .prop("pt", H264_PAYLOAD_TYPE)
}

/// The whole shared pipeline for one desktop.
pub fn desktop_chain(source: CaptureSource, display: &str, kind: EncoderKind, p: &EncodeParams) -> Chain {
    Chain(capture_stages(source, display, p.framerate))
        .then(encoder_stages_from(kind, p, raw_format(source)))
        .then(rtp_stages())
}

/// The launch line of the desktop's pipeline: the main chain and, branching off the raw
/// tee, the low rung.
pub fn desktop_launch_line(source: CaptureSource, display: &str, kind: EncoderKind, p: &EncodeParams) -> String {
    let low = Chain(low_rung_stages(kind, p, raw_format(source)));
    format!("{} {RAW_TEE}. ! {}", desktop_chain(source, display, kind, p).launch_line(), low.launch_line())
}

/// Runs `kind`'s chain on a few test frames: an element that exists but cannot open an
/// encode session (no GPU, wrong driver) fails here rather than in front of a viewer.
pub fn probe_encoder(kind: EncoderKind, p: &EncodeParams) -> Result<(), String> {
    let chain = Chain(encoder_stages(kind, p));
    for factory in chain.factories() {
        if gst::ElementFactory::find(factory).is_none() {
            return Err(format!("GStreamer element {factory} is not available"));
        }
    }
    let line = format!(
        "videotestsrc num-buffers=3 ! video/x-raw,format=BGRx,width=320,height=240,framerate={}/1 ! {} ! fakesink",
        p.framerate,
        chain.launch_line()
    );
    let pipeline = gst::parse::launch(&line).map_err(|e| format!("cannot build test pipeline: {e}"))?;
    let result = run_to_eos(&pipeline, Duration::from_secs(10));
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn run_to_eos(pipeline: &gst::Element, timeout: Duration) -> Result<(), String> {
    let bus = pipeline.bus().ok_or("pipeline has no bus")?;
    pipeline.set_state(gst::State::Playing).map_err(|_| "could not start the test pipeline".to_string())?;
    // One wait for the first EOS or error: the test source sends a handful of frames.
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_nseconds(timeout.as_nanos() as u64),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    if let Some(msg) = msg {
        return match msg.view() {
            gst::MessageView::Error(e) => Err(format!("{} ({})", e.error(), e.debug().unwrap_or_default())),
            _ => Ok(()),
        };
    }
    Err(format!("test encode did not finish within {timeout:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::encoder::X264Tuning;

    const P: EncodeParams =
        EncodeParams { bitrate_kbps: 8000, framerate: 30, threads: 2, x264: X264Tuning::for_cores(2) };

    #[test]
    fn damage_capture_feeds_x264_directly() {
        let c = desktop_chain(CaptureSource::Damage, ":5", EncoderKind::X264, &P);
        assert_eq!(c.factories(), vec!["kelpiexsrc", "tee", "queue", "x264enc", "tee", "rtph264pay", "tee"]);
        assert!(c
            .launch_line()
            .starts_with("kelpiexsrc name=capture display=:5 ! video/x-raw,format=I420,framerate=30/1 ! tee name=raw"));
    }

    #[test]
    fn desktop_chain_captures_encodes_payloads_and_fans_out() {
        let c = desktop_chain(CaptureSource::Ximagesrc, ":5", EncoderKind::X264, &P);
        assert_eq!(
            c.factories(),
            vec!["ximagesrc", "tee", "queue", "videoconvert", "x264enc", "tee", "rtph264pay", "tee"]
        );
        let line = c.launch_line();
        assert!(line.starts_with("ximagesrc name=capture display-name=:5 use-damage=false show-pointer=false ! video/x-raw,framerate=30/1 ! tee name=raw allow-not-linked=true ! queue name=capture-queue max-size-buffers=1"), "{line}");
        assert!(
            line.contains("rtph264pay name=payloader config-interval=-1 aggregate-mode=zero-latency mtu=1200 pt=96"),
            "{line}"
        );
        assert!(line.ends_with("tee name=video-rtp allow-not-linked=true"), "{line}");
    }

    #[test]
    fn the_low_rung_branches_off_the_raw_tee_behind_a_closed_valve() {
        let line = desktop_launch_line(CaptureSource::Damage, ":5", EncoderKind::X264, &P);
        let low = line.split(" raw. ! ").nth(1).expect("a second branch");
        assert!(low.starts_with("valve name=low-valve drop=true ! queue name=low-queue max-size-buffers=1"), "{low}");
        assert!(low.contains("x264enc name=low-encoder"), "{low}");
        assert!(low.ends_with("tee name=video-au-low allow-not-linked=true"), "{low}");
        assert_eq!(line.matches("name=encoder ").count(), 1, "one main encoder");
        gst::init().unwrap();
        let _ = kelpiegst::plugin_register_static();
        gst::parse::launch(&line).expect("the launch line parses");
    }

    #[test]
    fn every_queue_holds_at_most_one_frame() {
        for kind in super::super::encoder::candidates(super::super::encoder::EncoderPreference::Auto) {
            for s in desktop_chain(CaptureSource::Damage, ":0", kind, &P).0 {
                if s.factory() == Some("queue") {
                    assert_eq!(s.get("max-size-buffers"), Some("1"));
                    assert_eq!(s.get("leaky"), Some("downstream"));
                }
            }
        }
    }

    #[test]
    fn rtp_caps_ask_for_keyframe_and_congestion_feedback() {
        assert!(rtp_caps().contains("rtcp-fb-nack-pli=(boolean)true"));
        assert!(rtp_caps().contains("rtcp-fb-transport-cc=(boolean)true"));
        assert!(rtp_caps().contains(&format!("extmap-1=(string)\"{TWCC_URI}\"")));
        assert!(rtp_caps().contains("payload=96"));
    }

    #[test]
    fn x264_probe_runs_and_missing_element_is_reported() {
        gst::init().unwrap();
        assert_eq!(probe_encoder(EncoderKind::X264, &P), Ok(()));
        // No GPU on CI machines: nvcodec registers no elements, so this must fail cleanly.
        if gst::ElementFactory::find("nvh264enc").is_none() {
            let err = probe_encoder(EncoderKind::NvH264, &P).unwrap_err();
            assert!(err.contains("is not available"), "{err}");
        }
    }
}

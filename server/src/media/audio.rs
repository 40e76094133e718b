//! The audio track, as pure descriptions: the capture pipeline (the default sink's monitor
//! → Opus, encoded once for every participant), the track's entry into the shared
//! pipeline, each WebRTC subscription's payloader and RTP caps, and the microphone's
//! playback pipeline. The supervisors that run them are [`super::audio_out`] and
//! [`super::mic`].
//!
//! The capture runs in a pipeline of its own, not in the desktop's: PulseAudio can go
//! away and come back (a crash, a restart, a user's `pulseaudio -k`) and its source must
//! be torn down and rebuilt then, without stopping video. It shares the desktop
//! pipeline's clock and base time, so its timestamps are running times of the desktop
//! pipeline too: the RTP timestamps of audio and video come from one clock.

use super::spec::{Chain, Stage};

/// RTP payload type of the Opus stream (the one browsers also use for it).
pub const OPUS_PAYLOAD_TYPE: u32 = 111;
/// Opus frame length. 10 ms, not the usual 20: half the packetisation delay, for about
/// 4 kbit/s more headers; Selkies' legacy pipeline uses 10 too.
pub const FRAME_MS: u32 = 10;
/// The loss Opus plans its in-band FEC for: enough that a single lost packet is repaired
/// from the next one (the encoder only adds FEC when told to expect loss).
const EXPECTED_LOSS_PERCENT: u32 = 5;
/// Default Opus bitrate: transparent stereo for music and video soundtracks.
pub const DEFAULT_BITRATE_KBPS: u32 = 128;

/// The appsrc in the desktop pipeline that the capture pushes Opus packets into.
pub const AUDIO_SRC: &str = "audio-src";
/// The audio track's tee of Opus packets: WebRTC subscriptions payload them, socket
/// viewers get them as frames.
pub const AUDIO_AU_TEE: &str = "audio-au";

/// How the audio track is made (`--audio`, `--audio-bitrate`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioSettings {
    /// Opus bitrate in kbit/s.
    pub bitrate_kbps: u32,
    /// The PulseAudio server (`unix:/path`); `None`: libpulse's own choice (`PULSE_SERVER`,
    /// else the user's default socket).
    pub server: Option<String>,
}

/// `server=…` for a pulse element, or nothing for libpulse's default.
fn with_server(stage: Stage, server: Option<&str>) -> Stage {
    match server {
        Some(s) => stage.prop("server", s),
        None => stage,
    }
}

/// The capture pipeline: the default sink's monitor (`@DEFAULT_MONITOR@`, resolved by
/// PulseAudio when the stream connects), 48 kHz stereo, Opus in its low-delay mode, into
/// an appsink named `out` that never blocks the capture.
///
/// `pulsesrc` does not provide the clock (the desktop pipeline's is used); its 10 ms
/// periods match the Opus frames, and its 40 ms buffer rides out a busy core.
pub fn capture_chain(s: &AudioSettings) -> Chain {
    let src = Stage::element("pulsesrc")
        .named("pulse")
        .prop("device", "@DEFAULT_MONITOR@")
        .prop("provide-clock", false)
        .prop("buffer-time", 40_000)
        .prop("latency-time", FRAME_MS * 1000)
        .prop("client-name", "Kelpie");
    Chain(vec![
        with_server(src, s.server.as_deref()),
        Stage::element("audioconvert"),
        Stage::element("audioresample"),
        Stage::caps(format!("audio/x-raw,rate={},channels=2", crate::sound::RATE)),
        Stage::element("opusenc")
            .named("opus")
            .prop("audio-type", "restricted-lowdelay")
            .prop("frame-size", FRAME_MS)
            .prop("bitrate", s.bitrate_kbps * 1000)
            .prop("bitrate-type", "cbr")
            .prop("inband-fec", true)
            .prop("packet-loss-percentage", EXPECTED_LOSS_PERCENT),
        Stage::element("appsink").named("out").prop("sync", false).prop("max-buffers", 50).prop("drop", true),
    ])
}

/// The audio track's entry into the desktop pipeline: a live appsrc that never blocks
/// the capture (it drops the oldest packets if nothing takes them) and the track's tee.
pub fn track_stages() -> Vec<Stage> {
    vec![
        Stage::element("appsrc")
            .named(AUDIO_SRC)
            .prop("is-live", true)
            .prop("format", "time")
            .prop("do-timestamp", false)
            .prop("block", false)
            .prop("max-buffers", 50)
            .prop("leaky-type", "downstream"),
        Stage::element("tee").named(AUDIO_AU_TEE).prop("allow-not-linked", true),
    ]
}

/// Each WebRTC subscription's Opus payloader: one packet per Opus frame.
pub fn payloader_stage() -> Stage {
    Stage::element("rtpopuspay").prop("pt", OPUS_PAYLOAD_TYPE).prop("mtu", 1200)
}

/// The audio track's RTP caps, also its offer's codec preferences. They are fixed (not
/// read from a running stream, as video's are), so the audio m-line is offered even
/// while PulseAudio is away, and sound starts when it comes back without renegotiating.
/// `stereo`/`sprop-stereo` make browsers decode both channels; `useinbandfec` lets them
/// repair a lost packet from the next. No transport-wide sequence numbers: the bandwidth
/// estimate reads video's, and audio's 128 kbit/s is within its margin.
pub fn rtp_caps() -> String {
    format!(
        "application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,payload={OPUS_PAYLOAD_TYPE},\
encoding-params=(string)2,minptime=(string){FRAME_MS},useinbandfec=(string)1,stereo=(string)1,\
sprop-stereo=(string)1"
    )
}

/// The microphone's playback: Opus packets from the participant in control (an appsrc
/// named `in`, without timestamps: stamped on arrival, their jitter read as gaps that the
/// decoder filled with concealment, an audible warble), decoded, into the
/// sink whose monitor is the desktop's microphone. `sync=false`: played as they come,
/// the shortest path; PulseAudio's 100 ms buffer absorbs the jitter of packets that come
/// over a busy socket or a busy core (a 60 ms one underran audibly on a loaded machine).
pub fn mic_chain(server: Option<&str>) -> Chain {
    let sink = Stage::element("pulsesink")
        .named("pulse")
        .prop("device", crate::sound::MIC_SINK)
        .prop("sync", false)
        .prop("buffer-time", 100_000)
        .prop("latency-time", 10_000)
        .prop("client-name", "Kelpie-microphone");
    Chain(vec![
        Stage::element("appsrc")
            .named("in")
            .prop("is-live", true)
            .prop("format", "time")
            .prop("do-timestamp", false)
            .prop("block", false)
            .prop("max-buffers", 25)
            .prop("leaky-type", "downstream"),
        Stage::element("opusdec").prop("plc", true).prop("use-inband-fec", true),
        Stage::element("audioconvert"),
        Stage::element("audioresample"),
        with_server(sink, server),
    ])
}

/// What the audio track is doing, for `/health` and the log.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase", tag = "state", content = "detail")]
pub enum AudioState {
    /// `--audio off`.
    Off,
    /// Connecting to PulseAudio.
    Starting,
    /// Opus packets are flowing.
    Playing,
    /// Not capturing, and why; retried until it works (unless nothing could fix it).
    Unavailable(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_capture_reads_the_default_monitor_and_encodes_low_delay_opus() {
        let s = AudioSettings { bitrate_kbps: 128, server: Some("unix:/run/k/native".into()) };
        let c = capture_chain(&s);
        assert_eq!(c.factories(), ["pulsesrc", "audioconvert", "audioresample", "opusenc", "appsink"]);
        let line = c.launch_line();
        assert!(line.starts_with("pulsesrc name=pulse device=@DEFAULT_MONITOR@ provide-clock=false"), "{line}");
        assert!(line.contains("server=unix:/run/k/native"), "{line}");
        assert!(line.contains("audio/x-raw,rate=48000,channels=2"), "{line}");
        let opus = c.find("opusenc").unwrap();
        assert_eq!(opus.get("audio-type"), Some("restricted-lowdelay"));
        assert_eq!(opus.get("frame-size"), Some("10"));
        assert_eq!(opus.get("bitrate"), Some("128000"));
        assert_eq!(opus.get("inband-fec"), Some("true"));
        assert_ne!(opus.get("packet-loss-percentage"), Some("0"), "FEC needs expected loss");
        let default = capture_chain(&AudioSettings { bitrate_kbps: 64, server: None });
        assert!(!default.launch_line().contains("server="), "libpulse's own choice");
    }

    #[test]
    fn the_chains_parse_with_this_gstreamer() {
        gst::init().unwrap();
        let s = AudioSettings { bitrate_kbps: 128, server: None };
        gst::parse::launch(&capture_chain(&s).launch_line()).expect("capture parses");
        gst::parse::launch(&mic_chain(None).launch_line()).expect("mic parses");
        let track = Chain(track_stages()).then([Stage::element("fakesink")]);
        gst::parse::launch(&track.launch_line()).expect("track parses");
        gst::Caps::from_str(&rtp_caps()).expect("caps parse");
    }

    #[test]
    fn rtp_caps_offer_stereo_opus_with_fec() {
        let c = rtp_caps();
        for want in
            ["encoding-name=OPUS", "payload=111", "useinbandfec=(string)1", "stereo=(string)1", "minptime=(string)10"]
        {
            assert!(c.contains(want), "{want} in {c}");
        }
    }

    #[test]
    fn the_mic_plays_into_kelpies_mic_sink() {
        let c = mic_chain(Some("unix:/x/native"));
        assert_eq!(c.factories(), ["appsrc", "opusdec", "audioconvert", "audioresample", "pulsesink"]);
        let sink = c.find("pulsesink").unwrap();
        assert_eq!(sink.get("device"), Some("kelpie_mic_in"));
        assert_eq!(sink.get("server"), Some("unix:/x/native"));
        assert_eq!(c.find("opusdec").unwrap().get("plc"), Some("true"));
    }

    #[test]
    fn health_shows_state_and_detail() {
        let v = serde_json::to_value(AudioState::Unavailable("no PulseAudio".into())).unwrap();
        assert_eq!(v, serde_json::json!({"state": "unavailable", "detail": "no PulseAudio"}));
        assert_eq!(serde_json::to_value(AudioState::Playing).unwrap(), serde_json::json!({"state": "playing"}));
    }

    use std::str::FromStr as _;
}

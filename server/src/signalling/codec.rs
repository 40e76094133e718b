//! Browsers that cannot decode the H.264 video the way the server first offers it.
//!
//! Kelpie streams H.264 only (one encode shared by everyone). Most browsers decode it
//! over WebRTC, but a Firefox without its OpenH264 plugin (downloaded on first run, so
//! missing wherever that download is blocked) offers VP8, VP9 and AV1 only. Such a page
//! either moves to the WebSocket transport, which decodes with WebCodecs, or, on an
//! insecure page where WebCodecs is withheld too, cannot show the desktop at all. The
//! page reports which (`{"type":"codec"}`); an older page just answers with the video
//! rejected. Either way the admin should see it once in the log and as a count in
//! `/metrics`, not as a loop of failed answers.

use std::sync::atomic::{AtomicU64, Ordering};

/// What became of a page whose browser lacks WebRTC H.264.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum CodecOutcome {
    /// Its media goes over the WebSocket transport (WebCodecs decodes it there).
    Websocket,
    /// Nothing on the page can decode H.264: it tells the user what to do and stops.
    NoDecoder,
    /// Its WebRTC answer rejected the video (a page that did not check first).
    AnswerRejected,
}

impl CodecOutcome {
    pub const ALL: [CodecOutcome; 3] = [Self::Websocket, Self::NoDecoder, Self::AnswerRejected];

    /// The `/metrics` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Websocket => "websocket",
            Self::NoDecoder => "no_decoder",
            Self::AnswerRejected => "answer_rejected",
        }
    }

    /// The log line's text: what happened and what an admin could change.
    pub fn describe(self) -> &'static str {
        match self {
            Self::Websocket => {
                "this browser's WebRTC cannot decode H.264 (Firefox without its OpenH264 plugin?): its media goes \
                 over the WebSocket transport"
            }
            Self::NoDecoder => {
                "this browser can decode H.264 neither over WebRTC nor with WebCodecs (an insecure http:// page, or \
                 an old browser): its page tells the user to use HTTPS or enable OpenH264, and stops"
            }
            Self::AnswerRejected => {
                "this browser's WebRTC answer rejected the H.264 video (Firefox without OpenH264, on a page that did \
                 not check first)"
            }
        }
    }
}

/// Process-wide counts of [`CodecOutcome`]s, for `/metrics`.
#[derive(Debug, Default)]
pub struct CodecCounts([AtomicU64; 3]);

impl CodecCounts {
    pub fn record(&self, outcome: CodecOutcome) {
        self.0[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every outcome with its count (zeros too, so the series exist from the start).
    pub fn snapshot(&self) -> Vec<(CodecOutcome, u64)> {
        CodecOutcome::ALL.iter().map(|&o| (o, self.0[o as usize].load(Ordering::Relaxed))).collect()
    }
}

/// Whether an SDP answer rejects its video section (port 0: "m=video 0 ...").
pub fn answer_rejects_video(sdp: &str) -> bool {
    sdp.lines().any(|l| l.strip_prefix("m=video ").is_some_and(|rest| rest.split(' ').next() == Some("0")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rejected_video_section_is_port_zero_only() {
        let firefox = "v=0\r\nm=video 0 UDP/TLS/RTP/SAVPF 0\r\nc=IN IP4 0.0.0.0\r\na=inactive\r\n";
        assert!(answer_rejects_video(firefox));
        assert!(!answer_rejects_video("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"));
        assert!(!answer_rejects_video("v=0\r\nm=video 09 UDP/TLS/RTP/SAVPF 96\r\n"));
        // Audio rejected (no microphone, say) is not the video.
        assert!(!answer_rejects_video("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nm=audio 0 UDP/TLS/RTP/SAVPF 0\r\n"));
    }

    #[test]
    fn counts_are_kept_per_outcome_and_all_listed() {
        let c = CodecCounts::default();
        c.record(CodecOutcome::Websocket);
        c.record(CodecOutcome::Websocket);
        c.record(CodecOutcome::NoDecoder);
        let snap = c.snapshot();
        assert_eq!(
            snap,
            vec![(CodecOutcome::Websocket, 2), (CodecOutcome::NoDecoder, 1), (CodecOutcome::AnswerRejected, 0)]
        );
        let labels: Vec<_> = snap.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(labels, ["websocket", "no_decoder", "answer_rejected"]);
    }
}

//! The desktop's sound over a data channel: the page's low-latency route for WebRTC.
//!
//! Over RTP, the browser's own jitter buffer and playout buffer hold the sound 60–100 ms
//! on top of what the server adds (measured in docs/benchmarks.md), and no page script can
//! shorten them. A page that can decode Opus itself (WebCodecs `AudioDecoder` and an
//! `AudioWorklet`, the WebSocket transport's player) may instead open a data channel
//! labelled `audio`, unordered and without retransmissions, on its peer connection. From
//! then on, while that channel is open, each Opus packet of this viewer goes into it as a
//! WebSocket-transport audio frame (`transport::frame::audio`) instead of into the RTP
//! payloader; when it closes, RTP carries the sound again. The page's act of opening the
//! channel is the request: no new signalling, and a page that never opens one (an older
//! page, another browser) gets RTP as before.
//!
//! The microphone is unaffected: it comes back on the audio m-line either way.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gst_webrtc::{WebRTCDataChannel, WebRTCDataChannelState};

/// The label a page opens its sound channel with.
pub const LABEL: &str = "audio";

/// A channel holding more than this unsent is not being read (or its path is far slower
/// than 128 kbit/s): packets are dropped rather than queued, as late sound is useless.
/// About half a second of Opus at the default bitrate.
const MAX_BUFFERED: u64 = 8 * 1024;

/// Where one viewer's sound goes, shared by the webrtcbin signal and the payloader probe.
#[derive(Default)]
pub struct AudioRoute {
    /// The page's `audio` channel, weakly: webrtcbin owns its channels, and a strong
    /// reference here would keep a closed one (and through it the webrtcbin) alive.
    channel: Mutex<Option<gst::glib::WeakRef<WebRTCDataChannel>>>,
    seq: AtomicU32,
    /// Packets sent on the channel, and dropped there because it was backed up.
    pub sent: AtomicU64,
    pub dropped: AtomicU64,
}

impl AudioRoute {
    /// The channel if it is open now.
    fn open_channel(&self) -> Option<WebRTCDataChannel> {
        let guard = self.channel.lock().unwrap_or_else(|e| e.into_inner());
        let ch = guard.as_ref()?.upgrade()?;
        (ch.ready_state() == WebRTCDataChannelState::Open).then_some(ch)
    }

    fn adopt(&self, channel: &WebRTCDataChannel) {
        *self.channel.lock().unwrap_or_else(|e| e.into_inner()) = Some(channel.downgrade());
    }
}

/// Whether a data channel the page opened asks for the sound: its label, and the
/// reliability that makes it worth it (a retransmitted or ordered packet would wait for
/// the lost one, which is the delay this route exists to avoid).
pub fn is_sound_request(label: &str, ordered: bool, max_retransmits: i32, max_packet_lifetime: i32) -> bool {
    label == LABEL && !ordered && (max_retransmits == 0 || max_packet_lifetime >= 0 && max_retransmits < 0)
}

/// Watches `webrtc` for the page's `audio` channel and copies the Opus packets reaching
/// `pay_sink` (the audio payloader's sink pad) into it while it is open; meanwhile
/// `valve` (on the RTP side, after the payloader) holds back their RTP copies.
///
/// The RTP copies are held back by a valve rather than by a dropping probe on the
/// payloader's sink: that made GStreamer 1.22 log a `gst_mini_object_unref` critical for
/// every packet.
pub fn attach(webrtc: &gst::Element, pay_sink: &gst::Pad, valve: gst::Element) -> Arc<AudioRoute> {
    let route = Arc::new(AudioRoute::default());
    let r = route.clone();
    webrtc.connect("on-data-channel", false, move |values| {
        let ch = values.get(1).and_then(|v| v.get::<WebRTCDataChannel>().ok())?;
        let label = ch.label().map(|l| l.to_string()).unwrap_or_default();
        if label != LABEL {
            // The page has no other channel to open; ignore rather than fail the viewer.
            tracing::debug!(label, "ignoring a data channel the page opened");
            return None;
        }
        let (ordered, rtx, life) = (ch.is_ordered(), ch.max_retransmits(), ch.max_packet_lifetime());
        if is_sound_request(&label, ordered, rtx, life) {
            tracing::info!("sound goes over the page's data channel from now on (its own low-latency player)");
            r.adopt(&ch);
        } else {
            tracing::info!(ordered, max_retransmits = rtx, "refusing a reliable sound channel; sound stays on RTP");
        }
        None
    });
    let r = route.clone();
    pay_sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else { return gst::PadProbeReturn::Ok };
        let ch = r.open_channel();
        if valve.property::<bool>("drop") != ch.is_some() {
            // RTP stops while the channel carries the sound, and carries it again if the
            // channel closes.
            valve.set_property("drop", ch.is_some());
        }
        let Some(ch) = ch else { return gst::PadProbeReturn::Ok };
        if ch.buffered_amount() > MAX_BUFFERED {
            r.dropped.fetch_add(1, Ordering::Relaxed);
            return gst::PadProbeReturn::Ok;
        }
        let Ok(map) = buffer.map_readable() else { return gst::PadProbeReturn::Ok };
        let pts_us = buffer.pts().map_or(0, |t| t.useconds());
        let seq = r.seq.fetch_add(1, Ordering::Relaxed);
        let frame = crate::transport::frame::audio(seq, pts_us, &map);
        match ch.send_data_full(Some(&gst::glib::Bytes::from_owned(frame))) {
            Ok(()) => r.sent.fetch_add(1, Ordering::Relaxed),
            Err(_) => r.dropped.fetch_add(1, Ordering::Relaxed),
        };
        gst::PadProbeReturn::Ok
    });
    route
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unordered_unreliable_audio_channel_takes_the_sound() {
        // What the page opens: {ordered: false, maxRetransmits: 0}.
        assert!(is_sound_request("audio", false, 0, -1));
        // A lifetime instead of a retransmission count is as good.
        assert!(is_sound_request("audio", false, -1, 50));
        // Reliable or ordered: packets would wait for lost ones.
        assert!(!is_sound_request("audio", true, 0, -1));
        assert!(!is_sound_request("audio", false, -1, -1));
        assert!(!is_sound_request("audio", false, 3, -1));
        assert!(!is_sound_request("input", false, 0, -1));
    }
}

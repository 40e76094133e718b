//! Turns received RTP packets into the numbers tests assert on: when the first packet and
//! the first whole frame arrived, how many frames and keyframes, what size the SPS says.
//!
//! A frame (access unit) counts as *complete* only if every one of its packets arrived in
//! sequence and it ended with the marker bit; that is the frame a browser could decode. A
//! frame with a hole in it counts as incomplete instead, so a test of "no frames lost" can
//! tell the two apart. A frame whose first packet follows a sequence gap counts as
//! incomplete too: the missing packets may have been its own beginning.

use std::time::{Duration, Instant};

use crate::h264::{self, Depacketizer, Sps};

/// A snapshot of what a viewer has received. All times are since `connect` started.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ViewerStats {
    /// When the first RTP packet arrived.
    pub first_packet_after: Option<Duration>,
    /// When the first complete frame arrived.
    pub first_frame_after: Option<Duration>,
    /// When the first complete keyframe (a frame with an IDR slice) arrived: the first
    /// picture a browser can show.
    pub first_keyframe_after: Option<Duration>,
    /// When the latest complete frame arrived.
    pub last_frame_after: Option<Duration>,
    /// Longest time between two consecutive complete frames: a freeze detector.
    pub max_frame_gap: Duration,
    /// RTP packets received.
    pub packets: u64,
    /// RTP payload bytes received.
    pub bytes: u64,
    /// Complete frames.
    pub frames: u64,
    /// Complete frames containing an IDR slice.
    pub keyframes: u64,
    /// Frames that lost a packet or never saw their marker bit.
    pub incomplete_frames: u64,
    /// Incomplete frames after the first complete keyframe: glitches a user would see once
    /// the picture is up. (Before it, a browser shows nothing and waits for a keyframe, so
    /// holes there only delay the first picture.)
    pub incomplete_after_keyframe: u64,
    /// Distinct RTP timestamps seen (frames started, complete or not).
    pub timestamps: u64,
    /// Packets missing according to sequence-number gaps.
    pub lost_packets: u64,
    /// Packets arriving with a sequence number older than one already seen.
    pub late_packets: u64,
    /// Payloads the H.264 depacketizer rejected.
    pub depacketize_errors: u64,
    /// SPS NAL units that did not parse.
    pub sps_errors: u64,
    /// The most recent SPS.
    pub sps: Option<Sps>,
    /// Width from the most recent SPS.
    pub width: Option<u32>,
    /// Height from the most recent SPS.
    pub height: Option<u32>,
    /// Payload type of the most recent packet.
    pub payload_type: Option<u8>,
    /// Peer connection state as webrtc-rs names it (`new`, `connecting`, `connected`,
    /// `disconnected`, `failed`, `closed`).
    pub peer_state: String,
    /// Whether the `input` data channel is open.
    pub data_channel_open: bool,
    /// Messages the server sent us on the data channel (it should send none).
    pub data_channel_messages: u64,
    /// Whether the signalling socket has closed.
    pub signalling_closed: bool,
    /// The close code of the signalling socket, if it closed with one.
    pub close_code: Option<u16>,
    /// The last `error` message from the server: `(code, message)`.
    pub server_error: Option<(String, String)>,
    /// `pong` messages received.
    pub pongs: u64,
    /// Server ICE candidates that webrtc-rs would not accept.
    pub bad_remote_candidates: u64,
}

impl ViewerStats {
    fn count_incomplete(&mut self) {
        self.incomplete_frames += 1;
        if self.keyframes > 0 {
            self.incomplete_after_keyframe += 1;
        }
    }

    /// Whether the viewer has been cut off: the peer connection failed or closed, or the
    /// signalling socket closed.
    pub fn is_disconnected(&self) -> bool {
        self.signalling_closed || matches!(self.peer_state.as_str(), "failed" | "closed")
    }
}

/// The frame being received.
#[derive(Debug)]
struct CurrentFrame {
    timestamp: u32,
    /// No packet of this frame was lost and it started at a NAL unit boundary.
    clean: bool,
    has_idr: bool,
}

/// Accumulates [`ViewerStats`] from RTP packets, in arrival order.
#[derive(Debug)]
pub struct FrameTracker {
    start: Instant,
    depacketizer: Depacketizer,
    last_seq: Option<u16>,
    frame: Option<CurrentFrame>,
    last_timestamp: Option<u32>,
    stats: ViewerStats,
}

impl FrameTracker {
    /// A tracker whose times are measured from `start`.
    pub fn new(start: Instant) -> Self {
        Self {
            start,
            depacketizer: Depacketizer::new(),
            last_seq: None,
            frame: None,
            last_timestamp: None,
            stats: ViewerStats { peer_state: "new".into(), ..ViewerStats::default() },
        }
    }

    /// The statistics so far.
    pub fn stats(&self) -> &ViewerStats {
        &self.stats
    }

    /// Mutable access for connection-level fields (state, close code, …).
    pub fn stats_mut(&mut self) -> &mut ViewerStats {
        &mut self.stats
    }

    /// Accounts one RTP packet that arrived at `now`.
    pub fn on_packet(
        &mut self,
        now: Instant,
        seq: u16,
        timestamp: u32,
        marker: bool,
        payload_type: u8,
        payload: &[u8],
    ) {
        let since_start = now.saturating_duration_since(self.start);
        let s = &mut self.stats;
        s.packets += 1;
        s.bytes += payload.len() as u64;
        s.payload_type = Some(payload_type);
        s.first_packet_after.get_or_insert(since_start);

        let mut in_sequence = true;
        if let Some(last) = self.last_seq {
            let delta = seq.wrapping_sub(last) as i16;
            if delta <= 0 {
                // A retransmission or reordering; the frame it belonged to is already
                // accounted for, so it only counts as late.
                s.late_packets += 1;
                return;
            }
            if delta > 1 {
                s.lost_packets += (delta - 1) as u64;
                in_sequence = false;
            }
        }
        self.last_seq = Some(seq);

        // A new timestamp starts a new frame; an unfinished previous one is incomplete.
        if self.frame.as_ref().map(|f| f.timestamp) != Some(timestamp) {
            if self.frame.take().is_some() {
                s.count_incomplete();
            }
            if self.last_timestamp != Some(timestamp) {
                s.timestamps += 1;
            }
            self.frame = Some(CurrentFrame { timestamp, clean: starts_nal_unit(payload), has_idr: false });
        }
        self.last_timestamp = Some(timestamp);
        let Some(frame) = self.frame.as_mut() else {
            return;
        };
        frame.clean &= in_sequence;

        match self.depacketizer.push(seq, payload) {
            Ok(nals) => {
                for nal in nals {
                    match h264::nal_type(&nal) {
                        Some(h264::NAL_IDR) => frame.has_idr = true,
                        Some(h264::NAL_SPS) => match h264::parse_sps(&nal) {
                            Ok(sps) => {
                                s.sps = Some(sps);
                                s.width = Some(sps.width);
                                s.height = Some(sps.height);
                            }
                            Err(_) => s.sps_errors += 1,
                        },
                        _ => {}
                    }
                }
            }
            Err(_) => {
                s.depacketize_errors += 1;
                frame.clean = false;
            }
        }

        if marker {
            if let Some(frame) = self.frame.take() {
                if frame.clean {
                    s.frames += 1;
                    if let Some(last) = s.last_frame_after {
                        s.max_frame_gap = s.max_frame_gap.max(since_start.saturating_sub(last));
                    }
                    s.last_frame_after = Some(since_start);
                    s.first_frame_after.get_or_insert(since_start);
                    if frame.has_idr {
                        s.keyframes += 1;
                        s.first_keyframe_after.get_or_insert(since_start);
                    }
                } else {
                    s.count_incomplete();
                }
            }
        }
    }
}

/// Whether a payload begins a NAL unit (anything but an FU-A continuation), i.e. whether a
/// frame that starts with it can be complete.
fn starts_nal_unit(payload: &[u8]) -> bool {
    match payload {
        [indicator, fu_header, ..] if indicator & 0x1f == h264::NAL_FU_A => fu_header & 0x80 != 0,
        [indicator] if indicator & 0x1f == h264::NAL_FU_A => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPS_720P: &[u8] = &[
        0x67, 0x42, 0xc0, 0x1f, 0xd9, 0x00, 0x50, 0x05, 0xbb, 0x01, 0x6a, 0x02, 0x02, 0x02, 0x80, 0x00, 0x00, 0x03,
        0x00, 0x80, 0x00, 0x00, 0x1e, 0x47, 0x8c, 0x19, 0x24,
    ];

    fn stap(nals: &[&[u8]]) -> Vec<u8> {
        let mut p = vec![0x78];
        for n in nals {
            p.extend_from_slice(&(n.len() as u16).to_be_bytes());
            p.extend_from_slice(n);
        }
        p
    }

    #[test]
    fn counts_complete_frames_and_keyframes() {
        let t0 = Instant::now();
        let mut t = FrameTracker::new(t0);
        let ms = |n| t0 + Duration::from_millis(n);
        // Keyframe: SPS+PPS in a STAP-A, then an IDR in two FU-A fragments.
        t.on_packet(ms(10), 100, 9000, false, 96, &stap(&[SPS_720P, &[0x68, 1]]));
        t.on_packet(ms(11), 101, 9000, false, 96, &[0x7c, 0x85, 1, 2]);
        t.on_packet(ms(12), 102, 9000, true, 96, &[0x7c, 0x45, 3]);
        // Two P frames.
        t.on_packet(ms(40), 103, 12000, true, 96, &[0x41, 1]);
        t.on_packet(ms(90), 104, 15000, true, 96, &[0x41, 2]);
        let s = t.stats();
        assert_eq!((s.frames, s.keyframes, s.incomplete_frames), (3, 1, 0));
        assert_eq!((s.width, s.height), (Some(1280), Some(720)));
        assert_eq!(s.first_packet_after, Some(Duration::from_millis(10)));
        assert_eq!(s.first_frame_after, Some(Duration::from_millis(12)));
        assert_eq!(s.first_keyframe_after, Some(Duration::from_millis(12)));
        assert_eq!(s.max_frame_gap, Duration::from_millis(50));
        assert_eq!((s.packets, s.timestamps), (5, 3));

        // A P frame after a lost packet, once the picture is up, is a visible glitch.
        t.on_packet(ms(120), 106, 18000, true, 96, &[0x41, 3]);
        let s = t.stats();
        assert_eq!((s.incomplete_frames, s.incomplete_after_keyframe, s.lost_packets), (1, 1, 1));
    }

    #[test]
    fn loss_makes_a_frame_incomplete() {
        let t0 = Instant::now();
        let mut t = FrameTracker::new(t0);
        t.on_packet(t0, 1, 3000, false, 96, &[0x7c, 0x85, 1]);
        // seq 2 lost
        t.on_packet(t0, 3, 3000, true, 96, &[0x7c, 0x45, 3]);
        // a frame without its marker, then the next frame
        t.on_packet(t0, 4, 6000, false, 96, &[0x41, 1]);
        t.on_packet(t0, 5, 9000, true, 96, &[0x41, 1]);
        // a late retransmission of seq 2 changes nothing but the late count
        t.on_packet(t0, 2, 3000, false, 96, &[0x7c, 0x05, 2]);
        let s = t.stats();
        assert_eq!((s.frames, s.incomplete_frames, s.keyframes), (1, 2, 0));
        assert_eq!(s.incomplete_after_keyframe, 0);
        assert_eq!((s.lost_packets, s.late_packets), (1, 1));
    }

    #[test]
    fn joining_mid_frame_is_not_a_complete_frame() {
        let t0 = Instant::now();
        let mut t = FrameTracker::new(t0);
        t.on_packet(t0, 7, 3000, true, 96, &[0x7c, 0x45, 3]);
        assert_eq!(t.stats().frames, 0);
        assert_eq!(t.stats().incomplete_frames, 1);
    }
}

//! Times each frame through the shared pipeline, stage by stage, into
//! [`crate::latency`]: the capture's own stamps (first damage, grab; see
//! `kelpiegst::stamps`), then pad probes where the frame leaves capture, enters
//! and leaves the encoder, and where its first RTP packet enters a viewer's webrtcbin.
//!
//! Frames are matched by PTS up to the encoder and by the encoder's output PTS after it
//! (payloaders copy it onto every packet). Across the encoder they are matched in order:
//! x264enc restamps its output (an offset of 1000 hours, counted from the first frame),
//! and the low-latency chains neither reorder nor drop frames, so the n-th buffer out is
//! the n-th buffer in, stamped or not. Only frames made from fresh damage are timed;
//! repeats and idle frames have no damage to measure from. Each timed frame is logged at
//! debug level under the `kelpie::frames` target:
//! `KELPIE_LOG=info,kelpie::frames=debug kelpie …` prints one line per frame.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use kelpiegst::stamps::CaptureStamp;

use crate::latency::{self, Latency, Press, Stage};

/// Frames followed at once at most: a frame that never reaches a viewer (none watching,
/// or dropped by a leaky queue) is forgotten once this many newer ones are in flight.
const IN_FLIGHT: usize = 16;

/// One frame on its way, its times in monotonic nanoseconds.
#[derive(Debug, Clone, PartialEq)]
struct InFlight {
    pts: u64,
    stamp: CaptureStamp,
    captured_ns: u64,
    encode_in_ns: Option<u64>,
    encoded_ns: Option<u64>,
    /// The encoder's PTS for it, which the packets carry.
    out_pts: Option<u64>,
    press: Option<Press>,
}

/// A frame's stage durations in nanoseconds, once its first packet left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameRecord {
    pub pts: u64,
    pub stages: Vec<(Stage, u64)>,
}

/// The pure matching core: frames in, records out.
#[derive(Debug, Default)]
pub struct Tracker {
    frames: VecDeque<InFlight>,
    /// Input PTS of every buffer inside the encoder, oldest first.
    in_encoder: VecDeque<u64>,
}

impl Tracker {
    pub fn captured(&mut self, pts: u64, stamp: CaptureStamp, now: u64, press: Option<Press>) {
        if self.frames.len() == IN_FLIGHT {
            self.frames.pop_front();
        }
        self.frames.push_back(InFlight {
            pts,
            stamp,
            captured_ns: now,
            encode_in_ns: None,
            encoded_ns: None,
            out_pts: None,
            press,
        });
    }

    /// Any buffer entering the encoder (timed or not: the order must be complete).
    pub fn encode_in(&mut self, pts: u64, now: u64) {
        if self.in_encoder.len() == IN_FLIGHT * 4 {
            self.in_encoder.pop_front();
        }
        self.in_encoder.push_back(pts);
        if let Some(f) = self.frames.iter_mut().find(|f| f.pts == pts && f.encode_in_ns.is_none()) {
            f.encode_in_ns = Some(now);
        }
    }

    /// A buffer leaving the encoder with PTS `out_pts`: the oldest one that went in.
    pub fn encoded(&mut self, out_pts: u64, now: u64) {
        let Some(in_pts) = self.in_encoder.pop_front() else { return };
        if let Some(f) = self.frames.iter_mut().find(|f| f.pts == in_pts && f.encode_in_ns.is_some()) {
            if f.encoded_ns.is_none() {
                f.encoded_ns = Some(now);
                f.out_pts = Some(out_pts);
            }
        }
    }

    /// The first packet of the frame the encoder stamped `pts` reached a viewer's webrtcbin: the frame's record,
    /// once (later packets and other viewers find nothing). Older frames still waiting
    /// were dropped on the way and are forgotten.
    pub fn sent(&mut self, pts: u64, now: u64) -> Option<FrameRecord> {
        let at = self.frames.iter().position(|f| f.out_pts == Some(pts))?;
        let f = self.frames.drain(..=at).next_back()?;
        let (encode_in, encoded) = (f.encode_in_ns?, f.encoded_ns?);
        let d = |from: u64, to: u64| to.saturating_sub(from);
        let s = f.stamp;
        let mut stages = vec![
            (Stage::Wait, d(s.damage_ns, s.grab_ns)),
            (Stage::Grab, d(s.grab_ns, s.grabbed_ns)),
            (Stage::Convert, d(s.grabbed_ns, f.captured_ns)),
            (Stage::Queue, d(f.captured_ns, encode_in)),
            (Stage::Encode, d(encode_in, encoded)),
            (Stage::Send, d(encoded, now)),
            (Stage::Total, d(s.damage_ns, now)),
        ];
        if let Some(p) = f.press {
            stages.push((Stage::InputToSend, d(p.arrived_ns, now)));
        }
        Some(FrameRecord { pts, stages })
    }
}

/// The shell: probes on the pipeline's pads feeding one [`Tracker`].
pub struct FrameTiming {
    tracker: Mutex<Tracker>,
    latency: &'static Latency,
}

fn pts_of<'a>(info: &'a gst::PadProbeInfo<'_>) -> Option<(u64, &'a gst::BufferRef)> {
    let buffer = info.buffer()?;
    Some((buffer.pts()?.nseconds(), buffer))
}

impl FrameTiming {
    /// Probes the capture's output and the encoder's input and output.
    pub fn attach(capture: &gst::Element, encoder: &gst::Element) -> Arc<Self> {
        let me = Arc::new(Self { tracker: Mutex::new(Tracker::default()), latency: latency::global() });
        let t = me.clone();
        if let Some(pad) = capture.static_pad("src") {
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some((pts, buffer)) = pts_of(info) {
                    if let Some(stamp) = CaptureStamp::read(buffer) {
                        let press = t.latency.take_press_before(stamp.damage_ns);
                        t.tracker().captured(pts, stamp, latency::mono_ns(), press);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        for (pad, entering) in [("sink", true), ("src", false)] {
            let t = me.clone();
            let Some(pad) = encoder.static_pad(pad) else { continue };
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some((pts, _)) = pts_of(info) {
                    let now = latency::mono_ns();
                    if entering {
                        t.tracker().encode_in(pts, now);
                    } else {
                        t.tracker().encoded(pts, now);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        me
    }

    /// Probes a viewer's video pad into its webrtcbin.
    pub fn watch_sent(self: &Arc<Self>, pad: &gst::Pad) {
        let t = Arc::downgrade(self);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let (Some(t), Some((pts, _))) = (t.upgrade(), pts_of(info)) else { return gst::PadProbeReturn::Ok };
            let record = t.tracker().sent(pts, latency::mono_ns());
            if let Some(r) = record {
                for (stage, ns) in &r.stages {
                    t.latency.record(*stage, *ns);
                }
                t.latency.frame_done();
                let us = |s: Stage| r.stages.iter().find(|(x, _)| *x == s).map_or(0, |(_, ns)| ns / 1000);
                tracing::debug!(
                    target: "kelpie::frames",
                    pts_ms = r.pts / 1_000_000,
                    wait_us = us(Stage::Wait),
                    grab_us = us(Stage::Grab),
                    convert_us = us(Stage::Convert),
                    queue_us = us(Stage::Queue),
                    encode_us = us(Stage::Encode),
                    send_us = us(Stage::Send),
                    total_us = us(Stage::Total),
                    input_to_send_us = us(Stage::InputToSend),
                    "frame"
                );
            }
            gst::PadProbeReturn::Ok
        });
    }

    fn tracker(&self) -> std::sync::MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAMP: CaptureStamp = CaptureStamp { damage_ns: 1_000, grab_ns: 4_000, grabbed_ns: 6_000 };

    #[test]
    fn a_frame_is_timed_from_damage_to_its_first_packet_once() {
        let mut t = Tracker::default();
        t.captured(7, STAMP, 7_000, None);
        t.encode_in(7, 8_000);
        assert_eq!(t.sent(900, 9_000), None, "not encoded yet");
        t.encoded(900, 12_000); // the encoder restamps: 7 in, 900 out
        let r = t.sent(900, 15_000).expect("record");
        assert_eq!(
            r.stages,
            vec![
                (Stage::Wait, 3_000),
                (Stage::Grab, 2_000),
                (Stage::Convert, 1_000),
                (Stage::Queue, 1_000),
                (Stage::Encode, 4_000),
                (Stage::Send, 3_000),
                (Stage::Total, 14_000),
            ]
        );
        assert_eq!(r.pts, 900);
        assert_eq!(t.sent(900, 16_000), None, "later packets and viewers find nothing");
    }

    #[test]
    fn the_encoder_is_matched_in_order_including_untimed_frames() {
        let mut t = Tracker::default();
        t.encode_in(1, 100); // an idle repeat: no stamp, but it takes its place in the encoder
        t.captured(2, STAMP, 7_000, None);
        t.encode_in(2, 8_000);
        t.encoded(501, 8_500); // frame 1 out
        t.encoded(502, 9_000); // frame 2 out
        assert_eq!(t.sent(501, 9_100), None, "the untimed frame has no record");
        let r = t.sent(502, 10_000).expect("frame 2");
        assert!(r.stages.contains(&(Stage::Encode, 1_000)), "{:?}", r.stages);
    }

    #[test]
    fn frames_dropped_on_the_way_are_forgotten_and_a_press_is_carried() {
        let mut t = Tracker::default();
        for pts in 1..=3 {
            t.captured(pts, STAMP, 7_000, (pts == 3).then_some(Press { arrived_ns: 500, applied_ns: 900 }));
            t.encode_in(pts, 8_000);
            t.encoded(pts + 100, 9_000);
        }
        let r = t.sent(103, 10_000).expect("frame 3");
        assert!(r.stages.contains(&(Stage::InputToSend, 9_500)));
        assert_eq!(t.sent(101, 11_000), None, "frame 1 was dropped before frame 3 left");
    }

    #[test]
    fn in_flight_frames_are_bounded() {
        let mut t = Tracker::default();
        for pts in 0..(IN_FLIGHT as u64 * 8) {
            t.captured(pts, STAMP, 7_000, None);
            t.encode_in(pts, 1);
        }
        assert_eq!(t.frames.len(), IN_FLIGHT);
        assert_eq!(t.in_encoder.len(), IN_FLIGHT * 4);
    }
}

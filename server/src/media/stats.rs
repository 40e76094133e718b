//! Counters and per-second rates of the shared pipeline and each viewer's connection, for
//! `/metrics` and `/health`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use gst::prelude::*;

/// Network figures of one viewer, from webrtcbin's `get-stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ViewerNet {
    pub rtt_seconds: Option<f64>,
    pub packets_lost: i64,
}

#[derive(Debug, Default)]
pub struct MediaStats {
    encoded_bytes: AtomicU64,
    /// When each frame still inside the encoder entered it, oldest first.
    in_flight: Mutex<VecDeque<Instant>>,
    encode_micros_total: AtomicU64,
    encode_samples: AtomicU64,
    /// f64 bits, updated once a second.
    fps: AtomicU64,
    bitrate_bps: AtomicU64,
    pub errors: AtomicU64,
    viewers: Mutex<HashMap<u64, ViewerNet>>,
}

fn load_f64(a: &AtomicU64) -> f64 {
    f64::from_bits(a.load(Ordering::Relaxed))
}

impl MediaStats {
    /// Hooks encoder pads to measure encode time and output size.
    pub fn attach(self: &std::sync::Arc<Self>, encoder: &gst::Element) {
        let me = self.clone();
        if let Some(sink) = encoder.static_pad("sink") {
            sink.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if info.buffer().is_some() {
                    let mut q = me.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                    if q.len() >= 64 {
                        q.pop_front();
                    }
                    q.push_back(Instant::now());
                }
                gst::PadProbeReturn::Ok
            });
        }
        let me = self.clone();
        if let Some(src) = encoder.static_pad("src") {
            src.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buf) = info.buffer() {
                    me.encoded_bytes.fetch_add(buf.size() as u64, Ordering::Relaxed);
                    let mut q = me.in_flight.lock().unwrap_or_else(|e| e.into_inner());
                    // Encoders restamp their output, so frames are matched in order: the
                    // low-latency chains neither reorder nor hold frames back.
                    if let Some(t) = q.pop_front() {
                        me.encode_micros_total.fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                        me.encode_samples.fetch_add(1, Ordering::Relaxed);
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
    }

    pub fn encoded_bytes(&self) -> u64 {
        self.encoded_bytes.load(Ordering::Relaxed)
    }

    /// Mean encode time in seconds since start (NaN before the first frame).
    pub fn mean_encode_seconds(&self) -> f64 {
        let n = self.encode_samples.load(Ordering::Relaxed);
        if n == 0 {
            return f64::NAN;
        }
        self.encode_micros_total.load(Ordering::Relaxed) as f64 / n as f64 / 1e6
    }

    pub fn fps(&self) -> f64 {
        load_f64(&self.fps)
    }

    pub fn bitrate_bps(&self) -> f64 {
        load_f64(&self.bitrate_bps)
    }

    pub fn set_rates(&self, fps: f64, bitrate_bps: f64) {
        self.fps.store(fps.to_bits(), Ordering::Relaxed);
        self.bitrate_bps.store(bitrate_bps.to_bits(), Ordering::Relaxed);
    }

    pub fn viewers(&self) -> HashMap<u64, ViewerNet> {
        self.viewers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A viewer whose figures will be kept (from when its transport opens).
    pub fn add_viewer(&self, id: u64) {
        self.viewers.lock().unwrap_or_else(|e| e.into_inner()).entry(id).or_default();
    }

    /// New figures for a viewer still known; a `get-stats` reply that arrives after the
    /// viewer was forgotten is dropped, so no stale series stays in `/metrics`.
    pub fn set_viewer(&self, id: u64, net: ViewerNet) {
        if let Some(v) = self.viewers.lock().unwrap_or_else(|e| e.into_inner()).get_mut(&id) {
            *v = net;
        }
    }

    pub fn forget_viewer(&self, id: u64) {
        self.viewers.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}

/// Reads round-trip time and loss from a webrtcbin `get-stats` reply.
pub fn viewer_net_from_stats(stats: &gst::StructureRef) -> ViewerNet {
    let mut net = ViewerNet::default();
    for (_, value) in stats.iter() {
        let Ok(s) = value.get::<gst::Structure>() else { continue };
        if s.has_field("round-trip-time") && s.has_field("packets-lost") {
            // remote-inbound-rtp: what the browser reports back about our stream.
            net.rtt_seconds = s.get::<f64>("round-trip-time").ok().or(net.rtt_seconds);
            net.packets_lost +=
                s.get::<i64>("packets-lost").or_else(|_| s.get::<i32>("packets-lost").map(i64::from)).unwrap_or(0);
        }
    }
    net
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_are_kept_only_for_viewers_present() {
        let stats = MediaStats::default();
        stats.set_viewer(1, ViewerNet { packets_lost: 3, ..Default::default() });
        assert!(stats.viewers().is_empty(), "a reply for a viewer never added is dropped");
        stats.add_viewer(1);
        stats.set_viewer(1, ViewerNet { packets_lost: 3, ..Default::default() });
        assert_eq!(stats.viewers()[&1].packets_lost, 3);
        stats.forget_viewer(1);
        stats.set_viewer(1, ViewerNet { packets_lost: 4, ..Default::default() });
        assert!(stats.viewers().is_empty(), "a late reply does not bring a departed viewer back");
    }
}

//! The shell around [`crate::adapt`]: collects each viewer's reports into its estimator,
//! and ten times a second turns the estimates into the shared encoder's bitrate and the
//! capture's frame rate. Once a second it tells each viewer where it stands (`net`).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gst::prelude::*;

use super::{Attached, Desktop};
use crate::adapt::estimate::{Estimator, PacketReport, Snapshot};
use crate::adapt::policy::{self, Bounds, Plan, Viewer};
use crate::transport::Kind;

/// How often the policy runs: browsers send congestion feedback every 50–100 ms.
const TICK: Duration = Duration::from_millis(100);

/// A new viewer's estimate before any report: low enough for a first keyframe to cross a
/// slow link, and ramped up within a second or two on a fast one.
pub const INITIAL_ESTIMATE_BPS: f64 = 2.0e6;

/// The encoder is retuned only for changes bigger than this share (each retune costs the
/// encoder a reconfiguration; tiny steps buy nothing).
const RETUNE: f64 = 0.04;

/// Whether bitrate `to` is far enough from `from` (both kbit/s) to retune for.
fn differs(from: u32, to: u32) -> bool {
    (f64::from(to) - f64::from(from)).abs() > RETUNE * f64::from(from)
}

#[derive(Debug)]
pub struct Adaptation {
    /// Off (`--adapt false`): the encoder keeps the ceiling, as a fixed-rate stream.
    pub enabled: bool,
    bounds: Bounds,
    /// The frame rate asked for (`--framerate` or the settings panel).
    max_fps: u32,
    controller: Option<u64>,
    estimators: HashMap<u64, Estimator>,
    /// What was last set on the encoder and capture.
    applied: Option<(u32, u32)>,
    last: Option<Plan>,
    /// Viewers on the low rung, and when each viewer last moved.
    low: HashMap<u64, bool>,
    moved: HashMap<u64, Instant>,
    /// The low rung's bitrate as last set (kbit/s), `None` while it is idle.
    low_applied: Option<u32>,
    /// When each viewer's link last lost packets ([`policy::LOSSY`]), and the FEC it has.
    lossy_at: HashMap<u64, Instant>,
    fec: HashMap<u64, u32>,
    /// `--fec`: the parity share a lossy link gets.
    fec_configured: u32,
}

/// What one feedback report calls for at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Feedback {
    pub keyframe: bool,
    pub retune: bool,
}

/// What the shell must do to the low rung after a tick.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rungs {
    /// (viewer, to the low rung?) for each viewer to move.
    pub moves: Vec<(u64, bool)>,
    /// The low rung's new bitrate (kbit/s) when it changed; `Some(None)`: idle it.
    pub low_kbps: Option<Option<u32>>,
}

/// What one viewer is told once a second, and `/metrics` shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewerAdapt {
    pub snapshot: Snapshot,
    pub leader: bool,
    pub behind: bool,
    /// Served from the low rung.
    pub low: bool,
}

impl Adaptation {
    pub fn new(enabled: bool, ceiling_kbps: u32, max_fps: u32) -> Self {
        Self {
            enabled,
            bounds: Bounds::with_default_floor(f64::from(ceiling_kbps) * 1e3),
            max_fps,
            controller: None,
            estimators: HashMap::new(),
            applied: None,
            last: None,
            low: HashMap::new(),
            moved: HashMap::new(),
            low_applied: None,
            lossy_at: HashMap::new(),
            fec: HashMap::new(),
            fec_configured: 0,
        }
    }

    /// The parity share a lossy viewer's link gets (`--fec`).
    pub fn set_fec(&mut self, percent: u32) {
        self.fec_configured = percent;
    }

    /// What FEC is negotiated at with each WebRTC viewer (`--fec`).
    pub fn fec_percent(&self) -> u32 {
        self.fec_configured
    }

    /// (viewer, FEC percent) for the viewers among `ids` whose FEC should change now.
    pub fn fec_changes(&mut self, now: Instant, ids: &[u64]) -> Vec<(u64, u32)> {
        let mut out = Vec::new();
        for &id in ids {
            let Some(e) = self.estimators.get(&id) else { continue };
            if e.snapshot().loss > policy::LOSSY {
                self.lossy_at.insert(id, now);
            }
            let since = self.lossy_at.get(&id).map(|t| now.duration_since(*t));
            let want = policy::fec_percent(self.fec_configured, since);
            if self.fec.get(&id).copied().unwrap_or(0) != want {
                self.fec.insert(id, want);
                out.push((id, want));
            }
        }
        out
    }

    pub fn bounds(&self) -> Bounds {
        self.bounds
    }

    pub fn set_ceiling(&mut self, kbps: u32) {
        self.bounds = Bounds::with_default_floor(f64::from(kbps) * 1e3);
    }

    pub fn max_fps(&self) -> u32 {
        self.max_fps
    }

    pub fn set_max_fps(&mut self, fps: u32) {
        self.max_fps = fps;
    }

    pub fn set_controller(&mut self, id: Option<u64>) {
        self.controller = id;
    }

    pub fn add_viewer(&mut self, id: u64) {
        self.estimators.insert(id, Estimator::new(INITIAL_ESTIMATE_BPS.min(self.bounds.ceiling_bps)));
    }

    pub fn remove_viewer(&mut self, id: u64) {
        self.estimators.remove(&id);
        self.lossy_at.remove(&id);
        self.fec.remove(&id);
        self.low.remove(&id);
        self.moved.remove(&id);
    }

    /// Moves viewers between rungs for the last plan (`can_move`: the viewers whose
    /// transport has rungs, i.e. WebRTC ones), and sizes the low rung.
    pub fn rungs(&mut self, now: Instant, can_move: &[u64]) -> Rungs {
        let mut out = Rungs::default();
        let Some(plan) = self.last.clone() else { return out };
        if !self.enabled {
            return out;
        }
        // The participant in control leads even before its first report.
        let leader = plan.leader.or(self.controller.filter(|c| self.estimators.contains_key(c)));
        for &id in can_move {
            let Some(e) = self.estimators.get(&id) else { continue };
            let on_low = self.low.get(&id).copied().unwrap_or(false);
            let want = if leader == Some(id) || self.estimators.len() == 1 {
                false
            } else {
                let since = self.moved.get(&id).map_or(Duration::MAX, |t| now.duration_since(*t));
                let s = e.snapshot();
                policy::wants_low(on_low, s.estimate_bps, s.congested, plan.target_bps, since)
            };
            if want != on_low {
                self.low.insert(id, want);
                self.moved.insert(id, now);
                out.moves.push((id, want));
            }
        }
        let estimates: Vec<f64> = self
            .low
            .iter()
            .filter(|(_, low)| **low)
            .filter_map(|(id, _)| self.estimators.get(id).map(|e| e.estimate_bps()))
            .collect();
        let kbps = (!estimates.is_empty())
            .then(|| (policy::low_target(self.bounds, plan.target_bps, estimates) / 1e3).round() as u32);
        let changed = match (self.low_applied, kbps) {
            (Some(a), Some(b)) => differs(a, b),
            (a, b) => a != b,
        };
        if changed {
            self.low_applied = kbps;
            out.low_kbps = Some(kbps);
        }
        out
    }

    /// Whether `id` is on the low rung.
    pub fn is_low(&self, id: u64) -> bool {
        self.low.get(&id).copied().unwrap_or(false)
    }

    /// One feedback report from viewer `id`: whether the viewer needs a keyframe (a loss
    /// burst it cannot recover from by retransmission), and whether its estimate just
    /// fell so far that the encoder should be retuned now rather than at the next tick.
    pub fn report(&mut self, id: u64, now: Instant, packets: &[PacketReport]) -> Feedback {
        let ceiling = self.bounds.ceiling_bps;
        let Some(e) = self.estimators.get_mut(&id) else { return Feedback::default() };
        let before = e.estimate_bps();
        {
            e.on_report(now, packets);
            e.cap(ceiling);
            let s = e.snapshot();
            tracing::trace!(
                viewer = id,
                packets = packets.len(),
                estimate = s.estimate_bps as u64,
                delivered = s.delivered_bps as u64,
                sent = s.sent_bps as u64,
                queue_ms = s.queue.as_millis() as u64,
                loss = s.loss,
                state = ?s.state,
                "congestion report"
            );
        }
        let fell = e.estimate_bps() < 0.8 * before;
        Feedback { keyframe: e.take_repair(), retune: fell && self.last.as_ref().is_some_and(|p| p.leader == Some(id)) }
    }

    /// Viewers whose transport has reported at least once have an estimate.
    fn viewers(&self) -> Vec<Viewer> {
        self.estimators.iter().map(|(id, e)| Viewer { id: *id, estimate_bps: e.snapshot().measured_bps() }).collect()
    }

    /// The plan now, and the (kbps, fps) to set if they differ enough from what is set.
    pub fn tick(&mut self, pixels: u64) -> (Plan, Option<(u32, u32)>) {
        let plan = if self.enabled {
            policy::plan(self.bounds, self.max_fps, pixels, self.controller, &self.viewers())
        } else {
            Plan { target_bps: self.bounds.ceiling_bps, framerate: self.max_fps, leader: None, behind: vec![] }
        };
        let want = ((plan.target_bps / 1e3).round() as u32, plan.framerate);
        let change = match self.applied {
            None => true,
            Some((kbps, fps)) => fps != want.1 || differs(kbps, want.0),
        };
        let apply = change.then(|| {
            self.applied = Some(want);
            want
        });
        self.last = Some(plan.clone());
        (plan, apply)
    }

    /// Where viewer `id` stands (after the last tick).
    pub fn viewer(&self, id: u64) -> Option<ViewerAdapt> {
        let e = self.estimators.get(&id)?;
        let plan = self.last.as_ref();
        Some(ViewerAdapt {
            snapshot: e.snapshot(),
            leader: plan.is_some_and(|p| p.leader == Some(id)),
            behind: plan.is_some_and(|p| p.behind.contains(&id)),
            low: self.is_low(id),
        })
    }

    /// (kbps, fps) last set on the encoder and capture.
    pub fn applied(&self) -> Option<(u32, u32)> {
        self.applied
    }
}

/// The bitrate to give an encoder whose caps say `full_fps` for `kbps` at `fps` frames a
/// second: the encoders budget bits per frame from the caps' rate, so a capture paced
/// below it would otherwise get only `fps / full_fps` of the bitrate.
pub fn encoder_kbps(kbps: u32, fps: u32, full_fps: u32) -> u32 {
    if fps == 0 || fps >= full_fps {
        return kbps;
    }
    (u64::from(kbps) * u64::from(full_fps) / u64::from(fps)).min(u64::from(u32::MAX)) as u32
}

/// Sets an encoder's bitrate for `kbps` at `fps` (see [`encoder_kbps`]), if it has one.
fn set_bitrate(encoder: &gst::Element, kbps: u32, fps: u32, full_fps: u32) {
    if encoder.find_property("bitrate").is_some() {
        encoder.set_property("bitrate", encoder_kbps(kbps, fps, full_fps));
    }
}

/// Sets the encoder's bitrate and the capture's frame-rate cap.
pub fn apply(encoder: &gst::Element, capture: &gst::Element, kbps: u32, fps: u32, full_fps: u32) {
    set_bitrate(encoder, kbps, fps, full_fps);
    if capture.find_property("max-framerate").is_some() {
        capture.set_property("max-framerate", if fps >= full_fps { 0 } else { fps });
    }
    tracing::debug!(kbps, fps, "stream adapted");
}

/// The `net` message for one viewer (`docs/protocol.md`).
pub fn net_message(
    v: Option<&ViewerAdapt>,
    b: Bounds,
    applied: Option<(u32, u32)>,
    transport: &str,
    encoder: &str,
    rtt: Option<f64>,
) -> String {
    let (kbps, fps) = applied.unwrap_or(((b.ceiling_bps / 1e3) as u32, 0));
    let s = v.map(|v| v.snapshot);
    serde_json::json!({
        "t": "net",
        "transport": transport,
        "encoder": encoder,
        "target_kbps": kbps,
        "ceiling_kbps": (b.ceiling_bps / 1e3).round(),
        "floor_kbps": (b.floor_bps / 1e3).round(),
        "estimate_kbps": s.and_then(|s| s.measured_bps()).map(|e| (e / 1e3).round()),
        "delivered_kbps": s.map(|s| (s.delivered_bps / 1e3).round()),
        "queue_ms": s.map(|s| s.queue.as_millis() as u64),
        "rtt_ms": rtt.map(|r| (r * 1e3).round()),
        "loss_pct": s.map(|s| (s.loss * 1000.0).round() / 10.0),
        "fps": fps,
        "leader": v.is_some_and(|v| v.leader),
        "behind": v.is_some_and(|v| v.behind),
        "rung": if v.is_some_and(|v| v.low) { "low" } else { "main" },
    })
    .to_string()
}

/// Packets of a webrtcbin `RTPTWCCPackets` event (rtpsession's parse of the browser's
/// transport-wide feedback): send time, arrival time (none when lost) and size.
pub fn twcc_packets(s: &gst::StructureRef) -> Vec<PacketReport> {
    let Ok(list) = s.get::<gst::glib::ValueArray>("packets") else { return vec![] };
    list.iter()
        .filter_map(|v| v.get::<gst::Structure>().ok())
        .filter_map(|p| {
            let sent = p.get::<u64>("local-ts").ok().filter(|t| *t != u64::MAX)?;
            let lost = p.get::<bool>("lost").unwrap_or(false);
            let received = p.get::<u64>("remote-ts").ok().filter(|t| !lost && *t != u64::MAX);
            let bytes = p.get::<u32>("size").unwrap_or(0);
            Some(PacketReport { sent_us: sent / 1000, received_us: received.map(|r| r / 1000), bytes })
        })
        .collect()
}

impl Desktop {
    /// Ten times a second: the policy's plan for the estimates now, carried out on the
    /// encoder and capture when it changed; once a second each viewer hears where it stands.
    pub(super) fn spawn_adapt_thread(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let stop = self.stop.clone();
        let _ = std::thread::Builder::new().name("kelpie-adapt".into()).spawn(move || {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(TICK);
                let Some(d) = weak.upgrade() else { return };
                d.adapt_now();
                n += 1;
                if n.is_multiple_of(10) {
                    d.tell_viewers();
                }
            }
        });
    }

    /// Retunes the main encoder for the estimates now, without touching the rungs (safe
    /// on a GStreamer thread: it never waits for a pad).
    pub(super) fn retune_now(&self) {
        let pixels = self.pixels();
        let (_, change) = self.adaptation().tick(pixels);
        if let Some((kbps, fps)) = change {
            apply(&self.encoder, &self.capture, kbps, fps, self.framerate);
        }
    }

    fn pixels(&self) -> u64 {
        self.capture
            .static_pad("src")
            .and_then(|p| p.current_caps())
            .and_then(|c| gst_video::VideoInfo::from_caps(&c).ok())
            .map_or(0, |i| u64::from(i.width()) * u64::from(i.height()))
    }

    pub(super) fn adapt_now(&self) {
        // WebSocket viewers' acknowledgements are their congestion feedback.
        let acks = self.sockets.take_acks();
        let pixels = self.pixels();
        let rtc: Vec<u64> = self.viewers().iter().filter(|(_, s)| s.branch().is_some()).map(|(id, _)| *id).collect();
        let (change, rungs, fps, fec) = {
            let mut a = self.adaptation();
            let now = Instant::now();
            for (id, reports) in acks {
                a.report(id, now, &reports);
            }
            let (plan, change) = a.tick(pixels);
            (change, a.rungs(now, &rtc), plan.framerate, a.fec_changes(now, &rtc))
        };
        if let Some((kbps, fps)) = change {
            apply(&self.encoder, &self.capture, kbps, fps, self.framerate);
        }
        for (id, percent) in fec {
            if let Some(b) = self.viewers().get(&id).and_then(|s| s.branch()) {
                b.set_fec(percent);
                tracing::info!(
                    viewer = id,
                    percent,
                    "forward error correction {}",
                    if percent > 0 { "on: the link loses packets" } else { "off: no loss for 10 s" }
                );
            }
        }
        self.carry_out_rungs(rungs, fps);
    }

    /// Sizes, opens or idles the low rung and moves viewers onto or off it.
    fn carry_out_rungs(&self, rungs: Rungs, fps: u32) {
        let low = &self.low;
        if let Some(kbps) = rungs.low_kbps {
            match kbps {
                Some(kbps) => {
                    set_bitrate(&low.encoder, kbps, fps, self.framerate);
                    if low.valve.property::<bool>("drop") {
                        tracing::info!(kbps, "low rung started");
                        low.valve.set_property("drop", false);
                    }
                }
                None => {
                    tracing::info!("low rung idle: nobody on it");
                    low.valve.set_property("drop", true);
                }
            }
        }
        for (id, to_low) in rungs.moves {
            let viewers = self.viewers();
            let Some(branch) = viewers.get(&id).and_then(|s| s.branch()) else { continue };
            branch.switch(to_low);
            drop(viewers);
            tracing::info!(viewer = id, rung = if to_low { "low" } else { "main" }, "viewer moved between rungs");
            if to_low {
                self.request_low_keyframe();
            } else {
                self.request_keyframe();
            }
        }
    }

    /// Sends each viewer its `net` message.
    fn tell_viewers(&self) {
        let nets = self.stats.viewers();
        let (bounds, applied, per_viewer) = {
            let a = self.adaptation();
            let ids = self.viewer_ids();
            (a.bounds(), a.applied(), ids.into_iter().map(|id| (id, a.viewer(id))).collect::<Vec<_>>())
        };
        let viewers = self.viewers();
        for (id, v) in per_viewer {
            let Some(slot) = viewers.get(&id) else { continue };
            let kind = match slot.attached {
                Attached::Rtc(_) => Kind::Webrtc,
                Attached::Socket(_) => Kind::Websocket,
            };
            let net = nets.get(&id);
            let text = net_message(
                v.as_ref(),
                bounds,
                applied,
                kind.as_str(),
                self.encoder_kind.factory(),
                net.and_then(|n| n.rtt_seconds),
            );
            slot.send_text(&text);
        }
    }

    /// Each viewer's adaptation figures, for `/metrics`.
    pub fn adaptation_figures(&self) -> Vec<(u64, ViewerAdapt)> {
        let a = self.adaptation();
        self.viewer_ids().into_iter().filter_map(|id| Some((id, a.viewer(id)?))).collect()
    }
}

/// The name webrtcbin's rtpsession gives its feedback event.
pub const TWCC_EVENT: &str = "RTPTWCCPackets";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twcc_event_structures_become_reports() {
        gst::init().unwrap();
        let pkt = |seq: u32, local: u64, remote: Option<u64>| {
            gst::Structure::builder("RTPTWCCPacket")
                .field("seqnum", seq)
                .field("local-ts", local)
                .field("remote-ts", remote.unwrap_or(u64::MAX))
                .field("payload-type", 96u8)
                .field("size", 1200u32)
                .field("lost", remote.is_none())
                .build()
        };
        let arr = gst::glib::ValueArray::new([
            pkt(1, 5_000_000, Some(9_000_000)).to_send_value(),
            pkt(2, 6_000_000, None).to_send_value(),
        ]);
        let mut s = gst::Structure::new_empty(TWCC_EVENT);
        // GValueArray is not Send, but rtpsession builds exactly such a structure; a test
        // that owns the only reference may do the same.
        // SAFETY: SendValue is a transparent wrapper of Value; nothing else holds `arr`.
        let packets: gst::glib::SendValue = unsafe { std::mem::transmute(arr.to_value()) };
        s.set_value("packets", packets);
        assert_eq!(
            twcc_packets(&s),
            vec![
                PacketReport { sent_us: 5000, received_us: Some(9000), bytes: 1200 },
                PacketReport { sent_us: 6000, received_us: None, bytes: 1200 }
            ]
        );
        assert!(twcc_packets(&gst::Structure::new_empty("other")).is_empty());
    }

    #[test]
    fn the_encoder_is_retuned_only_for_real_changes() {
        let mut a = Adaptation::new(true, 8000, 30);
        a.add_viewer(1);
        a.set_controller(Some(1));
        let (plan, first) = a.tick(1920 * 1080);
        assert_eq!(first, Some((8000, 30)), "no report yet: the ceiling");
        assert_eq!(plan.leader, None);
        assert_eq!(a.tick(1920 * 1080).1, None, "nothing changed");
        let t = Instant::now();
        let lost: Vec<_> =
            (0..40).map(|i| PacketReport { sent_us: i * 1000, received_us: None, bytes: 1200 }).collect();
        a.report(1, t, &lost);
        let (plan, change) = a.tick(1920 * 1080);
        assert_eq!(plan.leader, Some(1));
        // Total loss halves 2 Mbit/s, to the floor of 1; at 1080p that is 16 fps of bits.
        assert_eq!(change, Some((1000, 16)));
        let v = a.viewer(1).unwrap();
        assert!(v.leader && !v.behind);
    }

    #[test]
    fn a_capture_paced_below_the_caps_rate_gets_the_bitrate_scaled_up() {
        assert_eq!(encoder_kbps(1000, 15, 30), 2000);
        assert_eq!(encoder_kbps(1000, 30, 30), 1000);
        assert_eq!(encoder_kbps(1000, 0, 30), 1000);
    }

    #[test]
    fn disabled_adaptation_holds_the_ceiling() {
        let mut a = Adaptation::new(false, 6000, 60);
        a.add_viewer(1);
        let lost: Vec<_> =
            (0..40).map(|i| PacketReport { sent_us: i * 1000, received_us: None, bytes: 1200 }).collect();
        a.report(1, Instant::now(), &lost);
        assert_eq!(a.tick(1920 * 1080).1, Some((6000, 60)));
    }

    #[test]
    fn net_message_carries_the_viewer_figures() {
        let mut a = Adaptation::new(true, 8000, 30);
        a.add_viewer(3);
        a.tick(100);
        let m: serde_json::Value = serde_json::from_str(&net_message(
            a.viewer(3).as_ref(),
            a.bounds(),
            a.applied(),
            "webrtc",
            "x264enc",
            Some(0.012),
        ))
        .unwrap();
        assert_eq!(m["t"], "net");
        assert_eq!(m["target_kbps"], 8000);
        assert_eq!(m["floor_kbps"], 1000.0);
        assert_eq!(m["rtt_ms"], 12.0);
        assert!(m["estimate_kbps"].is_null(), "no report yet");
        assert_eq!(m["transport"], "webrtc");
    }
}

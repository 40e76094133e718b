//! The composition root's adapters: the real desktop parts behind the room's [`Desk`]
//! port and the HTTP [`Status`] port. Only `lib.rs` builds these; everything below them
//! knows only the traits.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::json;

use crate::clipboard::Clipboard;
use crate::cursor::RemoteCursor;
use crate::gamepad::Gamepads;
use crate::http::Status;
use crate::input::protocol::{ClipChunk, PadInput};
use crate::input::{InputEvent, InputInjector};
use crate::media::Desktop;
use crate::metrics::Metric;
use crate::room::{Desk, Id, RoomActor};
use crate::screen::Resizer;

/// The desktop's parts, as the room drives them.
pub struct DesktopDesk {
    pub desktop: Arc<Desktop>,
    pub input: InputInjector,
    pub clipboard: Clipboard,
    /// `None` with `--remote-cursor off`.
    pub cursor: Option<Arc<RemoteCursor>>,
    /// `None` with `--resize off`.
    pub resizer: Option<Resizer>,
    /// `None` with `--gamepads off`, or when its socket could not be made.
    pub gamepads: Option<Arc<Gamepads>>,
}

impl Desk for DesktopDesk {
    fn input(&self, id: Id, event: InputEvent) {
        self.input.send(id, event);
    }
    fn release_input(&self, id: Id) {
        self.input.release(id);
        if let Some(g) = &self.gamepads {
            g.release(id);
        }
    }
    fn gamepad(&self, id: Id, input: PadInput) -> Option<String> {
        match &self.gamepads {
            Some(g) => {
                let notice = g.apply(id, &input);
                if let Some(text) = &notice {
                    tracing::info!(participant = id, "{text}");
                }
                notice
            }
            None => {
                tracing::debug!("gamepad message ignored: gamepads are off");
                None
            }
        }
    }
    fn clipboard(&self, id: Id, chunk: ClipChunk) {
        self.clipboard.from_browser(id, chunk);
    }
    fn clipboard_ready(&self, id: Id) {
        self.clipboard.viewer_ready(id);
    }
    fn cursor_ready(&self, id: Id) {
        if let Some(c) = &self.cursor {
            c.viewer_ready(id);
        }
    }
    fn participant_gone(&self, id: Id) {
        self.input.viewer_gone(id);
        self.clipboard.participant_gone(id);
    }
    fn resize(&self, width: u32, height: u32, dpr: f64) {
        match &self.resizer {
            Some(r) => r.request(width, height, dpr),
            None => tracing::debug!("resize request ignored: --resize is off"),
        }
    }
    fn stream_settings(&self, framerate: Option<u32>, bitrate_kbps: Option<u32>) {
        self.desktop.apply_settings(framerate, bitrate_kbps);
    }
    fn show_pointer(&self, on: bool) {
        self.desktop.set_show_pointer(on);
    }
}

/// What `/health` and `/metrics` report.
pub struct DesktopStatus {
    pub desktop: Arc<Desktop>,
    pub room: Arc<RoomActor>,
    pub input: InputInjector,
    pub display: String,
    pub width: u16,
    pub height: u16,
    pub framerate: u32,
    pub gamepads: Option<Arc<Gamepads>>,
}

impl Status for DesktopStatus {
    fn health(&self) -> Result<serde_json::Value, serde_json::Value> {
        let d = &self.desktop;
        let (bitrate_kbps, framerate_now, adapted) = d.stream_settings();
        let mut body = json!({
            // As chosen (ceiling and limit), and what adaptation runs the encoder at now.
            "stream": {"bitrate_kbps": bitrate_kbps, "framerate": framerate_now,
                       "target_kbps": adapted.map(|a| a.0), "target_framerate": adapted.map(|a| a.1)},
            "encoder": d.encoder_kind.factory(),
            "display": self.display,
            "width": self.width,
            "height": self.height,
            "framerate": self.framerate,
            "viewers": self.room.len(),
            "transports": d.kinds().into_iter().map(|(k, n)| (k.to_string(), n.into())).collect::<serde_json::Map<_, _>>(),
            "branches": d.branch_count(),
            "webrtcbins_alive": crate::media::webrtcbins_alive(),
            "ice_agents_alive": crate::media::ice_agents_alive(),
            // The C heap: in use against freed-but-kept (docs/reliability.md, soak).
            "heap": crate::heap::figures(),
            "control": self.room.controller().map(crate::room::state::name),
            "frames_encoded": d.health.frames(),
            "pipeline_restarts": d.pipeline_restarts(),
            "input_applied": self.input.counters.applied.load(Ordering::Relaxed),
            // Dropped: malformed, or the X server could not take it. Refused: the sender
            // lacked control or its role forbids it (by kind in /metrics).
            "input_dropped": self.input.counters.dropped.load(Ordering::Relaxed)
                + self.room.malformed.load(Ordering::Relaxed),
            "input_refused": self.room.refused().iter().map(|(_, n)| n).sum::<u64>(),
        });
        body["gamepads"] = match &self.gamepads {
            Some(g) => json!({"socket": g.path().display().to_string(), "readers": g.readers(),
                              "updates": g.counts().updates, "reports": g.reports()}),
            None => json!("off"),
        };
        // Sound is reported, never a reason for /health to fail: video streams without it.
        body["audio"] = match d.audio_status() {
            Some(report) => serde_json::to_value(report).unwrap_or_default(),
            None => serde_json::to_value(crate::media::AudioState::Off).unwrap_or_default(),
        };
        match d.health.check() {
            Ok(()) => Ok(body),
            Err(reason) => {
                body["reason"] = reason.into();
                Err(body)
            }
        }
    }

    fn metrics(&self) -> Vec<Metric> {
        let d = &self.desktop;
        let nets = d.stats.viewers();
        let mut rtt = Metric::gauge("kelpie_rtt_seconds", "Round-trip time to each viewer, from RTCP.", 0.0);
        rtt.samples =
            nets.iter().filter_map(|(id, n)| Some((vec![("viewer", format!("v{id}"))], n.rtt_seconds?))).collect();
        let mut lost = Metric::counter("kelpie_packets_lost_total", "RTP packets each viewer reported lost.", 0.0);
        lost.samples = nets.iter().map(|(id, n)| (vec![("viewer", format!("v{id}"))], n.packets_lost as f64)).collect();
        let input = &self.input.counters;
        let mut input_events = Metric::counter("kelpie_input_events_total", "Input events from viewers.", 0.0);
        input_events.samples = vec![
            (vec![("result", "applied".into())], input.applied.load(Ordering::Relaxed) as f64),
            (vec![("result", "dropped".into())], input.dropped.load(Ordering::Relaxed) as f64),
            (vec![("result", "malformed".into())], self.room.malformed.load(Ordering::Relaxed) as f64),
        ];
        let mut refused = Metric::counter(
            "kelpie_refused_total",
            "Messages refused because the participant lacked control or its role forbids them.",
            0.0,
        );
        refused.samples =
            self.room.refused().into_iter().map(|(a, n)| (vec![("what", a.as_str().into())], n as f64)).collect();
        let mut pads = Metric::counter(
            "kelpie_gamepad_messages_total",
            "Gamepad messages from pages: applied, refused (no control, or too fast) or malformed.",
            0.0,
        );
        let refused_pads = self.room.refused().into_iter().find(|(a, _)| *a == crate::room::state::Act::Gamepad);
        pads.samples = vec![
            (vec![("result", "applied".into())], self.gamepads.as_ref().map_or(0, |g| g.counts().updates) as f64),
            (vec![("result", "refused".into())], refused_pads.map_or(0, |(_, n)| n) as f64),
            (vec![("result", "malformed".into())], self.room.malformed_gamepad.load(Ordering::Relaxed) as f64),
        ];
        let mut readers = Metric::gauge("kelpie_gamepad_readers", "Apps reading each virtual gamepad.", 0.0);
        if let Some(g) = &self.gamepads {
            readers.samples =
                g.readers().iter().enumerate().map(|(i, n)| (vec![("pad", i.to_string())], *n as f64)).collect();
        }
        let mut kinds = Metric::gauge("kelpie_transport_viewers", "Viewers by media transport.", 0.0);
        kinds.samples = d.kinds().into_iter().map(|(k, n)| (vec![("transport", k.to_string())], n as f64)).collect();
        let mut socket_frames = Metric::counter(
            "kelpie_socket_frames_total",
            "Video frames each WebSocket viewer was sent, or skipped because its socket was busy.",
            0.0,
        );
        for (id, sent, skipped) in d.socket_counts() {
            let viewer = format!("v{id}");
            socket_frames.samples.push((vec![("viewer", viewer.clone()), ("result", "sent".into())], sent as f64));
            socket_frames.samples.push((vec![("viewer", viewer), ("result", "skipped".into())], skipped as f64));
        }
        let figures = d.adaptation_figures();
        let per_viewer = |mut m: Metric, f: &dyn Fn(&crate::media::ViewerAdapt) -> Option<f64>| {
            m.samples =
                figures.iter().filter_map(|(id, v)| Some((vec![("viewer", format!("v{id}"))], f(v)?))).collect();
            m
        };
        let estimate = per_viewer(
            Metric::gauge(
                "kelpie_viewer_estimate_bps",
                "Bandwidth estimate of each viewer's link (congestion feedback), bits per second.",
                0.0,
            ),
            &|v| v.snapshot.measured_bps(),
        );
        let delivered = per_viewer(
            Metric::gauge(
                "kelpie_viewer_delivered_bps",
                "What each viewer's link delivered over the last half second, bits per second.",
                0.0,
            ),
            &|v| Some(v.snapshot.delivered_bps),
        );
        let queue = per_viewer(
            Metric::gauge(
                "kelpie_viewer_queue_seconds",
                "Standing queue on each viewer's link, from its packets' one-way delay.",
                0.0,
            ),
            &|v| Some(v.snapshot.queue.as_secs_f64()),
        );
        let (_, _, adapted) = d.stream_settings();
        let mut roles = Metric::gauge("kelpie_participants", "Participants in the room, by role.", 0.0);
        roles.samples = self.room.roles().into_iter().map(|(r, n)| (vec![("role", r.to_string())], n as f64)).collect();
        vec![
            Metric::gauge("kelpie_viewers", "Connected viewers.", self.room.len() as f64),
            roles,
            kinds,
            socket_frames,
            Metric::counter(
                "kelpie_frames_encoded_total",
                "Frames encoded by the shared encoder.",
                d.health.frames() as f64,
            ),
            Metric::gauge(
                "kelpie_delivered_fps",
                "Frames encoded per second (one stream shared by all viewers).",
                d.stats.fps(),
            ),
            Metric::gauge("kelpie_bitrate_bps", "Encoded video bitrate in bits per second.", d.stats.bitrate_bps()),
            Metric::gauge(
                "kelpie_encode_seconds",
                "Mean time a frame spends in the encoder.",
                d.stats.mean_encode_seconds(),
            ),
            Metric::gauge(
                "kelpie_encoder_target_bps",
                "The bitrate adaptation runs the shared encoder at, bits per second.",
                adapted.map_or(f64::NAN, |a| f64::from(a.0) * 1e3),
            ),
            Metric::gauge(
                "kelpie_target_framerate",
                "The frame rate adaptation runs the capture at.",
                adapted.map_or(f64::NAN, |a| f64::from(a.1)),
            ),
            estimate,
            delivered,
            queue,
            rtt,
            lost,
            input_events,
            refused,
            pads,
            readers,
            Metric::counter(
                "kelpie_errors_total",
                "Pipeline and viewer errors.",
                d.stats.errors.load(Ordering::Relaxed) as f64,
            ),
            stage_metric(crate::latency::global()),
            Metric::counter(
                "kelpie_frames_timed_total",
                "Frames timed from their first damage to their first packet into a viewer's webrtcbin.",
                crate::latency::global().frames() as f64,
            ),
        ]
    }
}

/// Each frame stage's (and the input path's) p50 and p95 over the last
/// [`crate::latency::WINDOW`] samples.
fn stage_metric(latency: &crate::latency::Latency) -> Metric {
    let mut m = Metric::gauge(
        "kelpie_frame_stage_seconds",
        "Time per stage of a frame's way (first damage to first packet sent) and of input presses, \
         by quantile over the last 600 samples.",
        0.0,
    );
    m.samples = latency
        .summary()
        .into_iter()
        .flat_map(|(stage, _, p50, p95)| {
            [("0.5", p50), ("0.95", p95)]
                .map(|(q, v)| (vec![("stage", stage.name().to_string()), ("quantile", q.to_string())], v))
        })
        .collect();
    m
}

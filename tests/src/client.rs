//! `ViewerClient`: a WebRTC viewer built on webrtc-rs that talks to Kelpie the way the
//! browser client does.
//!
//! It opens `/ws` with a browser-like `Origin`, takes the server's offer, answers with a
//! receive-only H.264 video section and the server's `input` data channel, trickles ICE
//! both ways, and then counts what arrives (see [`ViewerStats`]). It never decodes video:
//! RTP is depacketized just far enough to know frame boundaries, keyframes and the SPS size.
//!
//! Only loopback host candidates are used by default (see [`ViewerOptions::udp_addrs`]) and
//! the `ice_servers` of the `welcome` message are ignored, so tests need no network and no
//! STUN server. Every public `async fn` is bounded by a timeout.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::data_channel::{DataChannel, DataChannelEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    register_default_interceptors, MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCPeerConnectionIceEvent,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
};

use crate::error::{ClientError, Result};
pub use crate::signalling::SignallingSocket;
use crate::signalling::{self, Incoming, Origin, SEND_TIMEOUT};
use crate::video::FrameTracker;
pub use crate::video::ViewerStats;

/// Label of the data channel the server creates for input.
pub const INPUT_CHANNEL: &str = "input";

/// Bound on a single webrtc-rs operation (set description, add candidate, send, close).
const OP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often `wait_for` re-checks the statistics.
const POLL_INTERVAL: Duration = Duration::from_millis(5);

/// How a [`ViewerClient`] connects.
#[derive(Debug, Clone)]
pub struct ViewerOptions {
    /// The `Origin` header of the WebSocket upgrade.
    pub origin: Origin,
    /// Deadline for the whole connect: WebSocket, offer/answer, ICE, DTLS and the data
    /// channel opening.
    pub connect_timeout: Duration,
    /// Send `{"type":"ice","candidate":""}` when gathering completes, as the browser client
    /// does for a null candidate.
    pub send_end_of_candidates: bool,
    /// Local UDP addresses to gather host candidates on (port 0 = ephemeral). A wildcard
    /// (`0.0.0.0:0`) means every non-loopback IPv4 interface of this machine.
    ///
    /// The default is `127.0.0.1:0`, which needs a server gathering loopback candidates
    /// (`kelpie --ice-address 127.0.0.1`): libnice skips loopback when the machine has any
    /// other interface. Add `0.0.0.0:0` to talk to a server using its interface addresses.
    pub udp_addrs: Vec<String>,
    /// Send RTCP PLI at this interval, from the first packet until a complete keyframe has
    /// arrived, as Chrome does when it has nothing it can decode. Off by default: Kelpie is
    /// supposed to send a keyframe to a joining viewer unprompted, and tests check that.
    pub pli_until_keyframe: Option<Duration>,
    /// Extra headers on the WebSocket upgrade (`Authorization`, `Cookie`, …).
    pub headers: Vec<(String, String)>,
}

impl Default for ViewerOptions {
    fn default() -> Self {
        Self {
            origin: Origin::SameAsUrl,
            connect_timeout: Duration::from_secs(15),
            send_end_of_candidates: true,
            udp_addrs: vec!["127.0.0.1:0".to_owned()],
            pli_until_keyframe: None,
            headers: Vec::new(),
        }
    }
}

/// The server's `welcome` message.
#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    /// `viewer_id`.
    pub viewer_id: String,
    /// `owner`, `guest` or `viewer`.
    pub role: String,
    /// `ice_servers`, as sent (unused by this client: it stays on loopback).
    pub ice_servers: Value,
}

/// State shared with webrtc-rs callbacks and background tasks.
struct Shared {
    tracker: Mutex<FrameTracker>,
    /// The remote video track, for RTCP PLI.
    track: Mutex<Option<Arc<dyn TrackRemote>>>,
    /// Background tasks spawned from callbacks, aborted on close.
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn tracker(&self) -> MutexGuard<'_, FrameTracker> {
        // A panic while holding the lock leaves plain counters behind; they are still usable.
        self.tracker.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn abort_tasks(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        for task in tasks.drain(..) {
            task.abort();
        }
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let handle = tokio::spawn(task);
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(handle);
    }
}

/// What the webrtc-rs driver tells us, forwarded to channels so that nothing slow (or
/// re-entrant into the peer connection, which would deadlock) runs inside its callbacks.
struct Handler {
    shared: Arc<Shared>,
    /// Local candidates; `None` marks the end of gathering.
    candidates: mpsc::UnboundedSender<Option<RTCIceCandidateInit>>,
    data_channels: mpsc::UnboundedSender<Arc<dyn DataChannel>>,
    /// See [`ViewerOptions::pli_until_keyframe`].
    pli_until_keyframe: Option<Duration>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_candidate(&self, event: RTCPeerConnectionIceEvent) {
        if let Ok(init) = event.candidate.to_json() {
            let _ = self.candidates.send(Some(init));
        }
    }

    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.candidates.send(None);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.shared.tracker().stats_mut().peer_state = state.to_string();
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        let _ = self.data_channels.send(data_channel);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        *self.shared.track.lock().unwrap_or_else(|e| e.into_inner()) = Some(track.clone());
        if let Some(interval) = self.pli_until_keyframe {
            self.shared.spawn(request_keyframes(track.clone(), self.shared.clone(), interval));
        }
        let shared = self.shared.clone();
        self.shared.spawn(receive_rtp(track, shared));
    }
}

/// Sends RTCP PLI every `interval` until a complete keyframe has arrived.
async fn request_keyframes(track: Arc<dyn TrackRemote>, shared: Arc<Shared>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        if shared.tracker().stats().keyframes > 0 {
            return;
        }
        if send_pli(track.as_ref()).await.is_err() {
            return;
        }
    }
}

/// Sends one RTCP picture loss indication for the track's first SSRC.
async fn send_pli(track: &dyn TrackRemote) -> Result<()> {
    let ssrcs = bounded(track.ssrcs()).await?;
    let media_ssrc = ssrcs.first().copied().ok_or_else(|| ClientError::Protocol("video track without SSRC".into()))?;
    bounded(track.write_rtcp(vec![Box::new(PictureLossIndication { sender_ssrc: 0, media_ssrc })])).await??;
    Ok(())
}

/// Drains the video track promptly (the driver drops packets if its queue fills) and feeds
/// the frame tracker.
async fn receive_rtp(track: Arc<dyn TrackRemote>, shared: Arc<Shared>) {
    while let Some(event) = track.poll().await {
        match event {
            TrackRemoteEvent::OnRtpPacket(packet) => {
                let h = &packet.header;
                shared.tracker().on_packet(
                    std::time::Instant::now(),
                    h.sequence_number,
                    h.timestamp,
                    h.marker,
                    h.payload_type,
                    &packet.payload,
                );
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
}

/// A connected viewer. Dropping it tears the connection down in the background; call
/// [`ViewerClient::close`] to do so deterministically.
pub struct ViewerClient {
    pc: Arc<dyn PeerConnection>,
    data_channel: Arc<dyn DataChannel>,
    shared: Arc<Shared>,
    outgoing: mpsc::UnboundedSender<Message>,
    welcome: Welcome,
    offer_sdp: String,
    answer_sdp: String,
    started: Instant,
    tasks: Vec<JoinHandle<()>>,
}

impl ViewerClient {
    /// Connects like a browser. `origin`: `None` sends the origin matching `ws_url`,
    /// `Some(v)` sends `v`. Returns once the `input` data channel is open.
    pub async fn connect(ws_url: &str, origin: Option<&str>) -> Result<ViewerClient> {
        let options = ViewerOptions { origin: Origin::from_option(origin), ..ViewerOptions::default() };
        Self::connect_with(ws_url, options).await
    }

    /// Connects with explicit [`ViewerOptions`].
    pub async fn connect_with(ws_url: &str, options: ViewerOptions) -> Result<ViewerClient> {
        let started = Instant::now();
        let deadline = started + options.connect_timeout;
        let shared = Arc::new(Shared {
            tracker: Mutex::new(FrameTracker::new(started.into_std())),
            track: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
        });

        let ws =
            tokio::time::timeout_at(deadline, signalling::open_with_headers(ws_url, &options.origin, &options.headers))
                .await
                .map_err(|_| ClientError::timeout("websocket handshake", options.connect_timeout))??;
        let (mut sink, mut stream) = ws.split();
        let offer = read_offer(&mut stream, deadline, options.connect_timeout).await?;

        let (cand_tx, cand_rx) = mpsc::unbounded_channel();
        let (dc_tx, mut dc_rx) = mpsc::unbounded_channel();
        let handler = Handler {
            shared: shared.clone(),
            candidates: cand_tx,
            data_channels: dc_tx,
            pli_until_keyframe: options.pli_until_keyframe,
        };
        let pc = build_peer_connection(handler, options.udp_addrs.clone()).await?;

        // From here on the peer connection exists and must be closed on any failure.
        let answer_sdp = match answer_offer(pc.as_ref(), &offer.sdp, &mut sink).await {
            Ok(sdp) => sdp,
            Err(e) => {
                let _ = tokio::time::timeout(OP_TIMEOUT, pc.close()).await;
                return Err(e);
            }
        };
        for msg in &offer.early_candidates {
            add_remote_candidate(pc.as_ref(), msg, &shared).await;
        }

        // Background plumbing: one writer owns the sink; local candidates go through it
        // only now, after the answer, so the server never sees a candidate first.
        let (out_tx, out_rx) = mpsc::unbounded_channel();
        let end_of_candidates = options.send_end_of_candidates;
        let mut tasks = vec![
            tokio::spawn(write_socket(sink, out_rx)),
            tokio::spawn(forward_candidates(cand_rx, out_tx.clone(), end_of_candidates)),
            tokio::spawn(read_socket(stream, pc.clone(), shared.clone(), out_tx.clone())),
        ];

        // The server's `input` channel opening means ICE, DTLS and SCTP all worked.
        let Some(data_channel) = input_channel(&mut dc_rx, &shared, deadline).await else {
            for task in &tasks {
                task.abort();
            }
            shared.abort_tasks();
            let _ = tokio::time::timeout(OP_TIMEOUT, pc.close()).await;
            let stats = shared.tracker().stats().clone();
            if let Some((code, message)) = stats.server_error {
                return Err(ClientError::Server { code, message });
            }
            if stats.signalling_closed {
                return Err(ClientError::Closed { code: stats.close_code, reason: "before the data channel".into() });
            }
            let what = format!("the {INPUT_CHANNEL:?} data channel (peer state {})", stats.peer_state);
            return Err(ClientError::timeout(what, options.connect_timeout));
        };
        shared.tracker().stats_mut().data_channel_open = true;
        let watcher = watch_data_channel(data_channel.clone(), shared.clone());
        tasks.push(tokio::spawn(watcher));

        Ok(ViewerClient {
            pc,
            data_channel,
            shared,
            outgoing: out_tx,
            welcome: offer.welcome,
            offer_sdp: offer.sdp,
            answer_sdp,
            started,
            tasks,
        })
    }

    /// The server's `welcome`.
    pub fn welcome(&self) -> &Welcome {
        &self.welcome
    }

    /// Our `viewer_id`.
    pub fn viewer_id(&self) -> &str {
        &self.welcome.viewer_id
    }

    /// Our role: `owner`, `guest` or `viewer`.
    pub fn role(&self) -> &str {
        &self.welcome.role
    }

    /// The SDP the server offered.
    pub fn offer_sdp(&self) -> &str {
        &self.offer_sdp
    }

    /// The SDP we answered.
    pub fn answer_sdp(&self) -> &str {
        &self.answer_sdp
    }

    /// Time since `connect` started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// A snapshot of the statistics.
    pub fn stats(&self) -> ViewerStats {
        self.shared.tracker().stats().clone()
    }

    /// Sends one input message (serialised JSON) on the `input` channel.
    pub async fn send_input(&self, message: &Value) -> Result<()> {
        self.send_raw_data_channel(&message.to_string()).await
    }

    /// Sends arbitrary text on the `input` channel (for garbage-input tests).
    pub async fn send_raw_data_channel(&self, text: &str) -> Result<()> {
        bounded(self.data_channel.send_text(text)).await??;
        Ok(())
    }

    /// Sends a binary message on the `input` channel (which the protocol does not define).
    pub async fn send_data_channel_binary(&self, data: &[u8]) -> Result<()> {
        bounded(self.data_channel.send(bytes::BytesMut::from(data))).await??;
        Ok(())
    }

    /// Asks for a keyframe the way the browser does: `{"t":"kf"}` on the data channel.
    pub async fn request_keyframe(&self) -> Result<()> {
        self.send_input(&json!({"t": "kf"})).await
    }

    /// Asks for a keyframe the RTP way: an RTCP picture loss indication.
    pub async fn send_pli(&self) -> Result<()> {
        let track = self
            .shared
            .track
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| ClientError::Protocol("no video track yet".into()))?;
        send_pli(track.as_ref()).await
    }

    /// Sends a signalling message (e.g. `{"type":"ping"}`) on the WebSocket.
    pub fn send_signalling(&self, message: &Value) -> Result<()> {
        self.outgoing
            .send(Message::text(message.to_string()))
            .map_err(|_| ClientError::Closed { code: None, reason: "signalling writer stopped".into() })
    }

    /// Sends `ping` and waits for the `pong`.
    pub async fn ping(&self, timeout: Duration) -> Result<()> {
        let before = self.stats().pongs;
        self.send_signalling(&json!({"type": "ping"}))?;
        self.wait_for("a pong", timeout, |s| s.pongs > before).await.map(|_| ())
    }

    /// Waits until `ready` holds for the statistics; returns the snapshot that satisfied it.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        ready: impl Fn(&ViewerStats) -> bool,
    ) -> Result<ViewerStats> {
        let deadline = Instant::now() + timeout;
        loop {
            let stats = self.stats();
            if ready(&stats) {
                return Ok(stats);
            }
            if Instant::now() >= deadline {
                return Err(ClientError::timeout(format!("{what}; stats: {stats:?}"), timeout));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Waits until at least `n` complete frames have arrived in total.
    pub async fn wait_for_frames(&self, n: u64, timeout: Duration) -> Result<ViewerStats> {
        self.wait_for(&format!("{n} frames"), timeout, |s| s.frames >= n).await
    }

    /// Waits until at least `n` complete keyframes have arrived in total.
    pub async fn wait_for_keyframes(&self, n: u64, timeout: Duration) -> Result<ViewerStats> {
        self.wait_for(&format!("{n} keyframes"), timeout, |s| s.keyframes >= n).await
    }

    /// Waits for the server to drop us (peer connection failed/closed or socket closed).
    pub async fn wait_for_disconnect(&self, timeout: Duration) -> Result<ViewerStats> {
        self.wait_for("disconnection", timeout, ViewerStats::is_disconnected).await
    }

    /// Complete frames per second over `window`, measured after the first frame (waiting
    /// up to 10 s for it), so connection setup does not dilute the rate.
    pub async fn measure_fps(&self, window: Duration) -> Result<f64> {
        self.wait_for_frames(1, Duration::from_secs(10)).await?;
        let (start, before) = (Instant::now(), self.stats().frames);
        tokio::time::sleep(window).await;
        let (elapsed, after) = (start.elapsed(), self.stats().frames);
        Ok((after - before) as f64 / elapsed.as_secs_f64())
    }

    /// Closes the peer connection and the socket, and stops the background tasks.
    pub async fn close(mut self) -> Result<()> {
        let _ = self.outgoing.send(Message::Close(None));
        let closed = tokio::time::timeout(OP_TIMEOUT, self.pc.close()).await;
        // Give the writer a moment to deliver the close frame.
        let _ = tokio::time::timeout(Duration::from_millis(200), async {
            if let Some(writer) = self.tasks.first_mut() {
                let _ = writer.await;
            }
        })
        .await;
        self.abort_tasks();
        match closed {
            Ok(result) => Ok(result?),
            Err(_) => Err(ClientError::timeout("peer connection close", OP_TIMEOUT)),
        }
    }

    fn abort_tasks(&mut self) {
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.shared.abort_tasks();
    }
}

impl Drop for ViewerClient {
    fn drop(&mut self) {
        self.abort_tasks();
        // Stop the webrtc-rs driver too, or its sockets and tasks outlive the client.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let pc = self.pc.clone();
            runtime.spawn(async move {
                let _ = tokio::time::timeout(OP_TIMEOUT, pc.close()).await;
            });
        }
    }
}

/// Awaits a webrtc-rs operation for at most [`OP_TIMEOUT`].
async fn bounded<T>(op: impl std::future::Future<Output = T>) -> Result<T> {
    tokio::time::timeout(OP_TIMEOUT, op).await.map_err(|_| ClientError::timeout("a webrtc operation", OP_TIMEOUT))
}

/// A receive-only H.264 peer connection on `udp_addrs` (loopback by default), with a browser's feedback set
/// (NACK, PLI, TWCC, receiver reports) from the default interceptors.
async fn build_peer_connection(handler: Handler, udp_addrs: Vec<String>) -> Result<Arc<dyn PeerConnection>> {
    // The default codec list has H.264 in packetization modes 0 and 1 and several profiles;
    // webrtc-rs answers with the offer's payload types, falling back to a MIME-only match
    // if the offered profile-level-id is not among them.
    let mut media_engine = MediaEngine::default();
    media_engine.register_default_codecs()?;
    let registry = register_default_interceptors(Registry::new(), &mut media_engine)?;
    // No mDNS: it would bind the multicast port, once per viewer in load tests, for
    // candidates a test on one machine never uses.
    let settings = SettingEngineBuilder::new().with_multicast_dns_mode(MulticastDnsMode::Disabled).build();
    let pc = PeerConnectionBuilder::new()
        .with_configuration(RTCConfigurationBuilder::new().build())
        .with_media_engine(media_engine)
        .with_interceptor_registry(registry)
        .with_setting_engine(settings)
        .with_handler(Arc::new(handler))
        .with_udp_addrs(udp_addrs)
        .build();
    Ok(Arc::new(bounded(pc).await??))
}

/// What the server sends before we can answer.
struct ServerOffer {
    welcome: Welcome,
    sdp: String,
    /// `ice` messages that arrived before the offer; applied after it.
    early_candidates: Vec<Value>,
}

/// Reads `welcome`, then `offer`. An `error` (e.g. `server_full`) becomes
/// [`ClientError::Server`].
async fn read_offer(stream: &mut WsRead, deadline: Instant, limit: Duration) -> Result<ServerOffer> {
    let mut early_candidates = Vec::new();
    let mut welcome = None;
    loop {
        let msg = next_message(stream, deadline, limit, "welcome and offer").await?;
        let msg = signalling::reject_server_error(msg)?;
        match (msg["type"].as_str(), welcome.take()) {
            (Some("welcome"), None) => welcome = Some(parse_welcome(&msg)?),
            (Some("offer"), Some(welcome)) => {
                let sdp = msg["sdp"].as_str().ok_or_else(|| ClientError::Protocol("offer without sdp".into()))?;
                return Ok(ServerOffer { welcome, sdp: sdp.to_owned(), early_candidates });
            }
            (Some("ice"), w) => {
                welcome = w;
                early_candidates.push(msg);
            }
            // The room's view (participants, control) and notices may come at any time.
            (Some("room" | "notice"), w) => welcome = w,
            _ => {
                let what = format!("unexpected message before the offer: {msg}");
                return Err(ClientError::Protocol(what));
            }
        }
    }
}

/// Applies the offer, creates the answer and sends it; returns the answer SDP.
async fn answer_offer(pc: &dyn PeerConnection, offer_sdp: &str, sink: &mut WsWrite) -> Result<String> {
    let offer = RTCSessionDescription::offer(offer_sdp.to_owned())?;
    bounded(pc.set_remote_description(offer)).await??;
    let answer = bounded(pc.create_answer(None)).await??;
    let answer_sdp = answer.sdp.clone();
    bounded(pc.set_local_description(answer)).await??;
    let text = json!({"type": "answer", "sdp": answer_sdp}).to_string();
    tokio::time::timeout(SEND_TIMEOUT, sink.send(Message::text(text)))
        .await
        .map_err(|_| ClientError::timeout("sending the answer", SEND_TIMEOUT))??;
    Ok(answer_sdp)
}

/// Waits for the data channel labelled [`INPUT_CHANNEL`], ignoring any others. Gives up
/// early if the server refuses us or the connection fails, rather than at the deadline.
async fn input_channel(
    channels: &mut mpsc::UnboundedReceiver<Arc<dyn DataChannel>>,
    shared: &Shared,
    deadline: Instant,
) -> Option<Arc<dyn DataChannel>> {
    let mut check = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            dc = channels.recv() => {
                let dc = dc?;
                if matches!(bounded(dc.label()).await, Ok(Ok(label)) if label == INPUT_CHANNEL) {
                    return Some(dc);
                }
            }
            _ = check.tick() => {
                let tracker = shared.tracker();
                let s = tracker.stats();
                if s.server_error.is_some() || s.is_disconnected() {
                    return None;
                }
            }
            _ = tokio::time::sleep_until(deadline) => return None,
        }
    }
}

fn parse_welcome(msg: &Value) -> Result<Welcome> {
    let field = |name: &str| {
        msg[name]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| ClientError::Protocol(format!("welcome without {name}: {msg}")))
    };
    Ok(Welcome { viewer_id: field("viewer_id")?, role: field("role")?, ice_servers: msg["ice_servers"].clone() })
}

type WsRead = futures_util::stream::SplitStream<signalling::WsStream>;
type WsWrite = futures_util::stream::SplitSink<signalling::WsStream, Message>;

/// The next JSON message before `deadline`; a close is [`ClientError::Closed`].
async fn next_message(stream: &mut WsRead, deadline: Instant, limit: Duration, what: &str) -> Result<Value> {
    loop {
        let item =
            tokio::time::timeout_at(deadline, stream.next()).await.map_err(|_| ClientError::timeout(what, limit))?;
        match signalling::classify(item) {
            Some(Incoming::Text(text)) => return signalling::parse_server_message(&text),
            Some(Incoming::Binary(_)) => return Err(ClientError::Protocol("binary signalling frame".into())),
            Some(Incoming::Closed { code, reason }) => return Err(ClientError::Closed { code, reason }),
            None => {}
        }
    }
}

/// Hands a server `ice` message to webrtc-rs. Empty candidates (end of candidates) are
/// skipped; unparsable ones are counted, as a browser would log and ignore them.
async fn add_remote_candidate(pc: &dyn PeerConnection, msg: &Value, shared: &Shared) {
    let Some(candidate) = msg["candidate"].as_str() else {
        shared.tracker().stats_mut().bad_remote_candidates += 1;
        return;
    };
    if candidate.is_empty() {
        return;
    }
    let init = RTCIceCandidateInit {
        candidate: candidate.to_owned(),
        sdp_mline_index: msg["sdpMLineIndex"].as_u64().and_then(|i| u16::try_from(i).ok()),
        sdp_mid: msg["sdpMid"].as_str().map(str::to_owned),
        ..RTCIceCandidateInit::default()
    };
    if !matches!(bounded(pc.add_ice_candidate(init)).await, Ok(Ok(()))) {
        shared.tracker().stats_mut().bad_remote_candidates += 1;
    }
}

/// Owns the WebSocket sink; stops after sending a close frame or on the first failure.
async fn write_socket(mut sink: WsWrite, mut outgoing: mpsc::UnboundedReceiver<Message>) {
    while let Some(message) = outgoing.recv().await {
        let is_close = matches!(message, Message::Close(_));
        match tokio::time::timeout(SEND_TIMEOUT, sink.send(message)).await {
            Ok(Ok(())) if !is_close => {}
            _ => break,
        }
    }
}

/// Sends our ICE candidates as `{"type":"ice","candidate":…,"sdpMLineIndex":…}`.
async fn forward_candidates(
    mut candidates: mpsc::UnboundedReceiver<Option<RTCIceCandidateInit>>,
    outgoing: mpsc::UnboundedSender<Message>,
    send_end_of_candidates: bool,
) {
    while let Some(candidate) = candidates.recv().await {
        let msg = match candidate {
            Some(c) => json!({
                "type": "ice",
                "candidate": c.candidate,
                "sdpMLineIndex": c.sdp_mline_index.unwrap_or(0),
            }),
            None if send_end_of_candidates => {
                json!({"type": "ice", "candidate": "", "sdpMLineIndex": 0})
            }
            None => continue,
        };
        if outgoing.send(Message::text(msg.to_string())).is_err() {
            break;
        }
    }
}

/// Handles what the server sends after the offer: candidates, pongs, errors, the close.
async fn read_socket(
    mut stream: WsRead,
    pc: Arc<dyn PeerConnection>,
    shared: Arc<Shared>,
    outgoing: mpsc::UnboundedSender<Message>,
) {
    loop {
        let Some(incoming) = signalling::classify(stream.next().await) else {
            continue;
        };
        match incoming {
            Incoming::Text(text) => {
                let Ok(msg) = signalling::parse_server_message(&text) else {
                    continue;
                };
                match msg["type"].as_str() {
                    Some("ice") => add_remote_candidate(pc.as_ref(), &msg, &shared).await,
                    Some("pong") => shared.tracker().stats_mut().pongs += 1,
                    Some("error") => {
                        shared.tracker().stats_mut().server_error = Some((
                            msg["code"].as_str().unwrap_or_default().to_owned(),
                            msg["message"].as_str().unwrap_or_default().to_owned(),
                        ));
                    }
                    _ => {}
                }
            }
            Incoming::Binary(_) => {}
            Incoming::Closed { code, .. } => {
                let mut tracker = shared.tracker();
                let stats = tracker.stats_mut();
                stats.signalling_closed = true;
                stats.close_code = code;
                drop(tracker);
                // Finish the close handshake from our side too.
                let _ = outgoing.send(Message::Close(None));
                break;
            }
        }
    }
}

/// Keeps the data channel's events drained and notes when it closes.
async fn watch_data_channel(data_channel: Arc<dyn DataChannel>, shared: Arc<Shared>) {
    while let Some(event) = data_channel.poll().await {
        match event {
            DataChannelEvent::OnMessage(_) => {
                shared.tracker().stats_mut().data_channel_messages += 1;
            }
            DataChannelEvent::OnClose => break,
            _ => {}
        }
    }
    shared.tracker().stats_mut().data_channel_open = false;
}

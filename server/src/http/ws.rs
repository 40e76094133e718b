//! The participant's WebSocket: the I/O shell around [`Session`] that admits a participant
//! to the room, relays offer/answer/ICE to its transport, carries the room's views and
//! notices to the browser, and, when media travels on the socket itself (the WebSocket
//! transport), carries video down and data-channel messages both ways as binary frames.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitStream, StreamExt};
use tokio::sync::mpsc::{self, UnboundedReceiver};
use tracing::Instrument as _;

use super::ws_writer::Writer;
use super::{App, AuthedUser};
use crate::room::{Liveness, Reservation};
use crate::signalling::session::truncate_reason;
use crate::signalling::{Action, CodecOutcome, ErrorCode, Event, ServerMessage, Session, Start, StreamLimits};
use crate::transport::feed::Feed;
use crate::transport::{Kind, OpenError, TransportEvent, Wire};
use crate::turn::ViewerIce;

/// The socket reads frames up to this size, so that a message somewhat over the session's
/// own limits (256 KiB of text, 128 KiB binary) is still answered with `too_large`;
/// anything larger is cut off while being read (never buffered whole) and closes the
/// socket with 1009.
const TRANSPORT_MAX_MESSAGE: usize = 1024 * 1024;
/// WebSocket close code for a message too big to process (RFC 6455).
const CLOSE_TOO_BIG: u16 = 1009;
/// WebSocket pings keep NATs open and reveal dead peers.
const PING_EVERY: Duration = Duration::from_secs(2);
/// A viewer silent for this long (no frame, no pong) is gone. With PING_EVERY this
/// removes a vanished browser well within 10 s.
const SILENCE_LIMIT: Duration = Duration::from_secs(8);

/// A browser's User-Agent is logged at most this long.
const MAX_USER_AGENT_CHARS: usize = 200;

/// `/ws?transport=websocket`: the transport the page wants to start on (the server's
/// `--transport` decides whether it may).
#[derive(Debug, serde::Deserialize)]
pub struct WsParams {
    #[serde(default)]
    transport: Option<Kind>,
}

pub async fn upgrade(
    State(app): State<Arc<App>>,
    user: Option<Extension<AuthedUser>>,
    headers: HeaderMap,
    Query(params): Query<WsParams>,
    ws: WebSocketUpgrade,
) -> Response {
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if !super::origin_allowed(origin, host, &app.allowed_origins) {
        tracing::warn!(
            origin = origin.unwrap_or(""),
            host = host.unwrap_or(""),
            "refused WebSocket from a foreign origin (the Origin must match the Host header, or be listed in \
             --allowed-origins; behind a proxy, forward Host with its port, e.g. nginx `proxy_set_header Host $http_host`)"
        );
        return (StatusCode::FORBIDDEN, "WebSocket origin not allowed\n").into_response();
    }
    // For the log lines that are about the browser (it cannot decode H.264, say).
    let user_agent: String = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_AGENT_CHARS)
        .collect();
    let mut response =
        ws.max_message_size(TRANSPORT_MAX_MESSAGE).max_frame_size(TRANSPORT_MAX_MESSAGE).on_upgrade(move |socket| {
            let user = user.map_or_else(AuthedUser::anonymous_owner, |Extension(u)| u);
            serve(socket, app, user, params.transport, user_agent)
        });
    // Media may travel on this socket: proxies that honour it (nginx) must not buffer.
    response.headers_mut().insert("x-accel-buffering", header::HeaderValue::from_static("no"));
    response
}

/// Carries out actions; returns false once the socket is to be closed.
async fn execute(actions: Vec<Action>, p: &mut Participant) -> bool {
    let mut open = true;
    for action in actions {
        let room = &p.app.room;
        match action {
            Action::Send(m) => open &= p.writer.send(Message::Text(m.to_json().into())),
            Action::ApplyAnswer(sdp) => room.transports().apply_answer(p.id, &sdp),
            Action::AddRemoteIce { candidate, sdp_mline_index } => {
                room.transports().add_ice(p.id, sdp_mline_index, &candidate)
            }
            Action::RequestKeyframe => room.transports().request_keyframe(),
            Action::Control { action, to } => room.control(p.id, action, to.as_deref()),
            Action::Inbound(text) => room.on_inbound(p.id, &text),
            Action::Ack { seq, at_us } => p.writer.ack(seq, at_us),
            Action::Mic(packet) => p.writer.mic(&packet),
            Action::Switch { kind, reason } => {
                let why = if reason.is_empty() { "asked by the page" } else { reason.as_str() };
                tracing::info!(transport = %kind, "switching transport: {why}");
                let old = p.app.room.clone();
                let id = p.id;
                let _ = tokio::task::spawn_blocking(move || old.transports().close(id)).await;
                p.writer.set_feed(None);
                match p.open(kind).await {
                    Ok(events) => p.media = events,
                    Err(e) => {
                        tracing::error!(transport = %kind, "cannot open a transport: {e}");
                        let refusal = Session::refuse(ErrorCode::Internal, e.to_string());
                        Box::pin(execute(refusal, p)).await;
                        return false;
                    }
                }
            }
            Action::Codec(outcome) => {
                p.app.codec.record(outcome);
                match outcome {
                    CodecOutcome::Websocket => tracing::info!(user_agent = %p.user_agent, "{}", outcome.describe()),
                    _ => tracing::warn!(user_agent = %p.user_agent, "{}", outcome.describe()),
                }
            }
            Action::Close { code, reason } => {
                tracing::info!(participant = p.id, code, "closing the socket: {reason}");
                p.writer.send(Message::Close(Some(CloseFrame { code, reason: reason.into() })));
                open = false;
            }
        }
    }
    open
}

async fn serve(socket: WebSocket, app: Arc<App>, who: AuthedUser, asked: Option<Kind>, user_agent: String) {
    let (sink, mut stream) = socket.split();
    let room = app.room.clone();
    // The writer asks for keyframes for a socket viewer that skipped frames.
    let (writer, written) = Writer::spawn(sink, move || room.transports().request_keyframe());
    // The slot is taken before the greeting, so concurrent connects cannot overfill.
    let slot = match app.room.reserve() {
        Ok(slot) => slot,
        Err(full) => {
            tracing::warn!(user = who.user, "{full}");
            let mut p = Participant::new(0, app, who, writer, ViewerIce::default());
            execute(Session::refuse(ErrorCode::ServerFull, full.to_string()), &mut p).await;
            drop(p);
            let _ = written.await;
            await_close(&mut stream).await;
            return;
        }
    };
    let span = tracing::info_span!("participant", id = slot.id, user = %who.user, role = %who.role);
    let ice = super::turn_broker::viewer_ice(&app.ice, &who.user, super::now_unix()).instrument(span.clone()).await;
    let mut p = Participant::new(slot.id, app, who, writer, ice);
    p.user_agent = user_agent;
    participant(slot, p, stream, written, asked).instrument(span).await;
}

/// How long a closing socket waits for the browser's half of the close handshake.
const CLOSE_WAIT: Duration = Duration::from_secs(1);

/// After our close frame: reads (and drops) until the browser's close frame, so that the
/// connection ends with a FIN, not a reset that could lose the close frame and its reason
/// (the browser would report 1006 instead of our code).
async fn await_close(stream: &mut SplitStream<WebSocket>) {
    let _ = tokio::time::timeout(CLOSE_WAIT, async {
        while let Some(Ok(msg)) = stream.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// What a participant's task holds.
struct Participant {
    id: u64,
    app: Arc<App>,
    who: AuthedUser,
    /// ICE servers and TURN credentials, made once: the welcome gives the browser the
    /// same ones that webrtcbin gets for every WebRTC transport of this connection.
    ice: ViewerIce,
    writer: Writer,
    /// Events of the current transport (a switch replaces the channel, so a closed
    /// transport's late events are dropped with the old one).
    media: UnboundedReceiver<TransportEvent>,
    /// The browser's User-Agent (bounded, printable), for browser-specific log lines.
    user_agent: String,
}

impl Participant {
    fn new(id: u64, app: Arc<App>, who: AuthedUser, writer: Writer, ice: ViewerIce) -> Self {
        Self { id, app, who, ice, writer, media: mpsc::unbounded_channel().1, user_agent: String::new() }
    }

    /// Opens a transport of `kind` for this participant; its events come on the result.
    async fn open(&self, kind: Kind) -> Result<UnboundedReceiver<TransportEvent>, OpenError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let wire = match kind {
            Kind::Webrtc => Wire::Webrtc { ice: self.ice.clone(), inbound: self.app.room.inbound(self.id) },
            Kind::Websocket => {
                let feed = Arc::new(Feed::new());
                self.writer.set_feed(Some(feed.clone()));
                Wire::Websocket { feed }
            }
        };
        let room = self.app.room.clone();
        let id = self.id;
        match tokio::task::spawn_blocking(move || room.transports().open(id, wire, tx)).await {
            Ok(Ok(())) => Ok(rx),
            Ok(Err(e)) => {
                self.writer.set_feed(None);
                Err(e)
            }
            Err(e) => Err(OpenError(format!("transport setup panicked: {e}"))),
        }
    }
}

/// One participant's life, from the greeting to leaving the room.
async fn participant(
    slot: Reservation,
    mut p: Participant,
    mut stream: SplitStream<WebSocket>,
    mut written: tokio::task::JoinHandle<String>,
    asked: Option<Kind>,
) {
    let id = p.id;
    let kind = p.app.transport.initial(asked);
    let (mut session, greeting) = Session::start(Start {
        viewer_id: crate::room::state::name(id),
        role: p.who.role,
        user: p.who.user.clone(),
        ice_servers: p.ice.browser.clone(),
        relay_only: p.ice.relay_only,
        transport: kind,
        offered: p.app.transport.offered(),
        audio: p.app.audio,
        boot: p.app.boot.clone(),
        // The ceilings the room clamps settings to, as the page's "server default".
        stream: {
            let limits = p.app.room.limits();
            StreamLimits { framerate: limits.max_framerate, bitrate_kbps: limits.max_bitrate_kbps }
        },
    });
    if !execute(greeting, &mut p).await {
        return;
    }
    match p.open(kind).await {
        Ok(events) => p.media = events,
        Err(e) => {
            tracing::error!(transport = %kind, "cannot open a transport: {e}");
            // A transport that failed to open left nothing behind (`ViewerBranch::create`
            // undoes its own work), and the slot goes back when `slot` drops.
            execute(Session::refuse(ErrorCode::Internal, e.to_string()), &mut p).await;
            drop(p);
            let _ = written.await;
            await_close(&mut stream).await;
            return;
        }
    }
    tracing::info!(transport = %kind, "media transport opened");
    let (room_tx, mut room_rx) = mpsc::unbounded_channel::<ServerMessage>();
    p.app.room.join(slot, &p.who, room_tx);

    let mut ping = tokio::time::interval(PING_EVERY);
    let mut liveness = Liveness::new(Instant::now(), SILENCE_LIMIT);
    let mut writer_stopped = false;
    let mut we_closed = false;
    let mut read_failed = false;
    let reason = loop {
        let actions = tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(t))) => { liveness.heard(Instant::now()); session.handle(Event::ClientText(t.to_string())) }
                Some(Ok(Message::Binary(b))) => { liveness.heard(Instant::now()); session.handle(Event::ClientBinary(b.to_vec())) }
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => { liveness.heard(Instant::now()); Vec::new() }
                Some(Ok(Message::Close(_))) | None => break "closed by the browser".to_string(),
                // Frames beyond even the transport limit (or broken framing) end here.
                Some(Err(e)) => {
                    let reason = format!("frame refused: {e}");
                    p.writer.send(Message::Close(Some(CloseFrame { code: CLOSE_TOO_BIG, reason: truncate_reason(&reason).into() })));
                    read_failed = true;
                    break format!("WebSocket error: {e}");
                }
            },
            event = p.media.recv() => match event {
                Some(TransportEvent::Offer(sdp)) => session.handle(Event::LocalOffer(sdp)),
                Some(TransportEvent::Ice { candidate, sdp_mline_index }) => session.handle(Event::LocalIce { candidate, sdp_mline_index }),
                Some(TransportEvent::AnswerApplied) => session.handle(Event::AnswerApplied),
                Some(TransportEvent::AnswerRejected(why)) => session.handle(Event::AnswerRejected(why)),
                Some(TransportEvent::Connected) => {
                    tracing::info!(transport = %session.transport(), "media connected");
                    session.handle(Event::MediaConnected)
                }
                Some(TransportEvent::Failed(why)) => session.handle(Event::MediaFailed(why)),
                Some(TransportEvent::ChannelOpen) => {
                    p.app.room.channel_open(id);
                    Vec::new()
                }
                None => break "media engine gone".to_string(),
            },
            view = room_rx.recv() => match view {
                Some(msg) => vec![Action::Send(msg)],
                None => break "removed from the room".to_string(),
            },
            why = &mut written => {
                writer_stopped = true;
                break format!("socket writer stopped: {}", why.unwrap_or_else(|e| e.to_string()));
            }
            _ = ping.tick() => {
                if let Err(silence) = liveness.check(Instant::now()) {
                    break format!("no sign of life for {} s", silence.as_secs());
                }
                if !p.writer.send(Message::Ping(Vec::new().into())) {
                    break "ping failed".to_string();
                }
                Vec::new()
            }
        };
        if !execute(actions, &mut p).await || session.is_closed() {
            we_closed = true;
            break "closed by the server".to_string();
        }
    };
    // One place releases everything the participant held: input, pointer lock,
    // control, clipboard transfers, its transport and its slot.
    let room = p.app.room.clone();
    let _ = tokio::task::spawn_blocking(move || room.leave(id)).await;
    // Let the writer send what is queued (a close frame) before the socket goes.
    drop(p);
    if !writer_stopped {
        let _ = tokio::time::timeout(Duration::from_secs(2), written).await;
    }
    if we_closed {
        await_close(&mut stream).await;
    }
    if read_failed {
        // The rest of the refused frame is still unread here, so closing the socket now
        // would send a reset, and a reset makes the browser's kernel discard our close
        // frame before the page reads it (it would report 1006, not why). The socket
        // cannot be read any more; give the browser time to take the close frame first.
        tokio::time::sleep(CLOSE_WAIT).await;
    }
    tracing::info!("participant left: {reason}");
}

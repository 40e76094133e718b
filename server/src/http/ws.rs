//! The signalling WebSocket: the I/O shell around [`Session`] that admits a participant
//! to the room, relays offer/answer/ICE to its transport, and carries the room's views
//! and notices to the browser.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, StreamExt};
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tracing::Instrument as _;

use super::{App, AuthedUser};
use crate::room::{Liveness, RoomActor};
use crate::signalling::{Action, ErrorCode, Event, ServerMessage, Session};
use crate::transport::TransportEvent;

/// The transport accepts frames this large so that an oversized message can still be
/// answered with a `too_large` error; the session itself caps messages at 256 KiB.
const TRANSPORT_MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// WebSocket pings keep NATs open and reveal dead peers.
const PING_EVERY: Duration = Duration::from_secs(2);
/// A viewer silent for this long (no frame, no pong) is gone. With PING_EVERY this
/// removes a vanished browser well within 10 s.
const SILENCE_LIMIT: Duration = Duration::from_secs(8);
/// A send that takes longer than this means the client stopped reading.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn upgrade(
    State(app): State<Arc<App>>,
    user: Option<Extension<AuthedUser>>,
    headers: HeaderMap,
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
    ws.max_message_size(TRANSPORT_MAX_MESSAGE).max_frame_size(TRANSPORT_MAX_MESSAGE).on_upgrade(move |socket| {
        let user = user.map_or_else(AuthedUser::anonymous_owner, |Extension(u)| u);
        serve(socket, app, user)
    })
}

type Sink = SplitSink<WebSocket, Message>;

async fn send(sink: &mut Sink, msg: Message) -> bool {
    matches!(tokio::time::timeout(SEND_TIMEOUT, sink.send(msg)).await, Ok(Ok(())))
}

/// Carries out actions; returns false once the socket is to be closed.
async fn execute(actions: Vec<Action>, sink: &mut Sink, room: &RoomActor, id: u64) -> bool {
    let mut open = true;
    for action in actions {
        match action {
            Action::Send(m) => {
                if !send(sink, Message::Text(m.to_json().into())).await {
                    open = false;
                }
            }
            Action::ApplyAnswer(sdp) => room.transports().apply_answer(id, &sdp),
            Action::AddRemoteIce { candidate, sdp_mline_index } => {
                room.transports().add_ice(id, sdp_mline_index, &candidate)
            }
            Action::RequestKeyframe => room.transports().request_keyframe(),
            Action::Control { action, to } => room.control(id, action, to.as_deref()),
            Action::Close { code, reason } => {
                tracing::info!(participant = id, code, "closing signalling: {reason}");
                let _ = send(sink, Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                open = false;
            }
        }
    }
    open
}

async fn serve(socket: WebSocket, app: Arc<App>, who: AuthedUser) {
    let (mut sink, stream) = socket.split();
    // The slot is taken before the greeting, so concurrent connects cannot overfill.
    let slot = match app.room.reserve() {
        Ok(slot) => slot,
        Err(full) => {
            tracing::warn!(user = who.user, "{full}");
            execute(Session::refuse(ErrorCode::ServerFull, full.to_string()), &mut sink, &app.room, 0).await;
            return;
        }
    };
    let span = tracing::info_span!("participant", id = slot.id, user = %who.user, role = %who.role);
    participant(slot, sink, stream, app, who).instrument(span).await;
}

/// One participant's life, from the greeting to leaving the room.
async fn participant(
    slot: crate::room::Reservation,
    mut sink: Sink,
    mut stream: futures_util::stream::SplitStream<WebSocket>,
    app: Arc<App>,
    who: AuthedUser,
) {
    let id = slot.id;
    let ice = app.ice.for_viewer(&who.user, super::now_unix());
    let (mut session, greeting) =
        Session::start(&crate::room::state::name(id), who.role, &who.user, ice.browser.clone(), ice.relay_only);
    if !execute(greeting, &mut sink, &app.room, id).await {
        return;
    }
    let (tx, mut media) = mpsc::unbounded_channel();
    let inbound = app.room.inbound(id);
    let room = app.room.clone();
    let opened = tokio::task::spawn_blocking(move || room.transports().open(id, &ice, tx, inbound)).await;
    match opened {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::error!("cannot open a transport: {e}");
            // A transport that failed to open left nothing behind (`ViewerBranch::create`
            // undoes its own work), and the slot goes back when `slot` drops.
            execute(Session::refuse(ErrorCode::Internal, e.to_string()), &mut sink, &app.room, id).await;
            return;
        }
        Err(e) => {
            tracing::error!("transport setup panicked: {e}");
            return;
        }
    }
    let (room_tx, mut room_rx) = mpsc::unbounded_channel::<ServerMessage>();
    app.room.join(slot, &who, room_tx);

    let mut ping = tokio::time::interval(PING_EVERY);
    let mut liveness = Liveness::new(Instant::now(), SILENCE_LIMIT);
    let reason = loop {
        let actions = tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(t))) => { liveness.heard(Instant::now()); session.handle(Event::ClientText(t.to_string())) }
                Some(Ok(Message::Binary(b))) => session.handle(Event::ClientBinary(b.len())),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => { liveness.heard(Instant::now()); Vec::new() }
                Some(Ok(Message::Close(_))) | None => break "closed by the browser".to_string(),
                // Frames beyond even the transport limit end here, without a reply.
                Some(Err(e)) => break format!("WebSocket error: {e}"),
            },
            event = media.recv() => match event {
                Some(TransportEvent::Offer(sdp)) => session.handle(Event::LocalOffer(sdp)),
                Some(TransportEvent::Ice { candidate, sdp_mline_index }) => session.handle(Event::LocalIce { candidate, sdp_mline_index }),
                Some(TransportEvent::AnswerApplied) => session.handle(Event::AnswerApplied),
                Some(TransportEvent::AnswerRejected(why)) => session.handle(Event::AnswerRejected(why)),
                Some(TransportEvent::Connected) => {
                    tracing::info!("WebRTC connected");
                    session.handle(Event::MediaConnected)
                }
                Some(TransportEvent::Failed(why)) => session.handle(Event::MediaFailed(why)),
                Some(TransportEvent::ChannelOpen) => {
                    app.room.channel_open(id);
                    Vec::new()
                }
                None => break "media engine gone".to_string(),
            },
            view = room_rx.recv() => match view {
                Some(msg) => vec![Action::Send(msg)],
                None => break "removed from the room".to_string(),
            },
            _ = ping.tick() => {
                if let Err(silence) = liveness.check(Instant::now()) {
                    break format!("no sign of life for {} s", silence.as_secs());
                }
                if !send(&mut sink, Message::Ping(Vec::new().into())).await {
                    break "ping failed".to_string();
                }
                Vec::new()
            }
        };
        if !execute(actions, &mut sink, &app.room, id).await || session.is_closed() {
            break "closed by the server".to_string();
        }
    };
    // One place releases everything the participant held: input, pointer lock,
    // control, clipboard transfers, its transport and its slot.
    let room = app.room.clone();
    let _ = tokio::task::spawn_blocking(move || room.leave(id)).await;
    tracing::info!("participant left: {reason}");
}

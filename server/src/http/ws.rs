//! The signalling WebSocket: the I/O shell around [`Session`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{SplitSink, StreamExt};
use futures_util::SinkExt;
use tokio::sync::mpsc;

use super::App;
use crate::input::{parse_input, InputEvent};
use crate::media::{InputHandler, MediaEvent};
use crate::signalling::{Action, ErrorCode, Event, Session, ViewerRole};

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
    user: Option<Extension<super::AuthedUser>>,
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
        let user = user.map_or_else(|| "kelpie".to_string(), |Extension(u)| u.0);
        serve_viewer(socket, app, user)
    })
}

type Sink = SplitSink<WebSocket, Message>;

async fn send(sink: &mut Sink, msg: Message) -> bool {
    matches!(tokio::time::timeout(SEND_TIMEOUT, sink.send(msg)).await, Ok(Ok(())))
}

/// Carries out actions; returns false once the socket is to be closed.
async fn execute(actions: Vec<Action>, sink: &mut Sink, app: &App, id: u64) -> bool {
    let mut open = true;
    for action in actions {
        match action {
            Action::Send(m) => {
                if !send(sink, Message::Text(m.to_json().into())).await {
                    open = false;
                }
            }
            Action::ApplyAnswer(sdp) => app.desktop.apply_answer(id, &sdp),
            Action::AddRemoteIce { candidate, sdp_mline_index } => app.desktop.add_ice(id, sdp_mline_index, &candidate),
            Action::RequestKeyframe => app.desktop.request_keyframe(),
            Action::Close { code, reason } => {
                tracing::info!(viewer = id, code, "closing signalling: {reason}");
                let _ = send(sink, Message::Close(Some(CloseFrame { code, reason: reason.into() }))).await;
                open = false;
            }
        }
    }
    open
}

fn input_handler(app: &Arc<App>, id: u64, role: ViewerRole) -> InputHandler {
    let app = app.clone();
    Arc::new(move |text: &str| match parse_input(text) {
        Ok(InputEvent::KeyframeRequest) => app.desktop.request_keyframe(),
        Ok(event) if role == ViewerRole::Controller => app.handle_control(id, event),
        Ok(_) => {
            app.input.counters.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        Err(e) => {
            app.input.counters.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(viewer = id, "input dropped: {e}");
        }
    })
}

async fn serve_viewer(socket: WebSocket, app: Arc<App>, user: String) {
    let id = app.next_viewer_id();
    let (mut sink, mut stream) = socket.split();
    if app.desktop.viewer_count() >= app.max_viewers {
        let msg = format!("the desktop already has its maximum of {} viewers", app.max_viewers);
        tracing::warn!(viewer = id, "{msg}");
        execute(Session::refuse(ErrorCode::ServerFull, msg), &mut sink, &app, id).await;
        return;
    }
    let role = ViewerRole::Controller;
    let ice = app.ice.for_viewer(&user, super::now_unix());
    let (mut session, greeting) = Session::start(&format!("v{id}"), role, ice.browser.clone(), ice.relay_only);
    if !execute(greeting, &mut sink, &app, id).await {
        return;
    }
    let (tx, mut media) = mpsc::unbounded_channel();
    let desktop = app.desktop.clone();
    let on_input = input_handler(&app, id, role);
    let added = tokio::task::spawn_blocking(move || desktop.add_viewer(id, &ice, tx, on_input)).await;
    match added {
        Ok(Ok(())) => tracing::info!(viewer = id, user, "viewer joined"),
        Ok(Err(e)) => {
            tracing::error!(viewer = id, "cannot add viewer: {e}");
            execute(Session::refuse(ErrorCode::Internal, e.to_string()), &mut sink, &app, id).await;
            return;
        }
        Err(e) => {
            tracing::error!(viewer = id, "viewer setup panicked: {e}");
            return;
        }
    }

    let mut ping = tokio::time::interval(PING_EVERY);
    let mut last_heard = Instant::now();
    let reason = loop {
        let actions = tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(t))) => { last_heard = Instant::now(); session.handle(Event::ClientText(t.to_string())) }
                Some(Ok(Message::Binary(b))) => session.handle(Event::ClientBinary(b.len())),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => { last_heard = Instant::now(); Vec::new() }
                Some(Ok(Message::Close(_))) | None => break "closed by the browser".to_string(),
                Some(Err(e)) => {
                    // Frames beyond even the transport limit end here, without a reply.
                    break format!("WebSocket error: {e}");
                }
            },
            event = media.recv() => match event {
                Some(MediaEvent::Offer(sdp)) => session.handle(Event::LocalOffer(sdp)),
                Some(MediaEvent::Ice { candidate, sdp_mline_index }) => session.handle(Event::LocalIce { candidate, sdp_mline_index }),
                Some(MediaEvent::AnswerApplied) => session.handle(Event::AnswerApplied),
                Some(MediaEvent::AnswerRejected(why)) => session.handle(Event::AnswerRejected(why)),
                Some(MediaEvent::Connected) => {
                    tracing::info!(viewer = id, "WebRTC connected");
                    session.handle(Event::MediaConnected)
                }
                Some(MediaEvent::Failed(why)) => session.handle(Event::MediaFailed(why)),
                Some(MediaEvent::ChannelOpen) => {
                    app.viewer_ready(id);
                    Vec::new()
                }
                None => break "media engine gone".to_string(),
            },
            _ = ping.tick() => {
                if last_heard.elapsed() > SILENCE_LIMIT {
                    break format!("no sign of life for {} s", SILENCE_LIMIT.as_secs());
                }
                if !send(&mut sink, Message::Ping(Vec::new().into())).await {
                    break "ping failed".to_string();
                }
                Vec::new()
            }
        };
        if !execute(actions, &mut sink, &app, id).await || session.is_closed() {
            break "closed by the server".to_string();
        }
    };
    app.input.viewer_gone(id);
    app.set_pointer_lock(id, false);
    let desktop = app.desktop.clone();
    let _ = tokio::task::spawn_blocking(move || desktop.remove_viewer(id)).await;
    tracing::info!(viewer = id, "viewer left: {reason}");
}

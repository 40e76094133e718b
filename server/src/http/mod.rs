//! HTTP: the axum router (web client, `/health`, `/ws`).

mod auth;
pub mod files;
mod origin;
mod tls;
mod ws;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{middleware, Json, Router};
use serde_json::json;

use crate::auth::limiter::FailureLimiter;
use crate::auth::Auth;
use crate::input::{InputEvent, InputInjector};
use crate::media::Desktop;
use crate::turn::IceServers;

pub use auth::{now_unix, AuthedUser};
pub use origin::origin_allowed;
pub use tls::{load_tls, Peer, TlsListener};

/// Everything request handlers share.
pub struct App {
    pub desktop: Arc<Desktop>,
    pub input: InputInjector,
    pub display: String,
    pub width: u16,
    pub height: u16,
    pub framerate: u32,
    pub max_viewers: usize,
    pub allowed_origins: Vec<String>,
    pub ice: IceServers,
    pub auth: Auth,
    pub limiter: Mutex<FailureLimiter>,
    /// `/` or `/prefix/`.
    pub base_path: String,
    /// Whether Kelpie terminates TLS itself (cookies get `Secure`).
    pub tls: bool,
    pub next_viewer: AtomicU64,
    /// Clipboard sync with X (`--clipboard off` leaves it idle).
    pub clipboard: crate::clipboard::Clipboard,
    /// File transfer (`files/`): the folder and its limits, or off.
    pub files: Arc<files::FilesState>,
    /// The remote cursor (None with `--remote-cursor off`).
    pub cursor: Option<Arc<crate::cursor::RemoteCursor>>,
    /// Resize-to-fit; `None` when the admin turned it off (`--resize off`).
    pub resizer: Option<crate::screen::Resizer>,
    /// Viewers in pointer lock (the capture draws the cursor while any is).
    pub pointer_locked: Mutex<std::collections::HashSet<u64>>,
}

impl App {
    pub fn limiter(&self) -> MutexGuard<'_, FailureLimiter> {
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn next_viewer_id(&self) -> u64 {
        self.next_viewer.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// A controller's data-channel message, routed to the subsystem that owns it. Runs on
    /// a GStreamer thread: everything here only queues work.
    pub fn handle_control(&self, viewer: u64, event: InputEvent) {
        match event {
            InputEvent::Resize { width, height, dpr } => match &self.resizer {
                Some(r) => r.request(width, height, dpr),
                None => tracing::debug!(viewer, "resize request ignored: --resize is off"),
            },
            InputEvent::PointerLock(on) => self.set_pointer_lock(viewer, on),
            InputEvent::Settings { framerate, bitrate_kbps } => {
                tracing::info!(viewer, ?framerate, ?bitrate_kbps, "stream settings from a viewer");
                self.desktop.apply_settings(framerate, bitrate_kbps);
            }
            InputEvent::Clip(chunk) => self.clipboard.from_browser(viewer, chunk),
            other => self.input.send(viewer, other),
        }
    }

    /// Tracks viewers in pointer lock; while any is, the capture draws the cursor into the
    /// video (their browsers hide every cursor). Everyone else sees it twice at worst: the
    /// CSS cursor on top of the drawn one, at the same place.
    pub fn set_pointer_lock(&self, viewer: u64, on: bool) {
        let mut locked = self.pointer_locked.lock().unwrap_or_else(|e| e.into_inner());
        let changed = if on { locked.insert(viewer) } else { locked.remove(&viewer) };
        if changed {
            self.desktop.set_show_pointer(!locked.is_empty());
        }
    }

    /// A viewer's data channel just opened: subsystems push their current state to it
    /// (the cursor image, the clipboard), so a new viewer does not wait for a change.
    pub fn viewer_ready(&self, viewer: u64) {
        tracing::debug!(viewer, "data channel open");
        self.clipboard.viewer_ready(viewer);
        if let Some(cursor) = &self.cursor {
            cursor.viewer_ready(viewer);
        }
    }
}

/// The router; built in a function so tests can drive it without a socket.
///
/// With a base path the app answers both under the prefix (proxies that pass the path on)
/// and at the root (proxies that strip it); the web client only uses relative URLs.
pub fn router(app: Arc<App>) -> Router {
    let inner = Router::new()
        .route("/health", get(health))
        .route("/ws", get(ws::upgrade))
        .route("/metrics", get(metrics))
        .merge(files::routes(app.files.clone()))
        .fallback(get(static_file))
        .layer(middleware::from_fn_with_state(app.clone(), auth::require_auth))
        .with_state(app.clone());
    if app.base_path == "/" {
        return inner;
    }
    let prefix = app.base_path.trim_end_matches('/').to_string();
    Router::new().nest_service(&prefix, inner.clone()).fallback_service(inner)
}

async fn health(State(app): State<Arc<App>>) -> impl IntoResponse {
    let mut body = json!({
        "encoder": app.desktop.encoder_kind.factory(),
        "display": app.display,
        "width": app.width,
        "height": app.height,
        "framerate": app.framerate,
        "viewers": app.desktop.viewer_count(),
        "branches": app.desktop.branch_count(),
        "frames_encoded": app.desktop.health.frames(),
        "input_applied": app.input.counters.applied.load(Ordering::Relaxed),
        "input_dropped": app.input.counters.dropped.load(Ordering::Relaxed),
    });
    let status = match app.desktop.health.check() {
        Ok(()) => {
            body["status"] = "ok".into();
            StatusCode::OK
        }
        Err(reason) => {
            body["status"] = "unavailable".into();
            body["reason"] = reason.into();
            StatusCode::SERVICE_UNAVAILABLE
        }
    };
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body))
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    use crate::metrics::{render, Metric};
    let d = &app.desktop;
    let nets = d.stats.viewers();
    let mut rtt = Metric::gauge("kelpie_rtt_seconds", "Round-trip time to each viewer, from RTCP.", 0.0);
    rtt.samples =
        nets.iter().filter_map(|(id, n)| Some((vec![("viewer", format!("v{id}"))], n.rtt_seconds?))).collect();
    let mut lost = Metric::counter("kelpie_packets_lost_total", "RTP packets each viewer reported lost.", 0.0);
    lost.samples = nets.iter().map(|(id, n)| (vec![("viewer", format!("v{id}"))], n.packets_lost as f64)).collect();
    let input = &app.input.counters;
    let mut input_events = Metric::counter("kelpie_input_events_total", "Input events from viewers.", 0.0);
    input_events.samples = vec![
        (vec![("result", "applied".into())], input.applied.load(Ordering::Relaxed) as f64),
        (vec![("result", "dropped".into())], input.dropped.load(Ordering::Relaxed) as f64),
    ];
    let body = render(&[
        Metric::gauge("kelpie_viewers", "Connected viewers.", d.viewer_count() as f64),
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
        rtt,
        lost,
        input_events,
        Metric::counter(
            "kelpie_errors_total",
            "Pipeline and viewer errors.",
            d.stats.errors.load(Ordering::Relaxed) as f64,
        ),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

async fn static_file(uri: Uri, OriginalUri(original): OriginalUri) -> Response {
    // `/prefix` without its slash would make the page's relative URLs miss the prefix.
    if uri.path() == "/" && !original.path().ends_with('/') {
        let last = original.path().rsplit('/').next().unwrap_or("");
        return Redirect::permanent(&format!("{last}/")).into_response();
    }
    match crate::web::asset(uri.path()) {
        Some((mime, body)) => {
            let mut resp = body.into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
            // The client is tiny and changes with the binary: always revalidate.
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; script-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'",
                ),
            );
            resp
        }
        None => (StatusCode::NOT_FOUND, "not found\n").into_response(),
    }
}

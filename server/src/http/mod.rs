//! HTTP: the axum router (web client, `/health`, `/ws`).

mod origin;
mod ws;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use crate::input::InputInjector;
use crate::media::Desktop;
use crate::signalling::IceServer;

pub use origin::origin_allowed;

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
    pub ice_servers: Vec<IceServer>,
    pub next_viewer: AtomicU64,
}

impl App {
    pub fn next_viewer_id(&self) -> u64 {
        self.next_viewer.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// The router; built in a function so tests can drive it without a socket.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/ws", get(ws::upgrade))
        .fallback(get(static_file))
        .with_state(app)
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

async fn static_file(uri: Uri) -> Response {
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

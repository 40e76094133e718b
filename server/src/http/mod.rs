//! HTTP: the shells that feed the room. The page and its assets, `/ws` (signalling),
//! `files/`, `share`, `/health` and `/metrics`, behind the authentication middleware.
//!
//! Nothing here knows GStreamer or X: the room, the transports and the desktop's status
//! are reached through [`RoomActor`] and the [`Status`] port, so [`router`] can be driven
//! in tests with `tower::ServiceExt::oneshot` and fakes.

mod auth;
pub mod files;
pub mod host;
mod origin;
mod reply;
pub mod serve;
mod share;
mod tls;
mod turn_broker;
mod ws;
mod ws_writer;

use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::{OriginalUri, State};
use axum::http::{header, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{middleware, Json, Router};

use crate::auth::limiter::Throttle;
use crate::auth::Auth;
use crate::metrics::Metric;
use crate::room::RoomActor;
use crate::turn::IceServers;

pub use auth::{now_unix, AuthedUser};
pub use origin::origin_allowed;
pub use tls::{load_tls, Peer};

/// What `/health` and `/metrics` report, from whoever knows (the composition root).
pub trait Status: Send + Sync + 'static {
    /// `Ok(body)` when the desktop streams, `Err(body)` (with a `reason`) when not.
    fn health(&self) -> Result<serde_json::Value, serde_json::Value>;
    fn metrics(&self) -> Vec<Metric>;
}

/// Password checks that wait out a throttle delay at the same time.
pub const SLOW_CHECKS: usize = 4;

/// Everything request handlers share.
pub struct App {
    pub room: Arc<RoomActor>,
    pub status: Arc<dyn Status>,
    pub allowed_origins: Vec<String>,
    pub ice: IceServers,
    pub auth: Auth,
    /// Slows wrong passwords down (never refuses the right one).
    pub throttle: Mutex<Throttle>,
    /// Password checks that wait out a throttle delay at once (a few at a time).
    pub slow_checks: tokio::sync::Semaphore,
    /// `--trusted-proxies`: whose X-Forwarded-For and X-Forwarded-Proto are believed.
    pub trusted_proxies: Vec<crate::auth::Cidr>,
    /// `--cookie-secure`.
    pub cookie_secure: crate::auth::CookieSecure,
    /// Which Host headers are answered (421 otherwise).
    pub hosts: host::HostPolicy,
    /// Rate-limits the refusal log lines.
    pub refusal_log: auth::RefusalLog,
    /// `/` or `/prefix/`.
    pub base_path: String,
    /// Whether Kelpie terminates TLS itself (cookies get `Secure`).
    pub tls: bool,
    /// File transfer (`files/`): the folder and its limits, or off.
    pub files: Arc<files::FilesState>,
    /// Which media transports pages may use (`--transport`).
    pub transport: crate::transport::Policy,
    /// The desktop's sound is streamed (`--audio`): the welcome says so.
    pub audio: bool,
    /// Pages whose browser could not decode WebRTC H.264, by outcome (`/metrics`).
    pub codec: crate::signalling::CodecCounts,
    /// This run's id, in every welcome (a page tells a restarted desktop by it).
    pub boot: String,
    /// Open and refused connections, kept by the accept loop ([`serve`]).
    pub conns: Arc<serve::ConnStats>,
    /// `--ops-listen` is set: /health and /metrics are served there ([`ops_router`]), not
    /// by [`router`].
    pub ops_elsewhere: bool,
}

/// A fresh random id for this run of the server: 64 bits, as hex.
pub fn boot_id() -> String {
    use ring::rand::SecureRandom as _;
    let mut bytes = [0u8; 8];
    // The system generator does not fail on Linux; the time is a fallback that still differs per run.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
        bytes = (nanos as u64 ^ u64::from(std::process::id())).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl App {
    pub fn throttle(&self) -> MutexGuard<'_, Throttle> {
        self.throttle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The router; built in a function so tests can drive it without a socket.
///
/// With a base path the app answers both under the prefix (proxies that pass the path on)
/// and at the root (proxies that strip it); the web client only uses relative URLs.
pub fn router(app: Arc<App>) -> Router {
    let ops = if app.ops_elsewhere {
        Router::new()
    } else {
        Router::new().route("/health", get(health)).route("/metrics", get(metrics))
    };
    let inner = ops
        .route("/livez", get(livez))
        .route("/ws", get(ws::upgrade))
        .route("/share", post(share::create))
        .route("/login", post(auth::login))
        .merge(files::routes(app.files.clone()))
        .fallback(get(static_file))
        .layer(middleware::from_fn_with_state(app.clone(), auth::require_auth))
        .with_state(app.clone());
    let routed = if app.base_path == "/" {
        inner
    } else {
        let prefix = app.base_path.trim_end_matches('/').to_string();
        Router::new().nest_service(&prefix, inner.clone()).fallback_service(inner)
    };
    routed.layer(middleware::from_fn_with_state(app, check_host))
}

/// The `--ops-listen` address's routes: /health, /livez and /metrics and nothing else, with
/// neither authentication nor the Host check (probes and scrapers name the pod's IP; no
/// credential or cookie is used here, so a rebinding page gains nothing it could not read
/// by reaching the address itself).
pub fn ops_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/livez", get(livez))
        .route("/metrics", get(metrics))
        .fallback(|| async { (StatusCode::NOT_FOUND, "only /health, /livez and /metrics are served here\n") })
        .with_state(app)
}

/// Answers 421 to a request naming a host this desktop is not reached by (see [`host`]).
async fn check_host(State(app): State<Arc<App>>, req: axum::extract::Request, next: middleware::Next) -> Response {
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    if app.hosts.allows(host) {
        return next.run(req).await;
    }
    let shown: String = host.unwrap_or("").chars().take(100).collect();
    if let Some(skipped) = app.refusal_log.admit_host() {
        let more = if skipped > 0 { format!(" ({skipped} more since the last line)") } else { String::new() };
        tracing::warn!(host = %shown, "refused a request for an unknown host name (DNS rebinding?){more}");
    }
    reply::refusal(
        req.headers(),
        StatusCode::MISDIRECTED_REQUEST,
        "This desktop does not answer to that name",
        &format!(
            "The address names the host \"{shown}\", which this desktop does not know. Open it at localhost or \
             its IP address, or, when it is reached through a proxy under that name, start Kelpie with \
             --public-host {}",
            shown.rsplit_once(':').map_or(shown.as_str(), |(n, _)| n)
        ),
    )
}

async fn health(State(app): State<Arc<App>>) -> impl IntoResponse {
    let (status, body) = match app.status.health() {
        Ok(mut body) => {
            body["status"] = "ok".into();
            (StatusCode::OK, body)
        }
        Err(mut body) => {
            body["status"] = "unavailable".into();
            (StatusCode::SERVICE_UNAVAILABLE, body)
        }
    };
    (status, [(header::CACHE_CONTROL, "no-store")], Json(body))
}

/// Process-level liveness, for Kubernetes' livenessProbe: 200 whenever the server answers.
///
/// Why not `/health`: that one is about frames, and a pod throttled at its CPU limit can
/// stall encoding for seconds while the user's work in the desktop is fine; restarting it
/// would lose that work. Readiness keeps `/health` (no new viewers are sent to a stalled
/// desktop); the cases that really need a restart (X gone, the pipeline unrecoverable)
/// make Kelpie exit by itself.
async fn livez() -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "no-store")], Json(serde_json::json!({ "status": "alive" })))
}

async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    let mut metrics = app.status.metrics();
    let mut codec = crate::metrics::Metric::counter(
        "kelpie_codec_unsupported_total",
        "Pages whose browser cannot decode H.264 over WebRTC, by what became of them.",
        0.0,
    );
    codec.samples =
        app.codec.snapshot().into_iter().map(|(o, n)| (vec![("outcome", o.as_str().into())], n as f64)).collect();
    metrics.push(codec);
    metrics.extend(app.conns.metrics());
    let body = crate::metrics::render(&metrics);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}

/// The page's Content-Security-Policy. `frame-ancestors` lets only this origin and the
/// `--allowed-origins` (a hub embedding the desktop) put the page in a frame, so another
/// site cannot overlay it and trick clicks into the desktop (clickjacking).
fn content_security_policy(allowed_origins: &[String]) -> String {
    let mut ancestors = String::from("'self'");
    for origin in allowed_origins.iter().map(|o| o.trim().trim_end_matches('/')) {
        // Only plain scheme://host[:port] origins: anything else could smuggle directives.
        let plain = origin.split_once("://").is_some_and(|(scheme, rest)| {
            matches!(scheme, "http" | "https")
                && !rest.is_empty()
                && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
        });
        if plain {
            ancestors.push(' ');
            ancestors.push_str(origin);
        }
    }
    format!(
        "default-src 'self'; script-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data: blob:; \
style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'self'; frame-ancestors {ancestors}"
    )
}

async fn static_file(
    State(app): State<Arc<App>>,
    uri: Uri,
    OriginalUri(original): OriginalUri,
    headers: axum::http::HeaderMap,
) -> Response {
    // `/prefix` without its slash would make the page's relative URLs miss the prefix.
    if uri.path() == "/" && !original.path().ends_with('/') {
        let last = original.path().rsplit('/').next().unwrap_or("");
        return Redirect::permanent(&format!("{last}/")).into_response();
    }
    match crate::web::asset(uri.path()) {
        Some(asset) => {
            // The client changes with the binary: browsers keep it but always revalidate,
            // and an unchanged file comes back as 304 without its body.
            let unchanged = headers
                .get(header::IF_NONE_MATCH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| crate::web::etag_matches(v, asset.etag));
            let mut resp =
                if unchanged { StatusCode::NOT_MODIFIED.into_response() } else { asset.body.into_response() };
            let h = resp.headers_mut();
            if !unchanged {
                h.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.mime));
            }
            h.insert(header::ETAG, HeaderValue::from_static(asset.etag));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            if let Ok(csp) = HeaderValue::from_str(&content_security_policy(&app.allowed_origins)) {
                h.insert(header::CONTENT_SECURITY_POLICY, csp);
            }
            // For browsers without frame-ancestors; with extra origins CSP alone decides.
            if app.allowed_origins.is_empty() {
                h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
            }
            resp
        }
        None => reply::refusal(
            &headers,
            StatusCode::NOT_FOUND,
            "Not found",
            &format!("There is no page here. The desktop is at {}", app.base_path),
        ),
    }
}

#[cfg(test)]
#[path = "router_tests.rs"]
mod tests;

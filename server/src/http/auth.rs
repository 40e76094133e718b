//! The authentication middleware: the I/O shell around [`crate::auth::Auth::check`].

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::App;
use crate::auth::{cookie_value, query_value, query_without, Mode, Presented, Verdict, Via, COOKIE};

/// Who the request is, for handlers: the room (role), TURN credentials, logs.
pub type AuthedUser = crate::auth::Identity;

/// Paths reachable without credentials: probes and scrapers must not need secrets, and
/// these reveal nothing about the desktop's content.
const OPEN_PATHS: [&str; 2] = ["/health", "/metrics"];

pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub async fn require_auth(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    if OPEN_PATHS.contains(&req.uri().path()) {
        req.extensions_mut().insert(AuthedUser::anonymous_owner());
        return next.run(req).await;
    }
    let peer = req.extensions().get::<ConnectInfo<super::Peer>>().map(|c| c.0 .0.ip());
    if let Some(ip) = peer {
        if app.limiter().is_blocked(ip, Instant::now()) {
            let mut resp = super::reply::refusal(
                req.headers(),
                StatusCode::TOO_MANY_REQUESTS,
                "Too many failed logins",
                "This address gave wrong credentials too often. Wait a minute, then reload this page with the \
                 right password or a fresh link.",
            );
            resp.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("60"));
            return resp;
        }
    }
    let headers = req.headers();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let cookie = text(header::COOKIE.as_str()).and_then(|c| cookie_value(c, COOKIE));
    let query = req.uri().query().unwrap_or("");
    let (trusted, trusted_role) = match &app.auth.mode {
        Mode::TrustedHeader { header, role_header, .. } => (text(header), role_header.as_deref().and_then(text)),
        _ => (None, None),
    };
    let presented = Presented {
        peer,
        authorization: text(header::AUTHORIZATION.as_str()),
        cookie_token: cookie,
        query_token: query_value(query, "token"),
        trusted_header: trusted,
        trusted_role,
    };
    match app.auth.check(&presented, now_unix()) {
        Verdict::Allow { user, role, via } => {
            if let Some(ip) = peer {
                app.limiter().succeed(ip);
            }
            let is_page_load = req.method() == Method::GET && !headers.contains_key(header::UPGRADE);
            if via == Via::QueryToken && is_page_load {
                if let Some(token) = presented.query_token {
                    return token_to_cookie(&app, req.uri(), token);
                }
            }
            tracing::debug!(user, %role, path = req.uri().path(), "authenticated");
            req.extensions_mut().insert(AuthedUser { user, role });
            next.run(req).await
        }
        Verdict::Deny(why) => {
            if let (Some(ip), true) = (peer, presented.has_credentials()) {
                if app.limiter().fail(ip, Instant::now()) {
                    tracing::warn!(%ip, "too many failed logins: blocking this address for a minute");
                }
            }
            tracing::warn!(peer = ?peer, path = req.uri().path(), "refused: {why}");
            let advice = match app.auth.mode {
                Mode::Token => "Open the desktop with the link you were given (it ends in ?token=…). A link that has \
                                expired needs a new one from whoever shared it (`kelpie token`, or People → Share \
                                a link)."
                    .to_string(),
                Mode::Basic { .. } => "Reload the page and log in with the desktop's user name and password.".into(),
                _ => format!("This desktop needs a login ({why})."),
            };
            let mut resp = super::reply::refusal(
                headers,
                StatusCode::UNAUTHORIZED,
                &format!("Authentication required: {why}"),
                &advice,
            );
            if let Some(realm) = app.auth.realm_header() {
                resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(realm));
            }
            resp
        }
    }
}

/// Swaps `?token=` for an HttpOnly cookie and redirects to the same page without it, so
/// the token leaves the address bar, history and Referer headers.
fn token_to_cookie(app: &App, uri: &axum::http::Uri, token: &str) -> Response {
    // A relative Location works whether or not a proxy stripped our base path.
    let last = uri.path().rsplit('/').next().unwrap_or("");
    let rest = query_without(uri.query().unwrap_or(""), "token");
    let mut location = if last.is_empty() { "./".to_string() } else { last.to_string() };
    if !rest.is_empty() {
        location = format!("{location}?{rest}");
    }
    let secure = if app.tls { "; Secure" } else { "" };
    let cookie = format!("{COOKIE}={token}; Path={}; HttpOnly; SameSite=Lax{secure}", app.base_path);
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    if let (Ok(loc), Ok(c)) = (HeaderValue::from_str(&location), HeaderValue::from_str(&cookie)) {
        h.insert(header::LOCATION, loc);
        h.insert(header::SET_COOKIE, c);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

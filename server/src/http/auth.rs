//! The authentication middleware: the I/O shell around [`crate::auth::Auth::check`].

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::App;
use crate::auth::client::client_address;
use crate::auth::limiter::{self, Key};
use crate::auth::{
    basic_user, cookie_value, query_value, query_without, Denial, DenyKind, Mode, Presented, Role, TokenError, Verdict,
    Via, COOKIE,
};

/// Who the request is, for handlers: the room (role), TURN credentials, logs.
pub type AuthedUser = crate::auth::Identity;

/// Paths reachable without credentials: probes and scrapers must not need secrets, and
/// these reveal nothing about the desktop's content; `login` and its script are how a
/// browser without credentials gets them.
const OPEN_PATHS: [&str; 5] = ["/health", "/livez", "/metrics", "/login", "/login.js"];

/// The longest token `POST login` reads (tokens are a few hundred bytes).
const MAX_LOGIN_BODY: usize = 4096;

/// `POST login` with a token as the body: the page's `#token=` link, swapped for the
/// HttpOnly cookie. A fragment never leaves the browser, so unlike `?token=` the token
/// does not land in proxy access logs or the history; `login.js` takes it out of the
/// address bar and posts it here. 204 with the cookie, or 401 saying why.
pub async fn login(State(app): State<Arc<App>>, req: Request) -> Response {
    let headers = req.headers().clone();
    if let Some(refused) = super::reply::cross_origin_refusal(&headers, &app.allowed_origins, "login") {
        return refused;
    }
    let peer = req.extensions().get::<ConnectInfo<super::Peer>>().map(|c| c.0 .0.ip());
    let body = match axum::body::to_bytes(req.into_body(), MAX_LOGIN_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return super::reply::text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("a token is under {MAX_LOGIN_BODY} bytes"),
            )
        }
    };
    let token = String::from_utf8_lossy(&body).trim().to_owned();
    if token.is_empty() {
        return super::reply::text(StatusCode::BAD_REQUEST, "POST the token (from the link's #token=) as the body");
    }
    match app.auth.tokens.verify(&token, now_unix(), &app.auth.desktop) {
        Ok(claims) => {
            tracing::info!(user = claims.user, role = %claims.role, "logged in with a link");
            let mut resp = StatusCode::NO_CONTENT.into_response();
            if let Ok(c) = HeaderValue::from_str(&cookie_header(&app, &headers, peer, &token)) {
                resp.headers_mut().insert(header::SET_COOKIE, c);
            }
            resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            resp
        }
        Err(e) => {
            let kind = if e == TokenError::Expired { DenyKind::Expired } else { DenyKind::BadToken };
            refuse(&app, &headers, "/login", peer, None, Denial { why: e.to_string(), kind })
        }
    }
}

pub fn now_unix() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub async fn require_auth(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    if OPEN_PATHS.contains(&req.uri().path()) {
        req.extensions_mut().insert(AuthedUser::anonymous_owner());
        return next.run(req).await;
    }
    let peer = req.extensions().get::<ConnectInfo<super::Peer>>().map(|c| c.0 .0.ip());
    let headers = req.headers().clone();
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let client = peer.map(|p| {
        let forwarded = headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok());
        client_address(p, forwarded, &app.trusted_proxies)
    });
    let cookie = text(header::COOKIE.as_str()).and_then(|c| cookie_value(c, COOKIE));
    let query = req.uri().query().unwrap_or("").to_owned();
    let (trusted, trusted_role) = match &app.auth.mode {
        Mode::TrustedHeader { header, role_header, .. } => {
            (single_value(&headers, header), role_header.as_deref().and_then(|h| single_value(&headers, h)))
        }
        _ => (None, None),
    };
    let presented = Presented {
        peer,
        authorization: text(header::AUTHORIZATION.as_str()),
        cookie_token: cookie,
        query_token: query_value(&query, "token"),
        trusted_header: trusted,
        trusted_role,
    };
    let now = now_unix();
    // A browser that already holds an owner cookie (handed out at its first login) is
    // never slowed: only password checks without one are throttled.
    let owner_cookie =
        cookie.is_some_and(|t| app.auth.tokens.verify(t, now, &app.auth.desktop).is_ok_and(|c| c.role == Role::Owner));
    let throttle_key = match (&app.auth.mode, presented.authorization.and_then(basic_user), client) {
        (Mode::Basic { .. }, Some(user), Some(client)) if !owner_cookie => Some(Key::new(client, &user)),
        _ => None,
    };
    if let Some(key) = &throttle_key {
        let delay = app.throttle().delay(key, Instant::now());
        if !delay.is_zero() {
            // A few delayed checks at a time, in arrival order: guessing drops to a few
            // tries a second, and the right password still gets in (see auth::limiter).
            let _slot = app.slow_checks.acquire().await;
            tokio::time::sleep(delay).await;
        }
    }
    match app.auth.check(&presented, now) {
        Verdict::Allow { user, role, via } => {
            let is_page_load = req.method() == Method::GET && !headers.contains_key(header::UPGRADE);
            if via == Via::QueryToken && is_page_load {
                if let Some(token) = presented.query_token {
                    return token_to_cookie(&app, &headers, peer, req.uri(), token);
                }
            }
            tracing::debug!(user, %role, path = req.uri().path(), "authenticated");
            let session = (via == Via::Password && !owner_cookie)
                .then(|| app.auth.mint(&user, Role::Owner, now + PASSWORD_SESSION.as_secs()).ok())
                .flatten();
            req.extensions_mut().insert(AuthedUser { user, role });
            let mut resp = next.run(req).await;
            if let Some(token) = session {
                if let Ok(c) = HeaderValue::from_str(&cookie_header(&app, &headers, peer, &token)) {
                    resp.headers_mut().append(header::SET_COOKIE, c);
                }
            }
            resp
        }
        Verdict::Deny(denial) => refuse(&app, &headers, req.uri().path(), client, throttle_key, denial),
    }
}

/// The header's value when it appears exactly once. A proxy that appends to a header the
/// client already sent, instead of replacing it, would otherwise let the client pick the
/// first value, and so the user (review #19): two values are refused.
fn single_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(v), None) => v.to_str().ok(),
        _ => None,
    }
}

/// How long the owner cookie handed out after a password login lasts.
const PASSWORD_SESSION: Duration = Duration::from_secs(12 * 3600);

/// The 401: counted when it was a wrong password, logged (at most one line per
/// [`LOG_EVERY`] for each kind), with `X-Kelpie-Denied` naming the kind so that the page
/// can say "your link expired" instead of retrying for ever.
fn refuse(
    app: &App,
    headers: &HeaderMap,
    path: &str,
    client: Option<std::net::IpAddr>,
    key: Option<Key>,
    denial: Denial,
) -> Response {
    if denial.kind == DenyKind::WrongPassword {
        if let Some(key) = &key {
            if app.throttle().fail(key, Instant::now()) {
                tracing::warn!(
                    client = ?client,
                    "{} wrong passwords from this client in a minute: its password checks now wait {} s each \
                     (the right password still gets in)",
                    limiter::MAX_FAILURES,
                    limiter::DELAY.as_secs()
                );
            }
        }
    }
    match denial.kind {
        // A browser's first request in Basic mode has no credentials: normal, not news.
        DenyKind::Missing => tracing::debug!(client = ?client, path, "refused: {}", denial.why),
        kind => {
            if let Some(suppressed) = app.refusal_log.admit(kind) {
                let more =
                    if suppressed > 0 { format!(" ({suppressed} more since the last line)") } else { String::new() };
                tracing::warn!(client = ?client, path, "refused: {}{more}", denial.why);
            }
        }
    }
    let advice = match (denial.kind, &app.auth.mode) {
        (DenyKind::Expired, _) => "The link this browser used has expired. Ask whoever shared the desktop for a new \
                                   one (`kelpie token`, or People → Share a link), then open it."
            .to_string(),
        (_, Mode::Token) => {
            "Open the desktop with the link you were given (it ends in #token=… or ?token=…). A link that has \
                             expired needs a new one from whoever shared it (`kelpie token`, or People → Share a \
                             link)."
                .to_string()
        }
        (_, Mode::Basic { .. }) => "Reload the page and log in with the desktop's user name and password.".into(),
        _ => format!("This desktop needs a login ({}).", denial.why),
    };
    let title = if denial.kind == DenyKind::Expired {
        "This link has expired".to_string()
    } else {
        format!("Authentication required: {}", denial.why)
    };
    let mut resp = super::reply::login_refusal(headers, StatusCode::UNAUTHORIZED, &title, &advice);
    resp.headers_mut().insert(DENIED, HeaderValue::from_static(denial.kind.as_str()));
    if let Some(realm) = app.auth.realm_header() {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(realm));
    }
    resp
}

/// The response header naming why a request was refused (see [`DenyKind::as_str`]).
pub const DENIED: HeaderName = HeaderName::from_static("x-kelpie-denied");

/// Refusals are logged at most once per this, per kind.
const LOG_EVERY: Duration = Duration::from_secs(10);

/// Keeps refusal logging from flooding: a line per kind per [`LOG_EVERY`], which says how
/// many were left out since the last one.
#[derive(Debug, Default)]
pub struct RefusalLog(std::sync::Mutex<std::collections::HashMap<Option<DenyKind>, (Instant, u64)>>);

impl RefusalLog {
    /// [`Self::admit`] for requests refused for their Host.
    pub fn admit_host(&self) -> Option<u64> {
        self.admit_kind(None)
    }

    /// `Some(left out since the last line)` when a line may be written now.
    fn admit(&self, kind: DenyKind) -> Option<u64> {
        self.admit_kind(Some(kind))
    }

    fn admit_kind(&self, kind: Option<DenyKind>) -> Option<u64> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match map.get_mut(&kind) {
            Some((at, skipped)) if now.duration_since(*at) < LOG_EVERY => {
                *skipped += 1;
                None
            }
            Some((at, skipped)) => {
                let n = *skipped;
                (*at, *skipped) = (now, 0);
                Some(n)
            }
            None => {
                map.insert(kind, (now, 0));
                Some(0)
            }
        }
    }
}

/// Whether the request reached us over https: Kelpie's own TLS, or a trusted proxy's
/// `X-Forwarded-Proto`.
fn proxy_says_https(app: &App, headers: &HeaderMap, peer: Option<std::net::IpAddr>) -> bool {
    let trusted = peer.is_some_and(|p| crate::auth::cidr::any_contains(&app.trusted_proxies, p));
    trusted
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').next().is_some_and(|p| p.trim().eq_ignore_ascii_case("https")))
}

/// The `Set-Cookie` value carrying `token`.
fn cookie_header(app: &App, headers: &HeaderMap, peer: Option<std::net::IpAddr>, token: &str) -> String {
    let secure = if app.cookie_secure.applies(app.tls, proxy_says_https(app, headers, peer)) { "; Secure" } else { "" };
    format!("{COOKIE}={token}; Path={}; HttpOnly; SameSite=Lax{secure}", app.base_path)
}

/// Swaps `?token=` for an HttpOnly cookie and redirects to the same page without it, so
/// the token leaves the address bar, history and Referer headers.
fn token_to_cookie(
    app: &App,
    headers: &HeaderMap,
    peer: Option<std::net::IpAddr>,
    uri: &axum::http::Uri,
    token: &str,
) -> Response {
    // A relative Location works whether or not a proxy stripped our base path.
    let last = uri.path().rsplit('/').next().unwrap_or("");
    let rest = query_without(uri.query().unwrap_or(""), "token");
    let mut location = if last.is_empty() { "./".to_string() } else { last.to_string() };
    if !rest.is_empty() {
        location = format!("{location}?{rest}");
    }
    let cookie = cookie_header(app, headers, peer, token);
    let mut resp = StatusCode::SEE_OTHER.into_response();
    let h = resp.headers_mut();
    if let (Ok(loc), Ok(c)) = (HeaderValue::from_str(&location), HeaderValue::from_str(&cookie)) {
        h.insert(header::LOCATION, loc);
        h.insert(header::SET_COOKIE, c);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trusted_header_sent_twice_names_nobody() {
        let mut h = HeaderMap::new();
        h.append("x-forwarded-user", HeaderValue::from_static("alice"));
        assert_eq!(single_value(&h, "x-forwarded-user"), Some("alice"));
        h.append("x-forwarded-user", HeaderValue::from_static("root"));
        assert_eq!(single_value(&h, "x-forwarded-user"), None);
        assert_eq!(single_value(&h, "x-other"), None);
    }
}

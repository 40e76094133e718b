//! Small answers the HTTP shells share: a plain-text reply, and the refusal of a write a
//! page of another site makes through the user's browser (cross-site request forgery:
//! with a cookie or cached Basic credentials such a request would be authenticated).

use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

/// `msg` as an uncached text/plain answer, with a final newline for `curl` users.
pub fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut body = msg.into();
    body.push('\n');
    (status, [(header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// `Some(403)` when the request's Origin is neither the page's own nor allowed;
/// `what` names the refused action in the log and the answer ("file transfer", ...).
pub fn cross_origin_refusal(headers: &HeaderMap, allowed_origins: &[String], what: &str) -> Option<Response> {
    let value = |h: HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    let (origin, host) = (value(header::ORIGIN), value(header::HOST));
    if super::origin_allowed(origin, host, allowed_origins) {
        return None;
    }
    tracing::warn!(origin = origin.unwrap_or(""), host = host.unwrap_or(""), "refused a {what} from a foreign origin");
    Some(text(StatusCode::FORBIDDEN, format!("{what} from another site is not allowed")))
}

//! Small answers the HTTP shells share: a plain-text reply, a refusal that a browser shows
//! as a small page saying what to do next (and `curl` as text), and the refusal of a
//! write a page of another site makes through the user's browser (cross-site request
//! forgery: with a cookie or cached Basic credentials such a request would be
//! authenticated).

use axum::http::{header, HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

/// `msg` as an uncached text/plain answer, with a final newline for `curl` users.
pub fn text(status: StatusCode, msg: impl Into<String>) -> Response {
    let mut body = msg.into();
    body.push('\n');
    (status, [(header::CACHE_CONTROL, "no-store")], body).into_response()
}

/// A refusal with `title` (what happened) and `advice` (what to do next): a small HTML
/// page for a browser (its Accept names text/html), the two lines as text for anything
/// else. Both are escaped, so text that came with the request cannot become markup.
pub fn refusal(headers: &HeaderMap, status: StatusCode, title: &str, advice: &str) -> Response {
    page(headers, status, title, advice, false)
}

/// [`refusal`] for a missing or refused login: the page also runs `login.js`, which swaps
/// a `#token=` link for the login cookie (the fragment never reached the server).
pub fn login_refusal(headers: &HeaderMap, status: StatusCode, title: &str, advice: &str) -> Response {
    page(headers, status, title, advice, true)
}

fn page(headers: &HeaderMap, status: StatusCode, title: &str, advice: &str, login: bool) -> Response {
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').any(|t| t.trim().starts_with("text/html")));
    if !wants_html {
        return text(status, format!("{title}: {advice}"));
    }
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Kelpie: {title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:36em;margin:12vh auto;padding:0 1em;\
         color:#222}}h1{{font-size:1.4em}}.code{{color:#777}}</style></head>\
         <body><h1 id=\"title\">{title}</h1><p id=\"advice\">{advice}</p><p class=\"code\">HTTP {code}</p>{script}\
         </body></html>\n",
        title = escape(title),
        advice = escape(advice),
        code = status.as_u16(),
        script = if login { "<script src=\"login.js\"></script>" } else { "" },
    );
    let csp = if login {
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'"
    } else {
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'"
    };
    (
        status,
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CONTENT_SECURITY_POLICY, csp),
        ],
        body,
    )
        .into_response()
}

/// `s` safe inside HTML text.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
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

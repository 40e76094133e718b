//! `POST share`: an owner mints a view-only or guest link from the page.
//!
//! The link is a token (see [`crate::auth::token`]) that names this desktop, the role and
//! an expiry. With `--auth token` it is signed with the configured secret; otherwise with
//! the per-run secret, so links stop working when Kelpie restarts.

use std::sync::Arc;

use axum::extract::{Extension, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::reply::{cross_origin_refusal, text};
use super::{now_unix, App, AuthedUser};
use crate::auth::token::valid_user;
use crate::auth::Role;

/// Shortest and longest link lifetimes: a minute is enough to test a link, a month
/// bounds what a forgotten link can do.
const MIN_TTL_SECS: u64 = 60;
const MAX_TTL_SECS: u64 = 30 * 86_400;
/// Largest request body: the three fields are a few dozen bytes.
pub const MAX_BODY: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareRequest {
    role: String,
    ttl: u64,
    #[serde(default)]
    name: Option<String>,
}

pub async fn create(
    State(app): State<Arc<App>>,
    user: Option<Extension<AuthedUser>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if let Some(refused) = cross_origin_refusal(&headers, &app.allowed_origins, "share request") {
        return refused;
    }
    let who = user.map_or_else(AuthedUser::anonymous_owner, |Extension(u)| u);
    if who.role != Role::Owner {
        return text(StatusCode::FORBIDDEN, format!("only owners can share this desktop (you are a {})", who.role));
    }
    if body.len() > MAX_BODY {
        return text(StatusCode::PAYLOAD_TOO_LARGE, format!("share request over {MAX_BODY} bytes"));
    }
    let req: ShareRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return text(StatusCode::BAD_REQUEST, format!("expected {{\"role\", \"ttl\", \"name\"}}: {e}")),
    };
    let role = match req.role.parse::<Role>() {
        Ok(r @ (Role::Viewer | Role::Guest)) => r,
        Ok(Role::Owner) => {
            return text(
                StatusCode::BAD_REQUEST,
                "share links are for viewers or guests; use `kelpie token` for owners",
            )
        }
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if !(MIN_TTL_SECS..=MAX_TTL_SECS).contains(&req.ttl) {
        return text(StatusCode::BAD_REQUEST, format!("ttl must be {MIN_TTL_SECS}..={MAX_TTL_SECS} seconds"));
    }
    let name = req.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()).unwrap_or_else(|| role.to_string());
    if !valid_user(&name) {
        return text(StatusCode::BAD_REQUEST, "name must be 1-64 characters of A-Z a-z 0-9 . _ @ -");
    }
    let expires = now_unix() + req.ttl;
    match app.auth.mint(&name, role, expires) {
        Ok(token) => {
            tracing::info!(by = who.user, name, %role, ttl_secs = req.ttl, "share link created");
            let body = serde_json::json!({
                "token": token,
                "expires": expires,
                "role": role,
                "per_run": app.auth.tokens_per_run,
            });
            (StatusCode::OK, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
        }
        Err(e) => text(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

//! `files/`: the HTTP shell of file transfer (list, download, upload) around
//! [`crate::files`].
//!
//! Routes live inside the authenticated router, so they need the same credentials as
//! the desktop itself. Bodies are streamed both ways: a 2 GiB upload or download never
//! sits in memory. Writes must come from the page's own origin (see [`cross_origin_refusal`]).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Extension, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;

use super::reply::text;
use super::AuthedUser;
use crate::files::space::NoRoom;
use crate::files::{human_size, FileName, FileShare, StoreError};

/// Tells the page the upload limit, so it can say so before sending a file that is
/// too big.
pub const UPLOAD_MAX_HEADER: &str = "x-kelpie-upload-max";
/// A refused upload's remaining body is read and thrown away up to this size before
/// answering: a browser that is still sending when the server closes the connection
/// reports a network error instead of our status and message. Larger bodies get their
/// answer at once, with `Connection: close`.
const DRAIN_MAX: u64 = 32 * 1024 * 1024;
/// Bound on that draining, for a client that sends slowly.
const DRAIN_TIME: Duration = Duration::from_secs(10);
/// Download read size: large enough for throughput, small enough to stay off the heap.
const READ_CHUNK: usize = 256 * 1024;

/// What the routes share: the folder (`None` when transfers are turned off) and the
/// origins allowed besides the page's own.
pub struct FilesState {
    pub share: Option<FileShare>,
    pub allowed_origins: Vec<String>,
}

/// The `files/` routes, with their own state so they merge into any router (and tests
/// can drive them without a desktop).
pub fn routes<S: Clone + Send + Sync + 'static>(state: Arc<FilesState>) -> Router<S> {
    Router::new()
        .route("/files/", get(list))
        .route("/files/{name}", get(download).put(upload).post(upload).layer(DefaultBodyLimit::disable()))
        .with_state(state)
}

fn disabled() -> Response {
    text(StatusCode::NOT_FOUND, "file transfer is turned off on this server (--no-file-transfer)")
}

/// Refuses what a page of another site asks of the files folder (see [`super::reply`]).
fn cross_origin_refusal(state: &FilesState, headers: &HeaderMap) -> Option<Response> {
    super::reply::cross_origin_refusal(headers, &state.allowed_origins, "file transfer")
}

fn status_of(e: &StoreError) -> StatusCode {
    match e {
        StoreError::NotFound(_) => StatusCode::NOT_FOUND,
        StoreError::Exists(_) | StoreError::NotAFile(_) => StatusCode::CONFLICT,
        StoreError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        StoreError::DiskFull(..) => StatusCode::INSUFFICIENT_STORAGE,
        StoreError::NoRoom(NoRoom::Limit(_)) => StatusCode::PAYLOAD_TOO_LARGE,
        StoreError::NoRoom(_) => StatusCode::INSUFFICIENT_STORAGE,
        StoreError::Io { .. } => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn user_of(user: &Option<Extension<AuthedUser>>) -> &str {
    user.as_ref().map_or("kelpie", |Extension(u)| u.user.as_str())
}

/// View-only participants get no files, either way.
fn viewer_refusal(user: &Option<Extension<AuthedUser>>) -> Option<Response> {
    let Some(Extension(u)) = user else { return None };
    (u.role == crate::auth::Role::Viewer).then(|| {
        tracing::info!(user = u.user, "refused file transfer: view-only participant");
        text(StatusCode::FORBIDDEN, "view-only participants cannot transfer files")
    })
}

async fn list(
    State(state): State<Arc<FilesState>>,
    user: Option<Extension<AuthedUser>>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = cross_origin_refusal(&state, &headers).or_else(|| viewer_refusal(&user)) {
        return refused;
    }
    let Some(share) = &state.share else { return disabled() };
    // A folder that does not exist yet is simply empty.
    if let Err(e) = share.ensure_dir() {
        tracing::warn!("{e}");
    }
    match share.list().await {
        Ok(entries) => {
            let mut resp = (StatusCode::OK, Json(entries)).into_response();
            let h = resp.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(UPLOAD_MAX_HEADER, HeaderValue::from(share.max_bytes()));
            resp
        }
        Err(e) => {
            tracing::warn!("{e}");
            text(status_of(&e), e.to_string())
        }
    }
}

/// `attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / 5987).
fn content_disposition(name: &str) -> String {
    let fallback: String =
        name.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

async fn download(
    State(state): State<Arc<FilesState>>,
    user: Option<Extension<AuthedUser>>,
    Path(raw): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = cross_origin_refusal(&state, &headers).or_else(|| viewer_refusal(&user)) {
        return refused;
    }
    let Some(share) = &state.share else { return disabled() };
    let name = match FileName::parse(&raw) {
        Ok(n) => n,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let (file, len) = match share.open(&name).await {
        Ok(opened) => opened,
        Err(e) => return text(status_of(&e), e.to_string()),
    };
    tracing::info!(name = %name, bytes = len, user = user_of(&user), "file download");
    // Exactly `len` bytes: a file that grows meanwhile cannot overrun Content-Length.
    let reader = file.take(len);
    let stream = futures_util::stream::unfold(reader, |mut r| async move {
        let mut buf = vec![0u8; READ_CHUNK];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<Bytes, std::io::Error>(Bytes::from(buf)), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    });
    let mut resp = Body::from_stream(stream).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(name.as_str())) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    resp
}

fn wants_overwrite(query: Option<&str>) -> bool {
    query.unwrap_or("").split('&').any(|kv| matches!(kv, "overwrite=1" | "overwrite=true" | "overwrite=yes"))
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// Answers a refused upload after reading (and discarding) what is left of its body, so
/// the browser is listening when the answer comes; see [`DRAIN_MAX`].
async fn refuse_upload(status: StatusCode, msg: String, body: Option<Body>, remaining: Option<u64>) -> Response {
    let mut drained = body.is_none();
    if let Some(body) = body {
        if remaining.is_some_and(|n| n <= DRAIN_MAX) {
            let mut stream = body.into_data_stream();
            let mut seen = 0u64;
            drained = tokio::time::timeout(DRAIN_TIME, async {
                while let Some(Ok(chunk)) = stream.next().await {
                    seen += chunk.len() as u64;
                    if seen > DRAIN_MAX {
                        return false;
                    }
                }
                true
            })
            .await
            .unwrap_or(false);
        }
    }
    let mut resp = text(status, msg);
    if !drained {
        resp.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

async fn upload(
    State(state): State<Arc<FilesState>>,
    user: Option<Extension<AuthedUser>>,
    Path(raw): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(refused) = cross_origin_refusal(&state, &headers) {
        return refused;
    }
    let declared = declared_length(&headers);
    if viewer_refusal(&user).is_some() {
        // Read the body away first, so the browser sees the answer, not a broken upload.
        let why = "view-only participants cannot transfer files".to_string();
        return refuse_upload(StatusCode::FORBIDDEN, why, Some(body), declared).await;
    }
    let Some(share) = &state.share else { return disabled() };
    let name = match FileName::parse(&raw) {
        Ok(n) => n,
        Err(e) => return refuse_upload(StatusCode::BAD_REQUEST, e.to_string(), Some(body), declared).await,
    };
    // The limit, the quota and the disk, before a byte is written.
    let allowance = match share.room(declared).await {
        Ok(a) => a,
        Err(e) => {
            tracing::info!(name = %name, bytes = declared, user = user_of(&user), "upload refused: {e}");
            return refuse_upload(status_of(&e), e.to_string(), Some(body), declared).await;
        }
    };
    let overwrite = wants_overwrite(query.as_deref());
    if !overwrite && share.exists(&name) {
        let msg = format!("{name} already exists; upload again with ?overwrite=1 to replace it");
        return refuse_upload(StatusCode::CONFLICT, msg, Some(body), declared).await;
    }
    let mut up = match share.begin_upload(&name, overwrite, allowance).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("upload of {name} failed: {e}");
            return refuse_upload(status_of(&e), e.to_string(), Some(body), declared).await;
        }
    };
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(c) => c,
            Err(e) => {
                // The browser went away or broke the framing; `up` removes its temp file.
                tracing::info!(name = %name, received, user = user_of(&user), "upload abandoned: {e}");
                return text(StatusCode::BAD_REQUEST, format!("upload interrupted: {e}"));
            }
        };
        received += chunk.len() as u64;
        if let Err(e) = up.write(&chunk).await {
            drop(up);
            tracing::info!(name = %name, received, user = user_of(&user), "upload refused: {e}");
            let rest = declared.map(|d| d.saturating_sub(received));
            let body = Body::from_stream(stream);
            return refuse_upload(status_of(&e), e.to_string(), Some(body), rest.or(Some(0))).await;
        }
    }
    match up.finish().await {
        Ok(stored) => {
            tracing::info!(
                name = %name, bytes = stored.size, replaced = stored.replaced, user = user_of(&user),
                "file upload ({})", human_size(stored.size)
            );
            let status = if stored.replaced { StatusCode::OK } else { StatusCode::CREATED };
            let body = serde_json::json!({ "name": name.as_str(), "size": stored.size });
            (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
        }
        Err(e) => {
            tracing::warn!(name = %name, user = user_of(&user), "upload failed: {e}");
            let msg = match &e {
                StoreError::Exists(_) => format!("{name} already exists; upload again with ?overwrite=1 to replace it"),
                other => other.to_string(),
            };
            text(status_of(&e), msg)
        }
    }
}

impl FilesState {
    /// From the flags; creates the folder now so a first upload does not surprise anyone,
    /// and logs where files go (or why transfers are off).
    pub fn from_config(args: &crate::config::FileArgs, allowed_origins: &[String]) -> Self {
        let share = match args.folder() {
            Ok(Some(dir)) => {
                let share = FileShare::new(dir, args.upload_max_bytes).with_quota(args.files_quota);
                if let Err(e) = share.ensure_dir() {
                    tracing::warn!("file transfer: {e} (uploads will fail until it can be created)");
                }
                let stale = share.sweep_stale_uploads();
                if stale > 0 {
                    tracing::info!(
                        removed = stale,
                        "file transfer: removed unfinished uploads of a Kelpie that is gone"
                    );
                }
                tracing::info!(
                    folder = %share.dir().display(),
                    upload_max = %human_size(share.max_bytes()),
                    "file transfer on"
                );
                Some(share)
            }
            Ok(None) => {
                tracing::info!("file transfer off (--no-file-transfer)");
                None
            }
            Err(why) => {
                tracing::warn!("file transfer off: {why}");
                None
            }
        };
        Self { share, allowed_origins: allowed_origins.to_vec() }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    /// A fresh folder `<tmp>/kelpie-http-files-…/Desktop`: tests check its parent too.
    struct Folder(PathBuf);

    impl Folder {
        fn new(tag: &str) -> Self {
            let root = std::env::temp_dir().join(format!("kelpie-http-files-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("Desktop")).unwrap();
            Self(root)
        }
        fn desktop(&self) -> PathBuf {
            self.0.join("Desktop")
        }
        fn names(&self, sub: &str) -> Vec<String> {
            let mut v: Vec<String> = std::fs::read_dir(self.0.join(sub))
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn app(folder: &Folder, max: u64) -> Router {
        let share = Some(FileShare::new(folder.desktop(), max));
        routes(Arc::new(FilesState { share, allowed_origins: vec![] }))
    }

    async fn send(router: &Router, method: &str, uri: &str, body: &[u8]) -> (StatusCode, String) {
        let req = Request::builder()
            .method(method)
            .uri(uri)
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::ORIGIN, "http://127.0.0.1:8080")
            .body(Body::from(body.to_vec()))
            .unwrap();
        let resp = router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    #[tokio::test]
    async fn an_upload_is_listed_and_downloads_as_the_same_bytes() {
        let f = Folder::new("roundtrip");
        let r = app(&f, 1 << 20);
        assert_eq!(send(&r, "PUT", "/files/r%C3%A9sum%C3%A9%20v2.txt", b"hello").await.0, StatusCode::CREATED);
        let (status, list) = send(&r, "GET", "/files/", b"").await;
        assert_eq!(status, StatusCode::OK);
        let list: serde_json::Value = serde_json::from_str(&list).unwrap();
        assert_eq!(list[0]["name"], "résumé v2.txt");
        assert_eq!(list[0]["size"], 5);

        let req = Request::get("/files/r%C3%A9sum%C3%A9%20v2.txt").body(Body::empty()).unwrap();
        let resp = r.clone().oneshot(req).await.unwrap();
        assert_eq!(resp.headers()[header::CONTENT_LENGTH], "5");
        let disposition = resp.headers()[header::CONTENT_DISPOSITION].to_str().unwrap().to_string();
        assert_eq!(disposition, "attachment; filename=\"r_sum_ v2.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20v2.txt");
        assert_eq!(axum::body::to_bytes(resp.into_body(), 100).await.unwrap(), "hello");
    }

    #[tokio::test]
    async fn unsafe_names_are_refused_with_400_and_nothing_is_written() {
        let f = Folder::new("names");
        let r = app(&f, 1 << 20);
        for uri in [
            "/files/..%2F..%2Fetc%2Fpasswd",
            "/files/..",
            "/files/%2e%2e",
            "/files/a%2Fb",
            "/files/.hidden",
            "/files/a%00b",
        ] {
            assert_eq!(send(&r, "PUT", uri, b"x").await.0, StatusCode::BAD_REQUEST, "{uri}");
        }
        assert!(f.names("Desktop").is_empty());
        assert_eq!(f.names(""), ["Desktop"]);
    }

    #[tokio::test]
    async fn an_existing_file_conflicts_unless_overwrite_is_asked() {
        let f = Folder::new("conflict");
        let r = app(&f, 1 << 20);
        assert_eq!(send(&r, "PUT", "/files/a", b"one").await.0, StatusCode::CREATED);
        let (status, msg) = send(&r, "PUT", "/files/a", b"two").await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(msg.contains("already exists"), "{msg}");
        assert_eq!(std::fs::read(f.desktop().join("a")).unwrap(), b"one");
        assert_eq!(send(&r, "PUT", "/files/a?overwrite=1", b"two").await.0, StatusCode::OK);
        assert_eq!(std::fs::read(f.desktop().join("a")).unwrap(), b"two");
        assert_eq!(f.names("Desktop"), ["a"]);
    }

    #[tokio::test]
    async fn an_upload_over_the_limit_is_refused_with_413_and_leaves_nothing() {
        let f = Folder::new("limit");
        let r = app(&f, 1000);
        // Declared length over the limit: refused before anything is written.
        let (status, msg) = send(&r, "PUT", "/files/big", &[7u8; 1001]).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(msg.contains("upload limit of 1000 bytes"), "{msg}");
        // No declared length: refused while streaming, the temporary file removed.
        let chunks = futures_util::stream::iter((0..3).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![1u8; 600]))));
        let req = Request::put("/files/big").body(Body::from_stream(chunks)).unwrap();
        assert_eq!(r.clone().oneshot(req).await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(f.names("Desktop").is_empty());
        assert_eq!(send(&r, "PUT", "/files/small", &[7u8; 1000]).await.0, StatusCode::CREATED);
    }

    #[tokio::test]
    async fn a_cross_origin_upload_is_refused_with_403() {
        let f = Folder::new("origin");
        let r = app(&f, 1 << 20);
        let req = Request::put("/files/x")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::ORIGIN, "http://evil.example")
            .body(Body::from("x"))
            .unwrap();
        assert_eq!(r.clone().oneshot(req).await.unwrap().status(), StatusCode::FORBIDDEN);
        assert!(f.names("Desktop").is_empty());
    }

    #[tokio::test]
    async fn missing_files_are_404_and_disabled_transfer_says_so() {
        let f = Folder::new("missing");
        assert_eq!(send(&app(&f, 10), "GET", "/files/nope", b"").await.0, StatusCode::NOT_FOUND);
        let off: Router = routes(Arc::new(FilesState { share: None, allowed_origins: vec![] }));
        let (status, msg) = send(&off, "GET", "/files/", b"").await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert!(msg.contains("turned off"), "{msg}");
    }
}

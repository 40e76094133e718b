//! The router driven with `oneshot`, no socket and no GStreamer: the room runs on a
//! recording desktop, and `/health` and `/metrics` read a fake status.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt as _;

use super::*;
use crate::auth::{Mode, Role, Secret, TokenKey};
use crate::room::testing::{NoOutbox, Recorder};
use crate::room::{Audience, Limits};
use crate::turn::{IceServers, TurnCredentials};

struct FakeStatus {
    ok: bool,
}

impl Status for FakeStatus {
    fn health(&self) -> Result<serde_json::Value, serde_json::Value> {
        let body = serde_json::json!({"viewers": 0});
        if self.ok {
            Ok(body)
        } else {
            let mut b = body;
            b["reason"] = "no frame encoded yet".into();
            Err(b)
        }
    }
    fn metrics(&self) -> Vec<Metric> {
        vec![Metric::gauge("kelpie_viewers", "Connected viewers.", 0.0)]
    }
}

const SECRET: &[u8] = b"0123456789abcdef0123456789";

fn app_with(mode: Mode, base_path: &str, ok: bool) -> Router {
    build(mode, base_path, ok, false, false)
}

/// `ops_elsewhere`: as with --ops-listen; `ops`: that listener's router instead of the main one.
fn build(mode: Mode, base_path: &str, ok: bool, ops_elsewhere: bool, ops: bool) -> Router {
    let limits = Limits { max_participants: 4, max_framerate: 30, max_bitrate_kbps: 8000 };
    let rec = Arc::new(Recorder::default());
    let room = crate::room::RoomActor::new(limits, rec.clone(), rec, Audience::new(Arc::new(NoOutbox)));
    let auth_none = matches!(mode, Mode::None);
    let app = App {
        room,
        status: Arc::new(FakeStatus { ok }),
        allowed_origins: vec![],
        ice: IceServers {
            stun_urls: vec![],
            turn_urls: vec![],
            credentials: TurnCredentials::None,
            force_relay: false,
        },
        auth: Auth::new(mode, TokenKey::new(SECRET), false, base_path.into()),
        throttle: Mutex::new(Default::default()),
        slow_checks: tokio::sync::Semaphore::new(super::SLOW_CHECKS),
        trusted_proxies: vec![],
        cookie_secure: Default::default(),
        refusal_log: Default::default(),
        hosts: super::host::HostPolicy::new(&[], &[], auth_none),
        base_path: base_path.into(),
        tls: false,
        files: Arc::new(files::FilesState { share: None, allowed_origins: vec![] }),
        transport: crate::transport::Policy::Auto,
        audio: true,
        codec: Default::default(),
        boot: "b00t".into(),
        conns: Default::default(),
        ops_elsewhere,
    };
    let app = Arc::new(app);
    if ops {
        ops_router(app)
    } else {
        router(app)
    }
}

fn app() -> Router {
    app_with(Mode::None, "/", true)
}

fn token(role: Role, desktop: &str) -> String {
    TokenKey::new(SECRET)
        .mint(&crate::auth::Claims {
            user: "bob".into(),
            role,
            desktop: desktop.into(),
            expires_unix: now_unix() + 600,
        })
        .unwrap()
}

async fn call(router: &Router, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, String) {
    let resp = router.clone().oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    (status, headers, String::from_utf8_lossy(&bytes).into_owned())
}

fn get(uri: &str) -> Request<Body> {
    Request::get(uri).header(header::HOST, "127.0.0.1:8080").body(Body::empty()).unwrap()
}

fn share(body: &str, extra: Option<(&str, &str)>) -> Request<Body> {
    let mut b = Request::post("/share")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, "http://127.0.0.1:8080")
        .header(header::CONTENT_TYPE, "application/json");
    if let Some((k, v)) = extra {
        b = b.header(k, v);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

#[tokio::test]
async fn health_is_200_when_streaming_and_503_with_a_reason_when_not() {
    let (status, headers, body) = call(&app(), get("/health")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"], "ok");
    let (status, _, body) = call(&app_with(Mode::None, "/", false), get("/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!((v["status"].as_str(), v["reason"].as_str()), (Some("unavailable"), Some("no frame encoded yet")));
}

#[tokio::test]
async fn livez_answers_200_while_health_is_503_and_needs_no_credentials() {
    let basic = Mode::Basic { user: "kelpie".into(), password: Secret::new("pw") };
    let stalled = app_with(basic, "/", false);
    assert_eq!(call(&stalled, get("/health")).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let (status, headers, body) = call(&stalled, get("/livez")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"], "alive");
}

#[tokio::test]
async fn metrics_are_prometheus_text_without_credentials() {
    let basic = Mode::Basic { user: "kelpie".into(), password: Secret::new("pw") };
    let (status, headers, body) = call(&app_with(basic, "/", true), get("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    assert!(body.contains("# TYPE kelpie_viewers gauge\nkelpie_viewers 0\n"), "{body}");
    // The server's own counters follow the desktop's, every outcome from the start.
    for outcome in ["websocket", "no_decoder", "answer_rejected"] {
        assert!(body.contains(&format!("kelpie_codec_unsupported_total{{outcome=\"{outcome}\"}} 0\n")), "{body}");
    }
}

#[tokio::test]
async fn the_page_comes_with_its_security_headers_and_unknown_paths_are_404() {
    let (status, headers, body) = call(&app(), get("/")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("<video id=\"screen\""));
    assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
    assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
    assert_eq!(call(&app(), get("/nope.js")).await.0, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_unchanged_client_file_is_revalidated_without_its_body() {
    let (status, headers, body) = call(&app(), get("/app.js")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let etag = headers[header::ETAG].to_str().unwrap().to_owned();
    assert!(!body.is_empty());
    let again = |tag: &str| {
        Request::get("/app.js")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::IF_NONE_MATCH, tag)
            .body(Body::empty())
            .unwrap()
    };
    let (status, headers, body) = call(&app(), again(&etag)).await;
    assert_eq!(status, StatusCode::NOT_MODIFIED);
    assert!(body.is_empty(), "304 carries no body");
    assert_eq!(headers[header::ETAG], etag.as_str());
    assert!(headers.contains_key(header::CONTENT_SECURITY_POLICY), "the security headers come with a 304 too");
    let (status, _, body) = call(&app(), again("\"an-older-build\"")).await;
    assert_eq!(status, StatusCode::OK, "another tag: the file again");
    assert!(!body.is_empty());
}

#[tokio::test]
async fn only_this_origin_and_allowed_hubs_may_frame_the_page() {
    let (_, headers, _) = call(&app(), get("/")).await;
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
    assert!(csp.ends_with("frame-ancestors 'self'"), "{csp}");
    assert_eq!(headers[header::X_FRAME_OPTIONS], "SAMEORIGIN");
    let hub = super::content_security_policy(&[
        "https://hub.example.org/".into(),
        "https://evil.example; script-src *".into(),
        "javascript:alert(1)".into(),
    ]);
    assert!(hub.ends_with("frame-ancestors 'self' https://hub.example.org"), "{hub}");
}

#[tokio::test]
async fn basic_auth_guards_the_page_and_answers_with_a_realm() {
    let r = app_with(Mode::Basic { user: "kelpie".into(), password: Secret::new("pw") }, "/", true);
    let (status, headers, _) = call(&r, get("/")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers[header::WWW_AUTHENTICATE].to_str().unwrap().starts_with("Basic realm="));
    let ok = Request::get("/").header(header::AUTHORIZATION, "Basic a2VscGllOnB3").body(Body::empty()).unwrap();
    let (status, headers, _) = call(&r, ok).await;
    assert_eq!(status, StatusCode::OK);
    // The login hands out an owner cookie, so that later requests need no password check
    // (and are never slowed by someone else's wrong guesses).
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("kelpie_token=") && cookie.contains("HttpOnly") && !cookie.contains("Secure"),
        "{cookie}"
    );
    let value = cookie.split(';').next().unwrap();
    let claims = TokenKey::new(SECRET).verify(value.trim_start_matches("kelpie_token="), now_unix(), "/").unwrap();
    assert_eq!((claims.user.as_str(), claims.role), ("kelpie", Role::Owner));
    let with_cookie = Request::get("/").header(header::COOKIE, value).body(Body::empty()).unwrap();
    assert_eq!(call(&r, with_cookie).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_refusal_says_why_in_a_header_so_the_page_can_tell_an_expired_link() {
    let r = app_with(Mode::Token, "/", true);
    let expired = TokenKey::new(SECRET)
        .mint(&crate::auth::Claims { user: "bob".into(), role: Role::Owner, desktop: "/".into(), expires_unix: 10 })
        .unwrap();
    for (cookie, kind) in [(format!("kelpie_token={expired}"), "expired"), ("kelpie_token=forged.x".into(), "invalid")]
    {
        let req = Request::get("/ws")
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap();
        let (status, headers, body) = call(&r, req).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers["x-kelpie-denied"], kind, "{body}");
    }
    let (_, headers, body) = call(&r, get("/")).await;
    assert_eq!(headers["x-kelpie-denied"], "missing", "{body}");
}

#[tokio::test]
async fn with_auth_none_a_request_for_an_unknown_host_gets_421_on_every_route() {
    let r = app();
    for path in ["/", "/health", "/metrics", "/ws", "/files/", "/app.js"] {
        let req = Request::get(path).header(header::HOST, "rebind.example").body(Body::empty()).unwrap();
        let (status, _, body) = call(&r, req).await;
        assert_eq!(status, StatusCode::MISDIRECTED_REQUEST, "{path}: {body}");
        assert!(body.contains("--public-host rebind.example"), "{body}");
    }
    for host in ["localhost:8080", "127.0.0.1:8080", "[::1]:8080"] {
        let req = Request::get("/health").header(header::HOST, host).body(Body::empty()).unwrap();
        assert_eq!(call(&r, req).await.0, StatusCode::OK, "{host}");
    }
    // A login mode answers any name unless --public-host names them (proxies pass theirs on).
    let basic = app_with(Mode::Basic { user: "kelpie".into(), password: Secret::new("pw") }, "/", true);
    let req = Request::get("/health").header(header::HOST, "hub.example.org").body(Body::empty()).unwrap();
    assert_eq!(call(&basic, req).await.0, StatusCode::OK);
}

#[tokio::test]
async fn a_token_link_becomes_an_httponly_cookie_and_a_clean_url() {
    let r = app_with(Mode::Token, "/", true);
    let t = token(Role::Viewer, "/");
    let (status, headers, _) = call(&r, get(&format!("/?token={t}&x=1"))).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[header::LOCATION], "./?x=1");
    let cookie = headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cookie.starts_with(&format!("kelpie_token={t};")) && cookie.contains("HttpOnly"), "{cookie}");
    // A token for another desktop sharing the secret opens nothing here.
    let other = token(Role::Owner, "/other/");
    assert_eq!(call(&r, get(&format!("/?token={other}"))).await.0, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_owner_shares_a_view_only_link_that_opens_this_desktop_as_a_viewer() {
    let r = app_with(Mode::Token, "/", true);
    let owner = format!("Bearer {}", token(Role::Owner, "/"));
    let (status, _, body) =
        call(&r, share(r#"{"role":"viewer","ttl":3600,"name":"class"}"#, Some(("authorization", &owner)))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["role"], "viewer");
    let link = v["token"].as_str().unwrap();
    let claims = TokenKey::new(SECRET).verify(link, now_unix(), "/").unwrap();
    assert_eq!((claims.user.as_str(), claims.role), ("class", Role::Viewer));
    let expires = v["expires"].as_u64().unwrap();
    assert!((now_unix() + 3590..=now_unix() + 3600).contains(&expires));
}

#[tokio::test]
async fn only_owners_share_and_bad_requests_are_explained() {
    let r = app_with(Mode::Token, "/", true);
    let viewer = format!("Bearer {}", token(Role::Viewer, "/"));
    let guest = format!("Bearer {}", token(Role::Guest, "/"));
    let owner = format!("Bearer {}", token(Role::Owner, "/"));
    let ok = r#"{"role":"viewer","ttl":3600}"#;
    assert_eq!(call(&r, share(ok, Some(("authorization", &viewer)))).await.0, StatusCode::FORBIDDEN);
    let (status, _, msg) = call(&r, share(ok, Some(("authorization", &guest)))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(msg.contains("only owners"), "{msg}");
    assert_eq!(call(&r, share(ok, None)).await.0, StatusCode::UNAUTHORIZED);
    for bad in [
        r#"{"role":"owner","ttl":3600}"#,
        r#"{"role":"admin","ttl":3600}"#,
        r#"{"role":"viewer","ttl":5}"#,
        r#"{"role":"viewer","ttl":3600,"name":"a b"}"#,
        r#"{"role":"viewer"}"#,
        "not json",
    ] {
        let (status, _, msg) = call(&r, share(bad, Some(("authorization", &owner)))).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {msg}");
    }
    let foreign = Request::post("/share")
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ORIGIN, "http://evil.example")
        .header(header::AUTHORIZATION, &owner)
        .body(Body::from(ok))
        .unwrap();
    assert_eq!(call(&r, foreign).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn viewers_get_no_files() {
    let r = app_with(Mode::Token, "/", true);
    let viewer = format!("Bearer {}", token(Role::Viewer, "/"));
    let req = |m: &str| {
        Request::builder()
            .method(m)
            .uri(if m == "GET" { "/files/" } else { "/files/x.txt" })
            .header(header::HOST, "127.0.0.1:8080")
            .header(header::ORIGIN, "http://127.0.0.1:8080")
            .header(header::AUTHORIZATION, &viewer)
            .body(Body::from("x"))
            .unwrap()
    };
    let (status, _, msg) = call(&r, req("GET")).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(msg.contains("view-only"), "{msg}");
    assert_eq!(call(&r, req("PUT")).await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn under_a_base_path_the_app_answers_with_and_without_the_prefix() {
    let r = app_with(Mode::None, "/desk/", true);
    assert_eq!(call(&r, get("/desk/health")).await.0, StatusCode::OK);
    assert_eq!(call(&r, get("/health")).await.0, StatusCode::OK);
    let (status, headers, _) = call(&r, get("/desk")).await;
    assert_eq!(status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(headers[header::LOCATION], "desk/");
}

#[test]
fn every_run_gets_its_own_boot_id() {
    let (a, b) = (super::boot_id(), super::boot_id());
    assert_eq!(a.len(), 16);
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");
    assert_ne!(a, b);
}

fn browser_get(uri: &str) -> Request<Body> {
    Request::get(uri)
        .header(header::HOST, "127.0.0.1:8080")
        .header(header::ACCEPT, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn a_browser_gets_refusals_as_small_pages_that_say_what_to_do_and_curl_gets_text() {
    // A wrong path: where the desktop is instead.
    let (status, headers, body) = call(&app_with(Mode::None, "/desk/", true), browser_get("/desk/nope")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(body.contains(">Not found</h1>") && body.contains("The desktop is at /desk/"), "{body}");
    assert!(!body.contains("<script"), "only login refusals run login.js: {body}");
    assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().starts_with("default-src 'none'"));
    let (_, headers, body) = call(&app(), get("/nope")).await;
    assert!(headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/plain"), "{headers:?}");
    assert_eq!(body, "Not found: There is no page here. The desktop is at /\n");

    // No token: how to get in, as a page; nothing of the request is echoed.
    let (status, headers, body) = call(&app_with(Mode::Token, "/", true), browser_get("/?token=%3Cscript%3E")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(headers[header::CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(body.contains("link you were given"), "{body}");
    assert!(!body.contains("<script>"), "{body}");
    // It runs login.js (a #token= link never reached the server), which its CSP allows.
    assert!(body.contains("<script src=\"login.js\"></script>"), "{body}");
    assert!(headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("script-src 'self'"));
    // Basic: the browser prompts; the page behind the prompt says to log in.
    let r = app_with(Mode::Basic { user: "kelpie".into(), password: Secret::new("pw") }, "/", true);
    let (status, _, body) = call(&r, browser_get("/")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("log in with the desktop"), "{body}");
}

#[tokio::test]
async fn with_ops_elsewhere_the_main_address_keeps_livez_but_not_health_or_metrics() {
    // Basic auth, as a cluster deployment runs: /health and /metrics were open paths there.
    let main = build(basic_mode(), "/", true, true, false);
    for path in ["/health", "/metrics"] {
        let (status, _, body) = call(&main, get(path)).await;
        assert_ne!(status, StatusCode::OK, "{path}: {body}");
        assert!(!body.contains("kelpie_viewers"), "{path}: {body}");
    }
    let (status, _, body) = call(&main, get("/livez")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Without the option, both answer as before.
    let both = build(basic_mode(), "/", true, false, false);
    for path in ["/health", "/metrics", "/livez"] {
        assert_eq!(call(&both, get(path)).await.0, StatusCode::OK, "{path}");
    }
}

#[tokio::test]
async fn the_ops_address_serves_health_livez_and_metrics_to_anyone_and_nothing_else() {
    let ops = build(basic_mode(), "/", false, true, true);
    // A probe names the pod's IP, which no Host allowlist holds, and brings no credentials.
    let probe = |path: &str| Request::get(path).header(header::HOST, "10.1.2.3:9090").body(Body::empty()).unwrap();
    let (status, _, body) = call(&ops, probe("/health")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("\"reason\""), "{body}");
    let (status, _, body) = call(&ops, probe("/metrics")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("kelpie_viewers"), "{body}");
    assert_eq!(call(&ops, probe("/livez")).await.0, StatusCode::OK);
    for path in ["/", "/ws", "/share", "/files/", "/login"] {
        assert_eq!(call(&ops, probe(path)).await.0, StatusCode::NOT_FOUND, "{path}");
    }
}

fn basic_mode() -> Mode {
    Mode::Basic { user: "kelpie".into(), password: Secret::new("pw") }
}

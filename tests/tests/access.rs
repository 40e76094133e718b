//! Access control end to end: each auth mode, Origin checks, the login limiter, refusal
//! to start unauthenticated off loopback, TLS, the base path and `/metrics`.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{free_port, workspace_bin, Kelpie, XProbe, Xvfb};
use kelpie_tests::{SignallingSocket, ViewerClient, ViewerOptions};

const SECS: Duration = Duration::from_secs(1);
const TOKEN_SECRET: &str = "test-secret-0123456789abcdef";

fn display() -> (Xvfb, XProbe) {
    let x = Xvfb::start(640, 480);
    // Moving content: the damage-driven capture only sends frames when the screen changes.
    let probe = XProbe::start(&x.display, &["--animate", "30"]);
    (x, probe)
}

fn base_args() -> Vec<&'static str> {
    vec!["--framerate", "30", "--ice-address", "127.0.0.1"]
}

fn basic_header(user: &str, pw: &str) -> String {
    use std::io::Write;
    let mut out = Command::new("base64").arg("-w0").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    out.stdin.take().unwrap().write_all(format!("{user}:{pw}").as_bytes()).unwrap();
    let encoded = String::from_utf8(out.wait_with_output().unwrap().stdout).unwrap();
    format!("Basic {}", encoded.trim())
}

async fn ws_refused_with(k: &Kelpie, headers: &[(String, String)]) -> Option<u16> {
    SignallingSocket::connect_with_headers(&k.ws_url(), headers).await.err().and_then(|e| e.http_status())
}

/// The role the welcome names, or `None` when the upgrade is refused.
async fn ws_role(k: &Kelpie, headers: &[(String, String)]) -> Option<String> {
    let mut s = SignallingSocket::connect_with_headers(&k.ws_url(), headers).await.ok()?;
    let welcome = s.recv_type("welcome", 5 * SECS).await.ok()?;
    welcome["role"].as_str().map(str::to_owned)
}

async fn ws_welcomed(k: &Kelpie, headers: &[(String, String)]) -> bool {
    match SignallingSocket::connect_with_headers(&k.ws_url(), headers).await {
        Ok(mut s) => s.recv_type("welcome", 5 * SECS).await.is_ok(),
        Err(_) => false,
    }
}

fn mint(ttl: &str) -> String {
    let out = Command::new(workspace_bin("kelpie"))
        .args(["token", "--ttl", ttl, "--user", "alice"])
        .env("KELPIE_TOKEN_SECRET", TOKEN_SECRET)
        .output()
        .expect("kelpie token runs");
    assert!(out.status.success(), "kelpie token failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_streams_with_the_right_password_only() {
    let (x, _p) = display();
    let mut args = base_args();
    args.extend(["--auth", "basic", "--basic-user", "sci"]);
    let k = Kelpie::start_env(&x.display, &args, &[("KELPIE_BASIC_PASSWORD", "correct horse")]);

    let page = k.request("/", &[]).unwrap();
    assert_eq!(page.status, 401);
    assert!(page.header("www-authenticate").is_some_and(|v| v.starts_with("Basic")), "{:?}", page.headers);
    let wrong = basic_header("sci", "battery staple");
    assert_eq!(k.request("/", &[("Authorization", &wrong)]).unwrap().status, 401);
    let right = basic_header("sci", "correct horse");
    assert_eq!(k.request("/", &[("Authorization", &right)]).unwrap().status, 200);

    assert_eq!(ws_refused_with(&k, &[]).await, Some(401), "no WebSocket without credentials");
    assert_eq!(ws_refused_with(&k, &[("Authorization".into(), wrong)]).await, Some(401));
    let options = ViewerOptions { headers: vec![("Authorization".into(), right)], ..Default::default() };
    let viewer = ViewerClient::connect_with(&k.ws_url(), options).await.expect("authorised viewer connects");
    viewer.wait_for_frames(10, 10 * SECS).await.expect("and plays");
    assert_eq!(k.get("/health").unwrap().0, 200, "health stays open for probes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_is_exchanged_for_an_httponly_cookie_and_expires() {
    let (x, _p) = display();
    let mut args = base_args();
    args.extend(["--auth", "token"]);
    let k = Kelpie::start_env(&x.display, &args, &[("KELPIE_TOKEN_SECRET", TOKEN_SECRET)]);
    let token = mint("1h");

    let r = k.request(&format!("/?token={token}"), &[]).unwrap();
    assert_eq!(r.status, 303, "a token URL redirects to a clean one");
    assert_eq!(r.header("location"), Some("./"));
    let cookie = r.header("set-cookie").expect("sets a cookie").to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");
    let pair = cookie.split(';').next().unwrap().to_string();
    assert_eq!(k.request("/", &[("Cookie", &pair)]).unwrap().status, 200);
    assert_eq!(k.request("/", &[]).unwrap().status, 401);

    let options = ViewerOptions { headers: vec![("Cookie".into(), pair)], ..Default::default() };
    let viewer = ViewerClient::connect_with(&k.ws_url(), options).await.expect("cookie viewer connects");
    viewer.wait_for_frames(10, 10 * SECS).await.expect("and plays");

    let forged = token.replacen("v2.", "v2.x", 1);
    assert_eq!(ws_refused_with(&k, &[("Cookie".into(), format!("kelpie_token={forged}"))]).await, Some(401));
    let short = mint("1s");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(k.request(&format!("/?token={short}"), &[]).unwrap().status, 401, "expired token");
    assert_eq!(ws_refused_with(&k, &[("Cookie".into(), format!("kelpie_token={short}"))]).await, Some(401));
}

/// Arguments for `--auth trusted-header` with the user in X-Forwarded-User from `proxies`.
fn trusted_args<'a>(proxies: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = base_args();
    args.extend(["--auth", "trusted-header", "--trusted-header", "X-Forwarded-User", "--trusted-proxies", proxies]);
    args.extend(extra);
    args
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusted_header_is_believed_only_from_trusted_proxies() {
    let (x, _p) = display();
    let k = Kelpie::start(&x.display, &trusted_args("127.0.0.1/32", &[]));
    assert_eq!(k.request("/", &[("X-Forwarded-User", "carol")]).unwrap().status, 200);
    assert_eq!(k.request("/", &[]).unwrap().status, 401);
    assert!(ws_welcomed(&k, &[("X-Forwarded-User".into(), "carol".into())]).await);
    assert_eq!(ws_refused_with(&k, &[]).await, Some(401));
    drop(k);

    let k = Kelpie::start(&x.display, &trusted_args("10.9.0.0/16", &[]));
    assert_eq!(k.request("/", &[("X-Forwarded-User", "carol")]).unwrap().status, 401, "header from an untrusted peer");
    drop(k);

    // The proxy may say what the user may do; without a role header users are owners.
    let k = Kelpie::start(&x.display, &trusted_args("127.0.0.1/32", &["--trusted-role-header", "X-Kelpie-Role"]));
    let user = ("X-Forwarded-User".to_string(), "dave".to_string());
    let with_role = |r: &str| vec![user.clone(), ("X-Kelpie-Role".to_string(), r.to_string())];
    assert_eq!(ws_role(&k, &with_role("viewer")).await.as_deref(), Some("viewer"));
    assert_eq!(ws_role(&k, &with_role("Guest")).await.as_deref(), Some("guest"));
    assert_eq!(ws_role(&k, std::slice::from_ref(&user)).await.as_deref(), Some("owner"));
    assert_eq!(ws_refused_with(&k, &with_role("root")).await, Some(401), "an unknown role is refused");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_viewers_holds_under_concurrent_connects() {
    let (x, _p) = display();
    let mut args = base_args();
    args.extend(["--max-viewers", "2"]);
    let k = Kelpie::start(&x.display, &args);
    // Eight connections at once: slots are reserved before the greeting, so exactly two
    // are welcomed and the others are told the desktop is full.
    let attempts = (0..8).map(|_| {
        let url = k.ws_url();
        tokio::spawn(async move {
            let mut s = SignallingSocket::connect_with_headers(&url, &[]).await.expect("upgrade");
            let first = s.recv_json(10 * SECS).await.expect("a first message");
            (first["type"].as_str().unwrap_or_default().to_owned(), first["code"].clone(), s)
        })
    });
    let mut results = Vec::new();
    for a in attempts {
        results.push(a.await.expect("the attempt ran"));
    }
    let welcomed = results.iter().filter(|(t, _, _)| t == "welcome").count();
    let full = results.iter().filter(|(t, c, _)| t == "error" && c == "server_full").count();
    assert_eq!((welcomed, full), (2, 6), "{:?}", results.iter().map(|(t, c, _)| (t, c)).collect::<Vec<_>>());
    let h = k.health();
    assert!(h["branches"].as_u64().unwrap() <= 2 && h["viewers"].as_u64().unwrap() <= 2, "{h}");
}

/// The status of `GET /` with Basic `user:password`, by curl (whose 30 s limit outlasts the
/// throttle's delays), from a client a trusted proxy says is `forwarded_for`.
fn basic_status(port: u16, password: &str, forwarded_for: Option<&str>) -> u16 {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "30", "-u", &format!("kelpie:{password}")]);
    if let Some(ip) = forwarded_for {
        cmd.args(["-H", &format!("X-Forwarded-For: {ip}")]);
    }
    let out = cmd.arg(format!("http://127.0.0.1:{port}/")).output().expect("curl runs");
    String::from_utf8_lossy(&out.stdout).parse().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_slow_the_guesser_but_the_right_one_always_gets_in() {
    let (x, _p) = display();
    let mut args = base_args();
    // The test's own requests play both the direct client and the proxy (127.0.0.1).
    args.extend(["--auth", "basic", "--trusted-proxies", "127.0.0.1/32"]);
    let k = Kelpie::start_env(&x.display, &args, &[("KELPIE_BASIC_PASSWORD", "pw-pw-pw")]);
    let port = k.port;
    let wrong_from = |n: usize, client: Option<&'static str>| -> Vec<u16> {
        // Ten at once: past the budget the checks wait their turn, four at a time.
        let threads: Vec<_> = (0..n).map(|_| std::thread::spawn(move || basic_status(port, "guess", client))).collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    };
    // Twenty wrong passwords from one address: refused as wrong (401), never locked (429).
    let mut statuses: Vec<u16> = (0..10).map(|_| basic_status(port, "guess", None)).collect();
    statuses.extend(wrong_from(10, None));
    assert_eq!(statuses, vec![401; 20]);
    assert_eq!(basic_status(port, "pw-pw-pw", None), 200, "the right password after 20 wrong ones");
    // Behind a proxy everyone shares its address; a stranger's 20 guesses lock out neither
    // another user of the proxy nor the same one.
    let mut statuses: Vec<u16> = (0..10).map(|_| basic_status(port, "guess", Some("198.51.100.7"))).collect();
    statuses.extend(wrong_from(10, Some("198.51.100.7")));
    assert_eq!(statuses, vec![401; 20]);
    assert_eq!(basic_status(port, "pw-pw-pw", Some("198.51.100.8")), 200, "another client of the proxy");
    assert_eq!(basic_status(port, "pw-pw-pw", Some("198.51.100.7")), 200, "the guesser's own address, right password");
}

/// A fresh self-signed certificate for 127.0.0.1 in a directory of its own (removed by
/// the caller): (directory, certificate, key).
fn self_signed(tag: &str) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
    let dir = std::env::temp_dir().join(format!("kelpie-tls-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let ok = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-keyout", key.to_str().unwrap(), "-out", cert.to_str().unwrap()])
        .stderr(Stdio::null())
        .status()
        .expect("openssl runs");
    assert!(ok.success());
    (dir, cert, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_tls_connections_do_not_hold_up_others() {
    let (dir, cert, key) = self_signed("idle");
    let (x, _p) = display();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(workspace_bin("kelpie"))
        .args(["--display", &x.display, "--listen", &listen, "--tls-cert", cert.to_str().unwrap()])
        .args(["--tls-key", key.to_str().unwrap()])
        .args(base_args())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let health = |max_time: &str| {
        let out = Command::new("curl")
            .args(["-s", "--max-time", max_time, "--cacert", cert.to_str().unwrap()])
            .arg(format!("https://127.0.0.1:{port}/health"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut up = false;
    for _ in 0..100 {
        if health("5").contains("\"status\":\"ok\"") {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Forty clients connect and never say hello.
    let idle: Vec<std::net::TcpStream> =
        (0..40).map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).expect("connects")).collect();
    let body = health("30");
    // Cause and effect without a clock: the answer came while all forty still sat in their
    // handshakes (each is dropped after 10 s); served one after another, /health would
    // have waited for all of them to time out first.
    let still_open = idle
        .iter()
        .filter(|s| {
            s.set_nonblocking(true).unwrap();
            let mut b = [0u8; 1];
            matches!(std::io::Read::read(&mut &**s, &mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
        })
        .count();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(up, "kelpie served HTTPS");
    assert!(body.contains("\"status\":\"ok\""), "/health answered over TLS with 40 idle handshakes open: {body:?}");
    assert_eq!(still_open, 40, "/health answered while the idle connections were still waiting");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_at_accept_and_counted() {
    let (x, _p) = display();
    let mut args = base_args();
    args.extend(["--max-connections", "8"]);
    let k = Kelpie::start(&x.display, &args);
    let held: Vec<std::net::TcpStream> =
        (0..8).map(|_| std::net::TcpStream::connect(("127.0.0.1", k.port)).expect("connects")).collect();
    // The kernel accepts the ninth; Kelpie closes it without an answer.
    assert!(k.get("/health").is_none(), "a ninth connection is not served");
    drop(held);
    // The held ones are closed: the server's count falls and /health answers again.
    let mut metrics = None;
    for _ in 0..50 {
        if let Some((200, m)) = k.get("/metrics") {
            metrics = Some(m);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let m = parse_prometheus(&metrics.expect("served again once the idle connections closed"));
    assert!(sample(&m, "kelpie_connections_refused_total{why=\"full\"}") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_credentials_do_not_lock_anyone_out() {
    let (x, _p) = display();
    let mut args = base_args();
    args.extend(["--auth", "basic"]);
    let k = Kelpie::start_env(&x.display, &args, &[("KELPIE_BASIC_PASSWORD", "pw-pw-pw")]);
    for _ in 0..15 {
        assert_eq!(k.request("/", &[]).unwrap().status, 401);
    }
    let right = basic_header("kelpie", "pw-pw-pw");
    assert_eq!(k.request("/", &[("Authorization", &right)]).unwrap().status, 200);
}

fn refusal(args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, String) {
    let out = Command::new(workspace_bin("kelpie"))
        .args(args)
        .envs(env.iter().copied())
        .env_remove("KELPIE_BASIC_PASSWORD")
        .output()
        .expect("kelpie runs");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn unsafe_configurations_refuse_to_start_with_a_clear_message() {
    let port = free_port().to_string();
    let (code, err) = refusal(&["--listen", &format!("0.0.0.0:{port}")], &[]);
    assert_ne!(code, Some(0));
    assert!(err.contains("refusing to listen on 0.0.0.0") && err.contains("without authentication"), "{err}");

    let (code, err) = refusal(&["--auth", "basic"], &[]);
    assert_ne!(code, Some(0));
    assert!(err.contains("basic auth needs a password"), "{err}");

    let (code, err) = refusal(&["--auth", "token"], &[("KELPIE_TOKEN_SECRET", "short")]);
    assert_ne!(code, Some(0));
    assert!(err.contains("shorter than 16 bytes"), "{err}");
    assert!(!err.contains("short\n") && !err.contains("\"short\""), "the secret must not be echoed: {err}");

    let (code, err) = refusal(&["--auth", "trusted-header", "--trusted-header", "X-User"], &[]);
    assert_ne!(code, Some(0));
    assert!(err.contains("--trusted-proxies"), "{err}");

    let (code, err) = refusal(&["--force-relay"], &[]);
    assert_ne!(code, Some(0));
    assert!(err.contains("--force-relay needs at least one --turn-url"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_path_serves_under_the_prefix_and_at_the_root() {
    let (x, _p) = display();
    let mut args = base_args();
    args.extend(["--base-path", "/user/alice/desktop"]);
    let k = Kelpie::start(&x.display, &args);
    let page = k.request("/user/alice/desktop/", &[]).unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<video"));
    assert_eq!(k.request("/user/alice/desktop/app.js", &[]).unwrap().status, 200);
    let bare = k.request("/user/alice/desktop", &[]).unwrap();
    assert_eq!((bare.status, bare.header("location")), (308, Some("desktop/")));
    assert_eq!(k.request("/", &[]).unwrap().status, 200, "a prefix-stripping proxy reaches the root");
    let prefixed = format!("ws://127.0.0.1:{}/user/alice/desktop/ws", k.port);
    let viewer = ViewerClient::connect(&prefixed, None).await.expect("signalling under the prefix");
    viewer.wait_for_frames(5, 10 * SECS).await.expect("plays");
}

/// Minimal check of the Prometheus text format: comments, or `name{labels} value`.
fn parse_prometheus(text: &str) -> Vec<(String, f64)> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.starts_with("# HELP ") || line.starts_with("# TYPE ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad line {line:?}"));
        let name = series.split('{').next().unwrap();
        assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !name.is_empty(),
            "bad name in {line:?}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')), "bad labels in {line:?}");
        }
        let v: f64 = match value {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line:?}")),
        };
        samples.push((series.to_string(), v));
    }
    samples
}

fn sample(samples: &[(String, f64)], series: &str) -> f64 {
    samples.iter().find(|(s, _)| s == series).map(|(_, v)| *v).unwrap_or_else(|| panic!("{series} missing"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_parse_and_move_while_a_viewer_plays() {
    let (x, _p) = display();
    let k = Kelpie::start(&x.display, &base_args());
    let viewer = ViewerClient::connect(&k.ws_url(), None).await.expect("connects");
    viewer.wait_for_frames(10, 10 * SECS).await.expect("plays");
    viewer.send_input(&serde_json::json!({"t": "m", "x": 5, "y": 5})).await.unwrap();
    tokio::time::sleep(3 * SECS).await;
    let (status, text) = k.get("/metrics").expect("metrics answer");
    assert_eq!(status, 200);
    let a = parse_prometheus(&text);
    tokio::time::sleep(2 * SECS).await;
    let b = parse_prometheus(&k.get("/metrics").unwrap().1);

    assert_eq!(sample(&b, "kelpie_viewers"), 1.0);
    assert!(sample(&b, "kelpie_frames_encoded_total") > sample(&a, "kelpie_frames_encoded_total") + 30.0);
    let fps = sample(&b, "kelpie_delivered_fps");
    assert!((25.0..=35.0).contains(&fps), "fps {fps}");
    assert!(sample(&b, "kelpie_bitrate_bps") > 0.0);
    let enc = sample(&b, "kelpie_encode_seconds");
    assert!(enc > 0.0 && enc < 0.5, "encode time {enc}");
    assert!(sample(&b, "kelpie_input_events_total{result=\"applied\"}") >= 1.0);
    assert!(
        b.iter().any(|(s, v)| s.starts_with("kelpie_rtt_seconds{viewer=") && *v >= 0.0),
        "an RTT per viewer: {text}"
    );
    assert!(b.iter().any(|(s, _)| s == "kelpie_errors_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_serves_https_with_the_given_certificate() {
    let (dir, cert, key) = self_signed("serve");
    let (x, _p) = display();
    let mut args = base_args();
    args.extend(["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()]);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    args.extend(["--listen", &listen]);
    let mut child = Command::new(workspace_bin("kelpie"))
        .args(["--display", &x.display])
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("https://127.0.0.1:{port}/health");
    let mut body = String::new();
    for _ in 0..100 {
        let out = Command::new("curl").args(["-s", "--cacert", cert.to_str().unwrap(), &url]).output().unwrap();
        body = String::from_utf8_lossy(&out.stdout).into_owned();
        if body.contains("\"status\":\"ok\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let plain = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", &url.replace("https", "http")])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(body.contains("\"status\":\"ok\""), "HTTPS health with the certificate verified: {body:?}");
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200", "plain HTTP must not be served on the TLS port");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ops_listen_serves_health_and_metrics_there_and_no_longer_on_the_main_address() {
    let (x, _p) = display();
    let ops = free_port();
    let ops_addr = format!("127.0.0.1:{ops}");
    let mut args = base_args();
    args.extend(["--auth", "basic", "--ops-listen", &ops_addr]);
    // Kelpie::start waits for /health on the ops port (the harness reads --ops-listen).
    let k = Kelpie::start_env(&x.display, &args, &[("KELPIE_BASIC_PASSWORD", "pw-for-ops-test")]);
    assert_eq!(k.health_port, ops);

    // The ops address: no credentials, and only these three.
    let (status, body) = k.get_at(ops, "/health").expect("ops /health");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["status"], "ok");
    let (status, body) = k.get_at(ops, "/metrics").expect("ops /metrics");
    assert_eq!(status, 200);
    assert!(body.contains("kelpie_viewers"), "{body}");
    assert_eq!(k.get_at(ops, "/livez").expect("ops /livez").0, 200);
    assert_eq!(k.get_at(ops, "/").expect("ops /").0, 404);
    assert_eq!(k.get_at(ops, "/ws").expect("ops /ws").0, 404);

    // The main address: /health and /metrics are gone, /livez stays, the desktop still
    // needs its password.
    for path in ["/health", "/metrics"] {
        let (status, body) = k.get(path).expect("main answers");
        assert_eq!(status, 404, "{path}: {body}");
        assert!(!body.contains("kelpie_viewers"), "{path}: {body}");
    }
    assert_eq!(k.get("/livez").expect("main /livez").0, 200);
    assert_eq!(k.get("/").expect("main /").0, 401);
}

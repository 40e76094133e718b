//! The embedded display is Kelpie's alone: Xvfb admits only clients with this run's cookie
//! (a client without it, and another local user, are refused), the session gets the
//! cookie but none of Kelpie's secrets, and the cookie file goes when Kelpie stops. Its X
//! server, sound server and session go with it even when it is SIGKILLed.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, workspace_bin, Proc};

/// The unprivileged user that plays "another local user" when the test runs as root.
const NOBODY: u32 = 65534;

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

/// `xdpyinfo` on `display` with `xauthority`, optionally as another user; true if it connected.
fn xdpyinfo(display: &str, xauthority: &str, as_user: Option<u32>) -> bool {
    let mut cmd = match as_user {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.args([&format!("--reuid={uid}"), &format!("--regid={uid}"), "--clear-groups", "xdpyinfo"]);
            c
        }
        None => Command::new("xdpyinfo"),
    };
    cmd.args(["-display", display]).env("XAUTHORITY", xauthority).stdout(Stdio::null()).stderr(Stdio::null());
    cmd.status().map(|s| s.success()).unwrap_or(false)
}

/// Kelpie with its own display on `port`, quiet, and without an `XAUTHORITY` of ours to
/// fall back on.
fn embedded_kelpie(port: u16) -> Command {
    let mut cmd = Command::new(workspace_bin("kelpie"));
    cmd.args(["--listen", &format!("127.0.0.1:{port}")])
        .env_remove("XAUTHORITY")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    cmd
}

#[test]
fn the_embedded_display_admits_only_holders_of_its_cookie_and_the_session_gets_no_secrets() {
    let env_file = std::env::temp_dir().join(format!("kelpie-embedded-test-{}.env", std::process::id()));
    let _ = std::fs::remove_file(&env_file);
    let port = free_port();
    let child = embedded_kelpie(port)
        .args(["--size", "800x600", "--max-size", "1024x768"])
        .args(["--session", &format!("env > {}.tmp && mv {0}.tmp {0}; exec sleep 600", env_file.display())])
        .env("KELPIE_TOKEN_SECRET", "a-secret-the-desktop-must-not-see-0123")
        .env("KELPIE_BASIC_PASSWORD", "another-secret-for-nobody")
        .env_remove("G_SLICE")
        .spawn()
        .expect("kelpie starts");
    let mut kelpie = Proc(child);

    let deadline = Instant::now() + Duration::from_secs(30);
    while !env_file.exists() {
        assert!(Instant::now() < deadline, "the session never started");
        assert!(kelpie.0.try_wait().unwrap().is_none(), "kelpie exited before the session started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let session_env = std::fs::read_to_string(&env_file).unwrap();
    let _ = std::fs::remove_file(&env_file);
    let var = |name: &str| session_env.lines().find_map(|l| l.strip_prefix(&format!("{name}="))).map(str::to_owned);
    let display = var("DISPLAY").expect("the session has DISPLAY");
    let xauthority = PathBuf::from(var("XAUTHORITY").expect("the session has XAUTHORITY"));
    for secret in ["KELPIE_TOKEN_SECRET", "KELPIE_BASIC_PASSWORD"] {
        assert_eq!(var(secret), None, "the session inherited {secret}");
    }
    assert!(!session_env.contains("a-secret-the-desktop-must-not-see"), "a secret value reached the session");
    // Kelpie runs with GLib's slice allocator off (kelpie::heap, a second exec of itself,
    // same PID), but that tuning is for Kelpie, not for the desktop's programs.
    let own_env = std::fs::read(format!("/proc/{}/environ", kelpie.0.id())).expect("kelpie's environ");
    let own_env: Vec<&[u8]> = own_env.split(|&b| b == 0).collect();
    assert!(own_env.contains(&&b"G_SLICE=always-malloc"[..]), "kelpie runs without G_SLICE=always-malloc");
    let comm = std::fs::read_to_string(format!("/proc/{}/comm", kelpie.0.id())).expect("kelpie's name");
    assert_eq!(comm.trim(), "kelpie", "after its second exec kelpie is still called kelpie (ps, pgrep)");
    assert_eq!(var("G_SLICE"), None, "the session inherited Kelpie's G_SLICE");
    assert_eq!(var("GSLICE_SET_BY_KELPIE"), None, "the session inherited the restart's mark");

    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&xauthority).expect("the cookie file exists").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the cookie file is private");

    let cookie = xauthority.to_str().unwrap();
    assert!(xdpyinfo(&display, cookie, None), "a client with the cookie connects");
    assert!(!xdpyinfo(&display, "/nonexistent", None), "a client without the cookie is refused");
    if is_root() {
        assert!(!xdpyinfo(&display, cookie, Some(NOBODY)), "another local user is refused");
    } else {
        eprintln!("not root: cannot act as another user; the cookie-less refusal covers it");
    }

    // Kelpie itself streams with the cookie: /health reports encoded frames.
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        let body = health_body(port).unwrap_or_default();
        if body.contains("\"status\":\"ok\"") || Instant::now() > deadline {
            break body;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(health.contains("\"status\":\"ok\""), "kelpie cannot stream its own display: {health}");

    // SIGTERM: Kelpie stops its display and removes the cookie.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc_kill(kelpie.0.id() as i32, 15) };
    let deadline = Instant::now() + Duration::from_secs(15);
    while kelpie.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "kelpie did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!xauthority.exists(), "the cookie file is removed when Kelpie stops");
}

/// Direct children of `pid`, with their names (`/proc/PID/task/*/children`).
fn children(pid: u32) -> Vec<(u32, String)> {
    let mut out = Vec::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for task in tasks.flatten() {
        let list = std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
        for child in list.split_whitespace().filter_map(|c| c.parse::<u32>().ok()) {
            let name = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default().trim().to_owned();
            out.push((child, name));
        }
    }
    out
}

/// Gone, or a zombie nobody has reaped yet (it no longer runs either way).
fn not_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('Z')),
    }
}

/// A SIGKILL gives Kelpie no chance to stop anything; the kernel's parent-death signal
/// (kelpie::child) stops its Xvfb, its PulseAudio and its session anyway, instead of
/// leaving them to init with the display and the sound server's socket.
#[test]
fn a_killed_kelpie_takes_its_x_server_sound_server_and_session_with_it() {
    let has_pulse = Command::new("sh")
        .args(["-c", "command -v pulseaudio"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let port = free_port();
    let child = embedded_kelpie(port)
        .args(["--size", "640x480", "--session", "exec sleep 600"])
        .spawn()
        .expect("kelpie starts");
    let mut kelpie = Proc(child);
    let pid = kelpie.0.id();
    let wanted = |kids: &[(u32, String)]| {
        let has = |n: &str| kids.iter().any(|(_, k)| k == n);
        has("Xvfb") && has("sleep") && (!has_pulse || has("pulseaudio"))
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let kids = loop {
        let kids = children(pid);
        if wanted(&kids) {
            break kids;
        }
        assert!(Instant::now() < deadline, "kelpie never had its Xvfb, session and PulseAudio running: {kids:?}");
        assert!(kelpie.0.try_wait().unwrap().is_none(), "kelpie exited early");
        std::thread::sleep(Duration::from_millis(50));
    };
    let watched: Vec<(u32, String)> =
        kids.into_iter().filter(|(_, n)| ["Xvfb", "sleep", "pulseaudio"].contains(&n.as_str())).collect();

    kelpie.0.kill().expect("SIGKILL");
    kelpie.0.wait().expect("reaped");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left: Vec<&(u32, String)> = watched.iter().filter(|(p, _)| !not_running(*p)).collect();
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            for (p, _) in &left {
                // SAFETY: kill(2) on a pid this test saw as kelpie's child; cleaning up.
                unsafe { libc_kill(*p as i32, 9) };
            }
            panic!("still running 15 s after kelpie was SIGKILLed: {left:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The body of `GET /health` (a bare HTTP/1.0 request).
fn health_body(port: u16) -> Option<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(format!("GET /health HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes()).ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    resp.split_once("\r\n\r\n").map(|(_, b)| b.to_owned())
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

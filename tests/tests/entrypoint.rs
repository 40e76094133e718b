//! The container entrypoint script, run on the host exactly as the image runs it: as an
//! unprivileged user, starting its own Xvfb and session, and streaming.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{free_port, workspace_bin, Proc};
use kelpie_tests::ViewerClient;

/// The unprivileged user the test runs Kelpie as when it is itself root (`nobody`).
const NOBODY: u32 = 65534;

fn entrypoint() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../containers/entrypoint.sh")
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn uid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find(|l| l.starts_with("Uid:"))?.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn entrypoint_refuses_to_run_as_root() {
    if !is_root() {
        eprintln!("not root: the refusal cannot be exercised; the unprivileged test covers the rest");
        return;
    }
    let out = Command::new("sh")
        .arg(entrypoint())
        .env("KELPIE_BIN", workspace_bin("kelpie"))
        .env_remove("KELPIE_ALLOW_ROOT")
        .output()
        .expect("sh runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refusing to run as root"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entrypoint_streams_as_an_unprivileged_user() {
    let port = free_port();
    let mut cmd = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid", &NOBODY.to_string(), "--regid", &NOBODY.to_string(), "--clear-groups", "--"]);
        c.arg("sh");
        c
    } else {
        Command::new("sh")
    };
    cmd.arg(entrypoint())
        .args(["--listen", &format!("127.0.0.1:{port}"), "--size", "800x600", "--framerate", "30"])
        .args(["--ice-address", "127.0.0.1"])
        // Moving content, so that the damage-driven capture streams at the full rate.
        .args(["--session", &format!("{} --animate 30", workspace_bin("kelpie-xprobe").display())])
        .env("KELPIE_BIN", workspace_bin("kelpie"))
        .env("HOME", "/nonexistent")
        .env("KELPIE_PULSEAUDIO", "0")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let child = Proc(cmd.spawn().expect("entrypoint starts"));
    let pid = child.0.id();

    let url = format!("ws://127.0.0.1:{port}/ws");
    let deadline = Instant::now() + Duration::from_secs(30);
    let viewer = loop {
        match ViewerClient::connect(&url, None).await {
            Ok(v) => break v,
            Err(e) if Instant::now() > deadline => panic!("entrypoint never served a stream: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(300)).await,
        }
    };
    viewer.wait_for_frames(20, Duration::from_secs(10)).await.expect("frames arrive");
    let stats = viewer.stats();
    assert_eq!((stats.width, stats.height), (Some(800), Some(600)));

    let expected = if is_root() { NOBODY } else { uid_of(std::process::id()).expect("own uid") };
    assert_eq!(uid_of(pid), Some(expected), "kelpie (pid {pid}) must run as the unprivileged user");
    let _ = viewer.close().await;
    // SIGTERM lets kelpie stop its Xvfb and session; Proc's drop then reaps it.
    let _ = Command::new("kill").arg(pid.to_string()).status();
    let start = Instant::now();
    let mut child = child;
    while start.elapsed() < Duration::from_secs(10) {
        if let Ok(Some(status)) = child.0.try_wait() {
            assert!(status.success(), "kelpie exits cleanly on SIGTERM: {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("kelpie did not stop within 10 s of SIGTERM");
}

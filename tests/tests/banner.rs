//! The start-up banner, read as a person (or a script) reads Kelpie's terminal: after the
//! log lines, it says what is streamed and who may use it, and its last line is the
//! address to open, alone. Written to a pipe, the output has no colour codes.

mod common;

use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{free_port, workspace_bin, Xvfb};

#[test]
fn the_banner_ends_with_the_address_to_open_and_a_pipe_gets_no_colours() {
    let xvfb = Xvfb::start(640, 480);
    let port = free_port();
    let child = Command::new(workspace_bin("kelpie"))
        .args(["--display", &xvfb.display, "--listen", &format!("127.0.0.1:{port}"), "--audio", "off"])
        .env("KELPIE_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("kelpie starts");
    let mut kelpie = common::Proc(child);
    let stderr = kelpie.0.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });

    let url = format!("http://127.0.0.1:{port}/");
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !lines.iter().any(|l: &String| l == &url) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no line with only {url} within 30 s:\n{}", lines.join("\n"));
        match rx.recv_timeout(left) {
            Ok(line) => lines.push(line),
            Err(_) => panic!("kelpie's output ended without the address:\n{}", lines.join("\n")),
        }
    }
    let text = lines.join("\n");
    let start = lines.iter().rposition(|l| l.starts_with("Kelpie is streaming display")).expect("a banner");
    let banner = &lines[start..];
    assert!(banner[0].contains(&format!("{} (640x480) with ", xvfb.display)), "{text}");
    assert!(banner.iter().any(|l| l.contains("no login")), "{text}");
    assert!(banner.iter().any(|l| l.contains("Ctrl+C")), "{text}");
    assert_eq!(banner.last(), Some(&url), "the banner's last line is the address: {text}");
    assert!(!text.contains('\u{1b}'), "colour codes in output to a pipe:\n{text}");
    // The pipeline's launch line is a debug detail now, not start-up noise.
    assert!(!lines.iter().any(|l| l.contains("pipeline: kelpiexsrc")), "{text}");
}

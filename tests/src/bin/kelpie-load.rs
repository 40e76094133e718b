//! `kelpie-load`: N webrtc-rs viewers of one `kelpie`, each reporting the frame rate it
//! receives. For the benchmark's many-viewers scenarios.
//!
//! Usage: `kelpie-load --url ws://127.0.0.1:PORT/ws [--viewers N[,M,...]] [--seconds S]
//! [--settle S]`
//!
//! With several counts (`--viewers 1,4,8`) it ramps up: connects viewers until there are
//! N, lets the stream settle, measures for `--seconds`, then adds viewers up to M, and so
//! on, so that one server and one display serve every stage. Prints JSON lines:
//!
//! * `{"ev":"connected","viewers":N,"t_ms"}` when a stage's viewers are all connected;
//! * `{"ev":"measure_start","viewers":N,"t_ms"}` and `{"ev":"measure_end","viewers":N,"t_ms"}`
//!   around each measuring window (the caller samples the server's CPU at these);
//! * `{"ev":"stage","viewers":N,"seconds","fps":[...],"glitched":[...],"lost_packets":[...],
//!   "connect_ms":[...],"first_keyframe_ms":[...]}` per stage, one entry per viewer in
//!   connection order;
//! * `{"ev":"error","message"}` on failure (exit status 1).
//!
//! A "frame" is a complete access unit (every packet, marker bit), i.e. one a browser
//! could decode; "glitched" counts frames with a hole after the first keyframe.

use std::io::Write;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kelpie_tests::{ViewerClient, ViewerOptions};
use serde_json::{json, Value};

const USAGE: &str = "usage: kelpie-load --url ws://127.0.0.1:PORT/ws [--viewers N[,M,...]] [--seconds S] [--settle S]";

struct Args {
    url: String,
    stages: Vec<usize>,
    seconds: f64,
    settle: f64,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut stages = vec![1];
    let mut seconds = 10.0;
    let mut settle = 2.0;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value\n{USAGE}"));
        match arg.as_str() {
            "--url" => url = Some(value()?),
            "--viewers" => {
                stages = value()?
                    .split(',')
                    .map(|v| v.trim().parse::<usize>().map_err(|_| format!("bad viewer count {v:?}")))
                    .collect::<Result<_, _>>()?;
                if stages.is_empty() || stages.contains(&0) || stages.windows(2).any(|w| w[1] < w[0]) {
                    return Err("--viewers: positive, non-decreasing counts".into());
                }
            }
            "--seconds" => seconds = value()?.parse().map_err(|_| "--seconds needs a number")?,
            "--settle" => settle = value()?.parse().map_err(|_| "--settle needs a number")?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let url = url.ok_or_else(|| format!("--url is required\n{USAGE}"))?;
    Ok(Args { url, stages, seconds, settle })
}

fn emit(v: Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}").and_then(|()| out.flush());
}

fn wall_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

struct Viewer {
    client: ViewerClient,
    connect_ms: f64,
}

async fn run(args: &Args) -> Result<(), String> {
    let mut viewers: Vec<Viewer> = Vec::new();
    for &target in &args.stages {
        while viewers.len() < target {
            let t0 = Instant::now();
            let options = ViewerOptions { connect_timeout: Duration::from_secs(15), ..ViewerOptions::default() };
            let client = ViewerClient::connect_with(&args.url, options)
                .await
                .map_err(|e| format!("viewer {} did not connect: {e}", viewers.len() + 1))?;
            viewers.push(Viewer { client, connect_ms: t0.elapsed().as_secs_f64() * 1000.0 });
        }
        for (i, v) in viewers.iter().enumerate() {
            v.client
                .wait_for_keyframes(1, Duration::from_secs(10))
                .await
                .map_err(|e| format!("viewer {} got no keyframe: {e}", i + 1))?;
        }
        emit(json!({"ev": "connected", "viewers": viewers.len(), "t_ms": wall_ms()}));
        tokio::time::sleep(Duration::from_secs_f64(args.settle)).await;

        let before: Vec<_> = viewers.iter().map(|v| v.client.stats()).collect();
        let t0 = Instant::now();
        emit(json!({"ev": "measure_start", "viewers": viewers.len(), "t_ms": wall_ms()}));
        tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
        let after: Vec<_> = viewers.iter().map(|v| v.client.stats()).collect();
        let elapsed = t0.elapsed().as_secs_f64();
        emit(json!({"ev": "measure_end", "viewers": viewers.len(), "t_ms": wall_ms()}));

        let round = |x: f64| (x * 100.0).round() / 100.0;
        let fps: Vec<f64> =
            before.iter().zip(&after).map(|(b, a)| round((a.frames - b.frames) as f64 / elapsed)).collect();
        let glitched: Vec<u64> =
            before.iter().zip(&after).map(|(b, a)| a.incomplete_after_keyframe - b.incomplete_after_keyframe).collect();
        let lost: Vec<u64> = before.iter().zip(&after).map(|(b, a)| a.lost_packets - b.lost_packets).collect();
        let max_gap_ms: Vec<f64> = after.iter().map(|a| round(a.max_frame_gap.as_secs_f64() * 1000.0)).collect();
        let first_kf: Vec<Option<f64>> =
            after.iter().map(|a| a.first_keyframe_after.map(|d| round(d.as_secs_f64() * 1000.0))).collect();
        let disconnected = after.iter().filter(|a| a.is_disconnected()).count();
        emit(json!({
            "ev": "stage",
            "viewers": viewers.len(),
            "seconds": round(elapsed),
            "fps": fps,
            "glitched": glitched,
            "lost_packets": lost,
            "max_frame_gap_ms": max_gap_ms,
            "connect_ms": viewers.iter().map(|v| round(v.connect_ms)).collect::<Vec<_>>(),
            "first_keyframe_ms": first_kf,
            "disconnected": disconnected,
        }));
    }
    // A moment before leaving, so whoever samples the server's CPU on `measure_end` still
    // finds us here.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for v in viewers {
        let _ = tokio::time::timeout(Duration::from_secs(3), v.client.close()).await;
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            std::process::exit(2);
        }
    };
    if let Err(message) = run(&args).await {
        emit(json!({"ev": "error", "message": message}));
        std::process::exit(1);
    }
}

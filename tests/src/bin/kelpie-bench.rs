//! `kelpie-bench`: CPU, delivered frame rate and time to first frame of a real `kelpie`
//! streaming full-screen moving content to a webrtc-rs viewer on loopback.
//!
//! Usage: `kelpie-bench [--seconds N] [--scenario 1080p30,1080p60,...]`. Uses the `kelpie`
//! and `kelpie-xprobe` binaries next to this one (build all three with `--release`). It
//! prints a Markdown table for `docs/benchmarks.md` and one JSON line per scenario.

use std::time::{Duration, Instant};

use kelpie_tests::harness::{workspace_bin, Kelpie, XProbe, Xvfb};
use kelpie_tests::ViewerClient;

struct Scenario {
    name: String,
    width: u32,
    height: u32,
    fps: u32,
}

fn parse_scenario(s: &str) -> Result<Scenario, String> {
    let (res, fps) = s.split_once('p').ok_or_else(|| format!("{s:?}: expected e.g. 1080p60"))?;
    let fps: u32 = fps.parse().map_err(|_| format!("{s:?}: bad frame rate"))?;
    let (width, height) = match res {
        "720" => (1280, 720),
        "1080" => (1920, 1080),
        "1440" => (2560, 1440),
        _ => return Err(format!("{s:?}: resolution must be 720, 1080 or 1440")),
    };
    Ok(Scenario { name: s.to_string(), width, height, fps })
}

/// CPU time (user + system) of a process, from /proc.
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 1000 / clock_ticks()))
}

fn clock_ticks() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100)
}

/// Peak resident memory of a process in MiB.
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

struct Result_ {
    name: String,
    fps_target: u32,
    fps: f64,
    ttff_ms: f64,
    cpu_pct: f64,
    probe_cpu_pct: f64,
    rss_mib: f64,
    incomplete: u64,
}

async fn run(s: &Scenario, seconds: u64) -> Result<Result_, String> {
    let x = Xvfb::start(s.width, s.height);
    let probe = XProbe::start(&x.display, &["--animate", &s.fps.to_string()]);
    let probe_pid = probe.pid();
    let k = Kelpie::start_bin(
        &workspace_bin("kelpie"),
        &x.display,
        &["--framerate", &s.fps.to_string(), "--ice-address", "127.0.0.1"],
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    let viewer = ViewerClient::connect(&k.ws_url(), None).await.map_err(|e| e.to_string())?;
    let first = viewer.wait_for_keyframes(1, Duration::from_secs(10)).await.map_err(|e| e.to_string())?;
    let ttff = first.first_keyframe_after.unwrap_or_default();
    tokio::time::sleep(Duration::from_secs(2)).await; // settle: encoder rate control, caches

    let (c0, p0, f0, t0) = (cpu_time(k.pid()), cpu_time(probe_pid), viewer.stats().frames, Instant::now());
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (c1, p1, stats, elapsed) = (cpu_time(k.pid()), cpu_time(probe_pid), viewer.stats(), t0.elapsed());
    let pct = |a: Option<Duration>, b: Option<Duration>| match (a, b) {
        (Some(a), Some(b)) => 100.0 * (b - a).as_secs_f64() / elapsed.as_secs_f64(),
        _ => f64::NAN,
    };
    let result = Result_ {
        name: s.name.clone(),
        fps_target: s.fps,
        fps: (stats.frames - f0) as f64 / elapsed.as_secs_f64(),
        ttff_ms: ttff.as_secs_f64() * 1000.0,
        cpu_pct: pct(c0, c1),
        probe_cpu_pct: pct(p0, p1),
        rss_mib: peak_rss_mib(k.pid()).unwrap_or(f64::NAN),
        incomplete: stats.incomplete_after_keyframe,
    };
    let _ = viewer.close().await;
    Ok(result)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut seconds = 10;
    let mut scenarios = "1080p30,1080p60".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => seconds = args.next().and_then(|v| v.parse().ok()).unwrap_or(seconds),
            "--scenario" => scenarios = args.next().unwrap_or(scenarios),
            "-h" | "--help" => {
                println!("usage: kelpie-bench [--seconds N] [--scenario 1080p30,1080p60,720p30]");
                return;
            }
            other => {
                eprintln!("kelpie-bench: unknown argument {other:?} (try --help)");
                std::process::exit(2);
            }
        }
    }
    let mut rows = Vec::new();
    for name in scenarios.split(',') {
        let s = match parse_scenario(name.trim()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("kelpie-bench: {e}");
                std::process::exit(2);
            }
        };
        eprintln!("kelpie-bench: running {} for {seconds} s ...", s.name);
        match run(&s, seconds).await {
            Ok(r) => {
                println!(
                    "{{\"scenario\":\"{}\",\"target_fps\":{},\"delivered_fps\":{:.2},\"time_to_first_frame_ms\":{:.0},\"kelpie_cpu_pct\":{:.1},\"content_generator_cpu_pct\":{:.1},\"kelpie_peak_rss_mib\":{:.1},\"glitched_frames\":{}}}",
                    r.name, r.fps_target, r.fps, r.ttff_ms, r.cpu_pct, r.probe_cpu_pct, r.rss_mib, r.incomplete
                );
                rows.push(r);
            }
            Err(e) => {
                eprintln!("kelpie-bench: {} failed: {e}", s.name);
                std::process::exit(1);
            }
        }
    }
    println!();
    println!("| scenario | delivered fps | time to first frame | kelpie CPU (% of one core) | peak RSS | content generator CPU |");
    println!("|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} moving | {:.1} / {} | {:.0} ms | {:.0} % | {:.0} MiB | {:.0} % |",
            r.name, r.fps, r.fps_target, r.ttff_ms, r.cpu_pct, r.rss_mib, r.probe_cpu_pct
        );
    }
}

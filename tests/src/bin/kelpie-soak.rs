//! `kelpie-soak`: connect/disconnect cycles of webrtc-rs viewers against one `kelpie`,
//! looking for what a long-lived desktop would leak (`make soak`, docs/reliability.md).
//!
//! Usage: `kelpie-soak [--cycles N] [--warmup N] [--hold S] [--no-resize]` (defaults 500, 72
//! and 0), with the `kelpie` and `kelpie-xprobe` binaries next to this one (build with
//! `--release`).
//!
//! Each cycle: a viewer connects, waits for a frame, types text whose characters are not
//! on the keyboard (each needs a spare keycode bound for it), asks for a screen size of
//! its own (a RandR mode), and leaves; every 10th cycle it vanishes without closing. After
//! `--warmup` cycles the server's RSS and open file descriptors are taken; after all of
//! them, once the room is empty and stopped branches are freed, again (both counts are
//! rounded up to whole rounds of the screen sizes asked for). Prints one JSON line with the
//! figures (descriptors by kind and threads by name, so a growth names its source) and
//! exits 1 if the RSS grew by more than 5 MiB, descriptors or threads grew, or a branch, a
//! held keycode binding or a RandR mode of Kelpie's other than the screen's remains.
//!
//! **Why the warm-up is at least [`GRAVE_CAP`] cycles.** A stopped branch is kept for 30 s
//! before it is freed (`media::grave`, up to 64 of them), and each holds about a megabyte.
//! At a cycle every half second, 60 of them are held at once: the allocator's high-water
//! mark, which glibc keeps as freed-but-mapped memory afterwards. That is a bounded cost of
//! the grave, paid once, not a leak; a warm-up shorter than the grave's fill measured it as
//! growth (20 cycles: +11 MB over 201 more; 99 cycles: +2.1 MB, 2026-12-07).
//!
//! `--no-resize`: the viewers leave the screen size alone. `--hold S` keeps the server S
//! seconds at each of the two measurements, its PID on stderr, so that a person can look
//! inside it then (`gdb -p`, `heaptrack -p`, pmap).

use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use kelpie_tests::harness::{workspace_bin, Kelpie, XProbe, Xvfb};
use kelpie_tests::ViewerClient;
use serde_json::json;

const USAGE: &str = "usage: kelpie-soak [--cycles N] [--warmup N] [--hold SECONDS] [--no-resize]";
const MAX_RSS_GROWTH_KIB: i64 = 5 * 1024;
/// Sizes the viewers ask for in turn: each is a RandR mode the server must not keep.
const SIZES: [(u32, u32); 3] = [(1280, 720), (1024, 768), (1152, 648)];
/// Longer than the grace a stopped participant's branch is kept for (media::grave).
const GRAVE_GRACE: Duration = Duration::from_secs(35);
/// How many stopped branches the server keeps at most (`media::grave::CAP`).
const GRAVE_CAP: u64 = 64;
/// The default warm-up: past the grave's fill, in whole rounds of [`SIZES`].
const DEFAULT_WARMUP: u64 = GRAVE_CAP + 8;

/// `n` rounded up to whole rounds of [`SIZES`], so that both measurements follow the same
/// size (the current RandR mode is one the server keeps).
fn whole_rounds(n: u64) -> u64 {
    n.div_ceil(SIZES.len() as u64) * SIZES.len() as u64
}

fn rss_kib(pid: u32) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(-1)
}

fn open_fds(pid: u32) -> i64 {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(-1, |d| d.count() as i64)
}

/// Open descriptors by kind (`socket`, `pipe`, `anon_inode:[eventfd]`, or a file's path),
/// so that a growth says what grew.
fn fd_kinds(pid: u32) -> std::collections::BTreeMap<String, i64> {
    let mut kinds = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return kinds };
    for entry in dir.flatten() {
        let target = std::fs::read_link(entry.path()).map_or_else(|_| "?".into(), |t| t.display().to_string());
        let kind = target.split_once(":[").map_or(target.clone(), |(k, rest)| {
            if k == "anon_inode" {
                format!("anon_inode:[{rest}")
            } else {
                k.to_owned()
            }
        });
        *kinds.entry(kind).or_insert(0) += 1;
    }
    kinds
}

/// Threads of `pid` by name: a growth in threads names the component that left them.
fn thread_names(pid: u32) -> std::collections::BTreeMap<String, i64> {
    let mut names = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return names };
    for entry in dir.flatten() {
        let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default().trim().to_owned();
        *names.entry(name).or_insert(0) += 1;
    }
    names
}

/// RandR modes the X server knows (`xrandr --verbose` lists each once), and of them the
/// ones Kelpie made (`_kelpie`) that the screen is not using: those are the leak. The
/// screen's own mode stays with it, and which size the last viewer left the screen at
/// depends on whether its resize landed before it left.
fn randr_modes(display: &str) -> (i64, i64) {
    let out = Command::new("xrandr").args(["--display", display, "--verbose"]).output();
    out.map_or((-1, -1), |o| {
        let text = String::from_utf8_lossy(&o.stdout);
        let modes: Vec<&str> = text.lines().filter(|l| l.contains("MHz")).collect();
        let stale = modes.iter().filter(|l| l.contains("_kelpie") && !l.contains("*current")).count();
        (modes.len() as i64, stale as i64)
    })
}

/// Keycodes with a keysym bound (`xmodmap -pke`): spare keycodes bound for typed text
/// must be reused, not piled up.
fn bound_keycodes(display: &str) -> i64 {
    let out = Command::new("xmodmap").args(["-display", display, "-pke"]).output();
    out.map_or(-1, |o| {
        String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.split_once('=').is_some_and(|(_, r)| !r.trim().is_empty()))
            .count() as i64
    })
}

async fn cycle(k: &Kelpie, i: u64, resize: bool) -> Result<(), String> {
    let v = ViewerClient::connect(&k.ws_url(), None).await.map_err(|e| format!("cycle {i}: connect: {e}"))?;
    v.wait_for_frames(1, Duration::from_secs(15)).await.map_err(|e| format!("cycle {i}: no frame: {e}"))?;
    let (w, h) = SIZES[(i % SIZES.len() as u64) as usize];
    let _ = v.send_input(&json!({"t": "txt", "s": "ÆØÅ→€"})).await;
    if resize {
        let _ = v.send_input(&json!({"t": "resize", "w": w, "h": h})).await;
    }
    if i % 10 == 9 {
        drop(v); // gone without a goodbye
    } else {
        v.close().await.map_err(|e| format!("cycle {i}: close: {e}"))?;
    }
    Ok(())
}

fn arg(args: &[String], name: &str, default: u64) -> Result<u64, String> {
    match args.iter().position(|a| a == name) {
        None => Ok(default),
        Some(i) => {
            args.get(i + 1).and_then(|v| v.parse().ok()).ok_or_else(|| format!("{name} needs a number\n{USAGE}"))
        }
    }
}

/// `--hold`: the server stays untouched this long, for a person to inspect it.
fn hold(seconds: u64, pid: u32, when: &str) {
    if seconds > 0 {
        eprintln!("kelpie-soak: holding {seconds} s {when}: kelpie pid {pid}");
        std::thread::sleep(Duration::from_secs(seconds));
    }
}

/// What the command line asked for.
struct Opts {
    cycles: u64,
    warmup: u64,
    hold_s: u64,
    /// Viewers ask for screen sizes of their own (off: `--no-resize`, to tell apart what
    /// RandR and encoder rebuilds cost from what sessions cost).
    resize: bool,
}

async fn run(opts: Opts) -> Result<bool, String> {
    let Opts { cycles, warmup, hold_s, resize } = opts;
    let x = Xvfb::start(1280, 720);
    let _probe = XProbe::start(&x.display, &["--animate", "30"]);
    let k =
        Kelpie::start_bin(&workspace_bin("kelpie"), &x.display, &["--framerate", "30", "--ice-address", "127.0.0.1"]);
    // Empty, and past the grace in which stopped branches are kept before they are freed
    // (media::grave, 30 s): what is measured then is what stays.
    // The health read after the grace: one read before it still counts the buried
    // branches' webrtcbins as alive.
    let settle = |what: &str| {
        k.wait_health(Duration::from_secs(30), what, |h| h["viewers"] == 0 && h["branches"] == 0);
        std::thread::sleep(GRAVE_GRACE);
        k.wait_health(Duration::from_secs(5), what, |h| h["viewers"] == 0)
    };
    for i in 0..warmup {
        cycle(&k, i, resize).await?;
    }
    settle("the room empty after the warm-up");
    let (rss0, fds0, modes0, keys0) =
        (rss_kib(k.pid()), open_fds(k.pid()), randr_modes(&x.display), bound_keycodes(&x.display));
    let (kinds0, threads0) = (fd_kinds(k.pid()), thread_names(k.pid()));
    let heap0 = k.health()["heap"].clone();
    hold(hold_s, k.pid(), "after the warm-up");
    let started = Instant::now();
    for i in warmup..warmup + cycles {
        cycle(&k, i, resize).await?;
    }
    let h = settle("the room empty after the cycles");
    let (rss1, fds1, modes1, keys1) =
        (rss_kib(k.pid()), open_fds(k.pid()), randr_modes(&x.display), bound_keycodes(&x.display));
    let (kinds1, threads1) = (fd_kinds(k.pid()), thread_names(k.pid()));
    hold(hold_s, k.pid(), "after the cycles");
    let growth = rss1 - rss0;
    let count = |t: &std::collections::BTreeMap<String, i64>| t.values().sum::<i64>();
    let ok = growth <= MAX_RSS_GROWTH_KIB
        && fds1 <= fds0
        && count(&threads1) <= count(&threads0)
        && h["branches"] == 0
        && h["webrtcbins_alive"] == 0
        && h["ice_agents_alive"] == 0
        && modes1.1 == 0
        && keys1 <= keys0;
    println!(
        "{}",
        json!({
            "cycles": cycles, "warmup": warmup, "seconds": started.elapsed().as_secs_f64().round(),
            "rss_kib": [rss0, rss1], "rss_growth_kib": growth, "fds": [fds0, fds1],
            "randr_modes": [modes0.0, modes1.0], "stale_kelpie_modes": [modes0.1, modes1.1], "bound_keycodes": [keys0, keys1], "branches": h["branches"], "webrtcbins_alive": h["webrtcbins_alive"], "ice_agents_alive": h["ice_agents_alive"], "frames_encoded": h["frames_encoded"],
            "input_dropped": h["input_dropped"], "ok": ok,
            "fd_kinds": [kinds0, kinds1], "threads": [threads0, threads1],
            "heap": [heap0, &h["heap"]],
        })
    );
    Ok(ok)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let resize = !args.iter().any(|a| a == "--no-resize");
    let opts = match (arg(&args, "--cycles", 500), arg(&args, "--warmup", DEFAULT_WARMUP), arg(&args, "--hold", 0)) {
        (Ok(c), Ok(w), Ok(h)) => Opts { cycles: whole_rounds(c), warmup: whole_rounds(w), hold_s: h, resize },
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if opts.warmup < GRAVE_CAP {
        eprintln!(
            "kelpie-soak: note: a warm-up of {} cycles is under the {GRAVE_CAP} stopped branches the server may keep; \
             their first fill will count as growth",
            opts.warmup
        );
    }
    match run(opts).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("kelpie-soak: {e}");
            ExitCode::FAILURE
        }
    }
}

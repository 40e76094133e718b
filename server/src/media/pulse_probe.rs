//! Is PulseAudio there? Asked with `pactl info` in a child process before the capture
//! is (re)built.
//!
//! Why not just build `pulsesrc` and see: when its connection fails, GStreamer 1.22's
//! `pulsesrc` has already started a libpulse thread and its wake-up pipe for the attempt
//! (made in NULL→READY, freed only in READY→NULL, which a failed start never reaches),
//! so every retry against a missing server leaked a thread and two descriptors: about
//! one every 4 s, found by `make soak` (docs/reliability.md). `pactl` resolves the server
//! exactly as libpulse does (`PULSE_SERVER`, client.conf, the X11 property, the runtime
//! directories) and takes its thread with it when it exits.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a probe may take; a server that does not answer in this is not usable.
const TIMEOUT: Duration = Duration::from_secs(3);

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Reachable,
    /// Not reachable, with pactl's reason.
    Unreachable(String),
    /// No `pactl` to ask (pulseaudio-utils not installed): build the capture and see.
    Unknown,
}

/// Asks `server` (libpulse's own choice when `None`).
pub fn probe(server: Option<&str>) -> Probe {
    let mut cmd = Command::new("pactl");
    if let Some(s) = server {
        cmd.args(["--server", s]);
    }
    cmd.arg("info").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(_) => return Probe::Unknown,
    };
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read as _;
                    let _ = (&mut e).take(4096).read_to_string(&mut err);
                }
                return verdict(status.success(), &err);
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Probe::Unreachable(format!("PulseAudio did not answer within {} s", TIMEOUT.as_secs()));
            }
            Err(e) => return Probe::Unreachable(format!("pactl: {e}")),
        }
    }
}

/// pactl's exit and stderr → a verdict (pure).
pub fn verdict(success: bool, stderr: &str) -> Probe {
    if success {
        return Probe::Reachable;
    }
    let line = stderr.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("pactl info failed");
    // "Connection failure: Connection refused" → "Connection refused"
    let why = line.strip_prefix("Connection failure:").map_or(line, str::trim);
    Probe::Unreachable(why.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pactl_failures_become_reasons() {
        assert_eq!(verdict(true, ""), Probe::Reachable);
        assert_eq!(
            verdict(false, "Connection failure: Connection refused\n"),
            Probe::Unreachable("Connection refused".into())
        );
        assert_eq!(verdict(false, ""), Probe::Unreachable("pactl info failed".into()));
    }

    #[test]
    fn a_server_nobody_listens_on_is_unreachable_or_unknown() {
        // Unknown only where pactl is not installed; never Reachable.
        let p = probe(Some("unix:/nonexistent/kelpie-probe/native"));
        assert_ne!(p, Probe::Reachable, "{p:?}");
    }
}

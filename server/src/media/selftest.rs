//! The connection self-test's server side: `pong` at once, and a bounded burst of padding
//! for the page to time. Both go through the viewer's own transport (data channel or
//! socket), so they measure the path the picture takes.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Desktop, DATA_BUFFER_LIMIT};
use crate::transport::SelfTest;

/// Padding per `probe-data` message: well under the data channel's 64 KiB message limit.
const CHUNK: usize = 16 * 1024;
/// One probe per viewer per this long: a probe competes with the picture for the link.
pub const PROBE_EVERY: Duration = Duration::from_secs(5);
/// A probe that cannot be sent within this long is abandoned.
const PROBE_DEADLINE: Duration = Duration::from_secs(10);
/// The probe keeps at most this much queued on the channel, so it measures the path, not
/// how fast a local buffer fills.
const PROBE_BUFFERED: u64 = 256 * 1024;

/// When each viewer last probed.
#[derive(Default)]
pub(super) struct Probes(Mutex<HashMap<u64, Instant>>);

impl Probes {
    /// Whether `id` may probe at `now` (and if so, records it).
    fn admit(&self, id: u64, now: Instant) -> bool {
        let mut last = self.0.lock().unwrap_or_else(|e| e.into_inner());
        last.retain(|_, t| now.duration_since(*t) < PROBE_EVERY);
        if last.contains_key(&id) {
            return false;
        }
        last.insert(id, now);
        true
    }
}

impl Desktop {
    pub fn self_test(&self, id: u64, test: SelfTest) {
        match test {
            SelfTest::Ping(n) => {
                self.send_data(id, &serde_json::json!({"t": "pong", "id": n}).to_string());
            }
            SelfTest::Probe(bytes) => {
                if !self.probes.admit(id, Instant::now()) {
                    let why = format!("one probe per {} s", PROBE_EVERY.as_secs());
                    self.send_data(id, &serde_json::json!({"t": "probe-refused", "why": why}).to_string());
                    return;
                }
                let me = self.me.clone();
                let _ = std::thread::Builder::new().name("kelpie-probe".into()).spawn(move || {
                    if let Some(d) = me.upgrade() {
                        d.send_probe(id, bytes as usize);
                    }
                });
            }
        }
    }

    /// Sends `bytes` of padding to `id` in `probe-data` messages, never more than
    /// [`PROBE_BUFFERED`] ahead of the transport. Blocking, bounded by [`PROBE_DEADLINE`].
    fn send_probe(&self, id: u64, bytes: usize) {
        let count = bytes.div_ceil(CHUNK).max(1);
        let pad = "k".repeat(CHUNK);
        let started = Instant::now();
        let probe = started.elapsed().as_nanos() as u64 ^ id;
        for seq in 0..count {
            loop {
                match self.data_buffered(id) {
                    None => return, // gone
                    Some(b) if b <= PROBE_BUFFERED => break,
                    Some(_) if started.elapsed() > PROBE_DEADLINE => {
                        tracing::debug!(viewer = id, "connection probe abandoned after {PROBE_DEADLINE:?}");
                        return;
                    }
                    Some(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            let msg =
                serde_json::json!({"t": "probe-data", "id": probe % 1_000_000, "seq": seq, "of": count, "pad": pad});
            if !self.send_data(id, &msg.to_string()) && self.data_buffered(id).is_none_or(|b| b > DATA_BUFFER_LIMIT) {
                return;
            }
        }
        tracing::debug!(viewer = id, bytes, ms = started.elapsed().as_millis() as u64, "connection probe sent");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_probe_per_viewer_per_interval() {
        let p = Probes::default();
        let t = Instant::now();
        assert!(p.admit(1, t));
        assert!(!p.admit(1, t + Duration::from_secs(1)));
        assert!(p.admit(2, t + Duration::from_secs(1)), "others are not affected");
        assert!(p.admit(1, t + PROBE_EVERY));
    }
}

//! Sends clipboard content to browsers in `clip` chunks, paced on each viewer's data
//! channel buffer so a megabyte does not overflow it (a full buffer drops messages).
//!
//! Runs on its own thread: pacing waits for the network, which neither the X thread nor
//! GStreamer's threads may do. Newer content for everyone supersedes a transfer under way;
//! the browser drops the unfinished one when the next transfer's chunk 0 arrives.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::chunks::{messages, Clip};
use super::pace::{step, Stall, Step};
use crate::outbox::Outbox;

/// How often a waiting transfer looks at the buffer again.
const PACE_POLL: Duration = Duration::from_millis(5);

/// Who gets a transfer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Audience {
    All,
    One(u64),
}

pub struct Job {
    pub clip: Arc<Clip>,
    pub to: Audience,
}

/// Starts the sender thread; drop every `Sender` to stop it.
pub fn start(sink: Arc<dyn Outbox>) -> Sender<Job> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("kelpie-clip-send".into())
        .spawn(move || run(sink.as_ref(), &rx))
        .expect("spawning the clipboard sender thread");
    tx
}

fn run(sink: &dyn Outbox, rx: &Receiver<Job>) {
    let mut queue: VecDeque<Job> = VecDeque::new();
    let mut next_id: u32 = 0;
    loop {
        let job = match queue.pop_front() {
            Some(j) => j,
            None => match rx.recv_timeout(Duration::from_secs(60)) {
                Ok(j) => j,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            },
        };
        next_id = next_id.wrapping_add(1);
        if !send_job(sink, rx, &mut queue, next_id, &job) && queue.is_empty() {
            // Sender side gone while we were sending.
            if matches!(rx.try_recv(), Err(TryRecvError::Disconnected)) {
                return;
            }
        }
    }
}

/// Adds a newly arrived job; true when it supersedes the transfer under way.
fn enqueue(queue: &mut VecDeque<Job>, job: Job) -> bool {
    if job.to == Audience::All {
        queue.clear();
        queue.push_back(job);
        true
    } else {
        queue.push_back(job);
        false
    }
}

/// Sends one job; false if it was cut short by newer content (or the channel closing).
fn send_job(sink: &dyn Outbox, rx: &Receiver<Job>, queue: &mut VecDeque<Job>, id: u32, job: &Job) -> bool {
    let started = Instant::now();
    let mut viewers: Vec<u64> = match job.to {
        Audience::All => sink.viewer_ids(),
        Audience::One(v) => vec![v],
    };
    let mut chunks = 0usize;
    for msg in messages(id, &job.clip) {
        // Each viewer gets the chunk as soon as its own buffer allows.
        let mut pending = viewers.clone();
        let stall = Stall::new(Instant::now());
        while !pending.is_empty() {
            loop {
                match rx.try_recv() {
                    Ok(newer) => {
                        if enqueue(queue, newer) {
                            tracing::debug!(id, "clipboard: newer content replaces transfer {id}");
                            return false;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return false,
                }
            }
            pending.retain(|&v| match step(sink.buffered(v)) {
                Step::Gone => {
                    viewers.retain(|&x| x != v);
                    false
                }
                Step::Send => {
                    if !sink.send(v, &msg) {
                        tracing::warn!(viewer = v, "clipboard: a chunk could not be queued; viewer skipped");
                        viewers.retain(|&x| x != v);
                    }
                    false
                }
                Step::Wait => true,
            });
            if pending.is_empty() {
                break;
            }
            if stall.stalled(Instant::now()) {
                tracing::warn!(?pending, "clipboard: data channel not draining; viewers skipped for this transfer");
                viewers.retain(|v| !pending.contains(v));
                break;
            }
            std::thread::sleep(PACE_POLL);
        }
        chunks += 1;
    }
    tracing::debug!(
        id,
        mime = job.clip.mime.as_str(),
        bytes = job.clip.bytes.len(),
        chunks,
        viewers = viewers.len(),
        ms = started.elapsed().as_millis() as u64,
        "clipboard: sent to browsers"
    );
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clipboard::chunks::{ClipMime, CHUNK_RAW_BYTES};
    use crate::clipboard::pace::PACE_BYTES;
    use std::collections::HashMap;
    use std::sync::Mutex;

    /// A sink whose buffers drain by `drain` bytes each time they are looked at.
    struct FakeSink {
        buffered: Mutex<HashMap<u64, u64>>,
        sent: Mutex<Vec<(u64, String)>>,
        drain: u64,
    }

    impl Outbox for FakeSink {
        fn viewer_ids(&self) -> Vec<u64> {
            self.buffered.lock().unwrap().keys().copied().collect()
        }
        fn send(&self, viewer: u64, text: &str) -> bool {
            *self.buffered.lock().unwrap().get_mut(&viewer).unwrap() += text.len() as u64;
            self.sent.lock().unwrap().push((viewer, text.to_string()));
            true
        }
        fn buffered(&self, viewer: u64) -> Option<u64> {
            let mut b = self.buffered.lock().unwrap();
            let v = b.get_mut(&viewer)?;
            let now = *v;
            *v = v.saturating_sub(self.drain);
            Some(now)
        }
    }

    fn sink(viewers: &[u64], drain: u64) -> FakeSink {
        FakeSink { buffered: Mutex::new(viewers.iter().map(|&v| (v, 0)).collect()), sent: Mutex::new(vec![]), drain }
    }

    fn job(bytes: usize, to: Audience) -> Job {
        Job { clip: Arc::new(Clip { mime: ClipMime::Text, bytes: vec![b'a'; bytes] }), to }
    }

    #[test]
    fn every_viewer_gets_every_chunk_without_exceeding_the_pace() {
        let s = sink(&[1, 2], 100 * 1024);
        let (_tx, rx) = std::sync::mpsc::channel();
        let mut q = VecDeque::new();
        assert!(send_job(&s, &rx, &mut q, 1, &job(1_000_000, Audience::All)));
        let sent = s.sent.lock().unwrap();
        let chunks = 1_000_000usize.div_ceil(CHUNK_RAW_BYTES);
        assert_eq!(sent.iter().filter(|(v, _)| *v == 1).count(), chunks);
        assert_eq!(sent.iter().filter(|(v, _)| *v == 2).count(), chunks);
    }

    #[test]
    fn a_one_viewer_job_goes_to_that_viewer_only() {
        let s = sink(&[1, 2], u64::MAX);
        let (_tx, rx) = std::sync::mpsc::channel();
        send_job(&s, &rx, &mut VecDeque::new(), 1, &job(10, Audience::One(2)));
        assert_eq!(s.sent.lock().unwrap().iter().map(|(v, _)| *v).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn newer_content_for_everyone_cuts_a_transfer_short() {
        let s = sink(&[1], 0); // never drains: the transfer would stall
        s.buffered.lock().unwrap().insert(1, PACE_BYTES);
        let (tx, rx) = std::sync::mpsc::channel();
        tx.send(job(5, Audience::All)).unwrap();
        let mut q = VecDeque::new();
        assert!(!send_job(&s, &rx, &mut q, 1, &job(1_000_000, Audience::All)));
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn a_viewer_that_leaves_mid_transfer_is_dropped_from_it() {
        let s = sink(&[1], u64::MAX);
        let (_tx, rx) = std::sync::mpsc::channel();
        s.buffered.lock().unwrap().clear();
        assert!(send_job(&s, &rx, &mut VecDeque::new(), 1, &job(200_000, Audience::One(1))));
        assert!(s.sent.lock().unwrap().is_empty());
    }
}

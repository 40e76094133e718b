//! What one WebSocket viewer is sent: a queue between the encoder's thread (which pushes
//! every access unit) and the viewer's socket writer (which takes them as fast as its
//! socket allows), with the rule that keeps a slow socket from ever queueing seconds of
//! video.
//!
//! The rule ([`Pacer`], pure): the writer takes each frame as soon as the previous one is
//! written, so a frame still waiting when the next one arrives means the socket has been
//! busy for a whole frame interval. Then the viewer is behind: its waiting frames are
//! dropped, and so is everything after them until a keyframe, which is asked for once the
//! socket has drained (asking earlier would only produce a keyframe that is dropped too).
//! Only this viewer skips; the encoder and the other viewers never wait for it.
//!
//! Data-channel messages (cursor, clipboard) are never skipped: they queue separately, up
//! to a byte limit, and go out before video.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

use super::frame;
use crate::adapt::estimate::PacketReport;

/// Which video frames a viewer gets. Generic over the frame so the rule is tested alone.
#[derive(Debug)]
pub struct Pacer<T> {
    waiting: VecDeque<T>,
    /// The writer holds a frame it has not finished writing.
    writing: bool,
    /// Skipping until a keyframe; `true` once that keyframe has been asked for.
    need_key: Option<bool>,
    sent: u64,
    dropped: u64,
}

impl<T> Default for Pacer<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Pacer<T> {
    /// A new viewer needs a keyframe first; whoever opens the feed asks for it.
    pub fn new() -> Self {
        Self { waiting: VecDeque::new(), writing: false, need_key: Some(true), sent: 0, dropped: 0 }
    }

    /// A frame from the encoder. Returns true when a keyframe should be asked for now.
    pub fn offer(&mut self, frame: T, key: bool) -> bool {
        if self.need_key.is_some() {
            if key && self.idle() {
                self.need_key = None;
                self.waiting.push_back(frame);
                return false;
            }
            self.dropped += 1;
            if key {
                // It came while the socket was still busy: ask again once it has drained.
                self.need_key = Some(false);
            }
            return self.ask_if_drained();
        }
        if !self.waiting.is_empty() {
            self.dropped += self.waiting.len() as u64 + 1;
            self.waiting.clear();
            self.need_key = Some(false);
            return self.ask_if_drained();
        }
        self.waiting.push_back(frame);
        false
    }

    /// The writer takes the next frame to write.
    pub fn take(&mut self) -> Option<T> {
        let f = self.waiting.pop_front()?;
        self.writing = true;
        Some(f)
    }

    /// The writer finished writing the frame it took. True when a keyframe should be
    /// asked for now.
    pub fn written(&mut self) -> bool {
        if self.writing {
            self.writing = false;
            self.sent += 1;
        }
        self.ask_if_drained()
    }

    /// Frames written and frames skipped so far.
    pub fn counts(&self) -> (u64, u64) {
        (self.sent, self.dropped)
    }

    /// Waiting for a keyframe (the viewer shows nothing new until one comes).
    pub fn skipping(&self) -> bool {
        self.need_key.is_some()
    }

    fn idle(&self) -> bool {
        !self.writing && self.waiting.is_empty()
    }

    fn ask_if_drained(&mut self) -> bool {
        if self.need_key == Some(false) && self.idle() {
            self.need_key = Some(true);
            return true;
        }
        false
    }
}

/// What the writer sends next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Out {
    /// A data-channel message frame.
    Channel(Bytes),
    /// A video frame; call [`Feed::video_written`] once it is written.
    Video(Bytes),
    /// An audio frame (never acknowledged, never waits for a keyframe).
    Audio(Bytes),
}

/// Where a socket viewer's microphone packets go (the media side decides whether they
/// are admitted); runs on the socket's task and must not block.
pub type MicSink = std::sync::Arc<dyn Fn(&[u8]) + Send + Sync>;

/// Audio frames that may wait for the socket: 100 ms at 10 ms frames. A socket slower
/// than that drops the oldest; audio played late is worse than a short gap.
const AUDIO_WAITING: usize = 10;

#[derive(Debug, Default)]
struct Inner {
    pacer: Pacer<Bytes>,
    channel: VecDeque<Bytes>,
    audio: VecDeque<Bytes>,
    audio_dropped: u64,
    channel_bytes: u64,
    closed: bool,
    /// (sequence, µs since the feed began when the writer took it, bytes) of video frames
    /// not yet acknowledged, oldest first.
    in_flight: VecDeque<(u32, u64, u32)>,
    /// Acknowledged frames, for the bandwidth estimate to take.
    acked: Vec<PacketReport>,
}

/// Frames remembered for acknowledgement: over a second of video at 60 fps.
const IN_FLIGHT: usize = 128;
/// Acknowledgements kept until the estimate takes them (ten times a second).
const ACKED: usize = 256;

/// One WebSocket viewer's outgoing frames; shared by the media side (pushing) and the
/// viewer's socket writer (taking).
pub struct Feed {
    inner: Mutex<Inner>,
    ready: Notify,
    /// The clock of the send times reported with acknowledgements.
    epoch: std::time::Instant,
    mic: Mutex<Option<MicSink>>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").field("inner", &self.inner).finish_non_exhaustive()
    }
}

impl Default for Feed {
    fn default() -> Self {
        Self { inner: Mutex::default(), ready: Notify::new(), epoch: std::time::Instant::now(), mic: Mutex::new(None) }
    }
}

impl Feed {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A video frame ([`frame::video`]). Never blocks. True when a keyframe should be
    /// asked for now.
    pub fn push_video(&self, frame: Bytes, key: bool) -> bool {
        let ask = {
            let mut inner = self.lock();
            if inner.closed {
                return false;
            }
            inner.pacer.offer(frame, key)
        };
        self.ready.notify_one();
        ask
    }

    /// An audio frame ([`frame::audio`]). Never blocks; the oldest waiting one is dropped
    /// when too many wait.
    pub fn push_audio(&self, frame: Bytes) {
        {
            let mut inner = self.lock();
            if inner.closed {
                return;
            }
            if inner.audio.len() >= AUDIO_WAITING {
                inner.audio.pop_front();
                inner.audio_dropped += 1;
            }
            inner.audio.push_back(frame);
        }
        self.ready.notify_one();
    }

    /// Audio frames dropped because the socket was too slow for them.
    pub fn audio_dropped(&self) -> u64 {
        self.lock().audio_dropped
    }

    /// Where this viewer's microphone packets go from now on.
    pub fn set_mic(&self, sink: MicSink) {
        *self.mic.lock().unwrap_or_else(|e| e.into_inner()) = Some(sink);
    }

    /// A microphone packet from the page; dropped when nothing takes microphone audio.
    pub fn mic(&self, packet: &[u8]) {
        let sink = self.mic.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(sink) = sink {
            sink(packet);
        }
    }

    /// Queues a data-channel message; false when the feed is closed or more than `limit`
    /// bytes of messages are already waiting (a viewer that stopped reading).
    pub fn push_channel(&self, text: &str, limit: u64) -> bool {
        {
            let mut inner = self.lock();
            if inner.closed || inner.channel_bytes > limit {
                return false;
            }
            let f = frame::channel(text);
            inner.channel_bytes += f.len() as u64;
            inner.channel.push_back(f);
        }
        self.ready.notify_one();
        true
    }

    /// The page received video frame `seq` at `at_us` (its own clock). Unknown or
    /// repeated sequence numbers are ignored.
    pub fn ack(&self, seq: u32, at_us: u64) {
        let mut inner = self.lock();
        let Some(at) = inner.in_flight.iter().position(|(s, _, _)| *s == seq) else { return };
        // Frames before it that were never acknowledged did not arrive either way: the
        // socket is ordered, so they were skipped by the page, not lost in the network.
        let (_, sent_us, bytes) = inner.in_flight.drain(..=at).next_back().unwrap_or((seq, 0, 0));
        if inner.acked.len() < ACKED {
            inner.acked.push(PacketReport { sent_us, received_us: Some(at_us), bytes });
        }
    }

    /// Acknowledgements since the last call, as reports for the bandwidth estimate.
    pub fn take_acks(&self) -> Vec<PacketReport> {
        std::mem::take(&mut self.lock().acked)
    }

    /// Bytes of data-channel messages not yet handed to the socket.
    pub fn channel_buffered(&self) -> u64 {
        self.lock().channel_bytes
    }

    /// The next frame to write, data-channel messages first; `None` once closed.
    /// One writer only.
    pub async fn next(&self) -> Option<Out> {
        loop {
            {
                let mut inner = self.lock();
                if inner.closed {
                    return None;
                }
                if let Some(f) = inner.channel.pop_front() {
                    inner.channel_bytes -= f.len() as u64;
                    return Some(Out::Channel(f));
                }
                if let Some(f) = inner.audio.pop_front() {
                    return Some(Out::Audio(f));
                }
                if let Some(f) = inner.pacer.take() {
                    if let Some(seq) = frame::video_seq(&f) {
                        if inner.in_flight.len() >= IN_FLIGHT {
                            inner.in_flight.pop_front();
                        }
                        let now = self.epoch.elapsed().as_micros() as u64;
                        inner.in_flight.push_back((seq, now, f.len() as u32));
                    }
                    return Some(Out::Video(f));
                }
            }
            // A notify_one between the check and here leaves a permit: no wake-up is lost.
            self.ready.notified().await;
        }
    }

    /// The video frame last taken is written. True when a keyframe should be asked for.
    pub fn video_written(&self) -> bool {
        self.lock().pacer.written()
    }

    /// Video frames written and skipped so far.
    pub fn counts(&self) -> (u64, u64) {
        self.lock().pacer.counts()
    }

    /// Stops the feed: pushes are refused and the writer's `next` ends.
    pub fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn acknowledged_frames_become_reports_with_their_send_time_and_size() {
        let feed = Feed::new();
        feed.push_video(frame::video(7, 0, true, &[0; 100]), true);
        let Some(Out::Video(f)) = feed.next().await else { panic!("a video frame") };
        feed.video_written();
        feed.ack(99, 5); // never sent: ignored
        feed.ack(7, 123_456);
        feed.ack(7, 123_999); // repeated: ignored
        let acks = feed.take_acks();
        assert_eq!(acks.len(), 1);
        assert_eq!(acks[0].received_us, Some(123_456));
        assert_eq!(acks[0].bytes as usize, f.len());
        assert!(feed.take_acks().is_empty(), "taken once");
    }

    #[test]
    fn a_new_viewer_waits_for_the_first_keyframe() {
        let mut p = Pacer::new();
        assert!(!p.offer(1, false), "the opener already asked; no second ask");
        assert!(p.skipping());
        assert!(!p.offer(2, true));
        assert!(!p.skipping());
        assert_eq!(p.take(), Some(2));
        assert!(!p.written());
        assert_eq!(p.counts(), (1, 1));
    }

    #[test]
    fn a_socket_that_keeps_up_gets_every_frame() {
        let mut p = Pacer::new();
        p.offer(0, true);
        for i in 0..100 {
            assert_eq!(p.take(), Some(i));
            assert!(!p.written());
            assert!(!p.offer(i + 1, i % 30 == 29));
        }
        assert_eq!(p.counts(), (100, 0));
    }

    #[test]
    fn a_busy_socket_skips_to_a_keyframe_asked_for_once_it_drains() {
        let mut p = Pacer::new();
        p.offer(0, true);
        assert_eq!(p.take(), Some(0)); // the writer is stuck on frame 0
        assert!(!p.offer(1, false)); // one frame may wait
        assert!(!p.offer(2, false), "behind, but the socket is still busy: no ask yet");
        assert!(p.skipping());
        assert!(!p.offer(3, false));
        assert_eq!(p.take(), None, "skipped frames are gone");
        assert!(p.written(), "drained: now ask for a keyframe");
        assert!(!p.offer(4, false), "asked already");
        assert!(!p.written(), "one ask per episode");
        assert!(!p.offer(5, true));
        assert_eq!(p.take(), Some(5));
        assert!(!p.written());
        assert_eq!(p.counts(), (2, 4));
    }

    #[test]
    fn a_keyframe_that_arrives_while_still_busy_is_asked_for_again() {
        let mut p = Pacer::new();
        p.offer(0, true);
        p.take();
        p.offer(1, false);
        p.offer(2, false); // behind
        assert!(!p.offer(3, true), "busy: this keyframe cannot be used");
        assert!(p.written(), "so another is asked for once drained");
        assert!(!p.offer(4, true));
        assert_eq!(p.take(), Some(4));
    }

    #[test]
    fn a_drop_while_idle_asks_at_once() {
        let mut p = Pacer::new();
        p.offer(0, true);
        p.take();
        p.written();
        p.offer(1, false);
        p.take();
        p.offer(2, false);
        p.offer(3, false); // behind while writing 1
        assert!(p.written());
        // The keyframe is late; meanwhile deltas are dropped without new asks.
        assert!(!p.offer(4, false));
        assert!(p.skipping());
    }

    #[tokio::test]
    async fn the_writer_gets_channel_messages_first_and_none_once_closed() {
        let feed = Feed::new();
        feed.push_video(frame::video(1, 0, true, b"k"), true);
        assert!(feed.push_channel("{\"t\":\"cursor\"}", 1024));
        assert!(matches!(feed.next().await, Some(Out::Channel(_))));
        assert!(matches!(feed.next().await, Some(Out::Video(_))));
        assert!(!feed.video_written());
        feed.close();
        assert_eq!(feed.next().await, None);
        assert!(!feed.push_channel("x", 1024), "closed feeds refuse");
    }

    #[tokio::test]
    async fn audio_goes_before_video_and_a_slow_socket_drops_the_oldest() {
        let feed = Feed::new();
        feed.push_video(frame::video(1, 0, true, b"k"), true);
        for i in 0..(AUDIO_WAITING as u32 + 3) {
            feed.push_audio(frame::audio(i, 0, b"o"));
        }
        assert_eq!(feed.audio_dropped(), 3);
        let Some(Out::Audio(first)) = feed.next().await else { panic!("audio first") };
        assert_eq!(&first[2..6], &3u32.to_be_bytes(), "the three oldest were dropped");
        for _ in 1..AUDIO_WAITING {
            assert!(matches!(feed.next().await, Some(Out::Audio(_))));
        }
        assert!(matches!(feed.next().await, Some(Out::Video(_))));
    }

    #[test]
    fn microphone_packets_reach_the_sink_once_one_is_set() {
        let feed = Feed::new();
        feed.mic(b"lost"); // no sink yet: dropped, no panic
        let got = std::sync::Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        feed.set_mic(std::sync::Arc::new(move |p: &[u8]| g.lock().unwrap().push(p.to_vec())));
        feed.mic(b"opus");
        assert_eq!(*got.lock().unwrap(), vec![b"opus".to_vec()]);
    }

    #[test]
    fn channel_messages_stop_at_the_byte_limit() {
        let feed = Feed::new();
        assert!(feed.push_channel(&"x".repeat(100), 50));
        assert_eq!(feed.channel_buffered(), 101);
        assert!(!feed.push_channel("y", 50), "over the limit: refused, not queued");
        assert_eq!(feed.channel_buffered(), 101);
    }
}

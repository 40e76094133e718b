//! The writing half of a participant's WebSocket, in a task of its own: signalling
//! messages and pings from the participant's task, and, while media travels on the socket,
//! the frames of its [`Feed`].
//!
//! Writing in its own task keeps a socket that drains slowly from stalling the reading
//! half: input, pongs and control requests are still read while a large keyframe goes
//! out. Signalling and data-channel messages go before video; video waits for the socket
//! one frame at a time, and the feed skips frames while it is busy.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::transport::feed::{Feed, Out};

/// A send that takes longer than this means the client stopped reading. Not less: on a
/// 300 kbit/s link a keyframe behind the 64 KiB the kernel already holds took over 5 s in
/// a fresh-clone run, and the viewer was dropped while it was still reading. A vanished
/// browser is found by the reading half's silence limit (8 s) anyway.
const SEND_TIMEOUT: Duration = Duration::from_secs(12);

type Sink = SplitSink<WebSocket, Message>;

/// The participant task's handle on its writer.
pub struct Writer {
    messages: mpsc::UnboundedSender<Message>,
    feed: watch::Sender<Option<Arc<Feed>>>,
}

impl Writer {
    /// Starts the writer. `ask_keyframe` runs when the feed wants a keyframe. The task
    /// ends, with the reason, when a send fails or after it sent a close frame.
    pub fn spawn(sink: Sink, ask_keyframe: impl Fn() + Send + 'static) -> (Self, JoinHandle<String>) {
        let (messages, rx) = mpsc::unbounded_channel();
        let (feed, feed_rx) = watch::channel(None);
        let task = tokio::spawn(run(sink, rx, feed_rx, ask_keyframe));
        (Self { messages, feed }, task)
    }

    /// Queues a message (text, ping or close); false once the writer has stopped.
    pub fn send(&self, msg: Message) -> bool {
        self.messages.send(msg).is_ok()
    }

    /// Media frames come from `feed` from now on (`None`: media is not on this socket).
    pub fn set_feed(&self, feed: Option<Arc<Feed>>) {
        self.feed.send_replace(feed);
    }

    /// The page acknowledged video frame `seq` (arrived at `at_us` on its clock).
    /// A microphone packet from the page, for the feed's microphone sink.
    pub fn mic(&self, packet: &[u8]) {
        if let Some(feed) = self.feed.borrow().as_ref() {
            feed.mic(packet);
        }
    }

    pub fn ack(&self, seq: u32, at_us: u64) {
        if let Some(feed) = self.feed.borrow().as_ref() {
            feed.ack(seq, at_us);
        }
    }
}

async fn send(sink: &mut Sink, msg: Message) -> bool {
    matches!(tokio::time::timeout(SEND_TIMEOUT, sink.send(msg)).await, Ok(Ok(())))
}

async fn next_frame(feed: &Option<Arc<Feed>>) -> Option<Out> {
    match feed {
        Some(f) => f.next().await,
        None => std::future::pending().await,
    }
}

async fn run(
    mut sink: Sink,
    mut messages: mpsc::UnboundedReceiver<Message>,
    mut feed_rx: watch::Receiver<Option<Arc<Feed>>>,
    ask_keyframe: impl Fn(),
) -> String {
    let mut feed: Option<Arc<Feed>> = None;
    loop {
        tokio::select! {
            biased;
            msg = messages.recv() => {
                let Some(msg) = msg else { return "participant gone".into() };
                let closing = matches!(msg, Message::Close(_));
                if !send(&mut sink, msg).await {
                    return "sending failed or timed out".into();
                }
                if closing {
                    let _ = sink.close().await;
                    return "closed by the server".into();
                }
            }
            changed = feed_rx.changed() => {
                if changed.is_err() {
                    return "participant gone".into();
                }
                feed = feed_rx.borrow_and_update().clone();
            }
            out = next_frame(&feed) => match out {
                Some(Out::Channel(bytes)) => {
                    if !send(&mut sink, Message::Binary(bytes)).await {
                        return "sending failed or timed out".into();
                    }
                }
                Some(Out::Audio(bytes)) => {
                    if !send(&mut sink, Message::Binary(bytes)).await {
                        return "sending audio failed or timed out".into();
                    }
                }
                Some(Out::Video(bytes)) => {
                    let sent = send(&mut sink, Message::Binary(bytes)).await;
                    if feed.as_ref().is_some_and(|f| f.video_written()) {
                        ask_keyframe();
                    }
                    if !sent {
                        return "sending video failed or timed out".into();
                    }
                }
                // The feed closed (its transport was switched or removed): wait for the next.
                None => feed = None,
            }
        }
    }
}

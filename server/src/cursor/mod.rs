//! Remote cursor: the X cursor's image and hotspot, sent to browsers so that they draw it
//! as the CSS cursor of the video (crisp, and without waiting for a video frame).
//!
//! | file | job |
//! |---|---|
//! | [`image`] | XFixes' premultiplied ARGB to straight RGBA |
//! | [`png`] | a minimal PNG encoder for those pixels |
//! | [`state`] | current cursor, encoded-image cache, which viewer holds which image |
//! | `watch` | the X thread: XFixes cursor events → [`RemoteCursor::show`] |
//!
//! Wire messages are described in docs/protocol.md ("Remote cursor").

pub mod image;
pub mod png;
pub mod state;
mod watch;

use std::sync::{Arc, Mutex, MutexGuard};

use crate::outbox::Outbox;
use image::CursorImage;
use state::CursorState;

/// The shared remote-cursor state, held by the HTTP app.
pub struct RemoteCursor {
    state: Mutex<CursorState>,
    sink: Arc<dyn Outbox>,
}

impl RemoteCursor {
    /// Starts watching `display`'s cursor; changes go to every participant of `outbox`.
    pub fn start(display: String, outbox: Arc<dyn Outbox>) -> Arc<Self> {
        let cursor = Self::new(outbox);
        if let Err(e) = watch::spawn(display, Arc::downgrade(&cursor)) {
            tracing::warn!("remote cursor disabled: cannot start its thread: {e}");
        }
        cursor
    }

    fn new(sink: Arc<dyn Outbox>) -> Arc<Self> {
        Arc::new(Self { state: Mutex::new(CursorState::default()), sink })
    }

    fn state(&self) -> MutexGuard<'_, CursorState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serial of the cursor showing now, if known.
    pub fn current_serial(&self) -> Option<u32> {
        self.state().current_serial()
    }

    /// Makes `image` the current cursor and tells every viewer.
    fn show(&self, image: &CursorImage) {
        let viewers = self.sink.viewer_ids();
        // The lock is held while sending so that a viewer joining meanwhile cannot get an
        // older cursor after this newer one.
        let mut state = self.state();
        if state.current_serial() == Some(image.serial) {
            return;
        }
        state.show(image);
        state.retain_viewers(&viewers);
        for viewer in viewers {
            Self::send_current(&mut state, self.sink.as_ref(), viewer);
        }
    }

    /// A viewer's data channel opened: it gets the current cursor without waiting for a change.
    /// Viewers gone since are forgotten here too, not only when the cursor changes: on a
    /// desktop whose cursor stays put, every viewer that ever came would otherwise stay in
    /// the map (found by the soak's allocation census: 16 bytes a session, for good).
    pub fn viewer_ready(&self, viewer: u64) {
        let viewers = self.sink.viewer_ids();
        let mut state = self.state();
        state.retain_viewers(&viewers);
        Self::send_current(&mut state, self.sink.as_ref(), viewer);
    }

    fn send_current(state: &mut CursorState, sink: &dyn Outbox, viewer: u64) {
        let Some(text) = state.message_for(viewer) else { return };
        if sink.send(viewer, text) {
            state.delivered(viewer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct FakeSink {
        viewers: Mutex<Vec<u64>>,
        sent: Mutex<Vec<(u64, serde_json::Value)>>,
    }

    impl Outbox for FakeSink {
        fn send(&self, viewer: u64, text: &str) -> bool {
            self.sent.lock().unwrap().push((viewer, serde_json::from_str(text).unwrap()));
            true
        }
        fn viewer_ids(&self) -> Vec<u64> {
            self.viewers.lock().unwrap().clone()
        }
        fn buffered(&self, _viewer: u64) -> Option<u64> {
            Some(0)
        }
    }

    fn dot(serial: u32) -> CursorImage {
        CursorImage::from_argb_premultiplied(serial, 1, 1, (0, 0), &[0xff_ff_ff_ff])
    }

    #[test]
    fn a_change_reaches_every_viewer_and_a_late_viewer_gets_the_current_cursor() {
        let sink = Arc::new(FakeSink::default());
        *sink.viewers.lock().unwrap() = vec![1, 2];
        let cursor = RemoteCursor::new(sink.clone());
        cursor.show(&dot(10));
        cursor.viewer_ready(3);
        let sent = sink.sent.lock().unwrap();
        let who: Vec<u64> = sent.iter().map(|(v, _)| *v).collect();
        assert_eq!(who.len(), 3);
        assert!(who.contains(&1) && who.contains(&2) && who[2] == 3);
        assert!(sent.iter().all(|(_, m)| m["serial"] == 10 && m["png"].is_string()));
    }

    #[test]
    fn the_same_serial_twice_is_sent_once() {
        let sink = Arc::new(FakeSink::default());
        *sink.viewers.lock().unwrap() = vec![1];
        let cursor = RemoteCursor::new(sink.clone());
        cursor.show(&dot(10));
        cursor.show(&dot(10));
        assert_eq!(sink.sent.lock().unwrap().len(), 1);
    }

    #[test]
    fn viewers_that_left_are_forgotten_even_while_the_cursor_stays_the_same() {
        let sink = Arc::new(FakeSink::default());
        let cursor = RemoteCursor::new(sink.clone());
        *sink.viewers.lock().unwrap() = vec![1];
        cursor.show(&dot(7));
        for id in 2..200u64 {
            // One viewer at a time comes and goes; the cursor never changes.
            *sink.viewers.lock().unwrap() = vec![id];
            cursor.viewer_ready(id);
        }
        assert_eq!(cursor.state().tracked_viewers(), 1, "only the viewer still here is tracked");
        assert_eq!(sink.sent.lock().unwrap().len(), 199, "and every viewer got the cursor");
    }

    #[test]
    fn a_viewer_ready_before_any_cursor_gets_nothing() {
        let sink = Arc::new(FakeSink::default());
        RemoteCursor::new(sink.clone()).viewer_ready(1);
        assert!(sink.sent.lock().unwrap().is_empty());
    }
}

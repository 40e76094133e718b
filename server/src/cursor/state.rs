//! Which cursor is showing and which viewer already holds which image: the pure core of
//! the remote cursor, with no X and no sockets.
//!
//! Images are sent once per viewer and then named by serial. The browser keeps the images
//! it got in an LRU map of [`BROWSER_CACHE`] entries and the server tracks, per viewer, an
//! LRU list of the last [`VIEWER_KNOWN`] serials delivered to it. Both are touched on the
//! same events (every delivered cursor message with an image, in channel order), and an
//! LRU cache holds the most recently used entries of any larger one, so every serial the
//! server believes a viewer has is still in that viewer's map.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use base64::Engine as _;
use serde_json::json;

use super::image::CursorImage;
use super::png;

/// Encoded cursors kept by serial; desktops cycle through a handful of shapes, so this
/// spares re-encoding without letting a program that makes new cursors grow memory.
pub const IMAGE_CACHE: usize = 64;
/// Serials remembered per viewer (must not exceed [`BROWSER_CACHE`]).
pub const VIEWER_KNOWN: usize = 32;
/// Images the web client keeps (`web-client/cursor.js` uses the same number).
pub const BROWSER_CACHE: usize = 64;

/// One cursor shape, ready to send.
#[derive(Debug, PartialEq, Eq)]
pub struct Shape {
    pub serial: u32,
    /// The self-contained message (image included, or `hidden`/`too_large`).
    pub full: String,
    /// `{"t":"cursor","serial":N}` for viewers that have the image, when there is one.
    pub by_serial: Option<String>,
}

impl Shape {
    /// Encodes `image` into the wire messages (see docs/protocol.md, "Remote cursor").
    pub fn encode(image: &CursorImage) -> Self {
        let serial = image.serial;
        let (w, h, hx, hy) = (image.width, image.height, image.hot_x, image.hot_y);
        if image.is_invisible() {
            return Self {
                serial,
                full: json!({"t": "cursor", "serial": serial, "hidden": true}).to_string(),
                by_serial: None,
            };
        }
        match png::encode_rgba(u32::from(w), u32::from(h), &image.rgba) {
            Ok(bytes) => {
                let png = base64::engine::general_purpose::STANDARD.encode(bytes);
                Self {
                    serial,
                    full: json!({"t": "cursor", "serial": serial, "hx": hx, "hy": hy, "w": w, "h": h, "png": png})
                        .to_string(),
                    by_serial: Some(json!({"t": "cursor", "serial": serial}).to_string()),
                }
            }
            Err(e) => {
                tracing::debug!(serial, "cursor image not sent: {e}");
                let full =
                    json!({"t": "cursor", "serial": serial, "hx": hx, "hy": hy, "w": w, "h": h, "too_large": true});
                Self { serial, full: full.to_string(), by_serial: None }
            }
        }
    }
}

/// The current cursor, the encoded-image cache and what each viewer holds.
#[derive(Default)]
pub struct CursorState {
    current: Option<Arc<Shape>>,
    /// Oldest first.
    cache: VecDeque<Arc<Shape>>,
    /// Per viewer, serials it holds, least recently used first.
    known: HashMap<u64, VecDeque<u32>>,
}

impl CursorState {
    /// Makes `image` the current cursor, encoding it unless its serial is cached.
    pub fn show(&mut self, image: &CursorImage) -> Arc<Shape> {
        let shape = match self.cache.iter().position(|s| s.serial == image.serial) {
            Some(i) => self.cache.remove(i).expect("index from position"),
            None => Arc::new(Shape::encode(image)),
        };
        self.cache.push_back(shape.clone());
        if self.cache.len() > IMAGE_CACHE {
            self.cache.pop_front();
        }
        self.current = Some(shape.clone());
        shape
    }

    pub fn current_serial(&self) -> Option<u32> {
        self.current.as_ref().map(|s| s.serial)
    }

    /// The message that shows the current cursor to `viewer`: by serial if it has the
    /// image, else the full one. `None` before the first cursor is known.
    pub fn message_for(&self, viewer: u64) -> Option<&str> {
        let shape = self.current.as_ref()?;
        let has = self.known.get(&viewer).is_some_and(|k| k.contains(&shape.serial));
        Some(match (&shape.by_serial, has) {
            (Some(short), true) => short,
            _ => &shape.full,
        })
    }

    /// Records that the message from [`message_for`](Self::message_for) reached `viewer`'s
    /// channel (call only when the send succeeded, so both caches see the same events).
    pub fn delivered(&mut self, viewer: u64) {
        let Some(shape) = &self.current else { return };
        if shape.by_serial.is_none() {
            return; // nothing the browser caches
        }
        let known = self.known.entry(viewer).or_default();
        known.retain(|&s| s != shape.serial);
        known.push_back(shape.serial);
        if known.len() > VIEWER_KNOWN {
            known.pop_front();
        }
    }

    /// Drops what is tracked for viewers no longer connected.
    pub fn retain_viewers(&mut self, live: &[u64]) {
        self.known.retain(|id, _| live.contains(id));
    }

    /// Viewers whose images are tracked (tests: the map must not keep departed ones).
    #[cfg(test)]
    pub fn tracked_viewers(&self) -> usize {
        self.known.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arrow(serial: u32) -> CursorImage {
        let mut argb = vec![0u32; 16 * 16];
        argb[0] = 0xff_00_00_00;
        argb[17] = 0x80_80_80_80;
        CursorImage::from_argb_premultiplied(serial, 16, 16, (1, 2), &argb)
    }

    fn parse(s: &str) -> serde_json::Value {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn nothing_is_sent_before_the_first_cursor() {
        assert_eq!(CursorState::default().message_for(1), None);
    }

    #[test]
    fn a_viewer_gets_the_image_once_then_the_serial() {
        let mut st = CursorState::default();
        st.show(&arrow(5));
        let first = parse(st.message_for(1).unwrap());
        assert_eq!(
            (first["serial"].as_u64(), first["w"].as_u64(), first["hx"].as_u64(), first["hy"].as_u64()),
            (Some(5), Some(16), Some(1), Some(2))
        );
        assert!(first["png"].as_str().unwrap().starts_with("iVBORw0KGgo"), "base64 of the PNG signature");
        st.delivered(1);
        st.show(&arrow(6));
        st.delivered(1);
        st.show(&arrow(5));
        assert_eq!(parse(st.message_for(1).unwrap()), json!({"t": "cursor", "serial": 5}));
        // Another viewer never got it.
        assert!(parse(st.message_for(2).unwrap())["png"].is_string());
    }

    #[test]
    fn an_undelivered_message_is_not_counted_as_held() {
        let mut st = CursorState::default();
        st.show(&arrow(5));
        let _ = st.message_for(1); // the send failed: no `delivered`
        assert!(parse(st.message_for(1).unwrap())["png"].is_string());
    }

    #[test]
    fn a_viewer_forgets_serials_beyond_its_window() {
        let mut st = CursorState::default();
        for serial in 0..=VIEWER_KNOWN as u32 {
            st.show(&arrow(serial));
            st.delivered(1);
        }
        st.show(&arrow(0));
        assert!(parse(st.message_for(1).unwrap())["png"].is_string(), "serial 0 fell out of the window");
        st.show(&arrow(VIEWER_KNOWN as u32));
        assert!(parse(st.message_for(1).unwrap())["png"].is_null());
    }

    #[test]
    fn invisible_cursors_are_sent_as_hidden_and_not_cached_by_the_viewer() {
        let mut st = CursorState::default();
        st.show(&CursorImage::from_argb_premultiplied(9, 16, 16, (0, 0), &[0; 256]));
        st.delivered(1);
        assert_eq!(parse(st.message_for(1).unwrap()), json!({"t": "cursor", "serial": 9, "hidden": true}));
    }

    #[test]
    fn cursors_too_large_for_a_png_say_so_without_an_image() {
        let big = CursorImage::from_argb_premultiplied(3, 300, 10, (0, 0), &[0xff_ff_ff_ff; 3000]);
        let msg = parse(&Shape::encode(&big).full);
        assert_eq!(msg["too_large"], true);
        assert!(msg["png"].is_null());
    }

    #[test]
    fn the_image_cache_is_bounded_and_reuses_encodings() {
        let mut st = CursorState::default();
        let first = st.show(&arrow(1));
        assert!(Arc::ptr_eq(&first, &st.show(&arrow(1))));
        for serial in 2..(IMAGE_CACHE as u32 + 10) {
            st.show(&arrow(serial));
        }
        assert_eq!(st.cache.len(), IMAGE_CACHE);
        assert!(!Arc::ptr_eq(&first, &st.show(&arrow(1))), "serial 1 was evicted and re-encoded");
    }

    #[test]
    fn departed_viewers_are_forgotten() {
        let mut st = CursorState::default();
        st.show(&arrow(1));
        st.delivered(1);
        st.delivered(2);
        st.retain_viewers(&[2]);
        assert_eq!(st.known.keys().copied().collect::<Vec<_>>(), [2]);
    }
}

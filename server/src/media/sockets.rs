//! The WebSocket viewers' subscription to the tracks: one pad probe on each track's
//! tee (video's access units, audio's Opus packets) copies each access unit once into a shared frame
//! ([`crate::transport::frame::video`]) and offers it to every socket viewer's feed. No
//! GStreamer element per viewer: a socket viewer costs a reference count per frame, and
//! joining or leaving never touches the running pipeline.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;

use super::annexb::ParameterSets;
use crate::transport::feed::Feed;
use crate::transport::frame;

/// Socket viewers by participant id.
#[derive(Default)]
pub(super) struct Sockets {
    feeds: Mutex<Vec<(u64, Arc<Feed>)>>,
}

impl Sockets {
    fn feeds(&self) -> std::sync::MutexGuard<'_, Vec<(u64, Arc<Feed>)>> {
        self.feeds.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts offering `tee`'s access units to the feeds. `ask_keyframe` runs (on the
    /// encoder's thread: it must only hand the request on) when a feed needs a keyframe.
    pub fn attach(self: &Arc<Self>, tee: &gst::Element, ask_keyframe: impl Fn() + Send + Sync + 'static) {
        let Some(pad) = tee.static_pad("sink") else {
            tracing::warn!("the access-unit tee has no sink pad: WebSocket viewers will get no video");
            return;
        };
        let sockets = Arc::downgrade(self);
        let seq = AtomicU32::new(0);
        let params = Mutex::new(ParameterSets::default());
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let (Some(sockets), Some(buffer)) = (sockets.upgrade(), info.buffer()) else {
                return gst::PadProbeReturn::Ok;
            };
            let key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let feeds = sockets.feeds().clone();
            if feeds.is_empty() && !key {
                return gst::PadProbeReturn::Ok;
            }
            let Ok(map) = buffer.map_readable() else { return gst::PadProbeReturn::Ok };
            // Keyframes are scanned even with nobody watching, to remember the parameter sets.
            let completed =
                if key { params.lock().unwrap_or_else(|e| e.into_inner()).complete(&map, true) } else { None };
            if feeds.is_empty() {
                return gst::PadProbeReturn::Ok;
            }
            let pts_us = buffer.pts().map_or(0, |t| t.useconds());
            let f = frame::video(n, pts_us, key, completed.as_deref().unwrap_or(&map));
            let mut ask = false;
            for (_, feed) in &feeds {
                ask |= feed.push_video(f.clone(), key);
            }
            if ask {
                ask_keyframe();
            }
            gst::PadProbeReturn::Ok
        });
    }

    /// Starts offering the audio track's Opus packets (`tee`'s) to the feeds.
    pub fn attach_audio(self: &Arc<Self>, tee: &gst::Element) {
        let Some(pad) = tee.static_pad("sink") else {
            tracing::warn!("the audio tee has no sink pad: WebSocket viewers will get no sound");
            return;
        };
        let sockets = Arc::downgrade(self);
        let seq = AtomicU32::new(0);
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let (Some(sockets), Some(buffer)) = (sockets.upgrade(), info.buffer()) else {
                return gst::PadProbeReturn::Ok;
            };
            let n = seq.fetch_add(1, Ordering::Relaxed);
            let feeds = sockets.feeds().clone();
            if feeds.is_empty() {
                return gst::PadProbeReturn::Ok;
            }
            let Ok(map) = buffer.map_readable() else { return gst::PadProbeReturn::Ok };
            let f = frame::audio(n, buffer.pts().map_or(0, |t| t.useconds()), &map);
            for (_, feed) in &feeds {
                feed.push_audio(f.clone());
            }
            gst::PadProbeReturn::Ok
        });
    }

    pub fn add(&self, id: u64, feed: Arc<Feed>) {
        self.feeds().push((id, feed));
    }

    pub fn remove(&self, id: u64) -> Option<Arc<Feed>> {
        let mut feeds = self.feeds();
        let at = feeds.iter().position(|(i, _)| *i == id)?;
        Some(feeds.swap_remove(at).1)
    }

    /// (id, frames sent, frames skipped) of each feed.
    pub fn counts(&self) -> Vec<(u64, u64, u64)> {
        self.feeds()
            .iter()
            .map(|(id, f)| {
                let (s, d) = f.counts();
                (*id, s, d)
            })
            .collect()
    }

    pub fn len(&self) -> usize {
        self.feeds().len()
    }

    /// Each feed's acknowledgements since the last call, for the bandwidth estimates.
    pub fn take_acks(&self) -> Vec<(u64, Vec<crate::adapt::estimate::PacketReport>)> {
        self.feeds().iter().map(|(id, f)| (*id, f.take_acks())).filter(|(_, a)| !a.is_empty()).collect()
    }
}

//! Keeps a viewer's SCTP packets out of its `sctpdec` while the viewer is torn down.
//!
//! GStreamer 1.22's `sctpdec` aborts the whole process (`g_assert`, "on_receive:
//! assertion failed: (src_pad)") when a packet brings data on a stream it has no pad for
//! yet while its association is no longer connected. Stopping a viewer's branch makes
//! exactly that moment: `sctpdec`'s state change closes the association while the
//! viewer's receive thread may still be handing it the browser's last packets (a data
//! channel's first message, its acknowledgement). `kelpie-soak`, whose viewers leave the
//! moment they connect, hit it once in about 50 sessions: every participant lost the
//! desktop because one left.
//!
//! So before the branch stops, its `sctpdec` takes nothing more: a probe on its sink pad
//! consumes every packet once [`SctpGuard::close`] has run (or once `sctpenc` reports the
//! association down, as when the browser shuts it), and `close` waits until no packet is
//! inside the element. A closing viewer's data channels have nothing left to say that
//! anyone would read.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use gst::prelude::*;

/// How long `close` waits for a packet already inside `sctpdec` to leave it.
const IDLE_WAIT: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct SctpGuard {
    closing: AtomicBool,
    /// `sctpdec`'s sink pad, once webrtcbin has made it (with the SCTP transport).
    sink: Mutex<Option<gst::glib::WeakRef<gst::Pad>>>,
    /// Packets kept out after `close`.
    pub refused: AtomicU64,
}

impl SctpGuard {
    /// Watches `bin` for the `sctpdec` webrtcbin makes inside it.
    pub fn attach(bin: &gst::Bin) -> Arc<Self> {
        let guard = Arc::new(Self::default());
        let weak = Arc::downgrade(&guard);
        bin.connect_deep_element_added(move |_, _, element| {
            let factory = element.factory().map(|f| f.name());
            if factory.as_deref() == Some("sctpenc") {
                // The browser closing the association (a shutdown) ends it as surely.
                let g = weak.clone();
                element.connect("sctp-association-established", false, move |values| {
                    let up = values.get(1).and_then(|v| v.get::<bool>().ok()).unwrap_or(true);
                    if let (false, Some(g)) = (up, g.upgrade()) {
                        g.closing.store(true, Ordering::Release);
                    }
                    None
                });
                return;
            }
            if factory.as_deref() != Some("sctpdec") {
                return;
            }
            let (Some(guard), Some(pad)) = (weak.upgrade(), element.static_pad("sink")) else { return };
            let g = Arc::downgrade(&guard);
            pad.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::BUFFER_LIST, move |_, info| {
                match g.upgrade() {
                    Some(g) if g.closing.load(Ordering::Acquire) => {
                        g.refused.fetch_add(1, Ordering::Relaxed);
                        // Consumed here: `Handled` (not `Drop`, which makes GStreamer 1.22
                        // log a critical for every packet through these bindings).
                        info.data.take();
                        gst::PadProbeReturn::Handled
                    }
                    _ => gst::PadProbeReturn::Ok,
                }
            });
            *guard.sink.lock().unwrap_or_else(|e| e.into_inner()) = Some(pad.downgrade());
        });
        guard
    }

    /// From now on `sctpdec` gets no packet; returns once none is inside it (or after
    /// [`IDLE_WAIT`]). Blocking: call from the thread that stops the branch.
    pub fn close(&self) {
        self.closing.store(true, Ordering::Release);
        let pad = self.sink.lock().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|w| w.upgrade());
        let Some(pad) = pad else { return };
        let (tx, rx) = mpsc::channel();
        pad.add_probe(gst::PadProbeType::IDLE, move |_, _| {
            let _ = tx.send(());
            gst::PadProbeReturn::Remove
        });
        if rx.recv_timeout(IDLE_WAIT).is_err() {
            tracing::debug!("sctpdec stayed busy for {IDLE_WAIT:?}; stopping the branch anyway");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bin holding a real `sctpdec` (and `sctpenc`) as webrtcbin would, and a pad that
    /// feeds the decoder's sink as the viewer's receive thread does.
    fn viewer_like() -> (gst::Bin, Arc<SctpGuard>, gst::Pad, gst::Element) {
        gst::init().unwrap();
        let bin = gst::Bin::new();
        let guard = SctpGuard::attach(&bin);
        let dec = gst::ElementFactory::make("sctpdec").build().unwrap();
        let enc = gst::ElementFactory::make("sctpenc").build().unwrap();
        bin.add_many([&dec, &enc]).unwrap();
        let feed = gst::Pad::builder(gst::PadDirection::Src).name("feed").build();
        let sink = dec.static_pad("sink").unwrap();
        feed.link(&sink).unwrap();
        feed.set_active(true).unwrap();
        sink.set_active(true).unwrap();
        (bin, guard, feed, enc)
    }

    #[test]
    fn after_close_no_packet_reaches_sctpdec() {
        let (_bin, guard, feed, _enc) = viewer_like();
        guard.close();
        // sctpdec has no association here (never started): had the packet reached its
        // chain function, it would have been handed to a null association.
        for _ in 0..3 {
            assert_eq!(feed.push(gst::Buffer::from_slice(vec![0u8; 28])), Ok(gst::FlowSuccess::Ok));
        }
        assert_eq!(guard.refused.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn the_association_going_down_closes_the_receive_path_too() {
        let (_bin, guard, feed, enc) = viewer_like();
        enc.emit_by_name::<()>("sctp-association-established", &[&false]);
        assert_eq!(feed.push(gst::Buffer::from_slice(vec![0u8; 28])), Ok(gst::FlowSuccess::Ok));
        assert_eq!(guard.refused.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn close_without_an_sctp_transport_returns_at_once() {
        gst::init().unwrap();
        let guard = SctpGuard::attach(&gst::Bin::new());
        guard.close();
        assert_eq!(guard.refused.load(Ordering::Relaxed), 0);
    }
}

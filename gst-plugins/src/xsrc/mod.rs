//! `kelpiexsrc`: a damage-aware X11 screen source.
//!
//! Unlike `ximagesrc`, it copies and converts only what XDamage reports as changed, and
//! produces no frames at all while the screen is still (but one every `idle-interval`, so
//! that downstream keeps its pipeline warm, and one at once when asked to `refresh`, so
//! a joining viewer gets its keyframe). When the screen goes still after a change it
//! repeats the picture `still-refresh` times at the frame rate, so that the encoder can
//! sharpen what it last sent (text that scrolled, a window that moved), and then stops.
//! Output is I420 (BT.709) for the encoder, so no `videoconvert` runs.
//!
//! ```text
//! gst-launch-1.0 kelpiexsrc display=:1 ! video/x-raw,framerate=60/1 ! x264enc ! fakesink
//! ```

mod capture;
mod imp;
mod pacing;

use gst::glib;
use gst::prelude::*;

pub use capture::{CaptureError, XCapture};

glib::wrapper! {
    pub struct KelpieXSrc(ObjectSubclass<imp::KelpieXSrc>) @extends gst_base::PushSrc, gst_base::BaseSrc, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "kelpiexsrc", gst::Rank::NONE, KelpieXSrc::static_type())
}

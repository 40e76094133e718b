//! Kelpie's own GStreamer elements.
//!
//! The server registers this plugin statically with [`plugin_register_static`]; built as a
//! `cdylib` it also loads into `gst-launch-1.0` through `GST_PLUGIN_PATH`.
//!
//! | element | what |
//! |---|---|
//! | `kelpiexsrc` | damage-aware X11 capture (XShm + XDamage) straight to I420 |

pub mod convert;
pub mod sprite;
pub mod stamps;
pub mod xsrc;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    xsrc::register(plugin)
}

gst::plugin_define!(
    kelpiegst,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    env!("CARGO_PKG_VERSION"),
    "MPL-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "https://example.invalid/kelpie",
    "2026-11-22"
);

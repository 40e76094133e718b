//! Kelpie's own GStreamer elements.
//!
//! The server registers this plugin statically with [`plugin_register_static`]; built as a
//! `cdylib` it also loads into `gst-launch-1.0` through `GST_PLUGIN_PATH`.
//!
//! Elements arrive with the capture work (a damage-aware XShm source); until then the
//! plugin registers nothing and the server uses `ximagesrc`.

fn plugin_init(_plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    Ok(())
}

gst::plugin_define!(
    kelpie,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    env!("CARGO_PKG_VERSION"),
    "MPL-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    "https://example.invalid/kelpie",
    "2026-11-22"
);

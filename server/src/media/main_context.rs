//! A thread that runs GLib's default main context for as long as Kelpie runs.
//!
//! Kelpie drives GStreamer from its own threads and never ran a GLib main loop, so
//! anything that GStreamer or its libraries dispatch to the default main context was
//! never dispatched. One such thing cost a whole ICE agent per page load: browsers hide
//! their host addresses behind mDNS names (`….local` candidates), GStreamer 1.22's libnice
//! binding resolves those with an asynchronous `GResolver` lookup whose reply goes to the
//! main context of the thread that added the candidate (ours: the default one), and the
//! lookup holds the ICE stream until the reply is dispatched. Undispatched, every
//! reloaded page left its agent behind: its UDP and TCP sockets, its own main context's
//! eventfd, about 5 descriptors per reload (`make soak`, the browser half; the webrtc-rs
//! viewers, which send plain addresses, never showed it).

/// Starts the thread once; later calls do nothing.
pub fn run_default_main_context() {
    static STARTED: std::sync::Once = std::sync::Once::new();
    STARTED.call_once(|| {
        // `run` owns the context (waiting for it if another thread holds it a moment).
        let spawned = std::thread::Builder::new()
            .name("kelpie-glib".into())
            .spawn(|| gst::glib::MainLoop::new(None, false).run());
        if let Err(e) = spawned {
            tracing::warn!(
                "cannot start the GLib main context thread: {e}; mDNS candidates from browsers will not resolve"
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    /// A source attached to the default context from another thread is dispatched.
    #[test]
    fn the_default_main_context_dispatches() {
        gst::init().unwrap();
        run_default_main_context();
        let (tx, rx) = mpsc::channel();
        // An idle source is always dispatched by the context's owner, never run inline.
        gst::glib::idle_add_once(move || {
            let _ = tx.send(std::thread::current().name().map(str::to_owned));
        });
        let ran_on = rx.recv_timeout(Duration::from_secs(10)).expect("the default main context dispatched nothing");
        assert_eq!(ran_on.as_deref(), Some("kelpie-glib"));
    }
}

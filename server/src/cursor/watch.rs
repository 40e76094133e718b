//! The I/O shell: a thread with its own X connection that waits for XFixes cursor-change
//! events and hands each new cursor image to [`RemoteCursor::show`].
//!
//! Events, not polling: the X server wakes us exactly when the displayed cursor changes,
//! so a change reaches the browsers within one round trip and an idle desktop costs nothing.
//! If the X server goes away the thread logs it and reconnects every [`RETRY`]; it ends
//! once the [`RemoteCursor`] it serves is dropped.

use std::sync::Weak;
use std::time::Duration;

use x11rb::connection::Connection;
use x11rb::protocol::xfixes::{ConnectionExt as _, CursorNotifyMask};
use x11rb::protocol::Event;

use super::image::CursorImage;
use super::RemoteCursor;

/// Pause between reconnection attempts after the X connection failed.
const RETRY: Duration = Duration::from_secs(2);
/// XFixes 2.0 brought cursor notification and images by serial; ask for what we know.
const XFIXES_VERSION: (u32, u32) = (4, 0);

#[derive(Debug, thiserror::Error)]
enum WatchError {
    #[error("cannot connect to X display {0}: {1}")]
    Connect(String, x11rb::errors::ConnectError),
    #[error("X connection: {0}")]
    Connection(#[from] x11rb::errors::ConnectionError),
    #[error("X request failed: {0}")]
    Reply(#[from] x11rb::errors::ReplyError),
    #[error("the X server has no screen {0}")]
    NoScreen(usize),
    #[error("the X server has XFixes {0}.{1}; cursor tracking needs 2.0 or later")]
    OldXfixes(u32, u32),
}

/// Starts the watcher thread for `display`.
pub fn spawn(display: String, target: Weak<RemoteCursor>) -> std::io::Result<()> {
    std::thread::Builder::new().name("kelpie-cursor".into()).spawn(move || run(&display, &target)).map(|_| ())
}

fn run(display: &str, target: &Weak<RemoteCursor>) {
    let mut failures = 0u32;
    loop {
        match watch(display, target, &mut failures) {
            Ok(()) => return,
            Err(e) => {
                // One warning per outage, not one every RETRY.
                if failures == 0 {
                    tracing::warn!("remote cursor: {e}; retrying every {} s", RETRY.as_secs());
                } else {
                    tracing::debug!("remote cursor: {e}");
                }
                failures += 1;
            }
        }
        std::thread::sleep(RETRY);
        if target.strong_count() == 0 {
            return;
        }
    }
}

/// Watches until the connection fails (`Err`) or the target is gone (`Ok`).
fn watch(x_display: &str, target: &Weak<RemoteCursor>, failures: &mut u32) -> Result<(), WatchError> {
    let (conn, screen) = x11rb::connect(Some(x_display)).map_err(|e| WatchError::Connect(x_display.to_string(), e))?;
    let version = conn.xfixes_query_version(XFIXES_VERSION.0, XFIXES_VERSION.1)?.reply()?;
    if version.major_version < 2 {
        return Err(WatchError::OldXfixes(version.major_version, version.minor_version));
    }
    let root = conn.setup().roots.get(screen).ok_or(WatchError::NoScreen(screen))?.root;
    conn.xfixes_select_cursor_input(root, CursorNotifyMask::DISPLAY_CURSOR)?.check()?;
    if *failures > 0 {
        tracing::info!("remote cursor: X display {x_display} is back");
    }
    *failures = 0;
    tracing::debug!(x_display, "watching cursor changes");
    loop {
        // The current image first: at start, and after each change.
        let reply = conn.xfixes_get_cursor_image()?.reply()?;
        let image = CursorImage::from_argb_premultiplied(
            reply.cursor_serial,
            reply.width,
            reply.height,
            (reply.xhot, reply.yhot),
            &reply.cursor_image,
        );
        let Some(cursor) = target.upgrade() else { return Ok(()) };
        cursor.show(&image);
        drop(cursor);
        wait_for_change(&conn)?;
    }
}

/// Blocks until the displayed cursor changed. Several changes already queued count as one:
/// only the latest image matters.
fn wait_for_change(conn: &impl Connection) -> Result<(), WatchError> {
    loop {
        if let Event::XfixesCursorNotify(_) = conn.wait_for_event()? {
            while conn.poll_for_event()?.is_some() {}
            return Ok(());
        }
    }
}

//! The X side of the clipboard: one thread with its own X connection and a hidden window.
//!
//! - X → browsers: XFixes tells us when another client takes CLIPBOARD (no polling); we
//!   ask the owner for TARGETS, then for `image/png` or text, reading INCR transfers
//!   piece by piece, and hand the content to the sender thread.
//! - Browsers → X: content from a controller makes our window the owner of CLIPBOARD (and
//!   PRIMARY for text); we answer other clients' SelectionRequests, with INCR for content
//!   too big for one property.
//!
//! The thread sleeps in poll(2) on the X socket and a wake-up socket, so it costs nothing
//! while idle. Errors from other clients (a requestor window that vanished) are logged
//! and forgotten; losing the X connection makes the thread reconnect every few seconds.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{Receiver, Sender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use x11rb::connection::{Connection, RequestConnection as _};
use x11rb::errors::{ConnectionError, ReplyError};
use x11rb::protocol::xfixes::{ConnectionExt as _, SelectionEventMask};
use x11rb::protocol::xproto::{
    self, AtomEnum, ChangeWindowAttributesAux, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, Property,
    SelectionNotifyEvent, SelectionRequestEvent, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{CURRENT_TIME, NONE};

use super::chunks::{Clip, ClipMime, Reassembler};
use super::formats::{choose, decode, fallback_after, Target};
use super::sender::{Audience, Job};
use super::serving::{bytes_as, Outgoing, Serving, SERVE_TIMEOUT};
use crate::input::protocol::ClipChunk;

/// An owner that has not answered a conversion (or sent the next INCR piece) by then is
/// given up on; the next ownership change starts afresh.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between attempts to reach the X server.
const RETRY: Duration = Duration::from_secs(2);
/// Largest property we write in one piece; bigger content goes by INCR. The X limit
/// (maximum_request_bytes) is far higher with BIG-REQUESTS, but toolkits cap single
/// properties around this size and some clients choke on bigger ones.
const INCR_CHUNK: usize = 256 * 1024;
/// A partial browser transfer untouched for this long is dropped (the viewer left).
const STALE_PARTIAL: Duration = Duration::from_secs(60);

/// State shared with the rest of the clipboard module.
pub(super) struct Shared {
    pub max_bytes: usize,
    /// The current remote clipboard, for viewers that join later.
    pub last: Arc<Mutex<Option<Last>>>,
    pub out: Sender<Job>,
}

/// The content the X clipboard holds now, and where it came from.
#[derive(Clone, Debug)]
pub(super) struct Last {
    pub clip: Arc<Clip>,
    /// Pasted by a participant's browser: never replayed to the others (it may be a
    /// password); they get it only if an X application copies it again.
    pub from_browser: bool,
}

enum Command {
    Chunk(u64, ClipChunk),
    /// The participant left: drop its half-received transfer.
    Gone(u64),
}

/// Handle to the clipboard thread.
pub(super) struct XClipboard {
    tx: Sender<Command>,
    wake: UnixStream,
}

impl XClipboard {
    pub fn start(display: String, shared: Shared) -> std::io::Result<Self> {
        let (wake, wake_rx) = UnixStream::pair()?;
        wake.set_nonblocking(true)?;
        wake_rx.set_nonblocking(true)?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new().name("kelpie-clipboard".into()).spawn(move || run(display, rx, wake_rx, shared))?;
        Ok(Self { tx, wake })
    }

    /// Queues a controller's chunk; never blocks (a full wake-up socket means the thread
    /// is already due to wake).
    pub fn chunk(&self, viewer: u64, chunk: ClipChunk) {
        if self.tx.send(Command::Chunk(viewer, chunk)).is_ok() {
            let _ = (&self.wake).write(&[1]);
        }
    }

    pub fn gone(&self, viewer: u64) {
        if self.tx.send(Command::Gone(viewer)).is_ok() {
            let _ = (&self.wake).write(&[1]);
        }
    }
}

/// Browser transfers being reassembled, one per viewer.
struct Inbox {
    max_bytes: usize,
    partial: HashMap<u64, (Reassembler, Instant)>,
}

impl Inbox {
    fn take(&mut self, cmd: Command) -> Option<Clip> {
        let (viewer, chunk) = match cmd {
            Command::Chunk(viewer, chunk) => (viewer, chunk),
            Command::Gone(viewer) => {
                self.partial.remove(&viewer);
                return None;
            }
        };
        // Forget senders silent for a while (they left); keep the others' state, which
        // includes the transfer they last had dropped.
        self.partial.retain(|_, (_, t)| t.elapsed() < STALE_PARTIAL);
        let max = self.max_bytes;
        let (r, touched) = self.partial.entry(viewer).or_insert_with(|| (Reassembler::new(max), Instant::now()));
        *touched = Instant::now();
        match r.push(&chunk) {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(viewer, "clipboard: {e}; transfer dropped");
                None
            }
        }
    }
}

enum Stop {
    /// The handle was dropped: Kelpie is shutting down.
    Shutdown,
    /// The X connection failed.
    Lost(String),
}

impl From<ConnectionError> for Stop {
    fn from(e: ConnectionError) -> Self {
        Stop::Lost(e.to_string())
    }
}

/// A reply, `None` for an X error (another client's window vanished, ...), `Stop` when
/// the connection itself failed.
fn reply<T>(r: Result<T, ReplyError>, what: &str) -> Result<Option<T>, Stop> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(ReplyError::X11Error(e)) => {
            tracing::debug!("clipboard: {what}: X error {:?}", e.error_kind);
            Ok(None)
        }
        Err(ReplyError::ConnectionError(e)) => Err(e.into()),
    }
}

fn run(display: String, rx: Receiver<Command>, wake_rx: UnixStream, shared: Shared) {
    let mut inbox = Inbox { max_bytes: shared.max_bytes, partial: HashMap::new() };
    loop {
        match XSide::connect(&display, &shared) {
            Ok(mut x) => {
                let shown = &display; // (tracing's macros shadow a variable named `display`)
                tracing::info!(x_display = %shown, "clipboard: watching the X clipboard");
                match x.serve(&rx, &wake_rx, &mut inbox) {
                    Stop::Shutdown => return,
                    Stop::Lost(e) => tracing::warn!("clipboard: X connection lost ({e}); reconnecting"),
                }
            }
            Err(e) => tracing::warn!("clipboard: {e}; retrying in {} s", RETRY.as_secs()),
        }
        let until = Instant::now() + RETRY;
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            wait_readable(&[wake_rx.as_raw_fd()], Some(left));
            drain(&wake_rx);
            loop {
                match rx.try_recv() {
                    Ok(cmd) => {
                        if let Some(clip) = inbox.take(cmd) {
                            tracing::warn!(?clip, "clipboard: no X connection; browser content dropped");
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return,
                }
            }
        }
    }
}

/// Blocks until one of `fds` is readable (or hung up) or `timeout` passes.
fn wait_readable(fds: &[RawFd], timeout: Option<Duration>) {
    let mut polls: Vec<libc::pollfd> =
        fds.iter().map(|&fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 }).collect();
    let ms = timeout.map_or(-1, |d| d.as_millis().clamp(1, i32::MAX as u128) as i32);
    // SAFETY: `polls` is a valid array of `polls.len()` pollfd structs for the whole call.
    unsafe { libc::poll(polls.as_mut_ptr(), polls.len() as libc::nfds_t, ms) };
}

fn drain(s: &UnixStream) {
    let mut buf = [0u8; 64];
    while matches!((&*s).read(&mut buf), Ok(n) if n > 0) {}
}

struct Atoms {
    clipboard: xproto::Atom,
    targets: xproto::Atom,
    timestamp: xproto::Atom,
    incr: xproto::Atom,
    /// The property on our window that owners write conversions into.
    prop: xproto::Atom,
    formats: [(Target, xproto::Atom); 5],
}

impl Atoms {
    fn of(&self, t: Target) -> xproto::Atom {
        self.formats.iter().find(|(f, _)| *f == t).map_or(NONE, |(_, a)| *a)
    }

    fn target(&self, atom: xproto::Atom) -> Option<Target> {
        self.formats.iter().find(|(_, a)| *a == atom).map(|(t, _)| *t)
    }
}

/// What we own, from a browser.
struct Owned {
    clip: Arc<Clip>,
    clipboard: bool,
    primary: bool,
}

/// A conversion we asked an owner for. `target` None: TARGETS.
struct Fetch {
    target: Option<Target>,
    /// Some while an INCR transfer is under way.
    incr: Option<Vec<u8>>,
    deadline: Instant,
    time: xproto::Timestamp,
}

struct XSide<'a> {
    conn: RustConnection,
    window: xproto::Window,
    atoms: Atoms,
    shared: &'a Shared,
    owned: Option<Owned>,
    fetch: Option<Fetch>,
    serving: Serving,
    incr_chunk: usize,
}

impl<'a> XSide<'a> {
    fn connect(display: &str, shared: &'a Shared) -> Result<Self, String> {
        let fail = |e: &dyn std::fmt::Display| format!("cannot use X display {display} for the clipboard: {e}");
        let (conn, screen) = x11rb::connect(Some(display)).map_err(|e| fail(&e))?;
        let root = conn.setup().roots[screen].root;
        conn.xfixes_query_version(5, 0)
            .map_err(|e| fail(&e))?
            .reply()
            .map_err(|e| fail(&format!("no XFixes extension ({e})")))?;
        let window = conn.generate_id().map_err(|e| fail(&e))?;
        conn.create_window(
            0,
            window,
            root,
            -10,
            -10,
            1,
            1,
            0,
            WindowClass::INPUT_ONLY,
            0,
            &CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE),
        )
        .map_err(|e| fail(&e))?;
        let intern = |name: &[u8]| -> Result<xproto::Atom, String> {
            Ok(conn.intern_atom(false, name).map_err(|e| fail(&e))?.reply().map_err(|e| fail(&e))?.atom)
        };
        let mut formats = [(Target::Png, NONE); 5];
        for (slot, t) in formats.iter_mut().zip(Target::ALL) {
            *slot = (t, intern(t.atom_name())?);
        }
        let atoms = Atoms {
            clipboard: intern(b"CLIPBOARD")?,
            targets: intern(b"TARGETS")?,
            timestamp: intern(b"TIMESTAMP")?,
            incr: intern(b"INCR")?,
            prop: intern(b"KELPIE_CLIPBOARD")?,
            formats,
        };
        conn.xfixes_select_selection_input(window, atoms.clipboard, SelectionEventMask::SET_SELECTION_OWNER)
            .map_err(|e| fail(&e))?;
        let incr_chunk = INCR_CHUNK.min(conn.maximum_request_bytes().saturating_sub(64)).max(4096);
        conn.flush().map_err(|e| fail(&e))?;
        Ok(Self { conn, window, atoms, shared, owned: None, fetch: None, serving: Serving::default(), incr_chunk })
    }

    fn serve(&mut self, rx: &Receiver<Command>, wake: &UnixStream, inbox: &mut Inbox) -> Stop {
        match self.event_loop(rx, wake, inbox) {
            Ok(never) => match never {},
            Err(stop) => stop,
        }
    }

    fn event_loop(
        &mut self,
        rx: &Receiver<Command>,
        wake: &UnixStream,
        inbox: &mut Inbox,
    ) -> Result<std::convert::Infallible, Stop> {
        // Whatever is on the clipboard already is the first content viewers get.
        let owner = reply(self.conn.get_selection_owner(self.atoms.clipboard)?.reply(), "selection owner")?;
        if let Some(r) = owner {
            if r.owner != NONE && r.owner != self.window {
                self.start_fetch(CURRENT_TIME)?;
            }
        }
        loop {
            loop {
                match rx.try_recv() {
                    Ok(cmd) => {
                        if let Some(clip) = inbox.take(cmd) {
                            self.own(clip)?;
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => return Err(Stop::Shutdown),
                }
            }
            self.conn.flush()?;
            // Events may already sit in x11rb's queue (read while waiting for a reply),
            // where poll(2) cannot see them: handle those before sleeping.
            if let Some(event) = self.conn.poll_for_event()? {
                self.on_event(event)?;
                continue;
            }
            wait_readable(&[self.conn.stream().as_raw_fd(), wake.as_raw_fd()], self.next_deadline());
            drain(wake);
            self.expire();
        }
    }

    fn next_deadline(&self) -> Option<Duration> {
        let fetch = self.fetch.as_ref().map(|f| f.deadline);
        let first = fetch.into_iter().chain(self.serving.next_deadline()).min()?;
        Some(first.saturating_duration_since(Instant::now()))
    }

    fn expire(&mut self) {
        let now = Instant::now();
        if self.fetch.as_ref().is_some_and(|f| f.deadline <= now) {
            tracing::warn!(
                "clipboard: the X clipboard owner did not answer within {} s; its content is not sent",
                FETCH_TIMEOUT.as_secs()
            );
            self.fetch = None;
        }
        if self.serving.expire(now) > 0 {
            tracing::warn!("clipboard: an X client stopped reading an INCR transfer; dropped it");
        }
    }

    fn on_event(&mut self, event: Event) -> Result<(), Stop> {
        match event {
            Event::XfixesSelectionNotify(ev) if ev.selection == self.atoms.clipboard => {
                if ev.owner == self.window || ev.owner == NONE {
                    return Ok(()); // our own ownership (no echo), or the owner left
                }
                tracing::debug!(owner = ev.owner, "clipboard: another X client took CLIPBOARD");
                self.start_fetch(ev.selection_timestamp)?;
            }
            Event::SelectionNotify(ev) if ev.requestor == self.window => self.on_converted(ev)?,
            Event::PropertyNotify(ev) => {
                if ev.window == self.window && ev.atom == self.atoms.prop && ev.state == Property::NEW_VALUE {
                    self.on_incr_piece()?;
                } else if ev.state == Property::DELETE {
                    self.on_requestor_read(ev.window, ev.atom)?;
                }
            }
            Event::SelectionRequest(ev) => self.on_request(ev)?,
            Event::SelectionClear(ev) => {
                if let Some(o) = &mut self.owned {
                    if ev.selection == self.atoms.clipboard {
                        o.clipboard = false;
                    } else if ev.selection == u32::from(AtomEnum::PRIMARY) {
                        o.primary = false;
                    }
                    if !o.clipboard && !o.primary {
                        tracing::debug!("clipboard: no longer owner of the X selections");
                        self.owned = None;
                        self.serving.forget_encoding();
                    }
                }
            }
            Event::Error(e) => {
                tracing::debug!("clipboard: X error {:?} (a client window probably vanished)", e.error_kind)
            }
            _ => {}
        }
        Ok(())
    }

    // ---- X → browsers -------------------------------------------------------------

    fn start_fetch(&mut self, time: xproto::Timestamp) -> Result<(), Stop> {
        self.conn.delete_property(self.window, self.atoms.prop)?;
        self.fetch = Some(Fetch { target: None, incr: None, deadline: Instant::now() + FETCH_TIMEOUT, time });
        self.conn.convert_selection(self.window, self.atoms.clipboard, self.atoms.targets, self.atoms.prop, time)?;
        Ok(())
    }

    fn request(&mut self, target: Option<Target>) -> Result<(), Stop> {
        let Some(f) = self.fetch.as_mut() else { return Ok(()) };
        let Some(t) = target else {
            tracing::info!("clipboard: the X clipboard holds no text or PNG; nothing sent");
            self.fetch = None;
            return Ok(());
        };
        f.target = Some(t);
        f.deadline = Instant::now() + FETCH_TIMEOUT;
        let time = f.time;
        self.conn.convert_selection(self.window, self.atoms.clipboard, self.atoms.of(t), self.atoms.prop, time)?;
        Ok(())
    }

    fn max_words(&self) -> u32 {
        u32::try_from(self.shared.max_bytes / 4 + 1).unwrap_or(u32::MAX)
    }

    fn read_prop(&self) -> Result<Option<xproto::GetPropertyReply>, Stop> {
        let cookie = self.conn.get_property(true, self.window, self.atoms.prop, AtomEnum::ANY, 0, self.max_words())?;
        reply(cookie.reply(), "reading the converted clipboard")
    }

    fn on_converted(&mut self, ev: SelectionNotifyEvent) -> Result<(), Stop> {
        let Some(f) = &self.fetch else { return Ok(()) };
        let expected = f.target.map_or(self.atoms.targets, |t| self.atoms.of(t));
        if ev.selection != self.atoms.clipboard || ev.target != expected || f.incr.is_some() {
            return Ok(()); // an answer to an earlier, abandoned request
        }
        let asked = f.target;
        if ev.property == NONE {
            tracing::debug!(target = ?asked, "clipboard: the owner refused a conversion; trying the next format");
            return self.request(fallback_after(asked));
        }
        let Some(prop) = self.read_prop()? else {
            return self.request(fallback_after(asked));
        };
        if prop.bytes_after > 0 {
            self.conn.delete_property(self.window, self.atoms.prop)?;
            tracing::warn!(
                max = self.shared.max_bytes,
                "clipboard: X clipboard content over --clipboard-max-bytes; not sent"
            );
            self.fetch = None;
            return Ok(());
        }
        if prop.type_ == self.atoms.incr {
            // Deleting the INCR property (done by the read) tells the owner to send.
            tracing::debug!("clipboard: the X owner sends by INCR");
            if let Some(f) = self.fetch.as_mut() {
                f.incr = Some(Vec::new());
                f.deadline = Instant::now() + FETCH_TIMEOUT;
            }
            return Ok(());
        }
        match asked {
            None => {
                let offered: Vec<Target> = match prop.value32() {
                    Some(atoms) => atoms.filter_map(|a| self.atoms.target(a)).collect(),
                    None => Vec::new(),
                };
                let pick = if offered.is_empty() { fallback_after(None) } else { choose(&offered) };
                self.request(pick)
            }
            Some(t) => {
                self.finish(t, prop.value);
                Ok(())
            }
        }
    }

    fn on_incr_piece(&mut self) -> Result<(), Stop> {
        if self.fetch.as_ref().is_none_or(|f| f.incr.is_none()) {
            return Ok(()); // the INCR announcement itself, or no transfer
        }
        let Some(prop) = self.read_prop()? else { return Ok(()) };
        let max = self.shared.max_bytes;
        let Some(f) = self.fetch.as_mut() else { return Ok(()) };
        let (Some(target), Some(buf)) = (f.target, f.incr.as_mut()) else { return Ok(()) };
        if prop.value.is_empty() {
            let bytes = std::mem::take(buf);
            self.finish(target, bytes);
        } else if buf.len() + prop.value.len() > max || prop.bytes_after > 0 {
            tracing::warn!(max, "clipboard: X clipboard content over --clipboard-max-bytes; not sent");
            self.fetch = None;
        } else {
            buf.extend_from_slice(&prop.value);
            f.deadline = Instant::now() + FETCH_TIMEOUT;
        }
        Ok(())
    }

    fn finish(&mut self, target: Target, bytes: Vec<u8>) {
        self.fetch = None;
        let clip = Clip { mime: target.mime(), bytes: decode(target, bytes) };
        if clip.bytes.len() > self.shared.max_bytes {
            tracing::warn!(?clip, "clipboard: X clipboard content over --clipboard-max-bytes; not sent");
            return;
        }
        let mut last = self.shared.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_ref().map(|l| &*l.clip) == Some(&clip) {
            tracing::debug!(?clip, "clipboard: X clipboard unchanged");
            return;
        }
        tracing::info!(?clip, target = ?target, "clipboard: copied in X; sending to browsers");
        let clip = Arc::new(clip);
        *last = Some(Last { clip: clip.clone(), from_browser: false });
        let _ = self.shared.out.send(Job { clip, to: Audience::All });
    }

    // ---- browsers → X -------------------------------------------------------------

    fn own(&mut self, clip: Clip) -> Result<(), Stop> {
        let primary = clip.mime == ClipMime::Text;
        self.conn.set_selection_owner(self.window, self.atoms.clipboard, CURRENT_TIME)?;
        if primary {
            self.conn.set_selection_owner(self.window, AtomEnum::PRIMARY.into(), CURRENT_TIME)?;
        }
        let owner = reply(self.conn.get_selection_owner(self.atoms.clipboard)?.reply(), "selection owner")?;
        let ours = owner.is_some_and(|r| r.owner == self.window);
        if !ours {
            tracing::warn!(?clip, "clipboard: could not take the X clipboard; browser content dropped");
            return Ok(());
        }
        // Whatever an earlier owner was still sending us is moot now.
        self.fetch = None;
        tracing::info!(?clip, "clipboard: browser content now owns the X clipboard");
        let clip = Arc::new(clip);
        *self.shared.last.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Last { clip: clip.clone(), from_browser: true });
        self.serving.forget_encoding();
        self.owned = Some(Owned { clip, clipboard: true, primary });
        Ok(())
    }

    fn on_request(&mut self, ev: SelectionRequestEvent) -> Result<(), Stop> {
        // Obsolete clients leave the property out: ICCCM says use the target's name.
        let property = if ev.property == NONE { ev.target } else { ev.property };
        let clip = match &self.owned {
            Some(o)
                if (ev.selection == self.atoms.clipboard && o.clipboard)
                    || (ev.selection == u32::from(AtomEnum::PRIMARY) && o.primary) =>
            {
                Some(o.clip.clone())
            }
            _ => None,
        };
        let answered = match clip {
            Some(clip) => self.answer(ev.requestor, property, ev.target, &clip)?,
            None => false,
        };
        let notify = SelectionNotifyEvent {
            response_type: xproto::SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: ev.time,
            requestor: ev.requestor,
            selection: ev.selection,
            target: ev.target,
            property: if answered { property } else { NONE },
        };
        self.conn.send_event(false, ev.requestor, EventMask::NO_EVENT, notify)?;
        Ok(())
    }

    /// Writes `clip` as `target` into the requestor's property; false if we cannot.
    fn answer(
        &mut self,
        requestor: xproto::Window,
        property: xproto::Atom,
        target: xproto::Atom,
        clip: &Arc<Clip>,
    ) -> Result<bool, Stop> {
        let offered = Target::offered_for(clip.mime);
        if target == self.atoms.targets {
            let mut list = vec![self.atoms.targets, self.atoms.timestamp];
            list.extend(offered.iter().map(|&t| self.atoms.of(t)));
            self.conn.change_property32(PropMode::REPLACE, requestor, property, AtomEnum::ATOM, &list)?;
            return Ok(true);
        }
        if target == self.atoms.timestamp {
            self.conn.change_property32(PropMode::REPLACE, requestor, property, AtomEnum::INTEGER, &[0])?;
            return Ok(true);
        }
        let Some(t) = self.atoms.target(target).filter(|t| offered.contains(t)) else {
            tracing::debug!(target, "clipboard: refused a conversion to a format we do not hold");
            return Ok(false);
        };
        // We answer TEXT with UTF-8, and say so in the property type.
        let type_ = if t == Target::Text { self.atoms.of(Target::Utf8) } else { target };
        if clip.bytes.len() <= self.incr_chunk {
            // One property holds it (Latin-1 is never longer than the UTF-8 it comes from).
            let bytes = bytes_as(clip, t);
            tracing::debug!(bytes = bytes.len(), target = ?t, "clipboard: an X client reads the browser's content");
            self.conn.change_property8(PropMode::REPLACE, requestor, property, type_, &bytes)?;
            return Ok(true);
        }
        if let Err(full) = self.serving.admits(requestor, property) {
            tracing::warn!("clipboard: refused an X client's read of the browser's content: {full}");
            return Ok(false);
        }
        let bytes = self.serving.encoded(clip, t);
        tracing::debug!(bytes = bytes.len(), target = ?t, "clipboard: an X client reads the browser's content");
        if bytes.len() <= self.incr_chunk {
            self.conn.change_property8(PropMode::REPLACE, requestor, property, type_, &bytes)?;
            return Ok(true);
        }
        // INCR: announce the size, then send a piece each time the requestor deletes the
        // property, which we learn from PropertyNotify on its window.
        let attrs = ChangeWindowAttributesAux::new().event_mask(EventMask::PROPERTY_CHANGE);
        self.conn.change_window_attributes(requestor, &attrs)?;
        let size = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        self.conn.change_property32(PropMode::REPLACE, requestor, property, self.atoms.incr, &[size])?;
        // Admitted above, and nothing was started since.
        let started = self.serving.start(Outgoing {
            requestor,
            property,
            type_,
            bytes,
            offset: 0,
            deadline: Instant::now() + SERVE_TIMEOUT,
        });
        Ok(started.is_ok())
    }

    fn on_requestor_read(&mut self, window: xproto::Window, property: xproto::Atom) -> Result<(), Stop> {
        let incr_chunk = self.incr_chunk;
        let Some(o) = self.serving.get_mut(window, property) else {
            return Ok(());
        };
        let end = (o.offset + incr_chunk).min(o.bytes.len());
        // After the last piece, a zero-length piece marks the end.
        self.conn.change_property8(PropMode::REPLACE, o.requestor, o.property, o.type_, &o.bytes[o.offset..end])?;
        let finished = o.offset == end;
        o.offset = end;
        o.deadline = Instant::now() + SERVE_TIMEOUT;
        if finished {
            let Some((done, last)) = self.serving.finish(window, property) else { return Ok(()) };
            if last {
                let attrs = ChangeWindowAttributesAux::new().event_mask(EventMask::NO_EVENT);
                self.conn.change_window_attributes(done.requestor, &attrs)?;
            }
            tracing::debug!(bytes = done.bytes.len(), "clipboard: INCR transfer to an X client done");
        }
        Ok(())
    }
}

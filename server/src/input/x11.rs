//! The X11 side of input: injects validated events with XTest.
//!
//! One thread owns the X connection, so events from all viewers are applied in arrival
//! order and XTest calls never race. Everything the thread does is bounded by the X
//! connection: if the X server dies, events are counted as dropped and the thread keeps
//! trying to reconnect, so the rest of Kelpie stays up and `/health` can say why.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{self, ConnectionExt as _};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

use super::binder::{spare_keycodes, KeycodeBinder};
use super::keymap::{char_keysym, press_plan, FakeKey, KeyError, KeysymMap, XK_SHIFT_L, XK_SHIFT_R};
use super::protocol::{InputEvent, Notches, WheelAccumulator};
use super::queue::{coalesce_moves, Cutoffs, Queued, BATCH, QUEUE};

/// Identifies a viewer to the injector, so its held keys can be released when it leaves.
pub type ViewerKey = u64;

/// Counters of what happened to input, for logs and metrics.
#[derive(Debug, Default)]
pub struct InputCounters {
    pub applied: AtomicU64,
    pub dropped: AtomicU64,
    /// Of `dropped`: refused because the queue to the input thread was full.
    pub overflowed: AtomicU64,
    /// Pointer moves skipped because a later one of the same participant was queued.
    pub coalesced: AtomicU64,
}

/// Handle to the injector thread; cheap to clone.
#[derive(Clone)]
pub struct InputInjector {
    /// Bounded ([`QUEUE`]): a stalled X server makes events drop, not pile up.
    events: SyncSender<Queued>,
    /// Numbers every event sent, so that a release can cut off what came before it.
    seq: Arc<AtomicU64>,
    /// Releases and departures (`None`: the participant left), apart from events so that
    /// they are never dropped and go first.
    gone: Sender<(ViewerKey, Option<u64>)>,
    pub counters: Arc<InputCounters>,
}

impl InputInjector {
    /// Starts the injector for `display`. Connection problems are retried in the thread.
    pub fn start(display: String) -> Self {
        let (events, rx) = mpsc::sync_channel(QUEUE);
        let (gone, gone_rx) = mpsc::channel();
        let counters = Arc::new(InputCounters::default());
        let c = counters.clone();
        std::thread::Builder::new()
            .name("kelpie-input".into())
            .spawn(move || run(display, rx, gone_rx, c))
            .expect("spawning the input thread");
        Self { events, seq: Arc::new(AtomicU64::new(0)), gone, counters }
    }

    pub fn send(&self, viewer: ViewerKey, event: InputEvent) {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        match self.events.try_send(Queued { viewer, seq, event, arrived_ns: crate::latency::mono_ns() }) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
                if self.counters.overflowed.fetch_add(1, Ordering::Relaxed).is_multiple_of(1000) {
                    tracing::warn!(
                        "input: {QUEUE} events wait for the X server, which is slow or stalled: dropping new ones \
                         (counted in kelpie_input_events_total{{result=\"dropped\"}})"
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Releases everything `viewer` holds (it lost control; it may get it back).
    pub fn release(&self, viewer: ViewerKey) {
        let _ = self.gone.send((viewer, Some(self.seq.load(Ordering::Relaxed))));
    }

    /// Releases everything `viewer` still holds and drops what it still has queued;
    /// called when it leaves.
    pub fn viewer_gone(&self, viewer: ViewerKey) {
        let _ = self.gone.send((viewer, None));
    }
}

/// What the log may say of an event: never the text typed (it may be a password).
fn describe(event: &InputEvent) -> String {
    match event {
        InputEvent::Text(t) => format!("text of {} characters", t.chars().count()),
        InputEvent::Key { down, .. } => format!("a key {}", if *down { "press" } else { "release" }),
        other => format!("{other:?}"),
    }
}

/// What one viewer holds down, so it can be released on blur or disconnect.
#[derive(Default)]
struct Held {
    /// keysym → keycode it was pressed with (the release must use the same keycode).
    keys: HashMap<u32, u8>,
    shifts: Vec<u8>,
    buttons: HashSet<u8>,
    wheel: WheelAccumulator,
}

struct XSide {
    conn: RustConnection,
    root: xproto::Window,
    keymap: KeysymMap,
    /// Spare keycodes for keysyms the keymap lacks.
    binder: KeycodeBinder,
    keysyms_per_keycode: u8,
}

impl XSide {
    fn connect(display: &str) -> Result<Self, String> {
        let (conn, screen) =
            x11rb::connect(Some(display)).map_err(|e| format!("cannot connect to X display {display}: {e}"))?;
        let s = &conn.setup().roots[screen];
        let root = s.root;
        conn.xtest_get_version(2, 2)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| format!("X display {display} lacks the XTEST extension: {e}"))?;
        let mut side =
            Self { conn, root, keymap: KeysymMap::default(), binder: KeycodeBinder::default(), keysyms_per_keycode: 1 };
        side.reload_keymap()?;
        tracing::info!(spare_keycodes = side.binder.spare_count(), "input: keymap loaded");
        Ok(side)
    }

    /// Reads the keymap; keycodes we bound ourselves count as spare, not as layout.
    fn reload_keymap(&mut self) -> Result<(), String> {
        let (min, max) = (self.conn.setup().min_keycode, self.conn.setup().max_keycode);
        let reply = self
            .conn
            .get_keyboard_mapping(min, max - min + 1)
            .map_err(|e| e.to_string())?
            .reply()
            .map_err(|e| format!("reading the keymap: {e}"))?;
        let per = reply.keysyms_per_keycode.max(1);
        let mut syms = reply.keysyms;
        for (i, row) in syms.chunks_mut(usize::from(per)).enumerate() {
            let keycode = usize::from(min) + i;
            if u8::try_from(keycode).is_ok_and(|kc| self.binder.is_bound(kc)) {
                row.fill(0);
            }
        }
        self.keymap = KeysymMap::from_mapping(min, per, &syms);
        self.binder.set_spares(spare_keycodes(min, per, &syms));
        self.keysyms_per_keycode = per;
        Ok(())
    }

    /// Puts `keysym` on every column of `keycode` (or clears it with 0), so Shift, Caps
    /// Lock and the group do not change what the key types.
    fn map_keycode(&self, keycode: u8, keysym: u32) -> Result<(), String> {
        let syms = vec![keysym; usize::from(self.keysyms_per_keycode)];
        self.conn
            .change_keyboard_mapping(1, keycode, self.keysyms_per_keycode, &syms)
            .map(|_| ())
            .map_err(|e| format!("changing the keymap: {e}"))
    }

    /// Periodic work: follow keymap changes made by others (a session running
    /// setxkbmap) and give back temporary keycodes that have been idle.
    fn maintain(&mut self) -> Result<(), String> {
        let mut reload = false;
        while let Some(event) = self.conn.poll_for_event().map_err(|e| e.to_string())? {
            if let x11rb::protocol::Event::MappingNotify(e) = event {
                reload |= e.request == xproto::Mapping::KEYBOARD;
            }
        }
        for keycode in self.binder.expire(Instant::now()) {
            self.map_keycode(keycode, 0)?;
            tracing::debug!(keycode, "input: temporary keycode restored");
        }
        if reload {
            self.reload_keymap()?;
        }
        self.conn.flush().map_err(|e| e.to_string())
    }

    /// Restores every temporary keycode, leaving the keymap as we found it.
    fn restore_keymap(&mut self) {
        for keycode in self.binder.drain() {
            let _ = self.map_keycode(keycode, 0);
        }
        let _ = self.conn.flush();
    }

    fn fake(&self, kind: u8, detail: u8, x: i16, y: i16) -> Result<(), String> {
        self.conn
            .xtest_fake_input(kind, detail, x11rb::CURRENT_TIME, self.root, x, y, 0)
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    fn key(&self, k: FakeKey) -> Result<(), String> {
        let kind = if k.press { xproto::KEY_PRESS_EVENT } else { xproto::KEY_RELEASE_EVENT };
        self.fake(kind, k.keycode, 0, 0)
    }

    fn button(&self, button: u8, down: bool) -> Result<(), String> {
        let kind = if down { xproto::BUTTON_PRESS_EVENT } else { xproto::BUTTON_RELEASE_EVENT };
        self.fake(kind, button, 0, 0)
    }

    fn click(&self, button: u8, times: u32) -> Result<(), String> {
        for _ in 0..times {
            self.button(button, true)?;
            self.button(button, false)?;
        }
        Ok(())
    }

    fn key_down(&mut self, held: &mut Held, keysym: u32) -> Result<(), String> {
        if held.keys.contains_key(&keysym) {
            return Ok(()); // browser auto-repeat: X repeats held keys itself
        }
        let keycode = match press_plan(&self.keymap, keysym, &held.shifts) {
            Ok(plan) => {
                for k in &plan {
                    self.key(*k)?;
                }
                // press_plan succeeded, so the keysym has a position.
                self.keymap.position(keysym).map(|p| p.keycode)
            }
            Err(KeyError::Unmapped(_)) => {
                let bound = self.binder.press(keysym, Instant::now()).map_err(|e| e.to_string())?;
                if let Err(e) = self.press_bound(bound.keycode, bound.remap, keysym) {
                    // Not pressed after all: the spare keycode must not stay held for ever.
                    self.binder.release(bound.keycode, Instant::now());
                    return Err(e);
                }
                Some(bound.keycode)
            }
        };
        if let Some(keycode) = keycode {
            held.keys.insert(keysym, keycode);
        }
        if keysym == XK_SHIFT_L || keysym == XK_SHIFT_R {
            held.shifts.extend(held.keys.get(&keysym));
        }
        Ok(())
    }

    /// Maps `keysym` onto the spare `keycode` (when the binder says it must) and presses it.
    fn press_bound(&mut self, keycode: u8, remap: bool, keysym: u32) -> Result<(), String> {
        if remap {
            self.map_keycode(keycode, keysym)?;
            tracing::debug!(keysym = format_args!("{keysym:#x}"), keycode, "input: keysym bound");
        }
        self.key(FakeKey { keycode, press: true })
    }

    fn key_up(&mut self, held: &mut Held, keysym: u32) -> Result<(), String> {
        if let Some(keycode) = held.keys.remove(&keysym) {
            held.shifts.retain(|&k| k != keycode);
            self.key(FakeKey { keycode, press: false })?;
            self.binder.release(keycode, Instant::now());
        }
        Ok(())
    }

    fn apply(&mut self, held: &mut Held, event: InputEvent) -> Result<(), String> {
        match event {
            InputEvent::PointerMove { x, y } => {
                // The X server confines the pointer to the screen, whatever size RandR gave
                // it since we connected; we only keep the value in XTest's 16-bit range.
                let x = x.min(i16::MAX as u32) as i16;
                let y = y.min(i16::MAX as u32) as i16;
                self.fake(xproto::MOTION_NOTIFY_EVENT, 0, x, y)?;
            }
            InputEvent::Button { button, down } => {
                let b = button.x11();
                let changed = if down { held.buttons.insert(b) } else { held.buttons.remove(&b) };
                if changed {
                    self.button(b, down)?;
                }
            }
            InputEvent::Wheel { dx, dy } => {
                let Notches { x, y } = held.wheel.add(dx, dy);
                // X wheel buttons: 4 up, 5 down, 6 left, 7 right.
                self.click(if y < 0 { 4 } else { 5 }, y.unsigned_abs())?;
                self.click(if x < 0 { 6 } else { 7 }, x.unsigned_abs())?;
            }
            InputEvent::Key { keysym, down: true } => self.key_down(held, keysym)?,
            InputEvent::Key { keysym, down: false } => self.key_up(held, keysym)?,
            InputEvent::ReleaseAll => self.release_all(held)?,
            InputEvent::RelativeMove { dx, dy } => {
                // XTest: detail 1 makes the motion relative to where the pointer is.
                self.fake(xproto::MOTION_NOTIFY_EVENT, 1, clamp_i16(dx), clamp_i16(dy))?;
            }
            InputEvent::Text(text) => {
                for c in text.chars() {
                    let keysym = char_keysym(c);
                    if held.keys.contains_key(&keysym) {
                        self.key_up(held, keysym)?; // typing a held key's character types it again
                    }
                    self.key_down(held, keysym)?;
                    self.key_up(held, keysym)?;
                }
            }
            // Routed to other subsystems before reaching the injector.
            InputEvent::KeyframeRequest
            | InputEvent::Clip(_)
            | InputEvent::Resize { .. }
            | InputEvent::Settings { .. }
            | InputEvent::PointerLock(_)
            | InputEvent::Ping(_)
            | InputEvent::Probe(_)
            | InputEvent::Gamepad(_) => {}
        }
        self.conn.flush().map_err(|e| e.to_string())
    }

    fn release_all(&mut self, held: &mut Held) -> Result<(), String> {
        for (_, keycode) in held.keys.drain() {
            self.key(FakeKey { keycode, press: false })?;
            self.binder.release(keycode, Instant::now());
        }
        held.shifts.clear();
        for b in held.buttons.drain() {
            self.button(b, false)?;
        }
        self.conn.flush().map_err(|e| e.to_string())
    }
}

/// How often the injector looks at keymap changes and idle temporary keycodes.
const MAINTAIN_EVERY: Duration = Duration::from_millis(250);

fn clamp_i16(v: i32) -> i16 {
    v.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
}

fn run(display: String, rx: Receiver<Queued>, gone: Receiver<(ViewerKey, Option<u64>)>, counters: Arc<InputCounters>) {
    let mut x: Option<XSide> = None;
    let mut held: HashMap<ViewerKey, Held> = HashMap::new();
    let mut cutoffs = Cutoffs::default();
    let mut last_attempt: Option<Instant> = None;
    let mut last_maintain = Instant::now();
    let mut batch: VecDeque<Queued> = VecDeque::with_capacity(BATCH);
    loop {
        let received = rx.recv_timeout(MAINTAIN_EVERY);
        // Also under a steady stream of events (pointer moves), so idle keycodes come back.
        if last_maintain.elapsed() >= MAINTAIN_EVERY {
            last_maintain = Instant::now();
            if let Some(side) = x.as_mut() {
                if let Err(e) = side.maintain() {
                    tracing::warn!("input: lost the X connection: {e}");
                    x = None;
                }
            }
        }
        // Releases and departures first: what a departed participant still had queued must
        // not apply.
        while let Ok((viewer, at)) = gone.try_recv() {
            match at {
                Some(seq) => cutoffs.released(viewer, seq),
                None => cutoffs.left(viewer),
            }
            if let (Some(mut h), Some(side)) = (held.remove(&viewer), x.as_mut()) {
                if let Err(e) = side.release_all(&mut h) {
                    tracing::warn!("input: releasing a departed participant's keys: {e}");
                }
            }
        }
        match received {
            Ok(first) => batch.push_back(first),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                if let Some(side) = x.as_mut() {
                    side.restore_keymap();
                }
                return;
            }
        }
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push_back(e),
                Err(_) => break,
            }
        }
        counters.coalesced.fetch_add(coalesce_moves(&mut batch) as u64, Ordering::Relaxed);
        if x.is_none() && last_attempt.is_none_or(|t| t.elapsed() > Duration::from_secs(2)) {
            last_attempt = Some(Instant::now());
            match XSide::connect(&display) {
                Ok(side) => {
                    let shown = display.clone();
                    tracing::info!(x_display = %shown, "input: injecting with XTest");
                    x = Some(side);
                }
                Err(e) => tracing::error!("input: {e}; input is dropped until the display comes back"),
            }
        }
        for Queued { viewer, seq, event, arrived_ns } in batch.drain(..) {
            if cutoffs.drops(viewer, seq) {
                counters.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let press = matches!(event, InputEvent::Key { down: true, .. } | InputEvent::Button { down: true, .. });
            let result = match &mut x {
                Some(side) => {
                    let shown = describe(&event);
                    side.apply(held.entry(viewer).or_default(), event).map_err(|e| (e, shown))
                }
                None => Err(("no X connection".into(), String::new())),
            };
            match result {
                Ok(()) => {
                    counters.applied.fetch_add(1, Ordering::Relaxed);
                    if press {
                        crate::latency::global().input_applied(arrived_ns, crate::latency::mono_ns());
                    }
                }
                Err((e, what)) => {
                    counters.dropped.fetch_add(1, Ordering::Relaxed);
                    if e.contains("not in the X keymap") {
                        tracing::debug!("input: dropped {what}: {e}");
                    } else {
                        tracing::warn!("input: dropped {what}: {e}");
                        if x.as_ref().is_some_and(|s| s.conn.flush().is_err()) {
                            x = None;
                        }
                    }
                }
            }
        }
    }
}

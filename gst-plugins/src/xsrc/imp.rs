use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_src::CreateSuccess;
use gst_base::subclass::prelude::*;

use super::capture::{CaptureError, XCapture};
use super::pacing::Pacer;
use crate::convert::{bgrx_to_i420, I420Layout, Rect};
use crate::sprite::Sprite;
use crate::stamps::{mono_ns, CaptureStamp};

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("kelpiexsrc", gst::DebugColorFlags::empty(), Some("Kelpie X11 damage source"))
});

/// A still screen still yields a frame this often, so encoders, payloaders and browsers
/// see a live stream. It must stay under 3 s: Chromium's receiver asks for a keyframe
/// (PLI) when no frame came for 3 s, so with no repeats at all a still screen cost a full
/// keyframe every 3 s (measured: 8 PLIs in 25 s). 2.5 s keeps clear of that and, against
/// the 1 s it was, takes a still 1080p screen with one browser viewer from 1.3 % to 1.0 %
/// of a core (docs/benchmarks.md, issue 13's session of 2026-12-07).
const DEFAULT_IDLE_INTERVAL_MS: u32 = 2500;
const _: () = assert!(DEFAULT_IDLE_INTERVAL_MS > 0 && DEFAULT_IDLE_INTERVAL_MS < 3000);
/// Frames repeated once the screen goes still, by default: each lets the encoder refine
/// the picture it last sent (a P-frame of an unchanged image spends its bits on the
/// quantisation error), so text that moved turns sharp within a fraction of a second
/// instead of one idle repeat a second. Then nothing, until something changes.
const DEFAULT_STILL_REFRESH: u32 = 20;
/// Frame rate used when downstream does not ask for one.
const DEFAULT_FPS: i32 = 30;

#[derive(Debug, Clone)]
struct Settings {
    display: Option<String>,
    idle_interval_ms: u32,
    show_pointer: bool,
    /// Frames per second at most, below the negotiated rate (0 = the caps' rate).
    max_framerate: u32,
    /// Frames repeated when the screen goes still ([`DEFAULT_STILL_REFRESH`]).
    still_refresh: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            display: None,
            idle_interval_ms: DEFAULT_IDLE_INTERVAL_MS,
            show_pointer: false,
            max_framerate: 0,
            still_refresh: DEFAULT_STILL_REFRESH,
        }
    }
}

/// Everything that exists between start() and stop().
struct Running {
    capture: XCapture,
    layout: I420Layout,
    picture: Vec<u8>,
    frame_interval: Duration,
    last_output: Option<Instant>,
    /// Damage that arrived but is not captured yet.
    dirty: bool,
    /// The whole screen must be grabbed: nothing valid is in `picture` (start, new caps).
    need_full: bool,
    /// When the pending damage was first seen.
    damaged_at: Option<Instant>,
    /// When the next frame may be made (frame credit, spacing, settling).
    pacer: Pacer,
    pool: Option<gst::BufferPool>,
    frames: u64,
    /// The cursor as last drawn into the frame (show-pointer), so its area can be
    /// restored from X when it moves or is switched off.
    drawn_cursor: Option<Sprite>,
    /// The cursor as it is now, when it differs from `drawn_cursor`.
    cursor_moved: Option<Sprite>,
    /// The screen size changed under a grab: renegotiate before producing again.
    size_changed: bool,
    /// Refinement frames still to send since the screen last changed.
    refine_left: u32,
    /// The capture times of the frame being made from fresh damage, for its buffer.
    stamp: Option<CaptureStamp>,
}

pub struct KelpieXSrc {
    settings: Mutex<Settings>,
    state: Mutex<Option<Running>>,
    /// Written to wake `create` (unlock or refresh).
    wake_rx: OwnedFd,
    wake_tx: OwnedFd,
    flushing: AtomicBool,
    refresh: AtomicBool,
}

fn wake_pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two fds on success; both are owned from here on.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) != 0 {
            panic!("pipe2 failed: {}", std::io::Error::last_os_error());
        }
        (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1]))
    }
}

fn poke(fd: RawFd) {
    // SAFETY: writes one byte from a valid buffer to our own non-blocking pipe.
    unsafe {
        libc::write(fd, [1u8].as_ptr().cast(), 1);
    }
}

fn drain(fd: RawFd) {
    let mut buf = [0u8; 64];
    // SAFETY: reads into a valid buffer from our own non-blocking pipe.
    while unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) } > 0 {}
}

#[glib::object_subclass]
impl ObjectSubclass for KelpieXSrc {
    const NAME: &'static str = "KelpieXSrc";
    type Type = super::KelpieXSrc;
    type ParentType = gst_base::PushSrc;

    fn new() -> Self {
        let (wake_rx, wake_tx) = wake_pipe();
        Self {
            settings: Mutex::new(Settings::default()),
            state: Mutex::new(None),
            wake_rx,
            wake_tx,
            flushing: AtomicBool::new(false),
            refresh: AtomicBool::new(false),
        }
    }
}

impl ObjectImpl for KelpieXSrc {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPS: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecString::builder("display")
                    .nick("Display")
                    .blurb("X display to capture, e.g. :1 (default: $DISPLAY)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("show-pointer")
                    .nick("Show pointer")
                    .blurb("Draw the X cursor into the picture (for viewers in pointer lock, who see no other cursor)")
                    .default_value(false)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-framerate")
                    .nick("Maximum frame rate")
                    .blurb(
                        "Frames per second at most, while playing and without renegotiation (0 = the negotiated rate)",
                    )
                    .maximum(240)
                    .default_value(0)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("still-refresh")
                    .nick("Still refresh")
                    .blurb("Frames repeated at the frame rate once the screen goes still, for the encoder to sharpen (0 = none)")
                    .maximum(120)
                    .default_value(DEFAULT_STILL_REFRESH)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("idle-interval")
                    .nick("Idle interval")
                    .blurb("Milliseconds between repeated frames while the screen is still (0 = never)")
                    .default_value(DEFAULT_IDLE_INTERVAL_MS)
                    .mutable_playing()
                    .build(),
            ]
        });
        PROPS.as_ref()
    }

    fn signals() -> &'static [glib::subclass::Signal] {
        static SIGNALS: LazyLock<Vec<glib::subclass::Signal>> = LazyLock::new(|| {
            vec![glib::subclass::Signal::builder("refresh")
                .action()
                .class_handler(|args| {
                    let obj = args[0].get::<super::KelpieXSrc>().expect("signal receiver");
                    obj.imp().request_refresh();
                    None
                })
                .build()]
        });
        SIGNALS.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match pspec.name() {
            "display" => s.display = value.get().ok().flatten(),
            "idle-interval" => s.idle_interval_ms = value.get().unwrap_or(DEFAULT_IDLE_INTERVAL_MS),
            "max-framerate" => s.max_framerate = value.get().unwrap_or(0),
            "still-refresh" => s.still_refresh = value.get().unwrap_or(DEFAULT_STILL_REFRESH),
            "show-pointer" => {
                s.show_pointer = value.get().unwrap_or(false);
                drop(s);
                // Wake `create` so the cursor appears (or goes) without waiting for damage.
                poke(self.wake_tx.as_raw_fd());
            }
            _ => {}
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
        match pspec.name() {
            "display" => s.display.to_value(),
            "idle-interval" => s.idle_interval_ms.to_value(),
            "show-pointer" => s.show_pointer.to_value(),
            "max-framerate" => s.max_framerate.to_value(),
            "still-refresh" => s.still_refresh.to_value(),
            _ => unreachable!("unknown property {}", pspec.name()),
        }
    }

    fn constructed(&self) {
        self.parent_constructed();
        let obj = self.obj();
        obj.set_live(true);
        obj.set_format(gst::Format::Time);
        obj.set_do_timestamp(true);
    }
}

impl GstObjectImpl for KelpieXSrc {}

impl ElementImpl for KelpieXSrc {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static META: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Kelpie X11 damage source",
                "Source/Video",
                "Captures an X11 screen with XShm, only where XDamage reports changes, as I420",
                "Kelpie developers",
            )
        });
        Some(&*META)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
            let caps = gst::Caps::builder("video/x-raw")
                .field("format", "I420")
                .field("width", gst::IntRange::new(2, 32766))
                .field("height", gst::IntRange::new(2, 32766))
                .field("framerate", gst::FractionRange::new(gst::Fraction::new(1, 1), gst::Fraction::new(240, 1)))
                .build();
            vec![gst::PadTemplate::new("src", gst::PadDirection::Src, gst::PadPresence::Always, &caps)
                .expect("template")]
        });
        TEMPLATES.as_ref()
    }
}

impl KelpieXSrc {
    fn request_refresh(&self) {
        self.refresh.store(true, Ordering::SeqCst);
        poke(self.wake_tx.as_raw_fd());
    }

    fn size_caps(width: u32, height: u32) -> gst::Caps {
        gst::Caps::builder("video/x-raw")
            .field("format", "I420")
            // Encoders want even sizes; an odd screen loses its last column or row.
            .field("width", (width & !1) as i32)
            .field("height", (height & !1) as i32)
            .field("framerate", gst::FractionRange::new(gst::Fraction::new(1, 1), gst::Fraction::new(240, 1)))
            .field("pixel-aspect-ratio", gst::Fraction::new(1, 1))
            .field("interlace-mode", "progressive")
            .field("colorimetry", "bt709")
            .build()
    }

    fn error_for(&self, e: &CaptureError) -> gst::ErrorMessage {
        gst::error_msg!(gst::ResourceError::Read, ["{}", e])
    }
}

impl BaseSrcImpl for KelpieXSrc {
    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let display = self.settings.lock().unwrap_or_else(|e| e.into_inner()).display.clone();
        let capture =
            XCapture::open(display.as_deref()).map_err(|e| gst::error_msg!(gst::ResourceError::OpenRead, ["{}", e]))?;
        gst::info!(CAT, imp = self, "capturing {}x{} on {:?}", capture.width, capture.height, display);
        let layout = I420Layout::new(capture.width & !1, capture.height & !1);
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = Some(Running {
            picture: vec![0; layout.size],
            layout,
            capture,
            frame_interval: Duration::from_secs(1) / DEFAULT_FPS as u32,
            last_output: None,
            dirty: true,
            need_full: true,
            damaged_at: None,
            pacer: Pacer::new(Instant::now()),
            pool: None,
            frames: 0,
            drawn_cursor: None,
            cursor_moved: None,
            size_changed: false,
            refine_left: 0,
            stamp: None,
        });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        if let Some(r) = self.state.lock().unwrap_or_else(|e| e.into_inner()).take() {
            if let Some(pool) = r.pool {
                let _ = pool.set_active(false);
            }
            gst::info!(CAT, imp = self, "stopped after {} frames", r.frames);
        }
        Ok(())
    }

    fn is_seekable(&self) -> bool {
        false
    }

    fn caps(&self, filter: Option<&gst::Caps>) -> Option<gst::Caps> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let caps = match state.as_ref() {
            Some(r) => Self::size_caps(r.capture.width, r.capture.height),
            None => self.obj().src_pad().pad_template_caps(),
        };
        Some(match filter {
            Some(f) => f.intersect_with_mode(&caps, gst::CapsIntersectMode::First),
            None => caps,
        })
    }

    fn fixate(&self, mut caps: gst::Caps) -> gst::Caps {
        caps.truncate();
        if let Some(s) = caps.make_mut().structure_mut(0) {
            s.fixate_field_nearest_fraction("framerate", gst::Fraction::new(DEFAULT_FPS, 1));
        }
        self.parent_fixate(caps)
    }

    fn set_caps(&self, caps: &gst::Caps) -> Result<(), gst::LoggableError> {
        let info = gst_video::VideoInfo::from_caps(caps).map_err(|_| gst::loggable_error!(CAT, "bad caps {caps}"))?;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let r = state.as_mut().ok_or_else(|| gst::loggable_error!(CAT, "caps before start"))?;
        let fps = info.fps();
        if fps.numer() > 0 {
            r.frame_interval = Duration::from_nanos(1_000_000_000 * fps.denom() as u64 / fps.numer() as u64);
        }
        r.layout = I420Layout::new(info.width(), info.height());
        if info.size() != r.layout.size {
            return Err(gst::loggable_error!(CAT, "unexpected I420 size {} vs {}", info.size(), r.layout.size));
        }
        r.picture = vec![0; r.layout.size];
        r.dirty = true;
        r.need_full = true;
        if let Some(old) = r.pool.take() {
            let _ = old.set_active(false);
        }
        let pool = gst_video::VideoBufferPool::new();
        let mut config = pool.config();
        config.set_params(Some(caps), r.layout.size as u32, 2, 0);
        pool.set_config(config).map_err(|_| gst::loggable_error!(CAT, "pool config"))?;
        pool.set_active(true).map_err(|_| gst::loggable_error!(CAT, "pool activation"))?;
        r.pool = Some(pool.upcast());
        gst::debug!(CAT, imp = self, "negotiated {caps}");
        Ok(())
    }

    fn unlock(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(true, Ordering::SeqCst);
        poke(self.wake_tx.as_raw_fd());
        Ok(())
    }

    fn unlock_stop(&self) -> Result<(), gst::ErrorMessage> {
        self.flushing.store(false, Ordering::SeqCst);
        drain(self.wake_rx.as_raw_fd());
        Ok(())
    }
}

/// What `create` should do next.
enum Step {
    /// `refine_after`: refinement frames owed once a changed picture has been sent.
    Produce {
        damaged: bool,
        refine_after: u32,
    },
    Wait(Duration),
    Renegotiate,
}

impl PushSrcImpl for KelpieXSrc {
    fn create(&self, _buffer: Option<&mut gst::BufferRef>) -> Result<CreateSuccess, gst::FlowError> {
        loop {
            if self.flushing.load(Ordering::SeqCst) {
                return Err(gst::FlowError::Flushing);
            }
            // Read every turn: property changes (show-pointer, max-framerate) wake this loop.
            let (idle, show_pointer, min_interval, still_refresh) = {
                let s = self.settings.lock().unwrap_or_else(|e| e.into_inner());
                let min = if s.max_framerate > 0 { Duration::from_secs(1) / s.max_framerate } else { Duration::ZERO };
                (Duration::from_millis(u64::from(s.idle_interval_ms)), s.show_pointer, min, s.still_refresh)
            };

            let step = {
                let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
                let r = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
                let changes = r.capture.poll_changes().map_err(|e| {
                    self.post_error_message(self.error_for(&e));
                    gst::FlowError::Error
                })?;
                if changes.damaged && !r.dirty {
                    r.damaged_at = Some(Instant::now());
                }
                r.dirty |= changes.damaged;
                // The pointer moves without damaging anything: look where it is now.
                if show_pointer || r.drawn_cursor.is_some() {
                    let now_cursor = if show_pointer {
                        Some(r.capture.cursor().map_err(|e| {
                            self.post_error_message(self.error_for(&e));
                            gst::FlowError::Error
                        })?)
                    } else {
                        None
                    };
                    let changed = match (&r.drawn_cursor, &now_cursor) {
                        (Some(a), Some(b)) => a.looks_different(b),
                        (None, None) => false,
                        _ => true,
                    };
                    if changed {
                        if !r.dirty {
                            r.damaged_at = Some(Instant::now());
                        }
                        r.dirty = true;
                    }
                    r.cursor_moved = now_cursor;
                }
                if changes.resized || std::mem::take(&mut r.size_changed) {
                    Step::Renegotiate
                } else {
                    let now = Instant::now();
                    let refresh = self.refresh.load(Ordering::SeqCst);
                    let frame_interval = r.frame_interval.max(min_interval);
                    let damaged_at = if r.dirty { r.damaged_at } else { None };
                    let due = r.pacer.due(now, frame_interval, damaged_at);
                    let idle_due = r.last_output.map_or(now, |t| t + idle);
                    // Still for two frame intervals: the first refinement frame; then one
                    // per frame interval until they are spent.
                    let refine_gap = if r.refine_left == still_refresh { 2 * frame_interval } else { frame_interval };
                    let refine_due = r.last_output.map_or(now, |t| t + refine_gap);
                    let refine = r.refine_left > 0 && !r.dirty;
                    let wanted = r.dirty || r.need_full || refresh || (!idle.is_zero() && now >= idle_due);
                    if wanted && now >= due {
                        r.pacer.produced(now, frame_interval);
                        Step::Produce { damaged: r.dirty, refine_after: still_refresh }
                    } else if wanted {
                        Step::Wait(due - now)
                    } else if refine && now >= refine_due.max(due) {
                        r.pacer.produced(now, frame_interval);
                        Step::Produce { damaged: false, refine_after: still_refresh }
                    } else if refine {
                        Step::Wait(refine_due.max(due) - now)
                    } else if show_pointer {
                        // No event tells us the pointer moved: look again next frame.
                        Step::Wait(frame_interval)
                    } else if idle.is_zero() {
                        Step::Wait(Duration::from_millis(500))
                    } else {
                        Step::Wait(idle_due.saturating_duration_since(now))
                    }
                }
            };
            match step {
                Step::Renegotiate => {
                    gst::info!(CAT, imp = self, "screen size changed: renegotiating");
                    if !self.obj().negotiate() {
                        gst::element_imp_error!(
                            self,
                            gst::CoreError::Negotiation,
                            ["cannot renegotiate after a resize"]
                        );
                        return Err(gst::FlowError::NotNegotiated);
                    }
                }
                Step::Wait(d) => {
                    let fd = self.state.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|r| r.capture.fd());
                    let Some(_) = fd else { return Err(gst::FlowError::Flushing) };
                    self.wait(d);
                }
                Step::Produce { damaged, refine_after } => {
                    return self.produce(damaged, refine_after).map(CreateSuccess::NewBuffer)
                }
            }
        }
    }
}

impl KelpieXSrc {
    fn wait(&self, timeout: Duration) {
        let guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(r) = guard.as_ref() else { return };
        let x_fd = r.capture.fd();
        drop(guard);
        let mut fds = [
            libc::pollfd { fd: x_fd, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: self.wake_rx.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        let ms = timeout.as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: a valid array of two pollfds.
        unsafe {
            libc::poll(fds.as_mut_ptr(), 2, ms);
        }
        if fds[1].revents != 0 && !self.flushing.load(Ordering::SeqCst) {
            drain(self.wake_rx.as_raw_fd());
        }
    }

    fn produce(&self, damaged: bool, refine_after: u32) -> Result<gst::Buffer, gst::FlowError> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let r = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        self.refresh.store(false, Ordering::SeqCst);
        if damaged || r.need_full {
            r.refine_left = refine_after;
        } else {
            r.refine_left = r.refine_left.saturating_sub(1);
        }
        r.stamp = None;
        if damaged || r.need_full {
            r.dirty = false;
            let damaged_for = r.damaged_at.take().filter(|_| damaged).map(|t| t.elapsed());
            let grab_ns = mono_ns();
            let fail = |e: CaptureError| {
                self.post_error_message(self.error_for(&e));
                gst::FlowError::Error
            };
            // Damage is taken (cleared) before grabbing, so a change during the grab is
            // reported again rather than lost.
            let damage = r.capture.take_damage().map_err(fail)?;
            let mut rects = if r.need_full {
                r.need_full = false;
                vec![Rect { x: 0, y: 0, w: r.capture.width, h: r.capture.height }]
            } else {
                damage
            };
            // The old cursor's area comes back clean from X; the new one is drawn over a
            // clean grab too (damage under it would otherwise erase it).
            let (sw, sh) = (r.capture.width, r.capture.height);
            let cursor = r.cursor_moved.take();
            rects.extend(r.drawn_cursor.take().and_then(|c| c.rect(sw, sh)));
            rects.extend(cursor.as_ref().and_then(|c| c.rect(sw, sh)));
            let grabbed = match r.capture.grab(&rects) {
                Ok(g) => g,
                Err(CaptureError::ScreenChanged) => {
                    // The screen shrank between its RandR event and this grab. Send the
                    // last picture once more, renegotiate on the next turn, grab it all.
                    gst::debug!(CAT, imp = self, "screen shrank during a grab");
                    r.size_changed |= r.capture.sync_size().map_err(fail)?;
                    r.dirty = true;
                    r.need_full = true;
                    r.drawn_cursor = None;
                    return self.output(r);
                }
                Err(e) => return Err(fail(e)),
            };
            r.stamp = damaged_for.map(|d| CaptureStamp {
                damage_ns: grab_ns.saturating_sub(d.as_nanos() as u64),
                grab_ns,
                grabbed_ns: mono_ns(),
            });
            let (w, h) = (r.layout.width, r.layout.height);
            let stride = r.capture.width as usize * 4;
            if let Some(c) = &cursor {
                c.draw(r.capture.frame_mut(), stride, sw, sh);
            }
            r.drawn_cursor = cursor;
            for rect in grabbed {
                let even = rect.to_even(w, h);
                if even.area() > 0 {
                    bgrx_to_i420(r.capture.frame(), stride, &mut r.picture, &r.layout, even);
                }
            }
        }
        self.output(r)
    }

    /// Copies the current picture into a pooled buffer.
    fn output(&self, r: &mut Running) -> Result<gst::Buffer, gst::FlowError> {
        let pool = r.pool.as_ref().ok_or(gst::FlowError::NotNegotiated)?;
        let mut buffer = pool.acquire_buffer(None)?;
        {
            let buf = buffer.get_mut().ok_or(gst::FlowError::Error)?;
            let mut map = buf.map_writable().map_err(|_| gst::FlowError::Error)?;
            map.as_mut_slice()[..r.picture.len()].copy_from_slice(&r.picture);
        }
        if let Some(buf) = buffer.get_mut() {
            buf.set_duration(gst::ClockTime::from_nseconds(r.frame_interval.as_nanos() as u64));
            if let Some(stamp) = r.stamp.take() {
                stamp.attach(buf);
            }
        }
        r.frames += 1;
        r.last_output = Some(Instant::now());
        Ok(buffer)
    }
}

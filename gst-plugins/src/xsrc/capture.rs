//! The X side of the capture element: XShm copies of what XDamage says changed.
//!
//! One shared-memory segment holds the whole screen (the persistent BGRx frame) plus a
//! scratch area of the same size: a full-screen grab lands straight in the frame, a
//! partial one lands in the scratch area and its rows are copied into place.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use x11rb::connection::{Connection, RequestConnection};
use x11rb::protocol::damage::{self, ConnectionExt as _};
use x11rb::protocol::randr::{self, ConnectionExt as _};
use x11rb::protocol::shm::{self, ConnectionExt as _};
use x11rb::protocol::xfixes::{self, ConnectionExt as _};
use x11rb::protocol::xproto::{self, ConnectionExt as _, ImageFormat};
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;

use crate::convert::Rect;
use crate::sprite::Sprite;

/// Above this many damage rectangles, one bounding box is cheaper than many round trips.
const MAX_RECTS: usize = 16;
/// Above this fraction of the screen, grab the whole screen (one copy instead of two).
const FULL_GRAB_FRACTION: f64 = 0.5;

#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot connect to X display {0}: {1}")]
    Connect(String, String),
    #[error("X display lacks the {0} extension, which the damage capture needs")]
    MissingExtension(&'static str),
    #[error("unsupported X pixel format (need 24/32-bit little-endian TrueColor, got depth {0}, {1} bpp)")]
    PixelFormat(u8, u8),
    #[error("shared memory: {0}")]
    Shm(String),
    #[error("X connection lost: {0}")]
    Lost(String),
    /// A grab reached outside the screen: it shrank (RandR) since we last looked.
    #[error("the screen changed size during a grab")]
    ScreenChanged,
}

fn lost<E: std::fmt::Display>(e: E) -> CaptureError {
    CaptureError::Lost(e.to_string())
}

/// A System V shared-memory segment attached to us and to the X server.
struct Segment {
    id: shm::Seg,
    addr: *mut u8,
    size: usize,
}

// The segment is only touched from the streaming thread that owns the capture.
unsafe impl Send for Segment {}

impl Segment {
    fn new(conn: &RustConnection, size: usize) -> Result<Self, CaptureError> {
        // SAFETY: plain SysV shm calls; the pointer is checked and only used within `size`.
        unsafe {
            let shmid = libc::shmget(libc::IPC_PRIVATE, size, libc::IPC_CREAT | 0o600);
            if shmid < 0 {
                return Err(CaptureError::Shm(format!("shmget: {}", std::io::Error::last_os_error())));
            }
            let addr = libc::shmat(shmid, std::ptr::null(), 0);
            if addr as isize == -1 {
                let e = std::io::Error::last_os_error();
                libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut());
                return Err(CaptureError::Shm(format!("shmat: {e}")));
            }
            let id = conn.generate_id().map_err(lost)?;
            let attached = conn.shm_attach(id, shmid as u32, false).map_err(lost).and_then(|c| c.check().map_err(lost));
            // Marked for removal now: it disappears once both sides detach, even on a crash.
            libc::shmctl(shmid, libc::IPC_RMID, std::ptr::null_mut());
            if let Err(e) = attached {
                libc::shmdt(addr);
                return Err(CaptureError::Shm(format!(
                    "the X server could not attach the segment ({e}); is it remote?"
                )));
            }
            Ok(Self { id, addr: addr.cast(), size })
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: addr points to `size` bytes mapped for our lifetime.
        unsafe { std::slice::from_raw_parts(self.addr, self.size) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above; &mut self guarantees exclusive access on our side.
        unsafe { std::slice::from_raw_parts_mut(self.addr, self.size) }
    }

    fn release(&mut self, conn: &RustConnection) {
        let _ = conn.shm_detach(self.id);
        let _ = conn.flush();
        // SAFETY: addr came from shmat and is detached exactly once.
        unsafe {
            libc::shmdt(self.addr.cast());
        }
        self.addr = std::ptr::null_mut();
    }
}

/// What the X server reported since the last look.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Changes {
    pub damaged: bool,
    pub resized: bool,
}

pub struct XCapture {
    conn: RustConnection,
    root: xproto::Window,
    damage: damage::Damage,
    region: xfixes::Region,
    segment: Segment,
    pub width: u32,
    pub height: u32,
}

impl XCapture {
    pub fn open(display: Option<&str>) -> Result<Self, CaptureError> {
        let name = display.map(str::to_owned).or_else(|| std::env::var("DISPLAY").ok()).unwrap_or_default();
        let (conn, screen_num) =
            x11rb::connect(display).map_err(|e| CaptureError::Connect(name.clone(), e.to_string()))?;
        let screen = &conn.setup().roots[screen_num];
        let root = screen.root;
        let depth = screen.root_depth;
        let bpp = conn.setup().pixmap_formats.iter().find(|f| f.depth == depth).map_or(0, |f| f.bits_per_pixel);
        if depth != 24 || bpp != 32 || conn.setup().image_byte_order != xproto::ImageOrder::LSB_FIRST {
            return Err(CaptureError::PixelFormat(depth, bpp));
        }
        for (ext, name) in [
            (shm::X11_EXTENSION_NAME, "MIT-SHM"),
            (damage::X11_EXTENSION_NAME, "DAMAGE"),
            (xfixes::X11_EXTENSION_NAME, "XFIXES"),
        ] {
            if conn.extension_information(ext).map_err(lost)?.is_none() {
                return Err(CaptureError::MissingExtension(name));
            }
        }
        conn.xfixes_query_version(5, 0).map_err(lost)?.reply().map_err(lost)?;
        conn.damage_query_version(1, 1).map_err(lost)?.reply().map_err(lost)?;
        let damage = conn.generate_id().map_err(lost)?;
        conn.damage_create(damage, root, damage::ReportLevel::NON_EMPTY).map_err(lost)?;
        let region = conn.generate_id().map_err(lost)?;
        conn.xfixes_create_region(region, &[]).map_err(lost)?;
        if conn.extension_information(randr::X11_EXTENSION_NAME).map_err(lost)?.is_some() {
            conn.randr_select_input(root, randr::NotifyMask::SCREEN_CHANGE).map_err(lost)?;
        }
        // The root's geometry, not the connection setup's screen size: servers do not all
        // update the latter after a RandR resize (Xvfb keeps its start size there).
        let geo = conn.get_geometry(root).map_err(lost)?.reply().map_err(lost)?;
        let (width, height) = (u32::from(geo.width), u32::from(geo.height));
        let segment = Segment::new(&conn, 2 * frame_bytes(width, height))?;
        conn.flush().map_err(lost)?;
        Ok(Self { conn, root, damage, region, segment, width, height })
    }

    /// The X connection's socket, for waiting on events.
    pub fn fd(&self) -> RawFd {
        self.conn.stream().as_raw_fd()
    }

    /// The whole-screen BGRx frame (stride = width × 4).
    pub fn frame(&self) -> &[u8] {
        &self.segment.bytes()[..frame_bytes(self.width, self.height)]
    }

    /// The whole-screen BGRx frame, for drawing the cursor into it.
    pub fn frame_mut(&mut self) -> &mut [u8] {
        let n = frame_bytes(self.width, self.height);
        &mut self.segment.bytes_mut()[..n]
    }

    /// The cursor image and where the pointer is now (one round trip).
    pub fn cursor(&self) -> Result<Sprite, CaptureError> {
        let c = self.conn.xfixes_get_cursor_image().map_err(lost)?.reply().map_err(lost)?;
        Ok(Sprite {
            x: i32::from(c.x),
            y: i32::from(c.y),
            width: u32::from(c.width),
            height: u32::from(c.height),
            xhot: u32::from(c.xhot),
            yhot: u32::from(c.yhot),
            serial: c.cursor_serial,
            pixels: c.cursor_image,
        })
    }

    /// Drains pending X events.
    pub fn poll_changes(&mut self) -> Result<Changes, CaptureError> {
        let mut changes = Changes::default();
        while let Some(event) = self.conn.poll_for_event().map_err(lost)? {
            match event {
                Event::DamageNotify(_) => changes.damaged = true,
                Event::RandrScreenChangeNotify(_) => changes.resized = true,
                _ => {}
            }
        }
        if changes.resized {
            let geo = self.conn.get_geometry(self.root).map_err(lost)?.reply().map_err(lost)?;
            let (w, h) = (u32::from(geo.width), u32::from(geo.height));
            changes.resized = (w, h) != (self.width, self.height);
            if changes.resized {
                self.resize(w, h)?;
            }
        }
        Ok(changes)
    }

    fn resize(&mut self, width: u32, height: u32) -> Result<(), CaptureError> {
        let needed = 2 * frame_bytes(width, height);
        if needed > self.segment.size {
            let fresh = Segment::new(&self.conn, needed)?;
            let mut old = std::mem::replace(&mut self.segment, fresh);
            old.release(&self.conn);
        }
        self.width = width;
        self.height = height;
        Ok(())
    }

    /// Takes the damaged region (clearing it) as at most [`MAX_RECTS`] rectangles.
    pub fn take_damage(&mut self) -> Result<Vec<Rect>, CaptureError> {
        self.conn.damage_subtract(self.damage, x11rb::NONE, self.region).map_err(lost)?;
        let reply = self.conn.xfixes_fetch_region(self.region).map_err(lost)?.reply().map_err(lost)?;
        let clip = |r: &xproto::Rectangle| {
            let x = (r.x.max(0) as u32).min(self.width);
            let y = (r.y.max(0) as u32).min(self.height);
            let w = (u32::from(r.width)).min(self.width - x);
            let h = (u32::from(r.height)).min(self.height - y);
            Rect { x, y, w, h }
        };
        let mut rects: Vec<Rect> = reply.rectangles.iter().map(clip).filter(|r| r.area() > 0).collect();
        if rects.len() > MAX_RECTS {
            let all = rects.iter().copied().reduce(Rect::union);
            rects = all.into_iter().collect();
        }
        Ok(rects)
    }

    /// Copies `rects` of the screen into the frame; returns the rectangles to convert.
    pub fn grab(&mut self, rects: &[Rect]) -> Result<Vec<Rect>, CaptureError> {
        let screen = Rect { x: 0, y: 0, w: self.width, h: self.height };
        let area: u64 = rects.iter().map(Rect::area).sum();
        if area as f64 >= FULL_GRAB_FRACTION * screen.area() as f64 {
            self.get_image(screen, 0)?;
            return Ok(vec![screen]);
        }
        let stride = self.width as usize * 4;
        let scratch = frame_bytes(self.width, self.height);
        for r in rects {
            self.get_image(*r, scratch)?;
            let row_bytes = r.w as usize * 4;
            let bytes = self.segment.bytes_mut();
            let (frame, tmp) = bytes.split_at_mut(scratch);
            for row in 0..r.h as usize {
                let dst = (r.y as usize + row) * stride + r.x as usize * 4;
                frame[dst..dst + row_bytes].copy_from_slice(&tmp[row * row_bytes..][..row_bytes]);
            }
        }
        Ok(rects.to_vec())
    }

    fn get_image(&self, r: Rect, offset: usize) -> Result<(), CaptureError> {
        let reply = self
            .conn
            .shm_get_image(
                self.root,
                r.x as i16,
                r.y as i16,
                r.w as u16,
                r.h as u16,
                !0,
                ImageFormat::Z_PIXMAP.into(),
                self.segment.id,
                offset as u32,
            )
            .map_err(lost)?
            .reply();
        match reply {
            Ok(_) => Ok(()),
            Err(x11rb::errors::ReplyError::X11Error(e)) if e.error_kind == x11rb::protocol::ErrorKind::Match => {
                Err(CaptureError::ScreenChanged)
            }
            Err(e) => Err(lost(e)),
        }
    }

    /// Re-reads the screen size (after [`CaptureError::ScreenChanged`]); true if it changed.
    pub fn sync_size(&mut self) -> Result<bool, CaptureError> {
        let geo = self.conn.get_geometry(self.root).map_err(lost)?.reply().map_err(lost)?;
        let (w, h) = (u32::from(geo.width), u32::from(geo.height));
        if (w, h) == (self.width, self.height) {
            return Ok(false);
        }
        self.resize(w, h)?;
        Ok(true)
    }

    /// Waits until X has something for us, `wake` becomes readable, or `timeout` passes.
    /// Returns true if X is readable.
    pub fn wait(&self, wake: RawFd, timeout: Duration) -> bool {
        let mut fds = [
            libc::pollfd { fd: self.fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: wake, events: libc::POLLIN, revents: 0 },
        ];
        let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: fds is a valid array of two pollfd structs.
        unsafe {
            libc::poll(fds.as_mut_ptr(), 2, ms);
        }
        fds[0].revents != 0
    }
}

impl Drop for XCapture {
    fn drop(&mut self) {
        let _ = self.conn.damage_destroy(self.damage);
        let _ = self.conn.xfixes_destroy_region(self.region);
        self.segment.release(&self.conn);
    }
}

fn frame_bytes(width: u32, height: u32) -> usize {
    width as usize * height as usize * 4
}

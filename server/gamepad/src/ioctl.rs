//! Every joystick (`'j'`) and evdev (`'E'`) ioctl the preload library answers for a
//! virtual device, as the kernel's joydev and evdev drivers would: the same bytes, the
//! same return values (variable-length reads return the bytes copied), the same errors.
//!
//! State queries (`EVIOCGKEY`, the value in `EVIOCGABS`) describe the pad at rest:
//! the library has no state of its own, and Kelpie follows every open with the events
//! that bring the device from rest to its current state, so an app that queries first
//! and reads next ends up right. Requests of other types (a socket's `FIONREAD`) are
//! passed on to libc: the descriptor really is a socket.

use crate::layout::{self, AXES, BUTTONS, EV_ABS, EV_KEY, EV_SYN};
use crate::paths::{Device, Kind};

const IOC_WRITE: u32 = 1;
const IOC_READ: u32 = 2;

/// `_IOC(dir, type, nr, size)` of asm-generic/ioctl.h (x86-64 and arm64 alike).
pub const fn ioc(dir: u32, ty: u8, nr: u8, size: usize) -> u32 {
    (dir << 30) | ((size as u32 & 0x3fff) << 16) | ((ty as u32) << 8) | nr as u32
}
const fn ior(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_READ, ty, nr, size)
}
const fn iow(ty: u8, nr: u8, size: usize) -> u32 {
    ioc(IOC_WRITE, ty, nr, size)
}

/// `ABS_CNT` and the joydev button map's length (`KEY_MAX - BTN_MISC + 1`).
const ABS_CNT: usize = 0x40;
const BTNMAP_LEN: usize = 0x2ff - 0x100 + 1;
/// `struct js_corr`: eight coefficients, a precision and a type.
const JS_CORR_SIZE: usize = 36;

pub const JS_VERSION: u32 = 0x0002_0100;
pub const JSIOCGVERSION: u32 = ior(b'j', 0x01, 4);
pub const JSIOCGAXES: u32 = ior(b'j', 0x11, 1);
pub const JSIOCGBUTTONS: u32 = ior(b'j', 0x12, 1);
pub const fn jsiocgname(len: usize) -> u32 {
    ior(b'j', 0x13, len)
}
pub const JSIOCSCORR: u32 = iow(b'j', 0x21, JS_CORR_SIZE);
pub const JSIOCGCORR: u32 = ior(b'j', 0x22, JS_CORR_SIZE);
pub const JSIOCSAXMAP: u32 = iow(b'j', 0x31, ABS_CNT);
pub const JSIOCGAXMAP: u32 = ior(b'j', 0x32, ABS_CNT);
pub const JSIOCSBTNMAP: u32 = iow(b'j', 0x33, BTNMAP_LEN * 2);
pub const JSIOCGBTNMAP: u32 = ior(b'j', 0x34, BTNMAP_LEN * 2);

pub const EV_VERSION: i32 = 0x0001_0001;
pub const EVIOCGVERSION: u32 = ior(b'E', 0x01, 4);
pub const EVIOCGID: u32 = ior(b'E', 0x02, 8);
pub const EVIOCGREP: u32 = ior(b'E', 0x03, 8);
pub const EVIOCGKEYCODE: u32 = ior(b'E', 0x04, 8);
pub const fn eviocgname(len: usize) -> u32 {
    ior(b'E', 0x06, len)
}
pub const fn eviocgphys(len: usize) -> u32 {
    ior(b'E', 0x07, len)
}
pub const fn eviocguniq(len: usize) -> u32 {
    ior(b'E', 0x08, len)
}
pub const fn eviocgprop(len: usize) -> u32 {
    ior(b'E', 0x09, len)
}
pub const fn eviocgkey(len: usize) -> u32 {
    ior(b'E', 0x18, len)
}
pub const fn eviocgbit(ev: u8, len: usize) -> u32 {
    ior(b'E', 0x20 + ev, len)
}
pub const fn eviocgabs(abs: u8) -> u32 {
    ior(b'E', 0x40 + abs, 24)
}
pub const fn eviocsabs(abs: u8) -> u32 {
    iow(b'E', 0xc0 + abs, 24)
}
pub const EVIOCSFF: u32 = iow(b'E', 0x80, 48);
pub const EVIOCRMFF: u32 = iow(b'E', 0x81, 4);
pub const EVIOCGEFFECTS: u32 = ior(b'E', 0x84, 4);
pub const EVIOCGRAB: u32 = iow(b'E', 0x90, 4);
pub const EVIOCREVOKE: u32 = iow(b'E', 0x91, 4);
pub const EVIOCSCLOCKID: u32 = iow(b'E', 0xa0, 4);

/// What the library does with one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// Copy exactly these bytes to the argument and return `ret`.
    Read { bytes: Vec<u8>, ret: i32 },
    /// Nothing to copy: return this.
    Done(i32),
    /// Fail with this errno.
    Fail(i32),
    /// Not a device request: let libc do it.
    Pass,
}

struct Parts {
    dir: u32,
    ty: u8,
    nr: u8,
    size: usize,
}

fn parts(request: u32) -> Parts {
    Parts { dir: request >> 30, ty: (request >> 8) as u8, nr: request as u8, size: ((request >> 16) & 0x3fff) as usize }
}

/// The kernel's reply to a read of `size` bytes from a buffer of `bytes`: as much as
/// fits, and the count copied as the return value.
fn read_cut(mut bytes: Vec<u8>, size: usize) -> Answer {
    bytes.truncate(size);
    let ret = bytes.len() as i32;
    Answer::Read { bytes, ret }
}

/// A fixed-size read: all of it, returning 0.
fn read_fixed(bytes: Vec<u8>) -> Answer {
    Answer::Read { bytes, ret: 0 }
}

fn c_string(s: &str) -> Vec<u8> {
    let mut v = s.as_bytes().to_vec();
    v.push(0);
    v
}

/// A bitmap of `max_bit` bits in whole longs, as the kernel's `bits_to_user` copies it.
fn bitmap(max_bit: usize, set: impl IntoIterator<Item = u16>) -> Vec<u8> {
    let longs = max_bit.div_ceil(64);
    let mut v = vec![0u8; longs * 8];
    for bit in set {
        let bit = usize::from(bit);
        if bit < v.len() * 8 {
            // Bytes in the machine's order of a long: bit n of long k is byte k*8 + n/8 on
            // little-endian; on big-endian the bytes of each long are reversed.
            let (long, within) = (bit / 64, bit % 64);
            let byte = if cfg!(target_endian = "little") { within / 8 } else { 7 - within / 8 };
            v[long * 8 + byte] |= 1 << (within % 8);
        }
    }
    v
}

const KEY_MAX: usize = 0x2ff;
const EV_MAX: usize = 0x1f;

/// The answer to `request` on `device`.
pub fn answer(device: Device, request: u32) -> Answer {
    let p = parts(request);
    let answer = match (device.kind, p.ty) {
        (Kind::Joystick, b'j') => joystick(device.pad, request, &p),
        (Kind::Evdev, b'E') => evdev(device.pad, request, &p),
        // The other driver's requests: neither joydev nor evdev knows them.
        (_, b'j' | b'E') => Answer::Fail(libc::EINVAL),
        _ => Answer::Pass,
    };
    // The caller's buffer is the request's size: never answer more (JSIOCGCORR, one
    // js_corr per axis whatever the size says, is joydev's own contract). Found by the
    // fuzzer: JSIOCGVERSION with a 1-byte size once got 4 bytes.
    match answer {
        Answer::Read { ref bytes, .. } if bytes.len() > p.size && request != JSIOCGCORR => Answer::Fail(libc::EINVAL),
        other => other,
    }
}

fn joystick(pad: usize, request: u32, p: &Parts) -> Answer {
    let read = p.dir & IOC_READ != 0;
    // Fixed-size requests match whole, as joydev matches them: another size is another
    // request, which joydev refuses.
    match request {
        JSIOCGVERSION => return read_fixed(JS_VERSION.to_ne_bytes().to_vec()),
        JSIOCGAXES => return read_fixed(vec![AXES.len() as u8]),
        JSIOCGBUTTONS => return read_fixed(vec![BUTTONS.len() as u8]),
        // Kelpie already sends joydev-scaled values: no correction on top (JS_CORR_NONE),
        // one js_corr per axis as joydev copies them.
        JSIOCGCORR => return read_fixed(vec![0u8; JS_CORR_SIZE * AXES.len()]),
        _ => {}
    }
    match (p.nr, read) {
        (0x13, true) => read_cut(c_string(&layout::name(pad)), p.size),
        (0x32, true) => {
            let mut map = vec![0u8; ABS_CNT];
            for (i, a) in AXES.iter().enumerate() {
                map[i] = a.code as u8;
            }
            read_cut(map, p.size)
        }
        (0x34, true) => {
            let mut map = vec![0u8; BTNMAP_LEN * 2];
            for (i, b) in BUTTONS.iter().enumerate() {
                map[i * 2..i * 2 + 2].copy_from_slice(&b.to_ne_bytes());
            }
            read_cut(map, p.size)
        }
        // Remapping and calibration are not offered: the layout is fixed.
        (0x21 | 0x31 | 0x33, false) => Answer::Fail(libc::EINVAL),
        _ => Answer::Fail(libc::EINVAL),
    }
}

fn evdev(pad: usize, request: u32, p: &Parts) -> Answer {
    let read = p.dir & IOC_READ != 0;
    let write = p.dir & IOC_WRITE != 0;
    match request {
        EVIOCGVERSION => return read_fixed(EV_VERSION.to_ne_bytes().to_vec()),
        EVIOCGID => {
            let id = [layout::BUS_USB, layout::VENDOR, layout::PRODUCT, layout::VERSION];
            return read_fixed(id.iter().flat_map(|v| v.to_ne_bytes()).collect());
        }
        EVIOCGEFFECTS => return read_fixed(0i32.to_ne_bytes().to_vec()),
        _ => {}
    }
    match p.nr {
        // No autorepeat (EV_REP) and no keymap: the kernel's answers for such a device.
        0x03 => Answer::Fail(libc::ENOSYS),
        0x04 => Answer::Fail(libc::EINVAL),
        0x06 if read => read_cut(c_string(&layout::name(pad)), p.size),
        0x07 if read => read_cut(c_string(&layout::phys(pad)), p.size),
        0x08 => Answer::Fail(libc::ENOENT),
        // No input properties; no keys, LEDs, sounds or switches held (at rest).
        0x09 if read => read_cut(bitmap(0x1f, []), p.size),
        0x18 if read => read_cut(bitmap(KEY_MAX, []), p.size),
        0x19..=0x1b if read => read_cut(bitmap(0x10, []), p.size),
        0x20..=0x3f if read => match eviocgbit_bytes(p.nr - 0x20) {
            Some(bits) => read_cut(bits, p.size),
            None => Answer::Fail(libc::EINVAL),
        },
        0x40..=0x7f if read => {
            let code = u16::from(p.nr - 0x40);
            let info = match AXES.iter().find(|a| a.code == code) {
                Some(a) => [a.rest(), a.min, a.max, a.fuzz, a.flat, 0],
                None => [0; 6],
            };
            let mut bytes: Vec<u8> = info.iter().flat_map(|v| v.to_ne_bytes()).collect();
            bytes.truncate(p.size);
            read_fixed(bytes)
        }
        // Setting an axis's range is accepted and has no effect: the layout is fixed.
        0xc0..=0xff if write => Answer::Done(0),
        // No force feedback.
        0x80 | 0x81 => Answer::Fail(libc::ENOSYS),
        // Grabbing, revoking and the event clock: accepted (nobody else reads this socket;
        // timestamps stay CLOCK_REALTIME, which is also the kernel's default).
        0x90 | 0x91 | 0xa0 if write => Answer::Done(0),
        _ => Answer::Fail(libc::EINVAL),
    }
}

/// `EVIOCGBIT(ev, …)`: which event types, and which codes of each, the device has.
fn eviocgbit_bytes(ev: u8) -> Option<Vec<u8>> {
    const EV_REL: u8 = 0x02;
    const EV_MSC: u8 = 0x04;
    const EV_SW: u8 = 0x05;
    const EV_LED: u8 = 0x11;
    const EV_SND: u8 = 0x12;
    const EV_FF: u8 = 0x15;
    Some(match ev {
        0 => bitmap(EV_MAX, [EV_SYN, EV_KEY, EV_ABS]),
        1 => bitmap(KEY_MAX, BUTTONS),
        3 => bitmap(0x3f, AXES.map(|a| a.code)),
        EV_REL | EV_LED => bitmap(0x0f, []),
        EV_MSC | EV_SND => bitmap(0x07, []),
        EV_SW => bitmap(0x10, []),
        EV_FF => bitmap(0x7f, []),
        _ => return None,
    })
}

#[cfg(test)]
#[path = "ioctl_tests.rs"]
mod tests;

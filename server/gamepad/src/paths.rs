//! The virtual devices' paths and what `stat` says of them, and where Kelpie's socket is.

use std::path::{Path, PathBuf};

use crate::MAX_PADS;

/// The environment variable naming Kelpie's gamepad socket (set in Kelpie's own session).
pub const SOCKET_ENV: &str = "KELPIE_GAMEPAD_SOCKET";
/// evdev devices are numbered from here, clear of the kernel's own `event0`…, so a
/// preloaded app on a machine with real input devices still sees those too.
pub const FIRST_EVENT: usize = 1000;
/// The Linux input major number (joydev and evdev minors both live under it).
pub const INPUT_MAJOR: u32 = 13;

/// Which kernel API a device speaks.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `/dev/input/jsN`: linux/joystick.h, 8-byte `js_event`s.
    Joystick,
    /// `/dev/input/eventN`: linux/input.h, 24-byte `input_event`s.
    Evdev,
}

/// One virtual device: a kind and a pad slot (0..MAX_PADS).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Device {
    pub kind: Kind,
    pub pad: usize,
}

impl Device {
    /// The device a path names, if it is one of ours.
    pub fn from_path(path: &[u8]) -> Option<Device> {
        let rest = path.strip_prefix(b"/dev/input/")?;
        let (kind, digits, first) = if let Some(d) = rest.strip_prefix(b"js") {
            (Kind::Joystick, d, 0)
        } else if let Some(d) = rest.strip_prefix(b"event") {
            (Kind::Evdev, d, FIRST_EVENT)
        } else {
            return None;
        };
        if digits.is_empty()
            || digits.len() > 5
            || !digits.iter().all(u8::is_ascii_digit)
            || digits[0] == b'0' && digits.len() > 1
        {
            return None;
        }
        let n: usize = std::str::from_utf8(digits).ok()?.parse().ok()?;
        let pad = n.checked_sub(first)?;
        (pad < MAX_PADS).then_some(Device { kind, pad })
    }

    pub fn path(self) -> String {
        match self.kind {
            Kind::Joystick => format!("/dev/input/js{}", self.pad),
            Kind::Evdev => format!("/dev/input/event{}", FIRST_EVENT + self.pad),
        }
    }

    /// The minor number `stat` reports: joydev's 0… and evdev's 64 + N, as the kernel
    /// numbers them, so an app that tells devices apart by `st_rdev` sees distinct ones.
    pub fn minor(self) -> u32 {
        match self.kind {
            Kind::Joystick => self.pad as u32,
            Kind::Evdev => 64 + (FIRST_EVENT + self.pad) as u32,
        }
    }

    /// Every device of every slot, for listings and the launcher's `SDL_JOYSTICK_DEVICE`.
    pub fn all(kind: Kind) -> impl Iterator<Item = Device> {
        (0..MAX_PADS).map(move |pad| Device { kind, pad })
    }
}

/// Where Kelpie listens when not told (`--gamepad-socket`) and where the launcher and
/// the preload library look when `KELPIE_GAMEPAD_SOCKET` is not set: per user and per
/// display, in `$XDG_RUNTIME_DIR/kelpie/` (private by design) or else `/tmp/kelpie-UID/`
/// (which Kelpie creates 0700 and refuses if anyone else owns it).
pub fn default_socket(runtime_dir: Option<&Path>, uid: u32, display: Option<&str>) -> PathBuf {
    let dir = match runtime_dir {
        Some(d) if d.is_absolute() => d.join("kelpie"),
        _ => PathBuf::from(format!("/tmp/kelpie-{uid}")),
    };
    dir.join(format!("gamepad-{}.sock", display_tag(display.unwrap_or(":0"))))
}

/// `:1`, `:1.0` and `unix:1` are display 1; other hosts keep their name, made file-safe.
fn display_tag(display: &str) -> String {
    let display = display.strip_prefix("unix").unwrap_or(display);
    let (host, number) = display.rsplit_once(':').unwrap_or(("", display));
    let number = number.split('.').next().unwrap_or(number);
    let tag = if host.is_empty() { number.to_string() } else { format!("{host}_{number}") };
    tag.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '.' { c } else { '_' }).collect()
}

/// The socket the environment names, else the default for this user and display.
pub fn socket_from_env() -> PathBuf {
    if let Some(p) = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    default_socket_here(std::env::var("DISPLAY").ok().as_deref())
}

/// [`default_socket`] for this process's user and `$XDG_RUNTIME_DIR`: what Kelpie binds
/// for `display` and what the launcher and library compute from `DISPLAY`.
pub fn default_socket_here(display: Option<&str>) -> PathBuf {
    let runtime = std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from);
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() };
    default_socket(runtime.as_deref(), uid, display)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_paths_and_only_ours_are_devices() {
        assert_eq!(Device::from_path(b"/dev/input/js0"), Some(Device { kind: Kind::Joystick, pad: 0 }));
        assert_eq!(Device::from_path(b"/dev/input/js3"), Some(Device { kind: Kind::Joystick, pad: 3 }));
        assert_eq!(Device::from_path(b"/dev/input/event1002"), Some(Device { kind: Kind::Evdev, pad: 2 }));
        for other in [
            &b"/dev/input/js4"[..],
            b"/dev/input/js",
            b"/dev/input/js01",
            b"/dev/input/jsx",
            b"/dev/input/event0",
            b"/dev/input/event1004",
            b"/dev/input/event99999999999999",
            b"/dev/input/mice",
            b"/dev/js0",
            b"dev/input/js0",
            b"/dev/input/js0/",
        ] {
            assert_eq!(Device::from_path(other), None, "{}", String::from_utf8_lossy(other));
        }
        for kind in [Kind::Joystick, Kind::Evdev] {
            for d in Device::all(kind) {
                assert_eq!(Device::from_path(d.path().as_bytes()), Some(d));
            }
        }
    }

    #[test]
    fn minors_follow_the_kernel_and_differ() {
        let js: Vec<u32> = Device::all(Kind::Joystick).map(Device::minor).collect();
        let ev: Vec<u32> = Device::all(Kind::Evdev).map(Device::minor).collect();
        assert_eq!(js, [0, 1, 2, 3]);
        assert_eq!(ev, [1064, 1065, 1066, 1067]);
    }

    #[test]
    fn the_default_socket_is_per_user_and_display() {
        let run = Path::new("/run/user/1000");
        assert_eq!(default_socket(Some(run), 1000, Some(":1")), Path::new("/run/user/1000/kelpie/gamepad-1.sock"));
        assert_eq!(default_socket(Some(run), 1000, Some(":1.0")), Path::new("/run/user/1000/kelpie/gamepad-1.sock"));
        assert_eq!(default_socket(None, 1000, Some("unix:7")), Path::new("/tmp/kelpie-1000/gamepad-7.sock"));
        assert_eq!(default_socket(None, 5, Some("host/x:2")), Path::new("/tmp/kelpie-5/gamepad-host_x_2.sock"));
        assert_eq!(default_socket(Some(Path::new("relative")), 5, None), Path::new("/tmp/kelpie-5/gamepad-0.sock"));
    }
}

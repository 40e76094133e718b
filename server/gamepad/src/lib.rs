//! Kelpie's virtual gamepads, shared by the server and the preload library.
//!
//! A browser's pads reach desktop apps without `/dev/uinput`, device nodes or privileges:
//! apps started with `kelpie-gamepad APP` have `libkelpie_gamepad_preload.so` preloaded,
//! which answers `open("/dev/input/js0")` (and the evdev `event1000`…) with a Unix socket
//! connected to Kelpie and answers the device's ioctls itself. Kelpie writes ready-made
//! kernel events (`struct js_event`, `struct input_event`) into that socket, so `read`,
//! `poll`, `select` and `epoll` are the kernel's own and need no interposing.
//!
//! Where to start:
//!
//! | module | what it is |
//! |---|---|
//! | [`layout`] | the one virtual pad (Xbox 360 layout) and its evdev/joystick numbering |
//! | [`state`] | a browser pad's state mapped onto that layout, and what changed |
//! | [`wire`] | the kernel event structs, byte for byte |
//! | [`ioctl`] | every joystick and evdev ioctl the preload library answers |
//! | [`hello`] | the first bytes a client sends on Kelpie's socket |
//! | [`paths`] | device paths, their fake `stat`, and where the socket lives |
//! | [`elf`] | whether a program can be preloaded at all (static binaries cannot) |

pub mod elf;
pub mod hello;
pub mod ioctl;
pub mod layout;
pub mod paths;
pub mod state;
pub mod wire;

/// Pads a desktop offers (the browser Gamepad API reports at most four on most systems).
pub const MAX_PADS: usize = 4;

//! `kelpie-gamepad APP [ARGS…]`: runs APP with Kelpie's virtual gamepads.
//!
//! It preloads `libkelpie_gamepad_preload.so`, points it (and SDL2) at the devices, says
//! so on stderr, and replaces itself with APP. Where that cannot work it says why: a
//! statically linked APP ignores `LD_PRELOAD` (also reported to Kelpie, which tells the
//! participant in control), and a Kelpie that cannot be reached has no pads to give.

use std::ffi::OsString;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use clap::Parser;
use kelpie_gamepad::elf::{self, Linkage};
use kelpie_gamepad::hello;
use kelpie_gamepad::paths::{self, Device, Kind};

const LIBRARY: &str = "libkelpie_gamepad_preload.so";

/// Run a program with Kelpie's virtual gamepads.
///
/// The program sees the pads of the browser tab holding control as /dev/input/js0…js3
/// (the Linux joystick API) and /dev/input/event1000…event1003 (evdev, which SDL2 uses),
/// with no /dev/uinput and no device nodes. Only dynamically linked programs can be given
/// them: the library is loaded with LD_PRELOAD.
///
/// SDL2 programs are told where the pads are (SDL_JOYSTICK_DEVICE) and not to ask udev,
/// which knows nothing of them (SDL_JOYSTICK_DISABLE_UDEV=1); values already set are kept.
#[derive(Parser, Debug)]
#[command(
    name = "kelpie-gamepad",
    version,
    after_help = "See docs/gamepads.md for the SDL2 mapping, a session-wide preload, and what cannot work."
)]
struct Args {
    /// Kelpie's gamepad socket [default: per user and display, as Kelpie picks it]
    #[arg(long, env = "KELPIE_GAMEPAD_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// The preload library [default: next to this program, or ../lib/kelpie/]
    #[arg(long, env = "KELPIE_GAMEPAD_PRELOAD", value_name = "PATH")]
    preload: Option<PathBuf>,
    /// Only check: say whether Kelpie is reachable and the library found, and exit
    #[arg(long)]
    check: bool,
    /// The program and its arguments
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, value_name = "APP")]
    command: Vec<OsString>,
}

fn main() -> ExitCode {
    // An empty variable means "not set" here, as it does to the library; clap would
    // call it a missing value.
    for var in [paths::SOCKET_ENV, "KELPIE_GAMEPAD_PRELOAD"] {
        if std::env::var_os(var).is_some_and(|v| v.is_empty()) {
            std::env::remove_var(var);
        }
    }
    let args = Args::parse();
    let socket = args.socket.clone().unwrap_or_else(paths::socket_from_env);
    let Some(library) = find_library(args.preload.as_deref()) else {
        eprintln!(
            "kelpie-gamepad: cannot find {LIBRARY} next to this program or in ../lib/kelpie/; \
             build it (cargo build) or set KELPIE_GAMEPAD_PRELOAD"
        );
        return ExitCode::from(2);
    };
    let reachable = UnixStream::connect(&socket).map(drop);
    if let Err(e) = &reachable {
        eprintln!(
            "kelpie-gamepad: Kelpie's gamepad socket {} cannot be reached ({e}); the program starts, but sees \
             no gamepad until Kelpie runs on this display (or set KELPIE_GAMEPAD_SOCKET)",
            socket.display()
        );
    }
    if args.check {
        println!("library: {}", library.display());
        println!("socket: {} ({})", socket.display(), if reachable.is_ok() { "reachable" } else { "not reachable" });
        return if reachable.is_ok() { ExitCode::SUCCESS } else { ExitCode::FAILURE };
    }
    let Some((program, rest)) = args.command.split_first() else {
        eprintln!("kelpie-gamepad: no program given; usage: kelpie-gamepad APP [ARGS...] (see --help)");
        return ExitCode::from(2);
    };
    if let Some(path) = resolve(program) {
        if let Some(why) = cannot_preload(&path) {
            eprintln!("kelpie-gamepad: {why}");
            if let Ok(mut s) = UnixStream::connect(&socket) {
                let _ = std::io::Write::write_all(&mut s, &hello::report(&why));
            }
        }
    }
    let mut cmd = Command::new(program);
    cmd.args(rest).env("LD_PRELOAD", preload_value(&library, std::env::var_os("LD_PRELOAD")));
    cmd.env(paths::SOCKET_ENV, &socket);
    if std::env::var_os("SDL_JOYSTICK_DEVICE").is_none() {
        let devices: Vec<String> = Device::all(Kind::Evdev).map(Device::path).collect();
        cmd.env("SDL_JOYSTICK_DEVICE", devices.join(":"));
    }
    if std::env::var_os("SDL_JOYSTICK_DISABLE_UDEV").is_none() {
        cmd.env("SDL_JOYSTICK_DISABLE_UDEV", "1");
    }
    eprintln!(
        "kelpie-gamepad: starting {} with gamepads /dev/input/js0-3 and /dev/input/event1000-1003 from {}",
        program.to_string_lossy(),
        socket.display()
    );
    let err = cmd.exec();
    eprintln!("kelpie-gamepad: cannot start {}: {err}", program.to_string_lossy());
    ExitCode::from(127)
}

/// The library: as given, else next to this program, else in `../lib/kelpie/`.
fn find_library(given: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = given {
        return p.is_file().then(|| p.to_path_buf());
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    [dir.join(LIBRARY), dir.join("../lib/kelpie").join(LIBRARY)].into_iter().find(|p| p.is_file())
}

/// `LD_PRELOAD` with the library first and whatever was there kept.
fn preload_value(library: &Path, existing: Option<OsString>) -> OsString {
    let mut v = library.as_os_str().to_os_string();
    if let Some(e) = existing.filter(|e| !e.is_empty()) {
        v.push(":");
        v.push(e);
    }
    v
}

/// `program` as exec would find it: a path as given, else the first match in `PATH`.
fn resolve(program: &OsString) -> Option<PathBuf> {
    let p = Path::new(program);
    if p.components().count() > 1 {
        return Some(p.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?).map(|d| d.join(p)).find(|c| c.is_file())
}

/// Why `path` will not see the pads, if it can be told from its header.
fn cannot_preload(path: &Path) -> Option<String> {
    use std::io::Read as _;
    let mut head = vec![0u8; 64 * 1024];
    let n = std::fs::File::open(path).and_then(|mut f| f.read(&mut head)).ok()?;
    match elf::linkage(&head[..n]) {
        Linkage::Static => Some(format!(
            "{} is statically linked: LD_PRELOAD cannot reach it, so it will see no Kelpie gamepad",
            path.display()
        )),
        Linkage::Dynamic | Linkage::Script | Linkage::Unknown => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_library_goes_first_and_others_stay() {
        let lib = Path::new("/x/libkelpie_gamepad_preload.so");
        assert_eq!(preload_value(lib, None), "/x/libkelpie_gamepad_preload.so");
        assert_eq!(preload_value(lib, Some("".into())), "/x/libkelpie_gamepad_preload.so");
        assert_eq!(preload_value(lib, Some("/y/other.so".into())), "/x/libkelpie_gamepad_preload.so:/y/other.so");
    }

    #[test]
    fn paths_are_taken_as_given() {
        assert_eq!(resolve(&"./game".into()), Some(PathBuf::from("./game")));
        assert_eq!(resolve(&"/usr/bin/env".into()), Some(PathBuf::from("/usr/bin/env")));
    }
}

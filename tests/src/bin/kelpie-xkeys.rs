//! `kelpie-xkeys`: prints which keys and pointer buttons the X server holds down, as one
//! JSON line: `{"keys":[38,50],"buttons":[1]}` (keycodes; buttons 1–5).
//!
//! Tests read the server's own state (QueryKeymap, QueryPointer) instead of counting
//! events, so "nothing is held" is checked where it matters: a key still down in the X
//! server autorepeats into the focused window.

use std::process::ExitCode;

use x11rb::connection::Connection;
use x11rb::protocol::xproto::{ConnectionExt as _, KeyButMask};

fn main() -> ExitCode {
    let (conn, screen) = match x11rb::connect(None) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("kelpie-xkeys: cannot connect to $DISPLAY: {e}");
            return ExitCode::from(2);
        }
    };
    let root = conn.setup().roots[screen].root;
    let keymap = conn.query_keymap().ok().and_then(|c| c.reply().ok());
    let pointer = conn.query_pointer(root).ok().and_then(|c| c.reply().ok());
    let (Some(keymap), Some(pointer)) = (keymap, pointer) else {
        eprintln!("kelpie-xkeys: the X server did not answer");
        return ExitCode::from(2);
    };
    let keys: Vec<u32> = (0..256u32).filter(|k| keymap.keys[(k / 8) as usize] & (1 << (k % 8)) != 0).collect();
    let masks =
        [KeyButMask::BUTTON1, KeyButMask::BUTTON2, KeyButMask::BUTTON3, KeyButMask::BUTTON4, KeyButMask::BUTTON5];
    let buttons: Vec<u32> =
        masks.iter().enumerate().filter(|(_, m)| pointer.mask.contains(**m)).map(|(i, _)| i as u32 + 1).collect();
    println!("{}", serde_json::json!({ "keys": keys, "buttons": buttons }));
    ExitCode::SUCCESS
}

//! X11 keysyms as the input protocol uses them, and the reverse lookup the X probe does.
//!
//! The browser sends keysyms (the layout is decided client-side), the server turns them into
//! keycodes, and `kelpie-xprobe` turns keycodes back into keysyms and text. Both directions
//! live here so a test can type a string through the data channel and compare it with what
//! the probe reports, using one definition of what "the same key" means.

/// `Return` (Enter).
pub const RETURN: u32 = 0xff0d;
/// `BackSpace`.
pub const BACKSPACE: u32 = 0xff08;
/// `Tab`.
pub const TAB: u32 = 0xff09;
/// `Escape`.
pub const ESCAPE: u32 = 0xff1b;
/// `Delete`.
pub const DELETE: u32 = 0xffff;
/// `Left` arrow.
pub const LEFT: u32 = 0xff51;
/// `Up` arrow.
pub const UP: u32 = 0xff52;
/// `Right` arrow.
pub const RIGHT: u32 = 0xff53;
/// `Down` arrow.
pub const DOWN: u32 = 0xff54;
/// `F1`; F2…F12 follow consecutively.
pub const F1: u32 = 0xffbe;
/// Left `Shift`.
pub const SHIFT_L: u32 = 0xffe1;
/// Left `Control`.
pub const CONTROL_L: u32 = 0xffe3;
/// `Caps_Lock`.
pub const CAPS_LOCK: u32 = 0xffe5;
/// Left `Alt`.
pub const ALT_L: u32 = 0xffe9;
/// Left `Super` (the "Windows" key).
pub const SUPER_L: u32 = 0xffeb;

/// Offset of the directly-encoded Unicode keysyms (`0x01000000 + code point`).
pub const UNICODE_OFFSET: u32 = 0x0100_0000;
/// First Unicode keysym that types text: U+0000..U+009F are excluded by the keysym spec
/// (they alias the Latin-1 and control ranges).
const UNICODE_FIRST: u32 = UNICODE_OFFSET + 0xa0;
/// Last Unicode keysym (U+10FFFF).
const UNICODE_LAST: u32 = UNICODE_OFFSET + 0x10_ffff;

/// The character a keysym types, if it is a printable Latin-1 or Unicode keysym.
///
/// Function keys, modifiers and legacy non-Latin-1 keysym blocks give `None`: the probe
/// reports their keysym number but no text.
pub fn keysym_to_char(keysym: u32) -> Option<char> {
    match keysym {
        0x20..=0x7e | 0xa0..=0xff => char::from_u32(keysym),
        UNICODE_FIRST..=UNICODE_LAST => char::from_u32(keysym - UNICODE_OFFSET),
        _ => None,
    }
}

/// The keysym a browser would send for a typed character.
///
/// Printable Latin-1 maps to itself, `\n`, `\t` and `\u{8}` to Return, Tab and BackSpace,
/// everything else to its Unicode keysym.
pub fn char_to_keysym(c: char) -> u32 {
    match c {
        '\n' | '\r' => RETURN,
        '\t' => TAB,
        '\u{8}' => BACKSPACE,
        '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{ff}' => u32::from(c),
        _ => UNICODE_OFFSET + u32::from(c),
    }
}

/// Lower- and upper-case forms of a keysym (XConvertCase, for the ranges tests use).
/// Keysyms without case return themselves twice.
pub fn convert_case(keysym: u32) -> (u32, u32) {
    match keysym {
        0x41..=0x5a => (keysym + 0x20, keysym),
        0x61..=0x7a => (keysym, keysym - 0x20),
        0xc0..=0xde if keysym != 0xd7 => (keysym + 0x20, keysym),
        0xe0..=0xfe if keysym != 0xf7 => (keysym, keysym - 0x20),
        k if k >= UNICODE_OFFSET => {
            let Some(c) = keysym_to_char(k) else {
                return (k, k);
            };
            // Case mappings that expand to several characters (ß → SS) have no keysym pair.
            let lower = single_char(c.to_lowercase()).unwrap_or(c);
            let upper = single_char(c.to_uppercase()).unwrap_or(c);
            (char_to_keysym(lower), char_to_keysym(upper))
        }
        _ => (keysym, keysym),
    }
}

fn single_char(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let first = chars.next()?;
    chars.next().is_none().then_some(first)
}

/// Whether the keysym is a letter, i.e. Caps Lock applies to it.
pub fn is_letter(keysym: u32) -> bool {
    let (lower, upper) = convert_case(keysym);
    lower != upper
}

/// Picks the keysym a key produces from its group-1 keysym list (`syms[0]` unshifted,
/// `syms[1]` shifted) the way the core protocol describes: column 1 when Shift is held —
/// XOR Caps Lock for letters — else column 0. A missing column 1 (NoSymbol) means the
/// case-converted column 0, as for letters listed once.
pub fn select_keysym(syms: &[u32], shift: bool, caps_lock: bool) -> u32 {
    let col0 = syms.first().copied().unwrap_or(0);
    let (lower, upper) = match syms.get(1).copied() {
        Some(col1) if col1 != 0 => (col0, col1),
        _ => convert_case(col0),
    };
    let shifted = if is_letter(lower) { shift ^ caps_lock } else { shift };
    if shifted {
        upper
    } else {
        lower
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_of_keysyms() {
        assert_eq!(keysym_to_char(0x48), Some('H'));
        assert_eq!(keysym_to_char(0xe9), Some('é'));
        assert_eq!(keysym_to_char(0x0100_20ac), Some('€'));
        assert_eq!(keysym_to_char(RETURN), None);
        assert_eq!(keysym_to_char(SHIFT_L), None);
        assert_eq!(keysym_to_char(0x0100_0041), None);
    }

    #[test]
    fn keysyms_of_chars_round_trip() {
        for c in "Hello, World! 123 é€ 日本".chars() {
            assert_eq!(keysym_to_char(char_to_keysym(c)), Some(c), "{c}");
        }
        assert_eq!(char_to_keysym('\n'), RETURN);
    }

    #[test]
    fn column_selection() {
        // US layout: "a A", "1 exclam".
        let a = [0x61, 0x41];
        let one = [0x31, 0x21];
        assert_eq!(select_keysym(&a, false, false), 0x61);
        assert_eq!(select_keysym(&a, true, false), 0x41);
        assert_eq!(select_keysym(&a, false, true), 0x41);
        assert_eq!(select_keysym(&a, true, true), 0x61);
        assert_eq!(select_keysym(&one, false, true), 0x31);
        assert_eq!(select_keysym(&one, true, false), 0x21);
        // A keycode bound to a single lower-case keysym (as xdotool does for spare keys).
        assert_eq!(select_keysym(&[0xe9, 0], true, false), 0xc9);
        assert_eq!(select_keysym(&[RETURN], true, false), RETURN);
        assert_eq!(select_keysym(&[], false, false), 0);
    }

    #[test]
    fn unicode_case() {
        let (lower, upper) = convert_case(0x0100_0434); // д
        assert_eq!((lower, upper), (0x0100_0434, 0x0100_0414));
        assert!(!is_letter(0x0100_20ac));
    }
}

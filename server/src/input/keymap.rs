//! Keysym → keycode mapping and the key presses needed to type a keysym.
//!
//! The browser decides what the user meant (a keysym); X needs a keycode plus the right
//! Shift state. This module is pure so the shift juggling is tested without an X server.

use std::collections::HashMap;

/// `Shift_L`, pressed around keys that need it.
pub const XK_SHIFT_L: u32 = 0xffe1;
/// `Shift_R`.
pub const XK_SHIFT_R: u32 = 0xffe2;

/// Where a keysym lives in the keyboard map.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct KeyPosition {
    pub keycode: u8,
    /// 0 = unshifted, 1 = shifted (group 1).
    pub shifted: bool,
}

/// The keysyms reachable with and without Shift in the first group of the X keymap.
#[derive(Debug, Clone, Default)]
pub struct KeysymMap {
    positions: HashMap<u32, KeyPosition>,
    /// Per keycode: (unshifted keysym, shifted keysym), used to tell whether Shift matters.
    levels: HashMap<u8, (u32, u32)>,
}

impl KeysymMap {
    /// Builds the map from a `GetKeyboardMapping` reply: `per_keycode` keysyms for each
    /// keycode starting at `first_keycode`. Lower columns and lower keycodes win, so a
    /// keysym on several keys uses the plainest one.
    pub fn from_mapping(first_keycode: u8, per_keycode: u8, keysyms: &[u32]) -> Self {
        let mut map = Self::default();
        let per = usize::from(per_keycode.max(1));
        for (i, row) in keysyms.chunks(per).enumerate() {
            let Some(keycode) = u8::try_from(usize::from(first_keycode) + i).ok() else { break };
            let col0 = row.first().copied().unwrap_or(0);
            let col1 = row.get(1).copied().unwrap_or(0);
            // X's rule: a letter with only its lower case listed has its upper case on Shift.
            let col1 = if col1 == 0 { upper_case_latin1(col0).unwrap_or(0) } else { col1 };
            map.levels.insert(keycode, (col0, col1));
            for (shifted, keysym) in [(false, col0), (true, col1)] {
                if keysym == 0 {
                    continue;
                }
                let pos = KeyPosition { keycode, shifted };
                map.positions
                    .entry(keysym)
                    .and_modify(|old| {
                        if (pos.shifted, pos.keycode) < (old.shifted, old.keycode) {
                            *old = pos;
                        }
                    })
                    .or_insert(pos);
            }
        }
        map
    }

    pub fn position(&self, keysym: u32) -> Option<KeyPosition> {
        self.positions.get(&keysym).copied()
    }

    /// Whether pressing Shift changes what this keycode types.
    fn shift_matters(&self, keycode: u8) -> bool {
        self.levels.get(&keycode).is_some_and(|&(a, b)| b != 0 && a != b)
    }
}

/// The keysym that types `c`: Latin-1 as itself, control characters as their keys, and
/// everything else as a Unicode keysym (`0x01000000 + code point`), which X clients turn
/// back into the character.
pub fn char_keysym(c: char) -> u32 {
    match c {
        '\n' | '\r' => 0xff0d,
        '\t' => 0xff09,
        '\u{8}' => 0xff08,
        '\u{20}'..='\u{7e}' | '\u{a0}'..='\u{ff}' => u32::from(c),
        _ => 0x0100_0000 + u32::from(c),
    }
}

fn upper_case_latin1(keysym: u32) -> Option<u32> {
    let c = char::from_u32(keysym).filter(|c| keysym <= 0xff && c.is_lowercase())?;
    let mut upper = c.to_uppercase();
    let u = upper.next()?;
    (upper.next().is_none() && (u as u32) <= 0xff).then_some(u as u32)
}

/// One fake key event for XTest.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct FakeKey {
    pub keycode: u8,
    pub press: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("keysym {0:#x} is not in the X keymap")]
    Unmapped(u32),
}

/// The XTest events that press `keysym` given the Shift keys the viewer holds now.
///
/// A keysym on the shifted level is pressed with Shift held for just that key, and one on
/// the plain level has the viewer's Shift released around it; so `A`, `!` and `a` come out
/// right whatever modifier state the browser's key events arrived with.
pub fn press_plan(map: &KeysymMap, keysym: u32, held_shifts: &[u8]) -> Result<Vec<FakeKey>, KeyError> {
    let pos = map.position(keysym).ok_or(KeyError::Unmapped(keysym))?;
    let key = FakeKey { keycode: pos.keycode, press: true };
    let is_shift_key = keysym == XK_SHIFT_L || keysym == XK_SHIFT_R;
    if is_shift_key || !map.shift_matters(pos.keycode) {
        return Ok(vec![key]);
    }
    let shift_down = !held_shifts.is_empty();
    match (pos.shifted, shift_down) {
        (true, false) => {
            let shift = map.position(XK_SHIFT_L).ok_or(KeyError::Unmapped(XK_SHIFT_L))?.keycode;
            Ok(vec![FakeKey { keycode: shift, press: true }, key, FakeKey { keycode: shift, press: false }])
        }
        (false, true) => {
            let mut plan: Vec<FakeKey> = held_shifts.iter().map(|&k| FakeKey { keycode: k, press: false }).collect();
            plan.push(key);
            plan.extend(held_shifts.iter().map(|&k| FakeKey { keycode: k, press: true }));
            Ok(plan)
        }
        _ => Ok(vec![key]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A slice of a US keymap: keycode 10 '1' '!', 38 'a' 'A', 50 Shift_L, 62 Shift_R,
    /// 65 space, 24 'q' (lower case only: upper case is implied), 36 Return.
    fn us() -> KeysymMap {
        let mut syms = vec![0u32; 2 * 60];
        let mut set = |kc: usize, a: u32, b: u32| {
            syms[(kc - 8) * 2] = a;
            syms[(kc - 8) * 2 + 1] = b;
        };
        set(10, '1' as u32, '!' as u32);
        set(38, 'a' as u32, 'A' as u32);
        set(50, XK_SHIFT_L, 0);
        set(62, XK_SHIFT_R, 0);
        set(65, ' ' as u32, 0);
        set(24, 'q' as u32, 0);
        set(36, 0xff0d, 0);
        KeysymMap::from_mapping(8, 2, &syms)
    }

    fn press(kc: u8) -> FakeKey {
        FakeKey { keycode: kc, press: true }
    }
    fn release(kc: u8) -> FakeKey {
        FakeKey { keycode: kc, press: false }
    }

    #[test]
    fn plain_key_is_one_press() {
        assert_eq!(press_plan(&us(), 'a' as u32, &[]), Ok(vec![press(38)]));
        assert_eq!(press_plan(&us(), 0xff0d, &[50]), Ok(vec![press(36)]));
    }

    #[test]
    fn shifted_keysym_without_shift_held_gets_shift_around_it() {
        assert_eq!(press_plan(&us(), '!' as u32, &[]), Ok(vec![press(50), press(10), release(50)]));
    }

    #[test]
    fn shifted_keysym_with_shift_held_is_one_press() {
        assert_eq!(press_plan(&us(), 'A' as u32, &[62]), Ok(vec![press(38)]));
    }

    #[test]
    fn unshifted_keysym_with_shift_held_releases_shift_around_it() {
        assert_eq!(press_plan(&us(), '1' as u32, &[50]), Ok(vec![release(50), press(10), press(50)]));
    }

    #[test]
    fn keys_shift_does_not_change_ignore_shift_state() {
        assert_eq!(press_plan(&us(), ' ' as u32, &[50]), Ok(vec![press(65)]));
    }

    #[test]
    fn implied_upper_case_is_found_on_the_lower_case_key() {
        assert_eq!(us().position('Q' as u32), Some(KeyPosition { keycode: 24, shifted: true }));
    }

    #[test]
    fn unmapped_keysym_is_an_error() {
        assert_eq!(press_plan(&us(), 0x20ac, &[]), Err(KeyError::Unmapped(0x20ac)));
    }

    #[test]
    fn characters_map_to_latin1_or_unicode_keysyms() {
        assert_eq!(char_keysym('a'), 0x61);
        assert_eq!(char_keysym('ü'), 0xfc);
        assert_eq!(char_keysym('€'), 0x0100_20ac);
        assert_eq!(char_keysym('日'), 0x0100_65e5);
        assert_eq!(char_keysym('\n'), 0xff0d);
    }

    #[test]
    fn plainest_position_wins_when_a_keysym_is_on_two_keys() {
        let mut syms = vec![0u32; 4];
        syms[1] = 'x' as u32; // keycode 8 shifted
        syms[2] = 'x' as u32; // keycode 9 plain
        let map = KeysymMap::from_mapping(8, 2, &syms);
        assert_eq!(map.position('x' as u32), Some(KeyPosition { keycode: 9, shifted: false }));
    }
}

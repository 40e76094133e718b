/**
 * KeyboardEvent → X11 keysym.
 *
 * We send keysyms, not scancodes: the browser already applied the user's layout, so
 * `event.key` is the character the user meant and the server only has to find (or
 * make) a keycode that types it. `event.code` is used where `key` alone is ambiguous:
 * left/right modifiers and the numeric keypad.
 */

/** Named `KeyboardEvent.key` values → keysyms (X11/keysymdef.h). */
const NAMED = {
  Backspace: 0xff08,
  Tab: 0xff09,
  Clear: 0xff0b,
  Enter: 0xff0d,
  Pause: 0xff13,
  ScrollLock: 0xff14,
  Escape: 0xff1b,
  Compose: 0xff20, // Multi_key
  Home: 0xff50,
  ArrowLeft: 0xff51,
  ArrowUp: 0xff52,
  ArrowRight: 0xff53,
  ArrowDown: 0xff54,
  PageUp: 0xff55, // Prior
  PageDown: 0xff56, // Next
  End: 0xff57,
  Select: 0xff60,
  PrintScreen: 0xff61, // Print
  Execute: 0xff62,
  Insert: 0xff63,
  Undo: 0xff65,
  Redo: 0xff66,
  ContextMenu: 0xff67, // Menu
  Find: 0xff68,
  Cancel: 0xff69,
  Help: 0xff6a,
  NumLock: 0xff7f,
  CapsLock: 0xffe5,
  AltGraph: 0xfe03, // ISO_Level3_Shift
  Delete: 0xffff,
  AudioVolumeDown: 0x1008ff11,
  AudioVolumeMute: 0x1008ff12,
  AudioVolumeUp: 0x1008ff13,
  MediaPlayPause: 0x1008ff14,
  MediaStop: 0x1008ff15,
  MediaTrackPrevious: 0x1008ff16,
  MediaTrackNext: 0x1008ff17,
};

/** Modifiers: `key` names the modifier, `code` says which side. [left, right] */
const SIDED = {
  Shift: [0xffe1, 0xffe2],
  Control: [0xffe3, 0xffe4],
  Alt: [0xffe9, 0xffea],
  // The browser's Meta is the Windows/Command key, which X desktops call Super.
  Meta: [0xffeb, 0xffec],
  OS: [0xffeb, 0xffec], // older name of Meta
  Super: [0xffeb, 0xffec],
  Hyper: [0xffed, 0xffee],
};

/** Keypad keys whose keysym does not depend on NumLock, by `code`. */
const KEYPAD = {
  NumpadEnter: 0xff8d,
  NumpadMultiply: 0xffaa,
  NumpadAdd: 0xffab,
  NumpadComma: 0xffac, // KP_Separator
  NumpadSubtract: 0xffad,
  NumpadDivide: 0xffaf,
  NumpadEqual: 0xffbd,
};

/** With NumLock off the keypad digits report navigation keys; X has KP_ twins. */
const KEYPAD_NAV = {
  Home: 0xff95,
  ArrowLeft: 0xff96,
  ArrowUp: 0xff97,
  ArrowRight: 0xff98,
  ArrowDown: 0xff99,
  PageUp: 0xff9a,
  PageDown: 0xff9b,
  End: 0xff9c,
  Clear: 0xff9d, // KP_Begin (keypad 5)
  Insert: 0xff9e,
  Delete: 0xff9f,
};

/**
 * The keysym for a character: Latin-1 keysyms equal their code point; everything
 * else uses the Unicode keysym range (0x01000000 + code point), which X servers and
 * xdotool-style injectors understand without a table.
 */
export function charKeysym(ch) {
  const cp = ch.codePointAt(0);
  if ((cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa0 && cp <= 0xff)) return cp;
  return 0x01000000 + cp;
}

/**
 * The keysym for a KeyboardEvent-like object ({key, code}), or null when the key
 * should not be sent (dead keys and IME composition for now, unknown keys).
 */
export function keysymFor({ key, code = '' }) {
  if (!key || key === 'Dead' || key === 'Process' || key === 'Unidentified') return null;

  if (code.startsWith('Numpad')) {
    if (code in KEYPAD) return KEYPAD[code];
    if (/^[0-9]$/.test(key)) return 0xffb0 + Number(key); // KP_0..KP_9
    if (code === 'NumpadDecimal') {
      return key === 'Delete' ? KEYPAD_NAV.Delete : 0xffae; // KP_Decimal, even for ','
    }
    if (key in KEYPAD_NAV) return KEYPAD_NAV[key];
  }

  const sided = SIDED[key];
  if (sided) return code.endsWith('Right') ? sided[1] : sided[0];

  if (key in NAMED) return NAMED[key];

  // F1..F35 are consecutive keysyms starting at 0xffbe.
  const f = /^F([1-9][0-9]?)$/.exec(key);
  if (f && Number(f[1]) <= 35) return 0xffbe + Number(f[1]) - 1;

  // A printable key reports its character; a single code point may be two UTF-16 units.
  const chars = [...key];
  if (chars.length === 1) return charKeysym(chars[0]);

  return null;
}

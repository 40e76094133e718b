/**
 * The extra-keys row for touch screens, whose on-screen keyboards have no Esc, Tab, Ctrl,
 * Alt, Super or arrows: a row of 44 px buttons along the bottom (shown on coarse pointers
 * only, style.css). Esc, Tab, the arrows and Ctrl+Alt+Del are typed at once; Ctrl, Alt
 * and Super latch: held on the desktop from the tap until the next key (from this row or
 * the phone's keyboard) is released, then let go, so Ctrl then "c" is Ctrl+C.
 *
 * `wrap(send)` gives the keyboard a send that ends the latch after its next key;
 * `latchedAfter` is the pure rule (tested in web-client.test.mjs).
 */
import { el, keepKeys } from './dom.js';

const CONTROL = 0xffe3;
const ALT = 0xffe9;
const SUPER = 0xffeb;
const DELETE = 0xffff;
/** Keysyms of modifiers: pressing one does not end a latch. */
const MODIFIER_KEYSYMS = new Set([...Array.from({ length: 14 }, (_, i) => 0xffe1 + i), 0xfe03]);

/** [label, accessible name, keysyms typed together (or a latch)]. */
const KEYS = [
  ['Esc', 'Escape', [0xff1b]],
  ['Tab', 'Tab', [0xff09]],
  ['Ctrl', 'Control (latches until the next key)', 'latch', CONTROL],
  ['Alt', 'Alt (latches until the next key)', 'latch', ALT],
  ['Super', 'Super (latches until the next key)', 'latch', SUPER],
  ['←', 'Left arrow', [0xff51]],
  ['↑', 'Up arrow', [0xff52]],
  ['↓', 'Down arrow', [0xff54]],
  ['→', 'Right arrow', [0xff53]],
  ['Ctrl+Alt+Del', 'Control Alt Delete', [CONTROL, ALT, DELETE]],
];

/**
 * Whether a latch ends with protocol message `msg`: the release of a key that is not a
 * modifier, or a piece of text (the phone's keyboard types through `txt`).
 */
export function endsLatch(msg) {
  if (msg?.t === 'txt') return true;
  return msg?.t === 'k' && msg.d === false && !MODIFIER_KEYSYMS.has(msg.k);
}

/** The row; `send` is the gated data-channel send. Returns {element, wrap(send), latched}. */
export function attachExtraKeys(send) {
  const latched = new Set();
  const buttons = new Map();

  function releaseLatched() {
    for (const k of latched) send({ t: 'k', k, d: false });
    latched.clear();
    for (const b of buttons.values()) b.setAttribute('aria-pressed', 'false');
  }

  function type(keysyms) {
    for (const k of keysyms) send({ t: 'k', k, d: true });
    for (const k of [...keysyms].reverse()) send({ t: 'k', k, d: false });
    releaseLatched();
  }

  function toggleLatch(k) {
    if (latched.has(k)) {
      latched.delete(k);
      send({ t: 'k', k, d: false });
    } else if (send({ t: 'k', k, d: true }) !== false) {
      latched.add(k);
    }
    buttons.get(k)?.setAttribute('aria-pressed', String(latched.has(k)));
  }

  const row = el('div', { id: 'extra-keys', className: 'extra-keys', role: 'toolbar', 'aria-label': 'Extra keys' });
  for (const [label, name, what, latchKey] of KEYS) {
    const b = el('button', { type: 'button', textContent: label, 'aria-label': name, 'data-key': label });
    if (what === 'latch') {
      b.setAttribute('aria-pressed', 'false');
      buttons.set(latchKey, b);
      b.addEventListener('click', () => toggleLatch(latchKey));
    } else {
      b.addEventListener('click', () => type(what));
    }
    // A tap must not take the focus (and the phone's keyboard) away from the text sink.
    b.addEventListener('pointerdown', (ev) => ev.preventDefault());
    row.append(b);
  }
  keepKeys(row);
  document.body.append(row);

  return {
    element: row,
    /** `send` for the keyboard: a key it types after a latch ends the latch. */
    wrap: (inner) => (msg) => {
      const sent = inner(msg);
      if (latched.size && endsLatch(msg)) releaseLatched();
      return sent;
    },
    get latched() { return [...latched]; },
  };
}

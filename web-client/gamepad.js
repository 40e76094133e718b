/**
 * The browser's gamepads, for the desktop's virtual pads (docs/gamepads.md): while a pad
 * is connected, each animation frame (the display's rate) reads `navigator.getGamepads()`
 * and sends a pad's whole state when it changed since it was last sent, so a held stick
 * costs nothing and a burst of changes costs one message per frame (at most 60 a second).
 * Up to four pads.
 *
 * Only the page holding control sends (the caller's `send` is gated, and the server
 * checks again). Gaining control sends every pad afresh; losing it sends nothing more,
 * and the server returns the pads to rest as it releases keys.
 *
 * Values travel as integers: buttons 0–255, axes −32767–32767, in the W3C standard
 * layout when the browser maps the pad (`mapping === 'standard'`), else as the browser
 * numbers them.
 */

export const MAX_PADS = 4;
/** At most one message per pad per this many ms (60 Hz), whatever the display's rate: four
 *  busy pads stay well inside the server's input budget (500 events/s, shared with the
 *  mouse). A change held back goes out on a later frame. */
const MIN_INTERVAL_MS = 15;
/** Real pads have up to ~20 buttons; the server refuses more than these. */
const MAX_BUTTONS = 32;
const MAX_AXES = 16;

/** The wire message for pad slot `index` in state `pad` (a Gamepad or a lookalike). */
export function padMessage(index, pad) {
  const b = Array.from(pad.buttons ?? []).slice(0, MAX_BUTTONS).map((btn) => {
    const v = typeof btn === 'number' ? btn : (btn?.value ?? (btn?.pressed ? 1 : 0));
    return Math.round(Math.min(1, Math.max(0, Number(v) || 0)) * 255);
  });
  const a = Array.from(pad.axes ?? []).slice(0, MAX_AXES).map((v) => {
    const x = Math.round(Math.min(1, Math.max(-1, Number(v) || 0)) * 32767);
    return x === 0 ? 0 : x; // no -0 in JSON
  });
  return { t: 'gp', p: index, b, a };
}

/** A comparable key of a message's values. */
const keyOf = (msg) => `${msg.b.join(',')}|${msg.a.join(',')}`;

/**
 * Starts watching pads. `send(msg)` returns false when the message could not go (no
 * channel, no control); `hasControl()`; `notice(text)` for the page's one-line notices;
 * `getGamepads()` defaults to the browser's.
 */
export function attachGamepads({ send, hasControl, notice, getGamepads = () => navigator.getGamepads?.() ?? [] }) {
  /** Per slot: the key last sent, or null (nothing sent since control/connection). */
  const sent = new Array(MAX_PADS).fill(null);
  const names = new Array(MAX_PADS).fill(null);
  const sentAt = new Array(MAX_PADS).fill(-Infinity);
  let frame = 0;
  let messages = 0;

  const pads = () => Array.from(getGamepads() ?? []).slice(0, MAX_PADS);

  function poll(now = performance.now()) {
    frame = 0;
    let any = false;
    pads().forEach((pad, i) => {
      if (!pad || pad.connected === false) return;
      any = true;
      if (!hasControl()) return;
      if (now - sentAt[i] < MIN_INTERVAL_MS) return;
      const msg = padMessage(i, pad);
      const key = keyOf(msg);
      if (key !== sent[i] && send(msg)) {
        sent[i] = key;
        sentAt[i] = now;
        messages += 1;
      }
    });
    if (any) frame = requestAnimationFrame(poll);
  }

  function start() {
    if (!frame) frame = requestAnimationFrame(poll);
  }

  addEventListener('gamepadconnected', (e) => {
    const i = e.gamepad?.index;
    if (!(i >= 0 && i < MAX_PADS)) {
      notice?.(`Gamepad ${i + 1} is not used: Kelpie passes on the first ${MAX_PADS}.`);
      return;
    }
    names[i] = e.gamepad.id || `Gamepad ${i + 1}`;
    notice?.(hasControl()
      ? `Gamepad ${i + 1} connected (${names[i]}): apps started with kelpie-gamepad see it.`
      : `Gamepad ${i + 1} connected: take control in "People" to use it.`);
    start();
  });
  addEventListener('gamepaddisconnected', (e) => {
    const i = e.gamepad?.index;
    if (!(i >= 0 && i < MAX_PADS)) return;
    names[i] = null;
    if (sent[i] !== null && hasControl()) send({ t: 'gpoff', p: i });
    sent[i] = null;
  });
  // Pads the browser already knew of (a reload with a pad in use).
  if (pads().some((p) => p && p.connected !== false)) start();

  return {
    /** Control came (or a new channel opened while holding it): send every pad again. */
    resend() {
      sent.fill(null);
      start();
    },
    /** Control went: the server put our pads at rest; send afresh if it comes back. */
    forget() {
      sent.fill(null);
    },
    get connected() { return names.map((n, i) => (n ? { index: i, id: n } : null)).filter(Boolean); },
    /** Pad messages sent so far. */
    get messages() { return messages; },
  };
}

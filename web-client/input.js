/**
 * Pointer, wheel and keyboard → the `input` data channel (docs/protocol.md).
 *
 * Pointer positions are absolute remote-screen pixels: we undo the scaling and
 * letterboxing that `object-fit: contain` applied to the video, so a click lands on
 * the same spot of the remote screen that the user sees under the cursor.
 */
import { keysymFor } from './keysyms.js';

/** DOM `MouseEvent.button` → protocol button (1 left, 2 middle, 3 right, 4 back, 5 forward). */
const BUTTONS = [1, 2, 3, 4, 5];
/** DOM `MouseEvent.buttons` bit for each `MouseEvent.button`. */
const BUTTON_BITS = [1, 4, 2, 8, 16];

/** Wheel deltas per notch, by `WheelEvent.deltaMode` (pixel, line, page). */
const PER_NOTCH = [100, 3, 1];

/**
 * Maps a point in viewport CSS pixels to remote-screen pixels, or null when the
 * video has no frame yet. Points in the black bars clamp to the nearest edge.
 */
export function toRemote(clientX, clientY, rect, videoWidth, videoHeight) {
  if (!videoWidth || !videoHeight || !rect.width || !rect.height) return null;
  // object-fit: contain scales uniformly to fit and centres (object-position 50% 50%).
  const scale = Math.min(rect.width / videoWidth, rect.height / videoHeight);
  const left = rect.left + (rect.width - videoWidth * scale) / 2;
  const top = rect.top + (rect.height - videoHeight * scale) / 2;
  const clamp = (v, max) => Math.min(max - 1, Math.max(0, Math.floor(v)));
  return {
    x: clamp((clientX - left) / scale, videoWidth),
    y: clamp((clientY - top) / scale, videoHeight),
  };
}

/**
 * Wires input events on `video` (pointer, wheel) and `target` (keyboard) to `send`,
 * which delivers one protocol message and silently drops it while disconnected.
 */
export function attachInput(video, send, target = window) {
  /** keysym sent on keydown, by `code`, so keyup releases the same keysym. */
  const keysDown = new Map();
  /** DOM button numbers currently held. */
  const buttonsDown = new Set();
  let pendingMove = null; // latest position not yet sent
  let lastSent = null;
  let frame = 0;

  const position = (ev) =>
    toRemote(ev.clientX, ev.clientY, video.getBoundingClientRect(), video.videoWidth, video.videoHeight);

  function flushMove() {
    if (frame) cancelAnimationFrame(frame);
    frame = 0;
    const p = pendingMove;
    pendingMove = null;
    if (!p || (lastSent && p.x === lastSent.x && p.y === lastSent.y)) return;
    lastSent = p;
    send({ t: 'm', x: p.x, y: p.y });
  }

  /** Moves are coalesced to one per frame; the latest position always goes out. */
  function queueMove(ev) {
    const p = position(ev);
    if (!p) return;
    pendingMove = p;
    if (!frame) frame = requestAnimationFrame(flushMove);
  }

  function setButton(button, down) {
    if (button < 0 || button >= BUTTONS.length) return;
    if (down === buttonsDown.has(button)) return;
    if (down) buttonsDown.add(button);
    else buttonsDown.delete(button);
    send({ t: 'b', b: BUTTONS[button], d: down });
  }

  /** Press/release happens where the pointer is now: send that position first. */
  function pointerButton(ev, down) {
    const p = position(ev);
    if (!p) return;
    pendingMove = p;
    flushMove();
    setButton(ev.button, down);
  }

  function releaseAll() {
    pendingMove = null;
    keysDown.clear();
    buttonsDown.clear();
    // Always sent: the server may hold something we do not know about (a key whose
    // keyup the browser swallowed while another window had focus).
    send({ t: 'r' });
  }

  video.addEventListener('pointerdown', (ev) => {
    video.focus({ preventScroll: true });
    // Keep receiving moves and the release when a drag leaves the window.
    try { video.setPointerCapture(ev.pointerId); } catch { /* synthetic pointer */ }
    pointerButton(ev, true);
  });
  video.addEventListener('pointerup', (ev) => pointerButton(ev, false));
  video.addEventListener('pointercancel', () => {
    for (const b of [...buttonsDown]) setButton(b, false);
  });
  video.addEventListener('pointermove', (ev) => {
    // A second button pressed while one is held arrives as a "chorded" pointermove.
    if (ev.button >= 0 && ev.button < BUTTONS.length) {
      pointerButton(ev, (ev.buttons & BUTTON_BITS[ev.button]) !== 0);
    } else {
      queueMove(ev);
    }
  });
  // Stop the browser's own reactions: middle-click autoscroll and paste, text
  // selection, back/forward navigation on the side buttons, the context menu.
  for (const type of ['mousedown', 'mouseup', 'auxclick', 'contextmenu', 'dragstart']) {
    video.addEventListener(type, (ev) => ev.preventDefault());
  }
  document.addEventListener('contextmenu', (ev) => ev.preventDefault());

  video.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const per = PER_NOTCH[ev.deltaMode] ?? PER_NOTCH[0];
    const dx = ev.deltaX / per;
    const dy = ev.deltaY / per;
    if (!dx && !dy) return;
    const p = position(ev);
    if (p) { pendingMove = p; flushMove(); } // scroll what is under the pointer
    send({ t: 'w', dx, dy });
  }, { passive: false });

  target.addEventListener('keydown', (ev) => {
    if (ev.isComposing) return;
    const keysym = keysymFor(ev);
    if (keysym === null) return;
    ev.preventDefault(); // the remote desktop, not the browser, acts on keys
    const id = ev.code || ev.key;
    // The remote X server autorepeats held keys itself; browser repeats would double it.
    if (ev.repeat && keysDown.has(id)) return;
    keysDown.set(id, keysym);
    send({ t: 'k', k: keysym, d: true });
  });
  target.addEventListener('keyup', (ev) => {
    const id = ev.code || ev.key;
    // Release what was pressed, even if Shift or the layout changed in between.
    const keysym = keysDown.get(id) ?? keysymFor(ev);
    if (keysym === null || keysym === undefined) return;
    ev.preventDefault();
    keysDown.delete(id);
    send({ t: 'k', k: keysym, d: false });
  });

  // Keys and buttons held when focus leaves would stay stuck on the remote side.
  window.addEventListener('blur', releaseAll);
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) releaseAll();
  });

  return { releaseAll };
}

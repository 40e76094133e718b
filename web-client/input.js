/**
 * Mouse and wheel → the `input` data channel (docs/protocol.md); the keyboard is in
 * keyboard.js and touch gestures in touch.js.
 *
 * Pointer positions are absolute remote-screen pixels: we undo the scaling and
 * letterboxing that `object-fit: contain` applied to the video (and any pinch zoom, which
 * getBoundingClientRect includes), so a click lands on the same spot of the remote
 * screen that the user sees under the cursor. In pointer lock (3D applications, games)
 * the browser reports relative motion instead, which is sent as `rm` deltas.
 */
import { attachKeyboard } from './keyboard.js';

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
 * Wires pointer, wheel and keyboard events on `video` to `send`, which delivers one
 * protocol message and silently drops it while disconnected.
 */
export function attachInput(video, send) {
  /** DOM button numbers currently held. */
  const buttonsDown = new Set();
  let pendingMove = null; // latest position not yet sent
  let lastSent = null;
  let frame = 0;
  /** Relative motion not yet sent (pointer lock), in remote pixels, with fractions. */
  const rel = { x: 0, y: 0 };
  let relFrame = 0;

  const locked = () => document.pointerLockElement === video;
  const position = (ev) =>
    toRemote(ev.clientX, ev.clientY, video.getBoundingClientRect(), video.videoWidth, video.videoHeight);

  /** Remote pixels per CSS pixel of the displayed video. */
  function remotePerCss() {
    const rect = video.getBoundingClientRect();
    if (!video.videoWidth || !rect.width) return 1;
    return 1 / Math.min(rect.width / video.videoWidth, rect.height / video.videoHeight);
  }

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

  function flushRelative() {
    relFrame = 0;
    const dx = Math.trunc(rel.x);
    const dy = Math.trunc(rel.y);
    if (!dx && !dy) return;
    rel.x -= dx;
    rel.y -= dy;
    send({ t: 'rm', dx, dy });
  }

  /** Relative moves add up between frames; fractions carry over so slow moves count. */
  function queueRelative(ev) {
    const k = remotePerCss();
    rel.x += ev.movementX * k;
    rel.y += ev.movementY * k;
    if (!relFrame) relFrame = requestAnimationFrame(flushRelative);
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
    if (locked()) {
      flushRelative();
      setButton(ev.button, down);
      return;
    }
    const p = position(ev);
    if (!p) return;
    pendingMove = p;
    flushMove();
    setButton(ev.button, down);
  }

  const keyboard = attachKeyboard(video, send, {
    shortcuts: (ev) => {
      // Ctrl+Alt+Shift+L toggles pointer lock (documented in the settings panel).
      if (ev.type === 'keydown' && ev.ctrlKey && ev.altKey && ev.shiftKey && ev.code === 'KeyL') {
        togglePointerLock();
        return true;
      }
      return false;
    },
  });

  /**
   * Forgets what we think is held, without telling the server: for when control moved to
   * someone else, whose arrival already released our keys and buttons on the server (and
   * an `r` from us would be refused).
   */
  function forgetHeld() {
    pendingMove = null;
    lastSent = null;
    rel.x = 0;
    rel.y = 0;
    buttonsDown.clear();
    keyboard.releaseAll();
  }

  function releaseAll() {
    forgetHeld();
    // Always sent: the server may hold something we do not know about (a key whose
    // keyup the browser swallowed while another window had focus).
    send({ t: 'r' });
  }

  /** Pointer lock: relative motion for 3D applications; Escape (or the shortcut) leaves. */
  function togglePointerLock() {
    if (locked()) {
      document.exitPointerLock();
      return Promise.resolve(false);
    }
    const req = (opts) => Promise.resolve(video.requestPointerLock(opts));
    // Raw (unaccelerated) motion where supported, plain pointer lock elsewhere.
    return req({ unadjustedMovement: true }).catch(() => req()).then(() => true, () => false);
  }

  video.addEventListener('pointerdown', (ev) => {
    if (ev.pointerType === 'touch') return; // touch.js
    video.focus({ preventScroll: true });
    // Keep receiving moves and the release when a drag leaves the window.
    try { video.setPointerCapture(ev.pointerId); } catch { /* synthetic pointer */ }
    pointerButton(ev, true);
  });
  video.addEventListener('pointerup', (ev) => {
    if (ev.pointerType !== 'touch') pointerButton(ev, false);
  });
  video.addEventListener('pointercancel', (ev) => {
    if (ev.pointerType === 'touch') return;
    for (const b of [...buttonsDown]) setButton(b, false);
  });
  const onMove = (ev) => {
    if (ev.pointerType === 'touch') return;
    // A second button pressed while one is held arrives as a "chorded" pointermove.
    if (ev.button >= 0 && ev.button < BUTTONS.length) {
      pointerButton(ev, (ev.buttons & BUTTON_BITS[ev.button]) !== 0);
    } else if (locked()) {
      queueRelative(ev);
    } else {
      queueMove(ev);
    }
  };
  video.addEventListener('pointermove', onMove);
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
    if (!locked()) {
      const p = position(ev);
      if (p) { pendingMove = p; flushMove(); } // scroll what is under the pointer
    }
    send({ t: 'w', dx, dy });
  }, { passive: false });

  // Keys and buttons held when focus leaves would stay stuck on the remote side.
  window.addEventListener('blur', releaseAll);
  document.addEventListener('visibilitychange', () => {
    if (document.hidden) releaseAll();
  });
  document.addEventListener('pointerlockchange', () => {
    rel.x = 0;
    rel.y = 0;
    video.classList.toggle('locked', locked());
    // The browser hides every cursor in pointer lock: the server draws it into the video.
    send({ t: 'lock', on: locked() });
  });

  return {
    releaseAll,
    forgetHeld,
    keyboard,
    togglePointerLock,
    get pointerLocked() { return locked(); },
    /** Sends a tap, drag or scroll for touch.js with the same bookkeeping as the mouse. */
    moveTo(p) { pendingMove = p; flushMove(); },
    button: setButton,
    position,
  };
}

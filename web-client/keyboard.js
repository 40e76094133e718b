/**
 * Keyboard → the `input` data channel: keysyms for keys, Unicode text for what an IME,
 * a dead key or an on-screen keyboard composes (docs/protocol.md, `k` and `txt`).
 *
 * Keys go through a hidden textarea that holds the focus while the user works in the
 * remote desktop. Plain keys are sent as keysyms and their default action is prevented,
 * so the textarea never sees them. Keys the browser hands to an input method (dead keys,
 * IME, mobile keyboards report `Dead`, `Process` or `Unidentified`) are left alone; the
 * text they produce arrives as `compositionend` or `input` events on the textarea and is
 * sent as `txt`, which the server types character by character, binding keysyms the
 * remote keymap lacks on the fly.
 */
import { keysymFor } from './keysyms.js';

const RETURN = 0xff0d;
const BACKSPACE = 0xff08;
const DELETE = 0xffff;
/** Longest `txt` message the server accepts, in characters. */
const MAX_TEXT = 1024;
/** How long a Ctrl+V waits for the clipboard to reach the remote side before it is typed. */
const PASTE_WAIT_MS = 300;

/** Ctrl/⌘+V and Shift+Insert: the remote paste shortcut, which first needs our clipboard. */
export function isPasteShortcut(ev) {
  return ((ev.ctrlKey || ev.metaKey) && !ev.altKey && (ev.key === 'v' || ev.key === 'V'))
    || (ev.shiftKey && ev.key === 'Insert');
}

/**
 * Wires the keyboard. `shortcuts(ev)` may claim a key combination for the client itself
 * (returns true) before it reaches the remote desktop; `addShortcut` adds more claimers.
 */
export function attachKeyboard(video, send, { shortcuts = () => false } = {}) {
  /** keysym sent on keydown, by `code`, so keyup releases the same keysym. */
  const keysDown = new Map();
  let composing = false;
  let pasteHandler = null;
  /** A paste shortcut waiting for the browser's `paste` event: { keysym, id, timer }. */
  let pendingPaste = null;
  /** Key combinations the page keeps for itself (addShortcut); the first to claim wins. */
  const claimers = [shortcuts];

  const sink = document.createElement('textarea');
  sink.id = 'keyboard-sink';
  sink.setAttribute('aria-label', 'Keyboard input for the remote desktop');
  sink.autocomplete = 'off';
  sink.setAttribute('autocorrect', 'off');
  sink.setAttribute('autocapitalize', 'off');
  sink.spellcheck = false;
  document.body.append(sink);

  const focus = () => sink.focus({ preventScroll: true });
  // Clicking the picture gives the keyboard to the remote desktop.
  video.addEventListener('focus', focus);
  // Not for touch: focusing a text field would pop up the on-screen keyboard on every tap.
  video.addEventListener('pointerdown', (ev) => {
    if (ev.pointerType !== 'touch') setTimeout(focus, 0);
  });

  function sendText(text) {
    for (let i = 0; i < text.length; i += MAX_TEXT) {
      send({ t: 'txt', s: [...text].slice(i, i + MAX_TEXT).join('') });
    }
  }

  function tap(keysym) {
    send({ t: 'k', k: keysym, d: true });
    send({ t: 'k', k: keysym, d: false });
  }

  function press(id, keysym) {
    keysDown.set(id, keysym);
    send({ t: 'k', k: keysym, d: true });
  }

  function flushPaste() {
    if (!pendingPaste) return;
    clearTimeout(pendingPaste.timer);
    const { id, keysym, released } = pendingPaste;
    pendingPaste = null;
    press(id, keysym);
    if (released) {
      keysDown.delete(id);
      send({ t: 'k', k: keysym, d: false });
    }
  }

  window.addEventListener('keydown', (ev) => {
    if (claimers.some((claims) => claims(ev))) {
      ev.preventDefault();
      return;
    }
    // Keys an input method is working on: its result arrives as text.
    if (ev.isComposing || composing || ev.keyCode === 229) return;
    const keysym = keysymFor(ev);
    if (keysym === null) return; // Dead, Process, Unidentified: let the browser compose
    const id = ev.code || ev.key;
    if (send.holdsBack?.('k')) {
      // Without control the keys are not for the remote desktop: the browser keeps them
      // (F5, Ctrl+F work for watchers), and the gate only shows its "watching" hint.
      send({ t: 'k', k: keysym, d: true });
      return;
    }
    // The remote X server autorepeats held keys itself; browser repeats would double it.
    if (ev.repeat && keysDown.has(id)) {
      ev.preventDefault();
      return;
    }
    if (pasteHandler && isPasteShortcut(ev)) {
      // Let the browser fire `paste` (our clipboard goes to the remote side first), then
      // type the shortcut so the remote application pastes what the user expects.
      flushPaste();
      pendingPaste = { id, keysym, released: false, timer: setTimeout(flushPaste, PASTE_WAIT_MS) };
      return;
    }
    ev.preventDefault(); // the remote desktop, not the browser, acts on keys
    press(id, keysym);
  });

  window.addEventListener('keyup', (ev) => {
    const id = ev.code || ev.key;
    if (pendingPaste && pendingPaste.id === id) {
      pendingPaste.released = true;
      return;
    }
    // Release what was pressed, even if Shift or the layout changed in between.
    const keysym = keysDown.get(id);
    if (keysym === undefined) return;
    ev.preventDefault();
    keysDown.delete(id);
    send({ t: 'k', k: keysym, d: false });
    // In the capture phase: a key pressed on the desktop is released there even when the
    // keyboard moved meanwhile into a panel or the toolbar (Ctrl+Shift+M does that while
    // Ctrl and Shift are still down), whose keepKeys hides its keys from the bubble phase.
  }, true);

  sink.addEventListener('paste', async (ev) => {
    ev.preventDefault(); // the text goes to the remote clipboard, not into the sink
    try {
      if (pasteHandler) await Promise.race([pasteHandler(ev), new Promise((r) => setTimeout(r, PASTE_WAIT_MS))]);
    } finally {
      flushPaste();
    }
  });

  sink.addEventListener('compositionstart', () => { composing = true; });
  sink.addEventListener('compositionend', (ev) => {
    composing = false;
    if (ev.data) sendText(ev.data);
    sink.value = '';
  });
  sink.addEventListener('input', (ev) => {
    if (composing || ev.isComposing || ev.inputType?.includes('Composition')) return;
    switch (ev.inputType) {
      case 'insertText':
      case 'insertReplacementText':
        if (ev.data) sendText(ev.data);
        break;
      case 'insertLineBreak':
      case 'insertParagraph':
        tap(RETURN);
        break;
      case 'deleteContentBackward':
        tap(BACKSPACE);
        break;
      case 'deleteContentForward':
        tap(DELETE);
        break;
      default:
        break;
    }
    sink.value = '';
  });

  /** Releases every key we hold (also sent to the server, which may know more). */
  function releaseAll() {
    keysDown.clear();
    if (pendingPaste) {
      clearTimeout(pendingPaste.timer);
      pendingPaste = null;
    }
  }

  // In fullscreen the Keyboard Lock API hands Ctrl+W, Alt+Tab, Escape and the like to
  // the page, so the remote desktop gets them (Chromium; elsewhere this is a no-op).
  document.addEventListener('fullscreenchange', () => {
    if (!navigator.keyboard?.lock) return;
    if (document.fullscreenElement) navigator.keyboard.lock().catch(() => {});
    else navigator.keyboard.unlock();
  });

  return {
    focus,
    sink,
    releaseAll,
    /**
     * `fn(KeyboardEvent) → true` claims a key combination for the page (another panel's
     * shortcut): it never reaches the remote desktop and the browser's default is prevented.
     */
    addShortcut(fn) { claimers.push(fn); },
    /** `fn(ClipboardEvent) → Promise`: runs before a paste shortcut is typed remotely. */
    setPasteHandler(fn) { pasteHandler = fn; },
  };
}

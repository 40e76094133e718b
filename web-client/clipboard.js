/**
 * Clipboard sync with the remote desktop (docs/protocol.md, "Clipboard"): UTF-8 text
 * and PNG images, both ways, as `clip` chunks on the `input` data channel.
 *
 * Remote → here: chunks are joined and written with the async Clipboard API. Browsers
 * refuse that without permission, focus or a secure context (Firefox, plain HTTP): then
 * the Clipboard panel opens by itself with the content in it, for the user to copy (it
 * does not take the keyboard from the desktop).
 *
 * Here → remote: when the page gains focus, the picture is clicked, or the user presses
 * Ctrl+V (whose `paste` event carries the clipboard without any permission prompt), the
 * local clipboard is read and sent if it differs from what we last sent or received.
 * The panel's "Send to remote" is the manual fallback.
 *
 * Who may do what (room.js): a `viewer` never touches the local clipboard and has no
 * Clipboard button; an owner or guest without control receives the remote clipboard but
 * sends nothing of its own (the server would refuse it) and reads nothing to send.
 */
import * as channel from './channel.js';
import { el, keepKeys } from './dom.js';
import { registerPanel } from './panels.js';
import { showNotice } from './notice.js';

/**
 * Raw bytes per chunk: 60 KiB as base64, so a message stays under the 64 KiB SCTP
 * max-message-size the server announces (the browser refuses bigger messages).
 */
export const CHUNK_RAW = 45 * 1024;
/** Send the next chunk only while less than this is queued on the channel. */
const PACE_BYTES = 512 * 1024;
/** The server's default limit (--clipboard-max-bytes); larger content is not sent. */
const MAX_BYTES = 16 * 1024 * 1024;
const MIMES = ['text/plain', 'image/png'];

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function toBase64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(b64) {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

/** The `clip` messages carrying `clip` ({mime, bytes}) as transfer `id`. */
export function chunkMessages(id, clip) {
  const n = Math.max(1, Math.ceil(clip.bytes.length / CHUNK_RAW));
  const out = [];
  for (let i = 0; i < n; i++) {
    const data = toBase64(clip.bytes.subarray(i * CHUNK_RAW, (i + 1) * CHUNK_RAW));
    out.push({ t: 'clip', id, mime: clip.mime, seq: i, last: i === n - 1, data });
  }
  return out;
}

/**
 * Joins `clip` chunks. Chunk 0 starts a transfer (dropping an unfinished one: the server
 * moved on to newer content); anything out of sequence drops the transfer and throws.
 */
export class Reassembler {
  constructor(maxBytes = MAX_BYTES) {
    this.maxBytes = maxBytes;
    this.current = null;
  }

  /** Returns {mime, bytes} when `msg` completes a transfer, else null. */
  push(msg) {
    if (msg.seq === 0) {
      if (!MIMES.includes(msg.mime)) throw new Error(`unsupported clipboard type ${msg.mime}`);
      this.current = { id: msg.id, mime: msg.mime, next: 0, parts: [], size: 0 };
    }
    const cur = this.current;
    if (!cur || cur.id !== msg.id || cur.next !== msg.seq || cur.mime !== msg.mime) {
      this.current = null;
      throw new Error(`clipboard chunk ${msg.id}/${msg.seq} out of sequence`);
    }
    const part = fromBase64(msg.data);
    cur.size += part.length;
    if (cur.size > this.maxBytes) {
      this.current = null;
      throw new Error('clipboard content too large');
    }
    cur.parts.push(part);
    cur.next += 1;
    if (!msg.last) return null;
    this.current = null;
    const bytes = new Uint8Array(cur.size);
    let at = 0;
    for (const p of cur.parts) {
      bytes.set(p, at);
      at += p.length;
    }
    return { mime: cur.mime, bytes };
  }
}

/** A cheap fingerprint (type, size, FNV-1a) to tell whether content changed. */
export function fingerprint(clip) {
  let h = 0x811c9dc5;
  for (let i = 0; i < clip.bytes.length; i++) h = Math.imul(h ^ clip.bytes[i], 0x01000193);
  return `${clip.mime}:${clip.bytes.length}:${(h >>> 0).toString(16)}`;
}

const textClip = (text) => ({ mime: 'text/plain', bytes: encoder.encode(text) });

/** The clipboard content of a `paste` event: a PNG image if there is one, else text. */
async function fromPasteEvent(ev) {
  const data = ev.clipboardData;
  if (!data) return null;
  for (const item of data.items || []) {
    if (item.kind === 'file' && item.type === 'image/png') {
      const file = item.getAsFile();
      if (file) return { mime: 'image/png', bytes: new Uint8Array(await file.arrayBuffer()) };
    }
  }
  const text = data.getData('text/plain');
  return text ? textClip(text) : null;
}

/**
 * Wires the clipboard; `keyboard` is input.js's keyboard (for the Ctrl+V hook), `send`
 * delivers one data-channel message (app.js's, which holds back `clip` without control).
 */
export function attachClipboard(video, keyboard, send) {
  const reasm = new Reassembler();
  const state = {
    /** False once the server said clipboard sync is off (`clipoff`). */
    enabled: true,
    /** Our role: a viewer has no clipboard at all. */
    role: null,
    /** Whether we hold control: only then is local content read and sent. */
    control: false,
    /** Fingerprint of what we last sent or received: not sent again. */
    lastKey: null,
    /** Last content from the remote side: {mime, bytes}. */
    remote: null,
    received: 0,
    sent: 0,
    /** Why the last local clipboard write or read failed, for the notice and tests. */
    lastError: null,
  };
  let nextId = 0;
  let queue = Promise.resolve();
  let pendingWrite = null;
  let imageUrl = null;

  // --- the panel -----------------------------------------------------------------
  const toolbar = document.getElementById('toolbar');
  const button = el('button', { type: 'button', id: 'clipboard-button', textContent: 'Clipboard',
    title: 'Clipboard: copy from and paste to the remote desktop' });
  const text = el('textarea', { id: 'clipboard-text', rows: 6, spellcheck: false,
    placeholder: 'Remote clipboard text shows here. Paste here and press "Send to remote".' });
  text.setAttribute('aria-label', 'Clipboard text');
  const image = el('img', { id: 'clipboard-image', alt: 'Remote clipboard image', hidden: true });
  const sendButton = el('button', { type: 'button', textContent: 'Send to remote' });
  const copyButton = el('button', { type: 'button', textContent: 'Copy here' });
  const status = el('p', { className: 'hint', id: 'clipboard-status' });
  const panel = el('section', { id: 'clipboard-panel', className: 'panel', hidden: true }, [
    el('h2', { textContent: 'Clipboard' }),
    text,
    image,
    el('div', { className: 'row' }, [sendButton, copyButton]),
    status,
  ]);
  document.body.append(panel);
  toolbar?.append(button);
  keepKeys(panel);

  const allowed = () => state.enabled && state.role !== 'viewer';
  const maySend = () => allowed() && state.control;

  function showButton() {
    button.hidden = !allowed();
    if (button.hidden) panel.hidden = true;
  }
  /** Opens or closes the panel; only the user's own click moves the keyboard into it. */
  function showPanel(open, { focus = false } = {}) {
    panel.hidden = !open;
    if (open && focus) text.focus({ preventScroll: true });
  }
  registerPanel({ panel, button, label: 'Clipboard', setOpen: showPanel });
  button.addEventListener('click', () => showPanel(panel.hidden, { focus: true }));
  // A pasted image in the panel is sent as it is.
  text.addEventListener('paste', async (ev) => {
    const clip = await fromPasteEvent(ev);
    if (clip?.mime === 'image/png') {
      ev.preventDefault();
      showImage(clip);
      enqueue(() => offer(clip, true));
    }
  });
  sendButton.addEventListener('click', () => {
    enqueue(() => offer(textClip(text.value), true)).then((ok) => {
      if (ok) status.textContent = 'Sent to the remote clipboard.';
      else if (!state.control) status.textContent = 'Not sent: only the participant in control can paste into the desktop.';
      else status.textContent = 'Not sent (not connected?).';
    });
  });
  copyButton.addEventListener('click', () => {
    if (state.remote) writeLocal(state.remote).then((ok) => {
      status.textContent = ok ? 'Copied to this computer\'s clipboard.' : 'Copy refused here: select the text and copy it yourself.';
    });
  });

  function showImage(clip) {
    if (imageUrl) URL.revokeObjectURL(imageUrl);
    imageUrl = URL.createObjectURL(new Blob([clip.bytes], { type: 'image/png' }));
    image.src = imageUrl;
    image.hidden = false;
  }

  function showRemote(clip) {
    if (clip.mime === 'text/plain') {
      text.value = decoder.decode(clip.bytes);
      image.hidden = true;
    } else {
      text.value = '';
      showImage(clip);
    }
  }

  // --- remote → local --------------------------------------------------------------
  async function writeLocal(clip) {
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error('no clipboard access on a plain-HTTP page');
      if (clip.mime === 'text/plain') {
        await navigator.clipboard.writeText(decoder.decode(clip.bytes));
      } else {
        await navigator.clipboard.write([new ClipboardItem({ 'image/png': new Blob([clip.bytes], { type: 'image/png' }) })]);
      }
      state.lastError = null;
      return true;
    } catch (err) {
      state.lastError = err.message || String(err);
      return false;
    }
  }

  async function received(clip) {
    if (!allowed()) return; // a viewer's page keeps away from the local clipboard
    state.remote = clip;
    state.lastKey = fingerprint(clip);
    state.received += 1;
    showRemote(clip);
    if (await writeLocal(clip)) {
      pendingWrite = null;
    } else {
      // Retried when the page gets focus back; meanwhile the panel holds it, open.
      pendingWrite = clip;
      status.textContent = 'This browser blocked direct clipboard access: copy from here.';
      if (panel.hidden) {
        console.info(`kelpie: the remote clipboard is in the Clipboard panel (${state.lastError})`);
        showPanel(true);
        showNotice('Remote clipboard received: it is in the Clipboard panel (this browser blocked direct access).');
      }
    }
  }

  channel.on('clip', (msg) => {
    let clip;
    try {
      clip = reasm.push(msg);
    } catch (err) {
      console.warn(`kelpie: ${err.message}`);
      return;
    }
    if (clip) received(clip);
  });
  channel.on('clipoff', () => {
    state.enabled = false;
    showButton();
  });

  // --- local → remote --------------------------------------------------------------
  function enqueue(fn) {
    const p = queue.then(fn, fn);
    queue = p.catch(() => {});
    return p;
  }

  /** Sends `clip` unless it is what we last sent or received (`force`: send anyway). */
  async function offer(clip, force = false) {
    if (!maySend() || !channel.isOpen()) return false;
    const key = fingerprint(clip);
    if (key === state.lastKey && !force) return false;
    if (clip.bytes.length > MAX_BYTES) {
      showNotice('Clipboard content too large to send to the remote desktop.');
      return false;
    }
    state.lastKey = key;
    const id = ++nextId;
    for (const msg of chunkMessages(id, clip)) {
      const until = Date.now() + 30_000;
      while (channel.buffered() > PACE_BYTES && channel.isOpen() && Date.now() < until) await sleep(10);
      if (!send(msg)) {
        state.lastKey = null; // try again on the next occasion
        return false;
      }
    }
    state.sent += 1;
    return true;
  }

  /** Whether reading the clipboard is allowed without a prompt we did not ask for. */
  async function mayRead() {
    if (!navigator.clipboard?.read && !navigator.clipboard?.readText) return false;
    try {
      const p = await navigator.permissions.query({ name: 'clipboard-read' });
      return p.state !== 'denied';
    } catch {
      return false; // Firefox has no such permission: its read() pops up a menu; use paste
    }
  }

  async function readLocal() {
    try {
      if (navigator.clipboard.read) {
        const items = await navigator.clipboard.read();
        for (const item of items) {
          if (item.types.includes('image/png')) {
            const blob = await item.getType('image/png');
            return { mime: 'image/png', bytes: new Uint8Array(await blob.arrayBuffer()) };
          }
        }
        for (const item of items) {
          if (item.types.includes('text/plain')) return textClip(await (await item.getType('text/plain')).text());
        }
        return null;
      }
      return textClip(await navigator.clipboard.readText());
    } catch (err) {
      state.lastError = err.message || String(err);
      return null;
    }
  }

  /** Reads the local clipboard and sends it if it changed. Resolves true if sent. */
  function sync() {
    return enqueue(async () => {
      if (!maySend() || !channel.isOpen() || !(await mayRead())) return false;
      const clip = await readLocal();
      return clip ? offer(clip) : false;
    });
  }

  window.addEventListener('focus', () => {
    if (pendingWrite && allowed()) writeLocal(pendingWrite).then((ok) => { if (ok) pendingWrite = null; });
    sync();
  });
  video.addEventListener('pointerdown', () => { sync(); });
  keyboard?.setPasteHandler?.(async (ev) => {
    const clip = await fromPasteEvent(ev);
    if (clip) await enqueue(() => offer(clip));
  });
  // A new session: the server will push its clipboard; ours goes once we hold control
  // (app.js calls `resync`, also when control comes to us later).
  channel.onOpen(() => { reasm.current = null; });

  /** Our role and whether we hold control, from room.js (app.js calls it on every change). */
  function setAccess({ role, control }) {
    state.role = role;
    state.control = !!control;
    if (!allowed()) pendingWrite = null;
    showButton();
  }

  return {
    sync,
    setAccess,
    /** We just got control on an open channel: our clipboard goes if we have focus. */
    resync: () => (document.hasFocus() ? sync() : Promise.resolve(false)),
    /** Sends content now, e.g. from tests: `{mime, bytes}` or a string. */
    send: (clip) => enqueue(() => offer(typeof clip === 'string' ? textClip(clip) : clip, true)),
    /** False when the server turned clipboard sync off or this page is view only. */
    get enabled() { return allowed(); },
    get last() { return state.remote; },
    get lastText() { return state.remote?.mime === 'text/plain' ? decoder.decode(state.remote.bytes) : null; },
    get received() { return state.received; },
    get sent() { return state.sent; },
    get lastError() { return state.lastError; },
    panel,
  };
}

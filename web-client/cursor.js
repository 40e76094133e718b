/**
 * Remote cursor: the server sends the X cursor's image and hotspot (`{t:'cursor'}`, see
 * docs/protocol.md) and we make it the CSS cursor of the video element. The browser then
 * draws it at the local mouse position with no round trip, and it changes as soon as the
 * desktop's cursor does, without waiting for a video frame.
 *
 * Images are cached by serial: the server sends each image once, then only its serial.
 * The cache is an LRU of CACHE entries, touched on every message that names an image —
 * the server mirrors it with a smaller window, so a serial it sends alone is always here.
 *
 * When the video is shown scaled (object-fit: contain on a smaller or larger element),
 * the image is redrawn at the same scale through a canvas, so the cursor keeps its size
 * relative to the desktop. Browsers refuse CSS cursors over 128 px (Chromium), so larger
 * results are scaled down to fit.
 */
import * as channel from './channel.js';

/** Images kept (the server's `BROWSER_CACHE`; it assumes at least this many). */
const CACHE = 64;
/** The largest CSS cursor Chromium and Firefox draw. */
const MAX_CSS_CURSOR = 128;
/** Scales this close to 1 use the original image (no resampling blur). */
const SCALE_EPSILON = 0.02;

/** For tests and debugging: what is shown now. */
export const cursorInfo = {
  serial: null,
  hidden: false,
  scale: 1,
  css: '',
  /** Messages with an image, and messages naming a cached one. */
  received: { images: 0, bySerial: 0 },
};

/**
 * Shows the remote cursor on `video` from now on. Returns nothing; state is in `cursorInfo`.
 */
export function attachCursor(video) {
  /** serial → {png, w, h, hx, hy, scaled: {key, css} of the last scale drawn} */
  const images = new Map();
  /** The message now in force, resolved to an image entry or a keyword. */
  let current = null;
  /** Bumped on each change, so a slow canvas render of an older cursor is dropped. */
  let generation = 0;

  function remember(serial, entry) {
    images.delete(serial);
    images.set(serial, entry);
    while (images.size > CACHE) images.delete(images.keys().next().value);
  }

  function setCss(value) {
    cursorInfo.css = value;
    video.style.cursor = value;
  }

  /** The factor the picture is drawn at: object-fit: contain of the video's own size. */
  function displayScale() {
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    if (!vw || !vh || !video.clientWidth || !video.clientHeight) return 1;
    return Math.min(video.clientWidth / vw, video.clientHeight / vh);
  }

  async function scaledCss(entry, scale) {
    const key = scale.toFixed(3);
    if (entry.scaled?.key === key) return entry.scaled.css;
    const w = Math.max(1, Math.round(entry.w * scale));
    const h = Math.max(1, Math.round(entry.h * scale));
    const img = new Image();
    img.src = `data:image/png;base64,${entry.png}`;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    const ctx = canvas.getContext('2d');
    ctx.imageSmoothingQuality = 'high';
    ctx.drawImage(img, 0, 0, w, h);
    const hx = Math.min(w - 1, Math.round(entry.hx * scale));
    const hy = Math.min(h - 1, Math.round(entry.hy * scale));
    const css = `url("${canvas.toDataURL('image/png')}") ${hx} ${hy}, auto`;
    entry.scaled = { key, css }; // one scale at a time: resizing the window must not pile up images
    return css;
  }

  /** Applies `current` at the present display scale. */
  async function render() {
    const mine = ++generation;
    const cur = current;
    if (!cur) return;
    cursorInfo.serial = cur.serial;
    cursorInfo.hidden = cur.kind === 'hidden';
    if (cur.kind === 'hidden') return setCss('none');
    if (cur.kind === 'default') return setCss('default');
    const e = cur.entry;
    // Fit within the browser's limit whatever the display scale.
    const scale = Math.min(displayScale(), MAX_CSS_CURSOR / Math.max(e.w, e.h));
    cursorInfo.scale = scale;
    if (Math.abs(scale - 1) < SCALE_EPSILON) {
      return setCss(`url("data:image/png;base64,${e.png}") ${e.hx} ${e.hy}, auto`);
    }
    try {
      const css = await scaledCss(e, scale);
      if (mine === generation) setCss(css);
    } catch (err) {
      console.warn('kelpie: cannot draw the remote cursor', err);
      if (mine === generation) setCss('default');
    }
  }

  channel.on('cursor', (msg) => {
    if (!Number.isInteger(msg.serial)) return;
    if (msg.hidden) {
      current = { serial: msg.serial, kind: 'hidden' };
    } else if (typeof msg.png === 'string') {
      const entry = { png: msg.png, w: msg.w | 0, h: msg.h | 0, hx: msg.hx | 0, hy: msg.hy | 0, scaled: null };
      if (entry.w <= 0 || entry.h <= 0) return;
      remember(msg.serial, entry);
      cursorInfo.received.images++;
      current = { serial: msg.serial, kind: 'image', entry };
    } else if (images.has(msg.serial)) {
      const entry = images.get(msg.serial);
      remember(msg.serial, entry);
      cursorInfo.received.bySerial++;
      current = { serial: msg.serial, kind: 'image', entry };
    } else {
      // Too large to send (`too_large`), or a serial we no longer hold: the plain arrow
      // beats a stale shape.
      current = { serial: msg.serial, kind: 'default' };
    }
    render();
  });

  // The display scale changes with the window and with the remote screen size.
  new ResizeObserver(() => render()).observe(video);
  video.addEventListener('resize', () => render());
}

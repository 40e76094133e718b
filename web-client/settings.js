/**
 * The settings panel and what it controls: frame rate and bitrate (sent to the server),
 * resize mode (the remote screen follows this window × devicePixelRatio, or keeps its
 * size and is scaled here), scaling, pointer lock, fullscreen and the on-screen keyboard.
 * Choices are remembered per browser in localStorage.
 */
import { registerPanel } from './panels.js';
import { el, keepKeys } from './dom.js';

const STORE_KEY = 'kelpie.settings';
/** Quiet time after the last window resize before the remote screen follows. */
const RESIZE_DEBOUNCE_MS = 300;

export const DEFAULTS = Object.freeze({
  /** 0 = the server's setting. */
  fps: 0,
  kbps: 0,
  /** 'remote': the remote screen is resized to fit; 'scale': it keeps its size. */
  resize: 'remote',
  /** 'fit': scale to the window; 'shrink': never enlarge past 1 remote px per device px. */
  scaling: 'fit',
  /** 'auto': WebRTC, falling back to the WebSocket; or force one of them. */
  transport: 'auto',
  /**
   * The desktop's sound over WebRTC: 'low-latency' (a data channel into the page's own
   * player, signalling.js #openSoundChannel) or 'webrtc' (the RTP track and the browser's
   * player: deeper buffers, which ride out a lossy network better). Where the page cannot
   * decode Opus itself (no WebCodecs audio), it is always the RTP track.
   */
  sound: 'low-latency',
});

/** Settings merged over the defaults; unknown or malformed stored values are ignored. */
export function loadSettings(storage = globalThis.localStorage) {
  let stored = {};
  try {
    stored = JSON.parse(storage?.getItem(STORE_KEY) || '{}') || {};
  } catch { /* corrupt or blocked storage: defaults */ }
  const out = { ...DEFAULTS };
  if (Number.isInteger(stored.fps) && stored.fps >= 0 && stored.fps <= 120) out.fps = stored.fps;
  if (Number.isInteger(stored.kbps) && stored.kbps >= 0 && stored.kbps <= 200000) out.kbps = stored.kbps;
  if (['remote', 'scale'].includes(stored.resize)) out.resize = stored.resize;
  if (['fit', 'shrink'].includes(stored.scaling)) out.scaling = stored.scaling;
  if (['auto', 'webrtc', 'websocket'].includes(stored.transport)) out.transport = stored.transport;
  if (['low-latency', 'webrtc'].includes(stored.sound)) out.sound = stored.sound;
  return out;
}

function saveSettings(s, storage = globalThis.localStorage) {
  try {
    storage?.setItem(STORE_KEY, JSON.stringify(s));
  } catch { /* private mode: not remembered */ }
}

/**
 * Device pixels per CSS pixel for the remote screen. On a phone or tablet (a coarse
 * pointer) the full device ratio (3 on many phones) would make the desktop's text a few
 * CSS pixels tall: at most 1.5 there, with the desktop's DPI set to match.
 */
export function remoteScale(dpr, coarse) {
  const d = Number.isFinite(dpr) && dpr > 0 ? dpr : 1;
  return coarse ? Math.min(d, 1.5) : d;
}

/** The remote size for this window: device pixels, even (H.264 4:2:0 needs it). */
export function fitSize(cssWidth, cssHeight, dpr) {
  const even = (v) => Math.max(64, Math.floor(v / 2) * 2);
  return { w: even(cssWidth * dpr), h: even(cssHeight * dpr) };
}

/** 8000 → "8 Mbit/s", 1500 → "1.5 Mbit/s", 500 → "500 kbit/s". */
export function formatKbps(kbps) {
  return kbps >= 1000 ? `${Math.round(kbps / 100) / 10} Mbit/s` : `${kbps} kbit/s`;
}

function select(name, options, value) {
  const s = el('select', { name });
  for (const [v, label] of options) s.append(el('option', { value: String(v), textContent: label }));
  s.value = String(value);
  return s;
}

/**
 * Wires the panel. `send` delivers a data-channel message and returns false when it could
 * not go out: app.js passes one that drops stream and size changes while this page does
 * not hold control, so a watcher's window never resizes the remote screen.
 */
export function attachSettings(video, input, send, { onTransport = () => {}, transport = () => null } = {}) {
  const settings = loadSettings();
  const toolbar = document.getElementById('toolbar');

  const fps = select('fps', [[0, 'server default'], [15, '15'], [24, '24'], [30, '30'], [60, '60']], settings.fps);
  const kbps = select('kbps', [[0, 'server default'], [2000, '2 Mbit/s'], [4000, '4 Mbit/s'], [8000, '8 Mbit/s'],
    [16000, '16 Mbit/s'], [30000, '30 Mbit/s']], settings.kbps);
  const resize = select('resize', [['remote', 'resize remote to fit'], ['scale', 'keep remote size']],
    settings.resize);
  const scaling = select('scaling', [['fit', 'fit to window'], ['shrink', 'shrink only (crisp)']],
    settings.scaling);
  const transportChoice = select('transport', [['auto', 'automatic'], ['webrtc', 'WebRTC'],
    ['websocket', 'WebSocket (any proxy)']], settings.transport);
  const transportInfo = el('p', { id: 'transport-info', className: 'hint' });
  const sound = select('sound', [['low-latency', 'low latency'], ['webrtc', 'smooth (browser\'s player)']],
    settings.sound);
  const lockButton = el('button', { type: 'button', textContent: 'Pointer lock' });
  const fullButton = el('button', { type: 'button', textContent: 'Fullscreen' });
  const controlHint = el('p', { id: 'settings-control-hint', className: 'hint', hidden: true,
    textContent: 'Only the participant in control changes stream settings.' });
  const everyoneHint = el('p', { id: 'settings-everyone-hint', className: 'hint',
    textContent: 'Frame rate and bitrate change the stream for everyone watching.' });
  const panel = el('section', { id: 'settings-panel', className: 'panel', hidden: true }, [
    el('h2', { textContent: 'Settings' }),
    el('label', {}, ['Frame rate', fps]),
    el('label', {}, ['Bitrate', kbps]),
    everyoneHint,
    controlHint,
    el('label', {}, ['Screen size', resize]),
    el('label', {}, ['Scaling', scaling]),
    el('label', {}, ['Transport', transportChoice]),
    transportInfo,
    el('label', {}, ['Sound', sound]),
    el('p', { className: 'hint', textContent: 'Low latency plays the sound about 50 ms sooner; smooth copes '
      + 'better with a lossy network. Applies from the next connection.' }),
    el('label', {}, ['Relative mouse (3D, games)', lockButton]),
    el('label', {}, ['Whole screen', fullButton]),
    el('p', { className: 'hint', textContent:
      'Ctrl+Alt+Shift+L toggles pointer lock; Esc leaves it. In fullscreen, shortcuts like Ctrl+W and Alt+Tab '
      + 'go to the remote desktop (Chromium). Settings are remembered in this browser.' }),
  ]);
  document.body.append(panel);
  keepKeys(panel); // arrow keys in a select change it instead of reaching the desktop

  const gear = el('button', { type: 'button', title: 'Settings', textContent: '⚙' });
  gear.setAttribute('aria-controls', panel.id);
  /** Which transport carries media and why, refreshed while the panel is open. */
  function showTransport() {
    const t = transport();
    const text = t ? `Media: ${t.kind === 'websocket' ? 'WebSocket' : 'WebRTC'} (${t.reason})` : 'Media: not connected';
    if (transportInfo.textContent !== text) transportInfo.textContent = text;
  }
  const settingsPanel = registerPanel({
    panel,
    button: gear,
    label: 'Settings',
    setOpen(open) {
      if (open) showTransport();
      panel.hidden = !open;
    },
  });
  gear.addEventListener('click', () => (settingsPanel.isOpen ? settingsPanel.close() : settingsPanel.open()));
  const kbd = el('button', { type: 'button', id: 'keyboard-button', title: 'On-screen keyboard', textContent: '⌨', 'aria-label': 'Keyboard',
    'aria-pressed': 'false' });
  // A tap is a user gesture: focusing the text sink brings up the phone's keyboard, and
  // taking the focus away puts it down again.
  const sink = input.keyboard.sink;
  kbd.addEventListener('pointerdown', (ev) => ev.preventDefault()); // keep the sink's focus
  kbd.addEventListener('click', () => {
    if (document.activeElement === sink) sink.blur();
    else input.keyboard.focus();
  });
  sink?.addEventListener('focus', () => kbd.setAttribute('aria-pressed', 'true'));
  sink?.addEventListener('blur', () => kbd.setAttribute('aria-pressed', 'false'));
  toolbar?.append(gear, kbd);

  lockButton.addEventListener('click', () => input.togglePointerLock());
  fullButton.addEventListener('click', () => toggleFullscreen());

  function toggleFullscreen() {
    if (document.fullscreenElement) return document.exitFullscreen();
    return document.documentElement.requestFullscreen?.({ navigationUI: 'hide' }).catch(() => {});
  }

  function sendStream() {
    const msg = { t: 'set' };
    if (settings.fps) msg.fps = settings.fps;
    if (settings.kbps) msg.kbps = settings.kbps;
    if (msg.fps || msg.kbps) send(msg);
  }

  let resizeTimer = 0;
  let lastSize = '';
  function sendSize(force = false) {
    if (settings.resize !== 'remote') return;
    const coarse = window.matchMedia?.('(pointer: coarse)').matches ?? false;
    const dpr = remoteScale(window.devicePixelRatio || 1, coarse);
    const { w, h } = fitSize(window.innerWidth, window.innerHeight, dpr);
    const key = `${w}x${h}@${dpr}`;
    if (!force && key === lastSize) return;
    if (send({ t: 'resize', w, h, dpr })) lastSize = key;
  }
  window.addEventListener('resize', () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(sendSize, RESIZE_DEBOUNCE_MS);
  });

  function applyScaling() {
    document.body.classList.toggle('shrink', settings.scaling === 'shrink');
    const dpr = window.devicePixelRatio || 1;
    if (video.videoWidth) {
      document.body.style.setProperty('--remote-css-width', `${video.videoWidth / dpr}px`);
      document.body.style.setProperty('--remote-css-height', `${video.videoHeight / dpr}px`);
    }
  }
  video.addEventListener('resize', applyScaling); // the stream's size changed

  function changed() {
    settings.fps = Number(fps.value);
    settings.kbps = Number(kbps.value);
    settings.resize = resize.value;
    settings.scaling = scaling.value;
    settings.transport = transportChoice.value;
    settings.sound = sound.value;
    saveSettings(settings);
    applyScaling();
  }
  fps.addEventListener('change', () => { changed(); sendStream(); });
  kbps.addEventListener('change', () => { changed(); sendStream(); });
  resize.addEventListener('change', () => { changed(); sendSize(true); });
  scaling.addEventListener('change', changed);
  sound.addEventListener('change', changed);
  transportChoice.addEventListener('change', () => { changed(); onTransport(settings.transport); showTransport(); });

  /**
   * Tells the server what we want: app.js calls this whenever this page starts holding
   * control on an open channel (first connect, a reconnect, control given to us).
   */
  function resend() {
    lastSize = '';
    sendStream();
    sendSize(true);
  }

  /**
   * Frame rate and bitrate apply to everyone's stream, so only the controller picks them;
   * the others keep their remembered choice, sent once they get control.
   */
  function setControl(has) {
    fps.disabled = kbps.disabled = !has;
    controlHint.hidden = has;
  }

  /**
   * The server's ceilings (the welcome's `stream`): "server default" says what it is, and
   * choices above a ceiling are offered disabled (the server would clamp them).
   */
  function setLimits(stream) {
    const f = Number(stream?.framerate);
    const b = Number(stream?.bitrate_kbps);
    if (!Number.isFinite(f) || !Number.isFinite(b) || f <= 0 || b <= 0) return;
    fps.options[0].textContent = `server default (${f} fps)`;
    kbps.options[0].textContent = `server default (${formatKbps(b)})`;
    for (const o of fps.options) if (Number(o.value) > f) o.disabled = true;
    for (const o of kbps.options) if (Number(o.value) > b) o.disabled = true;
  }

  applyScaling();

  return { settings, toggleFullscreen, sendSize, resend, setControl, showTransport, setLimits };
}

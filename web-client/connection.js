/**
 * The connection overlay: when there is no picture for a few seconds, say which step of
 * the connection is stuck (from the attempt's own timings: WebSocket, welcome, offer, ICE,
 * DTLS, first frame), what the page tries next, what an administrator can change, and
 * offer "Retry now". The last picture stays under it, dimmed, instead of a black screen.
 * A welcome from another run of the server (its `boot`) means the desktop was restarted:
 * the page says so once the picture is back.
 *
 * `describe` is pure (tested in web-client-connection.test.mjs); `attachConnection` is
 * the DOM around it.
 */
import { el } from './dom.js';

/** No picture for this long into an attempt: the overlay explains. */
export const OVERLAY_AFTER_MS = 4000;

const ADMIN_MEDIA = 'An administrator can open the UDP ports (--udp-ports), add a TURN server (--turn-url), '
  + 'or allow the WebSocket transport (--transport auto).';

/**
 * What to say about an attempt without a picture. `timings`: the attempt's marks
 * (signalling.js); `kind`: 'webrtc', 'websocket' or null; `wasConnected`: this page had
 * reached the server before; `socketNext`: the page will move to the WebSocket if WebRTC
 * gives nothing. Returns {step, title, detail, admin} (admin may be '').
 */
export function describe({ timings = {}, kind = null, wasConnected = false, socketNext = false }) {
  if (!('ws_open' in timings)) {
    return wasConnected
      ? { step: 'server', title: 'The server is gone', detail: 'Kelpie stopped or restarted, or the network between here and it dropped. The page keeps trying to reconnect.', admin: '' }
      : { step: 'websocket', title: 'Cannot reach the server', detail: 'The page cannot open its WebSocket to Kelpie. A proxy in between may not pass WebSocket upgrades.', admin: 'An administrator can check that the proxy forwards Upgrade and Connection headers.' };
  }
  if (!('welcome' in timings)) {
    return { step: 'welcome', title: 'Waiting for the server', detail: 'The server took the connection but has not greeted this page yet (it may be busy or full).', admin: '' };
  }
  if (kind === 'websocket') {
    return { step: 'first_frame', title: 'Waiting for the first picture', detail: 'Connected over the WebSocket; the first picture is on its way.', admin: '' };
  }
  if (!('offer' in timings)) {
    return { step: 'offer', title: 'Waiting for the server\'s offer', detail: 'The server is preparing the media connection (WebRTC offer).', admin: '' };
  }
  if (!('ice_connected' in timings)) {
    return {
      step: 'ice',
      title: 'No network path for the picture (ICE)',
      detail: `The browser and the server found no route for WebRTC's media: a firewall that blocks UDP, or a proxy that carries only HTTP.${socketNext ? ' Trying the WebSocket transport next.' : ''}`,
      admin: ADMIN_MEDIA,
    };
  }
  if (!('dtls_connected' in timings)) {
    return { step: 'dtls', title: 'Securing the media connection (DTLS)', detail: 'A route was found; the encrypted media connection is being set up.', admin: '' };
  }
  return { step: 'first_frame', title: 'Waiting for the first picture', detail: 'The media connection is up; the first picture is on its way.', admin: '' };
}

/** "reconnecting in 4 s" → ["reconnecting", " in 4 s"]: the second part is a countdown. */
export function splitCountdown(text) {
  const m = /^(.*?)( in \d+ s| \(retrying in \d+ s\))$/.exec(text);
  return m ? [m[1], m[2]] : [text, ''];
}

/**
 * The overlay on the page. `session` is signalling.js's Session; `video` the screen.
 * Call `update()` on every state change; it also runs once a second while needed.
 */
export function attachConnection({ session, video, retry }) {
  const title = el('h2', { id: 'connection-title' });
  const detail = el('p', { id: 'connection-detail' });
  const admin = el('p', { id: 'connection-admin', className: 'hint' });
  const countdown = el('p', { id: 'connection-next', className: 'hint' });
  const retryButton = el('button', { type: 'button', id: 'connection-retry', textContent: 'Retry now' });
  // Announced when the step changes, not every second (the countdown is not live).
  const live = el('p', { className: 'visually-hidden', role: 'status', 'aria-live': 'polite' });
  const overlay = el('section', { id: 'connection', className: 'connection', hidden: true, role: 'dialog',
    'aria-labelledby': 'connection-title', 'aria-describedby': 'connection-detail' },
  [title, detail, admin, countdown, retryButton, live]);
  const still = el('canvas', { id: 'last-frame', className: 'last-frame', hidden: true, 'aria-hidden': 'true' });
  document.body.append(still, overlay);
  retryButton.addEventListener('click', () => retry());

  let wasConnected = false;
  let shownStep = null;
  let timer = 0;

  /** Keeps the current picture, dimmed, before its stream goes. */
  function keepLastFrame() {
    if (!video.videoWidth || !video.videoHeight) return;
    try {
      still.width = video.videoWidth;
      still.height = video.videoHeight;
      still.getContext('2d').drawImage(video, 0, 0);
      still.hidden = false;
    } catch { /* a frame that cannot be drawn: stay black */ }
  }

  function hide() {
    overlay.hidden = true;
    shownStep = null;
  }

  function update() {
    const t = session.timings || {};
    if (session.state === 'connected' && 'welcome' in t) wasConnected = true;
    if (session.stopped) return hide();
    const lost = session.state === 'reconnecting' || session.state === 'error';
    if (!lost && t.first_frame) {
      hide();
      still.hidden = true;
      return;
    }
    let d;
    if (lost) {
      // Between attempts the timings are the ended attempt's: it had a picture (the
      // connection was lost), or it is the step it got stuck at.
      d = t.first_frame ? describe({ wasConnected: true }) : describe({ timings: t, kind: kindOf(), wasConnected });
    } else if (performance.now() - (t.ws_start ?? performance.now()) < OVERLAY_AFTER_MS) {
      // A fresh attempt: what was shown stays until this one has had its chance.
      if (overlay.hidden) return;
      d = null;
    } else {
      d = describe({ timings: t, kind: kindOf(), wasConnected, socketNext: socketNext() });
    }
    if (d) show(d);
    countdown.textContent = lost ? (document.getElementById('status')?.textContent || '') : '';
    overlay.hidden = false;
  }

  const kindOf = () => session.transport?.kind ?? null;
  const socketNext = () => session.choice === 'auto' && !!session.offered?.includes('websocket') && !!session.codecs?.websocket;

  function show(d) {
    title.textContent = d.title;
    detail.textContent = d.detail;
    admin.textContent = d.admin;
    admin.hidden = !d.admin;
    overlay.dataset.step = d.step;
    if (shownStep !== d.step) {
      shownStep = d.step;
      live.textContent = d.title;
    }
  }

  function tick() {
    update();
    if (overlay.hidden && (session.timings?.first_frame || session.stopped)) {
      clearInterval(timer);
      timer = 0;
    }
  }

  return {
    /** A state change: re-evaluate now, and once a second until a picture shows. */
    update() {
      if (!timer) timer = setInterval(tick, 500);
      update();
    },
    keepLastFrame,
    get step() { return overlay.hidden ? null : overlay.dataset.step; },
    element: overlay,
  };
}

/**
 * Opens the signalling WebSocket as soon as the page starts, while the app's module graph
 * (some thirty files) still loads and compiles: the server's welcome and offer are then
 * on their way before app.js could have asked. Whatever arrives is kept, in order, in
 * `window.kelpieEarly` until the session's first connect takes the socket over
 * (`takeEarly` in early-socket.js) or it is abandoned.
 *
 * A classic script on purpose: it runs the moment it arrives, beside login.js, where a
 * module (even an async one) waited for the graph to be compiled, which saved nothing.
 * So it cannot import the app's helpers: the address below follows `signallingUrl` and
 * `wantedTransport` (early-socket.js) for the common case, and the session checks that
 * the address matches before it takes the socket; where it does not, the early socket is
 * closed and the session opens its own, as it always did.
 */
(function () {
  /** Messages kept at most before the session takes over; beyond it the socket is dropped. */
  const MAX_MESSAGES = 256;
  /** An early socket nobody took within this long is closed (the app failed to start). */
  const ABANDON_MS = 15000;

  /** As `webrtcDecodesH264` in codecs.js. */
  function webrtcListsH264() {
    if (typeof window.RTCPeerConnection !== 'function') return false;
    const caps = window.RTCRtpReceiver?.getCapabilities?.('video');
    if (!caps || !Array.isArray(caps.codecs)) return true;
    return caps.codecs.some((c) => typeof c.mimeType === 'string' && c.mimeType.toLowerCase() === 'video/h264');
  }

  // A #token= link: login.js swaps it for the cookie and reloads, so a socket now would be refused.
  if (window.kelpieLogin || typeof WebSocket !== 'function') return;
  let choice = 'auto';
  try {
    const stored = JSON.parse(localStorage.getItem('kelpie.settings') || '{}') || {};
    if (stored.transport === 'webrtc' || stored.transport === 'websocket') choice = stored.transport;
  } catch { /* blocked or corrupt storage: the default */ }
  // Only where the session will surely want this address: on 'auto' its WebRTC must list
  // H.264 (else it asks for the WebSocket transport, if WebCodecs decodes), on
  // 'websocket' WebCodecs must be there (else it connects without asking). Elsewhere the
  // session connects as it always did; a socket closed unused would cost a connection
  // and, in Firefox, an error in the console.
  if (choice === 'auto' && !webrtcListsH264()) return;
  if (choice === 'websocket' && typeof window.VideoDecoder !== 'function') return;
  const url = new URL('ws', location.href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.hash = '';
  url.search = choice === 'auto' ? '' : `?transport=${choice}`;

  let ws;
  try {
    ws = new WebSocket(url.href);
  } catch {
    return; // the session's own attempt reports what is wrong
  }
  ws.binaryType = 'arraybuffer';
  const now = () => Math.round(performance.now());
  const early = { ws, url: url.href, messages: [], startedAt: now(), openedAt: null, closed: false, timer: 0 };
  const drop = () => {
    early.closed = true;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try { ws.close(1000); } catch { /* already closed */ }
  };
  ws.onopen = () => { early.openedAt = now(); };
  ws.onmessage = (ev) => {
    if (early.messages.length >= MAX_MESSAGES) drop();
    else early.messages.push(ev.data);
  };
  ws.onclose = () => { early.closed = true; };
  early.timer = setTimeout(() => {
    if (window.kelpieEarly === early) delete window.kelpieEarly;
    drop();
  }, ABANDON_MS);
  window.kelpieEarly = early;
}());

/**
 * The signalling address, and the take-over of the socket preconnect.js opened while the
 * page was still loading.
 *
 * Why early: the app's module graph (some thirty files) is fetched and compiled before
 * app.js can connect; on loopback that held the socket, the server's welcome and its offer
 * back by about 100 ms of a 350–600 ms first frame. preconnect.js, a classic script, opens
 * the socket the moment the page starts and keeps what arrives; the session's first
 * connect takes it over here instead of opening its own, and replays what was kept.
 *
 * preconnect.js guesses the address as nearly every browser wants it (its WebRTC decodes
 * H.264). Where the session wants another after all (Firefox without OpenH264 asks for
 * the WebSocket transport), `takeEarly` closes the early socket and the session opens
 * its own, as before: correct everywhere, faster where the guess holds.
 */

/**
 * The signalling WebSocket's URL next to the page (`ws` under the same path, so any base
 * path behind a proxy works), with the media transport to start on, if any.
 */
export function signallingUrl(href = location.href, transport = null) {
  const url = new URL('ws', href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.hash = '';
  url.search = transport ? `?transport=${encodeURIComponent(transport)}` : '';
  return url.href;
}

/**
 * The kind to ask for at connect time: the settings' choice, or the WebSocket once WebRTC
 * has failed on this page (reconnects need not wait for the fallback again) or cannot
 * decode the video at all.
 */
export function wantedTransport(choice, fellBack, webrtcDecodes = true) {
  if (choice === 'webrtc' || choice === 'websocket') return choice;
  return fellBack || !webrtcDecodes ? 'websocket' : null;
}

/**
 * The early socket, once, if it went to `url` and is still usable: `{ws, messages,
 * startedAt, openedAt}` with its handlers cleared for the caller to set. Otherwise null,
 * and an early socket to another address, or closing, is closed here. `holder` is where
 * preconnect.js left it (the window).
 */
export function takeEarly(url, holder = globalThis) {
  const record = holder.kelpieEarly;
  if (!record) return null;
  delete holder.kelpieEarly;
  clearTimeout(record.timer);
  const { ws } = record;
  ws.onopen = ws.onmessage = ws.onclose = null;
  // readyState: 0 CONNECTING, 1 OPEN, 2 CLOSING, 3 CLOSED.
  if (record.closed || record.url !== url || ws.readyState > 1) {
    try { ws.close(1000); } catch { /* already closed */ }
    return null;
  }
  return { ws, messages: record.messages, startedAt: record.startedAt, openedAt: record.openedAt };
}

/**
 * Unit tests of the early signalling socket: web-client/preconnect.js (a classic script,
 * run here in a VM context with a scripted WebSocket, storage and clock) and its
 * take-over by the session (`takeEarly`, web-client/early-socket.js). The real browser
 * path is exercised by every browser test; stream.test.mjs checks the page took it over.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import test from 'node:test';
import vm from 'node:vm';
import { signallingUrl, takeEarly, wantedTransport } from '../../web-client/early-socket.js';
import { afterLoad } from '../../web-client/dom.js';
import { SocketMedia } from '../../web-client/socket-media.js';

const SCRIPT = new vm.Script(fs.readFileSync(new URL('../../web-client/preconnect.js', import.meta.url), 'utf8'));

/** A WebSocket whose events the test fires. */
class ScriptedSocket {
  constructor(url) {
    this.url = url;
    this.readyState = 0;
    this.closedWith = null;
  }
  open() { this.readyState = 1; this.onopen?.({}); }
  message(data) { this.onmessage?.({ data }); }
  serverClose() { this.readyState = 3; this.onclose?.({}); }
  close(code) { this.closedWith = code; this.readyState = 3; }
}

/** Runs preconnect.js as a page at `href` would, with `stored` as the saved settings. */
function page(href, { stored = null, login = false, h264 = true, webcodecs = true } = {}) {
  const timers = [];
  const ctx = {
    URL,
    JSON,
    WebSocket: ScriptedSocket,
    RTCPeerConnection: function RTCPeerConnection() {},
    RTCRtpReceiver: { getCapabilities: () => ({ codecs: [{ mimeType: 'video/VP8' }, ...(h264 ? [{ mimeType: 'video/H264' }] : [])] }) },
    ...(webcodecs ? { VideoDecoder: function VideoDecoder() {} } : {}),
    location: { href },
    localStorage: { getItem: (k) => (k === 'kelpie.settings' ? stored : null) },
    performance: { now: () => ctx.clock },
    setTimeout: (fn) => { timers.push(fn); return timers.length; },
    clearTimeout: () => {},
    clock: 100,
    timers,
  };
  ctx.window = ctx;
  if (login) ctx.kelpieLogin = Promise.resolve();
  vm.createContext(ctx);
  SCRIPT.runInContext(ctx);
  return ctx;
}

test('the early address is the one the session\'s first connect asks for', () => {
  const cases = [
    ['http://host:8080/', null, 'auto'],
    ['https://proxy.example/desk/42/?x=1#y', null, 'auto'],
    ['https://h/desk/index.html', '{"transport":"websocket"}', 'websocket'],
    ['http://h/', '{"transport":"webrtc","fps":30}', 'webrtc'],
    ['http://h/', '{"transport":"carrier-pigeon"}', 'auto'],
    ['http://h/', 'not json', 'auto'],
  ];
  for (const [href, stored, choice] of cases) {
    const p = page(href, { stored });
    assert.equal(p.kelpieEarly.url, signallingUrl(href, wantedTransport(choice, false, true)), `${href} ${stored}`);
    assert.equal(p.kelpieEarly.ws.url, p.kelpieEarly.url);
    assert.equal(p.kelpieEarly.ws.binaryType, 'arraybuffer');
  }
  assert.equal(page('http://h/', { login: true }).kelpieEarly, undefined, 'no socket while a #token= link is swapped');
  // Where the session may want another address, nothing is opened early: no unused socket.
  assert.equal(page('http://h/', { h264: false }).kelpieEarly, undefined, 'Firefox without OpenH264');
  assert.equal(page('http://h/', { stored: '{"transport":"websocket"}', webcodecs: false }).kelpieEarly, undefined,
    'the WebSocket chosen where WebCodecs is withheld (an insecure page)');
  assert.ok(page('http://h/', { stored: '{"transport":"webrtc"}', h264: false }).kelpieEarly, 'WebRTC chosen: asked for whatever');
});

test('what the server sends before the take-over is handed over in order, with the open time', () => {
  const p = page('http://host:8080/desk/');
  const url = 'ws://host:8080/desk/ws';
  const { ws } = p.kelpieEarly;
  p.clock = 130;
  ws.open();
  ws.message('{"type":"welcome"}');
  const frame = new ArrayBuffer(4);
  ws.message(frame);
  ws.message('{"type":"offer"}');
  const got = takeEarly(url, p);
  assert.equal(got.ws, ws);
  assert.deepEqual([...got.messages], ['{"type":"welcome"}', frame, '{"type":"offer"}']);
  assert.equal(got.startedAt, 100);
  assert.equal(got.openedAt, 130);
  assert.equal(ws.onmessage, null, 'the caller sets its own handlers');
  assert.equal(ws.onclose, null);
  assert.equal(ws.closedWith, null, 'still open for the session');
  assert.equal(takeEarly(url, p), null, 'taken once: a reconnect opens its own');
});

test('a socket still connecting is taken over too', () => {
  const p = page('http://h/');
  const got = takeEarly('ws://h/ws', p);
  assert.equal(got.openedAt, null);
  assert.equal(got.ws.readyState, 0);
});

test('another address, a closed socket or a flood: closed, and the session opens its own', () => {
  let p = page('http://h/');
  const { ws } = p.kelpieEarly;
  assert.equal(takeEarly('ws://h/ws?transport=websocket', p), null, 'Firefox without H.264 wants the WebSocket transport');
  assert.equal(ws.closedWith, 1000, 'the unused socket is closed, not left as a participant');

  p = page('http://h/');
  p.kelpieEarly.ws.serverClose(); // refused (401), say: the session's own attempt finds out why
  assert.equal(takeEarly('ws://h/ws', p), null);

  p = page('http://h/');
  const flooded = p.kelpieEarly;
  flooded.ws.open();
  for (let i = 0; i < 300; i++) flooded.ws.message('x');
  assert.equal(flooded.ws.closedWith, 1000, 'more than it may keep: dropped');
  assert.equal(flooded.messages.length, 256);
  assert.equal(takeEarly('ws://h/ws', p), null);
});

test('an early socket nobody takes is closed when its time runs out', () => {
  const p = page('http://h/');
  const { ws } = p.kelpieEarly;
  assert.equal(p.timers.length, 1);
  p.timers[0]();
  assert.equal(ws.closedWith, 1000);
  assert.equal(p.kelpieEarly, undefined);
  assert.equal(takeEarly('ws://h/ws', p), null);
});

test('a stream reaches a media element only once the page has loaded', () => {
  // A media element with a stream delays the load event until its first frame; with the
  // offer now arriving before load, blocked media would keep the tab "loading" for ever.
  const listeners = [];
  const win = { addEventListener: (type, fn, opts) => listeners.push({ type, fn, opts }) };
  const ran = [];
  afterLoad(() => ran.push('early'), { readyState: 'interactive' }, win);
  assert.deepEqual(ran, [], 'not before the load event');
  assert.equal(listeners[0].type, 'load');
  assert.equal(listeners[0].opts.once, true);
  listeners[0].fn();
  assert.deepEqual(ran, ['early']);
  afterLoad(() => ran.push('late'), { readyState: 'complete' }, win);
  assert.deepEqual(ran, ['early', 'late'], 'at once once loaded');
  assert.equal(listeners.length, 1);
});

test('socket video waiting for a keyframe keeps asking for one, not once', () => {
  // A stand-in output: the page's MediaStreamTrackGenerator and MediaStream.
  globalThis.MediaStreamTrackGenerator ??= class {
    constructor() { this.writable = { getWriter: () => ({ desiredSize: 1, write: async () => {}, close: async () => {} }) }; }
    stop() {}
  };
  globalThis.MediaStream ??= class { constructor(tracks) { this.tracks = tracks; } };
  let asks = 0;
  const media = new SocketMedia({ onStream: () => {}, askKeyframe: () => { asks++; } });
  const delta = new Uint8Array([0, 0, 0, 1, 0x41, 0x9a, 0x00]);
  for (let seq = 1; seq <= 3; seq++) media.video({ key: false, seq, data: delta });
  assert.equal(media.stats().framesDropped, 3, 'nothing decodes before a keyframe');
  assert.equal(asks, 3, 'each dropped frame asks again (the asker rate-limits)');
});

/**
 * Unit tests of the web client's pure functions (no browser, no server): keysyms,
 * the letterbox mapping, the signalling URL, the reconnect backoff, and who may do what
 * when several people share a desktop (control, share links), the WebSocket
 * transport's frame format and transport choice, and sound: the audio and microphone
 * frames, the playback jitter buffer, the capture worklet's blocks, the remembered
 * volume, and when the microphone may be used.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { keysymFor } from '../../web-client/keysyms.js';
import { toRemote } from '../../web-client/input.js';
import { backoffMs, signallingUrl, wantedTransport } from '../../web-client/signalling.js';
import { AUDIO_HEADER, VIDEO_HEADER, ackFrame, channelFrame, codecOf, micFrame, nalUnits, parseFrame } from '../../web-client/socket-media.js';

test('printable keys map to Latin-1 or Unicode keysyms', () => {
  assert.equal(keysymFor({ key: 'a', code: 'KeyA' }), 0x61);
  assert.equal(keysymFor({ key: 'H', code: 'KeyH' }), 0x48);
  assert.equal(keysymFor({ key: ' ', code: 'Space' }), 0x20);
  assert.equal(keysymFor({ key: '~', code: 'Backquote' }), 0x7e);
  assert.equal(keysymFor({ key: '\u00a0', code: 'Space' }), 0xa0);
  assert.equal(keysymFor({ key: 'é', code: 'Digit2' }), 0xe9);
  assert.equal(keysymFor({ key: 'ÿ', code: 'KeyY' }), 0xff);
  assert.equal(keysymFor({ key: '€', code: 'KeyE' }), 0x010020ac);
  assert.equal(keysymFor({ key: 'ж', code: 'Semicolon' }), 0x01000436);
  assert.equal(keysymFor({ key: '😀', code: '' }), 0x0101f600); // one code point, two UTF-16 units
});

test('named keys map to their keysyms', () => {
  const cases = {
    Enter: 0xff0d, Backspace: 0xff08, Tab: 0xff09, Escape: 0xff1b, Delete: 0xffff,
    Home: 0xff50, End: 0xff57, PageUp: 0xff55, PageDown: 0xff56, Insert: 0xff63,
    ArrowLeft: 0xff51, ArrowUp: 0xff52, ArrowRight: 0xff53, ArrowDown: 0xff54,
    F1: 0xffbe, F12: 0xffc9, F24: 0xffd5, AltGraph: 0xfe03, CapsLock: 0xffe5,
    NumLock: 0xff7f, ScrollLock: 0xff14, ContextMenu: 0xff67, Pause: 0xff13, PrintScreen: 0xff61,
  };
  for (const [key, sym] of Object.entries(cases)) {
    assert.equal(keysymFor({ key, code: key }), sym, key);
  }
});

test('modifiers use code to tell left from right', () => {
  assert.equal(keysymFor({ key: 'Shift', code: 'ShiftLeft' }), 0xffe1);
  assert.equal(keysymFor({ key: 'Shift', code: 'ShiftRight' }), 0xffe2);
  assert.equal(keysymFor({ key: 'Control', code: 'ControlLeft' }), 0xffe3);
  assert.equal(keysymFor({ key: 'Control', code: 'ControlRight' }), 0xffe4);
  assert.equal(keysymFor({ key: 'Alt', code: 'AltLeft' }), 0xffe9);
  assert.equal(keysymFor({ key: 'Alt', code: 'AltRight' }), 0xffea);
  assert.equal(keysymFor({ key: 'Meta', code: 'MetaLeft' }), 0xffeb);
  assert.equal(keysymFor({ key: 'Meta', code: 'MetaRight' }), 0xffec);
});

test('keypad keys use KP_ keysyms, with NumLock on or off', () => {
  assert.equal(keysymFor({ key: '7', code: 'Numpad7' }), 0xffb7);
  assert.equal(keysymFor({ key: 'Home', code: 'Numpad7' }), 0xff95);
  assert.equal(keysymFor({ key: 'Clear', code: 'Numpad5' }), 0xff9d);
  assert.equal(keysymFor({ key: '.', code: 'NumpadDecimal' }), 0xffae);
  assert.equal(keysymFor({ key: 'Delete', code: 'NumpadDecimal' }), 0xff9f);
  assert.equal(keysymFor({ key: 'Enter', code: 'NumpadEnter' }), 0xff8d);
  assert.equal(keysymFor({ key: '+', code: 'NumpadAdd' }), 0xffab);
  assert.equal(keysymFor({ key: '/', code: 'NumpadDivide' }), 0xffaf);
});

test('dead, composing and unknown keys are not sent', () => {
  assert.equal(keysymFor({ key: 'Dead', code: 'Quote' }), null);
  assert.equal(keysymFor({ key: 'Process', code: 'KeyA' }), null);
  assert.equal(keysymFor({ key: 'Unidentified', code: '' }), null);
  assert.equal(keysymFor({ key: 'SomethingNew', code: '' }), null);
});

test('viewport points map through object-fit: contain letterboxing', () => {
  const rect = { left: 0, top: 0, width: 1000, height: 700 };
  // 1280x720 in 1000x700: scale 0.78125, 68.75 px bars above and below.
  assert.deepEqual(toRemote(250, 200, rect, 1280, 720), { x: 320, y: 168 });
  assert.deepEqual(toRemote(0, 68.75, rect, 1280, 720), { x: 0, y: 0 });
  assert.deepEqual(toRemote(999.9, 631.2, rect, 1280, 720), { x: 1279, y: 719 });
  // Points in the bars clamp to the nearest edge.
  assert.deepEqual(toRemote(500, 10, rect, 1280, 720), { x: 640, y: 0 });
  assert.deepEqual(toRemote(500, 690, rect, 1280, 720), { x: 640, y: 719 });
  // Pillarboxing, and an element that does not start at the origin.
  const tall = { left: 10, top: 20, width: 400, height: 400 };
  assert.deepEqual(toRemote(10 + 200, 20 + 200, tall, 800, 400), { x: 400, y: 200 });
  assert.deepEqual(toRemote(10 + 200, 20 + 100, tall, 400, 800), { x: 200, y: 200 });
  assert.equal(toRemote(1, 1, rect, 0, 0), null); // no frame yet
});

test('the signalling URL is relative to the page, with ws/wss', () => {
  assert.equal(signallingUrl('http://host:8080/'), 'ws://host:8080/ws');
  assert.equal(signallingUrl('https://proxy.example/desk/42/?x=1#y'), 'wss://proxy.example/desk/42/ws');
  assert.equal(signallingUrl('https://proxy.example/desk/index.html'), 'wss://proxy.example/desk/ws');
});

test('reconnect backoff doubles from 0.5 s to at most 10 s, with jitter', () => {
  for (let i = 0; i < 200; i++) {
    const d0 = backoffMs(0);
    assert.ok(d0 >= 375 && d0 <= 625, `first retry ${d0}`);
    const d3 = backoffMs(3);
    assert.ok(d3 >= 3000 && d3 <= 5000, `fourth retry ${d3}`);
    const d10 = backoffMs(10);
    assert.ok(d10 >= 7500 && d10 <= 10_000, `late retry ${d10}`);
  }
});

test('resize-to-fit asks for even device-pixel sizes of at least 64', async () => {
  const { fitSize } = await import('../../web-client/settings.js');
  assert.deepEqual(fitSize(1001, 601, 1), { w: 1000, h: 600 });
  assert.deepEqual(fitSize(640, 400, 2), { w: 1280, h: 800 });
  assert.deepEqual(fitSize(683, 384, 1.5), { w: 1024, h: 576 });
  assert.deepEqual(fitSize(10, 10, 1), { w: 64, h: 64 });
});

test('a phone (coarse pointer) gets at most 1.5 device pixels per CSS pixel; a desktop its full ratio', async () => {
  const { fitSize, remoteScale } = await import('../../web-client/settings.js');
  assert.equal(remoteScale(3, true), 1.5);
  assert.equal(remoteScale(1, true), 1);
  assert.equal(remoteScale(3, false), 3);
  assert.equal(remoteScale(Number.NaN, false), 1);
  // 390×844 at DPR 3: 584×1266 device pixels, not 1170×2532.
  assert.deepEqual(fitSize(390, 844, remoteScale(3, true)), { w: 584, h: 1266 });
});

test('bitrates read as people say them', async () => {
  const { formatKbps } = await import('../../web-client/settings.js');
  assert.equal(formatKbps(8000), '8 Mbit/s');
  assert.equal(formatKbps(1500), '1.5 Mbit/s');
  assert.equal(formatKbps(500), '500 kbit/s');
});

test('stored settings are validated, unknown values fall back to defaults', async () => {
  const { loadSettings, DEFAULTS } = await import('../../web-client/settings.js');
  const store = (v) => ({ getItem: () => v });
  assert.deepEqual(loadSettings(store(null)), DEFAULTS);
  assert.deepEqual(loadSettings(store('not json')), DEFAULTS);
  assert.deepEqual(loadSettings(store('{"fps":30,"kbps":-5,"resize":"bogus","scaling":"shrink"}')),
    { ...DEFAULTS, fps: 30, scaling: 'shrink' });
  assert.deepEqual(loadSettings({ getItem: () => { throw new Error('blocked'); } }), DEFAULTS);
  assert.equal(DEFAULTS.sound, 'low-latency', 'the low-latency sound route is the default');
  assert.equal(loadSettings(store('{"sound":"webrtc"}')).sound, 'webrtc');
  assert.equal(loadSettings(store('{"sound":"loud"}')).sound, 'low-latency', 'an unknown route is ignored');
});

test('paste shortcuts are recognised on every platform', async () => {
  const { isPasteShortcut } = await import('../../web-client/keyboard.js');
  assert.ok(isPasteShortcut({ ctrlKey: true, key: 'v' }));
  assert.ok(isPasteShortcut({ metaKey: true, key: 'v' }));
  assert.ok(isPasteShortcut({ shiftKey: true, key: 'Insert' }));
  assert.ok(!isPasteShortcut({ ctrlKey: true, altKey: true, key: 'v' }));
  assert.ok(!isPasteShortcut({ key: 'v' }));
});

// --- sharing a desktop: roles, control, share links (room.js, share.js) ---------------

const roomOf = (you, control, ...participants) => ({
  type: 'room', you, control,
  participants: participants.map(([id, role, requesting = false]) => ({
    id, user: `user-${id}`, role, control: id === control, requesting,
  })),
});

test('a participant without control may only ask for keyframes', async () => {
  const { allowedWithoutControl, CONTROL_ONLY } = await import('../../web-client/room.js');
  assert.ok(allowedWithoutControl({ t: 'kf' }));
  for (const t of ['m', 'b', 'w', 'k', 'r', 'txt', 'rm', 'clip', 'resize', 'set', 'lock', 'gp', 'gpoff']) {
    assert.ok(!allowedWithoutControl({ t }), t);
  }
  assert.equal(CONTROL_ONLY.size, 13);
});

test('the gated send drops control-only messages until control arrives', async () => {
  const { gateSend } = await import('../../web-client/room.js');
  const sent = [];
  const refused = [];
  let control = false;
  const send = gateSend((m) => { sent.push(m.t); return true; }, () => control, (m) => refused.push(m.t));
  assert.equal(send({ t: 'k', k: 0x61, d: true }), false);
  assert.equal(send({ t: 'kf' }), true);
  assert.equal(send.holdsBack('k'), true, 'the keyboard leaves keys to the browser without control');
  assert.equal(send.holdsBack('kf'), false);
  control = true;
  assert.equal(send.holdsBack('k'), false);
  assert.equal(send({ t: 'resize', w: 800, h: 600 }), true);
  assert.deepEqual(sent, ['kf', 'resize']);
  assert.deepEqual(refused, ['k']);
});

test('malformed participants are dropped and control must name a participant', async () => {
  const { normaliseRoom } = await import('../../web-client/room.js');
  assert.equal(normaliseRoom({ type: 'room', participants: [] }), null);
  const room = normaliseRoom({
    you: 'v2', control: 'v9',
    participants: [{ id: 'v1', user: 'alice', role: 'owner' }, { id: 'v2', role: 'guest', requesting: 'yes' },
      { id: 3, role: 'owner' }, { id: 'v4', role: 'admin' }, null],
  });
  assert.deepEqual(room, {
    you: 'v2', control: null,
    participants: [
      { id: 'v1', user: 'alice', role: 'owner', requesting: false, control: false },
      { id: 'v2', user: 'v2', role: 'guest', requesting: false, control: false },
    ],
  });
});

test('the controller may release and give control to owners and guests', async () => {
  const { availableActions } = await import('../../web-client/room.js');
  const room = roomOf('v1', 'v1', ['v1', 'owner'], ['v2', 'guest', true], ['v3', 'viewer'], ['v4', 'owner']);
  assert.deepEqual(availableActions(room, 'owner'),
    { request: false, waiting: false, release: true, take: false, grant: ['v2', 'v4'], share: true });
});

test('an owner without control may ask, take and give, never to viewers', async () => {
  const { availableActions } = await import('../../web-client/room.js');
  const room = roomOf('v4', 'v2', ['v1', 'owner'], ['v2', 'guest'], ['v3', 'viewer'], ['v4', 'owner']);
  assert.deepEqual(availableActions(room, 'owner'),
    { request: true, waiting: false, release: false, take: true, grant: ['v1'], share: true });
});

test('a guest may only ask for control, and waits once it asked', async () => {
  const { availableActions } = await import('../../web-client/room.js');
  const room = roomOf('v2', 'v1', ['v1', 'owner'], ['v2', 'guest', true]);
  assert.deepEqual(availableActions(room, 'guest'),
    { request: true, waiting: true, release: false, take: false, grant: [], share: false });
});

test('a viewer is offered nothing', async () => {
  const { availableActions } = await import('../../web-client/room.js');
  const room = roomOf('v3', null, ['v1', 'owner'], ['v3', 'viewer']);
  assert.deepEqual(availableActions(room, 'viewer'),
    { request: false, waiting: false, release: false, take: false, grant: [], share: false });
});

test('before the first room message nothing about control is offered', async () => {
  const { availableActions } = await import('../../web-client/room.js');
  const actions = availableActions(null, 'owner');
  assert.equal(actions.request || actions.take || actions.release, false);
  assert.deepEqual(actions.grant, []);
});

test('the badge says who has control, or that this page only watches', async () => {
  const { badgeText, normaliseRoom } = await import('../../web-client/room.js');
  const room = (control) => normaliseRoom(roomOf('v2', control, ['v1', 'owner'], ['v2', 'guest'], ['v3', 'viewer']));
  assert.equal(badgeText(room('v2'), 'guest'), 'connected');
  assert.equal(badgeText(room('v1'), 'guest'), 'connected · user-v1 has control');
  assert.equal(badgeText(room(null), 'guest'), 'connected · no one has control');
  assert.equal(badgeText(null, 'viewer'), 'connected · view only');
  assert.equal(badgeText(null, 'owner'), 'connected');
});

test('the room tells its listeners when this page gains and loses control', async () => {
  const { Room } = await import('../../web-client/room.js');
  const room = new Room();
  const changes = [];
  room.onChange((r, change) => changes.push({ ...change, has: r.hasControl() }));
  room.setWelcome({ role: 'owner' });
  room.update(roomOf('v1', 'v1', ['v1', 'owner']));
  room.update(roomOf('v1', 'v1', ['v1', 'owner'], ['v2', 'guest']));
  room.update(roomOf('v1', 'v2', ['v1', 'owner'], ['v2', 'guest']));
  assert.equal(room.update({ type: 'room' }), false);
  room.clear();
  assert.deepEqual(changes, [
    { gained: false, lost: false, has: false },
    { gained: true, lost: false, has: true },
    { gained: false, lost: false, has: true },
    { gained: false, lost: true, has: false },
    { gained: false, lost: false, has: false }, // clear: the list is gone, control already was
  ]);
  assert.equal(room.role, 'owner');
});

test('only deliberate input refused for lack of control earns a hint', async () => {
  const { refusedHint } = await import('../../web-client/room.js');
  assert.equal(refusedHint({ t: 'm', x: 1, y: 1 }, 'guest'), null);
  assert.equal(refusedHint({ t: 'k', k: 0x61, d: false }, 'guest'), null);
  assert.match(refusedHint({ t: 'b', b: 1, d: true }, 'guest'), /ask for control/);
  assert.match(refusedHint({ t: 'txt', s: 'x' }, 'viewer'), /View only/);
});

test('control messages are spelled as the server expects', async () => {
  const { controlMessage } = await import('../../web-client/signalling.js');
  assert.deepEqual(controlMessage('request'), { type: 'control', action: 'request' });
  assert.deepEqual(controlMessage('grant', 'v3'), { type: 'control', action: 'grant', to: 'v3' });
  assert.throws(() => controlMessage('grant'));
  assert.throws(() => controlMessage('kick', 'v3'));
});

test('a share link is the page base address with the token, under any base path', async () => {
  const { shareUrl } = await import('../../web-client/share.js');
  assert.equal(shareUrl('https://host/prefix/?token=old#frag', 'a b/c'), 'https://host/prefix/#token=a%20b%2Fc');
  assert.equal(shareUrl('http://host:8080/', 't1'), 'http://host:8080/#token=t1');
  assert.equal(shareUrl('https://host/desk/index.html', 't1'), 'https://host/desk/#token=t1');
});

test('share names are checked before sending, with a reason and a suggestion', async () => {
  const { checkShareName } = await import('../../web-client/share.js');
  assert.deepEqual(checkShareName('  '), { ok: true, name: null });
  assert.deepEqual(checkShareName(' bob.smith@example-1_x '), { ok: true, name: 'bob.smith@example-1_x' });
  const spaced = checkShareName('Bob Smith');
  assert.equal(spaced.ok, false);
  assert.equal(spaced.suggestion, 'Bob_Smith');
  assert.match(spaced.why, /letters/);
  const long = checkShareName('x'.repeat(65));
  assert.equal(long.ok, false);
  assert.match(long.why, /64/);
  assert.equal(long.suggestion, 'x'.repeat(64));
});

test('creating a share posts role, ttl and name and builds the link', async () => {
  const { createShare } = await import('../../web-client/share.js');
  let request;
  const fetch = async (url, init) => {
    request = { url, ...init, body: JSON.parse(init.body) };
    return { status: 200, json: async () => ({ token: 'tok', expires: 1700000000, role: 'guest' }) };
  };
  const result = await createShare({ role: 'guest', ttl: '3600', name: 'bob' }, { href: 'https://h/p/', fetch });
  assert.equal(request.url, 'share');
  assert.equal(request.method, 'POST');
  assert.deepEqual(request.body, { role: 'guest', ttl: 3600, name: 'bob' });
  assert.deepEqual(result, { ok: true, url: 'https://h/p/#token=tok', expires: 1700000000, role: 'guest' });
});

test('a refused share shows the server text, and a bad name is never sent', async () => {
  const { createShare } = await import('../../web-client/share.js');
  const fetch = async () => ({ status: 403, text: async () => 'only owners may share\n' });
  const refused = await createShare({ role: 'viewer', ttl: 3600, name: '' }, { href: 'https://h/', fetch });
  assert.deepEqual(refused, { ok: false, error: 'only owners may share (HTTP 403)' });
  let called = false;
  const bad = await createShare({ role: 'viewer', ttl: 3600, name: 'a b' },
    { href: 'https://h/', fetch: async () => { called = true; } });
  assert.equal(bad.ok, false);
  assert.match(bad.error, /Try "a_b"/);
  assert.equal(called, false);
  const offline = await createShare({ role: 'viewer', ttl: 3600 },
    { href: 'https://h/', fetch: async () => { throw new Error('network down'); } });
  assert.match(offline.error, /network down/);
});

test('the WebSocket transport parses the server\'s frames as docs/protocol.md describes them', () => {
  const au = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x28, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88];
  const bytes = new Uint8Array(VIDEO_HEADER + au.length);
  bytes.set([2, 1, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]);
  bytes.set(au, VIDEO_HEADER);
  const f = parseFrame(bytes.buffer);
  assert.equal(f.kind, 'video');
  assert.equal(f.key, true);
  assert.equal(f.seq, 258);
  assert.equal(f.timestamp, 1000);
  assert.deepEqual([...f.data], au);
  assert.deepEqual(nalUnits(f.data).map((n) => n[0] & 0x1f), [7, 8, 5]);
  assert.equal(codecOf(f.data).codec, 'avc1.42c028');
  assert.equal(codecOf(new Uint8Array([0, 0, 1, 0x41, 0x9a])), null, 'a delta frame has no SPS');

  const text = '{"t":"cursor","x":1}';
  const c = parseFrame(channelFrame(text).buffer);
  assert.deepEqual(c, { kind: 'channel', text });
  assert.equal(parseFrame(new Uint8Array([]).buffer), null);
  assert.equal(parseFrame(new Uint8Array([2, 0, 0]).buffer), null, 'a video frame shorter than its header');
  assert.equal(parseFrame(new Uint8Array([1, 0xff, 0xfe]).buffer), null, 'not UTF-8');
  assert.equal(parseFrame(new Uint8Array([7, 1]).buffer), null, 'unknown kind');
});

test('a video frame is acknowledged as kind 3, its sequence number and the arrival in µs', () => {
  assert.deepEqual([...ackFrame(258, 4096.4)], [3, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0, 0x10, 0x00]);
  assert.equal(ackFrame(0xffffffff, 0)[4], 0xff, 'the whole u32 range');
  assert.equal(ackFrame(1, -5)[12], 0, 'never negative');
});

test('a page asks for the WebSocket at connect time only when told to or after WebRTC failed', () => {
  assert.equal(wantedTransport('auto', false), null);
  assert.equal(wantedTransport('auto', true), 'websocket');
  assert.equal(wantedTransport('webrtc', true), 'webrtc');
  assert.equal(wantedTransport('websocket', false), 'websocket');
  assert.equal(signallingUrl('https://proxy.example/desk/', 'websocket'), 'wss://proxy.example/desk/ws?transport=websocket');
});

// --- sound: frames, jitter buffer, capture blocks, preferences, microphone rules -------

test('an audio frame (kind 4) parses to its sequence, µs timestamp and one Opus packet', () => {
  const packet = [0xfc, 0xff, 0xfe];
  const bytes = new Uint8Array(AUDIO_HEADER + packet.length);
  bytes.set([4, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40]);
  bytes.set(packet, AUDIO_HEADER);
  const f = parseFrame(bytes.buffer);
  assert.deepEqual({ ...f, data: [...f.data] }, { kind: 'audio', seq: 258, timestamp: 1_000_000, data: packet });
  assert.equal(parseFrame(bytes.subarray(0, AUDIO_HEADER).slice().buffer), null, 'a header without a packet');
  assert.equal(parseFrame(new Uint8Array([4, 0, 0, 1]).buffer), null, 'shorter than its header');
});

test('a microphone frame is kind 5, flags 0, seq u32 and capture µs u64 big-endian, then the packet', () => {
  assert.deepEqual([...micFrame(258, 1_000_000.4, new Uint8Array([0x78, 0x01]))],
    [5, 0, 0, 0, 1, 2, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, 0x78, 0x01]);
  assert.deepEqual([...micFrame(2 ** 32 + 3, 0, new Uint8Array([1])).subarray(2, 6)], [0, 0, 0, 3], 'seq wraps at 2^32');
  assert.deepEqual([...micFrame(1, -20, new Uint8Array([1])).subarray(6, 14)], [0, 0, 0, 0, 0, 0, 0, 0], 'never negative');
  const round = parseFrame(Uint8Array.from(micFrame(7, 123456, new Uint8Array([9, 8])), (b, i) => (i === 0 ? 4 : b)).buffer);
  assert.deepEqual([round.seq, round.timestamp, [...round.data]], [7, 123456, [9, 8]], 'the same header as kind 4');
});

const ramp = (from, n) => Float32Array.from({ length: n }, (_, i) => from + i);
const pullN = (buffer, n, channels = 2) => {
  const out = Array.from({ length: channels }, () => new Float32Array(n).fill(-1));
  const played = buffer.pull(out);
  return { played, out: out.map((c) => [...c]) };
};

test('the jitter buffer plays silence until it holds its target, then sound in order across chunks', async () => {
  const { JitterBuffer } = await import('../../web-client/pcm.js');
  const b = new JitterBuffer({ target: 6, max: 20 });
  b.push([ramp(0, 4), ramp(100, 4)]);
  assert.deepEqual(pullN(b, 3), { played: 0, out: [[0, 0, 0], [0, 0, 0]] }, 'below target: silence, nothing consumed');
  b.push([ramp(4, 4), ramp(104, 4)]);
  assert.deepEqual(pullN(b, 5), { played: 5, out: [[0, 1, 2, 3, 4], [100, 101, 102, 103, 104]] });
  assert.equal(b.buffered, 3);
  assert.equal(b.underruns, 0);
});

test('a jitter buffer that runs dry pads with silence, counts an underrun and primes again', async () => {
  const { JitterBuffer } = await import('../../web-client/pcm.js');
  const b = new JitterBuffer({ target: 4, max: 20 });
  b.push([ramp(1, 4)]);
  assert.deepEqual(pullN(b, 6, 1), { played: 4, out: [[1, 2, 3, 4, 0, 0]] });
  assert.equal(b.underruns, 1);
  b.push([ramp(10, 2)]);
  assert.deepEqual(pullN(b, 2, 1).played, 0, 'two frames are below the target again');
  b.push([ramp(12, 2)]);
  assert.deepEqual(pullN(b, 2, 1).out, [[10, 11]]);
});

test('a jitter buffer grown past its maximum drops its oldest frames down to the target', async () => {
  const { JitterBuffer } = await import('../../web-client/pcm.js');
  const b = new JitterBuffer({ target: 4, max: 8 });
  b.push([ramp(0, 5)]);
  b.push([ramp(5, 3)]);
  assert.equal(b.buffered, 8, 'at the maximum nothing is dropped');
  b.push([ramp(8, 2)]);
  assert.equal(b.buffered, 4);
  assert.equal(b.trimmed, 6);
  assert.deepEqual(pullN(b, 4, 1).out, [[6, 7, 8, 9]], 'the newest sound is kept');
  b.clear();
  assert.equal(b.buffered, 0);
  assert.equal(pullN(b, 2, 1).played, 0, 'cleared: primes afresh');
});

test('an adaptive jitter buffer raises its target at each underrun, up to its ceiling', async () => {
  const { JitterBuffer } = await import('../../web-client/pcm.js');
  const b = new JitterBuffer({ target: 4, max: 40, adapt: { step: 4, ceiling: 10, calm: 1000, window: 1000 } });
  b.push([ramp(1, 4)]);
  assert.equal(pullN(b, 6, 1).played, 4);
  assert.equal(b.target, 8, 'one underrun: one step more');
  b.push([ramp(1, 4)]);
  assert.equal(pullN(b, 2, 1).played, 0, 'primes to the new target');
  b.push([ramp(5, 4)]);
  assert.equal(pullN(b, 10, 1).played, 8);
  assert.equal(b.target, 10, 'capped at the ceiling');
  assert.equal(b.underruns, 2);
  // With a grace: running dry in the first 6 frames played counts, but does not raise.
  const g = new JitterBuffer({ target: 4, max: 40, adapt: { step: 4, ceiling: 20, calm: 1000, window: 1000, grace: 6 } });
  g.push([ramp(1, 4)]);
  pullN(g, 6, 1);
  assert.deepEqual([g.underruns, g.target], [1, 4], 'within the grace');
  g.push([ramp(1, 4)]);
  pullN(g, 6, 1);
  assert.deepEqual([g.underruns, g.target], [2, 8], 'after it');
});

test('an adaptive jitter buffer lowers an unneeded target after a calm spell, never below its start', async () => {
  const { JitterBuffer } = await import('../../web-client/pcm.js');
  const b = new JitterBuffer({ target: 4, max: 100, adapt: { step: 4, ceiling: 20, calm: 8, window: 1000 } });
  b.push([ramp(0, 2)]);
  b.push([ramp(0, 2)]);
  pullN(b, 6, 1); // dry: target 8
  assert.equal(b.target, 8);
  b.push([ramp(0, 40)]);
  for (let i = 0; i < 4; i++) pullN(b, 4, 1); // 16 calm frames: two half steps down
  assert.equal(b.target, 4);
  for (let i = 0; i < 4; i++) pullN(b, 4, 1);
  assert.equal(b.target, 4, 'the floor is the starting target');
});

test('an adaptive jitter buffer sheds latency its fill never used over a window', async () => {
  const { JitterBuffer } = await import('../../web-client/pcm.js');
  const b = new JitterBuffer({ target: 4, max: 100, adapt: { step: 4, ceiling: 20, calm: 1e9, window: 8 } });
  // A stall's worth of sound arriving at once: 24 frames, far over the target of 4.
  b.push([ramp(0, 24)]);
  assert.deepEqual(pullN(b, 4, 1).out, [[0, 1, 2, 3]]);
  assert.deepEqual(pullN(b, 4, 1).out, [[4, 5, 6, 7]]);
  // The window's lowest fill was 16: 12 frames over the target are dropped, oldest first.
  assert.equal(b.buffered, 4);
  assert.equal(b.trimmed, 12);
  assert.deepEqual(pullN(b, 4, 1).out, [[20, 21, 22, 23]], 'the newest sound is kept');
  // A fill that dips to the target is left alone.
  const c = new JitterBuffer({ target: 4, max: 100, adapt: { step: 4, ceiling: 20, calm: 1e9, window: 8 } });
  c.push([ramp(0, 8)]);
  pullN(c, 4, 1);
  c.push([ramp(8, 4)]);
  pullN(c, 4, 1);
  assert.equal(c.trimmed, 0);
});

test('the sound channel\'s sequence gate counts lost packets, refuses late ones and survives the wrap', async () => {
  const { SequenceGate } = await import('../../web-client/pcm.js');
  const g = new SequenceGate(5);
  assert.deepEqual(g.accept(10), { missing: 0 }, 'the first packet starts the count');
  assert.deepEqual(g.accept(11), { missing: 0 });
  assert.deepEqual(g.accept(14), { missing: 2 }, '12 and 13 were lost');
  assert.equal(g.accept(13), null, 'a packet older than the last one played is late');
  assert.equal(g.accept(14), null, 'and so is a duplicate');
  assert.deepEqual(g.accept(100), { missing: 0 }, 'a gap over the limit is a new start, not loss');
  assert.equal(g.lost, 2);
  assert.equal(g.late, 2);
  const w = new SequenceGate(5);
  w.accept(0xffff_fffe);
  assert.deepEqual(w.accept(1), { missing: 2 }, '0xffffffff and 0 were lost across the wrap');
  assert.equal(w.accept(0xffff_ffff), null, 'and one from before the wrap is late');
});

test('a mono chunk feeds both output channels', async () => {
  const { JitterBuffer } = await import('../../web-client/pcm.js');
  const b = new JitterBuffer({ target: 2, max: 10 });
  b.push([ramp(1, 2)]);
  assert.deepEqual(pullN(b, 2).out, [[1, 2], [1, 2]]);
});

test('the microphone downmix averages channels so stereo gets no louder', async () => {
  const { downmix } = await import('../../web-client/pcm.js');
  assert.deepEqual([...downmix([Float32Array.of(1, 0.5), Float32Array.of(0, 0.5)])], [0.5, 0.5]);
  const out = new Float32Array(2);
  assert.equal(downmix([Float32Array.of(0.25, -1)], out), out, 'reuses the given buffer');
  assert.deepEqual([...out], [0.25, -1]);
});

test('the capture worklet hands over 20 ms mono blocks stamped with their first sample\'s time', async () => {
  const registered = new Map();
  const posted = [];
  Object.assign(globalThis, {
    sampleRate: 48_000,
    currentTime: 0,
    registerProcessor: (name, cls) => registered.set(name, cls),
    AudioWorkletProcessor: class { constructor() { this.port = { postMessage: (m) => posted.push(m) }; } },
  });
  await import('../../web-client/audio-worklet.js');
  assert.deepEqual([...registered.keys()], ['kelpie-playback', 'kelpie-capture']);
  const capture = new (registered.get('kelpie-capture'))();
  for (let q = 0; q < 8; q++) {
    globalThis.currentTime = (q * 128) / 48_000;
    const left = new Float32Array(128).fill(q);
    const right = new Float32Array(128).fill(q + 1);
    assert.equal(capture.process([[left, right]]), true);
  }
  assert.equal(posted.length, 1, '1024 frames: one 960-frame block, 64 frames waiting');
  assert.equal(posted[0].samples.length, 960);
  assert.equal(posted[0].time, 0);
  assert.equal(posted[0].samples[0], 0.5);
  assert.equal(posted[0].samples[959], 7.5, 'the average of the two channels');
  assert.equal(capture.process([[]]), true, 'an unconnected input is skipped');
  for (let q = 8; q < 16; q++) {
    globalThis.currentTime = (q * 128) / 48_000;
    capture.process([[new Float32Array(128)]]);
  }
  assert.equal(posted.length, 2);
  assert.equal(posted[1].time, 960 / 48_000, 'the second block starts where the first ended');

  const playback = new (registered.get('kelpie-playback'))({ processorOptions: { targetMs: 1, maxMs: 10 } });
  playback.port.onmessage({ data: { type: 'pcm', planes: [new Float32Array(48).fill(0.25)] } });
  const out = [new Float32Array(128), new Float32Array(128)];
  playback.process([], [out]);
  assert.deepEqual([out[0][47], out[1][47], out[0][48]], [0.25, 0.25, 0], 'then silence: an underrun');
});

test('sound preferences are validated, remembered, and volumes clamped to 0..1', async () => {
  const { loadAudioPrefs, saveAudioPrefs, AUDIO_DEFAULTS, clampVolume } = await import('../../web-client/audio.js');
  const store = (v) => ({ getItem: () => v });
  assert.deepEqual(loadAudioPrefs(store(null)), AUDIO_DEFAULTS);
  assert.deepEqual(AUDIO_DEFAULTS, { muted: false, volume: 1 });
  assert.deepEqual(loadAudioPrefs(store('{"muted":true,"volume":0.4}')), { muted: true, volume: 0.4 });
  assert.deepEqual(loadAudioPrefs(store('{"muted":"yes","volume":7}')), AUDIO_DEFAULTS);
  assert.deepEqual(loadAudioPrefs(store('nope')), AUDIO_DEFAULTS);
  assert.deepEqual(loadAudioPrefs({ getItem: () => { throw new Error('blocked'); } }), AUDIO_DEFAULTS);
  const saved = new Map();
  saveAudioPrefs({ muted: true, volume: 0.25, extra: 1 }, { setItem: (k, v) => saved.set(k, v) });
  assert.deepEqual(loadAudioPrefs(store(saved.get('kelpie.audio'))), { muted: true, volume: 0.25 });
  assert.deepEqual([clampVolume(1.5), clampVolume(-1), clampVolume('0.5'), clampVolume('loud')], [1, 0, 0.5, null]);
});

test('the sound state is only blocked or playing once the browser has answered', async () => {
  const { publicState } = await import('../../web-client/audio.js');
  assert.deepEqual(['off', 'starting', 'blocked', 'playing'].map(publicState), ['off', 'off', 'blocked', 'playing']);
});

const micFacts = { secure: true, capture: true, encoder: true, route: 'webrtc', control: true, active: false, denied: false };

test('the microphone needs a secure page before anything else, and says so', async () => {
  const { micState } = await import('../../web-client/mic.js');
  assert.deepEqual(micState({ ...micFacts, secure: false, control: false }), { state: 'unavailable',
    reason: 'The microphone needs HTTPS (or localhost): ask your administrator to serve Kelpie over HTTPS' });
  assert.equal(micState({ ...micFacts, capture: false }).state, 'unavailable');
});

test('the microphone is only for the participant in control, even while it is on', async () => {
  const { micState } = await import('../../web-client/mic.js');
  assert.equal(micState({ ...micFacts, control: false }).state, 'no-control');
  assert.equal(micState({ ...micFacts, control: false, active: true }).state, 'no-control');
  assert.match(micState({ ...micFacts, control: false }).reason, /in control of the keyboard and mouse/);
});

test('the microphone needs a route for sound, and an encoder on the WebSocket', async () => {
  const { micState } = await import('../../web-client/mic.js');
  assert.equal(micState({ ...micFacts, route: null }).state, 'unavailable', 'a desktop without sound');
  assert.equal(micState({ ...micFacts, route: null, active: true }).state, 'on', 'stays on while media moves');
  assert.equal(micState({ ...micFacts, route: 'websocket', encoder: false }).state, 'unavailable');
  assert.equal(micState({ ...micFacts, route: 'webrtc', encoder: false }).state, 'off', 'WebRTC encodes it itself');
});

test('a refused microphone shows as denied until it is asked again and granted', async () => {
  const { micState, captureError } = await import('../../web-client/mic.js');
  assert.equal(micState({ ...micFacts, denied: true }).state, 'denied');
  assert.match(micState({ ...micFacts, denied: true }).reason, /site settings/);
  assert.equal(micState({ ...micFacts, active: true }).state, 'on');
  assert.equal(micState(micFacts).state, 'off');
  assert.match(captureError({ name: 'NotFoundError' }), /No microphone found/);
  assert.match(captureError({ name: 'NotReadableError' }), /another application/);
});

test('the answer takes the offer\'s audio transceiver sendrecv, found by kind, and works without one', async () => {
  const { answerAudioSendrecv } = await import('../../web-client/signalling.js');
  const transceiver = (kind, extra = {}) => ({ receiver: { track: { kind } }, direction: 'recvonly', ...extra });
  const video = transceiver('video');
  const stopped = transceiver('audio', { currentDirection: 'stopped' });
  const audio = transceiver('audio');
  assert.equal(answerAudioSendrecv({ getTransceivers: () => [video, stopped, audio] }), audio);
  assert.deepEqual([video.direction, stopped.direction, audio.direction], ['recvonly', 'recvonly', 'sendrecv']);
  assert.equal(answerAudioSendrecv({ getTransceivers: () => [transceiver('video')] }), null, 'an offer without audio');
});

test('microphone frames go out on the socket only while media is on it and the socket keeps up', async () => {
  const { Session } = await import('../../web-client/signalling.js');
  globalThis.WebSocket ??= { OPEN: 1 };
  const session = new Session('http://h/', {});
  const sent = [];
  const ws = { readyState: 1, bufferedAmount: 0, send: (b) => sent.push(b) };
  session.ws = ws;
  assert.equal(session.sendFrame(new Uint8Array([5])), false, 'media on WebRTC');
  session.media = {};
  assert.equal(session.sendFrame(new Uint8Array([5]), 100), true);
  ws.bufferedAmount = 101;
  assert.equal(session.sendFrame(new Uint8Array([5]), 100), false, 'behind: dropped, not queued');
  assert.equal(sent.length, 1);
  assert.equal(session.audioRoute, null, 'no sound seen on the socket yet');
  session.socketAudio = true;
  assert.equal(session.audioRoute, 'websocket');
});

test('an extra-keys latch ends with the next key released or text typed, not with a modifier', async () => {
  const { endsLatch } = await import('../../web-client/extra-keys.js');
  assert.equal(endsLatch({ t: 'k', k: 0x63, d: false }), true);
  assert.equal(endsLatch({ t: 'k', k: 0x63, d: true }), false);
  assert.equal(endsLatch({ t: 'k', k: 0xffe1, d: false }), false); // Shift let go
  assert.equal(endsLatch({ t: 'txt', s: 'c' }), true);
  assert.equal(endsLatch({ t: 'm', x: 1, y: 1 }), false);
});

test('a pad becomes integers in the standard layout, bounded, without -0', async () => {
  const { padMessage } = await import('../../web-client/gamepad.js');
  const pad = {
    buttons: [{ value: 1, pressed: true }, { value: 0.5 }, { pressed: true }, { value: 7 }, 0.25],
    axes: [-1, 1, -0.00001, 0.5, -2],
  };
  assert.deepEqual(padMessage(2, pad), { t: 'gp', p: 2, b: [255, 128, 255, 255, 64], a: [-32767, 32767, 0, 16384, -32767] });
  assert.ok(!Object.is(padMessage(0, { buttons: [], axes: [-0.000001] }).a[0], -0));
  const big = padMessage(0, { buttons: new Array(40).fill({ value: 1 }), axes: new Array(20).fill(0) });
  assert.equal(big.b.length, 32);
  assert.equal(big.a.length, 16);
});

test('pads are sent on change only, by the controller only, at most 60 a second, and afresh on regaining control', async () => {
  const listeners = {};
  const frames = [];
  globalThis.addEventListener = (type, fn) => { listeners[type] = fn; };
  globalThis.requestAnimationFrame = (fn) => { frames.push(fn); return frames.length; };
  let clock = 0;
  const frame = () => { clock += 17; const fns = frames.splice(0); fns.forEach((fn) => fn(clock)); };
  const { attachGamepads } = await import('../../web-client/gamepad.js');
  const pads = [null, null, null, null];
  const sent = [];
  let control = true;
  const g = attachGamepads({ send: (m) => { sent.push(m); return true; }, hasControl: () => control, notice: () => {}, getGamepads: () => pads });
  pads[0] = { index: 0, id: 'pad', connected: true, buttons: [{ value: 0 }], axes: [0] };
  listeners.gamepadconnected({ gamepad: pads[0] });
  frame();
  assert.deepEqual(sent.map((m) => m.b[0]), [0], 'the first state goes out');
  frame();
  assert.equal(sent.length, 1, 'no change, nothing sent');
  pads[0].buttons[0] = { value: 1 };
  frame();
  assert.deepEqual(sent.at(-1), { t: 'gp', p: 0, b: [255], a: [0] });
  // Two changes within 15 ms: the second waits for a later frame, then goes.
  pads[0].axes[0] = 0.5;
  clock -= 10; frame();
  const n = sent.length;
  pads[0].axes[0] = -0.5;
  clock -= 10; frame();
  assert.equal(sent.length, n, 'held back inside 15 ms');
  frame();
  assert.equal(sent.at(-1).a[0], -16383);
  control = false;
  pads[0].buttons[0] = { value: 0 };
  frame(); frame();
  assert.equal(sent.at(-1).b[0], 255, 'nothing without control');
  control = true;
  g.resend();
  frame();
  assert.equal(sent.at(-1).b[0], 0, 'sent afresh with control');
  listeners.gamepaddisconnected({ gamepad: pads[0] });
  assert.deepEqual(sent.at(-1), { t: 'gpoff', p: 0 });
  pads[0] = null;
  frame();
  assert.equal(frames.length, 0, 'polling stops without pads');
  delete globalThis.addEventListener;
  delete globalThis.requestAnimationFrame;
});

/**
 * Unit tests of the web client's pure functions (no browser, no server): keysyms,
 * the letterbox mapping, the signalling URL, the reconnect backoff, and who may do what
 * when several people share a desktop (control, share links), and the WebSocket
 * transport's frame format and transport choice.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { keysymFor } from '../../web-client/keysyms.js';
import { toRemote } from '../../web-client/input.js';
import { backoffMs, signallingUrl, wantedTransport } from '../../web-client/signalling.js';
import { VIDEO_HEADER, ackFrame, channelFrame, codecOf, nalUnits, parseFrame } from '../../web-client/socket-media.js';

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

test('stored settings are validated, unknown values fall back to defaults', async () => {
  const { loadSettings, DEFAULTS } = await import('../../web-client/settings.js');
  const store = (v) => ({ getItem: () => v });
  assert.deepEqual(loadSettings(store(null)), DEFAULTS);
  assert.deepEqual(loadSettings(store('not json')), DEFAULTS);
  assert.deepEqual(loadSettings(store('{"fps":30,"kbps":-5,"resize":"bogus","scaling":"shrink"}')),
    { ...DEFAULTS, fps: 30, scaling: 'shrink' });
  assert.deepEqual(loadSettings({ getItem: () => { throw new Error('blocked'); } }), DEFAULTS);
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
  for (const t of ['m', 'b', 'w', 'k', 'r', 'txt', 'rm', 'clip', 'resize', 'set', 'lock']) {
    assert.ok(!allowedWithoutControl({ t }), t);
  }
  assert.equal(CONTROL_ONLY.size, 11);
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
  assert.equal(shareUrl('https://host/prefix/?token=old#frag', 'a b/c'), 'https://host/prefix/?token=a%20b%2Fc');
  assert.equal(shareUrl('http://host:8080/', 't1'), 'http://host:8080/?token=t1');
  assert.equal(shareUrl('https://host/desk/index.html', 't1'), 'https://host/desk/?token=t1');
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
  assert.deepEqual(result, { ok: true, url: 'https://h/p/?token=tok', expires: 1700000000, role: 'guest' });
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

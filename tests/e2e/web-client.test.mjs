/**
 * Unit tests of the web client's pure functions (no browser, no server): keysyms,
 * the letterbox mapping, the signalling URL and the reconnect backoff.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { keysymFor } from '../../web-client/keysyms.js';
import { toRemote } from '../../web-client/input.js';
import { backoffMs, signallingUrl } from '../../web-client/signalling.js';

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

/**
 * Gamepads without privileges, end to end: a page whose `navigator.getGamepads` is a test
 * double (headless Chromium has no virtual pads) drives pad 1 through Kelpie; the
 * kernel's own `jstest` reads /dev/input/js0 and a small SDL2 program opens the pad as a
 * game controller over evdev, both under `kelpie-gamepad` (the preload library; no
 * device node exists). They see what the page sent, in order. A participant without
 * control reaches nothing, malformed pad messages are counted and change nothing, losing
 * control puts the pad at rest, and apps that cannot use the pads are reported to the
 * page.
 *
 * Every step waits for its effect before the next: the page sends a pad's state once per
 * animation frame, so changes made within one frame would merge.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { REPO_ROOT, metricSamples, openConnected, startEnv, waitFor } from './harness.mjs';

const WRAPPER = process.env.KELPIE_GAMEPAD_BIN || path.join(REPO_ROOT, 'target/debug/kelpie-gamepad');
const SDL_SOURCE = path.join(REPO_ROOT, 'tests/testdata/gamepad/sdl-pad.c');
const VIEWPORT = { width: 640, height: 480 };

/** Replaces the Gamepad API with slots the test fills (`__setPad`, `__dropPad`). */
function gamepadDouble() {
  const pads = [null, null, null, null];
  Object.defineProperty(Navigator.prototype, 'getGamepads', { configurable: true, value: () => pads.slice() });
  window.__setPad = (i, pressed, axes) => {
    const buttons = Array.from({ length: 17 }, (_, b) => {
      const v = pressed[b] ?? 0;
      return { value: v, pressed: v > 0.5, touched: v > 0 };
    });
    const fresh = !pads[i];
    pads[i] = { index: i, id: 'Test pad (STANDARD GAMEPAD)', connected: true, mapping: 'standard', buttons, axes, timestamp: performance.now() };
    if (fresh) {
      const e = new Event('gamepadconnected');
      e.gamepad = pads[i];
      dispatchEvent(e);
    }
  };
  /** Resolves after two animation frames: the page's poll has run since. */
  window.__frames = () => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
}

/** A new browser's page with the Gamepad double, connected; `control`: wait until it holds control. */
async function padPage(env, { control }) {
  const browser = await env.launchBrowser();
  const ctx = await browser.browser.newContext({ viewport: VIEWPORT });
  await ctx.addInitScript(gamepadDouble);
  const page = await openConnected(env, ctx, env.url);
  if (control) await page.waitForFunction(() => window.kelpie.hasControl, null, { timeout: 10_000 });
  return page;
}

/** A fresh private directory for a test's socket, removed after it. */
function scratchSocket(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kelpie-pad-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { dir, socket: path.join(dir, 'gamepad.sock') };
}

/** A pad state: pressed standard buttons (index → value) and the four axes. */
const pad = (buttons = {}, axes = [0, 0, 0, 0]) => ({ buttons, axes });

function compileSdlProgram(dir) {
  const out = path.join(dir, 'sdl-pad');
  let flags;
  try {
    flags = execFileSync('sdl2-config', ['--cflags', '--libs'], { encoding: 'utf8' }).trim().split(/\s+/);
  } catch (e) {
    throw new Error(`sdl2-config not found (${e.message}): run make deps-test (libsdl2-dev)`);
  }
  execFileSync('cc', [SDL_SOURCE, ...flags, '-o', out]);
  return out;
}

/** `jstest --event` lines as [type, number, value] (init events included, flagged 0x80). */
function jsEvents(lines) {
  return lines.map((l) => /^Event: type (\d+), time \d+, number (\d+), value (-?\d+)$/.exec(l))
    .filter(Boolean).map((m) => [Number(m[1]), Number(m[2]), Number(m[3])]);
}

async function counter(env, result) {
  const s = await metricSamples(env.url, 'kelpie_gamepad_messages_total');
  return s[`{result="${result}"}`] ?? 0;
}

test('pads sent by the controlling page reach jstest and an SDL2 game controller, in order, and nothing else does', { timeout: 180_000 }, async (t) => {
  const { dir, socket } = scratchSocket(t);
  const env = await startEnv(t, { width: 640, height: 480, framerate: 15, serverArgs: ['--gamepad-socket', socket] });
  const sdlPad = compileSdlProgram(dir);
  const padEnv = { KELPIE_GAMEPAD_SOCKET: socket };

  const jstest = env.spawn('jstest', WRAPPER, ['jstest', '--event', '/dev/input/js0'], { env: padEnv });
  jstest.readStdout();
  const sdl = env.spawn('sdl-pad', WRAPPER, [sdlPad], { env: padEnv });
  sdl.readStdout();
  await waitFor('jstest to report the pad', () => jstest.lines.some((l) => l.startsWith('Testing')), { timeoutMs: 15_000 })
    .catch((e) => { throw new Error(env.why(e.message)); });
  const header = jstest.lines.join('\n');
  assert.match(header, /has 8 axes \(X, Y, Z, Rx, Ry, Rz, Hat0X, Hat0Y\)/, env.why(header));
  assert.match(header, /and 11 buttons \(BtnA, BtnB, BtnX, BtnY, BtnTL, BtnTR, BtnSelect, BtnStart, BtnMode, BtnThumbL, BtnThumbR\)/, env.why(header));
  await waitFor('the SDL2 program to open a game controller', () => sdl.lines.some((l) => /^(ready|error)/.test(l)), { timeoutMs: 20_000 })
    .catch((e) => { throw new Error(env.why(e.message)); });
  const ready = sdl.lines.find((l) => /^(ready|error)/.test(l));
  assert.match(ready, /^ready .*a:b0,b:b1/, env.why(`SDL2: ${ready}`));
  // jstest on js0 and SDL on event1000 (it probes the other slots and closes them).
  await env.waitHealth('both apps to hold pad 1 open', (h) => h.gamepads?.readers?.[0] === 2, 15_000);

  // joydev's start-up events: every button released, every axis at rest (triggers -32767).
  await waitFor('19 start-up events', () => jsEvents(jstest.lines).length >= 19);
  const init = jsEvents(jstest.lines).slice(0, 19);
  assert.deepEqual(init.map(([type]) => type), [...new Array(11).fill(129), ...new Array(8).fill(130)]);
  assert.deepEqual(init.slice(11).map(([, , v]) => v), [0, 0, -32767, 0, 0, -32767, 0, 0]);

  const page = await padPage(env, { control: true });

  /** Sets pad 1 and waits until jstest has `n` more events. */
  let seen = 19;
  async function step(what, state, n) {
    await page.evaluate(({ buttons, axes }) => window.__setPad(0, buttons, axes), state);
    seen += n;
    await waitFor(`jstest to see ${what}`, () => jsEvents(jstest.lines).length >= seen, { timeoutMs: 10_000 })
      .catch((e) => { throw new Error(env.why(`${e.message}; jstest so far: ${JSON.stringify(jsEvents(jstest.lines).slice(19))}`)); });
  }
  await step('A pressed', pad({ 0: 1 }), 1);
  await step('A released, left stick half right', pad({}, [0.5, 0, 0, 0]), 2);
  await step('right trigger and d-pad right', pad({ 7: 1, 15: 1 }, [0.5, 0, 0, 0]), 2);
  await step('guide', pad({ 7: 1, 15: 1, 16: 1 }, [0.5, 0, 0, 0]), 1);
  const expected = [
    [1, 0, 1],
    [1, 0, 0], [2, 0, 16384],
    [2, 5, 32767], [2, 6, 32767],
    [1, 8, 1],
  ];
  assert.deepEqual(jsEvents(jstest.lines).slice(19), expected, env.why('jstest events'));
  await waitFor('SDL2 to see the guide button', () => sdl.lines.includes('button guide down'), { timeoutMs: 10_000 })
    .catch((e) => { throw new Error(env.why(e.message)); });
  // SDL reports each axis once at rest when it opens the pad; the rest must match.
  const sdlEvents = sdl.lines.filter((l) => /^(button|axis|removed)/.test(l) && !/^axis \w+ 0$/.test(l));
  assert.deepEqual(sdlEvents, [
    'button a down', 'button a up', 'axis leftx 16384', 'axis righttrigger 32767', 'button dpright down', 'button guide down',
  ], env.why('SDL2 events'));

  // Another participant, without control: its page sends nothing, and what it sends past
  // its page is refused and counted; then a change from the controller is the next event.
  const watcher = await padPage(env, { control: false });
  assert.equal(await watcher.evaluate(() => window.kelpie.hasControl), false);
  await watcher.evaluate(async () => { window.__setPad(0, { 1: 1 }, [0, 0, 0, 0]); await window.__frames(); });
  assert.equal(await watcher.evaluate(() => window.kelpie.gamepads.messages), 0, 'a page without control sends no pad');
  const refusedBefore = await counter(env, 'refused');
  await watcher.evaluate(() => {
    for (const b of [[255], [0, 255], [0, 0, 255]]) window.kelpie.channel.send(JSON.stringify({ t: 'gp', p: 0, b, a: [] }));
  });
  await waitFor('3 refused pad messages', async () => await counter(env, 'refused') >= refusedBefore + 3, { timeoutMs: 10_000 });

  // Malformed and oversized ones from the controller: counted, nothing changes.
  const malformedBefore = await counter(env, 'malformed');
  await page.evaluate(() => {
    const c = window.kelpie.channel;
    c.send(JSON.stringify({ t: 'gp', p: 9, b: [255], a: [] }));
    c.send(JSON.stringify({ t: 'gp', p: 0, b: [999], a: [] }));
    c.send(JSON.stringify({ t: 'gp', p: 0, b: new Array(100).fill(255), a: [] }));
    c.send(JSON.stringify({ t: 'gp', p: 0, b: [], a: [] }) + ' '.repeat(5000));
  });
  await waitFor('4 malformed pad messages', async () => await counter(env, 'malformed') >= malformedBefore + 4, { timeoutMs: 10_000 });
  await step('guide released', pad({ 7: 1, 15: 1 }, [0.5, 0, 0, 0]), 1);
  assert.deepEqual(jsEvents(jstest.lines).slice(19 + expected.length), [[1, 8, 0]],
    env.why('only the controller\'s change arrived'));

  // The watcher takes control: the controller's pad goes to rest at once.
  await watcher.click('#people-button');
  await watcher.click('#people-panel button[data-action="take"]');
  await watcher.waitForFunction(() => window.kelpie.hasControl, null, { timeout: 10_000 });
  seen += 3; // trigger, stick and hat back to rest
  await waitFor('the pad to return to rest', () => jsEvents(jstest.lines).length >= seen, { timeoutMs: 10_000 })
    .catch((e) => { throw new Error(env.why(e.message)); });
  const rest = jsEvents(jstest.lines).slice(19 + expected.length + 1, seen);
  assert.deepEqual(rest.sort(), [[2, 0, 0], [2, 5, -32767], [2, 6, 0]].sort(), env.why('released on losing control'));
});

test('apps that cannot use the pads are told apart, and the page hears why', { timeout: 120_000 }, async (t) => {
  const { socket } = scratchSocket(t);
  const env = await startEnv(t, { width: 640, height: 480, framerate: 15, serverArgs: ['--gamepad-socket', socket] });
  const page = await padPage(env, { control: true });
  const notice = () => page.evaluate(() => document.getElementById('notice')?.textContent ?? '');

  // A pad nobody reads: the page is told how to start an app with it.
  await page.evaluate(() => window.__setPad(0, { 0: 1 }, [0, 0, 0, 0]));
  await waitFor('the "no app" notice', async () => (await notice()).includes('reaches no app'), { timeoutMs: 10_000 });

  // A static binary: the launcher says so on stderr and the page hears it.
  const ldconfig = fs.existsSync('/sbin/ldconfig') ? '/sbin/ldconfig' : '/usr/sbin/ldconfig';
  const launcher = env.spawn('static', WRAPPER, [ldconfig, '-p'], { env: { KELPIE_GAMEPAD_SOCKET: socket } });
  await launcher.exited;
  assert.match(launcher.tail(), /statically linked: LD_PRELOAD cannot reach it/, env.why('launcher stderr'));
  await waitFor('the static-binary notice', async () => (await notice()).includes('statically linked'), { timeoutMs: 10_000 });

  // An app reading hidraw: the library reports it once.
  const cat = env.spawn('hidraw', WRAPPER, ['cat', '/dev/hidraw0'], { env: { KELPIE_GAMEPAD_SOCKET: socket } });
  await cat.exited;
  await waitFor('the hidraw notice', async () => (await notice()).includes('not HID'), { timeoutMs: 10_000 });
  assert.equal((await env.health()).body.gamepads.reports, 2);
});

test('without --gamepad-socket the socket is per user and display, found by kelpie-gamepad, and a shared directory is refused', { timeout: 120_000 }, async (t) => {
  const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'kelpie-run-'));
  t.after(() => fs.rmSync(runtime, { recursive: true, force: true }));
  const env = await startEnv(t, { width: 640, height: 480, framerate: 15, serverEnv: { XDG_RUNTIME_DIR: runtime } });
  const number = env.display.slice(1);
  const socket = path.join(runtime, 'kelpie', `gamepad-${number}.sock`);
  assert.equal(fs.statSync(path.dirname(socket)).mode & 0o777, 0o700);
  assert.equal(fs.statSync(socket).mode & 0o777, 0o600);
  assert.equal((await env.health()).body.gamepads.socket, socket);

  // kelpie-gamepad finds it from DISPLAY and XDG_RUNTIME_DIR alone.
  const check = env.spawn('check', WRAPPER, ['--check'], { env: { DISPLAY: env.display, XDG_RUNTIME_DIR: runtime, KELPIE_GAMEPAD_SOCKET: '' } });
  check.readStdout();
  assert.equal(await check.exited, 0, env.why('kelpie-gamepad --check'));
  assert.ok(check.lines.includes(`socket: ${socket} (reachable)`), env.why('the default socket'));

  // Another user's (or anyone's) directory is not trusted: gamepads go off, the rest streams.
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'kelpie-shared-'));
  t.after(() => fs.rmSync(shared, { recursive: true, force: true }));
  fs.mkdirSync(path.join(shared, 'kelpie'), { mode: 0o777 });
  fs.chmodSync(path.join(shared, 'kelpie'), 0o777);
  const second = await env.startKelpie({ name: 'kelpie-shared', env: { XDG_RUNTIME_DIR: shared } });
  assert.equal((await env.health(second.url)).body.gamepads, 'off');
  assert.ok(second.proc.lines.some((l) => l.includes('is not private to this user') && l.includes('gamepads are off')),
    env.why('the refusal is logged'));
  assert.ok(!fs.existsSync(path.join(shared, 'kelpie', `gamepad-${number}.sock`)));
});

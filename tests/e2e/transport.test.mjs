/**
 * The two media transports and the choice between them, with real network namespaces:
 * headless Chromium runs in a namespace of its own (netns.mjs), joined to the server's by
 * a veth pair, so iptables in the browser's namespace can make the server reachable by
 * nothing but TCP to its HTTP port — the front door of an HTTP-only ingress.
 *
 * - HTTP-only: the page falls back to the WebSocket transport by itself and shows the
 *   desktop within 5 s of load at ≥ 90 % of the frame rate; typing and clicks arrive.
 *   Once more over https:// and wss:// (Kelpie's own TLS, as an ingress would terminate
 *   it), where the page is a secure context without any browser switch.
 * - No firewall: the same page stays on WebRTC; switching in the settings moves media
 *   both ways on the same seat (same participant id, control kept).
 * - A WebRTC and a WebSocket viewer share the one encode at full rate; throttling the
 *   socket viewer's link (tbf) makes only its feed skip frames, and it recovers.
 * - Malformed or oversized binary frames close that socket with a clear error; another
 *   viewer keeps playing.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { describe, test } from 'node:test';
import {
  assertClickLands, assertTyping, decodeRate, metricSamples, openConnected, sleep, startEnv, videoStats, waitDecoding, waitFor,
} from './harness.mjs';
import { makeNetns, netnsAvailable } from './netns.mjs';

const FPS = 30;
const MIN_FPS = 0.9 * FPS;
// Another aspect ratio than the display, so the video is letterboxed (as in input.test.mjs).
const VIEWPORT = { width: 1000, height: 700 };
const skip = netnsAvailable();
// Off loopback Kelpie insists on authentication: HTTP Basic, which Chromium also sends on
// the WebSocket handshake.
const PASSWORD = 'netns-test-password';
const AUTH = { serverArgs: ['--auth', 'basic'], serverEnv: { KELPIE_BASIC_PASSWORD: PASSWORD } };

/** A logged-in browser context; its pages start with the settings' transport `choice`. */
async function context(browser, choice = null) {
  const ctx = await browser.newContext({ viewport: VIEWPORT, httpCredentials: { username: 'kelpie', password: PASSWORD } });
  if (choice) {
    await ctx.addInitScript((c) => localStorage.setItem('kelpie.settings', JSON.stringify({ transport: c })), choice);
  }
  return ctx;
}


const origin = (env) => new URL(env.url).origin;

async function transportOf(page) {
  return page.evaluate(() => window.kelpie.transport);
}

/** Counter samples of `name` from /metrics, as {labels-string: value}. */
/** Samples of `name` in /metrics, with the test's credentials. */
function metric(env, name) {
  return metricSamples(env.url, name, { authorization: `Basic ${Buffer.from(`kelpie:${PASSWORD}`).toString('base64')}` });
}

async function assertPlaysAtRate(env, page, what) {
  const { rate, after } = await decodeRate(page, 3000);
  assert.ok(rate >= MIN_FPS, env.why(`${what}: ${rate.toFixed(1)} fps < ${MIN_FPS} (stats ${JSON.stringify(after)})`));
  return rate;
}

describe('transports between network namespaces', { skip: skip || false }, () => {
  test('HTTP-only path: the page falls back to the WebSocket within 5 s and plays, types and clicks', async (t) => {
    const ns = makeNetns(t);
    const env = await startEnv(t, { animate: true, framerate: FPS, host: ns.hostIp, ...AUTH });
    ns.allowOnlyTcp([env.port]);
    const b = await env.launchBrowser(ns.browser(env.logDir, origin(env)));
    const page = await openConnected(env, await context(b.browser), env.url);
    await waitDecoding(env, page, 5);
    const transport = await transportOf(page);
    assert.equal(transport.kind, 'websocket', env.why(`transport ${JSON.stringify(transport)}`));
    assert.match(transport.reason, /no WebRTC media within 3 s/);
    const timings = await page.evaluate(() => window.kelpie.timings);
    // The page's own clock: ms from the start of navigation to the first picture shown.
    assert.ok(timings.first_frame <= 5000, env.why(`first frame at ${timings.first_frame} ms: ${JSON.stringify(timings)}`));
    const health = await env.health();
    assert.deepEqual(health.body.transports, { webrtc: 0, websocket: 1 });
    await assertPlaysAtRate(env, page, 'HTTP-only WebSocket viewer');
    // The remote cursor came as a data-channel message inside a binary frame.
    const cursor = await page.evaluate(() => window.kelpie.cursor.received);
    assert.ok(cursor.images + cursor.bySerial > 0, `no cursor message over the socket: ${JSON.stringify(cursor)}`);
    await assertTyping(env, page, 'Kelpie over HTTP 123');
    await assertClickLands(env, page, VIEWPORT, { x: 700, y: 200 }, 'left', 1);
  });

  test('HTTP-only over TLS: https:// page, media on wss://, no browser switch needed', async (t) => {
    const ns = makeNetns(t);
    const dir = fs.mkdtempSync('/tmp/kelpie-tls-');
    t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
    const [cert, key] = [path.join(dir, 'cert.pem'), path.join(dir, 'key.pem')];
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', `/CN=${ns.hostIp}`,
      '-addext', `subjectAltName=IP:${ns.hostIp}`, '-keyout', key, '-out', cert], { stdio: 'ignore' });
    // The harness's own /health polls must accept the self-signed certificate too.
    const before = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = '0';
    t.after(() => {
      if (before === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
      else process.env.NODE_TLS_REJECT_UNAUTHORIZED = before;
    });
    const env = await startEnv(t, {
      animate: true, framerate: FPS, host: ns.hostIp,
      serverArgs: [...AUTH.serverArgs, '--tls-cert', cert, '--tls-key', key], serverEnv: AUTH.serverEnv,
    });
    assert.match(env.url, /^https:/);
    ns.allowOnlyTcp([env.port]);
    const b = await env.launchBrowser({ executablePath: ns.chromium(env.logDir), args: ['--ignore-certificate-errors'] });
    const page = await openConnected(env, await context(b.browser), env.url);
    assert.equal(await page.evaluate(() => window.isSecureContext), true);
    await waitDecoding(env, page, 5);
    assert.equal((await transportOf(page)).kind, 'websocket');
    await assertPlaysAtRate(env, page, 'HTTP-only over TLS');
    await assertTyping(env, page, 'over wss');
  });

  test('with nothing blocked the page stays on WebRTC, and the settings move media both ways on one seat', async (t) => {
    const ns = makeNetns(t);
    const env = await startEnv(t, { animate: true, framerate: FPS, host: ns.hostIp, ...AUTH });
    const b = await env.launchBrowser(ns.browser(env.logDir, origin(env)));
    const page = await openConnected(env, await context(b.browser), env.url);
    await waitDecoding(env, page, 5);
    assert.equal((await transportOf(page)).kind, 'webrtc');
    await page.waitForFunction(() => window.kelpie.hasControl, null, { timeout: 10_000 });
    const seat = await page.evaluate(() => window.kelpie.room.you);

    await page.click('button[title="Settings"]');
    await page.selectOption('select[name=transport]', 'websocket');
    await page.waitForFunction(() => window.kelpie.transport?.kind === 'websocket', null, { timeout: 10_000 });
    await waitDecoding(env, page, 5);
    assert.match(await page.textContent('#transport-info'), /WebSocket \(chosen in the settings\)/);
    await assertPlaysAtRate(env, page, 'after switching to the WebSocket');
    assert.equal(await page.evaluate(() => window.kelpie.room.you), seat, 'same participant');
    assert.ok(await page.evaluate(() => window.kelpie.hasControl), 'control kept across the switch');
    await assertTyping(env, page, 'switched');

    await page.selectOption('select[name=transport]', 'webrtc');
    await page.waitForFunction(() => window.kelpie.transport?.kind === 'webrtc' && window.kelpie.pc, null, { timeout: 10_000 });
    await waitDecoding(env, page, 5);
    await assertPlaysAtRate(env, page, 'back on WebRTC');
    assert.equal(await page.evaluate(() => window.kelpie.room.you), seat);
    assert.deepEqual((await env.health()).body.transports, { webrtc: 1, websocket: 0 });
  });

  test('a WebRTC and a WebSocket viewer share one encode; throttling the socket slows only that viewer', async (t) => {
    const rtcNs = makeNetns(t);
    const wsNs = makeNetns(t);
    // One server reachable from both namespaces: it listens on every address of this one.
    const env = await startEnv(t, { animate: true, framerate: FPS, host: rtcNs.hostIp, ...AUTH });
    // The second namespace reaches the server through its own veth, routed on this host.
    wsNs.exec('ip', ['route', 'add', `${rtcNs.hostIp}/32`, 'via', wsNs.hostIp]);
    const rtcBrowser = await env.launchBrowser(rtcNs.browser(env.logDir, origin(env)));
    const wsBrowser = await env.launchBrowser(wsNs.browser(env.logDir, origin(env)));
    const rtc = await openConnected(env, await context(rtcBrowser.browser), env.url);
    const ws = await openConnected(env, await context(wsBrowser.browser, 'websocket'), env.url);
    await waitDecoding(env, rtc, 5);
    await waitDecoding(env, ws, 5);
    assert.equal((await transportOf(rtc)).kind, 'webrtc');
    assert.equal((await transportOf(ws)).kind, 'websocket');
    assert.deepEqual((await env.health()).body.transports, { webrtc: 1, websocket: 1 });
    const [a, b] = await Promise.all([decodeRate(rtc, 3000), decodeRate(ws, 3000)]);
    // Both play at about the full rate before the throttle (two pages decoding on two busy
    // cores reach 27–30 fps); the throttle's effect is judged against the socket's own rate.
    assert.ok(a.rate >= 0.8 * FPS && b.rate >= 0.8 * FPS, env.why(`both at full rate: webrtc ${a.rate}, websocket ${b.rate}`));

    const wsId = await ws.evaluate(() => window.kelpie.room.you);
    // The socket viewer's acknowledgements give it a bandwidth estimate of its own.
    const estimate = async () => (await metric(env, 'kelpie_viewer_estimate_bps'))[`{viewer="${wsId}"}`];
    await waitFor('an estimate for the socket viewer', async () => (await estimate()) > 0, { timeoutMs: 10_000 });
    const skippedBefore = (await metric(env, 'kelpie_socket_frames_total'))[`{viewer="${wsId}",result="skipped"}`] ?? 0;
    wsNs.throttle('300kbit');
    await sleep(1000);
    const during = await decodeRate(rtc, 3000);
    assert.ok(during.rate >= MIN_FPS, env.why(`WebRTC viewer slowed by the other's link: ${during.rate.toFixed(1)} fps`));
    const frames = await metric(env, 'kelpie_socket_frames_total');
    const skipped = frames[`{viewer="${wsId}",result="skipped"}`];
    assert.ok(skipped > skippedBefore, env.why(`the throttled socket's feed skipped no frames: ${JSON.stringify(frames)}`));
    const throttled = await decodeRate(ws, 3000);
    assert.ok(throttled.rate < Math.min(MIN_FPS, 0.8 * b.rate),
      `the throttled viewer still decodes ${throttled.rate} fps (${b.rate} before): the link was not the limit`);
    let est = null;
    await waitFor('the socket viewer\'s estimate to fall under 1 Mbit/s', async () => (est = await estimate()) < 1e6,
      { timeoutMs: 15_000 }).catch(() => { throw new Error(env.why(`socket viewer's estimate ${est} bit/s behind 300 kbit/s`)); });

    wsNs.unthrottle();
    let rate = 0;
    await waitFor('the socket viewer back at full rate', async () => {
      rate = (await decodeRate(ws, 2000)).rate;
      return rate >= MIN_FPS;
    }, { timeoutMs: 20_000, intervalMs: 0 }).catch(() => {
      throw new Error(env.why(`after unthrottling the socket viewer decodes ${rate.toFixed(1)} fps`));
    });
  });
});

describe('the WebSocket transport refuses bad frames', () => {
  test('malformed and oversized binary frames close that socket with an error; another viewer keeps playing', async (t) => {
    const env = await startEnv(t, { animate: true, framerate: FPS, serverArgs: ['--transport', 'websocket'] });
    const b = await env.launchBrowser();
    const viewer = await env.openViewer(b);
    await waitDecoding(env, viewer, 5);
    const other = await b.browser.newPage();
    await other.goto(new URL('health', env.url).href);
    const wsUrl = new URL('ws?transport=websocket', env.url).href.replace(/^http/, 'ws');
    for (const [what, bytes, code] of [
      ['unknown kind', [9, 1, 2], 'bad_frame'],
      ['empty frame', [], 'bad_frame'],
      ['data-channel frame that is not UTF-8', [1, 0xff, 0xfe], 'bad_frame'],
      ['200 KiB frame', 200 * 1024, 'too_large'],
    ]) {
      const before = await videoStats(viewer);
      const got = await other.evaluate(async ({ url, bytes }) => {
        const frame = typeof bytes === 'number' ? new Uint8Array(bytes).fill(1) : new Uint8Array(bytes);
        const ws = new WebSocket(url);
        ws.binaryType = 'arraybuffer';
        const messages = [];
        return new Promise((resolve) => {
          ws.onmessage = (e) => {
            if (typeof e.data !== 'string') return;
            const m = JSON.parse(e.data);
            messages.push(m);
            if (m.type === 'welcome') ws.send(frame);
          };
          ws.onclose = (e) => resolve({ messages, code: e.code, reason: e.reason });
          setTimeout(() => resolve({ messages, timedOut: true }), 10_000);
        });
      }, { url: wsUrl, bytes });
      const error = got.messages.find((m) => m.type === 'error');
      assert.equal(error?.code, code, env.why(`${what}: ${JSON.stringify(got)}`));
      assert.equal(got.code, 1008, `${what}: closed with ${got.code}`);
      assert.ok(error.message.length > 10, `${what}: a message that says why (${error.message})`);
      const after = await waitDecoding(env, viewer, before.framesDecoded + FPS);
      assert.ok(after.framesDecoded > before.framesDecoded, `${what}: the other viewer stopped`);
    }
    // Over the socket's 1 MiB read limit: cut off while being read, closed with 1009.
    const huge = await other.evaluate(async (url) => {
      const ws = new WebSocket(url);
      return new Promise((resolve) => {
        ws.onmessage = (e) => {
          if (typeof e.data === 'string' && JSON.parse(e.data).type === 'welcome') ws.send(new Uint8Array(2 * 1024 * 1024));
        };
        ws.onclose = (e) => resolve({ code: e.code, reason: e.reason });
        setTimeout(() => resolve({ timedOut: true }), 10_000);
      });
    }, wsUrl);
    assert.equal(huge.code, 1009, env.why(`2 MiB frame: ${JSON.stringify(huge)}`));
    assert.match(huge.reason, /frame refused/);
    await assertPlaysAtRate(env, viewer, 'the well-behaved viewer');

    // The upgrade answer tells buffering proxies (nginx) not to buffer the socket.
    const headers = await new Promise((resolve, reject) => {
      const req = http.get(new URL('ws', env.url), {
        headers: {
          Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
          'Sec-WebSocket-Key': Buffer.from('kelpie-test-key!').toString('base64'),
        },
        timeout: 5000,
      });
      req.on('upgrade', (res, socket) => { socket.destroy(); resolve(res.headers); });
      req.on('response', (res) => reject(new Error(`no upgrade: HTTP ${res.statusCode}`)));
      req.on('error', reject);
    });
    assert.equal(headers['x-accel-buffering'], 'no', JSON.stringify(headers));
  });
});

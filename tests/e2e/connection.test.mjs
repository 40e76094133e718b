/**
 * The connection overlay (web-client/connection.js) in Chromium: when media cannot get
 * through it names the stuck step and offers "Retry now"; when the server is killed it
 * says the server is gone, over the last picture kept dimmed; and when a new server run
 * comes back the page says the desktop was restarted.
 *
 * Blocked media: the browser in a network namespace of its own (netns.mjs) may reach the
 * server only by TCP to its HTTP port, and the server offers WebRTC only, so nothing can
 * carry the picture.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startEnv, waitDecoding, waitFor } from './harness.mjs';
import { makeNetns, netnsAvailable } from './netns.mjs';

const VIEWPORT = { width: 1000, height: 700 };
const PASSWORD = 'connection-test-password';
// Off loopback Kelpie insists on authentication (HTTP Basic; Chromium sends it on the WebSocket too).
const AUTH = { serverArgs: ['--auth', 'basic', '--transport', 'webrtc'], serverEnv: { KELPIE_BASIC_PASSWORD: PASSWORD } };

/** The overlay as the person sees it: {step, visible, title, retry (a visible button)}. */
const overlay = (page) => page.evaluate(() => {
  const box = document.getElementById('connection');
  const retry = document.getElementById('connection-retry');
  return {
    step: window.kelpie.connection.step,
    visible: !!box && !box.hidden && box.getBoundingClientRect().height > 0,
    title: document.getElementById('connection-title')?.textContent ?? '',
    text: box?.textContent ?? '',
    retry: !!retry && retry.getBoundingClientRect().width > 0,
  };
});

async function waitStep(env, page, step, timeoutMs) {
  let last = null;
  await waitFor(`the overlay to name the ${step} step`, async () => {
    last = await overlay(page);
    return last.visible && last.step === step;
  }, { timeoutMs, intervalMs: 100 }).catch((err) => { throw new Error(env.why(`${err.message}; overlay ${JSON.stringify(last)}`)); });
  return last;
}

describe('connection states', { timeout: 180_000 }, () => {
  test('media blocked: within 10 s the overlay names the ICE step, says what to change, and Retry starts over', { skip: netnsAvailable() || false }, async (t) => {
    const ns = makeNetns(t);
    const env = await startEnv(t, { width: 800, height: 600, framerate: 15, host: ns.hostIp, ...AUTH });
    ns.allowOnlyTcp([env.port]);
    const b = await env.launchBrowser(ns.browser(env.logDir, new URL(env.url).origin));
    const ctx = await b.browser.newContext({ viewport: VIEWPORT, httpCredentials: { username: 'kelpie', password: PASSWORD } });
    const page = await ctx.newPage();
    await page.goto(env.url, { timeout: 15_000 });
    // Within 10 s of the page loading (the overlay waits 4 s of them for media).
    const shown = await waitStep(env, page, 'ice', 10_000);
    assert.match(shown.title, /ICE/);
    assert.match(shown.text, /UDP/);
    assert.match(shown.text, /--turn-url/);
    assert.ok(shown.retry, 'no visible Retry button');
    const before = await page.evaluate(() => window.kelpie.timings.ws_start);
    await page.click('#connection-retry');
    await waitFor('a new attempt', () => page.evaluate((t0) => window.kelpie.timings.ws_start > t0, before),
      { timeoutMs: 5000, intervalMs: 50 });
    // Nothing could get through, so nothing played.
    assert.equal(await page.evaluate(() => window.kelpie.timings.first_frame ?? null), null);
  });

  test('server killed: "the server is gone" over the dimmed last picture; back again: "the desktop was restarted"', async (t) => {
    const env = await startEnv(t, { width: 800, height: 600, framerate: 15, animate: true });
    const viewer = await env.launchBrowser();
    const page = await env.openViewer(viewer, { viewport: VIEWPORT });
    await waitDecoding(env, page, 5);
    assert.equal((await overlay(page)).visible, false, 'the overlay shows while the picture plays');

    const playing = await page.evaluate(() => window.kelpie.timings.ws_start);
    env.server.child.kill('SIGKILL');
    const gone = await waitStep(env, page, 'server', 15_000);
    assert.equal(gone.title, 'The server is gone');
    assert.ok(gone.retry);
    const still = await page.evaluate(() => {
      const c = document.getElementById('last-frame');
      return { shown: !c.hidden, width: c.width, height: c.height };
    });
    assert.deepEqual(still, { shown: true, width: 800, height: 600 }, 'the last picture is not kept');

    await env.restartServer();
    // A picture of a later attempt (between attempts the timings are the ended one's).
    await waitFor('the page to play again', () => page.evaluate((t0) => window.kelpie.timings.ws_start > t0
      && Number.isFinite(window.kelpie.timings.first_frame), playing),
    { timeoutMs: 30_000, intervalMs: 200 }).catch((err) => { throw new Error(env.why(err.message)); });
    const after = await page.evaluate(() => ({
      restarts: window.kelpie.connection.restarts,
      notice: document.getElementById('notice')?.textContent ?? '',
      still: !document.getElementById('last-frame').hidden,
    }));
    assert.equal(after.restarts, 1);
    assert.match(after.notice, /desktop was restarted/);
    assert.equal(after.still, false, 'the old picture stays over the new one');
    await waitFor('the overlay to go', async () => !(await overlay(page)).visible, { timeoutMs: 5000 });
  });
});

/**
 * A phone: a 390×844 CSS-pixel viewport at device pixel ratio 3 with touch (Chromium's
 * emulation). The remote screen follows CSS pixels × 1.5 at most (settings.js
 * remoteScale), so the desktop's text stays readable, and its DPI matches (144).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Env, openConnected, waitFor } from './harness.mjs';

describe('phone', { timeout: 120_000 }, () => {
  let env;
  let viewer;

  before(async () => {
    // Tall enough for the phone's 1.5× size (RandR cannot grow past Xvfb's framebuffer).
    env = new Env('phone', { width: 640, height: 1300, framerate: 15, resize: true });
    await env.start();
    viewer = await env.launchBrowser();
  });
  after(() => env?.close());

  test('at DPR 3 the remote screen is at most 1.5× the CSS pixels in each direction, at 144 DPI', async () => {
    const page = await openConnected(env, viewer.browser, env.url,
      { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true });
    assert.equal(await page.evaluate(() => matchMedia('(pointer: coarse)').matches), true, 'the emulated phone has no coarse pointer');
    let size = null;
    await waitFor('the X screen to follow the phone', () => {
      const r = [...env.probeEvents].reverse().find((e) => e.ev === 'resize');
      size = r ? [r.width, r.height] : null;
      return size && size[0] !== env.width;
    }, { timeoutMs: 10_000 }).catch(() => {});
    assert.deepEqual(size, [584, 1266], env.why('X screen size'));
    assert.ok(size[0] <= 390 * 1.5 && size[1] <= 844 * 1.5);
    const xrdb = execFileSync('xrdb', ['-query'], { env: { ...process.env, DISPLAY: env.display }, encoding: 'utf8' });
    assert.match(xrdb, /Xft\.dpi:\s*144\b/);
    await page.close();
  });
});

/**
 * Resize to fit: the X screen follows the browser viewport × devicePixelRatio, the video
 * takes the new size, and the WebRTC connection stays the same (no reconnect). The DPI
 * follows the pixel ratio (Xft.dpi for any desktop).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Env, openConnected, waitFor } from './harness.mjs';

describe('resize to fit', { timeout: 180_000 }, () => {
  let env;
  let viewer;

  before(async () => {
    // The display starts at 1600x900, the largest size this test asks for.
    env = new Env('resize', { width: 1600, height: 900, framerate: 30, resize: true, animate: true });
    await env.start();
    viewer = await env.launchBrowser();
  });
  after(() => env?.close());

  const screenSize = () => {
    const r = [...env.probeEvents].reverse().find((e) => e.ev === 'resize');
    return r ? `${r.width}x${r.height}` : `${env.width}x${env.height}`;
  };

  async function expectSize(page, w, h) {
    await waitFor(`X screen ${w}x${h}`, () => screenSize() === `${w}x${h}`, { timeoutMs: 10_000 }).catch(() => {});
    if (screenSize() !== `${w}x${h}`) {
      // Say first what decides a resize: the page's seat and channel, and the server's
      // lines about resizing and refusals (the full logs follow, and may be cut).
      const seat = await page.evaluate(() => ({
        role: window.kelpie.role, control: window.kelpie.hasControl, transport: window.kelpie.transport,
        inner: [window.innerWidth, window.innerHeight], dpr: window.devicePixelRatio,
      })).catch((e) => `page unreadable: ${e.message}`);
      const kelpie = env.procs.find((p) => p.name === 'kelpie');
      const relevant = (kelpie?.lines ?? []).filter((l) => /resiz|refus|control|screen/i.test(l)).slice(-20);
      assert.fail(`X screen is ${screenSize()}, not ${w}x${h}; page ${JSON.stringify(seat)}\n`
        + `kelpie on resizing:\n${relevant.join('\n') || '(nothing)'}\n${env.why('logs')}`);
    }
    await page.waitForFunction(([ww, hh]) => window.kelpie.video.videoWidth === ww && window.kelpie.video.videoHeight === hh,
      [w, h], { timeout: 10_000 }).catch(() => {});
    const got = await page.evaluate(() => [window.kelpie.video.videoWidth, window.kelpie.video.videoHeight]);
    assert.deepEqual(got, [w, h], 'the video did not take the new size');
  }

  test('the screen follows the viewport without a reconnect', async () => {
    const page = await openConnected(env, viewer.browser, env.url, { viewport: { width: 1000, height: 600 } });
    await expectSize(page, 1000, 600);
    await page.evaluate(() => { window.firstPc = window.kelpie.pc; });
    const decoded = await page.evaluate(() => window.kelpie.video.getVideoPlaybackQuality().totalVideoFrames);

    await page.setViewportSize({ width: 800, height: 500 });
    await expectSize(page, 800, 500);
    await page.setViewportSize({ width: 1202, height: 677 }); // odd heights become even
    await expectSize(page, 1202, 676);

    const same = await page.evaluate(() => window.firstPc === window.kelpie.pc
      && window.kelpie.pc.connectionState === 'connected');
    assert.ok(same, 'the page reconnected to follow the resize');
    const later = await page.evaluate(() => window.kelpie.video.getVideoPlaybackQuality().totalVideoFrames);
    assert.ok(later > decoded, `no frames decoded after the resize (${decoded} → ${later})`);
    await page.close();
  });

  test('a device pixel ratio of 2 doubles the pixels and the DPI', async () => {
    const page = await openConnected(env, viewer.browser, env.url,
      { viewport: { width: 640, height: 400 }, deviceScaleFactor: 2 });
    await expectSize(page, 1280, 800);
    const xrdb = () => execFileSync('xrdb', ['-query'], { env: { ...process.env, DISPLAY: env.display }, encoding: 'utf8' });
    await waitFor('Xft.dpi 192', () => /Xft\.dpi:\s*192/.test(xrdb()), { timeoutMs: 5000 }).catch(() => {});
    assert.match(xrdb(), /Xft\.dpi:\s*192/);
    await page.close();
  });

  test('"keep remote size" leaves the screen alone and scales locally', async () => {
    const page = await openConnected(env, viewer.browser, env.url, { viewport: { width: 900, height: 700 } });
    await expectSize(page, 900, 700);
    await page.click('#toolbar button[title="Settings"]');
    await page.selectOption('#settings-panel select[name="resize"]', 'scale');
    await page.setViewportSize({ width: 700, height: 500 });
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(screenSize(), '900x700', 'the screen was resized although the user chose to keep its size');
    const stored = await page.evaluate(() => JSON.parse(localStorage.getItem('kelpie.settings')).resize);
    assert.equal(stored, 'scale', 'the choice is remembered in this browser');
    await page.close();
  });
});

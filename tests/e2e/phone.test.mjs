/**
 * A phone: a 390×844 CSS-pixel viewport at device pixel ratio 3 with touch (Chromium's
 * emulation). The remote screen follows CSS pixels × 1.5 at most (settings.js
 * remoteScale), so the desktop's text stays readable, and its DPI matches (144); the
 * extra-keys row types what a phone's keyboard lacks; every target is 44 CSS px.
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

  test('the extra-keys row types Esc and a latched Ctrl+C into X, and every toolbar target is 44 px', async () => {
    const page = await openConnected(env, viewer.browser, env.url,
      { viewport: { width: 390, height: 844 }, deviceScaleFactor: 3, isMobile: true, hasTouch: true });
    await page.waitForFunction(() => window.kelpie.hasControl && window.kelpie.channel?.readyState === 'open', null, { timeout: 10_000 });
    const small = await page.evaluate(() => [...document.querySelectorAll('#toolbar button, #extra-keys button')]
      .filter((b) => b.getClientRects().length > 0)
      .map((b) => ({ name: b.getAttribute('aria-label') || b.textContent, ...b.getBoundingClientRect().toJSON() }))
      .filter((r) => r.width < 44 || r.height < 44)
      .map((r) => `${r.name} ${r.width}×${r.height}`));
    assert.deepEqual(small, [], 'targets under 44 CSS px');

    let from = env.probeEvents.length;
    await page.tap('#extra-keys [data-key="Esc"]');
    await env.waitProbe('Escape in X', (e) => e.ev === 'key' && e.keysym === 0xff1b, 10_000, from);

    from = env.probeEvents.length;
    await page.tap('#extra-keys [data-key="Ctrl"]');
    assert.equal(await page.getAttribute('#extra-keys [data-key="Ctrl"]', 'aria-pressed'), 'true');
    await page.keyboard.press('c');
    const c = await env.waitProbe('c in X', (e) => e.ev === 'key' && e.keysym === 0x63, 10_000, from);
    assert.equal(c.state & 4, 4, `Control was not held for the c (state ${c.state})`);
    // The latch ends with the key: Control is released in X and on the button.
    await env.waitProbe('Control released', (e) => e.ev === 'key_up' && e.keysym === 0xffe3, 10_000, from);
    assert.equal(await page.getAttribute('#extra-keys [data-key="Ctrl"]', 'aria-pressed'), 'false');
    await page.close();
  });
});

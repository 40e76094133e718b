/**
 * The settings panel: frame rate and bitrate chosen in the page change the running
 * stream (no reconnect), and the choices are remembered by this browser.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Env, decodeRate, openConnected, sleep, waitDecoding, waitFor } from './harness.mjs';

describe('settings panel', { timeout: 180_000 }, () => {
  let env;
  let viewer;

  before(async () => {
    env = new Env('settings', { width: 1280, height: 720, framerate: 30, animate: true });
    await env.start();
    viewer = await env.launchBrowser();
  });
  after(() => env?.close());

  const serverLog = () => env.procs.find((p) => p.name === 'kelpie')?.lines.join('\n') ?? '';

  test('a lower frame rate and bitrate apply to the running stream and are remembered', async () => {
    const context = await viewer.browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await openConnected(env, context, env.url);
    await waitDecoding(env, page, 5);
    await page.evaluate(() => { window.firstPc = window.kelpie.pc; });

    await page.click('#toolbar button[title="Settings"]');
    await page.selectOption('#settings-panel select[name="fps"]', '15');
    await page.selectOption('#settings-panel select[name="kbps"]', '2000');
    await waitFor('the server to apply both', () => /frame rate changed fps=15/.test(serverLog())
      && /bitrate changed kbps=2000/.test(serverLog()), { timeoutMs: 5000 });
    await sleep(1500); // the encoder picks up the new caps on its next frame
    const { rate } = await decodeRate(page, 3000);
    assert.ok(rate <= 18, `still decoding ${rate.toFixed(1)} fps after choosing 15`);
    assert.ok(rate >= 8, `only ${rate.toFixed(1)} fps after choosing 15: the stream stalled`);
    assert.ok(await page.evaluate(() => window.firstPc === window.kelpie.pc), 'the page reconnected');

    // A new page in the same browser profile comes back with the same choices and sends them.
    const again = await openConnected(env, context, env.url);
    const stored = await again.evaluate(() => window.kelpie.settings.settings);
    assert.equal(stored.fps, 15);
    assert.equal(stored.kbps, 2000);
    assert.equal(await again.inputValue('#settings-panel select[name="fps"]'), '15');
    await context.close();
  });
});

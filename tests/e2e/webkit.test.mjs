/**
 * WebKit: Debian's WebKitGTK (MiniBrowser under WebKitWebDriver, webkit.mjs), the engine
 * of Safari and of every iOS browser. As Debian builds it, it has no WebRTC at all but
 * does have WebCodecs, so the page must go straight to the WebSocket transport and play,
 * type and click there. docs/using.md records what else was tried.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Env, assertClickLands, assertTyping, videoStats, waitDecoding, waitFor } from './harness.mjs';
import { launchWebKit, pageOf, webkitMissing } from './webkit.mjs';

describe('WebKitGTK', { skip: webkitMissing() || false, timeout: 180_000 }, () => {
  let env;
  let wk;
  let page;
  let viewport;

  before(async () => {
    // Small and slow enough for WebKitGTK's software decode and canvas drawing on two
    // cores beside the encoder: at 1280×720 and 30 fps a fresh-clone CI run decoded 9 of
    // 321 frames (the page skipped to keyframes behind a full decode queue).
    env = new Env('webkit', { width: 800, height: 600, framerate: 15, animate: true });
    await env.start();
    wk = await launchWebKit(env);
    page = pageOf(wk);
  });
  after(() => env?.close());

  test('plays the desktop over the WebSocket (it has no WebRTC) within 10 s of load', async () => {
    await wk.navigate(env.url);
    await waitDecoding(env, page, 5, 10_000);
    const transport = await page.evaluate(() => window.kelpie.transport);
    assert.equal(transport.kind, 'websocket', env.why(`transport ${JSON.stringify(transport)}`));
    assert.match(transport.reason, /cannot decode H\.264/);
    const first = await videoStats(page);
    const later = await waitDecoding(env, page, first.framesDecoded + 15, 10_000);
    assert.deepEqual([later.frameWidth, later.frameHeight], [env.width, env.height]);
    // Its version, for the record in the test log.
    console.log(`# WebKitGTK ${wk.version}: ${JSON.stringify(await page.evaluate(() => navigator.userAgent))}`);
  });

  test('typing "Hello 42" arrives exactly in an X client', async () => {
    await assertTyping(env, page, 'Hello 42');
  });

  test('text beyond ASCII arrives through WebKit\'s key events', async () => {
    await assertTyping(env, page, 'Grüße, café € жук');
  });

  test('a click lands at the proportional point', async () => {
    viewport = await page.evaluate(() => ({ width: window.innerWidth, height: window.innerHeight }));
    await assertClickLands(env, page, viewport, { x: Math.round(viewport.width * 0.3), y: Math.round(viewport.height * 0.4) }, 'left', 1);
  });

  test('the server counts it as a browser without WebRTC H.264', async () => {
    let text = '';
    await waitFor('the count', async () => {
      text = await (await fetch(new URL('metrics', env.url), { signal: AbortSignal.timeout(3000) })).text();
      return /kelpie_codec_unsupported_total\{outcome="websocket"\} 1\n/.test(text);
    }, { timeoutMs: 5000 }).catch(() => {});
    assert.match(text, /kelpie_codec_unsupported_total\{outcome="websocket"\} 1\n/);
  });
});

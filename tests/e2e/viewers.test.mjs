/** Two viewers share the stream; one leaving does not disturb the other. */
import assert from 'node:assert/strict';
import test from 'node:test';
import { decodeRate, sleep, startEnv, videoStats, waitDecoding } from './harness.mjs';

test('two viewers play; closing one leaves the other playing', { timeout: 150_000 }, async (t) => {
  const env = await startEnv(t, { width: 1280, height: 720, framerate: 30, animate: true });
  const viewport = { width: 960, height: 540 };

  const a = await env.launchBrowser();
  const b = await env.launchBrowser();
  const pageA = await env.openViewer(a, { viewport });
  const pageB = await env.openViewer(b, { viewport });
  await waitDecoding(env, pageA, 1);
  await waitDecoding(env, pageB, 1);

  // Both are really playing: their decoded-frame counters rise together.
  const [ra, rb] = await Promise.all([decodeRate(pageA, 2000), decodeRate(pageB, 2000)]);
  t.diagnostic(`two viewers: ${ra.rate.toFixed(1)} and ${rb.rate.toFixed(1)} fps`);
  assert.ok(ra.rate > 0.5 * env.framerate, env.why(`viewer A decodes ${ra.rate.toFixed(1)} fps`));
  assert.ok(rb.rate > 0.5 * env.framerate, env.why(`viewer B decodes ${rb.rate.toFixed(1)} fps`));
  await env.waitHealth('/health viewers == 2', (h) => h.viewers === 2);

  await a.close();

  // B never stalls: every second of the next three brings new frames.
  let prev = (await videoStats(pageB)).framesDecoded;
  for (let i = 0; i < 3; i++) {
    await sleep(1000);
    const now = (await videoStats(pageB)).framesDecoded;
    assert.ok(now - prev >= 0.5 * env.framerate,
      env.why(`viewer B decoded ${now - prev} frames in second ${i + 1} after A left`));
    prev = now;
  }
  assert.equal(await pageB.evaluate(() => kelpie.state), 'connected');

  const h = await env.waitHealth('/health viewers == 1', (body) => body.viewers === 1, 10_000);
  assert.equal(h.viewers, 1);
});

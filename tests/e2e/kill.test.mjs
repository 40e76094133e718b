/**
 * A browser that dies without a goodbye (SIGKILL) is noticed and removed within 10 s,
 * and the server keeps serving new viewers afterwards.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { decodeRate, startEnv, waitDecoding } from './harness.mjs';

test('a SIGKILLed browser is removed within 10 s, then a new one plays', { timeout: 150_000 }, async (t) => {
  const env = await startEnv(t, { width: 1280, height: 720, framerate: 30, animate: true });
  const viewport = { width: 960, height: 540 };

  const doomed = await env.launchBrowser();
  const page = await env.openViewer(doomed, { viewport });
  await waitDecoding(env, page, 5);
  await env.waitHealth('/health viewers == 1', (h) => h.viewers === 1 && h.branches >= 1);

  doomed.kill();
  const killedAt = Date.now();
  await env.waitHealth('/health viewers == 0 and branches == 0 within 10 s',
    (h) => h.viewers === 0 && h.branches === 0, 10_000);
  t.diagnostic(`removed ${((Date.now() - killedAt) / 1000).toFixed(1)} s after SIGKILL`);

  const fresh = await env.launchBrowser();
  const page2 = await env.openViewer(fresh, { viewport });
  await waitDecoding(env, page2, 1);
  const { rate } = await decodeRate(page2, 2000);
  assert.ok(rate > 0.5 * env.framerate, env.why(`the new viewer decodes ${rate.toFixed(1)} fps`));
  await env.waitHealth('/health viewers == 1 again', (h) => h.viewers === 1);
});

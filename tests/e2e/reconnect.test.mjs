/**
 * The page survives a server restart: it notices the lost connection, shows that it is
 * reconnecting, and plays again once the server is back, without a reload.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { startEnv, waitDecoding, waitFor } from './harness.mjs';

test('the page reconnects after the server restarts', { timeout: 150_000 }, async (t) => {
  const env = await startEnv(t, { width: 1280, height: 720, framerate: 30, animate: true });
  const viewer = await env.launchBrowser();
  const page = await env.openViewer(viewer, { viewport: { width: 960, height: 540 } });
  await waitDecoding(env, page, 1);
  const firstPc = await page.evaluateHandle(() => kelpie.pc);

  // Record every state the page goes through, then pull the server away.
  await page.evaluate(() => {
    window.seenStates = [];
    setInterval(() => {
      if (window.seenStates.at(-1) !== kelpie.state) window.seenStates.push(kelpie.state);
    }, 20);
  });
  await env.restartServer();

  await waitFor('the page to reconnect', () => page.evaluate(
    (old) => kelpie.state === 'connected' && kelpie.pc !== old, firstPc), { timeoutMs: 20_000, intervalMs: 200 })
    .catch((err) => { throw new Error(env.why(err.message)); });
  const seen = await page.evaluate(() => window.seenStates);
  assert.ok(seen.includes('reconnecting'), `states seen: ${seen}`);
  assert.equal(seen.at(-1), 'connected', `states seen: ${seen}`);
  assert.equal(await page.evaluate((old) => old.connectionState, firstPc), 'closed', 'the old peer connection is torn down');
  await waitDecoding(env, page, 1);
  await env.waitHealth('/health viewers == 1 on the new server', (h) => h.viewers === 1);
});

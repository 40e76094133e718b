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

  // What the page went through since the restart began: its recorded state changes (not
  // a sampling of kelpie.state, which could miss a short state), its attempt's timings.
  const since = (await page.evaluate(() => kelpie.stateHistory)).length;
  const story = async () => page.evaluate((n) => JSON.stringify({
    states: kelpie.stateHistory.slice(n), state: kelpie.state, timings: kelpie.timings,
    transport: kelpie.transport, connection: kelpie.connection,
  }), since).catch((e) => `(page unreadable: ${e.message})`);
  await env.restartServer();

  await waitFor('the page to reconnect', () => page.evaluate(
    (old) => kelpie.state === 'connected' && kelpie.pc !== old, firstPc), { timeoutMs: 30_000, intervalMs: 200 })
    .catch(async (err) => { throw new Error(env.why(`${err.message}; page: ${await story()}`)); });
  const seen = (await page.evaluate((n) => kelpie.stateHistory.slice(n), since)).map((h) => h.state);
  t.diagnostic(`states after the restart: ${seen.join(' → ')}`);
  assert.ok(seen.includes('reconnecting'), env.why(`no 'reconnecting' state; page: ${await story()}`));
  assert.equal(seen.at(-1), 'connected', env.why(`page: ${await story()}`));
  assert.equal(await page.evaluate((old) => old.connectionState, firstPc), 'closed', 'the old peer connection is torn down');
  await waitDecoding(env, page, 1);
  await env.waitHealth('/health viewers == 1 on the new server', (h) => h.viewers === 1);
});

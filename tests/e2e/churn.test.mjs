/**
 * Reconnect churn: a page reloaded again and again right after it connects leaves the
 * server up, the other participant playing, and no branch behind.
 *
 * Before stopped branches were kept for a grace period (`server/src/media/grave.rs`),
 * GStreamer 1.22's ICE agent crashed the server with SIGSEGV within a few such reloads.
 * 25 reloads take longer than the grace period, so branches are freed during the test.
 *
 * Once the last stopped branch is past its grace, only the two live participants' ICE
 * agents remain. Chromium hides its host addresses behind mDNS names; until Kelpie ran
 * GLib's default main context (`server/src/media/main_context.rs`), resolving them held
 * every reloaded page's agent, with its sockets, for ever.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { startEnv, openConnected, waitDecoding, videoStats } from './harness.mjs';

test('25 quick reloads leave the server up and the other viewer playing', { timeout: 300_000 }, async (t) => {
  const env = await startEnv(t, { width: 1280, height: 720, framerate: 30, animate: true });
  const b = await env.launchBrowser();
  const steady = await openConnected(env, await b.browser.newContext(), env.url);
  await waitDecoding(env, steady, 1);
  const churn = await openConnected(env, await b.browser.newContext(), env.url);
  for (let i = 0; i < 25; i++) {
    await churn.reload();
    await churn.waitForFunction(() => window.kelpie?.state === 'connected', null, { timeout: 20_000 })
      .catch((e) => { throw new Error(env.why(`reload ${i + 1}: ${e.message}`)); });
    assert.ok(env.server.running, env.why(`the server died after reload ${i + 1}`));
  }
  const before = (await videoStats(steady)).framesDecoded;
  await waitDecoding(env, steady, before + 10);
  await waitDecoding(env, churn, 1);
  await env.waitHealth('two viewers and two branches', (h) => h.viewers === 2 && h.branches === 2, 15_000);
  assert.ok(env.server.running);
  // The grace is 30 s (media::grave); the agents of all 25 reloads must be finalized.
  const h = await env.waitHealth('only the two live ICE agents left once the graves are freed',
    (b) => b.webrtcbins_alive === 2 && b.ice_agents_alive === 2, 45_000);
  assert.equal(h.ice_agents_alive, 2);
});

/**
 * The web client plays the X display: the video has the display's size and arrives at
 * the configured frame rate.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { decodeRate, sleep, startEnv, waitDecoding } from './harness.mjs';

const SCREENSHOT = process.env.KELPIE_SCREENSHOT || path.join(os.tmpdir(), 'kelpie-page.png');

test('the page plays the display at its size and frame rate', { timeout: 120_000 }, async (t) => {
  const env = await startEnv(t, { width: 1280, height: 720, framerate: 30, animate: true });
  const health = await env.health();
  assert.equal(health.status, 200);
  assert.equal(health.body.width, 1280, `/health width: ${JSON.stringify(health.body)}`);
  assert.equal(health.body.height, 720, `/health height: ${JSON.stringify(health.body)}`);

  const viewer = await env.launchBrowser();
  const page = await env.openViewer(viewer, { viewport: { width: 1280, height: 720 } });
  await waitDecoding(env, page, 1);
  await sleep(1000); // let the decoder settle after the first keyframe
  // Taken before the checks, so there is a picture to look at when they fail.
  await page.screenshot({ path: SCREENSHOT });
  t.diagnostic(`screenshot: ${SCREENSHOT}`);

  const { rate, after } = await decodeRate(page, 3000);
  t.diagnostic(`decoded ${rate.toFixed(1)} fps, ${after.frameWidth}x${after.frameHeight}`);
  assert.ok(rate >= 0.9 * env.framerate,
    env.why(`decoded ${rate.toFixed(1)} fps, want >= ${0.9 * env.framerate}: ${JSON.stringify(after)}`));
  assert.equal(after.frameWidth, env.width, env.why(`frameWidth ${after.frameWidth}`));
  assert.equal(after.frameHeight, env.height, env.why(`frameHeight ${after.frameHeight}`));

  // The element shows real frames, not just a decoder counting them.
  const video = await page.evaluate(() => ({
    w: kelpie.video.videoWidth, h: kelpie.video.videoHeight, paused: kelpie.video.paused,
  }));
  assert.deepEqual(video, { w: env.width, h: env.height, paused: false });

  // The client records each connection step, in order (the bench splits time to first frame with them).
  const steps = await page.evaluate(() => window.kelpie.timings);
  const order = ['ws_start', 'ws_open', 'welcome', 'offer', 'answer_sent', 'dtls_connected', 'first_frame'];
  for (const [a, b] of order.slice(1).map((s, i) => [order[i], s])) {
    assert.ok(Number.isFinite(steps[a]) && Number.isFinite(steps[b]) && steps[a] <= steps[b],
      `timings out of order at ${a} → ${b}: ${JSON.stringify(steps)}`);
  }
  t.diagnostic(`connection steps (ms since page start): ${JSON.stringify(steps)}`);
  // The socket preconnect.js opened while the app loaded is the one in use (the server's
  // single viewer below shows no second socket was opened beside it).
  assert.ok(Number.isFinite(steps.ws_taken) && steps.ws_start <= steps.ws_taken,
    `the session did not take over the early socket: ${JSON.stringify(steps)}`);

  const body = await env.waitHealth('/health viewers == 1', (b) => b.viewers === 1);
  assert.equal(body.viewers, 1);

  // A CSP violation or a script error would show up here.
  const errors = page.consoleLines.filter((l) => /^(error|pageerror)/.test(l));
  assert.deepEqual(errors, []);
});

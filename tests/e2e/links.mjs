/**
 * Shared by the shaped-link tests (adapt.test.mjs) and the lossy-link benchmark
 * (tests/bench/lossy.mjs): a moving desktop with a timestamp (kelpie-content), a viewer
 * in a network namespace with the bench's frame probe, and the figures read from it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { openConnected, sleep, REPO_ROOT } from './harness.mjs';
import { parseMetrics } from '../bench/lib.mjs';
import { analyse, pageProbe } from '../bench/probe.mjs';

export const CONTENT_BIN = process.env.KELPIE_CONTENT_BIN || path.join(REPO_ROOT, 'target/debug/kelpie-content');
export const PASSWORD = 'adapt-test-password';
export const AUTH = { serverArgs: ['--auth', 'basic'], serverEnv: { KELPIE_BASIC_PASSWORD: PASSWORD } };
export const VIEWPORT = { width: 1280, height: 720 };
export const HD = { width: 1920, height: 1080 };

export function authedFetch(url) {
  const basic = Buffer.from(`kelpie:${PASSWORD}`).toString('base64');
  return fetch(url, { headers: { authorization: `Basic ${basic}` }, signal: AbortSignal.timeout(3000) });
}

/** Samples of `name` from /metrics: [{labels, value}] (labels '' when it has none). */
export async function metric(env, name) {
  const m = parseMetrics(await (await authedFetch(new URL('metrics', env.url))).text());
  const labelled = m.samples.filter((x) => x.name === name).map(({ labels, value }) => ({ labels, value }));
  return labelled.length || !(name in m) ? labelled : [{ labels: '', value: m[name] }];
}

/** Starts kelpie-content on the test's display; resolves with its `ready` event. */
export async function startContent(env, fps) {
  const events = [];
  const proc = env.spawn('content', CONTENT_BIN, ['--mode', 'moving', '--fps', String(fps)], { env: { DISPLAY: env.display } });
  proc.readStdout((line) => { try { events.push(JSON.parse(line)); } catch { /* not JSON */ } });
  for (let i = 0; i < 100 && !events.find((e) => e.ev === 'ready'); i++) await sleep(100);
  const ready = events.find((e) => e.ev === 'ready');
  assert.ok(ready, env.why('kelpie-content never became ready'));
  return ready;
}

/** The page's inbound-rtp figures that matter here (WebRTC only). */
export async function rtpStats(page) {
  return page.evaluate(async () => {
    const pc = window.kelpie.pc;
    if (!pc) return null;
    for (const s of (await pc.getStats()).values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') {
        return {
          timestamp: s.timestamp, bytesReceived: s.bytesReceived, framesDecoded: s.framesDecoded,
          freezeCount: s.freezeCount ?? 0, totalFreezesDuration: s.totalFreezesDuration ?? 0,
          packetsLost: s.packetsLost, nackCount: s.nackCount, pliCount: s.pliCount, framesDropped: s.framesDropped ?? 0,
        };
      }
    }
    return null;
  });
}

/** A viewer in the namespace with the probe installed. */
export async function probedViewer(env, ns, ready) {
  const origin = new URL(env.url).origin;
  // `ns` null: a browser in the test's own namespace (the server's address is local, so
  // its traffic takes loopback, unshaped).
  const b = await env.launchBrowser(ns ? ns.browser(env.logDir, origin) : { args: [`--unsafely-treat-insecure-origin-as-secure=${origin}`] });
  const ctx = await b.browser.newContext({ viewport: VIEWPORT, httpCredentials: { username: 'kelpie', password: PASSWORD } });
  await ctx.addInitScript(pageProbe, { width: ready.width, height: ready.height, layout: ready.layout, palette: ready.palette });
  const page = await openConnected(env, ctx, env.url);
  return page;
}

/**
 * Presented-frame figures over [t0, t1] (wall ms), from the probe's records, with the
 * gaps between presented frames counted by length.
 */
export async function figures(page, t0, t1) {
  const frames = await page.evaluate(() => window.__bench.frames);
  const out = analyse({ frames, t0, t1 });
  const times = frames.map((f) => f.disp ?? f.cb).filter((x) => x >= t0 && x <= t1);
  const gaps = times.slice(1).map((x, i) => x - times[i]);
  out.gaps_over_ms = Object.fromEntries([150, 200, 300, 500, 1000].map((ms) => [ms, gaps.filter((g) => g > ms).length]));
  // Where the long ones were: [ms after t0, length ms].
  out.long_gaps = gaps.map((g, i) => [Math.round(times[i] - t0), Math.round(g)]).filter(([, g]) => g > 500);
  return out;
}

export function save(env, name, data) {
  fs.writeFileSync(path.join(env.logDir, `${name}.json`), JSON.stringify(data, null, 2));
  console.log(`# ${name}: ${JSON.stringify(data)}`);
}


/**
 * Plays `seconds` on `page` and returns what the viewer saw: presented frame rate,
 * glass-to-glass latency, frame gaps, Chromium's freeze count (webrtc-stats: a frame
 * later than max(3 frame intervals, one interval + 150 ms)), received bitrate and
 * repairs, plus the server's estimate and encoder target at the end.
 */
export async function playFor(env, page, seconds) {
  const a = await rtpStats(page);
  const t0 = Date.now();
  await sleep(seconds * 1000);
  const t1 = Date.now();
  const b = await rtpStats(page);
  const f = await figures(page, t0, t1);
  const s = (b.timestamp - a.timestamp) / 1000;
  return {
    presented_fps: f.presented_fps,
    glass_to_glass_ms: f.glass_to_glass_ms,
    max_frame_gap_ms: f.max_frame_gap_ms,
    gaps_over_ms: f.gaps_over_ms,
    long_gaps: f.long_gaps,
    freezes: b.freezeCount - a.freezeCount,
    freeze_seconds: Math.round((b.totalFreezesDuration - a.totalFreezesDuration) * 100) / 100,
    received_kbps: Math.round(((b.bytesReceived - a.bytesReceived) * 8) / s / 1000),
    packets_lost: b.packetsLost - a.packetsLost,
    nacks: b.nackCount - a.nackCount,
    plis: b.pliCount - a.pliCount,
    estimate_bps: Object.fromEntries((await metric(env, 'kelpie_viewer_estimate_bps')).map((m) => [m.labels, m.value])),
    queue_s: Object.fromEntries((await metric(env, 'kelpie_viewer_queue_seconds')).map((m) => [m.labels, m.value])),
    delivered_bps: Object.fromEntries((await metric(env, 'kelpie_viewer_delivered_bps')).map((m) => [m.labels, m.value])),
    target_bps: (await metric(env, 'kelpie_encoder_target_bps')).map((m) => m.value),
  };
}

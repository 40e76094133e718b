/**
 * Adaptive quality on real, shaped links (issue #11): headless Chromium in a network
 * namespace of its own (netns.mjs), the server's side of the veth shaped with `tbf` (rate
 * and a drop-tail queue: the kernel has no netem, so delay comes only from the queue) and
 * random loss from iptables' `statistic` match in the browser's namespace.
 *
 * The desktop shows `kelpie-content` (full-screen motion with a wall-clock timestamp in
 * its corner), and the bench's page probe (tests/bench/probe.mjs) reads that timestamp
 * from every presented frame: glass-to-glass latency needs no clock but this machine's.
 *
 * - The lossy link: 3 Mbit/s, 200 ms queue, 1 % loss, 1080p30, default settings: ≥ 25 fps,
 *   glass-to-glass p95 ≤ 250 ms, at most one freeze, received bitrate under the link rate.
 * - The step: 20 → 2 → 20 Mbit/s; the server's estimate and target follow within 2 s each
 *   way (read from /metrics, sampled by sequence, not timed), no freeze over 1 s.
 *
 * Figures are printed (and saved to logs/<test>/figures.json) whether or not they pass.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { openConnected, sleep, startEnv, waitDecoding, REPO_ROOT } from './harness.mjs';
import { makeNetns, netnsAvailable } from './netns.mjs';
import { analyse, pageProbe } from '../bench/probe.mjs';

const CONTENT_BIN = process.env.KELPIE_CONTENT_BIN || path.join(REPO_ROOT, 'target/debug/kelpie-content');
const skip = netnsAvailable();
const PASSWORD = 'adapt-test-password';
const AUTH = { serverArgs: ['--auth', 'basic'], serverEnv: { KELPIE_BASIC_PASSWORD: PASSWORD } };
const VIEWPORT = { width: 1280, height: 720 };
const HD = { width: 1920, height: 1080 };

function authedFetch(url) {
  const basic = Buffer.from(`kelpie:${PASSWORD}`).toString('base64');
  return fetch(url, { headers: { authorization: `Basic ${basic}` }, signal: AbortSignal.timeout(3000) });
}

/** Samples of `name` from /metrics: [{labels, value}]. */
async function metric(env, name) {
  const text = await (await authedFetch(new URL('metrics', env.url))).text();
  const out = [];
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
      const value = Number(line.slice(line.lastIndexOf(' ') + 1));
      out.push({ labels: line.slice(name.length, line.lastIndexOf(' ')), value });
    }
  }
  return out;
}

/** Starts kelpie-content on the test's display; resolves with its `ready` event. */
async function startContent(env, fps) {
  const events = [];
  const proc = env.spawn('content', CONTENT_BIN, ['--mode', 'moving', '--fps', String(fps)], { env: { DISPLAY: env.display } });
  proc.readStdout((line) => { try { events.push(JSON.parse(line)); } catch { /* not JSON */ } });
  for (let i = 0; i < 100 && !events.find((e) => e.ev === 'ready'); i++) await sleep(100);
  const ready = events.find((e) => e.ev === 'ready');
  assert.ok(ready, env.why('kelpie-content never became ready'));
  return ready;
}

/** The page's inbound-rtp figures that matter here (WebRTC only). */
async function rtpStats(page) {
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
async function probedViewer(env, ns, ready) {
  const b = await env.launchBrowser(ns.browser(env.logDir, new URL(env.url).origin));
  const ctx = await b.browser.newContext({ viewport: VIEWPORT, httpCredentials: { username: 'kelpie', password: PASSWORD } });
  await ctx.addInitScript(pageProbe, { width: ready.width, height: ready.height, layout: ready.layout, palette: ready.palette });
  const page = await openConnected(env, ctx, env.url);
  return page;
}

/**
 * Presented-frame figures over [t0, t1] (wall ms), from the probe's records, with the
 * gaps between presented frames counted by length.
 */
async function figures(page, t0, t1) {
  const frames = await page.evaluate(() => window.__bench.frames);
  const out = analyse({ frames, t0, t1 });
  const times = frames.map((f) => f.disp ?? f.cb).filter((x) => x >= t0 && x <= t1);
  const gaps = times.slice(1).map((x, i) => x - times[i]);
  out.gaps_over_ms = Object.fromEntries([150, 200, 300, 500, 1000].map((ms) => [ms, gaps.filter((g) => g > ms).length]));
  return out;
}

function save(env, name, data) {
  fs.writeFileSync(path.join(env.logDir, `${name}.json`), JSON.stringify(data, null, 2));
  console.log(`# ${name}: ${JSON.stringify(data)}`);
}

describe('adaptive quality on shaped links', { skip: skip || false, timeout: 300_000 }, () => {
  test('a 3 Mbit/s link with a 200 ms queue and 1 % loss plays 1080p30', async (t) => {
    const ns = makeNetns(t);
    const env = await startEnv(t, { ...HD, framerate: 30, host: ns.hostIp, ...AUTH });
    const ready = await startContent(env, 30.6);
    ns.throttle('3mbit', { burst: '16kb', latency: '200ms' });
    ns.lose(0.01);
    const page = await probedViewer(env, ns, ready);
    await waitDecoding(env, page, 10, 30_000);
    assert.equal(await page.evaluate(() => window.kelpie.transport?.kind), 'webrtc', 'the page left WebRTC');
    await sleep(5000); // the estimate settles
    const a = await rtpStats(page);
    const t0 = Date.now();
    await sleep(30_000);
    const t1 = Date.now();
    const b = await rtpStats(page);
    const f = await figures(page, t0, t1);
    const seconds = (b.timestamp - a.timestamp) / 1000;
    const out = {
      presented_fps: f.presented_fps,
      glass_to_glass_ms: f.glass_to_glass_ms,
      max_frame_gap_ms: f.max_frame_gap_ms,
      gaps_over_ms: f.gaps_over_ms,
      freezes: b.freezeCount - a.freezeCount,
      received_kbps: Math.round(((b.bytesReceived - a.bytesReceived) * 8) / seconds / 1000),
      packets_lost: b.packetsLost - a.packetsLost,
      nacks: b.nackCount - a.nackCount,
      plis: b.pliCount - a.pliCount,
      estimate_bps: (await metric(env, 'kelpie_viewer_estimate_bps')).map((m) => m.value),
      target_bps: (await metric(env, 'kelpie_encoder_target_bps')).map((m) => m.value),
    };
    save(env, 'lossy-link', out);
    assert.ok(out.presented_fps >= 25, env.why(`${out.presented_fps} fps: ${JSON.stringify(out)}`));
    assert.ok(out.glass_to_glass_ms.p95 <= 250, env.why(`g2g p95 ${out.glass_to_glass_ms.p95} ms: ${JSON.stringify(out)}`));
    assert.ok(out.freezes <= 1, env.why(`${out.freezes} freezes: ${JSON.stringify(out)}`));
    assert.ok(out.received_kbps < 3000, env.why(`received ${out.received_kbps} kbit/s: ${JSON.stringify(out)}`));
  });

  test('a link that drops from 20 to 2 Mbit/s and back: the bitrate follows within 2 s each way', async (t) => {
    const ns = makeNetns(t);
    const env = await startEnv(t, { ...HD, framerate: 30, host: ns.hostIp, ...AUTH });
    const ready = await startContent(env, 30.6);
    const link = (rate) => ns.throttle(rate, { burst: '32kb', latency: '200ms' });
    link('20mbit');
    const page = await probedViewer(env, ns, ready);
    await waitDecoding(env, page, 10, 30_000);
    const samples = [];
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        const at = Date.now();
        const [target] = await metric(env, 'kelpie_encoder_target_bps');
        samples.push({ at, target: target?.value });
        await sleep(200);
      }
    })();
    const phases = [];
    const phase = async (rate, ms) => {
      link(rate);
      phases.push({ rate, at: Date.now() });
      await sleep(ms);
    };
    await sleep(6000); // up to the ceiling on the fast link
    const t0 = Date.now();
    await phase('2mbit', 8000);
    await phase('20mbit', 8000);
    const t1 = Date.now();
    sampling = false;
    await sampler;
    const f = await figures(page, t0, t1);
    /** ms from phase `i`'s start until the target first satisfies `ok`. */
    const follow = (i, ok) => {
      const s = samples.find((x) => x.at >= phases[i].at && ok(x.target));
      return s ? s.at - phases[i].at : null;
    };
    const ceiling = samples.filter((s) => s.at < phases[0].at).at(-1)?.target;
    const out = {
      ceiling_reached_bps: ceiling,
      down_ms: follow(0, (v) => v < 2e6),
      up_ms: follow(1, (v) => v >= 0.75 * 8e6),
      max_frame_gap_ms: f.max_frame_gap_ms,
      gaps_over_ms: f.gaps_over_ms,
      presented_fps: f.presented_fps,
      glass_to_glass_ms: f.glass_to_glass_ms,
      targets: samples.filter((s) => s.at >= t0).map((s) => [s.at - t0, Math.round(s.target / 1000)]),
    };
    save(env, 'step', out);
    assert.ok(ceiling >= 0.99 * 8e6, env.why(`never reached the 8 Mbit/s ceiling on the 20 Mbit/s link: ${JSON.stringify(out)}`));
    assert.ok(out.down_ms != null && out.down_ms <= 2000, env.why(`down: ${JSON.stringify(out)}`));
    assert.ok(out.up_ms != null && out.up_ms <= 2000, env.why(`up: ${JSON.stringify(out)}`));
    assert.ok(out.max_frame_gap_ms <= 1000, env.why(`a freeze of ${out.max_frame_gap_ms} ms: ${JSON.stringify(out)}`));
  });
});

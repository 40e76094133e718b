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
import { describe, test } from 'node:test';
import { sleep, startEnv, waitDecoding } from './harness.mjs';
import { makeNetns, netnsAvailable } from './netns.mjs';
import { AUTH, HD, figures, metric, playFor, probedViewer, save, startContent } from './links.mjs';

const skip = netnsAvailable();

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
    const out = await playFor(env, page, 30);
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
        await sleep(100); // the follow times are read to within this
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
      long_gaps: f.long_gaps,
      presented_fps: f.presented_fps,
      glass_to_glass_ms: f.glass_to_glass_ms,
      targets: samples.filter((s) => s.at >= t0).map((s) => [s.at - t0, Math.round(s.target / 1000)]),
    };
    save(env, 'step', out);
    assert.ok(ceiling >= 0.95 * 8e6, env.why(`never reached the 8 Mbit/s ceiling on the 20 Mbit/s link: ${JSON.stringify(out)}`));
    assert.ok(out.down_ms != null && out.down_ms <= 2000, env.why(`down: ${JSON.stringify(out)}`));
    assert.ok(out.up_ms != null && out.up_ms <= 2000, env.why(`up: ${JSON.stringify(out)}`));
    assert.ok(out.max_frame_gap_ms <= 1000, env.why(`a freeze of ${out.max_frame_gap_ms} ms: ${JSON.stringify(out)}`));
  });

  test('two viewers, one behind a 3 Mbit/s link: the other keeps full quality, the slow one ≥ 20 fps', async (t) => {
    // The slow viewer in a namespace behind the shaped veth; the fast one in the test's own
    // namespace, where the server's veth address is local and traffic takes loopback.
    // 720p: two encoders, two decoding browsers and the content share two cores.
    const slow = makeNetns(t);
    const env = await startEnv(t, { width: 1280, height: 720, framerate: 30, host: slow.hostIp, ...AUTH });
    const ready = await startContent(env, 30.6);
    slow.throttle('3mbit', { burst: '16kb', latency: '200ms' });
    const first = await probedViewer(env, null, ready); // joins first: holds control
    await waitDecoding(env, first, 10, 30_000);
    const second = await probedViewer(env, slow, ready);
    await waitDecoding(env, second, 10, 30_000);
    await sleep(8000); // the slow viewer's estimate settles and it moves to the low rung
    for (const [who, page] of [['unshaped', first], ['shaped', second]]) {
      const kind = await page.evaluate(() => window.kelpie.transport?.kind);
      assert.equal(kind, 'webrtc', env.why(`the ${who} viewer is on ${kind}`));
    }
    const [a, b] = await Promise.all([playFor(env, first, 20), playFor(env, second, 20)]);
    const log = env.procs.find((p) => p.name === 'kelpie')?.lines.join('\n') ?? '';
    const out = { fast: a, slow: b, slow_moved_low: /viewer moved between rungs viewer=2 rung="?low/.test(log) };
    save(env, 'two-viewers', out);
    assert.ok(a.target_bps[0] >= 0.95 * 8e6, env.why(`the main encode ran at ${a.target_bps[0]} bit/s: ${JSON.stringify(out)}`));
    assert.ok(a.presented_fps >= 27, env.why(`the unshaped viewer played ${a.presented_fps} fps: ${JSON.stringify(out)}`));
    assert.ok(b.presented_fps >= 20, env.why(`the shaped viewer played ${b.presented_fps} fps: ${JSON.stringify(out)}`));
    assert.ok(b.received_kbps < 3000, env.why(`the shaped viewer received ${b.received_kbps} kbit/s: ${JSON.stringify(out)}`));
    assert.ok(out.slow_moved_low, env.why('the shaped viewer was never moved to the low rung'));
    assert.ok(!/viewer moved between rungs viewer=1 /.test(log), env.why('the unshaped viewer in control was moved between rungs'));
  });
});

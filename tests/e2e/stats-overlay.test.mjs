/**
 * The statistics overlay (web-client/stats-overlay.js, stats.js, selftest.js).
 *
 * Unit tests first (no browser, no server): the sample ring, rates from cumulative
 * counters, the server's `net` message, the glass-to-glass label, plot geometry, and the
 * self-test driven by a fake clock and a scripted server.
 *
 * Then one headless-Chromium test against a real kelpie: the shortcut and the button
 * toggle the overlay, it shows live values from the page and the server, and the
 * self-test measures a round trip and a throughput.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { SampleRing, combine, glassToGlass, niceCeil, normaliseNet, plotLines, rates, readReport, snapshot }
  from '../../web-client/stats.js';
import { ConnectionTest, PING_COUNT, PROBE_BYTES, PROBE_TIMEOUT_MS, describeTest, median, probeThroughput }
  from '../../web-client/selftest.js';
import { isStatsShortcut } from '../../web-client/stats-overlay.js';
import * as channel from '../../web-client/channel.js';
import { Env, openConnected, waitDecoding, waitFor } from './harness.mjs';

// --- pure logic -------------------------------------------------------------------------

test('the sample ring keeps the last 30 samples, oldest first', () => {
  const ring = new SampleRing(30);
  for (let i = 0; i < 45; i++) ring.push({ fps: i, rtt_ms: i % 2 ? i : null });
  assert.equal(ring.length, 30);
  assert.equal(ring.series('fps')[0], 15);
  assert.equal(ring.latest.fps, 44);
  assert.deepEqual(ring.series('rtt_ms').slice(-3), [null, 43, null]);
  assert.deepEqual(ring.series('nope').slice(0, 2), [null, null]);
});

test('rates come from the growth of cumulative counters over the time between samples', () => {
  const a = snapshot(10_000, { framesDecoded: 100, bytesReceived: 1_000_000, packetsLost: 5, packetsReceived: 1000,
    totalDecodeTime: 1.0, jitterBufferDelay: 2.0, jitterBufferEmittedCount: 100 }, 90);
  const b = snapshot(12_000, { framesDecoded: 160, bytesReceived: 1_500_000, packetsLost: 7, packetsReceived: 1198,
    totalDecodeTime: 1.12, jitterBufferDelay: 2.3, jitterBufferEmittedCount: 160 }, 148);
  const r = rates(a, b);
  assert.equal(r.fps, 29, 'presented frames per second (58 in 2 s), not decoded');
  assert.equal(r.recv_kbps, 2000, '500 kB in 2 s');
  assert.equal(r.loss_pct, 1, '2 lost of 200');
  assert.ok(Math.abs(r.decode_ms - 2) < 1e-9, '0.12 s for 60 frames');
  assert.ok(Math.abs(r.jitter_ms - 5) < 1e-9, '0.3 s for 60 frames');
});

test('without a presented-frame count the frame rate is the decoded one', () => {
  const r = rates(snapshot(0, { framesDecoded: 10 }), snapshot(500, { framesDecoded: 25 }));
  assert.equal(r.fps, 30);
});

test('no rate across a counter reset, without an earlier sample, or without time passing', () => {
  const before = snapshot(1000, { framesDecoded: 500, bytesReceived: 9e6, packetsLost: 3, packetsReceived: 9000 });
  const fresh = snapshot(2000, { framesDecoded: 20, bytesReceived: 30_000, packetsLost: 0, packetsReceived: 40 });
  assert.deepEqual(rates(before, fresh), { fps: null, recv_kbps: null, loss_pct: null, decode_ms: null, jitter_ms: null });
  assert.equal(rates(null, fresh).fps, null);
  assert.equal(rates(fresh, { ...fresh }).recv_kbps, null);
  const idle = rates(snapshot(0, { packetsLost: 0, packetsReceived: 5, framesDecoded: 3 }),
    snapshot(1000, { packetsLost: 0, packetsReceived: 5, framesDecoded: 3, totalDecodeTime: 0 }));
  assert.equal(idle.loss_pct, null, 'no packets: no loss figure rather than 0/0');
  assert.equal(idle.fps, 0);
});

test('the stats report gives the video inbound-rtp and the selected pair\'s round trip in ms', () => {
  const reports = [
    { type: 'inbound-rtp', kind: 'audio', framesDecoded: 1 },
    { type: 'candidate-pair', id: 'other', nominated: true, state: 'succeeded', currentRoundTripTime: 0.5 },
    { type: 'inbound-rtp', kind: 'video', framesDecoded: 7 },
    { type: 'transport', selectedCandidatePairId: 'chosen' },
    { type: 'candidate-pair', id: 'chosen', currentRoundTripTime: 0.012 },
  ];
  const r = readReport(new Map(reports.map((s, i) => [String(i), s])));
  assert.equal(r.inbound.framesDecoded, 7);
  assert.equal(r.rttMs, 12);
  const firefox = readReport([{ type: 'candidate-pair', id: 'x', selected: true, currentRoundTripTime: 0.004 }]);
  assert.equal(firefox.rttMs, 4);
  assert.deepEqual(readReport([]), { inbound: null, rttMs: null });
});

test('the server\'s net message keeps only well-formed fields', () => {
  const net = normaliseNet({ t: 'net', transport: 'webrtc', encoder: 'x264enc', target_kbps: 6000, ceiling_kbps: 8000,
    floor_kbps: 500, estimate_kbps: null, rtt_ms: 'fast', loss_pct: -1, queue_ms: 3, fps: 30, leader: true });
  assert.deepEqual(net, { transport: 'webrtc', encoder: 'x264enc', leader: true, target_kbps: 6000, ceiling_kbps: 8000,
    floor_kbps: 500, estimate_kbps: null, rtt_ms: null, loss_pct: null, queue_ms: 3, fps: 30 });
  assert.equal(normaliseNet({ t: 'cursor' }), null);
  assert.equal(normaliseNet({ t: 'net', transport: 'carrier pigeon', leader: 'yes' }).transport, null);
});

test('the page\'s own round trip and loss win over the server\'s, which fill in where the page has none', () => {
  const net = normaliseNet({ t: 'net', transport: 'webrtc', encoder: 'x264enc', rtt_ms: 40, loss_pct: 2, target_kbps: 5000 });
  const own = combine({ t: 1, kind: 'webrtc', rates: { fps: 30, loss_pct: 0.5, decode_ms: 2 }, rttMs: 10, net });
  assert.equal(own.rtt_ms, 10);
  assert.equal(own.loss_pct, 0.5);
  assert.equal(own.encoder, 'x264enc');
  assert.equal(own.target_kbps, 5000);
  const socket = combine({ t: 1, kind: 'websocket', rates: { fps: 30, decode_ms: 2 }, net });
  assert.equal(socket.rtt_ms, 40);
  assert.equal(socket.loss_pct, 2);
  assert.equal(socket.jitter_ms, 0, 'the WebSocket transport has no jitter buffer');
  const alone = combine({ t: 1, kind: 'webrtc', rates: {} });
  assert.equal(alone.encoder, null);
  assert.equal(alone.glass_ms, null);
});

test('glass to glass is measured only when the browser maps the capture clock, else an estimate that says so', () => {
  assert.deepEqual(glassToGlass({ measuredMs: 80, rttMs: 10, decodeMs: 2 }).kind, 'measured');
  const est = glassToGlass({ rttMs: 10, queueMs: 3, jitterMs: 4, decodeMs: 2 });
  assert.equal(est.ms, 14);
  assert.equal(est.kind, 'estimate');
  assert.match(est.how, /estimate: ½ RTT \+ server queue \+ jitter buffer \+ decode; capture, encoding and display not included/);
  assert.equal(glassToGlass({ rttMs: 10, decodeMs: 2 }).ms, 7);
  assert.deepEqual(glassToGlass({ decodeMs: 2 }), { ms: null, kind: null, how: 'n/a: needs a round trip and a decode time' });
  assert.equal(glassToGlass({ rttMs: 10 }).ms, null);
});

test('the axis top is the next round number (1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10ⁿ), never below the floor', () => {
  assert.deepEqual([0.7, 1, 1.2, 2.1, 4, 7, 31, 8000, 8001, 9000].map((v) => niceCeil(v)),
    [1, 1, 1.5, 2.5, 4, 8, 40, 8000, 10000, 10000]);
  assert.equal(niceCeil(0, 10), 10);
  assert.equal(niceCeil(null, 100), 100);
  assert.equal(niceCeil(Number.NaN), 1);
});

test('plots put the newest sample at the right edge, scale to the axis top and break at gaps', () => {
  const lines = plotLines([10, 20, null, 40, 80], { width: 290, height: 50, max: 40, slots: 30 });
  assert.deepEqual(lines, [[[250, 37.5], [260, 25]], [[280, 0], [290, 0]]], 'one slot is 10 px; 80 is clamped to the top');
  assert.deepEqual(plotLines([null, null], { width: 100, height: 10, max: 1 }), []);
  assert.deepEqual(plotLines([-3], { width: 100, height: 10, max: 1 }), [[[100, 10]]]);
});

test('the probe\'s throughput counts messages 1..M-1 over the time from message 0 to M-1', () => {
  const arrivals = [0, 1, 2, 3].map((seq) => ({ seq, t: 100 + seq * 10, bytes: 16_000 }));
  assert.deepEqual(probeThroughput(arrivals, 4), { bytes: 48_000, ms: 30, mbps: 12.8 });
  assert.equal(probeThroughput(arrivals.slice(0, 3), 4), null, 'the last message never came');
  assert.equal(probeThroughput([{ seq: 0, t: 5, bytes: 1 }, { seq: 1, t: 5, bytes: 1 }], 2), null, 'no time passed');
  assert.equal(median([5, 1, 3]), 3);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(median([]), null);
});

test('Ctrl+Alt+Shift+S is the overlay\'s shortcut, on any layout (by key position)', () => {
  const key = (mods) => ({ type: 'keydown', code: 'KeyS', ctrlKey: true, altKey: true, shiftKey: true, metaKey: false, ...mods });
  assert.ok(isStatsShortcut(key({})));
  assert.ok(!isStatsShortcut(key({ shiftKey: false })));
  assert.ok(!isStatsShortcut(key({ metaKey: true })));
  assert.ok(!isStatsShortcut(key({ type: 'keyup' })));
  assert.ok(!isStatsShortcut(key({ code: 'KeyL' })));
});

test('several modules may listen to one channel message type, and get its text', () => {
  const fake = new EventTarget();
  fake.readyState = 'open';
  const got = [];
  const off = channel.on('probe-data', (msg, text) => got.push(['a', msg.seq, text.length]));
  channel.on('probe-data', (msg) => got.push(['b', msg.seq]));
  channel.setChannel(fake);
  const text = '{"t":"probe-data","seq":0}';
  fake.dispatchEvent(new MessageEvent('message', { data: text }));
  off();
  fake.dispatchEvent(new MessageEvent('message', { data: '{"t":"probe-data","seq":1}' }));
  assert.deepEqual(got, [['a', 0, text.length], ['b', 0], ['b', 1]]);
  channel.setChannel(null);
});

// --- the self-test with a fake clock ----------------------------------------------------

/** A fake clock: timers run in time order as `advance` passes their deadline. */
function fakeClock() {
  let now = 0;
  let nextId = 1;
  const timers = new Map();
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return {
    now: () => now,
    setTimer: (fn, ms) => { timers.set(nextId, { at: now + ms, fn }); return nextId++; },
    clearTimer: (id) => timers.delete(id),
    async advance(ms) {
      const until = now + ms;
      for (;;) {
        await settle();
        const [id, due] = [...timers].filter(([, t]) => t.at <= until).sort((a, b) => a[1].at - b[1].at)[0] || [];
        if (!due) break;
        timers.delete(id);
        now = due.at;
        due.fn();
      }
      now = until;
      await settle();
    },
  };
}

/**
 * A ConnectionTest against a scripted server: pongs after `rttMs`, and a probe of `of`
 * messages of 16,000 bytes, one every `gapMs` (`refuse`: a reason instead); `answerPings`
 * and `answerProbe` false leave those to the test.
 */
function scripted({ rttMs = 4, of = 5, gapMs = 10, refuse = null, answerPings = true, answerProbe = true } = {}) {
  const clock = fakeClock();
  const sent = [];
  const t = new ConnectionTest({
    ...clock,
    random: () => 0.5,
    send: (msg) => {
      sent.push(msg);
      if (msg.t === 'ping' && answerPings) clock.setTimer(() => t.receive({ t: 'pong', id: msg.id }), rttMs);
      if (msg.t === 'probe' && refuse) clock.setTimer(() => t.receive({ t: 'probe-refused', why: refuse }), rttMs);
      if (msg.t === 'probe' && !refuse && answerProbe) {
        for (let seq = 0; seq < of; seq++) {
          const m = { t: 'probe-data', id: 9, seq, of, pad: '' };
          clock.setTimer(() => t.receive(m, 'x'.repeat(16_000)), rttMs / 2 + seq * gapMs);
        }
      }
      return true;
    },
  });
  return { t, clock, sent };
}

test('the self-test pings five times, one at a time, then times one probe', async () => {
  const { t, clock, sent } = scripted({ rttMs: 4, of: 5, gapMs: 10 });
  const done = t.run();
  await clock.advance(1000);
  await done;
  assert.deepEqual(sent.map((m) => m.t), ['ping', 'ping', 'ping', 'ping', 'ping', 'probe']);
  assert.deepEqual(sent.slice(0, PING_COUNT).map((m) => m.id), [2 ** 30, 2 ** 30 + 1, 2 ** 30 + 2, 2 ** 30 + 3, 2 ** 30 + 4]);
  assert.equal(sent[5].bytes, PROBE_BYTES);
  const r = t.result;
  assert.equal(r.status, 'done');
  assert.deepEqual(r.rtt_samples, [4, 4, 4, 4, 4]);
  assert.equal(r.rtt_ms, 4);
  assert.equal(r.probe_bytes, 64_000, 'messages 1..4');
  assert.equal(r.probe_ms, 40);
  assert.equal(r.mbps, 12.8);
  assert.match(describeTest(r), /Round trip: median 4\.0 ms \(5 of 5 pings\)\. Throughput: 12\.8 Mbit\/s/);
});

test('pongs and probe messages of someone else\'s id are ignored', async () => {
  const { t, clock, sent } = scripted({ answerPings: false, answerProbe: false });
  const done = t.run();
  await clock.advance(1);
  t.receive({ t: 'pong', id: sent[0].id + 7 });
  await clock.advance(3);
  t.receive({ t: 'pong', id: sent[0].id });
  await clock.advance(0);
  assert.deepEqual(t.result.rtt_samples, [4]);
  for (let i = 1; i < PING_COUNT; i++) {
    await clock.advance(2);
    t.receive({ t: 'pong', id: sent[i].id });
  }
  await clock.advance(0);
  // A late message of an earlier probe, then this one's.
  t.receive({ t: 'probe-data', id: 3, seq: 9, of: 10 }, 'x'.repeat(100));
  t.receive({ t: 'probe-data', id: 4, seq: 0, of: 2 }, 'x'.repeat(100));
  await clock.advance(5);
  t.receive({ t: 'probe-data', id: 3, seq: 1, of: 2 }, 'x'.repeat(100));
  assert.equal(t.result.status, 'probing');
  t.receive({ t: 'probe-data', id: 4, seq: 1, of: 2 }, 'x'.repeat(1000));
  await done;
  assert.equal(t.result.status, 'done');
  assert.equal(t.result.probe_bytes, 1000);
  assert.equal(t.result.probe_ms, 5);
});

test('a refused probe shows the server\'s reason, with the round trip still measured', async () => {
  const { t, clock } = scripted({ refuse: 'one probe per 5 s' });
  const done = t.run();
  await clock.advance(1000);
  await done;
  assert.equal(t.result.status, 'done');
  assert.equal(t.result.refused, 'one probe per 5 s');
  assert.equal(t.result.rtt_ms, 4);
  assert.equal(t.result.mbps, null);
  assert.match(describeTest(t.result), /Bandwidth probe refused by the server: one probe per 5 s/);
});

test('a probe that does not finish within 10 s fails, saying how much came', async () => {
  const { t, clock } = scripted({ of: 3, gapMs: 6000 });
  const done = t.run();
  await clock.advance(PROBE_TIMEOUT_MS + 1000);
  await done;
  assert.equal(t.result.status, 'failed');
  assert.match(t.result.error, /timed out after 10 s \(2 of 3 messages\)/);
});

test('a server that never answers pings fails the test without probing', async () => {
  const { t, clock, sent } = scripted({ answerPings: false });
  const done = t.run();
  await clock.advance(PING_COUNT * 2000 + 1);
  await done;
  assert.equal(t.result.status, 'failed');
  assert.equal(t.result.pings_lost, PING_COUNT);
  assert.match(t.result.error, /no answer to 5 pings/);
  assert.ok(!sent.some((m) => m.t === 'probe'));
});

test('a closed channel fails the test at once', async () => {
  const t = new ConnectionTest({ send: () => false });
  await t.run();
  assert.deepEqual([t.result.status, t.result.error], ['failed', 'not connected']);
});

// --- in the browser ---------------------------------------------------------------------

describe('statistics overlay in the page', { timeout: 240_000 }, () => {
  let env;
  let page;

  before(async () => {
    env = new Env('stats-overlay', { width: 1280, height: 720, framerate: 30, animate: true });
    await env.start();
    const viewer = await env.launchBrowser();
    page = await openConnected(env, viewer.browser, env.url, { viewport: { width: 1280, height: 720 } });
    await waitDecoding(env, page, 5);
    await page.waitForFunction(() => window.kelpie.channel?.readyState === 'open', null, { timeout: 10_000 });
    await page.click('#screen'); // the keyboard belongs to the remote desktop
  });
  after(() => env?.close());

  const overlay = () => page.evaluate(() => {
    const o = window.kelpie.statsOverlay;
    return { open: o.open, latest: o.latest, history: o.history, selfTest: o.selfTest };
  });
  const typedSince = (from) => env.probeEvents.slice(from).filter((e) => e.ev === 'key').map((e) => e.text ?? '').join('');

  test('the shortcut toggles the overlay without reaching the desktop; the button and Esc too', async () => {
    const from = env.probeEvents.length;
    await page.keyboard.press('Control+Alt+Shift+KeyS');
    await page.waitForFunction(() => window.kelpie.statsOverlay.open, null, { timeout: 5000 });
    // Typed after the shortcut on the same ordered channel: once it arrives, an S would have.
    await page.keyboard.type('x');
    await waitFor('the x to reach X', () => typedSince(from).includes('x'), { timeoutMs: 10_000 });
    assert.equal(typedSince(from), 'x', env.why(`the shortcut reached X: ${JSON.stringify(env.probeEvents.slice(from))}`));
    assert.equal(await page.isVisible('#stats-panel'), true);
    await page.keyboard.press('Control+Alt+Shift+KeyS');
    await page.waitForFunction(() => !window.kelpie.statsOverlay.open, null, { timeout: 5000 });

    await page.click('#stats-button');
    assert.equal(await page.getAttribute('#stats-button', 'aria-expanded'), 'true');
    assert.equal(await page.isVisible('#stats-panel[role="region"][aria-label]'), true);
    await page.keyboard.press('Escape'); // focus went to the panel with the click
    assert.equal((await overlay()).open, false);
    assert.equal(await page.getAttribute('#stats-button', 'aria-expanded'), 'false');
    await page.click('#stats-button');
    assert.equal((await overlay()).open, true);
  });

  test('the open overlay shows live values from the page and from the server', async () => {
    let last;
    await waitFor('plausible live values', async () => {
      last = (await overlay()).latest;
      return last && last.fps > 5 && last.recv_kbps > 0 && last.transport === 'webrtc' && last.encoder === 'x264enc'
        && last.target_kbps > 0 && (await overlay()).history.length >= 6;
    }, { timeoutMs: 60_000, intervalMs: 500 }).catch((err) => {
      throw new Error(env.why(`${err.message}; latest ${JSON.stringify(last)}`));
    });
    // Over the last five samples (one sample alone can catch one frame of phase more than
    // its second), weighted by each sample's own interval.
    const recent = (await overlay()).history.slice(-6);
    let frames = 0;
    for (let i = 1; i < recent.length; i++) frames += (recent[i].fps ?? 0) * (recent[i].t - recent[i - 1].t) / 1000;
    const rate = frames / ((recent.at(-1).t - recent[0].t) / 1000);
    assert.ok(rate > 5 && rate <= env.framerate + 0.5,
      `presented ${rate.toFixed(2)} fps over 5 s (samples ${recent.map((s) => s.fps?.toFixed(1))}), stream ${env.framerate}`);
    assert.equal(last.width, 1280);
    assert.equal(last.height, 720);
    assert.ok(Number.isFinite(last.rtt_ms) && last.rtt_ms >= 0, `rtt ${last.rtt_ms}`);
    assert.ok(last.glass_kind === 'measured' || /estimate/.test(last.glass_how), last.glass_how);
    const text = (key) => page.textContent(`#stats-facts dd[data-key="${key}"]`);
    assert.equal(await text('transport'), 'WebRTC');
    assert.equal(await text('encoder'), 'x264enc');
    assert.equal(await text('size'), '1280×720');
    assert.match(await text('fps'), /^\d+(\.\d+)? fps/);
    assert.match(await text('bitrate'), /received \d+(\.\d+)? kbit\/s; server estimate .*, encoder target \d+/);
  });

  test('the self-test measures the round trip and a throughput, and a second probe at once is refused', async () => {
    await page.click('#stats-test');
    let r;
    await waitFor('the self-test to finish', async () => {
      r = (await overlay()).selfTest;
      return r.status === 'done' || r.status === 'failed';
    }, { timeoutMs: 40_000, intervalMs: 250 });
    assert.equal(r.status, 'done', env.why(`self-test: ${JSON.stringify(r)}`));
    assert.ok(Number.isFinite(r.rtt_ms) && r.rtt_ms >= 0, `rtt ${r.rtt_ms}`);
    assert.ok(r.mbps > 0, `throughput ${r.mbps}`);
    const shown = await page.textContent('#stats-test-result');
    assert.match(shown, /Round trip: median \d+\.\d ms \(5 of 5 pings\)/);
    assert.match(shown, /Throughput: \d+\.\d Mbit\/s/);

    // The server allows one probe per viewer every 5 s; five loopback pings take far less.
    await page.click('#stats-test');
    await waitFor('the second self-test to finish', async () => {
      r = (await overlay()).selfTest;
      return r.status === 'done' || r.status === 'failed';
    }, { timeoutMs: 40_000, intervalMs: 250 });
    assert.ok(r.refused, `second probe not refused: ${JSON.stringify(r)}`);
    assert.match(await page.textContent('#stats-test-result'), /refused by the server/);
  });
});

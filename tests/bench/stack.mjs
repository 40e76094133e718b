/**
 * What the benchmarks share (run.mjs, sweep.mjs): where the binaries are, a stack of
 * processes stopped in reverse, a private Xvfb with the content generator, the plain
 * pipeline, one kelpie watched by headless Chromium with the frame probe, and the
 * browser itself.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import {
  CpuMeter, JsonProc, Proc, freePort, httpGet, live, parseMetrics, peakRss, round, sleep, waitFor,
} from './lib.mjs';
import { analyse, pageProbe } from './probe.mjs';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(HERE, '../..');
export const RELEASE = path.join(ROOT, 'target/release');
export const BIN = {
  kelpie: process.env.KELPIE_BIN || path.join(RELEASE, 'kelpie'),
  content: process.env.KELPIE_CONTENT_BIN || path.join(RELEASE, 'kelpie-content'),
  load: process.env.KELPIE_LOAD_BIN || path.join(RELEASE, 'kelpie-load'),
  chromium: process.env.KELPIE_CHROMIUM || '/usr/bin/chromium',
};
export const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--no-first-run', '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
];
export const VIEWPORT = { width: 1280, height: 720 };
export const BITRATE = 8000;

export function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    return (err.stdout || '').trim() || null;
  }
}

export const captureLabel = (mode) => mode || 'ximagesrc (no --capture flag)';

/** Everything one scenario started, stopped in reverse order. */
export class Stack {
  constructor(logDir) {
    this.logDir = logDir;
    this.procs = [];
  }

  spawn(name, cmd, args, opts = {}) {
    const P = opts.json ? JsonProc : Proc;
    const p = new P(name, cmd, args, { logDir: this.logDir, ...opts });
    this.procs.push(p);
    return p;
  }

  why() {
    return this.procs.map((p) => p.tail(15)).join('\n');
  }

  async stop(p) {
    await p.stop();
    this.procs = this.procs.filter((q) => q !== p);
  }

  async close() {
    for (const p of this.procs.reverse()) await p.stop();
    this.procs = [];
  }
}

export async function startXvfb(stack, width, height) {
  const xvfb = stack.spawn('xvfb', 'Xvfb', ['-displayfd', '3', '-screen', '0', `${width}x${height}x24`, '-nolisten', 'tcp', '-noreset'],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let text = '';
  const number = await Promise.race([
    new Promise((resolve) => xvfb.child.stdio[3].on('data', (d) => {
      text += d;
      if (text.includes('\n')) resolve(text.trim());
    })),
    xvfb.exited.then(() => { throw new Error(`Xvfb exited\n${stack.why()}`); }),
    sleep(10_000).then(() => { throw new Error('Xvfb did not report a display within 10 s'); }),
  ]);
  return { proc: xvfb, display: `:${number}` };
}

export async function startContent(stack, display, mode, fps) {
  const content = stack.spawn('content', BIN.content, ['--mode', mode, '--fps', String(fps)], { json: true, env: { DISPLAY: display } });
  const ready = await content.waitEvent('kelpie-content ready', (e) => e.ev === 'ready', 10_000);
  return { proc: content, ready };
}

/** The plain pipeline (or its first stages, for the breakdown) on the scenario's display. */
export function baselinePipeline(display, fps, stage) {
  const src = ['ximagesrc', `display-name=${display}`, 'use-damage=false', 'show-pointer=false', '!', `video/x-raw,framerate=${fps}/1`];
  const convert = ['!', 'videoconvert', '!', 'video/x-raw,format=I420'];
  const encode = ['!', 'x264enc', 'speed-preset=ultrafast', 'tune=zerolatency', `bitrate=${BITRATE}`];
  const sink = ['!', 'fakesink', 'silent=false'];
  // Kelpie's own source (gst-plugins), which captures and converts to I420 itself.
  const xsrc = ['kelpiexsrc', `display=${display}`, '!', `video/x-raw,format=I420,framerate=${fps}/1`];
  if (stage === 'capture') return [...src, ...sink];
  if (stage === 'convert') return [...src, ...convert, ...sink];
  if (stage === 'xsrc') return [...xsrc, ...sink];
  if (stage === 'xsrc-encode') return [...xsrc, ...encode, ...sink];
  return [...src, ...convert, ...encode, ...sink];
}

/** Directory holding Kelpie's GStreamer plugin (libkelpiegst.so), if it was built. */
export function pluginDir() {
  const dir = process.env.KELPIE_GST_PLUGIN_PATH || RELEASE;
  return fs.existsSync(path.join(dir, 'libkelpiegst.so')) ? dir : null;
}

/** Runs a gst-launch pipeline for `seconds` after a warm-up: CPU of its tree, buffers/s. */
export async function runPipeline(stack, env, fps, stage, seconds) {
  let buffers = 0;
  const args = ['-v', ...baselinePipeline(env.display, fps, stage)];
  const p = stack.spawn(`gst-${stage}`, 'gst-launch-1.0', args, {
    env: { DISPLAY: env.display, ...(stage.startsWith('xsrc') ? { GST_PLUGIN_PATH: pluginDir() } : {}) },
    onLine: (line) => { if (line.includes('last-message = chain')) buffers++; },
  });
  // Lines of every buffer would bloat the log; keep just the tail in memory.
  p.log.write('(per-buffer last-message lines counted, not logged)\n');
  const origRecord = p.record.bind(p);
  p.record = (line) => { if (!line.includes('last-message = chain')) origRecord(line); };
  await waitFor(`${stage} pipeline running`, () => {
    if (!p.running) throw new Error(`gst-launch exited\n${p.tail()}`);
    return buffers > 0;
  }, { timeoutMs: 10_000, intervalMs: 50 });
  await sleep(1500);
  const meter = new CpuMeter({ pipeline: p.pid, xvfb: env.xvfb.pid, content: env.content.pid }).start();
  const b0 = buffers;
  await sleep(seconds * 1000);
  const cpu = meter.stop();
  const b1 = buffers;
  if (!p.running) throw new Error(`gst-launch (${stage}) died during the measurement\n${p.tail()}`);
  await stack.stop(p);
  return {
    pipeline: `gst-launch-1.0 ${baselinePipeline(env.display, fps, stage).join(' ').replace(/ silent=false$/, '')}`,
    cpu_pct: cpu.pipeline,
    fps: round((b1 - b0) / cpu.seconds, 1),
    xvfb_cpu_pct: cpu.xvfb,
    content_cpu_pct: cpu.content,
    machine_pct: cpu.machine_pct,
    others_cpu_pct: cpu.others_pct,
    seconds: cpu.seconds,
  };
}

/** `transport`: 'webrtc' | 'websocket', passed as `--transport` when kelpie has the flag. */
/** `extra`: more kelpie arguments (the encoder sweep's `--x264-*`). */
export async function startKelpie(stack, env, fps, capture, transport, flag = true, extra = [], logLevel = null) {
  const port = await freePort();
  const args = ['--display', env.display, '--listen', `127.0.0.1:${port}`, '--framerate', String(fps),
    '--bitrate', String(BITRATE), '--ice-address', '127.0.0.1',
    // The scenarios fix the screen size; probes' windows must not resize it.
    '--resize', 'off'];
  if (capture) args.push('--capture', capture);
  if (transport && flag) args.push('--transport', transport);
  args.push(...extra);
  const p = stack.spawn(`kelpie-${capture || 'default'}${transport ? `-${transport}` : ''}`, BIN.kelpie, args,
    { env: { KELPIE_LOG: logLevel || process.env.KELPIE_LOG || 'info', NO_COLOR: '1' } });
  const base = `http://127.0.0.1:${port}/`;
  const t0 = Date.now();
  // Up once /health answers; a damage-driven source may answer 503 on a static screen, so
  // 200 is awaited only for a few seconds after that.
  let answered = null;
  await waitFor('kelpie /health to answer', async () => {
    if (!p.running) throw new Error(`kelpie exited\n${p.tail()}`);
    const r = await httpGet(`${base}health`, 1000);
    if (r && !answered) answered = Date.now();
    return r && (r.status === 200 || Date.now() - answered > 4000);
  }, { timeoutMs: 30_000, intervalMs: 100 });
  return { proc: p, port, base, ws: `ws://127.0.0.1:${port}/ws`, startup_ms: Date.now() - t0 };
}

export async function metrics(k) {
  const r = await httpGet(`${k.base}metrics`);
  return r?.status === 200 ? parseMetrics(r.text) : null;
}

/**
 * The page's inbound video statistics: `kelpie.videoStats()` (inbound-rtp over WebRTC, the
 * WebCodecs decoder's counts in the same shape over the WebSocket; `kelpie.pc` is null
 * there), or the peer connection's own stats from a client without it.
 */
export async function videoStats(page) {
  return page.evaluate(async () => {
    const k = window.kelpie;
    let s = null;
    if (typeof k?.videoStats === 'function') {
      s = await k.videoStats();
    } else if (k?.pc) {
      for (const r of (await k.pc.getStats()).values()) if (r.type === 'inbound-rtp' && r.kind === 'video') s = r;
    }
    if (!s) return null;
    return {
      timestamp: s.timestamp, framesDecoded: s.framesDecoded ?? 0, framesDropped: s.framesDropped ?? 0,
      framesReceived: s.framesReceived ?? null,
      packetsLost: s.packetsLost ?? 0, freezeCount: s.freezeCount ?? 0, frameWidth: s.frameWidth ?? 0,
      decoderImplementation: s.decoderImplementation ?? (k?.pc ? null : 'WebCodecs VideoDecoder'), jitterBufferDelay: s.jitterBufferDelay ?? null,
      jitterBufferEmittedCount: s.jitterBufferEmittedCount ?? null, totalDecodeTime: s.totalDecodeTime ?? null,
    };
  }).catch(() => null);
}

/**
 * Kelpie's own per-stage times of the frames it sent in the window just measured (the
 * last 600 frames: `kelpie_frame_stage_seconds`, see server/src/latency.rs), in ms:
 * {stage: {p50, p95}}; null from a kelpie without them.
 */
export function stageBreakdown(m) {
  const out = {};
  for (const x of m?.samples ?? []) {
    if (x.name !== 'kelpie_frame_stage_seconds') continue;
    const stage = x.labels.match(/stage="([^"]+)"/)?.[1];
    const q = x.labels.match(/quantile="([^"]+)"/)?.[1];
    if (!stage || !q) continue;
    out[stage] ??= {};
    out[stage][q === '0.5' ? 'p50' : 'p95'] = round(x.value * 1000, 2);
  }
  return Object.keys(out).length ? out : null;
}

/** Sum of a labelled metric's samples whose labels match `re`. */
export function metricWhere(m, name, re) {
  if (!m?.samples) return null;
  const hits = m.samples.filter((x) => x.name === name && re.test(x.labels));
  return hits.length ? hits.reduce((a, x) => a + x.value, 0) : null;
}

/** Presses a key every `everyMs` for `ms`; returns [{before, after}] (wall ms, node side). */
export async function pressKeys(page, ms, everyMs = 500) {
  const presses = [];
  const end = Date.now() + ms;
  let next = Date.now() + everyMs / 2;
  while (next < end - 100) {
    await sleep(Math.max(0, next - Date.now()));
    const before = Date.now();
    await page.keyboard.press('a');
    presses.push({ before, after: Date.now() });
    next += everyMs;
  }
  await sleep(Math.max(0, end - Date.now()));
  return presses;
}

/** The shortest CPU window of a still-screen scenario, in seconds. */
export const STATIC_CPU_SECONDS = 30;

/**
 * One kelpie + one Chromium viewer: time to first frame, then a measuring window (with key
 * presses for moving content; for a static screen a silent window for CPU, then presses).
 */
export async function browserRun(stack, env, browser, sc, capture, transport, seconds, flag, extra = [], onKelpie = null) {
  const k = await startKelpie(stack, env, sc.fps, capture, transport, flag, extra, onKelpie ? 'info,kelpie::media=debug' : null);
  if (onKelpie) onKelpie(k);
  const context = await browser.browser.newContext({ viewport: VIEWPORT });
  const page = await context.newPage();
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));
  try {
    await page.addInitScript(pageProbe, {
      width: env.ready.width, height: env.ready.height, layout: env.ready.layout, palette: env.ready.palette,
    });
    const tNav = Date.now();
    await page.goto(k.base, { timeout: 15_000 });
    let first;
    try {
      first = await waitFor('the first presented frame', () => page.evaluate(() => (window.__bench?.frames.length ? window.__bench.first : null)),
        { timeoutMs: 20_000, intervalMs: 50 });
    } catch (err) {
      const state = await page.evaluate(() => [window.kelpie?.state, window.__bench?.errors]).catch(() => '?');
      throw new Error(`${err.message}; page state ${JSON.stringify(state)}\n${consoleLines.join('\n')}\n${stack.why()}`);
    }
    const firstWall = await page.evaluate(() => window.__bench.frames[0].disp ?? window.__bench.frames[0].cb);
    // The page must carry media on the transport this row is for (no fallback, no switch).
    const carried = await page.evaluate(() => (window.kelpie?.transport ? { ...window.kelpie.transport } : null)).catch(() => null);
    const carriedKind = carried?.kind ?? (flag ? null : 'webrtc');
    if (carriedKind !== transport) {
      throw new Error(`the page carries media on ${carriedKind ?? 'an unknown transport'} (${carried?.reason ?? '?'}), not ${transport}\n${consoleLines.join('\n')}`);
    }
    // The client's own milestones (ms since page start) split the time to first frame.
    const steps = await page.evaluate(() => ({ ...(window.kelpie?.timings ?? {}) })).catch(() => ({}));
    await sleep(2000); // settle: rate control, jitter buffer
    const roots = { kelpie: k.proc.pid, xvfb: env.xvfb.pid, content: env.content.pid, chromium: browser.pid };
    const before = await videoStats(page);
    const m0 = await metrics(k);
    const meter = new CpuMeter(roots).start();
    const t0 = Date.now();
    const moving = sc.kind === 'moving';
    // A still screen costs a few 10 ms CPU ticks a second: its window is at least
    // STATIC_CPU_SECONDS long, or one tick more or less moves the figure by a tenth.
    const presses = moving ? await pressKeys(page, seconds * 1000)
      : (await sleep(Math.max(seconds, STATIC_CPU_SECONDS) * 1000), []);
    const t1 = Date.now();
    const cpu = meter.stop();
    const after = await videoStats(page);
    const m1 = await metrics(k);
    let staticPresses = null;
    let t2 = t1;
    if (!moving) {
      staticPresses = await pressKeys(page, 5000);
      t2 = Date.now();
    }
    await sleep(400); // the last press's photon
    const B = await page.evaluate(() => window.__bench);
    if (process.env.KELPIE_BENCH_DUMP) {
      fs.writeFileSync(path.join(stack.logDir, `probe-${capture || 'default'}-${transport}.json`), JSON.stringify({ t0, t1, t2, presses, staticPresses, inputs: env.content.events.filter((e) => e.ev === 'input'), frames: B.frames, keydowns: B.keydowns }));
    }
    const inputs = env.content.events.filter((e) => e.ev === 'input');
    const probe = analyse({
      frames: B.frames, t0, t1, presses, inputs, keydowns: B.keydowns, decodedBefore: before, decodedAfter: after,
    });
    if (!moving) {
      const press = analyse({ frames: B.frames, t0: t1, t1: t2, presses: staticPresses, inputs, keydowns: B.keydowns });
      for (const key of ['presses', 'input_to_photon_ms', 'press_to_x_client_ms', 'x_client_to_photon_ms', 'press_to_page_keydown_ms', 'presses_lost', 'presses_never_seen']) {
        probe[key] = press[key];
      }
      probe.glass_to_glass_ms = press.glass_to_glass_ms; // frames that showed a new timestamp after a press
    }
    const genStats = env.content.events.filter((e) => e.ev === 'stats' && e.t_ms >= t0 && e.t_ms <= t1);
    const gen = genStats.length >= 2 ? {
      frames_per_s: round((genStats.at(-1).frames - genStats[0].frames) / ((genStats.at(-1).t_ms - genStats[0].t_ms) / 1000), 1),
      late: genStats.at(-1).late - genStats[0].late,
    } : null;
    const encodeS = m1?.kelpie_encode_seconds;
    const now = await page.evaluate(() => window.kelpie?.transport?.kind ?? null).catch(() => null);
    if (flag && now !== transport) throw new Error(`media moved to ${now} during the measurement (expected ${transport})`);
    const skipped = (m) => metricWhere(m, 'kelpie_socket_frames_total', /result="skipped"/);
    const sent = (m) => metricWhere(m, 'kelpie_socket_frames_total', /result="sent"/);
    return {
      capture: captureLabel(capture),
      transport,
      transport_reason: carried?.reason ?? null,
      kelpie_cpu_pct: cpu.kelpie,
      kelpie_peak_rss_bytes: peakRss(k.proc.pid),
      xvfb_cpu_pct: cpu.xvfb,
      content_cpu_pct: cpu.content,
      chromium_cpu_pct: cpu.chromium,
      machine_cpu_pct: cpu.machine_pct,
      others_cpu_pct: cpu.others_pct,
      cpu_seconds: cpu.seconds,
      time_to_first_frame_ms: round(first.sincePageStartMs, 0),
      time_to_first_frame_from_goto_ms: round(firstWall - tNav, 0),
      first_frame_size: `${first.width}x${first.height}`,
      first_frame_steps_ms: steps,
      kelpie_startup_ms: k.startup_ms,
      probe_method: B.method,
      probe_errors: B.errors.slice(0, 5),
      probe,
      generator: gen,
      decoder: after?.decoderImplementation ?? null,
      jitter_buffer_ms: after && before && after.jitterBufferEmittedCount > before.jitterBufferEmittedCount
        ? round((1000 * (after.jitterBufferDelay - before.jitterBufferDelay)) / (after.jitterBufferEmittedCount - before.jitterBufferEmittedCount), 1) : null,
      browser_decode_ms: after && before && after.framesDecoded > before.framesDecoded && after.totalDecodeTime != null && before.totalDecodeTime != null
        ? round((1000 * (after.totalDecodeTime - before.totalDecodeTime)) / (after.framesDecoded - before.framesDecoded), 1) : null,
      server: m1 ? {
        encoded_fps: m0 && m1 ? round((m1.kelpie_frames_encoded_total - m0.kelpie_frames_encoded_total) / cpu.seconds, 1) : null,
        encode_ms: encodeS != null ? round(encodeS * 1000, 2) : null,
        bitrate_kbps: m1.kelpie_bitrate_bps != null ? round(m1.kelpie_bitrate_bps / 1000, 0) : null,
        // WebSocket only: frames sent on the viewer's socket, and skipped because it was busy.
        socket_frames_sent: sent(m1) != null && sent(m0) != null ? sent(m1) - sent(m0) : null,
        socket_frames_skipped: skipped(m1) != null && skipped(m0) != null ? skipped(m1) - skipped(m0) : null,
        // Static screens: the window's stages come from the presses that followed it.
        stages: stageBreakdown(moving ? m1 : await metrics(k)),
        frames_timed: m0?.kelpie_frames_timed_total != null && m1?.kelpie_frames_timed_total != null
          ? m1.kelpie_frames_timed_total - m0.kelpie_frames_timed_total : null,
      } : null,
    };
  } finally {
    await context.close().catch(() => {});
    await stack.stop(k.proc);
  }
}

export async function launchBrowser() {
  const require = createRequire(path.join(ROOT, 'tests/e2e/package.json'));
  let chromium;
  try {
    ({ chromium } = require('playwright-core'));
  } catch {
    throw new Error('playwright-core is missing: run `cd tests/e2e && npm ci` (make deps-test does)');
  }
  const server = await chromium.launchServer({ executablePath: BIN.chromium, args: CHROMIUM_ARGS, timeout: 30_000 });
  const proc = server.process();
  live.add(proc.pid);
  proc.on('exit', () => live.delete(proc.pid));
  const browser = await chromium.connect(server.wsEndpoint(), { timeout: 30_000 });
  return {
    browser,
    pid: proc.pid,
    async close() {
      await browser.close().catch(() => {});
      await server.close().catch(() => {});
      try { process.kill(-proc.pid, 'SIGKILL'); } catch { /* gone */ }
      live.delete(proc.pid);
    },
  };
}

#!/usr/bin/env node
/**
 * `make bench`: Kelpie's black-box benchmark (issue 5). See docs/benchmarks.md.
 *
 *   cargo build -j2 --release -p kelpie -p kelpie-tests -p kelpie-gst-plugins && node tests/bench/run.mjs
 *
 * (`-p kelpie-gst-plugins` builds target/release/libkelpiegst.so, used only for the
 * kelpiexsrc rows of the 1080p60 breakdown; without it those rows say "not measured".)
 *
 * Per scenario it starts a private Xvfb at the scenario's size and `kelpie-content` on it
 * (moving or static content with a wall-clock timestamp and an input square), measures the
 * plain `ximagesrc ! videoconvert ! x264enc` pipeline on that very content (the baseline,
 * so CPU figures are ratios that hold on a noisy machine), then for each capture source
 * Kelpie offers a release `kelpie` on the same display, watched by the real web client in
 * headless Chromium (tests/bench/probe.mjs reads every presented frame) or, for the
 * many-viewers scenario, by webrtc-rs clients (`kelpie-load`). Browser scenarios run each
 * capture source once per media transport, back to back on the same display and content
 * (`kelpie --transport webrtc`, then `--transport websocket`: H.264 on the signalling
 * WebSocket, decoded with WebCodecs), so the two transports' figures are comparable within
 * the run; the many-viewers scenario is WebRTC only (kelpie-load speaks only WebRTC). CPU is
 * the whole process tree's user + system time from /proc, as % of one core.
 *
 * Writes target/bench/results.json and regenerates the section of docs/benchmarks.md
 * between `<!-- bench:begin -->` and `<!-- bench:end -->`. Exits 0 whatever the figures
 * are (missed targets are reported, not failed); non-zero only when the harness itself
 * could not measure (a process did not start, a viewer never played, the time budget ran
 * out).
 *
 * Options:
 *   --scenarios a,b     subset of: 720p30,1080p30,1080p60,static1080,viewers1080p30
 *   --capture a,b       capture sources to run (default: every one `kelpie --help` lists)
 *   --transports a,b    media transports for the browser scenarios: webrtc,websocket
 *                       (default both; targets are judged on the WebRTC rows)
 *   --seconds N         measuring window per scenario (default 10)
 *   --out FILE          results JSON (default target/bench/results.json)
 *   --no-docs           do not touch docs/benchmarks.md
 *   --report FILE       only regenerate docs/benchmarks.md from an existing results JSON
 *   --budget S          hard time limit for the whole run (default 840 s)
 *   --detune F          moving content is drawn at (1 + F) × the stream's rate (default 0.02)
 *
 * Environment: KELPIE_BIN, KELPIE_CONTENT_BIN, KELPIE_LOAD_BIN, KELPIE_CHROMIUM and
 * KELPIE_GST_PLUGIN_PATH override where things are; KELPIE_BENCH_DUMP=1 also writes every
 * probe's raw per-frame records to target/bench/logs/<scenario>/probe-<capture>-<transport>.json.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

import {
  CpuMeter, JsonProc, Proc, freePort, httpGet, live, parseMetrics, peakRss, round, sleep, waitFor,
} from './lib.mjs';
import { analyse, pageProbe } from './probe.mjs';
import { renderSection, evaluateTargets, updateDocs } from './report.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const RELEASE = path.join(ROOT, 'target/release');
const BIN = {
  kelpie: process.env.KELPIE_BIN || path.join(RELEASE, 'kelpie'),
  content: process.env.KELPIE_CONTENT_BIN || path.join(RELEASE, 'kelpie-content'),
  load: process.env.KELPIE_LOAD_BIN || path.join(RELEASE, 'kelpie-load'),
  chromium: process.env.KELPIE_CHROMIUM || '/usr/bin/chromium',
};
const COMMAND = 'make bench  # = cargo build -j2 --release -p kelpie -p kelpie-tests -p kelpie-gst-plugins && node tests/bench/run.mjs';
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--disable-background-networking',
  '--no-first-run', '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
];
const VIEWPORT = { width: 1280, height: 720 };
const BITRATE = 8000;
const TRANSPORTS = ['webrtc', 'websocket'];

const ALL_SCENARIOS = {
  '720p30': { kind: 'moving', width: 1280, height: 720, fps: 30 },
  '1080p30': { kind: 'moving', width: 1920, height: 1080, fps: 30 },
  '1080p60': { kind: 'moving', width: 1920, height: 1080, fps: 60, breakdown: true },
  static1080: { kind: 'static', width: 1920, height: 1080, fps: 60 },
  viewers1080p30: { kind: 'viewers', width: 1920, height: 1080, fps: 30, stages: [1, 4, 8] },
};

function parseArgs(argv) {
  const a = { scenarios: Object.keys(ALL_SCENARIOS), capture: null, transports: [...TRANSPORTS], seconds: 10, docs: true, budget: 840, detune: 0.02, out: path.join(ROOT, 'target/bench/results.json') };
  for (let i = 0; i < argv.length; i++) {
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--scenarios': a.scenarios = v().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--capture': a.capture = v().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--transports': case '--transport': a.transports = v().split(',').map((s) => s.trim()).filter(Boolean); break;
      case '--seconds': a.seconds = Number(v()); break;
      case '--out': a.out = path.resolve(v()); break;
      case '--no-docs': a.docs = false; break;
      case '--report': a.report = path.resolve(v()); break;
      case '--budget': a.budget = Number(v()); break;
      case '--detune': a.detune = Number(v()); break;
      case '-h': case '--help':
        console.log(fs.readFileSync(fileURLToPath(import.meta.url), 'utf8').split('*/')[0]);
        process.exit(0);
        break;
      default: throw new Error(`unknown argument ${argv[i]} (try --help)`);
    }
  }
  for (const s of a.scenarios) if (!ALL_SCENARIOS[s]) throw new Error(`unknown scenario ${s}; known: ${Object.keys(ALL_SCENARIOS).join(', ')}`);
  for (const t of a.transports) if (!TRANSPORTS.includes(t)) throw new Error(`unknown transport ${t}; known: ${TRANSPORTS.join(', ')}`);
  if (!a.transports.length) throw new Error('--transports needs at least one of webrtc, websocket');
  a.transports = TRANSPORTS.filter((t) => a.transports.includes(t));
  if (!(a.seconds >= 2 && a.seconds <= 60)) throw new Error('--seconds must be in [2, 60]');
  if (!(a.detune >= 0 && a.detune <= 0.5)) throw new Error('--detune must be in [0, 0.5]');
  return a;
}

const log = (...m) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}]`, ...m);

function sh(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 10_000, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (err) {
    return (err.stdout || '').trim() || null;
  }
}

function machineInfo() {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const model = cpuinfo.match(/^model name\s*:\s*(.*)$/m)?.[1]?.trim() || os.cpus()[0]?.model || 'unknown';
  const memKb = Number(fs.readFileSync('/proc/meminfo', 'utf8').match(/^MemTotal:\s+(\d+)/m)?.[1] || 0);
  const osRelease = fs.readFileSync('/etc/os-release', 'utf8').match(/^PRETTY_NAME="?([^"\n]*)/m)?.[1] || 'Linux';
  return {
    nproc: os.cpus().length,
    cpu_model: model,
    mem_gib: round(memKb / 1024 / 1024, 1),
    os: osRelease,
    kernel: os.release(),
    gstreamer: sh('gst-launch-1.0', ['--version'])?.match(/GStreamer\s+([\d.]+)/)?.[1] || null,
    chromium: sh(BIN.chromium, ['--version'])?.match(/[\d.]+/)?.[0] || null,
    node: process.version,
    loadavg_at_start: os.loadavg().map((x) => round(x, 2)),
  };
}

/** Capture sources `kelpie --help` offers via `--capture`; [null] when it has no such flag. */
function captureModes() {
  const help = sh(BIN.kelpie, ['--help']) || '';
  const i = help.indexOf('--capture');
  if (i < 0) return { flag: false, modes: [null] };
  const section = help.slice(i, i + 1500).split(/\n\s*\n\s*--/)[0];
  const modes = ['damage', 'ximagesrc'].filter((m) => section.includes(m));
  return { flag: true, modes: modes.length ? modes : [null] };
}

const captureLabel = (mode) => mode || 'ximagesrc (no --capture flag)';

/** Whether `kelpie --help` has `--transport` (without it kelpie speaks WebRTC only). */
function transportFlag() {
  return /--transport\b/.test(sh(BIN.kelpie, ['--help']) || '');
}

/** Everything one scenario started, stopped in reverse order. */
class Stack {
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

async function startXvfb(stack, width, height) {
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

async function startContent(stack, display, mode, fps) {
  const content = stack.spawn('content', BIN.content, ['--mode', mode, '--fps', String(fps)], { json: true, env: { DISPLAY: display } });
  const ready = await content.waitEvent('kelpie-content ready', (e) => e.ev === 'ready', 10_000);
  return { proc: content, ready };
}

/** The plain pipeline (or its first stages, for the breakdown) on the scenario's display. */
function baselinePipeline(display, fps, stage) {
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
function pluginDir() {
  const dir = process.env.KELPIE_GST_PLUGIN_PATH || RELEASE;
  return fs.existsSync(path.join(dir, 'libkelpiegst.so')) ? dir : null;
}

/** Runs a gst-launch pipeline for `seconds` after a warm-up: CPU of its tree, buffers/s. */
async function runPipeline(stack, env, fps, stage, seconds) {
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
async function startKelpie(stack, env, fps, capture, transport, flag = true) {
  const port = await freePort();
  const args = ['--display', env.display, '--listen', `127.0.0.1:${port}`, '--framerate', String(fps),
    '--bitrate', String(BITRATE), '--ice-address', '127.0.0.1',
    // The scenarios fix the screen size; probes' windows must not resize it.
    '--resize', 'off'];
  if (capture) args.push('--capture', capture);
  if (transport && flag) args.push('--transport', transport);
  const p = stack.spawn(`kelpie-${capture || 'default'}${transport ? `-${transport}` : ''}`, BIN.kelpie, args,
    { env: { KELPIE_LOG: process.env.KELPIE_LOG || 'info', NO_COLOR: '1' } });
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

async function metrics(k) {
  const r = await httpGet(`${k.base}metrics`);
  return r?.status === 200 ? parseMetrics(r.text) : null;
}

/**
 * The page's inbound video statistics: `kelpie.videoStats()` (inbound-rtp over WebRTC, the
 * WebCodecs decoder's counts in the same shape over the WebSocket; `kelpie.pc` is null
 * there), or the peer connection's own stats from a client without it.
 */
async function videoStats(page) {
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

/** Sum of a labelled metric's samples whose labels match `re`. */
function metricWhere(m, name, re) {
  if (!m?.samples) return null;
  const hits = m.samples.filter((x) => x.name === name && re.test(x.labels));
  return hits.length ? hits.reduce((a, x) => a + x.value, 0) : null;
}

/** Presses a key every `everyMs` for `ms`; returns [{before, after}] (wall ms, node side). */
async function pressKeys(page, ms, everyMs = 500) {
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

/**
 * One kelpie + one Chromium viewer: time to first frame, then a measuring window (with key
 * presses for moving content; for a static screen a silent window for CPU, then presses).
 */
async function browserRun(stack, env, browser, sc, capture, transport, seconds, flag) {
  const k = await startKelpie(stack, env, sc.fps, capture, transport, flag);
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
    const presses = moving ? await pressKeys(page, seconds * 1000) : (await sleep(seconds * 1000), []);
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
      } : null,
    };
  } finally {
    await context.close().catch(() => {});
    await stack.stop(k.proc);
  }
}

/** One kelpie + `kelpie-load` ramping through `stages` viewers; CPU per stage. */
async function viewersRun(stack, env, sc, capture, seconds, flag) {
  const k = await startKelpie(stack, env, sc.fps, capture, 'webrtc', flag);
  try {
    const stages = [];
    let meter = null;
    let failure = null;
    const roots = { kelpie: k.proc.pid, xvfb: env.xvfb.pid, content: env.content.pid, load: 0 };
    // CPU is sampled the moment kelpie-load says its window starts and ends.
    const onEvent = (e) => {
      if (e.ev === 'measure_start') meter = new CpuMeter(roots).start();
      else if (e.ev === 'measure_end' && meter) stages.push({ viewers: e.viewers, cpu: meter.stop(), rss: peakRss(k.proc.pid) });
      else if (e.ev === 'stage') Object.assign(stages.find((s) => s.viewers === e.viewers) || {}, { load: e });
      else if (e.ev === 'error') failure = e.message;
    };
    const load = stack.spawn('load', BIN.load, ['--url', k.ws, '--viewers', sc.stages.join(','), '--seconds', String(Math.max(4, seconds - 2)), '--settle', '3'], { json: true, onEvent });
    roots.load = load.pid;
    const deadline = Date.now() + 40_000 + sc.stages.length * (seconds + 8) * 1000;
    while (Date.now() < deadline && load.running) {
      if (failure) throw new Error(`kelpie-load: ${failure}\n${stack.why()}`);
      if (!k.proc.running) throw new Error(`kelpie exited during the viewers run\n${stack.why()}`);
      await sleep(50);
    }
    await Promise.race([load.exited, sleep(500)]);
    if (failure) throw new Error(`kelpie-load: ${failure}\n${stack.why()}`);
    if (load.running) throw new Error(`kelpie-load did not finish in time\n${stack.why()}`);
    if (stages.length !== sc.stages.length) throw new Error(`kelpie-load finished ${stages.length} of ${sc.stages.length} stages\n${stack.why()}`);
    const rows = stages.map((s) => ({
      viewers: s.viewers,
      fps: s.load?.fps ?? [],
      min_fps: s.load ? Math.min(...s.load.fps) : null,
      glitched: s.load?.glitched ?? [],
      kelpie_cpu_pct: s.cpu.kelpie,
      load_clients_cpu_pct: s.cpu.load,
      xvfb_cpu_pct: s.cpu.xvfb,
      content_cpu_pct: s.cpu.content,
      machine_cpu_pct: s.cpu.machine_pct,
      others_cpu_pct: s.cpu.others_pct,
      kelpie_peak_rss_bytes: s.rss,
    }));
    const one = rows.find((r) => r.viewers === sc.stages[0]);
    const most = rows.at(-1);
    return {
      capture: captureLabel(capture),
      transport: 'webrtc',
      stages: rows,
      per_extra_viewer_cpu_pct: most.viewers > one.viewers ? round((most.kelpie_cpu_pct - one.kelpie_cpu_pct) / (most.viewers - one.viewers), 2) : null,
    };
  } finally {
    await stack.stop(k.proc);
  }
}

async function launchBrowser() {
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

async function runScenario(name, sc, ctx) {
  const logDir = path.join(path.dirname(ctx.args.out), 'logs', name);
  fs.rmSync(logDir, { recursive: true, force: true });
  const stack = new Stack(logDir);
  const result = { name, kind: sc.kind, width: sc.width, height: sc.height, fps: sc.fps, runs: [] };
  try {
    const x = await startXvfb(stack, sc.width, sc.height);
    // Moving content is drawn slightly faster than the stream's rate, so the phase between
    // drawing and capture sweeps through every value many times per window, as it does
    // for real content; at exactly the same rate a run would measure one arbitrary phase
    // (up to a frame interval of latency either way).
    const contentFps = round(sc.fps * (1 + ctx.args.detune), 3);
    result.content_fps = sc.kind === 'static' ? 0 : contentFps;
    const c = await startContent(stack, x.display, sc.kind === 'static' ? 'static' : 'moving', contentFps);
    const env = { display: x.display, xvfb: x.proc, content: c.proc, ready: c.ready };
    await sleep(500);
    if (sc.kind !== 'viewers') {
      log(`${name}: baseline pipeline`);
      result.baseline = await runPipeline(stack, env, sc.fps, 'encode', Math.min(8, ctx.args.seconds));
      if (sc.breakdown) {
        log(`${name}: breakdown pipelines (capture; capture + convert)`);
        result.breakdown = {
          capture: await runPipeline(stack, env, sc.fps, 'capture', 5),
          convert: await runPipeline(stack, env, sc.fps, 'convert', 5),
        };
        if (pluginDir()) {
          log(`${name}: breakdown pipelines with kelpiexsrc (capture + convert; + x264)`);
          try {
            result.breakdown.xsrc = await runPipeline(stack, env, sc.fps, 'xsrc', 5);
            result.breakdown.xsrc_encode = await runPipeline(stack, env, sc.fps, 'xsrc-encode', 5);
          } catch (err) {
            result.breakdown.xsrc_error = err.message.split('\n')[0];
            log(`${name}: kelpiexsrc pipelines failed (reported, not fatal): ${err.message}`);
          }
        } else {
          result.breakdown.xsrc_error = 'libkelpiegst.so not built (cargo build --release -p kelpie-gst-plugins)';
        }
      }
    }
    // Each capture source once per transport, back to back on this display and content
    // (the many-viewers scenario: WebRTC only, kelpie-load speaks nothing else).
    const transports = sc.kind === 'viewers' ? ['webrtc'] : ctx.transports;
    for (const capture of ctx.modes) {
      for (const transport of transports) {
        const what = `capture ${captureLabel(capture)}, ${transport}`;
        log(`${name}: kelpie, ${what}`);
        try {
          const run = sc.kind === 'viewers'
            ? await viewersRun(stack, env, sc, capture, ctx.args.seconds, ctx.transportFlag)
            : await browserRun(stack, env, ctx.browser, sc, capture, transport, ctx.args.seconds, ctx.transportFlag);
          if (result.baseline?.cpu_pct && run.kelpie_cpu_pct != null) run.cpu_ratio_to_baseline = round(run.kelpie_cpu_pct / result.baseline.cpu_pct, 2);
          result.runs.push(run);
          log(`${name} (${transport}): ${summary(run, result)}`);
        } catch (err) {
          result.runs.push({ capture: captureLabel(capture), transport, error: err.message.slice(0, 4000) });
          ctx.errors.push(`${name} (${what}): ${err.message.split('\n')[0]}`);
          log(`${name} (${transport}): FAILED: ${err.message}`);
        }
      }
    }
    if (result.baseline) {
      // The plain pipeline again after kelpie: the ratio uses the mean of both, so load
      // that came and went during the scenario weighs on both sides.
      log(`${name}: baseline pipeline again`);
      const again = await runPipeline(stack, env, sc.fps, 'encode', Math.min(8, ctx.args.seconds));
      const first = result.baseline;
      result.baseline = {
        ...first,
        cpu_pct: round((first.cpu_pct + again.cpu_pct) / 2, 1),
        fps: round((first.fps + again.fps) / 2, 1),
        runs: [{ cpu_pct: first.cpu_pct, fps: first.fps, others_cpu_pct: first.others_cpu_pct }, { cpu_pct: again.cpu_pct, fps: again.fps, others_cpu_pct: again.others_cpu_pct }],
      };
      for (const run of result.runs) {
        if (run.kelpie_cpu_pct != null && result.baseline.cpu_pct) run.cpu_ratio_to_baseline = round(run.kelpie_cpu_pct / result.baseline.cpu_pct, 2);
      }
    }
  } catch (err) {
    result.error = err.message.slice(0, 4000);
    ctx.errors.push(`${name}: ${err.message.split('\n')[0]}`);
    log(`${name}: FAILED: ${err.message}`);
  } finally {
    await stack.close();
  }
  return result;
}

function summary(run, result) {
  if (run.stages) return run.stages.map((s) => `${s.viewers} viewers: kelpie ${s.kelpie_cpu_pct} %, min fps ${s.min_fps}`).join('; ');
  const p = run.probe;
  return `fps ${p.presented_fps} (decoded ${p.decoded_fps}), g2g p50 ${p.glass_to_glass_ms.p50} ms, i2p p50 ${p.input_to_photon_ms.p50} ms, `
    + `ttff ${run.time_to_first_frame_ms} ms, kelpie ${run.kelpie_cpu_pct} % vs baseline ${result.baseline?.cpu_pct} %`;
}

async function main() {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv);
  if (args.report) {
    const results = JSON.parse(fs.readFileSync(args.report, 'utf8'));
    updateDocs(path.join(ROOT, 'docs/benchmarks.md'), renderSection(results));
    log('docs/benchmarks.md regenerated from', args.report);
    return 0;
  }
  for (const [what, file] of Object.entries(BIN)) {
    try { fs.accessSync(file, fs.constants.X_OK); } catch {
      throw new Error(`${file} (${what}) is missing: build with \`cargo build -j2 --release -p kelpie -p kelpie-tests -p kelpie-gst-plugins\``);
    }
  }
  const budgetTimer = setTimeout(() => {
    log(`time budget of ${args.budget} s exhausted: killing everything`);
    process.exit(3); // the exit handler kills every process group we started
  }, args.budget * 1000);

  const started = Date.now();
  const machine = machineInfo();
  const { flag, modes: available } = captureModes();
  const modes = args.capture ? args.capture.map((m) => (m === 'default' ? null : m)) : available;
  if (args.capture && !flag && modes.some((m) => m)) throw new Error('this kelpie has no --capture flag; run without --capture');
  const tflag = transportFlag();
  if (!tflag && args.transports.includes('websocket')) {
    if (argv.includes('--transports') || argv.includes('--transport')) throw new Error('this kelpie has no --transport flag (WebRTC only); run with --transports webrtc');
    log('this kelpie has no --transport flag: measuring WebRTC only');
    args.transports = ['webrtc'];
  }
  log(`machine: ${machine.nproc} cores, ${machine.cpu_model}, ${machine.mem_gib} GiB; GStreamer ${machine.gstreamer}; capture: ${modes.map(captureLabel).join(', ')}; transports: ${args.transports.join(', ')}`);

  const ctx = { args, modes, transports: args.transports, transportFlag: tflag, errors: [] };
  const results = {
    date: new Date().toISOString(),
    // A run with options is recorded as what it was, not as plain `make bench`.
    command: argv.length ? `${COMMAND.split('&& ')[0].replace(/^make bench\s+#\s*=\s*/, '')}&& node tests/bench/run.mjs ${argv.join(' ')}` : COMMAND,
    machine,
    capture_flag: flag,
    capture_modes: modes.map(captureLabel),
    transport_flag: tflag,
    transports: args.transports,
    bitrate_kbps: BITRATE,
    viewport: VIEWPORT,
    seconds: args.seconds,
    content_rate_factor: 1 + args.detune,
    scenarios: [],
  };
  const needsBrowser = args.scenarios.some((s) => ALL_SCENARIOS[s].kind !== 'viewers');
  try {
    if (needsBrowser) ctx.browser = await launchBrowser();
    for (const name of args.scenarios) results.scenarios.push(await runScenario(name, ALL_SCENARIOS[name], ctx));
  } finally {
    await ctx.browser?.close();
  }
  results.duration_s = round((Date.now() - started) / 1000, 0);
  results.targets = evaluateTargets(results);
  results.errors = ctx.errors;
  fs.mkdirSync(path.dirname(args.out), { recursive: true });
  fs.writeFileSync(args.out, `${JSON.stringify(results, null, 2)}\n`);
  log(`results: ${path.relative(ROOT, args.out)} (${results.duration_s} s)`);
  if (args.docs) {
    updateDocs(path.join(ROOT, 'docs/benchmarks.md'), renderSection(results));
    log('docs/benchmarks.md: section between <!-- bench:begin --> and <!-- bench:end --> regenerated');
  }
  for (const t of results.targets) {
    const tag = t.verdict === 'met' ? 'met         ' : t.verdict === 'not measured' ? 'not measured' : 'MISSED      ';
    log(`${tag} ${t.target} [${t.capture}${t.transport ? `, ${t.transport}` : ''}]: ${t.measured_text}${t.verdict.startsWith('missed') ? ` (${t.verdict})` : ''}`);
  }
  clearTimeout(budgetTimer);
  if (ctx.errors.length) {
    log(`harness failures:\n  ${ctx.errors.join('\n  ')}`);
    return 1;
  }
  return 0;
}

main().then((code) => process.exit(code), (err) => {
  log(`harness failure: ${err.stack || err.message}`);
  process.exit(1);
});

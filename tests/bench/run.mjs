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
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { CpuMeter, live, peakRss, round, sleep } from './lib.mjs';
import { renderSection, evaluateTargets, updateDocs } from './report.mjs';
import {
  BIN, BITRATE, ROOT, STATIC_CPU_SECONDS, Stack, VIEWPORT, browserRun, captureLabel, launchBrowser, runPipeline, pluginDir, sh, startContent, startKelpie, startXvfb,
} from './stack.mjs';

const COMMAND = 'make bench  # = cargo build -j2 --release -p kelpie -p kelpie-tests -p kelpie-gst-plugins && node tests/bench/run.mjs';
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


/** Whether `kelpie --help` has `--transport` (without it kelpie speaks WebRTC only). */
function transportFlag() {
  return /--transport\b/.test(sh(BIN.kelpie, ['--help']) || '');
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
    static_cpu_seconds: STATIC_CPU_SECONDS,
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

/**
 * The audio benchmark (issue #12; `make bench` runs it after lossy.mjs): Kelpie with its
 * embedded desktop (own Xvfb and PulseAudio), the session `kelpie-avsync`, one headless
 * Chromium page. Every `--period-ms` the session flips a square black↔white and, in the
 * same tick, starts a 20 ms 1 kHz burst in a `pacat` stream to the default sink (see
 * tests/src/bin/kelpie-avsync.rs); it prints the wall-clock time of both. Measured:
 *
 * 1. **glass-to-ear delay**: burst handed to pacat → its first sample processed by the
 *    page's audio graph fed by the received track, p50/p95;
 * 2. **audio–video offset**: that audio time − the time the page's <video> presented the
 *    first frame showing the flipped square, p50 and spread.
 *
 * Audio is timed with an AudioWorklet, not an AnalyserNode: an analyser has to be polled
 * from the main thread (timers clamp to ~4 ms, and the same thread reads video frames),
 * and its window blurs the onset by its length; a worklet sees every 128-sample block and
 * reports the onset's sample index. Sample indices become wall-clock times through the
 * worklet's heartbeats: the smallest (arrival − frame time) over the run is when the audio
 * thread processes a block (one message hop, the fastest seen, is the only slack).
 * `heard_ms` is the same onset through `AudioContext.getOutputTimestamp()` (Chromium's
 * estimate of when it leaves the speaker; headless, the output is a fake device).
 * Video is timed by requestVideoFrameCallback's `presentationTime`, the square read back
 * through a small canvas.
 *
 * Prints a Markdown table, writes tests/bench/logs/audio.json and, unless --no-docs,
 * replaces docs/benchmarks.md between `<!-- audio:begin -->` and `<!-- audio:end -->`.
 * Exits 0 whatever the figures; non-zero only when nothing could be measured.
 *
 *   node tests/bench/audio.mjs [--clicks 30] [--period-ms 500] [--latency-ms 10] [--no-docs] [--fake-output]
 *                              [--transport webrtc|websocket] [--sound low-latency|webrtc]
 *
 * Over WebRTC, without --sound, both sound routes are measured one after the other: the
 * low-latency data channel (the page's default) and the RTP track ("smooth").
 *
 * The page's browser plays into a PulseAudio null sink of the bench's own, as it would
 * into a sound card; `--fake-output` leaves it on headless Chromium's fake output device
 * (whose buffering added ~150 ms here).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { quantile, round } from './lib.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const RELEASE = path.join(ROOT, 'target/release');
process.env.KELPIE_BIN ||= path.join(RELEASE, 'kelpie');
process.env.KELPIE_XPROBE_BIN ||= path.join(RELEASE, 'kelpie-xprobe');
const AVSYNC_BIN = process.env.KELPIE_AVSYNC_BIN || path.join(RELEASE, 'kelpie-avsync');

const { openConnected, sleep, startEnv, waitDecoding, waitFor } = await import('../e2e/harness.mjs');
const { audioStats, hasCommand, startEmbedded, startPulse } = await import('../e2e/sound.mjs');

const BEGIN = '<!-- audio:begin -->';
const END = '<!-- audio:end -->';
const SIZE = { width: 1280, height: 720 };
/** Targets from the issue. */
const TARGET_DELAY_P50_MS = 60;
const TARGET_OFFSET_MS = 40;
/** A flip's audio or video counts only if it arrives within this of the flip. */
const MATCH_WINDOW_MS = 400;
/** Onset threshold on |sample| (the burst's amplitude is 0.5) and quiet time to re-arm. */
const ONSET_THRESHOLD = 0.1;
const REARM_MS = 100;
/** A rise of totalAudioEnergy this large between two polls is a burst being played (a
 *  10 ms frame at the burst's level 0.5 adds 0.0025; decoded silence adds ~0). */
const ENERGY_STEP = 0.0005;

function parseArgs(argv) {
  const out = { clicks: 30, periodMs: 500, latencyMs: 10, docs: true, transport: 'webrtc', sound: 'low-latency' };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--clicks') out.clicks = Number(argv[++i]);
    else if (argv[i] === '--period-ms') out.periodMs = Number(argv[++i]);
    else if (argv[i] === '--latency-ms') out.latencyMs = Number(argv[++i]);
    else if (argv[i] === '--no-docs') out.docs = false;
    else if (argv[i] === '--fake-output') out.fakeOutput = true;
    else if (argv[i] === '--transport') out.transport = argv[++i];
    else if (argv[i] === '--sound') { out.sound = argv[++i]; out.soundGiven = true; }
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  if (!['webrtc', 'websocket'].includes(out.transport)) throw new Error('--transport is webrtc or websocket');
  if (!['low-latency', 'webrtc'].includes(out.sound)) throw new Error('--sound is low-latency or webrtc');
  if (!(out.clicks >= 20)) throw new Error('--clicks must be at least 20 (p95 needs them)');
  return out;
}

/** Stand-in for node:test's context: runs the cleanups registered with `after`. */
function scope() {
  const cleanups = [];
  return { name: 'audio-bench', after: (fn) => cleanups.push(fn), async close() { for (const fn of cleanups.reverse()) await fn(); } };
}

/**
 * Page side (serialised by Playwright, so self-contained): the onset worklet on the
 * received audio track and the square reader on #screen. Records into window.__av.
 */
async function installProbe(cfg) {
  // Date.now() ↔ performance.now(), taken as Date.now() ticks so it is good to ~0.1 ms.
  const t0 = Date.now();
  const spinUntil = performance.now() + 5;
  while (Date.now() === t0 && performance.now() < spinUntil) { /* at most 5 ms */ }
  const off = Date.now() - performance.now();
  const wall = (perfT) => (typeof perfT === 'number' ? off + perfT : null);
  const B = (window.__av = { onsets: [], beats: [], video: [], errors: [] });

  // The page's own player (the WebSocket transport, WebRTC's low-latency channel) has no
  // received track to tap: only the sound device's recording times it.
  if (cfg.route === 'rtp') {
    const track = window.kelpie.pc?.getReceivers().map((r) => r.track).find((t) => t && t.kind === 'audio');
    if (!track) throw new Error('no audio receiver on window.kelpie.pc');
    const ctx = new AudioContext({ latencyHint: 'interactive' });
    await ctx.resume();
    const worklet = `
      class Onset extends AudioWorkletProcessor {
        constructor(o) {
          super();
          this.thr = o.processorOptions.threshold;
          this.rearm = o.processorOptions.rearmFrames;
          this.quiet = this.rearm; this.blocks = 0;
        }
        process(inputs) {
          const ch = inputs[0] && inputs[0][0];
          if (this.blocks++ % 20 === 0) this.port.postMessage({ kind: 'beat', frame: currentFrame });
          if (!ch) return true;
          for (let i = 0; i < ch.length; i++) {
            if (Math.abs(ch[i]) > this.thr) {
              if (this.quiet >= this.rearm) this.port.postMessage({ kind: 'onset', frame: currentFrame + i, value: ch[i] });
              this.quiet = 0;
            } else this.quiet++;
          }
          return true;
        }
      }
      registerProcessor('kelpie-onset', Onset);`;
    const url = URL.createObjectURL(new Blob([worklet], { type: 'application/javascript' }));
    await ctx.audioWorklet.addModule(url);
    const node = new AudioWorkletNode(ctx, 'kelpie-onset', {
      processorOptions: { threshold: cfg.threshold, rearmFrames: Math.round((cfg.rearmMs / 1000) * ctx.sampleRate) },
    });
    // Pulled by the destination through a muted gain: the page's own <audio> plays the sound.
    const mute = ctx.createGain();
    mute.gain.value = 0;
    ctx.createMediaStreamSource(new MediaStream([track])).connect(node).connect(mute).connect(ctx.destination);
    node.port.onmessage = (e) => {
      const rx = wall(performance.now());
      const ots = ctx.getOutputTimestamp();
      const m = { ...e.data, rx, otsCtx: ots.contextTime, otsWall: wall(ots.performanceTime) };
      (e.data.kind === 'onset' ? B.onsets : B.beats).push(m);
    };
    // A second clock on the same sound, without WebAudio: Chromium adds to the inbound
    // stream's totalAudioEnergy as its playout pulls each decoded 10 ms frame, so the poll
    // that first sees a burst's energy times when it was handed to the audio device
    // (± half the poll interval).
    const receiver = window.kelpie.pc.getReceivers().find((r) => r.track?.kind === 'audio');
    B.playout = [];
    (async () => {
      let last = null;
      let lastAt = null;
      while (!B.stop) {
        const report = await receiver.getStats();
        const at = wall(performance.now());
        let energy = null;
        report.forEach((x) => { if (x.type === 'inbound-rtp') energy = x.totalAudioEnergy; });
        if (energy != null && last != null && energy - last > cfg.energyStep) B.playout.push({ at: (at + lastAt) / 2, de: energy - last });
        last = energy;
        lastAt = at;
        await new Promise((r) => setTimeout(r, 2));
      }
    })();
    B.sampleRate = ctx.sampleRate;
    B.baseLatency = ctx.baseLatency;
    B.outputLatency = ctx.outputLatency;
  }

  const video = document.getElementById('screen');
  const canvas = document.createElement('canvas');
  canvas.width = 8;
  canvas.height = 8;
  const c2d = canvas.getContext('2d', { willReadFrequently: true });
  const L = cfg.layout;
  let last = null;
  const onFrame = (now, meta) => {
    video.requestVideoFrameCallback(onFrame);
    const sx = video.videoWidth / cfg.width;
    const sy = video.videoHeight / cfg.height;
    // The middle half of the square.
    c2d.drawImage(video, (L.sq_x + L.sq_size / 4) * sx, (L.sq_y + L.sq_size / 4) * sy,
      (L.sq_size / 2) * sx, (L.sq_size / 2) * sy, 0, 0, 8, 8);
    const d = c2d.getImageData(0, 0, 8, 8).data;
    let sum = 0;
    for (let i = 0; i < d.length; i += 4) sum += 0.2126 * d[i] + 0.7152 * d[i + 1] + 0.0722 * d[i + 2];
    const lum = sum / (d.length / 4);
    const state = lum > 170 ? 'white' : lum < 85 ? 'black' : null;
    if (state && state !== last) {
      last = state;
      B.video.push({ white: state === 'white', pres: wall(meta.presentationTime), cb: wall(now), lum: Math.round(lum) });
    }
  };
  video.requestVideoFrameCallback(onFrame);
  return { sampleRate: B.sampleRate, baseLatency: B.baseLatency, outputLatency: B.outputLatency };
}

function stats(values) {
  if (!values.length) return { n: 0 };
  return {
    n: values.length,
    p5: round(quantile(values, 0.05), 1),
    p50: round(quantile(values, 0.5), 1),
    p95: round(quantile(values, 0.95), 1),
    min: round(Math.min(...values), 1),
    max: round(Math.max(...values), 1),
  };
}

/** Flips from the session joined with what the page saw. */
/**
 * Records `device` of the PulseAudio at `server` (mono s16 48 kHz, 5 ms latency) and
 * notes the wall-clock time of every onset (|sample| over the threshold after 100 ms of
 * quiet): the chunk's arrival time minus the samples after the onset in it.
 */
function recordOnsets(server, device) {
  const rec = spawn('parec', [`--device=${device}`, '--format=s16le', '--rate=48000', '--channels=1', '--raw', '--latency-msec=5'],
    { env: { ...process.env, PULSE_SERVER: server }, stdio: ['ignore', 'pipe', 'ignore'] });
  const onsets = [];
  let quiet = 48_000;
  const level = Math.round(ONSET_THRESHOLD * 32768);
  rec.stdout.on('data', (chunk) => {
    const now = Date.now();
    const n = Math.floor(chunk.length / 2);
    for (let i = 0; i < n; i++) {
      if (Math.abs(chunk.readInt16LE(i * 2)) > level) {
        if (quiet > 4800) onsets.push({ at: now - ((n - i) / 48_000) * 1000 });
        quiet = 0;
      } else quiet++;
    }
  });
  return { stop: () => { rec.kill('SIGKILL'); return onsets; } };
}

/**
 * Per flip, where its sound and picture were seen, and the delays Kelpie adds: from the
 * desktop's sink monitor (the sound as it leaves the desktop, recorded like the browser's
 * device, so the two recordings' own latency cancels) to the browser's sound device, to
 * its audio graph and to its playout; the picture from the X server to presentation.
 * The offset is audio's added delay minus video's: what Kelpie does to lip sync.
 */
function analyse({ flips, onsets, beats, video, sampleRate, playout = [], device = [], sink = [] }) {
  const anchor = Math.min(...[...beats, ...onsets].map((m) => m.rx - (m.frame / sampleRate) * 1000));
  const audio = onsets.map((m) => ({
    at: (m.frame / sampleRate) * 1000 + anchor,
    heard: m.otsWall + ((m.frame / sampleRate) - m.otsCtx) * 1000,
  }));
  // Energy steps: the first of each burst (later ones within the window are its tail).
  let lastPlayout = -Infinity;
  const playoutOnsets = playout.filter((p) => {
    const first = p.at - lastPlayout > 100;
    lastPlayout = p.at;
    return first;
  });
  const near = (list, t) => list.find((x) => x.at >= t - 5 && x.at < t + MATCH_WINDOW_MS);
  const ear = []; const graph = []; const heard = []; const played = []; const backlog = [];
  const videoDelay = []; const offset = [];
  let noAudio = 0; let noVideo = 0; let noSink = 0;
  for (const f of flips) {
    const v = video.find((x) => x.white === f.white && x.pres >= f.video_ms - 5 && x.pres < f.video_ms + MATCH_WINDOW_MS);
    if (v) videoDelay.push(v.pres - f.video_ms); else noVideo++;
    const sk = near(sink, f.audio_ms);
    if (!sk) { noSink++; continue; }
    backlog.push(sk.at - f.audio_ms);
    const a = near(audio, sk.at);
    const dv = near(device, sk.at);
    const p = near(playoutOnsets, sk.at);
    if (a) { graph.push(a.at - sk.at); heard.push(a.heard - sk.at); } else noAudio++;
    if (dv) ear.push(dv.at - sk.at);
    if (p) played.push(p.at - sk.at);
    const arrived = dv ?? a;
    if (arrived && v) offset.push(arrived.at - sk.at - (v.pres - f.video_ms));
  }
  const span = flips.length ? [flips[0].audio_ms - 5, flips.at(-1).audio_ms + 2 * MATCH_WINDOW_MS] : [0, 0];
  const unmatched = audio.filter((x) => x.at >= span[0] && x.at < span[1]
    && !sink.some((k) => x.at >= k.at - 5 && x.at < k.at + MATCH_WINDOW_MS)).length;
  return {
    flips: flips.length,
    // The headline: the sound device when the browser has one, else its audio graph.
    glass_to_ear_ms: stats(ear.length ? ear : graph),
    glass_to_ear_source: ear.length ? 'device' : 'graph',
    to_graph_ms: stats(graph),
    to_playout_ms: stats(played),
    heard_ms: stats(heard),
    player_backlog_ms: stats(backlog),
    video_glass_to_glass_ms: stats(videoDelay),
    av_offset_ms: stats(offset),
    flips_without_audio: noAudio,
    flips_without_video: noVideo,
    flips_without_sink_onset: noSink,
    onsets_without_flip: unmatched,
  };
}

/** PulseAudio's own buffering of each stream (`pactl list` latencies, ms). */
function pulseLatencies(server) {
  const out = {};
  for (const kind of ['sink-inputs', 'source-outputs']) {
    const r = spawnSync('pactl', ['list', kind], { env: { ...process.env, PULSE_SERVER: server }, encoding: 'utf8', timeout: 5000 });
    for (const block of (r.stdout || '').split(/\n(?=\S)/)) {
      const name = /(?:media|application)\.name = "([^"]*)"/.exec(block)?.[1];
      const buf = /Buffer Latency: (\d+) usec/.exec(block)?.[1];
      const dev = /(?:Sink|Source) Latency: (\d+) usec/.exec(block)?.[1];
      if (name && buf) out[`${kind.replace(/s$/, '')}: ${name}`] = { buffer_ms: round(buf / 1000, 1), device_ms: round(dev / 1000, 1) };
    }
  }
  return out;
}

async function measure(args) {
  const t = scope();
  try {
    const env = await startEnv(t, { name: 'audio-bench', ...SIZE, framerate: 30, startServer: false });
    const events = path.join(env.logDir, 'avsync.jsonl');
    const session = `exec ${AVSYNC_BIN} --period-ms ${args.periodMs} --latency-ms ${args.latencyMs} > ${events} 2> ${path.join(env.logDir, 'avsync.err')}`;
    const { pulseServer } = await startEmbedded(env, { session, size: `${SIZE.width}x${SIZE.height}`, framerate: 30 });
    const read = () => (fs.existsSync(events) ? fs.readFileSync(events, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
    const ready = await waitFor('kelpie-avsync ready', () => read().find((e) => e.ev === 'ready'), { timeoutMs: 15_000, intervalMs: 100 })
      .catch((e) => { throw new Error(env.why(`${e.message} (${path.join(env.logDir, 'avsync.err')})`)); });

    // The browser plays into a PulseAudio of its own (a null sink), as on a desktop with a
    // sound card; without one, headless Chromium's fake output buffers far more.
    const speakers = args.fakeOutput ? null : await startPulse(env);
    const browser = await env.launchBrowser(speakers ? { env: { PULSE_SERVER: speakers.server } } : {});
    // What the browser's sound device gets: its sink's monitor, recorded with a short
    // buffer, each onset timed from the chunk it arrives in. The sound as heard, without
    // WebAudio in the way (plus this recording's own few ms).
    const deviceOnsets = speakers ? recordOnsets(speakers.server, 'speakers.monitor') : null;
    // And where Kelpie takes it: the desktop's default sink's monitor, the same way.
    const sinkOnsets = recordOnsets(pulseServer, '@DEFAULT_MONITOR@');
    // bypassCSP: the page's policy (script-src 'self') would refuse the worklet's blob: module.
    const context = await browser.browser.newContext({ viewport: SIZE, bypassCSP: true });
    // The page's settings: the transport and, over WebRTC, the sound's route.
    await context.addInitScript((s) => localStorage.setItem('kelpie.settings', JSON.stringify(s)),
      { transport: args.transport, sound: args.sound });
    const page = await openConnected(env, context, env.url, {});
    await waitDecoding(env, page, 1);
    const expectRoute = args.transport === 'websocket' ? 'websocket' : args.sound === 'webrtc' ? 'rtp' : 'channel';
    await waitFor(`audio packets in the page (${expectRoute})`, () => page.evaluate(async (route) => window.kelpie.audio.route === route
      && (await window.kelpie.audio.stats())?.packetsReceived > 50, expectRoute), { timeoutMs: 15_000, intervalMs: 200 })
      .catch((e) => { throw new Error(env.why(e.message)); });
    const ctxInfo = await page.evaluate(installProbe, { ...SIZE, layout: ready.layout, route: expectRoute, threshold: ONSET_THRESHOLD, rearmMs: REARM_MS, energyStep: ENERGY_STEP });
    // Let the jitter buffer settle, then count flips from here.
    await sleep(1500);
    const from = Date.now();
    const until = from + args.clicks * args.periodMs + 1000;
    let pulse = {};
    while (Date.now() < until) {
      await sleep(250);
      if (!Object.keys(pulse).length && Date.now() > from + 3000) pulse = pulseLatencies(pulseServer);
      if (!env.server.running) throw new Error(env.why('kelpie exited during the run'));
    }
    await sleep(MATCH_WINDOW_MS);
    const page_ = await page.evaluate(() => { window.__av.stop = true; return window.__av; });
    page_.onsets = page_.onsets.filter((m) => m.rx >= from && m.rx < until + MATCH_WINDOW_MS);
    const jitterBuffer = await page.evaluate(async () => {
      if (window.kelpie.audio.route !== 'rtp') {
        // The page's own player's buffer (socket-audio.js).
        const s = await window.kelpie.audio.stats();
        return s ? { worklet_buffered_ms: s.bufferedMs, worklet_target_ms: s.targetMs, underruns: s.underruns, trimmed_ms: s.trimmedMs } : null;
      }
      let a = null;
      let playout = null;
      (await window.kelpie.pc.getStats()).forEach((s) => {
        if (s.type === 'inbound-rtp' && s.kind === 'audio') a = s;
        if (s.type === 'media-playout' && s.kind === 'audio') playout = s;
      });
      if (!a?.jitterBufferEmittedCount) return null;
      return {
        mean_ms: (1000 * a.jitterBufferDelay) / a.jitterBufferEmittedCount,
        target_mean_ms: a.jitterBufferTargetDelay != null ? (1000 * a.jitterBufferTargetDelay) / a.jitterBufferEmittedCount : null,
        // From the decoder to the audio device (Chromium's playout buffer).
        playout_mean_ms: playout?.totalSamplesCount ? (1000 * playout.totalPlayoutDelay) / playout.totalSamplesCount : null,
      };
    });
    if (deviceOnsets) page_.device = deviceOnsets.stop();
    page_.sink = sinkOnsets.stop();
    const flips = read().filter((e) => e.ev === 'flip' && e.audio_ms >= from && e.audio_ms < until - 1000).slice(0, args.clicks);
    const health = (await env.health()).body;
    return {
      ...analyse({ flips, ...page_ }),
      audio_context: ctxInfo,
      jitter_buffer: jitterBuffer,
      pulse_latencies: pulse,
      server_audio: health.audio,
      route: expectRoute,
      player: { period_ms: ready.period_ms, burst_ms: ready.burst_ms, freq: ready.freq, pacat_latency_msec: ready.latency_ms },
    };
  } finally {
    await t.close();
  }
}

const fmt = (v) => (v == null ? '–' : Number(v).toFixed(1));

const ROUTE_TITLES = {
  channel: 'WebRTC, sound on the low-latency data channel into the page\'s own player (the default)',
  rtp: 'WebRTC, sound on the RTP track and the browser\'s player (setting "smooth")',
  websocket: 'WebSocket transport, the page\'s own player',
};

function table(r, when) {
  const d = r.glass_to_ear_ms;
  const o = r.av_offset_ms;
  const spread = o.n ? `${fmt(o.p5)} … ${fmt(o.p95)}` : '–';
  const jb = r.jitter_buffer;
  const buffers = r.route === 'rtp'
    ? `Chromium's audio jitter buffer, mean over the run: ${fmt(jb?.mean_ms)} ms (target ${fmt(jb?.target_mean_ms)} ms); `
      + `its playout buffer: ${fmt(jb?.playout_mean_ms)} ms. `
    : `The page's player at the end: ${fmt(jb?.worklet_buffered_ms)} ms buffered (target ${fmt(jb?.worklet_target_ms)} ms), `
      + `${jb?.underruns ?? '–'} underruns, ${fmt(jb?.trimmed_ms)} ms shed. `;
  const lines = [
    `### ${ROUTE_TITLES[r.route] || r.route}`,
    '',
    `${when}, \`node tests/bench/audio.mjs\`: ${r.flips} clicks (${r.player.burst_ms} ms of ${r.player.freq} Hz every ${r.player.period_ms} ms, `
      + `pacat \`--latency-msec=${r.player.pacat_latency_msec}\`), 1280×720 at 30 fps, one headless Chromium page.`,
    '',
    '| figure | p50 | p95 | min … max | target |',
    '|---|---|---|---|---|',
    `| glass-to-ear delay: desktop sink's monitor → ${r.glass_to_ear_source === 'device' ? "the browser's sound device" : "the page's audio graph"} (ms) | ${fmt(d.p50)} | ${fmt(d.p95)} | ${fmt(d.min)} … ${fmt(d.max)} | p50 ≤ ${TARGET_DELAY_P50_MS}: ${d.p50 != null && d.p50 <= TARGET_DELAY_P50_MS ? 'met' : 'missed'} |`,
    `| … to the page's audio graph (AudioWorklet on the received track) (ms) | ${fmt(r.to_graph_ms?.p50)} | ${fmt(r.to_graph_ms?.p95)} | ${fmt(r.to_graph_ms?.min)} … ${fmt(r.to_graph_ms?.max)} | |`,
    `| … to Chromium's playout (totalAudioEnergy polled; its stats are cached, an upper bound) (ms) | ${fmt(r.to_playout_ms?.p50)} | ${fmt(r.to_playout_ms?.p95)} | ${fmt(r.to_playout_ms?.min)} … ${fmt(r.to_playout_ms?.max)} | |`,
    `| … to Chromium's output timestamp (ms) | ${fmt(r.heard_ms?.p50)} | ${fmt(r.heard_ms?.p95)} | ${fmt(r.heard_ms?.min)} … ${fmt(r.heard_ms?.max)} | |`,
    `| video: X server has the flip → presentation (ms) | ${fmt(r.video_glass_to_glass_ms?.p50)} | ${fmt(r.video_glass_to_glass_ms?.p95)} | ${fmt(r.video_glass_to_glass_ms?.min)} … ${fmt(r.video_glass_to_glass_ms?.max)} | |`,
    `| not Kelpie: the player's own queue (handed to pacat → desktop sink's monitor) (ms) | ${fmt(r.player_backlog_ms?.p50)} | ${fmt(r.player_backlog_ms?.p95)} | ${fmt(r.player_backlog_ms?.min)} … ${fmt(r.player_backlog_ms?.max)} | |`,
    `| audio − video offset added by Kelpie (ms; p5 … p95 in the spread) | ${fmt(o.p50)} | ${spread} | ${fmt(o.min)} … ${fmt(o.max)} | \\|p50\\| ≤ ${TARGET_OFFSET_MS}: ${o.p50 != null && Math.abs(o.p50) <= TARGET_OFFSET_MS ? 'met' : 'missed'} |`,
    '',
    `Unmatched: ${r.flips_without_sink_onset} clicks not seen at the desktop sink's monitor, ${r.flips_without_audio} without audio in the page, ${r.flips_without_video} flips without video, `
      + `${r.onsets_without_flip} onsets without a click. PulseAudio's own buffering (pactl, once): `
      + (Object.entries(r.pulse_latencies).map(([k, v]) => `${k} ${v.buffer_ms} ms buffer + ${v.device_ms} ms device`).join('; ') || 'not read')
      + `. Server: Opus packets ${fmt(r.server_audio?.capture_lag_ms)} ms old when encoded (/health capture_lag_ms, last). `
      + buffers
      + (r.route === 'rtp' ? `The probe's AudioContext base/output latency: ${fmt(r.audio_context.baseLatency * 1000)} / ${fmt(r.audio_context.outputLatency * 1000)} ms.` : ''),
  ];
  return lines.join('\n');
}

function section(results, when) {
  return [
    BEGIN,
    '<!-- Generated by tests/bench/audio.mjs (make bench): change the script, not this section. -->',
    '',
    results.map((r) => table(r, when)).join('\n\n'),
    END,
  ].join('\n');
}

function updateDocs(file, section) {
  const text = fs.readFileSync(file, 'utf8');
  const i = text.indexOf(BEGIN);
  const j = text.indexOf(END);
  const out = i >= 0 && j > i
    ? text.slice(0, i) + section + text.slice(j + END.length)
    : `${text.trimEnd()}\n\n## Sound: glass-to-ear delay and audio–video offset\n\n${section}\n`;
  fs.writeFileSync(file, out);
}

const args = parseArgs(process.argv.slice(2));
for (const cmd of ['pulseaudio', 'pacat', 'pactl']) {
  if (!hasCommand(cmd)) {
    console.error(`audio benchmark: ${cmd} is not installed (pulseaudio, pulseaudio-utils)`);
    process.exit(1);
  }
}
// Without --sound, WebRTC is measured on both routes, one after the other.
const runs = args.transport === 'webrtc' && !args.soundGiven
  ? [{ ...args, sound: 'low-latency' }, { ...args, sound: 'webrtc' }]
  : [args];
const results = [];
for (const run of runs) {
  try {
    results.push(await measure(run));
  } catch (err) {
    console.error(`audio benchmark: could not measure (${run.transport}, sound ${run.sound}): ${err.stack || err.message}`);
    process.exit(1);
  }
}
const out = path.join(HERE, 'logs');
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'audio.json'), JSON.stringify({ date: new Date().toISOString(), args, results }, null, 2));
const when = `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`;
const text = section(results, when);
console.log(text);
for (const r of results) {
  if (r.glass_to_ear_ms.n < 5) {
    console.error(`audio benchmark: only ${r.glass_to_ear_ms.n} of ${r.flips} clicks were heard (${r.route})`);
    process.exit(1);
  }
}
if (args.docs) updateDocs(path.join(ROOT, 'docs/benchmarks.md'), text);
process.exit(0);

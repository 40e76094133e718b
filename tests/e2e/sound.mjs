/**
 * Helpers for the sound tests: a Kelpie with its embedded desktop (its own Xvfb, session
 * and PulseAudio), tones as WAV files, what a page hears, and what the desktop records.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { KELPIE_BIN, XPROBE_BIN, freePort, sleep, waitFor } from './harness.mjs';
import { children } from './procs.mjs';

/**
 * Starts kelpie without --display: it starts Xvfb, its PulseAudio and `session` itself.
 * Points `env` (its url, server) at it so env.openViewer and env.health work. Resolves
 * with {proc, pulseServer}.
 */
export async function startEmbedded(env, { session, args = [], size = '640x480', framerate = 30 }) {
  const port = await freePort();
  const proc = env.spawn('kelpie-embedded', KELPIE_BIN, [
    '--listen', `127.0.0.1:${port}`, '--ice-address', '127.0.0.1', '--size', size,
    '--framerate', String(framerate), '--resize', 'off', '--session', session, ...args,
  ], { env: { KELPIE_LOG: process.env.KELPIE_LOG || 'info', NO_COLOR: '1', PULSE_SERVER: '' } });
  proc.readStdout();
  env.url = `http://127.0.0.1:${port}/`;
  env.server = proc;
  env.framerate = framerate;
  await waitFor('the embedded kelpie to answer /health', async () => {
    if (!proc.running) throw new Error('kelpie exited');
    return (await env.health()).status === 200;
  }, { timeoutMs: 30_000, intervalMs: 200 }).catch((e) => { throw new Error(env.why(e.message)); });
  const line = proc.lines.find((l) => l.includes('started embedded PulseAudio'));
  if (args.includes('off')) return { proc, pulseServer: null };
  assert.ok(line, env.why('kelpie logs the PulseAudio it started'));
  const pulseServer = /server=(unix:\S+)/.exec(line)?.[1];
  assert.ok(pulseServer, env.why(`a server address in: ${line}`));
  return { proc, pulseServer };
}

/**
 * A PulseAudio of the test's own with one null sink, for a browser's sound output (a
 * browser without one plays into a fake device whose buffering is nothing like a real
 * sound card's). Resolves with {server, stop()}.
 */
export async function startPulse(env, name = 'browser-pulse') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kelpie-test-pulse-'));
  const socket = path.join(dir, 'native');
  fs.writeFileSync(path.join(dir, 'default.pa'), `.fail\nload-module module-native-protocol-unix socket=${socket} auth-anonymous=1\n`
    + 'load-module module-null-sink sink_name=speakers rate=48000\nset-default-sink speakers\n');
  const proc = env.spawn(name, 'pulseaudio', ['-n', '-F', path.join(dir, 'default.pa'), '--daemonize=no',
    '--exit-idle-time=-1', '--use-pid-file=no', '--realtime=no', '--log-target=stderr'],
  { env: { HOME: dir, XDG_RUNTIME_DIR: dir, XDG_CONFIG_HOME: dir, PULSE_RUNTIME_PATH: dir } });
  await waitFor(`${name} to listen`, () => fs.existsSync(socket), { timeoutMs: 10_000 });
  return { server: `unix:${socket}`, stop: () => proc.stop() };
}

/** A session that shows an animated window and plays a sine of `freq` Hz into the default sink. */
export function toneSession(freq, { marker } = {}) {
  const info = marker ? `pactl info > ${marker} 2>&1; ` : '';
  return `${XPROBE_BIN} --animate 30 & ${info}while :; do `
    + `gst-launch-1.0 -q audiotestsrc freq=${freq} volume=0.4 is-live=true ! pulsesink; sleep 0.2; done`;
}

/** The PulseAudio daemon kelpie started (its direct child). */
export function pulseDaemonPid(kelpiePid) {
  return children(kelpiePid).find((c) => path.basename(c.argv[0] || '') === 'pulseaudio')?.pid;
}

/** Writes a 16-bit mono 48 kHz WAV of `seconds` of a `freq` Hz sine (Chromium's fake microphone). */
export function writeTone(file, freq, seconds = 30) {
  const rate = 48_000;
  const n = rate * seconds;
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(12_000 * Math.sin((2 * Math.PI * freq * i) / rate)), i * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0); h.writeUInt32LE(36 + data.length, 4); h.write('WAVE', 8);
  h.write('fmt ', 12); h.writeUInt32LE(16, 16); h.writeUInt16LE(1, 20); h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24); h.writeUInt32LE(rate * 2, 28); h.writeUInt16LE(2, 32); h.writeUInt16LE(16, 34);
  h.write('data', 36); h.writeUInt32LE(data.length, 40);
  fs.writeFileSync(file, Buffer.concat([h, data]));
}

/** Chromium switches for a fake microphone playing `wav`, allowed without a prompt. */
export function fakeMicArgs(wav) {
  return ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-audio-capture=${wav}`];
}

/**
 * Records `seconds` of the desktop's default source (what a program recording the
 * microphone gets) with parec; resolves with mono 48 kHz samples in [-1, 1].
 */
export async function recordDefaultSource(pulseServer, seconds) {
  const rec = spawn('parec', ['--device=@DEFAULT_SOURCE@', '--format=s16le', '--rate=48000', '--channels=1', '--raw',
    '--latency-msec=20'], { env: { ...process.env, PULSE_SERVER: pulseServer }, stdio: ['ignore', 'pipe', 'pipe'] });
  const chunks = [];
  let err = '';
  rec.stdout.on('data', (c) => chunks.push(c));
  rec.stderr.on('data', (c) => { err += c; });
  const want = 48_000 * 2 * seconds;
  const started = Date.now();
  while (chunks.reduce((n, c) => n + c.length, 0) < want && Date.now() - started < (seconds + 10) * 1000) {
    await sleep(100);
    if (rec.exitCode !== null) break;
  }
  rec.kill('SIGKILL');
  const buf = Buffer.concat(chunks);
  assert.ok(buf.length >= want / 2, `parec recorded ${buf.length} bytes (stderr: ${err.trim()})`);
  const out = new Float32Array(Math.floor(buf.length / 2));
  for (let i = 0; i < out.length; i++) out[i] = buf.readInt16LE(i * 2) / 32768;
  return out;
}

/** Samples per analysis window: 100 ms, so each test frequency is a whole number of cycles. */
const TONE_WINDOW = 4800;

/** Goertzel power of `freq` in `samples`[from, to), scaled so a sine there gives its own energy. */
function goertzel(samples, freq, rate, from, to) {
  const w = (2 * Math.PI * freq) / rate;
  const c = 2 * Math.cos(w);
  let s1 = 0; let s2 = 0;
  for (let i = from; i < to; i++) {
    const s0 = samples[i] + c * s1 - s2;
    s2 = s1; s1 = s0;
  }
  return (2 * (s1 * s1 + s2 * s2 - c * s1 * s2)) / (to - from);
}

/**
 * The share of `samples`' energy at `freq`: about 1 for a pure sine at that frequency,
 * ~0 for silence or another tone. Measured per 100 ms window and summed, so that one
 * phase step in a recording (a sample or twenty dropped somewhere along the way, which
 * a coherent sum over the whole buffer reads as the tone cancelling itself) costs one
 * window, not the whole measurement.
 */
export function toneShare(samples, freq, rate = 48_000) {
  const win = Math.min(TONE_WINDOW, samples.length);
  let power = 0; let total = 0;
  for (let from = 0; win > 0 && from + win <= samples.length; from += win) {
    power += goertzel(samples, freq, rate, from, from + win);
    for (let i = from; i < from + win; i++) total += samples[i] * samples[i];
  }
  return total > 0 ? power / total : 0;
}

/**
 * Whether `freq` is the tone in `samples`: it carries at least a quarter of the energy
 * (a clean recording carries ~0.9), and ten times more than any of the other test
 * frequencies. Robust to gaps (silence adds no energy), to the clicks a gap leaves (spread
 * thinly over all frequencies) and to phase steps (see `toneShare`).
 */
export function toneFound(samples, freq) {
  const share = toneShare(samples, freq);
  const others = [440, 660, 880, 1320].filter((f) => f !== freq).map((f) => toneShare(samples, f));
  return { found: share > 0.25 && share > 10 * Math.max(...others), share, others, dominant: dominantFrequency(samples) };
}

/** The strongest frequency from 100 Hz to 2 kHz in 5 Hz steps (for diagnosis). */
export function dominantFrequency(samples) {
  const part = samples.subarray(0, Math.min(samples.length, 24_000)); // 0.5 s is plenty
  let best = 0; let bestShare = -1;
  for (let f = 100; f <= 2000; f += 5) {
    const sh = toneShare(part, f);
    if (sh > bestShare) { bestShare = sh; best = f; }
  }
  return { hz: best, share: bestShare };
}

/** The page's inbound audio RTP figures, with the codec's MIME type (null before any). */
export async function audioStats(page) {
  return page.evaluate(async () => {
    const pc = window.kelpie.pc;
    if (!pc) return null;
    const stats = await pc.getStats();
    let inbound = null;
    stats.forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === 'audio') inbound = s; });
    if (!inbound) return null;
    const codec = inbound.codecId ? stats.get(inbound.codecId) : null;
    return {
      mimeType: codec?.mimeType ?? null,
      packetsReceived: inbound.packetsReceived ?? 0,
      totalAudioEnergy: inbound.totalAudioEnergy ?? 0,
      totalSamplesReceived: inbound.totalSamplesReceived ?? 0,
    };
  });
}

/**
 * The strongest frequency in the page's received audio track, from an AnalyserNode fed
 * by the track itself (not by the page's player), averaged over `ms`.
 */
export async function peakFrequency(page, ms = 1000) {
  return page.evaluate(async (ms) => {
    // On the WebSocket: the page's own player output; on WebRTC: the received track.
    let an = window.kelpie.audio?.analyser?.();
    let ctx = an?.context;
    const own = !an;
    if (own) {
      const pc = window.kelpie.pc;
      const track = pc?.getReceivers().map((r) => r.track).find((t) => t && t.kind === 'audio');
      if (!track) return { error: 'no audio receiver' };
      ctx = new AudioContext();
      await ctx.resume();
      const src = ctx.createMediaStreamSource(new MediaStream([track]));
      an = ctx.createAnalyser();
      src.connect(an);
    }
    an.fftSize = 8192;
    const sum = new Float64Array(an.frequencyBinCount);
    const bins = new Float32Array(an.frequencyBinCount);
    const until = performance.now() + ms;
    let frames = 0;
    while (performance.now() < until) {
      await new Promise((r) => setTimeout(r, 50));
      an.getFloatFrequencyData(bins);
      for (let i = 0; i < bins.length; i++) sum[i] += Math.pow(10, bins[i] / 10);
      frames++;
    }
    let best = 1;
    for (let i = 1; i < sum.length; i++) if (sum[i] > sum[best]) best = i;
    const hz = (best * ctx.sampleRate) / an.fftSize;
    const level = 10 * Math.log10(sum[best] / frames);
    if (own) await ctx.close(); else an.disconnect();
    return { hz, level, binHz: ctx.sampleRate / an.fftSize, state: ctx.state };
  }, ms);
}

/** Waits until the page's audio energy rises, i.e. sound is being received and played. */
export async function waitAudioEnergy(env, page, what, timeoutMs = 15_000) {
  let first = null; let last = null;
  await waitFor(what, async () => {
    last = await audioStats(page);
    if (!last) return false;
    if (first === null) first = last;
    return last.totalAudioEnergy > first.totalAudioEnergy + 1e-4 && last.packetsReceived > first.packetsReceived;
  }, { timeoutMs, intervalMs: 250 }).catch((e) => { throw new Error(env.why(`${e.message}; last ${JSON.stringify(last)}`)); });
  return last;
}

/**
 * Waits until the page's sound is being received and played, whatever carries it: the RTP
 * track (its energy rising, as waitAudioEnergy) or the page's own player (the WebSocket
 * transport, WebRTC's low-latency channel: packets decoded rising). Returns the route.
 */
export async function waitSound(env, page, what, timeoutMs = 15_000) {
  let first = null; let last = null;
  await waitFor(what, async () => {
    last = await page.evaluate(async () => {
      const route = window.kelpie.audio.route;
      if (route === null) return null;
      if (route === 'rtp') return { route, count: 0, energy: 0 };
      const s = await window.kelpie.audio.stats();
      return { route, count: s?.packetsDecoded ?? 0, energy: 0 };
    });
    if (!last) return false;
    if (last.route === 'rtp') {
      const s = await audioStats(page);
      if (!s) return false;
      last = { route: 'rtp', count: s.packetsReceived, energy: s.totalAudioEnergy };
    }
    if (first === null || first.route !== last.route) first = last;
    return last.count > first.count + 20 && (last.route !== 'rtp' || last.energy > first.energy + 1e-4);
  }, { timeoutMs, intervalMs: 250 }).catch((e) => { throw new Error(env.why(`${e.message}; last ${JSON.stringify(last)}`)); });
  return last.route;
}

/** Whether `cmd` is on PATH. */
export function hasCommand(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
}

/**
 * The lossy-link benchmark (issue #11; `make bench` runs it after run.mjs): headless
 * Chromium in a network namespace behind 3 Mbit/s with a 200 ms drop-tail queue (tbf)
 * and 1 % random loss (iptables statistic), watching 1080p30 full-screen motion
 * (kelpie-content), with and without adaptation, side by side:
 *
 * - adaptive: the defaults (bandwidth estimate, 15 % FEC);
 * - adaptive, no FEC: `--fec 0`;
 * - fixed: `--adapt off --fec 0`, the constant 8 Mbit/s stream of before.
 *
 * Per mode: time to the first decoded frame, transport the page ended on, presented fps,
 * glass-to-glass p50/p95, Chromium's freeze count and duration, longest frame gap and the
 * received bitrate over 30 s. Needs root (network namespaces). Prints a Markdown table
 * and writes tests/bench/logs/lossy.json.
 *
 *   node tests/bench/lossy.mjs [--seconds 30] [--modes adaptive,nofec,fixed]
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '../..');
const RELEASE = path.join(ROOT, 'target/release');
process.env.KELPIE_BIN ||= path.join(RELEASE, 'kelpie');
process.env.KELPIE_XPROBE_BIN ||= path.join(RELEASE, 'kelpie-xprobe');
process.env.KELPIE_CONTENT_BIN ||= path.join(RELEASE, 'kelpie-content');

const { startEnv, sleep } = await import('../e2e/harness.mjs');
const { makeNetns, netnsAvailable } = await import('../e2e/netns.mjs');
const { AUTH, HD, playFor, probedViewer, startContent } = await import('../e2e/links.mjs');

const MODES = {
  adaptive: { label: 'adaptive (defaults)', args: [] },
  nofec: { label: 'adaptive, --fec 0', args: ['--fec', '0'] },
  fixed: { label: 'fixed 8 Mbit/s (--adapt off --fec 0)', args: ['--adapt', 'off', '--fec', '0'] },
};

function parseArgs(argv) {
  const out = { seconds: 30, modes: Object.keys(MODES) };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--seconds') out.seconds = Number(argv[++i]);
    else if (argv[i] === '--modes') out.modes = argv[++i].split(',');
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  for (const m of out.modes) if (!MODES[m]) throw new Error(`unknown mode ${m} (${Object.keys(MODES).join(', ')})`);
  return out;
}

/** Stand-in for node:test's context: runs the cleanups registered with `after`. */
function scope() {
  const cleanups = [];
  return { name: 'lossy-bench', after: (fn) => cleanups.push(fn), async close() { for (const fn of cleanups.reverse()) await fn(); } };
}

async function runMode(key, seconds) {
  const t = scope();
  try {
    const ns = makeNetns(t);
    const env = await startEnv(t, {
      name: `lossy-${key}`, ...HD, framerate: 30, host: ns.hostIp,
      serverArgs: [...AUTH.serverArgs, ...MODES[key].args], serverEnv: AUTH.serverEnv,
    });
    const ready = await startContent(env, 30.6);
    ns.throttle('3mbit', { burst: '16kb', latency: '200ms' });
    ns.lose(0.01);
    const page = await probedViewer(env, ns, ready);
    let firstFrameMs = null;
    for (let i = 0; i < 300 && firstFrameMs == null; i++) {
      firstFrameMs = await page.evaluate(() => window.kelpie.timings?.first_frame ?? null);
      if (firstFrameMs == null) await sleep(100);
    }
    await sleep(5000);
    const figures = await playFor(env, page, seconds).catch((e) => ({ error: e.message }));
    const transport = await page.evaluate(() => window.kelpie.transport?.kind ?? null);
    return { mode: key, label: MODES[key].label, first_frame_ms: firstFrameMs, transport, ...figures };
  } finally {
    await t.close();
  }
}

const fmt = (v, d = 0) => (v == null || Number.isNaN(v) ? '–' : Number(v).toFixed(d));

function table(rows, seconds) {
  const lines = [
    `| mode | first frame | transport | fps | g2g p50 / p95 ms | freezes (s) | longest gap ms | received kbit/s |`,
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const g = r.glass_to_glass_ms || {};
    lines.push(`| ${r.label} | ${r.first_frame_ms == null ? 'none' : `${fmt(r.first_frame_ms)} ms`} | ${r.transport ?? '–'} | ${fmt(r.presented_fps, 1)} `
      + `| ${fmt(g.p50)} / ${fmt(g.p95)} | ${fmt(r.freezes)} (${fmt(r.freeze_seconds, 1)}) | ${fmt(r.max_frame_gap_ms)} | ${fmt(r.received_kbps)} |`);
  }
  return `Lossy link: 3 Mbit/s, 200 ms tbf queue, 1 % random loss; 1080p30 motion; ${seconds} s per mode.\n\n${lines.join('\n')}`;
}

const args = parseArgs(process.argv.slice(2));
const why = netnsAvailable();
if (why) {
  console.error(`lossy-link benchmark skipped: ${why}`);
  process.exit(0);
}
const rows = [];
for (const m of args.modes) {
  console.error(`# lossy link: ${MODES[m].label}`);
  rows.push(await runMode(m, args.seconds));
}
const out = path.join(HERE, 'logs');
fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'lossy.json'), JSON.stringify({ date: new Date().toISOString(), seconds: args.seconds, rows }, null, 2));
console.log(table(rows, args.seconds));

/**
 * The browser half of `make soak` (docs/reliability.md): one headless Chromium page reloads
 * the desktop RELOADS times (default 50), each time waiting for decoded frames, and the
 * server's RSS and open descriptors are compared before and after (after warm-up
 * reloads), with one participant left and stopped branches freed. Prints one JSON line; exits 1 when RSS grew by more
 * than 5 MiB, descriptors grew, or more than the live participant's webrtcbin or ICE agent
 * was left.
 *
 * The warm-up reloads for at least WARMUP_MS, longer than the 30 s a stopped branch is
 * kept (media::grave): the allocator has then already held as many stopped branches as
 * the measured reloads will, so their fill (bounded, about a megabyte each, and kept by
 * glibc as freed memory afterwards) is not counted as growth (kelpie-soak says more).
 */
import fs from 'node:fs';
import { Env, openConnected, waitDecoding } from '../e2e/harness.mjs';

const RELOADS = Number(process.env.RELOADS || 50);
const WARMUP = 5;
const WARMUP_MS = 35_000;
/** SOAK_HOLD_S: keep the server this long after the last measurement, its PID on stderr. */
const HOLD_S = Number(process.env.SOAK_HOLD_S || 0);
const MAX_GROWTH_KIB = 5 * 1024;

const rssKib = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? -1);
/** Open descriptors by kind (socket, pipe, anon_inode:[…], or a path), so a growth names its source. */
const fdKinds = (pid) => {
  const kinds = {};
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    let target = '?';
    try { target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { /* closed meanwhile */ }
    const kind = target.startsWith('anon_inode:') ? target : target.replace(/:\[\d+\]$/, '');
    kinds[kind] = (kinds[kind] || 0) + 1;
  }
  return kinds;
};
/** Descriptors by kind, and their count. */
const descriptors = (pid) => {
  const kinds = fdKinds(pid);
  return { fds: Object.values(kinds).reduce((a, b) => a + b, 0), kinds };
};

const env = new Env('soak-reload', { width: 1280, height: 720, framerate: 30 });
let code = 1;
try {
  await env.start();
  const viewer = await env.launchBrowser();
  const context = await viewer.browser.newContext({ viewport: { width: 1280, height: 720 } });
  const page = await openConnected(env, context, env.url);
  const reload = async () => {
    await page.reload();
    await page.waitForFunction(() => window.kelpie?.state === 'connected', null, { timeout: 20_000 });
    await waitDecoding(env, page, 3);
  };
  const warmStart = Date.now();
  for (let i = 0; i < WARMUP || Date.now() - warmStart < WARMUP_MS; i++) await reload();
  // One participant left, and past the 30 s for which stopped branches are kept before
  // they are freed (media::grave): what is measured then is what stays.
  const empty = async () => {
    await env.waitHealth('one participant', (h) => h.viewers === 1 && h.branches === 1, 20_000);
    await new Promise((r) => { setTimeout(r, 35_000); });
  };
  await empty();
  const pid = env.server.pid;
  const before = { rss: rssKib(pid), ...descriptors(pid) };
  const started = Date.now();
  for (let i = 0; i < RELOADS; i++) await reload();
  await empty();
  const after = { rss: rssKib(pid), ...descriptors(pid) };
  if (HOLD_S > 0) {
    console.error(`soak-reload: holding ${HOLD_S} s: kelpie pid ${pid}`);
    await new Promise((r) => { setTimeout(r, HOLD_S * 1000); });
  }
  const growth = after.rss - before.rss;
  // Read after the grace: one participant, so one webrtcbin and one ICE agent.
  const health = (await env.health()).body;
  const ok = growth <= MAX_GROWTH_KIB && after.fds <= before.fds
    && health.webrtcbins_alive === 1 && health.ice_agents_alive === 1;
  console.log(JSON.stringify({
    reloads: RELOADS, seconds: Math.round((Date.now() - started) / 1000),
    rss_kib: [before.rss, after.rss], rss_growth_kib: growth, fds: [before.fds, after.fds], ok,
    fd_kinds: [before.kinds, after.kinds],
    branches: health.branches, webrtcbins_alive: health.webrtcbins_alive,
    ice_agents_alive: health.ice_agents_alive, heap: health.heap,
  }));
  code = ok ? 0 : 1;
  await context.close();
} catch (err) {
  console.error(`soak-reload: ${err.message}`);
} finally {
  await env.close();
}
process.exit(code);

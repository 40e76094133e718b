/**
 * The browser half of `make soak` (docs/reliability.md): one headless Chromium page reloads
 * the desktop RELOADS times (default 50), each time waiting for decoded frames, and the
 * server's RSS and open descriptors are compared before and after (after 5 warm-up
 * reloads), with one participant left and stopped branches freed. Prints one JSON line; exits 1 when RSS grew by more
 * than 5 MiB, descriptors grew, or a branch was left.
 */
import fs from 'node:fs';
import { Env, openConnected, waitDecoding } from '../e2e/harness.mjs';

const RELOADS = Number(process.env.RELOADS || 50);
const WARMUP = 5;
const MAX_GROWTH_KIB = 5 * 1024;

const rssKib = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? -1);
const fds = (pid) => fs.readdirSync(`/proc/${pid}/fd`).length;

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
  for (let i = 0; i < WARMUP; i++) await reload();
  // One participant left, and past the 30 s for which stopped branches are kept before
  // they are freed (media::grave): what is measured then is what stays.
  const empty = async () => {
    await env.waitHealth('one participant', (h) => h.viewers === 1 && h.branches === 1, 20_000);
    await new Promise((r) => { setTimeout(r, 35_000); });
  };
  await empty();
  const pid = env.server.pid;
  const before = { rss: rssKib(pid), fds: fds(pid) };
  const started = Date.now();
  for (let i = 0; i < RELOADS; i++) await reload();
  await empty();
  const after = { rss: rssKib(pid), fds: fds(pid) };
  const growth = after.rss - before.rss;
  const ok = growth <= MAX_GROWTH_KIB && after.fds <= before.fds;
  console.log(JSON.stringify({
    reloads: RELOADS, seconds: Math.round((Date.now() - started) / 1000),
    rss_kib: [before.rss, after.rss], rss_growth_kib: growth, fds: [before.fds, after.fds], ok,
  }));
  code = ok ? 0 : 1;
  await context.close();
} catch (err) {
  console.error(`soak-reload: ${err.message}`);
} finally {
  await env.close();
}
process.exit(code);

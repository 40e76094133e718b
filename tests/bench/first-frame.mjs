/**
 * Where a page load's time to first frame goes: one release kelpie on a still 1920x1080
 * Xvfb, one headless Chromium loading the page N times in a row (a fresh page each time),
 * and the page's own milestones (`kelpie.timings`, ms since navigation): socket opened
 * (`ws_start`; `ws_taken` when the app took over the early socket), welcome, offer,
 * answer, ICE, DTLS, first frame.
 *
 *   node tests/bench/first-frame.mjs [--loads N]      (default 8)
 *
 * Needs `cargo build --release -p kelpie` and `make deps-test`. Prints one JSON line per
 * load and a median per milestone; not part of `make test` (it only measures).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { sleep, waitFor } from './lib.mjs';
import { Stack, launchBrowser, startKelpie, startXvfb } from './stack.mjs';

const loads = Number(process.argv[process.argv.indexOf('--loads') + 1] || 8);
if (!Number.isInteger(loads) || loads < 1 || loads > 100) throw new Error('--loads takes 1 to 100');

const stack = new Stack(fs.mkdtempSync(path.join(os.tmpdir(), 'kelpie-first-frame-')));
let browser = null;
try {
  const x = await startXvfb(stack, 1920, 1080);
  const k = await startKelpie(stack, x, 60, null, null, false);
  browser = await launchBrowser();
  const rows = [];
  for (let i = 0; i < loads; i++) {
    const page = await browser.browser.newPage({ viewport: { width: 1280, height: 720 } });
    await page.goto(k.base, { timeout: 15_000 });
    await waitFor('the first frame', () => page.evaluate(() => Number.isFinite(window.kelpie?.timings?.first_frame)),
      { timeoutMs: 20_000, intervalMs: 20 });
    const t = await page.evaluate(() => ({ ...window.kelpie.timings }));
    console.log(JSON.stringify(t));
    rows.push(t);
    await page.close();
    await sleep(300); // the server lets the viewer go before the next one joins
  }
  const median = (v) => {
    const s = v.filter(Number.isFinite).sort((a, b) => a - b);
    return s.length ? s[Math.floor((s.length - 1) / 2)] : null;
  };
  const steps = [...new Set(rows.flatMap(Object.keys))];
  console.log(`medians of ${loads} loads (ms since navigation): ${JSON.stringify(Object.fromEntries(steps.map((s) => [s, median(rows.map((r) => r[s]))])))}`);
} finally {
  await browser?.close();
  await stack.close();
}

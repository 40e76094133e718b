/**
 * Input to photon, matched cause to effect (issue 13): each key press in the real page is
 * numbered, `kelpie-content` answers the press by advancing its square to the next palette
 * colour (and says so on stdout, with the colour's index), and the frame probe of the
 * benchmark (tests/bench/probe.mjs) reads that square out of every frame Chromium presents.
 * Press n is sent only once press n − 1's colour has been seen, so colour n mod 6 in a
 * frame after press n can only be press n's effect.
 *
 * Asserted: every press reached the application exactly once and in order, the first frame
 * showing its colour came after the press and before the next one, no frame in between
 * showed any other new colour, and Kelpie's own stage timing saw the presses through
 * (`kelpie_frame_stage_seconds` for input → XTest, XTest → damage, input → sent, and timed
 * frames). The delays are printed, not asserted: `make bench` reports them as figures.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import test from 'node:test';

import { REPO_ROOT, metricSamples, startEnv, waitFor } from './harness.mjs';
import { pageProbe } from '../bench/probe.mjs';

const CONTENT_BIN = process.env.KELPIE_CONTENT_BIN || path.join(REPO_ROOT, 'target/debug/kelpie-content');
const PRESSES = 8;

test('each numbered key press is matched to the first frame that shows its effect', async (t) => {
  const env = await startEnv(t, { width: 1280, height: 720, framerate: 30, startServer: false });
  const events = [];
  const content = env.spawn('content', CONTENT_BIN, ['--mode', 'static', '--fps', '30'], { env: { DISPLAY: env.display } });
  content.readStdout((line) => {
    try { events.push(JSON.parse(line)); } catch { /* not an event */ }
  });
  const ready = await waitFor('kelpie-content ready', () => events.find((e) => e.ev === 'ready'), { timeoutMs: 10_000 });
  const server = await env.startKelpie();

  const browser = await env.launchBrowser();
  const page = await browser.browser.newPage({ viewport: { width: 1280, height: 720 } });
  const consoleLines = [];
  page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
  await page.addInitScript(pageProbe, { width: ready.width, height: ready.height, layout: ready.layout, palette: ready.palette });
  await page.goto(server.url, { timeout: 15_000 });
  const frames = () => page.evaluate(() => window.__bench.frames.map((f) => ({ t: f.disp ?? f.cb, color: f.color })));
  const why = (msg) => env.why(`${msg}\n--- page console ---\n${consoleLines.join('\n')}`);
  // The square's first colour on screen is the baseline the first press moves from.
  const start = await waitFor('a frame showing the square', async () => (await frames()).find((f) => f.color >= 0), { timeoutMs: 20_000 })
    .catch((err) => { throw new Error(why(err.message)); });
  await page.focus('#screen');

  const inputs = () => events.filter((e) => e.ev === 'input');
  const palette = ready.palette.length;
  const rows = [];
  let seen = (await frames()).length;
  let colour = start.color;
  for (let n = 1; n <= PRESSES; n++) {
    const before = (await frames()).length;
    const pressedAt = Date.now();
    await page.keyboard.press('a');
    const input = await waitFor(`the application to see press ${n}`, () => inputs()[n - 1], { timeoutMs: 10_000 })
      .catch((err) => { throw new Error(why(err.message)); });
    assert.equal(input.color, (start.color + n) % palette, `press ${n} advanced the square by one colour`);
    const effect = await waitFor(`a frame showing press ${n}'s colour ${input.color}`, async () => {
      const all = await frames();
      const i = all.findIndex((f, k) => k >= before && f.color === input.color);
      return i >= 0 ? { i, all } : null;
    }, { timeoutMs: 10_000 }).catch((err) => { throw new Error(why(err.message)); });
    const shown = effect.all[effect.i];
    // Between the press and its effect only the previous colour (or an unreadable,
    // half-updated square) may be on screen: nothing from the future, nothing skipped.
    const between = effect.all.slice(seen, effect.i).map((f) => f.color).filter((c) => c >= 0 && c !== colour);
    assert.deepEqual(between, [], `frames before press ${n}'s effect show only the previous colour ${colour}`);
    assert.ok(shown.t >= pressedAt - 5, `press ${n}'s colour appears after the press (${shown.t} vs ${pressedAt})`);
    rows.push({ n, press_to_app_ms: input.t_ms - pressedAt, press_to_photon_ms: shown.t - pressedAt });
    colour = input.color;
    seen = effect.i;
  }
  assert.equal(inputs().length, PRESSES, 'no press reached the application twice');

  const stages = await metricSamples(server.url, 'kelpie_frame_stage_seconds');
  for (const stage of ['input_apply', 'input_to_damage', 'input_to_send', 'wait', 'encode', 'total']) {
    assert.ok(Number.isFinite(stages[`{stage="${stage}",quantile="0.5"}`]), `kelpie timed stage ${stage}: ${JSON.stringify(stages)}`);
  }
  const text = await (await fetch(new URL('metrics', server.url), { signal: AbortSignal.timeout(3000) })).text();
  const timed = Number(text.match(/^kelpie_frames_timed_total (\S+)$/m)?.[1]);
  assert.ok(timed >= PRESSES, `frames timed from damage to webrtcbin: ${timed}`);
  t.diagnostic(`press → application / photon (ms): ${rows.map((r) => `#${r.n} ${r.press_to_app_ms}/${Math.round(r.press_to_photon_ms)}`).join(', ')}`);
  t.diagnostic(`kelpie's stages (p50 s): ${JSON.stringify(stages)}; frames timed ${timed}`);
});

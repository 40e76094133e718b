/**
 * Input from the browser reaches an X client: typed text arrives as the same text, and
 * a click on the letterboxed video lands on the proportional point of the screen.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Env, waitDecoding, waitFor } from './harness.mjs';

// A viewport with another aspect ratio than the display, so the video is letterboxed.
const VIEWPORT = { width: 1000, height: 700 };

describe('input', { timeout: 120_000 }, () => {
  let env;
  let page;

  before(async () => {
    env = new Env('input', { width: 1280, height: 720, framerate: 30 });
    await env.start();
    const viewer = await env.launchBrowser();
    page = await env.openViewer(viewer, { viewport: VIEWPORT });
    await waitDecoding(env, page, 1);
    await page.waitForFunction(() => window.kelpie.channel?.readyState === 'open', null, { timeout: 10_000 });
  });
  after(() => env?.close());

  test('typed text arrives as the same text', async () => {
    const text = 'Hello, World! 123';
    const from = env.probeEvents.length;
    await page.focus('#screen');
    await page.keyboard.type(text, { delay: 20 });
    const typed = () => env.probeEvents.slice(from)
      .filter((e) => e.ev === 'key')
      .map((e) => e.text ?? '')
      .join('');
    await waitFor(`${text.length} typed characters`, () => typed().length >= text.length, { timeoutMs: 10_000 })
      .catch(() => {});
    assert.equal(typed(), text, env.why(`xprobe key events: ${JSON.stringify(env.probeEvents.slice(from))}`));
  });

  /** Where a viewport point should land: object-fit: contain, computed independently. */
  function expected(x, y) {
    const scale = Math.min(VIEWPORT.width / env.width, VIEWPORT.height / env.height);
    const offX = (VIEWPORT.width - env.width * scale) / 2;
    const offY = (VIEWPORT.height - env.height * scale) / 2;
    return { x: (x - offX) / scale, y: (y - offY) / scale };
  }

  for (const [label, point, button, xbutton] of [
    ['left click', { x: 250, y: 200 }, 'left', 1],
    ['right click', { x: 900, y: 600 }, 'right', 3],
    ['middle click', { x: 37, y: 620 }, 'middle', 2],
  ]) {
    test(`a ${label} lands at the proportional point`, async () => {
      const from = env.probeEvents.length;
      await page.mouse.click(point.x, point.y, { button });
      const ev = await env.waitProbe(`xprobe button ${xbutton} press`,
        (e) => e.ev === 'button' && e.down === true, 10_000, from);
      const want = expected(point.x, point.y);
      const msg = `viewport ${JSON.stringify(point)} → want ~(${want.x.toFixed(1)}, ${want.y.toFixed(1)}), xprobe ${JSON.stringify(ev)}`;
      assert.equal(ev.button, xbutton, msg);
      assert.ok(Math.abs(ev.x - want.x) <= 2, msg);
      assert.ok(Math.abs(ev.y - want.y) <= 2, msg);
      await env.waitProbe(`xprobe button ${xbutton} release`,
        (e) => e.ev === 'button' && e.down === false && e.button === xbutton, 10_000, from);
    });
  }
});

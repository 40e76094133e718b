/**
 * Input from the browser reaches an X client: typed text arrives as the same text, and
 * a click on the letterboxed video lands on the proportional point of the screen.
 */
import { after, before, describe, test } from 'node:test';
import { Env, assertClickLands, assertTyping, waitDecoding } from './harness.mjs';

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
    await assertTyping(env, page, text);
  });

  for (const [label, point, button, xbutton] of [
    ['left click', { x: 250, y: 200 }, 'left', 1],
    ['right click', { x: 900, y: 600 }, 'right', 3],
    ['middle click', { x: 37, y: 620 }, 'middle', 2],
  ]) {
    test(`a ${label} lands at the proportional point`, async () => {
      const from = await assertClickLands(env, page, VIEWPORT, point, button, xbutton);
      await env.waitProbe(`xprobe button ${xbutton} release`,
        (e) => e.ev === 'button' && e.down === false && e.button === xbutton, 10_000, from);
    });
  }
});

/**
 * Pointer, wheel and touch: pointer-lock motion moves the X pointer by the sent deltas,
 * both wheel axes produce X wheel buttons (smooth deltas add up), and touch taps, drags,
 * long presses and two-finger scrolls (CDP touch emulation) become clicks, drags, right
 * clicks and wheel notches.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Env, openConnected, sleep, waitDecoding, waitFor } from './harness.mjs';

const W = 1280;
const H = 720;

describe('pointer and touch', { timeout: 180_000 }, () => {
  let env;
  let viewer;
  let page;

  before(async () => {
    env = new Env('pointer', { width: W, height: H, framerate: 30, probeArgs: ['--motion'] });
    await env.start();
    viewer = await env.launchBrowser();
    // Viewport = screen: one CSS pixel is one remote pixel, so deltas compare directly.
    page = await env.openViewer(viewer, { viewport: { width: W, height: H } });
    await waitDecoding(env, page, 1);
    await page.waitForFunction(() => window.kelpie.channel?.readyState === 'open', null, { timeout: 10_000 });
  });
  after(() => env?.close());

  const buttons = (from, b) => env.probeEvents.slice(from).filter((e) => e.ev === 'button' && e.button === b);
  const lastMotion = (from) => env.probeEvents.slice(from).filter((e) => e.ev === 'motion').at(-1);

  test('pointer-lock motion moves the X pointer by the sent deltas', async () => {
    await page.mouse.move(400, 300);
    await env.waitProbe('pointer at (400, 300)', (e) => e.ev === 'motion' && e.x === 400 && e.y === 300, 5000);
    await page.mouse.click(400, 300); // a user gesture, which pointer lock requires
    await page.keyboard.press('Control+Alt+Shift+KeyL');
    await page.waitForFunction(() => window.kelpie.input.pointerLocked, null, { timeout: 5000 });
    const from = env.probeEvents.length;
    // In pointer lock the browser reports movementX/Y; the absolute position is meaningless.
    const steps = [[30, 0], [0, 20], [-10, 15], [25, -5]];
    let [x, y] = [400, 300];
    for (const [dx, dy] of steps) {
      x += dx;
      y += dy;
      await page.mouse.move(x, y);
      await sleep(30);
    }
    const want = { x: 400 + 45, y: 300 + 30 };
    await waitFor(`X pointer at ${JSON.stringify(want)}`, () => {
      const m = lastMotion(from);
      return m && m.x === want.x && m.y === want.y;
    }, { timeoutMs: 5000 }).catch(() => {});
    assert.deepEqual({ x: lastMotion(from)?.x, y: lastMotion(from)?.y }, want,
      env.why(`motions: ${JSON.stringify(env.probeEvents.slice(from).filter((e) => e.ev === 'motion'))}`));
    // While locked the server draws the cursor into the video (the browser shows none).
    const log = () => env.procs.find((p) => p.name === 'kelpie')?.lines.join('\n') ?? '';
    await waitFor('the server to draw the cursor', () => /cursor drawn into the video.*on=true/.test(log()),
      { timeoutMs: 5000 });
    await page.keyboard.press('Control+Alt+Shift+KeyL');
    await page.waitForFunction(() => !window.kelpie.input.pointerLocked, null, { timeout: 5000 });
    await waitFor('the server to stop drawing it', () => /cursor drawn into the video.*on=false/.test(log()),
      { timeoutMs: 5000 });
  });

  test('vertical and horizontal wheel produce X wheel buttons, smooth deltas add up', async () => {
    await page.mouse.move(640, 360);
    let from = env.probeEvents.length;
    await page.mouse.wheel(0, 300); // 3 notches down
    await waitFor('3 notches down', () => buttons(from, 5).filter((e) => e.down).length >= 3, { timeoutMs: 5000 });
    from = env.probeEvents.length;
    await page.mouse.wheel(0, -100); // 1 notch up
    await page.mouse.wheel(-200, 0); // 2 notches left
    await page.mouse.wheel(100, 0); // 1 notch right
    await waitFor('up, left and right notches', () => buttons(from, 4).filter((e) => e.down).length === 1
      && buttons(from, 6).filter((e) => e.down).length === 2
      && buttons(from, 7).filter((e) => e.down).length === 1, { timeoutMs: 5000 });
    from = env.probeEvents.length;
    for (let i = 0; i < 4; i += 1) await page.mouse.wheel(0, 25); // a trackpad: 4 × ¼ notch
    await waitFor('one notch from four quarter notches', () => buttons(from, 5).filter((e) => e.down).length === 1,
      { timeoutMs: 5000 });
    await sleep(300);
    assert.equal(buttons(from, 5).filter((e) => e.down).length, 1);
  });

  describe('touch', () => {
    let tpage;
    let cdp;
    before(async () => {
      // One participant holds control: the mouse page leaves, and the touch page (an
      // owner alone in the room) gets it.
      await page.close();
      tpage = await openConnected(env, viewer.browser, env.url, { viewport: { width: W, height: H }, hasTouch: true });
      await tpage.waitForFunction(() => window.kelpie.hasControl, null, { timeout: 10_000 });
      await waitDecoding(env, tpage, 1);
      await tpage.waitForFunction(() => window.kelpie.channel?.readyState === 'open', null, { timeout: 10_000 });
      cdp = await tpage.context().newCDPSession(tpage);
    });

    const touch = (type, points) => cdp.send('Input.dispatchTouchEvent', {
      type, touchPoints: points.map(([x, y], id) => ({ x, y, id })),
    });

    test('a tap is a left click where the finger was', async () => {
      const from = env.probeEvents.length;
      await tpage.touchscreen.tap(200, 150);
      const down = await env.waitProbe('button 1 press', (e) => e.ev === 'button' && e.button === 1 && e.down, 5000, from);
      await env.waitProbe('button 1 release', (e) => e.ev === 'button' && e.button === 1 && !e.down, 5000, from);
      assert.deepEqual([down.x, down.y], [200, 150]);
    });

    test('a one-finger drag holds the left button from start to end', async () => {
      const from = env.probeEvents.length;
      await touch('touchStart', [[300, 300]]);
      for (let i = 1; i <= 10; i += 1) {
        await touch('touchMove', [[300 + i * 20, 300 + i * 10]]);
        await sleep(16);
      }
      await touch('touchEnd', []);
      const down = await env.waitProbe('drag press', (e) => e.ev === 'button' && e.button === 1 && e.down, 5000, from);
      const up = await env.waitProbe('drag release', (e) => e.ev === 'button' && e.button === 1 && !e.down, 5000, from);
      assert.deepEqual([down.x, down.y], [300, 300], 'the drag starts where the finger went down');
      assert.deepEqual([up.x, up.y], [500, 400], 'the drag ends where the finger lifted');
      const between = env.probeEvents.slice(env.probeEvents.indexOf(down), env.probeEvents.indexOf(up))
        .filter((e) => e.ev === 'motion');
      assert.ok(between.length >= 3, `too few motions while dragging: ${between.length}`);
    });

    test('a long press is a right click', async () => {
      const from = env.probeEvents.length;
      await touch('touchStart', [[700, 500]]);
      await sleep(900);
      await touch('touchEnd', []);
      const down = await env.waitProbe('button 3 press', (e) => e.ev === 'button' && e.button === 3 && e.down, 5000, from);
      assert.deepEqual([down.x, down.y], [700, 500]);
      await sleep(200);
      assert.equal(buttons(from, 1).length, 0, 'a long press must not also left-click');
    });

    test('two fingers moving up scroll down', async () => {
      const from = env.probeEvents.length;
      await touch('touchStart', [[600, 500], [700, 500]]);
      for (let i = 1; i <= 12; i += 1) {
        await touch('touchMove', [[600, 500 - i * 10], [700, 500 - i * 10]]);
        await sleep(16);
      }
      await touch('touchEnd', []);
      // 120 px of travel at 40 px per notch: 3 notches down (button 5), no clicks.
      await waitFor('3 notches down', () => buttons(from, 5).filter((e) => e.down).length >= 3, { timeoutMs: 5000 });
      assert.equal(buttons(from, 1).length, 0, 'scrolling must not click');
    });

    test('pinching zooms the view locally and taps still land on the right pixel', async () => {
      await touch('touchStart', [[600, 360], [680, 360]]);
      for (let i = 1; i <= 10; i += 1) {
        await touch('touchMove', [[600 - i * 8, 360], [680 + i * 8, 360]]);
        await sleep(16);
      }
      await touch('touchEnd', []);
      const zoom = await tpage.evaluate(() => window.kelpie.touch.zoom);
      assert.ok(zoom > 1.5, `zoom ${zoom}`);
      // The midpoint (640, 360) stays put; a tap 100 px right of it is 100/zoom remote px.
      const from = env.probeEvents.length;
      await tpage.touchscreen.tap(740, 360);
      const down = await env.waitProbe('button 1 press', (e) => e.ev === 'button' && e.button === 1 && e.down, 5000, from);
      assert.ok(Math.abs(down.x - (640 + 100 / zoom)) <= 2, `x ${down.x} for zoom ${zoom}`);
      assert.ok(Math.abs(down.y - 360) <= 2, `y ${down.y}`);
      await tpage.evaluate(() => window.kelpie.touch.resetZoom());
    });
  });
});

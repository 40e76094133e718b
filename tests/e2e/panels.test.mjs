/**
 * The page's panels and toolbar, used as a keyboard-only or screen-reader user would
 * (web-client/panels.js): axe-core finds no serious or critical violation on the
 * connected page nor with any panel open; Ctrl+Shift+M then Tab reaches every toolbar
 * control; Enter opens a panel and Esc closes it with the keyboard back on its button;
 * keys typed in a panel and clicks that close one never reach X; one panel at a time;
 * collapsed to its handle, the toolbar leaves the desktop's top edge to the desktop.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { Env, openConnected, waitDecoding } from './harness.mjs';

const AXE = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
const VIEWPORT = { width: 1280, height: 720 };
/**
 * Shift, Control, Alt, Super and the like (and AltGr): a shortcut's modifiers are pressed
 * before the page can know a shortcut is coming, so they reach X, and are released there.
 */
const MODIFIERS = new Set([...Array.from({ length: 14 }, (_, i) => 0xffe1 + i), 0xfe03]);
/** The toolbar's panels: [button id or selector, panel id]. */
const PANELS = [
  ['#toolbar [aria-controls="settings-panel"]', 'settings-panel'],
  ['#files-button', 'files-panel'],
  ['#clipboard-button', 'clipboard-panel'],
  ['#people-button', 'people-panel'],
  ['#stats-button', 'stats-panel'],
];

describe('panels and toolbar', { timeout: 180_000 }, () => {
  let env;
  let page;

  before(async () => {
    env = new Env('panels', { width: 1280, height: 720, framerate: 15 });
    await env.start();
    const viewer = await env.launchBrowser();
    page = await openConnected(env, viewer.browser, env.url, { viewport: VIEWPORT });
    await waitDecoding(env, page, 2);
    await page.waitForFunction(() => window.kelpie.hasControl && window.kelpie.channel?.readyState === 'open', null, { timeout: 10_000 });
    await page.evaluate(AXE);
  });
  after(() => env?.close());

  /** axe-core's serious and critical violations on the page as it is now. */
  async function violations() {
    const found = await page.evaluate(async () => {
      const r = await window.axe.run(document, { resultTypes: ['violations'] });
      return r.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
    });
    return found;
  }

  const isOpen = (id) => page.evaluate((i) => !document.getElementById(i).hidden, id);
  /**
   * The keys X got since probe event `from`, once a marker key typed on the desktop has
   * arrived: X delivers in order, so anything sent before the marker came before it.
   */
  async function keysBeforeMarker(from, marker) {
    await page.focus('#screen');
    await page.keyboard.press(marker);
    const ev = await env.waitProbe(`the marker key ${marker}`, (e) => e.ev === 'key' && e.text === marker, 10_000, from);
    // No modifier is left held in X (the marker arrives with an empty state).
    assert.equal(ev.state, 0, `X still holds modifiers (state ${ev.state}): ${JSON.stringify(env.probeEvents.slice(from))}`);
    return env.probeEvents.slice(from).filter((e) => e.ev === 'key' && !MODIFIERS.has(e.keysym)).map((e) => e.text || e.keysym);
  }

  test('axe-core: no serious or critical violations, connected and with each panel open', async () => {
    assert.deepEqual(await violations(), [], 'the connected page');
    for (const [button, panel] of PANELS) {
      await page.click(button);
      assert.equal(await isOpen(panel), true, `${panel} did not open`);
      assert.deepEqual(await violations(), [], `with ${panel} open`);
      await page.click(button);
      assert.equal(await isOpen(panel), false, `${panel} did not close`);
    }
  });

  test('keyboard only: Ctrl+Shift+M then Tab reaches every toolbar control, and none of it reaches X', async () => {
    const from = env.probeEvents.length;
    await page.focus('#screen');
    await page.keyboard.press('Control+Shift+KeyM');
    const controls = await page.evaluate(() => [...document.querySelectorAll('#toolbar button, #toolbar input, #toolbar select')]
      .filter((c) => c.getClientRects().length > 0 && !c.disabled).map((c) => c.id || c.getAttribute('aria-label') || c.textContent));
    assert.ok(controls.length >= 6, `toolbar controls: ${controls}`);
    const focused = () => page.evaluate(() => {
      const a = document.activeElement;
      return a?.closest('#toolbar') ? (a.id || a.getAttribute('aria-label') || a.textContent) : null;
    });
    // The shortcut put the keyboard on the first control; Tab walks the rest (and no
    // further: past the toolbar the desktop would take Tab).
    const reached = [await focused()];
    for (let i = 1; i < controls.length; i += 1) {
      await page.keyboard.press('Tab');
      reached.push(await focused());
    }
    assert.deepEqual(reached, controls, 'Tab did not reach every toolbar control, in order');
    // Every one has a name a screen reader can say (not a bare glyph).
    const names = await page.evaluate(() => [...document.querySelectorAll('#toolbar button')].filter((c) => c.getClientRects().length)
      .map((c) => c.getAttribute('aria-label') || c.textContent.trim()));
    for (const n of names) assert.match(n, /[A-Za-z]/, `a toolbar button named only ${JSON.stringify(n)}`);
    assert.deepEqual(await keysBeforeMarker(from, 'q'), ['q'], 'keys of the menu shortcut or Tab reached X');
  });

  test('Enter opens a panel, Esc closes it and the keyboard is back on its button; typing in a panel sends nothing to X', async () => {
    await page.focus('#clipboard-button');
    const from = env.probeEvents.length;
    await page.keyboard.press('Enter');
    assert.equal(await isOpen('clipboard-panel'), true);
    assert.equal(await page.getAttribute('#clipboard-button', 'aria-expanded'), 'true');
    await page.focus('#clipboard-text');
    await page.keyboard.type('stays here 42', { delay: 10 });
    await page.keyboard.press('Tab');
    await page.focus('#clipboard-text');
    await page.keyboard.press('Escape');
    assert.equal(await isOpen('clipboard-panel'), false, 'Esc did not close the panel');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'clipboard-button', 'focus did not return to the button');
    assert.equal(await page.getAttribute('#clipboard-button', 'aria-expanded'), 'false');
    assert.deepEqual(await keysBeforeMarker(from, 'w'), ['w'], 'keys typed in the panel reached X');
  });

  test('one panel at a time, and a click outside closes it without reaching the desktop', async () => {
    await page.click(PANELS[0][0]);
    await page.click('#people-button');
    assert.deepEqual([await isOpen('settings-panel'), await isOpen('people-panel')], [false, true]);
    const from = env.probeEvents.length;
    await page.mouse.click(200, 600);
    assert.equal(await isOpen('people-panel'), false, 'a click outside did not close the panel');
    // With no panel open, a click is the desktop's again: it is the marker that the
    // closing click, sent before it, did not reach X.
    await page.mouse.click(300, 500, { button: 'right' });
    await env.waitProbe('the next click in X', (e) => e.ev === 'button' && e.down === true, 10_000, from);
    const presses = env.probeEvents.slice(from).filter((e) => e.ev === 'button' && e.down).map((e) => e.button);
    assert.deepEqual(presses, [3], 'the closing click reached X');
  });

  test('collapsed to its handle, the toolbar leaves the top-centre pixel to the desktop, and stays collapsed', async () => {
    await page.click('#toolbar-handle');
    assert.equal(await page.getAttribute('#toolbar', 'data-collapsed'), 'true');
    assert.equal(await page.getAttribute('#toolbar-handle', 'aria-expanded'), 'false');
    const from = env.probeEvents.length;
    const top = { x: VIEWPORT.width / 2, y: 0 };
    await page.mouse.click(top.x, top.y);
    const ev = await env.waitProbe('the click in X', (e) => e.ev === 'button' && e.down === true, 10_000, from);
    assert.ok(Math.abs(ev.x - env.width / 2) <= 2 && ev.y <= 2, `the click landed at ${ev.x},${ev.y}`);
    assert.deepEqual(await page.evaluate(() => JSON.parse(localStorage.getItem('kelpie.toolbar'))), { collapsed: true, edge: 'left' });
    // The handle itself is still there, on the left edge, and brings the toolbar back.
    const box = await page.locator('#toolbar-handle').boundingBox();
    assert.ok(box && box.x <= 2, `handle at ${JSON.stringify(box)}`);
    await page.click('#toolbar-handle');
    assert.equal(await page.getAttribute('#toolbar', 'data-collapsed'), 'false');
  });
});

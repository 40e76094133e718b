/**
 * The keyboard feels local: any character reaches an X client exactly, whether the
 * browser reports it as a key (keysym), as inserted text or through an IME or a dead key
 * (Unicode text), including keysyms the X keymap lacks; and the keymap ends as it began.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { Env, sleep, waitDecoding, waitFor } from './harness.mjs';

/** What `xmodmap -pke` prints: the whole core keymap, one line per keycode. */
function keymap(display) {
  return execFileSync('xmodmap', ['-pke'], { env: { ...process.env, DISPLAY: display }, encoding: 'utf8' });
}

describe('keyboard', { timeout: 180_000 }, () => {
  let env;
  let page;
  let cdp;

  before(async () => {
    env = new Env('keyboard', { width: 1280, height: 720, framerate: 30 });
    await env.start();
    const viewer = await env.launchBrowser();
    page = await env.openViewer(viewer);
    await waitDecoding(env, page, 1);
    await page.waitForFunction(() => window.kelpie.channel?.readyState === 'open', null, { timeout: 10_000 });
    cdp = await page.context().newCDPSession(page);
    await page.click('#screen'); // the keyboard belongs to the remote desktop now
  });
  after(() => env?.close());

  /** The text of xprobe's key presses since event index `from`. */
  const typedSince = (from) => env.probeEvents.slice(from).filter((e) => e.ev === 'key').map((e) => e.text ?? '').join('');

  async function expectTyped(from, want) {
    await waitFor(`X to receive ${JSON.stringify(want)}`, () => typedSince(from).length >= [...want].length,
      { timeoutMs: 15_000 }).catch(() => {});
    assert.equal(typedSince(from), want, env.why(`xprobe: ${JSON.stringify(env.probeEvents.slice(from))}`));
  }

  test('international text arrives exactly and the keymap ends as it began', async () => {
    const before = keymap(env.display);
    const text = 'Grüße, naïve café — ½ € 日本語 ~ñ';
    const from = env.probeEvents.length;
    // Playwright sends US-layout characters as key events and the rest as inserted text,
    // so both the keysym path and the text path are used.
    await page.keyboard.type(text, { delay: 15 });
    await expectTyped(from, text);
    // Temporary keycodes are given back after 2 s idle.
    await waitFor('the keymap to be restored', () => keymap(env.display) === before, { timeoutMs: 10_000 })
      .catch(() => {});
    assert.equal(keymap(env.display), before, 'the X keymap differs from the one before typing');
  });

  test('a key whose keysym the keymap lacks is typed through a spare keycode', async () => {
    const from = env.probeEvents.length;
    // A German keyboard's ß key: a real key event (not text), keysym ssharp (0xdf), which
    // the US keymap of Xvfb does not have.
    await cdp.send('Input.dispatchKeyEvent', { type: 'keyDown', key: 'ß', code: 'Minus', text: 'ß' });
    await cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key: 'ß', code: 'Minus' });
    await expectTyped(from, 'ß');
    const ev = env.probeEvents.slice(from).find((e) => e.ev === 'key');
    assert.equal(ev.keysym, 0xdf);
  });

  test('a dead key followed by a letter types the composed character once', async () => {
    const from = env.probeEvents.length;
    await cdp.send('Input.dispatchKeyEvent', { type: 'keyDown', key: 'Dead', code: 'Quote' });
    await cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key: 'Dead', code: 'Quote' });
    await cdp.send('Input.dispatchKeyEvent', { type: 'keyDown', key: 'é', code: 'KeyE', text: 'é' });
    await cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key: 'é', code: 'KeyE' });
    await expectTyped(from, 'é');
  });

  test('a 1,000-character txt is refused as too fast, counted, and types nothing; short text still types', async () => {
    const refusedRate = async () => {
      const text = await (await fetch(new URL('metrics', env.url), { signal: AbortSignal.timeout(3000) })).text();
      return Number(/kelpie_refused_total\{what="rate"\} (\d+)/.exec(text)?.[1] ?? NaN);
    };
    const before = await refusedRate();
    const from = env.probeEvents.length;
    await page.evaluate(() => window.kelpie.channel.send(JSON.stringify({ t: 'txt', s: 'z'.repeat(1000) })));
    await waitFor('the refusal in /metrics', async () => (await refusedRate()) === before + 1, { timeoutMs: 5000 });
    // Then a short text: it types, and nothing of the long one came before it.
    await page.evaluate(() => window.kelpie.channel.send(JSON.stringify({ t: 'txt', s: 'ok' })));
    await expectTyped(from, 'ok');
    assert.equal(typedSince(from), 'ok', 'part of the refused text was typed');
  });

  test('IME composition commits its text once', async () => {
    const from = env.probeEvents.length;
    await cdp.send('Input.imeSetComposition', { text: 'にほんご', selectionStart: 4, selectionEnd: 4 });
    await cdp.send('Input.imeSetComposition', { text: '日本語', selectionStart: 3, selectionEnd: 3 });
    await cdp.send('Input.insertText', { text: '日本語' });
    await expectTyped(from, '日本語');
    await sleep(500);
    assert.equal(typedSince(from), '日本語', 'the composition was typed more than once');
  });

  test('modifiers and shortcuts arrive as keys, and held keys are released on blur', async () => {
    const from = env.probeEvents.length;
    await page.keyboard.down('Control');
    await page.keyboard.press('KeyA');
    await page.keyboard.down('Shift');
    // Blur: everything still held must be released on the X side.
    await page.evaluate(() => window.dispatchEvent(new Event('blur')));
    await waitFor('Control and Shift released in X', () => {
      const evs = env.probeEvents.slice(from);
      return [0xffe3, 0xffe1].every((k) => evs.some((e) => e.ev === 'key_up' && e.keysym === k));
    }, { timeoutMs: 5000 });
    const a = env.probeEvents.slice(from).find((e) => e.ev === 'key' && e.keysym === 0x61);
    assert.ok(a, 'Ctrl+A did not arrive');
    assert.ok((a.state & 4) === 4, `Control was not held for the A press (state ${a.state})`);
    await page.keyboard.up('Shift');
    await page.keyboard.up('Control');
  });

  test('browser auto-repeat does not double keys', async () => {
    const from = env.probeEvents.length;
    await cdp.send('Input.dispatchKeyEvent', { type: 'keyDown', key: 'x', code: 'KeyX', text: 'x' });
    for (let i = 0; i < 3; i += 1) {
      await cdp.send('Input.dispatchKeyEvent', { type: 'keyDown', key: 'x', code: 'KeyX', text: 'x', autoRepeat: true });
    }
    await cdp.send('Input.dispatchKeyEvent', { type: 'keyUp', key: 'x', code: 'KeyX' });
    await env.waitProbe('x released', (e) => e.ev === 'key_up' && e.keysym === 0x78, 5000, from);
    const presses = env.probeEvents.slice(from).filter((e) => e.ev === 'key' && e.keysym === 0x78);
    // X's own autorepeat may add presses while the key is held (Xvfb repeats after
    // 660 ms); our four keydowns within a few ms must give exactly one.
    assert.equal(presses.length, 1, JSON.stringify(presses));
  });
});

/**
 * Remote cursor: when an X client changes the displayed cursor, the page's CSS cursor on
 * the video becomes that image (same size, hotspot and pixels' alpha, checked against
 * what XFixes itself reports) within 100 ms (median), a cursor seen before is named by
 * serial instead of resent, an invisible cursor hides the pointer, and a viewer that joins
 * later gets the current cursor at once, scaled like the video it is drawn over.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Env, REPO_ROOT, waitDecoding, waitFor } from './harness.mjs';

const CURSOR_BIN = process.env.KELPIE_CURSOR_BIN || path.join(REPO_ROOT, 'target/debug/kelpie-cursor');
const SIZE = { width: 1280, height: 720 };
// Each differs from the one before; crosshair, watch and hand2 come back (cached serials).
const SEQUENCE = ['crosshair', 'watch', 'hand2', 'xterm', 'crosshair', 'fleur', 'watch', 'blank', 'hand2'];
const MAX_MEDIAN_MS = 100;

/** Records every change of the video's inline cursor with the wall-clock time it happened. */
function recordCursorChanges() {
  window.cursorLog = [];
  const video = window.kelpie.video;
  const note = () => window.cursorLog.push({ t: Date.now(), css: video.style.cursor, serial: window.kelpie.cursor.serial });
  new MutationObserver(note).observe(video, { attributes: true, attributeFilter: ['style'] });
  note();
}

/** Parses `url("data:image/png;base64,…") X Y, auto`; decodes the PNG in the page. */
async function describeCursor(page) {
  return page.evaluate(async () => {
    const css = window.kelpie.video.style.cursor;
    const m = /^url\("data:image\/png;base64,([A-Za-z0-9+/=]+)"\) (\d+) (\d+), auto$/.exec(css);
    if (!m) return { css };
    const img = new Image();
    img.src = `data:image/png;base64,${m[1]}`;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.naturalWidth;
    canvas.height = img.naturalHeight;
    const ctx = canvas.getContext('2d');
    ctx.drawImage(img, 0, 0);
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let opaque = 0;
    let alphaSum = 0;
    for (let i = 3; i < data.length; i += 4) {
      if (data[i] > 0) opaque++;
      alphaSum += data[i];
    }
    // The PNG's own header, to check the server sent a PNG and not anything decodable.
    const bytes = atob(m[1]);
    const signature = [...bytes.slice(0, 8)].map((c) => c.charCodeAt(0));
    return {
      css: 'url(...)', signature, w: img.naturalWidth, h: img.naturalHeight,
      hx: Number(m[2]), hy: Number(m[3]), opaque, alphaSum,
    };
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

describe('remote cursor', { timeout: 180_000 }, () => {
  let env;
  let xc;
  let page;
  const xEvents = [];

  /** Asks the X client for cursor `name` and returns its report. */
  async function setCursor(name) {
    const from = xEvents.length;
    xc.child.stdin.write(`${name}\n`);
    return waitFor(`kelpie-cursor to set ${name}`, () => {
      if (!xc.running) throw new Error('kelpie-cursor exited');
      return xEvents.slice(from).find((e) => e.ev === 'cursor-set' && e.name === name);
    }, { timeoutMs: 5000, intervalMs: 10 }).catch((err) => { throw new Error(env.why(err.message)); });
  }

  before(async () => {
    env = new Env('cursor', { ...SIZE, framerate: 30 });
    await env.start();
    xc = env.spawn('kelpie-cursor', CURSOR_BIN, [], { env: { DISPLAY: env.display }, stdio: ['pipe', 'pipe', 'pipe'] });
    xc.readStdout((line) => {
      try { xEvents.push(JSON.parse(line)); } catch { /* not an event */ }
    });
    await waitFor('kelpie-cursor ready', () => {
      if (!xc.running) throw new Error('kelpie-cursor exited');
      return xEvents.find((e) => e.ev === 'ready');
    }, { timeoutMs: 10_000 }).catch((err) => { throw new Error(env.why(err.message)); });
    const browser = await env.launchBrowser();
    page = await env.openViewer(browser, { viewport: SIZE });
    await page.waitForFunction(() => window.kelpie.channel?.readyState === 'open', null, { timeout: 10_000 });
    await waitDecoding(env, page, 1);
    await page.evaluate(recordCursorChanges);
  });
  after(() => env?.close());

  test('each X cursor change becomes the page cursor, quickly and exactly', async () => {
    const delays = [];
    const seen = new Map();
    for (const name of SEQUENCE) {
      const from = await page.evaluate(() => window.cursorLog.length);
      const x = await setCursor(name);
      const change = await waitFor(`page cursor for ${name} (serial ${x.serial})`, () => page.evaluate(
        ([serial, start]) => window.cursorLog.slice(start).find((c) => c.serial === serial), [x.serial, from],
      ), { timeoutMs: 3000, intervalMs: 20 }).catch(async (err) => {
        const info = await page.evaluate(() => window.kelpie.cursor).catch(() => null);
        throw new Error(env.why(`${err.message}; page cursor ${JSON.stringify(info)}`));
      });
      delays.push(change.t - x.t_ms);
      if (name === 'blank') {
        assert.equal(x.opaque, 0, 'the blank cursor has no visible pixel in X');
        assert.equal(change.css, 'none', `an invisible cursor hides the pointer: ${JSON.stringify(change)}`);
        continue;
      }
      const got = await describeCursor(page);
      const msg = `${name}: X reports ${JSON.stringify(x)}, page shows ${JSON.stringify(got)}`;
      assert.deepEqual(got.signature, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], msg);
      assert.deepEqual([got.w, got.h, got.hx, got.hy], [x.w, x.h, x.xhot, x.yhot], msg);
      assert.equal(got.opaque, x.opaque, msg);
      assert.equal(got.alphaSum, x.alpha_sum, msg);
      assert.ok(got.opaque > 0, msg);
      if (seen.has(name)) assert.equal(x.serial, seen.get(name), 'X reuses the serial of a reused cursor');
      seen.set(name, x.serial);
    }
    const received = await page.evaluate(() => window.kelpie.cursor.received);
    const distinctImages = new Set(SEQUENCE.filter((n) => n !== 'blank')).size;
    const repeats = SEQUENCE.filter((n) => n !== 'blank').length - distinctImages;
    const med = median(delays);
    console.log(`cursor change → page: ${delays.map((d) => d.toFixed(1)).join(', ')} ms; median ${med.toFixed(1)} ms, max ${Math.max(...delays).toFixed(1)} ms; messages ${JSON.stringify(received)}`);
    assert.equal(received.bySerial, repeats, 'a cursor shown before is named by serial, not resent');
    assert.ok(received.images >= distinctImages, JSON.stringify(received));
    assert.ok(med <= MAX_MEDIAN_MS, `median delay ${med.toFixed(1)} ms > ${MAX_MEDIAN_MS} ms: ${delays.join(', ')}`);
  });

  test('a viewer that joins later gets the current cursor at once, scaled like the video', async () => {
    const x = await setCursor('xterm');
    await page.waitForFunction((s) => window.kelpie.cursor.serial === s, x.serial, { timeout: 3000 });
    const changesBefore = xEvents.length;
    // Half the display size: the video, and so the cursor, is drawn at scale 0.5.
    const browser = await env.launchBrowser();
    const late = await env.openViewer(browser, { viewport: { width: SIZE.width / 2, height: SIZE.height / 2 } });
    await late.waitForFunction((s) => window.kelpie.cursor.serial === s, x.serial, { timeout: 5000 })
      .catch(async (err) => {
        const info = await late.evaluate(() => window.kelpie.cursor).catch(() => null);
        throw new Error(env.why(`late viewer never got serial ${x.serial}: ${err.message}; ${JSON.stringify(info)}`));
      });
    assert.equal(xEvents.length, changesBefore, 'no cursor change happened meanwhile');
    await waitDecoding(env, late, 1);
    await late.waitForFunction(() => Math.abs(window.kelpie.cursor.scale - 0.5) < 0.01
      && window.kelpie.video.style.cursor.startsWith('url('), null, { timeout: 5000 });
    const got = await describeCursor(late);
    const want = [Math.round(x.w / 2), Math.round(x.h / 2), Math.round(x.xhot / 2), Math.round(x.yhot / 2)];
    assert.deepEqual([got.w, got.h, got.hx, got.hy], want, `X ${JSON.stringify(x)}, late viewer ${JSON.stringify(got)}`);
    assert.ok(got.opaque > 0, 'the scaled cursor is visible');
  });
});

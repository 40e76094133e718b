/**
 * Sharp text when the screen stops moving (issue #11): a terminal full of 10-pixel text
 * scrolls for a while and stops; once the capture's still refresh has been shown, the
 * picture the browser shows must match the X framebuffer to ≥ 45 dB PSNR in luma. The
 * damage capture repeats the still picture `still-refresh` times (20 at 30 fps: 0.7 s of
 * stream time, which is where "within 1 s" comes from) so that x264 refines it;
 * afterwards the screen must stay quiet (no refresh loop): only the idle repeats (one every
 * 2.5 s) are encoded. The test waits on those events, not on a clock, and prints the times.
 *
 * The framebuffer comes from GStreamer's own `ximagesrc` (one BGRx frame), the browser's
 * picture from drawing the <video> into a canvas at its intrinsic size; luma is BT.709 on
 * both. The PSNR is printed whatever the outcome.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Env, openConnected, sleep, waitDecoding, waitFor } from './harness.mjs';
import { parseMetrics } from '../bench/lib.mjs';

const W = 1920;
const H = 1080;

/** BT.709 luma of interleaved pixels (`stride` bytes each, R/G/B at offsets `o`). */
function luma(bytes, stride, [r, g, b]) {
  const n = bytes.length / stride;
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const p = i * stride;
    y[i] = 0.2126 * bytes[p + r] + 0.7152 * bytes[p + g] + 0.0722 * bytes[p + b];
  }
  return y;
}

export function psnr(a, b) {
  assert.equal(a.length, b.length, 'pictures of different sizes');
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  const mse = se / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((255 * 255) / mse);
}

/**
 * PSNR over the 16×16 blocks of `ref` that hold text (any pixel darker than mid-grey):
 * the white margins would otherwise dilute the error of the glyphs.
 */
export function textPsnr(a, ref, w, h) {
  let se = 0;
  let n = 0;
  for (let by = 0; by + 16 <= h; by += 16) {
    for (let bx = 0; bx + 16 <= w; bx += 16) {
      let text = false;
      for (let y = by; y < by + 16 && !text; y++) for (let x = bx; x < bx + 16; x++) if (ref[y * w + x] < 128) { text = true; break; }
      if (!text) continue;
      for (let y = by; y < by + 16; y++) for (let x = bx; x < bx + 16; x++) { se += (a[y * w + x] - ref[y * w + x]) ** 2; n++; }
    }
  }
  assert.ok(n > 0, 'no text on the screen');
  return { db: se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / n)), share: n / (w * h) };
}

/** Writes luma as a PGM picture (for a look at a failure). */
function pgm(file, y) {
  const head = Buffer.from(`P5\n${W} ${H}\n255\n`);
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(Uint8Array.from(y, (v) => Math.round(v)))]));
}

/** The X framebuffer of `display` as BT.709 luma. */
function framebuffer(env) {
  const file = path.join(env.logDir, 'framebuffer.bgrx');
  execFileSync('gst-launch-1.0', ['-q', 'ximagesrc', `display-name=${env.display}`, 'num-buffers=1', 'use-damage=false',
    'show-pointer=false', '!', 'video/x-raw,format=BGRx', '!', 'filesink', `location=${file}`], { timeout: 20_000 });
  const raw = fs.readFileSync(file);
  assert.equal(raw.length, W * H * 4, `framebuffer of ${raw.length} bytes`);
  return luma(raw, 4, [2, 1, 0]);
}

/** Grabs the picture the page shows now, kept in the page as `name`; returns the page's time. */
async function grab(page, name) {
  return page.evaluate((n) => {
    const v = document.getElementById('screen');
    const c = document.createElement('canvas');
    c.width = v.videoWidth;
    c.height = v.videoHeight;
    const ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(v, 0, 0);
    window.__grabs = window.__grabs || {};
    window.__grabs[n] = ctx.getImageData(0, 0, c.width, c.height).data;
    return Date.now();
  }, name);
}

/** A grabbed picture as BT.709 luma. */
async function fetchGrab(page, name) {
  const b64 = await page.evaluate((n) => {
    const px = window.__grabs[n];
    let s = '';
    for (let i = 0; i < px.length; i += 0x8000) s += String.fromCharCode(...px.subarray(i, i + 0x8000));
    return btoa(s);
  }, name);
  const rgba = Buffer.from(b64, 'base64');
  assert.equal(rgba.length, W * H * 4, `the video is not ${W}x${H}`);
  return luma(rgba, 4, [0, 1, 2]);
}

async function framesEncoded(env) {
  return parseMetrics(await (await fetch(new URL('metrics', env.url))).text()).kelpie_frames_encoded_total;
}

describe('sharp text when still', { timeout: 180_000 }, () => {
  let env;
  let viewer;
  before(async () => {
    env = new Env('sharp', { width: W, height: H, framerate: 30 });
    await env.start();
    viewer = await env.launchBrowser();
  });
  after(() => env?.close());

  test('10-pixel text that stops scrolling reaches 45 dB once the still refresh is shown, then the screen stays quiet', async () => {
    const textFile = path.join(env.logDir, 'text.txt');
    const lines = [];
    for (let i = 0; i < 400; i++) {
      lines.push(`${String(i).padStart(4, '0')} The quick brown fox jumps over the lazy dog; fn main() { let x = ${i * 7919 % 10007}; } // kelpie`);
    }
    fs.writeFileSync(textFile, `${lines.join('\n')}\n`);
    const marker = path.join(env.logDir, 'still');
    fs.rmSync(marker, { force: true });
    const context = await viewer.browser.newContext({ viewport: { width: 1280, height: 720 } });
    const page = await openConnected(env, context, env.url);
    await waitDecoding(env, page, 3);
    // A full-screen terminal that scrolls the text for ~3 s, then stops and says so.
    env.spawn('xterm', 'xterm', ['-geometry', '400x120+0+0', '-bg', 'white', '-fg', 'black', '-fa', 'DejaVu Sans Mono:pixelsize=10',
      '+sb', '-b', '0', '-e', 'sh', '-c', `for i in 1 2 3 4 5 6 7 8 9 10; do sleep 0.3; cat ${textFile}; done; touch ${marker}; exec sleep 600`],
    { env: { DISPLAY: env.display } });
    await waitFor('the terminal to stop scrolling', () => fs.existsSync(marker), { timeoutMs: 30_000, intervalMs: 20 });
    const stopped = Date.now();
    // A picture near the 1 s mark, printed for information: how soon it is sharp is a
    // speed figure that depends on this machine's load, so nothing asserts on it here.
    await sleep(Math.max(0, stopped + 950 - Date.now()));
    const earlyAt = await grab(page, 'early');
    // The cause: the capture's still refresh (`still-refresh` repeats, then only the 1 s
    // idle repeats). Its end is a state that lasts, so waiting for it cannot race: the
    // encoder's counter rises by at most one over 600 ms once the refresh is over.
    let quietAt = 0;
    {
      const seen = [];
      await waitFor('the still refresh to end (the encoder goes quiet)', async () => {
        seen.push({ at: Date.now(), n: await framesEncoded(env) });
        const old = seen.find((s) => s.at <= Date.now() - 600);
        if (!old || seen.at(-1).n - old.n > 1) return false;
        quietAt = old.at;
        return true;
      }, { timeoutMs: 20_000, intervalMs: 150 });
    }
    // The effect: the page presents a frame encoded after the refresh (the next idle
    // repeat at the latest), so what it shows is the refined picture.
    await page.evaluate(() => new Promise((resolve, reject) => {
      const v = document.getElementById('screen');
      const timer = setTimeout(() => reject(new Error('no frame presented within 5 s of the still refresh')), 5000);
      v.requestVideoFrameCallback(() => { clearTimeout(timer); resolve(); });
    }));
    const lateAt = await grab(page, 'late');
    const fb = framebuffer(env);
    const seen = await fetchGrab(page, 'late');
    const early = textPsnr(await fetchGrab(page, 'early'), fb, W, H);
    pgm(path.join(env.logDir, 'shown.pgm'), seen);
    pgm(path.join(env.logDir, 'framebuffer.pgm'), fb);
    const whole = psnr(seen, fb);
    const text = textPsnr(seen, fb, W, H);
    console.log(`# sharp text: PSNR ${text.db.toFixed(2)} dB over the text (${(text.share * 100).toFixed(0)} % of the screen), `
      + `${whole.toFixed(2)} dB over the whole ${W}x${H} screen, after the still refresh (quiet ${quietAt - stopped} ms, `
      + `grabbed ${lateAt - stopped} ms after the scroll stopped); ${early.db.toFixed(2)} dB over the text ${earlyAt - stopped} ms after it`);
    assert.ok(text.db >= 45, `PSNR ${text.db.toFixed(2)} dB over the text < 45 dB once the still refresh was shown`);

    // Quiet afterwards: only the idle repeats (one every 2.5 s) are encoded. The allowance
    // (one a second, generous) follows the time that really passed, so a slow machine
    // cannot fail it.
    const before = await framesEncoded(env);
    const from = Date.now();
    await sleep(3000);
    const encoded = (await framesEncoded(env)) - before;
    const allowed = Math.ceil((Date.now() - from) / 1000) + 1;
    assert.ok(encoded <= allowed, `${encoded} frames encoded in ${Date.now() - from} ms of a still screen (idle repeats allow ${allowed}): a refresh loop?`);
  });
});

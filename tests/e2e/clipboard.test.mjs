/**
 * Clipboard sync, checked against the real X clipboard with xclip: text and PNG images
 * both ways, 1 MB byte-exact, and a session that survives malformed clip messages; once
 * with the messages on the WebRTC data channel and once as binary frames of the
 * WebSocket transport (`--transport websocket`), which paces on its own buffer.
 *
 * xclip -i stays running as the selection owner until another client takes the
 * clipboard; it runs in the foreground (-quiet) as a tracked process of the environment.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { Env, openConnected, waitFor } from './harness.mjs';
import { xclipGet as getX, xclipSet as setX } from './xclip.mjs';

/** A small limit so an oversized transfer is quick to provoke; 1 MB still fits. */
const MAX_BYTES = 2_000_000;
const sha = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const unique = (label) => `${label} ${crypto.randomBytes(6).toString('hex')} — ünïcødé ✓`;

for (const transport of ['webrtc', 'websocket']) describe(`clipboard over ${transport}`, { timeout: 240_000 }, () => {
  let env;
  let page;

  before(async () => {
    env = new Env(`clipboard-${transport}`, { width: 800, height: 600, framerate: 15,
      serverArgs: ['--clipboard-max-bytes', String(MAX_BYTES), '--transport', transport] });
    await env.start();
    const viewer = await env.launchBrowser();
    const context = await viewer.browser.newContext({ viewport: { width: 800, height: 600 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(env.url).origin });
    page = await openConnected(env, context, env.url);
    await page.waitForFunction(() => window.kelpie.channel?.readyState === 'open', null, { timeout: 10_000 });
    assert.equal(await page.evaluate(() => window.kelpie.transport.kind), transport);
    await page.bringToFront();
  });
  after(() => env?.close());

  const xclipSet = (data, mime) => setX(env, data, mime);
  const xclipGet = (mime) => getX(env, mime);

  async function waitX(what, want, mime) {
    let last = null;
    try {
      await waitFor(what, async () => {
        last = await xclipGet(mime).catch(() => null);
        return last && last.equals(want);
      }, { timeoutMs: 20_000, intervalMs: 250 });
    } catch (err) {
      throw new Error(env.why(`${err.message}; X has ${last?.length} bytes (sha ${last && sha(last)}), want ${want.length}`));
    }
  }

  const browserText = () => page.evaluate(() => navigator.clipboard.readText());

  async function waitBrowserText(what, want) {
    let got = null;
    try {
      await waitFor(what, async () => {
        got = await browserText();
        return got === want;
      }, { timeoutMs: 20_000, intervalMs: 250 });
    } catch (err) {
      const why = await page.evaluate(() => window.kelpie.clipboard.lastError);
      throw new Error(env.why(`${err.message}; browser has ${got?.length} chars, want ${want.length}; lastError ${why}`));
    }
  }

  /** Puts `text` on the browser clipboard and has the client send it. */
  async function browserCopies(text) {
    await page.evaluate((t) => navigator.clipboard.writeText(t), text);
    const sent = await page.evaluate(() => window.kelpie.clipboard.sync());
    assert.equal(sent, true, 'the client read the changed clipboard and sent it');
  }

  test('text copied in X appears in the browser clipboard', async () => {
    const text = unique('from X');
    xclipSet(text);
    await waitBrowserText('the X text in the browser clipboard', text);
  });

  test('text copied in the browser arrives in the X clipboard', async () => {
    const text = unique('from the browser');
    await browserCopies(text);
    await waitX('the browser text in X', Buffer.from(text));
  });

  test('1 MB of text passes both ways byte-exact', async () => {
    const big = (seed) => {
      const line = `${seed} 0123456789 abcdefghijklmnopqrstuvwxyz ÄÖÜ €\n`;
      return line.repeat(Math.ceil(1_048_576 / Buffer.byteLength(line))).slice(0, 1_000_000);
    };
    const fromX = big(unique('x'));
    xclipSet(fromX);
    await waitBrowserText('1 MB from X in the browser', fromX);

    const fromBrowser = big(unique('b'));
    await browserCopies(fromBrowser);
    await waitX('1 MB from the browser in X', Buffer.from(fromBrowser));
  });

  /** A PNG drawn in the page: {b64, pixels} (pixels: SHA-256 of the decoded RGBA). */
  const makePng = (hue) => page.evaluate(async (h) => {
    const c = new OffscreenCanvas(97, 61);
    const g = c.getContext('2d');
    for (let y = 0; y < 61; y++) {
      for (let x = 0; x < 97; x++) {
        g.fillStyle = `hsl(${(h + x * 3 + y * 5) % 360} 80% ${20 + (x ^ y) % 60}%)`;
        g.fillRect(x, y, 1, 1);
      }
    }
    const bytes = new Uint8Array(await (await c.convertToBlob({ type: 'image/png' })).arrayBuffer());
    let s = '';
    for (const b of bytes) s += String.fromCharCode(b);
    return btoa(s);
  }, hue);

  /** SHA-256 of a PNG's decoded RGBA pixels, decoded by the page. */
  const pixels = (b64) => page.evaluate(async (data) => {
    const bytes = Uint8Array.from(atob(data), (ch) => ch.charCodeAt(0));
    const bmp = await createImageBitmap(new Blob([bytes], { type: 'image/png' }));
    const c = new OffscreenCanvas(bmp.width, bmp.height);
    const g = c.getContext('2d');
    g.drawImage(bmp, 0, 0);
    const rgba = g.getImageData(0, 0, bmp.width, bmp.height).data;
    const d = new Uint8Array(await crypto.subtle.digest('SHA-256', rgba));
    return `${bmp.width}x${bmp.height}:${[...d].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
  }, b64);

  /** The browser clipboard's PNG as base64 (null if it holds none). */
  const browserPng = () => page.evaluate(async () => {
    for (const item of await navigator.clipboard.read()) {
      if (item.types.includes('image/png')) {
        const bytes = new Uint8Array(await (await item.getType('image/png')).arrayBuffer());
        let s = '';
        for (const b of bytes) s += String.fromCharCode(b);
        return btoa(s);
      }
    }
    return null;
  });

  test('a PNG image copied in X reaches the browser, and one copied there reaches X', async () => {
    const png = Buffer.from(await makePng(10), 'base64');
    xclipSet(png, 'image/png');
    // The client got the exact bytes...
    await waitFor('the PNG in the client', () => page.evaluate(() => window.kelpie.clipboard.last?.mime === 'image/png'),
      { timeoutMs: 20_000 }).catch((e) => { throw new Error(env.why(e.message)); });
    const got = await page.evaluate(() => {
      let s = '';
      for (const b of window.kelpie.clipboard.last.bytes) s += String.fromCharCode(b);
      return btoa(s);
    });
    assert.equal(sha(Buffer.from(got, 'base64')), sha(png), 'the client received the PNG byte-exact');
    // ...and the browser clipboard holds the same picture (Chromium re-encodes PNGs).
    const want = await pixels(png.toString('base64'));
    await waitFor('the PNG in the browser clipboard', async () => {
      const b = await browserPng();
      return b && (await pixels(b)) === want;
    }, { timeoutMs: 20_000 }).catch(async (e) => {
      throw new Error(env.why(`${e.message}; lastError ${await page.evaluate(() => window.kelpie.clipboard.lastError)}`));
    });

    // Browser → X: what the page's clipboard holds arrives in X byte-exact.
    const other = await makePng(200);
    await page.evaluate(async (b64) => {
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      await navigator.clipboard.write([new ClipboardItem({ 'image/png': new Blob([bytes], { type: 'image/png' }) })]);
    }, other);
    const inBrowser = await browserPng();
    assert.equal(await page.evaluate(() => window.kelpie.clipboard.sync()), true);
    await waitX('the browser PNG in X', Buffer.from(inBrowser, 'base64'), 'image/png');
    assert.equal(await pixels(inBrowser), await pixels(other), 'same picture as drawn');
  });

  test('a paste is not replayed to a later participant, and a view-only one gets no clipboard', async () => {
    const secret = unique('pasted password');
    await browserCopies(secret);
    await waitX('the paste in X', Buffer.from(secret));
    // A second owner joins after the paste, and a view-only participant through a share link.
    const link = await page.evaluate(async () => {
      const r = await fetch('share', { method: 'POST', headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ role: 'viewer', ttl: 600, name: 'watcher' }) });
      return (await r.json()).token;
    });
    const browser = page.context().browser();
    const later = await openConnected(env, await browser.newContext(), env.url);
    const viewer = await openConnected(env, await browser.newContext(), `${env.url}?token=${link}`);
    try {
      for (const p of [later, viewer]) {
        await p.waitForFunction(() => window.kelpie.channel?.readyState === 'open' && window.kelpie.room, null,
          { timeout: 10_000 });
      }
      assert.equal(await viewer.evaluate(() => window.kelpie.role), 'viewer');
      // Content an X application copies reaches owners and guests, in order: the first
      // thing the later participant receives is that, not the earlier paste.
      for (const label of ['copied in X', 'copied in X again']) {
        const fromX = unique(label);
        xclipSet(fromX);
        await later.waitForFunction((want) => window.kelpie.clipboard.lastText === want, fromX, { timeout: 20_000 });
      }
      assert.equal(await later.evaluate(() => window.kelpie.clipboard.received), 2,
        'the later participant got the two X copies and not the paste before it');
      assert.equal(await viewer.evaluate(() => window.kelpie.clipboard.received), 0,
        'the view-only participant got no clipboard content');
    } finally {
      await later.context().close();
      await viewer.context().close();
    }
  });

  test('malformed and oversized clip messages leave the session working', async () => {
    const before = unique('before bad input');
    await browserCopies(before);
    await waitX('the text before bad input', Buffer.from(before));

    const bad = await page.evaluate(async ({ max }) => {
      const ch = window.kelpie.channel;
      const sent = [];
      const send = (m) => { ch.send(typeof m === 'string' ? m : JSON.stringify(m)); sent.push(1); };
      send({ t: 'clip', id: 900, mime: 'text/plain', seq: 3, last: true, data: 'QUJD' }); // no start
      send({ t: 'clip', id: 901, mime: 'text/plain', seq: 0, last: true, data: '%%%not base64' });
      send({ t: 'clip', id: 902, mime: 'text/html', seq: 0, last: true, data: 'PGI+' });
      send({ t: 'clip', id: 903, mime: 'text/plain', seq: 0, last: false, data: 'QUJD' });
      send({ t: 'clip', id: 903, mime: 'image/png', seq: 1, last: true, data: 'QUJD' }); // type change
      send({ t: 'clip', id: 904, mime: 'text/plain', seq: 0, last: true, data: '//79' }); // not UTF-8
      send('{"t":"clip","id":905,'); // not JSON
      send({ t: 'clip', id: -1, mime: 'text/plain', seq: 0, last: true, data: 'QUJD' }); // bad id
      send({ t: 'clip', id: 906, mime: 'text/plain', seq: 0, last: 'yes', data: 'QUJD' }); // bad field
      // Over --clipboard-max-bytes in valid 45 KiB chunks.
      const chunk = btoa('x'.repeat(45 * 1024));
      const n = Math.ceil(max / (45 * 1024)) + 2;
      for (let i = 0; i < n; i++) {
        while (ch.bufferedAmount > 512 * 1024) await new Promise((r) => setTimeout(r, 10));
        send({ t: 'clip', id: 907, mime: 'text/plain', seq: i, last: i === n - 1, data: chunk });
      }
      return sent.length;
    }, { max: MAX_BYTES });
    assert.ok(bad > 8);
    await waitFor('the server to log the oversized transfer', () =>
      env.server.lines.some((l) => l.includes('transfer 907') && l.includes('limit')), { timeoutMs: 20_000 })
      .catch((e) => { throw new Error(env.why(e.message)); });
    // (902, text/html, and the bad-id and not-JSON messages are refused by the input parser.)
    for (const id of [900, 901, 903, 904]) {
      assert.ok(env.server.lines.some((l) => l.includes(`transfer ${id}`)), env.why(`no error logged for transfer ${id}`));
    }
    // Nothing of it reached X, the session is still up, and a normal transfer works.
    assert.deepEqual(await xclipGet(), Buffer.from(before));
    assert.equal(await page.evaluate(() => window.kelpie.state), 'connected');
    const after = unique('after bad input');
    await browserCopies(after);
    await waitX('a normal transfer after bad input', Buffer.from(after));
    const fromX = unique('from X after bad input');
    xclipSet(fromX);
    await waitBrowserText('X → browser after bad input', fromX);
  });
});

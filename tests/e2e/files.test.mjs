/**
 * File transfer through the real web client and server: a 50 MB upload arrives intact
 * with its progress bar at 100 %, unsafe names write nothing anywhere, an upload over
 * the limit is refused with 413 and a message in the page, conflicts ask before
 * replacing, downloads return the same bytes, and foreign origins and unauthenticated
 * requests are refused.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Env, waitFor } from './harness.mjs';

const sha256 = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
const listDir = (dir) => (fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []);

/** A file of `size` random bytes in `dir`. */
function randomFile(dir, name, size) {
  const file = path.join(dir, name);
  const fd = fs.openSync(file, 'w');
  const block = Buffer.alloc(1 << 20);
  for (let left = size; left > 0; left -= block.length) {
    crypto.randomFillSync(block);
    fs.writeSync(fd, block, 0, Math.min(block.length, left));
  }
  fs.closeSync(fd);
  return file;
}

/** A raw HTTP request (node's fetch would normalise `..` and refuse to set Origin). */
function request(url, { method = 'GET', path: p, headers = {}, body } = {}) {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method, path: p, headers, timeout: 10_000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

/** Waits until the page's upload of `name` (the latest with that name) is no longer sending. */
async function settled(page, name, timeoutMs = 60_000) {
  await page.waitForFunction((n) => {
    const u = window.kelpie.files.state.uploads.filter((x) => x.name === n).at(-1);
    return u && u.status !== 'sending';
  }, name, { timeout: timeoutMs });
  return page.evaluate((n) => {
    const u = window.kelpie.files.state.uploads.filter((x) => x.name === n).at(-1);
    return { status: u.status, httpStatus: u.httpStatus, percent: u.percent, message: u.message,
      bar: u.row.querySelector('progress')?.value };
  }, name);
}

describe('file transfer', { timeout: 240_000 }, () => {
  let env;
  let page;
  let root; // temp root: <root>/src (sources), <root>/home/Desktop (the files folder)
  let folder;
  let src;

  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'kelpie-files-e2e-'));
    src = path.join(root, 'src');
    fs.mkdirSync(src);
    folder = path.join(root, 'home', 'Desktop');
    // The folder does not exist yet: the server creates it.
    env = new Env('files', {
      width: 640, height: 480, framerate: 15,
      serverArgs: ['--files-dir', folder, '--upload-max-bytes', '64M'],
    });
    await env.start();
    const browser = await env.launchBrowser();
    page = await env.openViewer(browser, { viewport: { width: 900, height: 700 } });
  });
  after(async () => {
    await env?.close();
    if (root) fs.rmSync(root, { recursive: true, force: true });
  });

  test('a 50 MB upload through the picker arrives intact with the bar at 100 %', async () => {
    assert.ok(fs.statSync(folder).isDirectory(), 'the server creates a missing files folder');
    const file = randomFile(src, 'big data.bin', 50 * 1000 * 1000 + 7);
    await page.click('#files-button');
    await page.waitForSelector('#files-panel:not([hidden])', { timeout: 5000 });
    // Throttle the upload deliberately (about 2 s for 50 MB) so the browser reports
    // progress on the way; the page records every percentage it shows.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 25 * 1000 * 1000,
    });
    await page.setInputFiles('#files-input', file);
    const result = await settled(page, 'big data.bin', 120_000);
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
    });
    const percents = await page.evaluate(() => window.kelpie.files.state.uploads.at(-1).seen);
    assert.equal(result.status, 'done', env.why(JSON.stringify(result)));
    assert.equal(result.httpStatus, 201);
    assert.equal(result.bar, 100, 'the progress bar shows 100 %');
    assert.ok(percents.some((p) => p > 0 && p < 100),
      `progress moved through intermediate values: ${JSON.stringify(percents)}`);
    const stored = path.join(folder, 'big data.bin');
    assert.equal(sha256(stored), sha256(file), 'the stored file has the same bytes');
    assert.deepEqual(listDir(folder), ['big data.bin'], 'no temporary file is left');
  });

  test('the list shows uploaded files and a download returns the same bytes', async () => {
    await page.waitForSelector('#files-list a:text("big data.bin")', { timeout: 5000 });
    const [download] = await Promise.all([
      page.waitForEvent('download', { timeout: 30_000 }),
      page.click('#files-list a:text("big data.bin")'),
    ]);
    assert.equal(download.suggestedFilename(), 'big data.bin');
    const saved = path.join(root, 'downloaded.bin');
    await download.saveAs(saved);
    assert.equal(sha256(saved), sha256(path.join(src, 'big data.bin')));

    const res = await request(env.url, { path: '/files/big%20data.bin' });
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-length'], String(50 * 1000 * 1000 + 7));
    assert.match(res.headers['content-disposition'], /^attachment;/);
  });

  test('unsafe names are refused with 400 and nothing is written anywhere', async () => {
    const before = { folder: listDir(folder), parent: listDir(path.dirname(folder)), root: listDir(root) };
    for (const name of ['../../etc/passwd', '..', 'a/b', '.hidden', '..\\x', 'nul\0byte']) {
      const result = await page.evaluate((n) => window.kelpie.files.upload(new File(['evil'], 'x'), { name: n })
        .then((u) => ({ httpStatus: u.httpStatus, status: u.status, message: u.message })), name);
      // A dot-only name cannot travel in a URL path (the browser resolves it away), so the
      // page refuses it itself; the server's answer to it is checked on the raw wire below.
      const want = /^\.+$/.test(name) ? 0 : 400;
      assert.equal(result.httpStatus, want, `${JSON.stringify(name)}: ${JSON.stringify(result)}`);
      assert.equal(result.status, 'failed');
      assert.match(result.message, /Refused/, 'the page explains the refusal');
    }
    // Unencoded traversal on the wire never reaches a file either.
    for (const p of ['/files/..', '/files/.', '/files/%2e%2e', '/files/%2e%2e%2f%2e%2e%2fescaped', '/files/a%5cb']) {
      const res = await request(env.url, { method: 'PUT', path: p, body: 'evil' });
      assert.equal(res.status, 400, `${p} → ${res.status} ${res.body}`);
    }
    // More than one segment matches no upload route at all.
    const deep = await request(env.url, { method: 'PUT', path: '/files/../../etc/passwd', body: 'evil' });
    assert.ok(deep.status >= 400 && deep.status < 500, `/files/../../etc/passwd → ${deep.status}`);
    assert.deepEqual(listDir(folder), before.folder);
    assert.deepEqual(listDir(path.dirname(folder)), before.parent);
    assert.deepEqual(listDir(root), before.root);
    assert.ok(!fs.existsSync(path.join(root, 'escaped')));
  });

  test('an existing file is refused with 409, then replaced when the user says so', async () => {
    const one = path.join(src, 'one', 'notes.txt');
    const two = path.join(src, 'two', 'notes.txt');
    fs.mkdirSync(path.dirname(one));
    fs.mkdirSync(path.dirname(two));
    fs.writeFileSync(one, 'first version\n');
    fs.writeFileSync(two, 'second version\n');
    await page.setInputFiles('#files-input', one);
    assert.equal((await settled(page, 'notes.txt')).status, 'done');

    // The server's answer without overwrite (the page's own pre-check bypassed).
    const conflict = await page.evaluate(() => window.kelpie.files.upload(new File(['second version\n'], 'notes.txt'))
      .then((u) => ({ httpStatus: u.httpStatus, status: u.status, message: u.message })));
    assert.equal(conflict.httpStatus, 409);
    assert.equal(conflict.status, 'conflict');
    assert.equal(fs.readFileSync(path.join(folder, 'notes.txt'), 'utf8'), 'first version\n');

    await page.click('.files-upload[data-status="conflict"] .files-replace');
    await waitFor('replaced notes.txt', () => fs.readFileSync(path.join(folder, 'notes.txt'), 'utf8') === 'second version\n',
      { timeoutMs: 10_000 });
    const replaced = await settled(page, 'notes.txt');
    assert.equal(replaced.httpStatus, 200, JSON.stringify(replaced));

    // Through the picker, the page asks first (it knows the name from the list).
    await page.setInputFiles('#files-input', one);
    await page.waitForSelector('.files-upload[data-status="conflict"] .files-replace', { timeout: 5000 });
    assert.equal(fs.readFileSync(path.join(folder, 'notes.txt'), 'utf8'), 'second version\n');
    await page.click('.files-upload[data-status="conflict"] .files-replace');
    await waitFor('notes.txt back to the first version',
      () => fs.readFileSync(path.join(folder, 'notes.txt'), 'utf8') === 'first version\n', { timeoutMs: 10_000 });
    assert.deepEqual(listDir(folder), ['big data.bin', 'notes.txt']);
  });

  test('a cross-origin upload is refused with 403', async () => {
    const res = await request(env.url, {
      method: 'PUT', path: '/files/forged.txt', body: 'forged',
      headers: { Origin: 'http://evil.example', 'Content-Type': 'text/plain' },
    });
    assert.equal(res.status, 403);
    assert.ok(!fs.existsSync(path.join(folder, 'forged.txt')));
  });

  test('an upload over the limit is refused with 413, explained in the page, and leaves nothing', async () => {
    const small = path.join(root, 'small', 'Desktop');
    const s = await env.startKelpie({ name: 'kelpie-1M', args: ['--files-dir', small, '--upload-max-bytes', '1M'] });
    const browser = await env.launchBrowser();
    const p = await browser.browser.newPage();
    await p.goto(s.url, { timeout: 15_000 });
    await p.waitForFunction(() => !!window.kelpie?.files, null, { timeout: 10_000 });
    await p.click('#files-button');
    await p.waitForSelector('#files-list', { timeout: 5000 });

    // Just over the limit: the server reads and drops the rest, then answers 413.
    await p.setInputFiles('#files-input', randomFile(src, 'over.bin', 3 * 1024 * 1024));
    const over = await settled(p, 'over.bin');
    assert.equal(over.httpStatus, 413, JSON.stringify(over));
    assert.equal(over.status, 'failed');
    const shown = await p.textContent('#files-message');
    assert.match(shown, /Too large.*1 MiB/, `message in the page: ${shown}`);
    assert.deepEqual(listDir(small), [], 'no partial or temporary file');

    // Far over the limit: answered at once; the page still says why.
    await p.setInputFiles('#files-input', randomFile(src, 'huge.bin', 40 * 1024 * 1024));
    const huge = await settled(p, 'huge.bin');
    assert.equal(huge.status, 'failed', JSON.stringify(huge));
    assert.match(huge.message, /Too large.*1 MiB/);
    assert.deepEqual(listDir(small), []);

    // The limit itself is allowed.
    await p.setInputFiles('#files-input', randomFile(src, 'exact.bin', 1024 * 1024));
    assert.equal((await settled(p, 'exact.bin')).httpStatus, 201);
    assert.equal(sha256(path.join(small, 'exact.bin')), sha256(path.join(src, 'exact.bin')));
    await s.proc.stop();
  });

  test('an upload over --files-quota is refused with 507 before a byte is written', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kelpie-quota-'));
    try {
      const s = await env.startKelpie({ name: 'kelpie-quota', args: ['--files-dir', dir, '--files-quota', '1M'] });
      const first = await request(s.url, { method: 'PUT', path: '/files/a.bin', headers: { 'content-length': String(700 * 1024) }, body: Buffer.alloc(700 * 1024, 1) });
      assert.equal(first.status, 201, first.body.toString());
      const second = await request(s.url, { method: 'PUT', path: '/files/b.bin', headers: { 'content-length': String(700 * 1024) }, body: Buffer.alloc(700 * 1024, 2) });
      assert.equal(second.status, 507, second.body.toString());
      assert.match(second.body.toString(), /--files-quota/);
      assert.deepEqual(fs.readdirSync(dir), ['a.bin'], 'nothing of the refused upload, not even a temporary file');
      // What is left still fits.
      const third = await request(s.url, { method: 'PUT', path: '/files/c.bin', headers: { 'content-length': String(200 * 1024) }, body: Buffer.alloc(200 * 1024, 3) });
      assert.equal(third.status, 201, third.body.toString());
      await s.proc.stop();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('with authentication on, files/ needs credentials', async () => {
    const s = await env.startKelpie({
      name: 'kelpie-auth',
      args: ['--files-dir', folder, '--auth', 'basic', '--basic-user', 'sci'],
      env: { KELPIE_BASIC_PASSWORD: 'files-e2e-password' },
    });
    const anon = await request(s.url, { path: '/files/' });
    assert.equal(anon.status, 401);
    const anonDownload = await request(s.url, { path: '/files/notes.txt' });
    assert.equal(anonDownload.status, 401);
    const anonUpload = await request(s.url, { method: 'PUT', path: '/files/anon.txt', body: 'x' });
    assert.equal(anonUpload.status, 401);
    assert.ok(!fs.existsSync(path.join(folder, 'anon.txt')));
    const auth = `Basic ${Buffer.from('sci:files-e2e-password').toString('base64')}`;
    const ok = await request(s.url, { path: '/files/', headers: { Authorization: auth } });
    assert.equal(ok.status, 200);
    assert.deepEqual(JSON.parse(ok.body).map((e) => e.name).sort(), ['big data.bin', 'notes.txt']);
    await s.proc.stop();
  });

  test('dragging files over the page highlights it and dropping uploads them', async () => {
    const dataTransfer = await page.evaluateHandle(() => {
      const dt = new DataTransfer();
      dt.items.add(new File(['dropped on the page\n'], 'dropped.txt'));
      return dt;
    });
    await page.dispatchEvent('#screen', 'dragenter', { dataTransfer });
    assert.equal(await page.isVisible('#files-drop'), true, 'the drop highlight shows while dragging');
    await page.dispatchEvent('#screen', 'drop', { dataTransfer });
    assert.equal(await page.isVisible('#files-drop'), false, 'the highlight goes away on drop');
    assert.equal((await settled(page, 'dropped.txt')).status, 'done');
    assert.equal(fs.readFileSync(path.join(folder, 'dropped.txt'), 'utf8'), 'dropped on the page\n');
  });
});

/**
 * Kelpie behind a real nginx (Debian's, started here as a child process with its own
 * config on a free loopback port, not the system service), in both reverse-proxy styles:
 *
 *   /desk/  prefix STRIPPED: `proxy_pass http://127.0.0.1:K1/;` to a kelpie without
 *           --base-path (the web client's URLs are all relative);
 *   /keep/  prefix KEPT: `proxy_pass http://127.0.0.1:K2;` to a kelpie started with
 *           `--base-path /keep/`.
 *
 * Both with the usual WebSocket upgrade headers. Headless Chromium plays the stream at
 * the frame rate and display size through the proxy, and typing and clicking reach the
 * X client; `/desk` without the slash redirects to a working page.
 *
 * HTTP-only: a second Chromium in a network namespace of its own (netns.mjs) may reach
 * nothing but nginx's TCP port. Its page falls back to the WebSocket transport through
 * nginx and plays under /keep/; killing nginx's worker (its connections die, the master
 * starts a new worker) makes the page reconnect and play again.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Env, assertClickLands, assertTyping, decodeRate, freePort, openConnected, sleep, videoStats, waitDecoding, waitFor } from './harness.mjs';
import { makeNetns, netnsAvailable } from './netns.mjs';
import { children } from './procs.mjs';

const NGINX = process.env.KELPIE_NGINX || '/usr/sbin/nginx';
// Another aspect ratio than the display, so the video is letterboxed (as in input.test.mjs).
const VIEWPORT = { width: 1000, height: 700 };

/**
 * The nginx config. `Host $http_host` (not `$host`): the browser's Origin carries the
 * proxy's port, and kelpie's same-origin WebSocket check compares it with Host; `$host`
 * drops the port, which only matches on the default ports 80/443.
 */
function nginxConf({ dir, port, stripPort, keepPort, alsoOn }) {
  // proxy_buffering off: nothing of a response waits in nginx (an upgraded WebSocket is
  // never buffered, but the page's other requests need not be either).
  const ws = `
      proxy_buffering off;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection "upgrade";
      proxy_set_header Host $http_host;
      proxy_read_timeout 1h;
      proxy_send_timeout 1h;`;
  return `
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};${alsoOn ? `
    listen ${alsoOn}:${port};` : ''}
    location = /nginx-ready { return 200 "ready\\n"; }
    # Prefix stripped: /desk/x reaches kelpie as /x.
    location /desk/ {
      proxy_pass http://127.0.0.1:${stripPort}/;${ws}
    }
    # Prefix kept: /keep/x reaches kelpie (--base-path /keep/) as /keep/x.
    location /keep/ {
      proxy_pass http://127.0.0.1:${keepPort};${ws}
    }
  }
}
`;
}

/** Opens `url` in a new page of `entry`, waits for 'connected' and for decoded frames. */
async function play(env, entry, url) {
  const page = await env.openViewer(entry, { viewport: VIEWPORT, url });
  await waitDecoding(env, page, 1);
  await page.waitForFunction(() => window.kelpie.channel?.readyState === 'open', null, { timeout: 10_000 });
  return page;
}

async function assertPlays(t, env, page) {
  await sleep(1000); // let the decoder settle after the first keyframe
  const { rate, after: stats } = await decodeRate(page, 3000);
  t.diagnostic(`decoded ${rate.toFixed(1)} fps through nginx, ${stats.frameWidth}x${stats.frameHeight}`);
  assert.ok(rate >= 0.9 * env.framerate,
    env.why(`decoded ${rate.toFixed(1)} fps, want >= ${0.9 * env.framerate}: ${JSON.stringify(stats)}`));
  assert.equal(stats.frameWidth, env.width, env.why(`frameWidth ${stats.frameWidth}`));
  assert.equal(stats.frameHeight, env.height, env.why(`frameHeight ${stats.frameHeight}`));
}

describe('behind nginx', { timeout: 120_000 }, () => {
  let env;
  let nginx;
  let base; // http://127.0.0.1:NGINXPORT
  let keepPort;
  let browser;
  let page;
  let ns; // the HTTP-only browser's namespace (null without root)
  const cleanup = [];
  const skipHttpOnly = netnsAvailable();

  before(async () => {
    if (!skipHttpOnly) ns = makeNetns({ after: (fn) => cleanup.push(fn) });
    assert.ok(fs.existsSync(NGINX), `${NGINX} is missing (Debian package nginx): run tests/e2e/setup-deploy-tools.sh`);
    // The display, the probe and the prefix-stripping kelpie (no --base-path).
    env = new Env('proxy', { width: 1280, height: 720, framerate: 30, animate: true });
    await env.start();
    keepPort = await freePort(); // the --base-path kelpie starts in its own test

    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    const dir = path.join(env.logDir, 'nginx');
    fs.mkdirSync(dir, { recursive: true });
    const conf = path.join(dir, 'nginx.conf');
    fs.writeFileSync(conf, nginxConf({ dir, port, stripPort: env.port, keepPort, alsoOn: ns?.hostIp }));
    
    nginx = env.spawn('nginx', NGINX, ['-e', path.join(dir, 'error.log'), '-p', dir, '-c', conf, '-g', 'daemon off;']);
    nginx.errorLog = path.join(dir, 'error.log');
    nginx.accessLog = path.join(dir, 'access.log');
    try {
      await waitFor('nginx to answer', async () => {
        if (!nginx.running) throw new Error('nginx exited');
        const res = await fetch(`${base}/nginx-ready`, { signal: AbortSignal.timeout(2000) });
        return res.status === 200;
      }, { timeoutMs: 10_000, intervalMs: 100 });
    } catch (err) {
      throw new Error(env.why(`${err.message}\n--- nginx error.log ---\n${readTail(nginx.errorLog)}`));
    }
    browser = await env.launchBrowser();
  });
  after(async () => {
    await env?.close();
    cleanup.forEach((fn) => fn());
  });

  const why = (msg) => env.why(`${msg}\n--- nginx error.log ---\n${readTail(nginx.errorLog)}\n--- nginx access.log ---\n${readTail(nginx.accessLog)}`);

  test('/desk/ (prefix stripped) plays at the frame rate and display size', async (t) => {
    const health = await fetch(`${base}/desk/health`, { signal: AbortSignal.timeout(3000) });
    assert.equal(health.status, 200, why('GET /desk/health through nginx'));
    page = await play(env, browser, `${base}/desk/`);
    assert.equal(new URL(page.url()).pathname, '/desk/');
    await assertPlays(t, env, page);
    const errors = page.consoleLines.filter((l) => /^(error|pageerror)/.test(l));
    assert.deepEqual(errors, []);
  });

  test('/desk/: typed text arrives as the same text', async () => {
    assert.ok(page, 'the /desk/ page did not open');
    await assertTyping(env, page, 'Proxied, via nginx! 42');
  });

  for (const [label, point, button, xbutton] of [
    ['left click', { x: 250, y: 200 }, 'left', 1],
    ['right click', { x: 900, y: 600 }, 'right', 3],
  ]) {
    test(`/desk/: a ${label} lands at the proportional point`, async () => {
      assert.ok(page, 'the /desk/ page did not open');
      await assertClickLands(env, page, VIEWPORT, point, button, xbutton);
    });
  }

  test('the signalling WebSocket went through nginx as an upgrade', async () => {
    assert.ok(page, 'the /desk/ page did not open');
    // nginx logs a request when it ends; an upgraded WebSocket ends when the page goes.
    await page.close();
    page = null;
    await waitFor('the /desk/ws upgrade in the access log', () => /"GET \/desk\/ws HTTP\/1\.1" 101 /.test(readTail(nginx.accessLog, 200)),
      { timeoutMs: 10_000 }).catch(() => {});
    assert.match(readTail(nginx.accessLog, 200), /"GET \/desk\/ws HTTP\/1\.1" 101 /, why('no 101 for /desk/ws'));
  });

  test('GET /desk (no slash) redirects to /desk/, which plays', async () => {
    const res = await fetch(`${base}/desk`, { redirect: 'manual', signal: AbortSignal.timeout(3000) });
    assert.ok([301, 302, 307, 308].includes(res.status), why(`GET /desk → ${res.status}`));
    const location = new URL(res.headers.get('location'), `${base}/desk`);
    assert.equal(location.href, `${base}/desk/`, `Location: ${res.headers.get('location')}`);
    // And a browser following it ends up on a working page.
    const p = await env.openViewer(browser, { viewport: VIEWPORT, url: `${base}/desk` });
    assert.equal(new URL(p.url()).pathname, '/desk/');
    await waitDecoding(env, p, 5);
    await p.close();
  });

  test('/keep/ (prefix kept, kelpie --base-path /keep/) plays and takes input', async (t) => {
    // One encoder at a time on a small machine: the /desk/ kelpie goes first.
    await env.server.stop();
    const keep = await env.startKelpie({ name: 'kelpie-keep', port: keepPort, args: ['--base-path', '/keep/'] });
    // This kelpie really serves under the prefix (so nginx passing it on is what works).
    const direct = await fetch(`${keep.url}keep/health`, { signal: AbortSignal.timeout(3000) });
    assert.equal(direct.status, 200, why('kelpie --base-path /keep/ does not serve /keep/health'));
    const viaProxy = await fetch(`${base}/keep/health`, { signal: AbortSignal.timeout(3000) });
    assert.equal(viaProxy.status, 200, why('GET /keep/health through nginx'));

    const p = await play(env, browser, `${base}/keep/`);
    await assertPlays(t, env, p);
    await assertTyping(env, p, 'kept /keep/ prefix');
    const errors = p.consoleLines.filter((l) => /^(error|pageerror)/.test(l));
    assert.deepEqual(errors, []);
    await p.close();
    await waitFor('the /keep/ws upgrade in the access log', () => /"GET \/keep\/ws HTTP\/1\.1" 101 /.test(readTail(nginx.accessLog, 200)),
      { timeoutMs: 10_000 }).catch(() => {});
    assert.match(readTail(nginx.accessLog, 200), /"GET \/keep\/ws HTTP\/1\.1" 101 /, why('no 101 for /keep/ws'));
    // And the bare prefix redirects here too.
    const res = await fetch(`${base}/keep`, { redirect: 'manual', signal: AbortSignal.timeout(3000) });
    assert.equal(new URL(res.headers.get('location') ?? '', `${base}/keep`).href, `${base}/keep/`, why(`GET /keep → ${res.status}`));
  });

  test('/keep/ from an HTTP-only network: WebSocket through nginx, and back after nginx drops the connection',
    { skip: skipHttpOnly || false }, async (t) => {
      const port = Number(new URL(base).port);
      ns.allowOnlyTcp([port]);
      const url = `http://${ns.hostIp}:${port}/keep/`;
      const far = await env.launchBrowser(ns.browser(env.logDir, new URL(url).origin));
      const p = await openConnected(env, far.browser, url, { viewport: VIEWPORT });
      await waitDecoding(env, p, 5);
      const transport = await p.evaluate(() => window.kelpie.transport);
      assert.equal(transport.kind, 'websocket', why(`transport ${JSON.stringify(transport)}`));
      await assertPlays(t, env, p);
      await assertTyping(env, p, 'HTTP only via nginx');

      // nginx's worker holds every proxied connection: killing it drops them all.
      const before = await p.evaluate(() => window.kelpie.timings.ws_start);
      const workers = children(nginx.pid).map((c) => c.pid);
      assert.ok(workers.length > 0, 'no nginx worker process found');
      for (const pid of workers) process.kill(pid, 'SIGKILL');
      await p.waitForFunction((t0) => window.kelpie.timings.ws_start > t0 && window.kelpie.state === 'connected',
        before, { timeout: 20_000 }).catch((err) => { throw new Error(why(`no reconnect: ${err.message}`)); });
      const frames = (await videoStats(p)).framesDecoded;
      await waitDecoding(env, p, frames + 10);
      assert.equal((await p.evaluate(() => window.kelpie.transport)).kind, 'websocket');
      await assertPlays(t, env, p);
      await p.close();
    });
});

/** The last `n` lines of a file ('' when it does not exist yet). */
function readTail(file, n = 30) {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-n - 1).join('\n');
  } catch {
    return '';
  }
}

/**
 * Kelpie inside Jupyter: a real `jupyter server` with `jupyter-server-proxy` (PyPI) and our
 * entry point package `containers/jupyter/` (jupyter-kelpie), installed into
 * `.venv-e2e/` by tests/e2e/setup-deploy-tools.sh. Opening `{base_url}kelpie/` makes
 * jupyter-server-proxy start kelpie (`$KELPIE_BIN`, attached to the test display through
 * `KELPIE_DISPLAY`) with `--base-path /kelpie/ --auth basic` and a per-launch password it
 * adds to every proxied request; the page plays and typed text reaches the X client.
 *
 * Jupyter runs in its own process group, and so does the kelpie it starts (a plain child),
 * so stopping that group stops both.
 *
 * HTTP-only: Jupyter listens on the host side of a veth pair as well (netns.mjs), and a
 * second Chromium in the other namespace may reach nothing but Jupyter's TCP port. Its page
 * falls back to the WebSocket transport through jupyter-server-proxy and plays.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { KELPIE_BIN, REPO_ROOT, assertTyping, decodeRate, freePort, openConnected, sleep, startEnv, waitDecoding, waitFor } from './harness.mjs';
import { makeNetns, netnsAvailable } from './netns.mjs';
import { children } from './procs.mjs';

const VENV = process.env.KELPIE_E2E_VENV || path.join(REPO_ROOT, '.venv-e2e');
const JUPYTER = path.join(VENV, 'bin', 'jupyter');

test('through jupyter-server-proxy and jupyter-kelpie the desktop plays and takes input', { timeout: 120_000 }, async (t) => {
  assert.ok(fs.existsSync(JUPYTER), `${JUPYTER} is missing: run tests/e2e/setup-deploy-tools.sh`);
  // The display and probe only; Jupyter starts kelpie.
  const env = await startEnv(t, { width: 1280, height: 720, framerate: 30, animate: true, startServer: false });
  const ns = netnsAvailable() ? null : makeNetns(t);

  const port = await freePort();
  const token = crypto.randomBytes(24).toString('hex');
  // On the veth address when there is one: reachable from this namespace and from ns.
  const base = `http://${ns ? ns.hostIp : '127.0.0.1'}:${port}`;
  const dir = path.join(env.logDir, 'jupyter');
  for (const d of ['root', 'config', 'data', 'runtime']) fs.mkdirSync(path.join(dir, d), { recursive: true });
  const jupyter = env.spawn('jupyter', JUPYTER, [
    'server', '--no-browser',
    `--ServerApp.ip=${ns ? ns.hostIp : '127.0.0.1'}`, `--ServerApp.port=${port}`, '--ServerApp.port_retries=0',
    `--IdentityProvider.token=${token}`, `--ServerApp.root_dir=${path.join(dir, 'root')}`,
    // CI and the dev machines run as root; Jupyter refuses that without this.
    ...(process.getuid?.() === 0 ? ['--allow-root'] : []),
  ], {
    env: {
      // Its own config, data and runtime directories: nothing from ~/.jupyter leaks in.
      JUPYTER_CONFIG_DIR: path.join(dir, 'config'),
      JUPYTER_DATA_DIR: path.join(dir, 'data'),
      JUPYTER_RUNTIME_DIR: path.join(dir, 'runtime'),
      JUPYTER_PLATFORM_DIRS: '1',
      // What the entry point launches, and the settings kelpie reads from the environment.
      KELPIE_BIN,
      KELPIE_DISPLAY: env.display,
      KELPIE_ICE_ADDRESSES: '127.0.0.1',
      KELPIE_FRAMERATE: String(env.framerate),
      KELPIE_LOG: process.env.KELPIE_LOG || 'info',
      NO_COLOR: '1',
      DISPLAY: env.display,
    },
  });
  jupyter.readStdout();
  try {
    const up = await waitFor('jupyter server to answer GET /api', async () => {
      if (!jupyter.running) return 'exited';
      return (await fetch(`${base}/api`, { signal: AbortSignal.timeout(2000) })).status === 200;
    }, { timeoutMs: 30_000, intervalMs: 200 });
    if (up === 'exited') throw new Error(`jupyter exited with ${jupyter.exitStatus}`);
  } catch (err) {
    throw new Error(env.why(err.message));
  }

  // jupyter-server-proxy lists our entry point, with its launcher tile.
  const info = await (await fetch(`${base}/server-proxy/servers-info`, {
    headers: { Authorization: `token ${token}` }, signal: AbortSignal.timeout(5000),
  })).json();
  const entry = info.server_processes?.find((s) => s.name === 'kelpie');
  assert.ok(entry, `no kelpie in servers-info: ${JSON.stringify(info)}`);
  assert.equal(entry.launcher_entry?.title, 'Desktop (Kelpie)', JSON.stringify(entry));

  // Without Jupyter's token: no desktop (and no kelpie started for it).
  const anon = await fetch(`${base}/kelpie/`, { redirect: 'manual', signal: AbortSignal.timeout(5000) });
  assert.ok([302, 401, 403].includes(anon.status), `GET /kelpie/ without a token → ${anon.status}`);
  assert.deepEqual(children(jupyter.pid), [], 'kelpie was started for an unauthenticated request');

  // The browser: the token in the URL logs it in (Jupyter sets its cookie), the client's
  // relative URLs and its WebSocket then ride on that cookie.
  const viewer = await env.launchBrowser();
  const page = await env.openViewer(viewer, { url: `${base}/kelpie/?token=${token}`, viewport: { width: 1280, height: 720 } });
  await waitDecoding(env, page, 1);
  await page.waitForFunction(() => window.kelpie.channel?.readyState === 'open', null, { timeout: 10_000 });

  // jupyter-server-proxy started our kelpie as its child, as the entry point says.
  const kids = children(jupyter.pid).filter((c) => c.argv[0] === KELPIE_BIN);
  assert.equal(kids.length, 1, `jupyter's children: ${JSON.stringify(children(jupyter.pid))}`);
  const argv = kids[0].argv;
  t.diagnostic(`kelpie started by jupyter-server-proxy: ${argv.join(' ')}`);
  const arg = (name) => argv[argv.indexOf(name) + 1];
  assert.equal(arg('--base-path'), '/kelpie/');
  assert.equal(arg('--auth'), 'basic');
  assert.match(arg('--listen'), /^127\.0\.0\.1:\d+$/);
  // Its loopback port is closed to anyone without the per-launch password.
  const direct = await fetch(`http://${arg('--listen')}/`, { signal: AbortSignal.timeout(3000) });
  assert.equal(direct.status, 401, 'kelpie behind jupyter answers without credentials');
  // The signalling WebSocket went through jupyter-server-proxy to that kelpie.
  const port2 = arg('--listen').split(':')[1];
  assert.ok(jupyter.lines.some((l) => l.includes(`Websocket connection established to ws://localhost:${port2}/ws`)),
    env.why('jupyter-server-proxy did not log the proxied /ws'));

  // It plays, at the frame rate and the display's size.
  await sleep(1000);
  const { rate, after } = await decodeRate(page, 3000);
  t.diagnostic(`decoded ${rate.toFixed(1)} fps through jupyter-server-proxy, ${after.frameWidth}x${after.frameHeight}`);
  assert.ok(rate >= 0.9 * env.framerate,
    env.why(`decoded ${rate.toFixed(1)} fps, want >= ${0.9 * env.framerate}: ${JSON.stringify(after)}`));
  assert.equal(after.frameWidth, env.width);
  assert.equal(after.frameHeight, env.height);

  // Typing reaches X.
  await assertTyping(env, page, 'Jupyter desk 7!');

  const errors = page.consoleLines.filter((l) => /^(error|pageerror)/.test(l));
  assert.deepEqual(errors, []);
  await page.close();

  if (!ns) {
    t.diagnostic(`HTTP-only part skipped: ${netnsAvailable()}`);
    return;
  }
  ns.allowOnlyTcp([port]);
  const far = await env.launchBrowser(ns.browser(env.logDir, base));
  const farPage = await openConnected(env, far.browser, `${base}/kelpie/?token=${token}`, { viewport: { width: 1280, height: 720 } });
  await waitDecoding(env, farPage, 5);
  const transport = await farPage.evaluate(() => window.kelpie.transport);
  assert.equal(transport.kind, 'websocket', env.why(`transport ${JSON.stringify(transport)}`));
  await sleep(1000);
  const far3 = await decodeRate(farPage, 3000);
  t.diagnostic(`HTTP-only: decoded ${far3.rate.toFixed(1)} fps over the WebSocket through jupyter-server-proxy`);
  assert.ok(far3.rate >= 0.9 * env.framerate, env.why(`HTTP-only: ${far3.rate.toFixed(1)} fps: ${JSON.stringify(far3.after)}`));
  await assertTyping(env, farPage, 'Jupyter over HTTP only');
});

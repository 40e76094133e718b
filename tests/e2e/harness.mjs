/**
 * End-to-end harness: a private Xvfb display, the kelpie-xprobe X client on it, the
 * kelpie server streaming it, and headless Chromium viewers of the web client.
 *
 * Everything started here is tracked by PID and stopped when the test ends (t.after),
 * and killed outright if the node process exits first. Every wait is bounded.
 * Logs of each process go to tests/e2e/logs/<name>/ and their tails are attached to
 * failure messages through `env.why()`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { freePort, live, sleep, waitFor } from './procs.mjs';

export { freePort, sleep, waitFor };

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO_ROOT = path.resolve(HERE, '../..');
export const KELPIE_BIN = process.env.KELPIE_BIN || path.join(REPO_ROOT, 'target/debug/kelpie');
export const XPROBE_BIN = process.env.KELPIE_XPROBE_BIN || path.join(REPO_ROOT, 'target/debug/kelpie-xprobe');
export const CHROMIUM_BIN = process.env.KELPIE_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--disable-background-networking',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
];

/** A started child process with its log file and an in-memory tail of its output. */
class Proc {
  constructor(name, cmd, args, { logDir, env, stdio = ['ignore', 'pipe', 'pipe'] }) {
    this.name = name;
    this.lines = [];
    this.logPath = path.join(logDir, `${name}.log`);
    this.log = fs.createWriteStream(this.logPath);
    this.log.write(`$ ${cmd} ${args.join(' ')}\n`);
    // detached: its own process group, so its children die with it.
    this.child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio, detached: true });
    this.pid = this.child.pid;
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        live.delete(this.pid);
        this.exitStatus = signal || code;
        this.#record(`[${name} exited: ${signal || code}]`);
        resolve(this.exitStatus);
      });
    });
    this.child.on('error', (err) => this.#record(`[${name} failed to start: ${err.message}]`));
    if (this.pid) live.add(this.pid);
    if (this.child.stderr) this.#lines(this.child.stderr);
  }

  #record(line) {
    line = line.replace(/\x1b\[[0-9;]*m/g, ''); // colours, in case a program ignores NO_COLOR
    // A killed process's last lines can still be in its pipe when stop() has closed the
    // log: they are kept in memory only (a write after end would throw outside any test).
    if (!this.log.writableEnded) this.log.write(`${line}\n`);
    this.lines.push(line);
    if (this.lines.length > 400) this.lines.splice(0, this.lines.length - 400);
  }

  #lines(stream, onLine) {
    readline.createInterface({ input: stream }).on('line', (line) => {
      this.#record(line);
      onLine?.(line);
    });
  }

  /** Records stdout lines, handing each to `onLine`. */
  readStdout(onLine) {
    this.#lines(this.child.stdout, onLine);
  }

  get running() {
    return this.exitStatus === undefined && !!this.pid;
  }

  tail(n = 30) {
    return this.lines.slice(-n).join('\n');
  }

  /** SIGTERM, then SIGKILL for the whole process group if it lingers. */
  async stop(graceMs = 5000) {
    if (this.stopped) return;
    this.stopped = true;
    if (this.running) {
      try { process.kill(-this.pid, 'SIGTERM'); } catch { /* gone */ }
      const timedOut = await Promise.race([this.exited.then(() => false), sleep(graceMs).then(() => true)]);
      if (timedOut) this.#record(`[${this.name} ignored SIGTERM for ${graceMs} ms, killing]`);
    }
    try { process.kill(-this.pid, 'SIGKILL'); } catch { /* gone */ }
    live.delete(this.pid);
    await new Promise((resolve) => this.log.end(resolve));
  }
}

function requireExecutable(file, hint) {
  try {
    fs.accessSync(file, fs.constants.X_OK);
  } catch {
    throw new Error(`${file} is missing or not executable: ${hint}`);
  }
}

/**
 * One test environment. Create it with `startEnv(t, opts)`, which registers
 * `env.close()` with `t.after` so it is torn down even when the test fails.
 */
export class Env {
  /**
   * @param {string} name names the log directory
   * @param {object} opts display size, server frame rate, extra server arguments,
   *   `startServer: false` for a test that starts kelpie itself (`startKelpie`) or has
   *   something else start it on `env.display`, and
   *   `animate`: have xprobe repaint at the frame rate so there is something to encode
   *   (its window is otherwise static grey, which a damage-driven capture may not resend),
   *   `resize: true` to let browsers resize the display (off by default, so the display
   *   keeps the size a test chose whatever its browser window), `probeArgs`: extra
   *   kelpie-xprobe arguments (e.g. `--motion`), `host`: the address kelpie listens on and
   *   offers ICE candidates on (default 127.0.0.1; a veth address for netns tests),
   *   `serverEnv`: environment for that server (a password)
   */
  constructor(name, {
    width = 1280, height = 720, framerate = 30, serverArgs = [], startServer = true, animate = false,
    resize = false, probeArgs = [], host = '127.0.0.1', serverEnv = {},
  } = {}) {
    this.host = host;
    this.serverEnv = serverEnv;
    this.name = name;
    this.width = width;
    this.height = height;
    this.framerate = framerate;
    this.serverArgs = serverArgs;
    this.startServerAtStart = startServer;
    this.animate = animate;
    this.resize = resize;
    this.probeArgs = probeArgs;
    this.procs = [];
    this.browsers = [];
    this.logDir = path.join(HERE, 'logs', name.replace(/[^\w.-]+/g, '_'));
    fs.rmSync(this.logDir, { recursive: true, force: true });
    fs.mkdirSync(this.logDir, { recursive: true });
  }

  #spawn(name, cmd, args, opts = {}) {
    const p = new Proc(name, cmd, args, { logDir: this.logDir, ...opts });
    this.procs.push(p);
    return p;
  }

  /**
   * Starts another process of the test (a proxy, a TURN server, ...) in its own process
   * group, logged to `logs/<test>/<name>.log`, in `why()`, and stopped by `close()`.
   * `opts`: `env` (added to the environment), `stdio`. Returns the process (`pid`,
   * `running`, `exited`, `readStdout(onLine)`, `stop()`).
   */
  spawn(name, cmd, args, opts = {}) {
    return this.#spawn(name, cmd, args, opts);
  }

  /** The tails of every log, for failure messages. */
  why(prefix = '') {
    const parts = this.procs.map((p) => `--- ${p.name} (${p.logPath}) ---\n${p.tail()}`);
    return `${prefix}\n${parts.join('\n')}`;
  }

  async start() {
    requireExecutable(KELPIE_BIN, 'build it with `cargo build` or set KELPIE_BIN');
    requireExecutable(XPROBE_BIN, 'build it with `cargo build` or set KELPIE_XPROBE_BIN');
    await this.#startXvfb();
    await this.#startProbe();
    if (this.startServerAtStart) await this.#startServer();
    return this;
  }

  /** Xvfb picks a free display itself and writes its number to fd 3 (-displayfd). */
  async #startXvfb() {
    const xvfb = this.#spawn('xvfb', 'Xvfb', [
      '-displayfd', '3',
      '-screen', '0', `${this.width}x${this.height}x24`,
      '-nolisten', 'tcp',
      '-noreset',
    ], { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
    const fd3 = xvfb.child.stdio[3];
    let text = '';
    const number = await Promise.race([
      new Promise((resolve) => {
        fd3.on('data', (d) => {
          text += d;
          if (text.includes('\n')) resolve(text.trim());
        });
      }),
      xvfb.exited.then(() => { throw new Error(this.why('Xvfb exited before reporting its display')); }),
      sleep(10_000).then(() => { throw new Error(this.why('Xvfb did not report a display within 10 s')); }),
    ]);
    this.display = `:${number}`;
  }

  async #startProbe() {
    this.probeEvents = [];
    const args = [...(this.animate ? ['--animate', String(this.framerate)] : []), ...this.probeArgs];
    const probe = this.#spawn('xprobe', XPROBE_BIN, args, { env: { DISPLAY: this.display } });
    probe.readStdout((line) => {
      try {
        this.probeEvents.push(JSON.parse(line));
      } catch { /* not an event */ }
    });
    this.probe = probe;
    const ready = await this.waitProbe('xprobe ready', (e) => e.ev === 'ready', 10_000);
    if (ready.width !== this.width || ready.height !== this.height) {
      throw new Error(this.why(`xprobe reports ${ready.width}x${ready.height}, display is ${this.width}x${this.height}`));
    }
  }

  /** Waits for the first probe event (from index `from`) matching `pred`. */
  async waitProbe(what, pred, timeoutMs = 10_000, from = 0) {
    try {
      return await waitFor(what, () => {
        if (!this.probe.running) throw new Error('xprobe exited');
        return this.probeEvents.slice(from).find(pred);
      }, { timeoutMs, intervalMs: 50 });
    } catch (err) {
      throw new Error(this.why(err.message));
    }
  }

  /** Stops the server and starts a new one on the same port (viewers must reconnect). */
  async restartServer() {
    await this.server.stop();
    this.restarts = (this.restarts || 0) + 1;
    await this.#startServer(this.port);
  }

  async #startServer(port) {
    const name = this.restarts ? `kelpie-${this.restarts}` : 'kelpie';
    const s = await this.startKelpie({ name, port, args: this.serverArgs, env: this.serverEnv });
    this.port = s.port;
    this.url = s.url;
    this.server = s.proc;
  }

  /**
   * Starts a kelpie on this display (on `port`, else a free one) with extra `args` and
   * environment `env`, and waits until its /health answers 200. Returns {proc, port, url}.
   * The environment's own server is one of these; tests may start more.
   */
  async startKelpie({ name = 'kelpie', port, args = [], env = {} } = {}) {
    port = port || await freePort();
    // With --tls-cert kelpie serves https:// (and wss://) on the same port.
    const scheme = [...this.serverArgs, ...args].includes('--tls-cert') ? 'https' : 'http';
    const url = `${scheme}://${this.host}:${port}/`;
    const proc = this.#spawn(name, KELPIE_BIN, [
      '--display', this.display,
      '--listen', `${this.host}:${port}`,
      '--framerate', String(this.framerate),
      // Server ICE candidates on loopback (or the test's veth) only: media never uses a
      // routable address.
      '--ice-address', this.host,
      ...(this.resize || args.includes('--resize') ? [] : ['--resize', 'off']),
      ...args,
    ], { env: { DISPLAY: this.display, KELPIE_LOG: process.env.KELPIE_LOG || 'info', NO_COLOR: '1', ...env } });
    proc.readStdout();
    try {
      await waitFor('GET /health to return 200', async () => {
        if (!proc.running) throw new Error(`${name} exited`);
        return (await this.health(url)).status === 200;
      }, { timeoutMs: 30_000, intervalMs: 200 });
    } catch (err) {
      throw new Error(this.why(err.message));
    }
    return { proc, port, url };
  }

  /** GET /health → {status, body} (body parsed when it is JSON); `base` defaults to the server. */
  async health(base = this.url) {
    const res = await fetch(new URL('health', base), { signal: AbortSignal.timeout(3000) });
    const text = await res.text();
    let body = text;
    try { body = JSON.parse(text); } catch { /* not JSON */ }
    return { status: res.status, body };
  }

  /** Polls /health until `pred(body)` holds; returns the body. */
  async waitHealth(what, pred, timeoutMs = 10_000) {
    let last;
    try {
      await waitFor(what, async () => {
        last = await this.health();
        return last.status === 200 && pred(last.body);
      }, { timeoutMs, intervalMs: 200 });
      return last.body;
    } catch (err) {
      throw new Error(this.why(`${err.message}; last /health: ${JSON.stringify(last)}`));
    }
  }

  /**
   * A headless Chromium with a fresh temporary profile. Launched as a browser server
   * so the test can reach its process (Browser objects from chromium.launch don't
   * expose one); `kill()` SIGKILLs it like a crash. `executablePath`: another Chromium
   * command (netns.mjs's wrapper runs it in a network namespace); `args`: more switches;
   * `env`: more environment (a PULSE_SERVER for its sound output).
   */
  async launchBrowser({ executablePath = CHROMIUM_BIN, args = [], env } = {}) {
    const server = await chromium.launchServer({
      executablePath,
      args: [...CHROMIUM_ARGS, ...args],
      timeout: 30_000,
      // Given a sound server, it should really play: Playwright mutes Chromium by default.
      ...(env ? { env: { ...process.env, ...env }, ignoreDefaultArgs: ['--mute-audio'] } : {}),
    });
    const proc = server.process();
    const browser = await chromium.connect(server.wsEndpoint(), { timeout: 30_000 });
    const entry = {
      browser,
      pid: proc.pid,
      async close() {
        await browser.close().catch(() => {});
        await server.close().catch(() => {});
      },
      kill() {
        proc.kill('SIGKILL');
      },
    };
    live.add(proc.pid);
    proc.on('exit', () => live.delete(proc.pid));
    this.browsers.push(entry);
    return entry;
  }

  /**
   * Opens the web client in `entry` and waits until it reports 'connected'. `url`
   * defaults to the server's; pass another to go through a proxy. `settings`: the page's
   * stored settings (e.g. `{sound: 'webrtc'}`), in a browser context of its own.
   */
  async openViewer(entry, { viewport = { width: this.width, height: this.height }, url = this.url, settings = null } = {}) {
    if (settings) {
      // The page's remembered settings (settings.js), in place before its scripts run.
      const context = await entry.browser.newContext({ viewport });
      await context.addInitScript((s) => localStorage.setItem('kelpie.settings', JSON.stringify(s)), settings);
      return openConnected(this, context, url, {});
    }
    return openConnected(this, entry.browser, url, { viewport });
  }

  async close() {
    for (const b of this.browsers.splice(0)) {
      await b.close();
      // Chromium's helper processes share its process group; make sure none linger.
      try { process.kill(-b.pid, 'SIGKILL'); } catch { /* gone */ }
      live.delete(b.pid);
    }
    // Server first, so it does not log errors about its display going away.
    for (const p of this.procs.reverse()) await p.stop();
  }
}

/** Starts an environment for test context `t` and tears it down after the test. */
export async function startEnv(t, opts) {
  const env = new Env(opts?.name || t.name, opts);
  t.after(() => env.close());
  await env.start();
  return env;
}

/**
 * The inbound video stats of a page (null before there are any): its peer connection's
 * inbound-rtp report, or the WebSocket transport's decoder counts in the same shape.
 */
export async function videoStats(page) {
  return page.evaluate(async () => {
    const s = await window.kelpie?.videoStats?.();
    if (!s) return null;
    return {
      transport: window.kelpie.transport?.kind ?? null,
      timestamp: s.timestamp,
      framesDecoded: s.framesDecoded ?? 0,
      framesReceived: s.framesReceived ?? 0,
      framesDropped: s.framesDropped ?? 0,
      frameWidth: s.frameWidth ?? 0,
      frameHeight: s.frameHeight ?? 0,
      // For diagnosis: loss, retransmission and keyframe requests.
      keyFramesDecoded: s.keyFramesDecoded ?? 0,
      packetsReceived: s.packetsReceived ?? 0,
      packetsLost: s.packetsLost ?? 0,
      nackCount: s.nackCount ?? 0,
      pliCount: s.pliCount ?? 0,
    };
  });
}

/** The samples of counter or gauge `name` in `base`'s /metrics, as {labels: value}. */
export async function metricSamples(base, name, headers = {}) {
  const text = await (await fetch(new URL('metrics', base), { headers, signal: AbortSignal.timeout(3000) })).text();
  const out = {};
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}{`)) {
      const [labels, value] = line.slice(name.length).split(' ');
      out[labels] = Number(value);
    }
  }
  return out;
}

/** Waits until the page has decoded at least `frames` frames. */
export async function waitDecoding(env, page, frames = 1, timeoutMs = 15_000) {
  let last = null;
  try {
    await waitFor(`${frames} decoded frames`, async () => {
      last = await videoStats(page);
      return last && last.framesDecoded >= frames;
    }, { timeoutMs, intervalMs: 200 });
  } catch (err) {
    throw new Error(env.why(`${err.message}; last stats ${JSON.stringify(last)}`));
  }
  return last;
}

/** Decoded frames per second over `ms`, measured from the stats' own timestamps. */
export async function decodeRate(page, ms = 3000) {
  const a = await videoStats(page);
  await sleep(ms);
  const b = await videoStats(page);
  const seconds = (b.timestamp - a.timestamp) / 1000;
  return { rate: (b.framesDecoded - a.framesDecoded) / seconds, before: a, after: b };
}

/**
 * Opens `url` in a fresh page of `target` (a Browser, with `pageOpts`, or a
 * BrowserContext) and waits until the web client reports 'connected'.
 */
export async function openConnected(env, target, url, pageOpts) {
  const page = await target.newPage(pageOpts);
  page.consoleLines = [];
  page.on('console', (m) => page.consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => page.consoleLines.push(`pageerror: ${e.message}`));
  await page.goto(url, { timeout: 15_000 });
  try {
    await page.waitForFunction(() => window.kelpie?.state === 'connected', null, { timeout: 20_000 });
  } catch (err) {
    const state = await page.evaluate(() => [window.kelpie?.state, document.getElementById('status')?.textContent]).catch(() => '?');
    throw new Error(env.why(`page never connected (state ${JSON.stringify(state)}): ${err.message}\n--- page console ---\n${page.consoleLines.join('\n')}`));
  }
  return page;
}

/** Types `text` into the page's video and asserts that xprobe's key events spell the same text. */
export async function assertTyping(env, page, text) {
  const from = env.probeEvents.length;
  await page.focus('#screen');
  await page.keyboard.type(text, { delay: 20 });
  const typed = () => env.probeEvents.slice(from)
    .filter((e) => e.ev === 'key')
    .map((e) => e.text ?? '')
    .join('');
  await waitFor(`${text.length} typed characters`, () => typed().length >= text.length, { timeoutMs: 10_000 })
    .catch(() => {});
  assert.equal(typed(), text, env.why(`xprobe key events: ${JSON.stringify(env.probeEvents.slice(from))}`));
}

/**
 * Clicks `button` at viewport `point` of a page whose viewport is `viewport`, and asserts
 * that xprobe sees X button `xbutton` pressed within 2 px of the proportional point of
 * the screen (object-fit: contain, computed independently). Returns the probe event
 * index the click's events start from.
 */
export async function assertClickLands(env, page, viewport, point, button, xbutton) {
  const from = env.probeEvents.length;
  await page.mouse.click(point.x, point.y, { button });
  const ev = await env.waitProbe(`xprobe button ${xbutton} press`,
    (e) => e.ev === 'button' && e.down === true, 10_000, from);
  const scale = Math.min(viewport.width / env.width, viewport.height / env.height);
  const offX = (viewport.width - env.width * scale) / 2;
  const offY = (viewport.height - env.height * scale) / 2;
  const want = { x: (point.x - offX) / scale, y: (point.y - offY) / scale };
  const msg = `viewport ${JSON.stringify(point)} → want ~(${want.x.toFixed(1)}, ${want.y.toFixed(1)}), xprobe ${JSON.stringify(ev)}`;
  assert.equal(ev.button, xbutton, msg);
  assert.ok(Math.abs(ev.x - want.x) <= 2, msg);
  assert.ok(Math.abs(ev.y - want.y) <= 2, msg);
  return from;
}

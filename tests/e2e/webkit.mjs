/**
 * WebKit for the end-to-end tests: Debian's WebKitGTK MiniBrowser, driven by its own
 * WebDriver (`WebKitWebDriver`, package webkit2gtk-driver) over plain W3C WebDriver HTTP.
 * It draws on an Xvfb of its own (never the desktop's display, which is what the test
 * streams). Only what the tests need: a session, navigation, scripts, and input actions.
 */
import fs from 'node:fs';
import { freePort, sleep, waitFor } from './harness.mjs';

export const WEBKIT_DRIVER = process.env.KELPIE_WEBKIT_DRIVER || '/usr/bin/WebKitWebDriver';
export const MINIBROWSER = process.env.KELPIE_MINIBROWSER || '/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser';

/** Why this machine cannot run the WebKit tests, or null. */
export function webkitMissing() {
  for (const [file, pkg] of [[WEBKIT_DRIVER, 'webkit2gtk-driver'], [MINIBROWSER, 'libwebkit2gtk-4.1-0']]) {
    try {
      fs.accessSync(file, fs.constants.X_OK);
    } catch {
      return `${file} is missing (Debian package ${pkg}: make deps-test installs it)`;
    }
  }
  return null;
}

/** A WebDriver error as an Error with the driver's own words. */
class WebDriverError extends Error {}

/**
 * Starts an Xvfb and a WebKitWebDriver for it (both tracked by `env`), and opens a
 * MiniBrowser session. Returns the session: {display, version, navigate, execute,
 * executeAsync, actions, close}.
 */
export async function launchWebKit(env, { width = 1280, height = 800 } = {}) {
  const xvfb = env.spawn('webkit-xvfb', 'Xvfb', ['-displayfd', '3', '-screen', '0', `${width}x${height}x24`, '-nolisten', 'tcp'],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'] });
  let text = '';
  const display = await Promise.race([
    new Promise((resolve) => xvfb.child.stdio[3].on('data', (d) => {
      text += d;
      if (text.includes('\n')) resolve(`:${text.trim()}`);
    })),
    sleep(10_000).then(() => { throw new Error(env.why('the WebKit Xvfb did not report a display within 10 s')); }),
  ]);
  const port = await freePort();
  const driver = env.spawn('webkit-driver', WEBKIT_DRIVER, [`--port=${port}`], { env: { DISPLAY: display } });
  const base = `http://127.0.0.1:${port}`;
  const call = async (method, where, body) => {
    const res = await fetch(`${base}${where}`, {
      method,
      headers: { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new WebDriverError(`WebDriver ${method} ${where}: ${json.value?.error}: ${json.value?.message}`);
    return json.value;
  };
  await waitFor('WebKitWebDriver to answer', async () => {
    if (!driver.running) throw new Error(env.why('WebKitWebDriver exited'));
    return (await fetch(`${base}/status`, { signal: AbortSignal.timeout(2000) }).catch(() => null))?.ok;
  }, { timeoutMs: 10_000, intervalMs: 100 });
  const session = await call('POST', '/session', {
    capabilities: {
      alwaysMatch: {
        browserName: 'MiniBrowser',
        'webkitgtk:browserOptions': { binary: MINIBROWSER, args: ['--automation'] },
      },
    },
  });
  const id = session.sessionId;
  const at = (rest) => `/session/${id}${rest}`;
  const wk = {
    display,
    version: session.capabilities.browserVersion,
    navigate: (url) => call('POST', at('/url'), { url }),
    /** Runs `fn` (a function) in the page with `args`; returns its value. */
    execute: (fn, ...args) => call('POST', at('/execute/sync'), { script: `return (${fn}).apply(null, arguments)`, args }),
    /** Runs async `fn` in the page and returns what its promise resolves to. */
    executeAsync: (fn, ...args) => call('POST', at('/execute/async'), {
      script: `const done = arguments[arguments.length - 1];
        Promise.resolve((${fn}).apply(null, Array.prototype.slice.call(arguments, 0, -1))).then(done, (e) => done({ error: String(e) }));`,
      args,
    }),
    actions: (actions) => call('POST', at('/actions'), { actions }),
    async close() {
      await call('DELETE', at('')).catch(() => {});
    },
  };
  env.browsers.push({ pid: driver.pid, close: () => wk.close() });
  return wk;
}

/**
 * The part of a Playwright/puppeteer page that the harness's helpers use (evaluate,
 * focus, keyboard.type, mouse.click), over this WebDriver session.
 */
export function pageOf(wk) {
  return {
    evaluate: (fn, arg) => wk.executeAsync(fn, arg),
    focus: (selector) => wk.execute((s) => document.querySelector(s).focus(), selector),
    keyboard: { type: (text) => wk.actions(typeActions(text)) },
    mouse: { click: (x, y, { button = 'left' } = {}) => wk.actions(clickActions(x, y, button === 'right' ? 2 : 0)) },
  };
}

/** Key actions that type `text`, one key down and up per character. */
export function typeActions(text) {
  const keys = [];
  for (const ch of text) keys.push({ type: 'keyDown', value: ch }, { type: 'keyUp', value: ch });
  return [{ type: 'key', id: 'keyboard', actions: keys }];
}

/** Pointer actions that click `button` (0 left, 2 right) at viewport point (x, y). */
export function clickActions(x, y, button = 0) {
  return [{
    type: 'pointer',
    id: 'mouse',
    parameters: { pointerType: 'mouse' },
    actions: [
      { type: 'pointerMove', x: Math.round(x), y: Math.round(y), origin: 'viewport' },
      { type: 'pointerDown', button },
      { type: 'pointerUp', button },
    ],
  }];
}

/**
 * Firefox for the end-to-end tests: Debian's `firefox-esr`, driven by puppeteer-core over
 * WebDriver BiDi, nothing downloaded. As on every machine that cannot fetch it, this
 * Firefox has no OpenH264 plugin, so its WebRTC offers VP8, VP9 and AV1 only; the prefs
 * below keep it from trying (and from every other background download), so a machine
 * that could fetch it tests the same browser.
 *
 * The pages it opens speak puppeteer's Page API, which the harness's helpers
 * (assertTyping, assertClickLands, videoStats) use in the part it shares with Playwright.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import puppeteer from 'puppeteer-core';
import { waitFor } from './harness.mjs';

export const FIREFOX_BIN = process.env.KELPIE_FIREFOX || '/usr/bin/firefox-esr';

const PREFS = {
  // No plugin download (OpenH264, Widevine) and no other traffic to the outside.
  'media.gmp-manager.updateEnabled': false,
  'media.gmp-manager.url': 'http://127.0.0.1:9/',
  'media.gmp-gmpopenh264.autoupdate': false,
  'app.update.auto': false,
  'extensions.update.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'browser.safebrowsing.update.enabled': false,
  'datareporting.policy.dataSubmissionEnabled': false,
  'toolkit.telemetry.enabled': false,
  // A tab opened by a test may play sound and video without a click, as the Chromium
  // tests' do (autoplay rules themselves are the page's business, see docs/using.md).
  'media.autoplay.default': 0,
  'media.autoplay.blocking_policy': 0,
};

/** Whether this machine can run the Firefox tests (the reason it cannot, else null). */
export function firefoxMissing() {
  try {
    fs.accessSync(FIREFOX_BIN, fs.constants.X_OK);
    return null;
  } catch {
    return `${FIREFOX_BIN} is missing (Debian package firefox-esr: make deps-test installs it)`;
  }
}

/**
 * A headless Firefox with a fresh profile, closed with `env` (registered in its browsers).
 * `executablePath`: another command (netns.mjs's wrapper runs it in a namespace).
 */
export async function launchFirefox(env, { executablePath = FIREFOX_BIN, prefs = {} } = {}) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'kelpie-firefox-'));
  const browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath,
    headless: true,
    userDataDir: profile,
    extraPrefsFirefox: { ...PREFS, ...prefs },
    timeout: 60_000,
    protocolTimeout: 60_000,
  });
  const proc = browser.process();
  const entry = {
    browser,
    pid: proc.pid,
    async close() {
      await browser.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
  env.browsers.push(entry);
  return entry;
}

/**
 * Opens `url` in a new tab of `entry` at `viewport` and collects its console; with
 * `connected` (the default) waits until the page reports 'connected'.
 */
export async function openFirefoxPage(env, entry, url, { viewport, connected = true, timeoutMs = 20_000 } = {}) {
  const page = await entry.browser.newPage();
  if (viewport) await page.setViewport(viewport);
  page.consoleLines = [];
  page.on('console', (m) => page.consoleLines.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => page.consoleLines.push(`pageerror: ${e.message}`));
  await page.goto(url, { timeout: 15_000 });
  if (connected) await waitPage(env, page, 'the page to connect', () => window.kelpie?.state === 'connected', timeoutMs);
  return page;
}

/** Waits until `fn` (run in the page) is truthy; the page's state and console on failure. */
export async function waitPage(env, page, what, fn, timeoutMs = 10_000, arg = null) {
  try {
    await waitFor(what, () => page.evaluate(fn, arg).catch(() => false), { timeoutMs, intervalMs: 100 });
  } catch (err) {
    const state = await page.evaluate(() => [window.kelpie?.state, document.getElementById('status')?.textContent]).catch(() => '?');
    throw new Error(env.why(`${err.message} (state ${JSON.stringify(state)})\n--- page console ---\n${page.consoleLines.join('\n')}`));
  }
}

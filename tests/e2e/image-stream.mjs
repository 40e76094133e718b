// Streams from a Kelpie that something else started (the container image, a `podman kube
// play` pod) into headless Chromium and prints what the page received, as one JSON line.
//
//   node tests/e2e/image-stream.mjs --url http://127.0.0.1:18080/ --user kelpie \
//        --password-file F --fps 30 [--min-ratio 0.9] [--seconds 5]
//
// Exits 0 when the page connected and decoded at least min-ratio × fps frames per second
// (the server's session animates the screen, so frames are really sent), 1 otherwise, 2 on
// bad arguments. Used by `make image-test` (containers/image.sh); not a `node --test` file.

import fs from 'node:fs';
import { chromium } from 'playwright-core';
import { CHROMIUM_ARGS, CHROMIUM_BIN, decodeRate, videoStats } from './harness.mjs';
import { sleep, waitFor } from './procs.mjs';

function parse(argv) {
  const o = { url: null, user: 'kelpie', passwordFile: null, fps: null, minRatio: 0.9, seconds: 5 };
  for (let i = 0; i < argv.length; i++) {
    const v = () => {
      if (i + 1 >= argv.length) throw new Error(`${argv[i]} needs a value`);
      return argv[++i];
    };
    switch (argv[i]) {
      case '--url': o.url = v(); break;
      case '--user': o.user = v(); break;
      case '--password-file': o.passwordFile = v(); break;
      case '--fps': o.fps = Number(v()); break;
      case '--min-ratio': o.minRatio = Number(v()); break;
      case '--seconds': o.seconds = Number(v()); break;
      default: throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!o.url || !(o.fps > 0) || !(o.minRatio > 0 && o.minRatio <= 1) || !(o.seconds > 0 && o.seconds <= 60)) {
    throw new Error('need --url, --fps > 0, --min-ratio in (0,1], --seconds in (0,60]');
  }
  return o;
}

let opts;
try {
  opts = parse(process.argv.slice(2));
} catch (e) {
  console.error(`image-stream: ${e.message}`);
  process.exit(2);
}

const password = opts.passwordFile ? fs.readFileSync(opts.passwordFile, 'utf8').trim() : null;
const browser = await chromium.launch({ executablePath: CHROMIUM_BIN, args: CHROMIUM_ARGS, timeout: 30_000 });
// The URL without its query: a login token there is a secret.
const result = { url: opts.url.split('?')[0], target_fps: opts.fps };
let ok = false;
try {
  const context = await browser.newContext(password ? { httpCredentials: { username: opts.user, password } } : {});
  const page = await context.newPage();
  const lines = [];
  page.on('console', (m) => lines.push(`${m.type()}: ${m.text()}`));
  await page.goto(opts.url, { timeout: 20_000 });
  await page.waitForFunction(() => window.kelpie?.state === 'connected', null, { timeout: 30_000 }).catch((e) => {
    throw new Error(`page never connected: ${e.message}\n${lines.join('\n')}`);
  });
  result.transport = await page.evaluate(() => window.kelpie?.transport?.kind ?? null);
  await waitFor('30 decoded frames', async () => ((await videoStats(page))?.framesDecoded ?? 0) >= 30, {
    timeoutMs: 30_000,
    intervalMs: 200,
  });
  // Let the rate settle past the first keyframe and any start-up bitrate ramp.
  await sleep(1000);
  const { rate, after } = await decodeRate(page, opts.seconds * 1000);
  result.decoded_fps = Math.round(rate * 10) / 10;
  result.size = `${after.frameWidth}x${after.frameHeight}`;
  result.ratio = Math.round((rate / opts.fps) * 100) / 100;
  ok = rate >= opts.minRatio * opts.fps;
  result.verdict = ok ? 'pass' : `fail: below ${opts.minRatio} x ${opts.fps} fps`;
} catch (e) {
  result.verdict = `fail: ${e.message}`;
} finally {
  await browser.close().catch(() => {});
}
console.log(JSON.stringify(result));
process.exit(ok ? 0 : 1);

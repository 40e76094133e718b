/**
 * Stopping with work in flight: SIGTERM while an upload is still sending. Kelpie stops
 * taking new work at once, gives open connections 10 s, then closes them and exits 0 with
 * a log line saying so; the unfinished upload leaves no temporary file behind. And an
 * upload temporary left by a Kelpie that was killed outright is swept at the next start.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import test from 'node:test';
import { startEnv, waitFor } from './harness.mjs';

const parts = (dir) => fs.readdirSync(dir).filter((n) => n.endsWith('.part'));

test('SIGTERM during an upload: bounded wait, exit 0, nothing left behind; stale temporaries swept at start', { timeout: 90_000 }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kelpie-shutdown-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  // A temporary of an upload whose Kelpie died (pid 2^22 + 1 is above any pid_max here).
  const stale = path.join(dir, `.kelpie-upload-${4194305}-1.part`);
  fs.writeFileSync(stale, 'half an upload');
  const env = await startEnv(t, { serverArgs: ['--files-dir', dir] });
  assert.ok(!fs.existsSync(stale), env.why('the stale temporary is still there after start'));
  assert.ok(env.server.lines.some((l) => l.includes('removed unfinished uploads')), env.why('no log line for the sweep'));

  // An upload that sends a little and then nothing more (a slow or stuck client).
  const url = new URL('files/slow.bin', env.url);
  const req = http.request(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' } });
  req.on('error', () => {}); // the server ends it
  req.write(Buffer.alloc(64 * 1024, 7));
  await waitFor('the upload to begin (a temporary file)', () => parts(dir).length === 1, { timeoutMs: 10_000 })
    .catch((err) => { throw new Error(env.why(err.message)); });

  process.kill(env.server.pid, 'SIGTERM');
  const status = await Promise.race([
    env.server.exited,
    new Promise((resolve) => setTimeout(() => resolve('still running 30 s after SIGTERM'), 30_000)),
  ]);
  req.destroy();
  assert.equal(status, 0, env.why(`exit status ${status}`));
  assert.ok(env.server.lines.some((l) => /connections still open 10 s after the stop signal/.test(l)),
    env.why('no log line about the connections it closed'));
  assert.deepEqual(parts(dir), [], 'the interrupted upload left its temporary file');
  assert.ok(!fs.existsSync(path.join(dir, 'slow.bin')), 'an unfinished upload must not appear under its name');
});

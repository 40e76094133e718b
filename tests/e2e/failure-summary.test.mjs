/** The end-of-run failure summary (failure-summary.mjs), fed node:test's own events. */
import assert from 'node:assert/strict';
import test from 'node:test';
import failureSummary, { failureText } from './failure-summary.mjs';

async function* events(list) { yield* list; }

async function collect(list) {
  let out = '';
  for await (const chunk of failureSummary(events(list))) out += chunk;
  return out;
}

test('a wrapped failure shows its own message, bounded in lines and width', () => {
  const inner = new Error(`first line\n\n${'x'.repeat(500)}\n${Array.from({ length: 40 }, (_, i) => `l${i}`).join('\n')}`);
  const wrapped = Object.assign(new Error('test failed'), { cause: inner });
  const lines = failureText(wrapped);
  assert.equal(lines[0], 'first line');
  assert.equal(lines[1].length, 241, 'cut at 240 characters, with an ellipsis');
  assert.equal(lines.length, 24);
  assert.deepEqual(failureText('plain'), ['plain']);
});

test('passing runs print nothing; failures are listed at the end, suites skipped', async () => {
  assert.equal(await collect([{ type: 'test:pass', data: { name: 'a' } }]), '');
  const out = await collect([
    { type: 'test:fail', data: { name: 'reconnects', file: '/x/tests/e2e/reconnect.test.mjs', details: { error: new Error('no state') } } },
    { type: 'test:fail', data: { name: 'a suite', details: { type: 'suite', error: new Error('1 subtest failed') } } },
  ]);
  assert.match(out, /1 failed test\(s\)/);
  assert.match(out, /✗ reconnects \(e2e\/reconnect\.test\.mjs\)\n#     no state\n/);
  assert.doesNotMatch(out, /a suite/);
});

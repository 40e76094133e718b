/**
 * A node:test reporter that prints nothing while tests pass and, at the very end, each
 * failed test's name, file and the head of its error. `make test` runs it after the TAP
 * reporter: a CI log is often read from its last lines only, and there the first failure's
 * cause would otherwise be thousands of lines up, or cut.
 */

/** Lines of an error kept per failed test, and characters per line. */
const MAX_LINES = 24;
const MAX_LINE = 240;

/** The failure's own message: node wraps a test's thrown error in ERR_TEST_FAILURE. */
export function failureText(error) {
  const inner = error?.cause ?? error;
  const text = inner?.message ?? String(inner);
  return text.split('\n')
    .filter((l) => l.trim() !== '')
    .slice(0, MAX_LINES)
    .map((l) => (l.length > MAX_LINE ? `${l.slice(0, MAX_LINE)}…` : l));
}

export default async function* failureSummary(source) {
  const failed = [];
  for await (const event of source) {
    if (event.type !== 'test:fail') continue;
    const { name, file, details } = event.data;
    // A suite fails because a test in it did: the test itself is reported.
    if (details?.type === 'suite') continue;
    failed.push({ name, file, lines: failureText(details?.error) });
  }
  if (failed.length === 0) return;
  yield `\n# ${failed.length} failed test(s), the head of each error (full logs: tests/e2e/logs/):\n`;
  for (const f of failed) {
    yield `# ✗ ${f.name}${f.file ? ` (${f.file.split('/').slice(-2).join('/')})` : ''}\n`;
    for (const line of f.lines) yield `#     ${line}\n`;
  }
}

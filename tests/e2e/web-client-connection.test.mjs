/**
 * Unit tests of the connection overlay's words (web-client/connection.js `describe`): the
 * step named is the first one the attempt's timings lack. In a browser, with blocked
 * media and a killed server: connection.test.mjs.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import { describe as describeStep } from '../../web-client/connection.js';

const upTo = (...steps) => Object.fromEntries(['ws_start', ...steps].map((s, i) => [s, i * 10]));

test('the step named is the first the attempt lacks, on WebRTC', () => {
  assert.equal(describeStep({ timings: upTo() }).step, 'websocket');
  assert.equal(describeStep({ timings: upTo('ws_open') }).step, 'welcome');
  assert.equal(describeStep({ timings: upTo('ws_open', 'welcome'), kind: 'webrtc' }).step, 'offer');
  assert.equal(describeStep({ timings: upTo('ws_open', 'welcome', 'offer', 'answer_sent'), kind: 'webrtc' }).step, 'ice');
  assert.equal(describeStep({ timings: upTo('ws_open', 'welcome', 'offer', 'answer_sent', 'ice_connected'), kind: 'webrtc' }).step, 'dtls');
  assert.equal(describeStep({ timings: upTo('ws_open', 'welcome', 'offer', 'answer_sent', 'ice_connected', 'dtls_connected', 'track'), kind: 'webrtc' }).step, 'first_frame');
});

test('ICE stuck names the firewall, what comes next and what an admin can change', () => {
  const timings = upTo('ws_open', 'welcome', 'offer', 'answer_sent');
  const alone = describeStep({ timings, kind: 'webrtc' });
  assert.match(alone.title, /ICE/);
  assert.match(alone.detail, /UDP/);
  assert.doesNotMatch(alone.detail, /WebSocket transport next/);
  assert.match(alone.admin, /--udp-ports/);
  assert.match(alone.admin, /--turn-url/);
  assert.match(describeStep({ timings, kind: 'webrtc', socketNext: true }).detail, /Trying the WebSocket transport next/);
});

test('a page that had reached the server says it is gone; one that never did, that it cannot reach it', () => {
  assert.equal(describeStep({ timings: upTo(), wasConnected: true }).title, 'The server is gone');
  assert.equal(describeStep({ timings: upTo(), wasConnected: false }).title, 'Cannot reach the server');
  // On the WebSocket transport the steps after the welcome are WebRTC's: only the picture is left.
  assert.equal(describeStep({ timings: upTo('ws_open', 'welcome'), kind: 'websocket' }).step, 'first_frame');
});

test('the badge\'s countdown is told apart from its words (screen readers hear only the words)', async () => {
  const { splitCountdown } = await import('../../web-client/connection.js');
  assert.deepEqual(splitCountdown('reconnecting in 4 s'), ['reconnecting', ' in 4 s']);
  assert.deepEqual(splitCountdown('server full (retrying in 10 s)'), ['server full', ' (retrying in 10 s)']);
  assert.deepEqual(splitCountdown('connected'), ['connected', '']);
});

test('a refused socket is explained when a retry cannot help, and retried otherwise', async () => {
  const { refusalText } = await import('../../web-client/signalling.js');
  assert.match(refusalText(401, 'expired'), /has expired/);
  assert.match(refusalText(401, 'invalid'), /does not open this desktop/);
  assert.match(refusalText(401, 'wrong-password'), /password/);
  assert.match(refusalText(401, 'missing'), /no longer logged in/);
  assert.match(refusalText(401, null), /refused/);
  assert.match(refusalText(421, null), /--public-host/);
  // Up, down, busy or restarting: retry.
  for (const status of [200, 404, 429, 500, 502, 503]) assert.equal(refusalText(status, null), null, String(status));
});

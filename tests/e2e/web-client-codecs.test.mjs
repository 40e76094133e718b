/**
 * Unit tests of the page's codec decisions (web-client/codecs.js and the transport
 * choice in signalling.js): no browser, no server. What Firefox without OpenH264 does
 * end to end is in firefox.test.mjs.
 */
import assert from 'node:assert/strict';
import test from 'node:test';
import {
  answerRejectsVideo, cannotDecodeText, isFirefox, webcodecsDecodesH264, webrtcDecodesH264,
} from '../../web-client/codecs.js';
import { usableTransport, wantedTransport } from '../../web-client/signalling.js';

const receiver = (...mimeTypes) => ({ getCapabilities: (kind) => (kind === 'video' ? { codecs: mimeTypes.map((mimeType) => ({ mimeType })) } : null) });

test("WebRTC decodes H.264 when its receiver lists it, in any case, and is assumed to when it doesn't say", () => {
  const Peer = function RTCPeerConnection() {};
  assert.equal(webrtcDecodesH264(receiver('video/VP8', 'video/H264'), Peer), true);
  assert.equal(webrtcDecodesH264(receiver('video/h264'), Peer), true);
  // Firefox ESR without OpenH264, as it answers.
  assert.equal(webrtcDecodesH264(receiver('video/VP8', 'video/rtx', 'video/VP9', 'video/AV1', 'video/ulpfec', 'video/red'), Peer), false);
  assert.equal(webrtcDecodesH264({ getCapabilities: () => null }, Peer), true);
  assert.equal(webrtcDecodesH264(undefined, Peer), true);
  // No WebRTC at all (Debian's WebKitGTK): nothing to decode with.
  assert.equal(webrtcDecodesH264(undefined, undefined), false);
  assert.equal(webrtcDecodesH264(receiver('video/H264'), undefined), false);
});

test('WebCodecs decodes H.264 only when isConfigSupported says so', async () => {
  const decoder = (answer) => Object.assign(function VideoDecoder() {}, { isConfigSupported: answer });
  assert.equal(await webcodecsDecodesH264(decoder(async (c) => ({ supported: c.codec.startsWith('avc1.') }))), true);
  assert.equal(await webcodecsDecodesH264(decoder(async () => ({ supported: false }))), false);
  assert.equal(await webcodecsDecodesH264(decoder(async () => { throw new TypeError('nope'); })), false);
  assert.equal(await webcodecsDecodesH264(undefined), false); // insecure pages have no VideoDecoder
});

test("an answer rejects the video only with the video m-line's port 0", () => {
  assert.equal(answerRejectsVideo('v=0\r\nm=video 0 UDP/TLS/RTP/SAVPF 0\r\na=inactive\r\n'), true);
  assert.equal(answerRejectsVideo('v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nm=audio 0 UDP/TLS/RTP/SAVPF 0\r\n'), false);
  assert.equal(answerRejectsVideo('v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n'), false);
});

test('the transport is the one this browser decodes on this server, the choice first when both work', () => {
  const both = ['webrtc', 'websocket'];
  assert.equal(usableTransport({ webrtc: true, websocket: true }, both), 'webrtc');
  assert.equal(usableTransport({ webrtc: true, websocket: true }, both, 'websocket'), 'websocket');
  assert.equal(usableTransport({ webrtc: false, websocket: true }, both), 'websocket');
  assert.equal(usableTransport({ webrtc: false, websocket: true }, both, 'webrtc'), 'websocket');
  assert.equal(usableTransport({ webrtc: true, websocket: false }, both, 'websocket'), 'webrtc');
  assert.equal(usableTransport({ webrtc: false, websocket: false }, both), null);
  assert.equal(usableTransport({ webrtc: false, websocket: true }, ['webrtc']), null);
  assert.equal(usableTransport({ webrtc: true, websocket: false }, ['websocket']), null);
  // At connect time: a page without WebRTC H.264 asks for the WebSocket straight away.
  assert.equal(wantedTransport('auto', false, false), 'websocket');
  assert.equal(wantedTransport('auto', false, true), null);
});

test('the cannot-decode message names the fixes that apply to this page', () => {
  const firefoxInsecure = cannotDecodeText({ secure: false, firefox: true });
  assert.match(firefoxInsecure, /^This browser cannot decode H\.264/);
  assert.match(firefoxInsecure, /https:\/\//);
  assert.match(firefoxInsecure, /OpenH264/);
  const chromeSecure = cannotDecodeText({ secure: true, firefox: false });
  assert.doesNotMatch(chromeSecure, /https:|OpenH264/);
  assert.match(chromeSecure, /current Chrome, Edge, Firefox or Safari/);
  assert.match(cannotDecodeText({ secure: false, firefox: true, socketOffered: false }), /--transport auto/);
  assert.doesNotMatch(cannotDecodeText({ secure: false, firefox: true, socketOffered: false }), /https:/);
});

test('Firefox is told apart by its user agent', () => {
  assert.equal(isFirefox('Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0'), true);
  assert.equal(isFirefox('Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36'), false);
});

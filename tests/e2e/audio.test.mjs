/**
 * Sound both ways, with real PulseAudio (the one kelpie starts for its embedded desktop)
 * and real Chromium: a tone played in the desktop reaches every page from one Opus
 * encoder; the controller's microphone reaches the desktop's default source and another
 * participant's does not; PulseAudio killed mid-stream comes back, and audio with it,
 * while video plays on.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { XPROBE_BIN, decodeRate, sleep, startEnv, waitDecoding, waitFor } from './harness.mjs';
import {
  audioStats, fakeMicArgs, peakFrequency, pulseDaemonPid, recordDefaultSource, startEmbedded, toneSession,
  toneFound, toneShare, waitAudioEnergy, waitSound, writeTone,
} from './sound.mjs';

const VIEWPORT = { width: 640, height: 480 };

/** Asserts the page's received audio peaks at `hz` (within two analyser bins). */
async function assertHears(env, page, hz, who) {
  const peak = await peakFrequency(page, 1200);
  assert.ok(!peak.error, env.why(`${who}: ${peak.error}`));
  assert.ok(Math.abs(peak.hz - hz) <= 2 * peak.binHz,
    env.why(`${who} hears a peak at ${peak.hz.toFixed(1)} Hz (${peak.level.toFixed(1)} dB), not ${hz} Hz`));
  return peak;
}

test('a tone played in the desktop reaches two pages from one Opus encoder; video keeps its rate', { timeout: 180_000 }, async (t) => {
  const env = await startEnv(t, { width: 640, height: 480, framerate: 30, startServer: false });
  const marker = path.join(env.logDir, 'pactl-info.txt');
  await startEmbedded(env, { session: toneSession(440, { marker }) });

  // The session sees Kelpie's PulseAudio, with its sink and source as the defaults.
  await waitFor('the session to run pactl info', () => fs.existsSync(marker) && fs.readFileSync(marker, 'utf8').includes('Default Source'));
  const info = fs.readFileSync(marker, 'utf8');
  assert.match(info, /Default Sink: kelpie_out/, env.why(info));
  assert.match(info, /Default Source: kelpie_mic/, env.why(info));

  const a = await env.launchBrowser();
  const b = await env.launchBrowser();
  // A plays the RTP track in the browser's player (the "smooth" setting); B has the
  // default, the low-latency data channel into the page's own player.
  const pageA = await env.openViewer(a, { viewport: VIEWPORT, settings: { sound: 'webrtc' } });
  const pageB = await env.openViewer(b, { viewport: VIEWPORT });
  await waitDecoding(env, pageA, 1);
  await waitDecoding(env, pageB, 1);

  const s = await waitAudioEnergy(env, pageA, 'page A to receive sound on its RTP track');
  // MIME types are case-insensitive; GStreamer's payloader names the codec OPUS.
  assert.equal(s.mimeType?.toLowerCase(), 'audio/opus', env.why(`page A codec ${s.mimeType}`));
  assert.equal(await pageA.evaluate(() => window.kelpie.audio.route), 'rtp');
  const peakA = await assertHears(env, pageA, 440, 'page A');
  t.diagnostic(`page A (RTP): ${s.packetsReceived} Opus packets, peak ${peakA.hz.toFixed(1)} Hz at ${peakA.level.toFixed(1)} dB`);

  assert.equal(await waitSound(env, pageB, 'page B to play sound from its data channel'), 'channel',
    env.why('page B plays the low-latency route'));
  const peakB = await assertHears(env, pageB, 440, 'page B');
  let viaChannel = null;
  await waitFor('page B to have decoded 300 packets from the channel', async () => {
    viaChannel = await pageB.evaluate(() => window.kelpie.audio.stats());
    return viaChannel.packetsDecoded >= 300;
  }, { timeoutMs: 15_000 }).catch((e) => { throw new Error(env.why(`${e.message}: ${JSON.stringify(viaChannel)}`)); });
  // The server holds back B's RTP copy while the channel carries it: while 100 more
  // packets come on the channel, the track gets none (it got only what came before the
  // channel opened).
  const rtpB = await audioStats(pageB);
  const channelBefore = viaChannel.packetsReceived;
  await waitFor('100 more packets on page B\'s channel', async () => {
    viaChannel = await pageB.evaluate(() => window.kelpie.audio.stats());
    return viaChannel.packetsReceived >= channelBefore + 100;
  }, { timeoutMs: 15_000 }).catch((e) => { throw new Error(env.why(`${e.message}: ${JSON.stringify(viaChannel)}`)); });
  const rtpAfter = await audioStats(pageB);
  assert.equal(rtpAfter?.packetsReceived ?? 0, rtpB?.packetsReceived ?? 0,
    env.why(`page B's RTP track kept receiving (${rtpB?.packetsReceived} → ${rtpAfter?.packetsReceived}) while its channel carried the sound`));
  assert.ok(env.server.lines.some((l) => l.includes('sound goes over the page\'s data channel')),
    env.why('the log says the sound moved to the data channel'));
  t.diagnostic(`page B (channel): ${viaChannel.packetsDecoded} packets decoded, ${viaChannel.packetsLost} lost, `
    + `buffered ${viaChannel.bufferedMs} ms (target ${viaChannel.targetMs}), peak ${peakB.hz.toFixed(1)} Hz; its RTP track got ${rtpB?.packetsReceived ?? 0}`);
  const h = (await env.health()).body;
  assert.equal(h.audio.state, 'playing', env.why(JSON.stringify(h.audio)));
  assert.equal(h.audio.opus_encoders, 1, env.why(`two listeners, ${h.audio.opus_encoders} Opus encoders`));
  assert.equal(h.viewers, 2);

  // Video keeps its frame rate while sound plays.
  const rate = await decodeRate(pageA, 3000);
  t.diagnostic(`video with sound: ${rate.rate.toFixed(1)} fps`);
  assert.ok(rate.rate >= 0.8 * env.framerate, env.why(`video decodes ${rate.rate.toFixed(1)} fps with sound on`));
  assert.equal(await pageA.evaluate(() => window.kelpie.audio?.state), 'playing');

  // Mute and volume are this browser's: set, reload, still set; the player follows them.
  await pageA.evaluate(() => { window.kelpie.audio.setVolume(0.3); window.kelpie.audio.setMuted(true); });
  const consoleAfterReload = [];
  pageA.on('console', (m) => consoleAfterReload.push(`${m.type()}: ${m.text()}`));
  await pageA.reload();
  // A bound on waiting for the event, not a timing claim: the old participant's branch
  // is torn down (up to 2 s per track) before the new one is offered, slower on a busy host.
  await waitFor('the reloaded page to connect', () => pageA.evaluate(() => window.kelpie?.state === 'connected'), { timeoutMs: 45_000 })
    .catch(async (err) => {
      const state = await pageA.evaluate(() => [window.kelpie?.state, document.getElementById('status')?.textContent]).catch(() => '?');
      throw new Error(env.why(`${err.message} (state ${JSON.stringify(state)})\n--- page console ---\n${consoleAfterReload.join('\n')}`));
    });
  const prefs = await pageA.evaluate(() => ({
    muted: window.kelpie.audio.muted,
    volume: window.kelpie.audio.volume,
    pressed: document.getElementById('mute')?.getAttribute('aria-pressed'),
    elementMuted: window.kelpie.audio.element.muted || window.kelpie.audio.element.volume === 0,
  }));
  assert.deepEqual(prefs, { muted: true, volume: 0.3, pressed: 'true', elementMuted: true }, env.why(JSON.stringify(prefs)));
});

test('PulseAudio killed mid-stream: video plays on, the log says why, audio returns', { timeout: 180_000 }, async (t) => {
  const env = await startEnv(t, { width: 640, height: 480, framerate: 30, startServer: false });
  const { proc } = await startEmbedded(env, { session: toneSession(440) });
  const browser = await env.launchBrowser();
  const page = await env.openViewer(browser, { viewport: VIEWPORT });
  await waitDecoding(env, page, 1);
  await waitSound(env, page, 'sound before the kill');

  const pid = pulseDaemonPid(proc.pid);
  assert.ok(pid, env.why('kelpie runs a pulseaudio child'));
  process.kill(pid, 'SIGKILL');

  await env.waitHealth('/health to report audio unavailable', (h) => h.audio?.state === 'unavailable', 15_000);
  const frames = (await waitDecoding(env, page, 1)).framesDecoded;
  await waitDecoding(env, page, frames + 30, 10_000); // video goes on meanwhile
  assert.ok(proc.lines.some((l) => l.includes('embedded PulseAudio exited')), env.why('the log says PulseAudio exited'));
  assert.ok(proc.lines.some((l) => /audio: .*video goes on/.test(l)), env.why('the log says audio stopped and video goes on'));

  const back = await env.waitHealth('/health to report audio playing again',
    (h) => h.audio?.state === 'playing' && h.audio.recoveries >= 1, 30_000);
  assert.ok(pulseDaemonPid(proc.pid) && pulseDaemonPid(proc.pid) !== pid, env.why('a new pulseaudio runs'));
  await waitSound(env, page, 'sound after PulseAudio came back', 20_000);
  await assertHears(env, page, 440, 'the page after the restart');
  assert.equal(await page.evaluate(() => window.kelpie.state), 'connected', 'no reconnect was needed');
  t.diagnostic(`audio back after ${back.audio.recoveries} recovery; ${back.audio.packets} packets`);
});

test('the controller\'s microphone reaches the desktop\'s default source; another participant\'s does not', { timeout: 180_000 }, async (t) => {
  const env = await startEnv(t, { width: 640, height: 480, framerate: 30, startServer: false });
  const { pulseServer } = await startEmbedded(env, { session: `${XPROBE_BIN} --animate 30 & sleep infinity` });
  const toneA = path.join(env.logDir, 'mic-880.wav');
  const toneB = path.join(env.logDir, 'mic-660.wav');
  writeTone(toneA, 880);
  writeTone(toneB, 660);

  const a = await env.launchBrowser({ args: fakeMicArgs(toneA) });
  const pageA = await env.openViewer(a, { viewport: VIEWPORT });
  await waitDecoding(env, pageA, 1);
  const b = await env.launchBrowser({ args: fakeMicArgs(toneB) });
  const pageB = await env.openViewer(b, { viewport: VIEWPORT });
  await waitDecoding(env, pageB, 1);
  await env.waitHealth('A to hold control', (h) => h.viewers === 2 && h.control);

  // Without control, the page refuses to start the microphone.
  const refusedInPage = await pageB.evaluate(async () => {
    try { await window.kelpie.mic.start(); return 'started'; } catch (e) { return window.kelpie.mic.state; }
  });
  assert.equal(refusedInPage, 'no-control');
  assert.equal(await pageB.evaluate(() => document.getElementById('mic')?.getAttribute('aria-disabled')), 'true',
    'the microphone button is disabled without control');

  // A holds control: its 880 Hz tone is what desktop programs record.
  await pageA.evaluate(() => window.kelpie.mic.start());
  assert.equal(await pageA.evaluate(() => window.kelpie.mic.state), 'on');
  await env.waitHealth('microphone packets to reach the desktop', (h) => h.audio.mic_accepted > 50, 15_000);
  const heard = toneFound(await recordDefaultSource(pulseServer, 1.5), 880);
  t.diagnostic(`default source while A speaks: 880 Hz share ${heard.share.toFixed(2)}, others ${heard.others.map((x) => x.toFixed(3))}, strongest ${heard.dominant.hz} Hz`);
  assert.ok(heard.found, env.why(`the desktop records A's tone: ${JSON.stringify(heard)}`));

  // B, without control, forces its microphone onto its audio sender: the server drops it.
  await pageA.evaluate(() => window.kelpie.mic.stop());
  const refusedBefore = (await env.health()).body.audio.mic_refused;
  const forced = await pageB.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const tr = window.kelpie.pc.getTransceivers().find((x) => x.receiver.track?.kind === 'audio');
    if (!tr) return 'no audio transceiver';
    await tr.sender.replaceTrack(stream.getAudioTracks()[0]);
    return tr.currentDirection;
  });
  assert.equal(forced, 'sendrecv', env.why(`B's audio transceiver: ${forced}`));
  await env.waitHealth('the server to refuse B\'s microphone', (h) => h.audio.mic_refused > refusedBefore + 50, 15_000);
  const quiet = await recordDefaultSource(pulseServer, 1.5);
  const share660 = toneShare(quiet, 660);
  t.diagnostic(`default source while B forces its microphone: 660 Hz share ${share660.toFixed(3)}`);
  assert.ok(share660 < 0.05, env.why(`B's tone must not reach the desktop (share ${share660.toFixed(3)})`));
  await sleep(100);
});

test('on the WebSocket transport the page plays the tone through WebCodecs and its microphone reaches the desktop', { timeout: 180_000 }, async (t) => {
  const env = await startEnv(t, { width: 640, height: 480, framerate: 30, startServer: false });
  const { pulseServer } = await startEmbedded(env, { session: toneSession(440), args: ['--transport', 'websocket'] });
  const wav = path.join(env.logDir, 'mic-880.wav');
  writeTone(wav, 880);
  const browser = await env.launchBrowser({ args: fakeMicArgs(wav) });
  const page = await env.openViewer(browser, { viewport: VIEWPORT });
  await waitDecoding(env, page, 1);
  assert.equal(await page.evaluate(() => window.kelpie.transport?.kind), 'websocket');

  let last = null;
  await waitFor('the socket player to decode sound', async () => {
    last = await page.evaluate(() => window.kelpie.audio.stats());
    return last && last.packetsDecoded > 100;
  }, { timeoutMs: 15_000 }).catch((e) => { throw new Error(env.why(`${e.message}; ${JSON.stringify(last)}`)); });
  assert.equal(await page.evaluate(() => window.kelpie.audio.state), 'playing');
  const peak = await assertHears(env, page, 440, 'the socket page');
  t.diagnostic(`socket audio: ${last.packetsDecoded} packets decoded, peak ${peak.hz.toFixed(1)} Hz, buffered ${last.bufferedMs} ms`);

  // The microphone goes up the same socket as kind-5 frames.
  await page.evaluate(() => window.kelpie.mic.start());
  await env.waitHealth('socket microphone packets to reach the desktop', (h) => h.audio.mic_accepted > 50, 15_000);
  const heard = toneFound(await recordDefaultSource(pulseServer, 1.5), 880);
  t.diagnostic(`default source from the socket microphone: 880 Hz share ${heard.share.toFixed(2)}, others ${heard.others.map((x) => x.toFixed(3))}, strongest ${heard.dominant.hz} Hz`);
  assert.ok(heard.found, env.why(`the desktop records the socket page's tone: ${JSON.stringify(heard)}`));
});

test('--audio off offers no audio and the page says so', { timeout: 120_000 }, async (t) => {
  const env = await startEnv(t, { width: 640, height: 480, framerate: 30, startServer: false });
  await startEmbedded(env, { session: toneSession(440), args: ['--audio', 'off'] });
  const browser = await env.launchBrowser();
  const page = await env.openViewer(browser, { viewport: VIEWPORT });
  await waitDecoding(env, page, 1);
  assert.equal(await audioStats(page), null, 'no inbound audio');
  assert.equal((await env.health()).body.audio.state, 'off');
  assert.equal(await page.evaluate(() => window.kelpie.audio?.state), 'off');
  assert.ok(!env.server.lines.some((l) => l.includes('started embedded PulseAudio')), 'no PulseAudio started');
});

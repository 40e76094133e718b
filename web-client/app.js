/**
 * Boot: connects the signalling session to the video element, the status badge and
 * the input handlers, and exposes `window.kelpie` for tests and debugging.
 */
import { Session, signallingUrl } from './signalling.js';
import { attachInput } from './input.js';
import * as channel from './channel.js';
import { attachClipboard } from './clipboard.js';
import { attachTouch } from './touch.js';
import { attachSettings } from './settings.js';
import * as files from './files.js';
import { attachCursor, cursorInfo } from './cursor.js';

const video = document.getElementById('screen');
const badge = document.getElementById('status');
const startButton = document.getElementById('start');

let role = null;
const send = channel.send;

function showState(state, detail) {
  badge.dataset.state = state;
  if (state === 'connected') badge.textContent = role === 'viewer' ? 'connected (view only)' : 'connected';
  else badge.textContent = detail || state;
}

/** Autoplay can still be refused (policy, power saving): then ask for a click. */
async function play() {
  try {
    await video.play();
    startButton.hidden = true;
  } catch (err) {
    // AbortError only means a newer srcObject replaced this one; that one plays.
    if (err.name !== 'AbortError') startButton.hidden = false;
  }
}

startButton.addEventListener('click', () => {
  video.focus({ preventScroll: true });
  play();
});

const session = new Session(signallingUrl(), {
  onState: showState,
  onWelcome: (welcome) => { role = welcome.role; },
  onTrack: (stream) => {
    video.srcObject = stream;
    play();
    // When the first picture reaches the screen: the last step of `kelpie.timings`.
    const attempt = session.timings;
    video.requestVideoFrameCallback?.(() => { attempt.first_frame ??= Math.round(performance.now()); });
  },
  onChannel: channel.setChannel,
});

channel.onOpen(() => {
  session.mark('channel_open');
  const c = channel.current();
  // The first keyframe can arrive before our decoder is ready; if no picture
  // shows up soon, ask for another rather than wait for the next periodic one.
  setTimeout(() => {
    if (channel.current() === c && !video.videoWidth) send({ t: 'kf' });
  }, 1000);
});

const input = attachInput(video, send);
const touch = attachTouch(video, send, input);
const settings = attachSettings(video, input);
const clipboard = attachClipboard(video, input.keyboard);
attachCursor(video);

window.kelpie = {
  get pc() { return session.pc; },
  get state() { return session.state; },
  /** ms since page start: ws_start, ws_open, welcome, offer, answer_sent, ice_connected,
   *  dtls_connected, track, first_frame (of the current connection attempt). */
  get timings() { return session.timings; },
  get channel() { return channel.current(); },
  input,
  touch,
  settings,
  clipboard,
  files,
  cursor: cursorInfo,
  video,
};

session.start();

/**
 * Boot: connects the signalling session to the video element, the status badge and
 * the input handlers, and exposes `window.kelpie` for tests and debugging.
 */
import { Session, signallingUrl } from './signalling.js';
import { attachInput } from './input.js';

const video = document.getElementById('screen');
const badge = document.getElementById('status');
const startButton = document.getElementById('start');

let channel = null;
let role = null;

/** Sends one input message; input while disconnected is dropped, not queued. */
function send(msg) {
  if (channel && channel.readyState === 'open') channel.send(JSON.stringify(msg));
}

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
  },
  onChannel: (c) => {
    channel = c;
    if (!c) return;
    c.addEventListener('open', () => {
      // The first keyframe can arrive before our decoder is ready; if no picture
      // shows up soon, ask for another rather than wait for the next periodic one.
      setTimeout(() => {
        if (channel === c && !video.videoWidth) send({ t: 'kf' });
      }, 1000);
    });
  },
});

attachInput(video, send);

window.kelpie = {
  get pc() { return session.pc; },
  get state() { return session.state; },
  get channel() { return channel; },
  video,
};

session.start();

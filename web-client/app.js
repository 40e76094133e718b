/**
 * Boot, the composition root: connects the signalling session to the video element, the
 * status badge, the room state and the input handlers, and exposes `window.kelpie` for
 * tests and debugging.
 *
 * Control (room.js): every module that sends input or changes the shared stream gets a
 * `send` gated on this page holding control, so a participant without it sends nothing
 * the server would refuse. Gaining control (or a fresh channel while holding it) is the
 * one moment this page tells the server its size, stream settings and clipboard.
 * The microphone (mic.js) follows control too: only the controller may talk.
 */
import { Session } from './signalling.js';
import { attachInput } from './input.js';
import * as channel from './channel.js';
import { attachClipboard } from './clipboard.js';
import { attachTouch } from './touch.js';
import { attachSettings, loadSettings } from './settings.js';
import * as files from './files.js';
import { attachCursor, cursorInfo } from './cursor.js';
import { Room, badgeText, gateSend, refusedHint } from './room.js';
import { attachPeople } from './people.js';
import { attachStatsOverlay } from './stats-overlay.js';
import { afterLoad, keepKeys } from './dom.js';
import { showNotice } from './notice.js';
import { attachAudio } from './audio.js';
import { SocketAudio } from './socket-audio.js';
import { attachMic } from './mic.js';
import { onFirstFrame } from './first-frame.js';
import { attachConnection, splitCountdown } from './connection.js';
import { attachPanels } from './panels.js';
import { attachToolbar } from './toolbar.js';
import { attachExtraKeys } from './extra-keys.js';
import { attachGamepads } from './gamepad.js';

/** The "you are only watching" hint comes back at most this often. */
const REFUSED_HINT_EVERY_MS = 30_000;

const video = document.getElementById('screen');
const badge = document.getElementById('status');
const startButton = document.getElementById('start');
const room = new Room();

let lastHint = -Infinity;
const send = gateSend(channel.send, () => room.hasControl(), (msg) => {
  const hint = refusedHint(msg, room.role);
  const now = performance.now();
  if (hint && now - lastHint >= REFUSED_HINT_EVERY_MS) {
    lastHint = now;
    showNotice(hint);
  }
});

let shown = { state: 'connecting', detail: '' };
/** The last STATE_HISTORY state changes, {state, at (ms since page start)}: what tests and
 *  bug reports read to see what the page went through, without sampling it. */
const STATE_HISTORY = 50;
const stateHistory = [];
/** The connection overlay (connection.js), made once the session exists. */
let connection = null;
function showState(state, detail) {
  if (state !== shown.state || stateHistory.length === 0) {
    stateHistory.push({ state, at: Math.round(performance.now()) });
    if (stateHistory.length > STATE_HISTORY) stateHistory.shift();
  }
  shown = { state, detail };
  // A lost connection is a lost seat: the next welcome and room tell us where we stand.
  if (state === 'reconnecting' || state === 'error') room.clear();
  renderBadge();
  connection?.update();
}

/** This run of the server, from the first welcome: another one later means a restart. */
let boot = null;
let restarts = 0;
function checkBoot(welcome) {
  if (typeof welcome.boot !== 'string' || !welcome.boot) return;
  if (boot && welcome.boot !== boot) {
    restarts += 1;
    showNotice('The desktop was restarted since this page last saw it: this is a new session.', 15_000);
  }
  boot = welcome.boot;
}

function renderBadge() {
  const { state, detail } = shown;
  const text = state === 'connected' ? badgeText(room.room, room.role) : detail || state;
  badge.dataset.state = state;
  // Only on change: the badge is a live region and would be read out again. The countdown
  // is shown but hidden from screen readers, so that they hear the state change once,
  // not a number every second.
  if (badge.textContent === text) return;
  const [words, countdown] = splitCountdown(text);
  if (badge.firstChild?.nodeType === Node.TEXT_NODE && badge.firstChild.data === words && badge.childNodes.length === 2) {
    badge.lastChild.textContent = countdown;
    return;
  }
  const tail = document.createElement('span');
  tail.setAttribute('aria-hidden', 'true');
  tail.textContent = countdown;
  badge.replaceChildren(document.createTextNode(words), tail);
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

const session = new Session(location.href, {
  onState: showState,
  onWelcome: (welcome) => {
    checkBoot(welcome);
    settings?.setLimits(welcome.stream);
    room.setWelcome(welcome);
    files.setRole(room.role);
  },
  onRoom: (msg) => {
    if (!room.update(msg)) console.warn('kelpie: ignoring a malformed room message');
  },
  onNotice: (msg) => showNotice(msg.text),
  onTrack: (stream) => {
    // When the first picture reaches the screen: the last step of `kelpie.timings`.
    const attempt = session.timings;
    afterLoad(() => {
      video.srcObject = stream;
      play();
      onFirstFrame(video, () => {
        attempt.first_frame ??= Math.round(performance.now());
        connection?.update();
      });
    });
  },
  onChannel: channel.setChannel,
  onMediaEnd: () => connection?.keepLastFrame(),
  onTransport: () => settings?.showTransport(),
  onAudioTrack: (track) => afterLoad(() => audio.playTrack(track)),
  onAudioFrame: (frame, via) => audio.socketFrame(frame, via),
  wantsChannelSound: () => settings?.settings.sound === 'low-latency' && SocketAudio.supported(),
  onAudioRoute: (route) => {
    audio.setRoute(route);
    mic.setRoute(route);
  },
}, { transport: loadSettings().transport });

// Why there is no picture, when there is none for a while (after the session: it reads it).
connection = attachConnection({ session, video, retry: () => session.retryNow() });
// Touch screens' Esc, Tab, Ctrl, Alt, Super and arrows; its latches end with the keyboard's next key.
const extraKeys = attachExtraKeys(send);
const input = attachInput(video, extraKeys.wrap(send));
const touch = attachTouch(video, send, input);
const settings = attachSettings(video, input, send, {
  onTransport: (choice) => session.setChoice(choice),
  transport: () => session.transport,
});
const clipboard = attachClipboard(video, input.keyboard, send);
attachCursor(video);
const gamepads = attachGamepads({ send, hasControl: () => room.hasControl(), notice: showNotice });

/** This page now holds control on an open channel: make the remote side match it. */
function controlStarted() {
  settings.resend();
  clipboard.resync();
  gamepads.resend();
}

channel.onOpen(() => {
  session.mark('channel_open');
  const c = channel.current();
  // The first keyframe can arrive before our decoder is ready; if no picture
  // shows up soon, ask for another rather than wait for the next periodic one.
  setTimeout(() => {
    if (channel.current() === c && !video.videoWidth) send({ t: 'kf' });
  }, 1000);
  if (room.hasControl()) controlStarted();
});

room.onChange((r, { gained, lost }) => {
  // Control went elsewhere: the server released what we held, so only forget it here
  // (an `r` from us would be refused now), and leave pointer lock, whose motion goes nowhere.
  if (lost) {
    input.forgetHeld();
    gamepads.forget();
    if (input.pointerLocked) input.togglePointerLock();
  }
  if (gained && channel.isOpen()) controlStarted();
  settings.setControl(r.hasControl());
  mic.setControl(r.hasControl());
  clipboard.setAccess({ role: r.role, control: r.hasControl() });
  renderBadge();
});

/** The People panel's buttons: control requests go over the signalling socket. */
function act(action, to) {
  // Giving control away: release our keys and buttons while the server still takes `r`.
  if ((action === 'release' || action === 'grant') && room.hasControl()) input.releaseAll();
  return session.control(action, to);
}
const people = attachPeople({ room, act });
// Any participant may look at its own connection and test it: the channel's own send, ungated.
const statsOverlay = attachStatsOverlay({
  video,
  keyboard: input.keyboard,
  channel,
  transport: () => session.transport,
  pc: () => session.pc,
  videoStats: () => session.videoStats(),
});
// Sound and microphone, last on the toolbar; the session's audio hooks above feed them.
const audio = attachAudio({
  element: document.getElementById('remote-audio'),
  notice: showNotice,
  pc: () => session.pc,
});
const mic = attachMic({
  hasControl: () => room.hasControl(),
  route: () => session.audioRoute,
  sender: () => session.audioSender,
  sendFrame: (bytes, maxBuffered) => session.sendFrame(bytes, maxBuffered),
  notice: showNotice,
});
// Toolbar buttons are operated with Enter and Space, which must not reach the desktop.
const toolbar = document.getElementById('toolbar');
if (toolbar) keepKeys(toolbar);
// The handle that collapses the toolbar to a screen edge (first on it).
const toolbarState = toolbar ? attachToolbar(toolbar, { settingsPanel: document.getElementById('settings-panel') }) : null;
// One panel at a time, Esc and clicks outside close it, Ctrl+Shift+M reaches the toolbar.
attachPanels({ keyboard: input.keyboard, toolbar });
settings.setControl(false);

window.kelpie = {
  get pc() { return session.pc; },
  get state() { return session.state; },
  /** The page's last state changes, oldest first: [{state, at}] (at: ms since page start). */
  get stateHistory() { return stateHistory.slice(); },
  /** True once the page found it cannot show the desktop here and stopped trying. */
  get stopped() { return session.stopped; },
  /** A fresh connection attempt now (what the overlay's Retry does). */
  reconnect: () => session.retryNow(),
  /** The connection overlay's step ('server', 'websocket', 'welcome', 'offer', 'ice', 'dtls',
   *  'first_frame'), null while it is hidden; and how many server restarts this page saw. */
  get connection() { return { step: connection.step, restarts }; },
  /** ms since page start: ws_start, ws_open, welcome, offer, answer_sent, ice_connected,
   *  dtls_connected, track, first_frame (of the current connection attempt). */
  get timings() { return session.timings; },
  get channel() { return channel.current(); },
  /** The WebSocket transport's decoder (socket-media.js), null on WebRTC; for diagnostics. */
  get socketMedia() { return session.media; },
  /** {kind: 'webrtc'|'websocket', reason}: what carries media now and why. */
  get transport() { return session.transport; },
  /** Inbound video statistics of the transport in use (inbound-rtp fields). */
  videoStats: () => session.videoStats(),
  /** The server's last `room` message as kept (room.js normaliseRoom), null before one. */
  get room() { return room.room; },
  /** 'owner', 'guest' or 'viewer' (null before the welcome). */
  get role() { return room.role; },
  /** Whether this page holds the keyboard and mouse. */
  get hasControl() { return room.hasControl(); },
  input,
  touch,
  settings,
  /** The touch screens' extra-keys row: {element, latched}. */
  extraKeys,
  /** The toolbar's handle: {collapse(bool), setEdge(edge), state}. */
  toolbar: toolbarState,
  clipboard,
  files,
  people,
  /** The browser's pads as sent to the desktop: {connected, messages, resend()}. */
  gamepads,
  /** The statistics overlay: {open, latest, history, net, selfTest, runSelfTest(), toggle()}. */
  statsOverlay,
  cursor: cursorInfo,
  video,
  /** The desktop's sound: {state: 'off'|'blocked'|'playing', muted, volume, setMuted(bool),
   *  setVolume(0..1), element (the WebRTC <audio>), stats()}. */
  audio: audio.api,
  /** The microphone: {state: 'off'|'on'|'denied'|'unavailable'|'no-control', reason,
   *  start(): Promise<void>, stop()}. */
  mic: mic.api,
};

// A #token= link is swapped for the login cookie first (login.js), which reloads the page.
if (window.kelpieLogin) await window.kelpieLogin;
session.start();

/**
 * The microphone button (`#mic`, aria-pressed while on): this page's voice into the
 * desktop. Only the participant holding control may send it (the server enforces this
 * too), so the button is disabled without control and an active microphone stops the
 * moment control is lost.
 *
 * Permission is asked only when the button is pressed, with the browser's own echo
 * cancellation, noise suppression and gain control (plain `{audio: true}`): a desktop's
 * sound comes back out of the same laptop's speakers, which is what they are tuned for.
 *
 * Transport: on WebRTC the track goes to the audio transceiver's sender (`replaceTrack`,
 * no renegotiation: signalling.js answered the audio m-line sendrecv); on the WebSocket
 * mic-encoder.js encodes it and the packets go up as kind-5 frames. When media moves
 * between the two, the same track moves with it.
 *
 * "Disabled" is `aria-disabled`, not `disabled`: the button stays focusable and
 * clickable, so its title can be read and a click can say why (a notice). The button is
 * hidden while no route carries sound (a server without audio, or before the offer).
 */
import { el } from './dom.js';
import { micFrame } from './socket-media.js';
import { MicEncoder } from './mic-encoder.js';

/** A socket holding more than this unsent drops microphone packets: late speech is noise. */
const MAX_SOCKET_BUFFER = 256 * 1024;

export const MIC_REASONS = Object.freeze({
  insecure: 'The microphone needs HTTPS (or localhost): ask your administrator to serve Kelpie over HTTPS',
  noCapture: 'This browser offers this page no microphone (no getUserMedia)',
  noEncoder: 'This browser cannot encode the microphone for the WebSocket transport (no WebCodecs AudioEncoder); '
    + 'over WebRTC it can',
  noAudio: 'This desktop has no sound channel, so it takes no microphone',
  noControl: 'Only the participant in control of the keyboard and mouse can use the microphone (see "People")',
  denied: 'Microphone permission was denied: allow it in the browser\'s site settings, then press the button again',
  on: 'Microphone on: press to turn it off',
  off: 'Microphone: press to talk into the desktop',
});

/**
 * What the button shows and `kelpie.mic.state` says, from the facts:
 * `secure` (isSecureContext), `capture` (getUserMedia exists), `encoder` (MicEncoder
 * works here), `route` (where audio goes: 'webrtc', 'websocket' or null), `control`,
 * `active` (a track is captured), `denied` (the last ask was refused).
 * Returns {state: 'off'|'on'|'denied'|'unavailable'|'no-control', reason}.
 */
export function micState({ secure, capture, encoder, route, control, active, denied }) {
  if (!secure) return { state: 'unavailable', reason: MIC_REASONS.insecure };
  if (!capture) return { state: 'unavailable', reason: MIC_REASONS.noCapture };
  if (!control) return { state: 'no-control', reason: MIC_REASONS.noControl };
  // A live microphone stays on while media changes transport (route null in between).
  if (active) return { state: 'on', reason: MIC_REASONS.on };
  if (!route) return { state: 'unavailable', reason: MIC_REASONS.noAudio };
  if (route === 'websocket' && !encoder) return { state: 'unavailable', reason: MIC_REASONS.noEncoder };
  if (denied) return { state: 'denied', reason: MIC_REASONS.denied };
  return { state: 'off', reason: MIC_REASONS.off };
}

/** A getUserMedia failure other than a refusal, in words a user can act on. */
export function captureError(err) {
  switch (err?.name) {
    case 'NotFoundError':
    case 'OverconstrainedError':
      return 'No microphone found: plug one in, or pick one in the browser\'s site settings';
    case 'NotReadableError':
    case 'AbortError':
      return 'The microphone could not be opened: another application may be using it';
    default:
      return `The microphone could not be opened: ${err?.message || err}`;
  }
}

/**
 * Builds the button. `hasControl()`, `route()` and `sender()` (the WebRTC audio sender, or
 * null) are read when needed; `sendFrame(bytes, maxBuffered)` sends a binary frame on the
 * signalling socket and returns false when it did not go out; `notice(text)` tells the user.
 * app.js calls `setControl` when control changes and `setRoute` when the audio route does.
 */
export function attachMic({ hasControl, route, sender, sendFrame, notice }) {
  const secure = globalThis.isSecureContext === true;
  const capture = typeof navigator !== 'undefined' && typeof navigator.mediaDevices?.getUserMedia === 'function';
  let track = null;
  let denied = false;
  /** The running getUserMedia, so a second press does not ask twice. */
  let pending = null;
  /** Bumped by stop(): a getUserMedia that resolves after it was stopped is let go. */
  let generation = 0;
  /** Where the track goes now: {close()}. */
  let outlet = null;
  let seq = 0;

  const button = el('button', { type: 'button', id: 'mic', 'aria-label': 'Microphone', 'aria-pressed': 'false',
    textContent: '🎤' });
  document.getElementById('toolbar')?.append(button);

  const current = () => micState({ secure, capture, encoder: MicEncoder.supported(), route: route(),
    control: hasControl(), active: !!track, denied });

  function render() {
    const { state, reason } = current();
    const usable = state === 'off' || state === 'on' || state === 'denied';
    // A desktop without sound (`--audio off`) shows no microphone at all, as before sound.
    button.hidden = !track && !route();
    button.dataset.state = state;
    button.setAttribute('aria-pressed', String(state === 'on'));
    button.setAttribute('aria-disabled', String(!usable));
    button.title = reason;
  }

  function detach() {
    outlet?.close();
    outlet = null;
  }

  /** Sends the track the way the current route carries audio (nothing without a route). */
  async function attach() {
    detach();
    const t = track;
    if (!t) return;
    const r = route();
    if (r === 'webrtc') {
      const s = sender();
      if (!s) return;
      outlet = { close: () => s.replaceTrack(null).catch(() => {}) };
      await s.replaceTrack(t);
    } else if (r === 'websocket' && MicEncoder.supported()) {
      const encoder = new MicEncoder({
        track: t,
        onPacket: (packet, tsUs) => { sendFrame(micFrame(seq++, tsUs, packet), MAX_SOCKET_BUFFER); },
        onError: (err) => {
          if (track !== t) return;
          stop();
          notice(`Microphone off: ${err.message}`);
        },
      });
      outlet = { close: () => encoder.close() };
      await encoder.start();
    }
  }

  function stop() {
    generation++;
    detach();
    track?.stop();
    track = null;
    render();
  }

  async function ask() {
    const mine = generation;
    let stream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      if (err?.name === 'NotAllowedError' || err?.name === 'SecurityError') {
        denied = true;
        throw new Error(MIC_REASONS.denied);
      }
      throw new Error(captureError(err));
    }
    const t = stream.getAudioTracks()[0];
    // Stopped, or control lost, while the browser asked: nothing may go out.
    if (!t || mine !== generation || !hasControl()) {
      stream.getTracks().forEach((x) => x.stop());
      throw new Error(t && !hasControl() ? MIC_REASONS.noControl : 'The microphone was turned off');
    }
    denied = false;
    track = t;
    t.addEventListener('ended', () => {
      if (track !== t) return;
      stop();
      notice('The microphone stopped: it was unplugged, or its permission was withdrawn.');
    });
    render();
    try {
      await attach();
    } catch (err) {
      if (track === t) stop();
      throw err;
    }
  }

  /** Turns the microphone on; rejects (with the reason) when it cannot be. */
  function start() {
    const { state, reason } = current();
    if (state === 'on') return Promise.resolve();
    if (state !== 'off' && state !== 'denied') return Promise.reject(new Error(reason));
    pending ??= ask().finally(() => {
      pending = null;
      render();
    });
    return pending;
  }

  button.addEventListener('click', () => {
    const { state, reason } = current();
    if (state === 'on') return stop();
    if (state !== 'off' && state !== 'denied') return notice(reason);
    start().catch((err) => notice(err.message));
  });

  /** Control came or went: without it the microphone stops at once. */
  function setControl(has) {
    if (!has && (track || pending)) {
      const wasOn = !!track;
      stop();
      if (wasOn) notice('Microphone off: this page no longer holds control.');
    }
    render();
  }

  /** The audio route changed (new peer connection, other transport): follow it. */
  function setRoute() {
    render();
    if (!track) return;
    const t = track;
    attach().catch((err) => {
      if (track !== t) return;
      stop();
      notice(`Microphone off: ${err.message || err}`);
    });
  }

  render();

  const api = {
    /** 'off', 'on', 'denied', 'unavailable' (no HTTPS, no getUserMedia, no encoder, no sound), 'no-control'. */
    get state() { return current().state; },
    /** Why the button is as it is, as its title says. */
    get reason() { return current().reason; },
    start,
    stop,
  };
  return { api, setControl, setRoute, element: button };
}

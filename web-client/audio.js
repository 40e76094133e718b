/**
 * The desktop's sound in the page, on either transport, and its controls: a mute toggle
 * and a volume slider in the toolbar, remembered per browser in localStorage.
 *
 * - WebRTC: the received audio track plays in its own hidden <audio id="remote-audio">,
 *   never in the video element, which stays muted so that it may always autoplay.
 * - WebSocket: kind-4 frames go to socket-audio.js (WebCodecs and a worklet). Where the
 *   browser lacks WebCodecs audio, a notice says so and the page plays no sound; nothing
 *   else changes.
 *
 * Autoplay: the page tries to play at once. When the browser refuses (play() rejects with
 * NotAllowedError, or the audio context stays suspended) the state is 'blocked', a small
 * hint asks for a click, and the first pointerdown or keydown anywhere starts the sound
 * (listened to in the capture phase, so the desktop's own handlers cannot hide it).
 *
 * Stable selectors (tests, docs): `#sound-controls` (hidden while there is no sound),
 * `#mute` (aria-pressed = muted), `#volume` (range 0–100), `#sound-hint`, `#remote-audio`.
 */
import { el, keepKeys } from './dom.js';
import { SocketAudio } from './socket-audio.js';

const STORE_KEY = 'kelpie.audio';
export const AUDIO_DEFAULTS = Object.freeze({ muted: false, volume: 1 });
/**
 * A context not running this long after it was asked to start is held back by the
 * autoplay policy (Chromium leaves resume() pending rather than rejecting it).
 */
const BLOCKED_AFTER_MS = 500;
export const SOUND_HINT = 'Click anywhere to turn on sound';
export const NO_SOCKET_SOUND = 'No sound over the WebSocket transport in this browser: it lacks WebCodecs audio '
  + '(AudioDecoder, offered only to https:// pages and recent browsers). The picture and input work without it.';

/** Stored preferences merged over the defaults; malformed values are ignored. */
export function loadAudioPrefs(storage = globalThis.localStorage) {
  let stored = {};
  try {
    stored = JSON.parse(storage?.getItem(STORE_KEY) || '{}') || {};
  } catch { /* corrupt or blocked storage: defaults */ }
  const out = { ...AUDIO_DEFAULTS };
  if (typeof stored.muted === 'boolean') out.muted = stored.muted;
  if (typeof stored.volume === 'number' && stored.volume >= 0 && stored.volume <= 1) out.volume = stored.volume;
  return out;
}

export function saveAudioPrefs(prefs, storage = globalThis.localStorage) {
  try {
    storage?.setItem(STORE_KEY, JSON.stringify({ muted: prefs.muted, volume: prefs.volume }));
  } catch { /* private mode: not remembered */ }
}

/** A volume from anywhere (slider, test hook) as 0..1, or null when it is not a number. */
export function clampVolume(v) {
  const n = Number(v);
  return Number.isFinite(n) ? Math.min(1, Math.max(0, n)) : null;
}

/**
 * What `window.kelpie.audio.state` reports for an internal phase: 'starting' (asked to
 * play, no answer yet) is still 'off', so 'blocked' and 'playing' are only ever facts.
 */
export function publicState(phase) {
  return phase === 'blocked' || phase === 'playing' ? phase : 'off';
}

/**
 * Builds the controls. Returns the test hook (`api`) and what app.js feeds it:
 * `playTrack(track)` (WebRTC), `socketFrame(frame)` (WebSocket kind 4) and
 * `setRoute(route)` (signalling.js's audio route: 'webrtc', 'websocket' or null), which
 * drops whatever no longer carries sound.
 */
export function attachAudio({ element, notice, pc = () => null }) {
  const prefs = loadAudioPrefs();
  /** 'webrtc' (the <audio> element) | 'websocket' (the page's player) | null. */
  let source = null;
  let phase = 'off';
  let player = null;
  /** What feeds the player: 'websocket' (the transport) or 'channel' (WebRTC's `audio`
   *  data channel, the low-latency route). */
  let playerVia = null;
  let toldNoSocket = false;

  const mute = el('button', { type: 'button', id: 'mute', 'aria-label': 'Mute sound', 'aria-pressed': 'false' });
  const volume = el('input', { type: 'range', id: 'volume', min: 0, max: 100, step: 5, 'aria-label': 'Volume',
    title: 'Volume (remembered in this browser)' });
  const group = el('span', { id: 'sound-controls', className: 'toolbar-group', role: 'group', 'aria-label': 'Sound',
    hidden: true }, [mute, volume]);
  const hint = el('div', { id: 'sound-hint', className: 'sound-hint', role: 'status', 'aria-live': 'polite', hidden: true,
    textContent: SOUND_HINT });
  document.getElementById('toolbar')?.append(group);
  document.body.append(hint);
  keepKeys(hint);

  function render() {
    group.hidden = source === null;
    mute.setAttribute('aria-pressed', String(prefs.muted));
    mute.textContent = prefs.muted ? '🔇' : '🔊';
    mute.title = prefs.muted ? 'Sound muted: press to unmute' : 'Mute the desktop\'s sound';
    const pct = Math.round(prefs.volume * 100);
    if (Number(volume.value) !== pct) volume.value = String(pct);
    volume.setAttribute('aria-valuetext', `${pct} %`);
    // Muted, there is nothing to turn on: the hint would only be in the way.
    hint.hidden = !(phase === 'blocked' && !prefs.muted);
  }

  function setPhase(p) {
    phase = p;
    render();
  }

  function applyOutput() {
    element.muted = prefs.muted;
    element.volume = prefs.volume;
    player?.setGain(prefs.muted ? 0 : prefs.volume);
  }

  // --- WebRTC: the <audio> element ---------------------------------------------------
  async function startElement() {
    const stream = element.srcObject;
    if (!stream) return;
    if (phase !== 'blocked') setPhase('starting');
    try {
      await element.play();
      if (element.srcObject === stream) setPhase('playing');
    } catch (err) {
      // AbortError: a newer srcObject replaced this one, and that one is being played.
      if (element.srcObject !== stream || err.name === 'AbortError') return;
      if (err.name !== 'NotAllowedError') console.warn('kelpie: the desktop\'s sound does not play', err);
      setPhase('blocked');
    }
  }
  element.addEventListener('playing', () => { if (source === 'webrtc') setPhase('playing'); });
  // Chromium pauses media that was unmuted by script without a user gesture.
  element.addEventListener('pause', () => { if (source === 'webrtc' && phase === 'playing') setPhase('blocked'); });

  function playTrack(track) {
    closePlayer();
    source = 'webrtc';
    element.srcObject = new MediaStream([track]);
    track.addEventListener('ended', () => {
      if (element.srcObject?.getTracks().includes(track)) setRoute(null);
    });
    applyOutput();
    startElement();
  }

  // --- WebSocket: WebCodecs and the worklet ------------------------------------------
  function closePlayer() {
    player?.close();
    player = null;
    playerVia = null;
  }

  function socketState(p) {
    if (player !== p) return;
    if (p.state === 'running') setPhase('playing');
    else if (phase === 'playing') setPhase('blocked'); // suspended by the system, 'interrupted' on iOS
  }

  function startPlayer(via) {
    // One player at a time: on the low-latency route the RTP track carries nothing now.
    element.srcObject = null;
    playerVia = via;
    const p = new SocketAudio({ gain: prefs.muted ? 0 : prefs.volume, onStateChange: () => socketState(p), profile: via });
    player = p;
    source = 'websocket';
    setPhase('starting');
    p.resume().catch(() => {});
    setTimeout(() => {
      if (player === p && p.state !== 'running') setPhase('blocked');
    }, BLOCKED_AFTER_MS);
  }

  /** One kind-4 frame, `via` the WebSocket transport or WebRTC's `audio` channel. */
  function socketFrame(frame, via = 'websocket') {
    if (!player) {
      // Told once: what this browser lacks, it lacks for the rest of the page's life.
      if (toldNoSocket) return;
      try {
        if (!SocketAudio.supported()) throw new Error(NO_SOCKET_SOUND);
        startPlayer(via);
      } catch (err) {
        toldNoSocket = true;
        console.warn('kelpie:', err.message || err);
        notice(err.message === NO_SOCKET_SOUND ? NO_SOCKET_SOUND : `No sound: ${err.message || err}`);
        return;
      }
    }
    player.frame(frame);
  }

  /** The audio route changed: drop the player of a route that no longer carries sound. */
  function setRoute(route) {
    const playerCarries = route === 'websocket' || (route === 'webrtc' && playerVia === 'channel');
    if (!playerCarries) closePlayer();
    if (route !== 'webrtc') element.srcObject = null;
    source = player ? 'websocket' : element.srcObject ? 'webrtc' : null;
    if (!source) setPhase('off');
    else render();
  }

  // --- Gestures and controls ---------------------------------------------------------
  function onGesture() {
    if (phase !== 'blocked') return;
    if (source === 'webrtc') startElement();
    else if (player) {
      const p = player;
      p.resume().then(() => socketState(p), () => {});
    }
  }
  window.addEventListener('pointerdown', onGesture, true);
  window.addEventListener('keydown', onGesture, true);

  function setMuted(muted) {
    prefs.muted = !!muted;
    saveAudioPrefs(prefs);
    applyOutput();
    render();
    // Unmuting by script may be refused where muted playback was not; the pause handler
    // and this catch both end in 'blocked', and the next gesture plays.
    if (!prefs.muted && source === 'webrtc' && phase === 'playing') {
      element.play().catch((err) => { if (err.name === 'NotAllowedError') setPhase('blocked'); });
    }
  }

  function setVolume(v) {
    const value = clampVolume(v);
    if (value === null) return;
    prefs.volume = value;
    saveAudioPrefs(prefs);
    applyOutput();
    render();
  }

  mute.addEventListener('click', () => setMuted(!prefs.muted));
  volume.addEventListener('input', () => setVolume(Number(volume.value) / 100));

  /** The receiving side's counts: the socket player's, or WebRTC's inbound-rtp audio. */
  async function stats() {
    if (player) return player.stats();
    const peer = source === 'webrtc' ? pc() : null;
    if (!peer) return null;
    for (const s of (await peer.getStats()).values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'audio') return s;
    }
    return null;
  }

  applyOutput();
  render();

  const api = {
    /** 'off' (no sound), 'blocked' (autoplay refused, waiting for a gesture), 'playing'. */
    get state() { return publicState(phase); },
    get muted() { return prefs.muted; },
    /** 0..1. */
    get volume() { return prefs.volume; },
    /** What carries the sound that plays: 'rtp' (WebRTC's track, the browser's player),
     *  'channel' (WebRTC's low-latency data channel, the page's player), 'websocket', or null. */
    get route() { return player ? playerVia : source === 'webrtc' ? 'rtp' : null; },
    setMuted,
    setVolume,
    /** The <audio> the WebRTC track plays in (its srcObject is null on the WebSocket). */
    get element() { return element; },
    stats,
    /**
     * An AnalyserNode on what the WebSocket player plays (after the volume), for
     * diagnostics and tests; null on WebRTC (analyse the received track instead).
     */
    analyser() { return player ? player.analyser() : null; },
  };
  return { api, playTrack, socketFrame, setRoute };
}

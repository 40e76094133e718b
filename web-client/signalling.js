/**
 * Signalling (docs/protocol.md): one WebSocket per attempt carries the server's
 * welcome, offer and ICE candidates and our answer and candidates. A `Session` keeps
 * one live attempt at a time and starts a fresh one, with a fresh RTCPeerConnection,
 * whenever the socket closes or ICE fails, backing off exponentially so a restarting
 * or overloaded server is not hammered.
 */

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 10_000;
/** An attempt that has not reached 'connected' by then is torn down and retried. */
const CONNECT_TIMEOUT_MS = 20_000;

/** The WebSocket URL next to the page, so a reverse proxy's base path is kept. */
export function signallingUrl(href = location.href) {
  const url = new URL('ws', href);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.hash = '';
  url.search = '';
  return url.href;
}

/** Delay before retry number `attempt` (0-based): 0.5 s doubling to 10 s, ±25 % jitter. */
export function backoffMs(attempt) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** attempt);
  return Math.min(BACKOFF_MAX_MS, Math.round(base * (0.75 + Math.random() * 0.5)));
}

const CONTROL_ACTIONS = ['request', 'release', 'take', 'grant'];

/** The signalling message for a control action; `grant` needs the participant's id. */
export function controlMessage(action, to) {
  if (!CONTROL_ACTIONS.includes(action)) throw new Error(`unknown control action ${action}`);
  if (action !== 'grant') return { type: 'control', action };
  if (typeof to !== 'string' || !to) throw new Error('grant needs the id of the participant');
  return { type: 'control', action, to };
}

export class Session {
  /**
   * @param {string} url WebSocket URL
   * @param {object} hooks
   *   onState(state, detail)  state: 'connecting'|'connected'|'reconnecting'|'error'
   *   onTrack(MediaStream)    the remote screen
   *   onChannel(RTCDataChannel|null)  the `input` channel (null when it goes away)
   *   onWelcome(welcome)      the server's welcome message (role, viewer_id, user)
   *   onRoom(room)            who is here and who has control (after welcome and every change)
   *   onNotice(notice)        a human-readable event for the user ({text})
   */
  constructor(url, hooks) {
    this.url = url;
    this.hooks = hooks;
    this.state = 'connecting';
    this.pc = null;
    this.channel = null;
    this.ws = null;
    this.attempt = 0; // failed attempts since the last success, drives the backoff
    this.timers = [];
    this.errorText = null;
    /** Milliseconds since page start at each step of the current attempt (diagnostics). */
    this.timings = {};
  }

  /** Records when a step of the connection first happened in this attempt. */
  mark(step) {
    if (!(step in this.timings)) this.timings[step] = Math.round(performance.now());
  }

  start() {
    this.#connect();
  }

  /**
   * Sends a control request (`request`, `release`, `take`, or `grant` with `to`) over the
   * current socket. Returns false when there is no open socket: the caller tells the user,
   * nothing is queued (a request from before a reconnect would be stale).
   */
  control(action, to) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(controlMessage(action, to)));
    return true;
  }

  #setState(state, detail = '') {
    this.state = state;
    this.hooks.onState?.(state, detail);
  }

  #setChannel(channel) {
    this.channel = channel;
    this.hooks.onChannel?.(channel);
  }

  #clearTimers() {
    this.timers.forEach(clearTimeout);
    clearInterval(this.countdown);
    this.timers = [];
  }

  /** Closes the socket and peer connection of the current attempt, if any. */
  #teardown() {
    this.#clearTimers();
    const { ws, pc } = this;
    this.ws = null;
    this.pc = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000); } catch { /* already closed */ }
    }
    if (pc) {
      pc.onicecandidate = pc.ontrack = pc.ondatachannel = null;
      pc.onconnectionstatechange = pc.oniceconnectionstatechange = null;
      pc.close();
    }
    if (this.channel) this.#setChannel(null);
  }

  #connect() {
    this.#teardown();
    this.errorText = null;
    this.#setState('connecting');
    this.timings = {};
    this.mark('ws_start');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => this.mark('ws_open');
    // Messages are handled strictly in order: an ICE candidate must not be added
    // while the offer before it is still being applied.
    let queue = Promise.resolve();
    ws.onmessage = (ev) => {
      queue = queue
        .then(() => this.#handle(ws, ev.data))
        .catch((err) => this.#fail(ws, `signalling failed: ${err.message || err}`));
    };
    ws.onclose = () => this.#retry(ws);
    this.timers.push(setTimeout(() => {
      if (ws === this.ws && this.state !== 'connected') this.#retry(ws);
    }, CONNECT_TIMEOUT_MS));
  }

  #send(ws, msg) {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  async #handle(ws, data) {
    if (ws !== this.ws) return; // a message for an attempt we already gave up on
    const msg = JSON.parse(data);
    switch (msg.type) {
      case 'welcome':
        this.mark('welcome');
        this.#createPeer(ws, msg.ice_servers || [], msg.ice_transport_policy === 'relay' ? 'relay' : 'all');
        this.hooks.onWelcome?.(msg);
        break;
      case 'offer': {
        this.mark('offer');
        const pc = this.#requirePeer();
        await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
        const answer = await pc.createAnswer();
        await pc.setLocalDescription(answer);
        this.#send(ws, { type: 'answer', sdp: pc.localDescription.sdp });
        this.mark('answer_sent');
        break;
      }
      case 'ice':
        if (msg.candidate) {
          await this.#requirePeer().addIceCandidate({
            candidate: msg.candidate,
            sdpMLineIndex: msg.sdpMLineIndex ?? 0,
          });
        }
        break;
      case 'error':
        // The server closes the socket right after; onclose schedules the retry.
        this.errorText = msg.message || msg.code || 'server error';
        this.#setState('error', this.errorText);
        break;
      case 'room':
        this.hooks.onRoom?.(msg);
        break;
      case 'notice':
        if (typeof msg.text === 'string' && msg.text) this.hooks.onNotice?.(msg);
        break;
      case 'pong':
        break;
      default:
        console.warn('kelpie: ignoring signalling message', msg.type);
    }
  }

  #requirePeer() {
    if (!this.pc) throw new Error('message before welcome');
    return this.pc;
  }

  #createPeer(ws, iceServers, iceTransportPolicy) {
    // 'relay' when the server says media must go through TURN (firewalled sites).
    const pc = new RTCPeerConnection({ iceServers, iceTransportPolicy });
    this.pc = pc;
    pc.onicecandidate = (ev) => {
      // A null candidate means gathering is complete; the protocol spells it ''.
      const c = ev.candidate;
      this.#send(ws, {
        type: 'ice',
        candidate: c ? c.candidate : '',
        sdpMLineIndex: c?.sdpMLineIndex ?? 0,
      });
    };
    pc.addEventListener('iceconnectionstatechange', () => {
      if (pc.iceConnectionState === 'connected') this.mark('ice_connected');
    });
    pc.addEventListener('connectionstatechange', () => {
      if (pc.connectionState === 'connected') this.mark('dtls_connected');
    });
    pc.ontrack = (ev) => {
      this.mark('track');
      // A desktop wants the newest frame, not smooth playback: ask the receiver for no
      // extra jitter buffering (Chromium's default adds tens of milliseconds).
      try {
        if ('jitterBufferTarget' in ev.receiver) ev.receiver.jitterBufferTarget = 0;
        else ev.receiver.playoutDelayHint = 0;
      } catch { /* older browsers: default buffering */ }
      this.hooks.onTrack?.(ev.streams[0] || new MediaStream([ev.track]));
    };
    pc.ondatachannel = (ev) => {
      if (ev.channel.label !== 'input') return;
      const channel = ev.channel;
      channel.onclose = () => {
        if (this.channel === channel) this.#setChannel(null);
      };
      this.#setChannel(channel);
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === 'connected') {
        this.attempt = 0;
        this.#clearTimers();
        this.#setState('connected');
      } else if (pc.connectionState === 'failed') {
        this.#retry(ws);
      }
    };
  }

  /** A local failure: tell the user, then retry like any other lost connection. */
  #fail(ws, text) {
    if (ws !== this.ws) return;
    console.error('kelpie:', text);
    this.errorText = text;
    this.#setState('error', text);
    this.#retry(ws);
  }

  /** Tears the attempt down and schedules the next one with backoff. */
  #retry(ws) {
    if (ws !== this.ws) return; // already retrying
    this.#teardown();
    const delay = backoffMs(this.attempt++);
    const until = Date.now() + delay;
    const show = () => {
      const secs = Math.max(0, Math.ceil((until - Date.now()) / 1000));
      if (this.errorText) this.#setState('error', `${this.errorText} (retrying in ${secs} s)`);
      else this.#setState('reconnecting', `reconnecting in ${secs} s`);
    };
    show();
    this.countdown = setInterval(show, 1000);
    this.timers.push(setTimeout(() => this.#connect(), delay));
  }
}

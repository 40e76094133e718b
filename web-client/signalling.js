/**
 * Signalling (docs/protocol.md): one WebSocket per attempt carries the server's
 * welcome, offer and ICE candidates and our answer and candidates. A `Session` keeps
 * one live attempt at a time and starts a fresh one, with a fresh RTCPeerConnection,
 * whenever the socket closes or ICE fails, backing off exponentially so a restarting
 * or overloaded server is not hammered.
 *
 * Transports: media starts on WebRTC unless the server or the settings say otherwise. If
 * no WebRTC media arrives within FALLBACK_MS of the offer (a front door that carries only
 * HTTP, a firewall without UDP and no TURN), the session asks the server to carry media
 * on this same socket instead (socket-media.js): no reload, no second login, same seat.
 *
 * Codecs (codecs.js): the video is H.264. A browser whose WebRTC cannot decode it (Firefox
 * without OpenH264) starts on the WebSocket transport; one that has neither way is told
 * what to do, once, and the page stops instead of retrying. Either is reported to the
 * server (`{"type":"codec"}`) once per page, for its log and `/metrics`.
 *
 * Sound: the offer may carry a second m-line, audio (Opus), sendrecv. Its transceiver is
 * answered sendrecv, so the microphone can later go out on it with `replaceTrack` and no
 * renegotiation (mic.js). On the WebSocket, kind-4 frames carry the sound down and kind-5
 * frames the microphone up. `audioRoute` says which of the two carries audio now, and
 * `onAudioRoute` fires whenever that may have changed.
 */
import { SocketChannel, SocketMedia, ackFrame, parseFrame } from './socket-media.js';
import { answerRejectsVideo, cannotDecodeText, isFirefox, probeCodecs } from './codecs.js';
import { signallingUrl, takeEarly, wantedTransport } from './early-socket.js';

const BACKOFF_START_MS = 500;
const BACKOFF_MAX_MS = 10_000;
/** An attempt that has not reached 'connected' by then is torn down and retried. */
const CONNECT_TIMEOUT_MS = 20_000;
/**
 * WebRTC that has not connected this long after the offer is given up for the WebSocket
 * transport. A peer connection that did connect gets FALLBACK_MS more for its first frame.
 */
export const FALLBACK_MS = 3000;
/** The decoder asks for a keyframe at most this often. */
const KEYFRAME_ASK_MS = 500;

export const TRANSPORT_CHOICES = ['auto', 'webrtc', 'websocket'];

/** Why this page cannot take media over the WebSocket, for the person reading the badge. */
export const NO_SOCKET_MEDIA = 'this page cannot use the WebSocket transport: browsers offer its video decoder '
  + '(WebCodecs) only to secure pages, so open Kelpie over https:// (or on localhost)';

// The signalling URL and the transport to ask for live with the early socket, which needs
// them before this module has loaded; they are re-exported here for the rest of the app.
export { signallingUrl, wantedTransport };

/**
 * Whether this page can show the desktop on this server at all, and on what:
 * `codecs` {webrtc, websocket} (probeCodecs), `offered` the welcome's transports,
 * `choice` the settings'. Returns 'webrtc', 'websocket', or null for neither.
 */
export function usableTransport(codecs, offered, choice = 'auto') {
  const socket = codecs.websocket && offered.includes('websocket');
  const webrtc = codecs.webrtc && offered.includes('webrtc');
  if (choice === 'websocket' && socket) return 'websocket';
  if (choice === 'webrtc' && webrtc) return 'webrtc';
  if (webrtc) return 'webrtc';
  return socket ? 'websocket' : null;
}

/** Delay before retry number `attempt` (0-based): 0.5 s doubling to 10 s, ±25 % jitter. */
export function backoffMs(attempt) {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_START_MS * 2 ** attempt);
  return Math.min(BACKOFF_MAX_MS, Math.round(base * (0.75 + Math.random() * 0.5)));
}

/** Why a page whose WebRTC lacks H.264 takes its media over the WebSocket. */
/**
 * Why the server refused this page's socket, in words, when a retry cannot help: from the
 * status and `X-Kelpie-Denied` of the page's own address, asked after a socket closed
 * before it opened. `null`: worth retrying (the server is down, busy, or restarting).
 */
export function refusalText(status, denied) {
  if (status === 421) return 'This desktop does not answer to this address: open it at the address you were given (an administrator can add the name with --public-host).';
  if (status !== 401) return null;
  switch (denied) {
    case 'expired': return 'The link this page was opened with has expired. Ask whoever shared the desktop for a new link, then open it.';
    case 'invalid': return 'The link this page was opened with does not open this desktop any more (the desktop may have restarted with new links). Ask for a new link.';
    case 'wrong-password': return 'The password was not accepted. Reload the page to log in again.';
    case 'missing': return 'This page is no longer logged in. Open the desktop with its link again, or reload the page to log in.';
    default: return 'The server refused this page\'s login. Reload the page, or ask for a new link.';
  }
}

export const NO_WEBRTC_H264 = "this browser's WebRTC cannot decode H.264 (it has no WebRTC, or it is Firefox without OpenH264)";

const CONTROL_ACTIONS = ['request', 'release', 'take', 'grant'];

/** The signalling message for a control action; `grant` needs the participant's id. */
export function controlMessage(action, to) {
  if (!CONTROL_ACTIONS.includes(action)) throw new Error(`unknown control action ${action}`);
  if (action !== 'grant') return { type: 'control', action };
  if (typeof to !== 'string' || !to) throw new Error('grant needs the id of the participant');
  return { type: 'control', action, to };
}

/**
 * The offer's audio transceiver, set to answer `sendrecv` (the browser would answer
 * `recvonly`, having no track yet), or null when the offer has no audio. Found by kind:
 * the first transceiver whose receiver's track is audio and that is not stopped, so the
 * m-line's position and mid do not matter.
 */
export function answerAudioSendrecv(pc) {
  const t = pc.getTransceivers().find((x) => x.receiver?.track?.kind === 'audio'
    && x.direction !== 'stopped' && x.currentDirection !== 'stopped');
  if (!t) return null;
  t.direction = 'sendrecv';
  return t;
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
   *   onTransport({kind, reason})  media moved to another transport
   *   onAudioTrack(MediaStreamTrack)  the desktop's sound over WebRTC
   *   onAudioFrame(frame)     one kind-4 frame (an Opus packet) over the WebSocket, or
   *                           over WebRTC's low-latency `audio` channel
   *   wantsChannelSound()     true: open that channel (the page can play the frames)
   *   onAudioRoute(route)     audioRoute may have changed: 'webrtc', 'websocket' or null
   *   onMediaEnd()            the current picture's stream is about to be closed
   */
  constructor(href, hooks, { transport = 'auto' } = {}) {
    this.href = href;
    this.hooks = hooks;
    /** The settings' choice: 'auto', 'webrtc' or 'websocket'. */
    this.choice = TRANSPORT_CHOICES.includes(transport) ? transport : 'auto';
    /** WebRTC gave no media on this page: later attempts start on the WebSocket. */
    this.fellBack = false;
    /** {kind, reason}: what carries media now and why (null before the welcome). */
    this.transport = null;
    this.offered = [];
    /** The welcome's `audio: true`: this server's socket media carries sound. */
    this.welcomeAudio = false;
    this.media = null;
    this.socketChannel = null;
    this.pending = null;
    this.state = 'connecting';
    this.pc = null;
    /** The offer's audio transceiver (answered sendrecv), null without one. */
    this.audioTransceiver = null;
    /** On the WebSocket: the welcome said it carries sound, or a kind-4 frame came. */
    this.socketAudio = false;
    this.channel = null;
    this.ws = null;
    this.attempt = 0; // failed attempts since the last success, drives the backoff
    this.timers = [];
    this.errorText = null;
    /** Milliseconds since page start at each step of the current attempt (diagnostics). */
    this.timings = {};
    /** {webrtc, websocket}: which ways this browser decodes H.264 (probed at start). */
    this.codecs = { webrtc: true, websocket: SocketMedia.supported() };
    /** The server has been told that WebRTC cannot decode here (once per page). */
    this.codecReported = false;
    /** The page cannot show the desktop here and has stopped; no more attempts. */
    this.stopped = false;
  }

  /** Records when a step of the connection first happened in this attempt. */
  mark(step) {
    if (!(step in this.timings)) this.timings[step] = Math.round(performance.now());
  }

  /** Probes the browser's decoders, then connects. */
  async start() {
    this.codecs = await probeCodecs(SocketMedia.supported());
    if (!this.codecs.webrtc) console.info('kelpie: this browser\'s WebRTC has no H.264 decoder', this.codecs);
    this.#connect();
  }

  /** "Retry now": a fresh attempt at once, with the backoff started over. */
  retryNow() {
    if (this.stopped) return;
    this.attempt = 0;
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

  /**
   * Where the desktop's sound travels now: 'webrtc' (the peer connection has an audio
   * transceiver), 'websocket' (media is on the socket and it carries sound) or null.
   */
  get audioRoute() {
    if (this.pc && this.audioTransceiver) return 'webrtc';
    if (this.media && this.socketAudio) return 'websocket';
    return null;
  }

  /** The WebRTC sender the microphone goes out on, or null. */
  get audioSender() {
    return this.pc && this.audioTransceiver ? this.audioTransceiver.sender : null;
  }

  /**
   * The low-latency route for the desktop's sound over WebRTC (server/src/media/
   * audio_channel.rs): a data channel labelled `audio`, unordered and never retransmitted.
   * While it is open the server puts this page's Opus packets on it, as the WebSocket
   * transport's kind-4 frames, instead of on the RTP track, and they play through the
   * page's own player (socket-audio.js): the browser's RTP jitter and playout buffers,
   * 60–100 ms here, are skipped. A lost packet is a 10 ms gap, not a wait.
   */
  #openSoundChannel(pc) {
    if (!this.audioTransceiver || !this.hooks.wantsChannelSound?.()) return;
    let channel;
    try {
      channel = pc.createDataChannel('audio', { ordered: false, maxRetransmits: 0 });
    } catch (err) {
      console.warn('kelpie: no low-latency sound channel; sound stays on the RTP track', err);
      return;
    }
    channel.binaryType = 'arraybuffer';
    channel.onmessage = (ev) => {
      if (pc !== this.pc || !(ev.data instanceof ArrayBuffer)) return;
      const frame = parseFrame(ev.data);
      if (frame?.kind === 'audio') this.hooks.onAudioFrame?.(frame, 'channel');
    };
  }

  #audioRouteMayHaveChanged() {
    this.hooks.onAudioRoute?.(this.audioRoute);
  }

  /**
   * Sends a binary frame (the microphone's kind 5) on the socket while media is on it.
   * Returns false when it did not go out: no socket media, a closed socket, or more than
   * `maxBuffered` bytes already waiting to be sent (real-time data is better dropped).
   */
  sendFrame(bytes, maxBuffered = Infinity) {
    const ws = this.ws;
    if (!this.media || !ws || ws.readyState !== WebSocket.OPEN || ws.bufferedAmount > maxBuffered) return false;
    ws.send(bytes);
    return true;
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
    // The picture is about to go: the page may keep its last frame (connection.js).
    if (this.pc || this.media) this.hooks.onMediaEnd?.();
    const { ws, pc } = this;
    this.ws = null;
    this.pc = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      try { ws.close(1000); } catch { /* already closed */ }
    }
    this.#closePeer(pc);
    this.#closeSocketMedia();
    if (this.channel) this.#setChannel(null);
    this.#audioRouteMayHaveChanged();
  }

  #closePeer(pc) {
    if (!pc) return;
    pc.onicecandidate = pc.ontrack = pc.ondatachannel = null;
    pc.onconnectionstatechange = pc.oniceconnectionstatechange = null;
    pc.close();
    if (this.pc === pc) {
      this.pc = null;
      this.audioTransceiver = null;
    }
  }

  #closeSocketMedia() {
    this.media?.close();
    this.socketChannel?.close();
    this.media = this.socketChannel = null;
    this.socketAudio = false;
  }

  /** Inbound video statistics of whichever transport is in use (null before any). */
  async videoStats() {
    if (this.media) return this.media.stats();
    if (!this.pc) return null;
    const stats = await this.pc.getStats();
    for (const s of stats.values()) {
      if (s.type === 'inbound-rtp' && s.kind === 'video') return s;
    }
    return null;
  }

  /**
   * The settings changed the transport choice: move media now if it names another kind
   * ('auto' keeps what works).
   */
  setChoice(choice) {
    if (!TRANSPORT_CHOICES.includes(choice)) return;
    this.choice = choice;
    if (choice === 'webrtc' && !this.codecs.webrtc) {
      this.hooks.onNotice?.({ text: `Media stays on the WebSocket: ${NO_WEBRTC_H264}.` });
      return;
    }
    if (choice !== 'auto' && this.transport && this.transport.kind !== choice) {
      this.#switchTo(this.ws, choice, 'chosen in the settings');
    }
  }

  #connect() {
    this.#teardown();
    this.errorText = null;
    this.#setState('connecting');
    this.timings = {};
    this.mark('ws_start');
    this.transport = null;
    this.pending = null;
    if (this.stopped) return;
    const wanted = wantedTransport(this.choice, this.fellBack, this.codecs.webrtc);
    const url = signallingUrl(this.href, wanted === 'websocket' && !this.codecs.websocket ? null : wanted);
    // The first attempt takes over the socket preconnect.js opened, when it went here.
    const early = takeEarly(url);
    if (early) {
      this.timings.ws_start = early.startedAt; // when preconnect.js opened it
      if (early.openedAt !== null) this.timings.ws_open = early.openedAt;
      this.mark('ws_taken'); // when the app took it over: the time the early socket saved
    }
    const ws = early ? early.ws : new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    ws.onopen = () => this.mark('ws_open');
    // Messages are handled strictly in order: an ICE candidate must not be added
    // while the offer before it is still being applied.
    let queue = Promise.resolve();
    const handle = (data) => {
      queue = queue
        .then(() => this.#handle(ws, data))
        .catch((err) => this.#fail(ws, `signalling failed: ${err.message || err}`));
    };
    ws.onmessage = (ev) => handle(ev.data);
    // What came before the take-over, first (no message event runs before this loop ends).
    for (const data of early?.messages ?? []) handle(data);
    ws.onclose = () => {
      if ('ws_open' in this.timings) this.#retry(ws);
      else this.#askWhyRefused(ws);
    };
    this.timers.push(setTimeout(() => {
      if (ws === this.ws && this.state !== 'connected') this.#retry(ws);
    }, CONNECT_TIMEOUT_MS));
  }

  #send(ws, msg) {
    if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(msg));
  }

  async #handle(ws, data) {
    if (ws !== this.ws) return; // a message for an attempt we already gave up on
    if (typeof data !== 'string') return this.#binary(data);
    const msg = JSON.parse(data);
    switch (msg.type) {
      case 'welcome': {
        this.mark('welcome');
        this.iceServers = msg.ice_servers || [];
        this.icePolicy = msg.ice_transport_policy === 'relay' ? 'relay' : 'all';
        this.offered = Array.isArray(msg.transports) ? msg.transports : ['webrtc'];
        this.welcomeAudio = msg.audio === true;
        const kind = msg.transport === 'websocket' ? 'websocket' : 'webrtc';
        this.hooks.onWelcome?.(msg);
        if (!this.#canShow(ws)) break;
        if (kind === 'websocket' && !this.codecs.websocket) this.#switchTo(ws, 'webrtc', 'this page cannot decode on the WebSocket');
        else if (kind === 'websocket') this.#useSocket(ws, this.#startReason('websocket'));
        else if (!this.codecs.webrtc && usableTransport(this.codecs, this.offered, this.choice) === 'websocket') {
          // Asked for plainly (a settings choice, say) but WebRTC cannot decode here.
          this.#switchTo(ws, 'websocket', NO_WEBRTC_H264);
        } else this.#useWebrtc(ws, this.#startReason('webrtc'));
        break;
      }
      case 'transport': {
        // The server moved our media, as asked: set up the receiving side.
        const reason = this.pending?.reason || 'asked by this page';
        this.pending = null;
        if (msg.kind === 'websocket') this.#useSocket(ws, reason);
        else if (msg.kind === 'webrtc') this.#useWebrtc(ws, reason);
        break;
      }
      case 'offer': {
        this.mark('offer');
        this.#armFallback(ws);
        const pc = this.#requirePeer();
        await pc.setRemoteDescription({ type: 'offer', sdp: msg.sdp });
        this.audioTransceiver = answerAudioSendrecv(pc);
        const answer = await pc.createAnswer();
        if (answerRejectsVideo(answer.sdp)) {
          // The browser listed H.264 but will not take it: never send that answer, and
          // take the WebSocket if this page can (#canShow stops it otherwise).
          this.codecs.webrtc = false;
          if (this.#canShow(ws)) this.#switchTo(ws, 'websocket', NO_WEBRTC_H264);
          break;
        }
        await pc.setLocalDescription(answer);
        this.#send(ws, { type: 'answer', sdp: pc.localDescription.sdp });
        this.mark('answer_sent');
        this.#audioRouteMayHaveChanged();
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
        // The server closes the socket right after; onclose schedules the retry, which
        // for a refused codec starts where this page can decode (or stops: #canShow).
        if (msg.code === 'unsupported_codec') this.codecs.webrtc = false;
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

  /**
   * After the welcome: tells the server once when WebRTC cannot decode here, and stops
   * the page, with what to do, when nothing on this server can. Returns false then.
   */
  #canShow(ws) {
    const usable = usableTransport(this.codecs, this.offered, this.choice);
    if (!this.codecs.webrtc && !this.codecReported) {
      this.codecReported = true;
      this.#send(ws, { type: 'codec', webrtc: false, websocket: usable === 'websocket' });
    }
    if (usable) return true;
    // This browser would decode WebRTC, but this server sends only over the WebSocket.
    if (this.codecs.webrtc) this.#stop(ws, `This server sends the desktop over the WebSocket only, but ${NO_SOCKET_MEDIA}.`);
    else {
      this.#stop(ws, cannotDecodeText({
        secure: isSecureContext,
        firefox: isFirefox(),
        socketOffered: this.offered.includes('websocket'),
      }));
    }
    return false;
  }

  /** Why this attempt starts on `kind`. */
  #startReason(kind) {
    if (kind === 'websocket' && !this.codecs.webrtc) return NO_WEBRTC_H264;
    if (this.offered.length === 1) return `the server offers only ${kind === 'websocket' ? 'the WebSocket' : 'WebRTC'}`;
    if (this.choice === kind) return 'chosen in the settings';
    if (kind === 'websocket' && this.fellBack) return 'WebRTC gave no media earlier on this page';
    return 'preferred (fastest when the network allows it)';
  }

  #useWebrtc(ws, reason) {
    this.#closePeer(this.pc);
    this.#closeSocketMedia();
    if (this.channel) this.#setChannel(null);
    this.transport = { kind: 'webrtc', reason };
    this.hooks.onTransport?.(this.transport);
    this.#audioRouteMayHaveChanged();
    this.#createPeer(ws, this.iceServers || [], this.icePolicy || 'all');
  }

  #useSocket(ws, reason) {
    this.transport = { kind: 'websocket', reason };
    this.hooks.onTransport?.(this.transport);
    this.#closePeer(this.pc);
    this.#closeSocketMedia();
    const channel = new SocketChannel(ws);
    let lastAsk = -Infinity;
    this.socketChannel = channel;
    this.media = new SocketMedia({
      onStream: (stream) => {
        this.mark('track');
        this.hooks.onTrack?.(stream);
      },
      askKeyframe: () => {
        const now = performance.now();
        if (now - lastAsk < KEYFRAME_ASK_MS || channel.readyState !== 'open') return;
        lastAsk = now;
        try { channel.send(JSON.stringify({ t: 'kf' })); } catch { /* socket closing */ }
      },
    });
    this.socketAudio = this.welcomeAudio === true;
    this.#setChannel(channel);
    this.attempt = 0;
    this.#clearTimers();
    this.#setState('connected');
    this.#audioRouteMayHaveChanged();
  }

  /** A binary frame: the WebSocket transport's video, sound or data-channel message. */
  #binary(data) {
    const frame = parseFrame(data);
    if (!frame) {
      console.warn('kelpie: ignoring a malformed binary frame');
    } else if (frame.kind === 'channel') {
      this.socketChannel?.deliver(frame.text);
    } else if (!this.media) {
      // Media is not on the socket (any more): a frame still in flight from before.
    } else if (frame.kind === 'audio') {
      // Not acknowledged: the bandwidth estimate reads the video's acknowledgements only.
      if (!this.socketAudio) {
        this.socketAudio = true;
        this.#audioRouteMayHaveChanged();
      }
      this.hooks.onAudioFrame?.(frame);
    } else {
      // Acknowledged on arrival, before decoding: the server measures the path, not us.
      if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(ackFrame(frame.seq, performance.now() * 1000));
      this.media.video(frame);
    }
  }

  /**
   * After the offer: if WebRTC has not connected within FALLBACK_MS (or connected but
   * showed no frame within twice that), move media to this socket, when the server
   * offers it and the settings leave the choice to us.
   */
  #armFallback(ws) {
    if (this.choice !== 'auto' || !this.offered.includes('websocket')) return;
    const check = (round) => {
      if (ws !== this.ws || this.transport?.kind !== 'webrtc' || this.timings.first_frame) return;
      const connected = this.pc?.connectionState === 'connected';
      if (!this.codecs.websocket) {
        if (!connected) this.hooks.onNotice?.({ text: `No picture over WebRTC yet, and ${NO_SOCKET_MEDIA}.` });
        return;
      }
      if (connected && round === 0) {
        this.timers.push(setTimeout(() => check(1), FALLBACK_MS));
        return;
      }
      const secs = ((round + 1) * FALLBACK_MS) / 1000;
      const reason = connected
        ? `WebRTC connected but showed no picture within ${secs} s`
        : `no WebRTC media within ${secs} s of the offer`;
      this.fellBack = true;
      this.#switchTo(ws, 'websocket', reason);
    };
    this.timers.push(setTimeout(() => check(0), FALLBACK_MS));
  }

  /** Asks the server to carry media on `kind`; the `transport` reply completes it. */
  #switchTo(ws, kind, reason) {
    if (!ws || ws !== this.ws || ws.readyState !== WebSocket.OPEN) return;
    if (!this.offered.includes(kind)) {
      this.hooks.onNotice?.({ text: `This server does not offer the ${kind} transport.` });
      return;
    }
    if (kind === 'websocket' && !this.codecs.websocket) {
      this.hooks.onNotice?.({ text: `Media stays on WebRTC: ${NO_SOCKET_MEDIA}.` });
      return;
    }
    console.info(`kelpie: moving media to ${kind}: ${reason}`);
    // Nothing of the old peer connection (ICE candidates) may follow the ask; it is closed
    // once the server has let go of it (the reply), so that its closing is not reported
    // to the server as a failure of the session.
    if (this.pc) this.pc.onicecandidate = this.pc.onconnectionstatechange = null;
    this.pending = { kind, reason };
    this.#send(ws, { type: 'transport', kind, reason });
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
      // The sound has its own stream (not the video's, so no lip-sync delay is added to
      // the picture) and its own element (audio.js): the video stays muted-autoplayable.
      if (ev.track.kind === 'audio') {
        this.hooks.onAudioTrack?.(ev.track);
        return;
      }
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
      // The association is up: the sound's own channel opens without renegotiating.
      this.#openSoundChannel(pc);
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      if (pc.connectionState === 'connected') {
        this.attempt = 0;
        this.#clearTimers();
        this.#setState('connected');
      } else if (pc.connectionState === 'failed') {
        if (this.choice === 'auto' && this.offered.includes('websocket') && this.codecs.websocket) {
          this.fellBack = true;
          this.#switchTo(ws, 'websocket', 'the WebRTC connection failed');
        } else {
          this.#retry(ws);
        }
      }
    };
  }

  /**
   * This page cannot show the desktop: say why and what to do, close, and make no more
   * attempts (a retry could not go differently).
   */
  #stop(ws, text) {
    if (ws !== this.ws) return;
    console.error('kelpie:', text);
    this.stopped = true;
    this.#teardown();
    this.errorText = text;
    this.#setState('error', text);
  }

  /** A local failure: tell the user, then retry like any other lost connection. */
  #fail(ws, text) {
    if (ws !== this.ws) return;
    console.error('kelpie:', text);
    this.errorText = text;
    this.#setState('error', text);
    this.#retry(ws);
  }

  /**
   * The socket closed before it opened: the server may have refused it (an expired link,
   * an unknown host name), which no retry mends. The browser hides a refused upgrade's
   * status, so the page's own address is asked; anything else is retried as usual.
   */
  async #askWhyRefused(ws) {
    let text = null;
    try {
      const r = await fetch(new URL('./', this.href), { method: 'HEAD', cache: 'no-store', credentials: 'same-origin' });
      text = refusalText(r.status, r.headers.get('x-kelpie-denied'));
    } catch {
      // Unreachable: a retry is the right answer.
    }
    if (text) this.#stop(ws, text);
    else this.#retry(ws);
  }

  /** Tears the attempt down and schedules the next one with backoff. */
  #retry(ws) {
    if (ws !== this.ws || this.stopped) return; // already retrying, or stopped
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

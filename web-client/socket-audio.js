/**
 * The WebSocket transport's sound: kind-4 frames (one Opus packet each, 48 kHz stereo)
 * → WebCodecs AudioDecoder → the `kelpie-playback` worklet (audio-worklet.js, a jitter
 * buffer of ~40 ms) → a gain (mute and volume) → the speakers.
 *
 * WebRTC needs none of this: the browser's own jitter buffer plays its audio track in an
 * <audio> element (audio.js). Here the packets come over TCP, in bursts, so the buffer is
 * ours, kept small, and trimmed when it grows, so sound never lags the picture for long.
 *
 * The context may start suspended (autoplay rules); `resume()` from a user gesture starts
 * it, and `onStateChange(state)` reports the context's state.
 */
import { OPUS_RATE, openAudioContext } from './audio-context.js';
import { SequenceGate } from './pcm.js';

const CHANNELS = 2;

/**
 * How the player buffers, by what feeds it:
 * - `websocket`: TCP delivers in bursts (a retransmission holds everything behind it), so
 *   a fixed ~40 ms cushion and the browser's usual output buffer.
 * - `channel`: WebRTC's unreliable `audio` channel delivers each packet as it comes, so
 *   the cushion starts at one 10 ms packet and grows only when the path proves jittery
 *   (an underrun), and the output asks for the device's smallest buffer (latencyHint 0:
 *   128 frames, ~22 ms less delay than 'interactive' in headless Chromium here).
 */
export const PLAYER_PROFILES = Object.freeze({
  websocket: { latencyHint: 'interactive', processorOptions: { targetMs: 40, maxMs: 120 } },
  channel: {
    latencyHint: 0,
    processorOptions: { targetMs: 10, maxMs: 200, adapt: { stepMs: 5, ceilingMs: 120, calmMs: 5_000, windowMs: 1_000, graceMs: 2_000 } },
  },
});
/**
 * More packets than this (a second) waiting for the decoder: it is stuck, drop rather than
 * lag. Not a latency rule: a burst from the socket is decoded whole and the worklet's
 * jitter buffer drops its oldest sound, in one piece rather than packets here and there.
 */
const MAX_DECODE_QUEUE = 50;
/** Seconds over which a gain change glides, so a volume step does not click. */
const GAIN_GLIDE_S = 0.015;

export class SocketAudio {
  /** WebCodecs audio (secure pages only) and worklets: both needed, else no sound here. */
  static supported() {
    return typeof AudioDecoder === 'function' && typeof EncodedAudioChunk === 'function'
      && typeof AudioWorkletNode === 'function';
  }

  /**
   * @param {{gain: number, onStateChange?: (state: string) => void}} options: `gain` is
   *   the starting volume (0 when muted).
   */
  constructor({ gain, onStateChange = () => {}, profile = 'websocket' }) {
    const { latencyHint, processorOptions } = PLAYER_PROFILES[profile] || PLAYER_PROFILES.websocket;
    const { context, ready } = openAudioContext(latencyHint);
    this.profile = profile;
    this.context = context;
    this.gain = context.createGain();
    this.gain.gain.value = gain;
    this.gain.connect(context.destination);
    this.node = null;
    this.decoder = null;
    this.closed = false;
    this.counts = { packetsReceived: 0, packetsDecoded: 0, packetsDropped: 0, decodeErrors: 0 };
    /** The channel's packets can be lost or come out of order (the socket's cannot): lost
     *  ones become silence of one packet's length each, late ones are dropped. */
    this.gate = profile === 'channel' ? new SequenceGate() : null;
    /** Per decode call, in order: packets lost just before it (silence to play first). */
    this.gaps = [];
    /** Frames in a decoded packet (480 at 10 ms), for the silence of a lost one. */
    this.packetFrames = 480;
    /** The worklet's last report: frames buffered, underruns, frames trimmed. */
    this.playout = { buffered: 0, target: 0, underruns: 0, trimmed: 0 };
    context.onstatechange = () => onStateChange(context.state);
    this.ready = ready.then(() => {
      if (this.closed) return;
      this.node = new AudioWorkletNode(context, 'kelpie-playback', {
        numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [CHANNELS], processorOptions,
      });
      this.node.port.onmessage = ({ data }) => {
        if (data?.type === 'stats') {
          this.playout = { buffered: data.buffered, target: data.target, underruns: data.underruns, trimmed: data.trimmed };
        }
      };
      this.node.connect(this.gain);
    }).catch((err) => {
      // No worklet, no sound: packets keep being counted as dropped, nothing else breaks.
      console.error('kelpie: the audio worklet did not load, no sound', err);
    });
  }

  get state() {
    return this.context.state;
  }

  /** Starts a suspended context; only succeeds during (or after) a user gesture. */
  resume() {
    return this.context.resume();
  }

  setGain(value) {
    const g = this.gain.gain;
    g.cancelScheduledValues(this.context.currentTime);
    g.setTargetAtTime(value, this.context.currentTime, GAIN_GLIDE_S / 3);
  }

  #configure() {
    this.decoder = new AudioDecoder({
      output: (data) => this.#play(data),
      error: (err) => {
        // A broken packet: the next one starts a fresh decoder (one can start at any packet).
        console.warn('kelpie: audio decoder error', err.message || err);
        this.counts.decodeErrors++;
        this.decoder = null;
      },
    });
    // No `description`: plain Opus, channel mapping family 0 (mono or stereo).
    this.decoder.configure({ codec: 'opus', sampleRate: OPUS_RATE, numberOfChannels: CHANNELS });
    this.gaps = []; // a fresh decoder: the old one's pending outputs are gone
  }

  /** One kind-4 frame from the socket. */
  frame({ seq, timestamp, data }) {
    if (this.closed) return;
    this.counts.packetsReceived++;
    const order = this.gate ? this.gate.accept(seq) : { missing: 0 };
    if (!order) {
      this.counts.packetsDropped++;
      return;
    }
    // Until the worklet is there, decoded sound would have nowhere to go.
    if (!this.node) {
      this.counts.packetsDropped++;
      return;
    }
    try {
      if (!this.decoder || this.decoder.state === 'closed') this.#configure();
      if (this.decoder.decodeQueueSize > MAX_DECODE_QUEUE) {
        this.counts.packetsDropped++;
        return;
      }
      this.decoder.decode(new EncodedAudioChunk({ type: 'key', timestamp, data }));
      this.gaps.push(order.missing);
    } catch (err) {
      console.warn('kelpie: cannot decode the desktop\'s sound', err.message || err);
      this.counts.packetsDropped++;
      this.decoder = null;
    }
  }

  /** Decoded PCM to the worklet, planar, its buffers handed over rather than copied. */
  #play(data) {
    try {
      if (this.closed || !this.node) return;
      this.counts.packetsDecoded++;
      const missing = this.gaps.shift() || 0;
      if (missing) {
        const silence = Array.from({ length: CHANNELS }, () => new Float32Array(missing * this.packetFrames));
        this.node.port.postMessage({ type: 'pcm', planes: silence }, silence.map((p) => p.buffer));
      }
      this.packetFrames = data.numberOfFrames;
      const planes = [];
      for (let c = 0; c < data.numberOfChannels; c++) {
        const plane = new Float32Array(data.numberOfFrames);
        data.copyTo(plane, { planeIndex: c, format: 'f32-planar' });
        planes.push(plane);
      }
      this.node.port.postMessage({ type: 'pcm', planes }, planes.map((p) => p.buffer));
    } finally {
      data.close();
    }
  }

  /** An AnalyserNode fed by the output (after the gain); the caller disconnects it. */
  analyser() {
    const node = this.context.createAnalyser();
    this.gain.connect(node);
    return node;
  }

  /** The counts in the shape the statistics read: packets and the playout buffer. */
  stats() {
    return {
      timestamp: performance.now(),
      ...this.counts,
      route: this.profile,
      packetsLost: this.gate?.lost ?? 0,
      packetsLate: this.gate?.late ?? 0,
      bufferedMs: Math.round((this.playout.buffered / OPUS_RATE) * 1000),
      targetMs: Math.round((this.playout.target / OPUS_RATE) * 1000),
      underruns: this.playout.underruns,
      trimmedMs: Math.round((this.playout.trimmed / OPUS_RATE) * 1000),
      contextState: this.context.state,
    };
  }

  close() {
    if (this.closed) return;
    this.closed = true;
    try { this.decoder?.close(); } catch { /* already closed */ }
    this.node?.disconnect();
    this.context.onstatechange = null;
    this.context.close().catch(() => {});
  }
}

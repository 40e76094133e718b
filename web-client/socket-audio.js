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

const CHANNELS = 2;
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
  constructor({ gain, onStateChange = () => {} }) {
    const { context, ready } = openAudioContext();
    this.context = context;
    this.gain = context.createGain();
    this.gain.gain.value = gain;
    this.gain.connect(context.destination);
    this.node = null;
    this.decoder = null;
    this.closed = false;
    this.counts = { packetsReceived: 0, packetsDecoded: 0, packetsDropped: 0, decodeErrors: 0 };
    /** The worklet's last report: frames buffered, underruns, frames trimmed. */
    this.playout = { buffered: 0, underruns: 0, trimmed: 0 };
    context.onstatechange = () => onStateChange(context.state);
    this.ready = ready.then(() => {
      if (this.closed) return;
      this.node = new AudioWorkletNode(context, 'kelpie-playback', {
        numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [CHANNELS],
      });
      this.node.port.onmessage = ({ data }) => {
        if (data?.type === 'stats') this.playout = { buffered: data.buffered, underruns: data.underruns, trimmed: data.trimmed };
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
  }

  /** One kind-4 frame from the socket. */
  frame({ timestamp, data }) {
    if (this.closed) return;
    this.counts.packetsReceived++;
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
      bufferedMs: Math.round((this.playout.buffered / OPUS_RATE) * 1000),
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

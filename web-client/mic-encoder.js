/**
 * The microphone for the WebSocket transport: the getUserMedia track's PCM → WebCodecs
 * AudioEncoder (Opus, mono, 40 kbit/s, 20 ms frames) → `onPacket(bytes, timestampUs)`,
 * which mic.js sends as kind-5 frames. (On WebRTC the browser encodes the track itself.)
 *
 * PCM comes from a MediaStreamTrackProcessor where the browser has one (Chromium: no
 * audio graph, AudioData straight from the capture), else from the `kelpie-capture`
 * worklet, which hands over 20 ms mono blocks. Either way the encoder gets mono: a stereo
 * microphone is averaged (pcm.js downmix) rather than sent twice over.
 */
import { downmix } from './pcm.js';
import { OPUS_RATE, audioWorkletSupported, openAudioContext } from './audio-context.js';

/** Speech, with room for music: Opus is transparent for a voice well below this. */
export const MIC_BITRATE = 40_000;
/** One Opus frame per packet, 20 ms: the usual VoIP size, 50 frames a second. */
const FRAME_US = 20_000;
/** Blocks waiting for the encoder beyond this: it cannot keep up, drop rather than lag. */
const MAX_ENCODE_QUEUE = 10;

/** The encoder settings at `sampleRate`, with Opus's frame size where the browser takes it. */
async function opusConfig(sampleRate) {
  const plain = { codec: 'opus', sampleRate, numberOfChannels: 1, bitrate: MIC_BITRATE };
  for (const config of [{ ...plain, opus: { frameDuration: FRAME_US } }, plain]) {
    const answer = await AudioEncoder.isConfigSupported(config).catch(() => null);
    if (answer?.supported) return config;
  }
  throw new Error('this browser cannot encode Opus (WebCodecs AudioEncoder)');
}

/** `data` as one mono f32-planar AudioData (a new one; the caller closes both). */
function toMono(data) {
  const planes = [];
  for (let c = 0; c < data.numberOfChannels; c++) {
    const plane = new Float32Array(data.numberOfFrames);
    data.copyTo(plane, { planeIndex: c, format: 'f32-planar' });
    planes.push(plane);
  }
  return new AudioData({ format: 'f32-planar', sampleRate: data.sampleRate, numberOfFrames: data.numberOfFrames,
    numberOfChannels: 1, timestamp: data.timestamp, data: downmix(planes) });
}

export class MicEncoder {
  /** WebCodecs' AudioEncoder (secure pages, recent browsers) and a way to read PCM. */
  static supported() {
    return typeof AudioEncoder === 'function' && typeof AudioData === 'function'
      && (typeof MediaStreamTrackProcessor === 'function' || audioWorkletSupported());
  }

  /**
   * @param {{track: MediaStreamTrack, onPacket: (bytes: Uint8Array, timestampUs: number) => void,
   *   onError: (err: Error) => void}} options: `onError` once, after which it is closed.
   */
  constructor({ track, onPacket, onError = () => {} }) {
    this.track = track;
    this.onPacket = onPacket;
    this.onError = onError;
    this.encoder = null;
    this.rate = 0;
    this.reader = null;
    this.context = null;
    this.clone = null;
    this.closed = false;
  }

  /** Starts reading and encoding; rejects when this browser cannot encode Opus. */
  async start() {
    this.base = await opusConfig(OPUS_RATE);
    if (this.closed) return;
    if (typeof MediaStreamTrackProcessor === 'function') this.#readTrack();
    else await this.#captureWorklet();
  }

  #readTrack() {
    // A clone, ended on close: how a processor's cancel treats its track is the browser's
    // business, and mic.js may hand the original to WebRTC next.
    this.clone = this.track.clone();
    const processor = new MediaStreamTrackProcessor({ track: this.clone });
    const reader = processor.readable.getReader();
    this.reader = reader;
    (async () => {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        if (this.closed) {
          value.close();
          return;
        }
        this.#encode(value);
      }
    })().catch((err) => this.#fail(err));
  }

  async #captureWorklet() {
    const { context, ready } = openAudioContext();
    this.context = context;
    await ready;
    if (this.closed) return;
    // Opened from the button's click, so this normally runs; if not, the next gesture does.
    context.resume().catch(() => {});
    const source = context.createMediaStreamSource(new MediaStream([this.track]));
    // Connected to the destination so the graph pulls it; the processor outputs silence.
    const node = new AudioWorkletNode(context, 'kelpie-capture', {
      numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1],
    });
    // Context time → this page's µs clock, as MediaStreamTrackProcessor timestamps are.
    const origin = performance.now() * 1000 - context.currentTime * 1e6;
    node.port.onmessage = ({ data: msg }) => {
      if (msg?.type !== 'pcm' || this.closed) return;
      this.#encode(new AudioData({ format: 'f32-planar', sampleRate: context.sampleRate, numberOfChannels: 1,
        numberOfFrames: msg.samples.length, timestamp: Math.round(origin + msg.time * 1e6), data: msg.samples }));
    };
    source.connect(node);
    node.connect(context.destination);
  }

  /** The encoder for `sampleRate` (a capture need not run at 48 kHz; Opus resamples). */
  #encoderFor(sampleRate) {
    if (this.encoder && this.rate === sampleRate) return this.encoder;
    try { this.encoder?.close(); } catch { /* already closed */ }
    this.encoder = new AudioEncoder({
      output: (chunk) => {
        if (this.closed) return;
        const bytes = new Uint8Array(chunk.byteLength);
        chunk.copyTo(bytes);
        this.onPacket(bytes, chunk.timestamp);
      },
      error: (err) => this.#fail(err),
    });
    this.encoder.configure({ ...this.base, sampleRate });
    this.rate = sampleRate;
    return this.encoder;
  }

  /** One block of PCM; closes `data`. */
  #encode(data) {
    let mono = null;
    try {
      if (this.closed) return;
      const encoder = this.#encoderFor(data.sampleRate);
      if (encoder.encodeQueueSize > MAX_ENCODE_QUEUE) return;
      mono = data.numberOfChannels === 1 ? null : toMono(data);
      encoder.encode(mono || data);
    } catch (err) {
      this.#fail(err);
    } finally {
      mono?.close();
      data.close();
    }
  }

  #fail(err) {
    if (this.closed) return;
    console.warn('kelpie: microphone encoding failed', err);
    this.close();
    this.onError(err instanceof Error ? err : new Error(String(err)));
  }

  /** Stops reading and encoding (the track itself belongs to mic.js). */
  close() {
    if (this.closed) return;
    this.closed = true;
    this.reader?.cancel().catch(() => {});
    this.clone?.stop();
    try { this.encoder?.close(); } catch { /* already closed */ }
    this.context?.close().catch(() => {});
  }
}

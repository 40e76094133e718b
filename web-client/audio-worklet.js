/**
 * The page's audio worklet module (loaded with `audioWorklet.addModule`, never imported by
 * the page): it runs on the browser's audio thread, where a buffer can be refilled every
 * 128 frames without waiting for the page's busy main thread (video decoding, input).
 *
 * - `kelpie-playback`: the page's own sound player (the WebSocket transport, WebRTC's
 *   low-latency channel). The page posts decoded PCM (`{type: 'pcm', planes}`); a
 *   JitterBuffer (pcm.js) turns those bursts into a steady output. Its processorOptions
 *   may set `targetMs`, `maxMs` and `adapt` ({stepMs, ceilingMs, calmMs, windowMs, graceMs}). It
 *   posts `{type: 'stats', buffered, target, underruns, trimmed}` about twice a second.
 * - `kelpie-capture`: the microphone where MediaStreamTrackProcessor is missing. It posts
 *   mono blocks (`{type: 'pcm', samples, time}`, `time` the context time of the first
 *   sample) of 20 ms, one Opus frame, so the page handles 50 messages a second, not 375.
 *
 * `sampleRate` and `currentTime` are globals of the AudioWorkletGlobalScope.
 */
import { JitterBuffer, downmix } from './pcm.js';

/** Defaults: ~2 Opus frames of cushion; past ~6 the oldest sound is dropped. */
const TARGET_MS = 40;
const MAX_MS = 120;
const STATS_EVERY_S = 0.5;
const CAPTURE_BLOCK_MS = 20;

class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const { targetMs = TARGET_MS, maxMs = MAX_MS, adapt = null } = options?.processorOptions || {};
    const frames = (ms) => (ms * sampleRate) / 1000;
    this.buffer = new JitterBuffer({
      target: frames(targetMs),
      max: frames(maxMs),
      adapt: adapt && {
        step: frames(adapt.stepMs), ceiling: frames(adapt.ceilingMs), calm: frames(adapt.calmMs), window: frames(adapt.windowMs),
        grace: frames(adapt.graceMs || 0),
      },
    });
    this.statsEvery = Math.round((STATS_EVERY_S * sampleRate) / 128);
    this.quanta = 0;
    this.port.onmessage = ({ data }) => {
      if (data?.type === 'pcm' && Array.isArray(data.planes)) this.buffer.push(data.planes);
      else if (data?.type === 'clear') this.buffer.clear();
    };
  }

  process(_inputs, outputs) {
    const out = outputs[0];
    if (out?.length) this.buffer.pull(out);
    if (++this.quanta >= this.statsEvery) {
      this.quanta = 0;
      const b = this.buffer;
      this.port.postMessage({ type: 'stats', buffered: b.buffered, target: b.target, underruns: b.underruns, trimmed: b.trimmed });
    }
    return true; // keep running between packets: silence is output too
  }
}

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = Math.round((CAPTURE_BLOCK_MS * sampleRate) / 1000);
    this.#fresh();
  }

  #fresh() {
    this.samples = new Float32Array(this.block);
    this.filled = 0;
    this.time = 0;
  }

  process(inputs) {
    const input = inputs[0];
    // No channels: the source is not connected (yet) or the track ended.
    if (!input?.length) return true;
    // Reused: the audio thread should not allocate 375 times a second.
    if (this.mono?.length !== input[0].length) this.mono = new Float32Array(input[0].length);
    const mono = downmix(input, this.mono);
    let read = 0;
    while (read < mono.length) {
      if (this.filled === 0) this.time = currentTime + read / sampleRate;
      const take = Math.min(mono.length - read, this.block - this.filled);
      this.samples.set(mono.subarray(read, read + take), this.filled);
      this.filled += take;
      read += take;
      if (this.filled === this.block) {
        this.port.postMessage({ type: 'pcm', samples: this.samples, time: this.time }, [this.samples.buffer]);
        this.#fresh();
      }
    }
    return true;
  }
}

registerProcessor('kelpie-playback', PlaybackProcessor);
registerProcessor('kelpie-capture', CaptureProcessor);

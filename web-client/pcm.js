/**
 * PCM rules shared by the audio worklet (audio-worklet.js) and the page: the playback
 * jitter buffer of the WebSocket transport and the microphone's mono downmix. Pure, no
 * Web Audio and no DOM (it runs in the AudioWorkletGlobalScope, which has neither), so the
 * unit tests drive it sample by sample in node.
 *
 * Counts are in sample frames (one sample per channel), never in time: the worklet turns
 * its millisecond targets into frames with its own `sampleRate`.
 */

/**
 * Decoded Opus on its way to the speakers. Packets arrive in bursts (TCP, the server's
 * pacing, a busy main thread), the audio device takes 128 frames at a steady pace, and the
 * two clocks drift apart slowly. This buffer:
 * - starts (and restarts after running dry) only once it holds `target` frames, so one
 *   late packet is absorbed instead of heard;
 * - plays silence while it is short (an underrun), never stale or repeated sound;
 * - drops its oldest frames down to `target` when it holds more than `max`, so a burst
 *   after a stall, or a sender clock faster than ours, cannot build up latency: a desktop's
 *   sound must stay with its picture.
 */
export class JitterBuffer {
  /**
   * @param {{target: number, max: number, adapt?: object}} frames: the fill to start at,
   *   and the fill above which the oldest frames are dropped (both in sample frames;
   *   max > target). `adapt` (for a path whose jitter is unknown, such as WebRTC's
   *   unreliable sound channel) makes the target follow the path:
   *   - `step`: frames added to the target at each underrun (up to `ceiling`);
   *   - `calm`: after this many frames played without an underrun, the target comes down
   *     by half a step (never below the starting target);
   *   - `grace` (optional): underruns in the first this many frames played do not count
   *     (a player just started: its context, decoder and page are still settling);
   *   - `window`: frames over which the lowest fill is watched; a fill that never went
   *     below the target in a whole window is latency nobody needed, and the excess is
   *     dropped (a burst after a stall would otherwise stay as delay for good).
   */
  constructor({ target, max, adapt = null }) {
    this.target = Math.max(0, Math.round(target));
    this.max = Math.max(this.target + 1, Math.round(max));
    this.adapt = adapt
      ? {
        floor: this.target,
        ceiling: Math.min(this.max - 1, Math.max(this.target, Math.round(adapt.ceiling))),
        step: Math.max(1, Math.round(adapt.step)),
        calm: Math.max(1, Math.round(adapt.calm)),
        window: Math.max(1, Math.round(adapt.window)),
        grace: Math.max(0, Math.round(adapt.grace || 0)),
      }
      : null;
    /** Frames played since the last underrun or target change; frames in this window and
     *  the lowest fill seen in it (adaptive only). */
    this.calmFor = 0;
    this.windowFor = 0;
    this.lowest = Infinity;
    /** Frames played in all (for the grace). */
    this.played = 0;
    /** Chunks of planar PCM (arrays of Float32Array, one per channel), oldest first. */
    this.chunks = [];
    /** Frames of the oldest chunk already played. */
    this.offset = 0;
    this.buffered = 0;
    /** Waiting to reach `target` before playing (at the start and after an underrun). */
    this.priming = true;
    /** Times playback ran dry, and frames dropped to keep latency down. */
    this.underruns = 0;
    this.trimmed = 0;
  }

  /** Adds one decoded chunk: one Float32Array per channel, all of one length. */
  push(planes) {
    const frames = planes[0]?.length || 0;
    if (!frames) return;
    this.chunks.push(planes);
    this.buffered += frames;
    if (this.buffered > this.max) this.#drop(this.buffered - this.target);
  }

  /** Forgets everything (a new stream): the next sound primes afresh. */
  clear() {
    this.chunks = [];
    this.offset = 0;
    this.buffered = 0;
    this.priming = true;
  }

  /**
   * Fills `out` (one Float32Array per output channel, all of one length) with the next
   * frames, or silence where there are none. A mono chunk feeds every output channel;
   * extra input channels are ignored. Returns the number of frames that were sound.
   */
  pull(out) {
    const n = out[0]?.length || 0;
    if (this.priming && this.buffered >= this.target && this.buffered > 0) this.priming = false;
    if (this.priming) {
      for (const ch of out) ch.fill(0);
      return 0;
    }
    let written = 0;
    while (written < n && this.chunks.length) {
      const planes = this.chunks[0];
      const take = Math.min(n - written, planes[0].length - this.offset);
      for (let c = 0; c < out.length; c++) {
        const src = planes[Math.min(c, planes.length - 1)];
        out[c].set(src.subarray(this.offset, this.offset + take), written);
      }
      written += take;
      this.#consume(take);
    }
    this.played += written;
    if (written < n) {
      for (const ch of out) ch.fill(0, written);
      this.underruns++;
      this.priming = true;
      if (this.adapt && this.played >= this.adapt.grace) this.#raise();
    } else if (this.adapt) {
      this.#settle(n);
    }
    return written;
  }

  /** An underrun: the path's jitter is more than the target allows for. */
  #raise() {
    const a = this.adapt;
    this.target = Math.min(a.ceiling, this.target + a.step);
    this.calmFor = 0;
    this.windowFor = 0;
    this.lowest = Infinity;
  }

  /** `n` frames played from the buffer: lower a target that has not been needed, and
   *  shed latency the fill shows was never used. */
  #settle(n) {
    const a = this.adapt;
    this.calmFor += n;
    if (this.calmFor >= a.calm) {
      this.calmFor = 0;
      this.target = Math.max(a.floor, this.target - Math.ceil(a.step / 2));
    }
    this.lowest = Math.min(this.lowest, this.buffered);
    this.windowFor += n;
    if (this.windowFor >= a.window) {
      if (this.lowest > this.target) this.#drop(this.lowest - this.target);
      this.windowFor = 0;
      this.lowest = Infinity;
    }
  }

  #drop(frames) {
    this.trimmed += frames;
    while (frames > 0 && this.chunks.length) {
      const take = Math.min(frames, this.chunks[0][0].length - this.offset);
      this.#consume(take);
      frames -= take;
    }
  }

  #consume(frames) {
    this.offset += frames;
    this.buffered -= frames;
    if (this.offset >= this.chunks[0][0].length) {
      this.chunks.shift();
      this.offset = 0;
    }
  }
}

/**
 * One channel from several: their average, so a stereo microphone (or a headset that
 * reports two identical channels) becomes the mono the encoder is configured for without
 * getting louder. `out` may be given to reuse memory; it must be as long as the planes.
 */
export function downmix(planes, out = new Float32Array(planes[0]?.length || 0)) {
  if (planes.length === 1) {
    out.set(planes[0]);
    return out;
  }
  out.fill(0);
  for (const p of planes) for (let i = 0; i < out.length; i++) out[i] += p[i];
  const k = 1 / planes.length;
  for (let i = 0; i < out.length; i++) out[i] *= k;
  return out;
}

/**
 * Sequence numbers of an unordered, unreliable packet stream (WebRTC's `audio` channel):
 * says for each arriving packet how many before it were lost, so that the player keeps
 * the timeline with silence in their place instead of running dry (which would read as
 * jitter and grow its buffer for nothing), and refuses one that comes after a newer one
 * (its moment has been played). Sequence numbers are u32 and wrap.
 */
export class SequenceGate {
  /** @param {number} maxGap: a longer gap is a new start (a restarted stream), not loss. */
  constructor(maxGap = 25) {
    this.maxGap = maxGap;
    this.last = null;
    this.lost = 0;
    this.late = 0;
  }

  /** `{missing}` (packets lost just before this one; 0 normally), or null: drop it. */
  accept(seq) {
    const s = seq >>> 0;
    if (this.last === null) {
      this.last = s;
      return { missing: 0 };
    }
    const ahead = (s - this.last) >>> 0;
    if (ahead === 0 || ahead > 0x8000_0000) {
      this.late++;
      return null;
    }
    this.last = s;
    const missing = ahead - 1;
    if (missing > this.maxGap) return { missing: 0 };
    this.lost += missing;
    return { missing };
  }
}

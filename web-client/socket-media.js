/**
 * The WebSocket transport's browser side (docs/protocol.md, "Media over the WebSocket"):
 * binary frames on the signalling socket carry H.264 access units and Opus packets down,
 * the microphone's Opus packets up, and data-channel messages both ways. Audio is played
 * by socket-audio.js and captured by mic-encoder.js; this module only spells its frames.
 *
 * Video is decoded with WebCodecs and shown in the page's own <video>: through a
 * MediaStreamTrackGenerator where the browser has one (Chromium), else through a canvas's
 * captureStream. Either way the rest of the page (input mapping, scaling, the cursor)
 * sees the same element it sees for WebRTC.
 *
 * A `SocketChannel` stands in for the RTCDataChannel, so channel.js and everything that
 * sends input does not know which transport carries it.
 */

export const KIND_CHANNEL = 1;
export const KIND_VIDEO = 2;
export const KIND_ACK = 3;
export const KIND_AUDIO = 4;
export const KIND_MIC = 5;
const FLAG_KEY = 1;
export const VIDEO_HEADER = 14;
/** Audio (4) and microphone (5) frames: kind, flags, seq u32, timestamp µs u64. */
export const AUDIO_HEADER = 14;
/** More decodes than this waiting means the decoder cannot keep up: skip to a keyframe. */
const MAX_DECODE_QUEUE = 3;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Microseconds since page start, strictly increasing (chunk timestamps must not repeat). */
let lastArrival = 0;
function arrivalUs() {
  lastArrival = Math.max(lastArrival + 1, Math.round(performance.now() * 1000));
  return lastArrival;
}

/**
 * Parses a server frame: {kind:'channel', text} | {kind:'video', key, seq, timestamp, data}
 * | {kind:'audio', seq, timestamp, data} (one Opus packet, 48 kHz stereo) | null.
 */
export function parseFrame(buffer) {
  const bytes = new Uint8Array(buffer);
  if (bytes.length < 1) return null;
  if (bytes[0] === KIND_CHANNEL) {
    try {
      return { kind: 'channel', text: decoder.decode(bytes.subarray(1)) };
    } catch {
      return null;
    }
  }
  if (bytes[0] === KIND_VIDEO && bytes.length >= VIDEO_HEADER) {
    const view = new DataView(buffer, bytes.byteOffset);
    return {
      kind: 'video',
      key: (bytes[1] & FLAG_KEY) !== 0,
      seq: view.getUint32(2),
      timestamp: Number(view.getBigUint64(6)),
      data: bytes.subarray(VIDEO_HEADER),
    };
  }
  // An Opus packet is never empty (its TOC byte), so a bare header is malformed.
  if (bytes[0] === KIND_AUDIO && bytes.length > AUDIO_HEADER) {
    const view = new DataView(buffer, bytes.byteOffset);
    return {
      kind: 'audio',
      seq: view.getUint32(2),
      timestamp: Number(view.getBigUint64(6)),
      data: bytes.subarray(AUDIO_HEADER),
    };
  }
  return null;
}

/**
 * One microphone Opus packet as a browser frame (kind 5): flags 0, `seq` (u32, consecutive
 * per packet), `tsUs` (u64, µs of the capture on the page's clock), big-endian, then the
 * packet: the same header as the server's audio frames.
 */
export function micFrame(seq, tsUs, packet) {
  const out = new Uint8Array(AUDIO_HEADER + packet.length);
  const view = new DataView(out.buffer);
  out[0] = KIND_MIC;
  out[1] = 0;
  view.setUint32(2, seq >>> 0);
  view.setBigUint64(6, BigInt(Math.max(0, Math.round(tsUs))));
  out.set(packet, AUDIO_HEADER);
  return out;
}

/**
 * The acknowledgement of video frame `seq`, received `atUs` microseconds into this page
 * (kind 3, u32 sequence, u64 µs, big-endian): the server's bandwidth estimate for this
 * socket reads the delay between its send times and these.
 */
export function ackFrame(seq, atUs) {
  const out = new Uint8Array(13);
  const view = new DataView(out.buffer);
  out[0] = KIND_ACK;
  view.setUint32(1, seq >>> 0);
  view.setBigUint64(5, BigInt(Math.max(0, Math.round(atUs))));
  return out;
}

/** A data-channel message as a browser frame: kind 1, then the UTF-8 text. */
export function channelFrame(text) {
  const body = encoder.encode(text);
  const out = new Uint8Array(body.length + 1);
  out[0] = KIND_CHANNEL;
  out.set(body, 1);
  return out;
}

/** The NAL units of an Annex B access unit, without start codes. */
export function nalUnits(au) {
  const starts = [];
  for (let i = 0; i + 3 <= au.length; i++) {
    if (au[i] === 0 && au[i + 1] === 0 && au[i + 2] === 1) {
      starts.push({ code: i > 0 && au[i - 1] === 0 ? i - 1 : i, payload: i + 3 });
      i += 2;
    }
  }
  return starts.map((s, n) => au.subarray(s.payload, n + 1 < starts.length ? starts[n + 1].code : au.length))
    .filter((nal) => nal.length > 0);
}

/** The WebCodecs codec string (avc1.PPCCLL) of an access unit's SPS, or null without one. */
export function codecOf(au) {
  const sps = nalUnits(au).find((n) => (n[0] & 0x1f) === 7);
  if (!sps || sps.length < 4) return null;
  const hex = (b) => b.toString(16).padStart(2, '0');
  return { codec: `avc1.${hex(sps[1])}${hex(sps[2])}${hex(sps[3])}`, sps: Array.from(sps).join(',') };
}

/** The data channel's interface over the socket: send, readyState, bufferedAmount, events. */
export class SocketChannel extends EventTarget {
  constructor(ws) {
    super();
    this.ws = ws;
    this.label = 'input';
    this.readyState = 'open';
  }

  send(text) {
    if (this.readyState !== 'open' || this.ws.readyState !== WebSocket.OPEN) throw new Error('channel closed');
    this.ws.send(channelFrame(text));
  }

  get bufferedAmount() {
    return this.ws.bufferedAmount;
  }

  /** A message from the server. */
  deliver(text) {
    if (this.readyState === 'open') this.dispatchEvent(new MessageEvent('message', { data: text }));
  }

  close() {
    if (this.readyState === 'closed') return;
    this.readyState = 'closed';
    this.dispatchEvent(new Event('close'));
  }
}

/** Where decoded frames go: a <video>-ready MediaStream and a way to hand it frames. */
function makeOutput() {
  if (typeof MediaStreamTrackGenerator === 'function') {
    const generator = new MediaStreamTrackGenerator({ kind: 'video' });
    const writer = generator.writable.getWriter();
    return {
      stream: new MediaStream([generator]),
      // desiredSize <= 0: the sink has not taken the last frame yet; newer is better.
      show(frame) {
        if (writer.desiredSize !== null && writer.desiredSize <= 0) return frame.close();
        writer.write(frame).catch(() => frame.close());
      },
      close() { writer.close().catch(() => {}); generator.stop(); },
    };
  }
  const canvas = document.createElement('canvas');
  const ctx = canvas.getContext('2d');
  return {
    stream: canvas.captureStream(),
    show(frame) {
      if (canvas.width !== frame.displayWidth || canvas.height !== frame.displayHeight) {
        canvas.width = frame.displayWidth;
        canvas.height = frame.displayHeight;
      }
      ctx.drawImage(frame, 0, 0);
      frame.close();
    },
    close() { this.stream.getTracks().forEach((t) => t.stop()); },
  };
}

/**
 * Decodes the socket's video. `askKeyframe()` is called when the decoder needs a fresh
 * start (after an error or a skipped frame); `onStream(stream)` once, with the stream.
 */
export class SocketMedia {
  constructor({ onStream, askKeyframe }) {
    this.onStream = onStream;
    this.askKeyframe = askKeyframe;
    this.output = null;
    this.decoder = null;
    this.config = null;
    this.waitKey = true;
    this.lastSeq = null;
    /** totalDecodeTime: seconds from each frame's arrival to its decoded picture, summed. */
    this.counts = { framesReceived: 0, framesDecoded: 0, framesDropped: 0, keyFramesDecoded: 0, bytesReceived: 0,
      totalDecodeTime: 0 };
    this.size = { width: 0, height: 0 };
    this.closed = false;
  }

  /** WebCodecs is there (secure contexts only) and a way to show its frames in a <video>. */
  static supported() {
    return typeof VideoDecoder === 'function' && typeof EncodedVideoChunk === 'function'
      && (typeof MediaStreamTrackGenerator === 'function' || 'captureStream' in HTMLCanvasElement.prototype);
  }

  /** Statistics in the shape of an inbound-rtp report (what the tests and overlay read). */
  stats() {
    return { timestamp: performance.now(), ...this.counts, frameWidth: this.size.width, frameHeight: this.size.height };
  }

  #ensureOutput() {
    if (this.output) return;
    this.output = makeOutput();
    this.onStream(this.output.stream);
  }

  #configure(codec) {
    this.decoder?.close?.();
    this.decoder = new VideoDecoder({
      output: (frame) => {
        this.counts.framesDecoded++;
        // The chunk was stamped with its arrival time (arrivalUs), so this is queue + decode.
        this.counts.totalDecodeTime += Math.max(0, performance.now() * 1000 - frame.timestamp) / 1e6;
        this.size = { width: frame.displayWidth, height: frame.displayHeight };
        if (this.closed) return frame.close();
        this.output.show(frame);
      },
      error: (err) => {
        console.warn('kelpie: video decoder error, waiting for a keyframe', err.message || err);
        this.decoder = null;
        this.config = null;
        this.#skip();
      },
    });
    // No `description`: the access units are Annex B with in-band SPS/PPS.
    this.decoder.configure({ codec: codec.codec, optimizeForLatency: true });
    this.config = codec;
  }

  #skip() {
    this.waitKey = true;
    this.askKeyframe();
  }

  /** One video frame from the socket. */
  video({ key, seq, data }) {
    if (this.closed) return;
    this.counts.framesReceived++;
    this.counts.bytesReceived += data.length + VIDEO_HEADER;
    this.#ensureOutput();
    // A gap means the server skipped frames for us; it sends a keyframe next.
    if (this.lastSeq !== null && seq !== ((this.lastSeq + 1) >>> 0) && !key) this.waitKey = true;
    this.lastSeq = seq;
    if (key) {
      const codec = codecOf(data);
      if (codec && (!this.config || codec.sps !== this.config.sps || !this.decoder)) {
        try {
          this.#configure(codec);
        } catch (err) {
          console.error('kelpie: this browser cannot decode the stream', err);
          this.counts.framesDropped++;
          return;
        }
      }
      this.waitKey = false;
    }
    if (this.waitKey || !this.decoder || this.decoder.state !== 'configured') {
      this.counts.framesDropped++;
      // Ask again while frames keep coming without a keyframe (`askKeyframe` is rate
      // limited): a request lost or merged on the way must not leave the picture frozen
      // while the desktop moves (seen once at 1080p60, every frame dropped for 10 s).
      this.askKeyframe();
      return;
    }
    if (!key && this.decoder.decodeQueueSize > MAX_DECODE_QUEUE) {
      this.counts.framesDropped++;
      this.#skip();
      return;
    }
    try {
      // Stamped with the time it arrived, on this page's clock, not the server's stream
      // time: nothing downstream should pace frames by the sender's clock (a still
      // screen's gaps, skipped stretches, a restarted pipeline); a remote desktop shows
      // each frame as soon as it is decoded.
      this.decoder.decode(new EncodedVideoChunk({ type: key ? 'key' : 'delta', timestamp: arrivalUs(), data }));
      if (key) this.counts.keyFramesDecoded++;
    } catch (err) {
      console.warn('kelpie: decode failed, waiting for a keyframe', err.message || err);
      this.counts.framesDropped++;
      this.#skip();
    }
  }

  close() {
    this.closed = true;
    try { this.decoder?.close(); } catch { /* already closed */ }
    this.output?.close();
  }
}

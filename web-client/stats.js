/**
 * The statistics overlay's pure core (no DOM, no timers, no clock of its own): a ring of
 * per-second samples, rates from the browser's cumulative counters, the server's `net`
 * message checked field by field, the glass-to-glass figure and its honesty label, and
 * the plot geometry. stats-overlay.js feeds it `getStats()` reports and timestamps; the
 * unit tests feed it numbers.
 */

/** Seconds of history the plots show: long enough to see a trend, short enough to read. */
export const WINDOW_SAMPLES = 30;

/** A fixed-size history, oldest first; `push` drops the oldest sample once full. */
export class SampleRing {
  constructor(capacity = WINDOW_SAMPLES) {
    this.capacity = capacity;
    this.items = [];
  }

  push(sample) {
    this.items.push(sample);
    if (this.items.length > this.capacity) this.items.splice(0, this.items.length - this.capacity);
  }

  clear() {
    this.items = [];
  }

  get length() {
    return this.items.length;
  }

  get latest() {
    return this.items[this.items.length - 1] ?? null;
  }

  /** One field of every sample, oldest first (null where a sample lacks it). */
  series(key) {
    return this.items.map((s) => (Number.isFinite(s?.[key]) ? s[key] : null));
  }
}

const finite = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);

/**
 * The browser's counters at one moment, `t` in ms: the inbound-rtp fields the overlay
 * uses (same names on the WebSocket transport's stats) and `presented`, the frames the
 * <video> presented (requestVideoFrameCallback's presentedFrames).
 */
export function snapshot(t, inbound, presented = null) {
  const s = inbound || {};
  return {
    t,
    presented: finite(presented),
    framesDecoded: finite(s.framesDecoded),
    bytesReceived: finite(s.bytesReceived),
    packetsLost: finite(s.packetsLost),
    packetsReceived: finite(s.packetsReceived),
    totalDecodeTime: finite(s.totalDecodeTime),
    jitterBufferDelay: finite(s.jitterBufferDelay),
    jitterBufferEmittedCount: finite(s.jitterBufferEmittedCount),
  };
}

/**
 * How much counter `key` grew from `a` to `b`; null when either lacks it or it went down
 * (a reconnect starts the counters of a new peer connection at zero).
 */
function grew(a, b, key) {
  if (a?.[key] == null || b?.[key] == null || b[key] < a[key]) return null;
  return b[key] - a[key];
}

/**
 * Per-second figures between two snapshots: fps (presented, else decoded), received
 * kbit/s, loss %, decode and jitter-buffer ms per frame. Null where the counters do not
 * allow it: no earlier snapshot, no time passed, a counter reset, or nothing to divide by.
 */
export function rates(prev, cur) {
  const out = { fps: null, recv_kbps: null, loss_pct: null, decode_ms: null, jitter_ms: null };
  if (!prev || !cur || !(cur.t > prev.t)) return out;
  const secs = (cur.t - prev.t) / 1000;
  const frames = grew(prev, cur, 'presented') ?? grew(prev, cur, 'framesDecoded');
  if (frames !== null) out.fps = frames / secs;
  const bytes = grew(prev, cur, 'bytesReceived');
  if (bytes !== null) out.recv_kbps = (bytes * 8) / 1000 / secs;
  const lost = grew(prev, cur, 'packetsLost');
  const received = grew(prev, cur, 'packetsReceived');
  if (lost !== null && received !== null && lost + received > 0) out.loss_pct = (100 * lost) / (lost + received);
  const decoded = grew(prev, cur, 'framesDecoded');
  const decodeSecs = grew(prev, cur, 'totalDecodeTime');
  if (decoded && decodeSecs !== null) out.decode_ms = (1000 * decodeSecs) / decoded;
  const emitted = grew(prev, cur, 'jitterBufferEmittedCount');
  const buffered = grew(prev, cur, 'jitterBufferDelay');
  if (emitted && buffered !== null) out.jitter_ms = (1000 * buffered) / emitted;
  return out;
}

/**
 * The video inbound-rtp report and the selected candidate pair's round-trip time (ms)
 * from a `getStats()` result (any iterable of reports, so tests pass plain arrays).
 */
export function readReport(reports) {
  const all = [...(reports?.values ? reports.values() : reports || [])];
  const inbound = all.find((s) => s.type === 'inbound-rtp' && s.kind === 'video') || null;
  const selectedId = all.find((s) => s.type === 'transport' && s.selectedCandidatePairId)?.selectedCandidatePairId;
  // Chromium names the pair on the transport; Firefox marks it `selected`.
  const pair = all.find((s) => s.type === 'candidate-pair' && (selectedId ? s.id === selectedId : s.selected || (s.nominated && s.state === 'succeeded')));
  const rtt = finite(pair?.currentRoundTripTime);
  return { inbound, rttMs: rtt === null ? null : rtt * 1000 };
}

const NET_NUMBERS = ['target_kbps', 'ceiling_kbps', 'floor_kbps', 'estimate_kbps', 'rtt_ms', 'loss_pct', 'queue_ms', 'fps'];

/** The server's `net` message with every field checked (null where absent or malformed). */
export function normaliseNet(msg) {
  if (!msg || msg.t !== 'net') return null;
  const out = {
    transport: msg.transport === 'webrtc' || msg.transport === 'websocket' ? msg.transport : null,
    encoder: typeof msg.encoder === 'string' && msg.encoder.length <= 64 ? msg.encoder : null,
    leader: typeof msg.leader === 'boolean' ? msg.leader : null,
  };
  for (const key of NET_NUMBERS) out[key] = finite(msg[key]) !== null && msg[key] >= 0 ? msg[key] : null;
  return out;
}

/**
 * Glass-to-glass as far as this page can know it. `measuredMs` (capture → display on
 * this clock, from requestVideoFrameCallback's captureTime, which browsers give only when
 * they can map the sender's clock onto ours) wins. Otherwise an estimate that adds what
 * is known — half the round trip, the server's send queue, the jitter buffer, decoding —
 * and says it leaves out capture, encoding and display; without a round trip or a decode
 * time there is nothing honest to add up, so n/a.
 */
export function glassToGlass({ measuredMs = null, rttMs = null, queueMs = null, jitterMs = null, decodeMs = null }) {
  if (finite(measuredMs) !== null && measuredMs >= 0) {
    return { ms: measuredMs, kind: 'measured', how: 'capture to display, sender clock mapped by the browser' };
  }
  if (finite(rttMs) === null || finite(decodeMs) === null) return { ms: null, kind: null, how: 'n/a: needs a round trip and a decode time' };
  const parts = ['½ RTT'];
  let ms = rttMs / 2 + decodeMs;
  if (finite(queueMs) !== null) { ms += queueMs; parts.push('server queue'); }
  if (finite(jitterMs) !== null) { ms += jitterMs; parts.push('jitter buffer'); }
  parts.push('decode');
  return { ms, kind: 'estimate', how: `estimate: ${parts.join(' + ')}; capture, encoding and display not included` };
}

/**
 * One sample of everything the overlay shows. The page's own measurements win over the
 * server's (RTT and loss from getStats on WebRTC); the server's fill in where the page
 * has none (the WebSocket transport has no RTCP). `kind` is the page's transport.
 */
export function combine({ t, kind = null, rates: r = {}, rttMs = null, net = null, width = 0, height = 0, measuredMs = null }) {
  const rtt = finite(rttMs) ?? net?.rtt_ms ?? null;
  const loss = finite(r.loss_pct) ?? net?.loss_pct ?? null;
  // The WebSocket transport shows each frame once decoded: there is no jitter buffer.
  const jitter = kind === 'websocket' ? 0 : finite(r.jitter_ms);
  const glass = glassToGlass({ measuredMs, rttMs: rtt, queueMs: net?.queue_ms ?? null, jitterMs: jitter, decodeMs: r.decode_ms });
  return {
    t,
    transport: kind ?? net?.transport ?? null,
    encoder: net?.encoder ?? null,
    width: width || null,
    height: height || null,
    fps: finite(r.fps),
    // 0: the server caps nothing below its own --framerate.
    capture_fps: net?.fps > 0 ? net.fps : null,
    recv_kbps: finite(r.recv_kbps),
    estimate_kbps: net?.estimate_kbps ?? null,
    target_kbps: net?.target_kbps ?? null,
    ceiling_kbps: net?.ceiling_kbps ?? null,
    floor_kbps: net?.floor_kbps ?? null,
    leader: net?.leader ?? null,
    rtt_ms: rtt,
    loss_pct: loss,
    queue_ms: net?.queue_ms ?? null,
    decode_ms: finite(r.decode_ms),
    jitter_ms: jitter,
    glass_ms: glass.ms,
    glass_kind: glass.kind,
    glass_how: glass.how,
  };
}

/** Axis tops: round enough to read, close enough that a line does not hug the bottom. */
const NICE = [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10];

/** The smallest NICE × 10ⁿ at or above `v` (and at least `floor`): the top of a plot's axis. */
export function niceCeil(v, floor = 1) {
  const x = Math.max(finite(v) ?? 0, floor);
  const p = 10 ** Math.floor(Math.log10(x));
  return NICE.find((m) => m * p >= x * (1 - 1e-9)) * p;
}

/**
 * Screen points for `values` (oldest first, null = no sample) in a `width` × `height`
 * box whose top is `max`: one slot per sample of a `slots`-long window with the newest
 * at the right edge, values clamped into the box. Returns polylines, broken at gaps.
 */
export function plotLines(values, { width, height, max, slots = WINDOW_SAMPLES }) {
  const step = width / Math.max(1, slots - 1);
  const lines = [];
  let line = null;
  values.forEach((v, i) => {
    if (finite(v) === null) { line = null; return; }
    const x = width - (values.length - 1 - i) * step;
    const y = height - (Math.min(Math.max(v, 0), max) / max) * height;
    if (!line) lines.push((line = []));
    line.push([x, y]);
  });
  return lines;
}

/** A short readable number (2, 1 or 0 decimals by size, no trailing zeros); 'n/a' when unknown. */
export function fmt(v, unit = '') {
  if (finite(v) === null) return 'n/a';
  const digits = Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  const text = v.toFixed(digits).replace(/\.0+$|(\.\d*[1-9])0+$/, '$1');
  return unit ? `${text} ${unit}` : text;
}

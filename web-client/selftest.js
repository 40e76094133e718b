/**
 * "Test connection": a short self-test over the `input` channel, the path this page's
 * input and (on WebRTC) its media take. Five pings, one at a time, give the round trip;
 * then one bandwidth probe: the server sends `probe-data` messages as fast as the channel
 * allows, and the throughput is timed from the first message to the last (so the time to
 * the first one, a round trip, is not counted). Both share the link with the running video,
 * so they measure what is left over, not what the link could do alone.
 *
 * Messages (server contract): `{t:'ping', id}` → `{t:'pong', id}`; `{t:'probe', bytes}` →
 * `{t:'probe-data', id, seq, of, pad}` × `of`, or `{t:'probe-refused', why}`.
 *
 * `ConnectionTest` takes its clock and timers as arguments, so the tests drive it with
 * a fake clock instead of waiting.
 */

export const PING_COUNT = 5;
/** A pong later than this counts as lost: far beyond any round trip a desktop is usable at. */
export const PING_TIMEOUT_MS = 2000;
/** The most the server sends per probe: enough for ~64 messages to time, ~1 s at 8 Mbit/s. */
export const PROBE_BYTES = 1_048_576;
export const PROBE_TIMEOUT_MS = 10_000;
const ID_SPACE = 2 ** 31;

export function median(values) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return null;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

/**
 * Throughput of one probe from its arrivals `[{seq, t, bytes}]` (t in ms): the bytes of
 * messages 1..of-1 over the time from message 0 to message of-1. Message 0's own bytes are
 * not counted, its arrival starts the clock. Null unless both ends arrived and time passed.
 */
export function probeThroughput(arrivals, of) {
  const first = arrivals.find((a) => a.seq === 0);
  const last = arrivals.find((a) => a.seq === of - 1);
  if (!first || !last || of < 2 || !(last.t > first.t)) return null;
  const bytes = arrivals.filter((a) => a.seq > 0 && a.seq < of).reduce((sum, a) => sum + a.bytes, 0);
  const ms = last.t - first.t;
  return { bytes, ms, mbps: (bytes * 8) / (ms * 1000) };
}

/** A fresh result: what the overlay shows and the tests read. */
function blank(status) {
  return { status, rtt_ms: null, rtt_samples: [], pings_lost: 0, mbps: null, probe_bytes: null, probe_ms: null,
    refused: null, error: null };
}

export class ConnectionTest {
  /**
   * `send(msg)` puts a message on the channel and returns false when it is closed;
   * `onChange(result)` after every step. `now`, `setTimer`, `clearTimer`: the clock.
   */
  constructor({ send, onChange = () => {}, now = () => performance.now(), setTimer = (fn, ms) => setTimeout(fn, ms),
    clearTimer = (id) => clearTimeout(id), random = Math.random }) {
    // Called as methods of this object: browsers refuse a bare setTimeout with another `this`.
    Object.assign(this, { send, onChange, now, setTimer, clearTimer });
    this.nextId = Math.floor(random() * ID_SPACE);
    this.result = blank('idle');
    this.running = null;
    /** What `receive` is waiting for: {match(msg, text) → done?, resolve, timer}. */
    this.waiting = null;
  }

  /** Runs the test once; a second call while it runs gets the same promise. */
  run() {
    this.running ??= this.#run()
      .catch((err) => this.#fail(`unexpected error: ${err.message || err}`))
      .finally(() => { this.running = null; });
    return this.running;
  }

  /** A message from the server (channel.on for pong, probe-data and probe-refused). */
  receive(msg, text = '') {
    const w = this.waiting;
    if (w && w.match(msg, text)) {
      this.waiting = null;
      this.clearTimer(w.timer);
      w.resolve(true);
    }
  }

  #update(changes) {
    Object.assign(this.result, changes);
    this.onChange(this.result);
  }

  /** Resolves true once `match` says done, false after `ms`. */
  #wait(ms, match) {
    return new Promise((resolve) => {
      const timer = this.setTimer(() => {
        if (this.waiting?.timer !== timer) return;
        this.waiting = null;
        resolve(false);
      }, ms);
      this.waiting = { match, resolve, timer };
    });
  }

  async #run() {
    this.result = blank('pinging');
    this.onChange(this.result);
    for (let i = 0; i < PING_COUNT; i++) {
      const id = this.nextId;
      this.nextId = (this.nextId + 1) % ID_SPACE;
      const sent = this.now();
      const answered = this.#wait(PING_TIMEOUT_MS, (m) => m.t === 'pong' && m.id === id);
      if (!this.send({ t: 'ping', id })) return this.#fail('not connected');
      if (await answered) {
        this.#update({ rtt_samples: [...this.result.rtt_samples, this.now() - sent] });
        this.#update({ rtt_ms: median(this.result.rtt_samples) });
      } else {
        this.#update({ pings_lost: this.result.pings_lost + 1 });
      }
    }
    if (!this.result.rtt_samples.length) return this.#fail(`no answer to ${PING_COUNT} pings (a server without the self-test?)`);

    this.#update({ status: 'probing' });
    let probeId = null;
    let of = 0;
    let refused = null;
    const arrivals = [];
    const done = this.#wait(PROBE_TIMEOUT_MS, (m, text) => {
      if (m.t === 'probe-refused') {
        refused = typeof m.why === 'string' && m.why ? m.why : 'refused';
        return true;
      }
      if (m.t !== 'probe-data' || !Number.isInteger(m.seq) || !Number.isInteger(m.of) || m.of < 1) return false;
      // Message 0 names the probe: late messages of an earlier, timed-out one are ignored.
      if (m.seq === 0) { probeId = m.id; of = m.of; arrivals.length = 0; }
      if (probeId === null || m.id !== probeId) return false;
      arrivals.push({ seq: m.seq, t: this.now(), bytes: text.length });
      return m.seq === of - 1;
    });
    if (!this.send({ t: 'probe', bytes: PROBE_BYTES })) return this.#fail('not connected');
    const complete = await done;
    if (refused) return this.#update({ status: 'done', refused });
    if (!complete) return this.#fail(`bandwidth probe timed out after ${PROBE_TIMEOUT_MS / 1000} s (${arrivals.length} of ${of || '?'} messages)`);
    const tp = probeThroughput(arrivals, of);
    if (!tp) return this.#fail('the probe arrived too fast (or too short) for this page\'s clock to time');
    return this.#update({ status: 'done', mbps: tp.mbps, probe_bytes: tp.bytes, probe_ms: tp.ms });
  }

  #fail(error) {
    if (this.waiting) {
      this.clearTimer(this.waiting.timer);
      this.waiting = null;
    }
    return this.#update({ status: 'failed', error });
  }
}

/** The result as sentences for the overlay. */
export function describeTest(r) {
  if (r.status === 'idle') return '';
  if (r.status === 'pinging') return `Measuring the round trip… (${r.rtt_samples.length} of ${PING_COUNT})`;
  const lines = [];
  if (r.rtt_ms !== null) {
    const lost = r.pings_lost ? `, ${r.pings_lost} lost` : '';
    lines.push(`Round trip: median ${r.rtt_ms.toFixed(1)} ms (${r.rtt_samples.length} of ${PING_COUNT} pings${lost}).`);
  }
  if (r.status === 'probing') lines.push('Probing the bandwidth…');
  if (r.mbps !== null) {
    lines.push(`Throughput: ${r.mbps.toFixed(1)} Mbit/s (${(r.probe_bytes / 1024).toFixed(0)} KiB in ${r.probe_ms.toFixed(0)} ms).`);
  }
  if (r.refused) lines.push(`Bandwidth probe refused by the server: ${r.refused}`);
  if (r.error) lines.push(`Test failed: ${r.error}.`);
  return lines.join(' ');
}

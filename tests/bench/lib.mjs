/**
 * Process handling and /proc accounting for the benchmark.
 *
 * Every process is spawned in its own process group, tracked by PID, and killed (its
 * group, SIGKILL) when the benchmark stops or exits for any reason. Every wait is bounded.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { freePort, live, sleep, waitFor } from '../e2e/procs.mjs';

export { freePort, live, sleep, waitFor };

/** Clock ticks per second of /proc/<pid>/stat times (CLK_TCK; 100 on every Linux we run on). */
export const CLK_TCK = 100;

/** A child process in its own process group, logged to `<logDir>/<name>.log`. */
export class Proc {
  constructor(name, cmd, args, { logDir, env = {}, stdio = ['ignore', 'pipe', 'pipe'], onLine } = {}) {
    this.name = name;
    this.tailLines = [];
    fs.mkdirSync(logDir, { recursive: true });
    this.logPath = path.join(logDir, `${name}.log`);
    this.log = fs.createWriteStream(this.logPath);
    this.log.write(`$ ${cmd} ${args.join(' ')}\n`);
    this.child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio, detached: true });
    this.pid = this.child.pid;
    this.exitStatus = undefined;
    this.exited = new Promise((resolve) => {
      this.child.on('exit', (code, signal) => {
        live.delete(this.pid);
        this.exitStatus = signal || code;
        this.record(`[${name} exited: ${signal || code}]`);
        resolve(this.exitStatus);
      });
    });
    this.child.on('error', (err) => {
      this.exitStatus = 'spawn-error';
      this.record(`[${name} failed to start: ${err.message}]`);
    });
    if (this.pid) live.add(this.pid);
    for (const [stream, handler] of [[this.child.stdout, onLine], [this.child.stderr, null]]) {
      if (!stream) continue;
      readline.createInterface({ input: stream }).on('line', (line) => {
        this.record(line);
        handler?.(line);
      });
    }
  }

  record(line) {
    line = line.replace(/\x1b\[[0-9;]*m/g, '');
    if (!this.log.writableEnded) this.log.write(`${line}\n`);
    this.tailLines.push(line);
    if (this.tailLines.length > 200) this.tailLines.splice(0, this.tailLines.length - 200);
  }

  get running() {
    return this.exitStatus === undefined && !!this.pid;
  }

  tail(n = 20) {
    return `--- ${this.name} (${this.logPath}) ---\n${this.tailLines.slice(-n).join('\n')}`;
  }

  /** SIGTERM to the group, SIGKILL after `graceMs`. */
  async stop(graceMs = 3000) {
    if (this.stopped) return;
    this.stopped = true;
    if (this.running) {
      try { process.kill(-this.pid, 'SIGTERM'); } catch { /* gone */ }
      await Promise.race([this.exited, sleep(graceMs)]);
    }
    try { process.kill(-this.pid, 'SIGKILL'); } catch { /* gone */ }
    await Promise.race([this.exited, sleep(1000)]);
    live.delete(this.pid);
    await new Promise((resolve) => this.log.end(resolve));
  }
}

/** A process whose stdout is JSON lines, collected into `events`. */
export class JsonProc extends Proc {
  /** `opts.onEvent(event)` is called synchronously as each line arrives. */
  constructor(name, cmd, args, opts = {}) {
    const events = [];
    super(name, cmd, args, {
      ...opts,
      onLine: (line) => {
        let v;
        try {
          v = JSON.parse(line);
        } catch {
          return; // not JSON
        }
        v._rx = Date.now();
        events.push(v);
        opts.onEvent?.(v);
      },
    });
    this.events = events;
  }

  /** The first event from index `from` matching `pred`. */
  async waitEvent(what, pred, timeoutMs = 10_000, from = 0) {
    return waitFor(what, () => {
      const hit = this.events.slice(from).find(pred);
      if (hit) return hit;
      if (!this.running) throw new Error(`${this.name} exited (${this.exitStatus})\n${this.tail()}`);
      return null;
    }, { timeoutMs, intervalMs: 20 });
  }
}

/** Every process: pid → {ppid, ticks (utime+stime+cutime+cstime)}. */
function processTable() {
  const table = new Map();
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat;
    try { stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8'); } catch { continue; }
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // rest[0] is field 3 (state): ppid is field 4, utime..cstime fields 14..17.
    const ppid = Number(rest[1]);
    const ticks = Number(rest[11]) + Number(rest[12]) + Number(rest[13]) + Number(rest[14]);
    table.set(Number(entry), { ppid, ticks });
  }
  return table;
}

/** CPU ticks of each root's whole process tree (itself and all descendants), one /proc scan. */
export function treeTicks(roots) {
  const table = processTable();
  const children = new Map();
  for (const [pid, { ppid }] of table) {
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(pid);
  }
  const out = {};
  for (const [name, root] of Object.entries(roots)) {
    if (!root || !table.has(root)) { out[name] = null; continue; }
    let sum = 0;
    const stack = [root];
    const seen = new Set();
    while (stack.length) {
      const pid = stack.pop();
      if (seen.has(pid)) continue;
      seen.add(pid);
      sum += table.get(pid)?.ticks ?? 0;
      stack.push(...(children.get(pid) || []));
    }
    out[name] = sum;
  }
  return out;
}

/** Busy and total jiffies of the whole machine, from /proc/stat. */
export function machineTicks() {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line;
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/**
 * A CPU meter over named process trees: `start()`, then `stop()` → {name: % of one core},
 * plus `machine_pct` (all cores busy, % of one core) and `seconds`.
 */
export class CpuMeter {
  constructor(roots) {
    this.roots = roots;
  }

  start() {
    this.t0 = performance.now();
    this.a = treeTicks(this.roots);
    this.m0 = machineTicks();
    return this;
  }

  stop() {
    const seconds = (performance.now() - this.t0) / 1000;
    const b = treeTicks(this.roots);
    const m1 = machineTicks();
    const out = { seconds: round(seconds, 2) };
    for (const name of Object.keys(this.roots)) {
      out[name] = this.a[name] == null || b[name] == null ? null : round((100 * (b[name] - this.a[name])) / CLK_TCK / seconds, 1);
    }
    out.machine_pct = round((100 * (m1.busy - this.m0.busy)) / CLK_TCK / seconds, 1);
    // Everything else on the machine (other users' builds and tests): noise to report.
    const ours = Object.keys(this.roots).reduce((sum, name) => sum + (out[name] ?? 0), 0);
    out.others_pct = round(Math.max(0, out.machine_pct - ours), 1);
    return out;
  }
}

/** Peak resident set (VmHWM) of one process, in bytes. */
export function peakRss(pid) {
  try {
    const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = status.match(/^VmHWM:\s+(\d+)\s+kB/m);
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

export function round(x, digits = 1) {
  if (x == null || !Number.isFinite(x)) return null;
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** The q-quantile (0..1) of numbers, linear interpolation; null when empty. */
export function quantile(values, q) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const pos = (v.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return v[lo] + (v[hi] - v[lo]) * (pos - lo);
}

/** GET `url` with a timeout → {status, text} or null. Loopback only. */
export async function httpGet(url, timeoutMs = 3000) {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    return { status: res.status, text: await res.text() };
  } catch {
    return null;
  }
}

/** Prometheus text → {metric_name: value} for unlabelled samples (labelled ones summed). */
export function parseMetrics(text) {
  const out = {};
  const samples = [];
  for (const line of (text || '').split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{[^}]*\})?\s+(\S+)/);
    if (!m) continue;
    const v = Number(m[3]);
    if (!Number.isFinite(v)) continue;
    out[m[1]] = (out[m[1]] ?? 0) + v;
    if (m[2]) samples.push({ name: m[1], labels: m[2], value: v });
  }
  // Labelled samples, one each (the keys above sum a metric's labels).
  Object.defineProperty(out, 'samples', { value: samples, enumerable: false });
  return out;
}

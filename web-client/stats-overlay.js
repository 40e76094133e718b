/**
 * The statistics overlay (toolbar "Statistics" button, or Ctrl+Alt+Shift+S): how the
 * picture reaches this page right now. Live plots of the last 30 s — presented frames/s,
 * received bitrate against the server's estimate and encoder target, round trip, loss,
 * decode time — the latest values as text, and a "Test connection" self-test
 * (selftest.js).
 *
 * Sources: the page's own counters (RTCPeerConnection.getStats on WebRTC, the WebSocket
 * decoder's counts otherwise, requestVideoFrameCallback for presented frames) and the
 * server's once-a-second `net` message on the `input` channel. The page's own
 * measurements win where both exist; stats.js decides and labels what is estimated.
 *
 * Plain <canvas>, no chart library: a few hundred points a second need no dependency,
 * the whole drawing is ~30 lines, and the client stays a handful of files served by the
 * binary with no build step.
 *
 * Cost: while the panel is hidden nothing runs — no timer, no getStats, no frame callback;
 * only the `net` message is kept (a field assignment), so opening shows server values at
 * once. History starts afresh at every opening.
 *
 * Stable selectors (tests, docs): `#stats-button`, `#stats-panel`, `#stats-facts dd[data-key=…]`,
 * `#stats-test`, `#stats-test-result`; `window.kelpie.statsOverlay` has the values.
 */
import { el, keepKeys } from './dom.js';
import { registerPanel } from './panels.js';
import { SampleRing, WINDOW_SAMPLES, combine, fmt, niceCeil, normaliseNet, plotLines, rates, readReport, snapshot } from './stats.js';
import { ConnectionTest, describeTest } from './selftest.js';

/** One sample a second: the rates are per second and the server reports as often. */
const SAMPLE_MS = 1000;
/** The server's `net` arrives every second; one older than this no longer describes now. */
const NET_STALE_MS = 3000;

/** Ctrl+Alt+Shift+S, like Ctrl+Alt+Shift+L for pointer lock: no desktop needs that chord. */
export function isStatsShortcut(ev) {
  return ev.type === 'keydown' && ev.ctrlKey && ev.altKey && ev.shiftKey && !ev.metaKey && ev.code === 'KeyS';
}

/** The plots: [sample field, legend, colour, dashed]. `floor`: the smallest axis top. */
const PLOTS = [
  { id: 'fps', title: 'Frames per second', series: [['fps', 'presented', '#5cb85c'], ['capture_fps', 'capture limit', '#999', true]], floor: 10 },
  { id: 'bitrate', title: 'Bitrate, kbit/s', series: [['recv_kbps', 'received', '#8cc4ff'],
    ['estimate_kbps', 'server estimate', '#f0ad4e', true], ['target_kbps', 'encoder target', '#e06c9f', true]], floor: 100 },
  { id: 'rtt', title: 'Round trip, ms', series: [['rtt_ms', 'RTT', '#c9a0ff']], floor: 10 },
  { id: 'loss', title: 'Packet loss, %', series: [['loss_pct', 'lost', '#d9534f']], floor: 1 },
  { id: 'decode', title: 'Decode, ms per frame', series: [['decode_ms', 'decode', '#7fd1c7']], floor: 5 },
];

const TRANSPORT_NAMES = { webrtc: 'WebRTC', websocket: 'WebSocket' };

/**
 * The facts list: [key, label, text of a sample, wide]. Short ones sit two to a row so the
 * panel fits a laptop screen with the plots; `wide` ones take a row of their own.
 */
const FACTS = [
  ['transport', 'Transport', (s) => TRANSPORT_NAMES[s.transport] ?? 'n/a'],
  ['encoder', 'Encoder', (s) => s.encoder ?? 'n/a'],
  ['size', 'Frame size', (s) => (s.width && s.height ? `${s.width}×${s.height}` : 'n/a')],
  ['rtt', 'Round trip', (s) => fmt(s.rtt_ms, 'ms')],
  ['loss', 'Packet loss', (s) => fmt(s.loss_pct, '%')],
  ['decode', 'Decode', (s) => fmt(s.decode_ms, 'ms')],
  ['jitter', 'Jitter buffer', (s) => fmt(s.jitter_ms, 'ms')],
  ['queue', 'Server queue', (s) => fmt(s.queue_ms, 'ms')],
  ['fps', 'Frame rate', (s) => fmt(s.fps, 'fps') + (s.capture_fps === null ? '' : ` (capture capped at ${fmt(s.capture_fps, 'fps')})`), true],
  ['bitrate', 'Bitrate', (s) => `received ${fmt(s.recv_kbps, 'kbit/s')}; server estimate ${fmt(s.estimate_kbps)}, `
    + `encoder target ${fmt(s.target_kbps)} (range ${fmt(s.floor_kbps)}–${fmt(s.ceiling_kbps)})`, true],
  ['leader', 'Bitrate led by', (s) => (s.leader === null ? 'n/a' : s.leader ? 'this viewer\'s estimate'
    : 'not this viewer\'s estimate'), true],
  ['glass', 'Glass to glass', (s) => (s.glass_ms === null ? s.glass_how
    : `${s.glass_kind === 'estimate' ? '≈ ' : ''}${fmt(s.glass_ms, 'ms')} (${s.glass_how})`), true],
];

function drawPlot(canvas, plot, ring) {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return;
  if (canvas.width !== Math.round(width * dpr)) canvas.width = Math.round(width * dpr);
  if (canvas.height !== Math.round(height * dpr)) canvas.height = Math.round(height * dpr);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const values = plot.series.map(([key]) => ring.series(key));
  const max = niceCeil(Math.max(0, ...values.flat().filter((v) => v !== null)), plot.floor);
  ctx.strokeStyle = '#444';
  ctx.lineWidth = 1;
  ctx.beginPath();
  ctx.moveTo(0, 0.5);
  ctx.lineTo(width, 0.5);
  ctx.moveTo(0, height / 2);
  ctx.lineTo(width, height / 2);
  ctx.stroke();
  // Backwards, so the first series (the page's own measurement) is drawn over the references.
  plot.series.map((series, i) => [series, i]).reverse().forEach(([[, , colour, dashed], i]) => {
    ctx.strokeStyle = colour;
    ctx.lineWidth = 1.5;
    ctx.setLineDash(dashed ? [4, 3] : []);
    for (const line of plotLines(values[i], { width, height, max })) {
      ctx.beginPath();
      line.forEach(([x, y], n) => (n ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      if (line.length === 1) ctx.lineTo(line[0][0] - 1, line[0][1]);
      ctx.stroke();
    }
  });
  ctx.setLineDash([]);
  ctx.fillStyle = '#aaa';
  ctx.font = '10px system-ui, sans-serif';
  ctx.fillText(fmt(max), 2, 10);
  return max;
}

/**
 * Builds the panel and its toolbar button. `keyboard` (keyboard.js) takes the shortcut,
 * `channel` is channel.js; `transport()`, `pc()` and `videoStats()` read the session.
 */
export function attachStatsOverlay({ video, keyboard, channel, transport, pc, videoStats }) {
  const ring = new SampleRing(WINDOW_SAMPLES);
  let net = null;
  let netAt = -Infinity;
  channel.on('net', (msg) => {
    const n = normaliseNet(msg);
    if (n) { net = n; netAt = performance.now(); }
  });

  const panel = el('section', { id: 'stats-panel', className: 'panel stats-panel', hidden: true,
    role: 'region', 'aria-label': 'Connection statistics', tabIndex: -1 });
  // The visible "Stats" is its accessible name too (what speech input users say).
  const button = el('button', { type: 'button', id: 'stats-button', title: 'Statistics', textContent: 'Stats',
    'aria-expanded': 'false', 'aria-controls': panel.id });
  const closeButton = el('button', { type: 'button', className: 'panel-close', textContent: '×', 'aria-label': 'Close statistics' });
  const facts = el('dl', { id: 'stats-facts', className: 'stats-facts' });
  const values = new Map();
  for (const [key, label, , wide] of FACTS) {
    const dd = el('dd', { 'data-key': key, textContent: 'n/a', className: wide ? 'wide' : '' });
    values.set(key, dd);
    facts.append(el('dt', { textContent: label, className: wide ? 'wide' : '' }), dd);
  }
  const canvases = PLOTS.map((plot) => {
    const canvas = el('canvas', { className: 'stats-canvas', role: 'img', 'aria-label': `${plot.title}, last 30 s` });
    const legend = plot.series.map(([, name, colour, dashed]) => el('span', { className: 'stats-key' }, [
      el('span', { className: `stats-swatch${dashed ? ' dashed' : ''}`, style: `--swatch: ${colour}`, 'aria-hidden': 'true' }), name]));
    panel.append(el('figure', { className: 'stats-plot', 'data-plot': plot.id }, [
      el('figcaption', {}, [el('span', { className: 'stats-title', textContent: plot.title }), ...legend]), canvas]));
    return canvas;
  });
  const testButton = el('button', { type: 'button', id: 'stats-test', textContent: 'Test connection',
    'aria-describedby': 'stats-test-hint' });
  const testResult = el('p', { id: 'stats-test-result', role: 'status', 'aria-live': 'polite' });
  panel.prepend(el('h2', {}, ['Statistics', closeButton]), facts);
  panel.append(
    el('h3', { textContent: 'Test connection' }),
    el('p', { id: 'stats-test-hint', className: 'hint', textContent: 'A short probe: 5 pings, then 1 MiB as fast '
      + 'as the connection takes it. It shares the link with the video: it shows what the video leaves over, '
      + 'not the link\'s full speed, and briefly slows the picture.' }),
    el('div', { className: 'row' }, [testButton]),
    testResult,
    el('p', { className: 'hint', textContent: 'Ctrl+Alt+Shift+S shows or hides this panel; Esc closes it.' }),
  );
  document.body.append(panel);
  document.getElementById('toolbar')?.append(button);
  keepKeys(panel); // Tab and Enter on its buttons are for the panel, not the desktop

  // --- sampling, only while open -------------------------------------------------------
  let timer = 0;
  let frameCallback = 0;
  let presented = null;
  let measuredMs = null;
  let prev = null;
  let source = null;
  let busy = false;

  function onFrame(_now, meta) {
    presented = meta.presentedFrames;
    // Only where the browser maps the sender's capture clock onto ours (not Chromium's
    // default WebRTC path today): then capture → display is a measurement.
    if (Number.isFinite(meta.captureTime)) measuredMs = (meta.expectedDisplayTime ?? meta.presentationTime) - meta.captureTime;
    frameCallback = video.requestVideoFrameCallback(onFrame);
  }

  async function sample() {
    if (busy) return; // a slow getStats: skip a second rather than pile up
    busy = true;
    try {
      const kind = transport()?.kind ?? null;
      const peer = kind === 'webrtc' ? pc() : null;
      let inbound = null;
      let rttMs = null;
      if (peer) ({ inbound, rttMs } = readReport(await peer.getStats()));
      else inbound = await videoStats();
      const t = performance.now();
      // Another peer connection or transport counts from zero: no rate across the switch.
      if ((peer || kind) !== source) { prev = null; source = peer || kind; }
      const snap = snapshot(t, inbound, presented);
      const r = rates(prev, snap);
      prev = snap;
      ring.push(combine({ t, kind, rates: r, rttMs, net: t - netAt <= NET_STALE_MS ? net : null,
        width: inbound?.frameWidth || video.videoWidth, height: inbound?.frameHeight || video.videoHeight, measuredMs }));
      measuredMs = null;
      render();
    } catch (err) {
      console.warn('kelpie: statistics sample failed', err);
    } finally {
      busy = false;
    }
  }

  function render() {
    const s = ring.latest;
    if (!s || panel.hidden) return;
    for (const [key, , text] of FACTS) {
      const t = text(s);
      if (values.get(key).textContent !== t) values.get(key).textContent = t;
    }
    PLOTS.forEach((plot, i) => {
      const max = drawPlot(canvases[i], plot, ring);
      const now = plot.series.map(([key, name]) => `${name} ${fmt(s[key])}`).join(', ');
      canvases[i].setAttribute('aria-label', `${plot.title}, last 30 s, axis top ${fmt(max)}: now ${now}`);
    });
  }

  function setOpen(open, { focus = false } = {}) {
    if (open === !panel.hidden) return;
    panel.hidden = !open; // panels.js keeps the button's aria-expanded
    clearInterval(timer);
    timer = 0;
    if (frameCallback) video.cancelVideoFrameCallback?.(frameCallback);
    frameCallback = 0;
    if (!open) return;
    ring.clear();
    prev = null;
    presented = null;
    if (video.requestVideoFrameCallback) frameCallback = video.requestVideoFrameCallback(onFrame);
    timer = setInterval(sample, SAMPLE_MS);
    sample();
    if (focus) panel.focus({ preventScroll: true });
  }
  const toggle = (opts) => setOpen(panel.hidden, opts);

  // From the desktop the shortcut leaves the keyboard there (a heads-up display); inside
  // the panel keepKeys hides keys from keyboard.js, so the panel handles its own.
  keyboard.addShortcut((ev) => {
    if (!isStatsShortcut(ev)) return false;
    toggle();
    return true;
  });
  // Esc and × are panels.js's, as for every panel.
  panel.addEventListener('keydown', (ev) => {
    if (!isStatsShortcut(ev)) return;
    ev.preventDefault();
    setOpen(false);
    button.focus();
  });
  button.addEventListener('click', () => toggle({ focus: true }));
  registerPanel({ panel, button, label: 'Statistics', setOpen: (open) => setOpen(open), headsUp: true });

  // --- the self-test -------------------------------------------------------------------
  const test = new ConnectionTest({
    send: channel.send,
    onChange: (r) => {
      testResult.textContent = describeTest(r);
      // Not `disabled`: that would drop the focus to the page, whose keys go to the desktop.
      // A click while it runs joins the running test (ConnectionTest.run).
      testButton.setAttribute('aria-disabled', String(r.status === 'pinging' || r.status === 'probing'));
    },
  });
  for (const type of ['pong', 'probe-data', 'probe-refused']) channel.on(type, (msg, text) => test.receive(msg, text));
  testButton.addEventListener('click', () => test.run());

  return {
    get open() { return !panel.hidden; },
    /** The newest sample (stats.js combine), null before the first. */
    get latest() { return ring.latest; },
    /** The samples of the last 30 s, oldest first. */
    get history() { return [...ring.items]; },
    /** The server's last `net` message as checked (stats.js normaliseNet). */
    get net() { return net; },
    /** The self-test's result (selftest.js): status, rtt_ms, mbps, refused, error, … */
    get selfTest() { return { ...test.result }; },
    runSelfTest: () => test.run(),
    show: () => setOpen(true),
    hide: () => setOpen(false),
    toggle: () => toggle(),
  };
}

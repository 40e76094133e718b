/**
 * The Chromium probe: runs inside the real Kelpie page and reads, from every frame the
 * browser presents, the timestamp and the input square that `kelpie-content` draws.
 *
 * In the page (installed before the app boots, with `page.addInitScript`): a
 * `requestVideoFrameCallback` loop on `#screen`. For each presented frame it copies the
 * top-left "HUD" out of the decoded picture (WebCodecs `VideoFrame.copyTo` of just that
 * rectangle, in the decoder's own YUV, so the probe costs almost nothing; a 2D canvas is the
 * fallback), decodes the 40-bit millisecond timestamp (start pattern, per-block contrast and
 * 4 parity bits must all check out) and classifies the square's colour against the palette.
 * Times are converted to the wall clock (Date.now(), the same clock the content generator
 * stamps with) using the monotonic↔wall offset taken in the same callback:
 *
 * - `disp`: `metadata.expectedDisplayTime`, when the frame reaches the screen (glass),
 *   but never more than MAX_COMPOSITE_MS after `presentationTime`: headless Chromium
 *   draws no frames while the page is still, so for a still screen's rare frames its
 *   estimate of the next refresh is the gap since the last one (up to ~0.5 s, seen on
 *   both transports), a screen time no real display would add (`dispRaw` keeps it);
 * - `pres`: `metadata.presentationTime`, when the frame was handed to the compositor;
 * - `recv`: `metadata.receiveTime`, when its last packet arrived (WebRTC only);
 * - `cb`: when the callback ran.
 *
 * In node: `analyse()` turns the page's records, the key presses and the generator's
 * input events into the benchmark's figures.
 */
import { quantile, round } from './lib.mjs';

const TWO40 = 2 ** 40;

/**
 * Page-side probe; `cfg` = {width, height, layout, palette}. Serialised by Playwright, so it
 * must be self-contained.
 */
export function pageProbe(cfg) {
  // Inside: this function runs in the page, where the module's other names do not exist.
  /** Two refreshes at 60 Hz: a frame handed to the compositor is on glass within this. */
  const MAX_COMPOSITE_MS = 34;
  const glassTime = (disp, pres) => (disp == null || pres == null ? disp : Math.min(disp, pres + MAX_COMPOSITE_MS));
  const B = (window.__bench = {
    frames: [],
    keydowns: [],
    errors: [],
    method: null,
    timeOrigin: performance.timeOrigin,
  });
  addEventListener('keydown', () => B.keydowns.push(Date.now()), true);

  const L = cfg.layout;
  const blocks = L.start.length + L.data_bits + L.parity_bits;
  // BT.709 limited range (what videoconvert produces for HD I420) to RGB.
  const yuvToRgb = (y, u, v) => {
    const c = 1.164 * (y - 16);
    const d = u - 128;
    const e = v - 128;
    return [c + 1.793 * e, c - 0.213 * d - 0.533 * e, c + 2.112 * d].map((x) => Math.max(0, Math.min(255, x)));
  };
  const nearest = (rgb) => {
    let best = -1;
    let bestD = Infinity;
    cfg.palette.forEach((p, i) => {
      const d = (p[0] - rgb[0]) ** 2 + (p[1] - rgb[1]) ** 2 + (p[2] - rgb[2]) ** 2;
      if (d < bestD) { bestD = d; best = i; }
    });
    // Too far from every palette colour (a half-updated or smeared square): unknown.
    return Math.sqrt(bestD) < 120 ? best : -1;
  };

  /** Decodes a timestamp from block luma means; {ts} or {bad: reason}. */
  const decodeBlocks = (lum) => {
    const white = [];
    const black = [];
    L.start.forEach((bit, i) => (bit ? white : black).push(lum[i]));
    const w = white.reduce((a, b) => a + b, 0) / white.length;
    const k = black.reduce((a, b) => a + b, 0) / black.length;
    if (w - k < 80) return { bad: 'no start pattern' };
    const thr = (w + k) / 2;
    const margin = (w - k) * 0.25;
    if (lum.some((l) => Math.abs(l - thr) < margin)) return { bad: 'ambiguous block' };
    const bits = lum.map((l) => l > thr);
    for (let i = 0; i < L.start.length; i++) if (bits[i] !== L.start[i]) return { bad: 'start pattern' };
    let v = 0;
    const parity = new Array(L.parity_bits).fill(false);
    for (let i = 0; i < L.data_bits; i++) {
      const bit = bits[L.start.length + i];
      v = v * 2 + (bit ? 1 : 0);
      if (bit) parity[i % L.parity_bits] = !parity[i % L.parity_bits];
    }
    for (let p = 0; p < L.parity_bits; p++) {
      if (parity[p] !== bits[L.start.length + L.data_bits + p]) return { bad: 'parity' };
    }
    return { ts: v };
  };

  // Sample geometry in screen pixels, scaled to the video's size when they differ.
  const region = { w: L.hud_w, h: L.hud_h };
  const blockCentres = [];
  for (let i = 0; i < blocks; i++) blockCentres.push([L.ts_x + i * L.block + L.block / 2, L.ts_y + L.block / 2]);
  const sqCentre = [L.sq_x + L.sq_size / 2, L.sq_y + L.sq_size / 2];
  const blockHalf = L.block / 4; // sample the middle half of each block
  const sqHalf = L.sq_size / 4;

  let canvas = null;
  let ctx = null;
  let buf = null;

  /** Mean of plane `get(x, y)` over a square of half-size `r` around (cx, cy). */
  const mean = (get, cx, cy, r, step = 2) => {
    let s = 0;
    let n = 0;
    for (let y = Math.round(cy - r); y < cy + r; y += step) {
      for (let x = Math.round(cx - r); x < cx + r; x += step) { s += get(x, y); n++; }
    }
    return s / n;
  };

  /** Reads the HUD of the video's current frame: {ts} | {bad}, and colour. */
  const readHud = (video) => {
    const sx = video.videoWidth / cfg.width;
    const sy = video.videoHeight / cfg.height;
    const rw = Math.min(video.videoWidth, Math.ceil((region.w * sx) / 2) * 2);
    const rh = Math.min(video.videoHeight, Math.ceil((region.h * sy) / 2) * 2);
    if (B.method !== 'canvas' && typeof VideoFrame === 'function') {
      let frame = null;
      try {
        frame = new VideoFrame(video, { timestamp: 0 });
        const fmt = frame.format;
        if (fmt === 'I420' || fmt === 'NV12' || fmt === 'I420A') {
          const rect = { x: 0, y: 0, width: rw, height: rh };
          const size = frame.allocationSize({ rect });
          if (!buf || buf.length < size) buf = new Uint8Array(size);
          // copyTo resolves synchronously enough for our purpose only via await; the
          // caller awaits readHud.
          return frame.copyTo(buf, { rect }).then((layout) => {
            const Y = layout[0];
            const lumaAt = (x, y) => buf[Y.offset + Math.round(y * sy) * Y.stride + Math.round(x * sx)];
            let chroma;
            if (fmt === 'NV12') {
              const UV = layout[1];
              chroma = (x, y) => {
                const o = UV.offset + (Math.round(y * sy) >> 1) * UV.stride + (Math.round(x * sx) >> 1) * 2;
                return [buf[o], buf[o + 1]];
              };
            } else {
              const U = layout[1];
              const V = layout[2];
              chroma = (x, y) => {
                const cx = Math.round(x * sx) >> 1;
                const cy = Math.round(y * sy) >> 1;
                return [buf[U.offset + cy * U.stride + cx], buf[V.offset + cy * V.stride + cx]];
              };
            }
            B.method = B.method || `videoframe-${fmt}`;
            const lum = blockCentres.map(([cx, cy]) => mean(lumaAt, cx, cy, blockHalf));
            const y = mean(lumaAt, sqCentre[0], sqCentre[1], sqHalf);
            const u = mean((x, yy) => chroma(x, yy)[0], sqCentre[0], sqCentre[1], sqHalf, 4);
            const v = mean((x, yy) => chroma(x, yy)[1], sqCentre[0], sqCentre[1], sqHalf, 4);
            const rgb = yuvToRgb(y, u, v);
            frame.close();
            return { ...decodeBlocks(lum.map((l) => ((l - 16) * 255) / 219)), color: nearest(rgb), rgb };
          }, (err) => {
            frame.close();
            B.method = 'canvas';
            B.errors.push(`copyTo: ${err.message}`);
            return readHud(video);
          });
        }
        frame.close();
        B.errors.push(`VideoFrame format ${fmt}: using a canvas`);
      } catch (err) {
        if (frame) frame.close();
        B.errors.push(`VideoFrame: ${err.message}`);
      }
      B.method = 'canvas';
    }
    // Fallback: draw the HUD region at half size into a canvas and read RGB.
    const scale = 0.5;
    if (!canvas) {
      canvas = document.createElement('canvas');
      canvas.width = Math.ceil(region.w * scale);
      canvas.height = Math.ceil(region.h * scale);
      ctx = canvas.getContext('2d', { willReadFrequently: true });
    }
    ctx.drawImage(video, 0, 0, region.w * sx, region.h * sy, 0, 0, canvas.width, canvas.height);
    const img = ctx.getImageData(0, 0, canvas.width, canvas.height);
    const px = (x, y, c) => img.data[(Math.round(y * scale) * canvas.width + Math.round(x * scale)) * 4 + c];
    const lum = blockCentres.map(([cx, cy]) => mean((x, y) => 0.2126 * px(x, y, 0) + 0.7152 * px(x, y, 1) + 0.0722 * px(x, y, 2), cx, cy, blockHalf));
    const rgb = [0, 1, 2].map((c) => mean((x, y) => px(x, y, c), sqCentre[0], sqCentre[1], sqHalf));
    return { ...decodeBlocks(lum), color: nearest(rgb), rgb };
  };

  const start = () => {
    const video = document.getElementById('screen');
    if (!video) { B.errors.push('no #screen video element'); return; }
    const onFrame = async (_now, meta) => {
      // Re-arm first: a slow read must not cost us the next frame's callback.
      video.requestVideoFrameCallback(onFrame);
      const wallNow = Date.now();
      const perfNow = performance.now();
      const toWall = (t) => (typeof t === 'number' ? wallNow - (perfNow - t) : null);
      const rec = {
        cb: wallNow,
        dispRaw: toWall(meta.expectedDisplayTime),
        disp: glassTime(toWall(meta.expectedDisplayTime), toWall(meta.presentationTime)),
        pres: toWall(meta.presentationTime),
        recv: toWall(meta.receiveTime),
        pf: meta.presentedFrames,
        rtp: meta.rtpTimestamp ?? null,
        ts: null,
        color: -1,
        bad: null,
      };
      if (B.frames.length === 0) {
        B.first = { sincePageStartMs: meta.expectedDisplayTime, cbSincePageStartMs: perfNow, width: video.videoWidth, height: video.videoHeight };
      }
      B.frames.push(rec);
      try {
        const r = await readHud(video);
        rec.color = r.color;
        if (r.color < 0) rec.rgb = r.rgb.map(Math.round); // for diagnosis
        if (r.bad) rec.bad = r.bad;
        else rec.ts = r.ts;
      } catch (err) {
        rec.bad = `exception: ${err.message}`;
      }
    };
    video.requestVideoFrameCallback(onFrame);
  };
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
}

/** Latency in ms from a 40-bit ms timestamp to wall time `wall` (same machine clock). */
export function latencyMs(ts, wall) {
  let d = (wall - ts) % TWO40;
  if (d < 0) d += TWO40;
  if (d > TWO40 / 2) d -= TWO40;
  return d;
}

function stats(values, qs = [0.5, 0.95, 0.99]) {
  const out = { n: values.length };
  for (const q of qs) out[`p${Math.round(q * 100)}`] = round(quantile(values, q), 1);
  out.mean = values.length ? round(values.reduce((a, b) => a + b, 0) / values.length, 1) : null;
  out.max = values.length ? round(Math.max(...values), 1) : null;
  return out;
}

/**
 * Figures from the page's frame records over the window [t0, t1] (wall ms).
 * `presses`: [{before, after}] node-side wall times around each key press; `inputs`: the
 * generator's `input` events; `keydowns`: page-side keydown times.
 */
export function analyse({ frames, t0, t1, presses = [], inputs = [], keydowns = [], decodedBefore, decodedAfter }) {
  const inWin = frames.filter((f) => (f.disp ?? f.cb) >= t0 && (f.disp ?? f.cb) <= t1);
  const seconds = (t1 - t0) / 1000;
  const out = { seconds: round(seconds, 2), callbacks: inWin.length };

  // Presented frames: the compositor's own count, so frames rVFC skipped are included.
  // Counted over the whole window, so a freeze inside it lowers the rate.
  const t = (f) => f.disp ?? f.cb;
  if (inWin.length) {
    const prev = frames.filter((f) => t(f) < t0).at(-1);
    const basePf = prev ? prev.pf : inWin[0].pf - 1;
    out.presented_fps = round((inWin.at(-1).pf - basePf) / seconds, 1);
    out.callback_fps = round(inWin.length / seconds, 1);
    out.presented_frames_without_callback = inWin.at(-1).pf - basePf - inWin.length;
    let gap = t(inWin[0]) - t0;
    for (let i = 1; i < inWin.length; i++) gap = Math.max(gap, t(inWin[i]) - t(inWin[i - 1]));
    out.max_frame_gap_ms = round(Math.max(gap, t1 - t(inWin.at(-1))), 1);
  } else {
    out.presented_fps = 0;
    out.callback_fps = 0;
    out.max_frame_gap_ms = round(t1 - t0, 1);
  }
  if (decodedBefore && decodedAfter) {
    const s = (decodedAfter.timestamp - decodedBefore.timestamp) / 1000;
    out.decoded_fps = round((decodedAfter.framesDecoded - decodedBefore.framesDecoded) / s, 1);
    out.dropped_by_browser = decodedAfter.framesDropped - decodedBefore.framesDropped;
    out.packets_lost = decodedAfter.packetsLost - decodedBefore.packetsLost;
    out.freezes = (decodedAfter.freezeCount ?? 0) - (decodedBefore.freezeCount ?? 0);
  }

  // Timestamps: glass-to-glass, and how much of it is before the browser has the frame.
  // Glass-to-glass counts each picture once, when it first reaches the screen: a frame
  // shown again (the same timestamp) is a repeat, not a later delivery.
  const decoded = inWin.filter((f) => f.ts != null);
  const seenTs = new Set();
  const firstShown = [];
  for (const f of frames) {
    if (f.ts == null || seenTs.has(f.ts)) continue;
    seenTs.add(f.ts);
    if ((f.disp ?? f.cb) >= t0 && (f.disp ?? f.cb) <= t1) firstShown.push(f);
  }
  const bogus = [];
  const g2g = [];
  const toRecv = [];
  const inBrowser = [];
  let mismatched = 0;
  for (const f of firstShown) {
    const lat = latencyMs(f.ts, f.disp ?? f.cb);
    if (lat < -5 || lat > 10_000) { bogus.push(lat); continue; }
    // The picture read can be a newer one than the callback's metadata describes (a frame
    // arrived between presentation and the callback): its timestamp is then later than
    // the metadata's receive time. Rare; left out rather than counted a frame too fast.
    if (f.recv != null && latencyMs(f.ts, f.recv) < 0) { mismatched++; continue; }
    g2g.push(lat);
    if (f.recv != null) {
      toRecv.push(latencyMs(f.ts, f.recv));
      inBrowser.push((f.disp ?? f.cb) - f.recv);
    }
  }
  const distinct = firstShown.length - bogus.length;
  out.undecodable_frames = inWin.length - decoded.length;
  out.undecodable_reasons = {};
  for (const f of inWin) if (f.bad) out.undecodable_reasons[f.bad] = (out.undecodable_reasons[f.bad] || 0) + 1;
  out.implausible_timestamps = bogus.length;
  out.picture_newer_than_metadata = mismatched;
  out.distinct_content_fps = round(distinct / seconds, 1);
  out.glass_to_glass_ms = stats(g2g);
  out.source_to_browser_receive_ms = stats(toRecv, [0.5, 0.95]);
  out.browser_receive_to_display_ms = stats(inBrowser, [0.5, 0.95]);

  // Input-to-photon: each press → the generator's colour change → the first frame showing it.
  const i2p = [];
  const toX = [];
  const xToPhoton = [];
  const pageKeydown = [];
  let lost = 0;
  let unseen = 0;
  const usedInputs = new Set();
  presses.forEach((p, i) => {
    const next = presses[i + 1]?.before ?? Infinity;
    const evIdx = inputs.findIndex((e, j) => !usedInputs.has(j) && e.t_ms >= p.before - 1 && e.t_ms < next);
    if (evIdx < 0) { lost++; return; }
    usedInputs.add(evIdx);
    const ev = inputs[evIdx];
    const kd = keydowns.find((k) => k >= p.before - 1 && k < next);
    if (kd != null) pageKeydown.push(kd - p.before);
    const newer = (f) => f.ts != null && f.recv != null && latencyMs(f.ts, f.recv) < 0; // see above
    const photon = frames.find((f) => (f.disp ?? f.cb) >= p.before && f.color === ev.color && !newer(f) && (f.disp ?? f.cb) < next + 2000);
    if (!photon) { unseen++; return; }
    const t = photon.disp ?? photon.cb;
    i2p.push(t - p.before);
    toX.push(ev.t_ms - p.before);
    xToPhoton.push(t - ev.t_ms);
  });
  out.presses = presses.length;
  out.input_to_photon_ms = stats(i2p, [0.5, 0.95]);
  out.press_to_x_client_ms = stats(toX, [0.5, 0.95]);
  out.x_client_to_photon_ms = stats(xToPhoton, [0.5, 0.95]);
  out.press_to_page_keydown_ms = stats(pageKeydown, [0.5]);
  out.presses_lost = lost;
  out.presses_never_seen = unseen;
  return out;
}

/**
 * Turns the benchmark's results into target verdicts and the Markdown section of
 * docs/benchmarks.md between `<!-- bench:begin -->` and `<!-- bench:end -->`.
 */
import fs from 'node:fs';

export const BEGIN = '<!-- bench:begin -->';
export const END = '<!-- bench:end -->';

const MB = 1e6;
const fmt = (x, digits = 0, unit = '') => (x == null || !Number.isFinite(x) ? '–' : `${x.toFixed(digits)}${unit}`);

function scenario(results, name) {
  return results.scenarios.find((s) => s.name === name);
}

function okRuns(s) {
  return (s?.runs || []).filter((r) => !r.error);
}

/** A run's media transport ('webrtc' for results from before there was a choice). */
const transportOf = (r) => r.transport || 'webrtc';
const transportName = (t) => (t === 'websocket' ? 'WebSocket' : 'WebRTC');
const isWebrtc = (r) => transportOf(r) === 'webrtc';

/**
 * Issue 13's targets (issue 5's, tightened, plus 1080p30), per capture source, judged on the WebRTC rows (the WebSocket rows are
 * compared with them in their own table): [{target, capture, transport, limit, kind
 * ('max'|'min'), measured, unit, measured_text, verdict}].
 */
export function evaluateTargets(results) {
  const out = [];
  const add = (target, capture, kind, limit, measured, unit, digits = 0) => {
    let verdict;
    if (measured == null || !Number.isFinite(measured)) verdict = 'not measured';
    else if (kind === 'max' ? measured <= limit : measured >= limit) verdict = 'met';
    else {
      const by = Math.abs(measured - limit);
      const times = kind === 'max' && limit > 0 ? ` (${(measured / limit).toFixed(2)}× the target)` : '';
      verdict = `missed by ${by.toFixed(digits)}${unit}${times}`;
    }
    out.push({ target, capture, transport: 'webrtc', kind, limit, measured, unit, measured_text: fmt(measured, digits, unit), verdict });
  };
  const p60 = scenario(results, '1080p60');
  for (const capture of results.capture_modes) {
    const r = okRuns(p60).find((x) => x.capture === capture && isWebrtc(x));
    add('1080p60 moving: delivered fps ≥ 55', capture, 'min', 55, r?.probe.presented_fps, ' fps', 1);
    add('1080p60 moving: server CPU ≤ 0.6× the plain pipeline', capture, 'max', 0.6, r?.cpu_ratio_to_baseline, '×', 2);
    add('1080p60 moving: glass-to-glass p50 ≤ 30 ms', capture, 'max', 30, r?.probe.glass_to_glass_ms.p50, ' ms', 1);
    add('1080p60 moving: glass-to-glass p95 ≤ 45 ms', capture, 'max', 45, r?.probe.glass_to_glass_ms.p95, ' ms', 1);
    add('1080p60 moving: input-to-photon p50 ≤ 30 ms', capture, 'max', 30, r?.probe.input_to_photon_ms.p50, ' ms', 1);
    add('1080p60 moving: input-to-photon p95 ≤ 45 ms', capture, 'max', 45, r?.probe.input_to_photon_ms.p95, ' ms', 1);
    const p30 = okRuns(scenario(results, '1080p30')).find((x) => x.capture === capture && isWebrtc(x));
    add('1080p30 moving: glass-to-glass p50 ≤ 25 ms', capture, 'max', 25, p30?.probe.glass_to_glass_ms.p50, ' ms', 1);
    add('1080p30 moving: server CPU ≤ 30 % of a core', capture, 'max', 30, p30?.kelpie_cpu_pct, ' %', 1);
    const st = okRuns(scenario(results, 'static1080')).find((x) => x.capture === capture && isWebrtc(x));
    add('static 1080p desktop, one viewer: server CPU ≤ 0.5 % of a core', capture, 'max', 0.5, st?.kelpie_cpu_pct, ' %', 1);
    const browserRuns = results.scenarios.filter((s) => s.kind !== 'viewers').flatMap(okRuns).filter((x) => x.capture === capture && isWebrtc(x));
    const ttff = browserRuns.map((x) => x.time_to_first_frame_ms).filter(Number.isFinite);
    add('time to first frame after page load ≤ 500 ms (worst scenario)', capture, 'max', 500, ttff.length ? Math.max(...ttff) : null, ' ms');
    const v = okRuns(scenario(results, 'viewers1080p30')).find((x) => x.capture === capture);
    add('1080p30: each extra viewer ≤ 3 % of a core', capture, 'max', 3, v?.per_extra_viewer_cpu_pct, ' %', 2);
    const eight = v?.stages.find((s) => s.viewers === 8);
    add('1080p30: 8 viewers all ≥ 28 fps (slowest viewer)', capture, 'min', 28, eight?.min_fps, ' fps', 1);
    const rss = browserRuns.map((x) => x.kelpie_peak_rss_bytes).filter(Number.isFinite);
    add('server peak RSS ≤ 80 MB with one viewer (worst scenario)', capture, 'max', 80, rss.length ? Math.max(...rss) / MB : null, ' MB', 1);
  }
  return out;
}

function table(header, rows) {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** Kelpie's frame stages, in order (server/src/latency.rs). */
const STAGES = ['wait', 'grab', 'convert', 'queue', 'encode', 'send', 'total'];

const pct = (x) => fmt(x, x != null && Math.abs(x) < 10 ? 1 : 0, ' %');
const ms = (x) => fmt(x, 0);
const triple = (o, keys) => (o && o.n ? keys.map((k) => ms(o[k])).join(' / ') + ' ms' : '–');

export function renderSection(results) {
  const m = results.machine;
  const date = results.date.replace('T', ' ').slice(0, 16);
  const transports = results.transports || ['webrtc'];
  const lines = [];
  lines.push(BEGIN);
  lines.push('<!-- Generated by tests/bench/run.mjs (make bench): change the script, not this section. -->');
  lines.push('');
  lines.push(`Run on ${date} UTC with \`${results.command}\` (${results.duration_s} s), on ${m.nproc} cores `
    + `(${m.cpu_model}), ${m.mem_gib} GiB RAM, ${m.os}, Linux ${m.kernel}; GStreamer ${m.gstreamer}, `
    + `Chromium ${m.chromium} (headless, software decoding), ${m.node}; load average at start ${m.loadavg_at_start.join(', ')}. `
    + `x264 at ${results.bitrate_kbps} kbit/s, ${results.seconds} s measuring windows`
    + `${results.static_cpu_seconds ? ` (${Math.max(results.seconds, results.static_cpu_seconds)} s for a still screen's CPU)` : ''}, browser viewport `
    + `${results.viewport.width}×${results.viewport.height}. Capture: ${results.capture_modes.join(', ')}. `
    + `Transports: ${transports.map(transportName).join(', ')}`
    + (transports.length > 1 ? ' (each browser scenario and capture source on each, back to back on the same display and content)' : '')
    + '. Raw figures: `target/bench/results.json`; process logs: `target/bench/logs/`.');
  if (results.errors?.length) {
    lines.push('');
    lines.push(`**Harness failures in this run:** ${results.errors.map((e) => e.replace(/\|/g, '\\|')).join('; ')}`);
  }
  lines.push('');
  lines.push('#### Targets (issue 13, which tightened issue 5\'s; WebRTC)');
  lines.push('');
  lines.push(table(['target', 'capture', 'measured', 'verdict'],
    results.targets.map((t) => [t.target, t.capture, t.measured_text, t.verdict === 'met' ? 'met' : `**${t.verdict}**`])));

  const browserScenarios = results.scenarios.filter((x) => x.kind !== 'viewers');
  const labelOf = (s) => (s.kind === 'static' ? `${s.height}p static` : s.name);
  if (transports.length > 1) {
    lines.push('');
    lines.push('#### WebRTC and WebSocket side by side (issue 10)');
    lines.push('');
    lines.push('Each pair of rows ran back to back on the same display and content, so their ratio holds '
      + 'on a busy machine as long as the load that is not ours stayed alike (last column: compare a pair '
      + 'only where it did); p50 / p95 in ms; CPU as % of one core.');
    lines.push('');
    const crows = [];
    for (const s of browserScenarios) {
      if (s.error) continue;
      const captures = [...new Set(s.runs.map((r) => r.capture))];
      for (const capture of captures) {
        const byT = Object.fromEntries(transports.map((t) => [t, s.runs.find((r) => r.capture === capture && transportOf(r) === t)]));
        const rtc = byT.webrtc && !byT.webrtc.error ? byT.webrtc : null;
        for (const t of transports) {
          const r = byT[t];
          if (!r) continue;
          if (r.error) { crows.push([labelOf(s), capture, transportName(t), `failed: ${r.error.split('\n')[0].replace(/\|/g, '\\|')}`, '', '', '', '', '', '', '', '']); continue; }
          const p = r.probe;
          const rel = t !== 'webrtc' && rtc && rtc.kelpie_cpu_pct ? `${(r.kelpie_cpu_pct / rtc.kelpie_cpu_pct).toFixed(2)}×` : '–';
          crows.push([
            labelOf(s), capture, transportName(t),
            `${fmt(p.presented_fps, 1)} / ${s.kind === 'static' ? '–' : s.fps}`,
            triple(p.glass_to_glass_ms, ['p50', 'p95']),
            triple(p.input_to_photon_ms, ['p50', 'p95']) + (p.presses ? ` (${p.input_to_photon_ms.n}/${p.presses})` : ''),
            pct(r.kelpie_cpu_pct), rel, pct(r.chromium_cpu_pct),
            `${ms(r.time_to_first_frame_ms)} ms`,
            t === 'websocket' && r.server?.socket_frames_skipped != null ? String(r.server.socket_frames_skipped) : '–',
            pct(r.others_cpu_pct),
          ]);
        }
      }
    }
    lines.push(table(['scenario', 'capture', 'transport', 'delivered fps', 'glass-to-glass p50 / p95', 'input-to-photon p50 / p95 (n)',
      'kelpie CPU', 'kelpie CPU vs. WebRTC', 'Chromium CPU', 'first frame', 'frames skipped (busy socket)', 'other users of the machine'], crows));
  }

  lines.push('');
  lines.push('#### One browser viewer');
  lines.push('');
  const rows = [];
  const procRows = [];
  const stepRows = [];
  for (const s of browserScenarios) {
    const label = labelOf(s);
    if (s.error) { rows.push([label, '–', '–', `failed: ${s.error.split('\n')[0]}`, '', '', '', '', '', '', '', '']); continue; }
    for (const r of s.runs) {
      const tname = transportName(transportOf(r));
      if (r.error) { rows.push([label, r.capture, tname, `failed: ${r.error.split('\n')[0].replace(/\|/g, '\\|')}`, '', '', '', '', '', '', '', '']); continue; }
      const p = r.probe;
      const fps = `${fmt(p.presented_fps, 1)} / ${s.kind === 'static' ? '–' : s.fps} (decoded ${fmt(p.decoded_fps, 1)}; read with a new timestamp ${fmt(p.distinct_content_fps, 1)})`;
      rows.push([
        label, r.capture, tname, fps,
        triple(p.glass_to_glass_ms, ['p50', 'p95', 'p99']),
        triple(p.input_to_photon_ms, ['p50', 'p95']) + (p.presses ? ` (${p.input_to_photon_ms.n}/${p.presses})` : ''),
        `${ms(r.time_to_first_frame_ms)} ms`,
        `${p.undecodable_frames} of ${p.callbacks}`,
        pct(r.kelpie_cpu_pct),
        pct(s.baseline?.cpu_pct) + (s.baseline ? ` (${fmt(s.baseline.fps, 1)} fps)` : ''),
        r.cpu_ratio_to_baseline != null ? `${r.cpu_ratio_to_baseline.toFixed(2)}×` : '–',
        fmt(r.kelpie_peak_rss_bytes / MB, 0, ' MB'),
      ]);
      const st = r.first_frame_steps_ms ?? {};
      const gap = (a, b) => (Number.isFinite(st[a]) && Number.isFinite(st[b]) ? `${st[b] - st[a]}` : '–');
      // The WebSocket transport has no offer, answer, ICE or DTLS: its first frame follows
      // the welcome.
      const before = ['dtls_connected', 'ice_connected', 'answer_sent', 'offer', 'welcome', 'ws_start'].find((k) => Number.isFinite(st[k]));
      stepRows.push([
        label, r.capture, tname, ms(st.ws_start), gap('ws_start', 'welcome'), gap('welcome', 'offer'), gap('offer', 'answer_sent'),
        gap('answer_sent', 'ice_connected'), gap('ice_connected', 'dtls_connected'), before ? gap(before, 'first_frame') : '–',
        `${ms(r.time_to_first_frame_ms)} ms`,
      ]);
      procRows.push([
        label, r.capture, tname, pct(r.xvfb_cpu_pct),
        `${pct(r.content_cpu_pct)}${r.generator ? ` (${fmt(r.generator.frames_per_s, 0)} frames/s drawn)` : ''}`,
        pct(r.chromium_cpu_pct), pct(r.machine_cpu_pct), pct(r.others_cpu_pct),
        r.server?.encoded_fps != null ? fmt(r.server.encoded_fps, 1) : '–',
        r.server?.bitrate_kbps != null ? `${fmt(r.server.bitrate_kbps, 0)} kbit/s` : '–',
      ]);
    }
  }
  lines.push(table(['scenario', 'capture', 'transport', 'delivered fps (presented / target)', 'glass-to-glass p50 / p95 / p99',
    'input-to-photon p50 / p95 (n)', 'first frame', 'undecodable frames', 'kelpie CPU', 'plain pipeline CPU', 'kelpie / plain', 'kelpie peak RSS'], rows));
  lines.push('');
  lines.push('Where the time to first frame goes (ms; steps recorded by the web client in `kelpie.timings`, '
    + 'from page start): page load until the WebSocket opens, the server\'s welcome, its offer (the viewer\'s '
    + 'webrtcbin branch is built), our answer, ICE connectivity, DTLS, and the first keyframe decoded and shown '
    + '(over the WebSocket, which has no offer, ICE or DTLS, from the welcome).');
  lines.push('');
  lines.push(table(['scenario', 'capture', 'transport', 'page → WebSocket', '→ welcome', '→ offer', '→ answer', '→ ICE connected',
    '→ DTLS connected', '→ first frame shown', 'total'], stepRows));
  lines.push('');
  lines.push('The rest of the machine during the same windows (CPU as % of one core; the machine has '
    + `${m.nproc * 100} %):`);
  lines.push('');
  lines.push(table(['scenario', 'capture', 'transport', 'Xvfb', 'content generator', 'Chromium (all processes)', 'whole machine', 'other users of the machine', 'frames encoded/s', 'bitrate'], procRows));

  const stageRows = [];
  for (const s of results.scenarios) {
    if (s.kind === 'viewers') continue;
    for (const r of okRuns(s)) {
      const st = r.server?.stages;
      if (!st) continue;
      const pq = (k) => (st[k] ? `${fmt(st[k].p50, 1)} / ${fmt(st[k].p95, 1)}` : '–');
      const g2g = r.probe?.glass_to_glass_ms?.p50;
      const rest = g2g != null && st.total?.p50 != null ? g2g - st.total.p50 : null;
      stageRows.push([`${s.height}p${s.fps}${s.kind === 'static' ? ' static' : ''}`, r.capture, transportName(transportOf(r)),
        ...STAGES.map(pq), fmt(rest, 1), fmt(r.jitter_buffer_ms, 1), fmt(r.browser_decode_ms, 1),
        pq('input_apply'), pq('input_to_damage'), pq('input_to_send')]);
    }
  }
  if (stageRows.length) {
    lines.push('');
    lines.push('Where a frame\'s time goes inside Kelpie (ms, p50 / p95 of the frames sent in the window, from '
      + '`kelpie_frame_stage_seconds` in `/metrics`; `KELPIE_LOG=info,kelpie::frames=debug` logs every frame): first X damage '
      + '→ grab start (capture pacing), the XShm grab, BGRx→I420 and the copy out, the capture queue\'s thread hop, '
      + 'x264, then payloading and the viewer\'s send queue up to webrtcbin; *total* is damage → first packet into '
      + 'webrtcbin. *After the server* is the probe\'s glass-to-glass p50 less that total: drawing to damage, SRTP '
      + 'and the socket, the browser\'s jitter buffer, decode and presentation (the next two columns are the '
      + 'browser\'s own jitter-buffer and decode means). Input: a press\'s arrival → its XTest flush, that flush → '
      + 'the next damage, and arrival → the first packet of the first frame grabbed after that damage. Frames '
      + 'without a WebRTC viewer (the WebSocket rows) are not timed past the encoder.');
    lines.push('');
    lines.push(table(['scenario', 'capture', 'transport', ...STAGES, 'after the server (p50)', 'browser jitter buffer', 'browser decode',
      'input → XTest', 'XTest → damage', 'input → sent'], stageRows));
  }

  const vs = scenario(results, 'viewers1080p30');
  if (vs) {
    lines.push('');
    lines.push(`#### Many viewers (${vs.height}p${vs.fps} moving, webrtc-rs clients in one \`kelpie-load\` process; WebRTC only)`);
    lines.push('');
    const vrows = [];
    if (vs.error) vrows.push(['–', '–', `failed: ${vs.error.split('\n')[0].replace(/\|/g, '\\|')}`, '', '', '', '']);
    for (const r of vs.runs) {
      if (r.error) { vrows.push([r.capture, '–', `failed: ${r.error.split('\n')[0].replace(/\|/g, '\\|')}`, '', '', '', '']); continue; }
      for (const st of r.stages) {
        vrows.push([
          r.capture, String(st.viewers), st.fps.map((f) => fmt(f, 1)).join(', '), pct(st.kelpie_cpu_pct),
          st.viewers === r.stages[0].viewers ? '–' : `${fmt((st.kelpie_cpu_pct - r.stages[0].kelpie_cpu_pct) / (st.viewers - r.stages[0].viewers), 2)} %`,
          pct(st.load_clients_cpu_pct), pct(st.others_cpu_pct),
        ]);
      }
    }
    lines.push(table(['capture', 'viewers', "each viewer's fps", 'kelpie CPU', 'per extra viewer (vs. 1)', 'load clients CPU', 'other users of the machine'], vrows));
  }

  const p60 = scenario(results, '1080p60');
  if (p60?.breakdown && p60.baseline) {
    const a = p60.breakdown.capture.cpu_pct;
    const b = p60.breakdown.convert.cpu_pct;
    const c = p60.baseline.cpu_pct;
    lines.push('');
    lines.push('#### Where the time goes (1080p60 moving, same content, same run)');
    lines.push('');
    lines.push('CPU, from the plain pipeline cut after each stage (`ximagesrc ! fakesink`, then `… ! videoconvert ! I420 ! fakesink`, then the whole baseline):');
    lines.push('');
    const brows = [
      ['capture (ximagesrc, XShm)', pct(a), `${fmt(p60.breakdown.capture.fps, 1)} fps`],
      ['conversion (videoconvert BGRx → I420)', pct(b - a), `${fmt(p60.breakdown.convert.fps, 1)} fps`],
      ['encode (x264enc ultrafast zerolatency)', pct(c - b), `${fmt(p60.baseline.fps, 1)} fps`],
      ['plain pipeline total', pct(c), ''],
    ];
    const x = p60.breakdown.xsrc;
    const xe = p60.breakdown.xsrc_encode;
    if (x && xe) {
      brows.push(['kelpiexsrc: capture + conversion to I420 (`kelpiexsrc ! fakesink`)', pct(x.cpu_pct), `${fmt(x.fps, 1)} fps`]);
      brows.push(['encode of its output (`kelpiexsrc ! x264enc`, minus the line above)', pct(xe.cpu_pct - x.cpu_pct), `${fmt(xe.fps, 1)} fps`]);
      brows.push(['kelpiexsrc ! x264enc total', pct(xe.cpu_pct), '']);
    } else if (p60.breakdown.xsrc_error) {
      brows.push([`kelpiexsrc pipelines: not measured (${p60.breakdown.xsrc_error.replace(/\|/g, '\\|')})`, '–', '']);
    }
    for (const r of okRuns(p60)) {
      const ref = r.capture === 'damage' && xe ? xe.cpu_pct : c;
      const refName = r.capture === 'damage' && xe ? 'kelpiexsrc ! x264enc' : 'the plain pipeline';
      const sending = isWebrtc(r) ? 'payloading, WebRTC, SRTP, sending' : 'WebSocket framing and sending';
      brows.push([`kelpie, capture ${r.capture}, ${transportName(transportOf(r))}`, pct(r.kelpie_cpu_pct), `${fmt(r.server?.encoded_fps, 1)} fps encoded`]);
      brows.push([`  minus ${refName}: ${sending}, and Kelpie's own settings`, pct(r.kelpie_cpu_pct - ref), '']);
    }
    lines.push(table(['stage', 'CPU (% of one core)', 'frames/s'], brows));
    lines.push('');
    lines.push('Latency, from the probe (p50, ms): the source → browser part ends when the frame\'s last packet reached the browser (`receiveTime`, WebRTC only), the rest is the browser\'s jitter buffer, decode and display.');
    lines.push('');
    const lrows = okRuns(p60).map((r) => [
      r.capture, transportName(transportOf(r)), ms(r.probe.glass_to_glass_ms.p50), ms(r.probe.source_to_browser_receive_ms.p50),
      ms(r.probe.browser_receive_to_display_ms.p50), fmt(r.server?.encode_ms, 1), fmt(r.jitter_buffer_ms, 1), fmt(r.browser_decode_ms, 1),
      `${ms(r.probe.press_to_x_client_ms.p50)} + ${ms(r.probe.x_client_to_photon_ms.p50)}`,
    ]);
    lines.push(table(['capture', 'transport', 'glass-to-glass', 'source → browser receive', 'receive → display', 'server encode (mean)', 'browser jitter buffer (mean)', 'browser decode (mean)', 'input-to-photon: key → X client + X client → photon'], lrows));
  }
  lines.push('');
  lines.push('Definitions: *delivered fps* = frames the browser presented per second (`requestVideoFrameCallback` '
    + '`presentedFrames`), with frames decoded (WebRTC stats; over the WebSocket, the WebCodecs decoder\'s output count from '
    + '`kelpie.videoStats()`) and frames carrying a new timestamp; *glass-to-glass* = '
    + 'when a frame first reaches the browser\'s screen (`expectedDisplayTime`) minus the wall-clock time the content '
    + 'generator drew into it (decoded from black/white blocks), each picture counted once; *input-to-photon* = from just '
    + 'before the probe presses a key (every 500 ms) to the first presented frame whose square has the colour the '
    + 'generator switched to; *first frame* = from navigation start to the first presented frame; *undecodable* = presented '
    + 'frames whose timestamp failed its start pattern, contrast or parity check; CPU = user + system time of the whole '
    + 'process tree from `/proc`, as % of one core; *plain pipeline* = `gst-launch-1.0 ximagesrc use-damage=false ! '
    + 'videoconvert ! x264enc speed-preset=ultrafast tune=zerolatency bitrate=8000 ! fakesink` on the same display and content, '
    + 'measured just before and just after kelpie (the mean is used); for the static screen, glass-to-glass and input-to-photon come '
    + 'from the frames that followed key presses after the CPU window; RSS = kelpie\'s `VmHWM` (MB = 10⁶ bytes); '
    + '*WebRTC* = `kelpie --transport webrtc` (RTP over a peer connection), *WebSocket* = `kelpie --transport websocket` '
    + '(H.264 access units as binary frames on the page\'s signalling WebSocket, decoded with WebCodecs `VideoDecoder` and '
    + 'shown in the same `<video>` through a `MediaStreamTrackGenerator`); *frames skipped* = frames the server did not send '
    + 'because the viewer\'s socket was still busy (`kelpie_socket_frames_total{result="skipped"}`, it then sends a keyframe).');
  lines.push(END);
  return lines.join('\n');
}

/** Replaces the marked section of `file` (appending one, with a heading, if it has none). */
export function updateDocs(file, section) {
  const text = fs.readFileSync(file, 'utf8');
  const i = text.indexOf(BEGIN);
  const j = text.indexOf(END);
  let out;
  if (i >= 0 && j > i) out = text.slice(0, i) + section + text.slice(j + END.length);
  else out = `${text.trimEnd()}\n\n## make bench: the black-box benchmark\n\n${section}\n`;
  fs.writeFileSync(file, out);
}

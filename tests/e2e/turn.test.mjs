/**
 * Media through a real TURN server: coturn (Debian's `turnserver`, started here as a child
 * process on a free loopback port, not the system service) with `use-auth-secret`, and
 * kelpie with `--turn-url … --force-relay` and the same secret. The browser gets
 * time-limited TURN REST credentials and `iceTransportPolicy: 'relay'` in the welcome
 * message, so the stream can only play through a relay: the selected candidate pair is
 * `relay` on the browser's side (and on the server's), and coturn logs the allocations.
 *
 * Loopback everywhere: coturn listens and relays on 127.0.0.1 and needs
 * `allow-loopback-peers`, since both peers' relayed addresses are loopback ones (without
 * it coturn answers CreatePermission with 403 Forbidden IP and the page never connects).
 * Chromium needs no extra switch for this: it allocates on a TURN server at 127.0.0.1 and
 * pairs relayed loopback addresses like any others.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import test from 'node:test';
import { KELPIE_BIN, decodeRate, freePort, openConnected, sleep, startEnv, waitDecoding, waitFor } from './harness.mjs';

const TURNSERVER = process.env.KELPIE_TURNSERVER || '/usr/bin/turnserver';
const TTL_S = 600;

/**
 * Starts coturn with a generated config; resolves once its UDP listener (and with `tls`,
 * its TLS listener, with a fresh self-signed certificate) is open.
 */
async function startCoturn(env, secret, { tls = false } = {}) {
  const port = await freePort();
  const tlsPort = tls ? await freePort() : null;
  // A relay port range of our own below the kernel's ephemeral ports (32768-60999) that
  // kelpie and Chromium bind: 100 ports in 20000-31999, picked by the listening port.
  const minPort = 20000 + (port % 120) * 100;
  const dir = path.join(env.logDir, 'coturn');
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'turnserver.conf');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  if (tls) {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-keyout', key, '-out', cert], { stdio: 'ignore' });
  }
  fs.writeFileSync(conf, [
    'listening-ip=127.0.0.1',
    'relay-ip=127.0.0.1',
    `listening-port=${port}`,
    `min-port=${minPort}`,
    `max-port=${minPort + 99}`,
    'use-auth-secret',
    `static-auth-secret=${secret}`,
    'realm=kelpie.test',
    ...(tls ? [`tls-listening-port=${tlsPort}`, `cert=${cert}`, `pkey=${key}`, 'no-tlsv1', 'no-tlsv1_1'] : ['no-tls']),
    'no-dtls',
    // TCP stays on with TLS: the TLS port is a TCP one.
    ...(tls ? [] : ['no-tcp']),
    'no-cli',
    // Both peers' relayed addresses are on 127.0.0.1: coturn refuses loopback peers otherwise.
    'allow-loopback-peers',
    'no-multicast-peers',
    'log-file=stdout',
    'simple-log',
    'verbose',
    `pidfile=${path.join(dir, 'turnserver.pid')}`,
    // Its own user database, not the system one in /var/lib/turn.
    `userdb=${path.join(dir, 'turndb')}`,
    '',
  ].join('\n'));
  const proc = env.spawn('coturn', TURNSERVER, ['-c', conf]);
  const lines = [];
  proc.readStdout((line) => lines.push(line));
  try {
    await waitFor('coturn UDP listener', () => {
      if (!proc.running) throw new Error('turnserver exited');
      return lines.some((l) => l.includes(`UDP listener opened on: 127.0.0.1:${port}`))
        && (!tls || lines.some((l) => l.includes(`TLS/TCP listener opened on : 127.0.0.1:${tlsPort}`)
          || l.includes(`TLS/TCP listener opened on: 127.0.0.1:${tlsPort}`)));
    }, { timeoutMs: 10_000 });
  } catch (err) {
    throw new Error(env.why(err.message));
  }
  return { proc, port, tlsPort, lines, minPort, maxPort: minPort + 99 };
}

test('with coturn and --force-relay the stream plays only through the relay', { timeout: 90_000 }, async (t) => {
  assert.ok(fs.existsSync(TURNSERVER), `${TURNSERVER} is missing (Debian package coturn): run tests/e2e/setup-deploy-tools.sh`);
  const secret = crypto.randomBytes(24).toString('base64url');
  // The display and probe first; kelpie needs coturn's port.
  const env = await startEnv(t, { width: 1280, height: 720, framerate: 30, animate: true, startServer: false });
  const turn = await startCoturn(env, secret);
  const turnUrl = `turn:127.0.0.1:${turn.port}?transport=udp`;
  const server = await env.startKelpie({
    args: ['--turn-url', turnUrl, '--force-relay', '--turn-ttl', `${TTL_S}s`],
    env: { KELPIE_TURN_SECRET: secret },
  });
  env.url = server.url;
  env.server = server.proc;

  const viewer = await env.launchBrowser();
  // The welcome message exactly as the server sent it.
  let welcome;
  const context = await viewer.browser.newContext({ viewport: { width: 1280, height: 720 } });
  context.on('page', (p) => p.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
    try {
      const msg = JSON.parse(payload);
      if (msg.type === 'welcome') welcome = msg;
    } catch { /* not JSON */ }
  })));
  const page = await openConnected(env, context, server.url);
  const now = Math.floor(Date.now() / 1000);

  // The welcome: relay only, our TURN URL, REST credentials that expire in --turn-ttl.
  assert.ok(welcome, env.why('no welcome message seen on the WebSocket'));
  assert.equal(welcome.ice_transport_policy, 'relay', JSON.stringify(welcome));
  const turnEntry = welcome.ice_servers.find((s) => s.urls.some((u) => u.startsWith('turn:')));
  assert.ok(turnEntry, `no TURN server in the welcome: ${JSON.stringify(welcome.ice_servers)}`);
  assert.deepEqual(turnEntry.urls, [turnUrl]);
  const m = /^(\d+):(.+)$/.exec(turnEntry.username);
  assert.ok(m, `TURN username ${JSON.stringify(turnEntry.username)} is not <unix expiry>:<user>`);
  const expiry = Number(m[1]);
  assert.ok(Math.abs(expiry - (now + TTL_S)) <= 30,
    `TURN credentials expire at ${expiry}, want about now + ${TTL_S} s = ${now + TTL_S}`);
  const want = crypto.createHmac('sha1', secret).update(turnEntry.username).digest('base64');
  assert.equal(turnEntry.credential, want, 'TURN password is not base64(HMAC-SHA1(secret, username))');
  assert.ok(!JSON.stringify(welcome).includes(secret), 'the shared secret itself reached the browser');

  // The browser's peer connection was really configured from it.
  const config = await page.evaluate(() => {
    const c = window.kelpie.pc.getConfiguration();
    return { policy: c.iceTransportPolicy, servers: c.iceServers };
  });
  assert.equal(config.policy, 'relay', JSON.stringify(config));
  assert.equal(config.servers.find((s) => [s.urls].flat().includes(turnUrl))?.username, turnEntry.username);

  // It plays.
  await waitDecoding(env, page, 1);
  await sleep(1000);
  const { rate, after } = await decodeRate(page, 3000);
  t.diagnostic(`decoded ${rate.toFixed(1)} fps through the relay, ${after.frameWidth}x${after.frameHeight}`);
  assert.ok(rate >= 0.9 * env.framerate,
    env.why(`decoded ${rate.toFixed(1)} fps, want >= ${0.9 * env.framerate}: ${JSON.stringify(after)}`));
  assert.equal(after.frameWidth, env.width);
  assert.equal(after.frameHeight, env.height);

  // Through the relay: the selected pair's local (browser) candidate is a relay one,
  // allocated on coturn's relay range; the server's side is a relay candidate too.
  const pair = await selectedPair(page);
  t.diagnostic(`selected pair: ${JSON.stringify(pair)}`);
  assert.ok(pair, env.why('no selected candidate pair'));
  assert.equal(pair.state, 'succeeded', JSON.stringify(pair));
  assert.equal(pair.local.candidateType, 'relay', JSON.stringify(pair));
  assert.equal(pair.local.address, '127.0.0.1', JSON.stringify(pair));
  assert.ok(pair.local.port >= turn.minPort && pair.local.port <= turn.maxPort,
    `browser relay port ${pair.local.port} outside coturn's range ${turn.minPort}-${turn.maxPort}`);
  assert.ok(pair.local.url?.startsWith(`turn:127.0.0.1:${turn.port}`), JSON.stringify(pair.local));
  assert.ok(pair.remote.port >= turn.minPort && pair.remote.port <= turn.maxPort,
    `server candidate ${pair.remote.address}:${pair.remote.port} is not on coturn's relay range ${turn.minPort}-${turn.maxPort}`);
  assert.ok(pair.bytesReceived > 100_000, `only ${pair.bytesReceived} bytes came over the selected pair`);

  // No candidate but relay ones on the browser's side at all.
  const localTypes = await page.evaluate(async () => {
    const types = new Set();
    for (const s of (await window.kelpie.pc.getStats()).values()) {
      if (s.type === 'local-candidate') types.add(s.candidateType);
    }
    return [...types];
  });
  assert.deepEqual(localTypes, ['relay']);

  // coturn authenticated with the REST credentials and allocated relays: one for the
  // browser and one for kelpie's webrtcbin (their usernames both have the expiry form).
  const log = turn.lines.join('\n');
  const allocations = turn.lines.filter((l) => /ALLOCATE processed, success/.test(l));
  assert.ok(allocations.length >= 2, env.why(`coturn logged ${allocations.length} successful allocations, want >= 2`));
  assert.match(log, new RegExp(`username=<${turnEntry.username}>`), 'coturn never saw the browser\'s username');
});

test('TURN over TLS (turns:, as on port 443) with --force-relay plays through the relay', { timeout: 90_000 }, async (t) => {
  assert.ok(fs.existsSync(TURNSERVER), `${TURNSERVER} is missing (Debian package coturn): run tests/e2e/setup-deploy-tools.sh`);
  const secret = crypto.randomBytes(24).toString('base64url');
  const env = await startEnv(t, { width: 1280, height: 720, framerate: 30, animate: true, startServer: false });
  const turn = await startCoturn(env, secret, { tls: true });
  const turnUrl = `turns:127.0.0.1:${turn.tlsPort}?transport=tcp`;
  const server = await env.startKelpie({
    args: ['--turn-url', turnUrl, '--force-relay'],
    env: { KELPIE_TURN_SECRET: secret },
  });
  env.url = server.url;
  env.server = server.proc;
  // The certificate is self-signed: Chromium checks a turns: server's certificate.
  const viewer = await env.launchBrowser({ args: ['--ignore-certificate-errors'] });
  const page = await openConnected(env, await viewer.browser.newContext({ viewport: { width: 1280, height: 720 } }), server.url);
  assert.equal(await page.evaluate(() => window.kelpie.transport.kind), 'webrtc');
  await waitDecoding(env, page, 5);
  const { rate, after } = await decodeRate(page, 3000);
  t.diagnostic(`decoded ${rate.toFixed(1)} fps through the TLS relay`);
  assert.ok(rate >= 0.9 * env.framerate, env.why(`decoded ${rate.toFixed(1)} fps: ${JSON.stringify(after)}`));
  const pair = await selectedPair(page);
  t.diagnostic(`selected pair: ${JSON.stringify(pair)}`);
  assert.equal(pair?.local.candidateType, 'relay', env.why(JSON.stringify(pair)));
  assert.equal(pair.local.relayProtocol, 'tls', `the browser's relay is not over TLS: ${JSON.stringify(pair)}`);
  assert.ok(pair.local.url?.startsWith(`turns:127.0.0.1:${turn.tlsPort}`), JSON.stringify(pair.local));
  assert.ok(turn.lines.some((l) => /ALLOCATE processed, success/.test(l)), env.why('coturn allocated nothing'));
});

test('with a TURN broker the desktop holds no TURN secret and each viewer gets its own credential', { timeout: 90_000 }, async (t) => {
  assert.ok(fs.existsSync(TURNSERVER), `${TURNSERVER} is missing (Debian package coturn): run tests/e2e/setup-deploy-tools.sh`);
  const brokerBin = path.join(path.dirname(KELPIE_BIN), 'kelpie-turn-broker');
  assert.ok(fs.existsSync(brokerBin), `${brokerBin} is missing: cargo build -p kelpie`);
  const secret = crypto.randomBytes(24).toString('base64url');
  const env = await startEnv(t, { width: 1280, height: 720, framerate: 30, animate: true, startServer: false });
  const turn = await startCoturn(env, secret);
  const turnUrl = `turn:127.0.0.1:${turn.port}?transport=udp`;

  // The broker alone has the secret (in a file, as a sidecar's mount would give it).
  const secretFile = path.join(env.logDir, 'turn-secret');
  fs.writeFileSync(secretFile, `${secret}\n`, { mode: 0o600 });
  const brokerPort = await freePort();
  const broker = env.spawn('turn-broker', brokerBin, [
    '--listen', `127.0.0.1:${brokerPort}`, '--turn-secret-file', secretFile, '--turn-ttl', `${TTL_S}s`,
    '--label', 'desk-7', '--per-minute', '3',
  ]);
  await waitFor('the broker to answer /health', async () => {
    if (!broker.running) throw new Error('kelpie-turn-broker exited');
    return (await fetch(`http://127.0.0.1:${brokerPort}/health`).catch(() => null))?.ok;
  }, { timeoutMs: 10_000, intervalMs: 100 });

  const server = await env.startKelpie({
    args: ['--turn-url', turnUrl, '--force-relay', '--turn-broker', `http://127.0.0.1:${brokerPort}/turn`],
  });
  env.url = server.url;
  env.server = server.proc;
  const environ = fs.readFileSync(`/proc/${server.proc.pid}/environ`, 'latin1');
  assert.ok(!environ.includes(secret) && !environ.includes('KELPIE_TURN_SECRET'), 'Kelpie was given the TURN secret');

  const welcomes = [];
  const viewer = await env.launchBrowser();
  // A new context whose pages' welcome messages are kept, in order.
  const watched = async () => {
    const context = await viewer.browser.newContext({ viewport: { width: 1280, height: 720 } });
    context.on('page', (p) => p.on('websocket', (ws) => ws.on('framereceived', ({ payload }) => {
      try {
        const msg = JSON.parse(payload);
        if (msg.type === 'welcome') welcomes.push(msg);
      } catch { /* not JSON */ }
    })));
    return context;
  };
  const page = await openConnected(env, await watched(), server.url);
  const now = Math.floor(Date.now() / 1000);
  const entry = (w) => w.ice_servers.find((s) => s.urls.includes(turnUrl));
  const first = entry(welcomes[0]);
  assert.ok(first, env.why(`no TURN server in the welcome: ${JSON.stringify(welcomes[0])}`));
  // The broker's form: EXPIRY:LABEL/VIEWER, signed with the secret Kelpie never had.
  const m = /^(\d+):desk-7\/(.+)$/.exec(first.username);
  assert.ok(m, `TURN username ${JSON.stringify(first.username)} is not <expiry>:desk-7/<viewer>`);
  assert.ok(Math.abs(Number(m[1]) - (now + TTL_S)) <= 30, `expiry ${m[1]}, want about ${now + TTL_S}`);
  assert.equal(first.credential, crypto.createHmac('sha1', secret).update(first.username).digest('base64'));

  // It plays, through the relay.
  await waitDecoding(env, page, 5);
  const pair = await selectedPair(page);
  assert.equal(pair?.local.candidateType, 'relay', env.why(JSON.stringify(pair)));
  assert.ok(turn.lines.some((l) => l.includes(`username=<${first.username}>`)), env.why('coturn never saw the brokered username'));

  // A second viewer gets a credential of its own (the broker logs one issue per viewer).
  const page2 = await openConnected(env, await watched(), server.url);
  await waitDecoding(env, page2, 5);
  assert.equal(welcomes.length, 2);
  const second = entry(welcomes[1]);
  assert.ok(second && second.credential !== first.credential, `the second viewer's credential: ${JSON.stringify(second)}`);
  await waitFor('the broker to log two issues', () => broker.lines.filter((l) => l.includes('credential issued')).length === 2,
    { timeoutMs: 5000, intervalMs: 100 });

  // Over the broker's budget (3 a minute; the two viewers and nothing else so far: take the
  // last one by hand), a viewer is told nothing about TURN, Kelpie logs why, and the
  // page still connects: over the WebSocket, since WebRTC here is relay only.
  const direct = await fetch(`http://127.0.0.1:${brokerPort}/turn?service=turn&username=by-hand`);
  assert.equal(direct.status, 200);
  const page3 = await openConnected(env, await watched(), server.url);
  assert.equal(welcomes.length, 3);
  assert.equal(entry(welcomes[2]), undefined, `over budget, yet a TURN entry: ${JSON.stringify(welcomes[2])}`);
  await waitFor('Kelpie to log the refusal', () => server.proc.lines.some((l) => /TURN broker .*429.*no TURN relay/.test(l)),
    { timeoutMs: 5000, intervalMs: 100 });
  await page3.close();
});

/** The transport's selected candidate pair with both candidates, from getStats. */
async function selectedPair(page) {
  return page.evaluate(async () => {
    const stats = await window.kelpie.pc.getStats();
    let transport;
    for (const s of stats.values()) if (s.type === 'transport' && s.selectedCandidatePairId) transport = s;
    if (!transport) return null;
    const pair = stats.get(transport.selectedCandidatePairId);
    const cand = (id) => {
      const c = stats.get(id);
      return c && {
        candidateType: c.candidateType, address: c.address, port: c.port, protocol: c.protocol,
        relayProtocol: c.relayProtocol, url: c.url,
      };
    };
    return {
      state: pair.state, nominated: pair.nominated, bytesReceived: pair.bytesReceived,
      local: cand(pair.localCandidateId), remote: cand(pair.remoteCandidateId),
    };
  });
}

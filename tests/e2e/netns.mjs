/**
 * Network namespaces for tests that need a network between browser and server: a
 * namespace of its own with a veth pair to this (the test's) namespace, an address on
 * each side, and helpers to firewall (iptables in the namespace) and shape (a tbf qdisc
 * on the host side, which is the direction server → browser) the link.
 *
 * The kernel has no netem; tbf shapes rate and queue. Needs root (`ip netns`). Every
 * namespace made here is deleted by `close()` (registered with `t.after`) and, should the
 * test process die first, by the next run's sweep of stale `kelpie-t*` namespaces.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CHROMIUM_BIN } from './harness.mjs';

const PREFIX = 'kelpie-t';
let counter = 0;

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** Whether this process may make namespaces (root with `ip` and `iptables`). */
export function netnsAvailable() {
  if (process.getuid?.() !== 0) return 'needs root (ip netns)';
  for (const tool of ['ip', 'iptables', 'tc']) {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' });
    } catch {
      return `needs ${tool} (make deps-test installs it)`;
    }
  }
  return null;
}

/** Deletes namespaces left by a test process that died without cleaning up. */
function sweep() {
  const list = run('ip', ['netns', 'list']);
  for (const line of list.split('\n')) {
    const name = line.split(' ')[0];
    const pid = Number(name.split('-')[2]);
    if (!name.startsWith(PREFIX) || !pid) continue;
    let alive = true;
    try { process.kill(pid, 0); } catch { alive = false; }
    if (!alive) {
      try { run('ip', ['netns', 'del', name]); } catch { /* raced */ }
    }
  }
}

/**
 * Makes a namespace joined to this one by a veth pair: `hostIp` on this side, `nsIp`
 * inside. Returns {name, hostIp, nsIp, hostDev, block, throttle, chromium, close}.
 */
export function makeNetns(t) {
  if (counter === 0) sweep();
  const n = counter++;
  const name = `${PREFIX}-${process.pid}-${n}`;
  // 10.213.<n>.0/30 per namespace of this process (tests run one at a time).
  const subnet = `10.213.${(process.pid + n * 7) % 250}`;
  const hostIp = `${subnet}.1`;
  const nsIp = `${subnet}.2`;
  const hostDev = `kt${process.pid % 100000}h${n}`;
  const nsDev = `kt${process.pid % 100000}n${n}`;
  run('ip', ['netns', 'add', name]);
  const ns = {
    name,
    hostIp,
    nsIp,
    hostDev,
    exec(cmd, args) {
      return run('ip', ['netns', 'exec', name, cmd, ...args]);
    },
    /**
     * The browser may reach `hostIp` only by TCP to `ports`: everything else to it (UDP
     * media, ICE-TCP, STUN) is dropped, like an HTTP-only front door.
     */
    allowOnlyTcp(ports) {
      for (const port of ports) {
        ns.exec('iptables', ['-A', 'OUTPUT', '-d', hostIp, '-p', 'tcp', '--dport', String(port), '-j', 'ACCEPT']);
      }
      ns.exec('iptables', ['-A', 'OUTPUT', '-d', hostIp, '-j', 'DROP']);
    },
    /** Shapes server → browser traffic to `rate` (tc syntax, e.g. '2mbit'). */
    throttle(rate, { burst = '16kb', latency = '50ms' } = {}) {
      run('tc', ['qdisc', 'replace', 'dev', hostDev, 'root', 'tbf', 'rate', rate, 'burst', burst, 'latency', latency]);
    },
    /**
     * Drops `probability` of the packets reaching the browser, at random (iptables'
     * `statistic` match in its namespace: the kernel has no netem).
     */
    lose(probability) {
      ns.exec('iptables', ['-A', 'INPUT', '-s', hostIp, '-m', 'statistic', '--mode', 'random',
        '--probability', String(probability), '-j', 'DROP']);
    },
    unthrottle() {
      try { run('tc', ['qdisc', 'del', 'dev', hostDev, 'root']); } catch { /* none */ }
    },
    /**
     * launchBrowser options for a Chromium inside the namespace, viewing `origin`. A page
     * on plain http:// at a non-loopback address is not a secure context, and browsers
     * offer WebCodecs (which the WebSocket transport decodes with) only to secure ones;
     * real deployments serve https://, here a switch stands in for the certificate.
     */
    browser(dir, origin) {
      return { executablePath: ns.chromium(dir), args: [`--unsafely-treat-insecure-origin-as-secure=${origin}`] };
    },
    /** A Chromium wrapper that runs the browser inside the namespace (for launchBrowser). */
    chromium(dir) {
      return ns.wrap(dir, CHROMIUM_BIN);
    },
    /** A script in `dir` that runs program `bin` inside the namespace, with its arguments. */
    wrap(dir, bin) {
      const file = path.join(dir, `${path.basename(bin)}-in-${name}.sh`);
      fs.writeFileSync(file, `#!/bin/sh\nexec ip netns exec ${name} ${bin} "$@"\n`, { mode: 0o755 });
      return file;
    },
    close() {
      try { run('ip', ['link', 'del', hostDev]); } catch { /* gone with the namespace */ }
      try { run('ip', ['netns', 'del', name]); } catch { /* already gone */ }
    },
  };
  t.after(() => ns.close());
  // No IPv6 on either end: a link-local address arrives a second or two after the link
  // is up (duplicate address detection), and Chromium treats that as a network change and
  // fails the page's loads in flight with ERR_NETWORK_CHANGED. That holds for a browser
  // on this (the host) side too: a fresh-clone run had proxy.test's host Chromium lose
  // its first page to the host end's late address.
  ns.exec('sysctl', ['-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
  run('ip', ['link', 'add', hostDev, 'type', 'veth', 'peer', 'name', nsDev]);
  run('sysctl', ['-qw', `net.ipv6.conf.${hostDev}.disable_ipv6=1`]);
  run('ip', ['link', 'set', nsDev, 'netns', name]);
  ns.exec('sysctl', ['-qw', `net.ipv6.conf.${nsDev}.disable_ipv6=1`]);
  run('ip', ['addr', 'add', `${hostIp}/30`, 'dev', hostDev]);
  run('ip', ['link', 'set', hostDev, 'up']);
  ns.exec('ip', ['addr', 'add', `${nsIp}/30`, 'dev', nsDev]);
  ns.exec('ip', ['link', 'set', nsDev, 'up']);
  ns.exec('ip', ['link', 'set', 'lo', 'up']);
  return ns;
}

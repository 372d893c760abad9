import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/**
 * A two-host network on one machine: two network namespaces joined by a veth pair, and a veth from the root namespace
 * to one of them. Needs root. Used by the tests (test/netns.ts re-exports it) and by `tripcap demo`.
 * Only traffic between these namespaces is ever sent; destroy() removes both (and with them the veth).
 */

export interface NetnsHost {
  /** network namespace name */
  ns: string;
  /** this host's end of the veth, inside `ns` */
  ifname: string;
  /** IPv4 address on `ifname` (a /30 shared with the other host) */
  ip: string;
}

export interface TwoHosts {
  a: NetnsHost;
  b: NetnsHost;
  /** Runs argv inside namespace `ns` (`ip netns exec ns …`); rejects on a non-zero exit, with its stderr. */
  exec(ns: string, argv: string[], options?: { timeoutMs?: number }): Promise<{ stdout: string; stderr: string }>;
  /** Deletes both namespaces; safe to call more than once. */
  destroy(): Promise<void>;
}

let counter = 0;

/** Creates `tc<pid><n>a` and `tc<pid><n>b` joined by a veth, 10.201.<n>.1/30 ↔ 10.201.<n>.2/30, links up, ARP warm. */
export async function createTwoHosts(): Promise<TwoHosts> {
  const n = counter++;
  const base = `tc${process.pid}${n}`;
  if (base.length + 1 > 15) throw new Error(`netns name ${base} too long for an interface name`);
  const subnet = n % 64;
  const a: NetnsHost = { ns: `${base}a`, ifname: `${base}a`, ip: `10.201.${subnet}.1` };
  const b: NetnsHost = { ns: `${base}b`, ifname: `${base}b`, ip: `10.201.${subnet}.2` };

  let destroyed = false;
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    for (const host of [a, b]) await ip(['netns', 'del', host.ns]).catch(() => {});
  };

  try {
    await ip(['netns', 'add', a.ns]);
    await ip(['netns', 'add', b.ns]);
    await ip(['link', 'add', a.ifname, 'netns', a.ns, 'type', 'veth', 'peer', 'name', b.ifname, 'netns', b.ns]);
    for (const host of [a, b]) {
      await ip(['-n', host.ns, 'link', 'set', 'lo', 'up']);
      await ip(['-n', host.ns, 'addr', 'add', `${host.ip}/30`, 'dev', host.ifname]);
      await ip(['-n', host.ns, 'link', 'set', host.ifname, 'up']);
    }
    // One ping resolves ARP both ways, so later bursts are not queued or dropped waiting for a neighbour.
    await execIn(a.ns, ['ping', '-c', '1', '-W', '2', b.ip]);
  } catch (err) {
    await destroy();
    throw err;
  }
  return { a, b, exec: execIn, destroy };
}

/**
 * Sends `count` UDP datagrams from inside `from.ns` to `to:port`, one after another (each send awaited), and
 * resolves when the last send has returned. Datagram i carries `seq=<firstSeq + i>` (padded to `size` bytes of
 * payload), so a capture can be checked for every sequence number. `intervalMs` spaces the sends (default: none).
 * Run by a small Node script via `ip netns exec`; `signal` ends it early (the promise then rejects with an AbortError).
 */
export async function sendUdp(
  from: NetnsHost,
  options: {
    to: string;
    port: number;
    count: number;
    size?: number;
    sourcePort?: number;
    firstSeq?: number;
    intervalMs?: number;
    signal?: AbortSignal;
  },
): Promise<void> {
  const { to, port, count, size = 64, sourcePort = 0, firstSeq = 0, intervalMs = 0, signal } = options;
  const script = `
    const dgram = require('node:dgram');
    const [to, port, count, size, sourcePort, firstSeq, intervalMs] = [process.argv[1], ...process.argv.slice(2).map(Number)];
    const socket = dgram.createSocket('udp4');
    socket.bind(sourcePort, async () => {
      for (let i = 0; i < count; i++) {
        const payload = Buffer.alloc(size, 0x2e);
        payload.write('seq=' + (firstSeq + i) + ';');
        await new Promise((resolve, reject) => socket.send(payload, port, to, (err) => (err ? reject(err) : resolve())));
        if (intervalMs > 0) await new Promise((resolve) => setTimeout(resolve, intervalMs));
      }
      socket.close();
    });`;
  const args = [to, port, count, size, sourcePort, firstSeq, intervalMs].map(String);
  await execIn(from.ns, [process.execPath, '-e', script, ...args], {
    timeoutMs: 60_000,
    ...(signal ? { signal } : {}),
  });
}

/** A veth between the root namespace and a host's namespace. */
export interface RootLink {
  /** the end in the root namespace */
  rootIfname: string;
  /** IPv4 address of the root end (a /30 shared with `ip`) */
  rootIp: string;
  /** the end inside the host's namespace */
  ifname: string;
  /** IPv4 address of the namespace end */
  ip: string;
  /** Deletes the veth (both ends); safe to call more than once, and after the namespace is gone. */
  destroy(): Promise<void>;
}

/**
 * Joins namespace `ns` to the root namespace with a veth, so that a process in the root namespace (a server, the
 * test itself) and one in `ns` can talk: a free /30 in 10.202.0.0/16 (root end .1, namespace end .2), links up.
 * Only this /30 is routed over it; the root namespace's other routes are not touched.
 */
export async function linkToRoot(ns: string): Promise<RootLink> {
  const n = counter++;
  const base = `tr${process.pid}${n}`;
  if (base.length + 1 > 15) throw new Error(`interface name ${base} too long`);
  const rootIfname = `${base}r`;
  const ifname = `${base}n`;
  // The root namespace is shared with every other process: pick a /30 that no interface there uses yet.
  const { stdout } = await run('ip', ['-4', '-o', 'addr', 'show'], 10_000);
  const used = new Set(
    [...stdout.matchAll(/inet 10\.202\.(\d+)\.(\d+)\//g)].map((m) => `${m[1]}.${Math.floor(Number(m[2]) / 4)}`),
  );
  let slot: { third: number; block: number } | undefined;
  for (let i = 0; i < 256 * 64 && !slot; i++) {
    const index = (process.pid * 7 + n + i) % (256 * 64);
    const candidate = { third: Math.floor(index / 64), block: index % 64 };
    if (!used.has(`${candidate.third}.${candidate.block}`)) slot = candidate;
  }
  if (!slot) throw new Error('no free /30 in 10.202.0.0/16 for a root link');
  const rootIp = `10.202.${slot.third}.${slot.block * 4 + 1}`;
  const ip4 = `10.202.${slot.third}.${slot.block * 4 + 2}`;

  let destroyed = false;
  const destroy = async () => {
    if (destroyed) return;
    destroyed = true;
    await ip(['link', 'del', rootIfname]).catch(() => {});
  };
  try {
    await ip(['link', 'add', rootIfname, 'type', 'veth', 'peer', 'name', ifname, 'netns', ns]);
    await ip(['addr', 'add', `${rootIp}/30`, 'dev', rootIfname]);
    await ip(['link', 'set', rootIfname, 'up']);
    await ip(['-n', ns, 'link', 'set', 'lo', 'up']);
    await ip(['-n', ns, 'addr', 'add', `${ip4}/30`, 'dev', ifname]);
    await ip(['-n', ns, 'link', 'set', ifname, 'up']);
    await execIn(ns, ['ping', '-c', '1', '-W', '2', rootIp]);
  } catch (err) {
    await destroy();
    throw err;
  }
  return { rootIfname, rootIp, ifname, ip: ip4, destroy };
}

async function ip(args: string[]): Promise<void> {
  await run('ip', args, 10_000);
}

/** Runs argv inside namespace `ns` (`ip netns exec ns …`); rejects on a non-zero exit, with its stderr. */
export function execIn(ns: string, argv: string[], options: { timeoutMs?: number; signal?: AbortSignal } = {}) {
  return run('ip', ['netns', 'exec', ns, ...argv], options.timeoutMs ?? 30_000, options.signal);
}

async function run(
  cmd: string,
  args: string[],
  timeout: number,
  signal?: AbortSignal,
): Promise<{ stdout: string; stderr: string }> {
  try {
    return await execFileAsync(cmd, args, { timeout, maxBuffer: 64 << 20, ...(signal ? { signal } : {}) });
  } catch (err) {
    if (signal?.aborted) throw err;
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { createTwoHosts, execIn } from '../../test/netns.js';
import { clientHello, dnsMessage } from './frames.test-helper.js';

/**
 * Real traffic between two network namespaces, captured by tcpdump as the agent would: on the veth (Ethernet), on
 * `any` (Linux SLL2), with nanosecond timestamps, then converted to pcapng by editcap and merged into a
 * multi-interface pcapng by mergecap. Needs root. (VLAN-tagged frames are in the hand-built files: this machine's
 * kernel has no 802.1Q module for sub-interfaces.)
 */

const execFileAsync = promisify(execFile);

const SERVER = `
const net = require('node:net');
const dgram = require('node:dgram');
const http = net.createServer((s) => s.once('data', () => s.end('HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok')));
const tls = net.createServer((s) => s.once('data', () => s.end()));
const dns = dgram.createSocket('udp4');
dns.on('message', (m, r) => {
  // answer with the query's id, question and one A record
  const answer = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 203, 0, 113, 7]);
  const out = Buffer.concat([m, answer]);
  out.writeUInt16BE(0x8180, 2);
  out.writeUInt16BE(1, 6);
  dns.send(out, r.port, r.address);
});
let ready = 0;
const up = () => { if (++ready === 4) console.log('ready'); };
http.listen(8080, '::', up);
tls.listen(443, '::', up);
dns.bind(53, up);
net.createServer(() => {}).listen(9, up);
`;

const CLIENT = `
const net = require('node:net');
const dgram = require('node:dgram');
const [server, server6, hello, query] = process.argv.slice(1);
const connect = (host, port, data) => new Promise((resolve) => {
  const s = net.connect(port, host, () => { if (data) s.write(data); else s.end(); });
  s.on('data', () => {});
  s.on('close', resolve);
  s.on('error', resolve);
  setTimeout(() => { s.destroy(); resolve(); }, 3000);
});
const udp = (host, port, data, wait) => new Promise((resolve) => {
  const s = dgram.createSocket('udp4');
  s.on('message', () => { s.close(); resolve(); });
  s.on('error', () => { s.close(); resolve(); });
  s.send(data, port, host, () => { if (!wait) setTimeout(() => { try { s.close(); } catch {} resolve(); }, 100); });
  setTimeout(() => { try { s.close(); } catch {} resolve(); }, 2000);
});
(async () => {
  await connect(server, 8080, 'GET /status HTTP/1.1\\r\\nHost: api.internal.example\\r\\n\\r\\n');
  await connect(server6, 8080, 'GET /v6 HTTP/1.1\\r\\nHost: six.example\\r\\n\\r\\n');
  await connect(server, 443, Buffer.from(hello, 'hex'));
  await connect(server, 81);
  await udp(server, 53, Buffer.from(query, 'hex'), true);
  await udp(server, 9999, Buffer.alloc(4000, 1), false);
})();
`;

async function waitFor(
  child: ChildProcess,
  stream: 'stdout' | 'stderr',
  text: string,
  timeoutMs = 10_000,
): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for '${text}': ${seen}`)), timeoutMs);
    child[stream]?.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes(text)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}) before '${text}': ${seen}`));
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT');
  await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

/** Captures the scenario; returns the files by name. */
export async function captureLiveTraffic(dir: string): Promise<Record<string, string>> {
  const hosts = await createTwoHosts();
  const { a, b } = hosts;
  const children: ChildProcess[] = [];
  try {
    const sub = a.ip.split('.')[2];
    const ipIn = (ns: string, args: string[]) => execFileAsync('ip', ['-n', ns, ...args]);
    for (const [host, n] of [
      [a, 1],
      [b, 2],
    ] as const) {
      await ipIn(host.ns, ['addr', 'add', `fd00:201:${sub}::${n}/64`, 'dev', host.ifname, 'nodad']);
    }
    const files = {
      ethernet: join(dir, 'live-ethernet.pcap'),
      any: join(dir, 'live-any-sll2.pcap'),
      nano: join(dir, 'live-nanosecond.pcap'),
    };
    const tcpdump = (args: string[]) => {
      const child = spawn('ip', ['netns', 'exec', a.ns, 'tcpdump', '-Z', 'root', '-U', ...args], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      children.push(child);
      return child;
    };
    const captures = [
      tcpdump(['-i', a.ifname, '-w', files.ethernet]),
      tcpdump(['-i', 'any', '-w', files.any]),
      tcpdump(['-i', a.ifname, '--time-stamp-precision', 'nano', '-w', files.nano]),
    ];
    await Promise.all(captures.map((c) => waitFor(c, 'stderr', 'listening on')));

    const server = spawn('ip', ['netns', 'exec', b.ns, process.execPath, '-e', SERVER], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(server);
    await waitFor(server, 'stdout', 'ready');
    await execIn(a.ns, ['ping', '-c', '2', '-i', '0.2', b.ip]);
    await execIn(a.ns, ['ping', '-c', '1', '-s', '3000', b.ip]);
    await execIn(a.ns, ['ping', '-6', '-c', '1', '-s', '3000', `fd00:201:${sub}::2`]);
    const hello = Buffer.from(clientHello('backup.example.com')).toString('hex');
    const query = Buffer.from(dnsMessage(0x1234, 'db.internal.example', 1)).toString('hex');
    await execIn(a.ns, [process.execPath, '-e', CLIENT, b.ip, `fd00:201:${sub}::2`, hello, query], {
      timeoutMs: 30_000,
    });
    await new Promise((r) => setTimeout(r, 300));
    for (const c of captures) await stop(c);
    await stop(server);

    const pcapng = join(dir, 'live-ethernet.pcapng');
    await execFileAsync('editcap', ['-F', 'pcapng', files.ethernet, pcapng]);
    const merged = join(dir, 'live-merged-multi-interface.pcapng');
    await execFileAsync('mergecap', ['-F', 'pcapng', '-w', merged, files.ethernet, files.any]);
    return { ...files, pcapng, merged };
  } finally {
    for (const c of children) await stop(c);
    await hosts.destroy();
  }
}

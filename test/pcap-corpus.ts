import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readCaptureFile } from '../src/pcap/reader.js';
import { LinkType, type RawPacket } from '../src/pcap/types.js';
import { createPcapngWriter, createPcapWriter, type WritePacket } from '../src/pcap/writer.js';
import { createTwoHosts, execIn, netnsSkipReason } from './netns.js';

/**
 * The capture corpus the pcap and analysis tests compare with tshark. `makeCorpus(dir)` writes every file into `dir`
 * and returns name → path; it needs root (network namespaces, tcpdump, dumpcap) and takes about 3–5 s.
 * `makeSyntheticCorpus(dir)` makes only the files written by tripcap's writer, without root.
 *
 * Live files are real traffic between two network namespaces joined by a veth (test/netns.ts), captured by tcpdump
 * or dumpcap inside the client's namespace: a Node server in the server namespace (DNS on 53/udp, TCP echo on 7000 and
 * 7010, a resetting server on 7001, HTTP on 8080, TLS on 8443, UDP sinks on 9999 and 9996) and a Node client script,
 * ping and ping -6 in the client namespace. Nothing else is sent, and only between these namespaces.
 *
 * Synthetic files are frames built byte by byte here (IPv4/IPv6, ICMP, UDP with a DNS query and answer, a TCP
 * handshake with an HTTP request and response, a TLS ClientHello with SNI), checksums included, wrapped in the link
 * layer no tool here can capture (802.1Q, QinQ, raw IP, BSD loopback) and written with createPcapWriter.
 */

export const CORPUS_NAMES = [
  'icmp',
  'dns',
  'tcp-handshake-retrans-rst',
  'tls-sni',
  'http',
  'ipv6',
  'sll2',
  'sll',
  'nanosecond',
  'pcapng-multi',
  'big-endian',
  'truncated',
  'vlan',
  'qinq',
  'raw-ip',
  'loopback-null',
] as const;
export type CorpusName = (typeof CORPUS_NAMES)[number];

export const SYNTHETIC_NAMES = ['vlan', 'qinq', 'raw-ip', 'loopback-null'] as const satisfies readonly CorpusName[];
export type SyntheticName = (typeof SYNTHETIC_NAMES)[number];

/** What each file holds and how it is made. */
export const CORPUS_DESCRIPTIONS: Record<CorpusName, string> = {
  icmp: 'tcpdump on the client veth (Ethernet, µs pcap), filter `icmp`: 3 ping echo requests and replies.',
  dns:
    'tcpdump, `udp port 53`: Node resolver queries to the server namespace: A and AAAA for www.example.test, A for ' +
    'api.example.test, A for nope.example.test (NXDOMAIN).',
  'tcp-handshake-retrans-rst':
    'tcpdump, `ip and tcp portrange 7000-7002`: an echo session on 7000 whose second segment is retransmitted ' +
    '(the server side is blackholed for 350 ms), a connection the server resets (7001, resetAndDestroy), and a ' +
    'connection refused with RST by a closed port (7002).',
  'tls-sni':
    'tcpdump, `tcp port 8443`: two full TLS handshakes (Node tls, self-signed certificate from openssl) with SNI ' +
    'www.example.test and api.example.test, ALPN http/1.1, a request and a response each.',
  http:
    'tcpdump, `tcp port 8080`: HTTP/1.1 from Node http to a Node server, Host www.example.test: GET /index.html ' +
    '(200), POST /api/items (201), GET /missing (404), one connection each.',
  ipv6:
    'tcpdump, `ip6`: ping -6 over fd00:201:N::/64, a TCP echo session on 7010 and UDP datagrams to 9996, with the ' +
    'neighbour discovery they cause.',
  sll2:
    'tcpdump -i any -y LINUX_SLL2 (link type 276), `icmp or icmp6 or udp port 9999`: pings, UDP datagrams to the ' +
    'server and to 127.0.0.1 (on lo, answered by ICMP port unreachable).',
  sll: 'tcpdump -i any -y LINUX_SLL (link type 113), `udp port 53 or tcp port 8080`: the DNS and HTTP traffic.',
  nanosecond:
    'tcpdump --time-stamp-precision=nano (magic a1b23c4d), `icmp or udp port 9999` on the client veth: pings and ' +
    'UDP datagrams.',
  'pcapng-multi':
    'Two pcapng sections, concatenated. Section 1: dumpcap on the client veth and lo (two interfaces, ns ' +
    'resolution, a capture comment, interface statistics), `icmp or udp port 9999`. Section 2: written by ' +
    'createPcapngWriter one second after the last packet of section 1: a section comment, two interfaces (Ethernet ' +
    'µs, raw IP ns), the synthetic conversation with two packet comments, a name resolution block, statistics.',
  'big-endian': 'The http capture rewritten by createPcapWriter with littleEndian: false (µs).',
  truncated:
    'The tcp-handshake-retrans-rst capture cut 7 bytes before its end: the last record is incomplete (tshark: ' +
    '"cut short in the middle of a packet").',
  vlan: 'Synthetic conversation in Ethernet frames with one 802.1Q tag (VID 100), µs pcap.',
  qinq: 'Synthetic conversation in Ethernet frames with an 802.1ad tag (VID 200) over an 802.1Q tag (VID 100).',
  'raw-ip': 'Synthetic conversation as raw IP packets (LINKTYPE_RAW 101), nanosecond pcap.',
  'loopback-null':
    'Synthetic conversation with BSD loopback headers (LINKTYPE_NULL 0: address family 2 or 30 in little-endian).',
};

/** Addresses of the synthetic conversation. */
export const SYNTHETIC_HOSTS = {
  client: '192.0.2.10',
  server: '198.51.100.20',
  client6: '2001:db8::10',
  server6: '2001:db8::20',
} as const;

export interface Corpus {
  files: Record<CorpusName, string>;
  /** Client and server addresses of the live captures (the client namespace is the captured host). */
  hosts: { client: string; server: string; client6: string; server6: string };
}

/** Makes every corpus file in `dir`; needs root. */
export async function makeCorpus(dir: string): Promise<Record<CorpusName, string>> {
  return (await buildCorpus(dir)).files;
}

/** Makes the files that need no root (writer-made) in `dir`. */
export async function makeSyntheticCorpus(dir: string): Promise<Record<SyntheticName, string>> {
  await mkdir(dir, { recursive: true });
  const packets = syntheticConversation();
  const files = Object.fromEntries(SYNTHETIC_NAMES.map((n) => [n, join(dir, `${n}.pcap`)])) as Record<
    SyntheticName,
    string
  >;
  await writeFrames(files.vlan, LinkType.ETHERNET, packets, (ip, v6) => ethernet(ip, v6, [[0x8100, 100]]));
  await writeFrames(files.qinq, LinkType.ETHERNET, packets, (ip, v6) =>
    ethernet(ip, v6, [
      [0x88a8, 200],
      [0x8100, 100],
    ]),
  );
  await writeFrames(files['raw-ip'], LinkType.RAW, packets, (ip) => ip, { nanosecond: true });
  await writeFrames(files['loopback-null'], LinkType.NULL, packets, (ip, v6) => {
    const header = Buffer.alloc(4);
    header.writeUInt32LE(v6 ? 30 : 2);
    return Buffer.concat([header, ip]);
  });
  return files;
}

/** Makes every corpus file in `dir` and tells the live hosts' addresses; needs root. */
export async function buildCorpus(dir: string): Promise<Corpus> {
  const skip = netnsSkipReason();
  if (skip) throw new Error(`makeCorpus ${skip}`);
  await mkdir(dir, { recursive: true });
  const synthetic = await makeSyntheticCorpus(dir);
  const live = await captureLive(dir);
  const files = { ...synthetic, ...live.files } as Record<CorpusName, string>;

  // big-endian: the http capture, byte-swapped by the writer
  files['big-endian'] = join(dir, 'big-endian.pcap');
  await rewrite(files.http, files['big-endian'], { littleEndian: false });

  // truncated: the tcp capture without its last 7 bytes
  files.truncated = join(dir, 'truncated.pcap');
  const tcp = await readFile(files['tcp-handshake-retrans-rst']);
  await writeFile(files.truncated, tcp.subarray(0, tcp.length - 7));

  // pcapng-multi: dumpcap's section as it is (editcap -a would add packet comments but drops the statistics blocks),
  // then a writer-made section with packet comments
  files['pcapng-multi'] = join(dir, 'pcapng-multi.pcapng');
  const second = join(dir, 'pcapng-section-2.pcapng');
  let lastSeconds = 0;
  await readCaptureFile(live.dumpcap, (p) => {
    lastSeconds = Math.max(lastSeconds, p.seconds);
  });
  await writeSecondSection(second, live.hosts.server, lastSeconds + 1);
  await writeFile(files['pcapng-multi'], Buffer.concat([await readFile(live.dumpcap), await readFile(second)]));
  await rm(second);
  await rm(live.dumpcap);
  return { files, hosts: live.hosts };
}

// ---- live captures ------------------------------------------------------------------------------------------------

type LiveName = Exclude<CorpusName, SyntheticName | 'big-endian' | 'truncated' | 'pcapng-multi'>;

interface Capture {
  name: LiveName | 'dumpcap';
  argv: string[];
  file: string;
}

async function captureLive(
  dir: string,
): Promise<{ files: Record<LiveName, string>; dumpcap: string; hosts: Corpus['hosts'] }> {
  const net = await createTwoHosts();
  const processes: ChildProcess[] = [];
  try {
    const { a, b } = net;
    const subnet = Number(a.ip.split('.')[2]) + 1; // never 0: the addresses below are then in canonical form
    const hosts = { client: a.ip, server: b.ip, client6: `fd00:201:${subnet}::1`, server6: `fd00:201:${subnet}::2` };
    await net.exec(a.ns, ['ip', '-6', 'addr', 'add', `${hosts.client6}/64`, 'dev', a.ifname, 'nodad']);
    await net.exec(b.ns, ['ip', '-6', 'addr', 'add', `${hosts.server6}/64`, 'dev', b.ifname, 'nodad']);

    const key = join(dir, 'tls-key.pem');
    const cert = join(dir, 'tls-cert.pem');
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      '/CN=www.example.test',
      '-days',
      '2',
    ]);

    const server = spawn('ip', ['netns', 'exec', b.ns, process.execPath, '-e', SERVER_SCRIPT, key, cert], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    processes.push(server);
    const serverReady = waitForOutput(server, /ready/, 10_000, 'corpus server');

    const tcpdump = (name: LiveName, filter: string, extra: string[] = [], iface = a.ifname): Capture => {
      const file = join(dir, `${name}.pcap`);
      return {
        name,
        file,
        argv: ['tcpdump', '-i', iface, '-w', file, '-U', '--immediate-mode', '-n', ...extra, filter],
      };
    };
    const dumpcapFile = join(dir, 'dumpcap.pcapng');
    const filter = 'icmp or udp port 9999';
    const captures: Capture[] = [
      tcpdump('icmp', 'icmp'),
      tcpdump('dns', 'udp port 53'),
      tcpdump('tcp-handshake-retrans-rst', 'ip and tcp portrange 7000-7002'),
      tcpdump('tls-sni', 'tcp port 8443'),
      tcpdump('http', 'tcp port 8080'),
      tcpdump('ipv6', 'ip6'),
      tcpdump('sll2', 'icmp or icmp6 or udp port 9999', ['-y', 'LINUX_SLL2'], 'any'),
      tcpdump('sll', 'udp port 53 or tcp port 8080', ['-y', 'LINUX_SLL'], 'any'),
      tcpdump('nanosecond', filter, ['--time-stamp-precision=nano']),
      {
        name: 'dumpcap',
        file: dumpcapFile,
        argv: [
          'dumpcap',
          '-q',
          '-i',
          a.ifname,
          '-f',
          filter,
          '-i',
          'lo',
          '-f',
          filter,
          '--capture-comment',
          'tripcap test corpus: client namespace, veth and loopback',
          '-w',
          dumpcapFile,
        ],
      },
    ];
    const started = captures.map((c) => {
      const child = spawn('ip', ['netns', 'exec', a.ns, ...c.argv], { stdio: ['ignore', 'ignore', 'pipe'] });
      processes.push(child);
      return { capture: c, child, ready: waitForOutput(child, /listening on|Capturing on/, 15_000, c.argv[0] ?? '') };
    });
    await Promise.all([serverReady, ...started.map((s) => s.ready)]);
    await sleep(150); // dumpcap says "Capturing on" just before it opens the capture

    await execIn(a.ns, ['ping', '-c', '3', '-i', '0.05', '-W', '2', b.ip]);
    await execIn(a.ns, [process.execPath, '-e', CLIENT_SCRIPT, b.ip, hosts.server6, b.ns, a.ip], {
      timeoutMs: 30_000,
    });
    await execIn(a.ns, ['ping', '-6', '-c', '2', '-i', '0.05', '-W', '2', hosts.server6]);
    await sleep(100);

    for (const { child } of started) child.kill('SIGTERM');
    await Promise.all(started.map(({ child }) => exited(child, 10_000)));
    const files = Object.fromEntries(
      captures.filter((c) => c.name !== 'dumpcap').map((c) => [c.name, c.file]),
    ) as Record<LiveName, string>;
    for (const [name, file] of Object.entries(files)) {
      let count = 0;
      await readCaptureFile(file, () => count++);
      if (count === 0) throw new Error(`corpus capture ${name} is empty`);
    }
    return { files, dumpcap: dumpcapFile, hosts };
  } finally {
    for (const child of processes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await net.destroy();
    await rm(join(dir, 'tls-key.pem'), { force: true });
    await rm(join(dir, 'tls-cert.pem'), { force: true });
  }
}

/** The servers, in the server namespace: argv = [key, cert]. Prints "ready" once every socket listens. */
const SERVER_SCRIPT = String.raw`
const dgram = require('node:dgram'), net = require('node:net'), http = require('node:http');
const tls = require('node:tls'), fs = require('node:fs');
const [keyFile, certFile] = process.argv.slice(1);
let pending = 0;
const ready = () => { if (--pending === 0) process.stdout.write('ready\n'); };
const listen = (server, port) => { pending++; server.on('error', (e) => { console.error(e); process.exit(1); }); server.listen(port, '::', ready); };
const quiet = (s) => s.on('error', () => {});

const RECORDS = {
  'www.example.test': { 1: [Buffer.from([198, 51, 100, 80])], 28: [Buffer.from('20010db8000000000000000000000080', 'hex')] },
  'api.example.test': { 1: [Buffer.from([198, 51, 100, 81])] },
};
function answer(query) {
  if (query.length < 17) return undefined;
  let at = 12; const labels = [];
  while (at < query.length && query[at] !== 0) { labels.push(query.toString('latin1', at + 1, at + 1 + query[at])); at += 1 + query[at]; }
  const questionEnd = at + 5;
  if (questionEnd > query.length) return undefined;
  const name = labels.join('.').toLowerCase(); const type = query.readUInt16BE(at + 1);
  const known = RECORDS[name];
  const rdatas = (known && known[type]) || [];
  const header = Buffer.alloc(12);
  header.writeUInt16BE(query.readUInt16BE(0), 0);
  header.writeUInt16BE(known ? 0x8180 : 0x8183, 2); // response, RD, RA; NXDOMAIN for unknown names
  header.writeUInt16BE(1, 4); header.writeUInt16BE(rdatas.length, 6);
  const answers = rdatas.map((rdata) => { const rr = Buffer.alloc(12); rr.writeUInt16BE(0xc00c, 0); rr.writeUInt16BE(type, 2); rr.writeUInt16BE(1, 4); rr.writeUInt32BE(300, 6); rr.writeUInt16BE(rdata.length, 10); return Buffer.concat([rr, rdata]); });
  return Buffer.concat([header, query.subarray(12, questionEnd), ...answers]);
}
const dns = dgram.createSocket('udp6');
dns.on('message', (msg, rinfo) => { const reply = answer(msg); if (reply) dns.send(reply, rinfo.port, rinfo.address); });
pending++; dns.bind(53, '::', ready);
for (const port of [9999, 9996]) { const sink = dgram.createSocket('udp6'); pending++; sink.bind(port, '::', ready); }

const echo = (s) => { quiet(s); s.on('data', (d) => s.write('echo:' + d)); s.on('end', () => s.end()); };
listen(net.createServer(echo), 7000);
listen(net.createServer(echo), 7010);
listen(net.createServer((s) => { quiet(s); s.once('data', () => s.resetAndDestroy()); }), 7001);

listen(http.createServer((req, res) => {
  let body = '';
  req.on('data', (d) => { body += d; });
  req.on('end', () => {
    if (req.method === 'GET' && req.url === '/index.html') { res.writeHead(200, { 'content-type': 'text/html' }); res.end('<html><body>tripcap corpus</body></html>\n'); }
    else if (req.method === 'POST' && req.url === '/api/items') { res.writeHead(201, { 'content-type': 'application/json', location: '/api/items/1' }); res.end(JSON.stringify({ id: 1, received: body.length })); }
    else { res.writeHead(404, { 'content-type': 'text/plain' }); res.end('not found\n'); }
  });
}), 8080);

listen(tls.createServer({ key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile), ALPNProtocols: ['http/1.1'] }, (s) => {
  quiet(s);
  s.once('data', () => s.end('HTTP/1.1 200 OK\r\ncontent-length: 3\r\nconnection: close\r\n\r\nok\n'));
}), 8443);
`;

/** The client steps, in the client namespace: argv = [server IPv4, server IPv6, server netns, client IPv4]. */
const CLIENT_SCRIPT = String.raw`
const net = require('node:net'), tls = require('node:tls'), http = require('node:http'), dgram = require('node:dgram');
const dns = require('node:dns'), cp = require('node:child_process'), { once } = require('node:events');
const [server, server6, serverNs, client] = process.argv.slice(1);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function resolveNames() {
  const resolver = new dns.promises.Resolver({ timeout: 2000, tries: 3 });
  resolver.setServers([server]);
  await resolver.resolve4('www.example.test');
  await resolver.resolve6('www.example.test');
  await resolver.resolve4('api.example.test');
  await resolver.resolve4('nope.example.test').then(() => { throw new Error('nope.example.test resolved'); }, () => {});
}

async function echoWithRetransmission() {
  const s = net.connect(7000, server);
  await once(s, 'connect');
  s.setNoDelay(true);
  const reply = () => new Promise((resolve) => s.once('data', resolve));
  s.write('hello\n');
  await reply();
  // The server's route back is blackholed: it gets "world" but its ACK and echo are dropped, so "world" is resent.
  cp.execFileSync('ip', ['-n', serverNs, 'route', 'add', 'blackhole', client + '/32']);
  s.write('world\n');
  await sleep(350);
  cp.execFileSync('ip', ['-n', serverNs, 'route', 'del', 'blackhole', client + '/32']);
  await reply();
  s.end();
  await once(s, 'close');
}

async function resets() {
  const reset = net.connect(7001, server);
  reset.on('error', () => {});
  await once(reset, 'connect');
  const closed = new Promise((resolve) => reset.once('close', resolve)); // once() would reject on ECONNRESET
  reset.write('reset me');
  await closed;
  await new Promise((resolve, reject) => {
    const refused = net.connect(7002, server);
    refused.on('error', (e) => (e.code === 'ECONNREFUSED' ? resolve() : reject(e)));
    refused.on('connect', () => reject(new Error('port 7002 accepted a connection')));
  });
}

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: server, port: 8080, method, path, agent: false, headers: { host: 'www.example.test', 'user-agent': 'tripcap-corpus/1', ...(body ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function tlsSession(servername) {
  const s = tls.connect({ host: server, port: 8443, servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] });
  await once(s, 'secureConnect');
  s.write('GET / HTTP/1.1\r\nhost: ' + servername + '\r\n\r\n');
  s.resume();
  await once(s, 'end');
  s.end();
  await once(s, 'close');
}

async function udp(host, port, count, type) {
  const socket = dgram.createSocket(type);
  socket.on('error', () => {}); // ICMP port unreachable for 127.0.0.1
  for (let i = 0; i < count; i++) {
    await new Promise((resolve, reject) => socket.send(Buffer.from('seq=' + i + ';' + '.'.repeat(40)), port, host, (e) => (e ? reject(e) : resolve())));
    await sleep(5);
  }
  socket.close();
}

async function ipv6Session() {
  const s = net.connect(7010, server6);
  await once(s, 'connect');
  s.write('hello over IPv6\n');
  await once(s, 'data');
  s.end();
  await once(s, 'close');
}

(async () => {
  await resolveNames();
  await echoWithRetransmission();
  await resets();
  for (const [method, path, body] of [['GET', '/index.html'], ['POST', '/api/items', '{"name":"corpus"}'], ['GET', '/missing']]) await request(method, path, body);
  await tlsSession('www.example.test');
  await tlsSession('api.example.test');
  await udp(server, 9999, 5, 'udp4');
  await udp('127.0.0.1', 9999, 2, 'udp4');
  await ipv6Session();
  await udp(server6, 9996, 3, 'udp6');
  await sleep(20);
})().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
`;

// ---- the second pcapng section and rewrites ------------------------------------------------------------------------

async function writeSecondSection(file: string, serverIp: string, startSeconds: number): Promise<void> {
  const writer = createPcapngWriter(file, {
    comment: 'tripcap test corpus: section written by createPcapngWriter',
    os: 'Linux',
    interfaces: [
      { linkType: LinkType.ETHERNET, snaplen: 262144, name: 'synthetic0', description: 'synthetic Ethernet' },
      { linkType: LinkType.RAW, snaplen: 262144, name: 'tun0', tsresol: 9 },
    ],
  });
  const packets = syntheticConversation(startSeconds);
  for (const [i, p] of packets.entries()) {
    const onTun = i % 4 === 3;
    await writer.write({
      seconds: p.seconds,
      nanos: p.nanos,
      data: onTun ? p.ip : ethernet(p.ip, p.v6, []),
      interfaceId: onTun ? 1 : 0,
      ...(i === 2 ? { comment: 'the DNS query' } : i === 15 ? { comment: 'the TLS ClientHello' } : {}),
    });
  }
  await writer.writeNameRecords([
    { address: SYNTHETIC_HOSTS.server, names: ['www.example.test'] },
    { address: SYNTHETIC_HOSTS.server6, names: ['www.example.test'] },
    { address: serverIp, names: ['corpus-server.test'] },
  ]);
  const last = packets.at(-1) as SyntheticPacket;
  await writer.writeInterfaceStatistics(0, { received: packets.length, dropped: 0, seconds: last.seconds, nanos: 0 });
  await writer.close();
}

async function rewrite(from: string, to: string, options: { littleEndian: boolean }): Promise<void> {
  let linkType = 1;
  const packets: WritePacket[] = [];
  const result = await readCaptureFile(from, (p: RawPacket) => {
    linkType = p.linkType;
    packets.push({
      seconds: p.seconds,
      nanos: p.nanos,
      originalLength: p.originalLength,
      data: Buffer.from(p.data),
    });
  });
  const writer = createPcapWriter(to, {
    linkType,
    littleEndian: options.littleEndian,
    snaplen: result.info.interfaces[0]?.snaplen ?? 262144,
  });
  for (const p of packets) await writer.write(p);
  await writer.close();
}

// ---- the synthetic conversation -------------------------------------------------------------------------------------

export interface SyntheticPacket {
  seconds: number;
  nanos: number;
  /** The IP packet (header included). */
  ip: Buffer;
  v6: boolean;
}

async function writeFrames(
  file: string,
  linkType: number,
  packets: SyntheticPacket[],
  frame: (ip: Buffer, v6: boolean) => Buffer,
  options: { nanosecond?: boolean } = {},
): Promise<void> {
  const writer = createPcapWriter(file, { linkType, nanosecond: options.nanosecond ?? false });
  for (const p of packets) await writer.write({ seconds: p.seconds, nanos: p.nanos, data: frame(p.ip, p.v6) });
  await writer.close();
}

const CLIENT_MAC = Buffer.from('020000000a0a', 'hex');
const SERVER_MAC = Buffer.from('020000001414', 'hex');

/** Ethernet frame of an IP packet from client to server or back (by source address), with VLAN tags outermost first. */
function ethernet(ip: Buffer, v6: boolean, tags: Array<[tpid: number, vid: number]>): Buffer {
  const fromClient = v6
    ? ip.subarray(8, 24).equals(ipv6Bytes(SYNTHETIC_HOSTS.client6))
    : ip.readUInt32BE(12) === ipv4Word(SYNTHETIC_HOSTS.client);
  const header = Buffer.alloc(12 + tags.length * 4 + 2);
  (fromClient ? SERVER_MAC : CLIENT_MAC).copy(header, 0);
  (fromClient ? CLIENT_MAC : SERVER_MAC).copy(header, 6);
  let at = 12;
  for (const [tpid, vid] of tags) {
    header.writeUInt16BE(tpid, at);
    header.writeUInt16BE(vid & 0x0fff, at + 2);
    at += 4;
  }
  header.writeUInt16BE(v6 ? 0x86dd : 0x0800, at);
  return Buffer.concat([header, ip]);
}

function ipv4Word(address: string): number {
  return address.split('.').reduce((n, b) => n * 256 + Number(b), 0);
}

function ipv6Bytes(address: string): Buffer {
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  const out = Buffer.alloc(16);
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  return out;
}

function checksum(...parts: Buffer[]): number {
  let sum = 0;
  for (const part of parts) {
    for (let i = 0; i + 1 < part.length; i += 2) sum += part.readUInt16BE(i);
    if (part.length % 2) sum += (part[part.length - 1] as number) << 8;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

let ipId = 0x1000;

function ipv4Packet(src: string, dst: string, protocol: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(20);
  header[0] = 0x45;
  header.writeUInt16BE(20 + payload.length, 2);
  header.writeUInt16BE(ipId++ & 0xffff, 4);
  header.writeUInt16BE(0x4000, 6);
  header[8] = 64;
  header[9] = protocol;
  header.writeUInt32BE(ipv4Word(src), 12);
  header.writeUInt32BE(ipv4Word(dst), 16);
  header.writeUInt16BE(checksum(header), 10);
  const pseudo = Buffer.alloc(12);
  header.copy(pseudo, 0, 12, 20);
  pseudo[9] = protocol;
  pseudo.writeUInt16BE(payload.length, 10);
  setTransportChecksum(protocol, payload, pseudo);
  return Buffer.concat([header, payload]);
}

function ipv6Packet(src: string, dst: string, next: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(40);
  header.writeUInt32BE(0x60000000, 0);
  header.writeUInt16BE(payload.length, 4);
  header[6] = next;
  header[7] = 64;
  ipv6Bytes(src).copy(header, 8);
  ipv6Bytes(dst).copy(header, 24);
  const pseudo = Buffer.alloc(40);
  header.copy(pseudo, 0, 8, 40);
  pseudo.writeUInt32BE(payload.length, 32);
  pseudo[39] = next;
  setTransportChecksum(next, payload, pseudo);
  return Buffer.concat([header, payload]);
}

function setTransportChecksum(protocol: number, payload: Buffer, pseudo: Buffer): void {
  if (protocol === 6) payload.writeUInt16BE(checksum(pseudo, payload), 16);
  else if (protocol === 17) payload.writeUInt16BE(checksum(pseudo, payload) || 0xffff, 6);
  else if (protocol === 58) payload.writeUInt16BE(checksum(pseudo, payload), 2);
  else if (protocol === 1) payload.writeUInt16BE(checksum(payload), 2);
}

function udpSegment(sport: number, dport: number, data: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt16BE(sport, 0);
  header.writeUInt16BE(dport, 2);
  header.writeUInt16BE(8 + data.length, 4);
  return Buffer.concat([header, data]);
}

const TCP = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10 } as const;

function tcpSegment(
  sport: number,
  dport: number,
  seq: number,
  ack: number,
  flags: number,
  data: Buffer = Buffer.alloc(0),
) {
  const header = Buffer.alloc(20);
  header.writeUInt16BE(sport, 0);
  header.writeUInt16BE(dport, 2);
  header.writeUInt32BE(seq >>> 0, 4);
  header.writeUInt32BE(ack >>> 0, 8);
  header[12] = 0x50;
  header[13] = flags;
  header.writeUInt16BE(64240, 14);
  return Buffer.concat([header, data]);
}

function icmpEcho(type: number, id: number, seq: number): Buffer {
  const msg = Buffer.alloc(8 + 32);
  msg[0] = type;
  msg.writeUInt16BE(id, 4);
  msg.writeUInt16BE(seq, 6);
  for (let i = 0; i < 32; i++) msg[8 + i] = 0x61 + (i % 23);
  return msg;
}

function dnsName(name: string): Buffer {
  return Buffer.concat([
    ...name.split('.').map((label) => Buffer.concat([Uint8Array.of(label.length), Buffer.from(label, 'latin1')])),
    Uint8Array.of(0),
  ]);
}

function dnsMessage(id: number, name: string, type: number, answers: Buffer[] = [], response = false): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  header.writeUInt16BE(response ? 0x8180 : 0x0100, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const question = Buffer.concat([dnsName(name), Buffer.from([0, type, 0, 1])]);
  const records = answers.map((rdata) => {
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0);
    rr.writeUInt16BE(type, 2);
    rr.writeUInt16BE(1, 4);
    rr.writeUInt32BE(300, 6);
    rr.writeUInt16BE(rdata.length, 10);
    return Buffer.concat([rr, rdata]);
  });
  return Buffer.concat([header, question, ...records]);
}

/** A TLS 1.2-record ClientHello offering TLS 1.3, with server_name and ALPN. */
export function tlsClientHello(serverName: string): Buffer {
  const ext = (type: number, body: Buffer) => {
    const head = Buffer.alloc(4);
    head.writeUInt16BE(type, 0);
    head.writeUInt16BE(body.length, 2);
    return Buffer.concat([head, body]);
  };
  const u16 = (v: number) => Buffer.from([v >> 8, v & 0xff]);
  const name = Buffer.from(serverName, 'ascii');
  const sni = ext(0, Buffer.concat([u16(name.length + 3), Uint8Array.of(0), u16(name.length), name]));
  const alpnName = Buffer.from('http/1.1');
  const alpn = ext(16, Buffer.concat([u16(alpnName.length + 1), Uint8Array.of(alpnName.length), alpnName]));
  const versions = ext(43, Buffer.from([4, 0x03, 0x04, 0x03, 0x03]));
  const extensions = Buffer.concat([sni, versions, alpn]);
  const suites = [0x1301, 0x1302, 0xc02b, 0xc02f];
  const body = Buffer.concat([
    Buffer.from([0x03, 0x03]),
    Buffer.alloc(32, 0x5a), // random
    Uint8Array.of(32),
    Buffer.alloc(32, 0xa5), // session id
    u16(suites.length * 2),
    ...suites.map(u16),
    Buffer.from([1, 0]), // compression: null
    u16(extensions.length),
    extensions,
  ]);
  const handshake = Buffer.concat([
    Uint8Array.of(1, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff),
    body,
  ]);
  return Buffer.concat([Buffer.from([0x16, 0x03, 0x01]), u16(handshake.length), handshake]);
}

/**
 * ICMP echo, a DNS query and answer, a TCP connection with an HTTP request and response, a TLS ClientHello with SNI
 * (then a reset), and an IPv6 UDP exchange — between SYNTHETIC_HOSTS, 1 ms apart from `startSeconds` + 123457 ns
 * (default 2026-01-01T00:00:00Z).
 */
export function syntheticConversation(startSeconds = 1_767_225_600): SyntheticPacket[] {
  ipId = 0x1000;
  const { client, server, client6, server6 } = SYNTHETIC_HOSTS;
  const out: SyntheticPacket[] = [];
  let t = 0;
  const add = (ip: Buffer, v6 = false) => {
    out.push({ seconds: startSeconds + Math.floor(t / 1000), nanos: (t % 1000) * 1_000_000 + 123_457, ip, v6 });
    t += 1;
  };
  const c2s = (protocol: number, payload: Buffer) => add(ipv4Packet(client, server, protocol, payload));
  const s2c = (protocol: number, payload: Buffer) => add(ipv4Packet(server, client, protocol, payload));

  c2s(1, icmpEcho(8, 0x77, 1));
  s2c(1, icmpEcho(0, 0x77, 1));
  c2s(17, udpSegment(53000, 53, dnsMessage(0x1234, 'www.example.test', 1)));
  s2c(17, udpSegment(53, 53000, dnsMessage(0x1234, 'www.example.test', 1, [Buffer.from([198, 51, 100, 20])], true)));

  const http = (sport: number, dport: number, request: Buffer, response: Buffer) => {
    let cs = 1000;
    let ss = 5000;
    c2s(6, tcpSegment(sport, dport, cs, 0, TCP.SYN));
    s2c(6, tcpSegment(dport, sport, ss, cs + 1, TCP.SYN | TCP.ACK));
    cs++;
    ss++;
    c2s(6, tcpSegment(sport, dport, cs, ss, TCP.ACK));
    c2s(6, tcpSegment(sport, dport, cs, ss, TCP.PSH | TCP.ACK, request));
    cs += request.length;
    if (response.length === 0) {
      s2c(6, tcpSegment(dport, sport, ss, cs, TCP.RST | TCP.ACK));
      return;
    }
    s2c(6, tcpSegment(dport, sport, ss, cs, TCP.PSH | TCP.ACK, response));
    ss += response.length;
    c2s(6, tcpSegment(sport, dport, cs, ss, TCP.FIN | TCP.ACK));
    cs++;
    s2c(6, tcpSegment(dport, sport, ss, cs, TCP.FIN | TCP.ACK));
    ss++;
    c2s(6, tcpSegment(sport, dport, cs, ss, TCP.ACK));
  };
  http(
    40001,
    80,
    Buffer.from('GET /index.html HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: tripcap-corpus/1\r\n\r\n'),
    Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nhello\n'),
  );
  http(40002, 443, tlsClientHello('secure.example.test'), Buffer.alloc(0));
  add(ipv6Packet(client6, server6, 17, udpSegment(40003, 9996, Buffer.from('hello over IPv6'))), true);
  add(ipv6Packet(server6, client6, 17, udpSegment(9996, 40003, Buffer.from('hello back'))), true);
  return out;
}

// ---- processes ----------------------------------------------------------------------------------------------------

const execFileAsync = promisify(execFile);

async function run(cmd: string, args: string[]): Promise<void> {
  try {
    await execFileAsync(cmd, args, { timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function waitForOutput(child: ChildProcess, pattern: RegExp, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(
      () => done(new Error(`${what}: no ${pattern} within ${timeoutMs} ms: ${text}`)),
      timeoutMs,
    );
    const onData = (chunk: Buffer) => {
      text += chunk.toString();
      if (pattern.test(text)) done();
    };
    const onExit = () => done(new Error(`${what} exited before ${pattern}: ${text}`));
    const done = (err?: Error) => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stderr?.off('data', onData);
      child.off('exit', onExit);
      if (err) reject(err);
      else resolve();
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', onData);
    child.once('exit', onExit);
  });
}

function exited(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
    }, timeoutMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

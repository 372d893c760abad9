import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPacketPathModule, PACKET_PATH_MODULE } from '../../scripts/build-wasm.js';
import { makeSyntheticCorpus } from '../../test/pcap-corpus.js';
import { wiresharkSkipReason } from '../../test/wireshark.js';
import { readCaptureFile } from '../pcap/reader.js';
import { LinkType } from '../pcap/types.js';
import { type CaptureWriter, createPcapngWriter, createPcapWriter, type WritePacket } from '../pcap/writer.js';
import { writeEdgeCaptures } from './edge-captures.test-helper.js';
import {
  clientHello,
  dnsMessage,
  ethernet,
  icmpEcho,
  ipv4,
  ipv6,
  type PacketSpec,
  sll2,
  tcp,
  udp,
  writePcap,
} from './frames.test-helper.js';
import { type AnalyzeOptions, Analyzer, analyzeCapture } from './index.js';

/**
 * The analyzer's WebAssembly packet path (src/analysis/wasm/packet-path.ts) against its TypeScript path, the
 * reference: whole reports must be the same, on traffic that goes through every branch of the WebAssembly path (and
 * through the places where it hands packets back).
 */

// Wireshark's editcap and mergecap make some of the pcapng files
const wiresharkMissing = wiresharkSkipReason();

const HOST4 = '10.0.0.5';
const HOST6 = '2001:db8::5';
const T0 = 1_790_000_000;

function random(seed: number): (n: number) => number {
  let s = seed;
  return (n) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
}

interface Frame {
  t: number;
  ip: Uint8Array;
  v6: boolean;
  vlan: boolean;
  cut: boolean;
}

/**
 * Mixed traffic of many flows, interleaved: TCP sessions (handshake, data both ways, retransmissions, keep-alives,
 * zero windows, FIN or RST; payloads of TLS ClientHellos, some split over two segments, HTTP, other bytes), DNS
 * and other UDP, ICMP, IPv4 fragments, IPv6, VLAN tags, frames cut by the snaplen, times a little out of order.
 */
function mixedTraffic(seed: number, flows: number): Frame[] {
  const rand = random(seed);
  const frames: Frame[] = [];
  for (let i = 0; i < flows; i++) {
    const v6 = rand(6) === 0;
    const vlan = rand(8) === 0;
    const remote = v6 ? `2001:db8:1::${(i % 4000) + 1}` : `198.51.${100 + (i % 50)}.${1 + (i % 250)}`;
    const host = v6 ? HOST6 : HOST4;
    const ip = (out: boolean, protocol: number, payload: Uint8Array) =>
      v6
        ? ipv6({ src: out ? host : remote, dst: out ? remote : host, next: protocol }, payload)
        : ipv4({ src: out ? host : remote, dst: out ? remote : host, protocol, id: i & 0xffff }, payload);
    let t = T0 + rand(20_000) / 1000;
    const push = (data: Uint8Array) => {
      t += rand(50) / 1000;
      frames.push({ t: t - (rand(20) === 0 ? 0.2 : 0), ip: data, v6, vlan, cut: rand(40) === 0 });
    };
    const kind = rand(10);
    if (kind < 6) {
      const sport = 30_000 + (i % 30_000);
      const dport = [443, 80, 8443, 22][rand(4)] as number;
      let mySeq = rand(0xffffffff) >>> 0;
      let theirSeq = rand(0xffffffff) >>> 0;
      const out = (flags: number, payload: Uint8Array | string = '', window = 64240) => {
        const len = typeof payload === 'string' ? payload.length : payload.length;
        push(ip(true, 6, tcp({ sport, dport, seq: mySeq, ack: theirSeq, flags, window }, payload)));
        mySeq = (mySeq + len + (flags & 3 ? 1 : 0)) >>> 0;
      };
      const back = (flags: number, payload: Uint8Array | string = '', window = 64240) => {
        const len = typeof payload === 'string' ? payload.length : payload.length;
        push(ip(false, 6, tcp({ sport: dport, dport: sport, seq: theirSeq, ack: mySeq, flags, window }, payload)));
        theirSeq = (theirSeq + len + (flags & 3 ? 1 : 0)) >>> 0;
      };
      if (rand(5) > 0) {
        out(0x02);
        back(rand(6) === 0 ? 0x14 : 0x12); // sometimes refused
        out(0x10);
      }
      const hello = clientHello(`s${i % 300}.example.test`, rand(3) === 0 ? 600 : 0);
      // a flow is labelled by its first payloads: after 4 unknown ones it is not looked at again
      for (let k = rand(3) === 0 ? 3 + rand(3) : 0; k > 0; k--) out(0x18, 'ssh-ish');
      const first = rand(4);
      if (first === 0) out(0x18, hello);
      else if (first === 1) {
        out(0x18, hello.subarray(0, 40));
        out(0x18, hello.subarray(40));
      } else if (first === 2) {
        out(0x18, `GET /item/${i} HTTP/1.1\r\nHost: h${i % 40}.example.test\r\n\r\n`);
        back(0x18, 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello');
      }
      const segments = 2 + rand(20);
      for (let k = 0; k < segments; k++) {
        const size = [0, 1, 100, 536, 1400][rand(5)] as number;
        const data = new Uint8Array(size).fill(rand(256));
        const r = rand(30);
        if (r === 0 && k > 0) {
          const seq = mySeq;
          mySeq = (mySeq - 100) >>> 0; // a retransmission of bytes sent
          out(0x18, new Uint8Array(100));
          mySeq = seq;
        } else if (r === 1) {
          mySeq = (mySeq - 1) >>> 0; // a keep-alive
          out(0x10, new Uint8Array(1));
        } else if (r === 2) {
          back(0x10, '', 0); // a zero window
        } else if (r === 3) {
          mySeq = (mySeq - 1) >>> 0; // one byte again and one new: a retransmission, not a keep-alive
          out(0x18, new Uint8Array(2));
        } else if (rand(2) === 0) {
          out(0x18, data);
        } else {
          back(0x18, data);
        }
      }
      if (rand(4) === 0) out(0x04);
      else {
        out(0x11);
        back(0x11);
      }
    } else if (kind < 8) {
      const name = `n${i % 500}.example.test`;
      const port = 40_000 + (i % 20_000);
      push(ip(true, 17, udp(port, 53, dnsMessage(i & 0xffff, name, 1))));
      push(ip(false, 17, udp(53, port, dnsMessage(i & 0xffff, name, 1, [{ type: 1, data: '203.0.113.9' }]))));
      if (rand(4) === 0) push(ip(true, 17, udp(port, 53, dnsMessage(i & 0xffff, name, 1).subarray(0, 12 + rand(2)))));
      if (rand(4) === 0) {
        // what parseDns() takes and declines at its limits: 4 questions, opcode 5 (UPDATE); 5 questions, opcode 6
        const edge = dnsMessage(i & 0xffff, `edge${i % 3}.example.test`, 1);
        const [questions, opcode] = rand(2) === 0 ? [4, 5] : [5, 6];
        edge[5] = questions;
        edge[2] = opcode << 3;
        push(ip(true, 17, udp(port, 53, edge)));
        push(ip(true, 17, udp(port, 53, new Uint8Array(12 + rand(40))))); // no question: not DNS
      }
      // DNS over TCP too: the same address and port as a TCP and as a UDP endpoint
      if (rand(3) === 0) push(ip(true, 6, tcp({ sport: port, dport: 53, flags: 0x02 })));
      for (let k = rand(5); k > 0; k--) push(ip(rand(2) === 0, 17, udp(port, 5000, new Uint8Array(rand(1200)))));
    } else if (kind === 8) {
      push(ip(true, v6 ? 58 : 1, icmpEcho(v6 ? 128 : 8)));
      push(ip(false, v6 ? 58 : 1, icmpEcho(v6 ? 129 : 0)));
    } else if (!v6) {
      const payload = udp(6000, 7000, new Uint8Array(1600));
      const a = payload.subarray(0, 1480);
      const b = payload.subarray(1480);
      push(ipv4({ src: host, dst: remote, protocol: 17, id: 9000 + i, moreFragments: true }, a));
      push(ipv4({ src: host, dst: remote, protocol: 17, id: 9000 + i, fragmentOffset: 1480 }, b));
      push(ip(true, 17, udp(6000, 7000, 'after the fragments')));
    }
  }
  return frames.sort((x, y) => x.t - y.t);
}

/** The traffic as Ethernet frames, some cut by a 60-byte snaplen. */
function ethernetPackets(frames: Frame[]): WritePacket[] {
  return frames.map((f) => {
    const data = ethernet(f.v6 ? 0x86dd : 0x0800, f.ip, f.vlan ? [{ id: 7 }] : []);
    const seconds = Math.floor(f.t);
    const nanos = Math.round((f.t - seconds) * 1e9);
    return f.cut && data.length > 60
      ? { seconds, nanos, data: data.subarray(0, 60), originalLength: data.length }
      : { seconds, nanos, data };
  });
}

async function writeAll(writer: CaptureWriter, packets: WritePacket[]): Promise<void> {
  for (const packet of packets) await writer.write(packet);
  await writer.close();
}

/** A capture of `n` flows of one UDP datagram each. */
function manyFlows(path: string, n: number): void {
  const packets: PacketSpec[] = [];
  for (let i = 0; i < n; i++) {
    const src = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    const data = ethernet(0x0800, ipv4({ src, dst: HOST4, protocol: 17 }, udp(1000, 53 + (i % 7))));
    packets.push({ t: T0 + i / 1e5, data });
  }
  writePcap(path, LinkType.ETHERNET, packets);
}

/** Analyzes `file` with each path; returns the two reports (or the two error messages). */
async function bothPaths(file: string, options: AnalyzeOptions = {}): Promise<[string, string]> {
  const run = (fastPath: boolean) =>
    analyzeCapture(file, { ...options, fastPath }).then(
      (r) => JSON.stringify(r),
      (err: Error) => `error: ${err.message}`,
    );
  return [await run(true), await run(false)];
}

/** The first place where two JSON values differ: "path: a vs b". */
function firstDifference(a: unknown, b: unknown, path = 'report'): string | undefined {
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const found = firstDifference(
        (a as Record<string, unknown>)[key],
        (b as Record<string, unknown>)[key],
        `${path}.${key}`,
      );
      if (found) return found;
    }
    return undefined;
  }
  return a === b ? undefined : `${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
}

async function expectSameReports(file: string, options: AnalyzeOptions = {}): Promise<void> {
  const [fast, reference] = await bothPaths(file, options);
  expect(fast.length).toBeGreaterThan(100);
  if (fast !== reference) expect(firstDifference(JSON.parse(fast), JSON.parse(reference))).toBeUndefined();
}

describe('the WebAssembly packet path', () => {
  let dir: string;
  const files: Record<string, string> = {};
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tripcap-packet-path-'));
    const ETHERNET = LinkType.ETHERNET;
    files['mixed-ethernet'] = join(dir, 'mixed-ethernet.pcap');
    await writeAll(
      createPcapWriter(files['mixed-ethernet'], { linkType: ETHERNET }),
      ethernetPackets(mixedTraffic(1, 3000)),
    );
    // the same traffic in nanoseconds, little- and big-endian (as a capture written on a big-endian machine)
    const nanosecondPackets = ethernetPackets(mixedTraffic(2, 2000));
    files['mixed-nanosecond'] = join(dir, 'mixed-nanosecond.pcap');
    await writeAll(
      createPcapWriter(files['mixed-nanosecond'], { linkType: ETHERNET, nanosecond: true }),
      nanosecondPackets,
    );
    files['mixed-bigEndian'] = join(dir, 'mixed-big-endian.pcap');
    const bigEndian = { linkType: ETHERNET, nanosecond: true, littleEndian: false };
    await writeAll(createPcapWriter(files['mixed-bigEndian'], bigEndian), nanosecondPackets);
    files['mixed-sll2'] = join(dir, 'mixed-sll2.pcap');
    writePcap(
      files['mixed-sll2'],
      LinkType.LINUX_SLL2,
      mixedTraffic(3, 1500).map((f) => ({ t: f.t, data: sll2(f.v6 ? 0x86dd : 0x0800, f.ip) })),
    );
    files['mixed-raw'] = join(dir, 'mixed-raw.pcap');
    writePcap(
      files['mixed-raw'],
      LinkType.RAW,
      mixedTraffic(4, 1500).map((f) => ({ t: f.t, data: f.ip })),
    );
    if (!wiresharkMissing) {
      // pcapng from Wireshark's tools: µs and ns, two interfaces of different link types, packets with comments
      const editcap = (args: string[]) => execFileSync('editcap', args, { stdio: 'ignore' });
      files['mixed-pcapng'] = join(dir, 'mixed.pcapng');
      editcap(['-F', 'pcapng', files['mixed-ethernet'], files['mixed-pcapng']]);
      files['mixed-pcapng-ns'] = join(dir, 'mixed-ns.pcapng');
      editcap(['-F', 'pcapng', files['mixed-nanosecond'], files['mixed-pcapng-ns']]);
      // interface 0 µs SLL2, interface 1 ns Ethernet 5 s later: the first packet is interface 0's, the last 1's
      const later = join(dir, 'mixed-later.pcap');
      editcap(['-t', '5', files['mixed-nanosecond'], later]);
      files['mixed-pcapng-two'] = join(dir, 'mixed-two.pcapng');
      const two = files['mixed-pcapng-two'];
      execFileSync('mergecap', ['-F', 'pcapng', '-w', two, files['mixed-sll2'], later], { stdio: 'ignore' });
      files['mixed-pcapng-comments'] = join(dir, 'mixed-comments.pcapng');
      editcap(['-a', '5:a comment', '-a', '1000:another', files['mixed-pcapng'], files['mixed-pcapng-comments']]);
    }
    // big-endian pcapng with nanoseconds and an if_tsoffset, from tripcap's writer
    files['mixed-pcapng-be'] = join(dir, 'mixed-be.pcapng');
    const writer = createPcapngWriter(files['mixed-pcapng-be'], {
      littleEndian: false,
      interfaces: [{ linkType: ETHERNET, snaplen: 262_144, tsresol: 9, tsoffset: 1000 }],
    });
    await writeAll(writer, ethernetPackets(mixedTraffic(5, 1500)));
    Object.assign(files, writeEdgeCaptures(dir));
    Object.assign(files, await makeSyntheticCorpus(join(dir, 'synthetic')));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is what scripts/build-wasm.ts builds from its source (run npm run build:wasm after changing it)', async () => {
    expect(await buildPacketPathModule()).toBe(readFileSync(PACKET_PATH_MODULE, 'utf8'));
  }, 60_000);

  it('counts nearly every packet of mixed traffic, so that the comparisons below compare it', async () => {
    for (const name of ['mixed-ethernet', 'mixed-bigEndian', 'mixed-sll2', 'mixed-raw']) {
      const a = new Analyzer({ hostIps: [HOST4, HOST6] });
      await readCaptureFile(files[name] as string, a.onPacket, {
        allocateBuffer: a.allocateBuffer,
        recordRuns: a.recordRuns,
      });
      expect(a.packets).toBeGreaterThan(10_000);
      expect(a.fastPackets / a.packets).toBeGreaterThan(0.8);
    }
  });

  it.skipIf(wiresharkMissing)('counts pcapng files too, with the same reports', async () => {
    for (const name of [
      'mixed-pcapng',
      'mixed-pcapng-ns',
      'mixed-pcapng-two',
      'mixed-pcapng-comments',
      'mixed-pcapng-be',
    ]) {
      const file = files[name] as string;
      const a = new Analyzer({ hostIps: [HOST4, HOST6] });
      await readCaptureFile(file, a.onPacket, { allocateBuffer: a.allocateBuffer, recordRuns: a.recordRuns });
      expect(a.fastPackets / a.packets).toBeGreaterThan(0.7);
      await expectSameReports(file, { hostIps: [HOST4, HOST6] });
      await expectSameReports(file);
    }
    const comments = await analyzeCapture(files['mixed-pcapng-comments'] as string);
    expect(comments.summary.comments).toEqual(['a comment', 'another']);
    const two = await analyzeCapture(files['mixed-pcapng-two'] as string);
    expect(two.summary.linkTypes).toEqual(['LINUX_SLL2', 'ETHERNET']);
    // each time with the precision of its packet's interface
    expect([two.summary.firstTime?.length, two.summary.lastTime?.length]).toEqual([27, 30]);
  });

  it.each(['mixed-ethernet', 'mixed-nanosecond', 'mixed-bigEndian', 'mixed-sll2', 'mixed-raw'])(
    'gives the report of the TypeScript path: %s, host given or inferred',
    async (name) => {
      const file = files[name] as string;
      await expectSameReports(file, { hostIps: [HOST4, HOST6] });
      await expectSameReports(file);
    },
  );

  it('gives the same report when the flow table grows, fills, and the timeline widens', async () => {
    const file = files['mixed-ethernet'] as string;
    await expectSameReports(file, { hostIps: [HOST4], expectedFlows: 1 });
    await expectSameReports(file, { hostIps: [HOST4], maxFlows: 700 });
    await expectSameReports(file, { binSeconds: 0.0001, maxRows: 20 });
    await expectSameReports(file, { binSeconds: 1e-9 });
  });

  it('hands over to the TypeScript path when the flow table outgrows its memory, with the same report', async () => {
    // 300,000 flows of one packet each: the table grows past what the memory was reserved for (4 × 4096 flows)
    const path = join(dir, 'many-flows.pcap');
    manyFlows(path, 300_000);
    const a = new Analyzer({ hostIps: [HOST4] });
    await readCaptureFile(path, a.onPacket, { allocateBuffer: a.allocateBuffer, recordRuns: a.recordRuns });
    expect(a.table.size).toBe(300_000);
    expect(a.fastPackets).toBeGreaterThan(10_000);
    expect(a.fastPackets).toBeLessThan(100_000);
    await expectSameReports(path, { hostIps: [HOST4], maxRows: 50 });
  }, 60_000);

  it('infers the host as the TypeScript path does: not a multicast, link-local, loopback or unspecified address', async () => {
    // [case, its flows (source, destination, packets), the host inferred]
    const many = (n: number, flow: (i: number) => [string, string, number]) =>
      Array.from({ length: n }, (_, i) => flow(i));
    const cases: Array<[string, Array<[string, string, number]>, string[]]> = [
      ['a host', many(10, (i) => ['10.0.0.5', `192.0.2.${i + 1}`, 10]), ['10.0.0.5']],
      ['IPv4 multicast', many(10, (i) => [`10.0.0.${i + 1}`, '224.0.0.251', 10]), []],
      ['IPv6 multicast', many(10, (i) => [`2001:db8::${i + 1}`, 'ff02::fb', 10]), []],
      ['IPv6 link-local', many(10, (i) => ['fe80::1', `2001:db8::${i + 1}`, 10]), []],
      ['IPv6 loopback', many(10, (i) => ['::1', `2001:db8::${i + 1}`, 10]), []],
      ['IPv6 unspecified', many(10, (i) => ['::', `2001:db8::${i + 1}`, 10]), []],
      // 40 of 100 packets from 10.0.0.9 to itself: the address is in 40%, not in 80%
      ['a flow to itself', [['10.0.0.9', '10.0.0.9', 40], ...many(6, (i) => [`10.0.1.${i}`, `10.0.2.${i}`, 10])], []],
    ];
    for (const [name, flows, hosts] of cases) {
      const packets: PacketSpec[] = [];
      flows.forEach(([src, dst, count], i) => {
        const v6 = src.includes(':');
        for (let k = 0; k < count; k++) {
          const datagram = udp(1000 + i, 2000 + i, 'hello');
          const ip = v6 ? ipv6({ src, dst, next: 17 }, datagram) : ipv4({ src, dst, protocol: 17 }, datagram);
          packets.push({ t: T0 + packets.length / 1000, data: ethernet(v6 ? 0x86dd : 0x0800, ip) });
        }
      });
      const file = join(dir, `infer-${name.replaceAll(' ', '-')}.pcap`);
      writePcap(file, LinkType.ETHERNET, packets);
      const [fast, reference] = await bothPaths(file);
      expect(firstDifference(JSON.parse(fast), JSON.parse(reference)), name).toBeUndefined();
      expect(JSON.parse(fast).hosts.addresses, name).toEqual(hosts);
    }
  });

  it('stops at maxPackets and reports progress while it counts', async () => {
    const path = join(dir, 'progress.pcap');
    manyFlows(path, 200_000);
    const a = new Analyzer({ hostIps: [HOST4], expectedFlows: 65_536 });
    const read = await readCaptureFile(path, a.onPacket, {
      allocateBuffer: a.allocateBuffer,
      recordRuns: a.recordRuns,
      maxPackets: 123_457,
    });
    expect([read.packets, a.packets, a.finish(read).summary.packets]).toEqual([123_457, 123_457, 123_457]);
    expect(a.fastPackets).toBeGreaterThan(100_000);
    const progress: number[] = [];
    const report = await analyzeCapture(path, { onProgress: (bytes) => progress.push(bytes) });
    expect(report.summary.packets).toBe(200_000);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress.every((b, i) => b > (progress[i - 1] ?? 0) && b <= statSync(path).size)).toBe(true);
  }, 60_000);

  it('gives the same report on the hand-made edge cases and the synthetic corpus', async () => {
    const names = Object.keys(files).filter((n) => !n.startsWith('mixed-'));
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) {
      await expectSameReports(files[name] as string, { hostIps: ['192.0.2.10'] });
    }
  });

  it('gives the same report or the same error on mutated and cut files', async () => {
    const rand = random(11);
    const source = readFileSync(files['mixed-ethernet'] as string);
    const path = join(dir, 'mutant.pcap');
    for (let i = 0; i < 300; i++) {
      const data = Buffer.from(source.subarray(0, 24 + rand(source.length - 24)));
      for (let k = 1 + rand(12); k > 0; k--) data[24 + rand(data.length - 24)] = rand(256);
      writeFileSync(path, data);
      const [fast, reference] = await bothPaths(path, { hostIps: [HOST4] });
      if (fast !== reference) expect({ mutant: i, report: fast }).toEqual({ mutant: i, report: reference });
    }
  }, 120_000);
});

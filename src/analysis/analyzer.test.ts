import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBinSeconds } from '../cli/analyze.js';
import { CaptureFormatError, LinkType } from '../pcap/types.js';
import { parseDns } from './app.js';
import { writeEdgeCaptures } from './edge-captures.test-helper.js';
import { formatBytes, formatCount, formatRate } from './explain.js';
import { FlowTable } from './flow-table.js';
import {
  bytes,
  clientHello,
  dnsMessage,
  ethernet,
  ipv4,
  type PacketSpec,
  raw,
  tcp,
  udp,
  writePcap,
} from './frames.test-helper.js';
import { Analyzer, analyzeCapture, renderReportText } from './index.js';

const HOST = '10.0.0.5';
const T0 = 1_790_000_000;

function feed(analyzer: Analyzer, packets: Array<{ t: number; data: Uint8Array }>) {
  for (const p of packets) analyzer.onPacket(raw(p.data, LinkType.ETHERNET, p.t));
  return analyzer.finish();
}

const out = (dst: string, dport: number, size: number, t: number, sport = 40000) => ({
  t,
  data: ethernet(0x0800, ipv4({ src: HOST, dst, protocol: 17 }, udp(sport, dport, new Uint8Array(size)))),
});
const inb = (src: string, sport: number, size: number, t: number, dport = 40000) => ({
  t,
  data: ethernet(0x0800, ipv4({ src, dst: HOST, protocol: 17 }, udp(sport, dport, new Uint8Array(size)))),
});

describe('FlowTable', () => {
  it('finds what it inserted across growth, with records beside the keys', () => {
    const t = new FlowTable(3, 4, 6);
    for (let i = 0; i < 5000; i++) {
      t.key.set([i, i * 7, 0xffffffff - i]);
      expect(t.findOrInsert()).toBe(i);
      expect(t.inserted).toBe(true);
      t.f64[i * 3 + 2] = i * 0.5;
    }
    for (let i = 4999; i >= 0; i--) {
      t.key.set([i, i * 7, 0xffffffff - i]);
      expect(t.find()).toBe(i);
      expect(t.f64[i * 3 + 2]).toBe(i * 0.5);
    }
    t.key.set([1, 2, 3]);
    expect(t.find()).toBe(-1);
  });
});

describe('Analyzer', () => {
  it('splits traffic by direction relative to the given host, and ranks destinations', () => {
    const packets = [];
    for (let i = 0; i < 40; i++) packets.push(out('203.0.113.7', 443, 1000, T0 + i * 0.25));
    for (let i = 0; i < 10; i++) packets.push(out('198.51.100.1', 53, 100, T0 + i));
    for (let i = 0; i < 10; i++) packets.push(inb('203.0.113.7', 443, 50, T0 + i));
    const r = feed(new Analyzer({ hostIps: [HOST] }), packets);
    expect(r.hosts).toEqual({ addresses: [HOST], source: 'given' });
    expect(r.traffic.outbound.packets).toBe(50);
    expect(r.traffic.inbound.packets).toBe(10);
    const top = r.traffic.topDestinationServices[0];
    expect([top?.address, top?.port, top?.protocol, top?.flows]).toEqual(['203.0.113.7', 443, 'udp', 1]);
    expect(top?.share).toBeCloseTo((40 * 1042) / (40 * 1042 + 10 * 142), 6);
    expect(r.explanation.sentences[0]).toMatch(
      /^97% of outbound bytes \(41\.7 kB of 43\.1 kB\) went to 203\.0\.113\.7:443/,
    );
  });

  it('infers the host as the address in at least half of the packets, never a broadcast or multicast one', () => {
    const packets = [];
    for (let i = 0; i < 30; i++) packets.push(out(`192.0.2.${i + 1}`, 80, 10, T0 + i));
    for (let i = 0; i < 40; i++) {
      const dst = i % 2 === 0 ? '255.255.255.255' : '224.0.0.251';
      packets.push({
        t: T0 + i,
        data: ethernet(0x0800, ipv4({ src: `198.51.100.${i + 1}`, dst, protocol: 17 }, udp(68, 67))),
      });
    }
    const r = feed(new Analyzer(), packets);
    expect(r.hosts.source).toBe('none'); // 10.0.0.5 is in 30 of 70 packets: not half
    expect(r.hosts.addresses).toEqual([]);
    expect(r.hosts.note).toMatch(/none could be inferred/);
    const r2 = feed(new Analyzer(), packets.slice(0, 50));
    expect(r2.hosts).toMatchObject({ addresses: [HOST], source: 'inferred' });
    expect(r2.traffic.outbound.packets).toBe(30);
    expect(r2.traffic.other.packets).toBe(20);
    expect(r2.timeline.outPackets.reduce((s, v) => s + v, 0)).toBe(30);
  });

  it('infers the host after 10,000 packets and still counts the first ones by direction', () => {
    const a = new Analyzer();
    for (let i = 0; i < 12_000; i++)
      a.onPacket(raw(out('203.0.113.9', 443, 10, T0 + i / 1000).data, LinkType.ETHERNET, T0 + i / 1000));
    const r = a.finish();
    expect(r.hosts.addresses).toEqual([HOST]);
    expect(r.traffic.outbound.packets).toBe(12_000);
    expect(r.traffic.other.packets).toBe(0);
    expect(r.timeline.outPackets.reduce((s, v) => s + v, 0)).toBe(12_000);
  });

  it('chooses 60–300 timeline bins of a round width, or the width asked for', () => {
    for (const seconds of [0.5, 7, 61, 3600, 86_400 * 3]) {
      const r = feed(new Analyzer({ hostIps: [HOST] }), [
        out('192.0.2.1', 1, 1, T0),
        out('192.0.2.1', 1, 1, T0 + seconds),
      ]);
      expect(r.timeline.packets.length, `${seconds} s`).toBeGreaterThanOrEqual(60);
      expect(r.timeline.packets.length, `${seconds} s`).toBeLessThanOrEqual(300);
      expect(r.timeline.packets.reduce((s, v) => s + v, 0)).toBe(2);
    }
    const r = feed(new Analyzer({ hostIps: [HOST], binSeconds: 1 }), [
      out('192.0.2.1', 1, 1, T0),
      out('192.0.2.1', 1, 1, T0 + 9.5),
    ]);
    expect(r.timeline.binSeconds).toBe(1);
    expect(r.timeline.packets).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  });

  it('explains a rate change and a destination that appeared late', () => {
    const packets = [];
    for (let s = 0; s < 100; s++) packets.push(out('192.0.2.10', 443, 100, T0 + s));
    for (let s = 75; s < 100; s++)
      for (let k = 0; k < 20; k++) packets.push(out('203.0.113.66', 9000, 1400, T0 + s + k / 20));
    const r = feed(new Analyzer({ hostIps: [HOST] }), packets);
    const text = r.explanation.sentences.join('\n');
    expect(text).toMatch(/went to 203\.0\.113\.66:9000 \(UDP\) over 1 flow/);
    expect(text).toMatch(
      /Outbound rate rose from [\d.]+ kbit\/s in the first quarter to [\d.]+ kbit\/s in the last \(×\d+\)/,
    );
    expect(text).toMatch(/1 destination first contacted after the first quarter .* received 9\d% of outbound bytes/);
    expect(r.explanation.outbound.newDestinations[0]?.address).toBe('203.0.113.66');
    expect(r.explanation.outbound.lastQuarterBitsPerSecond).toBeGreaterThan(
      10 * (r.explanation.outbound.firstQuarterBitsPerSecond ?? 0),
    );
  });

  it('compares with a baseline report', () => {
    const base = feed(new Analyzer({ hostIps: [HOST] }), [
      out('192.0.2.10', 443, 100, T0),
      out('192.0.2.10', 443, 100, T0 + 10),
    ]);
    const a = new Analyzer({ hostIps: [HOST] });
    for (const p of [
      out('192.0.2.10', 443, 100, T0),
      out('198.51.100.77', 22, 5000, T0 + 5),
      out('192.0.2.10', 443, 100, T0 + 10),
    ]) {
      a.onPacket(raw(p.data, LinkType.ETHERNET, p.t));
    }
    const r = a.finish(undefined, { baseline: base, baselineFile: 'base.json' });
    expect(r.explanation.baseline?.newDestinations.map((d) => d.address)).toEqual(['198.51.100.77']);
    expect(r.explanation.sentences.join(' ')).toMatch(
      /1 destination not seen in the baseline \(base\.json\) received 95% of outbound bytes \(5\.0 kB\): 198\.51\.100\.77/,
    );
  });

  it('reads names: DNS answers label destinations, TLS SNI, HTTP method/host/path/status', () => {
    const s = '203.0.113.7';
    const seg = (
      from: string,
      to: string,
      sport: number,
      dport: number,
      flags: number,
      payload: Uint8Array | string = '',
    ) => ethernet(0x0800, ipv4({ src: from, dst: to, protocol: 6 }, tcp({ sport, dport, flags }, payload)));
    const packets = [
      {
        t: T0,
        data: ethernet(
          0x0800,
          ipv4({ src: HOST, dst: '9.9.9.9', protocol: 17 }, udp(5000, 53, dnsMessage(1, 'Backup.Example.com', 1))),
        ),
      },
      {
        t: T0 + 0.01,
        data: ethernet(
          0x0800,
          ipv4(
            { src: '9.9.9.9', dst: HOST, protocol: 17 },
            udp(
              53,
              5000,
              dnsMessage(1, 'backup.example.com', 1, [
                { type: 5, data: 'b.cdn.example' },
                { type: 1, data: s },
              ]),
            ),
          ),
        ),
      },
      { t: T0 + 0.02, data: seg(HOST, s, 41000, 443, 2) },
      { t: T0 + 0.03, data: seg(s, HOST, 443, 41000, 18) },
      { t: T0 + 0.04, data: seg(HOST, s, 41000, 443, 24, clientHello('backup.example.com')) },
      { t: T0 + 0.05, data: seg(HOST, s, 41001, 80, 24, 'POST /upload HTTP/1.1\r\nhost: Files.Example.com\r\n\r\n') },
      { t: T0 + 0.06, data: seg(s, HOST, 80, 41001, 24, 'HTTP/1.1 100 Continue\r\n\r\n') },
      { t: T0 + 0.07, data: seg(s, HOST, 80, 41001, 24, 'HTTP/1.1 503 Service Unavailable\r\n\r\n') },
    ];
    const r = feed(new Analyzer({ hostIps: [HOST] }), packets);
    expect(r.names.dns).toEqual([
      {
        name: 'backup.example.com',
        type: 'A',
        queries: 1,
        responses: 1,
        rcodes: { NOERROR: 1 },
        answers: ['b.cdn.example', s],
      },
    ]);
    expect(r.names.tls).toEqual([{ sni: 'backup.example.com', flows: 1, servers: [s] }]);
    expect(r.names.http).toEqual([
      { method: 'POST', host: 'files.example.com', path: '/upload', requests: 1, statuses: { 503: 1 } },
    ]);
    expect(r.traffic.topDestinations[0]?.names).toEqual(
      expect.arrayContaining(['backup.example.com', 'files.example.com']),
    );
    expect(r.tcp.connections).toEqual({ attempted: 1, established: 1, refused: 0, unanswered: 0 });
    expect(r.tcp.handshakeRtt.medianMs).toBeCloseTo(10, 3);
  });

  it('reassembles a ClientHello split over two segments to find its SNI', () => {
    const hello = clientHello('split.example.net', 1400);
    const seg = (seq: number, payload: Uint8Array) =>
      ethernet(
        0x0800,
        ipv4({ src: HOST, dst: '192.0.2.1', protocol: 6 }, tcp({ sport: 1, dport: 443, seq, flags: 24 }, payload)),
      );
    const r = feed(new Analyzer({ hostIps: [HOST] }), [
      { t: T0, data: seg(100, hello.subarray(0, 1000)) },
      { t: T0 + 0.001, data: seg(1100, hello.subarray(1000)) },
    ]);
    expect(r.names.tls.map((t) => t.sni)).toEqual(['split.example.net']);
  });

  it('caps flows and says so', () => {
    const packets = Array.from({ length: 50 }, (_, i) => out('192.0.2.1', 1000 + i, 10, T0 + i));
    const r = feed(new Analyzer({ hostIps: [HOST], maxFlows: 20 }), packets);
    expect(r.conversations.udp.length).toBe(20);
    expect(r.summary.packets).toBe(50);
    expect(r.summary.warnings.join(' ')).toMatch(/More than 20 flows/);
  });

  it('keeps counting the flows it has once the table is full', () => {
    // the first flow, the second (the table is full), the first again: its start stays at its first packet
    const r = feed(new Analyzer({ hostIps: [HOST], maxFlows: 2 }), [
      out('192.0.2.1', 1000, 10, T0),
      out('192.0.2.1', 1001, 10, T0 + 1),
      out('192.0.2.1', 1000, 10, T0 + 2),
      out('192.0.2.1', 1002, 10, T0 + 3),
      out('192.0.2.1', 1000, 10, T0 + 4),
    ]);
    const first = r.conversations.udp.find((c) => c.portB === 1000);
    expect([first?.frames, first?.relStart, first?.duration]).toEqual([3, 0, 4]);
  });
});

describe('parsers and formatting', () => {
  it('DNS: rejects what is not DNS, and follows compression without looping forever', () => {
    expect(parseDns(new Uint8Array(12), 0, 12)).toBeUndefined();
    const loop = bytes([0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0], [0xc0, 12]);
    expect(parseDns(loop, 0, loop.length)).toBeUndefined();
    const msg = dnsMessage(9, 'a.example', 28, [{ type: 28, data: '2001:db8::1' }], 0);
    expect(parseDns(msg, 0, msg.length)?.answers).toEqual([{ name: 'a.example', type: 28, data: '2001:db8::1' }]);
  });

  it('formats sizes, rates and counts', () => {
    expect([formatBytes(999), formatBytes(412_000_000), formatBytes(1_234_567)]).toEqual([
      '999 bytes',
      '412 MB',
      '1.2 MB',
    ]);
    expect([formatRate(1_200_000), formatRate(410e6), formatRate(null)]).toEqual(['1.2 Mbit/s', '410 Mbit/s', 'n/a']);
    expect(formatCount(1234567)).toBe('1,234,567');
    expect([parseBinSeconds('1s'), parseBinSeconds('250ms'), parseBinSeconds('5m'), parseBinSeconds('2')]).toEqual([
      1, 0.25, 300, 2,
    ]);
    expect(() => parseBinSeconds('fast')).toThrow(/--bin/);
  });
});

describe('files', () => {
  let dir: string;
  let files: Record<string, string>;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tripcap-analysis-'));
    files = writeEdgeCaptures(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('renders a readable text report', async () => {
    const text = renderReportText(await analyzeCapture(files['edge-ipv4'] as string, { hostIps: ['192.0.2.10'] }));
    expect(text).toMatch(/^.*edge-ipv4\.pcap: 39 packets, 2\.7 kB/);
    expect(text).toContain('What happened');
    expect(text).toContain('tls   backup.example.com');
    expect(text).toContain('http  GET files.example.com/download?id=1  ×1  404×1');
    expect(text).toMatch(/TCP +17 segments, retransmitted 1/);
  });

  it('compares with a baseline given as a capture file or as a JSON report', async () => {
    const fromFile = await analyzeCapture(files['edge-ipv4'] as string, {
      hostIps: ['192.0.2.10'],
      baseline: files.sll as string,
    });
    expect(fromFile.explanation.baseline?.file).toBe(files.sll);
    const json = join(dir, 'base.json');
    writeFileSync(json, JSON.stringify(await analyzeCapture(files['edge-ipv4'] as string)));
    const same = await analyzeCapture(files['edge-ipv4'] as string, { hostIps: ['192.0.2.10'], baseline: json });
    expect(same.explanation.baseline?.newDestinations).toEqual([]);
    expect(same.explanation.sentences.join(' ')).toContain('Every destination was already seen in the baseline');
  });

  it('rejects what is not a capture with CaptureFormatError', async () => {
    const path = join(dir, 'not.pcap');
    writeFileSync(path, 'hello, this is text');
    await expect(analyzeCapture(path)).rejects.toBeInstanceOf(CaptureFormatError);
  });

  it('survives thousands of mutated and cut files: a report or a clear error, never a crash', async () => {
    let seed = 7;
    const rand = (n: number) => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return (seed >>> 8) % n;
    };
    const sources = Object.values(files).map((f) => readFileSync(f));
    const path = join(dir, 'mutant.pcap');
    let reports = 0;
    for (let i = 0; i < 1500; i++) {
      const src = sources[i % sources.length] as Buffer;
      const data = Buffer.from(src.subarray(0, 24 + rand(Math.max(1, src.length - 24))));
      const flips = 1 + rand(8);
      for (let k = 0; k < flips && data.length > 24; k++) data[24 + rand(data.length - 24)] = rand(256);
      writeFileSync(path, data);
      try {
        const r = await analyzeCapture(path, { hostIps: ['192.0.2.10'] });
        expect(r.summary.packets).toBeGreaterThanOrEqual(0);
        renderReportText(r);
        reports++;
      } catch (err) {
        expect(err).toBeInstanceOf(CaptureFormatError);
      }
    }
    expect(reports).toBeGreaterThan(1000);
  }, 120_000);

  it('writes nothing per packet that grows: a capture of many packets in few flows keeps few flows', async () => {
    const path = join(dir, 'many.pcap');
    const packets: PacketSpec[] = [];
    for (let i = 0; i < 20_000; i++) packets.push({ t: T0 + i / 1000, data: out('192.0.2.1', 443, 64, 0).data });
    writePcap(path, LinkType.ETHERNET, packets);
    const a = new Analyzer({ hostIps: [HOST] });
    const { readCaptureFile } = await import('../pcap/reader.js');
    await readCaptureFile(path, a.onPacket);
    expect(a.table.size).toBe(1);
    expect(a.finish().summary.packets).toBe(20_000);
  });
});

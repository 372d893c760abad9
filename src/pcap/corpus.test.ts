import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsSkipReason } from '../../test/netns.js';
import {
  buildCorpus,
  CORPUS_NAMES,
  type Corpus,
  type CorpusName,
  makeSyntheticCorpus,
  SYNTHETIC_NAMES,
} from '../../test/pcap-corpus.js';
import { readCaptureFile } from './reader.js';
import { capinfos, epochString, tsharkFields } from './tools.test-helper.js';
import type { ReadResult } from './types.js';

/** The reader against tshark on every file of the test corpus: the same packets, times, lengths and interfaces. */

const LINK_TYPES: Record<CorpusName, number[]> = {
  icmp: [1],
  dns: [1],
  'tcp-handshake-retrans-rst': [1],
  'tls-sni': [1],
  http: [1],
  ipv6: [1],
  sll2: [276],
  sll: [113],
  nanosecond: [1],
  'pcapng-multi': [1, 1, 1, 101],
  'big-endian': [1],
  truncated: [1],
  vlan: [1],
  qinq: [1],
  'raw-ip': [101],
  'loopback-null': [0],
};

async function compareWithTshark(file: string): Promise<ReadResult> {
  const ours: string[][] = [];
  const sections = new Map<number, number>();
  const onInterface = (iface: { section?: number }, index: number) => sections.set(index, iface.section ?? 0);
  const result = await readCaptureFile(
    file,
    (p) => {
      const section = sections.get(p.interfaceIndex ?? 0) ?? 0;
      ours.push([
        String(section + 1),
        String(p.interfaceId),
        epochString(p.seconds, p.nanos),
        String(p.capturedLength),
        String(p.originalLength),
        p.comment ?? '',
      ]);
    },
    { onInterface },
  );
  const theirs = await tsharkFields(file, [
    'frame.section_number',
    'frame.interface_id',
    'frame.time_epoch',
    'frame.cap_len',
    'frame.len',
    'frame.comment',
  ]);
  // classic pcap has no sections or interfaces in tshark's eyes
  const normalized = theirs.map(([section, iface, ...rest]) => [section || '1', iface || '0', ...rest]);
  expect(ours).toEqual(normalized);
  const oracle = await capinfos(file);
  expect(result.packets).toBe(oracle.packets);
  return result;
}

function checkInfo(name: CorpusName, result: ReadResult) {
  expect(result.info.interfaces.map((i) => i.linkType)).toEqual(LINK_TYPES[name]);
  expect(result.packets).toBeGreaterThan(0);
  if (name === 'truncated') {
    expect(result.truncated).toBe(true);
    expect(result.warnings).toEqual([expect.stringMatching(/ends in the middle of packet/)]);
  } else {
    expect(result.truncated).toBe(false);
    expect(result.warnings).toEqual([]);
  }
}

describe('synthetic corpus (no root needed)', () => {
  let dir: string;
  let files: Record<(typeof SYNTHETIC_NAMES)[number], string>;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tripcap-corpus-'));
    files = await makeSyntheticCorpus(dir);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const name of SYNTHETIC_NAMES) {
    it(`${name}: read as tshark reads it`, async () => {
      const result = await compareWithTshark(files[name]);
      checkInfo(name, result);
      expect(result.packets).toBe(19);
    });
  }

  it('frames carry their tags and checksums as tshark decodes them', async () => {
    const rows = await tsharkFields(
      files.qinq,
      ['ieee8021ad.id', 'vlan.id', 'ip.checksum.status', 'tcp.checksum.status', 'tls.handshake.extensions_server_name'],
      ['-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE'],
    );
    expect(rows).toHaveLength(19);
    expect(rows.every((r) => r[0] === '200' && r[1] === '100')).toBe(true);
    expect(rows.filter((r) => r[2] === '1')).toHaveLength(17); // every IPv4 header checksum is good (1)
    expect(rows.filter((r) => r[3] === '1')).toHaveLength(13); // and every TCP checksum
    expect(rows.map((r) => r[4]).filter(Boolean)).toEqual(['secure.example.test']);
  });
});

const skip = netnsSkipReason();

describe.skipIf(skip !== undefined)(`live corpus${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dir: string;
  let corpus: Corpus;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tripcap-corpus-'));
    corpus = await buildCorpus(dir);
  }, 60_000);
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('makes every file of the documented list', () => {
    expect(Object.keys(corpus.files).sort()).toEqual([...CORPUS_NAMES].sort());
  });

  for (const name of CORPUS_NAMES) {
    it(`${name}: read as tshark reads it`, async () => {
      const result = await compareWithTshark(corpus.files[name]);
      checkInfo(name, result);
    });
  }

  it('has what each file is for', async () => {
    const has = async (name: CorpusName, field: string, filter = field) =>
      (await tsharkFields(corpus.files[name], [field], ['-Y', filter])).map((r) => r[0]);
    expect(await has('dns', 'dns.qry.name')).toContain('www.example.test');
    expect(await has('dns', 'dns.flags.rcode', 'dns.flags.rcode == 3')).toHaveLength(1);
    expect(
      (await has('tcp-handshake-retrans-rst', 'tcp.stream', 'tcp.analysis.retransmission')).length,
    ).toBeGreaterThan(0);
    expect(
      (await has('tcp-handshake-retrans-rst', 'tcp.stream', 'tcp.flags.reset == 1')).length,
    ).toBeGreaterThanOrEqual(2);
    expect(await has('tls-sni', 'tls.handshake.extensions_server_name')).toEqual([
      'www.example.test',
      'api.example.test',
    ]);
    expect(await has('http', 'http.host')).toEqual(['www.example.test', 'www.example.test', 'www.example.test']);
    expect(await has('http', 'http.response.code')).toEqual(['200', '201', '404']);
    expect((await has('ipv6', 'ipv6.src', 'tcp')).length).toBeGreaterThan(0);
    expect(await has('sll2', 'sll.ifindex', 'frame.number == 1')).toHaveLength(1);

    const multi = await readCaptureFile(corpus.files['pcapng-multi'], () => {});
    expect(multi.info.sections).toBe(2);
    expect(multi.info.interfaces.map((i) => [i.section, i.name])).toEqual([
      [0, expect.stringMatching(/^tc\d+a$/)], // the client's veth
      [0, 'lo'],
      [1, 'synthetic0'],
      [1, 'tun0'],
    ]);
    expect(multi.info.comments).toEqual([
      'tripcap test corpus: client namespace, veth and loopback',
      'tripcap test corpus: section written by createPcapngWriter',
      'the DNS query',
      'the TLS ClientHello',
    ]);
    expect(multi.info.interfaceStats.map((s) => s.interfaceIndex)).toEqual([0, 1, 2]);
    expect(multi.info.names.map((n) => n.address)).toContain(corpus.hosts.server);
    expect(multi.info.application).toMatch(/Dumpcap/);

    const nano = await readCaptureFile(corpus.files.nanosecond, () => {});
    expect(nano.info).toMatchObject({ nanosecond: true, littleEndian: true });
    const big = await readCaptureFile(corpus.files['big-endian'], () => {});
    expect(big.info.littleEndian).toBe(false);
    const http = await readCaptureFile(corpus.files.http, () => {});
    expect(big.packets).toBe(http.packets);
  });
});

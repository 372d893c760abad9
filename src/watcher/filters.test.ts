import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiError } from '../lib/errors.js';
import { type CaptureFilter, compileBpf, FILTER_LIMITS, parseFilters } from './filters.js';

const TCPDUMP = '/usr/bin/tcpdump';

function filterError(input: unknown): ApiError {
  try {
    parseFilters(input);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    const apiError = err as ApiError;
    expect(apiError.status).toBe(400);
    expect(apiError.code).toBe('InvalidFilter');
    return apiError;
  }
  throw new Error(`parseFilters accepted ${JSON.stringify(input)}`);
}

const compile = (input: unknown[]) => compileBpf(parseFilters(input));

describe('parseFilters', () => {
  it('accepts absent filters and normalises protocol spelling', () => {
    expect(parseFilters(undefined)).toEqual([]);
    expect(parseFilters(null)).toEqual([]);
    expect(parseFilters([])).toEqual([]);
    expect(
      parseFilters([{}, { protocol: 'tcp' }, { protocol: 'uDp' }, { protocol: 'ANY' }, { protocol: null }]),
    ).toEqual([
      { protocol: 'Any' },
      { protocol: 'TCP' },
      { protocol: 'UDP' },
      { protocol: 'Any' },
      { protocol: 'Any' },
    ]);
  });

  it('accepts the notations Azure documents, keeping values as written', () => {
    const valid = ['80', '0', '65535', '80-90', '80-80', '80;443;8080', '80;443;'];
    for (const port of valid)
      expect(parseFilters([{ localPort: port }])).toEqual([{ protocol: 'Any', localPort: port }]);
    const addresses = [
      '10.0.0.4',
      '127.0.0.1-127.0.0.255',
      '127.0.0.1;127.0.0.5;',
      '10.0.0.1;2001:db8::1',
      '::1',
      '2001:db8::1-2001:db8::ff',
      '::ffff:10.0.0.1',
      'FE80::A',
    ];
    for (const address of addresses) {
      expect(parseFilters([{ remoteIPAddress: address }])).toEqual([{ protocol: 'Any', remoteIPAddress: address }]);
    }
  });

  it('treats empty strings and null as unset', () => {
    expect(parseFilters([{ localPort: '', localIPAddress: null, remotePort: '', remoteIPAddress: '' }])).toEqual([
      { protocol: 'Any' },
    ]);
  });

  it('rejects bad ports with an actionable message and target', () => {
    const err = filterError([{ localPort: '1-2-3' }]);
    expect(err.target).toBe('filters[0].localPort');
    expect(err.message).toBe(
      "filters[0].localPort '1-2-3' is not valid: use one port (0-65535), one range 'a-b', or a ';' list of up to 64 ports.",
    );
    for (const port of [
      '80;90-100',
      '70000',
      '0x50',
      '-1',
      '90-80',
      ';',
      '80;;443',
      '80 ',
      ' 80',
      '8 0',
      '1e3',
      '80-',
      '+80',
    ]) {
      expect(filterError([{ protocol: 'TCP' }, { remotePort: port }]).target).toBe('filters[1].remotePort');
    }
  });

  it('rejects bad addresses', () => {
    const bad = [
      '1.2.3',
      '10.0.0.1-10.0.0.0',
      '10.0.0.1-2001:db8::1',
      '10.0.0.0/24',
      'fe80::1%eth0',
      '010.0.0.1',
      '256.0.0.1',
      'localhost',
      '10.0.0.1;10.0.0.2-10.0.0.3',
      '10.0.0.1-10.0.0.2-10.0.0.3',
      '10.0.0.1 ',
      '::g',
    ];
    for (const address of bad)
      expect(filterError([{ localIPAddress: address }]).target).toBe('filters[0].localIPAddress');
    expect(filterError([{ localIPAddress: '10.0.0.9-10.0.0.1' }]).message).toContain('starts after it ends');
    expect(filterError([{ localIPAddress: '10.0.0.1-::1' }]).message).toContain('mixes IPv4 and IPv6');
  });

  it('rejects shell and BPF metacharacters in every field', () => {
    const nasty = [
      '80; rm -rf /',
      '$(id)',
      '`id`',
      "'80'",
      '"80"',
      '80\n',
      '80 or 1=1',
      '80)',
      'host 1',
      '80|1',
      '80&&1',
    ];
    for (const value of nasty) {
      for (const field of ['localPort', 'remotePort', 'localIPAddress', 'remoteIPAddress']) {
        expect(filterError([{ [field]: value }]).target).toBe(`filters[0].${field}`);
      }
    }
  });

  it('shows control characters in messages as ?', () => {
    expect(filterError([{ localPort: '80\n81' }]).message).toContain("'80?81'");
  });

  it('rejects wrong types, unknown keys and unknown protocols', () => {
    expect(filterError({ localPort: '80' }).target).toBe('filters');
    expect(filterError(['tcp']).target).toBe('filters[0]');
    expect(filterError([null]).target).toBe('filters[0]');
    expect(filterError([[]]).target).toBe('filters[0]');
    expect(filterError([{ localPort: 80 }]).target).toBe('filters[0].localPort');
    expect(filterError([{ localIPAddress: ['10.0.0.1'] }]).target).toBe('filters[0].localIPAddress');
    expect(filterError([{ protocol: 'ICMP' }]).target).toBe('filters[0].protocol');
    expect(filterError([{ protocol: 6 }]).target).toBe('filters[0].protocol');
    expect(filterError([{ protocol: 'All' }]).message).toContain("use 'TCP', 'UDP' or 'Any'");
    const unknown = filterError([{ localPort: '80', localport: '81' }]);
    expect(unknown.target).toBe('filters[0].localport');
    expect(unknown.message).toContain('unknown field');
  });

  it('caps lengths, list sizes, filter counts, ragged ranges and the whole expression', () => {
    expect(filterError([{ localPort: '8'.repeat(1025) }]).message).toContain('longer than 1024');
    const ports65 = Array.from({ length: 65 }, (_, i) => i + 1).join(';');
    expect(filterError([{ localPort: ports65 }]).target).toBe('filters[0].localPort');
    expect(() => parseFilters([{ localPort: Array.from({ length: 64 }, (_, i) => i + 1).join(';') }])).not.toThrow();
    expect(filterError(Array.from({ length: 65 }, () => ({}))).target).toBe('filters');
    // An IPv6 range with ragged ends needs up to 254 blocks: over the cap.
    const ragged = filterError([{ localIPAddress: '2001:db8::1-2001:db8:0:0:ffff:ffff:ffff:fffe' }]);
    expect(ragged.message).toContain('more than 64 CIDR blocks');
    // Each filter alone fits; together they need too many tests.
    const wide = Array.from({ length: 8 }, (_, i) => ({ localIPAddress: `10.${i}.0.1-10.${i}.255.254` }));
    const tooMany = filterError(wide);
    expect(tooMany.target).toBe('filters');
    expect(tooMany.message).toMatch(/need \d+ address and port tests, more than 256/);
  });
});

describe('compileBpf', () => {
  it('captures everything without filters, or when one filter matches everything', () => {
    expect(compile([])).toBe('');
    expect(compile([{}])).toBe('');
    expect(compile([{ protocol: 'TCP', localPort: '80' }, { protocol: 'Any' }])).toBe('');
  });

  it('matches a filter in both directions', () => {
    expect(compile([{ protocol: 'TCP', localIPAddress: '10.0.0.4', localPort: '80' }])).toBe(
      'tcp and ((src host 10.0.0.4 and src port 80) or (dst host 10.0.0.4 and dst port 80))',
    );
    expect(
      compile([
        {
          protocol: 'UDP',
          localIPAddress: '10.0.0.4',
          localPort: '53',
          remoteIPAddress: '10.0.0.9',
          remotePort: '40000',
        },
      ]),
    ).toBe(
      'udp and ((src host 10.0.0.4 and src port 53 and dst host 10.0.0.9 and dst port 40000) or ' +
        '(dst host 10.0.0.4 and dst port 53 and src host 10.0.0.9 and src port 40000))',
    );
  });

  it('writes protocols: tcp, udp, (tcp or udp) for Any with ports, nothing for Any without', () => {
    expect(compile([{ protocol: 'TCP' }])).toBe('tcp');
    expect(compile([{ protocol: 'UDP' }])).toBe('udp');
    expect(compile([{ remotePort: '443' }])).toBe('(tcp or udp) and ((dst port 443) or (src port 443))');
    expect(compile([{ remoteIPAddress: '::1' }])).toBe('((dst host ::1) or (src host ::1))');
  });

  it('writes lists, port ranges and normalised numbers', () => {
    expect(compile([{ protocol: 'TCP', localPort: '080;443;' }])).toBe(
      'tcp and (((src port 80 or src port 443)) or ((dst port 80 or dst port 443)))',
    );
    expect(compile([{ protocol: 'TCP', localPort: '8000-8080' }])).toBe(
      'tcp and ((src portrange 8000-8080) or (dst portrange 8000-8080))',
    );
    expect(compile([{ protocol: 'TCP', localPort: '22-22' }])).toBe('tcp and ((src port 22) or (dst port 22))');
    expect(compile([{ localIPAddress: '10.0.0.1;10.0.0.2' }])).toBe(
      '(((src host 10.0.0.1 or src host 10.0.0.2)) or ((dst host 10.0.0.1 or dst host 10.0.0.2)))',
    );
  });

  it('decomposes address ranges into minimal CIDR blocks', () => {
    expect(compile([{ localIPAddress: '10.0.0.0-10.0.0.4' }])).toBe(
      '(((src net 10.0.0.0/30 or src host 10.0.0.4)) or ((dst net 10.0.0.0/30 or dst host 10.0.0.4)))',
    );
    expect(compile([{ localIPAddress: '127.0.0.1-127.0.0.255' }])).toContain(
      '(src host 127.0.0.1 or src net 127.0.0.2/31 or src net 127.0.0.4/30 or src net 127.0.0.8/29 or ' +
        'src net 127.0.0.16/28 or src net 127.0.0.32/27 or src net 127.0.0.64/26 or src net 127.0.0.128/25)',
    );
    expect(compile([{ localIPAddress: '0.0.0.0-255.255.255.255' }])).toBe(
      '((src net 0.0.0.0/0) or (dst net 0.0.0.0/0))',
    );
    expect(compile([{ localIPAddress: '10.0.0.5-10.0.0.5' }])).toBe('((src host 10.0.0.5) or (dst host 10.0.0.5))');
    expect(compile([{ localIPAddress: '2001:db8::-2001:db8::ffff' }])).toBe(
      '((src net 2001:db8::/112) or (dst net 2001:db8::/112))',
    );
    expect(compile([{ localIPAddress: '2001:db8::ff-2001:db8::100' }])).toBe(
      '(((src host 2001:db8::ff or src host 2001:db8::100)) or ((dst host 2001:db8::ff or dst host 2001:db8::100)))',
    );
    expect(compile([{ localIPAddress: '::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' }])).toBe(
      '((src net ::/0) or (dst net ::/0))',
    );
  });

  it('prints IPv6 addresses canonically (RFC 5952)', () => {
    expect(compile([{ localIPAddress: 'FE80:0000:0000:0000:0000:0000:0000:000A' }])).toContain('src host fe80::a');
    expect(compile([{ localIPAddress: '::ffff:10.0.0.1' }])).toContain('src host ::ffff:a00:1');
    expect(compile([{ localIPAddress: '2001:db8:0:0:1:0:0:1' }])).toContain('src host 2001:db8::1:0:0:1');
    expect(compile([{ localIPAddress: '1:2:3:4:5:6:7:8' }])).toContain('src host 1:2:3:4:5:6:7:8');
    expect(compile([{ localIPAddress: '1:0:3:4:5:6:7:8' }])).toContain('src host 1:0:3:4:5:6:7:8');
  });

  it('ORs several filters', () => {
    expect(compile([{ protocol: 'UDP', localPort: '53' }, { remoteIPAddress: '10.0.0.1' }])).toBe(
      '(udp and ((src port 53) or (dst port 53))) or (((dst host 10.0.0.1) or (src host 10.0.0.1)))',
    );
  });
});

// --- Against the real tcpdump -------------------------------------------------------------------------------------

const isRoot = process.getuid?.() === 0;
if (!isRoot && process.env.CI === 'true') {
  throw new Error('filters.test.ts: CI=true but not root; `tcpdump -i lo -d` needs root (CAP_NET_RAW).');
}
if (!isRoot) console.warn('filters.test.ts: skipping `tcpdump -i lo -d` checks: they need root (CAP_NET_RAW).');

/** A spread of compiled filters, including the largest expression the limits allow. */
const SAMPLE_FILTERS: unknown[][] = [
  [{ protocol: 'TCP', localIPAddress: '10.0.0.4', localPort: '80' }],
  [{ protocol: 'UDP' }],
  [{ remotePort: '443' }],
  [{ protocol: 'TCP', localPort: '80;443;8080', remotePort: '1024-65535' }],
  [{ localIPAddress: '127.0.0.1-127.0.0.255', remoteIPAddress: '10.0.0.1;10.0.0.2;192.168.0.1' }],
  [{ localIPAddress: '0.0.0.0-255.255.255.255' }],
  [{ localIPAddress: '2001:db8::1-2001:db8::ffff', remoteIPAddress: 'fe80::1', protocol: 'udp', localPort: '5353' }],
  [{ localIPAddress: '::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff' }],
  [{ localIPAddress: '::ffff:10.0.0.1;10.0.0.1', remotePort: '0;65535' }],
  [{ protocol: 'UDP', localPort: '53' }, { remoteIPAddress: '10.0.0.1' }, { protocol: 'TCP', remotePort: '22-23' }],
  // Worst case for the instruction count: Any protocol, IPv4 ranges with ragged ends (host tests cover ARP too).
  Array.from({ length: 4 }, (_, i) => ({ localIPAddress: `10.${i}.0.1-10.${i}.0.254` })),
  [{ localIPAddress: '10.0.0.1-10.0.255.254' }, { localIPAddress: '10.1.0.1-10.1.0.30' }],
];

describe.skipIf(!isRoot)('compiled filters are accepted by tcpdump -d (needs root)', () => {
  it.each(SAMPLE_FILTERS.map((filters, index) => [index, compile(filters)] as const))(
    'sample %i',
    (_index, expression) => {
      const program = execFileSync(TCPDUMP, ['-i', 'lo', '-d', expression], { encoding: 'utf8', stdio: 'pipe' });
      const instructions = program.trim().split('\n').length;
      // Linux refuses classic BPF programs over 4096 instructions (BPF_MAXINSNS).
      expect(instructions).toBeLessThan(4096);
    },
  );

  it('the largest expression the limits allow stays under the kernel instruction limit', () => {
    // Any protocol with ragged IPv4 ranges costs the most instructions per test; 4 such filters fill the budget.
    const ragged = (i: number) => ({ localIPAddress: `10.${i}.0.1-10.${i}.255.254` });
    expect(() => parseFilters(Array.from({ length: 5 }, (_, i) => ragged(i)))).toThrow(/more than 256/);
    const expression = compileBpf(parseFilters(Array.from({ length: 4 }, (_, i) => ragged(i))));
    const tests = expression.match(/\b(host|net|port|portrange)\b/g)?.length ?? 0;
    expect(tests).toBeLessThanOrEqual(FILTER_LIMITS.maxTermsInExpression);
    expect(tests).toBeGreaterThan(FILTER_LIMITS.maxTermsInExpression * 0.8);
    const program = execFileSync(TCPDUMP, ['-i', 'lo', '-d', expression], { encoding: 'utf8', stdio: 'pipe' });
    expect(program.trim().split('\n').length).toBeLessThan(4096);
  });
});

// --- Semantics, on a hand-built pcap ------------------------------------------------------------------------------

interface TestPacket {
  protocol: 'tcp' | 'udp';
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
}

/** Packet i is stamped with second i, so tcpdump's `-tt` output tells which packets passed. */
const PACKETS: TestPacket[] = [
  { protocol: 'tcp', src: '10.0.0.4', dst: '10.0.0.9', srcPort: 80, dstPort: 50000 }, // 0: local web reply
  { protocol: 'tcp', src: '10.0.0.9', dst: '10.0.0.4', srcPort: 50000, dstPort: 80 }, // 1: request to local web
  { protocol: 'udp', src: '10.0.0.4', dst: '10.0.0.9', srcPort: 53, dstPort: 40000 }, // 2: local DNS answer
  { protocol: 'tcp', src: '10.0.0.4', dst: '192.168.1.1', srcPort: 443, dstPort: 50001 }, // 3
  { protocol: 'udp', src: '10.0.0.5', dst: '10.0.0.9', srcPort: 80, dstPort: 50000 }, // 4
  { protocol: 'tcp', src: '10.0.0.3', dst: '10.0.0.4', srcPort: 22, dstPort: 60000 }, // 5
  { protocol: 'udp', src: '2001:db8::4', dst: '2001:db8::9', srcPort: 5353, dstPort: 5353 }, // 6
  { protocol: 'tcp', src: '10.0.0.7', dst: '10.0.0.1', srcPort: 8080, dstPort: 1234 }, // 7
];

function ipv4Bytes(address: string): number[] {
  return address.split('.').map(Number);
}

function ipv6Bytes(address: string): number[] {
  const [head = '', tail = ''] = address.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const groups = [...headGroups, ...Array(8 - headGroups.length - tailGroups.length).fill('0'), ...tailGroups];
  return groups.flatMap((group) => {
    const n = Number.parseInt(group, 16);
    return [n >> 8, n & 0xff];
  });
}

function checksum(bytes: Buffer): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i] as number) * 256 + (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function transportHeader(packet: TestPacket): Buffer {
  if (packet.protocol === 'udp') {
    const udp = Buffer.alloc(8);
    udp.writeUInt16BE(packet.srcPort, 0);
    udp.writeUInt16BE(packet.dstPort, 2);
    udp.writeUInt16BE(8, 4);
    return udp;
  }
  const tcp = Buffer.alloc(20);
  tcp.writeUInt16BE(packet.srcPort, 0);
  tcp.writeUInt16BE(packet.dstPort, 2);
  tcp.writeUInt32BE(1, 4);
  tcp[12] = 5 << 4; // data offset: 5 words
  tcp[13] = 0x10; // ACK
  tcp.writeUInt16BE(65535, 14);
  return tcp;
}

function ethernetFrame(packet: TestPacket): Buffer {
  const transport = transportHeader(packet);
  const protocolNumber = packet.protocol === 'tcp' ? 6 : 17;
  let ip: Buffer;
  let etherType: number;
  if (packet.src.includes(':')) {
    etherType = 0x86dd;
    ip = Buffer.alloc(40);
    ip[0] = 0x60;
    ip.writeUInt16BE(transport.length, 4);
    ip[6] = protocolNumber;
    ip[7] = 64;
    Buffer.from(ipv6Bytes(packet.src)).copy(ip, 8);
    Buffer.from(ipv6Bytes(packet.dst)).copy(ip, 24);
  } else {
    etherType = 0x0800;
    ip = Buffer.alloc(20);
    ip[0] = 0x45;
    ip.writeUInt16BE(20 + transport.length, 2);
    ip[8] = 64;
    ip[9] = protocolNumber;
    Buffer.from(ipv4Bytes(packet.src)).copy(ip, 12);
    Buffer.from(ipv4Bytes(packet.dst)).copy(ip, 16);
    ip.writeUInt16BE(checksum(ip), 10);
  }
  const ethernet = Buffer.alloc(14);
  Buffer.from([0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01]).copy(ethernet, 0);
  ethernet.writeUInt16BE(etherType, 12);
  return Buffer.concat([ethernet, ip, transport]);
}

/** A classic little-endian pcap file, link type Ethernet. */
function pcapFile(packets: TestPacket[]): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(65535, 16);
  header.writeUInt32LE(1, 20);
  const records = packets.map((packet, index) => {
    const frame = ethernetFrame(packet);
    const record = Buffer.alloc(16);
    record.writeUInt32LE(index, 0);
    record.writeUInt32LE(frame.length, 8);
    record.writeUInt32LE(frame.length, 12);
    return Buffer.concat([record, frame]);
  });
  return Buffer.concat([header, ...records]);
}

describe('compiled filters select the right packets (tcpdump -r)', () => {
  let dir: string;
  let file: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tripcap-filters-'));
    file = join(dir, 'packets.cap');
    writeFileSync(file, pcapFile(PACKETS));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function passing(filters: unknown[]): number[] {
    const expression = compileBpf(parseFilters(filters));
    const args = ['-r', file, '-n', '-tt', ...(expression ? [expression] : [])];
    const output = execFileSync(TCPDUMP, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    return output
      .split('\n')
      .filter(Boolean)
      .map((line) => Number.parseInt(line, 10));
  }

  const cases: [string, CaptureFilter[] | unknown[], number[]][] = [
    ['no filter', [], [0, 1, 2, 3, 4, 5, 6, 7]],
    ['TCP local 10.0.0.4:80', [{ protocol: 'TCP', localIPAddress: '10.0.0.4', localPort: '80' }], [0, 1]],
    ['UDP only (IPv4 and IPv6)', [{ protocol: 'UDP' }], [2, 4, 6]],
    ['local address range', [{ localIPAddress: '10.0.0.3-10.0.0.5' }], [0, 1, 2, 3, 4, 5]],
    ['TCP local port list', [{ protocol: 'tcp', localPort: '80;443' }], [0, 1, 3]],
    ['remote port range, either direction', [{ remotePort: '50000-50001' }], [0, 1, 3, 4]],
    ['local and remote address', [{ localIPAddress: '10.0.0.4', remoteIPAddress: '10.0.0.9' }], [0, 1, 2]],
    ['IPv6 local address', [{ localIPAddress: '2001:db8::4' }], [6]],
    ['IPv6 remote range', [{ remoteIPAddress: '2001:db8::8-2001:db8::f' }], [6]],
    ['two filters OR-ed', [{ protocol: 'UDP', localPort: '53' }, { remoteIPAddress: '10.0.0.1' }], [2, 7]],
    ['UDP port 80 is not TCP port 80', [{ protocol: 'UDP', localPort: '80' }], [4]],
    ['nothing matches', [{ protocol: 'TCP', localPort: '9999' }], []],
  ];

  it.each(cases)('%s', (_name, filters, expected) => {
    expect(passing(filters)).toEqual(expected);
  });
});

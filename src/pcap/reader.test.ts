import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCaptureFile, readCaptureStream } from './reader.js';
import { BlockBuilder, capinfos, epochString, tsharkFields } from './tools.test-helper.js';
import { CaptureFormatError, type RawPacket, type ReadOptions, type ReadResult } from './types.js';
import { createPcapngWriter, createPcapWriter, type WritePacket } from './writer.js';

const execFileAsync = promisify(execFile);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tripcap-reader-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Seen {
  interfaceId: number;
  interfaceIndex: number | undefined;
  linkType: number;
  time: string;
  capturedLength: number;
  originalLength: number;
  hex: string;
  comment?: string;
}

function see(p: RawPacket): Seen {
  const seen: Seen = {
    interfaceId: p.interfaceId,
    interfaceIndex: p.interfaceIndex,
    linkType: p.linkType,
    time: epochString(p.seconds, p.nanos),
    capturedLength: p.capturedLength,
    originalLength: p.originalLength,
    hex: Buffer.from(p.data).toString('hex'),
  };
  if (p.comment !== undefined) seen.comment = p.comment;
  return seen;
}

async function readAll(file: string, options?: ReadOptions): Promise<{ result: ReadResult; packets: Seen[] }> {
  const packets: Seen[] = [];
  const result = await readCaptureFile(file, (p) => packets.push(see(p)), options);
  return { result, packets };
}

async function readBytes(
  bytes: Uint8Array,
  chunk: number,
  options?: ReadOptions,
): Promise<{ result: ReadResult; packets: Seen[] }> {
  const packets: Seen[] = [];
  async function* chunks() {
    for (let at = 0; at < bytes.length; at += chunk) yield bytes.subarray(at, at + chunk);
  }
  const result = await readCaptureStream(chunks(), (p) => packets.push(see(p)), options);
  return { result, packets };
}

/** Frames of varied sizes and contents (deterministic). */
function frames(count: number, seed = 1): Buffer[] {
  let x = seed;
  const next = () => {
    x = (x * 1103515245 + 12345) >>> 0;
    return x >>> 8;
  };
  return Array.from({ length: count }, (_, i) => {
    const size = i === 0 ? 0 : i === 1 ? 1 : [14, 60, 61, 62, 63, 64, 590, 1514, 9000][next() % 9];
    const frame = Buffer.alloc(size ?? 60);
    for (let b = 0; b < frame.length; b++) frame[b] = (next() + b) & 0xff;
    return frame;
  });
}

function packetsOf(
  count: number,
  options: { seed?: number; start?: number; interfaces?: number; comments?: boolean } = {},
): WritePacket[] {
  const start = options.start ?? 1_767_225_600;
  return frames(count, options.seed).map((data, i) => {
    const packet: WritePacket = {
      seconds: start + Math.floor(i / 3),
      nanos: (i * 123_456_789 + 987) % 1e9,
      data,
      originalLength: data.length + (i % 4 === 0 ? 100 : 0),
      interfaceId: (i % (options.interfaces ?? 1)) as number,
    };
    if (options.comments && i % 5 === 1) packet.comment = `packet ${i}: größe ${data.length} ✓`;
    return packet;
  });
}

/** tshark's view of every packet, in the shape of comparable() (without the bytes). */
async function tsharkSees(file: string, extra: string[] = []) {
  const rows = await tsharkFields(
    file,
    [
      'frame.section_number',
      'frame.interface_id',
      'frame.interface_name',
      'frame.time_epoch',
      'frame.cap_len',
      'frame.len',
      'frame.comment',
    ],
    extra,
  );
  return rows.map(([section, interfaceId, name, time, cap, len, comment]) => ({
    section: Number(section || 1) - 1,
    interfaceId: Number(interfaceId || 0),
    // tshark 4.0 names a later section's interface after the first section's interface with the same id: skip those
    // (and calls an interface without if_name "unknown")
    name: Number(section || 1) > 1 || name === 'unknown' ? undefined : name || undefined,
    time,
    capturedLength: Number(cap),
    originalLength: Number(len),
    comment: comment || undefined,
  }));
}

/** Our view in tshark's terms: section and interface from the interface table, the rest from the packet. */
function comparable(seen: Seen[], info?: ReadResult['info']) {
  return seen.map((s) => {
    const iface = info?.interfaces[s.interfaceIndex ?? 0];
    return {
      section: iface?.section ?? 0,
      interfaceId: s.interfaceId,
      name: iface?.section ? undefined : iface?.name,
      time: s.time,
      capturedLength: s.capturedLength,
      originalLength: s.originalLength,
      comment: s.comment,
    };
  });
}

describe('classic pcap', () => {
  for (const littleEndian of [true, false]) {
    for (const nanosecond of [false, true]) {
      it(`reads what the writer wrote (${littleEndian ? 'little' : 'big'}-endian, ${nanosecond ? 'ns' : 'µs'}) as tshark does`, async () => {
        const file = join(dir, `classic-${littleEndian}-${nanosecond}.pcap`);
        const written = packetsOf(60, { seed: littleEndian ? 3 : 4 });
        const writer = createPcapWriter(file, { linkType: 1, littleEndian, nanosecond });
        for (const p of written) await writer.write(p);
        await writer.close();

        const { result, packets } = await readAll(file);
        expect(result.warnings).toEqual([]);
        expect(result.truncated).toBe(false);
        expect(result.packets).toBe(60);
        expect(result.capturedBytes).toBe(written.reduce((n, p) => n + p.data.length, 0));
        expect(result.fileBytes).toBe((await readFile(file)).length);
        expect(result.info).toMatchObject({
          format: 'pcap',
          littleEndian,
          nanosecond,
          sections: 1,
          versionMajor: 2,
          versionMinor: 4,
          interfaces: [{ linkType: 1, snaplen: 262144, tsUnitNanos: nanosecond ? 1 : 1000 }],
        });
        expect(packets).toEqual(
          written.map((p) => ({
            interfaceId: 0,
            interfaceIndex: 0,
            linkType: 1,
            time: epochString(p.seconds, nanosecond ? p.nanos : p.nanos - (p.nanos % 1000)),
            capturedLength: p.data.length,
            originalLength: p.originalLength,
            hex: Buffer.from(p.data).toString('hex'),
          })),
        );
        expect(comparable(packets, result.info)).toEqual(await tsharkSees(file));

        const bytes = await readFile(file);
        for (const chunk of [1, 7, 4096]) expect(await readBytes(bytes, chunk)).toEqual({ result, packets });
      });
    }
  }

  it('reads a last record cut anywhere as the packets before it, truncated, with a warning; tshark agrees', async () => {
    const file = join(dir, 'whole.pcap');
    const writer = createPcapWriter(file, { linkType: 1 });
    for (const p of packetsOf(5).slice(2)) await writer.write(p);
    await writer.close();
    const whole = await readFile(file);
    const lastStart = whole.length - 16 - (packetsOf(5)[4]?.data.length ?? 0);
    for (const cut of [lastStart + 1, lastStart + 15, lastStart + 16, whole.length - 1]) {
      const cutFile = join(dir, `cut-${cut}.pcap`);
      await writeFile(cutFile, whole.subarray(0, cut));
      const { result } = await readAll(cutFile);
      expect(result.packets).toBe(2);
      expect(result.truncated).toBe(true);
      expect(result.warnings).toEqual([expect.stringMatching(/ends in the middle of packet 3/)]);
      const oracle = await capinfos(cutFile);
      expect(oracle.packets).toBe(2);
      expect(oracle.stderr).toMatch(/cut short/);
    }
    // cut exactly at a record boundary: a complete, shorter file
    await writeFile(join(dir, 'boundary.pcap'), whole.subarray(0, lastStart));
    const { result } = await readAll(join(dir, 'boundary.pcap'));
    expect(result).toMatchObject({ packets: 2, truncated: false, warnings: [] });
  });

  it('stops at a record whose captured length is corrupt, keeping what came before', async () => {
    const file = join(dir, 'corrupt-length.pcap');
    const writer = createPcapWriter(file, { linkType: 1 });
    for (const p of packetsOf(4)) await writer.write(p);
    await writer.close();
    const bytes = await readFile(file);
    const third = 24 + 16 + 0 + 16 + 1; // frames 0 and 1 are 0 and 1 bytes long
    bytes.writeUInt32LE(0x7fffffff, third + 8);
    await writeFile(file, bytes);
    const { result, packets } = await readAll(file);
    expect(packets).toHaveLength(2);
    expect(result.truncated).toBe(true);
    expect(result.warnings).toEqual([expect.stringMatching(/packet 3 at offset 57 claims 2147483647 captured bytes/)]);
  });

  it('accepts records longer than a small snaplen, as libpcap and Wireshark do', async () => {
    const file = join(dir, 'small-snaplen.pcap');
    const writer = createPcapWriter(file, { linkType: 1 });
    for (const p of packetsOf(10)) await writer.write(p);
    await writer.close();
    const bytes = await readFile(file);
    bytes.writeUInt32LE(64, 16);
    await writeFile(file, bytes);
    const { result, packets } = await readAll(file);
    expect(result).toMatchObject({ packets: 10, truncated: false, warnings: [] });
    expect(result.info.interfaces[0]?.snaplen).toBe(64);
    expect(comparable(packets, result.info)).toEqual(await tsharkSees(file));
  });

  it('carries a fraction of a second beyond one second into the seconds, and reads the FCS bits', async () => {
    const file = join(dir, 'odd-fields.pcap');
    const writer = createPcapWriter(file, { linkType: 1 | 0x04000000 | (2 << 28) });
    await writer.write({ seconds: 100, nanos: 0, data: Buffer.alloc(60) });
    await writer.close();
    const bytes = await readFile(file);
    bytes.writeUInt32LE(2_500_000, 24 + 4);
    await writeFile(file, bytes);
    const { result, packets } = await readAll(file);
    expect(packets[0]?.time).toBe('102.500000000');
    expect(result.info.interfaces[0]).toMatchObject({ linkType: 1, fcsLength: 4 });
  });
});

describe('files that are not captures', () => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['an empty file', Buffer.alloc(0), /empty/],
    ['three bytes', Buffer.from([0xa1, 0xb2, 0xc3]), /too short/],
    [
      'text',
      Buffer.from('hello, this is not a capture\n'),
      /not a pcap or pcapng file: it starts with 0x68656c6c.*text/,
    ],
    ['gzip', Buffer.from('1f8b0800000000000003', 'hex'), /gzip/],
    ['a modified pcap', Buffer.from(`34cdb2a1${'00'.repeat(30)}`, 'hex'), /modified/],
    ['a cut pcap header', Buffer.from(`d4c3b2a10200040000000000`, 'hex'), /inside the 24-byte pcap header/],
    ['pcap version 1', Buffer.from(`d4c3b2a1010000000000000000000000ffff000001000000`, 'hex'), /version 1\.0/],
    [
      'a pcapng header without its byte-order magic',
      Buffer.from(`0a0d0d0a1c000000${'00'.repeat(16)}1c000000`, 'hex'),
      /no byte-order magic/,
    ],
    ['a cut pcapng header', new BlockBuilder().shb([[1, 'comment']]).subarray(0, 30), /ends inside its first section/],
    ['a pcapng section header of version 2', new BlockBuilder().shb([], [2, 0]), /version 2\.0/],
    [
      'a pcapng header with a bad length',
      Buffer.from(`0a0d0d0a1d0000004d3c2b1a${'00'.repeat(16)}`, 'hex'),
      /length 29, not a multiple of 4/,
    ],
  ];
  for (const [name, bytes, message] of cases) {
    it(`rejects ${name} with a CaptureFormatError`, async () => {
      const file = join(dir, `bad-${name.replaceAll(' ', '-')}`);
      await writeFile(file, bytes);
      const error = await readCaptureFile(file, () => {}).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(CaptureFormatError);
      expect((error as Error).message).toMatch(message);
      await expect(readBytes(bytes, 3)).rejects.toThrow(message);
    });
  }

  it('reads a file with a header and no packets as empty', async () => {
    const file = join(dir, 'no-packets.pcap');
    await createPcapWriter(file, { linkType: 276 }).close();
    const { result } = await readAll(file);
    expect(result).toMatchObject({ packets: 0, capturedBytes: 0, truncated: false, warnings: [] });
    expect(result.info.interfaces).toEqual([
      { linkType: 276, snaplen: 262144, tsUnitNanos: 1000, tsUnitsPerSecond: 1e6 },
    ]);
  });
});

describe('pcapng', () => {
  async function twoSections(file: string): Promise<WritePacket[][]> {
    const first = join(dir, 'section-1.pcapng');
    const second = join(dir, 'section-2.pcapng');
    const a = createPcapngWriter(first, {
      comment: 'first section',
      hardware: 'test rig',
      os: 'Linux',
      interfaces: [
        { linkType: 1, snaplen: 262144, name: 'eth0', description: 'the uplink' },
        { linkType: 276, name: 'any', tsresol: 9 },
      ],
    });
    const third = a.addInterface({ linkType: 101, name: 'tun0', tsresol: 0x80 | 20, tsoffset: -3600 });
    const aPackets = packetsOf(40, { interfaces: 3, comments: true });
    for (const p of aPackets) await a.write(p);
    await a.writeNameRecords([
      { address: '192.0.2.1', names: ['gateway.example', 'gw'] },
      { address: '2001:db8::1', names: ['v6.example'] },
    ]);
    await a.writeInterfaceStatistics(0, { received: 1234, dropped: 5, seconds: 1_767_225_700, nanos: 0 });
    await a.writeInterfaceStatistics(third, { received: 2 ** 40, seconds: 1_767_225_700, nanos: 0 });
    await a.close();
    const b = createPcapngWriter(second, {
      littleEndian: false,
      comment: 'second section, big-endian',
      application: 'another writer',
      interfaces: [{ linkType: 1, snaplen: 128, tsresol: 3 }],
    });
    const bPackets = packetsOf(20, { seed: 9, start: 1_767_230_000, comments: true }).map((p) => ({
      ...p,
      data: p.data.subarray(0, 128),
    }));
    for (const p of bPackets) await b.write(p);
    await b.close();
    await writeFile(file, Buffer.concat([await readFile(first), await readFile(second)]));
    return [aPackets, bPackets];
  }

  it('reads sections, interfaces, resolutions, offsets, comments, names and statistics as tshark does', async () => {
    const file = join(dir, 'two-sections.pcapng');
    const [aPackets = [], bPackets = []] = await twoSections(file);
    const { result, packets } = await readAll(file);
    expect(result.warnings).toEqual([]);
    expect(result.packets).toBe(60);
    expect(result.info).toMatchObject({
      format: 'pcapng',
      littleEndian: true,
      sections: 2,
      hardware: 'test rig',
      os: 'Linux',
      application: 'tripcap',
      versionMajor: 1,
      versionMinor: 0,
      names: [
        { address: '192.0.2.1', names: ['gateway.example', 'gw'] },
        { address: '2001:db8::1', names: ['v6.example'] },
      ],
      interfaceStats: [
        { interfaceId: 0, interfaceIndex: 0, received: 1234, dropped: 5 },
        { interfaceId: 2, interfaceIndex: 2, received: 2 ** 40 },
      ],
    });
    expect(result.info.interfaces).toEqual([
      {
        linkType: 1,
        snaplen: 262144,
        name: 'eth0',
        description: 'the uplink',
        tsUnitNanos: 1000,
        tsUnitsPerSecond: 1e6,
        section: 0,
        interfaceId: 0,
      },
      { linkType: 276, snaplen: 0, name: 'any', tsUnitNanos: 1, tsUnitsPerSecond: 1e9, section: 0, interfaceId: 1 },
      {
        linkType: 101,
        snaplen: 0,
        name: 'tun0',
        tsUnitNanos: 1e9 / 2 ** 20,
        tsUnitsPerSecond: 2 ** 20,
        tsOffsetSeconds: -3600,
        section: 0,
        interfaceId: 2,
      },
      { linkType: 1, snaplen: 128, tsUnitNanos: 1e6, tsUnitsPerSecond: 1e3, section: 1, interfaceId: 0 },
    ]);
    const comments = [...aPackets, ...bPackets].flatMap((p) => (p.comment ? [p.comment] : []));
    expect(result.info.comments).toEqual([
      'first section',
      ...comments.slice(0, 8),
      'second section, big-endian',
      ...comments.slice(8),
    ]);
    expect(packets.slice(0, 3).map((p) => [p.interfaceId, p.interfaceIndex, p.linkType])).toEqual([
      [0, 0, 1],
      [1, 1, 276],
      [2, 2, 101],
    ]);
    expect(packets[40]).toMatchObject({ interfaceId: 0, interfaceIndex: 3, linkType: 1 });
    expect(packets.map((p) => p.hex)).toEqual(
      [...aPackets, ...bPackets].map((p) => Buffer.from(p.data).toString('hex')),
    );
    expect(comparable(packets, result.info)).toEqual(await tsharkSees(file));
    // microseconds on interface 0, nanoseconds on 1, 2^-20 s with an offset on 2, milliseconds in section 2
    expect(packets[1]?.time).toBe(epochString(aPackets[1]?.seconds ?? 0, aPackets[1]?.nanos ?? 0));
    expect((await capinfos(file)).packets).toBe(60);

    const bytes = await readFile(file);
    for (const chunk of [1, 5, 1000]) expect(await readBytes(bytes, chunk)).toEqual({ result, packets });
  });

  it('reads simple and obsolete packet blocks and skips blocks it does not know, as tshark does', async () => {
    const b = new BlockBuilder();
    const data = frames(6, 7).map((f) => Buffer.concat([f, Buffer.alloc(200, 0xab)]));
    const d = (i: number) => data[i] ?? Buffer.alloc(0);
    const file = join(dir, 'blocks.pcapng');
    await writeFile(
      file,
      Buffer.concat([
        b.shb([[1, 'crafted\0']]), // a NUL-terminated comment, as some writers do
        b.idb(1, 100, [[2, 'eth0']]),
        b.spb(d(0).length, d(0).subarray(0, Math.min(100, d(0).length))),
        b.block(0x00000bad, Buffer.from('custom block body')),
        b.block(0x0000000a, Buffer.alloc(16)), // decryption secrets
        b.block(0x80000001, Buffer.alloc(0)), // local use
        b.opb(0, 0x6000, 0x12345678, d(1), d(1).length + 10),
        b.epb(0, 0x6000, 0x22345678, d(2), d(2).length, [
          [2, Buffer.alloc(4)], // epb_flags
          [1, 'second option is the comment'],
        ]),
        b.idb(113, 0, [[9, Uint8Array.of(0x80 | 25)]]),
        b.epb(1, 0x6000, 0x32345678, d(3)),
        b.spb(90, d(4).subarray(0, 90)),
      ]),
    );
    const { result, packets } = await readAll(file);
    expect(result.packets).toBe(5);
    expect(result.truncated).toBe(false);
    expect(result.warnings).toEqual([]);
    expect(result.info.comments).toEqual(['crafted', 'second option is the comment']);
    expect(packets[0]).toMatchObject({ time: '0.000000000', capturedLength: 100, originalLength: d(0).length });
    expect(packets[1]).toMatchObject({ capturedLength: d(1).length, originalLength: d(1).length + 10 });
    expect(packets[2]?.comment).toBe('second option is the comment');
    expect(packets[3]).toMatchObject({ interfaceId: 1, linkType: 113 });
    expect(packets[4]).toMatchObject({ capturedLength: 90, originalLength: 90 });
    // tshark shows a custom block as a frame of its own ("pcapng" in -V): not a packet; and no time for an SPB
    const oracle = await tsharkSees(file, ['-Y', 'eth or sll']);
    expect(comparable(packets, result.info)).toEqual(
      oracle.map((p) => (p.time === '' ? { ...p, time: '0.000000000' } : p)),
    );
  });

  it('assumes microseconds, with a warning, for an impossible timestamp resolution', async () => {
    const b = new BlockBuilder();
    const bytes = Buffer.concat([
      b.shb(),
      b.idb(1, 0, [[9, Uint8Array.of(20)]]), // 10^-20 s: 2^64 units would not reach a second
      b.epb(0, 0, 2_500_000, Buffer.alloc(60)),
    ]);
    const { result, packets } = await readBytes(bytes, 64);
    expect(packets[0]?.time).toBe('2.500000000');
    expect(result.warnings).toEqual([expect.stringMatching(/impossible timestamp resolution.*microseconds assumed/)]);
    expect(result.truncated).toBe(false);
  });

  it('stops at a block whose lengths are wrong, keeping the packets before it', async () => {
    const b = new BlockBuilder(false);
    const head = Buffer.concat([
      b.shb(),
      b.idb(1, 0),
      b.epb(0, 1, 2, Buffer.alloc(60)),
      b.epb(0, 1, 3, Buffer.alloc(61)),
    ]);
    const epb = b.epb(0, 1, 4, Buffer.alloc(62));
    const mismatch = Buffer.from(epb);
    mismatch.writeUInt32BE(epb.length + 4, epb.length - 4);
    const notMultiple = Buffer.from(epb);
    notMultiple.writeUInt32BE(epb.length - 2, 4);
    const tooShort = Buffer.from(epb);
    tooShort.writeUInt32BE(8, 4);
    const zero = Buffer.alloc(64);
    const caplenTooBig = Buffer.from(epb);
    caplenTooBig.writeUInt32BE(1000, 20);
    const unknownInterface = b.epb(7, 1, 4, Buffer.alloc(62));
    const huge = Buffer.from(epb);
    huge.writeUInt32BE(0xfffffffc, 4);
    const cases: Array<[string, Buffer, RegExp]> = [
      ['mismatched lengths', mismatch, new RegExp(`ends with length ${epb.length + 4}, not the ${epb.length}`)],
      ['a length not a multiple of 4', notMultiple, new RegExp(`length ${epb.length - 2}, not a multiple of 4`)],
      ['a length below the minimum', tooShort, /length 8, less than the minimum 32/],
      ['zeros', zero, /type 0x0\) has length 0, less than the minimum 12/],
      [
        'a captured length beyond the block',
        caplenTooBig,
        new RegExp(`claims 1000 captured bytes in a block of ${epb.length}`),
      ],
      ['an undeclared interface', unknownInterface, /interface 7, but the section has 1 interface/],
      ['a huge length', huge, /more than the limit of 67108864 bytes/],
    ];
    for (const [name, bad, message] of cases) {
      const bytes = Buffer.concat([head, bad, b.epb(0, 1, 5, Buffer.alloc(10))]);
      const { result, packets } = await readBytes(bytes, 4096);
      expect(packets, name).toHaveLength(2);
      expect(result.truncated, name).toBe(true);
      expect(result.warnings, name).toEqual([expect.stringMatching(message)]);
      expect(result.warnings[0], name).toMatch(/corrupt from there on; stopped reading/);
    }
  });

  it('reads a file cut in the middle of a block as the packets before it, as tshark does', async () => {
    const file = join(dir, 'cut-source.pcapng');
    await twoSections(file);
    const whole = await readFile(file);
    for (const cut of [whole.length - 3, whole.length - 40, Math.floor(whole.length / 2)]) {
      const cutFile = join(dir, `cut-${cut}.pcapng`);
      await writeFile(cutFile, whole.subarray(0, cut));
      const { result, packets } = await readAll(cutFile);
      expect(result.truncated).toBe(true);
      expect(result.warnings).toEqual([expect.stringMatching(/ends in the middle of a block/)]);
      const oracle = await tsharkSees(cutFile);
      expect(comparable(packets, result.info)).toEqual(oracle);
    }
  });

  it('grows its buffer for a block larger than it, shrinks back, and stops at one beyond maxBlockBytes', async () => {
    const file = join(dir, 'jumbo.pcapng');
    const writer = createPcapngWriter(file, { interfaces: [{ linkType: 1 }] });
    const sizes = [60, 100_000, 60, 200_000, 60];
    for (const [i, size] of sizes.entries()) {
      await writer.write({ seconds: i, nanos: 0, data: Buffer.alloc(size, i + 1) });
    }
    await writer.close();
    const seenSizes: number[] = [];
    const result = await readCaptureFile(
      file,
      (p) => {
        seenSizes.push(p.capturedLength);
        expect(p.data.every((v) => v === seenSizes.length)).toBe(true);
      },
      { bufferBytes: 4096 },
    );
    expect(seenSizes).toEqual(sizes);
    expect(result.warnings).toEqual([]);

    const limited = await readAll(file, { bufferBytes: 4096, maxBlockBytes: 150_000 });
    expect(limited.packets.map((p) => p.capturedLength)).toEqual([60, 100_000, 60]);
    expect(limited.result.warnings).toEqual([expect.stringMatching(/more than the limit of 150000 bytes/)]);

    const classic = join(dir, 'jumbo.pcap');
    const pcap = createPcapWriter(classic, { linkType: 1 });
    for (const [i, size] of sizes.entries()) await pcap.write({ seconds: i, nanos: 0, data: Buffer.alloc(size, i) });
    await pcap.close();
    const small = await readAll(classic, { bufferBytes: 4096 });
    expect(small.packets.map((p) => p.capturedLength)).toEqual(sizes);
    expect(small.result.warnings).toEqual([]);
  });
});

describe('reading', () => {
  let file: string;
  beforeAll(async () => {
    file = join(dir, 'reading.pcapng');
    const writer = createPcapngWriter(file, { interfaces: [{ linkType: 1 }, { linkType: 113 }] });
    for (const p of packetsOf(500, { interfaces: 2 })) await writer.write(p);
    await writer.close();
  });

  it('hands out bytes, view and offset that hold the same bytes as data, and data made once per packet', async () => {
    let checked = 0;
    await readCaptureFile(
      file,
      (p) => {
        const bytes = p.bytes as Uint8Array;
        const offset = p.offset as number;
        expect(Buffer.from(bytes.subarray(offset, offset + p.capturedLength)).equals(p.data)).toBe(true);
        expect(p.data).toBe(p.data);
        if (p.capturedLength >= 4) expect(p.view?.getUint32(offset)).toBe(Buffer.from(p.data).readUInt32BE(0));
        checked++;
      },
      { bufferBytes: 8192 },
    );
    expect(checked).toBe(500);
  });

  it('reads a Node Readable the same as the file, and announces each interface', async () => {
    const interfaces: Array<[number, number]> = [];
    const onInterface = (iface: { linkType: number }, index: number) => interfaces.push([index, iface.linkType]);
    const fromFile = await readAll(file, { onInterface });
    const packets: Seen[] = [];
    const result = await readCaptureStream(createReadStream(file, { highWaterMark: 1000 }), (p) =>
      packets.push(see(p)),
    );
    expect({ result, packets }).toEqual(fromFile);
    expect(interfaces).toEqual([
      [0, 1],
      [1, 113],
    ]);
  });

  it('reads the same packets whatever the buffer size, across many refills of both buffers', async () => {
    const big = join(dir, 'refills.pcap');
    const writer = createPcapWriter(big, { linkType: 1 });
    const list = packetsOf(3000, { seed: 11 });
    for (const p of list) await writer.write(p);
    await writer.close();
    const digest = async (options: ReadOptions, stream = false) => {
      const hash = createHash('sha256');
      let count = 0;
      const onPacket = (p: RawPacket) => {
        hash.update(`${p.seconds}.${p.nanos}/${p.originalLength}/`);
        hash.update(p.data);
        count++;
      };
      const result = stream
        ? await readCaptureStream(createReadStream(big, { highWaterMark: 777 }), onPacket, options)
        : await readCaptureFile(big, onPacket, options);
      expect(result.warnings).toEqual([]);
      return `${count} ${hash.digest('hex')}`;
    };
    const expected = await digest({});
    expect(expected).toMatch(/^3000 /);
    for (const bufferBytes of [4096, 5000, 9000, 20_000, 65_536]) {
      expect(await digest({ bufferBytes }), `${bufferBytes}`).toBe(expected);
      expect(await digest({ bufferBytes }, true), `${bufferBytes}, stream`).toBe(expected);
    }
  });

  it('reads a named pipe given as a path (no positional reads there)', async () => {
    const fifo = join(dir, 'capture.fifo');
    await execFileAsync('mkfifo', [fifo]);
    const [writing, reading] = [writeFile(fifo, await readFile(file)), readAll(fifo)];
    await writing;
    expect(await reading).toEqual(await readAll(file));
  });

  it('stops after maxPackets', async () => {
    const { result, packets } = await readAll(file, { maxPackets: 7 });
    expect(packets).toHaveLength(7);
    expect(result).toMatchObject({ packets: 7, truncated: false });
    const none = await readAll(file, { maxPackets: 0 });
    expect(none.packets).toEqual([]);
    expect(none.result.info.interfaces).toHaveLength(2); // declared before the first packet
    const classic = join(dir, 'reading.pcap');
    const writer = createPcapWriter(classic, { linkType: 1 });
    for (const p of packetsOf(20)) await writer.write(p);
    await writer.close();
    expect((await readAll(classic, { maxPackets: 0 })).packets).toEqual([]);
    expect((await readAll(classic, { maxPackets: 19 })).packets).toHaveLength(19);
    const stream = createReadStream(file, { highWaterMark: 512 });
    await readCaptureStream(stream, () => {}, { maxPackets: 1 });
    expect(stream.destroyed).toBe(true);
  });

  it('rejects when the signal aborts, before or during the reading', async () => {
    await expect(readCaptureFile(file, () => {}, { signal: AbortSignal.abort() })).rejects.toThrow(/abort/i);
    const controller = new AbortController();
    let seen = 0;
    const reading = readCaptureFile(
      file,
      () => {
        if (++seen === 10) controller.abort(new Error('enough'));
      },
      { signal: controller.signal, bufferBytes: 4096 },
    );
    await expect(reading).rejects.toThrow('enough');
    expect(seen).toBeLessThan(500);
  });

  it('lets an error thrown by the callback through unchanged', async () => {
    const boom = new Error('consumer failed');
    await expect(
      readCaptureFile(file, () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    await expect(
      readCaptureStream(Readable.from([Buffer.from('x')]).setEncoding('utf8'), () => {}),
    ).rejects.toBeInstanceOf(TypeError);
  });
});

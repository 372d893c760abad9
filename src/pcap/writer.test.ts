import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCaptureFile } from './reader.js';
import { capinfos, epochString, tsharkFields } from './tools.test-helper.js';
import type { RawPacket, ReadResult } from './types.js';
import { createPcapngWriter, createPcapWriter, type WritePacket } from './writer.js';

const execFileAsync = promisify(execFile);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tripcap-writer-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function packets(count: number, options: { interfaces?: number; comments?: boolean } = {}): WritePacket[] {
  return Array.from({ length: count }, (_, i) => {
    const data = Buffer.alloc([60, 1514, 98, 0, 342][i % 5] ?? 60);
    for (let b = 0; b < data.length; b++) data[b] = (i * 31 + b) & 0xff;
    const p: WritePacket = {
      seconds: 1_767_225_600 + i,
      nanos: (i * 7_654_321_001) % 1e9,
      data,
      originalLength: data.length + (i % 3),
      interfaceId: i % (options.interfaces ?? 1),
    };
    if (options.comments && i % 4 === 0) p.comment = `comment ${i}`;
    return p;
  });
}

interface Read {
  result: ReadResult;
  packets: Array<{
    interfaceId: number;
    time: string;
    capturedLength: number;
    originalLength: number;
    hex: string;
    comment?: string;
  }>;
}

async function read(file: string): Promise<Read> {
  const seen: Read['packets'] = [];
  const result = await readCaptureFile(file, (p: RawPacket) => {
    const s: Read['packets'][number] = {
      interfaceId: p.interfaceId,
      time: epochString(p.seconds, p.nanos),
      capturedLength: p.capturedLength,
      originalLength: p.originalLength,
      hex: Buffer.from(p.data).toString('hex'),
    };
    if (p.comment !== undefined) s.comment = p.comment;
    seen.push(s);
  });
  return { result, packets: seen };
}

async function tool(cmd: string, args: string[]): Promise<void> {
  await execFileAsync(cmd, args, { timeout: 60_000 });
}

describe('classic pcap writer', () => {
  it('writes the same bytes to a stream as to a file, across many buffer hand-offs, and capinfos agrees', async () => {
    const file = join(dir, 'many.pcap');
    const list = packets(500);
    const toFile = createPcapWriter(file, { linkType: 1, bufferBytes: 4096 });
    const sink = new PassThrough();
    const chunks: Buffer[] = [];
    sink.on('data', (c: Buffer) => chunks.push(c));
    const toStream = createPcapWriter(sink, { linkType: 1, bufferBytes: 4096 });
    for (const p of list) {
      await toFile.write(p);
      await toStream.write(p);
    }
    await toFile.close();
    await toStream.close();
    const bytes = await readFile(file);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    expect(sink.writableEnded).toBe(true);
    expect(toFile.packets).toBe(500);
    expect(toFile.bytes).toBe(bytes.length);
    const info = await capinfos(file);
    expect(info).toMatchObject({ packets: 500, fileType: 'pcap', encapsulation: 'ether', precision: 'microseconds' });
    expect(info.dataBytes).toBe(list.reduce((n, p) => n + (p.originalLength ?? 0), 0));
  });

  it('cuts packets to the snaplen and writes capturedLength bytes, as tshark reads them', async () => {
    const file = join(dir, 'snap.pcap');
    const writer = createPcapWriter(file, { linkType: 1, snaplen: 100, nanosecond: true, littleEndian: false });
    const data = Buffer.alloc(300, 7);
    await writer.write({ seconds: 5, nanos: 123_456_789, data });
    await writer.write({ seconds: 6, nanos: 1, data, capturedLength: 40 });
    await writer.write({ seconds: 7, nanos: 2, data, capturedLength: 40, originalLength: 1500 });
    await writer.close();
    const rows = await tsharkFields(file, ['frame.time_epoch', 'frame.cap_len', 'frame.len']);
    expect(rows).toEqual([
      ['5.123456789', '100', '300'],
      ['6.000000001', '40', '40'],
      ['7.000000002', '40', '1500'],
    ]);
    const { result } = await read(file);
    expect(result.info).toMatchObject({ littleEndian: false, nanosecond: true, interfaces: [{ snaplen: 100 }] });
  });

  it('rejects a packet it cannot write and stays usable', async () => {
    const file = join(dir, 'invalid.pcap');
    const writer = createPcapWriter(file, { linkType: 1 });
    const data = Buffer.alloc(10);
    await expect(writer.write({ seconds: -1, nanos: 0, data })).rejects.toThrow(RangeError);
    await expect(writer.write({ seconds: 2 ** 32, nanos: 0, data })).rejects.toThrow(/seconds/);
    await expect(writer.write({ seconds: 1, nanos: 1e9, data })).rejects.toThrow(/nanos/);
    await expect(writer.write({ seconds: 1, nanos: 0.5, data })).rejects.toThrow(/nanos/);
    await expect(writer.write({ seconds: 1, nanos: 0, data, capturedLength: 11 })).rejects.toThrow(/capturedLength/);
    await expect(writer.write({ seconds: 1, nanos: 0, data, originalLength: -1 })).rejects.toThrow(/originalLength/);
    await writer.write({ seconds: 1, nanos: 0, data });
    await writer.close();
    expect((await read(file)).result.packets).toBe(1);
    await expect(writer.write({ seconds: 1, nanos: 0, data })).rejects.toThrow(/closed/);
  });

  it('reports a file it cannot open, and a stream that fails', async () => {
    const writer = createPcapWriter(join(dir, 'no', 'such', 'dir.pcap'), { linkType: 1, bufferBytes: 4096 });
    await writer.write({ seconds: 1, nanos: 0, data: Buffer.alloc(60) });
    await expect(writer.close()).rejects.toThrow(/ENOENT/);

    const failing = new Writable({
      write(_chunk, _encoding, callback) {
        callback(new Error('disk full'));
      },
    });
    failing.on('error', () => {});
    const streamWriter = createPcapWriter(failing, { linkType: 1, bufferBytes: 4096 });
    const big = Buffer.alloc(3000);
    await streamWriter.write({ seconds: 1, nanos: 0, data: big });
    await expect(streamWriter.write({ seconds: 1, nanos: 0, data: big })).rejects.toThrow('disk full');
    await expect(streamWriter.write({ seconds: 1, nanos: 0, data: big })).rejects.toThrow('disk full');
    await expect(streamWriter.close()).rejects.toThrow('disk full');
  });

  it('waits for a slow stream: a write that fills the buffer resolves once the reader takes the bytes', async () => {
    const sink = new PassThrough({ highWaterMark: 1024 });
    const writer = createPcapWriter(sink, { linkType: 1, bufferBytes: 4096 });
    let pending: Promise<void> | undefined;
    for (let i = 0; i < 100 && !pending; i++) {
      const write = writer.write({ seconds: 1, nanos: 0, data: Buffer.alloc(1000) });
      const settled = await Promise.race([write.then(() => true), new Promise((r) => setTimeout(() => r(false), 20))]);
      if (!settled) pending = write;
    }
    expect(pending).toBeDefined();
    sink.resume();
    await pending;
    await writer.close();
  });

  it('reads a tcpdump-style file and writes it back byte for byte', async () => {
    const file = join(dir, 'original.pcap');
    const copy = join(dir, 'copy.pcap');
    const writer = createPcapWriter(file, { linkType: 1 });
    for (const p of packets(50)) await writer.write(p);
    await writer.close();
    const again = createPcapWriter(copy, { linkType: 1 });
    const writes: Array<Promise<void>> = [];
    await readCaptureFile(file, (p) => {
      writes.push(again.write(p));
    });
    await Promise.all(writes);
    await again.close();
    expect((await readFile(copy)).equals(await readFile(file))).toBe(true);
  });
});

describe('pcapng writer', () => {
  it('writes sections tshark reads unchanged: interfaces, resolutions, comments, timestamps to the ns', async () => {
    const file = join(dir, 'written.pcapng');
    const writer = createPcapngWriter(file, {
      comment: 'section comment',
      os: 'Linux',
      interfaces: [
        { linkType: 1, name: 'eth0', description: 'uplink', snaplen: 262144 },
        { linkType: 276, name: 'any', tsresol: 9 },
      ],
    });
    const list = packets(30, { interfaces: 2, comments: true });
    for (const p of list) await writer.write(p);
    await writer.close();
    const rows = await tsharkFields(file, [
      'frame.interface_id',
      'frame.interface_name',
      'frame.time_epoch',
      'frame.cap_len',
      'frame.len',
      'frame.comment',
    ]);
    expect(rows).toEqual(
      list.map((p) => [
        String(p.interfaceId),
        p.interfaceId ? 'any' : 'eth0',
        epochString(p.seconds, p.interfaceId ? p.nanos : p.nanos - (p.nanos % 1000)),
        String(p.data.length),
        String(p.originalLength),
        p.comment ?? '',
      ]),
    );
    const info = await capinfos(file);
    expect(info).toMatchObject({ packets: 30, fileType: 'pcapng', application: 'tripcap', comment: 'section comment' });
  });

  it('round-trips read → write → read with interfaces, comments, names and statistics', async () => {
    const file = join(dir, 'round-1.pcapng');
    const copy = join(dir, 'round-2.pcapng');
    const writer = createPcapngWriter(file, {
      littleEndian: false,
      interfaces: [{ linkType: 1, tsresol: 9 }, { linkType: 101 }],
    });
    for (const p of packets(40, { interfaces: 2, comments: true })) await writer.write(p);
    await writer.writeNameRecords([{ address: 'fe80::1', names: ['router'] }]);
    await writer.writeInterfaceStatistics(1, { received: 40, dropped: 0 });
    await writer.close();
    const first = await read(file);

    const again = createPcapngWriter(copy, {
      interfaces: first.result.info.interfaces.map((i) => ({
        linkType: i.linkType,
        tsresol: i.tsUnitNanos === 1 ? 9 : 6,
      })),
    });
    const writes: Array<Promise<void>> = [];
    await readCaptureFile(file, (p) => {
      writes.push(again.write(p));
    });
    await Promise.all(writes);
    await again.writeNameRecords(first.result.info.names);
    const stats = first.result.info.interfaceStats[0];
    await again.writeInterfaceStatistics(stats?.interfaceId ?? 0, {
      received: stats?.received,
      dropped: stats?.dropped,
    });
    await again.close();
    const second = await read(copy);
    expect(second.packets).toEqual(first.packets);
    expect(second.result.info.names).toEqual([{ address: 'fe80::1', names: ['router'] }]);
    expect(second.result.info.interfaceStats).toEqual([
      { interfaceId: 1, interfaceIndex: 1, received: 40, dropped: 0 },
    ]);
    expect(second.result.info.comments).toEqual(first.result.info.comments);
  });

  it('rejects undeclared interfaces, impossible resolutions and unparseable addresses', async () => {
    const writer = createPcapngWriter(new PassThrough().resume(), { interfaces: [{ linkType: 1 }] });
    const data = Buffer.alloc(10);
    await expect(writer.write({ seconds: 1, nanos: 0, data, interfaceId: 1 })).rejects.toThrow(/interface 1/);
    expect(() => writer.addInterface({ linkType: 1, tsresol: 20 })).toThrow(/if_tsresol/);
    await expect(writer.writeNameRecords([{ address: 'example.com', names: ['x'] }])).rejects.toThrow(/address/);
    await expect(writer.writeNameRecords([{ address: '1:2:3', names: ['x'] }])).rejects.toThrow(/address/);
    await expect(writer.writeInterfaceStatistics(3, {})).rejects.toThrow(/interface 3/);
    await writer.close();
  });
});

describe('interoperability with editcap and mergecap', () => {
  it('pcap → editcap -F pcapng, and pcapng → editcap -F pcap, read back as written', async () => {
    const pcap = join(dir, 'interop.pcap');
    const writer = createPcapWriter(pcap, { linkType: 1 });
    const list = packets(40);
    for (const p of list) await writer.write(p);
    await writer.close();
    const converted = join(dir, 'interop-from-pcap.pcapng');
    await tool('editcap', ['-F', 'pcapng', pcap, converted]);
    const original = await read(pcap);
    const viaPcapng = await read(converted);
    expect(viaPcapng.result.info.format).toBe('pcapng');
    expect(viaPcapng.packets).toEqual(original.packets);

    const ng = join(dir, 'interop.pcapng');
    const ngWriter = createPcapngWriter(ng, { interfaces: [{ linkType: 1 }] });
    for (const p of list) await ngWriter.write({ ...p, comment: undefined });
    await ngWriter.close();
    const back = join(dir, 'interop-from-pcapng.pcap');
    await tool('editcap', ['-F', 'pcap', ng, back]);
    const viaPcap = await read(back);
    expect(viaPcap.result.info.format).toBe('pcap');
    expect(viaPcap.packets).toEqual((await read(ng)).packets);
    expect(viaPcap.packets).toEqual(original.packets);

    const nsPcap = join(dir, 'interop-ns.pcap');
    const nsWriter = createPcapWriter(nsPcap, { linkType: 1, nanosecond: true });
    for (const p of list) await nsWriter.write(p);
    await nsWriter.close();
    const nsNg = join(dir, 'interop-ns.pcapng');
    await tool('editcap', ['-F', 'pcapng', nsPcap, nsNg]);
    const ns = await read(nsNg);
    expect(ns.result.info.interfaces[0]?.tsUnitNanos).toBe(1);
    expect(ns.packets).toEqual((await read(nsPcap)).packets);
  });

  it('mergecap of two writers’ files: several interfaces, read as tshark reads them', async () => {
    const a = join(dir, 'merge-a.pcapng');
    const b = join(dir, 'merge-b.pcap');
    const merged = join(dir, 'merged.pcapng');
    const wa = createPcapngWriter(a, { interfaces: [{ linkType: 1, name: 'eth0' }] });
    const wb = createPcapWriter(b, { linkType: 113, nanosecond: true });
    for (const p of packets(20)) await wa.write(p);
    for (const p of packets(20)) await wb.write({ ...p, nanos: (p.nanos + 500) % 1e9 });
    await wa.close();
    await wb.close();
    await tool('mergecap', ['-F', 'pcapng', '-w', merged, a, b]);
    const { result, packets: seen } = await read(merged);
    expect(result.info.interfaces.map((i) => i.linkType)).toEqual([1, 113]);
    const rows = await tsharkFields(merged, ['frame.interface_id', 'frame.time_epoch', 'frame.cap_len', 'frame.len']);
    expect(
      seen.map((p) => [String(p.interfaceId), p.time, String(p.capturedLength), String(p.originalLength)]),
    ).toEqual(rows);
    expect(seen).toHaveLength(40);
  });
});

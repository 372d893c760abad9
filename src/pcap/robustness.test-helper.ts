import { readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { readCaptureFile, readCaptureStream } from './reader.js';
import { BlockBuilder } from './tools.test-helper.js';
import { CaptureFormatError, type RawPacket, type ReadOptions, type ReadResult } from './types.js';
import { createPcapngWriter, createPcapWriter } from './writer.js';

/**
 * The robustness run, in a worker thread so the test can kill it if a read never returns (a synchronous loop cannot
 * be interrupted otherwise). Makes seed files of both formats, derives thousands of mutated and cut files from them
 * with a seeded PRNG, reads each, and reports to the parent before and after every case.
 *
 * Messages: { type: 'start', id, what } · { type: 'fail', id, what, error } · { type: 'end', summary }.
 */

export interface RobustnessSummary {
  cases: number;
  results: number;
  formatErrors: number;
  truncated: number;
  packets: number;
  slowestMs: number;
  slowest: string;
  maxArrayBuffersMiB: number;
  maxHeapMiB: number;
  byKind: Record<string, number>;
}

const CASE_TIMEOUT_MS = 5_000;

/** xorshift32: deterministic across runs and machines. */
function prng(seed: number) {
  let x = seed >>> 0 || 1;
  const next = () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
  return {
    u32: next,
    below: (n: number) => next() % n,
    pick: <T>(list: readonly T[]): T => list[next() % list.length] as T,
  };
}

async function collect(write: (target: string) => Promise<void>): Promise<Buffer> {
  const file = join(tmpdir(), `tripcap-seed-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    await write(file);
    return await readFile(file);
  } finally {
    await rm(file, { force: true });
  }
}

function frame(i: number, size: number): Buffer {
  const data = Buffer.alloc(size);
  for (let b = 0; b < size; b++) data[b] = (i * 13 + b * 7) & 0xff;
  return data;
}

async function seeds(): Promise<Array<{ name: string; bytes: Buffer; pcapng: boolean }>> {
  const sizes = [60, 0, 1, 14, 98, 342, 61, 1514, 62, 63, 64, 200];
  const classicLe = await collect(async (file) => {
    const w = createPcapWriter(file, { linkType: 1, snaplen: 65535 });
    for (const [i, size] of sizes.entries())
      await w.write({ seconds: 1_700_000_000 + i, nanos: i * 1000, data: frame(i, size) });
    await w.close();
  });
  const classicBeNs = await collect(async (file) => {
    const w = createPcapWriter(file, { linkType: 276, littleEndian: false, nanosecond: true });
    for (const [i, size] of sizes.slice(0, 6).entries()) {
      await w.write({ seconds: 1_700_000_000, nanos: i * 7, data: frame(i, size), originalLength: size + 4 });
    }
    await w.close();
  });
  const ngRich = await collect(async (file) => {
    const w = createPcapngWriter(file, {
      comment: 'seed',
      interfaces: [
        { linkType: 1, name: 'eth0', snaplen: 1600 },
        { linkType: 101, tsresol: 9, tsoffset: 10 },
        { linkType: 113, tsresol: 0x80 | 20 },
      ],
    });
    for (const [i, size] of sizes.entries()) {
      await w.write({
        seconds: 1_700_000_000 + i,
        nanos: i * 999,
        data: frame(i, size),
        interfaceId: i % 3,
        ...(i % 4 === 0 ? { comment: `c${i}` } : {}),
      });
    }
    await w.writeNameRecords([
      { address: '192.0.2.1', names: ['a.example'] },
      { address: '2001:db8::1', names: ['b.example', 'c'] },
    ]);
    await w.writeInterfaceStatistics(0, { received: 12, dropped: 1, seconds: 1_700_000_100, nanos: 0 });
    await w.close();
  });
  const b = new BlockBuilder(false);
  const ngCrafted = Buffer.concat([
    b.shb([[1, 'big-endian section']]),
    b.idb(1, 100, [[2, 'x']]),
    b.spb(150, frame(1, 100)),
    b.opb(0, 1, 2, frame(2, 40), 50),
    b.block(0x00000bad, Buffer.from('custom')),
    b.epb(0, 3, 4, frame(3, 30), 30, [[1, 'epb comment']]),
  ]);
  const ngSmall = await collect(async (file) => {
    const w = createPcapngWriter(file, { interfaces: [{ linkType: 1 }] });
    for (const [i, size] of [60, 14, 98].entries()) await w.write({ seconds: i, nanos: 0, data: frame(i, size) });
    await w.close();
  });
  return [
    { name: 'classic-le', bytes: classicLe, pcapng: false },
    { name: 'classic-be-ns', bytes: classicBeNs, pcapng: false },
    { name: 'pcapng-rich', bytes: Buffer.concat([ngRich, ngCrafted]), pcapng: true },
    { name: 'pcapng-small', bytes: ngSmall, pcapng: true },
  ];
}

/** Offsets of the length fields of each record (classic) or block (pcapng, both copies). */
function lengthFields(bytes: Buffer, pcapng: boolean): number[] {
  const fields: number[] = [];
  if (!pcapng) {
    const le = bytes.readUInt32LE(0) === 0xa1b2c3d4 || bytes.readUInt32LE(0) === 0xa1b23c4d;
    for (let pos = 24; pos + 16 <= bytes.length; ) {
      fields.push(pos + 8, pos + 12);
      pos += 16 + (le ? bytes.readUInt32LE(pos + 8) : bytes.readUInt32BE(pos + 8));
    }
    return fields;
  }
  let le = true;
  for (let pos = 0; pos + 12 <= bytes.length; ) {
    if (bytes.readUInt32LE(pos) === 0x0a0d0d0a) le = bytes.readUInt32LE(pos + 8) === 0x1a2b3c4d;
    const length = le ? bytes.readUInt32LE(pos + 4) : bytes.readUInt32BE(pos + 4);
    if (length < 12) break;
    fields.push(pos + 4, pos + length - 4);
    if (le ? bytes.readUInt32LE(pos) === 6 : bytes.readUInt32BE(pos) === 6) fields.push(pos + 20, pos + 24, pos + 8);
    pos += length;
  }
  return fields;
}

const INTERESTING = [
  0, 1, 3, 4, 8, 11, 12, 13, 16, 28, 31, 32, 0x7fff, 0xffff, 0x10000, 262_144, 262_145, 0x3ffffff, 0x4000000,
  0x7ffffffc, 0x7fffffff, 0x80000000, 0xfffffff0, 0xfffffffc, 0xffffffff,
];

interface Case {
  kind: string;
  what: string;
  bytes: Buffer;
}

function* cases(all: Awaited<ReturnType<typeof seeds>>): Generator<Case> {
  const random = prng(0xc0ffee);
  for (const seed of all) {
    const { bytes } = seed;
    // every truncation of the small seeds, a stride through the larger ones
    const stride = bytes.length <= 1200 ? 1 : 3;
    for (let cut = 0; cut < bytes.length; cut += stride) {
      yield { kind: 'cut', what: `${seed.name} cut at ${cut}`, bytes: bytes.subarray(0, cut) };
    }
    for (let n = 0; n < 600; n++) {
      const copy = Buffer.from(bytes);
      const flips = 1 + random.below(8);
      const at: number[] = [];
      for (let f = 0; f < flips; f++) {
        const bit = random.below(copy.length * 8);
        at.push(bit);
        copy[bit >> 3] = (copy[bit >> 3] as number) ^ (1 << (bit & 7));
      }
      yield { kind: 'bitflip', what: `${seed.name} bits ${at.join(',')} flipped`, bytes: copy };
    }
    for (let n = 0; n < 300; n++) {
      const copy = Buffer.from(bytes);
      const pos = random.below(copy.length);
      const length = 1 + random.below(16);
      const value = random.pick([0x00, 0xff]);
      copy.fill(value, pos, Math.min(pos + length, copy.length));
      yield { kind: 'overwrite', what: `${seed.name} ${length} bytes at ${pos} set to ${value}`, bytes: copy };
    }
    const fields = lengthFields(bytes, seed.pcapng);
    for (const field of fields) {
      for (const value of INTERESTING) {
        const copy = Buffer.from(bytes);
        copy.writeUInt32LE(value >>> 0, field);
        yield { kind: 'length', what: `${seed.name} length field at ${field} = ${value} (LE)`, bytes: copy };
        const swapped = Buffer.from(bytes);
        swapped.writeUInt32BE(value >>> 0, field);
        yield { kind: 'length', what: `${seed.name} length field at ${field} = ${value} (BE)`, bytes: swapped };
      }
    }
    for (let n = 0; n < 150; n++) {
      const copy = Buffer.from(bytes);
      const field = random.pick(fields);
      const value = random.u32();
      copy.writeUInt32LE(value, field);
      yield { kind: 'length', what: `${seed.name} length field at ${field} = ${value} (random)`, bytes: copy };
    }
    for (let n = 0; n < 100; n++) {
      // splice: the header, then random slices of the file in random order
      const head = bytes.subarray(0, seed.pcapng ? 28 : 24);
      const parts = [head];
      for (let p = 0, count = 1 + random.below(6); p < count; p++) {
        const from = random.below(bytes.length);
        parts.push(bytes.subarray(from, from + random.below(300)));
      }
      yield { kind: 'splice', what: `${seed.name} spliced #${n}`, bytes: Buffer.concat(parts) };
    }
    for (let n = 0; n < 40; n++) {
      const garbage = Buffer.alloc(random.below(4000));
      for (let g = 0; g < garbage.length; g++) garbage[g] = random.below(256);
      const keep = random.below(bytes.length);
      yield {
        kind: 'garbage',
        what: `${seed.name} first ${keep} bytes + garbage`,
        bytes: Buffer.concat([bytes.subarray(0, keep), garbage]),
      };
    }
  }

  // blocks that try to make a reader spin: many tiny blocks, repeated sections, zero lengths, self-similar junk
  const b = new BlockBuilder();
  const shb = b.shb();
  const idb = b.idb(1, 0);
  yield {
    kind: 'loop',
    what: '100k empty unknown blocks',
    bytes: Buffer.concat([shb, idb, Buffer.concat(Array(100_000).fill(b.block(0x99, Buffer.alloc(0))))]),
  };
  yield { kind: 'loop', what: '20k section headers', bytes: Buffer.concat(Array(20_000).fill(shb)) };
  yield { kind: 'loop', what: '20k interfaces', bytes: Buffer.concat([shb, Buffer.concat(Array(20_000).fill(idb))]) };
  yield { kind: 'loop', what: 'zero-length block', bytes: Buffer.concat([shb, idb, Buffer.alloc(64)]) };
  yield { kind: 'loop', what: 'block of length 8', bytes: Buffer.concat([shb, b.u32(6), b.u32(8), b.u32(8)]) };
  yield {
    kind: 'loop',
    what: 'length 12 blocks, 100k',
    bytes: Buffer.concat([shb, Buffer.concat(Array(100_000).fill(Buffer.from('060000000c0000000c000000', 'hex')))]),
  };
  yield {
    kind: 'loop',
    what: 'classic: 100k zero-length records',
    bytes: Buffer.concat([
      Buffer.from('d4c3b2a1020004000000000000000000ffff000001000000', 'hex'),
      Buffer.alloc(16 * 100_000),
    ]),
  };
  const classicHeader = Buffer.from('d4c3b2a1020004000000000000000000ffffff0301000000', 'hex'); // snaplen 64 MiB - 1
  const hugeRecord = Buffer.alloc(16);
  hugeRecord.writeUInt32LE(64 * 1024 * 1024 - 32, 8);
  hugeRecord.writeUInt32LE(64 * 1024 * 1024 - 32, 12);
  yield {
    kind: 'loop',
    what: 'classic: a 64 MiB record claimed, 10 bytes there',
    bytes: Buffer.concat([classicHeader, hugeRecord, Buffer.alloc(10)]),
  };
  yield {
    kind: 'loop',
    what: 'pcapng: 64 MiB - 4 block claimed, 100 bytes there',
    bytes: Buffer.concat([shb, b.u32(6), b.u32(64 * 1024 * 1024 - 4), Buffer.alloc(100)]),
  };
  const nrbRecords = Buffer.concat(
    Array(5_000).fill(Buffer.from('0100090001020304610062000000000000000000', 'hex').subarray(0, 16)),
  );
  yield {
    kind: 'loop',
    what: 'NRB with 5000 records',
    bytes: Buffer.concat([shb, b.block(4, Buffer.concat([nrbRecords, Buffer.alloc(4)]))]),
  };
  const options = Buffer.concat(Array(10_000).fill(Buffer.from('01000000', 'hex')));
  yield {
    kind: 'loop',
    what: 'SHB with 10000 empty comments',
    bytes: Buffer.concat([
      b.block(0x0a0d0d0a, Buffer.concat([b.u32(0x1a2b3c4d), b.u16(1), b.u16(0), Buffer.alloc(8, 0xff), options])),
      idb,
    ]),
  };
}

async function readOne(
  c: Case,
  random: ReturnType<typeof prng>,
  index: number,
): Promise<ReadResult | CaptureFormatError> {
  let packets = 0;
  let bytes = 0;
  let interfaces = 0;
  const limit = Math.floor(c.bytes.length / 12) + 1;
  const options: ReadOptions = {
    onInterface: (_iface, i) => {
      if (i !== interfaces++) throw new Error(`interface index ${i}, expected ${interfaces - 1}`);
    },
  };
  if (random.below(2)) options.bufferBytes = 4096 * (1 + random.below(16));
  if (random.below(4) === 0) options.maxBlockBytes = 1024 + random.below(8192);
  const onPacket = (p: RawPacket) => {
    packets++;
    bytes += p.capturedLength;
    if (packets > limit) throw new Error(`more packets (${packets}) than the file can hold`);
    if (!Number.isInteger(p.nanos) || p.nanos < 0 || p.nanos >= 1e9) throw new Error(`nanos ${p.nanos}`);
    if (!Number.isFinite(p.seconds)) throw new Error(`seconds ${p.seconds}`);
    if (p.data.length !== p.capturedLength) throw new Error('data length differs from capturedLength');
    if ((p.offset ?? 0) + p.capturedLength > (p.bytes?.length ?? 0)) throw new Error('packet beyond its buffer');
    if ((p.interfaceIndex ?? 0) >= Math.max(interfaces, 1)) throw new Error(`interfaceIndex ${p.interfaceIndex}`);
  };
  let reading: Promise<ReadResult>;
  let file: string | undefined;
  if (index % 40 === 0) {
    file = join(tmpdir(), `tripcap-robust-${process.pid}-${index}`);
    await writeFile(file, c.bytes);
    reading = readCaptureFile(file, onPacket, options);
  } else {
    const chunk = random.pick([1, 3, 64, 1000, 1 << 20]);
    async function* chunks() {
      for (let at = 0; at < c.bytes.length; at += chunk) yield c.bytes.subarray(at, at + chunk);
    }
    reading = readCaptureStream(chunks(), onPacket, options);
  }
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      reading,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no result after ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS);
      }),
    ]);
    if (result.packets !== packets || result.capturedBytes !== bytes)
      throw new Error('result totals differ from the packets');
    if (result.info.interfaces.length !== interfaces) throw new Error('interfaces differ from onInterface');
    if (result.warnings.length > 51) throw new Error(`${result.warnings.length} warnings`);
    if (result.fileBytes > c.bytes.length) throw new Error('read more bytes than the file has');
    return result;
  } catch (err) {
    if (err instanceof CaptureFormatError) {
      if (packets > 0) throw new Error(`CaptureFormatError after ${packets} packets: ${err.message}`);
      return err;
    }
    throw err;
  } finally {
    clearTimeout(timer);
    if (file) await rm(file, { force: true });
  }
}

export async function runRobustness(post: (message: unknown) => void): Promise<RobustnessSummary> {
  const summary: RobustnessSummary = {
    cases: 0,
    results: 0,
    formatErrors: 0,
    truncated: 0,
    packets: 0,
    slowestMs: 0,
    slowest: '',
    maxArrayBuffersMiB: 0,
    maxHeapMiB: 0,
    byKind: {},
  };
  const random = prng(0x5eed);
  let index = 0;
  for (const c of cases(await seeds())) {
    post({ type: 'start', id: index, what: c.what });
    const started = performance.now();
    try {
      const outcome = await readOne(c, random, index);
      if (outcome instanceof CaptureFormatError) summary.formatErrors++;
      else {
        summary.results++;
        summary.packets += outcome.packets;
        if (outcome.truncated) summary.truncated++;
      }
    } catch (err) {
      post({ type: 'fail', id: index, what: c.what, error: (err as Error).stack ?? String(err) });
    }
    const ms = performance.now() - started;
    if (ms > summary.slowestMs) {
      summary.slowestMs = ms;
      summary.slowest = c.what;
    }
    summary.cases++;
    summary.byKind[c.kind] = (summary.byKind[c.kind] ?? 0) + 1;
    if (index % 64 === 0) {
      const memory = process.memoryUsage();
      summary.maxArrayBuffersMiB = Math.max(summary.maxArrayBuffersMiB, memory.arrayBuffers / 2 ** 20);
      summary.maxHeapMiB = Math.max(summary.maxHeapMiB, memory.heapUsed / 2 ** 20);
    }
    index++;
  }
  return summary;
}

if (parentPort && workerData?.robustness) {
  const port = parentPort;
  runRobustness((message) => port.postMessage(message)).then(
    (summary) => port.postMessage({ type: 'end', summary }),
    (err: unknown) => port.postMessage({ type: 'fail', id: -1, what: 'the run itself', error: String(err) }),
  );
}

import { type CaptureWriter, createPcapngWriter, createPcapWriter } from '../src/pcap/writer.js';

/**
 * Synthetic capture files for benchmarks: Ethernet + IPv4 + TCP/UDP frames between many flows, in a fixed packet-size
 * mix, written with tripcap's writer. Deterministic (seeded), so two runs make the same file.
 */

export interface GenerateOptions {
  /** Approximate file size to reach. */
  bytes: number;
  format?: 'pcap' | 'pcapng';
  /** Frame sizes (Ethernet, without FCS) drawn in turn with these weights. Default: IMIX 7×64, 4×576, 1×1500. */
  mix?: Array<{ size: number; weight: number }>;
  /** Distinct 5-tuples (default 10000). */
  flows?: number;
  /** First timestamp (seconds since the epoch; default 2026-01-01T00:00:00Z) and spacing in ns (default 1000). */
  startSeconds?: number;
  spacingNanos?: number;
  seed?: number;
}

export const IMIX = [
  { size: 64, weight: 7 },
  { size: 576, weight: 4 },
  { size: 1500, weight: 1 },
];

export interface GeneratedCapture {
  path: string;
  packets: number;
  bytes: number;
  /** Sum of frame lengths (what tshark calls frame bytes). */
  frameBytes: number;
}

/** A small xorshift PRNG: deterministic, fast, good enough for picking flows. */
export function prng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

export async function generateCapture(path: string, options: GenerateOptions): Promise<GeneratedCapture> {
  const mix = options.mix ?? IMIX;
  const sizes = mix.flatMap(({ size, weight }) => Array<number>(weight).fill(size));
  const flowCount = options.flows ?? 10_000;
  const random = prng(options.seed ?? 1);
  const spacing = options.spacingNanos ?? 1000;
  let seconds = options.startSeconds ?? 1_767_225_600;
  let nanos = 0;

  const flows = Array.from({ length: flowCount }, (_, i) => ({
    src: (10 << 24) | (((i >>> 8) & 0xff) << 8) | (i & 0xff) | (1 << 16),
    dst: ((198 << 24) | (51 << 16) | (100 << 8) | Math.floor(random() * 254 + 1)) >>> 0,
    sport: 32768 + Math.floor(random() * 28000),
    dport: [443, 80, 53, 8080, 5432][i % 5] as number,
    udp: i % 5 === 2,
    seq: Math.floor(random() * 0xffffffff),
  }));

  const frame = Buffer.alloc(Math.max(...sizes));
  const writer: CaptureWriter =
    options.format === 'pcapng'
      ? createPcapngWriter(path, { interfaces: [{ linkType: 1, snaplen: 262144, name: 'eth0' }] })
      : createPcapWriter(path, { linkType: 1 });
  frame.write('020000000002020000000001', 0, 'hex'); // dst MAC, src MAC
  frame.writeUInt16BE(0x0800, 12);

  let written = 0;
  let frameBytes = 0;
  let i = 0;
  const recordOverhead = options.format === 'pcapng' ? 32 : 16;
  while (written < options.bytes) {
    const size = sizes[i % sizes.length] as number;
    const flow = flows[Math.floor(random() * flowCount)] as (typeof flows)[number];
    const ipLength = size - 14;
    frame[14] = 0x45;
    frame[15] = 0;
    frame.writeUInt16BE(ipLength, 16);
    frame.writeUInt16BE(i & 0xffff, 18);
    frame.writeUInt16BE(0x4000, 20);
    frame[22] = 64;
    frame[23] = flow.udp ? 17 : 6;
    frame.writeUInt16BE(0, 24);
    frame.writeUInt32BE(flow.src >>> 0, 26);
    frame.writeUInt32BE(flow.dst, 30);
    let sum = 0;
    for (let w = 14; w < 34; w += 2) sum += frame.readUInt16BE(w);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    frame.writeUInt16BE(~sum & 0xffff, 24);
    frame.writeUInt16BE(flow.sport, 34);
    frame.writeUInt16BE(flow.dport, 36);
    if (flow.udp) {
      frame.writeUInt16BE(ipLength - 20, 38);
      frame.writeUInt16BE(0, 40);
    } else {
      frame.writeUInt32BE(flow.seq >>> 0, 38);
      frame.writeUInt32BE(0, 42);
      frame[46] = 0x50;
      frame[47] = 0x18; // PSH ACK
      frame.writeUInt16BE(64240, 48);
      frame.writeUInt32BE(0, 50);
      flow.seq = (flow.seq + ipLength - 40) >>> 0;
    }
    await writer.write({ seconds, nanos, data: frame.subarray(0, size) });
    nanos += spacing;
    if (nanos >= 1e9) {
      seconds += Math.floor(nanos / 1e9);
      nanos %= 1e9;
    }
    written += recordOverhead + ((size + 3) & ~3);
    frameBytes += size;
    i++;
  }
  await writer.close();
  return { path, packets: i, bytes: writer.bytes, frameBytes };
}

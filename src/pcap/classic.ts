import { open } from 'node:fs/promises';

/** Classic libpcap file format: a 24-byte file header, then records of a 16-byte header plus captured bytes. */
export const PCAP_FILE_HEADER_LENGTH = 24;
export const PCAP_RECORD_HEADER_LENGTH = 16;

const MAGIC_MICROSECONDS = 0xa1b2c3d4;
const MAGIC_NANOSECONDS = 0xa1b23c4d;
/** libpcap refuses records larger than this (its MAXIMUM_SNAPLEN); anything bigger is corruption. */
const MAX_RECORD_LENGTH = 262_144;

export interface PcapHeader {
  littleEndian: boolean;
  /** true for the `a1b23c4d` magic: record timestamps carry nanoseconds instead of microseconds. */
  nanoseconds: boolean;
  versionMajor: number;
  versionMinor: number;
  snaplen: number;
  /** LINKTYPE_* value (low 16 bits of the link-type field; the upper bits carry FCS information). */
  linkType: number;
}

/** Parses the 24-byte classic pcap file header; throws on anything that is not one. */
export function readPcapHeader(buf: Uint8Array): PcapHeader {
  if (buf.length < PCAP_FILE_HEADER_LENGTH)
    throw new Error(`not a pcap file: ${buf.length} bytes, the header needs 24`);
  const view = new DataView(buf.buffer, buf.byteOffset, PCAP_FILE_HEADER_LENGTH);
  let littleEndian = true;
  let magic = view.getUint32(0, true);
  if (magic !== MAGIC_MICROSECONDS && magic !== MAGIC_NANOSECONDS) {
    littleEndian = false;
    magic = view.getUint32(0, false);
  }
  if (magic !== MAGIC_MICROSECONDS && magic !== MAGIC_NANOSECONDS) {
    throw new Error(`not a classic pcap file: magic 0x${view.getUint32(0, false).toString(16).padStart(8, '0')}`);
  }
  return {
    littleEndian,
    nanoseconds: magic === MAGIC_NANOSECONDS,
    versionMajor: view.getUint16(4, littleEndian),
    versionMinor: view.getUint16(6, littleEndian),
    snaplen: view.getUint32(16, littleEndian),
    linkType: view.getUint32(20, littleEndian) & 0xffff,
  };
}

export interface PcapScan {
  packets: number;
  /** File size considered: min(file size, maxBytes). */
  bytes: number;
  /** Timestamps of the first and last complete record, ISO-8601 UTC with µs or ns digits as the file has them. */
  firstTime?: string;
  lastTime?: string;
  /** Offset just after the last complete record within `bytes` (24 for a file with no complete record). */
  validLength: number;
  /** true when the considered bytes end in an incomplete (or corrupt) record, i.e. validLength < bytes. */
  truncated: boolean;
  linkType: number;
  snaplen: number;
}

export interface ScanPcapOptions {
  /** Consider only the first maxBytes of the file (so a caller can cut it at a packet boundary <= maxBytes). */
  maxBytes?: number;
  /** Start at this record boundary (an earlier scan's validLength) and count only the records after it. */
  startOffset?: number;
}

const CHUNK_SIZE = 1 << 20;

/**
 * Walks the record headers of a classic pcap file without decoding packets: reads large chunks into one reused
 * buffer and jumps from header to header, stopping at the first record that is not complete within the limit.
 */
export async function scanPcapFile(path: string, opts: ScanPcapOptions = {}): Promise<PcapScan> {
  const file = await open(path, 'r');
  try {
    const size = (await file.stat()).size;
    const limit = opts.maxBytes !== undefined && opts.maxBytes >= 0 ? Math.min(size, opts.maxBytes) : size;
    const buf = Buffer.allocUnsafe(CHUNK_SIZE);
    const headerRead = await file.read(buf, 0, PCAP_FILE_HEADER_LENGTH, 0);
    const header = readPcapHeader(buf.subarray(0, headerRead.bytesRead));
    if (limit < PCAP_FILE_HEADER_LENGTH) throw new Error(`maxBytes ${limit} is smaller than the pcap file header`);
    const le = header.littleEndian;
    const maxRecord = Math.max(header.snaplen, MAX_RECORD_LENGTH);

    let packets = 0;
    let pos = Math.max(PCAP_FILE_HEADER_LENGTH, opts.startOffset ?? 0); // offset of the next record header
    let firstSec = 0;
    let firstFrac = 0;
    let lastSec = 0;
    let lastFrac = 0;
    let chunkStart = 0;
    let chunkEnd = 0; // buf holds file bytes [chunkStart, chunkEnd)
    let corrupt = false;

    while (pos + PCAP_RECORD_HEADER_LENGTH <= limit) {
      if (pos + PCAP_RECORD_HEADER_LENGTH > chunkEnd) {
        const want = Math.min(CHUNK_SIZE, limit - pos);
        const { bytesRead } = await file.read(buf, 0, want, pos);
        chunkStart = pos;
        chunkEnd = pos + bytesRead;
        if (bytesRead < PCAP_RECORD_HEADER_LENGTH) break;
      }
      const at = pos - chunkStart;
      const inclLen = le ? buf.readUInt32LE(at + 8) : buf.readUInt32BE(at + 8);
      if (inclLen > maxRecord) {
        corrupt = true;
        break;
      }
      const next = pos + PCAP_RECORD_HEADER_LENGTH + inclLen;
      if (next > limit) break;
      lastSec = le ? buf.readUInt32LE(at) : buf.readUInt32BE(at);
      lastFrac = le ? buf.readUInt32LE(at + 4) : buf.readUInt32BE(at + 4);
      if (packets === 0) {
        firstSec = lastSec;
        firstFrac = lastFrac;
      }
      packets++;
      pos = next;
    }

    const scan: PcapScan = {
      packets,
      bytes: limit,
      validLength: pos,
      truncated: corrupt || pos < limit,
      linkType: header.linkType,
      snaplen: header.snaplen,
    };
    if (packets > 0) {
      scan.firstTime = formatTimestamp(firstSec, firstFrac, header.nanoseconds);
      scan.lastTime = formatTimestamp(lastSec, lastFrac, header.nanoseconds);
    }
    return scan;
  } finally {
    await file.close();
  }
}

function formatTimestamp(seconds: number, fraction: number, nanoseconds: boolean): string {
  const digits = nanoseconds ? 9 : 6;
  return `${new Date(seconds * 1000).toISOString().slice(0, 19)}.${String(fraction).padStart(digits, '0')}Z`;
}

/** One record of a classic pcap file; `data` is a view into the reader's buffer, valid until the next record. */
export interface PcapRecord {
  seconds: number;
  /** Nanoseconds within the second (µs files are scaled). */
  nanos: number;
  capturedLength: number;
  originalLength: number;
  data: Buffer;
}

/** Milliseconds since the epoch of a record (fractional). */
export function recordTimeMs(record: { seconds: number; nanos: number }): number {
  return record.seconds * 1000 + record.nanos / 1e6;
}

/**
 * The complete records of classic pcap bytes held in memory, from `start` (a record boundary); stops at a torn or
 * corrupt record. `end()` of the returned iterator's last value is where the complete records end.
 */
export function* pcapRecords(
  bytes: Buffer,
  header: PcapHeader,
  start = PCAP_FILE_HEADER_LENGTH,
): Generator<PcapRecord & { end: number }> {
  const le = header.littleEndian;
  const scale = header.nanoseconds ? 1 : 1000;
  const maxRecord = Math.max(header.snaplen, MAX_RECORD_LENGTH);
  let pos = start;
  while (pos + PCAP_RECORD_HEADER_LENGTH <= bytes.length) {
    const capturedLength = le ? bytes.readUInt32LE(pos + 8) : bytes.readUInt32BE(pos + 8);
    const end = pos + PCAP_RECORD_HEADER_LENGTH + capturedLength;
    if (capturedLength > maxRecord || end > bytes.length) return;
    yield {
      seconds: le ? bytes.readUInt32LE(pos) : bytes.readUInt32BE(pos),
      nanos: (le ? bytes.readUInt32LE(pos + 4) : bytes.readUInt32BE(pos + 4)) * scale,
      capturedLength,
      originalLength: le ? bytes.readUInt32LE(pos + 12) : bytes.readUInt32BE(pos + 12),
      data: bytes.subarray(pos + PCAP_RECORD_HEADER_LENGTH, end),
      end,
    };
    pos = end;
  }
}

/**
 * A classic pcap file in chunks of whole records (about 1 MiB each; memory stays at one chunk whatever the file's
 * size), with its header: walk each with pcapRecords(chunk.records, chunk.header, 0). A torn last record is left out.
 */
export async function* readPcapChunks(path: string): AsyncGenerator<{ header: PcapHeader; records: Buffer }> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(PCAP_FILE_HEADER_LENGTH);
    const { bytesRead } = await file.read(head, 0, PCAP_FILE_HEADER_LENGTH, 0);
    const header = readPcapHeader(head.subarray(0, bytesRead));
    const le = header.littleEndian;
    const maxRecord = Math.max(header.snaplen, MAX_RECORD_LENGTH);
    // Room for a chunk plus the largest record, so that every read ends at least one whole record.
    const buf = Buffer.allocUnsafe(CHUNK_SIZE + PCAP_RECORD_HEADER_LENGTH + maxRecord);
    let pos = PCAP_FILE_HEADER_LENGTH;
    for (;;) {
      const got = (await file.read(buf, 0, buf.length, pos)).bytesRead;
      let end = 0;
      while (end + PCAP_RECORD_HEADER_LENGTH <= got) {
        const capturedLength = le ? buf.readUInt32LE(end + 8) : buf.readUInt32BE(end + 8);
        const next = end + PCAP_RECORD_HEADER_LENGTH + capturedLength;
        if (capturedLength > maxRecord || next > got) break;
        end = next;
      }
      if (end === 0) return;
      yield { header, records: buf.subarray(0, end) };
      pos += end;
    }
  } finally {
    await file.close();
  }
}

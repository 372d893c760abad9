import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { readPcapngBlocks } from './pcapng.js';
import { type ByteSource, DEFAULT_BUFFER_BYTES, PacketRecord, ReadBuffer, ReadState } from './read-buffer.js';
import { CaptureFormatError, type RawPacket, type ReadOptions, type ReadResult } from './types.js';

/**
 * Streaming reader of classic pcap and pcapng files. Two read buffers (2 MiB each by default) take turns for the whole
 * file, one parsed while the next chunk is read into the other; records are parsed in place, and the callback gets one
 * reused RawPacket per packet whose bytes stay in the buffer (`bytes`/`view` at `offset`; `data` made on demand).
 * Memory does not grow with the file: only interfaces, comments and names are kept, each with a cap.
 *
 * A file that cannot be read at all (empty, unknown magic, no complete header) rejects with CaptureFormatError. A file
 * that ends in the middle of a record, or turns corrupt, resolves with what came before it, `truncated: true` and a
 * warning saying where and why. Errors thrown by `onPacket` propagate unchanged; an aborted signal rejects with its
 * reason.
 */

export const PCAP_MAGIC_MICROSECONDS = 0xa1b2c3d4;
export const PCAP_MAGIC_NANOSECONDS = 0xa1b23c4d;
export const PCAPNG_SHB_TYPE = 0x0a0d0d0a;
/** Wireshark reads records up to this size whatever the snaplen says (WTAP_MAX_PACKET_SIZE_STANDARD). */
export const STANDARD_MAX_PACKET = 262_144;

export type PacketCallback = (packet: RawPacket) => void;

/** Reads a capture file (classic pcap or pcapng, detected by its magic) from the start to its end. */
export async function readCaptureFile(
  path: string,
  onPacket: PacketCallback,
  options: ReadOptions = {},
): Promise<ReadResult> {
  options.signal?.throwIfAborted();
  const file = await open(path, 'r');
  try {
    // positional reads for a file; a FIFO or character device (`/dev/stdin`) is read where it stands
    let position: number | null = (await file.stat()).isFile() ? 0 : null;
    const source: ByteSource = {
      async read(into, offset, length) {
        const { bytesRead } = await file.read(into, offset, length, position);
        if (position !== null) position += bytesRead;
        return bytesRead;
      },
    };
    return await readSource(source, onPacket, options);
  } finally {
    await file.close();
  }
}

/**
 * Reads a capture from a byte stream (a Readable without encoding, a web ReadableStream, any async iterable of
 * Uint8Array). When the reading stops before the stream ends (corruption, maxPackets, an error), the iterator is
 * returned early, which destroys a Node Readable.
 */
export async function readCaptureStream(
  stream: Readable | AsyncIterable<Uint8Array>,
  onPacket: PacketCallback,
  options: ReadOptions = {},
): Promise<ReadResult> {
  options.signal?.throwIfAborted();
  const iterator = (stream as AsyncIterable<unknown>)[Symbol.asyncIterator]();
  let chunk: Uint8Array | undefined;
  let at = 0;
  let done = false;
  const source: ByteSource = {
    async read(into, offset, length) {
      while (chunk === undefined || at >= chunk.length) {
        if (done) return 0;
        const next = await iterator.next();
        if (next.done) {
          done = true;
          return 0;
        }
        if (!(next.value instanceof Uint8Array)) {
          throw new TypeError('readCaptureStream needs chunks of bytes (a stream without an encoding)');
        }
        chunk = next.value;
        at = 0;
      }
      const n = Math.min(length, chunk.length - at);
      into.set(n === chunk.length ? chunk : chunk.subarray(at, at + n), offset);
      at += n;
      return n;
    },
  };
  try {
    return await readSource(source, onPacket, options);
  } finally {
    if (!done) await iterator.return?.();
  }
}

async function readSource(source: ByteSource, onPacket: PacketCallback, options: ReadOptions): Promise<ReadResult> {
  const size = Math.max(options.bufferBytes ?? DEFAULT_BUFFER_BYTES, 4096);
  const rb = new ReadBuffer(source, size, options.signal, options.allocateBuffer, options.onProgress);
  try {
    if (!(await rb.ensure(4))) {
      throw new CaptureFormatError(
        rb.end === 0 ? 'the file is empty' : `the file has ${rb.end} bytes: too short for a capture file header`,
      );
    }
    const magic = rb.view.getUint32(0, false);
    if (magic === PCAPNG_SHB_TYPE) {
      const state = new ReadState('pcapng', options);
      await readPcapngBlocks(rb, state, onPacket);
      return state.result(rb.bytesRead);
    }
    const swapped = swap32(magic);
    if (isPcapMagic(magic) || isPcapMagic(swapped)) {
      const state = new ReadState('pcap', options);
      await readClassic(rb, state, onPacket, isPcapMagic(swapped));
      return state.result(rb.bytesRead);
    }
    throw new CaptureFormatError(describeMagic(rb.buf.subarray(0, Math.min(rb.end, 16))));
  } finally {
    await rb.settle(); // a read may still be in flight when the reading stopped early
  }
}

function isPcapMagic(magic: number): boolean {
  return magic === PCAP_MAGIC_MICROSECONDS || magic === PCAP_MAGIC_NANOSECONDS;
}

function swap32(v: number): number {
  return (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
}

function describeMagic(head: Buffer): string {
  const hex = head.subarray(0, 4).toString('hex');
  if (head[0] === 0x1f && head[1] === 0x8b) return 'the file is gzip-compressed: decompress it first';
  if (hex === 'a1b2cd34' || hex === '34cdb2a1') {
    return 'the file is a "modified" (Kuznetsov) pcap, which is not supported: convert it with editcap -F pcap';
  }
  if (hex === '0a0d0d0a') return 'not a capture file';
  const text = head.every((b) => b === 0x09 || b === 0x0a || b === 0x0d || (b >= 0x20 && b < 0x7f));
  return `not a pcap or pcapng file: it starts with 0x${hex}${text ? ` ("${head.toString('latin1').trim()}…", text)` : ''}`;
}

/** Classic pcap: a 24-byte header, then records of a 16-byte header and the captured bytes. */
async function readClassic(
  rb: ReadBuffer,
  state: ReadState,
  onPacket: PacketCallback,
  littleEndian: boolean,
): Promise<void> {
  if (!(await rb.ensure(24))) {
    throw new CaptureFormatError(`the file ends inside the 24-byte pcap header (${rb.end} bytes)`);
  }
  const le = littleEndian;
  const header = rb.view;
  const nanosecond = header.getUint32(0, le) === PCAP_MAGIC_NANOSECONDS;
  const versionMajor = header.getUint16(4, le);
  const versionMinor = header.getUint16(6, le);
  if (versionMajor !== 2) {
    throw new CaptureFormatError(`pcap version ${versionMajor}.${versionMinor} is not supported (only 2.x)`);
  }
  const snaplen = header.getUint32(16, le);
  const linkField = header.getUint32(20, le);
  const linkType = linkField & 0xffff;
  const info = state.info;
  info.littleEndian = le;
  info.nanosecond = nanosecond;
  info.sections = 1;
  info.versionMajor = versionMajor;
  info.versionMinor = versionMinor;
  const iface: (typeof info.interfaces)[number] = {
    linkType,
    snaplen,
    tsUnitNanos: nanosecond ? 1 : 1000,
    tsUnitsPerSecond: nanosecond ? 1e9 : 1e6,
  };
  if (linkField & 0x04000000) iface.fcsLength = (linkField >>> 28) * 2;
  state.addInterface(iface);

  // libpcap and Wireshark accept records up to 256 KiB whatever the snaplen says; beyond that (and the block cap)
  // the length field is corrupt, and a classic pcap has no framing to resynchronise on.
  const maxCaptured = Math.min(Math.max(snaplen, STANDARD_MAX_PACKET), state.maxBlockBytes - 16);
  const fracPerSecond = nanosecond ? 1e9 : 1e6;
  const nanosPerUnit = nanosecond ? 1 : 1000;
  const maxPackets = state.maxPackets;
  const packet = new PacketRecord(rb);
  packet.linkType = linkType;
  const runs = state.recordRuns?.startClassic({ littleEndian: le, nanosecond, linkType, maxCaptured })
    ? state.recordRuns
    : undefined;

  let pos = 24;
  let end = pos;
  let view = rb.view;
  let need = 16;
  let packets = 0;
  let capturedBytes = 0;
  try {
    for (;;) {
      // refilling first (a no-op the first time): V8 compiles this function while the packet loop below runs, and
      // code after that loop which had never run would deoptimize it at the first refill
      rb.start = pos;
      if (!(await rb.ensure(need))) {
        const left = rb.end - rb.start;
        if (left > 0) {
          state.truncated = true;
          state.warn(
            `the file ends in the middle of packet ${packets + 1}: ${left} of its ` +
              `${left >= 16 ? `${need} bytes` : 'record header'} at offset ${rb.offsetOf(rb.start)} are there`,
          );
        }
        return;
      }
      pos = rb.start;
      end = rb.end;
      if (view !== rb.view) {
        view = rb.view;
        packet.bytes = rb.buf;
        packet.view = view;
      }
      need = 16;
      while (end - pos >= 16) {
        if (runs !== undefined) {
          pos = runs.countRecords(rb.buf, pos, end, maxPackets - packets);
          packets += runs.packets;
          capturedBytes += runs.capturedBytes;
          if (end - pos < 16) break;
        }
        if (packets >= maxPackets) return;
        const caplen = view.getUint32(pos + 8, le);
        if (caplen > maxCaptured) {
          state.corrupt(
            `packet ${packets + 1} at offset ${rb.offsetOf(pos)} claims ${caplen} captured bytes, more than ` +
              `${maxCaptured === snaplen ? `the snaplen ${snaplen}` : `the limit ${maxCaptured}`}: the file is corrupt from there on; stopped reading`,
          );
          return;
        }
        const next = pos + 16 + caplen;
        if (next > end) {
          need = 16 + caplen;
          break;
        }
        let seconds = view.getUint32(pos, le);
        let frac = view.getUint32(pos + 4, le);
        if (frac >= fracPerSecond) {
          seconds += Math.floor(frac / fracPerSecond);
          frac %= fracPerSecond;
        }
        packet.seconds = seconds;
        packet.nanos = frac * nanosPerUnit;
        packet.capturedLength = caplen;
        packet.originalLength = view.getUint32(pos + 12, le);
        packet.offset = pos + 16;
        packet.cached = undefined;
        packets++;
        capturedBytes += caplen;
        onPacket(packet);
        pos = next;
      }
    }
  } finally {
    state.packets = packets;
    state.capturedBytes = capturedBytes;
  }
}

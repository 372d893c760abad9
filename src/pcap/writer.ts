import { type FileHandle, open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { BlockType, BYTE_ORDER_MAGIC } from './pcapng.js';
import { PCAP_MAGIC_MICROSECONDS, PCAP_MAGIC_NANOSECONDS } from './reader.js';
import { TimestampConverter } from './timestamp.js';

/**
 * Writers of classic pcap and pcapng files, for cutting and joining captures and for making test files. Records are
 * encoded into a buffer (1 MiB by default) that is handed to the file or stream when full: `write()` resolves at once
 * while the packet fits, and with the hand-off when it filled the buffer (so awaiting every write gives
 * backpressure). A failed write or open rejects that write, every later one, and close().
 */

/** A packet to write; a RawPacket from the reader is one. */
export interface WritePacket {
  /** Whole seconds since the Unix epoch and nanoseconds within that second (truncated to the file's resolution). */
  seconds: number;
  nanos: number;
  /** Bytes of `data` to write (default all of it; at most the snaplen when one is set). */
  capturedLength?: number;
  /** Length on the wire (default: capturedLength, or all of `data`, before any cut to the snaplen). */
  originalLength?: number;
  data: Uint8Array;
  /** pcapng: the interface (default 0). */
  interfaceId?: number;
  /** pcapng: written as the packet's opt_comment. */
  comment?: string;
}

export interface CaptureWriter {
  write(packet: WritePacket): Promise<void>;
  /** Writes what is buffered and closes the file (or ends the stream, unless `end: false`). */
  close(): Promise<void>;
  /** Packets written so far. */
  readonly packets: number;
  /** Bytes of file produced so far (buffered or written). */
  readonly bytes: number;
}

export type WriteTarget = string | Writable;

interface CommonWriterOptions {
  /** Byte order of the file (default: little-endian, as x86 and ARM write it). */
  littleEndian?: boolean;
  /** Size of the encode buffer (default 1 MiB). */
  bufferBytes?: number;
  /** For a stream target: end it on close() (default true). */
  end?: boolean;
}

export interface PcapWriterOptions extends CommonWriterOptions {
  /** LINKTYPE_* of every packet. */
  linkType: number;
  /** Largest captured length (default 262144); longer packets are cut to it. */
  snaplen?: number;
  /** Nanosecond timestamps (magic a1b23c4d) instead of microseconds. */
  nanosecond?: boolean;
}

export interface PcapngInterfaceOptions {
  linkType: number;
  /** Largest captured length (default 0: no limit, as pcapng says); longer packets are cut to it. */
  snaplen?: number;
  name?: string;
  description?: string;
  /** if_tsresol: 10^-n seconds, or 2^-n with the high bit set (0x80 | n). Default 6 (µs); 9 for nanoseconds. */
  tsresol?: number;
  /** if_tsoffset: seconds added to every timestamp of the interface by readers. */
  tsoffset?: number;
  /** if_fcslen: bytes of FCS at the end of each packet. */
  fcsLength?: number;
}

export interface PcapngWriterOptions extends CommonWriterOptions {
  /** Interfaces declared at the start (more with addInterface()). */
  interfaces: PcapngInterfaceOptions[];
  /** Section header opt_comment: one, or several (each its own option). */
  comment?: string | string[];
  hardware?: string;
  os?: string;
  /** shb_userappl (default "tripcap"). */
  application?: string;
}

export interface PcapngWriter extends CaptureWriter {
  /** Declares another interface; returns its id. */
  addInterface(options: PcapngInterfaceOptions): number;
  /** A Name Resolution Block: IPv4/IPv6 address → names. */
  writeNameRecords(records: Array<{ address: string; names: string[] }>): Promise<void>;
  /** An Interface Statistics Block (isb_ifrecv, isb_ifdrop) at the given time (default: now). */
  writeInterfaceStatistics(
    interfaceId: number,
    stats: { received?: number; dropped?: number; seconds?: number; nanos?: number },
  ): Promise<void>;
}

const DEFAULT_BUFFER_BYTES = 1 << 20;
const DEFAULT_PCAP_SNAPLEN = 262_144;
const TWO_32 = 4294967296;
const RESOLVED: Promise<void> = Promise.resolve();

// ---- the byte sink ------------------------------------------------------------------------------------------------

interface ChunkSink {
  write(chunk: Buffer): Promise<void>;
  close(): Promise<void>;
  /** Whether a chunk's memory may be reused once its write resolved (not for streams: a Transform keeps it). */
  reusable: boolean;
}

function fileSink(path: string): ChunkSink {
  const opening: Promise<FileHandle> = open(path, 'w');
  opening.catch(() => {}); // reported by the first write or close
  return {
    reusable: true,
    async write(chunk) {
      const file = await opening;
      let done = 0;
      while (done < chunk.length) {
        const { bytesWritten } = await file.write(chunk, done, chunk.length - done);
        done += bytesWritten;
      }
    },
    async close() {
      await (await opening).close();
    },
  };
}

function streamSink(stream: Writable, end: boolean): ChunkSink {
  let failure: Error | undefined;
  const onError = (err: Error) => {
    failure ??= err;
  };
  stream.on('error', onError);
  return {
    reusable: false,
    write(chunk) {
      if (failure) return Promise.reject(failure);
      return new Promise((resolve, reject) => {
        stream.write(chunk, (err) => (err ? reject(err) : resolve()));
      });
    },
    async close() {
      try {
        if (failure) throw failure;
        if (end) {
          await new Promise<void>((resolve, reject) => {
            stream.once('error', reject);
            stream.end(() => {
              stream.off('error', reject);
              resolve();
            });
          });
        }
      } finally {
        stream.off('error', onError);
      }
    },
  };
}

/**
 * Encode buffer + ordered hand-off to the sink. Encoders call room(n) for the bytes of one record, write them at
 * `used`, then commit(n).
 */
class Encoder {
  buf: Buffer;
  view: DataView;
  used = 0;
  bytes = 0;
  private chain: Promise<void> = RESOLVED;
  private failure: unknown;
  private spare: Buffer | undefined;
  private closed = false;

  constructor(
    private readonly sink: ChunkSink,
    private readonly size: number,
    readonly le: boolean,
  ) {
    this.buf = Buffer.allocUnsafe(size);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }

  /** Makes room for n more bytes; returns the hand-off's promise if the buffer had to be handed off first. */
  room(n: number): Promise<void> | undefined {
    if (this.closed) throw new Error('the capture writer is closed');
    if (this.failure) throw this.failure;
    if (this.used + n <= this.buf.length) return undefined;
    const flushed = this.used > 0 ? this.handOff() : undefined;
    if (n > this.buf.length) this.replace(Buffer.allocUnsafe(n));
    return flushed;
  }

  commit(n: number): void {
    this.used += n;
    this.bytes += n;
  }

  private replace(buf: Buffer): void {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.length);
    this.used = 0;
  }

  private handOff(): Promise<void> {
    const full = this.buf;
    const chunk = full.subarray(0, this.used);
    const spare = this.spare;
    this.spare = undefined;
    this.replace(spare ?? Buffer.allocUnsafe(this.size));
    this.chain = this.chain.then(async () => {
      if (this.failure) return;
      try {
        await this.sink.write(chunk);
        if (this.sink.reusable && full.length === this.size) this.spare = full;
      } catch (err) {
        this.failure = err;
      }
    });
    return this.chain.then(() => {
      if (this.failure) throw this.failure;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.used > 0 && !this.failure) void this.handOff().catch(() => {});
    this.closed = true;
    await this.chain;
    try {
      await this.sink.close();
    } catch (err) {
      this.failure ??= err;
    }
    if (this.failure) throw this.failure;
  }

  u8(at: number, v: number): void {
    this.view.setUint8(this.used + at, v);
  }
  u16(at: number, v: number): void {
    this.view.setUint16(this.used + at, v, this.le);
  }
  u32(at: number, v: number): void {
    this.view.setUint32(this.used + at, v, this.le);
  }
  bytesAt(at: number, data: Uint8Array, length: number): void {
    this.buf.set(length === data.length ? data : data.subarray(0, length), this.used + at);
  }
  zero(at: number, length: number): void {
    if (length > 0) this.buf.fill(0, this.used + at, this.used + at + length);
  }
}

function sinkOf(target: WriteTarget, end: boolean | undefined): ChunkSink {
  return typeof target === 'string' ? fileSink(target) : streamSink(target, end ?? true);
}

/** Bytes given for the packet: capturedLength, checked against data. */
function givenLength(packet: WritePacket): number {
  const length = packet.capturedLength ?? packet.data.length;
  if (!Number.isInteger(length) || length < 0 || length > packet.data.length) {
    throw new RangeError(`capturedLength ${length} is not within the packet's ${packet.data.length} bytes`);
  }
  return length;
}

function checkTime(seconds: number, nanos: number, maxSeconds: number): void {
  if (!Number.isInteger(seconds) || seconds < 0 || seconds > maxSeconds) {
    throw new RangeError(`timestamp seconds ${seconds} cannot be written (0 … ${maxSeconds})`);
  }
  if (!Number.isInteger(nanos) || nanos < 0 || nanos >= 1e9) {
    throw new RangeError(`timestamp nanos ${nanos} is not within 0 … 999999999`);
  }
}

function u32Length(v: number | undefined, what: string): number {
  const n = v ?? 0;
  if (!Number.isInteger(n) || n < 0 || n >= TWO_32) throw new RangeError(`${what} ${v} is not a 32-bit length`);
  return n;
}

// ---- classic pcap ---------------------------------------------------------------------------------------------------

/** A classic pcap writer: the 24-byte header now, then one 16-byte record header + bytes per packet. */
export function createPcapWriter(target: WriteTarget, options: PcapWriterOptions): CaptureWriter {
  const le = options.littleEndian ?? true;
  const snaplen = u32Length(options.snaplen ?? DEFAULT_PCAP_SNAPLEN, 'snaplen');
  const nanosecond = options.nanosecond ?? false;
  const enc = new Encoder(sinkOf(target, options.end), options.bufferBytes ?? DEFAULT_BUFFER_BYTES, le);
  enc.room(24);
  enc.u32(0, nanosecond ? PCAP_MAGIC_NANOSECONDS : PCAP_MAGIC_MICROSECONDS);
  enc.u16(4, 2);
  enc.u16(6, 4);
  enc.u32(8, 0); // thiszone
  enc.u32(12, 0); // sigfigs
  enc.u32(16, snaplen);
  enc.u32(20, options.linkType >>> 0);
  enc.commit(24);
  let packets = 0;
  return {
    write(packet) {
      try {
        const given = givenLength(packet);
        const caplen = snaplen > 0 && given > snaplen ? snaplen : given;
        const originalLength = u32Length(packet.originalLength ?? given, 'originalLength');
        checkTime(packet.seconds, packet.nanos, TWO_32 - 1);
        const flushed = enc.room(16 + caplen);
        enc.u32(0, packet.seconds);
        enc.u32(4, nanosecond ? packet.nanos : Math.floor(packet.nanos / 1000));
        enc.u32(8, caplen);
        enc.u32(12, originalLength);
        enc.bytesAt(16, packet.data, caplen);
        enc.commit(16 + caplen);
        packets++;
        return flushed ?? RESOLVED;
      } catch (err) {
        return Promise.reject(err);
      }
    },
    close: () => enc.close(),
    get packets() {
      return packets;
    },
    get bytes() {
      return enc.bytes;
    },
  };
}

// ---- pcapng -------------------------------------------------------------------------------------------------------

interface Option {
  code: number;
  value: Uint8Array;
}

const textOption = (code: number, value: string | undefined): Option[] =>
  value === undefined ? [] : [{ code, value: Buffer.from(value, 'utf8') }];

function optionsLength(options: Option[]): number {
  if (options.length === 0) return 0;
  return options.reduce((n, o) => n + 4 + ((o.value.length + 3) & ~3), 4);
}

function putOptions(enc: Encoder, at: number, options: Option[]): number {
  if (options.length === 0) return at;
  for (const o of options) {
    if (o.value.length > 0xffff) throw new RangeError(`option ${o.code} is longer than 65535 bytes`);
    enc.u16(at, o.code);
    enc.u16(at + 2, o.value.length);
    enc.bytesAt(at + 4, o.value, o.value.length);
    const padded = (o.value.length + 3) & ~3;
    enc.zero(at + 4 + o.value.length, padded - o.value.length);
    at += 4 + padded;
  }
  enc.u32(at, 0); // opt_endofopt
  return at + 4;
}

/** Writes one block whose fixed part (after type and length) is `fixed` bytes filled by `fill`, then options. */
function putBlock(
  enc: Encoder,
  type: number,
  fixed: number,
  fill: (at: number) => void,
  options: Option[],
): Promise<void> | undefined {
  const length = 12 + fixed + optionsLength(options);
  const flushed = enc.room(length);
  enc.u32(0, type);
  enc.u32(4, length);
  fill(8);
  putOptions(enc, 8 + fixed, options);
  enc.u32(length - 4, length);
  enc.commit(length);
  return flushed;
}

function u64Option(code: number, value: number, le: boolean): Option {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`option ${code}: ${value} is not a count`);
  const buf = Buffer.alloc(8);
  const high = Math.floor(value / TWO_32);
  const low = value % TWO_32;
  if (le) {
    buf.writeUInt32LE(low, 0);
    buf.writeUInt32LE(high, 4);
  } else {
    buf.writeUInt32BE(high, 0);
    buf.writeUInt32BE(low, 4);
  }
  return { code, value: buf };
}

function i64Option(code: number, value: number, le: boolean): Option {
  if (!Number.isSafeInteger(value)) throw new RangeError(`option ${code}: ${value} is not an integer`);
  const buf = Buffer.alloc(8);
  if (le) buf.writeBigInt64LE(BigInt(value));
  else buf.writeBigInt64BE(BigInt(value));
  return { code, value: buf };
}

/** A pcapng writer: one section (SHB), its interfaces (IDB), then Enhanced Packet Blocks. */
export function createPcapngWriter(target: WriteTarget, options: PcapngWriterOptions): PcapngWriter {
  const le = options.littleEndian ?? true;
  const enc = new Encoder(sinkOf(target, options.end), options.bufferBytes ?? DEFAULT_BUFFER_BYTES, le);
  const interfaces: Array<{ snaplen: number; clock: TimestampConverter }> = [];
  let packets = 0;

  putBlock(
    enc,
    BlockType.SHB,
    16,
    (at) => {
      enc.u32(at, BYTE_ORDER_MAGIC);
      enc.u16(at + 4, 1);
      enc.u16(at + 6, 0);
      enc.u32(at + 8, 0xffffffff); // section length: not given
      enc.u32(at + 12, 0xffffffff);
    },
    [
      ...[options.comment ?? []].flat().flatMap((text) => textOption(1, text)),
      ...textOption(2, options.hardware),
      ...textOption(3, options.os),
      ...textOption(4, options.application ?? 'tripcap'),
    ],
  );

  const addInterface = (iface: PcapngInterfaceOptions): number => {
    const tsresol = iface.tsresol ?? 6;
    const clock = TimestampConverter.fromTsresol(tsresol, iface.tsoffset ?? 0);
    if (!Number.isInteger(tsresol) || tsresol < 0 || tsresol > 0xff || clock === undefined) {
      throw new RangeError(`if_tsresol ${tsresol} is not a resolution`);
    }
    const snaplen = u32Length(iface.snaplen, 'snaplen');
    const opts: Option[] = [...textOption(2, iface.name), ...textOption(3, iface.description)];
    if (tsresol !== 6) opts.push({ code: 9, value: Uint8Array.of(tsresol) });
    if (iface.fcsLength !== undefined) opts.push({ code: 13, value: Uint8Array.of(iface.fcsLength) });
    if (iface.tsoffset) opts.push(i64Option(14, iface.tsoffset, le));
    putBlock(
      enc,
      BlockType.IDB,
      8,
      (at) => {
        enc.u16(at, iface.linkType);
        enc.u16(at + 2, 0);
        enc.u32(at + 4, snaplen);
      },
      opts,
    );
    return interfaces.push({ snaplen, clock }) - 1;
  };
  for (const iface of options.interfaces) addInterface(iface);

  return {
    write(packet) {
      try {
        const interfaceId = packet.interfaceId ?? 0;
        const iface = interfaces[interfaceId];
        if (iface === undefined) throw new RangeError(`interface ${interfaceId} was not declared`);
        const given = givenLength(packet);
        const caplen = iface.snaplen > 0 && given > iface.snaplen ? iface.snaplen : given;
        const originalLength = u32Length(packet.originalLength ?? given, 'originalLength');
        checkTime(packet.seconds, packet.nanos, Number.MAX_SAFE_INTEGER);
        iface.clock.fromTime(packet.seconds, packet.nanos);
        const padded = (caplen + 3) & ~3;
        const comment = packet.comment === undefined ? undefined : Buffer.from(packet.comment, 'utf8');
        const length = 32 + padded + (comment ? 8 + ((comment.length + 3) & ~3) : 0);
        const flushed = enc.room(length);
        enc.u32(0, BlockType.EPB);
        enc.u32(4, length);
        enc.u32(8, interfaceId);
        enc.u32(12, iface.clock.high);
        enc.u32(16, iface.clock.low);
        enc.u32(20, caplen);
        enc.u32(24, originalLength);
        enc.bytesAt(28, packet.data, caplen);
        enc.zero(28 + caplen, padded - caplen);
        if (comment) putOptions(enc, 28 + padded, [{ code: 1, value: comment }]);
        enc.u32(length - 4, length);
        enc.commit(length);
        packets++;
        return flushed ?? RESOLVED;
      } catch (err) {
        return Promise.reject(err);
      }
    },
    addInterface,
    writeNameRecords(records) {
      try {
        const encoded = records.map(({ address, names }) => {
          const raw = parseAddress(address);
          const value = Buffer.concat([raw, ...names.map((n) => Buffer.from(`${n}\0`, 'utf8'))]);
          if (value.length > 0xffff) throw new RangeError(`name record for ${address} is too long`);
          return { type: raw.length === 4 ? 1 : 2, value };
        });
        const body = encoded.reduce((n, r) => n + 4 + ((r.value.length + 3) & ~3), 4);
        return (
          putBlock(
            enc,
            BlockType.NRB,
            body,
            (at) => {
              for (const r of encoded) {
                enc.u16(at, r.type);
                enc.u16(at + 2, r.value.length);
                enc.bytesAt(at + 4, r.value, r.value.length);
                const padded = (r.value.length + 3) & ~3;
                enc.zero(at + 4 + r.value.length, padded - r.value.length);
                at += 4 + padded;
              }
              enc.u32(at, 0); // nrb_record_end
            },
            [],
          ) ?? RESOLVED
        );
      } catch (err) {
        return Promise.reject(err);
      }
    },
    writeInterfaceStatistics(interfaceId, stats) {
      try {
        const iface = interfaces[interfaceId];
        if (iface === undefined) throw new RangeError(`interface ${interfaceId} was not declared`);
        const now = Date.now();
        const seconds = stats.seconds ?? Math.floor(now / 1000);
        const nanos = stats.nanos ?? (stats.seconds === undefined ? (now % 1000) * 1e6 : 0);
        iface.clock.fromTime(seconds, nanos);
        const { high, low } = iface.clock;
        const opts: Option[] = [];
        if (stats.received !== undefined) opts.push(u64Option(4, stats.received, le));
        if (stats.dropped !== undefined) opts.push(u64Option(5, stats.dropped, le));
        return (
          putBlock(
            enc,
            BlockType.ISB,
            12,
            (at) => {
              enc.u32(at, interfaceId);
              enc.u32(at + 4, high);
              enc.u32(at + 8, low);
            },
            opts,
          ) ?? RESOLVED
        );
      } catch (err) {
        return Promise.reject(err);
      }
    },
    close: () => enc.close(),
    get packets() {
      return packets;
    },
    get bytes() {
      return enc.bytes;
    },
  };
}

/** Bytes of an IPv4 (dotted) or IPv6 (RFC 4291 text) address. */
function parseAddress(address: string): Buffer {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(address);
  if (v4) {
    const bytes = v4.slice(1).map(Number);
    if (bytes.every((b) => b <= 255)) return Buffer.from(bytes);
  }
  if (address.includes(':')) {
    const [head = '', tail, extra] = address.split('::');
    if (extra === undefined) {
      const part = (s: string) => (s === '' ? [] : s.split(':'));
      const left = part(head);
      const right = tail === undefined ? [] : part(tail);
      const missing = 8 - left.length - right.length;
      if ((tail === undefined && missing === 0) || (tail !== undefined && missing >= 1)) {
        const groups = [...left, ...Array<string>(Math.max(missing, 0)).fill('0'), ...right];
        if (groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) {
          const out = Buffer.alloc(16);
          for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
          return out;
        }
      }
    }
  }
  throw new RangeError(`${address} is not an IPv4 or IPv6 address`);
}

import type { CaptureFileInfo, InterfaceInfo, RawPacket, ReadOptions, ReadResult, RecordRunCounter } from './types.js';

/**
 * Internals shared by the classic pcap and pcapng parsers: where bytes come from, the one reused read buffer, the
 * reused packet object, and the result being built (with caps on everything that could grow with a hostile file).
 */

export const DEFAULT_BUFFER_BYTES = 2 << 20;
export const DEFAULT_MAX_BLOCK_BYTES = 64 << 20;
const MAX_WARNINGS = 50;
const MAX_COMMENTS = 10_000;
const MAX_NAMES = 100_000;
const MAX_TEXT_CHARS = 4 << 20;
export const MAX_INTERFACES = 10_000;

/** Where the bytes of a capture come from: a file (positional reads) or a stream's chunks. */
export interface ByteSource {
  /** Copies up to `length` bytes into `into` at `offset`; resolves with the count, 0 at the end. */
  read(into: Buffer, offset: number, length: number): Promise<number>;
}

/**
 * The read buffer, reused for the whole file. Parsers keep their position in local variables and call ensure(n) only
 * when the record at `start` is incomplete.
 *
 * Two buffers take turns so that reading overlaps parsing: while the parser works through one, the next chunk is
 * read into the other, behind a reserve at its front; ensure() then puts the unparsed tail of the current chunk into
 * that reserve, just before the new bytes, and switches. Only the tail is copied, never the chunk. A block larger than
 * a buffer gets a buffer of its own, grown as its bytes arrive, and reading goes back to the pair afterwards.
 */
export class ReadBuffer {
  buf: Buffer;
  view: DataView;
  /** First unconsumed byte and end of valid data in `buf`. */
  start = 0;
  end = 0;
  /** File offset of buf[0]. */
  base = 0;
  /** Bytes read from the source so far. */
  bytesRead = 0;
  eof = false;
  private readonly homes: [Buffer, Buffer];
  private readonly views: [DataView, DataView];
  private readonly reserve: number;
  /** A read into the other home buffer at `reserve`, in flight. */
  private prefetch: Promise<number> | undefined;

  constructor(
    private readonly source: ByteSource,
    size: number,
    private readonly signal: AbortSignal | undefined,
    allocate: (bytes: number) => Buffer | undefined = () => undefined,
    private readonly onProgress?: (bytesRead: number) => void,
  ) {
    this.homes = [allocate(size) ?? Buffer.allocUnsafe(size), allocate(size) ?? Buffer.allocUnsafe(size)];
    this.views = [viewOf(this.homes[0]), viewOf(this.homes[1])];
    this.reserve = Math.floor(size / 4);
    this.buf = this.homes[0];
    this.view = this.views[0];
  }

  /** File offset of buffer position `pos`. */
  offsetOf(pos: number): number {
    return this.base + pos;
  }

  /**
   * Makes at least `n` contiguous bytes available from `start`; false when the source ends first. A buffer too small
   * for `n` doubles as bytes arrive (never beyond `n`), so a length field that lies costs memory only for bytes the
   * file really has.
   */
  async ensure(n: number): Promise<boolean> {
    if (this.end - this.start >= n) return true;
    if (this.prefetch) await this.takePrefetch();
    if (this.end - this.start < n) {
      const home = this.homeIndex();
      if (home < 0 && n <= this.homes[0].length) this.move(this.homes[0], this.views[0]);
      else if (this.start > 0) this.move(this.buf, this.view);
      while (this.end < n) {
        if (this.eof) return false;
        this.signal?.throwIfAborted();
        if (this.end === this.buf.length) {
          const grown = Buffer.allocUnsafe(Math.min(Math.ceil(n / 65536) * 65536, this.buf.length * 2));
          this.move(grown, viewOf(grown));
        }
        const got = await this.source.read(this.buf, this.end, this.buf.length - this.end);
        if (got <= 0) {
          this.eof = true;
          return false;
        }
        this.end += got;
        this.bytesRead += got;
        this.onProgress?.(this.bytesRead);
      }
    }
    this.startPrefetch();
    return true;
  }

  /** Waits for a read in flight (before the source is closed, or after the reading stopped early). */
  async settle(): Promise<void> {
    await this.prefetch?.catch(() => {});
    this.prefetch = undefined;
  }

  private homeIndex(): number {
    return this.buf === this.homes[0] ? 0 : this.buf === this.homes[1] ? 1 : -1;
  }

  private startPrefetch(): void {
    const home = this.homeIndex();
    if (this.eof || this.prefetch || home < 0) return;
    const other = this.homes[1 - home] as Buffer;
    this.prefetch = this.source.read(other, this.reserve, other.length - this.reserve);
    this.prefetch.catch(() => {}); // reported by takePrefetch(), or dropped by settle()
  }

  /** Switches to the other home buffer, whose prefetched bytes follow the current tail. */
  private async takePrefetch(): Promise<void> {
    const pending = this.prefetch as Promise<number>;
    this.prefetch = undefined;
    const got = await pending;
    if (got <= 0) {
      this.eof = true;
      return;
    }
    this.bytesRead += got;
    this.onProgress?.(this.bytesRead);
    const home = this.homeIndex();
    const next = this.homes[1 - home] as Buffer;
    const keep = this.end - this.start;
    if (keep <= this.reserve) {
      this.buf.copy(next, this.reserve - keep, this.start, this.end);
      this.base += this.end - this.reserve;
      this.buf = next;
      this.view = this.views[1 - home] as DataView;
      this.start = this.reserve - keep;
      this.end = this.reserve + got;
      return;
    }
    // a tail longer than the reserve (a block of more than a quarter buffer): join the two the slow way
    const joined = keep + got <= this.buf.length ? this.buf : Buffer.allocUnsafe(keep + got);
    this.move(joined, joined === this.buf ? this.view : viewOf(joined));
    next.copy(this.buf, this.end, this.reserve, this.reserve + got);
    this.end += got;
  }

  /** Moves the unconsumed bytes [start, end) to the front of `target` (which may be the current buffer). */
  private move(target: Buffer, view: DataView): void {
    const keep = this.end - this.start;
    this.buf.copy(target, 0, this.start, this.end);
    this.base += this.start;
    this.start = 0;
    this.end = keep;
    this.buf = target;
    this.view = view;
  }
}

function viewOf(buf: Buffer): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.length);
}

/**
 * The one packet object handed to every callback. `data` is made on first access only: consumers that read
 * `bytes`/`view` at `offset` allocate nothing per packet.
 */
export class PacketRecord implements RawPacket {
  interfaceId = 0;
  interfaceIndex = 0;
  linkType = 0;
  seconds = 0;
  nanos = 0;
  capturedLength = 0;
  originalLength = 0;
  offset = 0;
  comment: string | undefined = undefined;
  bytes: Buffer;
  view: DataView;
  /** @internal the lazily made `data` of the current packet */
  cached: Uint8Array | undefined = undefined;

  constructor(rb: ReadBuffer) {
    this.bytes = rb.buf;
    this.view = rb.view;
  }

  get data(): Uint8Array {
    if (this.cached === undefined) {
      this.cached = new Uint8Array(this.bytes.buffer, this.bytes.byteOffset + this.offset, this.capturedLength);
    }
    return this.cached;
  }
}

/** The result under construction, with bounded lists. */
export class ReadState {
  readonly info: CaptureFileInfo;
  packets = 0;
  capturedBytes = 0;
  truncated = false;
  readonly warnings: string[] = [];
  /** Set when reading must end (corruption, a limit, maxPackets). */
  stop = false;
  readonly maxPackets: number;
  readonly maxBlockBytes: number;
  readonly recordRuns: RecordRunCounter | undefined;
  private droppedWarnings = 0;
  private textChars = 0;
  private readonly warnedKeys = new Set<string>();
  private readonly statsByIndex = new Map<number, CaptureFileInfo['interfaceStats'][number]>();

  constructor(
    format: 'pcap' | 'pcapng',
    private readonly options: ReadOptions,
  ) {
    this.info = {
      format,
      littleEndian: true,
      nanosecond: false,
      interfaces: [],
      sections: 0,
      comments: [],
      names: [],
      interfaceStats: [],
    };
    this.maxPackets = options.maxPackets !== undefined && options.maxPackets >= 0 ? options.maxPackets : Infinity;
    this.maxBlockBytes = options.maxBlockBytes ?? DEFAULT_MAX_BLOCK_BYTES;
    this.recordRuns = options.recordRuns;
  }

  warn(message: string): void {
    if (this.warnings.length < MAX_WARNINGS) this.warnings.push(message);
    else this.droppedWarnings++;
  }

  /** A problem that ends the reading: what was read stands. */
  corrupt(message: string): void {
    this.warn(message);
    this.truncated = true;
    this.stop = true;
  }

  /** Adds an interface; false (and the reading stops) past the cap. */
  addInterface(iface: InterfaceInfo): number {
    if (this.info.interfaces.length >= MAX_INTERFACES) {
      this.corrupt(`more than ${MAX_INTERFACES} interfaces: the file is not plausible; stopped reading`);
      return -1;
    }
    const index = this.info.interfaces.push(iface) - 1;
    this.options.onInterface?.(iface, index);
    return index;
  }

  /** Warns once per key. */
  private warnOnce(key: string, message: string): void {
    if (this.warnedKeys.has(key)) return;
    this.warnedKeys.add(key);
    this.warn(message);
  }

  /** Spends `chars` of the comment/name budget; false once it is spent. */
  private takeText(chars: number): boolean {
    if (this.textChars + chars > MAX_TEXT_CHARS) {
      this.warnOnce('text', `comments and names beyond ${MAX_TEXT_CHARS} characters were not kept`);
      return false;
    }
    this.textChars += chars;
    return true;
  }

  addComment(comment: string): void {
    if (this.info.comments.length >= MAX_COMMENTS) {
      this.warnOnce('comments', `more than ${MAX_COMMENTS} comments: the rest were not kept`);
    } else if (this.takeText(comment.length)) {
      this.info.comments.push(comment);
    }
  }

  addName(address: string, names: string[]): void {
    if (this.info.names.length >= MAX_NAMES) {
      this.warnOnce('names', `more than ${MAX_NAMES} name records: the rest were not kept`);
    } else if (this.takeText(address.length + names.reduce((n, name) => n + name.length, 0))) {
      this.info.names.push({ address, names });
    }
  }

  setStats(interfaceIndex: number, interfaceId: number, received?: number, dropped?: number): void {
    let entry = this.statsByIndex.get(interfaceIndex);
    if (!entry) {
      entry = { interfaceId, interfaceIndex };
      this.statsByIndex.set(interfaceIndex, entry);
      this.info.interfaceStats.push(entry);
    }
    if (received !== undefined) entry.received = received;
    if (dropped !== undefined) entry.dropped = dropped;
  }

  result(fileBytes: number): ReadResult {
    if (this.droppedWarnings > 0) this.warnings.push(`… and ${this.droppedWarnings} more warnings`);
    return {
      info: this.info,
      packets: this.packets,
      capturedBytes: this.capturedBytes,
      fileBytes,
      warnings: this.warnings,
      truncated: this.truncated,
    };
  }
}

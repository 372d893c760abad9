import {
  createDecodedPacket,
  type DecodedPacket,
  decodePacket,
  Fragment,
  formatIPv4,
  formatIPv6,
  Link,
  Net,
  parseIPAddress,
  TcpFlag,
  Transport,
} from '../pcap/decode.js';
import type {
  ClassicRecordFormat,
  PcapngInterfaceFormat,
  RawPacket,
  ReadResult,
  RecordRunCounter,
} from '../pcap/types.js';
import {
  classifyStart,
  clientHelloLength,
  dnsRcodeName,
  dnsTypeName,
  parseClientHello,
  parseDns,
  parseHttpRequest,
  parseHttpStatus,
  Start,
} from './app.js';
import { buildReport, type FinishContext, Tally } from './build-report.js';
import { FLOW_KEY_WIDTH, FlowTable } from './flow-table.js';
import { arrayIn, MAX_PACKET_MEMORY, P, PacketMemory, Step } from './packet-path.js';
import type { Report } from './report.js';
import { Direction, TimelineBuilder } from './timeline.js';

/**
 * The streaming core: feed packets (`onPacket`, usable directly as a reader callback), then `finish()` builds the
 * report. Memory is bounded by the number of flows (capped by `maxFlows`), never by the number of packets.
 *
 * Everything is counted per flow: a flow is a canonical (address, port) pair plus protocol, keyed as 10 words in a
 * typed-array hash table, with counters in parallel typed arrays. Conversations and endpoints (IPv4, IPv6, TCP, UDP)
 * are aggregated from the flows at the end with tshark's definitions:
 *   - A is the source of the conversation's first packet; bytes are frame (on-wire) lengths;
 *   - an IPv4 packet counts once its header is captured, fragments included; an IPv6 fragment counts only on the
 *     frame that completes its datagram (tshark reassembles first); ICMP error payloads do not count;
 *   - a TCP segment counts when its whole header is captured; a fragmented UDP/TCP datagram counts once, on the frame
 *     that completes it, with that frame's length.
 */

export interface AnalyzerOptions {
  /** The captured host's addresses (IPv4/IPv6): directions are relative to them. Inferred when absent. */
  hostIps?: string[];
  /** Timeline bin width in seconds; default: a round width giving 60–300 bins. */
  binSeconds?: number;
  /** Flows kept at most; packets of further flows count in totals, timeline and protocols only. */
  maxFlows?: number;
  /** Rows kept per conversation/endpoint/names list (largest first). */
  maxRows?: number;
  /**
   * Flows to make room for at the start (a sizing hint, e.g. from the file size: see flowsHint()); the tables grow
   * as needed either way. Growing while packets arrive costs a rehash and a deoptimization of the packet path.
   */
  expectedFlows?: number;
  /**
   * Count runs of common packets in classic pcap files with the WebAssembly path (when the reader is given
   * `allocateBuffer` and `recordRuns`), and build the report's tables there (default true). false: the TypeScript path
   * does it all (the two give the same report; this is for comparing them).
   */
  fastPath?: boolean;
}

export const DEFAULT_MAX_FLOWS = 1_000_000;
export const DEFAULT_MAX_ROWS = 1000;
const INITIAL_FLOWS = 4096;
const MAX_INITIAL_FLOWS = 1 << 16;

/** A flow-table sizing hint for a capture file of `fileBytes`: one flow per 4 KiB, from 4096 to 65536 flows. */
export function flowsHint(fileBytes: number): number {
  return Math.min(MAX_INITIAL_FLOWS, Math.max(INITIAL_FLOWS, Math.floor(fileBytes / 4096)));
}
/** Packets logged while the host addresses are not yet known (when they must be inferred). */
const INFER_AFTER_PACKETS = 10_000;
const MAX_NAME_ROWS = 10_000;
const MAX_FRAGMENT_DATAGRAMS = 4096;
const MAX_PENDING_HELLO_BYTES = 16_384;

/** Flow key layout: words 0–3 low address, 4–7 high address, 8 ports (low<<16 | high), 9 meta. */
export const KEY_WIDTH = FLOW_KEY_WIDTH;
export const META_V6 = 1 << 8;
export const META_PORTS = 1 << 9;

export const App = { UNKNOWN: 0, DNS: 1, TLS: 2, HTTP: 3, OTHER: 4 } as const;
export const APP_NAMES = ['', 'dns', 'tls', 'http', ''];

/** TCP state bits (Flows.u8 at U.TCP). HELLO: a ClientHello split over segments is being put together. */
export const FlowBit = { SYN: 1, SYN_ACK: 2, RST: 4, RST_FROM_RESPONDER: 8, SEQ0: 16, SEQ1: 32, HELLO: 64 } as const;

/**
 * Per-flow numbers. Each flow is a 128-byte record in the flow table's own memory: the key (words 0–9), small values
 * (bytes 40–47, `U`), and what every packet updates (doubles 6–13, `N`), so that a packet touches the hash slot and
 * two cache lines. Direction 0 is low → high address (the key's order). The hot path counts every packet of the flow;
 * the rare packets that tshark leaves out of its IP or TCP/UDP tables (IPv6 fragments before reassembly, datagrams
 * never reassembled) are counted again as misses, so that tshark's numbers are the totals minus the misses. Values
 * that change rarely (handshake, retransmissions) live in `cold`.
 */
export const FLOW_STRIDE_WORDS = 32;
export const REC_DOUBLES = 16;
const U8_AT = 40;
export const N = {
  FRAMES: 6, // +dir
  BYTES: 8, // +dir
  START: 10, // first and last time, ns from packet 0
  END: 11,
  NEXT_SEQ: 12, // +dir: highest TCP sequence end seen
} as const;
/** Flows.cold fields. */
export const C = { TAP_FIRST: 0, SYN_TIME: 1, RTT: 2, RETRANS: 3, RESETS: 4, ZERO_WINDOWS: 5 } as const;
export const C_STRIDE = 8;
/** Flows.miss: packets tshark does not count at IP level or at TCP/UDP level (+dir each). */
export const M = { IP_FRAMES: 0, IP_BYTES: 2, L4_FRAMES: 4, L4_BYTES: 6 } as const;
export const M_STRIDE = 8;
/** Small per-flow values (bytes of the record). */
export const U = { HOST: 0, APP: 1, TRIES: 2, TCP: 3, SYN_DIR: 4, STATE: 5 } as const;
/** U.STATE bits. */
export const State = { TAP_SEEN: 1, TAP_DIR: 2, L4_SEEN: 4, L4_DIR: 8, IP_MISS: 16, L4_MISS: 32 } as const;

/** Index of double `field` of flow f in table.f64, and of byte `field` in table.u8. */
export const dbl = (f: number, field: number) => f * REC_DOUBLES + field;
export const byte = (f: number, field: number) => f * (FLOW_STRIDE_WORDS * 4) + U8_AT + field;

export class Flows {
  capacity: number;
  cold: Float64Array;
  miss: Float64Array;
  /** First/last time of the packets counted at IP level and at TCP/UDP level: kept only for flows with misses. */
  tapStart: Float64Array;
  tapEnd: Float64Array;
  l4Start: Float64Array;
  l4End: Float64Array;

  constructor(
    readonly table: FlowTable,
    capacity: number,
    /** Where the arrays live when it has room (the memory the WebAssembly code works in). */
    private readonly memory?: PacketMemory,
  ) {
    this.capacity = capacity;
    this.cold = this.doubles(capacity * C_STRIDE);
    this.miss = this.doubles(capacity * M_STRIDE);
    this.tapStart = this.doubles(capacity);
    this.tapEnd = this.doubles(capacity);
    this.l4Start = this.doubles(capacity);
    this.l4End = this.doubles(capacity);
  }

  private doubles(length: number): Float64Array {
    return arrayIn(this.memory, Float64Array, length);
  }

  grow(): void {
    const copy = (a: Float64Array): Float64Array => {
      const b = this.doubles(a.length * 2);
      b.set(a);
      return b;
    };
    this.capacity *= 2;
    this.cold = copy(this.cold);
    this.miss = copy(this.miss);
    this.tapStart = copy(this.tapStart);
    this.tapEnd = copy(this.tapEnd);
    this.l4Start = copy(this.l4Start);
    this.l4End = copy(this.l4End);
  }

  /** Sets up new flow f, growing the arrays when needed (here rather than at the caller: see the end of the file). */
  init(f: number): void {
    if (f >= this.capacity) this.grow();
    const c = f * C_STRIDE;
    this.cold[c + C.TAP_FIRST] = -1;
    this.cold[c + C.SYN_TIME] = -1;
    this.cold[c + C.RTT] = -1;
  }

  frames(f: number, dir: number): number {
    return this.table.f64[dbl(f, N.FRAMES + dir)] as number;
  }
  bytes(f: number, dir: number): number {
    return this.table.f64[dbl(f, N.BYTES + dir)] as number;
  }
  start(f: number): number {
    return this.table.f64[dbl(f, N.START)] as number;
  }
  end(f: number): number {
    return this.table.f64[dbl(f, N.END)] as number;
  }
  small(f: number, field: number): number {
    return this.table.u8[byte(f, field)] as number;
  }
  setSmall(f: number, field: number, value: number): void {
    this.table.u8[byte(f, field)] = value;
  }
  state(f: number): number {
    return this.small(f, U.STATE);
  }
  field(f: number, field: number): number {
    return this.cold[f * C_STRIDE + field] as number;
  }
  /** tshark's IP-level counts. */
  tapFrames(f: number, dir: number): number {
    return this.frames(f, dir) - (this.miss[f * M_STRIDE + M.IP_FRAMES + dir] as number);
  }
  tapBytes(f: number, dir: number): number {
    return this.bytes(f, dir) - (this.miss[f * M_STRIDE + M.IP_BYTES + dir] as number);
  }
  tapStartOf(f: number): number {
    return this.state(f) & State.IP_MISS ? (this.tapStart[f] as number) : this.start(f);
  }
  tapEndOf(f: number): number {
    return this.state(f) & State.IP_MISS ? (this.tapEnd[f] as number) : this.end(f);
  }
  /** tshark's TCP/UDP-level counts (flows with ports only). */
  l4Frames(f: number, dir: number): number {
    return this.frames(f, dir) - (this.miss[f * M_STRIDE + M.L4_FRAMES + dir] as number);
  }
  l4Bytes(f: number, dir: number): number {
    return this.bytes(f, dir) - (this.miss[f * M_STRIDE + M.L4_BYTES + dir] as number);
  }
  l4StartOf(f: number): number {
    return this.state(f) & State.L4_MISS ? (this.l4Start[f] as number) : this.start(f);
  }
  l4EndOf(f: number): number {
    return this.state(f) & State.L4_MISS ? (this.l4End[f] as number) : this.end(f);
  }
  addMiss(f: number, field: number, frames: number, bytes: number): void {
    const at = f * M_STRIDE + field;
    this.miss[at] = (this.miss[at] as number) + frames;
    this.miss[at + 2] = (this.miss[at + 2] as number) + bytes;
  }
}

interface PendingFragment {
  /** Byte ranges received: [offset, end) pairs. */
  ranges: number[];
  /** Datagram payload length, once the last fragment arrived (-1 before). */
  total: number;
  done: boolean;
  /** Transport header of the first fragment. */
  transport: number;
  srcPort: number;
  dstPort: number;
}

interface PendingHello {
  dir: number;
  nextSeq: number;
  buf: Uint8Array;
  length: number;
  need: number;
  segments: number;
}

export interface DnsRow {
  name: string;
  type: string;
  queries: number;
  responses: number;
  rcodes: Record<string, number>;
  answers: Set<string>;
}
export interface HttpRow {
  method: string;
  host: string;
  path: string;
  requests: number;
  statuses: Record<string, number>;
}

const FRAG_COMPLETE = 1;
const FRAG_PENDING = 2;
const FRAG_NOT_REASSEMBLED = 3;

/** The analyzer's counts that the WebAssembly path carries on (written before a run, read back after it). */
const COUNTS = [
  [P.N, 'packets'],
  [P.BYTES, 'bytes'],
  [P.CAPTURED, 'capturedBytes'],
  [P.CUT, 'packetsCut'],
  [P.MIN_T, 'minT'],
  [P.MAX_T, 'maxT'],
  [P.MIN_IFACE, 'minInterface'],
  [P.MAX_IFACE, 'maxInterface'],
  [P.TCP_SEGMENTS, 'tcpSegments'],
  [P.TCP_DATA_SEGMENTS, 'tcpDataSegments'],
  [P.RETRANSMISSIONS, 'retransmissions'],
  [P.RETRANSMITTED_BYTES, 'retransmittedBytes'],
  [P.RESETS, 'resets'],
  [P.ZERO_WINDOWS, 'zeroWindows'],
] as const;

export class Analyzer {
  readonly options: AnalyzerOptions;
  // assigned first thing in the constructor (sized from the options); `declare` so that they are never undefined first
  declare readonly table: FlowTable;
  declare readonly flows: Flows;
  readonly timeline: TimelineBuilder;
  /** The current packet's time (ns from packet 0), shared with the timeline: doubles passed as arguments are boxed. */
  readonly clock = new Float64Array(1);
  /** Protocol stacks: counters by stack id (see stackId()). */
  declare readonly stackPackets: Float64Array;
  declare readonly stackBytes: Float64Array;

  packets = 0;
  bytes = 0;
  capturedBytes = 0;
  packetsCut = 0;
  baseSeconds = 0;
  baseNanos = 0;
  minT = Number.POSITIVE_INFINITY;
  maxT = Number.NEGATIVE_INFINITY;
  /** Interfaces of the earliest and latest packet (their timestamp precision is the times' precision). */
  minInterface = 0;
  maxInterface = 0;
  linkTypes = new Set<number>();
  private lastLinkType = -1;
  /** linkTypes as the WebAssembly path reads it: a byte per link type, 1 when seen. */
  declare private readonly linkSeen: Uint8Array;
  overflowPackets = 0;
  overflowBytes = 0;
  /** Traffic by direction relative to the host: [none/other, out, in, local, nonIp] packets and bytes. */
  declare readonly volumePackets: Float64Array;
  declare readonly volumeBytes: Float64Array;

  tcpSegments = 0;
  tcpDataSegments = 0;
  retransmissions = 0;
  retransmittedBytes = 0;
  resets = 0;
  zeroWindows = 0;

  readonly dns = new Map<string, DnsRow>();
  readonly addressNames = new Map<string, Set<string>>();
  readonly flowNames = new Map<number, string>();
  readonly tls = new Map<string, { flows: number; servers: Set<string> }>();
  readonly http = new Map<string, HttpRow>();
  readonly omitted = { dns: 0, tls: 0, http: 0 };
  private readonly pendingHttp = new Map<number, HttpRow[]>();
  private readonly pendingHello = new Map<number, PendingHello>();
  private readonly fragments = new Map<string, PendingFragment>();
  private fragPorts = { transport: 0, srcPort: 0, dstPort: 0, known: false };

  /** Host addresses: IPv4 words and IPv6 words (4 per address). */
  hostV4: number[] = [];
  hostV6: number[] = [];
  /**
   * hostV4 / hostV6 as hostMaskOf() reads them, after a sentinel that matches no address (-1): the loops run from the
   * first packet on, also while the host is being inferred, so that V8 has compiled them when the host becomes known
   * (a loop body that never ran deoptimizes the packet path when it first runs). Set by setHosts().
   */
  private hostMatch4 = new Float64Array([-1]);
  private hostMatch6 = new Float64Array([-1, -1, -1, -1]);
  hostSource: 'given' | 'inferred' | 'none';
  hostNote: string | undefined;
  private inferring: boolean;
  /** Packets logged while the host is being inferred (in the packet memory: the WebAssembly path logs too). */
  declare private readonly log: { flow: Int32Array; dir: Uint8Array; t: Float64Array; bytes: Float64Array; n: number };

  readonly maxFlows: number;
  private readonly d: DecodedPacket = createDecodedPacket();
  readonly warnings: string[] = [];

  /** Memory shared with the WebAssembly path (see packet-path.ts); undefined when it is not used. */
  readonly packetMemory: PacketMemory | undefined;
  /** The memory whose records go to the WebAssembly path: set while everything that path writes is in it. */
  private fastBuffer: ArrayBufferLike | undefined;
  /** Packets counted by the WebAssembly path. */
  fastPackets = 0;

  constructor(options: AnalyzerOptions = {}) {
    this.options = options;
    this.maxFlows = options.maxFlows ?? DEFAULT_MAX_FLOWS;
    const expected = Math.min(
      this.maxFlows,
      Math.min(MAX_INITIAL_FLOWS, Math.max(INITIAL_FLOWS, Math.floor(options.expectedFlows ?? 0))),
    );
    const memory =
      options.fastPath !== false ? createPacketMemory(packetMemoryBytes(expected, this.maxFlows)) : undefined;
    this.packetMemory = memory;
    const doubles = (length: number) => arrayIn(memory, Float64Array, length);
    this.linkSeen = arrayIn(memory, Uint8Array, 65_536);
    this.stackPackets = doubles(STACKS);
    this.stackBytes = doubles(STACKS);
    this.volumePackets = doubles(5);
    this.volumeBytes = doubles(5);
    this.log = {
      flow: arrayIn(memory, Int32Array, INFER_AFTER_PACKETS),
      dir: arrayIn(memory, Uint8Array, INFER_AFTER_PACKETS),
      t: doubles(INFER_AFTER_PACKETS),
      bytes: doubles(INFER_AFTER_PACKETS),
      n: 0,
    };
    this.table = new FlowTable(KEY_WIDTH, expected, FLOW_STRIDE_WORDS, memory);
    this.flows = new Flows(this.table, this.table.capacity, memory);
    if (options.binSeconds !== undefined && !(options.binSeconds > 0)) {
      throw new RangeError(`binSeconds must be a positive number of seconds, not ${options.binSeconds}`);
    }
    this.timeline = new TimelineBuilder(
      this.clock,
      options.binSeconds !== undefined ? Math.max(1, Math.round(options.binSeconds * 1e9)) : undefined,
      memory,
    );
    if (options.hostIps && options.hostIps.length > 0) {
      for (const text of options.hostIps) {
        const parsed = parseIPAddress(text.trim());
        if (!parsed) throw new RangeError(`not an IPv4 or IPv6 address: '${text}'`);
        if (parsed.version === 4) this.hostV4.push(parsed.words[0] as number);
        else this.hostV6.push(...parsed.words);
      }
      this.setHosts();
      this.hostSource = 'given';
      this.inferring = false;
    } else {
      this.hostSource = 'none';
      this.inferring = true;
    }
    this.placeTable();
  }

  /**
   * Read buffers in the memory the WebAssembly path reads (ReadOptions.allocateBuffer). A reader takes two; the
   * readers of one analysis (the files of a ring) come one after another, so the same two serve them all.
   */
  readonly allocateBuffer = (bytes: number): Buffer | undefined => {
    const i = this.readBuffers.length < 2 ? this.readBuffers.length : this.nextReadBuffer++ % 2;
    const reused = this.readBuffers[i];
    if (reused?.length === bytes) return reused;
    const buffer = this.packetMemory?.buffer(bytes);
    if (buffer) this.readBuffers[i] = buffer;
    return buffer;
  };
  private readonly readBuffers: Buffer[] = [];
  private nextReadBuffer = 0;

  /**
   * Decides whether the WebAssembly path counts records: while everything it writes is in its memory (the flow table
   * may no longer fit after growing). Called after the table was made and whenever it may have grown.
   */
  private placeTable(): void {
    const memory = this.packetMemory;
    const log = this.log;
    const arrays = [
      ...[this.table.slots, this.table.keys, this.flows.cold],
      ...[this.stackPackets, this.stackBytes, this.volumePackets, this.volumeBytes],
      ...[log.flow, log.dir, log.t, log.bytes, this.linkSeen],
    ];
    this.fastBuffer = memory?.holds(...arrays) ? memory.memory.buffer : undefined;
  }

  /**
   * The reader's hook for runs of classic pcap records (ReadOptions.recordRuns): the WebAssembly path counts what it
   * can of them, the reader hands the others to onPacket.
   */
  readonly recordRuns: RecordRunCounter = {
    packets: 0,
    capturedBytes: 0,
    startClassic: (format) => this.startClassic(format),
    countRecords: (buf, pos, end, maxPackets) => this.countRun(buf, pos, end, maxPackets, false),
    startSection: (littleEndian, interfaces, maxBlockBytes) =>
      this.startSection(littleEndian, interfaces, maxBlockBytes),
    countBlocks: (buf, pos, end, maxPackets) => this.countRun(buf, pos, end, maxPackets, true),
  };
  /** The pcapng section's interfaces as the WebAssembly path reads them (4 doubles each). */
  private interfaceTable: Float64Array | undefined;

  private startClassic(format: ClassicRecordFormat): boolean {
    const memory = this.packetMemory;
    if (!memory) return false;
    const p = memory.params;
    p[P.LITTLE_ENDIAN] = format.littleEndian ? 1 : 0;
    p[P.NANOS_PER_UNIT] = format.nanosecond ? 1 : 1000;
    p[P.UNITS_PER_SECOND] = format.nanosecond ? 1e9 : 1e6;
    p[P.LINK_TYPE] = format.linkType;
    p[P.MAX_CAPTURED] = format.maxCaptured;
    return true;
  }

  private startSection(littleEndian: boolean, interfaces: PcapngInterfaceFormat[], maxBlockBytes: number): boolean {
    const memory = this.packetMemory;
    if (!memory) return false;
    let table = this.interfaceTable;
    if (table === undefined || table.length < interfaces.length * 4) {
      table = memory.array(Float64Array, Math.max(64, interfaces.length * 8));
      if (!table) return false;
      this.interfaceTable = table;
    }
    interfaces.forEach((iface, i) => {
      table[4 * i] = iface.linkType;
      // times in µs or ns (if_tsresol 6 or 9, nearly every file) are converted in WebAssembly; others in TypeScript
      table[4 * i + 1] = iface.unitsPerSecond === 1e6 || iface.unitsPerSecond === 1e9 ? iface.unitsPerSecond : 0;
      table[4 * i + 2] = iface.offsetSeconds;
      table[4 * i + 3] = iface.index;
    });
    const p = memory.params;
    p[P.LITTLE_ENDIAN] = littleEndian ? 1 : 0;
    p[P.IFACES_AT] = table.byteOffset;
    p[P.IFACE_COUNT] = interfaces.length;
    p[P.MAX_BLOCK] = maxBlockBytes;
    return true;
  }

  /** Counts a run of classic pcap records or pcapng blocks in WebAssembly (ReadOptions.recordRuns). */
  private countRun(buf: Buffer, pos: number, end: number, maxPackets: number, blocks: boolean): number {
    const runs = this.recordRuns;
    runs.packets = 0;
    runs.capturedBytes = 0;
    const memory = this.packetMemory;
    if (buf.buffer !== this.fastBuffer || memory === undefined || !memory.holds(this.timeline.packets)) return pos;
    const p = memory.params;
    const base = buf.byteOffset;
    let at = base + pos;
    this.writeParams(p, maxPackets);
    for (;;) {
      at = blocks ? memory.wasm.runBlocks(at, base + end) : memory.wasm.run(at, base + end);
      runs.packets += p[P.READ] as number;
      runs.capturedBytes += p[P.READ_BYTES] as number;
      p[P.PACKETS_LEFT] = (p[P.PACKETS_LEFT] as number) - (p[P.READ] as number);
      const step = p[P.STEP] as number;
      if (step !== 0) this.payloadStep(step, buf, base);
      if (this.inferring && (p[P.LOG_N] as number) >= INFER_AFTER_PACKETS) {
        // as the TypeScript path does after logging the last packet
        this.readParams(p);
        this.inferHost(false);
        this.writeParams(p, p[P.PACKETS_LEFT] as number);
      } else if (step === 0) {
        break;
      }
    }
    this.readParams(p);
    this.fastPackets += runs.packets;
    return at - base;
  }

  /** The analyzer's state as the WebAssembly path reads it. */
  private writeParams(p: Float64Array, packetsLeft: number): void {
    const table = this.table;
    const tl = this.timeline;
    const log = this.log;
    for (const [at, field] of COUNTS) p[at] = this[field];
    p[P.LINK_SEEN_AT] = this.linkSeen.byteOffset;
    p[P.SIZE] = table.size;
    p[P.CAPACITY] = table.capacity;
    p[P.SLOT_MASK] = table.mask;
    p[P.MAX_FLOWS] = this.maxFlows;
    p[P.BASE_SECONDS] = this.baseSeconds;
    p[P.BASE_NANOS] = this.baseNanos;
    p[P.PACKETS_LEFT] = packetsLeft;
    p[P.BIN_NS] = tl.binNs;
    p[P.BIN_COUNT] = tl.count;
    p[P.BIN_LIMIT] = tl.limit;
    p[P.BIN_LENGTH] = tl.packets.length;
    p[P.SLOTS_AT] = table.slots.byteOffset;
    p[P.RECORDS_AT] = table.keys.byteOffset;
    p[P.COLD_AT] = this.flows.cold.byteOffset;
    p[P.VOLUME_PACKETS_AT] = this.volumePackets.byteOffset;
    p[P.VOLUME_BYTES_AT] = this.volumeBytes.byteOffset;
    p[P.STACK_PACKETS_AT] = this.stackPackets.byteOffset;
    p[P.STACK_BYTES_AT] = this.stackBytes.byteOffset;
    p[P.BIN_PACKETS_AT] = tl.packets.byteOffset;
    p[P.BIN_BYTES_AT] = tl.bytes.byteOffset;
    p[P.BIN_OUT_PACKETS_AT] = tl.outPackets.byteOffset;
    p[P.BIN_OUT_BYTES_AT] = tl.outBytes.byteOffset;
    p[P.BIN_IN_PACKETS_AT] = tl.inPackets.byteOffset;
    p[P.BIN_IN_BYTES_AT] = tl.inBytes.byteOffset;
    p[P.INFERRING] = this.inferring ? 1 : 0;
    p[P.LOG_N] = log.n;
    p[P.LOG_LIMIT] = INFER_AFTER_PACKETS;
    p[P.LOG_FLOW_AT] = log.flow.byteOffset;
    p[P.LOG_DIR_AT] = log.dir.byteOffset;
    p[P.LOG_T_AT] = log.t.byteOffset;
    p[P.LOG_BYTES_AT] = log.bytes.byteOffset;
    p[P.FRESH] = 1;
  }

  /** Takes back what the WebAssembly path counted. */
  private readParams(p: Float64Array): void {
    (this.packetMemory as PacketMemory).wasm.storeState();
    for (const [at, field] of COUNTS) this[field] = p[at] as number;
    this.table.size = p[P.SIZE] as number;
    this.timeline.count = p[P.BIN_COUNT] as number;
    this.log.n = p[P.LOG_N] as number;
  }

  /** Runs the payload parser the WebAssembly path asked for after counting a packet. */
  private payloadStep(step: number, buf: Buffer, base: number): void {
    const p = (this.packetMemory as PacketMemory).params;
    const f = p[P.STEP_FLOW] as number;
    const dir = p[P.STEP_DIR] as number;
    const seq = p[P.STEP_SEQ] as number;
    const payload = p[P.STEP_PAYLOAD] as number;
    const from = (p[P.STEP_FROM] as number) - base;
    const to = (p[P.STEP_TO] as number) - base;
    if (step === Step.DNS) this.dnsMessage(buf, from, to);
    else if (step === Step.CLIENT_HELLO) this.clientHello(buf, from, to, f, dir, seq, payload);
    else if (step === Step.HELLO_MORE) {
      const pending = this.pendingHello.get(f);
      if (pending && pending.dir === dir) this.continueHello(pending, buf, from, to, f, seq, payload);
    } else if (step === Step.HTTP) this.httpSegment(buf, from, to, f);
  }

  /** The reader callback. */
  readonly onPacket = (raw: RawPacket): void => {
    const n = this.packets++;
    const wire = raw.originalLength;
    this.bytes += wire;
    this.capturedBytes += raw.capturedLength;
    if (raw.capturedLength < wire) this.packetsCut++;
    if (n === 0) {
      this.baseSeconds = raw.seconds;
      this.baseNanos = raw.nanos;
    }
    if (raw.linkType !== this.lastLinkType) {
      this.lastLinkType = raw.linkType; // a Set lookup per packet costs more than this compare
      this.linkTypes.add(raw.linkType);
      this.linkSeen[raw.linkType & 0xffff] = 1;
    }
    const t = (raw.seconds - this.baseSeconds) * 1e9 + (raw.nanos - this.baseNanos);
    this.clock[0] = t;
    if (t < this.minT) {
      this.minT = t;
      this.minInterface = raw.interfaceIndex ?? raw.interfaceId;
    }
    if (t > this.maxT) {
      this.maxT = t;
      this.maxInterface = raw.interfaceIndex ?? raw.interfaceId;
    }
    const d = decodePacket(raw, this.d);
    let app = 0;
    const net = d.network;
    if (net !== Net.IPV4 && net !== Net.IPV6) {
      this.timeline.add(wire, Direction.NONE);
      this.volumePackets[4] = (this.volumePackets[4] as number) + 1;
      this.volumeBytes[4] = (this.volumeBytes[4] as number) + wire;
    } else {
      app = this.ipPacket(d, n, wire);
    }
    const s = stackId(d, app);
    this.stackPackets[s] = (this.stackPackets[s] as number) + 1;
    this.stackBytes[s] = (this.stackBytes[s] as number) + wire;
  };

  /** Counts an IP packet in its flow; returns the application protocol seen (App.*). */
  private ipPacket(d: DecodedPacket, n: number, wire: number): number {
    const t = this.clock[0] as number;
    const v6 = d.network === Net.IPV6;
    let ipTap = true;
    let transport = d.transport;
    let hasPorts = transport === Transport.TCP || transport === Transport.UDP;
    let l4Tap = hasPorts;
    let sport = d.srcPort;
    let dport = d.dstPort;
    if (d.fragment !== Fragment.NONE) {
      const r = this.fragment(d, v6);
      const first = d.fragment === Fragment.FIRST;
      const fp = this.fragPorts;
      if (fp.known) {
        transport = fp.transport;
        sport = fp.srcPort;
        dport = fp.dstPort;
        hasPorts = true;
      } else {
        hasPorts = false;
      }
      if (v6) ipTap = r === FRAG_COMPLETE || (r === FRAG_NOT_REASSEMBLED && first);
      l4Tap = hasPorts && (r === FRAG_COMPLETE || (r === FRAG_NOT_REASSEMBLED && first));
    }

    // canonical key: low (address, port) first; dir 1 when the source is the high side
    const key = this.table.key;
    const src = d.src;
    const dst = d.dst;
    const words = v6 ? 4 : 1;
    let cmp = 0;
    for (let i = 0; i < words; i++) {
      const a = src[i] as number;
      const b = dst[i] as number;
      if (a !== b) {
        cmp = a < b ? -1 : 1;
        break;
      }
    }
    if (cmp === 0 && hasPorts && sport !== dport) cmp = sport < dport ? -1 : 1;
    const dir = cmp > 0 ? 1 : 0;
    const lo = dir === 0 ? src : dst;
    const hi = dir === 0 ? dst : src;
    if (v6) {
      key[0] = lo[0] as number;
      key[1] = lo[1] as number;
      key[2] = lo[2] as number;
      key[3] = lo[3] as number;
      key[4] = hi[0] as number;
      key[5] = hi[1] as number;
      key[6] = hi[2] as number;
      key[7] = hi[3] as number;
    } else {
      key[0] = lo[0] as number;
      key[1] = 0;
      key[2] = 0;
      key[3] = 0;
      key[4] = hi[0] as number;
      key[5] = 0;
      key[6] = 0;
      key[7] = 0;
    }
    if (hasPorts) {
      key[8] = dir === 0 ? ((sport << 16) | dport) >>> 0 : ((dport << 16) | sport) >>> 0;
      key[9] = d.protocol | META_PORTS | (v6 ? META_V6 : 0);
    } else {
      key[8] = 0;
      key[9] = d.protocol | (v6 ? META_V6 : 0);
    }

    let f: number;
    if (this.table.size < this.maxFlows) {
      f = this.table.findOrInsert();
    } else {
      f = this.table.find();
      if (f < 0) {
        if (this.overflowPackets++ === 0) {
          this.warnings.push(
            `More than ${this.maxFlows} flows: packets of further flows count in the totals, protocols and timeline, but not in conversations, endpoints or top lists.`,
          );
        }
        this.overflowBytes += wire;
        this.timeline.add(wire, Direction.NONE);
        this.volumePackets[0] = (this.volumePackets[0] as number) + 1;
        this.volumeBytes[0] = (this.volumeBytes[0] as number) + wire;
        return App.UNKNOWN;
      }
    }
    const flows = this.flows;
    const table = this.table;
    if (table.inserted) {
      if (this.fastBuffer !== undefined) this.placeTable(); // it may have grown
      flows.init(f);
      table.f64[dbl(f, N.START)] = t;
      table.f64[dbl(f, N.END)] = t;
      table.u8[byte(f, U.HOST)] = this.hostMaskOf(v6);
    }
    const num = table.f64;
    const o = dbl(f, 0);
    const so = byte(f, U.STATE);
    let st = table.u8[so] as number;
    if (ipTap) {
      if ((st & State.TAP_SEEN) === 0) {
        st |= State.TAP_SEEN | (dir === 1 ? State.TAP_DIR : 0);
        flows.cold[f * 8 + C.TAP_FIRST] = n;
      }
      if (st & State.IP_MISS) {
        if (t < (flows.tapStart[f] as number)) flows.tapStart[f] = t;
        if (t > (flows.tapEnd[f] as number)) flows.tapEnd[f] = t;
      }
    } else {
      if ((st & State.IP_MISS) === 0) {
        // every packet before this one was counted: their span is the flow's so far
        st |= State.IP_MISS;
        const seen = (st & State.TAP_SEEN) !== 0;
        flows.tapStart[f] = seen ? (num[o + N.START] as number) : Number.POSITIVE_INFINITY;
        flows.tapEnd[f] = seen ? (num[o + N.END] as number) : Number.NEGATIVE_INFINITY;
      }
      flows.addMiss(f, M.IP_FRAMES + dir, 1, wire);
    }
    if (hasPorts) {
      if (l4Tap) {
        if ((st & State.L4_SEEN) === 0) st |= State.L4_SEEN | (dir === 1 ? State.L4_DIR : 0);
        if (st & State.L4_MISS) {
          if (t < (flows.l4Start[f] as number)) flows.l4Start[f] = t;
          if (t > (flows.l4End[f] as number)) flows.l4End[f] = t;
        }
      } else {
        if ((st & State.L4_MISS) === 0) {
          st |= State.L4_MISS;
          const seen = (st & State.L4_SEEN) !== 0;
          flows.l4Start[f] = seen ? (num[o + N.START] as number) : Number.POSITIVE_INFINITY;
          flows.l4End[f] = seen ? (num[o + N.END] as number) : Number.NEGATIVE_INFINITY;
        }
        flows.addMiss(f, M.L4_FRAMES + dir, 1, wire);
      }
    }
    table.u8[so] = st;
    num[o + N.FRAMES + dir] = (num[o + N.FRAMES + dir] as number) + 1;
    num[o + N.BYTES + dir] = (num[o + N.BYTES + dir] as number) + wire;
    if (t < (num[o + N.START] as number)) num[o + N.START] = t;
    else if (t > (num[o + N.END] as number)) num[o + N.END] = t;

    // direction relative to the host
    // (while the host is being inferred every mask is 0: the packet counts as "other" until inferHost() moves it)
    this.timeline.add(wire, this.countDirection(f, dir, wire));
    if (this.inferring) {
      const log = this.log;
      const i = log.n++;
      log.flow[i] = f;
      log.dir[i] = dir;
      log.t[i] = t;
      log.bytes[i] = wire;
      // called on every logged packet (it returns at once until the log is full) so that the call site has type
      // feedback when the packet path is optimized: a first call from optimized code would deoptimize it
      this.inferHost(false);
    }

    let app = 0;
    if (d.fragment === Fragment.NONE) {
      if (transport === Transport.TCP) app = this.tcp(d, f, dir);
      else if (transport === Transport.UDP && (sport === 53 || dport === 53)) {
        app = App.DNS;
        flows.setSmall(f, U.APP, App.DNS);
        if (d.payloadCaptured >= 12) this.dnsMessage(d.buffer, d.payloadOffset, d.payloadOffset + d.payloadCaptured);
      }
    }
    return app;
  }

  /** Counts a packet's direction relative to the host; returns its timeline direction. */
  private countDirection(f: number, dir: number, wire: number): number {
    const mask = this.flows.small(f, U.HOST);
    const srcHost = (mask >> dir) & 1;
    const dstHost = (mask >> (1 - dir)) & 1;
    const cls = srcHost ? (dstHost ? 3 : Direction.OUT) : dstHost ? Direction.IN : 0;
    this.volumePackets[cls] = (this.volumePackets[cls] as number) + 1;
    this.volumeBytes[cls] = (this.volumeBytes[cls] as number) + wire;
    return cls === Direction.OUT || cls === Direction.IN ? cls : Direction.NONE;
  }

  private setHosts(): void {
    this.hostMatch4 = new Float64Array([-1, ...this.hostV4]);
    this.hostMatch6 = new Float64Array([-1, -1, -1, -1, ...this.hostV6]);
    const memory = this.packetMemory;
    if (memory) {
      // the host addresses as the WebAssembly path reads them: words in memory order
      const v4 = memory.array(Uint32Array, this.hostV4.length);
      const v6 = memory.array(Uint32Array, this.hostV6.length);
      if (v4 && v6) {
        v4.set(this.hostV4);
        v6.set(this.hostV6);
        const p = memory.params;
        p[P.HOST4_AT] = v4.byteOffset;
        p[P.HOST4_COUNT] = this.hostV4.length;
        p[P.HOST6_AT] = v6.byteOffset;
        p[P.HOST6_COUNT] = this.hostV6.length / 4;
      }
    }
  }

  /** Host mask of the flow whose key is in table.key (0 while the host is being inferred: no host addresses yet). */
  private hostMaskOf(v6: boolean): number {
    const key = this.table.key;
    let mask = 0;
    if (v6) {
      const h = this.hostMatch6;
      for (let i = 0; i < h.length; i += 4) {
        if (key[0] === h[i] && key[1] === h[i + 1] && key[2] === h[i + 2] && key[3] === h[i + 3]) mask |= 1;
        if (key[4] === h[i] && key[5] === h[i + 1] && key[6] === h[i + 2] && key[7] === h[i + 3]) mask |= 2;
      }
    } else {
      const h = this.hostMatch4;
      for (let i = 0; i < h.length; i++) {
        if (key[0] === h[i]) mask |= 1;
        if (key[4] === h[i]) mask |= 2;
      }
    }
    return mask;
  }

  /**
   * For host inference: each address of each flow (once when both sides are the same) that may be a host's own, with
   * the packets of the flows it is in (as tx frames; port 0, tag 1 for IPv6), and the packets of all IPv4 and all
   * IPv6 flows.
   */
  private addressTally(): { addresses: Tally; totals: Float64Array } {
    const memory = this.packetMemory;
    const keys = this.table.keys;
    const n = this.table.size;
    const addresses = new Tally(Math.max(16, n * 2), memory);
    const t = addresses.table;
    const totals = arrayIn(memory, Float64Array, 2);
    if (memory?.holds(keys, t.slots, t.keys, totals)) {
      t.size = memory.wasm.addressTally(
        keys.byteOffset,
        n,
        t.slots.byteOffset,
        t.mask,
        t.keys.byteOffset,
        totals.byteOffset,
      );
      return { addresses, totals };
    }
    for (let f = 0; f < n; f++) {
      const base = f * FLOW_STRIDE_WORDS;
      const v6 = ((keys[base + 9] as number) & META_V6) !== 0;
      const packets = this.flows.frames(f, 0) + this.flows.frames(f, 1);
      totals[v6 ? 1 : 0] = (totals[v6 ? 1 : 0] as number) + packets;
      const same =
        keys[base] === keys[base + 4] &&
        keys[base + 1] === keys[base + 5] &&
        keys[base + 2] === keys[base + 6] &&
        keys[base + 3] === keys[base + 7];
      for (let side = 0; side < (same ? 1 : 2); side++) {
        const at = base + side * 4;
        if (candidate(v6, keys, at)) addresses.add(keys, at, 0, v6 ? 1 : 0, packets, 0, 0, 0);
      }
    }
    return { addresses, totals };
  }

  /**
   * Picks the host addresses from the flows seen so far: per IP version, the address in the most packets, if it is in
   * at least half of that version's packets (loopback, multicast, broadcast, unspecified and IPv6 link-local
   * addresses are not candidates). Then replays the logged packets' directions.
   */
  private inferHost(force: boolean): void {
    if (!force && this.log.n < INFER_AFTER_PACKETS) return;
    this.inferring = false;
    const { addresses, totals } = this.addressTally();
    const chosen: string[] = [];
    for (const v6 of [false, true]) {
      let best = -1;
      for (let e = 0; e < addresses.table.size; e++) {
        if ((addresses.tag(e) === 1) !== v6) continue;
        if (best < 0 || addresses.txFrames(e) > addresses.txFrames(best)) best = e;
      }
      const count = best < 0 ? 0 : addresses.txFrames(best);
      const total = totals[v6 ? 1 : 0] as number;
      if (best >= 0 && count * 2 >= total) {
        const address = addresses.address(best);
        if (v6) this.hostV6.push(...address);
        else this.hostV4.push(address[0] as number);
        this.setHosts();
        chosen.push(
          `${v6 ? formatIPv6(address) : formatIPv4(address[0] as number)} (in ${Math.round((100 * count) / total)}% of IPv${v6 ? 6 : 4} packets)`,
        );
      }
    }
    if (chosen.length > 0) {
      this.hostSource = 'inferred';
      this.hostNote = `No host address was given; inferred from the first packets: ${chosen.join(', ')}.`;
    } else {
      this.hostNote =
        'No host address was given and none could be inferred (no address is in half of the packets): directions are not reported.';
    }
    const log = this.log;
    if (chosen.length === 0) {
      // every mask stays 0 and every logged packet stays "other": nothing to redo
      log.n = 0;
      return;
    }
    // host masks of the flows so far
    const keys = this.table.keys;
    const key = this.table.key;
    for (let f = 0; f < this.table.size; f++) {
      for (let i = 0; i < KEY_WIDTH; i++) key[i] = keys[f * FLOW_STRIDE_WORDS + i] as number;
      this.flows.setSmall(f, U.HOST, this.hostMaskOf(((key[9] as number) & META_V6) !== 0));
    }
    const now = this.clock[0] as number;
    for (let i = 0; i < log.n; i++) {
      this.clock[0] = log.t[i] as number;
      this.volumePackets[0] = (this.volumePackets[0] as number) - 1;
      this.volumeBytes[0] = (this.volumeBytes[0] as number) - (log.bytes[i] as number);
      const bytes = log.bytes[i] as number;
      this.timeline.addDirection(bytes, this.countDirection(log.flow[i] as number, log.dir[i] as number, bytes));
    }
    this.clock[0] = now;
    log.n = 0;
  }

  /**
   * Tracks IP fragments as tshark's reassembly does: a datagram completes on the frame that fills its last gap.
   * Sets fragPorts to the datagram's ports when its first fragment has been seen.
   */
  private fragment(d: DecodedPacket, v6: boolean): number {
    const fp = this.fragPorts;
    fp.known = false;
    const id = v6
      ? `6:${d.src.join(',')}>${d.dst.join(',')}:${d.ipId}`
      : `4:${d.src[0]}>${d.dst[0]}:${d.ipId}:${d.protocol}`;
    let entry = this.fragments.get(id);
    if (d.fragment === Fragment.FIRST && (d.transport === Transport.TCP || d.transport === Transport.UDP)) {
      fp.known = true;
      fp.transport = d.transport;
      fp.srcPort = d.srcPort;
      fp.dstPort = d.dstPort;
    } else if (entry && entry.transport !== 0) {
      fp.known = true;
      fp.transport = entry.transport;
      fp.srcPort = entry.srcPort;
      fp.dstPort = entry.dstPort;
    }
    const captured = d.ipOffset + d.ipTotalLength <= d.end && d.fragmentLength > 0;
    if (!captured) return FRAG_NOT_REASSEMBLED;
    if (!entry || entry.done) {
      if (entry?.done) this.fragments.delete(id);
      entry = { ranges: [], total: -1, done: false, transport: 0, srcPort: 0, dstPort: 0 };
      this.fragments.set(id, entry);
      if (this.fragments.size > MAX_FRAGMENT_DATAGRAMS) {
        const oldest = this.fragments.keys().next().value;
        if (oldest !== undefined) this.fragments.delete(oldest);
      }
    }
    if (d.fragment === Fragment.FIRST && fp.known) {
      entry.transport = fp.transport;
      entry.srcPort = fp.srcPort;
      entry.dstPort = fp.dstPort;
    }
    const start = d.fragmentOffset;
    const end = start + d.fragmentLength;
    entry.ranges.push(start, end);
    if (!d.moreFragments) entry.total = end;
    if (entry.total < 0) return FRAG_PENDING;
    // complete when [0, total) is covered
    const pairs: Array<[number, number]> = [];
    for (let i = 0; i < entry.ranges.length; i += 2) {
      pairs.push([entry.ranges[i] as number, entry.ranges[i + 1] as number]);
    }
    pairs.sort((a, b) => a[0] - b[0]);
    let covered = 0;
    for (const [s, e] of pairs) {
      if (s > covered) break;
      if (e > covered) covered = e;
    }
    if (covered < entry.total) return FRAG_PENDING;
    entry.done = true;
    return FRAG_COMPLETE;
  }

  private tcp(d: DecodedPacket, f: number, dir: number): number {
    const t = this.clock[0] as number;
    const flows = this.flows;
    const num = this.table.f64;
    const u8 = this.table.u8;
    const o = dbl(f, 0);
    const uo = byte(f, 0);
    const cold = flows.cold;
    const co = f * 8;
    this.tcpSegments++;
    const flags = d.tcpFlags;
    const payload = d.payloadLength;
    const segLen = payload + (flags & TcpFlag.SYN ? 1 : 0) + (flags & TcpFlag.FIN ? 1 : 0);
    let bits = u8[uo + U.TCP] as number;
    const seqBit = dir === 0 ? FlowBit.SEQ0 : FlowBit.SEQ1;
    const seq = d.seq;
    const nextAt = o + N.NEXT_SEQ + dir;
    if (segLen > 0) {
      this.tcpDataSegments++;
      if (bits & seqBit) {
        const next = num[nextAt] as number;
        const behind = ((seq - next) | 0) < 0;
        const keepAlive =
          payload <= 1 && (flags & (TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)) === 0 && (seq + 1) >>> 0 === next;
        if (behind && !keepAlive) {
          this.retransmissions++;
          this.retransmittedBytes += payload;
          cold[co + C.RETRANS] = (cold[co + C.RETRANS] as number) + 1;
        }
      }
    }
    const end = (seq + segLen) >>> 0;
    if (!(bits & seqBit) || ((end - (num[nextAt] as number)) | 0) > 0) {
      num[nextAt] = end;
      bits |= seqBit;
    }
    if (flags & TcpFlag.RST) {
      this.resets++;
      cold[co + C.RESETS] = (cold[co + C.RESETS] as number) + 1;
      bits |= FlowBit.RST;
      if (bits & FlowBit.SYN && dir !== u8[uo + U.SYN_DIR]) bits |= FlowBit.RST_FROM_RESPONDER;
    } else if (d.window === 0 && (flags & (TcpFlag.SYN | TcpFlag.FIN)) === 0) {
      this.zeroWindows++;
      cold[co + C.ZERO_WINDOWS] = (cold[co + C.ZERO_WINDOWS] as number) + 1;
    }
    if (flags & TcpFlag.SYN) {
      if (!(flags & TcpFlag.ACK)) {
        if (!(bits & FlowBit.SYN_ACK)) {
          cold[co + C.SYN_TIME] = t;
          u8[uo + U.SYN_DIR] = dir;
          bits |= FlowBit.SYN;
        }
      } else if (bits & FlowBit.SYN && !(bits & FlowBit.SYN_ACK) && dir !== u8[uo + U.SYN_DIR]) {
        cold[co + C.RTT] = t - (cold[co + C.SYN_TIME] as number);
        bits |= FlowBit.SYN_ACK;
      }
    }
    u8[uo + U.TCP] = bits;

    const captured = d.payloadCaptured;
    if (captured === 0) {
      const app = u8[uo + U.APP] as number;
      return app === App.TLS || app === App.HTTP ? -app : 0;
    }
    let app = u8[uo + U.APP] as number;
    // every test made up front: a test first made when a flow's label changes (after its 4th try, say) would
    // deoptimize the packet path
    const { UNKNOWN, TLS, HTTP, OTHER } = App;
    const wasTls = app === TLS;
    const data = d.buffer;
    const p = d.payloadOffset;
    const e = p + captured;
    if (app === UNKNOWN) {
      const start = classifyStart(data, p, e);
      if (start === Start.TLS_CLIENT_HELLO) {
        app = TLS;
        this.clientHello(data, p, e, f, dir, seq, payload);
      } else if (start === Start.TLS) {
        app = TLS;
      } else if (start === Start.HTTP_REQUEST || start === Start.HTTP_RESPONSE) {
        app = HTTP;
      } else {
        const tries = (u8[uo + U.TRIES] as number) + 1;
        u8[uo + U.TRIES] = tries;
        if (tries >= 4) app = OTHER;
      }
      u8[uo + U.APP] = app;
    } else if (wasTls) {
      const pending = this.pendingHello.get(f);
      if (pending && pending.dir === dir) this.continueHello(pending, data, p, e, f, seq, payload);
    }
    if (app === HTTP) this.httpSegment(data, p, e, f);
    return app;
  }

  private clientHello(
    data: Uint8Array,
    p: number,
    e: number,
    f: number,
    dir: number,
    seq: number,
    payload: number,
  ): void {
    const need = Math.min(clientHelloLength(data, p, e), MAX_PENDING_HELLO_BYTES);
    if (need > e - p && e - p === payload) {
      const buf = new Uint8Array(need);
      buf.set(data.subarray(p, e));
      this.pendingHello.set(f, { dir, nextSeq: (seq + payload) >>> 0, buf, length: e - p, need, segments: 1 });
      this.flows.setSmall(f, U.TCP, this.flows.small(f, U.TCP) | FlowBit.HELLO);
      return;
    }
    this.sni(parseClientHello(data, p, e)?.sni, f, dir);
  }

  private continueHello(
    h: PendingHello,
    data: Uint8Array,
    p: number,
    e: number,
    f: number,
    seq: number,
    payload: number,
  ): void {
    if (seq !== h.nextSeq) {
      if (++h.segments > 8) this.finishHello(h, f);
      return;
    }
    const n = Math.min(e - p, h.need - h.length);
    h.buf.set(data.subarray(p, p + n), h.length);
    h.length += n;
    h.nextSeq = (seq + payload) >>> 0;
    if (h.length >= h.need || e - p < payload || ++h.segments > 8) this.finishHello(h, f);
  }

  private finishHello(h: PendingHello, f: number): void {
    this.pendingHello.delete(f);
    this.flows.setSmall(f, U.TCP, this.flows.small(f, U.TCP) & ~FlowBit.HELLO);
    this.sni(parseClientHello(h.buf, 0, h.length)?.sni, f, h.dir);
  }

  /** Records a ClientHello's server name; `dir` is the ClientHello's direction (the server received it). */
  private sni(sni: string | undefined, f: number, dir: number): void {
    if (!sni) return;
    const name = sni.toLowerCase();
    this.flowNames.set(f, name);
    let row = this.tls.get(name);
    if (!row) {
      if (this.tls.size >= MAX_NAME_ROWS) {
        this.omitted.tls++;
        return;
      }
      row = { flows: 0, servers: new Set() };
      this.tls.set(name, row);
    }
    row.flows++;
    if (row.servers.size < 16) row.servers.add(flowAddressText(this.table.keys, f, dir === 0 ? 1 : 0));
  }

  private httpSegment(data: Uint8Array, p: number, e: number, f: number): void {
    const start = classifyStart(data, p, e);
    if (start === Start.HTTP_REQUEST) {
      const req = parseHttpRequest(data, p, e);
      if (!req) return;
      if (req.host && !this.flowNames.has(f)) this.flowNames.set(f, req.host);
      const id = `${req.method} ${req.host} ${req.path}`;
      let row = this.http.get(id);
      if (!row) {
        if (this.http.size >= MAX_NAME_ROWS) {
          this.omitted.http++;
          return;
        }
        row = { method: req.method, host: req.host, path: req.path, requests: 0, statuses: {} };
        this.http.set(id, row);
      }
      row.requests++;
      const queue = this.pendingHttp.get(f);
      if (queue) {
        if (queue.length < 64) queue.push(row);
      } else this.pendingHttp.set(f, [row]);
    } else if (start === Start.HTTP_RESPONSE) {
      const status = parseHttpStatus(data, p, e);
      const row = this.pendingHttp.get(f)?.shift();
      if (row && status !== undefined && status >= 100) {
        // 1xx responses are interim: the request waits for its final status
        if (status < 200) this.pendingHttp.get(f)?.unshift(row);
        else row.statuses[status] = (row.statuses[status] ?? 0) + 1;
      }
    }
  }

  private dnsMessage(data: Uint8Array, p: number, e: number): void {
    const m = parseDns(data, p, e);
    if (!m) return;
    const type = dnsTypeName(m.type);
    const id = `${m.name} ${type}`;
    let row = this.dns.get(id);
    if (!row) {
      if (this.dns.size >= MAX_NAME_ROWS) {
        this.omitted.dns++;
        return;
      }
      row = { name: m.name, type, queries: 0, responses: 0, rcodes: {}, answers: new Set() };
      this.dns.set(id, row);
    }
    if (!m.response) {
      row.queries++;
      return;
    }
    row.responses++;
    const rcode = dnsRcodeName(m.rcode);
    row.rcodes[rcode] = (row.rcodes[rcode] ?? 0) + 1;
    for (const a of m.answers) {
      if (!a.data) continue;
      if (row.answers.size < 32) row.answers.add(a.data);
      if ((a.type === 1 || a.type === 28) && this.addressNames.size < 100_000) {
        let names = this.addressNames.get(a.data);
        if (!names) {
          names = new Set();
          this.addressNames.set(a.data, names);
        }
        if (names.size < 8) names.add(m.name);
      }
    }
  }

  /** Builds the report; `read` is the reader's result (file facts, warnings). */
  finish(read?: ReadResult, context: FinishContext = {}): Report {
    if (this.inferring) this.inferHost(true);
    for (const [f, h] of this.pendingHello) this.finishHello(h, f);
    return buildReport(this, read, context);
  }
}

/** Whether the address at keys[at] may be a host's own: not loopback, multicast, broadcast, unspecified, link-local. */
function candidate(v6: boolean, keys: Uint32Array, at: number): boolean {
  const w = keys[at] as number;
  if (!v6) {
    const first = w >>> 24;
    return !(first === 127 || first === 0 || first >= 224);
  }
  if (w >>> 24 === 0xff) return false; // multicast
  if (w >>> 22 === 0x3fa) return false; // fe80::/10
  const zeroHead = w === 0 && keys[at + 1] === 0 && keys[at + 2] === 0;
  return !(zeroHead && (keys[at + 3] as number) >>> 0 <= 1); // :: and ::1
}

/** Text of one side of flow f (side 0: low, 1: high). */
export function flowAddressText(keys: Uint32Array, f: number, side: number): string {
  const base = f * FLOW_STRIDE_WORDS;
  const v6 = ((keys[base + 9] as number) & META_V6) !== 0;
  const at = base + (side === 1 ? 4 : 0);
  return v6 ? formatIPv6(keys, at) : formatIPv4(keys[at] as number);
}

// Protocol stacks: link(6) × vlan(2) × network(5) × transport(7) × app(4)
const NET_INDEX = new Uint8Array(16).fill(4);
NET_INDEX[Net.NONE] = 0;
NET_INDEX[Net.IPV4] = 1;
NET_INDEX[Net.IPV6] = 2;
NET_INDEX[Net.ARP] = 3;
export const STACKS = 6 * 2 * 5 * 7 * 4;

/** Stack id of a decoded packet; app < 0 marks a TLS/HTTP flow's packet without payload (counted at TCP). */
export function stackId(d: DecodedPacket, app: number): number {
  const link = d.link * 2 + (d.vlanDepth > 0 ? 1 : 0);
  const net = NET_INDEX[d.network & 15] as number;
  let l4 = 0;
  if (net === 1 || net === 2) {
    switch (d.transport) {
      case Transport.TCP:
        l4 = 1;
        break;
      case Transport.UDP:
        l4 = 2;
        break;
      case Transport.ICMP:
        l4 = 3;
        break;
      case Transport.ICMPV6:
        l4 = 4;
        break;
      case Transport.OTHER:
        l4 = 5;
        break;
      default:
        l4 = d.fragment === Fragment.LATER ? 6 : 0;
    }
  }
  const a = app > 0 && app < App.OTHER ? app : 0;
  return ((link * 5 + net) * 7 + l4) * 4 + a;
}

export function decodeStackId(id: number): { link: number; vlan: boolean; net: number; l4: number; app: number } {
  const app = id % 4;
  let rest = (id - app) / 4;
  const l4 = rest % 7;
  rest = (rest - l4) / 7;
  const net = rest % 5;
  rest = (rest - net) / 5;
  return { link: rest >> 1, vlan: (rest & 1) === 1, net, l4, app };
}

export { Link };

// Give Flows' growth path type feedback at load (as flow-table.ts does for the table), so that the first growth does
// not deoptimize the packet path.
{
  // (enough calls for V8 to allocate init()'s feedback vector before the last growths)
  const flows = new Flows(new FlowTable(1, 1), 1);
  for (let f = 0; f < 256; f++) flows.init(f);
}

/**
 * Memory for the WebAssembly path: the reader's two buffers (2 MiB each by default), the timeline and other counters,
 * the flow table with what it leaves behind as it grows (each flow: a 128-byte record, two 4-byte slots and the
 * Flows arrays, twice), and the report's tables and lists (about 700 bytes a flow). Room for four times the flows the
 * table starts with (at most `maxFlows`): a capture with more flows goes on in the TypeScript path once its table no
 * longer fits. Pages are committed only when written, so what is reserved and not used costs no memory (V8 still
 * counts it: more than 64 MB makes it collect garbage once).
 */
function packetMemoryBytes(expectedFlows: number, maxFlows: number): number {
  const flows = Math.min(maxFlows, 4 * expectedFlows);
  const perFlow = FLOW_STRIDE_WORDS * 4 + 8 + (C_STRIDE + M_STRIDE + 4) * 8;
  return Math.min(MAX_PACKET_MEMORY, (8 << 20) + flows * (2 * perFlow + 700));
}

/** The memory, or undefined (the TypeScript path does everything) when the system refuses it. */
function createPacketMemory(bytes: number): PacketMemory | undefined {
  try {
    return new PacketMemory(bytes);
  } catch {
    return undefined;
  }
}

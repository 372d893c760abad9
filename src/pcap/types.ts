/**
 * The contract between the capture-file readers (pcap, pcapng) and everything that looks at packets. Readers call
 * back once per packet with a view into a buffer they reuse: a consumer copies what it keeps; nothing is allocated
 * per packet on the hot path.
 */

/** LINKTYPE_* values (https://www.tcpdump.org/linktypes.html) the decoders understand. */
export const LinkType = {
  NULL: 0, // BSD loopback: 4-byte address family in host byte order
  ETHERNET: 1,
  RAW: 101, // raw IPv4/IPv6
  LOOP: 108, // OpenBSD loopback: address family in network byte order
  LINUX_SLL: 113,
  IPV4: 228,
  IPV6: 229,
  LINUX_SLL2: 276,
} as const;

export interface RawPacket {
  /** pcapng interface index within its section (0 for classic pcap). */
  interfaceId: number;
  /** The interface's link type. */
  linkType: number;
  /** Timestamp: whole seconds since the Unix epoch, and nanoseconds within that second (µs files are scaled). */
  seconds: number;
  nanos: number;
  /** Bytes present in `data` (≤ snaplen). */
  capturedLength: number;
  /** Length of the packet on the wire. */
  originalLength: number;
  /** The captured bytes: a view into a reused buffer, valid only until the callback returns. */
  data: Uint8Array;
  /**
   * The same bytes without a per-packet view (the readers set these; `data` is then made only when asked for):
   * captured byte i is `bytes[offset + i]`, and `view` reads words from the same memory (`view.getUint16(offset + 12)`).
   * `bytes` and `view` cover one of the reader's buffers: they change from one refill to the next, so a consumer that
   * caches something derived from them checks identity (`p.bytes !== last`).
   */
  bytes?: Uint8Array;
  view?: DataView;
  offset?: number;
  /** Index of the packet's interface in `CaptureFileInfo.interfaces` (across pcapng sections; 0 for classic pcap). */
  interfaceIndex?: number;
  /** The packet's opt_comment (pcapng), if any. */
  comment?: string;
}

export interface InterfaceInfo {
  linkType: number;
  snaplen: number;
  name?: string;
  description?: string;
  /** Nanoseconds per timestamp unit (1000 for µs, 1 for ns; pcapng if_tsresol). */
  tsUnitNanos: number;
  /** pcapng: the section (0-based) this interface belongs to, and its id within that section (RawPacket.interfaceId). */
  section?: number;
  interfaceId?: number;
  /** Timestamp units per second exactly as the file says (1e6, 1e9, 2^k for pcapng if_tsresol with the high bit). */
  tsUnitsPerSecond?: number;
  /** pcapng if_tsoffset: seconds added to every timestamp of the interface. */
  tsOffsetSeconds?: number;
  /** Bytes of frame check sequence at the end of each packet (pcap link-type FCS bits, pcapng if_fcslen), when known. */
  fcsLength?: number;
}

export interface CaptureFileInfo {
  format: 'pcap' | 'pcapng';
  /** Classic pcap: true when the file's magic is little-endian. pcapng: of the first section. */
  littleEndian: boolean;
  /** Classic pcap with the nanosecond magic. */
  nanosecond: boolean;
  interfaces: InterfaceInfo[];
  /** pcapng sections seen. 1 for classic pcap. */
  sections: number;
  /** Comments of the section headers and of packets (opt_comment), in file order. */
  comments: string[];
  /** Name resolution records (pcapng NRB): address → names. */
  names: Array<{ address: string; names: string[] }>;
  /**
   * pcapng interface statistics (ISB): per interface, packets received and dropped when the capture ended (the last
   * ISB of each interface). `interfaceId` is the id within its section, `interfaceIndex` the index in `interfaces`.
   */
  interfaceStats: Array<{ interfaceId: number; received?: number; dropped?: number; interfaceIndex?: number }>;
  /** pcapng shb_hardware, shb_os, shb_userappl of the first section that has them. */
  hardware?: string;
  os?: string;
  application?: string;
  /** Classic pcap: the header's version (2.4 in practice); pcapng: the first section's version (1.0). */
  versionMajor?: number;
  versionMinor?: number;
}

export interface ReadResult {
  info: CaptureFileInfo;
  packets: number;
  /** Sum of capturedLength over packets (the bytes tshark counts as frame bytes are originalLength: see analysis). */
  capturedBytes: number;
  /** Bytes of the file read. */
  fileBytes: number;
  /** Set when the file ends in the middle of a record or holds something malformed: what was read stands. */
  warnings: string[];
  truncated: boolean;
}

export interface ReadOptions {
  signal?: AbortSignal;
  /** Stop after this many packets. */
  maxPackets?: number;
  /**
   * Largest record or block the reader accepts (default 64 MiB): a bigger one is taken as corruption (warning, stop).
   * A block larger than the read buffer gets a buffer of its own, grown as its bytes arrive, dropped afterwards.
   */
  maxBlockBytes?: number;
  /** Size of each of the two read buffers that take turns (default 2 MiB). */
  bufferBytes?: number;
  /**
   * Makes the two read buffers (`bufferBytes` each), e.g. in memory shared with a consumer that reads packets where
   * they lie (the analyzer's WebAssembly path); undefined for the default (Buffer.allocUnsafe). Larger blocks get
   * buffers of their own either way.
   */
  allocateBuffer?: (bytes: number) => Buffer | undefined;
  /** Called after each read from the source with the bytes read so far. */
  onProgress?: (bytesRead: number) => void;
  /** Counts runs of packet records in place of onPacket (the analyzer's WebAssembly path). */
  recordRuns?: RecordRunCounter;
  /** Called as each interface is declared (before its packets), with its index in `CaptureFileInfo.interfaces`. */
  onInterface?: (iface: InterfaceInfo, index: number) => void;
}

/** A capture file that cannot be read at all (not pcap/pcapng, or no usable header). */
export class CaptureFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaptureFormatError';
  }
}

/** How a classic pcap file's records are laid out (for RecordRunCounter). */
export interface ClassicRecordFormat {
  littleEndian: boolean;
  nanosecond: boolean;
  linkType: number;
  /** A record claiming more captured bytes is corrupt: the reader's onPacket path reports it. */
  maxCaptured: number;
}

/** A pcapng section's interface, for RecordRunCounter. */
export interface PcapngInterfaceFormat {
  linkType: number;
  /** Timestamp units per second (if_tsresol) and seconds added (if_tsoffset). */
  unitsPerSecond: number;
  offsetSeconds: number;
  /** Index in CaptureFileInfo.interfaces. */
  index: number;
}

/**
 * Counts runs of packet records where they lie in the read buffer, for a consumer that does this faster than one
 * onPacket call per record. The reader hands it each stretch of complete records (classic pcap) or blocks (pcapng),
 * and onPacket (or its own block parser) what it stops at; records it counted never reach onPacket.
 */
export interface RecordRunCounter {
  /** Called with a classic pcap file's layout before its records; false: not for this file. */
  startClassic(format: ClassicRecordFormat): boolean;
  /**
   * Counts complete records of `buf` from `pos` (data ends at `end`), at most `maxPackets`; returns where it stopped
   * (the first record it leaves to onPacket, or where the complete records end) and sets `packets` and
   * `capturedBytes` to what it counted.
   */
  countRecords(buf: Buffer, pos: number, end: number, maxPackets: number): number;
  /**
   * Called at each pcapng section and interface with the section's byte order and interfaces so far, and the largest
   * block the reader accepts; false: not for this section (until the next call).
   */
  startSection(littleEndian: boolean, interfaces: PcapngInterfaceFormat[], maxBlockBytes: number): boolean;
  /** countRecords() for pcapng blocks: it stops at the first block that is not a plain Enhanced Packet Block. */
  countBlocks(buf: Buffer, pos: number, end: number, maxPackets: number): number;
  packets: number;
  capturedBytes: number;
}

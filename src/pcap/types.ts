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
}

export interface InterfaceInfo {
  linkType: number;
  snaplen: number;
  name?: string;
  description?: string;
  /** Nanoseconds per timestamp unit (1000 for µs, 1 for ns; pcapng if_tsresol). */
  tsUnitNanos: number;
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
  /** pcapng interface statistics (ISB): per interface, packets received and dropped when the capture ended. */
  interfaceStats: Array<{ interfaceId: number; received?: number; dropped?: number }>;
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
}

/** A capture file that cannot be read at all (not pcap/pcapng, or no usable header). */
export class CaptureFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CaptureFormatError';
  }
}

import { LinkType, type RawPacket } from './types.js';

/**
 * Link, network and transport decoding into one reused `DecodedPacket`: no allocation per packet. Addresses are kept
 * as 32-bit words (IPv4 in word 0, IPv6 in words 0..3, big-endian), formatted only when a caller needs a string.
 * Offsets index `raw.data` and are valid only as long as it is.
 */

/** What carried the network layer. */
export const Link = { UNKNOWN: 0, ETHERNET: 1, SLL: 2, SLL2: 3, NULL: 4, RAW: 5 } as const;
/** The network layer found. */
export const Net = { NONE: 0, IPV4: 4, IPV6: 6, ARP: 8, OTHER: 9 } as const;
/** The transport header decoded (complete in the captured bytes). */
export const Transport = { NONE: 0, TCP: 6, UDP: 17, ICMP: 1, ICMPV6: 58, OTHER: 255 } as const;
/** IP fragment position: NONE for an unfragmented datagram (or an atomic IPv6 fragment). */
export const Fragment = { NONE: 0, FIRST: 1, LATER: 2 } as const;

export const TcpFlag = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16, URG: 32, ECE: 64, CWR: 128 } as const;

export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_ICMP = 1;
export const IPPROTO_ICMPV6 = 58;

export interface DecodedPacket {
  /** The array the offsets below index: the reader's buffer (RawPacket.bytes) or RawPacket.data. */
  buffer: Uint8Array;
  /** Offset of the packet's first byte in `buffer`, and of the end of its captured bytes. */
  start: number;
  end: number;
  link: number;
  /** 802.1Q / 802.1ad tags crossed. */
  vlanDepth: number;
  /** The EtherType (or SLL protocol) of the network layer; 0 when the link has none. */
  etherType: number;
  /** Net.* — IPV4/IPV6 only when the whole IP header (with IPv6 extension headers) was captured. */
  network: number;
  ipOffset: number;
  /** IPv4 IHL×4; IPv6 40 + extension headers up to the transport (or fragment) payload. */
  ipHeaderLength: number;
  /** IPv4 total length; IPv6 40 + payload length. Falls back to the frame when the header says 0 (TSO). */
  ipTotalLength: number;
  ttl: number;
  /** IPv4 identification or IPv6 fragment identification. */
  ipId: number;
  fragment: number;
  /** Fragment offset in bytes. */
  fragmentOffset: number;
  moreFragments: boolean;
  /** Bytes of the datagram's payload in this fragment (IP total length − header), for reassembly. */
  fragmentLength: number;
  /** The upper-layer protocol number (IPv4 protocol, or IPv6 next header after the extension headers). */
  protocol: number;
  /** Source and destination addresses as big-endian words: IPv4 in [0], IPv6 in [0..3]. ARP: sender/target IPv4. */
  src: Uint32Array;
  dst: Uint32Array;
  transport: number;
  srcPort: number;
  dstPort: number;
  tcpFlags: number;
  seq: number;
  ack: number;
  window: number;
  /** ICMP/ICMPv6 type and code. */
  icmpType: number;
  icmpCode: number;
  /** ARP operation (1 request, 2 reply). */
  arpOp: number;
  /** Offset in `data` of the transport payload (TCP/UDP), and its length per the headers. */
  payloadOffset: number;
  payloadLength: number;
  /** Bytes of the payload actually captured (≤ payloadLength). */
  payloadCaptured: number;
  /** Decoding stopped because the captured bytes ended inside a header. */
  truncated: boolean;
}

export function createDecodedPacket(): DecodedPacket {
  return {
    buffer: new Uint8Array(0),
    start: 0,
    end: 0,
    link: 0,
    vlanDepth: 0,
    etherType: 0,
    network: 0,
    ipOffset: 0,
    ipHeaderLength: 0,
    ipTotalLength: 0,
    ttl: 0,
    ipId: 0,
    fragment: 0,
    fragmentOffset: 0,
    moreFragments: false,
    fragmentLength: 0,
    protocol: 0,
    src: new Uint32Array(4),
    dst: new Uint32Array(4),
    transport: 0,
    srcPort: 0,
    dstPort: 0,
    tcpFlags: 0,
    seq: 0,
    ack: 0,
    window: 0,
    icmpType: 0,
    icmpCode: 0,
    arpOp: 0,
    payloadOffset: 0,
    payloadLength: 0,
    payloadCaptured: 0,
    truncated: false,
  };
}

function u8(b: Uint8Array, o: number): number {
  return b[o] as number;
}
function u16(b: Uint8Array, o: number): number {
  return ((b[o] as number) << 8) | (b[o + 1] as number);
}
function u32(b: Uint8Array, o: number): number {
  return (
    (((b[o] as number) << 24) | ((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number)) >>> 0
  );
}

const ETH_IPV4 = 0x0800;
const ETH_IPV6 = 0x86dd;
const ETH_ARP = 0x0806;
const MAX_EXTENSION_HEADERS = 16;

/**
 * Decodes `raw` into `out` (reset first) and returns it. Never throws on malformed or truncated data. Reads the
 * reader's buffer at `raw.offset` when the reader offers it (no per-packet view), else `raw.data`.
 */
export function decodePacket(raw: RawPacket, out: DecodedPacket): DecodedPacket {
  let b: Uint8Array;
  let start: number;
  if (raw.bytes !== undefined && raw.offset !== undefined) {
    b = raw.bytes;
    start = raw.offset;
  } else {
    b = raw.data;
    start = 0;
  }
  const len = Math.min(start + raw.capturedLength, b.length);
  out.buffer = b;
  out.start = start;
  out.end = len;
  out.vlanDepth = 0;
  out.etherType = 0;
  out.network = Net.NONE;
  out.transport = Transport.NONE;
  out.fragment = Fragment.NONE;
  out.truncated = false;
  out.payloadLength = 0;
  out.payloadCaptured = 0;
  out.tcpFlags = 0;
  out.srcPort = 0;
  out.dstPort = 0;

  let off = 0;
  let type = 0;
  switch (raw.linkType) {
    case LinkType.ETHERNET: {
      out.link = Link.ETHERNET;
      if (len - start < 14) return truncated(out);
      type = u16(b, start + 12);
      off = start + 14;
      while (type === 0x8100 || type === 0x88a8 || type === 0x9100) {
        if (off + 4 > len) return truncated(out);
        out.vlanDepth++;
        type = u16(b, off + 2);
        off += 4;
      }
      break;
    }
    case LinkType.LINUX_SLL:
      out.link = Link.SLL;
      if (len - start < 16) return truncated(out);
      type = u16(b, start + 14);
      off = start + 16;
      break;
    case LinkType.LINUX_SLL2:
      out.link = Link.SLL2;
      if (len - start < 20) return truncated(out);
      type = u16(b, start);
      off = start + 20;
      break;
    case LinkType.NULL:
    case LinkType.LOOP: {
      out.link = Link.NULL;
      if (len - start < 4) return truncated(out);
      let family = u32(b, start);
      // NULL is in the writer's byte order: a family never needs more than 16 bits, so swap when it does.
      if (raw.linkType === LinkType.NULL && (family & 0xffff0000) !== 0) {
        family = u8(b, start) | (u8(b, start + 1) << 8) | (u8(b, start + 2) << 16) | (u8(b, start + 3) << 24);
      }
      off = start + 4;
      if (family === 2) type = ETH_IPV4;
      else if (family === 24 || family === 28 || family === 30) type = ETH_IPV6; // BSD AF_INET6 values, as Wireshark
      break;
    }
    case LinkType.RAW:
    case LinkType.IPV4:
    case LinkType.IPV6:
      out.link = Link.RAW;
      if (len - start < 1) return truncated(out);
      type = u8(b, start) >> 4 === 6 ? ETH_IPV6 : ETH_IPV4;
      off = start;
      break;
    default:
      out.link = Link.UNKNOWN;
      return out;
  }
  out.etherType = type;
  if (type === ETH_IPV4) decodeIPv4(b, off, len, out);
  else if (type === ETH_IPV6) decodeIPv6(b, off, len, out);
  else if (type === ETH_ARP) decodeArp(b, off, len, out);
  else out.network = Net.OTHER;
  return out;
}

function truncated(out: DecodedPacket): DecodedPacket {
  out.truncated = true;
  return out;
}

function decodeIPv4(b: Uint8Array, off: number, len: number, out: DecodedPacket): void {
  if (off + 20 > len) {
    out.network = Net.OTHER;
    out.truncated = true;
    return;
  }
  const vihl = u8(b, off);
  const hlen = (vihl & 0x0f) << 2;
  let total = u16(b, off + 2);
  if (vihl >> 4 !== 4 || hlen < 20) {
    out.network = Net.OTHER;
    return;
  }
  if (total === 0) total = len - off; // TSO: the NIC fills in the length
  if (total < hlen) {
    out.network = Net.OTHER;
    return;
  }
  if (off + hlen > len) {
    out.network = Net.OTHER;
    out.truncated = true;
    return;
  }
  out.network = Net.IPV4;
  out.ipOffset = off;
  out.ipHeaderLength = hlen;
  out.ipTotalLength = total;
  out.ttl = u8(b, off + 8);
  out.ipId = u16(b, off + 4);
  const flagsOffset = u16(b, off + 6);
  const fragOffset = (flagsOffset & 0x1fff) << 3;
  const more = (flagsOffset & 0x2000) !== 0;
  out.fragmentOffset = fragOffset;
  out.moreFragments = more;
  out.fragmentLength = total - hlen;
  out.protocol = u8(b, off + 9);
  out.src[0] = u32(b, off + 12);
  out.dst[0] = u32(b, off + 16);
  const end = Math.min(off + total, len);
  if (fragOffset !== 0) {
    out.fragment = Fragment.LATER;
    return;
  }
  if (more) out.fragment = Fragment.FIRST;
  decodeTransport(b, off + hlen, end, off + total, out);
}

function decodeIPv6(b: Uint8Array, off: number, len: number, out: DecodedPacket): void {
  if (off + 40 > len) {
    out.network = Net.OTHER;
    out.truncated = true;
    return;
  }
  if (u8(b, off) >> 4 !== 6) {
    out.network = Net.OTHER;
    return;
  }
  const payload = u16(b, off + 4);
  const total = payload === 0 ? len - off : 40 + payload;
  let next = u8(b, off + 6);
  out.ttl = u8(b, off + 7);
  for (let i = 0; i < 4; i++) {
    out.src[i] = u32(b, off + 8 + 4 * i);
    out.dst[i] = u32(b, off + 24 + 4 * i);
  }
  const end = Math.min(off + total, len);
  let p = off + 40;
  let fragmented = false;
  for (let n = 0; n < MAX_EXTENSION_HEADERS; n++) {
    if (next === 0 || next === 43 || next === 60) {
      if (p + 8 > end) {
        ipv6Truncated(out, p + 8 > len);
        return;
      }
      const size = (u8(b, p + 1) + 1) << 3;
      next = u8(b, p);
      p += size;
    } else if (next === 51) {
      if (p + 8 > end) {
        ipv6Truncated(out, p + 8 > len);
        return;
      }
      const size = (u8(b, p + 1) + 2) << 2;
      next = u8(b, p);
      p += size;
    } else if (next === 44) {
      if (p + 8 > end) {
        ipv6Truncated(out, p + 8 > len);
        return;
      }
      const offlg = u16(b, p + 2);
      out.fragmentOffset = offlg & 0xfff8;
      out.moreFragments = (offlg & 1) !== 0;
      out.ipId = u32(b, p + 4);
      next = u8(b, p);
      p += 8;
      fragmented = out.fragmentOffset !== 0 || out.moreFragments;
      if (fragmented) break;
    } else {
      break;
    }
  }
  if (p > end) {
    ipv6Truncated(out, p > len);
    return;
  }
  out.network = Net.IPV6;
  out.ipOffset = off;
  out.ipHeaderLength = p - off;
  out.ipTotalLength = total;
  out.protocol = next;
  out.fragmentLength = total - (p - off);
  if (!fragmented) {
    out.fragmentOffset = 0;
    out.moreFragments = false;
  } else if (out.fragmentOffset !== 0) {
    out.fragment = Fragment.LATER;
    return;
  } else {
    out.fragment = Fragment.FIRST;
  }
  if (next === 50 || next === 59) return; // ESP, no next header: nothing more to see
  decodeTransport(b, p, end, off + total, out);
}

function ipv6Truncated(out: DecodedPacket, capturedShort: boolean): void {
  out.network = Net.OTHER;
  out.truncated = capturedShort;
}

/**
 * Transport header at `p`; `end` is where the captured datagram ends (≤ `datagramEnd`, where the headers say it
 * ends).
 */
function decodeTransport(b: Uint8Array, p: number, end: number, datagramEnd: number, out: DecodedPacket): void {
  const proto = out.protocol;
  if (proto === IPPROTO_TCP) {
    if (p + 20 > end) {
      transportTruncated(out, end, datagramEnd);
      return;
    }
    const doff = (u8(b, p + 12) >> 4) << 2;
    if (doff < 20) {
      out.transport = Transport.OTHER;
      return;
    }
    if (p + doff > end) {
      transportTruncated(out, end, datagramEnd);
      return;
    }
    out.transport = Transport.TCP;
    out.srcPort = u16(b, p);
    out.dstPort = u16(b, p + 2);
    out.seq = u32(b, p + 4);
    out.ack = u32(b, p + 8);
    out.tcpFlags = u8(b, p + 13);
    out.window = u16(b, p + 14);
    setPayload(out, p + doff, end, datagramEnd);
  } else if (proto === IPPROTO_UDP) {
    if (p + 8 > end) {
      transportTruncated(out, end, datagramEnd);
      return;
    }
    out.transport = Transport.UDP;
    out.srcPort = u16(b, p);
    out.dstPort = u16(b, p + 2);
    const udpLength = u16(b, p + 4);
    const udpEnd = udpLength >= 8 && p + udpLength <= datagramEnd ? p + udpLength : datagramEnd;
    setPayload(out, p + 8, Math.min(end, udpEnd), udpEnd);
  } else if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) {
    if (p + 4 > end) {
      transportTruncated(out, end, datagramEnd);
      return;
    }
    out.transport = proto === IPPROTO_ICMP ? Transport.ICMP : Transport.ICMPV6;
    out.icmpType = u8(b, p);
    out.icmpCode = u8(b, p + 1);
    setPayload(out, p + 4, end, datagramEnd);
  } else {
    out.transport = Transport.OTHER;
  }
}

function transportTruncated(out: DecodedPacket, end: number, datagramEnd: number): void {
  out.transport = Transport.NONE;
  out.truncated = end < datagramEnd;
}

function setPayload(out: DecodedPacket, start: number, end: number, datagramEnd: number): void {
  out.payloadOffset = start;
  out.payloadLength = datagramEnd > start ? datagramEnd - start : 0;
  out.payloadCaptured = end > start ? end - start : 0;
}

function decodeArp(b: Uint8Array, off: number, len: number, out: DecodedPacket): void {
  if (off + 8 > len) {
    out.network = Net.OTHER;
    out.truncated = true;
    return;
  }
  out.network = Net.ARP;
  out.arpOp = u16(b, off + 6);
  const hlen = u8(b, off + 4);
  const plen = u8(b, off + 5);
  out.src[0] = 0;
  out.dst[0] = 0;
  if (u16(b, off + 2) === ETH_IPV4 && plen === 4 && off + 8 + 2 * hlen + 8 <= len) {
    out.src[0] = u32(b, off + 8 + hlen);
    out.dst[0] = u32(b, off + 8 + 2 * hlen + 4);
  }
}

/** Dotted quad of a 32-bit address. */
export function formatIPv4(word: number): string {
  return `${word >>> 24}.${(word >>> 16) & 255}.${(word >>> 8) & 255}.${word & 255}`;
}

/** RFC 5952 text of an IPv6 address given as four big-endian words (as Wireshark prints it). */
export function formatIPv6(words: ArrayLike<number>, offset = 0): string {
  const groups: number[] = [];
  for (let i = 0; i < 4; i++) {
    const w = (words[offset + i] as number) >>> 0;
    groups.push(w >>> 16, w & 0xffff);
  }
  // IPv4-mapped (::ffff:a.b.c.d), written with the dotted quad as inet_ntop does
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${formatIPv4((words[offset + 3] as number) >>> 0)}`;
  }
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestLen < 2) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`;
}

/** Parses an IPv4 or IPv6 address into words (IPv4 in [0]); undefined when it is neither. */
export function parseIPAddress(text: string): { version: 4 | 6; words: Uint32Array } | undefined {
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(text);
  if (v4) {
    const parts = v4.slice(1).map(Number);
    if (parts.some((p) => p > 255)) return undefined;
    const words = new Uint32Array(4);
    words[0] =
      (((parts[0] as number) << 24) |
        ((parts[1] as number) << 16) |
        ((parts[2] as number) << 8) |
        (parts[3] as number)) >>>
      0;
    return { version: 4, words };
  }
  if (!text.includes(':') || !/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  let head = text;
  let tailV4: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    const quad = parseIPAddress(text.slice(lastColon + 1));
    if (quad?.version !== 4) return undefined;
    const w = quad.words[0] as number;
    tailV4 = [w >>> 16, w & 0xffff];
    head = text[lastColon - 1] === ':' ? text.slice(0, lastColon + 1) : text.slice(0, lastColon);
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const parse = (s: string) => (s === '' ? [] : s.split(':'));
  const left = parse(halves[0] ?? '');
  const right = halves.length === 2 ? parse(halves[1] ?? '') : [];
  const groups: number[] = [];
  for (const g of [...left, ...right]) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
  }
  const missing = 8 - left.length - right.length - tailV4.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  groups.push(...left.map((g) => Number.parseInt(g, 16)));
  for (let i = 0; i < missing; i++) groups.push(0);
  groups.push(...right.map((g) => Number.parseInt(g, 16)), ...tailV4);
  const words = new Uint32Array(4);
  for (let i = 0; i < 4; i++) words[i] = (((groups[2 * i] as number) << 16) | (groups[2 * i + 1] as number)) >>> 0;
  return { version: 6, words };
}

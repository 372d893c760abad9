import { writeFileSync } from 'node:fs';
import { parseIPAddress } from '../pcap/decode.js';
import { LinkType, type RawPacket } from '../pcap/types.js';

/**
 * Test helpers: frames built byte by byte (checksums left at zero: neither tripcap nor tshark checks them by default),
 * and a minimal classic pcap writer, so that edge cases exist as files tshark can read too.
 */

const enc = new TextEncoder();

export function bytes(...parts: Array<Uint8Array | number[] | string>): Uint8Array {
  const arrays = parts.map((p) =>
    typeof p === 'string' ? enc.encode(p) : p instanceof Uint8Array ? p : Uint8Array.from(p),
  );
  const out = new Uint8Array(arrays.reduce((s, a) => s + a.length, 0));
  let o = 0;
  for (const a of arrays) {
    out.set(a, o);
    o += a.length;
  }
  return out;
}

const be16 = (v: number) => [(v >>> 8) & 255, v & 255];
const be32 = (v: number) => [(v >>> 24) & 255, (v >>> 16) & 255, (v >>> 8) & 255, v & 255];

export function addr(text: string): number[] {
  const p = parseIPAddress(text);
  if (!p) throw new Error(`bad address ${text}`);
  return p.version === 4 ? be32(p.words[0] as number) : [...p.words].flatMap(be32);
}

const MAC_A = [0x02, 0, 0, 0, 0, 0x0a];
const MAC_B = [0x02, 0, 0, 0, 0, 0x0b];

export function ethernet(
  etherType: number,
  payload: Uint8Array,
  vlans: Array<{ tpid?: number; id: number }> = [],
): Uint8Array {
  const header: number[] = [...MAC_B, ...MAC_A];
  for (const v of vlans) header.push(...be16(v.tpid ?? 0x8100), ...be16(v.id));
  header.push(...be16(etherType));
  return bytes(header, payload);
}

export function sll(protocol: number, payload: Uint8Array): Uint8Array {
  return bytes([0, 0, 0, 1, 0, 6, ...MAC_A, 0, 0], be16(protocol), payload);
}

export function sll2(protocol: number, payload: Uint8Array): Uint8Array {
  return bytes(be16(protocol), [0, 0], be32(2), [0, 1, 0, 6, ...MAC_A, 0, 0], payload);
}

export interface IPv4Options {
  src: string;
  dst: string;
  protocol: number;
  id?: number;
  ttl?: number;
  /** Fragment offset in bytes (multiple of 8) and more-fragments flag. */
  fragmentOffset?: number;
  moreFragments?: boolean;
  options?: number[];
  /** Override the total length field. */
  totalLength?: number;
}

export function ipv4(o: IPv4Options, payload: Uint8Array): Uint8Array {
  const opts = o.options ?? [];
  const hlen = 20 + opts.length;
  const total = o.totalLength ?? hlen + payload.length;
  const flags = ((o.moreFragments ? 0x2000 : 0) | ((o.fragmentOffset ?? 0) >> 3)) & 0xffff;
  return bytes(
    [0x40 | (hlen >> 2), 0],
    be16(total),
    be16(o.id ?? 1),
    be16(flags),
    [o.ttl ?? 64, o.protocol, 0, 0],
    addr(o.src),
    addr(o.dst),
    opts,
    payload,
  );
}

export interface IPv6Options {
  src: string;
  dst: string;
  next: number;
  /** Extension headers, in order: each its type and its body (padded to 8-byte units by the helper). */
  ext?: Array<{ type: number; body?: number[]; fragment?: { offset: number; more: boolean; id: number } }>;
}

export function ipv6(o: IPv6Options, payload: Uint8Array): Uint8Array {
  const ext = o.ext ?? [];
  const chain = [...ext.map((e) => e.type), o.next];
  const headers: number[] = [];
  ext.forEach((e, i) => {
    const next = chain[i + 1] as number;
    if (e.type === 44) {
      const f = e.fragment ?? { offset: 0, more: false, id: 1 };
      headers.push(next, 0, ...be16((f.offset & 0xfff8) | (f.more ? 1 : 0)), ...be32(f.id));
    } else if (e.type === 51) {
      const body = e.body ?? [0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
      const len = 2 + body.length;
      const padded = Math.ceil(len / 4) * 4;
      headers.push(next, padded / 4 - 2, ...body, ...new Array(padded - len).fill(0));
    } else {
      const body = e.body ?? [1, 4, 0, 0, 0, 0];
      const len = 2 + body.length;
      const padded = Math.ceil(len / 8) * 8;
      headers.push(next, padded / 8 - 1, ...body, ...new Array(padded - len).fill(0));
    }
  });
  const first = ext.length > 0 ? (chain[0] as number) : o.next;
  return bytes(
    [0x60, 0, 0, 0],
    be16(headers.length + payload.length),
    [first, 64],
    addr(o.src),
    addr(o.dst),
    headers,
    payload,
  );
}

export interface TcpOptions {
  sport: number;
  dport: number;
  seq?: number;
  ack?: number;
  /** FIN 1, SYN 2, RST 4, PSH 8, ACK 16. */
  flags?: number;
  window?: number;
  options?: number[];
}

export function tcp(o: TcpOptions, payload: Uint8Array | string = new Uint8Array(0)): Uint8Array {
  const opts = o.options ?? [];
  const hlen = 20 + opts.length;
  return bytes(
    be16(o.sport),
    be16(o.dport),
    be32(o.seq ?? 1000),
    be32(o.ack ?? 0),
    [(hlen >> 2) << 4, o.flags ?? 0x10],
    be16(o.window ?? 65535),
    [0, 0, 0, 0],
    opts,
    typeof payload === 'string' ? enc.encode(payload) : payload,
  );
}

export function udp(sport: number, dport: number, payload: Uint8Array | string = new Uint8Array(0)): Uint8Array {
  const data = typeof payload === 'string' ? enc.encode(payload) : payload;
  return bytes(be16(sport), be16(dport), be16(8 + data.length), [0, 0], data);
}

export function icmpEcho(type = 8, payload: Uint8Array = new Uint8Array(8)): Uint8Array {
  return bytes([type, 0, 0, 0, 0, 1, 0, 1], payload);
}

export function arp(op: number, sender: string, target: string): Uint8Array {
  return bytes([0, 1, 8, 0, 6, 4], be16(op), MAC_A, addr(sender), [0, 0, 0, 0, 0, 0], addr(target));
}

/** A DNS query (or response with A/AAAA/CNAME answers) for `name`, using compression pointers for answers. */
export function dnsMessage(
  id: number,
  name: string,
  type: number,
  answers?: Array<{ type: number; data: string }>,
  rcode = 0,
): Uint8Array {
  const qname = name.split('.').flatMap((l) => [l.length, ...enc.encode(l)]);
  const out: number[] = [
    ...be16(id),
    ...be16(answers ? 0x8180 | rcode : 0x0100),
    ...be16(1),
    ...be16(answers?.length ?? 0),
    0,
    0,
    0,
    0,
    ...qname,
    0,
    ...be16(type),
    0,
    1,
  ];
  let owner = 12; // pointer to the question name
  for (const a of answers ?? []) {
    const start = out.length;
    out.push(0xc0 | (owner >> 8), owner & 255, ...be16(a.type), 0, 1, ...be32(300));
    if (a.type === 5) {
      const target = a.data.split('.').flatMap((l) => [l.length, ...enc.encode(l)]);
      out.push(...be16(target.length + 1), ...target, 0);
      owner = start + 12; // later answers are owned by the CNAME target
    } else {
      const data = addr(a.data);
      out.push(...be16(data.length), ...data);
    }
  }
  return Uint8Array.from(out);
}

/** A TLS 1.2-style ClientHello record carrying SNI `name` (and `padding` bytes of a padding extension). */
export function clientHello(name: string, padding = 0): Uint8Array {
  const host = [...enc.encode(name)];
  const sni = [...be16(host.length + 3), 0, ...be16(host.length), ...host];
  const extensions = [
    ...be16(0),
    ...be16(sni.length),
    ...sni,
    ...(padding > 0 ? [...be16(21), ...be16(padding), ...new Array(padding).fill(0)] : []),
  ];
  const body = [
    3,
    3,
    ...new Array(32).fill(7),
    0,
    ...be16(2),
    0x13,
    0x01,
    1,
    0,
    ...be16(extensions.length),
    ...extensions,
  ];
  const handshake = [1, 0, ...be16(body.length), ...body];
  return Uint8Array.from([0x16, 3, 1, ...be16(handshake.length), ...handshake]);
}

export interface PacketSpec {
  /** Seconds since the epoch (fractional allowed) or [seconds, nanos]. */
  t: number | [number, number];
  data: Uint8Array;
  /** On-wire length when more than data.length (snaplen cut). */
  originalLength?: number;
}

/** Writes a classic pcap file (little-endian; µs unless `nanosecond`). */
export function writePcap(
  path: string,
  linkType: number,
  packets: PacketSpec[],
  options: { nanosecond?: boolean; snaplen?: number; cutAt?: number } = {},
): void {
  const chunks: Uint8Array[] = [];
  const header = new DataView(new ArrayBuffer(24));
  header.setUint32(0, options.nanosecond ? 0xa1b23c4d : 0xa1b2c3d4, true);
  header.setUint16(4, 2, true);
  header.setUint16(6, 4, true);
  header.setUint32(16, options.snaplen ?? 262144, true);
  header.setUint32(20, linkType, true);
  chunks.push(new Uint8Array(header.buffer));
  for (const p of packets) {
    const [s, ns] = Array.isArray(p.t) ? p.t : [Math.floor(p.t), Math.round((p.t - Math.floor(p.t)) * 1e9)];
    const rec = new DataView(new ArrayBuffer(16));
    rec.setUint32(0, s, true);
    rec.setUint32(4, options.nanosecond ? ns : Math.floor(ns / 1000), true);
    rec.setUint32(8, p.data.length, true);
    rec.setUint32(12, p.originalLength ?? p.data.length, true);
    chunks.push(new Uint8Array(rec.buffer), p.data);
  }
  let file: Uint8Array = Buffer.concat(chunks);
  if (options.cutAt !== undefined) file = file.subarray(0, options.cutAt);
  writeFileSync(path, file);
}

/** A RawPacket for decoder tests. */
export function raw(data: Uint8Array, linkType: number = LinkType.ETHERNET, t = 0, originalLength?: number): RawPacket {
  return {
    interfaceId: 0,
    linkType,
    seconds: Math.floor(t),
    nanos: Math.round((t - Math.floor(t)) * 1e9),
    capturedLength: data.length,
    originalLength: originalLength ?? data.length,
    data,
  };
}

/**
 * Small, bounds-checked parsers for the names a report shows: DNS messages, the TLS ClientHello's server name, and
 * HTTP/1.x request and status lines. They run only on the packets that can carry these, never throw, and return
 * undefined for anything malformed.
 */
import { formatIPv4, formatIPv6 } from '../pcap/decode.js';

function u16(b: Uint8Array, o: number): number {
  return ((b[o] as number) << 8) | (b[o + 1] as number);
}
function u32(b: Uint8Array, o: number): number {
  return (
    (((b[o] as number) << 24) | ((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number)) >>> 0
  );
}

export interface DnsAnswer {
  name: string;
  type: number;
  /** A/AAAA: the address; CNAME: the target; others: empty. */
  data: string;
}

export interface DnsMessage {
  id: number;
  response: boolean;
  rcode: number;
  /** The first question (most messages have exactly one). */
  name: string;
  type: number;
  answers: DnsAnswer[];
}

const MAX_ANSWERS = 32;

/** Parses a DNS message in b[start, end). */
export function parseDns(b: Uint8Array, start: number, end: number): DnsMessage | undefined {
  if (end - start < 12) return undefined;
  const id = u16(b, start);
  const flags = u16(b, start + 2);
  const qd = u16(b, start + 4);
  const an = u16(b, start + 6);
  // real messages ask one question (RFC 9619); a count beyond a few means this is not DNS
  if (qd === 0 || qd > 4 || (flags & 0x7800) > 0x2800) return undefined;
  const q = readName(b, start, start + 12, end);
  if (!q || q.next + 4 > end) return undefined;
  const message: DnsMessage = {
    id,
    response: (flags & 0x8000) !== 0,
    rcode: flags & 0x0f,
    name: q.name,
    type: u16(b, q.next),
    answers: [],
  };
  let p = q.next + 4;
  for (let i = 1; i < qd; i++) {
    const more = readName(b, start, p, end);
    if (!more || more.next + 4 > end) return message;
    p = more.next + 4;
  }
  for (let i = 0; i < an && i < MAX_ANSWERS; i++) {
    const owner = readName(b, start, p, end);
    if (!owner || owner.next + 10 > end) break;
    const type = u16(b, owner.next);
    const rdlength = u16(b, owner.next + 8);
    const rdata = owner.next + 10;
    if (rdata + rdlength > end) break;
    let data = '';
    if (type === 1 && rdlength === 4) data = formatIPv4(u32(b, rdata));
    else if (type === 28 && rdlength === 16) {
      data = formatIPv6([u32(b, rdata), u32(b, rdata + 4), u32(b, rdata + 8), u32(b, rdata + 12)]);
    } else if (type === 5) data = readName(b, start, rdata, rdata + rdlength)?.name ?? '';
    message.answers.push({ name: owner.name, type, data });
    p = rdata + rdlength;
  }
  return message;
}

/** A (possibly compressed) domain name at `p`; `next` is the offset after it in the message. */
function readName(b: Uint8Array, msg: number, p: number, end: number): { name: string; next: number } | undefined {
  let name = '';
  let next = -1;
  let jumps = 0;
  for (;;) {
    if (p >= end && next < 0) return undefined;
    if (p >= b.length) return undefined;
    const len = b[p] as number;
    if (len === 0) {
      if (next < 0) next = p + 1;
      break;
    }
    if ((len & 0xc0) === 0xc0) {
      if (p + 1 >= b.length || (next < 0 && p + 1 >= end)) return undefined;
      if (next < 0) next = p + 2;
      if (++jumps > 32) return undefined;
      p = msg + (((len & 0x3f) << 8) | (b[p + 1] as number));
      continue;
    }
    if (len > 63 || p + 1 + len > b.length || (next < 0 && p + 1 + len > end)) return undefined;
    if (name.length > 0) name += '.';
    for (let i = p + 1; i <= p + len; i++) {
      const c = b[i] as number;
      name += c > 0x20 && c < 0x7f ? String.fromCharCode(c >= 0x41 && c <= 0x5a ? c + 32 : c) : '?';
    }
    if (name.length > 255) return undefined;
    p += 1 + len;
  }
  return { name: name || '.', next };
}

const DNS_TYPES: Record<number, string> = {
  1: 'A',
  2: 'NS',
  5: 'CNAME',
  6: 'SOA',
  12: 'PTR',
  15: 'MX',
  16: 'TXT',
  28: 'AAAA',
  33: 'SRV',
  64: 'SVCB',
  65: 'HTTPS',
  255: 'ANY',
};
export function dnsTypeName(type: number): string {
  return DNS_TYPES[type] ?? `TYPE${type}`;
}
const RCODES = ['NOERROR', 'FORMERR', 'SERVFAIL', 'NXDOMAIN', 'NOTIMP', 'REFUSED'];
export function dnsRcodeName(rcode: number): string {
  return RCODES[rcode] ?? `RCODE${rcode}`;
}

/** How a TCP payload starts, for labelling a flow. */
export const Start = { UNKNOWN: 0, TLS_CLIENT_HELLO: 1, TLS: 2, HTTP_REQUEST: 3, HTTP_RESPONSE: 4 } as const;

const METHODS = ['GET ', 'POST ', 'PUT ', 'HEAD ', 'DELETE ', 'OPTIONS ', 'PATCH ', 'CONNECT ', 'TRACE '];

function startsWith(b: Uint8Array, p: number, end: number, text: string): boolean {
  if (p + text.length > end) return false;
  for (let i = 0; i < text.length; i++) if (b[p + i] !== text.charCodeAt(i)) return false;
  return true;
}

/** Classifies the first bytes of a TCP payload without allocating. */
export function classifyStart(b: Uint8Array, p: number, end: number): number {
  if (end - p < 5) return Start.UNKNOWN;
  const c = b[p] as number;
  if (c >= 0x14 && c <= 0x17 && b[p + 1] === 3 && (b[p + 2] as number) <= 4) {
    return c === 0x16 && end - p > 5 && b[p + 5] === 1 ? Start.TLS_CLIENT_HELLO : Start.TLS;
  }
  if (c === 0x48 && startsWith(b, p, end, 'HTTP/1.')) return Start.HTTP_RESPONSE;
  if (c >= 0x43 && c <= 0x54) {
    for (const m of METHODS) if (startsWith(b, p, end, m)) return Start.HTTP_REQUEST;
  }
  return Start.UNKNOWN;
}

/** The TLS record at b[p…] holds a ClientHello: how many bytes the whole handshake message needs (record header
 * included), so a caller can gather segments until it has them. */
export function clientHelloLength(b: Uint8Array, p: number, end: number): number {
  if (end - p < 9) return 0;
  return 9 + ((b[p + 6] as number) << 16) + u16(b, p + 7);
}

/** Server name (SNI) and ALPN protocols of a ClientHello whose record starts at b[p]; bounded by `end`. */
export function parseClientHello(
  b: Uint8Array,
  p: number,
  end: number,
): { sni?: string; alpn?: string[]; complete: boolean } | undefined {
  if (end - p < 9 || b[p] !== 0x16 || b[p + 5] !== 1) return undefined;
  // A handshake message may span records; read it as if it were contiguous after the first record header
  // (true of every ClientHello that fits one record, which is nearly all of them).
  let q = p + 9 + 2 + 32; // handshake header, client_version, random
  if (q + 1 > end) return { complete: false };
  q += 1 + (b[q] as number); // session id
  if (q + 2 > end) return { complete: false };
  q += 2 + u16(b, q); // cipher suites
  if (q + 1 > end) return { complete: false };
  q += 1 + (b[q] as number); // compression methods
  if (q + 2 > end) return { complete: false };
  const extEnd = q + 2 + u16(b, q);
  q += 2;
  const result: { sni?: string; alpn?: string[]; complete: boolean } = { complete: extEnd <= end };
  while (q + 4 <= end && q + 4 <= extEnd) {
    const type = u16(b, q);
    const len = u16(b, q + 2);
    const body = q + 4;
    if (body + len > end) {
      result.complete = false;
      break;
    }
    if (type === 0 && len >= 5) {
      // server_name_list: list length, then entries of (type, length, name)
      const nameType = b[body + 2];
      const nameLen = u16(b, body + 3);
      if (nameType === 0 && body + 5 + nameLen <= body + len) result.sni = latin1(b, body + 5, body + 5 + nameLen);
    } else if (type === 16 && len >= 2) {
      const alpn: string[] = [];
      let r = body + 2;
      while (r < body + len) {
        const l = b[r] as number;
        if (r + 1 + l > body + len) break;
        alpn.push(latin1(b, r + 1, r + 1 + l));
        r += 1 + l;
      }
      result.alpn = alpn;
    }
    q = body + len;
  }
  return result;
}

function latin1(b: Uint8Array, start: number, end: number, max = 255): string {
  let s = '';
  for (let i = start; i < end && i - start < max; i++) {
    const c = b[i] as number;
    s += c >= 0x20 && c < 0x7f ? String.fromCharCode(c) : '?';
  }
  return s;
}

/** Method, path (≤ 200 characters) and Host of an HTTP/1.x request at b[p…end). */
export function parseHttpRequest(
  b: Uint8Array,
  p: number,
  end: number,
): { method: string; path: string; host: string } | undefined {
  let sp = p;
  while (sp < end && sp - p < 8 && b[sp] !== 0x20) sp++;
  if (b[sp] !== 0x20) return undefined;
  const method = latin1(b, p, sp);
  let q = sp + 1;
  while (q < end && b[q] !== 0x20 && b[q] !== 0x0d) q++;
  const path = latin1(b, sp + 1, q, 200);
  // headers: find "\r\nhost:" case-insensitively
  let host = '';
  for (let i = q; i + 7 < end; i++) {
    if (b[i] !== 0x0d || b[i + 1] !== 0x0a) continue;
    if (b[i + 2] === 0x0d) break; // end of headers
    if (((b[i + 2] as number) | 0x20) === 0x68 && ((b[i + 3] as number) | 0x20) === 0x6f) {
      if (((b[i + 4] as number) | 0x20) === 0x73 && ((b[i + 5] as number) | 0x20) === 0x74 && b[i + 6] === 0x3a) {
        let s = i + 7;
        while (s < end && (b[s] === 0x20 || b[s] === 0x09)) s++;
        let e = s;
        while (e < end && b[e] !== 0x0d) e++;
        host = latin1(b, s, e).toLowerCase();
        break;
      }
    }
  }
  return { method, path, host };
}

/** Status code of an HTTP/1.x status line at b[p…end). */
export function parseHttpStatus(b: Uint8Array, p: number, end: number): number | undefined {
  if (end - p < 12 || b[p + 8] !== 0x20) return undefined;
  let code = 0;
  for (let i = p + 9; i < p + 12; i++) {
    const c = (b[i] as number) - 0x30;
    if (c < 0 || c > 9) return undefined;
    code = code * 10 + c;
  }
  return code;
}

import { isIPv4, isIPv6 } from 'node:net';
import { badRequest } from '../lib/errors.js';

/** Azure's `PacketCaptureFilter`, validated; the address and port values are kept as the client wrote them. */
export interface CaptureFilter {
  protocol: CaptureProtocol;
  localIPAddress?: string;
  remoteIPAddress?: string;
  localPort?: string;
  remotePort?: string;
}

export type CaptureProtocol = 'TCP' | 'UDP' | 'Any';

const PROTOCOLS: Record<string, CaptureProtocol> = { tcp: 'TCP', udp: 'UDP', any: 'Any' };
const ADDRESS_FIELDS = ['localIPAddress', 'remoteIPAddress'] as const;
const PORT_FIELDS = ['localPort', 'remotePort'] as const;
const FILTER_FIELDS = new Set<string>(['protocol', ...ADDRESS_FIELDS, ...PORT_FIELDS]);

/** Caps that keep the compiled program well under the kernel's 4096 classic-BPF instructions (see the tests). */
export const FILTER_LIMITS = Object.freeze({
  maxFilters: 64,
  maxValueLength: 1024,
  maxListEntries: 64,
  maxCidrBlocksPerRange: 64,
  /** Host/net/port tests in the whole expression; the worst case measured is ~8 BPF instructions per test. */
  maxTermsInExpression: 256,
});

interface Address {
  family: 4 | 6;
  value: bigint;
}

/** One value of an address or port field: a list of single values (often of one), or one inclusive range. */
type Spec<T> = { kind: 'list'; items: T[] } | { kind: 'range'; from: T; to: T };

/** Quotes user text for an error message: short, with control characters made visible. */
export function quoteForMessage(value: string): string {
  const short = value.length > 100 ? `${value.slice(0, 100)}…` : value;
  return `'${Array.from(short, (char) => (isControlCharacter(char) ? '?' : char)).join('')}'`;
}

export function hasControlCharacters(value: string): boolean {
  return Array.from(value).some(isControlCharacter);
}

function isControlCharacter(char: string): boolean {
  const code = char.charCodeAt(0);
  return code < 0x20 || code === 0x7f;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsing

export function parseFilters(input: unknown): CaptureFilter[] {
  if (input === undefined || input === null) return [];
  if (!Array.isArray(input)) {
    throw badRequest('InvalidFilter', 'filters must be an array of filter objects.', 'filters');
  }
  if (input.length > FILTER_LIMITS.maxFilters) {
    throw badRequest(
      'InvalidFilter',
      `filters has ${input.length} entries: at most ${FILTER_LIMITS.maxFilters} filters are allowed in one capture.`,
      'filters',
    );
  }
  const filters = input.map((item, index) => parseFilter(item, `filters[${index}]`));
  const terms = filters.reduce((sum, filter) => sum + countTerms(filter), 0);
  if (terms > FILTER_LIMITS.maxTermsInExpression) {
    throw badRequest(
      'InvalidFilter',
      `filters are too broad to compile: they need ${terms} address and port tests, more than ${FILTER_LIMITS.maxTermsInExpression}; use fewer filters, shorter lists or narrower ranges.`,
      'filters',
    );
  }
  return filters;
}

function parseFilter(item: unknown, where: string): CaptureFilter {
  if (typeof item !== 'object' || item === null || Array.isArray(item)) {
    throw badRequest('InvalidFilter', `${where} must be an object.`, where);
  }
  const record = item as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!FILTER_FIELDS.has(key)) {
      throw badRequest(
        'InvalidFilter',
        `${where} has an unknown field ${quoteForMessage(key)}: use protocol, localIPAddress, remoteIPAddress, localPort or remotePort.`,
        `${where}.${key}`,
      );
    }
  }
  const filter: CaptureFilter = { protocol: parseProtocol(record.protocol, `${where}.protocol`) };
  for (const field of ADDRESS_FIELDS) {
    const value = optionalString(record[field], `${where}.${field}`);
    if (value === undefined) continue;
    parseAddressSpec(value, `${where}.${field}`);
    filter[field] = value;
  }
  for (const field of PORT_FIELDS) {
    const value = optionalString(record[field], `${where}.${field}`);
    if (value === undefined) continue;
    parsePortSpec(value, `${where}.${field}`);
    filter[field] = value;
  }
  return filter;
}

function parseProtocol(value: unknown, where: string): CaptureProtocol {
  if (value === undefined || value === null) return 'Any';
  const protocol = typeof value === 'string' ? PROTOCOLS[value.toLowerCase()] : undefined;
  if (!protocol) {
    const shown = typeof value === 'string' ? quoteForMessage(value) : `a ${typeof value}`;
    throw badRequest('InvalidFilter', `${where} ${shown} is not valid: use 'TCP', 'UDP' or 'Any'.`, where);
  }
  return protocol;
}

/** A field's string value; undefined when absent, null or empty (Azure's "Default = null"). */
function optionalString(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string') throw badRequest('InvalidFilter', `${where} must be a string.`, where);
  if (value.length > FILTER_LIMITS.maxValueLength) {
    throw badRequest('InvalidFilter', `${where} is longer than ${FILTER_LIMITS.maxValueLength} characters.`, where);
  }
  return value;
}

/**
 * Splits Azure's notation: `v`, `a-b`, or `v1;v2;…`. Azure's own examples end lists with `;` ("80;443;"), so one
 * trailing `;` is allowed; ranges inside lists ("multiple ranges", "mixing ranges with multiple entries") are not.
 */
function splitSpec(text: string): Spec<string> | null {
  const body = text.endsWith(';') ? text.slice(0, -1) : text;
  if (body.includes(';')) {
    const items = body.split(';');
    if (items.length > FILTER_LIMITS.maxListEntries) return null;
    return items.every((item) => item !== '' && !item.includes('-')) ? { kind: 'list', items } : null;
  }
  const parts = body.split('-');
  if (parts.length === 1) return body === '' ? null : { kind: 'list', items: [body] };
  if (parts.length === 2 && parts[0] && parts[1]) return { kind: 'range', from: parts[0], to: parts[1] };
  return null;
}

function parsePortSpec(text: string, where: string): Spec<number> {
  const invalid = () =>
    badRequest(
      'InvalidFilter',
      `${where} ${quoteForMessage(text)} is not valid: use one port (0-65535), one range 'a-b', or a ';' list of up to ${FILTER_LIMITS.maxListEntries} ports.`,
      where,
    );
  const spec = /^[0-9;-]+$/.test(text) ? splitSpec(text) : null;
  if (!spec) throw invalid();
  const port = (item: string) => {
    const n = /^[0-9]{1,5}$/.test(item) ? Number(item) : Number.NaN;
    if (!(n >= 0 && n <= 65535)) throw invalid();
    return n;
  };
  if (spec.kind === 'list') return { kind: 'list', items: spec.items.map(port) };
  const range = { kind: 'range' as const, from: port(spec.from), to: port(spec.to) };
  if (range.from > range.to) throw invalid();
  return range;
}

function parseAddressSpec(text: string, where: string): Spec<Address> {
  const invalid = (why = '') =>
    badRequest(
      'InvalidFilter',
      `${where} ${quoteForMessage(text)} is not valid${why}: use one IPv4 or IPv6 address, one range 'a-b' of one family with a <= b, or a ';' list of up to ${FILTER_LIMITS.maxListEntries} addresses.`,
      where,
    );
  // Strict characters first: no zone ids, prefixes, spaces or anything a shell or BPF could read.
  const spec = /^[0-9a-fA-F.:;-]+$/.test(text) ? splitSpec(text) : null;
  if (!spec) throw invalid();
  const address = (item: string) => {
    const parsed = parseAddress(item);
    if (!parsed) throw invalid();
    return parsed;
  };
  if (spec.kind === 'list') return { kind: 'list', items: spec.items.map(address) };
  const from = address(spec.from);
  const to = address(spec.to);
  if (from.family !== to.family) throw invalid(' (the range mixes IPv4 and IPv6)');
  if (from.value > to.value) throw invalid(' (the range starts after it ends)');
  const blocks = cidrBlocks(from, to, FILTER_LIMITS.maxCidrBlocksPerRange + 1).length;
  if (blocks > FILTER_LIMITS.maxCidrBlocksPerRange) {
    throw badRequest(
      'InvalidFilter',
      `${where} ${quoteForMessage(text)} needs more than ${FILTER_LIMITS.maxCidrBlocksPerRange} CIDR blocks: start and end the range on network boundaries (e.g. 10.0.0.0-10.0.255.255), or split it across several filters.`,
      where,
    );
  }
  return { kind: 'range', from, to };
}

// ---------------------------------------------------------------------------------------------------------------
// Addresses

function parseAddress(text: string): Address | null {
  if (isIPv4(text)) return { family: 4, value: BigInt(ipv4ToNumber(text)) };
  if (isIPv6(text)) return { family: 6, value: ipv6ToBigInt(text) };
  return null;
}

function ipv4ToNumber(text: string): number {
  return text.split('.').reduce((acc, octet) => acc * 256 + Number(octet), 0);
}

function ipv6ToBigInt(text: string): bigint {
  let s = text;
  if (s.includes('.')) {
    // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
    const cut = s.lastIndexOf(':') + 1;
    const v4 = ipv4ToNumber(s.slice(cut));
    s = `${s.slice(0, cut)}${Math.floor(v4 / 65536).toString(16)}:${(v4 % 65536).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  const zeros = tail === undefined ? [] : Array<string>(8 - headGroups.length - tailGroups.length).fill('0');
  return [...headGroups, ...zeros, ...tailGroups].reduce((acc, group) => (acc << 16n) | BigInt(`0x${group}`), 0n);
}

function formatAddress({ family, value }: Address): string {
  if (family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((value >> shift) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => (value >> BigInt((7 - i) * 16)) & 0xffffn);
  // RFC 5952: compress the first longest run of two or more zero groups.
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === 0n) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}

/** The minimal list of CIDR blocks covering [from, to]; stops early once `limit` blocks are found. */
function cidrBlocks(from: Address, to: Address, limit: number): { base: Address; prefix: number }[] {
  const bits = from.family === 4 ? 32 : 128;
  const blocks: { base: Address; prefix: number }[] = [];
  let start = from.value;
  while (start <= to.value && blocks.length < limit) {
    // The largest block that starts at `start` (aligned) and does not pass `to`.
    let size = 0;
    while (
      size < bits &&
      (start & ((1n << BigInt(size + 1)) - 1n)) === 0n &&
      start + (1n << BigInt(size + 1)) - 1n <= to.value
    ) {
      size++;
    }
    blocks.push({ base: { family: from.family, value: start }, prefix: bits - size });
    start += 1n << BigInt(size);
  }
  return blocks;
}

// ---------------------------------------------------------------------------------------------------------------
// Compiling to a BPF expression

type Direction = 'src' | 'dst';

/** The tcpdump expression for the filters; '' captures everything. Filters are OR-ed, as Azure applies them. */
export function compileBpf(filters: CaptureFilter[]): string {
  const clauses = filters.map(compileFilter);
  if (clauses.length === 0 || clauses.includes('')) return '';
  return clauses.length === 1 ? (clauses[0] as string) : clauses.map((clause) => `(${clause})`).join(' or ');
}

/** One filter, matched in both directions: local→remote (outbound) or remote→local (inbound). */
function compileFilter(filter: CaptureFilter): string {
  const endpointTests = (local: Direction, remote: Direction) =>
    [
      addressTest(local, filter.localIPAddress),
      portTest(local, filter.localPort),
      addressTest(remote, filter.remoteIPAddress),
      portTest(remote, filter.remotePort),
    ]
      .filter(Boolean)
      .join(' and ');
  const outbound = endpointTests('src', 'dst');
  const inbound = endpointTests('dst', 'src');
  const hasPorts = Boolean(filter.localPort || filter.remotePort);
  const protocol =
    filter.protocol === 'TCP' ? 'tcp' : filter.protocol === 'UDP' ? 'udp' : hasPorts ? '(tcp or udp)' : '';
  const endpoints = outbound ? `((${outbound}) or (${inbound}))` : '';
  return [protocol, endpoints].filter(Boolean).join(' and ');
}

function addressTest(direction: Direction, text: string | undefined): string {
  if (!text) return '';
  const spec = parseAddressSpec(text, 'filter');
  const tests =
    spec.kind === 'list'
      ? spec.items.map((address) => `${direction} host ${formatAddress(address)}`)
      : cidrBlocks(spec.from, spec.to, FILTER_LIMITS.maxCidrBlocksPerRange).map(({ base, prefix }) =>
          prefix === (base.family === 4 ? 32 : 128)
            ? `${direction} host ${formatAddress(base)}`
            : `${direction} net ${formatAddress(base)}/${prefix}`,
        );
  return anyOf(tests);
}

function portTest(direction: Direction, text: string | undefined): string {
  if (!text) return '';
  const spec = parsePortSpec(text, 'filter');
  // Numbers are re-printed: libpcap would read a leading zero ("080") as octal.
  if (spec.kind === 'list') return anyOf(spec.items.map((port) => `${direction} port ${port}`));
  return spec.from === spec.to ? `${direction} port ${spec.from}` : `${direction} portrange ${spec.from}-${spec.to}`;
}

function anyOf(tests: string[]): string {
  return tests.length === 1 ? (tests[0] as string) : `(${tests.join(' or ')})`;
}

/** How many host/net/port tests a filter compiles to (both directions). */
function countTerms(filter: CaptureFilter): number {
  const count = (test: string) => (test ? test.split(' or ').length : 0);
  const oneDirection =
    count(addressTest('src', filter.localIPAddress)) +
    count(addressTest('src', filter.remoteIPAddress)) +
    count(portTest('src', filter.localPort)) +
    count(portTest('src', filter.remotePort));
  return 2 * oneDirection;
}

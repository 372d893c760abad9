import { formatIPv4, formatIPv6 } from '../pcap/decode.js';
import { LinkType, type ReadResult } from '../pcap/types.js';
import type { Analyzer } from './analyzer.js';
import {
  APP_NAMES,
  App,
  byte,
  C,
  C_STRIDE,
  DEFAULT_MAX_ROWS,
  decodeStackId,
  FLOW_STRIDE_WORDS,
  FlowBit,
  M,
  M_STRIDE,
  META_PORTS,
  META_V6,
  N,
  REC_DOUBLES,
  STACKS,
  State,
  U,
} from './analyzer.js';
import { explain, type RemoteFacts } from './explain.js';
import { FlowTable } from './flow-table.js';
import { arrayIn, type PacketMemory } from './packet-path.js';
import type { Conversation, Endpoint, Peer, ProtocolNode, Report, Summary, TcpHealth } from './report.js';
import { REPORT_VERSION } from './report.js';

export interface FinishContext {
  path?: string;
  fileSize?: number;
  /** A report of another capture to compare with. */
  baseline?: Report;
  baselineFile?: string;
}

const LINK_NAMES: Record<number, string> = Object.fromEntries(Object.entries(LinkType).map(([k, v]) => [v, k]));
export function linkTypeName(linkType: number): string {
  return LINK_NAMES[linkType] ?? `LINKTYPE_${linkType}`;
}

/** ISO-8601 UTC of base + rel ns, with `digits` fractional digits. */
export function isoTime(baseSeconds: number, baseNanos: number, relNs: number, digits: number): string {
  const total = baseNanos + relNs;
  const carry = Math.floor(total / 1e9);
  const seconds = baseSeconds + carry;
  const nanos = Math.round(total - carry * 1e9);
  const date = new Date(seconds * 1000);
  const head = Number.isNaN(date.getTime()) ? '1970-01-01T00:00:00' : date.toISOString().slice(0, 19);
  if (digits <= 0) return `${head}Z`;
  return `${head}.${String(nanos).padStart(9, '0').slice(0, digits)}Z`;
}

function precisionDigits(tsUnitNanos: number): number {
  if (!(tsUnitNanos > 0)) return 9;
  return Math.min(9, Math.max(0, Math.ceil(-Math.log10(tsUnitNanos * 1e-9) - 1e-9)));
}

/**
 * The k-th smallest (from 0) of `values`, which it reorders: a quickselect, as the built-in typed-array sort takes
 * 1.5 ms for 20,000 weights and a report picks the top rows of six such lists. Falls back to that sort when the
 * partitions shrink too slowly (values arranged against the middle pivot).
 */
export function kthSmallest(values: Float64Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  for (let rounds = 0; lo < hi; rounds++) {
    if (rounds > 64) return values.subarray(lo, hi + 1).sort()[k - lo] as number;
    const pivot = values[(lo + hi) >> 1] as number;
    let i = lo;
    let j = hi;
    while (i <= j) {
      while ((values[i] as number) < pivot) i++;
      while ((values[j] as number) > pivot) j--;
      if (i <= j) {
        const v = values[i] as number;
        values[i] = values[j] as number;
        values[j] = v;
        i++;
        j--;
      }
    }
    // now values[lo..j] ≤ pivot, values[i..hi] ≥ pivot, and any between equal the pivot
    if (k <= j) hi = j;
    else if (k >= i) lo = i;
    else return values[k] as number;
  }
  return values[k] as number;
}

/**
 * Indices 0..count-1 with the largest weights first (ties: larger `second`, then lower index); at most `limit`. With
 * the arrays in `memory`, WebAssembly picks them (the same ones: the order is total).
 */
export function topIndices(
  weights: Float64Array,
  seconds: Float64Array,
  count: number,
  limit: number,
  memory?: PacketMemory,
): number[] {
  if (memory?.holds(weights, seconds)) {
    const scratch = memory.array(Float64Array, count);
    const out = memory.array(Int32Array, Math.max(1, count));
    const temp = memory.array(Int32Array, Math.max(1, count));
    if (scratch && out && temp) {
      const n = memory.wasm.topIndices(
        weights.byteOffset,
        seconds.byteOffset,
        count,
        limit,
        scratch.byteOffset,
        out.byteOffset,
        temp.byteOffset,
      );
      return Array.from(out.subarray(0, n));
    }
  }
  // the limit-th largest weight: rows above it all make the cut, rows equal to it only until the list is full (one
  // pass, the same code for any count: this runs cold, once per list)
  const threshold = count > limit ? kthSmallest(weights.slice(0, count), count - limit) : Number.NEGATIVE_INFINITY;
  const picked: number[] = [];
  const ties: number[] = [];
  for (let i = 0; i < count; i++) {
    const w = weights[i] as number;
    if (w > threshold) picked.push(i);
    else if (w === threshold) ties.push(i);
  }
  if (ties.length + picked.length > limit) {
    ties.sort((x, y) => (seconds[y] as number) - (seconds[x] as number) || x - y);
    ties.length = limit - picked.length;
  }
  for (const i of ties) picked.push(i);
  picked.sort(
    (x, y) =>
      (weights[y] as number) - (weights[x] as number) || (seconds[y] as number) - (seconds[x] as number) || x - y,
  );
  return picked.length > limit ? picked.slice(0, limit) : picked;
}

/**
 * Flows aggregated by address pair, as tshark's IP conversation table counts them. A loop of its own, small enough
 * for V8 to optimize while it runs (in buildReport the loop would end before the big function's OSR code is ready).
 */
function ipPairs(a: Analyzer, cols: ReturnType<typeof flowColumns>) {
  const keys = a.table.keys;
  const nFlows = a.table.size;
  const flows = a.flows;
  const tapF = cols.tapF;
  const tapB = cols.tapB;
  const memory = a.packetMemory;
  const n = Math.max(1, nFlows);
  const ipTable = new FlowTable(9, Math.max(16, nFlows), 9, memory);
  const ipFrames = arrayIn(memory, Float64Array, n * 2);
  const ipBytes = arrayIn(memory, Float64Array, n * 2);
  const ipFirst = arrayIn(memory, Float64Array, n).fill(-1);
  const ipFirstDir = arrayIn(memory, Uint8Array, n);
  const ipStart = arrayIn(memory, Float64Array, n);
  const ipEnd = arrayIn(memory, Float64Array, n);
  const arrays = [keys, flows.cold, tapF, tapB, cols.tapStart, cols.tapEnd, ipTable.slots, ipTable.keys, ipFrames];
  if (memory?.holds(...arrays, ipBytes, ipFirst, ipFirstDir, ipStart, ipEnd)) {
    ipTable.size = memory.wasm.ipPairs(
      keys.byteOffset,
      nFlows,
      flows.cold.byteOffset,
      tapF.byteOffset,
      tapB.byteOffset,
      cols.tapStart.byteOffset,
      cols.tapEnd.byteOffset,
      ipTable.slots.byteOffset,
      ipTable.mask,
      ipTable.keys.byteOffset,
      ipFrames.byteOffset,
      ipBytes.byteOffset,
      ipFirst.byteOffset,
      ipFirstDir.byteOffset,
      ipStart.byteOffset,
      ipEnd.byteOffset,
    );
    return { ipTable, ipFrames, ipBytes, ipFirstDir, ipStart, ipEnd };
  }
  const k = ipTable.key;
  const cold = flows.cold;
  const u8 = a.table.u8;
  for (let f = 0; f < nFlows; f++) {
    const t0 = tapF[2 * f] as number;
    const t1 = tapF[2 * f + 1] as number;
    if (t0 + t1 === 0) continue;
    const base = f * FLOW_STRIDE_WORDS;
    k[0] = keys[base] as number;
    k[1] = keys[base + 1] as number;
    k[2] = keys[base + 2] as number;
    k[3] = keys[base + 3] as number;
    k[4] = keys[base + 4] as number;
    k[5] = keys[base + 5] as number;
    k[6] = keys[base + 6] as number;
    k[7] = keys[base + 7] as number;
    k[8] = (keys[base + 9] as number) & META_V6;
    const c = ipTable.findOrInsert();
    const inserted = ipTable.inserted;
    const same = sameAddresses(keys, base);
    const b0 = tapB[2 * f] as number;
    const b1 = tapB[2 * f + 1] as number;
    if (same) {
      ipFrames[2 * c] = (ipFrames[2 * c] as number) + t0;
      ipBytes[2 * c] = (ipBytes[2 * c] as number) + b0;
      ipFrames[2 * c] = (ipFrames[2 * c] as number) + t1;
      ipBytes[2 * c] = (ipBytes[2 * c] as number) + b1;
    } else {
      ipFrames[2 * c] = (ipFrames[2 * c] as number) + t0;
      ipBytes[2 * c] = (ipBytes[2 * c] as number) + b0;
      ipFrames[2 * c + 1] = (ipFrames[2 * c + 1] as number) + t1;
      ipBytes[2 * c + 1] = (ipBytes[2 * c + 1] as number) + b1;
    }
    const first = cold[f * C_STRIDE + C.TAP_FIRST] as number;
    if (inserted || first < (ipFirst[c] as number)) {
      ipFirst[c] = first;
      ipFirstDir[c] = same ? 0 : (u8[byte(f, U.STATE)] as number) & State.TAP_DIR ? 1 : 0;
    }
    const start = cols.tapStart[f] as number;
    const end = cols.tapEnd[f] as number;
    if (inserted || start < (ipStart[c] as number)) ipStart[c] = start;
    if (inserted || end > (ipEnd[c] as number)) ipEnd[c] = end;
  }
  return { ipTable, ipFrames, ipBytes, ipFirstDir, ipStart, ipEnd };
}

/** Both sides of every IP conversation (a function of its own, for V8: see ipPairs). */
function ipEndpointTally(
  memory: PacketMemory | undefined,
  ipTable: FlowTable,
  ipFrames: Float64Array,
  ipBytes: Float64Array,
): Tally {
  const ipTally = new Tally(Math.max(16, ipTable.size * 2), memory);
  const ipKeys = ipTable.keys;
  const t = ipTally.table;
  if (memory?.holds(ipKeys, ipFrames, ipBytes, t.slots, t.keys)) {
    t.size = memory.wasm.ipEndpointTally(
      ipKeys.byteOffset,
      ipTable.size,
      ipFrames.byteOffset,
      ipBytes.byteOffset,
      t.slots.byteOffset,
      t.mask,
      t.keys.byteOffset,
    );
    return ipTally;
  }
  for (let c = 0; c < ipTable.size; c++) {
    const at = c * 9;
    const meta = ipKeys[at + 8] as number;
    const f0 = ipFrames[2 * c] as number;
    const f1 = ipFrames[2 * c + 1] as number;
    const b0 = ipBytes[2 * c] as number;
    const b1 = ipBytes[2 * c + 1] as number;
    if (sameWords(ipKeys, at, at + 4)) {
      ipTally.add(ipKeys, at, 0, meta, f0 + f1, b0 + b1, f0 + f1, b0 + b1);
    } else {
      ipTally.add(ipKeys, at, 0, meta, f0, b0, f1, b1);
      ipTally.add(ipKeys, at + 4, 0, meta, f1, b1, f0, b0);
    }
  }
  return ipTally;
}

/** Both sides of every TCP/UDP conversation. */
function l4EndpointTally(a: Analyzer, l4F: Float64Array, l4B: Float64Array): Tally {
  const keys = a.table.keys;
  const nFlows = a.table.size;
  const memory = a.packetMemory;
  const l4Tally = new Tally(Math.max(16, nFlows * 2), memory);
  const t = l4Tally.table;
  if (memory?.holds(keys, l4F, l4B, t.slots, t.keys)) {
    t.size = memory.wasm.l4EndpointTally(
      keys.byteOffset,
      nFlows,
      l4F.byteOffset,
      l4B.byteOffset,
      t.slots.byteOffset,
      t.mask,
      t.keys.byteOffset,
    );
    return l4Tally;
  }
  for (let f = 0; f < nFlows; f++) {
    const base = f * FLOW_STRIDE_WORDS;
    const meta = keys[base + 9] as number;
    const proto = meta & 0xff;
    if ((proto !== 6 && proto !== 17) || !(meta & META_PORTS)) continue;
    const f0 = l4F[2 * f] as number;
    const f1 = l4F[2 * f + 1] as number;
    if (f0 + f1 === 0) continue;
    const b0 = l4B[2 * f] as number;
    const b1 = l4B[2 * f + 1] as number;
    const ports = keys[base + 8] as number;
    const loPort = ports >>> 16;
    const hiPort = ports & 0xffff;
    const tag = meta & (0xff | META_V6);
    if (loPort === hiPort && sameAddresses(keys, base)) {
      l4Tally.add(keys, base, loPort, tag, f0 + f1, b0 + b1, f0 + f1, b0 + b1);
    } else {
      l4Tally.add(keys, base, loPort, tag, f0, b0, f1, b1);
      l4Tally.add(keys, base + 4, hiPort, tag, f1, b1, f0, b0);
    }
  }
  return l4Tally;
}

/** Per-flow counts of tshark's IP table (tap) and TCP/UDP tables (l4): frames and bytes per direction, first/last. */
function flowColumns(a: Analyzer) {
  const n = a.table.size;
  const f64 = a.table.f64;
  const u8 = a.table.u8;
  const flows = a.flows;
  const miss = flows.miss;
  const memory = a.packetMemory;
  const tapF = arrayIn(memory, Float64Array, 2 * n);
  const tapB = arrayIn(memory, Float64Array, 2 * n);
  const l4F = arrayIn(memory, Float64Array, 2 * n);
  const l4B = arrayIn(memory, Float64Array, 2 * n);
  const tapStart = arrayIn(memory, Float64Array, n);
  const tapEnd = arrayIn(memory, Float64Array, n);
  const arrays = [a.table.keys, miss, flows.tapStart, flows.tapEnd, tapF, tapB, l4F, l4B, tapStart, tapEnd];
  if (memory?.holds(...arrays)) {
    memory.wasm.flowColumns(...[a.table.keys.byteOffset, n], ...arrays.slice(1).map((x) => x.byteOffset));
    return { tapF, tapB, l4F, l4B, tapStart, tapEnd };
  }
  for (let f = 0; f < n; f++) {
    const r = f * REC_DOUBLES;
    const m = f * M_STRIDE;
    const fr0 = f64[r + N.FRAMES] as number;
    const fr1 = f64[r + N.FRAMES + 1] as number;
    const by0 = f64[r + N.BYTES] as number;
    const by1 = f64[r + N.BYTES + 1] as number;
    tapF[2 * f] = fr0 - (miss[m + M.IP_FRAMES] as number);
    tapF[2 * f + 1] = fr1 - (miss[m + M.IP_FRAMES + 1] as number);
    tapB[2 * f] = by0 - (miss[m + M.IP_BYTES] as number);
    tapB[2 * f + 1] = by1 - (miss[m + M.IP_BYTES + 1] as number);
    l4F[2 * f] = fr0 - (miss[m + M.L4_FRAMES] as number);
    l4F[2 * f + 1] = fr1 - (miss[m + M.L4_FRAMES + 1] as number);
    l4B[2 * f] = by0 - (miss[m + M.L4_BYTES] as number);
    l4B[2 * f + 1] = by1 - (miss[m + M.L4_BYTES + 1] as number);
    const ipMiss = ((u8[byte(f, U.STATE)] as number) & State.IP_MISS) !== 0;
    tapStart[f] = ipMiss ? (flows.tapStart[f] as number) : (f64[r + N.START] as number);
    tapEnd[f] = ipMiss ? (flows.tapEnd[f] as number) : (f64[r + N.END] as number);
  }
  return { tapF, tapB, l4F, l4B, tapStart, tapEnd };
}

function addressText(words: Uint32Array, at: number, v6: boolean): string {
  return v6 ? formatIPv6(words, at) : formatIPv4(words[at] as number);
}

const NS = 1e9;

export function buildReport(a: Analyzer, read: ReadResult | undefined, context: FinishContext): Report {
  const maxRows = a.options.maxRows ?? DEFAULT_MAX_ROWS;
  const memory = a.packetMemory;
  const keys = a.table.keys;
  const flows = a.flows;
  const nFlows = a.table.size;
  const warnings = [...(read?.warnings ?? []), ...a.warnings];

  // ---- summary
  const info = read?.info;
  const interfaces = (info?.interfaces ?? []).map((i) => ({
    ...(i.name !== undefined ? { name: i.name } : {}),
    linkType: linkTypeName(i.linkType),
    snaplen: i.snaplen,
  }));
  const linkTypes = [
    ...new Set(
      info && info.interfaces.length > 0
        ? info.interfaces.map((i) => linkTypeName(i.linkType))
        : [...a.linkTypes].map(linkTypeName),
    ),
  ];
  const digits =
    info && info.interfaces.length > 0 ? Math.max(...info.interfaces.map((i) => precisionDigits(i.tsUnitNanos))) : 9;
  // each time with its packet's interface precision (as capinfos prints a pcapng of mixed resolutions)
  const digitsOf = (iface: number) => {
    const i = info?.interfaces[iface];
    return i ? precisionDigits(i.tsUnitNanos) : digits;
  };
  const hasPackets = a.packets > 0;
  const durationNs = hasPackets ? a.maxT - a.minT : 0;
  const duration = durationNs / NS;
  const perSecond = (x: number) => (duration > 0 ? x / duration : null);
  const summary: Summary = {
    format: info?.format ?? 'unknown',
    linkTypes,
    snaplen: info && info.interfaces.length > 0 ? Math.max(...info.interfaces.map((i) => i.snaplen)) : 0,
    interfaces,
    timePrecision: digits,
    packets: a.packets,
    bytes: a.bytes,
    capturedBytes: a.capturedBytes,
    fileBytes: read?.fileBytes ?? context.fileSize ?? 0,
    ...(hasPackets
      ? {
          firstTime: isoTime(a.baseSeconds, a.baseNanos, a.minT, digitsOf(a.minInterface)),
          lastTime: isoTime(a.baseSeconds, a.baseNanos, a.maxT, digitsOf(a.maxInterface)),
        }
      : {}),
    duration,
    packetsPerSecond: perSecond(a.packets),
    bytesPerSecond: perSecond(a.bytes),
    bitsPerSecond: perSecond(a.bytes * 8),
    averagePacketSize: a.packets > 0 ? a.bytes / a.packets : null,
    packetsCut: a.packetsCut,
    truncated: read?.truncated ?? false,
    warnings,
    comments: info?.comments ?? [],
  };

  // ---- protocol hierarchy
  const protocols = protocolTree(a);

  // ---- per-flow counts as tshark's IP and TCP/UDP tables see them, in one tight pass (no per-flow calls later)
  const cols = flowColumns(a);
  const l4F = cols.l4F;
  const l4B = cols.l4B;

  // ---- IP conversations: flows aggregated by address pair
  const { ipTable, ipFrames, ipBytes, ipFirstDir, ipStart, ipEnd } = ipPairs(a, cols);
  const ipConv = (v6: boolean) => {
    const ipKeys = ipTable.keys;
    const rows = arrayIn(memory, Int32Array, ipTable.size);
    const bytes = arrayIn(memory, Float64Array, ipTable.size);
    const frames = arrayIn(memory, Float64Array, ipTable.size);
    let n = 0;
    if (memory?.holds(ipKeys, ipFrames, ipBytes, rows, bytes, frames)) {
      const arrays = [ipFrames.byteOffset, ipBytes.byteOffset, rows.byteOffset, bytes.byteOffset, frames.byteOffset];
      n = memory.wasm.pairRows(ipKeys.byteOffset, ipTable.size, v6 ? 1 : 0, ...arrays);
    } else {
      for (let c = 0; c < ipTable.size; c++) {
        if (((ipKeys[c * 9 + 8] as number) !== 0) !== v6) continue;
        rows[n] = c;
        bytes[n] = (ipBytes[2 * c] as number) + (ipBytes[2 * c + 1] as number);
        frames[n] = (ipFrames[2 * c] as number) + (ipFrames[2 * c + 1] as number);
        n++;
      }
    }
    const top = topIndices(bytes, frames, n, maxRows, memory);
    const list: Conversation[] = top.map((i) => {
      const c = rows[i] as number;
      const d = ipFirstDir[c] as number;
      const k = ipTable.keys;
      return conversation(
        addressText(k, c * 9 + (d === 0 ? 0 : 4), v6),
        addressText(k, c * 9 + (d === 0 ? 4 : 0), v6),
        undefined,
        undefined,
        ipFrames[2 * c + d] as number,
        ipBytes[2 * c + d] as number,
        ipFrames[2 * c + 1 - d] as number,
        ipBytes[2 * c + 1 - d] as number,
        (ipStart[c] as number) / NS,
        ((ipEnd[c] as number) - (ipStart[c] as number)) / NS,
      );
    });
    return { list, omitted: n - list.length };
  };
  const conv4 = ipConv(false);
  const conv6 = ipConv(true);

  // ---- TCP/UDP conversations: the flows themselves
  const l4Conv = (proto: number) => {
    const rows = arrayIn(memory, Int32Array, nFlows);
    const bytes = arrayIn(memory, Float64Array, nFlows);
    const frames = arrayIn(memory, Float64Array, nFlows);
    let n = 0;
    if (memory?.holds(keys, l4F, l4B, rows, bytes, frames)) {
      const arrays = [l4F.byteOffset, l4B.byteOffset, rows.byteOffset, bytes.byteOffset, frames.byteOffset];
      n = memory.wasm.flowRows(keys.byteOffset, nFlows, proto, ...arrays);
    } else {
      for (let f = 0; f < nFlows; f++) {
        const meta = keys[f * FLOW_STRIDE_WORDS + 9] as number;
        if ((meta & 0xff) !== proto || !(meta & META_PORTS)) continue;
        const fr = (l4F[2 * f] as number) + (l4F[2 * f + 1] as number);
        if (fr > 0) {
          rows[n] = f;
          frames[n] = fr;
          bytes[n] = (l4B[2 * f] as number) + (l4B[2 * f + 1] as number);
          n++;
        }
      }
    }
    const top = topIndices(bytes, frames, n, maxRows, memory);
    const list = top.map((i) => {
      const f = rows[i] as number;
      const d = flows.state(f) & State.L4_DIR ? 1 : 0;
      const base = f * FLOW_STRIDE_WORDS;
      const v6 = ((keys[base + 9] as number) & META_V6) !== 0;
      const ports = keys[base + 8] as number;
      const loPort = ports >>> 16;
      const hiPort = ports & 0xffff;
      const row = conversation(
        addressText(keys, base + (d === 0 ? 0 : 4), v6),
        addressText(keys, base + (d === 0 ? 4 : 0), v6),
        d === 0 ? loPort : hiPort,
        d === 0 ? hiPort : loPort,
        l4F[2 * f + d] as number,
        l4B[2 * f + d] as number,
        l4F[2 * f + 1 - d] as number,
        l4B[2 * f + 1 - d] as number,
        flows.l4StartOf(f) / NS,
        (flows.l4EndOf(f) - flows.l4StartOf(f)) / NS,
      );
      const app = APP_NAMES[flows.small(f, U.APP)];
      if (app) row.app = app;
      const name = a.flowNames.get(f);
      if (name) row.name = name;
      return row;
    });
    return { list, omitted: n - list.length };
  };
  const convTcp = l4Conv(6);
  const convUdp = l4Conv(17);

  // ---- endpoints: both sides of every conversation
  const ipTally = ipEndpointTally(memory, ipTable, ipFrames, ipBytes);
  const l4Tally = l4EndpointTally(a, l4F, l4B);
  const ipEndpoints = (v6: boolean) => ipTally.rows(v6 ? META_V6 : 0, -1, maxRows, false);
  // IPv4 and IPv6 rows in one list: on equal bytes and frames IPv4 rows come first
  const l4Endpoints = (proto: number) => l4Tally.rows(proto, proto | META_V6, maxRows, true);
  const ep4 = ipEndpoints(false);
  const ep6 = ipEndpoints(true);
  const epTcp = l4Endpoints(6);
  const epUdp = l4Endpoints(17);

  // ---- traffic relative to the host
  const hostAddresses = [
    ...a.hostV4.map((w) => formatIPv4(w)),
    ...Array.from({ length: a.hostV6.length / 4 }, (_, i) => formatIPv6(a.hostV6, i * 4)),
  ];
  const remote = remoteFacts(a);
  const vol = (i: number) => ({ packets: a.volumePackets[i] as number, bytes: a.volumeBytes[i] as number });
  const traffic = {
    outbound: vol(1),
    inbound: vol(2),
    local: vol(3),
    other: vol(0),
    nonIp: vol(4),
    topDestinations: remote.top('address', 'out', 10),
    topSources: remote.top('address', 'in', 10),
    topDestinationServices: remote.top('service', 'out', 10),
    topSourceServices: remote.top('service', 'in', 10),
    topDestinationPorts: remote.topPorts(10),
  };

  // ---- timeline (quarters first, on the fine bins)
  const tl = a.timeline;
  const span = tl.count * tl.binNs;
  const quarters =
    hasPackets && tl.count >= 8
      ? {
          firstOut: tl.sum(tl.outBytes, 0, span / 4),
          lastOut: tl.sum(tl.outBytes, span - span / 4, span),
          firstIn: tl.sum(tl.inBytes, 0, span / 4),
          lastIn: tl.sum(tl.inBytes, span - span / 4, span),
          quarterSeconds: span / 4 / NS,
        }
      : undefined;
  const bins = tl.finish(Math.max(0, a.maxT));
  const [packets, bytes, outPackets, outBytes, inPackets, inBytes] = bins.columns as [
    number[],
    number[],
    number[],
    number[],
    number[],
    number[],
  ];
  if (tl.widened) warnings.push(`The timeline bins were widened to ${bins.binNs / NS} s to stay within 100000 bins.`);
  const timeline = {
    binSeconds: bins.binNs / NS,
    ...(hasPackets ? { start: isoTime(a.baseSeconds, a.baseNanos, 0, digits) } : {}),
    packets,
    bytes,
    outPackets,
    outBytes,
    inPackets,
    inBytes,
  };

  // ---- TCP health
  const tcp = tcpHealth(a);

  // ---- names
  const dnsRows = [...a.dns.values()];
  dnsRows.sort((x, y) => y.queries + y.responses - (x.queries + x.responses));
  const tlsRows = [...a.tls.entries()].sort((x, y) => y[1].flows - x[1].flows);
  const httpRows = [...a.http.values()].sort((x, y) => y.requests - x.requests);
  const names = {
    dns: dnsRows.slice(0, maxRows).map((r) => ({
      name: r.name,
      type: r.type,
      queries: r.queries,
      responses: r.responses,
      rcodes: r.rcodes,
      answers: [...r.answers],
    })),
    tls: tlsRows.slice(0, maxRows).map(([sni, r]) => ({ sni, flows: r.flows, servers: [...r.servers] })),
    http: httpRows.slice(0, maxRows).map((r) => ({ ...r })),
    omitted: {
      dns: a.omitted.dns + Math.max(0, dnsRows.length - maxRows),
      tls: a.omitted.tls + Math.max(0, tlsRows.length - maxRows),
      http: a.omitted.http + Math.max(0, httpRows.length - maxRows),
    },
  };

  const report: Report = {
    version: REPORT_VERSION,
    ...(context.path !== undefined || context.fileSize !== undefined
      ? {
          file: {
            ...(context.path !== undefined ? { path: context.path } : {}),
            ...(context.fileSize !== undefined ? { size: context.fileSize } : {}),
          },
        }
      : {}),
    summary,
    protocols,
    conversations: {
      ipv4: conv4.list,
      ipv6: conv6.list,
      tcp: convTcp.list,
      udp: convUdp.list,
      omitted: { ipv4: conv4.omitted, ipv6: conv6.omitted, tcp: convTcp.omitted, udp: convUdp.omitted },
    },
    endpoints: {
      ipv4: ep4.list,
      ipv6: ep6.list,
      tcp: epTcp.list,
      udp: epUdp.list,
      omitted: { ipv4: ep4.omitted, ipv6: ep6.omitted, tcp: epTcp.omitted, udp: epUdp.omitted },
    },
    hosts: {
      addresses: hostAddresses,
      source: a.hostSource,
      ...(a.hostNote ? { note: a.hostNote } : {}),
    },
    traffic,
    timeline,
    tcp,
    names,
    explanation: {
      sentences: [],
      outbound: {
        bytes: 0,
        firstQuarterBitsPerSecond: null,
        lastQuarterBitsPerSecond: null,
        topServices: [],
        newDestinations: [],
      },
      inbound: { bytes: 0, firstQuarterBitsPerSecond: null, lastQuarterBitsPerSecond: null },
    },
  };
  report.explanation = explain(report, {
    quarters,
    remote,
    baseline: context.baseline,
    baselineFile: context.baselineFile,
  });
  return report;
}

function conversation(
  a: string,
  b: string,
  portA: number | undefined,
  portB: number | undefined,
  framesAtoB: number,
  bytesAtoB: number,
  framesBtoA: number,
  bytesBtoA: number,
  relStart: number,
  duration: number,
): Conversation {
  // two literal shapes, not a spread: this runs for every row kept
  if (portA !== undefined) {
    return {
      a,
      b,
      portA,
      portB: portB as number,
      framesAtoB,
      bytesAtoB,
      framesBtoA,
      bytesBtoA,
      frames: framesAtoB + framesBtoA,
      bytes: bytesAtoB + bytesBtoA,
      relStart,
      duration,
    };
  }
  return {
    a,
    b,
    framesAtoB,
    bytesAtoB,
    framesBtoA,
    bytesBtoA,
    frames: framesAtoB + framesBtoA,
    bytes: bytesAtoB + bytesBtoA,
    relStart,
    duration,
  };
}

/** Endpoint counters: (address, port, tag) → tx/rx frames and bytes, kept in the hash table's records. */
export class Tally {
  /** key: 4 address words, port, tag; then 4 doubles (tx frames, tx bytes, rx frames, rx bytes) from word 6. */
  readonly table: FlowTable;
  constructor(
    initial: number,
    private readonly memory?: PacketMemory,
  ) {
    this.table = new FlowTable(6, initial, 14, memory);
  }

  add(
    src: Uint32Array,
    at: number,
    port: number,
    tag: number,
    txF: number,
    txB: number,
    rxF: number,
    rxB: number,
  ): void {
    const k = this.table.key;
    k[0] = src[at] as number;
    k[1] = src[at + 1] as number;
    k[2] = src[at + 2] as number;
    k[3] = src[at + 3] as number;
    k[4] = port;
    k[5] = tag;
    const e = this.table.findOrInsert();
    const d = this.table.f64;
    const o = e * 7 + 3;
    d[o] = (d[o] as number) + txF;
    d[o + 1] = (d[o + 1] as number) + txB;
    d[o + 2] = (d[o + 2] as number) + rxF;
    d[o + 3] = (d[o + 3] as number) + rxB;
  }

  /** Entry e's tag, tx frames and address words. */
  tag(e: number): number {
    return this.table.keys[e * 14 + 5] as number;
  }
  txFrames(e: number): number {
    return this.table.f64[e * 7 + 3] as number;
  }
  address(e: number): number[] {
    return Array.from(this.table.keys.subarray(e * 14, e * 14 + 4));
  }

  /** The endpoints with tag `tag`, then those with `tag2` (-1: none), largest first. */
  rows(tag: number, tag2: number, maxRows: number, withPort: boolean): { list: Endpoint[]; omitted: number } {
    const t = this.table;
    const d = t.f64;
    const keys = t.keys;
    const memory = this.memory;
    const picked = arrayIn(memory, Int32Array, t.size);
    const bytes = arrayIn(memory, Float64Array, t.size);
    const frames = arrayIn(memory, Float64Array, t.size);
    let n = 0;
    if (memory?.holds(keys, picked, bytes, frames)) {
      n = memory.wasm.tallyRows(
        keys.byteOffset,
        t.size,
        tag,
        tag2,
        picked.byteOffset,
        bytes.byteOffset,
        frames.byteOffset,
      );
    } else {
      for (const want of [tag, tag2]) {
        if (want < 0) continue;
        for (let e = 0; e < t.size; e++) {
          if (keys[e * 14 + 5] !== want) continue;
          picked[n] = e;
          bytes[n] = (d[e * 7 + 4] as number) + (d[e * 7 + 6] as number);
          frames[n] = (d[e * 7 + 3] as number) + (d[e * 7 + 5] as number);
          n++;
        }
      }
    }
    const top = topIndices(bytes, frames, n, maxRows, memory);
    const list = top.map((i) => {
      const e = picked[i] as number;
      const o = e * 7 + 3;
      const address = addressText(t.keys, e * 14, ((keys[e * 14 + 5] as number) & META_V6) !== 0);
      return withPort
        ? {
            address,
            port: t.keys[e * 14 + 4] as number,
            frames: frames[i] as number,
            bytes: bytes[i] as number,
            txFrames: d[o] as number,
            txBytes: d[o + 1] as number,
            rxFrames: d[o + 2] as number,
            rxBytes: d[o + 3] as number,
          }
        : {
            address,
            frames: frames[i] as number,
            bytes: bytes[i] as number,
            txFrames: d[o] as number,
            txBytes: d[o + 1] as number,
            rxFrames: d[o + 2] as number,
            rxBytes: d[o + 3] as number,
          };
    });
    return { list, omitted: n - list.length };
  }
}

function sameWords(k: Uint32Array, x: number, y: number): boolean {
  return k[x] === k[y] && k[x + 1] === k[y + 1] && k[x + 2] === k[y + 2] && k[x + 3] === k[y + 3];
}
function sameAddresses(keys: Uint32Array, base: number): boolean {
  return sameWords(keys, base, base + 4);
}

const LINK_LABELS = ['other', 'eth', 'sll', 'sll', 'null', 'raw'];
const NET_LABELS = ['', 'ip', 'ipv6', 'arp', 'other'];
const L4_LABELS = ['', 'tcp', 'udp', 'icmp', 'icmpv6', 'other', 'fragment'];

function protocolTree(a: Analyzer): ProtocolNode {
  const root: ProtocolNode = { name: 'frame', packets: 0, bytes: 0, children: [] };
  const child = (node: ProtocolNode, name: string): ProtocolNode => {
    let c = node.children.find((x) => x.name === name);
    if (!c) {
      c = { name, packets: 0, bytes: 0, children: [] };
      node.children.push(c);
    }
    return c;
  };
  for (let s = 0; s < STACKS; s++) {
    const packets = a.stackPackets[s] as number;
    if (packets === 0) continue;
    const bytes = a.stackBytes[s] as number;
    const { link, vlan, net, l4, app } = decodeStackId(s);
    const path = [LINK_LABELS[link] ?? 'other'];
    if (vlan) path.push('vlan');
    if (net) path.push(NET_LABELS[net] as string);
    if (l4) path.push(L4_LABELS[l4] as string);
    if (app) path.push(APP_NAMES[app] as string);
    let node = root;
    root.packets += packets;
    root.bytes += bytes;
    for (const name of path) {
      node = child(node, name);
      node.packets += packets;
      node.bytes += bytes;
    }
  }
  const sort = (n: ProtocolNode) => {
    n.children.sort((x, y) => y.bytes - x.bytes);
    n.children.forEach(sort);
  };
  sort(root);
  return root;
}

/** Per remote address / service / port aggregates of the flows with exactly one host side. */
function remoteFacts(a: Analyzer): RemoteFacts {
  const keys = a.table.keys;
  const flows = a.flows;
  const n = a.table.size;
  const addr = new FlowTable(5, Math.max(16, n));
  const svc = new FlowTable(6, Math.max(16, n));
  const size = Math.max(1, n);
  // [outBytes, outPackets, inBytes, inPackets, outFlows, inFlows]
  const addrVals = new Float64Array(size * 6);
  const addrFirstOut = new Float64Array(size).fill(Number.POSITIVE_INFINITY);
  const svcVals = new Float64Array(size * 6);
  const svcApp = new Uint8Array(size);
  const flowAddr = new Int32Array(size).fill(-1);
  const flowSvc = new Int32Array(size).fill(-1);
  const ports = new Map<number, { bytes: number; flows: number }>();
  let outTotal = 0;
  let inTotal = 0;
  for (let f = 0; f < n; f++) {
    const mask = flows.small(f, U.HOST);
    if (mask !== 1 && mask !== 2) continue;
    const base = f * FLOW_STRIDE_WORDS;
    const meta = keys[base + 9] as number;
    const v6 = (meta & META_V6) !== 0;
    const remoteSide = mask === 1 ? 1 : 0;
    const outDir = mask === 1 ? 0 : 1; // host is low → its packets go low → high (dir 0)
    const outB = flows.bytes(f, outDir);
    const outP = flows.frames(f, outDir);
    const inB = flows.bytes(f, 1 - outDir);
    const inP = flows.frames(f, 1 - outDir);
    outTotal += outB;
    inTotal += inB;
    const k = addr.key;
    for (let i = 0; i < 4; i++) k[i] = keys[base + remoteSide * 4 + i] as number;
    k[4] = v6 ? 1 : 0;
    const e = addr.findOrInsert();
    flowAddr[f] = e;
    addrVals[6 * e] = (addrVals[6 * e] as number) + outB;
    addrVals[6 * e + 1] = (addrVals[6 * e + 1] as number) + outP;
    addrVals[6 * e + 2] = (addrVals[6 * e + 2] as number) + inB;
    addrVals[6 * e + 3] = (addrVals[6 * e + 3] as number) + inP;
    if (outP > 0) addrVals[6 * e + 4] = (addrVals[6 * e + 4] as number) + 1;
    if (inP > 0) addrVals[6 * e + 5] = (addrVals[6 * e + 5] as number) + 1;
    if (outP > 0 && flows.start(f) < (addrFirstOut[e] as number)) addrFirstOut[e] = flows.start(f);
    const proto = meta & 0xff;
    {
      const p = keys[base + 8] as number;
      const hasPorts = (meta & META_PORTS) !== 0 && (proto === 6 || proto === 17);
      const port = !hasPorts ? 0 : remoteSide === 0 ? p >>> 16 : p & 0xffff;
      const s = svc.key;
      for (let i = 0; i < 4; i++) s[i] = k[i] as number;
      s[4] = port;
      s[5] = proto | (v6 ? META_V6 : 0);
      const j = svc.findOrInsert();
      flowSvc[f] = j;
      svcVals[6 * j] = (svcVals[6 * j] as number) + outB;
      svcVals[6 * j + 1] = (svcVals[6 * j + 1] as number) + outP;
      svcVals[6 * j + 2] = (svcVals[6 * j + 2] as number) + inB;
      svcVals[6 * j + 3] = (svcVals[6 * j + 3] as number) + inP;
      if (outP > 0) svcVals[6 * j + 4] = (svcVals[6 * j + 4] as number) + 1;
      if (inP > 0) svcVals[6 * j + 5] = (svcVals[6 * j + 5] as number) + 1;
      const app = flows.small(f, U.APP);
      if (app !== App.UNKNOWN && app !== App.OTHER) svcApp[j] = app;
      if (outB > 0 && hasPorts) {
        const pk = (proto << 16) | port;
        const row = ports.get(pk) ?? { bytes: 0, flows: 0 };
        row.bytes += outB;
        row.flows++;
        ports.set(pk, row);
      }
    }
  }
  // names per remote address and service: TLS SNI / HTTP Host of their flows, then DNS answers
  const addrNames = new Map<number, Set<string>>();
  const svcNames = new Map<number, Set<string>>();
  for (const [f, name] of a.flowNames) {
    for (const [table, map] of [
      [flowAddr, addrNames],
      [flowSvc, svcNames],
    ] as const) {
      const e = table[f] as number;
      if (e < 0) continue;
      const set = map.get(e) ?? new Set<string>();
      if (set.size < 4) set.add(name);
      map.set(e, set);
    }
  }
  const addressTextOf = (t: FlowTable, e: number) => {
    const w = t.width;
    const v6 = w === 5 ? (t.keys[e * 5 + 4] as number) === 1 : ((t.keys[e * 6 + 5] as number) & META_V6) !== 0;
    return addressText(t.keys, e * w, v6);
  };
  const namesOf = (text: string, own: Set<string> | undefined): string[] | undefined => {
    const all = new Set(own ?? []);
    for (const name of a.addressNames.get(text) ?? []) if (all.size < 4) all.add(name);
    return all.size > 0 ? [...all] : undefined;
  };
  const peer = (kind: 'address' | 'service', e: number, dir: 'out' | 'in'): Peer => {
    const t = kind === 'address' ? addr : svc;
    const vals = kind === 'address' ? addrVals : svcVals;
    const o = dir === 'out' ? 0 : 2;
    const address = addressTextOf(t, e);
    const total = dir === 'out' ? outTotal : inTotal;
    const p: Peer = {
      address,
      bytes: vals[6 * e + o] as number,
      packets: vals[6 * e + o + 1] as number,
      share: total > 0 ? (vals[6 * e + o] as number) / total : 0,
      flows: vals[6 * e + (dir === 'out' ? 4 : 5)] as number,
    };
    if (kind === 'service') {
      const proto = (t.keys[e * 6 + 5] as number) & 0xff;
      if (proto === 6 || proto === 17) p.port = t.keys[e * 6 + 4] as number;
      p.protocol = protocolName(proto);
      const app = APP_NAMES[svcApp[e] as number];
      if (app) p.app = app;
    }
    const names = namesOf(address, (kind === 'address' ? addrNames : svcNames).get(e));
    if (names) p.names = names;
    return p;
  };
  const memo = new Map<string, Peer[]>();
  return {
    outTotal,
    inTotal,
    top(kind, dir, limit) {
      const id = `${kind} ${dir} ${limit}`;
      const cached = memo.get(id);
      if (cached) return cached;
      const t = kind === 'address' ? addr : svc;
      const vals = kind === 'address' ? addrVals : svcVals;
      const o = dir === 'out' ? 0 : 2;
      const weights = arrayIn(a.packetMemory, Float64Array, t.size);
      const seconds = arrayIn(a.packetMemory, Float64Array, t.size);
      for (let e = 0; e < t.size; e++) {
        weights[e] = vals[6 * e + o] as number;
        seconds[e] = vals[6 * e + o + 1] as number;
      }
      const list = topIndices(weights, seconds, t.size, limit, a.packetMemory)
        .filter((e) => (vals[6 * e + o] as number) > 0)
        .map((e) => peer(kind, e, dir));
      memo.set(id, list);
      return list;
    },
    topPorts(limit) {
      return [...ports.entries()]
        .sort((x, y) => y[1].bytes - x[1].bytes)
        .slice(0, limit)
        .map(([pk, r]) => ({
          port: pk & 0xffff,
          protocol: pk >>> 16 === 6 ? ('tcp' as const) : ('udp' as const),
          bytes: r.bytes,
          share: outTotal > 0 ? r.bytes / outTotal : 0,
          flows: r.flows,
        }));
    },
    newDestinations(afterNs, limit) {
      const rows: number[] = [];
      for (let e = 0; e < addr.size; e++) {
        if ((addrVals[6 * e] as number) > 0 && (addrFirstOut[e] as number) >= afterNs) rows.push(e);
      }
      const total = rows.reduce((s, e) => s + (addrVals[6 * e] as number), 0);
      const list = rows
        .sort((x, y) => (addrVals[6 * y] as number) - (addrVals[6 * x] as number))
        .slice(0, limit)
        .map((e) => {
          const address = addressTextOf(addr, e);
          const names = namesOf(address, addrNames.get(e));
          return {
            address,
            bytes: addrVals[6 * e] as number,
            share: outTotal > 0 ? (addrVals[6 * e] as number) / outTotal : 0,
            firstSeen: (addrFirstOut[e] as number) / NS,
            ...(names ? { names } : {}),
          };
        });
      return { count: rows.length, bytes: total, list };
    },
    allDestinations(limit) {
      return this.top('address', 'out', limit);
    },
  };
}

const PROTOCOL_NAMES: Record<number, string> = {
  1: 'icmp',
  6: 'tcp',
  17: 'udp',
  47: 'gre',
  50: 'esp',
  51: 'ah',
  58: 'icmpv6',
  132: 'sctp',
};
/** Name of an IP protocol number: tcp, udp, icmp, … or "ip-proto-N". */
export function protocolName(proto: number): string {
  return PROTOCOL_NAMES[proto] ?? `ip-proto-${proto}`;
}

function tcpHealth(a: Analyzer): TcpHealth {
  const flows = a.flows;
  const keys = a.table.keys;
  const rtts: number[] = [];
  let attempted = 0;
  let established = 0;
  let refused = 0;
  let unanswered = 0;
  const bad: number[] = [];
  for (let f = 0; f < a.table.size; f++) {
    const bits = flows.small(f, U.TCP);
    if (bits & FlowBit.SYN) {
      attempted++;
      if (bits & FlowBit.SYN_ACK) {
        established++;
        rtts.push(flows.field(f, C.RTT));
      } else if (bits & FlowBit.RST_FROM_RESPONDER) refused++;
      else if (!(bits & FlowBit.RST)) unanswered++;
    }
    if (flows.field(f, C.RETRANS) > 0 || flows.field(f, C.RESETS) > 0 || flows.field(f, C.ZERO_WINDOWS) > 0)
      bad.push(f);
  }
  rtts.sort((x, y) => x - y);
  const pct = (p: number) =>
    rtts.length > 0 ? (rtts[Math.min(rtts.length - 1, Math.ceil(p * rtts.length) - 1)] as number) / 1e6 : null;
  bad.sort(
    (x, y) =>
      flows.field(y, C.RETRANS) - flows.field(x, C.RETRANS) ||
      flows.field(y, C.RESETS) - flows.field(x, C.RESETS) ||
      flows.field(y, C.ZERO_WINDOWS) - flows.field(x, C.ZERO_WINDOWS),
  );
  const worstFlows = bad.slice(0, 10).map((f) => ({
    flow: flowLabel(keys, flows, f),
    retransmissions: flows.field(f, C.RETRANS),
    resets: flows.field(f, C.RESETS),
    zeroWindows: flows.field(f, C.ZERO_WINDOWS),
    rttMs: flows.field(f, C.RTT) >= 0 ? flows.field(f, C.RTT) / 1e6 : null,
  }));
  return {
    segments: a.tcpSegments,
    dataSegments: a.tcpDataSegments,
    retransmissions: a.retransmissions,
    retransmittedBytes: a.retransmittedBytes,
    resets: a.resets,
    zeroWindows: a.zeroWindows,
    connections: { attempted, established, refused, unanswered },
    handshakeRtt: {
      samples: rtts.length,
      medianMs: pct(0.5),
      p95Ms: pct(0.95),
      maxMs: rtts.length > 0 ? (rtts[rtts.length - 1] as number) / 1e6 : null,
    },
    worstFlows,
  };
}

/** "client:port → server:port" of a TCP/UDP flow (the SYN's sender first, else the first packet's). */
export function flowLabel(keys: Uint32Array, flows: Analyzer['flows'], f: number): string {
  const base = f * FLOW_STRIDE_WORDS;
  const v6 = ((keys[base + 9] as number) & META_V6) !== 0;
  const ports = keys[base + 8] as number;
  const first = flows.small(f, U.TCP) & FlowBit.SYN ? flows.small(f, U.SYN_DIR) : flows.state(f) & State.L4_DIR ? 1 : 0;
  const side = (s: number) => {
    const text = addressText(keys, base + s * 4, v6);
    const port = s === 0 ? ports >>> 16 : ports & 0xffff;
    return v6 ? `[${text}]:${port}` : `${text}:${port}`;
  };
  return first === 0 ? `${side(0)} → ${side(1)}` : `${side(1)} → ${side(0)}`;
}

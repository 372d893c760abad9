// AssemblyScript: the analyzer's packet path for runs of classic pcap records and pcapng Enhanced Packet Blocks,
// compiled to WebAssembly by scripts/build-wasm.ts into src/analysis/packet-path-wasm.ts. It counts the common packet
// (an IPv4/IPv6 TCP or UDP packet, unfragmented, on Ethernet with or without VLAN tags, Linux SLL/SLL2 or raw IP)
// exactly as the analyzer's TypeScript path does (analyzer.ts: onPacket, ipPacket, tcp), in the analyzer's own
// arrays, which live in this memory. Any other packet it leaves, uncounted, to the TypeScript path, which is the reference:
// src/analysis/packet-path.test.ts compares whole reports of the two. Payloads are looked into by the TypeScript
// parsers (DNS, TLS ClientHello, HTTP): run() stops after counting such a packet and says which parser it needs.
// The second part (Report tables) builds build-report.ts's tables over the flows, and the host inference's.
//
// Memory layout: the doubles of the parameter block (P_*, at most 128, written by the analyzer before a run, the
// counts read back after storeState()) at byte 0; the analyzer's arrays where the P_*_AT fields say (flow-table.ts
// and analyzer.ts layouts). Nothing static: the module has no data of its own in the analyzer's memory.

// parameter block: doubles at byte 8 × index
const P_N: usize = 0; // packets counted so far (in: the index of the next packet; out: advanced)
const P_BYTES: usize = 1;
const P_CAPTURED: usize = 2;
const P_CUT: usize = 3;
const P_MIN_T: usize = 4;
const P_MAX_T: usize = 5;
const P_SIZE: usize = 6; // flows in the table
const P_CAPACITY: usize = 7; // flows the records hold before growing
const P_SLOT_MASK: usize = 8;
const P_MAX_FLOWS: usize = 9;
const P_BASE_SECONDS: usize = 10;
const P_BASE_NANOS: usize = 11;
const P_LITTLE_ENDIAN: usize = 12;
const P_NANOS_PER_UNIT: usize = 13;
const P_UNITS_PER_SECOND: usize = 14;
const P_LINK_TYPE: usize = 15;
const P_MAX_CAPTURED: usize = 16;
const P_PACKETS_LEFT: usize = 17; // maxPackets − packets read
const P_BIN_NS: usize = 18;
const P_BIN_COUNT: usize = 19; // bins in use (in and out)
const P_BIN_LIMIT: usize = 28; // bins before the timeline must widen them
const P_BIN_LENGTH: usize = 29; // bins the columns hold
const P_TCP_SEGMENTS: usize = 20;
const P_TCP_DATA_SEGMENTS: usize = 21;
const P_RETRANSMISSIONS: usize = 22;
const P_RETRANSMITTED_BYTES: usize = 23;
const P_RESETS: usize = 24;
const P_ZERO_WINDOWS: usize = 25;
const P_READ: usize = 26; // records run() went past (counted), and their captured bytes
const P_READ_BYTES: usize = 27;
// where the arrays are
const P_SLOTS_AT: usize = 30;
const P_RECORDS_AT: usize = 31;
const P_COLD_AT: usize = 32;
const P_HOST4_AT: usize = 33;
const P_HOST4_COUNT: usize = 34;
const P_HOST6_AT: usize = 35;
const P_HOST6_COUNT: usize = 36;
const P_VOLUME_PACKETS_AT: usize = 37;
const P_VOLUME_BYTES_AT: usize = 38;
const P_STACK_PACKETS_AT: usize = 39;
const P_STACK_BYTES_AT: usize = 40;
const P_BIN_PACKETS_AT: usize = 41;
const P_BIN_BYTES_AT: usize = 42;
const P_BIN_OUT_PACKETS_AT: usize = 43;
const P_BIN_OUT_BYTES_AT: usize = 44;
const P_BIN_IN_PACKETS_AT: usize = 45;
const P_BIN_IN_BYTES_AT: usize = 46;
// while the host is being inferred: each packet's flow, direction, time and length logged (Analyzer.log)
const P_INFERRING: usize = 47;
const P_LOG_N: usize = 48;
const P_LOG_LIMIT: usize = 49;
const P_LOG_FLOW_AT: usize = 57;
const P_LOG_DIR_AT: usize = 58;
const P_LOG_T_AT: usize = 59;
const P_LOG_BYTES_AT: usize = 60;
// 1 when the analyzer wrote the parameters since run() last read them (run() keeps its state between calls otherwise)
const P_FRESH: usize = 61;
// pcapng: the section's interfaces (4 doubles each: link type, units per second (0: the TypeScript path converts its
// times), seconds offset, index in the file's interfaces), the largest block the reader accepts, and the interfaces
// of the earliest and latest packets
const P_IFACES_AT: usize = 62;
const P_IFACE_COUNT: usize = 63;
const P_MAX_BLOCK: usize = 64;
const P_MIN_IFACE: usize = 66;
const P_MAX_IFACE: usize = 67;
// the link types seen (a byte each, 1: seen): the analyzer lists them, so a new one is its to see
const P_LINK_SEEN_AT: usize = 65;
// out: the payload parser the last packet needs (STEP_*), with the packet's flow, direction, TCP sequence number and
// payload length, and the captured payload [STEP_FROM, STEP_TO) as memory offsets
const P_STEP: usize = 50;
const P_STEP_FLOW: usize = 51;
const P_STEP_DIR: usize = 52;
const P_STEP_SEQ: usize = 53;
const P_STEP_PAYLOAD: usize = 54;
const P_STEP_FROM: usize = 55;
const P_STEP_TO: usize = 56;

const STEP_DNS: u32 = 1;
const STEP_CLIENT_HELLO: u32 = 2; // a ClientHello starts
const STEP_HELLO_MORE: u32 = 3; // a segment of the flow while a ClientHello is being put together
const STEP_HTTP: u32 = 4;

// flow records (analyzer.ts): 128 bytes, key words 0–9, small values at byte 40 (U), doubles N at 48…
const RECORD_BYTES: usize = 128;
const U_HOST: usize = 40;
const U_APP: usize = 41;
const U_TRIES: usize = 42;
const U_TCP: usize = 43;
const U_SYN_DIR: usize = 44;
const U_STATE: usize = 45;
const N_FRAMES: usize = 48;
const N_BYTES: usize = 64;
const N_START: usize = 80;
const N_END: usize = 88;
const N_NEXT_SEQ: usize = 96;
// Flows.cold: 8 doubles per flow
const COLD_BYTES: usize = 64;
const C_TAP_FIRST: usize = 0;
const C_SYN_TIME: usize = 8;
const C_RTT: usize = 16;
const C_RETRANS: usize = 24;
const C_RESETS: usize = 32;
const C_ZERO_WINDOWS: usize = 40;

const META_V6: u32 = 1 << 8;
const META_PORTS: u32 = 1 << 9;
// State
const TAP_SEEN: u32 = 1;
const TAP_DIR: u32 = 2;
const L4_SEEN: u32 = 4;
const L4_DIR: u32 = 8;
const MISSES: u32 = 16 | 32; // IP_MISS, L4_MISS: the flow has fragments, counted by the TypeScript path
// FlowBit
const BIT_SYN: u32 = 1;
const BIT_SYN_ACK: u32 = 2;
const BIT_RST: u32 = 4;
const BIT_RST_FROM_RESPONDER: u32 = 8;
const BIT_HELLO: u32 = 64;
// App
const APP_UNKNOWN: u32 = 0;
const APP_DNS: u32 = 1;
const APP_TLS: u32 = 2;
const APP_HTTP: u32 = 3;
const APP_OTHER: u32 = 4;
// TcpFlag
const FIN: u32 = 1;
const SYN: u32 = 2;
const RST: u32 = 4;
const ACK: u32 = 16;

// the packet being counted
let k0: u32 = 0;
let k1: u32 = 0;
let k2: u32 = 0;
let k3: u32 = 0;
let k4: u32 = 0;
let k5: u32 = 0;
let k6: u32 = 0;
let k7: u32 = 0;
let k8: u32 = 0;
let k9: u32 = 0;

// The analyzer's state, from the parameter block: loaded by run() when P_FRESH says the analyzer wrote it, the counts
// written back by storeState().
let packetIndex: f64 = 0;
let wireBytes: f64 = 0;
let capturedBytes: f64 = 0;
let cutPackets: f64 = 0;
let minTime: f64 = 0;
let maxTime: f64 = 0;
let flowCount: f64 = 0;
let flowCapacity: f64 = 0;
let flowLimit: f64 = 0;
let slotMask: u32 = 0;
let linkSeenAt: usize = 0;
let minInterface: f64 = 0;
let maxInterface: f64 = 0;
let binWidth: f64 = 0;
let binCount: f64 = 0;
let binLimit: f64 = 0;
let binLength: f64 = 0;
let inferring = false;
let logCount: f64 = 0;
let logLimit: f64 = 0;
let tcpSegments: f64 = 0;
let tcpDataSegments: f64 = 0;
let retransmissions: f64 = 0;
let retransmittedBytes: f64 = 0;
let resets: f64 = 0;
let zeroWindows: f64 = 0;
let slotsAt: usize = 0;
let recordsAt: usize = 0;
let coldAt: usize = 0;
let volumePacketsAt: usize = 0;
let volumeBytesAt: usize = 0;
let stackPacketsAt: usize = 0;
let stackBytesAt: usize = 0;
let binPacketsAt: usize = 0;
let binBytesAt: usize = 0;
let binOutPacketsAt: usize = 0;
let binOutBytesAt: usize = 0;
let binInPacketsAt: usize = 0;
let binInBytesAt: usize = 0;
let logFlowAt: usize = 0;
let logDirAt: usize = 0;
let logTimeAt: usize = 0;
let logBytesAt: usize = 0;
let host4At: usize = 0;
let host4Count: usize = 0;
let host6At: usize = 0;
let host6Count: usize = 0;

function loadState(): void {
  packetIndex = param(P_N);
  wireBytes = param(P_BYTES);
  capturedBytes = param(P_CAPTURED);
  cutPackets = param(P_CUT);
  minTime = param(P_MIN_T);
  maxTime = param(P_MAX_T);
  flowCount = param(P_SIZE);
  linkSeenAt = at(P_LINK_SEEN_AT);
  minInterface = param(P_MIN_IFACE);
  maxInterface = param(P_MAX_IFACE);
  flowCapacity = param(P_CAPACITY);
  flowLimit = param(P_MAX_FLOWS);
  slotMask = <u32>param(P_SLOT_MASK);
  binWidth = param(P_BIN_NS);
  binCount = param(P_BIN_COUNT);
  binLimit = param(P_BIN_LIMIT);
  binLength = param(P_BIN_LENGTH);
  inferring = param(P_INFERRING) != 0;
  logCount = param(P_LOG_N);
  logLimit = param(P_LOG_LIMIT);
  tcpSegments = param(P_TCP_SEGMENTS);
  tcpDataSegments = param(P_TCP_DATA_SEGMENTS);
  retransmissions = param(P_RETRANSMISSIONS);
  retransmittedBytes = param(P_RETRANSMITTED_BYTES);
  resets = param(P_RESETS);
  zeroWindows = param(P_ZERO_WINDOWS);
  slotsAt = at(P_SLOTS_AT);
  recordsAt = at(P_RECORDS_AT);
  coldAt = at(P_COLD_AT);
  volumePacketsAt = at(P_VOLUME_PACKETS_AT);
  volumeBytesAt = at(P_VOLUME_BYTES_AT);
  stackPacketsAt = at(P_STACK_PACKETS_AT);
  stackBytesAt = at(P_STACK_BYTES_AT);
  binPacketsAt = at(P_BIN_PACKETS_AT);
  binBytesAt = at(P_BIN_BYTES_AT);
  binOutPacketsAt = at(P_BIN_OUT_PACKETS_AT);
  binOutBytesAt = at(P_BIN_OUT_BYTES_AT);
  binInPacketsAt = at(P_BIN_IN_PACKETS_AT);
  binInBytesAt = at(P_BIN_IN_BYTES_AT);
  logFlowAt = at(P_LOG_FLOW_AT);
  logDirAt = at(P_LOG_DIR_AT);
  logTimeAt = at(P_LOG_T_AT);
  logBytesAt = at(P_LOG_BYTES_AT);
  host4At = at(P_HOST4_AT);
  host4Count = at(P_HOST4_COUNT);
  host6At = at(P_HOST6_AT);
  host6Count = at(P_HOST6_COUNT);
}

/** Writes the counts back into the parameter block (after run(), before the analyzer reads them). */
export function storeState(): void {
  setParam(P_N, packetIndex);
  setParam(P_BYTES, wireBytes);
  setParam(P_CAPTURED, capturedBytes);
  setParam(P_CUT, cutPackets);
  setParam(P_MIN_T, minTime);
  setParam(P_MAX_T, maxTime);
  setParam(P_SIZE, flowCount);
  setParam(P_MIN_IFACE, minInterface);
  setParam(P_MAX_IFACE, maxInterface);
  setParam(P_BIN_COUNT, binCount);
  setParam(P_LOG_N, logCount);
  setParam(P_TCP_SEGMENTS, tcpSegments);
  setParam(P_TCP_DATA_SEGMENTS, tcpDataSegments);
  setParam(P_RETRANSMISSIONS, retransmissions);
  setParam(P_RETRANSMITTED_BYTES, retransmittedBytes);
  setParam(P_RESETS, resets);
  setParam(P_ZERO_WINDOWS, zeroWindows);
}

@inline
function param(i: usize): f64 {
  return load<f64>(i << 3);
}

@inline
function setParam(i: usize, value: f64): void {
  store<f64>(i << 3, value);
}

@inline
function at(i: usize): usize {
  return <usize>load<f64>(i << 3);
}

@inline
function addAt(base: usize, index: usize, value: f64): void {
  const p = base + (index << 3);
  store<f64>(p, load<f64>(p) + value);
}

@inline
function be16(p: usize): u32 {
  return <u32>bswap<u16>(load<u16>(p));
}

@inline
function be32(p: usize): u32 {
  return bswap<u32>(load<u32>(p));
}

// FlowTable.hash() of the 10-word key
@inline
function hash(): u32 {
  return finalMix(
    ((k0 ^ (k4 * 0x85ebca6b)) * 0x9e3779b1) ^
      ((k8 ^ (k9 << 16)) * 0xc2b2ae35) ^
      ((k1 ^ k2 ^ k3 ^ ((k5 ^ k6 ^ k7) * 0x165667b1)) * 0x27d4eb2f),
  );
}

// what classifyStart() says, as far as the flow's label goes (Start of app.ts: both HTTP kinds are HTTP)
const START_NONE: u32 = 0;
const START_CLIENT_HELLO: u32 = 1;
const START_TLS: u32 = 2;
const START_HTTP: u32 = 3;

// startsWith() of app.ts for text of up to 8 bytes, given as a little-endian word
@inline
function startsWith(p: usize, end: usize, text: u64, length: usize): bool {
  if (p + length > end) return false;
  for (let i: usize = 0; i < length; i++) {
    if (<u64>load<u8>(p + i) != ((text >> (<u64>i << 3)) & 0xff)) return false;
  }
  return true;
}

// METHODS of app.ts
function httpMethod(p: usize, end: usize): bool {
  if (startsWith(p, end, 0x20544547, 4)) return true; // 'GET '
  if (startsWith(p, end, 0x2054534f50, 5)) return true; // 'POST '
  if (startsWith(p, end, 0x20545550, 4)) return true; // 'PUT '
  if (startsWith(p, end, 0x2044414548, 5)) return true; // 'HEAD '
  if (startsWith(p, end, 0x204554454c4544, 7)) return true; // 'DELETE '
  if (startsWith(p, end, 0x20534e4f4954504f, 8)) return true; // 'OPTIONS '
  if (startsWith(p, end, 0x204843544150, 6)) return true; // 'PATCH '
  if (startsWith(p, end, 0x205443454e4e4f43, 8)) return true; // 'CONNECT '
  if (startsWith(p, end, 0x204543415254, 6)) return true; // 'TRACE '
  return false;
}

// classifyStart() of app.ts
function classifyStart(p: usize, end: usize): u32 {
  if (end - p < 5) return START_NONE;
  const c = <u32>load<u8>(p);
  if (c >= 0x14 && c <= 0x17 && load<u8>(p, 1) == 3 && load<u8>(p, 2) <= 4) {
    return c == 0x16 && end - p > 5 && load<u8>(p, 5) == 1 ? START_CLIENT_HELLO : START_TLS;
  }
  if (c == 0x48 && startsWith(p, end, 0x2e312f50545448, 7)) return START_HTTP; // 'HTTP/1.'
  if (c >= 0x43 && c <= 0x54 && httpMethod(p, end)) return START_HTTP;
  return START_NONE;
}

/**
 * Counts the complete records from `from` to `end` (memory offsets of a read buffer) until one is left to the
 * TypeScript path, one needs a payload parser (P_STEP), the inference log is full, or P_PACKETS_LEFT is spent;
 * returns where it stopped: at the record left over, or after the last one counted. It reads the analyzer's state
 * from the parameter block when P_FRESH says it changed, and keeps its counts until storeState().
 */
export function run(from: usize, end: usize): usize {
  let p = from;
  beginRun();
  const le = param(P_LITTLE_ENDIAN) != 0;
  const maxCaptured = <u32>param(P_MAX_CAPTURED);
  const unitsPerSecond = <u32>param(P_UNITS_PER_SECOND);
  const nanosPerUnit = param(P_NANOS_PER_UNIT);
  const baseSeconds = param(P_BASE_SECONDS);
  const baseNanos = param(P_BASE_NANOS);
  const linkType = <u32>param(P_LINK_TYPE);
  let left = param(P_PACKETS_LEFT);
  while (end - p >= 16 && left > 0) {
    const caplen = le ? load<u32>(p, 8) : be32(p + 8);
    if (caplen > maxCaptured || p + 16 + <usize>caplen > end) break;
    const fraction = le ? load<u32>(p, 4) : be32(p + 4);
    if (fraction >= unitsPerSecond) break;
    const seconds = le ? load<u32>(p) : be32(p);
    const wire = le ? load<u32>(p, 12) : be32(p + 12);
    const t = (<f64>seconds - baseSeconds) * 1e9 + (<f64>fraction * nanosPerUnit - baseNanos);
    const counted = countPacket(p + 16, caplen, wire, t, linkType);
    if (counted == 0) break;
    countTotals(caplen, wire, t, 0);
    left -= 1;
    p += 16 + <usize>caplen;
    if (counted == 2 || (inferring && logCount >= logLimit)) break;
  }
  endRun();
  return p;
}

// what the runs have in common: the analyzer's state, loaded when it wrote it, and what it reads after each run
let runPackets: f64 = 0;
let runBytes: f64 = 0;

function beginRun(): void {
  setParam(P_STEP, 0);
  if (param(P_FRESH) != 0) {
    loadState();
    setParam(P_FRESH, 0);
  }
  runPackets = 0;
  runBytes = 0;
}

function endRun(): void {
  setParam(P_LOG_N, logCount); // the analyzer infers the host once the log is full
  setParam(P_READ, runPackets);
  setParam(P_READ_BYTES, runBytes);
}

// Analyzer.onPacket()'s totals of a packet counted
@inline
function countTotals(caplen: u32, wire: u32, t: f64, iface: f64): void {
  packetIndex += 1;
  wireBytes += <f64>wire;
  capturedBytes += <f64>caplen;
  if (caplen < wire) cutPackets += 1;
  runPackets += 1;
  runBytes += <f64>caplen;
  if (t < minTime) {
    minTime = t;
    minInterface = iface;
  }
  if (t > maxTime) {
    maxTime = t;
    maxInterface = iface;
  }
}

/**
 * run() for pcapng: counts the complete Enhanced Packet Blocks from `from` to `end`. It stops where run() does, and
 * at any other block, an EPB with options (a comment, which the reader keeps), an EPB of an interface whose times the
 * TypeScript path converts, and any block the reader must judge (a length or interface that does not add up).
 */
export function runBlocks(from: usize, end: usize): usize {
  let p = from;
  beginRun();
  const le = param(P_LITTLE_ENDIAN) != 0;
  const maxBlock = <usize>param(P_MAX_BLOCK);
  const interfaces = at(P_IFACES_AT);
  const interfaceCount = <u32>param(P_IFACE_COUNT);
  const baseSeconds = param(P_BASE_SECONDS);
  const baseNanos = param(P_BASE_NANOS);
  let left = param(P_PACKETS_LEFT);
  while (end - p >= 32 && left > 0) {
    if ((le ? load<u32>(p) : be32(p)) != 6) break;
    const length = <usize>(le ? load<u32>(p, 4) : be32(p + 4));
    if (length < 32 || (length & 3) != 0 || length > maxBlock || length > end - p) break;
    if (<usize>(le ? load<u32>(p + length - 4) : be32(p + length - 4)) != length) break;
    const id = le ? load<u32>(p, 8) : be32(p + 8);
    if (id >= interfaceCount) break;
    const iface = interfaces + (<usize>id << 5);
    const unitsPerSecond = <u64>load<f64>(iface, 8);
    if (unitsPerSecond == 0) break;
    const caplen = le ? load<u32>(p, 20) : be32(p + 20);
    if (<usize>caplen > length - 32) break;
    if (p + 28 + ((<usize>caplen + 3) & ~3) < p + length - 4) break; // options
    const high = <u64>(le ? load<u32>(p, 12) : be32(p + 12));
    const low = <u64>(le ? load<u32>(p, 16) : be32(p + 16));
    const units = (high << 32) | low;
    // TimestampConverter.toTime() for 10^6 and 10^9 units a second: exact
    const seconds = <f64>(units / unitsPerSecond) + load<f64>(iface, 16);
    const nanos = <f64>((units % unitsPerSecond) * (1_000_000_000 / unitsPerSecond));
    const wire = le ? load<u32>(p, 24) : be32(p + 24);
    const t = (seconds - baseSeconds) * 1e9 + (nanos - baseNanos);
    const linkType = <u32>load<f64>(iface);
    const counted = countPacket(p + 28, caplen, wire, t, linkType);
    if (counted == 0) break;
    countTotals(caplen, wire, t, load<f64>(iface, 24));
    left -= 1;
    p += length;
    if (counted == 2 || (inferring && logCount >= logLimit)) break;
  }
  endRun();
  return p;
}

// Counts one packet: 0 when it is left to the TypeScript path (nothing written), 1 when counted, 2 when counted and
// a payload parser is needed (P_STEP*).
function countPacket(p: usize, caplen: u32, wireLength: u32, t: f64, linkType: u32): u32 {
  const n = packetIndex;
  if (n == 0) return 0; // the first packet sets the analyzer's base time
  if (load<u8>(linkSeenAt + (<usize>linkType & 0xffff)) == 0) return 0; // a link type the analyzer has not seen
  const end = p + caplen;
  const wire = <f64>wireLength;

  // the timeline bin: index() of timeline.ts, unless the bins must widen or grow (the TypeScript path does that)
  const bin = t <= 0 ? 0 : Math.floor(t / binWidth);
  if (bin >= binLimit || bin >= binLength) return 0;

  // link: decodePacket()
  let link: u32 = 0;
  let vlan: u32 = 0;
  let type: u32 = 0;
  let off: usize = 0;
  if (linkType == 1) {
    link = 1;
    if (caplen < 14) return 0;
    type = be16(p + 12);
    off = p + 14;
    while (type == 0x8100 || type == 0x88a8 || type == 0x9100) {
      if (off + 4 > end) return 0;
      vlan = 1;
      type = be16(off + 2);
      off += 4;
    }
  } else if (linkType == 113) {
    link = 2;
    if (caplen < 16) return 0;
    type = be16(p + 14);
    off = p + 16;
  } else if (linkType == 276) {
    link = 3;
    if (caplen < 20) return 0;
    type = be16(p);
    off = p + 20;
  } else if (linkType == 101 || linkType == 228 || linkType == 229) {
    link = 5;
    if (caplen < 1) return 0;
    type = load<u8>(p) >> 4 == 6 ? 0x86dd : 0x0800;
    off = p;
  } else {
    return 0;
  }

  // network: decodeIPv4() / decodeIPv6(), without fragments or extension headers
  let v6 = false;
  let proto: u32 = 0;
  let l4: usize = 0;
  let datagramEnd: usize = 0;
  if (type == 0x0800) {
    if (off + 20 > end) return 0;
    const vihl = <u32>load<u8>(off);
    const hlen = <usize>((vihl & 15) << 2);
    let total = <usize>be16(off + 2);
    if (vihl >> 4 != 4 || hlen < 20) return 0;
    if (total == 0) total = end - off; // TSO
    if (total < hlen || off + hlen > end) return 0;
    if ((be16(off + 6) & 0x3fff) != 0) return 0; // a fragment
    proto = load<u8>(off, 9);
    l4 = off + hlen;
    datagramEnd = off + total;
  } else if (type == 0x86dd) {
    if (off + 40 > end) return 0;
    if (load<u8>(off) >> 4 != 6) return 0;
    const payload = <usize>be16(off + 4);
    proto = load<u8>(off, 6);
    v6 = true;
    l4 = off + 40;
    datagramEnd = payload == 0 ? end : off + 40 + payload;
    if (l4 > (datagramEnd < end ? datagramEnd : end)) return 0;
  } else {
    return 0;
  }
  const dend = datagramEnd < end ? datagramEnd : end;

  // transport: decodeTransport() for TCP and UDP
  let sport: u32 = 0;
  let dport: u32 = 0;
  let seq: u32 = 0;
  let flags: u32 = 0;
  let window: u32 = 0;
  let payloadFrom: usize = 0;
  let payload: u32 = 0;
  let captured: u32 = 0;
  if (proto == 6) {
    if (l4 + 20 > dend) return 0;
    const doff = <usize>((<u32>load<u8>(l4, 12) >> 4) << 2);
    if (doff < 20 || l4 + doff > dend) return 0;
    sport = be16(l4);
    dport = be16(l4 + 2);
    seq = be32(l4 + 4);
    flags = load<u8>(l4, 13);
    window = be16(l4 + 14);
    payloadFrom = l4 + doff;
    payload = datagramEnd > payloadFrom ? <u32>(datagramEnd - payloadFrom) : 0;
    captured = dend > payloadFrom ? <u32>(dend - payloadFrom) : 0;
  } else if (proto == 17) {
    if (l4 + 8 > dend) return 0;
    sport = be16(l4);
    dport = be16(l4 + 2);
    const udpLength = <usize>be16(l4 + 4);
    const udpEnd = udpLength >= 8 && l4 + udpLength <= datagramEnd ? l4 + udpLength : datagramEnd;
    const to = dend < udpEnd ? dend : udpEnd;
    payloadFrom = l4 + 8;
    captured = to > payloadFrom ? <u32>(to - payloadFrom) : 0;
  } else {
    return 0;
  }

  // the flow key (Analyzer.ipPacket): low (address, port) first; dir 1 when the source is the high side
  let dir: u32 = 0;
  if (v6) {
    const src = off + 8;
    const dst = off + 24;
    let cmp: i32 = 0;
    for (let i: usize = 0; i < 16; i += 4) {
      const a = be32(src + i);
      const b = be32(dst + i);
      if (a != b) {
        cmp = a < b ? -1 : 1;
        break;
      }
    }
    if (cmp == 0 && sport != dport) cmp = sport < dport ? -1 : 1;
    dir = cmp > 0 ? 1 : 0;
    const lo = dir == 0 ? src : dst;
    const hi = dir == 0 ? dst : src;
    k0 = be32(lo);
    k1 = be32(lo + 4);
    k2 = be32(lo + 8);
    k3 = be32(lo + 12);
    k4 = be32(hi);
    k5 = be32(hi + 4);
    k6 = be32(hi + 8);
    k7 = be32(hi + 12);
  } else {
    const src = be32(off + 12);
    const dst = be32(off + 16);
    dir = src > dst || (src == dst && sport > dport) ? 1 : 0;
    k0 = dir == 0 ? src : dst;
    k4 = dir == 0 ? dst : src;
    k1 = 0;
    k2 = 0;
    k3 = 0;
    k5 = 0;
    k6 = 0;
    k7 = 0;
  }
  k8 = dir == 0 ? (sport << 16) | dport : (dport << 16) | sport;
  k9 = proto | META_PORTS | (v6 ? META_V6 : 0);

  // FlowTable.findOrInsert(), inserting only where the table need not grow (the TypeScript path grows it)
  const slots = slotsAt;
  const records = recordsAt;
  const mask = slotMask;
  let slot = hash() & mask;
  let f: i32 = -1;
  for (;;) {
    const e = load<i32>(slots + (<usize>slot << 2));
    if (e < 0) break;
    const r = records + <usize>e * RECORD_BYTES;
    if (
      load<u32>(r, 32) == k8 &&
      load<u32>(r) == k0 &&
      load<u32>(r, 16) == k4 &&
      load<u32>(r, 36) == k9 &&
      load<u32>(r, 4) == k1 &&
      load<u32>(r, 8) == k2 &&
      load<u32>(r, 12) == k3 &&
      load<u32>(r, 20) == k5 &&
      load<u32>(r, 24) == k6 &&
      load<u32>(r, 28) == k7
    ) {
      f = e;
      break;
    }
    slot = (slot + 1) & mask;
  }
  const cold = coldAt;
  let r: usize = 0;
  let st: u32 = 0;
  if (f >= 0) {
    r = records + <usize>f * RECORD_BYTES;
    st = load<u8>(r, U_STATE);
    if (st & MISSES) return 0;
  } else {
    const size = flowCount;
    if (size >= flowLimit || size >= flowCapacity || (size + 1) * 2 > <f64>mask + 1) return 0;
    f = <i32>size;
    flowCount = size + 1;
    r = records + <usize>f * RECORD_BYTES;
    store<u32>(r, k0);
    store<u32>(r, k1, 4);
    store<u32>(r, k2, 8);
    store<u32>(r, k3, 12);
    store<u32>(r, k4, 16);
    store<u32>(r, k5, 20);
    store<u32>(r, k6, 24);
    store<u32>(r, k7, 28);
    store<u32>(r, k8, 32);
    store<u32>(r, k9, 36);
    store<i32>(slots + (<usize>slot << 2), f);
    // Flows.init()
    const c = cold + <usize>f * COLD_BYTES;
    store<f64>(c, -1, C_TAP_FIRST);
    store<f64>(c, -1, C_SYN_TIME);
    store<f64>(c, -1, C_RTT);
    store<f64>(r, t, N_START);
    store<f64>(r, t, N_END);
    store<u8>(r, <u8>hostMask(v6), U_HOST);
  }
  const c = cold + <usize>f * COLD_BYTES;
  if ((st & TAP_SEEN) == 0) {
    st |= TAP_SEEN | (dir == 1 ? TAP_DIR : 0);
    store<f64>(c, n, C_TAP_FIRST);
  }
  if ((st & L4_SEEN) == 0) st |= L4_SEEN | (dir == 1 ? L4_DIR : 0);
  store<u8>(r, <u8>st, U_STATE);
  addAt(r, (N_FRAMES >> 3) + dir, 1);
  addAt(r, (N_BYTES >> 3) + dir, wire);
  if (t < load<f64>(r, N_START)) store<f64>(r, t, N_START);
  else if (t > load<f64>(r, N_END)) store<f64>(r, t, N_END);

  // direction relative to the host (countDirection), timeline (TimelineBuilder.add)
  const hosts = <u32>load<u8>(r, U_HOST);
  const srcHost = (hosts >> dir) & 1;
  const dstHost = (hosts >> (1 - dir)) & 1;
  const cls: u32 = srcHost ? (dstHost ? 3 : 1) : dstHost ? 2 : 0;
  addAt(volumePacketsAt, cls, 1);
  addAt(volumeBytesAt, cls, wire);
  const i = <usize>bin;
  if (bin >= binCount) binCount = bin + 1;
  addAt(binPacketsAt, i, 1);
  addAt(binBytesAt, i, wire);
  if (cls == 1) {
    addAt(binOutPacketsAt, i, 1);
    addAt(binOutBytesAt, i, wire);
  } else if (cls == 2) {
    addAt(binInPacketsAt, i, 1);
    addAt(binInBytesAt, i, wire);
  }

  if (inferring) {
    const i = <usize>logCount;
    store<i32>(logFlowAt + (i << 2), f);
    store<u8>(logDirAt + i, <u8>dir);
    store<f64>(logTimeAt + (i << 3), t);
    store<f64>(logBytesAt + (i << 3), wire);
    logCount += 1;
  }

  let app: u32 = 0;
  let step: u32 = 0;
  if (proto == 6) {
    // Analyzer.tcp()
    tcpSegments += 1;
    const segLen = payload + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0);
    let bits = <u32>load<u8>(r, U_TCP);
    const seqBit: u32 = dir == 0 ? 16 : 32;
    const nextAt = r + N_NEXT_SEQ + (<usize>dir << 3);
    if (segLen > 0) {
      tcpDataSegments += 1;
      if (bits & seqBit) {
        const next = <u32>load<f64>(nextAt);
        const behind = <i32>(seq - next) < 0;
        const keepAlive = payload <= 1 && (flags & (SYN | FIN | RST)) == 0 && seq + 1 == next;
        if (behind && !keepAlive) {
          retransmissions += 1;
          retransmittedBytes += <f64>payload;
          addAt(c, C_RETRANS >> 3, 1);
        }
      }
    }
    const segEnd = seq + segLen;
    if ((bits & seqBit) == 0 || <i32>(segEnd - <u32>load<f64>(nextAt)) > 0) {
      store<f64>(nextAt, <f64>segEnd);
      bits |= seqBit;
    }
    if (flags & RST) {
      resets += 1;
      addAt(c, C_RESETS >> 3, 1);
      bits |= BIT_RST;
      if (bits & BIT_SYN && dir != <u32>load<u8>(r, U_SYN_DIR)) bits |= BIT_RST_FROM_RESPONDER;
    } else if (window == 0 && (flags & (SYN | FIN)) == 0) {
      zeroWindows += 1;
      addAt(c, C_ZERO_WINDOWS >> 3, 1);
    }
    if (flags & SYN) {
      if ((flags & ACK) == 0) {
        if ((bits & BIT_SYN_ACK) == 0) {
          store<f64>(c, t, C_SYN_TIME);
          store<u8>(r, <u8>dir, U_SYN_DIR);
          bits |= BIT_SYN;
        }
      } else if (bits & BIT_SYN && (bits & BIT_SYN_ACK) == 0 && dir != <u32>load<u8>(r, U_SYN_DIR)) {
        store<f64>(c, t - load<f64>(c, C_SYN_TIME), C_RTT);
        bits |= BIT_SYN_ACK;
      }
    }
    store<u8>(r, <u8>bits, U_TCP);
    if (captured > 0) {
      app = load<u8>(r, U_APP);
      const wasTls = app == APP_TLS;
      const from = payloadFrom;
      const to = payloadFrom + <usize>captured;
      if (app == APP_UNKNOWN) {
        const start = classifyStart(from, to);
        if (start == START_CLIENT_HELLO) {
          app = APP_TLS;
          step = STEP_CLIENT_HELLO;
        } else if (start == START_TLS) {
          app = APP_TLS;
        } else if (start == START_HTTP) {
          app = APP_HTTP;
        } else {
          const tries = <u32>load<u8>(r, U_TRIES) + 1;
          store<u8>(r, <u8>tries, U_TRIES);
          if (tries >= 4) app = APP_OTHER;
        }
        store<u8>(r, <u8>app, U_APP);
      } else if (wasTls && bits & BIT_HELLO) {
        step = STEP_HELLO_MORE;
      }
      if (app == APP_HTTP) step = STEP_HTTP;
    } else {
      app = 0; // a TLS or HTTP flow's packet without payload counts at TCP
    }
  } else if (sport == 53 || dport == 53) {
    app = APP_DNS;
    store<u8>(r, <u8>APP_DNS, U_APP);
    // parseDns()'s first test, so that a payload that cannot be a DNS message does not leave WebAssembly
    if (captured >= 12) {
      const qd = be16(payloadFrom + 4);
      if (qd != 0 && qd <= 4 && (be16(payloadFrom + 2) & 0x7800) <= 0x2800) step = STEP_DNS;
    }
  }

  // stackId(): ((link × 2 + vlan) × 5 + net) × 7 + l4) × 4 + app, net 1 IPv4 / 2 IPv6, l4 1 TCP / 2 UDP
  const stackApp = app > 0 && app < APP_OTHER ? app : 0;
  const stack = <usize>((((link * 2 + vlan) * 5 + (v6 ? 2 : 1)) * 7 + (proto == 6 ? 1 : 2)) * 4 + stackApp);
  addAt(stackPacketsAt, stack, 1);
  addAt(stackBytesAt, stack, wire);

  if (step == 0) return 1;
  setParam(P_STEP, <f64>step);
  setParam(P_STEP_FLOW, <f64>f);
  setParam(P_STEP_DIR, <f64>dir);
  setParam(P_STEP_SEQ, <f64>seq);
  setParam(P_STEP_PAYLOAD, <f64>payload);
  setParam(P_STEP_FROM, <f64>payloadFrom);
  setParam(P_STEP_TO, <f64>(payloadFrom + <usize>captured));
  return 2;
}

// Analyzer.hostMaskOf(): bit 0 when the key's low address is a host address, bit 1 for the high one
function hostMask(v6: bool): u32 {
  let mask: u32 = 0;
  if (v6) {
    const list = host6At;
    const count = host6Count;
    for (let i: usize = 0; i < count; i++) {
      const h = list + i * 16;
      const a = load<u32>(h);
      const b = load<u32>(h, 4);
      const c = load<u32>(h, 8);
      const d = load<u32>(h, 12);
      if (k0 == a && k1 == b && k2 == c && k3 == d) mask |= 1;
      if (k4 == a && k5 == b && k6 == c && k7 == d) mask |= 2;
    }
  } else {
    const list = host4At;
    const count = host4Count;
    for (let i: usize = 0; i < count; i++) {
      const a = load<u32>(list + i * 4);
      if (k0 == a) mask |= 1;
      if (k4 == a) mask |= 2;
    }
  }
  return mask;
}

// ---- Report tables: build-report.ts's aggregations of the flows (ipPairs, ipEndpointTally, l4EndpointTally) and the
// analyzer's tally for host inference (addressTally) into FlowTables in this memory, sized by the caller so that they
// never grow, and the selections of their rows (pairRows, flowRows, tallyRows). The TypeScript versions are the
// reference.

let tableSlots: usize = 0;
let tableMask: u32 = 0;
let tableKeys: usize = 0;
let tableSize: u32 = 0;
let tableInserted = false;

// the empty table that the next calls of findOrInsertKey() fill
@inline
function startTable(slots: usize, mask: u32, keys: usize): void {
  tableSlots = slots;
  tableMask = mask;
  tableKeys = keys;
  tableSize = 0;
}

@inline
function mix(h: u32, word: u32): u32 {
  return rotl<u32>((h ^ word) * 0x9e3779b1, 15);
}

@inline
function finalMix(x: u32): u32 {
  let h = x;
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

// key word i of the key being looked up (k0–k9)
@inline
function keyWord(i: u32): u32 {
  switch (i) {
    case 0:
      return k0;
    case 1:
      return k1;
    case 2:
      return k2;
    case 3:
      return k3;
    case 4:
      return k4;
    case 5:
      return k5;
    case 6:
      return k6;
    case 7:
      return k7;
    case 8:
      return k8;
    default:
      return k9;
  }
}

// FlowTable.findOrInsert() of a report table: key k0…k(width − 1), records of strideBytes; sets tableInserted. (The
// packet path's flow-key lookup is written out word by word instead: it runs for every packet.)
function findOrInsertKey(width: u32, strideBytes: usize): u32 {
  let h: u32 = 0x811c9dc5 ^ width;
  for (let i: u32 = 0; i < width; i++) h = mix(h, keyWord(i));
  let slot = finalMix(h) & tableMask;
  for (;;) {
    const e = load<i32>(tableSlots + (<usize>slot << 2));
    if (e < 0) break;
    const r = tableKeys + <usize>e * strideBytes;
    let i: u32 = 0;
    while (i < width && load<u32>(r + (<usize>i << 2)) == keyWord(i)) i++;
    if (i == width) {
      tableInserted = false;
      return <u32>e;
    }
    slot = (slot + 1) & tableMask;
  }
  const e = tableSize++;
  const r = tableKeys + <usize>e * strideBytes;
  for (let i: u32 = 0; i < width; i++) store<u32>(r + (<usize>i << 2), keyWord(i));
  store<i32>(tableSlots + (<usize>slot << 2), <i32>e);
  tableInserted = true;
  return e;
}

// Tally.add(): a FlowTable of width 6, stride 14 (key: address words, port, tag; then tx/rx frames and bytes)
function tallyAdd(address: usize, port: u32, tag: u32, txFrames: f64, txBytes: f64, rxFrames: f64, rxBytes: f64): void {
  k0 = load<u32>(address);
  k1 = load<u32>(address, 4);
  k2 = load<u32>(address, 8);
  k3 = load<u32>(address, 12);
  k4 = port;
  k5 = tag;
  const r = tableKeys + <usize>findOrInsertKey(6, 56) * 56;
  store<f64>(r, load<f64>(r, 24) + txFrames, 24);
  store<f64>(r, load<f64>(r, 32) + txBytes, 32);
  store<f64>(r, load<f64>(r, 40) + rxFrames, 40);
  store<f64>(r, load<f64>(r, 48) + rxBytes, 48);
}

@inline
function sameAddresses(at: usize): bool {
  return (
    load<u32>(at) == load<u32>(at, 16) &&
    load<u32>(at, 4) == load<u32>(at, 20) &&
    load<u32>(at, 8) == load<u32>(at, 24) &&
    load<u32>(at, 12) == load<u32>(at, 28)
  );
}

@inline
function pairAt(base: usize, i: u32): f64 {
  return load<f64>(base + (<usize>i << 3));
}

@inline
function addPair(base: usize, i: u32, value: f64): void {
  const p = base + (<usize>i << 3);
  store<f64>(p, load<f64>(p) + value);
}

/** ipPairs() of build-report.ts: the flows' IP-level counts by address pair, into an empty table; returns its size. */
export function ipPairs(
  records: usize,
  flows: u32,
  cold: usize,
  tapF: usize,
  tapB: usize,
  tapStart: usize,
  tapEnd: usize,
  slots: usize,
  mask: u32,
  keys: usize,
  frames: usize,
  bytes: usize,
  first: usize,
  firstDir: usize,
  start: usize,
  end: usize,
): u32 {
  startTable(slots, mask, keys);
  for (let f: u32 = 0; f < flows; f++) {
    const t0 = pairAt(tapF, 2 * f);
    const t1 = pairAt(tapF, 2 * f + 1);
    if (t0 + t1 == 0) continue;
    const r = records + <usize>f * RECORD_BYTES;
    k0 = load<u32>(r);
    k1 = load<u32>(r, 4);
    k2 = load<u32>(r, 8);
    k3 = load<u32>(r, 12);
    k4 = load<u32>(r, 16);
    k5 = load<u32>(r, 20);
    k6 = load<u32>(r, 24);
    k7 = load<u32>(r, 28);
    k8 = load<u32>(r, 36) & META_V6;
    const c = findOrInsertKey(9, 36);
    const inserted = tableInserted;
    const same = sameAddresses(r);
    const b0 = pairAt(tapB, 2 * f);
    const b1 = pairAt(tapB, 2 * f + 1);
    if (same) {
      addPair(frames, 2 * c, t0);
      addPair(bytes, 2 * c, b0);
      addPair(frames, 2 * c, t1);
      addPair(bytes, 2 * c, b1);
    } else {
      addPair(frames, 2 * c, t0);
      addPair(bytes, 2 * c, b0);
      addPair(frames, 2 * c + 1, t1);
      addPair(bytes, 2 * c + 1, b1);
    }
    const firstPacket = load<f64>(cold + <usize>f * COLD_BYTES, C_TAP_FIRST);
    if (inserted || firstPacket < pairAt(first, c)) {
      store<f64>(first + (<usize>c << 3), firstPacket);
      store<u8>(firstDir + <usize>c, same ? 0 : (<u32>load<u8>(r, U_STATE) & TAP_DIR) != 0 ? 1 : 0);
    }
    const s = pairAt(tapStart, f);
    const e = pairAt(tapEnd, f);
    if (inserted || s < pairAt(start, c)) store<f64>(start + (<usize>c << 3), s);
    if (inserted || e > pairAt(end, c)) store<f64>(end + (<usize>c << 3), e);
  }
  return tableSize;
}

/** ipEndpointTally() of build-report.ts: both sides of every address pair, into an empty Tally; returns its size. */
export function ipEndpointTally(
  pairKeys: usize,
  pairs: u32,
  frames: usize,
  bytes: usize,
  slots: usize,
  mask: u32,
  keys: usize,
): u32 {
  startTable(slots, mask, keys);
  for (let c: u32 = 0; c < pairs; c++) {
    const at = pairKeys + <usize>c * 36;
    const meta = load<u32>(at, 32);
    const f0 = pairAt(frames, 2 * c);
    const f1 = pairAt(frames, 2 * c + 1);
    const b0 = pairAt(bytes, 2 * c);
    const b1 = pairAt(bytes, 2 * c + 1);
    if (sameAddresses(at)) {
      tallyAdd(at, 0, meta, f0 + f1, b0 + b1, f0 + f1, b0 + b1);
    } else {
      tallyAdd(at, 0, meta, f0, b0, f1, b1);
      tallyAdd(at + 16, 0, meta, f1, b1, f0, b0);
    }
  }
  return tableSize;
}

/**
 * Analyzer.inferHost()'s tally: each address of each flow (once when both sides are the same) that may be a host's
 * own, with the flow's packets as tx frames, into an empty Tally (port 0, tag 1 for IPv6); the packets of all IPv4
 * and all IPv6 flows into totals[0] and totals[1]. Returns the Tally's size.
 */
export function addressTally(
  records: usize,
  flows: u32,
  slots: usize,
  mask: u32,
  keys: usize,
  totals: usize,
): u32 {
  startTable(slots, mask, keys);
  let packets4: f64 = 0;
  let packets6: f64 = 0;
  for (let f: u32 = 0; f < flows; f++) {
    const r = records + <usize>f * RECORD_BYTES;
    const v6 = (load<u32>(r, 36) & META_V6) != 0;
    const packets = load<f64>(r, N_FRAMES) + load<f64>(r, N_FRAMES + 8);
    if (v6) packets6 += packets;
    else packets4 += packets;
    const tag: u32 = v6 ? 1 : 0;
    if (candidate(r, v6)) tallyAdd(r, 0, tag, packets, 0, 0, 0);
    if (!sameAddresses(r) && candidate(r + 16, v6)) tallyAdd(r + 16, 0, tag, packets, 0, 0, 0);
  }
  store<f64>(totals, packets4);
  store<f64>(totals, packets6, 8);
  return tableSize;
}

// candidate() of analyzer.ts: not loopback, multicast, broadcast, unspecified or link-local
function candidate(address: usize, v6: bool): bool {
  const w = load<u32>(address);
  if (!v6) {
    const first = w >> 24;
    return !(first == 127 || first == 0 || first >= 224);
  }
  if (w >> 24 == 0xff || w >> 22 == 0x3fa) return false;
  const zeroHead = w == 0 && load<u32>(address, 4) == 0 && load<u32>(address, 8) == 0;
  return !(zeroHead && load<u32>(address, 12) <= 1);
}

/** l4EndpointTally() of build-report.ts: both sides of every TCP/UDP flow, into an empty Tally; returns its size. */
export function l4EndpointTally(
  records: usize,
  flows: u32,
  l4F: usize,
  l4B: usize,
  slots: usize,
  mask: u32,
  keys: usize,
): u32 {
  startTable(slots, mask, keys);
  for (let f: u32 = 0; f < flows; f++) {
    const r = records + <usize>f * RECORD_BYTES;
    const meta = load<u32>(r, 36);
    const proto = meta & 0xff;
    if ((proto != 6 && proto != 17) || (meta & META_PORTS) == 0) continue;
    const f0 = pairAt(l4F, 2 * f);
    const f1 = pairAt(l4F, 2 * f + 1);
    if (f0 + f1 == 0) continue;
    const b0 = pairAt(l4B, 2 * f);
    const b1 = pairAt(l4B, 2 * f + 1);
    const ports = load<u32>(r, 32);
    const loPort = ports >> 16;
    const hiPort = ports & 0xffff;
    const tag = meta & (0xff | META_V6);
    if (loPort == hiPort && sameAddresses(r)) {
      tallyAdd(r, loPort, tag, f0 + f1, b0 + b1, f0 + f1, b0 + b1);
    } else {
      tallyAdd(r, loPort, tag, f0, b0, f1, b1);
      tallyAdd(r + 16, hiPort, tag, f1, b1, f0, b0);
    }
  }
  return tableSize;
}

// a row of a selection: its index, bytes and frames at position n of the selection's arrays
@inline
function putRow(rows: usize, bytes: usize, frames: usize, n: u32, index: u32, rowBytes: f64, rowFrames: f64): void {
  store<i32>(rows + (<usize>n << 2), <i32>index);
  store<f64>(bytes + (<usize>n << 3), rowBytes);
  store<f64>(frames + (<usize>n << 3), rowFrames);
}

/** ipConv() of build-report.ts: the address pairs of one family (IPv6: key word 8 not 0), with their bytes and frames. */
export function pairRows(
  pairKeys: usize,
  pairs: u32,
  v6: u32,
  ipFrames: usize,
  ipBytes: usize,
  rows: usize,
  bytes: usize,
  frames: usize,
): u32 {
  let n: u32 = 0;
  for (let c: u32 = 0; c < pairs; c++) {
    if ((load<u32>(pairKeys + <usize>c * 36, 32) != 0) != (v6 != 0)) continue;
    const pairBytes = pairAt(ipBytes, 2 * c) + pairAt(ipBytes, 2 * c + 1);
    putRow(rows, bytes, frames, n++, c, pairBytes, pairAt(ipFrames, 2 * c) + pairAt(ipFrames, 2 * c + 1));
  }
  return n;
}

/** l4Conv() of build-report.ts: the flows of one protocol, with ports and frames at layer 4, with their bytes and frames. */
export function flowRows(
  records: usize,
  flows: u32,
  proto: u32,
  l4F: usize,
  l4B: usize,
  rows: usize,
  bytes: usize,
  frames: usize,
): u32 {
  let n: u32 = 0;
  for (let f: u32 = 0; f < flows; f++) {
    const meta = load<u32>(records + <usize>f * RECORD_BYTES, 36);
    if ((meta & 0xff) != proto || (meta & META_PORTS) == 0) continue;
    const count = pairAt(l4F, 2 * f) + pairAt(l4F, 2 * f + 1);
    if (count > 0) putRow(rows, bytes, frames, n++, f, pairAt(l4B, 2 * f) + pairAt(l4B, 2 * f + 1), count);
  }
  return n;
}

/** Tally.rows() of build-report.ts: the entries tagged `tag`, then `tag2` (-1: none), with their bytes and frames. */
export function tallyRows(
  keys: usize,
  size: u32,
  tag: i32,
  tag2: i32,
  picked: usize,
  bytes: usize,
  frames: usize,
): u32 {
  let n: u32 = 0;
  for (let pass = 0; pass < 2; pass++) {
    const want = pass == 0 ? tag : tag2;
    if (want < 0) continue;
    for (let e: u32 = 0; e < size; e++) {
      const r = keys + <usize>e * 56;
      if (load<u32>(r, 20) != <u32>want) continue;
      putRow(picked, bytes, frames, n++, e, load<f64>(r, 32) + load<f64>(r, 48), load<f64>(r, 24) + load<f64>(r, 40));
    }
  }
  return n;
}

/** flowColumns() of build-report.ts: each flow's counts as tshark's IP table (tap) and TCP/UDP tables (l4) see them. */
export function flowColumns(
  records: usize,
  flows: u32,
  miss: usize,
  flowTapStart: usize,
  flowTapEnd: usize,
  tapF: usize,
  tapB: usize,
  l4F: usize,
  l4B: usize,
  tapStart: usize,
  tapEnd: usize,
): void {
  for (let f: u32 = 0; f < flows; f++) {
    const r = records + <usize>f * RECORD_BYTES;
    const m = miss + <usize>f * 64; // Flows.miss: M_STRIDE 8 doubles
    const fr0 = load<f64>(r, N_FRAMES);
    const fr1 = load<f64>(r, N_FRAMES + 8);
    const by0 = load<f64>(r, N_BYTES);
    const by1 = load<f64>(r, N_BYTES + 8);
    const two = <usize>f << 4;
    store<f64>(tapF + two, fr0 - load<f64>(m));
    store<f64>(tapF + two, fr1 - load<f64>(m, 8), 8);
    store<f64>(tapB + two, by0 - load<f64>(m, 16));
    store<f64>(tapB + two, by1 - load<f64>(m, 24), 8);
    store<f64>(l4F + two, fr0 - load<f64>(m, 32));
    store<f64>(l4F + two, fr1 - load<f64>(m, 40), 8);
    store<f64>(l4B + two, by0 - load<f64>(m, 48));
    store<f64>(l4B + two, by1 - load<f64>(m, 56), 8);
    const ipMiss = (<u32>load<u8>(r, U_STATE) & 16) != 0;
    const one = <usize>f << 3;
    store<f64>(tapStart + one, ipMiss ? load<f64>(flowTapStart + one) : load<f64>(r, N_START));
    store<f64>(tapEnd + one, ipMiss ? load<f64>(flowTapEnd + one) : load<f64>(r, N_END));
  }
}

// heapsort of the doubles at values[lo..hi]
function sortRange(values: usize, lo: i32, hi: i32): void {
  const base = values + (<usize>lo << 3);
  const n = hi - lo + 1;
  for (let start = (n >> 1) - 1; start >= 0; start--) siftDown(base, start, n);
  for (let end = n - 1; end > 0; end--) {
    const top = load<f64>(base);
    store<f64>(base, load<f64>(base + (<usize>end << 3)));
    store<f64>(base + (<usize>end << 3), top);
    siftDown(base, 0, end);
  }
}

function siftDown(base: usize, start: i32, n: i32): void {
  let root = start;
  for (;;) {
    let child = 2 * root + 1;
    if (child >= n) return;
    if (child + 1 < n && load<f64>(base + (<usize>(child + 1) << 3)) > load<f64>(base + (<usize>child << 3))) child++;
    const r = base + (<usize>root << 3);
    const c = base + (<usize>child << 3);
    if (load<f64>(r) >= load<f64>(c)) return;
    const v = load<f64>(r);
    store<f64>(r, load<f64>(c));
    store<f64>(c, v);
    root = child;
  }
}

// the k-th smallest (from 0) of the `count` doubles at `values`, which it reorders: kthSmallest() of build-report.ts,
// a quickselect that sorts what is left when the partitions shrink too slowly (any correct selection gives the value)
function kthSmallest(values: usize, count: u32, k: u32): f64 {
  let lo: i32 = 0;
  let hi: i32 = <i32>count - 1;
  const kk = <i32>k;
  for (let rounds = 0; lo < hi; rounds++) {
    if (rounds > 64) {
      sortRange(values, lo, hi);
      break;
    }
    const pivot = load<f64>(values + (<usize>((lo + hi) >> 1) << 3));
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (load<f64>(values + (<usize>i << 3)) < pivot) i++;
      while (load<f64>(values + (<usize>j << 3)) > pivot) j--;
      if (i <= j) {
        const a = values + (<usize>i << 3);
        const b = values + (<usize>j << 3);
        const v = load<f64>(a);
        store<f64>(a, load<f64>(b));
        store<f64>(b, v);
        i++;
        j--;
      }
    }
    if (kk <= j) hi = j;
    else if (kk >= i) lo = i;
    else return load<f64>(values + (<usize>kk << 3));
  }
  return load<f64>(values + (<usize>kk << 3));
}

// topIndices' order: larger weight first, then larger second, then lower index
@inline
function before(weights: usize, seconds: usize, x: i32, y: i32): bool {
  const wx = load<f64>(weights + (<usize>x << 3));
  const wy = load<f64>(weights + (<usize>y << 3));
  if (wx != wy) return wx > wy;
  const sx = load<f64>(seconds + (<usize>x << 3));
  const sy = load<f64>(seconds + (<usize>y << 3));
  if (sx != sy) return sx > sy;
  return x < y;
}

/**
 * topIndices() of build-report.ts: the indices of the `limit` largest of `count` weights (ties: larger `seconds`, then
 * lower index), in that order, into `out` (count int32s); returns how many. `scratch`: count doubles; `temp`: count
 * int32s.
 */
export function topIndices(
  weights: usize,
  seconds: usize,
  count: u32,
  limit: u32,
  scratch: usize,
  out: usize,
  temp: usize,
): u32 {
  let threshold = -Infinity;
  if (count > limit) {
    memory.copy(scratch, weights, <usize>count << 3);
    threshold = kthSmallest(scratch, count, count - limit);
  }
  let n: u32 = 0;
  for (let i: u32 = 0; i < count; i++) {
    if (load<f64>(weights + (<usize>i << 3)) >= threshold) {
      store<i32>(out + (<usize>n << 2), <i32>i);
      n++;
    }
  }
  // bottom-up merge sort of out[0, n) (a total order: the result does not depend on the algorithm)
  let from = out;
  let to = temp;
  for (let width: u32 = 1; width < n; width <<= 1) {
    for (let left: u32 = 0; left < n; left += 2 * width) {
      const mid = min(left + width, n);
      const right = min(left + 2 * width, n);
      let i = left;
      let j = mid;
      for (let k = left; k < right; k++) {
        let takeLeft = i < mid;
        if (takeLeft && j < right) {
          takeLeft = !before(weights, seconds, load<i32>(from + (<usize>j << 2)), load<i32>(from + (<usize>i << 2)));
        }
        if (takeLeft) {
          store<i32>(to + (<usize>k << 2), load<i32>(from + (<usize>i << 2)));
          i++;
        } else {
          store<i32>(to + (<usize>k << 2), load<i32>(from + (<usize>j << 2)));
          j++;
        }
      }
    }
    const swap = from;
    from = to;
    to = swap;
  }
  if (from != out) memory.copy(out, from, <usize>n << 2);
  return n < limit ? n : limit;
}

import { formatIPv4, formatIPv6 } from './decode.js';
import { PacketRecord, type ReadBuffer, type ReadState } from './read-buffer.js';
import { TimestampConverter } from './timestamp.js';
import { CaptureFormatError, type InterfaceInfo, type RawPacket, type RecordRunCounter } from './types.js';

/**
 * pcapng (https://www.ietf.org/archive/id/draft-ietf-opsawg-pcapng-03.html): a sequence of sections, each a Section
 * Header Block (which sets the byte order) followed by its interfaces (IDB) and their packets (EPB, SPB, obsolete
 * PB), name records (NRB) and statistics (ISB). Block type and total length are at the front, the length again at the
 * end; both copies must agree, be a multiple of 4 and at least 12, or the file is taken as corrupt from there on.
 * Unknown block types are skipped.
 */

export const BlockType = {
  SHB: 0x0a0d0d0a,
  IDB: 0x00000001,
  /** obsolete Packet Block */
  OPB: 0x00000002,
  SPB: 0x00000003,
  NRB: 0x00000004,
  ISB: 0x00000005,
  EPB: 0x00000006,
} as const;

export const BYTE_ORDER_MAGIC = 0x1a2b3c4d;
const BYTE_ORDER_MAGIC_SWAPPED = 0x4d3c2b1a;
/** Smallest total length of a block of this type. */
function minLength(type: number): number {
  switch (type) {
    case BlockType.EPB:
    case BlockType.OPB:
      return 32;
    case BlockType.SHB:
      return 28;
    case BlockType.ISB:
      return 24;
    case BlockType.IDB:
      return 20;
    case BlockType.SPB:
      return 16;
    default:
      return 12;
  }
}

const OPT_ENDOFOPT = 0;
const OPT_COMMENT = 1;
const SHB_HARDWARE = 2;
const SHB_OS = 3;
const SHB_USERAPPL = 4;
const IF_NAME = 2;
const IF_DESCRIPTION = 3;
const IF_TSRESOL = 9;
const IF_FCSLEN = 13;
const IF_TSOFFSET = 14;
const ISB_IFRECV = 4;
const ISB_IFDROP = 5;
const NRB_RECORD_END = 0;
const NRB_RECORD_IPV4 = 1;
const NRB_RECORD_IPV6 = 2;

interface SectionInterface {
  linkType: number;
  snaplen: number;
  /** index in info.interfaces */
  index: number;
  clock: TimestampConverter;
}

const MICROSECONDS = new TimestampConverter(1e6);

/** Reads the blocks of a pcapng file whose first four bytes are the SHB type; `rb.start` is at the file's start. */
export async function readPcapngBlocks(
  rb: ReadBuffer,
  state: ReadState,
  onPacket: (packet: RawPacket) => void,
): Promise<void> {
  const info = state.info;
  const maxBlock = state.maxBlockBytes;
  const maxPackets = state.maxPackets;
  const packet = new PacketRecord(rb);
  let le = true;
  let section = -1;
  let ifaces: SectionInterface[] = [];
  let pos = rb.start;
  let end = rb.end;
  let view = rb.view;
  let need = 12;
  let packets = 0;
  let capturedBytes = 0;
  let runs: RecordRunCounter | undefined;
  /** Tells the record-run counter of the section's interfaces (SHB, IDB); it counts the section's plain EPBs. */
  const startSection = () => {
    const list = ifaces.map(({ linkType, clock, index }) => ({
      linkType,
      unitsPerSecond: clock.unitsPerSecond,
      offsetSeconds: clock.offsetSeconds,
      index,
    }));
    runs = state.recordRuns?.startSection(le, list, maxBlock) ? state.recordRuns : undefined;
  };

  /** Corruption: before the first section header is complete the file is unusable; afterwards what came stands. */
  const corrupt = (message: string) => {
    if (section < 0) throw new CaptureFormatError(`not a usable pcapng file: ${message}`);
    state.corrupt(`${message}: the file is corrupt from there on; stopped reading`);
  };

  try {
    for (;;) {
      while (end - pos >= 12) {
        if (runs !== undefined) {
          pos = runs.countBlocks(rb.buf, pos, end, maxPackets - packets);
          packets += runs.packets;
          capturedBytes += runs.capturedBytes;
          if (end - pos < 12) break;
        }
        const type = view.getUint32(pos, le);
        if (type === BlockType.SHB) {
          const bom = view.getUint32(pos + 8, true);
          if (bom === BYTE_ORDER_MAGIC) le = true;
          else if (bom === BYTE_ORDER_MAGIC_SWAPPED) le = false;
          else {
            corrupt(`section header at offset ${rb.offsetOf(pos)} has no byte-order magic`);
            return;
          }
        }
        const length = view.getUint32(pos + 4, le);
        const min = type === BlockType.EPB ? 32 : minLength(type);
        if (length < min || (length & 3) !== 0 || length > maxBlock) {
          corrupt(
            `block at offset ${rb.offsetOf(pos)} (type 0x${type.toString(16)}) has length ${length}` +
              (length > maxBlock
                ? `, more than the limit of ${maxBlock} bytes`
                : length % 4 !== 0
                  ? ', not a multiple of 4'
                  : `, less than the minimum ${min}`),
          );
          return;
        }
        if (length > end - pos) {
          need = length;
          break;
        }
        if (view.getUint32(pos + length - 4, le) !== length) {
          corrupt(
            `block at offset ${rb.offsetOf(pos)} (type 0x${type.toString(16)}) ends with length ` +
              `${view.getUint32(pos + length - 4, le)}, not the ${length} it starts with`,
          );
          return;
        }

        if ((type === BlockType.EPB || type === BlockType.OPB || type === BlockType.SPB) && packets >= maxPackets)
          return;
        if (type === BlockType.EPB || type === BlockType.OPB) {
          const obsolete = type === BlockType.OPB;
          const interfaceId = obsolete ? view.getUint16(pos + 8, le) : view.getUint32(pos + 8, le);
          const iface = ifaces[interfaceId];
          if (iface === undefined) {
            corrupt(
              `packet ${packets + 1} at offset ${rb.offsetOf(pos)} is for interface ${interfaceId}, but the section ` +
                `has ${ifaces.length} interface(s)`,
            );
            return;
          }
          const caplen = view.getUint32(pos + 20, le);
          if (caplen > length - 32) {
            corrupt(
              `packet ${packets + 1} at offset ${rb.offsetOf(pos)} claims ${caplen} captured bytes in a block of ${length}`,
            );
            return;
          }
          packet.seconds = iface.clock.toTime(view.getUint32(pos + 12, le), view.getUint32(pos + 16, le));
          packet.nanos = iface.clock.nanos;
          packet.interfaceId = interfaceId;
          packet.interfaceIndex = iface.index;
          packet.linkType = iface.linkType;
          packet.capturedLength = caplen;
          packet.originalLength = view.getUint32(pos + 24, le);
          packet.offset = pos + 28;
          packet.cached = undefined;
          const optionsAt = pos + 28 + ((caplen + 3) & ~3);
          if (optionsAt < pos + length - 4) {
            const comment = readComment(rb.buf, view, le, optionsAt, pos + length - 4);
            packet.comment = comment;
            if (comment !== undefined) state.addComment(comment);
          } else {
            packet.comment = undefined;
          }
          packets++;
          capturedBytes += caplen;
          onPacket(packet);
        } else if (type === BlockType.SPB) {
          const iface = ifaces[0];
          if (iface === undefined) {
            corrupt(`simple packet block at offset ${rb.offsetOf(pos)} comes before any interface`);
            return;
          }
          const originalLength = view.getUint32(pos + 8, le);
          const caplen = iface.snaplen > 0 ? Math.min(originalLength, iface.snaplen) : originalLength;
          if (caplen > length - 16) {
            corrupt(
              `simple packet ${packets + 1} at offset ${rb.offsetOf(pos)} needs ${caplen} bytes in a block of ${length}`,
            );
            return;
          }
          packet.seconds = 0;
          packet.nanos = 0;
          packet.interfaceId = 0;
          packet.interfaceIndex = iface.index;
          packet.linkType = iface.linkType;
          packet.capturedLength = caplen;
          packet.originalLength = originalLength;
          packet.offset = pos + 12;
          packet.cached = undefined;
          packet.comment = undefined;
          packets++;
          capturedBytes += caplen;
          onPacket(packet);
        } else if (type === BlockType.SHB) {
          const versionMajor = view.getUint16(pos + 12, le);
          const versionMinor = view.getUint16(pos + 14, le);
          if (versionMajor !== 1) {
            corrupt(
              `section header at offset ${rb.offsetOf(pos)} has version ${versionMajor}.${versionMinor}, not 1.x`,
            );
            return;
          }
          section++;
          ifaces = [];
          info.sections = section + 1;
          if (section === 0) {
            info.littleEndian = le;
            info.versionMajor = versionMajor;
            info.versionMinor = versionMinor;
          }
          forEachOption(view, le, pos + 24, pos + length - 4, (code, at, len) => {
            if (code === OPT_COMMENT) state.addComment(text(rb.buf, at, len));
            else if (code === SHB_HARDWARE) info.hardware ??= text(rb.buf, at, len);
            else if (code === SHB_OS) info.os ??= text(rb.buf, at, len);
            else if (code === SHB_USERAPPL) info.application ??= text(rb.buf, at, len);
          });
          startSection();
        } else if (section < 0) {
          corrupt('the first block is not a section header'); // unreachable: the magic is the SHB type
          return;
        } else if (type === BlockType.IDB) {
          const iface = readInterface(rb, view, le, pos, length, section, ifaces.length, state);
          const index = state.addInterface(iface.info);
          if (index < 0) return;
          ifaces.push({ linkType: iface.info.linkType, snaplen: iface.info.snaplen, index, clock: iface.clock });
          startSection();
        } else if (type === BlockType.NRB) {
          readNameRecords(rb, view, le, pos + 8, pos + length - 4, state);
        } else if (type === BlockType.ISB) {
          const interfaceId = view.getUint32(pos + 8, le);
          const iface = ifaces[interfaceId];
          if (iface === undefined) {
            state.warn(
              `statistics at offset ${rb.offsetOf(pos)} are for interface ${interfaceId}, which is not declared`,
            );
          } else {
            let received: number | undefined;
            let dropped: number | undefined;
            forEachOption(view, le, pos + 20, pos + length - 4, (code, at, len) => {
              if (len !== 8) return;
              if (code === ISB_IFRECV) received = readUint64(view, at, le);
              else if (code === ISB_IFDROP) dropped = readUint64(view, at, le);
            });
            state.setStats(iface.index, interfaceId, received, dropped);
          }
        }
        // any other block type (DSB, custom, journal, local use…) is skipped
        if (state.stop) return;
        pos += length;
      }
      rb.start = pos;
      if (!(await rb.ensure(need))) {
        const left = rb.end - rb.start;
        if (left > 0) {
          if (section < 0) throw new CaptureFormatError('the file ends inside its first section header block');
          state.truncated = true;
          state.warn(
            `the file ends in the middle of a block: ${left} of its ${left >= 12 ? `${need} bytes` : 'header'} ` +
              `at offset ${rb.offsetOf(rb.start)} are there`,
          );
        }
        if (section < 0) throw new CaptureFormatError('the file holds no complete section header block');
        return;
      }
      pos = rb.start;
      end = rb.end;
      if (view !== rb.view) {
        view = rb.view;
        packet.bytes = rb.buf;
        packet.view = view;
      }
      need = 12;
    }
  } finally {
    state.packets = packets;
    state.capturedBytes = capturedBytes;
  }
}

function readInterface(
  rb: ReadBuffer,
  view: DataView,
  le: boolean,
  pos: number,
  length: number,
  section: number,
  interfaceId: number,
  state: ReadState,
): { info: InterfaceInfo; clock: TimestampConverter } {
  const info: InterfaceInfo = {
    linkType: view.getUint16(pos + 8, le),
    snaplen: view.getUint32(pos + 12, le),
    tsUnitNanos: 1000,
    section,
    interfaceId,
    tsUnitsPerSecond: 1e6,
  };
  let tsresol = 6;
  let offset = 0;
  forEachOption(view, le, pos + 16, pos + length - 4, (code, at, len) => {
    if (code === IF_NAME) info.name = text(rb.buf, at, len);
    else if (code === IF_DESCRIPTION) info.description = text(rb.buf, at, len);
    else if (code === IF_TSRESOL && len >= 1) tsresol = view.getUint8(at);
    else if (code === IF_FCSLEN && len >= 1) info.fcsLength = view.getUint8(at);
    else if (code === IF_TSOFFSET && len === 8) {
      const high = view.getInt32(le ? at + 4 : at, le);
      const low = view.getUint32(le ? at : at + 4, le);
      offset = high * 4294967296 + low;
    }
  });
  let clock = TimestampConverter.fromTsresol(tsresol, offset);
  if (clock === undefined) {
    state.warn(
      `interface ${interfaceId} of section ${section} has an impossible timestamp resolution (if_tsresol 0x${tsresol.toString(16)}); microseconds assumed`,
    );
    clock = offset === 0 ? MICROSECONDS : new TimestampConverter(1e6, offset);
  }
  info.tsUnitsPerSecond = clock.unitsPerSecond;
  info.tsUnitNanos = 1e9 / clock.unitsPerSecond;
  if (offset !== 0) info.tsOffsetSeconds = offset;
  return { info, clock };
}

function readNameRecords(rb: ReadBuffer, view: DataView, le: boolean, at: number, end: number, state: ReadState): void {
  while (at + 4 <= end) {
    const type = view.getUint16(at, le);
    const len = view.getUint16(at + 2, le);
    if (type === NRB_RECORD_END) return;
    const value = at + 4;
    if (value + len > end) {
      state.warn(`a name record at offset ${rb.offsetOf(at)} runs past its block; the rest of the block is ignored`);
      return;
    }
    const addressLength = type === NRB_RECORD_IPV4 ? 4 : type === NRB_RECORD_IPV6 ? 16 : 0;
    if (addressLength > 0 && len > addressLength) {
      const names = rb.buf
        .toString('utf8', value + addressLength, value + len)
        .split('\0')
        .filter((name) => name.length > 0);
      // Addresses are in network byte order whatever the section's.
      const word = (at: number) => rb.buf.readUInt32BE(at);
      const address =
        addressLength === 4 ? formatIPv4(word(value)) : formatIPv6([0, 4, 8, 12].map((i) => word(value + i)));
      if (names.length > 0) state.addName(address, names);
    }
    at = value + ((len + 3) & ~3);
  }
}

/** Calls fn for each option in [at, end) up to opt_endofopt; stops quietly at one that overruns the block. */
function forEachOption(
  view: DataView,
  le: boolean,
  at: number,
  end: number,
  fn: (code: number, valueAt: number, length: number) => void,
): void {
  while (at + 4 <= end) {
    const code = view.getUint16(at, le);
    const len = view.getUint16(at + 2, le);
    if (code === OPT_ENDOFOPT || at + 4 + len > end) return;
    fn(code, at + 4, len);
    at += 4 + ((len + 3) & ~3);
  }
}

/** The opt_comment of a packet block's options (the first, if several), without a closure on the hot path. */
function readComment(buf: Buffer, view: DataView, le: boolean, at: number, end: number): string | undefined {
  while (at + 4 <= end) {
    const code = view.getUint16(at, le);
    const len = view.getUint16(at + 2, le);
    if (code === OPT_ENDOFOPT || at + 4 + len > end) return undefined;
    if (code === OPT_COMMENT) return text(buf, at + 4, len);
    at += 4 + ((len + 3) & ~3);
  }
  return undefined;
}

/** UTF-8 option text; writers that add a terminating NUL get it removed. */
function text(buf: Buffer, at: number, len: number): string {
  let end = at + len;
  while (end > at && buf[end - 1] === 0) end--;
  return buf.toString('utf8', at, end);
}

function readUint64(view: DataView, at: number, le: boolean): number {
  const high = view.getUint32(le ? at + 4 : at, le);
  const low = view.getUint32(le ? at : at + 4, le);
  return high * 4294967296 + low;
}

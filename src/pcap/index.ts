/**
 * Capture files: a streaming reader of classic pcap and pcapng (readCaptureFile, readCaptureStream), writers of both
 * (createPcapWriter, createPcapngWriter), the header-only classic pcap scanner the agent uses (scanPcapFile), and the
 * link/network/transport decoder. No I/O policy and no dependencies.
 */
export {
  PCAP_FILE_HEADER_LENGTH,
  PCAP_RECORD_HEADER_LENGTH,
  type PcapHeader,
  type PcapRecord,
  type PcapScan,
  pcapRecords,
  readPcapChunks,
  readPcapHeader,
  recordTimeMs,
  type ScanPcapOptions,
  scanPcapFile,
} from './classic.js';
export * from './decode.js';
export {
  type PacketCallback,
  PCAP_MAGIC_MICROSECONDS,
  PCAP_MAGIC_NANOSECONDS,
  PCAPNG_SHB_TYPE,
  readCaptureFile,
  readCaptureStream,
} from './reader.js';
export { TimestampConverter } from './timestamp.js';
export {
  type CaptureFileInfo,
  CaptureFormatError,
  type InterfaceInfo,
  LinkType,
  type RawPacket,
  type ReadOptions,
  type ReadResult,
} from './types.js';
export {
  type CaptureWriter,
  createPcapngWriter,
  createPcapWriter,
  type PcapngInterfaceOptions,
  type PcapngWriter,
  type PcapngWriterOptions,
  type PcapWriterOptions,
  type WritePacket,
  type WriteTarget,
} from './writer.js';

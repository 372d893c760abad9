export { type CaptureFilter, type CaptureProtocol, compileBpf, FILTER_LIMITS, parseFilters } from './filters.js';
export {
  type CaptureSettings,
  DEFAULT_CAPTURE_ROOT,
  MAX_SNAPLEN,
  type OsType,
  PACKET_CAPTURE_LIMITS,
  type PacketCaptureBodyOptions,
  type PacketCaptureInput,
  type PacketCaptureStorageLocation,
  parsePacketCaptureBody,
  snaplenFor,
} from './parameters.js';

/** The agent protocol (`/agent/v1/…`): what the server and the agents say to each other. */

export const AGENT_PROTOCOL_PREFIX = '/agent/v1';

export interface NicInfo {
  name: string;
  mac: string;
  ipAddresses: string[];
}

export interface RegisterRequest {
  name: string;
  resourceGroup: string;
  location: string;
  subscriptionId?: string;
  /** Linux for tripcap's agent; Windows for an agent that keeps its files under a drive-letter capture root. */
  osType: 'Linux' | 'Windows';
  hostname: string;
  nics: NicInfo[];
  captureRoot: string;
  version: string;
}

export interface RegisterResponse {
  agentId: string;
  agentToken: string;
  vmId: string;
}

export interface CaptureProgress {
  bytes: number;
  packets: number;
  /** What the flight recorder gave a capture with preTriggerSeconds (in the final report). */
  preTrigger?: PreTriggerReport;
}

/** How much of [start − preTriggerSeconds, start] a capture's file holds, from the VM's flight recorder. */
export interface PreTriggerReport {
  requestedSeconds: number;
  /** start − requestedSeconds */
  from: string;
  /** From when the file holds the ring's traffic (null: none); later than `from` when the ring held less. */
  coveredFrom: string | null;
  coveredSeconds: number;
  /** Packets taken from the ring. */
  packets: number;
  /** 'matched': joined where a live packet was found in the ring; 'time': at the live start; 'none': no ring part. */
  seam: 'matched' | 'time' | 'none';
  /** Why the ring gave less than asked, in a sentence. */
  message?: string;
}

export interface HeartbeatRequest {
  /** Jobs the agent is running or still reporting; a Running capture missing here has lost its agent. */
  running: string[];
  progress: Record<string, CaptureProgress>;
  nics?: NicInfo[];
  /** The flight recorder's state, when the VM has one configured. */
  flightRecorder?: FlightRecorderReport;
}

/** A VM's flight recorder as set through the API (tripcap's extension): an always-on ring of recent traffic. */
export interface FlightRecorderSettings {
  enabled: boolean;
  /** Bytes kept of each packet (headers only by default). */
  snaplen: number;
  /** The ring's size on disk. */
  maxBytes: number;
  /** Packets older than this are dropped from the ring. */
  maxAgeSeconds: number;
  /** The ring stops (reason DiskFloor) when the disk has less free space than this. */
  minFreeBytes: number;
}

export interface FlightRecorderReport {
  state: 'Running' | 'Stopped';
  stopReason: string | null;
  message: string | null;
  bytesOnDisk: number;
  files: number;
  oldestPacketTime: string | null;
  newestPacketTime: string | null;
}

export interface HeartbeatResponse {
  time: string;
  /** What the VM's flight recorder should be (null: none configured). */
  flightRecorder: FlightRecorderSettings | null;
}

/** One host metrics sample: the values of the metrics over the second that ends at `time`. */
export interface MetricSample {
  /** End of the sampled second, ISO-8601 UTC */
  time: string;
  /** Metric name (Azure's, e.g. 'Network In Total') → value over that second */
  values: Record<string, number>;
}

/** `POST /agent/v1/metrics`: host metric samples of the agent's own VM, oldest first. */
export interface MetricsBatchRequest {
  samples: MetricSample[];
}

export interface MetricsBatchResponse {
  /** Values stored (a sample sent twice is stored once) */
  stored: number;
}

/** The most samples one batch may carry (10 minutes at one a second). */
export const MAX_METRICS_BATCH = 600;

export interface StartCaptureJob {
  type: 'start';
  jobId: string;
  captureId: string;
  bpf: string;
  snaplen: number;
  maxBytes: number;
  timeLimitSeconds: number;
  /** Absolute path on the host (under its capture root) when the user asked for a local file. */
  localFile?: string;
  /** Whether the file goes to the server's blob store. */
  upload: boolean;
  ring?: { fileCount: number; fileSizeBytes: number };
  /** Seconds of flight-recorder traffic to put before the live capture. */
  preTriggerSeconds?: number;
  /** pcapng instead of classic pcap, with `comments` in its section header. */
  fileFormat?: 'pcapng';
  comments?: string[];
}

export interface StopCaptureJob {
  type: 'stop';
  jobId: string;
}

export type AgentJob = StartCaptureJob | StopCaptureJob;

export interface JobsResponse {
  jobs: AgentJob[];
}

export type PacketCaptureErrorCode =
  | 'InternalError'
  | 'AgentStopped'
  | 'CaptureFailed'
  | 'LocalFileFailed'
  | 'StorageFailed';

export interface StatusReport {
  status: 'Running' | 'Stopped' | 'Error';
  /** When tcpdump started listening (Running) or ended (Stopped, Error). */
  time: string;
  stopReason?: string;
  errors?: PacketCaptureErrorCode[];
  message?: string;
  progress?: CaptureProgress;
  /** Files kept on the host (filePath), reported so the API can list them even when nothing is uploaded. */
  localFiles?: FileReport[];
}

export interface FileReport {
  seq: number;
  size: number;
  packets: number;
  kernelDrops: number;
  sha256: string;
  firstPacketTime?: string;
  lastPacketTime?: string;
  localPath?: string;
}

/** Headers that carry a FileReport beside an upload's raw body. */
export const FILE_HEADERS = {
  sha256: 'x-tripcap-sha256',
  packets: 'x-tripcap-packets',
  kernelDrops: 'x-tripcap-kernel-drops',
  firstPacketTime: 'x-tripcap-first-packet-time',
  lastPacketTime: 'x-tripcap-last-packet-time',
  localPath: 'x-tripcap-local-path',
} as const;

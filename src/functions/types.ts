/**
 * The contracts of the capture-on-alert function: what an alert source is parsed into, and the Network Watcher it
 * drives (in-process for tripcap's own agents, or Azure's real Network Watcher).
 */

export const ALERT_SOURCES = [
  'azure-common', // Azure Monitor common alert schema (any conditionType)
  'azure-metric-alert', // schemaId AzureMonitorMetricAlert (the older metric alert schema)
  'azure-classic', // classic metric alert webhook ({ status, context: { condition, resourceId, … } })
  'alertmanager', // Prometheus Alertmanager webhook, version 4
  'grafana', // Grafana alerting webhook
] as const;
export type AlertSource = (typeof ALERT_SOURCES)[number];

/** One alert of a delivered payload (an Alertmanager or Grafana body holds several). */
export interface IncomingAlert {
  source: AlertSource;
  /**
   * The same alert delivered again (action group retries, Alertmanager repeats) has the same key; a new firing has a
   * new one. Azure: the alert id and its monitor condition; Alertmanager/Grafana: fingerprint (or the sorted labels)
   * with startsAt and status.
   */
  dedupKey: string;
  condition: 'Fired' | 'Resolved';
  ruleName: string;
  severity: string | null;
  description: string | null;
  /** What the alert names as its subject, for resolveTarget. */
  target: {
    /** An ARM resource id when the payload carries one (any type: resolveTarget refuses what is not a VM). */
    resourceId: string | null;
    /** Host names it names (labels vm, host, hostname, nodename, instance without port, …), in priority order. */
    names: string[];
    /** IP addresses it names (instance 10.0.0.4:9100 → 10.0.0.4). */
    addresses: string[];
  };
  firedAt: string | null;
  resolvedAt: string | null;
  /** The window that decided, when the payload says (Azure metric alerts). */
  windowStart: string | null;
  windowEnd: string | null;
  /** The alert's own JSON (one alert, not the whole body), kept with the job and in notifications. */
  raw: unknown;
}

/** A VM the function may capture, as resolveTarget sees it. */
export interface VmCandidate {
  id: string;
  name: string;
  resourceGroup: string;
  location: string;
  addresses: string[];
}

export type TargetResolution =
  | { ok: true; vm: VmCandidate }
  | {
      ok: false;
      /** TargetNotFound | TargetNotAVirtualMachine | TargetAmbiguous | NoTarget */
      code: string;
      message: string;
    };

/** A packet capture as the function creates and follows it (Azure's PacketCaptureParameters, the subset it sets). */
export interface CaptureRequest {
  target: string;
  bytesToCapturePerPacket: number;
  totalBytesPerSession: number;
  timeLimitInSeconds: number;
  filters: Array<{
    protocol?: 'TCP' | 'UDP' | 'Any';
    localIPAddress?: string;
    remoteIPAddress?: string;
    localPort?: string;
    remotePort?: string;
  }>;
  storageLocation: { storageId?: string; storagePath?: string; filePath?: string };
  /** tripcap's extension: seconds of flight-recorder traffic from before the start */
  preTriggerSeconds?: number;
  /** tripcap's extension: the file's format, 'pcap' by default */
  fileFormat?: CaptureFileFormat;
  /** tripcap's extension: a comment of the pcapng file's section header, at most 65,536 characters */
  comment?: string;
}

export const CAPTURE_FILE_FORMATS = ['pcapng', 'pcap'] as const;
export type CaptureFileFormat = (typeof CAPTURE_FILE_FORMATS)[number];

/** The longest `comment` tripcap's server accepts. */
export const MAX_CAPTURE_COMMENT_LENGTH = 65_536;

/**
 * The tripcap extensions of a capture request. Azure's API does not have them: its SDK drops them, and its Network
 * Watcher refuses them (the Azure adapter sends them to tripcap servers only).
 */
export const CAPTURE_EXTENSIONS = ['preTriggerSeconds', 'fileFormat', 'comment'] as const;

export interface WatcherRef {
  id: string;
  subscriptionId: string;
  resourceGroup: string;
  name: string;
  location: string;
}

export interface CaptureState {
  name: string;
  target: string;
  /** NotStarted | Running | Stopped | Error | Unknown */
  status: string;
  stopReason: string | null;
  errors: string[];
  startTime: string | null;
  /** Where the file is (Azure: the blob URL of storagePath), with size and SHA-256 when the service reports them. */
  files: Array<{ url: string | null; size: number | null; sha256: string | null }>;
}

/**
 * The Network Watcher the function drives: tripcap's own service in-process, or Azure's through @azure/arm-network.
 * Every method throws an Error whose message says what failed (never a secret).
 */
export interface NetworkWatcherPort {
  /** The VM by id (case-insensitive), or null when there is none. */
  getVm(vmId: string): Promise<{ id: string; name: string; location: string } | null>;
  /** The network watcher of a subscription's location, or null (Azure creates one per location: NetworkWatcher_{location}). */
  findWatcher(subscriptionId: string, location: string): Promise<WatcherRef | null>;
  listCaptures(watcher: WatcherRef): Promise<CaptureState[]>;
  /** Creates the capture and resolves once the service accepted it (Azure: the create's long-running operation). */
  createCapture(watcher: WatcherRef, name: string, request: CaptureRequest): Promise<void>;
  getCapture(watcher: WatcherRef, name: string): Promise<CaptureState>;
  stopCapture(watcher: WatcherRef, name: string): Promise<void>;
}

/** The HTTP-free face of capture-on-alert, shared by tripcap's server route and the Azure Functions app in azure/. */
export interface CaptureFunction {
  /**
   * Parses and records one delivery and answers at once: 202 with what was accepted, or a 4xx whose ARM-style body
   * (`{error:{code,message}}`) says why. The captures are then created, followed and notified in the background,
   * from jobs persisted before this answers (so `resume` finishes them after a restart).
   */
  accept(body: unknown): Promise<{ status: number; body: unknown }>;
  /** Records a delivery refused before it could be parsed (body too large, not JSON), so every refusal is on record. */
  recordRefusal(error: { code: string; message: string }): Promise<void>;
  /** Carries on with every job a previous run left unfinished; the number of jobs resumed. */
  resume(): Promise<number>;
  /** Resolves when no job is in progress (tests). */
  idle(): Promise<void>;
  /** Stops following captures (shutdown): unfinished jobs stay on record for resume(). */
  close(): Promise<void>;
}

/**
 * The server's public API, as the console uses it. The token lives in sessionStorage (gone when the tab closes) and
 * travels only in the Authorization header, never in a URL.
 */

const TOKEN_KEY = 'tripcap.token';

export function storedToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function storeToken(token: string | null): void {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** An API refusal: ARM's `{"error": {"code", "message", "target"?}}`, with the HTTP status. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly target?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Told when the server refuses the token (revoked, or the server's data folder changed): the page signs out. */
let onUnauthorized: ((message: string) => void) | null = null;
export function setUnauthorizedHandler(handler: (message: string) => void): void {
  onUnauthorized = handler;
}

async function errorOf(response: Response): Promise<ApiError> {
  let body: unknown;
  try {
    body = await response.json();
  } catch {
    body = undefined;
  }
  const error = (body as { error?: { code?: string; message?: string; target?: string } } | undefined)?.error;
  return new ApiError(
    response.status,
    error?.code ?? `HTTP${response.status}`,
    error?.message ?? `The server answered HTTP ${response.status} ${response.statusText}.`,
    error?.target,
  );
}

export async function request(
  method: string,
  path: string,
  options: { body?: unknown; token?: string } = {},
): Promise<Response> {
  const token = options.token ?? storedToken();
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      headers,
      cache: 'no-store',
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
    });
  } catch {
    throw new ApiError(0, 'NetworkError', 'The server cannot be reached: is tripcap running?');
  }
  if (!response.ok) {
    const error = await errorOf(response);
    if (response.status === 401 && !options.token) onUnauthorized?.(error.message);
    throw error;
  }
  return response;
}

/** A JSON call; undefined for an empty answer (204, or 202 without a body). */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const response = await request(method, path, body === undefined ? {} : { body });
  const text = await response.text();
  return (text ? JSON.parse(text) : undefined) as T;
}

export const get = <T>(path: string) => api<T>('GET', path);

/** Adds `api-version` (any is accepted; these are Azure's current ones). */
export const ARM = '2024-05-01';
export const INSIGHTS = '2023-01-01';
export const withVersion = (path: string, version = ARM) =>
  `${path}${path.includes('?') ? '&' : '?'}api-version=${version}`;

// ---- shapes the console reads (the fields it uses) ----------------------------------------------------------

export interface Me {
  name: string;
  role: string;
  permissions: string[];
  subscriptionId: string;
}

export interface Vm {
  id: string;
  name: string;
  location: string;
  properties: {
    networkProfile: { networkInterfaces: Array<{ name: string; macAddress?: string; ipAddresses?: string[] }> };
    storageProfile?: { osDisk?: { osType?: string } };
    agent: { status: string; lastSeen: string } | null;
  };
}

export interface MetricsResponse {
  interval: string;
  value: Array<{
    name: { value: string };
    unit: string;
    timeseries: Array<{ data: Array<{ timeStamp: string; total?: number; average?: number; maximum?: number }> }>;
  }>;
}

export interface Criterion {
  criterionType: 'StaticThresholdCriterion' | 'DynamicThresholdCriterion';
  name: string;
  metricName: string;
  metricNamespace?: string;
  timeAggregation: string;
  operator: string;
  threshold?: number;
  alertSensitivity?: string;
}

export interface Rule {
  id: string;
  name: string;
  location: string;
  tags: Record<string, string>;
  properties: {
    description: string;
    severity: number;
    enabled: boolean;
    scopes: string[];
    evaluationFrequency: string;
    windowSize: string;
    criteria: { 'odata.type': string; allOf: Criterion[] };
    autoMitigate: boolean;
    actions: Array<{ actionGroupId: string; webHookProperties?: Record<string, string> }>;
    lastUpdatedTime: string;
  };
}

export interface ActionGroup {
  id: string;
  name: string;
  location: string;
  properties: {
    groupShortName: string;
    enabled: boolean;
    emailReceivers: Array<{ name: string; emailAddress: string; useCommonAlertSchema: boolean }>;
    webhookReceivers: Array<{ name: string; serviceUri: string; useCommonAlertSchema: boolean }>;
    azureFunctionReceivers: Array<{
      name: string;
      functionAppResourceId: string;
      functionName: string;
      httpTriggerUrl: string;
      useCommonAlertSchema: boolean;
    }>;
  };
}

export interface Delivery {
  id: string;
  receiverName: string;
  receiverKind: string;
  target: string;
  alertId: string | null;
  notificationId: string | null;
  status: string;
  attempts: Array<{
    attempt: number;
    startedAt: string;
    durationMs: number;
    outcome: string;
    httpStatus: number | null;
    error: string | null;
  }>;
  createdTime: string;
  updatedTime: string;
}

export interface Alert {
  id: string;
  name: string;
  properties: {
    essentials: {
      severity: string;
      monitorCondition: string;
      targetResource: string;
      targetResourceName: string;
      targetResourceGroup: string;
      alertRule: string;
      startDateTime: string;
      lastModifiedDateTime: string;
      monitorConditionResolvedDateTime?: string;
      description: string;
    };
    context: {
      conditionType: string;
      windowSize: string;
      windowStartTime: string;
      windowEndTime: string;
      criteria: Array<{
        name: string;
        metricName: string;
        timeAggregation: string;
        operator: string;
        threshold: number;
        metricValue: number | null;
        met: boolean;
      }>;
    };
    deliveries: Array<{
      id: string;
      receiverName: string;
      receiverKind: string;
      target: string;
      monitorCondition: string;
      status: string;
      attempts: number;
      updatedTime: string;
    }>;
  };
}

export interface FunctionJob {
  id: string;
  receivedTime: string;
  updatedTime: string;
  source: string;
  alertId: string | null;
  condition: string;
  ruleName: string;
  vm: string | null;
  status: string;
  reason: string | null;
  message: string | null;
  deliveries: number;
  captureName: string | null;
  /** The network watcher the capture is under. */
  watcher: { id: string; resourceGroup: string; name: string } | null;
  capture: { name?: string; status?: string; stopReason?: string | null } | null;
  notifications: unknown;
}

export interface Watcher {
  id: string;
  name: string;
  location: string;
}

export interface CaptureFilter {
  protocol?: string;
  localIPAddress?: string;
  remoteIPAddress?: string;
  localPort?: string;
  remotePort?: string;
}

export interface Capture {
  id: string;
  name: string;
  etag?: string;
  properties: {
    target: string;
    bytesToCapturePerPacket?: number;
    totalBytesPerSession?: number;
    timeLimitInSeconds?: number;
    storageLocation?: { storageId?: string; storagePath?: string; filePath?: string; localPath?: string };
    filters?: CaptureFilter[];
    continuousCapture?: boolean;
    preTriggerSeconds?: number;
    provisioningState?: string;
  };
}

export interface CaptureFile {
  seq: number;
  name: string;
  storagePath: string | null;
  localPath: string | null;
  size: number;
  packets: number;
  kernelDrops: number;
  sha256: string;
  firstPacketTime: string | null;
  lastPacketTime: string | null;
  uploadedTime: string;
  downloadUrl: string | null;
}

export interface CaptureStatus {
  name: string;
  id: string;
  captureStartTime?: string;
  captureEndTime?: string;
  packetCaptureStatus: 'NotStarted' | 'Running' | 'Stopped' | 'Error';
  stopReason?: string;
  packetCaptureError: string[];
  bytesCaptured: number;
  packetsCaptured: number;
  /** What the VM's flight recorder gave a capture with preTriggerSeconds. */
  preTrigger?: {
    requestedSeconds: number;
    coveredFrom: string | null;
    coveredSeconds: number;
    packets: number;
    seam: 'matched' | 'time' | 'none';
    message?: string;
  };
  files: CaptureFile[];
}

export interface Peer {
  address: string;
  port?: number;
  protocol?: string;
  bytes: number;
  packets: number;
  share: number;
  flows: number;
  names?: string[];
  app?: string;
}

export interface Conversation {
  a: string;
  b: string;
  portA?: number;
  portB?: number;
  framesAtoB: number;
  bytesAtoB: number;
  framesBtoA: number;
  bytesBtoA: number;
  frames: number;
  bytes: number;
  relStart: number;
  duration: number;
  app?: string;
  name?: string;
}

export interface ProtocolNode {
  name: string;
  packets: number;
  bytes: number;
  children: ProtocolNode[];
}

export interface Report {
  summary: {
    packets: number;
    bytes: number;
    fileBytes: number;
    firstTime?: string;
    lastTime?: string;
    duration: number;
    bitsPerSecond: number | null;
    packetsPerSecond: number | null;
    averagePacketSize: number | null;
    packetsCut: number;
    truncated: boolean;
    warnings: string[];
    linkTypes: string[];
    snaplen: number;
  };
  protocols: ProtocolNode;
  conversations: { tcp: Conversation[]; udp: Conversation[]; ipv4: Conversation[]; ipv6: Conversation[] };
  hosts: { addresses: string[]; source: string; note?: string };
  traffic: {
    outbound: { packets: number; bytes: number };
    inbound: { packets: number; bytes: number };
    topDestinations: Peer[];
    topSources: Peer[];
    topDestinationServices: Peer[];
    topSourceServices: Peer[];
  };
  timeline: {
    binSeconds: number;
    start?: string;
    bytes: number[];
    outBytes: number[];
    inBytes: number[];
  };
  tcp: {
    segments: number;
    retransmissions: number;
    resets: number;
    connections: { attempted: number; established: number; refused: number; unanswered: number };
    handshakeRtt: { medianMs: number | null; p95Ms: number | null };
  };
  names: {
    dns: Array<{
      name: string;
      type: string;
      queries: number;
      responses: number;
      rcodes: Record<string, number>;
      answers: string[];
    }>;
    tls: Array<{ sni: string; flows: number; servers: string[] }>;
    http: Array<{ method: string; host: string; path: string; requests: number; statuses: Record<string, number> }>;
  };
  explanation: { sentences: string[] };
}

export interface ReportResponse {
  status: 'NotStarted' | 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unavailable';
  report?: Report;
  error?: { code: string; message: string };
  updatedTime?: string;
}

// ---- ARM ids and paths ---------------------------------------------------------------------------------------

/** The parts of an ARM id: `/subscriptions/s/resourceGroups/rg/providers/…/name` → {subscription, resourceGroup, name}. */
export function parseId(id: string): { subscriptionId: string; resourceGroup: string; name: string } {
  const parts = id.split('/');
  const at = (key: string) => {
    const i = parts.findIndex((p) => p.toLowerCase() === key.toLowerCase());
    return i >= 0 ? (parts[i + 1] ?? '') : '';
  };
  return { subscriptionId: at('subscriptions'), resourceGroup: at('resourceGroups'), name: parts.at(-1) ?? '' };
}

export const enc = encodeURIComponent;

export const paths = {
  vms: (sub: string) => withVersion(`/subscriptions/${sub}/providers/Microsoft.Compute/virtualMachines`, '2024-07-01'),
  metrics: (vmId: string, query: string) =>
    `${vmId}/providers/microsoft.insights/metrics?${query}&api-version=2023-10-01`,
  rules: (sub: string) => withVersion(`/subscriptions/${sub}/providers/Microsoft.Insights/metricAlerts`, '2018-03-01'),
  rule: (sub: string, rg: string, name: string) =>
    `/subscriptions/${sub}/resourceGroups/${enc(rg)}/providers/Microsoft.Insights/metricAlerts/${enc(name)}`,
  groups: (sub: string) => withVersion(`/subscriptions/${sub}/providers/Microsoft.Insights/actionGroups`, INSIGHTS),
  group: (sub: string, rg: string, name: string) =>
    `/subscriptions/${sub}/resourceGroups/${enc(rg)}/providers/Microsoft.Insights/actionGroups/${enc(name)}`,
  alerts: (sub: string, timeRange = '1d') =>
    withVersion(
      `/subscriptions/${sub}/providers/Microsoft.AlertsManagement/alerts?timeRange=${timeRange}`,
      '2019-05-05-preview',
    ),
  jobs: (top = 100) => `/tripcap/v1/functions/capture-on-alert/jobs?$top=${top}`,
  watchers: (sub: string) => withVersion(`/subscriptions/${sub}/providers/Microsoft.Network/networkWatchers`),
};

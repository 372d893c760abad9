import type { Report } from '../../src/analysis/report.js';
import type { ApiError as ServerApiError } from '../../src/lib/errors.js';
import type { ActionGroupView, DeliveryView } from '../../src/monitor/action-groups.js';
import type { RuleView } from '../../src/monitor/alert-rules.js';
import type { AlertView } from '../../src/monitor/alerts.js';
import type { CaptureJobView } from '../../src/server/routes/functions.js';
import type { Permission, Role } from '../../src/server/tokens.js';
import type { captureStatusView, captureView, FileView, vmView, watcherView } from '../../src/watcher/arm-shape.js';
import type { ReportStatus } from '../../src/watcher/reports.js';

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

/** ARM's error body, `{"error": {"code", "message", "target"?}}`, as the server's ApiError writes it. */
type ErrorBody = ReturnType<ServerApiError['toBody']>['error'];

/** An API refusal as the page received it, with the HTTP status (0 when the server could not be reached). */
export class ApiError extends Error {
  readonly code: string;
  readonly target: string | undefined;
  constructor(
    readonly status: number,
    error: ErrorBody,
  ) {
    super(error.message);
    this.name = 'ApiError';
    this.code = error.code;
    this.target = error.target;
  }
}

/** Told when the server refuses the token (revoked, or the server's data folder changed): the page signs out. */
let onUnauthorized: ((message: string) => void) | null = null;
export function setUnauthorizedHandler(handler: (message: string) => void): void {
  onUnauthorized = handler;
}

async function errorOf(response: Response): Promise<ApiError> {
  const body = (await response.json().catch(() => undefined)) as { error?: Partial<ErrorBody> } | undefined;
  const error = body?.error;
  return new ApiError(response.status, {
    code: error?.code ?? `HTTP${response.status}`,
    message: error?.message ?? `The server answered HTTP ${response.status} ${response.statusText}.`,
    ...(error?.target ? { target: error.target } : {}),
  });
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
    throw new ApiError(0, { code: 'NetworkError', message: 'The server cannot be reached: is tripcap running?' });
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

// ---- shapes the console reads -----------------------------------------------------------------------------
// The server's own types where it has them (type-only imports: Vite erases them, nothing of the server is bundled).

export type { Conversation, Peer, ProtocolNode, Report } from '../../src/analysis/report.js';
export type { MetricsResponse } from '../../src/monitor/metrics-query.js';
export type { Permission } from '../../src/server/tokens.js';
export type { CaptureFilter } from '../../src/watcher/filters.js';
export type Vm = ReturnType<typeof vmView>;
export type Rule = RuleView;
export type ActionGroup = ActionGroupView;
export type Delivery = DeliveryView;
export type Alert = AlertView;
export type Watcher = ReturnType<typeof watcherView>;
export type Capture = ReturnType<typeof captureView>;
export type CaptureStatus = ReturnType<typeof captureStatusView>;
export type CaptureFile = FileView;

/** `GET /tripcap/v1/me` (src/server/routes/console.ts): who the token is and what it may do. */
export interface Me {
  name: string;
  role: Role;
  permissions: Permission[];
  subscriptionId: string;
}

/** `GET …/packetCaptures/{name}/report` (tripcap's): the analysis of the capture's files once they are stored. */
export interface ReportResponse {
  status: ReportStatus | 'NotStarted' | 'Unavailable';
  report?: Report;
  /** Why there is no report (Failed, Unavailable), in a sentence. */
  error?: string;
  updatedTime?: string;
}

/** A record of `GET /tripcap/v1/functions/capture-on-alert/jobs`: an alert the function received and what it did. */
export type FunctionJob = CaptureJobView;

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

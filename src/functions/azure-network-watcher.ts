/**
 * The NetworkWatcher port on Azure's real Network Watcher, through the official @azure/arm-network SDK. The same
 * adapter drives tripcap's own ARM API (tests do), which answers in Azure's shape.
 */
import type { Agent as HttpsAgent } from 'node:https';
import {
  NetworkManagementClient,
  type PacketCapture,
  type PacketCaptureQueryStatusResult,
  type PacketCaptureResult,
} from '@azure/arm-network';
import { createPipelineRequest, type HttpClient, isRestError, type PipelinePolicy } from '@azure/core-rest-pipeline';
import type { TokenCredential } from '@azure/identity';
import { parseResourceId, parseVmId, vmResourceId } from '../lib/arm-id.js';
import {
  CAPTURE_EXTENSIONS,
  type CaptureRequest,
  type CaptureState,
  type NetworkWatcherPort,
  type WatcherRef,
} from './types.js';

export interface AzureNetworkWatcherOptions {
  /** DefaultAzureCredential in Azure (managed identity); any TokenCredential elsewhere. */
  credential: TokenCredential;
  /** The subscription the client is created for; others are reached with their own client, on demand. */
  subscriptionId: string;
  /** ARM's base URL; default https://management.azure.com. */
  endpoint?: string;
  /** For tests: an agent that trusts a private CA, for this client alone. */
  httpsAgent?: HttpsAgent;
  /** For tests: sends the requests instead of the network (they are as they would go on the wire). */
  httpClient?: HttpClient;
  /**
   * Send tripcap's extensions (preTriggerSeconds, fileFormat, comment). Default: yes for a tripcap server, no for
   * Azure's own ARM endpoints, whose Network Watcher refuses properties it does not know (400 InvalidRequestFormat,
   * "Could not find member …").
   */
  sendExtensions?: boolean;
}

/** Compute's API version for the VM GET (arm-network has no VM client). */
const VM_API_VERSION = '2024-07-01';
const DEFAULT_ENDPOINT = 'https://management.azure.com';
/** Azure's ARM hosts: public cloud, US Government, China. */
const AZURE_ARM_HOSTS = ['management.azure.com', 'management.usgovcloudapi.net', 'management.chinacloudapi.cn'];

/** Whether an ARM endpoint is Azure's own (rather than a tripcap server speaking its API). */
export function isAzureArmEndpoint(endpoint: string): boolean {
  return AZURE_ARM_HOSTS.includes(new URL(endpoint).hostname.toLowerCase());
}
/** How many status queries listCaptures runs at once. */
const STATUS_CONCURRENCY = 8;
/**
 * Carries tripcap's extensions (preTriggerSeconds, fileFormat, comment) past the SDK's serializer, which drops
 * properties its model does not know: base64 JSON, read and removed by extensionsPolicy before anything is sent.
 */
const EXTENSIONS_HEADER = 'x-tripcap-extensions';

/** A call that failed, as one line: which call, ARM's status, code and message. Never the request (it holds a token). */
export class AzureCallError extends Error {
  constructor(
    readonly call: string,
    readonly statusCode: number | undefined,
    readonly code: string | undefined,
    message: string,
  ) {
    super(`${call} failed: ${[statusCode, code].filter(Boolean).join(' ')}${statusCode || code ? ': ' : ''}${message}`);
    this.name = 'AzureCallError';
  }
}

function callError(call: string, err: unknown): AzureCallError {
  if (isRestError(err)) return new AzureCallError(call, err.statusCode, err.code, oneLine(err.message));
  return new AzureCallError(call, undefined, undefined, oneLine(err instanceof Error ? err.message : String(err)));
}

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim().slice(0, 1000);

/** Azure spells a location "West Europe" or "westeurope". */
export const locationKey = (location: string) => location.replace(/\s+/g, '').toLowerCase();

/** Moves the extensions header into the PUT body's properties (tripcap reads them; Azure ignores them). */
const extensionsPolicy: PipelinePolicy = {
  name: 'tripcap-extensions',
  sendRequest: async (request, next) => {
    const encoded = request.headers.get(EXTENSIONS_HEADER);
    request.headers.delete(EXTENSIONS_HEADER);
    if (encoded && request.method === 'PUT' && typeof request.body === 'string') {
      const extensions = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as Record<string, unknown>;
      const body = JSON.parse(request.body) as { properties?: Record<string, unknown> };
      body.properties = { ...body.properties, ...extensions };
      request.body = JSON.stringify(body);
    }
    return next(request);
  },
};

/** The request's extension values as the header extensionsPolicy reads; none when it has none. */
export function extensionsHeader(request: CaptureRequest): Record<string, string> {
  const extensions = Object.fromEntries(
    CAPTURE_EXTENSIONS.filter((name) => request[name] !== undefined).map((name) => [name, request[name]]),
  );
  if (Object.keys(extensions).length === 0) return {};
  return { [EXTENSIONS_HEADER]: Buffer.from(JSON.stringify(extensions), 'utf8').toString('base64') };
}

/** tripcap's addition to queryStatus: the files it stored, with size and SHA-256. */
interface TripcapStatusFile {
  storagePath?: string | null;
  size?: number;
  sha256?: string;
}

/** A capture (GET) and its status (queryStatus) as the port's CaptureState. */
export function captureState(capture: PacketCaptureResult, status: PacketCaptureQueryStatusResult): CaptureState {
  const state = status.packetCaptureStatus ?? 'Unknown';
  const tripcapFiles = (status as { files?: unknown }).files;
  let files: CaptureState['files'];
  if (Array.isArray(tripcapFiles)) {
    files = (tripcapFiles as TripcapStatusFile[]).map((file) => ({
      url: file.storagePath ?? null,
      size: typeof file.size === 'number' ? file.size : null,
      sha256: typeof file.sha256 === 'string' ? file.sha256 : null,
    }));
  } else {
    // Azure reports only where the blob goes, from the start; it is written when the capture ends.
    const url = capture.storageLocation?.storagePath;
    const ended = state !== 'NotStarted' && state !== 'Running' && state !== 'Unknown';
    files = url && ended ? [{ url, size: null, sha256: null }] : [];
  }
  return {
    name: capture.name ?? status.name ?? '',
    target: capture.target ?? '',
    status: state,
    stopReason: status.stopReason || null,
    errors: status.packetCaptureError ?? [],
    startTime: status.captureStartTime ? status.captureStartTime.toISOString() : null,
    files,
  };
}

function captureParameters(request: CaptureRequest): PacketCapture {
  return {
    target: request.target,
    bytesToCapturePerPacket: request.bytesToCapturePerPacket,
    totalBytesPerSession: request.totalBytesPerSession,
    timeLimitInSeconds: request.timeLimitInSeconds,
    filters: request.filters,
    storageLocation: request.storageLocation,
  };
}

async function mapWithConcurrency<T, R>(items: T[], limit: number, map: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await map(items[index] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

export function createAzureNetworkWatcher(options: AzureNetworkWatcherOptions): NetworkWatcherPort {
  const endpoint = (options.endpoint ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const sendExtensions = options.sendExtensions ?? !isAzureArmEndpoint(endpoint);
  const clients = new Map<string, NetworkManagementClient>();

  /** One client per subscription: the SDK binds a client to the subscription of its list calls. */
  function clientFor(subscriptionId: string): NetworkManagementClient {
    const key = subscriptionId.toLowerCase();
    let client = clients.get(key);
    if (!client) {
      client = new NetworkManagementClient(options.credential, subscriptionId, {
        endpoint,
        ...(options.httpsAgent ? { agent: options.httpsAgent } : {}),
        ...(options.httpClient ? { httpClient: options.httpClient } : {}),
        userAgentOptions: { userAgentPrefix: 'tripcap-capture-on-alert' },
      });
      client.pipeline.addPolicy(extensionsPolicy);
      clients.set(key, client);
    }
    return client;
  }

  async function attempt<T>(call: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      throw callError(call, err);
    }
  }

  const captureCall = (what: string, watcher: WatcherRef, name: string) =>
    `${what} of packet capture '${name}' on ${watcher.name}`;

  async function queryStatus(watcher: WatcherRef, name: string): Promise<PacketCaptureQueryStatusResult> {
    return attempt(captureCall('getStatus', watcher, name), () =>
      clientFor(watcher.subscriptionId).packetCaptures.beginGetStatusAndWait(watcher.resourceGroup, watcher.name, name),
    );
  }

  return {
    async getVm(vmId) {
      const vm = parseVmId(vmId);
      if (!vm) return null;
      const client = clientFor(vm.subscriptionId);
      const url = `${endpoint}${vmResourceId(vm)}?api-version=${VM_API_VERSION}`;
      const response = await attempt(`GET virtual machine ${vm.name}`, () =>
        client.sendRequest(createPipelineRequest({ url, method: 'GET' })),
      );
      if (response.status === 404) return null;
      const body = (() => {
        try {
          return JSON.parse(response.bodyAsText ?? '') as Record<string, unknown>;
        } catch {
          return {};
        }
      })();
      if (response.status !== 200) {
        const error = (body.error ?? {}) as { code?: string; message?: string };
        throw new AzureCallError(
          `GET virtual machine ${vm.name}`,
          response.status,
          error.code,
          oneLine(error.message ?? 'no error message'),
        );
      }
      if (typeof body.id !== 'string' || typeof body.name !== 'string' || typeof body.location !== 'string') {
        throw new AzureCallError(
          `GET virtual machine ${vm.name}`,
          response.status,
          undefined,
          'the answer has no id, name or location',
        );
      }
      return { id: body.id, name: body.name, location: body.location };
    },

    async findWatcher(subscriptionId, location) {
      const wanted = locationKey(location);
      return attempt(`list network watchers of subscription ${subscriptionId}`, async () => {
        for await (const watcher of clientFor(subscriptionId).networkWatchers.listAll()) {
          const parsed = parseResourceId(watcher.id ?? '');
          if (!parsed || !watcher.name || locationKey(watcher.location ?? '') !== wanted) continue;
          return {
            id: watcher.id ?? '',
            subscriptionId: parsed.subscriptionId,
            resourceGroup: parsed.resourceGroup,
            name: watcher.name,
            location: watcher.location ?? location,
          };
        }
        return null;
      });
    },

    async listCaptures(watcher) {
      const captures = await attempt(`list packet captures of ${watcher.name}`, async () => {
        const all: PacketCaptureResult[] = [];
        for await (const capture of clientFor(watcher.subscriptionId).packetCaptures.list(
          watcher.resourceGroup,
          watcher.name,
        )) {
          all.push(capture);
        }
        return all;
      });
      // The list has no status: ask each capture. One deleted meanwhile is left out; one whose status cannot be read
      // is Unknown (a stale capture must not stop the function from seeing the others).
      const states = await mapWithConcurrency(captures, STATUS_CONCURRENCY, async (capture) => {
        try {
          return captureState(capture, await queryStatus(watcher, capture.name ?? ''));
        } catch (err) {
          if (err instanceof AzureCallError && err.statusCode === 404) return null;
          return captureState(capture, {});
        }
      });
      return states.filter((state): state is CaptureState => state !== null);
    },

    async createCapture(watcher, name, request) {
      await attempt(captureCall('create', watcher, name), () =>
        clientFor(watcher.subscriptionId).packetCaptures.beginCreateAndWait(
          watcher.resourceGroup,
          watcher.name,
          name,
          captureParameters(request),
          { requestOptions: { customHeaders: sendExtensions ? extensionsHeader(request) : {} } },
        ),
      );
    },

    async getCapture(watcher, name) {
      const capture = await attempt(captureCall('get', watcher, name), () =>
        clientFor(watcher.subscriptionId).packetCaptures.get(watcher.resourceGroup, watcher.name, name),
      );
      return captureState(capture, await queryStatus(watcher, name));
    },

    async stopCapture(watcher, name) {
      await attempt(captureCall('stop', watcher, name), () =>
        clientFor(watcher.subscriptionId).packetCaptures.beginStopAndWait(watcher.resourceGroup, watcher.name, name),
      );
    },
  };
}

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
import { createPipelineRequest, isRestError, type PipelinePolicy } from '@azure/core-rest-pipeline';
import type { TokenCredential } from '@azure/identity';
import { parseResourceId, parseVmId, vmResourceId } from '../lib/arm-id.js';
import type { CaptureRequest, CaptureState, NetworkWatcherPort, WatcherRef } from './types.js';

export interface AzureNetworkWatcherOptions {
  /** DefaultAzureCredential in Azure (managed identity); any TokenCredential elsewhere. */
  credential: TokenCredential;
  /** The subscription the client is created for; others are reached with their own client, on demand. */
  subscriptionId: string;
  /** ARM's base URL; default https://management.azure.com. */
  endpoint?: string;
  /** For tests: an agent that trusts a private CA, for this client alone. */
  httpsAgent?: HttpsAgent;
}

/** Compute's API version for the VM GET (arm-network has no VM client). */
const VM_API_VERSION = '2024-07-01';
const DEFAULT_ENDPOINT = 'https://management.azure.com';
/** How many status queries listCaptures runs at once. */
const STATUS_CONCURRENCY = 8;
/** Carries preTriggerSeconds past the SDK's serializer, which drops properties its model does not know. */
const PRE_TRIGGER_HEADER = 'x-tripcap-pre-trigger-seconds';

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

/** Moves the preTriggerSeconds header into the PUT body's properties (tripcap reads it; Azure ignores it). */
const preTriggerPolicy: PipelinePolicy = {
  name: 'tripcap-pre-trigger-seconds',
  sendRequest: async (request, next) => {
    const seconds = request.headers.get(PRE_TRIGGER_HEADER);
    request.headers.delete(PRE_TRIGGER_HEADER);
    if (seconds && request.method === 'PUT' && typeof request.body === 'string') {
      const body = JSON.parse(request.body) as { properties?: Record<string, unknown> };
      body.properties = { ...body.properties, preTriggerSeconds: Number(seconds) };
      request.body = JSON.stringify(body);
    }
    return next(request);
  },
};

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
  const clients = new Map<string, NetworkManagementClient>();

  /** One client per subscription: the SDK binds a client to the subscription of its list calls. */
  function clientFor(subscriptionId: string): NetworkManagementClient {
    const key = subscriptionId.toLowerCase();
    let client = clients.get(key);
    if (!client) {
      client = new NetworkManagementClient(options.credential, subscriptionId, {
        endpoint,
        ...(options.httpsAgent ? { agent: options.httpsAgent } : {}),
        userAgentOptions: { userAgentPrefix: 'tripcap-capture-on-alert' },
      });
      client.pipeline.addPolicy(preTriggerPolicy);
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
      const preTrigger: Record<string, string> = request.preTriggerSeconds
        ? { [PRE_TRIGGER_HEADER]: String(request.preTriggerSeconds) }
        : {};
      await attempt(captureCall('create', watcher, name), () =>
        clientFor(watcher.subscriptionId).packetCaptures.beginCreateAndWait(
          watcher.resourceGroup,
          watcher.name,
          name,
          captureParameters(request),
          { requestOptions: { customHeaders: preTrigger } },
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

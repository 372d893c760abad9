/**
 * How Azure's answers map to the port's CaptureState. The whole adapter runs against tripcap's ARM API in
 * test/e2e/azure-network-watcher.test.ts; these are the answers only real Azure gives (no `files` extension).
 */
import { createHttpHeaders, type HttpClient, type PipelineRequest } from '@azure/core-rest-pipeline';
import { describe, expect, it } from 'vitest';
import { AzureCallError, captureState, createAzureNetworkWatcher, locationKey } from './azure-network-watcher.js';
import type { CaptureRequest } from './types.js';

const TARGET = '/subscriptions/s/resourceGroups/web-rg/providers/Microsoft.Compute/virtualMachines/web-1';
const BLOB =
  'https://capturesweu.blob.core.windows.net/network-watcher-logs/subscriptions/s/…/packetcapture_10_00_00_000.cap';
const capture = { name: 'pc1', target: TARGET, storageLocation: { storagePath: BLOB } };

describe('captureState (Azure answers)', () => {
  it('Running: no file yet, though Azure already names the blob', () => {
    const started = new Date('2026-11-29T10:00:00Z');
    expect(
      captureState(capture, { packetCaptureStatus: 'Running', captureStartTime: started, packetCaptureError: [] }),
    ).toEqual({
      name: 'pc1',
      target: TARGET,
      status: 'Running',
      stopReason: null,
      errors: [],
      startTime: '2026-11-29T10:00:00.000Z',
      files: [],
    });
  });

  it('Stopped: the storagePath blob is the file, size and SHA-256 unknown', () => {
    expect(captureState(capture, { packetCaptureStatus: 'Stopped', stopReason: 'TimeExceeded' })).toMatchObject({
      status: 'Stopped',
      stopReason: 'TimeExceeded',
      files: [{ url: BLOB, size: null, sha256: null }],
    });
  });

  it('Error: its error codes; a capture to a VM file only (no storagePath) has no file URL to give', () => {
    expect(
      captureState(
        { name: 'pc2', target: TARGET, storageLocation: { filePath: '/var/captures/pc2.cap' } },
        { packetCaptureStatus: 'Error', packetCaptureError: ['AgentStopped', 'CaptureFailed'], stopReason: '' },
      ),
    ).toMatchObject({ status: 'Error', stopReason: null, errors: ['AgentStopped', 'CaptureFailed'], files: [] });
  });

  it('no status at all is Unknown', () => {
    expect(captureState(capture, {})).toMatchObject({ status: 'Unknown', startTime: null, files: [] });
  });

  it("tripcap's per-file answer wins over storagePath when present", () => {
    const status = {
      packetCaptureStatus: 'Stopped',
      files: [{ storagePath: 'https://tripcap:8443/blobs/x.cap', size: 1234, sha256: 'ab'.repeat(32) }],
    };
    expect(captureState(capture, status).files).toEqual([
      { url: 'https://tripcap:8443/blobs/x.cap', size: 1234, sha256: 'ab'.repeat(32) },
    ]);
  });
});

describe('locationKey', () => {
  it('compares locations as Azure writes them either way', () => {
    expect(locationKey('West Europe')).toBe(locationKey('westeurope'));
    expect(locationKey(' East US 2 ')).toBe('eastus2');
  });
});

describe('AzureCallError', () => {
  it('says which call failed, with status, code and message', () => {
    const err = new AzureCallError("get of packet capture 'pc1' on NetworkWatcher_westeurope", 404, 'NotFound', 'gone');
    expect(err.message).toBe("get of packet capture 'pc1' on NetworkWatcher_westeurope failed: 404 NotFound: gone");
    expect(new AzureCallError('list', undefined, undefined, 'socket hang up').message).toBe(
      'list failed: socket hang up',
    );
  });
});

describe("tripcap's extensions through the SDK", () => {
  /** The adapter over an HttpClient that records each request as it would go on the wire, and answers a PUT at once. */
  function recordingWatcher(endpoint = 'https://tripcap.example:8443') {
    const sent: PipelineRequest[] = [];
    const httpClient: HttpClient = {
      async sendRequest(request) {
        sent.push(request);
        const body = JSON.parse(typeof request.body === 'string' ? request.body : '{}');
        return {
          request,
          status: 200,
          headers: createHttpHeaders({ 'content-type': 'application/json' }),
          bodyAsText: JSON.stringify({
            name: 'pc1',
            properties: { ...body.properties, provisioningState: 'Succeeded' },
          }),
        };
      },
    };
    const watcherPort = createAzureNetworkWatcher({
      credential: { getToken: async () => ({ token: 'not-a-secret', expiresOnTimestamp: Date.now() + 3600e3 }) },
      subscriptionId: 's',
      endpoint,
      httpClient,
    });
    return { sent, watcherPort };
  }
  const watcher = {
    id: 'w',
    subscriptionId: 's',
    resourceGroup: 'NetworkWatcherRG',
    name: 'NetworkWatcher_westeurope',
    location: 'westeurope',
  };
  const request: CaptureRequest = {
    target: TARGET,
    bytesToCapturePerPacket: 0,
    totalBytesPerSession: 1024,
    timeLimitInSeconds: 1800,
    filters: [],
    storageLocation: { storageId: '/subscriptions/s/resourceGroups/r/providers/Microsoft.Storage/storageAccounts/a' },
  };

  it('preTriggerSeconds, fileFormat and comment reach the PUT body (the SDK alone would drop them)', async () => {
    const { sent, watcherPort } = recordingWatcher();
    // A comment with a new line and characters a header could not carry.
    const comment = 'tripcap capture-on-alert: alert \'Débit sortant ⚠\'\n{"a": 1}';
    await watcherPort.createCapture(watcher, 'pc1', {
      ...request,
      preTriggerSeconds: 310,
      fileFormat: 'pcapng',
      comment,
    });
    const put = sent.find((r) => r.method === 'PUT');
    expect(JSON.parse(String(put?.body)).properties).toMatchObject({
      target: TARGET,
      timeLimitInSeconds: 1800,
      preTriggerSeconds: 310,
      fileFormat: 'pcapng',
      comment,
    });
    expect(put?.headers.has('x-tripcap-extensions')).toBe(false);
  });

  it.each([
    ['tripcap, a request without extensions', 'https://tripcap.example:8443', {}],
    [
      "Azure's ARM, which refuses them",
      'https://management.azure.com',
      { preTriggerSeconds: 300, fileFormat: 'pcapng', comment: 'c' },
    ],
    ["Azure US Government's ARM", 'https://Management.UsGovCloudApi.net/', { preTriggerSeconds: 300 }],
  ] as const)('%s: the PUT holds only what Azure knows', async (_, endpoint, extensions) => {
    const { sent, watcherPort } = recordingWatcher(endpoint);
    await watcherPort.createCapture(watcher, 'pc1', { ...request, ...extensions });
    const properties = JSON.parse(String(sent.find((r) => r.method === 'PUT')?.body)).properties;
    expect(Object.keys(properties).sort()).toEqual(
      [
        'bytesToCapturePerPacket',
        'filters',
        'storageLocation',
        'target',
        'timeLimitInSeconds',
        'totalBytesPerSession',
      ].sort(),
    );
  });
});

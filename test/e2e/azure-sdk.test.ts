/**
 * The official `@azure/arm-network` SDK (36, the version the design pins) drives tripcap as it would drive Azure:
 * a real server over HTTPS (self-signed certificate, trusted by this client only), a bearer token from a
 * TokenCredential, and a real agent capturing on loopback with tcpdump. create (poller to completion), get, list,
 * getStatus, stop and delete all run; the server stores files in a real Azurite, in Azure's blob layout, and the
 * download route returns the same bytes.
 *
 * TLS: the SDK is given `agent: new https.Agent({ ca })`, a pipeline option of @azure/core-rest-pipeline that applies
 * to this client alone, so nothing disables certificate checks and no process-wide CA setting is touched.
 */
import { createHash } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NetworkManagementClient, type PacketCaptureResult } from '@azure/arm-network';
import { BlobServiceClient } from '@azure/storage-blob';
import { request, Agent as UndiciAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/lib/logger.js';
import { scanPcapFile } from '../../src/pcap/classic.js';
import { loadServerConfig } from '../../src/server/config.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { type Azurite, startAzurite } from '../../src/storage/azurite.test-helper.js';
import { CAPTURE_CONTAINER } from '../../src/storage/index.js';
import { startInProcessAgent } from '../in-process-agent.js';
import { poll } from './harness.js';

const SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';
const LOCATION = 'westus2';
const RESOURCE_GROUP = 'sdk-rg';
const VM_NAME = 'sdk-vm';
const VM_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines/${VM_NAME}`;
const WATCHER_RG = 'NetworkWatcherRG';
const WATCHER = `NetworkWatcher_${LOCATION}`;
const STORAGE_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/sdkstore`;
const CAPTURE = 'sdk-pc1';
const MATCHING_PACKETS = 10;

type Credential = ConstructorParameters<typeof NetworkManagementClient>[0];

/** tcpdump on loopback needs root: skip with the reason elsewhere, but never under CI. */
function rootSkipReason(): string | undefined {
  if (process.getuid?.() === 0) return undefined;
  const reason = 'needs root (the agent runs tcpdump on lo)';
  if (process.env.CI === 'true') throw new Error(`CI=true but this test ${reason}; run it as root`);
  return reason;
}

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

async function boundUdpSocket(): Promise<{ socket: Socket; port: number; received: () => number }> {
  const socket = createSocket('udp4');
  let count = 0;
  socket.on('message', () => count++);
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, port: socket.address().port, received: () => count };
}

const skip = rootSkipReason();

describe.skipIf(skip)(`the official @azure/arm-network SDK against tripcap${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let azurite: Azurite;
  let server: RunningServer;
  let dir: string;
  let ca: Buffer;
  let adminToken: string;
  let client: NetworkManagementClient;
  let stopAgent: () => Promise<void>;
  let sink: Awaited<ReturnType<typeof boundUdpSocket>>;
  let other: Awaited<ReturnType<typeof boundUdpSocket>>;
  /** Every request the SDK sent, as `METHOD url`. */
  const sent: string[] = [];

  const credential = (token: () => string): Credential => ({
    getToken: async () => ({ token: token(), expiresOnTimestamp: Date.now() + 3600e3 }),
  });

  /** A plain HTTPS call with the admin token, trusting the server's certificate the same way. */
  let https: UndiciAgent;
  async function call(method: 'GET' | 'POST', url: string) {
    const response = await request(url, {
      method,
      dispatcher: https,
      headers: { authorization: `Bearer ${adminToken}` },
    });
    return { status: response.statusCode, body: Buffer.from(await response.body.arrayBuffer()) };
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tripcap-sdk-'));
    azurite = await startAzurite();
    const config = loadServerConfig(
      {
        dataDir: join(dir, 'server'),
        host: '127.0.0.1',
        port: 0,
        storage: 'azure-blob',
        azureStorageConnectionString: azurite.connectionString,
        logLevel: 'warn',
      },
      { env: {} },
    );
    server = await startServer(config, createLogger({ level: 'warn', name: 'server' }));
    expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    adminToken = server.adminToken ?? (await readFile(server.adminTokenFile, 'utf8')).trim();
    ca = await readFile(server.caFile ?? '');
    https = new UndiciAgent({ connect: { ca } });

    stopAgent = await startInProcessAgent({
      server,
      adminToken,
      ca,
      dir,
      subscriptionId: SUBSCRIPTION,
      name: VM_NAME,
      resourceGroup: RESOURCE_GROUP,
      location: LOCATION,
    });

    client = new NetworkManagementClient(
      credential(() => adminToken),
      SUBSCRIPTION,
      {
        endpoint: server.url,
        agent: new HttpsAgent({ ca }),
      },
    );
    client.pipeline.addPolicy({
      name: 'record-requests',
      sendRequest: async (req, next) => {
        sent.push(`${req.method} ${req.url}`);
        return next(req);
      },
    });
    sink = await boundUdpSocket();
    other = await boundUdpSocket();
  });

  afterAll(async () => {
    sink?.socket.close();
    other?.socket.close();
    await stopAgent?.();
    await server?.close();
    await https?.close();
    await azurite?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  let created: PacketCaptureResult;

  it('beginCreateAndWait: the poller follows Azure-AsyncOperation until the agent runs tcpdump', async () => {
    created = await client.packetCaptures.beginCreateAndWait(
      WATCHER_RG,
      WATCHER,
      CAPTURE,
      {
        target: VM_ID,
        storageLocation: { storageId: STORAGE_ID },
        filters: [{ protocol: 'UDP', localIPAddress: '127.0.0.1', localPort: String(sink.port) }],
        timeLimitInSeconds: 120,
      },
      { updateIntervalInMs: 200 },
    );
    expect(created).toMatchObject({
      name: CAPTURE,
      id: `/subscriptions/${SUBSCRIPTION}/resourceGroups/${WATCHER_RG}/providers/Microsoft.Network/networkWatchers/${WATCHER}/packetCaptures/${CAPTURE}`,
      target: VM_ID,
      targetType: 'AzureVM',
      storageLocation: { storageId: STORAGE_ID },
      filters: [{ protocol: 'UDP', localIPAddress: '127.0.0.1', localPort: String(sink.port) }],
      bytesToCapturePerPacket: 0,
      totalBytesPerSession: 1073741824,
      timeLimitInSeconds: 120,
      provisioningState: 'Succeeded',
    });
    expect(created.etag).toMatch(/^W\/"/);
    // The SDK sent its own api-version (not one tripcap chose), polled the operation, then read the resource.
    const put = sent.find((s) => s.startsWith('PUT '));
    expect(put).toMatch(/\/packetCaptures\/sdk-pc1\?api-version=\d{4}-\d{2}-\d{2}$/);
    expect(sent.some((s) => /^GET .*\/locations\/westus2\/operations\/[0-9a-f-]{36}\?api-version=/.test(s))).toBe(true);
    expect(sent.at(-1)).toMatch(/^GET .*\/packetCaptures\/sdk-pc1\?api-version=/);
  });

  it('get and list', async () => {
    const got = await client.packetCaptures.get(WATCHER_RG, WATCHER, CAPTURE);
    expect(got).toMatchObject({ name: CAPTURE, id: created.id, target: VM_ID, provisioningState: 'Succeeded' });
    const names: string[] = [];
    for await (const capture of client.packetCaptures.list(WATCHER_RG, WATCHER)) names.push(capture.name ?? '');
    expect(names).toEqual([CAPTURE]);
    const watchers: string[] = [];
    for await (const watcher of client.networkWatchers.listAll()) watchers.push(watcher.name ?? '');
    expect(watchers).toEqual([WATCHER]);
  });

  it('beginGetStatusAndWait: Running, since the time tcpdump started', async () => {
    const status = await client.packetCaptures.beginGetStatusAndWait(WATCHER_RG, WATCHER, CAPTURE);
    expect(status).toMatchObject({
      name: CAPTURE,
      id: created.id,
      packetCaptureStatus: 'Running',
      packetCaptureError: [],
    });
    expect(status.captureStartTime).toBeInstanceOf(Date);
    expect(Date.now() - (status.captureStartTime?.getTime() ?? 0)).toBeLessThan(60_000);
    expect(status.stopReason).toBeFalsy();
  });

  it('beginStopAndWait: the poller completes once the agent stopped; status Stopped, ManuallyStopped', async () => {
    const sender = createSocket('udp4');
    for (let i = 0; i < MATCHING_PACKETS; i++) {
      await new Promise<void>((r) => sender.send(`match ${i}`, sink.port, '127.0.0.1', () => r()));
      await new Promise<void>((r) => sender.send(`other ${i}`, other.port, '127.0.0.1', () => r()));
    }
    sender.close();
    await poll('the datagrams to arrive', async () => (sink.received() === MATCHING_PACKETS ? true : undefined), {
      timeoutMs: 30_000,
    });

    await client.packetCaptures.beginStopAndWait(WATCHER_RG, WATCHER, CAPTURE, { updateIntervalInMs: 200 });
    const status = await client.packetCaptures.beginGetStatusAndWait(WATCHER_RG, WATCHER, CAPTURE);
    expect(status).toMatchObject({
      packetCaptureStatus: 'Stopped',
      stopReason: 'ManuallyStopped',
      packetCaptureError: [],
    });
    expect(status.captureStartTime).toBeInstanceOf(Date);
    expect(sent.some((s) => /^POST .*\/sdk-pc1\/stop\?api-version=/.test(s))).toBe(true);
    expect(sent.some((s) => /^GET .*\/operationResults\/[0-9a-f-]{36}\?api-version=/.test(s))).toBe(true);
  });

  let fileSha = '';

  it("stores the file in Azurite in Azure's layout; the download route returns the same bytes", async () => {
    const statusUrl = `${created.id}/queryStatus?api-version=2024-05-01`;
    type File = {
      name: string;
      sha256: string;
      size: number;
      packets: number;
      storagePath: string;
      downloadUrl: string;
    };
    const file = await poll(
      'the agent to upload the file',
      async () => {
        const reply = await call('POST', `${server.url}${statusUrl}`);
        const files = (JSON.parse(reply.body.toString()) as { files: File[] }).files;
        return files.length > 0 ? files[0] : undefined;
      },
      { timeoutMs: 30_000 },
    );
    expect(file.name).toMatch(
      /^subscriptions\/00000000-0000-0000-0000-000000000000\/resourcegroups\/sdk-rg\/providers\/microsoft\.compute\/virtualmachines\/sdk-vm\/\d{4}\/\d{2}\/\d{2}\/packetcapture_\d{2}_\d{2}_\d{2}_\d{3}\.cap$/,
    );
    expect(file.storagePath).toBe(`${azurite.blobEndpoint}/${CAPTURE_CONTAINER}/${file.name}`);
    expect(file.packets).toBe(MATCHING_PACKETS);

    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      CAPTURE_CONTAINER,
    );
    const blobs: string[] = [];
    for await (const blob of container.listBlobsFlat({ prefix: 'subscriptions/' })) blobs.push(blob.name);
    expect(blobs).toEqual([file.name]);
    const stored = await container.getBlobClient(file.name).downloadToBuffer();
    expect(stored.length).toBe(file.size);
    expect(sha256(stored)).toBe(file.sha256);

    const download = await call('GET', file.downloadUrl);
    expect(download.status).toBe(200);
    expect(sha256(download.body)).toBe(file.sha256);
    // The bytes are a capture of exactly the matching datagrams: the filter reached tcpdump.
    const copy = join(dir, 'downloaded.cap');
    await writeFile(copy, download.body);
    const scan = await scanPcapFile(copy);
    expect(scan.packets).toBe(MATCHING_PACKETS);
    expect(scan.truncated).toBe(false);
    fileSha = file.sha256;
  });

  it('beginDeleteAndWait: the capture goes, its file stays (as in Azure)', async () => {
    await client.packetCaptures.beginDeleteAndWait(WATCHER_RG, WATCHER, CAPTURE, { updateIntervalInMs: 200 });
    await expect(client.packetCaptures.get(WATCHER_RG, WATCHER, CAPTURE)).rejects.toMatchObject({
      name: 'RestError',
      statusCode: 404,
      code: 'NotFound',
    });
    const names: string[] = [];
    for await (const capture of client.packetCaptures.list(WATCHER_RG, WATCHER)) names.push(capture.name ?? '');
    expect(names).toEqual([]);
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      CAPTURE_CONTAINER,
    );
    const blobs: string[] = [];
    for await (const blob of container.listBlobsFlat()) blobs.push(blob.name);
    expect(blobs).toHaveLength(1);
    expect(sha256(await container.getBlobClient(blobs[0] ?? '').downloadToBuffer())).toBe(fileSha);
  });

  it("bad input and bad credentials reach the SDK as RestErrors with ARM's code and message", async () => {
    const bad = client.packetCaptures.beginCreateAndWait(WATCHER_RG, WATCHER, 'sdk-bad', {
      target: VM_ID,
      storageLocation: { storageId: STORAGE_ID },
      filters: [{ protocol: 'TCP', localPort: '1-2-3' }],
    });
    await expect(bad).rejects.toMatchObject({
      name: 'RestError',
      statusCode: 400,
      code: 'InvalidFilter',
      message: expect.stringMatching(/filters\[0\]\.localPort '1-2-3' is not valid/),
    });
    const stranger = new NetworkManagementClient(
      credential(() => `tct_${'0'.repeat(16)}_${'a'.repeat(43)}`),
      SUBSCRIPTION,
      { endpoint: server.url, agent: new HttpsAgent({ ca }) },
    );
    await expect(stranger.packetCaptures.get(WATCHER_RG, WATCHER, CAPTURE)).rejects.toMatchObject({
      statusCode: 401,
      code: 'AuthenticationFailed',
    });
  });

  it('accepts any api-version', async () => {
    const versions = ['2016-09-01', '2024-05-01', '2026-03-01-preview', 'not-a-date'];
    for (const version of versions) {
      const versioned = new NetworkManagementClient(
        credential(() => adminToken),
        SUBSCRIPTION,
        {
          endpoint: server.url,
          agent: new HttpsAgent({ ca }),
        },
      );
      versioned.pipeline.addPolicy({
        name: 'api-version',
        sendRequest: async (req, next) => {
          const url = new URL(req.url);
          url.searchParams.set('api-version', version);
          req.url = url.toString();
          return next(req);
        },
      });
      const watcher = await versioned.networkWatchers.get(WATCHER_RG, WATCHER);
      expect(watcher.name, version).toBe(WATCHER);
    }
  });
});

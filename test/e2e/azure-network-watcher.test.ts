/**
 * The Azure adapter of the NetworkWatcher port (@azure/arm-network) drives tripcap's own ARM API over HTTPS, the way
 * it drives Azure: a real server (self-signed CA trusted by this client only), a static TokenCredential carrying an
 * admin token, and a real agent capturing on loopback with tcpdump.
 */
import { createSocket, type Socket } from 'node:dgram';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { Agent as HttpsAgent } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TokenCredential } from '@azure/identity';
import { request, Agent as UndiciAgent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '../../src/db/index.js';
import { createAzureNetworkWatcher } from '../../src/functions/azure-network-watcher.js';
import { createCaptureFunction, loadFunctionSettings } from '../../src/functions/capture-function.js';
import type { CaptureRequest, CaptureState, NetworkWatcherPort, WatcherRef } from '../../src/functions/types.js';
import { createLogger } from '../../src/lib/logger.js';
import { loadServerConfig } from '../../src/server/config.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { alertSamples } from '../alert-fixtures.js';
import { startInProcessAgent } from '../in-process-agent.js';
import { startWebhookReceiver } from '../webhook-receiver.js';
import { poll } from './harness.js';

const SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';
const LOCATION = 'westus2';
const RESOURCE_GROUP = 'adapter-rg';
const VM_NAME = 'adapter-vm';
const VM_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines/${VM_NAME}`;
const STORAGE_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/adapterstore`;

/** tcpdump on loopback needs root: skip with the reason elsewhere, but never under CI. */
function rootSkipReason(): string | undefined {
  if (process.getuid?.() === 0) return undefined;
  const reason = 'needs root (the agent runs tcpdump on lo)';
  if (process.env.CI === 'true') throw new Error(`CI=true but this test ${reason}; run it as root`);
  return reason;
}

async function boundUdpSocket(): Promise<{ socket: Socket; port: number }> {
  const socket = createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  return { socket, port: socket.address().port };
}

/** Sends a datagram to the port every 50 ms until stopped: whatever moment tcpdump starts, it sees some. */
function keepSending(port: number): () => void {
  const sender = createSocket('udp4');
  let n = 0;
  const timer = setInterval(() => sender.send(`match ${n++}`, port, '127.0.0.1'), 50);
  return () => {
    clearInterval(timer);
    sender.close();
  };
}

const skip = rootSkipReason();

describe.skipIf(skip)(`the Azure NetworkWatcher adapter against tripcap${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let server: RunningServer;
  let dir: string;
  let adminToken: string;
  let undici: UndiciAgent;
  let watcherPort: NetworkWatcherPort;
  let stopAgent: () => Promise<void>;
  let sink: Awaited<ReturnType<typeof boundUdpSocket>>;
  let watcher: WatcherRef;
  /** The PUT bodies tripcap's server received, by capture name (as the ARM route hands them to the service). */
  const received = new Map<string, { properties: Record<string, unknown> }>();

  const captureRequest = (overrides: Partial<CaptureRequest>): CaptureRequest => ({
    target: VM_ID,
    bytesToCapturePerPacket: 0,
    totalBytesPerSession: 1024 * 1024,
    timeLimitInSeconds: 60,
    filters: [{ protocol: 'UDP', localIPAddress: '127.0.0.1', localPort: String(sink.port) }],
    storageLocation: { storageId: STORAGE_ID },
    ...overrides,
  });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tripcap-nw-adapter-'));
    const config = loadServerConfig(
      { dataDir: join(dir, 'server'), host: '127.0.0.1', port: 0, storage: 'local', logLevel: 'warn' },
      { env: {} },
    );
    server = await startServer(config, createLogger({ level: 'warn', name: 'server' }));
    const create = server.captures.createCapture;
    server.captures.createCapture = async (ref, body) => {
      received.set(ref.captureName, body as { properties: Record<string, unknown> });
      return create(ref, body);
    };
    adminToken = server.adminToken ?? (await readFile(server.adminTokenFile, 'utf8')).trim();
    const ca = await readFile(server.caFile ?? '');
    undici = new UndiciAgent({ connect: { ca } });

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

    const credential: TokenCredential = {
      getToken: async () => ({ token: adminToken, expiresOnTimestamp: Date.now() + 3600e3 }),
    };
    watcherPort = createAzureNetworkWatcher({
      credential,
      subscriptionId: SUBSCRIPTION,
      endpoint: server.url,
      httpsAgent: new HttpsAgent({ ca }),
    });
    sink = await boundUdpSocket();
  });

  afterAll(async () => {
    sink?.socket.close();
    await stopAgent?.();
    await server?.close();
    await undici?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('getVm: the VM by id, whatever its case; null for an unknown VM or a malformed id', async () => {
    expect(await watcherPort.getVm(VM_ID)).toEqual({ id: VM_ID, name: VM_NAME, location: LOCATION });
    expect(await watcherPort.getVm(VM_ID.toLowerCase())).toMatchObject({ name: VM_NAME, location: LOCATION });
    expect(await watcherPort.getVm(VM_ID.replace(VM_NAME, 'no-such-vm'))).toBeNull();
    expect(await watcherPort.getVm('/subscriptions/x/../../etc/passwd')).toBeNull();
  });

  it('findWatcher: by location, as Azure spells it either way; null where there is none', async () => {
    const found = await watcherPort.findWatcher(SUBSCRIPTION, 'West US 2');
    expect(found).toEqual({
      id: `/subscriptions/${SUBSCRIPTION}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/NetworkWatcher_${LOCATION}`,
      subscriptionId: SUBSCRIPTION,
      resourceGroup: 'NetworkWatcherRG',
      name: `NetworkWatcher_${LOCATION}`,
      location: LOCATION,
    });
    expect(await watcherPort.findWatcher(SUBSCRIPTION, 'northeurope')).toBeNull();
    watcher = found as WatcherRef;
  });

  it('createCapture (2 s, filtered) → listCaptures → getCapture until Stopped with its file', async () => {
    // The 2 s run from tcpdump's start, and the create's poller honours ARM's Retry-After (1 s): send throughout.
    const stopSending = keepSending(sink.port);
    let done: CaptureState;
    try {
      await watcherPort.createCapture(watcher, 'adapter-short', captureRequest({ timeLimitInSeconds: 2 }));

      const listed = await watcherPort.listCaptures(watcher);
      expect(listed.map((c) => c.name)).toEqual(['adapter-short']);
      expect(listed[0]).toMatchObject({ target: VM_ID, status: expect.stringMatching(/^(Running|Stopped)$/) });

      done = await poll<CaptureState>(
        'the capture to stop and its file to be stored',
        async () => {
          const state = await watcherPort.getCapture(watcher, 'adapter-short');
          return state.status === 'Stopped' && state.files.length > 0 ? state : undefined;
        },
        { timeoutMs: 20_000, intervalMs: 200 },
      );
    } finally {
      stopSending();
    }
    expect(done).toMatchObject({
      name: 'adapter-short',
      target: VM_ID,
      status: 'Stopped',
      stopReason: 'TimeExceeded',
      errors: [],
    });
    expect(Date.now() - Date.parse(done.startTime ?? '')).toBeLessThan(60_000);
    expect(done.files).toHaveLength(1);
    const [file] = done.files;
    expect(file?.url).toMatch(
      /^https:\/\/127\.0\.0\.1:\d+\/blobs\/network-watcher-logs\/subscriptions\/0{8}-0{4}-0{4}-0{4}-0{12}\/resourcegroups\/adapter-rg\/providers\/microsoft\.compute\/virtualmachines\/adapter-vm\/\d{4}\/\d{2}\/\d{2}\/packetcapture_\d{2}_\d{2}_\d{2}_\d{3}\.cap$/,
    );
    expect(file?.sha256).toMatch(/^[0-9a-f]{64}$/);
    // More than a pcap header (24 bytes): the datagrams that matched the filter.
    expect(file?.size).toBeGreaterThan(24);
  });

  it("stopCapture on a long capture: Stopped, ManuallyStopped; tripcap's extensions reached the server", async () => {
    const comment = 'tripcap capture-on-alert: Fired alert \'Débit ⚠\'\n{"schemaId": "azureMonitorCommonAlertSchema"}';
    await watcherPort.createCapture(
      watcher,
      'adapter-long',
      captureRequest({ timeLimitInSeconds: 600, preTriggerSeconds: 30, fileFormat: 'pcapng', comment }),
    );
    // The SDK's model has none of the three; the adapter's policy put them in the PUT body.
    expect(received.get('adapter-long')?.properties).toMatchObject({
      preTriggerSeconds: 30,
      fileFormat: 'pcapng',
      comment,
    });
    expect(await watcherPort.getCapture(watcher, 'adapter-long')).toMatchObject({ status: 'Running', files: [] });
    // And tripcap kept preTriggerSeconds.
    const raw = await request(`${server.url}${watcher.id}/packetCaptures/adapter-long?api-version=2024-05-01`, {
      dispatcher: undici,
      headers: { authorization: `Bearer ${adminToken}` },
    });
    expect(((await raw.body.json()) as { properties: { preTriggerSeconds?: number } }).properties).toMatchObject({
      preTriggerSeconds: 30,
    });

    await watcherPort.stopCapture(watcher, 'adapter-long');
    expect(await watcherPort.getCapture(watcher, 'adapter-long')).toMatchObject({
      status: 'Stopped',
      stopReason: 'ManuallyStopped',
      errors: [],
    });
    const states = await watcherPort.listCaptures(watcher);
    expect(states.map((c) => [c.name, c.status]).sort()).toEqual([
      ['adapter-long', 'Stopped'],
      ['adapter-short', 'Stopped'],
    ]);
  });

  it("failures name the call and ARM's status, code and message, never the token", async () => {
    const bad = watcherPort.createCapture(
      watcher,
      'adapter-bad',
      captureRequest({ filters: [{ protocol: 'TCP', localPort: '1-2-3' }] }),
    );
    await expect(bad).rejects.toThrow(
      /^create of packet capture 'adapter-bad' on NetworkWatcher_westus2 failed: 400 InvalidFilter: .*localPort '1-2-3' is not valid/,
    );
    const missing = await watcherPort.getCapture(watcher, 'no-such-capture').catch((err: Error) => err);
    expect(missing).toBeInstanceOf(Error);
    expect((missing as Error).message).toMatch(/^get of packet capture 'no-such-capture' .* failed: 404 NotFound: /);
    for (const err of [missing, await bad.catch((e: Error) => e)]) {
      expect(JSON.stringify({ ...(err as object), message: (err as Error).message })).not.toContain(adminToken);
    }
  });

  it('the capture function does the whole flow through the Azure adapter: alert → capture → notification', async () => {
    const hook = await startWebhookReceiver();
    const db = await createDatabase({ file: ':memory:' });
    // As deployed in Azure: no list of VMs, so the alert's resource id decides.
    const fn = createCaptureFunction({
      db,
      watcher: watcherPort,
      logger: createLogger({ level: 'warn', name: 'function' }),
      settings: loadFunctionSettings({
        TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: '2',
        TRIPCAP_CAPTURE_POLL_SECONDS: '1',
        TRIPCAP_CAPTURE_STORAGE_ID: STORAGE_ID,
        TRIPCAP_NOTIFY_WEBHOOKS: `${hook.url}/notify`,
      }),
    });
    const stopSending = keepSending(sink.port);
    try {
      const [sample] = alertSamples({ id: VM_ID, name: VM_NAME, address: '127.0.0.1' });
      const answer = await fn.accept(sample?.body);
      expect(answer.status).toBe(202);
      await fn.idle();
      const [job] = await db.selectFrom('capture_jobs').selectAll().execute();
      // Stopped by the function 2 s after the alert fired (its only firing).
      expect(job).toMatchObject({ status: 'Completed', vm_id: VM_ID, stop_reason: 'AlertQuiet' });
      const capture = await watcherPort.getCapture(watcher, job?.capture_name ?? '');
      expect(capture).toMatchObject({ status: 'Stopped', stopReason: 'ManuallyStopped' });
      // The flight recorder's seconds (this alert has no window: 300) and the alert as the pcapng comment.
      expect(received.get(job?.capture_name ?? '')?.properties).toMatchObject({
        timeLimitInSeconds: 1800,
        preTriggerSeconds: 300,
        fileFormat: 'pcapng',
        comment: expect.stringMatching(/^tripcap capture-on-alert: Fired alert /),
      });
      expect(hook.posts).toHaveLength(1);
      expect(hook.posts[0]?.body).toMatchObject({ stopReason: 'AlertQuiet', capture: { status: 'Stopped' } });
      expect(hook.posts[0]?.body.capture.files[0]?.sha256).toBe(capture.files[0]?.sha256);
    } finally {
      stopSending();
      await fn.close();
      await db.destroy();
      hook.close();
    }
  });
});

/**
 * An in-process tripcap API for tests: `buildApp` over SQLite and a local blob folder in a temp dir, an admin token,
 * and helpers that speak the ARM API and the agent protocol through `app.inject` (no sockets).
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { KyselyPlugin } from 'kysely';
import { analyzeStreams, flowsHint } from '../src/analysis/index.js';
import { createDatabase, type Database } from '../src/db/index.js';
import type { CaptureFunctionSettings } from '../src/functions/capture-function.js';
import { createLocalCaptureFunction } from '../src/functions/local.js';
import { createLogger, type Logger } from '../src/lib/logger.js';
import { createMetricsStore } from '../src/monitor/metrics-store.js';
import { createMonitor } from '../src/monitor/monitor.js';
import type { EmailSender } from '../src/notify/email.js';
import { buildApp } from '../src/server/app.js';
import { createToken, type Role } from '../src/server/tokens.js';
import { createLocalBlobStore } from '../src/storage/index.js';
import { FILE_HEADERS, type RegisterRequest, type StatusReport } from '../src/watcher/agent-protocol.js';
import { createCaptureReports } from '../src/watcher/reports.js';
import { createPacketCaptureService, type PacketCaptureService } from '../src/watcher/service.js';

export const SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';
export const PUBLIC_URL = 'https://tripcap.test';

export interface HarnessOptions {
  sessionsPerLocation?: number;
  /** Analyse uploaded captures (the real analysis engine), as the server does. */
  reports?: boolean;
  jobRedeliveryMs?: number;
  /** A SQLite file instead of ':memory:'. */
  databaseFile?: boolean;
  logger?: Logger;
  bodyLimit?: number;
  /**
   * Let every query of the service yield to the event loop before its result is used, as a database across a
   * network would: requests then interleave between queries, so a check-then-insert that is not atomic races.
   */
  yieldBetweenQueries?: boolean;
  /** The capture function's settings (default: loadFunctionSettings({})) and its e-mail sender. */
  functionSettings?: CaptureFunctionSettings;
  email?: EmailSender;
  /** The web console's build folder (default: dist/ui). */
  consoleDir?: string;
}

/** A Kysely plugin that delays each result by a timer tick (see HarnessOptions.yieldBetweenQueries). */
const yieldingPlugin: KyselyPlugin = {
  transformQuery: (args) => args.node,
  transformResult: async (args) => {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return args.result;
  },
};

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  // biome-ignore lint/suspicious/noExplicitAny: JSON bodies are inspected freely in tests
  json: any;
  text: string;
  raw: Buffer;
}

export interface RequestOptions {
  method: 'GET' | 'PUT' | 'POST' | 'DELETE' | 'HEAD' | 'PATCH';
  url: string;
  /** Bearer token; null sends no Authorization header. Defaults to the admin token. */
  token?: string | null;
  body?: unknown;
  /** A raw payload (string or bytes) sent as it is, with `headers` deciding its content type. */
  payload?: string | Buffer;
  headers?: Record<string, string>;
}

export type ApiHarness = Awaited<ReturnType<typeof createApiHarness>>;

export async function createApiHarness(options: HarnessOptions = {}) {
  const dir = await mkdtemp(join(tmpdir(), 'tripcap-api-'));
  const db: Database = await createDatabase({ file: options.databaseFile ? join(dir, 'tripcap.db') : ':memory:' });
  const logger = options.logger ?? createLogger({ level: 'silent' });
  const store = createLocalBlobStore({ root: join(dir, 'blobs'), baseUrl: `${PUBLIC_URL}/blobs` });
  const reports = options.reports
    ? createCaptureReports({
        db,
        store,
        logger,
        analyze: (files, { hostIps, bytes }) => analyzeStreams(files, { hostIps, expectedFlows: flowsHint(bytes) }),
      })
    : undefined;
  const captures: PacketCaptureService = createPacketCaptureService({
    db: options.yieldBetweenQueries ? db.withPlugin(yieldingPlugin) : db,
    store,
    logger,
    publicUrl: PUBLIC_URL,
    ...(options.sessionsPerLocation ? { sessionsPerLocation: options.sessionsPerLocation } : {}),
    ...(options.jobRedeliveryMs ? { jobRedeliveryMs: options.jobRedeliveryMs } : {}),
    ...(reports ? { reports } : {}),
  });
  const metrics = createMetricsStore({ db });
  // Not started: tests drive the evaluator with evaluateNow and the sender with runDue.
  const monitor = createMonitor({ db, metrics, logger, evaluationDelayMs: 0 });
  const captureFunction = createLocalCaptureFunction({
    db,
    captures,
    logger,
    ...(options.functionSettings ? { settings: options.functionSettings } : {}),
    ...(options.email ? { email: options.email } : {}),
  });
  const app: FastifyInstance = await buildApp({
    db,
    captures,
    metrics,
    monitor,
    captureFunction: { name: 'capture-on-alert', fn: captureFunction },
    logger,
    subscriptionId: SUBSCRIPTION,
    ...(options.bodyLimit ? { bodyLimit: options.bodyLimit } : {}),
    ...(options.consoleDir ? { consoleDir: options.consoleDir } : {}),
  });
  await app.ready();
  const admin = await createToken(db, { name: 'admin', role: 'admin' });

  async function request(o: RequestOptions): Promise<Reply> {
    const token = o.token === undefined ? admin.token : o.token;
    const headers: Record<string, string> = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...o.headers };
    const response = await app.inject({
      method: o.method,
      url: o.url,
      headers,
      ...(o.payload !== undefined ? { payload: o.payload } : o.body !== undefined ? { payload: o.body as object } : {}),
    });
    const raw = response.rawPayload;
    let json: unknown;
    try {
      json = raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
    } catch {
      json = undefined;
    }
    return { status: response.statusCode, headers: response.headers, json, text: raw.toString('utf8'), raw };
  }

  async function tokenFor(role: Role, name = `${role}-${randomUUID().slice(0, 8)}`) {
    return createToken(db, { name, role });
  }

  /** Registers a VM through the agent protocol (admin enrollment) and returns its agent's side of the protocol. */
  async function registerVm(vm: Partial<RegisterRequest> & { name: string; resourceGroup: string; location: string }) {
    const body: RegisterRequest = {
      osType: 'Linux',
      hostname: vm.name,
      nics: [{ name: 'eth0', mac: '00:11:22:33:44:55', ipAddresses: ['10.0.0.4'] }],
      captureRoot: '/var/captures',
      version: 'test',
      ...vm,
    };
    const reply = await request({ method: 'POST', url: '/agent/v1/register', body });
    if (reply.status !== 200) throw new Error(`register failed: ${reply.status} ${reply.text}`);
    const { agentId, agentToken, vmId } = reply.json as { agentId: string; agentToken: string; vmId: string };
    return { agentId, vmId, ...agentSide(agentToken) };
  }

  /** The agent protocol, spoken with one agent's token. */
  function agentSide(agentToken: string) {
    return {
      agentToken,
      jobs: (wait = 0) => request({ method: 'GET', url: `/agent/v1/jobs?wait=${wait}`, token: agentToken }),
      heartbeat: (body: { running: string[]; progress: Record<string, { bytes: number; packets: number }> }) =>
        request({ method: 'POST', url: '/agent/v1/heartbeat', token: agentToken, body }),
      status: (jobId: string, report: StatusReport) =>
        request({ method: 'POST', url: `/agent/v1/captures/${jobId}/status`, token: agentToken, body: report }),
      upload: (jobId: string, seq: number, bytes: Buffer, packets: number) =>
        request({
          method: 'PUT',
          url: `/agent/v1/captures/${jobId}/files/${seq}`,
          token: agentToken,
          payload: bytes,
          headers: {
            'content-type': 'application/octet-stream',
            [FILE_HEADERS.sha256]: sha256(bytes),
            [FILE_HEADERS.packets]: String(packets),
            [FILE_HEADERS.kernelDrops]: '0',
          },
        }),
    };
  }

  /** Rows that a refused request must not have added. */
  async function counts() {
    const count = async (table: 'packet_captures' | 'operations' | 'capture_files' | 'network_watchers' | 'vms') =>
      Number(
        (
          await db
            .selectFrom(table)
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    return {
      captures: await count('packet_captures'),
      operations: await count('operations'),
      files: await count('capture_files'),
      watchers: await count('network_watchers'),
      vms: await count('vms'),
    };
  }

  return {
    app,
    db,
    captures,
    metrics,
    monitor,
    captureFunction,
    dir,
    adminToken: admin.token,
    adminTokenId: admin.id,
    request,
    tokenFor,
    registerVm,
    agentSide,
    counts,
    reports,
    async close() {
      await app.close();
      await captureFunction.close();
      await reports?.idle();
      await db.destroy();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export function armPath(parts: {
  subscriptionId?: string;
  resourceGroup: string;
  watcher: string;
  capture?: string;
  apiVersion?: string;
}): string {
  const sub = parts.subscriptionId ?? SUBSCRIPTION;
  const watcher = `/subscriptions/${sub}/resourceGroups/${parts.resourceGroup}/providers/Microsoft.Network/networkWatchers/${parts.watcher}`;
  const path = parts.capture === undefined ? watcher : `${watcher}/packetCaptures/${parts.capture}`;
  return `${path}?api-version=${parts.apiVersion ?? '2024-05-01'}`;
}

export function vmId(resourceGroup: string, name: string, subscriptionId = SUBSCRIPTION): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Compute/virtualMachines/${name}`;
}

export function storageAccountId(name = 'tripcapstore', subscriptionId = SUBSCRIPTION): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/storage/providers/Microsoft.Storage/storageAccounts/${name}`;
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** A valid classic pcap (Ethernet, µs) holding `count` small UDP/IPv4 packets 10.0.0.4:80 → 10.0.0.9:40000+i. */
export function pcapBytes(count: number, start = new Date('2026-01-02T03:04:05.000Z')): Buffer {
  const header = Buffer.alloc(24);
  header.writeUInt32LE(0xa1b2c3d4, 0);
  header.writeUInt16LE(2, 4);
  header.writeUInt16LE(4, 6);
  header.writeUInt32LE(262144, 16);
  header.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
  const records: Buffer[] = [header];
  for (let i = 0; i < count; i++) {
    const frame = Buffer.alloc(14 + 20 + 8 + 4);
    frame.writeUInt16BE(0x0800, 12);
    const ip = frame.subarray(14);
    ip.writeUInt8(0x45, 0);
    ip.writeUInt16BE(20 + 8 + 4, 2);
    ip.writeUInt8(64, 8);
    ip.writeUInt8(17, 9);
    Buffer.from([10, 0, 0, 4]).copy(ip, 12);
    Buffer.from([10, 0, 0, 9]).copy(ip, 16);
    const udp = ip.subarray(20);
    udp.writeUInt16BE(80, 0);
    udp.writeUInt16BE(40000 + i, 2);
    udp.writeUInt16BE(8 + 4, 4);
    const record = Buffer.alloc(16);
    const ms = start.getTime() + i;
    record.writeUInt32LE(Math.floor(ms / 1000), 0);
    record.writeUInt32LE((ms % 1000) * 1000, 4);
    record.writeUInt32LE(frame.length, 8);
    record.writeUInt32LE(frame.length, 12);
    records.push(record, frame);
  }
  return Buffer.concat(records);
}

/** A pino logger (tripcap's own configuration, at `trace`) whose output a test can read back. */
export function memoryLogger(): { logger: Logger; text(): string } {
  const chunks: string[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger({ level: 'trace', destination: stream }), text: () => chunks.join('') };
}

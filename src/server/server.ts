import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { analyzeStreams, flowsHint } from '../analysis/index.js';
import { createDatabase, type Database } from '../db/index.js';
import { loadFunctionSettings } from '../functions/capture-function.js';
import { createLocalCaptureFunction } from '../functions/local.js';
import { idKey, type VmRef, vmResourceId } from '../lib/arm-id.js';
import { createLogger, type Logger } from '../lib/logger.js';
import { sleep } from '../lib/time.js';
import { createMetricsStore, type MetricsStore } from '../monitor/metrics-store.js';
import { createMonitor, type Monitor } from '../monitor/monitor.js';
import { ensureStarterRule } from '../monitor/starter.js';
import { createSmtpSender } from '../notify/email.js';
import { createBlobStore } from '../storage/index.js';
import { createCaptureReports } from '../watcher/reports.js';
import { createPacketCaptureService, type PacketCaptureService } from '../watcher/service.js';
import { buildApp } from './app.js';
import type { ServerConfig } from './config.js';
import { createToken } from './tokens.js';

/** The capture function's name: `POST /api/capture-on-alert`, as in Azure's tutorial. */
export const FUNCTION_NAME = 'capture-on-alert';

export interface RunningServer {
  app: FastifyInstance;
  db: Database;
  captures: PacketCaptureService;
  metrics: MetricsStore;
  monitor: Monitor;
  url: string;
  /** The admin token, only when this start created it. */
  adminToken: string | null;
  adminTokenFile: string;
  caFile: string | null;
  /** Creates the starter rule for this VM once it has registered (once per database; see docs/monitoring.md). */
  createStarterRule(vm: VmRef): Promise<void>;
  close(): Promise<void>;
}

/** Generates a self-signed certificate once, with openssl (argv, never a shell). */
function ensureSelfSignedCertificate(dir: string, logger: Logger): { cert: string; key: string } {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  if (existsSync(cert) && existsSync(key)) return { cert, key };
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const san = `subjectAltName=DNS:localhost,DNS:${hostname().replace(/[^A-Za-z0-9.-]/g, '')},IP:127.0.0.1,IP:::1`;
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '825'].concat([
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      '/CN=tripcap',
      '-addext',
      san,
    ]),
    { stdio: 'ignore' },
  );
  logger.info({ cert }, 'generated a self-signed TLS certificate');
  return { cert, key };
}

async function ensureAdminToken(db: Database, file: string): Promise<string | null> {
  if (existsSync(file)) return null;
  const { token } = await createToken(db, { name: 'admin', role: 'admin' });
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
  return token;
}

export async function startServer(
  config: ServerConfig,
  logger: Logger = createLogger({ level: config.logLevel }),
): Promise<RunningServer> {
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const db = await createDatabase({ file: join(config.dataDir, 'tripcap.db') });
  const adminTokenFile = join(config.dataDir, 'admin.token');
  const adminToken = await ensureAdminToken(db, adminTokenFile);

  let https: { key: Buffer; cert: Buffer } | undefined;
  let caFile: string | null = null;
  if (!config.insecureHttp) {
    const files =
      config.tlsCert && config.tlsKey
        ? { cert: config.tlsCert, key: config.tlsKey }
        : ensureSelfSignedCertificate(join(config.dataDir, 'tls'), logger);
    https = { cert: readFileSync(files.cert), key: readFileSync(files.key) };
    caFile = files.cert;
  }
  const scheme = https ? 'https' : 'http';
  const localHost = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;

  // The public URL depends on the port, known only after listen when port 0 is asked: the service reads it lazily.
  let publicUrl = config.publicUrl ?? '';
  const store = createBlobStore(
    config.storage === 'azure-blob'
      ? {
          kind: 'azure-blob',
          connectionString: config.azureStorageConnectionString ?? '',
          ...(config.azureStorageContainer ? { container: config.azureStorageContainer } : {}),
        }
      : {
          kind: 'local',
          root: join(config.dataDir, 'blobs'),
          baseUrl: () => `${publicUrl}/blobs`,
        },
  );
  const reports = createCaptureReports({
    db,
    store,
    logger,
    analyze: (files, { hostIps, bytes }) => analyzeStreams(files, { hostIps, expectedFlows: flowsHint(bytes) }),
  });
  const captures = createPacketCaptureService({
    db,
    store,
    logger,
    reports,
    sessionsPerLocation: config.sessionsPerLocation,
    agentTimeoutMs: config.agentTimeoutSeconds * 1000,
    get publicUrl() {
      return publicUrl;
    },
  });
  const metrics = createMetricsStore({
    db,
    rawRetentionMs: config.metricsRawRetentionMinutes * 60_000,
    rollupRetentionMs: config.metricsRollupRetentionDays * 86_400_000,
  });
  const email = config.smtpHost
    ? createSmtpSender({
        host: config.smtpHost,
        port: config.smtpPort,
        secure: config.smtpSecure,
        from: config.smtpFrom,
        ...(config.smtpUser ? { user: config.smtpUser, password: config.smtpPassword ?? '' } : {}),
      })
    : null;
  const monitor = createMonitor({
    db,
    metrics,
    logger,
    email,
    evaluationDelayMs: config.alertEvaluationDelaySeconds * 1000,
    // Action groups may call this server's own function endpoint over its self-signed HTTPS.
    ...(https ? { trustedCa: https.cert } : {}),
  });
  const captureFunction = createLocalCaptureFunction({
    db,
    captures,
    logger: logger.child({ part: 'capture-on-alert' }),
    settings: loadFunctionSettings(process.env),
    email,
  });
  const app = await buildApp({
    db,
    captures,
    metrics,
    monitor,
    captureFunction: { name: FUNCTION_NAME, fn: captureFunction },
    logger,
    subscriptionId: config.subscriptionId,
    ...(https ? { https } : {}),
  });
  await app.listen({ host: config.host, port: config.port });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `${scheme}://${localHost}:${port}`;
  publicUrl ||= url;

  await monitor.start();
  const jobs = await captureFunction.resume();
  if (jobs > 0) logger.info({ jobs }, 'resuming capture-on-alert jobs left by the previous run');
  const resumed = await reports.resume();
  if (resumed > 0) logger.info({ captures: resumed }, 'resuming capture analyses left by the previous run');

  const sweeper = setInterval(() => {
    captures.sweepSilentAgents().catch((err) => logger.error({ err }, 'agent sweep failed'));
  }, 2_000);
  sweeper.unref();
  // Old host metrics go once a minute (and once at start, after a long stop).
  const pruneMetrics = () => metrics.prune().catch((err) => logger.error({ err }, 'pruning old host metrics failed'));
  void pruneMetrics();
  const metricsPruner = setInterval(pruneMetrics, 60_000);
  metricsPruner.unref();

  logger.info({ url, dataDir: config.dataDir, storage: config.storage }, 'tripcap server listening');
  return {
    app,
    db,
    captures,
    metrics,
    monitor,
    url,
    adminToken,
    adminTokenFile,
    caFile,
    async createStarterRule(vm: VmRef) {
      if (!config.starterRule) return;
      // The agent registers its VM a moment after start: wait for it (up to two minutes).
      for (let i = 0; i < 120; i++) {
        const known = await db
          .selectFrom('vms')
          .select('key')
          .where('key', '=', idKey(vmResourceId(vm)))
          .executeTakeFirst();
        if (known) {
          const created = await ensureStarterRule(db, monitor, {
            vm,
            // The action group calls the function with a key of its own (revocable: tripcap function key list).
            functionUrl: async () => {
              const { token } = await createToken(db, { name: 'starter-action-group', role: 'function' });
              return `${publicUrl}/api/${FUNCTION_NAME}?code=${token}`;
            },
          });
          if (created) logger.info({ vm: vm.name }, 'created the starter alert rule tripcap-outbound-traffic');
          return;
        }
        await sleep(1000);
      }
      logger.warn({ vm: vm.name }, 'the local agent did not register within two minutes: no starter rule');
    },
    async close() {
      clearInterval(sweeper);
      clearInterval(metricsPruner);
      await monitor.stop();
      await app.close();
      await captureFunction.close();
      email?.close();
      await reports.idle();
      await db.destroy();
    },
  };
}

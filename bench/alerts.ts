/**
 * Metric ingestion and alert evaluation at scale, in one server process (the real HTTPS app, SQLite in a temp dir):
 *
 * 1. Ingest: 1,000 registered agents send host metrics through the agent protocol (`POST /agent/v1/metrics`), 60
 *    samples × 4 metrics a batch, 8 batches in flight: metric values stored per second.
 * 2. Evaluate: 1,000 rules, each over the whole subscription (so 1,000 hosts), each on one of the 4 metrics with
 *    Azure's windows: the wall time of one evaluation pass (every rule × every host) and the server's RSS. Cases:
 *    windows of whole minutes (read from rollups), PT10S windows (raw samples), and a pass where 10 rules fire on
 *    every host (10,000 alerts and their notifications written).
 *
 *   node --import tsx bench/alerts.ts [--hosts 1000] [--rules 1000] [--minutes 8] [--passes 3]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { createDatabase } from '../src/db/index.js';
import { createLogger } from '../src/lib/logger.js';
import { createMetricsStore } from '../src/monitor/metrics-store.js';
import { createMonitor } from '../src/monitor/monitor.js';
import { buildApp } from '../src/server/app.js';
import { createToken } from '../src/server/tokens.js';
import { createLocalBlobStore } from '../src/storage/index.js';
import { createPacketCaptureService } from '../src/watcher/service.js';
import {
  fmt,
  machineInfo,
  mdTable,
  numberFlags,
  onCleanup,
  run,
  runCleanups,
  runIfMain,
  SUBSCRIPTION,
  stats,
  writeResults,
} from './lib.js';

const METRICS = ['Network In Total', 'Network Out Total', 'Percentage CPU', 'Available Memory Bytes'];
const AGGREGATIONS = ['Total', 'Average', 'Maximum', 'Minimum'];
const BATCH = 60;
const IN_FLIGHT = 8;

/** The peak RSS of this process, sampled every 20 ms while `fn` runs. */
async function withPeakRss<T>(fn: () => Promise<T>): Promise<{ result: T; peakRss: number }> {
  let peakRss = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 20);
  try {
    const result = await fn();
    return { result, peakRss: Math.max(peakRss, process.memoryUsage.rss()) };
  } finally {
    clearInterval(timer);
  }
}

export async function runAlertsBench(argv: string[] = []) {
  const flags = numberFlags(argv, { hosts: 1000, rules: 1000, minutes: 8, passes: 3 });
  const dir = mkdtempSync(join(tmpdir(), 'tripcap-bench-alerts-'));
  onCleanup(() => rmSync(dir, { recursive: true, force: true }));
  await run('openssl', [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1'],
    ...['-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-subj', '/CN=bench'],
    ...['-addext', 'subjectAltName=IP:127.0.0.1'],
  ]);
  const https = { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) };

  const logger = createLogger({ level: 'error' });
  const db = await createDatabase({ file: join(dir, 'tripcap.db') });
  const metrics = createMetricsStore({ db, rawRetentionMs: 24 * 3_600_000 });
  // Not started: the benchmark runs evaluation passes itself, at chosen times.
  const monitor = createMonitor({ db, metrics, logger, evaluationDelayMs: 0 });
  const store = createLocalBlobStore({ root: join(dir, 'blobs'), baseUrl: 'https://127.0.0.1/blobs' });
  const captures = createPacketCaptureService({ db, store, logger, publicUrl: 'https://127.0.0.1' });
  const app = await buildApp({ db, captures, metrics, monitor, logger, subscriptionId: SUBSCRIPTION, https });
  await app.listen({ host: '127.0.0.1', port: 0 });
  onCleanup(async () => {
    await app.close();
    await db.destroy();
  });
  const address = app.server.address();
  const base = `https://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const dispatcher = new Agent({ connect: { ca: https.cert }, connections: IN_FLIGHT * 2 });
  onCleanup(() => dispatcher.close());
  const admin = await createToken(db, { name: 'bench', role: 'admin' });
  const call = async (method: string, path: string, token: string, body: unknown) => {
    const response = await request(`${base}${path}`, {
      method: method as 'POST',
      dispatcher,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.body.text();
    if (response.statusCode >= 300) throw new Error(`${method} ${path}: ${response.statusCode} ${text.slice(0, 300)}`);
    return text ? JSON.parse(text) : undefined;
  };

  process.stdout.write(`registering ${flags.hosts} agents…\n`);
  const agents: string[] = [];
  for (let i = 0; i < flags.hosts; i++) {
    const r = await call('POST', '/agent/v1/register', admin.token, {
      name: `host${i}`,
      resourceGroup: 'bench',
      location: 'local',
      osType: 'Linux',
      hostname: `host${i}`,
      nics: [{ name: 'eth0', mac: '00:11:22:33:44:55', ipAddresses: [`10.${i >> 8}.${i & 255}.4`] }],
      captureRoot: '/var/captures',
      version: 'bench',
    });
    agents.push(r.agentToken);
  }

  // Samples: `minutes` of one a second ending at a whole minute; each host has its own level, 1 % noise.
  const end = Math.floor(Date.now() / 60_000) * 60_000;
  const start = end - flags.minutes * 60_000;
  const batches: Array<{ token: string; samples: unknown[] }> = [];
  for (const [h, token] of agents.entries()) {
    for (let t = start; t < end; t += BATCH * 1000) {
      const samples = [];
      for (let s = t; s < t + BATCH * 1000; s += 1000) {
        const level = 1 + (h % 10);
        samples.push({
          time: new Date(s).toISOString(),
          values: {
            'Network In Total': level * 10_000 * (0.99 + Math.random() * 0.02),
            'Network Out Total': level * 20_000 * (0.99 + Math.random() * 0.02),
            'Percentage CPU': level * 5 * (0.99 + Math.random() * 0.02),
            'Available Memory Bytes': 4e9 - level * 1e8,
          },
        });
      }
      batches.push({ token, samples });
    }
  }
  const values = batches.length * BATCH * METRICS.length;
  process.stdout.write(`ingesting ${fmt.int(values)} metric values in ${fmt.int(batches.length)} batches…\n`);
  let next = 0;
  const ingest = await withPeakRss(async () => {
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        for (let i = next++; i < batches.length; i = next++) {
          const b = batches[i] as (typeof batches)[number];
          await call('POST', '/agent/v1/metrics', b.token, { samples: b.samples });
        }
      }),
    );
    return (performance.now() - t0) / 1000;
  });
  const ingestSeconds = ingest.result;

  // Rules: 1,000 over the whole subscription; thresholds above every host's level, so nothing fires.
  const group = await call(
    'PUT',
    `/subscriptions/${SUBSCRIPTION}/resourceGroups/bench/providers/Microsoft.Insights/actionGroups/oncall`,
    admin.token,
    {
      properties: {
        groupShortName: 'oncall',
        webhookReceivers: [{ name: 'hook', serviceUri: 'https://127.0.0.1:9/hook' }],
      },
    },
  );
  const rulesPath = `/subscriptions/${SUBSCRIPTION}/resourceGroups/bench/providers/Microsoft.Insights/metricAlerts`;
  let previous: string[] = [];
  /** Replaces the previous case's rules with this case's (new names: each rule is evaluated once per time). */
  async function putRules(tag: string, window: string, frequency: string, firing: number) {
    for (const name of previous) await call('DELETE', `${rulesPath}/${name}`, admin.token, undefined);
    previous = [];
    for (let r = 0; r < flags.rules; r++) {
      const metric = METRICS[r % METRICS.length] as string;
      const fires = r < firing;
      previous.push(`${tag}${r}`);
      await call('PUT', `${rulesPath}/${tag}${r}`, admin.token, {
        properties: {
          scopes: [`/subscriptions/${SUBSCRIPTION}`],
          evaluationFrequency: frequency,
          windowSize: window,
          criteria: {
            allOf: [
              {
                name: 'c',
                metricName: metric,
                timeAggregation: AGGREGATIONS[(r >> 2) % AGGREGATIONS.length],
                operator: fires ? 'GreaterThanOrEqual' : 'GreaterThan',
                threshold: fires ? 0 : 1e15,
              },
            ],
          },
          actions: [{ actionGroupId: group.id }],
        },
      });
    }
  }

  interface Case {
    name: string;
    window: string;
    frequency: string;
    firing: number;
    passes: Array<{ ms: number; vmsEvaluated: number; fired: number }>;
    peakRss: number;
  }
  const cases: Case[] = [];
  async function evaluate(
    tag: string,
    name: string,
    window: string,
    frequency: string,
    frequencyMs: number,
    firing: number,
  ) {
    process.stdout.write(`case ${name}: ${flags.rules} rules…\n`);
    await putRules(tag, window, frequency, firing);
    // A warm-up pass (JIT, SQLite cache), but where rules fire: its first pass is the one to measure.
    if (firing === 0) await monitor.evaluator.evaluateNow(end - flags.passes * frequencyMs);
    const passes: Case['passes'] = [];
    const measured = await withPeakRss(async () => {
      for (let p = 0; p < flags.passes; p++) {
        const t0 = performance.now();
        const r = await monitor.evaluator.evaluateNow(end - (flags.passes - 1 - p) * frequencyMs);
        passes.push({ ms: performance.now() - t0, vmsEvaluated: r.vmsEvaluated, fired: r.fired });
      }
    });
    cases.push({ name, window, frequency, firing, passes, peakRss: measured.peakRss });
  }
  await evaluate('minute', 'whole-minute windows (rollups)', 'PT5M', 'PT1M', 60_000, 0);
  await evaluate('raw', 'PT10S windows (raw samples)', 'PT10S', 'PT10S', 10_000, 0);
  const firing = Math.min(10, flags.rules);
  await evaluate('fire', `${firing} rules fire on every host`, 'PT1M', 'PT1M', 60_000, firing);

  const dbRows = await db
    .selectFrom('metric_samples')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  const json = {
    machine: machineInfo(),
    measuredAt: new Date().toISOString(),
    flags,
    ingest: {
      values,
      samples: batches.length * BATCH,
      batches: batches.length,
      seconds: ingestSeconds,
      valuesPerSecond: values / ingestSeconds,
      peakRss: ingest.peakRss,
      rawRowsStored: Number(dbRows.n),
    },
    cases: cases.map((c) => ({ ...c, median: stats(c.passes.map((p) => p.ms)) })),
  };
  const md = [
    '# Metric ingestion and alert evaluation',
    '',
    `Measured ${json.measuredAt} on ${json.machine.cores} cores (${json.machine.cpuModel}), Node ${process.version}, load average at start ${json.machine.loadAverageAtStart.join(' / ')}; one server process (HTTPS app, SQLite WAL on ${tmpdir()}).`,
    '',
    '## Ingest',
    '',
    `${flags.hosts} agents POST \`/agent/v1/metrics\` over HTTPS, ${BATCH} samples × ${METRICS.length} metrics a batch, ${IN_FLIGHT} batches in flight (raw rows and per-minute rollups written in one transaction per batch).`,
    '',
    mdTable(
      ['metric values', 'batches', 'seconds', 'values / s', 'host-seconds / s', 'peak RSS MiB'],
      [
        [
          fmt.int(values),
          fmt.int(batches.length),
          ingestSeconds.toFixed(1),
          fmt.int(values / ingestSeconds),
          fmt.int((batches.length * BATCH) / ingestSeconds),
          fmt.int(ingest.peakRss / 2 ** 20),
        ],
      ],
    ),
    '',
    `For scale: ${flags.hosts} agents at one sample a second of 6 metrics produce ${fmt.int(flags.hosts * 6)} values a second. The RSS is the whole process's: it also holds the benchmark's generated batches (all of them, made before the clock starts).`,
    '',
    '## One evaluation pass',
    '',
    `${flags.rules} rules, each over the subscription (${flags.hosts} hosts), one criterion each on one of ${METRICS.length} metrics (Total, Average, Maximum, Minimum in turn); ${flags.passes} passes after a warm-up pass. Time of \`evaluateNow\` (every rule × every host), and the process's peak RSS during the passes.`,
    '',
    mdTable(
      [
        'case',
        'window / frequency',
        'rule × host evaluations',
        'alerts fired in each pass',
        'median ms',
        'max ms',
        'peak RSS MiB',
      ],
      json.cases.map((c) => [
        c.name,
        `${c.window} / ${c.frequency}`,
        fmt.int(c.passes[0]?.vmsEvaluated ?? 0),
        c.passes.map((p) => fmt.int(p.fired)).join(', '),
        fmt.ms(c.median.median, 0),
        fmt.ms(c.median.max, 0),
        fmt.int(c.peakRss / 2 ** 20),
      ]),
      ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
    'In the firing case the alerts fire at the first pass only (stateful rules); the later passes find them open and write nothing.',
  ].join('\n');
  const files = await writeResults('alerts', json, md);
  await runCleanups();
  return files;
}

runIfMain(import.meta.url, 'alerts', runAlertsBench, { root: false, build: false });

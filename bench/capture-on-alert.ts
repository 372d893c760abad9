/**
 * Alert-to-Running latency of the capture-on-alert function against a real server and agent (`tripcap start` inside a
 * network namespace host, capturing on its veth). For each alert, from the moment the client sends the POST of an
 * Azure common-schema alert (a new alertId each time, aimed at the agent's VM) to `/api/capture-on-alert?code=KEY`:
 *   - 202:       until the function's 202 answer arrives (client side);
 *   - listening: until captureStartTime in the server's record: the agent's clock when tcpdump printed "listening on"
 *                (same machine, same clock; the record has millisecond resolution);
 *   - running:   until the client sees the capture's `packetCaptureStatus` Running. Every 10 ms the client reads the
 *                job (`GET /tripcap/v1/functions/capture-on-alert/jobs`) until it names its capture, then the
 *                capture's queryStatus until Running.
 * Then the capture is stopped (POST stop until its operation Succeeded), the client waits until the job is Completed
 * or Failed (the function reads the capture's status every TRIPCAP_CAPTURE_POLL_SECONDS, here 1 s) and deletes the
 * capture, so that every alert finds an idle VM and the same number of captures in the watcher.
 * For comparison, every 5th alert is followed by a plain PUT of the same capture on the same VM, measured the same
 * way (PUT → 201, → listening, → queryStatus Running).
 * The server gets TRIPCAP_CAPTURE_COOLDOWN_SECONDS=0 (else the second alert for the VM is refused for cooldown),
 * TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS=20 (a bound should a stop go astray) and TRIPCAP_CAPTURE_POLL_SECONDS=1.
 * With --keep-captures 1 the alerts' captures are not deleted, so the watcher holds one more at each alert (the
 * function lists and reads every capture of the watcher before it creates one).
 * Writes bench/results/capture-on-alert.{json,md}.
 *
 *   node --import tsx bench/capture-on-alert.ts [--alerts 50] [--warmup 2] [--put-every 5] [--poll-ms 10] [--gap-ms 250]
 *     [--keep-captures 0]
 *
 * Needs root (namespaces, tcpdump). No traffic is generated; the namespaces are deleted at the end.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { alertSamples } from '../test/alert-fixtures.js';
import { createTwoHosts } from '../test/netns.js';
import {
  type ArmClient,
  fmt,
  type LatencyFigures,
  latencyFigures,
  latencyRow,
  machineInfo,
  mdTable,
  numberFlags,
  onCleanup,
  runCleanups,
  runIfMain,
  SUBSCRIPTION,
  sleep,
  startTripcap,
  type Tripcap,
  waitForOperation,
  writeResults,
} from './lib.js';

const API = 'api-version=2024-05-01';
const TIME_LIMIT_SECONDS = 20;
const FUNCTION_POLL_SECONDS = 1;
/** What the function asks for when no TRIPCAP_CAPTURE_* says otherwise (src/functions/capture-function.ts). */
const FUNCTION_CAPTURE = {
  bytesToCapturePerPacket: 0,
  totalBytesPerSession: 1_073_741_824,
  timeLimitInSeconds: TIME_LIMIT_SECONDS,
  filters: [],
  storageLocation: {
    storageId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/tripcap/providers/Microsoft.Storage/storageAccounts/tripcap`,
  },
};

type Kind = 'alert' | 'put';

export interface AlertSample {
  kind: Kind;
  n: number;
  warmup: boolean;
  capture: string;
  /** POST → 202 (alert) or PUT → 201 (put). */
  answerMs: number;
  listeningMs: number;
  runningMs: number;
  /** Reads of the job until it named its capture (alert only), then of queryStatus until Running. */
  jobPolls: number;
  statusPolls: number;
  /** Stop → job Completed (alert) or stop operation Succeeded (put): not a latency figure, the pacing. */
  settleMs: number;
  jobStatus?: string;
  jobId?: string;
  /** Date.now() just before the request: the origin of the server-side stages. */
  wallStart: number;
  /**
   * Server-side steps from the server's records and log (its clock, millisecond resolution), from wallStart:
   * received: the job's receivedTime (the alert parsed and the VMs listed, before the job's transaction);
   * accepted: the log line 'alert received' (job recorded, 202 about to be sent);
   * created:  the log line 'packet capture created' (the capture service has stored the capture and queued its job).
   */
  stages?: { receivedMs?: number; acceptedMs?: number; createdMs?: number };
}

interface Job {
  id: string;
  status: string;
  receivedTime: string;
  reason: string | null;
  message: string | null;
  captureName: string | null;
}

interface Status {
  packetCaptureStatus: string;
  captureStartTime?: string;
  packetCaptureError?: string[];
}

/** A call that answers undefined for 404 (the capture the job names is created a moment after the name is saved). */
async function unless404<T>(fn: () => Promise<T>): Promise<T | undefined> {
  try {
    return await fn();
  } catch (err) {
    if (/HTTP 404 /.test((err as Error).message)) return undefined;
    throw err;
  }
}

/** Polls queryStatus every pollMs until the capture is past NotStarted. */
async function untilRunning(api: ArmClient, path: string, pollMs: number, deadline: number) {
  for (let polls = 1; ; polls++) {
    const status = await unless404(() => api.call<Status>('POST', `${path}/queryStatus?${API}`));
    const state = status?.body.packetCaptureStatus;
    if (state && state !== 'NotStarted') {
      if (state !== 'Running') throw new Error(`${path} went ${state}: ${JSON.stringify(status?.body)}`);
      return { status: status.body, polls };
    }
    if (performance.now() > deadline) throw new Error(`${path} not Running in time (${state ?? 'not found'})`);
    await sleep(pollMs);
  }
}

async function stopCapture(api: ArmClient, path: string, pollMs: number) {
  const stopped = await api.call('POST', `${path}/stop?${API}`);
  if (stopped.status === 202) {
    const op = await waitForOperation(api, String(stopped.headers['azure-asyncoperation']), {
      intervalMs: pollMs,
      timeoutMs: 30_000,
    });
    if (op.status !== 'Succeeded') throw new Error(`stop of ${path} ended ${op.status}`);
  }
}

async function getJob(api: ArmClient, jobId: string): Promise<Job | undefined> {
  const { body } = await api.call<{ value: Job[] }>('GET', '/tripcap/v1/functions/capture-on-alert/jobs?$top=5');
  return body.value.find((j) => j.id === jobId);
}

/** One alert: POST, follow the job to its capture and the capture to Running; stop it, wait for the job, delete. */
async function measureAlert(
  tripcap: Tripcap,
  post: (body: unknown) => Promise<{ status: number; body: unknown }>,
  alert: unknown,
  pollMs: number,
  keep: boolean,
): Promise<Omit<AlertSample, 'kind' | 'n' | 'warmup'>> {
  const { api } = tripcap;
  const wall0 = Date.now();
  const t0 = performance.now();
  const deadline = t0 + 30_000;
  const answer = await post(alert);
  const answerMs = performance.now() - t0;
  const result = (answer.body as { alerts?: Array<{ outcome: string; jobId: string; message?: string }> }).alerts?.[0];
  if (answer.status !== 202 || result?.outcome !== 'Accepted') {
    throw new Error(`the function answered ${answer.status} ${JSON.stringify(answer.body)}`);
  }
  let job: Job | undefined;
  let jobPolls = 0;
  for (;;) {
    jobPolls++;
    job = await getJob(api, result.jobId);
    if (job?.captureName) break;
    if (job && !['Creating', 'Capturing'].includes(job.status)) {
      throw new Error(`job ${result.jobId} is ${job.status}: ${job.reason} ${job.message}`);
    }
    if (performance.now() > deadline) throw new Error(`job ${result.jobId} named no capture in time`);
    await sleep(pollMs);
  }
  const capture = job.captureName;
  const path = `${tripcap.watcherPath}/packetCaptures/${capture}`;
  const { status, polls: statusPolls } = await untilRunning(api, path, pollMs, deadline);
  const runningMs = performance.now() - t0;
  if (!status.captureStartTime) throw new Error(`${capture} is Running without a captureStartTime`);
  const listeningMs = Date.parse(status.captureStartTime) - wall0;

  const s0 = performance.now();
  await stopCapture(api, path, pollMs);
  // The job ends when the function next reads the capture (every TRIPCAP_CAPTURE_POLL_SECONDS) and has told no one.
  for (;;) {
    job = await getJob(api, result.jobId);
    if (job && ['Completed', 'Failed'].includes(job.status)) break;
    if (performance.now() - s0 > 60_000)
      throw new Error(`job ${result.jobId} still ${job?.status} a minute after stop`);
    await sleep(50);
  }
  const settleMs = performance.now() - s0;
  if (!keep) await api.call('DELETE', `${path}?${API}`);
  return {
    capture,
    answerMs,
    listeningMs,
    runningMs,
    jobPolls,
    statusPolls,
    settleMs,
    jobStatus: `${job.status}${job.reason ? ` (${job.reason})` : ''}`,
    jobId: job.id,
    wallStart: wall0,
    stages: { receivedMs: Date.parse(job.receivedTime) - wall0 },
  };
}

/** The same capture created by a plain PUT, measured the same way. */
async function measurePut(
  tripcap: Tripcap,
  name: string,
  pollMs: number,
): Promise<Omit<AlertSample, 'kind' | 'n' | 'warmup'>> {
  const { api } = tripcap;
  const path = `${tripcap.watcherPath}/packetCaptures/${name}`;
  const wall0 = Date.now();
  const t0 = performance.now();
  const created = await api.call('PUT', `${path}?${API}`, {
    properties: { ...FUNCTION_CAPTURE, target: tripcap.vmId },
  });
  const answerMs = performance.now() - t0;
  if (created.status !== 201) throw new Error(`PUT answered ${created.status}`);
  const { status, polls: statusPolls } = await untilRunning(api, path, pollMs, t0 + 30_000);
  const runningMs = performance.now() - t0;
  if (!status.captureStartTime) throw new Error(`${name} is Running without a captureStartTime`);
  const listeningMs = Date.parse(status.captureStartTime) - wall0;
  const s0 = performance.now();
  await stopCapture(api, path, pollMs);
  const settleMs = performance.now() - s0;
  await api.call('DELETE', `${path}?${API}`);
  return { capture: name, answerMs, listeningMs, runningMs, jobPolls: 0, statusPolls, settleMs, wallStart: wall0 };
}

/** Adds the times of the server's log lines 'alert received' and 'packet capture created' to each sample. */
function addLoggedStages(samples: AlertSample[], log: string) {
  const lines: Array<{ time: string; msg: string; results?: string[]; capture?: string }> = [];
  for (const line of log.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      lines.push(JSON.parse(line));
    } catch {}
  }
  for (const s of samples) {
    const at = (l: { time: string } | undefined) => (l ? Date.parse(l.time) - s.wallStart : undefined);
    const accepted = lines.find((l) => l.msg === 'alert received' && l.results?.includes(`Accepted:${s.jobId}`));
    const created = lines.find(
      (l) => l.msg === 'packet capture created' && l.capture?.toLowerCase().endsWith(`/${s.capture.toLowerCase()}`),
    );
    s.stages = { ...s.stages, acceptedMs: s.jobId ? at(accepted) : undefined, createdMs: at(created) };
  }
}

export async function runCaptureOnAlertBench(argv: string[] = []) {
  const options = numberFlags(argv, { alerts: 50, warmup: 2, putEvery: 5, pollMs: 10, gapMs: 250, keepCaptures: 0 });
  const machine = machineInfo();
  const workDir = mkdtempSync(join(tmpdir(), 'tripcap-bench-'));
  onCleanup(() => rmSync(workDir, { recursive: true, force: true }));
  const hosts = await createTwoHosts();
  onCleanup(() => hosts.destroy());
  const env = {
    TRIPCAP_CAPTURE_COOLDOWN_SECONDS: '0',
    TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: String(TIME_LIMIT_SECONDS),
    TRIPCAP_CAPTURE_POLL_SECONDS: String(FUNCTION_POLL_SECONDS),
  };
  const tripcap = await startTripcap({ host: hosts.a, workDir, captureInterface: hosts.a.ifname, env });
  onCleanup(() => tripcap.stop());

  // The function key, sent as Azure's action groups do: `?code=KEY`, no Authorization header.
  const key = await tripcap.api.call<{ token: string }>('POST', '/tripcap/v1/tokens', {
    name: 'bench-capture-on-alert',
    role: 'function',
  });
  const functionUrl = `${tripcap.api.base}/api/capture-on-alert?code=${encodeURIComponent(key.body.token)}`;
  const dispatcher = new Agent({
    connect: { ca: readFileSync(join(workDir, 'tripcap-data', 'tls', 'cert.pem')), servername: 'localhost' },
  });
  onCleanup(() => dispatcher.close());
  const post = async (body: unknown) => {
    const response = await request(functionUrl, {
      method: 'POST',
      dispatcher,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    const text = await response.body.text();
    return { status: response.statusCode, body: text ? (JSON.parse(text) as unknown) : undefined };
  };

  const vmName = tripcap.vmId.split('/').pop() as string;
  const template = alertSamples({ id: tripcap.vmId, name: vmName, address: hosts.a.ip }).find(
    (s) => s.source === 'azure-common',
  );
  if (!template) throw new Error('no common-schema alert sample');
  const alertBody = (n: number) => {
    // biome-ignore lint/suspicious/noExplicitAny: the fixture's shape, edited by path.
    const body = structuredClone(template.body) as any;
    const id = `00000000-0000-4000-8000-${n.toString(16).padStart(12, '0')}`;
    body.data.essentials.alertId = `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.AlertsManagement/alerts/${id}`;
    body.data.essentials.firedDateTime = new Date().toISOString();
    return body;
  };

  const samples: AlertSample[] = [];
  const log = (s: AlertSample) =>
    process.stdout.write(
      `  ${s.kind} ${s.n}${s.warmup ? ' (warm-up)' : ''}: ${s.kind === 'alert' ? 'POST → 202' : 'PUT → 201'} ${s.answerMs.toFixed(1)} ms, listening ${s.listeningMs} ms, Running ${s.runningMs.toFixed(1)} ms (${s.jobPolls}+${s.statusPolls} polls)${s.jobStatus ? `, job ${s.jobStatus}` : ''}\n`,
    );
  const started = Date.now();
  let puts = 0;
  const put = async (warmup: boolean) => {
    await sleep(options.gapMs);
    const s: AlertSample = {
      kind: 'put',
      n: puts,
      warmup,
      ...(await measurePut(tripcap, `bench-put-${puts++}`, options.pollMs)),
    };
    samples.push(s);
    log(s);
  };
  await put(true);
  for (let i = 0; i < options.warmup + options.alerts; i++) {
    await sleep(options.gapMs);
    const warmup = i < options.warmup;
    const s: AlertSample = {
      kind: 'alert',
      n: i,
      warmup,
      ...(await measureAlert(tripcap, post, alertBody(i + 1), options.pollMs, options.keepCaptures > 0)),
    };
    samples.push(s);
    log(s);
    const counted = i - options.warmup + 1;
    if (!warmup && options.putEvery > 0 && counted % options.putEvery === 0) await put(false);
  }
  const elapsedSeconds = (Date.now() - started) / 1000;
  addLoggedStages(samples, readFileSync(join(workDir, 'tripcap.log'), 'utf8'));
  await runCleanups();

  const of = (kind: Kind) => samples.filter((s) => s.kind === kind && !s.warmup);
  const summaryOf = (kind: Kind) => ({
    count: of(kind).length,
    answerMs: latencyFigures(of(kind).map((s) => s.answerMs)),
    listeningMs: latencyFigures(of(kind).map((s) => s.listeningMs)),
    runningMs: latencyFigures(of(kind).map((s) => s.runningMs)),
    receivedMs: latencyFigures(of(kind).map((s) => s.stages?.receivedMs ?? Number.NaN)),
    acceptedMs: latencyFigures(of(kind).map((s) => s.stages?.acceptedMs ?? Number.NaN)),
    createdMs: latencyFigures(of(kind).map((s) => s.stages?.createdMs ?? Number.NaN)),
  });
  const summary = { alert: summaryOf('alert'), put: summaryOf('put') };
  const setup = {
    server:
      '`tripcap start` (server, agent and the capture-on-alert function in one process, HTTPS, SQLite) inside a network namespace',
    client: 'this process, over a separate veth into the namespace, HTTPS with keep-alive (undici)',
    alert: `Azure common alert schema (test/alert-fixtures.ts), a new alertId each, aimed at the agent's VM by resource id; POST /api/capture-on-alert?code=KEY with a function key`,
    capture: `the function's default (no filter, upload to the local store), timeLimitInSeconds ${TIME_LIMIT_SECONDS}, on the namespace's idle veth`,
    functionSettings: Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join(', '),
    alerts: options.alerts,
    warmup: `${options.warmup} alert(s) and 1 PUT first, not counted`,
    puts: `a plain PUT after every ${options.putEvery}th alert`,
    pollIntervalMs: options.pollMs,
    gapMs: `${options.gapMs} (before each alert and each PUT, once the previous job has ended)`,
    alertCaptures: options.keepCaptures
      ? 'kept after their job ended (--keep-captures 1): the watcher holds one more capture at each alert'
      : 'deleted once their job ended: the watcher holds no other capture at each alert',
    percentiles: `nearest rank: with ${options.alerts} alerts p99 is the ${options.alerts < 100 ? 'largest' : '99th percentile'}`,
  };
  const json = { benchmark: 'capture-on-alert', machine, setup, options, elapsedSeconds, summary, samples };
  return writeResults('capture-on-alert', json, markdown(json));
}

function markdown(r: {
  machine: ReturnType<typeof machineInfo>;
  setup: Record<string, string | number>;
  elapsedSeconds: number;
  summary: Record<
    Kind,
    { count: number } & Record<
      'answerMs' | 'listeningMs' | 'runningMs' | 'receivedMs' | 'acceptedMs' | 'createdMs',
      LatencyFigures
    >
  >;
  samples: AlertSample[];
}): string {
  const m = r.machine;

  const { alert, put } = r.summary;
  return [
    '# Alert-to-Running latency of capture-on-alert',
    '',
    `Measured ${m.dateUtc} on ${m.cores} cores (${m.cpuModel}), Linux ${m.kernel}, ${m.tcpdump}, Node ${m.node}; load average at start ${m.loadAverageAtStart.join(' / ')}. Took ${r.elapsedSeconds.toFixed(0)} s.`,
    '',
    ...Object.entries(r.setup).map(([k, v]) => `- ${k}: ${v}`),
    '',
    'Every time is from the moment the client sends the request. For an alert, the client reads the job every 10 ms until it names its capture, then the capture\'s queryStatus every 10 ms until `packetCaptureStatus` is `Running` (the server sets Running when the agent reports tcpdump listening). "tcpdump listening" is `captureStartTime` in the server\'s record: when the agent saw tcpdump\'s "listening on". Each capture is then stopped and, for an alert, its job followed to Completed, so every alert finds an idle VM; the capture is deleted (unless --keep-captures 1). The plain PUTs create the same capture on the same VM, between the alerts, measured the same way.',
    '',
    mdTable(
      ['', 'n', 'p50 ms', 'p99 ms', 'min ms', 'mean ms', 'max ms'],
      [
        [`**capture-on-alert** (POST alert)`, alert.count, '', '', '', '', ''],
        ['POST → job received (server: alert parsed, VMs listed)', '', ...latencyRow('', alert.receivedMs).slice(1)],
        ["POST → job recorded (server log 'alert received')", '', ...latencyRow('', alert.acceptedMs).slice(1)],
        ['POST → 202', '', ...latencyRow('', alert.answerMs).slice(1)],
        [
          "POST → capture created (server log 'packet capture created')",
          '',
          ...latencyRow('', alert.createdMs).slice(1),
        ],
        ['POST → tcpdump listening (`captureStartTime`)', '', ...latencyRow('', alert.listeningMs).slice(1)],
        ['**POST → Running** (queryStatus)', '', ...latencyRow('', alert.runningMs).slice(1)],
        ['**plain PUT** (same capture, same VM)', put.count, '', '', '', '', ''],
        ["PUT → capture created (server log 'packet capture created')", '', ...latencyRow('', put.createdMs).slice(1)],
        ['PUT → 201', '', ...latencyRow('', put.answerMs).slice(1)],
        ['PUT → tcpdump listening (`captureStartTime`)', '', ...latencyRow('', put.listeningMs).slice(1)],
        ['**PUT → Running** (queryStatus)', '', ...latencyRow('', put.runningMs).slice(1)],
      ],
    ),
    '',
    '## Every request',
    '',
    mdTable(
      [
        'kind',
        '#',
        'capture',
        '→ received',
        '→ recorded',
        '→ 202/201',
        '→ created',
        '→ listening',
        '→ Running',
        'job + status polls',
        'stop → settled',
        'job',
      ],
      r.samples.map((s) => [
        s.kind,
        s.warmup ? `${s.n} (warm-up)` : String(s.n),
        s.capture,
        s.stages?.receivedMs ?? '',
        s.stages?.acceptedMs ?? '',
        fmt.ms(s.answerMs),
        s.stages?.createdMs ?? '',
        String(s.listeningMs),
        fmt.ms(s.runningMs),
        `${s.jobPolls} + ${s.statusPolls}`,
        fmt.ms(s.settleMs, 0),
        s.jobStatus ?? '',
      ]),
      ['l', 'r', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
    '',
  ].join('\n');
}

runIfMain(import.meta.url, 'capture-on-alert', runCaptureOnAlertBench);

/**
 * Create-to-Running latency of a packet capture against a real server and agent (`tripcap start` inside a network
 * namespace host, capturing on its veth). For each capture, from the moment the client sends the PUT:
 *   - put:       until the 201 response arrives (client side);
 *   - listening: until captureStartTime in the server's record: the agent's clock when tcpdump printed
 *                "listening on" (same machine, same clock; the record has millisecond resolution);
 *   - running:   until the client sees the create's Azure-AsyncOperation report Succeeded, polled every 10 ms. The
 *                server flips that operation and the capture's status to Running in one transaction, when the agent
 *                reports that tcpdump is listening, so this is also "until queryStatus says Running" (checked).
 * Then the capture is stopped (stop: POST stop until its operation Succeeded, polled the same way) and deleted.
 *
 * Two ways of pacing the captures, each measured:
 *   - idle:         the client waits --gap-ms (default 1000) before each PUT and before each stop, so the agent is
 *                   idle in its job long-poll when the request comes: a create on a quiet host;
 *   - back-to-back: each PUT follows the previous capture's stop at once, and each stop follows Running at once.
 * The reference is bare `tcpdump -i IF -w FILE`: spawn until "listening on", and SIGTERM until exit.
 * Writes bench/results/create-latency.{json,md}.
 *
 *   node --import tsx bench/create-latency.ts [--captures 20] [--warmup 1] [--poll-ms 10] [--gap-ms 1000]
 *
 * Needs root (namespaces, tcpdump). No traffic is generated; the namespaces are deleted at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTwoHosts } from '../test/netns.js';
import {
  fmt,
  inNetns,
  type LatencyFigures,
  latencyFigures,
  latencyRow,
  machineInfo,
  mdTable,
  numberFlags,
  onCleanup,
  runCleanups,
  runIfMain,
  sleep,
  spawnProcess,
  startTripcap,
  type Tripcap,
  waitForOperation,
  writeResults,
} from './lib.js';

type Mode = 'idle' | 'back-to-back';

export interface LatencySample {
  mode: Mode;
  capture: string;
  warmup: boolean;
  putMs: number;
  listeningMs: number;
  runningMs: number;
  runningPolls: number;
  stopMs: number;
  captureStartTime: string;
}

/** One capture: PUT, wait for Running, (gap), stop, wait for the stop, delete. */
async function measureOne(
  tripcap: Tripcap,
  name: string,
  options: { pollMs: number; gapMs: number },
): Promise<Omit<LatencySample, 'mode' | 'warmup'>> {
  const { api } = tripcap;
  const poll = { intervalMs: options.pollMs, timeoutMs: 30_000 };
  const path = `${tripcap.watcherPath}/packetCaptures/${name}`;
  const body = {
    properties: {
      target: tripcap.vmId,
      storageLocation: { filePath: join(tripcap.captureRoot, `${name}.cap`) },
      timeLimitInSeconds: 60,
    },
  };
  const wall0 = Date.now();
  const t0 = performance.now();
  const created = await api.call('PUT', `${path}?api-version=2024-05-01`, body);
  const putMs = performance.now() - t0;
  if (created.status !== 201) throw new Error(`PUT answered ${created.status}`);
  const op = await waitForOperation(api, String(created.headers['azure-asyncoperation']), poll);
  const runningMs = performance.now() - t0;
  if (op.status !== 'Succeeded') throw new Error(`create of ${name} ended ${op.status}`);
  const status = await api.call<{ packetCaptureStatus: string; captureStartTime?: string }>(
    'POST',
    `${path}/queryStatus?api-version=2024-05-01`,
  );
  if (status.body.packetCaptureStatus !== 'Running' || !status.body.captureStartTime) {
    throw new Error(`create Succeeded but queryStatus says ${JSON.stringify(status.body)}`);
  }
  const listeningMs = Date.parse(status.body.captureStartTime) - wall0;

  if (options.gapMs > 0) await sleep(options.gapMs);
  const s0 = performance.now();
  const stopped = await api.call('POST', `${path}/stop?api-version=2024-05-01`);
  if (stopped.status === 202) {
    const stopOp = await waitForOperation(api, String(stopped.headers['azure-asyncoperation']), poll);
    if (stopOp.status !== 'Succeeded') throw new Error(`stop of ${name} ended ${stopOp.status}`);
  }
  const stopMs = performance.now() - s0;
  await api.call('DELETE', `${path}?api-version=2024-05-01`);
  return {
    capture: name,
    putMs,
    listeningMs,
    runningMs,
    runningPolls: op.polls,
    stopMs,
    captureStartTime: status.body.captureStartTime,
  };
}

/** The reference: a bare `tcpdump -i IF -w FILE`, from spawn to "listening on", and from SIGTERM to exit. */
async function bareTcpdump(ns: string, ifname: string, file: string) {
  const t0 = performance.now();
  const tcpdump = spawnProcess(inNetns(ns, ['tcpdump', '-i', ifname, '-w', file]));
  await tcpdump.waitFor(/listening on /, 10_000);
  const listeningMs = performance.now() - t0;
  const s0 = performance.now();
  await tcpdump.stop(5000);
  return { listeningMs, stopMs: performance.now() - s0 };
}

export async function runCreateLatency(argv: string[] = []) {
  const options = numberFlags(argv, { captures: 20, warmup: 1, pollMs: 10, gapMs: 1000 });
  const machine = machineInfo();
  const workDir = mkdtempSync(join(tmpdir(), 'tripcap-bench-'));
  onCleanup(() => rmSync(workDir, { recursive: true, force: true }));
  const hosts = await createTwoHosts();
  onCleanup(() => hosts.destroy());
  const tripcap = await startTripcap({ host: hosts.a, workDir, captureInterface: hosts.a.ifname });
  onCleanup(() => tripcap.stop());

  const samples: LatencySample[] = [];
  const started = Date.now();
  let n = 0;
  for (const mode of ['idle', 'back-to-back'] as const) {
    const gapMs = mode === 'idle' ? options.gapMs : 0;
    for (let i = 0; i < options.warmup + options.captures; i++) {
      if (gapMs > 0) await sleep(gapMs);
      const warmup = i < options.warmup;
      const s = { mode, warmup, ...(await measureOne(tripcap, `latency-${n++}`, { pollMs: options.pollMs, gapMs })) };
      samples.push(s);
      process.stdout.write(
        `  ${mode} ${s.capture}${warmup ? ' (warm-up)' : ''}: put ${s.putMs.toFixed(1)} ms, listening ${s.listeningMs} ms, running ${s.runningMs.toFixed(1)} ms (${s.runningPolls} polls), stop ${s.stopMs.toFixed(1)} ms\n`,
      );
    }
  }
  const reference: Array<{ listeningMs: number; stopMs: number }> = [];
  for (let i = 0; i < options.warmup + options.captures; i++) {
    const r = await bareTcpdump(hosts.a.ns, hosts.a.ifname, join(workDir, `bare-${i}.cap`));
    if (i >= options.warmup) reference.push(r);
  }
  const elapsedSeconds = (Date.now() - started) / 1000;
  await runCleanups();

  const of = (mode: Mode) => samples.filter((s) => s.mode === mode && !s.warmup);
  const modeSummary = (mode: Mode) => ({
    captures: of(mode).length,
    putMs: latencyFigures(of(mode).map((s) => s.putMs)),
    listeningMs: latencyFigures(of(mode).map((s) => s.listeningMs)),
    runningMs: latencyFigures(of(mode).map((s) => s.runningMs)),
    stopMs: latencyFigures(of(mode).map((s) => s.stopMs)),
  });
  const summary = {
    idle: modeSummary('idle'),
    backToBack: modeSummary('back-to-back'),
    bareTcpdump: {
      captures: reference.length,
      listeningMs: latencyFigures(reference.map((r) => r.listeningMs)),
      stopMs: latencyFigures(reference.map((r) => r.stopMs)),
    },
  };
  const setup = {
    server: '`tripcap start` (server and agent in one process, HTTPS, SQLite) inside a network namespace',
    client: 'this process, over a separate veth into the namespace, HTTPS with keep-alive (undici)',
    capture: "no filter, storageLocation.filePath (no upload), on the namespace's idle veth",
    capturesPerMode: options.captures,
    warmup: `${options.warmup} capture(s) before each mode, not counted`,
    pollIntervalMs: options.pollMs,
    idleGapMs: options.gapMs,
    percentiles: `nearest rank: with ${options.captures} samples p99 is the ${options.captures <= 100 ? 'largest' : '99th percentile'}`,
  };
  const json = { benchmark: 'create-latency', machine, setup, options, elapsedSeconds, summary, samples, reference };
  const files = await writeResults('create-latency', json, markdown(json));
  return { ...files, summary };
}

function markdown(r: {
  machine: ReturnType<typeof machineInfo>;
  setup: Record<string, string | number>;
  elapsedSeconds: number;
  summary: {
    idle: {
      putMs: LatencyFigures;
      listeningMs: LatencyFigures;
      runningMs: LatencyFigures;
      stopMs: LatencyFigures;
    };
    backToBack: {
      putMs: LatencyFigures;
      listeningMs: LatencyFigures;
      runningMs: LatencyFigures;
      stopMs: LatencyFigures;
    };
    bareTcpdump: { listeningMs: LatencyFigures; stopMs: LatencyFigures };
  };
  samples: LatencySample[];
}): string {
  const m = r.machine;

  const { idle, backToBack, bareTcpdump: bare } = r.summary;
  return [
    '# Create-to-Running latency of a packet capture',
    '',
    `Measured ${m.dateUtc} on ${m.cores} cores (${m.cpuModel}), Linux ${m.kernel}, ${m.tcpdump}, Node ${m.node}; load average at start ${m.loadAverageAtStart.join(' / ')}. Took ${r.elapsedSeconds.toFixed(0)} s.`,
    '',
    ...Object.entries(r.setup).map(([k, v]) => `- ${k}: ${v}`),
    '',
    'Every time is from the moment the client sends the request. "Running" is the create\'s Azure-AsyncOperation turning `Succeeded` as the client sees it (polled every 10 ms), which the server does in the same transaction that sets `packetCaptureStatus` to `Running`. "tcpdump listening" is `captureStartTime` in the server\'s record: when the agent saw tcpdump\'s "listening on".',
    '',
    mdTable(
      ['', 'p50 ms', 'p99 ms', 'min ms', 'mean ms', 'max ms'],
      [
        ['**idle agent** (create on a quiet host)', '', '', '', '', ''],
        latencyRow('PUT → 201', idle.putMs),
        latencyRow('PUT → tcpdump listening (`captureStartTime`)', idle.listeningMs),
        latencyRow('**PUT → Running** (operation `Succeeded`)', idle.runningMs),
        latencyRow('POST stop → stop operation `Succeeded`', idle.stopMs),
        ['**back-to-back** (each request right after the previous state change)', '', '', '', '', ''],
        latencyRow('PUT → 201', backToBack.putMs),
        latencyRow('PUT → tcpdump listening (`captureStartTime`)', backToBack.listeningMs),
        latencyRow('**PUT → Running** (operation `Succeeded`)', backToBack.runningMs),
        latencyRow('POST stop → stop operation `Succeeded`', backToBack.stopMs),
        ['**reference: bare `tcpdump -i IF -w FILE`**', '', '', '', '', ''],
        latencyRow('spawn → "listening on"', bare.listeningMs),
        latencyRow('SIGTERM → exit', bare.stopMs),
      ],
    ),
    '',
    'An Azure SDK poller honours `Retry-After: 1`, so with the official client a create completes about one second later than "Running" here.',
    '',
    '## Every capture',
    '',
    mdTable(
      ['mode', 'capture', 'PUT → 201', 'PUT → listening', 'PUT → Running', 'polls', 'stop'],
      r.samples.map((s) => [
        s.mode,
        s.warmup ? `${s.capture} (warm-up)` : s.capture,
        fmt.ms(s.putMs),
        String(s.listeningMs),
        fmt.ms(s.runningMs),
        s.runningPolls,
        fmt.ms(s.stopMs),
      ]),
      ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
    ),
    '',
  ].join('\n');
}

runIfMain(import.meta.url, 'create-latency', runCreateLatency);

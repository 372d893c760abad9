/**
 * Capture throughput: the same 64-byte UDP flood between two network namespaces, captured by bare tcpdump (the
 * reference, as a user would run it), through tripcap (server + agent in the capturing namespace, capture created
 * through the API), and by bare tcpdump with the agent's exact flags (and with each of its two buffering flags
 * left out), to tell the cost of the flags from the cost of the agent. Writes bench/results/capture-throughput.{json,md}.
 *
 *   node --import tsx bench/capture-throughput.ts [--seconds 5] [--runs 3] [--pps 0] [--settle-ms 500] [--drain-ms 1500]
 *
 * Needs root. Traffic goes only between the two namespaces it makes; they are deleted at the end (also on Ctrl-C).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildTcpdumpArgv } from '../src/agent/capture-engine.js';
import { scanPcapFile } from '../src/pcap/classic.js';
import { snaplenFor } from '../src/watcher/parameters.js';
import { createTwoHosts, type TwoHosts } from '../test/netns.js';
import {
  BENCH_DIR,
  countFloodPackets,
  cpuBusyPercent,
  cpuSeconds,
  cpuTimes,
  findTcpdumpWriting,
  fmt,
  inNetns,
  interfaceMac,
  interfaceRx,
  machineInfo,
  mdTable,
  numberFlags,
  onCleanup,
  pinned,
  runCleanups,
  runIfMain,
  type Spawned,
  sleep,
  spawnProcess,
  startTripcap,
  stats,
  type Tripcap,
  waitForOperation,
  writeResults,
} from './lib.js';

const FLOOD_PORT = 9000;
/** The generator runs on this CPU, the capture side (tcpdump, or tripcap and its tcpdump) on the other. */
const GENERATOR_CPU = 0;
const CAPTURE_CPU = 1;

interface Variant {
  name: string;
  description: string;
  /** argv for a bare tcpdump, or undefined for the capture through tripcap */
  argv?: (ifname: string, file: string) => string[];
}

/** The agent's tcpdump argv for a capture with no filter and Azure's default bytesToCapturePerPacket (0 = all). */
function agentArgv(ifname: string, file: string): string[] {
  return buildTcpdumpArgv({
    interface: ifname,
    bpf: '',
    snaplen: snaplenFor(0),
    outFile: file,
    maxBytes: 0,
    timeLimitSeconds: 0,
  });
}

const VARIANTS: Variant[] = [
  {
    name: 'tcpdump',
    description: 'reference: bare `tcpdump -i IF -w FILE` (default flags, as a user would run it)',
    argv: (ifname, file) => ['tcpdump', '-i', ifname, '-w', file],
  },
  {
    name: 'tripcap',
    description: 'through tripcap: `tripcap start` in the namespace, capture created with PUT (no filter, filePath)',
  },
  {
    name: 'tcpdump+agent-flags',
    description: "bare tcpdump with the agent's exact argv (buildTcpdumpArgv)",
    argv: agentArgv,
  },
  {
    name: 'agent-flags+immediate',
    description:
      "the agent's argv plus `--immediate-mode` (diagnostic: the agent's flags before this benchmark showed its drops)",
    argv: (ifname, file) => agentArgv(ifname, file).flatMap((a) => (a === '-U' ? ['-U', '--immediate-mode'] : [a])),
  },
  {
    name: 'agent-flags−U',
    description: "the agent's argv without `-U` (diagnostic)",
    argv: (ifname, file) => agentArgv(ifname, file).filter((a) => a !== '-U'),
  },
];

/** A load: the flood as fast as the generator goes (every variant), or paced to a fixed rate (a few variants). */
interface Scenario {
  name: string;
  description: string;
  /** 0 = as fast as possible */
  pps: number;
  variants: Variant[];
}

export interface ThroughputRun {
  scenario: string;
  variant: string;
  round: number;
  argv: string[];
  /** generator's own figures */
  sent: number;
  floodSeconds: number;
  offeredPps: number;
  /** packets received on the capturing interface during the run (ip -s link), i.e. what the capture could see */
  arrived: number;
  /** records in the file (scanPcapFile) and, of those, the flood's frames */
  fileRecords: number;
  inFile: number;
  fileBytes: number;
  /** tcpdump's "packets dropped by kernel" (bare), or the agent's reported kernelDrops (queryStatus files[0]) */
  kernelDrops: number;
  /** tcpdump's "packets captured" (bare: its stderr; tripcap: queryStatus packetsCaptured) */
  tcpdumpCaptured: number;
  /** arrived − in file − kernel drops: lost without being counted (e.g. left in the ring at exit) */
  unaccounted: number;
  /** in file / arrived */
  captureRate: number;
  /** CPU seconds (user+system) of tcpdump from flood start to just before the stop, and as % of one core */
  tcpdumpCpuSeconds: number;
  tcpdumpCpuPercent: number;
  /** tripcap only: CPU of the tripcap process (server + agent) in the same window, % of one core */
  tripcapCpuPercent?: number;
  /** tripcap only: the agent's own packet count of the file (queryStatus files[0].packets) */
  agentFilePackets?: number;
  /** how busy each CPU was during the flood (all processes: shows interference from anything else running) */
  cpuBusyPercent: number[];
  /** 1-minute load average at the end of the flood */
  loadAverage: number;
}

interface Context {
  hosts: TwoHosts;
  floodBinary: string;
  captureMac: string;
  workDir: string;
  options: { seconds: number; settleMs: number; drainMs: number };
}

async function flood(ctx: Context, pps: number): Promise<{ sent: number; seconds: number; pps: number }> {
  const { a, b } = ctx.hosts;
  const argv = pinned(
    GENERATOR_CPU,
    inNetns(b.ns, [
      ctx.floodBinary,
      'send-raw',
      b.ifname,
      ctx.captureMac,
      b.ip,
      a.ip,
      String(FLOOD_PORT),
      String(ctx.options.seconds),
      String(pps),
    ]),
  );
  const proc = spawnProcess(argv);
  const code = await proc.exited;
  if (code !== 0) throw new Error(`flood generator failed (${code}): ${proc.stderr()}`);
  const result = JSON.parse(proc.stdout().trim()) as { sent: number; seconds: number; pps: number };
  return result;
}

/** The common middle of a run: settle, counters, flood, drain, counters. */
async function measure(ctx: Context, pps: number, tcpdumpPid: number, tripcapPid?: number) {
  const { a } = ctx.hosts;
  await sleep(ctx.options.settleMs);
  const rx0 = await interfaceRx(a.ns, a.ifname);
  const cpu0 = cpuSeconds(tcpdumpPid);
  const node0 = tripcapPid ? cpuSeconds(tripcapPid) : Number.NaN;
  const times0 = cpuTimes();
  const sent = await flood(ctx, pps);
  const times1 = cpuTimes();
  await sleep(ctx.options.drainMs);
  const cpu1 = cpuSeconds(tcpdumpPid);
  const node1 = tripcapPid ? cpuSeconds(tripcapPid) : Number.NaN;
  const rx1 = await interfaceRx(a.ns, a.ifname);
  const cpu = cpu1 - cpu0;
  return {
    sent,
    arrived: rx1.packets - rx0.packets,
    cpu,
    cpuPercent: (cpu / sent.seconds) * 100,
    tripcapCpuPercent: tripcapPid ? ((node1 - node0) / sent.seconds) * 100 : undefined,
    cpuBusyPercent: cpuBusyPercent(times0, times1),
    loadAverage: loadavg()[0] ?? Number.NaN,
  };
}

async function scan(file: string) {
  const total = await scanPcapFile(file);
  const counted = countFloodPackets(file, FLOOD_PORT);
  return { fileRecords: total.packets, inFile: counted.flood, fileBytes: statSync(file).size };
}

async function runBare(ctx: Context, scenario: Scenario, variant: Variant, round: number): Promise<ThroughputRun> {
  const { a } = ctx.hosts;
  const file = join(ctx.workDir, `${scenario.name}-${variant.name.replace(/[^a-z0-9]+/gi, '_')}-${round}.cap`);
  const argv = (variant.argv as NonNullable<Variant['argv']>)(a.ifname, file);
  const tcpdump: Spawned = spawnProcess(pinned(CAPTURE_CPU, inNetns(a.ns, argv)));
  await tcpdump.waitFor(/listening on /, 10_000);
  const m = await measure(ctx, scenario.pps, tcpdump.pid);
  await tcpdump.stop(10_000);
  const text = tcpdump.stderr();
  const num = (re: RegExp) => Number(re.exec(text)?.[1] ?? Number.NaN);
  const kernelDrops = num(/(\d+) packets? dropped by kernel/);
  const f = await scan(file);
  rmSync(file, { force: true });
  return {
    scenario: scenario.name,
    variant: variant.name,
    round,
    argv,
    sent: m.sent.sent,
    floodSeconds: m.sent.seconds,
    offeredPps: m.sent.pps,
    arrived: m.arrived,
    ...f,
    kernelDrops,
    tcpdumpCaptured: num(/(\d+) packets? captured/),
    unaccounted: m.arrived - f.inFile - kernelDrops,
    captureRate: f.inFile / m.arrived,
    tcpdumpCpuSeconds: m.cpu,
    tcpdumpCpuPercent: m.cpuPercent,
    cpuBusyPercent: m.cpuBusyPercent,
    loadAverage: m.loadAverage,
  };
}

interface StatusView {
  packetCaptureStatus: string;
  packetsCaptured: number;
  files: Array<{ packets: number; kernelDrops: number; localPath: string | null }>;
}

async function runTripcap(
  ctx: Context,
  tripcap: Tripcap,
  scenario: Scenario,
  variant: Variant,
  round: number,
): Promise<ThroughputRun> {
  const { api } = tripcap;
  const file = join(tripcap.captureRoot, `${scenario.name}-${round}.cap`);
  const capturePath = `${tripcap.watcherPath}/packetCaptures/${scenario.name}-${round}`;
  const created = await api.call('PUT', `${capturePath}?api-version=2024-05-01`, {
    properties: { target: tripcap.vmId, storageLocation: { filePath: file }, timeLimitInSeconds: 600 },
  });
  const op = await waitForOperation(api, String(created.headers['azure-asyncoperation']), {
    intervalMs: 10,
    timeoutMs: 30_000,
  });
  if (op.status !== 'Succeeded') throw new Error(`capture did not start: operation ${op.status}`);
  const pid = findTcpdumpWriting(file);
  if (!pid) throw new Error(`the agent's tcpdump writing ${file} was not found`);
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const m = await measure(ctx, scenario.pps, pid, tripcap.process.pid);
  await api.call('POST', `${capturePath}/stop?api-version=2024-05-01`);
  let status: StatusView | undefined;
  const deadline = Date.now() + 60_000;
  for (;;) {
    status = (await api.call<StatusView>('POST', `${capturePath}/queryStatus?api-version=2024-05-01`)).body;
    if (status.packetCaptureStatus !== 'Running' && status.files.length > 0) break;
    if (Date.now() > deadline) {
      const log = `${tripcap.process.stdout()}${tripcap.process.stderr()}`.slice(-4000);
      throw new Error(`capture did not end within 60 s: ${JSON.stringify(status)}\ntripcap log:\n${log}`);
    }
    await sleep(50);
  }
  const [first] = status.files;
  const f = await scan(file);
  rmSync(file, { force: true });
  await api.call('DELETE', `${capturePath}?api-version=2024-05-01`);
  const kernelDrops = first?.kernelDrops ?? Number.NaN;
  return {
    scenario: scenario.name,
    variant: variant.name,
    round,
    argv,
    sent: m.sent.sent,
    floodSeconds: m.sent.seconds,
    offeredPps: m.sent.pps,
    arrived: m.arrived,
    ...f,
    kernelDrops,
    tcpdumpCaptured: status.packetsCaptured,
    unaccounted: m.arrived - f.inFile - kernelDrops,
    captureRate: f.inFile / m.arrived,
    tcpdumpCpuSeconds: m.cpu,
    tcpdumpCpuPercent: m.cpuPercent,
    ...(m.tripcapCpuPercent !== undefined ? { tripcapCpuPercent: m.tripcapCpuPercent } : {}),
    agentFilePackets: first?.packets ?? Number.NaN,
    cpuBusyPercent: m.cpuBusyPercent,
    loadAverage: m.loadAverage,
  };
}

function buildFloodBinary(dir: string): string {
  const out = join(dir, 'udp-flood');
  try {
    execFileSync('gcc', ['-O2', '-Wall', '-o', out, join(BENCH_DIR, 'udp-flood.c')], { stdio: 'pipe' });
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    throw new Error(`building bench/udp-flood.c with gcc failed (apt-get install gcc): ${e.stderr ?? e.message}`);
  }
  return out;
}

function summarize(v: Variant, scenarioRuns: ThroughputRun[]) {
  const rs = scenarioRuns.filter((r) => r.variant === v.name);
  return {
    variant: v.name,
    description: v.description,
    argv: rs[0]?.argv ?? [],
    runs: rs.length,
    offeredPps: stats(rs.map((r) => r.offeredPps)),
    arrived: stats(rs.map((r) => r.arrived)),
    inFile: stats(rs.map((r) => r.inFile)),
    captureRate: stats(rs.map((r) => r.captureRate)),
    kernelDrops: stats(rs.map((r) => r.kernelDrops)),
    unaccounted: stats(rs.map((r) => r.unaccounted)),
    tcpdumpCpuPercent: stats(rs.map((r) => r.tcpdumpCpuPercent)),
    tripcapCpuPercent: stats(rs.map((r) => r.tripcapCpuPercent ?? Number.NaN)),
  };
}

type VariantSummary = ReturnType<typeof summarize>;

/** One sentence per variant against the reference (the first): capture rate and drops, from the means. */
function comparison(variants: VariantSummary[]): string[] {
  const [ref, ...others] = variants;
  if (!ref || others.length === 0) return [];
  return [
    ...others.map(
      (v) =>
        `- \`${v.variant}\` kept ${fmt.pct(v.captureRate.mean, 2)} of the arrived packets (kernel drops ${fmt.pct(v.kernelDrops.mean / v.arrived.mean, 2)}) at ${fmt.kpps(v.offeredPps.mean)} pps offered, against ${fmt.pct(ref.captureRate.mean, 2)} (drops ${fmt.pct(ref.kernelDrops.mean / ref.arrived.mean, 2)}) at ${fmt.kpps(ref.offeredPps.mean)} pps for \`${ref.variant}\`; tcpdump CPU ${v.tcpdumpCpuPercent.mean.toFixed(0)} % vs ${ref.tcpdumpCpuPercent.mean.toFixed(0)} % of a core.`,
    ),
    '',
  ];
}

export async function runCaptureThroughput(argv: string[] = []) {
  const options = numberFlags(argv, { seconds: 5, runs: 3, pps: 0, pacedPps: 100_000, settleMs: 500, drainMs: 1500 });
  const machine = machineInfo();
  const workDir = mkdtempSync(join(tmpdir(), 'tripcap-bench-'));
  onCleanup(() => rmSync(workDir, { recursive: true, force: true }));
  const floodBinary = buildFloodBinary(workDir);
  const hosts = await createTwoHosts();
  onCleanup(() => hosts.destroy());
  const { a } = hosts;
  const captureMac = await interfaceMac(a.ns, a.ifname);
  // A socket bound to the flood's port that never reads: datagrams end there quietly (no ICMP replies).
  const sink = spawnProcess(inNetns(a.ns, [floodBinary, 'sink', String(FLOOD_PORT), '3600']));
  await sink.waitFor(/"sink"/, 5000);
  const tripcap = await startTripcap({ host: a, workDir, captureInterface: a.ifname, cpu: CAPTURE_CPU });
  onCleanup(() => tripcap.stop());

  const ctx: Context = { hosts, floodBinary, captureMac, workDir, options };
  const scenarios: Scenario[] = [
    {
      name: 'flood',
      description: 'as fast as the generator sends (one core), every variant',
      pps: options.pps,
      variants: VARIANTS,
    },
  ];
  if (options.pacedPps > 0) {
    scenarios.push({
      name: 'paced',
      description: `paced at ${fmt.int(options.pacedPps)} packets/s: a busy host rather than a flood`,
      pps: options.pacedPps,
      variants: VARIANTS.filter((v) => v.name === 'tcpdump' || v.name === 'tripcap'),
    });
  }
  const runs: ThroughputRun[] = [];
  const started = Date.now();
  for (const scenario of scenarios) {
    const { variants } = scenario;
    for (let round = 1; round <= options.runs; round++) {
      // Each round starts with another variant, so that a slow patch of the machine does not hit one variant only.
      const order = variants.map((_, i) => variants[(i + round - 1) % variants.length] as Variant);
      for (const variant of order) {
        const result = variant.argv
          ? await runBare(ctx, scenario, variant, round)
          : await runTripcap(ctx, tripcap, scenario, variant, round);
        runs.push(result);
        process.stdout.write(
          `  ${scenario.name} ${variant.name.padEnd(22)} round ${round}: offered ${fmt.kpps(result.offeredPps)} pps, arrived ${fmt.int(result.arrived)}, in file ${fmt.int(result.inFile)} (${fmt.pct(result.captureRate)}), kernel drops ${fmt.int(result.kernelDrops)}, tcpdump CPU ${result.tcpdumpCpuPercent.toFixed(0)} %\n`,
        );
      }
    }
  }
  const elapsedSeconds = (Date.now() - started) / 1000;
  await runCleanups();

  const summary = scenarios.map((scenario) => ({
    scenario: scenario.name,
    description: scenario.description,
    pps: scenario.pps,
    variants: scenario.variants.map((v) =>
      summarize(
        v,
        runs.filter((r) => r.scenario === scenario.name),
      ),
    ),
  }));
  const setup = {
    frame: '64 bytes on the wire: 14 Ethernet + 20 IPv4 + 8 UDP + 22 payload (no FCS on a veth)',
    generator:
      'bench/udp-flood.c send-raw: AF_PACKET socket, PACKET_QDISC_BYPASS, sendmmsg batches of 64, ready-made frames',
    floodSecondsPerRun: options.seconds,
    runsPerVariant: options.runs,
    settleMs: options.settleMs,
    drainMs: options.drainMs,
    pinning:
      machine.cores >= 2
        ? `generator on CPU ${GENERATOR_CPU}, capture side (tcpdump, or tripcap and its tcpdump) on CPU ${CAPTURE_CPU}`
        : 'none (one core)',
    path: 'namespace B veth → namespace A veth (captured there) → a bound UDP socket that never reads (silent drop)',
    tripcapStorage: 'storageLocation.filePath (a file on the host, no upload)',
  };
  const json = { benchmark: 'capture-throughput', machine, setup, options, elapsedSeconds, summary, runs };
  const files = await writeResults('capture-throughput', json, markdown(json));
  return { ...files, summary };
}

function markdown(r: {
  machine: ReturnType<typeof machineInfo>;
  setup: Record<string, string | number>;
  elapsedSeconds: number;
  summary: Array<{ scenario: string; description: string; pps: number; variants: VariantSummary[] }>;
  runs: ThroughputRun[];
}): string {
  const summaryTable = (variants: VariantSummary[]) => {
    const ref = variants[0];
    const rows = variants.map((s) => [
      s.variant === ref?.variant ? `**${s.variant}** (reference)` : s.variant,
      `${fmt.kpps(s.offeredPps.mean)} (${fmt.kpps(s.offeredPps.min)}–${fmt.kpps(s.offeredPps.max)})`,
      fmt.int(s.arrived.mean),
      fmt.int(s.inFile.mean),
      `${fmt.pct(s.captureRate.mean, 2)} (min ${fmt.pct(s.captureRate.min, 2)})`,
      `${fmt.int(s.kernelDrops.mean)} (max ${fmt.int(s.kernelDrops.max)})`,
      fmt.int(s.unaccounted.mean),
      `${s.tcpdumpCpuPercent.mean.toFixed(0)} %`,
      Number.isFinite(s.tripcapCpuPercent.mean) ? `${s.tripcapCpuPercent.mean.toFixed(1)} %` : '–',
    ]);
    return mdTable(
      [
        'variant',
        'offered pps',
        'arrived',
        'in file',
        'captured / arrived',
        'kernel drops',
        'unaccounted',
        'tcpdump CPU',
        'tripcap process CPU',
      ],
      rows,
    );
  };
  const runRows = r.runs.map((x) => [
    x.scenario,
    x.variant,
    x.round,
    fmt.int(x.sent),
    fmt.kpps(x.offeredPps),
    fmt.int(x.arrived),
    fmt.int(x.inFile),
    fmt.pct(x.captureRate, 2),
    fmt.int(x.kernelDrops),
    fmt.int(x.tcpdumpCaptured),
    fmt.int(x.unaccounted),
    `${x.tcpdumpCpuSeconds.toFixed(2)} s (${x.tcpdumpCpuPercent.toFixed(0)} %)`,
    x.cpuBusyPercent.map((b) => `${b.toFixed(0)} %`).join(' / '),
    x.loadAverage.toFixed(2),
  ]);
  const m = r.machine;
  return [
    '# Capture throughput: tripcap vs bare tcpdump on a 64-byte UDP flood',
    '',
    `Measured ${m.dateUtc} on ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, Linux ${m.kernel}, ${m.tcpdump}, Node ${m.node}; load average at start ${m.loadAverageAtStart.join(' / ')}. Took ${r.elapsedSeconds.toFixed(0)} s.`,
    '',
    ...Object.entries(r.setup).map(([k, v]) => `- ${k}: ${v}`),
    '',
    ...r.summary.flatMap((sc) => [
      `## ${sc.scenario}: ${sc.description} (mean over runs; offered rate min–max)`,
      '',
      summaryTable(sc.variants),
      '',
      ...comparison(sc.variants),
    ]),
    "- **offered pps**: the generator's rate (its sendmmsg count / time); it falls when the capture costs the sending core more (the capture tap runs in the softirq of the sending CPU on a veth).",
    '- **arrived**: packets received on the capturing interface during the run (`ip -s link` delta); the denominator.',
    "- **in file**: the flood's 64-byte UDP frames in the capture file (our scan; `scanPcapFile` gives the record count in the JSON).",
    '- **kernel drops**: tcpdump\'s "packets dropped by kernel" (bare) or the agent\'s reported `kernelDrops` (queryStatus).',
    '- **unaccounted**: arrived − in file − kernel drops: packets lost without being counted as drops.',
    '- **tcpdump CPU**: user+system CPU of tcpdump from flood start to the stop, as % of one core over the flood time.',
    '',
    '## Variants',
    '',
    ...(r.summary[0]?.variants ?? []).map((s) => `- \`${s.variant}\`: ${s.description}. argv: \`${s.argv.join(' ')}\``),
    '',
    '## Every run',
    '',
    mdTable(
      [
        'scenario',
        'variant',
        'round',
        'sent',
        'offered pps',
        'arrived',
        'in file',
        'captured / arrived',
        'kernel drops',
        'tcpdump "captured"',
        'unaccounted',
        'tcpdump CPU',
        'busy CPU0 / CPU1 …',
        'load avg',
      ],
      runRows,
    ),
    '',
  ].join('\n');
}

runIfMain(import.meta.url, 'capture-throughput', runCaptureThroughput);

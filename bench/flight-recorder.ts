/**
 * What the flight recorder costs the agent (issue 6): the agent's CPU and RSS, from /proc, with the ring off and on
 * under the same traffic, and a bare tcpdump ring (the agent's own tcpdump argv, no agent) as the reference.
 *
 * A real server and agent (`dist/cli/main.js`) as the e2e tests run them (test/e2e/harness.ts): the agent in the
 * "VM" namespace, capturing on its data veth. Each phase sends the same paced UDP stream from the peer namespace to
 * the VM (a socket there takes the datagrams and never reads them, so no ICMP replies) and measures, over the
 * stream plus 1.5 s, utime/stime and VmRSS/VmHWM of the agent's node process and of its tcpdump child apart:
 *   1. ring off: the VM has no recorder setting;
 *   2. ring on:  PUT …/flightRecorder/default { enabled, maxBytes, snaplen }, measured once the agent reports Running;
 *   3. bare ring: the agent stopped, `tcpdump` with the argv the agent builds for the same ring.
 * The ring holds the whole stream (no file is overwritten), so the packets in it can be counted against those sent.
 * Writes bench/results/flight-recorder.{json,md}.
 *
 *   node --import tsx bench/flight-recorder.ts [--pps 20000] [--seconds 30] [--size 500] [--max-mb 256] [--snaplen 128]
 *
 * Needs root (namespaces, tcpdump) and `npm run build`. About 2 minutes.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BLOCK_DRAIN_MS, buildTcpdumpArgv } from '../src/agent/capture-engine.js';
import { ringLayout } from '../src/agent/flight-recorder.js';
import { createE2eEnv, type E2eEnv, poll, spawnProc, tail, tcpdumpsUnder, VM_ID } from '../test/e2e/harness.js';
import {
  cpuBusyPercent,
  cpuTimes,
  fmt,
  interfaceRx,
  machineInfo,
  mdTable,
  numberFlags,
  onCleanup,
  runCleanups,
  runIfMain,
  sleep,
  stats,
  writeResults,
} from './lib.js';

const PORT = 5555;
const RECORDER = `${VM_ID}/flightRecorder/default?api-version=2024-07-01`;
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
/** After the stream: tcpdump hands over its last block within 1 s (block mode), the agent's ring check runs each 1 s. */
const TAIL_MS = 1500;

/** Paced sender: at each 1 ms tick sends what the schedule (pps × elapsed) says is due, so a phase is not a flood. */
const SENDER = `
  const dgram = require('node:dgram');
  const [to, port, pps, seconds, size] = [process.argv[1], ...process.argv.slice(2).map(Number)];
  const socket = dgram.createSocket('udp4');
  const payload = Buffer.alloc(size, 0x2e);
  const total = Math.round(pps * seconds);
  let sent = 0, errors = 0;
  socket.connect(port, to, () => {
    const t0 = performance.now();
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * pps));
      for (; sent < due; sent++) socket.send(payload, (err) => { if (err) errors++; });
      if (sent < total) return setTimeout(tick, 1);
      const elapsed = (performance.now() - t0) / 1000;
      // Its CPU time also holds the kernel's receive path on the VM's veth (softirq runs in the sender's context),
      // the capture tap included: no process on the VM is charged for that.
      const { user, system } = process.cpuUsage();
      socket.close(() => console.log(JSON.stringify({ sent, errors, seconds: elapsed, userSeconds: user / 1e6, systemSeconds: system / 1e6 })));
    };
    tick();
  });`;

/** A UDP socket bound to PORT that never reads: datagrams are dropped in it, silently. */
const SINK = `
import signal, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.bind(('0.0.0.0', int(sys.argv[1])))
print('ready', flush=True)
signal.pause()`;

interface ProcSample {
  user: number;
  system: number;
  rssKiB: number;
  hwmKiB: number;
}

function readProc(pid: number): ProcSample | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return {
      user: Number(fields[11]) / CLOCK_TICKS,
      system: Number(fields[12]) / CLOCK_TICKS,
      rssKiB: kib('VmRSS'),
      hwmKiB: kib('VmHWM'),
    };
  } catch {
    return undefined;
  }
}

/** Resets VmHWM to the current RSS (clear_refs 5), so the peak is this phase's, not the process's lifetime's. */
function resetPeak(pid: number) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {}
}

interface Usage {
  userSeconds: number;
  systemSeconds: number;
  cpuSeconds: number;
  peakRssMiB: number;
  meanRssMiB: number;
}

interface Phase {
  name: string;
  windowSeconds: number;
  sender: { sent: number; errors: number; seconds: number; userSeconds: number; systemSeconds: number };
  /** % busy of each core over the window, everything on the machine (the other users of the 2 cores too) */
  coresBusy: number[];
  receivedOnInterface: number;
  droppedOnInterface: number;
  agent?: Usage;
  tcpdump?: Usage;
  sum: Usage;
  ring?: { packets: number; files: number; bytesOnDisk: number; tcpdumpStats?: string };
}

function usage(first: ProcSample, last: ProcSample, rss: number[]): Usage {
  const userSeconds = last.user - first.user;
  const systemSeconds = last.system - first.system;
  return {
    userSeconds,
    systemSeconds,
    cpuSeconds: userSeconds + systemSeconds,
    peakRssMiB: last.hwmKiB / 1024,
    meanRssMiB: stats(rss).mean / 1024,
  };
}

function addUsage(parts: Array<Usage | undefined>): Usage {
  const sum = (key: keyof Usage) => parts.reduce((n, u) => n + (u?.[key] ?? 0), 0);
  return {
    userSeconds: sum('userSeconds'),
    systemSeconds: sum('systemSeconds'),
    cpuSeconds: sum('cpuSeconds'),
    peakRssMiB: sum('peakRssMiB'),
    meanRssMiB: sum('meanRssMiB'),
  };
}

/** Datagrams to PORT in the ring's files (classic pcap, little-endian, Ethernet), and the files' bytes. */
function countRing(dir: string) {
  const files = readdirSync(dir).filter((f) => f.startsWith('ring.pcap'));
  let packets = 0;
  let bytesOnDisk = 0;
  for (const name of files) {
    const buf = readFileSync(join(dir, name));
    bytesOnDisk += statSync(join(dir, name)).size;
    for (let off = 24; off + 16 <= buf.length; ) {
      const incl = buf.readUInt32LE(off + 8);
      const p = off + 16;
      if (p + incl > buf.length) break;
      const ipHeader = ((buf[p + 14] ?? 0) & 0x0f) * 4;
      if (incl >= 14 + ipHeader + 4 && buf.readUInt16BE(p + 12) === 0x0800 && buf[p + 23] === 17) {
        if (buf.readUInt16BE(p + 14 + ipHeader + 2) === PORT) packets++;
      }
      off = p + incl;
    }
  }
  return { packets, files: files.length, bytesOnDisk };
}

/** Sends the stream once, sampling the processes from /proc each 500 ms with a live progress line. */
async function measure(
  env: E2eEnv,
  name: string,
  pids: { agent?: number; tcpdump?: number },
  traffic: { pps: number; seconds: number; size: number },
) {
  const watched = Object.entries(pids).filter((e): e is [string, number] => e[1] !== undefined);
  for (const [, pid] of watched) resetPeak(pid);
  const first = new Map(watched.map(([k, pid]) => [k, readProc(pid)]));
  const rss = new Map(watched.map(([k]) => [k, [] as number[]]));
  const rx0 = await interfaceRx(env.vm.ns, env.vm.ifname);
  const cores0 = cpuTimes();
  const t0 = performance.now();
  const senderLog = join(env.dir, `sender-${name.replaceAll(' ', '-')}.log`);
  const sender = env.track(
    spawnProc(
      'sender',
      [
        ...['ip', 'netns', 'exec', env.peer.ns, process.execPath, '-e', SENDER],
        ...[env.vm.ip, PORT, traffic.pps, traffic.seconds, traffic.size].map(String),
      ],
      senderLog,
    ),
  );
  let senderDone = false;
  void sender.exited.then(() => {
    senderDone = true;
  });
  let doneAt: number | undefined;
  while (doneAt === undefined || performance.now() - doneAt < TAIL_MS) {
    await sleep(500);
    if (senderDone && doneAt === undefined) doneAt = performance.now();
    const line = watched.map(([k, pid]) => {
      const now = readProc(pid);
      if (now) rss.get(k)?.push(now.rssKiB);
      const cpu =
        now && first.get(k) ? now.user + now.system - (first.get(k)?.user ?? 0) - (first.get(k)?.system ?? 0) : 0;
      return `${k} ${cpu.toFixed(2)} s CPU, ${((now?.rssKiB ?? 0) / 1024).toFixed(0)} MiB`;
    });
    const elapsed = (performance.now() - t0) / 1000;
    if (elapsed > traffic.seconds + 60) throw new Error(`${name}: the sender is still running after ${elapsed} s`);
    process.stdout.write(`\r  ${name}: ${elapsed.toFixed(1)} s of ~${traffic.seconds + 2}; ${line.join('; ')}   `);
  }
  process.stdout.write('\n');
  const windowSeconds = (performance.now() - t0) / 1000;
  const coresBusy = cpuBusyPercent(cores0, cpuTimes());
  const usages: Record<string, Usage> = {};
  for (const [k, pid] of watched) {
    const a = first.get(k);
    const b = readProc(pid);
    if (!a || !b) throw new Error(`${name}: ${k} (pid ${pid}) exited during the phase`);
    usages[k] = usage(a, b, rss.get(k) ?? []);
  }
  const rx1 = await interfaceRx(env.vm.ns, env.vm.ifname);
  const out = tail(senderLog, 1);
  const result = JSON.parse(out.startsWith('{') ? out : 'null') as Phase['sender'] | null;
  if (!result) throw new Error(`${name}: the sender said ${out}`);
  return {
    name,
    windowSeconds,
    sender: result,
    coresBusy,
    receivedOnInterface: rx1.packets - rx0.packets,
    droppedOnInterface: rx1.dropped - rx0.dropped,
    agent: usages.agent,
    tcpdump: usages.tcpdump,
    sum: addUsage([usages.agent, usages.tcpdump]),
  } satisfies Phase;
}

async function recorderStatus(env: E2eEnv) {
  const { body } = await env.api.call<{ properties: { status: { state: string; stopReason: string | null } | null } }>(
    'GET',
    RECORDER,
  );
  return body.properties.status;
}

export async function runFlightRecorderBench(argv: string[] = []) {
  const o = numberFlags(argv, { pps: 20_000, seconds: 30, size: 500, maxMb: 256, snaplen: 128 });
  const traffic = { pps: o.pps, seconds: o.seconds, size: o.size };
  const machine = machineInfo();
  const started = Date.now();
  const phases: Phase[] = [];
  process.stdout.write('  starting a server and an agent in a namespace…\n');
  const env = await createE2eEnv();
  onCleanup(() => env.destroy());
  try {
    const sinkLog = join(env.dir, 'sink.log');
    env.track(spawnProc('sink', ['ip', 'netns', 'exec', env.vm.ns, 'python3', '-c', SINK, String(PORT)], sinkLog));
    await poll('the UDP sink', async () => (tail(sinkLog).includes('ready') ? true : undefined), {
      timeoutMs: 10_000,
    });
    const agentPid = env.agent?.pid;
    if (!agentPid) throw new Error('no agent');
    await sleep(2000); // let the agent's start-up settle

    // 1. ring off: no recorder setting for the VM.
    if (tcpdumpsUnder(env.dir).length > 0) throw new Error('a tcpdump is running with the ring off');
    phases.push(await measure(env, 'ring off', { agent: agentPid }, traffic));

    // 2. ring on: the setting the CLI's `vm recorder --enable --max-mb N --snaplen N` PUTs; the agent takes it at
    // its next heartbeat.
    await env.api.call('PUT', RECORDER, {
      properties: { enabled: true, maxBytes: o.maxMb * 1_000_000, snaplen: o.snaplen },
    });
    await poll(
      'the agent to report its ring Running',
      async () => ((await recorderStatus(env))?.state === 'Running' ? true : undefined),
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    const [ringTcpdump, ...more] = tcpdumpsUnder(env.dir);
    if (!ringTcpdump || more.length > 0) throw new Error(`expected one ring tcpdump, found ${more.length + 1}`);
    await sleep(2000);
    const on: Phase = await measure(env, 'ring on', { agent: agentPid, tcpdump: ringTcpdump }, traffic);
    await env.api.call('PUT', RECORDER, { properties: { enabled: false } });
    await poll(
      'the agent to stop its ring',
      async () =>
        (await recorderStatus(env))?.stopReason === 'Disabled' && tcpdumpsUnder(env.dir).length === 0
          ? true
          : undefined,
      { timeoutMs: 20_000, intervalMs: 200 },
    );
    on.ring = countRing(join(env.stateDir, 'flight-recorder'));
    phases.push(on);

    // 3. bare ring: no agent; tcpdump with the argv the agent builds for this ring.
    await env.agent?.kill('SIGTERM');
    const bareDir = join(env.dir, 'bare-ring');
    const layout = ringLayout(o.maxMb * 1_000_000, o.snaplen);
    const bareArgv = buildTcpdumpArgv(
      {
        interface: env.vm.ifname,
        bpf: '',
        snaplen: o.snaplen,
        outFile: join(bareDir, 'ring.pcap'),
        maxBytes: 0,
        timeLimitSeconds: 0,
        ring: { fileCount: layout.fileCount, fileSizeBytes: layout.fileBytes },
      },
      { netns: env.vm.ns },
    );
    mkdirSync(bareDir, { recursive: true });
    const bareLog = join(env.dir, 'bare-tcpdump.log');
    const bare = env.track(spawnProc('tcpdump', bareArgv, bareLog)); // `ip netns exec` execs: the pid is tcpdump's
    await poll('bare tcpdump to listen', async () => (/listening on/.test(tail(bareLog)) ? true : undefined), {
      timeoutMs: 10_000,
    });
    await sleep(2000);
    const bareRing: Phase = await measure(env, 'bare ring', { tcpdump: bare.pid }, traffic);
    await sleep(BLOCK_DRAIN_MS);
    await bare.kill('SIGTERM');
    bareRing.ring = {
      ...countRing(bareDir),
      tcpdumpStats: tail(bareLog, 3).replaceAll('\n', ', '),
    };
    phases.push(bareRing);

    const json = {
      benchmark: 'flight-recorder',
      machine,
      options: o,
      elapsedSeconds: (Date.now() - started) / 1000,
      tcpdumpArgv: bareArgv.slice(4).join(' '),
      phases,
    };
    return await writeResults('flight-recorder', json, markdown(json));
  } finally {
    await runCleanups();
  }
}

function markdown(r: {
  machine: ReturnType<typeof machineInfo>;
  options: { pps: number; seconds: number; size: number; maxMb: number; snaplen: number };
  elapsedSeconds: number;
  tcpdumpArgv: string;
  phases: Phase[];
}): string {
  const m = r.machine;
  const o = r.options;
  const s = (n: number | undefined, digits = 2) => (n === undefined || !Number.isFinite(n) ? '–' : n.toFixed(digits));
  const cpu = (u: Usage | undefined) => (u ? `${s(u.cpuSeconds)} (${s(u.userSeconds)} + ${s(u.systemSeconds)})` : '–');
  const rss = (u: Usage | undefined) => (u ? `${s(u.peakRssMiB, 1)} / ${s(u.meanRssMiB, 1)}` : '–');
  const row = (label: string, f: (p: Phase) => string | number) => [label, ...r.phases.map(f)];
  const pct = (p: Phase) => (n: number) => `${((n / p.windowSeconds) * 100).toFixed(1)} %`;
  return [
    '# Flight recorder: what the ring costs the agent',
    '',
    `Measured ${m.dateUtc} on ${m.cores} cores (${m.cpuModel}), Linux ${m.kernel}, ${m.tcpdump}, Node ${m.node}; load average at start ${m.loadAverageAtStart.join(' / ')}. Took ${r.elapsedSeconds.toFixed(0)} s.`,
    '',
    '`node --import tsx bench/flight-recorder.ts' +
      ` --pps ${o.pps} --seconds ${o.seconds} --size ${o.size} --max-mb ${o.maxMb} --snaplen ${o.snaplen}\` (as root, after \`npm run build\`)`,
    '',
    `- Server and agent: \`dist/cli/main.js server\` in the root namespace, \`dist/cli/main.js agent\` in the "VM" namespace (heartbeat 1 s, as the e2e tests run it; the default is 5 s), capturing on the VM's data veth.`,
    `- Traffic, the same in each phase: ${fmt.int(o.pps)} UDP datagrams/s of ${o.size} B payload (${o.size + 42} B frames) for ${o.seconds} s from the peer namespace to the VM, paced by a Node sender (1 ms ticks); on the VM a UDP socket takes them and never reads.`,
    `- Ring: maxBytes ${o.maxMb} MB, snaplen ${o.snaplen}: \`${r.tcpdumpArgv}\`. With the default 256 MB it holds the whole 30 s stream (no file overwritten), so the ring can be counted against what was sent.`,
    '- Phases in this order: ring off (the VM has no recorder setting), ring on (PUT flightRecorder/default, measured once the agent reports Running), bare ring (the agent stopped; tcpdump with the same argv, started by hand).',
    `- CPU and RSS from /proc over the stream plus ${TAIL_MS / 1000} s: utime + stime; VmHWM reset (clear_refs 5) at the start of each phase, VmRSS sampled every 500 ms. The server and the sender are not in the sum; the sender's own CPU is shown apart: on a veth the VM's receive path, the capture tap's copy into tcpdump's buffer included, mostly runs as softirq in the sender's context (its system time; ksoftirqd when busy), so that part of a ring's cost shows there and in the cores' busy %, not in any process on the VM.`,
    '',
    mdTable(
      ['', 'ring off', 'ring on', 'bare tcpdump ring'],
      [
        row('window s', (p) => s(p.windowSeconds, 1)),
        row('datagrams sent', (p) => fmt.int(p.sender.sent)),
        row('sender rate /s (send errors)', (p) => `${fmt.int(p.sender.sent / p.sender.seconds)} (${p.sender.errors})`),
        row(
          'sender CPU s (user + sys; not in the sum)',
          (p) =>
            `${s(p.sender.userSeconds + p.sender.systemSeconds)} (${s(p.sender.userSeconds)} + ${s(p.sender.systemSeconds)})`,
        ),
        row('cores busy % (whole machine)', (p) => p.coresBusy.map((c) => c.toFixed(0)).join(' / ')),
        row(
          'received on the VM interface (rx dropped)',
          (p) => `${fmt.int(p.receivedOnInterface)} (${p.droppedOnInterface})`,
        ),
        row('**agent node** CPU s (user + sys)', (p) => cpu(p.agent)),
        row('agent node CPU % of one core', (p) => (p.agent ? pct(p)(p.agent.cpuSeconds) : '–')),
        row('agent node RSS MiB peak / mean', (p) => rss(p.agent)),
        row('**tcpdump** CPU s (user + sys)', (p) => cpu(p.tcpdump)),
        row('tcpdump CPU % of one core', (p) => (p.tcpdump ? pct(p)(p.tcpdump.cpuSeconds) : '–')),
        row('tcpdump RSS MiB peak / mean', (p) => rss(p.tcpdump)),
        row('**sum** CPU s (user + sys)', (p) => cpu(p.sum)),
        row('sum CPU % of one core', (p) => pct(p)(p.sum.cpuSeconds)),
        row('sum RSS MiB peak / mean', (p) => rss(p.sum)),
        row('datagrams in the ring (of sent)', (p) =>
          p.ring ? `${fmt.int(p.ring.packets)} (${fmt.pct(p.ring.packets / p.sender.sent, 2)})` : '–',
        ),
        row('ring files / bytes on disk', (p) => (p.ring ? `${p.ring.files} / ${fmt.int(p.ring.bytesOnDisk)}` : '–')),
      ],
    ),
    '',
    `Bare tcpdump said: ${r.phases.find((p) => p.ring?.tcpdumpStats)?.ring?.tcpdumpStats ?? '–'}`,
    '',
    "The machine is shared (2 cores, other work running): expect some noise; compare the columns of one run. The agent's node process works in both agent phases (heartbeats, host metrics); with the ring on it also stats and scans the ring's new records every second (packet times for its status).",
  ].join('\n');
}

runIfMain(import.meta.url, 'flight-recorder', runFlightRecorderBench);

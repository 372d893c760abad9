import { type ChildProcess, execFile, execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, createWriteStream, existsSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import { linkToRoot, type NetnsHost } from '../test/netns.js';

/** Shared pieces of the benchmarks: root check, processes, namespaces, a tripcap instance, counters, results. */

const execFileAsync = promisify(execFile);

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT_DIR = resolve(BENCH_DIR, '..');
export const RESULTS_DIR = join(BENCH_DIR, 'results');
export const CLI = join(ROOT_DIR, 'dist', 'cli', 'main.js');
/** ./tripcap, the CLI as README runs it (`analyze` starts from ANALYZE_BLOB, the startup snapshot). */
export const LAUNCHER = join(ROOT_DIR, 'tripcap');
export const ANALYZE_BLOB = join(ROOT_DIR, 'dist', 'analyze.blob');
export const SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';

/** Exits with a clear message unless running as root (namespaces, veth, raw sockets and tcpdump need it). */
export function requireRoot(what: string): void {
  if (process.getuid?.() === 0) return;
  process.stderr.write(
    `${what} needs root: it creates network namespaces, veth links and raw sockets, and runs tcpdump.\n` +
      'Run it as root, e.g. `sudo npm run bench`.\n',
  );
  process.exit(1);
}

/** Exits with a clear message unless `npm run build` has made dist/ (the benchmarks run the real CLI). */
export function requireBuild(): void {
  if (existsSync(CLI)) return;
  process.stderr.write(`${CLI} is missing: run \`npm run build\` first (\`npm run bench\` does).\n`);
  process.exit(1);
}

/**
 * Wall time and peak RSS of a command; throws if it fails. The peak RSS comes from GNU time (`/usr/bin/time`, Debian
 * package `time`), the wall time from a monotonic clock around it (GNU time prints hundredths of a second).
 */
export interface Timing {
  wallSeconds: number;
  maxRssKiB: number;
}

export function timed(argv: string[]): Timing {
  const start = process.hrtime.bigint();
  const result = spawnSync('/usr/bin/time', ['-f', '%M', ...argv], { encoding: 'utf8', maxBuffer: 1 << 30 });
  const wallSeconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (result.status !== 0) throw new Error(`${argv.join(' ')} failed: ${result.stderr.slice(-2000)}`);
  const rss = Number(result.stderr.trim().split('\n').pop());
  return { wallSeconds, maxRssKiB: rss };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export async function run(cmd: string, args: string[], timeoutMs = 30_000) {
  try {
    return await execFileAsync(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.trim() || e.message}`);
  }
}

// ---- cleanup on any exit --------------------------------------------------------------------------------------

const cleanups: Array<() => Promise<void> | void> = [];
let cleaning: Promise<void> | undefined;

/** Registers an undo step; run in reverse order by runCleanups(), also on SIGINT/SIGTERM. Returns an unregister. */
export function onCleanup(fn: () => Promise<void> | void): () => void {
  cleanups.push(fn);
  return () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

export function runCleanups(): Promise<void> {
  cleaning ??= (async () => {
    while (cleanups.length > 0) {
      const fn = cleanups.pop();
      try {
        await fn?.();
      } catch (err) {
        process.stderr.write(`cleanup: ${(err as Error).message}\n`);
      }
    }
  })().finally(() => {
    cleaning = undefined;
  });
  return cleaning;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: cleaning up\n`);
    void runCleanups().finally(() => process.exit(130));
  });
}

// ---- processes ----------------------------------------------------------------------------------------------

/** argv prefixed with `taskset -c CPU` when the machine has that CPU (so a generator and a capture don't share one). */
export function pinned(cpu: number | undefined, argv: string[]): string[] {
  return cpu !== undefined && cpu < cpus().length ? ['taskset', '-c', String(cpu), ...argv] : argv;
}

/** argv run inside a network namespace; `ip netns exec` (and taskset) exec, so the child's pid is the program's. */
export function inNetns(ns: string, argv: string[]): string[] {
  return ['ip', 'netns', 'exec', ns, ...argv];
}

export interface Spawned {
  child: ChildProcess;
  pid: number;
  stderr(): string;
  stdout(): string;
  /** Resolves with the exit code (or signal name) once the process has exited and its output is drained. */
  exited: Promise<number | string>;
  /** Resolves when `pattern` appears on stderr or stdout; rejects if the process exits first or after timeoutMs. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray>;
  /** SIGTERM, then SIGKILL after graceMs; resolves once it has exited. */
  stop(graceMs?: number): Promise<number | string>;
}

export function spawnProcess(
  argv: string[],
  options: { logFile?: string; env?: Record<string, string> } = {},
): Spawned {
  const [cmd, ...args] = argv;
  // `env` is added to this process's environment (`ip netns exec` and taskset pass it on).
  const env = options.env ? { ...process.env, ...options.env } : undefined;
  const child = spawn(cmd as string, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env } : {}) });
  let out = '';
  let err = '';
  const log = options.logFile ? createWriteStream(options.logFile, { flags: 'a' }) : undefined;
  const listeners = new Set<() => void>();
  child.stdout?.setEncoding('utf8').on('data', (s: string) => {
    if (out.length < 1 << 20) out += s;
    log?.write(s);
    for (const l of listeners) l();
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => {
    if (err.length < 1 << 20) err += s;
    log?.write(s);
    for (const l of listeners) l();
  });
  let done = false;
  const exited = new Promise<number | string>((resolveExit) => {
    child.once('error', (e) => {
      err += `\n${e.message}`;
      done = true;
      resolveExit('spawn-error');
    });
    child.once('close', (code, signal) => {
      done = true;
      log?.end();
      resolveExit(code ?? signal ?? 'unknown');
      for (const l of listeners) l();
    });
  });
  if (child.pid === undefined) throw new Error(`could not start ${argv.join(' ')}`);
  const pid = child.pid;
  const unregister = onCleanup(async () => {
    if (!done) await stop(2000);
  });
  void exited.then(unregister);

  function waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolveWait, reject) => {
      const check = () => {
        const m = pattern.exec(err) ?? pattern.exec(out);
        if (m) {
          finish();
          resolveWait(m);
        } else if (done) {
          finish();
          reject(new Error(`${argv.join(' ')} exited before ${pattern}: ${err.trim().slice(-2000)}`));
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(new Error(`${argv.join(' ')}: no ${pattern} within ${timeoutMs} ms: ${err.trim().slice(-2000)}`));
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      check();
    });
  }

  async function stop(graceMs = 10_000): Promise<number | string> {
    if (!done) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    }
    return exited;
  }

  return { child, pid, stderr: () => err, stdout: () => out, exited, waitFor, stop };
}

// ---- /proc and interface counters ------------------------------------------------------------------------------

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** CPU time (user + system, seconds) a live process has used so far; NaN when it is gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** Busy and total jiffies per CPU (/proc/stat), to tell how busy each core was between two readings. */
export function cpuTimes(): Array<{ busy: number; total: number }> {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d+ /.test(l))
    .map((l) => {
      const v = l.trim().split(/\s+/).slice(1).map(Number);
      const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
      const idle = (v[3] ?? 0) + (v[4] ?? 0);
      return { busy: total - idle, total };
    });
}

/** % busy of each CPU between two cpuTimes() readings. */
export function cpuBusyPercent(before: ReturnType<typeof cpuTimes>, after: ReturnType<typeof cpuTimes>): number[] {
  return after.map((a, i) => {
    const b = before[i] ?? { busy: 0, total: 0 };
    const total = a.total - b.total;
    return total > 0 ? Math.round(((a.busy - b.busy) / total) * 1000) / 10 : Number.NaN;
  });
}

/** The pid of a running tcpdump whose argv has `-w file`, found through /proc. */
export function findTcpdumpWriting(file: string): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('tcpdump') && argv.some((a, i) => a === '-w' && argv[i + 1] === file)) return Number(name);
    } catch {}
  }
  return undefined;
}

/** Received packets and drops of an interface inside a namespace (`ip -s -j link`). */
export async function interfaceRx(ns: string, ifname: string): Promise<{ packets: number; dropped: number }> {
  const { stdout } = await run('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', ifname]);
  const [link] = JSON.parse(stdout) as Array<{ stats64: { rx: { packets: number; dropped: number } } }>;
  if (!link) throw new Error(`no interface ${ifname} in ${ns}`);
  return { packets: link.stats64.rx.packets, dropped: link.stats64.rx.dropped };
}

export async function interfaceMac(ns: string, ifname: string): Promise<string> {
  const { stdout } = await run('ip', ['-n', ns, '-j', 'link', 'show', 'dev', ifname]);
  const [link] = JSON.parse(stdout) as Array<{ address: string }>;
  if (!link?.address) throw new Error(`no MAC address on ${ifname} in ${ns}`);
  return link.address;
}

// ---- a tripcap instance -----------------------------------------------------------------------------------------

export interface ArmResponse<T = unknown> {
  status: number;
  body: T;
  headers: Record<string, string | string[] | undefined>;
}

export interface ArmClient {
  base: string;
  call<T = unknown>(method: string, path: string, body?: unknown): Promise<ArmResponse<T>>;
  close(): Promise<void>;
}

/**
 * A minimal ARM client over HTTPS with keep-alive. `servername` is the name the server's certificate carries (the
 * self-signed one names localhost), for when the server is reached at another address.
 */
export function createArmClient(options: { base: string; token: string; ca: Buffer; servername?: string }): ArmClient {
  const dispatcher = new Agent({
    connect: { ca: options.ca, ...(options.servername ? { servername: options.servername } : {}) },
  });
  return {
    base: options.base,
    async call<T>(method: string, path: string, body?: unknown): Promise<ArmResponse<T>> {
      const url = path.startsWith('http') ? path : `${options.base}${path}`;
      const response = await request(url, {
        method: method as 'GET',
        dispatcher,
        headers: {
          authorization: `Bearer ${options.token}`,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
        body: body !== undefined ? JSON.stringify(body) : undefined,
      });
      const text = await response.body.text();
      const parsed = (text ? JSON.parse(text) : undefined) as T;
      if (response.statusCode >= 400) {
        throw new Error(`${method} ${path}: HTTP ${response.statusCode} ${text.slice(0, 500)}`);
      }
      return { status: response.statusCode, body: parsed, headers: response.headers };
    },
    close: () => dispatcher.close(),
  };
}

export interface Tripcap {
  process: Spawned;
  api: ArmClient;
  vmId: string;
  /** `/subscriptions/…/networkWatchers/NetworkWatcher_local` */
  watcherPath: string;
  captureRoot: string;
  stop(): Promise<void>;
}

/**
 * Runs `tripcap start` (server and agent in one process, the README's command) inside `host`'s namespace, capturing
 * on `captureInterface`, and waits until the agent has registered. The API is reached over a veth to the root
 * namespace (linkToRoot).
 */
export async function startTripcap(options: {
  host: NetnsHost;
  workDir: string;
  captureInterface: string;
  cpu?: number;
  vmName?: string;
  /** Extra environment for the server process (e.g. the capture-on-alert function's TRIPCAP_CAPTURE_* settings). */
  env?: Record<string, string>;
}): Promise<Tripcap> {
  const { host, workDir } = options;
  const dataDir = join(workDir, 'tripcap-data');
  const captureRoot = join(workDir, 'captures');
  await mkdir(captureRoot, { recursive: true });
  const vmName = options.vmName ?? 'bench-vm';
  // Control traffic (this process → the API in the namespace) goes over its own veth, never the captured link.
  const mgmt = await linkToRoot(host.ns);
  const unregisterLink = onCleanup(() => mgmt.destroy());
  const argv = pinned(
    options.cpu,
    inNetns(host.ns, [
      process.execPath,
      CLI,
      'start',
      '--data-dir',
      dataDir,
      '--host',
      '0.0.0.0',
      '--port',
      '0',
      '--interface',
      options.captureInterface,
      '--name',
      vmName,
      '--capture-root',
      captureRoot,
    ]),
  );
  const proc = spawnProcess(argv, {
    logFile: join(workDir, 'tripcap.log'),
    ...(options.env ? { env: options.env } : {}),
  });
  const [, port] = await proc.waitFor(/tripcap server at https:\/\/[^:\s]+:(\d+)/, 30_000);
  const api = createArmClient({
    base: `https://${mgmt.ip}:${port}`,
    token: readFileSync(join(dataDir, 'admin.token'), 'utf8').trim(),
    ca: readFileSync(join(dataDir, 'tls', 'cert.pem')),
    servername: 'localhost',
  });
  const vmId = `/subscriptions/${SUBSCRIPTION}/resourceGroups/tripcap/providers/Microsoft.Compute/virtualMachines/${vmName}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const vm = await api
      .call<{ properties: { agent: { status: string } | null } }>('GET', `${vmId}?api-version=2024-07-01`)
      .catch(() => undefined);
    if (vm?.body.properties.agent?.status === 'Connected') break;
    if (Date.now() > deadline) throw new Error(`the agent did not register within 30 s: ${proc.stderr().slice(-2000)}`);
    await sleep(100);
  }
  const stop = async () => {
    await api.close().catch(() => {});
    await proc.stop(15_000);
    unregisterLink();
    await mgmt.destroy();
  };
  return {
    process: proc,
    api,
    vmId,
    watcherPath: `/subscriptions/${SUBSCRIPTION}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/NetworkWatcher_local`,
    captureRoot,
    stop,
  };
}

/** Polls an ARM async operation (any origin: re-rooted on the client's base) until it is no longer InProgress. */
export async function waitForOperation(
  api: ArmClient,
  operationUrl: string,
  options: { intervalMs: number; timeoutMs: number },
): Promise<{ status: string; polls: number }> {
  const url = new URL(operationUrl);
  const path = `${url.pathname}${url.search}`;
  const deadline = performance.now() + options.timeoutMs;
  for (let polls = 1; ; polls++) {
    const { body } = await api.call<{ status: string }>('GET', path);
    if (body.status !== 'InProgress') return { status: body.status, polls };
    if (performance.now() > deadline) throw new Error(`operation still InProgress after ${options.timeoutMs} ms`);
    await sleep(options.intervalMs);
  }
}

// ---- capture files ----------------------------------------------------------------------------------------------

/**
 * Counts the records of a classic pcap file (little-endian, as tcpdump writes here) that are the flood's frames:
 * 64 bytes on the wire, IPv4, UDP to `port`. Reads in 4 MiB chunks.
 */
export function countFloodPackets(file: string, port: number): { records: number; flood: number } {
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.allocUnsafe(4 << 20);
    let carry = Buffer.alloc(0);
    let records = 0;
    let flood = 0;
    let position = 0;
    let headerSkipped = false;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, position);
      if (n === 0) break;
      position += n;
      let buf = carry.length ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
      if (!headerSkipped) {
        if (buf.length < 24) {
          carry = Buffer.from(buf);
          continue;
        }
        if (buf.readUInt32LE(0) !== 0xa1b2c3d4 && buf.readUInt32LE(0) !== 0xa1b23c4d)
          throw new Error(`${file}: not a little-endian classic pcap file`);
        buf = buf.subarray(24);
        headerSkipped = true;
      }
      let offset = 0;
      while (offset + 16 <= buf.length) {
        const incl = buf.readUInt32LE(offset + 8);
        const orig = buf.readUInt32LE(offset + 12);
        if (offset + 16 + incl > buf.length) break;
        const p = offset + 16;
        records++;
        if (
          orig === 64 &&
          incl >= 38 &&
          buf.readUInt16BE(p + 12) === 0x0800 &&
          buf[p + 23] === 17 &&
          buf.readUInt16BE(p + 36) === port
        )
          flood++;
        offset = p + incl;
      }
      carry = Buffer.from(buf.subarray(offset));
    }
    return { records, flood };
  } finally {
    closeSync(fd);
  }
}

// ---- figures and results ----------------------------------------------------------------------------------------

/** Nearest-rank percentile of a sorted array (p in 0..100): the smallest value with at least p% of values <= it. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(rank, sorted.length) - 1] as number;
}

export function stats(values: number[]) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  const mean = v.length > 0 ? v.reduce((s, x) => s + x, 0) / v.length : Number.NaN;
  return { n: v.length, min: v[0] ?? Number.NaN, max: v[v.length - 1] ?? Number.NaN, mean, median: percentile(v, 50) };
}

/** Latency figures of a set of samples: p50 and p99 (nearest rank) with min, mean and max. */
export function latencyFigures(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p99: percentile(sorted, 99), ...stats(values) };
}

export type LatencyFigures = ReturnType<typeof latencyFigures>;

/** A table row of latency figures in ms: label, p50, p99, min, mean, max. */
export function latencyRow(label: string, f: LatencyFigures): string[] {
  return [label, fmt.ms(f.p50), fmt.ms(f.p99), fmt.ms(f.min), fmt.ms(f.mean), fmt.ms(f.max)];
}

export function machineInfo() {
  const firstLine = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
        .split('\n')
        .slice(0, 2)
        .join(' / ')
        .trim();
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string };
      return `${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n').slice(0, 2).join(' / ').trim() || 'unknown';
    }
  };
  const sysctl = (name: string) => {
    try {
      return readFileSync(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8').trim();
    } catch {
      return 'unknown';
    }
  };
  return {
    dateUtc: new Date().toISOString(),
    cores: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    kernel: release(),
    loadAverageAtStart: loadavg().map((x) => Math.round(x * 100) / 100),
    tcpdump: firstLine('tcpdump', ['--version']),
    node: process.version,
    netdevMaxBacklog: Number(sysctl('net.core.netdev_max_backlog')),
  };
}

export type MachineInfo = ReturnType<typeof machineInfo>;

export async function writeResults(name: string, json: unknown, markdown: string) {
  await mkdir(RESULTS_DIR, { recursive: true });
  const jsonFile = join(RESULTS_DIR, `${name}.json`);
  const mdFile = join(RESULTS_DIR, `${name}.md`);
  await writeFile(jsonFile, `${JSON.stringify(json, null, 2)}\n`);
  await writeFile(mdFile, markdown.endsWith('\n') ? markdown : `${markdown}\n`);
  return { jsonFile, mdFile };
}

export function mdTable(headers: string[], rows: Array<Array<string | number>>, align?: Array<'l' | 'r'>): string {
  const a = align ?? headers.map((_, i) => (i === 0 ? 'l' : 'r'));
  const lines = [
    `| ${headers.join(' | ')} |`,
    `| ${a.map((x) => (x === 'r' ? '---:' : ':---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ];
  return lines.join('\n');
}

export const fmt = {
  int: (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–'),
  pct: (n: number, digits = 1) => (Number.isFinite(n) ? `${(n * 100).toFixed(digits)} %` : '–'),
  ms: (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '–'),
  kpps: (n: number) => (Number.isFinite(n) ? `${(n / 1000).toFixed(0)}k` : '–'),
};

/** Parses `--name value` pairs (numbers) from argv, with defaults; unknown flags are an error. */
export function numberFlags<T extends Record<string, number>>(argv: string[], defaults: T): T {
  const out: Record<string, number> = { ...defaults };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const m = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    const key = m?.[1]?.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());
    if (!m || !key || !(key in defaults)) throw new Error(`unknown argument ${arg}; known: ${Object.keys(defaults)}`);
    const value = Number(m[2] ?? argv[++i]);
    if (!Number.isFinite(value) || value < 0) throw new Error(`--${m[1]} needs a non-negative number`);
    out[key] = value;
  }
  return out as T;
}

/**
 * Runs a benchmark when its file is the program (`node --import tsx bench/x.ts …`), not when bench/run.ts imports it:
 * checks root and the build when asked, prints where the results are, and cleans up on failure.
 */
export function runIfMain(
  moduleUrl: string,
  name: string,
  run: (argv: string[]) => Promise<{ mdFile: string; jsonFile: string }>,
  needs: { root?: boolean; build?: boolean } = { root: true, build: true },
): void {
  if (moduleUrl !== pathToFileURL(process.argv[1] ?? '').href) return;
  if (needs.root) requireRoot(`bench/${name}.ts`);
  if (needs.build) requireBuild();
  run(process.argv.slice(2))
    .then(({ mdFile, jsonFile }) => process.stdout.write(`results: ${mdFile}\n         ${jsonFile}\n`))
    .catch(async (err: unknown) => {
      process.stderr.write(`${name} failed: ${(err as Error).stack ?? err}\n`);
      await runCleanups();
      process.exit(1);
    });
}

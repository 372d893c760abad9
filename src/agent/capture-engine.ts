import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, readlinkSync, statSync } from 'node:fs';
import { stat, truncate } from 'node:fs/promises';
import { basename, isAbsolute } from 'node:path';
import { errorMessage } from '../lib/errors.js';
import { isoNow, sleep } from '../lib/time.js';
import { scanPcapFile } from '../pcap/classic.js';

/** One capture session, as the agent runs it. */
export interface CaptureSpec {
  /** e.g. 'eth0' or 'any' */
  interface: string;
  /** compiled by the server from strictly parsed values; '' = everything */
  bpf: string;
  /** 1..262144 */
  snaplen: number;
  /** absolute path; the parent directory exists */
  outFile: string;
  /** total bytes per session (0 = no limit); the file is cut at a packet boundary to <= maxBytes. Ignored in ring mode. */
  maxBytes: number;
  /** 0 = no limit */
  timeLimitSeconds: number;
  /**
   * Continuous capture into a ring of files `outFile` + index (0..fileCount-1, zero-padded to the width of
   * fileCount-1, as tcpdump -W names them). tcpdump's -C counts in units of 1,000,000 bytes and 4.99.3 takes no
   * k/m/g suffix, so fileSizeBytes is rounded up to whole megabytes (at least 1 MB). Ends only on time limit or stop.
   */
  ring?: { fileCount: number; fileSizeBytes: number };
}

export type StopReason =
  | 'TimeExceeded'
  | 'TotalBytesExceeded'
  | 'ManuallyStopped'
  | 'AgentStopped'
  | 'CaptureFailed'
  | 'SessionTimeExceeded';

export interface CaptureResult {
  stopReason: StopReason;
  /** The capture files, each cut to its last complete record; in ring mode the ring's files, oldest first. */
  files: Array<{ path: string; size: number; packets: number }>;
  /** tcpdump's "packets dropped by kernel". */
  kernelDrops: number;
  /** tcpdump's "packets captured" (includes packets in overwritten ring files or cut off by maxBytes). */
  packetsCaptured: number;
  startedAt: string;
  endedAt: string;
  error?: string;
}

export interface CaptureHandle {
  readonly pid: number;
  readonly startedAt: string;
  progress(): { bytes: number; packets?: number };
  stop(reason?: StopReason): Promise<CaptureResult>;
  done: Promise<CaptureResult>;
}

export interface CaptureEngine {
  start(spec: CaptureSpec, signal?: AbortSignal): Promise<CaptureHandle>;
}

export interface TcpdumpEngineOptions {
  /** default 'tcpdump' (found on PATH) */
  tcpdumpPath?: string;
  /** Kernel capture buffer (-B), KiB; default 32768: 32 MiB of blocks absorb a burst while tcpdump writes. */
  bufferSizeKiB?: number;
  /** run tcpdump inside this network namespace (`ip netns exec NS tcpdump …`; ip execs, so the pid is tcpdump's) */
  netns?: string;
  /** how long start() waits for "listening on"; default 10 s */
  startTimeoutMs?: number;
  /** how often the file size is checked against maxBytes; default 100 ms */
  pollIntervalMs?: number;
  /** how long after SIGTERM before SIGKILL; default 5 s */
  killTimeoutMs?: number;
}

const INTERFACE_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,14}$/;
const NETNS_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/;
const MAX_STDERR = 64 * 1024;

type Exit = { code: number | null; signal: NodeJS.Signals | null; error?: Error };

/** The argv (command first) the engine runs for a spec. Validates the spec; never goes through a shell. */
export function buildTcpdumpArgv(spec: CaptureSpec, options: TcpdumpEngineOptions = {}): string[] {
  validateSpec(spec);
  const bufferSizeKiB = options.bufferSizeKiB ?? 32_768;
  if (!Number.isInteger(bufferSizeKiB) || bufferSizeKiB < 1) throw new Error(`invalid bufferSizeKiB ${bufferSizeKiB}`);
  const argv = [options.tcpdumpPath ?? 'tcpdump'];
  argv.push('-i', spec.interface, '-s', String(spec.snaplen), '-w', spec.outFile);
  // -U: write each packet to the file as soon as tcpdump has it, so a crash leaves a valid file with all of them.
  // No --immediate-mode: it makes libpcap use a ring of 64 KiB slots and wake tcpdump per packet, which drops
  // packets under a flood where block mode drops none (bench/results/capture-throughput.md). Block mode hands
  // packets over at the latest after tcpdump's 1 s block timeout, so stop() drains for that long before SIGTERM.
  argv.push('-U', '-n', '-B', String(bufferSizeKiB));
  // Debian's tcpdump drops to user "tcpdump" after opening the device; with -C that is before the first savefile
  // is opened (Permission denied in a root-owned directory). Stay root.
  argv.push('-Z', 'root');
  if (spec.ring)
    argv.push('-C', String(Math.max(1, Math.ceil(spec.ring.fileSizeBytes / 1e6))), '-W', String(spec.ring.fileCount));
  // "--" ends the options, so a filter can never be read as one; the filter is one argv element.
  if (spec.bpf.trim() !== '') argv.push('--', spec.bpf);
  if (options.netns !== undefined) {
    if (!NETNS_NAME.test(options.netns))
      throw new Error(`invalid network namespace name ${JSON.stringify(options.netns)}`);
    argv.unshift('ip', 'netns', 'exec', options.netns);
  }
  return argv;
}

function validateSpec(spec: CaptureSpec): void {
  const fail = (what: string) => {
    throw new Error(`invalid capture spec: ${what}`);
  };
  if (!INTERFACE_NAME.test(spec.interface)) fail(`interface ${JSON.stringify(spec.interface)}`);
  if (!Number.isInteger(spec.snaplen) || spec.snaplen < 1 || spec.snaplen > 262_144) fail(`snaplen ${spec.snaplen}`);
  if (!isAbsolute(spec.outFile) || spec.outFile.includes('\0')) fail(`outFile ${JSON.stringify(spec.outFile)}`);
  if (!Number.isInteger(spec.maxBytes) || spec.maxBytes < 0 || (spec.maxBytes > 0 && spec.maxBytes < 24)) {
    fail(`maxBytes ${spec.maxBytes}`);
  }
  if (!Number.isFinite(spec.timeLimitSeconds) || spec.timeLimitSeconds < 0)
    fail(`timeLimitSeconds ${spec.timeLimitSeconds}`);
  if (spec.bpf.includes('\0')) fail('bpf contains NUL');
  if (spec.ring) {
    const { fileCount, fileSizeBytes } = spec.ring;
    if (!Number.isInteger(fileCount) || fileCount < 1 || fileCount > 10_000) fail(`ring.fileCount ${fileCount}`);
    if (!Number.isFinite(fileSizeBytes) || fileSizeBytes <= 0) fail(`ring.fileSizeBytes ${fileSizeBytes}`);
  }
}

/** The path of ring file `index`, named as tcpdump -W names it (padded to the digits of fileCount-1). */
export function ringFileName(outFile: string, index: number, fileCount: number): string {
  const width = fileCount > 1 ? String(fileCount - 1).length : 0;
  return width === 0 && index === 0 ? outFile : `${outFile}${String(index).padStart(width, '0')}`;
}

function specFiles(spec: CaptureSpec): string[] {
  if (!spec.ring) return [spec.outFile];
  const { fileCount } = spec.ring;
  return Array.from({ length: fileCount }, (_, i) => ringFileName(spec.outFile, i, fileCount));
}

export function createTcpdumpEngine(options: TcpdumpEngineOptions = {}): CaptureEngine {
  return { start: (spec, signal) => startTcpdump(spec, options, signal) };
}

async function startTcpdump(spec: CaptureSpec, options: TcpdumpEngineOptions, signal?: AbortSignal) {
  const [command, ...args] = buildTcpdumpArgv(spec, options);
  signal?.throwIfAborted();
  const child = spawn(command as string, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (chunk: string) => {
    if (stderr.length < MAX_STDERR) stderr += chunk;
  });
  // 'close' (not 'exit'): it comes after stderr is drained, so tcpdump's closing statistics have been read.
  const exited = new Promise<Exit>((resolve) => {
    child.on('error', (error) => child.pid === undefined && resolve({ code: null, signal: null, error }));
    child.once('close', (code, sig) => resolve({ code, signal: sig }));
  });

  await waitForListening(child, () => stderr, exited, options.startTimeoutMs ?? 10_000, signal);
  return createHandle(child, spec, options, () => stderr, exited, signal);
}

function waitForListening(
  child: ChildProcess,
  stderr: () => string,
  exited: Promise<Exit>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const cleanup = () => {
      settled = true;
      clearTimeout(timer);
      child.stderr?.off('data', onData);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (message: string) => {
      if (settled) return;
      cleanup();
      child.kill('SIGKILL');
      reject(new Error(message));
    };
    const onData = () => {
      if (/^(tcpdump: )?listening on /m.test(stderr())) {
        cleanup();
        resolve();
      }
    };
    const onAbort = () => fail('capture start aborted');
    const timer = setTimeout(
      () => fail(`tcpdump did not start listening within ${timeoutMs} ms: ${stderr().trim()}`),
      timeoutMs,
    );
    child.stderr?.on('data', onData);
    signal?.addEventListener('abort', onAbort, { once: true });
    void exited.then(({ code, signal: sig, error }) => {
      const how = error ? errorMessage(error) : sig ? `killed by ${sig}` : `exit code ${code}`;
      fail(`tcpdump failed to start (${how}): ${stderr().trim() || 'no message'}`);
    });
  });
}

function createHandle(
  child: ChildProcess,
  spec: CaptureSpec,
  options: TcpdumpEngineOptions,
  stderr: () => string,
  exited: Promise<Exit>,
  signal?: AbortSignal,
): CaptureHandle {
  const startedAt = isoNow();
  const files = specFiles(spec);
  let stopReason: StopReason | undefined;
  let killTimer: NodeJS.Timeout | undefined;

  let exitedYet = false;
  let terminated = false;
  const progressBytes = () => files.reduce((n, path) => n + fileSize(path), 0);

  const stop = (reason: StopReason = 'ManuallyStopped', drainMs = BLOCK_DRAIN_MS): Promise<CaptureResult> => {
    if (stopReason === undefined) {
      stopReason = reason;
      // On SIGTERM tcpdump breaks its loop at once: packets in the kernel's unfinished block are never written (and
      // not counted as drops). So, except when cutting the file anyway, wait until that block has been handed over.
      const drain =
        reason === 'TotalBytesExceeded' ? Promise.resolve() : drainBlock(child.pid, drainMs, () => exitedYet);
      void drain.then(() => {
        if (exitedYet) return;
        terminated = true;
        child.kill('SIGTERM');
        killTimer = setTimeout(() => child.kill('SIGKILL'), options.killTimeoutMs ?? 5000);
      });
    }
    return done;
  };
  const onAbort = () => void stop('AgentStopped');
  signal?.addEventListener('abort', onAbort, { once: true });

  // The drain runs inside the time limit, so the capture ends at the limit with every packet that came before it.
  const limitMs = spec.timeLimitSeconds * 1000;
  const timeLimit =
    limitMs > 0
      ? setTimeout(
          () => void stop('TimeExceeded', Math.min(BLOCK_DRAIN_MS, limitMs)),
          Math.max(0, limitMs - BLOCK_DRAIN_MS),
        )
      : undefined;
  const bytePoll =
    spec.maxBytes > 0 && !spec.ring
      ? setInterval(() => {
          stat(spec.outFile).then(
            (s) => {
              if (s.size >= spec.maxBytes) void stop('TotalBytesExceeded');
            },
            () => {},
          );
        }, options.pollIntervalMs ?? 100)
      : undefined;

  const done = exited.then(async ({ code, signal: sig }) => {
    const endedAt = isoNow();
    exitedYet = true;
    clearTimeout(timeLimit);
    clearInterval(bytePoll);
    clearTimeout(killTimer);
    signal?.removeEventListener('abort', onAbort);
    const text = stderr();
    const reason: StopReason = stopReason ?? 'CaptureFailed';
    let error: string | undefined;
    if (!terminated) {
      error = `tcpdump exited unexpectedly (${sig ? `killed by ${sig}` : `exit code ${code}`}): ${text.trim()}`;
    } else if (sig === 'SIGKILL') {
      error = 'tcpdump did not exit on SIGTERM and was killed';
    }
    const result = await finishFiles(files, spec.ring ? 0 : spec.maxBytes);
    if (result.error) error = error ? `${error}; ${result.error}` : result.error;
    const captured = /(\d+) packets? captured/.exec(text);
    const dropped = /(\d+) packets? dropped by kernel/.exec(text);
    return {
      stopReason: reason,
      files: result.files,
      kernelDrops: dropped ? Number(dropped[1]) : 0,
      packetsCaptured: captured ? Number(captured[1]) : result.files.reduce((n, f) => n + f.packets, 0),
      startedAt,
      endedAt,
      ...(error ? { error } : {}),
    } satisfies CaptureResult;
  });

  return {
    pid: child.pid as number,
    startedAt,
    progress: () => ({ bytes: progressBytes() }),
    stop,
    done,
  };
}

/** tcpdump's block timeout (1 s) plus a margin: by then the kernel has handed over every packet it holds. */
export const BLOCK_DRAIN_MS = 1200;
/** How much longer a stop waits while tcpdump is still busy writing a block it was handed (a loaded host). */
const BUSY_GRACE_MS = 1000;

/**
 * Waits for the kernel to hand tcpdump its last block (`ms`, less if `done()`), then, while tcpdump is runnable —
 * handed a block it has not written yet, as on a loaded host where it is scheduled late — up to BUSY_GRACE_MS more:
 * SIGTERM ends its loop at once, and a block not yet written would be lost.
 */
async function drainBlock(pid: number | undefined, ms: number, done: () => boolean): Promise<void> {
  await sleepUnless(ms, done);
  const deadline = Date.now() + BUSY_GRACE_MS;
  while (pid !== undefined && !done() && isRunnable(pid) && Date.now() < deadline) await sleep(20);
}

/** Sleeps `ms`, or less if `done()` turns true (tcpdump exited by itself). */
async function sleepUnless(ms: number, done: () => boolean): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await sleep(Math.min(20, deadline - Date.now()));
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/**
 * Cuts each existing file to its last complete record (and to maxBytes when set) and counts its packets.
 * Files are returned oldest first (a ring's files by modification time).
 */
async function finishFiles(
  paths: string[],
  maxBytes: number,
): Promise<{ files: CaptureResult['files']; error?: string }> {
  const existing: Array<{ path: string; mtimeMs: number }> = [];
  for (const path of paths) {
    const s = await stat(path).catch(() => undefined);
    if (s) existing.push({ path, mtimeMs: s.mtimeMs });
  }
  existing.sort((x, y) => x.mtimeMs - y.mtimeMs || (x.path < y.path ? -1 : 1));
  const files: CaptureResult['files'] = [];
  const errors: string[] = [];
  for (const { path } of existing) {
    try {
      const scan = await scanPcapFile(path, maxBytes > 0 ? { maxBytes } : {});
      if ((await stat(path)).size > scan.validLength) await truncate(path, scan.validLength);
      files.push({ path, size: scan.validLength, packets: scan.packets });
    } catch (err) {
      errors.push(`${path}: ${errorMessage(err)}`);
      files.push({ path, size: fileSize(path), packets: 0 });
    }
  }
  if (paths.length === 1 && existing.length === 0) errors.push(`${paths[0]}: capture file missing`);
  return errors.length ? { files, error: errors.join('; ') } : { files };
}

/**
 * True when `pid` is a live tcpdump writing to `outFile` (checked through /proc/PID/exe and /proc/PID/cmdline), so
 * an agent restarted after a crash can recognise the tcpdump of its previous life and not signal a reused pid.
 */
export function findOrphanTcpdump(pid: number, outFile: string): boolean {
  if (!Number.isInteger(pid) || pid <= 1 || !isAlive(pid)) return false;
  try {
    if (!basename(readlinkSync(`/proc/${pid}/exe`)).startsWith('tcpdump')) return false;
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return argv.some((arg, i) => arg === '-w' && argv[i + 1] === outFile);
  } catch {
    return false;
  }
}

/**
 * SIGTERMs an orphan tcpdump (only if findOrphanTcpdump says it is one; after letting it drain, as stop() does) and
 * waits up to 5 s for it to go, then SIGKILLs it. The caller then cuts the file with scanPcapFile().validLength.
 */
export async function stopOrphan(pid: number, outFile: string, timeoutMs = 5000): Promise<void> {
  if (!findOrphanTcpdump(pid, outFile)) return;
  await drainBlock(pid, BLOCK_DRAIN_MS, () => !isAlive(pid));
  signalIfAlive(pid, 'SIGTERM');
  if (await waitGone(pid, timeoutMs)) return;
  signalIfAlive(pid, 'SIGKILL');
  if (!(await waitGone(pid, 2000))) throw new Error(`tcpdump ${pid} did not exit after SIGKILL`);
}

function signalIfAlive(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
  return true;
}

/** A process is alive when /proc has it and it is not a zombie (an orphan's new parent may never reap it). */
export function isAlive(pid: number): boolean {
  const state = processState(pid);
  return state !== undefined && state !== 'Z' && state !== 'X';
}

/** Running or waiting for a CPU (state R), not asleep in poll(). */
function isRunnable(pid: number): boolean {
  return processState(pid) === 'R';
}

/** The one-letter state of /proc/PID/stat (R, S, D, Z, …), or undefined when there is no such process. */
function processState(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
  } catch {
    return undefined;
  }
}

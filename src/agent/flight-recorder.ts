import { type ChildProcess, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { mkdir, readdir, rm, statfs, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { sleep } from '../lib/time.js';
import { PCAP_FILE_HEADER_LENGTH, PCAP_RECORD_HEADER_LENGTH, scanPcapFile } from '../pcap/classic.js';
import { BLOCK_DRAIN_MS, buildTcpdumpArgv, ringFileName } from './capture-engine.js';

/**
 * The flight recorder: an always-on ring of recent traffic on the agent's disk, so that a capture started by an
 * alert can also hold the minutes before it. tcpdump writes the ring itself (`-C`/`-W`: ring.pcap0 … ring.pcapN-1,
 * the oldest overwritten); this module sizes the ring, deletes files older than the age cap, and stops everything
 * when free disk falls below a floor.
 */

export interface FlightRecorderOptions {
  /** the ring's directory (created if missing); the recorder owns every `ring.pcap*` file in it */
  dir: string;
  interface: string;
  /** bytes kept of each packet; default 128 (headers only) */
  snaplen?: number;
  /** cap on the ring's bytes on disk; the ring is sized so that its worst case (see ringLayout) stays under it */
  maxBytes: number;
  /** ring files whose newest packet is older than this are deleted (not the one tcpdump is writing) */
  maxAgeSeconds: number;
  /** below this many free bytes on the ring's file system the recorder stops, with stopReason 'DiskFloor' */
  minFreeBytes: number;
  /** size of one ring file; default maxBytes/10 (at most 64 MB), rounded to whole megabytes (tcpdump -C's unit), at least 1 MB */
  fileBytes?: number;
  logger: Logger;
  /** called once when the recorder stops by itself ('DiskFloor', 'CaptureFailed'), not on stop() */
  onStop?: (reason: string, message: string) => void;
  /** run tcpdump inside this network namespace (tests) */
  netns?: string;
  /** how often the age cap, size and disk floor are checked; default 1000 ms */
  checkIntervalMs?: number;
  /** how long start() waits for tcpdump's "listening on"; default 10 s */
  startTimeoutMs?: number;
}

export type FlightRecorderState = 'Running' | 'Stopped';

export interface FlightRecorderStatus {
  state: FlightRecorderState;
  /** 'DiskFloor', 'CaptureFailed', 'ManuallyStopped'; null while running or before the first start */
  stopReason: string | null;
  /** oldest first */
  files: Array<{ name: string; size: number; firstPacketTime?: string; lastPacketTime?: string }>;
  bytesOnDisk: number;
  oldestPacketTime: string | null;
}

export interface FlightRecorder {
  /** Starts tcpdump; resolves once it listens, rejects with tcpdump's message if it cannot. */
  start(): Promise<void>;
  /** Stops tcpdump after letting the kernel hand over its last packets; the ring's files stay. */
  stop(): Promise<void>;
  status(): FlightRecorderStatus;
  /** The ring's files (full paths), oldest first; the one being written is last. */
  files(): string[];
  /**
   * From when the ring holds every packet (ms since the epoch): its start while no file has been dropped or reused,
   * else the first packet of its oldest file; null when it holds no file.
   */
  heldSinceMs(): number | null;
}

export interface RingLayout {
  fileCount: number;
  /** tcpdump's -C in bytes: a whole number of megabytes (1,000,000 bytes) */
  fileBytes: number;
  /**
   * The most the ring can hold on disk: tcpdump rotates when a file has grown past -C, checked before each packet,
   * so a file ends at most one record (16-byte header + snaplen) past it: fileCount × (fileBytes + 16 + snaplen).
   */
  boundBytes: number;
}

const RING_BASENAME = 'ring.pcap';
const MEGABYTE = 1_000_000;
/** A pre-trigger cut reads a ring file whole into memory: big rings get more files, not bigger ones. */
const MAX_DEFAULT_FILE_MB = 64;
const MAX_STDERR = 64 * 1024;

/** How many files of what size: as many -C files as fit under maxBytes counting each one's last record. */
export function ringLayout(maxBytes: number, snaplen: number, fileBytes?: number): RingLayout {
  const megabytes = Math.max(
    1,
    fileBytes ? Math.ceil(fileBytes / MEGABYTE) : Math.min(MAX_DEFAULT_FILE_MB, Math.floor(maxBytes / 10 / MEGABYTE)),
  );
  const fileMaxBytes = megabytes * MEGABYTE + PCAP_RECORD_HEADER_LENGTH + snaplen;
  const fileCount = Math.floor(maxBytes / fileMaxBytes);
  if (fileCount < 2) {
    throw new Error(
      `flight recorder: maxBytes ${maxBytes} holds fewer than 2 ring files of ${megabytes} MB; raise maxBytes`,
    );
  }
  return { fileCount, fileBytes: megabytes * MEGABYTE, boundBytes: fileCount * fileMaxBytes };
}

interface RingFile {
  path: string;
  index: number;
  size: number;
  mtimeMs: number;
}

/** What the last scan of a file found, so the next one starts where it stopped. */
interface ScanCache {
  validLength: number;
  firstPacketTime?: string;
  lastPacketTime?: string;
}

export function createFlightRecorder(options: FlightRecorderOptions): FlightRecorder {
  const snaplen = options.snaplen ?? 128;
  const layout = ringLayout(options.maxBytes, snaplen, options.fileBytes);
  const outFile = join(options.dir, RING_BASENAME);
  const ringPaths = Array.from({ length: layout.fileCount }, (_, i) => ringFileName(outFile, i, layout.fileCount));
  const log = options.logger;

  let state: FlightRecorderState = 'Stopped';
  let stopReason: string | null = null;
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let stderr = '';
  let stopping = false;
  let timer: NodeJS.Timeout | undefined;
  let checking = false;
  const scans = new Map<string, ScanCache>();
  let startedAtMs = 0;
  /** A file was deleted by the caps. */
  let dropped = false;

  /** Stats the ring's files now, oldest first. Ties in mtime (coarse kernel clock) go by ring order. */
  function listFiles(): RingFile[] {
    const files: RingFile[] = [];
    ringPaths.forEach((path, index) => {
      try {
        const s = statSync(path);
        files.push({ path, index, size: s.size, mtimeMs: s.mtimeMs });
      } catch {
        // not written yet, or deleted by the age cap
      }
    });
    const count = layout.fileCount;
    return files.sort(
      (x, y) =>
        x.mtimeMs - y.mtimeMs ||
        ((x.index + 1) % count === y.index ? -1 : (y.index + 1) % count === x.index ? 1 : x.index - y.index),
    );
  }

  async function start(): Promise<void> {
    if (state === 'Running' || child) return;
    await mkdir(options.dir, { recursive: true });
    // A new ring starts empty: files of an earlier ring (maybe of another size) would escape the cap.
    for (const name of await readdir(options.dir)) {
      if (name.startsWith(RING_BASENAME)) await rm(join(options.dir, name), { force: true });
    }
    scans.clear();
    const ring = { fileCount: layout.fileCount, fileSizeBytes: layout.fileBytes };
    const argv = buildTcpdumpArgv(
      { interface: options.interface, bpf: '', snaplen, outFile, maxBytes: 0, timeLimitSeconds: 0, ring },
      options.netns ? { netns: options.netns } : {},
    );
    const [command, ...args] = argv;
    stderr = '';
    stopping = false;
    const proc = spawn(command as string, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    proc.stderr?.setEncoding('utf8');
    proc.stderr?.on('data', (chunk: string) => {
      stderr = (stderr + chunk).slice(-MAX_STDERR);
    });
    // 'close' comes after stderr is drained, so tcpdump's last words have been read.
    exited = new Promise((resolve) => {
      proc.once('error', () => proc.pid === undefined && resolve());
      proc.once('close', () => resolve());
    });

    try {
      await waitForListening(proc, exited, () => stderr, options.startTimeoutMs ?? 10_000);
    } catch (err) {
      child = undefined;
      throw err;
    }
    state = 'Running';
    stopReason = null;
    startedAtMs = Date.now();
    dropped = false;
    log.info({ dir: options.dir, interface: options.interface, snaplen, ...layout }, 'flight recorder started');
    void exited.then(() => onExit(proc));
    timer = setInterval(() => void check(), options.checkIntervalMs ?? 1000);
  }

  function onExit(proc: ChildProcess): void {
    if (child !== proc) return;
    clearInterval(timer);
    child = undefined;
    state = 'Stopped';
    if (stopping) return;
    const message = `tcpdump exited (${describeExit(proc)}): ${lastErrorLine(stderr)}`;
    stopReason = 'CaptureFailed';
    log.error({ dir: options.dir, stderr: stderr.trim() }, `flight recorder stopped: ${message}`);
    options.onStop?.('CaptureFailed', message);
  }

  /** Ends tcpdump: drains the kernel's last block first unless the disk must not take more. */
  async function terminate(reason: string, drainMs: number): Promise<void> {
    const proc = child;
    if (!proc || stopping) return exited;
    stopping = true;
    stopReason = reason;
    clearInterval(timer);
    if (drainMs > 0) await Promise.race([sleep(drainMs), exited]);
    proc.kill('SIGTERM');
    const kill = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(kill);
  }

  async function check(): Promise<void> {
    if (checking || stopping) return;
    checking = true;
    try {
      const fs = await statfs(options.dir);
      const freeBytes = Number(fs.bavail) * Number(fs.bsize);
      if (freeBytes < options.minFreeBytes) {
        const message =
          `free disk on ${options.dir} is ${formatBytes(freeBytes)}, below the floor of ` +
          `${formatBytes(options.minFreeBytes)}: flight recorder stopped`;
        log.warn({ dir: options.dir, freeBytes, minFreeBytes: options.minFreeBytes }, message);
        await terminate('DiskFloor', 0);
        options.onStop?.('DiskFloor', message);
        return;
      }
      await enforceCaps();
      await refreshScans();
    } catch (err) {
      log.warn({ dir: options.dir, err: errorMessage(err) }, 'flight recorder check failed');
    } finally {
      checking = false;
    }
  }

  /** Age cap, and a size check behind tcpdump's ring: deletes closed files only, oldest first. */
  async function enforceCaps(): Promise<void> {
    const files = listFiles();
    const closed = files.slice(0, -1);
    const oldestAllowedMs = Date.now() - options.maxAgeSeconds * 1000;
    let total = files.reduce((n, f) => n + f.size, 0);
    for (const file of closed) {
      const tooOld = file.mtimeMs < oldestAllowedMs;
      if (!tooOld && total <= layout.boundBytes) break;
      await unlink(file.path).catch(() => {});
      dropped = true;
      scans.delete(file.path);
      total -= file.size;
      log.debug({ file: basename(file.path), reason: tooOld ? 'age' : 'size' }, 'flight recorder deleted a file');
    }
  }

  /** Reads the new records of each file for its packet times; a file tcpdump reused is read from the start. */
  async function refreshScans(): Promise<void> {
    for (const file of listFiles()) {
      const cached = scans.get(file.path);
      const reused =
        !cached ||
        file.size < cached.validLength ||
        (cached.firstPacketTime !== undefined &&
          (await firstPacketTime(file.path, snaplen)) !== cached.firstPacketTime);
      const from = reused ? PCAP_FILE_HEADER_LENGTH : cached.validLength;
      const scan = await scanPcapFile(file.path, { startOffset: from }).catch(() => undefined);
      if (!scan) continue;
      const previous = reused ? undefined : cached;
      const entry: ScanCache = { validLength: scan.validLength };
      const first = previous?.firstPacketTime ?? scan.firstTime;
      const last = scan.lastTime ?? previous?.lastPacketTime;
      if (first) entry.firstPacketTime = first;
      if (last) entry.lastPacketTime = last;
      scans.set(file.path, entry);
    }
  }

  function status(): FlightRecorderStatus {
    const files = listFiles().map((file) => {
      const scan = scans.get(file.path);
      return {
        name: basename(file.path),
        size: file.size,
        ...(scan?.firstPacketTime ? { firstPacketTime: scan.firstPacketTime } : {}),
        ...(scan?.lastPacketTime ? { lastPacketTime: scan.lastPacketTime } : {}),
      };
    });
    return {
      state,
      stopReason,
      files,
      bytesOnDisk: files.reduce((n, f) => n + f.size, 0),
      oldestPacketTime: files.find((f) => f.firstPacketTime)?.firstPacketTime ?? null,
    };
  }

  function heldSinceMs(): number | null {
    const files = listFiles();
    const oldest = files[0];
    if (!oldest) return null;
    // All files made: tcpdump reuses the oldest from now on.
    if (!dropped && files.length < layout.fileCount) return startedAtMs;
    const first = scans.get(oldest.path)?.firstPacketTime;
    // A file without a packet yet was written (its header) when tcpdump opened it.
    return first ? Date.parse(first) : oldest.mtimeMs;
  }

  return {
    start,
    stop: () => terminate('ManuallyStopped', BLOCK_DRAIN_MS),
    status,
    files: () => listFiles().map((f) => f.path),
    heldSinceMs,
  };
}

function waitForListening(
  proc: ChildProcess,
  exited: Promise<void>,
  stderr: () => string,
  timeoutMs: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timeout);
      proc.stderr?.off('data', onData);
      if (!error) return resolve();
      proc.kill('SIGKILL');
      reject(error);
    };
    const onData = () => {
      if (/^(tcpdump: )?listening on /m.test(stderr())) finish();
    };
    const timeout = setTimeout(
      () => finish(new Error(`flight recorder: tcpdump did not start listening within ${timeoutMs} ms`)),
      timeoutMs,
    );
    proc.stderr?.on('data', onData);
    void exited.then(() =>
      finish(new Error(`flight recorder: tcpdump failed to start (${describeExit(proc)}): ${lastErrorLine(stderr())}`)),
    );
  });
}

function describeExit(proc: ChildProcess): string {
  return proc.signalCode ? `killed by ${proc.signalCode}` : `exit code ${proc.exitCode}`;
}

/** tcpdump's own error ("tcpdump: …"), not the packet statistics it prints after it; else its last line. */
function lastErrorLine(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  return lines.findLast((line) => line.startsWith('tcpdump: ')) ?? lines.at(-1) ?? 'no message';
}

/** The timestamp of a file's first record, read without walking the rest. */
async function firstPacketTime(path: string, snaplen: number): Promise<string | undefined> {
  const scan = await scanPcapFile(path, {
    maxBytes: PCAP_FILE_HEADER_LENGTH + PCAP_RECORD_HEADER_LENGTH + snaplen,
  }).catch(() => undefined);
  return scan?.firstTime;
}

function formatBytes(bytes: number): string {
  return bytes >= MEGABYTE ? `${(bytes / MEGABYTE).toFixed(1)} MB` : `${bytes} bytes`;
}

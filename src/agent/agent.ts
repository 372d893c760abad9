import { createHash } from 'node:crypto';
import { closeSync, createReadStream, existsSync, openSync, readSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { backoffMs, isoNow, sleep } from '../lib/time.js';
import { VERSION } from '../lib/version.js';
import { scanPcapFile } from '../pcap/classic.js';
import { readCaptureFile } from '../pcap/index.js';
import {
  type FileReport,
  type FlightRecorderReport,
  type FlightRecorderSettings,
  MAX_METRICS_BATCH,
  type PacketCaptureErrorCode,
  type PreTriggerReport,
  type StartCaptureJob,
  type StatusReport,
} from '../watcher/agent-protocol.js';
import {
  BLOCK_DRAIN_MS,
  type CaptureEngine,
  type CaptureHandle,
  type CaptureResult,
  createTcpdumpEngine,
  findOrphanTcpdump,
  stopOrphan,
} from './capture-engine.js';
import { type AgentClient, createAgentClient, ServerError } from './client.js';
import { createFlightRecorder, type FlightRecorder } from './flight-recorder.js';
import { defaultCaptureInterface, hostNics } from './host-info.js';
import { createHostMetricsSampler, createSampleOutbox } from './host-metrics.js';
import { cutRing, joinCapture } from './pre-trigger.js';

export interface AgentOptions {
  serverUrl: string;
  /** Enrollment token (admin), used only to register; the agent then keeps its own credential. */
  enrollToken?: string;
  name: string;
  resourceGroup: string;
  location: string;
  subscriptionId?: string;
  stateDir: string;
  captureRoot?: string;
  /** 'auto': the one NIC, or 'any' when there are several. */
  captureInterface?: string;
  ca?: string | Buffer;
  heartbeatSeconds?: number;
  /** How often sampled host metrics (one sample a second) are sent to the server (default 5 s); 0 turns metrics off. */
  metricsSeconds?: number;
  /** Where /proc is (tests). */
  procRoot?: string;
  engine?: CaptureEngine;
  logger: Logger;
}

interface Credentials {
  serverUrl: string;
  agentId: string;
  agentToken: string;
  vmId: string;
}

/** What the agent writes down about a job, so that a restart can finish it: stop an orphan, report, upload. */
interface JobRecord {
  job: StartCaptureJob;
  outFile: string;
  /** Where tcpdump writes when its file is joined to the ring's cut or turned into pcapng at the end. */
  liveFile?: string;
  /** The flight recorder's cut for the time before the start, once made. */
  preCut?: PreCut;
  pid?: number;
  startedAt?: string;
  /** Set once the capture ended; files get their checksums here so a retried upload sends the same bytes. */
  result?: {
    report: StatusReport;
    files: Array<FileReport & { path: string }>;
  };
  statusReported?: boolean;
  uploaded: number[];
}

/** What cutPreTrigger made of the ring: a file (null: nothing) and what it covers. */
interface PreCut {
  file: string | null;
  report: PreTriggerReport;
}

/** A capture whose file is made at the end from tcpdump's (pre-trigger join, pcapng) rather than written by it. */
function joinsFiles(job: StartCaptureJob): boolean {
  return !job.ring && ((job.preTriggerSeconds ?? 0) > 0 || job.fileFormat === 'pcapng');
}

/** pcapng options hold at most 65,535 bytes: a long comment goes in several (16,384 characters ≤ 65,536 bytes). */
function commentChunks(comments: string[]): string[] {
  return comments.flatMap((text) => text.match(/[\s\S]{1,16000}/g) ?? []);
}

export function createAgent(options: AgentOptions) {
  const { logger } = options;
  const captureRoot = resolve(options.captureRoot ?? '/var/captures');
  const client: AgentClient = createAgentClient({
    serverUrl: options.serverUrl,
    ...(options.ca ? { ca: options.ca } : {}),
  });
  const engine = options.engine ?? createTcpdumpEngine();
  const heartbeatMs = (options.heartbeatSeconds ?? 5) * 1000;
  const metricsMs = (options.metricsSeconds ?? 5) * 1000;
  /** Samples not yet accepted by the server, oldest first; at most 10 minutes' worth while the server is away. */
  const outbox = createSampleOutbox(600);
  const jobsDir = join(options.stateDir, 'jobs');
  const spoolDir = join(options.stateDir, 'spool');
  const credentialsFile = join(options.stateDir, 'credentials.json');
  const handles = new Map<string, CaptureHandle>();
  const active = new Map<string, JobRecord>();
  // Every job's work, so that a stop waits for records to be written.
  const tasks = new Set<Promise<void>>();
  let credentials: Promise<Credentials> | null = null;

  async function saveRecord(record: JobRecord) {
    const file = join(jobsDir, `${record.job.jobId}.json`);
    await writeFile(`${file}.tmp`, JSON.stringify(record), { mode: 0o600 });
    await rename(`${file}.tmp`, file);
  }

  async function loadCredentials(): Promise<Credentials | null> {
    try {
      const saved = JSON.parse(await readFile(credentialsFile, 'utf8')) as Credentials;
      // A credential belongs to one server and one VM: a changed --server or --name/--resource-group registers anew.
      const vmSuffix = `/resourcegroups/${options.resourceGroup}/providers/microsoft.compute/virtualmachines/${options.name}`;
      return saved.serverUrl === options.serverUrl && saved.vmId.toLowerCase().endsWith(vmSuffix.toLowerCase())
        ? saved
        : null;
    } catch {
      return null;
    }
  }

  async function register(): Promise<Credentials> {
    if (!options.enrollToken) {
      throw new Error('This agent has no credential for the server and no --token to register with.');
    }
    const response = await client.register(options.enrollToken, {
      name: options.name,
      resourceGroup: options.resourceGroup,
      location: options.location,
      ...(options.subscriptionId ? { subscriptionId: options.subscriptionId } : {}),
      osType: 'Linux',
      hostname: hostname(),
      nics: hostNics(),
      captureRoot,
      version: VERSION,
    });
    const saved = { serverUrl: options.serverUrl, ...response };
    await writeFile(credentialsFile, JSON.stringify(saved), { mode: 0o600 });
    logger.info({ vm: response.vmId, agentId: response.agentId }, 'registered with the server');
    return saved;
  }

  /** One shared promise: the heartbeat and job loops must not register twice at once (each would revoke the other). */
  function currentCredentials(fresh = false): Promise<Credentials> {
    if (fresh || !credentials) {
      const next: Promise<Credentials> = (
        fresh ? register() : loadCredentials().then((saved) => saved ?? register())
      ).catch((err) => {
        if (credentials === next) credentials = null; // try again on the next call
        throw err;
      });
      credentials = next;
    }
    return credentials;
  }

  /** Calls the server with the agent's credential, registering again if the server no longer knows it. */
  async function withCredentials<T>(fn: (token: string) => Promise<T>): Promise<T> {
    const current = currentCredentials();
    try {
      return await fn((await current).agentToken);
    } catch (err) {
      const refused = err instanceof ServerError && (err.status === 401 || err.code === 'AuthorizationFailed');
      if (!refused || !options.enrollToken) throw err;
      if (credentials === current) logger.warn('the server refused our credential: registering again');
      return fn((await currentCredentials(credentials === current)).agentToken);
    }
  }

  /** Retries a call to the server until it succeeds, the server says no for good, or the agent stops. */
  async function persist<T>(
    what: string,
    fn: (token: string) => Promise<T>,
    signal: AbortSignal,
  ): Promise<T | undefined> {
    for (let attempt = 0; !signal.aborted; attempt++) {
      try {
        return await withCredentials(fn);
      } catch (err) {
        if (err instanceof ServerError && !err.retryable) {
          logger.error({ err: err.message }, `${what}: the server refused it`);
          return undefined;
        }
        const wait = backoffMs(attempt, 15_000);
        logger.warn({ err: errorMessage(err), retryInMs: wait }, `${what} failed`);
        await sleep(wait, signal);
      }
    }
    return undefined;
  }

  function outFileFor(job: StartCaptureJob): string {
    if (!job.localFile) return join(spoolDir, `${job.jobId}.cap`);
    const file = resolve(job.localFile);
    // Defence in depth: the server checked this path already.
    if (!file.startsWith(captureRoot + sep))
      throw new Error(`${job.localFile} is outside the capture root ${captureRoot}`);
    return file;
  }

  async function describeFiles(paths: string[], kernelDrops: number, job: StartCaptureJob) {
    const files: Array<FileReport & { path: string }> = [];
    for (const [i, path] of paths.entries()) {
      if (!existsSync(path)) continue;
      const scan = await scanCaptureFile(path);
      const hash = createHash('sha256');
      for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
      files.push({
        path,
        seq: i + 1,
        size: scan.validLength,
        packets: scan.packets,
        kernelDrops: i === 0 ? kernelDrops : 0,
        sha256: hash.digest('hex'),
        ...(scan.firstTime ? { firstPacketTime: scan.firstTime } : {}),
        ...(scan.lastTime ? { lastPacketTime: scan.lastTime } : {}),
        ...(job.localFile ? { localPath: path } : {}),
      });
    }
    return files;
  }

  async function ended(record: JobRecord, result: CaptureResult) {
    const failed = result.stopReason === 'CaptureFailed' || result.stopReason === 'AgentStopped';
    const errors: PacketCaptureErrorCode[] = failed
      ? [result.stopReason === 'AgentStopped' ? 'AgentStopped' : 'CaptureFailed']
      : [];
    const report: StatusReport = {
      status: failed ? 'Error' : 'Stopped',
      time: result.endedAt,
      stopReason: result.stopReason,
      errors,
      ...(result.error ? { message: result.error.slice(0, 2000) } : {}),
      progress: {
        bytes: result.files.reduce((n, f) => n + f.size, 0),
        packets: result.packetsCaptured + (record.preCut?.report.packets ?? 0),
        ...(record.preCut ? { preTrigger: record.preCut.report } : {}),
      },
    };
    const files = await describeFiles(
      result.files.map((f) => f.path),
      result.kernelDrops,
      record.job,
    );
    record.result = { report, files };
    await saveRecord(record);
  }

  /** Reports the end and uploads the files; resumable from the record at any point. */
  async function deliver(record: JobRecord, signal: AbortSignal) {
    const { job } = record;
    const result = record.result;
    if (!result) return;
    if (!record.statusReported) {
      const report: StatusReport = job.upload
        ? result.report
        : { ...result.report, localFiles: result.files.map(({ path: _, ...f }) => f) };
      await persist('final status report', (t) => client.status(t, job.jobId, report), signal);
      if (signal.aborted) return;
      record.statusReported = true;
      await saveRecord(record);
    }
    active.delete(job.jobId);
    if (job.upload) {
      for (const file of result.files) {
        if (record.uploaded.includes(file.seq)) continue;
        const done = await persist(`upload of ${file.path}`, (t) => client.upload(t, job.jobId, file), signal);
        if (signal.aborted) return;
        if (!done) {
          logger.error({ file: file.path }, 'upload refused: the file stays on this host');
          continue;
        }
        record.uploaded.push(file.seq);
        await saveRecord(record);
        // The store confirmed the file: the spool copy can go; a user-asked local file stays.
        if (!job.localFile) await rm(file.path, { force: true });
        logger.info({ job: job.jobId, seq: file.seq, size: file.size }, 'capture file uploaded');
      }
    }
    await rm(join(jobsDir, `${job.jobId}.json`), { force: true });
  }

  function captureInterface(): string {
    return options.captureInterface && options.captureInterface !== 'auto'
      ? options.captureInterface
      : defaultCaptureInterface();
  }

  /**
   * The flight recorder's traffic of [start − N, now] through the session's filter, cut once the live capture
   * listens (the ring may overwrite it later). Never fails the capture: what the ring could not give is reported.
   */
  async function cutPreTrigger(record: JobRecord, startMs: number): Promise<PreCut> {
    const requestedSeconds = record.job.preTriggerSeconds ?? 0;
    const fromMs = startMs - requestedSeconds * 1000;
    const report = (coveredFromMs: number | null, packets: number, message?: string): PreTriggerReport => ({
      requestedSeconds,
      from: new Date(fromMs).toISOString(),
      coveredFrom: coveredFromMs === null ? null : new Date(coveredFromMs).toISOString(),
      coveredSeconds: coveredFromMs === null ? 0 : Math.max(0, Math.round((startMs - coveredFromMs) / 100) / 10),
      packets,
      seam: 'none',
      ...(message ? { message } : {}),
    });
    const ring = recorder?.engine;
    if (ring?.status().state !== 'Running') {
      return {
        file: null,
        report: report(null, 0, "This VM's flight recorder is not running: the file starts at the capture's start."),
      };
    }
    // Let the ring hand over the packets of the live capture's first moments, so that the two overlap at the seam.
    await sleep(BLOCK_DRAIN_MS + 300);
    const file = `${record.outFile}.pre`;
    try {
      const cut = await cutRing({
        ringFiles: ring.files(),
        heldSinceMs: ring.heldSinceMs(),
        fromMs,
        bpf: record.job.bpf,
        snaplen: record.job.snaplen,
        outFile: file,
      });
      if (cut.packets === 0) await rm(file, { force: true });
      const short =
        cut.coveredFromMs === null || cut.coveredFromMs > fromMs + 1000
          ? `The flight recorder held ${cut.coveredFromMs === null ? 'nothing' : `only the traffic since ${new Date(cut.coveredFromMs).toISOString()}`} of the ${requestedSeconds} s asked for.`
          : undefined;
      return { file: cut.packets > 0 ? file : null, report: report(cut.coveredFromMs, cut.packets, short) };
    } catch (err) {
      await rm(file, { force: true });
      return {
        file: null,
        report: report(null, 0, `Reading the flight recorder failed: ${errorMessage(err)}`.slice(0, 500)),
      };
    }
  }

  /** Makes the capture's one file from the ring's cut and tcpdump's live file; the parts are removed after. */
  async function joinFiles(record: JobRecord, result: CaptureResult): Promise<CaptureResult> {
    const { job, liveFile } = record;
    if (!liveFile) return result;
    const preCut = record.preCut;
    const comments = [...(job.comments ?? [])];
    if (preCut) comments.push(preTriggerComment(preCut.report, recorderSnaplen()));
    try {
      const joined = await joinCapture({
        preFile: preCut?.file ?? null,
        liveFile,
        outFile: record.outFile,
        format: job.fileFormat ?? 'pcap',
        snaplen: job.snaplen,
        liveStartMs: Date.parse(result.startedAt),
        comments: commentChunks(comments),
        interfaceName: captureInterface(),
      });
      if (preCut) preCut.report = { ...preCut.report, packets: joined.prePackets, seam: joined.seam };
      await rm(liveFile, { force: true });
      if (preCut?.file) await rm(preCut.file, { force: true });
      const size = (await stat(record.outFile)).size;
      return { ...result, files: [{ path: record.outFile, size, packets: joined.prePackets + joined.livePackets }] };
    } catch (err) {
      // The live capture stands on its own: keep it as the file rather than lose it.
      logger.error({ job: job.jobId, err: errorMessage(err) }, 'joining the capture file failed');
      await rm(record.outFile, { force: true });
      if (existsSync(liveFile)) await rename(liveFile, record.outFile);
      const error = `Joining the capture file failed (${errorMessage(err)}): the file holds the live capture only.`;
      return {
        ...result,
        files: result.files.map((f) => ({ ...f, path: record.outFile })),
        error: result.error ? `${result.error}; ${error}` : error,
      };
    }
  }

  function recorderSnaplen(): number | null {
    return recorder ? (JSON.parse(recorder.settings) as FlightRecorderSettings).snaplen : null;
  }

  async function runJob(job: StartCaptureJob, signal: AbortSignal) {
    const record: JobRecord = { job, outFile: '', uploaded: [] };
    active.set(job.jobId, record);
    try {
      record.outFile = outFileFor(job);
      if (existsSync(record.outFile))
        throw new Error(`${record.outFile} exists already: tripcap never overwrites a file`);
      if (joinsFiles(job)) record.liveFile = `${record.outFile}.live`;
      await mkdir(dirname(record.outFile), { recursive: true, mode: 0o750 });
      await saveRecord(record);
      const handle = await engine.start({
        interface: captureInterface(),
        bpf: job.bpf,
        snaplen: job.snaplen,
        outFile: record.liveFile ?? record.outFile,
        maxBytes: job.maxBytes,
        timeLimitSeconds: job.timeLimitSeconds,
        ...(job.ring ? { ring: job.ring } : {}),
      });
      handles.set(job.jobId, handle);
      record.pid = handle.pid;
      record.startedAt = handle.startedAt;
      await saveRecord(record);
      logger.info({ job: job.jobId, capture: job.captureId, pid: handle.pid }, 'capture running');
      const answer = await persist(
        'running status report',
        (t) => client.status(t, job.jobId, { status: 'Running', time: handle.startedAt }),
        signal,
      );
      // The capture was stopped or deleted while it was starting.
      if (answer?.stop) void handle.stop('ManuallyStopped');
      // Saved as soon as it is made: heartbeats show it, and an agent restarted mid-capture still joins it.
      const cut =
        job.preTriggerSeconds && record.liveFile
          ? cutPreTrigger(record, Date.parse(handle.startedAt)).then((preCut) => {
              record.preCut = preCut;
              return saveRecord(record);
            })
          : null;
      const result = await handle.done;
      handles.delete(job.jobId);
      await cut;
      logger.info({ job: job.jobId, stopReason: result.stopReason, packets: result.packetsCaptured }, 'capture ended');
      await ended(record, await joinFiles(record, result));
    } catch (err) {
      handles.delete(job.jobId);
      logger.error({ job: job.jobId, err: errorMessage(err) }, 'capture failed to start');
      const code: PacketCaptureErrorCode = record.outFile && !job.localFile ? 'CaptureFailed' : 'LocalFileFailed';
      record.result = {
        report: {
          status: 'Error',
          time: isoNow(),
          stopReason: 'CaptureFailed',
          errors: [code],
          message: errorMessage(err).slice(0, 2000),
        },
        files: [],
      };
      if (record.outFile) await saveRecord(record);
    }
    await deliver(record, signal);
  }

  /** Finishes the jobs of a previous life of this agent: stops an orphan tcpdump, reports, uploads. */
  async function recover(signal: AbortSignal) {
    await mkdir(jobsDir, { recursive: true, mode: 0o700 });
    for (const name of await readdir(jobsDir)) {
      if (!name.endsWith('.json')) continue;
      const record = JSON.parse(await readFile(join(jobsDir, name), 'utf8')) as JobRecord;
      if (!record.result) {
        const written = record.liveFile ?? record.outFile;
        if (record.pid && findOrphanTcpdump(record.pid, written)) await stopOrphan(record.pid, written);
        if (record.liveFile && existsSync(record.liveFile)) {
          await cutToCompleteRecords(record.liveFile);
          const startedAt = record.startedAt ?? isoNow();
          const partial = {
            stopReason: 'AgentStopped',
            files: [],
            kernelDrops: 0,
            packetsCaptured: 0,
            startedAt,
            endedAt: isoNow(),
          } satisfies CaptureResult;
          await joinFiles(record, partial);
        }
        const paths = (await listRingFiles(record)).filter((p) => existsSync(p));
        logger.warn(
          { job: record.job.jobId, files: paths.length },
          'recovering a capture interrupted by an agent restart',
        );
        const report: StatusReport = {
          status: 'Error',
          time: isoNow(),
          stopReason: 'AgentStopped',
          errors: ['AgentStopped'],
          message: 'The agent stopped during the capture; the file holds the packets captured until then.',
        };
        let files: Array<FileReport & { path: string }> = [];
        try {
          // A tcpdump killed mid-write (with the agent, or on a full disk) leaves a torn last record: cut it off, as
          // a normal end does, so that the reported size, the checksum and the upload cover the same bytes.
          for (const path of paths) await cutToCompleteRecords(path);
          files = await describeFiles(paths, 0, record.job);
        } catch (err) {
          // An unreadable file must not stop the agent from starting: report the capture without it.
          logger.error({ job: record.job.jobId, err: errorMessage(err) }, 'the interrupted capture file is unreadable');
          report.message =
            `The agent stopped during the capture and its file is unreadable: ${errorMessage(err)}`.slice(0, 2000);
        }
        report.progress = {
          bytes: files.reduce((n, f) => n + f.size, 0),
          packets: files.reduce((n, f) => n + f.packets, 0),
          ...(record.preCut ? { preTrigger: record.preCut.report } : {}),
        };
        record.result = { report, files };
        await saveRecord(record);
      }
      active.set(record.job.jobId, record);
      track(deliver(record, signal));
    }
  }

  async function cutToCompleteRecords(path: string) {
    if (isPcapng(path)) return; // written whole by joinCapture, never by a dying tcpdump
    const { validLength } = await scanPcapFile(path);
    if ((await stat(path)).size > validLength) await truncate(path, validLength);
  }

  async function listRingFiles(record: JobRecord): Promise<string[]> {
    if (!record.job.ring) return [record.outFile];
    const dir = dirname(record.outFile);
    const base = record.outFile.slice(dir.length + 1);
    return (await readdir(dir))
      .filter((f) => f.startsWith(base))
      .sort()
      .map((f) => join(dir, f));
  }

  function track(task: Promise<void>) {
    const tracked = task
      .catch((err) => logger.error({ err: errorMessage(err) }, 'job failed'))
      .finally(() => tasks.delete(tracked));
    tasks.add(tracked);
  }

  /** Packets in a running capture's file so far: each heartbeat reads only the records added since the last one. */
  const packetCounters = new Map<string, { offset: number; packets: number }>();
  async function packetsSoFar(jobId: string): Promise<number> {
    const record = active.get(jobId);
    if (!record || record.job.ring) return 0; // a ring overwrites itself: its count comes at the end
    const counter = packetCounters.get(jobId) ?? { offset: 0, packets: 0 };
    const scan = await scanPcapFile(record.liveFile ?? record.outFile, { startOffset: counter.offset }).catch(
      () => null,
    );
    if (scan) packetCounters.set(jobId, { offset: scan.validLength, packets: counter.packets + scan.packets });
    return packetCounters.get(jobId)?.packets ?? 0;
  }

  async function heartbeatLoop(signal: AbortSignal) {
    while (!signal.aborted) {
      const progress: Record<string, { bytes: number; packets: number }> = {};
      for (const [jobId, handle] of handles) {
        const preTrigger = active.get(jobId)?.preCut?.report;
        progress[jobId] = {
          bytes: handle.progress().bytes,
          packets: await packetsSoFar(jobId),
          ...(preTrigger ? { preTrigger } : {}),
        };
      }
      for (const jobId of packetCounters.keys()) if (!handles.has(jobId)) packetCounters.delete(jobId);
      try {
        const answer = await withCredentials((t) =>
          client.heartbeat(t, {
            running: [...active.keys()],
            progress,
            nics: hostNics(),
            ...(recorder ? { flightRecorder: recorderReport(recorder) } : {}),
          }),
        );
        await reconcileRecorder(answer.flightRecorder ?? null);
      } catch (err) {
        logger.warn({ err: errorMessage(err) }, 'heartbeat failed');
      }
      await sleep(heartbeatMs, signal);
    }
  }

  /** The flight recorder the server asked for (settings as JSON, to compare), or null. */
  let recorder: { settings: string; engine: FlightRecorder | null; failure: string | null } | null = null;

  /** Starts, restarts or stops the flight recorder to match the server's settings (from each heartbeat). */
  async function reconcileRecorder(settings: FlightRecorderSettings | null) {
    const wanted = settings ? JSON.stringify(settings) : null;
    // Same settings: leave it as it is, running or stopped by itself (DiskFloor stays stopped until changed).
    if (recorder?.settings === wanted) return;
    await recorder?.engine?.stop();
    recorder = null;
    if (!settings || !wanted) return;
    recorder = { settings: wanted, engine: null, failure: null };
    if (!settings.enabled) return;
    const engine = createFlightRecorder({
      dir: join(options.stateDir, 'flight-recorder'),
      interface:
        options.captureInterface && options.captureInterface !== 'auto'
          ? options.captureInterface
          : defaultCaptureInterface(),
      snaplen: settings.snaplen,
      maxBytes: settings.maxBytes,
      maxAgeSeconds: settings.maxAgeSeconds,
      minFreeBytes: settings.minFreeBytes,
      logger: logger.child({ part: 'flight-recorder' }),
      onStop: (reason, message) => {
        if (recorder) recorder.failure = message;
        logger.warn({ reason, message }, 'the flight recorder stopped');
      },
    });
    try {
      await engine.start();
      recorder.engine = engine;
      logger.info({ maxBytes: settings.maxBytes, maxAgeSeconds: settings.maxAgeSeconds }, 'flight recorder started');
    } catch (err) {
      recorder.failure = errorMessage(err).slice(0, 500);
      logger.error({ err: recorder.failure }, 'the flight recorder could not start');
    }
  }

  function recorderReport(r: NonNullable<typeof recorder>): FlightRecorderReport {
    if (!r.engine) {
      return {
        state: 'Stopped',
        stopReason: r.failure ? 'CaptureFailed' : 'Disabled',
        message: r.failure,
        bytesOnDisk: 0,
        files: 0,
        oldestPacketTime: null,
        newestPacketTime: null,
      };
    }
    const status = r.engine.status();
    return {
      state: status.state,
      stopReason: status.stopReason,
      message: r.failure,
      bytesOnDisk: status.bytesOnDisk,
      files: status.files.length,
      oldestPacketTime: status.oldestPacketTime,
      newestPacketTime: status.files.at(-1)?.lastPacketTime ?? null,
    };
  }

  /** Samples host metrics at every whole second of the clock. */
  async function sampleLoop(signal: AbortSignal) {
    const sampler = createHostMetricsSampler(options.procRoot ? { procRoot: options.procRoot } : {});
    let lastSampleTime = 0;
    // The first reading only sets the counters' baseline: take it at once, so that traffic from now on counts.
    await sampler.sample().catch((err) => logger.warn({ err: errorMessage(err) }, 'reading host metrics failed'));
    while (!signal.aborted) {
      await sleep(1000 - (Date.now() % 1000), signal);
      if (signal.aborted) break;
      try {
        // Whole seconds, strictly increasing: the server keeps one sample per second, so a late wake must not
        // reuse the previous second (its interval's bytes would be lost as a duplicate).
        lastSampleTime = Math.max(Math.round(Date.now() / 1000) * 1000, lastSampleTime + 1000);
        const sample = await sampler.sample(new Date(lastSampleTime));
        if (sample) outbox.push(sample);
      } catch (err) {
        logger.warn({ err: errorMessage(err) }, 'sampling host metrics failed');
      }
    }
  }

  /** Sends the samples in batches; what the server did not take stays for the next round. */
  async function metricsLoop(signal: AbortSignal) {
    let failures = 0;
    while (!signal.aborted) {
      await sleep(failures > 0 ? Math.max(metricsMs, backoffMs(failures, 30_000)) : metricsMs, signal);
      while (!signal.aborted && outbox.size > 0) {
        const batch = outbox.next(MAX_METRICS_BATCH);
        try {
          await withCredentials((t) => client.metrics(t, { samples: batch }));
          failures = 0;
        } catch (err) {
          if (!(err instanceof ServerError) || err.retryable) {
            failures++;
            logger.warn(
              { err: errorMessage(err), unsent: outbox.size, dropped: outbox.dropped },
              'sending host metrics failed',
            );
            break;
          }
          // Refused for good (a bad sample): dropping it keeps the rest flowing.
          logger.error({ err: err.message, samples: batch.length }, 'the server refused host metrics: dropped');
        }
        outbox.ack(batch);
      }
    }
  }

  async function jobLoop(signal: AbortSignal) {
    for (let attempt = 0; !signal.aborted; ) {
      try {
        const { jobs } = await withCredentials((t) => client.jobs(t, 25, signal));
        attempt = 0;
        for (const job of jobs) {
          if (job.type === 'start' && !active.has(job.jobId)) track(runJob(job, signal));
          if (job.type === 'stop') void handles.get(job.jobId)?.stop('ManuallyStopped');
        }
      } catch (err) {
        if (signal.aborted) break;
        const wait = backoffMs(attempt++, 10_000);
        logger.warn({ err: errorMessage(err), retryInMs: wait }, 'waiting for jobs failed');
        await sleep(wait, signal);
      }
    }
  }

  /** Runs until the signal aborts; then stops running captures (AgentStopped) and returns. */
  async function run(signal: AbortSignal) {
    await mkdir(options.stateDir, { recursive: true, mode: 0o700 });
    await chmod(options.stateDir, 0o700);
    await mkdir(spoolDir, { recursive: true, mode: 0o700 });
    await recover(signal);
    await Promise.all([
      heartbeatLoop(signal),
      jobLoop(signal),
      ...(metricsMs > 0 ? [sampleLoop(signal), metricsLoop(signal)] : []),
    ]);
    await Promise.all([...handles.values()].map((h) => h.stop('AgentStopped')));
    await recorder?.engine?.stop();
    await Promise.all(tasks);
    await client.close();
  }

  return { run, activeJobs: () => [...active.keys()] };
}

/** Packets, the first and last packet's time and the size of a capture file, classic pcap or pcapng. */
async function scanCaptureFile(path: string) {
  if (!isPcapng(path)) return scanPcapFile(path);
  let first: string | undefined;
  let last: string | undefined;
  const iso = (p: { seconds: number; nanos: number }) =>
    `${new Date(p.seconds * 1000).toISOString().slice(0, 19)}.${String(Math.floor(p.nanos / 1000)).padStart(6, '0')}Z`;
  const read = await readCaptureFile(path, (packet) => {
    if (first === undefined) first = iso(packet);
    last = iso(packet);
  });
  return {
    validLength: read.fileBytes,
    packets: read.packets,
    ...(first ? { firstTime: first } : {}),
    ...(last ? { lastTime: last } : {}),
  };
}

function isPcapng(path: string): boolean {
  const head = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, 4, 0);
  } finally {
    closeSync(fd);
  }
  return head.readUInt32BE(0) === 0x0a0d0d0a;
}

/** The pcapng comment that says what the file holds from before the capture's start. */
function preTriggerComment(report: PreTriggerReport, ringSnaplen: number | null): string {
  const held =
    report.coveredFrom === null
      ? 'nothing from before the start'
      : `the flight recorder's traffic since ${report.coveredFrom} (${report.coveredSeconds} s before the start${ringSnaplen ? `, the first ${ringSnaplen} bytes of each packet` : ''})`;
  return `tripcap pre-trigger: ${report.requestedSeconds} s asked (from ${report.from}); the file holds ${held}.${report.message ? ` ${report.message}` : ''}`;
}

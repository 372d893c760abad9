import type { Readable } from 'node:stream';
import type { Database } from '../db/index.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { isoNow } from '../lib/time.js';
import type { BlobStore } from '../storage/index.js';
import type { NicInfo } from './agent-protocol.js';

/** Analyses a capture's files, in order, as one capture; `hostIps` are the captured VM's addresses. */
export type AnalyzeCapture = (
  files: Array<() => Promise<Readable>>,
  /** `bytes`: the files' total size (the analysis sizes its tables from it). */
  options: { hostIps: string[]; bytes: number },
) => Promise<unknown>;

export interface CaptureReportsOptions {
  db: Database;
  store: BlobStore;
  logger: Logger;
  analyze: AnalyzeCapture;
}

export type ReportStatus = 'Pending' | 'Running' | 'Succeeded' | 'Failed';

/**
 * Every capture file that reaches the store gets its capture (re)analysed. The work is queued in the database, so a
 * restart resumes it, and runs one analysis at a time, so a burst of captures cannot starve the server.
 */
export function createCaptureReports(options: CaptureReportsOptions) {
  const { db, store, logger } = options;
  const queued = new Set<string>();
  let queue: Promise<void> = Promise.resolve();

  async function setStatus(jobId: string, status: ReportStatus, fields: { report?: string; error?: string } = {}) {
    const values = { status, report: fields.report ?? null, error: fields.error ?? null, updated_at: isoNow() };
    await db
      .insertInto('capture_reports')
      .values({ job_id: jobId, ...values })
      .onConflict((oc) =>
        oc
          .column('job_id')
          .doUpdateSet(
            status === 'Succeeded' || status === 'Failed' ? values : { status, updated_at: values.updated_at },
          ),
      )
      .execute();
  }

  async function analyzeJob(jobId: string) {
    queued.delete(jobId); // a file arriving from here on queues another pass
    await setStatus(jobId, 'Running');
    const started = Date.now();
    try {
      const capture = await db
        .selectFrom('packet_captures')
        .innerJoin('vms', 'vms.key', 'packet_captures.target_key')
        .select(['packet_captures.key', 'vms.nics'])
        .where('packet_captures.job_id', '=', jobId)
        .executeTakeFirstOrThrow();
      const files = await db
        .selectFrom('capture_files')
        .select(['blob_name', 'size'])
        .where('capture_key', '=', capture.key)
        .where('blob_name', '!=', '')
        .orderBy('seq')
        .execute();
      const hostIps = (JSON.parse(capture.nics) as NicInfo[]).flatMap((nic) => nic.ipAddresses);
      const report = await options.analyze(
        files.map((f) => async () => {
          const blob = await store.get(f.blob_name);
          if (!blob) throw new Error(`${f.blob_name} is no longer in storage`);
          return blob.stream;
        }),
        { hostIps, bytes: files.reduce((sum, f) => sum + Number(f.size), 0) },
      );
      await setStatus(jobId, 'Succeeded', { report: JSON.stringify(report) });
      logger.info({ job: jobId, files: files.length, ms: Date.now() - started }, 'capture analysed');
    } catch (err) {
      logger.warn({ job: jobId, err: errorMessage(err) }, 'capture analysis failed');
      await setStatus(jobId, 'Failed', { error: errorMessage(err).slice(0, 2000) });
    }
  }

  /** Queues an analysis of the capture's files (once, however many files arrive while it waits). */
  async function schedule(jobId: string) {
    await setStatus(jobId, 'Pending');
    if (queued.has(jobId)) return;
    queued.add(jobId);
    queue = queue.then(() => analyzeJob(jobId)).catch((err) => logger.error({ err }, 'report queue failed'));
  }

  /** Requeues what a previous run of the server left pending or running. */
  async function resume() {
    const rows = await db
      .selectFrom('capture_reports')
      .select('job_id')
      .where('status', 'in', ['Pending', 'Running'])
      .execute();
    for (const row of rows) await schedule(row.job_id);
    return rows.length;
  }

  async function get(jobId: string) {
    return db.selectFrom('capture_reports').selectAll().where('job_id', '=', jobId).executeTakeFirst();
  }

  /** Resolves when every queued analysis has run (for tests and shutdown). */
  const idle = () => queue;

  return { schedule, resume, get, idle };
}

export type CaptureReports = ReturnType<typeof createCaptureReports>;

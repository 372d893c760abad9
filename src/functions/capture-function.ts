import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Database, Schema } from '../db/index.js';
import { parseVmId } from '../lib/arm-id.js';
import { ApiError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { redactUrl } from '../lib/logger.js';
import { isoNow, sleep } from '../lib/time.js';
import type { EmailSender } from '../notify/email.js';
import { emailOf, type Notice, type WebhookFormat, webhookBody } from '../notify/message.js';
import { postJson } from '../notify/webhook.js';
import { parseAlertPayload } from './alert-sources.js';
import { resolveTarget } from './resolve-target.js';
import {
  CAPTURE_FILE_FORMATS,
  type CaptureFileFormat,
  type CaptureFunction,
  type CaptureRequest,
  type CaptureState,
  type IncomingAlert,
  MAX_CAPTURE_COMMENT_LENGTH,
  type NetworkWatcherPort,
  type VmCandidate,
  type WatcherRef,
} from './types.js';

/** What the function does with an alert: the capture it asks for, how it follows it, whom it tells. */
export interface CaptureFunctionSettings {
  /** The capture's parameters; its timeLimitInSeconds is the hard cap (TRIPCAP_CAPTURE_MAX_SECONDS). */
  capture: Omit<CaptureRequest, 'target' | 'preTriggerSeconds' | 'comment'> & { fileFormat: CaptureFileFormat };
  /** Seconds before the alert to include: 'auto' from the alert's window (preTriggerSecondsFor), or fixed (0: none). */
  preTriggerSeconds: number | 'auto';
  /** The function stops a capture this long after the last firing of its alerts (TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS). */
  secondsAfterLastFiring: number;
  /** No second capture of a VM within this many seconds of the last firing of the last capture the function started. */
  cooldownSeconds: number;
  /** A Resolved alert of a capture stops it, resolvedTailSeconds later. */
  stopOnResolved: boolean;
  resolvedTailSeconds: number;
  /** The most captures running at once on one watcher (location) before the function refuses. */
  maxRunningPerWatcher: number;
  /** How often a running capture's status is read. */
  pollSeconds: number;
  webhooks: Array<{ url: string; format: WebhookFormat }>;
  emailTo: string[];
}

type Env = NodeJS.ProcessEnv;

function envNumber(env: Env, name: string, fallback: number, min: number, max: number): number {
  const text = env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new Error(`${name} must be a whole number from ${min} to ${max}, not '${text.slice(0, 50)}'.`);
  }
  return n;
}

function envBoolean(env: Env, name: string, fallback: boolean): boolean {
  const text = (env[name] ?? '').trim().toLowerCase();
  if (text === '') return fallback;
  if (['1', 'true', 'yes'].includes(text)) return true;
  if (['0', 'false', 'no'].includes(text)) return false;
  throw new Error(`${name} must be true or false, not '${text.slice(0, 50)}'.`);
}

function envList(env: Env, name: string): string[] {
  return (env[name] ?? '')
    .split(/[,\s]+/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/**
 * The function's settings from environment variables (App settings in Azure), each documented in docs/functions.md.
 * A bad value is a one-line Error naming the variable.
 */
export function loadFunctionSettings(env: Env = process.env): CaptureFunctionSettings {
  let filters: CaptureRequest['filters'] = [];
  if (env.TRIPCAP_CAPTURE_FILTERS) {
    try {
      filters = JSON.parse(env.TRIPCAP_CAPTURE_FILTERS);
      if (!Array.isArray(filters)) throw new Error('not an array');
    } catch (err) {
      throw new Error(
        `TRIPCAP_CAPTURE_FILTERS must be a JSON array of Azure packet capture filters: ${errorMessage(err)}.`,
      );
    }
  }
  const storageId = env.TRIPCAP_CAPTURE_STORAGE_ID;
  const filePath = env.TRIPCAP_CAPTURE_FILE_PATH;
  const webhooks = envList(env, 'TRIPCAP_NOTIFY_WEBHOOKS').map((entry) => {
    // "slack:https://…", "teams:https://…" or a bare URL (plain JSON).
    const m = /^(json|slack|teams):(https?:\/\/.+)$/i.exec(entry);
    const url = m ? (m[2] as string) : entry;
    if (!/^https?:\/\//i.test(url)) {
      throw new Error(`TRIPCAP_NOTIFY_WEBHOOKS: '${redactUrl(entry).slice(0, 100)}' is not [json:|slack:|teams:]URL.`);
    }
    return { url, format: (m?.[1]?.toLowerCase() ?? 'json') as WebhookFormat };
  });
  const emailTo = envList(env, 'TRIPCAP_NOTIFY_EMAIL');
  for (const address of emailTo) {
    if (!/^[^\s@]+@[^\s@]+$/.test(address)) throw new Error(`TRIPCAP_NOTIFY_EMAIL: '${address}' is not an address.`);
  }
  const preTriggerText = (env.TRIPCAP_CAPTURE_PRE_TRIGGER_SECONDS ?? '').trim();
  let preTriggerSeconds: number | 'auto' = 'auto';
  if (preTriggerText !== '' && preTriggerText.toLowerCase() !== 'auto') {
    preTriggerSeconds = Number(preTriggerText);
    if (!Number.isInteger(preTriggerSeconds) || preTriggerSeconds < 0 || preTriggerSeconds > MAX_PRE_TRIGGER_SECONDS) {
      throw new Error(
        `TRIPCAP_CAPTURE_PRE_TRIGGER_SECONDS must be auto or a whole number from 0 to ${MAX_PRE_TRIGGER_SECONDS}, not '${preTriggerText.slice(0, 50)}'.`,
      );
    }
  }
  const fileFormat = (env.TRIPCAP_CAPTURE_FILE_FORMAT || 'pcapng').trim().toLowerCase() as CaptureFileFormat;
  if (!CAPTURE_FILE_FORMATS.includes(fileFormat)) {
    throw new Error(
      `TRIPCAP_CAPTURE_FILE_FORMAT must be pcapng or pcap, not '${String(env.TRIPCAP_CAPTURE_FILE_FORMAT).slice(0, 50)}'.`,
    );
  }
  const secondsAfterLastFiring = envNumber(env, 'TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS', 120, 1, 18_000);
  // A longer duration than the default cap raises the cap with it, so that a setting made before the cap existed
  // keeps its meaning; both set and contradicting is an error.
  const maxSeconds = envNumber(env, 'TRIPCAP_CAPTURE_MAX_SECONDS', Math.max(1800, secondsAfterLastFiring), 1, 18_000);
  if (secondsAfterLastFiring > maxSeconds) {
    throw new Error(
      `TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS (${secondsAfterLastFiring}) must not be more than TRIPCAP_CAPTURE_MAX_SECONDS (${maxSeconds}).`,
    );
  }
  return {
    capture: {
      bytesToCapturePerPacket: envNumber(env, 'TRIPCAP_CAPTURE_BYTES_PER_PACKET', 0, 0, 4_294_967_295),
      totalBytesPerSession: envNumber(env, 'TRIPCAP_CAPTURE_TOTAL_BYTES', 1_073_741_824, 0, 4_294_967_295),
      timeLimitInSeconds: maxSeconds,
      filters,
      storageLocation: {
        ...(storageId ? { storageId } : {}),
        ...(filePath ? { filePath } : {}),
        ...(!storageId && !filePath
          ? {
              storageId:
                '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/tripcap/providers/Microsoft.Storage/storageAccounts/tripcap',
            }
          : {}),
      },
      fileFormat,
    },
    preTriggerSeconds,
    secondsAfterLastFiring,
    cooldownSeconds: envNumber(env, 'TRIPCAP_CAPTURE_COOLDOWN_SECONDS', 600, 0, 86_400),
    stopOnResolved: envBoolean(env, 'TRIPCAP_CAPTURE_STOP_ON_RESOLVED', true),
    resolvedTailSeconds: envNumber(env, 'TRIPCAP_CAPTURE_RESOLVED_TAIL_SECONDS', 60, 0, 18_000),
    maxRunningPerWatcher: envNumber(env, 'TRIPCAP_CAPTURE_MAX_RUNNING', 10, 1, 10_000),
    pollSeconds: envNumber(env, 'TRIPCAP_CAPTURE_POLL_SECONDS', 5, 1, 300),
    webhooks,
    emailTo,
  };
}

export interface CaptureFunctionOptions {
  db: Database;
  watcher: NetworkWatcherPort;
  logger: Logger;
  settings: CaptureFunctionSettings;
  email?: EmailSender | null;
  /**
   * Every VM the function may capture, for alerts that name a host rather than a resource id (Alertmanager,
   * Grafana). Without it only resource ids resolve (the Azure adapter: Azure alerts carry them).
   */
  listVms?: () => Promise<VmCandidate[]>;
  /** The capture report's top findings, when the watcher analyses captures (tripcap's own). */
  findings?: (watcher: WatcherRef, captureName: string) => Promise<string[]>;
}

/** A job's notification to one channel: sent once, recorded. */
interface ChannelResult {
  channel: string;
  status: 'Succeeded' | 'Failed';
  time: string;
  error?: string;
}

type JobRow = Awaited<ReturnType<typeof loadJob>>;

async function loadJob(db: Database, id: string) {
  return db.selectFrom('capture_jobs').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
}

const FINAL_CAPTURE = ['Stopped', 'Error'];
const ACTIVE_JOB = ['Creating', 'Capturing', 'Notifying'];
/** Jobs whose capture a later firing may still extend (or a Resolved end): not yet stopping. */
const FOLLOWED_JOB = ['Creating', 'Capturing'];
/** Notification attempts per channel, a few seconds apart (action groups retry alerts; this retries the report). */
const NOTIFY_ATTEMPTS = 3;

/** The flight recorder reaches back this far at most (the watcher's limit for preTriggerSeconds). */
const MAX_PRE_TRIGGER_SECONDS = 3600;
/** For an alert without a window (Alertmanager, Grafana, some classic alerts): Azure's most common window, PT5M. */
export const FALLBACK_PRE_TRIGGER_SECONDS = 300;
/**
 * Added to the time since the window's start: one more window (at least this): a rule on Minimum or Average holds
 * only once the trouble has filled a window, so its onset lies up to a window (and a frequency) before the window.
 */
export const PRE_TRIGGER_MARGIN_SECONDS = 10;
/** A capture still running this long past its own time limit is stopped by the function (its limit failed). */
const PAST_LIMIT_GRACE_SECONDS = 60;

/**
 * Why a capture ended, as the job and the notification say it:
 * - AlertQuiet: the function stopped it TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS after the last firing of its alerts;
 * - Resolved: the function stopped it TRIPCAP_CAPTURE_RESOLVED_TAIL_SECONDS after a Resolved alert of it;
 * - MaxDuration: the capture reached its own time limit, TRIPCAP_CAPTURE_MAX_SECONDS (Azure's TimeExceeded);
 * - TotalBytesExceeded: the capture reached its byte limit, TRIPCAP_CAPTURE_TOTAL_BYTES;
 * - StoppedElsewhere: someone else stopped it (the API, the console, the CLI, Azure's portal);
 * - CaptureFailed: the capture ended in error.
 * Any other reason the service gives is passed on as it is.
 */
export type StopReason =
  | 'AlertQuiet'
  | 'Resolved'
  | 'MaxDuration'
  | 'TotalBytesExceeded'
  | 'StoppedElsewhere'
  | 'CaptureFailed';

/**
 * The seconds before the capture's start that the flight recorder adds: a fixed setting, or ('auto') from the
 * start of the alert's window to now, rounded up, plus one window length (at least 10 s); for an alert without a
 * window, 300 s.
 */
export function preTriggerSecondsFor(alert: IncomingAlert, setting: number | 'auto', now = Date.now()): number {
  if (setting !== 'auto') return setting;
  const windowStart = alert.windowStart ? Date.parse(alert.windowStart) : Number.NaN;
  if (Number.isNaN(windowStart)) return FALLBACK_PRE_TRIGGER_SECONDS;
  const windowEnd = alert.windowEnd ? Date.parse(alert.windowEnd) : Number.NaN;
  const windowSeconds = Number.isNaN(windowEnd) ? 0 : Math.ceil((windowEnd - windowStart) / 1000);
  const margin = Math.max(PRE_TRIGGER_MARGIN_SECONDS, windowSeconds);
  const seconds = Math.ceil(Math.max(0, now - windowStart) / 1000) + margin;
  return Math.min(seconds, MAX_PRE_TRIGGER_SECONDS);
}

/**
 * The pcapng file's comment: one line saying what the file is, then the alert's own JSON (pretty when it fits,
 * compact otherwise, cut at the limit as a last resort), so that the file explains itself wherever it goes.
 */
export function captureCommentFor(
  alert: IncomingAlert,
  job: { id: string; vm_id: string | null; received_at: string },
): string {
  const severity = alert.severity ? `, ${alert.severity}` : '';
  const header =
    `tripcap capture-on-alert: ${alert.condition} alert '${alert.ruleName.slice(0, 256)}' (${alert.source}${severity}) ` +
    `for ${job.vm_id ?? 'an unknown VM'}, received ${job.received_at}, job ${job.id}. The alert as delivered:`;
  const pretty = `${header}\n${JSON.stringify(alert.raw ?? null, null, 2)}`;
  if (pretty.length <= MAX_CAPTURE_COMMENT_LENGTH) return pretty;
  const compact = `${header}\n${JSON.stringify(alert.raw ?? null)}`;
  if (compact.length <= MAX_CAPTURE_COMMENT_LENGTH) return compact;
  const cut = `\n[cut at ${MAX_CAPTURE_COMMENT_LENGTH} characters: the whole alert is on tripcap's job ${job.id}]`;
  return compact.slice(0, MAX_CAPTURE_COMMENT_LENGTH - cut.length) + cut;
}

/** Why a capture ended: the function's own stop (requested), or what the capture says. */
export function endReason(requested: string | null, state: CaptureState): string {
  if (state.status === 'Error') return 'CaptureFailed';
  if (state.stopReason === 'TimeExceeded') return 'MaxDuration';
  if (state.stopReason === 'ManuallyStopped' || !state.stopReason) return requested ?? 'StoppedElsewhere';
  return state.stopReason;
}

/** A capture name unique to the job, valid in ARM (≤ 80 characters of letters, digits, `-`, `_`, `.`). */
export function captureNameFor(ruleName: string, jobId: string, now: Date = new Date()): string {
  const rule =
    ruleName
      .replace(/[^A-Za-z0-9_.-]+/g, '-')
      .replace(/^[-_.]+|[-_.]+$/g, '')
      .slice(0, 40) || 'alert';
  const stamp = now.toISOString().replace(/[-:]/g, '').slice(0, 15); // 20261129T221500
  return `alert-${rule}-${stamp}-${jobId.slice(0, 8)}`;
}

/** A new job row's fixed parts: received now, delivered once, nothing captured or notified yet. */
function newJob(fields: {
  dedup_key?: string;
  source: string;
  condition: string;
  rule_name: string;
  vm_id: string | null;
  alert: string;
}) {
  const now = isoNow();
  const id = randomUUID();
  return {
    id,
    dedup_key: '',
    deliveries: 1,
    watcher: null,
    capture_name: null,
    capture: null,
    notifications: '[]',
    received_at: now,
    updated_at: now,
    last_fired_at: now,
    ...fields,
  };
}

type Trx = Transaction<Schema>;
/** The function's stop of a capture: when, and the reason it will give. */
interface PlannedStop {
  at: number;
  reason: StopReason;
}

/**
 * capture-on-alert: from an alert of any source to a capture on the host that alerted, followed to its end, and a
 * notification with the file and the report's findings. Each alert is a persisted job; a repeated delivery finds
 * the first job (unique dedup key) and starts nothing.
 */
export function createCaptureFunction(options: CaptureFunctionOptions): CaptureFunction {
  const { db, watcher, logger, settings } = options;
  const inFlight = new Set<Promise<void>>();
  const closing = new AbortController();
  /** A job's follow loop, waiting: record() wakes it when an alert moved its stop time. */
  const wakers = new Map<string, () => void>();

  function background(jobId: string, work: (job: JobRow) => Promise<void>) {
    const run = (async () => {
      try {
        await work(await loadJob(db, jobId));
      } catch (err) {
        if (closing.signal.aborted) return; // shutting down: the job stays as it is, for resume()
        logger.error({ err: errorMessage(err), jobId }, 'capture-on-alert job failed');
        await update(jobId, { status: 'Failed', reason: 'InternalError', message: errorMessage(err).slice(0, 500) });
      }
    })();
    inFlight.add(run);
    void run.finally(() => inFlight.delete(run));
  }

  async function update(id: string, values: Partial<Omit<JobRow, 'id'>>) {
    await db
      .updateTable('capture_jobs')
      .set({ ...values, updated_at: isoNow() })
      .where('id', '=', id)
      .execute();
  }

  /** The VMs an alert may name: `known` (every VM, read once per body) or, without a list, its resource id's VM. */
  async function candidates(alert: IncomingAlert, known: VmCandidate[] | null): Promise<VmCandidate[]> {
    if (known) return known;
    // By resource id only: ask the watcher for that one VM.
    const id = alert.target.resourceId;
    if (!id || !parseVmId(id)) return [];
    const vm = await watcher.getVm(id);
    if (!vm) return [];
    const ref = parseVmId(vm.id);
    return [
      { id: vm.id, name: vm.name, resourceGroup: ref?.resourceGroup ?? '', location: vm.location, addresses: [] },
    ];
  }

  /** When the function stops the job's capture, and why: the earliest of its alerts' quiet time and Resolved tail. */
  function plannedStop(job: JobRow): PlannedStop {
    const lastFired = Date.parse(job.last_fired_at ?? job.received_at);
    let stop: PlannedStop = { at: lastFired + settings.secondsAfterLastFiring * 1000, reason: 'AlertQuiet' };
    if (job.resolved_at) {
      const afterResolved = Date.parse(job.resolved_at) + settings.resolvedTailSeconds * 1000;
      if (afterResolved < stop.at) stop = { at: afterResolved, reason: 'Resolved' };
    }
    // Never past the capture's own limit: from there on the capture ends itself.
    const limit = Date.parse(job.capture_started_at ?? job.received_at) + settings.capture.timeLimitInSeconds * 1000;
    return stop.at < limit ? stop : { at: limit, reason: 'MaxDuration' };
  }

  function describeStop(job: JobRow): string {
    const stop = plannedStop(job);
    const at = new Date(stop.at).toISOString();
    if (stop.reason === 'MaxDuration') return `it runs to its time limit, ${at}`;
    if (stop.reason === 'Resolved') return `it stops at ${at}, ${settings.resolvedTailSeconds} s after Resolved`;
    return `it stops at ${at}, ${settings.secondsAfterLastFiring} s after the last firing`;
  }

  /** The VM's capture that a firing extends or a Resolved ends: created or being created, and not stopping yet. */
  async function followedJob(trx: Trx, vmId: string) {
    return trx
      .selectFrom('capture_jobs')
      .selectAll()
      .where('vm_id', '=', vmId)
      .where('condition', '=', 'Fired')
      .where('status', 'in', FOLLOWED_JOB)
      .where('stop_reason', 'is', null)
      .orderBy('received_at', 'desc')
      .executeTakeFirst();
  }

  /** A firing while the VM is captured: its capture runs on, until the quiet time after this firing. */
  async function extend(trx: Trx, job: JobRow, now: string): Promise<string> {
    await trx
      .updateTable('capture_jobs')
      .set((eb) => ({ last_fired_at: now, resolved_at: null, extensions: eb('extensions', '+', 1), updated_at: now }))
      .where('id', '=', job.id)
      .execute();
    const extended = { ...job, last_fired_at: now, resolved_at: null };
    return `Extended the capture of job ${job.id}: ${describeStop(extended)}.`;
  }

  /** Whether a Resolved alert belongs to the job: the job's own rule, or the rule of an alert that extended it. */
  async function isAlertOf(trx: Trx, job: JobRow, ruleName: string): Promise<boolean> {
    if (job.rule_name === ruleName) return true;
    const extension = await trx
      .selectFrom('capture_jobs')
      .select('id')
      .where('capture_job_id', '=', job.id)
      .where('status', '=', 'Extended')
      .where('rule_name', '=', ruleName)
      .executeTakeFirst();
    return extension !== undefined;
  }

  /** Records one alert; decides at once whether it starts, extends or ends a capture. */
  async function record(
    alert: IncomingAlert,
    known: VmCandidate[] | null,
  ): Promise<{ outcome: string; jobId: string; message?: string; code?: string; changed?: string }> {
    const resolution = resolveTarget(alert, await candidates(alert, known));
    const base = newJob({
      dedup_key: alert.dedupKey,
      source: alert.source,
      condition: alert.condition,
      rule_name: alert.ruleName.slice(0, 256),
      vm_id: resolution.ok ? resolution.vm.id : null,
      alert: JSON.stringify(alert),
    });
    // One instant for the alert: its job's receipt, and the firing or Resolved it records on a capturing job.
    const { id, received_at: now } = base;
    // One transaction: the dedup check, the VM's current captures and the new job are decided together, so 100
    // deliveries at once, or two alerts for one VM, start one capture; the follow loop's stop is one statement that
    // checks what this may have changed.
    return db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('capture_jobs')
        .select(['id', 'status'])
        .where('dedup_key', '=', alert.dedupKey)
        .executeTakeFirst();
      if (existing) {
        await trx
          .updateTable('capture_jobs')
          .set((eb) => ({ deliveries: eb('deliveries', '+', 1), updated_at: now }))
          .where('id', '=', existing.id)
          .execute();
        const already = `Already received (job ${existing.id}, ${existing.status}).`;
        // A repeated delivery of a Fired alert (Alertmanager's repeat_interval) says it still fires.
        const followed = resolution.ok && alert.condition === 'Fired' ? await followedJob(trx, resolution.vm.id) : null;
        if (followed) {
          const message = `${already} ${await extend(trx, followed, now)}`;
          return { outcome: 'Extended', jobId: existing.id, message, changed: followed.id };
        }
        return { outcome: 'Duplicate', jobId: existing.id, message: already };
      }
      if (!resolution.ok) {
        await trx
          .insertInto('capture_jobs')
          .values({ ...base, status: 'Rejected', reason: resolution.code, message: resolution.message })
          .execute();
        return { outcome: 'Rejected', jobId: id, code: resolution.code, message: resolution.message };
      }
      const followed = await followedJob(trx, resolution.vm.id);
      if (alert.condition === 'Resolved') {
        if (settings.stopOnResolved && followed && (await isAlertOf(trx, followed, base.rule_name))) {
          await trx
            .updateTable('capture_jobs')
            .set({ resolved_at: now, updated_at: now })
            .where('id', '=', followed.id)
            .execute();
          const message = `The capture of job ${followed.id} ends: ${describeStop({ ...followed, resolved_at: now })}, unless an alert of it fires again.`;
          await trx
            .insertInto('capture_jobs')
            .values({ ...base, status: 'Recorded', reason: 'Resolved', message, capture_job_id: followed.id })
            .execute();
          return { outcome: 'Recorded', jobId: id, message, changed: followed.id };
        }
        await trx
          .insertInto('capture_jobs')
          .values({ ...base, status: 'Recorded', reason: 'Resolved', message: null })
          .execute();
        return { outcome: 'Recorded', jobId: id, message: 'A Resolved alert is recorded; it starts no capture.' };
      }
      if (followed) {
        const message = await extend(trx, followed, now);
        await trx
          .insertInto('capture_jobs')
          .values({ ...base, status: 'Extended', reason: null, message, capture_job_id: followed.id })
          .execute();
        return { outcome: 'Extended', jobId: id, message, changed: followed.id };
      }
      const recent = await trx
        .selectFrom('capture_jobs')
        .select(['id', 'status', 'last_fired_at'])
        .where('vm_id', '=', resolution.vm.id)
        .where('condition', '=', 'Fired')
        .where((eb) =>
          eb.or([
            eb('status', 'in', ACTIVE_JOB),
            eb.and([
              eb('status', 'in', ['Completed', 'Failed']),
              eb('last_fired_at', '>=', new Date(Date.now() - settings.cooldownSeconds * 1000).toISOString()),
              eb('capture_name', 'is not', null),
            ]),
          ]),
        )
        .orderBy('received_at', 'desc')
        .executeTakeFirst();
      if (recent) {
        // An active job here is one whose capture is already stopping: too late to extend it.
        const capturing = ACTIVE_JOB.includes(recent.status);
        const status = capturing ? 'AlreadyCapturing' : 'CoolingDown';
        const message = capturing
          ? `${resolution.vm.name} is already being captured for an earlier alert (job ${recent.id}), whose capture is ending.`
          : `${resolution.vm.name} was captured for an alert that last fired at ${recent.last_fired_at}; no second capture within ${settings.cooldownSeconds} s.`;
        await trx
          .insertInto('capture_jobs')
          .values({ ...base, status, reason: status, message })
          .execute();
        return { outcome: status, jobId: id, message };
      }
      await trx
        .insertInto('capture_jobs')
        .values({ ...base, status: 'Creating', reason: null, message: null })
        .execute();
      return { outcome: 'Accepted', jobId: id };
    });
  }

  async function accept(body: unknown): Promise<{ status: number; body: unknown }> {
    let parsed: ReturnType<typeof parseAlertPayload>;
    try {
      parsed = parseAlertPayload(body);
    } catch (err) {
      const e = err instanceof ApiError ? err : new ApiError(400, 'InvalidRequestContent', errorMessage(err));
      await recordRefusal({ code: e.code, message: e.message });
      return { status: e.status, body: e.toBody() };
    }
    const results = [];
    const known = options.listVms ? await options.listVms() : null;
    for (const alert of parsed.alerts) {
      const { changed, ...result } = await record(alert, known);
      results.push({ ruleName: alert.ruleName, condition: alert.condition, ...result });
      if (result.outcome === 'Accepted') background(result.jobId, capture);
      // The job's stop time moved: its follow loop plans again now rather than at its next poll.
      if (changed) wakers.get(changed)?.();
    }
    const refused = results.filter((r) => r.outcome === 'Rejected');
    logger.info({ source: parsed.source, results: results.map((r) => `${r.outcome}:${r.jobId}`) }, 'alert received');
    if (refused.length === results.length) {
      const first = refused[0];
      return {
        status: 400,
        body: {
          error: { code: first?.code ?? 'Rejected', message: first?.message ?? 'No alert could be acted on.' },
          alerts: results,
        },
      };
    }
    return { status: 202, body: { source: parsed.source, alerts: results } };
  }

  /** The capture flow of one Fired alert; each step is written down before the next, so resume() continues it. */
  async function capture(job: JobRow): Promise<void> {
    const alert = JSON.parse(job.alert) as IncomingAlert;
    let ref = job.watcher ? (JSON.parse(job.watcher) as WatcherRef) : null;
    let name = job.capture_name;
    if (job.status === 'Creating') {
      const vmId = job.vm_id ?? '';
      const vm = await watcher.getVm(vmId);
      if (!vm) return fail(job, 'TargetNotFound', `The VM ${vmId} is gone.`);
      const subscriptionId = parseVmId(vm.id)?.subscriptionId ?? '';
      ref = await watcher.findWatcher(subscriptionId, vm.location);
      if (!ref) return fail(job, 'NoNetworkWatcher', `No network watcher serves location '${vm.location}'.`);
      const captures = await watcher.listCaptures(ref);
      name ??= captureNameFor(alert.ruleName, job.id);
      if (!captures.some((c) => c.name === name)) {
        const running = captures.filter((c) => c.status === 'Running' || c.status === 'NotStarted');
        if (running.some((c) => c.target.toLowerCase() === vmId.toLowerCase())) {
          return fail(
            job,
            'AlreadyCapturing',
            `${vm.name} already has a capture running (${running.map((c) => c.name).join(', ')}).`,
            false,
          );
        }
        if (running.length >= settings.maxRunningPerWatcher) {
          return fail(
            job,
            'LimitReached',
            `${running.length} captures are running in ${ref.location} (the most is ${settings.maxRunningPerWatcher}).`,
            false,
          );
        }
        // Saved before the create: a resume finds the capture by this name instead of making another.
        await update(job.id, { watcher: JSON.stringify(ref), capture_name: name, capture_started_at: isoNow() });
        // Decided now, once: the flight recorder must reach back to the alert's window from this moment.
        const preTriggerSeconds = preTriggerSecondsFor(alert, settings.preTriggerSeconds);
        const request: CaptureRequest = {
          ...settings.capture,
          target: vm.id,
          ...(preTriggerSeconds > 0 ? { preTriggerSeconds } : {}),
          ...(settings.capture.fileFormat === 'pcapng' ? { comment: captureCommentFor(alert, job) } : {}),
        };
        await watcher.createCapture(ref, name, request);
        logger.info({ jobId: job.id, capture: name, vm: vm.name, preTriggerSeconds }, 'capture started for an alert');
      }
      await update(job.id, { status: 'Capturing' });
      job = await loadJob(db, job.id);
    }
    if (!ref || !name) return fail(job, 'InternalError', 'The job lost its capture.');
    if (job.status === 'Capturing') {
      const { state, stopReason } = await follow(job.id, ref, name);
      await update(job.id, { status: 'Notifying', capture: JSON.stringify(state), stop_reason: stopReason });
      job = await loadJob(db, job.id);
    }
    if (job.status === 'Notifying') {
      const state = JSON.parse(job.capture ?? '{}') as CaptureState;
      const findings = options.findings ? await options.findings(ref, name).catch(() => []) : [];
      await notify(job, noticeFor(alert, job, state, findings, settings));
      await update(job.id, {
        status: state.status === 'Error' ? 'Failed' : 'Completed',
        reason: state.status === 'Error' ? 'CaptureFailed' : null,
        message:
          state.status === 'Error'
            ? `The capture ended in error: ${state.errors.join(', ') || state.stopReason}`
            : null,
      });
    }
  }

  /**
   * Follows the capture until it ends: stops it at the planned time (re-read from the job at each turn, since alerts
   * move it), waking at that time, at each poll, or when an alert changed the job in this process.
   */
  async function follow(
    jobId: string,
    ref: WatcherRef,
    name: string,
  ): Promise<{ state: CaptureState; stopReason: string }> {
    for (;;) {
      const state = await watcher.getCapture(ref, name);
      const job = await loadJob(db, jobId);
      if (FINAL_CAPTURE.includes(state.status)) return { state, stopReason: endReason(job.stop_reason, state) };
      let waitMs = settings.pollSeconds * 1000;
      if (!job.stop_reason) {
        const stop = plannedStop(job);
        // The capture's own limit ends it; only if that failed does the function stop it, a while later.
        const stopAt = stop.reason === 'MaxDuration' ? stop.at + PAST_LIMIT_GRACE_SECONDS * 1000 : stop.at;
        if (Date.now() >= stopAt) {
          if (await claimStop(job, stop.reason)) {
            await watcher.stopCapture(ref, name);
            logger.info({ jobId, capture: name, stopReason: stop.reason }, 'capture stopped by the function');
          }
          continue; // a stop is quick: read the state again at once (or plan again, if an alert just came)
        }
        waitMs = Math.min(waitMs, stopAt - Date.now());
      }
      await wakeable(jobId, waitMs);
      if (closing.signal.aborted) throw new Error('closing');
    }
  }

  /**
   * Writes the stop's reason before the stop (a restart then knows the stop was the function's), unless an alert
   * changed the job since it was read: one statement, so it and record()'s transaction never interleave.
   */
  async function claimStop(job: JobRow, reason: StopReason): Promise<boolean> {
    const result = await db
      .updateTable('capture_jobs')
      .set({ stop_reason: reason, updated_at: isoNow() })
      .where('id', '=', job.id)
      .where('stop_reason', 'is', null)
      .where((eb) =>
        eb.and([
          job.last_fired_at === null ? eb('last_fired_at', 'is', null) : eb('last_fired_at', '=', job.last_fired_at),
          job.resolved_at === null ? eb('resolved_at', 'is', null) : eb('resolved_at', '=', job.resolved_at),
        ]),
      )
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  /** Waits `ms`, or less when record() changes the job (wakers) or the function closes. */
  function wakeable(jobId: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (closing.signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        if (wakers.get(jobId) === done) wakers.delete(jobId);
        closing.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      wakers.set(jobId, done);
      closing.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Ends a job that could not capture, and tells people why: at 2 AM "no capture, and why" is news too. */
  async function fail(job: JobRow, reason: string, message: string, error = true) {
    if (error) logger.warn({ jobId: job.id, reason, message }, 'capture-on-alert could not capture');
    await update(job.id, { status: error ? 'Failed' : reason, reason, message });
    const alert = JSON.parse(job.alert) as IncomingAlert;
    await notify(await loadJob(db, job.id), failureNotice(alert, job, reason, message));
  }

  /** Sends to every channel not yet done (a resumed job does not notify a channel twice). */
  async function notify(job: JobRow, notice: Notice) {
    const done = JSON.parse(job.notifications) as ChannelResult[];
    const channels: Array<{ channel: string; send: () => Promise<void> }> = [
      ...settings.webhooks.map((w) => ({
        channel: `webhook:${w.format}:${redactUrl(w.url)}`,
        send: async () => {
          const { status } = await postJson(w.url, webhookBody(w.format, notice), { timeoutMs: 10_000 });
          if (status < 200 || status >= 300) throw new Error(`HTTP ${status}`);
        },
      })),
      ...settings.emailTo.map((to) => ({
        channel: `email:${to}`,
        send: async () => {
          if (!options.email) throw new Error('no SMTP server configured (smtpHost)');
          await options.email.send(to, emailOf(notice));
        },
      })),
    ];
    for (const { channel, send } of channels) {
      if (done.some((d) => d.channel === channel)) continue;
      let error: string | undefined;
      for (let attempt = 1; attempt <= NOTIFY_ATTEMPTS; attempt++) {
        try {
          await send();
          error = undefined;
          break;
        } catch (err) {
          error = errorMessage(err).slice(0, 300);
          if (attempt < NOTIFY_ATTEMPTS) await sleep(2000 * attempt);
        }
      }
      done.push({ channel, status: error ? 'Failed' : 'Succeeded', time: isoNow(), ...(error ? { error } : {}) });
      await update(job.id, { notifications: JSON.stringify(done) });
    }
  }

  async function recordRefusal(error: { code: string; message: string }): Promise<void> {
    const job = newJob({ source: 'unknown', condition: 'Fired', rule_name: '', vm_id: null, alert: 'null' });
    await db
      .insertInto('capture_jobs')
      .values({
        ...job,
        dedup_key: `refused:${job.id}`,
        status: 'Rejected',
        reason: error.code,
        message: error.message.slice(0, 500),
      })
      .execute();
  }

  async function resume(): Promise<number> {
    const jobs = await db.selectFrom('capture_jobs').select('id').where('status', 'in', ACTIVE_JOB).execute();
    for (const { id } of jobs) background(id, capture);
    return jobs.length;
  }

  async function idle(): Promise<void> {
    while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
  }

  async function close(): Promise<void> {
    closing.abort();
    await idle();
  }

  return { accept, recordRefusal, resume, idle, close };
}

/** What people are told when an accepted alert could not be captured. */
function failureNotice(alert: IncomingAlert, job: JobRow, reason: string, message: string): Notice {
  const vmName = job.vm_id?.split('/').pop() ?? 'unknown VM';
  return {
    title: `No packet capture for alert '${alert.ruleName}' on ${vmName}: ${reason}`,
    lines: [message],
    facts: [
      [
        'Alert',
        `${alert.ruleName} (${alert.source}, ${alert.condition}${alert.severity ? `, ${alert.severity}` : ''})`,
      ],
      ['Fired', alert.firedAt ?? job.received_at],
      ['VM', job.vm_id ?? ''],
    ],
    data: {
      alert: { source: alert.source, ruleName: alert.ruleName, condition: alert.condition, severity: alert.severity },
      vm: job.vm_id,
      jobId: job.id,
      capture: null,
      error: { code: reason, message },
    },
  };
}

/** What people are told when a capture for an alert ends. */
/** A stop reason in words, for people. */
export function describeStopReason(reason: string | null, settings: CaptureFunctionSettings): string {
  switch (reason) {
    case 'AlertQuiet':
      return `AlertQuiet: no firing for ${settings.secondsAfterLastFiring} s`;
    case 'Resolved':
      return `Resolved: ${settings.resolvedTailSeconds} s after the alert was resolved`;
    case 'MaxDuration':
      return `MaxDuration: the longest capture, ${settings.capture.timeLimitInSeconds} s`;
    case 'TotalBytesExceeded':
      return `TotalBytesExceeded: ${settings.capture.totalBytesPerSession} bytes captured`;
    case 'StoppedElsewhere':
      return 'StoppedElsewhere: stopped by someone else';
    case 'CaptureFailed':
      return 'CaptureFailed: the capture ended in error';
    default:
      return reason ?? 'unknown';
  }
}

function noticeFor(
  alert: IncomingAlert,
  job: JobRow,
  state: CaptureState,
  findings: string[],
  settings: CaptureFunctionSettings,
): Notice {
  const vmName = job.vm_id?.split('/').pop() ?? 'unknown VM';
  const file = state.files[0];
  const title = `Packet capture for alert '${alert.ruleName}' on ${vmName}: ${state.status}`;
  const facts: Array<[string, string]> = [
    ['Alert', `${alert.ruleName} (${alert.source}, ${alert.condition}${alert.severity ? `, ${alert.severity}` : ''})`],
    ['Fired', alert.firedAt ?? job.received_at],
    ['VM', job.vm_id ?? ''],
    ['Capture', `${job.capture_name ?? ''}: ${state.status}${state.stopReason ? ` (${state.stopReason})` : ''}`],
    ['Ended', describeStopReason(job.stop_reason, settings)],
  ];
  if (job.extensions > 0) {
    facts.push(['Extended', `${job.extensions} time(s) by later firings, the last at ${job.last_fired_at}`]);
  }
  if (state.errors.length) facts.push(['Errors', state.errors.join(', ')]);
  if (file?.url) facts.push(['File', redactUrl(file.url)]);
  if (file?.sha256) facts.push(['SHA-256', file.sha256]);
  if (file?.size !== null && file?.size !== undefined) facts.push(['Size', `${file.size} bytes`]);
  return {
    title,
    lines: findings.slice(0, 5),
    facts,
    data: {
      alert: {
        source: alert.source,
        ruleName: alert.ruleName,
        condition: alert.condition,
        severity: alert.severity,
        firedAt: alert.firedAt,
        windowStart: alert.windowStart,
        windowEnd: alert.windowEnd,
      },
      vm: job.vm_id,
      jobId: job.id,
      stopReason: job.stop_reason,
      extensions: job.extensions,
      lastFiredAt: job.last_fired_at,
      capture: {
        name: job.capture_name,
        status: state.status,
        stopReason: state.stopReason,
        errors: state.errors,
        startTime: state.startTime,
        files: state.files.map((f) => ({ ...f, url: f.url ? redactUrl(f.url) : null })),
      },
      findings,
    },
  };
}

import { randomUUID } from 'node:crypto';
import type { Database } from '../db/index.js';
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
import type {
  CaptureFunction,
  CaptureRequest,
  CaptureState,
  IncomingAlert,
  NetworkWatcherPort,
  VmCandidate,
  WatcherRef,
} from './types.js';

/** What the function does with an alert: the capture it asks for, how it follows it, whom it tells. */
export interface CaptureFunctionSettings {
  capture: Omit<CaptureRequest, 'target'>;
  /** No second capture of a VM within this many seconds of the last one the function started. */
  cooldownSeconds: number;
  /** Stop the capture when its alert is Resolved. */
  stopOnResolved: boolean;
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
  const preTriggerSeconds = envNumber(env, 'TRIPCAP_CAPTURE_PRE_TRIGGER_SECONDS', 0, 0, 3600);
  return {
    capture: {
      bytesToCapturePerPacket: envNumber(env, 'TRIPCAP_CAPTURE_BYTES_PER_PACKET', 0, 0, 4_294_967_295),
      totalBytesPerSession: envNumber(env, 'TRIPCAP_CAPTURE_TOTAL_BYTES', 1_073_741_824, 0, 4_294_967_295),
      timeLimitInSeconds: envNumber(env, 'TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS', 120, 1, 18_000),
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
      ...(preTriggerSeconds ? { preTriggerSeconds } : {}),
    },
    cooldownSeconds: envNumber(env, 'TRIPCAP_CAPTURE_COOLDOWN_SECONDS', 600, 0, 86_400),
    stopOnResolved: /^(1|true|yes)$/i.test(env.TRIPCAP_CAPTURE_STOP_ON_RESOLVED ?? ''),
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
/** Notification attempts per channel, a few seconds apart (action groups retry alerts; this retries the report). */
const NOTIFY_ATTEMPTS = 3;

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
    ...fields,
  };
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

  /** Records one alert; decides at once whether it starts a capture. */
  async function record(
    alert: IncomingAlert,
    known: VmCandidate[] | null,
  ): Promise<{ outcome: string; jobId: string; message?: string; code?: string }> {
    const resolution = resolveTarget(alert, await candidates(alert, known));
    const now = isoNow();
    const base = newJob({
      dedup_key: alert.dedupKey,
      source: alert.source,
      condition: alert.condition,
      rule_name: alert.ruleName.slice(0, 256),
      vm_id: resolution.ok ? resolution.vm.id : null,
      alert: JSON.stringify(alert),
    });
    const { id } = base;
    // One transaction: the dedup check, the VM's current captures and the new job are decided together, so 100
    // deliveries at once, or two alerts for one VM, start one capture.
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
        return {
          outcome: 'Duplicate',
          jobId: existing.id,
          message: `Already received (job ${existing.id}, ${existing.status}).`,
        };
      }
      if (!resolution.ok) {
        await trx
          .insertInto('capture_jobs')
          .values({ ...base, status: 'Rejected', reason: resolution.code, message: resolution.message })
          .execute();
        return { outcome: 'Rejected', jobId: id, code: resolution.code, message: resolution.message };
      }
      if (alert.condition === 'Resolved') {
        await trx
          .insertInto('capture_jobs')
          .values({ ...base, status: 'Recorded', reason: 'Resolved', message: null })
          .execute();
        return { outcome: 'Recorded', jobId: id, message: 'A Resolved alert is recorded; it starts no capture.' };
      }
      const recent = await trx
        .selectFrom('capture_jobs')
        .select(['id', 'status', 'received_at'])
        .where('vm_id', '=', resolution.vm.id)
        .where('condition', '=', 'Fired')
        .where((eb) =>
          eb.or([
            eb('status', 'in', ACTIVE_JOB),
            eb.and([
              eb('status', 'in', ['Completed', 'Failed']),
              eb('received_at', '>=', new Date(Date.now() - settings.cooldownSeconds * 1000).toISOString()),
              eb('capture_name', 'is not', null),
            ]),
          ]),
        )
        .orderBy('received_at', 'desc')
        .executeTakeFirst();
      if (recent) {
        const capturing = ACTIVE_JOB.includes(recent.status);
        const status = capturing ? 'AlreadyCapturing' : 'CoolingDown';
        const message = capturing
          ? `${resolution.vm.name} is already being captured for an earlier alert (job ${recent.id}).`
          : `${resolution.vm.name} was captured for an alert at ${recent.received_at}; no second capture within ${settings.cooldownSeconds} s.`;
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
      const result = await record(alert, known);
      results.push({ ruleName: alert.ruleName, condition: alert.condition, ...result });
      if (result.outcome === 'Accepted') background(result.jobId, capture);
      else if (result.outcome === 'Recorded' && settings.stopOnResolved) background(result.jobId, stopForResolved);
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
        await update(job.id, { watcher: JSON.stringify(ref), capture_name: name });
        await watcher.createCapture(ref, name, { ...settings.capture, target: vm.id });
        logger.info({ jobId: job.id, capture: name, vm: vm.name }, 'capture started for an alert');
      }
      await update(job.id, { status: 'Capturing' });
      job = await loadJob(db, job.id);
    }
    if (!ref || !name) return fail(job, 'InternalError', 'The job lost its capture.');
    if (job.status === 'Capturing') {
      const state = await follow(ref, name);
      await update(job.id, { status: 'Notifying', capture: JSON.stringify(state) });
      job = await loadJob(db, job.id);
    }
    if (job.status === 'Notifying') {
      const state = JSON.parse(job.capture ?? '{}') as CaptureState;
      const findings = options.findings ? await options.findings(ref, name).catch(() => []) : [];
      await notify(job, noticeFor(alert, job, state, findings));
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

  /** Polls the capture until it ends (its own limits end it; past them plus a minute, the function stops it). */
  async function follow(ref: WatcherRef, name: string): Promise<CaptureState> {
    const deadline = Date.now() + (settings.capture.timeLimitInSeconds + 60) * 1000;
    let stopped = false;
    for (;;) {
      const state = await watcher.getCapture(ref, name);
      if (FINAL_CAPTURE.includes(state.status)) return state;
      if (Date.now() > deadline && !stopped) {
        await watcher.stopCapture(ref, name);
        stopped = true;
      }
      await sleep(settings.pollSeconds * 1000, closing.signal);
      if (closing.signal.aborted) throw new Error('closing');
    }
  }

  /** Ends a job that could not capture, and tells people why: at 2 AM "no capture, and why" is news too. */
  async function fail(job: JobRow, reason: string, message: string, error = true) {
    if (error) logger.warn({ jobId: job.id, reason, message }, 'capture-on-alert could not capture');
    await update(job.id, { status: error ? 'Failed' : reason, reason, message });
    const alert = JSON.parse(job.alert) as IncomingAlert;
    await notify(await loadJob(db, job.id), failureNotice(alert, job, reason, message));
  }

  /** Resolved: stop the capture the same rule started on the same VM, if it still runs. */
  async function stopForResolved(job: JobRow): Promise<void> {
    const fired = await db
      .selectFrom('capture_jobs')
      .selectAll()
      .where('vm_id', '=', job.vm_id)
      .where('rule_name', '=', job.rule_name)
      .where('condition', '=', 'Fired')
      .where('status', '=', 'Capturing')
      .orderBy('received_at', 'desc')
      .executeTakeFirst();
    if (!fired?.watcher || !fired.capture_name) return;
    await watcher.stopCapture(JSON.parse(fired.watcher) as WatcherRef, fired.capture_name);
    await update(job.id, { message: `Stopped capture ${fired.capture_name}.` });
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
function noticeFor(alert: IncomingAlert, job: JobRow, state: CaptureState, findings: string[]): Notice {
  const vmName = job.vm_id?.split('/').pop() ?? 'unknown VM';
  const file = state.files[0];
  const title = `Packet capture for alert '${alert.ruleName}' on ${vmName}: ${state.status}`;
  const facts: Array<[string, string]> = [
    ['Alert', `${alert.ruleName} (${alert.source}, ${alert.condition}${alert.severity ? `, ${alert.severity}` : ''})`],
    ['Fired', alert.firedAt ?? job.received_at],
    ['VM', job.vm_id ?? ''],
    ['Capture', `${job.capture_name ?? ''}: ${state.status}${state.stopReason ? ` (${state.stopReason})` : ''}`],
  ];
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

import { randomUUID } from 'node:crypto';
import { EventEmitter, on } from 'node:events';
import type { Readable } from 'node:stream';
import type { Transaction } from 'kysely';
import type { Database, PacketCapturesTable, Schema } from '../db/index.js';
import { assertName, idKey, parseVmId, vmResourceId } from '../lib/arm-id.js';
import { ApiError, badRequest, conflict, notFound } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { deadline, isoNow } from '../lib/time.js';
import { assertBlobName, type BlobStore, captureBlobName, StorageError } from '../storage/index.js';
import type {
  AgentJob,
  FileReport,
  FlightRecorderReport,
  FlightRecorderSettings,
  HeartbeatRequest,
  RegisterRequest,
  StartCaptureJob,
  StatusReport,
} from './agent-protocol.js';
import { captureStatusView, captureView, fileView, vmView, watcherView } from './arm-shape.js';
import { compileBpf } from './filters.js';
import { flightRecorderView, parseFlightRecorderBody } from './flight-recorder.js';
import { type PacketCaptureInput, parsePacketCaptureBody, snaplenFor } from './parameters.js';
import type { CaptureReports } from './reports.js';

export interface PacketCaptureServiceOptions {
  db: Database;
  store: BlobStore;
  logger: Logger;
  /** Active (NotStarted or Running) sessions allowed per subscription and location; Azure's is 10,000. */
  sessionsPerLocation?: number;
  /** An agent silent for this long has lost its captures (AgentStopped). */
  agentTimeoutMs?: number;
  /** A job handed to an agent is not handed out again for this long (the answer may have been lost). */
  jobRedeliveryMs?: number;
  /** Analyses each capture once its files are stored; without it captures have no report. */
  reports?: CaptureReports;
  /** Where download links point: the server's public base URL. */
  publicUrl: string;
}

const ACTIVE = ['NotStarted', 'Running'];
const WATCHER_RG = 'NetworkWatcherRG';
const etag = () => `W/"${randomUUID()}"`;

export interface CaptureRef {
  subscriptionId: string;
  resourceGroup: string;
  watcherName: string;
  captureName: string;
}

/** Whether a capture's files go to the blob store (else they stay on the VM at filePath). */
function uploadsToStore(input: PacketCaptureInput): boolean {
  return Boolean(input.storageLocation.storageId || input.storageLocation.storagePath);
}

export function captureResourceId(ref: CaptureRef): string {
  return `/subscriptions/${ref.subscriptionId}/resourceGroups/${ref.resourceGroup}/providers/Microsoft.Network/networkWatchers/${ref.watcherName}/packetCaptures/${ref.captureName}`;
}

function watcherResourceId(subscriptionId: string, resourceGroup: string, name: string): string {
  return `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Network/networkWatchers/${name}`;
}

export type PacketCaptureService = ReturnType<typeof createPacketCaptureService>;

export function createPacketCaptureService(options: PacketCaptureServiceOptions) {
  const { db, store, logger } = options;
  const sessionsPerLocation = options.sessionsPerLocation ?? 10_000;
  const agentTimeoutMs = options.agentTimeoutMs ?? 30_000;
  const startedAt = Date.now();
  // Wakes the long-poll of one agent when it has something new to do. One process only; several replicas would poll.
  const wake = new EventEmitter();
  wake.setMaxListeners(0);

  // ---- network watchers -------------------------------------------------------------------------------------

  async function getWatcherRow(subscriptionId: string, resourceGroup: string, name: string) {
    const key = idKey(watcherResourceId(subscriptionId, resourceGroup, name));
    const row = await db.selectFrom('network_watchers').selectAll().where('key', '=', key).executeTakeFirst();
    if (!row) {
      throw notFound('NotFound', `Network watcher '${name}' in resource group '${resourceGroup}' was not found.`);
    }
    return row;
  }

  /** Azure keeps one watcher per subscription and location and makes `NetworkWatcher_{location}` on demand. */
  async function ensureWatcher(subscriptionId: string, location: string) {
    const existing = await db
      .selectFrom('network_watchers')
      .selectAll()
      .where('subscription_id', '=', subscriptionId)
      .where('location', '=', location)
      .executeTakeFirst();
    if (existing) return existing;
    const name = `NetworkWatcher_${location}`;
    const id = watcherResourceId(subscriptionId, WATCHER_RG, name);
    const row = {
      key: idKey(id),
      id,
      subscription_id: subscriptionId,
      resource_group: WATCHER_RG,
      name,
      location,
      tags: '{}',
      etag: etag(),
      created_at: isoNow(),
    };
    await db
      .insertInto('network_watchers')
      .values(row)
      .onConflict((oc) => oc.doNothing())
      .execute();
    return row;
  }

  async function putWatcher(subscriptionId: string, resourceGroup: string, name: string, body: unknown) {
    assertName(resourceGroup, 'Resource group');
    assertName(name, 'Network watcher name');
    const b = (body ?? {}) as { location?: unknown; tags?: unknown };
    if (typeof b.location !== 'string' || !/^[a-z0-9]{1,40}$/i.test(b.location)) {
      throw badRequest('InvalidLocation', "Give 'location' as an Azure region name such as 'westeurope'.", 'location');
    }
    const location = b.location.toLowerCase();
    const tags = b.tags && typeof b.tags === 'object' ? JSON.stringify(b.tags) : '{}';
    const id = watcherResourceId(subscriptionId, resourceGroup, name);
    const key = idKey(id);
    const other = await db
      .selectFrom('network_watchers')
      .select(['key', 'name'])
      .where('subscription_id', '=', subscriptionId)
      .where('location', '=', location)
      .executeTakeFirst();
    if (other && other.key !== key) {
      throw badRequest(
        'NetworkWatcherCountLimitReached',
        `Location '${location}' already has network watcher '${other.name}': Azure allows one per subscription and location.`,
      );
    }
    const now = isoNow();
    const existed = Boolean(other);
    await db
      .insertInto('network_watchers')
      .values({
        key,
        id,
        subscription_id: subscriptionId,
        resource_group: resourceGroup,
        name,
        location,
        tags,
        etag: etag(),
        created_at: now,
      })
      .onConflict((oc) => oc.column('key').doUpdateSet({ tags, etag: etag() }))
      .execute();
    return { created: !existed, watcher: watcherView(await getWatcherRow(subscriptionId, resourceGroup, name)) };
  }

  async function listWatchers(subscriptionId: string, resourceGroup?: string) {
    let q = db.selectFrom('network_watchers').selectAll().where('subscription_id', '=', subscriptionId);
    if (resourceGroup) q = q.where((eb) => eb(eb.fn('lower', ['resource_group']), '=', resourceGroup.toLowerCase()));
    const rows = await q.orderBy('name').execute();
    return rows.map(watcherView);
  }

  async function deleteWatcher(subscriptionId: string, resourceGroup: string, name: string) {
    const row = await getWatcherRow(subscriptionId, resourceGroup, name).catch(() => null);
    if (!row) return false;
    const active = await db
      .selectFrom('packet_captures')
      .select('key')
      .where('watcher_key', '=', row.key)
      .where('deleted_at', 'is', null)
      .executeTakeFirst();
    if (active)
      throw conflict('NetworkWatcherInUse', `Network watcher '${name}' still has packet captures: delete them first.`);
    await db.deleteFrom('network_watchers').where('key', '=', row.key).execute();
    return true;
  }

  // ---- virtual machines (registered by their agents) --------------------------------------------------------

  function agentConnected(lastSeen: string): boolean {
    return Date.now() - Date.parse(lastSeen) < agentTimeoutMs;
  }

  async function getVmRow(id: string) {
    return db.selectFrom('vms').selectAll().where('key', '=', idKey(id)).executeTakeFirst();
  }

  async function vmWithAgent(row: Awaited<ReturnType<typeof getVmRow>> & object) {
    const agent = row.agent_id
      ? await db.selectFrom('agents').select('last_seen_at').where('id', '=', row.agent_id).executeTakeFirst()
      : undefined;
    return vmView(row, agent ? { lastSeen: agent.last_seen_at, connected: agentConnected(agent.last_seen_at) } : null);
  }

  async function getVm(subscriptionId: string, resourceGroup: string, name: string) {
    const row = await getVmRow(vmResourceId({ subscriptionId, resourceGroup, name }));
    if (!row)
      throw notFound(
        'ResourceNotFound',
        `Virtual machine '${name}' in resource group '${resourceGroup}' was not found.`,
      );
    return vmWithAgent(row);
  }

  async function vmRowOrThrow(subscriptionId: string, resourceGroup: string, name: string) {
    const row = await getVmRow(vmResourceId({ subscriptionId, resourceGroup, name }));
    if (!row) {
      throw notFound(
        'ResourceNotFound',
        `Virtual machine '${name}' in resource group '${resourceGroup}' was not found.`,
      );
    }
    return row;
  }

  /** A VM's flight recorder: its settings and what its agent last reported. */
  async function getFlightRecorder(subscriptionId: string, resourceGroup: string, name: string) {
    const row = await vmRowOrThrow(subscriptionId, resourceGroup, name);
    return flightRecorderView(
      row.id,
      row.flight_recorder ? (JSON.parse(row.flight_recorder) as FlightRecorderSettings) : null,
      row.flight_recorder_status ? (JSON.parse(row.flight_recorder_status) as FlightRecorderReport) : null,
    );
  }

  /** Sets a VM's flight recorder; its agent picks the settings up with its next heartbeat. */
  async function putFlightRecorder(subscriptionId: string, resourceGroup: string, name: string, body: unknown) {
    const settings = parseFlightRecorderBody(body);
    const row = await vmRowOrThrow(subscriptionId, resourceGroup, name);
    await db
      .updateTable('vms')
      .set({ flight_recorder: JSON.stringify(settings), updated_at: isoNow() })
      .where('key', '=', row.key)
      .execute();
    return getFlightRecorder(subscriptionId, resourceGroup, name);
  }

  async function listVms(subscriptionId: string, resourceGroup?: string) {
    let q = db.selectFrom('vms').selectAll().where('subscription_id', '=', subscriptionId);
    if (resourceGroup) q = q.where((eb) => eb(eb.fn('lower', ['resource_group']), '=', resourceGroup.toLowerCase()));
    const rows = await q.orderBy('name').execute();
    return Promise.all(rows.map(vmWithAgent));
  }

  /** Registers (or re-registers) the agent of a VM; the VM's previous agent credential stops working. */
  async function registerAgent(
    request: RegisterRequest,
    defaultSubscriptionId: string,
    issueToken: (agentId: string) => Promise<{ id: string; token: string }>,
    revokeTokenId: (tokenId: string) => Promise<unknown>,
  ) {
    const subscriptionId = request.subscriptionId ?? defaultSubscriptionId;
    const location = request.location.toLowerCase();
    const vmId = vmResourceId({ subscriptionId, resourceGroup: request.resourceGroup, name: request.name });
    const vmKey = idKey(vmId);
    const agentId = randomUUID();
    const credential = await issueToken(agentId);
    const now = isoNow();
    const previous = await db.transaction().execute(async (trx) => {
      const vm = await trx.selectFrom('vms').selectAll().where('key', '=', vmKey).executeTakeFirst();
      const previousAgent = vm?.agent_id
        ? await trx.selectFrom('agents').selectAll().where('id', '=', vm.agent_id).executeTakeFirst()
        : undefined;
      await trx
        .insertInto('agents')
        .values({
          id: agentId,
          token_id: credential.id,
          vm_key: vmKey,
          hostname: request.hostname,
          version: request.version,
          capture_root: request.captureRoot,
          registered_at: now,
          last_seen_at: now,
        })
        .execute();
      const nics = JSON.stringify(request.nics);
      await trx
        .insertInto('vms')
        .values({
          key: vmKey,
          id: vmId,
          subscription_id: subscriptionId,
          resource_group: request.resourceGroup,
          name: request.name,
          location,
          os_type: request.osType,
          nics,
          agent_id: agentId,
          created_at: now,
          updated_at: now,
        })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({ location, os_type: request.osType, nics, agent_id: agentId, updated_at: now }),
        )
        .execute();
      // Captures the old agent never picked up now belong to the new one.
      await trx
        .updateTable('packet_captures')
        .set({ agent_id: agentId })
        .where('target_key', '=', vmKey)
        .where('status', '=', 'NotStarted')
        .execute();
      return previousAgent;
    });
    if (previous) await revokeTokenId(previous.token_id);
    await ensureWatcher(subscriptionId, location);
    logger.info({ vm: vmId, agentId }, 'agent registered');
    return { agentId, agentToken: credential.token, vmId };
  }

  // ---- packet captures --------------------------------------------------------------------------------------

  async function captureRow(ref: CaptureRef) {
    const row = await db
      .selectFrom('packet_captures')
      .selectAll()
      .where('key', '=', idKey(captureResourceId(ref)))
      .executeTakeFirst();
    if (!row) {
      throw notFound(
        'NotFound',
        `Packet capture '${ref.captureName}' of network watcher '${ref.watcherName}' was not found.`,
      );
    }
    return row;
  }

  async function createCapture(ref: CaptureRef, body: unknown) {
    assertName(ref.captureName, 'Packet capture name');
    const watcher = await getWatcherRow(ref.subscriptionId, ref.resourceGroup, ref.watcherName);
    const target = (body as { properties?: { target?: unknown } } | null)?.properties?.target;
    const vmRef = typeof target === 'string' ? parseVmId(target) : null;
    const vm = vmRef ? await getVmRow(vmResourceId(vmRef)) : undefined;
    if (!vm) {
      // Full validation first, so a malformed body is named as such rather than as an unknown VM.
      parsePacketCaptureBody(body, { osType: 'Linux', captureRoot: '/var/captures' });
      throw badRequest(
        'TargetNotFound',
        `Target '${String(target).slice(0, 300)}' is not a virtual machine known to tripcap: start 'tripcap agent' on the host, or check the id with 'tripcap vm list'.`,
        'properties.target',
      );
    }
    const agent = vm.agent_id
      ? await db.selectFrom('agents').selectAll().where('id', '=', vm.agent_id).executeTakeFirst()
      : undefined;
    const input = parsePacketCaptureBody(body, {
      osType: vm.os_type === 'Windows' ? 'Windows' : 'Linux',
      captureRoot: agent?.capture_root ?? '/var/captures',
    });
    if (vm.location !== watcher.location) {
      throw badRequest(
        'TargetNotInWatcherLocation',
        `Virtual machine '${vm.name}' is in '${vm.location}' but network watcher '${watcher.name}' serves '${watcher.location}': use the watcher of the VM's location.`,
        'properties.target',
      );
    }
    if (!agent || !agentConnected(agent.last_seen_at)) {
      throw badRequest(
        'AgentNotConnected',
        `The agent of virtual machine '${vm.name}' ${agent ? `was last seen at ${agent.last_seen_at}` : 'has never connected'}: start 'tripcap agent' on the host and try again.`,
        'properties.target',
      );
    }
    const bpf = compileBpf(input.filters);
    const id = captureResourceId(ref);
    const now = isoNow();
    const operationId = randomUUID();
    const row: PacketCapturesTable = {
      key: idKey(id),
      id,
      name: ref.captureName,
      job_id: randomUUID(),
      subscription_id: ref.subscriptionId,
      watcher_key: watcher.key,
      location: watcher.location,
      target_key: vm.key,
      agent_id: agent.id,
      properties: JSON.stringify(input),
      bpf,
      provisioning_state: 'Updating',
      status: 'NotStarted',
      desired_state: 'Running',
      stop_reason: null,
      errors: '[]',
      capture_start_time: null,
      capture_end_time: null,
      progress: JSON.stringify({ bytes: 0, packets: 0 }),
      etag: etag(),
      created_at: now,
      updated_at: now,
      deleted_at: null,
    };
    // Count and insert in one transaction: SQLite serialises writers, so concurrent creates cannot overshoot the limit.
    await db.transaction().execute(async (trx) => {
      const existing = await trx
        .selectFrom('packet_captures')
        .select('key')
        .where('key', '=', row.key)
        .executeTakeFirst();
      if (existing) {
        throw conflict(
          'PacketCaptureAlreadyExists',
          `Packet capture '${ref.captureName}' already exists: choose another name, or delete it first.`,
        );
      }
      const { count } = await trx
        .selectFrom('packet_captures')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .where('subscription_id', '=', ref.subscriptionId)
        .where('location', '=', watcher.location)
        .where('status', 'in', ACTIVE)
        .where('deleted_at', 'is', null)
        .executeTakeFirstOrThrow();
      if (Number(count) >= sessionsPerLocation) {
        // A quota, not throttling: Azure's Network RP answers its count limits with 400 (…CountLimitReached), and
        // 429 would tell clients to retry the same request, which fails until a session ends.
        throw badRequest(
          'LimitExceeded',
          `Location '${watcher.location}' already has ${count} active packet capture sessions, the limit: stop or wait for one to end.`,
        );
      }
      await trx.insertInto('packet_captures').values(row).execute();
      await trx
        .insertInto('operations')
        .values({
          id: operationId,
          resource_key: row.key,
          kind: 'create',
          status: 'InProgress',
          error: null,
          created_at: now,
          ended_at: null,
        })
        .execute();
    });
    wake.emit(agent.id);
    logger.info({ capture: id, target: vm.id }, 'packet capture created');
    return { capture: captureView(row), operationId, location: watcher.location };
  }

  async function getCapture(ref: CaptureRef) {
    return captureView(await captureRow(ref));
  }

  async function listCaptures(ref: Omit<CaptureRef, 'captureName'>, page: { skip: number; top: number }) {
    const watcher = await getWatcherRow(ref.subscriptionId, ref.resourceGroup, ref.watcherName);
    const rows = await db
      .selectFrom('packet_captures')
      .selectAll()
      .where('watcher_key', '=', watcher.key)
      .where('deleted_at', 'is', null)
      .orderBy('created_at')
      .orderBy('key')
      .offset(page.skip)
      .limit(page.top + 1)
      .execute();
    return { value: rows.slice(0, page.top).map(captureView), more: rows.length > page.top };
  }

  async function filesOf(row: PacketCapturesTable) {
    const files = await db
      .selectFrom('capture_files')
      .selectAll()
      .where('capture_key', '=', row.key)
      .orderBy('seq')
      .execute();
    return files.map((f) =>
      fileView(f, {
        storagePath: f.blob_name ? store.url(f.blob_name) : null,
        downloadUrl: f.blob_name ? `${options.publicUrl}${row.id}/files/${f.seq}?api-version=2024-05-01` : null,
      }),
    );
  }

  async function queryStatus(ref: CaptureRef) {
    const row = await captureRow(ref);
    return captureStatusView(row, await filesOf(row));
  }

  /** Stop: returns an operation id to poll while the agent stops it, or null when it was not running. */
  async function stopCapture(ref: CaptureRef): Promise<{ operationId: string | null; location: string }> {
    const row = await captureRow(ref);
    if (!ACTIVE.includes(row.status)) return { operationId: null, location: row.location };
    const operationId = randomUUID();
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('packet_captures')
        .set({ desired_state: 'Stopped', updated_at: isoNow() })
        .where('key', '=', row.key)
        .execute();
      await trx
        .insertInto('operations')
        .values({
          id: operationId,
          resource_key: row.key,
          kind: 'stop',
          status: 'InProgress',
          error: null,
          created_at: isoNow(),
          ended_at: null,
        })
        .execute();
    });
    if (row.status === 'NotStarted') {
      await finish(row, { status: 'Stopped', stopReason: 'ManuallyStopped', time: isoNow() });
    } else if (row.agent_id) {
      wake.emit(row.agent_id);
    }
    return { operationId, location: row.location };
  }

  /** Delete: the resource goes, a running session is stopped, and its files stay (as in Azure). */
  async function deleteCapture(ref: CaptureRef): Promise<boolean> {
    const row = await captureRow(ref).catch((err) => {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    });
    if (!row) return false;
    const deletedAt = isoNow();
    await db
      .updateTable('packet_captures')
      .set({
        key: `${row.key}#deleted-${row.job_id}`,
        deleted_at: deletedAt,
        desired_state: 'Stopped',
        updated_at: deletedAt,
      })
      .where('key', '=', row.key)
      .execute();
    if (row.status === 'NotStarted') {
      await finish(
        { ...row, key: `${row.key}#deleted-${row.job_id}` },
        { status: 'Stopped', stopReason: 'ManuallyStopped', time: deletedAt },
      );
    } else if (row.agent_id) {
      wake.emit(row.agent_id);
    }
    return true;
  }

  async function getOperation(id: string) {
    const op = await db.selectFrom('operations').selectAll().where('id', '=', id).executeTakeFirst();
    if (!op) throw notFound('NotFound', `Operation '${id}' was not found.`);
    return {
      id: op.id,
      name: op.id,
      status: op.status,
      startTime: op.created_at,
      ...(op.ended_at ? { endTime: op.ended_at } : {}),
      ...(op.error ? { error: JSON.parse(op.error) as { code: string; message: string } } : {}),
    };
  }

  /** Ends the capture's operations of one kind that are still in progress. */
  async function settleOperations(
    trx: Transaction<Schema>,
    resourceKey: string,
    kind: 'create' | 'stop',
    status: 'Succeeded' | 'Failed',
    error: string | null = null,
  ) {
    await trx
      .updateTable('operations')
      .set({ status, error, ended_at: isoNow() })
      .where('resource_key', '=', resourceKey)
      .where('kind', '=', kind)
      .where('status', '=', 'InProgress')
      .execute();
  }

  /** Moves a capture to a final state and settles its pending operations. */
  async function finish(row: PacketCapturesTable, report: StatusReport) {
    const now = isoNow();
    const failed = report.status === 'Error';
    const error = failed
      ? JSON.stringify({
          code: report.errors?.[0] ?? 'InternalError',
          message: report.message ?? 'The capture failed.',
        })
      : null;
    await db.transaction().execute(async (trx) => {
      await trx
        .updateTable('packet_captures')
        .set({
          status: report.status,
          stop_reason: report.stopReason ?? null,
          errors: JSON.stringify(report.errors ?? []),
          capture_end_time: report.time,
          provisioning_state:
            row.provisioning_state === 'Updating' ? (failed ? 'Failed' : 'Succeeded') : row.provisioning_state,
          ...(report.progress ? { progress: JSON.stringify(report.progress) } : {}),
          etag: etag(),
          updated_at: now,
        })
        .where('job_id', '=', row.job_id)
        .execute();
      // A create that never reached Running fails with the capture's error; a stop succeeds however the capture ended.
      await settleOperations(trx, row.key, 'create', failed ? 'Failed' : 'Succeeded', error);
      await settleOperations(trx, row.key, 'stop', 'Succeeded');
    });
    logger.info(
      { capture: row.id, status: report.status, stopReason: report.stopReason, errors: report.errors },
      'packet capture ended',
    );
  }

  // ---- the agent's side -------------------------------------------------------------------------------------

  async function touchAgent(agentId: string) {
    await db.updateTable('agents').set({ last_seen_at: isoNow() }).where('id', '=', agentId).execute();
  }

  async function pendingJobs(agentId: string): Promise<AgentJob[]> {
    const rows = await db
      .selectFrom('packet_captures')
      .selectAll()
      .where('agent_id', '=', agentId)
      .where('status', 'in', ACTIVE)
      .execute();
    const jobs: AgentJob[] = [];
    for (const row of rows) {
      if (row.status === 'NotStarted' && row.desired_state === 'Running') jobs.push(startJob(row));
      if (row.status === 'Running' && row.desired_state === 'Stopped') jobs.push({ type: 'stop', jobId: row.job_id });
    }
    return jobs;
  }

  function startJob(row: PacketCapturesTable): StartCaptureJob {
    const p = JSON.parse(row.properties) as PacketCaptureInput;
    const { comment: _, ...parameters } = captureView(row).properties;
    const localFile = p.localFile;
    const ring = p.continuousCapture
      ? {
          fileCount: p.captureSettings?.fileCount ?? 10,
          fileSizeBytes: p.captureSettings?.fileSizeInBytes ?? 104_857_600,
        }
      : undefined;
    return {
      type: 'start',
      jobId: row.job_id,
      captureId: row.id,
      bpf: row.bpf,
      snaplen: snaplenFor(p.bytesToCapturePerPacket),
      maxBytes: ring ? 0 : p.totalBytesPerSession,
      timeLimitSeconds: ring ? (p.captureSettings?.sessionTimeLimitInSeconds ?? 86_400) : p.timeLimitInSeconds,
      ...(localFile ? { localFile } : {}),
      upload: uploadsToStore(p),
      ...(ring ? { ring } : {}),
      ...(p.preTriggerSeconds ? { preTriggerSeconds: p.preTriggerSeconds } : {}),
      ...(p.fileFormat === 'pcapng'
        ? {
            fileFormat: 'pcapng' as const,
            // The file explains itself: which capture, with which parameters, and why (the caller's comment).
            comments: [
              `tripcap packet capture ${row.id}`,
              `parameters: ${JSON.stringify(parameters)}`,
              ...(p.comment ? [p.comment] : []),
            ],
          }
        : {}),
    };
  }

  /**
   * Jobs handed out recently, by `type:jobId`: the agent is acting on them, so the next poll does not repeat them
   * (it would return at once and spin). Repeated after `jobRedeliveryMs` in case the answer was lost on the way.
   */
  const delivered = new Map<string, number>();
  const redeliverMs = options.jobRedeliveryMs ?? 10_000;

  function undelivered(jobs: AgentJob[]): AgentJob[] {
    const now = Date.now();
    for (const [key, at] of delivered) if (now - at > redeliverMs) delivered.delete(key);
    const fresh = jobs.filter((job) => !delivered.has(`${job.type}:${job.jobId}`));
    for (const job of fresh) delivered.set(`${job.type}:${job.jobId}`, now);
    return fresh;
  }

  /** Long-poll: answers at once when there is work, else when work arrives or the wait ends. */
  async function waitForJobs(agentId: string, waitMs: number, signal: AbortSignal): Promise<AgentJob[]> {
    await touchAgent(agentId);
    const jobs = undelivered(await pendingJobs(agentId));
    if (jobs.length > 0 || waitMs <= 0) return jobs;
    const limit = deadline(waitMs, signal);
    try {
      for await (const _ of on(wake, agentId, { signal: limit.signal })) {
        const next = undelivered(await pendingJobs(agentId));
        if (next.length > 0) return next;
      }
    } catch (err) {
      if ((err as Error).name !== 'AbortError') throw err;
    } finally {
      limit.clear();
    }
    return [];
  }

  async function agentCapture(agentId: string, jobId: string) {
    const row = await db.selectFrom('packet_captures').selectAll().where('job_id', '=', jobId).executeTakeFirst();
    // An agent sees only its own captures; another's look exactly like absent ones.
    if (!row || row.agent_id !== agentId) throw notFound('NotFound', `Job '${jobId}' is not one of this agent's.`);
    return row;
  }

  /** Records what an agent says of its capture; `stop: true` tells it the capture is no longer wanted. */
  async function reportStatus(agentId: string, jobId: string, report: StatusReport): Promise<{ stop: boolean }> {
    const row = await agentCapture(agentId, jobId);
    await touchAgent(agentId);
    // Already final (stopped before it started, deleted, or AgentStopped while the agent was away): keep it so.
    if (!ACTIVE.includes(row.status)) return { stop: true };
    if (report.status === 'Running') {
      const now = isoNow();
      await db.transaction().execute(async (trx) => {
        await trx
          .updateTable('packet_captures')
          .set({
            status: 'Running',
            provisioning_state: 'Succeeded',
            capture_start_time: report.time,
            etag: etag(),
            updated_at: now,
            ...(report.progress ? { progress: JSON.stringify(report.progress) } : {}),
          })
          .where('job_id', '=', jobId)
          .execute();
        await settleOperations(trx, row.key, 'create', 'Succeeded');
      });
      // A stop may have been asked while the start was on its way.
      return { stop: row.desired_state === 'Stopped' };
    }
    await finish(row, report);
    for (const file of report.localFiles ?? []) await recordFile(row, file, '');
    return { stop: false };
  }

  /** Records a heartbeat; answers what the agent's VM's flight recorder should be. */
  async function heartbeat(agentId: string, request: HeartbeatRequest): Promise<FlightRecorderSettings | null> {
    await touchAgent(agentId);
    const running = await db
      .selectFrom('packet_captures')
      .selectAll()
      .where('agent_id', '=', agentId)
      .where('status', '=', 'Running')
      .execute();
    for (const row of running) {
      const progress = request.progress[row.job_id];
      // A heartbeat sent just before the job arrived may land after its Running report: give new captures a grace.
      const justStarted = Date.now() - Date.parse(row.updated_at) < 10_000;
      if (!request.running.includes(row.job_id) && !justStarted) {
        // The agent restarted without this capture: its tcpdump is gone or orphaned; the agent uploads what it recovers.
        await finish(row, {
          status: 'Error',
          time: isoNow(),
          stopReason: 'AgentStopped',
          errors: ['AgentStopped'],
          message: 'The agent restarted during the capture.',
        });
      } else if (progress) {
        await db
          .updateTable('packet_captures')
          .set({ progress: JSON.stringify(progress) })
          .where('job_id', '=', row.job_id)
          .execute();
      }
    }
    // One read for the VM's key and its flight recorder settings, which the answer carries.
    const agent = await db
      .selectFrom('agents')
      .innerJoin('vms', 'vms.key', 'agents.vm_key')
      .select(['agents.vm_key', 'vms.flight_recorder'])
      .where('agents.id', '=', agentId)
      .executeTakeFirstOrThrow();
    if (request.nics) {
      const nics = JSON.stringify(request.nics);
      // Heartbeats repeat the NICs every few seconds: write only when they changed.
      await db
        .updateTable('vms')
        .set({ nics, updated_at: isoNow() })
        .where('key', '=', agent.vm_key)
        .where('nics', '!=', nics)
        .execute();
    }
    if (request.flightRecorder) {
      await db
        .updateTable('vms')
        .set({ flight_recorder_status: JSON.stringify(request.flightRecorder) })
        .where('key', '=', agent.vm_key)
        .execute();
    }
    return agent.flight_recorder ? (JSON.parse(agent.flight_recorder) as FlightRecorderSettings) : null;
  }

  /** Marks the captures of agents that went silent as ended by AgentStopped. Runs periodically. */
  async function sweepSilentAgents() {
    // After our own restart, agents get a full timeout to come back before they are judged.
    if (Date.now() - startedAt < agentTimeoutMs) return 0;
    const cutoff = new Date(Date.now() - agentTimeoutMs).toISOString();
    const rows = await db
      .selectFrom('packet_captures')
      .innerJoin('agents', 'agents.id', 'packet_captures.agent_id')
      .selectAll('packet_captures')
      .where('packet_captures.status', 'in', ACTIVE)
      .where('agents.last_seen_at', '<', cutoff)
      .execute();
    for (const row of rows) {
      await finish(row, {
        status: 'Error',
        time: isoNow(),
        stopReason: 'AgentStopped',
        errors: ['AgentStopped'],
        message: 'The agent stopped reporting during the capture.',
      });
    }
    return rows.length;
  }

  async function recordFile(row: PacketCapturesTable, file: FileReport, blobName: string) {
    await db
      .insertInto('capture_files')
      .values({
        capture_key: row.key,
        seq: file.seq,
        blob_name: blobName,
        local_path: file.localPath ?? null,
        size: file.size,
        packets: file.packets,
        kernel_drops: file.kernelDrops,
        sha256: file.sha256,
        first_packet_time: file.firstPacketTime ?? null,
        last_packet_time: file.lastPacketTime ?? null,
        uploaded_at: isoNow(),
      })
      .onConflict((oc) =>
        oc
          .columns(['capture_key', 'seq'])
          .doUpdateSet({ blob_name: blobName || undefined, sha256: file.sha256, size: file.size }),
      )
      .execute();
  }

  /** Stores an uploaded capture file in Azure's blob layout; idempotent, so an agent may retry freely. */
  async function uploadFile(agentId: string, jobId: string, file: FileReport, body: Readable, signal?: AbortSignal) {
    const row = await agentCapture(agentId, jobId);
    await touchAgent(agentId);
    const input = JSON.parse(row.properties) as PacketCaptureInput;
    // A file can't be larger than the session allows (plus a packet's slack): anything more is refused, not stored.
    // A ring file's size is tcpdump's -C, in whole megabytes (1,000,000 bytes) rounded up.
    const fileLimit = input.continuousCapture
      ? Math.ceil((input.captureSettings?.fileSizeInBytes ?? 0) / 1e6) * 1e6
      : input.totalBytesPerSession;
    const maxSize = fileLimit + 262_144 + 24;
    if (file.size > maxSize) {
      throw new ApiError(
        413,
        'RequestBodyTooLarge',
        `A file of ${file.size} bytes exceeds this capture's limit of ${maxSize} bytes.`,
      );
    }
    const done = await db
      .selectFrom('capture_files')
      .selectAll()
      .where('capture_key', '=', row.key)
      .where('seq', '=', file.seq)
      .executeTakeFirst();
    if (done?.blob_name && done.sha256 === file.sha256) {
      body.resume();
      return { blobName: done.blob_name, duplicate: true };
    }
    const vm = parseVmId(input.target);
    if (!vm) throw new ApiError(500, 'InternalError', 'The capture has no valid target.');
    const blobName = captureBlobName({
      subscriptionId: vm.subscriptionId,
      resourceGroup: vm.resourceGroup,
      vmName: vm.name,
      startTime: new Date(row.capture_start_time ?? row.created_at),
      ...(input.continuousCapture ? { sequence: file.seq } : {}),
    });
    const put = await store
      .put(blobName, body, { expectedSha256: file.sha256, ...(signal ? { signal } : {}) })
      .catch((err: unknown) => {
        // The agent's bytes are not what it said they are: its mistake to be told, not a server failure.
        if (err instanceof StorageError && err.code === 'ChecksumMismatch') {
          throw badRequest('ChecksumMismatch', `${err.message} Upload the file again with its own SHA-256.`);
        }
        throw err;
      });
    await recordFile(row, { ...file, size: put.size }, blobName);
    logger.info({ capture: row.id, blob: blobName, size: put.size }, 'capture file stored');
    await options.reports?.schedule(row.job_id);
    return { blobName, duplicate: false };
  }

  /** The file behind a download link, for callers allowed to read raw packets. */
  async function openFile(ref: CaptureRef, seq: number) {
    const row = await captureRow(ref);
    const file = await db
      .selectFrom('capture_files')
      .selectAll()
      .where('capture_key', '=', row.key)
      .where('seq', '=', seq)
      .executeTakeFirst();
    if (!file?.blob_name)
      throw notFound('NotFound', `Packet capture '${ref.captureName}' has no uploaded file ${seq}.`);
    const blob = await store.get(file.blob_name);
    if (!blob) throw new ApiError(410, 'BlobGone', `The file '${file.blob_name}' is no longer in storage.`);
    return { ...blob, fileName: file.blob_name.split('/').pop() ?? 'capture.cap', sha256: file.sha256 };
  }

  /** The capture's report: its analysis state, and the report once it is done. */
  async function getReport(ref: CaptureRef) {
    const row = await captureRow(ref);
    const stored = await options.reports?.get(row.job_id);
    if (stored) {
      return {
        status: stored.status,
        updatedTime: stored.updated_at,
        ...(stored.error ? { error: stored.error } : {}),
        ...(stored.report ? { report: JSON.parse(stored.report) as unknown } : {}),
      };
    }
    const ended = !ACTIVE.includes(row.status);
    return ended && !uploadsToStore(JSON.parse(row.properties) as PacketCaptureInput)
      ? { status: 'Unavailable', error: "The file stays on the VM (filePath only): run 'tripcap analyze' on it there." }
      : { status: 'NotStarted' };
  }

  /** A blob by its name in the capture container (the local store's `storagePath` links point here). */
  async function openBlob(name: string) {
    try {
      assertBlobName(name);
    } catch {
      throw badRequest('InvalidBlobName', 'That is not a capture blob name.');
    }
    const blob = await store.get(name);
    if (!blob) throw notFound('BlobNotFound', 'No such blob.');
    return blob;
  }

  async function agentByToken(tokenId: string) {
    return db.selectFrom('agents').selectAll().where('token_id', '=', tokenId).executeTakeFirst();
  }

  return {
    ensureWatcher,
    putWatcher,
    getWatcher: async (s: string, rg: string, n: string) => watcherView(await getWatcherRow(s, rg, n)),
    listWatchers,
    deleteWatcher,
    getVm,
    listVms,
    registerAgent,
    createCapture,
    getCapture,
    listCaptures,
    queryStatus,
    stopCapture,
    deleteCapture,
    getOperation,
    waitForJobs,
    reportStatus,
    heartbeat,
    getFlightRecorder,
    putFlightRecorder,
    sweepSilentAgents,
    uploadFile,
    openFile,
    openBlob,
    getReport,
    agentByToken,
  };
}

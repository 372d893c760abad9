import { randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Database, DeliveriesTable, Schema } from '../db/index.js';
import { assertName, assertSubscription, idKey } from '../lib/arm-id.js';
import { badRequest, errorMessage, notFound } from '../lib/errors.js';
import { isObject, parseTags } from '../lib/json.js';
import { type Logger, redactUrl } from '../lib/logger.js';
import { type EmailMessage, type EmailSender, isTransientSmtpError } from '../notify/email.js';
import { postJson, trustingCa, WebhookNetworkError } from '../notify/webhook.js';
import type { AlertEvent } from './alert-event.js';
import { commonAlertSchema, emailMessage, metricAlertSchema } from './alert-payloads.js';

/**
 * Action groups in Azure's `Microsoft.Insights/actionGroups` shape, and the outbox that delivers their notifications.
 *
 * Deliveries are written by `enqueue` inside the caller's transaction (with the alert change that caused them) and
 * sent later by the sender loop, which retries as Azure does. Delivery is at least once: a process that dies while a
 * delivery is 'Sending' sends it again after restart, so receivers dedupe by the payload's alertId.
 */

export interface ActionGroupRef {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
}

export interface EmailReceiver {
  name: string;
  emailAddress: string;
  useCommonAlertSchema: boolean;
}

export interface WebhookReceiver {
  name: string;
  serviceUri: string;
  useCommonAlertSchema: boolean;
  useAadAuth: boolean;
}

export interface AzureFunctionReceiver {
  name: string;
  functionAppResourceId: string;
  functionName: string;
  httpTriggerUrl: string;
  useCommonAlertSchema: boolean;
}

/** The properties tripcap keeps (normalised, Azure's defaults filled in). */
export interface ActionGroupProperties {
  groupShortName: string;
  enabled: boolean;
  emailReceivers: EmailReceiver[];
  webhookReceivers: WebhookReceiver[];
  azureFunctionReceivers: AzureFunctionReceiver[];
}

/** Azure's receiver kinds that tripcap does not deliver to: accepted only as empty arrays. */
export const UNSUPPORTED_RECEIVER_KINDS = [
  'smsReceivers',
  'voiceReceivers',
  'armRoleReceivers',
  'logicAppReceivers',
  'automationRunbookReceivers',
  'itsmReceivers',
  'azureAppPushReceivers',
  'eventHubReceivers',
  'incidentReceivers',
] as const;

export interface ActionGroupView {
  id: string;
  name: string;
  type: 'Microsoft.Insights/ActionGroups';
  location: string;
  tags: Record<string, string>;
  properties: {
    groupShortName: string;
    enabled: boolean;
    emailReceivers: Array<EmailReceiver & { status: 'Enabled' }>;
    webhookReceivers: WebhookReceiver[];
    azureFunctionReceivers: AzureFunctionReceiver[];
  } & Record<(typeof UNSUPPORTED_RECEIVER_KINDS)[number], never[]>;
}

export type ReceiverKind = 'webhook' | 'azureFunction' | 'email';
export type DeliveryStatus = 'Pending' | 'Sending' | 'Succeeded' | 'Failed';
export type AttemptOutcome = 'Succeeded' | 'Retry' | 'Failed';

export interface DeliveryView {
  id: string;
  receiverName: string;
  receiverKind: ReceiverKind;
  /** The URL with its secrets redacted, or the e-mail address. */
  target: string;
  alertId: string | null;
  notificationId: string | null;
  status: DeliveryStatus;
  attempts: Array<{
    attempt: number;
    startedAt: string;
    durationMs: number;
    outcome: AttemptOutcome;
    httpStatus: number | null;
    error: string | null;
  }>;
  createdTime: string;
  updatedTime: string;
}

/** Azure's TestNotificationDetailsResponse (its property names, including the capitalised ones). */
export interface TestNotificationDetails {
  context: {
    notificationSource: 'Microsoft.Insights/TestNotification';
    contextType: 'Microsoft.Insights/ActionGroups';
  };
  state: 'Pending' | 'Completed';
  completedTime: string | null;
  createdTime: string;
  actionDetails: Array<{
    MechanismType: 'Email' | 'Webhook' | 'AzureFunction';
    Name: string;
    Status: 'Pending' | 'Completed' | 'Failed';
    SubState: 'Default';
    SendTime: string | null;
    Detail: string | null;
  }>;
}

export interface ActionGroupsOptions {
  db: Database;
  logger: Logger;
  /** Sends e-mail receivers' messages; without it they fail with a message saying SMTP is not configured. */
  email?: EmailSender | null;
  /** Waits before each retry; its length is the number of retries. Azure's: 5, 20, 5, 40, 5 seconds. */
  retryDelaysMs?: number[];
  /** One HTTP attempt must end within this time. */
  requestTimeoutMs?: number;
  /** A CA certificate (PEM) to trust besides the usual ones: the server's own self-signed one. */
  trustedCa?: Buffer;
  /** Epoch milliseconds; replaceable in tests. */
  now?: () => number;
  /** Deliveries sent at the same time. */
  concurrency?: number;
}

export const AZURE_RETRY_DELAYS_MS = [5_000, 20_000, 5_000, 40_000, 5_000];
/** Azure retries webhooks on these statuses (and on network errors); any other non-2xx fails at once. */
const RETRYABLE_HTTP_STATUSES = new Set([408, 429, 503, 504]);
const POLL_MS = 500;
const TEST_ALERT_TYPES = ['metricstaticthreshold', 'metricsdynamicthreshold'];
const ACCEPTED_KINDS = 'emailReceivers, webhookReceivers and azureFunctionReceivers';

export function actionGroupResourceId(ref: ActionGroupRef): string {
  return `/subscriptions/${ref.subscriptionId}/resourceGroups/${ref.resourceGroup}/providers/Microsoft.Insights/actionGroups/${ref.name}`;
}

// ---- validation ----------------------------------------------------------------------------------------------

const invalid = (target: string, message: string) => badRequest('InvalidActionGroup', message, target);

function optionalBoolean(value: unknown, fallback: boolean, target: string): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'boolean') throw invalid(target, `'${target}' must be true or false.`);
  return value;
}

function requiredString(value: unknown, target: string, maxLength: number): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw invalid(target, `'${target}' is required: give a non-empty string.`);
  }
  if (value.length > maxLength) throw invalid(target, `'${target}' is longer than ${maxLength} characters.`);
  return value;
}

function httpUrl(value: unknown, target: string): string {
  const text = requiredString(value, target, 2048);
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw invalid(target, `'${target}' is not a URL: give an absolute http:// or https:// URL.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw invalid(
      target,
      `'${target}' uses ${url.protocol.replace(':', '')}: only http:// and https:// URLs are accepted.`,
    );
  }
  return text;
}

const EMAIL = /^[^\s@<>()",;:]+@[^\s@<>()",;:]+\.[^\s@<>()",;:]+$/;

function receiverArray(properties: Record<string, unknown>, kind: string): Record<string, unknown>[] {
  const value = properties[kind];
  const target = `properties.${kind}`;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw invalid(target, `'${target}' must be an array of receivers.`);
  if (value.length > 1000) throw invalid(target, `'${target}' has ${value.length} receivers: at most 1000.`);
  return value.map((item, i) => {
    if (!isObject(item)) throw invalid(`${target}[${i}]`, `'${target}[${i}]' must be an object.`);
    return item;
  });
}

export function parseActionGroupBody(body: unknown): {
  location: string;
  tags: Record<string, string>;
  properties: ActionGroupProperties;
} {
  if (!isObject(body)) throw badRequest('InvalidRequestContent', 'The request body must be a JSON object.');
  let location = 'Global';
  if (body.location !== undefined && body.location !== null) {
    if (typeof body.location !== 'string' || !/^[A-Za-z0-9 ]{1,40}$/.test(body.location)) {
      throw invalid('location', "'location' must be 'Global' or an Azure region name such as 'westeurope'.");
    }
    location = body.location;
  }
  const tags = parseTags(body.tags, 'tags');
  const p = body.properties;
  if (!isObject(p))
    throw invalid('properties', "'properties' is required: give an object with at least groupShortName.");
  if (typeof p.groupShortName !== 'string' || p.groupShortName.length < 1 || p.groupShortName.length > 12) {
    throw invalid('properties.groupShortName', "'properties.groupShortName' is required: give 1 to 12 characters.");
  }
  const enabled = optionalBoolean(p.enabled, true, 'properties.enabled');

  for (const kind of UNSUPPORTED_RECEIVER_KINDS) {
    if (receiverArray(p, kind).length > 0) {
      throw invalid(
        `properties.${kind}`,
        `tripcap does not deliver to ${kind}: leave 'properties.${kind}' empty. It delivers to ${ACCEPTED_KINDS}.`,
      );
    }
  }

  const emailReceivers = receiverArray(p, 'emailReceivers').map((r, i): EmailReceiver => {
    const at = `properties.emailReceivers[${i}]`;
    const emailAddress = requiredString(r.emailAddress, `${at}.emailAddress`, 320);
    if (!EMAIL.test(emailAddress)) {
      throw invalid(
        `${at}.emailAddress`,
        `'${at}.emailAddress' is not an e-mail address such as 'oncall@example.com'.`,
      );
    }
    return {
      name: requiredString(r.name, `${at}.name`, 128),
      emailAddress,
      useCommonAlertSchema: optionalBoolean(r.useCommonAlertSchema, false, `${at}.useCommonAlertSchema`),
    };
  });
  const webhookReceivers = receiverArray(p, 'webhookReceivers').map((r, i): WebhookReceiver => {
    const at = `properties.webhookReceivers[${i}]`;
    const name = requiredString(r.name, `${at}.name`, 128);
    const serviceUri = httpUrl(r.serviceUri, `${at}.serviceUri`);
    if (optionalBoolean(r.useAadAuth, false, `${at}.useAadAuth`)) {
      throw invalid(
        `${at}.useAadAuth`,
        `Secure webhooks (useAadAuth true) are not supported: set '${at}.useAadAuth' to false and put a secret in the URL.`,
      );
    }
    return {
      name,
      serviceUri,
      // Azure's default for webhooks is the older, non-common schema.
      useCommonAlertSchema: optionalBoolean(r.useCommonAlertSchema, false, `${at}.useCommonAlertSchema`),
      useAadAuth: false,
    };
  });
  const azureFunctionReceivers = receiverArray(p, 'azureFunctionReceivers').map((r, i): AzureFunctionReceiver => {
    const at = `properties.azureFunctionReceivers[${i}]`;
    const name = requiredString(r.name, `${at}.name`, 128);
    const functionAppResourceId = requiredString(r.functionAppResourceId, `${at}.functionAppResourceId`, 1024);
    if (
      !/^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Web\/sites\/[^/]+$/i.test(
        functionAppResourceId,
      )
    ) {
      throw invalid(
        `${at}.functionAppResourceId`,
        `'${at}.functionAppResourceId' must be a function app id: /subscriptions/{id}/resourceGroups/{group}/providers/Microsoft.Web/sites/{app}.`,
      );
    }
    return {
      name,
      functionAppResourceId,
      functionName: requiredString(r.functionName, `${at}.functionName`, 128),
      httpTriggerUrl: httpUrl(r.httpTriggerUrl, `${at}.httpTriggerUrl`),
      useCommonAlertSchema: optionalBoolean(r.useCommonAlertSchema, false, `${at}.useCommonAlertSchema`),
    };
  });

  // Azure: "Names must be unique across all receivers within an action group."
  const seen = new Map<string, string>();
  const named = [
    ...emailReceivers.map((r, i) => [r.name, `properties.emailReceivers[${i}].name`]),
    ...webhookReceivers.map((r, i) => [r.name, `properties.webhookReceivers[${i}].name`]),
    ...azureFunctionReceivers.map((r, i) => [r.name, `properties.azureFunctionReceivers[${i}].name`]),
  ] as Array<[string, string]>;
  for (const [name, target] of named) {
    const first = seen.get(name.toLowerCase());
    if (first) {
      throw invalid(
        target,
        `Receiver name '${name}' is already used by ${first}: names must be unique in the group (case-insensitive).`,
      );
    }
    seen.set(name.toLowerCase(), target);
  }

  return {
    location,
    tags,
    properties: { groupShortName: p.groupShortName, enabled, emailReceivers, webhookReceivers, azureFunctionReceivers },
  };
}

// ---- the service ---------------------------------------------------------------------------------------------

type GroupRow = Schema['action_groups'];

function groupView(row: GroupRow): ActionGroupView {
  const p = JSON.parse(row.properties) as ActionGroupProperties;
  const unsupported = Object.fromEntries(UNSUPPORTED_RECEIVER_KINDS.map((kind) => [kind, []])) as Record<
    (typeof UNSUPPORTED_RECEIVER_KINDS)[number],
    never[]
  >;
  return {
    id: row.id,
    name: row.name,
    type: 'Microsoft.Insights/ActionGroups',
    location: row.location,
    tags: JSON.parse(row.tags) as Record<string, string>,
    properties: {
      groupShortName: p.groupShortName,
      enabled: p.enabled,
      emailReceivers: p.emailReceivers.map((r) => ({ ...r, status: 'Enabled' as const })),
      webhookReceivers: p.webhookReceivers,
      azureFunctionReceivers: p.azureFunctionReceivers,
      ...unsupported,
    },
  };
}

/** One receiver of a group, with what to send it. */
interface Recipient {
  name: string;
  kind: ReceiverKind;
  target: string;
  payload: string;
}

function recipients(properties: ActionGroupProperties, event: AlertEvent): Recipient[] {
  const body = (common: boolean) => JSON.stringify(common ? commonAlertSchema(event) : metricAlertSchema(event));
  const mail = JSON.stringify(emailMessage(event));
  return [
    ...properties.emailReceivers.map((r) => ({
      name: r.name,
      kind: 'email' as const,
      target: r.emailAddress,
      payload: mail,
    })),
    ...properties.webhookReceivers.map((r) => ({
      name: r.name,
      kind: 'webhook' as const,
      target: r.serviceUri,
      payload: body(r.useCommonAlertSchema),
    })),
    ...properties.azureFunctionReceivers.map((r) => ({
      name: r.name,
      kind: 'azureFunction' as const,
      target: r.httpTriggerUrl,
      payload: body(r.useCommonAlertSchema),
    })),
  ];
}

const MECHANISM = { email: 'Email', webhook: 'Webhook', azureFunction: 'AzureFunction' } as const;

/** What one attempt came to. */
interface AttemptResult {
  outcome: AttemptOutcome;
  httpStatus: number | null;
  error: string | null;
}

export type ActionGroups = ReturnType<typeof createActionGroups>;

export function createActionGroups(options: ActionGroupsOptions) {
  const { db, logger } = options;
  const email = options.email ?? null;
  const retryDelaysMs = options.retryDelaysMs ?? AZURE_RETRY_DELAYS_MS;
  const requestTimeoutMs = options.requestTimeoutMs ?? 10_000;
  const dispatcher = options.trustedCa ? trustingCa(options.trustedCa) : undefined;
  const now = options.now ?? Date.now;
  const concurrency = options.concurrency ?? 4;
  const iso = (ms = now()) => new Date(ms).toISOString();

  function checkRef(ref: ActionGroupRef): string {
    assertSubscription(ref.subscriptionId);
    assertName(ref.resourceGroup, 'Resource group');
    assertName(ref.name, 'Action group name');
    return idKey(actionGroupResourceId(ref));
  }

  async function getRow(ref: ActionGroupRef): Promise<GroupRow> {
    const row = await db.selectFrom('action_groups').selectAll().where('key', '=', checkRef(ref)).executeTakeFirst();
    if (!row) {
      throw notFound(
        'ResourceNotFound',
        `Action group '${ref.name}' in resource group '${ref.resourceGroup}' of subscription '${ref.subscriptionId}' was not found.`,
      );
    }
    return row;
  }

  // ---- ARM resource ----

  async function put(ref: ActionGroupRef, body: unknown): Promise<{ created: boolean; group: ActionGroupView }> {
    const key = checkRef(ref);
    const input = parseActionGroupBody(body);
    const id = actionGroupResourceId(ref);
    const at = iso();
    const values = {
      location: input.location,
      tags: JSON.stringify(input.tags),
      properties: JSON.stringify(input.properties),
      etag: `W/"${randomUUID()}"`,
      updated_at: at,
    };
    const existed = await db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom('action_groups').select('key').where('key', '=', key).executeTakeFirst();
      if (existing) {
        await trx.updateTable('action_groups').set(values).where('key', '=', key).execute();
      } else {
        await trx
          .insertInto('action_groups')
          .values({
            key,
            id,
            subscription_id: ref.subscriptionId,
            resource_group: ref.resourceGroup,
            name: ref.name,
            created_at: at,
            ...values,
          })
          .execute();
      }
      return Boolean(existing);
    });
    return { created: !existed, group: groupView(await getRow(ref)) };
  }

  /** Azure's ActionGroupPatchBody: tags and properties.enabled; anything else is ignored. */
  async function patch(ref: ActionGroupRef, body: unknown): Promise<ActionGroupView> {
    const row = await getRow(ref);
    if (!isObject(body)) throw badRequest('InvalidRequestContent', 'The request body must be a JSON object.');
    const tags = body.tags === undefined ? undefined : parseTags(body.tags, 'tags');
    if (body.properties !== undefined && body.properties !== null && !isObject(body.properties)) {
      throw invalid('properties', '\'properties\' must be an object such as {"enabled": false}.');
    }
    const enabled = isObject(body.properties) ? body.properties.enabled : undefined;
    const properties = JSON.parse(row.properties) as ActionGroupProperties;
    properties.enabled = optionalBoolean(enabled, properties.enabled, 'properties.enabled');
    await db
      .updateTable('action_groups')
      .set({
        ...(tags ? { tags: JSON.stringify(tags) } : {}),
        properties: JSON.stringify(properties),
        etag: `W/"${randomUUID()}"`,
        updated_at: iso(),
      })
      .where('key', '=', row.key)
      .execute();
    return groupView(await getRow(ref));
  }

  async function get(ref: ActionGroupRef): Promise<ActionGroupView> {
    return groupView(await getRow(ref));
  }

  async function list(subscriptionId: string, resourceGroup?: string): Promise<{ value: ActionGroupView[] }> {
    assertSubscription(subscriptionId);
    let q = db.selectFrom('action_groups').selectAll().where('subscription_id', '=', subscriptionId);
    if (resourceGroup) q = q.where((eb) => eb(eb.fn('lower', ['resource_group']), '=', resourceGroup.toLowerCase()));
    const rows = await q.orderBy('name').execute();
    return { value: rows.map(groupView) };
  }

  /** Deletes the group and its delivery history; a send in flight finishes but is not recorded. */
  async function remove(ref: ActionGroupRef): Promise<boolean> {
    const key = checkRef(ref);
    return db.transaction().execute(async (trx) => {
      const deliveries = trx.selectFrom('deliveries').select('id').where('action_group_key', '=', key);
      await trx.deleteFrom('delivery_attempts').where('delivery_id', 'in', deliveries).execute();
      await trx.deleteFrom('deliveries').where('action_group_key', '=', key).execute();
      const result = await trx.deleteFrom('action_groups').where('key', '=', key).executeTakeFirst();
      return result.numDeletedRows > 0n;
    });
  }

  // ---- the outbox ----

  async function insertDeliveries(
    trx: Transaction<Schema> | Database,
    groupKey: string,
    list: Recipient[],
    ids: { alertId: string | null; notificationId: string | null; monitorCondition: string },
  ): Promise<number> {
    if (list.length === 0) return 0;
    const at = now();
    await trx
      .insertInto('deliveries')
      .values(
        list.map((r) => ({
          id: randomUUID(),
          action_group_key: groupKey,
          alert_id: ids.alertId,
          notification_id: ids.notificationId,
          monitor_condition: ids.monitorCondition,
          receiver_name: r.name,
          receiver_kind: r.kind,
          target: r.target,
          payload: r.payload,
          status: 'Pending',
          attempts: 0,
          next_attempt_at: at,
          created_at: iso(at),
          updated_at: iso(at),
        })),
      )
      .execute();
    return list.length;
  }

  /**
   * Writes one delivery per receiver of each enabled action group, in the caller's transaction; sends nothing.
   * Each action's webHookProperties replace the event's. Unknown groups are skipped with a warning.
   */
  async function enqueue(
    trx: Transaction<Schema> | Database,
    event: AlertEvent,
    actions: Array<{ actionGroupId: string; webHookProperties?: Record<string, string> }>,
  ): Promise<number> {
    let count = 0;
    const done = new Set<string>();
    for (const action of actions) {
      const key = idKey(action.actionGroupId);
      if (done.has(key)) continue;
      done.add(key);
      const row = await trx.selectFrom('action_groups').selectAll().where('key', '=', key).executeTakeFirst();
      if (!row) {
        logger.warn({ actionGroupId: action.actionGroupId, alertId: event.alertId }, 'action group not found: skipped');
        continue;
      }
      const properties = JSON.parse(row.properties) as ActionGroupProperties;
      if (!properties.enabled) continue;
      const actionEvent = { ...event, rule: { ...event.rule, webHookProperties: action.webHookProperties ?? {} } };
      count += await insertDeliveries(trx, key, recipients(properties, actionEvent), {
        alertId: event.alertId,
        notificationId: null,
        monitorCondition: event.monitorCondition,
      });
    }
    return count;
  }

  // ---- the sender ----

  async function attemptWebhook(url: string, payload: string): Promise<AttemptResult> {
    try {
      const { status } = await postJson(url, payload, {
        timeoutMs: requestTimeoutMs,
        ...(dispatcher ? { dispatcher } : {}),
      });
      if (status >= 200 && status < 300) return { outcome: 'Succeeded', httpStatus: status, error: null };
      const outcome = RETRYABLE_HTTP_STATUSES.has(status) ? 'Retry' : 'Failed';
      return { outcome, httpStatus: status, error: `HTTP ${status}` };
    } catch (err) {
      // postJson's errors never hold the URL's query; anything else is not expected but is redacted all the same.
      const message = err instanceof WebhookNetworkError ? err.message : redactUrl(errorMessage(err));
      return { outcome: 'Retry', httpStatus: null, error: message };
    }
  }

  async function attemptEmail(to: string, payload: string): Promise<AttemptResult> {
    if (!email) return { outcome: 'Failed', httpStatus: null, error: 'no SMTP server configured (smtpHost)' };
    try {
      await email.send(to, JSON.parse(payload) as EmailMessage);
      return { outcome: 'Succeeded', httpStatus: null, error: null };
    } catch (err) {
      return { outcome: isTransientSmtpError(err) ? 'Retry' : 'Failed', httpStatus: null, error: errorMessage(err) };
    }
  }

  /** Takes the next due delivery by moving it to 'Sending'; null when nothing is due. */
  async function claimNext(): Promise<DeliveriesTable | null> {
    for (;;) {
      const row = await db
        .selectFrom('deliveries')
        .selectAll()
        .where('status', '=', 'Pending')
        .where('next_attempt_at', '<=', now())
        .orderBy('next_attempt_at')
        .limit(1)
        .executeTakeFirst();
      if (!row) return null;
      const claimed = await db
        .updateTable('deliveries')
        .set({ status: 'Sending', updated_at: iso() })
        .where('id', '=', row.id)
        .where('status', '=', 'Pending')
        .executeTakeFirst();
      if (claimed.numUpdatedRows > 0n) return row;
    }
  }

  async function send(row: DeliveriesTable): Promise<void> {
    const attempt = row.attempts + 1;
    const startedAt = iso();
    const t0 = performance.now();
    const result =
      row.receiver_kind === 'email'
        ? await attemptEmail(row.target, row.payload)
        : await attemptWebhook(row.target, row.payload);
    const durationMs = Math.round(performance.now() - t0);
    const delay = retryDelaysMs[attempt - 1];
    // A retryable failure with no retries left is the last one.
    const outcome = result.outcome === 'Retry' && delay === undefined ? 'Failed' : result.outcome;
    const status = outcome === 'Retry' ? 'Pending' : outcome;
    await db.transaction().execute(async (trx) => {
      const updated = await trx
        .updateTable('deliveries')
        .set({
          status,
          attempts: attempt,
          next_attempt_at: outcome === 'Retry' ? now() + (delay ?? 0) : null,
          updated_at: iso(),
        })
        .where('id', '=', row.id)
        .where('status', '=', 'Sending')
        .executeTakeFirst();
      if (updated.numUpdatedRows === 0n) return; // deleted with its group meanwhile
      await trx
        .insertInto('delivery_attempts')
        .values({
          delivery_id: row.id,
          attempt,
          started_at: startedAt,
          duration_ms: durationMs,
          outcome,
          http_status: result.httpStatus,
          error: result.error,
        })
        .execute();
    });
    const log = { deliveryId: row.id, receiver: row.receiver_name, kind: row.receiver_kind, attempt, outcome };
    const target = row.receiver_kind === 'email' ? row.target : redactUrl(row.target);
    if (outcome === 'Failed') logger.warn({ ...log, target, error: result.error }, 'notification delivery failed');
    else logger.info({ ...log, target, httpStatus: result.httpStatus }, 'notification delivery attempt');
  }

  /** Sends every delivery that is due, `concurrency` at a time; resolves when none is left due. */
  async function runDue(): Promise<number> {
    let sent = 0;
    const worker = async () => {
      for (let row = await claimNext(); row; row = await claimNext()) {
        await send(row).catch((err) => logger.error({ deliveryId: row?.id, err: errorMessage(err) }, 'send failed'));
        sent += 1;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    return sent;
  }

  let running: Promise<void> | null = null;
  let stopping = false;
  let wakeUp: (() => void) | null = null;

  /** Milliseconds until the next Pending delivery is due, at most POLL_MS. */
  async function idleMs(): Promise<number> {
    const next = await db
      .selectFrom('deliveries')
      .select((eb) => eb.fn.min('next_attempt_at').as('at'))
      .where('status', '=', 'Pending')
      .executeTakeFirst();
    const at = next?.at === null || next?.at === undefined ? null : Number(next.at);
    return at === null ? POLL_MS : Math.max(0, Math.min(POLL_MS, at - now()));
  }

  async function loop(): Promise<void> {
    while (!stopping) {
      try {
        await runDue();
        const ms = await idleMs();
        if (ms > 0 && !stopping) {
          await new Promise<void>((resolve) => {
            const timer = setTimeout(resolve, ms);
            wakeUp = () => {
              clearTimeout(timer);
              resolve();
            };
          });
          wakeUp = null;
        }
      } catch (err) {
        logger.error({ err: errorMessage(err) }, 'delivery loop failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    }
  }

  /**
   * Starts sending. Deliveries left 'Sending' by a process that stopped mid-send go back to 'Pending' first: they
   * are sent again (at least once; receivers dedupe by alertId). One sender per database.
   */
  async function start(): Promise<void> {
    if (running) return;
    stopping = false;
    const at = now();
    await db
      .updateTable('deliveries')
      .set({ status: 'Pending', next_attempt_at: at, updated_at: iso(at) })
      .where('status', '=', 'Sending')
      .execute();
    running = loop();
  }

  /** Stops the loop; resolves once the sends in flight have ended and been recorded. */
  async function stop(): Promise<void> {
    stopping = true;
    wakeUp?.();
    await running;
    running = null;
  }

  /** Tells the loop that deliveries were enqueued (call after the enqueuing transaction commits). */
  function wake(): void {
    wakeUp?.();
  }

  // ---- test notifications ----

  function testEvent(ref: ActionGroupRef, alertType: string): AlertEvent {
    const dynamic = alertType === 'metricsdynamicthreshold';
    const at = now();
    const target = {
      id: `/subscriptions/${ref.subscriptionId}/resourceGroups/${ref.resourceGroup}/providers/Microsoft.Compute/virtualMachines/test-vm`,
      name: 'test-vm',
      subscriptionId: ref.subscriptionId,
      resourceGroup: ref.resourceGroup,
      vmGuid: '00000000-0000-0000-0000-000000000000',
      location: 'global',
    };
    return {
      alertId: randomUUID(),
      monitorCondition: 'Fired',
      rule: {
        id: `/subscriptions/${ref.subscriptionId}/resourceGroups/${ref.resourceGroup}/providers/Microsoft.Insights/metricAlerts/Test alert rule`,
        name: 'Test alert rule',
        description: `Test notification from action group '${ref.name}' (tripcap "test action group"): no alert fired.`,
        severity: 3,
        subscriptionId: ref.subscriptionId,
        resourceGroup: ref.resourceGroup,
        conditionType: dynamic ? 'DynamicThresholdCriteria' : 'SingleResourceMultipleMetricCriteria',
        windowSize: 'PT5M',
        webHookProperties: {},
      },
      target,
      firedDateTime: iso(at),
      resolvedDateTime: null,
      windowStartTime: iso(at - 5 * 60_000),
      windowEndTime: iso(at),
      criteria: [
        {
          name: 'Metric1',
          metricName: 'Percentage CPU',
          metricNamespace: 'Microsoft.Compute/virtualMachines',
          timeAggregation: 'Average',
          operator: dynamic ? 'GreaterOrLessThan' : 'GreaterThan',
          threshold: 80,
          metricValue: 93.5,
          met: true,
          ...(dynamic
            ? {
                dynamic: {
                  alertSensitivity: 'Medium' as const,
                  failingPeriods: { numberOfEvaluationPeriods: 4, minFailingPeriodsToAlert: 4 },
                  ignoreDataBefore: null,
                  lowerBound: 10,
                  upperBound: 80,
                },
              }
            : {}),
        },
      ],
    };
  }

  /** Azure's "test action group": sends a made-up Fired alert to every receiver of the group, enabled or not. */
  async function createTestNotification(ref: ActionGroupRef, body: unknown): Promise<{ notificationId: string }> {
    const row = await getRow(ref);
    const alertType = isObject(body) && body.alertType !== undefined ? body.alertType : 'metricstaticthreshold';
    if (typeof alertType !== 'string' || !TEST_ALERT_TYPES.includes(alertType.toLowerCase())) {
      throw badRequest(
        'InvalidNotificationRequest',
        `'alertType' must be one of ${TEST_ALERT_TYPES.join(', ')}: tripcap sends metric alerts only.`,
        'alertType',
      );
    }
    const notificationId = randomUUID();
    const properties = JSON.parse(row.properties) as ActionGroupProperties;
    const list = recipients(properties, testEvent(ref, alertType.toLowerCase()));
    if (list.length === 0) {
      throw badRequest('InvalidNotificationRequest', `Action group '${ref.name}' has no receivers to test.`);
    }
    await insertDeliveries(db, row.key, list, { alertId: null, notificationId, monitorCondition: 'Fired' });
    wake();
    return { notificationId };
  }

  async function notificationStatus(subscriptionId: string, notificationId: string): Promise<TestNotificationDetails> {
    assertSubscription(subscriptionId);
    const rows = await db
      .selectFrom('deliveries')
      .selectAll()
      .where('notification_id', '=', notificationId)
      .where('action_group_key', 'like', `/subscriptions/${subscriptionId.toLowerCase()}/%`)
      .orderBy('created_at')
      .execute();
    if (rows.length === 0) {
      throw notFound(
        'ResourceNotFound',
        `Test notification '${notificationId}' was not found in subscription '${subscriptionId}'.`,
      );
    }
    const attempts = await attemptsOf(rows.map((r) => r.id));
    const complete = rows.every((r) => r.status === 'Succeeded' || r.status === 'Failed');
    return {
      context: {
        notificationSource: 'Microsoft.Insights/TestNotification',
        contextType: 'Microsoft.Insights/ActionGroups',
      },
      state: complete ? 'Completed' : 'Pending',
      completedTime: complete
        ? (rows
            .map((r) => r.updated_at)
            .sort()
            .at(-1) ?? null)
        : null,
      createdTime: rows[0]?.created_at ?? iso(),
      actionDetails: rows.map((r) => {
        const last = attempts.get(r.id)?.at(-1);
        return {
          MechanismType: MECHANISM[r.receiver_kind as ReceiverKind],
          Name: r.receiver_name,
          Status: r.status === 'Succeeded' ? 'Completed' : r.status === 'Failed' ? 'Failed' : 'Pending',
          SubState: 'Default',
          SendTime: last?.started_at ?? null,
          Detail: last?.error ?? null,
        };
      }),
    };
  }

  // ---- delivery history ----

  async function attemptsOf(ids: string[]) {
    const byDelivery = new Map<string, Schema['delivery_attempts'][]>();
    if (ids.length === 0) return byDelivery;
    const rows = await db
      .selectFrom('delivery_attempts')
      .selectAll()
      .where('delivery_id', 'in', ids)
      .orderBy('attempt')
      .execute();
    for (const row of rows) byDelivery.set(row.delivery_id, [...(byDelivery.get(row.delivery_id) ?? []), row]);
    return byDelivery;
  }

  async function listDeliveries(ref: ActionGroupRef, query: { top?: number } = {}): Promise<{ value: DeliveryView[] }> {
    const row = await getRow(ref);
    const top = query.top ?? 50;
    if (!Number.isInteger(top) || top < 1 || top > 1000) {
      throw badRequest('InvalidParameter', "'$top' must be a whole number from 1 to 1000.", '$top');
    }
    const rows = await db
      .selectFrom('deliveries')
      .selectAll()
      .where('action_group_key', '=', row.key)
      .orderBy('created_at', 'desc')
      .orderBy('receiver_name')
      .limit(top)
      .execute();
    const attempts = await attemptsOf(rows.map((r) => r.id));
    return {
      value: rows.map((r) => ({
        id: r.id,
        receiverName: r.receiver_name,
        receiverKind: r.receiver_kind as ReceiverKind,
        target: r.receiver_kind === 'email' ? r.target : redactUrl(r.target),
        alertId: r.alert_id,
        notificationId: r.notification_id,
        status: r.status as DeliveryStatus,
        attempts: (attempts.get(r.id) ?? []).map((a) => ({
          attempt: a.attempt,
          startedAt: a.started_at,
          durationMs: a.duration_ms,
          outcome: a.outcome as AttemptOutcome,
          httpStatus: a.http_status,
          error: a.error,
        })),
        createdTime: r.created_at,
        updatedTime: r.updated_at,
      })),
    };
  }

  return {
    put,
    patch,
    get,
    list,
    delete: remove,
    enqueue,
    start,
    stop,
    wake,
    runDue,
    createTestNotification,
    notificationStatus,
    listDeliveries,
  };
}

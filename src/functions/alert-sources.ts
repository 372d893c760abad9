/**
 * Every alert source capture-on-alert accepts, detected from the body's shape and parsed into IncomingAlert[].
 *
 * Parsing is lenient (unknown fields and wrongly typed optional fields are ignored) but never guesses: a body that is
 * none of the accepted sources, or lacks what identifies its alerts, is a 400 that says what was missing.
 *
 * Alertmanager and Grafana name their subject by labels. The mapping (label names compared case-insensitively):
 *
 * | label                                                          | goes to                                    |
 * |----------------------------------------------------------------|--------------------------------------------|
 * | resourceId, resource_id, azure_resource_id (first present)     | target.resourceId                          |
 * | vm, host, hostname, nodename, node, instance, server (in order) | target.names, port stripped: web-1:9100 → web-1 |
 * | any of those whose host part is an IP literal                  | target.addresses: 10.0.0.4:9100, [fe80::1]:9100 |
 *
 * A URL (blackbox `instance="https://web-1/health"`) gives its host name. Names are kept as sent (no domain is cut
 * off): resolveTarget matches them exactly, never fuzzily.
 */
import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { parseDuration, parseInstant } from '../lib/duration.js';
import { badRequest } from '../lib/errors.js';
import type { AlertSource, IncomingAlert } from './types.js';

/** More alerts than this in one body is refused: Alertmanager groups are small, and each alert may start a capture. */
export const MAX_ALERTS_PER_BODY = 100;

const ACCEPTED =
  'tripcap accepts: the Azure Monitor common alert schema (schemaId "azureMonitorCommonAlertSchema" with data.essentials), ' +
  'the Azure Monitor metric alert schema (schemaId "AzureMonitorMetricAlert" with data.status and data.context), ' +
  'the classic metric alert webhook (status and context), the Prometheus Alertmanager webhook (version "4" with alerts[]) ' +
  'and the Grafana alerting webhook (orgId with alerts[])';

/** Alertmanager's and Grafana's "not ended" time. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

const RESOURCE_ID_LABELS = ['resourceid', 'resource_id', 'azure_resource_id'];
const HOST_LABELS = ['vm', 'host', 'hostname', 'nodename', 'node', 'instance', 'server'];

type Json = Record<string, unknown>;

export function parseAlertPayload(body: unknown): { source: AlertSource; alerts: IncomingAlert[] } {
  if (!isRecord(body)) {
    throw badRequest(
      'InvalidRequestContent',
      `The alert body must be a JSON object, not ${describe(body)}. ${ACCEPTED}.`,
    );
  }
  const schemaId = text(body.schemaId);
  if (schemaId !== null) {
    if (schemaId.toLowerCase() === 'azuremonitorcommonalertschema') return one('azure-common', parseCommon(body));
    if (schemaId.toLowerCase() === 'azuremonitormetricalert') return one('azure-metric-alert', parseMetricAlert(body));
    throw unsupported(`schemaId '${schemaId.slice(0, 100)}' is not one tripcap reads`);
  }
  if ('alerts' in body) {
    const source: AlertSource = 'orgId' in body ? 'grafana' : 'alertmanager';
    if (source === 'alertmanager' && text(body.version) !== '4' && text(body.groupKey) === null) {
      throw unsupported('a body with alerts[] but neither orgId (Grafana) nor version "4" or groupKey (Alertmanager)');
    }
    return { source, alerts: parseLabelledAlerts(source, body) };
  }
  if ('status' in body && 'context' in body) return one('azure-classic', parseClassic(body));
  throw unsupported('the body has no schemaId, alerts[] or status with context');
}

function one(source: AlertSource, alert: IncomingAlert) {
  return { source, alerts: [alert] };
}

/** Azure Monitor common alert schema: any conditionType (metric static/dynamic, single/multiple resource, log). */
function parseCommon(body: Json): IncomingAlert {
  const data = record(body.data);
  const essentials = record(data?.essentials);
  if (!essentials) throw unsupported('a common alert schema body without data.essentials');
  const alertId = required(essentials.alertId, 'data.essentials.alertId');
  const ruleName = required(essentials.alertRule, 'data.essentials.alertRule');
  const condition = monitorCondition(essentials.monitorCondition, { fired: 'Fired', resolved: 'Resolved' });
  if (!condition) throw unsupported("data.essentials.monitorCondition is not 'Fired' or 'Resolved'");
  const windowCondition = record(record(data?.alertContext)?.condition);
  return {
    source: 'azure-common',
    // Azure keeps the alert id across retries of one delivery and gives each new firing a new one.
    dedupKey: `azure:${alertId.toLowerCase()}:${condition}`,
    condition,
    ruleName,
    severity: text(essentials.severity),
    description: text(essentials.description),
    target: {
      resourceId: strings(essentials.alertTargetIDs)[0] ?? null,
      names: strings(essentials.configurationItems),
      addresses: [],
    },
    firedAt: text(essentials.firedDateTime),
    resolvedAt: text(essentials.resolvedDateTime),
    windowStart: text(windowCondition?.windowStartTime),
    windowEnd: text(windowCondition?.windowEndTime),
    raw: body,
  };
}

/** schemaId AzureMonitorMetricAlert: `data.status` and `data.context`, no alert id. */
function parseMetricAlert(body: Json): IncomingAlert {
  const data = record(body.data);
  const context = record(data?.context);
  if (!context) throw unsupported('an AzureMonitorMetricAlert body without data.context');
  const condition = monitorCondition(data?.status, {
    activated: 'Fired',
    deactivated: 'Resolved',
    resolved: 'Resolved',
  });
  if (!condition) throw unsupported("data.status is not 'Activated', 'Deactivated' or 'Resolved'");
  return ruleContextAlert('azure-metric-alert', 'data.context', condition, context, body);
}

/** The classic metric alert webhook: `{ status, context: { id, name, condition, resourceId, timestamp, … } }`. */
function parseClassic(body: Json): IncomingAlert {
  const context = record(body.context);
  if (!context) throw unsupported('a classic metric alert body whose context is not an object');
  const condition = monitorCondition(body.status, {
    activated: 'Fired',
    deactivated: 'Resolved',
    resolved: 'Resolved',
  });
  if (!condition) throw unsupported("status is not 'Activated' or 'Resolved'");
  return ruleContextAlert('azure-classic', 'context', condition, context, body);
}

/** The two Azure schemas that describe the rule (context) rather than an alert instance. */
function ruleContextAlert(
  source: AlertSource,
  at: string,
  condition: IncomingAlert['condition'],
  context: Json,
  raw: unknown,
): IncomingAlert {
  const ruleName = required(context.name, `${at}.name`);
  // Without an alert id, the evaluation timestamp is what tells a new firing from a retry.
  const timestamp = required(context.timestamp, `${at}.timestamp`);
  const ruleId = text(context.id) ?? ruleName;
  const resourceId = text(context.resourceId);
  const resourceName = text(context.resourceName);
  const window = windowEndingAt(timestamp, text(record(context.condition)?.windowSize));
  const key = [ruleId.toLowerCase(), (resourceId ?? '').toLowerCase(), condition, timestamp].join(':');
  return {
    source,
    dedupKey: `${source}:${key}`,
    condition,
    ruleName,
    severity: text(context.severity),
    description: text(context.description),
    target: { resourceId, names: resourceName ? [resourceName] : [], addresses: [] },
    firedAt: condition === 'Fired' ? timestamp : null,
    resolvedAt: condition === 'Resolved' ? timestamp : null,
    windowStart: window?.start ?? null,
    windowEnd: window?.end ?? null,
    raw,
  };
}

/** These schemas give the window's size and the evaluation time, which is when the window ended. */
function windowEndingAt(timestamp: string, windowSize: string | null): { start: string; end: string } | null {
  const end = parseInstant(timestamp);
  const size = windowSize === null ? null : parseDuration(windowSize);
  if (end === null || size === null) return null;
  return { start: new Date(end - size).toISOString(), end: new Date(end).toISOString() };
}

/** Alertmanager webhook v4 and Grafana's webhook: one IncomingAlert per alert of the group. */
function parseLabelledAlerts(source: 'alertmanager' | 'grafana', body: Json): IncomingAlert[] {
  const what = source === 'grafana' ? 'Grafana' : 'Alertmanager';
  if (!Array.isArray(body.alerts)) throw unsupported(`an ${what} body whose alerts is not an array`);
  if (body.alerts.length === 0) throw unsupported(`an ${what} body with no alerts`);
  if (body.alerts.length > MAX_ALERTS_PER_BODY) {
    throw badRequest(
      'LimitExceeded',
      `The ${what} body holds ${body.alerts.length} alerts; tripcap takes at most ${MAX_ALERTS_PER_BODY} per delivery (lower the receiver's max_alerts or group by instance).`,
    );
  }
  return body.alerts.map((alert, i) => parseLabelledAlert(source, alert, `alerts[${i}]`, text(body.status)));
}

function parseLabelledAlert(
  source: 'alertmanager' | 'grafana',
  value: unknown,
  at: string,
  groupStatus: string | null,
): IncomingAlert {
  const alert = record(value);
  if (!alert) throw unsupported(`${at} is not an object`);
  const labels = stringValues(alert.labels);
  const annotations = stringValues(alert.annotations);
  const status = (text(alert.status) ?? groupStatus)?.toLowerCase();
  const condition = status === 'firing' ? 'Fired' : status === 'resolved' ? 'Resolved' : null;
  if (!condition) throw unsupported(`${at}.status is not 'firing' or 'resolved'`);
  // startsAt tells a new firing of the same labels from a repeat of this one.
  const startsAt = required(alert.startsAt, `${at}.startsAt`);
  const endsAt = text(alert.endsAt);
  const identity = text(alert.fingerprint) ?? labelsHash(labels);
  return {
    source,
    dedupKey: `${source}:${identity}:${startsAt}:${status}`,
    condition,
    ruleName: labels.get('alertname') ?? '(no alertname label)',
    severity: labels.get('severity') ?? null,
    description: annotations.get('description') ?? annotations.get('summary') ?? null,
    target: targetFromLabels(labels),
    firedAt: startsAt,
    // A firing alert's endsAt is only when it would expire unless repeated, not when it ended.
    resolvedAt: condition === 'Resolved' && endsAt !== ZERO_TIME ? endsAt : null,
    windowStart: null,
    windowEnd: null,
    raw: value,
  };
}

/** Labels by lower-cased name (first spelling wins), string values only. */
function stringValues(value: unknown): Map<string, string> {
  const map = new Map<string, string>();
  for (const [key, v] of Object.entries(record(value) ?? {})) {
    const lower = key.toLowerCase();
    if (typeof v === 'string' && !map.has(lower)) map.set(lower, v);
  }
  return map;
}

/** Alertmanager's fingerprint is a hash of the label set; older versions do not send it, so hash them alike. */
function labelsHash(labels: Map<string, string>): string {
  const sorted = [...labels].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `labels-${createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 16)}`;
}

function targetFromLabels(labels: Map<string, string>): IncomingAlert['target'] {
  const resourceId = RESOURCE_ID_LABELS.map((name) => labels.get(name)?.trim()).find((v) => v) ?? null;
  const names: string[] = [];
  const addresses: string[] = [];
  for (const label of HOST_LABELS) {
    const host = hostPart(labels.get(label) ?? '');
    if (!host) continue;
    const list = isIP(host) ? addresses : names;
    if (!list.includes(host)) list.push(host);
  }
  return { resourceId, names, addresses };
}

/** `web-1:9100` → `web-1`, `[fe80::1]:9100` → `fe80::1`, `fe80::1` stays, `https://web-1:443/x` → `web-1`. */
export function hostPart(value: string): string {
  const trimmed = value.trim();
  if (trimmed.includes('://')) {
    try {
      return new URL(trimmed).hostname.replace(/^\[(.*)\]$/, '$1');
    } catch {
      return '';
    }
  }
  if (trimmed.startsWith('[')) return trimmed.slice(1, trimmed.indexOf(']') > 0 ? trimmed.indexOf(']') : undefined);
  const colons = trimmed.split(':').length - 1;
  return colons === 1 ? trimmed.slice(0, trimmed.indexOf(':')) : trimmed;
}

function monitorCondition(
  value: unknown,
  meanings: Record<string, IncomingAlert['condition']>,
): IncomingAlert['condition'] | null {
  const key = text(value)?.toLowerCase();
  return key !== undefined && Object.hasOwn(meanings, key) ? (meanings[key] ?? null) : null;
}

function required(value: unknown, at: string): string {
  const found = text(value);
  if (found === null) throw unsupported(`${at} is missing or not a string`);
  return found;
}

function unsupported(missing: string) {
  return badRequest('UnsupportedAlertPayload', `Unsupported alert payload: ${missing}. ${ACCEPTED}.`);
}

function isRecord(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function record(value: unknown): Json | null {
  return isRecord(value) ? value : null;
}

/** A non-blank string, or null (Azure sends "" for an empty description). */
function text(value: unknown): string | null {
  return typeof value === 'string' && value.trim() !== '' ? value : null;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => text(v) !== null) : [];
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'empty';
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

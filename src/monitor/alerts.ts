import type { Database } from '../db/index.js';
import { badRequest, notFound } from '../lib/errors.js';
import { redactUrl } from '../lib/logger.js';
import type { AlertEvent } from './alert-event.js';

/** An alert instance in the shape of Azure's Alerts Management API (`Microsoft.AlertsManagement/alerts`). */
export interface AlertView {
  id: string;
  name: string;
  type: 'Microsoft.AlertsManagement/alerts';
  properties: {
    essentials: {
      severity: string;
      signalType: 'Metric';
      alertState: 'New';
      monitorCondition: string;
      monitorService: 'Platform';
      targetResource: string;
      targetResourceName: string;
      targetResourceGroup: string;
      targetResourceType: 'virtualmachines';
      alertRule: string;
      startDateTime: string;
      lastModifiedDateTime: string;
      monitorConditionResolvedDateTime?: string;
      description: string;
    };
    /** The rule's condition with the values and window that decided (as in the common alert schema). */
    context: {
      conditionType: string;
      windowSize: string;
      windowStartTime: string;
      windowEndTime: string;
      criteria: AlertEvent['criteria'];
    };
    /** tripcap's addition: every notification sent for this alert and how it went. */
    deliveries: Array<{
      id: string;
      receiverName: string;
      receiverKind: string;
      target: string;
      monitorCondition: string;
      status: string;
      attempts: number;
      updatedTime: string;
    }>;
  };
}

const TIME_RANGES: Record<string, number> = {
  '1h': 3_600_000,
  '1d': 86_400_000,
  '7d': 604_800_000,
  '30d': 2_592_000_000,
};

export function alertResourceId(subscriptionId: string, alertId: string): string {
  return `/subscriptions/${subscriptionId}/providers/Microsoft.AlertsManagement/alerts/${alertId}`;
}

/** Alert instances, read side: list and get in Azure's Alerts Management shape, with their deliveries. */
export function createAlertsView(db: Database) {
  async function views(
    rows: Array<{
      id: string;
      subscription_id: string;
      event: string;
      fired_at: string;
      resolved_at: string | null;
      monitor_condition: string;
    }>,
  ): Promise<AlertView[]> {
    const ids = rows.map((r) => r.id);
    const deliveries = ids.length
      ? await db
          .selectFrom('deliveries')
          .select([
            'id',
            'alert_id',
            'receiver_name',
            'receiver_kind',
            'target',
            'monitor_condition',
            'status',
            'attempts',
            'updated_at',
          ])
          .where('alert_id', 'in', ids)
          .orderBy('created_at')
          .execute()
      : [];
    return rows.map((row) => {
      const event = JSON.parse(row.event) as AlertEvent;
      return {
        id: alertResourceId(row.subscription_id, row.id),
        name: event.rule.name,
        type: 'Microsoft.AlertsManagement/alerts',
        properties: {
          essentials: {
            severity: `Sev${event.rule.severity}`,
            signalType: 'Metric',
            alertState: 'New',
            monitorCondition: row.monitor_condition,
            monitorService: 'Platform',
            targetResource: event.target.id,
            targetResourceName: event.target.name,
            targetResourceGroup: event.target.resourceGroup,
            targetResourceType: 'virtualmachines',
            alertRule: event.rule.id,
            startDateTime: row.fired_at,
            lastModifiedDateTime: row.resolved_at ?? row.fired_at,
            ...(row.resolved_at ? { monitorConditionResolvedDateTime: row.resolved_at } : {}),
            description: event.rule.description,
          },
          context: {
            conditionType: event.rule.conditionType,
            windowSize: event.rule.windowSize,
            windowStartTime: event.windowStartTime,
            windowEndTime: event.windowEndTime,
            criteria: event.criteria,
          },
          deliveries: deliveries
            .filter((d) => d.alert_id === row.id)
            .map((d) => ({
              id: d.id,
              receiverName: d.receiver_name,
              receiverKind: d.receiver_kind,
              target: d.receiver_kind === 'email' ? d.target : redactUrl(d.target),
              monitorCondition: d.monitor_condition ?? '',
              status: d.status,
              attempts: d.attempts,
              updatedTime: d.updated_at,
            })),
        },
      };
    });
  }

  /** Azure's Alerts_GetAll filters: monitorCondition, alertRule, targetResource, timeRange (1h, 1d, 7d, 30d). */
  async function list(subscriptionId: string, query: Record<string, unknown>): Promise<{ value: AlertView[] }> {
    const text = (name: string) => {
      const v = query[name];
      if (v === undefined) return undefined;
      if (typeof v !== 'string') throw badRequest('BadRequest', `Give '${name}' once.`, name);
      return v;
    };
    const range = text('timeRange') ?? '1d';
    const rangeMs = TIME_RANGES[range];
    if (!rangeMs)
      throw badRequest(
        'BadRequest',
        `timeRange '${range.slice(0, 20)}' is not valid: use 1h, 1d, 7d or 30d.`,
        'timeRange',
      );
    const condition = text('monitorCondition');
    if (condition && !['Fired', 'Resolved'].includes(condition)) {
      throw badRequest(
        'BadRequest',
        `monitorCondition '${condition.slice(0, 20)}' is not valid: use Fired or Resolved.`,
        'monitorCondition',
      );
    }
    const top = Number(text('pageCount') ?? 100);
    if (!Number.isInteger(top) || top < 1 || top > 1000) {
      throw badRequest('BadRequest', 'pageCount must be a whole number from 1 to 1000.', 'pageCount');
    }
    let q = db
      .selectFrom('alerts')
      .selectAll()
      .where('subscription_id', '=', subscriptionId)
      .where('fired_at', '>=', new Date(Date.now() - rangeMs).toISOString());
    if (condition) q = q.where('monitor_condition', '=', condition);
    const rule = text('alertRule');
    if (rule) q = q.where('rule_key', '=', rule.toLowerCase());
    const target = text('targetResource');
    if (target) q = q.where('vm_key', '=', target.toLowerCase());
    const rows = await q.orderBy('fired_at', 'desc').limit(top).execute();
    return { value: await views(rows) };
  }

  async function get(subscriptionId: string, alertId: string): Promise<AlertView> {
    const row = await db
      .selectFrom('alerts')
      .selectAll()
      .where('id', '=', alertId.toLowerCase())
      .where('subscription_id', '=', subscriptionId)
      .executeTakeFirst();
    if (!row) throw notFound('ResourceNotFound', `Alert '${alertId.slice(0, 64)}' was not found.`);
    const [view] = await views([row]);
    return view as AlertView;
  }

  return { list, get };
}

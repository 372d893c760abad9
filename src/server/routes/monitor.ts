import type { FastifyInstance, FastifyRequest } from 'fastify';
import { assertName, assertSubscription } from '../../lib/arm-id.js';
import { badRequest } from '../../lib/errors.js';
import { redactUrl } from '../../lib/logger.js';
import type { ActionGroupView } from '../../monitor/action-groups.js';
import type { Monitor } from '../../monitor/monitor.js';
import { requestBaseUrl } from '../app.js';
import { roleCan } from '../tokens.js';

type Params = Record<string, string>;

const SUB = '/subscriptions/:subscriptionId';
const RG = `${SUB}/resourceGroups/:resourceGroupName`;
const RULES = `${RG}/providers/Microsoft.Insights/metricAlerts`;
const GROUPS = `${RG}/providers/Microsoft.Insights/actionGroups`;
const ALERTS = `${SUB}/providers/Microsoft.AlertsManagement/alerts`;

function subscriptionOf(params: Params): string {
  return assertSubscription(params.subscriptionId ?? '').toLowerCase();
}

function resourceGroupOf(params: Params): string {
  return assertName(params.resourceGroupName ?? '', 'Resource group');
}

function refOf(params: Params, nameParam: string, what: string) {
  return {
    subscriptionId: subscriptionOf(params),
    resourceGroup: resourceGroupOf(params),
    name: assertName(params[nameParam] ?? '', what),
  };
}

/**
 * Receivers' URLs often carry a function key (`?code=`): only callers who may change the group see them whole, so a
 * reader's token cannot become a key to the capture function.
 */
function forCaller(request: FastifyRequest, group: ActionGroupView): ActionGroupView {
  if (request.principal && roleCan(request.principal.role, 'resource:write')) return group;
  const p = group.properties;
  return {
    ...group,
    properties: {
      ...p,
      webhookReceivers: p.webhookReceivers.map((r) => ({ ...r, serviceUri: redactUrl(r.serviceUri) })),
      azureFunctionReceivers: p.azureFunctionReceivers.map((r) => ({
        ...r,
        httpTriggerUrl: redactUrl(r.httpTriggerUrl),
      })),
    },
  };
}

const ruleRef = (request: FastifyRequest) => refOf(request.params as Params, 'ruleName', 'Metric alert rule name');
const groupRef = (request: FastifyRequest) => refOf(request.params as Params, 'groupName', 'Action group name');

/** Metric alert rules, action groups and alerts in Azure Monitor's ARM shapes. */
export function registerMonitorRoutes(app: FastifyInstance, { monitor }: { monitor: Monitor }) {
  const read = { config: { permission: 'read' as const } };
  const write = { config: { permission: 'resource:write' as const } };
  const { rules, actionGroups, alerts } = monitor;

  // ---- metric alert rules ----
  app.get(`${SUB}/providers/Microsoft.Insights/metricAlerts`, read, async (request) =>
    rules.list(subscriptionOf(request.params as Params)),
  );
  app.get(RULES, read, async (request) => {
    const p = request.params as Params;
    return rules.list(subscriptionOf(p), resourceGroupOf(p));
  });
  app.get(`${RULES}/:ruleName`, read, async (request) => rules.get(ruleRef(request)));
  app.put(`${RULES}/:ruleName`, write, async (request, reply) => {
    const { created, rule } = await rules.put(ruleRef(request), request.body);
    return reply.status(created ? 201 : 200).send(rule);
  });
  app.patch(`${RULES}/:ruleName`, write, async (request) => rules.patch(ruleRef(request), request.body));
  app.delete(`${RULES}/:ruleName`, write, async (request, reply) => {
    const deleted = await rules.delete(ruleRef(request));
    return reply.status(deleted ? 200 : 204).send();
  });
  // tripcap's addition: the rule's action groups send a test alert for one VM of its scope.
  app.post(`${RULES}/:ruleName/testFire`, write, async (request, reply) =>
    reply.status(202).send(await monitor.testFire(ruleRef(request), request.body ?? {})),
  );

  // ---- action groups ----
  app.get(`${SUB}/providers/Microsoft.Insights/actionGroups`, read, async (request) => {
    const { value } = await actionGroups.list(subscriptionOf(request.params as Params));
    return { value: value.map((g) => forCaller(request, g)) };
  });
  app.get(GROUPS, read, async (request) => {
    const p = request.params as Params;
    const { value } = await actionGroups.list(subscriptionOf(p), resourceGroupOf(p));
    return { value: value.map((g) => forCaller(request, g)) };
  });
  app.get(`${GROUPS}/:groupName`, read, async (request) =>
    forCaller(request, await actionGroups.get(groupRef(request))),
  );
  app.put(`${GROUPS}/:groupName`, write, async (request, reply) => {
    const { created, group } = await actionGroups.put(groupRef(request), request.body);
    return reply.status(created ? 201 : 200).send(group);
  });
  app.patch(`${GROUPS}/:groupName`, write, async (request) => actionGroups.patch(groupRef(request), request.body));
  app.delete(`${GROUPS}/:groupName`, write, async (request, reply) => {
    const deleted = await actionGroups.delete(groupRef(request));
    return reply.status(deleted ? 200 : 204).send();
  });
  // "Test action group": Azure's createNotifications, answered 202 with where to follow it.
  app.post(`${GROUPS}/:groupName/createNotifications`, write, async (request, reply) => {
    const ref = groupRef(request);
    const { notificationId } = await actionGroups.createTestNotification(ref, request.body ?? {});
    const location = `${requestBaseUrl(request)}/subscriptions/${ref.subscriptionId}/resourceGroups/${ref.resourceGroup}/providers/Microsoft.Insights/actionGroups/${ref.name}/notificationStatus/${notificationId}?api-version=2023-01-01`;
    return reply.status(202).header('Location', location).header('Retry-After', '1').send();
  });
  app.get(`${GROUPS}/:groupName/notificationStatus/:notificationId`, read, async (request) => {
    const ref = groupRef(request);
    const id = String((request.params as Params).notificationId);
    if (!/^[0-9a-f-]{1,64}$/i.test(id)) throw badRequest('BadRequest', 'notificationId is not valid.');
    return actionGroups.notificationStatus(ref.subscriptionId, id);
  });
  // tripcap's addition: every delivery and each of its attempts.
  app.get(`${GROUPS}/:groupName/deliveries`, read, async (request) => {
    const top = (request.query as Record<string, unknown>).$top;
    return actionGroups.listDeliveries(groupRef(request), top === undefined ? {} : { top: Number(top) });
  });

  // ---- alerts (Azure's Alerts Management API) ----
  app.get(ALERTS, read, async (request) =>
    alerts.list(subscriptionOf(request.params as Params), request.query as Record<string, unknown>),
  );
  app.get(`${ALERTS}/:alertId`, read, async (request) => {
    const p = request.params as Params;
    const id = String(p.alertId);
    if (!/^[0-9a-f-]{36}$/i.test(id)) throw badRequest('BadRequest', `Alert id '${id.slice(0, 64)}' is not a GUID.`);
    return alerts.get(subscriptionOf(p), id);
  });
}

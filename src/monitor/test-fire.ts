import { randomUUID } from 'node:crypto';
import type { Database } from '../db/index.js';
import { parseDuration } from '../lib/duration.js';
import { badRequest } from '../lib/errors.js';
import { isObject } from '../lib/json.js';
import type { ActionGroups } from './action-groups.js';
import { type AlertRules, parseScope, type RuleRef, type Scope, vmsInScope } from './alert-rules.js';
import { firedAlertEvent } from './evaluator.js';

/**
 * "Test fire" a metric alert rule (tripcap's addition): its action groups send a Fired alert for one VM of its scope,
 * exactly as a real firing would (same payloads, same outbox, retries and delivery log), so the whole path — webhook,
 * capture-on-alert function, capture of that VM — can be tried without making the traffic. The alert says it is a
 * test in its description; no alert instance is recorded and the rule's state does not change, as with Azure's
 * "test action group".
 */
export function createRuleTestFire(options: { db: Database; rules: AlertRules; actionGroups: ActionGroups }) {
  const { db, rules, actionGroups } = options;

  async function testFire(
    ref: RuleRef,
    body: unknown,
  ): Promise<{ alertId: string; vm: string; deliveries: number; firedDateTime: string }> {
    const rule = await rules.get(ref);
    const p = rule.properties;
    const wanted = isObject(body) && body.vm !== undefined && body.vm !== null ? body.vm : undefined;
    if (wanted !== undefined && (typeof wanted !== 'string' || wanted.length > 500)) {
      throw badRequest('BadRequest', "'vm' must be the name or id of a VM in the rule's scope.", 'vm');
    }
    if (p.actions.length === 0) {
      throw badRequest(
        'BadRequest',
        `Rule '${ref.name}' has no action groups, so a test fire would tell no one: add an action group to the rule first.`,
        'properties.actions',
      );
    }
    const vms = await db
      .selectFrom('vms')
      .select(['key', 'id', 'name', 'subscription_id', 'resource_group', 'location'])
      .orderBy('name')
      .execute();
    const scopes = p.scopes.map(parseScope).filter((s): s is Scope => s !== null);
    const inScope = vmsInScope({ scopes, properties: p }, vms);
    const vm = wanted
      ? inScope.find((v) => v.name.toLowerCase() === wanted.toLowerCase() || v.key === wanted.toLowerCase())
      : inScope[0];
    if (!vm) {
      throw badRequest(
        'BadRequest',
        wanted
          ? `VM '${wanted.slice(0, 200)}' is not in the scope of rule '${ref.name}': give one of ${inScope.map((v) => v.name).join(', ') || '(none)'}.`
          : `Rule '${ref.name}' covers no VM that tripcap knows: nothing to fire for.`,
        'vm',
      );
    }
    const now = Date.now();
    const windowMs = parseDuration(p.windowSize) ?? 0;
    const event = firedAlertEvent({
      rule: { ...rule, subscriptionId: ref.subscriptionId, resourceGroup: ref.resourceGroup },
      vm,
      alertId: randomUUID(),
      windowStartMs: now - windowMs,
      windowEndMs: now,
      firedAt: new Date(now).toISOString(),
      description: `Test fire of rule '${rule.name}' from tripcap: no threshold was crossed.${p.description ? ` ${p.description}` : ''}`,
      // Each criterion as met at its threshold; a dynamic one has no computed threshold, so 0.
      criteria: p.criteria.allOf.map((c) => ({
        name: c.name,
        metricName: c.metricName,
        metricNamespace: c.metricNamespace,
        timeAggregation: c.timeAggregation,
        operator: c.operator,
        threshold: c.criterionType === 'StaticThresholdCriterion' ? c.threshold : 0,
        metricValue: c.criterionType === 'StaticThresholdCriterion' ? c.threshold : null,
        met: true,
      })),
    });
    const deliveries = await actionGroups.enqueue(db, event, p.actions);
    actionGroups.wake();
    return { alertId: event.alertId, vm: vm.id, deliveries, firedDateTime: event.firedDateTime };
  }

  return { testFire };
}

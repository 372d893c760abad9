import { randomUUID } from 'node:crypto';
import type { Database } from '../db/index.js';
import { assertName, idKey, parseVmId, vmResourceId } from '../lib/arm-id.js';
import { badRequest, notFound } from '../lib/errors.js';
import { isObject, parseTags } from '../lib/json.js';
import { isoNow } from '../lib/time.js';
import { parseRuleProperties, type RuleProperties } from './rule-definition.js';

export interface RuleRef {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
}

/** A rule's scope entry, resolved: one VM, a resource group's VMs, or a subscription's VMs. */
export type Scope =
  | { kind: 'vm'; key: string }
  | { kind: 'resourceGroup'; subscriptionId: string; resourceGroup: string }
  | { kind: 'subscription'; subscriptionId: string };

/** A rule as the evaluator runs it. */
export interface LoadedRule {
  key: string;
  id: string;
  name: string;
  subscriptionId: string;
  resourceGroup: string;
  properties: RuleProperties;
  scopes: Scope[];
  windowMs: number;
  frequencyMs: number;
}

export interface RuleView {
  id: string;
  name: string;
  type: 'Microsoft.Insights/metricAlerts';
  location: string;
  tags: Record<string, string>;
  properties: RuleProperties & { lastUpdatedTime: string; isMigrated: false };
}

/** The VM rows a scope resolution needs. */
export interface ScopeVm {
  key: string;
  subscription_id: string;
  resource_group: string;
  location: string;
}

export function ruleId(ref: RuleRef): string {
  return `/subscriptions/${ref.subscriptionId}/resourceGroups/${ref.resourceGroup}/providers/Microsoft.Insights/metricAlerts/${ref.name}`;
}

/** Parses a scope's shape (not whether it exists). */
export function parseScope(scope: string): Scope | null {
  const vm = parseVmId(scope);
  if (vm) return { kind: 'vm', key: idKey(vmResourceId(vm)) };
  const rg = /^\/subscriptions\/([0-9a-z-]{1,64})\/resourceGroups\/([A-Za-z0-9_.()-]{1,90})\/?$/i.exec(scope);
  if (rg) return { kind: 'resourceGroup', subscriptionId: (rg[1] ?? '').toLowerCase(), resourceGroup: rg[2] ?? '' };
  const sub = /^\/subscriptions\/([0-9a-z-]{1,64})\/?$/i.exec(scope);
  if (sub) return { kind: 'subscription', subscriptionId: (sub[1] ?? '').toLowerCase() };
  return null;
}

/** The VMs a rule covers now (VMs that register later join resource-group and subscription scopes). */
export function vmsInScope<T extends ScopeVm>(rule: Pick<LoadedRule, 'scopes' | 'properties'>, vms: readonly T[]): T[] {
  const region = rule.properties.targetResourceRegion;
  return vms.filter((vm) => {
    if (region && vm.location.toLowerCase() !== region) return false;
    return rule.scopes.some((s) => {
      if (s.kind === 'vm') return s.key === vm.key;
      if (vm.subscription_id.toLowerCase() !== s.subscriptionId) return false;
      return s.kind === 'subscription' || vm.resource_group.toLowerCase() === s.resourceGroup.toLowerCase();
    });
  });
}

const etag = () => `W/"${randomUUID()}"`;

/** Metric alert rules in Azure's `Microsoft.Insights/metricAlerts` ARM shape, stored in the database. */
export function createAlertRules(options: { db: Database; onChange?: () => void }) {
  const { db } = options;
  const changed = () => options.onChange?.();

  function toView(row: {
    id: string;
    name: string;
    location: string;
    tags: string;
    properties: string;
    updated_at: string;
  }): RuleView {
    return {
      id: row.id,
      name: row.name,
      type: 'Microsoft.Insights/metricAlerts',
      location: row.location,
      tags: JSON.parse(row.tags),
      properties: { ...JSON.parse(row.properties), lastUpdatedTime: row.updated_at, isMigrated: false },
    };
  }

  /** Scopes must be VMs tripcap knows, resource groups holding some, or the rule's own subscription. */
  async function checkScopes(ref: RuleRef, scopes: string[]): Promise<void> {
    for (const [i, scope] of scopes.entries()) {
      const target = `properties.scopes[${i}]`;
      const parsed = parseScope(scope);
      if (!parsed) {
        throw badRequest(
          'BadRequest',
          `Scope '${scope.slice(0, 200)}' is not a virtual machine, resource group or subscription id.`,
          target,
        );
      }
      if (parsed.kind === 'vm') {
        const vm = await db.selectFrom('vms').select('key').where('key', '=', parsed.key).executeTakeFirst();
        if (!vm)
          throw badRequest('BadRequest', `Scope '${scope}' is not a VM known to tripcap (tripcap vm list).`, target);
        if (!parsed.key.startsWith(`/subscriptions/${ref.subscriptionId.toLowerCase()}/`)) {
          throw badRequest('BadRequest', `Scope '${scope}' is in another subscription than the rule.`, target);
        }
        continue;
      }
      if (parsed.subscriptionId !== ref.subscriptionId.toLowerCase()) {
        throw badRequest('BadRequest', `Scope '${scope}' is in another subscription than the rule.`, target);
      }
      if (parsed.kind === 'resourceGroup') {
        const any = await db
          .selectFrom('vms')
          .select('key')
          .where('subscription_id', '=', parsed.subscriptionId)
          .where((eb) => eb(eb.fn('lower', ['resource_group']), '=', parsed.resourceGroup.toLowerCase()))
          .executeTakeFirst();
        if (!any) {
          throw badRequest(
            'BadRequest',
            `Scope '${scope}': resource group '${parsed.resourceGroup}' has no VMs that tripcap knows of.`,
            target,
          );
        }
      }
    }
  }

  async function checkActions(properties: RuleProperties): Promise<void> {
    for (const [i, action] of properties.actions.entries()) {
      const found = await db
        .selectFrom('action_groups')
        .select('key')
        .where('key', '=', idKey(action.actionGroupId))
        .executeTakeFirst();
      if (!found) {
        throw badRequest(
          'BadRequest',
          `Action group '${action.actionGroupId.slice(0, 300)}' does not exist: create it first (tripcap action-group create).`,
          `properties.actions[${i}].actionGroupId`,
        );
      }
    }
  }

  async function validate(ref: RuleRef, body: unknown): Promise<RuleProperties> {
    const { windowMs: _w, frequencyMs: _f, ...properties } = parseRuleProperties(body);
    await checkScopes(ref, properties.scopes);
    await checkActions(properties);
    return properties;
  }

  async function put(ref: RuleRef, body: unknown): Promise<{ created: boolean; rule: RuleView }> {
    assertName(ref.resourceGroup, 'Resource group');
    assertName(ref.name, 'Metric alert rule name');
    const properties = await validate(ref, body);
    const tags = parseTags(isObject(body) ? body.tags : undefined);
    const location = isObject(body) && typeof body.location === 'string' ? body.location.slice(0, 64) : 'global';
    const id = ruleId(ref);
    const now = isoNow();
    const existing = await db
      .selectFrom('metric_alert_rules')
      .select('created_at')
      .where('key', '=', idKey(id))
      .executeTakeFirst();
    const row = {
      key: idKey(id),
      id,
      subscription_id: ref.subscriptionId,
      resource_group: ref.resourceGroup,
      name: ref.name,
      location,
      tags: JSON.stringify(tags),
      properties: JSON.stringify(properties),
      etag: etag(),
      created_at: existing?.created_at ?? now,
      updated_at: now,
    };
    await db
      .insertInto('metric_alert_rules')
      .values(row)
      .onConflict((oc) =>
        oc.column('key').doUpdateSet({
          location: row.location,
          tags: row.tags,
          properties: row.properties,
          etag: row.etag,
          updated_at: row.updated_at,
        }),
      )
      .execute();
    changed();
    return { created: !existing, rule: toView(row) };
  }

  async function rowOf(ref: RuleRef) {
    const row = await db
      .selectFrom('metric_alert_rules')
      .selectAll()
      .where('key', '=', idKey(ruleId(ref)))
      .executeTakeFirst();
    if (!row) {
      throw notFound(
        'ResourceNotFound',
        `The metric alert rule '${ref.name}' was not found in resource group '${ref.resourceGroup}'.`,
      );
    }
    return row;
  }

  /** Azure's MetricAlerts_Update: `tags` and any subset of `properties`, merged into the rule, then validated whole. */
  async function patch(ref: RuleRef, body: unknown): Promise<RuleView> {
    const row = await rowOf(ref);
    if (!isObject(body)) throw badRequest('BadRequest', 'The body must be a JSON object.', 'properties');
    if (body.properties !== undefined && !isObject(body.properties)) {
      throw badRequest('BadRequest', 'properties must be an object.', 'properties');
    }
    const merged = {
      location: row.location,
      tags: body.tags === undefined ? JSON.parse(row.tags) : body.tags,
      properties: { ...JSON.parse(row.properties), ...((body.properties as object | undefined) ?? {}) },
    };
    return (await put(ref, merged)).rule;
  }

  async function get(ref: RuleRef): Promise<RuleView> {
    return toView(await rowOf(ref));
  }

  async function list(subscriptionId: string, resourceGroup?: string): Promise<{ value: RuleView[] }> {
    let query = db.selectFrom('metric_alert_rules').selectAll().where('subscription_id', '=', subscriptionId);
    if (resourceGroup) {
      query = query.where((eb) => eb(eb.fn('lower', ['resource_group']), '=', resourceGroup.toLowerCase()));
    }
    const rows = await query.orderBy('name').execute();
    return { value: rows.map(toView) };
  }

  /** Deletes a rule and where it stood; its alerts stay as history. */
  async function remove(ref: RuleRef): Promise<boolean> {
    const key = idKey(ruleId(ref));
    const deleted = await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('alert_states').where('rule_key', '=', key).execute();
      const result = await trx.deleteFrom('metric_alert_rules').where('key', '=', key).executeTakeFirst();
      return Number(result.numDeletedRows) > 0;
    });
    if (deleted) changed();
    return deleted;
  }

  /** Every enabled rule, parsed, for the evaluator. */
  async function loadEnabled(): Promise<LoadedRule[]> {
    const rows = await db.selectFrom('metric_alert_rules').selectAll().execute();
    const rules: LoadedRule[] = [];
    for (const row of rows) {
      const properties = JSON.parse(row.properties) as RuleProperties;
      if (!properties.enabled) continue;
      // Stored properties were valid when written; parsing them again gives the durations in ms.
      const { windowMs, frequencyMs } = parseRuleProperties({ properties });
      rules.push({
        key: row.key,
        id: row.id,
        name: row.name,
        subscriptionId: row.subscription_id,
        resourceGroup: row.resource_group,
        properties,
        scopes: properties.scopes.map(parseScope).filter((s): s is Scope => s !== null),
        windowMs,
        frequencyMs,
      });
    }
    return rules;
  }

  return { put, patch, get, list, delete: remove, loadEnabled };
}

export type AlertRules = ReturnType<typeof createAlertRules>;

import { createHash, randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { Database, Schema } from '../db/index.js';
import type { Logger } from '../lib/logger.js';
import type { AlertEvent, CriterionOutcome } from './alert-event.js';
import { type AlertRules, type LoadedRule, vmsInScope } from './alert-rules.js';
import {
  aggregate,
  compare,
  deviates,
  dueTime,
  dynamicBounds,
  MAX_HISTORY,
  type Transition,
  transition,
} from './evaluation.js';
import { type MetricBucket, type MetricsStore, MINUTE_MS } from './metrics-store.js';
import { conditionTypeOf, type DynamicCriterion, type RuleAction } from './rule-definition.js';

/** Where the evaluator hands notifications: written in the evaluator's transaction, sent later. */
export interface NotificationOutbox {
  enqueue(trx: Transaction<Schema>, event: AlertEvent, actions: RuleAction[]): Promise<number>;
  wake(): void;
}

export interface EvaluatorOptions {
  db: Database;
  metrics: MetricsStore;
  rules: AlertRules;
  outbox: NotificationOutbox;
  logger: Logger;
  /**
   * How long after a window ends it is evaluated: agents send their samples in batches (every 5 s by default), so
   * the last seconds of a window arrive a little later. Default 7 s.
   */
  delayMs?: number;
  /** How often due rules are looked for (default 1 s). */
  tickMs?: number;
  now?: () => number;
}

export interface VmRow {
  key: string;
  id: string;
  name: string;
  subscription_id: string;
  resource_group: string;
  location: string;
}

/** What one evaluation changed, for logs, tests and benchmarks. */
export interface EvaluationResult {
  rules: number;
  vmsEvaluated: number;
  fired: number;
  resolved: number;
}

/** A GUID that stays the same for the same text (the VM's `ResourceId` dimension value in payloads). */
export function stableGuid(text: string): string {
  const h = createHash('sha256').update(text).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** A Fired alert of a rule for one VM, as action groups deliver it (the evaluator's, and a rule's test fire). */
export function firedAlertEvent(input: {
  rule: Pick<LoadedRule, 'id' | 'name' | 'subscriptionId' | 'resourceGroup' | 'properties'>;
  vm: VmRow;
  alertId: string;
  windowStartMs: number;
  windowEndMs: number;
  firedAt: string;
  criteria: CriterionOutcome[];
  /** Default: the rule's own description. */
  description?: string;
}): AlertEvent {
  const { rule, vm } = input;
  return {
    alertId: input.alertId,
    monitorCondition: 'Fired',
    rule: {
      id: rule.id,
      name: rule.name,
      description: input.description ?? rule.properties.description,
      severity: rule.properties.severity,
      subscriptionId: rule.subscriptionId,
      resourceGroup: rule.resourceGroup,
      conditionType: conditionTypeOf(rule.properties),
      windowSize: rule.properties.windowSize,
      webHookProperties: {},
    },
    target: {
      id: vm.id,
      name: vm.name,
      subscriptionId: vm.subscription_id,
      resourceGroup: vm.resource_group,
      vmGuid: stableGuid(vm.key),
      location: vm.location,
    },
    firedDateTime: input.firedAt,
    resolvedDateTime: null,
    windowStartTime: iso(input.windowStartMs),
    windowEndTime: iso(input.windowEndMs),
    criteria: input.criteria,
  };
}

/**
 * Runs every enabled rule at its frequency over its window, for each VM in its scope. Where each rule stands for
 * each VM is stored with the alert it opened and the notifications it owes, in one transaction: a restart resumes
 * from there, so it neither forgets a fired alert nor fires it twice.
 */
export function createEvaluator(options: EvaluatorOptions) {
  const { db, metrics, rules, outbox, logger } = options;
  const delayMs = options.delayMs ?? 7_000;
  const now = options.now ?? Date.now;
  let loaded: LoadedRule[] | null = null;
  /** The last evaluation time done per rule (in memory: after a restart the stored states guard each VM). */
  const lastRun = new Map<string, number>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<EvaluationResult> | null = null;

  /** Forget the loaded rules: called when a rule changes. */
  function invalidate() {
    loaded = null;
  }

  async function tick(at: number = now()): Promise<EvaluationResult> {
    loaded ??= await rules.loadEnabled();
    const result: EvaluationResult = { rules: 0, vmsEvaluated: 0, fired: 0, resolved: 0 };
    const due = loaded.filter((r) => (lastRun.get(r.key) ?? -1) < dueTime(at, r.frequencyMs, delayMs));
    if (due.length === 0) return result;
    const vms = await db
      .selectFrom('vms')
      .select(['key', 'id', 'name', 'subscription_id', 'resource_group', 'location'])
      .execute();
    // Rules with the same metric and window share one query over all VMs.
    const windows = new Map<string, Promise<Map<string, MetricBucket>>>();
    const windowOf = (metric: string, start: number, end: number) => {
      const key = `${metric}\0${start}\0${end}`;
      let w = windows.get(key);
      if (!w) {
        w = metrics.windowAggregates(metric, start, end);
        windows.set(key, w);
      }
      return w;
    };
    for (const rule of due) {
      const time = dueTime(at, rule.frequencyMs, delayMs);
      try {
        const r = await evaluateRule(rule, time, vmsInScope(rule, vms), windowOf);
        result.rules++;
        result.vmsEvaluated += r.vmsEvaluated;
        result.fired += r.fired;
        result.resolved += r.resolved;
      } catch (err) {
        logger.error({ err, rule: rule.id }, 'evaluating a metric alert rule failed');
      }
      lastRun.set(rule.key, time);
    }
    if (result.fired + result.resolved > 0) outbox.wake();
    return result;
  }

  async function evaluateRule(
    rule: LoadedRule,
    time: number,
    targets: VmRow[],
    windowOf: (metric: string, start: number, end: number) => Promise<Map<string, MetricBucket>>,
  ): Promise<Omit<EvaluationResult, 'rules'>> {
    const done = { vmsEvaluated: targets.length, fired: 0, resolved: 0 };
    if (targets.length === 0) return done;
    const start = time - rule.windowMs;
    const outcomes = new Map<string, CriterionOutcome[]>(targets.map((vm) => [vm.key, []]));
    for (const criterion of rule.properties.criteria.allOf) {
      if (criterion.criterionType === 'DynamicThresholdCriterion') {
        for (const vm of targets) {
          outcomes.get(vm.key)?.push(await dynamicOutcome(vm.key, criterion, time, rule.windowMs));
        }
        continue;
      }
      const window = await windowOf(criterion.metricName, start, time);
      for (const vm of targets) {
        const value = aggregate(window.get(vm.key), criterion.timeAggregation);
        outcomes.get(vm.key)?.push({
          name: criterion.name,
          metricName: criterion.metricName,
          metricNamespace: criterion.metricNamespace,
          timeAggregation: criterion.timeAggregation,
          operator: criterion.operator,
          threshold: criterion.threshold,
          metricValue: value,
          met: value !== null && compare(value, criterion.operator, criterion.threshold),
        });
      }
    }

    const states = new Map(
      (await db.selectFrom('alert_states').selectAll().where('rule_key', '=', rule.key).execute()).map((s) => [
        s.vm_key,
        s,
      ]),
    );
    const changes: Array<{ vm: VmRow; transition: Transition; open: boolean; cleanCount: number }> = [];
    for (const vm of targets) {
      const stored = states.get(vm.key);
      if (stored && stored.last_evaluated >= time) continue; // done before a restart
      const met = (outcomes.get(vm.key) ?? []).every((o) => o.met);
      const before = { open: stored?.alert_id != null, cleanCount: stored?.clean_count ?? 0 };
      const next = transition(before, met, rule.properties.autoMitigate);
      // Only open alerts and changes are written: 1,000 quiet VMs cost no writes.
      if (next.transition === 'None' && !before.open) continue;
      changes.push({ vm, transition: next.transition, ...next.state });
    }
    if (changes.length === 0) return done;

    const at = iso(now());
    await db.transaction().execute(async (trx) => {
      for (const change of changes) {
        const stored = states.get(change.vm.key);
        let alertId = stored?.alert_id ?? null;
        if (change.transition === 'Fire') {
          alertId = randomUUID();
          const event = firedAlertEvent({
            rule,
            vm: change.vm,
            alertId,
            windowStartMs: time - rule.windowMs,
            windowEndMs: time,
            firedAt: at,
            criteria: outcomes.get(change.vm.key) ?? [],
          });
          await trx
            .insertInto('alerts')
            .values({
              id: alertId,
              rule_key: rule.key,
              vm_key: change.vm.key,
              subscription_id: rule.subscriptionId,
              monitor_condition: 'Fired',
              severity: rule.properties.severity,
              fired_at: at,
              resolved_at: null,
              event: JSON.stringify(event),
            })
            .execute();
          await outbox.enqueue(trx, event, rule.properties.actions);
          done.fired++;
          logger.warn({ rule: rule.name, vm: change.vm.name, alertId, values: valuesOf(event) }, 'metric alert fired');
        } else if (change.transition === 'Resolve' && alertId) {
          const row = await trx.selectFrom('alerts').select('event').where('id', '=', alertId).executeTakeFirst();
          if (row) {
            const event: AlertEvent = {
              ...(JSON.parse(row.event) as AlertEvent),
              monitorCondition: 'Resolved',
              resolvedDateTime: at,
              windowStartTime: iso(time - rule.windowMs),
              windowEndTime: iso(time),
              criteria: outcomes.get(change.vm.key) ?? [],
            };
            await trx
              .updateTable('alerts')
              .set({ monitor_condition: 'Resolved', resolved_at: at, event: JSON.stringify(event) })
              .where('id', '=', alertId)
              .execute();
            await outbox.enqueue(trx, event, rule.properties.actions);
            done.resolved++;
            logger.info({ rule: rule.name, vm: change.vm.name, alertId }, 'metric alert resolved');
          }
        }
        const state = {
          alert_id: change.open ? alertId : null,
          clean_count: change.cleanCount,
          last_evaluated: time,
        };
        await trx
          .insertInto('alert_states')
          .values({ rule_key: rule.key, vm_key: change.vm.key, ...state })
          .onConflict((oc) => oc.columns(['rule_key', 'vm_key']).doUpdateSet(state))
          .execute();
      }
    });
    return done;
  }

  /**
   * A dynamic criterion for one VM: the band learnt from up to MAX_HISTORY earlier windows (see dynamicBounds), and
   * how many of the last `numberOfEvaluationPeriods` windows lie outside it.
   */
  async function dynamicOutcome(
    vmKey: string,
    criterion: DynamicCriterion,
    time: number,
    windowMs: number,
  ): Promise<CriterionOutcome> {
    const periods = criterion.failingPeriods.numberOfEvaluationPeriods;
    // Whole-minute windows learn from the rollups; shorter ones from the raw samples, as far back as they are kept.
    const wholeMinutes = time % MINUTE_MS === 0 && windowMs % MINUTE_MS === 0;
    let first = time - (periods + MAX_HISTORY) * windowMs;
    let earliest = wholeMinutes ? 0 : now() - metrics.rawRetentionMs;
    if (criterion.ignoreDataBefore) earliest = Math.max(earliest, Date.parse(criterion.ignoreDataBefore));
    if (first < earliest) first = time - Math.floor((time - earliest) / windowMs) * windowMs;
    const buckets = await metrics.series(vmKey, criterion.metricName, {
      start: first,
      end: time,
      intervalMs: wholeMinutes ? MINUTE_MS : 1000,
    });
    const values: Array<number | null> = [];
    for (let w = first; w < time; w += windowMs) {
      const merged: MetricBucket = { time: w, count: 0, sum: 0, min: Infinity, max: -Infinity };
      for (const b of buckets) {
        if (b.time < w || b.time >= w + windowMs || b.count === 0) continue;
        merged.count += b.count;
        merged.sum += b.sum;
        merged.min = Math.min(merged.min, b.min);
        merged.max = Math.max(merged.max, b.max);
      }
      values.push(aggregate(merged, criterion.timeAggregation));
    }
    const recent = values.slice(-periods);
    const history = values.slice(0, -periods).filter((v): v is number => v !== null);
    const bounds = dynamicBounds(history, criterion.alertSensitivity);
    const failing = bounds ? recent.filter((v) => v !== null && deviates(v, criterion.operator, bounds)).length : 0;
    const value = recent.at(-1) ?? null;
    const threshold = !bounds
      ? 0
      : criterion.operator === 'LessThan' ||
          (criterion.operator === 'GreaterOrLessThan' && value !== null && value < bounds.lower)
        ? bounds.lower
        : bounds.upper;
    return {
      name: criterion.name,
      metricName: criterion.metricName,
      metricNamespace: criterion.metricNamespace,
      timeAggregation: criterion.timeAggregation,
      operator: criterion.operator,
      threshold,
      metricValue: value,
      met: bounds !== null && failing >= criterion.failingPeriods.minFailingPeriodsToAlert,
      dynamic: {
        alertSensitivity: criterion.alertSensitivity,
        failingPeriods: criterion.failingPeriods,
        ignoreDataBefore: criterion.ignoreDataBefore,
        lowerBound: bounds?.lower ?? 0,
        upperBound: bounds?.upper ?? 0,
      },
    };
  }

  /** Runs one pass now (tests, benchmarks); concurrent calls share the pass in flight. */
  function evaluateNow(at?: number): Promise<EvaluationResult> {
    running ??= tick(at).finally(() => {
      running = null;
    });
    return running;
  }

  function start() {
    timer = setInterval(() => {
      if (!running) evaluateNow().catch((err) => logger.error({ err }, 'metric alert evaluation failed'));
    }, options.tickMs ?? 1_000);
    timer.unref();
  }

  async function stop() {
    clearInterval(timer);
    await running?.catch(() => undefined);
  }

  return { start, stop, invalidate, evaluateNow };
}

function valuesOf(event: AlertEvent) {
  return Object.fromEntries(event.criteria.map((c) => [c.metricName, c.metricValue]));
}

export type Evaluator = ReturnType<typeof createEvaluator>;

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../db/index.js';
import { createLogger } from '../lib/logger.js';
import type { AlertEvent } from './alert-event.js';
import { createMetricsStore, type MetricsStore } from './metrics-store.js';
import { createMonitor, type Monitor } from './monitor.js';

const SUB = '00000000-0000-0000-0000-000000000000';
const RG = 'rg1';
const T0 = Date.parse('2026-11-29T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();
const vmId = (name: string) =>
  `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Compute/virtualMachines/${name}`;
const GROUP_ID = `/subscriptions/${SUB}/resourceGroups/${RG}/providers/Microsoft.Insights/actionGroups/oncall`;
const logger = createLogger({ level: 'silent' });

async function addVm(db: Database, name: string) {
  const now = new Date().toISOString();
  await db
    .insertInto('vms')
    .values({
      key: vmId(name).toLowerCase(),
      id: vmId(name),
      subscription_id: SUB,
      resource_group: RG,
      name,
      location: 'local',
      os_type: 'Linux',
      nics: '[]',
      agent_id: null,
      created_at: now,
      updated_at: now,
    })
    .execute();
}

/** One sample a second of `value` bytes out, over [from, to). */
async function traffic(metrics: MetricsStore, vm: string, from: number, to: number, value: number) {
  const samples = [];
  for (let t = from; t < to; t += 1000) samples.push({ time: iso(t), values: { 'Network Out Total': value } });
  await metrics.ingest(vmId(vm).toLowerCase(), samples);
}

function staticRule(overrides: Record<string, unknown> = {}) {
  return {
    location: 'global',
    properties: {
      severity: 2,
      scopes: [`/subscriptions/${SUB}/resourceGroups/${RG}`],
      evaluationFrequency: 'PT1M',
      windowSize: 'PT1M',
      criteria: {
        'odata.type': 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria',
        allOf: [
          {
            criterionType: 'StaticThresholdCriterion',
            name: 'out',
            metricName: 'Network Out Total',
            timeAggregation: 'Total',
            operator: 'GreaterThan',
            threshold: 600_000,
          },
        ],
      },
      actions: [{ actionGroupId: GROUP_ID, webHookProperties: { team: 'net' } }],
      ...overrides,
    },
  };
}

describe('evaluator', () => {
  let db: Database;
  let metrics: MetricsStore;
  let monitor: Monitor;

  function newMonitor() {
    return createMonitor({ db, metrics, logger, evaluationDelayMs: 0 });
  }

  beforeEach(async () => {
    db = await createDatabase({ file: ':memory:' });
    metrics = createMetricsStore({ db, rawRetentionMs: 86_400_000 });
    monitor = newMonitor();
    await addVm(db, 'vm1');
    await addVm(db, 'vm2');
    await monitor.actionGroups.put(
      { subscriptionId: SUB, resourceGroup: RG, name: 'oncall' },
      {
        properties: {
          groupShortName: 'oncall',
          webhookReceivers: [{ name: 'hook', serviceUri: 'http://127.0.0.1:9/x', useCommonAlertSchema: true }],
        },
      },
    );
  });
  afterEach(async () => {
    await db.destroy();
  });

  const putRule = (body: unknown, name = 'r1') =>
    monitor.rules.put({ subscriptionId: SUB, resourceGroup: RG, name }, body);

  async function alertRows() {
    return db.selectFrom('alerts').selectAll().orderBy('fired_at').execute();
  }
  async function deliveries() {
    return db.selectFrom('deliveries').selectAll().orderBy('created_at').execute();
  }

  it('fires per VM when the window crosses the threshold, once, then resolves after three clean evaluations', async () => {
    await putRule(staticRule());
    // vm1: 10 kB/s for a minute (600 kB, not above), then 20 kB/s for a minute; vm2 stays quiet.
    await traffic(metrics, 'vm1', T0, T0 + 60_000, 10_000);
    await traffic(metrics, 'vm2', T0, T0 + 300_000, 1_000);
    expect(await monitor.evaluator.evaluateNow(T0 + 60_000)).toMatchObject({ fired: 0, vmsEvaluated: 2 });
    await traffic(metrics, 'vm1', T0 + 60_000, T0 + 120_000, 20_000);
    expect(await monitor.evaluator.evaluateNow(T0 + 120_000)).toMatchObject({ fired: 1 });
    const [fired] = await alertRows();
    expect(fired).toMatchObject({ monitor_condition: 'Fired', vm_key: vmId('vm1').toLowerCase(), severity: 2 });
    const event = JSON.parse(fired?.event ?? '{}') as AlertEvent;
    expect(event.windowStartTime).toBe(iso(T0 + 60_000));
    expect(event.windowEndTime).toBe(iso(T0 + 120_000));
    expect(event.criteria).toMatchObject([{ metricValue: 1_200_000, threshold: 600_000, met: true }]);
    expect(event.rule).toMatchObject({
      name: 'r1',
      severity: 2,
      windowSize: 'PT1M',
      conditionType: 'MultipleResourceMultipleMetricCriteria',
    });

    // Still high: no second alert and no second notification.
    await traffic(metrics, 'vm1', T0 + 120_000, T0 + 180_000, 20_000);
    expect(await monitor.evaluator.evaluateNow(T0 + 180_000)).toMatchObject({ fired: 0, resolved: 0 });
    expect(await deliveries()).toHaveLength(1);

    // Quiet: resolved at the third clean evaluation, not before.
    await traffic(metrics, 'vm1', T0 + 180_000, T0 + 360_000, 1_000);
    expect(await monitor.evaluator.evaluateNow(T0 + 240_000)).toMatchObject({ resolved: 0 });
    expect(await monitor.evaluator.evaluateNow(T0 + 300_000)).toMatchObject({ resolved: 0 });
    expect(await monitor.evaluator.evaluateNow(T0 + 360_000)).toMatchObject({ resolved: 1 });
    const [resolved] = await alertRows();
    expect(resolved).toMatchObject({ id: fired?.id, monitor_condition: 'Resolved' });
    const payloads = (await deliveries()).map((d) => JSON.parse(d.payload));
    expect(payloads.map((p) => p.data.essentials.monitorCondition)).toEqual(['Fired', 'Resolved']);
    expect(payloads[0].data.customProperties).toEqual({ team: 'net' });
  });

  it('evaluates each rule time once, also when asked twice', async () => {
    await putRule(staticRule({ autoMitigate: false }));
    await traffic(metrics, 'vm1', T0, T0 + 60_000, 20_000);
    expect(await monitor.evaluator.evaluateNow(T0 + 60_000)).toMatchObject({ fired: 1 });
    expect(await monitor.evaluator.evaluateNow(T0 + 60_000 + 500)).toMatchObject({ rules: 0, fired: 0 });
  });

  it('stateless rules fire at every evaluation that meets the condition', async () => {
    await putRule(staticRule({ autoMitigate: false }));
    await traffic(metrics, 'vm1', T0, T0 + 180_000, 20_000);
    for (const t of [60_000, 120_000, 180_000]) await monitor.evaluator.evaluateNow(T0 + t);
    const rows = await alertRows();
    expect(rows.map((r) => r.monitor_condition)).toEqual(['Fired', 'Fired', 'Fired']);
    expect(new Set(rows.map((r) => r.id)).size).toBe(3);
  });

  it('across a restart: neither repeats a notification nor forgets an open alert', async () => {
    await putRule(staticRule());
    await traffic(metrics, 'vm1', T0, T0 + 60_000, 20_000);
    await monitor.evaluator.evaluateNow(T0 + 60_000);
    await traffic(metrics, 'vm1', T0 + 60_000, T0 + 240_000, 0);
    await monitor.evaluator.evaluateNow(T0 + 120_000); // clean 1

    // A new process: same database, fresh evaluator with nothing in memory.
    monitor = newMonitor();
    expect(await monitor.evaluator.evaluateNow(T0 + 60_000)).toMatchObject({ fired: 0 }); // done before
    expect(await monitor.evaluator.evaluateNow(T0 + 120_000 + 1)).toMatchObject({ fired: 0, resolved: 0 }); // done before
    monitor = newMonitor();
    expect(await monitor.evaluator.evaluateNow(T0 + 180_000)).toMatchObject({ resolved: 0 }); // clean 2
    expect(await monitor.evaluator.evaluateNow(T0 + 240_000)).toMatchObject({ resolved: 1 }); // clean 3
    expect((await deliveries()).length).toBe(2);
  });

  it('all criteria must be met (allOf)', async () => {
    const rule = staticRule();
    rule.properties.criteria.allOf.push({
      criterionType: 'StaticThresholdCriterion',
      name: 'busy',
      metricName: 'Percentage CPU',
      timeAggregation: 'Average',
      operator: 'GreaterThan',
      threshold: 50,
    });
    await putRule(rule);
    await traffic(metrics, 'vm1', T0, T0 + 60_000, 20_000);
    expect(await monitor.evaluator.evaluateNow(T0 + 60_000)).toMatchObject({ fired: 0 });
    const cpu = Array.from({ length: 60 }, (_, i) => ({
      time: iso(T0 + 60_000 + i * 1000),
      values: { 'Percentage CPU': 90, 'Network Out Total': 20_000 },
    }));
    await metrics.ingest(vmId('vm1').toLowerCase(), cpu);
    expect(await monitor.evaluator.evaluateNow(T0 + 120_000)).toMatchObject({ fired: 1 });
  });

  it('a disabled rule is not evaluated; a deleted rule takes its state with it', async () => {
    await putRule(staticRule({ enabled: false }));
    await traffic(metrics, 'vm1', T0, T0 + 60_000, 20_000);
    expect(await monitor.evaluator.evaluateNow(T0 + 60_000)).toMatchObject({ rules: 0 });
    await monitor.rules.patch(
      { subscriptionId: SUB, resourceGroup: RG, name: 'r1' },
      { properties: { enabled: true } },
    );
    expect(await monitor.evaluator.evaluateNow(T0 + 60_000)).toMatchObject({ rules: 1, fired: 1 });
    expect(await monitor.rules.delete({ subscriptionId: SUB, resourceGroup: RG, name: 'r1' })).toBe(true);
    expect(await db.selectFrom('alert_states').selectAll().execute()).toEqual([]);
    expect(await alertRows()).toHaveLength(1);
  });

  it('windows below a minute read raw samples (PT10S, our extension)', async () => {
    await putRule(staticRule({ evaluationFrequency: 'PT10S', windowSize: 'PT10S', scopes: [vmId('vm1')] }));
    await traffic(metrics, 'vm1', T0, T0 + 10_000, 50_000);
    await traffic(metrics, 'vm1', T0 + 10_000, T0 + 20_000, 70_000);
    expect(await monitor.evaluator.evaluateNow(T0 + 10_000)).toMatchObject({ fired: 0 }); // 500 kB
    expect(await monitor.evaluator.evaluateNow(T0 + 20_000)).toMatchObject({ fired: 1, vmsEvaluated: 1 }); // 700 kB
  });

  it('dynamic thresholds learn the usual level and fire on the failing periods', async () => {
    await putRule(
      staticRule({
        criteria: {
          'odata.type': 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria',
          allOf: [
            {
              criterionType: 'DynamicThresholdCriterion',
              name: 'out',
              metricName: 'Network Out Total',
              timeAggregation: 'Total',
              operator: 'GreaterThan',
              alertSensitivity: 'Medium',
              failingPeriods: { numberOfEvaluationPeriods: 2, minFailingPeriodsToAlert: 2 },
            },
          ],
        },
        scopes: [vmId('vm1')],
      }),
    );
    // 30 minutes of about 1 kB/s (alternating 900 and 1100), then two minutes at 5 kB/s.
    for (let m = 0; m < 30; m++)
      await traffic(metrics, 'vm1', T0 + m * 60_000, T0 + (m + 1) * 60_000, m % 2 ? 900 : 1100);
    await traffic(metrics, 'vm1', T0 + 30 * 60_000, T0 + 31 * 60_000, 5_000);
    expect(await monitor.evaluator.evaluateNow(T0 + 31 * 60_000)).toMatchObject({ fired: 0 }); // one failing period of two
    await traffic(metrics, 'vm1', T0 + 31 * 60_000, T0 + 32 * 60_000, 5_000);
    expect(await monitor.evaluator.evaluateNow(T0 + 32 * 60_000)).toMatchObject({ fired: 1 });
    const event = JSON.parse((await alertRows())[0]?.event ?? '{}') as AlertEvent;
    expect(event.rule.conditionType).toBe('DynamicThresholdCriteria');
    const [criterion] = event.criteria;
    expect(criterion?.metricValue).toBe(300_000);
    // median 60 kB per minute; sigma = max(1.4826 × 6 kB, 5 % of 60 kB) = 8895.6 → upper = 60000 + 3 × 8895.6
    expect(criterion?.threshold).toBeCloseTo(60_000 + 3 * 1.4826 * 6_000, 3);
    expect(criterion?.dynamic).toMatchObject({
      alertSensitivity: 'Medium',
      failingPeriods: { numberOfEvaluationPeriods: 2, minFailingPeriodsToAlert: 2 },
    });
  });
});

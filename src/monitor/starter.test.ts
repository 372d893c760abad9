import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness, SUBSCRIPTION } from '../../test/api-harness.js';
import { ensureStarterRule, STARTER_ACTION_GROUP_NAME, STARTER_RULE_NAME, STARTER_THRESHOLD_BYTES } from './starter.js';

describe('the starter rule', () => {
  let h: ApiHarness;
  const vm = { subscriptionId: SUBSCRIPTION, resourceGroup: 'tripcap', name: 'host1' };
  const functionUrl = 'https://tripcap.test/api/capture-on-alert';
  const ruleRef = { subscriptionId: SUBSCRIPTION, resourceGroup: 'tripcap', name: STARTER_RULE_NAME };

  beforeEach(async () => {
    h = await createApiHarness();
    await h.registerVm({ name: 'host1', resourceGroup: 'tripcap', location: 'local' });
  });
  afterEach(async () => {
    await h.close();
  });

  it('watches this host’s outbound traffic and calls the capture function, once per database', async () => {
    expect(await ensureStarterRule(h.db, h.monitor, { vm, functionUrl: async () => functionUrl })).toBe(true);
    const rule = await h.monitor.rules.get(ruleRef);
    expect(rule.properties).toMatchObject({
      enabled: true,
      scopes: [
        `/subscriptions/${SUBSCRIPTION}/resourceGroups/tripcap/providers/Microsoft.Compute/virtualMachines/host1`,
      ],
      windowSize: 'PT5M',
      evaluationFrequency: 'PT1M',
      autoMitigate: true,
      criteria: {
        allOf: [
          {
            metricName: 'Network Out Total',
            timeAggregation: 'Total',
            operator: 'GreaterThan',
            threshold: STARTER_THRESHOLD_BYTES,
          },
        ],
      },
    });
    const group = await h.monitor.actionGroups.get({ ...ruleRef, name: STARTER_ACTION_GROUP_NAME });
    expect(rule.properties.actions).toEqual([{ actionGroupId: group.id, webHookProperties: {} }]);
    expect(group.properties.azureFunctionReceivers).toMatchObject([
      { name: 'capture-on-alert', httpTriggerUrl: functionUrl, useCommonAlertSchema: true },
    ]);

    // Deleted by its owner: not created again at the next start.
    await h.monitor.rules.delete(ruleRef);
    expect(await ensureStarterRule(h.db, h.monitor, { vm, functionUrl: async () => functionUrl })).toBe(false);
    await expect(h.monitor.rules.get(ruleRef)).rejects.toThrow(/was not found/);
  });
});

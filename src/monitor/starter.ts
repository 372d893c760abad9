import type { Database } from '../db/index.js';
import { type VmRef, vmResourceId } from '../lib/arm-id.js';
import { isoNow } from '../lib/time.js';
import { actionGroupResourceId } from './action-groups.js';
import type { Monitor } from './monitor.js';

export const STARTER_RULE_NAME = 'tripcap-outbound-traffic';
export const STARTER_ACTION_GROUP_NAME = 'tripcap-capture';
/** 500 MB out in five minutes: about 13 Mbit/s sustained, far above what an idle host sends. */
export const STARTER_THRESHOLD_BYTES = 500_000_000;
const SETTING = 'starter_rule';

/**
 * Once per database: an action group that calls the capture-on-alert function, and a rule on this host's outbound
 * traffic wired to it (docs/monitoring.md says how to change or disable them). Never recreated once deleted.
 */
export async function ensureStarterRule(
  db: Database,
  monitor: Monitor,
  options: { vm: VmRef; functionUrl: () => Promise<string> },
): Promise<boolean> {
  const done = await db.selectFrom('settings').select('value').where('key', '=', SETTING).executeTakeFirst();
  if (done) return false;
  const { vm } = options;
  const groupRef = {
    subscriptionId: vm.subscriptionId,
    resourceGroup: vm.resourceGroup,
    name: STARTER_ACTION_GROUP_NAME,
  };
  await monitor.actionGroups.put(groupRef, {
    location: 'Global',
    properties: {
      groupShortName: 'tripcapcap',
      enabled: true,
      azureFunctionReceivers: [
        {
          name: 'capture-on-alert',
          functionAppResourceId: `/subscriptions/${vm.subscriptionId}/resourceGroups/${vm.resourceGroup}/providers/Microsoft.Web/sites/tripcap`,
          functionName: 'capture-on-alert',
          httpTriggerUrl: await options.functionUrl(),
          useCommonAlertSchema: true,
        },
      ],
    },
  });
  const ruleRef = { subscriptionId: vm.subscriptionId, resourceGroup: vm.resourceGroup, name: STARTER_RULE_NAME };
  const { rule } = await monitor.rules.put(ruleRef, {
    location: 'global',
    properties: {
      description: `tripcap's starter rule: more than ${STARTER_THRESHOLD_BYTES / 1e6} MB sent by ${vm.name} in five minutes starts a packet capture on it.`,
      severity: 3,
      enabled: true,
      scopes: [vmResourceId(vm)],
      evaluationFrequency: 'PT1M',
      windowSize: 'PT5M',
      criteria: {
        'odata.type': 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria',
        allOf: [
          {
            criterionType: 'StaticThresholdCriterion',
            name: 'OutboundTraffic',
            metricName: 'Network Out Total',
            metricNamespace: 'Microsoft.Compute/virtualMachines',
            timeAggregation: 'Total',
            operator: 'GreaterThan',
            threshold: STARTER_THRESHOLD_BYTES,
            dimensions: [],
          },
        ],
      },
      autoMitigate: true,
      actions: [{ actionGroupId: actionGroupResourceId(groupRef) }],
    },
  });
  await db
    .insertInto('settings')
    .values({ key: SETTING, value: JSON.stringify({ rule: rule.id, createdTime: isoNow() }) })
    .onConflict((oc) => oc.column('key').doNothing())
    .execute();
  return true;
}

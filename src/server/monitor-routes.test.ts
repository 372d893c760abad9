import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness, SUBSCRIPTION, vmId } from '../../test/api-harness.js';

const RG = 'rg1';
const RULES = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RG}/providers/Microsoft.Insights/metricAlerts`;
const GROUPS = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RG}/providers/Microsoft.Insights/actionGroups`;
const Q = '?api-version=2018-03-01';

/** A valid rule in the shape of an ARM template's resource; each refusal case changes one thing. */
function validRule() {
  return {
    location: 'global',
    tags: { team: 'net' },
    properties: {
      description: 'Outbound burst',
      severity: 3,
      enabled: true,
      scopes: [vmId(RG, 'vm1')],
      evaluationFrequency: 'PT1M',
      windowSize: 'PT5M',
      criteria: {
        'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria',
        allOf: [
          {
            criterionType: 'StaticThresholdCriterion',
            name: 'Metric1',
            metricName: 'Network Out Total',
            metricNamespace: 'Microsoft.Compute/virtualMachines',
            operator: 'GreaterThan',
            threshold: 1000000,
            timeAggregation: 'Total',
            dimensions: [],
          },
        ],
      },
      autoMitigate: true,
      actions: [{ actionGroupId: `${GROUPS}/oncall`, webHookProperties: { runbook: 'capture' } }],
    },
  };
}

type Rule = ReturnType<typeof validRule>;
type Criterion = Record<string, unknown>;
const criterion = (r: Rule) => r.properties.criteria.allOf[0] as Criterion;

describe('metric alert rules and action groups API', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await createApiHarness();
    await h.registerVm({ name: 'vm1', resourceGroup: RG, location: 'local' });
    await h.registerVm({ name: 'vm2', resourceGroup: 'other', location: 'local' });
    const group = await h.request({
      method: 'PUT',
      url: `${GROUPS}/oncall${Q}`,
      body: {
        location: 'Global',
        properties: {
          groupShortName: 'oncall',
          webhookReceivers: [{ name: 'hook', serviceUri: 'https://example.test/hook' }],
        },
      },
    });
    expect(group.status).toBe(201);
  });
  afterAll(async () => {
    await h.close();
  });

  const bad: Array<[string, (r: Rule) => unknown, string, RegExp]> = [
    ['no properties', () => ({ location: 'global' }), 'properties', /properties/],
    [
      'unknown metric',
      (r) => {
        criterion(r).metricName = 'Disk Read Bytes';
        return r;
      },
      'properties.criteria.allOf[0].metricName',
      /Disk Read Bytes.*Network Out Total/,
    ],
    [
      'window shorter than frequency',
      (r) => {
        r.properties.windowSize = 'PT1M';
        r.properties.evaluationFrequency = 'PT5M';
        return r;
      },
      'properties.windowSize',
      /shorter than evaluationFrequency/,
    ],
    [
      'malformed window',
      (r) => {
        r.properties.windowSize = '5 minutes';
        return r;
      },
      'properties.windowSize',
      /not an ISO-8601 duration/,
    ],
    [
      'malformed frequency',
      (r) => {
        r.properties.evaluationFrequency = 'PT';
        return r;
      },
      'properties.evaluationFrequency',
      /not an ISO-8601 duration/,
    ],
    [
      'unsupported window',
      (r) => {
        r.properties.windowSize = 'PT7M';
        return r;
      },
      'properties.windowSize',
      /PT5M, PT15M/,
    ],
    [
      'frequency below PT10S',
      (r) => {
        r.properties.evaluationFrequency = 'PT1S';
        return r;
      },
      'properties.evaluationFrequency',
      /PT10S/,
    ],
    [
      'missing frequency',
      (r) => {
        delete (r.properties as Partial<Rule['properties']>).evaluationFrequency;
        return r;
      },
      'properties.evaluationFrequency',
      /required/,
    ],
    [
      'unknown VM scope',
      (r) => {
        r.properties.scopes = [vmId(RG, 'ghost')];
        return r;
      },
      'properties.scopes[0]',
      /not a VM known/,
    ],
    [
      'scope of another type',
      (r) => {
        r.properties.scopes = [
          `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RG}/providers/Microsoft.Storage/storageAccounts/s1`,
        ];
        return r;
      },
      'properties.scopes[0]',
      /not a virtual machine, resource group or subscription/,
    ],
    [
      'scope in another subscription',
      (r) => {
        r.properties.scopes = ['/subscriptions/11111111-1111-1111-1111-111111111111'];
        return r;
      },
      'properties.scopes[0]',
      /another subscription/,
    ],
    [
      'resource group without VMs',
      (r) => {
        r.properties.scopes = [`/subscriptions/${SUBSCRIPTION}/resourceGroups/empty`];
        return r;
      },
      'properties.scopes[0]',
      /no VMs/,
    ],
    [
      'no scopes',
      (r) => {
        r.properties.scopes = [];
        return r;
      },
      'properties.scopes',
      /non-empty/,
    ],
    [
      'unknown operator',
      (r) => {
        criterion(r).operator = 'Above';
        return r;
      },
      'properties.criteria.allOf[0].operator',
      /GreaterThan/,
    ],
    [
      'unknown aggregation',
      (r) => {
        criterion(r).timeAggregation = 'Median';
        return r;
      },
      'properties.criteria.allOf[0].timeAggregation',
      /Average, Minimum, Maximum, Total, Count/,
    ],
    [
      'threshold not a number',
      (r) => {
        criterion(r).threshold = 'lots';
        return r;
      },
      'properties.criteria.allOf[0].threshold',
      /number/,
    ],
    [
      'severity 5',
      (r) => {
        r.properties.severity = 5;
        return r;
      },
      'properties.severity',
      /0 to 4/,
    ],
    [
      'enabled as text',
      (r) => {
        (r.properties as Record<string, unknown>).enabled = 'yes';
        return r;
      },
      'properties.enabled',
      /true or false/,
    ],
    [
      'dimensions on host metrics',
      (r) => {
        criterion(r).dimensions = [{ name: 'LUN', operator: 'Include', values: ['*'] }];
        return r;
      },
      'properties.criteria.allOf[0].dimensions',
      /no dimensions/,
    ],
    [
      'another namespace',
      (r) => {
        criterion(r).metricNamespace = 'Microsoft.Storage/storageAccounts';
        return r;
      },
      'properties.criteria.allOf[0].metricNamespace',
      /Microsoft.Compute\/virtualMachines/,
    ],
    [
      'dynamic in single-resource criteria',
      (r) => {
        criterion(r).criterionType = 'DynamicThresholdCriterion';
        return r;
      },
      'properties.criteria.allOf[0].criterionType',
      /MultipleResourceMultipleMetricCriteria/,
    ],
    [
      'dynamic with a static operator',
      (r) => {
        r.properties.criteria['odata.type'] = 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria';
        Object.assign(criterion(r), { criterionType: 'DynamicThresholdCriterion', operator: 'Equals' });
        return r;
      },
      'properties.criteria.allOf[0].operator',
      /GreaterOrLessThan/,
    ],
    [
      'failing periods above evaluation periods',
      (r) => {
        r.properties.criteria['odata.type'] = 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria';
        Object.assign(criterion(r), {
          criterionType: 'DynamicThresholdCriterion',
          failingPeriods: { numberOfEvaluationPeriods: 2, minFailingPeriodsToAlert: 3 },
        });
        return r;
      },
      'properties.criteria.allOf[0].failingPeriods.minFailingPeriodsToAlert',
      /1 to 2/,
    ],
    [
      'malformed ignoreDataBefore',
      (r) => {
        r.properties.criteria['odata.type'] = 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria';
        Object.assign(criterion(r), { criterionType: 'DynamicThresholdCriterion', ignoreDataBefore: 'yesterday' });
        return r;
      },
      'properties.criteria.allOf[0].ignoreDataBefore',
      /UTC date-time/,
    ],
    [
      'web test criteria',
      (r) => {
        r.properties.criteria['odata.type'] = 'Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria';
        return r;
      },
      'properties.criteria.odata.type',
      /SingleResourceMultipleMetricCriteria/,
    ],
    [
      'no criteria',
      (r) => {
        r.properties.criteria.allOf = [];
        return r;
      },
      'properties.criteria.allOf',
      /at least one/,
    ],
    [
      'six criteria',
      (r) => {
        r.properties.criteria.allOf = Array.from({ length: 6 }, (_, i) => ({
          ...criterion(r),
          name: `m${i}`,
        })) as never;
        return r;
      },
      'properties.criteria.allOf',
      /at most 5/,
    ],
    [
      'two criteria of one name',
      (r) => {
        r.properties.criteria.allOf.push({ ...criterion(r) } as never);
        return r;
      },
      'properties.criteria.allOf[1].name',
      /used twice/,
    ],
    [
      'unknown action group',
      (r) => {
        r.properties.actions = [{ actionGroupId: `${GROUPS}/nobody`, webHookProperties: {} } as never];
        return r;
      },
      'properties.actions[0].actionGroupId',
      /does not exist/,
    ],
    [
      'action without an id',
      (r) => {
        r.properties.actions = [{ webHookProperties: {} } as never];
        return r;
      },
      'properties.actions[0].actionGroupId',
      /resource id/,
    ],
    [
      'webHookProperties not strings',
      (r) => {
        r.properties.actions[0] = { actionGroupId: `${GROUPS}/oncall`, webHookProperties: { n: 1 } as never };
        return r;
      },
      'properties.actions[0].webHookProperties',
      /string values/,
    ],
    [
      'another target type',
      (r) => {
        (r.properties as Record<string, unknown>).targetResourceType = 'Microsoft.Storage/storageAccounts';
        return r;
      },
      'properties.targetResourceType',
      /not supported/,
    ],
  ];

  it.each(bad)(
    'refuses %s with a 400 naming the property, and stores nothing',
    async (_name, change, target, message) => {
      const reply = await h.request({ method: 'PUT', url: `${RULES}/bad${Q}`, body: change(validRule()) });
      expect(reply.status).toBe(400);
      expect(reply.json.error.target).toBe(target);
      expect(reply.json.error.message).toMatch(message);
      expect((await h.request({ method: 'GET', url: `${RULES}/bad${Q}` })).status).toBe(404);
    },
  );

  it('the rule these cases start from is itself valid', async () => {
    const put = await h.request({ method: 'PUT', url: `${RULES}/valid${Q}`, body: validRule() });
    expect(put.status).toBe(201);
    expect(put.json).toMatchObject({
      id: `${RULES}/valid`,
      name: 'valid',
      type: 'Microsoft.Insights/metricAlerts',
      location: 'global',
      tags: { team: 'net' },
      properties: {
        ...validRule().properties,
        targetResourceType: 'Microsoft.Compute/virtualMachines',
        isMigrated: false,
      },
    });
    expect(Date.parse(put.json.properties.lastUpdatedTime)).not.toBeNaN();
    const again = await h.request({ method: 'PUT', url: `${RULES}/valid${Q}`, body: validRule() });
    expect(again.status).toBe(200);
    const get = await h.request({ method: 'GET', url: `${RULES.toLowerCase()}/VALID${Q}` });
    expect(get.json.properties.criteria).toEqual(put.json.properties.criteria);
    const list = await h.request({
      method: 'GET',
      url: `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Insights/metricAlerts${Q}`,
    });
    expect(list.json.value.map((r: { name: string }) => r.name)).toContain('valid');
  });

  it('accepts Azure spellings: PT24H as P1D, a threshold as text, resource group and subscription scopes', async () => {
    const rule = validRule();
    rule.properties.windowSize = 'PT24H';
    rule.properties.evaluationFrequency = 'PT1H';
    rule.properties.scopes = [`/subscriptions/${SUBSCRIPTION}/resourceGroups/${RG}`, `/subscriptions/${SUBSCRIPTION}`];
    criterion(rule).threshold = '25.5';
    rule.properties.criteria['odata.type'] = 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria';
    const put = await h.request({ method: 'PUT', url: `${RULES}/spellings${Q}`, body: rule });
    expect(put.status).toBe(201);
    expect(put.json.properties.windowSize).toBe('P1D');
    expect(put.json.properties.criteria.allOf[0].threshold).toBe(25.5);
  });

  it('PATCH changes what it names and validates the result', async () => {
    await h.request({ method: 'PUT', url: `${RULES}/patched${Q}`, body: validRule() });
    const off = await h.request({
      method: 'PATCH',
      url: `${RULES}/patched${Q}`,
      body: { properties: { enabled: false } },
    });
    expect(off.status).toBe(200);
    expect(off.json.properties).toMatchObject({ enabled: false, windowSize: 'PT5M' });
    const bad = await h.request({
      method: 'PATCH',
      url: `${RULES}/patched${Q}`,
      body: { properties: { windowSize: 'PT10S' } },
    });
    expect(bad.status).toBe(400);
    expect(bad.json.error.target).toBe('properties.windowSize');
    const missing = await h.request({ method: 'PATCH', url: `${RULES}/nope${Q}`, body: { properties: {} } });
    expect(missing.status).toBe(404);
  });

  it('DELETE answers 200, then 204', async () => {
    await h.request({ method: 'PUT', url: `${RULES}/gone${Q}`, body: validRule() });
    expect((await h.request({ method: 'DELETE', url: `${RULES}/gone${Q}` })).status).toBe(200);
    expect((await h.request({ method: 'DELETE', url: `${RULES}/gone${Q}` })).status).toBe(204);
  });

  it('a reader reads rules but may not write them', async () => {
    const { token: reader } = await h.tokenFor('reader');
    expect((await h.request({ method: 'GET', url: `${RULES}${Q}`, token: reader })).status).toBe(200);
    const put = await h.request({ method: 'PUT', url: `${RULES}/r${Q}`, token: reader, body: validRule() });
    expect(put.status).toBe(403);
  });

  it("a reader sees receivers' URLs without their keys; a contributor sees them whole", async () => {
    const body = {
      properties: {
        groupShortName: 'keyed',
        webhookReceivers: [{ name: 'hook', serviceUri: 'https://example.test/hook?code=s3cret&x=1' }],
        azureFunctionReceivers: [
          {
            name: 'fn',
            functionAppResourceId: '/subscriptions/s/resourceGroups/r/providers/Microsoft.Web/sites/f',
            functionName: 'f',
            httpTriggerUrl: 'https://example.test/api/f?code=s3cret',
          },
        ],
      },
    };
    expect((await h.request({ method: 'PUT', url: `${GROUPS}/keyed${Q}`, body })).status).toBe(201);
    const { token: reader } = await h.tokenFor('reader');
    for (const url of [
      `${GROUPS}/keyed${Q}`,
      `${GROUPS}${Q}`,
      `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Insights/actionGroups${Q}`,
    ]) {
      const seen = await h.request({ method: 'GET', url, token: reader });
      expect(seen.status).toBe(200);
      expect(seen.text).not.toContain('s3cret');
      expect(seen.text).toContain('code=[redacted]');
    }
    const { token: contributor } = await h.tokenFor('contributor');
    const whole = await h.request({ method: 'GET', url: `${GROUPS}/keyed${Q}`, token: contributor });
    expect(whole.json.properties.webhookReceivers[0].serviceUri).toBe('https://example.test/hook?code=s3cret&x=1');
  });

  it('alerts: an empty list, a 400 for a bad filter, a 404 for an unknown id', async () => {
    const alerts = `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.AlertsManagement/alerts`;
    expect((await h.request({ method: 'GET', url: `${alerts}?api-version=2019-05-05-preview` })).json).toEqual({
      value: [],
    });
    const bad = await h.request({ method: 'GET', url: `${alerts}?timeRange=2w` });
    expect(bad.status).toBe(400);
    expect(bad.json.error.message).toMatch(/1h, 1d, 7d or 30d/);
    const missing = await h.request({ method: 'GET', url: `${alerts}/6a1f7d9e-0000-4000-8000-000000000000` });
    expect(missing.status).toBe(404);
  });
});

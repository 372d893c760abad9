import { describe, expect, it } from 'vitest';
import { dynamicFragment, fullCommon, nonCommon, shapeDiff, staticFragment } from '../../test/alert-samples.js';
import type { AlertEvent, CriterionOutcome } from './alert-event.js';
import { commonAlertSchema, emailMessage, metricAlertSchema } from './alert-payloads.js';

const cpu: CriterionOutcome = {
  name: 'Metric1',
  metricName: 'Percentage CPU',
  metricNamespace: 'Microsoft.Compute/virtualMachines',
  timeAggregation: 'Average',
  operator: 'GreaterThan',
  threshold: 25,
  metricValue: 31.1105,
  met: true,
};
const memory: CriterionOutcome = {
  name: 'Metric2',
  metricName: 'Available Memory Bytes',
  metricNamespace: 'Microsoft.Compute/virtualMachines',
  timeAggregation: 'Minimum',
  operator: 'LessThan',
  threshold: 1_000_000,
  metricValue: 5_000_000,
  met: false,
};
const egress: CriterionOutcome = {
  name: 'Metric1',
  metricName: 'Network Out Total',
  metricNamespace: 'Microsoft.Compute/virtualMachines',
  timeAggregation: 'Total',
  operator: 'GreaterThan',
  threshold: 47658,
  metricValue: 50101,
  met: true,
  dynamic: {
    alertSensitivity: 'High',
    failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 },
    ignoreDataBefore: null,
    lowerBound: 0,
    upperBound: 47658,
  },
};

function event(overrides: Partial<AlertEvent> = {}): AlertEvent {
  return {
    alertId: 'aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e',
    monitorCondition: 'Fired',
    rule: {
      id: '/subscriptions/sub-1/resourceGroups/PipelineAlertRG/providers/Microsoft.Insights/metricAlerts/WCUS-R2-Gen2',
      name: 'WCUS-R2-Gen2',
      description: '',
      severity: 3,
      subscriptionId: 'sub-1',
      resourceGroup: 'PipelineAlertRG',
      conditionType: 'SingleResourceMultipleMetricCriteria',
      windowSize: 'PT5M',
      webHookProperties: {},
    },
    target: {
      id: '/subscriptions/sub-1/resourceGroups/PipelineAlertRG/providers/Microsoft.Compute/virtualMachines/WCUS-R2-Gen2',
      name: 'WCUS-R2-Gen2',
      subscriptionId: 'sub-1',
      resourceGroup: 'PipelineAlertRG',
      vmGuid: 'b1b1b1b1-cccc-dddd-eeee-f2f2f2f2f2f2',
      location: 'westcentralus',
    },
    firedDateTime: '2019-03-22T13:58:24.371Z',
    resolvedDateTime: null,
    windowStartTime: '2019-03-22T13:40:03.064Z',
    windowEndTime: '2019-03-22T13:45:03.064Z',
    criteria: [cpu, memory],
    ...overrides,
  };
}

const resolved = (e: AlertEvent): AlertEvent => ({
  ...e,
  monitorCondition: 'Resolved',
  resolvedDateTime: '2019-03-22T14:03:16.224Z',
});
const dynamic = (e: AlertEvent): AlertEvent => ({
  ...e,
  rule: { ...e.rule, conditionType: 'DynamicThresholdCriteria' },
  criteria: [egress],
});
const withProperties = (e: AlertEvent): AlertEvent => ({
  ...e,
  rule: { ...e.rule, webHookProperties: { customKey1: 'value1', customKey2: 'value2' } },
});

/** Azure's Resolved sample has no window times; our payloads always say which window decided. */
const WINDOW_TIMES = [
  'data.alertContext.condition.windowStartTime: extra',
  'data.alertContext.condition.windowEndTime: extra',
];

describe('shapeDiff (the comparison the tests below rely on)', () => {
  it('reports missing and extra keys, type changes and empty arrays', () => {
    expect(
      shapeDiff({ a: '1', b: [{ c: 1 }], d: {}, e: [] }, { a: 1, b: [{ c: 2, x: null }], f: true, e: [1] }),
    ).toEqual(['f: missing', 'd: extra', 'a: ours is string, sample is number', 'b[0].x: missing', 'e: ours is empty']);
  });
});

describe('commonAlertSchema against Azure samples', () => {
  it('Resolved static: the full sample, apart from the window times', () => {
    expect(shapeDiff(commonAlertSchema(resolved(event())), fullCommon)).toEqual(WINDOW_TIMES);
  });

  it('Fired static: the full sample, without resolvedDateTime', () => {
    expect(shapeDiff(commonAlertSchema(event()), fullCommon)).toEqual([
      'data.essentials.resolvedDateTime: missing',
      ...WINDOW_TIMES,
    ]);
  });

  it('Fired and Resolved static: the static alertContext fragment exactly', () => {
    for (const e of [event(), resolved(event())]) {
      expect(shapeDiff({ alertContext: commonAlertSchema(e).data.alertContext }, staticFragment)).toEqual([]);
    }
  });

  it('Fired and Resolved dynamic: the dynamic fragment (whose storage account has no dimensions)', () => {
    for (const e of [dynamic(event()), resolved(dynamic(event()))]) {
      expect(shapeDiff({ alertContext: commonAlertSchema(e).data.alertContext }, dynamicFragment)).toEqual([
        'alertContext.condition.allOf[0].dimensions: sample is empty',
      ]);
    }
  });

  it('webHookProperties become alertContext.properties and customProperties', () => {
    const body = commonAlertSchema(withProperties(resolved(event())));
    expect(shapeDiff(body, fullCommon)).toEqual([
      'data.customProperties: extra',
      'data.alertContext.properties: ours is object, sample is null',
      ...WINDOW_TIMES,
    ]);
    expect(body.data.customProperties).toEqual({ customKey1: 'value1', customKey2: 'value2' });
    expect(body.data.alertContext.properties).toEqual({ customKey1: 'value1', customKey2: 'value2' });
  });

  it('has the values Azure writes', () => {
    const fired = commonAlertSchema(event());
    expect(fired.schemaId).toBe('azureMonitorCommonAlertSchema');
    expect(fired.data.essentials).toMatchObject({
      alertId: '/subscriptions/sub-1/providers/Microsoft.AlertsManagement/alerts/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e',
      alertRule: 'WCUS-R2-Gen2',
      severity: 'Sev3',
      signalType: 'Metric',
      monitorCondition: 'Fired',
      monitoringService: 'Platform',
      alertTargetIDs: [
        '/subscriptions/sub-1/resourcegroups/pipelinealertrg/providers/microsoft.compute/virtualmachines/wcus-r2-gen2',
      ],
      configurationItems: ['wcus-r2-gen2'],
      essentialsVersion: '1.0',
      alertContextVersion: '1.0',
    });
    expect(fired.data.essentials.originAlertId).toMatch(
      /^sub-1_PipelineAlertRG_microsoft\.insights_metricAlerts_WCUS-R2-Gen2_-?\d+$/,
    );
    expect(fired.data.alertContext.properties).toBeNull();
    expect('customProperties' in fired.data).toBe(false);
    // Fired lists only the criteria that were met.
    expect(fired.data.alertContext.condition.allOf).toEqual([
      {
        metricName: 'Percentage CPU',
        metricNamespace: 'Microsoft.Compute/virtualMachines',
        operator: 'GreaterThan',
        threshold: '25',
        timeAggregation: 'Average',
        dimensions: [{ name: 'ResourceId', value: 'b1b1b1b1-cccc-dddd-eeee-f2f2f2f2f2f2' }],
        metricValue: 31.1105,
      },
    ]);
    const done = commonAlertSchema(resolved(event()));
    expect(done.data.essentials).toMatchObject({
      monitorCondition: 'Resolved',
      resolvedDateTime: '2019-03-22T14:03:16.224Z',
    });
    expect(done.data.alertContext.condition.allOf.map((c) => c.metricName)).toEqual([
      'Percentage CPU',
      'Available Memory Bytes',
    ]);
  });
});

describe('metricAlertSchema against the AzureMonitorMetricAlert sample', () => {
  it('Fired and Resolved, static: the sample exactly', () => {
    for (const e of [withProperties(event()), withProperties(resolved(event()))]) {
      expect(shapeDiff(metricAlertSchema(e), nonCommon)).toEqual([]);
    }
  });

  it('dynamic criteria carry the dynamic fields', () => {
    expect(shapeDiff(metricAlertSchema(withProperties(dynamic(event()))), nonCommon)).toEqual([
      'data.context.condition.allOf[0].alertSensitivity: extra',
      'data.context.condition.allOf[0].failingPeriods: extra',
      'data.context.condition.allOf[0].ignoreDataBefore: extra',
    ]);
  });

  it('has the values Azure writes', () => {
    const fired = metricAlertSchema(event());
    expect(fired.schemaId).toBe('AzureMonitorMetricAlert');
    expect(fired.data).toMatchObject({ version: '2.0', status: 'Activated', properties: {} });
    expect(fired.data.context).toMatchObject({
      timestamp: '2019-03-22T13:58:24.371Z',
      id: event().rule.id,
      severity: '3',
      subscriptionId: 'sub-1',
      resourceGroupName: 'PipelineAlertRG',
      resourceName: 'WCUS-R2-Gen2',
      resourceType: 'Microsoft.Compute/virtualMachines',
      resourceId: event().target.id,
    });
    expect(fired.data.context.condition.allOf).toHaveLength(1);
    expect(fired.data.context.condition.allOf[0]).toMatchObject({ threshold: '25', webTestName: null });
    const done = metricAlertSchema(resolved(event()));
    expect(done.data.status).toBe('Deactivated');
    expect(done.data.context.timestamp).toBe('2019-03-22T14:03:16.224Z');
    expect(done.data.context.condition.allOf).toHaveLength(2);
  });
});

describe('emailMessage', () => {
  it('says what fired, where, and each criterion with its value, threshold and window', () => {
    const mail = emailMessage(event());
    expect(mail.subject).toBe('Fired: Sev3 Azure Monitor Alert WCUS-R2-Gen2 on WCUS-R2-Gen2');
    expect(mail.text).toContain('Average Percentage CPU over PT5M: value 31.1105, condition GreaterThan 25, met: yes');
    expect(mail.text).not.toContain('Available Memory Bytes');
    expect(mail.html).toContain('<td>Average Percentage CPU</td><td>PT5M</td><td>31.1105</td><td>GreaterThan 25</td>');
    const done = emailMessage(resolved(event()));
    expect(done.subject).toBe('Resolved: Sev3 Azure Monitor Alert WCUS-R2-Gen2 on WCUS-R2-Gen2');
    expect(done.text).toContain('Resolved at (UTC): 2019-03-22T14:03:16.224Z');
    expect(done.text).toContain('Available Memory Bytes');
  });

  it('escapes everything that goes into the HTML', () => {
    const e = event({ rule: { ...event().rule, name: '<script>x</script>', description: 'a & "b"' } });
    const { html } = emailMessage(e);
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;x&lt;/script&gt;');
    expect(html).toContain('a &amp; &quot;b&quot;');
  });
});

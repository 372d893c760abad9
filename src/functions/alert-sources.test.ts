import { describe, expect, it } from 'vitest';
import { alertmanagerSample, alertSamples, classicSample, grafanaSample } from '../../test/alert-fixtures.js';
import { dynamicFragment, fullCommon, nonCommon, staticFragment } from '../../test/alert-samples.js';
import { ApiError } from '../lib/errors.js';
import { hostPart, MAX_ALERTS_PER_BODY, parseAlertPayload } from './alert-sources.js';
import { resolveTarget } from './resolve-target.js';
import type { VmCandidate } from './types.js';

// biome-ignore lint/suspicious/noExplicitAny: tests edit sample bodies by path.
const copy = (value: unknown): any => structuredClone(value);

function parseError(body: unknown): ApiError {
  try {
    parseAlertPayload(body);
  } catch (err) {
    if (err instanceof ApiError) return err;
    throw err;
  }
  throw new Error('parseAlertPayload accepted the body');
}

describe('parseAlertPayload: Azure common alert schema', () => {
  it('reads the full sample (Resolved, VM target, lower-cased id)', () => {
    const { source, alerts } = parseAlertPayload(fullCommon);
    expect(source).toBe('azure-common');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      source: 'azure-common',
      condition: 'Resolved',
      ruleName: 'WCUS-R2-Gen2',
      severity: 'Sev3',
      description: null,
      target: {
        resourceId:
          '/subscriptions/<subscription ID>/resourcegroups/pipelinealertrg/providers/microsoft.compute/virtualmachines/wcus-r2-gen2',
        names: ['wcus-r2-gen2'],
        addresses: [],
      },
      firedAt: '2019-03-22T13:58:24.3713213Z',
      resolvedAt: '2019-03-22T14:03:16.2246313Z',
      windowStart: null,
      windowEnd: null,
      dedupKey:
        'azure:/subscriptions/<subscription id>/providers/microsoft.alertsmanagement/alerts/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e:Resolved',
    });
    expect(alerts[0]?.raw).toEqual(fullCommon);
  });

  it.each([
    ['static', staticFragment, '2019-03-22T13:40:03.064Z', '2019-03-22T13:45:03.064Z'],
    ['dynamic', dynamicFragment, '2021-07-20T05:07:26.363Z', '2021-07-20T05:12:26.363Z'],
  ])('takes the window of a %s threshold alertContext', (_, fragment, windowStart, windowEnd) => {
    const body = copy(fullCommon);
    body.data.alertContext = copy(fragment).alertContext;
    expect(parseAlertPayload(body).alerts[0]).toMatchObject({ windowStart, windowEnd });
  });

  it('accepts any conditionType, including log alerts without a window', () => {
    const body = copy(fullCommon);
    body.data.essentials.signalType = 'Log';
    body.data.alertContext = {
      conditionType: 'LogQueryCriteria',
      condition: { allOf: [{ searchQuery: 'Heartbeat' }] },
    };
    const [alert] = parseAlertPayload(body).alerts;
    expect(alert).toMatchObject({ condition: 'Resolved', windowStart: null, windowEnd: null });
  });

  it('reads schemaId and monitorCondition in any case, and ignores unknown or wrongly typed optional fields', () => {
    const body = copy(fullCommon);
    body.schemaId = 'AZUREMONITORCOMMONALERTSCHEMA';
    body.data.essentials.monitorCondition = 'fired';
    body.data.essentials.severity = 3;
    body.data.essentials.configurationItems = 'not-an-array';
    body.data.essentials.somethingNew = { nested: true };
    body.extra = [1, 2, 3];
    const [alert] = parseAlertPayload(body).alerts;
    expect(alert).toMatchObject({ condition: 'Fired', severity: null, target: { names: [] } });
  });

  it('gives the same dedupKey to a repeated delivery and a new one to a new alert or a new condition', () => {
    const fired = copy(fullCommon);
    fired.data.essentials.monitorCondition = 'Fired';
    const key = (body: unknown) => parseAlertPayload(body).alerts[0]?.dedupKey;
    expect(key(fired)).toBe(key(copy(fired)));
    const upperCased = copy(fired);
    upperCased.data.essentials.alertId = fired.data.essentials.alertId.toUpperCase();
    expect(key(upperCased)).toBe(key(fired));
    const next = copy(fired);
    next.data.essentials.alertId = fired.data.essentials.alertId.replace('aaaa0a0a', 'bbbb0b0b');
    expect(key(next)).not.toBe(key(fired));
    expect(key(fullCommon)).not.toBe(key(fired));
  });
});

describe('parseAlertPayload: AzureMonitorMetricAlert', () => {
  it('reads the sample (Activated, storage account target)', () => {
    const { source, alerts } = parseAlertPayload(nonCommon);
    expect(source).toBe('azure-metric-alert');
    expect(alerts[0]).toMatchObject({
      condition: 'Fired',
      ruleName: 'test-metricAlertRule',
      severity: '3',
      description: 'Alert rule description',
      target: {
        resourceId:
          '/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourceGroups/test-RG/providers/Microsoft.Storage/storageAccounts/test-storageAccount',
        names: ['test-storageAccount'],
        addresses: [],
      },
      firedAt: '2021-11-15T09:35:12.9703687Z',
      resolvedAt: null,
      windowStart: '2021-11-15T09:30:12.970Z',
      windowEnd: '2021-11-15T09:35:12.970Z',
    });
  });

  it.each(['Deactivated', 'Resolved', 'deactivated'])('reads status %s as Resolved', (status) => {
    const body = copy(nonCommon);
    body.data.status = status;
    expect(parseAlertPayload(body).alerts[0]).toMatchObject({
      condition: 'Resolved',
      firedAt: null,
      resolvedAt: '2021-11-15T09:35:12.9703687Z',
    });
  });

  it('keys deliveries by rule, resource, status and evaluation time', () => {
    const key = (body: unknown) => parseAlertPayload(body).alerts[0]?.dedupKey;
    expect(key(copy(nonCommon))).toBe(key(nonCommon));
    const lowerCased = copy(nonCommon);
    lowerCased.data.context.resourceId = lowerCased.data.context.resourceId.toLowerCase();
    expect(key(lowerCased)).toBe(key(nonCommon));
    const later = copy(nonCommon);
    later.data.context.timestamp = '2021-11-15T09:50:12.9703687Z';
    expect(key(later)).not.toBe(key(nonCommon));
    const resolved = copy(nonCommon);
    resolved.data.status = 'Deactivated';
    expect(key(resolved)).not.toBe(key(nonCommon));
  });
});

describe('parseAlertPayload: classic metric alert webhook', () => {
  it('reads the documented sample', () => {
    const { source, alerts } = parseAlertPayload(classicSample);
    expect(source).toBe('azure-classic');
    expect(alerts[0]).toMatchObject({
      condition: 'Fired',
      ruleName: 'ruleName1',
      severity: null,
      description: 'some description',
      target: {
        resourceId: '/subscriptions/s1/resourceGroups/useast/providers/microsoft.foo/sites/mysite1',
        names: ['mysite1'],
        addresses: [],
      },
      firedAt: '2015-08-14T22:26:41.9975398Z',
      // Its windowSize "15" is not an ISO-8601 duration: no window rather than a guessed unit.
      windowStart: null,
      windowEnd: null,
    });
    expect(alerts[0]?.dedupKey.startsWith('azure-classic:')).toBe(true);
  });

  it('reads status Resolved', () => {
    const body = copy(classicSample);
    body.status = 'Resolved';
    expect(parseAlertPayload(body).alerts[0]).toMatchObject({ condition: 'Resolved', firedAt: null });
    expect(parseAlertPayload(body).alerts[0]?.dedupKey).not.toBe(parseAlertPayload(classicSample).alerts[0]?.dedupKey);
  });
});

describe('parseAlertPayload: Prometheus Alertmanager webhook v4', () => {
  it('gives one alert per alert of the group, addressed by the instance label', () => {
    const { source, alerts } = parseAlertPayload(alertmanagerSample);
    expect(source).toBe('alertmanager');
    expect(alerts.map((a) => a.target.addresses)).toEqual([['172.29.254.30'], ['172.29.254.50'], ['172.29.254.66']]);
    expect(alerts[0]).toMatchObject({
      source: 'alertmanager',
      condition: 'Fired',
      ruleName: 'ICMP ping failed',
      severity: 'major',
      description: '172.29.254.30 does not reply to ICMP pings',
      target: { resourceId: null, names: [] },
      firedAt: '2019-09-27T16:27:56.612666101Z',
      resolvedAt: null,
      windowStart: null,
    });
    expect(alerts[0]?.raw).toEqual(alertmanagerSample.alerts[0]);
    // No fingerprint in this sample: the labels tell the alerts apart.
    expect(new Set(alerts.map((a) => a.dedupKey)).size).toBe(3);
  });

  it('keys by fingerprint (or labels), startsAt and status', () => {
    const keys = (body: unknown) => parseAlertPayload(body).alerts.map((a) => a.dedupKey);
    expect(keys(copy(alertmanagerSample))).toEqual(keys(alertmanagerSample));
    const reordered = copy(alertmanagerSample);
    reordered.alerts[0].labels = Object.fromEntries(Object.entries(reordered.alerts[0].labels).reverse());
    expect(keys(reordered)[0]).toBe(keys(alertmanagerSample)[0]);
    const refired = copy(alertmanagerSample);
    refired.alerts[0].startsAt = '2019-09-28T08:00:00Z';
    expect(keys(refired)[0]).not.toBe(keys(alertmanagerSample)[0]);
    const withFingerprint = copy(alertmanagerSample);
    withFingerprint.alerts[0].fingerprint = '2f2c5b9e5e1a7c3d';
    expect(keys(withFingerprint)[0]).toBe('alertmanager:2f2c5b9e5e1a7c3d:2019-09-27T16:27:56.612666101Z:firing');
  });

  it('reads a resolved alert with its endsAt', () => {
    const body = copy(alertmanagerSample);
    body.status = 'resolved';
    body.alerts[0].status = 'resolved';
    body.alerts[0].endsAt = '2019-09-27T16:40:00Z';
    const [alert] = parseAlertPayload(body).alerts;
    expect(alert).toMatchObject({ condition: 'Resolved', resolvedAt: '2019-09-27T16:40:00Z' });
    expect(alert?.dedupKey.endsWith(':resolved')).toBe(true);
  });

  it('falls back to the summary annotation and to the group status', () => {
    const body = copy(alertmanagerSample);
    body.alerts[0].annotations = { summary: 'ping failed' };
    delete body.alerts[0].status;
    expect(parseAlertPayload(body).alerts[0]).toMatchObject({ description: 'ping failed', condition: 'Fired' });
  });

  it.each([
    [{ instance: 'web-1:9100' }, null, ['web-1'], []],
    [{ instance: '10.0.0.4:9100' }, null, [], ['10.0.0.4']],
    [{ instance: '[fe80::1]:9100' }, null, [], ['fe80::1']],
    [{ instance: 'fe80::1' }, null, [], ['fe80::1']],
    [{ instance: 'https://web-2:8443/health' }, null, ['web-2'], []],
    [{ instance: 'web-1:9100', host: 'Web-1', vm: 'vm-a' }, null, ['vm-a', 'Web-1', 'web-1'], []],
    [{ server: 'db-1', node: '10.1.0.9', hostname: 'db-1.internal' }, null, ['db-1.internal', 'db-1'], ['10.1.0.9']],
    [{ resource_id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/v' }, 'rg', [], []],
    [{ ResourceId: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/v' }, 'rg', [], []],
    [{ job: 'node', nodename: 7 }, null, [], []],
  ])('maps labels %j to the target', (labels, resourceGroup, names, addresses) => {
    const body = copy(alertmanagerSample);
    body.alerts = [{ ...body.alerts[0], labels: { alertname: 'x', ...labels } }];
    const { target } = parseAlertPayload(body).alerts[0] ?? {};
    expect(target?.names).toEqual(names);
    expect(target?.addresses).toEqual(addresses);
    expect(target?.resourceId?.includes(`/resourceGroups/${resourceGroup}/`) ?? null).toBe(resourceGroup ? true : null);
  });
});

describe('parseAlertPayload: Grafana webhook', () => {
  it("reads Grafana's documented example", () => {
    const { source, alerts } = parseAlertPayload(grafanaSample);
    expect(source).toBe('grafana');
    expect(alerts).toHaveLength(2);
    expect(alerts[1]).toMatchObject({
      source: 'grafana',
      condition: 'Fired',
      ruleName: 'High CPU usage',
      severity: null,
      description: 'The system has high CPU usage',
      target: { resourceId: null, names: [], addresses: [] },
      firedAt: '2021-10-12T09:56:03.157076+02:00',
      resolvedAt: null,
      dedupKey: 'grafana:bc97ff14869b13e3:2021-10-12T09:56:03.157076+02:00:firing',
    });
  });

  it('reads an older Grafana body with valueString and a resolved alert', () => {
    const body = copy(grafanaSample);
    body.alerts[0] = {
      ...body.alerts[0],
      status: 'resolved',
      endsAt: '2021-10-12T10:01:03.157076+02:00',
      valueString: "[ metric='' labels={} value=14151.331895396988 ]",
    };
    delete body.alerts[0].values;
    const [first] = parseAlertPayload(body).alerts;
    expect(first).toMatchObject({ condition: 'Resolved', resolvedAt: '2021-10-12T10:01:03.157076+02:00' });
  });
});

describe('parseAlertPayload: bodies it refuses', () => {
  const common = (edit: (body: ReturnType<typeof copy>) => void) => {
    const body = copy(fullCommon);
    edit(body);
    return body;
  };
  const alertmanager = (edit: (body: ReturnType<typeof copy>) => void) => {
    const body = copy(alertmanagerSample);
    edit(body);
    return body;
  };
  const tooMany = alertmanager((b) => {
    b.alerts = Array.from({ length: MAX_ALERTS_PER_BODY + 1 }, () => b.alerts[0]);
  });

  it.each([
    ['null', null, 'InvalidRequestContent', /JSON object, not empty/],
    ['a string', 'alert!', 'InvalidRequestContent', /not a string/],
    ['an array', [fullCommon], 'InvalidRequestContent', /not an array/],
    ['a number', 42, 'InvalidRequestContent', /not a number/],
    ['an empty object', {}, 'UnsupportedAlertPayload', /no schemaId, alerts\[\] or status with context/],
    [
      'an unknown schemaId',
      { schemaId: 'Microsoft.Insights/activityLogs', data: {} },
      'UnsupportedAlertPayload',
      /schemaId 'Microsoft.Insights\/activityLogs'/,
    ],
    [
      'common schema without essentials',
      { schemaId: 'azureMonitorCommonAlertSchema', data: {} },
      'UnsupportedAlertPayload',
      /without data\.essentials/,
    ],
    [
      'common schema without alertId',
      common((b) => delete b.data.essentials.alertId),
      'UnsupportedAlertPayload',
      /data\.essentials\.alertId is missing/,
    ],
    [
      'common schema with a numeric alertRule',
      common((b) => {
        b.data.essentials.alertRule = 5;
      }),
      'UnsupportedAlertPayload',
      /data\.essentials\.alertRule/,
    ],
    [
      'common schema with monitorCondition Unknown',
      common((b) => {
        b.data.essentials.monitorCondition = 'Unknown';
      }),
      'UnsupportedAlertPayload',
      /monitorCondition/,
    ],
    [
      'metric alert without context',
      { schemaId: 'AzureMonitorMetricAlert', data: { status: 'Activated' } },
      'UnsupportedAlertPayload',
      /without data\.context/,
    ],
    [
      'metric alert without timestamp',
      (() => {
        const b = copy(nonCommon);
        delete b.data.context.timestamp;
        return b;
      })(),
      'UnsupportedAlertPayload',
      /data\.context\.timestamp is missing/,
    ],
    [
      'metric alert with status Fired',
      (() => {
        const b = copy(nonCommon);
        b.data.status = 'Fired';
        return b;
      })(),
      'UnsupportedAlertPayload',
      /data\.status/,
    ],
    [
      'classic with status Firing',
      { ...copy(classicSample), status: 'Firing' },
      'UnsupportedAlertPayload',
      /status is not 'Activated'/,
    ],
    [
      'classic with context a string',
      { status: 'Activated', context: 'x' },
      'UnsupportedAlertPayload',
      /context is not an object/,
    ],
    [
      'Alertmanager without alerts',
      alertmanager((b) => {
        b.alerts = [];
      }),
      'UnsupportedAlertPayload',
      /Alertmanager body with no alerts/,
    ],
    [
      'Alertmanager with alerts an object',
      alertmanager((b) => {
        b.alerts = {};
      }),
      'UnsupportedAlertPayload',
      /alerts is not an array/,
    ],
    [
      'Alertmanager without version or groupKey',
      alertmanager((b) => {
        delete b.version;
        delete b.groupKey;
      }),
      'UnsupportedAlertPayload',
      /neither orgId/,
    ],
    [
      'an alert that is not an object',
      alertmanager((b) => {
        b.alerts[1] = 'x';
      }),
      'UnsupportedAlertPayload',
      /alerts\[1\] is not an object/,
    ],
    [
      'an alert with status pending',
      alertmanager((b) => {
        b.alerts[2].status = 'pending';
      }),
      'UnsupportedAlertPayload',
      /alerts\[2\]\.status/,
    ],
    [
      'an alert without startsAt',
      alertmanager((b) => {
        delete b.alerts[0].startsAt;
      }),
      'UnsupportedAlertPayload',
      /alerts\[0\]\.startsAt/,
    ],
    [
      'Grafana without alerts',
      { ...copy(grafanaSample), alerts: [] },
      'UnsupportedAlertPayload',
      /Grafana body with no alerts/,
    ],
    [
      'legacy Grafana (ruleName, evalMatches)',
      { ruleName: 'cpu', state: 'alerting', evalMatches: [] },
      'UnsupportedAlertPayload',
      /no schemaId/,
    ],
    [`${MAX_ALERTS_PER_BODY + 1} alerts`, tooMany, 'LimitExceeded', /at most 100/],
  ])('refuses %s', (_, body, code, message) => {
    const err = parseError(body);
    expect(err.status).toBe(400);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(message);
    if (code !== 'LimitExceeded') expect(err.message).toContain('tripcap accepts');
  });

  it(`accepts exactly ${MAX_ALERTS_PER_BODY} alerts`, () => {
    const body = copy(alertmanagerSample);
    body.alerts = Array.from({ length: MAX_ALERTS_PER_BODY }, () => body.alerts[0]);
    expect(parseAlertPayload(body).alerts).toHaveLength(MAX_ALERTS_PER_BODY);
  });
});

describe('hostPart', () => {
  it.each([
    ['web-1:9100', 'web-1'],
    ['web-1', 'web-1'],
    ['10.0.0.4:9100', '10.0.0.4'],
    ['[fe80::1]:9100', 'fe80::1'],
    ['2001:db8::5', '2001:db8::5'],
    ['http://[2001:db8::5]:8080/x', '2001:db8::5'],
    [' web-3 ', 'web-3'],
    ['', ''],
  ])('%j → %j', (value, host) => {
    expect(hostPart(value)).toBe(host);
  });
});

describe('alertSamples (test/alert-fixtures.ts)', () => {
  const vm: VmCandidate = {
    id: '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/Rg-Web/providers/Microsoft.Compute/virtualMachines/Web-1',
    name: 'Web-1',
    resourceGroup: 'Rg-Web',
    location: 'westeurope',
    addresses: ['10.20.0.4'],
  };
  const other: VmCandidate = { ...vm, id: vm.id.replace('Web-1', 'web-2'), name: 'web-2', addresses: ['10.20.0.5'] };
  const samples = alertSamples({ id: vm.id, name: vm.name, address: '10.20.0.4' });

  it('covers every source and both fragments', () => {
    expect(new Set(samples.map((s) => s.source))).toEqual(
      new Set(['azure-common', 'azure-metric-alert', 'azure-classic', 'alertmanager', 'grafana']),
    );
    expect(samples).toHaveLength(7);
  });

  it.each(samples.map((s) => [s.name, s] as const))('%s parses to one Fired alert on the VM', (_, sample) => {
    const { source, alerts } = parseAlertPayload(sample.body);
    expect(source).toBe(sample.source);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]?.condition).toBe('Fired');
    const resolution = alerts[0] && resolveTarget(alerts[0], [other, vm]);
    expect(resolution).toEqual({ ok: true, vm });
  });

  it('gives every sample its own dedupKey', () => {
    const keys = samples.map((s) => parseAlertPayload(s.body).alerts[0]?.dedupKey);
    expect(new Set(keys).size).toBe(samples.length);
  });
});

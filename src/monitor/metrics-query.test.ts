import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness, SUBSCRIPTION } from '../../test/api-harness.js';

/** Azure's own example answer of "Metrics - List" (see test/fixtures/azure/README-metrics.md). */
const azureSample = JSON.parse(
  readFileSync(new URL('../../test/fixtures/azure/metrics-list-getmetric.json', import.meta.url), 'utf8'),
);

const T0 = Date.parse('2026-11-29T10:00:00Z');
const VM = `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm1`;
const METRICS = `${VM}/providers/microsoft.insights/metrics`;

/** Each key's path and JSON type, over all elements of arrays: the shape, not the values. */
function shape(value: unknown, path = '$'): string[] {
  if (Array.isArray(value)) {
    return [`${path}: array`, ...new Set(value.flatMap((v) => shape(v, `${path}[]`)))].sort();
  }
  if (value !== null && typeof value === 'object') {
    return [
      `${path}: object`,
      ...Object.entries(value)
        .sort(([a], [b]) => a.localeCompare(b))
        .flatMap(([k, v]) => shape(v, `${path}.${k}`)),
    ].sort();
  }
  return [`${path}: ${typeof value}`];
}

describe('host metrics API (Azure Monitor "Metrics - List")', () => {
  let h: ApiHarness;
  let agent: Awaited<ReturnType<ApiHarness['registerVm']>>;

  beforeAll(async () => {
    h = await createApiHarness();
    agent = await h.registerVm({ name: 'vm1', resourceGroup: 'rg1', location: 'westeurope' });
    await h.registerVm({ name: 'vm2', resourceGroup: 'rg1', location: 'westeurope' });
    // Minute 10:00 has 60 samples of 1000 bytes in; 10:01 has none; 10:02 has 30 samples, 0..29 % CPU.
    const samples = [
      ...Array.from({ length: 60 }, (_, i) => ({
        time: new Date(T0 + i * 1000).toISOString(),
        values: { 'Network In Total': 1000, 'network out total': 10 },
      })),
      ...Array.from({ length: 30 }, (_, i) => ({
        time: new Date(T0 + 120_000 + i * 1000).toISOString(),
        values: { 'Percentage CPU': i },
      })),
    ];
    const reply = await h.request({
      method: 'POST',
      url: '/agent/v1/metrics',
      token: agent.agentToken,
      body: { samples },
    });
    expect(reply.status, reply.text).toBe(200);
    expect(reply.json).toEqual({ stored: 150 });
  });
  afterAll(async () => {
    await h?.close();
  });

  const query = (q: string, token?: string) =>
    h.request({ method: 'GET', url: `${METRICS}?api-version=2018-01-01&${q}`, ...(token ? { token } : {}) });

  it("answers in the shape of Azure's own example, key by key", async () => {
    const reply = await query(
      'metricnames=Network%20In%20Total&aggregation=Average,count&interval=PT1M&timespan=2026-11-29T10:00:00Z/2026-11-29T10:04:00Z',
    );
    expect(reply.status, reply.text).toBe(200);
    // Ours has no dimensions, so metadatavalues is empty where Azure's example lists its blob types.
    const ours = shape(reply.json);
    const theirs = shape(azureSample).filter((line) => !line.startsWith('$.value[].timeseries[].metadatavalues[]'));
    expect(ours).toEqual(theirs);
    expect(reply.json).toEqual({
      cost: 0,
      timespan: '2026-11-29T10:00:00Z/2026-11-29T10:04:00Z',
      interval: 'PT1M',
      namespace: 'Microsoft.Compute/virtualMachines',
      resourceregion: 'westeurope',
      value: [
        {
          id: `${VM}/providers/Microsoft.Insights/metrics/Network In Total`,
          type: 'Microsoft.Insights/metrics',
          displayDescription: expect.any(String),
          name: { value: 'Network In Total', localizedValue: 'Network In Total' },
          unit: 'Bytes',
          timeseries: [
            {
              metadatavalues: [],
              data: [
                { timeStamp: '2026-11-29T10:00:00Z', average: 1000, count: 60 },
                { timeStamp: '2026-11-29T10:01:00Z', count: 0 },
                { timeStamp: '2026-11-29T10:02:00Z', count: 0 },
                { timeStamp: '2026-11-29T10:03:00Z', count: 0 },
              ],
            },
          ],
        },
      ],
    });
  });

  it('aggregates Total, Minimum, Maximum over several metrics, and PT10S from raw samples', async () => {
    const reply = await query(
      'metricnames=Network Out Total,Percentage CPU&aggregation=Total,Minimum,Maximum&interval=PT5M&timespan=2026-11-29T10:00:00Z/PT5M',
    );
    expect(reply.status, reply.text).toBe(200);
    const [out, cpu] = reply.json.value;
    expect(out.timeseries[0].data).toEqual([
      { timeStamp: '2026-11-29T10:00:00Z', total: 600, minimum: 10, maximum: 10 },
    ]);
    expect(cpu.unit).toBe('Percent');
    expect(cpu.timeseries[0].data).toEqual([
      { timeStamp: '2026-11-29T10:00:00Z', total: 435, minimum: 0, maximum: 29 },
    ]);

    const fine = await query(
      'metricnames=Percentage CPU&aggregation=Average&interval=PT10S&timespan=2026-11-29T10:02:00Z/PT30S',
    );
    expect(fine.status, fine.text).toBe(200);
    expect(fine.json.interval).toBe('PT10S');
    expect(fine.json.value[0].timeseries[0].data.map((d: { average: number }) => d.average)).toEqual([4.5, 14.5, 24.5]);
  });

  it.each([
    ['metricnames=Disk Read Bytes', 'metricnames', /Disk Read Bytes/],
    ['aggregation=Median', 'aggregation', /Median/],
    ['interval=1m', 'interval', /ISO-8601/],
    ['interval=PT0.5S', 'interval', /PT0.5S/],
    ['interval=PT90S', 'interval', /whole number of minutes/],
    ['interval=P1M', 'interval', /P1M/],
    ['timespan=2026-11-29T11:00:00Z/2026-11-29T10:00:00Z', 'timespan', /end after the start/],
    ['timespan=yesterday', 'timespan', /yesterday/],
    ['timespan=2026-11-29T10:00:00Z/P30D&interval=PT1S', 'timespan', /data points/],
  ])('refuses %s with a 400 naming %s', async (q, target, message) => {
    const reply = await query(q);
    expect(reply.status).toBe(400);
    expect(reply.json.error.target).toBe(target);
    expect(reply.json.error.message).toMatch(message);
  });

  it('answers 404 for an unknown VM and needs a token that may read', async () => {
    const missing = await h.request({
      method: 'GET',
      url: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/nope/providers/Microsoft.Insights/metrics`,
    });
    expect(missing.status).toBe(404);
    expect(missing.json.error.code).toBe('ResourceNotFound');
    const reader = await h.tokenFor('reader');
    expect((await query('metricnames=Percentage CPU', reader.token)).status).toBe(200);
    expect((await query('metricnames=Percentage CPU', agent.agentToken)).status).toBe(403);
  });

  it("lets an agent write only its own VM's metrics, and only known metrics", async () => {
    const t = new Date(T0 + 600_000).toISOString();
    const unknown = await h.request({
      method: 'POST',
      url: '/agent/v1/metrics',
      token: agent.agentToken,
      body: { samples: [{ time: t, values: { 'Disk Read Bytes': 1 } }] },
    });
    expect(unknown.status).toBe(400);
    // Any VM named in the body is ignored: the VM comes from the credential.
    const other = await h.request({
      method: 'POST',
      url: '/agent/v1/metrics',
      token: agent.agentToken,
      body: { vm: 'vm2', samples: [{ time: t, values: { 'Network In Total': 5 } }] },
    });
    expect(other.status).toBe(200);
    const vm2 = await h.request({
      method: 'GET',
      url: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/vm2/providers/Microsoft.Insights/metrics?metricnames=Network In Total&aggregation=Count&timespan=2026-11-29T10:10:00Z/PT1M`,
    });
    expect(vm2.json.value[0].timeseries[0].data).toEqual([{ timeStamp: '2026-11-29T10:10:00Z', count: 0 }]);
    const future = await h.request({
      method: 'POST',
      url: '/agent/v1/metrics',
      token: agent.agentToken,
      body: { samples: [{ time: new Date(Date.now() + 3_600_000).toISOString(), values: { 'Network In Total': 1 } }] },
    });
    expect(future.status).toBe(400);
    expect(future.json.error.message).toMatch(/samples\.0\.time: .* ahead of the server's clock/);
    const admin = await h.request({ method: 'POST', url: '/agent/v1/metrics', body: { samples: [] } });
    expect(admin.status).toBe(403);
  });
});

import { describe, expect, it } from 'vitest';
import type { MetricsResponse } from '../monitor/metrics-query.js';
import { renderMetrics, sparkline } from './metrics.js';

describe('tripcap metrics output', () => {
  it('draws a sparkline scaled to the peak, blank where there is no data', () => {
    expect(sparkline([0, 1, 2, 4, 8, undefined])).toBe(' ▁▂▄█ ');
    expect(
      sparkline(
        Array.from({ length: 120 }, (_, i) => i),
        60,
      ),
    ).toHaveLength(60);
  });

  it('charts each metric by its main aggregation and lists the intervals with data', () => {
    const response: MetricsResponse = {
      cost: 0,
      timespan: '2026-11-29T10:00:00Z/2026-11-29T10:03:00Z',
      interval: 'PT1M',
      namespace: 'Microsoft.Compute/virtualMachines',
      resourceregion: 'local',
      value: [
        {
          id: '/x/providers/Microsoft.Insights/metrics/Network In Total',
          type: 'Microsoft.Insights/metrics',
          name: { value: 'Network In Total', localizedValue: 'Network In Total' },
          displayDescription: '',
          unit: 'Bytes',
          timeseries: [
            {
              metadatavalues: [],
              data: [
                { timeStamp: '2026-11-29T10:00:00Z', total: 1024, average: 512 },
                { timeStamp: '2026-11-29T10:01:00Z' },
                { timeStamp: '2026-11-29T10:02:00Z', total: 2_097_152, average: 34_952.5 },
              ],
            },
          ],
        },
      ],
    };
    const text = renderMetrics(response);
    expect(text).toContain('Network In Total (Bytes, Total per PT1M)');
    expect(text).toContain('|▁ █|');
    expect(text).toContain('peak 2.0 MiB at 2026-11-29T10:02:00Z; 2 of 3 intervals with data');
    expect(text).toMatch(/2026-11-29T10:02:00Z\s+2\.0 MiB\s+34\.1 KiB/);
    expect(text).not.toMatch(/^\s+2026-11-29T10:01:00Z/m);
  });
});

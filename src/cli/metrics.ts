import type { Command } from 'commander';
import { hostMetric } from '../monitor/host-metrics.js';
import type { MetricsResponse, MetricValue } from '../monitor/metrics-query.js';
import { type ConnectionOptions, withApi } from './lazy-api.js';
import { formatBytes, print, table } from './output.js';

type Flags = Record<string, string | boolean | undefined>;

const SPARK = ' ▁▂▃▄▅▆▇█';

/** One block character per value (folded to at most `width` columns by their largest value), scaled to the peak. */
export function sparkline(values: Array<number | undefined>, width = 60): string {
  if (values.length === 0) return '';
  const per = Math.ceil(values.length / width);
  const cols: Array<number | undefined> = [];
  for (let i = 0; i < values.length; i += per) {
    const known = values.slice(i, i + per).filter((v): v is number => v !== undefined);
    cols.push(known.length ? Math.max(...known) : undefined);
  }
  const max = Math.max(0, ...cols.filter((v): v is number => v !== undefined));
  return cols
    .map((v) => {
      if (v === undefined || v <= 0 || max <= 0) return SPARK[0];
      return SPARK[Math.max(1, Math.round((v / max) * 8))];
    })
    .join('');
}

function formatValue(value: number | undefined, unit: string): string {
  if (value === undefined) return '';
  if (unit === 'Bytes') return formatBytes(Math.round(value));
  if (unit === 'Percent') return `${value.toFixed(1)} %`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

const AGGREGATION_KEYS = {
  Total: 'total',
  Average: 'average',
  Minimum: 'minimum',
  Maximum: 'maximum',
  Count: 'count',
} as const;

/** A terminal view of a metrics answer: per metric a chart of its main aggregation, then its data points. */
export function renderMetrics(response: MetricsResponse, options: { points?: boolean } = {}): string {
  const lines: string[] = [`${response.timespan} every ${response.interval}`];
  for (const metric of response.value) {
    const primary = hostMetric(metric.name.value)?.primaryAggregation ?? 'Average';
    const data: MetricValue[] = metric.timeseries[0]?.data ?? [];
    const values = data.map((d) => d[AGGREGATION_KEYS[primary]]);
    const known = values.filter((v): v is number => v !== undefined);
    const peak = known.length ? Math.max(...known) : undefined;
    const peakAt = peak === undefined ? undefined : data[values.indexOf(peak)]?.timeStamp;
    lines.push(
      '',
      `${metric.name.localizedValue} (${metric.unit}, ${primary} per ${response.interval})`,
      `  |${sparkline(values)}|`,
      peak === undefined
        ? '  no data in this timespan'
        : `  peak ${formatValue(peak, metric.unit)} at ${peakAt}; ${known.length} of ${data.length} intervals with data`,
    );
    if (options.points !== false) {
      const rows = data
        .filter((d) => (d.count ?? 1) > 0 && Object.keys(d).length > 1)
        .map((d) => {
          const row: Record<string, string> = { Time: d.timeStamp };
          for (const [name, key] of Object.entries(AGGREGATION_KEYS)) {
            if (d[key] !== undefined) row[name] = name === 'Count' ? String(d[key]) : formatValue(d[key], metric.unit);
          }
          return row;
        });
      if (rows.length)
        lines.push(
          ...table(rows)
            .trimEnd()
            .split('\n')
            .map((l) => `  ${l}`),
        );
    }
  }
  return `${lines.join('\n')}\n`;
}

export function registerMetricsCommand(program: Command, connectionOptions: (cmd: Command) => Command) {
  connectionOptions(
    program
      .command('metrics')
      .description('Host metrics of a VM (Azure Monitor names), with a terminal chart.')
      .requiredOption('--vm <name>', 'VM name')
      .option('-g, --resource-group <rg>', 'resource group of the VM (default: the one VM of that name)')
      .option(
        '--metric <names>',
        "comma-separated metric names: 'Network In Total', 'Network Out Total', 'Network Packets In', 'Network Packets Out', 'Percentage CPU', 'Available Memory Bytes'",
        'Network In Total,Network Out Total',
      )
      .option(
        '--aggregation <list>',
        'comma-separated: Average, Total, Minimum, Maximum, Count',
        'Total,Average,Maximum',
      )
      .option('--interval <duration>', 'ISO-8601 interval: PT1M, PT5M, PT1H, P1D; below PT1M from raw samples', 'PT1M')
      .option('--timespan <span>', "ISO-8601: a duration back from now ('PT1H') or start/end", 'PT1H')
      .option('--no-points', 'only the charts, not the data points')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (o: Flags) => {
    return withApi(o as ConnectionOptions, async (api) => {
      let resourceGroup = o.resourceGroup as string | undefined;
      const name = String(o.vm);
      if (!resourceGroup) {
        const { body } = await api.json<{ value: Array<{ name: string; id: string }> }>(
          'GET',
          `/subscriptions/${api.subscription}/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01`,
        );
        const matches = body.value.filter((v) => v.name.toLowerCase() === name.toLowerCase());
        if (matches.length !== 1) {
          throw new Error(
            matches.length === 0
              ? `No VM named '${name}' (tripcap vm list shows the VMs).`
              : `Several VMs are named '${name}': choose one with -g RESOURCE_GROUP.`,
          );
        }
        resourceGroup = /\/resourceGroups\/([^/]+)\//i.exec(matches[0]?.id ?? '')?.[1] ?? '';
      }
      const query = new URLSearchParams({
        'api-version': '2018-01-01',
        metricnames: String(o.metric),
        aggregation: String(o.aggregation),
        interval: String(o.interval),
        timespan: String(o.timespan),
      });
      const path = `/subscriptions/${api.subscription}/resourceGroups/${encodeURIComponent(resourceGroup)}/providers/Microsoft.Compute/virtualMachines/${encodeURIComponent(name)}/providers/microsoft.insights/metrics?${query}`;
      const { body } = await api.json<MetricsResponse>('GET', path);
      if (String(o.output) === 'json') print('json', body);
      else process.stdout.write(renderMetrics(body, { points: o.points !== false }));
    });
  });
}

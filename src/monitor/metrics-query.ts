import { formatDuration, parseDuration, parseTimespan } from '../lib/duration.js';
import { badRequest } from '../lib/errors.js';
import { HOST_METRICS, type HostMetricDefinition, hostMetric } from './host-metrics.js';
import { type MetricBucket, type MetricsStore, MINUTE_MS } from './metrics-store.js';

/** Azure's aggregation types, as its `aggregation` parameter spells them (case-insensitive). */
export const AGGREGATIONS = ['Average', 'Count', 'Minimum', 'Maximum', 'Total'] as const;
export type Aggregation = (typeof AGGREGATIONS)[number];

/** The query string of Azure Monitor's "Metrics - List" as tripcap reads it. */
export interface MetricsQueryParams {
  metricnames?: string;
  aggregation?: string;
  interval?: string;
  timespan?: string;
}

export interface MetricValue {
  timeStamp: string;
  average?: number;
  minimum?: number;
  maximum?: number;
  total?: number;
  count?: number;
}

/** Azure Monitor's `Response` of "Metrics - List". */
export interface MetricsResponse {
  cost: number;
  timespan: string;
  interval: string;
  namespace: string;
  resourceregion: string;
  value: Array<{
    id: string;
    type: 'Microsoft.Insights/metrics';
    name: { value: string; localizedValue: string };
    displayDescription: string;
    unit: string;
    timeseries: Array<{ metadatavalues: never[]; data: MetricValue[] }>;
  }>;
}

/** The smallest interval served (raw samples are one a second); below a minute is tripcap's extension. */
const MIN_INTERVAL_MS = 1_000;
/** The most data points one metric's series may have. */
export const MAX_POINTS = 50_000;

/** Azure writes whole-second UTC times without milliseconds. */
export function azureTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return iso.endsWith('.000Z') ? `${iso.slice(0, -5)}Z` : iso;
}

export interface ParsedMetricsQuery {
  metrics: HostMetricDefinition[];
  aggregations: Aggregation[];
  intervalMs: number;
  start: number;
  end: number;
}

/** Validates a query string; every refusal is a 400 that names the parameter and what is wrong with it. */
export function parseMetricsQuery(params: MetricsQueryParams, now: number = Date.now()): ParsedMetricsQuery {
  const names = (params.metricnames ?? 'Percentage CPU').split(',').map((n) => n.trim());
  const metrics: HostMetricDefinition[] = [];
  for (const name of names) {
    const metric = hostMetric(name);
    if (!metric) {
      throw badRequest(
        'BadRequest',
        `Failed to find metric configuration for provider: Microsoft.Compute, resource type: virtualMachines, metric: '${name.slice(0, 100)}'. Valid metrics: ${HOST_METRICS.map((m) => m.name).join(', ')}.`,
        'metricnames',
      );
    }
    if (!metrics.includes(metric)) metrics.push(metric);
  }

  const aggregations: Aggregation[] = [];
  for (const text of (params.aggregation ?? 'Average').split(',').map((a) => a.trim())) {
    const aggregation = AGGREGATIONS.find((a) => a.toLowerCase() === text.toLowerCase());
    if (!aggregation) {
      throw badRequest(
        'BadRequest',
        `Aggregation '${text.slice(0, 50)}' is not valid: use ${AGGREGATIONS.join(', ')} (comma-separated).`,
        'aggregation',
      );
    }
    if (!aggregations.includes(aggregation)) aggregations.push(aggregation);
  }

  const intervalText = params.interval ?? 'PT1M';
  const intervalMs = parseDuration(intervalText);
  if (intervalMs === null) {
    throw badRequest(
      'BadRequest',
      `Interval '${intervalText.slice(0, 50)}' is not an ISO-8601 duration such as PT1M, PT5M, PT1H or P1D.`,
      'interval',
    );
  }
  if (intervalMs < MIN_INTERVAL_MS || intervalMs % 1000 !== 0) {
    throw badRequest(
      'BadRequest',
      `Interval '${intervalText}' is not a whole number of seconds of at least PT1S.`,
      'interval',
    );
  }
  if (intervalMs >= MINUTE_MS && intervalMs % MINUTE_MS !== 0) {
    throw badRequest(
      'BadRequest',
      `Interval '${intervalText}' must be a whole number of minutes (or shorter than a minute, from raw samples).`,
      'interval',
    );
  }

  const timespanText = params.timespan ?? 'PT1H';
  const span = parseTimespan(timespanText, now);
  if (!span) {
    throw badRequest(
      'BadRequest',
      `Timespan '${timespanText.slice(0, 100)}' is not valid: use start/end (2026-11-29T10:00:00Z/2026-11-29T11:00:00Z), start/duration, or a duration, with the end after the start.`,
      'timespan',
    );
  }
  // Buckets start on multiples of the interval (UTC), as Azure aligns its time grains.
  const start = Math.floor(span.start / intervalMs) * intervalMs;
  const end = span.end;
  if ((end - start) / intervalMs > MAX_POINTS) {
    throw badRequest(
      'BadRequest',
      `Timespan '${timespanText}' at interval '${intervalText}' asks for more than ${MAX_POINTS} data points: use a larger interval or a shorter timespan.`,
      'timespan',
    );
  }
  return { metrics, aggregations, intervalMs, start, end };
}

function point(bucket: MetricBucket, aggregations: Aggregation[]): MetricValue {
  const value: MetricValue = { timeStamp: azureTime(bucket.time) };
  // An empty interval has no average, minimum, maximum or total; only its count (0), as Azure answers.
  for (const aggregation of aggregations) {
    if (aggregation === 'Count') value.count = bucket.count;
    else if (bucket.count > 0) {
      if (aggregation === 'Average') value.average = bucket.sum / bucket.count;
      if (aggregation === 'Total') value.total = bucket.sum;
      if (aggregation === 'Minimum') value.minimum = bucket.min;
      if (aggregation === 'Maximum') value.maximum = bucket.max;
    }
  }
  return value;
}

/** Answers a metrics query for one VM in Azure Monitor's shape. */
export async function queryMetrics(
  store: MetricsStore,
  vm: { id: string; key: string; location: string },
  params: MetricsQueryParams,
  now: number = Date.now(),
): Promise<MetricsResponse> {
  const query = parseMetricsQuery(params, now);
  const value: MetricsResponse['value'] = [];
  for (const metric of query.metrics) {
    const buckets = await store.series(vm.key, metric.name, {
      start: query.start,
      end: query.end,
      intervalMs: query.intervalMs,
    });
    value.push({
      id: `${vm.id}/providers/Microsoft.Insights/metrics/${metric.name}`,
      type: 'Microsoft.Insights/metrics',
      name: { value: metric.name, localizedValue: metric.localizedName },
      displayDescription: metric.description,
      unit: metric.unit,
      timeseries: [{ metadatavalues: [], data: buckets.map((b) => point(b, query.aggregations)) }],
    });
  }
  return {
    cost: 0,
    timespan: `${azureTime(query.start)}/${azureTime(query.end)}`,
    interval: formatDuration(query.intervalMs),
    namespace: 'Microsoft.Compute/virtualMachines',
    resourceregion: vm.location,
    value,
  };
}

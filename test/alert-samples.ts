/** Azure's alert payload samples (test/fixtures) and the shape comparison tests hold our payloads to. */
import { readFileSync } from 'node:fs';

const SAMPLES = new URL('./fixtures/azure/alert-samples/', import.meta.url);
const sample = (name: string) => JSON.parse(readFileSync(new URL(name, SAMPLES), 'utf8')) as unknown;
export const fullCommon = sample('common-schema_metric_static_full_payload-samples.json');
export const staticFragment = sample('common-schema_alertContext-fragment_metric_static.json');
export const dynamicFragment = sample('common-schema_alertContext-fragment_metric_dynamic.json');
export const nonCommon = sample('noncommon_AzureMonitorMetricAlert_static.json');

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * Every difference in key sets and JSON types between ours and Azure's sample, one line each. Array elements of ours
 * are compared with the sample's first element; values are not compared.
 */
export function shapeDiff(ours: unknown, azure: unknown, path = ''): string[] {
  const [a, b] = [jsonType(ours), jsonType(azure)];
  if (a !== b) return [`${path}: ours is ${a}, sample is ${b}`];
  if (a === 'array') {
    const [mine, theirs] = [ours as unknown[], azure as unknown[]];
    if (theirs.length === 0) return mine.length === 0 ? [] : [`${path}: sample is empty`];
    if (mine.length === 0) return [`${path}: ours is empty`];
    return mine.flatMap((item, i) => shapeDiff(item, theirs[0], `${path}[${i}]`));
  }
  if (a === 'object') {
    const [mine, theirs] = [ours as Record<string, unknown>, azure as Record<string, unknown>];
    const at = (k: string) => (path ? `${path}.${k}` : k);
    return [
      ...Object.keys(theirs)
        .filter((k) => !(k in mine))
        .map((k) => `${at(k)}: missing`),
      ...Object.keys(mine)
        .filter((k) => !(k in theirs))
        .map((k) => `${at(k)}: extra`),
      ...Object.keys(mine)
        .filter((k) => k in theirs)
        .flatMap((k) => shapeDiff(mine[k], theirs[k], at(k))),
    ];
  }
  return [];
}

/**
 * The arithmetic of metric alerts, free of storage and clocks: a window's aggregate, the comparison, the dynamic
 * threshold, and the alert state machine. The evaluator feeds it; the tests pin it table by table.
 */
import type { DynamicOperator, Sensitivity, StaticOperator, TimeAggregation } from './alert-event.js';
import type { MetricBucket } from './metrics-store.js';

/** A window's value for an aggregation; null when the window has no samples (Count is then 0, as Azure counts). */
export function aggregate(bucket: MetricBucket | undefined, aggregation: TimeAggregation): number | null {
  if (aggregation === 'Count') return bucket?.count ?? 0;
  if (!bucket || bucket.count === 0) return null;
  switch (aggregation) {
    case 'Average':
      return bucket.sum / bucket.count;
    case 'Total':
      return bucket.sum;
    case 'Minimum':
      return bucket.min;
    case 'Maximum':
      return bucket.max;
  }
}

export function compare(value: number, operator: StaticOperator, threshold: number): boolean {
  switch (operator) {
    case 'Equals':
      return value === threshold;
    case 'NotEquals':
      return value !== threshold;
    case 'GreaterThan':
      return value > threshold;
    case 'GreaterThanOrEqual':
      return value >= threshold;
    case 'LessThan':
      return value < threshold;
    case 'LessThanOrEqual':
      return value <= threshold;
  }
}

/** How many robust standard deviations from the median a value must lie to count as a deviation. */
export const SENSITIVITY_SIGMAS: Record<Sensitivity, number> = { High: 2, Medium: 3, Low: 4 };
/** Fewer past windows than this and a dynamic criterion does not decide (Azure also waits for history). */
export const MIN_HISTORY = 12;
/** The most past windows a dynamic threshold learns from. */
export const MAX_HISTORY = 288;

export interface Bounds {
  median: number;
  lower: number;
  upper: number;
}

/**
 * The dynamic threshold's band from past windows' values: median ± k·σ, where σ is the median absolute deviation
 * scaled to a normal distribution's standard deviation (1.4826·MAD), at least 5 % of the median and at least 1, so a
 * flat history does not make every wiggle a deviation. Null with too little history.
 */
export function dynamicBounds(history: readonly number[], sensitivity: Sensitivity): Bounds | null {
  if (history.length < MIN_HISTORY) return null;
  const median = medianOf(history);
  const mad = medianOf(history.map((v) => Math.abs(v - median)));
  const sigma = Math.max(1.4826 * mad, 0.05 * Math.abs(median), 1);
  const k = SENSITIVITY_SIGMAS[sensitivity];
  return { median, lower: median - k * sigma, upper: median + k * sigma };
}

function medianOf(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

export function deviates(value: number, operator: DynamicOperator, bounds: Bounds): boolean {
  if (operator === 'GreaterThan') return value > bounds.upper;
  if (operator === 'LessThan') return value < bounds.lower;
  return value > bounds.upper || value < bounds.lower;
}

/** Where a rule stands for one VM. */
export interface AlertState {
  /** A stateful alert is open (Fired, not yet Resolved). */
  open: boolean;
  /** Consecutive evaluations without the condition while open. */
  cleanCount: number;
}

export type Transition = 'Fire' | 'Resolve' | 'None';

/** Clean evaluations in a row that resolve a stateful alert (Azure: three). */
export const CLEAN_EVALUATIONS_TO_RESOLVE = 3;

/**
 * One evaluation's effect. Stateful rules (autoMitigate) fire once and resolve after three clean evaluations in a
 * row; stateless rules fire at every evaluation that meets the condition and never resolve, as in Azure.
 */
export function transition(
  state: AlertState,
  met: boolean,
  autoMitigate: boolean,
): { transition: Transition; state: AlertState } {
  if (!autoMitigate) return { transition: met ? 'Fire' : 'None', state: { open: false, cleanCount: 0 } };
  if (!state.open) {
    return met
      ? { transition: 'Fire', state: { open: true, cleanCount: 0 } }
      : { transition: 'None', state: { open: false, cleanCount: 0 } };
  }
  if (met) return { transition: 'None', state: { open: true, cleanCount: 0 } };
  const cleanCount = state.cleanCount + 1;
  return cleanCount >= CLEAN_EVALUATIONS_TO_RESOLVE
    ? { transition: 'Resolve', state: { open: false, cleanCount: 0 } }
    : { transition: 'None', state: { open: true, cleanCount } };
}

/** The evaluation time a rule is due at: the last multiple of its frequency (UTC) that is `delayMs` behind now. */
export function dueTime(now: number, frequencyMs: number, delayMs: number): number {
  return Math.floor((now - delayMs) / frequencyMs) * frequencyMs;
}

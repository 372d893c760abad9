import { describe, expect, it } from 'vitest';
import type { StaticOperator, TimeAggregation } from './alert-event.js';
import {
  type AlertState,
  aggregate,
  CLEAN_EVALUATIONS_TO_RESOLVE,
  compare,
  deviates,
  dueTime,
  dynamicBounds,
  MIN_HISTORY,
  transition,
} from './evaluation.js';

const bucket = { time: 0, count: 4, sum: 100, min: 10, max: 40 };
const empty = { time: 0, count: 0, sum: 0, min: 0, max: 0 };

describe('aggregate', () => {
  const cases: Array<[TimeAggregation, number | null, number | null]> = [
    // aggregation, value of a window with samples, value of an empty window
    ['Average', 25, null],
    ['Total', 100, null],
    ['Minimum', 10, null],
    ['Maximum', 40, null],
    ['Count', 4, 0],
  ];
  it.each(cases)('%s', (aggregation, full, none) => {
    expect(aggregate(bucket, aggregation)).toBe(full);
    expect(aggregate(empty, aggregation)).toBe(none);
    expect(aggregate(undefined, aggregation)).toBe(none);
  });
});

describe('compare', () => {
  const cases: Array<[StaticOperator, boolean, boolean, boolean]> = [
    // operator, 9 vs 10, 10 vs 10, 11 vs 10
    ['Equals', false, true, false],
    ['NotEquals', true, false, true],
    ['GreaterThan', false, false, true],
    ['GreaterThanOrEqual', false, true, true],
    ['LessThan', true, false, false],
    ['LessThanOrEqual', true, true, false],
  ];
  it.each(cases)('%s', (operator, below, equal, above) => {
    expect([compare(9, operator, 10), compare(10, operator, 10), compare(11, operator, 10)]).toEqual([
      below,
      equal,
      above,
    ]);
  });
});

describe('dynamicBounds', () => {
  it('needs MIN_HISTORY past windows', () => {
    expect(dynamicBounds(Array(MIN_HISTORY - 1).fill(5), 'Medium')).toBeNull();
    expect(dynamicBounds(Array(MIN_HISTORY).fill(5), 'Medium')).not.toBeNull();
  });

  it('is the median ± k robust sigmas, k by sensitivity', () => {
    // 1..25: median 13, MAD 6.5 → sigma 9.6369
    const history = Array.from({ length: 25 }, (_, i) => i + 1);
    const sigma = 1.4826 * 6;
    const mad = [...history.map((v) => Math.abs(v - 13))].sort((a, b) => a - b)[12];
    expect(mad).toBe(6);
    for (const [sensitivity, k] of [
      ['High', 2],
      ['Medium', 3],
      ['Low', 4],
    ] as const) {
      const b = dynamicBounds(history, sensitivity);
      expect(b?.median).toBe(13);
      expect(b?.upper).toBeCloseTo(13 + k * sigma, 9);
      expect(b?.lower).toBeCloseTo(13 - k * sigma, 9);
    }
  });

  it('keeps a band around a flat history: 5 % of the median, at least 1', () => {
    expect(dynamicBounds(Array(20).fill(1000), 'High')).toEqual({ median: 1000, lower: 900, upper: 1100 });
    expect(dynamicBounds(Array(20).fill(0), 'Low')).toEqual({ median: 0, lower: -4, upper: 4 });
  });

  it('is not moved by a few outliers', () => {
    const history = [...Array(30).fill(100), 1e9, 1e9];
    expect(dynamicBounds(history, 'Medium')?.upper).toBe(115);
  });

  it('deviates by operator', () => {
    const b = { median: 10, lower: 5, upper: 15 };
    expect([4, 10, 16].map((v) => deviates(v, 'GreaterThan', b))).toEqual([false, false, true]);
    expect([4, 10, 16].map((v) => deviates(v, 'LessThan', b))).toEqual([true, false, false]);
    expect([4, 10, 16].map((v) => deviates(v, 'GreaterOrLessThan', b))).toEqual([true, false, true]);
  });
});

describe('transition', () => {
  /** Runs a sequence of evaluations (1 = condition met) and lists the transitions. */
  function run(sequence: string, autoMitigate: boolean, start: AlertState = { open: false, cleanCount: 0 }) {
    let state = start;
    return [...sequence].map((c) => {
      const next = transition(state, c === '1', autoMitigate);
      state = next.state;
      return next.transition[0]; // F, R or N
    });
  }

  const cases: Array<[string, boolean, string]> = [
    // evaluations, autoMitigate, transitions
    ['0000', true, 'NNNN'],
    ['1111', true, 'FNNN'],
    ['1000', true, 'FNNR'],
    ['1001000', true, 'FNNNNNR'], // a met evaluation resets the clean count
    ['10001', true, 'FNNRF'], // a new alert after resolution
    ['11', false, 'FF'], // stateless: every met evaluation fires
    ['1000', false, 'FNNN'], // stateless: never resolves
  ];
  it.each(cases)('%s (autoMitigate %s) → %s', (sequence, autoMitigate, expected) => {
    expect(run(sequence, autoMitigate).join('')).toBe(expected);
  });

  it('resumes an open alert with its clean count (as stored across a restart)', () => {
    const stored = { open: true, cleanCount: CLEAN_EVALUATIONS_TO_RESOLVE - 1 };
    expect(run('0', true, stored)).toEqual(['R']);
    expect(run('1', true, stored)).toEqual(['N']);
  });
});

describe('dueTime', () => {
  const t = Date.parse('2026-11-29T10:00:07.500Z');
  it.each([
    [60_000, 7_000, '2026-11-29T10:00:00.000Z'],
    [60_000, 8_000, '2026-11-29T09:59:00.000Z'],
    [10_000, 0, '2026-11-29T10:00:00.000Z'],
    [300_000, 7_000, '2026-11-29T10:00:00.000Z'],
  ])('frequency %i ms, delay %i ms → %s', (frequency, delay, expected) => {
    expect(new Date(dueTime(t, frequency, delay)).toISOString()).toBe(expected);
  });
});

import { describe, expect, it } from 'vitest';
import { isoDuration, parseCondition } from './alerts.js';

describe('--condition (az monitor metrics alert grammar)', () => {
  it.each([
    [
      'total Network Out Total > 500000000',
      {
        criterionType: 'StaticThresholdCriterion',
        metricName: 'Network Out Total',
        timeAggregation: 'Total',
        operator: 'GreaterThan',
        threshold: 500000000,
      },
    ],
    [
      'avg Percentage CPU >= 90.5',
      { metricName: 'Percentage CPU', timeAggregation: 'Average', operator: 'GreaterThanOrEqual', threshold: 90.5 },
    ],
    ['min Available Memory Bytes < 1e9', { timeAggregation: 'Minimum', operator: 'LessThan', threshold: 1e9 }],
    ['max Network Packets In <= 5', { timeAggregation: 'Maximum', operator: 'LessThanOrEqual' }],
    ['count Percentage CPU = 0', { timeAggregation: 'Count', operator: 'Equals', threshold: 0 }],
    ['total Network In Total != 1', { operator: 'NotEquals' }],
    [
      'avg Percentage CPU > dynamic medium 2 of 4',
      {
        criterionType: 'DynamicThresholdCriterion',
        metricName: 'Percentage CPU',
        operator: 'GreaterThan',
        alertSensitivity: 'Medium',
        failingPeriods: { numberOfEvaluationPeriods: 4, minFailingPeriodsToAlert: 2 },
      },
    ],
    [
      'total Network Out Total >< dynamic HIGH 1 of 1 since 2026-11-01T00:00:00Z',
      { operator: 'GreaterOrLessThan', alertSensitivity: 'High', ignoreDataBefore: '2026-11-01T00:00:00Z' },
    ],
  ])('%s', (text, expected) => {
    expect(parseCondition(text, 0)).toMatchObject({ name: 'Metric1', dimensions: [], ...expected });
  });

  it.each([
    'Network Out Total > 5',
    'median Percentage CPU > 5',
    'avg Percentage CPU >> 5',
    'avg Percentage CPU > lots',
    'avg > 5',
    'avg Percentage CPU > dynamic medium 2 4',
    'avg Percentage CPU >= dynamic medium 2 of 4',
    'avg Percentage CPU > dynamic medium 2 of 4 since',
  ])('refuses %s with the grammar in the message', (text) => {
    expect(() => parseCondition(text, 0)).toThrow(/AGGREGATION METRIC OPERATOR THRESHOLD/);
  });
});

describe('durations', () => {
  it.each([
    ['10s', 'PT10S'],
    ['5m', 'PT5M'],
    ['1h', 'PT1H'],
    ['1d', 'P1D'],
    ['PT15M', 'PT15M'],
    ['pt1m', 'PT1M'],
  ])('%s → %s', (text, iso) => {
    expect(isoDuration(text, '--window-size')).toBe(iso);
  });
  it('refuses other text', () => {
    expect(() => isoDuration('5 minutes', '--window-size')).toThrow(/--window-size takes a duration/);
  });
});

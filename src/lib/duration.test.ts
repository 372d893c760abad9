import { describe, expect, it } from 'vitest';
import { formatDuration, parseDuration, parseInstant, parseTimespan } from './duration.js';

describe('parseDuration', () => {
  it.each([
    ['PT1S', 1_000],
    ['PT1M', 60_000],
    ['PT5M', 300_000],
    ['PT15M', 900_000],
    ['PT30M', 1_800_000],
    ['PT1H', 3_600_000],
    ['PT6H', 21_600_000],
    ['PT12H', 43_200_000],
    ['P1D', 86_400_000],
    ['P1W', 604_800_000],
    ['P1DT12H', 129_600_000],
    ['PT1M30S', 90_000],
    ['PT0.5S', 500],
    ['pt1m', 60_000],
  ])('%s is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    '',
    'P',
    'PT',
    'P1DT',
    '1M',
    'PT1',
    'PT-1M',
    'P1Y',
    'P1M',
    'PT1M ',
    ' PT1M',
    'PT0S',
    'PT1.5M',
    'PTM',
    'P1H',
  ])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeNull();
  });
});

describe('formatDuration', () => {
  it.each([
    [1_000, 'PT1S'],
    [60_000, 'PT1M'],
    [3_600_000, 'PT1H'],
    [86_400_000, 'P1D'],
    [90_000, 'PT1M30S'],
    [129_600_000, 'P1DT12H'],
  ])('%d ms is %s and parses back', (ms, text) => {
    expect(formatDuration(ms)).toBe(text);
    expect(parseDuration(text)).toBe(ms);
  });
});

describe('parseTimespan', () => {
  const t10 = Date.parse('2026-11-29T10:00:00Z');
  const t11 = Date.parse('2026-11-29T11:00:00Z');

  it('reads start/end, start/duration, duration/end and a lone duration', () => {
    expect(parseTimespan('2026-11-29T10:00:00Z/2026-11-29T11:00:00Z')).toEqual({ start: t10, end: t11 });
    expect(parseTimespan('2026-11-29T10:00:00Z/PT1H')).toEqual({ start: t10, end: t11 });
    expect(parseTimespan('PT1H/2026-11-29T11:00:00Z')).toEqual({ start: t10, end: t11 });
    expect(parseTimespan('PT1H', t11)).toEqual({ start: t10, end: t11 });
    expect(parseTimespan('2026-11-29T11:00:00+01:00/2026-11-29T11:00:00Z')).toEqual({ start: t10, end: t11 });
  });

  it.each([
    '2026-11-29T11:00:00Z/2026-11-29T10:00:00Z',
    '2026-11-29T10:00:00Z/2026-11-29T10:00:00Z',
    '2026-11-29/2026-11-30',
    '2026-11-29T10:00:00/2026-11-29T11:00:00Z',
    'yesterday',
    'PT1H/PT1H',
    'a/b/c',
    '2026-13-45T10:00:00Z/PT1H',
  ])('refuses %j', (text) => {
    expect(parseTimespan(text)).toBeNull();
  });

  it('parseInstant needs a zone', () => {
    expect(parseInstant('2026-11-29T10:00:00Z')).toBe(t10);
    expect(parseInstant('2026-11-29T10:00:00')).toBeNull();
  });
});

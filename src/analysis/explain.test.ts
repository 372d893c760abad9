import { describe, expect, it } from 'vitest';
import { formatDuration } from './explain.js';

describe('formatDuration', () => {
  it('reads as a person would say it, never "60 s"', () => {
    expect(formatDuration(0.25)).toBe('250 ms');
    expect(formatDuration(4.44)).toBe('4.4 s');
    expect(formatDuration(42.4)).toBe('42 s');
    expect(formatDuration(299.6)).toBe('5 min');
    expect(formatDuration(293)).toBe('4 min 53 s');
    expect(formatDuration(7260)).toBe('2 h 1 min');
  });
});

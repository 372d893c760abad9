import { describe, expect, it } from 'vitest';
import { TimestampConverter } from './timestamp.js';

/** What the conversion must give, by BigInt. */
function expected(high: number, low: number, units: bigint, offset: number) {
  const total = (BigInt(high) << 32n) | BigInt(low);
  return {
    seconds: Number(total / units) + offset,
    nanos: Number(((total % units) * 1_000_000_000n) / units),
  };
}

function* randomWords(count: number): Generator<[number, number]> {
  let x = 0x12345678;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  const edges = [0, 1, 0x1fffff, 0x200000, 0x7fffffff, 0x80000000, 0xffffffff];
  for (const high of edges) for (const low of edges) yield [high, low];
  for (let i = 0; i < count; i++) yield [next() >>> (next() % 32), next()];
}

const resolutions = [
  ...Array.from({ length: 20 }, (_, k) => k), // 10^-0 … 10^-19
  ...[0, 1, 9, 10, 20, 23, 24, 30, 32, 33, 40, 63].map((k) => 0x80 | k), // 2^-k
];

describe('TimestampConverter', () => {
  it('converts 64-bit timestamps of every resolution exactly, as BigInt does', () => {
    for (const tsresol of resolutions) {
      const clock = TimestampConverter.fromTsresol(tsresol, -7);
      expect(clock, `tsresol 0x${tsresol.toString(16)}`).toBeDefined();
      if (!clock) continue;
      const units = tsresol & 0x80 ? 1n << BigInt(tsresol & 0x7f) : 10n ** BigInt(tsresol);
      for (const [high, low] of randomWords(2000)) {
        const seconds = clock.toTime(high, low);
        const want = expected(high, low, units, -7);
        // beyond 2^53 seconds a double cannot hold the answer exactly: compare what it can hold
        expect([seconds, clock.nanos], `0x${tsresol.toString(16)} ${high}:${low}`).toEqual([want.seconds, want.nanos]);
      }
    }
  });

  it('rejects resolutions that do not fit 64 bits', () => {
    expect(TimestampConverter.fromTsresol(20)).toBeUndefined();
    expect(TimestampConverter.fromTsresol(0x80 | 64)).toBeUndefined();
  });

  it('writes timestamps that read back to the same instant, truncated to the resolution', () => {
    const cases: Array<[number, number]> = [
      [0, 0],
      [1, 999_999_999],
      [1_767_225_600, 123_456_789],
      [4_294_967_295, 999_999_999],
      [17_179_869_183, 1],
    ];
    for (const tsresol of [0, 3, 6, 9, 10, 0x80 | 10, 0x80 | 30, 0x80 | 31]) {
      const clock = TimestampConverter.fromTsresol(tsresol, 100) as TimestampConverter;
      const units = clock.unitsPerSecond;
      for (const [seconds, nanos] of cases) {
        const fine = units > 1e9 ? 999_999_999n : 0n;
        const want = BigInt(seconds) * BigInt(units) + (BigInt(nanos) * BigInt(units) + fine) / 1_000_000_000n;
        if (want >= 1n << 64n) {
          expect(() => clock.fromTime(seconds + 100, nanos)).toThrow(/64 bits/);
          continue;
        }
        clock.fromTime(seconds + 100, nanos);
        expect((BigInt(clock.high) << 32n) | BigInt(clock.low)).toBe(want);
        const back = clock.toTime(clock.high, clock.low);
        expect({ seconds: back, nanos: clock.nanos }).toEqual(expected(clock.high, clock.low, BigInt(units), 100));
        expect(back).toBe(seconds + 100);
        if (units >= 1e9) expect(clock.nanos).toBe(nanos);
        else expect(nanos - clock.nanos).toBeLessThan(1e9 / units);
        expect(clock.nanos).toBeLessThanOrEqual(nanos);
      }
    }
  });

  it('refuses times before the offset, fractions out of range and overflows', () => {
    const clock = TimestampConverter.fromTsresol(9, 10) as TimestampConverter;
    expect(() => clock.fromTime(9, 0)).toThrow(RangeError);
    expect(() => clock.fromTime(11, 1e9)).toThrow(RangeError);
    expect(() => clock.fromTime(11.5, 0)).toThrow(RangeError);
    expect(() => (TimestampConverter.fromTsresol(19) as TimestampConverter).fromTime(1_767_225_600, 0)).toThrow(
      /64 bits/,
    );
  });
});

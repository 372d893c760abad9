import { describe, expect, it } from 'vitest';
import { kthSmallest, topIndices } from './build-report.js';
import { PacketMemory } from './packet-path.js';

/** A small deterministic PRNG (the lists must be the same on every run). */
function random(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x / 4294967296;
  };
}

/** topIndices as a plain sort: largest weight first, then larger second, then lower index. */
function reference(weights: Float64Array, seconds: Float64Array, count: number, limit: number): number[] {
  return Array.from({ length: count }, (_, i) => i)
    .sort(
      (x, y) =>
        (weights[y] as number) - (weights[x] as number) || (seconds[y] as number) - (seconds[x] as number) || x - y,
    )
    .slice(0, limit);
}

describe('top rows', () => {
  it('kthSmallest agrees with sorting, whatever the arrangement', () => {
    const next = random(7);
    const arrangements: Array<(i: number, n: number) => number> = [
      () => Math.floor(next() * 1e9),
      () => Math.floor(next() * 3),
      (i) => i,
      (i, n) => n - i,
      (i, n) => (i < n / 2 ? i : n - i),
      () => 5,
    ];
    for (const make of arrangements) {
      for (const n of [1, 2, 3, 10, 257, 5000]) {
        const values = Float64Array.from({ length: n }, (_, i) => make(i, n));
        const sorted = values.slice().sort();
        for (const k of [0, 1, n >> 1, n - 2, n - 1].filter((k) => k >= 0 && k < n)) {
          expect(kthSmallest(values.slice(), k)).toBe(sorted[k]);
        }
      }
    }
  });

  it('topIndices picks and orders rows as a full sort does, ties included', () => {
    const next = random(11);
    for (let trial = 0; trial < 300; trial++) {
      const count = Math.floor(next() * 400);
      const spread = trial % 3 === 0 ? 4 : 1000; // few distinct weights: many ties at the cut
      const weights = Float64Array.from({ length: count }, () => Math.floor(next() * spread));
      const seconds = Float64Array.from({ length: count }, () => Math.floor(next() * 3));
      for (const limit of [1, 10, 100, 1000]) {
        expect(topIndices(weights, seconds, count, limit)).toEqual(reference(weights, seconds, count, limit));
      }
    }
  });

  it('the WebAssembly topIndices picks and orders as a full sort does, whatever the arrangement', () => {
    const memory = new PacketMemory(64 << 20);
    const next = random(13);
    const inMemory = (values: ArrayLike<number>) => {
      const a = memory.array(Float64Array, values.length) as Float64Array;
      a.set(values);
      return a;
    };
    const arrangements: Array<(i: number, n: number) => number> = [
      () => Math.floor(next() * 1e9),
      () => Math.floor(next() * 4),
      (i) => i,
      (i, n) => n - i,
      (i, n) => (i < n / 2 ? i : n - i),
      () => 5,
    ];
    for (const make of arrangements) {
      for (const count of [0, 1, 2, 3, 10, 257, 5000, 40_000]) {
        const weights = inMemory(Float64Array.from({ length: count }, (_, i) => make(i, count)));
        const seconds = inMemory(Float64Array.from({ length: count }, () => Math.floor(next() * 3)));
        expect(memory.holds(weights)).toBe(true);
        for (const limit of [1, 10, 1000]) {
          expect(topIndices(weights, seconds, count, limit, memory)).toEqual(reference(weights, seconds, count, limit));
        }
      }
    }
  });
});

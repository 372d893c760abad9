import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../db/index.js';
import { createMetricsStore, type MetricsStore } from './metrics-store.js';

const T0 = Date.parse('2026-11-29T10:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

describe('metrics store', () => {
  let db: Database;
  let store: MetricsStore;

  beforeEach(async () => {
    db = await createDatabase({ file: ':memory:' });
    store = createMetricsStore({ db, rawRetentionMs: 3_600_000, rollupRetentionMs: 86_400_000 });
  });
  afterEach(async () => {
    await db.destroy();
  });

  /** Two minutes of one sample a second; value = second number (0..119). */
  async function twoMinutes() {
    const samples = Array.from({ length: 120 }, (_, i) => ({
      time: iso(T0 + i * 1000),
      values: { 'Network In Total': i, 'Percentage CPU': 50 },
    }));
    return store.ingest('vm1', samples);
  }

  it('stores raw samples and per-minute rollups (count, sum, min, max)', async () => {
    expect(await twoMinutes()).toBe(240);
    const rollups = await db
      .selectFrom('metric_rollups')
      .selectAll()
      .where('metric', '=', 'Network In Total')
      .orderBy('minute')
      .execute();
    expect(rollups.map((r) => [Number(r.minute), r.count, r.sum, r.min, r.max])).toEqual([
      [T0, 60, (59 * 60) / 2, 0, 59],
      [T0 + 60_000, 60, (60 + 119) * 30, 60, 119],
    ]);
  });

  it('writes batches that arrive together in one transaction, each answered with its own count', async () => {
    const batch = (value: number) => [{ time: iso(T0), values: { 'Network In Total': value, 'Percentage CPU': 1 } }];
    const counts = await Promise.all([
      store.ingest('vm1', batch(10)),
      store.ingest('vm2', batch(20)),
      store.ingest('vm1', batch(10)), // the same sample again: stored once
      store.ingest('vm3', [{ time: 'not a time', values: { 'Network In Total': 1 } }]).catch(() => 'refused'),
      store.ingest('vm3', batch(30)),
    ]);
    expect(counts).toEqual([2, 2, 0, 'refused', 2]);
    const rollups = await db
      .selectFrom('metric_rollups')
      .select(['vm_key', 'count', 'sum'])
      .where('metric', '=', 'Network In Total')
      .orderBy('vm_key')
      .execute();
    expect(rollups).toEqual([
      { vm_key: 'vm1', count: 1, sum: 10 },
      { vm_key: 'vm2', count: 1, sum: 20 },
      { vm_key: 'vm3', count: 1, sum: 30 },
    ]);
  });

  it('ignores a batch sent twice (an agent retry) and merges a minute sent in two batches', async () => {
    const first = Array.from({ length: 30 }, (_, i) => ({
      time: iso(T0 + i * 1000),
      values: { 'Network In Total': 2 },
    }));
    const second = Array.from({ length: 30 }, (_, i) => ({
      time: iso(T0 + (30 + i) * 1000),
      values: { 'Network In Total': i === 0 ? 100 : 1 },
    }));
    expect(await store.ingest('vm1', first)).toBe(30);
    expect(await store.ingest('vm1', first)).toBe(0);
    expect(await store.ingest('vm1', second)).toBe(30);
    const [bucket] = await store.series('vm1', 'Network In Total', { start: T0, end: T0 + 60_000, intervalMs: 60_000 });
    expect(bucket).toEqual({ time: T0, count: 60, sum: 60 + 100 + 29, min: 1, max: 100 });
  });

  it('answers from rollups at a minute or more and from raw samples below', async () => {
    await twoMinutes();
    const perMinute = await store.series('vm1', 'Network In Total', {
      start: T0,
      end: T0 + 180_000,
      intervalMs: 60_000,
    });
    expect(perMinute.map((b) => b.count)).toEqual([60, 60, 0]);
    const twoMin = await store.series('vm1', 'Network In Total', { start: T0, end: T0 + 120_000, intervalMs: 120_000 });
    expect(twoMin).toEqual([{ time: T0, count: 120, sum: (119 * 120) / 2, min: 0, max: 119 }]);
    const tenSeconds = await store.series('vm1', 'Network In Total', {
      start: T0,
      end: T0 + 30_000,
      intervalMs: 10_000,
    });
    expect(tenSeconds.map((b) => [b.time - T0, b.count, b.sum, b.min, b.max])).toEqual([
      [0, 10, 45, 0, 9],
      [10_000, 10, 145, 10, 19],
      [20_000, 10, 245, 20, 29],
    ]);
    expect(await store.series('vm2', 'Network In Total', { start: T0, end: T0 + 60_000, intervalMs: 60_000 })).toEqual([
      { time: T0, count: 0, sum: 0, min: 0, max: 0 },
    ]);
  });

  it('prunes raw samples after their retention and rollups after theirs', async () => {
    await twoMinutes();
    // 1 h after the first minute: its raw samples go, the second minute's stay; rollups stay.
    expect(await store.prune(T0 + 3_600_000 + 60_000)).toEqual({ samples: 120, rollups: 0 });
    const raw = await store.series('vm1', 'Network In Total', { start: T0, end: T0 + 120_000, intervalMs: 60_000 / 2 });
    expect(raw.map((b) => b.count)).toEqual([0, 0, 30, 30]);
    expect(
      (await store.series('vm1', 'Network In Total', { start: T0, end: T0 + 120_000, intervalMs: 60_000 })).map(
        (b) => b.count,
      ),
    ).toEqual([60, 60]);
    expect(await store.prune(T0 + 86_400_000 + 60_000)).toEqual({ samples: 120, rollups: 2 });
    expect(await db.selectFrom('metric_rollups').selectAll().execute()).toHaveLength(2);
  });
});

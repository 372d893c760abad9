import { sql } from 'kysely';
import type { Database } from '../db/index.js';
import type { MetricSample } from './host-metrics.js';

export const MINUTE_MS = 60_000;

export interface MetricsStoreOptions {
  db: Database;
  /** How long raw samples are kept (default one hour). */
  rawRetentionMs?: number;
  /** How long per-minute rollups are kept (default 30 days). */
  rollupRetentionMs?: number;
}

/** The aggregate of the samples in one interval. */
export interface MetricBucket {
  /** Start of the interval, epoch milliseconds */
  time: number;
  count: number;
  sum: number;
  min: number;
  max: number;
}

interface Row {
  vm_key: string;
  metric: string;
  time: number;
  value: number;
}

/** Rows per INSERT statement: well under SQLite's bound-parameter limit. */
const CHUNK = 500;

/**
 * Host metrics: raw samples (short retention) and per-minute rollups (count, sum, min, max; long retention). A batch
 * is stored in one transaction; a sample already stored (an agent's retry) is ignored and not counted twice.
 */
export function createMetricsStore(options: MetricsStoreOptions) {
  const { db } = options;
  const rawRetentionMs = options.rawRetentionMs ?? 3_600_000;
  const rollupRetentionMs = options.rollupRetentionMs ?? 30 * 86_400_000;

  /**
   * Batches waiting for the next transaction. Each commit is an fsync; batches that arrive while one is being written
   * share the next (group commit), so a thousand agents cost a few commits a second, not a thousand.
   */
  let queue: Array<{ rows: Row[]; resolve: (n: number) => void; reject: (err: unknown) => void }> = [];
  let writing = false;

  /** Stores a batch of samples of one VM once it is durable; returns the number of new values stored. */
  function ingest(vmKey: string, samples: readonly MetricSample[]): Promise<number> {
    const rows: Row[] = [];
    for (const sample of samples) {
      const time = Date.parse(sample.time);
      for (const [metric, value] of Object.entries(sample.values)) {
        if (Number.isFinite(value)) rows.push({ vm_key: vmKey, metric, time, value });
      }
    }
    if (rows.length === 0) return Promise.resolve(0);
    return new Promise((resolve, reject) => {
      queue.push({ rows, resolve, reject });
      if (!writing) void drain();
    });
  }

  async function drain() {
    writing = true;
    while (queue.length > 0) {
      const group = queue;
      queue = [];
      try {
        const counts = await writeGroup(group.map((g) => g.rows));
        for (const [i, g] of group.entries()) g.resolve(counts[i] ?? 0);
      } catch {
        // One bad batch must not fail the others: write each alone.
        for (const g of group) await writeGroup([g.rows]).then(([n]) => g.resolve(n ?? 0), g.reject);
      }
    }
    writing = false;
  }

  /** Writes batches in one transaction: raw samples (a sample stored before is ignored) and their rollups. */
  function writeGroup(batches: Row[][]): Promise<number[]> {
    return db.transaction().execute(async (trx) => {
      const fresh: Row[] = [];
      const counts: number[] = [];
      for (const rows of batches) {
        let count = 0;
        for (let i = 0; i < rows.length; i += CHUNK) {
          const inserted = await trx
            .insertInto('metric_samples')
            .values(rows.slice(i, i + CHUNK))
            .onConflict((oc) => oc.columns(['vm_key', 'metric', 'time']).doNothing())
            .returning(['vm_key', 'metric', 'time', 'value'])
            .execute();
          fresh.push(...(inserted as Row[]));
          count += inserted.length;
        }
        counts.push(count);
      }
      const rollups = new Map<
        string,
        { vm_key: string; metric: string; minute: number; count: number; sum: number; min: number; max: number }
      >();
      for (const row of fresh) {
        const minute = Math.floor(row.time / MINUTE_MS) * MINUTE_MS;
        const key = `${row.vm_key}\0${row.metric}\0${minute}`;
        const r = rollups.get(key);
        if (r) {
          r.count++;
          r.sum += row.value;
          r.min = Math.min(r.min, row.value);
          r.max = Math.max(r.max, row.value);
        } else {
          rollups.set(key, {
            vm_key: row.vm_key,
            metric: row.metric,
            minute,
            count: 1,
            sum: row.value,
            min: row.value,
            max: row.value,
          });
        }
      }
      const all = [...rollups.values()];
      for (let i = 0; i < all.length; i += CHUNK) {
        await trx
          .insertInto('metric_rollups')
          .values(all.slice(i, i + CHUNK))
          .onConflict((oc) =>
            oc.columns(['vm_key', 'metric', 'minute']).doUpdateSet({
              count: sql`metric_rollups.count + excluded.count`,
              sum: sql`metric_rollups.sum + excluded.sum`,
              min: sql`CASE WHEN excluded.min < metric_rollups.min THEN excluded.min ELSE metric_rollups.min END`,
              max: sql`CASE WHEN excluded.max > metric_rollups.max THEN excluded.max ELSE metric_rollups.max END`,
            }),
          )
          .execute();
      }
      return counts;
    });
  }

  /**
   * The aggregates of one VM's metric in intervals of `intervalMs` from `start` (inclusive) to `end` (exclusive),
   * one bucket per interval (empty ones with count 0). Intervals of a minute or more are computed from the rollups
   * (whole minutes only), shorter ones from the raw samples.
   */
  async function series(
    vmKey: string,
    metric: string,
    range: { start: number; end: number; intervalMs: number },
  ): Promise<MetricBucket[]> {
    const { start, end, intervalMs } = range;
    const buckets: MetricBucket[] = [];
    for (let t = start; t < end; t += intervalMs) buckets.push({ time: t, count: 0, sum: 0, min: 0, max: 0 });
    const add = (time: number, count: number, sum: number, min: number, max: number) => {
      const b = buckets[Math.floor((time - start) / intervalMs)];
      if (!b) return;
      if (b.count === 0) {
        b.min = min;
        b.max = max;
      } else {
        b.min = Math.min(b.min, min);
        b.max = Math.max(b.max, max);
      }
      b.count += count;
      b.sum += sum;
    };
    if (intervalMs >= MINUTE_MS) {
      const rows = await db
        .selectFrom('metric_rollups')
        .select(['minute', 'count', 'sum', 'min', 'max'])
        .where('vm_key', '=', vmKey)
        .where('metric', '=', metric)
        .where('minute', '>=', start)
        .where('minute', '<', end)
        .execute();
      for (const r of rows) add(Number(r.minute), Number(r.count), r.sum, r.min, r.max);
    } else {
      const rows = await db
        .selectFrom('metric_samples')
        .select(['time', 'value'])
        .where('vm_key', '=', vmKey)
        .where('metric', '=', metric)
        .where('time', '>=', start)
        .where('time', '<', end)
        .execute();
      for (const r of rows) add(Number(r.time), 1, r.value, r.value, r.value);
    }
    return buckets;
  }

  /**
   * The aggregate of one metric over [start, end) for every VM with samples in it: from the rollups when both ends
   * fall on whole minutes (so a rule over 1,000 hosts reads a few rows each), else from the raw samples.
   */
  async function windowAggregates(metric: string, start: number, end: number): Promise<Map<string, MetricBucket>> {
    const fromRollups = start % MINUTE_MS === 0 && end % MINUTE_MS === 0;
    const rows = fromRollups
      ? await db
          .selectFrom('metric_rollups')
          .select((eb) => [
            'vm_key',
            eb.fn.sum<number>('count').as('count'),
            eb.fn.sum<number>('sum').as('sum'),
            eb.fn.min<number>('min').as('min'),
            eb.fn.max<number>('max').as('max'),
          ])
          .where('metric', '=', metric)
          .where('minute', '>=', start)
          .where('minute', '<', end)
          .groupBy('vm_key')
          .execute()
      : await db
          .selectFrom('metric_samples')
          .select((eb) => [
            'vm_key',
            eb.fn.countAll<number>().as('count'),
            eb.fn.sum<number>('value').as('sum'),
            eb.fn.min<number>('value').as('min'),
            eb.fn.max<number>('value').as('max'),
          ])
          .where('metric', '=', metric)
          .where('time', '>=', start)
          .where('time', '<', end)
          .groupBy('vm_key')
          .execute();
    const result = new Map<string, MetricBucket>();
    for (const r of rows) {
      result.set(r.vm_key, {
        time: start,
        count: Number(r.count),
        sum: Number(r.sum),
        min: Number(r.min),
        max: Number(r.max),
      });
    }
    return result;
  }

  /** Deletes raw samples and rollups older than their retention; returns how many rows went. */
  async function prune(now: number = Date.now()): Promise<{ samples: number; rollups: number }> {
    const samples = await db
      .deleteFrom('metric_samples')
      .where('time', '<', now - rawRetentionMs)
      .executeTakeFirst();
    const rollups = await db
      .deleteFrom('metric_rollups')
      .where('minute', '<', now - rollupRetentionMs)
      .executeTakeFirst();
    return { samples: Number(samples.numDeletedRows), rollups: Number(rollups.numDeletedRows) };
  }

  return { ingest, series, windowAggregates, prune, rawRetentionMs, rollupRetentionMs };
}

export type MetricsStore = ReturnType<typeof createMetricsStore>;

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { MetricSample } from '../watcher/agent-protocol.js';

/**
 * Host metrics from /proc, with Azure's names and meaning for a VM: per interval, `Network In Total` and
 * `Network Out Total` (bytes on every NIC but loopback), `Network Packets In`/`Out` (tripcap's own), `Percentage CPU`
 * (busy share of all CPUs) and `Available Memory Bytes` (MemAvailable). Counters are read as deltas per NIC, so a
 * NIC that appears or a counter that goes back (a NIC recreated) adds nothing that interval rather than a spike.
 */

export interface NicCounters {
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
}

/** `/proc/net/dev`: counters of every interface but `lo`. */
export function parseNetDev(text: string): Map<string, NicCounters> {
  const nics = new Map<string, NicCounters>();
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    if (name === 'lo' || name === '' || name.includes('|')) continue;
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (f.length < 10 || f.some((n) => !Number.isFinite(n))) continue;
    nics.set(name, { rxBytes: f[0] ?? 0, rxPackets: f[1] ?? 0, txBytes: f[8] ?? 0, txPackets: f[9] ?? 0 });
  }
  return nics;
}

/** `/proc/stat`'s aggregate `cpu` line: jiffies busy and in all. */
export function parseCpuTimes(text: string): { busy: number; total: number } | null {
  const line = text.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) return null;
  // user nice system idle iowait irq softirq steal (guest time is counted in user already)
  const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
  if (f.length < 4 || f.some((n) => !Number.isFinite(n))) return null;
  const total = f.reduce((a, b) => a + b, 0);
  const idle = (f[3] ?? 0) + (f[4] ?? 0);
  return { busy: total - idle, total };
}

/** `/proc/meminfo`'s MemAvailable, in bytes. */
export function parseAvailableMemory(text: string): number | null {
  const m = /^MemAvailable:\s+(\d+)\s*kB/m.exec(text);
  return m ? Number(m[1]) * 1024 : null;
}

export interface HostMetricsReading {
  nics: Map<string, NicCounters>;
  cpu: { busy: number; total: number } | null;
  availableMemory: number | null;
}

/** The metric values over the interval between two readings. */
export function metricValues(previous: HostMetricsReading, current: HostMetricsReading): Record<string, number> {
  const sum = { rxBytes: 0, rxPackets: 0, txBytes: 0, txPackets: 0 };
  for (const [name, now] of current.nics) {
    const before = previous.nics.get(name);
    if (!before) continue;
    for (const key of Object.keys(sum) as Array<keyof NicCounters>) {
      const delta = now[key] - before[key];
      if (delta > 0) sum[key] += delta;
    }
  }
  const values: Record<string, number> = {
    'Network In Total': sum.rxBytes,
    'Network Out Total': sum.txBytes,
    'Network Packets In': sum.rxPackets,
    'Network Packets Out': sum.txPackets,
  };
  if (previous.cpu && current.cpu) {
    const total = current.cpu.total - previous.cpu.total;
    const busy = current.cpu.busy - previous.cpu.busy;
    if (total > 0) values['Percentage CPU'] = Math.min(100, Math.max(0, (100 * busy) / total));
  }
  if (current.availableMemory !== null) values['Available Memory Bytes'] = current.availableMemory;
  return values;
}

export interface HostMetricsSamplerOptions {
  /** Where /proc is (tests point it at a fixture folder). */
  procRoot?: string;
}

/** Reads /proc each call; the first call only primes the counters and returns null. */
export function createHostMetricsSampler(options: HostMetricsSamplerOptions = {}) {
  const root = options.procRoot ?? '/proc';
  let previous: HostMetricsReading | null = null;

  async function read(): Promise<HostMetricsReading> {
    const [net, stat, meminfo] = await Promise.all(
      ['net/dev', 'stat', 'meminfo'].map((f) => readFile(join(root, f), 'utf8').catch(() => '')),
    );
    return {
      nics: parseNetDev(net ?? ''),
      cpu: parseCpuTimes(stat ?? ''),
      availableMemory: parseAvailableMemory(meminfo ?? ''),
    };
  }

  return {
    async sample(time: Date = new Date()): Promise<MetricSample | null> {
      const current = await read();
      const before = previous;
      previous = current;
      return before ? { time: time.toISOString(), values: metricValues(before, current) } : null;
    },
  };
}

/**
 * Samples waiting to be sent, oldest first, bounded: while the server is away the oldest are dropped beyond `max`
 * (600, ten minutes at one a second). A batch leaves only when the server took it (`ack`).
 */
export function createSampleOutbox(max = 600) {
  let samples: MetricSample[] = [];
  let dropped = 0;
  return {
    push(sample: MetricSample) {
      samples.push(sample);
      if (samples.length > max) {
        dropped += samples.length - max;
        samples.splice(0, samples.length - max);
      }
    },
    /** The oldest `size` samples, still kept until acknowledged. */
    next(size: number): MetricSample[] {
      return samples.slice(0, size);
    },
    ack(batch: readonly MetricSample[]) {
      const sent = new Set(batch);
      samples = samples.filter((s) => !sent.has(s));
    },
    get size() {
      return samples.length;
    },
    /** Samples dropped unsent since the start, for the log. */
    get dropped() {
      return dropped;
    },
  };
}

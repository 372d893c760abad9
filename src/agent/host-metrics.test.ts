import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  createHostMetricsSampler,
  createSampleOutbox,
  parseAvailableMemory,
  parseCpuTimes,
  parseNetDev,
} from './host-metrics.js';

const netDev = (
  eth0: [number, number, number, number],
  extra = '',
) => `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 9000000     900    0    0    0     0          0         0  9000000     900    0    0    0     0       0          0
  eth0: ${eth0[0]} ${eth0[1]}    0    0    0     0          0         0 ${eth0[2]} ${eth0[3]}    0    0    0     0       0          0
${extra}`;

const stat = (busy: number, idle: number) =>
  `cpu  ${busy} 0 0 ${idle} 0 0 0 0 0 0\ncpu0 ${busy} 0 0 ${idle} 0 0 0 0 0 0\nintr 1 2 3\n`;
const meminfo = 'MemTotal:        8000000 kB\nMemFree:         1000000 kB\nMemAvailable:    4000000 kB\n';

describe('host metrics from /proc', () => {
  it('parses /proc/net/dev without loopback', () => {
    const nics = parseNetDev(netDev([1000, 10, 2000, 20]));
    expect([...nics.keys()]).toEqual(['eth0']);
    expect(nics.get('eth0')).toEqual({ rxBytes: 1000, rxPackets: 10, txBytes: 2000, txPackets: 20 });
  });

  it('parses /proc/stat and /proc/meminfo', () => {
    expect(parseCpuTimes(stat(300, 700))).toEqual({ busy: 300, total: 1000 });
    expect(parseAvailableMemory(meminfo)).toBe(4_000_000 * 1024);
    expect(parseCpuTimes('nothing')).toBeNull();
  });

  it('samples deltas over each interval, Azure names, a new NIC adding nothing at first', async () => {
    const root = await mkdtemp(join(tmpdir(), 'tripcap-proc-'));
    try {
      await mkdir(join(root, 'net'));
      const write = async (eth0: [number, number, number, number], busy: number, idle: number, extra = '') => {
        await writeFile(join(root, 'net/dev'), netDev(eth0, extra));
        await writeFile(join(root, 'stat'), stat(busy, idle));
        await writeFile(join(root, 'meminfo'), meminfo);
      };
      const sampler = createHostMetricsSampler({ procRoot: root });
      await write([1000, 10, 2000, 20], 100, 900);
      expect(await sampler.sample()).toBeNull();
      const eth1 = '  eth1: 5000 5 0 0 0 0 0 0 7000 7 0 0 0 0 0 0';
      await write([4000, 13, 2500, 21], 125, 975, eth1);
      const sample = await sampler.sample(new Date('2026-11-29T10:00:01Z'));
      expect(sample).toEqual({
        time: '2026-11-29T10:00:01.000Z',
        values: {
          'Network In Total': 3000,
          'Network Out Total': 500,
          'Network Packets In': 3,
          'Network Packets Out': 1,
          'Percentage CPU': 25,
          'Available Memory Bytes': 4_096_000_000,
        },
      });
      await write([4000, 13, 2500, 21], 125, 975, '  eth1: 6000 6 0 0 0 0 0 0 7000 7 0 0 0 0 0 0');
      const next = await sampler.sample();
      expect(next?.values['Network In Total']).toBe(1000);
      expect(next?.values['Percentage CPU']).toBeUndefined(); // no CPU time passed
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('keeps unsent samples, at most `max`, dropping the oldest, until the server takes them', () => {
    const outbox = createSampleOutbox(3);
    const sample = (i: number) => ({ time: new Date(i * 1000).toISOString(), values: { 'Network In Total': i } });
    for (let i = 0; i < 5; i++) outbox.push(sample(i));
    expect(outbox.size).toBe(3);
    expect(outbox.dropped).toBe(2);
    const batch = outbox.next(2);
    expect(batch.map((s) => s.values['Network In Total'])).toEqual([2, 3]);
    outbox.push(sample(5)); // sampled while the batch was on its way
    expect(outbox.size).toBe(3); // 3, 4, 5: sample 2, in flight, was dropped for room
    outbox.ack(batch);
    expect(outbox.next(10).map((s) => s.values['Network In Total'])).toEqual([4, 5]);
  });
});

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsSkipReason, sendUdp } from '../netns.js';
import { CLI, createE2eEnv, type E2eEnv, poll, VM_ID, VM_NAME } from './harness.js';

/*
 * Host metrics end to end: the real agent in network namespace A samples /proc/net/dev every second and ships
 * batches to the real server; 2 MB of UDP from namespace B to A must show in A's `Network In Total`, queried in
 * Azure Monitor's shape, and in `tripcap metrics`. Needs root (namespaces); skipped with the reason otherwise.
 */

const execFileAsync = promisify(execFile);
const skipReason = netnsSkipReason();

const PAYLOAD = 1000;
const DATAGRAMS = 2000;
/** Bytes B sends: payloads only (the veth adds 42 bytes of headers to each, which count too). */
const SENT = PAYLOAD * DATAGRAMS;

interface MetricsBody {
  interval: string;
  value: Array<{ name: { value: string }; timeseries: Array<{ data: Array<{ timeStamp: string; total?: number }> }> }>;
}

describe.skipIf(skipReason !== undefined)(
  `host metrics end to end: agent in a namespace, real traffic${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let env: E2eEnv;

    /** The VM's data NIC's receive counters as the kernel reports them (ip -s link). */
    async function dataNicReceived() {
      const { stdout } = await env.hosts.exec(env.vm.ns, ['cat', '/proc/net/dev']);
      const line = stdout.split('\n').find((l) => l.trim().startsWith(`${env.vm.ifname}:`)) ?? '';
      const f = line.split(':')[1]?.trim().split(/\s+/).map(Number) ?? [];
      return { bytes: f[0] ?? 0, packets: f[1] ?? 0, drops: f[3] ?? 0 };
    }

    beforeAll(async () => {
      env = await createE2eEnv();
    }, 60_000);
    afterAll(async () => {
      await env?.destroy();
    });

    it("counts 2 MB of UDP from the peer in the VM's Network In Total over that minute", async ({ onTestFailed }) => {
      onTestFailed(() => console.error(env.logs()));
      // The agent's first batch of samples shows that it is sampling: traffic from now on counts.
      const first = Date.now() - 60_000;
      await poll(
        'the first batch of host metrics',
        async () => {
          const path = `${VM_ID}/providers/microsoft.insights/metrics?metricnames=Network%20In%20Total&aggregation=Count&interval=PT1S&timespan=${new Date(first).toISOString()}/PT2M`;
          const reply = await env.api.call<MetricsBody>('GET', path);
          const counts = reply.body.value?.[0]?.timeseries[0]?.data.map((d) => (d as { count?: number }).count ?? 0);
          return counts?.some((c) => c > 0) ? true : undefined;
        },
        { timeoutMs: 15_000, intervalMs: 250 },
      );
      const start = Math.floor(Date.now() / 60_000) * 60_000;
      const before = await dataNicReceived();
      // Paced (a datagram a millisecond or so), so that the veth backlog drops none of them.
      await sendUdp(env.peer, { to: env.vm.ip, port: 9, count: DATAGRAMS, size: PAYLOAD, intervalMs: 1 });
      const sentAt = Date.now();
      const after = await dataNicReceived();
      const end = (Math.floor(sentAt / 60_000) + 1) * 60_000;
      const timespan = `${new Date(start).toISOString()}/${new Date(end).toISOString()}`;
      const path = `${VM_ID}/providers/microsoft.insights/metrics?api-version=2018-01-01&metricnames=Network%20In%20Total,Network%20Packets%20In&aggregation=Total&interval=PT1M&timespan=${timespan}`;

      // The sample of the last second of traffic reaches the server with the next batch (every 5 s).
      const body = await poll(
        'Network In Total to account for the UDP burst',
        async () => {
          const reply = await env.api.call<MetricsBody>('GET', path);
          if (reply.status !== 200) throw new Error(`HTTP ${reply.status} ${JSON.stringify(reply.body)}`);
          const bytesIn = reply.body.value[0]?.timeseries[0]?.data.reduce((n, d) => n + (d.total ?? 0), 0) ?? 0;
          if (bytesIn >= Math.max(SENT, after.bytes - before.bytes) && Date.now() > sentAt + 1_500) return reply.body;
          throw new Error(
            `Network In Total so far: ${JSON.stringify(reply.body.value[0]?.timeseries)}; kernel: ${JSON.stringify({ before, after })}`,
          );
        },
        { timeoutMs: 20_000, intervalMs: 500 },
      );
      const [bytesIn, packetsIn] = body.value.map((m) => m.timeseries[0]?.data.reduce((n, d) => n + (d.total ?? 0), 0));
      expect(body.interval).toBe('PT1M');
      expect(bytesIn).toBeGreaterThanOrEqual(SENT);
      expect(packetsIn).toBeGreaterThanOrEqual(DATAGRAMS);
      // The burst is all the host received but the agent's own HTTPS calls: well under twice the bytes.
      expect(bytesIn).toBeLessThan(2 * SENT);

      // The CLI sees the same, with its chart.
      const { stdout } = await execFileAsync(process.execPath, [
        CLI,
        'metrics',
        ...['--vm', VM_NAME, '--metric', 'Network In Total', '--timespan', timespan],
        ...['--server', env.serverUrl, '--token', env.adminToken, '--ca', `${env.dir}/server-cert.pem`],
      ]);
      expect(stdout).toContain('Network In Total (Bytes, Total per PT1M)');
      expect(stdout).toMatch(/\|[ ▁▂▃▄▅▆▇█]+\|/);
      expect(stdout).toMatch(/peak [\d.]+ MiB/);
    });
  },
);

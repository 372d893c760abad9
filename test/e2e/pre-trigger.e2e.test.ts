import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PreTriggerReport } from '../../src/watcher/agent-protocol.js';
import { netnsSkipReason, sendUdp } from '../netns.js';
import { startWebhookReceiver } from '../webhook-receiver.js';
import {
  alertToCapture,
  type CaptureStatus,
  createE2eEnv,
  type E2eEnv,
  poll,
  readPackets,
  sequenceNumbers,
  VM_ID,
} from './harness.js';

/*
 * Issue 6's promise end to end: the VM's flight recorder runs; a burst starts at T; a metric alert fires well after
 * T (a PT30S window of Minimum > X can only hold once the burst has filled a whole window: Δ ≥ 37 s); the action
 * group calls capture-on-alert, which asks for the time since the alert's window began (and one window more); the
 * agent cuts that from its ring and joins it to the live capture. The stored file holds the burst's first packet.
 */

const execFileAsync = promisify(execFile);
const skipReason = netnsSkipReason();
const BURST_PORT = 9;

type Status = CaptureStatus & { preTrigger?: PreTriggerReport };

describe.skipIf(skipReason !== undefined)(
  `flight recorder → pre-trigger captures${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let env: E2eEnv;
    let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
    let agentStarted = 0;

    beforeAll(async () => {
      receiver = await startWebhookReceiver();
      process.env.TRIPCAP_NOTIFY_WEBHOOKS = `${receiver.url}/notify`;
      process.env.TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS = '5';
      process.env.TRIPCAP_CAPTURE_POLL_SECONDS = '1';
      env = await createE2eEnv();
      agentStarted = Date.now();
      const recorder = await env.api.call('PUT', `${VM_ID}/flightRecorder/default?api-version=2024-07-01`, {
        properties: { enabled: true, maxBytes: 64_000_000 },
      });
      expect(recorder.status, JSON.stringify(recorder.body)).toBe(200);
      await poll(
        'the flight recorder running',
        async () => {
          const got = await env.api.call<{ properties: { status: { state: string } | null } }>(
            'GET',
            `${VM_ID}/flightRecorder/default?api-version=2024-07-01`,
          );
          return got.body.properties.status?.state === 'Running' ? true : undefined;
        },
        { timeoutMs: 20_000 },
      );
    }, 60_000);
    afterAll(async () => {
      receiver?.close();
      await env?.destroy();
      for (const name of [
        'TRIPCAP_NOTIFY_WEBHOOKS',
        'TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS',
        'TRIPCAP_CAPTURE_POLL_SECONDS',
      ])
        delete process.env[name];
    });

    it('a capture with preTriggerSeconds holds the numbered packets sent before it started, none missing or repeated', async ({
      onTestFailed,
    }) => {
      onTestFailed(() => console.error(env.logs()));
      const stream = sendUdp(env.vm, { to: env.peer.ip, port: 7001, count: 3000, size: 200, intervalMs: 2 });
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await env.api.createCapture('pre', {
        preTriggerSeconds: 2,
        timeLimitInSeconds: 4,
        filters: [{ protocol: 'UDP', remotePort: '7001' }],
        fileFormat: 'pcapng',
        comment: 'made by the pre-trigger e2e test',
      });
      const running = await env.api.waitUntilRunning('pre');
      await stream;
      const ended = (await env.api.waitUntilEnded('pre', { timeoutMs: 30_000 })) as Status;
      expect(ended.preTrigger).toMatchObject({ requestedSeconds: 2, seam: 'matched' });
      expect(ended.preTrigger?.coveredSeconds).toBeGreaterThanOrEqual(2);
      expect(ended.preTrigger?.packets).toBeGreaterThan(100);

      const path = `${env.dir}/pre.pcapng`;
      await writeFile(path, (await env.api.bytes(new URL(ended.files[0]?.downloadUrl ?? '').pathname)).body);
      const numbers = sequenceNumbers(await readPackets(path));
      const gaps = numbers.slice(1).filter((n, i) => n !== (numbers[i] as number) + 1);
      expect(gaps).toEqual([]);
      expect(numbers.length).toBeGreaterThan(ended.preTrigger?.packets ?? 0);
      // The first packet is from about two seconds before the capture started.
      const { stdout } = await execFileAsync('capinfos', ['-a', '-S', '-k', path]);
      const first = Number(/First packet time:\s+([\d.]+)/.exec(stdout)?.[1]) * 1000;
      const start = Date.parse(running.captureStartTime ?? '');
      expect(start - first).toBeGreaterThan(1500);
      expect(start - first).toBeLessThan(2500);
      expect(stdout).toContain('made by the pre-trigger e2e test');
      expect(stdout).toMatch(/Capture comment:\s+parameters: \{.*"preTriggerSeconds":2/);
    }, 60_000);

    it('an alert that fires ≥ 30 s after a burst began gets a capture holding the burst’s first packet', async ({
      onTestFailed,
    }) => {
      onTestFailed(() => console.error(env.logs()));
      // Every second of a whole PT30S window above 100 kB out: true only once the burst has lasted a window.
      await alertToCapture(env, {
        name: 'sustained',
        windowSize: 'PT30S',
        evaluationFrequency: 'PT10S',
        timeAggregation: 'Minimum',
        threshold: 100_000,
      });

      // Every window must hold quiet seconds before the burst: a window of seconds the agent did not sample (it was
      // starting) would let Minimum hold early.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, agentStarted + 35_000 - Date.now())));
      const burstStart = Date.now();
      const burst = sendUdp(env.vm, { to: env.peer.ip, port: BURST_PORT, count: 60_000, size: 1000, intervalMs: 1 });
      let notice: { alert: { firedAt: string }; capture: { name: string; files: Array<{ url: string }> } };
      try {
        notice = (await poll(
          'the notification',
          async () =>
            receiver.posts.find((p) => (p.body as { alert?: { ruleName?: string } }).alert?.ruleName === 'sustained')
              ?.body,
          { timeoutMs: 120_000, intervalMs: 500 },
        )) as typeof notice;
      } finally {
        await burst.catch(() => {});
      }
      const fired = Date.parse(notice.alert.firedAt);
      expect(fired - burstStart).toBeGreaterThanOrEqual(30_000);

      const status = (await env.api.queryStatus(notice.capture.name)) as Status;
      expect(status.preTrigger?.seam).toBe('matched');
      const path = `${env.dir}/alert.cap`;
      await writeFile(path, (await env.api.bytes(new URL(notice.capture.files[0]?.url ?? '').pathname)).body);
      // The burst's first datagram (seq=0) is in the file, within 1 s of the moment the burst began.
      const { stdout } = await execFileAsync('tshark', [
        '-r',
        path,
        '-Y',
        `udp.dstport == ${BURST_PORT} && udp.payload[0:6] == 73:65:71:3d:30:3b`,
        '-T',
        'fields',
        '-e',
        'frame.time_epoch',
      ]);
      const firstPacket = Number(stdout.trim().split('\n')[0]) * 1000;
      expect(Math.abs(firstPacket - burstStart)).toBeLessThan(1000);
      const capinfos = await execFileAsync('capinfos', ['-k', path]);
      expect(capinfos.stdout).toMatch(/Capture comment:.*"alertRule"\s*:\s*"sustained"/s);
    }, 180_000);

    it('an agent killed during a pre-trigger capture comes back and still joins the ring part to the live part', async ({
      onTestFailed,
    }) => {
      onTestFailed(() => console.error(env.logs()));
      const stream = sendUdp(env.vm, { to: env.peer.ip, port: 7002, count: 3000, size: 200, intervalMs: 2 });
      await new Promise((resolve) => setTimeout(resolve, 3000));
      await env.api.createCapture('crash', {
        preTriggerSeconds: 2,
        timeLimitInSeconds: 120,
        filters: [{ protocol: 'UDP', remotePort: '7002' }],
      });
      await env.api.waitUntilRunning('crash');
      // The ring's part is cut once the live capture listens; the heartbeat then shows it.
      await env.api.waitForStatus('crash', 'the ring cut', (s) => (s as Status).preTrigger !== undefined, 15_000);
      await env.agent?.kill('SIGKILL');
      await stream;
      await env.startAgent();
      const ended = (await env.api.waitUntilEnded('crash', { timeoutMs: 40_000 })) as Status;
      expect(ended).toMatchObject({ packetCaptureStatus: 'Error', stopReason: 'AgentStopped' });
      const path = `${env.dir}/crash.cap`;
      await writeFile(path, (await env.api.bytes(new URL(ended.files[0]?.downloadUrl ?? '').pathname)).body);
      const numbers = sequenceNumbers(await readPackets(path));
      // From before the capture's start to the end of the stream (the orphaned tcpdump ran on), none missing or twice.
      expect(numbers.slice(1).filter((n, i) => n !== (numbers[i] as number) + 1)).toEqual([]);
      expect(numbers.at(-1)).toBe(2999);
      expect(numbers.length).toBeGreaterThan(2000);
    }, 90_000);
  },
);

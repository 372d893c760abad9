import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { netnsSkipReason, sendUdp } from '../netns.js';
import { startWebhookReceiver } from '../webhook-receiver.js';
import { alertToCapture, CLI, createE2eEnv, type E2eEnv, poll, VM_ID } from './harness.js';

/*
 * The whole workflow, as in Azure's tutorial but self-hosted: a sustained UDP stream from the VM (agent in network
 * namespace A) fires a PT10S metric alert rule; its action group calls the capture-on-alert function (an Azure
 * Function receiver pointing at this server's /api/capture-on-alert with a function key); the function captures the
 * VM with tcpdump for 5 s; the file is stored and analysed; a webhook run by this test gets the notification with the
 * file's SHA-256 and the report's findings. Needs root; skipped with the reason otherwise.
 */

const execFileAsync = promisify(execFile);
const skipReason = netnsSkipReason();

interface Notification {
  vm: string;
  stopReason: string;
  jobId: string;
  alert: { source: string; ruleName: string; condition: string };
  capture: {
    name: string;
    status: string;
    stopReason: string;
    files: Array<{ url: string; size: number; sha256: string }>;
  };
  findings: string[];
}

describe.skipIf(skipReason !== undefined)(
  `alert → action group → capture-on-alert → capture → notification${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let env: E2eEnv;
    let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
    const notifications = () => receiver.posts.map((p) => p.body as Notification);

    beforeAll(async () => {
      receiver = await startWebhookReceiver();
      // The server (a child process) reads the function's settings from its environment, as an Azure Function does.
      process.env.TRIPCAP_NOTIFY_WEBHOOKS = `${receiver.url}/notify`;
      process.env.TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS = '5';
      process.env.TRIPCAP_CAPTURE_POLL_SECONDS = '1';
      env = await createE2eEnv();
    }, 60_000);
    afterAll(async () => {
      receiver?.close();
      await env?.destroy();
    });

    it('captures the VM that alerted and tells the webhook, with the file and what the traffic was', async ({
      onTestFailed,
    }) => {
      onTestFailed(() => console.error(env.logs()));
      await alertToCapture(env, {
        name: 'outbound',
        windowSize: 'PT10S',
        evaluationFrequency: 'PT10S',
        timeAggregation: 'Total',
        threshold: 1_000_000,
      });

      // About 1 MB/s from the VM to its peer for 40 s: the alert fires, and the capture still sees the stream.
      const stream = sendUdp(env.vm, { to: env.peer.ip, port: 9, count: 40_000, size: 1000, intervalMs: 1 });
      try {
        await poll('the notification', async () => (notifications().length > 0 ? true : undefined), {
          timeoutMs: 90_000,
          intervalMs: 500,
        });
      } finally {
        await stream;
      }
      expect(notifications()).toHaveLength(1);
      const [notice] = notifications() as [Notification];
      expect(notice).toMatchObject({
        vm: VM_ID,
        alert: { source: 'azure-common', ruleName: 'outbound', condition: 'Fired' },
        // The function stopped it TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS after the alert fired (no firing since).
        stopReason: 'AlertQuiet',
        capture: { status: 'Stopped', stopReason: 'ManuallyStopped' },
      });
      expect(notice.findings.join(' ')).toMatch(new RegExp(env.peer.ip.replaceAll('.', '\\.')));

      // The file the notification names is the stored one, byte for byte, and tshark's capinfos reads it.
      const file = notice.capture.files[0];
      expect(file?.sha256).toMatch(/^[0-9a-f]{64}$/);
      const download = (await env.api.bytes(new URL(file?.url ?? '').pathname)).body;
      expect(createHash('sha256').update(download).digest('hex')).toBe(file?.sha256);
      const path = `${env.dir}/notified.cap`;
      await writeFile(path, download);
      const { stdout } = await execFileAsync('capinfos', ['-c', '-M', path]);
      const packets = Number(/Number of packets:\s+(\d+)/.exec(stdout)?.[1]);
      expect(packets).toBeGreaterThan(1000);

      // The function's record, in the API and the CLI: one job, one capture, one notification.
      const jobs = await env.api.call<{
        value: Array<{ status: string; source: string; captureName: string; deliveries: number }>;
      }>('GET', '/tripcap/v1/functions/capture-on-alert/jobs');
      expect(jobs.body.value).toMatchObject([
        { status: 'Completed', source: 'azure-common', captureName: notice.capture.name, deliveries: 1 },
      ]);
      const cli = await execFileAsync(process.execPath, [
        CLI,
        'function',
        'jobs',
        ...['--server', env.serverUrl, '--token', env.adminToken, '--ca', `${env.dir}/server-cert.pem`],
      ]);
      expect(cli.stdout).toMatch(/azure-common\s+outbound \(Fired\)\s+vm1\s+Completed/);
    }, 150_000);
  },
);

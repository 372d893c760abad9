import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { alertSamples } from '../../test/alert-fixtures.js';
import {
  type ApiHarness,
  armPath,
  createApiHarness,
  pcapBytes,
  storageAccountId,
  vmId,
} from '../../test/api-harness.js';
import { startWebhookReceiver } from '../../test/webhook-receiver.js';
import { createLogger } from '../lib/logger.js';
import { createSmtpSender } from '../notify/email.js';
import { type CaptureFunctionSettings, captureNameFor, loadFunctionSettings } from './capture-function.js';
import { createLocalCaptureFunction } from './local.js';

/*
 * capture-on-alert over tripcap's real capture service (in-process watcher, SQLite), with a scripted agent that
 * runs each capture it is given, webhook receivers and an SMTP server run by the test.
 */

const VM = { id: vmId('rg1', 'vm1'), name: 'vm1', address: '10.0.0.4' };

async function startSmtp(): Promise<{ server: SMTPServer; port: number; mails: Array<{ to: string; text: string }> }> {
  const mails: Array<{ to: string; text: string }> = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    onData(stream, session, callback) {
      let text = '';
      stream.on('data', (c: Buffer) => {
        text += c.toString('utf8');
      });
      stream.on('end', () => {
        mails.push({ to: session.envelope.rcptTo.map((r) => r.address).join(','), text });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.server.address() as AddressInfo).port, mails };
}

describe('capture-on-alert', () => {
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  let smtp: Awaited<ReturnType<typeof startSmtp>>;
  let h: ApiHarness;
  let key: string;
  let agent: Awaited<ReturnType<ApiHarness['registerVm']>>;
  let stopAgent = false;
  let agentLoop: Promise<void>;

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    smtp = await startSmtp();
  });
  afterAll(async () => {
    receiver.close();
    await new Promise<void>((resolve) => smtp.server.close(() => resolve()));
  });

  function settings(overrides: Partial<CaptureFunctionSettings> = {}): CaptureFunctionSettings {
    return {
      ...loadFunctionSettings({
        TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: '30',
        TRIPCAP_CAPTURE_POLL_SECONDS: '1',
        TRIPCAP_CAPTURE_COOLDOWN_SECONDS: '0',
        TRIPCAP_NOTIFY_WEBHOOKS: `${receiver.url}/json slack:${receiver.url}/slack teams:${receiver.url}/teams`,
        TRIPCAP_NOTIFY_EMAIL: 'oncall@example.test',
      }),
      ...overrides,
    };
  }

  /** Runs every capture the server hands this agent: Running, a 3-packet file, Stopped (TimeExceeded). */
  async function runAgent() {
    while (!stopAgent) {
      const { json } = await agent.jobs(1);
      for (const job of json?.jobs ?? []) {
        if (job.type !== 'start') continue;
        const time = () => new Date().toISOString();
        await agent.status(job.jobId, { status: 'Running', time: time() });
        const pcap = pcapBytes(3);
        await agent.upload(job.jobId, 1, pcap, 3);
        await agent.status(job.jobId, {
          status: 'Stopped',
          time: time(),
          stopReason: 'TimeExceeded',
          errors: [],
          progress: { bytes: pcap.length, packets: 3 },
        });
      }
    }
  }

  async function start(overrides: Partial<CaptureFunctionSettings> = {}, withAgent = true) {
    h = await createApiHarness({
      functionSettings: settings(overrides),
      email: createSmtpSender({ host: '127.0.0.1', port: smtp.port, secure: false, from: 'tripcap@example.test' }),
    });
    agent = await h.registerVm({
      name: 'vm1',
      resourceGroup: 'rg1',
      location: 'westeurope',
      nics: [{ name: 'eth0', mac: '00:11:22:33:44:55', ipAddresses: [VM.address] }],
    });
    key = (await h.tokenFor('function')).token;
    stopAgent = !withAgent;
    agentLoop = withAgent ? runAgent() : Promise.resolve();
  }

  beforeEach(() => {
    receiver.posts.length = 0;
    smtp.mails.length = 0;
  });
  afterEach(async () => {
    stopAgent = true;
    await agentLoop;
    await h.close();
  });

  const post = (body: unknown, code: string | null = key) =>
    h.request({
      method: 'POST',
      url: `/api/capture-on-alert${code === null ? '' : `?code=${code}`}`,
      token: null,
      body,
    });
  const captureCount = async () => (await h.db.selectFrom('packet_captures').select('key').execute()).length;
  const jobs = () => h.db.selectFrom('capture_jobs').selectAll().orderBy('received_at').execute();

  it('each sample of every source: one capture on the right VM, then one notification per channel', async ({
    onTestFailed,
  }) => {
    await start();
    const steps: string[] = [];
    onTestFailed(async () => console.error(steps.join('\n'), JSON.stringify(await jobs(), null, 1)));
    const samples = alertSamples(VM);
    expect(samples.length).toBeGreaterThanOrEqual(7);
    for (const [i, sample] of samples.entries()) {
      const before = receiver.posts.length;
      steps.push(`${new Date().toISOString()} posting ${sample.name}`);
      const reply = await post(sample.body);
      expect(reply.status, `${sample.name}: ${reply.text}`).toBe(202);
      expect(reply.json.alerts).toMatchObject([{ outcome: 'Accepted' }]);
      await h.captureFunction.idle();
      steps.push(`${new Date().toISOString()} ${sample.name} done`);
      expect(await captureCount(), sample.name).toBe(i + 1);
      const job = (await jobs()).at(-1);
      expect(job, sample.name).toMatchObject({
        source: sample.source,
        status: 'Completed',
        vm_id: VM.id,
        deliveries: 1,
      });
      const captured = await h.db
        .selectFrom('packet_captures')
        .select(['name', 'target_key', 'status'])
        .where('name', '=', job?.capture_name ?? '')
        .executeTakeFirstOrThrow();
      expect(captured).toMatchObject({ target_key: VM.id.toLowerCase(), status: 'Stopped' });
      // One POST per webhook, one e-mail.
      expect(
        receiver.posts
          .slice(before)
          .map((p) => p.path)
          .sort(),
      ).toEqual(['/json', '/slack', '/teams']);
      expect(smtp.mails).toHaveLength(i + 1);
      expect(JSON.parse(job?.notifications ?? '[]').map((n: { status: string }) => n.status)).toEqual(
        Array(4).fill('Succeeded'),
      );
    }
    const json = receiver.posts.find((p) => p.path === '/json')?.body as {
      capture: { status: string; stopReason: string; files: Array<{ sha256: string; size: number }> };
      vm: string;
    };
    expect(json).toMatchObject({ vm: VM.id, capture: { status: 'Stopped', stopReason: 'TimeExceeded' } });
    expect(json.capture.files[0]?.sha256).toMatch(/^[0-9a-f]{64}$/);
    const slack = receiver.posts.find((p) => p.path === '/slack')?.body as { text: string; blocks: unknown[] };
    expect(slack.text).toMatch(/^Packet capture for alert '.+' on vm1: Stopped$/);
    const teams = receiver.posts.find((p) => p.path === '/teams')?.body as {
      attachments: Array<{ contentType: string }>;
    };
    expect(teams.attachments[0]?.contentType).toBe('application/vnd.microsoft.card.adaptive');
    expect(smtp.mails[0]?.to).toBe('oncall@example.test');
    expect(smtp.mails[0]?.text).toMatch(/Subject: Packet capture for alert/);
  });

  it('100 deliveries of the same alert within a second start one capture', async () => {
    await start({}, false);
    const [sample] = alertSamples(VM);
    const replies = await Promise.all(Array.from({ length: 100 }, () => post(sample?.body)));
    expect(replies.map((r) => r.status)).toEqual(Array(100).fill(202));
    expect(replies.filter((r) => r.json.alerts[0].outcome === 'Accepted')).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await captureCount()).toBe(1);
    const all = await jobs();
    expect(all).toHaveLength(1);
    expect(all[0]?.deliveries).toBe(100);
  });

  it('a second alert for a VM being captured is recorded as such', async () => {
    await start({ cooldownSeconds: 600 }, false);
    const [first, second] = alertSamples(VM);
    expect((await post(first?.body)).json.alerts[0].outcome).toBe('Accepted');
    const again = await post(second?.body);
    expect(again.status).toBe(202);
    expect(again.json.alerts[0]).toMatchObject({ outcome: 'AlreadyCapturing' });
    expect(again.json.alerts[0].message).toMatch(/vm1 is already being captured/);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await captureCount()).toBe(1);
  });

  it('no second capture of a VM within the cooldown after one ended', async () => {
    await start({ cooldownSeconds: 600 });
    const [first, second] = alertSamples(VM);
    expect((await post(first?.body)).json.alerts[0].outcome).toBe('Accepted');
    await h.captureFunction.idle();
    const again = await post(second?.body);
    expect(again.json.alerts[0]).toMatchObject({ outcome: 'CoolingDown' });
    expect(again.json.alerts[0].message).toMatch(/no second capture within 600 s/);
    expect(await captureCount()).toBe(1);
  });

  it('a VM someone else is capturing: no second capture, and people are told why', async () => {
    await start({}, false);
    const put = await h.request({
      method: 'PUT',
      url: armPath({ resourceGroup: 'NetworkWatcherRG', watcher: 'NetworkWatcher_westeurope', capture: 'by-hand' }),
      body: { properties: { target: VM.id, storageLocation: { storageId: storageAccountId() } } },
    });
    expect(put.status, put.text).toBe(201);
    const [sample] = alertSamples(VM);
    expect((await post(sample?.body)).json.alerts[0].outcome).toBe('Accepted');
    await h.captureFunction.idle();
    const [job] = await jobs();
    expect(job).toMatchObject({ status: 'AlreadyCapturing', capture_name: null });
    expect(job?.message).toMatch(/vm1 already has a capture running \(by-hand\)/);
    expect(await captureCount()).toBe(1);
    const notice = receiver.posts.find((p) => p.path === '/json')?.body as { error: { code: string }; capture: null };
    expect(notice).toMatchObject({ error: { code: 'AlreadyCapturing' }, capture: null });
    expect(smtp.mails[0]?.text).toMatch(/Subject: No packet capture for alert/);
  });

  it('refusals: unknown VM, not a VM, malformed JSON, over 256 KB, unknown payload; recorded, nothing created', async () => {
    await start({}, false);
    const [sample] = alertSamples(VM);
    const retarget = (id: string) => {
      const body = structuredClone(sample?.body) as {
        data: { essentials: { alertTargetIDs: string[]; alertId: string } };
      };
      body.data.essentials.alertTargetIDs = [id];
      body.data.essentials.alertId += id.length;
      return body;
    };
    const ghost = await post(retarget(vmId('rg1', 'ghost').toLowerCase()));
    expect(ghost.status).toBe(400);
    expect(ghost.json.error.code).toBe('TargetNotFound');
    const storage = await post(
      retarget(
        '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/rg1/providers/microsoft.storage/storageaccounts/s1',
      ),
    );
    expect(storage.status).toBe(400);
    expect(storage.json.error.code).toBe('TargetNotAVirtualMachine');
    const malformed = await h.request({
      method: 'POST',
      url: `/api/capture-on-alert?code=${key}`,
      token: null,
      payload: '{"schemaId": ',
      headers: { 'content-type': 'application/json' },
    });
    expect(malformed.status).toBe(400);
    expect(malformed.json.error.code).toBe('InvalidRequestFormat');
    const big = await h.request({
      method: 'POST',
      url: `/api/capture-on-alert?code=${key}`,
      token: null,
      payload: JSON.stringify({ padding: 'x'.repeat(300_000) }),
      headers: { 'content-type': 'application/json' },
    });
    expect(big.status).toBe(413);
    expect(big.json.error.message).toMatch(/262144 bytes/);
    const unknown = await post({ hello: 'world' });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.code).toBe('UnsupportedAlertPayload');

    expect(await captureCount()).toBe(0);
    const recorded = await jobs();
    expect(recorded.map((j) => [j.status, j.reason])).toEqual([
      ['Rejected', 'TargetNotFound'],
      ['Rejected', 'TargetNotAVirtualMachine'],
      ['Rejected', 'InvalidRequestFormat'],
      ['Rejected', 'RequestBodyTooLarge'],
      ['Rejected', 'UnsupportedAlertPayload'],
    ]);
  });

  it('a missing or wrong key is a 401; an API token is a 403: only function keys call the function', async () => {
    await start({}, false);
    const [sample] = alertSamples(VM);
    expect((await post(sample?.body, null)).status).toBe(401);
    expect((await post(sample?.body, `${key}x`)).status).toBe(401);
    // A valid API token is known but not a function key: refused, and it says so.
    const token = await post(sample?.body, h.adminToken);
    expect(token.status).toBe(403);
    expect(token.json.error.code).toBe('AuthorizationFailed');
    const header = await h.request({
      method: 'POST',
      url: '/api/capture-on-alert',
      token: null,
      body: sample?.body,
      headers: { 'x-functions-key': key },
    });
    expect(header.status).toBe(202);
  });

  it('a restart resumes a job mid-capture: the capture is followed to its end and notified once', async () => {
    await start({}, false);
    const [sample] = alertSamples(VM);
    expect((await post(sample?.body)).status).toBe(202);
    const { json } = await agent.jobs(2);
    const started = json.jobs[0];
    await agent.status(started.jobId, { status: 'Running', time: new Date().toISOString() });
    // The process ends while the function follows the capture.
    await h.captureFunction.close();
    expect((await jobs())[0]?.status).toBe('Capturing');

    // A new process over the same database: it picks the job up where it was.
    const again = createLocalCaptureFunction({
      db: h.db,
      captures: h.captures,
      logger: createLogger({ level: 'silent' }),
      settings: settings(),
    });
    expect(await again.resume()).toBe(1);
    const pcap = pcapBytes(3);
    await agent.upload(started.jobId, 1, pcap, 3);
    await agent.status(started.jobId, {
      status: 'Stopped',
      time: new Date().toISOString(),
      stopReason: 'TimeExceeded',
      errors: [],
      progress: { bytes: pcap.length, packets: 3 },
    });
    await again.idle();
    const [job] = await jobs();
    expect(job).toMatchObject({ status: 'Completed', deliveries: 1 });
    expect(await captureCount()).toBe(1);
    expect(receiver.posts.map((p) => p.path).sort()).toEqual(['/json', '/slack', '/teams']);
    await again.close();
  });

  it('Resolved stops the capture when so configured', async () => {
    await start({ stopOnResolved: true }, false);
    const [sample] = alertSamples(VM);
    expect((await post(sample?.body)).status).toBe(202);
    // Let the scripted agent start it but never end it.
    const { json } = await agent.jobs(2);
    const started = json.jobs[0];
    await agent.status(started.jobId, { status: 'Running', time: new Date().toISOString() });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const resolved = structuredClone(sample?.body) as { data: { essentials: { monitorCondition: string } } };
    resolved.data.essentials.monitorCondition = 'Resolved';
    const reply = await post(resolved);
    expect(reply.json.alerts[0]).toMatchObject({ outcome: 'Recorded' });
    const stop = await agent.jobs(2);
    expect(stop.json.jobs).toEqual([{ type: 'stop', jobId: started.jobId }]);
  });
});

describe('capture names', () => {
  it('are unique per job and valid ARM names', () => {
    const name = captureNameFor('High CPU / web tier (prod)!', '8f3c2a1b-aaaa', new Date('2026-11-29T22:15:00Z'));
    expect(name).toBe('alert-High-CPU-web-tier-prod-20261129T221500-8f3c2a1b');
    expect(name.length).toBeLessThanOrEqual(80);
    expect(captureNameFor('', 'abcdef12')).toMatch(/^alert-alert-\d{8}T\d{6}-abcdef12$/);
  });
});

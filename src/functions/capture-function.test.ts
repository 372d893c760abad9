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
import {
  captureCommentFor,
  captureNameFor,
  endReason,
  FALLBACK_PRE_TRIGGER_SECONDS,
  loadFunctionSettings,
  PRE_TRIGGER_MARGIN_SECONDS,
  preTriggerSecondsFor,
} from './capture-function.js';
import { createLocalCaptureFunction } from './local.js';
import type { IncomingAlert } from './types.js';

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

  /** The function's settings as the environment gives them; `env` adds to or overrides the tests' own. */
  function settings(env: Record<string, string> = {}) {
    return loadFunctionSettings({
      TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: '30',
      TRIPCAP_CAPTURE_POLL_SECONDS: '1',
      TRIPCAP_CAPTURE_COOLDOWN_SECONDS: '0',
      TRIPCAP_NOTIFY_WEBHOOKS: `${receiver.url}/json slack:${receiver.url}/slack teams:${receiver.url}/teams`,
      TRIPCAP_NOTIFY_EMAIL: 'oncall@example.test',
      ...env,
    });
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

  /**
   * Runs captures as a real agent does: Running until the server asks it to stop (ManuallyStopped) or its time
   * limit ends it (TimeExceeded); then a 3-packet file and Stopped.
   */
  async function runLiveAgent() {
    const running = new Map<string, NodeJS.Timeout>();
    const finish = async (jobId: string, stopReason: string) => {
      if (!running.has(jobId)) return;
      clearTimeout(running.get(jobId));
      running.delete(jobId);
      const pcap = pcapBytes(3);
      await agent.upload(jobId, 1, pcap, 3);
      await agent.status(jobId, {
        status: 'Stopped',
        time: new Date().toISOString(),
        stopReason,
        errors: [],
        progress: { bytes: pcap.length, packets: 3 },
      });
    };
    while (!stopAgent) {
      const { json } = await agent.jobs(1);
      for (const job of json?.jobs ?? []) {
        if (job.type === 'start') {
          await agent.status(job.jobId, { status: 'Running', time: new Date().toISOString() });
          running.set(
            job.jobId,
            setTimeout(() => void finish(job.jobId, 'TimeExceeded'), job.timeLimitSeconds * 1000),
          );
        } else if (job.type === 'stop') {
          await finish(job.jobId, 'ManuallyStopped');
        }
      }
    }
    for (const timer of running.values()) clearTimeout(timer);
  }

  /** The PUT bodies the capture service received (the local adapter's createCapture). */
  let puts: Array<{ properties: Record<string, unknown> }> = [];

  /** A harness with the function's settings from `env`, and an agent: instant (captures end at once), live, or none. */
  async function start(env: Record<string, string> = {}, agentKind: 'instant' | 'live' | 'none' = 'instant') {
    h = await createApiHarness({
      functionSettings: settings(env),
      email: createSmtpSender({ host: '127.0.0.1', port: smtp.port, secure: false, from: 'tripcap@example.test' }),
    });
    puts = [];
    const create = h.captures.createCapture;
    h.captures.createCapture = async (ref, body) => {
      puts.push(body as (typeof puts)[number]);
      return create(ref, body);
    };
    agent = await h.registerVm({
      name: 'vm1',
      resourceGroup: 'rg1',
      location: 'westeurope',
      nics: [{ name: 'eth0', mac: '00:11:22:33:44:55', ipAddresses: [VM.address] }],
    });
    key = (await h.tokenFor('function')).token;
    stopAgent = agentKind === 'none';
    agentLoop = agentKind === 'instant' ? runAgent() : agentKind === 'live' ? runLiveAgent() : Promise.resolve();
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
    await start({}, 'none');
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

  it('a second alert for a VM being captured extends that capture, and is recorded as Extended', async () => {
    await start({ TRIPCAP_CAPTURE_COOLDOWN_SECONDS: '600' }, 'none');
    const [first, second] = alertSamples(VM);
    const accepted = (await post(first?.body)).json.alerts[0];
    expect(accepted.outcome).toBe('Accepted');
    const again = await post(second?.body);
    expect(again.status).toBe(202);
    expect(again.json.alerts[0]).toMatchObject({ outcome: 'Extended' });
    expect(again.json.alerts[0].message).toMatch(
      new RegExp(`^Extended the capture of job ${accepted.jobId}: it stops at .*, 30 s after the last firing\\.$`),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await captureCount()).toBe(1);
    const [capturing, extended] = await jobs();
    expect(extended).toMatchObject({ status: 'Extended', capture_job_id: accepted.jobId, vm_id: VM.id });
    expect(capturing).toMatchObject({ id: accepted.jobId, extensions: 1, last_fired_at: extended?.received_at });
  });

  it('no second capture of a VM within the cooldown after one ended', async () => {
    await start({ TRIPCAP_CAPTURE_COOLDOWN_SECONDS: '600' });
    const [first, second] = alertSamples(VM);
    expect((await post(first?.body)).json.alerts[0].outcome).toBe('Accepted');
    await h.captureFunction.idle();
    const again = await post(second?.body);
    expect(again.json.alerts[0]).toMatchObject({ outcome: 'CoolingDown' });
    expect(again.json.alerts[0].message).toMatch(/no second capture within 600 s/);
    expect(await captureCount()).toBe(1);
  });

  it('a VM someone else is capturing: no second capture, and people are told why', async () => {
    await start({}, 'none');
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
    await start({}, 'none');
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
    await start({}, 'none');
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
    await start({}, 'none');
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
      // Without e-mail: this process has no SMTP sender (its retries would only slow the test).
      settings: settings({ TRIPCAP_NOTIFY_EMAIL: '' }),
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

  describe('alert life', () => {
    const captureRow = () => h.db.selectFrom('packet_captures').selectAll().executeTakeFirstOrThrow();
    const jobById = (id: string) =>
      h.db.selectFrom('capture_jobs').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    /** Until the function's capture runs on the agent (a re-fire before that would extend a job still Creating). */
    async function untilRunning() {
      for (let i = 0; i < 200; i++) {
        const row = await h.db.selectFrom('packet_captures').select('status').executeTakeFirst();
        if (row?.status === 'Running') return;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error('the capture never ran');
    }
    const resolvedOf = (body: unknown) => {
      const resolved = structuredClone(body) as { data: { essentials: { monitorCondition: string } } };
      resolved.data.essentials.monitorCondition = 'Resolved';
      return resolved;
    };
    /** When the capture ended, by the agent's report, in ms. */
    const endedAt = async () => Date.parse((await captureRow()).capture_end_time ?? '');

    it('a re-fire extends the capture: the function stops it the quiet time after the last firing (AlertQuiet)', async () => {
      await start({ TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: '3' }, 'live');
      const [first, second] = alertSamples(VM);
      const accepted = (await post(first?.body)).json.alerts[0];
      await untilRunning();
      const again = (await post(second?.body)).json.alerts[0];
      expect(again).toMatchObject({ outcome: 'Extended' });
      await h.captureFunction.idle();

      const job = await jobById(accepted.jobId);
      const extended = await jobById(again.jobId);
      expect(job).toMatchObject({ status: 'Completed', stop_reason: 'AlertQuiet', extensions: 1 });
      expect(job.last_fired_at).toBe(extended.received_at);
      expect(extended).toMatchObject({ status: 'Extended', capture_job_id: job.id });
      // Not 3 s after the first alert: 3 s after the re-fire, by the function's stop.
      expect(Date.parse(extended.received_at)).toBeGreaterThan(Date.parse(job.received_at));
      expect(await endedAt()).toBeGreaterThanOrEqual(Date.parse(extended.received_at) + 3000);
      expect((await captureRow()).stop_reason).toBe('ManuallyStopped');
      const notice = receiver.posts.find((p) => p.path === '/json')?.body;
      expect(notice).toMatchObject({
        stopReason: 'AlertQuiet',
        extensions: 1,
        capture: { stopReason: 'ManuallyStopped' },
      });
      expect(JSON.stringify(receiver.posts.find((p) => p.path === '/slack')?.body)).toContain(
        'AlertQuiet: no firing for 3 s',
      );
    });

    it('a repeated delivery while capturing (Alertmanager repeat_interval) extends it too', async () => {
      await start({ TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: '3' }, 'live');
      const [first] = alertSamples(VM);
      const accepted = (await post(first?.body)).json.alerts[0];
      await untilRunning();
      const again = (await post(first?.body)).json.alerts[0];
      expect(again).toMatchObject({ outcome: 'Extended', jobId: accepted.jobId });
      expect(again.message).toMatch(/^Already received \(job .*, Capturing\)\. Extended the capture of job /);
      await h.captureFunction.idle();
      const job = await jobById(accepted.jobId);
      expect(job).toMatchObject({ status: 'Completed', stop_reason: 'AlertQuiet', deliveries: 2, extensions: 1 });
      expect(Date.parse(job.last_fired_at ?? '')).toBeGreaterThan(Date.parse(job.received_at));
      expect(await endedAt()).toBeGreaterThanOrEqual(Date.parse(job.last_fired_at ?? '') + 3000);
      expect(await jobs()).toHaveLength(1);
    });

    it('re-fires extend it no further than TRIPCAP_CAPTURE_MAX_SECONDS: the capture ends itself (MaxDuration)', async () => {
      await start({ TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: '2', TRIPCAP_CAPTURE_MAX_SECONDS: '3' }, 'live');
      const [first] = alertSamples(VM);
      const accepted = (await post(first?.body)).json.alerts[0];
      await untilRunning();
      let last: { outcome: string; message: string } | undefined;
      while ((await jobById(accepted.jobId)).status === 'Capturing') {
        const reply = (await post(first?.body)).json.alerts[0];
        if (reply.outcome === 'Extended') last = reply;
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      await h.captureFunction.idle();
      expect(puts[0]?.properties.timeLimitInSeconds).toBe(3);
      expect(last?.message).toMatch(/it runs to its time limit, /);
      expect(await jobById(accepted.jobId)).toMatchObject({ status: 'Completed', stop_reason: 'MaxDuration' });
      expect((await captureRow()).stop_reason).toBe('TimeExceeded');
    });

    it('Resolved stops the capture after the tail (Resolved)', async () => {
      await start({ TRIPCAP_CAPTURE_RESOLVED_TAIL_SECONDS: '1' }, 'live');
      const [first] = alertSamples(VM);
      const accepted = (await post(first?.body)).json.alerts[0];
      await untilRunning();
      const resolved = (await post(resolvedOf(first?.body))).json.alerts[0];
      expect(resolved).toMatchObject({ outcome: 'Recorded' });
      expect(resolved.message).toMatch(
        /ends: it stops at .*, 1 s after Resolved, unless an alert of it fires again\.$/,
      );
      await h.captureFunction.idle();
      const job = await jobById(accepted.jobId);
      const record = await jobById(resolved.jobId);
      expect(record).toMatchObject({ status: 'Recorded', reason: 'Resolved', capture_job_id: job.id });
      expect(job).toMatchObject({ status: 'Completed', stop_reason: 'Resolved', resolved_at: record.received_at });
      expect(await endedAt()).toBeGreaterThanOrEqual(Date.parse(record.received_at) + 1000);
      expect(receiver.posts.find((p) => p.path === '/json')?.body).toMatchObject({ stopReason: 'Resolved' });
    });

    it('a re-fire within the tail cancels the stop for Resolved', async () => {
      await start({ TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: '3', TRIPCAP_CAPTURE_RESOLVED_TAIL_SECONDS: '2' }, 'live');
      const [first, second] = alertSamples(VM);
      const accepted = (await post(first?.body)).json.alerts[0];
      await untilRunning();
      expect((await post(resolvedOf(first?.body))).json.alerts[0].message).toMatch(/2 s after Resolved/);
      const refire = (await post(second?.body)).json.alerts[0];
      expect(refire).toMatchObject({ outcome: 'Extended' });
      await h.captureFunction.idle();
      const job = await jobById(accepted.jobId);
      expect(job).toMatchObject({ status: 'Completed', stop_reason: 'AlertQuiet', resolved_at: null });
      expect(await endedAt()).toBeGreaterThanOrEqual(Date.parse((await jobById(refire.jobId)).received_at) + 3000);
    });

    it('with TRIPCAP_CAPTURE_STOP_ON_RESOLVED=false, Resolved changes nothing', async () => {
      await start({ TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: '1', TRIPCAP_CAPTURE_STOP_ON_RESOLVED: 'false' }, 'live');
      const [first] = alertSamples(VM);
      const accepted = (await post(first?.body)).json.alerts[0];
      await untilRunning();
      const resolved = (await post(resolvedOf(first?.body))).json.alerts[0];
      expect(resolved).toMatchObject({
        outcome: 'Recorded',
        message: 'A Resolved alert is recorded; it starts no capture.',
      });
      await h.captureFunction.idle();
      expect(await jobById(accepted.jobId)).toMatchObject({ stop_reason: 'AlertQuiet', resolved_at: null });
      expect(await jobById(resolved.jobId)).toMatchObject({ capture_job_id: null });
    });

    it('a capture stopped by someone else ends as StoppedElsewhere', async () => {
      await start({}, 'live');
      const [first] = alertSamples(VM);
      const accepted = (await post(first?.body)).json.alerts[0];
      await untilRunning();
      const name = (await jobById(accepted.jobId)).capture_name ?? '';
      const stop = await h.request({
        method: 'POST',
        url: armPath({
          resourceGroup: 'NetworkWatcherRG',
          watcher: 'NetworkWatcher_westeurope',
          capture: name,
        }).replace('?', '/stop?'),
      });
      expect(stop.status, stop.text).toBeLessThan(300);
      await h.captureFunction.idle();
      expect(await jobById(accepted.jobId)).toMatchObject({ status: 'Completed', stop_reason: 'StoppedElsewhere' });
    });

    it('a restart with a stop pending (Resolved, in its tail) stops the capture when it was due', async () => {
      await start({ TRIPCAP_CAPTURE_RESOLVED_TAIL_SECONDS: '2' }, 'live');
      const [first] = alertSamples(VM);
      const accepted = (await post(first?.body)).json.alerts[0];
      await untilRunning();
      const resolved = (await post(resolvedOf(first?.body))).json.alerts[0];
      // The process ends in the tail.
      await h.captureFunction.close();
      expect(await jobById(accepted.jobId)).toMatchObject({ status: 'Capturing', stop_reason: null });

      const again = createLocalCaptureFunction({
        db: h.db,
        captures: h.captures,
        logger: createLogger({ level: 'silent' }),
        settings: settings({ TRIPCAP_CAPTURE_RESOLVED_TAIL_SECONDS: '2', TRIPCAP_NOTIFY_EMAIL: '' }),
      });
      try {
        expect(await again.resume()).toBe(1);
        await again.idle();
      } finally {
        await again.close();
      }
      expect(await jobById(accepted.jobId)).toMatchObject({ status: 'Completed', stop_reason: 'Resolved' });
      expect(await endedAt()).toBeGreaterThanOrEqual(Date.parse((await jobById(resolved.jobId)).received_at) + 2000);
    });
  });

  describe('the capture request', () => {
    /** The common-schema sample whose window started `secondsAgo` before now. */
    const windowedAlert = (secondsAgo: number) => {
      const [first] = alertSamples(VM);
      const body = structuredClone(first?.body) as {
        data: { alertContext: { condition: { windowStartTime: string; windowEndTime: string } } };
      };
      body.data.alertContext.condition.windowStartTime = new Date(Date.now() - secondsAgo * 1000).toISOString();
      body.data.alertContext.condition.windowEndTime = new Date().toISOString();
      return body;
    };
    const createdCapture = async () => {
      for (let i = 0; i < 200 && puts.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 25));
      expect(puts).toHaveLength(1);
      return puts[0]?.properties ?? {};
    };

    it('preTriggerSeconds from the alert: from its window start to now, plus one window', async () => {
      await start({}, 'none');
      const before = Date.now();
      await post(windowedAlert(100)); // a 100 s window that ended now
      const seconds = (await createdCapture()).preTriggerSeconds as number;
      const elapsed = Math.ceil((Date.now() - before) / 1000);
      expect(seconds).toBeGreaterThanOrEqual(100 + 100);
      expect(seconds).toBeLessThanOrEqual(100 + 100 + elapsed + 1);
      // And the service kept it for the agent.
      const row = await h.db.selectFrom('packet_captures').select('properties').executeTakeFirstOrThrow();
      expect(JSON.parse(row.properties).preTriggerSeconds).toBe(seconds);
    });

    it.each([
      ['0', undefined],
      ['45', 45],
    ])('TRIPCAP_CAPTURE_PRE_TRIGGER_SECONDS=%s: preTriggerSeconds %s', async (setting, expected) => {
      await start({ TRIPCAP_CAPTURE_PRE_TRIGGER_SECONDS: setting }, 'none');
      await post(windowedAlert(100));
      expect((await createdCapture()).preTriggerSeconds).toBe(expected);
    });

    it('pcapng by default, with the alert as the comment; pcap on request, without one', async () => {
      await start({}, 'none');
      const [first] = alertSamples(VM);
      const accepted = (await post(first?.body)).json.alerts[0];
      const properties = await createdCapture();
      expect(properties.fileFormat).toBe('pcapng');
      const [header, ...json] = String(properties.comment).split('\n');
      expect(header).toMatch(
        new RegExp(
          `^tripcap capture-on-alert: Fired alert '.+' \\(azure-common, Sev\\d\\) for ${VM.id}, received .*, job ${accepted.jobId}\\. The alert as delivered:$`,
        ),
      );
      expect(JSON.parse(json.join('\n'))).toEqual(first?.body);
      await h.close();

      await start({ TRIPCAP_CAPTURE_FILE_FORMAT: 'pcap' }, 'none');
      await post(first?.body);
      const plain = await createdCapture();
      expect(plain.fileFormat).toBe('pcap');
      expect(plain).not.toHaveProperty('comment');
    });
  });
});

const incoming = (overrides: Partial<IncomingAlert>): IncomingAlert => ({
  source: 'alertmanager',
  dedupKey: 'k',
  condition: 'Fired',
  ruleName: 'HighTraffic',
  severity: null,
  description: null,
  target: { resourceId: null, names: ['vm1'], addresses: [] },
  firedAt: null,
  resolvedAt: null,
  windowStart: null,
  windowEnd: null,
  raw: { labels: { alertname: 'HighTraffic' } },
  ...overrides,
});

describe('preTriggerSecondsFor', () => {
  const now = Date.parse('2026-11-30T01:00:00Z');
  it('auto: whole seconds since the window started, rounded up, plus one window (at least 10 s), at most 3600', () => {
    const at = (windowStart: string) => preTriggerSecondsFor(incoming({ windowStart }), 'auto', now);
    const windowed = (windowStart: string, windowEnd: string) =>
      preTriggerSecondsFor(incoming({ windowStart, windowEnd }), 'auto', now);
    expect(windowed('2026-11-30T00:54:00Z', '2026-11-30T00:59:00Z')).toBe(360 + 300);
    expect(windowed('2026-11-30T00:59:20Z', '2026-11-30T00:59:30Z')).toBe(40 + PRE_TRIGGER_MARGIN_SECONDS);
    expect(at('2026-11-30T00:55:00Z')).toBe(300 + PRE_TRIGGER_MARGIN_SECONDS);
    expect(at('2026-11-30T00:59:59.200Z')).toBe(1 + PRE_TRIGGER_MARGIN_SECONDS);
    expect(at('2026-11-29T20:00:00Z')).toBe(3600);
    // A window in the future (clocks apart): the margin alone.
    expect(at('2026-11-30T01:00:30Z')).toBe(PRE_TRIGGER_MARGIN_SECONDS);
  });
  it('auto without a window (Alertmanager, Grafana) or with an unreadable one: 300 s', () => {
    expect(preTriggerSecondsFor(incoming({}), 'auto', now)).toBe(FALLBACK_PRE_TRIGGER_SECONDS);
    expect(preTriggerSecondsFor(incoming({ windowStart: 'yesterday' }), 'auto', now)).toBe(300);
  });
  it('a number is used as it is', () => {
    expect(preTriggerSecondsFor(incoming({ windowStart: '2026-11-30T00:55:00Z' }), 45, now)).toBe(45);
    expect(preTriggerSecondsFor(incoming({}), 0, now)).toBe(0);
  });
});

describe('captureCommentFor', () => {
  const job = { id: 'j1', vm_id: VM.id, received_at: '2026-11-30T01:00:00.000Z' };
  it('pretty JSON when it fits, compact when only that fits, cut to 65,536 characters otherwise', () => {
    const pretty = captureCommentFor(incoming({}), job);
    expect(pretty).toBe(
      `tripcap capture-on-alert: Fired alert 'HighTraffic' (alertmanager) for ${VM.id}, received 2026-11-30T01:00:00.000Z, job j1. The alert as delivered:\n${JSON.stringify({ labels: { alertname: 'HighTraffic' } }, null, 2)}`,
    );
    const wide = { values: Array.from({ length: 9000 }, (_, i) => i) }; // ~48 KB compact, ~100 KB pretty
    const compact = captureCommentFor(incoming({ raw: wide }), job);
    expect(compact.split('\n')[1]).toBe(JSON.stringify(wide));
    const huge = captureCommentFor(incoming({ raw: { text: 'x'.repeat(100_000) } }), job);
    expect(huge).toHaveLength(65_536);
    expect(huge).toMatch(/\n\[cut at 65536 characters: the whole alert is on tripcap's job j1\]$/);
  });
});

describe('endReason', () => {
  const state = (status: string, stopReason: string | null) => ({
    name: 'c',
    target: VM.id,
    status,
    stopReason,
    errors: [],
    startTime: null,
    files: [],
  });
  it("the function's own stop keeps its reason; the capture's limits and other people's stops are named", () => {
    expect(endReason('AlertQuiet', state('Stopped', 'ManuallyStopped'))).toBe('AlertQuiet');
    expect(endReason('Resolved', state('Stopped', 'ManuallyStopped'))).toBe('Resolved');
    expect(endReason(null, state('Stopped', 'ManuallyStopped'))).toBe('StoppedElsewhere');
    expect(endReason(null, state('Stopped', 'TimeExceeded'))).toBe('MaxDuration');
    expect(endReason('AlertQuiet', state('Stopped', 'TotalBytesExceeded'))).toBe('TotalBytesExceeded');
    expect(endReason(null, state('Error', 'AgentStopped'))).toBe('CaptureFailed');
  });
});

describe('loadFunctionSettings', () => {
  it('defaults: pre-trigger from the alert, pcapng, 120 s after the last firing, cap 1800 s, stop 60 s after Resolved', () => {
    const s = loadFunctionSettings({});
    expect(s).toMatchObject({
      preTriggerSeconds: 'auto',
      secondsAfterLastFiring: 120,
      stopOnResolved: true,
      resolvedTailSeconds: 60,
      capture: { fileFormat: 'pcapng', timeLimitInSeconds: 1800 },
    });
  });
  it('the new variables, read', () => {
    const s = loadFunctionSettings({
      TRIPCAP_CAPTURE_PRE_TRIGGER_SECONDS: '0',
      TRIPCAP_CAPTURE_FILE_FORMAT: 'PCAP',
      TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: '30',
      TRIPCAP_CAPTURE_MAX_SECONDS: '600',
      TRIPCAP_CAPTURE_STOP_ON_RESOLVED: 'false',
      TRIPCAP_CAPTURE_RESOLVED_TAIL_SECONDS: '0',
    });
    expect(s).toMatchObject({
      preTriggerSeconds: 0,
      secondsAfterLastFiring: 30,
      stopOnResolved: false,
      resolvedTailSeconds: 0,
      capture: { fileFormat: 'pcap', timeLimitInSeconds: 600 },
    });
    expect(loadFunctionSettings({ TRIPCAP_CAPTURE_PRE_TRIGGER_SECONDS: 'auto' }).preTriggerSeconds).toBe('auto');
    expect(loadFunctionSettings({ TRIPCAP_CAPTURE_PRE_TRIGGER_SECONDS: '90' }).preTriggerSeconds).toBe(90);
    // A duration longer than the default cap raises the cap with it.
    expect(loadFunctionSettings({ TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: '3600' }).capture.timeLimitInSeconds).toBe(3600);
  });
  it.each([
    [
      { TRIPCAP_CAPTURE_PRE_TRIGGER_SECONDS: 'soon' },
      "TRIPCAP_CAPTURE_PRE_TRIGGER_SECONDS must be auto or a whole number from 0 to 3600, not 'soon'.",
    ],
    [
      { TRIPCAP_CAPTURE_PRE_TRIGGER_SECONDS: '3601' },
      "TRIPCAP_CAPTURE_PRE_TRIGGER_SECONDS must be auto or a whole number from 0 to 3600, not '3601'.",
    ],
    [{ TRIPCAP_CAPTURE_FILE_FORMAT: 'erf' }, "TRIPCAP_CAPTURE_FILE_FORMAT must be pcapng or pcap, not 'erf'."],
    [
      { TRIPCAP_CAPTURE_MAX_SECONDS: '18001' },
      "TRIPCAP_CAPTURE_MAX_SECONDS must be a whole number from 1 to 18000, not '18001'.",
    ],
    [
      { TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS: '600', TRIPCAP_CAPTURE_MAX_SECONDS: '300' },
      'TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS (600) must not be more than TRIPCAP_CAPTURE_MAX_SECONDS (300).',
    ],
    [
      { TRIPCAP_CAPTURE_STOP_ON_RESOLVED: 'maybe' },
      "TRIPCAP_CAPTURE_STOP_ON_RESOLVED must be true or false, not 'maybe'.",
    ],
    [
      { TRIPCAP_CAPTURE_RESOLVED_TAIL_SECONDS: '-1' },
      "TRIPCAP_CAPTURE_RESOLVED_TAIL_SECONDS must be a whole number from 0 to 18000, not '-1'.",
    ],
  ])('%o is one line naming the variable', (env, message) => {
    expect(() => loadFunctionSettings(env)).toThrow(message);
    expect(message).not.toContain('\n');
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

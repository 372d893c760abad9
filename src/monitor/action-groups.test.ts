import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createDatabase, type Database } from '../db/index.js';
import { ApiError } from '../lib/errors.js';
import { createLogger } from '../lib/logger.js';
import { createSmtpSender, type EmailSender } from '../notify/email.js';
import { type ActionGroupRef, type ActionGroups, createActionGroups } from './action-groups.js';
import type { AlertEvent } from './alert-event.js';

const ref: ActionGroupRef = { subscriptionId: 'sub-1', resourceGroup: 'rg-1', name: 'ops' };
const groupId = '/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Insights/actionGroups/ops';
const SECRET = 'secret123';
const FUNCTION_APP = '/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Web/sites/app';

let db: Database;
let logLines: string[];
let services: ActionGroups[];
let closers: Array<() => Promise<void> | void>;

beforeEach(async () => {
  db = await createDatabase({ file: ':memory:' });
  logLines = [];
  services = [];
  closers = [];
});

afterEach(async () => {
  for (const service of services) await service.stop();
  for (const close of closers) await close();
  await db.destroy();
});

function service(options: { email?: EmailSender | null; requestTimeoutMs?: number } = {}): ActionGroups {
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => logLines.push(line) } });
  const created = createActionGroups({
    db,
    logger,
    retryDelaysMs: [10, 20, 10, 40, 10],
    requestTimeoutMs: options.requestTimeoutMs ?? 2000,
    email: options.email ?? null,
  });
  services.push(created);
  return created;
}

function validBody() {
  return {
    location: 'Global',
    tags: { team: 'net' },
    properties: {
      groupShortName: 'ops',
      enabled: true,
      emailReceivers: [{ name: 'On call', emailAddress: 'oncall@example.com', useCommonAlertSchema: true }],
      webhookReceivers: [
        { name: 'hook', serviceUri: `https://example.com/hook?code=${SECRET}`, useCommonAlertSchema: true },
      ],
      azureFunctionReceivers: [
        {
          name: 'capture',
          functionAppResourceId: FUNCTION_APP,
          functionName: 'capture-on-alert',
          httpTriggerUrl: 'https://example.com/api/capture-on-alert?code=k',
          useCommonAlertSchema: false,
        },
      ],
      smsReceivers: [],
    },
  };
}

type Body = ReturnType<typeof validBody> & Record<string, unknown>;

function alertEvent(): AlertEvent {
  return {
    alertId: '11111111-2222-3333-4444-555555555555',
    monitorCondition: 'Fired',
    rule: {
      id: '/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Insights/metricAlerts/high-cpu',
      name: 'high-cpu',
      description: 'CPU above 80%',
      severity: 2,
      subscriptionId: 'sub-1',
      resourceGroup: 'rg-1',
      conditionType: 'SingleResourceMultipleMetricCriteria',
      windowSize: 'PT5M',
      webHookProperties: { fromEvent: 'replaced' },
    },
    target: {
      id: '/subscriptions/sub-1/resourceGroups/rg-1/providers/Microsoft.Compute/virtualMachines/web-1',
      name: 'web-1',
      subscriptionId: 'sub-1',
      resourceGroup: 'rg-1',
      vmGuid: 'b1b1b1b1-cccc-dddd-eeee-f2f2f2f2f2f2',
      location: 'westeurope',
    },
    firedDateTime: '2025-01-01T10:05:00.000Z',
    resolvedDateTime: null,
    windowStartTime: '2025-01-01T10:00:00.000Z',
    windowEndTime: '2025-01-01T10:05:00.000Z',
    criteria: [
      {
        name: 'Metric1',
        metricName: 'Percentage CPU',
        metricNamespace: 'Microsoft.Compute/virtualMachines',
        timeAggregation: 'Average',
        operator: 'GreaterThan',
        threshold: 80,
        metricValue: 93.5,
        met: true,
      },
    ],
  };
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  if (!(err instanceof ApiError)) throw new Error(`expected an ApiError, got ${String(err)}`);
  return err;
}

async function count(table: 'action_groups' | 'deliveries' | 'delivery_attempts'): Promise<number> {
  const row = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}

async function waitFor<T>(check: () => Promise<T | undefined | null | false>, what: string, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function allFinal() {
  const rows = await db.selectFrom('deliveries').selectAll().execute();
  return rows.length > 0 && rows.every((r) => r.status === 'Succeeded' || r.status === 'Failed') ? rows : null;
}

// ---- validation ------------------------------------------------------------------------------------------------

const BAD_BODIES: Array<[string, (b: Body) => unknown, string | undefined, RegExp]> = [
  ['body is not an object', () => null, undefined, /JSON object/],
  ['properties missing', (b) => ({ ...b, properties: undefined }), 'properties', /required/],
  ['properties a string', (b) => ({ ...b, properties: 'x' }), 'properties', /required/],
  ['location not a string', (b) => ({ ...b, location: 5 }), 'location', /Global/],
  ['tags an array', (b) => ({ ...b, tags: ['a'] }), 'tags', /object of string values/],
  ['tag value a number', (b) => ({ ...b, tags: { team: 1 } }), 'tags.team', /string/],
  ['groupShortName missing', (b) => del(b, 'groupShortName'), 'properties.groupShortName', /1 to 12/],
  ['groupShortName empty', (b) => set(b, 'groupShortName', ''), 'properties.groupShortName', /1 to 12/],
  ['groupShortName 13 chars', (b) => set(b, 'groupShortName', 'abcdefghijklm'), 'properties.groupShortName', /1 to 12/],
  ['enabled a string', (b) => set(b, 'enabled', 'yes'), 'properties.enabled', /true or false/],
  ['emailReceivers an object', (b) => set(b, 'emailReceivers', {}), 'properties.emailReceivers', /array/],
  ['email receiver a string', (b) => set(b, 'emailReceivers', ['x']), 'properties.emailReceivers[0]', /object/],
  [
    'email receiver without name',
    (b) => receiver(b, 'emailReceivers', { name: undefined }),
    'properties.emailReceivers[0].name',
    /required/,
  ],
  [
    'email address invalid',
    (b) => receiver(b, 'emailReceivers', { emailAddress: 'oncall' }),
    'properties.emailReceivers[0].emailAddress',
    /e-mail address/,
  ],
  [
    'email useCommonAlertSchema a string',
    (b) => receiver(b, 'emailReceivers', { useCommonAlertSchema: 'true' }),
    'properties.emailReceivers[0].useCommonAlertSchema',
    /true or false/,
  ],
  [
    'webhook without serviceUri',
    (b) => receiver(b, 'webhookReceivers', { serviceUri: undefined }),
    'properties.webhookReceivers[0].serviceUri',
    /required/,
  ],
  [
    'webhook serviceUri not a URL',
    (b) => receiver(b, 'webhookReceivers', { serviceUri: 'not a url' }),
    'properties.webhookReceivers[0].serviceUri',
    /http:\/\/ or https:\/\//,
  ],
  [
    'webhook serviceUri ftp',
    (b) => receiver(b, 'webhookReceivers', { serviceUri: 'ftp://example.com/x' }),
    'properties.webhookReceivers[0].serviceUri',
    /only http/,
  ],
  [
    'webhook useAadAuth',
    (b) => receiver(b, 'webhookReceivers', { useAadAuth: true }),
    'properties.webhookReceivers[0].useAadAuth',
    /not supported/,
  ],
  [
    'webhook useCommonAlertSchema a number',
    (b) => receiver(b, 'webhookReceivers', { useCommonAlertSchema: 1 }),
    'properties.webhookReceivers[0].useCommonAlertSchema',
    /true or false/,
  ],
  [
    'function app id not an app',
    (b) => receiver(b, 'azureFunctionReceivers', { functionAppResourceId: '/subscriptions/x' }),
    'properties.azureFunctionReceivers[0].functionAppResourceId',
    /Microsoft.Web\/sites/,
  ],
  [
    'function without functionName',
    (b) => receiver(b, 'azureFunctionReceivers', { functionName: '' }),
    'properties.azureFunctionReceivers[0].functionName',
    /required/,
  ],
  [
    'function without httpTriggerUrl',
    (b) => receiver(b, 'azureFunctionReceivers', { httpTriggerUrl: undefined }),
    'properties.azureFunctionReceivers[0].httpTriggerUrl',
    /required/,
  ],
  [
    'an SMS receiver',
    (b) => set(b, 'smsReceivers', [{ name: 's', countryCode: '1', phoneNumber: '5550100' }]),
    'properties.smsReceivers',
    /does not deliver to smsReceivers.*webhookReceivers/,
  ],
  [
    'a logic app receiver',
    (b) => set(b, 'logicAppReceivers', [{ name: 'l' }]),
    'properties.logicAppReceivers',
    /does not deliver/,
  ],
  [
    'an incident receiver',
    (b) => set(b, 'incidentReceivers', [{ name: 'i' }]),
    'properties.incidentReceivers',
    /does not deliver/,
  ],
  ['eventHubReceivers not an array', (b) => set(b, 'eventHubReceivers', 'x'), 'properties.eventHubReceivers', /array/],
  [
    'two receivers named alike',
    (b) => receiver(b, 'webhookReceivers', { name: 'ON CALL' }),
    'properties.webhookReceivers[0].name',
    /unique/,
  ],
];

function set(b: Body, key: string, value: unknown) {
  return { ...b, properties: { ...b.properties, [key]: value } };
}
function del(b: Body, key: string) {
  const properties: Record<string, unknown> = { ...b.properties };
  delete properties[key];
  return { ...b, properties };
}
function receiver(b: Body, kind: 'emailReceivers' | 'webhookReceivers' | 'azureFunctionReceivers', change: object) {
  return set(b, kind, [{ ...b.properties[kind][0], ...change }]);
}

describe('action group validation', () => {
  const cases = BAD_BODIES.map(([name, mutate, target, message]) => ({ name, mutate, target, message }));
  it.each(cases)('$name → 400 naming $target', async ({ mutate, target, message }) => {
    const err = await rejection(service().put(ref, mutate(validBody() as Body)));
    expect(err.status).toBe(400);
    expect(err.target).toBe(target);
    expect(err.message).toMatch(message);
    expect(err.code).toMatch(/^(InvalidActionGroup|InvalidRequestContent|InvalidTags)$/);
    expect(await count('action_groups')).toBe(0);
  });

  it('refuses resource names Azure would refuse', async () => {
    const err = await rejection(service().put({ ...ref, resourceGroup: 'bad/rg' }, validBody()));
    expect([err.status, err.code]).toEqual([400, 'InvalidResourceName']);
  });

  it('fills in Azure defaults and ignores unknown properties', async () => {
    const { group } = await service().put(ref, {
      properties: {
        groupShortName: 'x',
        webhookReceivers: [{ name: 'w', serviceUri: 'http://127.0.0.1/x' }],
        somethingNew: 1,
      },
    });
    expect(group.location).toBe('Global');
    expect(group.tags).toEqual({});
    expect(group.properties.enabled).toBe(true);
    expect(group.properties.webhookReceivers).toEqual([
      { name: 'w', serviceUri: 'http://127.0.0.1/x', useCommonAlertSchema: false, useAadAuth: false },
    ]);
    expect('somethingNew' in group.properties).toBe(false);
  });
});

// ---- CRUD --------------------------------------------------------------------------------------------------------

describe('action group resource', () => {
  it('creates, reads, updates, patches, lists and deletes in Azure shape', async () => {
    const groups = service();
    const first = await groups.put(ref, validBody());
    expect(first.created).toBe(true);
    expect(first.group).toEqual({
      id: groupId,
      name: 'ops',
      type: 'Microsoft.Insights/ActionGroups',
      location: 'Global',
      tags: { team: 'net' },
      properties: {
        groupShortName: 'ops',
        enabled: true,
        emailReceivers: [
          { name: 'On call', emailAddress: 'oncall@example.com', useCommonAlertSchema: true, status: 'Enabled' },
        ],
        webhookReceivers: [
          {
            name: 'hook',
            serviceUri: `https://example.com/hook?code=${SECRET}`,
            useCommonAlertSchema: true,
            useAadAuth: false,
          },
        ],
        azureFunctionReceivers: [
          {
            name: 'capture',
            functionAppResourceId: FUNCTION_APP,
            functionName: 'capture-on-alert',
            httpTriggerUrl: 'https://example.com/api/capture-on-alert?code=k',
            useCommonAlertSchema: false,
          },
        ],
        smsReceivers: [],
        voiceReceivers: [],
        armRoleReceivers: [],
        logicAppReceivers: [],
        automationRunbookReceivers: [],
        itsmReceivers: [],
        azureAppPushReceivers: [],
        eventHubReceivers: [],
        incidentReceivers: [],
      },
    });
    // Names compare case-insensitively, as ARM ids do.
    expect(await groups.get({ ...ref, name: 'OPS', resourceGroup: 'RG-1' })).toEqual(first.group);

    const again = await groups.put(ref, { ...validBody(), tags: {} });
    expect(again.created).toBe(false);
    expect(again.group.tags).toEqual({});

    const patched = await groups.patch(ref, {
      tags: { env: 'prod' },
      properties: { enabled: false, groupShortName: 'zz' },
    });
    expect(patched.tags).toEqual({ env: 'prod' });
    expect(patched.properties.enabled).toBe(false);
    expect(patched.properties.groupShortName).toBe('ops');
    const badPatch = await rejection(groups.patch(ref, { properties: { enabled: 'no' } }));
    expect([badPatch.status, badPatch.target]).toEqual([400, 'properties.enabled']);

    await groups.put({ ...ref, resourceGroup: 'rg-2', name: 'other' }, validBody());
    expect((await groups.list('sub-1')).value.map((g) => g.name)).toEqual(['ops', 'other']);
    expect((await groups.list('sub-1', 'RG-2')).value.map((g) => g.name)).toEqual(['other']);
    expect((await groups.list('sub-2')).value).toEqual([]);

    expect(await groups.delete(ref)).toBe(true);
    expect(await groups.delete(ref)).toBe(false);
    const missing = await rejection(groups.get(ref));
    expect([missing.status, missing.code]).toEqual([404, 'ResourceNotFound']);
    expect(missing.message).toContain("Action group 'ops' in resource group 'rg-1'");
    expect((await rejection(groups.patch(ref, {}))).status).toBe(404);
  });
});

// ---- enqueue -----------------------------------------------------------------------------------------------------

describe('enqueue', () => {
  it("writes nothing when the caller's transaction rolls back", async () => {
    const groups = service();
    await groups.put(ref, validBody());
    let written = 0;
    await expect(
      db.transaction().execute(async (trx) => {
        written = await groups.enqueue(trx, alertEvent(), [{ actionGroupId: groupId }]);
        throw new Error('evaluator failed after enqueue');
      }),
    ).rejects.toThrow('evaluator failed');
    expect(written).toBe(3);
    expect(await count('deliveries')).toBe(0);
  });

  it('writes one delivery per receiver with the payload its schema asks for, and sends nothing', async () => {
    const groups = service();
    await groups.put(ref, validBody());
    await groups.put(
      { ...ref, name: 'off' },
      { ...validBody(), properties: { ...validBody().properties, enabled: false } },
    );
    const n = await db
      .transaction()
      .execute((trx) =>
        groups.enqueue(trx, alertEvent(), [
          { actionGroupId: groupId.toUpperCase(), webHookProperties: { team: 'net' } },
          { actionGroupId: groupId },
          { actionGroupId: groupId.replace('/ops', '/off') },
          { actionGroupId: groupId.replace('/ops', '/nope') },
        ]),
      );
    expect(n).toBe(3);
    const rows = await db.selectFrom('deliveries').selectAll().orderBy('receiver_kind').execute();
    expect(rows.map((r) => [r.receiver_name, r.receiver_kind, r.status, r.attempts, r.alert_id])).toEqual([
      ['capture', 'azureFunction', 'Pending', 0, '11111111-2222-3333-4444-555555555555'],
      ['On call', 'email', 'Pending', 0, '11111111-2222-3333-4444-555555555555'],
      ['hook', 'webhook', 'Pending', 0, '11111111-2222-3333-4444-555555555555'],
    ]);
    const [fn, mail, hook] = rows.map((r) => JSON.parse(r.payload));
    expect(fn.schemaId).toBe('AzureMonitorMetricAlert');
    expect(fn.data.properties).toEqual({ team: 'net' });
    expect(hook.schemaId).toBe('azureMonitorCommonAlertSchema');
    expect(hook.data.customProperties).toEqual({ team: 'net' });
    expect(mail.subject).toBe('Fired: Sev2 Azure Monitor Alert high-cpu on web-1');
    expect(logLines.join('')).toContain('action group not found');
    expect(await count('delivery_attempts')).toBe(0);
  });
});

// ---- webhook delivery ---------------------------------------------------------------------------------------------

type Answer = number | 'hang';

/** A local HTTP server answering a programmed sequence (the last answer repeats); records each request body. */
async function programmedServer(answers: Answer[]) {
  const bodies: string[] = [];
  const urls: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks).toString('utf8'));
      urls.push(req.url ?? '');
      const answer = answers[Math.min(bodies.length - 1, answers.length - 1)];
      if (answer === 'hang') return;
      res.writeHead(answer ?? 500, { 'content-type': 'text/plain' }).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hook?code=${SECRET}`, bodies, urls, port };
}

async function webhookGroup(groups: ActionGroups, url: string) {
  await groups.put(ref, {
    properties: {
      groupShortName: 'ops',
      webhookReceivers: [{ name: 'hook', serviceUri: url, useCommonAlertSchema: true }],
    },
  });
  await groups.enqueue(db, alertEvent(), [{ actionGroupId: groupId }]);
}

async function deliveredAttempts(groups: ActionGroups) {
  await groups.start();
  const [row] = await waitFor(allFinal, 'deliveries to end');
  const { value } = await groups.listDeliveries(ref);
  return { row, delivery: value[0] };
}

describe('webhook delivery', () => {
  it('503, 503, 200 → three attempts, then Succeeded; the body is the stored payload byte for byte', async () => {
    const server = await programmedServer([503, 503, 200]);
    const groups = service();
    await webhookGroup(groups, server.url);
    const { row, delivery } = await deliveredAttempts(groups);
    expect(delivery?.status).toBe('Succeeded');
    expect(delivery?.attempts.map((a) => [a.attempt, a.outcome, a.httpStatus])).toEqual([
      [1, 'Retry', 503],
      [2, 'Retry', 503],
      [3, 'Succeeded', 200],
    ]);
    expect(server.bodies).toHaveLength(3);
    for (const body of server.bodies) expect(body).toBe(row?.payload);
    expect(server.urls[0]).toBe(`/hook?code=${SECRET}`);
    expect(JSON.parse(server.bodies[0] ?? '').data.essentials.alertRule).toBe('high-cpu');
    // Retries waited at least the configured 10 and 20 ms.
    const [a1, a2, a3] = delivery?.attempts.map((a) => Date.parse(a.startedAt)) ?? [];
    expect((a2 ?? 0) - (a1 ?? 0)).toBeGreaterThanOrEqual(10);
    expect((a3 ?? 0) - (a2 ?? 0)).toBeGreaterThanOrEqual(20);
    // The URL's secret shows nowhere: not in the API, not in the logs.
    expect(delivery?.target).toBe(server.url.replace(SECRET, '[redacted]'));
    expect(logLines.join('')).not.toContain(SECRET);
  });

  it('500 → Failed after one attempt', async () => {
    const server = await programmedServer([500]);
    const groups = service();
    await webhookGroup(groups, server.url);
    const { delivery } = await deliveredAttempts(groups);
    expect(delivery?.status).toBe('Failed');
    expect(delivery?.attempts.map((a) => [a.outcome, a.httpStatus, a.error])).toEqual([['Failed', 500, 'HTTP 500']]);
    expect(server.bodies).toHaveLength(1);
  });

  it('429 six times → Failed after six attempts (five retries)', async () => {
    const server = await programmedServer([429]);
    const groups = service();
    await webhookGroup(groups, server.url);
    const { delivery } = await deliveredAttempts(groups);
    expect(delivery?.status).toBe('Failed');
    expect(delivery?.attempts.map((a) => a.outcome)).toEqual(['Retry', 'Retry', 'Retry', 'Retry', 'Retry', 'Failed']);
    expect(delivery?.attempts.every((a) => a.httpStatus === 429)).toBe(true);
    expect(server.bodies).toHaveLength(6);
  });

  it('connection refused is retried, and the error holds no secret', async () => {
    const server = await programmedServer([200]);
    const refused = `http://127.0.0.1:${server.port}/hook?code=${SECRET}`;
    await closers.pop()?.();
    const groups = service();
    await webhookGroup(groups, refused);
    const { delivery } = await deliveredAttempts(groups);
    expect(delivery?.status).toBe('Failed');
    expect(delivery?.attempts).toHaveLength(6);
    expect(delivery?.attempts[0]).toMatchObject({ outcome: 'Retry', httpStatus: null });
    expect(delivery?.attempts[0]?.error).toMatch(/ECONNREFUSED/);
    expect(JSON.stringify(delivery)).not.toContain(SECRET);
  });

  it('a server that does not answer times out, and the timeout is retried', async () => {
    const server = await programmedServer(['hang', 200]);
    const groups = service({ requestTimeoutMs: 200 });
    await webhookGroup(groups, server.url);
    const { delivery } = await deliveredAttempts(groups);
    expect(delivery?.status).toBe('Succeeded');
    expect(delivery?.attempts.map((a) => [a.outcome, a.httpStatus, a.error])).toEqual([
      ['Retry', null, 'no answer within 200 ms'],
      ['Succeeded', 200, null],
    ]);
    expect(delivery?.attempts[0]?.durationMs).toBeGreaterThanOrEqual(190);
  });

  it("a delivery left 'Sending' by a crash is sent again after start()", async () => {
    const server = await programmedServer([200]);
    const crashed = service();
    await webhookGroup(crashed, server.url);
    // As if a process had claimed it and died before recording the attempt.
    await db.updateTable('deliveries').set({ status: 'Sending' }).execute();
    expect(await crashed.runDue()).toBe(0);
    const restarted = service();
    const { delivery } = await deliveredAttempts(restarted);
    expect(delivery?.status).toBe('Succeeded');
    expect(server.bodies).toHaveLength(1);
  });

  it('runDue sends what is due and nothing that is not', async () => {
    const server = await programmedServer([200]);
    const groups = service();
    await webhookGroup(groups, server.url);
    await db
      .updateTable('deliveries')
      .set({ next_attempt_at: Date.now() + 60_000 })
      .execute();
    expect(await groups.runDue()).toBe(0);
    await db.updateTable('deliveries').set({ next_attempt_at: Date.now() }).execute();
    expect(await groups.runDue()).toBe(1);
    expect(server.bodies).toHaveLength(1);
    expect((await db.selectFrom('deliveries').select('status').executeTakeFirstOrThrow()).status).toBe('Succeeded');
  });
});

// ---- e-mail delivery ----------------------------------------------------------------------------------------------

/** A real SMTP server on 127.0.0.1; `rcptAnswers` are the reply codes for successive RCPT TO (then 250). */
async function smtpServer(rcptAnswers: number[] = []) {
  const messages: Array<{ to: string[]; raw: string }> = [];
  let rcpts = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(_address, _session, callback) {
      const code = rcptAnswers[rcpts++];
      if (code) return callback(Object.assign(new Error(`mailbox unavailable (${code})`), { responseCode: code }));
      callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        messages.push({
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.server.address() as AddressInfo;
  const sender = createSmtpSender({
    host: '127.0.0.1',
    port,
    secure: false,
    from: 'tripcap@example.com',
    timeoutMs: 2000,
  });
  closers.push(() => sender.close());
  return { messages, sender };
}

function headers(raw: string): Record<string, string> {
  const head = raw.split('\r\n\r\n')[0]?.replace(/\r\n[ \t]+/g, ' ') ?? '';
  return Object.fromEntries(
    head.split('\r\n').map((line) => {
      const i = line.indexOf(':');
      return [line.slice(0, i).toLowerCase(), line.slice(i + 1).trim()];
    }),
  );
}

async function emailGroup(groups: ActionGroups) {
  await groups.put(ref, {
    properties: { groupShortName: 'ops', emailReceivers: [{ name: 'On call', emailAddress: 'oncall@example.com' }] },
  });
  await groups.enqueue(db, alertEvent(), [{ actionGroupId: groupId }]);
}

describe('e-mail delivery', () => {
  it('sends a message that parses, to the receiver, with the alert subject', async () => {
    const smtp = await smtpServer();
    const groups = service({ email: smtp.sender });
    await emailGroup(groups);
    const { delivery } = await deliveredAttempts(groups);
    expect(delivery).toMatchObject({ status: 'Succeeded', receiverKind: 'email', target: 'oncall@example.com' });
    expect(smtp.messages).toHaveLength(1);
    const message = smtp.messages[0];
    expect(message?.to).toEqual(['oncall@example.com']);
    const h = headers(message?.raw ?? '');
    expect(h.subject).toBe('Fired: Sev2 Azure Monitor Alert high-cpu on web-1');
    expect(h.to).toBe('oncall@example.com');
    expect(h.from).toBe('tripcap@example.com');
    expect(h['content-type']).toMatch(/^multipart\/alternative; boundary=/);
    expect(message?.raw).toContain('text/html');
  });

  it('a 451 reply to RCPT TO is retried', async () => {
    const smtp = await smtpServer([451]);
    const groups = service({ email: smtp.sender });
    await emailGroup(groups);
    const { delivery } = await deliveredAttempts(groups);
    expect(delivery?.status).toBe('Succeeded');
    expect(delivery?.attempts.map((a) => a.outcome)).toEqual(['Retry', 'Succeeded']);
    expect(delivery?.attempts[0]?.error).toMatch(/451/);
    expect(smtp.messages).toHaveLength(1);
  });

  it('a 550 reply fails at once', async () => {
    const smtp = await smtpServer([550]);
    const groups = service({ email: smtp.sender });
    await emailGroup(groups);
    const { delivery } = await deliveredAttempts(groups);
    expect(delivery?.status).toBe('Failed');
    expect(delivery?.attempts.map((a) => a.outcome)).toEqual(['Failed']);
  });

  it('without SMTP the delivery fails and says why', async () => {
    const groups = service({ email: null });
    await emailGroup(groups);
    const { delivery } = await deliveredAttempts(groups);
    expect(delivery?.attempts.map((a) => [a.outcome, a.error])).toEqual([
      ['Failed', 'no SMTP server configured (smtpHost)'],
    ]);
  });
});

// ---- test notifications and delivery history ------------------------------------------------------------------------

describe('test action group', () => {
  it('sends a labelled sample to every receiver and reports Completed', async () => {
    const server = await programmedServer([200]);
    const smtp = await smtpServer();
    const groups = service({ email: smtp.sender });
    await groups.put(ref, {
      properties: {
        groupShortName: 'ops',
        enabled: false,
        emailReceivers: [{ name: 'mail', emailAddress: 'oncall@example.com' }],
        webhookReceivers: [{ name: 'hook', serviceUri: server.url, useCommonAlertSchema: true }],
      },
    });
    const { notificationId } = await groups.createTestNotification(ref, { alertType: 'metricstaticthreshold' });
    const pending = await groups.notificationStatus('sub-1', notificationId);
    expect(pending.state).toBe('Pending');
    expect(pending.completedTime).toBeNull();

    await groups.start();
    const done = await waitFor(async () => {
      const status = await groups.notificationStatus('sub-1', notificationId);
      return status.state === 'Completed' ? status : null;
    }, 'the test notification to complete');
    expect(done.context).toEqual({
      notificationSource: 'Microsoft.Insights/TestNotification',
      contextType: 'Microsoft.Insights/ActionGroups',
    });
    expect(done.completedTime).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);
    expect(done.actionDetails.map((a) => [a.MechanismType, a.Name, a.Status, a.SubState, a.Detail])).toEqual([
      ['Email', 'mail', 'Completed', 'Default', null],
      ['Webhook', 'hook', 'Completed', 'Default', null],
    ]);
    const sample = JSON.parse(server.bodies[0] ?? '');
    expect(sample.data.essentials.alertRule).toBe('Test alert rule');
    expect(sample.data.essentials.alertTargetIDs).toEqual([
      '/subscriptions/sub-1/resourcegroups/rg-1/providers/microsoft.compute/virtualmachines/test-vm',
    ]);
    expect(headers(smtp.messages[0]?.raw ?? '').subject).toBe(
      'Fired: Sev3 Azure Monitor Alert Test alert rule on test-vm',
    );

    const { value } = await groups.listDeliveries(ref);
    expect(value.every((d) => d.notificationId === notificationId && d.alertId === null)).toBe(true);
  });

  it('404 for an unknown notification or another subscription; 400 for an alert type it cannot send', async () => {
    const groups = service();
    await groups.put(ref, validBody());
    expect((await rejection(groups.notificationStatus('sub-1', 'nope'))).status).toBe(404);
    const { notificationId } = await groups.createTestNotification(ref, {});
    expect((await groups.notificationStatus('sub-1', notificationId)).actionDetails).toHaveLength(3);
    expect((await rejection(groups.notificationStatus('sub-2', notificationId))).status).toBe(404);
    const bad = await rejection(groups.createTestNotification(ref, { alertType: 'budget' }));
    expect([bad.status, bad.target]).toEqual([400, 'alertType']);
    expect((await rejection(groups.createTestNotification({ ...ref, name: 'none' }, {}))).status).toBe(404);
  });
});

describe('listDeliveries', () => {
  it('lists newest first, at most $top, and refuses a bad $top', async () => {
    const groups = service();
    await groups.put(ref, validBody());
    let clock = Date.parse('2025-01-01T00:00:00Z');
    const timed = createActionGroups({ db, logger: createLogger({ level: 'silent' }), now: () => clock });
    for (const alertId of ['a-1', 'a-2']) {
      await timed.enqueue(db, { ...alertEvent(), alertId }, [{ actionGroupId: groupId }]);
      clock += 1000;
    }
    const all = await groups.listDeliveries(ref);
    expect(all.value.map((d) => d.alertId)).toEqual(['a-2', 'a-2', 'a-2', 'a-1', 'a-1', 'a-1']);
    expect(all.value[0]).toMatchObject({ status: 'Pending', attempts: [], createdTime: '2025-01-01T00:00:01.000Z' });
    expect(all.value.find((d) => d.receiverName === 'hook')?.target).toBe('https://example.com/hook?code=[redacted]');
    expect((await groups.listDeliveries(ref, { top: 2 })).value).toHaveLength(2);
    for (const top of [0, 1001, 1.5]) {
      const err = await rejection(groups.listDeliveries(ref, { top }));
      expect([err.status, err.target]).toEqual([400, '$top']);
    }
    expect((await rejection(groups.listDeliveries({ ...ref, name: 'none' }))).status).toBe(404);
  });

  it('deleting a group deletes its deliveries', async () => {
    const groups = service();
    await groups.put(ref, validBody());
    await groups.enqueue(db, alertEvent(), [{ actionGroupId: groupId }]);
    expect(await count('deliveries')).toBe(3);
    await groups.delete(ref);
    expect(await count('deliveries')).toBe(0);
  });
});

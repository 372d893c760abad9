/**
 * Every route is locked: it refuses a request without credentials, with a malformed, forged or revoked token (401),
 * and with a token whose role lacks the route's permission (403); only /healthz is public. Readers read, agents
 * speak only the agent protocol and only about their own jobs, and no token ever reaches the log.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiHarness,
  armPath,
  createApiHarness,
  memoryLogger,
  pcapBytes,
  SUBSCRIPTION,
  sha256,
  storageAccountId,
} from '../../test/api-harness.js';
import { type RegisteredRoute, registeredRoutes } from './app.js';
import { type Permission, revokeToken, roleCan } from './tokens.js';

const LOCATION = 'westeurope';
const WATCHER = { resourceGroup: 'NetworkWatcherRG', watcher: `NetworkWatcher_${LOCATION}` };
const captureUrl = (name: string, suffix = '') => armPath({ ...WATCHER, capture: name }).replace('?', `${suffix}?`);

type Agent = Awaited<ReturnType<ApiHarness['registerVm']>>;

/** A capture that ran and uploaded a file, so that every route has a real resource behind it. */
async function captureWithFile(h: ApiHarness, agent: Agent, name: string) {
  const create = await h.request({
    method: 'PUT',
    url: captureUrl(name),
    body: { properties: { target: agent.vmId, storageLocation: { storageId: storageAccountId() } } },
  });
  expect(create.status, create.text).toBe(201);
  const operationId = new URL(String(create.headers['azure-asyncoperation'])).pathname.split('/').pop() ?? '';
  const { jobId } = (await agent.jobs()).json.jobs[0];
  expect((await agent.status(jobId, { status: 'Running', time: new Date().toISOString() })).status).toBe(200);
  const pcap = pcapBytes(4);
  const upload = await agent.upload(jobId, 1, pcap, 4);
  expect(upload.status, upload.text).toBe(201);
  return { operationId, jobId, pcap, blobName: upload.json.blobName as string };
}

/** An action group, a rule that has fired, and a test notification, for the monitor routes' parameters. */
async function monitorResources(h: ApiHarness) {
  const insights = `/subscriptions/${SUBSCRIPTION}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Insights`;
  const group = await h.request({
    method: 'PUT',
    url: `${insights}/actionGroups/oncall`,
    body: {
      properties: { groupShortName: 'oncall', emailReceivers: [{ name: 'ops', emailAddress: 'ops@example.test' }] },
    },
  });
  expect(group.status, group.text).toBe(201);
  // Count ≥ 0 holds in every window: the rule fires at its first evaluation.
  const rule = await h.request({
    method: 'PUT',
    url: `${insights}/metricAlerts/always`,
    body: {
      properties: {
        scopes: [group.json.id.replace(/NetworkWatcherRG.*$/, 'rg2')],
        evaluationFrequency: 'PT1M',
        windowSize: 'PT1M',
        criteria: {
          allOf: [
            {
              name: 'c',
              metricName: 'Percentage CPU',
              timeAggregation: 'Count',
              operator: 'GreaterThanOrEqual',
              threshold: 0,
            },
          ],
        },
        actions: [{ actionGroupId: group.json.id }],
      },
    },
  });
  expect(rule.status, rule.text).toBe(201);
  expect((await h.monitor.evaluator.evaluateNow()).fired).toBe(1);
  const alert = await h.db.selectFrom('alerts').select('id').executeTakeFirstOrThrow();
  const test = await h.request({
    method: 'POST',
    url: `${insights}/actionGroups/oncall/createNotifications`,
    body: {},
  });
  expect(test.status, test.text).toBe(202);
  const notificationId = new URL(String(test.headers.location)).pathname.split('/').pop() ?? '';
  return { groupName: 'oncall', ruleName: 'always', alertId: alert.id, notificationId };
}

describe('every route refuses callers without a valid credential', () => {
  let h: ApiHarness;
  let agent: Agent;
  let routes: readonly RegisteredRoute[];
  let sample: Record<string, string>;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    h = await createApiHarness();
    agent = await h.registerVm({ name: 'vm1', resourceGroup: 'rg2', location: LOCATION });
    const { operationId, jobId, blobName } = await captureWithFile(h, agent, 'pc1');
    sample = {
      subscriptionId: SUBSCRIPTION,
      resourceGroupName: 'NetworkWatcherRG',
      networkWatcherName: WATCHER.watcher,
      packetCaptureName: 'pc1',
      seq: '1',
      location: LOCATION,
      operationId,
      vmName: 'vm1',
      jobId,
      '*': blobName,
    };
    Object.assign(sample, await monitorResources(h));
    tokens.reader = (await h.tokenFor('reader')).token;
    const revoked = await h.tokenFor('admin', 'revoked-admin');
    await revokeToken(h.db, revoked.id);
    tokens.revoked = revoked.token;
    sample.tokenId = revoked.id;
    routes = registeredRoutes(h.app);
  });
  afterAll(async () => {
    await h?.close();
  });

  /** The route's URL with real values in place of its parameters (VM routes use the VM's own group). */
  function concrete(route: RegisteredRoute): string {
    const url = route.url
      .replace(/:(\w+)/g, (_, name: string) => {
        if (name === 'resourceGroupName' && route.url.includes('virtualMachines')) return 'rg2';
        const value = sample[name];
        if (value === undefined) throw new Error(`no sample value for :${name} in ${route.url}`);
        return value;
      })
      .replace(/\*$/, sample['*'] ?? '');
    if (route.url === '/agent/v1/jobs') return `${url}?wait=0`; // the long-poll answers at once
    return route.url.startsWith('/subscriptions/') ? `${url}?api-version=2024-05-01` : url;
  }

  /** Function routes take their key as Azure Functions do (x-functions-key); every other route a bearer token. */
  const credential = (route: RegisteredRoute, headers: Record<string, string>) =>
    route.permission === 'function:invoke' && headers.authorization?.startsWith('Bearer ')
      ? { 'x-functions-key': headers.authorization.slice('Bearer '.length) }
      : headers;
  const send = (route: RegisteredRoute, headers: Record<string, string>) =>
    h.app.inject({
      method: route.method as 'GET',
      url: concrete(route),
      headers: {
        ...credential(route, headers),
        ...(['PUT', 'POST'].includes(route.method) ? { 'content-type': 'application/json' } : {}),
      },
      ...(['PUT', 'POST'].includes(route.method) ? { payload: '{}' } : {}),
    });

  it('collects every route, and each declares a permission; only /healthz and the console files are public', () => {
    expect(routes.length).toBeGreaterThanOrEqual(30);
    const keys = routes.map((r) => `${r.method} ${r.url}`);
    for (const expected of [
      'PUT /subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/providers/Microsoft.Network/networkWatchers/:networkWatcherName/packetCaptures/:packetCaptureName',
      'GET /subscriptions/:subscriptionId/resourceGroups/:resourceGroupName/providers/Microsoft.Network/networkWatchers/:networkWatcherName/packetCaptures/:packetCaptureName/files/:seq',
      'POST /agent/v1/register',
      'PUT /agent/v1/captures/:jobId/files/:seq',
      'HEAD /agent/v1/jobs',
    ]) {
      expect(keys).toContain(expected);
    }
    for (const route of routes) expect(route.permission, `${route.method} ${route.url}`).toBeDefined();
    // The web console's static files hold no data; every API call the page makes carries a token.
    expect(routes.filter((r) => r.permission === 'public').map((r) => `${r.method} ${r.url}`)).toEqual([
      'GET /healthz',
      'HEAD /healthz',
      'GET /',
      'HEAD /',
      'GET /assets/*',
      'HEAD /assets/*',
    ]);
  });

  it('answers /healthz without credentials', async () => {
    const reply = await h.request({ method: 'GET', url: '/healthz', token: null });
    expect(reply.status).toBe(200);
    expect(reply.json).toEqual({ status: 'ok' });
  });

  it('refuses every other route without credentials: 401, ARM error, WWW-Authenticate', async () => {
    const failures: string[] = [];
    for (const route of routes.filter((r) => r.permission !== 'public')) {
      const reply = await send(route, {});
      const body = route.method === 'HEAD' ? undefined : (JSON.parse(reply.body) as { error: { code: string } });
      const ok =
        reply.statusCode === 401 &&
        reply.headers['www-authenticate'] === 'Bearer realm="tripcap"' &&
        (route.method === 'HEAD' || body?.error.code === 'AuthenticationFailed');
      if (!ok) failures.push(`${route.method} ${route.url}: ${reply.statusCode} ${reply.body.slice(0, 200)}`);
    }
    expect(failures).toEqual([]);
  });

  it('refuses every route with a malformed, forged, mixed, revoked or misplaced token: 401', async () => {
    const admin = h.adminToken;
    const [, adminId] = admin.split('_');
    const agentSecret = agent.agentToken.split('_').slice(2).join('_');
    const flip = (t: string) => `${t.slice(0, -1)}${t.endsWith('A') ? 'B' : 'A'}`;
    const variants: Record<string, Record<string, string>> = {
      garbage: { authorization: 'Bearer garbage' },
      'unknown id': { authorization: `Bearer tct_${'0'.repeat(16)}_${'a'.repeat(43)}` },
      'wrong secret': { authorization: `Bearer ${flip(admin)}` },
      'too long': { authorization: `Bearer ${admin}x` },
      "admin id + agent's secret": { authorization: `Bearer tct_${adminId}_${agentSecret}` },
      revoked: { authorization: `Bearer ${tokens.revoked}` },
      'no scheme': { authorization: admin },
      'Basic scheme': { authorization: `Basic ${Buffer.from(`admin:${admin}`).toString('base64')}` },
      'empty Bearer': { authorization: 'Bearer ' },
      'two tokens': { authorization: `Bearer ${admin} ${admin}` },
      'token in another header': { 'x-api-key': admin, cookie: `token=${admin}` },
    };
    const failures: string[] = [];
    for (const route of routes.filter((r) => r.permission !== 'public')) {
      for (const [label, headers] of Object.entries(variants)) {
        const reply = await send(route, headers);
        if (
          reply.statusCode !== 401 ||
          !String(reply.headers['www-authenticate']).startsWith('Bearer realm="tripcap"')
        ) {
          failures.push(`${label}: ${route.method} ${route.url}: ${reply.statusCode}`);
        }
      }
    }
    expect(failures).toEqual([]);
  });

  it("refuses every route to a token whose role lacks the route's permission: 403", async () => {
    // A 403 comes only from a route that matched (unknown routes are 404), so this also shows each URL is real.
    const failures: string[] = [];
    for (const route of routes.filter((r) => r.permission !== 'public')) {
      const permission = route.permission as Permission;
      const token = roleCan('reader', permission) ? agent.agentToken : tokens.reader;
      const reply = await send(route, { authorization: `Bearer ${token}` });
      const code = route.method === 'HEAD' ? 'AuthorizationFailed' : JSON.parse(reply.body).error?.code;
      if (reply.statusCode !== 403 || code !== 'AuthorizationFailed') {
        failures.push(`${route.method} ${route.url}: ${reply.statusCode} ${reply.body.slice(0, 200)}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('answers every read route to a token that may read (the refusals above are not missing resources)', async () => {
    const failures: string[] = [];
    for (const route of routes.filter((r) => r.permission === 'read' || r.permission === 'pcap:download')) {
      const token = route.permission === 'read' ? tokens.reader : h.adminToken;
      const reply = await send(route, { authorization: `Bearer ${token}` });
      if (reply.statusCode !== 200) failures.push(`${route.method} ${route.url}: ${reply.statusCode} ${reply.body}`);
    }
    for (const route of routes.filter((r) => r.permission === 'agent' && r.url === '/agent/v1/jobs')) {
      const reply = await send(route, { authorization: `Bearer ${agent.agentToken}` });
      if (reply.statusCode !== 200) failures.push(`${route.method} ${route.url}: ${reply.statusCode}`);
    }
    expect(failures).toEqual([]);
  });

  it('takes the Bearer scheme in any case, and tells unknown routes apart only to authenticated callers', async () => {
    const list = `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Network/networkWatchers?api-version=1`;
    for (const scheme of ['bearer', 'BEARER', 'Bearer']) {
      const reply = await h.request({
        method: 'GET',
        url: list,
        token: null,
        headers: { authorization: `${scheme} ${h.adminToken}` },
      });
      expect(reply.status, scheme).toBe(200);
    }
    const anonymous = await h.request({ method: 'GET', url: '/no/such/route', token: null });
    expect(anonymous.status).toBe(401);
    const known = await h.request({ method: 'GET', url: '/no/such/route' });
    expect(known.status).toBe(404);
    expect(known.json.error.code).toBe('NotFound');
  });
});

describe('roles', () => {
  let h: ApiHarness;
  let agent: Agent;
  let pcap: Buffer;
  beforeAll(async () => {
    h = await createApiHarness();
    agent = await h.registerVm({ name: 'vm1', resourceGroup: 'rg2', location: LOCATION });
    ({ pcap } = await captureWithFile(h, agent, 'pc1'));
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a reader reads, but cannot create, stop or delete captures, touch watchers, enroll agents or download pcap', async () => {
    const { token } = await h.tokenFor('reader');
    const before = await h.counts();
    const attempts = [
      h.request({
        method: 'PUT',
        url: captureUrl('pc2'),
        token,
        body: { properties: { target: agent.vmId, storageLocation: { storageId: storageAccountId() } } },
      }),
      h.request({ method: 'POST', url: captureUrl('pc1', '/stop'), token }),
      h.request({ method: 'DELETE', url: captureUrl('pc1'), token }),
      h.request({ method: 'GET', url: captureUrl('pc1', '/files/1'), token }),
      h.request({
        method: 'PUT',
        url: armPath({ resourceGroup: 'rg9', watcher: 'nw9' }),
        token,
        body: { location: 'eastus' },
      }),
      h.request({ method: 'DELETE', url: armPath(WATCHER), token }),
      h.request({
        method: 'POST',
        url: '/agent/v1/register',
        token,
        body: {
          name: 'x',
          resourceGroup: 'x',
          location: 'x',
          osType: 'Linux',
          hostname: 'x',
          nics: [],
          captureRoot: '/c',
          version: '1',
        },
      }),
    ];
    for (const reply of await Promise.all(attempts)) {
      expect(reply.status, reply.text).toBe(403);
      expect(reply.json.error.code).toBe('AuthorizationFailed');
      expect(reply.json.error.message).toMatch(/role reader\) may not/);
      expect(reply.raw.includes(pcap.subarray(24))).toBe(false);
    }
    expect(await h.counts()).toEqual(before);
    const status = await h.request({ method: 'POST', url: captureUrl('pc1', '/queryStatus'), token });
    expect(status.status).toBe(200);
    expect(status.json.packetCaptureStatus).toBe('Running');
    expect((await agent.jobs()).json.jobs).toEqual([]); // no stop job went out
    expect((await h.request({ method: 'GET', url: captureUrl('pc1'), token })).status).toBe(200);
  });

  it('an operator runs captures but cannot download them; a contributor can', async () => {
    const operator = (await h.tokenFor('operator')).token;
    const contributor = (await h.tokenFor('contributor')).token;
    const download = (token: string) => h.request({ method: 'GET', url: captureUrl('pc1', '/files/1'), token });
    const refused = await download(operator);
    expect(refused.status).toBe(403);
    expect(refused.raw.includes(pcap.subarray(24))).toBe(false);
    const allowed = await download(contributor);
    expect(allowed.status).toBe(200);
    expect(sha256(allowed.raw)).toBe(sha256(pcap));
    const stop = await h.request({ method: 'POST', url: captureUrl('pc1', '/stop'), token: operator });
    expect(stop.status).toBe(202);
  });

  it("an agent's token cannot use the ARM API, enroll agents, or act for the admin", async () => {
    const arm = [
      { method: 'GET' as const, url: captureUrl('pc1') },
      { method: 'GET' as const, url: armPath(WATCHER).replace('?', '/packetCaptures?') },
      { method: 'POST' as const, url: captureUrl('pc1', '/queryStatus') },
      { method: 'GET' as const, url: captureUrl('pc1', '/files/1') },
      { method: 'DELETE' as const, url: captureUrl('pc1') },
      {
        method: 'GET' as const,
        url: `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Compute/virtualMachines?api-version=1`,
      },
    ];
    for (const request of arm) {
      const reply = await h.request({ ...request, token: agent.agentToken });
      expect(reply.status, `${request.method} ${request.url}`).toBe(403);
      expect(reply.json.error.message).toMatch(/role agent\) may not/);
    }
    const enroll = await h.request({
      method: 'POST',
      url: '/agent/v1/register',
      token: agent.agentToken,
      body: {
        name: 'x',
        resourceGroup: 'x',
        location: 'x',
        osType: 'Linux',
        hostname: 'x',
        nics: [],
        captureRoot: '/c',
        version: '1',
      },
    });
    expect(enroll.status).toBe(403);
    // …and the admin token does not speak for an agent.
    const asAdmin = await h.request({ method: 'GET', url: '/agent/v1/jobs?wait=0' });
    expect(asAdmin.status).toBe(403);
    expect((await h.request({ method: 'GET', url: captureUrl('pc1') })).status).toBe(200);
  });
});

describe('agents see only their own jobs', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await createApiHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  it('agent 2 gets no job of VM 1 and is refused on its jobId; agent 1 is unaffected', async () => {
    const one = await h.registerVm({ name: 'vm1', resourceGroup: 'rg2', location: LOCATION });
    const two = await h.registerVm({ name: 'vm2', resourceGroup: 'rg2', location: LOCATION });
    const create = await h.request({
      method: 'PUT',
      url: captureUrl('pc1'),
      body: { properties: { target: one.vmId, storageLocation: { storageId: storageAccountId() } } },
    });
    expect(create.status).toBe(201);

    expect((await two.jobs()).json).toEqual({ jobs: [] });
    const [job] = (await one.jobs()).json.jobs;
    expect(job.type).toBe('start');
    const jobId: string = job.jobId;

    // Reporting on, or uploading to, another agent's job looks exactly like a job that does not exist.
    const notMine = await two.status(jobId, { status: 'Running', time: new Date().toISOString() });
    const absent = await two.status(randomUUID(), { status: 'Running', time: new Date().toISOString() });
    expect(notMine.status).toBe(404);
    expect(notMine.json.error.code).toBe(absent.json.error.code);
    expect(notMine.json.error.message.replace(jobId, 'ID')).toBe(
      absent.json.error.message.replace(/[0-9a-f-]{36}/, 'ID'),
    );
    const stopIt = await two.status(jobId, {
      status: 'Error',
      time: new Date().toISOString(),
      errors: ['CaptureFailed'],
    });
    expect(stopIt.status).toBe(404);
    const upload = await two.upload(jobId, 1, pcapBytes(2), 2);
    expect(upload.status).toBe(404);
    // A heartbeat naming the job does not touch it.
    const beat = await two.heartbeat({ running: [jobId], progress: { [jobId]: { bytes: 999, packets: 9 } } });
    expect(beat.status).toBe(200);

    const status = await h.request({ method: 'POST', url: captureUrl('pc1', '/queryStatus') });
    expect(status.json).toMatchObject({ packetCaptureStatus: 'NotStarted', packetCaptureError: [], files: [] });
    expect(status.json.bytesCaptured).toBe(0);
    expect((await h.counts()).files).toBe(0);

    // Agent 1 still has its job (handed out once, not repeated while it acts on it) and runs it; agent 2's heartbeat
    // without it does not end it.
    expect((await one.jobs()).json.jobs).toEqual([]);
    expect((await one.status(jobId, { status: 'Running', time: new Date().toISOString() })).status).toBe(200);
    await two.heartbeat({ running: [], progress: {} });
    const running = await h.request({ method: 'POST', url: captureUrl('pc1', '/queryStatus') });
    expect(running.json.packetCaptureStatus).toBe('Running');
    const upload1 = await one.upload(jobId, 1, pcapBytes(2), 2);
    expect(upload1.status, upload1.text).toBe(201);
  });

  it("a VM's new registration revokes its previous agent's token", async () => {
    const first = await h.registerVm({ name: 'vm3', resourceGroup: 'rg2', location: LOCATION });
    expect((await first.jobs()).status).toBe(200);
    const second = await h.registerVm({ name: 'vm3', resourceGroup: 'rg2', location: LOCATION });
    const old = await first.jobs();
    expect(old.status).toBe(401);
    expect((await second.jobs()).status).toBe(200);
  });
});

describe('tokens never reach the log', () => {
  it('a whole run at trace level logs neither the admin token nor an agent token', async () => {
    const log = memoryLogger();
    const h = await createApiHarness({ logger: log.logger });
    try {
      const agent = await h.registerVm({ name: 'vm1', resourceGroup: 'rg2', location: LOCATION });
      const { jobId } = await captureWithFile(h, agent, 'pc1');
      await agent.heartbeat({ running: [jobId], progress: { [jobId]: { bytes: 10, packets: 1 } } });
      await h.request({ method: 'POST', url: captureUrl('pc1', '/stop') });
      await agent.status(jobId, { status: 'Stopped', time: new Date().toISOString(), stopReason: 'ManuallyStopped' });
      await h.request({ method: 'GET', url: captureUrl('pc1', '/files/1') });
      // Mistakes that put a token where it does not belong: a query string, a wrong header, a failing request.
      await h.request({ method: 'GET', url: `${captureUrl('pc1')}&token=${h.adminToken}`, token: null });
      await h.request({ method: 'GET', url: `/no/route?code=${agent.agentToken}` });
      await h.request({ method: 'GET', url: captureUrl('pc1'), token: null, headers: { authorization: h.adminToken } });
      await h.request({ method: 'GET', url: captureUrl('nope'), token: `${h.adminToken}x` });
      await h.request({ method: 'GET', url: '/agent/v1/jobs?wait=0', token: agent.agentToken.toUpperCase() });
      const second = await h.registerVm({ name: 'vm1', resourceGroup: 'rg2', location: LOCATION }); // revokes the first
      await agent.jobs();

      const text = log.text();
      const lines = text.trim().split('\n');
      expect(lines.length).toBeGreaterThan(15); // the log really was captured, at debug and trace too
      expect(text).toContain('"msg":"request"');
      expect(text).toContain('agent registered');
      for (const token of [h.adminToken, agent.agentToken, second.agentToken]) {
        const secret = token.split('_').slice(2).join('_');
        expect(text).not.toContain(token);
        expect(text).not.toContain(secret);
        expect(text.toLowerCase()).not.toContain(secret.toLowerCase());
      }
    } finally {
      await h.close();
    }
  });
});

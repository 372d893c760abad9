import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness, SUBSCRIPTION, vmId } from '../../test/api-harness.js';
import { startWebhookReceiver } from '../../test/webhook-receiver.js';
import type { AlertEvent } from '../monitor/alert-event.js';
import { commonAlertSchema } from '../monitor/alert-payloads.js';

/** The web console's routes: its static files, `GET /tripcap/v1/me`, and the things the console added to the API. */

const RG = 'rg1';
const INSIGHTS = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RG}/providers/Microsoft.Insights`;

describe('console static files', () => {
  let h: ApiHarness;
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tripcap-console-'));
    const build = join(dir, 'ui');
    await mkdir(join(build, 'assets'), { recursive: true });
    await writeFile(
      join(build, 'index.html'),
      '<!doctype html><script type="module" src="/assets/app-1a2b.js"></script>',
    );
    await writeFile(join(build, 'assets/app-1a2b.js'), 'console.log(1)');
    await writeFile(join(build, 'assets/app-1a2b.css'), 'body{}');
    await writeFile(join(build, 'assets/app-1a2b.js.map'), '{}'); // no content type of ours: not served
    await writeFile(join(dir, 'secret.txt'), 'not for you'); // beside the build, not in it
    h = await createApiHarness({ consoleDir: build });
  });
  afterAll(async () => {
    await h.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves index.html at / without credentials, never cached, with a strict CSP', async () => {
    const reply = await h.request({ method: 'GET', url: '/', token: null });
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(reply.headers['cache-control']).toBe('no-cache');
    expect(reply.headers['content-security-policy']).toContain("default-src 'none'");
    expect(reply.headers['content-security-policy']).toContain("script-src 'self'");
    expect(reply.headers['x-content-type-options']).toBe('nosniff');
    expect(reply.text).toContain('/assets/app-1a2b.js');
    const head = await h.request({ method: 'HEAD', url: '/', token: null });
    expect(head.status).toBe(200);
  });

  it('serves hashed assets with their type, cached for good', async () => {
    const js = await h.request({ method: 'GET', url: '/assets/app-1a2b.js', token: null });
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(js.text).toBe('console.log(1)');
    const css = await h.request({ method: 'GET', url: '/assets/app-1a2b.css', token: null });
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('serves only files of the build: no traversal, no unknown types, no guesses', async () => {
    for (const url of [
      '/assets/../secret.txt',
      '/assets/%2e%2e/secret.txt',
      '/assets/..%2fsecret.txt',
      '/assets/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/assets/../../secret.txt',
      '/assets/app-1a2b.js.map',
      '/assets/missing.js',
      '/assets/',
      '/assets/APP-1A2B.JS',
    ]) {
      const reply = await h.request({ method: 'GET', url, token: null });
      expect(reply.text, url).not.toContain('not for you');
      expect([401, 404], `${url}: ${reply.status}`).toContain(reply.status);
    }
  });

  it('says how to build the console when there is no build', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'tripcap-console-none-'));
    const bare = await createApiHarness({ consoleDir: empty });
    try {
      const reply = await bare.request({ method: 'GET', url: '/', token: null });
      expect(reply.status).toBe(404);
      expect(reply.text).toContain('npm run build');
    } finally {
      await bare.close();
      await rm(empty, { recursive: true, force: true });
    }
  });
});

describe('GET /tripcap/v1/me', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await createApiHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it("tells each role its permissions and the server's subscription", async () => {
    const admin = await h.request({ method: 'GET', url: '/tripcap/v1/me' });
    expect(admin.status).toBe(200);
    expect(admin.json).toEqual({
      name: 'admin',
      role: 'admin',
      permissions: ['read', 'capture:write', 'resource:write', 'pcap:download', 'token:admin'],
      subscriptionId: SUBSCRIPTION,
    });
    const expected = {
      reader: ['read'],
      operator: ['read', 'capture:write'],
      contributor: ['read', 'capture:write', 'resource:write', 'pcap:download'],
    } as const;
    for (const [role, permissions] of Object.entries(expected)) {
      const { token } = await h.tokenFor(role as keyof typeof expected, `night-${role}`);
      const reply = await h.request({ method: 'GET', url: '/tripcap/v1/me', token });
      expect(reply.json).toMatchObject({ name: `night-${role}`, role, permissions });
    }
  });

  it('refuses callers without a token, and function keys', async () => {
    expect((await h.request({ method: 'GET', url: '/tripcap/v1/me', token: null })).status).toBe(401);
    const key = await h.tokenFor('function');
    expect((await h.request({ method: 'GET', url: '/tripcap/v1/me', token: key.token })).status).toBe(403);
  });
});

describe('test fire a metric alert rule', () => {
  let h: ApiHarness;
  let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;
  const vm1 = vmId(RG, 'vm1');

  const rule = (actions: unknown[]) => ({
    location: 'global',
    properties: {
      severity: 2,
      scopes: [`/subscriptions/${SUBSCRIPTION}/resourceGroups/${RG}`],
      evaluationFrequency: 'PT1M',
      windowSize: 'PT5M',
      criteria: {
        'odata.type': 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria',
        allOf: [
          {
            criterionType: 'StaticThresholdCriterion',
            name: 'out',
            metricName: 'Network Out Total',
            timeAggregation: 'Total',
            operator: 'GreaterThan',
            threshold: 5000,
          },
        ],
      },
      actions,
    },
  });

  beforeAll(async () => {
    receiver = await startWebhookReceiver();
    h = await createApiHarness();
    await h.registerVm({ name: 'vm1', resourceGroup: RG, location: 'westeurope' });
    await h.registerVm({ name: 'vm2', resourceGroup: RG, location: 'westeurope' });
    const group = await h.request({
      method: 'PUT',
      url: `${INSIGHTS}/actionGroups/oncall?api-version=2023-01-01`,
      body: {
        location: 'Global',
        properties: {
          groupShortName: 'oncall',
          webhookReceivers: [{ name: 'hook', serviceUri: `${receiver.url}/hook`, useCommonAlertSchema: true }],
        },
      },
    });
    expect(group.status).toBe(201);
    const groupId = (group.json as { id: string }).id;
    for (const [name, actions] of [
      ['outbound', [{ actionGroupId: groupId }]],
      ['silent', []],
    ] as const) {
      const put = await h.request({
        method: 'PUT',
        url: `${INSIGHTS}/metricAlerts/${name}?api-version=2018-03-01`,
        body: rule([...actions]),
      });
      expect(put.status, put.text).toBe(201);
    }
  });
  afterAll(async () => {
    receiver.close();
    await h.close();
  });

  it("sends the rule's action groups a Fired alert for a VM of its scope, as a real firing would", async () => {
    const reply = await h.request({
      method: 'POST',
      url: `${INSIGHTS}/metricAlerts/outbound/testFire?api-version=2018-03-01`,
      body: { vm: 'vm2' },
    });
    expect(reply.status, reply.text).toBe(202);
    const answer = reply.json as { alertId: string; vm: string; deliveries: number; firedDateTime: string };
    expect(answer).toMatchObject({ vm: vmId(RG, 'vm2'), deliveries: 1 });
    await h.monitor.actionGroups.runDue();
    expect(receiver.posts).toHaveLength(1);
    const essentials = receiver.posts[0]?.body.data.essentials;
    expect(essentials).toMatchObject({
      alertRule: 'outbound',
      monitorCondition: 'Fired',
      severity: 'Sev2',
      alertTargetIDs: [vmId(RG, 'vm2').toLowerCase()],
    });
    expect(essentials.alertId).toContain(answer.alertId);
    expect(essentials.description).toMatch(/^Test fire of rule 'outbound'/);
    // Its delivery is in the group's log; no alert instance is recorded.
    const deliveries = await h.request({
      method: 'GET',
      url: `${INSIGHTS}/actionGroups/oncall/deliveries?api-version=2023-01-01`,
    });
    expect(deliveries.json).toMatchObject({ value: [{ alertId: answer.alertId, status: 'Succeeded' }] });
    const alerts = await h.request({
      method: 'GET',
      url: `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.AlertsManagement/alerts?api-version=2019-05-05-preview`,
    });
    expect(alerts.json).toEqual({ value: [] });
  });

  it('picks the first VM of the scope by name when none is given', async () => {
    const reply = await h.request({
      method: 'POST',
      url: `${INSIGHTS}/metricAlerts/outbound/testFire?api-version=2018-03-01`,
    });
    expect(reply.status, reply.text).toBe(202);
    expect((reply.json as { vm: string }).vm).toBe(vm1);
  });

  it('refuses what it cannot do, saying why', async () => {
    const cases: Array<[string, unknown, number, string | undefined, RegExp]> = [
      ['silent', {}, 400, 'properties.actions', /no action groups/],
      ['outbound', { vm: 'vm9' }, 400, 'vm', /not in the scope.*vm1, vm2/],
      ['outbound', { vm: 42 }, 400, 'vm', /name or id of a VM/],
      ['nosuch', {}, 404, undefined, /was not found/],
    ];
    for (const [name, body, status, target, message] of cases) {
      const reply = await h.request({
        method: 'POST',
        url: `${INSIGHTS}/metricAlerts/${name}/testFire?api-version=2018-03-01`,
        body,
      });
      const error = (reply.json as { error: { message: string; target?: string } }).error;
      expect(reply.status, `${name} ${JSON.stringify(body)}`).toBe(status);
      expect(error.target).toBe(target);
      expect(error.message).toMatch(message);
    }
    const reader = await h.tokenFor('reader');
    const refused = await h.request({
      method: 'POST',
      url: `${INSIGHTS}/metricAlerts/outbound/testFire?api-version=2018-03-01`,
      token: reader.token,
    });
    expect(refused.status).toBe(403);
  });
});

describe('capture-on-alert jobs name their alert', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await createApiHarness();
  });
  afterAll(async () => {
    await h.close();
  });

  it("gives each job from Azure's common alert schema the alert's id, so that the two can be joined", async () => {
    const alertId = randomUUID();
    const event: AlertEvent = {
      alertId,
      monitorCondition: 'Fired',
      rule: {
        id: `${INSIGHTS}/metricAlerts/outbound`,
        name: 'outbound',
        description: '',
        severity: 3,
        subscriptionId: SUBSCRIPTION,
        resourceGroup: RG,
        conditionType: 'MultipleResourceMultipleMetricCriteria',
        windowSize: 'PT5M',
        webHookProperties: {},
      },
      // A VM tripcap does not know: the function records the alert and captures nothing.
      target: {
        id: vmId(RG, 'ghost'),
        name: 'ghost',
        subscriptionId: SUBSCRIPTION,
        resourceGroup: RG,
        vmGuid: randomUUID(),
        location: 'westeurope',
      },
      firedDateTime: new Date().toISOString(),
      resolvedDateTime: null,
      windowStartTime: new Date(Date.now() - 300_000).toISOString(),
      windowEndTime: new Date().toISOString(),
      criteria: [],
    };
    const key = await h.tokenFor('function');
    const post = await h.request({
      method: 'POST',
      url: '/api/capture-on-alert',
      headers: { 'x-functions-key': key.token },
      token: null,
      body: commonAlertSchema(event),
    });
    expect(post.status, post.text).toBe(400);
    const jobs = await h.request({ method: 'GET', url: '/tripcap/v1/functions/capture-on-alert/jobs' });
    expect(jobs.json).toMatchObject({
      value: [
        {
          status: 'Rejected',
          alertId: `/subscriptions/${SUBSCRIPTION}/providers/microsoft.alertsmanagement/alerts/${alertId}`,
          watcher: null,
        },
      ],
    });
  });
});

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fullCommon, nonCommon, shapeDiff } from '../alert-samples.js';
import { netnsSkipReason, sendUdp } from '../netns.js';
import { type ReceivedPost, startWebhookReceiver } from '../webhook-receiver.js';
import { CLI, createE2eEnv, type E2eEnv, poll, RESOURCE_GROUP, SUBSCRIPTION, VM_ID } from './harness.js';

/*
 * A metric alert end to end: the real agent in namespace A samples its NICs; the server evaluates a PT10S rule on
 * A's Network Out Total; a UDP burst from A to B fires it; the action groups POST Azure's payloads (common schema to
 * one webhook, the AzureMonitorMetricAlert schema to another and to a function receiver) to receivers this test
 * runs; when the traffic stops the alert resolves and they are told again. Needs root; skipped with the reason.
 */

const execFileAsync = promisify(execFile);
const skipReason = netnsSkipReason();

const THRESHOLD = 1_000_000;
const FREQUENCY_MS = 10_000;
const INSIGHTS = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Insights`;

const condition = (r: ReceivedPost) =>
  r.body.schemaId === 'AzureMonitorMetricAlert' ? r.body.data.status : r.body.data.essentials.monitorCondition;

describe.skipIf(skipReason !== undefined)(
  `metric alert end to end: burst → Fired → webhooks → Resolved${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let env: E2eEnv;
    let receiver: Awaited<ReturnType<typeof startWebhookReceiver>>;

    beforeAll(async () => {
      env = await createE2eEnv();
      receiver = await startWebhookReceiver();
    }, 60_000);
    afterAll(async () => {
      receiver?.close();
      await env?.destroy();
    });

    it('fires at the first evaluation whose window crossed, in each schema, and resolves after the burst', async ({
      onTestFailed,
    }) => {
      onTestFailed(() => console.error(env.logs(), JSON.stringify(receiver.posts, null, 1).slice(0, 5000)));
      const common = await env.api.call<{ id: string }>(
        'PUT',
        `${INSIGHTS}/actionGroups/common?api-version=2023-01-01`,
        {
          location: 'Global',
          properties: {
            groupShortName: 'common',
            webhookReceivers: [
              { name: 'hook', serviceUri: `${receiver.url}/common?code=s3cret`, useCommonAlertSchema: true },
            ],
          },
        },
      );
      expect(common.status, JSON.stringify(common.body)).toBe(201);
      const legacy = await env.api.call<{ id: string }>(
        'PUT',
        `${INSIGHTS}/actionGroups/legacy?api-version=2023-01-01`,
        {
          location: 'Global',
          properties: {
            groupShortName: 'legacy',
            webhookReceivers: [{ name: 'hook', serviceUri: `${receiver.url}/legacy`, useCommonAlertSchema: false }],
            azureFunctionReceivers: [
              {
                name: 'fn',
                functionAppResourceId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Web/sites/fnapp`,
                functionName: 'capture-on-alert',
                httpTriggerUrl: `${receiver.url}/function`,
                useCommonAlertSchema: false,
              },
            ],
          },
        },
      );
      expect(legacy.status, JSON.stringify(legacy.body)).toBe(201);
      const rule = await env.api.call('PUT', `${INSIGHTS}/metricAlerts/burst?api-version=2018-03-01`, {
        location: 'global',
        properties: {
          description: 'Outbound burst',
          severity: 3,
          enabled: true,
          scopes: [VM_ID],
          evaluationFrequency: 'PT10S',
          windowSize: 'PT10S',
          criteria: {
            'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria',
            allOf: [
              {
                name: 'Metric1',
                metricName: 'Network Out Total',
                metricNamespace: 'Microsoft.Compute/virtualMachines',
                operator: 'GreaterThan',
                threshold: THRESHOLD,
                timeAggregation: 'Total',
                criterionType: 'StaticThresholdCriterion',
              },
            ],
          },
          autoMitigate: true,
          actions: [
            { actionGroupId: common.body.id },
            { actionGroupId: legacy.body.id, webHookProperties: { customKey1: 'value1', customKey2: 'value2' } },
          ],
        },
      });
      expect(rule.status, JSON.stringify(rule.body)).toBe(201);

      // Quiet so far: the agent's own calls are a few kB a second.
      await new Promise((resolve) => setTimeout(resolve, 12_000));
      expect(receiver.posts).toEqual([]);

      // 3 MB from the VM to its peer in about three seconds.
      const burstStart = Date.now();
      await sendUdp(env.vm, { to: env.peer.ip, port: 9, count: 3000, size: 1000, intervalMs: 1 });
      const burstEnd = Date.now();

      await poll(
        'Fired at all three receivers',
        async () =>
          receiver.posts.filter((r) => condition(r) !== 'Resolved' && condition(r) !== 'Deactivated').length >= 3
            ? true
            : undefined,
        { timeoutMs: 45_000, intervalMs: 250 },
      );
      const fired = receiver.posts.slice(0, 3);
      const byPath = (path: string) => fired.find((r) => r.path.startsWith(path)) as ReceivedPost;

      // The window that fired is the first 10-second window whose total crossed the threshold (per the stored metrics).
      const from = Math.floor(burstStart / FREQUENCY_MS) * FREQUENCY_MS - FREQUENCY_MS;
      const to = Math.ceil(burstEnd / FREQUENCY_MS) * FREQUENCY_MS + FREQUENCY_MS;
      const metrics = await env.api.call<{
        value: Array<{ timeseries: Array<{ data: Array<{ timeStamp: string; total?: number }> }> }>;
      }>(
        'GET',
        `${VM_ID}/providers/microsoft.insights/metrics?metricnames=Network%20Out%20Total&aggregation=Total&interval=PT10S&timespan=${new Date(from).toISOString()}/${new Date(to).toISOString()}`,
      );
      const crossing = metrics.body.value[0]?.timeseries[0]?.data.find((d) => (d.total ?? 0) > THRESHOLD);
      expect(crossing, JSON.stringify(metrics.body)).toBeDefined();
      const windowStart = Date.parse(crossing?.timeStamp ?? '');
      const commonFired = byPath('/common');
      expect(commonFired.body.data.alertContext.condition.windowStartTime).toBe(new Date(windowStart).toISOString());
      expect(commonFired.body.data.alertContext.condition.windowEndTime).toBe(
        new Date(windowStart + FREQUENCY_MS).toISOString(),
      );
      // Evaluated once the window closed (plus the delay for the agent's last batch), within one period.
      expect(commonFired.at - (windowStart + FREQUENCY_MS)).toBeLessThan(FREQUENCY_MS);

      // Key by key against Azure's samples.
      expect(shapeDiff(commonFired.body, fullCommon)).toEqual([
        'data.essentials.resolvedDateTime: missing',
        'data.alertContext.condition.windowStartTime: extra',
        'data.alertContext.condition.windowEndTime: extra',
      ]);
      expect(commonFired.body.data.essentials).toMatchObject({
        alertRule: 'burst',
        severity: 'Sev3',
        monitorCondition: 'Fired',
        alertTargetIDs: [VM_ID.toLowerCase()],
      });
      const [criterion] = commonFired.body.data.alertContext.condition.allOf;
      expect(criterion).toMatchObject({
        metricName: 'Network Out Total',
        operator: 'GreaterThan',
        threshold: String(THRESHOLD),
      });
      expect(criterion.metricValue).toBe(crossing?.total);
      for (const path of ['/legacy', '/function']) {
        const body = byPath(path).body;
        expect(shapeDiff(body, nonCommon), path).toEqual([]);
        expect(body.data).toMatchObject({
          status: 'Activated',
          properties: { customKey1: 'value1', customKey2: 'value2' },
        });
        expect(body.data.context).toMatchObject({
          name: 'burst',
          resourceId: VM_ID,
          resourceType: 'Microsoft.Compute/virtualMachines',
        });
      }

      // Quiet again: three clean evaluations resolve it.
      await poll('Resolved at all three receivers', async () => (receiver.posts.length >= 6 ? true : undefined), {
        timeoutMs: 60_000,
        intervalMs: 500,
      });
      const resolved = receiver.posts.slice(3);
      expect(resolved.map(condition).sort()).toEqual(['Deactivated', 'Deactivated', 'Resolved']);
      const commonResolved = resolved.find((r) => r.path.startsWith('/common')) as ReceivedPost;
      expect(shapeDiff(commonResolved.body, fullCommon)).toEqual([
        'data.alertContext.condition.windowStartTime: extra',
        'data.alertContext.condition.windowEndTime: extra',
      ]);
      expect(commonResolved.body.data.essentials.alertId).toBe(commonFired.body.data.essentials.alertId);
      // Three clean windows after the one that fired, at the earliest.
      expect(Date.parse(commonResolved.body.data.alertContext.condition.windowEndTime)).toBeGreaterThanOrEqual(
        windowStart + 4 * FREQUENCY_MS,
      );

      // The API and the CLI show the alert and each delivery (the function key stays out of sight).
      const alertId = String(commonFired.body.data.essentials.alertId).split('/').pop();
      const alert = await env.api.call<{
        properties: { essentials: { monitorCondition: string }; deliveries: Array<{ status: string; target: string }> };
      }>('GET', `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.AlertsManagement/alerts/${alertId}`);
      expect(alert.body.properties.essentials.monitorCondition).toBe('Resolved');
      expect(alert.body.properties.deliveries.map((d) => d.status)).toEqual(Array(6).fill('Succeeded'));
      expect(JSON.stringify(alert.body)).not.toContain('s3cret');
      const { stdout } = await execFileAsync(process.execPath, [
        CLI,
        'alert',
        'list',
        ...['--server', env.serverUrl, '--token', env.adminToken, '--ca', `${env.dir}/server-cert.pem`],
      ]);
      expect(stdout).toMatch(/burst\s+vm1\s+Sev3\s+Resolved/);
      expect(receiver.posts).toHaveLength(6);
    }, 150_000); // quiet window, burst, firing, then three clean PT10S evaluations: about a minute
  },
);

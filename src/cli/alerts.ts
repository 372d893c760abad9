import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { sleep } from '../lib/time.js';
import { type ApiClient, type ConnectionOptions, withApi } from './lazy-api.js';
import { createProgressLine, print } from './output.js';

const RULES_API = 'api-version=2018-03-01';
const GROUPS_API = 'api-version=2023-01-01';
const ALERTS_API = 'api-version=2019-05-05-preview';

type Options = ConnectionOptions & Record<string, string | boolean | string[] | undefined>;
type Criterion = Record<string, unknown>;

const AGGREGATIONS: Record<string, string> = {
  avg: 'Average',
  average: 'Average',
  min: 'Minimum',
  minimum: 'Minimum',
  max: 'Maximum',
  maximum: 'Maximum',
  total: 'Total',
  sum: 'Total',
  count: 'Count',
};
const OPERATORS: Record<string, string> = {
  '=': 'Equals',
  '==': 'Equals',
  '!=': 'NotEquals',
  '>': 'GreaterThan',
  '>=': 'GreaterThanOrEqual',
  '<': 'LessThan',
  '<=': 'LessThanOrEqual',
};
const DYNAMIC_OPERATORS: Record<string, string> = { '>': 'GreaterThan', '<': 'LessThan', '><': 'GreaterOrLessThan' };

/**
 * `az monitor metrics alert create --condition` grammar: `AGG METRIC OP THRESHOLD` (static) or
 * `AGG METRIC OP dynamic SENSITIVITY VIOLATIONS of PERIODS [since DATE]` (dynamic), e.g.
 * `total Network Out Total > 500000000`, `avg Percentage CPU > dynamic medium 2 of 4`.
 */
export function parseCondition(text: string, index: number): Criterion {
  const words = text.trim().split(/\s+/);
  const usage = `--condition '${text}' is not understood: write 'AGGREGATION METRIC OPERATOR THRESHOLD' (e.g. 'total Network Out Total > 500000000') or 'AGGREGATION METRIC OPERATOR dynamic low|medium|high N of M'.`;
  const aggregation = AGGREGATIONS[(words[0] ?? '').toLowerCase()];
  const dynamicAt = words.findIndex((w) => w.toLowerCase() === 'dynamic');
  if (!aggregation) throw new Error(usage);
  const base = { name: `Metric${index + 1}`, timeAggregation: aggregation, dimensions: [] };
  if (dynamicAt > 0) {
    const operator = DYNAMIC_OPERATORS[words[dynamicAt - 1] ?? ''];
    const [sensitivity, violations, of, periods, since, date] = words.slice(dynamicAt + 1);
    if (
      !operator ||
      !sensitivity ||
      of?.toLowerCase() !== 'of' ||
      !/^\d+$/.test(violations ?? '') ||
      !/^\d+$/.test(periods ?? '')
    ) {
      throw new Error(usage);
    }
    if (since !== undefined && (since.toLowerCase() !== 'since' || !date)) throw new Error(usage);
    return {
      ...base,
      criterionType: 'DynamicThresholdCriterion',
      metricName: words.slice(1, dynamicAt - 1).join(' '),
      operator,
      alertSensitivity: sensitivity.charAt(0).toUpperCase() + sensitivity.slice(1).toLowerCase(),
      failingPeriods: { numberOfEvaluationPeriods: Number(periods), minFailingPeriodsToAlert: Number(violations) },
      ...(date ? { ignoreDataBefore: date } : {}),
    };
  }
  const operator = OPERATORS[words.at(-2) ?? ''];
  const threshold = Number(words.at(-1));
  if (!operator || words.length < 4 || !Number.isFinite(threshold)) throw new Error(usage);
  return {
    ...base,
    criterionType: 'StaticThresholdCriterion',
    metricName: words.slice(1, -2).join(' '),
    operator,
    threshold,
  };
}

/** `5m`, `30s`, `1h`, `1d` (as az takes them) or an ISO-8601 duration, to ISO-8601. */
export function isoDuration(text: string, flag: string): string {
  if (/^P/i.test(text)) return text.toUpperCase();
  const m = /^(\d+)\s*([smhd])$/i.exec(text.trim());
  if (!m) throw new Error(`${flag} takes a duration such as 30s, 1m, 5m, 1h, 1d or PT5M, not '${text}'.`);
  const unit = (m[2] ?? '').toUpperCase();
  return unit === 'D' ? `P${m[1]}D` : `PT${m[1]}${unit}`;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];
const rgPath = (api: ApiClient, rg: string) =>
  `/subscriptions/${api.subscription}/resourceGroups/${encodeURIComponent(rg)}`;

/** `--file`: an ARM resource (`{ location, tags, properties }`) or just its `properties`. */
function armBodyFromFile(file: string, location: string): Record<string, unknown> {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`--file ${file}: ${(err as Error).message}`);
  }
  return 'properties' in json ? json : { location, properties: json };
}

/** An action group's id from a name (in the rule's resource group) or a full id. */
function actionGroupId(api: ApiClient, rg: string, nameOrId: string): string {
  return nameOrId.startsWith('/')
    ? nameOrId
    : `${rgPath(api, rg)}/providers/Microsoft.Insights/actionGroups/${nameOrId}`;
}

function scopesOf(api: ApiClient, rg: string, o: Options): string[] | undefined {
  const scopes = [...((o.scopes as string[] | undefined) ?? [])];
  for (const vm of (o.vm as string[] | undefined) ?? []) {
    scopes.push(`${rgPath(api, rg)}/providers/Microsoft.Compute/virtualMachines/${vm}`);
  }
  return scopes.length ? scopes : undefined;
}

/** The rule properties the flags set (only those given, so `update` changes just them). */
function ruleProperties(api: ApiClient, rg: string, o: Options): Record<string, unknown> {
  const p: Record<string, unknown> = {};
  const scopes = scopesOf(api, rg, o);
  if (scopes) p.scopes = scopes;
  const conditions = (o.condition as string[] | undefined) ?? [];
  if (conditions.length) {
    const allOf = conditions.map(parseCondition);
    const dynamic = allOf.some((c) => c.criterionType === 'DynamicThresholdCriterion');
    p.criteria = {
      'odata.type': `Microsoft.Azure.Monitor.${dynamic || (scopes?.length ?? 0) !== 1 || !scopes?.[0]?.includes('/virtualMachines/') ? 'MultipleResourceMultipleMetricCriteria' : 'SingleResourceMultipleMetricCriteria'}`,
      allOf,
    };
  }
  if (o.windowSize) p.windowSize = isoDuration(String(o.windowSize), '--window-size');
  if (o.evaluationFrequency)
    p.evaluationFrequency = isoDuration(String(o.evaluationFrequency), '--evaluation-frequency');
  if (o.severity !== undefined) p.severity = Number(o.severity);
  if (o.description !== undefined) p.description = String(o.description);
  if (o.enabled !== undefined) {
    if (!['true', 'false'].includes(String(o.enabled))) throw new Error(`--enabled takes true or false.`);
    p.enabled = o.enabled === 'true';
  }
  if (o.autoMitigate !== undefined) {
    if (!['true', 'false'].includes(String(o.autoMitigate))) throw new Error(`--auto-mitigate takes true or false.`);
    p.autoMitigate = o.autoMitigate === 'true';
  }
  const actions = (o.action as string[] | undefined) ?? [];
  if (actions.length) p.actions = actions.map((a) => ({ actionGroupId: actionGroupId(api, rg, a) }));
  return p;
}

interface RuleView {
  id: string;
  name: string;
  properties: {
    enabled: boolean;
    severity: number;
    windowSize: string;
    evaluationFrequency: string;
    scopes: string[];
    criteria: { allOf: Criterion[] };
    actions: Array<{ actionGroupId: string }>;
  };
}

/** A criterion as one line, in the --condition grammar. */
function conditionText(c: Criterion): string {
  const agg = Object.entries(AGGREGATIONS).find(([, v]) => v === c.timeAggregation)?.[0];
  if (c.criterionType === 'DynamicThresholdCriterion') {
    const op = Object.entries(DYNAMIC_OPERATORS).find(([, v]) => v === c.operator)?.[0];
    const fp = c.failingPeriods as { numberOfEvaluationPeriods: number; minFailingPeriodsToAlert: number };
    return `${agg} ${c.metricName} ${op} dynamic ${String(c.alertSensitivity).toLowerCase()} ${fp.minFailingPeriodsToAlert} of ${fp.numberOfEvaluationPeriods}`;
  }
  const op = Object.entries(OPERATORS).find(([, v]) => v === c.operator)?.[0];
  return `${agg} ${c.metricName} ${op} ${c.threshold}`;
}

const ruleRow = (r: RuleView) => ({
  Name: r.name,
  Enabled: String(r.properties.enabled),
  Sev: r.properties.severity,
  Window: r.properties.windowSize,
  Every: r.properties.evaluationFrequency,
  Condition: r.properties.criteria.allOf.map(conditionText).join(' and '),
  Scopes: r.properties.scopes.map((s) => s.split('/').pop()).join(','),
  Actions: r.properties.actions.map((a) => a.actionGroupId.split('/').pop()).join(','),
});

function ruleFlags(cmd: Command): Command {
  return cmd
    .option('--scopes <id>', 'a VM, resource group or subscription id to watch (repeat for several)', collect)
    .option('--vm <name>', 'a VM of the resource group to watch (repeat for several)', collect)
    .option(
      '--condition <text>',
      "'total Network Out Total > 500000000' or 'avg Percentage CPU > dynamic medium 2 of 4' (repeat: all must hold)",
      collect,
    )
    .option(
      '--window-size <d>',
      'window the metric is aggregated over: 1m, 5m, 15m, 30m, 1h, 6h, 12h, 1d (10s-30s: tripcap extension)',
    )
    .option('--evaluation-frequency <d>', 'how often the rule runs: 1m, 5m, 15m, 30m, 1h (10s-30s: tripcap extension)')
    .option('--severity <n>', '0 (critical) to 4 (verbose)')
    .option('--description <text>', 'what the rule is for')
    .option('--action <group>', 'action group name (same resource group) or id (repeat for several)', collect)
    .option(
      '--auto-mitigate <bool>',
      'resolve after three clean evaluations (true) or fire at each met evaluation (false)',
    )
    .option('--enabled <bool>', 'true or false');
}

export function registerAlertCommands(program: Command, connectionOptions: (cmd: Command) => Command) {
  const alert = program.command('alert').description('Metric alert rules and the alerts they fired (Azure Monitor).');
  const rule = alert.command('rule').description('Metric alert rules (Microsoft.Insights/metricAlerts).');

  connectionOptions(
    ruleFlags(
      rule
        .command('create')
        .description('Create or replace a rule, from flags or an ARM body (--file).')
        .argument('<name>', 'rule name')
        .requiredOption('-g, --resource-group <rg>', 'resource group of the rule')
        .option('--file <json>', "an ARM resource ({ location, tags, properties }) or just its 'properties'")
        .option('-o, --output <format>', 'table or json', 'table'),
    ),
  ).action(async (name: string, o: Options) =>
    withApi(o, async (api) => {
      const rg = String(o.resourceGroup);
      let body: Record<string, unknown>;
      if (o.file) {
        body = armBodyFromFile(String(o.file), 'global');
      } else {
        body = {
          location: 'global',
          properties: { windowSize: 'PT5M', evaluationFrequency: 'PT1M', ...ruleProperties(api, rg, o) },
        };
      }
      const path = `${rgPath(api, rg)}/providers/Microsoft.Insights/metricAlerts/${encodeURIComponent(name)}?${RULES_API}`;
      const { status, body: created } = await api.json<RuleView>('PUT', path, body);
      process.stderr.write(`${status === 201 ? 'Created' : 'Replaced'} rule ${created.id}\n`);
      print(String(o.output), created, [ruleRow(created)]);
    }),
  );

  connectionOptions(
    ruleFlags(
      rule
        .command('update')
        .description('Change some of a rule (the rest stays).')
        .argument('<name>', 'rule name')
        .requiredOption('-g, --resource-group <rg>', 'resource group of the rule')
        .option('-o, --output <format>', 'table or json', 'table'),
    ),
  ).action(async (name: string, o: Options) =>
    withApi(o, async (api) => {
      const rg = String(o.resourceGroup);
      const properties = ruleProperties(api, rg, o);
      if (Object.keys(properties).length === 0) throw new Error('Nothing to change: give at least one option.');
      const path = `${rgPath(api, rg)}/providers/Microsoft.Insights/metricAlerts/${encodeURIComponent(name)}?${RULES_API}`;
      const { body } = await api.json<RuleView>('PATCH', path, { properties });
      print(String(o.output), body, [ruleRow(body)]);
    }),
  );

  connectionOptions(
    rule
      .command('list')
      .description('List rules.')
      .option('-g, --resource-group <rg>', 'only this resource group')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (o: Options) =>
    withApi(o, async (api) => {
      const base = o.resourceGroup ? rgPath(api, String(o.resourceGroup)) : `/subscriptions/${api.subscription}`;
      const { body } = await api.json<{ value: RuleView[] }>(
        'GET',
        `${base}/providers/Microsoft.Insights/metricAlerts?${RULES_API}`,
      );
      print(String(o.output), body.value, body.value.map(ruleRow));
    }),
  );

  registerShowDelete(rule, connectionOptions, {
    what: 'rule',
    path: (api, rg, name) =>
      `${rgPath(api, rg)}/providers/Microsoft.Insights/metricAlerts/${encodeURIComponent(name)}?${RULES_API}`,
    row: ruleRow,
  });

  interface AlertView {
    id: string;
    name: string;
    properties: {
      essentials: {
        severity: string;
        monitorCondition: string;
        targetResourceName: string;
        startDateTime: string;
        monitorConditionResolvedDateTime?: string;
      };
      context: { criteria: Array<{ metricName: string; metricValue: number | null; threshold: number }> };
      deliveries: Array<{ receiverName: string; status: string; monitorCondition: string }>;
    };
  }
  const alertRow = (a: AlertView) => ({
    Fired: a.properties.essentials.startDateTime,
    Rule: a.name,
    VM: a.properties.essentials.targetResourceName,
    Sev: a.properties.essentials.severity,
    Condition: a.properties.essentials.monitorCondition,
    Resolved: a.properties.essentials.monitorConditionResolvedDateTime ?? '',
    Value: a.properties.context.criteria
      .map((c) => `${c.metricName}=${c.metricValue ?? 'none'} (threshold ${c.threshold})`)
      .join('; '),
    Notified: a.properties.deliveries.map((d) => `${d.monitorCondition} ${d.receiverName}:${d.status}`).join(', '),
    Id: a.id.split('/').pop(),
  });

  connectionOptions(
    alert
      .command('list')
      .description('Alerts fired by the rules, newest first.')
      .option('--state <condition>', 'Fired or Resolved')
      .option('--time-range <range>', '1h, 1d, 7d or 30d', '1d')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (o: Options) =>
    withApi(o, async (api) => {
      const q = new URLSearchParams({ 'api-version': '2019-05-05-preview', timeRange: String(o.timeRange) });
      if (o.state) q.set('monitorCondition', String(o.state));
      const { body } = await api.json<{ value: AlertView[] }>(
        'GET',
        `/subscriptions/${api.subscription}/providers/Microsoft.AlertsManagement/alerts?${q}`,
      );
      print(String(o.output), body.value, body.value.map(alertRow));
    }),
  );
  connectionOptions(
    alert
      .command('show')
      .description('One alert: its window, values and notifications.')
      .argument('<id>', 'alert id (tripcap alert list)')
      .option('-o, --output <format>', 'table or json', 'json'),
  ).action(async (id: string, o: Options) =>
    withApi(o, async (api) => {
      const { body } = await api.json<AlertView>(
        'GET',
        `/subscriptions/${api.subscription}/providers/Microsoft.AlertsManagement/alerts/${encodeURIComponent(id)}?${ALERTS_API}`,
      );
      print(String(o.output), body, [alertRow(body)]);
    }),
  );

  registerActionGroupCommands(program, connectionOptions);
}

/** `show NAME -g RG` and `delete NAME -g RG` of a resource kind. */
function registerShowDelete<T>(
  parent: Command,
  connectionOptions: (cmd: Command) => Command,
  kind: {
    what: string;
    path: (api: ApiClient, rg: string, name: string) => string;
    row: (v: T) => Record<string, string | number>;
  },
) {
  for (const verb of ['show', 'delete'] as const) {
    connectionOptions(
      parent
        .command(verb)
        .description(`${verb === 'show' ? 'Show' : 'Delete'} one ${kind.what}.`)
        .argument('<name>', `${kind.what} name`)
        .requiredOption('-g, --resource-group <rg>', 'resource group')
        .option('-o, --output <format>', 'table or json', verb === 'show' ? 'json' : 'table'),
    ).action(async (name: string, o: Options) =>
      withApi(o, async (api) => {
        const path = kind.path(api, String(o.resourceGroup), name);
        if (verb === 'show') {
          const { body } = await api.json<T>('GET', path);
          print(String(o.output), body, [kind.row(body)]);
          return;
        }
        const { status } = await api.json('DELETE', path);
        process.stderr.write(status === 204 ? `No ${kind.what} ${name}.\n` : `Deleted ${kind.what} ${name}.\n`);
      }),
    );
  }
}

interface GroupView {
  id: string;
  name: string;
  properties: {
    groupShortName: string;
    enabled: boolean;
    emailReceivers: Array<{ name: string; emailAddress: string }>;
    webhookReceivers: Array<{ name: string; serviceUri: string }>;
    azureFunctionReceivers: Array<{ name: string; httpTriggerUrl: string }>;
  };
}

const groupRow = (g: GroupView) => ({
  Name: g.name,
  Short: g.properties.groupShortName,
  Enabled: String(g.properties.enabled),
  Receivers: [
    ...g.properties.webhookReceivers.map((r) => `webhook:${r.name}`),
    ...g.properties.azureFunctionReceivers.map((r) => `function:${r.name}`),
    ...g.properties.emailReceivers.map((r) => `email:${r.name}`),
  ].join(', '),
});

/** `NAME=VALUE` of --webhook, --function and --email. */
function namedValue(text: string, flag: string): [string, string] {
  const at = text.indexOf('=');
  if (at < 1) throw new Error(`${flag} takes NAME=VALUE, not '${text}'.`);
  return [text.slice(0, at), text.slice(at + 1)];
}

function registerActionGroupCommands(program: Command, connectionOptions: (cmd: Command) => Command) {
  const group = program.command('action-group').description('Action groups: who is told when an alert fires.');
  const groupPath = (api: ApiClient, rg: string, name: string) =>
    `${rgPath(api, rg)}/providers/Microsoft.Insights/actionGroups/${encodeURIComponent(name)}`;

  connectionOptions(
    group
      .command('create')
      .description('Create or replace an action group, from flags or an ARM body (--file).')
      .argument('<name>', 'action group name')
      .requiredOption('-g, --resource-group <rg>', 'resource group')
      .option('--short-name <name>', 'up to 12 characters (default: the name)')
      .option('--webhook <name=url>', 'a webhook receiver (repeat for several)', collect)
      .option('--function <name=url>', 'an Azure Function receiver by its HTTP trigger URL (repeat)', collect)
      .option('--email <name=address>', 'an e-mail receiver (repeat); needs smtpHost on the server', collect)
      .option(
        '--no-common-schema',
        "send the older schemas (AzureMonitorMetricAlert) instead of Azure's common alert schema",
      )
      .option('--file <json>', "an ARM resource ({ location, properties }) or just its 'properties'")
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (name: string, o: Options) =>
    withApi(o, async (api) => {
      let body: Record<string, unknown>;
      if (o.file) {
        body = armBodyFromFile(String(o.file), 'Global');
      } else {
        const useCommonAlertSchema = o.commonSchema !== false;
        body = {
          location: 'Global',
          properties: {
            groupShortName: String(o.shortName ?? name).slice(0, 12),
            enabled: true,
            webhookReceivers: ((o.webhook as string[] | undefined) ?? []).map((w) => {
              const [n, serviceUri] = namedValue(w, '--webhook');
              return { name: n, serviceUri, useCommonAlertSchema };
            }),
            azureFunctionReceivers: ((o.function as string[] | undefined) ?? []).map((f) => {
              const [n, httpTriggerUrl] = namedValue(f, '--function');
              return {
                name: n,
                functionAppResourceId: `${rgPath(api, String(o.resourceGroup))}/providers/Microsoft.Web/sites/${n}`,
                functionName: n,
                httpTriggerUrl,
                useCommonAlertSchema,
              };
            }),
            emailReceivers: ((o.email as string[] | undefined) ?? []).map((e) => {
              const [n, emailAddress] = namedValue(e, '--email');
              return { name: n, emailAddress, useCommonAlertSchema };
            }),
          },
        };
      }
      const { status, body: created } = await api.json<GroupView>(
        'PUT',
        `${groupPath(api, String(o.resourceGroup), name)}?${GROUPS_API}`,
        body,
      );
      process.stderr.write(`${status === 201 ? 'Created' : 'Replaced'} action group ${created.id}\n`);
      print(String(o.output), created, [groupRow(created)]);
    }),
  );

  connectionOptions(
    group
      .command('list')
      .description('List action groups.')
      .option('-g, --resource-group <rg>', 'only this resource group')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (o: Options) =>
    withApi(o, async (api) => {
      const base = o.resourceGroup ? rgPath(api, String(o.resourceGroup)) : `/subscriptions/${api.subscription}`;
      const { body } = await api.json<{ value: GroupView[] }>(
        'GET',
        `${base}/providers/Microsoft.Insights/actionGroups?${GROUPS_API}`,
      );
      print(String(o.output), body.value, body.value.map(groupRow));
    }),
  );

  registerShowDelete(group, connectionOptions, {
    what: 'action group',
    path: (api, rg, name) => `${groupPath(api, rg, name)}?${GROUPS_API}`,
    row: groupRow,
  });

  connectionOptions(
    group
      .command('test')
      .description('Send a sample alert to every receiver of the group and wait for the outcome.')
      .argument('<name>', 'action group name')
      .requiredOption('-g, --resource-group <rg>', 'resource group')
      .option('--alert-type <type>', 'metricstaticthreshold or metricsdynamicthreshold', 'metricstaticthreshold')
      .option('--timeout <seconds>', 'how long to wait for the deliveries (retries take up to 75 s)', '120')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (name: string, o: Options) =>
    withApi(o, async (api) => {
      const { headers } = await api.json(
        'POST',
        `${groupPath(api, String(o.resourceGroup), name)}/createNotifications?${GROUPS_API}`,
        {
          alertType: String(o.alertType),
        },
      );
      const location = String(headers.location ?? '');
      const statusPath = location.replace(/^https?:\/\/[^/]+/, '');
      const progress = createProgressLine();
      const deadline = Date.now() + Number(o.timeout) * 1000;
      interface Details {
        state: string;
        actionDetails: Array<{
          MechanismType: string;
          Name: string;
          Status: string;
          SendTime: string | null;
          Detail: string | null;
        }>;
      }
      let details: Details;
      for (;;) {
        details = (await api.json<Details>('GET', statusPath)).body;
        const pending = details.actionDetails.filter((d) => d.Status === 'Pending').length;
        progress.update(
          `test notification: ${details.state}, ${details.actionDetails.length - pending}/${details.actionDetails.length} receivers done`,
        );
        if (details.state === 'Completed' || Date.now() > deadline) break;
        await sleep(1000);
      }
      progress.done();
      print(
        String(o.output),
        details,
        details.actionDetails.map((d) => ({
          Receiver: d.Name,
          Kind: d.MechanismType,
          Status: d.Status,
          Sent: d.SendTime ?? '',
          Detail: d.Detail ?? '',
        })),
      );
      if (details.actionDetails.some((d) => d.Status === 'Failed')) process.exitCode = 1;
    }),
  );

  connectionOptions(
    group
      .command('deliveries')
      .description('Every notification the group sent, with each attempt (newest first).')
      .argument('<name>', 'action group name')
      .requiredOption('-g, --resource-group <rg>', 'resource group')
      .option('--top <n>', 'how many', '50')
      .option('-o, --output <format>', 'table or json', 'table'),
  ).action(async (name: string, o: Options) =>
    withApi(o, async (api) => {
      interface Delivery {
        receiverName: string;
        receiverKind: string;
        target: string;
        alertId: string | null;
        notificationId: string | null;
        status: string;
        createdTime: string;
        attempts: Array<{
          attempt: number;
          startedAt: string;
          outcome: string;
          httpStatus: number | null;
          error: string | null;
        }>;
      }
      const { body } = await api.json<{ value: Delivery[] }>(
        'GET',
        `${groupPath(api, String(o.resourceGroup), name)}/deliveries?${GROUPS_API}&$top=${encodeURIComponent(String(o.top))}`,
      );
      print(
        String(o.output),
        body.value,
        body.value.map((d) => {
          const last = d.attempts.at(-1);
          return {
            Created: d.createdTime,
            Receiver: `${d.receiverKind}:${d.receiverName}`,
            Target: d.target,
            For: d.alertId ? `alert ${d.alertId}` : `test ${d.notificationId ?? ''}`,
            Status: d.status,
            Attempts: d.attempts.length,
            Last: last
              ? `${last.outcome}${last.httpStatus ? ` HTTP ${last.httpStatus}` : ''}${last.error ? ` ${last.error}` : ''}`
              : '',
          };
        }),
      );
    }),
  );
}

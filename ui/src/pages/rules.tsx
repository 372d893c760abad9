import { useState } from 'preact/hooks';
import type { StaticOperator, TimeAggregation } from '../../../src/monitor/alert-event.js';
import { type ActionGroup, api, get, parseId, paths, type Rule, type Vm, withVersion } from '../api.js';
import { ActionButton, ApiForm, Badge, Empty, ErrorBox, Field, Section, Select, Table } from '../components.js';
import { isoDuration, metricValue, operatorSign, utc } from '../format.js';
import { useFormState, usePoll } from '../hooks.js';
import { useSession } from '../session.js';

const RULES_VERSION = '2018-03-01';
const MULTIPLE = 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria';
const METRICS = [
  'Network Out Total',
  'Network In Total',
  'Network Packets Out',
  'Network Packets In',
  'Percentage CPU',
  'Available Memory Bytes',
];
const SEVERITIES = ['critical', 'error', 'warning', 'informational', 'verbose'];
// The API's lists (src/monitor): values can't be imported without bundling server code, the types check them.
const AGGREGATIONS: TimeAggregation[] = ['Total', 'Average', 'Maximum', 'Minimum', 'Count'];
const OPERATORS: StaticOperator[] = [
  'GreaterThan',
  'GreaterThanOrEqual',
  'LessThan',
  'LessThanOrEqual',
  'Equals',
  'NotEquals',
];
/** Azure's evaluation frequencies and windows; below a minute is tripcap's extension. */
const FREQUENCIES = ['PT10S', 'PT15S', 'PT20S', 'PT30S', 'PT1M', 'PT5M', 'PT15M', 'PT30M', 'PT1H'];
const WINDOW_SIZES = [...FREQUENCIES, 'PT6H', 'PT12H', 'P1D'];
const durationOption = (d: string) => [d, `${isoDuration(d)} (${d})`] as const;

interface RuleForm {
  name: string;
  resourceGroup: string;
  description: string;
  severity: string;
  enabled: boolean;
  autoMitigate: boolean;
  scopes: string[];
  metricName: string;
  timeAggregation: string;
  operator: string;
  /** As typed: the API checks it and says what is wrong. */
  threshold: string;
  windowSize: string;
  evaluationFrequency: string;
  actionGroupIds: string[];
}

function emptyForm(vms: Vm[]): RuleForm {
  const first = vms[0];
  return {
    name: '',
    resourceGroup: first ? parseId(first.id).resourceGroup : 'tripcap',
    description: '',
    severity: '3',
    enabled: true,
    autoMitigate: true,
    scopes: first ? [first.id] : [],
    metricName: 'Network Out Total',
    timeAggregation: 'Total',
    operator: 'GreaterThan',
    threshold: '',
    windowSize: 'PT5M',
    evaluationFrequency: 'PT1M',
    actionGroupIds: [],
  };
}

/** The form for a rule, when the console can show it whole: one static criterion. */
function formOf(rule: Rule): RuleForm | null {
  const p = rule.properties;
  const c = p.criteria.allOf[0];
  if (p.criteria.allOf.length !== 1 || !c || c.criterionType !== 'StaticThresholdCriterion') return null;
  return {
    name: rule.name,
    resourceGroup: parseId(rule.id).resourceGroup,
    description: p.description,
    severity: String(p.severity),
    enabled: p.enabled,
    autoMitigate: p.autoMitigate,
    scopes: p.scopes,
    metricName: c.metricName,
    timeAggregation: c.timeAggregation,
    operator: c.operator,
    threshold: String(c.threshold ?? ''),
    windowSize: p.windowSize,
    evaluationFrequency: p.evaluationFrequency,
    actionGroupIds: p.actions.map((a) => a.actionGroupId),
  };
}

function bodyOf(form: RuleForm, existing?: Rule) {
  const keep = existing?.properties.actions ?? [];
  return {
    location: existing?.location ?? 'global',
    tags: existing?.tags ?? {},
    properties: {
      description: form.description,
      severity: Number(form.severity),
      enabled: form.enabled,
      autoMitigate: form.autoMitigate,
      scopes: form.scopes,
      evaluationFrequency: form.evaluationFrequency,
      windowSize: form.windowSize,
      criteria: {
        'odata.type': MULTIPLE,
        allOf: [
          {
            criterionType: 'StaticThresholdCriterion',
            name: 'criterion1',
            metricName: form.metricName,
            metricNamespace: 'Microsoft.Compute/virtualMachines',
            timeAggregation: form.timeAggregation,
            operator: form.operator,
            // Sent as typed (Azure accepts a number in a string): the API says what is wrong with it.
            threshold: form.threshold.trim(),
            dimensions: [],
          },
        ],
      },
      actions: form.actionGroupIds.map((id) => ({
        actionGroupId: id,
        webHookProperties:
          keep.find((a) => a.actionGroupId.toLowerCase() === id.toLowerCase())?.webHookProperties ?? {},
      })),
    },
  };
}

function unitHint(metric: string, aggregation: string): string {
  if (/Network (In|Out) Total/.test(metric)) {
    return aggregation === 'Total' ? 'bytes in the whole window' : 'bytes per second (one-second samples)';
  }
  if (/Packets/.test(metric)) return aggregation === 'Total' ? 'packets in the window' : 'packets per second';
  if (/Percentage/.test(metric)) return 'percent, 0–100';
  if (/Memory/.test(metric)) return 'bytes';
  return '';
}

const sameId = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/** Checkboxes that choose ids from a list (ARM ids compare without case). */
function IdChecks({
  name,
  items,
  chosen,
  onChange,
}: {
  name: string;
  items: Array<{ id: string; label: string; detail?: string }>;
  chosen: string[];
  onChange: (chosen: string[]) => void;
}) {
  return (
    <div class="checks">
      {items.map((item) => {
        const checked = chosen.some((id) => sameId(id, item.id));
        return (
          <label key={item.id} class="check">
            <input
              type="checkbox"
              name={name}
              value={item.label}
              checked={checked}
              onChange={() => onChange(checked ? chosen.filter((id) => !sameId(id, item.id)) : [...chosen, item.id])}
            />
            {item.label} {item.detail ? <span class="muted small">{item.detail}</span> : null}
          </label>
        );
      })}
    </div>
  );
}

function RuleEditor({
  initial,
  existing,
  vms,
  groups,
  onDone,
}: {
  initial: RuleForm;
  existing?: Rule;
  vms: Vm[];
  groups: ActionGroup[];
  onDone: () => void;
}) {
  const { sub } = useSession();
  const { form, set, text, check } = useFormState(initial);
  // Scopes that are not one of the VMs listed (a resource group, a subscription, a VM gone) stay choosable.
  const scopeItems = [
    ...vms.map((vm) => ({ id: vm.id, label: vm.name, detail: parseId(vm.id).resourceGroup })),
    ...form.scopes.filter((s) => !vms.some((vm) => sameId(vm.id, s))).map((s) => ({ id: s, label: s })),
  ];
  const threshold = form.threshold.trim() === '' ? Number.NaN : Number(form.threshold);

  return (
    <ApiForm
      name="rule"
      submit={existing ? 'Save rule' : 'Create rule'}
      busyLabel="Saving…"
      action="save-rule"
      errorTitle="Not saved"
      onCancel={onDone}
      onSubmit={async () => {
        await api(
          'PUT',
          withVersion(paths.rule(sub, form.resourceGroup, form.name), RULES_VERSION),
          bodyOf(form, existing),
        );
        onDone();
      }}
    >
      <h3>{existing ? `Edit rule ${existing.name}` : 'New metric alert rule'}</h3>
      <div class="form-grid">
        <Field label="Name">
          <input {...text('name')} disabled={Boolean(existing)} placeholder="outbound-traffic" />
        </Field>
        <Field label="Resource group">
          <input {...text('resourceGroup')} disabled={Boolean(existing)} />
        </Field>
        <Field label="Severity">
          <Select
            {...text('severity')}
            options={SEVERITIES.map((words, i) => [String(i), `Sev${i} ${words}`] as const)}
          />
        </Field>
        <Field label="Description">
          <input {...text('description')} />
        </Field>
      </div>
      <fieldset>
        <legend>Condition: fire when</legend>
        <div class="form-grid">
          <Field label="Aggregation">
            <Select {...text('timeAggregation')} options={AGGREGATIONS} />
          </Field>
          <Field label="Metric">
            <Select {...text('metricName')} options={METRICS} />
          </Field>
          <Field label="Operator">
            <Select {...text('operator')} options={OPERATORS.map((o) => [o, `${operatorSign(o)} ${o}`] as const)} />
          </Field>
          <Field
            label="Threshold"
            hint={`${unitHint(form.metricName, form.timeAggregation)}${Number.isFinite(threshold) ? `: ${metricValue(form.metricName, threshold)}` : ''}`}
          >
            <input inputMode="decimal" {...text('threshold')} placeholder="500000000" />
          </Field>
          <Field label="Over a window of">
            <Select {...text('windowSize')} options={WINDOW_SIZES.map(durationOption)} />
          </Field>
          <Field label="Checked every">
            <Select {...text('evaluationFrequency')} options={FREQUENCIES.map(durationOption)} />
          </Field>
        </div>
      </fieldset>
      <fieldset>
        <legend>On these VMs</legend>
        {scopeItems.length === 0 ? <Empty>No VMs registered yet.</Empty> : null}
        <IdChecks name="scope" items={scopeItems} chosen={form.scopes} onChange={(scopes) => set({ scopes })} />
      </fieldset>
      <fieldset>
        <legend>Then tell these action groups</legend>
        {groups.length === 0 ? <Empty>No action groups yet: create one on the Action groups page.</Empty> : null}
        <IdChecks
          name="actionGroup"
          items={groups.map((g) => ({ id: g.id, label: g.name }))}
          chosen={form.actionGroupIds}
          onChange={(actionGroupIds) => set({ actionGroupIds })}
        />
      </fieldset>
      <div class="checks">
        <label class="check">
          <input {...check('enabled')} />
          Enabled
        </label>
        <label class="check">
          <input {...check('autoMitigate')} />
          Resolve automatically (stateful)
        </label>
      </div>
    </ApiForm>
  );
}

function condition(rule: Rule): string {
  const p = rule.properties;
  const parts = p.criteria.allOf.map((c) =>
    c.criterionType === 'StaticThresholdCriterion'
      ? `${c.timeAggregation} ${c.metricName} ${operatorSign(c.operator)} ${metricValue(c.metricName, c.threshold)}`
      : `${c.timeAggregation} ${c.metricName} ${operatorSign(c.operator)} dynamic (${c.alertSensitivity ?? 'Medium'})`,
  );
  return `${parts.join(' and ')} over ${isoDuration(p.windowSize)}, every ${isoDuration(p.evaluationFrequency)}`;
}

export function RulesPage() {
  const { sub, can } = useSession();
  const rules = usePoll(() => get<{ value: Rule[] }>(paths.rules(sub)), 10_000, [sub]);
  const vms = usePoll(() => get<{ value: Vm[] }>(paths.vms(sub)), 30_000, [sub]);
  const groups = usePoll(() => get<{ value: ActionGroup[] }>(paths.groups(sub)), 30_000, [sub]);
  const [editing, setEditing] = useState<{ rule?: Rule } | null>(null);
  const [notice, setNotice] = useState<string>();
  const write = can('resource:write');
  const vmName = (id: string) => vms.data?.value.find((v) => sameId(v.id, id))?.name ?? parseId(id).name;
  const groupName = (id: string) => parseId(id).name;
  const done = () => {
    setEditing(null);
    rules.refresh();
  };

  return (
    <div>
      <Section
        title="Metric alert rules"
        actions={
          write && !editing ? (
            <button type="button" class="primary" data-action="new-rule" onClick={() => setEditing({})}>
              New rule
            </button>
          ) : null
        }
      >
        {editing && vms.data && groups.data ? (
          <RuleEditor
            key={editing.rule?.id ?? 'new'}
            initial={(editing.rule && formOf(editing.rule)) || emptyForm(vms.data.value)}
            {...(editing.rule ? { existing: editing.rule } : {})}
            vms={vms.data.value}
            groups={groups.data.value}
            onDone={done}
          />
        ) : editing ? (
          <ErrorBox error={vms.error ?? groups.error} title="The form needs the VMs and action groups" />
        ) : null}
        {notice ? (
          <div class="notice" data-notice="rules">
            {notice}
          </div>
        ) : null}
        <ErrorBox error={rules.error} />
        {rules.data || rules.error ? null : <div class="muted">Loading rules…</div>}
        {rules.data && rules.data.value.length === 0 ? (
          <Empty>No rules. {write ? 'Create one: say what to watch and whom to tell.' : ''}</Empty>
        ) : null}
        {rules.data?.value.length ? (
          <Table head={['Rule', 'State', 'Condition', 'VMs', 'Action groups', 'Updated (UTC)', ...(write ? [''] : [])]}>
            {rules.data.value.map((rule) => {
              const p = rule.properties;
              const ref = parseId(rule.id);
              const path = paths.rule(sub, ref.resourceGroup, rule.name);
              return (
                <tr key={rule.id} data-rule={rule.name}>
                  <td>
                    <strong>{rule.name}</strong>
                    <div class="muted small">
                      Sev{p.severity} · {ref.resourceGroup}
                      {p.description ? ` · ${p.description}` : ''}
                    </div>
                  </td>
                  <td>
                    <Badge>{p.enabled ? 'Enabled' : 'Disabled'}</Badge>
                  </td>
                  <td>{condition(rule)}</td>
                  <td>{p.scopes.map(vmName).join(', ')}</td>
                  <td>
                    {p.actions.map((a) => groupName(a.actionGroupId)).join(', ') || <span class="muted">none</span>}
                  </td>
                  <td class="mono small">{utc(p.lastUpdatedTime)}</td>
                  {write ? (
                    <td class="row-actions">
                      <ActionButton
                        action={p.enabled ? 'disable-rule' : 'enable-rule'}
                        onClick={async () => {
                          await api('PATCH', withVersion(path, RULES_VERSION), {
                            properties: { enabled: !p.enabled },
                          });
                          rules.refresh();
                        }}
                      >
                        {p.enabled ? 'Disable' : 'Enable'}
                      </ActionButton>
                      {formOf(rule) ? (
                        <button type="button" data-action="edit-rule" onClick={() => setEditing({ rule })}>
                          Edit
                        </button>
                      ) : (
                        <span class="muted small" title="The console edits rules with one static criterion">
                          edit with the CLI
                        </span>
                      )}
                      <ActionButton
                        action="test-fire"
                        title="The rule's action groups send a test alert for one of its VMs (the capture function captures it)"
                        onClick={async () => {
                          const result = await api<{ vm: string; deliveries: number; firedDateTime: string }>(
                            'POST',
                            withVersion(`${path}/testFire`, RULES_VERSION),
                            {},
                          );
                          setNotice(
                            `Test fire of ${rule.name}: ${result.deliveries} notification(s) queued for ${parseId(result.vm).name} at ${utc(result.firedDateTime)}. Follow them under Action groups and Alerts → function jobs.`,
                          );
                        }}
                      >
                        Test fire
                      </ActionButton>
                      <ActionButton
                        action="delete-rule"
                        kind="danger"
                        confirm={`Delete rule ${rule.name}? Its alerts stay as history.`}
                        onClick={async () => {
                          await api('DELETE', withVersion(path, RULES_VERSION));
                          rules.refresh();
                        }}
                      >
                        Delete
                      </ActionButton>
                    </td>
                  ) : null}
                </tr>
              );
            })}
          </Table>
        ) : null}
      </Section>
      {!write ? (
        <p class="muted small">Your role reads rules; changing them needs a contributor or admin token.</p>
      ) : null}
      <p class="muted small">
        Windows and frequencies under a minute are tripcap's extension; everything else is Azure Monitor's metric alert
        rule. See <code>docs/monitoring.md</code>.
      </p>
    </div>
  );
}

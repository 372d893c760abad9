import { useState } from 'preact/hooks';
import { type ActionGroup, api, get, parseId, paths, type Rule, type Vm, withVersion } from '../api.js';
import { ActionButton, Badge, Empty, ErrorBox, Field, Section } from '../components.js';
import { isoDuration, metricValue, operatorSign, utc } from '../format.js';
import { usePoll } from '../hooks.js';
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
const AGGREGATIONS = ['Total', 'Average', 'Maximum', 'Minimum', 'Count'];
const OPERATORS = ['GreaterThan', 'GreaterThanOrEqual', 'LessThan', 'LessThanOrEqual', 'Equals', 'NotEquals'];
const FREQUENCIES = ['PT10S', 'PT15S', 'PT20S', 'PT30S', 'PT1M', 'PT5M', 'PT15M', 'PT30M', 'PT1H'];
const WINDOWS = [...FREQUENCIES, 'PT6H', 'PT12H', 'P1D'];

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
  const [form, setForm] = useState(initial);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<RuleForm>) => setForm({ ...form, ...patch });
  const toggle = (list: string[], value: string) =>
    list.some((v) => v.toLowerCase() === value.toLowerCase())
      ? list.filter((v) => v.toLowerCase() !== value.toLowerCase())
      : [...list, value];
  const has = (list: string[], value: string) => list.some((v) => v.toLowerCase() === value.toLowerCase());

  return (
    <form
      class="card form"
      data-form="rule"
      onSubmit={async (event) => {
        event.preventDefault();
        setBusy(true);
        setError(undefined);
        try {
          await api(
            'PUT',
            withVersion(paths.rule(sub, form.resourceGroup, form.name), RULES_VERSION),
            bodyOf(form, existing),
          );
          onDone();
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h3>{existing ? `Edit rule ${existing.name}` : 'New metric alert rule'}</h3>
      <div class="form-grid">
        <Field label="Name">
          <input
            name="name"
            value={form.name}
            disabled={Boolean(existing)}
            onInput={(e) => set({ name: e.currentTarget.value })}
            placeholder="outbound-traffic"
          />
        </Field>
        <Field label="Resource group">
          <input
            name="resourceGroup"
            value={form.resourceGroup}
            disabled={Boolean(existing)}
            onInput={(e) => set({ resourceGroup: e.currentTarget.value })}
          />
        </Field>
        <Field label="Severity">
          <select name="severity" value={form.severity} onChange={(e) => set({ severity: e.currentTarget.value })}>
            {['0', '1', '2', '3', '4'].map((s) => (
              <option value={s} key={s}>
                Sev{s} {['critical', 'error', 'warning', 'informational', 'verbose'][Number(s)]}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Description">
          <input
            name="description"
            value={form.description}
            onInput={(e) => set({ description: e.currentTarget.value })}
          />
        </Field>
      </div>
      <fieldset>
        <legend>Condition: fire when</legend>
        <div class="form-grid">
          <Field label="Aggregation">
            <select
              name="timeAggregation"
              value={form.timeAggregation}
              onChange={(e) => set({ timeAggregation: e.currentTarget.value })}
            >
              {AGGREGATIONS.map((a) => (
                <option key={a}>{a}</option>
              ))}
            </select>
          </Field>
          <Field label="Metric">
            <select
              name="metricName"
              value={form.metricName}
              onChange={(e) => set({ metricName: e.currentTarget.value })}
            >
              {METRICS.map((m) => (
                <option key={m}>{m}</option>
              ))}
            </select>
          </Field>
          <Field label="Operator">
            <select name="operator" value={form.operator} onChange={(e) => set({ operator: e.currentTarget.value })}>
              {OPERATORS.map((o) => (
                <option key={o} value={o}>
                  {operatorSign(o)} {o}
                </option>
              ))}
            </select>
          </Field>
          <Field label="Threshold" hint={unitHint(form.metricName, form.timeAggregation)}>
            <input
              name="threshold"
              inputMode="decimal"
              value={form.threshold}
              onInput={(e) => set({ threshold: e.currentTarget.value })}
              placeholder="500000000"
            />
          </Field>
          <Field label="Over a window of">
            <select
              name="windowSize"
              value={form.windowSize}
              onChange={(e) => set({ windowSize: e.currentTarget.value })}
            >
              {WINDOWS.map((w) => (
                <option key={w} value={w}>
                  {isoDuration(w)} ({w})
                </option>
              ))}
            </select>
          </Field>
          <Field label="Checked every">
            <select
              name="evaluationFrequency"
              value={form.evaluationFrequency}
              onChange={(e) => set({ evaluationFrequency: e.currentTarget.value })}
            >
              {FREQUENCIES.map((f) => (
                <option key={f} value={f}>
                  {isoDuration(f)} ({f})
                </option>
              ))}
            </select>
          </Field>
        </div>
      </fieldset>
      <fieldset>
        <legend>On these VMs</legend>
        {vms.length === 0 ? <Empty>No VMs registered yet.</Empty> : null}
        <div class="checks">
          {vms.map((vm) => (
            <label key={vm.id} class="check">
              <input
                type="checkbox"
                name="scope"
                value={vm.name}
                checked={has(form.scopes, vm.id)}
                onChange={() => set({ scopes: toggle(form.scopes, vm.id) })}
              />
              {vm.name} <span class="muted small">{parseId(vm.id).resourceGroup}</span>
            </label>
          ))}
          {form.scopes
            .filter((s) => !vms.some((vm) => vm.id.toLowerCase() === s.toLowerCase()))
            .map((s) => (
              <label key={s} class="check">
                <input type="checkbox" checked onChange={() => set({ scopes: toggle(form.scopes, s) })} />
                <code class="small">{s}</code>
              </label>
            ))}
        </div>
      </fieldset>
      <fieldset>
        <legend>Then tell these action groups</legend>
        {groups.length === 0 ? <Empty>No action groups yet: create one on the Action groups page.</Empty> : null}
        <div class="checks">
          {groups.map((g) => (
            <label key={g.id} class="check">
              <input
                type="checkbox"
                name="actionGroup"
                value={g.name}
                checked={has(form.actionGroupIds, g.id)}
                onChange={() => set({ actionGroupIds: toggle(form.actionGroupIds, g.id) })}
              />
              {g.name}
            </label>
          ))}
        </div>
      </fieldset>
      <div class="checks">
        <label class="check">
          <input
            type="checkbox"
            name="enabled"
            checked={form.enabled}
            onChange={(e) => set({ enabled: e.currentTarget.checked })}
          />
          Enabled
        </label>
        <label class="check">
          <input
            type="checkbox"
            name="autoMitigate"
            checked={form.autoMitigate}
            onChange={(e) => set({ autoMitigate: e.currentTarget.checked })}
          />
          Resolve automatically (stateful)
        </label>
      </div>
      <ErrorBox error={error} title="Not saved" />
      <div class="form-actions">
        <button type="submit" class="primary" data-action="save-rule" disabled={busy}>
          {busy ? 'Saving…' : existing ? 'Save rule' : 'Create rule'}
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
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
  const vmName = (id: string) => vms.data?.value.find((v) => v.id.toLowerCase() === id.toLowerCase())?.name ?? id;
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
        {editing ? (
          <RuleEditor
            key={editing.rule?.id ?? 'new'}
            initial={(editing.rule && formOf(editing.rule)) || emptyForm(vms.data?.value ?? [])}
            {...(editing.rule ? { existing: editing.rule } : {})}
            vms={vms.data?.value ?? []}
            groups={groups.data?.value ?? []}
            onDone={done}
          />
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
        <div class="table-wrap">
          <table class="table">
            {rules.data && rules.data.value.length > 0 ? (
              <thead>
                <tr>
                  <th>Rule</th>
                  <th>State</th>
                  <th>Condition</th>
                  <th>VMs</th>
                  <th>Action groups</th>
                  <th>Updated</th>
                  {write ? <th /> : null}
                </tr>
              </thead>
            ) : null}
            <tbody>
              {(rules.data?.value ?? []).map((rule) => {
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
            </tbody>
          </table>
        </div>
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

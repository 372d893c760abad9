import { useState } from 'preact/hooks';
import { type ActionGroup, api, type Delivery, get, INSIGHTS, parseId, paths, withVersion } from '../api.js';
import { ActionButton, ApiForm, Badge, Empty, ErrorBox, Field, Section, Table } from '../components.js';
import { utc, utcTime } from '../format.js';
import { useFormState, usePoll } from '../hooks.js';
import { useSession } from '../session.js';

type ReceiverKind = 'webhook' | 'function' | 'email' | 'thisServer';

interface ReceiverRow {
  kind: ReceiverKind;
  name: string;
  /** URL, or e-mail address */
  target: string;
  common: boolean;
}

interface GroupForm {
  name: string;
  resourceGroup: string;
  groupShortName: string;
  receivers: ReceiverRow[];
}

const FUNCTION_NAME = 'capture-on-alert';

/** A URL with its query values hidden: a function key on a screen at 2 AM ends up in a screenshot. */
function redactQuery(url: string): string {
  try {
    const parsed = new URL(url);
    for (const key of [...parsed.searchParams.keys()]) parsed.searchParams.set(key, '[redacted]');
    return decodeURI(parsed.toString());
  } catch {
    return url;
  }
}

/**
 * Builds the group's receivers. "This server's capture function" first creates a function key (admin only): a key
 * that may call the function and nothing else, whose URL the group keeps.
 */
async function receiversOf(form: GroupForm, sub: string) {
  const emailReceivers = [];
  const webhookReceivers = [];
  const azureFunctionReceivers = [];
  for (const r of form.receivers) {
    if (r.kind === 'email') {
      emailReceivers.push({ name: r.name, emailAddress: r.target, useCommonAlertSchema: r.common });
    } else if (r.kind === 'webhook') {
      webhookReceivers.push({ name: r.name, serviceUri: r.target, useCommonAlertSchema: r.common });
    } else {
      let url = r.target;
      if (r.kind === 'thisServer') {
        const key = await api<{ token: string }>('POST', '/tripcap/v1/tokens', {
          name: `action-group-${form.name}`.slice(0, 64).replace(/[^A-Za-z0-9_.@-]/g, '-'),
          role: 'function',
        });
        url = `${location.origin}/api/${FUNCTION_NAME}?code=${encodeURIComponent(key.token)}`;
      }
      azureFunctionReceivers.push({
        name: r.name,
        functionAppResourceId: `/subscriptions/${sub}/resourceGroups/${form.resourceGroup || 'tripcap'}/providers/Microsoft.Web/sites/tripcap`,
        functionName: FUNCTION_NAME,
        httpTriggerUrl: url,
        useCommonAlertSchema: r.common,
      });
    }
  }
  return { emailReceivers, webhookReceivers, azureFunctionReceivers };
}

function GroupEditor({ onDone, resourceGroup }: { onDone: () => void; resourceGroup: string }) {
  const { sub, can } = useSession();
  const { form, set, text } = useFormState<GroupForm>({
    name: '',
    resourceGroup,
    groupShortName: '',
    receivers: [
      can('token:admin')
        ? { kind: 'thisServer', name: 'capture-on-alert', target: '', common: true }
        : { kind: 'webhook', name: 'webhook', target: '', common: true },
    ],
  });
  const setReceiver = (i: number, patch: Partial<ReceiverRow>) =>
    set({ receivers: form.receivers.map((r, j) => (i === j ? { ...r, ...patch } : r)) });

  return (
    <ApiForm
      name="action-group"
      submit="Create action group"
      busyLabel="Saving…"
      action="save-action-group"
      errorTitle="Not saved"
      onCancel={onDone}
      onSubmit={async () => {
        await api('PUT', withVersion(paths.group(sub, form.resourceGroup, form.name), INSIGHTS), {
          location: 'Global',
          properties: {
            groupShortName: form.groupShortName || form.name.slice(0, 12),
            enabled: true,
            ...(await receiversOf(form, sub)),
          },
        });
        onDone();
      }}
    >
      <h3>New action group</h3>
      <div class="form-grid">
        <Field label="Name">
          <input {...text('name')} />
        </Field>
        <Field label="Resource group">
          <input {...text('resourceGroup')} />
        </Field>
        <Field label="Short name" hint="1–12 characters, shown in notifications; the name's first 12 by default">
          <input {...text('groupShortName')} />
        </Field>
      </div>
      <fieldset>
        <legend>Receivers</legend>
        {form.receivers.map((r, i) => (
          <div class="receiver-row" key={i}>
            <select
              name={`receiverKind${i}`}
              aria-label={`Receiver ${i + 1} kind`}
              value={r.kind}
              onChange={(e) => setReceiver(i, { kind: e.currentTarget.value as ReceiverKind })}
            >
              {can('token:admin') ? <option value="thisServer">This server's capture-on-alert function</option> : null}
              <option value="webhook">Webhook</option>
              <option value="function">Azure Function (URL)</option>
              <option value="email">E-mail</option>
            </select>
            <input
              name={`receiverName${i}`}
              aria-label={`Receiver ${i + 1} name`}
              placeholder="receiver name"
              value={r.name}
              onInput={(e) => setReceiver(i, { name: e.currentTarget.value })}
            />
            {r.kind === 'thisServer' ? (
              <span class="muted small">a new function key is created for it</span>
            ) : (
              <input
                name={`receiverTarget${i}`}
                aria-label={`Receiver ${i + 1} ${r.kind === 'email' ? 'e-mail address' : 'URL'}`}
                placeholder={r.kind === 'email' ? 'oncall@example.com' : 'https://…'}
                value={r.target}
                onInput={(e) => setReceiver(i, { target: e.currentTarget.value })}
              />
            )}
            <label class="check small">
              <input
                type="checkbox"
                checked={r.common}
                onChange={(e) => setReceiver(i, { common: e.currentTarget.checked })}
              />
              common alert schema
            </label>
            <button
              type="button"
              class="link"
              onClick={() => set({ receivers: form.receivers.filter((_, j) => j !== i) })}
            >
              remove
            </button>
          </div>
        ))}
        <button
          type="button"
          onClick={() =>
            set({
              receivers: [
                ...form.receivers,
                { kind: 'webhook', name: `receiver${form.receivers.length + 1}`, target: '', common: true },
              ],
            })
          }
        >
          Add receiver
        </button>
      </fieldset>
    </ApiForm>
  );
}

function Deliveries({ group }: { group: ActionGroup }) {
  const { sub } = useSession();
  const ref = parseId(group.id);
  const deliveries = usePoll(
    () =>
      get<{ value: Delivery[] }>(
        withVersion(`${paths.group(sub, ref.resourceGroup, group.name)}/deliveries?$top=25`, INSIGHTS),
      ),
    4000,
    [group.id],
  );
  if (deliveries.error) return <ErrorBox error={deliveries.error} />;
  if (!deliveries.data) return <div class="muted">Loading deliveries…</div>;
  if (deliveries.data.value.length === 0) return <Empty>Nothing delivered yet.</Empty>;
  return (
    <Table compact data-deliveries={group.name} head={['Created (UTC)', 'Receiver', 'For', 'Status', 'Attempts']}>
      {deliveries.data.value.map((d) => (
        <tr key={d.id}>
          <td class="mono small">{utc(d.createdTime)}</td>
          <td>
            {d.receiverName} <span class="muted small">({d.receiverKind})</span>
            <div class="muted small break">{d.target}</div>
          </td>
          <td class="small">{d.notificationId ? 'test notification' : d.alertId ? 'alert' : ''}</td>
          <td>
            <Badge>{d.status}</Badge>
          </td>
          <td class="small">
            {d.attempts.map((a) => (
              <div key={a.attempt}>
                #{a.attempt} {a.outcome} {a.httpStatus ? `HTTP ${a.httpStatus}` : ''} {a.error ?? ''}{' '}
                <span class="muted">
                  {a.durationMs} ms at {utcTime(a.startedAt)} UTC
                </span>
              </div>
            ))}
          </td>
        </tr>
      ))}
    </Table>
  );
}

export function ActionGroupsPage() {
  const { sub, can } = useSession();
  const groups = usePoll(() => get<{ value: ActionGroup[] }>(paths.groups(sub)), 15_000, [sub]);
  const [creating, setCreating] = useState(false);
  const [open, setOpen] = useState<string | null>(null);
  const [notice, setNotice] = useState<string>();
  const write = can('resource:write');
  const list = groups.data?.value ?? [];

  return (
    <Section
      title="Action groups"
      actions={
        write && !creating ? (
          <button type="button" class="primary" data-action="new-action-group" onClick={() => setCreating(true)}>
            New action group
          </button>
        ) : null
      }
    >
      {creating ? (
        <GroupEditor
          resourceGroup={list[0] ? parseId(list[0].id).resourceGroup : 'tripcap'}
          onDone={() => {
            setCreating(false);
            groups.refresh();
          }}
        />
      ) : null}
      {notice ? <div class="notice">{notice}</div> : null}
      <ErrorBox error={groups.error} />
      {groups.data || groups.error ? null : <div class="muted">Loading action groups…</div>}
      {groups.data && list.length === 0 ? <Empty>No action groups: rules that fire tell no one.</Empty> : null}
      {list.map((g) => {
        const p = g.properties;
        const path = paths.group(sub, parseId(g.id).resourceGroup, g.name);
        const receivers = [
          ...p.azureFunctionReceivers.map((r) => ({ kind: 'function', name: r.name, target: r.httpTriggerUrl })),
          ...p.webhookReceivers.map((r) => ({ kind: 'webhook', name: r.name, target: r.serviceUri })),
          ...p.emailReceivers.map((r) => ({ kind: 'e-mail', name: r.name, target: r.emailAddress })),
        ];
        return (
          <article class="card" key={g.id} data-action-group={g.name}>
            <header class="card-head">
              <div>
                <h3>{g.name}</h3>
                <div class="muted small">
                  {p.groupShortName} · {parseId(g.id).resourceGroup}
                </div>
              </div>
              <Badge>{p.enabled ? 'Enabled' : 'Disabled'}</Badge>
              <div class="row-actions">
                <button type="button" onClick={() => setOpen(open === g.id ? null : g.id)}>
                  {open === g.id ? 'Hide deliveries' : 'Delivery log'}
                </button>
                {write ? (
                  <ActionButton
                    action="test-action-group"
                    onClick={async () => {
                      await api('POST', withVersion(`${path}/createNotifications`, INSIGHTS), {
                        alertType: 'metricstaticthreshold',
                      });
                      setOpen(g.id);
                      setNotice(`Sent a test notification to every receiver of ${g.name}: see its delivery log.`);
                    }}
                  >
                    Send test
                  </ActionButton>
                ) : null}
                {write ? (
                  <ActionButton
                    action="delete-action-group"
                    kind="danger"
                    confirm={`Delete action group ${g.name}?`}
                    onClick={async () => {
                      await api('DELETE', withVersion(path, INSIGHTS));
                      groups.refresh();
                    }}
                  >
                    Delete
                  </ActionButton>
                ) : null}
              </div>
            </header>
            <ul class="receivers">
              {receivers.map((r) => (
                <li key={`${r.kind}:${r.name}`}>
                  <span class="badge muted">{r.kind}</span> {r.name}{' '}
                  <span class="muted small break">{r.kind === 'e-mail' ? r.target : redactQuery(r.target)}</span>
                </li>
              ))}
            </ul>
            {open === g.id ? <Deliveries group={g} /> : null}
          </article>
        );
      })}
    </Section>
  );
}

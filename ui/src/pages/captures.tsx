import { useState } from 'preact/hooks';
import {
  api,
  type Capture,
  type CaptureFilter,
  type CaptureStatus,
  get,
  parseId,
  paths,
  type Vm,
  type Watcher,
  withVersion,
} from '../api.js';
import { ActionButton, Badge, Empty, ErrorBox, Field, Section } from '../components.js';
import { bytes, count, utc } from '../format.js';
import { useNow, usePoll } from '../hooks.js';
import { useSession } from '../session.js';
import { CaptureProgress, captureHref, DownloadButton, isFinal } from './capture-common.js';

export interface CaptureRow {
  watcher: Watcher;
  capture: Capture;
  status: CaptureStatus | null;
}

/** Statuses that will not change any more: ended, and with their file or long past their end. */
const settled = new Map<string, CaptureStatus>();

function isSettled(status: CaptureStatus): boolean {
  if (!isFinal(status)) return false;
  const ended = status.captureEndTime ? Date.parse(status.captureEndTime) : 0;
  return status.files.length > 0 || Date.now() - ended > 120_000;
}

async function statusOf(capture: Capture): Promise<CaptureStatus | null> {
  // The etag tells a capture from a later one of the same name.
  const key = `${capture.id}|${capture.etag ?? ''}`;
  const known = settled.get(key);
  if (known) return known;
  const status = await api<CaptureStatus>('POST', withVersion(`${capture.id}/queryStatus`)).catch(() => null);
  if (status && isSettled(status)) settled.set(key, status);
  return status;
}

/**
 * Every capture of every watcher, with its status (the list has the parameters, queryStatus the progress). Statuses
 * are asked again only while they can change, so a long list costs one request per running capture.
 */
export async function loadCaptures(sub: string): Promise<CaptureRow[]> {
  const watchers = (await get<{ value: Watcher[] }>(paths.watchers(sub))).value;
  const rows: CaptureRow[] = [];
  for (const watcher of watchers) {
    const list = await get<{ value: Capture[] }>(withVersion(`${watcher.id}/packetCaptures`));
    const statuses = await Promise.all(list.value.map(statusOf));
    list.value.forEach((capture, i) => {
      rows.push({ watcher, capture, status: statuses[i] ?? null });
    });
  }
  // Newest first; captures not started yet first of all.
  const started = (r: CaptureRow) => (r.status?.captureStartTime ? Date.parse(r.status.captureStartTime) : Infinity);
  return rows.sort((a, b) => started(b) - started(a));
}

const PROTOCOLS = ['Any', 'TCP', 'UDP'];

interface FormState {
  vm: string;
  name: string;
  timeLimit: string;
  totalBytes: string;
  snaplen: string;
  toStore: boolean;
  filePath: string;
  filters: CaptureFilter[];
  preTrigger: string;
  continuous: boolean;
  fileCount: string;
  fileSize: string;
  sessionLimit: string;
  pcapng: boolean;
}

const stamp = () =>
  new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '');

/** A number as typed, or the text itself so that the API says what is wrong with it; absent when empty. */
function numberOrText(text: string): number | string | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  return /^\d+$/.test(t) ? Number(t) : t;
}

function bodyOf(form: FormState, vm: Vm, sub: string) {
  const optional = (key: string, text: string) => {
    const v = numberOrText(text);
    return v === undefined ? {} : { [key]: v };
  };
  const rg = parseId(vm.id).resourceGroup;
  const filters = form.filters
    .map((f) =>
      Object.fromEntries(
        Object.entries(f).filter(([key, value]) => value !== '' && !(key === 'protocol' && value === 'Any')),
      ),
    )
    .filter((f) => Object.keys(f).length > 0);
  return {
    properties: {
      target: vm.id,
      ...optional('timeLimitInSeconds', form.timeLimit),
      ...optional('totalBytesPerSession', form.totalBytes),
      ...optional('bytesToCapturePerPacket', form.snaplen),
      storageLocation: {
        ...(form.toStore
          ? {
              storageId: `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Storage/storageAccounts/tripcap`,
            }
          : {}),
        ...(form.filePath.trim() ? { filePath: form.filePath.trim() } : {}),
      },
      filters,
      ...(form.continuous
        ? {
            continuousCapture: true,
            captureSettings: {
              ...optional('fileCount', form.fileCount),
              ...optional('fileSizeInBytes', form.fileSize),
              ...optional('sessionTimeLimitInSeconds', form.sessionLimit),
            },
          }
        : {}),
      ...optional('preTriggerSeconds', form.preTrigger),
      ...(form.pcapng ? { fileFormat: 'pcapng' } : {}),
    },
  };
}

function CaptureForm({
  vms,
  watchers,
  preset,
  onDone,
}: {
  vms: Vm[];
  watchers: Watcher[];
  preset?: string;
  onDone: () => void;
}) {
  const { sub } = useSession();
  const [form, setForm] = useState<FormState>({
    vm: (preset && vms.find((v) => v.name.toLowerCase() === preset.toLowerCase())?.id) || vms[0]?.id || '',
    name: `console-${stamp()}`,
    timeLimit: '60',
    totalBytes: '',
    snaplen: '0',
    toStore: true,
    filePath: '',
    filters: [],
    preTrigger: '0',
    continuous: false,
    fileCount: '10',
    fileSize: '104857600',
    sessionLimit: '86400',
    pcapng: false,
  });
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<FormState>) => setForm({ ...form, ...patch });
  const setFilter = (i: number, patch: Partial<CaptureFilter>) =>
    set({ filters: form.filters.map((f, j) => (i === j ? { ...f, ...patch } : f)) });

  return (
    <form
      class="card form"
      data-form="capture"
      onSubmit={async (event) => {
        event.preventDefault();
        setBusy(true);
        setError(undefined);
        try {
          const vm = vms.find((v) => v.id === form.vm);
          if (!vm) throw new Error('Choose the VM to capture.');
          const watcher = watchers.find((w) => w.location.toLowerCase() === vm.location.toLowerCase());
          if (!watcher) throw new Error(`No network watcher serves location '${vm.location}'.`);
          await api(
            'PUT',
            withVersion(`${watcher.id}/packetCaptures/${encodeURIComponent(form.name)}`),
            bodyOf(form, vm, sub),
          );
          onDone();
          location.hash = captureHref(watcher.id, form.name);
        } catch (err) {
          setError(err);
        } finally {
          setBusy(false);
        }
      }}
    >
      <h3>New packet capture</h3>
      <div class="form-grid">
        <Field label="VM">
          <select name="vm" value={form.vm} onChange={(e) => set({ vm: e.currentTarget.value })}>
            {vms.map((vm) => (
              <option key={vm.id} value={vm.id}>
                {vm.name} ({vm.location}, {vm.properties.agent?.status ?? 'no agent'})
              </option>
            ))}
          </select>
        </Field>
        <Field label="Name">
          <input name="name" value={form.name} onInput={(e) => set({ name: e.currentTarget.value })} />
        </Field>
        <Field label="Time limit (s)" hint="1–18000; empty or 0: 18000">
          <input
            name="timeLimitInSeconds"
            inputMode="numeric"
            value={form.timeLimit}
            onInput={(e) => set({ timeLimit: e.currentTarget.value })}
          />
        </Field>
        <Field label="Byte limit" hint="the file is cut at a packet boundary; empty: 1 GiB">
          <input
            name="totalBytesPerSession"
            inputMode="numeric"
            value={form.totalBytes}
            onInput={(e) => set({ totalBytes: e.currentTarget.value })}
          />
        </Field>
        <Field label="Bytes per packet" hint="snaplen; 0 = whole packets">
          <input
            name="bytesToCapturePerPacket"
            inputMode="numeric"
            value={form.snaplen}
            onInput={(e) => set({ snaplen: e.currentTarget.value })}
          />
        </Field>
        <Field label="Pre-trigger (s)" hint="seconds of flight-recorder traffic from before the start (0–3600)">
          <input
            name="preTriggerSeconds"
            inputMode="numeric"
            value={form.preTrigger}
            onInput={(e) => set({ preTrigger: e.currentTarget.value })}
          />
        </Field>
      </div>
      <fieldset>
        <legend>Storage</legend>
        <label class="check">
          <input
            type="checkbox"
            name="toStore"
            checked={form.toStore}
            onChange={(e) => set({ toStore: e.currentTarget.checked })}
          />
          Upload to tripcap's store (download and report here)
        </label>
        <Field label="File on the VM" hint="a .cap path inside the agent's capture root, e.g. /var/captures/web.cap">
          <input name="filePath" value={form.filePath} onInput={(e) => set({ filePath: e.currentTarget.value })} />
        </Field>
        <label class="check">
          <input
            type="checkbox"
            name="pcapng"
            checked={form.pcapng}
            onChange={(e) => set({ pcapng: e.currentTarget.checked })}
          />
          pcapng instead of classic pcap
        </label>
      </fieldset>
      <fieldset>
        <legend>Filters (any of them; none = everything)</legend>
        {form.filters.map((f, i) => (
          <div class="filter-row" key={i} data-filter={i}>
            <select
              name={`protocol${i}`}
              value={f.protocol ?? 'Any'}
              onChange={(e) => setFilter(i, { protocol: e.currentTarget.value })}
            >
              {PROTOCOLS.map((p) => (
                <option key={p}>{p}</option>
              ))}
            </select>
            <input
              name={`localIPAddress${i}`}
              placeholder="local IP(s)"
              value={f.localIPAddress ?? ''}
              onInput={(e) => setFilter(i, { localIPAddress: e.currentTarget.value })}
            />
            <input
              name={`localPort${i}`}
              placeholder="local port(s)"
              value={f.localPort ?? ''}
              onInput={(e) => setFilter(i, { localPort: e.currentTarget.value })}
            />
            <input
              name={`remoteIPAddress${i}`}
              placeholder="remote IP(s)"
              value={f.remoteIPAddress ?? ''}
              onInput={(e) => setFilter(i, { remoteIPAddress: e.currentTarget.value })}
            />
            <input
              name={`remotePort${i}`}
              placeholder="remote port(s)"
              value={f.remotePort ?? ''}
              onInput={(e) => setFilter(i, { remotePort: e.currentTarget.value })}
            />
            <button type="button" class="link" onClick={() => set({ filters: form.filters.filter((_, j) => j !== i) })}>
              remove
            </button>
          </div>
        ))}
        <button
          type="button"
          data-action="add-filter"
          onClick={() => set({ filters: [...form.filters, { protocol: 'Any' }] })}
        >
          Add filter
        </button>
        <p class="field-hint">
          Each value: one address or port, a range <code>a-b</code>, or a <code>;</code> list. "Local" is the VM's side;
          a filter matches both directions.
        </p>
      </fieldset>
      <fieldset>
        <legend>
          <label class="check">
            <input
              type="checkbox"
              name="continuousCapture"
              checked={form.continuous}
              onChange={(e) => set({ continuous: e.currentTarget.checked })}
            />
            Continuous capture (a ring of files)
          </label>
        </legend>
        {form.continuous ? (
          <div class="form-grid">
            <Field label="Files in the ring">
              <input
                name="fileCount"
                value={form.fileCount}
                onInput={(e) => set({ fileCount: e.currentTarget.value })}
              />
            </Field>
            <Field label="File size (bytes)">
              <input
                name="fileSizeInBytes"
                value={form.fileSize}
                onInput={(e) => set({ fileSize: e.currentTarget.value })}
              />
            </Field>
            <Field label="Session limit (s)">
              <input
                name="sessionTimeLimitInSeconds"
                value={form.sessionLimit}
                onInput={(e) => set({ sessionLimit: e.currentTarget.value })}
              />
            </Field>
          </div>
        ) : null}
      </fieldset>
      <ErrorBox error={error} title="Not started" />
      <div class="form-actions">
        <button type="submit" class="primary" data-action="start-capture" disabled={busy || vms.length === 0}>
          {busy ? 'Starting…' : 'Start capture'}
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

export function CapturesPage({ vm }: { vm?: string | undefined }) {
  const { sub, can } = useSession();
  const rows = usePoll(() => loadCaptures(sub), 3000, [sub]);
  const vms = usePoll(() => get<{ value: Vm[] }>(paths.vms(sub)), 15_000, [sub]);
  const watchers = usePoll(() => get<{ value: Watcher[] }>(paths.watchers(sub)), 15_000, [sub]);
  const [creating, setCreating] = useState(Boolean(vm));
  const now = useNow(1000);
  const write = can('capture:write');
  const list = rows.data ?? [];
  const vmName = (id: string) => parseId(id).name;

  return (
    <Section
      title="Packet captures"
      actions={
        write && !creating ? (
          <button type="button" class="primary" data-action="new-capture" onClick={() => setCreating(true)}>
            New capture
          </button>
        ) : null
      }
    >
      {creating && write && vms.data && watchers.data ? (
        <CaptureForm
          vms={vms.data.value}
          watchers={watchers.data.value}
          preset={vm}
          onDone={() => {
            setCreating(false);
            rows.refresh();
          }}
        />
      ) : null}
      <ErrorBox error={rows.error} />
      {rows.data || rows.error ? null : <div class="muted">Loading captures…</div>}
      {rows.data && list.length === 0 ? (
        <Empty>
          No captures yet. They appear here when someone starts one or an alert's action group calls the
          capture-on-alert function.
        </Empty>
      ) : null}
      <div class="table-wrap">
        <table class="table">
          {list.length ? (
            <thead>
              <tr>
                <th>Capture</th>
                <th>Status</th>
                <th>Started (UTC)</th>
                <th>Captured</th>
                <th>Files</th>
                <th />
              </tr>
            </thead>
          ) : null}
          <tbody>
            {list.map(({ capture, status, watcher }) => {
              const p = capture.properties;
              const final = isFinal(status ?? undefined);
              return (
                <tr key={capture.id} data-capture={capture.name} data-status={status?.packetCaptureStatus ?? ''}>
                  <td>
                    <a href={captureHref(watcher.id, capture.name)}>
                      <strong class="break">{capture.name}</strong>
                    </a>
                    <div class="muted small">
                      {vmName(p.target)} · {watcher.location}
                      {p.filters?.length ? ` · ${p.filters.length} filter(s)` : ''}
                      {p.preTriggerSeconds ? ` · pre-trigger ${p.preTriggerSeconds} s` : ''}
                    </div>
                  </td>
                  <td>
                    {status ? <Badge>{status.packetCaptureStatus}</Badge> : <span class="muted">…</span>}
                    {status?.stopReason ? <div class="muted small">{status.stopReason}</div> : null}
                    {status?.packetCaptureError.length ? (
                      <div class="error small">{status.packetCaptureError.join(', ')}</div>
                    ) : null}
                    {status ? (
                      <CaptureProgress
                        status={status}
                        timeLimit={p.timeLimitInSeconds ?? 18_000}
                        byteLimit={p.totalBytesPerSession ?? 1_073_741_824}
                        now={now}
                      />
                    ) : null}
                  </td>
                  <td class="mono small">{utc(status?.captureStartTime)}</td>
                  <td class="small">
                    {bytes(status?.bytesCaptured)}
                    <div class="muted">{count(status?.packetsCaptured)} packets</div>
                  </td>
                  <td class="small">
                    {status?.files.map((f) => (
                      <div key={f.seq} class="file-cell">
                        {bytes(f.size)} ·{' '}
                        <span class="mono" title={`SHA-256 ${f.sha256}`}>
                          {f.sha256.slice(0, 12)}…
                        </span>
                        {can('pcap:download') ? <DownloadButton file={f} captureName={capture.name} /> : null}
                      </div>
                    ))}
                    {final && status?.files.length === 0 ? <span class="muted">no file yet</span> : null}
                  </td>
                  <td class="row-actions">
                    <a class="button" href={captureHref(watcher.id, capture.name)}>
                      Report
                    </a>
                    {write && status && !final ? (
                      <ActionButton
                        action="stop-capture"
                        onClick={async () => {
                          await api('POST', withVersion(`${capture.id}/stop`));
                          rows.refresh();
                        }}
                      >
                        Stop
                      </ActionButton>
                    ) : null}
                    {write ? (
                      <ActionButton
                        action="delete-capture"
                        kind="danger"
                        confirm={`Delete capture ${capture.name}? Its files stay in storage.`}
                        onClick={async () => {
                          await api('DELETE', withVersion(capture.id));
                          rows.refresh();
                        }}
                      >
                        Delete
                      </ActionButton>
                    ) : null}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </Section>
  );
}

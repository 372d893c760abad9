import { useState } from 'preact/hooks';
import type { CaptureProtocol } from '../../../src/watcher/filters.js';
import {
  api,
  type Capture,
  type CaptureFilter,
  type CaptureStatus,
  enc,
  get,
  parseId,
  paths,
  type Vm,
  type Watcher,
  withVersion,
} from '../api.js';
import { ApiForm, Empty, ErrorBox, Field, Section, Select, Table } from '../components.js';
import { bytes, count, utc } from '../format.js';
import { useFormState, useNow, usePoll } from '../hooks.js';
import { useSession } from '../session.js';
import {
  CaptureControls,
  CaptureProgress,
  CaptureState,
  captureHref,
  DownloadButton,
  isFinal,
} from './capture-common.js';

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
  return rows.sort((a, b) => started(b) - started(a) || 0);
}

const PROTOCOLS: CaptureProtocol[] = ['Any', 'TCP', 'UDP'];
/** A filter's value fields, with what each holds. */
const FILTER_FIELDS = [
  ['localIPAddress', 'local IP(s)'],
  ['localPort', 'local port(s)'],
  ['remoteIPAddress', 'remote IP(s)'],
  ['remotePort', 'remote port(s)'],
] as const;
type FilterRow = Required<CaptureFilter>;

/** The numeric parameters, as typed (named as the API names them). */
const LIMITS = ['timeLimitInSeconds', 'totalBytesPerSession', 'bytesToCapturePerPacket', 'preTriggerSeconds'] as const;
const RING = ['fileCount', 'fileSizeInBytes', 'sessionTimeLimitInSeconds'] as const;

type CaptureFormState = Record<(typeof LIMITS)[number] | (typeof RING)[number], string> & {
  vm: string;
  name: string;
  toStore: boolean;
  filePath: string;
  filters: FilterRow[];
  continuousCapture: boolean;
  pcapng: boolean;
};

const stamp = () =>
  new Date()
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, '');

/**
 * The fields that were filled in, as numbers, or as the text itself so that the API says what is wrong with it.
 */
function numbers<K extends string>(form: Record<K, string>, keys: readonly K[]): Partial<Record<K, number | string>> {
  const out: Partial<Record<K, number | string>> = {};
  for (const key of keys) {
    const text = form[key].trim();
    if (text !== '') out[key] = /^\d+$/.test(text) ? Number(text) : text;
  }
  return out;
}

function bodyOf(form: CaptureFormState, vm: Vm, sub: string) {
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
      ...numbers(form, LIMITS),
      storageLocation: {
        ...(form.toStore
          ? {
              storageId: `/subscriptions/${sub}/resourceGroups/${rg}/providers/Microsoft.Storage/storageAccounts/tripcap`,
            }
          : {}),
        ...(form.filePath.trim() ? { filePath: form.filePath.trim() } : {}),
      },
      filters,
      ...(form.continuousCapture ? { continuousCapture: true, captureSettings: numbers(form, RING) } : {}),
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
  preset?: string | undefined;
  onDone: () => void;
}) {
  const { sub } = useSession();
  const { form, set, text, check } = useFormState<CaptureFormState>(() => ({
    vm: (preset && vms.find((v) => v.name.toLowerCase() === preset.toLowerCase())?.id) || vms[0]?.id || '',
    name: `console-${stamp()}`,
    timeLimitInSeconds: '60',
    totalBytesPerSession: '',
    bytesToCapturePerPacket: '0',
    preTriggerSeconds: '0',
    toStore: true,
    filePath: '',
    filters: [],
    continuousCapture: false,
    fileCount: '10',
    fileSizeInBytes: '104857600',
    sessionTimeLimitInSeconds: '86400',
    pcapng: false,
  }));
  const setFilter = (i: number, patch: Partial<FilterRow>) =>
    set({ filters: form.filters.map((f, j) => (i === j ? { ...f, ...patch } : f)) });

  return (
    <ApiForm
      name="capture"
      submit="Start capture"
      busyLabel="Starting…"
      action="start-capture"
      errorTitle="Not started"
      disabled={vms.length === 0}
      onCancel={onDone}
      onSubmit={async () => {
        const vm = vms.find((v) => v.id === form.vm);
        if (!vm) throw new Error('Choose the VM to capture.');
        const watcher = watchers.find((w) => w.location.toLowerCase() === vm.location.toLowerCase());
        if (!watcher) throw new Error(`No network watcher serves location '${vm.location}'.`);
        await api('PUT', withVersion(`${watcher.id}/packetCaptures/${enc(form.name)}`), bodyOf(form, vm, sub));
        onDone();
        location.hash = captureHref(watcher.id, form.name);
      }}
    >
      <h3>New packet capture</h3>
      {vms.length === 0 ? <Empty>No VMs registered yet: start an agent on a host first.</Empty> : null}
      <div class="form-grid">
        <Field label="VM">
          <Select
            {...text('vm')}
            options={vms.map(
              (vm) => [vm.id, `${vm.name} (${vm.location}, ${vm.properties.agent?.status ?? 'no agent'})`] as const,
            )}
          />
        </Field>
        <Field label="Name">
          <input {...text('name')} />
        </Field>
        <Field label="Time limit (seconds)" hint="1–18000; empty or 0: 18000 (5 h)">
          <input inputMode="numeric" {...text('timeLimitInSeconds')} />
        </Field>
        <Field label="Byte limit (bytes)" hint="the file is cut at a packet boundary; empty: 1073741824 (1 GiB)">
          <input inputMode="numeric" {...text('totalBytesPerSession')} />
        </Field>
        <Field label="Bytes per packet" hint="snaplen; 0 = whole packets">
          <input inputMode="numeric" {...text('bytesToCapturePerPacket')} />
        </Field>
        <Field
          label="Pre-trigger (seconds)"
          hint="flight-recorder traffic from before the start, 0–3600 (the VM's recorder must be on)"
        >
          <input inputMode="numeric" {...text('preTriggerSeconds')} />
        </Field>
      </div>
      <fieldset>
        <legend>Storage</legend>
        <label class="check">
          <input {...check('toStore')} />
          Upload to tripcap's store (download and report here)
        </label>
        <Field label="File on the VM" hint="a .cap path inside the agent's capture root, e.g. /var/captures/web.cap">
          <input {...text('filePath')} />
        </Field>
        <label class="check">
          <input {...check('pcapng')} />
          pcapng instead of classic pcap
        </label>
      </fieldset>
      <fieldset>
        <legend>Filters (any of them; none = everything)</legend>
        {form.filters.map((f, i) => (
          <div class="filter-row" key={i} data-filter={i}>
            <Select
              name={`protocol${i}`}
              aria-label={`Filter ${i + 1} protocol`}
              value={f.protocol}
              options={PROTOCOLS}
              onChange={(e) => setFilter(i, { protocol: e.currentTarget.value as CaptureProtocol })}
            />
            {FILTER_FIELDS.map(([key, what]) => (
              <input
                key={key}
                name={`${key}${i}`}
                placeholder={what}
                aria-label={`Filter ${i + 1} ${what}`}
                value={f[key]}
                onInput={(e) => setFilter(i, { [key]: e.currentTarget.value })}
              />
            ))}
            <button type="button" class="link" onClick={() => set({ filters: form.filters.filter((_, j) => j !== i) })}>
              remove
            </button>
          </div>
        ))}
        <button
          type="button"
          data-action="add-filter"
          onClick={() =>
            set({
              filters: [
                ...form.filters,
                { protocol: 'Any', localIPAddress: '', localPort: '', remoteIPAddress: '', remotePort: '' },
              ],
            })
          }
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
            <input {...check('continuousCapture')} />
            Continuous capture (a ring of files)
          </label>
        </legend>
        {form.continuousCapture ? (
          <div class="form-grid">
            <Field label="Files in the ring">
              <input inputMode="numeric" {...text('fileCount')} />
            </Field>
            <Field label="File size (bytes)">
              <input inputMode="numeric" {...text('fileSizeInBytes')} />
            </Field>
            <Field label="Session limit (seconds)">
              <input inputMode="numeric" {...text('sessionTimeLimitInSeconds')} />
            </Field>
          </div>
        ) : null}
      </fieldset>
    </ApiForm>
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
      {creating && write ? (
        vms.data && watchers.data ? (
          <CaptureForm
            vms={vms.data.value}
            watchers={watchers.data.value}
            preset={vm}
            onDone={() => {
              setCreating(false);
              rows.refresh();
            }}
          />
        ) : (
          <ErrorBox error={vms.error ?? watchers.error} title="The form needs the VMs and watchers" />
        )
      ) : null}
      <ErrorBox error={rows.error} />
      {rows.data || rows.error ? null : <div class="muted">Loading captures…</div>}
      {rows.data && list.length === 0 ? (
        <Empty>
          No captures yet. They appear here when someone starts one or an alert's action group calls the
          capture-on-alert function.
        </Empty>
      ) : null}
      {list.length ? (
        <Table head={['Capture', 'Status', 'Started (UTC)', 'Captured', 'Files', '']}>
          {list.map(({ capture, status, watcher }) => {
            const p = capture.properties;
            return (
              <tr key={capture.id} data-capture={capture.name} data-status={status?.packetCaptureStatus ?? ''}>
                <td>
                  <a href={captureHref(watcher.id, capture.name)}>
                    <strong class="break">{capture.name}</strong>
                  </a>
                  <div class="muted small">
                    {parseId(p.target).name} · {watcher.location}
                    {p.filters.length ? ` · ${p.filters.length} filter(s)` : ''}
                    {p.preTriggerSeconds ? ` · pre-trigger ${p.preTriggerSeconds} s` : ''}
                  </div>
                </td>
                <td>
                  <CaptureState status={status} />
                  {status ? <CaptureProgress status={status} limits={p} now={now} /> : null}
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
                  {isFinal(status) && status?.files.length === 0 ? <span class="muted">no file</span> : null}
                </td>
                <td class="row-actions">
                  <a class="button" href={captureHref(watcher.id, capture.name)}>
                    Report
                  </a>
                  <CaptureControls capture={capture} status={status} onChange={rows.refresh} />
                </td>
              </tr>
            );
          })}
        </Table>
      ) : null}
    </Section>
  );
}

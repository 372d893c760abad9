import { useState } from 'preact/hooks';
import { type Alert, type FunctionJob, get, parseId, paths } from '../api.js';
import { Badge, Empty, ErrorBox, Json, Section } from '../components.js';
import { ago, isoDuration, metricValue, operatorSign, utc, utcTime } from '../format.js';
import { useNow, usePoll } from '../hooks.js';
import { useSession } from '../session.js';

const TIME_RANGES = ['1h', '1d', '7d', '30d'] as const;

/** The page of the capture the function made for a job. */
export function captureHref(job: FunctionJob): string | null {
  if (!job.captureName || !job.watcher) return null;
  const { resourceGroup, name } = job.watcher;
  return `#/captures/${encodeURIComponent(resourceGroup)}/${encodeURIComponent(name)}/${encodeURIComponent(job.captureName)}`;
}

/** The function's job for an alert: by the alert id (common schema), else by rule, VM and time. */
export function jobFor(alert: Alert, jobs: FunctionJob[]): FunctionJob | undefined {
  const id = alert.id.toLowerCase();
  const byId = jobs.filter((j) => j.alertId === id);
  if (byId.length) return byId.find((j) => j.condition === 'Fired') ?? byId[0];
  const e = alert.properties.essentials;
  const fired = Date.parse(e.startDateTime);
  return jobs.find(
    (j) =>
      j.condition === 'Fired' &&
      j.ruleName === alert.name &&
      j.vm?.toLowerCase() === e.targetResource.toLowerCase() &&
      Math.abs(Date.parse(j.receivedTime) - fired) < 120_000,
  );
}

function JobSummary({ job }: { job: FunctionJob }) {
  const href = captureHref(job);
  return (
    <div class="job" data-job-status={job.status}>
      <span class="muted">capture-on-alert:</span> <Badge>{job.status}</Badge>
      {job.reason ? <span class="mono small"> {job.reason}</span> : null}
      {job.message ? <span class="small"> {job.message}</span> : null}
      {job.captureName ? (
        href ? (
          <a href={href} class="capture-link" data-capture={job.captureName}>
            capture {job.captureName} {job.capture?.status ? `(${job.capture.status})` : ''} →
          </a>
        ) : (
          <span class="mono small"> {job.captureName}</span>
        )
      ) : null}
    </div>
  );
}

function AlertItem({ alert, job }: { alert: Alert; job: FunctionJob | undefined }) {
  const e = alert.properties.essentials;
  const ctx = alert.properties.context;
  return (
    <li class="timeline-item" data-alert-rule={alert.name} data-condition={e.monitorCondition}>
      <div class="timeline-time mono">
        {utcTime(e.startDateTime)}
        <div class="muted small">{utc(e.startDateTime).slice(0, 10)}</div>
      </div>
      <div class="timeline-body card">
        <div class="alert-title">
          <Badge>{e.monitorCondition}</Badge> <span class="sev">{e.severity}</span> <strong>{alert.name}</strong> on{' '}
          <strong>{e.targetResourceName}</strong>
          <span class="muted small"> ({e.targetResourceGroup})</span>
        </div>
        <ul class="criteria">
          {ctx.criteria.map((c) => (
            <li key={c.name}>
              {c.timeAggregation} {c.metricName} was <strong>{metricValue(c.metricName, c.metricValue)}</strong>{' '}
              {operatorSign(c.operator)} {metricValue(c.metricName, c.threshold)} {c.met ? '' : '(not met)'}
            </li>
          ))}
        </ul>
        <div class="muted small">
          window {utcTime(ctx.windowStartTime)}–{utcTime(ctx.windowEndTime)} UTC ({isoDuration(ctx.windowSize)}) · fired{' '}
          {utc(e.startDateTime)}
          {e.monitorConditionResolvedDateTime ? ` · resolved ${utc(e.monitorConditionResolvedDateTime)}` : ''}
        </div>
        <div class="small">
          notifications:{' '}
          {alert.properties.deliveries.length === 0 ? (
            <span class="muted">none (the rule has no action group)</span>
          ) : (
            alert.properties.deliveries.map((d) => (
              <span key={d.id} class="delivery">
                {d.receiverName} ({d.monitorCondition}) <Badge>{d.status}</Badge>
              </span>
            ))
          )}
        </div>
        {job ? <JobSummary job={job} /> : null}
        <Json value={alert} summary="Alert payload (Alerts Management shape)" />
        {job ? <Json value={job} summary="What the capture-on-alert function did" /> : null}
      </div>
    </li>
  );
}

export function AlertsPage() {
  const { sub } = useSession();
  const [range, setRange] = useState<(typeof TIME_RANGES)[number]>('1d');
  const [state, setState] = useState<'all' | 'Fired' | 'Resolved'>('all');
  const alerts = usePoll(() => get<{ value: Alert[] }>(paths.alerts(sub, range)), 4000, [sub, range]);
  const jobs = usePoll(() => get<{ value: FunctionJob[] }>(paths.jobs(200)), 4000, []);
  const now = useNow(5000);
  const all = alerts.data?.value ?? [];
  const shown = all.filter((a) => state === 'all' || a.properties.essentials.monitorCondition === state);
  const jobList = jobs.data?.value ?? [];
  const matched = new Set(all.map((a) => jobFor(a, jobList)?.id).filter(Boolean));
  const otherJobs = jobList.filter((j) => !matched.has(j.id));

  return (
    <div>
      <Section
        title="Alerts"
        actions={
          <div class="filters">
            <fieldset class="segmented" aria-label="Time range">
              {TIME_RANGES.map((r) => (
                <button type="button" key={r} class={r === range ? 'active' : ''} onClick={() => setRange(r)}>
                  {r}
                </button>
              ))}
            </fieldset>
            <fieldset class="segmented" aria-label="Condition">
              {(['all', 'Fired', 'Resolved'] as const).map((s) => (
                <button type="button" key={s} class={s === state ? 'active' : ''} onClick={() => setState(s)}>
                  {s}
                </button>
              ))}
            </fieldset>
          </div>
        }
      >
        <ErrorBox error={alerts.error} />
        {alerts.data && shown.length === 0 ? (
          <Empty>No alerts in this range. Rules fire alerts when their condition holds; see Alert rules.</Empty>
        ) : null}
        {alerts.data ? null : <div class="muted">Loading alerts…</div>}
        <ul class="timeline" data-loaded={alerts.data && jobs.data ? 'yes' : 'no'}>
          {shown.map((a) => (
            <AlertItem key={a.id} alert={a} job={jobFor(a, jobList)} />
          ))}
        </ul>
      </Section>
      <Section title="Other capture-on-alert jobs">
        <p class="muted small">
          Alerts the function received that are not listed above: from Alertmanager, Grafana, an Azure Monitor outside,
          test fires and test notifications.
        </p>
        <ErrorBox error={jobs.error} />
        {jobs.data && otherJobs.length === 0 ? <Empty>None.</Empty> : null}
        <div class="table-wrap">
          <table class="table compact">
            {otherJobs.length ? (
              <thead>
                <tr>
                  <th>Received (UTC)</th>
                  <th>Source</th>
                  <th>Alert</th>
                  <th>VM</th>
                  <th>What the function did</th>
                </tr>
              </thead>
            ) : null}
            <tbody>
              {otherJobs.map((j) => (
                <tr key={j.id} data-job={j.id}>
                  <td class="mono small">
                    {utc(j.receivedTime)} <div class="muted">{ago(j.receivedTime, now)}</div>
                  </td>
                  <td>{j.source}</td>
                  <td>
                    {j.ruleName} ({j.condition})
                  </td>
                  <td>{j.vm ? parseId(j.vm).name : '—'}</td>
                  <td>
                    <JobSummary job={j} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </Section>
    </div>
  );
}

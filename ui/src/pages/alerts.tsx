import { useState } from 'preact/hooks';
import { type Alert, type FunctionJob, get, parseId, paths } from '../api.js';
import { Badge, Empty, ErrorBox, Json, Section, Segmented, Table } from '../components.js';
import { ago, isoDuration, metricValue, operatorSign, stopReasonText, utc, utcTime } from '../format.js';
import { useNow, usePoll } from '../hooks.js';
import { useSession } from '../session.js';
import { captureHref } from './capture-common.js';

const TIME_RANGES = ['1h', '1d', '7d', '30d'] as const;

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

/** What the capture-on-alert function did with one alert: its capture, how long it kept it going and why it ended. */
function JobSummary({ job, jobs }: { job: FunctionJob; jobs: FunctionJob[] }) {
  // An alert that extended or resolved another alert's capture points at that job, which holds the capture.
  const capturing = job.captureJobId ? jobs.find((j) => j.id === job.captureJobId) : job;
  const name = capturing?.captureName;
  const watcher = capturing?.watcher;
  return (
    <div class="job" data-job-status={job.status}>
      <div>
        <span class="muted">capture-on-alert:</span> <Badge>{job.status}</Badge>
        {job.reason ? <span class="mono small"> {job.reason}</span> : null}
        {job.message ? <span class="small"> {job.message}</span> : null}
      </div>
      {name ? (
        <div>
          {watcher ? (
            <a href={captureHref(watcher.id, name)} class="capture-link" data-capture={name}>
              {job.captureJobId ? 'the capture it joined' : 'capture'} {name}
              {capturing?.capture?.status ? ` (${capturing.capture.status})` : ''} →
            </a>
          ) : (
            <span class="mono small">{name}</span>
          )}
        </div>
      ) : null}
      {job.captureName ? (
        <div class="small" data-alert-life>
          {job.extensions
            ? `Kept going by ${job.extensions} more firing${job.extensions === 1 ? '' : 's'}, the last at ${utc(job.lastFiredTime)}. `
            : ''}
          {job.resolvedTime ? `Resolved at ${utc(job.resolvedTime)}. ` : ''}
          {job.stopReason ? (
            <span data-stop-reason={job.stopReason}>Ended: {stopReasonText(job.stopReason)}.</span>
          ) : isFinalJob(job) ? null : (
            <span class="muted">Capturing; it ends when the alert goes quiet or is resolved.</span>
          )}
        </div>
      ) : null}
      {job.notifications.length ? (
        <div class="small">
          notified:{' '}
          {job.notifications.map((n) => (
            <span
              key={n.channel}
              class="delivery"
              title={`${n.channel} at ${utc(n.time)}${n.error ? `: ${n.error}` : ''}`}
            >
              {n.channel.split(':')[0]} <Badge>{n.status}</Badge>
            </span>
          ))}
        </div>
      ) : null}
    </div>
  );
}

const isFinalJob = (job: FunctionJob) => !['Creating', 'Capturing', 'Notifying'].includes(job.status);

function AlertItem({ alert, jobs }: { alert: Alert; jobs: FunctionJob[] }) {
  const job = jobFor(alert, jobs);
  const e = alert.properties.essentials;
  const ctx = alert.properties.context;
  return (
    <li class="timeline-item" data-alert-rule={alert.name} data-condition={e.monitorCondition}>
      <div class="timeline-time mono">
        {utcTime(e.startDateTime)}
        <div class="muted small">{utc(e.startDateTime).slice(0, 10)} UTC</div>
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
        {job ? <JobSummary job={job} jobs={jobs} /> : null}
        <Json value={alert} summary="Alert payload (Alerts Management shape)" />
        {job ? <Json value={job} summary="What the capture-on-alert function did" /> : null}
      </div>
    </li>
  );
}

const CONDITIONS = ['all', 'Fired', 'Resolved'] as const;

export function AlertsPage() {
  const { sub } = useSession();
  const [range, setRange] = useState<(typeof TIME_RANGES)[number]>('1d');
  const [condition, setCondition] = useState<(typeof CONDITIONS)[number]>('all');
  const alerts = usePoll(() => get<{ value: Alert[] }>(paths.alerts(sub, range)), 4000, [sub, range]);
  const jobs = usePoll(() => get<{ value: FunctionJob[] }>(paths.jobs(200)), 4000, []);
  const now = useNow(5000);
  const all = alerts.data?.value ?? [];
  const shown = all.filter((a) => condition === 'all' || a.properties.essentials.monitorCondition === condition);
  const jobList = jobs.data?.value ?? [];
  // Every job of a listed alert (its Fired one, its Resolved one) is told under that alert.
  const alertIds = new Set(all.map((a) => a.id.toLowerCase()));
  const matched = new Set(all.map((a) => jobFor(a, jobList)?.id));
  const otherJobs = jobList.filter((j) => !matched.has(j.id) && !(j.alertId && alertIds.has(j.alertId)));

  return (
    <div>
      <Section
        title="Alerts"
        actions={
          <div class="filters">
            <Segmented label="Time range" options={TIME_RANGES} value={range} onChange={setRange} />
            <Segmented label="Condition" options={CONDITIONS} value={condition} onChange={setCondition} />
          </div>
        }
      >
        <ErrorBox error={alerts.error} />
        {alerts.data && shown.length === 0 ? (
          <Empty>No alerts in this range. Rules fire alerts when their condition holds; see Alert rules.</Empty>
        ) : null}
        {alerts.data || alerts.error ? null : <div class="muted">Loading alerts…</div>}
        <ul class="timeline" data-loaded={alerts.data && jobs.data ? 'yes' : 'no'}>
          {shown.map((a) => (
            <AlertItem key={a.id} alert={a} jobs={jobList} />
          ))}
        </ul>
      </Section>
      <Section title="Other capture-on-alert jobs">
        <p class="muted small">
          Alerts the function received that are not listed above: from Alertmanager, Grafana, an Azure Monitor outside,
          test fires and test notifications.
        </p>
        <ErrorBox error={jobs.error} />
        {jobs.data || jobs.error ? null : <div class="muted">Loading jobs…</div>}
        {jobs.data && otherJobs.length === 0 ? <Empty>None.</Empty> : null}
        {otherJobs.length ? (
          <Table compact head={['Received (UTC)', 'Source', 'Alert', 'VM', 'What the function did']}>
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
                  <JobSummary job={j} jobs={jobList} />
                </td>
              </tr>
            ))}
          </Table>
        ) : null}
      </Section>
    </div>
  );
}

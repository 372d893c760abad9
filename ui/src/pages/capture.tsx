import {
  type Alert,
  api,
  type Capture,
  type CaptureFilter,
  type CaptureStatus,
  enc,
  type FunctionJob,
  get,
  parseId,
  paths,
  type ReportResponse,
  withVersion,
} from '../api.js';
import { Empty, ErrorBox, Fact, Section } from '../components.js';
import { bytes, count, seconds, stopReasonText, utc } from '../format.js';
import { useNow, usePoll } from '../hooks.js';
import { useSession } from '../session.js';
import { CaptureControls, CaptureProgress, CaptureState, DownloadButton, isFinal } from './capture-common.js';
import { type AlertMarks, ReportView } from './report.js';

/** The alert a capture was made for (through the capture-on-alert function's record), for the report's marks. */
async function alertMarksFor(captureName: string): Promise<AlertMarks | null> {
  const jobs = (await get<{ value: FunctionJob[] }>(paths.jobs(500))).value;
  // The job that made the capture; the alerts that extended or resolved it name that job.
  const job = jobs.find((j) => j.captureName === captureName && !j.captureJobId);
  if (!job) return null;
  const later = jobs.filter((j) => j.captureJobId === job.id);
  if (job.alertId) {
    try {
      const alert = await get<Alert>(withVersion(job.alertId, '2019-05-05-preview'));
      const ctx = alert.properties.context;
      return {
        ruleName: alert.name,
        firedAt: alert.properties.essentials.startDateTime,
        windowStart: ctx.windowStartTime,
        windowEnd: ctx.windowEndTime,
        job,
        later,
      };
    } catch {
      // The alert is gone from the record (or was a test): the job's time will do.
    }
  }
  return { ruleName: job.ruleName, firedAt: job.receivedTime, windowStart: null, windowEnd: null, job, later };
}

/** Filters in words: `UDP remote 10.0.0.2:9 or TCP local :443`. */
function filtersText(filters: CaptureFilter[]): string {
  if (filters.length === 0) return 'none (everything)';
  return filters
    .map((f) =>
      [
        f.protocol,
        f.localIPAddress && `local ${f.localIPAddress}`,
        f.localPort && `local port ${f.localPort}`,
        f.remoteIPAddress && `remote ${f.remoteIPAddress}`,
        f.remotePort && `remote port ${f.remotePort}`,
      ]
        .filter(Boolean)
        .join(' '),
    )
    .join(' or ');
}

export function CapturePage({
  resourceGroup,
  watcher,
  name,
}: {
  resourceGroup: string;
  watcher: string;
  name: string;
}) {
  const { sub, can } = useSession();
  const id = `/subscriptions/${sub}/resourceGroups/${enc(resourceGroup)}/providers/Microsoft.Network/networkWatchers/${enc(watcher)}/packetCaptures/${enc(name)}`;
  const capture = usePoll(() => get<Capture>(withVersion(id)), 30_000, [id]);
  // Quick while it runs; slower once it has ended and its file is stored (a report can still be redone).
  const status = usePoll(
    () => api<CaptureStatus>('POST', withVersion(`${id}/queryStatus`)),
    (s) => (isFinal(s) && s?.files.length ? 15_000 : 2000),
    [id],
  );
  const report = usePoll(
    () => get<ReportResponse>(withVersion(`${id}/report`)),
    (r) => (r && ['Succeeded', 'Failed', 'Unavailable'].includes(r.status) ? 30_000 : 3000),
    [id],
  );
  const marks = usePoll(() => alertMarksFor(name), 10_000, [name]);
  const now = useNow(1000);
  const s = status.data;
  const p = capture.data?.properties;
  const alert = marks.data;

  return (
    <div class="capture-page" data-capture-page={name}>
      <p>
        <a href="#/captures">← Packet captures</a>
      </p>
      <Section
        title={`Capture ${name}`}
        actions={
          <div class="row-actions">
            {capture.data ? (
              <CaptureControls
                capture={capture.data}
                status={s}
                onChange={status.refresh}
                onDeleted={() => {
                  location.hash = '#/captures';
                }}
              />
            ) : null}
          </div>
        }
      >
        <ErrorBox error={capture.error ?? status.error} />
        <div class="facts">
          <Fact label="Status">
            <CaptureState status={s} />
          </Fact>
          <Fact label="VM">{p ? parseId(p.target).name : '…'}</Fact>
          <Fact label="Started">
            <span class="mono">{utc(s?.captureStartTime)}</span>
          </Fact>
          <Fact label="Ended">
            <span class="mono">{utc(s?.captureEndTime)}</span>
          </Fact>
          <Fact label="Captured">
            {bytes(s?.bytesCaptured)} · {count(s?.packetsCaptured)} packets
          </Fact>
          <Fact label="Limits">
            {p
              ? `${seconds(p.timeLimitInSeconds)} · ${bytes(p.totalBytesPerSession)} · ${p.bytesToCapturePerPacket ? `first ${p.bytesToCapturePerPacket} bytes of each packet` : 'whole packets'}`
              : '…'}
          </Fact>
          <Fact label="Filters">{p ? filtersText(p.filters) : '…'}</Fact>
          <Fact label="Storage">
            {p
              ? [
                  p.storageLocation.storageId && "tripcap's store",
                  p.storageLocation.filePath && `VM file ${p.storageLocation.filePath}`,
                ]
                  .filter(Boolean)
                  .join(' + ')
              : '…'}
            {p ? ` · ${p.fileFormat ?? 'pcap'}` : ''}
            {p?.continuousCapture ? ' · continuous' : ''}
          </Fact>
          {p?.preTriggerSeconds ? (
            <Fact label="Before start">
              <span data-pre-trigger>
                {s?.preTrigger
                  ? `${seconds(s.preTrigger.coveredSeconds)} of the ${seconds(s.preTrigger.requestedSeconds)} asked, from the flight recorder${s.preTrigger.coveredFrom ? ` (since ${utc(s.preTrigger.coveredFrom)})` : ''} · ${count(s.preTrigger.packets)} packets`
                  : `${seconds(p.preTriggerSeconds)} asked from the flight recorder; known when the capture ends`}
              </span>
              {s?.preTrigger?.message ? <div class="muted small">{s.preTrigger.message}</div> : null}
            </Fact>
          ) : null}
          {alert ? (
            <Fact label="For alert">
              <span data-alert-life>
                {alert.ruleName} fired {utc(alert.firedAt)}
                {alert.job.extensions
                  ? ` · extended ${alert.job.extensions}×, last firing ${utc(alert.job.lastFiredTime)}`
                  : ''}
                {alert.job.resolvedTime ? ` · resolved ${utc(alert.job.resolvedTime)}` : ''}
                {alert.job.stopReason ? ` · ended: ${stopReasonText(alert.job.stopReason)}` : ''}
              </span>
            </Fact>
          ) : null}
        </div>
        {s && p ? <CaptureProgress status={s} limits={p} now={now} /> : null}
        <h3>Files</h3>
        {s && s.files.length === 0 ? (
          <Empty>{isFinal(s) ? 'No file was stored.' : 'The file is uploaded when the capture ends.'}</Empty>
        ) : null}
        <ul class="files">
          {s?.files.map((f) => (
            <li key={f.seq} data-file={f.seq}>
              <div class="mono small break">{f.name}</div>
              <div class="small">
                {bytes(f.size)} · {count(f.packets)} packets · {count(f.kernelDrops)} dropped by the kernel ·{' '}
                {utc(f.firstPacketTime)} → {utc(f.lastPacketTime)}
              </div>
              <div class="small">
                SHA-256{' '}
                <code class="mono break" data-sha256={f.sha256}>
                  {f.sha256}
                </code>
              </div>
              {can('pcap:download') ? (
                <DownloadButton file={f} captureName={name} />
              ) : (
                <span class="muted small">
                  Downloading the file needs a contributor or admin token (pcap:download).
                </span>
              )}
            </li>
          ))}
        </ul>
      </Section>
      <Section title="Report">
        <ErrorBox error={report.error} />
        {/* Drawn once the alert is known, so that its chart is drawn once, with the alert's marks. */}
        {report.data && !marks.loading ? (
          <ReportView response={report.data} marks={alert ?? null} />
        ) : report.error ? null : (
          <div class="muted">Loading the report…</div>
        )}
      </Section>
    </div>
  );
}

import {
  type Alert,
  api,
  type Capture,
  type CaptureStatus,
  type FunctionJob,
  get,
  paths,
  type ReportResponse,
  withVersion,
} from '../api.js';
import { ActionButton, Badge, Empty, ErrorBox, Section } from '../components.js';
import { bytes, count, utc } from '../format.js';
import { useNow, usePoll } from '../hooks.js';
import { useSession } from '../session.js';
import { CaptureProgress, DownloadButton, isFinal } from './capture-common.js';
import { type AlertMarks, ReportView } from './report.js';

/** The alert a capture was made for (through the capture-on-alert function's record), for the report's marks. */
async function alertMarksFor(captureName: string): Promise<AlertMarks | null> {
  const jobs = await get<{ value: FunctionJob[] }>(paths.jobs(500));
  const job = jobs.value.find((j) => j.captureName === captureName);
  if (!job) return null;
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
      };
    } catch {
      // The alert is gone from the record (or was a test): the job's time will do.
    }
  }
  return { ruleName: job.ruleName, firedAt: job.receivedTime, windowStart: null, windowEnd: null, job };
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
  const id = `/subscriptions/${sub}/resourceGroups/${encodeURIComponent(resourceGroup)}/providers/Microsoft.Network/networkWatchers/${encodeURIComponent(watcher)}/packetCaptures/${encodeURIComponent(name)}`;
  const capture = usePoll(() => get<Capture>(withVersion(id)), 30_000, [id]);
  const status = usePoll(() => api<CaptureStatus>('POST', withVersion(`${id}/queryStatus`)), 2000, [id]);
  const report = usePoll(() => get<ReportResponse>(withVersion(`${id}/report`)), 3000, [id]);
  const marks = usePoll(() => alertMarksFor(name), 10_000, [name]);
  const now = useNow(1000);
  const s = status.data;
  const p = capture.data?.properties;
  const storage = p?.storageLocation ?? {};

  return (
    <div class="capture-page" data-capture-page={name}>
      <p>
        <a href="#/captures">← Packet captures</a>
      </p>
      <Section
        title={`Capture ${name}`}
        actions={
          <div class="row-actions">
            {can('capture:write') && s && !isFinal(s) ? (
              <ActionButton
                action="stop-capture"
                onClick={async () => {
                  await api('POST', withVersion(`${id}/stop`));
                  status.refresh();
                }}
              >
                Stop
              </ActionButton>
            ) : null}
            {can('capture:write') ? (
              <ActionButton
                action="delete-capture"
                kind="danger"
                confirm={`Delete capture ${name}? Its files stay in storage.`}
                onClick={async () => {
                  await api('DELETE', withVersion(id));
                  location.hash = '#/captures';
                }}
              >
                Delete
              </ActionButton>
            ) : null}
          </div>
        }
      >
        <ErrorBox error={capture.error ?? status.error} />
        <div class="facts">
          <div>
            <span class="fact-label">Status</span>
            {s ? <Badge>{s.packetCaptureStatus}</Badge> : '…'}{' '}
            {s?.stopReason ? <span class="muted">{s.stopReason}</span> : null}
            {s?.packetCaptureError.length ? <span class="error small"> {s.packetCaptureError.join(', ')}</span> : null}
          </div>
          <div>
            <span class="fact-label">VM</span>
            {p ? p.target.split('/').at(-1) : '…'}
          </div>
          <div>
            <span class="fact-label">Started</span>
            <span class="mono">{utc(s?.captureStartTime)}</span>
          </div>
          <div>
            <span class="fact-label">Ended</span>
            <span class="mono">{utc(s?.captureEndTime)}</span>
          </div>
          <div>
            <span class="fact-label">Captured</span>
            {bytes(s?.bytesCaptured)} · {count(s?.packetsCaptured)} packets
          </div>
          <div>
            <span class="fact-label">Limits</span>
            {p
              ? `${p.timeLimitInSeconds ?? 18000} s · ${bytes(p.totalBytesPerSession)} · snaplen ${p.bytesToCapturePerPacket || 'whole packets'}`
              : '…'}
          </div>
          <div>
            <span class="fact-label">Filters</span>
            {p?.filters?.length
              ? p.filters
                  .map((f) =>
                    [
                      f.protocol,
                      f.localIPAddress && `local ${f.localIPAddress}`,
                      f.localPort && `:${f.localPort}`,
                      f.remoteIPAddress && `remote ${f.remoteIPAddress}`,
                      f.remotePort && `:${f.remotePort}`,
                    ]
                      .filter(Boolean)
                      .join(' '),
                  )
                  .join(' or ')
              : 'none (everything)'}
          </div>
          <div>
            <span class="fact-label">Storage</span>
            {[storage.storageId && "tripcap's store", storage.filePath && `VM file ${storage.filePath}`]
              .filter(Boolean)
              .join(' + ') || '…'}
            {p?.preTriggerSeconds ? ` · pre-trigger ${p.preTriggerSeconds} s` : ''}
          </div>
          {s?.preTrigger ? (
            <div data-pre-trigger>
              <span class="fact-label">Before start</span>
              {s.preTrigger.coveredSeconds} s of the {s.preTrigger.requestedSeconds} s asked, from the flight recorder
              {s.preTrigger.coveredFrom ? ` (since ${utc(s.preTrigger.coveredFrom)})` : ''} ·{' '}
              {count(s.preTrigger.packets)} packets
              {s.preTrigger.message ? <div class="muted small">{s.preTrigger.message}</div> : null}
            </div>
          ) : null}
          {marks.data ? (
            <div>
              <span class="fact-label">For alert</span>
              {marks.data.ruleName} fired {utc(marks.data.firedAt)}
            </div>
          ) : null}
        </div>
        {s ? (
          <CaptureProgress
            status={s}
            timeLimit={p?.timeLimitInSeconds ?? 18_000}
            byteLimit={p?.totalBytesPerSession ?? 1_073_741_824}
            now={now}
          />
        ) : null}
        <h3>Files</h3>
        {s && s.files.length === 0 ? (
          <Empty>{isFinal(s) ? 'No file was stored.' : 'The file is uploaded when the capture ends.'}</Empty>
        ) : null}
        <ul class="files">
          {s?.files.map((f) => (
            <li key={f.seq} data-file={f.seq}>
              <div class="mono small break">{f.name}</div>
              <div class="small">
                {bytes(f.size)} · {count(f.packets)} packets · {f.kernelDrops} kernel drops · {utc(f.firstPacketTime)} →{' '}
                {utc(f.lastPacketTime)}
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
        {report.data ? (
          <ReportView response={report.data} marks={marks.data ?? null} />
        ) : (
          <div class="muted">Loading…</div>
        )}
      </Section>
    </div>
  );
}

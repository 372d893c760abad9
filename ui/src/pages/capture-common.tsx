import { useState } from 'preact/hooks';
import { api, type Capture, type CaptureFile, type CaptureStatus, enc, parseId, request, withVersion } from '../api.js';
import { ActionButton, Badge, Progress } from '../components.js';
import { bytes, count, seconds } from '../format.js';
import { useSession } from '../session.js';

const FINAL = new Set(['Stopped', 'Error']);
export const isFinal = (status: CaptureStatus | null | undefined) =>
  Boolean(status && FINAL.has(status.packetCaptureStatus));

/** The capture's page, under its watcher. */
export function captureHref(watcherId: string, name: string): string {
  const { resourceGroup, name: watcher } = parseId(watcherId);
  return `#/captures/${enc(resourceGroup)}/${enc(watcher)}/${enc(name)}`;
}

/** Its status, why it stopped and its errors. */
export function CaptureState({ status }: { status: CaptureStatus | null | undefined }) {
  if (!status) return <span class="muted">…</span>;
  return (
    <>
      <Badge>{status.packetCaptureStatus}</Badge>
      {status.stopReason ? <div class="muted small">{status.stopReason}</div> : null}
      {status.packetCaptureError.length ? <div class="error small">{status.packetCaptureError.join(', ')}</div> : null}
    </>
  );
}

/** How far a running capture is towards its limits: time and bytes, whichever is nearer. */
export function CaptureProgress({
  status,
  limits,
  now,
}: {
  status: CaptureStatus;
  limits: Pick<Capture['properties'], 'timeLimitInSeconds' | 'totalBytesPerSession'>;
  now: number;
}) {
  if (status.packetCaptureStatus === 'NotStarted') return <div class="muted small">waiting for the agent…</div>;
  if (status.packetCaptureStatus !== 'Running') return null;
  const { timeLimitInSeconds: timeLimit, totalBytesPerSession: byteLimit } = limits;
  const elapsed = status.captureStartTime ? Math.max(0, (now - Date.parse(status.captureStartTime)) / 1000) : 0;
  return (
    <div class="capture-progress" data-progress={status.name}>
      <Progress
        value={timeLimit > 0 ? elapsed / timeLimit : 0}
        label={`${seconds(elapsed)} of ${seconds(timeLimit)}`}
      />
      <Progress
        value={byteLimit > 0 ? status.bytesCaptured / byteLimit : 0}
        label={`${bytes(status.bytesCaptured)} of ${bytes(byteLimit)} · ${count(status.packetsCaptured)} packets`}
      />
    </div>
  );
}

/** Stop (while it runs) and delete, for a token that may (capture:write); nothing for one that may not. */
export function CaptureControls({
  capture,
  status,
  onChange,
  onDeleted = onChange,
}: {
  capture: Capture;
  status: CaptureStatus | null | undefined;
  onChange: () => void;
  onDeleted?: () => void;
}) {
  const { can } = useSession();
  if (!can('capture:write')) return null;
  return (
    <>
      {status && !isFinal(status) ? (
        <ActionButton
          action="stop-capture"
          onClick={async () => {
            await api('POST', withVersion(`${capture.id}/stop`));
            onChange();
          }}
        >
          Stop
        </ActionButton>
      ) : null}
      <ActionButton
        action="delete-capture"
        kind="danger"
        confirm={`Delete capture ${capture.name}? Its files stay in storage.`}
        onClick={async () => {
          await api('DELETE', withVersion(capture.id));
          onDeleted();
        }}
      >
        Delete
      </ActionButton>
    </>
  );
}

async function sha256Hex(data: ArrayBuffer): Promise<string | null> {
  // crypto.subtle exists only in secure contexts (HTTPS, localhost).
  if (!globalThis.crypto?.subtle) return null;
  const digest = await crypto.subtle.digest('SHA-256', data);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Downloads a capture file with the token (a plain link could not carry it), checks its SHA-256 against the one the
 * server recorded at upload, and only then hands it to the browser to save.
 */
export function DownloadButton({ file, captureName }: { file: CaptureFile; captureName: string }) {
  const [state, setState] = useState<{ busy?: boolean; ok?: string; error?: string }>({});
  if (!file.downloadUrl) return <span class="muted small">kept on the VM only</span>;
  const url = new URL(file.downloadUrl, location.href);
  return (
    <span class="download">
      <button
        type="button"
        data-action="download"
        data-capture={captureName}
        data-seq={file.seq}
        disabled={state.busy}
        onClick={async () => {
          setState({ busy: true });
          try {
            const response = await request('GET', `${url.pathname}${url.search}`);
            const data = await response.arrayBuffer();
            const actual = await sha256Hex(data);
            if (actual !== null && actual !== file.sha256) {
              setState({
                error: `SHA-256 mismatch: the server recorded ${file.sha256} but the download is ${actual}. Not saved.`,
              });
              return;
            }
            const name =
              /filename="([^"]+)"/.exec(response.headers.get('content-disposition') ?? '')?.[1] ??
              file.name.split('/').at(-1) ??
              'capture.cap';
            const href = URL.createObjectURL(new Blob([data], { type: 'application/vnd.tcpdump.pcap' }));
            const a = document.createElement('a');
            a.href = href;
            a.download = name;
            document.body.append(a);
            a.click();
            a.remove();
            setTimeout(() => URL.revokeObjectURL(href), 60_000);
            setState({
              ok:
                actual === null
                  ? `Saved ${name} (${bytes(data.byteLength)}); this page is not on HTTPS, so it could not check the SHA-256.`
                  : `Saved ${name} (${bytes(data.byteLength)}); SHA-256 verified.`,
            });
          } catch (err) {
            setState({ error: err instanceof Error ? err.message : String(err) });
          }
        }}
      >
        {state.busy ? 'Downloading…' : `Download .cap${file.seq > 1 ? ` #${file.seq}` : ''}`}
      </button>
      {state.ok ? (
        <span class="ok small" data-download-result="ok">
          {state.ok}
        </span>
      ) : null}
      {state.error ? (
        <span class="error small" role="alert">
          {state.error}
        </span>
      ) : null}
    </span>
  );
}

import type { Conversation, FunctionJob, Peer, ProtocolNode, Report, ReportResponse } from '../api.js';
import { TimeChart } from '../chart.js';
import { Badge, Empty, ErrorBox, Fact, Table } from '../components.js';
import { bitrate, bytes, count, percent, seconds, utc, utcTime } from '../format.js';

/** The alert a capture was made for: its moment and window are marked on the I/O chart. */
export interface AlertMarks {
  ruleName: string;
  firedAt: string;
  windowStart: string | null;
  windowEnd: string | null;
  /** The function's job that made the capture, and the later alerts that extended or resolved it. */
  job: FunctionJob;
  later: FunctionJob[];
}

function IoChart({ report, marks }: { report: Report; marks: AlertMarks | null }) {
  const t = report.timeline;
  if (!t.start || t.bytes.length === 0) return <Empty>No packets: nothing to chart.</Empty>;
  const start = Date.parse(t.start) / 1000;
  const x = t.bytes.map((_, i) => start + i * t.binSeconds);
  const rate = (values: number[]) => values.map((b) => (b * 8) / t.binSeconds);
  const at = (iso: string | null) => (iso ? Date.parse(iso) / 1000 : null);
  const windowStart = at(marks?.windowStart ?? null);
  const windowEnd = at(marks?.windowEnd ?? null);
  const fired = at(marks?.firedAt ?? null);
  const end = (x.at(-1) ?? start) + t.binSeconds;
  // Reach back to the alert's window, which usually closed before the capture began.
  const xMin = Math.min(start, windowStart ?? start, fired ?? start);
  const xMax = Math.max(end, fired ?? end);
  return (
    <>
      <TimeChart
        title="capture I/O"
        x={x}
        xRange={[xMin, xMax]}
        series={[
          { label: 'out (bit/s)', color: '#7ee08a', values: rate(t.outBytes), width: 2 },
          { label: 'in (bit/s)', color: '#5fb3f0', values: rate(t.inBytes), width: 2 },
          { label: 'all (bit/s)', color: '#8fa1b3', values: rate(t.bytes), width: 1 },
        ]}
        yFormat={(v) => bitrate(v)}
        height={220}
        marks={{
          ...(windowStart !== null && windowEnd !== null
            ? { window: { start: windowStart, end: windowEnd, label: `alert window (${marks?.ruleName})` } }
            : {}),
          ...(fired !== null ? { moment: { at: fired, label: 'alert fired' } } : {}),
        }}
      />
      <p class="muted small" data-marks={marks ? 'alert' : 'none'}>
        {t.binSeconds} s bins, UTC.
        {marks
          ? ` Shaded: the window that fired ${marks.ruleName}${marks.windowStart ? ` (${utcTime(marks.windowStart)}–${utcTime(marks.windowEnd)} UTC)` : ''}; dashed line: the alert at ${utcTime(marks.firedAt)} UTC.`
          : ' This capture was not started by an alert.'}
      </p>
    </>
  );
}

function PeerTable({ title, peers, direction }: { title: string; peers: Peer[]; direction: string }) {
  return (
    <div class="report-block">
      <h4>{title}</h4>
      {peers.length === 0 ? (
        <Empty>None.</Empty>
      ) : (
        <Table compact data-talkers={direction} head={['Address', 'Bytes', 'Share', 'Flows', 'Names']}>
          {peers.slice(0, 10).map((p) => (
            <tr key={`${p.address}:${p.port ?? ''}:${p.protocol ?? ''}`}>
              <td class="mono">
                {p.address}
                {p.port !== undefined ? `:${p.port}` : ''} {p.protocol ? <span class="muted">{p.protocol}</span> : null}
              </td>
              <td>{bytes(p.bytes)}</td>
              <td>{percent(p.share)}</td>
              <td>{count(p.flows)}</td>
              <td class="small break">{[p.app, ...(p.names ?? [])].filter(Boolean).join(', ')}</td>
            </tr>
          ))}
        </Table>
      )}
    </div>
  );
}

function Conversations({ report }: { report: Report }) {
  const rows: Array<Conversation & { kind: string }> = [
    ...report.conversations.tcp.map((c) => ({ ...c, kind: 'TCP' })),
    ...report.conversations.udp.map((c) => ({ ...c, kind: 'UDP' })),
  ]
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, 15);
  if (rows.length === 0) return <Empty>No TCP or UDP conversations.</Empty>;
  return (
    <Table compact data-conversations="" head={['Flow', 'A → B', 'B → A', 'Start', 'Duration', 'App']}>
      {rows.map((c) => (
        <tr key={`${c.kind}${c.a}${c.portA}${c.b}${c.portB}`}>
          <td class="mono small">
            {c.kind} {c.a}:{c.portA} ↔ {c.b}:{c.portB}
          </td>
          <td>
            {bytes(c.bytesAtoB)} <span class="muted small">{count(c.framesAtoB)} packets</span>
          </td>
          <td>
            {bytes(c.bytesBtoA)} <span class="muted small">{count(c.framesBtoA)} packets</span>
          </td>
          <td class="small">+{seconds(c.relStart)}</td>
          <td class="small">{seconds(c.duration)}</td>
          <td class="small break">{[c.app, c.name].filter(Boolean).join(' ')}</td>
        </tr>
      ))}
    </Table>
  );
}

function flatten(node: ProtocolNode, depth = 0, out: Array<{ node: ProtocolNode; depth: number }> = []) {
  out.push({ node, depth });
  for (const child of node.children) flatten(child, depth + 1, out);
  return out;
}

function Protocols({ report }: { report: Report }) {
  const total = report.protocols.bytes || 1;
  const rows = flatten(report.protocols).filter((r) => r.depth > 0 || report.protocols.children.length === 0);
  return (
    <Table compact data-protocols="" head={['Protocol', 'Packets', 'Bytes', 'Share']}>
      {rows.slice(0, 30).map(({ node, depth }, i) => (
        <tr key={i}>
          <td class={`indent-${Math.min(depth, 6)}`}>{node.name}</td>
          <td>{count(node.packets)}</td>
          <td>{bytes(node.bytes)}</td>
          <td>{percent(node.bytes / total)}</td>
        </tr>
      ))}
    </Table>
  );
}

function Names({ report }: { report: Report }) {
  const { dns, tls, http } = report.names;
  if (dns.length + tls.length + http.length === 0) {
    return <Empty>No DNS, TLS server names or HTTP requests seen.</Empty>;
  }
  return (
    <div class="names">
      {dns.length ? (
        <div class="report-block">
          <h4>DNS</h4>
          <ul class="plain">
            {dns.slice(0, 20).map((d) => (
              <li key={`${d.name}${d.type}`}>
                <span class="mono">{d.name}</span> {d.type} · {d.queries} queries ·{' '}
                {Object.entries(d.rcodes)
                  .map(([code, n]) => `${code} ${n}`)
                  .join(', ')}
                {d.answers.length ? <span class="muted small"> → {d.answers.slice(0, 4).join(', ')}</span> : null}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {tls.length ? (
        <div class="report-block">
          <h4>TLS server names</h4>
          <ul class="plain">
            {tls.slice(0, 20).map((t) => (
              <li key={t.sni}>
                <span class="mono">{t.sni}</span> · {t.flows} flows ·{' '}
                <span class="muted small">{t.servers.join(', ')}</span>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      {http.length ? (
        <div class="report-block">
          <h4>HTTP</h4>
          <ul class="plain">
            {http.slice(0, 20).map((h) => (
              <li key={`${h.method}${h.host}${h.path}`}>
                <span class="mono break">
                  {h.method} {h.host}
                  {h.path}
                </span>{' '}
                · {h.requests} ·{' '}
                {Object.entries(h.statuses)
                  .map(([code, n]) => `${code}×${n}`)
                  .join(', ')}
              </li>
            ))}
          </ul>
        </div>
      ) : null}
    </div>
  );
}

export function ReportView({ response, marks }: { response: ReportResponse; marks: AlertMarks | null }) {
  if (response.status !== 'Succeeded' || !response.report) {
    const waiting = ['NotStarted', 'Pending', 'Running'].includes(response.status);
    return (
      <div data-report-status={response.status}>
        <Badge tone={waiting ? 'busy' : 'bad'}>{response.status}</Badge>{' '}
        {response.status === 'NotStarted'
          ? 'The report is made once the file is stored.'
          : waiting
            ? 'Analysing the file…'
            : response.status === 'Unavailable'
              ? 'The file is kept only on the VM: there is nothing to analyse here.'
              : null}
        {response.error ? <ErrorBox error={new Error(response.error)} /> : null}
      </div>
    );
  }
  const r = response.report;
  const s = r.summary;
  return (
    <div class="report" data-report-status="Succeeded">
      <div class="explanation" data-explanation="">
        {r.explanation.sentences.length ? (
          r.explanation.sentences.map((sentence) => <p key={sentence}>{sentence}</p>)
        ) : (
          <p class="muted">Nothing stands out.</p>
        )}
      </div>
      <div class="facts">
        <Fact label="Packets">{count(s.packets)}</Fact>
        <Fact label="Bytes">{bytes(s.bytes)}</Fact>
        <Fact label="Duration">{seconds(s.duration)}</Fact>
        <Fact label="Rate">{bitrate(s.bitsPerSecond)}</Fact>
        <Fact label="Out / in">
          {bytes(r.traffic.outbound.bytes)} / {bytes(r.traffic.inbound.bytes)}
        </Fact>
        <Fact label="First packet">
          <span class="mono">{utc(s.firstTime)}</span>
        </Fact>
        <Fact label="Last packet">
          <span class="mono">{utc(s.lastTime)}</span>
        </Fact>
        <Fact label="VM addresses">
          {r.hosts.addresses.join(', ') || '—'} <span class="muted small">({r.hosts.source})</span>
        </Fact>
        <Fact label="TCP">
          {count(r.tcp.connections.attempted)} connections, {count(r.tcp.retransmissions)} retransmissions,{' '}
          {count(r.tcp.resets)} resets
        </Fact>
      </div>
      {s.warnings.length || s.truncated ? (
        <div class="notice">
          {[
            ...(s.truncated ? ['The file is truncated: the report covers what could be read.'] : []),
            ...s.warnings,
          ].join(' ')}
        </div>
      ) : null}
      <h3>I/O</h3>
      <IoChart report={r} marks={marks} />
      <h3>Top talkers</h3>
      <div class="two-col">
        <PeerTable title="Sent to (outbound)" peers={r.traffic.topDestinations} direction="out" />
        <PeerTable title="Received from (inbound)" peers={r.traffic.topSources} direction="in" />
      </div>
      <PeerTable
        title="Outbound services (address:port)"
        peers={r.traffic.topDestinationServices}
        direction="services"
      />
      <h3>Conversations</h3>
      <Conversations report={r} />
      <h3>Protocols</h3>
      <Protocols report={r} />
      <h3>Names</h3>
      <Names report={r} />
    </div>
  );
}

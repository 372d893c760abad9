import { formatBytes, formatCount, formatDuration, formatPeer, formatRate, formatShare } from './explain.js';
import type { Conversation, ProtocolNode, Report } from './report.js';

export interface RenderOptions {
  /** Rows per list (default 10). */
  rows?: number;
}

const SPARK = ' ▁▂▃▄▅▆▇█';

function sparkline(values: number[], width = 60): string {
  if (values.length === 0) return '';
  // fold into at most `width` columns
  const cols: number[] = [];
  const per = Math.ceil(values.length / width);
  for (let i = 0; i < values.length; i += per) cols.push(values.slice(i, i + per).reduce((s, v) => s + v, 0));
  const max = Math.max(...cols);
  if (max <= 0) return ''.padEnd(cols.length, ' ');
  return cols.map((v) => SPARK[v === 0 ? 0 : Math.max(1, Math.round((v / max) * 8))]).join('');
}

function table(rows: string[][], align: Array<'l' | 'r'>): string[] {
  const widths = align.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (align[i] === 'r' ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd(),
  );
}

function protocolLines(node: ProtocolNode, total: number, depth: number, out: string[][]): void {
  for (const c of node.children) {
    out.push([
      `${'  '.repeat(depth)}${c.name}`,
      formatCount(c.packets),
      formatBytes(c.bytes),
      formatShare(total > 0 ? c.bytes / total : 0),
    ]);
    if (depth < 5) protocolLines(c, total, depth + 1, out);
  }
}

function convRow(c: Conversation): string[] {
  const a = formatPeer({ address: c.a, port: c.portA });
  const b = formatPeer({ address: c.b, port: c.portB });
  const label = c.app ? `${c.app}${c.name ? ` ${c.name}` : ''}` : '';
  return [
    `${a} → ${b}`,
    formatBytes(c.bytesAtoB),
    formatBytes(c.bytesBtoA),
    formatCount(c.frames),
    formatDuration(c.duration),
    label,
  ];
}

/** The report as compact text for a person: the explanation first, then the numbers. */
export function renderReportText(report: Report, options: RenderOptions = {}): string {
  const n = options.rows ?? 10;
  const s = report.summary;
  const lines: string[] = [];
  const file = report.file?.path ? `${report.file.path}: ` : '';
  lines.push(
    `${file}${formatCount(s.packets)} packets, ${formatBytes(s.bytes)} in ${formatDuration(s.duration)} (${formatRate(s.bitsPerSecond)}, ${s.packetsPerSecond === null ? 'n/a' : formatCount(Math.round(s.packetsPerSecond))} pkt/s)`,
  );
  if (s.firstTime)
    lines.push(`${s.firstTime} → ${s.lastTime}   ${s.format}, ${s.linkTypes.join(', ')}, snaplen ${s.snaplen}`);
  const hosts = report.hosts;
  lines.push(
    hosts.addresses.length > 0
      ? `Host: ${hosts.addresses.join(', ')}${hosts.source === 'inferred' ? ' (inferred)' : ''}`
      : 'Host: unknown (pass --host-ip for directions)',
  );
  for (const w of s.warnings) lines.push(`WARNING: ${w}`);
  if (s.packetsCut > 0) lines.push(`Note: ${formatCount(s.packetsCut)} packets were cut by the snaplen.`);

  lines.push('', 'What happened');
  for (const sentence of report.explanation.sentences) lines.push(`  • ${sentence}`);

  const t = report.traffic;
  if (hosts.addresses.length > 0) {
    lines.push(
      '',
      `Traffic  out ${formatBytes(t.outbound.bytes)} (${formatCount(t.outbound.packets)} pkts)  in ${formatBytes(t.inbound.bytes)} (${formatCount(t.inbound.packets)} pkts)  local ${formatBytes(t.local.bytes)}  other ${formatBytes(t.other.bytes + t.nonIp.bytes)}`,
    );
    if (t.topDestinationServices.length > 0) {
      lines.push('', 'Top destinations (outbound bytes)');
      const rows = t.topDestinationServices
        .slice(0, n)
        .map((p) => [
          formatPeer(p),
          p.protocol ?? '',
          formatBytes(p.bytes),
          formatShare(p.share),
          `${p.flows} flow${p.flows === 1 ? '' : 's'}`,
          [p.app, ...(p.names ?? [])].filter(Boolean).join(' '),
        ]);
      for (const l of table(rows, ['l', 'l', 'r', 'r', 'r', 'l'])) lines.push(`  ${l}`);
    }
    if (t.topSources.length > 0) {
      lines.push('', 'Top sources (inbound bytes)');
      const rows = t.topSources
        .slice(0, n)
        .map((p) => [p.address, formatBytes(p.bytes), formatShare(p.share), (p.names ?? []).join(' ')]);
      for (const l of table(rows, ['l', 'r', 'r', 'l'])) lines.push(`  ${l}`);
    }
  }

  const tl = report.timeline;
  if (tl.packets.length > 1) {
    lines.push('', `Timeline (${tl.packets.length} bins of ${formatDuration(tl.binSeconds)})`);
    const hasDir = tl.outBytes.some((v) => v > 0) || tl.inBytes.some((v) => v > 0);
    if (hasDir) {
      lines.push(
        `  out |${sparkline(tl.outBytes)}| peak ${formatRate((Math.max(...tl.outBytes) * 8) / tl.binSeconds)}`,
      );
      lines.push(`  in  |${sparkline(tl.inBytes)}| peak ${formatRate((Math.max(...tl.inBytes) * 8) / tl.binSeconds)}`);
    } else {
      lines.push(`  all |${sparkline(tl.bytes)}| peak ${formatRate((Math.max(...tl.bytes) * 8) / tl.binSeconds)}`);
    }
  }

  const convs = [...report.conversations.tcp, ...report.conversations.udp]
    .sort((x, y) => y.bytes - x.bytes)
    .slice(0, n);
  if (convs.length > 0) {
    lines.push('', 'Top flows (A → B: bytes A→B, B→A, frames, duration)');
    for (const l of table(convs.map(convRow), ['l', 'r', 'r', 'r', 'r', 'l'])) lines.push(`  ${l}`);
  }

  const tcp = report.tcp;
  if (tcp.segments > 0) {
    const rtt = tcp.handshakeRtt;
    lines.push(
      '',
      `TCP  ${formatCount(tcp.segments)} segments, retransmitted ${formatCount(tcp.retransmissions)} (${formatShare(tcp.dataSegments > 0 ? tcp.retransmissions / tcp.dataSegments : 0)} of data), resets ${tcp.resets}, zero windows ${tcp.zeroWindows}`,
      `     connections: ${tcp.connections.attempted} attempted, ${tcp.connections.established} established, ${tcp.connections.refused} refused, ${tcp.connections.unanswered} unanswered; handshake RTT ${rtt.samples > 0 ? `median ${rtt.medianMs?.toFixed(2)} ms, p95 ${rtt.p95Ms?.toFixed(2)} ms, max ${rtt.maxMs?.toFixed(2)} ms` : 'n/a'}`,
    );
    for (const f of tcp.worstFlows.slice(0, 5)) {
      lines.push(
        `     ${f.flow}: ${f.retransmissions} retransmitted, ${f.resets} resets, ${f.zeroWindows} zero windows${f.rttMs !== null ? `, RTT ${f.rttMs.toFixed(2)} ms` : ''}`,
      );
    }
  }

  const names = report.names;
  if (names.dns.length + names.tls.length + names.http.length > 0) {
    lines.push('', 'Names');
    for (const d of names.dns.slice(0, n)) {
      const rcodes = Object.entries(d.rcodes)
        .map(([k, v]) => `${k}×${v}`)
        .join(' ');
      lines.push(
        `  dns   ${d.name} ${d.type}  ${d.queries}q/${d.responses}r ${rcodes}${d.answers.length ? ` → ${d.answers.slice(0, 4).join(', ')}` : ''}`,
      );
    }
    for (const x of names.tls.slice(0, n))
      lines.push(`  tls   ${x.sni}  ${x.flows} flow${x.flows === 1 ? '' : 's'} → ${x.servers.slice(0, 3).join(', ')}`);
    for (const h of names.http.slice(0, n)) {
      const statuses = Object.entries(h.statuses)
        .map(([k, v]) => `${k}×${v}`)
        .join(' ');
      lines.push(`  http  ${h.method} ${h.host}${h.path}  ×${h.requests}${statuses ? `  ${statuses}` : ''}`);
    }
  }

  const proto: string[][] = [];
  protocolLines(report.protocols, report.protocols.bytes, 0, proto);
  if (proto.length > 0) {
    lines.push('', 'Protocols (packets, bytes, share of bytes)');
    for (const l of table(proto, ['l', 'r', 'r', 'r'])) lines.push(`  ${l}`);
  }
  return `${lines.join('\n')}\n`;
}

import type { Explanation, Peer, Report } from './report.js';

/** Facts about remote peers that the report's lists do not keep (computed from the flows). */
export interface RemoteFacts {
  outTotal: number;
  inTotal: number;
  top(kind: 'address' | 'service', dir: 'out' | 'in', limit: number): Peer[];
  topPorts(limit: number): Report['traffic']['topDestinationPorts'];
  /** Remote addresses first sent to at or after `afterNs` (ns from the first packet). */
  newDestinations(
    afterNs: number,
    limit: number,
  ): {
    count: number;
    bytes: number;
    list: Array<{ address: string; bytes: number; share: number; firstSeen: number; names?: string[] }>;
  };
  allDestinations(limit: number): Peer[];
}

export interface ExplainInput {
  quarters?: { firstOut: number; lastOut: number; firstIn: number; lastIn: number; quarterSeconds: number };
  remote: RemoteFacts;
  baseline?: Report;
  baselineFile?: string;
}

/** 1234567 → "1.2 MB" (SI, as capinfos and tshark print sizes). */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'kB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let u = 0;
  while (Math.abs(value) >= 1000 && u < units.length - 1) {
    value /= 1000;
    u++;
  }
  if (u === 0) return `${Math.round(value)} ${value === 1 ? 'byte' : 'bytes'}`;
  return `${value >= 100 ? value.toFixed(0) : value.toFixed(1)} ${units[u]}`;
}

/** Bits per second → "410 Mbit/s". */
export function formatRate(bitsPerSecond: number | null): string {
  if (bitsPerSecond === null || !Number.isFinite(bitsPerSecond)) return 'n/a';
  const units = ['bit/s', 'kbit/s', 'Mbit/s', 'Gbit/s', 'Tbit/s'];
  let value = bitsPerSecond;
  let u = 0;
  while (Math.abs(value) >= 1000 && u < units.length - 1) {
    value /= 1000;
    u++;
  }
  return `${value >= 100 || u === 0 ? value.toFixed(0) : value.toFixed(1)} ${units[u]}`;
}

export function formatShare(share: number): string {
  const pct = share * 100;
  if (pct >= 10 || pct === 0) return `${Math.round(pct)}%`;
  if (pct >= 1) return `${pct.toFixed(1)}%`;
  return pct >= 0.1 ? `${pct.toFixed(1)}%` : '<0.1%';
}

/** Seconds → "2 min 30 s", "1.5 s", "350 ms". */
export function formatDuration(seconds: number): string {
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  // Round to whole seconds first, so 299.6 s reads "5 min", not "4 min 60 s".
  const whole = Math.round(seconds);
  const m = Math.floor(whole / 60);
  const s = whole - m * 60;
  if (m < 60) return s ? `${m} min ${s} s` : `${m} min`;
  const h = Math.floor(m / 60);
  return `${h} h ${m - h * 60} min`;
}

export function formatPeer(p: { address: string; port?: number; protocol?: string }): string {
  const addr = p.address.includes(':') && p.port !== undefined ? `[${p.address}]` : p.address;
  return p.port !== undefined ? `${addr}:${p.port}` : addr;
}

function describeService(p: Peer): string {
  const parts: string[] = [];
  if (p.app) parts.push(p.app.toUpperCase());
  else if (p.protocol) parts.push(p.protocol === 'icmpv6' ? 'ICMPv6' : p.protocol.toUpperCase());
  if (p.names && p.names.length > 0) parts.push(`${p.app === 'tls' ? 'SNI ' : ''}${p.names.slice(0, 2).join(', ')}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/** 1234567 → "1,234,567" (without Intl: its first use costs milliseconds). */
export function formatCount(n: number): string {
  const text = String(Math.round(n));
  return text.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

function plural(n: number, one: string, many = `${one}s`): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

/** The plain-sentence explanation and the numbers behind it. */
export function explain(report: Report, input: ExplainInput): Explanation {
  const sentences: string[] = [];
  const { remote, quarters } = input;
  const outBytes = remote.outTotal;
  const inBytes = remote.inTotal;
  const q = quarters;
  const rate = (bytes: number) => (q && q.quarterSeconds > 0 ? (bytes * 8) / q.quarterSeconds : null);
  const explanation: Explanation = {
    sentences,
    outbound: {
      bytes: outBytes,
      firstQuarterBitsPerSecond: q ? rate(q.firstOut) : null,
      lastQuarterBitsPerSecond: q ? rate(q.lastOut) : null,
      topServices: [],
      newDestinations: [],
    },
    inbound: {
      bytes: inBytes,
      firstQuarterBitsPerSecond: q ? rate(q.firstIn) : null,
      lastQuarterBitsPerSecond: q ? rate(q.lastIn) : null,
    },
  };
  const s = report.summary;
  if (s.packets === 0) {
    sentences.push(s.truncated ? 'The file holds no readable packet.' : 'The capture holds no packet.');
    return explanation;
  }
  const hosts = report.hosts;
  if (hosts.addresses.length === 0) {
    sentences.push(
      `${plural(s.packets, 'packet')} (${formatBytes(s.bytes)}) over ${formatDuration(s.duration)}; no host address is known, so traffic is not split into outbound and inbound.`,
    );
    const top = [...report.conversations.tcp, ...report.conversations.udp].sort((x, y) => y.bytes - x.bytes)[0];
    if (top && s.bytes > 0) {
      sentences.push(
        `The largest flow, ${formatPeer({ address: top.a, port: top.portA })} ↔ ${formatPeer({ address: top.b, port: top.portB })}${top.app ? ` (${top.app.toUpperCase()}${top.name ? `, ${top.name}` : ''})` : ''}, carried ${formatShare(top.bytes / s.bytes)} of all bytes (${formatBytes(top.bytes)}).`,
      );
    }
    tcpSentences(report, sentences);
    return explanation;
  }

  // what the outbound bytes went to
  const services = remote.top('service', 'out', 10).slice(0, 5);
  explanation.outbound.topServices = services;
  if (outBytes > 0) {
    const first = services[0];
    if (first) {
      sentences.push(
        `${formatShare(first.share)} of outbound bytes (${formatBytes(first.bytes)} of ${formatBytes(outBytes)}) went to ${formatPeer(first)}${describeService(first)} over ${plural(first.flows, 'flow')}.`,
      );
      const next = services.slice(1, 3).filter((p) => p.share >= 0.01);
      if (next.length > 0) {
        sentences.push(
          `Next: ${next.map((p) => `${formatPeer(p)}${describeService(p)} ${formatShare(p.share)} (${formatBytes(p.bytes)})`).join('; ')}.`,
        );
      }
    } else {
      const dest = remote.top('address', 'out', 10)[0];
      if (dest) {
        sentences.push(
          `${formatShare(dest.share)} of outbound bytes (${formatBytes(dest.bytes)} of ${formatBytes(outBytes)}) went to ${dest.address}.`,
        );
      }
    }
    const ports = remote.topPorts(3).filter((p) => p.share >= 0.01);
    if (ports.length > 1) {
      sentences.push(
        `By destination port: ${ports.map((p) => `${p.port}/${p.protocol} ${formatShare(p.share)}`).join(', ')}.`,
      );
    }
  } else {
    sentences.push(`No outbound traffic from ${hosts.addresses.join(', ')}.`);
  }
  if (inBytes > 0) {
    const src = remote.top('address', 'in', 10)[0];
    if (src && src.share >= 0.3) {
      sentences.push(
        `${formatShare(src.share)} of inbound bytes (${formatBytes(src.bytes)} of ${formatBytes(inBytes)}) came from ${src.address}${src.names ? ` (${src.names.slice(0, 2).join(', ')})` : ''}.`,
      );
    }
  }

  // start vs end of the capture
  if (q) {
    const o1 = explanation.outbound.firstQuarterBitsPerSecond ?? 0;
    const o4 = explanation.outbound.lastQuarterBitsPerSecond ?? 0;
    const i1 = explanation.inbound.firstQuarterBitsPerSecond ?? 0;
    const i4 = explanation.inbound.lastQuarterBitsPerSecond ?? 0;
    sentences.push(changeSentence('Outbound', o1, o4));
    if (Math.max(i1, i4) > 0 && (i4 > 2 * i1 || i1 > 2 * i4)) sentences.push(changeSentence('Inbound', i1, i4));
    const fresh = remote.newDestinations(q.quarterSeconds * 1e9, 5);
    explanation.outbound.newDestinations = fresh.list;
    if (fresh.count > 0 && outBytes > 0 && fresh.bytes / outBytes >= 0.05) {
      sentences.push(
        `${plural(fresh.count, 'destination')} first contacted after the first quarter (${formatDuration(q.quarterSeconds)} in) received ${formatShare(fresh.bytes / outBytes)} of outbound bytes (${formatBytes(fresh.bytes)}): ${fresh.list
          .slice(0, 3)
          .map((d) => `${d.address}${d.names ? ` (${d.names[0]})` : ''} ${formatBytes(d.bytes)}`)
          .join(', ')}.`,
      );
    }
  }

  if (input.baseline) baselineSentences(report, input, explanation);
  tcpSentences(report, sentences);
  dnsSentences(report, sentences);
  return explanation;
}

function changeSentence(what: string, first: number, last: number): string {
  if (Math.max(first, last) < 1000) {
    return `${what} traffic was light throughout: ${formatRate(first)} in the first quarter, ${formatRate(last)} in the last.`;
  }
  if (last > 2 * first) {
    return `${what} rate rose from ${formatRate(first)} in the first quarter to ${formatRate(last)} in the last${first > 0 ? ` (×${(last / first).toFixed(last / first >= 10 ? 0 : 1)})` : ''}.`;
  }
  if (first > 2 * last) {
    return `${what} rate fell from ${formatRate(first)} in the first quarter to ${formatRate(last)} in the last.`;
  }
  return `${what} rate was steady: ${formatRate(first)} in the first quarter, ${formatRate(last)} in the last.`;
}

function baselineSentences(report: Report, input: ExplainInput, explanation: Explanation): void {
  const base = input.baseline as Report;
  const sentences = explanation.sentences;
  const rateOf = (r: Report) => (r.summary.duration > 0 ? (r.traffic.outbound.bytes * 8) / r.summary.duration : null);
  const now = rateOf(report);
  const before = rateOf(base);
  const known = new Set<string>();
  for (const list of [base.endpoints.ipv4, base.endpoints.ipv6]) for (const e of list) known.add(e.address);
  for (const p of base.traffic.topDestinations) known.add(p.address);
  const fresh = input.remote
    .allDestinations(1000)
    .filter((p) => !known.has(p.address))
    .map((p) => ({ address: p.address, bytes: p.bytes, share: p.share, ...(p.names ? { names: p.names } : {}) }));
  explanation.baseline = {
    ...(input.baselineFile ? { file: input.baselineFile } : {}),
    outboundBitsPerSecond: now,
    baselineOutboundBitsPerSecond: before,
    newDestinations: fresh.slice(0, 10),
  };
  const label = input.baselineFile ? `the baseline (${input.baselineFile})` : 'the baseline';
  if (now !== null && before !== null) {
    const ratio = before > 0 ? now / before : Number.POSITIVE_INFINITY;
    const change =
      ratio >= 1.5
        ? `${ratio === Number.POSITIVE_INFINITY ? 'up from' : `×${ratio.toFixed(ratio >= 10 ? 0 : 1)} of`}`
        : ratio <= 1 / 1.5
          ? 'down from'
          : 'about the same as';
    sentences.push(`Average outbound rate ${formatRate(now)}, ${change} ${formatRate(before)} in ${label}.`);
  }
  const freshBytes = fresh.reduce((s, p) => s + p.bytes, 0);
  if (fresh.length > 0 && input.remote.outTotal > 0) {
    sentences.push(
      `${plural(fresh.length, 'destination')} not seen in ${label} received ${formatShare(freshBytes / input.remote.outTotal)} of outbound bytes (${formatBytes(freshBytes)}): ${fresh
        .slice(0, 3)
        .map((d) => `${d.address}${d.names ? ` (${d.names[0]})` : ''} ${formatBytes(d.bytes)}`)
        .join(', ')}.`,
    );
  } else {
    sentences.push(`Every destination was already seen in ${label}.`);
  }
}

function tcpSentences(report: Report, sentences: string[]): void {
  const t = report.tcp;
  const parts: string[] = [];
  if (t.dataSegments > 0 && t.retransmissions / t.dataSegments >= 0.01) {
    parts.push(
      `${formatShare(t.retransmissions / t.dataSegments)} of data segments were retransmitted (${plural(t.retransmissions, 'segment')}, ${formatBytes(t.retransmittedBytes)})`,
    );
  }
  const c = t.connections;
  if (c.unanswered > 0) parts.push(`${plural(c.unanswered, 'connection attempt')} got no answer`);
  if (c.refused > 0)
    parts.push(`${plural(c.refused, 'connection')} ${c.refused === 1 ? 'was' : 'were'} refused with a reset`);
  if (t.resets > 0 && parts.length > 0) parts.push(`${plural(t.resets, 'reset')} in all`);
  if (t.zeroWindows > 0) parts.push(`${plural(t.zeroWindows, 'zero-window segment')} (a receiver could not keep up)`);
  if (parts.length > 0) sentences.push(`TCP: ${parts.join('; ')}.`);
  const rtt = t.handshakeRtt;
  if (rtt.samples >= 5 && rtt.p95Ms !== null && rtt.medianMs !== null && rtt.p95Ms > 200) {
    sentences.push(
      `TCP handshakes were slow at the tail: median ${rtt.medianMs.toFixed(1)} ms, p95 ${rtt.p95Ms.toFixed(0)} ms over ${plural(rtt.samples, 'handshake')}.`,
    );
  }
}

function dnsSentences(report: Report, sentences: string[]): void {
  let failed = 0;
  const names: string[] = [];
  for (const row of report.names.dns) {
    const bad = (row.rcodes.NXDOMAIN ?? 0) + (row.rcodes.SERVFAIL ?? 0) + (row.rcodes.REFUSED ?? 0);
    if (bad > 0) {
      failed += bad;
      if (names.length < 3) names.push(row.name);
    }
  }
  if (failed > 0)
    sentences.push(`DNS: ${plural(failed, 'failed lookup')} (NXDOMAIN/SERVFAIL/REFUSED), e.g. ${names.join(', ')}.`);
}

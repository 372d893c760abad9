import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Conversation, Endpoint, Report } from './report.js';

/**
 * tshark and capinfos as oracles for the report: runs them on a file, parses their statistics, and lists every
 * difference from a tripcap report (conversations and endpoints of IPv4, IPv6, TCP and UDP; packets, bytes, first and
 * last time, duration).
 */

const execFileAsync = promisify(execFile);

async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync(cmd, args, { maxBuffer: 512 << 20, timeout: 120_000 });
    return stdout;
  } catch (err) {
    // capinfos and tshark exit non-zero on a cut file but still print what they read
    const e = err as { stdout?: string; code?: number };
    if (typeof e.code === 'number' && e.stdout) return e.stdout;
    throw err;
  }
}

export interface TsharkConversation {
  a: string;
  b: string;
  portA?: number;
  portB?: number;
  framesAtoB: number;
  bytesAtoB: string;
  framesBtoA: number;
  bytesBtoA: string;
  frames: number;
  bytes: string;
  relStart: number;
  duration: number;
}

export interface TsharkStats {
  conversations: Record<'ipv4' | 'ipv6' | 'tcp' | 'udp', TsharkConversation[]>;
  endpoints: Record<'ipv4' | 'ipv6' | 'tcp' | 'udp', Endpoint[]>;
}

const SECTIONS: Record<string, [kind: 'conversations' | 'endpoints', table: 'ipv4' | 'ipv6' | 'tcp' | 'udp']> = {
  'IPv4 Conversations': ['conversations', 'ipv4'],
  'IPv6 Conversations': ['conversations', 'ipv6'],
  'TCP Conversations': ['conversations', 'tcp'],
  'UDP Conversations': ['conversations', 'udp'],
  'IPv4 Endpoints': ['endpoints', 'ipv4'],
  'IPv6 Endpoints': ['endpoints', 'ipv6'],
  'TCP Endpoints': ['endpoints', 'tcp'],
  'UDP Endpoints': ['endpoints', 'udp'],
};

function splitPort(text: string): { address: string; port: number } {
  const i = text.lastIndexOf(':');
  return { address: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

/** `tshark -q -z conv,… -z endpoints,…` for IPv4, IPv6, TCP and UDP. */
export async function tsharkStats(file: string): Promise<TsharkStats> {
  const tables = ['ip', 'ipv6', 'tcp', 'udp'];
  const out = await run('tshark', [
    '-n',
    '-r',
    file,
    '-q',
    ...tables.flatMap((t) => ['-z', `conv,${t}`]),
    ...tables.flatMap((t) => ['-z', `endpoints,${t}`]),
  ]);
  const stats: TsharkStats = {
    conversations: { ipv4: [], ipv6: [], tcp: [], udp: [] },
    endpoints: { ipv4: [], ipv6: [], tcp: [], udp: [] },
  };
  let section: (typeof SECTIONS)[string] | undefined;
  for (const line of out.split('\n')) {
    const title = SECTIONS[line.trim()];
    if (title) {
      section = title;
      continue;
    }
    if (!section || line.startsWith('=') || line.startsWith('Filter:') || line.trim().startsWith('|')) continue;
    const tokens = line.trim().split(/\s+/);
    if (tokens.length < 2) continue;
    const [kind, table] = section;
    const ported = table === 'tcp' || table === 'udp';
    if (kind === 'conversations') {
      if (tokens[1] !== '<->' || tokens.length !== 14) continue;
      const [a, , b, fBA, nBA, uBA, fAB, nAB, uAB, f, n, u, rel, dur] = tokens as string[] & { length: 14 };
      const row: TsharkConversation = {
        a: a as string,
        b: b as string,
        framesAtoB: Number(fAB),
        bytesAtoB: `${nAB} ${uAB}`,
        framesBtoA: Number(fBA),
        bytesBtoA: `${nBA} ${uBA}`,
        frames: Number(f),
        bytes: `${n} ${u}`,
        relStart: Number(rel),
        duration: Number(dur),
      };
      if (ported) {
        const pa = splitPort(row.a);
        const pb = splitPort(row.b);
        Object.assign(row, { a: pa.address, portA: pa.port, b: pb.address, portB: pb.port });
      }
      stats.conversations[table].push(row);
    } else {
      const nums = tokens.slice(1).map(Number);
      if (nums.some((x) => !Number.isFinite(x)) || nums.length !== (ported ? 7 : 6)) continue;
      const [port, ...rest] = ported ? nums : [undefined, ...nums];
      const [frames, bytes, txFrames, txBytes, rxFrames, rxBytes] = rest as number[];
      stats.endpoints[table].push({
        address: tokens[0] as string,
        ...(port !== undefined ? { port } : {}),
        frames: frames as number,
        bytes: bytes as number,
        txFrames: txFrames as number,
        txBytes: txBytes as number,
        rxFrames: rxFrames as number,
        rxBytes: rxBytes as number,
      });
    }
  }
  return stats;
}

export interface CapinfosStats {
  packets: number;
  dataBytes: number;
  /** Epoch seconds as capinfos prints them (with the file's precision), or "n/a". */
  start: string;
  end: string;
  duration: string;
}

export async function capinfosStats(file: string): Promise<CapinfosStats> {
  const out = await run('capinfos', ['-T', '-M', '-c', '-d', '-u', '-a', '-e', '-S', file]);
  const [header, row] = out
    .trim()
    .split('\n')
    .map((l) => l.split('\t'));
  const get = (name: string) => row?.[header?.findIndex((h) => h.startsWith(name)) ?? -1] ?? '';
  return {
    packets: Number(get('Number of packets')),
    dataBytes: Number(get('Data size')),
    start: get('Start time'),
    end: get('End time'),
    duration: get('Capture duration'),
  };
}

/** Wireshark's format_size(…, FORMAT_SIZE_UNIT_BYTES): "9999 bytes", then "10 kB" … with integer division. */
export function wiresharkSize(bytes: number): string {
  const units = [' kB', ' MB', ' GB', ' TB'];
  for (let i = units.length; i >= 1; i--) {
    const scaled = Math.floor(bytes / 1000 ** i);
    if (scaled >= 10) return `${scaled}${units[i - 1]}`;
  }
  return `${bytes} bytes`;
}

/** "2026-11-29T19:56:24.957906Z" → "1795982184.957906". */
export function isoToEpoch(iso: string): string {
  const m = /^(.*?)(?:\.(\d+))?Z$/.exec(iso);
  if (!m) return iso;
  const seconds = Date.parse(`${m[1]}Z`) / 1000;
  return m[2] ? `${seconds}.${m[2]}` : String(seconds);
}

function convKey(c: { a: string; b: string; portA?: number; portB?: number }): string {
  return `${c.a}:${c.portA ?? ''} -> ${c.b}:${c.portB ?? ''}`;
}

/** Every difference between the report and tshark/capinfos; empty when they agree. */
export function compareWithTshark(report: Report, tshark: TsharkStats, capinfos: CapinfosStats): string[] {
  const diffs: string[] = [];
  const s = report.summary;
  if (s.packets !== capinfos.packets) diffs.push(`packets: tripcap ${s.packets}, capinfos ${capinfos.packets}`);
  if (s.bytes !== capinfos.dataBytes) diffs.push(`bytes: tripcap ${s.bytes}, capinfos ${capinfos.dataBytes}`);
  if (capinfos.packets > 0) {
    const first = s.firstTime ? isoToEpoch(s.firstTime) : 'n/a';
    const last = s.lastTime ? isoToEpoch(s.lastTime) : 'n/a';
    if (first !== capinfos.start) diffs.push(`first time: tripcap ${first}, capinfos ${capinfos.start}`);
    if (last !== capinfos.end) diffs.push(`last time: tripcap ${last}, capinfos ${capinfos.end}`);
    if (Math.abs(s.duration - Number(capinfos.duration)) > 1e-6) {
      diffs.push(`duration: tripcap ${s.duration}, capinfos ${capinfos.duration}`);
    }
  }
  for (const table of ['ipv4', 'ipv6', 'tcp', 'udp'] as const) {
    const ours = new Map<string, Conversation>(report.conversations[table].map((c) => [convKey(c), c]));
    const theirs = new Map(tshark.conversations[table].map((c) => [convKey(c), c]));
    if (report.conversations.omitted[table] > 0)
      diffs.push(`${table} conversations: ${report.conversations.omitted[table]} omitted`);
    for (const [key, t] of theirs) {
      const o = ours.get(key);
      if (!o) {
        diffs.push(`${table} conversation ${key}: only in tshark (${t.frames} frames)`);
        continue;
      }
      const got = {
        framesAtoB: o.framesAtoB,
        framesBtoA: o.framesBtoA,
        frames: o.frames,
        bytesAtoB: wiresharkSize(o.bytesAtoB),
        bytesBtoA: wiresharkSize(o.bytesBtoA),
        bytes: wiresharkSize(o.bytes),
      };
      const want = {
        framesAtoB: t.framesAtoB,
        framesBtoA: t.framesBtoA,
        frames: t.frames,
        bytesAtoB: t.bytesAtoB,
        bytesBtoA: t.bytesBtoA,
        bytes: t.bytes,
      };
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        diffs.push(`${table} conversation ${key}: tripcap ${JSON.stringify(got)}, tshark ${JSON.stringify(want)}`);
      }
      if (Math.abs(o.relStart - t.relStart) > 2e-9)
        diffs.push(`${table} conversation ${key}: relStart ${o.relStart} vs ${t.relStart}`);
      if (Math.abs(o.duration - t.duration) > 1.5e-4)
        diffs.push(`${table} conversation ${key}: duration ${o.duration} vs ${t.duration}`);
    }
    for (const key of ours.keys()) if (!theirs.has(key)) diffs.push(`${table} conversation ${key}: only in tripcap`);

    const epKey = (e: Endpoint) => `${e.address}${e.port !== undefined ? `:${e.port}` : ''}`;
    const ourEp = new Map(report.endpoints[table].map((e) => [epKey(e), e]));
    const theirEp = new Map(tshark.endpoints[table].map((e) => [epKey(e), e]));
    for (const [key, t] of theirEp) {
      const o = ourEp.get(key);
      if (!o) diffs.push(`${table} endpoint ${key}: only in tshark`);
      else if (JSON.stringify(o) !== JSON.stringify(t))
        diffs.push(`${table} endpoint ${key}: tripcap ${JSON.stringify(o)}, tshark ${JSON.stringify(t)}`);
    }
    for (const key of ourEp.keys()) if (!theirEp.has(key)) diffs.push(`${table} endpoint ${key}: only in tripcap`);
  }
  return diffs;
}

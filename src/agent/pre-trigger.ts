import { spawn } from 'node:child_process';
import { open, readFile, stat } from 'node:fs/promises';
import { errorMessage } from '../lib/errors.js';
import {
  type CaptureWriter,
  createPcapngWriter,
  createPcapWriter,
  PCAP_FILE_HEADER_LENGTH,
  PCAP_RECORD_HEADER_LENGTH,
  type PcapRecord,
  pcapRecords,
  readPcapHeader,
  readPcapRecords,
  recordTimeMs,
} from '../pcap/index.js';

/**
 * A capture's time before its start: the flight recorder's ring cut to [start − N, now] with the session's filter
 * (cutRing, once the live capture listens), then joined to the live capture's file at the seam (joinCapture, when
 * it ends). The ring and the live capture are two packet sockets on one interface: both see the same packets in
 * the same order, each with its own timestamp (a few µs apart), so the seam is found by content, not by time.
 */

export interface RingCutOptions {
  /** The ring's files, oldest first (FlightRecorder.files()). */
  ringFiles: string[];
  /** The earliest packet wanted, ms since the epoch. */
  fromMs: number;
  /** The session's compiled filter ('' = every packet), applied by tcpdump exactly as the live capture applies it. */
  bpf: string;
  snaplen: number;
  /** Where the cut goes (classic pcap). */
  outFile: string;
  tcpdumpPath?: string;
}

export interface RingCut {
  packets: number;
  linkType: number | null;
  /** From when the ring held everything (ms since the epoch); null when it held nothing. */
  coveredFromMs: number | null;
}

/** Matching packets of the two sockets may differ by this much in time (they differ by µs; a busy host by more). */
const SEAM_TOLERANCE_MS = 500;
/** Live packets tried as the seam's anchor, and how many following packets must agree. */
const SEAM_ANCHORS = 64;

/**
 * Copies the ring's packets from `fromMs` on through the session's filter into `outFile`. Each ring file is read
 * whole and kept only if tcpdump did not start it anew meanwhile (its first record unchanged afterwards): a ring
 * reuses its oldest file, and a file read across that moment would mix two generations.
 */
export async function cutRing(options: RingCutOptions): Promise<RingCut> {
  let writer: CaptureWriter | null = null;
  let linkType: number | null = null;
  let coveredFromMs: number | null = null;
  try {
    for (const path of options.ringFiles) {
      const modified = await stat(path).catch(() => null);
      if (!modified) continue; // deleted by the age cap meanwhile
      // A file last written before fromMs holds only older packets: the ring reaches back past fromMs.
      if (modified.mtimeMs < options.fromMs) {
        coveredFromMs = options.fromMs;
        continue;
      }
      const bytes = await readFile(path);
      if (bytes.length < PCAP_FILE_HEADER_LENGTH + PCAP_RECORD_HEADER_LENGTH) continue;
      if (!(await startsWith(path, bytes.subarray(0, PCAP_FILE_HEADER_LENGTH + PCAP_RECORD_HEADER_LENGTH)))) continue;
      const header = readPcapHeader(bytes);
      const first = pcapRecords(bytes, header).next();
      if (first.done) continue;
      coveredFromMs ??= Math.max(options.fromMs, recordTimeMs(first.value));
      const filtered = options.bpf.trim() === '' ? bytes : await filterWithTcpdump(bytes, options);
      if (filtered.length < PCAP_FILE_HEADER_LENGTH) continue;
      const filteredHeader = readPcapHeader(filtered);
      linkType ??= filteredHeader.linkType;
      writer ??= createPcapWriter(options.outFile, { linkType, snaplen: options.snaplen });
      for (const record of pcapRecords(filtered, filteredHeader)) {
        if (recordTimeMs(record) >= options.fromMs) await writer.write(record);
      }
    }
    return { packets: writer?.packets ?? 0, linkType, coveredFromMs };
  } finally {
    await writer?.close();
  }
}

/** Whether the file on disk still begins with these bytes. */
async function startsWith(path: string, head: Buffer): Promise<boolean> {
  const file = await open(path, 'r').catch(() => null);
  if (!file) return false;
  try {
    const now = Buffer.alloc(head.length);
    const { bytesRead } = await file.read(now, 0, head.length, 0);
    return bytesRead === head.length && now.equals(head);
  } finally {
    await file.close();
  }
}

/** `tcpdump -r - -w - FILTER`: the packets of a pcap held in memory that pass the filter, as a pcap. */
function filterWithTcpdump(bytes: Buffer, options: RingCutOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // -Z root: Debian's tcpdump would otherwise switch to user tcpdump; "--" so the filter is never an option.
    const child = spawn(
      options.tcpdumpPath ?? 'tcpdump',
      ['-r', '-', '-w', '-', '-n', '-Z', 'root', '--', options.bpf],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr.setEncoding('utf8').on('data', (text: string) => {
      stderr = (stderr + text).slice(-4000);
    });
    child.stdin.on('error', () => {}); // tcpdump exiting early shows in its exit code
    child.once('error', reject);
    child.once('close', (code) => {
      if (code === 0) resolve(Buffer.concat(out));
      else reject(new Error(`tcpdump could not filter the ring (exit ${code}): ${stderr.trim().split('\n').at(-1)}`));
    });
    child.stdin.end(bytes);
  });
}

export interface JoinOptions {
  /** The ring's cut (cutRing's outFile), or null when there is none. */
  preFile: string | null;
  /** The live capture's classic pcap. */
  liveFile: string;
  outFile: string;
  format: 'pcap' | 'pcapng';
  snaplen: number;
  /** When the live capture began listening, ms since the epoch: the seam when no packet can anchor it. */
  liveStartMs: number;
  /** pcapng: the section's comments. */
  comments?: string[];
  interfaceName?: string;
}

export interface JoinResult {
  /** Packets taken from the ring (before the seam). */
  prePackets: number;
  livePackets: number;
  /** 'matched': a live packet found in the ring; 'time': no anchor, cut at the live capture's start; 'none': no ring. */
  seam: 'matched' | 'time' | 'none';
}

type Kept = { index: number; timeMs: number; originalLength: number; data: Buffer };

/** Writes the ring's packets up to the seam, then every live packet, into one file (pcap or pcapng). */
export async function joinCapture(options: JoinOptions): Promise<JoinResult> {
  const liveHeader = readPcapHeader(await readHead(options.liveFile));
  const anchors: Kept[] = [];
  for await (const record of readPcapRecords(options.liveFile)) {
    anchors.push(keep(record, anchors.length));
    if (anchors.length === SEAM_ANCHORS) break;
  }

  let keepPre = 0;
  let seam: JoinResult['seam'] = 'none';
  if (options.preFile) {
    const preHeader = readPcapHeader(await readHead(options.preFile));
    if (preHeader.linkType !== liveHeader.linkType) {
      throw new Error(`the ring's link type ${preHeader.linkType} is not the capture's ${liveHeader.linkType}`);
    }
    const seamMs = anchors[0]?.timeMs ?? options.liveStartMs;
    // The ring's packets near the seam, kept to find the first live packet among them.
    const near: Kept[] = [];
    let index = 0;
    let beforeSeam = 0;
    for await (const record of readPcapRecords(options.preFile)) {
      const timeMs = recordTimeMs(record);
      if (timeMs >= seamMs - SEAM_TOLERANCE_MS) near.push(keep(record, index));
      if (timeMs < seamMs) beforeSeam = index + 1;
      index++;
    }
    const matched = findSeam(near, anchors);
    keepPre = matched ?? beforeSeam;
    seam = matched === null ? 'time' : 'matched';
  }

  const writer =
    options.format === 'pcapng'
      ? createPcapngWriter(options.outFile, {
          interfaces: [
            {
              linkType: liveHeader.linkType,
              snaplen: options.snaplen,
              ...(options.interfaceName ? { name: options.interfaceName } : {}),
            },
          ],
          ...(options.comments?.length ? { comment: options.comments } : {}),
        })
      : createPcapWriter(options.outFile, { linkType: liveHeader.linkType, snaplen: options.snaplen });
  try {
    if (options.preFile && keepPre > 0) {
      for await (const record of readPcapRecords(options.preFile)) {
        await writer.write(record);
        if (writer.packets === keepPre) break;
      }
    }
    for await (const record of readPcapRecords(options.liveFile)) await writer.write(record);
  } finally {
    await writer.close();
  }
  return { prePackets: keepPre, livePackets: writer.packets - keepPre, seam };
}

/**
 * The number of ring packets before the seam: the ring's position of the first live packet it also holds, such
 * that the following packets agree too (a lone match could be a repeated packet). null when none anchors.
 */
function findSeam(near: Kept[], anchors: Kept[]): number | null {
  for (let a = 0; a < anchors.length; a++) {
    for (let r = 0; r < near.length; r++) {
      let run = 0;
      while (
        a + run < anchors.length &&
        r + run < near.length &&
        samePacket(near[r + run] as Kept, anchors[a + run] as Kept)
      ) {
        run++;
      }
      if (run > 0 && (a + run === anchors.length || r + run === near.length)) return (near[r] as Kept).index;
    }
  }
  return null;
}

/** The same packet seen by two sockets: same length on the wire, same bytes as far as both kept, close in time. */
function samePacket(ring: Kept, live: Kept): boolean {
  if (ring.originalLength !== live.originalLength) return false;
  if (Math.abs(ring.timeMs - live.timeMs) > SEAM_TOLERANCE_MS) return false;
  const length = Math.min(ring.data.length, live.data.length);
  return ring.data.subarray(0, length).equals(live.data.subarray(0, length));
}

function keep(record: PcapRecord, index: number): Kept {
  return {
    index,
    timeMs: recordTimeMs(record),
    originalLength: record.originalLength,
    data: Buffer.from(record.data),
  };
}

async function readHead(path: string): Promise<Buffer> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(PCAP_FILE_HEADER_LENGTH);
    const { bytesRead } = await file.read(head, 0, head.length, 0);
    return head.subarray(0, bytesRead);
  } catch (err) {
    throw new Error(`${path}: ${errorMessage(err)}`);
  } finally {
    await file.close();
  }
}

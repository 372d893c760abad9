import { spawn } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readFile, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { errorMessage } from '../lib/errors.js';
import {
  type CaptureWriter,
  createPcapngWriter,
  createPcapWriter,
  PCAP_FILE_HEADER_LENGTH,
  PCAP_RECORD_HEADER_LENGTH,
  type PcapRecord,
  pcapRecords,
  readPcapChunks,
  readPcapHeader,
  recordTimeMs,
  scanPcapFile,
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
  /** From when the ring holds every packet (FlightRecorder.heldSinceMs()). */
  heldSinceMs: number | null;
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
  /** From when the cut holds every packet of [fromMs, now] (ms since the epoch); null when the ring held no file. */
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
  let coveredFromMs = options.heldSinceMs === null ? null : Math.max(options.fromMs, options.heldSinceMs);
  let lostOne = false;
  try {
    for (const path of options.ringFiles) {
      const modified = await stat(path).catch(() => null);
      if (!modified) continue; // deleted by the age cap meanwhile
      // A file last written before fromMs holds only older packets.
      if (modified.mtimeMs < options.fromMs) continue;
      const bytes = await readFile(path);
      if (bytes.length < PCAP_FILE_HEADER_LENGTH + PCAP_RECORD_HEADER_LENGTH) continue;
      if (!(await startsWith(path, bytes.subarray(0, PCAP_FILE_HEADER_LENGTH + PCAP_RECORD_HEADER_LENGTH)))) {
        lostOne = true;
        continue;
      }
      const header = readPcapHeader(bytes);
      const first = pcapRecords(bytes, header).next();
      if (first.done) continue;
      // Reused while read: what it held is lost, so the cut holds everything only from the next file on.
      if (lostOne && coveredFromMs !== null) coveredFromMs = Math.max(coveredFromMs, recordTimeMs(first.value));
      lostOne = false;
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
  await eachRecord(options.liveFile, (record) => {
    anchors.push(keep(record, anchors.length));
    return anchors.length < SEAM_ANCHORS;
  });

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
    await eachRecord(options.preFile, (record) => {
      const timeMs = recordTimeMs(record);
      if (timeMs >= seamMs - SEAM_TOLERANCE_MS) near.push(keep(record, index));
      if (timeMs < seamMs) beforeSeam = index + 1;
      index++;
    });
    const matched = findSeam(near, anchors);
    keepPre = matched ?? beforeSeam;
    seam = matched === null ? 'time' : 'matched';
  }

  const pcapng = options.format === 'pcapng';
  const writer = pcapng
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
  // tcpdump's own file (little-endian µs on the hosts tripcap runs on) is the rest of a pcap as it is: copied whole.
  const copyLive = !pcapng && liveHeader.littleEndian && !liveHeader.nanoseconds;
  let livePackets = 0;
  try {
    if (options.preFile && keepPre > 0) await writeRecords(options.preFile, writer, keepPre);
    if (!copyLive) livePackets = await writeRecords(options.liveFile, writer, Number.POSITIVE_INFINITY);
  } finally {
    await writer.close();
  }
  if (copyLive) {
    await pipeline(
      createReadStream(options.liveFile, { start: PCAP_FILE_HEADER_LENGTH }),
      createWriteStream(options.outFile, { flags: 'a' }),
    );
    livePackets = (await scanPcapFile(options.liveFile)).packets;
  }
  return { prePackets: keepPre, livePackets, seam };
}

/** Calls `onRecord` with each record of a pcap file, until it returns false. */
async function eachRecord(path: string, onRecord: (record: PcapRecord) => unknown): Promise<void> {
  for await (const { header, records } of readPcapChunks(path)) {
    for (const record of pcapRecords(records, header, 0)) if (onRecord(record) === false) return;
  }
}

/** Writes the first `count` records of a pcap file; returns how many it wrote. */
async function writeRecords(path: string, writer: CaptureWriter, count: number): Promise<number> {
  let written = 0;
  for await (const { header, records } of readPcapChunks(path)) {
    for (const record of pcapRecords(records, header, 0)) {
      if (written === count) return written;
      await writer.write(record);
      written++;
    }
  }
  return written;
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

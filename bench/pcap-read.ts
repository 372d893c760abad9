/**
 * Throughput of the capture reader alone (src/pcap/reader.ts) on ~200 MB files from the page cache: packets/s and
 * MB/s for classic pcap and pcapng, small and mixed packet sizes, with three kinds of consumer: one that looks at
 * the lengths only, one that reads a header word through `view`/`offset` (no allocation per packet), and one that
 * touches `data` (a Uint8Array view made per packet). `capinfos -c` on the same file is the reference.
 *
 * Each configuration runs in its own process (so one's JIT state and garbage do not help or hurt another), which
 * reads the file once to warm the page cache and then `--runs` times, reporting every run and its peak RSS.
 *
 *   node --import tsx bench/pcap-read.ts [--mb 200] [--runs 5]
 *
 * Writes bench/results/pcap-read.{md,json}. Needs no root and no build.
 */
import { execFile } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { readCaptureFile, readCaptureStream } from '../src/pcap/reader.js';
import type { RawPacket } from '../src/pcap/types.js';
import { fmt, machineInfo, mdTable, numberFlags, runIfMain, stats, writeResults } from './lib.js';

const num = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : '–');

import { generateCapture, IMIX } from './pcap-gen.js';

const execFileAsync = promisify(execFile);
const THIS_FILE = fileURLToPath(import.meta.url);

type Mode = 'lengths' | 'view' | 'data' | 'stream' | 'none';

interface ChildResult {
  packets: number;
  fileBytes: number;
  seconds: number[];
  maxRssMiB: number;
}

const consumers: Record<
  Exclude<Mode, 'stream' | 'none'>,
  () => { onPacket: (p: RawPacket) => void; sink: () => number }
> = {
  lengths: () => {
    let sum = 0;
    return {
      onPacket: (p) => {
        sum += p.capturedLength;
      },
      sink: () => sum,
    };
  },
  view: () => {
    let sum = 0;
    return {
      onPacket: (p) => {
        if (p.capturedLength >= 14) sum += (p.view as DataView).getUint16((p.offset as number) + 12);
      },
      sink: () => sum,
    };
  },
  data: () => {
    let sum = 0;
    return {
      onPacket: (p) => {
        const data = p.data;
        if (data.length >= 14) sum += ((data[12] as number) << 8) | (data[13] as number);
      },
      sink: () => sum,
    };
  },
};

async function child(file: string, mode: Mode, runs: number): Promise<void> {
  const seconds: number[] = [];
  let packets = 0;
  let fileBytes = 0;
  let sink = 0;
  for (let run = 0; run <= runs && mode !== 'none'; run++) {
    const started = process.hrtime.bigint();
    if (mode === 'stream') {
      const consumer = consumers.view();
      const result = await readCaptureStream(createReadStream(file, { highWaterMark: 1 << 20 }), consumer.onPacket);
      packets = result.packets;
      fileBytes = result.fileBytes;
      sink += consumer.sink();
    } else {
      const consumer = consumers[mode]();
      const result = await readCaptureFile(file, consumer.onPacket);
      packets = result.packets;
      fileBytes = result.fileBytes;
      sink += consumer.sink();
    }
    const elapsed = Number(process.hrtime.bigint() - started) / 1e9;
    if (run > 0) seconds.push(elapsed); // run 0 warms the page cache and the JIT
  }
  const out: ChildResult & { sink: number } = {
    packets,
    fileBytes,
    seconds,
    maxRssMiB: process.resourceUsage().maxRSS / 1024,
    sink,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

async function measure(file: string, mode: Mode, runs: number): Promise<ChildResult> {
  const { stdout } = await execFileAsync(
    process.execPath,
    ['--import', 'tsx', THIS_FILE, '--child', file, mode, String(runs)],
    { maxBuffer: 1 << 20, timeout: 600_000 },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '{}') as ChildResult;
}

async function capinfosSeconds(file: string, runs: number): Promise<number[]> {
  const out: number[] = [];
  for (let run = 0; run <= runs; run++) {
    const started = process.hrtime.bigint();
    await execFileAsync('capinfos', ['-c', '-M', file], { timeout: 600_000 });
    if (run > 0) out.push(Number(process.hrtime.bigint() - started) / 1e9);
  }
  return out;
}

export async function runPcapRead(argv = process.argv.slice(2)) {
  const flags = numberFlags(argv, { mb: 200, runs: 5 });
  const machine = machineInfo();
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'tripcap-bench-pcap-'));
  try {
    const bytes = flags.mb * 1e6;
    const files = [
      { name: 'imix.pcap', format: 'pcap' as const, mix: IMIX, label: 'classic pcap, IMIX (7×64, 4×576, 1×1500 B)' },
      { name: 'imix.pcapng', format: 'pcapng' as const, mix: IMIX, label: 'pcapng (EPB), IMIX' },
      {
        name: 'small.pcap',
        format: 'pcap' as const,
        mix: [{ size: 64, weight: 1 }],
        label: 'classic pcap, 64-byte frames',
      },
      {
        name: 'small.pcapng',
        format: 'pcapng' as const,
        mix: [{ size: 64, weight: 1 }],
        label: 'pcapng (EPB), 64-byte frames',
      },
    ];
    const rows: Array<Record<string, unknown>> = [];
    const baseline = await measure('', 'none', 0);
    for (const f of files) {
      const path = join(dir, f.name);
      const generated = await generateCapture(path, { bytes, format: f.format, mix: f.mix, flows: 10_000 });
      const size = (await stat(path)).size;
      process.stdout.write(`${f.name}: ${generated.packets} packets, ${num(size / 1e6)} MB\n`);
      const modes: Mode[] =
        f.name === 'imix.pcap' ? ['lengths', 'view', 'data', 'stream'] : ['lengths', 'view', 'data'];
      for (const mode of modes) {
        const result = await measure(path, mode, flags.runs);
        const s = stats(result.seconds);
        rows.push({
          file: f.name,
          label: f.label,
          mode,
          packets: result.packets,
          fileBytes: result.fileBytes,
          seconds: result.seconds,
          medianSeconds: s.median,
          bestSeconds: s.min,
          mbPerSecond: result.fileBytes / s.median / 1e6,
          packetsPerSecond: result.packets / s.median,
          maxRssMiB: result.maxRssMiB,
        });
        process.stdout.write(
          `  ${mode}: median ${num(s.median * 1000, 1)} ms, ${num(result.fileBytes / s.median / 1e6)} MB/s, ` +
            `${num(result.packets / s.median / 1e6, 2)} Mpkt/s, RSS ${num(result.maxRssMiB)} MiB\n`,
        );
      }
      const cap = stats(await capinfosSeconds(path, Math.min(flags.runs, 3)));
      rows.push({
        file: f.name,
        label: f.label,
        mode: 'capinfos -c',
        packets: generated.packets,
        fileBytes: size,
        medianSeconds: cap.median,
        bestSeconds: cap.min,
        mbPerSecond: size / cap.median / 1e6,
        packetsPerSecond: generated.packets / cap.median,
      });
      process.stdout.write(`  capinfos -c: median ${num(cap.median * 1000, 1)} ms\n`);
      await rm(path);
    }

    const modeText: Record<string, string> = {
      lengths: 'reader, consumer reads lengths only',
      view: 'reader, consumer reads a word via `view`/`offset`',
      data: 'reader, consumer touches `data` (a view per packet)',
      stream: 'readCaptureStream over fs.createReadStream (1 MiB chunks), `view` consumer',
      'capinfos -c': '`capinfos -c -M` (reference)',
    };
    const md = [
      '# Capture reader throughput',
      '',
      `Measured ${machine.dateUtc} on ${machine.cores} cores (${machine.cpuModel}), Linux ${machine.kernel}, Node ${machine.node}; load average at start ${machine.loadAverageAtStart.join(' / ')}. Took ${Math.round((Date.now() - started) / 1000)} s.`,
      '',
      `Files of about ${flags.mb} MB written by bench/pcap-gen.ts (Ethernet/IPv4/TCP+UDP, 10 000 flows), read from the page cache: each configuration in its own process, one warm-up read, then the median of ${flags.runs} reads. MB/s counts file bytes (10^6). Peak RSS is the whole Node process.`,
      '',
      mdTable(
        ['file', 'how', 'packets', 'median ms', 'MB/s', 'Mpackets/s', 'peak RSS MiB'],
        rows.map((r) => [
          r.label as string,
          modeText[r.mode as string] ?? (r.mode as string),
          fmt.int(r.packets as number),
          num((r.medianSeconds as number) * 1000, 1),
          num(r.mbPerSecond as number),
          num((r.packetsPerSecond as number) / 1e6, 2),
          r.maxRssMiB === undefined ? '' : num(r.maxRssMiB as number),
        ]),
        ['l', 'l', 'r', 'r', 'r', 'r', 'r'],
      ),
      '',
      `Peak RSS of the same process that reads nothing (Node with tsx loaded): ${num(baseline.maxRssMiB)} MiB. ` +
        'The rest is the two 2 MiB read buffers, compiled code and garbage not yet collected: none of it grows with the file.',
      '',
      'Reading the figures: the reader parses records in place in one of two 2 MiB buffers while the next chunk is ' +
        'read into the other (the read runs on a libuv thread, so parsing and copying from the page cache overlap ' +
        'and the faster rows are bounded by that copy), and hands out one reused packet object; `data` is made only ' +
        'when a consumer asks for it, which costs an allocation per packet (the difference between the `view` and ' +
        '`data` rows, large with 64-byte frames). The stream row pays for fs.createReadStream (a new Buffer per ' +
        "chunk) and a copy into the reader's buffer. The machine is shared: compare rows of one run, not runs.",
    ].join('\n');
    return await writeResults('pcap-read', { machine, flags, baselineRssMiB: baseline.maxRssMiB, rows }, md);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--child') {
  const [, , , file, mode, runs] = process.argv;
  await child(file as string, mode as Mode, Number(runs));
} else {
  runIfMain(import.meta.url, 'pcap-read', runPcapRead, {});
}

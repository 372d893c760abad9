/**
 * Capture analysis speed: `./tripcap analyze FILE --json` (from its startup snapshot, as users run it) against `tshark -q -z conv,ip -r FILE` and `capinfos FILE` on
 * classic pcap files with many flows made by bench/pcap-gen.ts, read from the page cache (each file is read once
 * before the runs). Two packet-size mixes: IMIX (7×64, 4×576, 1×1500 B: many small packets, the hard case) and a
 * web-like mix (66 B ACKs, 1514 B segments, 700 B in between). IMIX is written at two sizes with the same flows, so
 * that peak RSS can be compared across packet counts, and the large IMIX traffic again as pcapng (tripcap's own
 * captures are pcapng by default). Wall time from a monotonic clock, peak RSS from GNU time. A tiny file (about 100
 * packets) gives tripcap's fixed cost: Node's start-up, the snapshot, and a report.
 * Writes bench/results/analyze.{json,md}.
 *
 *   node --import tsx bench/analyze.ts [--megabytes 200] [--small-megabytes 50] [--flows 20000] [--runs 9] [--tshark-runs 2]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ANALYZE_BLOB,
  CLI,
  fmt,
  LAUNCHER,
  machineInfo,
  mdTable,
  numberFlags,
  requireBuild,
  runIfMain,
  stats,
  type Timing,
  timed,
  writeResults,
} from './lib.js';
import { generateCapture } from './pcap-gen.js';

const WEB_MIX = [
  { size: 66, weight: 4 },
  { size: 700, weight: 3 },
  { size: 1514, weight: 3 },
];

export async function runAnalyzeBench(argv: string[] = []) {
  const flags = numberFlags(argv, { megabytes: 200, smallMegabytes: 50, flows: 20_000, runs: 9, tsharkRuns: 2 });
  requireBuild();
  // ./tripcap, as users run it: `analyze` starts from the startup snapshot, which must be there and current
  if (!existsSync(ANALYZE_BLOB) || statSync(ANALYZE_BLOB).mtimeMs < statSync(CLI).mtimeMs) {
    throw new Error(`${ANALYZE_BLOB} is missing or older than ${CLI}: run npm run build`);
  }
  if (!existsSync('/usr/bin/time')) throw new Error('GNU time is needed: apt-get install time');
  const atStart = machineInfo();
  const dir = mkdtempSync(join(tmpdir(), 'tripcap-bench-analyze-'));
  try {
    const files = {
      'imix-large': join(dir, 'imix-large.pcap'),
      'imix-small': join(dir, 'imix-small.pcap'),
      'web-large': join(dir, 'web-large.pcap'),
      'imix-pcapng': join(dir, 'imix-large.pcapng'),
    };
    const generated = {
      'imix-large': await generateCapture(files['imix-large'], { bytes: flags.megabytes * 1e6, flows: flags.flows }),
      'imix-small': await generateCapture(files['imix-small'], {
        bytes: flags.smallMegabytes * 1e6,
        flows: flags.flows,
      }),
      'web-large': await generateCapture(files['web-large'], {
        bytes: flags.megabytes * 1e6,
        flows: flags.flows,
        mix: WEB_MIX,
      }),
      // tripcap's own captures are pcapng by default (the capture-on-alert function asks for it)
      'imix-pcapng': await generateCapture(files['imix-pcapng'], {
        bytes: flags.megabytes * 1e6,
        flows: flags.flows,
        format: 'pcapng',
      }),
    };
    const tiny = join(dir, 'tiny.pcap');
    await generateCapture(tiny, { bytes: 100 * 400, flows: 10 });
    for (const file of [...Object.values(files), tiny]) readFileSync(file); // into the page cache
    const tools: Array<{ name: string; argv: (file: string) => string[]; runs: number }> = [
      {
        name: 'tripcap analyze --json',
        argv: (f) => [LAUNCHER, 'analyze', f, '--json'],
        runs: flags.runs,
      },
      { name: 'tshark -q -z conv,ip', argv: (f) => ['tshark', '-q', '-z', 'conv,ip', '-r', f], runs: flags.tsharkRuns },
      { name: 'capinfos', argv: (f) => ['capinfos', f], runs: flags.runs },
    ];
    type FileName = keyof typeof files;
    const results: Array<{ tool: string; file: FileName; runs: Timing[] }> = [];
    for (const size of Object.keys(files) as FileName[]) {
      const rows = tools.map((tool) => ({ tool: tool.name, file: size, runs: [] as Timing[] }));
      results.push(...rows);
      // the tools take turns, so that a busy patch of the shared machine does not fall on one tool only
      for (let i = 0; i < Math.max(...tools.map((t) => t.runs)); i++) {
        tools.forEach((tool, j) => {
          if (i >= tool.runs) return;
          const run = timed(tool.argv(files[size]));
          rows[j]?.runs.push(run);
          process.stdout.write(
            `  ${size} ${tool.name} run ${i + 1}: ${run.wallSeconds.toFixed(3)} s, ${run.maxRssKiB} KiB\n`,
          );
        });
      }
    }
    const fixed: Timing[] = [];
    for (let i = 0; i < flags.runs; i++) fixed.push(timed([LAUNCHER, 'analyze', tiny, '--json']));
    const fixedSeconds = stats(fixed.map((x) => x.wallSeconds)).median;
    const summary = results.map((r) => {
      const wall = stats(r.runs.map((x) => x.wallSeconds));
      const rss = stats(r.runs.map((x) => x.maxRssKiB));
      const size = statSync(files[r.file]).size;
      return {
        tool: r.tool,
        file: r.file,
        fileBytes: size,
        medianWallSeconds: wall.median,
        minWallSeconds: wall.min,
        maxRssMiB: rss.max / 1024,
        mbPerSecond: size / 1e6 / wall.median,
      };
    });
    const speedupOn = (file: FileName, of: 'medianWallSeconds' | 'minWallSeconds') => {
      const wall = (tool: string) =>
        summary.find((s) => s.tool.startsWith(tool) && s.file === file)?.[of] ?? Number.NaN;
      return wall('tshark') / wall('tripcap');
    };
    const speedup = {
      imix: speedupOn('imix-large', 'medianWallSeconds'),
      web: speedupOn('web-large', 'medianWallSeconds'),
      imixMin: speedupOn('imix-large', 'minWallSeconds'),
      pcapng: speedupOn('imix-pcapng', 'medianWallSeconds'),
      webMin: speedupOn('web-large', 'minWallSeconds'),
    };
    const tripcapImixMbPerSecond =
      summary.find((s) => s.tool.startsWith('tripcap') && s.file === 'imix-large')?.mbPerSecond ?? Number.NaN;
    const aimMet = speedup.imix >= 20 && tripcapImixMbPerSecond >= 1000;
    const machine = {
      ...atStart,
      loadAverageAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
      tshark: execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0],
    };
    const md = [
      '# Capture analysis: tripcap analyze vs tshark and capinfos',
      '',
      `Measured ${machine.dateUtc} on ${machine.cores} cores (${machine.cpuModel}), Linux ${machine.kernel}, Node ${machine.node}, ${machine.tshark}; load average at start ${machine.loadAverageAtStart.join(' / ')}, at the end ${machine.loadAverageAtEnd.join(' / ')}.`,
      '',
      `- files (bench/pcap-gen.ts): classic pcap (imix-pcapng: the same traffic as imix-large in pcapng), Ethernet/IPv4 TCP and UDP over ${fmt.int(flags.flows)} flows; ${Object.entries(
        generated,
      )
        .map(([name, g]) => `${name}: ${fmt.int(g.packets)} packets, ${fmt.int(g.bytes)} bytes`)
        .join('; ')}. IMIX is 7×64, 4×576, 1×1500 B frames; web is 4×66, 3×700, 3×1514 B.`,
      '- read from the page cache (each file read once before the runs); wall time by a monotonic clock around GNU time, which gives the peak RSS; median and smallest wall, largest RSS; the tools take turns within each file',
      `- runs: tripcap and capinfos ${flags.runs}, tshark ${flags.tsharkRuns}`,
      '',
      mdTable(
        ['tool', 'file', 'median wall s', 'min wall s', 'MB/s (median)', 'peak RSS MiB'],
        summary.map((s) => [
          s.tool,
          s.file,
          s.medianWallSeconds.toFixed(3),
          s.minWallSeconds.toFixed(3),
          fmt.int(s.mbPerSecond),
          s.maxRssMiB.toFixed(0),
        ]),
      ),
      '',
      `- tripcap analyze is ${speedup.imix.toFixed(1)}× faster than tshark -q -z conv,ip on the large IMIX file and ${speedup.web.toFixed(1)}× on the large web-mix file (medians; ${speedup.imixMin.toFixed(1)}× and ${speedup.webMin.toFixed(1)}× by the smallest walls). On the pcapng copy of the IMIX traffic: ${speedup.pcapng.toFixed(1)}×. Its wall time includes a fixed ${fixedSeconds.toFixed(3)} s (median of ${flags.runs} runs on a file of about 100 packets): Node's start-up from the snapshot of the analyze command, writing a report.`,
      `- Aim of issue 3 on the large IMIX file, at least 20× tshark and 1,000 MB/s: ${aimMet ? 'met' : 'not met'} (${speedup.imix.toFixed(1)}×, ${fmt.int(tripcapImixMbPerSecond)} MB/s).`,
      '- Peak RSS of tripcap is set by the number of flows, not packets: compare imix-small and imix-large.',
      '- tripcap does more than conv,ip: summary, protocol hierarchy, conversations and endpoints for IPv4/IPv6/TCP/UDP, TCP health, names, timeline and explanation, in one pass.',
    ].join('\n');
    return writeResults(
      'analyze',
      { machine, flags, generated, results, summary, speedup, aimMet, fixed, fixedSeconds },
      md,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, 'analyze', runAnalyzeBench, { build: true });

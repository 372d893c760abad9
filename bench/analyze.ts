/**
 * Capture analysis speed: `tripcap analyze FILE --json` against `tshark -q -z conv,ip -r FILE` and `capinfos FILE` on
 * generated classic pcap files with many flows, read from the page cache (each file is read once before the runs).
 * Wall time and peak RSS come from GNU time (`/usr/bin/time -f '%e %M'`). The same flows are written to a small and a
 * large file, so that peak RSS can be compared across packet counts.
 * Writes bench/results/analyze.{json,md}.
 *
 *   node --import tsx bench/analyze.ts [--megabytes 200] [--small-megabytes 50] [--flows 20000] [--runs 3] [--tshark-runs 2]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLI, fmt, machineInfo, mdTable, numberFlags, requireBuild, stats, writeResults } from './lib.js';

const HOST = 0x0a00000a; // 10.0.0.10, the "captured host" of the generated traffic

/**
 * Writes a classic pcap of Ethernet/IPv4 TCP and UDP frames over `flows` flows (half of them with HOST), frame sizes
 * mixed like real traffic (ACKs, full segments, in between), timestamps spread over 300 s, until `bytes` are written.
 * Deterministic: the same arguments give the same file.
 */
export function generateCapture(file: string, bytes: number, flows: number): { packets: number; bytes: number } {
  const fd = openSync(file, 'w');
  const buf = Buffer.alloc(4 << 20);
  let at = 0;
  buf.writeUInt32LE(0xa1b2c3d4, 0);
  buf.writeUInt16LE(2, 4);
  buf.writeUInt16LE(4, 6);
  buf.writeUInt32LE(262144, 16);
  buf.writeUInt32LE(1, 20);
  at = 24;
  let written = 0;
  let packets = 0;
  let seed = 12345;
  const random = () => {
    seed = (seed * 1103515245 + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const estimate = Math.ceil(bytes / 700);
  const start = 1_764_000_000;
  while (written + at < bytes) {
    const flow = Math.floor(random() * flows);
    const tcp = flow % 10 < 7;
    const r = random();
    const frameLength = tcp
      ? r < 0.4
        ? 66
        : r < 0.7
          ? 1514
          : 100 + Math.floor(random() * 1300)
      : 60 + Math.floor(random() * 1000);
    if (at + 16 + frameLength > buf.length) {
      writeSync(fd, buf, 0, at);
      written += at;
      at = 0;
    }
    const t = start + (packets / estimate) * 300;
    buf.writeUInt32LE(Math.floor(t), at);
    buf.writeUInt32LE(Math.floor((t % 1) * 1e6), at + 4);
    buf.writeUInt32LE(frameLength, at + 8);
    buf.writeUInt32LE(frameLength, at + 12);
    const f = at + 16;
    buf.fill(0, f, f + frameLength);
    buf.writeUInt32BE(0x02000000 + (flow & 0xffff), f); // destination MAC
    buf.writeUInt32BE(0x02000001, f + 6); // source MAC
    buf.writeUInt16BE(0x0800, f + 12);
    const ip = f + 14;
    const peer = 0x0a010000 + (flow % 8192) * 3 + 1; // 10.1.x.y
    const outbound = random() < 0.6;
    const local = flow % 2 === 0 ? HOST : 0x0a020000 + (flow % 4096);
    buf[ip] = 0x45;
    buf.writeUInt16BE(frameLength - 14, ip + 2);
    buf[ip + 8] = 64;
    buf[ip + 9] = tcp ? 6 : 17;
    buf.writeUInt32BE(outbound ? local : peer, ip + 12);
    buf.writeUInt32BE(outbound ? peer : local, ip + 16);
    const l4 = ip + 20;
    const localPort = 30000 + (flow % 30000);
    const remotePort = [443, 80, 53, 5432, 8080][flow % 5] as number;
    buf.writeUInt16BE(outbound ? localPort : remotePort, l4);
    buf.writeUInt16BE(outbound ? remotePort : localPort, l4 + 2);
    if (tcp) {
      buf.writeUInt32BE(packets * 1000, l4 + 4);
      buf[l4 + 12] = 0x50;
      buf[l4 + 13] = 0x10; // ACK
      buf.writeUInt16BE(65535, l4 + 14);
    } else {
      buf.writeUInt16BE(frameLength - 34, l4 + 4);
    }
    at = f + frameLength;
    packets++;
  }
  writeSync(fd, buf, 0, at);
  written += at;
  closeSync(fd);
  return { packets, bytes: written };
}

interface Timing {
  wallSeconds: number;
  maxRssKiB: number;
}

function timed(argv: string[]): Timing {
  const result = spawnSync('/usr/bin/time', ['-f', '%e %M', ...argv], { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (result.status !== 0) throw new Error(`${argv.join(' ')} failed: ${result.stderr.slice(-2000)}`);
  const last = result.stderr.trim().split('\n').pop() ?? '';
  const [wall, rss] = last.split(' ').map(Number);
  return { wallSeconds: wall ?? Number.NaN, maxRssKiB: rss ?? Number.NaN };
}

export async function runAnalyzeBench(argv: string[] = []) {
  const flags = numberFlags(argv, { megabytes: 200, smallMegabytes: 50, flows: 20_000, runs: 3, tsharkRuns: 2 });
  requireBuild();
  if (!existsSync('/usr/bin/time')) throw new Error('GNU time is needed: apt-get install time');
  const dir = mkdtempSync(join(tmpdir(), 'tripcap-bench-analyze-'));
  try {
    const files = {
      large: join(dir, 'large.pcap'),
      small: join(dir, 'small.pcap'),
    };
    const generated = {
      large: generateCapture(files.large, flags.megabytes * 1e6, flags.flows),
      small: generateCapture(files.small, flags.smallMegabytes * 1e6, flags.flows),
    };
    for (const file of Object.values(files)) readFileSync(file); // into the page cache
    const tools: Array<{ name: string; argv: (file: string) => string[]; runs: number }> = [
      {
        name: 'tripcap analyze --json',
        argv: (f) => [process.execPath, CLI, 'analyze', f, '--json'],
        runs: flags.runs,
      },
      { name: 'tshark -q -z conv,ip', argv: (f) => ['tshark', '-q', '-z', 'conv,ip', '-r', f], runs: flags.tsharkRuns },
      { name: 'capinfos', argv: (f) => ['capinfos', f], runs: flags.runs },
    ];
    const results: Array<{ tool: string; file: 'large' | 'small'; runs: Timing[] }> = [];
    for (const size of ['large', 'small'] as const) {
      for (const tool of tools) {
        const runs: Timing[] = [];
        for (let i = 0; i < tool.runs; i++) {
          runs.push(timed(tool.argv(files[size])));
          process.stdout.write(
            `  ${size} ${tool.name} run ${i + 1}: ${runs[i]?.wallSeconds} s, ${runs[i]?.maxRssKiB} KiB\n`,
          );
        }
        results.push({ tool: tool.name, file: size, runs });
      }
    }
    const summary = results.map((r) => {
      const wall = stats(r.runs.map((x) => x.wallSeconds));
      const rss = stats(r.runs.map((x) => x.maxRssKiB));
      const size = statSync(files[r.file]).size;
      return {
        tool: r.tool,
        file: r.file,
        fileBytes: size,
        medianWallSeconds: wall.median,
        maxRssMiB: rss.max / 1024,
        mbPerSecond: size / 1e6 / wall.median,
      };
    });
    const tripcapLarge = summary.find((s) => s.tool.startsWith('tripcap') && s.file === 'large');
    const tsharkLarge = summary.find((s) => s.tool.startsWith('tshark') && s.file === 'large');
    const speedup =
      tripcapLarge && tsharkLarge ? tsharkLarge.medianWallSeconds / tripcapLarge.medianWallSeconds : Number.NaN;
    const machine = {
      ...machineInfo(),
      tshark: execFileSync('tshark', ['--version'], { encoding: 'utf8' }).split('\n')[0],
    };
    const md = [
      '# Capture analysis: tripcap analyze vs tshark and capinfos',
      '',
      `Measured ${machine.dateUtc} on ${machine.cores} cores (${machine.cpuModel}), Linux ${machine.kernel}, Node ${machine.node}, ${machine.tshark}; load average at start ${machine.loadAverageAtStart.join(' / ')}.`,
      '',
      `- files: classic pcap, Ethernet/IPv4, 70 % TCP / 30 % UDP over ${fmt.int(flags.flows)} flows, frame sizes mixed (66, 1514, 100–1400); large: ${fmt.int(generated.large.packets)} packets, ${fmt.int(generated.large.bytes)} bytes; small: ${fmt.int(generated.small.packets)} packets, ${fmt.int(generated.small.bytes)} bytes (same flows)`,
      '- read from the page cache (each file read once before the runs); wall time and peak RSS by GNU time; median wall, largest RSS',
      `- runs: tripcap and capinfos ${flags.runs}, tshark ${flags.tsharkRuns}`,
      '',
      mdTable(
        ['tool', 'file', 'median wall s', 'MB/s', 'peak RSS MiB'],
        summary.map((s) => [
          s.tool,
          s.file,
          s.medianWallSeconds.toFixed(2),
          fmt.int(s.mbPerSecond),
          s.maxRssMiB.toFixed(0),
        ]),
      ),
      '',
      `- tripcap analyze is ${speedup.toFixed(1)}× faster than tshark -q -z conv,ip on the large file (wall time includes Node's start-up, about 0.05 s).`,
      '- tripcap does more than conv,ip: summary, protocol hierarchy, conversations and endpoints for IPv4/IPv6/TCP/UDP, TCP health, names, timeline and explanation, in one pass.',
    ].join('\n');
    return writeResults('analyze', { machine, flags, generated, results, summary, speedup }, md);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { mdFile } = await runAnalyzeBench(process.argv.slice(2));
  process.stdout.write(`${readFileSync(mdFile, 'utf8')}\n`);
}

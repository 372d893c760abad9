/**
 * What a pre-trigger capture costs the agent at its two steps (issue 6), beside Wireshark's and tcpdump's tools doing
 * the same work on the same files:
 *   cut:  the ring's files through the session's filter into the pre part (cutRing) vs `tcpdump -r RING -w OUT FILTER`
 *         (and, without a filter, vs `editcap RING OUT`, a plain copy through libwiretap);
 *   join: the pre part and the live file into one file (joinCapture, pcap and pcapng) vs `mergecap -a` (concatenate).
 * Files: a 64 MB headers-only ring file (tripcap's largest default ring file: an IMIX capture cut to 128 bytes a
 * packet by `editcap -s 128`) and a live file of about --live-megabytes of IMIX. Each step runs in its own process
 * timed (wall time by a monotonic clock, peak RSS by GNU time), --runs times, the tools taking turns; the median is shown.
 *
 *   node --import tsx bench/pre-trigger.ts [--live-megabytes 500] [--runs 3]
 *
 * Needs `npm run build` (it runs dist/agent/pre-trigger.js), tcpdump, editcap and mergecap; no root.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  fmt,
  machineInfo,
  mdTable,
  numberFlags,
  ROOT_DIR,
  runIfMain,
  stats,
  type Timing,
  timed,
  writeResults,
} from './lib.js';
import { generateCapture, IMIX } from './pcap-gen.js';

/** One call of the agent's own code, in a process of its own so that GNU time measures it alone. */
function agentStep(fn: 'cutRing' | 'joinCapture', options: unknown): string[] {
  const module = join(ROOT_DIR, 'dist', 'agent', 'pre-trigger.js');
  const script = `import(${JSON.stringify(module)}).then((m) => m.${fn}(JSON.parse(process.argv[1])))`;
  return [process.execPath, '-e', script, JSON.stringify(options)];
}

export async function runPreTriggerBench(argv: string[] = []) {
  const flags = numberFlags(argv, { liveMegabytes: 500, runs: 3 });
  const atStart = machineInfo();
  const dir = mkdtempSync(join(tmpdir(), 'tripcap-bench-pretrigger-'));
  try {
    const f = (name: string) => join(dir, name);
    // Full frames cut to 128 bytes keep ~28 % of an IMIX file: 226 MB makes a 64 MB ring file.
    await generateCapture(f('full.pcap'), { bytes: 226e6, flows: 20_000 });
    timed(['editcap', '-F', 'pcap', '-s', '128', f('full.pcap'), f('ring.pcap')]);
    rmSync(f('full.pcap'));
    const live = await generateCapture(f('live.pcap'), {
      bytes: flags.liveMegabytes * 1e6,
      flows: 20_000,
      mix: IMIX,
      startSeconds: 1_767_225_600 + 10, // after the ring's last packet
    });
    const ringBytes = statSync(f('ring.pcap')).size;
    const fromMs = 1_767_225_600 * 1000;
    const pre = { ringFiles: [f('ring.pcap')], heldSinceMs: fromMs, fromMs, snaplen: 262_144 };
    const joinOptions = (format: 'pcap' | 'pcapng', out: string) => ({
      preFile: f('pre.pcap'),
      liveFile: f('live.pcap'),
      outFile: f(out),
      format,
      snaplen: 262_144,
      liveStartMs: fromMs + 10_000,
      comments: ['tripcap bench'],
    });
    const steps: Array<{ step: string; bytes: number; tripcap: string[]; reference: string[]; referenceName: string }> =
      [
        {
          step: 'cut the ring, no filter',
          bytes: ringBytes,
          tripcap: agentStep('cutRing', { ...pre, bpf: '', outFile: f('cut-all.pcap') }),
          reference: ['editcap', '-F', 'pcap', f('ring.pcap'), f('ref-cut-all.pcap')],
          referenceName: 'editcap -F pcap RING OUT',
        },
        {
          step: "cut the ring through a filter ('udp')",
          bytes: ringBytes,
          tripcap: agentStep('cutRing', { ...pre, bpf: 'udp', outFile: f('pre.pcap') }),
          reference: ['tcpdump', '-r', f('ring.pcap'), '-w', f('ref-cut.pcap'), 'udp'],
          referenceName: 'tcpdump -r RING -w OUT udp',
        },
        {
          step: 'join pre + live, pcap',
          bytes: 0,
          tripcap: agentStep('joinCapture', joinOptions('pcap', 'joined.pcap')),
          reference: ['mergecap', '-a', '-F', 'pcap', '-w', f('ref-joined.pcap'), f('pre.pcap'), f('live.pcap')],
          referenceName: 'mergecap -a -F pcap',
        },
        {
          step: 'join pre + live, pcapng',
          bytes: 0,
          tripcap: agentStep('joinCapture', joinOptions('pcapng', 'joined.pcapng')),
          reference: ['mergecap', '-a', '-F', 'pcapng', '-w', f('ref-joined.pcapng'), f('pre.pcap'), f('live.pcap')],
          referenceName: 'mergecap -a -F pcapng',
        },
      ];
    // The filtered cut makes pre.pcap, which the joins read: run it once before the rounds.
    timed(steps[1]?.tripcap ?? []);
    const results = [];
    for (const s of steps) {
      const ours: Timing[] = [];
      const theirs: Timing[] = [];
      for (let run = 0; run < flags.runs; run++) {
        process.stdout.write(`\r${s.step}: run ${run + 1}/${flags.runs}   `);
        ours.push(timed(s.tripcap));
        theirs.push(timed(s.reference));
      }
      const bytes = s.bytes || statSync(f('pre.pcap')).size + live.bytes;
      const median = (t: Timing[]) => ({
        wallSeconds: stats(t.map((x) => x.wallSeconds)).median,
        maxRssMiB: stats(t.map((x) => x.maxRssKiB)).median / 1024,
      });
      results.push({
        step: s.step,
        inputBytes: bytes,
        tripcap: median(ours),
        reference: median(theirs),
        referenceName: s.referenceName,
      });
    }
    process.stdout.write('\n');

    const rows = results.map((r) => [
      r.step,
      `${fmt.int(Math.round(r.inputBytes / 1e6))} MB`,
      `${r.tripcap.wallSeconds.toFixed(2)} s (${fmt.int(Math.round(r.inputBytes / 1e6 / r.tripcap.wallSeconds))} MB/s)`,
      `${r.tripcap.maxRssMiB.toFixed(0)} MiB`,
      `\`${r.referenceName}\``,
      `${r.reference.wallSeconds.toFixed(2)} s`,
      `${r.reference.maxRssMiB.toFixed(0)} MiB`,
    ]);
    const markdown = [
      '# Pre-trigger captures: cutting the ring and joining the file',
      '',
      `Measured ${new Date().toISOString()} on ${atStart.cores} cores (${atStart.cpuModel}), Node ${process.version}; load average at start ${atStart.loadAverageAtStart.join(' / ')}.`,
      '',
      `\`node --import tsx bench/pre-trigger.ts --live-megabytes ${flags.liveMegabytes} --runs ${flags.runs}\` (after \`npm run build\`)`,
      '',
      `- Ring: one ${fmt.int(Math.round(ringBytes / 1e6))} MB ring file (IMIX frames cut to 128 bytes by \`editcap -s 128\`): what the agent reads whole, one file at a time. Live: ${fmt.int(Math.round(live.bytes / 1e6))} MB of IMIX (${fmt.int(live.packets)} packets).`,
      "- tripcap's side runs dist/agent/pre-trigger.js (cutRing, joinCapture) in a process of its own; each step and its reference under GNU time, taking turns, median of the runs. The filtered cut spawns tcpdump as its filter, so its time includes the reference's work.",
      '',
      mdTable(['step', 'input', 'tripcap', 'peak RSS', 'reference', 'time', 'peak RSS'], rows, [
        'l',
        'r',
        'r',
        'r',
        'l',
        'r',
        'r',
      ]),
      '',
    ].join('\n');
    return writeResults('pre-trigger', { machine: atStart, flags, ringBytes, live, results }, markdown);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

runIfMain(import.meta.url, 'pre-trigger', runPreTriggerBench, { root: false, build: true });

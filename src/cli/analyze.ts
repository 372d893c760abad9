import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { errorMessage } from '../lib/errors.js';
import { createProgressLine, formatBytes } from './output.js';

/** "1s", "500ms", "2m", "1h", or a plain number of seconds. */
export function parseBinSeconds(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|min|h)?$/.exec(text.trim());
  const value = m ? Number(m[1]) : Number.NaN;
  const unit = m?.[2] ?? 's';
  const seconds = value * (unit === 'ms' ? 0.001 : unit === 'm' || unit === 'min' ? 60 : unit === 'h' ? 3600 : 1);
  if (!(seconds >= 0.000001) || !Number.isFinite(seconds)) {
    throw new Error(`--bin takes a duration such as 1s, 500ms or 5m, not '${text}'`);
  }
  return seconds;
}

const collect = (value: string, previous: string[] = []) => [...previous, ...value.split(',').filter(Boolean)];

export function registerAnalyzeCommand(program: Command): void {
  program
    .command('analyze')
    .description(
      'Explain a capture file (pcap or pcapng): totals, conversations, top talkers, timeline, TCP health, names.',
    )
    .argument('<file>', 'capture file')
    .option('--json', 'print the report as JSON (schema: docs/analysis.md)')
    .option('--host-ip <ip>', "the captured host's address (repeatable; default: inferred from the traffic)", collect)
    .option('--baseline <file>', 'another capture, or a JSON report of one, to compare with')
    .option('--bin <duration>', 'timeline bin width, e.g. 1s or 100ms (default: 60–300 bins)')
    .action(async (file: string, o: { json?: boolean; hostIp?: string[]; baseline?: string; bin?: string }) => {
      try {
        const { analyzeCapture, renderReportText } = await import('../analysis/index.js');
        const size = (await stat(file)).size;
        const progress = process.stderr.isTTY ? createProgressLine(process.stderr) : undefined;
        let last = 0;
        const report = await analyzeCapture(file, {
          ...(o.hostIp ? { hostIps: o.hostIp } : {}),
          ...(o.baseline ? { baseline: o.baseline } : {}),
          ...(o.bin ? { binSeconds: parseBinSeconds(o.bin) } : {}),
          ...(progress
            ? {
                onProgress: (bytes: number) => {
                  const now = Date.now();
                  if (now - last < 200) return;
                  last = now;
                  const pct = size > 0 ? Math.min(100, (100 * bytes) / size) : 100;
                  progress.update(
                    `analyzing ${file}: ${formatBytes(bytes)} of ${formatBytes(size)} (${pct.toFixed(0)}%)`,
                  );
                },
              }
            : {}),
        });
        progress?.done();
        process.stdout.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : renderReportText(report));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const reason =
          code === 'ENOENT'
            ? 'no such file'
            : code === 'EACCES'
              ? 'permission denied'
              : code === 'EISDIR'
                ? 'is a directory'
                : errorMessage(err);
        process.stderr.write(`tripcap analyze: ${file}: ${reason}\n`);
        process.exitCode = 1;
      }
    });
}

import { readFile, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { type PacketCallback, readCaptureFile, readCaptureStream } from '../pcap/reader.js';
import type { RawPacket, ReadOptions, ReadResult, RecordRunCounter } from '../pcap/types.js';
import { Analyzer, type AnalyzerOptions, flowsHint } from './analyzer.js';
import type { Report } from './report.js';

export { Analyzer, type AnalyzerOptions, DEFAULT_MAX_FLOWS, DEFAULT_MAX_ROWS, flowsHint } from './analyzer.js';
export { formatBytes, formatDuration, formatRate, formatShare } from './explain.js';
export { type RenderOptions, renderReportText } from './render.js';
export * from './report.js';

export interface AnalyzeOptions extends AnalyzerOptions {
  /** Another capture file, or a report of one (a .json file), to compare with. */
  baseline?: string | Report;
  signal?: AbortSignal;
  /** Called now and then with the bytes of packet records read so far (an estimate for pcapng). */
  onProgress?: (bytesRead: number) => void;
}

const PROGRESS_EVERY_PACKETS = 65_536;

/**
 * What the reader gets: the analyzer's packet callback and record-run counter, reporting progress (`onProgress`, the
 * bytes of the packet records read so far) every PROGRESS_EVERY_PACKETS packets or so.
 */
function readerHooks(
  analyzer: Analyzer,
  options: AnalyzeOptions,
): { onPacket: PacketCallback; readOptions: ReadOptions } {
  const readOptions: ReadOptions = {
    allocateBuffer: analyzer.allocateBuffer,
    ...(options.signal ? { signal: options.signal } : {}),
  };
  const onProgress = options.onProgress;
  if (!onProgress)
    return { onPacket: analyzer.onPacket, readOptions: { ...readOptions, recordRuns: analyzer.recordRuns } };
  let next = PROGRESS_EVERY_PACKETS;
  const report = () => {
    if (analyzer.packets < next) return;
    next = analyzer.packets + PROGRESS_EVERY_PACKETS;
    onProgress(24 + 16 * analyzer.packets + analyzer.capturedBytes);
  };
  const runs = analyzer.recordRuns;
  const recordRuns: RecordRunCounter = {
    packets: 0,
    capturedBytes: 0,
    startClassic: (format) => runs.startClassic(format),
    startSection: (littleEndian, interfaces, maxBlockBytes) =>
      runs.startSection(littleEndian, interfaces, maxBlockBytes),
    countRecords(buf, pos, end, maxPackets) {
      const at = runs.countRecords(buf, pos, end, maxPackets);
      this.packets = runs.packets;
      this.capturedBytes = runs.capturedBytes;
      report();
      return at;
    },
    countBlocks(buf, pos, end, maxPackets) {
      const at = runs.countBlocks(buf, pos, end, maxPackets);
      this.packets = runs.packets;
      this.capturedBytes = runs.capturedBytes;
      report();
      return at;
    },
  };
  const onPacket = (p: RawPacket) => {
    analyzer.onPacket(p);
    report();
  };
  return { onPacket, readOptions: { ...readOptions, recordRuns } };
}

async function loadBaseline(
  baseline: string | Report | undefined,
  options: AnalyzeOptions,
): Promise<{ report?: Report; file?: string }> {
  if (baseline === undefined) return {};
  if (typeof baseline !== 'string') return { report: baseline };
  const head = await readFile(baseline).then((b) => b.subarray(0, 1).toString());
  if (head === '{') {
    const report = JSON.parse(await readFile(baseline, 'utf8')) as Report;
    if (!report?.summary || !report.endpoints || !report.traffic) throw new Error(`${baseline}: not a tripcap report`);
    return { report, file: baseline };
  }
  const { baseline: _ignored, onProgress: _p, ...rest } = options;
  return { report: await analyzeCapture(baseline, rest), file: baseline };
}

/** Analyzes a capture file (pcap or pcapng) in one streaming pass. */
export async function analyzeCapture(path: string, options: AnalyzeOptions = {}): Promise<Report> {
  const base = await loadBaseline(options.baseline, options);
  const size = (await stat(path)).size;
  const analyzer = new Analyzer({ expectedFlows: flowsHint(size), ...options });
  const { onPacket, readOptions } = readerHooks(analyzer, options);
  const read = await readCaptureFile(path, onPacket, readOptions);
  return analyzer.finish(read, {
    path,
    fileSize: size,
    ...(base.report ? { baseline: base.report } : {}),
    ...(base.file ? { baselineFile: base.file } : {}),
  });
}

/** Analyzes a capture arriving as a byte stream (a download, a pipe). */
export async function analyzeStream(
  stream: Readable | AsyncIterable<Uint8Array>,
  options: AnalyzeOptions = {},
): Promise<Report> {
  const base = await loadBaseline(options.baseline, options);
  const analyzer = new Analyzer(options);
  const { onPacket, readOptions } = readerHooks(analyzer, options);
  const read = await readCaptureStream(stream, onPacket, readOptions);
  return analyzer.finish(read, {
    ...(base.report ? { baseline: base.report } : {}),
    ...(base.file ? { baselineFile: base.file } : {}),
  });
}

/**
 * Analyzes several files of one capture (a continuous capture's ring, oldest first) as one capture: the packets of
 * each file in turn, one report. Each source is opened only when its turn comes.
 */
export async function analyzeStreams(
  sources: Array<() => Promise<Readable | AsyncIterable<Uint8Array>>>,
  options: Omit<AnalyzeOptions, 'baseline'> = {},
): Promise<Report> {
  const analyzer = new Analyzer(options);
  const { onPacket, readOptions } = readerHooks(analyzer, options);
  let merged: ReadResult | undefined;
  for (const open of sources) {
    const read = await readCaptureStream(await open(), onPacket, readOptions);
    merged = merged
      ? {
          ...merged,
          packets: merged.packets + read.packets,
          capturedBytes: merged.capturedBytes + read.capturedBytes,
          fileBytes: merged.fileBytes + read.fileBytes,
          warnings: [...merged.warnings, ...read.warnings],
          truncated: merged.truncated || read.truncated,
        }
      : read;
  }
  return analyzer.finish(merged);
}

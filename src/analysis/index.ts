import { readFile, stat } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { readCaptureFile, readCaptureStream } from '../pcap/reader.js';
import type { ReadOptions, ReadResult } from '../pcap/types.js';
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
  /** Called after each read of the capture with the bytes read so far (of all its files, for analyzeStreams). */
  onProgress?: (bytesRead: number) => void;
}

/** The reader's options for an analyzer: its buffers and record-run counter (the WebAssembly path), and progress. */
function readOptionsFor(analyzer: Analyzer, options: AnalyzeOptions, onProgress = options.onProgress): ReadOptions {
  return {
    allocateBuffer: analyzer.allocateBuffer,
    recordRuns: analyzer.recordRuns,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(onProgress ? { onProgress } : {}),
  };
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
  const read = await readCaptureFile(path, analyzer.onPacket, readOptionsFor(analyzer, options));
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
  const read = await readCaptureStream(stream, analyzer.onPacket, readOptionsFor(analyzer, options));
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
  let merged: ReadResult | undefined;
  for (const open of sources) {
    const before = merged?.fileBytes ?? 0;
    const onProgress = options.onProgress && ((bytes: number) => options.onProgress?.(before + bytes));
    const read = await readCaptureStream(
      await open(),
      analyzer.onPacket,
      readOptionsFor(analyzer, options, onProgress),
    );
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

/**
 * Runs every benchmark in sequence (`npm run bench`, which builds first): capture throughput, then create-to-Running
 * latency, then the capture-file reader, then capture analysis, then metric ingestion and alert evaluation, then
 * alert-to-Running latency of the capture-on-alert function, then the agent's CPU and RSS with the flight recorder
 * off and on, then the pre-trigger cut and join against tcpdump, editcap and mergecap. Each writes bench/results/<name>.json (raw figures, machine) and bench/results/<name>.md (tables).
 * Needs root. About 12 minutes on 2 cores. Benchmarks are not tests: they assert nothing about speed.
 */
import { runAlertsBench } from './alerts.js';
import { runAnalyzeBench } from './analyze.js';
import { runCaptureOnAlertBench } from './capture-on-alert.js';
import { runCaptureThroughput } from './capture-throughput.js';
import { runCreateLatency } from './create-latency.js';
import { runFlightRecorderBench } from './flight-recorder.js';
import { requireBuild, requireRoot, runCleanups } from './lib.js';
import { runPcapRead } from './pcap-read.js';
import { runPreTriggerBench } from './pre-trigger.js';

requireRoot('npm run bench');
requireBuild();

const benchmarks: Array<[string, () => Promise<{ mdFile: string; jsonFile: string }>]> = [
  ['capture-throughput', () => runCaptureThroughput()],
  ['create-latency', () => runCreateLatency()],
  ['pcap-read', () => runPcapRead([])],
  ['analyze', () => runAnalyzeBench()],
  ['alerts', () => runAlertsBench()],
  ['capture-on-alert', () => runCaptureOnAlertBench()],
  ['flight-recorder', () => runFlightRecorderBench()],
  ['pre-trigger', () => runPreTriggerBench()],
];

const written: string[] = [];
let failed = 0;
for (const [name, run] of benchmarks) {
  const started = Date.now();
  process.stdout.write(`\n== ${name}\n`);
  try {
    const { mdFile, jsonFile } = await run();
    written.push(mdFile, jsonFile);
    process.stdout.write(`== ${name}: done in ${((Date.now() - started) / 1000).toFixed(0)} s\n`);
  } catch (err) {
    failed++;
    process.stderr.write(`== ${name} failed: ${(err as Error).stack ?? err}\n`);
    await runCleanups();
  }
}
process.stdout.write(`\nResults:\n${written.map((f) => `  ${f}`).join('\n')}\n`);
if (failed > 0) {
  process.stderr.write(`${failed} benchmark(s) failed\n`);
  process.exit(1);
}

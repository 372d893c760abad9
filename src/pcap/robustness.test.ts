import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import type { RobustnessSummary } from './robustness.test-helper.js';

/**
 * Thousands of cut and mutated capture files (see robustness.test-helper.ts): every read ends with a result or a
 * CaptureFormatError, never another exception, never a hang, in bounded memory. The cases run in a worker thread
 * that this test terminates when one case makes no progress for WATCHDOG_MS, naming the case (the PRNG is seeded, so
 * it reproduces).
 */

const WATCHDOG_MS = 15_000;

interface Message {
  type: 'start' | 'fail' | 'end';
  id?: number;
  what?: string;
  error?: string;
  summary?: RobustnessSummary;
}

function runInWorker(): Promise<{ summary?: RobustnessSummary; failures: Message[]; hung?: string }> {
  // tsx's ESM API (its CommonJS one cannot register the loader in a worker) registers TypeScript loading there
  const require = createRequire(import.meta.url);
  const tsxPackage = require.resolve('tsx/package.json');
  const exportsMap = (require(tsxPackage) as { exports: Record<string, { import: { default: string } }> }).exports;
  const tsxApi = pathToFileURL(join(dirname(tsxPackage), exportsMap['./esm/api']?.import.default ?? '')).href;
  const helper = new URL('./robustness.test-helper.ts', import.meta.url).href;
  const code = `const { register } = await import(${JSON.stringify(tsxApi)}); register(); await import(${JSON.stringify(helper)});`;
  const worker = new Worker(code, {
    eval: true,
    workerData: { robustness: true },
    resourceLimits: { maxOldGenerationSizeMb: 512 },
  });
  return new Promise((resolve, reject) => {
    const failures: Message[] = [];
    let current = 'before the first case';
    let timer: NodeJS.Timeout;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        void worker.terminate();
        resolve({ failures, hung: current });
      }, WATCHDOG_MS);
    };
    arm();
    worker.on('message', (message: Message) => {
      arm();
      if (message.type === 'start') current = `case ${message.id}: ${message.what}`;
      else if (message.type === 'fail') failures.push(message);
      if (message.type === 'end' || (message.type === 'fail' && message.id === -1)) {
        clearTimeout(timer);
        void worker.terminate();
        resolve({ summary: message.summary, failures });
      }
    });
    worker.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`the robustness worker died during ${current}: ${err.stack ?? err}`));
    });
  });
}

describe('robustness', () => {
  it('reads thousands of cut and mutated files to a result or a CaptureFormatError, without hanging', async () => {
    const { summary, failures, hung } = await runInWorker();
    expect(hung, 'a read made no progress').toBeUndefined();
    expect(failures.slice(0, 5).map((f) => `${f.what}: ${f.error}`)).toEqual([]);
    expect(summary).toBeDefined();
    if (!summary) return;
    process.stdout.write(`robustness: ${JSON.stringify(summary)}\n`);
    expect(summary.cases).toBeGreaterThan(5000);
    expect(summary.results).toBeGreaterThan(1000);
    expect(summary.formatErrors).toBeGreaterThan(100);
    expect(summary.truncated).toBeGreaterThan(1000);
    expect(summary.maxArrayBuffersMiB).toBeLessThan(200);
    expect(summary.slowestMs).toBeLessThan(2000);
  }, 120_000);
});

import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { netnsSkipReason } from '../netns.js';
import { CLI } from './harness.js';

/*
 * `tripcap demo` as a user runs it: the built CLI makes its namespace hosts, server, agent, rule and burst, walks
 * through alert → capture → report → notification, and leaves nothing behind. Needs root; skipped with the reason
 * otherwise (and failing under CI=true).
 */

const execFileAsync = promisify(execFile);
const skipReason = netnsSkipReason();

function runCli(args: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    const timer = setTimeout(() => {
      // SIGINT: the demo cleans up after itself, as on Ctrl-C.
      child.kill('SIGINT');
      reject(new Error(`tripcap ${args.join(' ')} ran over ${timeoutMs} ms:\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.once('error', reject);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(skipReason !== undefined)(`tripcap demo${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  it('walks through rule → alert → capture → report → notification and cleans up', async () => {
    expect(existsSync(CLI), `${CLI} is missing: run 'npm run build' first`).toBe(true);
    const { code, stdout, stderr } = await runCli(['demo'], 150_000);
    expect(code, `stdout:\n${stdout}\nstderr:\n${stderr}`).toBe(0);

    const lines = stdout.split('\n').filter((line) => line !== '');
    // Every step line starts with its UTC time and the seconds since the start.
    const steps = lines.filter((line) => !line.startsWith(' '));
    for (const line of steps) expect(line).toMatch(/^\d{2}:\d{2}:\d{2}\.\d{3} {2}\+ *\d+\.\d+s {2}\S/);

    const expected = [
      /flight recorder on: /,
      /rule created: .*Network Out Total.*> 1,000,000 bytes/,
      /alert Fired: /,
      /capture Running: /,
      /capture Stopped \(AlertQuiet\): .*SHA-256 [0-9a-f]{64}$/,
      // The traffic began a window before the alert: the flight recorder's part holds it.
      /the file starts .* s before the capture .*: [\d,]+ packets from the flight recorder, the start of the traffic \(.*\) included/,
      /report ready/,
      /notification received by the webhook/,
    ];
    let at = -1;
    for (const pattern of expected) {
      const index = lines.findIndex((line, i) => i > at && pattern.test(line));
      expect(index, `${pattern} after line ${at} of:\n${stdout}`).toBeGreaterThan(at);
      at = index;
    }
    expect(stdout).toMatch(/JSON payload: .* matches the stored file/);

    // Nothing it made remains: its namespaces (named on the first line) and its temp folder.
    const ready = lines.find((line) => line.includes('hosts ready')) ?? '';
    const namespaces = [...ready.matchAll(/netns (\S+)/g)].map((m) => m[1] as string);
    expect(namespaces).toHaveLength(2);
    const { stdout: list } = await execFileAsync('ip', ['netns', 'list']);
    const left = list.split('\n').map((line) => line.split(' ')[0]);
    for (const ns of namespaces) expect(left).not.toContain(ns);
    const folder = /temp folder (\S+);?/.exec(ready)?.[1] ?? '';
    expect(folder).toMatch(/tripcap-demo-/);
    expect(existsSync(folder)).toBe(false);
  }, 160_000);
});

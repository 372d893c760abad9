import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dnsMessage, ethernet, ipv4, type PacketSpec, tcp, udp, writePcap } from '../analysis/frames.test-helper.js';
import { LinkType } from '../pcap/types.js';

/**
 * `tripcap analyze` as users run it: ./tripcap, which starts the command from the V8 startup snapshot that
 * `npm run build` makes (dist/analyze.blob), against dist/cli/main.js, which loads everything the usual way. The
 * same bytes out, the same errors, and the launcher's choice of the two (seen through a `node` on PATH that logs
 * its arguments).
 */

const ROOT = join(import.meta.dirname, '../..');
const LAUNCHER = join(ROOT, 'tripcap');
const MAIN = join(ROOT, 'dist/cli/main.js');
const BLOB = join(ROOT, 'dist/analyze.blob');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

describe('tripcap analyze from the startup snapshot', () => {
  let dir: string;
  let capture: string;
  let log: string;
  /** PATH with a `node` first that logs its arguments to `log`, then runs this Node (exits 14 when told to). */
  let loggingPath: string;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'tripcap-analyze-cli-'));
    capture = join(dir, 'mixed.pcap');
    const packets: PacketSpec[] = [];
    for (let i = 0; i < 200; i++) {
      const client = `10.0.${i % 7}.${1 + (i % 50)}`;
      const t = 1_790_000_000 + i / 100;
      const datagram =
        i % 3 === 0
          ? udp(40_000 + i, 53, dnsMessage(i, `n${i % 10}.example.test`, 1))
          : tcp({ sport: 40_000 + (i % 20), dport: 443, seq: i * 100, flags: 0x18 }, new Uint8Array(100));
      packets.push({
        t,
        data: ethernet(0x0800, ipv4({ src: client, dst: '192.0.2.9', protocol: i % 3 ? 6 : 17 }, datagram)),
      });
    }
    writePcap(capture, LinkType.ETHERNET, packets);
    log = join(dir, 'node.log');
    mkdirSync(join(dir, 'bin'));
    const shim = join(dir, 'bin', 'node');
    // while the file `refuse` is there, the shim refuses the snapshot as Node does one another version built (exit 14)
    writeFileSync(
      shim,
      [
        '#!/bin/sh',
        `echo "$*" >> '${log}'`,
        `if [ -e '${join(dir, 'refuse')}' ] && [ "$1" = --snapshot-blob ]; then echo 'refused' >&2; exit 14; fi`,
        `exec '${process.execPath}' "$@"`,
        '',
      ].join('\n'),
    );
    chmodSync(shim, 0o755);
    loggingPath = `${join(dir, 'bin')}:${process.env.PATH ?? ''}`;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('is built, and newer than the code it holds', () => {
    expect(statSync(BLOB).mtimeMs).toBeGreaterThan(statSync(MAIN).mtimeMs);
  });

  it('gives the report dist/cli/main.js gives, as JSON and as text, from the snapshot', async () => {
    for (const args of [
      ['analyze', '--json', capture],
      ['analyze', capture, '--bin', '100ms'],
    ]) {
      writeFileSync(log, '');
      const fromSnapshot = await run(LAUNCHER, args, { PATH: loggingPath });
      expect(readFileSync(log, 'utf8')).toBe(`--snapshot-blob ${BLOB} ${args.join(' ')}\n`);
      const loaded = await run(process.execPath, [MAIN, ...args]);
      expect(fromSnapshot.code).toBe(0);
      expect(fromSnapshot.stdout.length).toBeGreaterThan(500);
      expect(fromSnapshot.stdout).toBe(loaded.stdout);
      expect(fromSnapshot.stderr).toBe('');
    }
    const report = JSON.parse((await run(LAUNCHER, ['analyze', '--json', capture])).stdout);
    expect(report.summary.packets).toBe(200);
    expect(report.names.dns.length).toBe(10);
  });

  it('reports errors as dist/cli/main.js does', async () => {
    for (const args of [
      ['analyze', join(dir, 'missing.pcap')],
      ['analyze', '--bin', 'soon', capture],
      ['analyze', LAUNCHER],
      ['analyze'],
    ]) {
      const fromSnapshot = await run(LAUNCHER, args);
      const loaded = await run(process.execPath, [MAIN, ...args]);
      expect(fromSnapshot.code).toBe(1);
      expect(fromSnapshot.stderr.length).toBeGreaterThan(10);
      expect(fromSnapshot).toEqual(loaded);
    }
    expect((await run(LAUNCHER, ['analyze', join(dir, 'missing.pcap')])).stderr).toBe(
      `tripcap analyze: ${join(dir, 'missing.pcap')}: no such file\n`,
    );
    const help = await run(LAUNCHER, ['analyze', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Usage: tripcap analyze [options] <file>');
  });

  it('starts without the snapshot when NODE_OPTIONS is set, or when Node refuses it', async () => {
    writeFileSync(log, '');
    const withOptions = await run(LAUNCHER, ['analyze', '--json', capture], {
      PATH: loggingPath,
      NODE_OPTIONS: '--max-old-space-size=2048',
    });
    expect(withOptions.code).toBe(0);
    expect(readFileSync(log, 'utf8')).toBe(`${MAIN} analyze --json ${capture}\n`);

    writeFileSync(log, '');
    writeFileSync(join(dir, 'refuse'), '');
    const refused = await run(LAUNCHER, ['analyze', '--json', capture], { PATH: loggingPath });
    expect(readFileSync(log, 'utf8')).toBe(
      `--snapshot-blob ${BLOB} analyze --json ${capture}\n${MAIN} analyze --json ${capture}\n`,
    );
    expect(refused.code).toBe(0);
    expect(refused.stderr).toContain('tripcap: starting without');
    expect(refused.stdout).toBe(withOptions.stdout);
    expect(JSON.parse(refused.stdout).summary.packets).toBe(200);
  });

  it('leaves the other commands to dist/cli/main.js', async () => {
    writeFileSync(log, '');
    const version = await run(LAUNCHER, ['--version'], { PATH: loggingPath });
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect(readFileSync(log, 'utf8')).toBe(`${MAIN} --version\n`);
  });
});

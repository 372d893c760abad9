import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAgent } from '../../src/agent/agent.js';
import { createLogger } from '../../src/lib/logger.js';
import { loadServerConfig } from '../../src/server/config.js';
import { type RunningServer, startServer } from '../../src/server/server.js';
import { netnsSkipReason } from '../netns.js';
import { startWebhookReceiver } from '../webhook-receiver.js';

// The CLI as users run it: the built `dist/cli/main.js` (`npm test` builds first), against a real server and a real
// agent capturing on loopback with tcpdump. Needs root for tcpdump.
const CLI = join(import.meta.dirname, '../../dist/cli/main.js');
const skip = netnsSkipReason();

function tripcap(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (err, stdout, stderr) => {
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

async function sendUdp(port: number, count: number, size = 0) {
  const socket = createSocket('udp4');
  for (let i = 0; i < count; i++) {
    const payload = size ? Buffer.alloc(size, `datagram ${i} `) : `datagram ${i}`;
    await new Promise<void>((resolve, reject) =>
      socket.send(payload, port, '127.0.0.1', (e) => (e ? reject(e) : resolve())),
    );
  }
  socket.close();
}

describe.skipIf(skip)(`tripcap CLI against a live server${skip ? ` (skipped: ${skip})` : ''}`, () => {
  let dir: string;
  let server: RunningServer;
  const stopAgent = new AbortController();
  let agentDone: Promise<void>;
  let conn: string[];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tripcap-cli-'));
    server = await startServer(
      loadServerConfig({ dataDir: join(dir, 'data'), port: 0, host: '127.0.0.1', logLevel: 'warn' }, { env: {} }),
    );
    const agent = createAgent({
      serverUrl: server.url,
      enrollToken: readFileSync(server.adminTokenFile, 'utf8').trim(),
      name: 'cli-vm',
      resourceGroup: 'rg1',
      location: 'westeurope',
      stateDir: join(dir, 'agent'),
      captureRoot: join(dir, 'captures'),
      captureInterface: 'lo',
      ca: readFileSync(server.caFile ?? ''),
      logger: createLogger({ level: 'warn' }),
    });
    agentDone = agent.run(stopAgent.signal);
    // The CLI finds the admin token and the CA in the data folder, as on the server's own host.
    conn = ['--server', server.url, '--data-dir', join(dir, 'data')];
    const deadline = Date.now() + 10_000;
    while (!(await tripcap(['vm', 'list', ...conn])).stdout.includes('Connected')) {
      if (Date.now() > deadline) throw new Error('the agent did not register');
    }
  });

  afterAll(async () => {
    stopAgent.abort();
    await agentDone;
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function waitForStatus(name: string, status: string) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const s = await tripcap(['pc', 'show-status', ...conn, '-l', 'westeurope', '-n', name, '-o', 'json']);
      if (s.code === 0 && JSON.parse(s.stdout).packetCaptureStatus === status) return;
      if (Date.now() > deadline) throw new Error(`${name} never ${status}: ${s.stdout}${s.stderr}`);
    }
  }

  it('creates a capture, waits for it with a progress line, lists, shows, downloads and deletes it', async () => {
    const filters = JSON.stringify([{ protocol: 'UDP', localPort: '47001' }]);
    const create = tripcap([
      'pc',
      'create',
      ...conn,
      '--vm',
      'cli-vm',
      '-g',
      'rg1',
      '-n',
      'cli1',
      '--time-limit',
      '3',
      '--filters',
      filters,
      '--wait',
      '-o',
      'json',
    ]);
    // Traffic while the capture runs: 20 datagrams to the filtered port and 5 to another one.
    await waitForStatus('cli1', 'Running');
    await sendUdp(47001, 20);
    await sendUdp(47002, 5);
    const created = await create;
    expect(created.stderr).not.toMatch(/tripcap:/);
    expect(created.code).toBe(0);
    const status = JSON.parse(created.stdout) as {
      packetCaptureStatus: string;
      stopReason: string;
      files: Array<{ packets: number; sha256: string }>;
    };
    expect(status.packetCaptureStatus).toBe('Stopped');
    expect(status.stopReason).toBe('TimeExceeded');
    expect(status.files).toHaveLength(1);
    expect(status.files[0]?.packets).toBe(20);

    const list = await tripcap(['pc', 'list', ...conn, '-l', 'westeurope']);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/cli1\s+cli-vm\s+Stopped\s+TimeExceeded/);

    const show = await tripcap(['pc', 'show', ...conn, '-l', 'westeurope', '-n', 'cli1', '-o', 'json']);
    expect(JSON.parse(show.stdout).properties.filters).toEqual([{ protocol: 'UDP', localPort: '47001' }]);

    const target = join(dir, 'cli1.cap');
    const download = await tripcap(['pc', 'download', ...conn, '-l', 'westeurope', '-n', 'cli1', '-f', target]);
    expect(download.code).toBe(0);
    expect(download.stderr).toContain(`Saved ${target}`);
    expect(createHash('sha256').update(readFileSync(target)).digest('hex')).toBe(status.files[0]?.sha256);

    // The server analyses the stored file: the report says what the traffic was.
    const deadline = Date.now() + 15_000;
    let report = await tripcap(['pc', 'report', ...conn, '-l', 'westeurope', '-n', 'cli1', '-o', 'json']);
    while (JSON.parse(report.stdout).status !== 'Succeeded' && Date.now() < deadline) {
      report = await tripcap(['pc', 'report', ...conn, '-l', 'westeurope', '-n', 'cli1', '-o', 'json']);
    }
    const analysed = JSON.parse(report.stdout) as { status: string; report: { summary: { packets: number } } };
    expect(analysed.status).toBe('Succeeded');
    expect(analysed.report.summary.packets).toBe(20);
    const text = await tripcap(['pc', 'report', ...conn, '-l', 'westeurope', '-n', 'cli1']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/20 packets/);

    const del = await tripcap(['pc', 'delete', ...conn, '-l', 'westeurope', '-n', 'cli1']);
    expect(del.stderr).toContain("Deleted 'cli1'");
    expect((await tripcap(['pc', 'list', ...conn, '-l', 'westeurope'])).stdout).toContain('(none)');
  });

  it('runs a continuous capture as a ring of files, each stored as its own blob', async () => {
    const create = tripcap(
      [
        'pc',
        'create',
        ...conn,
        '--vm',
        'cli-vm',
        '-g',
        'rg1',
        '-n',
        'ring1',
        '--filters',
        '[{"protocol":"UDP","localPort":"47003"}]',
      ].concat([
        '--continuous',
        '--file-count',
        '3',
        '--file-size',
        '1000000',
        '--session-time-limit',
        '4',
        '--wait',
        '-o',
        'json',
      ]),
    );
    await waitForStatus('ring1', 'Running');
    // About 2.2 MB of matching traffic: the ring rolls over into a second and third file.
    for (let i = 0; i < 4; i++) await sendUdp(47003, 500, 1100);
    const result = await create;
    expect(result.code).toBe(0);
    const status = JSON.parse(result.stdout) as {
      stopReason: string;
      files: Array<{ seq: number; name: string; size: number; packets: number }>;
    };
    expect(status.stopReason).toBe('TimeExceeded');
    expect(status.files.length).toBeGreaterThanOrEqual(2);
    expect(status.files.map((f) => f.seq)).toEqual(status.files.map((_, i) => i + 1));
    for (const file of status.files) {
      expect(file.name).toMatch(new RegExp(`/packetcapture_\\d{2}_\\d{2}_\\d{2}_\\d{3}_${file.seq}\\.cap$`));
      expect(file.size).toBeLessThanOrEqual(1_000_000 + 1200);
    }
    expect(status.files.reduce((n, f) => n + f.packets, 0)).toBe(2000);
  });

  it('stops a running capture at once', async () => {
    const created = await tripcap([
      'pc',
      'create',
      ...conn,
      '--vm',
      'cli-vm',
      '-g',
      'rg1',
      '-n',
      'cli2',
      '--time-limit',
      '600',
      '-o',
      'json',
    ]);
    expect(created.code).toBe(0);
    await waitForStatus('cli2', 'Running');
    const started = Date.now();
    const stop = await tripcap(['pc', 'stop', ...conn, '-l', 'westeurope', '-n', 'cli2', '-o', 'json']);
    expect(stop.code).toBe(0);
    expect(JSON.parse(stop.stdout)).toMatchObject({ packetCaptureStatus: 'Stopped', stopReason: 'ManuallyStopped' });
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('creates, lists and revokes tokens; a reader token reads but may not create', async () => {
    const created = await tripcap(['token', 'create', ...conn, '--name', 'nightly-report', '--role', 'reader']);
    expect(created.code).toBe(0);
    const reader = created.stdout.trim();
    expect(reader).toMatch(/^tct_[0-9a-f]{16}_/);
    const id = /Created token ([0-9a-f]{16})/.exec(created.stderr)?.[1] ?? '';

    const asReader = ['--server', server.url, '--data-dir', join(dir, 'data'), '--token', reader];
    expect((await tripcap(['vm', 'list', ...asReader])).stdout).toContain('cli-vm');
    const refused = await tripcap(['pc', 'create', ...asReader, '--vm', 'cli-vm', '-g', 'rg1', '-n', 'by-reader']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^tripcap: The token 'nightly-report' \(role reader\) may not PUT/);

    const list = await tripcap(['token', 'list', ...conn]);
    expect(list.stdout).toMatch(new RegExp(`${id}\\s+nightly-report\\s+reader`));
    expect(list.stdout).not.toContain(reader);

    expect((await tripcap(['token', 'revoke', ...conn, id])).stderr).toContain(`Revoked ${id}`);
    expect((await tripcap(['vm', 'list', ...asReader])).stderr).toMatch(/^tripcap: Authentication failed/);
  });

  it('sets up an action group and a rule, tests the group live, and shows refusals in one line', async () => {
    const hook = await startWebhookReceiver();
    try {
      const url = `${hook.url}/alert`;
      const group = await tripcap([
        'action-group',
        'create',
        'oncall',
        '-g',
        'rg1',
        '--webhook',
        `hook=${url}`,
        ...conn,
      ]);
      expect(group.code, group.stderr).toBe(0);
      expect(group.stdout).toMatch(/oncall\s+oncall\s+true\s+webhook:hook/);

      const test = await tripcap(['action-group', 'test', 'oncall', '-g', 'rg1', '--timeout', '30', ...conn]);
      expect(test.code, test.stderr).toBe(0);
      expect(test.stdout).toMatch(/hook\s+Webhook\s+Completed/);
      expect(hook.posts).toHaveLength(1);
      expect(hook.posts[0]?.body.schemaId).toBe('azureMonitorCommonAlertSchema'); // the CLI's default
      const deliveries = await tripcap(['action-group', 'deliveries', 'oncall', '-g', 'rg1', ...conn]);
      expect(deliveries.stdout).toMatch(/webhook:hook .*Succeeded\s+1\s+Succeeded HTTP 200/);

      const rule = await tripcap([
        ...['alert', 'rule', 'create', 'burst', '-g', 'rg1', '--vm', 'cli-vm'],
        ...[
          '--condition',
          'total Network Out Total > 500000000',
          '--condition',
          'avg Percentage CPU > dynamic high 2 of 3',
        ],
        ...['--window-size', '5m', '--evaluation-frequency', '1m', '--action', 'oncall', ...conn],
      ]);
      expect(rule.code, rule.stderr).toBe(0);
      const list = await tripcap(['alert', 'rule', 'list', '-g', 'rg1', ...conn]);
      expect(list.stdout).toContain('total Network Out Total > 500000000 and avg Percentage CPU > dynamic high 2 of 3');
      const off = await tripcap(['alert', 'rule', 'update', 'burst', '-g', 'rg1', '--enabled', 'false', ...conn]);
      expect(off.stdout).toMatch(/burst\s+false/);

      const badWindow = await tripcap([
        'alert',
        'rule',
        'update',
        'burst',
        '-g',
        'rg1',
        '--window-size',
        '10s',
        ...conn,
      ]);
      expect(badWindow.code).toBe(1);
      expect(badWindow.stderr.trim().split('\n')).toHaveLength(1);
      expect(badWindow.stderr).toMatch(/^tripcap: windowSize PT10S is shorter than evaluationFrequency PT1M/);
      const badCondition = await tripcap([
        'alert',
        'rule',
        'create',
        'x',
        '-g',
        'rg1',
        '--vm',
        'cli-vm',
        '--condition',
        'cpu high',
        ...conn,
      ]);
      expect(badCondition.code).toBe(1);
      expect(badCondition.stderr).toMatch(/^tripcap: --condition 'cpu high' is not understood/);
    } finally {
      hook.close();
    }
  });

  it("turns a VM's flight recorder on and off; the agent runs the ring and reports it", async () => {
    const on = await tripcap([
      'vm',
      'recorder',
      'cli-vm',
      '-g',
      'rg1',
      '--enable',
      '--max-mb',
      '4',
      '--max-age',
      '60',
      ...conn,
    ]);
    expect(on.code, on.stderr).toBe(0);
    expect(on.stdout).toMatch(/true\s+4\s+60\s+128\s+not reported yet/);
    const status = async () =>
      JSON.parse((await tripcap(['vm', 'recorder', 'cli-vm', '-g', 'rg1', '-o', 'json', ...conn])).stdout).properties
        .status;
    const deadline = Date.now() + 20_000;
    let seen = await status();
    while (!(seen?.state === 'Running' && seen.files >= 1) && Date.now() < deadline) {
      await sendUdp(9, 20);
      await new Promise((resolve) => setTimeout(resolve, 500));
      seen = await status();
    }
    expect(seen).toMatchObject({ state: 'Running', stopReason: null });
    expect(seen.files).toBeGreaterThanOrEqual(1);
    const ring = join(dir, 'agent', 'flight-recorder');
    expect(readdirSync(ring).filter((f) => f.startsWith('ring.pcap')).length).toBeGreaterThanOrEqual(1);

    const off = await tripcap(['vm', 'recorder', 'cli-vm', '-g', 'rg1', '--disable', ...conn]);
    expect(off.code, off.stderr).toBe(0);
    const until = Date.now() + 20_000;
    seen = await status();
    while (seen?.stopReason !== 'Disabled' && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      seen = await status();
    }
    expect(seen).toMatchObject({ state: 'Stopped', stopReason: 'Disabled' });
  });

  it('answers bad input and missing credentials with one line and exit code 1', async () => {
    const bad = await tripcap([
      'pc',
      'create',
      ...conn,
      '--vm',
      'cli-vm',
      '-g',
      'rg1',
      '-n',
      'bad',
      '--filters',
      '[{"localPort":"1-2-3"}]',
    ]);
    expect(bad.code).toBe(1);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toMatch(/^tripcap: .*1-2-3.*/);

    const unknown = await tripcap(['pc', 'create', ...conn, '--vm', 'nope', '-g', 'rg1', '-n', 'x']);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/^tripcap: .*nope/);

    const noToken = await tripcap(['vm', 'list', '--server', server.url, '--data-dir', join(dir, 'nowhere')], {
      TRIPCAP_TOKEN: '',
    });
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(/^tripcap: No token/);

    const wrongToken = await tripcap([
      'vm',
      'list',
      ...conn,
      '--token',
      'tct_0000000000000000_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
    ]);
    expect(wrongToken.code).toBe(1);
    expect(wrongToken.stderr).toMatch(/^tripcap: Authentication failed/);
  });
});

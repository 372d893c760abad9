import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Agent, request } from 'undici';
import type { FileView } from '../../src/watcher/arm-shape.js';
import { createTwoHosts, linkToRoot, type NetnsHost, type RootLink, type TwoHosts } from '../netns.js';

/**
 * End-to-end harness: a tripcap server and agent as real processes (`node dist/cli/main.js …`, so `npm run build`
 * must have run: `npm test` builds first), a "VM" network namespace A running the agent, a peer namespace B joined to A
 * by a data veth (the captured link), and a control veth from the root namespace to A that the server listens on.
 *
 *   root ns: server (https://<link.rootIp>:<port>) + this test ── control veth ── A: agent, tcpdump ── data veth ── B
 *
 * Only addresses this harness created are used. destroy() kills every process it started (and any tcpdump the
 * agent left running), then deletes the veths and namespaces.
 */

const execFileAsync = promisify(execFile);
const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const CLI = join(REPO, 'dist/cli/main.js');

export const SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';
export const LOCATION = 'westeurope';
export const RESOURCE_GROUP = 'rg1';
export const VM_NAME = 'vm1';
export const VM_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines/${VM_NAME}`;
export const WATCHER_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/NetworkWatcherRG/providers/Microsoft.Network/networkWatchers/NetworkWatcher_${LOCATION}`;
/** Any storage account id: tripcap stores uploads in its own blob store (here the server's data folder). */
export const STORAGE_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Storage/storageAccounts/e2estore`;
const API = 'api-version=2024-05-01';

/** Server agent timeout and agent heartbeat, short so that a lost agent is noticed in seconds. */
export const AGENT_TIMEOUT_SECONDS = 6;
export const HEARTBEAT_SECONDS = 1;

// ---------------------------------------------------------------------------------------------------------------
// Polling

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

/**
 * Calls `probe` every `intervalMs` until it returns a value other than undefined, and returns it; throws after
 * `timeoutMs` with `what` and the last value or error seen. Errors thrown by `probe` are retried (a server being
 * restarted refuses connections for a moment) but reported if the deadline passes.
 */
/** Thrown by a poll probe to give up at once (e.g. the process being waited for has exited). */
export class GiveUp extends Error {}

export async function poll<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  { timeoutMs, intervalMs = 100 }: { timeoutMs: number; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
      last = undefined;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      last = err;
    }
    if (Date.now() >= deadline) {
      const detail = last instanceof Error ? `; last error: ${last.message}` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(intervalMs);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Processes

export interface Proc {
  name: string;
  pid: number;
  logFile: string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  alive(): boolean;
  /** Sends `signal` (default SIGKILL) and waits for the process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Spawns argv (no shell) with stdout and stderr appended to `logFile`. */
export function spawnProc(name: string, argv: string[], logFile: string): Proc {
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', fd, fd] });
  } finally {
    closeSync(fd);
  }
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolveExit) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolveExit({ code, signal });
    });
    child.once('error', () => {
      done = true;
      resolveExit({ code: null, signal: null });
    });
  });
  if (child.pid === undefined) throw new Error(`${name}: spawn ${argv[0]} failed`);
  const pid = child.pid;
  return {
    name,
    pid,
    logFile,
    exited,
    alive: () => !done,
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (done) return;
      try {
        process.kill(pid, signal);
      } catch {}
      await exited;
    },
  };
}

/** The last lines of a log, for failure messages. */
export function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Pids of live tcpdump processes whose command line names a path under `dir` (unique to this run): the ones the
 * agent started. An agent killed with SIGKILL leaves its tcpdump running.
 */
export function tcpdumpsUnder(dir: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (!basename(readlinkSync(`/proc/${entry}/exe`)).startsWith('tcpdump')) continue;
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (argv.some((arg) => arg.startsWith(`${dir}/`))) pids.push(Number(entry));
    } catch {}
  }
  return pids;
}

export { isAlive } from '../../src/agent/capture-engine.js';

// ---------------------------------------------------------------------------------------------------------------
// The HTTPS API

export interface ApiResponse<T> {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: T;
}

/** A file as queryStatus lists it. */
export type CaptureFile = FileView;

export interface CaptureStatus {
  name: string;
  id: string;
  captureStartTime?: string;
  captureEndTime?: string;
  packetCaptureStatus: 'NotStarted' | 'Running' | 'Stopped' | 'Error';
  stopReason?: string;
  packetCaptureError: string[];
  bytesCaptured: number;
  packetsCaptured: number;
  files: CaptureFile[];
}

export function createApi(baseUrl: string, token: string, ca: Buffer) {
  const dispatcher = new Agent({ connect: { ca }, keepAliveTimeout: 1000 });

  async function call<T = unknown>(method: string, path: string, body?: unknown): Promise<ApiResponse<T>> {
    const url = path.startsWith('https://') ? path : `${baseUrl}${path}`;
    const response = await request(url, {
      method: method as 'GET',
      dispatcher,
      headers: {
        authorization: `Bearer ${token}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    const text = await response.body.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = text;
    }
    return { status: response.statusCode, headers: response.headers, body: parsed as T };
  }

  async function bytes(path: string): Promise<ApiResponse<Buffer>> {
    const url = path.startsWith('https://') ? path : `${baseUrl}${path}`;
    const response = await request(url, { method: 'GET', dispatcher, headers: { authorization: `Bearer ${token}` } });
    const body = Buffer.from(await response.body.arrayBuffer());
    return { status: response.statusCode, headers: response.headers, body };
  }

  const capturePath = (name: string) => `${WATCHER_ID}/packetCaptures/${name}`;

  function expectStatus<T>(what: string, response: ApiResponse<T>, ...expected: number[]): ApiResponse<T> {
    if (!expected.includes(response.status)) {
      throw new Error(`${what}: HTTP ${response.status} ${JSON.stringify(response.body)}`);
    }
    return response;
  }

  /** PUT a capture on the VM; `properties` are merged over target and a storage account. */
  async function createCapture(name: string, properties: Record<string, unknown>) {
    return expectStatus(
      `create ${name}`,
      await call('PUT', `${capturePath(name)}?${API}`, {
        properties: { target: VM_ID, storageLocation: { storageId: STORAGE_ID }, ...properties },
      }),
      201,
    );
  }

  async function queryStatus(name: string): Promise<CaptureStatus> {
    return expectStatus(
      `queryStatus ${name}`,
      await call<CaptureStatus>('POST', `${capturePath(name)}/queryStatus?${API}`),
      200,
    ).body;
  }

  async function stopCapture(name: string) {
    return expectStatus(`stop ${name}`, await call('POST', `${capturePath(name)}/stop?${API}`), 200, 202);
  }

  /** Polls queryStatus until `accept` returns true; returns that status. */
  function waitForStatus(
    name: string,
    what: string,
    accept: (status: CaptureStatus) => boolean,
    timeoutMs: number,
  ): Promise<CaptureStatus> {
    let last: CaptureStatus | undefined;
    return poll(
      `${name}: ${what}`,
      async () => {
        last = await queryStatus(name);
        return accept(last) ? last : undefined;
      },
      { timeoutMs },
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last status: ${JSON.stringify(last)}`);
    });
  }

  /** Waits until tcpdump listens on the VM (Running); fails at once if the capture ends without running. */
  async function waitUntilRunning(name: string, timeoutMs = 15_000): Promise<CaptureStatus> {
    const status = await waitForStatus(name, 'Running', (s) => s.packetCaptureStatus !== 'NotStarted', timeoutMs);
    if (status.packetCaptureStatus !== 'Running') {
      throw new Error(`${name} ended without running: ${JSON.stringify(status)}`);
    }
    return status;
  }

  /** Waits until the capture is final (Stopped or Error) and has at least `files` files listed. */
  function waitUntilEnded(name: string, { files = 1, timeoutMs = 20_000 } = {}): Promise<CaptureStatus> {
    return waitForStatus(
      name,
      `Stopped or Error with ${files} file(s)`,
      (s) => (s.packetCaptureStatus === 'Stopped' || s.packetCaptureStatus === 'Error') && s.files.length >= files,
      timeoutMs,
    );
  }

  async function vm() {
    return expectStatus(
      'get vm',
      await call<{ properties: { agent: { status: string; lastSeen: string } | null } }>(
        'GET',
        `${VM_ID}?api-version=2024-07-01`,
      ),
      200,
    ).body;
  }

  return {
    call,
    bytes,
    capturePath,
    createCapture,
    queryStatus,
    stopCapture,
    waitForStatus,
    waitUntilRunning,
    waitUntilEnded,
    vm,
    close: () => dispatcher.close(),
  };
}

export type Api = ReturnType<typeof createApi>;

// ---------------------------------------------------------------------------------------------------------------
// Packets: tshark and capinfos are the oracles

export interface Packet {
  src: string;
  dst: string;
  /** IP protocol number (first IP header: an ICMP error's quoted header is ignored) */
  proto: number;
  srcPort?: number;
  dstPort?: number;
  capLen: number;
  len: number;
  tcpLen?: number;
  tcpSyn?: boolean;
  /** UDP payload as captured (cut by the snap length) */
  payload?: Buffer;
}

const FIELDS = [
  'ip.src',
  'ip.dst',
  'ip.proto',
  'udp.srcport',
  'udp.dstport',
  'tcp.srcport',
  'tcp.dstport',
  'frame.cap_len',
  'frame.len',
  'tcp.len',
  'tcp.flags.syn',
  'udp.payload',
];

/** Every packet of a capture file as tshark reads it (tshark fails on a file it cannot read). */
export async function readPackets(file: string): Promise<Packet[]> {
  const args = ['-r', file, '-n', '-T', 'fields', '-E', 'occurrence=f', ...FIELDS.flatMap((f) => ['-e', f])];
  const { stdout } = await execFileAsync('tshark', args, { maxBuffer: 256 << 20 });
  const num = (s: string | undefined) => (s ? Number(s) : undefined);
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [src, dst, proto, us, ud, ts, td, capLen, len, tcpLen, syn, payload] = line.split('\t');
      const udp = us !== '' && us !== undefined;
      const tcp = ts !== '' && ts !== undefined;
      return {
        src: src ?? '',
        dst: dst ?? '',
        proto: Number(proto || -1),
        ...(udp ? { srcPort: num(us), dstPort: num(ud) } : tcp ? { srcPort: num(ts), dstPort: num(td) } : {}),
        capLen: Number(capLen),
        len: Number(len),
        ...(tcp ? { tcpLen: Number(tcpLen || 0), tcpSyn: syn === '1' || syn === 'True' } : {}),
        ...(udp && payload ? { payload: Buffer.from(payload.replace(/:/g, ''), 'hex') } : {}),
      } satisfies Packet;
    });
}

/** The `seq=N;` numbers of the datagrams sent by sendUdp, in file order. */
export function sequenceNumbers(packets: Packet[]): number[] {
  return packets.flatMap((p) => {
    const m = p.payload ? /^seq=(\d+);/.exec(p.payload.toString('latin1')) : null;
    return m ? [Number(m[1])] : [];
  });
}

/** `capinfos -c -M`: the packet count; capinfos exits non-zero (and this rejects) on a damaged file. */
export async function capinfosPackets(file: string): Promise<number> {
  const { stdout } = await execFileAsync('capinfos', ['-c', '-M', file]);
  const match = /Number of packets:\s+(\d+)/.exec(stdout);
  if (!match) throw new Error(`capinfos said: ${stdout}`);
  return Number(match[1]);
}

export function sha256(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function range(from: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => from + i);
}

// ---------------------------------------------------------------------------------------------------------------
// Traffic beyond UDP (sendUdp is in ../netns.ts)

/** A TCP server in `host`'s namespace that reads everything and closes when the peer does. */
export async function startTcpSink(host: NetnsHost, ports: number[], logFile: string): Promise<Proc> {
  const script = `
    const net = require('node:net');
    const ports = process.argv.slice(1).map(Number);
    let listening = 0;
    for (const port of ports) {
      net.createServer((socket) => { socket.on('data', () => {}); socket.on('end', () => socket.end()); socket.on('error', () => {}); })
        .listen(port, '0.0.0.0', () => { if (++listening === ports.length) console.log('ready'); });
    }`;
  const proc = spawnProc(
    'tcp-sink',
    ['ip', 'netns', 'exec', host.ns, process.execPath, '-e', script, ...ports.map(String)],
    logFile,
  );
  await poll(
    'the TCP sink to listen',
    async () => {
      if (!proc.alive()) throw new GiveUp(`tcp sink exited: ${tail(logFile)}`);
      return readFileSync(logFile, 'utf8').includes('ready') ? true : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 20 },
  );
  return proc;
}

/** Connects from `from` to `to:port`, sends `bytes` bytes, closes, and resolves once the connection is closed. */
export async function sendTcp(from: NetnsHost, to: string, port: number, bytes: number): Promise<void> {
  const script = `
    const net = require('node:net');
    const [to, port, bytes] = [process.argv[1], +process.argv[2], +process.argv[3]];
    const socket = net.connect(port, to, () => socket.end(Buffer.alloc(bytes, 0x41)));
    socket.on('data', () => {});
    socket.on('close', (hadError) => process.exit(hadError ? 1 : 0));
    socket.on('error', (err) => { console.error(err.message); process.exit(1); });`;
  await execFileAsync(
    'ip',
    ['netns', 'exec', from.ns, process.execPath, '-e', script, to, String(port), String(bytes)],
    {
      timeout: 30_000,
    },
  );
}

export async function ping(from: NetnsHost, to: string, count: number): Promise<void> {
  await execFileAsync('ip', ['netns', 'exec', from.ns, 'ping', '-c', String(count), '-i', '0.2', '-W', '2', to], {
    timeout: 30_000,
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The environment

export interface E2eEnv {
  /** temp folder holding everything this run writes */
  dir: string;
  hosts: TwoHosts;
  /** the VM: the agent's namespace; `vm.ifname` is its data NIC (captured) */
  vm: NetnsHost;
  /** the VM's peer on the data link */
  peer: NetnsHost;
  control: RootLink;
  serverUrl: string;
  port: number;
  dataDir: string;
  captureRoot: string;
  stateDir: string;
  ca: Buffer;
  adminToken: string;
  api: Api;
  server: Proc | undefined;
  agent: Proc | undefined;
  /** Starts the server (same data folder and port each time) and waits until it answers. */
  startServer(): Promise<Proc>;
  /** Starts the agent (same state folder each time) and waits until the server sees it connected. */
  startAgent(): Promise<Proc>;
  /** Also tracks helper processes (traffic sinks) so that destroy() ends them. */
  track(proc: Proc): Proc;
  logs(): string;
  destroy(): Promise<void>;
}

async function freePort(host: string): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

export async function createE2eEnv(): Promise<E2eEnv> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run 'npm run build' first (npm test does)`);
  const dir = await mkdtemp(join(tmpdir(), 'tripcap-e2e-'));
  const procs: Proc[] = [];
  let hosts: TwoHosts | undefined;
  let control: RootLink | undefined;
  let api: Api | undefined;

  const destroy = async () => {
    await api?.close().catch(() => {});
    for (const proc of procs) await proc.kill('SIGKILL');
    for (let round = 0; round < 3; round++) {
      const leftovers = tcpdumpsUnder(dir);
      if (leftovers.length === 0) break;
      for (const pid of leftovers) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      await sleep(100);
    }
    await control?.destroy();
    await hosts?.destroy();
    if (process.env.TRIPCAP_E2E_KEEP !== '1') await rm(dir, { recursive: true, force: true });
  };

  try {
    hosts = await createTwoHosts();
    control = await linkToRoot(hosts.a.ns);
    const dataDir = join(dir, 'server-data');
    const captureRoot = join(dir, 'captures');
    const stateDir = join(dir, 'agent-state');
    await mkdir(captureRoot, { recursive: true });
    const certFile = join(dir, 'server-cert.pem');
    const keyFile = join(dir, 'server-key.pem');
    // The server's own self-signed certificate names only localhost and the host name: make one for the address
    // the agent reaches it at (argv, no shell).
    await execFileAsync('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-days',
      '2',
      '-keyout',
      keyFile,
      '-out',
      certFile,
      '-subj',
      '/CN=tripcap-e2e',
      '-addext',
      `subjectAltName=IP:${control.rootIp}`,
    ]);
    const ca = await readFile(certFile);
    const configFile = join(dir, 'server-config.json');
    await writeFile(configFile, JSON.stringify({ agentTimeoutSeconds: AGENT_TIMEOUT_SECONDS, logLevel: 'debug' }));
    const port = await freePort(control.rootIp);
    const serverUrl = `https://${control.rootIp}:${port}`;
    const serverLog = join(dir, 'server.log');
    const agentLog = join(dir, 'agent.log');
    const rootLink = control;
    const twoHosts = hosts;

    const env: E2eEnv = {
      dir,
      hosts,
      vm: hosts.a,
      peer: hosts.b,
      control,
      serverUrl,
      port,
      dataDir,
      captureRoot,
      stateDir,
      ca,
      adminToken: '',
      api: undefined as unknown as Api,
      server: undefined,
      agent: undefined,
      track(proc) {
        procs.push(proc);
        return proc;
      },
      logs: () =>
        `--- server log (${serverLog}) ---\n${tail(serverLog)}\n--- agent log (${agentLog}) ---\n${tail(agentLog)}`,
      async startServer() {
        const proc = env.track(
          spawnProc(
            'server',
            [
              process.execPath,
              CLI,
              'server',
              ...['--data-dir', dataDir, '--host', rootLink.rootIp, '--port', String(port)],
              ...['--tls-cert', certFile, '--tls-key', keyFile, '--config', configFile],
            ],
            serverLog,
          ),
        );
        env.server = proc;
        const probe = new Agent({ connect: { ca } });
        try {
          await poll(
            'the server to answer /healthz',
            async () => {
              if (!proc.alive()) throw new GiveUp(`the server exited:\n${tail(serverLog)}`);
              const response = await request(`${serverUrl}/healthz`, { dispatcher: probe });
              await response.body.text();
              return response.statusCode === 200 ? true : undefined;
            },
            { timeoutMs: 20_000, intervalMs: 100 },
          );
        } finally {
          await probe.close();
        }
        return proc;
      },
      async startAgent() {
        const startedAt = Date.now();
        const proc = env.track(
          spawnProc(
            'agent',
            [
              ...['ip', 'netns', 'exec', twoHosts.a.ns, process.execPath, CLI, 'agent'],
              ...['--server', serverUrl, '--token', env.adminToken, '--ca', certFile],
              ...['--name', VM_NAME, '--resource-group', RESOURCE_GROUP, '--location', LOCATION],
              ...['--state-dir', stateDir, '--capture-root', captureRoot, '--interface', twoHosts.a.ifname],
              ...['--heartbeat-seconds', String(HEARTBEAT_SECONDS)],
            ],
            agentLog,
          ),
        );
        env.agent = proc;
        // Connected, and heard from since this start (a restarted agent keeps its VM and credential).
        await poll(
          'the agent to connect',
          async () => {
            if (!proc.alive()) throw new GiveUp(`the agent exited:\n${tail(agentLog)}`);
            const response = await env.api.call<{ properties: { agent: { status: string; lastSeen: string } | null } }>(
              'GET',
              `${VM_ID}?api-version=2024-07-01`,
            );
            const agent = response.status === 200 ? response.body.properties.agent : null;
            return agent?.status === 'Connected' && Date.parse(agent.lastSeen) >= startedAt - 50 ? true : undefined;
          },
          { timeoutMs: 20_000, intervalMs: 100 },
        );
        return proc;
      },
      destroy,
    };

    await env.startServer();
    env.adminToken = readFileSync(join(dataDir, 'admin.token'), 'utf8').trim();
    api = createApi(serverUrl, env.adminToken, ca);
    env.api = api;
    await env.startAgent();
    return env;
  } catch (err) {
    await destroy();
    throw err;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Alert → capture wiring, as Azure's tutorial sets it up

const INSIGHTS = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Insights`;

/**
 * A function key, an action group `capture` whose Azure Function receiver calls this server's capture-on-alert
 * function with it, and a one-criterion metric alert rule on the VM's `Network Out Total` that uses the group.
 */
export async function alertToCapture(
  env: Pick<E2eEnv, 'api' | 'serverUrl'>,
  rule: { name: string; windowSize: string; evaluationFrequency: string; timeAggregation: string; threshold: number },
): Promise<void> {
  const key = await env.api.call<{ token: string }>('POST', '/tripcap/v1/tokens', {
    name: 'action-group',
    role: 'function',
  });
  if (key.status !== 201) throw new Error(`function key: HTTP ${key.status} ${JSON.stringify(key.body)}`);
  const group = await env.api.call<{ id: string }>('PUT', `${INSIGHTS}/actionGroups/capture?api-version=2023-01-01`, {
    location: 'Global',
    properties: {
      groupShortName: 'capture',
      azureFunctionReceivers: [
        {
          name: 'capture-on-alert',
          functionAppResourceId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Web/sites/tripcap`,
          functionName: 'capture-on-alert',
          httpTriggerUrl: `${env.serverUrl}/api/capture-on-alert?code=${key.body.token}`,
          useCommonAlertSchema: true,
        },
      ],
    },
  });
  if (group.status !== 201) throw new Error(`action group: HTTP ${group.status} ${JSON.stringify(group.body)}`);
  const created = await env.api.call('PUT', `${INSIGHTS}/metricAlerts/${rule.name}?api-version=2018-03-01`, {
    location: 'global',
    properties: {
      severity: 2,
      scopes: [VM_ID],
      evaluationFrequency: rule.evaluationFrequency,
      windowSize: rule.windowSize,
      criteria: {
        'odata.type': 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria',
        allOf: [
          {
            name: 'out',
            metricName: 'Network Out Total',
            timeAggregation: rule.timeAggregation,
            operator: 'GreaterThan',
            threshold: rule.threshold,
            criterionType: 'StaticThresholdCriterion',
          },
        ],
      },
      actions: [{ actionGroupId: group.body.id }],
    },
  });
  if (created.status !== 201) throw new Error(`rule: HTTP ${created.status} ${JSON.stringify(created.body)}`);
}

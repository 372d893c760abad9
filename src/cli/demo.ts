import { execFile, spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { basename, delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { destination } from 'pino';
import type { Report } from '../analysis/report.js';
import { errorMessage } from '../lib/errors.js';
import { createLogger } from '../lib/logger.js';
import { createTwoHosts, linkToRoot, type RootLink, sendUdp, type TwoHosts } from '../lib/netns.js';
import { sleep } from '../lib/time.js';
import type { MetricsResponse } from '../monitor/metrics-query.js';
import { loadServerConfig } from '../server/config.js';
import { type RunningServer, startServer } from '../server/server.js';
import { type ApiClient, createApiClient, resolveConnection } from './api-client.js';
import { createProgressLine, formatBytes } from './output.js';

/*
 * `tripcap demo`: the whole workflow on one machine, in about a minute. Two network-namespace hosts (the VM and its
 * peer), a tripcap server in this process on a veth from the root namespace, the VM's agent inside its namespace, and
 * a small HTTP server standing in for the on-call channel. A PT10S metric alert rule on the VM's outbound traffic calls
 * the capture-on-alert function; a UDP stream from the VM to the peer fires it; the walk-through prints each step with
 * its time. Everything is removed at the end, also on Ctrl-C and on errors. Needs root (namespaces, tcpdump).
 */

const execFileAsync = promisify(execFile);
const CLI = fileURLToPath(new URL('./main.js', import.meta.url));

const SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';
const RESOURCE_GROUP = 'demo';
const LOCATION = 'local';
const VM_NAME = 'demo-vm';
const VM_ID = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Compute/virtualMachines/${VM_NAME}`;
const INSIGHTS = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Insights`;
const RULE = 'demo-outbound-traffic';
const GROUP = 'demo-capture';
const THRESHOLD = 1_000_000;
const WINDOW_MS = 10_000;
/** The server's default alertEvaluationDelaySeconds (7 s), plus a margin: a window is printed as it is evaluated. */
const EVALUATION_DELAY_MS = 7_500;
const CAPTURE_SECONDS = 10;
/** About 1 MB/s for about 40 s: 1000-byte datagrams a millisecond apart. */
const DATAGRAMS = 40_000;
const DATAGRAM_BYTES = 1000;
const UDP_PORT = 9;

/** The tools the demo runs, and the Debian package of each. */
const TOOLS: Array<[string, string]> = [
  ['ip', 'iproute2'],
  ['tcpdump', 'tcpdump'],
  ['openssl', 'openssl'],
  ['ping', 'iputils-ping'],
];

export interface DemoOptions {
  /** Keep the temp folder (server data with the .cap file, logs) and say where it is. */
  keep?: boolean;
}

class Interrupted extends Error {}

function onPath(command: string): boolean {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {}
  }
  return false;
}

/** Throws a one-line error when the demo cannot run here: not root, or a tool missing. */
export function checkDemoPrerequisites(): void {
  if (process.getuid?.() !== 0) {
    throw new Error(
      'the demo needs root (it creates network namespaces and runs tcpdump): run it as root, e.g. with sudo.',
    );
  }
  for (const [command, pkg] of TOOLS) {
    if (!onPath(command)) {
      throw new Error(`the demo needs '${command}', which is not on PATH: install the Debian package ${pkg}.`);
    }
  }
}

const hhmmss = (ms: number) => new Date(ms).toISOString().slice(11, 19);
const num = (n: number) => n.toLocaleString('en-US');
const mb = (bytes: number) => `${(bytes / 1_000_000).toFixed(2)} MB`;

function tail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

interface CaptureStatus {
  name: string;
  packetCaptureStatus: 'NotStarted' | 'Running' | 'Stopped' | 'Error';
  stopReason?: string;
  packetCaptureError: string[];
  captureStartTime?: string;
  captureEndTime?: string;
  preTrigger?: {
    requestedSeconds: number;
    coveredFrom: string | null;
    coveredSeconds: number;
    packets: number;
    message?: string;
  };
  files: Array<{ name: string; size: number; packets: number; kernelDrops: number; sha256: string }>;
}

interface AlertView {
  id: string;
  name: string;
  properties: {
    essentials: { monitorCondition: string; targetResourceName: string; startDateTime: string };
    context: {
      windowStartTime: string;
      windowEndTime: string;
      criteria: Array<{ metricName: string; metricValue: number | null; threshold: number; operator: string }>;
    };
  };
}

interface Job {
  id: string;
  status: string;
  reason: string | null;
  message: string | null;
  captureName: string | null;
  /** Why the capture ended, as the function tells it (AlertQuiet, Resolved, MaxDuration, …). */
  stopReason: string | null;
}

interface JsonNotification {
  alert: { ruleName: string; condition: string };
  capture: { name: string; status: string; stopReason?: string; files: Array<{ sha256: string; size: number }> };
  findings: string[];
}

/** Runs the demo; resolves with the exit code (0, or 130 after Ctrl-C). Throws a one-line error on failure. */
export async function runDemo(options: DemoOptions = {}): Promise<number> {
  checkDemoPrerequisites();
  const t0 = Date.now();
  const progress = process.stderr.isTTY ? createProgressLine(process.stderr) : undefined;

  function say(text: string, more: string[] = []) {
    progress?.done();
    const now = Date.now();
    const prefix = `${new Date(now).toISOString().slice(11, 23)}  +${((now - t0) / 1000).toFixed(1).padStart(5)}s  `;
    const lines = [`${prefix}${text}`, ...more.map((line) => `${' '.repeat(prefix.length)}${line}`)];
    process.stdout.write(`${lines.join('\n')}\n`);
  }

  // Ctrl-C (or SIGTERM) ends the walk-through and cleans up; a second one leaves at once.
  const interrupt = new AbortController();
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) process.exit(130);
    progress?.done();
    process.stderr.write('Interrupted: cleaning up (Ctrl-C again to leave at once)…\n');
    interrupt.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const check = () => {
    if (interrupt.signal.aborted) throw new Interrupted('interrupted');
  };

  const dir = await mkdtemp(join(tmpdir(), 'tripcap-demo-'));
  const dataDir = join(dir, 'server-data');
  const serverLog = join(dir, 'server.log');
  const agentLog = join(dir, 'agent.log');
  let hosts: TwoHosts | undefined;
  let link: RootLink | undefined;
  let receiver: Server | undefined;
  let server: RunningServer | undefined;
  let api: ApiClient | undefined;
  let agent: { pid: number; exited: Promise<void>; alive: () => boolean } | undefined;
  const traffic = new AbortController();
  let trafficDone: Promise<void> | undefined;
  let trafficEnded = false;
  let trafficError: unknown;

  /** Polls `probe` until it returns a value, showing a live line; Ctrl-C, a dead agent or the deadline end it. */
  async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
    const started = Date.now();
    let last: unknown;
    for (;;) {
      check();
      if (agent && !agent.alive()) throw new Error('the agent exited (its log is shown above)');
      if (trafficError) throw new Error(`the UDP sender failed: ${errorMessage(trafficError)}`);
      try {
        const value = await probe();
        if (value !== undefined) return value;
        last = undefined;
      } catch (err) {
        if (err instanceof Interrupted) throw err;
        last = err;
      }
      const waited = Date.now() - started;
      if (waited > timeoutMs) {
        throw new Error(
          `timed out after ${Math.round(timeoutMs / 1000)} s waiting for ${what}${last ? `: ${errorMessage(last)}` : ''}`,
        );
      }
      progress?.update(`  … waiting for ${what} (${Math.floor(waited / 1000)} s)`);
      await sleep(500, interrupt.signal);
    }
  }

  async function cleanup() {
    traffic.abort();
    await trafficDone;
    if (agent?.alive()) {
      // SIGTERM: the agent stops its captures and leaves; SIGKILL if it takes too long.
      try {
        process.kill(agent.pid, 'SIGTERM');
      } catch {}
      await Promise.race([agent.exited, sleep(5_000)]);
      if (agent.alive()) {
        try {
          process.kill(agent.pid, 'SIGKILL');
        } catch {}
        await agent.exited;
      }
    }
    // Anything still running in the namespaces (a tcpdump the agent left) would keep them alive once unnamed.
    for (const ns of hosts ? [hosts.a.ns, hosts.b.ns] : []) {
      try {
        const { stdout } = await execFileAsync('ip', ['netns', 'pids', ns]);
        for (const pid of stdout.split(/\s+/).filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {}
        }
      } catch {}
    }
    await api?.close().catch(() => {});
    await server?.close().catch(() => {});
    if (receiver) {
      receiver.closeAllConnections();
      await new Promise<void>((resolve) => receiver?.close(() => resolve()));
    }
    await link?.destroy();
    await hosts?.destroy();
    if (!options.keep) await rm(dir, { recursive: true, force: true });
  }

  let code = 0;
  let failure: unknown;
  try {
    // 1. Two hosts and a link from the root namespace to the VM, where the server listens.
    hosts = await createTwoHosts();
    check();
    link = await linkToRoot(hosts.a.ns);
    check();
    const vm = hosts.a;
    const peer = hosts.b;
    say(
      `hosts ready: ${VM_NAME} = netns ${vm.ns} (${vm.ip} on ${vm.ifname}), peer = netns ${peer.ns} (${peer.ip}); ` +
        `control link ${link.rootIp} (root) ↔ ${link.ip} (${VM_NAME}); temp folder ${dir}`,
    );

    // 2. The on-call channel: a webhook receiver that takes the function's notifications.
    const notifications: { json?: JsonNotification; slack?: { text: string } } = {};
    receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        try {
          const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
          if (req.url === '/json') notifications.json = body as JsonNotification;
          if (req.url === '/slack') notifications.slack = body as { text: string };
          res.writeHead(200).end();
        } catch {
          res.writeHead(400).end();
        }
      });
    });
    const webhookReceiver = receiver;
    await new Promise<void>((resolve) => webhookReceiver.listen(0, '127.0.0.1', resolve));
    const hook = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

    // 3. The server, in this process. The function reads its settings from the environment, as an Azure Function.
    for (const name of Object.keys(process.env)) {
      if (/^TRIPCAP_(CAPTURE|NOTIFY)_/.test(name)) delete process.env[name];
    }
    process.env.TRIPCAP_NOTIFY_WEBHOOKS = `json:${hook}/json,slack:${hook}/slack`;
    process.env.TRIPCAP_CAPTURE_TIME_LIMIT_SECONDS = String(CAPTURE_SECONDS);
    process.env.TRIPCAP_CAPTURE_POLL_SECONDS = '1';
    const certFile = join(dir, 'server-cert.pem');
    const keyFile = join(dir, 'server-key.pem');
    // The server's own self-signed certificate names localhost: make one for the address the agent reaches it at.
    await execFileAsync('openssl', [
      ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'],
      ...['-keyout', keyFile, '-out', certFile, '-subj', '/CN=tripcap-demo'],
      ...['-addext', `subjectAltName=IP:${link.rootIp}`],
    ]);
    const config = loadServerConfig(
      { dataDir, host: link.rootIp, port: 0, tlsCert: certFile, tlsKey: keyFile, starterRule: false, logLevel: 'info' },
      { env: {} },
    );
    const logger = createLogger({ level: 'info', destination: destination({ dest: serverLog, sync: true }) });
    server = await startServer(config, logger);
    check();
    const token = (await readFile(join(dataDir, 'admin.token'), 'utf8')).trim();
    api = createApiClient(
      resolveConnection({ server: server.url, token, ca: certFile, subscription: SUBSCRIPTION, dataDir }),
    );
    const client = api;
    say(`server listening at ${server.url} (in this process; log ${serverLog})`);

    // 4. The VM's agent, inside its namespace: tcpdump must run there.
    const fd = openSync(agentLog, 'a');
    try {
      const child = spawn(
        'ip',
        [
          ...['netns', 'exec', vm.ns, process.execPath, CLI, 'agent'],
          // The enrollment token goes by environment, not argv: argv is visible to every user in ps.
          ...['--server', server.url, '--ca', certFile],
          ...['--name', VM_NAME, '--resource-group', RESOURCE_GROUP, '--location', LOCATION],
          ...['--state-dir', join(dir, 'agent-state'), '--capture-root', join(dir, 'captures')],
          ...['--interface', vm.ifname, '--heartbeat-seconds', '2'],
        ],
        { stdio: ['ignore', fd, fd], env: { ...process.env, TRIPCAP_TOKEN: token } },
      );
      let done = false;
      const exited = new Promise<void>((resolve) => {
        child.once('exit', () => {
          done = true;
          resolve();
        });
        child.once('error', () => {
          done = true;
          resolve();
        });
      });
      if (child.pid === undefined) throw new Error('could not start the agent');
      agent = { pid: child.pid, exited, alive: () => !done };
    } finally {
      closeSync(fd);
    }
    const vmView = await waitFor(
      'the agent to register',
      async () => {
        const { body } = await client.json<{
          properties: {
            agent: { status: string } | null;
            networkProfile: { networkInterfaces: Array<{ name: string; ipAddresses: string[] }> };
          };
        }>('GET', `${VM_ID}?api-version=2024-07-01`);
        return body.properties.agent?.status === 'Connected' ? body : undefined;
      },
      30_000,
    );
    const nics = vmView.properties.networkProfile.networkInterfaces
      .map((nic) => `${nic.name} ${nic.ipAddresses.join(' ')}`.trim())
      .join(', ');
    say(`agent registered: ${VM_NAME} (resource group ${RESOURCE_GROUP}, location ${LOCATION}; NICs ${nics})`);

    // The VM's flight recorder: an always-on ring, so that the capture also holds the traffic from before the alert.
    const recorder = `${VM_ID}/flightRecorder/default?api-version=2024-07-01`;
    await client.json('PUT', recorder, { properties: { enabled: true, maxBytes: 64_000_000 } });
    await waitFor(
      'the flight recorder to run',
      async () => {
        const { body } = await client.json<{ properties: { status: { state: string } | null } }>('GET', recorder);
        return body.properties.status?.state === 'Running' ? true : undefined;
      },
      30_000,
    );
    say(`flight recorder on: ${VM_NAME} keeps the first 128 bytes of every packet of the last 15 minutes (64 MB ring)`);

    // 5. A function key, an action group calling the function with it, and the rule.
    const key = await client.json<{ token: string }>('POST', '/tripcap/v1/tokens', {
      name: 'demo-action-group',
      role: 'function',
    });
    const group = await client.json<{ id: string }>('PUT', `${INSIGHTS}/actionGroups/${GROUP}?api-version=2023-01-01`, {
      location: 'Global',
      properties: {
        groupShortName: 'demo',
        enabled: true,
        azureFunctionReceivers: [
          {
            name: 'capture-on-alert',
            functionAppResourceId: `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}/providers/Microsoft.Web/sites/tripcap`,
            functionName: 'capture-on-alert',
            httpTriggerUrl: `${server.url}/api/capture-on-alert?code=${key.body.token}`,
            useCommonAlertSchema: true,
          },
        ],
      },
    });
    await client.json('PUT', `${INSIGHTS}/metricAlerts/${RULE}?api-version=2018-03-01`, {
      location: 'global',
      properties: {
        description: 'tripcap demo: more than 1 MB out of the VM in 10 seconds',
        severity: 2,
        enabled: true,
        scopes: [VM_ID],
        evaluationFrequency: 'PT10S',
        windowSize: 'PT10S',
        criteria: {
          'odata.type': 'Microsoft.Azure.Monitor.MultipleResourceMultipleMetricCriteria',
          allOf: [
            {
              name: 'out',
              metricName: 'Network Out Total',
              timeAggregation: 'Total',
              operator: 'GreaterThan',
              threshold: THRESHOLD,
              criterionType: 'StaticThresholdCriterion',
            },
          ],
        },
        actions: [{ actionGroupId: group.body.id }],
      },
    });
    const ruleCreated = Date.now();
    say(
      `rule created: ${RULE}: Total of Network Out Total over PT10S > ${num(THRESHOLD)} bytes, evaluated every PT10S; ` +
        `action group ${GROUP} → the capture-on-alert function (capture ${CAPTURE_SECONDS} s, notify the webhook)`,
    );
    check();

    // 6. The rule's windows as it evaluates them: one quiet window first, the baseline.
    let nextWindowEnd = Math.ceil(ruleCreated / WINDOW_MS) * WINDOW_MS;
    const printWindows = async (upTo: number) => {
      while (nextWindowEnd <= upTo) {
        const end = nextWindowEnd;
        const timespan = `${new Date(end - WINDOW_MS).toISOString()}/${new Date(end).toISOString()}`;
        const query = new URLSearchParams({
          'api-version': '2018-01-01',
          metricnames: 'Network Out Total',
          aggregation: 'Total',
          interval: 'PT10S',
          timespan,
        });
        const { body } = await client.json<MetricsResponse>(
          'GET',
          `${VM_ID}/providers/microsoft.insights/metrics?${query}`,
        );
        const total = (body.value[0]?.timeseries[0]?.data ?? []).reduce((sum, d) => sum + (d.total ?? 0), 0);
        say(
          `window ${hhmmss(end - WINDOW_MS)}–${hhmmss(end)}: Network Out Total ${mb(total)} ` +
            `(${total > THRESHOLD ? 'above' : 'below'} the ${mb(THRESHOLD)} threshold)`,
        );
        nextWindowEnd = end + WINDOW_MS;
      }
    };
    const firstWindowEnd = nextWindowEnd;
    await waitFor(
      'the first window to be evaluated (no traffic yet)',
      async () => {
        await printWindows(Date.now() - EVALUATION_DELAY_MS);
        return nextWindowEnd > firstWindowEnd ? true : undefined;
      },
      30_000,
    );

    // 7. The burst: about 1 MB/s of UDP from the VM to its peer.
    const trafficStarted = Date.now();
    trafficDone = sendUdp(vm, {
      to: peer.ip,
      port: UDP_PORT,
      count: DATAGRAMS,
      size: DATAGRAM_BYTES,
      intervalMs: 1,
      signal: traffic.signal,
    }).then(
      () => {
        trafficEnded = true;
      },
      (err: unknown) => {
        trafficEnded = true;
        if (!traffic.signal.aborted) trafficError = err;
      },
    );
    say(
      `traffic started: UDP ${vm.ip} → ${peer.ip}:${UDP_PORT}, ${num(DATAGRAMS)} datagrams of ${DATAGRAM_BYTES} bytes ` +
        `a millisecond apart (about 1 MB/s for 40 s)`,
    );

    // 8. The rule's windows as they are evaluated, until the alert fires.
    const alert = await waitFor(
      'the alert to fire',
      async () => {
        await printWindows(Date.now() - EVALUATION_DELAY_MS);
        const { body } = await client.json<{ value: AlertView[] }>(
          'GET',
          `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.AlertsManagement/alerts?api-version=2019-05-05-preview`,
        );
        return body.value.find((a) => a.name === RULE && a.properties.essentials.monitorCondition === 'Fired');
      },
      90_000,
    );
    await printWindows(Date.parse(alert.properties.context.windowEndTime));
    const criterion = alert.properties.context.criteria[0];
    say(
      `alert Fired: ${RULE} on ${alert.properties.essentials.targetResourceName}: ${criterion?.metricName} ` +
        `${num(criterion?.metricValue ?? 0)} bytes > threshold ${num(criterion?.threshold ?? THRESHOLD)} in window ` +
        `${hhmmss(Date.parse(alert.properties.context.windowStartTime))}–${hhmmss(Date.parse(alert.properties.context.windowEndTime))}`,
    );

    // 9. The function: its job, its capture, the capture's end, the report, the notification.
    const jobs = '/tripcap/v1/functions/capture-on-alert/jobs';
    const job = await waitFor(
      'the function to receive the alert',
      async () => {
        const { body } = await client.json<{ value: Job[] }>('GET', jobs);
        const found = body.value[0];
        if (found && ['Failed', 'Rejected', 'LimitReached'].includes(found.status)) {
          throw new Error(`the function's job ended ${found.status}: ${found.reason ?? ''} ${found.message ?? ''}`);
        }
        return found?.captureName ? found : undefined;
      },
      30_000,
    );
    say(`function received it: job ${job.id}, status ${job.status}, capture ${job.captureName}`);
    const { body: watchers } = await client.json<{ value: Array<{ id: string; location: string }> }>(
      'GET',
      `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Network/networkWatchers?api-version=2024-05-01`,
    );
    const watcher = watchers.value.find((w) => w.location === LOCATION);
    if (!watcher) throw new Error(`no network watcher in location ${LOCATION}`);
    const capturePath = `${watcher.id}/packetCaptures/${encodeURIComponent(job.captureName ?? '')}`;
    const queryStatus = async () =>
      (await client.json<CaptureStatus>('POST', `${capturePath}/queryStatus?api-version=2024-05-01`)).body;

    const running = await waitFor(
      'the capture to run',
      async () => {
        const status = await queryStatus();
        return status.packetCaptureStatus === 'NotStarted' ? undefined : status;
      },
      30_000,
    );
    if (running.packetCaptureStatus === 'Error') {
      throw new Error(`the capture failed: ${running.packetCaptureError.join(', ')}`);
    }
    const startTime = running.captureStartTime ? Date.parse(running.captureStartTime) : Date.now();
    say(
      `capture Running: ${running.name} on ${VM_NAME} since ${new Date(startTime).toISOString().slice(11, 23)} ` +
        `(tcpdump in netns ${vm.ns} on ${vm.ifname}; the function stops it ${CAPTURE_SECONDS} s after the alert's last firing)`,
    );
    const stopped = await waitFor(
      'the capture to end and its file to be stored',
      async () => {
        const status = await queryStatus();
        if (status.packetCaptureStatus === 'Error') {
          throw new Error(`the capture failed: ${status.packetCaptureError.join(', ')}`);
        }
        return status.packetCaptureStatus === 'Stopped' && status.files.length > 0 ? status : undefined;
      },
      CAPTURE_SECONDS * 1000 + 40_000,
    );
    const file = stopped.files[0];
    // The function writes its reason before it stops the capture (the capture itself says ManuallyStopped).
    const { body: after } = await client.json<{ value: Job[] }>('GET', jobs);
    const ended = after.value.find((j) => j.id === job.id)?.stopReason ?? stopped.stopReason ?? 'no reason';
    say(
      `capture Stopped (${ended}): ${basename(file?.name ?? '')}, ${formatBytes(file?.size ?? 0)}, ` +
        `${num(file?.packets ?? 0)} packets, ${num(file?.kernelDrops ?? 0)} dropped by the kernel, SHA-256 ${file?.sha256}`,
    );
    const before = stopped.preTrigger;
    if (before) {
      const onset =
        before.coveredFrom !== null && Date.parse(before.coveredFrom) <= trafficStarted
          ? `the start of the traffic (${new Date(trafficStarted).toISOString().slice(11, 23)}) included`
          : 'the start of the traffic is older than the ring';
      say(
        `the file starts ${before.coveredSeconds} s before the capture (${before.requestedSeconds} s asked: the alert's ` +
          `window and one more): ${num(before.packets)} packets from the flight recorder, ${onset}` +
          (before.message ? `. ${before.message}` : ''),
      );
    }

    const report = await waitFor(
      'the report',
      async () => {
        const { body } = await client.json<{ status: string; error?: string; report?: Report }>(
          'GET',
          `${capturePath}/report?api-version=2024-05-01`,
        );
        if (body.status === 'Failed' || body.status === 'Unavailable') {
          throw new Error(`the report is ${body.status}: ${body.error ?? ''}`);
        }
        return body.status === 'Succeeded' ? body.report : undefined;
      },
      60_000,
    );
    say(
      'report ready: what the traffic was',
      report.explanation.sentences.map((sentence) => `· ${sentence}`),
    );

    const notice = await waitFor(
      'the notification',
      async () => (notifications.json && notifications.slack ? notifications : undefined),
      60_000,
    );
    const sent = notice.json?.capture.files[0]?.sha256;
    say(`notification received by the webhook (the on-call channel): "${notice.slack?.text}"`, [
      `JSON payload: alert ${notice.json?.alert.ruleName} (${notice.json?.alert.condition}), capture ` +
        `${notice.json?.capture.name} ${notice.json?.capture.status} (${notice.json?.capture.stopReason ?? ''}), ` +
        `file SHA-256 ${sent === file?.sha256 ? 'matches the stored file' : `${sent} (differs from the stored file!)`}`,
      ...(notice.json?.findings[0] ? [`finding: ${notice.json.findings[0]}`] : []),
    ]);

    // 10. Stop the traffic, then show where things are when they are kept.
    const wasRunning = !trafficEnded;
    traffic.abort();
    await trafficDone;
    say(
      wasRunning
        ? `traffic stopped after ${((Date.now() - trafficStarted) / 1000).toFixed(0)} s`
        : `traffic had ended by itself (${num(DATAGRAMS)} datagrams sent)`,
    );
    if (options.keep) {
      const blobs = join(dataDir, 'blobs');
      const caps = (await readdir(blobs, { recursive: true }).catch(() => [] as string[]))
        .filter((name) => name.endsWith('.cap'))
        .map((name) => join(blobs, name));
      say(`kept ${dir}: server data, server.log, agent.log`, [
        ...caps.map((cap) => `capture file, to open with Wireshark: ${cap}`),
      ]);
    }
  } catch (err) {
    if (err instanceof Interrupted || interrupt.signal.aborted) {
      code = 130;
    } else {
      // The logs go with the temp folder: show their last lines first.
      progress?.done();
      process.stderr.write(
        `--- agent log (last lines) ---\n${tail(agentLog)}\n--- server log (last lines) ---\n${tail(serverLog)}\n`,
      );
      failure = err;
    }
  } finally {
    progress?.update('  … cleaning up');
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  say(
    `cleaned up: agent stopped, server closed, namespaces ${hosts?.a.ns ?? '-'} and ${hosts?.b.ns ?? '-'} and their ` +
      `links deleted, ${options.keep ? `temp folder kept: ${dir}` : `temp folder ${dir} removed`}`,
  );
  if (failure) throw new Error(`demo failed: ${errorMessage(failure)}`);
  return code;
}

#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { ServerConfigInput } from '../server/config.js';
import type { RunningServer } from '../server/server.js';
import { registerAlertCommands } from './alerts.js';
import { registerAnalyzeCommand } from './analyze.js';
import { registerFunctionCommands } from './functions.js';
import { type ConnectionOptions, withApi } from './lazy-api.js';
import { registerMetricsCommand } from './metrics.js';
import { print } from './output.js';
import { registerPacketCaptureCommands } from './packet-capture.js';
import { runProgram, tripcapProgram } from './program.js';

// Commands load what they need when they run: `tripcap analyze` must not pay for the server's modules at start-up.
const load = {
  agent: () => import('../agent/agent.js'),
  logger: () => import('../lib/logger.js'),
  config: () => import('../server/config.js'),
  server: () => import('../server/server.js'),
  demo: () => import('./demo.js'),
};

type Flags = Record<string, string | boolean | undefined>;

function serverOptions(cmd: Command): Command {
  return cmd
    .option('--data-dir <dir>', 'state folder: SQLite file, blobs, admin token, TLS (default ./data)')
    .option('--port <n>', 'HTTPS port (default 8443)')
    .option('--host <address>', 'address to listen on (default 0.0.0.0)')
    .option('--tls-cert <file>', 'PEM certificate (default: a generated self-signed one)')
    .option('--tls-key <file>', 'PEM private key of --tls-cert')
    .option('--insecure-http', 'serve plain HTTP (only behind a TLS-terminating proxy)')
    .option('--public-url <url>', 'the URL clients reach this server at, for links')
    .option('--config <file>', 'JSON config file (keys as in docs/operations.md)');
}

function configFrom(o: Flags): ServerConfigInput {
  return {
    dataDir: o.dataDir as string | undefined,
    port: o.port as string | undefined,
    host: o.host as string | undefined,
    tlsCert: o.tlsCert as string | undefined,
    tlsKey: o.tlsKey as string | undefined,
    insecureHttp: o.insecureHttp as boolean | undefined,
    publicUrl: o.publicUrl as string | undefined,
  } as ServerConfigInput;
}

function agentOptions(cmd: Command): Command {
  return cmd
    .option('--name <name>', 'VM name to register as (default: this host name)')
    .option('--resource-group <rg>', 'resource group of the VM', 'tripcap')
    .option('--location <location>', 'location (region) of the VM', 'local')
    .option('--subscription-id <id>', "subscription of the VM (default: the server's)")
    .option('--capture-root <dir>', 'where local capture files may be written', '/var/captures')
    .option('--interface <name>', "capture interface: a NIC name, 'any', or 'auto' (the one NIC, else any)", 'auto')
    .option('--heartbeat-seconds <n>', 'how often the agent tells the server it is alive (default 5)');
}

/** --heartbeat-seconds: a positive number of seconds, or undefined for the agent's default. */
function heartbeatSeconds(o: Flags): number | undefined {
  if (o.heartbeatSeconds === undefined) return undefined;
  const seconds = Number(o.heartbeatSeconds);
  if (!Number.isFinite(seconds) || seconds <= 0 || seconds > 3600) {
    throw new Error(
      `--heartbeat-seconds takes a number of seconds above 0 and at most 3600, not '${String(o.heartbeatSeconds)}'.`,
    );
  }
  return seconds;
}

function defaultVmName(): string {
  return (
    hostname()
      .replace(/[^A-Za-z0-9_.()-]/g, '-')
      .slice(0, 64) || 'host'
  );
}

/** Runs until SIGINT/SIGTERM, then lets `stop` finish its work. */
function untilSignal(): AbortSignal {
  const controller = new AbortController();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => controller.abort());
  return controller.signal;
}

function connectionOptions(cmd: Command): Command {
  return cmd
    .option('--server <url>', 'server URL (TRIPCAP_SERVER; default https://localhost:8443)')
    .option('--token <token>', 'API token (TRIPCAP_TOKEN; default: DATA_DIR/admin.token)')
    .option('--ca <file>', "PEM the server's certificate chains to (TRIPCAP_CA; default DATA_DIR/tls/cert.pem)")
    .option('--data-dir <dir>', 'the local server data folder to take defaults from', './data')
    .option('--subscription <id>', 'subscription id (TRIPCAP_SUBSCRIPTION_ID)');
}

const program = tripcapProgram();

serverOptions(program.command('server').description('Run the control plane.')).action(async (o: Flags) => {
  const { loadServerConfig } = await load.config();
  const { startServer } = await load.server();
  const config = loadServerConfig(configFrom(o), o.config ? { configFile: String(o.config) } : {});
  const server = await startServer(config);
  announce(server);
  await new Promise<void>((resolve) => untilSignal().addEventListener('abort', () => resolve()));
  await server.close();
});

agentOptions(
  program
    .command('agent')
    .description('Run the host agent: registers this host as a VM and runs its captures.')
    .requiredOption('--server <url>', 'server URL')
    .option('--token <token>', 'enrollment token (an admin token) for the first registration (TRIPCAP_TOKEN)')
    .option('--ca <file>', "PEM the server's certificate chains to")
    .option('--state-dir <dir>', "the agent's own state: credential, job records, spool", '/var/lib/tripcap-agent'),
).action(async (o: Flags) => {
  const { createLogger } = await load.logger();
  const { createAgent } = await load.agent();
  const logger = createLogger({ name: 'tripcap-agent' });
  const token = (o.token as string | undefined) ?? process.env.TRIPCAP_TOKEN;
  const agent = createAgent({
    serverUrl: String(o.server),
    ...(token ? { enrollToken: token } : {}),
    name: (o.name as string | undefined) ?? defaultVmName(),
    resourceGroup: String(o.resourceGroup),
    location: String(o.location),
    ...(o.subscriptionId ? { subscriptionId: String(o.subscriptionId) } : {}),
    stateDir: String(o.stateDir),
    captureRoot: String(o.captureRoot),
    captureInterface: String(o.interface),
    heartbeatSeconds: heartbeatSeconds(o),
    ...(o.ca ? { ca: readFileSync(String(o.ca)) } : {}),
    logger,
  });
  await agent.run(untilSignal());
});

agentOptions(
  serverOptions(program.command('start').description('Run the server and an agent for this host, in one process.')),
).action(async (o: Flags) => {
  const [{ loadServerConfig }, { startServer }, { createLogger }, { createAgent }] = await Promise.all([
    load.config(),
    load.server(),
    load.logger(),
    load.agent(),
  ]);
  const config = loadServerConfig(configFrom(o), o.config ? { configFile: String(o.config) } : {});
  const logger = createLogger({ level: config.logLevel });
  const server = await startServer(config, logger);
  announce(server);
  const signal = untilSignal();
  const vmName = (o.name as string | undefined) ?? defaultVmName();
  server
    .createStarterRule({ subscriptionId: config.subscriptionId, resourceGroup: String(o.resourceGroup), name: vmName })
    .catch((err) => logger.error({ err }, 'creating the starter alert rule failed'));
  const agent = createAgent({
    serverUrl: server.url,
    enrollToken: readFileSync(server.adminTokenFile, 'utf8').trim(),
    name: vmName,
    resourceGroup: String(o.resourceGroup),
    location: String(o.location),
    stateDir: join(config.dataDir, 'agent'),
    captureRoot: String(o.captureRoot),
    captureInterface: String(o.interface),
    heartbeatSeconds: heartbeatSeconds(o),
    ...(server.caFile ? { ca: readFileSync(server.caFile) } : {}),
    logger: logger.child({ part: 'agent' }),
  });
  await agent.run(signal);
  await server.close();
});

function announce(server: RunningServer) {
  const lines = [`tripcap server at ${server.url}`, `Web console: ${server.url}/ (sign in with a token)`];
  if (server.adminToken) {
    lines.push(`Admin token (shown once; also in ${server.adminTokenFile}, mode 0600):`, `  ${server.adminToken}`);
  } else {
    lines.push(`Admin token: in ${server.adminTokenFile}`);
  }
  lines.push(
    'Add a host:',
    `  tripcap agent --server ${server.url} --token "$(cat ${server.adminTokenFile})"${server.caFile ? ` --ca ${server.caFile}` : ''} --name NAME`,
  );
  process.stderr.write(`${lines.join('\n')}\n`);
}

const vm = program.command('vm').description('The VMs (hosts) that agents registered.');
connectionOptions(
  vm
    .command('list')
    .description('List VMs and their agents.')
    .option('-o, --output <format>', 'table or json', 'table'),
).action(async (o: Flags) => {
  return withApi(o as ConnectionOptions, async (api) => {
    const { body } = await api.json<{
      value: Array<{
        id: string;
        name: string;
        location: string;
        properties: { agent: { status: string; lastSeen: string } | null };
      }>;
    }>('GET', `/subscriptions/${api.subscription}/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01`);
    print(
      String(o.output),
      body.value,
      body.value.map((v) => ({
        Name: v.name,
        Location: v.location,
        Agent: v.properties.agent?.status ?? 'none',
        LastSeen: v.properties.agent?.lastSeen ?? '',
        Id: v.id,
      })),
    );
  });
});

connectionOptions(
  vm
    .command('recorder')
    .description("Show or set a VM's flight recorder: an always-on ring of recent traffic (headers only by default).")
    .argument('<vm>', 'VM name')
    .requiredOption('-g, --resource-group <rg>', 'resource group of the VM')
    .option('--enable', 'turn it on (with the options below, or their defaults)')
    .option('--disable', 'turn it off')
    .option('--max-mb <n>', 'size of the ring on disk, MB (default 256)')
    .option('--max-age <seconds>', 'drop packets older than this (default 900)')
    .option('--snaplen <bytes>', 'bytes kept of each packet (default 128: headers)')
    .option('--min-free-mb <n>', 'stop when the disk has less free space than this, MB (default 1000)')
    .option('-o, --output <format>', 'table or json', 'table'),
).action(async (name: string, o: Flags) => {
  return withApi(o as ConnectionOptions, async (api) => {
    const path = `/subscriptions/${api.subscription}/resourceGroups/${encodeURIComponent(String(o.resourceGroup))}/providers/Microsoft.Compute/virtualMachines/${encodeURIComponent(name)}/flightRecorder/default?api-version=2024-07-01`;
    if (o.enable && o.disable) throw new Error('Give --enable or --disable, not both.');
    const number = (flag: string, value: unknown, scale = 1) => {
      if (value === undefined) return undefined;
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${flag} takes a number, not '${String(value)}'.`);
      return Math.round(n * scale);
    };
    interface Recorder {
      properties: {
        enabled: boolean;
        maxBytes?: number;
        maxAgeSeconds?: number;
        snaplen?: number;
        status: {
          state: string;
          stopReason: string | null;
          bytesOnDisk: number;
          files: number;
          oldestPacketTime: string | null;
          message: string | null;
        } | null;
      };
    }
    let body: Recorder;
    if (o.enable || o.disable) {
      const properties = {
        enabled: Boolean(o.enable),
        maxBytes: number('--max-mb', o.maxMb, 1_000_000),
        maxAgeSeconds: number('--max-age', o.maxAge),
        snaplen: number('--snaplen', o.snaplen),
        minFreeBytes: number('--min-free-mb', o.minFreeMb, 1_000_000),
      };
      body = (await api.json<Recorder>('PUT', path, { properties })).body;
      process.stderr.write(
        `Flight recorder of ${name} ${o.enable ? 'enabled' : 'disabled'}: its agent applies it at its next heartbeat.\n`,
      );
    } else {
      body = (await api.json<Recorder>('GET', path)).body;
    }
    const p = body.properties;
    const s = p.status;
    print(String(o.output), body, [
      {
        Enabled: String(p.enabled),
        RingMB: p.maxBytes ? Math.round(p.maxBytes / 1e6) : '',
        MaxAge: p.maxAgeSeconds ?? '',
        Snaplen: p.snaplen ?? '',
        State: s ? `${s.state}${s.stopReason ? ` (${s.stopReason})` : ''}` : 'not reported yet',
        OnDiskMB: s ? (s.bytesOnDisk / 1e6).toFixed(1) : '',
        Files: s?.files ?? '',
        Since: s?.oldestPacketTime ?? '',
      },
    ]);
  });
});

const token = program.command('token').description('API tokens for people and scripts (admin only).');
connectionOptions(
  token
    .command('create')
    .description('Create a token; its secret is printed once.')
    .requiredOption('--name <name>', 'what the token is for')
    .requiredOption('--role <role>', 'reader, operator, contributor or admin'),
).action(async (o: Flags) => {
  return withApi(o as ConnectionOptions, async (api) => {
    const { body } = await api.json<{ id: string; token: string }>('POST', '/tripcap/v1/tokens', {
      name: o.name,
      role: o.role,
    });
    process.stderr.write(`Created token ${body.id} (${o.role}); its secret is shown only now:\n`);
    process.stdout.write(`${body.token}\n`);
  });
});
connectionOptions(
  token
    .command('list')
    .description('List tokens (never their secrets).')
    .option('-o, --output <format>', 'table or json', 'table'),
).action(async (o: Flags) => {
  return withApi(o as ConnectionOptions, async (api) => {
    const { body } = await api.json<{
      value: Array<{ id: string; name: string; role: string; createdTime: string; revokedTime: string | null }>;
    }>('GET', '/tripcap/v1/tokens');
    print(
      String(o.output),
      body.value,
      body.value.map((t) => ({
        Id: t.id,
        Name: t.name,
        Role: t.role,
        Created: t.createdTime,
        Revoked: t.revokedTime ?? '',
      })),
    );
  });
});
connectionOptions(
  token.command('revoke').description('Revoke a token at once.').argument('<id>', 'token id (tripcap token list)'),
).action(async (id: string, o: Flags) => {
  return withApi(o as ConnectionOptions, async (api) => {
    const { status } = await api.json('DELETE', `/tripcap/v1/tokens/${encodeURIComponent(id)}`);
    process.stderr.write(status === 204 ? `No active token ${id}.\n` : `Revoked ${id}.\n`);
  });
});

registerPacketCaptureCommands(program, connectionOptions);
registerMetricsCommand(program, connectionOptions);
registerAlertCommands(program, connectionOptions);
registerFunctionCommands(program, connectionOptions);
registerAnalyzeCommand(program);

program
  .command('demo')
  .description(
    'See the whole workflow in a minute on network-namespace hosts: rule, burst, alert, capture, report, notification (root).',
  )
  .option('--keep', 'keep the temp folder (server data with the .cap file, logs) and print where it is')
  .action(async (o: Flags) => {
    const { runDemo } = await load.demo();
    process.exit(await runDemo({ keep: o.keep === true }));
  });

runProgram(program);

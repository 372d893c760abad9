import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { type Command, Option } from 'commander';
import type { Report } from '../analysis/report.js';
import { sleep } from '../lib/time.js';
import type { PreTriggerReport } from '../watcher/agent-protocol.js';
import { type ApiClient, type ConnectionOptions, withApi } from './lazy-api.js';
import { createProgressLine, formatBytes, formatSeconds, print } from './output.js';

const API = 'api-version=2024-05-01';
const FINAL = ['Stopped', 'Error'];

interface Watcher {
  id: string;
  name: string;
  location: string;
}

interface CaptureStatus {
  name: string;
  packetCaptureStatus: string;
  stopReason?: string;
  packetCaptureError: string[];
  captureStartTime?: string;
  captureEndTime?: string;
  bytesCaptured: number;
  packetsCaptured: number;
  preTrigger?: PreTriggerReport;
  files: Array<{
    seq: number;
    name: string;
    size: number;
    packets: number;
    kernelDrops: number;
    sha256: string;
    downloadUrl: string | null;
  }>;
}

interface Capture {
  id: string;
  name: string;
  properties: { target: string; provisioningState: string; timeLimitInSeconds: number; totalBytesPerSession: number };
}

type Options = ConnectionOptions & Record<string, string | boolean | undefined>;

/** The watcher serving a location: as `az network watcher`, captures are addressed by location and name. */
async function watcherFor(api: ApiClient, location: string): Promise<Watcher> {
  const { body } = await api.json<{ value: Watcher[] }>(
    'GET',
    `/subscriptions/${api.subscription}/providers/Microsoft.Network/networkWatchers?${API}`,
  );
  const watcher = body.value.find((w) => w.location.toLowerCase() === location.toLowerCase());
  if (!watcher)
    throw new Error(`No network watcher in location '${location}': no agent has registered a VM there yet.`);
  return watcher;
}

const capturePath = (watcher: Watcher, name: string) => `${watcher.id}/packetCaptures/${encodeURIComponent(name)}`;

function vmId(subscription: string, resourceGroup: string | undefined, vm: string): string {
  if (vm.startsWith('/')) return vm;
  if (!resourceGroup) throw new Error("Give --resource-group with a VM name, or the VM's full resource id.");
  return `/subscriptions/${subscription}/resourceGroups/${resourceGroup}/providers/Microsoft.Compute/virtualMachines/${vm}`;
}

function int(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value)) throw new Error(`${flag} takes a whole number, not '${value}'.`);
  return Number(value);
}

function statusLine(status: CaptureStatus, capture: Capture): string {
  const started = status.captureStartTime ? Date.parse(status.captureStartTime) : Date.now();
  const elapsed = (Date.now() - started) / 1000;
  const limit = capture.properties.timeLimitInSeconds;
  return [
    status.packetCaptureStatus.padEnd(10),
    `${formatSeconds(status.packetCaptureStatus === 'NotStarted' ? 0 : elapsed)}/${formatSeconds(limit)}`,
    `${formatBytes(status.bytesCaptured)}/${formatBytes(capture.properties.totalBytesPerSession)}`,
    `${status.packetsCaptured.toLocaleString('en-US')} packets`,
  ].join('  ');
}

/** Polls until the capture ends, showing a live line: elapsed/limit, bytes/limit, packets. */
async function waitForEnd(api: ApiClient, path: string): Promise<CaptureStatus> {
  const { body: capture } = await api.json<Capture>('GET', `${path}?${API}`);
  const line = createProgressLine();
  for (;;) {
    const { body: status } = await api.json<CaptureStatus>('POST', `${path}/queryStatus?${API}`);
    if (
      FINAL.includes(status.packetCaptureStatus) &&
      (status.files.length > 0 || status.packetCaptureError.length > 0)
    ) {
      line.done();
      return status;
    }
    line.update(statusLine(status, capture));
    await sleep(1000);
  }
}

function statusRows(status: CaptureStatus) {
  const head = {
    Name: status.name,
    Status: status.packetCaptureStatus,
    StopReason: status.stopReason ?? '',
    Errors: status.packetCaptureError.join(',') || '',
    Started: status.captureStartTime ?? '',
    Packets: status.packetsCaptured,
    Bytes: status.bytesCaptured,
    ...(status.preTrigger ? { PreTrigger: preTriggerText(status.preTrigger) } : {}),
  };
  return [head];
}

/** "60 s of 60 s (1234 packets)", or what the ring could not give. */
function preTriggerText(p: PreTriggerReport): string {
  return `${p.coveredSeconds} s of ${p.requestedSeconds} s (${p.packets} packets)${p.message ? `: ${p.message}` : ''}`;
}

function fileRows(status: CaptureStatus) {
  return status.files.map((f) => ({
    File: f.seq,
    Size: formatBytes(f.size),
    Packets: f.packets,
    Drops: f.kernelDrops,
    SHA256: f.sha256,
    Name: f.name,
  }));
}

function printStatus(format: string, status: CaptureStatus) {
  print(format, status, statusRows(status));
  if (format !== 'json' && status.files.length > 0) print(format, status.files, fileRows(status));
}

export function registerPacketCaptureCommands(program: Command, connectionOptions: (cmd: Command) => Command) {
  const pc = program
    .command('packet-capture')
    .alias('pc')
    .description('Manage packet captures, as `az network watcher packet-capture`.');
  const output = () => new Option('-o, --output <format>', 'table or json').choices(['table', 'json']).default('table');

  connectionOptions(
    pc
      .command('create')
      .description('Start a packet capture on a VM.')
      .requiredOption('-n, --name <name>', 'name of the capture')
      .requiredOption('--vm <vm>', 'VM name (with --resource-group) or resource id')
      .option('-g, --resource-group <rg>', "the VM's resource group", 'tripcap')
      .option('--storage-account <id>', "storage account resource id (the server's blob store)")
      .option('--storage-path <url>', 'blob URL to store the capture at')
      .option('--file-path <path>', 'local file on the VM, under its capture root (e.g. /var/captures/x.cap)')
      .option('--capture-size <bytes>', 'bytes captured per packet (0 = whole packet)')
      .option('--capture-limit <bytes>', 'maximum bytes of the capture (default 1 GiB)')
      .option('--time-limit <seconds>', 'maximum duration (default and max 18000)')
      .option('--filters <json>', 'Azure filter list, e.g. \'[{"protocol":"TCP","remotePort":"443"}]\'')
      .option('--continuous', 'continuous capture: a ring of files')
      .option('--file-count <n>', 'files in the ring (continuous)')
      .option('--file-size <bytes>', 'size of each ring file (continuous)')
      .option('--session-time-limit <seconds>', 'session length (continuous)')
      .option('--pre-trigger <seconds>', "also the VM's flight-recorder traffic of these seconds before the start")
      .option('--format <format>', 'file format: pcap (default) or pcapng')
      .option('--comment <text>', 'text for the pcapng file header (e.g. why the capture was taken)')
      .option('--wait', 'wait for the capture to end, showing its progress')
      .addOption(output()),
  ).action(async (o: Options) => {
    return withApi(o as ConnectionOptions, async (api) => {
      const target = vmId(api.subscription, o.resourceGroup as string | undefined, String(o.vm));
      const { body: vm } = await api.json<{ location: string; id: string }>('GET', `${target}?${API}`);
      const watcher = await watcherFor(api, vm.location);
      const storageLocation: Record<string, string> = {};
      if (o.storageAccount) storageLocation.storageId = String(o.storageAccount);
      if (o.storagePath) storageLocation.storagePath = String(o.storagePath);
      if (o.filePath) storageLocation.filePath = String(o.filePath);
      if (Object.keys(storageLocation).length === 0) {
        storageLocation.storageId = `/subscriptions/${api.subscription}/resourceGroups/tripcap/providers/Microsoft.Storage/storageAccounts/tripcap`;
      }
      let filters: unknown = [];
      if (o.filters) {
        try {
          filters = JSON.parse(String(o.filters));
        } catch {
          throw new Error('--filters must be a JSON array of Azure filters.');
        }
      }
      const properties: Record<string, unknown> = {
        target: vm.id,
        storageLocation,
        filters,
        bytesToCapturePerPacket: int(o.captureSize as string, '--capture-size'),
        totalBytesPerSession: int(o.captureLimit as string, '--capture-limit'),
        timeLimitInSeconds: int(o.timeLimit as string, '--time-limit'),
        preTriggerSeconds: int(o.preTrigger as string, '--pre-trigger'),
        ...(o.format ? { fileFormat: String(o.format) } : {}),
        ...(o.comment ? { comment: String(o.comment) } : {}),
      };
      if (o.continuous) {
        properties.continuousCapture = true;
        properties.captureSettings = {
          fileCount: int(o.fileCount as string, '--file-count'),
          fileSizeInBytes: int(o.fileSize as string, '--file-size'),
          sessionTimeLimitInSeconds: int(o.sessionTimeLimit as string, '--session-time-limit'),
        };
      }
      const path = capturePath(watcher, String(o.name));
      const { body: created } = await api.json<Capture>('PUT', `${path}?${API}`, { properties });
      if (!o.wait) {
        print(String(o.output), created, [
          { Name: created.name, Target: created.properties.target, Provisioning: created.properties.provisioningState },
        ]);
        return;
      }
      printStatus(String(o.output), await waitForEnd(api, path));
    });
  });

  connectionOptions(
    pc
      .command('list')
      .description('List the packet captures of a location.')
      .requiredOption('-l, --location <location>')
      .addOption(output()),
  ).action(async (o: Options) => {
    return withApi(o as ConnectionOptions, async (api) => {
      const watcher = await watcherFor(api, String(o.location));
      const captures: Capture[] = [];
      let next: string | undefined = `${watcher.id}/packetCaptures?${API}`;
      while (next) {
        const page: { body: { value: Capture[]; nextLink?: string } } = await api.json('GET', next);
        captures.push(...page.body.value);
        next = page.body.nextLink;
      }
      const rows = [];
      for (const c of captures) {
        const { body: s } = await api.json<CaptureStatus>('POST', `${c.id}/queryStatus?${API}`);
        rows.push({
          Name: c.name,
          Target: c.properties.target.split('/').pop(),
          Status: s.packetCaptureStatus,
          StopReason: s.stopReason ?? '',
          Started: s.captureStartTime ?? '',
          Packets: s.packetsCaptured,
        });
      }
      print(String(o.output), captures, rows);
    });
  });

  const named = (cmd: Command) =>
    connectionOptions(
      cmd.requiredOption('-l, --location <location>').requiredOption('-n, --name <name>').addOption(output()),
    );

  named(pc.command('show').description('Show a packet capture.')).action(async (o: Options) => {
    return withApi(o as ConnectionOptions, async (api) => {
      const watcher = await watcherFor(api, String(o.location));
      const { body } = await api.json<Capture>('GET', `${capturePath(watcher, String(o.name))}?${API}`);
      print(String(o.output), body, [
        {
          Name: body.name,
          Target: body.properties.target,
          Provisioning: body.properties.provisioningState,
          TimeLimit: body.properties.timeLimitInSeconds,
          ByteLimit: body.properties.totalBytesPerSession,
        },
      ]);
    });
  });

  named(pc.command('report').description("Show a capture's analysis: what the traffic was and why it changed.")).action(
    async (o: Options) => {
      return withApi(o as ConnectionOptions, async (api) => {
        const watcher = await watcherFor(api, String(o.location));
        const { body } = await api.json<{ status: string; error?: string; report?: Report }>(
          'GET',
          `${capturePath(watcher, String(o.name))}/report?${API}`,
        );
        if (o.output === 'json') {
          print('json', body);
        } else if (body.status === 'Succeeded' && body.report) {
          const { renderReportText } = await import('../analysis/render.js');
          process.stdout.write(renderReportText(body.report));
        } else {
          throw new Error(`The report of '${o.name}' is ${body.status}${body.error ? `: ${body.error}` : ''}`);
        }
      });
    },
  );

  named(pc.command('show-status').description("Show a capture's status, progress and files.")).action(
    async (o: Options) => {
      return withApi(o as ConnectionOptions, async (api) => {
        const watcher = await watcherFor(api, String(o.location));
        const { body } = await api.json<CaptureStatus>(
          'POST',
          `${capturePath(watcher, String(o.name))}/queryStatus?${API}`,
        );
        printStatus(String(o.output), body);
      });
    },
  );

  named(
    pc
      .command('stop')
      .description('Stop a running capture and wait for its file.')
      .option('--no-wait', 'return once the stop is asked'),
  ).action(async (o: Options) => {
    return withApi(o as ConnectionOptions, async (api) => {
      const watcher = await watcherFor(api, String(o.location));
      const path = capturePath(watcher, String(o.name));
      await api.json('POST', `${path}/stop?${API}`);
      if (o.wait === false) return;
      printStatus(String(o.output), await waitForEnd(api, path));
    });
  });

  connectionOptions(
    pc
      .command('delete')
      .description('Delete a capture (its files stay in storage).')
      .requiredOption('-l, --location <location>')
      .requiredOption('-n, --name <name>'),
  ).action(async (o: Options) => {
    return withApi(o as ConnectionOptions, async (api) => {
      const watcher = await watcherFor(api, String(o.location));
      const { status } = await api.json('DELETE', `${capturePath(watcher, String(o.name))}?${API}`);
      process.stderr.write(status === 204 ? `No capture '${o.name}' to delete.\n` : `Deleted '${o.name}'.\n`);
    });
  });

  connectionOptions(
    pc
      .command('download')
      .description('Download a capture file, checking its SHA-256.')
      .requiredOption('-l, --location <location>')
      .requiredOption('-n, --name <name>')
      .option('--file <n>', 'file number (ring captures have several)', '1')
      .option('-f, --output-file <path>', 'where to write it (default: the blob file name)'),
  ).action(async (o: Options) => {
    return withApi(o as ConnectionOptions, async (api) => {
      const watcher = await watcherFor(api, String(o.location));
      const seq = int(String(o.file), '--file') ?? 1;
      const { body: status } = await api.json<CaptureStatus>(
        'POST',
        `${capturePath(watcher, String(o.name))}/queryStatus?${API}`,
      );
      const file = status.files.find((f) => f.seq === seq);
      if (!file?.downloadUrl)
        throw new Error(`Capture '${o.name}' has no uploaded file ${seq} (status ${status.packetCaptureStatus}).`);
      const target = String(o.outputFile ?? file.name.split('/').pop());
      const partial = `${target}.part-${randomBytes(4).toString('hex')}`;
      const { body } = await api.stream(file.downloadUrl);
      const hash = createHash('sha256');
      let received = 0;
      const line = createProgressLine();
      const meter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          received += chunk.length;
          line.update(`${formatBytes(received)}/${formatBytes(file.size)}`);
          done(null, chunk);
        },
      });
      try {
        await pipeline(body, meter, createWriteStream(partial, { mode: 0o640 }));
        const sha256 = hash.digest('hex');
        if (sha256 !== file.sha256)
          throw new Error(`Checksum mismatch: got ${sha256}, the server recorded ${file.sha256}.`);
        await rename(partial, target);
      } catch (err) {
        await rm(partial, { force: true });
        throw err;
      }
      line.done(`Saved ${target} (${formatBytes(received)}, sha256 ${file.sha256})`);
    });
  });
}

import type { Database } from '../db/index.js';
import { parseResourceId, parseVmId } from '../lib/arm-id.js';
import { ApiError } from '../lib/errors.js';
import { sleep } from '../lib/time.js';
import type { NicInfo } from '../watcher/agent-protocol.js';
import type { PacketCaptureService } from '../watcher/service.js';
import type { CaptureState, NetworkWatcherPort, VmCandidate, WatcherRef } from './types.js';

const PAGE_SIZE = 1000;
/** How long a notification waits for the capture's report before it goes without its findings. */
const REPORT_WAIT_MS = 30_000;

function captureRef(watcher: WatcherRef, captureName: string) {
  return {
    subscriptionId: watcher.subscriptionId,
    resourceGroup: watcher.resourceGroup,
    watcherName: watcher.name,
    captureName,
  };
}

/** tripcap's own packet capture service as the function's Network Watcher: same process, no HTTP. */
export function createLocalNetworkWatcher(captures: PacketCaptureService): NetworkWatcherPort & {
  findings(watcher: WatcherRef, captureName: string): Promise<string[]>;
} {
  /** A capture's state from its status; `target` comes with the capture (the list already has it). */
  async function stateOf(watcher: WatcherRef, name: string, target: string): Promise<CaptureState> {
    const status = await captures.queryStatus(captureRef(watcher, name));
    return {
      name,
      target,
      status: status.packetCaptureStatus,
      stopReason: status.stopReason ?? null,
      errors: status.packetCaptureError,
      startTime: status.captureStartTime ?? null,
      files: status.files.map((f) => ({ url: f.downloadUrl ?? f.storagePath, size: f.size, sha256: f.sha256 })),
    };
  }

  async function getCapture(watcher: WatcherRef, name: string): Promise<CaptureState> {
    const capture = await captures.getCapture(captureRef(watcher, name));
    return stateOf(watcher, name, capture.properties.target);
  }

  return {
    async getVm(vmId) {
      const ref = parseVmId(vmId);
      if (!ref) return null;
      try {
        const vm = await captures.getVm(ref.subscriptionId.toLowerCase(), ref.resourceGroup, ref.name);
        return { id: vm.id, name: vm.name, location: vm.location };
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) return null;
        throw err;
      }
    },
    async findWatcher(subscriptionId, location) {
      const want = location.replace(/\s+/g, '').toLowerCase();
      const watchers = await captures.listWatchers(subscriptionId.toLowerCase());
      const found = watchers.find((w) => w.location.replace(/\s+/g, '').toLowerCase() === want);
      const parsed = found ? parseResourceId(found.id) : null;
      if (!found || !parsed) return null;
      return {
        id: found.id,
        subscriptionId: parsed.subscriptionId,
        resourceGroup: parsed.resourceGroup,
        name: found.name,
        location: found.location,
      };
    },
    async listCaptures(watcher) {
      const listed: Array<{ name: string; target: string }> = [];
      for (let skip = 0; ; skip += PAGE_SIZE) {
        const { value, more } = await captures.listCaptures(captureRef(watcher, ''), { skip, top: PAGE_SIZE });
        listed.push(...value.map((c) => ({ name: c.name, target: c.properties.target })));
        if (!more) break;
      }
      return Promise.all(listed.map((c) => stateOf(watcher, c.name, c.target)));
    },
    async createCapture(watcher, name, request) {
      // The request is the PUT body's properties as it is, tripcap's extensions (preTriggerSeconds, fileFormat,
      // comment) included.
      await captures.createCapture(captureRef(watcher, name), { properties: request });
    },
    getCapture,
    async stopCapture(watcher, name) {
      await captures.stopCapture(captureRef(watcher, name));
    },
    /** The report's explanation, once the analysis that follows an upload is done (it takes a moment). */
    async findings(watcher, name) {
      const deadline = Date.now() + REPORT_WAIT_MS;
      for (;;) {
        const answer = (await captures.getReport(captureRef(watcher, name))) as {
          status: string;
          report?: { explanation?: { sentences?: string[] } };
        };
        if (!['Pending', 'Running'].includes(answer.status) || Date.now() > deadline) {
          return answer.report?.explanation?.sentences ?? [];
        }
        await sleep(250);
      }
    },
  };
}

/** Every VM agents registered, with their NICs' addresses, for alerts that name a host (Alertmanager, Grafana). */
export async function listLocalVms(db: Database): Promise<VmCandidate[]> {
  const rows = await db.selectFrom('vms').select(['id', 'name', 'resource_group', 'location', 'nics']).execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    resourceGroup: r.resource_group,
    location: r.location,
    addresses: (JSON.parse(r.nics) as NicInfo[]).flatMap((n) => n.ipAddresses),
  }));
}

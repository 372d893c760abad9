import type { CaptureFilesTable, NetworkWatchersTable, PacketCapturesTable, VmsTable } from '../db/index.js';
import type { CaptureProgress, NicInfo, PacketCaptureErrorCode } from './agent-protocol.js';
import type { PacketCaptureInput } from './parameters.js';

/** How capture rows look on the wire, in Network Watcher's ARM shape (plus a few fields of tripcap's own). */

export interface FileView {
  seq: number;
  name: string;
  storagePath: string | null;
  localPath: string | null;
  size: number;
  packets: number;
  kernelDrops: number;
  sha256: string;
  firstPacketTime: string | null;
  lastPacketTime: string | null;
  uploadedTime: string;
  downloadUrl: string | null;
}

export function watcherView(row: NetworkWatchersTable) {
  return {
    id: row.id,
    name: row.name,
    type: 'Microsoft.Network/networkWatchers',
    location: row.location,
    etag: row.etag,
    tags: JSON.parse(row.tags) as Record<string, string>,
    properties: { provisioningState: 'Succeeded' },
  };
}

/** GET shows the request as given (normalised, Azure's defaults filled in); `localFile` is tripcap's bookkeeping. */
export function captureView(row: PacketCapturesTable) {
  const { localFile: _, preTriggerSeconds, ...properties } = JSON.parse(row.properties) as PacketCaptureInput;
  return {
    id: row.id,
    name: row.name,
    type: 'Microsoft.Network/networkWatchers/packetCaptures',
    etag: row.etag,
    properties: {
      ...properties,
      ...(preTriggerSeconds ? { preTriggerSeconds } : {}),
      provisioningState: row.provisioning_state,
    },
  };
}

export function captureStatusView(row: PacketCapturesTable, files: FileView[]) {
  const progress = JSON.parse(row.progress) as CaptureProgress;
  return {
    name: row.name,
    id: row.id,
    captureStartTime: row.capture_start_time ?? undefined,
    packetCaptureStatus: row.status,
    stopReason: row.stop_reason ?? undefined,
    packetCaptureError: JSON.parse(row.errors) as PacketCaptureErrorCode[],
    // tripcap's own additions; Azure clients ignore them.
    captureEndTime: row.capture_end_time ?? undefined,
    bytesCaptured: progress.bytes,
    packetsCaptured: progress.packets,
    ...(progress.preTrigger ? { preTrigger: progress.preTrigger } : {}),
    files,
  };
}

export function vmView(row: VmsTable, agent: { lastSeen: string; connected: boolean } | null) {
  const nics = JSON.parse(row.nics) as NicInfo[];
  return {
    id: row.id,
    name: row.name,
    type: 'Microsoft.Compute/virtualMachines',
    location: row.location,
    properties: {
      provisioningState: 'Succeeded',
      storageProfile: { osDisk: { osType: row.os_type } },
      networkProfile: {
        networkInterfaces: nics.map((nic) => ({ name: nic.name, macAddress: nic.mac, ipAddresses: nic.ipAddresses })),
      },
      // tripcap's own: the agent that runs captures on this VM.
      agent: agent ? { status: agent.connected ? 'Connected' : 'Disconnected', lastSeen: agent.lastSeen } : null,
    },
  };
}

export function fileView(
  row: CaptureFilesTable,
  urls: { storagePath: string | null; downloadUrl: string | null },
): FileView {
  return {
    seq: row.seq,
    name: row.blob_name || (row.local_path ?? ''),
    storagePath: urls.storagePath,
    localPath: row.local_path,
    size: row.size,
    packets: row.packets,
    kernelDrops: row.kernel_drops,
    sha256: row.sha256,
    firstPacketTime: row.first_packet_time,
    lastPacketTime: row.last_packet_time,
    uploadedTime: row.uploaded_at,
    downloadUrl: urls.downloadUrl,
  };
}

import { assertName, assertSubscription } from '../lib/arm-id.js';
import { assertBlobName, StorageError } from './blob-store.js';

/*
 * Azure's layout, from "Manage packet captures for virtual machines with Azure Network Watcher using PowerShell"
 * (MicrosoftDocs/azure-docs, articles/network-watcher/packet-capture-vm-powershell.md, 2024; the older REST and
 * PowerShell pages say the same): captures saved to a storage account go to
 *
 *   https://{storageAccountName}.blob.core.windows.net/network-watcher-logs/subscriptions/{subscriptionId}/resourcegroups/
 *     {storageAccountResourceGroup}/providers/microsoft.compute/virtualmachines/{virtualMachineName}/{year}/{month}/{day}/
 *     packetcapture_{UTCcreationTime}.cap
 *
 * with this example for VM `myVM` in `myResourceGroup` (the whole path lower-cased, time as HH_mm_ss_fff):
 *   subscriptions/00000000-…/resourcegroups/myresourcegroup/providers/microsoft.compute/virtualmachines/myvm/2024/01/25/packetcapture_22_44_54_342.cap
 * Older samples agree (…/contosoexamplerg/…/contosovm/2016/12/06/packetcapture_17_19_53_056.cap). The template names the
 * storage account's resource group, but every sample has the VM and the account in one group; we use the VM's group,
 * as the design says, since that is what identifies the capture's target.
 *
 * Azure documents no blob naming for continuous-capture ring files (captureSettings.fileCount); ours is our own
 * convention: `packetcapture_{HH}_{mm}_{ss}_{fff}_{n}.cap`, n counting from 1.
 */

export interface CaptureBlobNameParts {
  subscriptionId: string;
  resourceGroup: string;
  vmName: string;
  /** When the capture started; rendered in UTC. */
  startTime: Date;
  /** For continuous-capture ring files: 1-based file number, appended as `_{n}`. */
  sequence?: number;
  extension?: 'cap' | 'pcapng';
}

/** The blob name (inside container `network-watcher-logs`) Azure gives a VM's packet capture. */
export function captureBlobName(parts: CaptureBlobNameParts): string {
  const { subscriptionId, resourceGroup, vmName, startTime, sequence, extension = 'cap' } = parts;
  assertSubscription(subscriptionId);
  assertName(resourceGroup, 'Resource group name');
  assertName(vmName, 'Virtual machine name');
  if (extension !== 'cap' && extension !== 'pcapng') {
    throw new StorageError(
      'InvalidBlobName',
      `Capture file extension '${String(extension)}' is not 'cap' or 'pcapng'.`,
    );
  }
  if (sequence !== undefined && (!Number.isSafeInteger(sequence) || sequence < 1)) {
    throw new StorageError('InvalidBlobName', `Capture file sequence ${sequence} is not a whole number from 1.`);
  }
  const iso = startTime instanceof Date && !Number.isNaN(startTime.getTime()) ? startTime.toISOString() : '';
  // 2017-02-01T22:42:48.238Z; years outside 0000-9999 render as ±YYYYYY and are refused.
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{3})Z$/.exec(iso);
  if (!m) throw new StorageError('InvalidBlobName', 'Capture start time is not a valid date between years 0 and 9999.');
  const [, yyyy, mm, dd, hh, mi, ss, fff] = m;
  const file = `packetcapture_${hh}_${mi}_${ss}_${fff}${sequence === undefined ? '' : `_${sequence}`}.${extension}`;
  const name = [
    'subscriptions',
    subscriptionId,
    'resourcegroups',
    resourceGroup,
    'providers/microsoft.compute/virtualmachines',
    vmName,
    yyyy,
    mm,
    dd,
    file,
  ]
    .join('/')
    .toLowerCase();
  return assertBlobName(name);
}

import { networkInterfaces } from 'node:os';
import type { NicInfo } from '../watcher/agent-protocol.js';

/** The host's NICs but loopback, with their addresses (link-local IPv6 left out: it names no host). */
export function hostNics(): NicInfo[] {
  const nics: NicInfo[] = [];
  for (const [name, addresses] of Object.entries(networkInterfaces())) {
    if (!addresses || addresses.some((a) => a.internal)) continue;
    nics.push({
      name,
      mac: addresses[0]?.mac ?? '',
      ipAddresses: addresses.filter((a) => !a.address.toLowerCase().startsWith('fe80:')).map((a) => a.address),
    });
  }
  return nics.sort((a, b) => a.name.localeCompare(b.name));
}

/** Captures go on the host's one NIC when it has one (Ethernet frames, as Azure's); otherwise on all of them. */
export function defaultCaptureInterface(nics: NicInfo[] = hostNics()): string {
  return nics.length === 1 && nics[0] ? nics[0].name : 'any';
}

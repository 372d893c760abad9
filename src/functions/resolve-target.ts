/**
 * Which known VM an alert is about. The alert's resource id decides when it has one; otherwise its names (in
 * priority order), then its addresses. Matches are exact (case-insensitive), never fuzzy: an alert that names no
 * single known VM gets a clear refusal instead of a capture on the wrong host.
 */
import { parseResourceId, parseVmId } from '../lib/arm-id.js';
import type { IncomingAlert, TargetResolution, VmCandidate } from './types.js';

const REGISTER_HINT = 'register its agent with tripcap (or check the alert rule targets the right VM)';

export function resolveTarget(alert: IncomingAlert, vms: readonly VmCandidate[]): TargetResolution {
  const { resourceId, names, addresses } = alert.target;
  if (resourceId) return byResourceId(resourceId.trim(), vms);
  if (names.length === 0 && addresses.length === 0) {
    return refuse(
      'NoTarget',
      `Alert '${alert.ruleName}' names no target: it carries no resource id, host name or address (for Alertmanager or Grafana, add a label such as instance, host or vm).`,
    );
  }
  for (const name of names) {
    const found = vms.filter((vm) => sameText(vm.name, name));
    if (found.length === 1 && found[0]) return { ok: true, vm: found[0] };
    if (found.length > 1) return narrowByAddress(found, addresses) ?? ambiguous(`name '${name}'`, found);
  }
  for (const address of addresses) {
    const found = vms.filter((vm) => vm.addresses.some((a) => sameText(a, address)));
    if (found.length === 1 && found[0]) return { ok: true, vm: found[0] };
    if (found.length > 1) return ambiguous(`address '${address}'`, found);
  }
  const tried = [...names.map((n) => `name '${n}'`), ...addresses.map((a) => `address '${a}'`)].join(', ');
  return refuse('TargetNotFound', `No VM tripcap knows matches ${tried}: ${REGISTER_HINT}.`);
}

function byResourceId(resourceId: string, vms: readonly VmCandidate[]): TargetResolution {
  if (parseVmId(resourceId)) {
    // Azure sends resource ids lower-cased; ARM ids compare case-insensitively.
    const vm = vms.find((candidate) => sameText(candidate.id, resourceId));
    if (vm) return { ok: true, vm };
    return refuse('TargetNotFound', `The alert's target '${resourceId}' is not a VM tripcap knows: ${REGISTER_HINT}.`);
  }
  const parsed = parseResourceId(resourceId);
  const what = parsed ? `a ${parsed.provider}/${parsed.type} resource` : 'not a virtual machine resource id';
  return refuse(
    'TargetNotAVirtualMachine',
    `The alert's target '${resourceId.slice(0, 300)}' is ${what}; tripcap captures packets on virtual machines only (Microsoft.Compute/virtualMachines).`,
  );
}

/** Two VMs share a name (other resource groups): the alert's address may tell which one it is. */
function narrowByAddress(found: VmCandidate[], addresses: readonly string[]): TargetResolution | null {
  const matching = found.filter((vm) => vm.addresses.some((a) => addresses.some((b) => sameText(a, b))));
  return matching.length === 1 && matching[0] ? { ok: true, vm: matching[0] } : null;
}

function ambiguous(what: string, found: VmCandidate[]): TargetResolution {
  const ids = found.map((vm) => vm.id).join(', ');
  return refuse(
    'TargetAmbiguous',
    `The alert's ${what} matches ${found.length} VMs (${ids}): send the VM's resource id (label resourceId) to say which.`,
  );
}

function refuse(code: string, message: string): TargetResolution {
  return { ok: false, code, message };
}

function sameText(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

import { badRequest } from './errors.js';

/** Names Azure accepts for resource groups and resources (letters, digits, `_-.()`), kept strict for file paths. */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.()-]{0,89}$/;
const SUBSCRIPTION = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;

export function isValidName(name: string): boolean {
  return NAME.test(name) && !name.endsWith('.') && !name.includes('..');
}

export function assertName(name: string, what: string): string {
  if (!isValidName(name)) {
    throw badRequest(
      'InvalidResourceName',
      `${what} '${name.slice(0, 100)}' is not valid: use 1-90 letters, digits, '_', '-', '.', '(' or ')', starting with a letter or digit and not ending with '.'.`,
    );
  }
  return name;
}

export function assertSubscription(id: string): string {
  if (!SUBSCRIPTION.test(id)) {
    throw badRequest('InvalidSubscriptionId', `Subscription id '${id.slice(0, 100)}' is not valid.`);
  }
  return id;
}

export interface VmRef {
  subscriptionId: string;
  resourceGroup: string;
  name: string;
}

export function vmResourceId(vm: VmRef): string {
  return `/subscriptions/${vm.subscriptionId}/resourceGroups/${vm.resourceGroup}/providers/Microsoft.Compute/virtualMachines/${vm.name}`;
}

/** The key under which a resource id is stored: ARM ids compare case-insensitively. */
export function idKey(id: string): string {
  return id.toLowerCase();
}

/** Parses `/subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{type}/{name}` (one level); null if malformed. */
export function parseResourceId(
  id: string,
): { subscriptionId: string; resourceGroup: string; provider: string; type: string; name: string } | null {
  const m = /^\/subscriptions\/([^/]+)\/resourceGroups\/([^/]+)\/providers\/([^/]+)\/([^/]+)\/([^/]+)\/?$/i.exec(id);
  const [, subscriptionId = '', resourceGroup = '', provider = '', type = '', name = ''] = m ?? [];
  if (!m || !SUBSCRIPTION.test(subscriptionId) || !isValidName(resourceGroup) || !isValidName(name)) return null;
  return { subscriptionId, resourceGroup, provider, type, name };
}

export function parseVmId(id: string): VmRef | null {
  const p = parseResourceId(id);
  if (p?.provider.toLowerCase() !== 'microsoft.compute' || p.type.toLowerCase() !== 'virtualmachines') return null;
  return { subscriptionId: p.subscriptionId, resourceGroup: p.resourceGroup, name: p.name };
}

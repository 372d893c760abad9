import { describe, expect, it } from 'vitest';
import { resolveTarget } from './resolve-target.js';
import type { IncomingAlert, VmCandidate } from './types.js';

const SUB = '11111111-2222-3333-4444-555555555555';
const vm = (resourceGroup: string, name: string, addresses: string[]): VmCandidate => ({
  id: `/subscriptions/${SUB}/resourceGroups/${resourceGroup}/providers/Microsoft.Compute/virtualMachines/${name}`,
  name,
  resourceGroup,
  location: 'westeurope',
  addresses,
});

const web1 = vm('Rg-Web', 'Web-1', ['10.0.0.4', 'fe80::1']);
const dbBlue = vm('rg-blue', 'db', ['10.0.1.4']);
const dbGreen = vm('rg-green', 'db', ['10.0.2.4']);
const app = vm('rg-app', 'app', ['10.0.3.4', '2001:DB8::7']);
const VMS = [web1, dbBlue, dbGreen, app];

function alert(target: Partial<IncomingAlert['target']>): IncomingAlert {
  return {
    source: 'alertmanager',
    dedupKey: 'k',
    condition: 'Fired',
    ruleName: 'HighCpu',
    severity: null,
    description: null,
    target: { resourceId: null, names: [], addresses: [], ...target },
    firedAt: null,
    resolvedAt: null,
    windowStart: null,
    windowEnd: null,
    raw: {},
  };
}

describe('resolveTarget', () => {
  it.each([
    ['the exact VM id', { resourceId: web1.id }, web1],
    ['the lower-cased VM id Azure sends', { resourceId: web1.id.toLowerCase() }, web1],
    ['the upper-cased VM id', { resourceId: web1.id.toUpperCase() }, web1],
    ['a VM id over names that point elsewhere', { resourceId: app.id, names: ['Web-1'] }, app],
    ['a name in another case', { names: ['web-1'] }, web1],
    ['the first name that matches', { names: ['nope', 'app', 'Web-1'] }, app],
    ['an IPv4 address', { addresses: ['10.0.1.4'] }, dbBlue],
    ['an IPv6 address', { addresses: ['fe80::1'] }, web1],
    ['an IPv6 address in another case', { addresses: ['2001:db8::7'] }, app],
    ['a name that matches nothing, then an address', { names: ['web-9'], addresses: ['10.0.3.4'] }, app],
    ['an ambiguous name narrowed by the address', { names: ['db'], addresses: ['10.0.2.4'] }, dbGreen],
  ])('finds the VM by %s', (_, target, expected) => {
    expect(resolveTarget(alert(target), VMS)).toEqual({ ok: true, vm: expected });
  });

  it.each([
    [
      'an unknown VM id',
      { resourceId: vm('rg-x', 'ghost', []).id.toLowerCase() },
      'TargetNotFound',
      /virtualmachines\/ghost' is not a VM tripcap knows: register its agent/,
    ],
    [
      'a storage account',
      { resourceId: `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/logs` },
      'TargetNotAVirtualMachine',
      /a Microsoft\.Storage\/storageAccounts resource; tripcap captures packets on virtual machines only/,
    ],
    [
      'a Log Analytics workspace, even with a VM name beside it',
      {
        resourceId: `/subscriptions/${SUB}/resourcegroups/rg/providers/microsoft.operationalinsights/workspaces/ws`,
        names: ['Web-1'],
      },
      'TargetNotAVirtualMachine',
      /microsoft\.operationalinsights\/workspaces/,
    ],
    [
      'a scale set instance',
      {
        resourceId: `/subscriptions/${SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/ss/virtualMachines/0`,
      },
      'TargetNotAVirtualMachine',
      /not a virtual machine resource id/,
    ],
    [
      'a placeholder id',
      { resourceId: '<resource id>' },
      'TargetNotAVirtualMachine',
      /not a virtual machine resource id/,
    ],
    [
      'a name two VMs share',
      { names: ['DB'] },
      'TargetAmbiguous',
      new RegExp(`name 'DB' matches 2 VMs \\(${dbBlue.id}, ${dbGreen.id}\\)`),
    ],
    ['an address two VMs share', { addresses: ['10.9.9.9'] }, 'TargetAmbiguous', /address '10\.9\.9\.9' matches 2 VMs/],
    [
      'unknown names and addresses',
      { names: ['web-1.example.com', 'web'], addresses: ['10.0.0.44'] },
      'TargetNotFound',
      /matches name 'web-1\.example\.com', name 'web', address '10\.0\.0\.44': register its agent/,
    ],
    ['nothing at all', {}, 'NoTarget', /'HighCpu' names no target/],
  ])('refuses %s', (_, target, code, message) => {
    const shared = [...VMS, vm('rg-x', 'x1', ['10.9.9.9']), vm('rg-y', 'y1', ['10.9.9.9'])];
    const result = resolveTarget(alert(target), shared);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.code).toBe(code);
    expect(result.message).toMatch(message);
  });

  it('finds nothing among no VMs', () => {
    expect(resolveTarget(alert({ names: ['Web-1'] }), [])).toMatchObject({ ok: false, code: 'TargetNotFound' });
  });
});

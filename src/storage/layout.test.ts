import { describe, expect, it } from 'vitest';
import { ApiError } from '../lib/errors.js';
import { StorageError } from './blob-store.js';
import { captureBlobName } from './layout.js';

const SUB = '00000000-0000-0000-0000-000000000000';

describe('captureBlobName', () => {
  it("reproduces Azure's documented example exactly", () => {
    // MicrosoftDocs/azure-docs articles/network-watcher/packet-capture-vm-powershell.md
    expect(
      captureBlobName({
        subscriptionId: SUB,
        resourceGroup: 'myResourceGroup',
        vmName: 'myVM',
        startTime: new Date('2024-01-25T22:44:54.342Z'),
      }),
    ).toBe(
      `subscriptions/${SUB}/resourcegroups/myresourcegroup/providers/microsoft.compute/virtualmachines/myvm/2024/01/25/packetcapture_22_44_54_342.cap`,
    );
  });

  it('uses UTC, zero-pads every field and lower-cases the subscription', () => {
    const name = captureBlobName({
      subscriptionId: 'ABCDEF01-0000-0000-0000-000000000000',
      resourceGroup: 'RG',
      vmName: 'VM-1',
      startTime: new Date('2017-02-01T23:02:03.004-05:00'), // 2017-02-02T04:02:03.004Z
    });
    expect(name).toBe(
      'subscriptions/abcdef01-0000-0000-0000-000000000000/resourcegroups/rg/providers/microsoft.compute/virtualmachines/vm-1/2017/02/02/packetcapture_04_02_03_004.cap',
    );
  });

  it('appends the ring-file sequence and honours pcapng', () => {
    const base = {
      subscriptionId: SUB,
      resourceGroup: 'rg',
      vmName: 'vm',
      startTime: new Date('2025-12-31T00:00:00Z'),
    };
    expect(captureBlobName({ ...base, sequence: 1 })).toMatch(/\/2025\/12\/31\/packetcapture_00_00_00_000_1\.cap$/);
    expect(captureBlobName({ ...base, sequence: 12, extension: 'pcapng' })).toMatch(
      /\/packetcapture_00_00_00_000_12\.pcapng$/,
    );
    expect(captureBlobName({ ...base, extension: 'pcapng' })).toMatch(/\/packetcapture_00_00_00_000\.pcapng$/);
  });

  it('keeps parentheses, dots and underscores that Azure allows in resource group names', () => {
    const name = captureBlobName({
      subscriptionId: SUB,
      resourceGroup: 'Prod(EU).Core_1',
      vmName: 'web.01',
      startTime: new Date(0),
    });
    expect(name).toContain('/resourcegroups/prod(eu).core_1/');
    expect(name).toContain('/virtualmachines/web.01/1970/01/01/');
  });

  it('refuses parts that are not valid Azure names', () => {
    const base = { subscriptionId: SUB, resourceGroup: 'rg', vmName: 'vm', startTime: new Date() };
    for (const bad of [
      { subscriptionId: '../x' },
      { subscriptionId: '' },
      { resourceGroup: '..' },
      { resourceGroup: 'a/b' },
      { resourceGroup: 'rg.' },
      { vmName: 'vm/../../etc' },
      { vmName: '' },
      { vmName: 'x'.repeat(91) },
    ]) {
      expect(() => captureBlobName({ ...base, ...bad })).toThrow(ApiError);
    }
    for (const bad of [
      { startTime: new Date(Number.NaN) },
      { startTime: new Date('+010000-01-01T00:00:00Z') },
      { sequence: 0 },
      { sequence: 1.5 },
      { sequence: -1 },
      { extension: 'exe' as 'cap' },
    ]) {
      expect(() => captureBlobName({ ...base, ...bad })).toThrow(StorageError);
    }
  });
});

import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ApiError } from '../lib/errors.js';
import {
  MAX_SNAPLEN,
  type PacketCaptureBodyOptions,
  type PacketCaptureInput,
  parsePacketCaptureBody,
  snaplenFor,
} from './parameters.js';

const EXAMPLES = new URL('../../test/fixtures/azure/nw-examples', import.meta.url).pathname;
const LINUX: PacketCaptureBodyOptions = { osType: 'Linux', captureRoot: '/var/captures' };
const WINDOWS: PacketCaptureBodyOptions = { osType: 'Windows', captureRoot: 'D:\\capture' };
const VM =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg2/providers/Microsoft.Compute/virtualMachines/vm1';
const STORAGE =
  '/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg2/providers/Microsoft.Storage/storageAccounts/pcstore';
const BLOB = 'https://pcstore.blob.core.windows.net/capture/pc1.cap';

/** A valid Linux body with `overrides` merged into its properties. */
function body(overrides: Record<string, unknown> = {}): { properties: Record<string, unknown> } {
  return { properties: { target: VM, storageLocation: { filePath: '/var/captures/pc1.cap' }, ...overrides } };
}

const withStorage = (storageLocation: Record<string, unknown>) => body({ storageLocation });

function parse(input: unknown, opts = LINUX): PacketCaptureInput {
  return parsePacketCaptureBody(input, opts);
}

function rejection(input: unknown, opts = LINUX): ApiError {
  try {
    parsePacketCaptureBody(input, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(400);
    return err as ApiError;
  }
  throw new Error(`accepted: ${JSON.stringify(input)}`);
}

function expectRejected(input: unknown, code: string, target: string | undefined, opts = LINUX): ApiError {
  const err = rejection(input, opts);
  expect({ code: err.code, target: err.target }, err.message).toEqual({ code, target });
  expect(err.message.length).toBeGreaterThan(20);
  return err;
}

describe('Azure examples', () => {
  const examples = readdirSync(EXAMPLES)
    .filter((name) => name.endsWith('.json'))
    .map((name) => ({ name, json: JSON.parse(readFileSync(join(EXAMPLES, name), 'utf8')) }));

  it('parses the PacketCaptures_Create example request as Azure writes it (Windows VM)', () => {
    const create = examples.find((e) => e.name.endsWith('NetworkWatcherPacketCaptureCreate.json'));
    expect(create).toBeDefined();
    const input = parse(create?.json.parameters.parameters, WINDOWS);
    expect(input).toEqual({
      target: VM,
      targetType: 'AzureVM',
      bytesToCapturePerPacket: 10000,
      totalBytesPerSession: 100000,
      timeLimitInSeconds: 100,
      storageLocation: {
        filePath: 'D:\\capture\\pc1.cap',
        storageId: STORAGE,
        storagePath: BLOB.replace('pcstore', 'mytestaccountname'),
      },
      filters: [{ protocol: 'TCP', localIPAddress: '10.0.0.4', localPort: '80' }],
      continuousCapture: false,
      preTriggerSeconds: 0,
      localFile: 'D:\\capture\\pc1.cap',
    });
  });

  it('parses every packet capture body in the examples, read-only properties included', () => {
    const bodies: unknown[] = [];
    for (const { json } of examples) {
      if (json.parameters.parameters?.properties) bodies.push(json.parameters.parameters);
      for (const response of Object.values(json.responses) as {
        body?: { properties?: unknown; value?: unknown[] };
      }[]) {
        if (response.body?.properties) bodies.push(response.body);
        for (const item of response.body?.value ?? []) bodies.push(item);
      }
    }
    expect(bodies.length).toBe(5); // Create request + 201, Get, List ×2
    for (const example of bodies) expect(parse(example, WINDOWS).target).toBe(VM);
  });
});

describe('parsePacketCaptureBody: defaults and accepted input', () => {
  it('fills Azure defaults for a minimal Linux body', () => {
    expect(parse(body())).toEqual({
      target: VM,
      targetType: 'AzureVM',
      bytesToCapturePerPacket: 0,
      totalBytesPerSession: 1073741824,
      timeLimitInSeconds: 18000,
      storageLocation: { filePath: '/var/captures/pc1.cap' },
      filters: [],
      continuousCapture: false,
      preTriggerSeconds: 0,
      localFile: '/var/captures/pc1.cap',
    });
  });

  it('ignores read-only and unknown properties', () => {
    const input = {
      id: 'x',
      name: 'pc1',
      etag: 'W/"1"',
      properties: { ...body().properties, provisioningState: 'Succeeded', somethingNew: { a: 1 } },
    };
    expect(parse(input).target).toBe(VM);
    expect(parse(withStorage({ storageId: STORAGE, extra: 'x' })).storageLocation).toEqual({ storageId: STORAGE });
  });

  it('accepts targetType in any case, explicit nulls, empty scope and empty strings as absent', () => {
    const input = parse(
      body({
        targetType: 'azurevm',
        scope: { include: [], exclude: null },
        bytesToCapturePerPacket: null,
        continuousCapture: null,
        filters: null,
        storageLocation: { storageId: STORAGE, filePath: '', localPath: null },
      }),
    );
    expect(input.targetType).toBe('AzureVM');
    expect(input.continuousCapture).toBe(false);
    expect(input.storageLocation).toEqual({ storageId: STORAGE });
    expect(input.localFile).toBeUndefined();
  });

  it('keeps limits, treating 0 as the default where Azure gives 0 no meaning', () => {
    const input = parse(
      body({
        bytesToCapturePerPacket: 4294967295,
        totalBytesPerSession: 0,
        timeLimitInSeconds: 0,
        preTriggerSeconds: 3600,
      }),
    );
    expect(input).toMatchObject({
      bytesToCapturePerPacket: 4294967295,
      totalBytesPerSession: 1073741824,
      timeLimitInSeconds: 18000,
      preTriggerSeconds: 3600,
    });
    expect(parse(body({ totalBytesPerSession: 4294967295, timeLimitInSeconds: 1 }))).toMatchObject({
      totalBytesPerSession: 4294967295,
      timeLimitInSeconds: 1,
    });
  });

  it('gives continuous capture its settings, with defaults', () => {
    const storageLocation = { localPath: '/var/captures/ring.cap' };
    expect(parse(body({ continuousCapture: true, storageLocation })).captureSettings).toEqual({
      fileCount: 10,
      fileSizeInBytes: 104857600,
      sessionTimeLimitInSeconds: 86400,
    });
    const settings = { fileCount: 10000, fileSizeInBytes: 4294967295, sessionTimeLimitInSeconds: 604800 };
    expect(
      parse(body({ continuousCapture: true, storageLocation, captureSettings: settings })).captureSettings,
    ).toEqual(settings);
    expect(
      parse(body({ continuousCapture: true, storageLocation, captureSettings: { fileCount: 0, fileSizeInBytes: 0 } }))
        .captureSettings,
    ).toEqual({ fileCount: 10, fileSizeInBytes: 104857600, sessionTimeLimitInSeconds: 86400 });
    expect(parse(body()).captureSettings).toBeUndefined();
    expect(parse(body({ captureSettings: { fileCount: 3 } })).captureSettings?.fileCount).toBe(3);
  });

  it('parses filters', () => {
    expect(parse(body({ filters: [{ protocol: 'udp', remotePort: '53' }] })).filters).toEqual([
      { protocol: 'UDP', remotePort: '53' },
    ]);
  });

  it('normalises Linux capture paths under the root', () => {
    const cases: [string, string][] = [
      ['/var/captures/pc1.cap', '/var/captures/pc1.cap'],
      ['/var/captures/sub/dir/x-1_2.v2.cap', '/var/captures/sub/dir/x-1_2.v2.cap'],
      ['/var/captures//a.cap', '/var/captures/a.cap'],
      ['/var/captures/./a.cap', '/var/captures/a.cap'],
    ];
    for (const [given, normalised] of cases) {
      expect(parse(withStorage({ filePath: given })).localFile).toBe(normalised);
      expect(parse(withStorage({ localPath: given })).localFile).toBe(normalised);
    }
    expect(
      parse(withStorage({ filePath: '/srv/pcap/a.cap' }), { osType: 'Linux', captureRoot: '/srv/pcap/' }).localFile,
    ).toBe('/srv/pcap/a.cap');
  });

  it('normalises Windows capture paths under the root, case-insensitively', () => {
    const cases: [string, string][] = [
      ['D:\\capture\\pc1.cap', 'D:\\capture\\pc1.cap'],
      ['d:\\CAPTURE\\sub\\X.CAP', 'd:\\CAPTURE\\sub\\X.CAP'],
      ['D:/capture/pc1.cap', 'D:\\capture\\pc1.cap'],
    ];
    for (const [given, normalised] of cases)
      expect(parse(withStorage({ filePath: given }), WINDOWS).localFile).toBe(normalised);
  });

  it('accepts filePath and localPath together when they name the same file', () => {
    const same = parse(withStorage({ filePath: '/var/captures/a.cap', localPath: '/var/captures//a.cap' }));
    expect(same.localFile).toBe('/var/captures/a.cap');
    expect(same.storageLocation).toEqual({ filePath: '/var/captures/a.cap', localPath: '/var/captures//a.cap' });
    expect(
      parse(withStorage({ filePath: 'D:\\capture\\A.cap', localPath: 'd:\\capture\\a.cap' }), WINDOWS).localFile,
    ).toBe('d:\\capture\\a.cap');
  });
});

describe('parsePacketCaptureBody: rejections', () => {
  it('rejects bodies that are not { properties: {...} }', () => {
    for (const input of [null, undefined, 'x', 42, [], {}, { properties: null }]) {
      expectRejected(input, 'InvalidRequestFormat', 'properties');
    }
    expectRejected({ properties: [] }, 'InvalidRequestFormat', 'properties');
    expectRejected({ properties: 'x' }, 'InvalidRequestFormat', 'properties');
  });

  it('requires a virtual machine target', () => {
    const { storageLocation } = body().properties;
    expect(expectRejected({ properties: { storageLocation } }, 'InvalidTarget', 'target').message).toContain(
      'required',
    );
    expectRejected(body({ target: '' }), 'InvalidTarget', 'target');
    expectRejected(body({ target: null }), 'InvalidTarget', 'target');
    expectRejected(body({ target: 42 }), 'InvalidRequestFormat', 'target');
    expectRejected(body({ target: [VM] }), 'InvalidRequestFormat', 'target');
    expectRejected(body({ target: STORAGE }), 'InvalidTarget', 'target');
    expectRejected(body({ target: 'vm1' }), 'InvalidTarget', 'target');
    expectRejected(body({ target: `${VM}/extensions/x` }), 'InvalidTarget', 'target');
    expectRejected(body({ target: `${VM}${'x'.repeat(1024)}` }), 'InvalidRequestFormat', 'target');
  });

  it('refuses scale sets clearly, and other target types', () => {
    const vmss = expectRejected(body({ targetType: 'AzureVMSS' }), 'UnsupportedTargetType', 'targetType');
    expect(vmss.message).toContain('not supported yet');
    expectRejected(
      body({ targetType: 'azurevmss', target: VM.replace('virtualMachines', 'virtualMachineScaleSets') }),
      'UnsupportedTargetType',
      'targetType',
    );
    expectRejected(body({ targetType: 'AKS' }), 'InvalidTargetType', 'targetType');
    expectRejected(body({ targetType: 1 }), 'InvalidRequestFormat', 'targetType');
  });

  it('rejects a non-empty or malformed scope for a virtual machine', () => {
    expectRejected(body({ scope: { include: ['0'] } }), 'InvalidScope', 'scope.include');
    expectRejected(body({ scope: { exclude: ['1'] } }), 'InvalidScope', 'scope.exclude');
    expectRejected(body({ scope: 'all' }), 'InvalidRequestFormat', 'scope');
    expectRejected(body({ scope: { include: '0' } }), 'InvalidRequestFormat', 'scope.include');
    expectRejected(body({ scope: { include: [0] } }), 'InvalidRequestFormat', 'scope.include');
  });

  it('rejects limits out of range, fractions and wrong types', () => {
    const outOfRange: [string, unknown][] = [
      ['bytesToCapturePerPacket', -1],
      ['bytesToCapturePerPacket', 4294967296],
      ['bytesToCapturePerPacket', 1.5],
      ['totalBytesPerSession', -1],
      ['totalBytesPerSession', 4294967296],
      ['timeLimitInSeconds', 18001],
      ['timeLimitInSeconds', -5],
      ['timeLimitInSeconds', 0.5],
      ['preTriggerSeconds', 3601],
      ['preTriggerSeconds', -1],
    ];
    for (const [field, value] of outOfRange) {
      const err = expectRejected(body({ [field]: value }), 'InvalidCaptureLimit', field);
      expect(err.message).toContain(`${field} ${value} is not valid`);
    }
    for (const field of [
      'bytesToCapturePerPacket',
      'totalBytesPerSession',
      'timeLimitInSeconds',
      'preTriggerSeconds',
    ]) {
      for (const value of ['100', true, {}, [1]])
        expectRejected(body({ [field]: value }), 'InvalidRequestFormat', field);
    }
  });

  it("takes tripcap's fileFormat and comment, and refuses them malformed or pre-trigger with a ring", () => {
    expect(parse(body({ fileFormat: 'PCAPNG', comment: 'alert: {"a":1}' }))).toMatchObject({
      fileFormat: 'pcapng',
      comment: 'alert: {"a":1}',
    });
    const plain = parse(body({ fileFormat: 'pcap', comment: '' }));
    expect(plain.fileFormat).toBeUndefined();
    expect(plain.comment).toBeUndefined();
    expectRejected(body({ fileFormat: 'erf' }), 'InvalidFileFormat', 'fileFormat');
    expectRejected(body({ fileFormat: 1 }), 'InvalidRequestFormat', 'fileFormat');
    expectRejected(body({ comment: { a: 1 } }), 'InvalidRequestFormat', 'comment');
    expectRejected(body({ comment: 'x'.repeat(65_537) }), 'InvalidRequestFormat', 'comment');
    expectRejected(body({ comment: 'a\0b' }), 'InvalidRequestFormat', 'comment');
    const ring = { continuousCapture: true, storageLocation: { localPath: '/var/captures/ring.cap' } };
    expectRejected(body({ ...ring, preTriggerSeconds: 60 }), 'InvalidPreTrigger', 'preTriggerSeconds');
    expect(parse(body({ ...ring, preTriggerSeconds: 0 })).preTriggerSeconds).toBe(0);
  });

  it('rejects capture settings out of range or of the wrong type', () => {
    const continuous = { continuousCapture: true, storageLocation: { localPath: '/var/captures/ring.cap' } };
    const cases: [string, unknown, string][] = [
      ['fileCount', 10001, 'InvalidCaptureLimit'],
      ['fileCount', -1, 'InvalidCaptureLimit'],
      ['fileSizeInBytes', 4294967296, 'InvalidCaptureLimit'],
      ['sessionTimeLimitInSeconds', 604801, 'InvalidCaptureLimit'],
      ['fileCount', '10', 'InvalidRequestFormat'],
    ];
    for (const [field, value, code] of cases) {
      expectRejected(body({ ...continuous, captureSettings: { [field]: value } }), code, `captureSettings.${field}`);
    }
    expectRejected(body({ ...continuous, captureSettings: [] }), 'InvalidRequestFormat', 'captureSettings');
    expectRejected(body({ continuousCapture: 'true' }), 'InvalidRequestFormat', 'continuousCapture');
    expectRejected(body({ continuousCapture: 1 }), 'InvalidRequestFormat', 'continuousCapture');
  });

  it('requires a storage account or a local file, as Azure does', () => {
    expectRejected({ properties: { target: VM } }, 'InvalidStorageLocation', 'storageLocation');
    expectRejected(withStorage({}), 'InvalidStorageLocation', 'storageLocation');
    expectRejected(withStorage({ storagePath: BLOB }), 'InvalidStorageLocation', 'storageLocation');
    expectRejected(body({ storageLocation: 'D:\\capture\\pc1.cap' }), 'InvalidRequestFormat', 'storageLocation');
    expectRejected(withStorage({ filePath: 7 }), 'InvalidRequestFormat', 'storageLocation.filePath');
    expectRejected(withStorage({ storageId: ['x'] }), 'InvalidRequestFormat', 'storageLocation.storageId');
  });

  it('rejects storage ids that are not storage accounts', () => {
    const bad = [
      VM,
      'pcstore',
      `${STORAGE}/blobServices/default`,
      STORAGE.replace('pcstore', 'PC_store'),
      STORAGE.replace('pcstore', 'ab'),
      STORAGE.replace('Microsoft.Storage', 'Microsoft.Compute'),
    ];
    for (const storageId of bad)
      expectRejected(withStorage({ storageId }), 'InvalidStorageLocation', 'storageLocation.storageId');
  });

  it('rejects storage paths that are not plain http(s) URLs', () => {
    const bad = [
      'ftp://pcstore.blob.core.windows.net/capture/pc1.cap',
      'file:///etc/passwd',
      'javascript:alert(1)',
      'not a url',
      '/capture/pc1.cap',
      `${BLOB}?sv=2020&sig=secret`,
      `${BLOB}#x`,
      'https://user:password@pcstore.blob.core.windows.net/capture/pc1.cap',
      'https:///capture/pc1.cap',
    ];
    for (const storagePath of bad) {
      expectRejected(
        withStorage({ storageId: STORAGE, storagePath }),
        'InvalidStorageLocation',
        'storageLocation.storagePath',
      );
    }
    expect(
      parse(withStorage({ storageId: STORAGE, storagePath: 'http://127.0.0.1:10000/devstoreaccount1/c/pc1.cap' }))
        .storageLocation.storagePath,
    ).toBe('http://127.0.0.1:10000/devstoreaccount1/c/pc1.cap');
  });

  it('rejects Linux capture files outside the root or with unsafe names', () => {
    const bad = [
      '/var/captures/../etc/x.cap',
      '/var/captures/a/../b.cap',
      '/etc/x.cap',
      '/var/capturesX/a.cap',
      '/var/captures',
      '/var/captures/',
      '/var/captures/x.cap/',
      'var/captures/x.cap',
      './x.cap',
      'x.cap',
      '/var/captures/x.pcap',
      '/var/captures/x.CAP',
      '/var/captures/x',
      '/var/captures/.cap',
      '/var/captures/a.cap\u0000.txt',
      '/var/captures/sub dir/a.cap',
      '/var/captures/a\\b.cap',
      'D:\\capture\\pc1.cap',
      `/var/captures/${'a'.repeat(1020)}.cap`,
    ];
    for (const filePath of bad) {
      const err = rejection(withStorage({ filePath }));
      expect([err.code, err.target], filePath).toEqual(
        filePath.length > 1024
          ? ['InvalidRequestFormat', 'storageLocation.filePath']
          : ['InvalidStorageLocation', 'storageLocation.filePath'],
      );
      expect(rejection(withStorage({ localPath: filePath })).target).toBe('storageLocation.localPath');
    }
    const outside = expectRejected(
      withStorage({ filePath: '/tmp/x.cap' }),
      'InvalidStorageLocation',
      'storageLocation.filePath',
    );
    expect(outside.message).toContain('not under /var/captures');
    const dots = expectRejected(
      withStorage({ filePath: '/var/captures/../etc/x.cap' }),
      'InvalidStorageLocation',
      'storageLocation.filePath',
    );
    expect(dots.message).toContain("must not contain '..'");
  });

  it('rejects Windows capture files outside the root or with unsafe names', () => {
    const bad = [
      'D:\\capture\\..\\x.cap',
      'C:\\capture\\x.cap',
      'D:\\captureX\\x.cap',
      'D:\\capture',
      'D:\\x.cap',
      '\\\\server\\share\\capture\\x.cap',
      '\\\\?\\D:\\capture\\x.cap',
      'capture\\x.cap',
      'D:capture\\x.cap',
      '/var/captures/x.cap',
      'D:\\capture\\nul.cap',
      'D:\\capture\\COM1.cap',
      'D:\\capture\\a:b.cap',
      'D:\\capture\\dir.\\x.cap',
      'D:\\capture\\x.txt',
      'D:\\capture\\a b.cap',
    ];
    for (const filePath of bad) {
      expect(rejection(withStorage({ filePath }), WINDOWS).target, filePath).toBe('storageLocation.filePath');
    }
  });

  it('rejects filePath with continuous capture, and filePath and localPath naming different files', () => {
    const err = expectRejected(
      body({ continuousCapture: true, storageLocation: { filePath: '/var/captures/a.cap' } }),
      'InvalidStorageLocation',
      'storageLocation.filePath',
    );
    expect(err.message).toContain('localPath');
    expect(parse(body({ continuousCapture: false })).continuousCapture).toBe(false);
    expectRejected(
      withStorage({ filePath: '/var/captures/a.cap', localPath: '/var/captures/b.cap' }),
      'InvalidStorageLocation',
      'storageLocation.localPath',
    );
  });

  it('passes filter errors through with their targets', () => {
    expectRejected(body({ filters: [{ localPort: '1-2-3' }] }), 'InvalidFilter', 'filters[0].localPort');
    expectRejected(body({ filters: 'tcp' }), 'InvalidFilter', 'filters');
  });

  describe('shell and path metacharacters in every string field', () => {
    const nasty = [';', '$(id)', '`id`', "'", '"', '\n', ' ', '|', '&', '>', '*', '\r', '\t', '\u0000'];
    const fields: [string, (s: string) => Record<string, unknown>, string][] = [
      ['target', (s) => body({ target: `${VM}${s}` }), 'target'],
      ['target (inside)', (s) => body({ target: VM.replace('rg2', `rg${s}2`) }), 'target'],
      ['targetType', (s) => body({ targetType: `AzureVM${s}` }), 'targetType'],
      ['storageId', (s) => withStorage({ storageId: `${STORAGE}${s}` }), 'storageLocation.storageId'],
      [
        'storagePath',
        (s) => withStorage({ storageId: STORAGE, storagePath: BLOB.replace('pc1', `pc${s}1`) }),
        'storageLocation.storagePath',
      ],
      ['filePath', (s) => withStorage({ filePath: `/var/captures/a${s}b.cap` }), 'storageLocation.filePath'],
      ['filePath folder', (s) => withStorage({ filePath: `/var/captures/d${s}/b.cap` }), 'storageLocation.filePath'],
      ['localPath', (s) => withStorage({ localPath: `/var/captures/a${s}b.cap` }), 'storageLocation.localPath'],
      ['protocol', (s) => body({ filters: [{ protocol: `TCP${s}` }] }), 'filters[0].protocol'],
      ['localIPAddress', (s) => body({ filters: [{ localIPAddress: `10.0.0.1${s}` }] }), 'filters[0].localIPAddress'],
      ['remoteIPAddress', (s) => body({ filters: [{ remoteIPAddress: `${s}::1` }] }), 'filters[0].remoteIPAddress'],
      ['localPort', (s) => body({ filters: [{ localPort: `80${s}` }] }), 'filters[0].localPort'],
      ['remotePort', (s) => body({ filters: [{ remotePort: `80${s}443` }] }), 'filters[0].remotePort'],
    ];
    it.each(fields)('%s', (_name, make, target) => {
      // ';' separates list entries in filter values, so it is only rejected in the other fields.
      const values = target.startsWith('filters') ? nasty.filter((s) => s !== ';') : nasty;
      for (const s of values) expect(rejection(make(s)).target, JSON.stringify(s)).toBe(target);
    });

    it('Windows filePath and localPath', () => {
      for (const s of nasty) {
        for (const field of ['filePath', 'localPath']) {
          const input = withStorage({ [field]: `D:\\capture\\a${s}b.cap` });
          expect(rejection(input, WINDOWS).target, JSON.stringify(s)).toBe(`storageLocation.${field}`);
        }
      }
    });
  });
});

describe('snaplenFor', () => {
  it('maps 0 (whole packet) and values over tcpdump’s maximum to 262144', () => {
    expect(MAX_SNAPLEN).toBe(262144);
    expect(snaplenFor(0)).toBe(262144);
    expect(snaplenFor(1)).toBe(1);
    expect(snaplenFor(34)).toBe(34);
    expect(snaplenFor(10000)).toBe(10000);
    expect(snaplenFor(262144)).toBe(262144);
    expect(snaplenFor(262145)).toBe(262144);
    expect(snaplenFor(4294967295)).toBe(262144);
  });
});

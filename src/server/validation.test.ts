/**
 * Bad input gets an ARM-style 4xx `{"error":{"code","message"}}` whose message names what is wrong and how to put it
 * right, and nothing is created: no capture, no operation, no agent job, no file, no watcher, no VM. The per-location
 * session limit holds under concurrent creates.
 */
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ApiHarness,
  armPath,
  createApiHarness,
  pcapBytes,
  type Reply,
  SUBSCRIPTION,
  sha256,
  storageAccountId,
  vmId,
} from '../../test/api-harness.js';

const LOCATION = 'westeurope';
const WATCHER = { resourceGroup: 'NetworkWatcherRG', watcher: `NetworkWatcher_${LOCATION}` };
const captureUrl = (name = 'pc1') => armPath({ ...WATCHER, capture: name });
const listUrl = armPath(WATCHER).replace('?', '/packetCaptures?');

type Body = { properties: Record<string, unknown> };
type Agent = Awaited<ReturnType<ApiHarness['registerVm']>>;

function validBody(target: string): Body {
  return {
    properties: {
      target,
      storageLocation: { storageId: storageAccountId() },
      filters: [{ protocol: 'TCP', localIPAddress: '10.0.0.4', localPort: '80' }],
      timeLimitInSeconds: 60,
    },
  };
}

/** What every refusal looks like: the status, ARM's error body only, a stable code, a message to act on. */
function expectArmError(reply: Reply, status: number, code: string | RegExp, message: RegExp) {
  expect(reply.status, reply.text).toBe(status);
  expect(reply.headers['content-type']).toMatch(/^application\/json/);
  expect(Object.keys(reply.json ?? {})).toEqual(['error']);
  const { error } = reply.json;
  if (typeof code === 'string') expect(error.code).toBe(code);
  else expect(error.code).toMatch(code);
  expect(typeof error.message).toBe('string');
  expect(error.message.length).toBeGreaterThan(15);
  expect(error.message).toMatch(message);
  expect(error.message).not.toMatch(/\n\s+at |node_modules|FST_ERR/); // no stack traces or internals
}

describe('bad packet capture requests are refused and create nothing', () => {
  let h: ApiHarness;
  let agent: Agent;
  let target: string;
  let baseline: Awaited<ReturnType<ApiHarness['counts']>>;

  beforeAll(async () => {
    h = await createApiHarness();
    agent = await h.registerVm({ name: 'vm1', resourceGroup: 'rg2', location: LOCATION });
    target = agent.vmId;
    baseline = await h.counts();
  });
  afterAll(async () => {
    await h?.close();
  });

  async function expectNothingCreated() {
    expect(await h.counts()).toEqual(baseline);
    const list = await h.request({ method: 'GET', url: listUrl });
    expect(list.status).toBe(200);
    expect(list.json).toEqual({ value: [] });
    const jobs = await agent.jobs();
    expect(jobs.json).toEqual({ jobs: [] });
  }

  async function expectRefused(reply: Reply, code: string | RegExp, message: RegExp, status = 400) {
    expectArmError(reply, status, code, message);
    await expectNothingCreated();
  }

  const put = (body: unknown, name = 'pc1') => h.request({ method: 'PUT', url: captureUrl(name), body });
  const withProps = (patch: Record<string, unknown>) => {
    const body = validBody(target);
    Object.assign(body.properties, patch);
    for (const [key, value] of Object.entries(patch)) if (value === undefined) delete body.properties[key];
    return body;
  };
  const withFilter = (filter: Record<string, unknown>) =>
    withProps({ filters: [{ protocol: 'TCP', localIPAddress: '10.0.0.4', localPort: '80', ...filter }] });
  const withStorage = (storageLocation: Record<string, unknown>) => withProps({ storageLocation });

  describe('unknown or unsupported target', () => {
    it.each([
      [
        'a VM no agent registered',
        () => withProps({ target: vmId('rg2', 'ghost') }),
        'TargetNotFound',
        /'.*ghost'.*tripcap agent.*tripcap vm list/,
      ],
      [
        'a VM in another resource group',
        () => withProps({ target: vmId('rg3', 'vm1') }),
        'TargetNotFound',
        /rg3\/.*vm1/,
      ],
      [
        'a storage account as target',
        () => withProps({ target: storageAccountId() }),
        'InvalidTarget',
        /not a virtual machine resource id/,
      ],
      ['no target', () => withProps({ target: undefined }), 'InvalidTarget', /target is required/],
      ['a number as target', () => withProps({ target: 42 }), 'InvalidRequestFormat', /target must be a string/],
      [
        'a scale set',
        () => withProps({ targetType: 'AzureVMSS' }),
        'UnsupportedTargetType',
        /AzureVMSS.*targetType to 'AzureVM'/,
      ],
      [
        'an unknown targetType',
        () => withProps({ targetType: 'Container' }),
        'InvalidTargetType',
        /'Container'.*use 'AzureVM'/,
      ],
      [
        'scale set instances for a VM',
        () => withProps({ scope: { include: ['0'] } }),
        'InvalidScope',
        /scope\.include/,
      ],
    ])('%s', async (_label, body, code, message) => {
      await expectRefused(await put(body()), code, message);
    });
  });

  describe('malformed filters', () => {
    it.each([
      ['localPort', '1-2-3', /filters\[0\]\.localPort '1-2-3' is not valid: use one port/],
      ['localPort', '80;90-100', /filters\[0\]\.localPort '80;90-100' is not valid/],
      ['remotePort', '70000', /filters\[0\]\.remotePort '70000' is not valid: use one port \(0-65535\)/],
      ['remotePort', '-1', /remotePort '-1'/],
      ['localIPAddress', '1.2.3', /filters\[0\]\.localIPAddress '1\.2\.3' is not valid: use one IPv4 or IPv6 address/],
      [
        'remoteIPAddress',
        '10.0.0.1-10.0.0.0',
        /'10\.0\.0\.1-10\.0\.0\.0' is not valid \(the range starts after it ends\)/,
      ],
      ['remoteIPAddress', '10.0.0.1-::1', /mixes IPv4 and IPv6/],
      ['remoteIPAddress', '10.0.0.0/8', /'10\.0\.0\.0\/8' is not valid/],
      ['remoteIPAddress', 'fe80::1%eth0', /'fe80::1%eth0' is not valid/],
      ['localIPAddress', '999.0.0.1', /'999\.0\.0\.1' is not valid/],
      ['protocol', 'ICMP', /filters\[0\]\.protocol 'ICMP' is not valid: use 'TCP', 'UDP' or 'Any'/],
      ['localPort', 80, /filters\[0\]\.localPort must be a string/],
      ['remotePorts', '80', /unknown field 'remotePorts': use protocol, localIPAddress/],
    ])('%s %j', async (field, value, message) => {
      await expectRefused(await put(withFilter({ [field]: value })), 'InvalidFilter', message);
    });

    it('a filters value that is not an array, and too many filters', async () => {
      await expectRefused(await put(withProps({ filters: { protocol: 'TCP' } })), 'InvalidFilter', /must be an array/);
      const many = Array.from({ length: 65 }, () => ({ protocol: 'UDP', localPort: '53' }));
      await expectRefused(await put(withProps({ filters: many })), 'InvalidFilter', /65 entries: at most 64/);
    });
  });

  describe('shell and BPF metacharacters in any field', () => {
    const payloads = [
      ';reboot',
      '$(reboot)',
      '`reboot`',
      '|reboot',
      '&&reboot',
      ' or port 22',
      ' and not host 10.0.0.1',
      '\n-w /tmp/x',
      "'",
      '"',
      '>x',
      '\\',
      '*',
      '(',
      '!',
      '\u0000',
    ];
    // Each field with a valid value to append the payload to, and the codes it may be refused with.
    const fields: Array<[string, (p: string, vm: string) => Body, RegExp]> = [
      ['target', (p, vm) => withProps({ target: `${vm}${p}` }), /^(InvalidTarget|TargetNotFound)$/],
      ['targetType', (p) => withProps({ targetType: `AzureVM${p}` }), /^InvalidTargetType$/],
      ['storageId', (p) => withStorage({ storageId: `${storageAccountId()}${p}` }), /^InvalidStorageLocation$/],
      [
        'storagePath',
        (p) =>
          withStorage({ storageId: storageAccountId(), storagePath: `https://a.blob.core.windows.net/c/x${p}.cap` }),
        /^InvalidStorageLocation$/,
      ],
      ['filePath', (p) => withStorage({ filePath: `/var/captures/x${p}.cap` }), /^InvalidStorageLocation$/],
      ['localPath', (p) => withStorage({ localPath: `/var/captures/x${p}.cap` }), /^InvalidStorageLocation$/],
      ['protocol', (p) => withFilter({ protocol: `TCP${p}` }), /^InvalidFilter$/],
      ['localIPAddress', (p) => withFilter({ localIPAddress: `10.0.0.4${p}` }), /^InvalidFilter$/],
      ['remoteIPAddress', (p) => withFilter({ remoteIPAddress: `10.0.0.9${p}` }), /^InvalidFilter$/],
      ['localPort', (p) => withFilter({ localPort: `80${p}` }), /^InvalidFilter$/],
      ['remotePort', (p) => withFilter({ remotePort: `443${p}` }), /^InvalidFilter$/],
      ['bytesToCapturePerPacket', (p) => withProps({ bytesToCapturePerPacket: `0${p}` }), /^InvalidRequestFormat$/],
      [
        'captureSettings.fileCount',
        (p) =>
          withProps({
            continuousCapture: true,
            storageLocation: { localPath: '/var/captures/ring.cap' },
            captureSettings: { fileCount: `2${p}` },
          }),
        /^InvalidRequestFormat$/,
      ],
    ];
    const cases = fields.flatMap(([field, build, codes]) =>
      payloads.map((payload) => ({ field, payload, build, codes })),
    );
    it.each(cases)('$field + $payload', async ({ field, payload, build, codes }) => {
      const reply = await put(build(payload, target));
      // The message points at the field that is wrong (a target's name, or the field's own path).
      const where = field === 'target' ? /target|vm1/ : new RegExp(field.replace('.', '\\.'));
      await expectRefused(reply, codes, where);
    });
  });

  describe('limits out of range', () => {
    const ring = { continuousCapture: true, storageLocation: { localPath: '/var/captures/ring.cap' } };
    it.each([
      [
        { bytesToCapturePerPacket: -1 },
        'InvalidCaptureLimit',
        /bytesToCapturePerPacket -1 is not valid: use a whole number from 0 to 4294967295/,
      ],
      [{ bytesToCapturePerPacket: 4294967296 }, 'InvalidCaptureLimit', /bytesToCapturePerPacket 4294967296/],
      [{ bytesToCapturePerPacket: 1.5 }, 'InvalidCaptureLimit', /bytesToCapturePerPacket 1\.5/],
      [
        { bytesToCapturePerPacket: '100' },
        'InvalidRequestFormat',
        /bytesToCapturePerPacket must be an integer, not a string/,
      ],
      [{ totalBytesPerSession: -1 }, 'InvalidCaptureLimit', /totalBytesPerSession -1 .*0 or absent means 1073741824/],
      [{ totalBytesPerSession: 2 ** 32 }, 'InvalidCaptureLimit', /totalBytesPerSession 4294967296/],
      [
        { timeLimitInSeconds: 18001 },
        'InvalidCaptureLimit',
        /timeLimitInSeconds 18001 is not valid: use a whole number from 0 to 18000/,
      ],
      [{ timeLimitInSeconds: -5 }, 'InvalidCaptureLimit', /timeLimitInSeconds -5/],
      [{ timeLimitInSeconds: true }, 'InvalidRequestFormat', /timeLimitInSeconds must be an integer, not a boolean/],
      [
        { ...ring, captureSettings: { fileCount: 10001 } },
        'InvalidCaptureLimit',
        /captureSettings\.fileCount 10001 .* 0 to 10000/,
      ],
      [
        { ...ring, captureSettings: { fileSizeInBytes: -1 } },
        'InvalidCaptureLimit',
        /captureSettings\.fileSizeInBytes -1/,
      ],
      [
        { ...ring, captureSettings: { sessionTimeLimitInSeconds: 604801 } },
        'InvalidCaptureLimit',
        /sessionTimeLimitInSeconds 604801 .* 0 to 604800/,
      ],
      [{ preTriggerSeconds: 3601 }, 'InvalidCaptureLimit', /preTriggerSeconds 3601/],
      [{ continuousCapture: 'yes' }, 'InvalidRequestFormat', /continuousCapture must be true or false/],
    ])('%j', async (patch, code, message) => {
      await expectRefused(await put(withProps(patch)), code, message);
    });
  });

  describe('storage locations, and files outside the capture root', () => {
    it.each([
      [{}, /storageLocation needs a storageId .* or a filePath\/localPath .* under \/var\/captures/],
      [
        { filePath: '/etc/cron.d/x.cap' },
        /filePath '\/etc\/cron\.d\/x\.cap' is not valid: it is not under \/var\/captures/,
      ],
      [{ filePath: '/var/captures/../../etc/x.cap' }, /must not contain '\.\.'/],
      [{ filePath: '/var/capturesX/x.cap' }, /it is not under \/var\/captures/],
      [{ filePath: '/var/captures' }, /is not valid/],
      [{ filePath: '/var/captures/' }, /is not valid/],
      [{ filePath: 'x.cap' }, /it must start with '\/'/],
      [{ filePath: 'D:\\capture\\x.cap' }, /it must start with '\/'/],
      [{ filePath: '/var/captures/x.pcap' }, /the file name must end in '\.cap'/],
      [{ filePath: '/var/captures/.cap' }, /the file name must end in '\.cap'/],
      [{ filePath: '/var/captures/a b.cap' }, /'a b\.cap' is not an allowed file or folder name/],
      [{ localPath: '/tmp/x.cap' }, /localPath '\/tmp\/x\.cap' .* not under \/var\/captures/],
      [{ filePath: '/var/captures/a.cap', localPath: '/var/captures/b.cap' }, /name different files/],
      [{ storageId: vmId('rg2', 'vm1') }, /storageId .* is not a storage account id/],
      [{ storageId: storageAccountId(), storagePath: 'file:///etc/passwd' }, /storagePath .* use an https:\/\/ URL/],
      [
        { storageId: storageAccountId(), storagePath: 'https://a.blob.core.windows.net/c/x.cap?sig=1' },
        /no query string/,
      ],
      [
        { storageId: storageAccountId(), storagePath: `https://a.blob.core.windows.net/${'x'.repeat(1100)}` },
        /longer than 1024/,
      ],
    ])('%j', async (storageLocation, message) => {
      await expectRefused(
        await put(withStorage(storageLocation)),
        /^(InvalidStorageLocation|InvalidRequestFormat)$/,
        message,
      );
    });

    it('filePath with continuous capture', async () => {
      const body = withProps({ continuousCapture: true, storageLocation: { filePath: '/var/captures/r.cap' } });
      await expectRefused(await put(body), 'InvalidStorageLocation', /cannot be used with continuousCapture/);
    });
  });

  describe('names in the URL', () => {
    const body = () => validBody(target);
    const sub = `/subscriptions/${SUBSCRIPTION}`;
    const nw = (rg: string, watcher: string) =>
      `${sub}/resourceGroups/${rg}/providers/Microsoft.Network/networkWatchers/${watcher}`;
    it.each([
      ['..%2F..%2Fx', /Packet capture name '\.\.\/\.\.\/x' is not valid: use 1-90 letters/],
      ['..%252Fx', /Packet capture name '\.\.%2Fx'/],
      ['a;b', /Packet capture name 'a;b'/],
      ['%24(reboot)', /Packet capture name '\$\(reboot\)'/],
      ['%60id%60', /Packet capture name '`id`'/],
      ['a%20b', /Packet capture name 'a b'/],
      ['a%0Ab', /Packet capture name/],
      ['-x', /Packet capture name '-x'/],
      ['x.', /not ending with '\.'/],
      ['x'.repeat(91), /1-90 letters/],
    ])('packetCaptures/%s', async (name, message) => {
      const reply = await h.request({ method: 'PUT', url: captureUrl(name), body: body() });
      await expectRefused(reply, 'InvalidResourceName', message);
    });

    it.each([
      [
        'watcher a;b',
        `${nw('NetworkWatcherRG', 'a;b')}/packetCaptures/pc1`,
        'InvalidResourceName',
        /Network watcher name 'a;b'/,
      ],
      [
        'watcher ..%2F',
        `${nw('NetworkWatcherRG', '..%2Fx')}/packetCaptures/pc1`,
        'InvalidResourceName',
        /Network watcher name '\.\.\/x'/,
      ],
      [
        'resource group $(',
        `${nw('%24(reboot)', 'NetworkWatcher_westeurope')}/packetCaptures/pc1`,
        'InvalidResourceName',
        /Resource group '\$\(reboot\)'/,
      ],
      [
        'subscription $(',
        `/subscriptions/%24(x)/resourceGroups/rg/providers/Microsoft.Network/networkWatchers/nw/packetCaptures/pc1`,
        'InvalidSubscriptionId',
        /Subscription id '\$\(x\)' is not valid/,
      ],
    ])('%s', async (_label, path, code, message) => {
      const reply = await h.request({ method: 'PUT', url: `${path}?api-version=2024-05-01`, body: body() });
      await expectRefused(reply, code, message);
    });

    it.each([
      ['PUT', nw('rg1', 'a;b'), { location: LOCATION }, /Network watcher name 'a;b'/],
      ['PUT', nw('%24(reboot)', 'nw1'), { location: LOCATION }, /Resource group '\$\(reboot\)'/],
      ['PUT', nw('rg1', 'nw1'), { location: 'west;europe' }, /'location' as an Azure region name/],
      ['GET', nw('rg1', 'a;b'), undefined, /Network watcher name 'a;b'/],
      ['DELETE', nw('%24(x)', 'nw1'), undefined, /Resource group '\$\(x\)'/],
    ] as const)('watcher %s %s', async (method, path, watcherBody, message) => {
      const reply = await h.request({ method, url: `${path}?api-version=2024-05-01`, body: watcherBody });
      await expectRefused(reply, /^(InvalidResourceName|InvalidLocation)$/, message);
    });

    it('a second watcher in a location is refused as Azure does', async () => {
      const reply = await h.request({
        method: 'PUT',
        url: armPath({ resourceGroup: 'rg1', watcher: 'nw1' }),
        body: { location: LOCATION },
      });
      await expectRefused(
        reply,
        'NetworkWatcherCountLimitReached',
        /already has network watcher 'NetworkWatcher_westeurope'/,
      );
    });

    it('a blob path cannot climb out of the capture container', async () => {
      mkdirSync(join(h.dir, 'blobs', 'network-watcher-logs'), { recursive: true });
      writeFileSync(join(h.dir, 'secret.txt'), 'SECRET');
      writeFileSync(join(h.dir, 'blobs', 'secret.txt'), 'SECRET');
      for (const path of [
        '..%2F..%2Fsecret.txt',
        '..%2Fsecret.txt',
        '%2E%2E%2Fsecret.txt',
        'a/..%2F..%2F..%2Fsecret.txt',
      ]) {
        const reply = await h.request({ method: 'GET', url: `/blobs/network-watcher-logs/${path}` });
        expect(reply.text).not.toContain('SECRET');
        expectArmError(reply, 400, 'InvalidBlobName', /not a capture blob name/);
      }
    });
  });

  describe('bodies that are not a JSON object', () => {
    const raw = (payload: string | Buffer, contentType: string) =>
      h.request({ method: 'PUT', url: captureUrl(), payload, headers: { 'content-type': contentType } });

    it('malformed JSON', async () => {
      await expectRefused(
        await raw('{"properties": {"target": ', 'application/json'),
        'InvalidRequestFormat',
        /not valid JSON.*send a JSON object/,
      );
    });
    it('an empty JSON body', async () => {
      await expectRefused(
        await raw('', 'application/json'),
        'InvalidRequestFormat',
        /cannot be empty.*send a JSON object/,
      );
    });
    it('JSON that is not an object, or has no properties', async () => {
      for (const json of ['[]', '"x"', 'null', '42', '{}', '{"properties": []}']) {
        await expectRefused(await raw(json, 'application/json'), 'InvalidRequestFormat', /properties/);
      }
    });
    it('a __proto__ key (prototype poisoning)', async () => {
      const json = JSON.stringify(validBody(target)).replace(/^\{/, '{"__proto__": {"admin": true},');
      await expectRefused(await raw(json, 'application/json'), 'InvalidRequestFormat', /not valid JSON/);
    });
    it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/octet-stream', 'application/xml'])(
      'Content-Type %s',
      async (type) => {
        const reply = await raw(JSON.stringify(validBody(target)), type);
        await expectRefused(
          reply,
          'UnsupportedMediaType',
          /not accepted here: send the body as JSON with 'Content-Type: application\/json'/,
          415,
        );
      },
    );
    it('a body over the 1 MiB limit', async () => {
      const body = validBody(target);
      body.properties.padding = 'x'.repeat(1_100_000);
      const reply = await raw(JSON.stringify(body), 'application/json');
      await expectRefused(reply, 'RequestBodyTooLarge', /larger than 1048576 bytes/, 413);
    });
    it('an oversize body of another type is refused as well, not streamed in', async () => {
      const reply = await raw(Buffer.alloc(3_000_000, 1), 'application/octet-stream');
      await expectRefused(reply, 'UnsupportedMediaType', /application\/json/, 415);
    });
  });

  describe('paging', () => {
    it.each([
      ['$top=0', 'InvalidTop'],
      ['$top=1001', 'InvalidTop'],
      ['$top=abc', 'InvalidTop'],
      ['$skiptoken=-1', 'InvalidSkipToken'],
      ['$skiptoken=x;y', 'InvalidSkipToken'],
    ])('%s', async (query, code) => {
      const reply = await h.request({ method: 'GET', url: `${listUrl}&${query}` });
      await expectRefused(reply, code, /\$top|\$skiptoken/);
    });
  });

  it('the body these cases start from is itself valid (so each refusal is due to its one change)', async () => {
    const fresh = await createApiHarness();
    try {
      const vm = await fresh.registerVm({ name: 'vm1', resourceGroup: 'rg2', location: LOCATION });
      const reply = await fresh.request({ method: 'PUT', url: captureUrl(), body: validBody(vm.vmId) });
      expect(reply.status, reply.text).toBe(201);
      const ring = validBody(vm.vmId);
      Object.assign(ring.properties, {
        continuousCapture: true,
        storageLocation: { localPath: '/var/captures/ring.cap' },
        captureSettings: { fileCount: 2 },
      });
      expect((await fresh.request({ method: 'PUT', url: captureUrl('ring'), body: ring })).status).toBe(201);
    } finally {
      await fresh.close();
    }
  });
});

describe('bad input on the agent protocol', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await createApiHarness();
  });
  afterAll(async () => {
    await h?.close();
  });

  const register = (patch: Record<string, unknown>) =>
    h.request({
      method: 'POST',
      url: '/agent/v1/register',
      body: {
        name: 'vm1',
        resourceGroup: 'rg1',
        location: LOCATION,
        osType: 'Linux',
        hostname: 'vm1',
        nics: [],
        captureRoot: '/var/captures',
        version: 'test',
        ...patch,
      },
    });

  it.each([
    [{ osType: 'Windows', captureRoot: '/var/captures' }, /captureRoot: must be an absolute folder/],
    [{ osType: 'Linux', captureRoot: 'D:\\capture' }, /captureRoot: must be an absolute folder/],
    [{ captureRoot: '/var/../etc' }, /captureRoot/],
    [{ osType: 'Windows', captureRoot: 'D:\\capture\\..\\windows' }, /captureRoot/],
    [{ captureRoot: 'captures' }, /captureRoot/],
    [{ osType: 'Plan9' }, /osType/],
    [{ name: 'vm;1' }, /name: must be 1-90 letters/],
    [{ resourceGroup: '$(x)' }, /resourceGroup/],
    [{ location: 'west europe' }, /location/],
    [{ nics: [{ name: 'eth0;x', mac: '', ipAddresses: [] }] }, /nics/],
  ])('register %j', async (patch, message) => {
    expectArmError(await register(patch), 400, 'InvalidRequestFormat', message);
    expect((await h.counts()).vms).toBe(0);
  });

  it('accepts a Windows VM with a drive-letter capture root', async () => {
    const reply = await register({ name: 'win1', osType: 'Windows', captureRoot: 'D:\\capture' });
    expect(reply.status, reply.text).toBe(200);
    const vm = await h.request({
      method: 'GET',
      url: `/subscriptions/${SUBSCRIPTION}/resourceGroups/rg1/providers/Microsoft.Compute/virtualMachines/win1?api-version=2024-07-01`,
    });
    expect(vm.json.properties.storageProfile.osDisk.osType).toBe('Windows');
    // Its local files are checked against its own root, in its own path syntax.
    const url = armPath({ ...WATCHER, capture: 'w1' });
    const outside = await h.request({
      method: 'PUT',
      url,
      body: { properties: { target: vmId('rg1', 'win1'), storageLocation: { filePath: 'C:\\Windows\\x.cap' } } },
    });
    expectArmError(outside, 400, 'InvalidStorageLocation', /it is not under D:\\capture/);
    const inside = await h.request({
      method: 'PUT',
      url,
      body: { properties: { target: vmId('rg1', 'win1'), storageLocation: { filePath: 'd:/CAPTURE/x.cap' } } },
    });
    expect(inside.status, inside.text).toBe(201);
  });

  it('uploads whose bytes do not match their SHA-256, or that are not raw bytes', async () => {
    const vm = await h.registerVm({ name: 'vm2', resourceGroup: 'rg1', location: LOCATION });
    const create = await h.request({
      method: 'PUT',
      url: armPath({ ...WATCHER, capture: 'up1' }),
      body: validBody(vm.vmId),
    });
    expect(create.status, create.text).toBe(201);
    const { jobId } = (await vm.jobs()).json.jobs[0];
    await vm.status(jobId, { status: 'Running', time: new Date().toISOString() });
    const bytes = pcapBytes(3);
    const wrong = await h.request({
      method: 'PUT',
      url: `/agent/v1/captures/${jobId}/files/1`,
      token: vm.agentToken,
      payload: bytes,
      headers: {
        'content-type': 'application/octet-stream',
        'x-tripcap-sha256': sha256(Buffer.from('other bytes')),
        'x-tripcap-packets': '3',
      },
    });
    expectArmError(
      wrong,
      400,
      'ChecksumMismatch',
      /has SHA-256 [0-9a-f]{64}, expected [0-9a-f]{64}; nothing was stored/,
    );
    const asJson = await h.request({
      method: 'PUT',
      url: `/agent/v1/captures/${jobId}/files/1`,
      token: vm.agentToken,
      body: { bytes: 'x' },
    });
    expectArmError(asJson, 400, 'InvalidRequestFormat', /application\/octet-stream/);
    const badSeq = await vm.upload(jobId, 0, bytes, 3);
    expectArmError(badSeq, 400, 'InvalidRequestFormat', /seq/);
    const badJob = await vm.status('not-a-uuid', { status: 'Running', time: new Date().toISOString() });
    expectArmError(badJob, 400, 'InvalidJobId', /UUID/);
    const badStatus = await vm.status(jobId, { status: 'Exploded', time: 'x' } as never);
    expectArmError(badStatus, 400, 'InvalidRequestFormat', /status/);
    expect((await h.counts()).files).toBe(0);
    const blobs = join(h.dir, 'blobs');
    const stored = existsSync(blobs)
      ? readdirSync(blobs, { recursive: true, withFileTypes: true }).filter((e) => e.isFile())
      : [];
    expect(stored.map((e) => e.name)).toEqual([]); // nothing left behind in the store, not even a temp file
    const status = await h.request({
      method: 'POST',
      url: armPath({ ...WATCHER, capture: 'up1' }).replace('?', '/queryStatus?'),
    });
    expect(status.json.files).toEqual([]);
  });
});

describe('the per-location session limit', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await createApiHarness({ sessionsPerLocation: 5, databaseFile: true, yieldBetweenQueries: true });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('holds under 20 concurrent creates: exactly 5 succeed, the rest get 400 LimitExceeded and leave nothing', async () => {
    const vm = await h.registerVm({ name: 'vm1', resourceGroup: 'rg2', location: LOCATION });
    const other = await h.registerVm({ name: 'vm9', resourceGroup: 'rg2', location: 'eastus' });
    const replies = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        h.request({ method: 'PUT', url: captureUrl(`concurrent-${i}`), body: validBody(vm.vmId) }),
      ),
    );
    const created = replies.filter((r) => r.status === 201);
    const refused = replies.filter((r) => r.status !== 201);
    expect(created).toHaveLength(5);
    expect(refused).toHaveLength(15);
    for (const reply of refused) {
      // A quota, not throttling: 400 as Azure's Network RP answers count limits; 429 would invite blind retries.
      expectArmError(
        reply,
        400,
        'LimitExceeded',
        /Location 'westeurope' already has 5 active packet capture sessions, the limit: stop or wait for one to end/,
      );
      expect(reply.headers['retry-after']).toBeUndefined();
    }
    const counts = await h.counts();
    expect(counts.captures).toBe(5);
    expect(counts.operations).toBe(5);
    expect((await vm.jobs()).json.jobs).toHaveLength(5);
    expect((await h.request({ method: 'GET', url: listUrl })).json.value).toHaveLength(5);

    // Another location has its own limit.
    const elsewhere = await h.request({
      method: 'PUT',
      url: armPath({ resourceGroup: 'NetworkWatcherRG', watcher: 'NetworkWatcher_eastus', capture: 'east1' }),
      body: validBody(other.vmId),
    });
    expect(elsewhere.status, elsewhere.text).toBe(201);

    // The limit counts active sessions only: one that ends frees its place.
    const first = created[0]?.json.name as string;
    const stop = await h.request({ method: 'POST', url: captureUrl(first).replace('?', '/stop?') });
    expect(stop.status).toBe(202);
    const status = await h.request({ method: 'POST', url: captureUrl(first).replace('?', '/queryStatus?') });
    expect(status.json.packetCaptureStatus).toBe('Stopped');
    const again = await h.request({ method: 'PUT', url: captureUrl('after-stop'), body: validBody(vm.vmId) });
    expect(again.status, again.text).toBe(201);
    const full = await h.request({ method: 'PUT', url: captureUrl('one-too-many'), body: validBody(vm.vmId) });
    expectArmError(full, 400, 'LimitExceeded', /the limit/);
  });
});

/**
 * Azure's own Network Watcher packetCaptures examples (azure-rest-api-specs, kept verbatim in
 * test/fixtures/azure/nw-examples, copied from shared/) are accepted as they are and answered in the documented shape: every key of the
 * example's response body present with the same JSON type (extra keys allowed), and a documented status code.
 * The agent's side is driven by hand over the agent protocol, so Get, QueryStatus and Stop see realistic states.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness, pcapBytes, type Reply, sha256 } from '../../test/api-harness.js';

const EXAMPLES_DIR =
  process.env.TRIPCAP_NW_EXAMPLES ??
  resolve(fileURLToPath(new URL('.', import.meta.url)), '../../test/fixtures/azure/nw-examples');

interface Example {
  parameters: Record<string, unknown> & {
    'api-version': string;
    subscriptionId: string;
    resourceGroupName: string;
    networkWatcherName: string;
    packetCaptureName?: string;
    parameters?: unknown;
  };
  responses: Record<string, { body?: unknown; headers?: Record<string, string> }>;
}

/** The operations this test drives, by the example file's name (without the api-version prefix). */
const OPERATIONS = {
  Create: 'NetworkWatcherPacketCaptureCreate',
  Get: 'NetworkWatcherPacketCaptureGet',
  List: 'NetworkWatcherPacketCapturesList',
  QueryStatus: 'NetworkWatcherPacketCaptureQueryStatus',
  Stop: 'NetworkWatcherPacketCaptureStop',
  Delete: 'NetworkWatcherPacketCaptureDelete',
} as const;

function loadExamples(): Record<keyof typeof OPERATIONS, Example> & { files: string[] } {
  if (!existsSync(EXAMPLES_DIR)) {
    throw new Error(`Azure's examples are not at ${EXAMPLES_DIR}: set TRIPCAP_NW_EXAMPLES to the nw-examples folder`);
  }
  const files = readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.json'));
  const byOperation = (operation: string) => {
    const file = files.find((f) => f.replace(/^[0-9-]+_/, '') === `${operation}.json`);
    if (!file) throw new Error(`no example for ${operation} in ${EXAMPLES_DIR}`);
    return JSON.parse(readFileSync(join(EXAMPLES_DIR, file), 'utf8')) as Example;
  };
  return {
    files,
    Create: byOperation(OPERATIONS.Create),
    Get: byOperation(OPERATIONS.Get),
    List: byOperation(OPERATIONS.List),
    QueryStatus: byOperation(OPERATIONS.QueryStatus),
    Stop: byOperation(OPERATIONS.Stop),
    Delete: byOperation(OPERATIONS.Delete),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// "Same shape": every key of the documented body is present with the same JSON type; extra keys are allowed.

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function shapeMismatches(expected: unknown, actual: unknown, path = '$'): string[] {
  const want = jsonType(expected);
  const got = jsonType(actual);
  if (want !== got) return [`${path}: expected ${want}, got ${got}`];
  if (Array.isArray(expected)) {
    const items = actual as unknown[];
    return expected.flatMap((item, i) =>
      i < items.length ? shapeMismatches(item, items[i], `${path}[${i}]`) : [`${path}[${i}]: missing`],
    );
  }
  if (want === 'object') {
    const record = actual as Record<string, unknown>;
    return Object.entries(expected as Record<string, unknown>).flatMap(([key, value]) =>
      key in record ? shapeMismatches(value, record[key], `${path}.${key}`) : [`${path}.${key}: missing`],
    );
  }
  return [];
}

describe('the same-shape comparison', () => {
  it('reports missing keys, wrong types and short arrays, and allows extra keys', () => {
    const doc = { a: 1, b: { c: 'x', d: [{ e: true }] }, f: [] };
    expect(shapeMismatches(doc, { a: 2, b: { c: 'y', d: [{ e: false, extra: 1 }] }, f: [], g: 0 })).toEqual([]);
    expect(shapeMismatches(doc, { a: '1', b: { d: [] }, f: {} })).toEqual([
      '$.a: expected number, got string',
      '$.b.c: missing',
      '$.b.d[0]: missing',
      '$.f: expected array, got object',
    ]);
    expect(shapeMismatches({ a: null }, { a: 0 })).toEqual(['$.a: expected null, got number']);
  });
});

// ---------------------------------------------------------------------------------------------------------------

function capturePath(p: Example['parameters'], suffix = ''): string {
  return `/subscriptions/${p.subscriptionId}/resourceGroups/${p.resourceGroupName}/providers/Microsoft.Network/networkWatchers/${p.networkWatcherName}/packetCaptures${p.packetCaptureName ? `/${p.packetCaptureName}` : ''}${suffix}?api-version=${p['api-version']}`;
}

/** The path (and query) of an absolute URL the server handed out, checked to point back at the server. */
function localPath(url: unknown): string {
  expect(typeof url).toBe('string');
  const parsed = new URL(String(url));
  expect(parsed.protocol).toMatch(/^https?:$/);
  return `${parsed.pathname}${parsed.search}`;
}

/** The body Azure documents for a status (the example must have one). */
function documentedBody<T = unknown>(example: Example, status: string): T {
  const body = example.responses[status]?.body;
  if (body === undefined) throw new Error(`the example documents no body for ${status}`);
  return body as T;
}

function expectDocumented(example: Example, reply: Reply) {
  expect(Object.keys(example.responses), `status ${reply.status}: ${reply.text}`).toContain(String(reply.status));
}

function expectShape(documented: unknown, reply: Reply) {
  expect(reply.headers['content-type']).toMatch(/^application\/json/);
  expect(shapeMismatches(documented, reply.json), reply.text).toEqual([]);
}

describe("Azure's packetCaptures examples", () => {
  const ex = loadExamples();
  let h: ApiHarness;
  let agent: Awaited<ReturnType<ApiHarness['registerVm']>>;
  const created = ex.Create.parameters;
  const location = 'westeurope';

  beforeAll(async () => {
    h = await createApiHarness();
    // The examples' watcher nw1 (rg1) and their VM vm1 (rg2), registered as a Windows agent would: the example's
    // filePath is D:\capture\pc1.cap.
    const watcher = await h.request({
      method: 'PUT',
      url: `/subscriptions/${created.subscriptionId}/resourceGroups/rg1/providers/Microsoft.Network/networkWatchers/nw1?api-version=${created['api-version']}`,
      body: { location },
    });
    expect(watcher.status, watcher.text).toBe(201);
    agent = await h.registerVm({
      name: 'vm1',
      resourceGroup: 'rg2',
      location,
      osType: 'Windows',
      captureRoot: 'D:\\capture',
    });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('covers every example in the folder', () => {
    const handled = Object.values(OPERATIONS).map((operation) => `${operation}.json`);
    expect(ex.files.map((f) => f.replace(/^[0-9-]+_/, '')).sort()).toEqual(handled.sort());
  });

  let createJobId = '';
  let createOperation = '';
  const startTime = new Date(Date.now() - 5_000).toISOString();

  it('Create: 201, the documented body, Azure-AsyncOperation, and a start job for the agent', async () => {
    const reply = await h.request({ method: 'PUT', url: capturePath(created), body: created.parameters });
    expectDocumented(ex.Create, reply);
    expect(reply.status).toBe(201);
    const documented = documentedBody<{ id: string; name: string; properties: object }>(ex.Create, '201');
    expectShape(documented, reply);
    // The example's request and response name the same resource: so must ours, value for value.
    expect(reply.json.id).toBe(documented.id);
    expect(reply.json.name).toBe(documented.name);
    expect(reply.json.properties).toMatchObject(documented.properties);
    expect(reply.json.properties.provisioningState).toBe('Updating');
    expect(reply.json.properties.storageLocation).toEqual(
      (created.parameters as { properties: { storageLocation: object } }).properties.storageLocation,
    );

    const operation = localPath(reply.headers['azure-asyncoperation']);
    expect(operation).toMatch(
      new RegExp(
        `^/subscriptions/${created.subscriptionId}/providers/Microsoft\\.Network/locations/${location}/operations/[0-9a-f-]{36}\\?api-version=${created['api-version']}$`,
      ),
    );
    const pending = await h.request({ method: 'GET', url: operation });
    expect(pending.status).toBe(200);
    expect(pending.json.status).toBe('InProgress');
    createOperation = operation;

    const jobs = await agent.jobs();
    expect(jobs.status).toBe(200);
    expect(jobs.json.jobs).toHaveLength(1);
    const job = jobs.json.jobs[0];
    expect(job).toMatchObject({
      type: 'start',
      captureId: documented.id,
      localFile: 'D:\\capture\\pc1.cap',
      upload: true,
      snaplen: 10000,
      maxBytes: 100000,
      timeLimitSeconds: 100,
    });
    expect(job.bpf).toBe('tcp and ((src host 10.0.0.4 and src port 80) or (dst host 10.0.0.4 and dst port 80))');
    createJobId = job.jobId;
  });

  it('Get: 200 in the documented shape once the agent runs it', async () => {
    const running = await agent.status(createJobId, { status: 'Running', time: startTime });
    expect(running.status, running.text).toBe(200);
    const reply = await h.request({ method: 'GET', url: capturePath(ex.Get.parameters) });
    expectDocumented(ex.Get, reply);
    expect(reply.status).toBe(200);
    const documented = documentedBody<{ id: string; properties: object }>(ex.Get, '200');
    expectShape(documented, reply);
    expect(reply.json.id).toBe(documented.id);
    expect(reply.json.etag).toMatch(/^W\/"[^"]+"$/);
    const { provisioningState: _, ...asCreated } = documented.properties as Record<string, unknown>;
    expect(reply.json.properties).toMatchObject(asCreated);
    expect(reply.json.properties.provisioningState).toBe('Succeeded');
    const operation = await h.request({ method: 'GET', url: createOperation });
    expect(operation.json).toMatchObject({ status: 'Succeeded' });
  });

  const pcap = pcapBytes(7);

  it('QueryStatus: 200 in the documented shape, while running and once stopped', async () => {
    const url = capturePath(ex.QueryStatus.parameters, '/queryStatus');
    const whileRunning = await h.request({ method: 'POST', url });
    expectDocumented(ex.QueryStatus, whileRunning);
    expect(whileRunning.json).toMatchObject({
      name: 'pc1',
      packetCaptureStatus: 'Running',
      captureStartTime: startTime,
      packetCaptureError: [],
    });

    // The capture reaches its time limit (the example's stopReason); the agent reports it and uploads the file.
    const stopped = await agent.status(createJobId, {
      status: 'Stopped',
      time: new Date().toISOString(),
      stopReason: 'TimeExceeded',
      errors: [],
      progress: { bytes: pcap.length, packets: 7 },
    });
    expect(stopped.status, stopped.text).toBe(200);
    const upload = await agent.upload(createJobId, 1, pcap, 7);
    expect(upload.status, upload.text).toBe(201);

    const reply = await h.request({ method: 'POST', url });
    expectDocumented(ex.QueryStatus, reply);
    expect(reply.status).toBe(200);
    const documented = documentedBody<Record<string, unknown>>(ex.QueryStatus, '200');
    expectShape(documented, reply);
    expect(reply.json).toMatchObject({
      id: documented.id,
      name: documented.name,
      packetCaptureStatus: documented.packetCaptureStatus,
      stopReason: documented.stopReason,
      packetCaptureError: documented.packetCaptureError,
      captureStartTime: startTime,
    });
    expect(reply.json.files).toHaveLength(1);
    expect(reply.json.files[0]).toMatchObject({ seq: 1, size: pcap.length, packets: 7, sha256: sha256(pcap) });
    expect(reply.json.files[0].name).toMatch(
      /^subscriptions\/00000000-0000-0000-0000-000000000000\/resourcegroups\/rg2\/providers\/microsoft\.compute\/virtualmachines\/vm1\/\d{4}\/\d{2}\/\d{2}\/packetcapture_\d{2}_\d{2}_\d{2}_\d{3}\.cap$/,
    );
    const download = await h.request({ method: 'GET', url: localPath(reply.json.files[0].downloadUrl) });
    expect(download.status).toBe(200);
    expect(sha256(download.raw)).toBe(sha256(pcap));
  });

  let pc2JobId = '';

  it('Stop: 200 for a capture that already ended, 202 + Location while the agent stops a running one', async () => {
    const ended = await h.request({ method: 'POST', url: capturePath(ex.Stop.parameters, '/stop') });
    expectDocumented(ex.Stop, ended);
    expect(ended.status).toBe(200);

    // pc2 of the List example, created and started.
    const pc2 = documentedBody<{ value: Array<{ name: string; properties: object }> }>(ex.List, '200').value[1];
    expect(pc2?.name).toBe('pc2');
    const { provisioningState: _, ...parameters } = (pc2?.properties ?? {}) as Record<string, unknown>;
    const create = await h.request({
      method: 'PUT',
      url: capturePath({ ...ex.Stop.parameters, packetCaptureName: 'pc2' }),
      body: { properties: parameters },
    });
    expect(create.status, create.text).toBe(201);
    const start = (await agent.jobs()).json.jobs[0];
    expect(start).toMatchObject({ type: 'start', localFile: 'D:\\capture\\pc2.cap', upload: true, bpf: '' });
    pc2JobId = start.jobId;
    expect((await agent.status(pc2JobId, { status: 'Running', time: new Date().toISOString() })).status).toBe(200);

    const reply = await h.request({
      method: 'POST',
      url: capturePath({ ...ex.Stop.parameters, packetCaptureName: 'pc2' }, '/stop'),
    });
    expectDocumented(ex.Stop, reply);
    expect(reply.status).toBe(202);
    // The example's 202 carries a Location (an operationresults URL); ours points at the server, with our api-version.
    const location202 = localPath(reply.headers.location);
    expect(location202).toMatch(
      new RegExp(
        `^/subscriptions/${ex.Stop.parameters.subscriptionId}/providers/Microsoft\\.Network/locations/${location}/operationResults/[0-9a-f-]{36}\\?api-version=${ex.Stop.parameters['api-version']}$`,
      ),
    );
    expect((await h.request({ method: 'GET', url: location202 })).status).toBe(202);
    const asyncOperation = localPath(reply.headers['azure-asyncoperation']);
    expect((await h.request({ method: 'GET', url: asyncOperation })).json.status).toBe('InProgress');

    const stopJobs = (await agent.jobs()).json.jobs;
    expect(stopJobs).toEqual([{ type: 'stop', jobId: pc2JobId }]);
    const report = { status: 'Stopped' as const, time: new Date().toISOString(), stopReason: 'ManuallyStopped' };
    expect((await agent.status(pc2JobId, report)).status).toBe(200);
    const done = await h.request({ method: 'GET', url: location202 });
    expect(done.status).toBe(200);
    expect((await h.request({ method: 'GET', url: asyncOperation })).json.status).toBe('Succeeded');
  });

  it('List: 200 in the documented shape, both captures, no nextLink', async () => {
    const reply = await h.request({ method: 'GET', url: capturePath(ex.List.parameters) });
    expectDocumented(ex.List, reply);
    expect(reply.status).toBe(200);
    expectShape(documentedBody(ex.List, '200'), reply);
    expect(reply.json.value.map((c: { name: string }) => c.name)).toEqual(['pc1', 'pc2']);
    expect(reply.json.nextLink).toBeUndefined();
    const documented = documentedBody<{ value: Array<{ id: string }> }>(ex.List, '200').value;
    expect(reply.json.value.map((c: { id: string }) => c.id)).toEqual(documented.map((c) => c.id));
  });

  it('matches path segments and names case-insensitively, and takes any api-version or none', async () => {
    const documented = documentedBody<{ id: string }>(ex.Get, '200');
    const paths = [
      `/subscriptions/${created.subscriptionId}/resourcegroups/RG1/providers/microsoft.network/networkwatchers/NW1/packetcaptures/PC1?api-version=2016-09-01`,
      `/SUBSCRIPTIONS/${created.subscriptionId}/RESOURCEGROUPS/rg1/PROVIDERS/MICROSOFT.NETWORK/NETWORKWATCHERS/nw1/PACKETCAPTURES/pc1?api-version=2099-01-01-preview`,
      `/subscriptions/${created.subscriptionId}/resourceGroups/rg1/providers/Microsoft.Network/networkWatchers/nw1/packetCaptures/pc1`,
    ];
    for (const url of paths) {
      const reply = await h.request({ method: 'GET', url });
      expect(reply.status, url).toBe(200);
      expect(reply.json.id).toBe(documented.id);
    }
  });

  it("Delete: the example's own subscription and group; a documented status, then 204 once gone", async () => {
    const p = ex.Delete.parameters;
    expect(p.subscriptionId).toBe('subid');
    const watcher = await h.request({
      method: 'PUT',
      url: `/subscriptions/${p.subscriptionId}/resourceGroups/${p.resourceGroupName}/providers/Microsoft.Network/networkWatchers/${p.networkWatcherName}?api-version=${p['api-version']}`,
      body: { location },
    });
    expect(watcher.status, watcher.text).toBe(201);
    const vm = await h.registerVm({ name: 'vm1', resourceGroup: 'rg2', location, subscriptionId: p.subscriptionId });
    const create = await h.request({
      method: 'PUT',
      url: capturePath(p),
      body: { properties: { target: vm.vmId, storageLocation: { filePath: '/var/captures/pc1.cap' } } },
    });
    expect(create.status, create.text).toBe(201);

    const reply = await h.request({ method: 'DELETE', url: capturePath(p) });
    // 200 is ARM's answer for a synchronous delete; Azure's example documents 202 (async) and 204 (absent).
    expect(['200', ...Object.keys(ex.Delete.responses)], `status ${reply.status}`).toContain(String(reply.status));
    expect(reply.status).toBe(200);
    const again = await h.request({ method: 'DELETE', url: capturePath(p) });
    expectDocumented(ex.Delete, again);
    expect(again.status).toBe(204);
    const gone = await h.request({ method: 'GET', url: capturePath(p) });
    expect(gone.status).toBe(404);
    expect(gone.json.error.code).toBe('NotFound');
    const list = await h.request({ method: 'GET', url: capturePath({ ...p, packetCaptureName: undefined }) });
    expect(list.json).toEqual({ value: [] });
    // The other subscription's captures are untouched.
    const other = await h.request({ method: 'GET', url: capturePath(ex.List.parameters) });
    expect(other.json.value).toHaveLength(2);
  });
});

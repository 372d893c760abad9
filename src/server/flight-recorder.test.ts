import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness, vmId } from '../../test/api-harness.js';

const RECORDER = `${vmId('rg1', 'vm1')}/flightRecorder/default?api-version=2024-07-01`;

describe("a VM's flight recorder through the API and the agent protocol", () => {
  let h: ApiHarness;
  let agent: Awaited<ReturnType<ApiHarness['registerVm']>>;
  beforeAll(async () => {
    h = await createApiHarness();
    agent = await h.registerVm({ name: 'vm1', resourceGroup: 'rg1', location: 'local' });
  });
  afterAll(async () => {
    await h.close();
  });

  it.each([
    ['no properties', {}, 'properties'],
    ['enabled missing', { properties: {} }, 'properties.enabled'],
    ['enabled as text', { properties: { enabled: 'yes' } }, 'properties.enabled'],
    ['a ring under 4 MB', { properties: { enabled: true, maxBytes: 1_000_000 } }, 'properties.maxBytes'],
    ['snaplen 0', { properties: { enabled: true, snaplen: 0 } }, 'properties.snaplen'],
    ['age as text', { properties: { enabled: true, maxAgeSeconds: '60' } }, 'properties.maxAgeSeconds'],
    ['negative floor', { properties: { enabled: true, minFreeBytes: -1 } }, 'properties.minFreeBytes'],
  ])('refuses %s with a 400 naming the property', async (_name, body, target) => {
    const reply = await h.request({ method: 'PUT', url: RECORDER, body });
    expect(reply.status).toBe(400);
    expect(reply.json.error.target).toBe(target);
    expect((await h.request({ method: 'GET', url: RECORDER })).json.properties.enabled).toBe(false);
  });

  it('is off until set; set, it reaches the agent with its heartbeat, and shows what the agent reports', async () => {
    expect((await agent.heartbeat({ running: [], progress: {} })).json.flightRecorder).toBeNull();
    const put = await h.request({
      method: 'PUT',
      url: RECORDER,
      body: { properties: { enabled: true, maxBytes: 8_000_000 } },
    });
    expect(put.status).toBe(200);
    const settings = {
      enabled: true,
      snaplen: 128,
      maxBytes: 8_000_000,
      maxAgeSeconds: 900,
      minFreeBytes: 1_000_000_000,
    };
    expect(put.json).toMatchObject({
      name: 'default',
      type: 'Tripcap/flightRecorder',
      properties: { ...settings, status: null },
    });

    const report = {
      state: 'Running' as const,
      stopReason: null,
      message: null,
      bytesOnDisk: 123_456,
      files: 2,
      oldestPacketTime: '2026-11-29T10:00:00.000Z',
      newestPacketTime: '2026-11-29T10:05:00.000Z',
    };
    const beat = await agent.heartbeat({ running: [], progress: {}, flightRecorder: report } as never);
    expect(beat.json.flightRecorder).toEqual(settings);
    expect((await h.request({ method: 'GET', url: RECORDER })).json.properties.status).toEqual(report);

    const { token: reader } = await h.tokenFor('reader');
    expect((await h.request({ method: 'GET', url: RECORDER, token: reader })).status).toBe(200);
    expect(
      (await h.request({ method: 'PUT', url: RECORDER, token: reader, body: { properties: { enabled: false } } }))
        .status,
    ).toBe(403);
    const missing = await h.request({ method: 'GET', url: RECORDER.replace('vm1', 'ghost') });
    expect(missing.status).toBe(404);
  });
});

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ApiHarness, createApiHarness, SUBSCRIPTION } from '../../../test/api-harness.js';

describe('token management API', () => {
  let h: ApiHarness;
  beforeEach(async () => {
    h = await createApiHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const vms = `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Compute/virtualMachines?api-version=2024-07-01`;

  it('creates a token whose secret is shown once, lists tokens without secrets, and revokes', async () => {
    const created = await h.request({
      method: 'POST',
      url: '/tripcap/v1/tokens',
      body: { name: 'grafana', role: 'reader' },
    });
    expect(created.status).toBe(201);
    expect(created.json).toMatchObject({ name: 'grafana', role: 'reader', token: expect.stringMatching(/^tct_/) });
    const reader = created.json.token as string;

    expect((await h.request({ method: 'GET', url: vms, token: reader })).status).toBe(200);
    expect(
      (
        await h.request({
          method: 'POST',
          url: '/tripcap/v1/tokens',
          token: reader,
          body: { name: 'x', role: 'admin' },
        })
      ).status,
    ).toBe(403);

    const list = await h.request({ method: 'GET', url: '/tripcap/v1/tokens' });
    expect(list.status).toBe(200);
    expect(list.text).not.toContain(reader.slice(-43));
    expect(list.json.value.map((t: { name: string }) => t.name)).toContain('grafana');

    expect((await h.request({ method: 'DELETE', url: `/tripcap/v1/tokens/${created.json.id}` })).status).toBe(200);
    expect((await h.request({ method: 'GET', url: vms, token: reader })).status).toBe(401);
    expect((await h.request({ method: 'DELETE', url: `/tripcap/v1/tokens/${created.json.id}` })).status).toBe(204);
  });

  it('refuses agent tokens, bad names and bad ids with a 400 that says why', async () => {
    for (const body of [{ name: 'a', role: 'agent' }, { name: 'a b', role: 'reader' }, { name: 'a' }, {}]) {
      const reply = await h.request({ method: 'POST', url: '/tripcap/v1/tokens', body });
      expect(reply.status).toBe(400);
      expect(reply.json.error.code).toBe('InvalidRequestFormat');
    }
    const bad = await h.request({ method: 'DELETE', url: '/tripcap/v1/tokens/..%2Fx' });
    expect(bad.status).toBe(400);
    expect(bad.json.error.code).toBe('InvalidTokenId');
  });
});

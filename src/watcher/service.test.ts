import { afterEach, describe, expect, it } from 'vitest';
import { type ApiHarness, armPath, createApiHarness, storageAccountId } from '../../test/api-harness.js';

// Job dispatch to agents: a job is handed out once, the long-poll wakes when work arrives, and a job whose answer
// may have been lost is handed out again after a while.
describe('agent job dispatch', () => {
  let h: ApiHarness;
  afterEach(async () => {
    await h?.close();
  });

  async function setup(jobRedeliveryMs: number) {
    h = await createApiHarness({ jobRedeliveryMs });
    const agent = await h.registerVm({ name: 'vm1', resourceGroup: 'rg1', location: 'westeurope' });
    const create = (name: string) =>
      h.request({
        method: 'PUT',
        url: armPath({ resourceGroup: 'NetworkWatcherRG', watcher: 'NetworkWatcher_westeurope', capture: name }),
        body: { properties: { target: agent.vmId, storageLocation: { storageId: storageAccountId() } } },
      });
    return { agent, create };
  }

  it('hands a job out once, and again only after the redelivery time', async () => {
    const { agent, create } = await setup(300);
    expect((await create('pc1')).status).toBe(201);
    const first = (await agent.jobs()).json.jobs;
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ type: 'start', upload: true });
    expect((await agent.jobs()).json.jobs).toEqual([]);
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect((await agent.jobs()).json.jobs.map((j: { jobId: string }) => j.jobId)).toEqual([first[0].jobId]);
  });

  it('wakes a waiting long-poll as soon as a capture is created', async () => {
    const { agent, create } = await setup(10_000);
    const started = Date.now();
    const poll = agent.jobs(20);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect((await create('pc2')).status).toBe(201);
    const jobs = (await poll).json.jobs;
    expect(jobs).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});

import { afterEach, describe, expect, it } from 'vitest';
import { type ApiHarness, armPath, createApiHarness, pcapBytes, storageAccountId } from '../../test/api-harness.js';

// Every capture file that reaches the store gets its capture analysed, by the real analysis engine; the report is
// served with the capture's id.
describe('capture reports', () => {
  let h: ApiHarness;
  afterEach(async () => {
    await h?.close();
  });

  const capture = (name: string) =>
    armPath({ resourceGroup: 'NetworkWatcherRG', watcher: 'NetworkWatcher_westeurope', capture: name });
  const reportOf = (name: string) => h.request({ method: 'GET', url: capture(name).replace('?', '/report?') });

  async function uploadedCapture(
    name: string,
    files: Array<{ packets: number }>,
    properties: Record<string, unknown> = {},
  ) {
    const agent = await h.registerVm({ name: 'vm1', resourceGroup: 'rg1', location: 'westeurope' });
    const create = await h.request({
      method: 'PUT',
      url: capture(name),
      body: { properties: { target: agent.vmId, storageLocation: { storageId: storageAccountId() }, ...properties } },
    });
    expect(create.status).toBe(201);
    expect((await reportOf(name)).json).toEqual({ status: 'NotStarted' });
    const [job] = (await agent.jobs()).json.jobs as Array<{ jobId: string }>;
    const jobId = job?.jobId ?? '';
    await agent.status(jobId, { status: 'Running', time: new Date().toISOString() });
    await agent.status(jobId, { status: 'Stopped', time: new Date().toISOString(), stopReason: 'ManuallyStopped' });
    for (const [i, file] of files.entries()) {
      const upload = await agent.upload(jobId, i + 1, pcapBytes(file.packets), file.packets);
      expect(upload.status).toBe(201);
    }
    await h.reports?.idle();
  }

  it('analyses an uploaded file and serves the report with the capture', async () => {
    h = await createApiHarness({ reports: true });
    await uploadedCapture('pc1', [{ packets: 12 }]);
    const reply = await reportOf('pc1');
    expect(reply.status).toBe(200);
    expect(reply.json.status).toBe('Succeeded');
    expect(reply.json.report.summary.packets).toBe(12);
    expect(reply.json.report.summary.bytes).toBe(12 * 46);
    // The VM's NIC address (10.0.0.4) is the captured host: its UDP datagrams are outbound.
    expect(reply.json.report.hosts.source).toBe('given');
  });

  it('analyses the files of a ring as one capture', async () => {
    h = await createApiHarness({ reports: true });
    await uploadedCapture('ring', [{ packets: 5 }, { packets: 7 }], {
      continuousCapture: true,
      captureSettings: { fileCount: 2, fileSizeInBytes: 1_000_000, sessionTimeLimitInSeconds: 60 },
    });
    const reply = await reportOf('ring');
    expect(reply.json.status).toBe('Succeeded');
    expect(reply.json.report.summary.packets).toBe(12);
  });

  it('records a failed analysis with its reason, and resumes pending ones after a restart', async () => {
    h = await createApiHarness({ reports: true });
    await uploadedCapture('pc2', [{ packets: 3 }]);
    await h.db.updateTable('capture_reports').set({ status: 'Pending', report: null }).execute();
    expect(await h.reports?.resume()).toBe(1);
    await h.reports?.idle();
    expect((await reportOf('pc2')).json.status).toBe('Succeeded');

    // A blob gone from storage: the analysis fails and says why.
    await h.db.updateTable('capture_files').set({ blob_name: 'subscriptions/x/gone.cap' }).execute();
    const [row] = await h.db.selectFrom('capture_reports').select('job_id').execute();
    await h.reports?.schedule(row?.job_id ?? '');
    await h.reports?.idle();
    const failed = (await reportOf('pc2')).json;
    expect(failed.status).toBe('Failed');
    expect(failed.error).toMatch(/no longer in storage/);
  });
});

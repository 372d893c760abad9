import { existsSync, readFileSync } from 'node:fs';
import { appendFile, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { netnsSkipReason, sendUdp } from '../netns.js';
import {
  AGENT_TIMEOUT_SECONDS,
  type CaptureStatus,
  capinfosPackets,
  createE2eEnv,
  type E2eEnv,
  isAlive,
  type Packet,
  ping,
  poll,
  range,
  readPackets,
  SUBSCRIPTION,
  sendTcp,
  sequenceNumbers,
  sha256,
  startTcpSink,
  VM_NAME,
  WATCHER_ID,
} from './harness.js';

/*
 * tripcap's packet capture end to end: a real server and agent (`node dist/cli/main.js server|agent`), tcpdump on a
 * veth between two network namespaces, real UDP/TCP/ICMP packets, and tshark/capinfos reading the files back.
 *
 * These tests spawn the built CLI: `npm test` runs `npm run build` first; alone, run
 *   npm run build && npx vitest run test/e2e
 * They need root (namespaces, veth, tcpdump): skipped with the reason when not root, and failing under CI=true.
 * Set TRIPCAP_E2E_KEEP=1 to keep the temp folder (server and agent logs, capture files) after the run.
 */

const skipReason = netnsSkipReason();

/** Ethernet + IPv4 + UDP headers in front of a UDP payload on the veth. */
const UDP_OVERHEAD = 14 + 20 + 8;
/** A classic pcap file header, and each record's header. */
const PCAP_HEADER = 24;
const RECORD_HEADER = 16;

function tupleCounts(packets: Packet[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const p of packets) {
    const key = `${p.src}:${p.srcPort}>${p.dst}:${p.dstPort}`;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

describe.skipIf(skipReason !== undefined)(
  `packet capture end to end: server, agent, tcpdump on network namespaces${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let env: E2eEnv;
    const timings: string[] = [];
    /** Figures a scenario measured, printed beside its duration. */
    let notes: string[] = [];
    let testStarted = 0;

    beforeAll(async () => {
      const started = performance.now();
      env = await createE2eEnv();
      timings.push(`setup (namespaces, certificate, server, agent): ${Math.round(performance.now() - started)} ms`);
    }, 60_000);

    afterAll(async () => {
      await env?.destroy();
      if (timings.length > 0) console.info(`e2e timings:\n  ${timings.join('\n  ')}`);
    });

    beforeEach(async ({ onTestFailed }) => {
      onTestFailed(() => console.error(env.logs()));
      // A scenario that failed half-way may have left the server or the agent down: the next one starts clean.
      if (!env.server?.alive()) await env.startServer();
      if (!env.agent?.alive()) await env.startAgent();
      notes = [];
      testStarted = performance.now();
    });

    afterEach(async ({ task }) => {
      timings.push(
        `${task.name}: ${Math.round(performance.now() - testStarted)} ms${notes.length ? ` (${notes.join('; ')})` : ''}`,
      );
      // Stop whatever a failed scenario left running, so that it cannot disturb the next one.
      const { body } = await env.api
        .call<{ value: Array<{ name: string }> }>('GET', `${WATCHER_ID}/packetCaptures?api-version=2024-05-01`)
        .catch(() => ({ body: { value: [] } }));
      for (const { name } of body?.value ?? []) {
        const status = await env.api.queryStatus(name).catch(() => undefined);
        if (status?.packetCaptureStatus === 'Running' || status?.packetCaptureStatus === 'NotStarted') {
          await env.api.stopCapture(name).catch(() => {});
        }
      }
    });

    /**
     * Downloads file 1 of a capture through the API and checks it against queryStatus (size, SHA-256) and against
     * the blob in the server's store (Azure's layout); returns the path of a local copy for tshark.
     */
    async function download(name: string, status: CaptureStatus) {
      expect(status.files).toHaveLength(1);
      const entry = status.files[0];
      if (!entry?.downloadUrl) throw new Error(`${name}: no download link in ${JSON.stringify(status.files)}`);
      const response = await env.api.bytes(entry.downloadUrl);
      expect(response.status).toBe(200);
      expect(response.body.length).toBe(entry.size);
      expect(sha256(response.body)).toBe(entry.sha256);
      expect(response.headers['x-tripcap-sha256']).toBe(entry.sha256);
      // Azure's blob name: …/virtualmachines/{vm}/{yyyy}/{mm}/{dd}/packetcapture_{HH_mm_ss_fff}.cap, from the start time.
      const start = new Date(status.captureStartTime ?? '').toISOString();
      const [, y, mo, d, h, mi, s, ms] = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z$/.exec(start) ?? [];
      expect(entry.name).toBe(
        `subscriptions/${SUBSCRIPTION}/resourcegroups/rg1/providers/microsoft.compute/virtualmachines/${VM_NAME}/${y}/${mo}/${d}/packetcapture_${h}_${mi}_${s}_${ms}.cap`,
      );
      const blob = await readFile(join(env.dataDir, 'blobs', 'network-watcher-logs', entry.name));
      expect(blob.equals(response.body)).toBe(true);
      const file = join(env.dir, `${name}.cap`);
      await writeFile(file, response.body);
      // capinfos and tshark both read it; queryStatus counted the same packets.
      const packets = await readPackets(file);
      expect(await capinfosPackets(file)).toBe(packets.length);
      expect(entry.packets).toBe(packets.length);
      return { file, packets, entry };
    }

    /** Whether the agent logged `message` (pino JSON lines) at or after `since`. */
    function agentLogSince(since: number, message: string): boolean {
      const text = existsSync(env.agent?.logFile ?? '') ? readFileSync(env.agent?.logFile ?? '', 'utf8') : '';
      return text.split('\n').some((line) => {
        try {
          const entry = JSON.parse(line) as { msg?: string; time?: string };
          return entry.msg === message && Date.parse(entry.time ?? '') >= since;
        } catch {
          return false;
        }
      });
    }

    /** The agent's record of a job (in its state folder), found by capture name, while the job is open. */
    async function jobRecord(name: string): Promise<{ outFile: string; pid?: number; job: { jobId: string } }> {
      const dir = join(env.stateDir, 'jobs');
      for (const file of await readdir(dir)) {
        if (!file.endsWith('.json')) continue;
        const record = JSON.parse(await readFile(join(dir, file), 'utf8'));
        if (record.job?.captureId === `${WATCHER_ID}/packetCaptures/${name}`) return record;
      }
      throw new Error(`no job record for ${name} in ${dir}`);
    }

    it('captures exactly the packets its filters match (OR-ed, both directions) and nothing else', async () => {
      const { api, vm, peer } = env;
      const name = 'e2e-filter';
      const sink = env.track(await startTcpSink(vm, [5000, 6000], join(env.dir, 'tcp-sink.log')));
      await api.createCapture(name, {
        timeLimitInSeconds: 120,
        filters: [
          { protocol: 'UDP', remoteIPAddress: peer.ip, localPort: '5000' },
          { protocol: 'TCP', localPort: '6000' },
        ],
      });
      await api.waitUntilRunning(name);

      // Matching: UDP peer → VM:5000 (inbound), UDP VM:5000 → peer (outbound), a TCP connection to VM:6000.
      await sendUdp(peer, { to: vm.ip, port: 5000, count: 20, size: 100, sourcePort: 40000 });
      await sendUdp(vm, { to: peer.ip, port: 7000, count: 15, size: 100, sourcePort: 5000, firstSeq: 1000 });
      await sendTcp(peer, vm.ip, 6000, 3000);
      // Not matching: UDP to another port, UDP from another local port to the peer's 5000, TCP to 5000 (the UDP
      // filter's port), ICMP. (The ICMP port-unreachable answers to the UDP above do not match either.)
      await sendUdp(peer, { to: vm.ip, port: 5001, count: 10, sourcePort: 40001, firstSeq: 2000 });
      await sendUdp(vm, { to: peer.ip, port: 5000, count: 10, sourcePort: 5001, firstSeq: 3000 });
      await sendTcp(peer, vm.ip, 5000, 1000);
      await ping(vm, peer.ip, 3);

      expect((await api.stopCapture(name)).status).toBe(202);
      const status = await api.waitUntilEnded(name);
      await sink.kill();
      expect(status).toMatchObject({
        packetCaptureStatus: 'Stopped',
        stopReason: 'ManuallyStopped',
        packetCaptureError: [],
      });
      const { packets, entry } = await download(name, status);
      expect(entry.kernelDrops).toBe(0);

      const udp = packets.filter((p) => p.proto === 17);
      const tcp = packets.filter((p) => p.proto === 6);
      expect(packets.length - udp.length - tcp.length).toBe(0); // no ICMP, nothing else
      expect(tupleCounts(udp)).toEqual({
        [`${peer.ip}:40000>${vm.ip}:5000`]: 20,
        [`${vm.ip}:5000>${peer.ip}:7000`]: 15,
      });
      expect(sequenceNumbers(udp)).toEqual([...range(0, 20), ...range(1000, 15)]);
      // TCP: only the connection to 6000, both directions, from its SYN, with every payload byte.
      for (const p of tcp) {
        const inbound = p.src === peer.ip && p.dst === vm.ip && p.dstPort === 6000;
        const outbound = p.src === vm.ip && p.dst === peer.ip && p.srcPort === 6000;
        expect(inbound || outbound, `unexpected TCP packet ${JSON.stringify(p)}`).toBe(true);
      }
      const toServer = tcp.filter((p) => p.dstPort === 6000);
      expect(toServer.filter((p) => p.tcpSyn)).toHaveLength(1);
      expect(tcp.filter((p) => p.srcPort === 6000 && p.tcpSyn)).toHaveLength(1); // SYN-ACK
      expect(toServer.reduce((n, p) => n + (p.tcpLen ?? 0), 0)).toBe(3000);
    });

    it('cuts each packet to bytesToCapturePerPacket and keeps its original length', async () => {
      const { api, vm, peer } = env;
      const name = 'e2e-snaplen';
      await api.createCapture(name, {
        bytesToCapturePerPacket: 100,
        filters: [{ protocol: 'UDP', localPort: '5100' }],
      });
      await api.waitUntilRunning(name);
      await sendUdp(peer, { to: vm.ip, port: 5100, count: 10, size: 1000, sourcePort: 40100 });
      await api.stopCapture(name);
      const status = await api.waitUntilEnded(name);
      expect(status).toMatchObject({ packetCaptureStatus: 'Stopped', stopReason: 'ManuallyStopped' });
      const { packets } = await download(name, status);
      expect(packets).toHaveLength(10);
      for (const p of packets) {
        expect(p.capLen).toBe(100);
        expect(p.len).toBe(1000 + UDP_OVERHEAD);
      }
      expect(sequenceNumbers(packets)).toEqual(range(0, 10));
    });

    it('stops at totalBytesPerSession with TotalBytesExceeded and a file within the limit', async () => {
      const { api, vm, peer } = env;
      const name = 'e2e-bytes';
      const limit = 20_000;
      await api.createCapture(name, {
        totalBytesPerSession: limit,
        filters: [{ protocol: 'UDP', localPort: '5200' }],
      });
      await api.waitUntilRunning(name);
      // ~105 kB over about a second: five times the limit.
      await sendUdp(peer, { to: vm.ip, port: 5200, count: 200, size: 500, sourcePort: 40200, intervalMs: 5 });
      const status = await api.waitUntilEnded(name);
      // Azure documents stopReason as a free string and shows only "TimeExceeded"; tripcap's engine names the
      // byte limit in the same style.
      expect(status).toMatchObject({
        packetCaptureStatus: 'Stopped',
        stopReason: 'TotalBytesExceeded',
        packetCaptureError: [],
      });
      const { packets, entry } = await download(name, status);
      const record = RECORD_HEADER + 500 + UDP_OVERHEAD;
      expect(entry.size).toBeLessThanOrEqual(limit);
      // Cut at a packet boundary, as close to the limit as whole packets allow.
      expect(entry.size).toBeGreaterThan(limit - record);
      expect(entry.size).toBe(PCAP_HEADER + packets.length * record);
      // The first datagrams, none missing.
      expect(sequenceNumbers(packets)).toEqual(range(0, packets.length));
    });

    it('stops at timeLimitInSeconds with TimeExceeded', async () => {
      const { api, vm, peer } = env;
      const name = 'e2e-time';
      await api.createCapture(name, { timeLimitInSeconds: 3, filters: [{ protocol: 'UDP', localPort: '5300' }] });
      const running = await api.waitUntilRunning(name);
      await sendUdp(peer, { to: vm.ip, port: 5300, count: 5, sourcePort: 40300 });
      const status = await api.waitForStatus(name, 'the end', (s) => s.packetCaptureStatus !== 'Running', 10_000);
      const seenEndedAfter = Date.now() - Date.parse(running.captureStartTime ?? '');
      expect(status).toMatchObject({
        packetCaptureStatus: 'Stopped',
        stopReason: 'TimeExceeded',
        packetCaptureError: [],
      });
      const duration = Date.parse(status.captureEndTime ?? '') - Date.parse(status.captureStartTime ?? '');
      expect(duration).toBeGreaterThanOrEqual(3000);
      expect(duration).toBeLessThan(4500);
      expect(seenEndedAfter).toBeLessThan(5500);
      const { packets } = await download(name, await api.waitUntilEnded(name));
      expect(sequenceNumbers(packets)).toEqual(range(0, 5));
    });

    it('stops at once on POST stop, with every packet sent before the stop in the file', async () => {
      const { api, vm, peer } = env;
      const name = 'e2e-stop';
      await api.createCapture(name, { timeLimitInSeconds: 600, filters: [{ protocol: 'UDP', localPort: '5400' }] });
      await api.waitUntilRunning(name);
      await sendUdp(peer, { to: vm.ip, port: 5400, count: 300, size: 200, sourcePort: 40400 });
      const stopAsked = Date.now();
      const stop = await api.stopCapture(name);
      expect(stop.status).toBe(202);
      const status = await api.waitForStatus(name, 'Stopped', (s) => s.packetCaptureStatus !== 'Running', 5000);
      const stoppedAfter = Date.now() - stopAsked;
      expect(status).toMatchObject({ packetCaptureStatus: 'Stopped', stopReason: 'ManuallyStopped' });
      expect(stoppedAfter).toBeLessThan(2000);
      // The stop's long-running operation (ARM async contract) has succeeded.
      const operation = await api.call<{ status: string }>('GET', String(stop.headers['azure-asyncoperation']));
      expect(operation.body.status).toBe('Succeeded');
      const { packets, entry } = await download(name, await api.waitUntilEnded(name));
      expect(sequenceNumbers(packets)).toEqual(range(0, 300));
      expect(entry.kernelDrops).toBe(0);
      notes.push(`stop → Stopped seen after ${stoppedAfter} ms`);
    });

    it('keeps a filePath capture on the VM, lists it, and uploads nothing', async () => {
      const { api, vm, peer } = env;
      const name = 'e2e-local';
      const localFile = join(env.captureRoot, 'e2e', 'local-1.cap');
      await api.createCapture(name, {
        storageLocation: { filePath: localFile },
        filters: [{ protocol: 'UDP', localPort: '5500' }],
      });
      await api.waitUntilRunning(name);
      await sendUdp(peer, { to: vm.ip, port: 5500, count: 10, sourcePort: 40500 });
      await api.stopCapture(name);
      const status = await api.waitUntilEnded(name);
      expect(status).toMatchObject({ packetCaptureStatus: 'Stopped', stopReason: 'ManuallyStopped' });
      expect(status.files).toHaveLength(1);
      const entry = status.files[0];
      expect(entry).toMatchObject({ seq: 1, localPath: localFile, storagePath: null, downloadUrl: null });
      const bytes = await readFile(localFile);
      expect(sha256(bytes)).toBe(entry?.sha256);
      expect(bytes.length).toBe(entry?.size);
      const packets = await readPackets(localFile);
      expect(packets).toHaveLength(10);
      expect(await capinfosPackets(localFile)).toBe(10);
      expect(sequenceNumbers(packets)).toEqual(range(0, 10));
      // Nothing was uploaded: there is no file to download.
      const downloadAttempt = await api.call('GET', `${api.capturePath(name)}/files/1?api-version=2024-05-01`);
      expect(downloadAttempt.status).toBe(404);
    });

    it('ends a capture whose agent was killed as Error/AgentStopped, then uploads the partial file when the agent returns', async () => {
      const { api, vm, peer } = env;
      const name = 'e2e-agent-kill';
      await api.createCapture(name, { timeLimitInSeconds: 600, filters: [{ protocol: 'UDP', localPort: '5600' }] });
      await api.waitUntilRunning(name);
      await sendUdp(peer, { to: vm.ip, port: 5600, count: 50, size: 200, sourcePort: 40600 });
      const record = await jobRecord(name);
      const tcpdumpPid = record.pid ?? 0;
      expect(isAlive(tcpdumpPid)).toBe(true);
      // tcpdump writes each packet as it sees it (-U): all 50 are in the spool file before the agent dies.
      const expectedSize = PCAP_HEADER + 50 * (RECORD_HEADER + 200 + UDP_OVERHEAD);
      await poll(
        'the 50 datagrams in the spool file',
        async () => ((await stat(record.outFile)).size >= expectedSize ? true : undefined),
        {
          timeoutMs: 5000,
        },
      );

      const agent = env.agent;
      if (!agent) throw new Error('no agent');
      const killedAt = Date.now();
      await agent.kill('SIGKILL');
      // The server learns it only from the agent's silence (AGENT_TIMEOUT_SECONDS), then ends the session.
      const failed = await api.waitForStatus(
        name,
        'Error after the agent timeout',
        (s) => s.packetCaptureStatus !== 'Running',
        (AGENT_TIMEOUT_SECONDS + 10) * 1000,
      );
      const noticedAfter = Date.now() - killedAt;
      expect(failed).toMatchObject({
        packetCaptureStatus: 'Error',
        stopReason: 'AgentStopped',
        packetCaptureError: ['AgentStopped'],
        files: [],
      });
      // Not before the agent timeout (less the up to one heartbeat interval the agent was last seen before the kill).
      expect(noticedAfter).toBeGreaterThanOrEqual((AGENT_TIMEOUT_SECONDS - 3) * 1000);
      notes.push(`agent killed → Error seen after ${noticedAfter} ms`);

      // The same agent (same state folder) comes back: it stops its orphaned tcpdump and uploads the file.
      await env.startAgent();
      const final = await api.waitUntilEnded(name, { timeoutMs: 20_000 });
      expect(final).toMatchObject({
        packetCaptureStatus: 'Error',
        stopReason: 'AgentStopped',
        packetCaptureError: ['AgentStopped'],
      });
      const { packets } = await download(name, final);
      // Every datagram sent before the kill is there (tcpdump ran on, orphaned, until the agent returned).
      expect(sequenceNumbers(packets)).toEqual(range(0, 50));
      await poll('the orphaned tcpdump to be gone', async () => (isAlive(tcpdumpPid) ? undefined : true), {
        timeoutMs: 5000,
      });
      // The job is closed on the agent's side: its record and spool copy are gone.
      await poll(
        'the job record to be removed',
        async () =>
          await jobRecord(name).then(
            () => undefined,
            () => true,
          ),
        {
          timeoutMs: 5000,
        },
      );
      await expect(stat(record.outFile)).rejects.toThrow();
    }, 60_000);

    it('recovers a capture whose agent and tcpdump were killed together, cutting a torn last record', async () => {
      const { api, vm, peer } = env;
      const name = 'e2e-agent-tcpdump-kill';
      await api.createCapture(name, { timeLimitInSeconds: 600, filters: [{ protocol: 'UDP', localPort: '5650' }] });
      await api.waitUntilRunning(name);
      await sendUdp(peer, { to: vm.ip, port: 5650, count: 30, size: 200, sourcePort: 40650 });
      const record = await jobRecord(name);
      const complete = PCAP_HEADER + 30 * (RECORD_HEADER + 200 + UDP_OVERHEAD);
      await poll(
        'the 30 datagrams in the spool file',
        async () => ((await stat(record.outFile)).size >= complete ? true : undefined),
        { timeoutMs: 5000 },
      );
      // The whole service dies at once (an OOM kill, a cgroup kill): the agent and its tcpdump, the latter in the
      // middle of writing a large packet (one write() per stdio buffer: a 64 KiB GRO segment takes several).
      const tcpdumpPid = record.pid ?? 0;
      await env.agent?.kill('SIGKILL');
      process.kill(tcpdumpPid, 'SIGKILL');
      await poll('tcpdump to be gone', async () => (isAlive(tcpdumpPid) ? undefined : true), { timeoutMs: 5000 });
      expect((await stat(record.outFile)).size).toBe(complete);
      const torn = Buffer.alloc(RECORD_HEADER + 100, 0x55);
      torn.writeUInt32LE(Math.floor(Date.now() / 1000), 0);
      torn.writeUInt32LE(0, 4);
      torn.writeUInt32LE(1500, 8); // incl_len: 1500 bytes follow, but only 100 made it
      torn.writeUInt32LE(1500, 12);
      await appendFile(record.outFile, torn);

      // Back before the server noticed: the agent reports the loss itself, then uploads the file up to the tear.
      await env.startAgent();
      const final = await api.waitUntilEnded(name, { timeoutMs: 20_000 });
      expect(final).toMatchObject({
        packetCaptureStatus: 'Error',
        stopReason: 'AgentStopped',
        packetCaptureError: ['AgentStopped'],
      });
      const { packets, entry } = await download(name, final);
      expect(entry.size).toBe(complete);
      expect(sequenceNumbers(packets)).toEqual(range(0, 30));
    }, 60_000);

    it('starts an agent whose interrupted capture file is unreadable, and reports the capture without it', async () => {
      const { api, vm, peer } = env;
      const name = 'e2e-unreadable-spool';
      await api.createCapture(name, { timeLimitInSeconds: 600, filters: [{ protocol: 'UDP', localPort: '5660' }] });
      await api.waitUntilRunning(name);
      await sendUdp(peer, { to: vm.ip, port: 5660, count: 5, sourcePort: 40660 });
      const record = await jobRecord(name);
      const tcpdumpPid = record.pid ?? 0;
      await env.agent?.kill('SIGKILL');
      process.kill(tcpdumpPid, 'SIGKILL');
      await poll('tcpdump to be gone', async () => (isAlive(tcpdumpPid) ? undefined : true), { timeoutMs: 5000 });
      await writeFile(record.outFile, 'not a pcap'); // e.g. a disk error
      await env.startAgent(); // fails if the agent exits
      const final = await api.waitForStatus(name, 'Error', (x) => x.packetCaptureStatus !== 'Running', 20_000);
      expect(final).toMatchObject({
        packetCaptureStatus: 'Error',
        stopReason: 'AgentStopped',
        packetCaptureError: ['AgentStopped'],
        files: [],
      });
      expect(agentLogSince(0, 'the interrupted capture file is unreadable')).toBe(true);
    });

    it('finishes a capture across a server crash and restart; the agent reconnects by itself', async () => {
      const { api, vm, peer } = env;
      const name = 'e2e-server-kill';
      const timeLimit = 10;
      await api.createCapture(name, {
        timeLimitInSeconds: timeLimit,
        filters: [{ protocol: 'UDP', localPort: '5700' }],
      });
      const running = await api.waitUntilRunning(name);
      const startTime = Date.parse(running.captureStartTime ?? '');
      const send = (firstSeq: number) =>
        sendUdp(peer, { to: vm.ip, port: 5700, count: 30, size: 200, sourcePort: 40700, firstSeq });

      await send(0);
      const server = env.server;
      if (!server) throw new Error('no server');
      const killedAt = Date.now();
      await server.kill('SIGKILL');
      await expect(api.call('GET', '/healthz')).rejects.toThrow();
      await send(100); // while the server is down
      // The server stays down until the agent has felt it: one of its heartbeats (every second) has failed.
      await poll(
        'a failed heartbeat in the agent log',
        async () => (agentLogSince(killedAt, 'heartbeat failed') ? true : undefined),
        {
          timeoutMs: 10_000,
        },
      );
      expect(env.agent?.alive()).toBe(true);
      const restartedAt = Date.now();
      await env.startServer();
      notes.push(`server down for ${Date.now() - killedAt} ms`);
      await send(200);
      // The premise: all three batches went out inside the capture's time window.
      expect(Date.now() - startTime).toBeLessThan(timeLimit * 1000);

      const status = await api.waitUntilEnded(name, { timeoutMs: 30_000 });
      expect(status).toMatchObject({
        packetCaptureStatus: 'Stopped',
        stopReason: 'TimeExceeded',
        packetCaptureError: [],
      });
      const duration = Date.parse(status.captureEndTime ?? '') - startTime;
      expect(duration).toBeGreaterThanOrEqual(timeLimit * 1000);
      expect(duration).toBeLessThan(timeLimit * 1000 + 1500);
      const { packets } = await download(name, status);
      expect(sequenceNumbers(packets)).toEqual([...range(0, 30), ...range(100, 30), ...range(200, 30)]);

      // The agent is back on its own: heard from since the restart, and it takes new jobs.
      const vmView = await api.vm();
      expect(vmView.properties.agent?.status).toBe('Connected');
      expect(Date.parse(vmView.properties.agent?.lastSeen ?? '')).toBeGreaterThan(restartedAt);
      const next = 'e2e-after-server-restart';
      await api.createCapture(next, { timeLimitInSeconds: 1, filters: [{ protocol: 'UDP', localPort: '5701' }] });
      const after = await api.waitUntilEnded(next, { timeoutMs: 15_000 });
      expect(after).toMatchObject({
        packetCaptureStatus: 'Stopped',
        stopReason: 'TimeExceeded',
        packetCaptureError: [],
      });
    }, 90_000);

    it('reports and uploads a capture that ended while the server was down, once the server is back', async () => {
      const { api, vm, peer } = env;
      const name = 'e2e-end-while-server-down';
      await api.createCapture(name, { timeLimitInSeconds: 2, filters: [{ protocol: 'UDP', localPort: '5800' }] });
      await api.waitUntilRunning(name);
      await sendUdp(peer, { to: vm.ip, port: 5800, count: 20, sourcePort: 40800 });
      const server = env.server;
      if (!server) throw new Error('no server');
      const killedAt = Date.now();
      await server.kill('SIGKILL');
      // The capture ends on the VM (time limit) while the server is down; the agent's report of it fails.
      await poll(
        "the agent's failed final status report",
        async () => (agentLogSince(killedAt, 'final status report failed') ? true : undefined),
        { timeoutMs: 15_000 },
      );
      await env.startServer();
      notes.push(`server down for ${Date.now() - killedAt} ms`);
      const status = await api.waitUntilEnded(name, { timeoutMs: 30_000 });
      expect(status).toMatchObject({
        packetCaptureStatus: 'Stopped',
        stopReason: 'TimeExceeded',
        packetCaptureError: [],
      });
      const duration = Date.parse(status.captureEndTime ?? '') - Date.parse(status.captureStartTime ?? '');
      expect(duration).toBeGreaterThanOrEqual(2000);
      expect(duration).toBeLessThan(3500);
      const { packets } = await download(name, status);
      expect(sequenceNumbers(packets)).toEqual(range(0, 20));
    }, 60_000);
  },
);

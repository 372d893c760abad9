import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createTwoHosts, netnsSkipReason, sendUdp, type TwoHosts } from '../../test/netns.js';
import { scanPcapFile } from '../pcap/classic.js';
import {
  BLOCK_DRAIN_MS,
  buildTcpdumpArgv,
  type CaptureResult,
  type CaptureSpec,
  createTcpdumpEngine,
  findOrphanTcpdump,
  ringFileName,
  stopOrphan,
} from './capture-engine.js';

const execFileAsync = promisify(execFile);
const skipReason = netnsSkipReason();

async function tshark(file: string, fields: string[], filter?: string): Promise<string[][]> {
  const args = ['-r', file, '-T', 'fields', ...fields.flatMap((f) => ['-e', f]), ...(filter ? ['-Y', filter] : [])];
  const { stdout } = await execFileAsync('tshark', args, { maxBuffer: 64 << 20 });
  return stdout
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.split('\t'));
}

/** capinfos -c -M: the packet count, and capinfos' verdict on the file (it exits non-zero on a damaged one). */
async function capinfosPackets(file: string): Promise<number> {
  const { stdout } = await execFileAsync('capinfos', ['-c', '-M', file]);
  const match = /Number of packets:\s+(\d+)/.exec(stdout);
  if (!match) throw new Error(`capinfos said: ${stdout}`);
  return Number(match[1]);
}

describe('buildTcpdumpArgv', () => {
  const spec: CaptureSpec = {
    interface: 'eth0',
    bpf: 'udp and port 53',
    snaplen: 128,
    outFile: '/var/lib/tripcap/x.cap',
    maxBytes: 0,
    timeLimitSeconds: 0,
  };

  it('puts the filter in one element after "--" and runs inside a namespace with ip netns exec', () => {
    expect(buildTcpdumpArgv(spec, { netns: 'hostA', bufferSizeKiB: 4096 })).toEqual([
      ...['ip', 'netns', 'exec', 'hostA', 'tcpdump'],
      ...['-i', 'eth0', '-s', '128', '-w', '/var/lib/tripcap/x.cap', '-U', '-n', '-B', '4096'],
      ...['-Z', 'root', '--', 'udp and port 53'],
    ]);
    expect(buildTcpdumpArgv({ ...spec, bpf: '' })).not.toContain('--');
  });

  it('turns a ring into -C megabytes (rounded up) and -W', () => {
    const argv = buildTcpdumpArgv({ ...spec, ring: { fileCount: 12, fileSizeBytes: 1_500_000 } });
    expect(argv.slice(argv.indexOf('-C'), argv.indexOf('-C') + 4)).toEqual(['-C', '2', '-W', '12']);
    expect(ringFileName('/d/x.cap', 3, 12)).toBe('/d/x.cap03');
    expect(ringFileName('/d/x.cap', 3, 10)).toBe('/d/x.cap3');
    expect(ringFileName('/d/x.cap', 0, 1)).toBe('/d/x.cap');
  });

  it('rejects values that are not strictly valid', () => {
    expect(() => buildTcpdumpArgv({ ...spec, interface: '-w/etc/passwd' })).toThrow(/interface/);
    expect(() => buildTcpdumpArgv({ ...spec, snaplen: 0 })).toThrow(/snaplen/);
    expect(() => buildTcpdumpArgv({ ...spec, snaplen: 262_145 })).toThrow(/snaplen/);
    expect(() => buildTcpdumpArgv({ ...spec, outFile: 'relative.cap' })).toThrow(/outFile/);
    expect(() => buildTcpdumpArgv({ ...spec, maxBytes: -1 })).toThrow(/maxBytes/);
    expect(() => buildTcpdumpArgv(spec, { netns: 'a b' })).toThrow(/namespace/);
  });
});

describe.skipIf(skipReason !== undefined)(
  `tcpdump capture engine${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let hosts: TwoHosts;
    let dir: string;
    const extraHosts: TwoHosts[] = [];

    beforeAll(async () => {
      hosts = await createTwoHosts();
      dir = await mkdtemp(join(tmpdir(), 'tripcap-engine-'));
    });
    afterEach(async () => {
      for (const h of extraHosts.splice(0)) await h.destroy();
    });
    afterAll(async () => {
      await hosts?.destroy();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const engine = () => createTcpdumpEngine({ netns: hosts.a.ns });
    const spec = (name: string, extra: Partial<CaptureSpec> = {}): CaptureSpec => ({
      interface: hosts.a.ifname,
      bpf: '',
      snaplen: 262_144,
      outFile: join(dir, name),
      maxBytes: 0,
      timeLimitSeconds: 0,
      ...extra,
    });

    it('is capturing when start() resolves, and keeps every packet sent before stop()', async () => {
      const count = 500;
      const t0 = performance.now();
      const handle = await engine().start(spec('stop.cap', { bpf: 'udp and dst port 40001' }));
      const startMs = performance.now() - t0;
      console.log(`start() reached "listening" in ${startMs.toFixed(0)} ms`);
      expect(handle.pid).toBeGreaterThan(1);

      await sendUdp(hosts.b, { to: hosts.a.ip, port: 40001, count, size: 200 });
      const result = await handle.stop();

      expect(result.stopReason).toBe('ManuallyStopped');
      expect(result.error).toBeUndefined();
      const file = spec('stop.cap').outFile;
      const rows = await tshark(file, ['udp.payload']);
      const seqs = new Set(
        rows.map(([hex]) => /^seq=(\d+);/.exec(Buffer.from(hex ?? '', 'hex').toString('latin1'))?.[1]),
      );
      expect(seqs.size).toBe(count);
      for (let i = 0; i < count; i++) expect(seqs.has(String(i))).toBe(true);
      expect(result.files).toEqual([{ path: file, size: (await stat(file)).size, packets: count }]);
      expect(result.packetsCaptured).toBe(count);
      expect(result.kernelDrops).toBe(0);
      expect(await capinfosPackets(file)).toBe(count);
    });

    it('writes the packets still queued in the kernel ring when stop() is called', async () => {
      // tcpdump drops the kernel's unfinished block on SIGTERM, so the engine drains for a block timeout first. Freeze
      // tcpdump, queue 100 datagrams in its ring, ask to stop, then let it run: all 100 must be written.
      const handle = await engine().start(spec('backlog.cap', { bpf: 'udp and dst port 40007' }));
      process.kill(handle.pid, 'SIGSTOP');
      let stopping: Promise<CaptureResult>;
      try {
        await sendUdp(hosts.b, { to: hosts.a.ip, port: 40007, count: 100, size: 200 });
      } finally {
        stopping = handle.stop();
        process.kill(handle.pid, 'SIGCONT');
      }
      const result = await stopping;
      expect(result.kernelDrops).toBe(0);
      expect(result.files[0]?.packets).toBe(100);
      expect(result.packetsCaptured).toBe(100);
    });

    it('ends with TimeExceeded within 0.5 s of the time limit', async () => {
      const handle = await engine().start(spec('time.cap', { timeLimitSeconds: 1, bpf: 'udp port 40099' }));
      const result = await handle.done;
      const elapsed = Date.parse(result.endedAt) - Date.parse(result.startedAt);
      console.log(`time limit 1 s ended after ${elapsed} ms`);
      expect(result.stopReason).toBe('TimeExceeded');
      expect(elapsed).toBeGreaterThanOrEqual(1000);
      expect(elapsed).toBeLessThan(1500);
      expect(result.files[0]?.packets).toBe(0);
      expect(result.files[0]?.size).toBe(24);
    });

    it('ends with TotalBytesExceeded and cuts the file at a packet boundary <= maxBytes', async () => {
      const maxBytes = 20_000;
      const handle = await engine().start(spec('bytes.cap', { maxBytes, bpf: 'udp' }));
      // 1,000 datagrams of 542 frame bytes: far more than the limit, sent faster than the 100 ms poll.
      await sendUdp(hosts.b, { to: hosts.a.ip, port: 40002, count: 1000, size: 500 });
      const result = await handle.done;

      expect(result.stopReason).toBe('TotalBytesExceeded');
      const file = spec('bytes.cap').outFile;
      const size = (await stat(file)).size;
      const recordSize = 16 + 14 + 20 + 8 + 500;
      expect(size).toBeLessThanOrEqual(maxBytes);
      expect(size).toBeGreaterThan(maxBytes - recordSize);
      expect((size - 24) % recordSize).toBe(0);
      const packets = (size - 24) / recordSize;
      expect(result.files).toEqual([{ path: file, size, packets }]);
      expect(result.packetsCaptured).toBeGreaterThanOrEqual(packets);
      expect(await capinfosPackets(file)).toBe(packets);
    });

    it('honours snaplen: longer packets come out with caplen == snaplen', async () => {
      const handle = await engine().start(spec('snap.cap', { snaplen: 100, bpf: 'udp' }));
      await sendUdp(hosts.b, { to: hosts.a.ip, port: 40003, count: 20, size: 1000 });
      const result = await handle.stop();
      expect(result.files[0]?.packets).toBe(20);
      const rows = await tshark(result.files[0]?.path ?? '', ['frame.cap_len', 'frame.len']);
      expect(rows).toHaveLength(20);
      for (const row of rows) expect(row).toEqual(['100', '1042']);
      expect((await scanPcapFile(result.files[0]?.path ?? '')).snaplen).toBe(100);
    });

    it('rejects start() with tcpdump’s message for a bad filter or a missing interface', async () => {
      await expect(engine().start(spec('bad.cap', { bpf: 'udp and port 99999' }))).rejects.toThrow(
        /tcpdump failed to start.*illegal port number 99999/s,
      );
      await expect(engine().start(spec('bad.cap', { bpf: 'host and (' }))).rejects.toThrow(/syntax error/);
      await expect(engine().start(spec('bad.cap', { interface: 'nosuchif0' }))).rejects.toThrow(
        /tcpdump failed to start.*nosuchif0/s,
      );
    });

    it('writes a ring of files in ring mode and ends only on stop', async () => {
      const ring = { fileCount: 3, fileSizeBytes: 1_000_000 };
      const handle = await engine().start(spec('ring.cap', { ring, maxBytes: 1000 }));
      // ~5.7 MB: enough to fill the three 1 MB files and wrap around.
      for (let i = 0; i < 4; i++) await sendUdp(hosts.b, { to: hosts.a.ip, port: 40004, count: 1000, size: 1400 });
      expect(handle.progress().bytes).toBeGreaterThan(1_000_000);
      const result = await handle.stop();

      expect(result.stopReason).toBe('ManuallyStopped');
      const names = ['ring.cap0', 'ring.cap1', 'ring.cap2'];
      expect((await readdir(dir)).filter((n) => n.startsWith('ring.cap')).sort()).toEqual(names);
      expect(result.files.map((f) => f.path).sort()).toEqual(names.map((n) => join(dir, n)));
      for (const f of result.files) {
        expect(await capinfosPackets(f.path)).toBe(f.packets);
        expect(f.size).toBe((await stat(f.path)).size);
      }
      // Oldest first: every file but the newest was closed when it passed 1 MB.
      for (const f of result.files.slice(0, -1)) expect(f.size).toBeGreaterThan(1_000_000);
      expect(result.packetsCaptured).toBeGreaterThan(result.files.reduce((n, f) => n + f.packets, 0));
    });

    it('stops with AgentStopped when the signal aborts', async () => {
      const controller = new AbortController();
      const handle = await engine().start(spec('abort.cap', { bpf: 'udp port 40099' }), controller.signal);
      controller.abort();
      const result = await handle.done;
      expect(result.stopReason).toBe('AgentStopped');
      expect(result.files[0]?.size).toBe(24);
    });

    it('reports CaptureFailed with tcpdump’s message when tcpdump exits on its own', async () => {
      const other = await createTwoHosts();
      extraHosts.push(other);
      const handle = await createTcpdumpEngine({ netns: other.a.ns }).start({
        ...spec('failed.cap'),
        interface: other.a.ifname,
      });
      await sendUdp(other.b, { to: other.a.ip, port: 40005, count: 5 });
      // When tcpdump dies abruptly, packets of the kernel's unfinished block die with it: let the block be handed over.
      await new Promise((resolve) => setTimeout(resolve, BLOCK_DRAIN_MS));
      await other.exec(other.a.ns, ['ip', 'link', 'del', other.a.ifname]);
      const result = await handle.done;
      expect(result.stopReason).toBe('CaptureFailed');
      expect(result.error).toMatch(/tcpdump exited unexpectedly.*(interface|device)/is);
      expect(result.files[0]?.packets).toBeGreaterThanOrEqual(5);
      expect(await capinfosPackets(spec('failed.cap').outFile)).toBe(result.files[0]?.packets);
    });

    it('recovers the orphan tcpdump of a crashed agent with findOrphanTcpdump + stopOrphan', async () => {
      const outFile = spec('orphan.cap').outFile;
      const argv = buildTcpdumpArgv(spec('orphan.cap', { bpf: 'udp' }), { netns: hosts.a.ns });
      // A short-lived "agent" starts tcpdump detached, waits for "listening", prints its pid and dies.
      const agent = `
      const { spawn } = require('node:child_process');
      const argv = JSON.parse(process.argv[1]);
      const child = spawn(argv[0], argv.slice(1), { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
      child.stderr.on('data', (d) => { if (/listening on/.test(String(d))) { console.log(child.pid); process.exit(0); } });`;
      const { stdout } = await execFileAsync(process.execPath, ['-e', agent, JSON.stringify(argv)], {
        timeout: 15_000,
      });
      const pid = Number(stdout.trim());
      try {
        expect(findOrphanTcpdump(pid, outFile)).toBe(true);
        expect(findOrphanTcpdump(pid, `${outFile}.other`)).toBe(false);
        expect(findOrphanTcpdump(process.pid, outFile)).toBe(false);

        await sendUdp(hosts.b, { to: hosts.a.ip, port: 40006, count: 50, size: 300 });
        await stopOrphan(pid, outFile);
        expect(findOrphanTcpdump(pid, outFile)).toBe(false);

        const scan = await scanPcapFile(outFile);
        expect(scan.packets).toBe(50);
        expect(scan.truncated).toBe(false);
        expect(await capinfosPackets(outFile)).toBe(50);
      } finally {
        if (findOrphanTcpdump(pid, outFile)) process.kill(pid, 'SIGKILL');
      }
    });
  },
);

import { execFile } from 'node:child_process';
import { mkdtemp, readdir, readlink, rm, stat, statfs } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTwoHosts, execIn, netnsSkipReason, type TwoHosts } from '../../test/netns.js';
import { createLogger } from '../lib/logger.js';
import { sleep } from '../lib/time.js';
import { scanPcapFile } from '../pcap/classic.js';
import { findOrphanTcpdump } from './capture-engine.js';
import { createFlightRecorder, type FlightRecorderOptions, ringLayout } from './flight-recorder.js';

const execFileAsync = promisify(execFile);
const skipReason = netnsSkipReason();
const logger = createLogger({ level: 'silent' });

/**
 * Sends 1000-byte datagrams from inside a namespace for `seconds`, in bursts of 256: as fast as Node can, or at most
 * `perSecond` (0 = no limit). Prints the count.
 */
const FLOOD_SCRIPT = `
  const dgram = require('node:dgram');
  const [to, seconds, perSecond] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
  const socket = dgram.createSocket('udp4');
  const payload = Buffer.alloc(1000, 0x2e);
  const start = Date.now();
  let sent = 0;
  const burst = () => {
    const elapsed = Date.now() - start;
    if (elapsed >= seconds * 1000) return socket.close(() => console.log(sent));
    if (perSecond > 0 && sent > (elapsed * perSecond) / 1000) return setTimeout(burst, 5);
    let pending = 256;
    for (let i = 0; i < 256; i++) socket.send(payload, 40100, to, () => --pending === 0 && setImmediate(burst));
    sent += 256;
  };
  burst();`;

/** Sum of the sizes of the files in `dir`, measured here rather than by the recorder. */
async function bytesInDir(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir))
    total += await stat(join(dir, name)).then(
      (s) => s.size,
      () => 0,
    );
  return total;
}

/** Calls `sample` every `ms` until the returned stop function is called. */
function every(ms: number, sample: () => Promise<void>): () => Promise<void> {
  let running = true;
  const loop = (async () => {
    while (running) {
      await sample();
      await sleep(ms);
    }
  })();
  return async () => {
    running = false;
    await loop;
  };
}

/** The pids of live tcpdumps writing this ring. */
async function ringTcpdumps(dir: string): Promise<number[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name)).map(Number);
  return pids.filter((pid) => findOrphanTcpdump(pid, join(dir, 'ring.pcap')));
}

/** The ring file tcpdump has open now (from its /proc fds), or undefined. */
async function fileBeingWritten(dir: string): Promise<string | undefined> {
  for (const pid of await ringTcpdumps(dir)) {
    for (const fd of await readdir(`/proc/${pid}/fd`)) {
      const target = await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '');
      if (target.startsWith(join(dir, 'ring.pcap'))) return target;
    }
  }
  return undefined;
}

describe('ringLayout', () => {
  it('fits whole-megabyte files, each with one record of overshoot, under maxBytes', () => {
    expect(ringLayout(4 * 1024 * 1024, 128)).toEqual({ fileCount: 4, fileBytes: 1e6, boundBytes: 4 * 1_000_144 });
    expect(ringLayout(100e6, 128)).toEqual({ fileCount: 9, fileBytes: 10e6, boundBytes: 9 * 10_000_144 });
    expect(ringLayout(20e6, 128, 1_500_000).fileBytes).toBe(2e6);
    expect(ringLayout(10e9, 128)).toMatchObject({ fileCount: 156, fileBytes: 64e6 });
    expect(() => ringLayout(1.5e6, 128)).toThrow(/fewer than 2 ring files/);
  });
});

describe.skipIf(skipReason !== undefined)(`flight recorder${skipReason ? ` (skipped: ${skipReason})` : ''}`, () => {
  let hosts: TwoHosts;
  let root: string;

  beforeAll(async () => {
    hosts = await createTwoHosts();
    root = await mkdtemp(join(tmpdir(), 'tripcap-flight-'));
  });
  afterAll(async () => {
    await hosts?.destroy();
    if (root) await rm(root, { recursive: true, force: true });
  });

  const recorder = (dir: string, extra: Partial<FlightRecorderOptions> = {}) =>
    createFlightRecorder({
      dir,
      interface: hosts.a.ifname,
      netns: hosts.a.ns,
      maxBytes: 4 * 1024 * 1024,
      maxAgeSeconds: 3600,
      minFreeBytes: 0,
      logger,
      ...extra,
    });
  const flood = (seconds: number, perSecond = 0, signal?: AbortSignal) =>
    execIn(hosts.b.ns, [process.execPath, '-e', FLOOD_SCRIPT, hosts.a.ip, String(seconds), String(perSecond)], {
      timeoutMs: (seconds + 30) * 1000,
      ...(signal ? { signal } : {}),
    }).then(({ stdout }) => Number(stdout.trim()));

  it('keeps a 60-second flood within its cap on disk, in valid pcap files of the last seconds', async () => {
    const dir = join(root, 'flood');
    const maxBytes = 4 * 1024 * 1024;
    const { boundBytes } = ringLayout(maxBytes, 128);
    const ring = recorder(dir, { maxBytes });
    await ring.start();

    let maxOnDisk = 0;
    let samples = 0;
    const stopSampling = every(100, async () => {
      maxOnDisk = Math.max(maxOnDisk, await bytesInDir(dir));
      samples++;
    });
    const floodStart = Date.now();
    // Before the ring has made all its files, it holds every packet since it started.
    expect(ring.heldSinceMs()).toBeLessThanOrEqual(floodStart);
    const sent = await flood(60);
    const floodEnd = Date.now();
    await stopSampling();
    const status = ring.status();
    // Wrapped: it holds every packet only since its oldest file began (what a pre-trigger cut can cover).
    const heldSince = ring.heldSinceMs() ?? 0;
    await ring.stop();

    const captured = (sent * (16 + 128)) / 1e6;
    console.log(
      `60 s flood: ${sent} datagrams (${Math.round(sent / 60)}/s, ~${captured.toFixed(0)} MB of records); ` +
        `ring max on disk ${maxOnDisk} bytes over ${samples} samples, bound ${boundBytes}, maxBytes ${maxBytes}`,
    );
    expect(sent / 60).toBeGreaterThan(10_000);
    expect(captured).toBeGreaterThan((10 * maxBytes) / 1e6); // the ring wrapped many times
    expect(samples).toBeGreaterThan(400);
    expect(maxOnDisk).toBeGreaterThan(boundBytes * 0.7);
    expect(maxOnDisk).toBeLessThanOrEqual(boundBytes);
    expect(boundBytes).toBeLessThanOrEqual(maxBytes);
    expect(status.state).toBe('Running');
    expect(ring.status()).toMatchObject({ state: 'Stopped', stopReason: 'ManuallyStopped' });

    const files = ring.files();
    expect(files).toHaveLength(4);
    let firstMs = Number.POSITIVE_INFINITY;
    let lastMs = 0;
    for (const file of files) {
      const scan = await scanPcapFile(file);
      expect(scan.truncated).toBe(false);
      expect(scan.snaplen).toBe(128);
      expect(scan.packets).toBeGreaterThan(0);
      const { stdout } = await execFileAsync('capinfos', ['-c', '-M', file]);
      expect(stdout).toContain(`Number of packets:   ${scan.packets}`);
      firstMs = Math.min(firstMs, Date.parse(scan.firstTime ?? ''));
      lastMs = Math.max(lastMs, Date.parse(scan.lastTime ?? ''));
    }
    // Only the last seconds survive: the ring holds ~4 MB, a second or two of this flood.
    expect(firstMs).toBeGreaterThan(floodStart + 45_000);
    expect(lastMs).toBeGreaterThan(floodEnd - 2000);
    expect(Date.parse(status.oldestPacketTime ?? '')).toBeGreaterThan(floodStart + 45_000);
    expect(heldSince).toBeGreaterThan(floodStart + 45_000);
  }, 90_000);

  it('deletes files older than maxAgeSeconds, except the one being written', async () => {
    const dir = join(root, 'age');
    const ring = recorder(dir, { maxAgeSeconds: 3 });
    await ring.start();
    try {
      await flood(2);
      await sleep(500);
      const afterFlood = ring.files();
      expect(afterFlood.length).toBeGreaterThanOrEqual(2);
      await sleep(5000);
      const left = ring.files();
      expect(left).toHaveLength(1);
      // A straggler packet after the flood may have made tcpdump move on to the next file: compare with the file it
      // has open now, not with the newest file of a moment ago.
      expect(left[0]).toBe(await fileBeingWritten(dir));
      expect(ring.status().state).toBe('Running');
    } finally {
      await ring.stop();
    }
  }, 30_000);

  it('stops with DiskFloor soon after free disk falls below the floor', async () => {
    const dir = join(root, 'tmpfs');
    await execFileAsync('mkdir', ['-p', dir]);
    const mounted = await execFileAsync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', dir]).then(
      () => true,
      (err: Error) => err.message,
    );
    if (mounted !== true) {
      console.log(`disk floor test skipped: cannot mount a tmpfs (${mounted})`);
      return;
    }
    try {
      const minFreeBytes = 4e6;
      const stops: Array<[string, string]> = [];
      const ring = recorder(dir, { maxBytes: 20e6, minFreeBytes, onStop: (...args) => stops.push(args) });
      await ring.start();
      expect(await ringTcpdumps(dir)).toHaveLength(1);

      let belowAt: number | undefined;
      const stopWatching = every(20, async () => {
        const fs = await statfs(dir);
        if (belowAt === undefined && fs.bavail * fs.bsize < minFreeBytes) belowAt = Date.now();
      });
      // ~10,000 packets/s, ~1.4 MB/s of records: the floor is crossed after ~3 s, and the 1 s check comes long
      // before the tmpfs is full (unpaced, this flood writes ~25 MB/s).
      const t0 = Date.now();
      const endFlood = new AbortController();
      let flooding = true;
      const floodDone = flood(20, 10_000, endFlood.signal)
        .catch((err: Error) => err.name === 'AbortError' || Promise.reject(err))
        .finally(() => {
          flooding = false;
        });
      while (flooding && ring.status().state === 'Running') await sleep(20);
      const stoppedAfter = Date.now() - (belowAt ?? Number.NaN);
      endFlood.abort();
      await floodDone;
      await stopWatching();

      console.log(
        `disk floor: crossed ${(belowAt ?? 0) - t0} ms after start, flood ended ${Date.now() - t0} ms; stopped ${stoppedAfter} ms after free space fell below it; ${stops[0]?.[1]}`,
      );
      expect(ring.status()).toMatchObject({ state: 'Stopped', stopReason: 'DiskFloor' });
      expect(stops).toHaveLength(1);
      expect(stops[0]?.[0]).toBe('DiskFloor');
      expect(stops[0]?.[1]).toMatch(/free disk .* is [\d.]+ MB, below the floor of 4\.0 MB: flight recorder stopped$/);
      expect(stoppedAfter).toBeLessThan(2000);
      expect(await ringTcpdumps(dir)).toEqual([]);
    } finally {
      await execFileAsync('umount', [dir]);
    }
  }, 40_000);

  it('stops with CaptureFailed and tcpdump’s error when its interface goes away', async () => {
    const other = await createTwoHosts();
    try {
      const stops: Array<[string, string]> = [];
      const ring = recorder(join(root, 'gone'), {
        interface: other.a.ifname,
        netns: other.a.ns,
        onStop: (...args) => stops.push(args),
      });
      await ring.start();
      await execIn(other.a.ns, ['ip', 'link', 'del', other.a.ifname]);
      for (let i = 0; i < 250 && stops.length === 0; i++) await sleep(20);
      console.log(`interface gone: ${stops[0]?.[1]}`);
      expect(ring.status()).toMatchObject({ state: 'Stopped', stopReason: 'CaptureFailed' });
      expect(stops).toEqual([['CaptureFailed', expect.stringMatching(/^tcpdump exited \(exit code \d+\): tcpdump: /)]]);
    } finally {
      await other.destroy();
    }
  });

  it('rejects start() with tcpdump’s message when the interface does not exist', async () => {
    const ring = recorder(join(root, 'bad'), { interface: 'nosuchif0' });
    await expect(ring.start()).rejects.toThrow(/tcpdump failed to start \(exit code 1\): tcpdump: nosuchif0: /);
    expect(ring.status().state).toBe('Stopped');
  });
});

import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPackets, sequenceNumbers } from '../../test/e2e/harness.js';
import { createTwoHosts, netnsSkipReason, sendUdp, type TwoHosts } from '../../test/netns.js';
import { createLogger } from '../lib/logger.js';
import { sleep } from '../lib/time.js';
import { readCaptureFile } from '../pcap/index.js';
import { BLOCK_DRAIN_MS, createTcpdumpEngine } from './capture-engine.js';
import { createFlightRecorder, type FlightRecorder } from './flight-recorder.js';
import { cutRing, joinCapture } from './pre-trigger.js';

const execFileAsync = promisify(execFile);
const skipReason = netnsSkipReason();
const PORT = 40_200;
const NOISE_PORT = 40_201;
const PAYLOAD = 300; // longer than the ring's 128-byte snaplen: ring packets and live packets differ in length

describe.skipIf(skipReason !== undefined)(
  `pre-trigger: ring cut and live capture joined${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let hosts: TwoHosts;
    let dir: string;
    let recorder: FlightRecorder;
    const files = {} as Record<'live' | 'pre' | 'joined' | 'pcapng', string>;
    let startMs = 0;
    let fromMs = 0;
    let cut: Awaited<ReturnType<typeof cutRing>>;
    let joinResult: Awaited<ReturnType<typeof joinCapture>>;
    const sent = 4000;

    beforeAll(async () => {
      hosts = await createTwoHosts();
      dir = await mkdtemp(join(tmpdir(), 'tripcap-pretrigger-'));
      for (const name of ['live', 'pre', 'joined', 'pcapng'] as const) files[name] = join(dir, `${name}.pcap`);
      recorder = createFlightRecorder({
        dir: join(dir, 'ring'),
        interface: hosts.b.ifname,
        maxBytes: 8_000_000,
        maxAgeSeconds: 900,
        minFreeBytes: 0,
        netns: hosts.b.ns,
        logger: createLogger({ level: 'silent' }),
      });
      await recorder.start();
      // Numbered datagrams across the switch from ring to live, ~2.5 ms apart (~10 s), with noise the filter must drop.
      const numbered = sendUdp(hosts.a, { to: hosts.b.ip, port: PORT, count: sent, size: PAYLOAD, intervalMs: 2 });
      const noise = sendUdp(hosts.a, { to: hosts.b.ip, port: NOISE_PORT, count: 1000, size: PAYLOAD, intervalMs: 5 });
      await sleep(4000);
      const engine = createTcpdumpEngine({ netns: hosts.b.ns });
      const live = await engine.start({
        interface: hosts.b.ifname,
        bpf: `udp and dst port ${PORT}`,
        snaplen: 262_144,
        outFile: files.live,
        maxBytes: 0,
        timeLimitSeconds: 0,
      });
      startMs = Date.parse(live.startedAt);
      fromMs = startMs - 2000;
      await sleep(BLOCK_DRAIN_MS + 300);
      cut = await cutRing({
        ringFiles: recorder.files(),
        heldSinceMs: recorder.heldSinceMs(),
        fromMs,
        bpf: `udp and dst port ${PORT}`,
        snaplen: 262_144,
        outFile: files.pre,
      });
      await Promise.all([numbered, noise]);
      await live.stop();
      joinResult = await joinCapture({
        preFile: files.pre,
        liveFile: files.live,
        outFile: files.joined,
        format: 'pcap',
        snaplen: 262_144,
        liveStartMs: startMs,
      });
      await joinCapture({
        preFile: files.pre,
        liveFile: files.live,
        outFile: files.pcapng,
        format: 'pcapng',
        snaplen: 262_144,
        liveStartMs: startMs,
        comments: ['tripcap packet capture test', `alert: ${'x'.repeat(70_000).slice(0, 16_000)}`],
        interfaceName: hosts.b.ifname,
      });
    }, 60_000);

    afterAll(async () => {
      await recorder?.stop();
      await hosts?.destroy();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('holds every numbered packet once, from before the start to the end, none missing and none repeated', async () => {
      const packets = await readPackets(files.joined);
      const numbers = sequenceNumbers(packets);
      expect(packets.every((p) => p.dstPort === PORT)).toBe(true); // the filter applied to the ring part too
      expect(numbers.at(-1)).toBe(sent - 1);
      const gaps = numbers.slice(1).flatMap((n, i) => (n === (numbers[i] as number) + 1 ? [] : [[numbers[i], n]]));
      expect(gaps).toEqual([]);
      expect(joinResult.seam).toBe('matched');
      // Both parts are there: the ring's packets are headers only (128 bytes), the live ones whole.
      expect(joinResult.prePackets).toBeGreaterThan(300);
      expect(joinResult.livePackets).toBeGreaterThan(300);
      expect(packets.slice(0, joinResult.prePackets).every((p) => p.capLen === 128)).toBe(true);
      expect(packets.slice(joinResult.prePackets).every((p) => p.capLen === p.len)).toBe(true);
    });

    it('starts within a few packets of start − N and says when the ring held less than asked', async () => {
      const times: number[] = [];
      await readCaptureFile(files.joined, (p) => times.push(p.seconds * 1000 + p.nanos / 1e6));
      expect(times[0]).toBeGreaterThanOrEqual(fromMs);
      expect((times[0] as number) - fromMs).toBeLessThan(100); // ~400 packets a second
      expect(cut.coveredFromMs).toBe(fromMs);

      const longer = await cutRing({
        ringFiles: recorder.files(),
        heldSinceMs: recorder.heldSinceMs(),
        fromMs: startMs - 600_000,
        bpf: '',
        snaplen: 262_144,
        outFile: join(dir, 'longer.pcap'),
      });
      // The ring ran ~5 s before the start: it covers that, not the 600 s asked.
      expect(longer.coveredFromMs).toBeGreaterThan(startMs - 10_000);
      expect(longer.coveredFromMs).toBeLessThan(startMs - 3000);
    });

    it('writes pcapng with the comments, which tshark reads with the same packets', async () => {
      const { stdout } = await execFileAsync('capinfos', ['-t', '-c', '-k', files.pcapng]);
      expect(stdout).toMatch(/Capture comment:\s+tripcap packet capture test/);
      expect(stdout).toContain('alert: xxxx');
      expect(stdout).toMatch(/File type:.*pcapng/);
      const pcapng = sequenceNumbers(await readPackets(files.pcapng));
      expect(pcapng).toEqual(sequenceNumbers(await readPackets(files.joined)));
    });
  },
);

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPcapWriter, LinkType, readCaptureFile } from '../pcap/index.js';
import { joinCapture } from './pre-trigger.js';

/** The seam rules on hand-made files (the namespace test pre-trigger.test.ts shows them on real traffic). */

const T0 = 1_795_000_000; // seconds
let dir: string;

/** A frame whose bytes name it: `name` padded to `length` bytes. */
function frame(name: string, length = 200): Buffer {
  const data = Buffer.alloc(length, 0x2e);
  data.write(name);
  return data;
}

/** Writes packets [name, seconds after T0] as a pcap; `snaplen` cuts them as the ring's tcpdump would. */
async function pcap(
  file: string,
  packets: Array<[string, number]>,
  snaplen = 262_144,
  linkType: number = LinkType.ETHERNET,
) {
  const writer = createPcapWriter(join(dir, file), { linkType, snaplen });
  for (const [name, at] of packets) {
    const data = frame(name);
    await writer.write({
      seconds: T0 + Math.floor(at),
      nanos: Math.round((at % 1) * 1e9),
      data,
      originalLength: data.length,
    });
  }
  await writer.close();
  return join(dir, file);
}

async function names(file: string): Promise<string[]> {
  const out: string[] = [];
  await readCaptureFile(file, (packet) => out.push(Buffer.from(packet.data).toString('latin1').replace(/\.+$/, '')));
  return out;
}

async function joined(pre: string | null, live: string, liveStart: number) {
  const outFile = join(dir, `out-${Math.random().toString(36).slice(2)}.pcap`);
  const result = await joinCapture({
    preFile: pre,
    liveFile: live,
    outFile,
    format: 'pcap',
    snaplen: 262_144,
    liveStartMs: (T0 + liveStart) * 1000,
  });
  return { result, names: await names(outFile) };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'tripcap-join-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('joinCapture', () => {
  it('joins where the first live packets are in the ring, though the ring kept only their headers', async () => {
    const pre = await pcap(
      'ring1.pcap',
      [
        ['a', 0],
        ['b', 1],
        ['c', 2],
        ['d', 3],
      ],
      128,
    );
    // The live socket stamps the same packets a few µs later.
    const live = await pcap('live1.pcap', [
      ['c', 2.000004],
      ['d', 3.000004],
      ['e', 4],
    ]);
    const { result, names: got } = await joined(pre, live, 1.9);
    expect(got).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(result).toEqual({ prePackets: 2, livePackets: 3, seam: 'matched' });
  });

  it('tells a packet sent twice from the seam: the whole overlap must agree', async () => {
    const pre = await pcap('ring2.pcap', [
      ['a', 0],
      ['b', 0.1],
      ['a', 0.2],
      ['b', 0.3],
      ['c', 0.4],
    ]);
    const live = await pcap('live2.pcap', [
      ['a', 0.2],
      ['b', 0.3],
      ['c', 0.4],
      ['d', 0.5],
    ]);
    const { result, names: got } = await joined(pre, live, 0.15);
    expect(got).toEqual(['a', 'b', 'a', 'b', 'c', 'd']);
    expect(result.seam).toBe('matched');
  });

  it('cuts by time when no live packet is in the ring, and at the live start when the live capture is empty', async () => {
    const pre = await pcap('ring3.pcap', [
      ['a', 0],
      ['b', 1],
      ['c', 2],
      ['d', 3],
    ]);
    const other = await pcap('live3.pcap', [
      ['x', 2.5],
      ['y', 3.5],
    ]);
    expect(await joined(pre, other, 2.2)).toMatchObject({
      names: ['a', 'b', 'c', 'x', 'y'],
      result: { prePackets: 3, seam: 'time' },
    });
    const empty = await pcap('live4.pcap', []);
    expect(await joined(pre, empty, 1.5)).toMatchObject({ names: ['a', 'b'], result: { seam: 'time' } });
    expect(await joined(null, other, 2.2)).toMatchObject({
      names: ['x', 'y'],
      result: { prePackets: 0, seam: 'none' },
    });
  });

  it('refuses a ring of another link type', async () => {
    const pre = await pcap('ring5.pcap', [['a', 0]], 128, LinkType.LINUX_SLL2);
    const live = await pcap('live5.pcap', [['b', 1]]);
    await expect(joined(pre, live, 0.5)).rejects.toThrow(/link type 276 is not the capture's 1/);
  });
});

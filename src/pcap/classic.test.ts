import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTwoHosts, netnsSkipReason, sendUdp, type TwoHosts } from '../../test/netns.js';
import { readPcapHeader, scanPcapFile } from './classic.js';

const execFileAsync = promisify(execFile);

function header(magic: number, littleEndian = true): Buffer {
  const buf = Buffer.alloc(24);
  const u32 = (v: number, at: number) => (littleEndian ? buf.writeUInt32LE(v, at) : buf.writeUInt32BE(v, at));
  const u16 = (v: number, at: number) => (littleEndian ? buf.writeUInt16LE(v, at) : buf.writeUInt16BE(v, at));
  u32(magic, 0);
  u16(2, 4);
  u16(4, 6);
  u32(65535, 16);
  u32(113 | (1 << 26), 20); // LINUX_SLL with the FCS-present bit set
  return buf;
}

describe('readPcapHeader', () => {
  it('reads both byte orders and both timestamp precisions', () => {
    expect(readPcapHeader(header(0xa1b2c3d4))).toEqual({
      littleEndian: true,
      nanoseconds: false,
      versionMajor: 2,
      versionMinor: 4,
      snaplen: 65535,
      linkType: 113,
    });
    expect(readPcapHeader(header(0xa1b23c4d, false))).toMatchObject({ littleEndian: false, nanoseconds: true });
    expect(readPcapHeader(header(0xa1b2c3d4, false))).toMatchObject({ littleEndian: false, snaplen: 65535 });
  });

  it('rejects what is not a classic pcap header', () => {
    expect(() => readPcapHeader(Buffer.alloc(10))).toThrow(/header needs 24/);
    expect(() => readPcapHeader(Buffer.from(`0a0d0d0a${'00'.repeat(20)}`, 'hex'))).toThrow(/0x0a0d0d0a/); // pcapng
  });
});

const skipReason = netnsSkipReason();

/** Records from tcpdump: byte-swapped copies stand in for a big-endian writer. */
function byteSwap(file: Buffer): Buffer {
  const out = Buffer.from(file);
  for (const at of [0, 8, 12, 16, 20]) out.writeUInt32BE(file.readUInt32LE(at), at);
  for (const at of [4, 6]) out.writeUInt16BE(file.readUInt16LE(at), at);
  let pos = 24;
  while (pos + 16 <= file.length) {
    const incl = file.readUInt32LE(pos + 8);
    for (let i = 0; i < 16; i += 4) out.writeUInt32BE(file.readUInt32LE(pos + i), pos + i);
    pos += 16 + incl;
  }
  return out;
}

async function capinfos(file: string): Promise<{ packets: number; snaplen: number; encapsulation: string }> {
  const { stdout } = await execFileAsync('capinfos', ['-c', '-l', '-E', '-M', file]);
  const field = (name: string) => new RegExp(`${name}:\\s+(.*)`).exec(stdout)?.[1]?.trim() ?? '';
  return {
    packets: Number(field('Number of packets')),
    snaplen: Number(/\d+/.exec(field('Packet size limit'))?.[0]),
    encapsulation: field('File encapsulation'),
  };
}

/** tshark's frame.time_epoch of the first and last packet, e.g. "1732906891.123456000". */
async function tsharkTimes(file: string): Promise<[string, string]> {
  const { stdout } = await execFileAsync('tshark', ['-r', file, '-T', 'fields', '-e', 'frame.time_epoch'], {
    maxBuffer: 64 << 20,
  });
  const lines = stdout.trim().split('\n');
  return [lines[0] ?? '', lines.at(-1) ?? ''];
}

/** Our ISO time as tshark's epoch string (9 fraction digits). */
function isoToEpoch(iso: string): string {
  const seconds = Date.parse(`${iso.slice(0, 19)}Z`) / 1000;
  return `${seconds}.${iso.slice(20, -1).padEnd(9, '0')}`;
}

describe.skipIf(skipReason !== undefined)(
  `scanPcapFile on tcpdump files${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let hosts: TwoHosts;
    let dir: string;
    const files: Record<'micro' | 'nano' | 'snap', string> = { micro: '', nano: '', snap: '' };
    const counts = { micro: 1300, nano: 40, snap: 300 };

    /** Runs tcpdump -c in host a until it has written `count` UDP packets, while host b sends them. */
    async function capture(name: string, count: number, extra: string[], send: () => Promise<void>): Promise<string> {
      const file = join(dir, name);
      const argv = ['netns', 'exec', hosts.a.ns, 'tcpdump', '-i', hosts.a.ifname, '-w', file, '-c', String(count)];
      const child = spawn('ip', [...argv, '-U', '-Z', 'root', ...extra, 'udp'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
      await new Promise<void>((resolve, reject) => {
        child.stderr.on('data', (d) => {
          stderr += d;
          if (stderr.includes('listening on')) resolve();
        });
        void exited.then(() => reject(new Error(`tcpdump: ${stderr}`)));
      });
      await send();
      if ((await exited) !== 0) throw new Error(`tcpdump: ${stderr}`);
      return file;
    }

    beforeAll(async () => {
      hosts = await createTwoHosts();
      dir = await mkdtemp(join(tmpdir(), 'tripcap-pcap-'));
      const to = { to: hosts.a.ip, port: 40100 };
      // > 1 MiB with records of every size, so the 1 MiB read chunks end inside headers and bodies.
      files.micro = await capture('micro.cap', counts.micro, [], async () => {
        await sendUdp(hosts.b, { ...to, count: 100, size: 18 });
        await sendUdp(hosts.b, { ...to, count: 200, size: 600 });
        await sendUdp(hosts.b, { ...to, count: 1000, size: 1400 });
      });
      files.nano = await capture('nano.cap', counts.nano, ['--time-stamp-precision=nano'], () =>
        sendUdp(hosts.b, { ...to, count: counts.nano, size: 100 }),
      );
      files.snap = await capture('snap.cap', counts.snap, ['-s', '200'], async () => {
        await sendUdp(hosts.b, { ...to, count: 150, size: 100 });
        await sendUdp(hosts.b, { ...to, count: 150, size: 1000 });
      });
    });
    afterAll(async () => {
      await hosts?.destroy();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('agrees with capinfos and tshark on whole files (µs, ns, snaplen)', async () => {
      for (const kind of ['micro', 'nano', 'snap'] as const) {
        const file = files[kind];
        const scan = await scanPcapFile(file);
        const info = await capinfos(file);
        const size = (await stat(file)).size;
        expect(scan.packets).toBe(counts[kind]);
        expect(info.packets).toBe(counts[kind]);
        expect(info.encapsulation).toBe('ether'); // capinfos -M names LINKTYPE_ETHERNET so
        expect(scan).toMatchObject({
          bytes: size,
          validLength: size,
          truncated: false,
          linkType: 1,
          snaplen: info.snaplen,
        });
        const [first, last] = await tsharkTimes(file);
        expect(isoToEpoch(scan.firstTime ?? '')).toBe(first);
        expect(isoToEpoch(scan.lastTime ?? '')).toBe(last);
      }
      expect((await scanPcapFile(files.snap)).snaplen).toBe(200);
      expect((await scanPcapFile(files.nano)).firstTime).toMatch(/\.\d{9}Z$/);
      expect((await scanPcapFile(files.micro)).firstTime).toMatch(/\.\d{6}Z$/);
    });

    it('reads big-endian files the same', async () => {
      const swapped = join(dir, 'swapped.cap');
      await writeFile(swapped, byteSwap(await readFile(files.nano)));
      expect(readPcapHeader(await readFile(swapped))).toMatchObject({ littleEndian: false, nanoseconds: true });
      const { bytes: _b, ...expected } = await scanPcapFile(files.nano);
      expect(await scanPcapFile(swapped)).toMatchObject(expected);
      expect((await capinfos(swapped)).packets).toBe(counts.nano);
    });

    it('stops at the first incomplete record; cutting to validLength leaves a file capinfos reads whole', async () => {
      const size = (await stat(files.micro)).size;
      const cut = join(dir, 'cut.cap');
      for (const at of [24, 25, 24 + 15, 24 + 16, size - 1, size - 700, 1_048_576 + 3, Math.floor(size / 3)]) {
        await copyFile(files.micro, cut);
        await truncate(cut, at);
        const scan = await scanPcapFile(cut);
        expect(scan.bytes).toBe(at);
        expect(scan.truncated).toBe(scan.validLength < at);
        await truncate(cut, scan.validLength);
        expect((await capinfos(cut)).packets).toBe(scan.packets);
        expect(await scanPcapFile(cut)).toMatchObject({ packets: scan.packets, truncated: false });
      }
    });

    it('considers only maxBytes bytes', async () => {
      const size = (await stat(files.snap)).size;
      const cut = join(dir, 'max.cap');
      for (const maxBytes of [24, 1000, 20_000, size - 1, size, size + 1000]) {
        const scan = await scanPcapFile(files.snap, { maxBytes });
        expect(scan.bytes).toBe(Math.min(size, maxBytes));
        expect(scan.validLength).toBeLessThanOrEqual(maxBytes);
        await copyFile(files.snap, cut);
        await truncate(cut, scan.validLength);
        expect((await capinfos(cut)).packets).toBe(scan.packets);
      }
      expect((await scanPcapFile(files.snap, { maxBytes: size })).truncated).toBe(false);
      await expect(scanPcapFile(files.snap, { maxBytes: 23 })).rejects.toThrow(/smaller than the pcap file header/);
    });

    it('resumes from an earlier scan, counting only the records after it (as a growing file is followed)', async () => {
      const whole = await scanPcapFile(files.snap);
      const first = await scanPcapFile(files.snap, { maxBytes: 20_000 });
      const rest = await scanPcapFile(files.snap, { startOffset: first.validLength });
      expect(first.packets).toBeGreaterThan(0);
      expect(first.packets + rest.packets).toBe(whole.packets);
      expect(rest.validLength).toBe(whole.validLength);
    });
  },
);

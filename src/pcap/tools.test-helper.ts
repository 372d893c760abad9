import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/**
 * Test helpers: tshark and capinfos as oracles (they exit non-zero on a cut file but still print what they read),
 * and a byte-level pcapng block builder for blocks the writer does not make (SPB, obsolete PB, unknown, broken).
 */

const execFileAsync = promisify(execFile);

async function runTool(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> {
  try {
    const { stdout, stderr } = await execFileAsync(cmd, args, { maxBuffer: 256 << 20, timeout: 60_000 });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    if (typeof e.code !== 'number') throw err;
    return { stdout: e.stdout ?? '', stderr: e.stderr ?? '', code: e.code };
  }
}

/** `tshark -r file -T fields -e …`: one array of field values per packet (tab separated, multi-values as tshark joins). */
export async function tsharkFields(file: string, fields: string[], extra: string[] = []): Promise<string[][]> {
  const { stdout } = await runTool('tshark', [
    '-r',
    file,
    '-n',
    '-T',
    'fields',
    '-E',
    'separator=/t',
    ...extra,
    ...fields.flatMap((f) => ['-e', f]),
  ]);
  return stdout
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => line.split('\t'));
}

export interface CapinfosReport {
  packets: number;
  /** Sum of the packets' lengths on the wire ("Data size": frame.len, not the captured bytes). */
  dataBytes: number;
  fileType: string;
  encapsulation: string;
  precision: string;
  application: string;
  comment: string;
  /** capinfos' exit code: 1 when the file is cut short. */
  exitCode: number;
  stderr: string;
}

export async function capinfos(file: string): Promise<CapinfosReport> {
  const { stdout, stderr, code } = await runTool('capinfos', ['-T', '-M', '-r', file]);
  const row = stdout.trim().split('\n').at(-1)?.split('\t') ?? [];
  return {
    fileType: row[1] ?? '',
    encapsulation: row[2] ?? '',
    precision: row[3] ?? '',
    packets: Number(row[7]),
    dataBytes: Number(row[9]),
    application: row[23] ?? '',
    comment: row[24] ?? '',
    exitCode: code,
    stderr,
  };
}

/** `tshark -r` for a file's epoch timestamps as "seconds.nanos" strings, exactly as tshark prints them. */
export function epochString(seconds: number, nanos: number): string {
  return `${seconds}.${String(nanos).padStart(9, '0')}`;
}

// ---- pcapng block builder -------------------------------------------------------------------------------------------

export class BlockBuilder {
  constructor(readonly le = true) {}

  u16(v: number): Buffer {
    const b = Buffer.alloc(2);
    if (this.le) b.writeUInt16LE(v);
    else b.writeUInt16BE(v);
    return b;
  }

  u32(v: number): Buffer {
    const b = Buffer.alloc(4);
    if (this.le) b.writeUInt32LE(v >>> 0);
    else b.writeUInt32BE(v >>> 0);
    return b;
  }

  pad(b: Uint8Array): Buffer {
    return Buffer.concat([b, Buffer.alloc((4 - (b.length % 4)) % 4)]);
  }

  /** Options with opt_endofopt; values are strings (UTF-8) or bytes. */
  options(list: Array<[number, string | Uint8Array]>): Buffer {
    if (list.length === 0) return Buffer.alloc(0);
    const parts = list.map(([code, value]) => {
      const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : Buffer.from(value);
      return Buffer.concat([this.u16(code), this.u16(bytes.length), this.pad(bytes)]);
    });
    return Buffer.concat([...parts, this.u32(0)]);
  }

  /** A block with correct lengths (or `length` forced into both length fields). */
  block(type: number, body: Uint8Array, length?: number): Buffer {
    const padded = this.pad(body);
    const total = length ?? 12 + padded.length;
    return Buffer.concat([this.u32(type), this.u32(total), padded, this.u32(total)]);
  }

  shb(options: Array<[number, string | Uint8Array]> = [], version: [number, number] = [1, 0]): Buffer {
    return this.block(
      0x0a0d0d0a,
      Buffer.concat([
        this.u32(0x1a2b3c4d),
        this.u16(version[0]),
        this.u16(version[1]),
        Buffer.alloc(8, 0xff),
        this.options(options),
      ]),
    );
  }

  idb(linkType: number, snaplen: number, options: Array<[number, string | Uint8Array]> = []): Buffer {
    return this.block(1, Buffer.concat([this.u16(linkType), this.u16(0), this.u32(snaplen), this.options(options)]));
  }

  epb(
    interfaceId: number,
    high: number,
    low: number,
    data: Uint8Array,
    originalLength = data.length,
    options: Array<[number, string | Uint8Array]> = [],
  ): Buffer {
    return this.block(
      6,
      Buffer.concat([
        this.u32(interfaceId),
        this.u32(high),
        this.u32(low),
        this.u32(data.length),
        this.u32(originalLength),
        this.pad(data),
        this.options(options),
      ]),
    );
  }

  spb(originalLength: number, data: Uint8Array): Buffer {
    return this.block(3, Buffer.concat([this.u32(originalLength), this.pad(data)]));
  }

  /** Obsolete Packet Block (type 2). */
  opb(interfaceId: number, high: number, low: number, data: Uint8Array, originalLength = data.length): Buffer {
    return this.block(
      2,
      Buffer.concat([
        this.u16(interfaceId),
        this.u16(0),
        this.u32(high),
        this.u32(low),
        this.u32(data.length),
        this.u32(originalLength),
        this.pad(data),
      ]),
    );
  }
}

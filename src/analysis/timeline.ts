import { arrayIn, type PacketMemory } from './packet-path.js';

/**
 * I/O timeline in one pass without knowing the capture's length: fine bins whose width climbs a ladder of round
 * widths (1 ms, 2 ms, 10 ms, … 1 s, 2 s, 10 s, 20 s, 1 min, …) whenever more than MAX_FINE_BINS would be needed,
 * each step a whole multiple of the last so bins merge exactly. At the end the report takes the smallest round width
 * that gives at most MAX_REPORT_BINS bins (so between 60 and 300 for any capture longer than 60 ms), or the width the
 * caller asked for.
 */

const LADDER_NS = [
  1e6, 2e6, 1e7, 2e7, 1e8, 2e8, 1e9, 2e9, 1e10, 2e10, 6e10, 1.2e11, 6e11, 1.2e12, 3.6e12, 7.2e12, 2.16e13, 4.32e13,
  8.64e13,
];
const MAX_FINE_BINS = 4096;
export const MAX_REPORT_BINS = 300;
/** A fixed width that would need more bins than this is widened (by whole multiples) with a warning. */
const MAX_FIXED_BINS = 100_000;

export const Direction = { NONE: 0, OUT: 1, IN: 2 } as const;

export class TimelineBuilder {
  binNs: number;
  /** Bins in use. */
  count = 0;
  packets: Float64Array;
  bytes: Float64Array;
  outPackets: Float64Array;
  outBytes: Float64Array;
  inPackets: Float64Array;
  inBytes: Float64Array;
  widened = false;
  private ladder: number;
  /** Bins before they must widen. */
  readonly limit: number;

  /**
   * @param clock clock[0] is the time (ns after the first packet) of the packet being added
   * @param fixedNs a bin width the caller chose, or undefined for the automatic one
   */
  constructor(
    readonly clock: Float64Array,
    readonly fixedNs?: number,
    /** Where the columns live when it has room (the analyzer's packet memory). */
    private readonly memory?: PacketMemory,
  ) {
    this.ladder = 0;
    if (fixedNs !== undefined) {
      this.binNs = fixedNs;
      this.limit = MAX_FIXED_BINS;
    } else {
      this.binNs = LADDER_NS[0] as number;
      this.limit = MAX_FINE_BINS;
    }
    // room for every fine bin of the automatic widths from the start: growing while packets arrive would deoptimize
    // the packet path (its code for growing has never run); only a fixed width may need more
    const n = fixedNs === undefined ? MAX_FINE_BINS : 256;
    this.packets = this.column(n);
    this.bytes = this.column(n);
    this.outPackets = this.column(n);
    this.outBytes = this.column(n);
    this.inPackets = this.column(n);
    this.inBytes = this.column(n);
  }
  private column(length: number): Float64Array {
    return arrayIn(this.memory, Float64Array, length);
  }

  private index(t: number): number {
    if (t <= 0) return 0;
    let i = Math.floor(t / this.binNs);
    if (i >= this.limit) {
      this.coarsen(i);
      i = Math.floor(t / this.binNs);
    }
    if (i >= this.packets.length) this.grow(i + 1);
    if (i >= this.count) this.count = i + 1;
    return i;
  }

  /** Counts a packet at clock[0]; `direction` relative to the captured host. */
  add(bytes: number, direction: number): void {
    const i = this.index(this.clock[0] as number);
    this.packets[i] = (this.packets[i] as number) + 1;
    this.bytes[i] = (this.bytes[i] as number) + bytes;
    this.addDirectionAtBin(i, bytes, direction);
  }

  /** Adds only the direction of a packet already counted at clock[0] (when the host was decided after it). */
  addDirection(bytes: number, direction: number): void {
    if (direction !== 0) this.addDirectionAtBin(this.index(this.clock[0] as number), bytes, direction);
  }

  /**
   * Without branches on the direction (adding 0 to the other columns): while the host is being inferred every
   * direction is NONE, and code that first runs once the host is known would deoptimize the packet path.
   */
  private addDirectionAtBin(i: number, bytes: number, direction: number): void {
    const out = direction === Direction.OUT ? 1 : 0;
    const inbound = direction === Direction.IN ? 1 : 0;
    this.outPackets[i] = (this.outPackets[i] as number) + out;
    this.outBytes[i] = (this.outBytes[i] as number) + bytes * out;
    this.inPackets[i] = (this.inPackets[i] as number) + inbound;
    this.inBytes[i] = (this.inBytes[i] as number) + bytes * inbound;
  }

  private columns(): Float64Array[] {
    return [this.packets, this.bytes, this.outPackets, this.outBytes, this.inPackets, this.inBytes];
  }

  private grow(n: number): void {
    let size = this.packets.length;
    while (size < n) size *= 2;
    const next = this.columns().map((c) => {
      const a = this.column(size);
      a.set(c);
      return a;
    });
    [this.packets, this.bytes, this.outPackets, this.outBytes, this.inPackets, this.inBytes] = next as [
      Float64Array,
      Float64Array,
      Float64Array,
      Float64Array,
      Float64Array,
      Float64Array,
    ];
  }

  /** Widens the bins until `index` (at the current width) fits the limit. */
  private coarsen(index: number): void {
    let factor = 1;
    if (this.fixedNs !== undefined) {
      while (index / factor >= this.limit) factor *= 2;
      this.widened = true;
    } else {
      const t = index * this.binNs;
      let next = this.ladder;
      let width = this.binNs;
      while (t / width >= this.limit) {
        next++;
        width = LADDER_NS[next] ?? width * 2;
      }
      factor = Math.round(width / this.binNs);
      this.ladder = next;
    }
    this.merge(factor);
  }

  private merge(factor: number): void {
    for (const c of this.columns()) {
      for (let i = 0; i < this.count; i++) {
        const j = Math.floor(i / factor);
        if (j !== i) {
          c[j] = (c[j] as number) + (c[i] as number);
          c[i] = 0;
        }
      }
    }
    this.count = Math.ceil(this.count / factor);
    this.binNs *= factor;
  }

  /** Sum of a column over [fromNs, toNs), prorating the bins cut by the edges. */
  sum(column: Float64Array, fromNs: number, toNs: number): number {
    let total = 0;
    const w = this.binNs;
    for (let i = Math.max(0, Math.floor(fromNs / w)); i < this.count && i * w < toNs; i++) {
      const start = i * w;
      const overlap = Math.min(toNs, start + w) - Math.max(fromNs, start);
      if (overlap > 0) total += ((column[i] as number) * overlap) / w;
    }
    return total;
  }

  /** The bins to report for a capture lasting `durationNs`: merges fine bins to the final width. */
  finish(durationNs: number): { binNs: number; columns: number[][] } {
    if (this.fixedNs === undefined) {
      let width = this.binNs;
      let k = this.ladder;
      while (Math.floor(durationNs / width) + 1 > MAX_REPORT_BINS) {
        k++;
        width = LADDER_NS[k] ?? width * 2;
      }
      const factor = Math.round(width / this.binNs);
      if (factor > 1) this.merge(factor);
    }
    const count = this.count;
    return {
      binNs: this.binNs,
      columns: this.columns().map((c) => Array.from(c.subarray(0, count))),
    };
  }
}

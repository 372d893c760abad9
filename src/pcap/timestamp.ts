/**
 * Exact conversion between pcapng 64-bit timestamps (units since the epoch, in two 32-bit halves) and seconds +
 * nanoseconds, without BigInt on the common paths: 64-bit by 32-bit long division in 16-bit limbs keeps every
 * intermediate below 2^53. Resolutions the fast paths cannot do exactly (finer than 10^-11 s, or 2^-33 s and finer)
 * fall back to BigInt.
 */

const TWO_32 = 4294967296;
/** Largest divisor for which remainder·2^16 + limb stays exact in a double (< 2^53). */
const LIMB_DIVISOR_LIMIT = 2 ** 37;

const Mode = {
  /** units ≤ 1e9 and 1e9 divisible by units (10^0 … 10^9, 2^0 … 2^9): nanos = rem · factor */
  Multiply: 0,
  /** units = 10^k, 9 < k ≤ 11: nanos = floor(rem / factor) */
  Divide: 1,
  /** units = 2^k, 9 < k ≤ 32: nanos = floor(rem · 1e9 / units), exact as rem · (1e9/2^k) is */
  Binary: 2,
  /** anything else: BigInt */
  Big: 3,
} as const;
type Mode = (typeof Mode)[keyof typeof Mode];

export class TimestampConverter {
  /** Nanoseconds of the last toTime(). */
  nanos = 0;
  /** High and low 32 bits of the last fromTime(). */
  high = 0;
  low = 0;
  private readonly mode: Mode;
  private readonly factor: number;
  private readonly big: bigint;

  /**
   * @param unitsPerSecond 10^k or 2^k (pcapng if_tsresol); 1e6 for classic µs pcap, 1e9 for ns
   * @param offsetSeconds pcapng if_tsoffset, added to the seconds
   */
  constructor(
    readonly unitsPerSecond: number,
    readonly offsetSeconds = 0,
    unitsBig?: bigint,
  ) {
    this.big = unitsBig ?? BigInt(unitsPerSecond);
    if (unitsPerSecond <= 1e9 && 1e9 % unitsPerSecond === 0) {
      this.mode = Mode.Multiply;
      this.factor = 1e9 / unitsPerSecond;
    } else if (unitsPerSecond < LIMB_DIVISOR_LIMIT && unitsPerSecond % 1e9 === 0) {
      this.mode = Mode.Divide;
      this.factor = unitsPerSecond / 1e9;
    } else if (unitsPerSecond <= TWO_32 && Number.isInteger(Math.log2(unitsPerSecond))) {
      this.mode = Mode.Binary;
      this.factor = 1e9 / unitsPerSecond;
    } else {
      this.mode = Mode.Big;
      this.factor = 0;
    }
  }

  /** The converter of a pcapng if_tsresol byte (10^-n, or 2^-n with the high bit), or undefined if out of range. */
  static fromTsresol(tsresol: number, offsetSeconds = 0): TimestampConverter | undefined {
    const exponent = tsresol & 0x7f;
    if (tsresol & 0x80) {
      if (exponent > 63) return undefined;
      return new TimestampConverter(2 ** exponent, offsetSeconds, 1n << BigInt(exponent));
    }
    if (exponent > 19) return undefined; // 10^20 units would not fit the 64-bit field's range of a second
    return new TimestampConverter(10 ** exponent, offsetSeconds, 10n ** BigInt(exponent));
  }

  /** Seconds since the epoch of a 64-bit timestamp (high, low); sets `nanos`. */
  toTime(high: number, low: number): number {
    let seconds: number;
    let rem: number;
    const d = this.unitsPerSecond;
    if (this.mode === Mode.Big) return this.toTimeBig(high, low);
    if (high < 0x200000) {
      // total < 2^53: plain double arithmetic is exact
      const total = high * TWO_32 + low;
      seconds = Math.floor(total / d);
      rem = total - seconds * d;
    } else {
      // long division of four 16-bit limbs; every partial value < d·2^16 ≤ 2^53
      let cur = high >>> 16;
      let q = Math.floor(cur / d);
      rem = cur - q * d;
      cur = rem * 65536 + (high & 0xffff);
      let qd = Math.floor(cur / d);
      rem = cur - qd * d;
      q = q * 65536 + qd;
      cur = rem * 65536 + (low >>> 16);
      qd = Math.floor(cur / d);
      rem = cur - qd * d;
      q = q * 65536 + qd;
      cur = rem * 65536 + (low & 0xffff);
      qd = Math.floor(cur / d);
      rem = cur - qd * d;
      seconds = q * 65536 + qd;
    }
    if (this.mode === Mode.Multiply) this.nanos = rem * this.factor;
    else if (this.mode === Mode.Divide) this.nanos = (rem - (rem % this.factor)) / this.factor;
    else this.nanos = Math.floor(rem * this.factor);
    return seconds + this.offsetSeconds;
  }

  private toTimeBig(high: number, low: number): number {
    const total = (BigInt(high) << 32n) | BigInt(low);
    const seconds = total / this.big;
    this.nanos = Number(((total % this.big) * 1_000_000_000n) / this.big);
    return Number(seconds) + this.offsetSeconds;
  }

  /**
   * The 64-bit timestamp of (seconds, nanos) in this converter's units, truncated to its resolution (rounded up when
   * it is finer than 1 ns, so that toTime() gives back the same nanos); sets `high` and `low`. Throws a RangeError when the time is before the offset or does not fit 64 bits.
   */
  fromTime(seconds: number, nanos: number): void {
    const s = seconds - this.offsetSeconds;
    if (!Number.isInteger(s) || s < 0 || !Number.isInteger(nanos) || nanos < 0 || nanos >= 1e9) {
      throw new RangeError(`timestamp ${seconds}.${nanos} cannot be written (offset ${this.offsetSeconds})`);
    }
    if (this.mode === Mode.Multiply && s < 2 ** 34) {
      const units = this.unitsPerSecond;
      const frac = Math.floor(nanos / this.factor);
      // s·units + frac with s split in 16-bit halves so each product stays < 2^53
      const lo = (s % 65536) * units + frac; // < 2^16·2^30 + 2^30
      const hi = Math.floor(s / 65536) * units; // < 2^18·2^30
      const low = (hi % 65536) * 65536 + lo; // < 2^32 + 2^47
      this.low = low % TWO_32;
      this.high = Math.floor(hi / 65536) + Math.floor(low / TWO_32);
      if (this.high >= TWO_32) throw new RangeError(`timestamp ${seconds} s does not fit 64 bits of units`);
      return;
    }
    // Finer than 1 ns: round the fraction up, so that reading it back (which truncates) gives the same nanos.
    const fine = this.big > 1_000_000_000n;
    const total = BigInt(s) * this.big + (BigInt(nanos) * this.big + (fine ? 999_999_999n : 0n)) / 1_000_000_000n;
    if (total >= 1n << 64n) throw new RangeError(`timestamp ${seconds} s does not fit 64 bits of units`);
    this.high = Number(total >> 32n);
    this.low = Number(total & 0xffffffffn);
  }
}

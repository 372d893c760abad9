import { arrayIn, type PacketMemory } from './packet-path.js';

/**
 * The width of the analyzer's flow key (two addresses, ports, meta), which the table hashes and compares without a
 * loop: the loop over `width` took a quarter of the packet path's time.
 */
export const FLOW_KEY_WIDTH = 10;

/**
 * An open-addressing hash table from fixed-width keys of 32-bit words to dense entry numbers 0, 1, 2, … (in insertion
 * order). No allocation per lookup: the caller fills `key` and calls `findOrInsert()`.
 *
 * Each entry is a record of `stride` words whose first `width` words are the key; the rest is the caller's, reachable
 * through the `u8` / `f64` views of the same memory (`stride` even for `f64`), so that a lookup and the counters it
 * leads to share cache lines. Slots hold only the entry number (4 bytes), and a probe compares the record's key: with
 * many flows the packet path waits on cache misses, and a slot array half the size stays in cache more (at load ≤ 1/2
 * most lookups find their entry at the first probe, in the record they were going to read anyway).
 */
export class FlowTable {
  /** The key to look up: fill `width` words, then call findOrInsert(). */
  readonly key: Uint32Array;
  /** Number of entries. */
  size = 0;
  /** True when the last findOrInsert() created the entry. */
  inserted = false;
  /** Entry records, `stride` words each, key first, in entry order. Re-read after an insert: growing replaces it. */
  keys: Uint32Array;
  u8: Uint8Array;
  f64: Float64Array;
  readonly stride: number;
  /** Entry number per slot (-1: empty), and slots − 1. Replaced when the table grows. */
  slots: Int32Array;
  mask: number;

  constructor(
    readonly width: number,
    initialEntries = 1024,
    stride = width,
    private readonly memory?: PacketMemory,
  ) {
    this.stride = stride;
    this.key = new Uint32Array(width);
    let slots = 16;
    while (slots < initialEntries * 2) slots *= 2;
    this.slots = this.int32(slots).fill(-1);
    this.mask = slots - 1;
    this.keys = this.uint32((slots / 2) * stride);
    this.u8 = bytesOf(this.keys);
    this.f64 = this.doublesOf(this.keys);
  }

  /** Entries the records hold before they grow. */
  get capacity(): number {
    return this.keys.length / this.stride;
  }

  /** The entry of `key`, or -1 (and `inserted` false: nothing was). */
  find(): number {
    this.inserted = false;
    const h = this.hash();
    const slots = this.slots;
    let slot = h & this.mask;
    for (;;) {
      const e = slots[slot] as number;
      if (e < 0) return -1;
      if (this.matches(e)) return e;
      slot = (slot + 1) & this.mask;
    }
  }

  /** The entry of `key`, created when new (sets `inserted`). */
  findOrInsert(): number {
    const h = this.hash();
    const slots = this.slots;
    let slot = h & this.mask;
    for (;;) {
      const e = slots[slot] as number;
      if (e < 0) break;
      if (this.matches(e)) {
        this.inserted = false;
        return e;
      }
      slot = (slot + 1) & this.mask;
    }
    const e = this.size++;
    if (e >= this.capacity) this.growEntries();
    this.keys.set(this.key, e * this.stride);
    slots[slot] = e;
    this.inserted = true;
    if (this.size * 2 > this.mask + 1) this.growSlots();
    return e;
  }

  private matches(e: number): boolean {
    const keys = this.keys;
    const key = this.key;
    const base = e * this.stride;
    if (this.width === FLOW_KEY_WIDTH) {
      // ports and addresses first: they tell flows apart
      return (
        keys[base + 8] === key[8] &&
        keys[base] === key[0] &&
        keys[base + 4] === key[4] &&
        keys[base + 9] === key[9] &&
        keys[base + 1] === key[1] &&
        keys[base + 2] === key[2] &&
        keys[base + 3] === key[3] &&
        keys[base + 5] === key[5] &&
        keys[base + 6] === key[6] &&
        keys[base + 7] === key[7]
      );
    }
    for (let i = 0; i < this.width; i++) if (keys[base + i] !== key[i]) return false;
    return true;
  }

  private hash(): number {
    const key = this.key;
    let h: number;
    if (this.width === FLOW_KEY_WIDTH) {
      // addresses (the low words of IPv4 keys), ports and meta each through a multiply; the rest of an IPv6 address
      // folded in
      h =
        Math.imul((key[0] as number) ^ Math.imul(key[4] as number, 0x85ebca6b), 0x9e3779b1) ^
        Math.imul((key[8] as number) ^ ((key[9] as number) << 16), 0xc2b2ae35) ^
        Math.imul(
          (key[1] as number) ^
            (key[2] as number) ^
            (key[3] as number) ^
            Math.imul((key[5] as number) ^ (key[6] as number) ^ (key[7] as number), 0x165667b1),
          0x27d4eb2f,
        );
    } else {
      h = 0x811c9dc5 ^ this.width;
      for (let i = 0; i < this.width; i++) {
        h = Math.imul(h ^ (key[i] as number), 0x9e3779b1);
        h = (h << 15) | (h >>> 17);
      }
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  }

  private uint32(length: number): Uint32Array {
    return arrayIn(this.memory, Uint32Array, length);
  }
  private int32(length: number): Int32Array {
    return arrayIn(this.memory, Int32Array, length);
  }

  private doublesOf(keys: Uint32Array): Float64Array {
    return new Float64Array(keys.buffer, keys.byteOffset, this.stride % 2 === 0 ? keys.length / 2 : 0);
  }

  private growEntries(): void {
    const keys = this.uint32(this.keys.length * 2);
    keys.set(this.keys);
    this.keys = keys;
    this.u8 = bytesOf(keys);
    this.f64 = this.doublesOf(keys);
  }

  /** Rehashes every key from its record (slots keep no hash); `key` is restored, as the caller may still read it. */
  private growSlots(): void {
    const n = (this.mask + 1) * 2;
    const slots = this.int32(n).fill(-1);
    const mask = n - 1;
    const key = this.key;
    const keys = this.keys;
    const saved = key.slice();
    for (let e = 0; e < this.size; e++) {
      for (let i = 0; i < this.width; i++) key[i] = keys[e * this.stride + i] as number;
      let slot = this.hash() & mask;
      while ((slots[slot] as number) >= 0) slot = (slot + 1) & mask;
      slots[slot] = e;
    }
    key.set(saved);
    this.slots = slots;
    this.mask = mask;
  }
}

function bytesOf(keys: Uint32Array): Uint8Array {
  return new Uint8Array(keys.buffer, keys.byteOffset, keys.byteLength);
}

// Growing is rare: the first growth happens after findOrInsert() has been optimized for the packet path, and a call
// site that has never run (no type feedback) makes V8 deoptimize the packet path there and compile it again. Running
// the growth paths once at load, on a throwaway table, gives them feedback (methods share it across instances).
// Looking each key up again gives the key comparison's loop feedback too (a first comparison of a key that matches
// would deoptimize the packet path when finishing the report uses a table of another width).
{
  const t = new FlowTable(1, 1);
  for (let i = 0; i < 256; i++) {
    t.key[0] = i;
    t.findOrInsert();
    t.findOrInsert();
  }
}

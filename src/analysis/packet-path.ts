import { PACKET_PATH_WASM } from './packet-path-wasm.js';

export { P, Step } from './packet-path-wasm.js';

/**
 * The analyzer's fast packet path (src/analysis/wasm/packet-path.ts, WebAssembly) and the memory it shares with the
 * analyzer: the reader's buffers (so the path reads packets where they were read) and the flow table (so both paths
 * count into the same records). The analyzer hands a packet to it first; what it declines (returns 0 for) the
 * analyzer's TypeScript path counts.
 *
 * The memory is reserved whole at the start and never grows, so that views of it never detach (the kernel commits a
 * page only when it is first written: what is reserved and not used costs address space, not memory). Allocation is
 * a bump of a pointer: a flow table that grows leaves its old arrays behind, at most as much again as its final size.
 */

// Node has WebAssembly; TypeScript declares it only with the DOM library: the little used here.
declare global {
  namespace WebAssembly {
    class Memory {
      constructor(descriptor: { initial: number; maximum?: number });
      readonly buffer: ArrayBuffer;
    }
    class Module {
      constructor(bytes: Uint8Array);
    }
    class Instance {
      constructor(module: Module, imports: Record<string, Record<string, unknown>>);
      readonly exports: Record<string, unknown>;
    }
  }
}

const PAGE = 65_536;
/** WebAssembly's 32-bit addresses allow 4 GiB; a larger reservation than this is not worth its address space. */
export const MAX_PACKET_MEMORY = 1 << 30;
/** The parameter block at byte 0 (P): 128 doubles (scripts/build-wasm.ts checks that P stays within them). */
const PARAM_BYTES = 1024;

let compiled: WebAssembly.Module | undefined;

/** A typed-array class: Uint8Array, Int32Array, Uint32Array, Float64Array. */
export interface ArrayType<T> {
  new (length: number): T;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
  readonly BYTES_PER_ELEMENT: number;
}

/** `length` elements of `Type` in `memory` when it has room, else on the JavaScript heap. */
export function arrayIn<T>(memory: PacketMemory | undefined, Type: ArrayType<T>, length: number): T {
  return memory?.array(Type, length) ?? new Type(length);
}

/** The module's functions (src/analysis/wasm/packet-path.ts says what each takes: offsets in the memory, counts). */
export interface PacketPathFunctions {
  /** Counts the complete classic pcap records in [from, to) (memory offsets). */
  run(from: number, to: number): number;
  /** The same for pcapng: counts Enhanced Packet Blocks. */
  runBlocks(from: number, to: number): number;
  /** Writes run()'s counts into the parameter block. */
  storeState(): void;
  /** build-report.ts's aggregations and row selections, on arrays in the memory. */
  ipPairs(...offsetsAndCounts: number[]): number;
  ipEndpointTally(...offsetsAndCounts: number[]): number;
  l4EndpointTally(...offsetsAndCounts: number[]): number;
  flowColumns(...offsetsAndCounts: number[]): void;
  topIndices(...offsetsAndCounts: number[]): number;
  pairRows(...offsetsAndCounts: number[]): number;
  flowRows(...offsetsAndCounts: number[]): number;
  tallyRows(...offsetsAndCounts: number[]): number;
  /** The analyzer's host inference: its addresses' packets. */
  addressTally(...offsetsAndCounts: number[]): number;
}

export class PacketMemory {
  readonly memory: WebAssembly.Memory;
  /** The module's functions, instantiated on this memory. */
  readonly wasm: PacketPathFunctions;
  /** The parameter block run() reads and writes. */
  readonly params: Float64Array;
  private used = PARAM_BYTES;

  constructor(bytes: number) {
    const pages = Math.ceil(Math.min(bytes, MAX_PACKET_MEMORY) / PAGE);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
    compiled ??= new WebAssembly.Module(Buffer.from(PACKET_PATH_WASM, 'base64'));
    const instance = new WebAssembly.Instance(compiled, { env: { memory: this.memory } });
    this.wasm = instance.exports as unknown as PacketPathFunctions;
    this.params = new Float64Array(this.memory.buffer, 0, PARAM_BYTES / 8);
  }

  /** The offset of `bytes` free bytes (8-byte aligned), or undefined when the memory is used up. */
  private take(bytes: number): number | undefined {
    const at = this.used;
    if (at + bytes > this.memory.buffer.byteLength) return undefined;
    this.used = at + Math.ceil(bytes / 8) * 8;
    return at;
  }

  /** `length` elements of `Type` in this memory, or undefined when it is used up. */
  array<T>(Type: ArrayType<T>, length: number): T | undefined {
    const at = this.take(length * Type.BYTES_PER_ELEMENT);
    return at === undefined ? undefined : new Type(this.memory.buffer, at, length);
  }

  /** A buffer for the reader (ReadOptions.allocateBuffer). */
  buffer(length: number): Buffer | undefined {
    const at = this.take(length);
    return at === undefined ? undefined : Buffer.from(this.memory.buffer, at, length);
  }

  /** Whether all of `arrays` live in this memory (the WebAssembly functions can take them). */
  holds(...arrays: ArrayBufferView[]): boolean {
    return arrays.every((array) => array.buffer === this.memory.buffer);
  }
}

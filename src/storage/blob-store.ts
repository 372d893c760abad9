import type { Readable } from 'node:stream';

/** The container Azure Network Watcher writes packet captures to; every blob name is relative to it. */
export const CAPTURE_CONTAINER = 'network-watcher-logs';

/** Content type of classic pcap files (IANA `application/vnd.tcpdump.pcap`). */
export const PCAP_CONTENT_TYPE = 'application/vnd.tcpdump.pcap';

export interface PutResult {
  size: number;
  /** Lower-case hex SHA-256 of the stored bytes. */
  sha256: string;
  url: string;
}

export interface PutOptions {
  /** Hex SHA-256 the content must have; on a mismatch nothing is stored and `ChecksumMismatch` is thrown. */
  expectedSha256?: string;
  /** Defaults to `application/vnd.tcpdump.pcap` (kept by Azure Blob; the local folder does not store it). */
  contentType?: string;
  signal?: AbortSignal;
}

/** A byte range, both ends inclusive as in HTTP `Range: bytes=start-end`; `end` past the blob's end is clamped. */
export interface ByteRange {
  start: number;
  end?: number;
}

export interface BlobStore {
  readonly kind: 'local' | 'azure-blob';
  /**
   * Stores a whole blob from a stream, replacing any blob of that name. Atomic: readers never see a partial blob;
   * on error nothing is left behind. If `expectedSha256` is given and differs, nothing is stored and it throws a
   * StorageError with code 'ChecksumMismatch'. Two concurrent puts of one name never store a blend (on Azure the
   * loser of the race may fail with Azure's InvalidBlockList).
   */
  put(name: string, source: NodeJS.ReadableStream | Readable, options?: PutOptions): Promise<PutResult>;
  /**
   * A readable of the blob (optionally a byte range), or null when absent. `size` is always the size of the WHOLE
   * blob (what `Content-Range: bytes s-e/size` needs), not the length of the range. A range starting past the last
   * byte throws `InvalidRange` (start 0 is always allowed, so an empty blob can be read with a range).
   */
  get(name: string, range?: ByteRange): Promise<{ stream: Readable; size: number } | null>;
  /** `lastModified` is UTC ISO-8601. */
  stat(name: string): Promise<{ size: number; lastModified: string } | null>;
  /** True when a blob was deleted, false when there was none. */
  delete(name: string): Promise<boolean>;
  /** The blob's public-style URL, shown as Azure's `storagePath`. */
  url(name: string): string;
  /** Lists blob names starting with `prefix` (a plain string prefix, as in Azure; '' lists all). Order unspecified. */
  list(prefix: string): AsyncIterable<{ name: string; size: number }>;
}

export type StorageErrorCode =
  | 'InvalidBlobName'
  | 'InvalidChecksum'
  | 'ChecksumMismatch'
  | 'InvalidRange'
  | 'InvalidConfiguration';

export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}

const MAX_NAME_LENGTH = 1024;
const MAX_SEGMENT_LENGTH = 255; // a file name on Linux file systems
/**
 * One path segment: lower-case letters, digits, `.`, `_`, `-`, and `(`/`)` because Azure resource group names may
 * contain parentheses and they appear in the capture path. A segment never starts with `.`: that rules out `.` and
 * `..` and keeps dot-names free for the stores' own temporary files.
 */
const SEGMENT = /^[a-z0-9_()-][a-z0-9._()-]*$/;

/** Returns `name` if it is a valid blob name, else throws StorageError 'InvalidBlobName'. */
export function assertBlobName(name: string): string {
  const problem = blobNameProblem(name);
  if (problem) {
    throw new StorageError('InvalidBlobName', `Blob name '${String(name).slice(0, 100)}' is not valid: ${problem}.`);
  }
  return name;
}

function blobNameProblem(name: string): string | undefined {
  if (typeof name !== 'string' || name.length === 0) return 'it is empty';
  if (name.length > MAX_NAME_LENGTH) return `it is longer than ${MAX_NAME_LENGTH} characters`;
  for (const segment of name.split('/')) {
    if (segment.length === 0) return 'it has an empty segment (leading, trailing or double "/")';
    if (segment.length > MAX_SEGMENT_LENGTH) return `a segment is longer than ${MAX_SEGMENT_LENGTH} characters`;
    if (!SEGMENT.test(segment)) {
      return `segment '${segment.slice(0, 100)}' must use only a-z, 0-9, '.', '_', '-', '(' and ')' and not start with '.'`;
    }
  }
  return undefined;
}

/** Checks a list prefix: the characters of a blob name, and no segment that could climb out ('.', '..'). */
export function assertBlobPrefix(prefix: string): string {
  const ok =
    typeof prefix === 'string' &&
    prefix.length <= MAX_NAME_LENGTH &&
    /^[a-z0-9._()/-]*$/.test(prefix) &&
    !prefix.startsWith('/') &&
    !prefix.split('/').some((segment) => segment.startsWith('.'));
  if (!ok) throw new StorageError('InvalidBlobName', `Blob prefix '${String(prefix).slice(0, 100)}' is not valid.`);
  return prefix;
}

/** Normalises an expected SHA-256 to lower-case hex, or throws 'InvalidChecksum'. */
export function normalizeSha256(hex: string): string {
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw new StorageError('InvalidChecksum', 'Expected SHA-256 must be 64 hexadecimal characters.');
  }
  return hex.toLowerCase();
}

export function checksumMismatch(name: string, expected: string, actual: string): StorageError {
  return new StorageError(
    'ChecksumMismatch',
    `Content of '${name}' has SHA-256 ${actual}, expected ${expected}; nothing was stored.`,
  );
}

export function assertRange(range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
    throw new StorageError('InvalidRange', `Byte range ${start}-${end ?? ''} is not valid.`);
  }
}

export function rangeNotSatisfiable(range: ByteRange, size: number): StorageError {
  return new StorageError(
    'InvalidRange',
    `Byte range starting at ${range.start} is past the end of a ${size}-byte blob.`,
  );
}

import { createHash, randomBytes } from 'node:crypto';
import { type FileHandle, mkdir, open, opendir, rename, rm, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  assertBlobName,
  assertBlobPrefix,
  assertRange,
  type BlobStore,
  type ByteRange,
  CAPTURE_CONTAINER,
  checksumMismatch,
  normalizeSha256,
  type PutOptions,
  type PutResult,
  rangeNotSatisfiable,
  StorageError,
} from './blob-store.js';

export interface LocalBlobStoreOptions {
  /** Folder holding the container folder `network-watcher-logs`; created (0750) when missing. */
  root: string;
  /**
   * Public base URL of the blobs, e.g. `https://tripcap.example.com/blobs`; `url()` appends `/network-watcher-logs/{name}`.
   * A function when the URL is known only later (a server listening on port 0).
   */
  baseUrl: string | (() => string);
}

const DIR_MODE = 0o750;
const FILE_MODE = 0o640;
const TEMP_PREFIX = '.tmp-';

/** Blobs as files under `{root}/network-watcher-logs/{name}`, written to a temp file, fsynced, then renamed. */
export function createLocalBlobStore(options: LocalBlobStoreOptions): BlobStore {
  const containerDir = resolve(options.root, CAPTURE_CONTAINER);
  const baseUrl = () =>
    (typeof options.baseUrl === 'function' ? options.baseUrl() : options.baseUrl).replace(/\/+$/, '');

  /** The file of a blob; defence in depth after assertBlobName: the resolved path must stay inside the container. */
  function pathOf(name: string): string {
    assertBlobName(name);
    const path = resolve(containerDir, name);
    if (!path.startsWith(containerDir + sep)) {
      throw new StorageError('InvalidBlobName', `Blob name '${name.slice(0, 100)}' leaves the storage folder.`);
    }
    return path;
  }

  function url(name: string): string {
    return `${baseUrl()}/${CAPTURE_CONTAINER}/${assertBlobName(name)}`;
  }

  async function put(
    name: string,
    source: NodeJS.ReadableStream | Readable,
    opts: PutOptions = {},
  ): Promise<PutResult> {
    const target = pathOf(name);
    const expected = opts.expectedSha256 === undefined ? undefined : normalizeSha256(opts.expectedSha256);
    const dir = dirname(target);
    await mkdir(dir, { recursive: true, mode: DIR_MODE });
    const temp = join(dir, `${TEMP_PREFIX}${randomBytes(12).toString('hex')}`);
    const hash = createHash('sha256');
    let size = 0;
    let file: FileHandle | undefined = await open(temp, 'wx', FILE_MODE);
    try {
      const out = file;
      await pipeline(
        source,
        async (chunks: AsyncIterable<Buffer | string>) => {
          for await (const chunk of chunks) {
            const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
            hash.update(bytes);
            size += bytes.length;
            await writeAll(out, bytes);
          }
        },
        { signal: opts.signal },
      );
      await file.sync();
      await file.close();
      file = undefined;
      const sha256 = hash.digest('hex');
      if (expected !== undefined && expected !== sha256) throw checksumMismatch(name, expected, sha256);
      await rename(temp, target);
      await syncDir(dir);
      return { size, sha256, url: url(name) };
    } catch (err) {
      await file?.close().catch(() => {});
      await rm(temp, { force: true }).catch(() => {});
      throw err;
    }
  }

  async function get(name: string, range?: ByteRange): Promise<{ stream: Readable; size: number } | null> {
    const path = pathOf(name);
    if (range) assertRange(range);
    // Open first, then fstat the handle: the answer describes the very file we read even if a put replaces it.
    const file = await open(path, 'r').catch(nullIfAbsent);
    if (!file) return null;
    try {
      const info = await file.stat();
      if (!info.isFile()) {
        await file.close();
        return null;
      }
      if (range && range.start > 0 && range.start >= info.size) throw rangeNotSatisfiable(range, info.size);
      const stream = file.createReadStream({ start: range?.start ?? 0, end: range?.end, autoClose: true });
      return { stream, size: info.size };
    } catch (err) {
      await file.close().catch(() => {});
      throw err;
    }
  }

  async function statBlob(name: string): Promise<{ size: number; lastModified: string } | null> {
    const info = await stat(pathOf(name)).catch(nullIfAbsent);
    return info?.isFile() ? { size: info.size, lastModified: info.mtime.toISOString() } : null;
  }

  async function remove(name: string): Promise<boolean> {
    try {
      await unlink(pathOf(name));
      return true;
    } catch (err) {
      if (isAbsent(err) || (err as NodeJS.ErrnoException).code === 'EISDIR') return false;
      throw err;
    }
  }

  async function* list(prefix: string): AsyncIterable<{ name: string; size: number }> {
    assertBlobPrefix(prefix);
    // Start at the deepest folder the prefix names; everything matching lies below it.
    const slash = prefix.lastIndexOf('/');
    yield* walk(slash < 0 ? '' : prefix.slice(0, slash + 1), prefix);
  }

  async function* walk(relDir: string, prefix: string): AsyncGenerator<{ name: string; size: number }> {
    const dir = await opendir(join(containerDir, relDir)).catch(nullIfAbsent);
    if (!dir) return;
    for await (const entry of dir) {
      if (entry.name.startsWith('.')) continue; // temp files of puts in progress
      const name = relDir + entry.name;
      if (entry.isDirectory()) {
        if (prefix.startsWith(`${name}/`) || `${name}/`.startsWith(prefix)) yield* walk(`${name}/`, prefix);
      } else if (entry.isFile() && name.startsWith(prefix)) {
        const info = await stat(join(containerDir, name)).catch(nullIfAbsent);
        if (info) yield { name, size: info.size };
      }
    }
  }

  return { kind: 'local', put, get, stat: statBlob, delete: remove, url, list };
}

async function writeAll(file: FileHandle, bytes: Buffer): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) {
    const { bytesWritten } = await file.write(bytes, offset, bytes.length - offset);
    offset += bytesWritten;
  }
}

/** Makes a rename durable: fsync the folder that holds the new entry. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

function isAbsent(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function nullIfAbsent(err: unknown): null {
  if (isAbsent(err)) return null;
  throw err;
}

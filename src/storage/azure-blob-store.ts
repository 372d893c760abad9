import { createHash, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { TokenCredential } from '@azure/core-auth';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import {
  assertBlobName,
  assertBlobPrefix,
  assertRange,
  type BlobStore,
  type ByteRange,
  CAPTURE_CONTAINER,
  checksumMismatch,
  normalizeSha256,
  PCAP_CONTENT_TYPE,
  type PutOptions,
  type PutResult,
  rangeNotSatisfiable,
  StorageError,
} from './blob-store.js';

export interface AzureBlobStoreOptions {
  /** A storage connection string (account key or SAS), e.g. Azurite's devstoreaccount1 one. */
  connectionString?: string;
  /** `https://{account}.blob.core.windows.net`, used with `credential` (Entra ID) when there is no connection string. */
  accountUrl?: string;
  credential?: TokenCredential;
  /** Defaults to `network-watcher-logs`, as Azure Network Watcher uses. */
  container?: string;
  /** Size of each staged block; the upload holds one block in memory. Default 8 MiB. */
  blockSize?: number;
}

const DEFAULT_BLOCK_SIZE = 8 * 1024 * 1024;

/**
 * Blobs in an Azure Storage container. `put` stages blocks on the final blob while hashing and commits the block
 * list only once the whole stream is read and its SHA-256 matches: uncommitted blocks are invisible to readers and
 * Azure discards them (after a week) if never committed, so a failed or rejected upload leaves nothing readable and
 * never disturbs an existing blob of that name.
 */
export function createAzureBlobStore(options: AzureBlobStoreOptions): BlobStore {
  const container = containerClient(options);
  const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
  let ready: Promise<void> | undefined;

  /** Creates the container on first use; a failure is not cached, so the next call tries again. */
  function ensureContainer(): Promise<void> {
    ready ??= container.createIfNotExists().then(
      () => undefined,
      (err: unknown) => {
        ready = undefined;
        throw err;
      },
    );
    return ready;
  }

  const blob = (name: string) => container.getBlockBlobClient(assertBlobName(name));

  async function put(
    name: string,
    source: NodeJS.ReadableStream | Readable,
    opts: PutOptions = {},
  ): Promise<PutResult> {
    const client = blob(name);
    const expected = opts.expectedSha256 === undefined ? undefined : normalizeSha256(opts.expectedSha256);
    await ensureContainer();
    const abortSignal = opts.signal;
    const hash = createHash('sha256');
    // Block ids are unique per upload, so two concurrent puts of one name never mix their blocks. (Committing one
    // block list discards the other upload's uncommitted blocks, so the later commit fails with InvalidBlockList.)
    const uploadId = randomUUID();
    const blockIds: string[] = [];
    let size = 0;

    async function stage(block: Buffer): Promise<void> {
      const id = Buffer.from(`${uploadId}-${String(blockIds.length).padStart(6, '0')}`).toString('base64');
      const transactionalContentMD5 = createHash('md5').update(block).digest();
      await client.stageBlock(id, block, block.length, { abortSignal, transactionalContentMD5 });
      blockIds.push(id);
    }

    await pipeline(
      source,
      async (chunks: AsyncIterable<Buffer | string>) => {
        let pending: Buffer[] = [];
        let pendingBytes = 0;
        for await (const chunk of chunks) {
          const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          hash.update(bytes);
          size += bytes.length;
          pending.push(bytes);
          pendingBytes += bytes.length;
          while (pendingBytes >= blockSize) {
            const all = Buffer.concat(pending, pendingBytes);
            await stage(all.subarray(0, blockSize));
            pending = [all.subarray(blockSize)];
            pendingBytes -= blockSize;
          }
        }
        if (pendingBytes > 0) await stage(Buffer.concat(pending, pendingBytes));
      },
      { signal: abortSignal },
    );

    const sha256 = hash.digest('hex');
    if (expected !== undefined && expected !== sha256) throw checksumMismatch(name, expected, sha256);
    await client.commitBlockList(blockIds, {
      abortSignal,
      blobHTTPHeaders: { blobContentType: opts.contentType ?? PCAP_CONTENT_TYPE },
      metadata: { sha256 },
    });
    return { size, sha256, url: publicUrl(client.url) };
  }

  async function get(name: string, range?: ByteRange): Promise<{ stream: Readable; size: number } | null> {
    const client = blob(name);
    if (range) assertRange(range);
    await ensureContainer();
    const offset = range?.start ?? 0;
    const count = range?.end === undefined ? undefined : range.end - offset + 1;
    try {
      const response = await client.download(offset, count);
      const body = response.readableStreamBody;
      if (!body) throw new Error(`Azure returned no body for blob '${name}'.`);
      const total = /\/(\d+)$/.exec(response.contentRange ?? '')?.[1];
      const size = total === undefined ? (response.contentLength ?? 0) : Number(total);
      const stream = body instanceof Readable ? body : new Readable().wrap(body);
      if (offset > 0 && offset >= size) {
        // Azure answers 416 here; Azurite answers an empty 206. Make both the contract's InvalidRange.
        stream.destroy();
        throw rangeNotSatisfiable({ start: offset }, size);
      }
      return { stream, size };
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return null;
      if (status === 416) {
        const props = await statBlob(name);
        if (!props) return null;
        // A range from byte 0 of an empty blob is satisfiable by our contract (Azure answers 416): an empty read.
        if (offset === 0 && props.size === 0) return { stream: Readable.from([]), size: 0 };
        throw rangeNotSatisfiable(range ?? { start: offset }, props.size);
      }
      throw err;
    }
  }

  async function statBlob(name: string): Promise<{ size: number; lastModified: string } | null> {
    const client = blob(name);
    await ensureContainer();
    try {
      const props = await client.getProperties();
      return { size: props.contentLength ?? 0, lastModified: (props.lastModified ?? new Date(0)).toISOString() };
    } catch (err) {
      if (statusOf(err) === 404) return null;
      throw err;
    }
  }

  async function remove(name: string): Promise<boolean> {
    const client = blob(name);
    await ensureContainer();
    const response = await client.deleteIfExists({ deleteSnapshots: 'include' });
    return response.succeeded;
  }

  async function* list(prefix: string): AsyncIterable<{ name: string; size: number }> {
    assertBlobPrefix(prefix);
    await ensureContainer();
    for await (const item of container.listBlobsFlat({ prefix })) {
      yield { name: item.name, size: item.properties.contentLength ?? 0 };
    }
  }

  return {
    kind: 'azure-blob',
    put,
    get,
    stat: statBlob,
    delete: remove,
    url: (name) => publicUrl(blob(name).url),
    list,
  };
}

function containerClient(options: AzureBlobStoreOptions): ContainerClient {
  const name = options.container ?? CAPTURE_CONTAINER;
  if (!/^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]$/.test(name)) {
    throw new StorageError('InvalidConfiguration', `Azure container name '${name.slice(0, 100)}' is not valid.`);
  }
  if (options.connectionString) {
    return BlobServiceClient.fromConnectionString(options.connectionString).getContainerClient(name);
  }
  if (options.accountUrl && options.credential) {
    return new BlobServiceClient(options.accountUrl, options.credential).getContainerClient(name);
  }
  throw new StorageError(
    'InvalidConfiguration',
    'Azure Blob storage needs a connection string, or an account URL with a credential.',
  );
}

/** The blob URL without its query: with a SAS connection string the SDK puts the SAS token there. */
function publicUrl(url: string): string {
  const queryAt = url.indexOf('?');
  return queryAt < 0 ? url : url.slice(0, queryAt);
}

function statusOf(err: unknown): number | undefined {
  return (err as { statusCode?: number } | undefined)?.statusCode;
}

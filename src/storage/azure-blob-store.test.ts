import { randomBytes, randomUUID } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAzureBlobStore } from './azure-blob-store.js';
import { type Azurite, startAzurite } from './azurite.test-helper.js';
import { StorageError } from './blob-store.js';
import { describeBlobStoreContract, sha256Hex, streamOf } from './contract.test-helper.js';

// A real Azurite process. If it cannot start, beforeAll throws and every test here fails: nothing is skipped.
let azurite: Azurite | undefined;

beforeAll(async () => {
  azurite = await startAzurite();
});

afterAll(async () => {
  await azurite?.stop();
});

function connectionString(): string {
  if (!azurite) throw new Error('Azurite is not running');
  return azurite.connectionString;
}

// A fresh container per test, and small blocks so that every multi-chunk test stages several blocks.
describeBlobStoreContract('Azure Blob (Azurite)', () =>
  createAzureBlobStore({
    connectionString: connectionString(),
    container: `t-${randomUUID()}`,
    blockSize: 64 * 1024,
  }),
);

describe('Azure BlobStore', () => {
  it('creates the network-watcher-logs container on first use and serves Azure-style blob URLs', async () => {
    const service = BlobServiceClient.fromConnectionString(connectionString());
    const store = createAzureBlobStore({ connectionString: connectionString() });
    expect(await service.getContainerClient('network-watcher-logs').exists()).toBe(false);
    const name = `subscriptions/s/${randomUUID()}.cap`;
    const result = await store.put(name, streamOf(Buffer.from('pcap')));
    expect(await service.getContainerClient('network-watcher-logs').exists()).toBe(true);
    expect(result.url).toBe(`${azurite?.blobEndpoint}/network-watcher-logs/${name}`);
    expect(store.url(name)).toBe(result.url);
  });

  it('records the SHA-256 as metadata and the pcap content type', async () => {
    const container = `t-${randomUUID()}`;
    const store = createAzureBlobStore({ connectionString: connectionString(), container, blockSize: 64 * 1024 });
    const data = randomBytes(150_000);
    await store.put('a.cap', streamOf(data));
    await store.put('b.pcapng', streamOf(data), { contentType: 'application/x-pcapng' });
    const service = BlobServiceClient.fromConnectionString(connectionString()).getContainerClient(container);
    const a = await service.getBlobClient('a.cap').getProperties();
    expect(a.metadata).toEqual({ sha256: sha256Hex(data) });
    expect(a.contentType).toBe('application/vnd.tcpdump.pcap');
    expect(a.contentLength).toBe(150_000);
    expect((await service.getBlobClient('b.pcapng').getProperties()).contentType).toBe('application/x-pcapng');
    const blocks = await service.getBlockBlobClient('a.cap').getBlockList('committed');
    expect(blocks.committedBlocks?.length).toBe(3); // 64 KiB + 64 KiB + the rest
  });

  it('leaves only invisible, uncommitted blocks after a checksum mismatch', async () => {
    const container = `t-${randomUUID()}`;
    const store = createAzureBlobStore({ connectionString: connectionString(), container, blockSize: 64 * 1024 });
    const data = randomBytes(150_000);
    await expect(store.put('x.cap', streamOf(data), { expectedSha256: sha256Hex(Buffer.alloc(1)) })).rejects.toThrow(
      /SHA-256/,
    );
    const client = BlobServiceClient.fromConnectionString(connectionString()).getContainerClient(container);
    expect(await client.getBlobClient('x.cap').exists()).toBe(false);
    const visible = [];
    for await (const item of client.listBlobsFlat()) visible.push(item.name);
    expect(visible).toEqual([]);
  });

  it('refuses a configuration without credentials or with a bad container name', () => {
    expect(() => createAzureBlobStore({})).toThrow(StorageError);
    expect(() => createAzureBlobStore({ connectionString: connectionString(), container: 'Bad_Name' })).toThrow(
      /container name/,
    );
  });
});

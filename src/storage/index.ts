import { createAzureBlobStore } from './azure-blob-store.js';
import type { BlobStore } from './blob-store.js';
import { createLocalBlobStore } from './local-store.js';

export { type AzureBlobStoreOptions, createAzureBlobStore } from './azure-blob-store.js';
export {
  assertBlobName,
  assertBlobPrefix,
  type BlobStore,
  type ByteRange,
  CAPTURE_CONTAINER,
  PCAP_CONTENT_TYPE,
  type PutOptions,
  type PutResult,
  StorageError,
  type StorageErrorCode,
} from './blob-store.js';
export { type CaptureBlobNameParts, captureBlobName } from './layout.js';
export { createLocalBlobStore, type LocalBlobStoreOptions } from './local-store.js';

export type BlobStoreConfig =
  | { kind: 'local'; root: string; baseUrl: string | (() => string) }
  | { kind: 'azure-blob'; connectionString: string; container?: string };

/** The BlobStore a configuration names. */
export function createBlobStore(config: BlobStoreConfig): BlobStore {
  switch (config.kind) {
    case 'local':
      return createLocalBlobStore({ root: config.root, baseUrl: config.baseUrl });
    case 'azure-blob':
      return createAzureBlobStore({ connectionString: config.connectionString, container: config.container });
  }
}

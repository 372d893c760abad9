import { describe, expect, it } from 'vitest';
import { CAPTURE_CONTAINER, createBlobStore } from './index.js';

describe('createBlobStore', () => {
  it('builds the adapter the configuration names', () => {
    const local = createBlobStore({ kind: 'local', root: '/nonexistent/tripcap', baseUrl: 'https://t.example' });
    expect(local.kind).toBe('local');
    expect(local.url('a/b.cap')).toBe(`https://t.example/${CAPTURE_CONTAINER}/a/b.cap`);

    const connectionString =
      'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net';
    const azure = createBlobStore({ kind: 'azure-blob', connectionString });
    expect(azure.kind).toBe('azure-blob');
    expect(azure.url('a/b.cap')).toBe('https://acct.blob.core.windows.net/network-watcher-logs/a/b.cap');
    const other = createBlobStore({ kind: 'azure-blob', connectionString, container: 'captures' });
    expect(other.url('a/b.cap')).toBe('https://acct.blob.core.windows.net/captures/a/b.cap');

    // A SAS connection string must not leak its token into the URL shown as storagePath.
    const sas = 'BlobEndpoint=https://acct.blob.core.windows.net/;SharedAccessSignature=sv=2024-08-04&sig=c2VjcmV0';
    expect(createBlobStore({ kind: 'azure-blob', connectionString: sas }).url('a/b.cap')).toBe(
      'https://acct.blob.core.windows.net/network-watcher-logs/a/b.cap',
    );
  });
});

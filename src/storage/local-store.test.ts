import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { BlobStore } from './blob-store.js';
import { describeBlobStoreContract, failingStream, sha256Hex, streamOf } from './contract.test-helper.js';
import { createLocalBlobStore } from './local-store.js';

const roots: string[] = [];

async function makeRoot(): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'tripcap-local-store-'));
  roots.push(root);
  return join(root, 'data'); // not created yet: the store must create it
}

afterEach(async () => {
  await Promise.all(roots.splice(0).map((root) => rm(root, { recursive: true, force: true })));
});

async function makeStore(): Promise<BlobStore & { root: string }> {
  const root = await makeRoot();
  return { ...createLocalBlobStore({ root, baseUrl: 'http://tripcap.test:8080/' }), root };
}

async function allFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name));
}

describeBlobStoreContract('local folder', makeStore);

describe('local BlobStore', () => {
  it('keeps blobs as files under {root}/network-watcher-logs with modes 0750/0640 and base-URL links', async () => {
    const store = await makeStore();
    const data = randomBytes(1_234);
    const result = await store.put('subscriptions/s1/x.cap', streamOf(data));
    expect(result.url).toBe('http://tripcap.test:8080/network-watcher-logs/subscriptions/s1/x.cap');
    const file = join(store.root, 'network-watcher-logs', 'subscriptions', 's1', 'x.cap');
    const info = await stat(file);
    expect(info.size).toBe(1_234);
    expect(info.mode & 0o777 & ~0o640).toBe(0); // umask may only take permissions away
    expect(info.mode & 0o600).toBe(0o600);
    for (const dir of [store.root, join(store.root, 'network-watcher-logs'), join(file, '..')]) {
      const mode = (await stat(dir)).mode;
      expect(mode & 0o777 & ~0o750).toBe(0);
      expect(mode & 0o700).toBe(0o700);
    }
  });

  it('leaves no temp file behind after a failed, mismatched or aborted put', async () => {
    const store = await makeStore();
    await store.put('a/keep.cap', streamOf(Buffer.from('keep')));
    const data = randomBytes(100_000);
    await expect(store.put('a/x.cap', failingStream(data, new Error('boom')))).rejects.toThrow('boom');
    const wrong = sha256Hex(Buffer.from('no'));
    await expect(store.put('a/y.cap', streamOf(data), { expectedSha256: wrong })).rejects.toThrow(/SHA-256/);

    const controller = new AbortController();
    const endless = new Readable({ read() {} });
    endless.push(data);
    const putting = store.put('a/z.cap', endless, { signal: controller.signal });
    await vi.waitFor(async () => expect(await tempFiles(store.root)).toHaveLength(1));
    controller.abort();
    await expect(putting).rejects.toMatchObject({ name: 'AbortError' });

    expect(await allFiles(store.root)).toEqual([join(store.root, 'network-watcher-logs', 'a', 'keep.cap')]);
  });

  it('does not list or stat the temp file of a put in progress', async () => {
    const store = await makeStore();
    await store.put('a/done.cap', streamOf(Buffer.from('done')));
    const source = new Readable({ read() {} });
    const putting = store.put('a/slow.cap', source);
    source.push(Buffer.from('part one'));
    await vi.waitFor(async () => expect(await tempFiles(store.root)).toHaveLength(1));
    expect(await names(store, 'a/')).toEqual(['a/done.cap']);
    expect(await store.stat('a/slow.cap')).toBeNull();
    source.push(null);
    expect((await putting).size).toBe(8);
    expect(await names(store, 'a/')).toEqual(['a/done.cap', 'a/slow.cap']);
    expect(await tempFiles(store.root)).toEqual([]);
  });
});

async function tempFiles(root: string): Promise<string[]> {
  return (await allFiles(root)).filter((file) => basename(file).startsWith('.tmp-'));
}

async function names(store: BlobStore, prefix: string): Promise<string[]> {
  const found: string[] = [];
  for await (const item of store.list(prefix)) found.push(item.name);
  return found.sort();
}

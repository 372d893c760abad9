import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { beforeEach, describe, expect, it } from 'vitest';
import { type BlobStore, StorageError } from './blob-store.js';
import { captureBlobName } from './layout.js';

export const sha256Hex = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** A stream of `data` in chunks of `chunkSize` bytes, yielding to the event loop between chunks. */
export function streamOf(data: Buffer, chunkSize = 7_777): Readable {
  return Readable.from(
    (async function* () {
      for (let i = 0; i < data.length; i += chunkSize) {
        await tick();
        yield data.subarray(i, i + chunkSize);
      }
    })(),
  );
}

/** A stream that sends `data` and then fails with `error` instead of ending. */
export function failingStream(data: Buffer, error: Error): Readable {
  return Readable.from(
    (async function* () {
      yield* streamOf(data);
      await tick();
      throw error;
    })(),
  );
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.from(chunk as Buffer));
  return Buffer.concat(chunks);
}

/** The bytes of a blob (or of a range of it) and the blob's size; fails the test when the blob is absent. */
export async function readBlob(
  store: BlobStore,
  name: string,
  range?: { start: number; end?: number },
): Promise<{ data: Buffer; size: number }> {
  const got = await store.get(name, range);
  if (!got) throw new Error(`Blob '${name}' is missing`);
  return { data: await readAll(got.stream), size: got.size };
}

async function collect(iterable: AsyncIterable<{ name: string; size: number }>) {
  const items: { name: string; size: number }[] = [];
  for await (const item of iterable) items.push(item);
  return items.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

async function expectCode(promise: Promise<unknown>, code: string) {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StorageError);
  expect((err as StorageError).code).toBe(code);
}

export const INVALID_BLOB_NAMES = [
  '',
  '../x',
  'a/../../x',
  'a//b',
  'A',
  'a/B.cap',
  'a/./b',
  '.',
  '..',
  '/abs',
  '/etc/passwd',
  'a/',
  '.hidden',
  'a/.tmp-123',
  'a\\b',
  'a b',
  'a%2fb',
  'caf\u00e9',
  'a\u0000b',
  'x'.repeat(1025),
];

/**
 * The behaviour every BlobStore adapter must show. `makeStore` runs before each test and must return an empty store.
 */
export function describeBlobStoreContract(label: string, makeStore: () => Promise<BlobStore> | BlobStore): void {
  describe(`BlobStore contract: ${label}`, () => {
    let store: BlobStore;
    beforeEach(async () => {
      store = await makeStore();
    });

    it('stores a multi-chunk blob and reads it back with the right size, SHA-256, stat and URL', async () => {
      const data = randomBytes(300_001);
      const name = 'caps/vm1/first.cap';
      const result = await store.put(name, streamOf(data));
      expect(result).toEqual({ size: data.length, sha256: sha256Hex(data), url: store.url(name) });
      expect(result.url).toMatch(/^https?:\/\/.+\/caps\/vm1\/first\.cap$/);

      const got = await readBlob(store, name);
      expect(got.size).toBe(data.length);
      expect(sha256Hex(got.data)).toBe(sha256Hex(data));

      const info = await store.stat(name);
      expect(info?.size).toBe(data.length);
      expect(info?.lastModified).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(Math.abs(Date.parse(info?.lastModified ?? '') - Date.now())).toBeLessThan(5 * 60_000);
    });

    it('stores an empty blob', async () => {
      const empty = Buffer.alloc(0);
      const result = await store.put('empty.cap', Readable.from([]));
      expect(result.size).toBe(0);
      expect(result.sha256).toBe(sha256Hex(empty));
      expect((await store.stat('empty.cap'))?.size).toBe(0);
      expect(await readBlob(store, 'empty.cap')).toEqual({ data: empty, size: 0 });
      expect(await readBlob(store, 'empty.cap', { start: 0, end: 99 })).toEqual({ data: empty, size: 0 });
    });

    it('reads byte ranges (inclusive end, clamped at the end) and reports the whole size', async () => {
      const data = randomBytes(1_000);
      await store.put('r.cap', streamOf(data, 100));
      expect(await readBlob(store, 'r.cap', { start: 10, end: 19 })).toEqual({
        data: data.subarray(10, 20),
        size: 1_000,
      });
      expect((await readBlob(store, 'r.cap', { start: 990 })).data).toEqual(data.subarray(990));
      expect((await readBlob(store, 'r.cap', { start: 995, end: 5_000 })).data).toEqual(data.subarray(995));
      expect((await readBlob(store, 'r.cap', { start: 999, end: 999 })).data).toEqual(data.subarray(999));
      expect((await readBlob(store, 'r.cap', { start: 0 })).data).toEqual(data);
      await expectCode(store.get('r.cap', { start: 1_000 }), 'InvalidRange');
      await expectCode(store.get('r.cap', { start: 20, end: 10 }), 'InvalidRange');
      await expectCode(store.get('r.cap', { start: -1 }), 'InvalidRange');
      await expectCode(store.get('r.cap', { start: 1.5 }), 'InvalidRange');
    });

    it('answers null / false for blobs that do not exist, including "folders" of other blobs', async () => {
      expect(await store.get('missing.cap')).toBeNull();
      expect(await store.get('missing.cap', { start: 5 })).toBeNull();
      expect(await store.stat('missing.cap')).toBeNull();
      expect(await store.delete('missing.cap')).toBe(false);
      await store.put('dir/inner.cap', streamOf(Buffer.from('x')));
      expect(await store.get('dir')).toBeNull();
      expect(await store.stat('dir')).toBeNull();
      expect(await store.delete('dir')).toBe(false);
      expect(await store.stat('dir/inner.cap/deeper')).toBeNull();
    });

    it('replaces a blob on a second put, and deletes it', async () => {
      await store.put('x.cap', streamOf(Buffer.from('first version')));
      await store.put('x.cap', streamOf(Buffer.from('second')));
      expect((await readBlob(store, 'x.cap')).data.toString()).toBe('second');
      expect(await store.delete('x.cap')).toBe(true);
      expect(await store.get('x.cap')).toBeNull();
      expect(await store.stat('x.cap')).toBeNull();
      expect(await store.delete('x.cap')).toBe(false);
    });

    it('lists names under a prefix', async () => {
      const names = ['a/b/1.cap', 'a/b/2.cap', 'a/bc.cap', 'a/bd/3.cap', 'a/c/4.cap', 'z.cap'];
      for (const [i, name] of names.entries()) await store.put(name, streamOf(Buffer.alloc(i + 1, i)));
      const sizeOf = (name: string) => names.indexOf(name) + 1;
      const expectList = async (prefix: string, expected: string[]) =>
        expect(await collect(store.list(prefix))).toEqual(expected.map((name) => ({ name, size: sizeOf(name) })));
      await expectList('', names);
      await expectList('a/', names.slice(0, 5));
      await expectList('a/b/', ['a/b/1.cap', 'a/b/2.cap']);
      await expectList('a/b', ['a/b/1.cap', 'a/b/2.cap', 'a/bc.cap', 'a/bd/3.cap']);
      await expectList('a/b/1', ['a/b/1.cap']);
      await expectList('nothing/', []);
      for (const bad of ['../', '/a', 'A/', 'a/./', 'a/../']) {
        await expectCode(collect(store.list(bad)), 'InvalidBlobName');
      }
    });

    it('stores nothing when the SHA-256 does not match, and keeps an existing blob intact', async () => {
      const data = randomBytes(200_000);
      const wrong = sha256Hex(Buffer.from('something else'));
      await expectCode(store.put('sum.cap', streamOf(data), { expectedSha256: wrong }), 'ChecksumMismatch');
      expect(await store.get('sum.cap')).toBeNull();
      expect(await store.stat('sum.cap')).toBeNull();
      expect(await collect(store.list(''))).toEqual([]);

      await store.put('sum.cap', streamOf(Buffer.from('old')), { expectedSha256: sha256Hex(Buffer.from('old')) });
      await expectCode(store.put('sum.cap', streamOf(data), { expectedSha256: wrong }), 'ChecksumMismatch');
      expect((await readBlob(store, 'sum.cap')).data.toString()).toBe('old');

      const upper = sha256Hex(data).toUpperCase();
      expect((await store.put('sum.cap', streamOf(data), { expectedSha256: upper })).sha256).toBe(sha256Hex(data));
      await expectCode(store.put('sum2.cap', streamOf(data), { expectedSha256: 'not-hex' }), 'InvalidChecksum');
      expect(await store.stat('sum2.cap')).toBeNull();
    });

    it('stores nothing when the source fails mid-way, and keeps an existing blob intact', async () => {
      const boom = new Error('connection reset by agent');
      await expect(store.put('fail.cap', failingStream(randomBytes(200_000), boom))).rejects.toBe(boom);
      expect(await store.get('fail.cap')).toBeNull();
      expect(await store.stat('fail.cap')).toBeNull();
      expect(await collect(store.list(''))).toEqual([]);

      await store.put('fail.cap', streamOf(Buffer.from('good')));
      await expect(store.put('fail.cap', failingStream(randomBytes(200_000), boom))).rejects.toBe(boom);
      expect((await readBlob(store, 'fail.cap')).data.toString()).toBe('good');
    });

    it('stops and stores nothing when aborted', async () => {
      const controller = new AbortController();
      const endless = new Readable({ read() {} });
      endless.push(randomBytes(100_000));
      const putting = store.put('aborted.cap', endless, { signal: controller.signal });
      setTimeout(() => controller.abort(), 50);
      await expect(putting).rejects.toMatchObject({ name: 'AbortError' });
      expect(await store.stat('aborted.cap')).toBeNull();
      const already = AbortSignal.abort();
      await expect(store.put('aborted.cap', streamOf(Buffer.from('x')), { signal: already })).rejects.toMatchObject({
        name: 'AbortError',
      });
      expect(await store.stat('aborted.cap')).toBeNull();
    });

    it('never mixes two concurrent puts of one name', async () => {
      // Azure may fail the loser of the race (committing one block list discards the other's uncommitted blocks);
      // what no adapter may do is store a blend of the two.
      const a = randomBytes(150_000);
      const b = randomBytes(150_000);
      const settled = await Promise.allSettled([
        store.put('race.cap', streamOf(a, 5_000)),
        store.put('race.cap', streamOf(b, 6_000)),
      ]);
      const stored = sha256Hex((await readBlob(store, 'race.cap')).data);
      const succeeded = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value.sha256] : []));
      expect(succeeded).toContain(stored);
      expect([sha256Hex(a), sha256Hex(b)]).toEqual(expect.arrayContaining(succeeded));
    });

    it('rejects invalid names in every operation', async () => {
      for (const name of INVALID_BLOB_NAMES) {
        const source = streamOf(Buffer.from('x'));
        await expectCode(store.put(name, source), 'InvalidBlobName');
        await expectCode(store.get(name), 'InvalidBlobName');
        await expectCode(store.stat(name), 'InvalidBlobName');
        await expectCode(store.delete(name), 'InvalidBlobName');
        expect(() => store.url(name)).toThrow(StorageError);
      }
      expect(await collect(store.list(''))).toEqual([]);
    });

    it("accepts Azure's capture layout names", async () => {
      const name = captureBlobName({
        subscriptionId: '00000000-0000-0000-0000-000000000000',
        resourceGroup: 'Prod(EU)-RG',
        vmName: 'Web_01',
        startTime: new Date('2024-01-25T22:44:54.342Z'),
        sequence: 2,
      });
      const data = randomBytes(64);
      const result = await store.put(name, streamOf(data));
      expect(result.url.endsWith(`/${name}`)).toBe(true);
      expect(await collect(store.list('subscriptions/'))).toEqual([{ name, size: 64 }]);
    });
  });
}

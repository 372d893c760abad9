import { describe, expect, it } from 'vitest';
import { assertBlobName, assertBlobPrefix, normalizeSha256, StorageError } from './blob-store.js';
import { INVALID_BLOB_NAMES } from './contract.test-helper.js';

describe('assertBlobName', () => {
  it('accepts lower-case segments of a-z 0-9 . _ - ( )', () => {
    for (const name of ['a', 'a/b', 'x.cap', 'sub-1/rg_2/(x)/a.b.c', 'a..b', 'a.', '0', `${'a/'.repeat(100)}z`]) {
      expect(assertBlobName(name)).toBe(name);
    }
    expect(assertBlobName('x'.repeat(255))).toHaveLength(255);
    expect(assertBlobName(`${'x'.repeat(255)}/`.repeat(4).slice(0, 1023))).toHaveLength(1023);
  });

  it('refuses traversal, empty, upper-case, absolute, dot-led, odd-character and over-long names', () => {
    for (const name of [...INVALID_BLOB_NAMES, 'x'.repeat(256), 'a/\u212a', 'a\nb']) {
      expect(() => assertBlobName(name), JSON.stringify(name)).toThrow(StorageError);
    }
    expect(() => assertBlobName('../x')).toThrow(expect.objectContaining({ code: 'InvalidBlobName' }));
    expect(() => assertBlobName(undefined as unknown as string)).toThrow(StorageError);
  });
});

describe('assertBlobPrefix', () => {
  it('accepts partial names and refuses climbing or odd characters', () => {
    for (const prefix of ['', 'a', 'a/', 'a/b', 'subscriptions/s/resourcegroups/']) {
      expect(assertBlobPrefix(prefix)).toBe(prefix);
    }
    for (const prefix of ['/', '/a', '../', 'a/..', 'a/./b', 'A', 'a b', '.']) {
      expect(() => assertBlobPrefix(prefix), prefix).toThrow(StorageError);
    }
  });
});

describe('normalizeSha256', () => {
  it('lower-cases 64 hex digits and refuses anything else', () => {
    expect(normalizeSha256('AB'.repeat(32))).toBe('ab'.repeat(32));
    for (const bad of ['', 'ab', 'g'.repeat(64), 'a'.repeat(65)]) {
      expect(() => normalizeSha256(bad)).toThrow(expect.objectContaining({ code: 'InvalidChecksum' }));
    }
  });
});

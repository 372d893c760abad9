import { describe, expect, it } from 'vitest';
import { deadline, sleep } from './time.js';

describe('deadline', () => {
  it('aborts after its time, and says it timed out', async () => {
    const limit = deadline(30);
    await sleep(200, limit.signal);
    expect(limit.signal.aborted).toBe(true);
    expect(limit.timedOut()).toBe(true);
    limit.clear();
  });

  it('aborts with its parent, before its time, and then it did not time out', () => {
    const parent = new AbortController();
    const limit = deadline(60_000, parent.signal);
    parent.abort();
    expect(limit.signal.aborted).toBe(true);
    expect(limit.timedOut()).toBe(false);
    limit.clear();
    expect(deadline(60_000, parent.signal).signal.aborted).toBe(true); // a parent already aborted
  });
});

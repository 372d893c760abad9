/** UTC ISO-8601 with milliseconds, the one time format tripcap writes. */
export function isoNow(): string {
  return new Date().toISOString();
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped. */
export function backoffMs(attempt: number, capMs = 30_000): number {
  const base = Math.min(capMs, 500 * 2 ** Math.min(attempt, 16));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

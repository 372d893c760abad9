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

/**
 * A signal that aborts after `ms` or when `parent` aborts. Not AbortSignal.any(AbortSignal.timeout()): on Node 20 such
 * a composed signal that nothing holds strongly can be garbage-collected before it fires (a request or a long-poll
 * then waits for ever). Call `clear()` when done; `timedOut()` tells a timeout from the parent's abort.
 */
export function deadline(ms: number, parent?: AbortSignal) {
  const controller = new AbortController();
  let expired = false;
  const timer = setTimeout(() => {
    expired = true;
    controller.abort();
  }, ms);
  const onParentAbort = () => controller.abort();
  parent?.addEventListener('abort', onParentAbort, { once: true });
  if (parent?.aborted) controller.abort();
  return {
    signal: controller.signal,
    timedOut: () => expired,
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener('abort', onParentAbort);
    },
  };
}

/** Exponential backoff with jitter: 0.5 s, 1 s, 2 s … capped. */
export function backoffMs(attempt: number, capMs = 30_000): number {
  const base = Math.min(capMs, 500 * 2 ** Math.min(attempt, 16));
  return Math.round(base / 2 + Math.random() * (base / 2));
}

import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Polled<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  /** Loads again now (after an action), without waiting for the next tick. */
  refresh: () => void;
}

/**
 * Loads `load()` now and every `intervalMs` while the page is shown (live status). A failed load keeps the last data
 * and says why; the next tick tries again. `key` restarts it when what is loaded changes.
 */
export function usePoll<T>(load: () => Promise<T>, intervalMs: number, key: unknown[] = []): Polled<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const loadRef = useRef(load);
  loadRef.current = load;
  const [tick, setTick] = useState(0);
  const refresh = useCallback(() => setTick((t) => t + 1), []);

  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      // A hidden tab asks for nothing; it catches up as soon as it is shown again.
      if (document.hidden && intervalMs > 0) {
        timer = setTimeout(run, 1000);
        return;
      }
      try {
        const value = await loadRef.current();
        if (!alive) return;
        setData(value);
        setError(undefined);
      } catch (err) {
        if (!alive) return;
        setError(err instanceof Error ? err : new Error(String(err)));
      } finally {
        if (alive) {
          setLoading(false);
          if (intervalMs > 0) timer = setTimeout(run, intervalMs);
        }
      }
    };
    run();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [...key, tick, intervalMs]);

  return { data, error, loading, refresh };
}

/** The current time, ticking every `ms` (clocks and "12 s ago"). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return now;
}

/** The location hash as a route: `#/captures/x` → ['captures', 'x']. */
export function useRoute(): string[] {
  const read = () =>
    location.hash
      .replace(/^#\/?/, '')
      .split('/')
      .filter(Boolean)
      .map((part) => decodeURIComponent(part));
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const onChange = () => setRoute(read());
    addEventListener('hashchange', onChange);
    return () => removeEventListener('hashchange', onChange);
  }, []);
  return route;
}

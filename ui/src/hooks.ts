import { useCallback, useEffect, useRef, useState } from 'preact/hooks';

export interface Polled<T> {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  /** Loads again now (after an action), without waiting for the next tick. */
  refresh: () => void;
}

/**
 * Loads `load()` now and every `intervalMs` while the page is shown (live status); a function of the last data gives
 * a slower pace to what has stopped changing. A failed load keeps the last data and says why; the next tick tries
 * again. `key` restarts it when what is loaded changes.
 */
export function usePoll<T>(
  load: () => Promise<T>,
  intervalMs: number | ((data: T | undefined) => number),
  key: unknown[] = [],
): Polled<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<Error>();
  const [loading, setLoading] = useState(true);
  const loadRef = useRef(load);
  loadRef.current = load;
  const intervalRef = useRef(intervalMs);
  intervalRef.current = intervalMs;
  const [tick, setTick] = useState(0);
  const refresh = useCallback(() => setTick((t) => t + 1), []);

  useEffect(() => {
    let alive = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let last: T | undefined;
    const interval = () => {
      const pace = intervalRef.current;
      return typeof pace === 'function' ? pace(last) : pace;
    };
    const run = async () => {
      // A hidden tab asks for nothing; it catches up as soon as it is shown again.
      if (document.hidden && interval() > 0) {
        timer = setTimeout(run, 1000);
        return;
      }
      try {
        last = await loadRef.current();
        if (!alive) return;
        setData(last);
        setError(undefined);
      } catch (err) {
        if (!alive) return;
        setError(err instanceof Error ? err : new Error(String(err)));
      } finally {
        if (alive) {
          setLoading(false);
          if (interval() > 0) timer = setTimeout(run, interval());
        }
      }
    };
    run();
    return () => {
      alive = false;
      clearTimeout(timer);
    };
  }, [...key, tick]);

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

/** Runs an async action, one at a time: `busy` while it runs, its failure kept in `error` to show beside it. */
export function useAction(action: () => Promise<unknown>): { run: () => Promise<void>; busy: boolean; error: unknown } {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { run, busy, error };
}

type KeysOf<T, V> = { [K in keyof T]: T[K] extends V ? K : never }[keyof T] & string;

/**
 * A form's state and the props that bind its controls to it: `text('name')` for an input or select whose `name` is
 * the field's (so the page's fields are named as the API's), `check('enabled')` for a checkbox.
 */
export function useFormState<T extends object>(initial: T | (() => T)) {
  const [form, setForm] = useState(initial);
  const set = (patch: Partial<T>) => setForm((current) => ({ ...current, ...patch }));
  const text = (key: KeysOf<T, string>) => ({
    name: key,
    value: form[key] as string,
    onInput: (e: { currentTarget: { value: string } }) => set({ [key]: e.currentTarget.value } as Partial<T>),
  });
  const check = (key: KeysOf<T, boolean>) => ({
    type: 'checkbox' as const,
    name: key,
    checked: form[key] as boolean,
    onChange: (e: { currentTarget: { checked: boolean } }) => set({ [key]: e.currentTarget.checked } as Partial<T>),
  });
  return { form, set, text, check };
}

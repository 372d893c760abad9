/**
 * ISO-8601 durations as Azure uses them (`PT1M`, `PT5M`, `PT1H`, `P1D`, `PT30S`, `P1DT12H`), parsed strictly: no
 * years or months (their length varies), no negative or empty durations, no fractions except of seconds.
 */
const DURATION = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,3})?)S)?)?$/;

/** The duration in milliseconds, or null when `text` is not a duration this parser accepts. */
export function parseDuration(text: string): number | null {
  const upper = text.toUpperCase();
  const m = DURATION.exec(upper);
  if (!m || upper === 'P' || upper.endsWith('T')) return null;
  const [, weeks, days, hours, minutes, seconds] = m;
  const ms =
    Number(weeks ?? 0) * 604_800_000 +
    Number(days ?? 0) * 86_400_000 +
    Number(hours ?? 0) * 3_600_000 +
    Number(minutes ?? 0) * 60_000 +
    Math.round(Number(seconds ?? 0) * 1000);
  return ms > 0 && Number.isSafeInteger(ms) ? ms : null;
}

/** Writes milliseconds as the shortest ISO-8601 duration: 60000 → `PT1M`, 86400000 → `P1D`, 90000 → `PT1M30S`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) throw new RangeError(`not a positive duration: ${ms}`);
  const days = Math.floor(ms / 86_400_000);
  let rest = ms - days * 86_400_000;
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = rest / 1000;
  const time = `${hours ? `${hours}H` : ''}${minutes ? `${minutes}M` : ''}${seconds ? `${seconds}S` : ''}`;
  return `P${days ? `${days}D` : ''}${time ? `T${time}` : ''}`;
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/i;

/** A UTC instant from an ISO-8601 date-time with a zone (`2026-11-29T10:00:00Z`), or null. */
export function parseInstant(text: string): number | null {
  if (!ISO_TIME.test(text)) return null;
  const t = Date.parse(text);
  return Number.isNaN(t) ? null : t;
}

/**
 * An ISO-8601 time interval as Azure's `timespan` takes it: `start/end`, `start/duration`, `duration/end`, or a lone
 * duration ending at `now`. Returns null when malformed or when the end is not after the start.
 */
export function parseTimespan(text: string, now: number = Date.now()): { start: number; end: number } | null {
  const parts = text.split('/');
  if (parts.length === 1) {
    const d = parseDuration(text);
    return d === null ? null : { start: now - d, end: now };
  }
  if (parts.length !== 2) return null;
  const [a = '', b = ''] = parts;
  let start: number | null;
  let end: number | null;
  if (a.toUpperCase().startsWith('P')) {
    end = parseInstant(b);
    const d = parseDuration(a);
    start = end === null || d === null ? null : end - d;
  } else {
    start = parseInstant(a);
    const d = b.toUpperCase().startsWith('P') ? parseDuration(b) : null;
    end = d !== null ? (start === null ? null : start + d) : parseInstant(b);
  }
  if (start === null || end === null || end <= start) return null;
  return { start, end };
}

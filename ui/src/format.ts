/** How numbers and times read on the console: UTC everywhere, units spelled out, nothing ambiguous at 2 AM. */

/** `2026-11-30 02:14:07 UTC` (seconds precision). */
export function utc(iso: string | null | undefined): string {
  if (!iso) return '—';
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) return iso;
  return `${new Date(ms).toISOString().slice(0, 19).replace('T', ' ')} UTC`;
}

/** `02:14:07` (UTC time of day only), for dense rows where the date is plain from the context. */
export function utcTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const ms = Date.parse(iso);
  return Number.isNaN(ms) ? iso : new Date(ms).toISOString().slice(11, 19);
}

/** `12 s ago`, `4 min ago`, `3 h ago`, `2 d ago`. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '';
  const s = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172_800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86_400)} d ago`;
}

const UNITS = ['', 'k', 'M', 'G', 'T'];

function scaled(value: number, base: number): string {
  let v = value;
  let i = 0;
  while (Math.abs(v) >= base && i < UNITS.length - 1) {
    v /= base;
    i++;
  }
  const digits = i === 0 || Math.abs(v) >= 100 ? 0 : Math.abs(v) >= 10 ? 1 : 2;
  return `${v.toFixed(digits)} ${UNITS[i]}`;
}

/** Bytes in SI units: `1.23 MB`. */
export function bytes(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  return `${scaled(value, 1000)}B`;
}

/** Bits per second: `8.10 Mbit/s`. */
export function bitrate(bitsPerSecond: number | null | undefined): string {
  if (bitsPerSecond === null || bitsPerSecond === undefined || Number.isNaN(bitsPerSecond)) return '—';
  return `${scaled(bitsPerSecond, 1000)}bit/s`;
}

export function count(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  return value.toLocaleString('en-US');
}

export function percent(share: number): string {
  // A share too small for one decimal is still there: "< 0.1 %", not "0.0 %".
  if (share > 0 && share < 0.0005) return '< 0.1 %';
  return `${(share * 100).toFixed(share >= 0.1 ? 0 : 1)} %`;
}

/** Seconds as `1 h 02 min`, `3 min 05 s`, `42 s`, `1.5 s`. */
export function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined) return '—';
  if (value < 10) return `${Number(value.toFixed(1))} s`;
  const s = Math.round(value);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** ISO-8601 durations as rules use them: `PT5M` → `5 min`. */
export function isoDuration(text: string): string {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/i.exec(text);
  if (!m) return text;
  const [, d, h, min, s] = m;
  return [d && `${d} d`, h && `${h} h`, min && `${min} min`, s && `${s} s`].filter(Boolean).join(' ') || text;
}

export function isoDurationSeconds(text: string): number {
  const m = /^P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/i.exec(text);
  if (!m) return 0;
  const [, d = '0', h = '0', min = '0', s = '0'] = m;
  return ((Number(d) * 24 + Number(h)) * 60 + Number(min)) * 60 + Number(s);
}

const OPERATOR_SIGNS: Record<string, string> = {
  GreaterThan: '>',
  GreaterThanOrEqual: '≥',
  LessThan: '<',
  LessThanOrEqual: '≤',
  Equals: '=',
  NotEquals: '≠',
  GreaterOrLessThan: '≷',
};

export function operatorSign(operator: string): string {
  return OPERATOR_SIGNS[operator] ?? operator;
}

/** A metric value in the metric's unit: bytes for the byte metrics, plain numbers otherwise. */
export function metricValue(metricName: string, value: number | null | undefined): string {
  if (value === null || value === undefined) return 'no data';
  if (/Network (In|Out) Total|Memory Bytes/i.test(metricName)) return bytes(value);
  if (/Percentage/i.test(metricName)) return `${value.toFixed(1)} %`;
  return count(Math.round(value * 100) / 100);
}

/** Why the capture-on-alert function's capture ended (docs/functions.md, "Alert life"), in words. */
const STOP_REASONS: Record<string, string> = {
  AlertQuiet: 'the alert went quiet (no firing for the quiet time)',
  Resolved: 'the alert was resolved (stopped after a tail)',
  MaxDuration: 'it reached its time limit',
  TotalBytesExceeded: 'it reached its byte limit',
  StoppedElsewhere: 'someone stopped it (API, CLI or console)',
  CaptureFailed: 'it failed (see the capture’s errors)',
};

export function stopReasonText(reason: string): string {
  const words = STOP_REASONS[reason];
  return words ? `${reason}: ${words}` : reason;
}

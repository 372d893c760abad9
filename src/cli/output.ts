/** Prints rows as an aligned table, or the raw value as JSON for scripts. */
export function print(format: string, value: unknown, rows?: Array<Record<string, string | number | undefined>>) {
  if (format === 'json' || !rows) {
    process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
    return;
  }
  process.stdout.write(table(rows));
}

export function table(rows: Array<Record<string, string | number | undefined>>): string {
  if (rows.length === 0) return '(none)\n';
  const columns = Object.keys(rows[0] ?? {});
  const cells = rows.map((r) => columns.map((c) => String(r[c] ?? '')));
  const widths = columns.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const line = (values: string[]) =>
    `${values
      .map((v, i) => v.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd()}\n`;
  return line(columns) + line(widths.map((w) => '-'.repeat(w))) + cells.map(line).join('');
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n: number) => String(n).padStart(2, '0');
  return h > 0 ? `${h}:${pad(m)}:${pad(s % 60)}` : `${pad(m)}:${pad(s % 60)}`;
}

/** A progress line that rewrites itself on a terminal and prints now and then elsewhere (logs, CI). */
export function createProgressLine(stream: NodeJS.WriteStream = process.stderr) {
  let lastPlain = 0;
  let shown = false;
  return {
    update(text: string) {
      if (stream.isTTY) {
        stream.write(`\r\x1b[2K${text}`);
        shown = true;
      } else if (Date.now() - lastPlain >= 5000) {
        stream.write(`${text}\n`);
        lastPlain = Date.now();
      }
    },
    done(text?: string) {
      if (stream.isTTY && shown) stream.write('\r\x1b[2K');
      if (text) stream.write(`${text}\n`);
    },
  };
}

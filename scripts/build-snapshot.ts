/**
 * Builds dist/analyze.blob, the V8 startup snapshot that ./tripcap starts `tripcap analyze` from
 * (src/cli/analyze-main.ts). Node's snapshot builder takes one CommonJS script that requires nothing but Node's own
 * modules, so the compiled entry is first bundled with esbuild. Runs in `npm run build`, after tsc.
 *
 * A snapshot works only with the Node.js binary and V8 options that built it: ./tripcap uses it when NODE_OPTIONS is
 * empty and it is newer than dist/cli/main.js, and falls back to dist/cli/main.js when Node refuses it.
 */
import { execFileSync } from 'node:child_process';
import { renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const ENTRY = join(ROOT, 'dist/cli/analyze-main.js');
const BUNDLE = join(ROOT, 'dist/analyze-main.cjs');
const ANALYZE_BLOB = join(ROOT, 'dist/analyze.blob');

// no blob rather than a stale one if this fails; a half-written blob would crash Node, hence the rename
rmSync(ANALYZE_BLOB, { force: true });
await build({
  entryPoints: [ENTRY],
  bundle: true,
  platform: 'node',
  format: 'cjs',
  outfile: BUNDLE,
  logLevel: 'warning',
});
// --no-warnings: the builder warns that commander requires node:child_process, which only commander's executable
// subcommands use (tripcap has none)
execFileSync(
  process.execPath,
  ['--no-warnings', '--snapshot-blob', `${ANALYZE_BLOB}.tmp`, '--build-snapshot', BUNDLE],
  {
    stdio: 'inherit',
  },
);
renameSync(`${ANALYZE_BLOB}.tmp`, ANALYZE_BLOB);

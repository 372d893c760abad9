/**
 * `tripcap analyze` on its own, as a V8 startup snapshot: `npm run build` bundles this file and runs it with
 * `node --build-snapshot` (scripts/build-snapshot.ts), and ./tripcap starts the command from dist/analyze.blob. Node
 * then begins with commander and the analysis already loaded and compiled, which saves about 30 ms of the ~90 ms that
 * every run costs before it reads a packet. Not a module to import: it only works while a snapshot is being built.
 */
import { startupSnapshot } from 'node:v8';
import { Command } from 'commander';
import '../analysis/index.js'; // loaded now, into the snapshot (analyze.ts imports it when the command runs)
import { errorMessage } from '../lib/errors.js';
import { VERSION } from '../lib/version.js';
import { registerAnalyzeCommand } from './analyze.js';

startupSnapshot.setDeserializeMainFunction(() => {
  const program = new Command().name('tripcap').version(VERSION).showHelpAfterError();
  registerAnalyzeCommand(program);
  // process.argv is [node, 'analyze', …]: the snapshot takes the place of a script
  program.parseAsync(process.argv.slice(1), { from: 'user' }).catch((err: unknown) => {
    process.stderr.write(`tripcap: ${errorMessage(err)}\n`);
    process.exit(1);
  });
});

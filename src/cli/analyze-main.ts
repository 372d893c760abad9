/**
 * `tripcap analyze` on its own, as a V8 startup snapshot: `npm run build` bundles this file and runs it with
 * `node --build-snapshot` (scripts/build-snapshot.ts), and ./tripcap starts the command from dist/analyze.blob. Node
 * then begins with commander and the analysis already loaded and compiled, which saves about 30 ms of the ~90 ms that
 * every run costs before it reads a packet. Not a module to import: it only works while a snapshot is being built.
 */
import { startupSnapshot } from 'node:v8';
import '../analysis/index.js'; // loaded now, into the snapshot (analyze.ts imports it when the command runs)
import { registerAnalyzeCommand } from './analyze.js';
import { runProgram, tripcapProgram } from './program.js';

startupSnapshot.setDeserializeMainFunction(() => {
  const program = tripcapProgram();
  registerAnalyzeCommand(program);
  // process.argv is [node, 'analyze', …]: the snapshot takes the place of a script
  runProgram(program, process.argv.slice(1));
});

import { Command } from 'commander';
import { errorMessage } from '../lib/errors.js';
import { VERSION } from '../lib/version.js';

/** The `tripcap` command line, before its commands are registered (dist/cli/main.js, and analyze-main.ts's snapshot). */
export function tripcapProgram(): Command {
  return new Command()
    .name('tripcap')
    .description('Alert-triggered packet capture for Linux hosts, wire-compatible with Azure Network Watcher.')
    .version(VERSION)
    .showHelpAfterError();
}

/** Runs the command `args` names (default: process.argv after the script); an error ends it with one line, exit 1. */
export function runProgram(program: Command, args?: string[]): void {
  const run = args ? program.parseAsync(args, { from: 'user' }) : program.parseAsync();
  run.catch((err: unknown) => {
    process.stderr.write(`tripcap: ${errorMessage(err)}\n`);
    process.exit(1);
  });
}

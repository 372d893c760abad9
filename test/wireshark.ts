import { execFileSync } from 'node:child_process';

/**
 * Why tests that run Wireshark's tools (tshark, capinfos, editcap, mergecap: Debian package tshark) cannot run here,
 * or undefined when they can. Throws under CI=true: CI must not skip them.
 */
export function wiresharkSkipReason(): string | undefined {
  try {
    execFileSync('tshark', ['--version'], { stdio: 'ignore' });
    for (const tool of ['capinfos', 'editcap', 'mergecap']) execFileSync(tool, ['-h'], { stdio: 'ignore' });
    return undefined;
  } catch {
    const reason = "needs Wireshark's tools tshark, capinfos, editcap and mergecap (Debian package tshark)";
    if (process.env.CI === 'true') throw new Error(`CI=true but this test ${reason}`);
    return reason;
  }
}

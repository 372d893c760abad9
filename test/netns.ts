/**
 * Test helpers for a two-host network: two network namespaces joined by a veth pair. Needs root.
 * The helpers live in src/lib/netns.ts (`tripcap demo` uses them too); this module re-exports them for the tests.
 */

export {
  createTwoHosts,
  execIn,
  linkToRoot,
  type NetnsHost,
  type RootLink,
  sendUdp,
  type TwoHosts,
} from '../src/lib/netns.js';

/** Why netns tests cannot run here, or undefined when they can. Throws under CI=true: CI must not skip them. */
export function netnsSkipReason(): string | undefined {
  if (process.getuid?.() === 0) return undefined;
  const reason = 'needs root (network namespaces, veth, tcpdump)';
  if (process.env.CI === 'true') throw new Error(`CI=true but this test ${reason}; run it as root`);
  return reason;
}

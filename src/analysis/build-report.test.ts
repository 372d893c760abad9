import { describe, expect, it } from 'vitest';
import { Analyzer, type AnalyzerOptions, flowsHint } from './analyzer.js';
import { ethernet, ipv4, ipv6, raw, tcp, udp } from './frames.test-helper.js';

/**
 * Many flows with many equal byte counts (ties at the maxRows cut), IPv4 and IPv6, TCP and UDP, some flows between an
 * address and itself, more flows than the flow table's first size.
 */
function packets() {
  const out = [];
  let t = 1_700_000_000;
  for (let i = 0; i < 6000; i++) {
    const v6 = i % 7 === 0;
    const self = i % 101 === 0;
    const src = v6 ? `2001:db8::${(i % 50) + 1}` : `10.0.${(i >> 8) & 0xff}.${i & 0xff}`;
    const dst = self ? src : v6 ? `2001:db8:1::${(i % 300) + 1}` : `198.51.100.${i % 250}`;
    const l4 =
      i % 3 === 0
        ? udp(1024 + (i % 60_000), 53 + (i % 5), new Uint8Array(i % 4))
        : tcp({ sport: 1024 + (i % 60_000), dport: 443, flags: 0x10 }, new Uint8Array((i % 5) * 10));
    const proto = i % 3 === 0 ? 17 : 6;
    const frame = v6
      ? ethernet(0x86dd, ipv6({ src, dst, next: proto }, l4))
      : ethernet(0x0800, ipv4({ src, dst, protocol: proto }, l4));
    for (let k = 0; k <= i % 3; k++) {
      t += 0.0001;
      out.push(raw(frame, undefined, t));
    }
  }
  return out;
}

function analyze(options: AnalyzerOptions) {
  const a = new Analyzer({ hostIps: ['198.51.100.7'], ...options });
  for (const p of packets()) a.onPacket(p);
  return a.finish();
}

describe('buildReport', () => {
  it('gives the same report whatever the flow table is sized for', () => {
    const small = analyze({ expectedFlows: 1 });
    const large = analyze({ expectedFlows: 65_536 });
    expect(large).toEqual(small);
    expect(small.conversations.tcp.length + small.conversations.omitted.tcp).toBe(4000);
  });

  it('keeps the first maxRows rows of the full lists, in the same order', () => {
    const all = analyze({ maxRows: 100_000 });
    const cut = analyze({ maxRows: 50 });
    for (const kind of ['conversations', 'endpoints'] as const) {
      for (const table of ['ipv4', 'ipv6', 'tcp', 'udp'] as const) {
        const full = all[kind][table];
        expect(cut[kind][table]).toEqual(full.slice(0, 50));
        expect(cut[kind].omitted[table]).toBe(Math.max(0, full.length - 50));
      }
    }
  });

  it('sizes the flow table from the file size, within bounds', () => {
    expect(flowsHint(0)).toBe(4096);
    expect(flowsHint(50e6)).toBe(12_207);
    expect(flowsHint(10e9)).toBe(65_536);
  });
});

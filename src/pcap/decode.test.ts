import { describe, expect, it } from 'vitest';
import {
  arp,
  bytes,
  ethernet,
  icmpEcho,
  ipv4,
  ipv6,
  raw,
  sll,
  sll2,
  tcp,
  udp,
} from '../analysis/frames.test-helper.js';
import {
  createDecodedPacket,
  decodePacket,
  Fragment,
  formatIPv4,
  formatIPv6,
  Link,
  Net,
  parseIPAddress,
  TcpFlag,
  Transport,
} from './decode.js';
import { LinkType } from './types.js';

const d = createDecodedPacket();
const v4 = (text: string) => parseIPAddress(text)?.words[0];

describe('decodePacket', () => {
  it('decodes Ethernet + IPv4 + TCP: addresses, ports, flags, seq/ack, window, payload', () => {
    const frame = ethernet(
      0x0800,
      ipv4(
        { src: '10.0.0.1', dst: '203.0.113.7', protocol: 6 },
        tcp({ sport: 51000, dport: 443, seq: 0xfffffff0, ack: 77, flags: 0x18, window: 512 }, 'hello'),
      ),
    );
    decodePacket(raw(frame), d);
    expect(d.link).toBe(Link.ETHERNET);
    expect(d.network).toBe(Net.IPV4);
    expect(d.src[0]).toBe(v4('10.0.0.1'));
    expect(d.dst[0]).toBe(v4('203.0.113.7'));
    expect(d.transport).toBe(Transport.TCP);
    expect([d.srcPort, d.dstPort, d.seq, d.ack, d.window]).toEqual([51000, 443, 0xfffffff0, 77, 512]);
    expect(d.tcpFlags).toBe(TcpFlag.PSH | TcpFlag.ACK);
    expect(d.payloadLength).toBe(5);
    expect(Buffer.from(frame.subarray(d.payloadOffset, d.payloadOffset + d.payloadCaptured)).toString()).toBe('hello');
  });

  it('ignores Ethernet padding: the payload ends where the IP total length says', () => {
    const frame = bytes(
      ethernet(0x0800, ipv4({ src: '1.1.1.1', dst: '2.2.2.2', protocol: 6 }, tcp({ sport: 1, dport: 2 }))),
      [0, 0, 0, 0, 0, 0],
    );
    decodePacket(raw(frame), d);
    expect(d.payloadLength).toBe(0);
    expect(d.payloadCaptured).toBe(0);
  });

  it('crosses 802.1Q and 802.1ad (QinQ) tags of any depth', () => {
    const inner = ipv4({ src: '10.1.1.1', dst: '10.1.1.2', protocol: 17 }, udp(5353, 53, 'x'));
    decodePacket(raw(ethernet(0x0800, inner, [{ id: 100 }])), d);
    expect([d.vlanDepth, d.network, d.dstPort]).toEqual([1, Net.IPV4, 53]);
    decodePacket(raw(ethernet(0x0800, inner, [{ tpid: 0x88a8, id: 10 }, { id: 20 }, { id: 30 }])), d);
    expect([d.vlanDepth, d.network, d.transport, d.srcPort]).toEqual([3, Net.IPV4, Transport.UDP, 5353]);
  });

  it('decodes Linux SLL and SLL2, BSD NULL (either byte order), LOOP and raw IP', () => {
    const ip = ipv4({ src: '192.0.2.1', dst: '192.0.2.2', protocol: 1 }, icmpEcho());
    for (const [link, frame, expected] of [
      [LinkType.LINUX_SLL, sll(0x0800, ip), Link.SLL],
      [LinkType.LINUX_SLL2, sll2(0x0800, ip), Link.SLL2],
      [LinkType.NULL, bytes([2, 0, 0, 0], ip), Link.NULL],
      [LinkType.NULL, bytes([0, 0, 0, 2], ip), Link.NULL],
      [LinkType.LOOP, bytes([0, 0, 0, 2], ip), Link.NULL],
      [LinkType.RAW, ip, Link.RAW],
      [LinkType.IPV4, ip, Link.RAW],
    ] as const) {
      decodePacket(raw(frame, link), d);
      expect([d.link, d.network, d.transport, d.icmpType], `link type ${link}`).toEqual([
        expected,
        Net.IPV4,
        Transport.ICMP,
        8,
      ]);
      expect(d.src[0]).toBe(v4('192.0.2.1'));
    }
    const ip6 = ipv6({ src: '2001:db8::1', dst: '2001:db8::2', next: 58 }, icmpEcho(128));
    decodePacket(raw(bytes([30, 0, 0, 0], ip6), LinkType.NULL), d);
    expect([d.network, d.transport, d.icmpType]).toEqual([Net.IPV6, Transport.ICMPV6, 128]);
    decodePacket(raw(ip6, LinkType.RAW), d);
    expect(d.network).toBe(Net.IPV6);
    decodePacket(raw(sll2(0x86dd, ip6), LinkType.LINUX_SLL2), d);
    expect(formatIPv6(d.dst)).toBe('2001:db8::2');
  });

  it('skips IPv4 options by IHL', () => {
    const frame = ethernet(
      0x0800,
      ipv4({ src: '10.0.0.1', dst: '10.0.0.2', protocol: 17, options: [0x94, 4, 0, 0] }, udp(1000, 2000, 'abc')),
    );
    decodePacket(raw(frame), d);
    expect([d.ipHeaderLength, d.srcPort, d.dstPort, d.payloadLength]).toEqual([24, 1000, 2000, 3]);
  });

  it('reads IPv4 fragments: the first has the transport header, later ones do not', () => {
    const first = ipv4(
      { src: '10.0.0.1', dst: '10.0.0.2', protocol: 17, id: 9, moreFragments: true },
      udp(1000, 2000, 'x'.repeat(16)),
    );
    decodePacket(raw(ethernet(0x0800, first)), d);
    expect([d.fragment, d.transport, d.srcPort, d.ipId, d.moreFragments]).toEqual([
      Fragment.FIRST,
      Transport.UDP,
      1000,
      9,
      true,
    ]);
    const later = ipv4(
      { src: '10.0.0.1', dst: '10.0.0.2', protocol: 17, id: 9, fragmentOffset: 24 },
      bytes('y'.repeat(8)),
    );
    decodePacket(raw(ethernet(0x0800, later)), d);
    expect([d.fragment, d.transport, d.fragmentOffset, d.fragmentLength, d.moreFragments]).toEqual([
      Fragment.LATER,
      Transport.NONE,
      24,
      8,
      false,
    ]);
  });

  it('walks IPv6 extension headers (hop-by-hop, routing, destination options, AH) to the transport', () => {
    const frame = ethernet(
      0x86dd,
      ipv6(
        {
          src: 'fe80::1',
          dst: 'ff02::1:2',
          next: 17,
          ext: [{ type: 0 }, { type: 43, body: [0, 0, 0, 0, 0, 0] }, { type: 60 }, { type: 51 }],
        },
        udp(546, 547, 'dhcp'),
      ),
    );
    decodePacket(raw(frame), d);
    expect([d.network, d.protocol, d.transport, d.srcPort, d.dstPort, d.payloadLength]).toEqual([
      Net.IPV6,
      17,
      Transport.UDP,
      546,
      547,
      4,
    ]);
    expect(d.ipHeaderLength).toBe(40 + 8 + 8 + 8 + 12);
  });

  it('stops at IPv6 ESP and no-next-header; reads the fragment header', () => {
    decodePacket(raw(ethernet(0x86dd, ipv6({ src: '::1', dst: '::2', next: 50 }, bytes([1, 2, 3, 4, 5, 6, 7, 8])))), d);
    expect([d.network, d.protocol, d.transport]).toEqual([Net.IPV6, 50, Transport.NONE]);
    decodePacket(raw(ethernet(0x86dd, ipv6({ src: '::1', dst: '::2', next: 59 }, new Uint8Array(0)))), d);
    expect([d.network, d.protocol]).toEqual([Net.IPV6, 59]);
    const later = ipv6(
      {
        src: '2001:db8::1',
        dst: '2001:db8::2',
        next: 17,
        ext: [{ type: 44, fragment: { offset: 1448, more: true, id: 0xabcdef } }],
      },
      bytes('z'.repeat(16)),
    );
    decodePacket(raw(ethernet(0x86dd, later)), d);
    expect([d.fragment, d.fragmentOffset, d.moreFragments, d.ipId, d.transport]).toEqual([
      Fragment.LATER,
      1448,
      true,
      0xabcdef,
      Transport.NONE,
    ]);
    const atomic = ipv6(
      {
        src: '2001:db8::1',
        dst: '2001:db8::2',
        next: 17,
        ext: [{ type: 44, fragment: { offset: 0, more: false, id: 5 } }],
      },
      udp(1, 2),
    );
    decodePacket(raw(ethernet(0x86dd, atomic)), d);
    expect([d.fragment, d.transport, d.dstPort]).toEqual([Fragment.NONE, Transport.UDP, 2]);
  });

  it('decodes ARP sender and target', () => {
    decodePacket(raw(ethernet(0x0806, arp(1, '10.0.0.1', '10.0.0.2'))), d);
    expect([d.network, d.arpOp, formatIPv4(d.src[0] as number), formatIPv4(d.dst[0] as number)]).toEqual([
      Net.ARP,
      1,
      '10.0.0.1',
      '10.0.0.2',
    ]);
  });

  it('marks truncation instead of reading past the captured bytes, for every cut of a frame', () => {
    const frame = ethernet(
      0x86dd,
      ipv6(
        { src: '2001:db8::1', dst: '2001:db8::2', next: 6, ext: [{ type: 0 }] },
        tcp({ sport: 1, dport: 2, options: [1, 1, 1, 1] }, 'data'),
      ),
    );
    for (let cut = 0; cut < frame.length; cut++) {
      const p = raw(frame.subarray(0, cut), LinkType.ETHERNET, 0, frame.length);
      decodePacket(p, d);
      if (cut < 14 + 40 + 8 + 24) {
        expect(d.transport, `cut ${cut}`).toBe(Transport.NONE);
        expect(d.truncated, `cut ${cut}`).toBe(true);
      } else {
        expect(d.transport).toBe(Transport.TCP);
        expect(d.payloadCaptured).toBe(cut - (14 + 40 + 8 + 24));
        expect(d.payloadLength).toBe(4);
      }
    }
  });

  it('never throws on random bytes of any link type', () => {
    let seed = 12345;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 16;
    };
    for (let i = 0; i < 20000; i++) {
      const data = new Uint8Array(rand() % 120);
      for (let j = 0; j < data.length; j++) data[j] = rand() & 255;
      if (data.length > 14 && i % 2 === 0) data[12] = 0x08; // steer half into IPv4/IPv6 paths
      if (data.length > 14 && i % 4 === 0) data[13] = 0xdd;
      const link = [1, 0, 101, 108, 113, 228, 229, 276, 999][i % 9] as number;
      expect(() => decodePacket(raw(data, link), d)).not.toThrow();
    }
  });
});

describe('address text', () => {
  it('formats IPv6 as RFC 5952 (and as tshark prints it)', () => {
    const cases = [
      '::',
      '::1',
      '2001:db8::1',
      'fe80::64fc:c5ff:fef7:d9da',
      'ff02::1:ff00:2',
      '2001:db8:0:1:1:1:1:1',
      '1::',
      '2001:0:0:1::1',
      '::ffff:192.0.2.1',
    ];
    for (const text of cases) {
      const p = parseIPAddress(text);
      expect(p?.version, text).toBe(6);
      expect(formatIPv6(p?.words ?? [])).toBe(text);
    }
    expect(formatIPv6(parseIPAddress('2001:db8:0:0:1:0:0:1')?.words ?? [])).toBe('2001:db8::1:0:0:1');
  });

  it('parses and rejects addresses', () => {
    expect(formatIPv4(parseIPAddress('255.0.10.1')?.words[0] ?? 0)).toBe('255.0.10.1');
    for (const bad of ['256.1.1.1', '1.2.3', 'a::b::c', '12345::', 'host', '1:2:3:4:5:6:7:8:9']) {
      expect(parseIPAddress(bad), bad).toBeUndefined();
    }
  });
});

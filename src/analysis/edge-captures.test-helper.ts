import { join } from 'node:path';
import { LinkType } from '../pcap/types.js';
import {
  arp,
  bytes,
  clientHello,
  dnsMessage,
  ethernet,
  icmpEcho,
  ipv4,
  ipv6,
  type PacketSpec,
  sll,
  sll2,
  tcp,
  udp,
  writePcap,
} from './frames.test-helper.js';

/**
 * Hand-built capture files for the cases live traffic rarely shows: fragments out of order and incomplete, ICMP
 * errors quoting headers, flows between one address and itself, snaplen-cut headers, IPv6 extension headers, ESP,
 * retransmissions, resets, zero windows, and every link type. Each is a classic pcap that tshark reads too.
 */

const T0 = 1_790_000_000;
const E4 = 0x0800;
const E6 = 0x86dd;

function eth4(o: Parameters<typeof ipv4>[0], payload: Uint8Array) {
  return ethernet(E4, ipv4(o, payload));
}

/** Returns the paths written, by name. */
export function writeEdgeCaptures(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const put = (name: string, linkType: number, packets: PacketSpec[], options?: Parameters<typeof writePcap>[3]) => {
    const path = join(dir, `${name}.pcap`);
    writePcap(path, linkType, packets, options);
    files[name] = path;
  };
  let t = T0 + 0.5;
  const next = (gap = 0.01) => {
    t += gap;
    return [Math.floor(t), Math.round((t - Math.floor(t)) * 1e6) * 1000] as [number, number];
  };

  // --- IPv4 over Ethernet: TCP with handshake, data, retransmission, zero window, RST; UDP; DNS; fragments; ICMP
  const c = '192.0.2.10';
  const s = '198.51.100.20';
  const p: PacketSpec[] = [];
  const seg = (from: 'c' | 's', o: Parameters<typeof tcp>[0], payload: Uint8Array | string = '') => {
    p.push({
      t: next(),
      data: eth4({ src: from === 'c' ? c : s, dst: from === 'c' ? s : c, protocol: 6 }, tcp(o, payload)),
    });
  };
  p.push({ t: next(), data: ethernet(0x0806, arp(1, c, s)) });
  // TLS flow with a ClientHello carrying SNI, a retransmitted segment, and a zero window
  seg('c', { sport: 40000, dport: 443, seq: 100, flags: 2 });
  seg('s', { sport: 443, dport: 40000, seq: 900, ack: 101, flags: 18 });
  seg('c', { sport: 40000, dport: 443, seq: 101, ack: 901, flags: 16 });
  const hello = clientHello('backup.example.com');
  seg('c', { sport: 40000, dport: 443, seq: 101, ack: 901, flags: 24 }, hello);
  seg('c', { sport: 40000, dport: 443, seq: 101, ack: 901, flags: 24 }, hello); // retransmission
  seg(
    's',
    { sport: 443, dport: 40000, seq: 901, ack: 101 + hello.length, flags: 24 },
    bytes([0x16, 3, 3, 0, 4, 2, 0, 0, 0]),
  );
  seg('c', { sport: 40000, dport: 443, seq: 101 + hello.length, ack: 910, flags: 16, window: 0 });
  seg('c', { sport: 40000, dport: 443, seq: 101 + hello.length, ack: 910, flags: 20 });
  // connection refused
  seg('c', { sport: 40001, dport: 81, seq: 5, flags: 2 });
  seg('s', { sport: 81, dport: 40001, seq: 0, ack: 6, flags: 20 });
  // HTTP request and response
  seg('c', { sport: 40002, dport: 80, seq: 1, flags: 2 });
  seg('s', { sport: 80, dport: 40002, seq: 7, ack: 2, flags: 18 });
  seg(
    'c',
    { sport: 40002, dport: 80, seq: 2, ack: 8, flags: 24 },
    'GET /download?id=1 HTTP/1.1\r\nHost: files.example.com\r\nAccept: */*\r\n\r\n',
  );
  seg(
    's',
    { sport: 80, dport: 40002, seq: 8, ack: 80, flags: 24 },
    'HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n',
  );
  // a first packet from the higher address with the lower port: tshark's A is whoever sent first
  p.push({ t: next(), data: eth4({ src: s, dst: c, protocol: 17 }, udp(53, 3000, dnsMessage(7, 'x.example', 1))) });
  p.push({
    t: next(),
    data: eth4(
      { src: c, dst: s, protocol: 17 },
      udp(3000, 53, dnsMessage(7, 'x.example', 1, [{ type: 1, data: '203.0.113.7' }])),
    ),
  });
  // DNS query and response with CNAME + A + AAAA, and an NXDOMAIN
  p.push({
    t: next(),
    data: eth4({ src: c, dst: '9.9.9.9', protocol: 17 }, udp(53001, 53, dnsMessage(1, 'www.example.com', 1))),
  });
  p.push({
    t: next(),
    data: eth4(
      { src: '9.9.9.9', dst: c, protocol: 17 },
      udp(
        53,
        53001,
        dnsMessage(1, 'www.example.com', 1, [
          { type: 5, data: 'edge.example.net' },
          { type: 1, data: '203.0.113.7' },
        ]),
      ),
    ),
  });
  p.push({
    t: next(),
    data: eth4({ src: c, dst: '9.9.9.9', protocol: 17 }, udp(53002, 53, dnsMessage(2, 'nope.example.com', 28))),
  });
  p.push({
    t: next(),
    data: eth4({ src: '9.9.9.9', dst: c, protocol: 17 }, udp(53, 53002, dnsMessage(2, 'nope.example.com', 28, [], 3))),
  });
  // UDP fragmented in three, arriving out of order (last, first, middle): counts at UDP on the middle one
  const big = udp(5000, 6000, 'u'.repeat(40));
  p.push({ t: next(), data: eth4({ src: c, dst: s, protocol: 17, id: 77, fragmentOffset: 32 }, big.subarray(32)) });
  p.push({ t: next(), data: eth4({ src: c, dst: s, protocol: 17, id: 77, moreFragments: true }, big.subarray(0, 16)) });
  p.push({
    t: next(),
    data: eth4({ src: c, dst: s, protocol: 17, id: 77, moreFragments: true, fragmentOffset: 16 }, big.subarray(16, 32)),
  });
  // a datagram whose last fragment never comes: IP counts, UDP does not
  p.push({
    t: next(),
    data: eth4(
      { src: c, dst: s, protocol: 17, id: 78, moreFragments: true },
      udp(5000, 6001, 'v'.repeat(24)).subarray(0, 16),
    ),
  });
  // a duplicate of a completed datagram's fragment
  p.push({ t: next(), data: eth4({ src: c, dst: s, protocol: 17, id: 77, fragmentOffset: 32 }, big.subarray(32)) });
  // ICMP echo, and a port unreachable quoting an IP + UDP header (not counted as UDP by tshark)
  p.push({ t: next(), data: eth4({ src: c, dst: s, protocol: 1 }, icmpEcho(8)) });
  p.push({ t: next(), data: eth4({ src: s, dst: c, protocol: 1 }, icmpEcho(0)) });
  const quoted = ipv4({ src: c, dst: s, protocol: 17 }, udp(3333, 4444, 'q'));
  p.push({ t: next(), data: eth4({ src: s, dst: c, protocol: 1 }, bytes([3, 3, 0, 0, 0, 0, 0, 0], quoted)) });
  // one address to itself on two ports, both ways; and equal ports between two addresses
  p.push({ t: next(), data: eth4({ src: '127.0.0.1', dst: '127.0.0.1', protocol: 17 }, udp(6000, 5000, 'a')) });
  p.push({ t: next(), data: eth4({ src: '127.0.0.1', dst: '127.0.0.1', protocol: 17 }, udp(5000, 6000, 'b')) });
  p.push({ t: next(), data: eth4({ src: '127.0.0.1', dst: '127.0.0.1', protocol: 17 }, udp(7000, 7000, 'c')) });
  p.push({ t: next(), data: eth4({ src: s, dst: c, protocol: 17 }, udp(123, 123, 'ntp')) });
  p.push({ t: next(), data: eth4({ src: c, dst: s, protocol: 17 }, udp(123, 123, 'ntp')) });
  // IPv4 with options; GRE (an IP protocol without ports)
  p.push({
    t: next(),
    data: eth4({ src: c, dst: s, protocol: 6, options: [1, 1, 1, 0] }, tcp({ sport: 40003, dport: 22, flags: 2 })),
  });
  p.push({ t: next(), data: eth4({ src: c, dst: '203.0.113.99', protocol: 47 }, bytes([0, 0, 8, 0, 1, 2, 3, 4])) });
  // a TCP segment cut inside its header by the snaplen: IP counts, TCP does not
  const full = eth4({ src: c, dst: s, protocol: 6 }, tcp({ sport: 40004, dport: 443, flags: 24 }, 'x'.repeat(100)));
  p.push({ t: next(), data: full.subarray(0, 14 + 20 + 10), originalLength: full.length });
  // cut after the header: counts everywhere with its on-wire length
  p.push({ t: next(), data: full.subarray(0, 14 + 20 + 20 + 4), originalLength: full.length });
  // Ethernet padding after a short IP datagram
  p.push({
    t: next(),
    data: bytes(eth4({ src: s, dst: c, protocol: 6 }, tcp({ sport: 443, dport: 40004, flags: 16 })), new Uint8Array(6)),
  });
  put('edge-ipv4', LinkType.ETHERNET, p);

  // --- IPv6: extension headers, fragments (complete out of order, incomplete, atomic), ESP, no next header
  const a6 = '2001:db8::10';
  const b6 = '2001:db8:0:1::20';
  const q: PacketSpec[] = [];
  q.push({
    t: next(),
    data: ethernet(
      E6,
      ipv6(
        { src: a6, dst: b6, next: 17, ext: [{ type: 0 }, { type: 60 }] },
        udp(1111, 53, dnsMessage(3, 'v6.example.org', 28)),
      ),
    ),
  });
  q.push({
    t: next(),
    data: ethernet(
      E6,
      ipv6(
        { src: b6, dst: a6, next: 17 },
        udp(53, 1111, dnsMessage(3, 'v6.example.org', 28, [{ type: 28, data: '2001:db8:1::7' }])),
      ),
    ),
  });
  q.push({
    t: next(),
    data: ethernet(
      E6,
      ipv6(
        { src: a6, dst: b6, next: 6, ext: [{ type: 43, body: [0, 0, 0, 0, 0, 0] }] },
        tcp({ sport: 50000, dport: 443, flags: 2 }),
      ),
    ),
  });
  q.push({
    t: next(),
    data: ethernet(
      E6,
      ipv6({ src: b6, dst: a6, next: 6 }, tcp({ sport: 443, dport: 50000, seq: 5, ack: 1001, flags: 18 })),
    ),
  });
  const dg = udp(7000, 8000, 'w'.repeat(40));
  const frag = (offset: number, more: boolean, id: number, body: Uint8Array) =>
    ethernet(E6, ipv6({ src: a6, dst: b6, next: 17, ext: [{ type: 44, fragment: { offset, more, id } }] }, body));
  q.push({ t: next(), data: frag(24, true, 0x100, dg.subarray(24, 40)) });
  q.push({ t: next(), data: frag(0, true, 0x100, dg.subarray(0, 24)) });
  q.push({ t: next(), data: frag(40, false, 0x100, dg.subarray(40)) });
  q.push({ t: next(), data: frag(0, true, 0x101, udp(7000, 8001, 'z'.repeat(30)).subarray(0, 16)) });
  q.push({ t: next(), data: frag(0, false, 0x102, udp(7000, 8002, 'atomic')) });
  q.push({
    t: next(),
    data: ethernet(E6, ipv6({ src: a6, dst: b6, next: 50 }, bytes([0, 0, 1, 0, 0, 0, 0, 1, 9, 9, 9, 9]))),
  });
  q.push({
    t: next(),
    data: ethernet(E6, ipv6({ src: a6, dst: b6, next: 59, ext: [{ type: 60 }] }, new Uint8Array(0))),
  });
  q.push({ t: next(), data: ethernet(E6, ipv6({ src: 'fe80::1', dst: 'ff02::1', next: 58 }, icmpEcho(134))) });
  q.push({
    t: next(),
    data: ethernet(E6, ipv6({ src: '::', dst: 'ff02::1:ff00:20', next: 58, ext: [{ type: 0 }] }, icmpEcho(135))),
  });
  put('edge-ipv6', LinkType.ETHERNET, q);

  // --- tags, link types, precision, cut file
  const v4udp = (i: number) =>
    ipv4({ src: `10.${i}.0.1`, dst: `10.${i}.0.2`, protocol: 17 }, udp(1000 + i, 2000, 'tagged'));
  put('vlan', LinkType.ETHERNET, [
    { t: next(), data: ethernet(E4, v4udp(1), [{ id: 100 }]) },
    { t: next(), data: ethernet(E4, v4udp(2), [{ tpid: 0x88a8, id: 300 }, { id: 200 }]) },
    { t: next(), data: ethernet(E4, v4udp(3), [{ tpid: 0x88a8, id: 1 }, { id: 2 }, { id: 3 }]) },
    { t: next(), data: ethernet(E6, ipv6({ src: a6, dst: b6, next: 17 }, udp(1, 2, 'six')), [{ id: 100 }]) },
  ]);
  const ipPackets = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      i % 2 === 0
        ? ipv4(
            { src: '172.16.0.1', dst: '172.16.0.2', protocol: 6 },
            tcp({ sport: 33000, dport: 8443, seq: 1 + i, flags: 16 }, 'p'.repeat(i)),
          )
        : ipv6({ src: 'fd00::1', dst: 'fd00::2', next: 17 }, udp(4000, 4001, 'q'.repeat(i))),
    );
  const family = (ip: Uint8Array) => (ip[0] === 0x45 ? 2 : 30);
  put(
    'sll',
    LinkType.LINUX_SLL,
    ipPackets(6).map((ip) => ({ t: next(), data: sll(ip[0] === 0x45 ? E4 : E6, ip) })),
  );
  put(
    'sll2',
    LinkType.LINUX_SLL2,
    ipPackets(6).map((ip) => ({ t: next(), data: sll2(ip[0] === 0x45 ? E4 : E6, ip) })),
  );
  put(
    'null',
    LinkType.NULL,
    ipPackets(6).map((ip) => ({ t: next(), data: bytes([family(ip), 0, 0, 0], ip) })),
  );
  put(
    'loop',
    LinkType.LOOP,
    ipPackets(4).map((ip) => ({ t: next(), data: bytes([0, 0, 0, family(ip)], ip) })),
  );
  put(
    'raw',
    LinkType.RAW,
    ipPackets(6).map((ip) => ({ t: next(), data: ip })),
  );
  put(
    'nanosecond',
    LinkType.ETHERNET,
    [123456789, 123456790, 987654321].map((ns, i) => ({
      t: [T0 + 100 + i, ns] as [number, number],
      data: eth4({ src: c, dst: s, protocol: 17 }, udp(9, 9, 'n')),
    })),
    { nanosecond: true },
  );
  const cutPackets = ipPackets(8).map((ip) => ({ t: next(), data: sll2(ip[0] === 0x45 ? E4 : E6, ip) }));
  const whole = 24 + cutPackets.reduce((sum, x) => sum + 16 + x.data.length, 0);
  put('truncated', LinkType.LINUX_SLL2, cutPackets, { cutAt: whole - 7 });
  put('empty', LinkType.ETHERNET, []);
  return files;
}

/**
 * The capture report (JSON). docs/analysis.md documents every field; bump REPORT_VERSION on an incompatible change.
 * Times are ISO-8601 UTC with the file's precision; durations and offsets are seconds (numbers); bytes are on-wire
 * frame lengths (pcap "original length", what tshark calls frame.len) unless a name says "captured".
 */
export const REPORT_VERSION = 1;

export interface Report {
  version: typeof REPORT_VERSION;
  file?: { path?: string; size?: number };
  summary: Summary;
  protocols: ProtocolNode;
  conversations: {
    ipv4: Conversation[];
    ipv6: Conversation[];
    tcp: Conversation[];
    udp: Conversation[];
    /** Rows left out of each list by the row limit (the largest by bytes are kept). */
    omitted: { ipv4: number; ipv6: number; tcp: number; udp: number };
  };
  endpoints: {
    ipv4: Endpoint[];
    ipv6: Endpoint[];
    tcp: Endpoint[];
    udp: Endpoint[];
    omitted: { ipv4: number; ipv6: number; tcp: number; udp: number };
  };
  hosts: HostInfo;
  traffic: Traffic;
  timeline: Timeline;
  tcp: TcpHealth;
  names: Names;
  explanation: Explanation;
}

export interface Summary {
  format: 'pcap' | 'pcapng' | 'unknown';
  /** Link types of the interfaces, by name (e.g. "ETHERNET", "LINUX_SLL2") or "LINKTYPE_<n>". */
  linkTypes: string[];
  /** Largest snapshot length of the interfaces. */
  snaplen: number;
  interfaces: Array<{ name?: string; linkType: string; snaplen: number }>;
  /** Timestamp precision of the file: 6 for µs, 9 for ns. */
  timePrecision: number;
  packets: number;
  /** Sum of on-wire lengths (capinfos "Data size"). */
  bytes: number;
  /** Sum of captured lengths. */
  capturedBytes: number;
  fileBytes: number;
  /** Earliest and latest packet time (absent when the file has no packet). */
  firstTime?: string;
  lastTime?: string;
  /** latest − earliest, seconds. */
  duration: number;
  /** Per second over `duration`; null when the duration is 0. */
  packetsPerSecond: number | null;
  bytesPerSecond: number | null;
  bitsPerSecond: number | null;
  averagePacketSize: number | null;
  /** Packets whose captured length is below their on-wire length (snaplen). */
  packetsCut: number;
  /** The file ends in the middle of a record or is corrupt: the report covers what could be read. */
  truncated: boolean;
  warnings: string[];
  comments: string[];
}

export interface ProtocolNode {
  name: string;
  packets: number;
  bytes: number;
  children: ProtocolNode[];
}

export interface Conversation {
  /** A is the source of the conversation's first packet (as tshark orders them). */
  a: string;
  b: string;
  portA?: number;
  portB?: number;
  framesAtoB: number;
  bytesAtoB: number;
  framesBtoA: number;
  bytesBtoA: number;
  frames: number;
  bytes: number;
  /** Seconds from the capture's first packet to the conversation's first packet. */
  relStart: number;
  duration: number;
  /** TCP/UDP: application seen on the flow, and its name (TLS SNI, HTTP Host). */
  app?: string;
  name?: string;
}

export interface Endpoint {
  address: string;
  port?: number;
  frames: number;
  bytes: number;
  txFrames: number;
  txBytes: number;
  rxFrames: number;
  rxBytes: number;
}

export interface HostInfo {
  /** The captured host's addresses that directions are relative to. */
  addresses: string[];
  /** How they were chosen: given by the caller, inferred from the traffic, or none found. */
  source: 'given' | 'inferred' | 'none';
  note?: string;
}

export interface Volume {
  packets: number;
  bytes: number;
}

export interface Peer {
  address: string;
  /** For services: the remote port (TCP/UDP) and the IP protocol ("tcp", "udp", "icmp", "gre", "esp", …). */
  port?: number;
  protocol?: string;
  bytes: number;
  packets: number;
  /** Share of all bytes in this direction, 0..1. */
  share: number;
  flows: number;
  /** Names seen for the address: TLS SNI, HTTP Host, DNS answers. */
  names?: string[];
  app?: string;
}

export interface Traffic {
  /** Relative to hosts.addresses: out = from a host address to another, in = to a host address, local = between
   * host addresses, other = neither end is a host address (or no host is known), nonIp = ARP and others. */
  outbound: Volume;
  inbound: Volume;
  local: Volume;
  other: Volume;
  nonIp: Volume;
  /** Remote addresses by bytes sent to them (outbound), and by bytes received from them (inbound). */
  topDestinations: Peer[];
  topSources: Peer[];
  /** Remote address + port + transport, by outbound and by inbound bytes. */
  topDestinationServices: Peer[];
  topSourceServices: Peer[];
  /** Remote ports by outbound bytes. */
  topDestinationPorts: Array<{ port: number; protocol: 'tcp' | 'udp'; bytes: number; share: number; flows: number }>;
}

export interface Timeline {
  binSeconds: number;
  /** Time of bin 0's start (the first packet's time). */
  start?: string;
  /** Columns, one value per bin. */
  packets: number[];
  bytes: number[];
  outPackets: number[];
  outBytes: number[];
  inPackets: number[];
  inBytes: number[];
}

export interface TcpHealth {
  segments: number;
  /** Segments with payload (or SYN/FIN). */
  dataSegments: number;
  /** Segments whose sequence number is below the highest seen in their direction (Wireshark's retransmission,
   * fast retransmission, spurious retransmission and out-of-order together). */
  retransmissions: number;
  retransmittedBytes: number;
  resets: number;
  zeroWindows: number;
  connections: { attempted: number; established: number; refused: number; unanswered: number };
  handshakeRtt: { samples: number; medianMs: number | null; p95Ms: number | null; maxMs: number | null };
  /** Flows with the most retransmissions / resets / slowest handshakes. */
  worstFlows: Array<{
    flow: string;
    retransmissions: number;
    resets: number;
    zeroWindows: number;
    rttMs: number | null;
  }>;
}

export interface Names {
  dns: Array<{
    name: string;
    type: string;
    queries: number;
    responses: number;
    /** Response codes by name (NOERROR, NXDOMAIN, …). */
    rcodes: Record<string, number>;
    /** A/AAAA addresses and CNAME targets in the answers. */
    answers: string[];
  }>;
  tls: Array<{ sni: string; flows: number; servers: string[] }>;
  http: Array<{
    method: string;
    host: string;
    path: string;
    requests: number;
    /** Response status codes seen for these requests. */
    statuses: Record<string, number>;
  }>;
  /** Rows left out by the limits. */
  omitted: { dns: number; tls: number; http: number };
}

export interface Explanation {
  /** Plain sentences, most important first. */
  sentences: string[];
  /** The numbers behind them. */
  outbound: {
    bytes: number;
    firstQuarterBitsPerSecond: number | null;
    lastQuarterBitsPerSecond: number | null;
    topServices: Peer[];
    newDestinations: Array<{ address: string; bytes: number; share: number; firstSeen: number; names?: string[] }>;
  };
  inbound: { bytes: number; firstQuarterBitsPerSecond: number | null; lastQuarterBitsPerSecond: number | null };
  baseline?: {
    file?: string;
    outboundBitsPerSecond: number | null;
    baselineOutboundBitsPerSecond: number | null;
    newDestinations: Array<{ address: string; bytes: number; share: number; names?: string[] }>;
  };
}

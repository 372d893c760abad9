/*
 * udp-flood: the traffic generator of bench/capture-throughput.ts (a benchmark tool, not part of tripcap).
 * Built by the benchmark with the system's gcc: gcc -O2 -Wall -o udp-flood udp-flood.c
 *
 *   udp-flood send-raw IFNAME DST_MAC SRC_IP DST_IP DST_PORT SECONDS [PPS]
 *       Writes ready-made 64-byte Ethernet frames (14 Ethernet + 20 IPv4 + 8 UDP + 22 payload; no FCS on a veth)
 *       from IFNAME's MAC address to DST_MAC, SRC_IP:40000 -> DST_IP:DST_PORT, through an AF_PACKET socket with
 *       PACKET_QDISC_BYPASS and sendmmsg(2) in batches of 64: the IP/UDP send path is skipped, so one core offers
 *       about twice the rate of a UDP socket. The UDP checksum is 0 (none, allowed for IPv4). Datagram i carries i
 *       as a 64-bit little-endian number in its first 8 payload bytes. Runs for SECONDS, as fast as it can (PPS 0,
 *       the default) or paced at PPS packets per second.
 *   udp-flood send DST_IP DST_PORT SECONDS [PPS]
 *       The same datagrams (22-byte payload) through an ordinary connected UDP socket and sendmmsg(2).
 *   udp-flood sink PORT SECONDS
 *       Binds a UDP socket to PORT and never reads it, so datagrams to PORT are dropped silently in the socket (no
 *       ICMP port-unreachable replies join the capture), for SECONDS or until SIGTERM/SIGINT.
 *
 * The senders print one JSON line when done: {"sent":N,"errors":N,"seconds":S,"pps":P}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define FRAME_LEN 64
#define ETH_LEN 14
#define IP_LEN 20
#define UDP_LEN 8
#define PAYLOAD_LEN (FRAME_LEN - ETH_LEN - IP_LEN - UDP_LEN) /* 22 */
#define SOURCE_PORT 40000

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) {
  (void)sig;
  stop_requested = 1;
}

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void) {
  fprintf(stderr,
          "usage: udp-flood send-raw IFNAME DST_MAC SRC_IP DST_IP DST_PORT SECONDS [PPS]\n"
          "       udp-flood send DST_IP DST_PORT SECONDS [PPS]\n"
          "       udp-flood sink PORT SECONDS\n");
  return 2;
}

static int parse_port(const char *s) {
  char *end;
  long v = strtol(s, &end, 10);
  return *end == '\0' && v >= 1 && v <= 65535 ? (int)v : -1;
}

static double parse_number(const char *s, double min, double max) {
  char *end;
  double v = strtod(s, &end);
  return *end == '\0' && v >= min && v <= max ? v : -1;
}

/* The send loop shared by both senders: sendmmsg() batches until SECONDS pass, optionally paced to PPS. */
static int flood(int fd, struct mmsghdr *msgs, unsigned char **seq_at, double seconds, double pps) {
  uint64_t sent = 0, errors = 0;
  double start = now_seconds(), end = start + seconds, t = start;
  while (!stop_requested && t < end) {
    int n = BATCH;
    if (pps > 0) {
      double due = (t - start) * pps - (double)sent;
      if (due < 1) {
        struct timespec pause = {0, 20000};
        nanosleep(&pause, NULL);
        t = now_seconds();
        continue;
      }
      if (due < n) n = (int)due;
    }
    for (int i = 0; i < n; i++) {
      uint64_t seq = sent + (uint64_t)i;
      memcpy(seq_at[i], &seq, sizeof seq);
    }
    int done = sendmmsg(fd, msgs, (unsigned)n, 0);
    if (done < 0) {
      if (errno != ENOBUFS && errno != EAGAIN && errno != EINTR && errno != ECONNREFUSED) {
        perror("udp-flood: sendmmsg");
        return 1;
      }
      errors++;
    } else {
      sent += (uint64_t)done;
    }
    t = now_seconds();
  }
  double elapsed = now_seconds() - start;
  printf("{\"sent\":%llu,\"errors\":%llu,\"seconds\":%.6f,\"pps\":%.0f}\n", (unsigned long long)sent,
         (unsigned long long)errors, elapsed, elapsed > 0 ? (double)sent / elapsed : 0.0);
  return 0;
}

static uint16_t ip_checksum(const unsigned char *header) {
  uint32_t sum = 0;
  for (int i = 0; i < IP_LEN; i += 2) sum += (uint32_t)((header[i] << 8) | header[i + 1]);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return (uint16_t)~sum;
}

static int run_send_raw(int argc, char **argv) {
  if (argc < 8) return usage();
  const char *ifname = argv[2];
  unsigned char dst_mac[6];
  struct in_addr src_ip, dst_ip;
  int port = parse_port(argv[6]);
  double seconds = parse_number(argv[7], 0.001, 600);
  double pps = argc > 8 ? parse_number(argv[8], 0, 1e8) : 0;
  if (strlen(ifname) >= IFNAMSIZ || port < 0 || seconds < 0 || pps < 0 ||
      sscanf(argv[3], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &dst_mac[0], &dst_mac[1], &dst_mac[2], &dst_mac[3],
             &dst_mac[4], &dst_mac[5]) != 6 ||
      inet_pton(AF_INET, argv[4], &src_ip) != 1 || inet_pton(AF_INET, argv[5], &dst_ip) != 1)
    return usage();

  int fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: sends only, receives nothing */
  if (fd < 0) {
    perror("udp-flood: AF_PACKET socket (needs CAP_NET_RAW)");
    return 1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  strncpy(ifr.ifr_name, ifname, IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) {
    perror("udp-flood: SIOCGIFINDEX");
    return 1;
  }
  int ifindex = ifr.ifr_ifindex;
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
    perror("udp-flood: SIOCGIFHWADDR");
    return 1;
  }
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one);
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  struct sockaddr_ll to;
  memset(&to, 0, sizeof to);
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  memcpy(to.sll_addr, dst_mac, 6);

  static unsigned char frames[BATCH][FRAME_LEN];
  static unsigned char *seq_at[BATCH];
  static struct iovec iov[BATCH];
  static struct mmsghdr msgs[BATCH];
  for (int i = 0; i < BATCH; i++) {
    unsigned char *f = frames[i];
    memset(f, '.', FRAME_LEN);
    memcpy(f, dst_mac, 6);
    memcpy(f + 6, ifr.ifr_hwaddr.sa_data, 6);
    f[12] = 0x08, f[13] = 0x00; /* IPv4 */
    unsigned char *ip = f + ETH_LEN;
    ip[0] = 0x45, ip[1] = 0; /* version 4, 20-byte header */
    ip[2] = 0, ip[3] = IP_LEN + UDP_LEN + PAYLOAD_LEN;
    ip[4] = ip[5] = 0;       /* id */
    ip[6] = 0x40, ip[7] = 0; /* don't fragment */
    ip[8] = 64, ip[9] = 17;  /* TTL, UDP */
    ip[10] = ip[11] = 0;
    memcpy(ip + 12, &src_ip, 4);
    memcpy(ip + 16, &dst_ip, 4);
    uint16_t sum = ip_checksum(ip);
    ip[10] = (unsigned char)(sum >> 8), ip[11] = (unsigned char)sum;
    unsigned char *udp = ip + IP_LEN;
    udp[0] = SOURCE_PORT >> 8, udp[1] = SOURCE_PORT & 0xff;
    udp[2] = (unsigned char)(port >> 8), udp[3] = (unsigned char)port;
    udp[4] = 0, udp[5] = UDP_LEN + PAYLOAD_LEN;
    udp[6] = udp[7] = 0; /* no checksum */
    seq_at[i] = udp + UDP_LEN;
    iov[i].iov_base = f;
    iov[i].iov_len = FRAME_LEN;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_name = &to;
    msgs[i].msg_hdr.msg_namelen = sizeof to;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  return flood(fd, msgs, seq_at, seconds, pps);
}

static int run_send(int argc, char **argv) {
  if (argc < 5) return usage();
  struct sockaddr_in addr = {.sin_family = AF_INET};
  int port = parse_port(argv[3]);
  double seconds = parse_number(argv[4], 0.001, 600);
  double pps = argc > 5 ? parse_number(argv[5], 0, 1e8) : 0;
  if (port < 0 || seconds < 0 || pps < 0 || inet_pton(AF_INET, argv[2], &addr.sin_addr) != 1) return usage();
  addr.sin_port = htons((uint16_t)port);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("udp-flood: socket/connect");
    return 1;
  }
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  static unsigned char buffers[BATCH][PAYLOAD_LEN];
  static unsigned char *seq_at[BATCH];
  static struct iovec iov[BATCH];
  static struct mmsghdr msgs[BATCH];
  memset(buffers, '.', sizeof buffers);
  for (int i = 0; i < BATCH; i++) {
    seq_at[i] = buffers[i];
    iov[i].iov_base = buffers[i];
    iov[i].iov_len = PAYLOAD_LEN;
    memset(&msgs[i], 0, sizeof msgs[i]);
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  return flood(fd, msgs, seq_at, seconds, pps);
}

static int run_sink(int argc, char **argv) {
  if (argc < 4) return usage();
  int port = parse_port(argv[2]);
  double seconds = parse_number(argv[3], 0.001, 3600);
  if (port < 0 || seconds < 0) return usage();
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = INADDR_ANY};
  if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("udp-flood: sink socket/bind");
    return 1;
  }
  printf("{\"sink\":%d}\n", port);
  fflush(stdout);
  double end = now_seconds() + seconds;
  while (!stop_requested && now_seconds() < end) {
    struct timespec pause = {0, 50000000};
    nanosleep(&pause, NULL);
  }
  return 0;
}

int main(int argc, char **argv) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (argc >= 2 && strcmp(argv[1], "send-raw") == 0) return run_send_raw(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "send") == 0) return run_send(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "sink") == 0) return run_sink(argc, argv);
  return usage();
}

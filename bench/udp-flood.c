/*
 * udp-flood: the traffic generator of bench/capture-throughput.ts (a benchmark tool, not part of tripcap).
 *
 *   udp-flood send DST_IP DST_PORT SECONDS [PAYLOAD_BYTES [PPS]]
 *       Sends UDP datagrams of PAYLOAD_BYTES (default 22: with IPv4 and Ethernet headers, 64-byte frames) to
 *       DST_IP:DST_PORT for SECONDS, in batches of 64 through sendmmsg(2), as fast as it can (PPS 0, the default)
 *       or paced at PPS packets per second. Datagram i carries i as a 64-bit little-endian number in its first
 *       8 bytes. Prints one JSON line: {"sent":N,"errors":N,"seconds":S,"pps":P}.
 *   udp-flood sink PORT SECONDS
 *       Binds a UDP socket to PORT and never reads it, so that datagrams to PORT are dropped silently (no ICMP
 *       port-unreachable replies join the capture), for SECONDS or until SIGTERM.
 *
 * Build: gcc -O2 -Wall -o udp-flood udp-flood.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_PAYLOAD 1472

static volatile sig_atomic_t stop_requested = 0;
static void on_signal(int sig) { (void)sig; stop_requested = 1; }

static double now_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void) {
  fprintf(stderr,
          "usage: udp-flood send DST_IP DST_PORT SECONDS [PAYLOAD_BYTES [PPS]]\n"
          "       udp-flood sink PORT SECONDS\n");
  return 2;
}

static int run_send(int argc, char **argv) {
  if (argc < 5) return usage();
  const char *dst = argv[2];
  int port = atoi(argv[3]);
  double seconds = atof(argv[4]);
  int payload = argc > 5 ? atoi(argv[5]) : 22;
  double pps = argc > 6 ? atof(argv[6]) : 0;
  if (port < 1 || port > 65535 || seconds <= 0 || seconds > 600 || payload < 8 || payload > MAX_PAYLOAD || pps < 0)
    return usage();

  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, dst, &addr.sin_addr) != 1) return usage();
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
    perror("udp-flood: socket/connect");
    return 1;
  }
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);

  static unsigned char buffers[BATCH][MAX_PAYLOAD];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  memset(buffers, '.', sizeof buffers);
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    iov[i].iov_base = buffers[i];
    iov[i].iov_len = (size_t)payload;
    msgs[i].msg_hdr.msg_iov = &iov[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
  }

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
      memcpy(buffers[i], &seq, sizeof seq);
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
         (unsigned long long)errors, elapsed, (double)sent / elapsed);
  return 0;
}

static int run_sink(int argc, char **argv) {
  if (argc < 4) return usage();
  int port = atoi(argv[2]);
  double seconds = atof(argv[3]);
  if (port < 1 || port > 65535 || seconds <= 0 || seconds > 3600) return usage();
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
  if (argc >= 2 && strcmp(argv[1], "send") == 0) return run_send(argc, argv);
  if (argc >= 2 && strcmp(argv[1], "sink") == 0) return run_sink(argc, argv);
  return usage();
}

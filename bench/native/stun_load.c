// STUN Binding load generator for `deno task bench`.
//
// Keeps a fixed number of Binding requests in flight against one server over UDP, using
// sendmmsg/recvmmsg, and checks every response: a Binding success response, the magic cookie, a
// transaction ID that is outstanding, and an XOR-MAPPED-ADDRESS equal to this socket's own
// address. Lost (unanswered for 1 s) and invalid responses are counted; an answer that comes
// after its request was counted lost is counted late.
//
// Usage: stun_load HOST PORT INFLIGHT WARMUP_MS DURATION_MS
// Prints "start" on stdout when the measured window opens, then one JSON line with the results.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_INFLIGHT 4096
#define BATCH 64
#define HIST_BUCKETS 200000 /* 1 us buckets up to 200 ms */
#define LOSS_TIMEOUT_NS 1000000000LL /* a request unanswered for 1 s is lost */
#define COOKIE 0x2112A442u

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct {
  uint32_t seq;      /* sequence number of the outstanding request in this slot */
  uint64_t sent_ns;  /* when it was sent */
} slot_t;

static slot_t slots[MAX_INFLIGHT];
static uint32_t hist[HIST_BUCKETS + 1];
static uint8_t reqbuf[MAX_INFLIGHT][20];
static uint8_t rxbuf[BATCH][1500];

static void build_request(int slot, uint32_t seq) {
  uint8_t *p = reqbuf[slot];
  p[0] = 0x00; p[1] = 0x01; /* Binding request */
  p[2] = 0x00; p[3] = 0x00; /* length 0 */
  uint32_t c = htonl(COOKIE);
  memcpy(p + 4, &c, 4);
  /* transaction ID: "bnch" + slot (u32) + seq (u32) */
  memcpy(p + 8, "bnch", 4);
  uint32_t s = htonl((uint32_t)slot), q = htonl(seq);
  memcpy(p + 12, &s, 4);
  memcpy(p + 16, &q, 4);
}

/* Returns the slot index answered, -1 when invalid, -2 when it answers a request already
 * counted lost (a late answer: valid, but neither answered nor invalid). */
static int check_response(const uint8_t *p, ssize_t n, int inflight, const struct sockaddr_in *me) {
  if (n < 20) return -1;
  uint16_t type = (uint16_t)(p[0] << 8 | p[1]);
  uint16_t len = (uint16_t)(p[2] << 8 | p[3]);
  uint32_t cookie;
  memcpy(&cookie, p + 4, 4);
  if (type != 0x0101 || ntohl(cookie) != COOKIE || (ssize_t)len + 20 != n || (len & 3)) return -1;
  if (memcmp(p + 8, "bnch", 4) != 0) return -1;
  uint32_t s, q;
  memcpy(&s, p + 12, 4);
  memcpy(&q, p + 16, 4);
  s = ntohl(s);
  q = ntohl(q);
  if (s >= (uint32_t)inflight) return -1;
  if (slots[s].seq != q || slots[s].sent_ns == 0) return q < slots[s].seq ? -2 : -1;
  /* find XOR-MAPPED-ADDRESS */
  size_t off = 20;
  int ok = 0;
  while (off + 4 <= (size_t)n) {
    uint16_t at = (uint16_t)(p[off] << 8 | p[off + 1]);
    uint16_t al = (uint16_t)(p[off + 2] << 8 | p[off + 3]);
    if (off + 4 + al > (size_t)n) return -1;
    if (at == 0x0020) {
      if (al != 8 || p[off + 5] != 0x01) return -1;
      uint16_t xport = (uint16_t)(p[off + 6] << 8 | p[off + 7]);
      uint32_t xaddr;
      memcpy(&xaddr, p + off + 8, 4);
      uint16_t port = xport ^ (uint16_t)(COOKIE >> 16);
      uint32_t addr = ntohl(xaddr) ^ COOKIE;
      if (port != ntohs(me->sin_port) || addr != ntohl(me->sin_addr.s_addr)) return -1;
      ok = 1;
    }
    off += 4 + (size_t)((al + 3) & ~3);
  }
  return ok ? (int)s : -1;
}

static uint64_t percentile(uint64_t total, double pct) {
  if (total == 0) return 0;
  uint64_t want = (uint64_t)(pct * (double)total);
  if (want >= total) want = total - 1;
  uint64_t acc = 0;
  for (int i = 0; i <= HIST_BUCKETS; i++) {
    acc += hist[i];
    if (acc > want) return (uint64_t)i;
  }
  return HIST_BUCKETS;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s HOST PORT INFLIGHT WARMUP_MS DURATION_MS\n", argv[0]);
    return 2;
  }
  const char *host = argv[1];
  int port = atoi(argv[2]);
  int inflight = atoi(argv[3]);
  long warmup_ms = atol(argv[4]);
  long duration_ms = atol(argv[5]);
  if (inflight < 1 || inflight > MAX_INFLIGHT || port < 1 || port > 65535 || duration_ms < 1) {
    fprintf(stderr, "bad arguments\n");
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) { perror("socket"); return 1; }
  int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
  struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &srv.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
  struct sockaddr_in bindaddr = {.sin_family = AF_INET, .sin_port = 0};
  inet_pton(AF_INET, "127.0.0.1", &bindaddr.sin_addr);
  if (bind(fd, (struct sockaddr *)&bindaddr, sizeof bindaddr) < 0) { perror("bind"); return 1; }
  if (connect(fd, (struct sockaddr *)&srv, sizeof srv) < 0) { perror("connect"); return 1; }
  struct sockaddr_in me;
  socklen_t melen = sizeof me;
  getsockname(fd, (struct sockaddr *)&me, &melen);
  struct timeval tv = {.tv_sec = 0, .tv_usec = 20000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);

  struct mmsghdr rx[BATCH], tx[MAX_INFLIGHT];
  struct iovec rxiov[BATCH], txiov[MAX_INFLIGHT];
  for (int i = 0; i < BATCH; i++) {
    rxiov[i].iov_base = rxbuf[i];
    rxiov[i].iov_len = sizeof rxbuf[i];
    memset(&rx[i], 0, sizeof rx[i]);
    rx[i].msg_hdr.msg_iov = &rxiov[i];
    rx[i].msg_hdr.msg_iovlen = 1;
  }
  int pending[MAX_INFLIGHT];
  int npending = 0;
  uint32_t seq = 1;

  /* measured counters */
  uint64_t sent = 0, answered = 0, lost = 0, invalid = 0, late = 0, hist_total = 0;
  uint64_t t_start = now_ns();
  uint64_t t_measure = t_start + (uint64_t)warmup_ms * 1000000ull;
  uint64_t t_end = t_measure + (uint64_t)duration_ms * 1000000ull;
  int measuring = 0;
  uint64_t last_check = t_start;

  for (int i = 0; i < inflight; i++) pending[npending++] = i;

  for (;;) {
    uint64_t now = now_ns();
    if (!measuring && now >= t_measure) {
      measuring = 1;
      sent = answered = lost = invalid = late = hist_total = 0;
      memset(hist, 0, sizeof hist);
      printf("start\n");
      fflush(stdout);
    }
    if (now >= t_end) break;
    /* send everything pending */
    if (npending > 0) {
      for (int i = 0; i < npending; i++) {
        int s = pending[i];
        slots[s].seq = seq++;
        build_request(s, slots[s].seq);
        txiov[i].iov_base = reqbuf[s];
        txiov[i].iov_len = 20;
        memset(&tx[i], 0, sizeof tx[i]);
        tx[i].msg_hdr.msg_iov = &txiov[i];
        tx[i].msg_hdr.msg_iovlen = 1;
      }
      uint64_t ts = now_ns();
      int off = 0;
      while (off < npending) {
        int r = sendmmsg(fd, tx + off, (unsigned)(npending - off), 0);
        if (r < 0) {
          if (errno == EINTR || errno == EAGAIN || errno == ECONNREFUSED) continue;
          perror("sendmmsg");
          return 1;
        }
        off += r;
      }
      for (int i = 0; i < npending; i++) slots[pending[i]].sent_ns = ts;
      sent += (uint64_t)npending;
      npending = 0;
    }
    int r = recvmmsg(fd, rx, BATCH, MSG_WAITFORONE, NULL);
    uint64_t trecv = now_ns();
    if (r < 0) {
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNREFUSED) {
        perror("recvmmsg");
        return 1;
      }
      r = 0;
    }
    for (int i = 0; i < r; i++) {
      int s = check_response(rxbuf[i], (ssize_t)rx[i].msg_len, inflight, &me);
      if (s == -2) {
        late++;
        continue;
      }
      if (s < 0) {
        invalid++;
        continue;
      }
      uint64_t us = (trecv - slots[s].sent_ns) / 1000u;
      if (us > HIST_BUCKETS) us = HIST_BUCKETS;
      hist[us]++;
      hist_total++;
      answered++;
      slots[s].sent_ns = 0;
      pending[npending++] = s;
    }
    /* time out lost requests every 10 ms (or when nothing arrived) */
    if (r == 0 || trecv - last_check > 10000000ull) {
      uint64_t t = now_ns();
      last_check = t;
      for (int s = 0; s < inflight; s++) {
        if (slots[s].sent_ns != 0 && t - slots[s].sent_ns > (uint64_t)LOSS_TIMEOUT_NS) {
          lost++;
          slots[s].sent_ns = 0;
          pending[npending++] = s;
        }
      }
    }
  }
  double secs = (double)duration_ms / 1000.0;
  /* requests still outstanding at the end are neither lost nor answered */
  printf("{\"sent\":%llu,\"answered\":%llu,\"lost\":%llu,\"invalid\":%llu,\"late\":%llu,"
         "\"seconds\":%.3f,"
         "\"rate\":%.1f,\"p50Us\":%llu,\"p99Us\":%llu,\"maxUs\":%llu}\n",
         (unsigned long long)sent, (unsigned long long)answered, (unsigned long long)lost,
         (unsigned long long)invalid, (unsigned long long)late, secs, (double)answered / secs,
         (unsigned long long)percentile(hist_total, 0.50),
         (unsigned long long)percentile(hist_total, 0.99),
         (unsigned long long)percentile(hist_total, 1.0));
  fflush(stdout);
  close(fd);
  return 0;
}

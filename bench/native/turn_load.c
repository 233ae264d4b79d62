// TURN ChannelData forwarding load generator for `deno task bench`.
//
// One client socket allocates a UDP relay on the server (long-term credentials: the 401
// challenge, then MD5 key and MESSAGE-INTEGRITY), binds channel 0x4000 to a second local
// socket (the peer), then keeps INFLIGHT 100-byte ChannelData messages in flight:
// client -> server -> peer (raw UDP from the relayed address), the peer echoes each payload back
// to the relayed address, server -> client (ChannelData). Each round trip is two forwarded
// packets. Every payload is checked (sequence number, slot, channel). sendmmsg/recvmmsg.
//
// Usage: turn_load HOST PORT USER PASSWORD INFLIGHT WARMUP_MS DURATION_MS
// Prints "start" when the measured window opens, then one JSON line with the results.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_INFLIGHT 4096
#define BATCH 64
#define PAYLOAD 100
#define HIST_BUCKETS 200000
#define LOSS_TIMEOUT_NS 1000000000LL
#define COOKIE 0x2112A442u
#define CHANNEL 0x4000

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

typedef struct { uint32_t seq; uint64_t sent_ns; } slot_t;
static slot_t slots[MAX_INFLIGHT];
static uint32_t hist[HIST_BUCKETS + 1];

/* ---- minimal STUN writer/reader ---- */
typedef struct { uint8_t b[1500]; size_t n; } msg_t;

static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v & 0xff; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

static void msg_start(msg_t *m, uint16_t type) {
  put16(m->b, type);
  put16(m->b + 2, 0);
  uint32_t c = htonl(COOKIE);
  memcpy(m->b + 4, &c, 4);
  for (int i = 8; i < 20; i++) m->b[i] = (uint8_t)rand();
  m->n = 20;
}

static void msg_attr(msg_t *m, uint16_t type, const void *v, uint16_t len) {
  put16(m->b + m->n, type);
  put16(m->b + m->n + 2, len);
  memcpy(m->b + m->n + 4, v, len);
  size_t padded = (size_t)((len + 3) & ~3);
  memset(m->b + m->n + 4 + len, 0, padded - len);
  m->n += 4 + padded;
  put16(m->b + 2, (uint16_t)(m->n - 20));
}

static void msg_xor_addr(msg_t *m, uint16_t type, const struct sockaddr_in *a) {
  uint8_t v[8] = {0, 1};
  put16(v + 2, ntohs(a->sin_port) ^ (COOKIE >> 16));
  uint32_t x = htonl(ntohl(a->sin_addr.s_addr) ^ COOKIE);
  memcpy(v + 4, &x, 4);
  msg_attr(m, type, v, 8);
}

static void msg_integrity(msg_t *m, const uint8_t *key, size_t keylen) {
  put16(m->b + 2, (uint16_t)(m->n - 20 + 24));
  unsigned int len = 20;
  uint8_t mac[20];
  HMAC(EVP_sha1(), key, (int)keylen, m->b, m->n, mac, &len);
  msg_attr(m, 0x0008, mac, 20);
}

/* Finds attribute `type`; returns its value and length, or NULL. */
static const uint8_t *msg_find(const uint8_t *p, size_t n, uint16_t type, uint16_t *len) {
  size_t off = 20;
  while (off + 4 <= n) {
    uint16_t at = get16(p + off), al = get16(p + off + 2);
    if (off + 4 + al > n) return NULL;
    if (at == type) { *len = al; return p + off + 4; }
    off += 4 + (size_t)((al + 3) & ~3);
  }
  return NULL;
}

static int transact(int fd, msg_t *req, uint8_t *resp, size_t cap) {
  for (int attempt = 0; attempt < 10; attempt++) {
    if (send(fd, req->b, req->n, 0) < 0) { perror("send"); return -1; }
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    if (poll(&pfd, 1, 500) <= 0) continue;
    ssize_t n = recv(fd, resp, cap, 0);
    if (n >= 20 && memcmp(resp + 8, req->b + 8, 12) == 0) return (int)n;
  }
  return -1;
}

static int error_code(const uint8_t *p, size_t n) {
  uint16_t len;
  const uint8_t *v = msg_find(p, n, 0x0009, &len);
  return v && len >= 4 ? (v[2] & 7) * 100 + v[3] : 0;
}

static uint64_t percentile(uint64_t total, double pct) {
  if (total == 0) return 0;
  uint64_t want = (uint64_t)(pct * (double)total), acc = 0;
  if (want >= total) want = total - 1;
  for (int i = 0; i <= HIST_BUCKETS; i++) { acc += hist[i]; if (acc > want) return (uint64_t)i; }
  return HIST_BUCKETS;
}

int main(int argc, char **argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: %s HOST PORT USER PASSWORD INFLIGHT WARMUP_MS DURATION_MS\n", argv[0]);
    return 2;
  }
  const char *host = argv[1], *user = argv[3], *password = argv[4];
  int port = atoi(argv[2]), inflight = atoi(argv[5]);
  long warmup_ms = atol(argv[6]), duration_ms = atol(argv[7]);
  if (inflight < 1 || inflight > MAX_INFLIGHT) { fprintf(stderr, "bad inflight\n"); return 2; }
  srand((unsigned)now_ns());
  struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  if (inet_pton(AF_INET, host, &srv.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
  struct sockaddr_in lo = {.sin_family = AF_INET};
  inet_pton(AF_INET, "127.0.0.1", &lo.sin_addr);
  int c = socket(AF_INET, SOCK_DGRAM, 0), p = socket(AF_INET, SOCK_DGRAM, 0);
  int buf = 4 << 20;
  for (int i = 0; i < 2; i++) {
    int fd = i ? p : c;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof buf);
    if (bind(fd, (struct sockaddr *)&lo, sizeof lo) < 0) { perror("bind"); return 1; }
  }
  if (connect(c, (struct sockaddr *)&srv, sizeof srv) < 0) { perror("connect"); return 1; }
  struct sockaddr_in peer;
  socklen_t plen = sizeof peer;
  getsockname(p, (struct sockaddr *)&peer, &plen);

  /* Allocate: challenge, then authenticated. */
  uint8_t resp[1500];
  msg_t m;
  uint8_t transport[4] = {17, 0, 0, 0};
  msg_start(&m, 0x0003);
  msg_attr(&m, 0x0019, transport, 4);
  int n = transact(c, &m, resp, sizeof resp);
  if (n < 0 || error_code(resp, (size_t)n) != 401) { fprintf(stderr, "no 401 challenge\n"); return 1; }
  uint16_t rlen, nlen;
  const uint8_t *realm = msg_find(resp, (size_t)n, 0x0014, &rlen);
  const uint8_t *nonce = msg_find(resp, (size_t)n, 0x0015, &nlen);
  if (!realm || !nonce) { fprintf(stderr, "challenge without REALM/NONCE\n"); return 1; }
  char realm_s[256], nonce_s[256];
  snprintf(realm_s, sizeof realm_s, "%.*s", rlen, realm);
  snprintf(nonce_s, sizeof nonce_s, "%.*s", nlen, nonce);
  char keyin[1024];
  snprintf(keyin, sizeof keyin, "%s:%s:%s", user, realm_s, password);
  uint8_t key[16];
  unsigned int klen = 16;
  EVP_Digest(keyin, strlen(keyin), key, &klen, EVP_md5(), NULL);

#define AUTH(mm) do { \
    msg_attr(mm, 0x0006, user, (uint16_t)strlen(user)); \
    msg_attr(mm, 0x0014, realm_s, (uint16_t)strlen(realm_s)); \
    msg_attr(mm, 0x0015, nonce_s, (uint16_t)strlen(nonce_s)); \
    msg_integrity(mm, key, sizeof key); \
  } while (0)

  msg_start(&m, 0x0003);
  msg_attr(&m, 0x0019, transport, 4);
  AUTH(&m);
  n = transact(c, &m, resp, sizeof resp);
  if (n < 0 || get16(resp) != 0x0103) {
    fprintf(stderr, "Allocate failed (%d)\n", n < 0 ? -1 : error_code(resp, (size_t)n));
    return 1;
  }
  uint16_t xlen;
  const uint8_t *x = msg_find(resp, (size_t)n, 0x0016, &xlen);
  if (!x || xlen != 8) { fprintf(stderr, "no XOR-RELAYED-ADDRESS\n"); return 1; }
  struct sockaddr_in relay = {.sin_family = AF_INET};
  relay.sin_port = htons(get16(x + 2) ^ (COOKIE >> 16));
  uint32_t ra;
  memcpy(&ra, x + 4, 4);
  relay.sin_addr.s_addr = htonl(ntohl(ra) ^ COOKIE);

  msg_start(&m, 0x0009);
  uint8_t ch[4] = {CHANNEL >> 8, CHANNEL & 0xff, 0, 0};
  msg_attr(&m, 0x000c, ch, 4);
  msg_xor_addr(&m, 0x0012, &peer);
  AUTH(&m);
  n = transact(c, &m, resp, sizeof resp);
  if (n < 0 || get16(resp) != 0x0109) {
    fprintf(stderr, "ChannelBind failed (%d)\n", n < 0 ? -1 : error_code(resp, (size_t)n));
    return 1;
  }
  if (connect(p, (struct sockaddr *)&relay, sizeof relay) < 0) { perror("connect peer"); return 1; }

  /* Load. Frame: channel(2) length(2) payload: slot(4) seq(4) filler. */
  static uint8_t tx[MAX_INFLIGHT][4 + PAYLOAD];
  static uint8_t crx[BATCH][2048], prx[BATCH][2048];
  struct mmsghdr cmsgs[BATCH], pmsgs[BATCH], out[BATCH];
  struct iovec civ[BATCH], piv[BATCH], oiv[BATCH];
  for (int i = 0; i < BATCH; i++) {
    civ[i].iov_base = crx[i]; civ[i].iov_len = sizeof crx[i];
    piv[i].iov_base = prx[i]; piv[i].iov_len = sizeof prx[i];
    memset(&cmsgs[i], 0, sizeof cmsgs[i]); cmsgs[i].msg_hdr.msg_iov = &civ[i]; cmsgs[i].msg_hdr.msg_iovlen = 1;
    memset(&pmsgs[i], 0, sizeof pmsgs[i]); pmsgs[i].msg_hdr.msg_iov = &piv[i]; pmsgs[i].msg_hdr.msg_iovlen = 1;
    memset(&out[i], 0, sizeof out[i]); out[i].msg_hdr.msg_iov = &oiv[i]; out[i].msg_hdr.msg_iovlen = 1;
  }
  uint32_t next_seq = 1;
  uint64_t sent = 0, answered = 0, lost = 0, invalid = 0, late = 0;
  uint64_t start = now_ns(), window_start = start + (uint64_t)warmup_ms * 1000000ull;
  uint64_t end = window_start + (uint64_t)duration_ms * 1000000ull;
  int measuring = 0;
  int pending_count = 0;
  int pending[MAX_INFLIGHT];
  for (int s = 0; s < inflight; s++) pending[pending_count++] = s;
  for (;;) {
    uint64_t now = now_ns();
    if (!measuring && now >= window_start) {
      measuring = 1;
      sent = answered = lost = invalid = late = 0;
      memset(hist, 0, sizeof hist);
      printf("start\n");
      fflush(stdout);
    }
    if (now >= end) break;
    /* Send every free slot. */
    int k = 0;
    while (pending_count > 0 && k < BATCH) {
      int s = pending[--pending_count];
      uint8_t *f = tx[s];
      put16(f, CHANNEL);
      put16(f + 2, PAYLOAD);
      uint32_t sl = htonl((uint32_t)s), sq = htonl(next_seq);
      memcpy(f + 4, &sl, 4);
      memcpy(f + 8, &sq, 4);
      slots[s].seq = next_seq++;
      slots[s].sent_ns = now;
      oiv[k].iov_base = f; oiv[k].iov_len = 4 + PAYLOAD;
      k++;
    }
    if (k > 0) {
      int done = sendmmsg(c, out, (unsigned)k, 0);
      if (done > 0) sent += (uint64_t)done;
      for (int i = (done < 0 ? 0 : done); i < k; i++) {
        /* not sent: retry next turn */
        uint32_t sl;
        memcpy(&sl, (uint8_t *)oiv[i].iov_base + 4, 4);
        pending[pending_count++] = (int)ntohl(sl);
      }
    }
    struct pollfd pfds[2] = {{.fd = c, .events = POLLIN}, {.fd = p, .events = POLLIN}};
    poll(pfds, 2, 20);
    /* Peer: echo every payload back to the relayed address. */
    int got = recvmmsg(p, pmsgs, BATCH, MSG_DONTWAIT, NULL);
    if (got > 0) {
      for (int i = 0; i < got; i++) {
        oiv[i].iov_base = prx[i];
        oiv[i].iov_len = pmsgs[i].msg_len;
      }
      int off = 0;
      while (off < got) {
        int d = sendmmsg(p, out + off, (unsigned)(got - off), 0);
        if (d <= 0) break;
        off += d;
      }
    }
    /* Client: ChannelData back. */
    got = recvmmsg(c, cmsgs, BATCH, MSG_DONTWAIT, NULL);
    now = now_ns();
    for (int i = 0; i < got; i++) {
      const uint8_t *f = crx[i];
      unsigned len = cmsgs[i].msg_len;
      if (len < 4 + 8 || get16(f) != CHANNEL || get16(f + 2) != PAYLOAD || len < 4u + PAYLOAD) {
        invalid++;
        continue;
      }
      uint32_t sl, sq;
      memcpy(&sl, f + 4, 4);
      memcpy(&sq, f + 8, 4);
      sl = ntohl(sl);
      sq = ntohl(sq);
      if (sl >= (uint32_t)inflight) { invalid++; continue; }
      if (slots[sl].seq != sq || slots[sl].sent_ns == 0) {
        if (sq < slots[sl].seq) late++; else invalid++;
        continue;
      }
      uint64_t us = (now - slots[sl].sent_ns) / 1000;
      hist[us > HIST_BUCKETS ? HIST_BUCKETS : us]++;
      answered++;
      slots[sl].sent_ns = 0;
      pending[pending_count++] = (int)sl;
    }
    /* Requests unanswered for 1 s are lost; their slots are reused. */
    for (int s = 0; s < inflight; s++) {
      if (slots[s].sent_ns != 0 && now - slots[s].sent_ns > LOSS_TIMEOUT_NS) {
        slots[s].sent_ns = 0;
        lost++;
        pending[pending_count++] = s;
      }
    }
  }
  double seconds = (double)duration_ms / 1000.0;
  printf("{\"sent\":%llu,\"answered\":%llu,\"lost\":%llu,\"invalid\":%llu,\"late\":%llu,"
         "\"seconds\":%.3f,\"rate\":%.1f,\"p50Us\":%llu,\"p99Us\":%llu,\"maxUs\":%llu}\n",
         (unsigned long long)sent, (unsigned long long)answered, (unsigned long long)lost,
         (unsigned long long)invalid, (unsigned long long)late, seconds,
         (double)answered / seconds, (unsigned long long)percentile(answered, 0.5),
         (unsigned long long)percentile(answered, 0.99),
         (unsigned long long)percentile(answered, 1.0));
  return 0;
}

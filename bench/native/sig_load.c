// Signaling and relay load generator for `deno task bench` (single thread, epoll).
//
// Usage:
//   sig_load MODE HOST PORT TEST ARGS...
// MODE:
//   ours    register each connection with our server (docs/protocol.md: hello, challenge, register
//           signed with Ed25519 through libcrypto), then broker pairs with `connect`
//   crelay  the native reference relay: each connection first sends its raw 20-byte ID and
//           waits for the relay to echo it
//   direct  no relay: the pairs connect straight to each other over TCP loopback (HOST PORT unused)
// TEST:
//   bulk WARMUP_MS DURATION_MS PAYLOAD        one pair; A streams relay frames to B
//   pingpong WARMUP_MS DURATION_MS PAIRS SIZE each pair bounces one SIZE-byte message A<->B
//   capacity COUNT                            (ours only) after a line on stdin, COUNT connections
//                                             register at once, then stay idle answering pings
//                                             until stdin closes
// Every relay frame is [u32 length][0x02][20-byte peer ID][payload]. Prints JSON lines: "ready"
// when set up, "start" when measuring, then the result.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { MODE_OURS, MODE_CRELAY, MODE_DIRECT };
enum { ST_CONNECTING, ST_HELLO, ST_REGISTERED, ST_FAILED };
enum { TEST_BULK, TEST_PINGPONG, TEST_CAPACITY };

#define MAX_FRAME 65536

typedef struct {
  int fd;
  int state;
  int peer; /* index of the other end of the pair, -1 if none */
  int introduced;
  EVP_PKEY *key;
  uint8_t pub[32];
  uint8_t id[20];
  char idhex[41];
  uint8_t *rbuf;
  size_t rcap, rlen;
  uint8_t *wbuf;
  size_t wcap, wlen, woff;
  int want_out;
  /* bulk sender state */
  int bulk_sender;
  size_t bulk_off;
  uint64_t frames_in, bytes_in;
  char error[64];
} conn_t;

static int g_mode, g_test, g_ep;
static conn_t *conns;
static int nconns;
static uint8_t *bulk_buf;
static size_t bulk_len;
/* Bulk flow control: the sender keeps at most BULK_WINDOW bytes between what it has written and
 * what the receiver (in this same process) has read, as a windowed client would; so a relay that
 * refuses frames over its receiver queue (ours: --relay-queue) sees no more than that. */
#define BULK_WINDOW (4u << 20)
static uint64_t bulk_sent;
static int bulk_blocked;
static uint64_t quota_errors, other_errors, bad_frames;
static char last_error[128];

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
  fprintf(stderr, "sig_load: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void hex20(const uint8_t *id, char *out) {
  static const char *d = "0123456789abcdef";
  for (int i = 0; i < 20; i++) {
    out[2 * i] = d[id[i] >> 4];
    out[2 * i + 1] = d[id[i] & 15];
  }
  out[40] = 0;
}

static int registered_count, failed_count, introduced_count, dropped_after_register;

/* Marks a connection failed once: before registration it counts as a failed registration. */
static void fail(conn_t *c, const char *why) {
  if (c->state == ST_FAILED) return;
  if (c->state == ST_REGISTERED) dropped_after_register++;
  else failed_count++;
  c->state = ST_FAILED;
  snprintf(c->error, sizeof c->error, "%s", why);
  if (c->fd > 0) epoll_ctl(g_ep, EPOLL_CTL_DEL, c->fd, NULL);
}

static void set_events(conn_t *c) {
  struct epoll_event ev = {.events = EPOLLIN | (c->want_out ? EPOLLOUT : 0), .data.u32 = (uint32_t)(c - conns)};
  epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void wreserve(conn_t *c, size_t more) {
  if (c->woff > 0 && c->woff == c->wlen) c->woff = c->wlen = 0;
  if (c->wlen + more <= c->wcap) return;
  if (c->woff > 0) {
    memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
    c->wlen -= c->woff;
    c->woff = 0;
    if (c->wlen + more <= c->wcap) return;
  }
  size_t cap = c->wcap ? c->wcap : 4096;
  while (cap < c->wlen + more) cap *= 2;
  c->wbuf = realloc(c->wbuf, cap);
  if (!c->wbuf) die("realloc");
  c->wcap = cap;
}

static void flush(conn_t *c) {
  while (c->woff < c->wlen) {
    ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      char why[64];
      snprintf(why, sizeof why, "write: %s", strerror(errno));
      fail(c, why);
      return;
    }
    c->woff += (size_t)n;
  }
  int want = c->woff < c->wlen || (c->bulk_sender && !bulk_blocked);
  if (want != c->want_out) {
    c->want_out = want;
    set_events(c);
  }
}

static void send_control(conn_t *c, const char *json) {
  size_t len = strlen(json);
  wreserve(c, len + 5);
  uint32_t l = htonl((uint32_t)(len + 1));
  memcpy(c->wbuf + c->wlen, &l, 4);
  c->wbuf[c->wlen + 4] = 0x01;
  memcpy(c->wbuf + c->wlen + 5, json, len);
  c->wlen += len + 5;
  flush(c);
}

static void send_relay(conn_t *c, const uint8_t *dest, size_t payload) {
  wreserve(c, payload + 25);
  uint32_t l = htonl((uint32_t)(payload + 21));
  uint8_t *p = c->wbuf + c->wlen;
  memcpy(p, &l, 4);
  p[4] = 0x02;
  memcpy(p + 5, dest, 20);
  memset(p + 25, 0x5a, payload);
  c->wlen += payload + 25;
  flush(c);
}

/* Copies the string value of "key" from a JSON object into out; returns 0 when absent. */
static int json_str(const char *json, size_t len, const char *key, char *out, size_t outcap) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":\"", key);
  const char *p = memmem(json, len, pat, strlen(pat));
  if (!p) return 0;
  p += strlen(pat);
  const char *end = memchr(p, '"', len - (size_t)(p - json));
  if (!end || (size_t)(end - p) >= outcap) return 0;
  memcpy(out, p, (size_t)(end - p));
  out[end - p] = 0;
  return 1;
}

/* Copies the raw (number) value of "key" into out; returns 0 when absent. */
static int json_raw(const char *json, size_t len, const char *key, char *out, size_t outcap) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = memmem(json, len, pat, strlen(pat));
  if (!p) return 0;
  p += strlen(pat);
  size_t n = 0;
  while ((size_t)(p - json) + n < len && p[n] != ',' && p[n] != '}' && n + 1 < outcap) n++;
  memcpy(out, p, n);
  out[n] = 0;
  return 1;
}

static void do_sign_register(conn_t *c, const char *nonce_b64) {
  uint8_t nonce[48];
  int n = EVP_DecodeBlock(nonce, (const uint8_t *)nonce_b64, (int)strlen(nonce_b64));
  if (n < 32) {
    fail(c, "bad nonce");
    return;
  }
  uint8_t msg[15 + 32];
  memcpy(msg, "p2p-register/v1", 15);
  memcpy(msg + 15, nonce, 32);
  uint8_t sig[64];
  size_t siglen = sizeof sig;
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  if (EVP_DigestSignInit(ctx, NULL, NULL, NULL, c->key) != 1 ||
      EVP_DigestSign(ctx, sig, &siglen, msg, sizeof msg) != 1) {
    fprintf(stderr, "sig_load: signing failed\n");
    exit(1);
  }
  EVP_MD_CTX_free(ctx);
  char sig64[100];
  EVP_EncodeBlock((uint8_t *)sig64, sig, 64);
  char json[256];
  snprintf(json, sizeof json, "{\"type\":\"register\",\"signature\":\"%s\",\"localAddresses\":[]}", sig64);
  send_control(c, json);
}

static uint64_t ping_messages;
static int measuring;
static uint64_t pp_count; /* relayed ping-pong messages received while measuring */
static size_t pp_size;

static void on_control(conn_t *c, const char *json, size_t len) {
  char type[32], val[128];
  if (!json_str(json, len, "type", type, sizeof type)) return;
  if (strcmp(type, "challenge") == 0) {
    if (json_str(json, len, "nonce", val, sizeof val)) do_sign_register(c, val);
  } else if (strcmp(type, "registered") == 0) {
    if (json_str(json, len, "id", val, sizeof val) && strcmp(val, c->idhex) != 0) {
      fail(c, "server issued another id");
      return;
    }
    c->state = ST_REGISTERED;
    registered_count++;
  } else if (strcmp(type, "introduce") == 0) {
    if (!c->introduced) introduced_count++;
    c->introduced = 1;
  } else if (strcmp(type, "ping") == 0) {
    if (json_raw(json, len, "t", val, sizeof val)) {
      char out[160];
      snprintf(out, sizeof out, "{\"type\":\"pong\",\"t\":%s}", val);
      send_control(c, out);
      ping_messages++;
    }
  } else if (strcmp(type, "error") == 0) {
    char code[48] = "";
    json_str(json, len, "code", code, sizeof code);
    if (strncmp(code, "relay-", 6) == 0) quota_errors++;
    else other_errors++;
    snprintf(last_error, sizeof last_error, "%.*s", (int)(len < 120 ? len : 120), json);
    if (c->state != ST_REGISTERED) fail(c, code);
  } else if (strcmp(type, "bye") == 0) {
    snprintf(last_error, sizeof last_error, "%.*s", (int)(len < 120 ? len : 120), json);
  }
}

static uint64_t bulk_in_flight(void) {
  return bulk_sent - (conns[1].bytes_in + 25 * conns[1].frames_in);
}

static void on_relay(conn_t *c, const uint8_t *body, size_t len) {
  (void)body;
  c->frames_in++;
  c->bytes_in += len - 20;
  if (bulk_blocked && bulk_in_flight() < BULK_WINDOW / 2) {
    bulk_blocked = 0;
    conns[0].want_out = 1;
    set_events(&conns[0]);
  }
  if (g_test == TEST_PINGPONG) {
    if (measuring) pp_count++;
    conn_t *p = &conns[c->peer];
    send_relay(c, p->id, pp_size);
  }
}

static void on_readable(conn_t *c) {
  for (int rounds = 0; rounds < 16; rounds++) {
    if (c->rlen == c->rcap) {
      fail(c, "read buffer full");
      return;
    }
    ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen);
    if (n == 0) {
      fail(c, "closed by peer");
      return;
    }
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) return;
      char why[64];
      snprintf(why, sizeof why, "read: %s", strerror(errno));
      fail(c, why);
      return;
    }
    c->rlen += (size_t)n;
    size_t off = 0;
    if (g_mode == MODE_CRELAY && c->state == ST_HELLO) {
      if (c->rlen < 20) continue;
      if (memcmp(c->rbuf, c->id, 20) != 0) {
        fail(c, "relay acknowledged another id");
        return;
      }
      c->state = ST_REGISTERED;
      registered_count++;
      off = 20;
    }
    while (c->rlen - off >= 5) {
      uint32_t l;
      memcpy(&l, c->rbuf + off, 4);
      l = ntohl(l);
      if (l < 1 || l > MAX_FRAME) {
        bad_frames++;
        fail(c, "bad frame length");
        return;
      }
      if (c->rlen - off < 4 + (size_t)l) break;
      uint8_t kind = c->rbuf[off + 4];
      const uint8_t *body = c->rbuf + off + 5;
      if (kind == 0x01) on_control(c, (const char *)body, l - 1);
      else if (kind == 0x02 && l >= 21) on_relay(c, body, l - 1);
      else bad_frames++;
      off += 4 + (size_t)l;
    }
    if (off > 0) {
      memmove(c->rbuf, c->rbuf + off, c->rlen - off);
      c->rlen -= off;
    }
    if ((size_t)n < 4096) return;
  }
}

static void on_writable(conn_t *c) {
  flush(c);
  if (c->bulk_sender && c->woff == c->wlen && c->state != ST_FAILED) {
    for (int rounds = 0; rounds < 64; rounds++) {
      uint64_t room = BULK_WINDOW - bulk_in_flight();
      if (bulk_in_flight() >= BULK_WINDOW) {
        bulk_blocked = 1;
        c->want_out = 0;
        set_events(c);
        return;
      }
      size_t chunk = bulk_len - c->bulk_off;
      if (chunk > room) chunk = (size_t)room;
      ssize_t n = write(c->fd, bulk_buf + c->bulk_off, chunk);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        char why[64];
        snprintf(why, sizeof why, "write: %s", strerror(errno));
        fail(c, why);
        return;
      }
      c->bulk_off += (size_t)n;
      bulk_sent += (uint64_t)n;
      if (c->bulk_off == bulk_len) c->bulk_off = 0;
    }
  }
}

static void add_conn(conn_t *c) {
  struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)(c - conns)};
  c->want_out = 1;
  if (epoll_ctl(g_ep, EPOLL_CTL_ADD, c->fd, &ev) < 0) die("epoll_ctl");
}

static int tcp_socket(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

static void make_identity(conn_t *c, int index) {
  if (g_mode == MODE_OURS) {
    c->key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!c->key) { fprintf(stderr, "sig_load: keygen failed\n"); exit(1); }
    size_t pl = 32;
    EVP_PKEY_get_raw_public_key(c->key, c->pub, &pl);
    uint8_t in[14 + 32], digest[32];
    memcpy(in, "p2p-peer-id/v1", 14);
    memcpy(in + 14, c->pub, 32);
    unsigned dl = 32;
    EVP_Digest(in, sizeof in, digest, &dl, EVP_sha256(), NULL);
    memcpy(c->id, digest, 20);
  } else {
    memset(c->id, 0, 20);
    memcpy(c->id, "benchpeer", 9);
    uint32_t pid = (uint32_t)getpid();
    memcpy(c->id + 10, &pid, 4);
    c->id[16] = (uint8_t)(index >> 24);
    c->id[17] = (uint8_t)(index >> 16);
    c->id[18] = (uint8_t)(index >> 8);
    c->id[19] = (uint8_t)index;
  }
  hex20(c->id, c->idhex);
}

static void start_connect(conn_t *c, struct sockaddr_in *srv) {
  c->fd = tcp_socket();
  if (connect(c->fd, (struct sockaddr *)srv, sizeof *srv) < 0 && errno != EINPROGRESS) {
    char why[64];
    snprintf(why, sizeof why, "connect: %s", strerror(errno));
    fail(c, why);
    return;
  }
  c->state = ST_HELLO;
  add_conn(c);
  if (g_mode == MODE_OURS) {
    char pub64[64], json[160];
    EVP_EncodeBlock((uint8_t *)pub64, c->pub, 32);
    snprintf(json, sizeof json, "{\"type\":\"hello\",\"version\":1,\"publicKey\":\"%s\"}", pub64);
    send_control(c, json);
  } else {
    wreserve(c, 20);
    memcpy(c->wbuf + c->wlen, c->id, 20);
    c->wlen += 20;
    flush(c);
  }
}

static void poll_once(int timeout_ms) {
  struct epoll_event evs[256];
  int n = epoll_wait(g_ep, evs, 256, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return;
    die("epoll_wait");
  }
  for (int i = 0; i < n; i++) {
    conn_t *c = &conns[evs[i].data.u32];
    if (c->state == ST_FAILED) continue;
    if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
      int err = 0;
      socklen_t el = sizeof err;
      getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
      if (err != 0 || (evs[i].events & EPOLLHUP)) {
        char why[64];
        snprintf(why, sizeof why, "socket: %s", strerror(err ? err : ECONNRESET));
        fail(c, why);
        continue;
      }
    }
    if (evs[i].events & EPOLLIN) on_readable(c);
    if (c->state != ST_FAILED && (evs[i].events & EPOLLOUT)) on_writable(c);
  }
}

static int stdin_closed(void) {
  struct pollfd p = {.fd = 0, .events = POLLIN};
  if (poll(&p, 1, 0) <= 0) return 0;
  char buf[256];
  ssize_t n = read(0, buf, sizeof buf);
  return n <= 0;
}

static void fail_exit(const char *what) {
  int shown = 0;
  for (int i = 0; i < nconns && shown < 3; i++) {
    if (conns[i].state == ST_FAILED) {
      fprintf(stderr, "sig_load: connection %d: %s\n", i, conns[i].error);
      shown++;
    }
  }
  fprintf(stderr, "sig_load: %s (registered %d, failed %d, introduced %d) %s\n", what,
          registered_count, failed_count, introduced_count, last_error);
  exit(1);
}

/* Runs the loop until cond() or the deadline; exits with an error on timeout. */
static void run_until(int (*cond)(void), uint64_t deadline_ns, const char *what) {
  while (!cond()) {
    if (now_ns() > deadline_ns) fail_exit(what);
    poll_once(50);
  }
}

static int want_registered;
static int all_registered(void) { return registered_count + failed_count >= want_registered; }
static int want_introduced;
static int all_introduced(void) { return introduced_count >= want_introduced; }

static void setup_pairs(int pairs, struct sockaddr_in *srv) {
  nconns = pairs * 2;
  conns = calloc((size_t)nconns, sizeof *conns);
  for (int i = 0; i < nconns; i++) {
    conn_t *c = &conns[i];
    c->rcap = 2 * MAX_FRAME + 16;
    c->rbuf = malloc(c->rcap);
    c->peer = i ^ 1;
    make_identity(c, i);
  }
  if (g_mode == MODE_DIRECT) {
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in la = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &la.sin_addr);
    if (bind(lfd, (struct sockaddr *)&la, sizeof la) < 0 || listen(lfd, 1024) < 0) die("listen");
    socklen_t ll = sizeof la;
    getsockname(lfd, (struct sockaddr *)&la, &ll);
    for (int p = 0; p < pairs; p++) {
      int a = socket(AF_INET, SOCK_STREAM, 0);
      if (connect(a, (struct sockaddr *)&la, sizeof la) < 0) die("connect");
      int b = accept(lfd, NULL, NULL);
      if (b < 0) die("accept");
      int fds[2] = {a, b};
      for (int k = 0; k < 2; k++) {
        int one = 1;
        setsockopt(fds[k], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fds[k], F_SETFL, fcntl(fds[k], F_GETFL) | O_NONBLOCK);
        conn_t *c = &conns[2 * p + k];
        c->fd = fds[k];
        c->state = ST_REGISTERED;
        c->introduced = 1;
        add_conn(c);
      }
    }
    close(lfd);
    return;
  }
  want_registered = nconns;
  for (int i = 0; i < nconns; i++) start_connect(&conns[i], srv);
  run_until(all_registered, now_ns() + 30000000000ull, "registration timed out");
  if (failed_count > 0) fail_exit("registration failed");
  if (g_mode == MODE_OURS) {
    want_introduced = nconns;
    for (int p = 0; p < pairs; p++) {
      char json[128];
      snprintf(json, sizeof json, "{\"type\":\"connect\",\"peer\":\"%s\"}", conns[2 * p + 1].idhex);
      send_control(&conns[2 * p], json);
    }
    run_until(all_introduced, now_ns() + 30000000000ull, "introduce timed out");
  }
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: sig_load ours|crelay|direct HOST PORT bulk|pingpong|capacity ARGS...\n");
    return 2;
  }
  g_mode = strcmp(argv[1], "ours") == 0 ? MODE_OURS : strcmp(argv[1], "crelay") == 0 ? MODE_CRELAY
         : strcmp(argv[1], "direct") == 0 ? MODE_DIRECT : -1;
  g_test = strcmp(argv[4], "bulk") == 0 ? TEST_BULK : strcmp(argv[4], "pingpong") == 0 ? TEST_PINGPONG
         : strcmp(argv[4], "capacity") == 0 ? TEST_CAPACITY : -1;
  if (g_mode < 0 || g_test < 0) { fprintf(stderr, "sig_load: bad mode or test\n"); return 2; }
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  getrlimit(RLIMIT_NOFILE, &rl);
  rl.rlim_cur = rl.rlim_max;
  setrlimit(RLIMIT_NOFILE, &rl);
  struct sockaddr_in srv = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[3]))};
  if (inet_pton(AF_INET, argv[2], &srv.sin_addr) != 1) { fprintf(stderr, "sig_load: bad host\n"); return 2; }
  g_ep = epoll_create1(0);
  if (g_ep < 0) die("epoll_create1");

  if (g_test == TEST_CAPACITY) {
    if ((argc != 6 && argc != 7) || g_mode != MODE_OURS) { fprintf(stderr, "usage: sig_load ours HOST PORT capacity COUNT [IN_FLIGHT]\n"); return 2; }
    /* IN_FLIGHT: at most this many connections opened and not yet registered or failed at once
       (default: all at once). A burst of 16,667 SYNs overflows the listen backlog (Deno's is
       511) and the kernel resets what the server has not accepted in time. */
    int in_flight = argc == 7 ? atoi(argv[6]) : 0;
    nconns = atoi(argv[5]);
    if (nconns < 1 || nconns > 100000) { fprintf(stderr, "sig_load: bad count\n"); return 2; }
    conns = calloc((size_t)nconns, sizeof *conns);
    for (int i = 0; i < nconns; i++) {
      conns[i].rcap = 4096;
      conns[i].rbuf = malloc(conns[i].rcap);
      conns[i].peer = -1;
      make_identity(&conns[i], i);
    }
    printf("{\"event\":\"ready\"}\n");
    fflush(stdout);
    /* the burst starts when a line (or EOF) arrives on stdin, so the caller can read a baseline */
    char go[64];
    if (fgets(go, sizeof go, stdin) == NULL) return 0;
    uint64_t t0 = now_ns();
    want_registered = nconns;
    int next = 0;
    if (in_flight <= 0) in_flight = nconns;
    while (next < nconns && next - (registered_count + failed_count) < in_flight) start_connect(&conns[next++], &srv);
    uint64_t deadline = t0 + 120000000000ull;
    while (!all_registered() && now_ns() < deadline) {
      poll_once(50);
      while (next < nconns && next - (registered_count + failed_count) < in_flight) start_connect(&conns[next++], &srv);
    }
    uint64_t t1 = now_ns();
    int open_now = 0;
    for (int i = 0; i < nconns; i++) open_now += conns[i].state == ST_REGISTERED;
    const char *first = "";
    for (int i = 0; i < nconns; i++) if (conns[i].state == ST_FAILED) { first = conns[i].error; break; }
    printf("{\"event\":\"result\",\"count\":%d,\"registered\":%d,\"failed\":%d,\"pending\":%d,"
           "\"dropped\":%d,\"seconds\":%.3f,\"firstError\":\"%s\"}\n",
           nconns, registered_count, failed_count, nconns - registered_count - failed_count,
           dropped_after_register, (double)(t1 - t0) / 1e9, first);
    fflush(stdout);
    /* idle: answer pings until stdin closes (bounded to 10 minutes) */
    uint64_t idle_end = now_ns() + 600000000000ull;
    while (!stdin_closed() && now_ns() < idle_end) poll_once(100);
    int still = 0;
    for (int i = 0; i < nconns; i++) still += conns[i].state == ST_REGISTERED;
    fprintf(stderr, "sig_load: %d of %d still registered at exit, %llu pings answered\n", still,
            open_now, (unsigned long long)ping_messages);
    return 0;
  }

  if (argc < 8) { fprintf(stderr, "sig_load: missing test arguments\n"); return 2; }
  long warmup_ms = atol(argv[5]);
  long duration_ms = atol(argv[6]);
  int pairs = 1;
  size_t payload;
  if (g_test == TEST_BULK) {
    payload = (size_t)atol(argv[7]);
  } else {
    if (argc < 9) { fprintf(stderr, "sig_load: pingpong needs PAIRS SIZE\n"); return 2; }
    pairs = atoi(argv[7]);
    payload = (size_t)atol(argv[8]);
  }
  if (payload < 1 || payload > MAX_FRAME - 21 || pairs < 1 || pairs > 1000 || duration_ms < 1) {
    fprintf(stderr, "sig_load: bad arguments\n");
    return 2;
  }
  setup_pairs(pairs, &srv);
  printf("{\"event\":\"ready\"}\n");
  fflush(stdout);

  if (g_test == TEST_BULK) {
    /* 8 identical frames back to back, written round and round */
    size_t fl = payload + 25;
    bulk_len = fl * 8;
    bulk_buf = malloc(bulk_len);
    for (int k = 0; k < 8; k++) {
      uint8_t *p = bulk_buf + fl * (size_t)k;
      uint32_t l = htonl((uint32_t)(payload + 21));
      memcpy(p, &l, 4);
      p[4] = 0x02;
      memcpy(p + 5, conns[1].id, 20);
      memset(p + 25, 0x5a, payload);
    }
    conns[0].bulk_sender = 1;
    conns[0].want_out = 0;
    flush(&conns[0]);
  } else {
    pp_size = payload;
    for (int p = 0; p < pairs; p++) send_relay(&conns[2 * p], conns[2 * p + 1].id, payload);
  }
  uint64_t t_measure = now_ns() + (uint64_t)warmup_ms * 1000000ull;
  uint64_t t_end = t_measure + (uint64_t)duration_ms * 1000000ull;
  uint64_t bytes0 = 0;
  while (!measuring) {
    poll_once(10);
    if (now_ns() >= t_measure) {
      measuring = 1;
      bytes0 = conns[1].bytes_in;
      printf("{\"event\":\"start\"}\n");
      fflush(stdout);
    }
  }
  uint64_t t_start = now_ns();
  while (now_ns() < t_end) {
    poll_once(10);
    for (int i = 0; i < nconns; i++) {
      if (conns[i].state == ST_FAILED) fail_exit(conns[i].error);
    }
  }
  double secs = (double)(now_ns() - t_start) / 1e9;
  if (g_test == TEST_BULK) {
    uint64_t bytes = conns[1].bytes_in - bytes0;
    printf("{\"event\":\"result\",\"bytes\":%llu,\"seconds\":%.3f,\"mbPerSecond\":%.1f,"
           "\"relayErrors\":%llu,\"otherErrors\":%llu,\"badFrames\":%llu}\n",
           (unsigned long long)bytes, secs, (double)bytes / secs / 1e6,
           (unsigned long long)quota_errors, (unsigned long long)other_errors,
           (unsigned long long)bad_frames);
  } else {
    printf("{\"event\":\"result\",\"messages\":%llu,\"seconds\":%.3f,\"messagesPerSecond\":%.1f,"
           "\"relayErrors\":%llu,\"otherErrors\":%llu,\"badFrames\":%llu}\n",
           (unsigned long long)pp_count, secs, (double)pp_count / secs,
           (unsigned long long)quota_errors, (unsigned long long)other_errors,
           (unsigned long long)bad_frames);
  }
  fflush(stdout);
  return 0;
}

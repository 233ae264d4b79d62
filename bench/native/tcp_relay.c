// Minimal native epoll relay for `deno task bench`: what a native relay does on this machine.
//
// Each client connects and first sends its raw 20-byte ID, which the relay echoes back. Then it sends frames
// [u32 length][kind][body]; a relay frame (kind 0x02) carries the 20-byte destination ID and a
// payload. The relay forwards each relay frame to the destination with the ID replaced by the
// source's ID, as our server does. Output is buffered per connection; when a destination's buffer
// passes 1 MiB, its sources stop being read until it drains (backpressure). Single thread.
//
// Usage: tcp_relay HOST PORT   (prints "ready PORT"; PORT 0 picks a free port). Runs until killed.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONNS 4096
#define MAX_FRAME 65536
#define RBUF (2 * MAX_FRAME + 64)
#define HIGH_WATER (1 << 20)

typedef struct {
  int fd;
  int open;
  int has_id;
  uint8_t id[20];
  uint8_t rbuf[RBUF];
  size_t rlen;
  uint8_t *wbuf;
  size_t wcap, wlen, woff;
  int paused;      /* not reading because blocked_on's buffer is full */
  int blocked_on;  /* destination index while paused */
  int want_out;
  int last_dest;   /* cache of the last destination looked up */
} conn_t;

static conn_t *conns[MAX_CONNS];
static int nslots; /* one past the highest slot ever used */
static int ep;

static void set_events(int i) {
  conn_t *c = conns[i];
  uint32_t ev = (c->paused ? 0 : EPOLLIN) | (c->want_out ? EPOLLOUT : 0);
  struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)i};
  epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void close_conn(int i) {
  conn_t *c = conns[i];
  if (!c) return;
  epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
  close(c->fd);
  free(c->wbuf);
  free(c);
  conns[i] = NULL;
  for (int k = 0; k < nslots; k++) {
    if (conns[k] && conns[k]->paused && conns[k]->blocked_on == i) {
      conns[k]->paused = 0;
      set_events(k);
    }
  }
}

static int find(conn_t *src, const uint8_t *id) {
  int last = src->last_dest;
  if (last >= 0 && conns[last] && memcmp(conns[last]->id, id, 20) == 0) return last;
  for (int i = 0; i < nslots; i++) {
    if (conns[i] && conns[i]->has_id && memcmp(conns[i]->id, id, 20) == 0) {
      src->last_dest = i;
      return i;
    }
  }
  return -1;
}

static void flush(int i) {
  conn_t *c = conns[i];
  while (c->woff < c->wlen) {
    ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      close_conn(i);
      return;
    }
    c->woff += (size_t)n;
  }
  if (c->woff == c->wlen) c->woff = c->wlen = 0;
  int want = c->wlen > c->woff;
  if (want != c->want_out) {
    c->want_out = want;
    set_events(i);
  }
  if (c->wlen - c->woff < HIGH_WATER / 2) {
    for (int k = 0; k < nslots; k++) {
      if (conns[k] && conns[k]->paused && conns[k]->blocked_on == i) {
        conns[k]->paused = 0;
        set_events(k);
      }
    }
  }
}

static void append(conn_t *d, const uint8_t *frame, size_t len, const uint8_t *src_id) {
  if (d->woff > 0 && d->wlen + len > d->wcap) {
    memmove(d->wbuf, d->wbuf + d->woff, d->wlen - d->woff);
    d->wlen -= d->woff;
    d->woff = 0;
  }
  if (d->wlen + len > d->wcap) {
    size_t cap = d->wcap ? d->wcap : 65536;
    while (cap < d->wlen + len) cap *= 2;
    d->wbuf = realloc(d->wbuf, cap);
    if (!d->wbuf) { perror("realloc"); exit(1); }
    d->wcap = cap;
  }
  memcpy(d->wbuf + d->wlen, frame, 5);
  memcpy(d->wbuf + d->wlen + 5, src_id, 20);
  memcpy(d->wbuf + d->wlen + 25, frame + 25, len - 25);
  d->wlen += len;
}

static void on_read(int i) {
  conn_t *c = conns[i];
  ssize_t n = read(c->fd, c->rbuf + c->rlen, RBUF - c->rlen);
  if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
    close_conn(i);
    return;
  }
  if (n < 0) return;
  c->rlen += (size_t)n;
  size_t off = 0;
  if (!c->has_id) {
    if (c->rlen < 20) return;
    memcpy(c->id, c->rbuf, 20);
    c->has_id = 1;
    off = 20;
    /* acknowledge the ID so the client knows frames to it will be routed */
    if (write(c->fd, c->id, 20) != 20) {
      close_conn(i);
      return;
    }
  }
  /* destinations touched in this read, flushed once at the end */
  int touched[64], ntouched = 0;
  while (c->rlen - off >= 5) {
    uint32_t l;
    memcpy(&l, c->rbuf + off, 4);
    l = ntohl(l);
    if (l < 1 || l > MAX_FRAME) {
      close_conn(i);
      return;
    }
    if (c->rlen - off < 4 + (size_t)l) break;
    const uint8_t *frame = c->rbuf + off;
    if (frame[4] == 0x02 && l >= 22) {
      int d = find(c, frame + 5);
      if (d >= 0) {
        append(conns[d], frame, 4 + (size_t)l, c->id);
        int seen = 0;
        for (int k = 0; k < ntouched; k++) seen |= touched[k] == d;
        if (!seen && ntouched < 64) touched[ntouched++] = d;
        if (conns[d]->wlen - conns[d]->woff > HIGH_WATER) {
          c->paused = 1;
          c->blocked_on = d;
        }
      }
    }
    off += 4 + (size_t)l;
  }
  memmove(c->rbuf, c->rbuf + off, c->rlen - off);
  c->rlen -= off;
  for (int k = 0; k < ntouched; k++) if (conns[touched[k]]) flush(touched[k]);
  if (conns[i] && c->paused) set_events(i);
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 4096) < 0) {
    perror("listen");
    return 1;
  }
  socklen_t al = sizeof a;
  getsockname(lfd, (struct sockaddr *)&a, &al);
  ep = epoll_create1(0);
  struct epoll_event le = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
  epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &le);
  printf("ready %d\n", ntohs(a.sin_port));
  fflush(stdout);
  struct epoll_event evs[256];
  for (;;) {
    int n = epoll_wait(ep, evs, 256, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("epoll_wait");
      return 1;
    }
    for (int k = 0; k < n; k++) {
      uint32_t i = evs[k].data.u32;
      if (i == UINT32_MAX) {
        for (;;) {
          int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
          if (fd < 0) break;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          int slot = -1;
          for (int s = 0; s < MAX_CONNS; s++) if (!conns[s]) { slot = s; break; }
          if (slot < 0) { close(fd); continue; }
          conn_t *c = calloc(1, sizeof *c);
          c->fd = fd;
          c->open = 1;
          c->last_dest = -1;
          conns[slot] = c;
          if (slot >= nslots) nslots = slot + 1;
          struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)slot};
          epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
        }
        continue;
      }
      if (!conns[i]) continue;
      if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_read((int)i);
      if (conns[i] && (evs[k].events & EPOLLOUT)) flush((int)i);
    }
  }
}

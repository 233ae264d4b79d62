// Minimal native STUN Binding responder for `deno task bench`: the machine's own limit.
//
// Answers every Binding request (20-byte header, magic cookie) with a Binding success response
// carrying XOR-MAPPED-ADDRESS, using recvmmsg/sendmmsg in batches. Anything else is dropped.
// IPv4 only. Runs until killed.
//
// Usage: stun_responder HOST PORT   (prints "ready PORT" once bound; PORT 0 picks a free port)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BATCH 64
#define COOKIE 0x2112A442u

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s HOST PORT\n", argv[0]);
    return 2;
  }
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) { perror("socket"); return 1; }
  int buf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) { fprintf(stderr, "bad host\n"); return 2; }
  if (bind(fd, (struct sockaddr *)&a, sizeof a) < 0) { perror("bind"); return 1; }
  socklen_t alen = sizeof a;
  getsockname(fd, (struct sockaddr *)&a, &alen);
  printf("ready %d\n", ntohs(a.sin_port));
  fflush(stdout);

  static uint8_t in[BATCH][1500], out[BATCH][32];
  struct sockaddr_in from[BATCH];
  struct iovec iov[BATCH], oiov[BATCH];
  struct mmsghdr rx[BATCH], tx[BATCH];
  for (;;) {
    for (int i = 0; i < BATCH; i++) {
      iov[i].iov_base = in[i];
      iov[i].iov_len = sizeof in[i];
      memset(&rx[i], 0, sizeof rx[i]);
      rx[i].msg_hdr.msg_iov = &iov[i];
      rx[i].msg_hdr.msg_iovlen = 1;
      rx[i].msg_hdr.msg_name = &from[i];
      rx[i].msg_hdr.msg_namelen = sizeof from[i];
    }
    int n = recvmmsg(fd, rx, BATCH, MSG_WAITFORONE, NULL);
    if (n < 0) {
      if (errno == EINTR) continue;
      perror("recvmmsg");
      return 1;
    }
    int m = 0;
    for (int i = 0; i < n; i++) {
      uint8_t *p = in[i];
      uint32_t cookie;
      if (rx[i].msg_len < 20) continue;
      memcpy(&cookie, p + 4, 4);
      if (p[0] != 0 || p[1] != 1 || ntohl(cookie) != COOKIE) continue;
      uint8_t *o = out[m];
      o[0] = 0x01; o[1] = 0x01; o[2] = 0; o[3] = 12;
      memcpy(o + 4, p + 4, 16);
      o[20] = 0x00; o[21] = 0x20; o[22] = 0; o[23] = 8;
      o[24] = 0; o[25] = 1;
      uint16_t xport = htons(ntohs(from[i].sin_port) ^ (uint16_t)(COOKIE >> 16));
      uint32_t xaddr = htonl(ntohl(from[i].sin_addr.s_addr) ^ COOKIE);
      memcpy(o + 26, &xport, 2);
      memcpy(o + 28, &xaddr, 4);
      oiov[m].iov_base = o;
      oiov[m].iov_len = 32;
      memset(&tx[m], 0, sizeof tx[m]);
      tx[m].msg_hdr.msg_iov = &oiov[m];
      tx[m].msg_hdr.msg_iovlen = 1;
      tx[m].msg_hdr.msg_name = &from[i];
      tx[m].msg_hdr.msg_namelen = sizeof from[i];
      m++;
    }
    int off = 0;
    while (off < m) {
      int r = sendmmsg(fd, tx + off, (unsigned)(m - off), 0);
      if (r < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        break;
      }
      off += r;
    }
  }
}

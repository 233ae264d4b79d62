/*
 * nfqueue_delay: the NAT lab's delay holder. Binds an NFQUEUE queue in the current network
 * namespace and gives every packet queued there the verdict ACCEPT after a fixed delay, in
 * arrival order (constant delay keeps order). This kernel has no netem; nftables sends the
 * packets here with `queue num N`.
 *
 * Usage: nfqueue_delay QUEUE_NUM DELAY_MS
 * Prints {"type":"ready"} on stdout once bound. Exits when stdin closes (the lab closes it) or on a
 * signal. At most MAX_HELD packets are held; beyond that a packet is accepted at once.
 */
/* glibc's headers first: linux/libc-compat.h then skips its own copies of them. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_HELD 65536
#define BUF_SIZE 65536

static int nl;
static uint16_t queue_num;

struct held {
  uint32_t id; /* network order, as received */
  int64_t due_ms;
};

static struct held ring[MAX_HELD];
static size_t head, count;

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void put_attr(char *buf, size_t *len, uint16_t type, const void *data, uint16_t size) {
  struct nlattr *attr = (struct nlattr *)(buf + *len);
  attr->nla_type = type;
  attr->nla_len = NLA_HDRLEN + size;
  memcpy(buf + *len + NLA_HDRLEN, data, size);
  *len += NLA_ALIGN(attr->nla_len);
}

static size_t start_msg(char *buf, uint16_t msg_type) {
  struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
  memset(buf, 0, NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg)));
  nlh->nlmsg_type = (NFNL_SUBSYS_QUEUE << 8) | msg_type;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  struct nfgenmsg *nfg = (struct nfgenmsg *)(buf + NLMSG_HDRLEN);
  nfg->nfgen_family = AF_UNSPEC;
  nfg->version = NFNETLINK_V0;
  nfg->res_id = htons(queue_num);
  return NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
}

static int send_msg(char *buf, size_t len) {
  ((struct nlmsghdr *)buf)->nlmsg_len = len;
  struct sockaddr_nl to = {.nl_family = AF_NETLINK};
  return sendto(nl, buf, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0 ? -1 : 0;
}

static void verdict(uint32_t id_net) {
  char buf[256];
  size_t len = start_msg(buf, NFQNL_MSG_VERDICT);
  struct nfqnl_msg_verdict_hdr hdr = {.verdict = htonl(NF_ACCEPT), .id = id_net};
  put_attr(buf, &len, NFQA_VERDICT_HDR, &hdr, sizeof(hdr));
  if (send_msg(buf, len) < 0) perror("nfqueue_delay: verdict");
}

static void release_due(void) {
  int64_t now = now_ms();
  while (count > 0 && ring[head].due_ms <= now) {
    verdict(ring[head].id);
    head = (head + 1) % MAX_HELD;
    count--;
  }
}

static void on_packet(uint32_t id_net, int64_t delay_ms) {
  if (count == MAX_HELD) {
    verdict(id_net);
    return;
  }
  ring[(head + count) % MAX_HELD] = (struct held){.id = id_net, .due_ms = now_ms() + delay_ms};
  count++;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: nfqueue_delay QUEUE_NUM DELAY_MS\n");
    return 2;
  }
  long q = strtol(argv[1], NULL, 10), delay = strtol(argv[2], NULL, 10);
  if (q < 0 || q > 65535 || delay < 0 || delay > 10000) {
    fprintf(stderr, "nfqueue_delay: bad queue number or delay\n");
    return 2;
  }
  queue_num = (uint16_t)q;
  nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
  if (nl < 0) {
    perror("nfqueue_delay: socket");
    return 1;
  }
  struct sockaddr_nl local = {.nl_family = AF_NETLINK};
  if (bind(nl, (struct sockaddr *)&local, sizeof(local)) < 0) {
    perror("nfqueue_delay: bind");
    return 1;
  }
  int rcvbuf = 4 << 20;
  setsockopt(nl, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

  char buf[BUF_SIZE];
  size_t len = start_msg(buf, NFQNL_MSG_CONFIG);
  struct nfqnl_msg_config_cmd cmd = {.command = NFQNL_CFG_CMD_BIND, .pf = htons(AF_INET)};
  put_attr(buf, &len, NFQA_CFG_CMD, &cmd, sizeof(cmd));
  if (send_msg(buf, len) < 0) {
    perror("nfqueue_delay: bind queue");
    return 1;
  }
  len = start_msg(buf, NFQNL_MSG_CONFIG);
  struct nfqnl_msg_config_params params = {.copy_range = htonl(0), .copy_mode = NFQNL_COPY_META};
  put_attr(buf, &len, NFQA_CFG_PARAMS, &params, sizeof(params));
  uint32_t maxlen = htonl(MAX_HELD);
  put_attr(buf, &len, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof(maxlen));
  if (send_msg(buf, len) < 0) {
    perror("nfqueue_delay: params");
    return 1;
  }
  printf("{\"type\":\"ready\"}\n");
  fflush(stdout);

  struct pollfd fds[2] = {{.fd = nl, .events = POLLIN}, {.fd = 0, .events = POLLIN}};
  for (;;) {
    int timeout = -1;
    if (count > 0) {
      int64_t wait = ring[head].due_ms - now_ms();
      timeout = wait < 0 ? 0 : (int)wait;
    }
    int ready = poll(fds, 2, timeout);
    if (ready < 0 && errno != EINTR) {
      perror("nfqueue_delay: poll");
      return 1;
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      char scratch[256];
      if (read(0, scratch, sizeof(scratch)) <= 0) break; /* stdin closed: the lab is done */
    }
    if (fds[0].revents & POLLIN) {
      ssize_t n = recv(nl, buf, sizeof(buf), MSG_DONTWAIT);
      if (n < 0 && errno != EAGAIN && errno != ENOBUFS) {
        perror("nfqueue_delay: recv");
        return 1;
      }
      for (struct nlmsghdr *nlh = (struct nlmsghdr *)buf; n > 0 && NLMSG_OK(nlh, (size_t)n);
           nlh = NLMSG_NEXT(nlh, n)) {
        if ((nlh->nlmsg_type & 0xff) != NFQNL_MSG_PACKET) continue;
        size_t offset = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
        while (offset + NLA_HDRLEN <= nlh->nlmsg_len) {
          struct nlattr *attr = (struct nlattr *)((char *)nlh + offset);
          if (attr->nla_len < NLA_HDRLEN || offset + attr->nla_len > nlh->nlmsg_len) break;
          if ((attr->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR &&
              attr->nla_len >= NLA_HDRLEN + sizeof(struct nfqnl_msg_packet_hdr)) {
            struct nfqnl_msg_packet_hdr *ph =
                (struct nfqnl_msg_packet_hdr *)((char *)attr + NLA_HDRLEN);
            on_packet(ph->packet_id, delay);
            break;
          }
          offset += NLA_ALIGN(attr->nla_len);
        }
      }
    }
    release_due();
  }
  /* Let everything still held through before leaving. */
  while (count > 0) {
    verdict(ring[head].id);
    head = (head + 1) % MAX_HELD;
    count--;
  }
  return 0;
}

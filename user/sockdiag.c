// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include "common.h"
#include "sockdiag.h"

#define TCP_LISTEN_STATE 10

static bool serves(const struct inet_diag_msg *m, const struct procfs_addr *want)
{
	static const uint8_t zero[16];
	size_t len = m->idiag_family == AF_INET ? 4 : 16;

	if (!want || !want->len)
		return true;
	if (!memcmp(m->id.idiag_src, zero, len))
		return true;
	return want->len == len && !memcmp(m->id.idiag_src, want->bytes, len);
}

static int dump_family(int fd, uint8_t family, uint16_t port, const struct procfs_addr *want, uint64_t *inodes,
		       size_t max, size_t *n)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 req;
	} msg = {
		.nlh = { .nlmsg_len = sizeof(msg), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = family },
		.req = { .sdiag_family = family, .sdiag_protocol = IPPROTO_TCP, .idiag_states = 1u << TCP_LISTEN_STATE },
	};
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	long buf[8192 / sizeof(long)];

	if (sendto(fd, &msg, sizeof(msg), 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	for (;;) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		struct nlmsghdr *h = (struct nlmsghdr *)buf;

		if (len < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (; NLMSG_OK(h, (size_t)len); h = NLMSG_NEXT(h, len)) {
			const struct inet_diag_msg *m = NLMSG_DATA(h);

			if (h->nlmsg_seq != family)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return e->error < 0 ? e->error : -EPROTO;
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
				continue;
			if (ntohs(m->id.idiag_sport) == port && m->idiag_state == TCP_LISTEN_STATE && serves(m, want) &&
			    *n < max)
				inodes[(*n)++] = m->idiag_inode;
		}
	}
}

int sockdiag_listening_inodes(uint16_t port, const struct procfs_addr *want, uint64_t *inodes, size_t max)
{
	_cleanup_close_ int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	size_t n = 0;
	int r;

	if (fd < 0)
		return -errno;
	r = dump_family(fd, AF_INET, port, want, inodes, max, &n);
	/* a kernel without IPv6 answers ENOENT for the family: IPv4 alone is then the whole truth */
	if (r == 0 || r == -ENOENT) {
		int r6 = dump_family(fd, AF_INET6, port, want, inodes, max, &n);
		r = r6 == -ENOENT || r6 == 0 ? (r == -ENOENT && r6 == -ENOENT ? -ENOENT : 0) : r6;
	}
	return r < 0 ? r : (int)MIN(n, (size_t)INT32_MAX);
}

// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>
#include "common.h"
#include "journal-send.h"
#include "recout.h"

static int sock_fd = -1;
static uint64_t dropped, dropped_reported;
static time_t reported_at;

/* Appends one field in the native protocol: KEY=value\n, or KEY\n<le64 size>value\n when the value holds a
 * newline. Returns the new length, or 0 when it does not fit. */
static size_t put_field(char *buf, size_t len, size_t cap, const char *item, size_t n)
{
	const char *eq = memchr(item, '=', n);
	size_t klen, vlen;

	if (!eq)
		return 0;
	klen = (size_t)(eq - item);
	vlen = n - klen - 1;
	if (!memchr(eq + 1, '\n', vlen)) {
		if (len + n + 1 > cap)
			return 0;
		memcpy(buf + len, item, n);
		buf[len + n] = '\n';
		return len + n + 1;
	}
	if (len + klen + 1 + 8 + vlen + 1 > cap)
		return 0;
	memcpy(buf + len, item, klen);
	len += klen;
	buf[len++] = '\n';
	for (int i = 0; i < 8; i++)
		buf[len++] = (char)((uint64_t)vlen >> (8 * i));
	memcpy(buf + len, eq + 1, vlen);
	len += vlen;
	buf[len++] = '\n';
	return len;
}

static void report_drops(void)
{
	time_t now = time(NULL);
	char line[160];

	/* on stderr: the journal is what does not take it */
	if (dropped == dropped_reported || now - reported_at < 10)
		return;
	snprintf(line, sizeof(line), "oomsentry: warning: journald did not read: %llu records not sent to the journal "
		 "(%llu in all)", (unsigned long long)(dropped - dropped_reported), (unsigned long long)dropped);
	recout_line(&recout_stderr, stderr, line);
	dropped_reported = dropped;
	reported_at = now;
}

int journal_send(const struct iovec *iov, int n)
{
	static const struct sockaddr_un sa = { .sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET };
	static char buf[128 * 1024];
	struct iovec one;
	struct msghdr mh = { .msg_name = (void *)&sa, .msg_namelen = sizeof(sa), .msg_iov = &one, .msg_iovlen = 1 };
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		len = put_field(buf, len, sizeof(buf), iov[i].iov_base, iov[i].iov_len);
		if (!len)
			return sd_journal_sendv(iov, n); /* a record too large for one datagram: sd-journal's memfd */
	}
	if (sock_fd < 0) {
		sock_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (sock_fd < 0)
			return -errno;
	}
	one = (struct iovec){ .iov_base = buf, .iov_len = len };
	for (;;) {
		if (sendmsg(sock_fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0) {
			report_drops();
			return 0;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			dropped++;
			report_drops();
			return -EAGAIN;
		}
		if (errno == EMSGSIZE)
			return sd_journal_sendv(iov, n);
		return -errno;
	}
}

uint64_t journal_send_dropped(void)
{
	return dropped;
}

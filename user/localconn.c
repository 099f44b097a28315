// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "common.h"
#include "localconn.h"

struct localconn {
	int fd; /* -1: a free slot */
	unsigned slot;
	const struct localconn_ops *ops;
	void *ctx;
	char *in;
	size_t in_len, in_max;
	char *out;
	size_t out_len, out_off;
	uint64_t deadline_ns, added_ns;
	uint32_t events;
	bool finishing, eof;
};

static struct localconn conns[LOCALCONN_MAX];
static int conn_epfd = -1;
static uint64_t conn_tag;
static bool conns_inited;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void init_slots(void)
{
	if (conns_inited)
		return;
	for (unsigned i = 0; i < LOCALCONN_MAX; i++)
		conns[i] = (struct localconn){ .fd = -1, .slot = i };
	conns_inited = true;
}

void localconn_setup(int epfd, uint64_t tag)
{
	init_slots();
	conn_epfd = epfd;
	conn_tag = tag;
}

static void conn_close(struct localconn *c)
{
	if (c->fd < 0)
		return;
	if (conn_epfd >= 0)
		epoll_ctl(conn_epfd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c->in);
	free(c->out);
	if (c->ops && c->ops->release)
		c->ops->release(c->ctx);
	*c = (struct localconn){ .fd = -1, .slot = c->slot };
}

static void update_events(struct localconn *c)
{
	struct epoll_event ev = { .data.u64 = conn_tag | ((uint64_t)c->slot << 32) };

	ev.events = (c->ops && !c->eof ? EPOLLIN : 0) | (c->out_off < c->out_len ? EPOLLOUT : 0) | EPOLLRDHUP;
	if (ev.events != c->events && epoll_ctl(conn_epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
		c->events = ev.events;
}

/* Writes what the socket takes now; false when the client is gone. */
static bool flush_out(struct localconn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return true;
		if (n <= 0)
			return false;
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return true;
}

/* Done with it: hung up, or finished and everything sent. */
static void settle(struct localconn *c)
{
	if (c->fd < 0)
		return;
	if (!flush_out(c) || ((c->finishing || c->eof) && c->out_len == 0)) {
		conn_close(c);
		return;
	}
	update_events(c);
}

struct localconn *localconn_add(int fd, uint64_t timeout_ms, const struct localconn_ops *ops, void *ctx,
				size_t in_max)
{
	struct localconn *c = NULL, *oldest = NULL, *oldest_kind = NULL;
	struct epoll_event ev;
	uint64_t now = mono_ns();

	init_slots();
	for (unsigned i = 0; i < LOCALCONN_MAX && !c; i++)
		if (conns[i].fd < 0) {
			c = &conns[i];
		} else {
			if (!oldest || conns[i].added_ns < oldest->added_ns)
				oldest = &conns[i];
			if (conns[i].ops == ops && (!oldest_kind || conns[i].added_ns < oldest_kind->added_ns))
				oldest_kind = &conns[i];
		}
	/* full: a flood of one kind (status clients) pushes out its own kind first, not oomd's pre-kill call */
	if (!c && (oldest_kind || oldest)) {
		c = oldest_kind ? oldest_kind : oldest;
		conn_close(c);
	}
	if (conn_epfd < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0)
		goto fail;
	c->fd = fd;
	c->ops = ops;
	c->ctx = ctx;
	c->in_max = in_max;
	c->added_ns = now;
	c->deadline_ns = now + timeout_ms * 1000000ULL;
	if (ops && in_max && !(c->in = malloc(in_max)))
		goto fail_slot;
	ev = (struct epoll_event){ .events = (ops ? EPOLLIN : 0) | EPOLLRDHUP,
				   .data.u64 = conn_tag | ((uint64_t)c->slot << 32) };
	if (epoll_ctl(conn_epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
		goto fail_slot;
	c->events = ev.events;
	return c;
fail_slot:
	free(c->in);
	*c = (struct localconn){ .fd = -1, .slot = c->slot };
fail:
	close(fd);
	if (ops && ops->release)
		ops->release(ctx);
	return NULL;
}

int localconn_send(struct localconn *c, const char *buf, size_t len)
{
	if (!c || c->fd < 0)
		return -EPIPE;
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	if (len) {
		char *n = realloc(c->out, c->out_len + len);

		if (!n)
			return -ENOMEM;
		c->out = n;
		memcpy(c->out + c->out_len, buf, len);
		c->out_len += len;
	}
	if (!flush_out(c))
		c->eof = c->finishing = true; /* gone: settle() hangs up */
	return 0;
}

void localconn_finish(struct localconn *c)
{
	if (!c || c->fd < 0)
		return;
	c->finishing = true;
	settle(c);
}

static void read_input(struct localconn *c)
{
	while (!c->eof && !c->finishing) {
		ssize_t n;
		long used;

		if (c->in_len == c->in_max) {
			/* a message larger than any the caller accepts: not a client of ours */
			c->finishing = true;
			return;
		}
		n = recv(c->fd, c->in + c->in_len, c->in_max - c->in_len, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n <= 0) {
			c->eof = true;
			return;
		}
		c->in_len += (size_t)n;
		used = c->ops->input(c, c->in, c->in_len, c->ctx);
		if (c->fd < 0)
			return;
		if (used < 0) {
			c->finishing = true;
			return;
		}
		if ((size_t)used > c->in_len)
			used = (long)c->in_len;
		memmove(c->in, c->in + used, c->in_len - (size_t)used);
		c->in_len -= (size_t)used;
	}
}

static void discard_input(struct localconn *c)
{
	char buf[512];
	ssize_t n;

	/* a client of a socket that only talks: what it sends means nothing, its hang-up ends it */
	while ((n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
		;
	if (n == 0)
		c->eof = true;
}

void localconn_dispatch(const void *evp)
{
	const struct epoll_event *ev = evp;
	unsigned slot = (unsigned)(ev->data.u64 >> 32);
	struct localconn *c;

	if (slot >= LOCALCONN_MAX || conns[slot].fd < 0)
		return;
	c = &conns[slot];
	if (ev->events & EPOLLERR) {
		conn_close(c);
		return;
	}
	if (ev->events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP)) {
		if (c->ops)
			read_input(c);
		else
			discard_input(c);
	}
	if ((ev->events & EPOLLHUP) && c->fd >= 0)
		c->eof = true;
	settle(c);
}

int localconn_timeout_ms(void)
{
	uint64_t now = mono_ns(), next = UINT64_MAX;

	for (unsigned i = 0; conns_inited && i < LOCALCONN_MAX; i++)
		if (conns[i].fd >= 0)
			next = MIN(next, conns[i].deadline_ns);
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)MIN((next - now + 999999) / 1000000, 60000ULL);
}

void localconn_expire(void)
{
	uint64_t now = mono_ns();

	for (unsigned i = 0; conns_inited && i < LOCALCONN_MAX; i++)
		if (conns[i].fd >= 0 && now >= conns[i].deadline_ns)
			conn_close(&conns[i]);
}

unsigned localconn_count(void)
{
	unsigned n = 0;

	for (unsigned i = 0; conns_inited && i < LOCALCONN_MAX; i++)
		n += conns[i].fd >= 0;
	return n;
}

void localconn_shutdown(void)
{
	for (unsigned i = 0; conns_inited && i < LOCALCONN_MAX; i++)
		conn_close(&conns[i]);
}

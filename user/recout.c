// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>
#include "recout.h"

/* the writer's stack holds one write() and a poll(): mlockall(MCL_FUTURE) locks what it touches */
#define WRITER_STACK (PTHREAD_STACK_MIN + 64 * 1024)

/* 0, or the negative errno that ends the write. EAGAIN (a descriptor someone else made non-blocking) waits for
 * room: this thread may wait, the loop may not. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };

			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				return -errno;
			poll(&p, 1, -1);
			continue;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void *writer(void *arg)
{
	struct recout *o = arg;
	sigset_t all;

	/* signals are the loop's (signalfd); SIGPIPE from a reader that went away stays pending here, and the write
	 * fails with EPIPE instead of ending the daemon */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		struct lineq_line *l;
		int fd, r;

		pthread_mutex_lock(&o->mu);
		while (!o->q.head)
			pthread_cond_wait(&o->work, &o->mu);
		l = lineq_pop(&o->q);
		o->busy = true;
		fd = o->fd;
		pthread_mutex_unlock(&o->mu);
		r = write_all(fd, l->text, l->len);
		free(l);
		pthread_mutex_lock(&o->mu);
		o->busy = false;
		if (r < 0) {
			o->err = r;
			/* a reader that is gone does not come back: what is queued and what comes is discarded */
			o->closed = true;
			lineq_clear(&o->q);
		}
		pthread_cond_broadcast(&o->idle);
		pthread_mutex_unlock(&o->mu);
	}
	return NULL;
}

struct recout recout_stderr;

void recout_start(struct recout *o, int fd, size_t cap, lineq_notice_fn notice, void *notice_ctx)
{
	pthread_condattr_t ca;
	pthread_attr_t a;
	pthread_t t;

	if (o->started) {
		/* another output (a test's file after another's): what the old one is owed goes there first */
		recout_flush(o, UINT64_MAX);
		pthread_mutex_lock(&o->mu);
		o->fd = fd;
		o->closed = false;
		o->err = 0;
		lineq_clear(&o->q);
		lineq_init(&o->q, cap, notice, notice_ctx);
		pthread_mutex_unlock(&o->mu);
		return;
	}
	memset(o, 0, sizeof(*o));
	o->fd = fd;
	pthread_mutex_init(&o->mu, NULL);
	pthread_cond_init(&o->work, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&o->idle, &ca);
	pthread_condattr_destroy(&ca);
	lineq_init(&o->q, cap, notice, notice_ctx);
	o->started = true;
	pthread_attr_init(&a);
	pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&a, WRITER_STACK);
	o->threaded = pthread_create(&t, &a, writer, o) == 0;
	pthread_attr_destroy(&a);
}

bool recout_started(const struct recout *o)
{
	return o->started;
}

/* With nothing queued and the writer idle, the line is written here if the descriptor takes it at once
 * (RWF_NOWAIT: never blocks, EAGAIN instead). Waking the writer thread for each line was two context switches per
 * record: ~26 % of the daemon's CPU samples while a tracked process climbed 4 GiB (docs/performance.md). Returns
 * the bytes written (text's and its newline's), or -1 when nothing was. Called with o->mu held. */
static ssize_t write_direct(struct recout *o, const char *text, size_t len)
{
	static const struct timespec now = { 0, 0 };
	struct iovec iov[2] = { { (void *)text, len }, { (void *)"\n", 1 } };
	sigset_t pipe_set, old;
	ssize_t n;
	int err;

	if (o->no_direct || o->busy || o->q.head || o->q.dropped)
		return -1;
	/* a reader that closed the pipe must not end the daemon with SIGPIPE (the writer thread blocks every signal):
	 * blocked around the write, and the one the write raised is taken back */
	sigemptyset(&pipe_set);
	sigaddset(&pipe_set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
	n = pwritev2(o->fd, iov, 2, -1, RWF_NOWAIT);
	err = errno;
	if (n < 0 && err == EPIPE && !sigismember(&old, SIGPIPE))
		(void)sigtimedwait(&pipe_set, NULL, &now);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (n < 0 && (err == EOPNOTSUPP || err == EINVAL || err == ENOSYS || err == ESPIPE))
		o->no_direct = true;
	/* any other error (EAGAIN: full; EPIPE: the reader left) is the writer's to meet and report */
	return n;
}

enum lineq_result recout_write(struct recout *o, const char *text, size_t len)
{
	ssize_t n;

	enum lineq_result res;

	if (!o->threaded) {
		/* late rather than never: the loop waits for the reader, as it did before there was a thread */
		int r = write_all(o->fd, text, len);

		if (!r)
			r = write_all(o->fd, "\n", 1);
		if (r < 0 && !o->err)
			o->err = r;
		return LINEQ_QUEUED;
	}
	pthread_mutex_lock(&o->mu);
	if (o->closed) {
		pthread_mutex_unlock(&o->mu);
		return LINEQ_QUEUED;
	}
	n = write_direct(o, text, len);
	if (n == (ssize_t)len + 1) {
		pthread_mutex_unlock(&o->mu);
		return LINEQ_QUEUED;
	}
	/* a part went (the pipe filled meanwhile): the rest of the line is the first thing the writer writes */
	if (n > 0)
		res = lineq_push(&o->q, text + n, len - (size_t)n);
	else
		res = lineq_push(&o->q, text, len);
	if (res == LINEQ_QUEUED || res == LINEQ_QUEUED_AFTER_GAP)
		pthread_cond_signal(&o->work);
	pthread_mutex_unlock(&o->mu);
	return res;
}

int recout_error(struct recout *o)
{
	int r;

	if (!o->started)
		return 0;
	pthread_mutex_lock(&o->mu);
	r = o->err;
	o->err = 0;
	pthread_mutex_unlock(&o->mu);
	return r;
}

size_t recout_flush(struct recout *o, uint64_t deadline_ns)
{
	struct timespec ts = { .tv_sec = (time_t)(deadline_ns / 1000000000ULL),
			       .tv_nsec = (long)(deadline_ns % 1000000000ULL) };
	size_t left;

	if (!o->started || !o->threaded)
		return 0;
	pthread_mutex_lock(&o->mu);
	for (;;) {
		/* the last gap has no line after it to close it: its notice goes alone, once there is room */
		if (o->q.dropped && lineq_close_gap(&o->q))
			pthread_cond_signal(&o->work);
		if (o->closed || (!o->q.head && !o->busy && !o->q.dropped))
			break;
		if (pthread_cond_timedwait(&o->idle, &o->mu, &ts) == ETIMEDOUT)
			break;
	}
	left = lineq_count(&o->q) + o->busy;
	pthread_mutex_unlock(&o->mu);
	return left;
}

void recout_line(struct recout *o, FILE *direct, const char *text)
{
	if (o->started)
		recout_write(o, text, strlen(text));
	else
		fprintf(direct, "%s\n", text);
}

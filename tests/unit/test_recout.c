// SPDX-License-Identifier: GPL-2.0
/* recout.c with real pipes and its writer thread: a reader that stops holds up no caller, the gap is counted and
 * noticed where it is, lines keep their order, the exit's flush is bounded, and a reader that went away ends the
 * writing, not the process. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include "recout.h"

#define LINES 1000
#define LINE_LEN 99 /* with its newline, 100 bytes */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static size_t notice(uint64_t dropped, char *buf, size_t size, void *ctx)
{
	(void)ctx;
	return (size_t)snprintf(buf, size, "dropped %llu", (unsigned long long)dropped);
}

struct reader {
	int fd;
	char *buf;
	size_t len;
};

static void *read_all(void *arg)
{
	struct reader *r = arg;
	size_t cap = 0;

	for (;;) {
		ssize_t n;

		if (r->len + 65536 > cap) {
			cap = (r->len + 65536) * 2;
			r->buf = realloc(r->buf, cap + 1);
			if (!r->buf)
				abort();
		}
		n = read(r->fd, r->buf + r->len, cap - r->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		r->len += (size_t)n;
	}
	r->buf[r->len] = 0;
	return NULL;
}

static void line_text(char *buf, int i)
{
	int n = snprintf(buf, LINE_LEN + 1, "line %04d ", i % 10000);

	memset(buf + n, '0', (size_t)(LINE_LEN - n));
	buf[LINE_LEN] = 0;
}

static void test_stuck_reader(void **state)
{
	static struct recout o;
	struct reader rd = { 0 };
	char text[LINE_LEN + 1];
	int p[2], first = 0, after_gap = 0, notices = 0, expect = 0;
	unsigned long long owed = 0;
	uint64_t t0;
	pthread_t t;
	char *line, *save;

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_true(fcntl(p[1], F_SETPIPE_SZ, 4096) > 0);
	/* the pipe full before the first line: the writer's first write() blocks */
	assert_int_equal(fcntl(p[1], F_SETFL, O_NONBLOCK), 0);
	while (write(p[1], "fill\n", 5) == 5)
		;
	assert_int_equal(errno, EAGAIN);
	assert_int_equal(fcntl(p[1], F_SETFL, 0), 0);
	recout_start(&o, p[1], 16 * (sizeof(struct lineq_line) + LINE_LEN + 1), notice, NULL);
	/* nobody reads: a write that waited for the reader would never return (the alarm ends the test) */
	for (int i = 0; i < LINES; i++) {
		line_text(text, i);
		switch (recout_write(&o, text, LINE_LEN)) {
		case LINEQ_DROPPED_FIRST: first++; break;
		/* the writer took a line into its write() after the first drop: room for the gap's notice */
		case LINEQ_QUEUED_AFTER_GAP: after_gap++; break;
		default: break;
		}
	}
	assert_true(first >= 1);
	/* the exit's flush gives up at its deadline while the reader still does not read */
	t0 = mono_ns();
	assert_true(recout_flush(&o, t0 + 200000000ULL) > 0);
	assert_true(mono_ns() - t0 < 2000000000ULL);

	rd.fd = p[0];
	assert_int_equal(pthread_create(&t, NULL, read_all, &rd), 0);
	/* the reader reads again: what was queued goes out, then the last gap's notice alone (nothing follows it) */
	assert_int_equal(recout_flush(&o, mono_ns() + 10000000000ULL), 0);
	assert_int_equal(recout_write(&o, "after", 5), LINEQ_QUEUED);
	assert_int_equal(recout_flush(&o, mono_ns() + 10000000000ULL), 0);
	close(p[1]);
	pthread_join(t, NULL);
	close(p[0]);

	/* lines in order; each gap has one notice, with the number of lines missing there */
	for (line = strtok_r(rd.buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long n;
		int i;

		if (!strcmp(line, "fill"))
			continue;
		if (sscanf(line, "dropped %llu", &n) == 1) {
			if (owed)
				fail_msg("two notices in a row");
			owed = n;
			notices++;
			continue;
		}
		if (!strcmp(line, "after")) {
			assert_int_equal(owed, (unsigned long long)(LINES - expect));
			owed = 0;
			expect = -1;
			continue;
		}
		if (sscanf(line, "line %d", &i) != 1 || expect < 0)
			fail_msg("unexpected line %.20s", line);
		if ((unsigned long long)(i - expect) != owed)
			fail_msg("line %d after line %d: the notice said %llu missing", i, expect - 1, owed);
		owed = 0;
		expect = i + 1;
	}
	assert_int_equal(expect, -1);
	assert_int_equal(notices, first);
	assert_int_equal(notices, after_gap + 1);
	assert_int_equal(recout_error(&o), 0);
	free(rd.buf);
}

static void test_reader_gone(void **state)
{
	static struct recout o;
	int p[2];

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	close(p[0]);
	recout_start(&o, p[1], 1 << 16, notice, NULL);
	/* EPIPE, and SIGPIPE (not ignored here: its default ends the process) stays pending in the writer thread */
	assert_int_equal(recout_write(&o, "into the void", 13), LINEQ_QUEUED);
	assert_int_equal(recout_flush(&o, mono_ns() + 10000000000ULL), 0);
	assert_int_equal(recout_error(&o), -EPIPE);
	assert_int_equal(recout_error(&o), 0);
	/* what comes later is discarded, not queued for a writer that has stopped */
	assert_int_equal(recout_write(&o, "more", 4), LINEQ_QUEUED);
	assert_null(o.q.head);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stuck_reader),
		cmocka_unit_test(test_reader_gone),
	};
	/* a write that blocks the caller would hang this test: end it instead */
	alarm(60);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

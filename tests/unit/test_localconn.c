// SPDX-License-Identifier: GPL-2.0
/* localconn.c: clients of the daemon's local sockets served on the loop. A client that does not read a reply larger
 * than the socket buffer costs no time (the send returns at once) and is hung up on at its deadline; one that reads
 * gets every byte and then end of file; calls split across reads arrive whole; input beyond the limit, and a flood
 * of clients beyond the slots, are hung up on. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <cmocka.h>

#include "localconn.h"

enum { TAG_CONN = 9 };

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Runs the loop's part for up to ms: events to localconn_dispatch, deadlines to localconn_expire. */
static void run_loop(int epfd, int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end) {
		struct epoll_event evs[8];
		int t = localconn_timeout_ms(), n;

		if (t < 0 || t > (int)(end - now_ms()))
			t = (int)(end - now_ms());
		n = epoll_wait(epfd, evs, 8, t);
		for (int i = 0; i < n; i++) {
			assert_int_equal(evs[i].data.u64 & 0xffffffffu, TAG_CONN);
			localconn_dispatch(&evs[i]);
		}
		localconn_expire();
	}
}

static int setup(void **state)
{
	int *epfd = malloc(sizeof(int));

	*epfd = epoll_create1(EPOLL_CLOEXEC);
	assert_true(*epfd >= 0);
	localconn_setup(*epfd, TAG_CONN);
	*state = epfd;
	return 0;
}

static int teardown(void **state)
{
	int *epfd = *state;

	localconn_shutdown();
	close(*epfd);
	free(epfd);
	return 0;
}

/* 4 MiB: far beyond a UNIX socket's buffer (about 200 KiB), so a blocking send would wait for the reader. */
#define BIG (4u << 20)

static void test_stuck_reader_costs_no_time_and_is_hung_up_on(void **state)
{
	int epfd = **(int **)state, sv[2];
	char *buf = malloc(BIG), probe;
	struct localconn *c;
	uint64_t t0;

	memset(buf, 'x', BIG);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c = localconn_add(sv[0], 300, NULL, NULL, 0);
	assert_non_null(c);
	t0 = now_ms();
	assert_int_equal(localconn_send(c, buf, BIG), 0);
	localconn_finish(c);
	assert_true(now_ms() - t0 < 100);
	assert_int_equal(localconn_count(), 1); /* not all sent: it stays until its deadline */
	run_loop(epfd, 150);
	assert_int_equal(localconn_count(), 1);
	run_loop(epfd, 400);
	assert_int_equal(localconn_count(), 0);
	/* hung up: the reader finds part of the reply, then the end */
	while (recv(sv[1], buf, BIG, MSG_DONTWAIT) > 0)
		;
	assert_int_equal(recv(sv[1], &probe, 1, MSG_DONTWAIT), 0);
	close(sv[1]);
	free(buf);
}


static void test_reader_gets_everything_then_eof(void **state)
{
	int epfd = **(int **)state, sv[2];
	char *buf = malloc(BIG), *in = malloc(65536);
	struct localconn *c;
	uint64_t end;
	size_t got = 0;
	ssize_t n = -1;

	for (size_t i = 0; i < BIG; i++)
		buf[i] = (char)('a' + i % 26);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	c = localconn_add(sv[0], 5000, NULL, NULL, 0);
	assert_non_null(c);
	assert_int_equal(localconn_send(c, buf, BIG), 0);
	localconn_finish(c);
	/* the reader drains between turns of the loop, as a client in another process would */
	for (end = now_ms() + 4000; now_ms() < end;) {
		while ((n = recv(sv[1], in, 65536, MSG_DONTWAIT)) > 0) {
			assert_memory_equal(in, buf + got, (size_t)n);
			got += (size_t)n;
		}
		if (n == 0)
			break;
		run_loop(epfd, 5);
	}
	assert_int_equal(n, 0);
	assert_int_equal(got, BIG);
	assert_int_equal(localconn_count(), 0);
	close(sv[1]);
	free(buf);
	free(in);
}

/* A NUL-ended protocol, as the pre-kill hook's: each message answered with its length. */
struct calls {
	int n;
	char last[64];
	bool released;
};

static long on_input(struct localconn *c, char *in, size_t len, void *ctx)
{
	struct calls *k = ctx;
	size_t off = 0;
	char *nul;

	while ((nul = memchr(in + off, 0, len - off))) {
		char reply[32];
		size_t mlen = (size_t)(nul - (in + off));

		snprintf(k->last, sizeof(k->last), "%s", in + off);
		k->n++;
		snprintf(reply, sizeof(reply), "%zu", mlen);
		localconn_send(c, reply, strlen(reply) + 1);
		off += mlen + 1;
		if (!strcmp(k->last, "bye"))
			return -1;
	}
	return (long)off;
}

static void on_release(void *ctx)
{
	((struct calls *)ctx)->released = true;
}

static const struct localconn_ops ops = { .input = on_input, .release = on_release };

static void test_split_calls_arrive_whole(void **state)
{
	int epfd = **(int **)state, sv[2];
	struct calls k = { 0 };
	char reply[64] = "";
	ssize_t n;

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_non_null(localconn_add(sv[0], 2000, &ops, &k, 64));
	assert_int_equal(send(sv[1], "hel", 3, 0), 3);
	run_loop(epfd, 50);
	assert_int_equal(k.n, 0);
	assert_int_equal(send(sv[1], "lo\0bye", 7, 0), 7);
	run_loop(epfd, 50);
	assert_int_equal(k.n, 2);
	assert_string_equal(k.last, "bye");
	n = recv(sv[1], reply, sizeof(reply), MSG_DONTWAIT);
	assert_int_equal(n, 4); /* "5\0" "3\0" */
	assert_memory_equal(reply, "5\0" "3", 4);
	assert_true(k.released);
	assert_int_equal(localconn_count(), 0);
	close(sv[1]);
}

static void test_input_beyond_the_limit_is_hung_up_on(void **state)
{
	int epfd = **(int **)state, sv[2];
	struct calls k = { 0 };
	char junk[200], probe;
	ssize_t n;

	memset(junk, 'j', sizeof(junk));
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_non_null(localconn_add(sv[0], 2000, &ops, &k, 64));
	assert_int_equal(send(sv[1], junk, sizeof(junk), 0), (ssize_t)sizeof(junk));
	run_loop(epfd, 50);
	assert_int_equal(k.n, 0);
	assert_true(k.released);
	/* closed with input unread: the peer sees a reset rather than a clean end */
	n = recv(sv[1], &probe, 1, MSG_DONTWAIT);
	assert_true(n == 0 || (n < 0 && errno == ECONNRESET));
	close(sv[1]);
}

static void test_silent_client_times_out(void **state)
{
	int epfd = **(int **)state, sv[2];
	struct calls k = { 0 };

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_non_null(localconn_add(sv[0], 100, &ops, &k, 64));
	run_loop(epfd, 50);
	assert_false(k.released);
	run_loop(epfd, 150);
	assert_true(k.released);
	close(sv[1]);
}

static void test_flood_hangs_up_on_the_oldest(void **state)
{
	int epfd = **(int **)state, peers[LOCALCONN_MAX + 1];
	struct calls k[LOCALCONN_MAX + 1] = { 0 };
	char probe;

	(void)epfd;
	for (int i = 0; i <= LOCALCONN_MAX; i++) {
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		peers[i] = sv[1];
		assert_non_null(localconn_add(sv[0], 10000, &ops, &k[i], 64));
		usleep(1000); /* distinct ages */
	}
	assert_int_equal(localconn_count(), LOCALCONN_MAX);
	assert_true(k[0].released);
	assert_int_equal(recv(peers[0], &probe, 1, MSG_DONTWAIT), 0);
	for (int i = 1; i <= LOCALCONN_MAX; i++)
		assert_false(k[i].released);
	for (int i = 0; i <= LOCALCONN_MAX; i++)
		close(peers[i]);
}

/* A write-only client (a status reader) that came first stays when a flood of the other kind arrives. */
static void test_flood_pushes_out_its_own_kind_first(void **state)
{
	int peers[LOCALCONN_MAX + 1], first[2];
	struct calls k[LOCALCONN_MAX + 1] = { 0 };
	char probe;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, first), 0);
	assert_non_null(localconn_add(first[0], 10000, NULL, NULL, 0));
	usleep(1000);
	for (int i = 0; i < LOCALCONN_MAX; i++) {
		int sv[2];

		assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		peers[i] = sv[1];
		assert_non_null(localconn_add(sv[0], 10000, &ops, &k[i], 64));
		usleep(1000);
	}
	assert_int_equal(localconn_count(), LOCALCONN_MAX);
	/* the oldest of the flood went, the older client of the other kind is still connected */
	assert_true(k[0].released);
	assert_int_equal(recv(first[1], &probe, 1, MSG_DONTWAIT), -1);
	assert_int_equal(errno, EAGAIN);
	for (int i = 0; i < LOCALCONN_MAX; i++)
		close(peers[i]);
	close(first[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stuck_reader_costs_no_time_and_is_hung_up_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reader_gets_everything_then_eof, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_calls_arrive_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_input_beyond_the_limit_is_hung_up_on, setup, teardown),
		cmocka_unit_test_setup_teardown(test_silent_client_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flood_hangs_up_on_the_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flood_pushes_out_its_own_kind_first, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
/* curl-loop.c: HTTP transfers driven by an epoll loop. A server that accepts and never answers must not hold the
 * loop: another fd (standing in for the BPF ring buffer) is served on time while the transfer waits for its
 * timeout; a server that answers completes through the done callback. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <cmocka.h>

#include "curl-loop.h"

enum { TAG_CURL = 7, TAG_TICK = 8 };

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* A listening socket on 127.0.0.1; returns its port. Nobody accepts: the kernel still completes handshakes. */
static int listener(int *ret_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
}

static void *answer_once(void *arg)
{
	int lfd = *(int *)arg, c = accept(lfd, NULL, NULL);
	char buf[4096];
	static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";

	if (c >= 0) {
		if (read(c, buf, sizeof(buf)) > 0 && write(c, reply, sizeof(reply) - 1) < 0)
			perror("write");
		close(c);
	}
	return NULL;
}

struct result {
	int done;
	CURLcode res;
	long status;
	uint64_t at_ms;
};

static void on_done(CURL *easy, CURLcode res, void *ctx)
{
	struct result *r = ctx;

	r->done++;
	r->res = res;
	r->at_ms = now_ms();
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_cleanup(easy);
}

static size_t sink(char *d, size_t s, size_t n, void *u)
{
	(void)d;
	(void)u;
	return s * n;
}

static CURL *easy_for(int port, long timeout_ms)
{
	char url[64];
	CURL *e = curl_easy_init();

	assert_non_null(e);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/queue", port);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
	return e;
}

/* Runs the loop until until_ms; counts ticks of a 5 ms timerfd and the worst lateness of any tick. */
static void run_loop(int epfd, struct curl_loop *cl, int tick_fd, uint64_t until_ms, int *ticks, uint64_t *worst_gap)
{
	uint64_t last = now_ms();

	while (now_ms() < until_ms) {
		struct epoll_event evs[8];
		int n = epoll_wait(epfd, evs, 8, 10);

		for (int i = 0; i < n; i++) {
			if ((evs[i].data.u64 & 0xffffffffu) == TAG_CURL) {
				curl_loop_dispatch(cl, &evs[i]);
			} else if (evs[i].data.u64 == TAG_TICK) {
				uint64_t x, t = now_ms();
				assert_int_equal(read(tick_fd, &x, sizeof(x)), sizeof(x));
				if (t - last > *worst_gap)
					*worst_gap = t - last;
				last = t;
				(*ticks)++;
			}
		}
	}
}

static void test_silent_server_does_not_block(void **state)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC), port, lfd = listener(&port), ticks = 0;
	int tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = { .it_interval = { 0, 5000000 }, .it_value = { 0, 5000000 } };
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_TICK };
	struct curl_loop *cl = NULL;
	struct result r = { 0 };
	uint64_t start, worst = 0;

	(void)state;
	assert_int_equal(curl_loop_new(epfd, TAG_CURL, &cl), 0);
	assert_int_equal(epoll_ctl(epfd, EPOLL_CTL_ADD, tick_fd, &ev), 0);
	assert_int_equal(timerfd_settime(tick_fd, 0, &its, NULL), 0);
	start = now_ms();
	assert_int_equal(curl_loop_add(cl, easy_for(port, 600), on_done, &r), 0);
	assert_int_equal(curl_loop_running(cl), 1);
	assert_int_equal(r.done, 0); /* never from inside curl_loop_add */
	run_loop(epfd, cl, tick_fd, start + 900, &ticks, &worst);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.res, CURLE_OPERATION_TIMEDOUT);
	assert_true(r.at_ms - start >= 550 && r.at_ms - start < 900);
	/* the other fd was served all along (~180 ticks of 5 ms). A loop held by the transfer would show one gap of
	 * its whole 600 ms timeout; a loaded machine's scheduler delays a tick by tens of ms (62-85 ms seen with
	 * other test suites on 2 CPUs), which says nothing about the loop, so the bound sits between the two. */
	assert_true(ticks > 30);
	if (worst >= 300)
		fail_msg("a tick waited %llu ms while the transfer hung", (unsigned long long)worst);
	assert_int_equal(curl_loop_running(cl), 0);
	curl_loop_free(cl);
	close(lfd);
	close(tick_fd);
	close(epfd);
}

static void test_answer_and_cancel_and_free(void **state)
{
	int epfd = epoll_create1(EPOLL_CLOEXEC), port, lfd = listener(&port), ticks = 0, silent_port;
	int silent = listener(&silent_port);
	struct curl_loop *cl = NULL;
	struct result r = { 0 }, r2 = { 0 }, r3 = { 0 };
	uint64_t worst = 0;
	pthread_t th;
	CURL *cancelled;

	(void)state;
	assert_int_equal(curl_loop_new(epfd, TAG_CURL, &cl), 0);
	assert_int_equal(pthread_create(&th, NULL, answer_once, &lfd), 0);
	assert_int_equal(curl_loop_add(cl, easy_for(port, 2000), on_done, &r), 0);
	cancelled = easy_for(silent_port, 5000);
	assert_int_equal(curl_loop_add(cl, cancelled, on_done, &r2), 0);
	run_loop(epfd, cl, -1, now_ms() + 300, &ticks, &worst);
	pthread_join(th, NULL);
	assert_int_equal(r.done, 1);
	assert_int_equal(r.res, CURLE_OK);
	assert_int_equal(r.status, 200);
	curl_loop_cancel(cl, cancelled);
	curl_easy_cleanup(cancelled);
	assert_int_equal(r2.done, 0);
	/* freeing with a transfer in flight: its callback says so */
	assert_int_equal(curl_loop_add(cl, easy_for(silent_port, 5000), on_done, &r3), 0);
	curl_loop_free(cl);
	assert_int_equal(r3.done, 1);
	assert_int_equal(r3.res, CURLE_ABORTED_BY_CALLBACK);
	close(lfd);
	close(silent);
	close(epfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_silent_server_does_not_block),
		cmocka_unit_test(test_answer_and_cancel_and_free),
	};

	curl_global_init(CURL_GLOBAL_DEFAULT);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

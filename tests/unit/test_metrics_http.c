// SPDX-License-Identifier: GPL-2.0
/* metrics-http.c: the listen setting and a real endpoint, driven the way the daemon's epoll loop drives it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <math.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "metrics-http.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

static int setup(void **state)
{
	(void)state;
	metrics_reset();
	metrics_server_stop();
	log_setup(LOG_CRIT, LOG_TARGET_STDERR); /* the capacity tests warn on purpose */
	return 0;
}

static _unused_ char *render(void)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(metrics_render(&text, &len), 0);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	return text;
}

static void test_parse_listen(void **state)
{
	static const struct {
		const char *text;
		int r;
		bool enabled;
		int family;
		const char *addr;
		int port;
	} cases[] = {
		{ NULL, 0, true, AF_INET, "127.0.0.1", 9464 },
		{ "127.0.0.1:9464", 0, true, AF_INET, "127.0.0.1", 9464 },
		{ "0.0.0.0:80", 0, true, AF_INET, "0.0.0.0", 80 },
		{ "9100", 0, true, AF_INET, "127.0.0.1", 9100 },
		{ "0", 0, true, AF_INET, "127.0.0.1", 0 },
		{ "[::1]:9464", 0, true, AF_INET6, "::1", 9464 },
		{ "[::]:1", 0, true, AF_INET6, "::", 1 },
		{ "off", 0, false, 0, NULL, 0 },
		{ "OFF", 0, false, 0, NULL, 0 },
		{ "no", 0, false, 0, NULL, 0 },
		{ "", 0, false, 0, NULL, 0 },
		{ "localhost:9464", -EINVAL, false, 0, NULL, 0 },
		{ "127.0.0.1:", -EINVAL, false, 0, NULL, 0 },
		{ "127.0.0.1:65536", -EINVAL, false, 0, NULL, 0 },
		{ "127.0.0.1:-1", -EINVAL, false, 0, NULL, 0 },
		{ "127.0.0.1:9x", -EINVAL, false, 0, NULL, 0 },
		{ ":9464", -EINVAL, false, 0, NULL, 0 },
		{ "::1:9464", -EINVAL, false, 0, NULL, 0 },
		{ "[::1]9464", -EINVAL, false, 0, NULL, 0 },
		{ "[::1:9464", -EINVAL, false, 0, NULL, 0 },
		{ "[]:9464", -EINVAL, false, 0, NULL, 0 },
		{ "[127.0.0.1]:9464", -EINVAL, false, 0, NULL, 0 },
		{ "yes", -EINVAL, false, 0, NULL, 0 },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct sockaddr_storage ss;
		socklen_t len = 0;
		bool enabled = !cases[i].enabled;
		char text[INET6_ADDRSTRLEN];
		int r;

		r = metrics_parse_listen(cases[i].text, &ss, &len, &enabled);
		if (r != cases[i].r)
			fail_msg("'%s': got %d, want %d", cases[i].text ? cases[i].text : "(null)", r, cases[i].r);
		if (r < 0)
			continue;
		assert_int_equal(enabled, cases[i].enabled);
		if (!enabled)
			continue;
		assert_int_equal(ss.ss_family, cases[i].family);
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *sa = (struct sockaddr_in *)&ss;

			assert_int_equal(len, sizeof(*sa));
			assert_non_null(inet_ntop(AF_INET, &sa->sin_addr, text, sizeof(text)));
			assert_int_equal(ntohs(sa->sin_port), cases[i].port);
		} else {
			struct sockaddr_in6 *sa = (struct sockaddr_in6 *)&ss;

			assert_int_equal(len, sizeof(*sa));
			assert_non_null(inet_ntop(AF_INET6, &sa->sin6_addr, text, sizeof(text)));
			assert_int_equal(ntohs(sa->sin6_port), cases[i].port);
		}
		assert_string_equal(text, cases[i].addr);
	}
}

/* ---- a real server, driven the way the daemon's epoll loop drives it ---- */

struct reply {
	char body[8192];
	size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct reply *r = userdata;
	size_t n = size * nmemb;

	if (r->len + n >= sizeof(r->body))
		return 0;
	memcpy(r->body + r->len, ptr, n);
	r->len += n;
	r->body[r->len] = '\0';
	return n;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Performs one request with curl's multi interface while an outer epoll, like loop.c's, wakes the server. */
static long fetch(const char *method, const char *path, struct reply *reply, char *ret_ctype, size_t ctype_size)
{
	struct epoll_event ev = { .events = EPOLLIN };
	char url[128];
	CURLM *multi;
	CURL *easy;
	int running = 1, epfd, mfd;
	uint64_t deadline = now_ms() + 5000;
	long status = 0;
	char *ctype = NULL;

	memset(reply, 0, sizeof(*reply));
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", metrics_server_port(), path);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	assert_true(epfd >= 0);
	mfd = metrics_server_fd();
	assert_true(mfd >= 0);
	ev.data.fd = mfd;
	assert_int_equal(epoll_ctl(epfd, EPOLL_CTL_ADD, mfd, &ev), 0);

	easy = curl_easy_init();
	multi = curl_multi_init();
	assert_non_null(easy);
	assert_non_null(multi);
	curl_easy_setopt(easy, CURLOPT_URL, url);
	curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, reply);
	curl_easy_setopt(easy, CURLOPT_NOPROXY, "*");
	curl_multi_add_handle(multi, easy);

	while (running && now_ms() < deadline) {
		struct epoll_event out;
		int timeout = metrics_server_timeout_ms(), n;

		if (timeout < 0 || timeout > 5)
			timeout = 5; /* curl's side of the conversation is polled */
		n = epoll_wait(epfd, &out, 1, timeout);
		assert_true(n >= 0);
		if (n > 0 || metrics_server_timeout_ms() == 0)
			assert_int_equal(metrics_server_process(), 0);
		curl_multi_perform(multi, &running);
	}
	assert_int_equal(running, 0);
	curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(easy, CURLINFO_CONTENT_TYPE, &ctype);
	snprintf(ret_ctype, ctype_size, "%s", ctype ? ctype : "");
	curl_multi_remove_handle(multi, easy);
	curl_easy_cleanup(easy);
	curl_multi_cleanup(multi);
	close(epfd);
	return status;
}

static void test_server(void **state)
{
	struct reply reply;
	char ctype[128];
	char *text;
	size_t len;

	(void)state;
	assert_int_equal(metrics_server_fd(), -ENOTCONN);
	assert_int_equal(metrics_server_port(), -ENOTCONN);
	assert_int_equal(metrics_server_process(), -ENOTCONN);
	assert_int_equal(metrics_server_timeout_ms(), -1);

	assert_int_equal(metrics_describe_oomsentry(), 0);
	assert_int_equal(metrics_add_counter(METRIC_OOM_KILLS_TOTAL, "cgroup=\"/comfy\"", 1), 0);
	assert_int_equal(metrics_set_gauge(METRIC_FORECAST_GENERATIONS_LEFT, "instance=\"default\"", 2.5), 0);

	assert_int_equal(metrics_server_start("127.0.0.1:0"), 1);
	assert_int_equal(metrics_server_start("127.0.0.1:0"), -EALREADY);
	assert_true(metrics_server_port() > 0);

	assert_int_equal(fetch("GET", "/metrics", &reply, ctype, sizeof(ctype)), 200);
	assert_string_equal(ctype, METRICS_CONTENT_TYPE);
	assert_string_equal(reply.body, "# HELP oomsentry_forecast_generations_left Generations left before the "
					"forecast reaches the limit.\n"
					"# TYPE oomsentry_forecast_generations_left gauge\n"
					"oomsentry_forecast_generations_left{instance=\"default\"} 2.5\n"
					"# HELP oomsentry_oom_kills_total OOM kills observed, by the victim's cgroup.\n"
					"# TYPE oomsentry_oom_kills_total counter\n"
					"oomsentry_oom_kills_total{cgroup=\"/comfy\"} 1\n");
	assert_int_equal(metrics_render(&text, &len), 0);
	assert_int_equal(reply.len, len);
	free(text);

	/* The reply follows the registry between scrapes. */
	assert_int_equal(metrics_add_counter(METRIC_OOM_KILLS_TOTAL, "cgroup=\"/comfy\"", 1), 0);
	assert_int_equal(fetch("GET", "/metrics", &reply, ctype, sizeof(ctype)), 200);
	assert_non_null(strstr(reply.body, "oomsentry_oom_kills_total{cgroup=\"/comfy\"} 2\n"));

	assert_int_equal(fetch("GET", "/", &reply, ctype, sizeof(ctype)), 404);
	assert_int_equal(fetch("GET", "/metrics/x", &reply, ctype, sizeof(ctype)), 404);
	assert_int_equal(fetch("POST", "/metrics", &reply, ctype, sizeof(ctype)), 405);
	assert_int_equal(fetch("DELETE", "/metrics", &reply, ctype, sizeof(ctype)), 405);

	metrics_server_stop();
	metrics_server_stop();
	assert_int_equal(metrics_server_fd(), -ENOTCONN);
}

static void test_server_off_and_errors(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t len = sizeof(sa);
	char listen_text[64];
	int fd;

	(void)state;
	assert_int_equal(metrics_server_start("off"), 0);
	assert_int_equal(metrics_server_fd(), -ENOTCONN);
	assert_int_equal(metrics_server_start("nonsense:x"), -EINVAL);
	assert_int_equal(metrics_server_fd(), -ENOTCONN);

	/* A port someone else listens on is reported as such, not as a generic failure. */
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(listen_text, sizeof(listen_text), "127.0.0.1:%u", ntohs(sa.sin_port));
	assert_int_equal(metrics_server_start(listen_text), -EADDRINUSE);
	assert_int_equal(metrics_server_fd(), -ENOTCONN);
	close(fd);

	/* Loopback IPv6 works when the host has it; skip quietly otherwise. */
	if (metrics_server_start("[::1]:0") == 1) {
		assert_true(metrics_server_port() > 0);
		metrics_server_stop();
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_parse_listen, setup),
		cmocka_unit_test_setup(test_server, setup),
		cmocka_unit_test_setup(test_server_off_and_errors, setup),
	};
	int r;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	r = cmocka_run_group_tests(tests, NULL, NULL);
	metrics_reset();
	curl_global_cleanup();
	return r;
}

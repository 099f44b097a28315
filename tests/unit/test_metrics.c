// SPDX-License-Identifier: GPL-2.0
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

static char *render(void)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(metrics_render(&text, &len), 0);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	return text;
}

static void test_render_exact(void **state)
{
	char labels[METRICS_LABELS_MAX];
	char *text;

	(void)state;
	assert_int_equal(metrics_describe_oomsentry(), 0);
	assert_int_equal(metrics_add_counter(METRIC_EVENTS_TOTAL, "type=\"exec\"", 1), 0);
	assert_int_equal(metrics_add_counter(METRIC_EVENTS_TOTAL, "type=\"oom\"", 1), 0);
	assert_int_equal(metrics_add_counter(METRIC_EVENTS_TOTAL, "type=\"exec\"", 2), 0);
	assert_int_equal(metrics_set_gauge(METRIC_TRACKED_PROCESSES, NULL, 7), 0);
	assert_int_equal(metrics_set_gauge(METRIC_TRACKED_PROCESSES, "", 5), 0);
	assert_true(metrics_labels(labels, sizeof(labels), "instance", "default", NULL) > 0);
	assert_int_equal(metrics_set_gauge(METRIC_MEMORY_USAGE_BYTES, labels, 8589934592.0), 0);
	assert_true(metrics_labels(labels, sizeof(labels), "instance", "default", "action", "unload_models", "result",
				   "ok", NULL) > 0);
	assert_int_equal(metrics_add_counter(METRIC_ACTIONS_TOTAL, labels, 1), 0);
	/* Undescribed family: TYPE from the first use, no HELP line. */
	assert_int_equal(metrics_set_gauge("oomsentry_test_ratio", NULL, 0.25), 0);

	text = render();
	assert_string_equal(text,
			    "# HELP oomsentry_events_total Events received from the kernel probes, by type.\n"
			    "# TYPE oomsentry_events_total counter\n"
			    "oomsentry_events_total{type=\"exec\"} 3\n"
			    "oomsentry_events_total{type=\"oom\"} 1\n"
			    "# HELP oomsentry_tracked_processes Processes currently tracked.\n"
			    "# TYPE oomsentry_tracked_processes gauge\n"
			    "oomsentry_tracked_processes 5\n"
			    "# HELP oomsentry_memory_usage_bytes Memory charged to the instance's cgroup.\n"
			    "# TYPE oomsentry_memory_usage_bytes gauge\n"
			    "oomsentry_memory_usage_bytes{instance=\"default\"} 8589934592\n"
			    "# HELP oomsentry_actions_total Prevention actions taken, by action and result.\n"
			    "# TYPE oomsentry_actions_total counter\n"
			    "oomsentry_actions_total{instance=\"default\",action=\"unload_models\",result=\"ok\"} 1\n"
			    "# TYPE oomsentry_test_ratio gauge\n"
			    "oomsentry_test_ratio 0.25\n");
	free(text);
}

static void test_render_empty(void **state)
{
	char *text;

	(void)state;
	text = render();
	assert_string_equal(text, "");
	free(text);
	/* Described families without series stay out of the reply. */
	assert_int_equal(metrics_describe_oomsentry(), 0);
	text = render();
	assert_string_equal(text, "");
	free(text);
}

static void test_value_format(void **state)
{
	static const struct {
		double value;
		const char *text;
	} cases[] = {
		{ 0, "0" },
		{ -0.0, "0" },
		{ 1, "1" },
		{ -3, "-3" },
		{ 1.5, "1.5" },
		{ 0.1, "0.1" },
		{ 1.0 / 3, "0.33333333333333331" },
		{ 8589934592.0, "8589934592" },
		{ 1e20, "1e+20" },
		{ 123456789012345678.0, "1.2345678901234568e+17" },
		{ NAN, "NaN" },
		{ INFINITY, "+Inf" },
		{ -INFINITY, "-Inf" },
	};
	char expected[128];
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		char *text;

		metrics_reset();
		assert_int_equal(metrics_set_gauge("g", NULL, cases[i].value), 0);
		text = render();
		snprintf(expected, sizeof(expected), "# TYPE g gauge\ng %s\n", cases[i].text);
		assert_string_equal(text, expected);
		free(text);
	}
}

static void test_label_escaping(void **state)
{
	char labels[METRICS_LABELS_MAX];
	char small[8];
	char *text;
	double v;

	(void)state;
	assert_int_equal(metrics_labels(labels, sizeof(labels), "instance", "a\"b\\c\nd", NULL), 21);
	assert_string_equal(labels, "instance=\"a\\\"b\\\\c\\nd\"");
	/* Invalid UTF-8 becomes '?', valid multibyte text passes through. */
	assert_int_equal(metrics_labels(labels, sizeof(labels), "cgroup", "/x\xff\xc3\xa9", NULL), 14);
	assert_string_equal(labels, "cgroup=\"/x?\xc3\xa9\"");
	assert_int_equal(metrics_labels(labels, sizeof(labels), NULL), 0);
	assert_string_equal(labels, "");

	assert_int_equal(metrics_labels(labels, sizeof(labels), "bad-name", "x", NULL), -EINVAL);
	assert_int_equal(metrics_labels(labels, sizeof(labels), "9x", "x", NULL), -EINVAL);
	assert_int_equal(metrics_labels(labels, sizeof(labels), "a", (const char *)NULL, NULL), -EINVAL);
	assert_int_equal(metrics_labels(small, sizeof(small), "instance", "x", NULL), -ENOBUFS);
	assert_string_equal(small, "");

	assert_int_equal(metrics_labels(labels, sizeof(labels), "instance", "a\"b\\c\nd", "status", "ok", NULL), 33);
	assert_int_equal(metrics_add_counter(METRIC_GENERATIONS_TOTAL, labels, 2), 0);
	assert_int_equal(metrics_get(METRIC_GENERATIONS_TOTAL, labels, &v), 0);
	assert_true(v == 2);
	assert_int_equal(metrics_describe(METRIC_GENERATIONS_TOTAL, METRIC_COUNTER, "Help with \\ and\nnewline."), 0);
	text = render();
	assert_string_equal(text, "# HELP oomsentry_generations_total Help with \\\\ and\\nnewline.\n"
				  "# TYPE oomsentry_generations_total counter\n"
				  "oomsentry_generations_total{instance=\"a\\\"b\\\\c\\nd\",status=\"ok\"} 2\n");
	free(text);
}

static void test_label_validation(void **state)
{
	static const struct {
		const char *labels;
		int expected;
	} cases[] = {
		{ "a=\"b\"", 0 },
		{ "a=\"b\",c_2=\"\"", 0 },
		{ "a=\"x\\\"y\\\\z\\n\"", 0 },
		{ "_a=\"\xc3\xa9\"", 0 },
		{ "a=b", -EINVAL },
		{ "a=\"b", -EINVAL },
		{ "a=\"b\",", -EINVAL },
		{ "a=\"b\"c=\"d\"", -EINVAL },
		{ "=\"b\"", -EINVAL },
		{ "1a=\"b\"", -EINVAL },
		{ "a-b=\"c\"", -EINVAL },
		{ "a=\"b\nc\"", -EINVAL },
		{ "a=\"b\\tc\"", -EINVAL },
		{ "a:b=\"c\"", -EINVAL },
		{ "{a=\"b\"}", -EINVAL },
		{ "a=\"b\" ", -EINVAL },
	};
	size_t i;

	(void)state;
	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = metrics_set_gauge("g", cases[i].labels, 1);

		if (r != cases[i].expected)
			fail_msg("labels '%s': got %d, want %d", cases[i].labels, r, cases[i].expected);
	}
}

static void test_name_validation(void **state)
{
	char long_name[METRICS_NAME_MAX + 1];
	char long_help[METRICS_HELP_MAX + 1];

	(void)state;
	assert_int_equal(metrics_set_gauge(NULL, NULL, 1), -EINVAL);
	assert_int_equal(metrics_set_gauge("", NULL, 1), -EINVAL);
	assert_int_equal(metrics_set_gauge("1abc", NULL, 1), -EINVAL);
	assert_int_equal(metrics_set_gauge("a-b", NULL, 1), -EINVAL);
	assert_int_equal(metrics_set_gauge("ns:sub_name", NULL, 1), 0);
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_int_equal(metrics_set_gauge(long_name, NULL, 1), -EINVAL);
	long_name[METRICS_NAME_MAX - 1] = '\0';
	assert_int_equal(metrics_set_gauge(long_name, NULL, 1), 0);
	memset(long_help, 'h', sizeof(long_help) - 1);
	long_help[sizeof(long_help) - 1] = '\0';
	assert_int_equal(metrics_describe("x", METRIC_GAUGE, long_help), -EINVAL);
	assert_int_equal(metrics_describe("x", (enum metric_type)7, "h"), -EINVAL);
}

static void test_counter_semantics(void **state)
{
	double v = -1;

	(void)state;
	assert_int_equal(metrics_add_counter("c_total", NULL, 1.5), 0);
	assert_int_equal(metrics_add_counter("c_total", NULL, 2), 0);
	assert_int_equal(metrics_get("c_total", NULL, &v), 0);
	assert_true(v == 3.5);
	assert_int_equal(metrics_add_counter("c_total", NULL, -1), -EINVAL);
	assert_int_equal(metrics_add_counter("c_total", NULL, NAN), -EINVAL);
	assert_int_equal(metrics_get("c_total", NULL, &v), 0);
	assert_true(v == 3.5);
	/* Absolute counters (BPF stats): set, and a reset of the source is accepted. */
	assert_int_equal(metrics_set_counter("c_total", NULL, 10), 0);
	assert_int_equal(metrics_get("c_total", NULL, &v), 0);
	assert_true(v == 10);
	assert_int_equal(metrics_set_counter("c_total", NULL, 4), 0);
	assert_int_equal(metrics_get("c_total", NULL, &v), 0);
	assert_true(v == 4);
	assert_int_equal(metrics_set_counter("c_total", NULL, -1), -EINVAL);
	assert_int_equal(metrics_set_counter("c_total", NULL, NAN), -EINVAL);
	assert_int_equal(metrics_set_counter("g_other", NULL, 1), 0);
	assert_int_equal(metrics_set_gauge("g_other", NULL, 1), -EINVAL);
	/* Type clashes are refused both ways. */
	assert_int_equal(metrics_set_gauge("c_total", NULL, 1), -EINVAL);
	assert_int_equal(metrics_describe("c_total", METRIC_GAUGE, "x"), -EINVAL);
	assert_int_equal(metrics_set_gauge("g", NULL, 1), 0);
	assert_int_equal(metrics_add_counter("g", NULL, 1), -EINVAL);
	/* A described family without series may still change type. */
	assert_int_equal(metrics_describe("later", METRIC_GAUGE, "x"), 0);
	assert_int_equal(metrics_describe("later", METRIC_COUNTER, "y"), 0);
	assert_int_equal(metrics_add_counter("later", NULL, 1), 0);

	assert_int_equal(metrics_get("nope", NULL, &v), -ENOENT);
	assert_int_equal(metrics_get("c_total", "a=\"b\"", &v), -ENOENT);
	assert_int_equal(metrics_get("bad name", NULL, &v), -EINVAL);
	assert_int_equal(metrics_render(NULL, NULL), -EINVAL);
}

static void test_capacity(void **state)
{
	char labels[METRICS_LABELS_MAX];
	char name[32];
	unsigned i;
	char *text;
	double v;

	(void)state;
	for (i = 0; i < METRICS_MAX_SERIES; i++) {
		assert_true(metrics_labels(labels, sizeof(labels), "i", (snprintf(name, sizeof(name), "%u", i), name),
					   NULL) > 0);
		assert_int_equal(metrics_set_gauge("many", labels, i), 0);
	}
	assert_int_equal(metrics_set_gauge("many", "i=\"overflow\"", 1), -ENOSPC);
	assert_int_equal(metrics_add_counter("other_total", NULL, 1), -ENOSPC);
	/* Existing series keep working. */
	assert_int_equal(metrics_set_gauge("many", "i=\"511\"", 42), 0);
	assert_int_equal(metrics_get("many", "i=\"511\"", &v), 0);
	assert_true(v == 42);
	text = render();
	assert_non_null(strstr(text, "many{i=\"0\"} 0\nmany{i=\"1\"} 1\n"));
	assert_non_null(strstr(text, "many{i=\"511\"} 42\n"));
	assert_null(strstr(text, "overflow"));
	free(text);

	metrics_reset();
	for (i = 0; i < METRICS_MAX_FAMILIES; i++) {
		snprintf(name, sizeof(name), "fam_%u", i);
		assert_int_equal(metrics_describe(name, METRIC_GAUGE, NULL), 0);
	}
	assert_int_equal(metrics_describe("fam_extra", METRIC_GAUGE, NULL), -ENOSPC);
	assert_int_equal(metrics_set_gauge("fam_extra", NULL, 1), -ENOSPC);
	assert_int_equal(metrics_set_gauge("fam_63", NULL, 1), 0);
	text = render();
	assert_string_equal(text, "# TYPE fam_63 gauge\nfam_63 1\n");
	free(text);
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
		cmocka_unit_test_setup(test_render_exact, setup),
		cmocka_unit_test_setup(test_render_empty, setup),
		cmocka_unit_test_setup(test_value_format, setup),
		cmocka_unit_test_setup(test_label_escaping, setup),
		cmocka_unit_test_setup(test_label_validation, setup),
		cmocka_unit_test_setup(test_name_validation, setup),
		cmocka_unit_test_setup(test_counter_semantics, setup),
		cmocka_unit_test_setup(test_capacity, setup),
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

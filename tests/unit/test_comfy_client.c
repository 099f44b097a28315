// SPDX-License-Identifier: GPL-2.0
/* comfy-client.c: the libcurl transport against tiny HTTP servers running in a thread of this test (no simulator
 * needed). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <pthread.h>
#include <poll.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "comfy.h"
#include "comfy-client.h"
#include "common.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

#include "comfy-fixtures.h"

/* ======================================================================================================= */
/* In-process HTTP servers                                                                                  */
/* ======================================================================================================= */

enum srv_mode {
	SRV_ROUTES,   /* answer by route table, keep-alive */
	SRV_SILENT,   /* read the request, never answer */
	SRV_RAW,      /* send `raw` verbatim, close */
	SRV_BIG,      /* stream big_bytes of JSON-ish filler, close */
};

struct route {
	const char *method;
	const char *path;
	int status;
	const char *body;
};

struct req {
	char method[16];
	char path[512];
	char headers[8192];
	char body[65536];
	size_t body_len;
};

struct srv {
	int lfd;
	int port;
	pthread_t thread;
	atomic_bool stop;
	pthread_mutex_t lock;
	/* set by the test (under lock once the thread runs) */
	enum srv_mode mode;
	const struct route *routes;
	size_t n_routes;
	const char *raw;
	size_t raw_len;
	size_t big_bytes;
	bool big_content_length;
	/* recorded by the server */
	struct req last;
	int n_requests;
	int n_connections;
	size_t big_sent;
};

static bool send_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		p += n;
		len -= (size_t)n;
	}
	return true;
}

static bool wait_readable(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, ms) > 0;
}

/* Reads one request; 1 on success, 0 on EOF/error. */
static int read_request(int fd, struct req *r)
{
	char buf[16384];
	size_t len = 0, hdr_len, cl = 0;
	char *end, *p;

	memset(r, 0, sizeof(*r));
	for (;;) {
		ssize_t n;

		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end)
			break;
		if (len + 1 >= sizeof(buf) || !wait_readable(fd, 5000))
			return 0;
		n = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (n <= 0)
			return 0;
		len += (size_t)n;
	}
	hdr_len = (size_t)(end - buf) + 4;
	if (sscanf(buf, "%15s %511s", r->method, r->path) != 2)
		return 0;
	snprintf(r->headers, sizeof(r->headers), "%.*s", (int)hdr_len, buf);
	for (p = r->headers; (p = strchr(p, '\n')); p++)
		if (strncasecmp(p + 1, "Content-Length:", 15) == 0)
			cl = strtoul(p + 16, NULL, 10);
	if (cl >= sizeof(r->body))
		return 0;
	r->body_len = MIN(len - hdr_len, cl);
	memcpy(r->body, buf + hdr_len, r->body_len);
	while (r->body_len < cl) {
		ssize_t n;

		if (!wait_readable(fd, 5000))
			return 0;
		n = recv(fd, r->body + r->body_len, cl - r->body_len, 0);
		if (n <= 0)
			return 0;
		r->body_len += (size_t)n;
	}
	r->body[r->body_len] = '\0';
	return 1;
}

/* Returns whether to keep the connection open. */
static bool serve(struct srv *s, int fd, const struct req *r)
{
	enum srv_mode mode;
	char head[512];

	pthread_mutex_lock(&s->lock);
	mode = s->mode;
	pthread_mutex_unlock(&s->lock);

	switch (mode) {
	case SRV_SILENT:
		while (!atomic_load(&s->stop) && wait_readable(fd, 5000)) {
			char c[256];

			if (recv(fd, c, sizeof(c), 0) <= 0)
				break;
		}
		return false;
	case SRV_RAW:
		send_all(fd, s->raw, s->raw_len);
		return false;
	case SRV_BIG: {
		static char chunk[65536];
		size_t sent = 0;
		int n;

		memset(chunk, ' ', sizeof(chunk));
		if (s->big_content_length)
			n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				     "Content-Length: %zu\r\n\r\n", s->big_bytes);
		else
			n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
				     "Connection: close\r\n\r\n");
		if (send_all(fd, head, (size_t)n))
			while (sent < s->big_bytes && send_all(fd, chunk, MIN(sizeof(chunk), s->big_bytes - sent)))
				sent += MIN(sizeof(chunk), s->big_bytes - sent);
		pthread_mutex_lock(&s->lock);
		s->big_sent = sent;
		pthread_mutex_unlock(&s->lock);
		return false;
	}
	case SRV_ROUTES:
	default:
		for (size_t i = 0; i < s->n_routes; i++) {
			const struct route *rt = &s->routes[i];
			size_t blen = rt->body ? strlen(rt->body) : 0;
			int n;

			if (strcmp(rt->method, r->method) != 0 || strcmp(rt->path, r->path) != 0)
				continue;
			n = snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: application/json\r\n"
				     "Content-Length: %zu\r\n\r\n", rt->status, blen);
			return send_all(fd, head, (size_t)n) && send_all(fd, rt->body ? rt->body : "", blen);
		}
		static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 14\r\n\r\n404: Not Found";
		return send_all(fd, nf, sizeof(nf) - 1);
	}
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;
	int cfd = -1;

	while (!atomic_load(&s->stop)) {
		struct pollfd p[2] = { { .fd = s->lfd, .events = POLLIN }, { .fd = cfd, .events = POLLIN } };
		struct req *r;

		if (poll(p, cfd >= 0 ? 2 : 1, 20) <= 0)
			continue;
		if (p[0].revents & POLLIN) {
			int nfd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);

			if (nfd < 0)
				continue;
			if (cfd >= 0)
				close(cfd);
			cfd = nfd;
			pthread_mutex_lock(&s->lock);
			s->n_connections++;
			pthread_mutex_unlock(&s->lock);
			continue;
		}
		if (cfd < 0 || !p[1].revents)
			continue;
		r = malloc(sizeof(*r));
		assert_non_null(r);
		if (!read_request(cfd, r)) {
			free(r);
			close(cfd);
			cfd = -1;
			continue;
		}
		pthread_mutex_lock(&s->lock);
		s->last = *r;
		s->n_requests++;
		pthread_mutex_unlock(&s->lock);
		if (!serve(s, cfd, r)) {
			close(cfd);
			cfd = -1;
		}
		free(r);
	}
	if (cfd >= 0)
		close(cfd);
	return NULL;
}

static int listen_any(int *ret_port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t alen = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 16), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
	*ret_port = ntohs(a.sin_port);
	return fd;
}

static struct srv *srv_start(enum srv_mode mode)
{
	struct srv *s = calloc(1, sizeof(*s));

	assert_non_null(s);
	s->mode = mode;
	s->lfd = listen_any(&s->port);
	pthread_mutex_init(&s->lock, NULL);
	atomic_init(&s->stop, false);
	assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
	return s;
}

static void srv_stop(struct srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->thread, NULL);
	close(s->lfd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static void srv_set_raw(struct srv *s, const char *raw)
{
	pthread_mutex_lock(&s->lock);
	s->mode = SRV_RAW;
	s->raw = raw;
	s->raw_len = strlen(raw);
	pthread_mutex_unlock(&s->lock);
}

static struct req srv_last(struct srv *s, int *ret_n_requests)
{
	struct req r;

	pthread_mutex_lock(&s->lock);
	r = s->last;
	if (ret_n_requests)
		*ret_n_requests = s->n_requests;
	pthread_mutex_unlock(&s->lock);
	return r;
}

static struct comfy_client *client_for(int port, const char *prefix, int total_ms, const char *auth)
{
	char url[128];
	struct comfy_client *c = NULL;
	struct comfy_config cfg = { .base_url = url, .total_timeout_ms = total_ms, .auth_header = auth };

	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, prefix ? prefix : "");
	assert_int_equal(comfy_client_new(&cfg, &c), 0);
	assert_non_null(c);
	return c;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Parses a request body, checks it is an object with exactly the given keys (NULL-terminated). */
static json_object *body_with_keys(const struct req *r, ...)
{
	json_object *o = json_tokener_parse(r->body);
	size_t n = 0;
	va_list ap;
	const char *k;

	if (!o || !json_object_is_type(o, json_type_object))
		fail_msg("request body is not a JSON object: '%s'", r->body);
	va_start(ap, r);
	while ((k = va_arg(ap, const char *))) {
		if (!json_object_object_get_ex(o, k, NULL))
			fail_msg("request body lacks key '%s': %s", k, r->body);
		n++;
	}
	va_end(ap);
	if ((size_t)json_object_object_length(o) != n)
		fail_msg("request body has %d keys, want %zu: %s", json_object_object_length(o), n, r->body);
	return o;
}

static bool body_bool(json_object *o, const char *key)
{
	json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_boolean));
	return json_object_get_boolean(v);
}

/* ======================================================================================================= */
/* Transport tests                                                                                          */
/* ======================================================================================================= */

static void test_client_new_validation(void **state)
{
	static const char *const bad_urls[] = {
		"ftp://127.0.0.1:8188", "file:///etc/passwd", "http://", "not a url", "http://h:1/x?q=1",
		"http://h:1/#frag", "127.0.0.1:8188", "http://h:99999", "",
	};
	static const char *const bad_auth[] = {
		"Authorization Bearer x", ": x", "Auth orization: x", "X: a\r\nY: b", "X: a\n",
	};
	struct comfy_client *c = (void *)1;
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(bad_urls); i++) {
		struct comfy_config cfg = { .base_url = bad_urls[i] };

		if (comfy_client_new(&cfg, &c) != -EINVAL)
			fail_msg("URL '%s' accepted", bad_urls[i]);
		assert_null(c);
	}
	for (size_t i = 0; i < ARRAY_SIZE(bad_auth); i++) {
		struct comfy_config cfg = { .auth_header = bad_auth[i] };

		if (comfy_client_new(&cfg, &c) != -EINVAL)
			fail_msg("auth header '%s' accepted", bad_auth[i]);
	}
	assert_int_equal(comfy_client_new(NULL, NULL), -EINVAL);

	assert_int_equal(comfy_client_new(NULL, &c), 0);
	assert_string_equal(comfy_client_authority(c), "127.0.0.1:8188");
	assert_string_equal(comfy_last_error(c), "");
	c = comfy_client_free(c);
	assert_null(c);
	assert_null(comfy_client_free(NULL));

	struct comfy_config https = { .base_url = "https://comfy.example:443/api/", .auth_header = "X-Key: v" };
	assert_int_equal(comfy_client_new(&https, &c), 0);
	assert_string_equal(comfy_client_authority(c), "comfy.example:443");
	c = comfy_client_free(c);
	struct comfy_config v6 = { .base_url = "http://[::1]:8190" };
	assert_int_equal(comfy_client_new(&v6, &c), 0);
	assert_string_equal(comfy_client_authority(c), "[::1]:8190");
	c = comfy_client_free(c);
}

static void test_connection_refused(void **state)
{
	struct comfy_client *c;
	struct comfy_queue q;
	char want[128];
	int port, fd;
	(void)state;

	/* A port that was just free: nobody listens. */
	fd = listen_any(&port);
	close(fd);
	c = client_for(port, NULL, 0, NULL);
	assert_int_equal(comfy_get_queue(c, &q), -ECONNREFUSED);
	snprintf(want, sizeof(want), "connection refused to 127.0.0.1:%d", port);
	assert_string_equal(comfy_last_error(c), want);
	assert_int_equal(q.n_running + q.n_pending, 0);
	comfy_queue_free(&q);
	assert_int_equal(comfy_free(c, true, false), -ECONNREFUSED);
	comfy_client_free(c);
}

static void test_timeout(void **state)
{
	struct srv *s = srv_start(SRV_SILENT);
	struct comfy_client *c = client_for(s->port, NULL, 300, NULL);
	struct comfy_history_item h;
	int64_t t0, dt;
	(void)state;

	t0 = now_ms();
	assert_int_equal(comfy_get_history_item(c, "abc", &h), -ETIMEDOUT);
	dt = now_ms() - t0;
	assert_true(dt >= 250);
	assert_true(dt < 1500);
	assert_string_equal(comfy_last_error(c), "timeout after 300 ms on /history/abc");
	assert_false(h.found);
	comfy_client_free(c);
	srv_stop(s);
}

struct raw_case {
	const char *name;
	const char *raw;
	int rc;
	const char *error;       /* exact, "%d" replaced by the port where present */
};

static const struct raw_case raw_cases[] = {
	{ "truncated JSON", "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n"
			    "{\"queue_running\": [[1, \"ab",
	  -EPROTO, "reply from /queue is not JSON: unexpected end of data at byte 26" },
	{ "body shorter than Content-Length", "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"queue_run",
	  -EPROTO, "reply from /queue truncated after 11 bytes" },
	{ "close-delimited truncated JSON", "HTTP/1.0 200 OK\r\n\r\n{\"queue_running\": []",
	  -EPROTO, "reply from /queue is not JSON: unexpected end of data at byte 20" },
	{ "truncated after a value", "HTTP/1.1 200 OK\r\nContent-Length: 18\r\n\r\n{\"queue_running\":1",
	  -EPROTO, "reply from /queue is not JSON: unexpected end of data at byte 18" },
	{ "wrong types", "HTTP/1.1 200 OK\r\nContent-Length: 42\r\n\r\n{\"queue_running\": {}, \"queue_pending\": []}",
	  -EPROTO, "unexpected reply from /queue: queue_running: expected array, got object" },
	{ "empty 200", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", -EPROTO, "reply from /queue is not JSON: empty" },
	{ "HTTP 500", "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\nContent-Length: 55\r\n\r\n"
		      "500 Internal Server Error\n\nServer got itself in trouble",
	  -EBADMSG, "HTTP 500 from /queue: 500 Internal Server Error" },
	{ "HTTP 404 empty", "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", -EBADMSG, "HTTP 404 from /queue" },
	{ "HTTP 403", "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", -EACCES,
	  "HTTP 403 from /queue (auth header missing or rejected)" },
	{ "redirect", "HTTP/1.1 302 Found\r\nLocation: http://192.0.2.1:8188/queue\r\nContent-Length: 0\r\n\r\n",
	  -EBADMSG, "HTTP 302 from /queue: redirect to http://192.0.2.1:8188/queue not followed" },
	{ "not HTTP", "SSH-2.0-OpenSSH_9.2\r\n", -EPROTO, NULL },
	{ "closed without reply", "", -ECONNRESET, "127.0.0.1:%d closed the connection without replying to /queue" },
};

static void test_bad_servers(void **state)
{
	struct srv *s = srv_start(SRV_RAW);
	struct comfy_client *c = client_for(s->port, NULL, 2000, NULL);
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(raw_cases); i++) {
		const struct raw_case *rc = &raw_cases[i];
		struct comfy_queue q;
		char want[256];
		int r, n;

		srv_set_raw(s, rc->raw);
		r = comfy_get_queue(c, &q);
		if (r != rc->rc)
			fail_msg("case '%s': got %d (%s), want %d", rc->name, r, comfy_last_error(c), rc->rc);
		if (rc->error) {
			snprintf(want, sizeof(want), rc->error, s->port);
			if (strcmp(comfy_last_error(c), want) != 0)
				fail_msg("case '%s': got '%s', want '%s'", rc->name, comfy_last_error(c), want);
		} else {
			assert_true(strlen(comfy_last_error(c)) > 0);
		}
		assert_null(q.running);
		comfy_queue_free(&q);
		/* Redirects are not followed: the server saw exactly one request per case. */
		srv_last(s, &n);
		assert_int_equal(n, (int)i + 1);
	}
	comfy_client_free(c);
	srv_stop(s);
}

static void test_reply_too_big(void **state)
{
	static const struct route routes[] = {
		{ "GET", "/system_stats", 200, "{\"system\": {\"ram_total\": 10, \"ram_free\": 5}, \"devices\": []}" },
	};
	struct srv *s = srv_start(SRV_BIG);
	struct comfy_client *c = client_for(s->port, NULL, 5000, NULL);
	struct comfy_system_stats st;
	struct comfy_queue q;
	(void)state;

	/* 20 MiB without Content-Length: the write callback stops at the limit (default 8 MiB). */
	s->big_bytes = 20u << 20;
	assert_int_equal(comfy_get_queue(c, &q), -EMSGSIZE);
	assert_string_equal(comfy_last_error(c), "reply from /queue exceeds 8388608 bytes");
	assert_true(comfy_last_reply_bytes(c) <= COMFY_DEFAULT_MAX_REPLY_BYTES);
	assert_true(comfy_last_reply_bytes(c) > COMFY_DEFAULT_MAX_REPLY_BYTES - (1u << 20));
	comfy_queue_free(&q);

	/* Announced 20 MiB: refused from the header, nothing buffered. */
	pthread_mutex_lock(&s->lock);
	s->big_content_length = true;
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(comfy_get_queue(c, &q), -EMSGSIZE);
	assert_string_equal(comfy_last_error(c), "reply from /queue exceeds 8388608 bytes");
	assert_int_equal(comfy_last_reply_bytes(c), 0);
	comfy_queue_free(&q);

	/* The client recovers on the next call. */
	pthread_mutex_lock(&s->lock);
	s->mode = SRV_ROUTES;
	s->routes = routes;
	s->n_routes = ARRAY_SIZE(routes);
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(comfy_get_system_stats(c, &st), 0);
	assert_int_equal(st.ram_total_bytes, 10);
	assert_string_equal(comfy_last_error(c), "");
	comfy_client_free(c);
	srv_stop(s);
}

static void test_small_reply_limit(void **state)
{
	struct srv *s = srv_start(SRV_RAW);
	struct comfy_config cfg = { .max_reply_bytes = 16 };
	struct comfy_client *c;
	struct comfy_queue q;
	char url[64];
	(void)state;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d", s->port);
	cfg.base_url = url;
	assert_int_equal(comfy_client_new(&cfg, &c), 0);
	srv_set_raw(s, "HTTP/1.0 200 OK\r\n\r\n{\"queue_running\": [], \"queue_pending\": []}");
	assert_int_equal(comfy_get_queue(c, &q), -EMSGSIZE);
	assert_true(comfy_last_reply_bytes(c) <= 16);
	comfy_client_free(c);
	srv_stop(s);
}

static void test_round_trip(void **state)
{
	_cleanup_free_ char *queue = read_fixture("queue_busy.json", NULL);
	_cleanup_free_ char *stats = read_fixture("system_stats_cuda.json", NULL);
	_cleanup_free_ char *hist = read_fixture("history_success.json", NULL);
	_cleanup_free_ char *prompt_ok = read_fixture("prompt_ok.json", NULL);
	const struct route routes[] = {
		{ "GET", "/api/queue", 200, queue },
		{ "GET", "/api/system_stats", 200, stats },
		{ "GET", "/api/history/" ID_RUNNING, 200, hist },
		{ "GET", "/api/history/a%20b%2Fc%3Fd%25e%23f", 200, "{}" },
		{ "POST", "/api/free", 200, NULL },
		{ "POST", "/api/interrupt", 200, NULL },
		{ "POST", "/api/queue", 200, NULL },
		{ "POST", "/api/prompt", 200, prompt_ok },
	};
	struct srv *s = srv_start(SRV_ROUTES);
	struct comfy_client *c;
	struct comfy_system_stats st;
	struct comfy_history_item h;
	struct comfy_queue q;
	char new_id[COMFY_PROMPT_ID_MAX];
	json_object *o, *v;
	struct req r;
	int n;
	(void)state;

	s->routes = routes;
	s->n_routes = ARRAY_SIZE(routes);
	/* A path prefix (reverse proxy or ComfyUI's /api alias), trailing slash stripped. */
	c = client_for(s->port, "/api/", 0, "Authorization: Bearer s3cret");

	assert_int_equal(comfy_get_system_stats(c, &st), 0);
	assert_int_equal(st.ram_total_bytes, UINT64_C(134850293760));
	r = srv_last(s, NULL);
	assert_string_equal(r.method, "GET");
	assert_non_null(strstr(r.headers, "\r\nAuthorization: Bearer s3cret\r\n"));
	assert_non_null(strstr(r.headers, "\r\nAccept: application/json\r\n"));

	assert_int_equal(comfy_get_queue(c, &q), 0);
	assert_int_equal(q.n_running, 1);
	assert_int_equal(q.n_pending, 2);
	assert_string_equal(q.running[0].prompt_id, ID_RUNNING);
	assert_true(comfy_last_reply_bytes(c) == strlen(queue));

	assert_int_equal(comfy_get_history_item(c, ID_RUNNING, &h), 0);
	assert_true(h.found);
	assert_int_equal(h.end_ms, INT64_C(1754400009750));
	/* Ids are escaped into the path: space, '/', '?', '%' and '#' must not change the route. */
	assert_int_equal(comfy_get_history_item(c, "a b/c?d%e#f", &h), 0);
	assert_false(h.found);
	assert_string_equal(srv_last(s, NULL).path, "/api/history/a%20b%2Fc%3Fd%25e%23f");
	assert_int_equal(comfy_get_history_item(c, "", &h), -EINVAL);
	assert_int_equal(comfy_get_history_item(c, NULL, &h), -EINVAL);

	/* /free: exactly the documented bodies. */
	assert_int_equal(comfy_free(c, true, false), 0);
	r = srv_last(s, NULL);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.path, "/api/free");
	assert_non_null(strstr(r.headers, "\r\nContent-Type: application/json\r\n"));
	assert_non_null(strstr(r.headers, "\r\nAuthorization: Bearer s3cret\r\n"));
	o = body_with_keys(&r, "unload_models", NULL);
	assert_true(body_bool(o, "unload_models"));
	json_object_put(o);
	assert_int_equal(comfy_free(c, true, true), 0);
	r = srv_last(s, NULL);
	o = body_with_keys(&r, "unload_models", "free_memory", NULL);
	assert_true(body_bool(o, "unload_models"));
	assert_true(body_bool(o, "free_memory"));
	json_object_put(o);
	srv_last(s, &n);
	assert_int_equal(comfy_free(c, false, false), -EINVAL);
	srv_last(s, &n);
	assert_int_equal(n, 6); /* the invalid call sent nothing */

	/* /interrupt with and without a prompt id. */
	assert_int_equal(comfy_interrupt(c, ID_RUNNING), 0);
	r = srv_last(s, NULL);
	assert_string_equal(r.path, "/api/interrupt");
	o = body_with_keys(&r, "prompt_id", NULL);
	assert_true(json_object_object_get_ex(o, "prompt_id", &v));
	assert_string_equal(json_object_get_string(v), ID_RUNNING);
	json_object_put(o);
	assert_int_equal(comfy_interrupt(c, NULL), 0);
	r = srv_last(s, NULL);
	json_object_put(body_with_keys(&r, NULL));

	/* Requeue the running item at the front under its original id. */
	assert_int_equal(comfy_submit_prompt(c, q.running[0].prompt_json, q.running[0].extra_data_json,
					     q.running[0].prompt_id, true, COMFY_NUMBER_NONE, new_id), 0);
	assert_string_equal(new_id, ID_RUNNING);
	assert_string_equal(comfy_last_error(c), "");
	r = srv_last(s, NULL);
	assert_string_equal(r.path, "/api/prompt");
	assert_null(strstr(r.headers, "Expect:"));
	o = body_with_keys(&r, "prompt", "extra_data", "prompt_id", "front", NULL);
	assert_true(body_bool(o, "front"));
	assert_true(json_object_object_get_ex(o, "prompt_id", &v));
	assert_string_equal(json_object_get_string(v), ID_RUNNING);
	assert_true(json_object_object_get_ex(o, "prompt", &v));
	assert_json_equal(json_object_to_json_string(v), q.running[0].prompt_json);
	assert_true(json_object_object_get_ex(o, "extra_data", &v));
	assert_json_equal(json_object_to_json_string(v), q.running[0].extra_data_json);
	json_object_put(o);

	/* With its original (negative) number instead of front. */
	assert_int_equal(comfy_submit_prompt(c, q.pending[0].prompt_json, q.pending[0].extra_data_json,
					     q.pending[0].prompt_id, false, q.pending[0].number, NULL), 0);
	r = srv_last(s, NULL);
	o = body_with_keys(&r, "prompt", "extra_data", "prompt_id", "number", NULL);
	assert_true(json_object_object_get_ex(o, "number", &v));
	assert_true(json_object_is_type(v, json_type_int));
	assert_int_equal(json_object_get_int64(v), -13);
	json_object_put(o);

	/* Minimal: just a prompt. */
	assert_int_equal(comfy_submit_prompt(c, "{\"1\": {}}", NULL, NULL, false, COMFY_NUMBER_NONE, new_id), 0);
	r = srv_last(s, NULL);
	json_object_put(body_with_keys(&r, "prompt", NULL));

	/* Bad arguments are refused before any request. */
	srv_last(s, &n);
	assert_int_equal(comfy_submit_prompt(c, "[1]", NULL, NULL, false, COMFY_NUMBER_NONE, new_id), -EINVAL);
	assert_string_equal(comfy_last_error(c), "prompt to submit: expected a JSON object, got array");
	assert_string_equal(new_id, "");
	assert_int_equal(comfy_submit_prompt(c, "{\"1\":", NULL, NULL, false, COMFY_NUMBER_NONE, NULL), -EINVAL);
	assert_string_equal(comfy_last_error(c), "prompt to submit: not JSON: unexpected end of data at byte 5");
	assert_int_equal(comfy_submit_prompt(c, "{}", "null", NULL, false, COMFY_NUMBER_NONE, NULL), -EINVAL);
	assert_int_equal(comfy_submit_prompt(c, "{}", NULL, "bad\nid", false, COMFY_NUMBER_NONE, NULL), -EINVAL);
	assert_int_equal(comfy_submit_prompt(c, "{}", NULL, NULL, false, INT64_MAX, NULL), -EINVAL);
	assert_int_equal(comfy_submit_prompt(c, NULL, NULL, NULL, false, COMFY_NUMBER_NONE, NULL), -EINVAL);
	assert_int_equal(comfy_interrupt(c, ""), -EINVAL);
	{
		int n2;

		srv_last(s, &n2);
		assert_int_equal(n2, n);
	}

	/* Delete pending items. */
	const char *ids[] = { q.pending[0].prompt_id, q.pending[1].prompt_id };
	assert_int_equal(comfy_delete_from_queue(c, ids, 2), 0);
	r = srv_last(s, NULL);
	assert_string_equal(r.method, "POST");
	assert_string_equal(r.path, "/api/queue");
	o = body_with_keys(&r, "delete", NULL);
	assert_true(json_object_object_get_ex(o, "delete", &v));
	assert_int_equal(json_object_array_length(v), 2);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 0)), ID_FRONT);
	assert_string_equal(json_object_get_string(json_object_array_get_idx(v, 1)), ID_FLOAT);
	json_object_put(o);
	assert_int_equal(comfy_delete_from_queue(c, NULL, 0), 0);
	assert_int_equal(comfy_delete_from_queue(c, (const char *[]){ "ok", NULL }, 2), -EINVAL);

	/* One keep-alive connection carried everything. */
	pthread_mutex_lock(&s->lock);
	assert_int_equal(s->n_connections, 1);
	pthread_mutex_unlock(&s->lock);

	comfy_queue_free(&q);
	comfy_client_free(c);
	srv_stop(s);
}

static void test_prompt_rejected(void **state)
{
	_cleanup_free_ char *err_body = read_fixture("prompt_error.json", NULL);
	const struct route routes[] = {
		{ "POST", "/prompt", 400, err_body },
	};
	const struct route routes_garbage[] = {
		{ "POST", "/prompt", 400, "{\"detail\": \"nope\"}" },
	};
	const struct route routes_500[] = {
		{ "POST", "/prompt", 500, "oops" },
	};
	struct srv *s = srv_start(SRV_ROUTES);
	struct comfy_client *c = client_for(s->port, NULL, 0, NULL);
	char id[COMFY_PROMPT_ID_MAX] = "stale";
	(void)state;

	s->routes = routes;
	s->n_routes = 1;
	assert_int_equal(comfy_submit_prompt(c, "{\"4\": {}}", "{}", ID_RUNNING, true, COMFY_NUMBER_NONE, id),
			 -EBADMSG);
	assert_string_equal(comfy_last_error(c),
			    "ComfyUI rejected the prompt: Prompt outputs failed validation (1 node errors)");
	assert_string_equal(id, "");

	pthread_mutex_lock(&s->lock);
	s->routes = routes_garbage;
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(comfy_submit_prompt(c, "{}", NULL, NULL, false, COMFY_NUMBER_NONE, id), -EBADMSG);
	assert_string_equal(comfy_last_error(c), "HTTP 400 from /prompt; prompt_id: missing");

	pthread_mutex_lock(&s->lock);
	s->routes = routes_500;
	pthread_mutex_unlock(&s->lock);
	assert_int_equal(comfy_submit_prompt(c, "{}", NULL, NULL, false, COMFY_NUMBER_NONE, id), -EBADMSG);
	assert_string_equal(comfy_last_error(c), "HTTP 500 from /prompt: oops");

	comfy_client_free(c);
	srv_stop(s);
}

static int teardown_all(void **state)
{
	(void)state;
	comfy_global_cleanup();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_new_validation),
		cmocka_unit_test(test_connection_refused),
		cmocka_unit_test(test_timeout),
		cmocka_unit_test(test_bad_servers),
		cmocka_unit_test(test_reply_too_big),
		cmocka_unit_test(test_small_reply_limit),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_prompt_rejected),
	};

	comfy_global_init();
	return cmocka_run_group_tests(tests, NULL, teardown_all);
}

// SPDX-License-Identifier: GPL-2.0
/* ComfyUI client: the libcurl transport. Replies are parsed by the pure parsers of core/comfy.c. */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <curl/curl.h>
#include <json-c/json.h>

#include "comfy.h"
#include "comfy-client.h"
#include "resolve.h"
#include "curl-loop.h"
#include "common.h"
#include "jsontext.h"
#include "log.h"

#ifndef OOMSENTRY_VERSION
#define OOMSENTRY_VERSION "0.1"
#endif

/* Keep a grown reply buffer between calls only up to this size; /queue replies with big workflows can reach
 * megabytes, and we poll often, but an idle daemon should not sit on 8 MiB. */
#define KEEP_BUFFER_BYTES (256u << 10)

typedef struct json_object json_object;

/* ======================================================================================================= */
/* Transport                                                                                                */
/* ======================================================================================================= */

/* A request waiting for its turn (one transfer at a time per client: replies land in one buffer). */
struct comfy_req {
	struct comfy_req *next;
	char *path;
	char *body;                  /* NULL: GET */
	comfy_done_fn done;
	void *ctx;
};

struct comfy_client {
	CURL *curl;
	struct curl_loop *loop;      /* attached: requests run through the daemon's epoll (comfy_start_*) */
	struct comfy_req *head, *tail;
	bool in_flight;
	bool fresh_retry;            /* the current GET is the retry on a new connection */
	long last_status;
	struct curl_slist *headers_get;
	struct curl_slist *headers_post;
	char *base_url;              /* without trailing '/' */
	char authority[300];         /* host:port */
	char host[256];              /* as in the URL, IPv6 without brackets */
	long port;
	/* on the loop a host name is resolved off it (resolve.c) and curl is handed the address (CURLOPT_RESOLVE) */
	bool numeric;
	struct resolve *resolving;
	char addr[64];
	struct curl_slist *resolve_list;
	long connect_timeout_ms;
	long total_timeout_ms;
	size_t max_reply_bytes;
	/* Reply body of the current request, NUL-terminated, never longer than max_reply_bytes. */
	char *buf;
	size_t len;
	size_t cap;
	bool too_big;
	bool oom;
	char curl_error[CURL_ERROR_SIZE];
	char error[COMFY_ERROR_MAX];
};

static bool global_inited;

int comfy_global_init(void)
{
	if (global_inited)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -EIO;
	global_inited = true;
	return 0;
}

void comfy_global_cleanup(void)
{
	if (!global_inited)
		return;
	curl_global_cleanup();
	global_inited = false;
}

static int _printf_(3, 4) client_fail(struct comfy_client *c, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	log_debug("comfy %s: %s", c->authority, c->error);
	return r;
}

const char *comfy_last_error(const struct comfy_client *c)
{
	return c ? c->error : "no client";
}

size_t comfy_last_reply_bytes(const struct comfy_client *c)
{
	return c ? c->len : 0;
}

const char *comfy_client_authority(const struct comfy_client *c)
{
	return c ? c->authority : "";
}

/* The write callback is the hard bound on memory: CURLOPT_MAXFILESIZE_LARGE only helps when the server sends
 * Content-Length, chunked or close-delimited replies are stopped here. */
static size_t on_write(char *data, size_t size, size_t nmemb, void *userdata)
{
	struct comfy_client *c = userdata;
	size_t n = size * nmemb;

	if (n > c->max_reply_bytes - c->len) {
		c->too_big = true;
		return 0;
	}
	if (c->len + n + 1 > c->cap) {
		size_t cap = MAX(c->cap, (size_t)4096);
		char *p;

		while (cap < c->len + n + 1)
			cap = cap > SIZE_MAX / 2 ? SIZE_MAX : cap * 2;
		cap = MIN(cap, c->max_reply_bytes + 1);
		p = realloc(c->buf, cap);
		if (!p) {
			c->oom = true;
			return 0;
		}
		c->buf = p;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, data, n);
	c->len += n;
	c->buf[c->len] = '\0';
	return n;
}

static void reply_release(struct comfy_client *c)
{
	if (c->cap > KEEP_BUFFER_BYTES) {
		free(c->buf);
		c->buf = NULL;
		c->cap = 0;
	}
}

/* A header line we can hand to curl verbatim: "Name: value", one line, printable. */
static bool header_line_ok(const char *h)
{
	const char *colon = strchr(h, ':');

	if (!colon || colon == h || strlen(h) > 8192)
		return false;
	for (const char *p = h; p < colon; p++)
		if (!isgraph((unsigned char)*p))
			return false;
	for (const char *p = h; *p; p++)
		if (*p == '\r' || *p == '\n')
			return false;
	return true;
}

static int parse_base_url(struct comfy_client *c, const char *url)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *port = NULL, *query = NULL, *fragment = NULL;
	int r = 0;
	size_t n;

	if (!u)
		return -ENOMEM;
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
		r = -EINVAL;
	else if (strcasecmp(scheme, "http") != 0 && strcasecmp(scheme, "https") != 0)
		r = -EINVAL;
	else if (curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK ||
		 curl_url_get(u, CURLUPART_FRAGMENT, &fragment, 0) == CURLUE_OK)
		r = -EINVAL; /* we append API paths */
	else if (strpbrk(url, " \t\r\n"))
		r = -EINVAL;
	if (r == 0) {
		size_t hl = strlen(host);
		const char *h = host;

		fmt_trunc(c->authority, sizeof(c->authority), "%s:%s", host, port);
		if (hl > 2 && host[0] == '[' && host[hl - 1] == ']') {
			h++;
			hl -= 2;
		}
		if (hl >= sizeof(c->host))
			r = -EINVAL;
		else
			memcpy(c->host, h, hl), c->host[hl] = 0;
		c->port = strtol(port, NULL, 10);
		c->numeric = resolve_is_numeric(c->host);
	}
	if (r == 0) {
		c->base_url = strdup(url);
		if (!c->base_url)
			r = -ENOMEM;
	}
	if (r == 0) {
		n = strlen(c->base_url);
		while (n > 0 && c->base_url[n - 1] == '/')
			c->base_url[--n] = '\0';
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_free(query);
	curl_free(fragment);
	curl_url_cleanup(u);
	return r;
}

static int slist_add(struct curl_slist **l, const char *s)
{
	struct curl_slist *n = curl_slist_append(*l, s);

	if (!n)
		return -ENOMEM;
	*l = n;
	return 0;
}

struct comfy_client *comfy_client_free(struct comfy_client *c)
{
	if (!c)
		return NULL;
	comfy_cancel_all(c);
	resolve_free(c->resolving);
	if (c->curl)
		curl_easy_cleanup(c->curl);
	curl_slist_free_all(c->resolve_list);
	curl_slist_free_all(c->headers_get);
	curl_slist_free_all(c->headers_post);
	free(c->base_url);
	free(c->buf);
	free(c);
	return NULL;
}

int comfy_client_new(const struct comfy_config *cfg, struct comfy_client **ret)
{
	static const struct comfy_config defaults = {};
	struct comfy_client *c;
	int r;

	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if (!cfg)
		cfg = &defaults;
	if (cfg->auth_header && !header_line_ok(cfg->auth_header))
		return -EINVAL;
	if (cfg->max_reply_bytes >= SIZE_MAX / 2)
		return -EINVAL;
	r = comfy_global_init();
	if (r < 0)
		return r;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : COMFY_DEFAULT_CONNECT_TIMEOUT_MS;
	c->total_timeout_ms = cfg->total_timeout_ms > 0 ? cfg->total_timeout_ms : COMFY_DEFAULT_TOTAL_TIMEOUT_MS;
	c->max_reply_bytes = cfg->max_reply_bytes > 0 ? cfg->max_reply_bytes : COMFY_DEFAULT_MAX_REPLY_BYTES;

	r = parse_base_url(c, cfg->base_url ? cfg->base_url : COMFY_DEFAULT_URL);
	if (r < 0)
		goto fail;

	r = -ENOMEM;
	if (slist_add(&c->headers_get, "Accept: application/json") < 0 ||
	    (cfg->auth_header && slist_add(&c->headers_get, cfg->auth_header) < 0) ||
	    slist_add(&c->headers_post, "Accept: application/json") < 0 ||
	    (cfg->auth_header && slist_add(&c->headers_post, cfg->auth_header) < 0) ||
	    slist_add(&c->headers_post, "Content-Type: application/json") < 0 ||
	    /* no 100-continue round trip for big requeue bodies */
	    slist_add(&c->headers_post, "Expect:") < 0)
		goto fail;

	c->curl = curl_easy_init();
	if (!c->curl)
		goto fail;
	r = -EINVAL;
	if (curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->total_timeout_ms) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)c->max_reply_bytes) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_ERRORBUFFER, c->curl_error) != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https") != CURLE_OK ||
	    /* ComfyUI never redirects its API; a redirect means something else answers. */
	    curl_easy_setopt(c->curl, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK ||
	    /* ComfyUI runs on this host or in this pod: an inherited http_proxy must not reroute it. */
	    curl_easy_setopt(c->curl, CURLOPT_PROXY, "") != CURLE_OK ||
	    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "oomsentry/" OOMSENTRY_VERSION) != CURLE_OK)
		goto fail;

	*ret = c;
	return 0;
fail:
	comfy_client_free(c);
	return r;
}

/* First line of an error body, printable and short, for messages. */
static void body_snippet(const struct comfy_client *c, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	if (size < 8)
		return;
	for (size_t i = 0; i < c->len && n + 4 < size && n < 120; i++) {
		unsigned char ch = (unsigned char)c->buf[i];

		if (ch == '\n' || ch == '\r')
			break;
		buf[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	buf[n] = '\0';
}

static int map_curl_error(struct comfy_client *c, CURLcode res, const char *path)
{
	const char *detail = *c->curl_error ? c->curl_error : curl_easy_strerror(res);
	long os_errno = 0;
	curl_off_t connect_us = 0;

	switch (res) {
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno <= 0 || os_errno == ECONNREFUSED)
			return client_fail(c, -ECONNREFUSED, "connection refused to %s", c->authority);
		return client_fail(c, -(int)os_errno, "cannot connect to %s: %s", c->authority,
				   strerror((int)os_errno));
	case CURLE_COULDNT_RESOLVE_HOST:
		return client_fail(c, -EHOSTUNREACH, "cannot resolve %s: %s", c->authority, detail);
	case CURLE_OPERATION_TIMEDOUT:
		curl_easy_getinfo(c->curl, CURLINFO_CONNECT_TIME_T, &connect_us);
		if (connect_us == 0)
			return client_fail(c, -ETIMEDOUT, "timeout after %ld ms connecting to %s",
					   MIN(c->connect_timeout_ms, c->total_timeout_ms), c->authority);
		return client_fail(c, -ETIMEDOUT, "timeout after %ld ms on %s", c->total_timeout_ms, path);
	case CURLE_FILESIZE_EXCEEDED:
		return client_fail(c, -EMSGSIZE, "reply from %s exceeds %zu bytes", path, c->max_reply_bytes);
	case CURLE_WRITE_ERROR:
		if (c->too_big)
			return client_fail(c, -EMSGSIZE, "reply from %s exceeds %zu bytes", path,
					   c->max_reply_bytes);
		return client_fail(c, -ENOMEM, "out of memory reading the reply from %s", path);
	case CURLE_OUT_OF_MEMORY:
		return client_fail(c, -ENOMEM, "out of memory on %s", path);
	case CURLE_GOT_NOTHING:
		return client_fail(c, -ECONNRESET, "%s closed the connection without replying to %s", c->authority,
				   path);
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
		curl_easy_getinfo(c->curl, CURLINFO_OS_ERRNO, &os_errno);
		return client_fail(c, os_errno > 0 ? -(int)os_errno : -ECONNRESET, "connection to %s lost on %s: %s",
				   c->authority, path, detail);
	case CURLE_PARTIAL_FILE:
		return client_fail(c, -EPROTO, "reply from %s truncated after %zu bytes", path, c->len);
	case CURLE_WEIRD_SERVER_REPLY:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_BAD_CONTENT_ENCODING:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return client_fail(c, -EPROTO, "malformed HTTP reply from %s to %s: %s", c->authority, path, detail);
	default:
		return client_fail(c, -EIO, "request %s to %s failed: %s", path, c->authority, detail);
	}
}

/* Sets up the easy handle for one request. body NULL: GET, else POST with that JSON (which must stay valid until
 * the transfer ends). */
static int request_prepare(struct comfy_client *c, const char *path, const char *body)
{
	_cleanup_free_ char *url = NULL;

	c->len = 0;
	c->too_big = c->oom = false;
	c->curl_error[0] = '\0';
	c->error[0] = '\0';
	c->last_status = 0;
	if (c->buf)
		c->buf[0] = '\0';

	if (asprintf(&url, "%s%s", c->base_url, path) < 0) {
		url = NULL;
		return client_fail(c, -ENOMEM, "out of memory");
	}
	if (curl_easy_setopt(c->curl, CURLOPT_URL, url) != CURLE_OK)
		return client_fail(c, -EINVAL, "bad URL %s", url);
	if (body) {
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers_post);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers_get);
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
	}
	return 0;
}

/* A kept-alive connection the server had already closed is no news about the server: a GET (idempotent) is
 * tried once more on a new connection before it counts as a failure. */
static bool stale_connection(struct comfy_client *c, CURLcode res, bool get)
{
	long fresh = 0;

	if (!get || !(res == CURLE_GOT_NOTHING || res == CURLE_SEND_ERROR || res == CURLE_RECV_ERROR))
		return false;
	if (curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &fresh) != CURLE_OK || fresh != 0)
		return false;
	c->len = 0;
	c->too_big = c->oom = false;
	c->curl_error[0] = '\0';
	return true;
}

/* What a finished transfer means: 0 with the 2xx body in c->buf/c->len, or a negative errno with c->error set.
 * For a non-2xx status the body is kept too and c->last_status set, so /prompt can read ComfyUI's rejection. */
static int request_result(struct comfy_client *c, CURLcode res, const char *path)
{
	long status = 0;
	char snippet[128];

	/* Drop the reference to the caller's body before it goes away. */
	curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, NULL);
	if (res != CURLE_OK)
		return map_curl_error(c, res, path);

	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	c->last_status = status;
	if (status >= 200 && status < 300)
		return 0;

	body_snippet(c, snippet, sizeof(snippet));
	if (status == 401 || status == 403)
		return client_fail(c, -EACCES, "HTTP %ld from %s (auth header missing or rejected)%s%s", status, path,
				   *snippet ? ": " : "", snippet);
	if (status >= 300 && status < 400) {
		char *location = NULL;

		curl_easy_getinfo(c->curl, CURLINFO_REDIRECT_URL, &location);
		return client_fail(c, -EBADMSG, "HTTP %ld from %s: redirect to %.200s not followed", status, path,
				   location ? location : "(no location)");
	}
	return client_fail(c, -EBADMSG, "HTTP %ld from %s%s%s", status, path, *snippet ? ": " : "", snippet);
}

/* Runs one request to the end (blocking: only where no loop runs, `oomsentry scan` and tests). */
static int request(struct comfy_client *c, const char *path, const char *body, long *ret_status)
{
	CURLcode res;
	int r = request_prepare(c, path, body);

	*ret_status = 0;
	if (r < 0)
		return r;
	res = curl_easy_perform(c->curl);
	if (stale_connection(c, res, !body)) {
		curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 1L);
		res = curl_easy_perform(c->curl);
		curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 0L);
	}
	r = request_result(c, res, path);
	*ret_status = c->last_status;
	return r;
}

/* Prefixes a parser message with the route it came from. */
static int reply_fail(struct comfy_client *c, int r, const char *path, const char *perr)
{
	if (r == -ENOMEM)
		return client_fail(c, r, "out of memory parsing the reply from %s", path);
	if (strncmp(perr, "not JSON", 8) == 0)
		return client_fail(c, r, "reply from %s is %s", path, perr);
	return client_fail(c, r, "unexpected reply from %s: %s", path, perr);
}

/* ---- what a finished request means, per route: the same for a blocking call and for one run by the loop ---- */

int comfy_take_system_stats(struct comfy_client *c, int r, struct comfy_system_stats *ret)
{
	char perr[COMFY_ERROR_MAX];

	*ret = (struct comfy_system_stats){};
	if (r < 0)
		return r;
	r = comfy_parse_system_stats(c->buf, c->len, ret, perr, sizeof(perr));
	return r < 0 ? reply_fail(c, r, "/system_stats", perr) : 0;
}

int comfy_take_queue(struct comfy_client *c, int r, struct comfy_queue *ret)
{
	char perr[COMFY_ERROR_MAX];

	*ret = (struct comfy_queue){};
	if (r < 0)
		return r;
	r = comfy_parse_queue(c->buf, c->len, ret, perr, sizeof(perr));
	return r < 0 ? reply_fail(c, r, "/queue", perr) : 0;
}

int comfy_take_history_item(struct comfy_client *c, int r, const char *prompt_id, struct comfy_history_item *ret)
{
	char perr[COMFY_ERROR_MAX];

	*ret = (struct comfy_history_item){};
	if (r < 0)
		return r;
	r = comfy_parse_history_item(c->buf, c->len, prompt_id, ret, perr, sizeof(perr));
	return r < 0 ? reply_fail(c, r, "/history", perr) : 0;
}

int comfy_take_submit(struct comfy_client *c, int r, char ret_prompt_id[COMFY_PROMPT_ID_MAX])
{
	struct comfy_prompt_reply reply;
	char perr[COMFY_ERROR_MAX];

	if (ret_prompt_id)
		ret_prompt_id[0] = '\0';
	if (r < 0 && c->last_status != 400)
		return r;
	/* 200: {prompt_id, number, node_errors}; 400: {error, node_errors} with ComfyUI's reason. */
	r = comfy_parse_prompt_reply(c->buf, c->len, &reply, perr, sizeof(perr));
	if (r == -EBADMSG)
		return client_fail(c, r, "%s", perr);
	if (r < 0 && c->last_status == 400)
		return client_fail(c, -EBADMSG, "HTTP 400 from /prompt; %s", perr);
	if (r < 0)
		return reply_fail(c, r, "/prompt", perr);
	if (c->last_status == 400)
		return client_fail(c, -EBADMSG, "HTTP 400 from /prompt without an error message");
	if (ret_prompt_id)
		memcpy(ret_prompt_id, reply.prompt_id, COMFY_PROMPT_ID_MAX);
	return 0;
}

/* ---- request bodies and paths ---- */

static int history_path(struct comfy_client *c, const char *prompt_id, char **ret)
{
	char *escaped;
	int r;

	*ret = NULL;
	if (!prompt_id || !comfy_prompt_id_ok(prompt_id, strlen(prompt_id)))
		return client_fail(c, -EINVAL, "invalid prompt id for /history");
	escaped = curl_easy_escape(c->curl, prompt_id, 0);
	if (!escaped)
		return client_fail(c, -ENOMEM, "out of memory");
	r = asprintf(ret, "/history/%s", escaped);
	curl_free(escaped);
	if (r < 0) {
		*ret = NULL;
		return client_fail(c, -ENOMEM, "out of memory");
	}
	return 0;
}

/* json_object_object_add() takes ownership of val only when it succeeds; this always does. */
static int obj_add(json_object *o, const char *key, json_object *val)
{
	if (!val)
		return -ENOMEM;
	if (json_object_object_add(o, key, val) < 0) {
		json_object_put(val);
		return -ENOMEM;
	}
	return 0;
}

static int body_text(struct comfy_client *c, json_object *body, char **ret)
{
	const char *text = json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	*ret = text ? strdup(text) : NULL;
	return *ret ? 0 : client_fail(c, -ENOMEM, "out of memory");
}

static int free_body(struct comfy_client *c, bool unload_models, bool free_memory, char **ret)
{
	_cleanup_json_ json_object *body = NULL;

	*ret = NULL;
	if (!unload_models && !free_memory)
		return client_fail(c, -EINVAL, "/free needs unload_models or free_memory");
	body = json_object_new_object();
	if (!body || (unload_models && obj_add(body, "unload_models", json_object_new_boolean(1)) < 0) ||
	    (free_memory && obj_add(body, "free_memory", json_object_new_boolean(1)) < 0))
		return client_fail(c, -ENOMEM, "out of memory");
	return body_text(c, body, ret);
}

static int interrupt_body(struct comfy_client *c, const char *prompt_id, char **ret)
{
	_cleanup_json_ json_object *body = NULL;

	*ret = NULL;
	if (prompt_id && !comfy_prompt_id_ok(prompt_id, strlen(prompt_id)))
		return client_fail(c, -EINVAL, "invalid prompt id for /interrupt");
	/* Always a JSON body: newer servers read one, older ones ignore it. */
	body = json_object_new_object();
	if (!body || (prompt_id && obj_add(body, "prompt_id", json_object_new_string(prompt_id)) < 0))
		return client_fail(c, -ENOMEM, "out of memory");
	return body_text(c, body, ret);
}

static int delete_body(struct comfy_client *c, const char *const *prompt_ids, size_t n, char **ret)
{
	_cleanup_json_ json_object *body = NULL;
	json_object *list;

	*ret = NULL;
	body = json_object_new_object();
	list = json_object_new_array();
	if (!body || obj_add(body, "delete", list) < 0)
		return client_fail(c, -ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_object *s;

		if (!prompt_ids[i] || !comfy_prompt_id_ok(prompt_ids[i], strlen(prompt_ids[i])))
			return client_fail(c, -EINVAL, "invalid prompt id #%zu for /queue delete", i);
		s = json_object_new_string(prompt_ids[i]);
		if (!s || json_object_array_add(list, s) < 0) {
			json_object_put(s);
			return client_fail(c, -ENOMEM, "out of memory");
		}
	}
	return body_text(c, body, ret);
}

static int submit_body(struct comfy_client *c, const char *prompt_json, const char *extra_data_json,
		       const char *prompt_id, bool front, int64_t number, char **ret)
{
	_cleanup_json_ json_object *body = NULL;
	json_object *prompt = NULL, *extra = NULL;
	char perr[COMFY_ERROR_MAX];
	int r;

	*ret = NULL;
	if (!prompt_json)
		return client_fail(c, -EINVAL, "no prompt to submit");
	if (prompt_id && !comfy_prompt_id_ok(prompt_id, strlen(prompt_id)))
		return client_fail(c, -EINVAL, "invalid prompt id to submit");
	if (number != COMFY_NUMBER_NONE && (number < -COMFY_NUMBER_LIMIT || number > COMFY_NUMBER_LIMIT))
		return client_fail(c, -EINVAL, "queue number %" PRId64 " out of range", number);

	body = json_object_new_object();
	if (!body)
		return client_fail(c, -ENOMEM, "out of memory");
	r = comfy_parse_object(prompt_json, strlen(prompt_json), &prompt, perr, sizeof(perr));
	if (r < 0)
		return client_fail(c, r == -ENOMEM ? r : -EINVAL, "prompt to submit: %s", perr);
	if (obj_add(body, "prompt", prompt) < 0)
		return client_fail(c, -ENOMEM, "out of memory");
	if (extra_data_json) {
		r = comfy_parse_object(extra_data_json, strlen(extra_data_json), &extra, perr, sizeof(perr));
		if (r < 0)
			return client_fail(c, r == -ENOMEM ? r : -EINVAL, "extra_data to submit: %s", perr);
		if (obj_add(body, "extra_data", extra) < 0)
			return client_fail(c, -ENOMEM, "out of memory");
	}
	if ((prompt_id && obj_add(body, "prompt_id", json_object_new_string(prompt_id)) < 0) ||
	    (front && obj_add(body, "front", json_object_new_boolean(1)) < 0) ||
	    (number != COMFY_NUMBER_NONE && obj_add(body, "number", json_object_new_int64(number)) < 0))
		return client_fail(c, -ENOMEM, "out of memory");
	return body_text(c, body, ret);
}

/* ---- blocking calls ---- */

int comfy_get_system_stats(struct comfy_client *c, struct comfy_system_stats *ret)
{
	long status;
	int r;

	if (!c || !ret)
		return -EINVAL;
	r = comfy_take_system_stats(c, request(c, "/system_stats", NULL, &status), ret);
	reply_release(c);
	return r;
}

int comfy_get_queue(struct comfy_client *c, struct comfy_queue *ret)
{
	long status;
	int r;

	if (!c || !ret)
		return -EINVAL;
	r = comfy_take_queue(c, request(c, "/queue", NULL, &status), ret);
	reply_release(c);
	return r;
}

int comfy_get_history_item(struct comfy_client *c, const char *prompt_id, struct comfy_history_item *ret)
{
	_cleanup_free_ char *path = NULL;
	long status;
	int r;

	if (!c || !ret)
		return -EINVAL;
	*ret = (struct comfy_history_item){};
	r = history_path(c, prompt_id, &path);
	if (r < 0)
		return r;
	r = comfy_take_history_item(c, request(c, path, NULL, &status), prompt_id, ret);
	reply_release(c);
	return r;
}

/* POSTs a body; the reply body is ignored (ComfyUI answers these with an empty 200). */
static int post_text(struct comfy_client *c, const char *path, int r, char *body)
{
	long status;

	if (r >= 0)
		r = request(c, path, body, &status);
	free(body);
	reply_release(c);
	return r;
}

int comfy_free(struct comfy_client *c, bool unload_models, bool free_memory)
{
	char *body = NULL;

	if (!c)
		return -EINVAL;
	int r = free_body(c, unload_models, free_memory, &body);

	return post_text(c, "/free", r, body);
}

int comfy_interrupt(struct comfy_client *c, const char *prompt_id)
{
	char *body = NULL;

	if (!c)
		return -EINVAL;
	int r = interrupt_body(c, prompt_id, &body);

	return post_text(c, "/interrupt", r, body);
}

int comfy_delete_from_queue(struct comfy_client *c, const char *const *prompt_ids, size_t n)
{
	char *body = NULL;

	if (!c || (n > 0 && !prompt_ids))
		return -EINVAL;
	if (n == 0)
		return 0;
	int r = delete_body(c, prompt_ids, n, &body);

	return post_text(c, "/queue", r, body);
}

int comfy_submit_prompt(struct comfy_client *c, const char *prompt_json, const char *extra_data_json,
			const char *prompt_id, bool front, int64_t number, char ret_prompt_id[COMFY_PROMPT_ID_MAX])
{
	_cleanup_free_ char *body = NULL;
	long status;
	int r;

	if (ret_prompt_id)
		ret_prompt_id[0] = '\0';
	if (!c)
		return -EINVAL;
	r = submit_body(c, prompt_json, extra_data_json, prompt_id, front, number, &body);
	if (r < 0)
		return r;
	r = comfy_take_submit(c, request(c, "/prompt", body, &status), ret_prompt_id);
	reply_release(c);
	return r;
}

/* ---- requests run by the daemon's loop ---- */

void comfy_client_attach(struct comfy_client *c, struct curl_loop *loop)
{
	c->loop = loop;
}

bool comfy_busy(const struct comfy_client *c)
{
	return c && (c->in_flight || c->head);
}

static void req_free(struct comfy_req *q)
{
	free(q->path);
	free(q->body);
	free(q);
}

static void on_transfer(CURL *easy, CURLcode res, void *ctx);

static void req_free(struct comfy_req *q);

/* Every queued request answered with r (none in flight). */
static void fail_all(struct comfy_client *c, int r)
{
	while (!c->in_flight && c->head) {
		struct comfy_req *q = c->head;

		c->head = q->next;
		if (!c->head)
			c->tail = NULL;
		q->done(c, r, q->ctx);
		req_free(q);
	}
}

static void start_next(struct comfy_client *c);

void comfy_client_tick(struct comfy_client *c)
{
	const char *why;
	char addr[64], entry[400];
	struct curl_slist *l = NULL;
	int r;

	if (!c || !c->resolving)
		return;
	r = resolve_poll(c->resolving, addr, sizeof(addr), &why);
	if (r == -EINPROGRESS)
		return;
	resolve_free(c->resolving);
	c->resolving = NULL;
	if (r < 0) {
		fail_all(c, client_fail(c, r, "cannot resolve %s: %s", c->host, why));
		return;
	}
	/* the old entry out, the new one in: curl keeps CURLOPT_RESOLVE entries until told otherwise */
	snprintf(entry, sizeof(entry), "-%s:%ld", c->host, c->port);
	if (slist_add(&l, entry) == 0) {
		snprintf(entry, sizeof(entry), strchr(addr, ':') ? "%s:%ld:[%s]" : "%s:%ld:%s", c->host, c->port, addr);
		if (slist_add(&l, entry) == 0 && curl_easy_setopt(c->curl, CURLOPT_RESOLVE, l) == CURLE_OK) {
			curl_slist_free_all(c->resolve_list);
			c->resolve_list = l;
			l = NULL;
			snprintf(c->addr, sizeof(c->addr), "%s", addr);
		}
	}
	curl_slist_free_all(l);
	if (!c->addr[0]) {
		fail_all(c, client_fail(c, -ENOMEM, "out of memory"));
		return;
	}
	start_next(c);
}

const char *comfy_client_address(const struct comfy_client *c)
{
	if (!c)
		return NULL;
	return c->numeric ? c->host : c->addr[0] ? c->addr : NULL;
}

/* Starts the request at the head of the queue when none runs. A request that cannot even start is answered at
 * once with its error: this only runs from the loop (a done callback, or comfy_start's caller), never nested in
 * libcurl. */
static void start_next(struct comfy_client *c)
{
	/* a name without an address yet: the requests wait for comfy_client_tick() to find one */
	if (!c->numeric && !c->addr[0] && c->head) {
		if (!c->resolving && resolve_start(c->host, &c->resolving) < 0)
			c->resolving = NULL;
		if (c->resolving)
			return;
		fail_all(c, client_fail(c, -EHOSTUNREACH, "cannot look up %s", c->host));
		return;
	}
	while (!c->in_flight && c->head) {
		struct comfy_req *q = c->head;
		int r = request_prepare(c, q->path, q->body);

		if (r >= 0 && curl_loop_add(c->loop, c->curl, on_transfer, c) < 0)
			r = client_fail(c, -EIO, "cannot start a request to %s", c->authority);
		if (r >= 0) {
			c->in_flight = true;
			c->fresh_retry = false;
			return;
		}
		c->head = q->next;
		if (!c->head)
			c->tail = NULL;
		q->done(c, r, q->ctx);
		req_free(q);
	}
}

static void on_transfer(CURL *easy, CURLcode res, void *ctx)
{
	struct comfy_client *c = ctx;
	struct comfy_req *q = c->head;
	int r;

	(void)easy;
	if (!c->fresh_retry && stale_connection(c, res, !q->body)) {
		c->fresh_retry = true;
		curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 1L);
		if (curl_loop_add(c->loop, c->curl, on_transfer, c) == 0)
			return;
	}
	curl_easy_setopt(c->curl, CURLOPT_FRESH_CONNECT, 0L);
	/* the server may have moved (a new pod): the next request looks its name up again */
	if (!c->numeric && (res == CURLE_COULDNT_CONNECT || res == CURLE_OPERATION_TIMEDOUT))
		c->addr[0] = 0;
	r = request_result(c, res, q->path);
	c->in_flight = false;
	c->head = q->next;
	if (!c->head)
		c->tail = NULL;
	q->done(c, r, q->ctx);
	req_free(q);
	reply_release(c);
	start_next(c);
}

/* Queues a request (path and body are taken over); 0, or the error of a request that cannot be made. */
static int enqueue(struct comfy_client *c, int r, char *path, char *body, comfy_done_fn done, void *ctx)
{
	struct comfy_req *q;

	if (r < 0 || !c->loop || !done) {
		free(path);
		free(body);
		return r < 0 ? r : -EINVAL;
	}
	q = calloc(1, sizeof(*q));
	if (!q || !path) {
		free(q);
		free(path);
		free(body);
		return client_fail(c, -ENOMEM, "out of memory");
	}
	q->path = path;
	q->body = body;
	q->done = done;
	q->ctx = ctx;
	if (c->tail)
		c->tail->next = q;
	else
		c->head = q;
	c->tail = q;
	start_next(c);
	return 0;
}

int comfy_start_system_stats(struct comfy_client *c, comfy_done_fn done, void *ctx)
{
	return enqueue(c, 0, strdup("/system_stats"), NULL, done, ctx);
}

int comfy_start_queue(struct comfy_client *c, comfy_done_fn done, void *ctx)
{
	return enqueue(c, 0, strdup("/queue"), NULL, done, ctx);
}

int comfy_start_history_item(struct comfy_client *c, const char *prompt_id, comfy_done_fn done, void *ctx)
{
	char *path = NULL;
	int r = history_path(c, prompt_id, &path);

	return enqueue(c, r, path, NULL, done, ctx);
}

int comfy_start_free(struct comfy_client *c, bool unload_models, bool free_memory, comfy_done_fn done, void *ctx)
{
	char *body = NULL;
	int r = free_body(c, unload_models, free_memory, &body);

	return enqueue(c, r, strdup("/free"), body, done, ctx);
}

int comfy_start_interrupt(struct comfy_client *c, const char *prompt_id, comfy_done_fn done, void *ctx)
{
	char *body = NULL;
	int r = interrupt_body(c, prompt_id, &body);

	return enqueue(c, r, strdup("/interrupt"), body, done, ctx);
}

int comfy_start_submit(struct comfy_client *c, const char *prompt_json, const char *extra_data_json,
		       const char *prompt_id, bool front, int64_t number, comfy_done_fn done, void *ctx)
{
	char *body = NULL;
	int r = submit_body(c, prompt_json, extra_data_json, prompt_id, front, number, &body);

	return enqueue(c, r, strdup("/prompt"), body, done, ctx);
}

int comfy_start_delete_from_queue(struct comfy_client *c, const char *const *prompt_ids, size_t n, comfy_done_fn done,
				  void *ctx)
{
	char *body = NULL;
	int r = n ? delete_body(c, prompt_ids, n, &body) : -EINVAL;

	return enqueue(c, r, strdup("/queue"), body, done, ctx);
}

void comfy_cancel_all(struct comfy_client *c)
{
	if (!c)
		return;
	if (c->in_flight) {
		curl_loop_cancel(c->loop, c->curl);
		c->in_flight = false;
	}
	while (c->head) {
		struct comfy_req *q = c->head;
		c->head = q->next;
		req_free(q);
	}
	c->tail = NULL;
}

// SPDX-License-Identifier: GPL-2.0
/* ComfyUI websocket client over libwebsockets inside the daemon's epoll loop; see comfy-ws.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/timerfd.h>
#include <libwebsockets.h>

#include "comfy-ws.h"
#include "resolve.h"
#include "common.h"
#include "log.h"

/* ComfyUI's biggest text message is execution_error with its traceback and current inputs; previews are binary
 * and skipped. A longer message is dropped, not the connection. */
#define MSG_MAX_BYTES (1u << 20)
#define MSG_MIN_BYTES 4096
#define QUEUE_MAX 64
#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define CONNECT_TIMEOUT_S 5

struct pending {
	bool is_state;
	enum comfy_ws_state state;
	char why[160];
	struct wsmsg m;
	uint64_t ts_ns;
};

struct comfy_ws_conn {
	struct comfy_ws *ws;
	struct comfy_ws_conn *next;
	char host[256];
	char addr[64];     /* numeric: libwebsockets resolves names with a blocking getaddrinfo (resolve.h) */
	bool numeric;
	int port;
	bool tls;
	char path[512];
	char auth_header[512];
	struct comfy_ws_callbacks cb;
	void *userdata;

	struct lws *wsi;
	int fd;            /* registered in epfd, -1 when none */
	uint32_t fd_events;
	enum comfy_ws_state state;
	bool handshake_sent; /* the upgrade request is out: only replies are awaited, stop watching EPOLLOUT */
	bool down_reported;
	uint64_t retry_at_ns;
	uint64_t backoff_ms;

	char *buf;
	size_t cap;
	size_t len;
	bool skipping; /* the message under way is binary or too long */

	struct pending q[QUEUE_MAX];
	size_t nq;
	bool q_overflow;
	uint64_t messages;
};

struct comfy_ws {
	struct lws_context *ctx;
	int epfd;
	uint64_t tag;
	int tfd;
	struct comfy_ws_conn *conns;
	uint64_t now_ns;
};

static void lws_log(int level, const char *line)
{
	size_t n = strlen(line);

	/* libwebsockets' lines end in a newline; its errors are ours to explain, so keep them at debug */
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	log_debug("libwebsockets (%d): %.*s", level, (int)n, line);
}

static void push(struct comfy_ws_conn *c, const struct pending *p)
{
	if (c->nq == QUEUE_MAX) {
		/* the daemon reads /queue + /history after the last of them anyway: one wake-up is as good as many */
		c->q_overflow = true;
		return;
	}
	c->q[c->nq++] = *p;
}

static void push_state(struct comfy_ws_conn *c, enum comfy_ws_state st, const char *why)
{
	struct pending p = { .is_state = true, .state = st, .ts_ns = c->ws->now_ns };

	snprintf(p.why, sizeof(p.why), "%s", why ? why : "");
	c->state = st;
	push(c, &p);
}

static void unwatch(struct comfy_ws_conn *c)
{
	/* only while the socket is still open: a closed one left the epoll set by itself, and its number may
	 * already belong to someone else's registration */
	if (c->fd >= 0)
		epoll_ctl(c->ws->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	c->fd = -1;
	c->fd_events = 0;
}

static void went_down(struct comfy_ws_conn *c, const char *why)
{
	unwatch(c);
	c->wsi = NULL;
	c->len = 0;
	c->skipping = false;
	c->handshake_sent = false;
	c->backoff_ms = c->backoff_ms ? MIN(c->backoff_ms * 2, (uint64_t)BACKOFF_MAX_MS) : BACKOFF_MIN_MS;
	c->retry_at_ns = c->ws->now_ns + c->backoff_ms * NSEC_PER_MSEC;
	push_state(c, COMFY_WS_DOWN, why);
}

static void received(struct comfy_ws_conn *c, struct lws *wsi, const void *in, size_t len)
{
	struct pending p = { .ts_ns = c->ws->now_ns };
	char err[WSMSG_ERROR_MAX];

	if (lws_is_first_fragment(wsi)) {
		c->len = 0;
		c->skipping = lws_frame_is_binary(wsi); /* previews */
	}
	if (!c->skipping) {
		if (c->len + len > MSG_MAX_BYTES) {
			log_debug("comfy ws %s: a message over %u bytes, skipped", c->host, MSG_MAX_BYTES);
			c->skipping = true;
		} else {
			/* grown as messages need it: status and execution events are a few hundred bytes, and a
			 * buffer of MSG_MAX_BYTES up front would stay in the locked heap for nothing */
			if (c->len + len > c->cap) {
				size_t cap = MAX(c->cap, (size_t)MSG_MIN_BYTES);
				char *nb;

				while (cap < c->len + len)
					cap *= 2;
				nb = realloc(c->buf, MIN(cap, (size_t)MSG_MAX_BYTES));
				if (nb) {
					c->buf = nb;
					c->cap = MIN(cap, (size_t)MSG_MAX_BYTES);
				}
			}
			if (c->len + len > c->cap) {
				c->skipping = true;
			} else {
				memcpy(c->buf + c->len, in, len);
				c->len += len;
			}
		}
	}
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
		return;
	if (!c->skipping) {
		c->messages++;
		if (wsmsg_parse(c->buf, c->len, &p.m, err, sizeof(err)) == 0)
			push(c, &p);
		else
			log_debug("comfy ws %s: message not understood (%s)", c->host, err);
	}
	c->len = 0;
	c->skipping = false;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct comfy_ws_conn *c = lws_get_opaque_user_data(wsi);
	char why[160];

	(void)user;
	if (!c)
		return 0;
	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		if (c->auth_header[0]) {
			unsigned char **p = in;
			size_t n = strlen(c->auth_header);
			if (n + 2 > len)
				return -1;
			memcpy(*p, c->auth_header, n);
			memcpy(*p + n, "\r\n", 2);
			*p += n + 2;
		}
		c->handshake_sent = true;
		break;
	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		c->backoff_ms = 0;
		c->down_reported = false;
		push_state(c, COMFY_WS_CONNECTED, "upgraded");
		break;
	case LWS_CALLBACK_CLIENT_RECEIVE:
		received(c, wsi, in, len);
		break;
	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (c->wsi == wsi || !c->wsi) {
			snprintf(why, sizeof(why), "%.*s", in ? (int)MIN(len ? len : strlen(in), (size_t)150) : 0,
				 in ? (const char *)in : "");
			went_down(c, why[0] ? why : "connection failed");
		}
		break;
	case LWS_CALLBACK_CLIENT_CLOSED:
		if (c->wsi == wsi)
			went_down(c, "closed by the server");
		break;
	case LWS_CALLBACK_WSI_DESTROY:
		if (c->wsi == wsi) {
			/* gone without a close or error callback: its socket is already closed */
			c->fd = -1;
			c->wsi = NULL;
			if (c->state != COMFY_WS_DOWN)
				went_down(c, "connection dropped");
		}
		break;
	default:
		break;
	}
	return 0;
}

static const struct lws_protocols protocols[] = {
	{ .name = "comfyui", .callback = callback, .rx_buffer_size = 4096 },
	{ 0 },
};

/* Follows the socket libwebsockets uses for c (it may change between connect attempts to several addresses). */
static void sync_fd(struct comfy_ws_conn *c)
{
	struct epoll_event ev = { .data.u64 = c->ws->tag };
	int fd = c->wsi ? lws_get_socket_fd(c->wsi) : -1;

	if (fd < 0) {
		c->fd = -1;
		return;
	}
	ev.events = c->state == COMFY_WS_CONNECTED || c->handshake_sent ? EPOLLIN : EPOLLIN | EPOLLOUT;
	if (fd == c->fd && ev.events == c->fd_events)
		return;
	if (epoll_ctl(c->ws->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 &&
	    (errno != ENOENT || epoll_ctl(c->ws->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)) {
		log_debug_errno(-errno, "comfy ws %s: cannot watch socket %d", c->host, fd);
		return;
	}
	c->fd = fd;
	c->fd_events = ev.events;
}

static void start(struct comfy_ws_conn *c)
{
	struct lws_client_connect_info i = {
		.context = c->ws->ctx,
		.address = c->numeric ? c->host : c->addr,
		.port = c->port,
		.ssl_connection = c->tls ? LCCSCF_USE_SSL : 0,
		.path = c->path,
		.host = c->host,
		.origin = c->host,
		.ietf_version_or_minus_one = -1,
		.protocol = NULL, /* ComfyUI's /ws speaks no subprotocol */
		.local_protocol_name = protocols[0].name,
		.opaque_user_data = c,
	};

	if (!c->numeric && !c->addr[0]) {
		/* no address for the name yet (comfy_ws_set_address): ask again in a second */
		c->retry_at_ns = c->ws->now_ns + NSEC_PER_SEC;
		return;
	}
	c->state = COMFY_WS_CONNECTING;
	c->handshake_sent = false;
	c->retry_at_ns = 0;
	c->wsi = NULL;
	c->wsi = lws_client_connect_via_info(&i);
	if (!c->wsi && c->state != COMFY_WS_DOWN)
		went_down(c, "could not start a connection");
	sync_fd(c);
}

static void arm_timer(struct comfy_ws *ws)
{
	uint64_t next = 0, now = ws->now_ns;
	struct itimerspec its = { 0 };

	for (struct comfy_ws_conn *c = ws->conns; c; c = c->next) {
		uint64_t t;
		if (c->state == COMFY_WS_DOWN)
			t = c->retry_at_ns;
		else if (c->state == COMFY_WS_CONNECTING)
			t = now + NSEC_PER_SEC; /* libwebsockets' connect timeout runs on its own clock */
		else
			t = now + 10 * NSEC_PER_SEC; /* close handshakes, pings */
		if (!next || t < next)
			next = t;
	}
	if (ws->ctx && !lws_service_adjust_timeout(ws->ctx, 1, 0))
		next = now + NSEC_PER_MSEC; /* buffered data waits for a service call */
	if (next) {
		uint64_t d = next > now ? next - now : NSEC_PER_MSEC;
		its.it_value.tv_sec = (time_t)(d / NSEC_PER_SEC);
		its.it_value.tv_nsec = (long)(d % NSEC_PER_SEC);
	}
	timerfd_settime(ws->tfd, 0, &its, NULL);
}

void comfy_ws_retry_now(struct comfy_ws_conn *c)
{
	if (!c || c->state != COMFY_WS_DOWN)
		return;
	c->backoff_ms = 0;
	c->retry_at_ns = MAX(c->ws->now_ns, 1); /* 0 means "no retry" */
	arm_timer(c->ws);
}

int comfy_ws_new(int epfd, uint64_t tag, bool tls, struct comfy_ws **ret)
{
	struct lws_context_creation_info info = { 0 };
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };
	struct comfy_ws *ws;

	*ret = NULL;
	ws = calloc(1, sizeof(*ws));
	if (!ws)
		return -ENOMEM;
	ws->epfd = epfd;
	ws->tag = tag;
	ws->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ws->tfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, ws->tfd, &ev) < 0) {
		int r = -errno;
		comfy_ws_free(ws);
		return r;
	}
	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.gid = -1;
	info.uid = -1;
	info.timeout_secs = CONNECT_TIMEOUT_S;
	info.connect_timeout_secs = CONNECT_TIMEOUT_S;
	/* without it libwebsockets sizes its poll table by RLIMIT_NOFILE, which may be a million */
	info.fd_limit_per_thread = 64;
	/* TLS only for https URLs: its setup reads the system's CA bundle into the (locked) heap, ~0.4 MiB */
	info.options = tls ? LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT : 0;
	ws->ctx = lws_create_context(&info);
	if (!ws->ctx) {
		comfy_ws_free(ws);
		return -EIO;
	}
	*ret = ws;
	return 0;
}

struct comfy_ws *comfy_ws_free(struct comfy_ws *ws)
{
	struct comfy_ws_conn *c, *next;

	if (!ws)
		return NULL;
	/* lws closes the sockets; the callbacks must not queue into connections about to go */
	for (c = ws->conns; c; c = c->next)
		unwatch(c);
	if (ws->ctx)
		lws_context_destroy(ws->ctx);
	for (c = ws->conns; c; c = next) {
		next = c->next;
		free(c->buf);
		free(c);
	}
	if (ws->tfd >= 0)
		close(ws->tfd);
	free(ws);
	return NULL;
}

static bool id_url_safe(const char *s)
{
	if (!s || !*s || strlen(s) > 128)
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
			return false;
	return true;
}

int comfy_ws_connect(struct comfy_ws *ws, const char *base_url, const char *auth_header, const char *client_id,
		     const struct comfy_ws_callbacks *cb, void *userdata, struct comfy_ws_conn **ret)
{
	struct comfy_ws_conn *c;
	const char *p, *host_end, *path;
	size_t hlen;

	if (ret)
		*ret = NULL;
	if (!ws || !base_url || !cb || !ret || !id_url_safe(client_id))
		return -EINVAL;
	if (auth_header && (strchr(auth_header, '\r') || strchr(auth_header, '\n')))
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->ws = ws;
	c->fd = -1;
	c->cb = *cb;
	c->userdata = userdata;
	if (!strncmp(base_url, "http://", 7)) {
		p = base_url + 7;
		c->port = 80;
	} else if (!strncmp(base_url, "https://", 8)) {
		p = base_url + 8;
		c->port = 443;
		c->tls = true;
	} else {
		free(c);
		return -EINVAL;
	}
	path = strchr(p, '/');
	host_end = path ? path : p + strlen(p);
	if (*p == '[') { /* [v6]:port */
		const char *rb = memchr(p, ']', (size_t)(host_end - p));
		if (!rb) {
			free(c);
			return -EINVAL;
		}
		hlen = (size_t)(rb - p - 1);
		if (hlen >= sizeof(c->host)) {
			free(c);
			return -EINVAL;
		}
		memcpy(c->host, p + 1, hlen);
		if (rb[1] == ':')
			c->port = atoi(rb + 2);
	} else {
		const char *colon = memchr(p, ':', (size_t)(host_end - p));
		hlen = (size_t)((colon ? colon : host_end) - p);
		if (!hlen || hlen >= sizeof(c->host)) {
			free(c);
			return -EINVAL;
		}
		memcpy(c->host, p, hlen);
		if (colon)
			c->port = atoi(colon + 1);
	}
	c->numeric = resolve_is_numeric(c->host);
	if (c->port <= 0 || c->port > 65535) {
		free(c);
		return -EINVAL;
	}
	/* a path prefix (reverse proxy) goes before /ws; a trailing slash is not doubled */
	{
		size_t plen = path ? strlen(path) : 0;
		while (plen && path[plen - 1] == '/')
			plen--;
		if ((size_t)snprintf(c->path, sizeof(c->path), "%.*s/ws?clientId=%s", (int)plen, path ? path : "",
				     client_id) >= sizeof(c->path)) {
			free(c);
			return -EINVAL;
		}
	}
	if (auth_header)
		snprintf(c->auth_header, sizeof(c->auth_header), "%s", auth_header);
	c->state = COMFY_WS_DOWN;
	c->retry_at_ns = 1; /* at the next service */
	c->next = ws->conns;
	ws->conns = c;
	arm_timer(ws);
	*ret = c;
	return 0;
}

void comfy_ws_service(struct comfy_ws *ws, uint64_t now_ns)
{
	uint64_t n;

	if (!ws)
		return;
	ws->now_ns = now_ns;
	if (read(ws->tfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_debug_errno(-errno, "comfy ws timer");
	/* a negative timeout makes lws poll its sockets without waiting */
	lws_service(ws->ctx, -1);
	for (struct comfy_ws_conn *c = ws->conns; c; c = c->next) {
		if (c->state == COMFY_WS_DOWN && !c->wsi && c->retry_at_ns && now_ns >= c->retry_at_ns)
			start(c);
		sync_fd(c);
	}
	for (struct comfy_ws_conn *c = ws->conns; c; c = c->next) {
		size_t nq = c->nq;
		bool overflow = c->q_overflow;

		c->nq = 0;
		c->q_overflow = false;
		for (size_t i = 0; i < nq; i++) {
			const struct pending *p = &c->q[i];
			if (p->is_state) {
				/* a server that keeps refusing is said once, not at every retry */
				if (p->state == COMFY_WS_DOWN && c->down_reported)
					continue;
				if (p->state == COMFY_WS_DOWN)
					c->down_reported = true;
				if (c->cb.on_state)
					c->cb.on_state(c->userdata, p->state, p->why, now_ns);
			} else if (c->cb.on_message) {
				c->cb.on_message(c->userdata, &p->m, now_ns);
			}
		}
		if (overflow && c->cb.on_message) {
			struct wsmsg wake = { .type = WSMSG_STATUS };
			snprintf(wake.type_name, sizeof(wake.type_name), "status");
			c->cb.on_message(c->userdata, &wake, now_ns);
		}
	}
	arm_timer(ws);
}

void comfy_ws_set_address(struct comfy_ws_conn *c, const char *addr)
{
	if (!c || !addr)
		return;
	snprintf(c->addr, sizeof(c->addr), "%s", addr);
}

bool comfy_ws_connected(const struct comfy_ws_conn *c)
{
	return c && c->state == COMFY_WS_CONNECTED;
}

uint64_t comfy_ws_messages(const struct comfy_ws_conn *c)
{
	return c ? c->messages : 0;
}

void comfy_ws_make_client_id(char *buf, size_t size)
{
	unsigned char r[16] = { 0 };
	char hex[33];

	if (getrandom(r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		/* early boot without entropy: unique enough among this server's clients */
		uint64_t t = (uint64_t)getpid() << 32 ^ (uint64_t)time(NULL);
		memcpy(r, &t, sizeof(t));
	}
	for (size_t i = 0; i < sizeof(r); i++)
		snprintf(hex + 2 * i, 3, "%02x", r[i]);
	snprintf(buf, size, "oomsentry-%s", hex);
}

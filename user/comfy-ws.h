/* SPDX-License-Identifier: GPL-2.0 */
/* ComfyUI's websocket (/ws?clientId=ID) through libwebsockets, driven by the daemon's epoll loop: the sockets
 * libwebsockets opens are watched by the caller's epoll under one tag, and comfy_ws_service() runs
 * libwebsockets without waiting (lws_service with a negative timeout polls, never blocks). Debian builds
 * libwebsockets without external-poll callbacks, so the socket of each connection is looked up after every
 * call into the library and the epoll registration follows it.
 *
 * Messages are parsed (wsmsg.h) and handed to the connection's callback after libwebsockets returns, never
 * from inside it, so a callback may make HTTP calls or close connections. A connection that fails or closes is
 * retried with exponential backoff (1 s doubling to 30 s); the first failure is reported to the callback once so
 * the caller can say "falling back to polling".
 *
 * Name resolution is libwebsockets' own (getaddrinfo, synchronous): give the URL a numeric address or a name
 * /etc/hosts resolves (ComfyUI on this host: 127.0.0.1, localhost) so the loop never waits on DNS. */
#ifndef OOMSENTRY_COMFY_WS_H
#define OOMSENTRY_COMFY_WS_H

#include <stdbool.h>
#include <stdint.h>
#include "wsmsg.h"

struct comfy_ws;      /* one per daemon: the libwebsockets context and its timer */
struct comfy_ws_conn; /* one per instance */

enum comfy_ws_state {
	COMFY_WS_CONNECTING = 0,
	COMFY_WS_CONNECTED,    /* upgrade answered with 101: events flow */
	COMFY_WS_DOWN,         /* failed or closed; a retry is scheduled */
};

struct comfy_ws_callbacks {
	/* a parsed text message (binary preview frames and messages that do not parse are dropped) */
	void (*on_message)(void *userdata, const struct wsmsg *m, uint64_t now_ns);
	/* state changes; why says what happened ("connection refused", "upgrade answered 404") */
	void (*on_state)(void *userdata, enum comfy_ws_state state, const char *why, uint64_t now_ns);
};

/* Creates the context; its sockets and timer are added to epfd with data.u64 = tag; tls: some URL is https (TLS
 * is set up only then). Returns 0, -ENOMEM, -EIO (libwebsockets could not start), or negative errno of
 * epoll/timerfd. */
int comfy_ws_new(int epfd, uint64_t tag, bool tls, struct comfy_ws **ret);
/* Closes every connection; accepts NULL; returns NULL. */
struct comfy_ws *comfy_ws_free(struct comfy_ws *ws);

/* Starts following base_url (http[s]://host[:port][/prefix], as the instance's config) with client_id; the first
 * attempt is made at the next comfy_ws_service(). auth_header: NULL/"" or "Name: value" sent with the upgrade.
 * Returns 0, -EINVAL (URL not http(s), client_id empty or not URL-safe), -ENOMEM. */
int comfy_ws_connect(struct comfy_ws *ws, const char *base_url, const char *auth_header, const char *client_id,
		     const struct comfy_ws_callbacks *cb, void *userdata, struct comfy_ws_conn **ret);

/* Call when epoll reports the tag: services libwebsockets, retries due connections, then delivers messages and
 * state changes to the callbacks. Never blocks. */
void comfy_ws_service(struct comfy_ws *ws, uint64_t now_ns);

/* A connection that is down tries again at the next service, its backoff reset: the caller knows a (new) server
 * answers, and a server restarted by a stop must be followed from its first prompt, not after a backoff that grew
 * while it was down. No-op on NULL or a connection that is up. */
void comfy_ws_retry_now(struct comfy_ws_conn *c);
/* The server's numeric address (the HTTP client's, comfy_client_address): a URL naming a host connects only once
 * it is known, never through a blocking lookup. */
void comfy_ws_set_address(struct comfy_ws_conn *c, const char *addr);
bool comfy_ws_connected(const struct comfy_ws_conn *c);
/* Messages received on the connection since it was made (for status and tests). */
uint64_t comfy_ws_messages(const struct comfy_ws_conn *c);

/* A client id no other client of that server uses: "oomsentry-" + 32 random hex digits. */
void comfy_ws_make_client_id(char *buf, size_t size);

#endif

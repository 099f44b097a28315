/* SPDX-License-Identifier: GPL-2.0 */
/* The /metrics endpoint, served by libmicrohttpd from the daemon's own epoll loop (no HTTP thread). What it serves
 * is core/metrics.h's registry. */
#ifndef OOMSENTRY_METRICS_HTTP_H
#define OOMSENTRY_METRICS_HTTP_H

#include <stdbool.h>
#include <sys/socket.h>

#define METRICS_DEFAULT_LISTEN "127.0.0.1:9464"
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* ---- HTTP endpoint (one per process) ---- */

/* Parses the `metrics_listen` setting: "off"/"no"/"false"/"none"/"" disable; "PORT" means 127.0.0.1:PORT;
 * "IPV4:PORT" or "[IPV6]:PORT" (numeric addresses only: no DNS in the daemon). NULL means the default
 * METRICS_DEFAULT_LISTEN. Port 0 asks the kernel for an ephemeral port.
 * Returns 0 with *ret_enabled set (and *ret_addr, *ret_addr_len filled when enabled), or -EINVAL. */
int metrics_parse_listen(const char *text, struct sockaddr_storage *ret_addr, socklen_t *ret_addr_len,
			 bool *ret_enabled);

/* Starts the endpoint in external-epoll mode: GET /metrics -> 200 METRICS_CONTENT_TYPE, other paths 404,
 * other methods 405. Returns 1 when listening, 0 when disabled by `listen`, -EALREADY when already running,
 * -EINVAL (bad listen text), -EADDRINUSE/-EACCES/-EADDRNOTAVAIL (bind), -EIO (libmicrohttpd refused); errors are
 * the caller's to log. */
int metrics_server_start(const char *listen);

/* The fd to add to the daemon's epoll (EPOLLIN); call metrics_server_process() when it is readable and
 * whenever metrics_server_timeout_ms() elapses. Returns the fd (owned by the server) or -ENOTCONN. */
int metrics_server_fd(void);

/* The longest the caller may sleep before calling metrics_server_process(): -1 = no deadline, 0 = now
 * (data already buffered), or milliseconds. Returns -1 too when the server is not running. */
int metrics_server_timeout_ms(void);

/* Accepts, reads and answers whatever is ready, without blocking; it repeats a few times while
 * libmicrohttpd still has buffered work, so a loop that only reacts to the fd does not stall a scrape.
 * Returns 0, -ENOTCONN, -EIO. */
int metrics_server_process(void);

/* The bound TCP port (useful with port 0). Returns the port or -ENOTCONN. */
int metrics_server_port(void);

/* Closes the listening socket and every connection. Safe to call when not running. */
void metrics_server_stop(void);

#endif

// SPDX-License-Identifier: GPL-2.0
/* The /metrics endpoint: libmicrohttpd driven from the daemon's epoll loop. The registry and its rendering are
 * core/metrics.c. */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "common.h"
#include "log.h"
#include "metrics.h"
#include "metrics-http.h"

#define METRICS_CONNECTION_LIMIT 64
#define METRICS_PER_IP_CONNECTION_LIMIT 4

static struct MHD_Daemon *daemon_;

int metrics_parse_listen(const char *text, struct sockaddr_storage *ret_addr, socklen_t *ret_addr_len,
			 bool *ret_enabled)
{
	static const char *const off[] = { "", "off", "no", "false", "none" };
	char host[INET6_ADDRSTRLEN + 2];
	const char *port_text, *p;
	size_t host_len;
	unsigned long port;
	char *end;
	size_t i;

	if (!ret_addr || !ret_addr_len || !ret_enabled)
		return -EINVAL;
	if (!text)
		text = METRICS_DEFAULT_LISTEN;
	for (i = 0; i < ARRAY_SIZE(off); i++)
		if (strcasecmp(text, off[i]) == 0) {
			*ret_enabled = false;
			return 0;
		}

	if (text[0] == '[') {
		p = strchr(text, ']');
		if (!p || p[1] != ':')
			return -EINVAL;
		host_len = (size_t)(p - text - 1);
		if (host_len == 0 || host_len >= sizeof(host))
			return -EINVAL;
		memcpy(host, text + 1, host_len);
		host[host_len] = '\0';
		port_text = p + 2;
	} else if ((p = strrchr(text, ':'))) {
		host_len = (size_t)(p - text);
		if (host_len == 0 || host_len >= sizeof(host))
			return -EINVAL;
		memcpy(host, text, host_len);
		host[host_len] = '\0';
		port_text = p + 1;
	} else {
		snprintf(host, sizeof(host), "127.0.0.1");
		port_text = text;
	}

	if (port_text[0] < '0' || port_text[0] > '9')
		return -EINVAL;
	errno = 0;
	port = strtoul(port_text, &end, 10);
	if (errno || *end || port > 65535)
		return -EINVAL;

	memset(ret_addr, 0, sizeof(*ret_addr));
	if (text[0] == '[') {
		struct sockaddr_in6 *sa6 = (struct sockaddr_in6 *)ret_addr;

		if (inet_pton(AF_INET6, host, &sa6->sin6_addr) != 1)
			return -EINVAL;
		sa6->sin6_family = AF_INET6;
		sa6->sin6_port = htons((uint16_t)port);
		*ret_addr_len = sizeof(*sa6);
	} else {
		struct sockaddr_in *sa4 = (struct sockaddr_in *)ret_addr;

		if (inet_pton(AF_INET, host, &sa4->sin_addr) != 1)
			return -EINVAL;
		sa4->sin_family = AF_INET;
		sa4->sin_port = htons((uint16_t)port);
		*ret_addr_len = sizeof(*sa4);
	}
	*ret_enabled = true;
	return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];
	size_t n;

	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_warn("metrics: http: %s", buf);
}

static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned status, const char *text)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result handle_request(void *cls, struct MHD_Connection *conn, const char *url,
				      const char *method, const char *version, const char *upload_data,
				      size_t *upload_data_size, void **req_cls)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	char *body;
	size_t len;

	(void)cls, (void)version, (void)upload_data, (void)upload_data_size, (void)req_cls;

	/* Answer before any request body is read: nothing here takes a body, and the reply closes it. */
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0)
		return queue_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "only GET is supported\n");
	if (strcmp(url, "/metrics") != 0)
		return queue_text(conn, MHD_HTTP_NOT_FOUND, "not found; metrics are at /metrics\n");
	if (metrics_render(&body, &len) < 0)
		return queue_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n");
	resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, METRICS_CONTENT_TYPE);
	ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
	MHD_destroy_response(resp);
	return ret;
}

/* libmicrohttpd only logs bind failures; a trial bind gives the caller the real errno to report. */
static int probe_bind(const struct sockaddr_storage *addr, socklen_t addr_len)
{
	_cleanup_close_ int fd = -1;
	int one = 1;

	fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		return -errno;
	if (addr->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		return -errno;
	if (bind(fd, (const struct sockaddr *)addr, addr_len) < 0)
		return -errno;
	return 0;
}

int metrics_server_start(const char *listen)
{
	struct sockaddr_storage addr;
	socklen_t addr_len;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	bool enabled;
	int r;

	if (daemon_)
		return -EALREADY;
	r = metrics_parse_listen(listen, &addr, &addr_len, &enabled);
	if (r < 0)
		return r;
	if (!enabled) {
		log_info("metrics: endpoint disabled");
		return 0;
	}
	r = probe_bind(&addr, addr_len);
	if (r < 0)
		return r;
	if (addr.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* Small limits: Prometheus scrapes with one connection, and the daemon must stay cheap under attack. */
	daemon_ = MHD_start_daemon(flags, 0, NULL, NULL, handle_request, NULL,
				   MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
				   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
				   /* slow clients from one address (or a scanner) must not starve the scrapes: a few
				    * connections per address, and more in all than one address may hold */
				   MHD_OPTION_CONNECTION_LIMIT, (unsigned)METRICS_CONNECTION_LIMIT,
				   MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)METRICS_PER_IP_CONNECTION_LIMIT,
				   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10,
				   MHD_OPTION_END);
	if (!daemon_)
		return -EIO;
	log_info("metrics: serving http://%s/metrics", listen ? listen : METRICS_DEFAULT_LISTEN);
	return 1;
}

int metrics_server_fd(void)
{
	const union MHD_DaemonInfo *info;

	if (!daemon_)
		return -ENOTCONN;
	info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_EPOLL_FD);
	if (!info || info->epoll_fd < 0)
		return -EIO;
	return info->epoll_fd;
}

int metrics_server_timeout_ms(void)
{
	MHD_UNSIGNED_LONG_LONG t;

	if (!daemon_ || MHD_get_timeout(daemon_, &t) != MHD_YES)
		return -1;
	return t > INT_MAX ? INT_MAX : (int)t;
}

int metrics_server_process(void)
{
	MHD_UNSIGNED_LONG_LONG t;
	int i;

	if (!daemon_)
		return -ENOTCONN;
	/* Connections sit in libmicrohttpd's epoll edge-triggered: work it left buffered will not make the fd
	 * readable again, so finish it here (bounded, in case it never settles). */
	for (i = 0; i < 8; i++) {
		if (MHD_run(daemon_) != MHD_YES)
			return -EIO;
		if (MHD_get_timeout(daemon_, &t) != MHD_YES || t > 0)
			break;
	}
	return 0;
}

int metrics_server_port(void)
{
	const union MHD_DaemonInfo *info;

	if (!daemon_)
		return -ENOTCONN;
	info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	if (!info)
		return -EIO;
	return info->port;
}

void metrics_server_stop(void)
{
	if (!daemon_)
		return;
	MHD_stop_daemon(daemon_);
	daemon_ = NULL;
}

// SPDX-License-Identifier: GPL-2.0
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "common.h"
#include "resolve.h"

struct resolve {
	struct gaicb cb;
	struct gaicb *list[1];
	struct addrinfo hints;
	char name[256];
};

bool resolve_is_numeric(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];
	char tmp[64];
	size_t n = strlen(host);

	if (inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1)
		return true;
	if (n > 2 && n - 2 < sizeof(tmp) && host[0] == '[' && host[n - 1] == ']') {
		memcpy(tmp, host + 1, n - 2);
		tmp[n - 2] = 0;
		return inet_pton(AF_INET6, tmp, buf) == 1;
	}
	return false;
}

int resolve_start(const char *host, struct resolve **ret)
{
	struct resolve *r;
	int e;

	if (strlen(host) >= sizeof(r->name))
		return -ENAMETOOLONG;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	memcpy(r->name, host, strlen(host) + 1);
	r->hints.ai_family = AF_UNSPEC;
	r->hints.ai_socktype = SOCK_STREAM;
	r->cb.ar_name = r->name;
	r->cb.ar_request = &r->hints;
	r->list[0] = &r->cb;
	e = getaddrinfo_a(GAI_NOWAIT, r->list, 1, NULL);
	if (e) {
		free(r);
		return e == EAI_MEMORY ? -ENOMEM : -EAGAIN;
	}
	*ret = r;
	return 0;
}

int resolve_poll(struct resolve *r, char *addr, size_t len, const char **why)
{
	int e = gai_error(&r->cb);
	const struct addrinfo *ai;

	*why = NULL;
	if (e == EAI_INPROGRESS)
		return -EINPROGRESS;
	if (e) {
		*why = gai_strerror(e);
		return -EHOSTUNREACH;
	}
	for (ai = r->cb.ar_result; ai; ai = ai->ai_next) {
		const void *a = ai->ai_family == AF_INET ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr :
			       ai->ai_family == AF_INET6 ? (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr :
							   NULL;
		if (a && inet_ntop(ai->ai_family, a, addr, (socklen_t)len))
			return 0;
	}
	*why = "no address";
	return -EHOSTUNREACH;
}

void resolve_free(struct resolve *r)
{
	if (!r)
		return;
	/* a lookup that cannot be cancelled still writes into r from its thread: r is left to it (a few hundred
	 * bytes, only when the daemon stops in the middle of a lookup) */
	if (gai_error(&r->cb) == EAI_INPROGRESS && gai_cancel(&r->cb) != EAI_CANCELED)
		return;
	if (r->cb.ar_result)
		freeaddrinfo(r->cb.ar_result);
	free(r);
}

/* SPDX-License-Identifier: GPL-2.0 */
/* Host names resolved off the loop (glibc's getaddrinfo_a, its own thread): libwebsockets here resolves with a
 * blocking getaddrinfo, and libcurl's threaded resolver joins its thread when a transfer ends before the lookup
 * does, so a DNS server that does not answer would hold the loop for the resolver's whole timeout. The clients
 * are handed the numeric address instead. */
#ifndef OOMSENTRY_RESOLVE_H
#define OOMSENTRY_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>

struct resolve;

/* Whether host is already an address (IPv4, or IPv6 with or without brackets): nothing to resolve. */
bool resolve_is_numeric(const char *host);
/* Starts the lookup of host (TCP). 0 or negative errno. */
int resolve_start(const char *host, struct resolve **ret);
/* -EINPROGRESS while it runs; 0 with the first address, numeric, in addr; another negative errno when it failed,
 * with the resolver's words in why. */
int resolve_poll(struct resolve *r, char *addr, size_t len, const char **why);
/* Cancels a lookup that runs and frees; NULL ok. */
void resolve_free(struct resolve *r);

#endif

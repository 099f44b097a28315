/* SPDX-License-Identifier: GPL-2.0 */
/* Listening TCP sockets through NETLINK_SOCK_DIAG (inet_diag): the kernel dumps only sockets in LISTEN, where
 * reading /proc/net/tcp{,6} walks every established connection of the network namespace too. On a busy host
 * that walk was most of oomsentry's idle CPU (bench/idle.py, perf: established_get_first), since the server's
 * port is checked at every poll. */
#ifndef OOMSENTRY_SOCKDIAG_H
#define OOMSENTRY_SOCKDIAG_H

#include <stddef.h>
#include <stdint.h>
#include "procfs.h"

/* Inodes of the TCP sockets (IPv4 and IPv6) of this network namespace listening on port and serving connections
 * to *want (listening on that address or on the wildcard; want NULL or len 0: all). Stores at most max; returns
 * the number stored, or a negative errno when netlink cannot answer (the caller falls back to /proc). */
int sockdiag_listening_inodes(uint16_t port, const struct procfs_addr *want, uint64_t *inodes, size_t max);

#endif

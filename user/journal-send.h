/* SPDX-License-Identifier: GPL-2.0 */
/* Entries to journald over its native protocol, never waiting for it: sd_journal_send() writes to a blocking
 * datagram socket, so a journald that does not read (busy, stopped, starved by the memory pressure oomsentry is
 * there for) held the loop once a few datagrams were queued (net.unix.max_dgram_qlen: 10 by the kernel's default,
 * 512 under systemd). An entry the socket cannot take now is dropped and counted; standard output (when it is not
 * the journal itself) still has every record. */
#ifndef OOMSENTRY_JOURNAL_SEND_H
#define OOMSENTRY_JOURNAL_SEND_H

#include <stdint.h>
#include <sys/uio.h>

#define JOURNAL_SOCKET "/run/systemd/journal/socket"

/* iov: "FIELD=value" items (values may hold newlines). 0, -EAGAIN when journald's queue is full (dropped), or
 * another negative errno. */
int journal_send(const struct iovec *iov, int n);
/* Entries dropped so far because journald did not read. */
uint64_t journal_send_dropped(void);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* Clients of the daemon's local sockets (the status socket, systemd-oomd's pre-kill hook) served on the epoll loop:
 * every client socket is non-blocking, what it is sent is queued and written as it drains, and a client that stops
 * reading or writing is hung up on at its deadline. A stuck client costs a slot, never the loop's time. */
#ifndef OOMSENTRY_LOCALCONN_H
#define OOMSENTRY_LOCALCONN_H

#include <stddef.h>
#include <stdint.h>

/* Clients at once; one more hangs up on the oldest of its kind (same ops), else on the oldest: a flood of one kind
 * of client pushes out neither BPF events nor the other kind. */
#define LOCALCONN_MAX 16

struct localconn;

struct localconn_ops {
	/* Bytes arrived: in[0, len) is what is unconsumed so far. Returns how many bytes it consumed, or -1 to hang up
	 * once what is queued has been sent. */
	long (*input)(struct localconn *c, char *in, size_t len, void *ctx);
	/* The client is gone (hung up, timed out, or shut down): ctx may be freed. */
	void (*release)(void *ctx);
};

/* epfd: the loop's epoll; every client fd carries tag in the low 32 bits of epoll_event.data.u64 (its slot
 * above), so that the loop hands its events to localconn_dispatch(). */
void localconn_setup(int epfd, uint64_t tag);
/* Takes over fd (made non-blocking here). ops NULL: a client that is only written to (then hung up on, see
 * localconn_finish). in_max: the largest unconsumed input before the client is hung up on. NULL on failure (fd
 * closed, ops->release run). */
struct localconn *localconn_add(int fd, uint64_t timeout_ms, const struct localconn_ops *ops, void *ctx,
				size_t in_max);
/* Queues len bytes and writes what the socket takes now; 0 or -ENOMEM. */
int localconn_send(struct localconn *c, const char *buf, size_t len);
/* Hang up once everything queued has been sent (at once when nothing is queued). */
void localconn_finish(struct localconn *c);
/* An event on a client fd (ev: the struct epoll_event). */
void localconn_dispatch(const void *ev);
/* Milliseconds until the nearest client deadline; -1 none. */
int localconn_timeout_ms(void);
/* Hangs up on clients past their deadline. */
void localconn_expire(void);
/* Clients connected now (for tests through the status table, and metrics). */
unsigned localconn_count(void);
/* Hangs up on every client. */
void localconn_shutdown(void);

#endif

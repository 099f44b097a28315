/* SPDX-License-Identifier: GPL-2.0 */
/* systemd's RestartUnit over D-Bus on the daemon's epoll loop: the method call and the end of the job it queued
 * (the manager's JobRemoved signal, which systemd sends to the client that queued the job) are awaited on the bus
 * connection's fd, never in a blocking call. A stop of ComfyUI that systemd takes its time over (TimeoutStopSec)
 * holds nothing else up; a job that fails is reported so that the caller can stop the server itself. */
#ifndef OOMSENTRY_UNITJOB_H
#define OOMSENTRY_UNITJOB_H

#include <stdint.h>

struct unitjob;

/* The job's end: r 0 and result "done", or r < 0 with result the job's result ("failed", "timeout", "canceled",
 * "dependency", ...) or the D-Bus error's name or message when the call itself failed. The handle is freed after
 * the call returns. Runs from unitjob_dispatch(), never from inside unitjob_restart(). */
typedef void (*unitjob_done_fn)(int r, const char *result, void *ctx);

/* epfd: the loop's epoll; the bus connection's fd is added with tag (epoll_event.data.u64) once a first job is
 * started, so that the loop hands its events to unitjob_dispatch(). */
void unitjob_setup(int epfd, uint64_t tag);
/* RestartUnit(unit, "replace"). 0 with *ret set (done runs later), or negative errno when no call could even be
 * sent (no system bus: -ENOENT, -ECONNREFUSED, ...), with a message logged. */
int unitjob_restart(const char *unit, unitjob_done_fn done, void *ctx, struct unitjob **ret);
/* Forgets a job: its done callback never runs (the caller goes away). NULL ok. */
void unitjob_cancel(struct unitjob *j);
/* Bus activity, or the bus's own timeout (a call's reply overdue) passed: runs sd-bus and the done callbacks. */
void unitjob_dispatch(void);
/* Milliseconds until the bus wants unitjob_dispatch() without fd activity; -1 none. */
int unitjob_timeout_ms(void);
/* Jobs not yet ended. */
unsigned unitjob_pending(void);
/* Cancels every job and closes the connection. */
void unitjob_shutdown(void);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* Standard output and standard error written by a thread of their own: the event loop formats a line and queues
 * it (lineq), and never waits for a reader. A pipe whose reader hangs (a log shipper, `| less` left open, a
 * container runtime's log pipe) blocks write() once its 64 KiB are full; the loop would then handle no RSS event
 * and take no action while the kernel's OOM killer did. What finds the queue full is dropped and counted, and a
 * notice line says how many where the gap is. The descriptor itself stays as it is (no O_NONBLOCK): its file
 * description may be shared with a terminal or a shell. */
#ifndef OOMSENTRY_RECOUT_H
#define OOMSENTRY_RECOUT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "lineq.h"

struct recout {
	int fd;
	pthread_mutex_t mu;
	pthread_cond_t work, idle;
	struct lineq q;
	bool started, threaded, busy, closed;
	bool no_direct; /* the descriptor refused RWF_NOWAIT: every line goes through the writer thread */
	int err; /* a write's failure, until recout_error() takes it */
};

/* The daemon's standard error once the daemon queues it (log.c); messages of other modules go through it too. */
extern struct recout recout_stderr;

/* Queues lines for fd (a byte budget of cap; notice formats the dropped-lines line) and starts its writer thread.
 * Without a thread (pthread_create failed) recout_write writes in the caller, as before. */
void recout_start(struct recout *o, int fd, size_t cap, lineq_notice_fn notice, void *notice_ctx);
bool recout_started(const struct recout *o);
/* text (len bytes, no newline) as one line; never waits for the reader. LINEQ_DROPPED_FIRST tells the caller to
 * warn once. After a permanent write error (the reader closed the pipe) lines are discarded. */
enum lineq_result recout_write(struct recout *o, const char *text, size_t len);
/* text as one line: queued when o is started, else written to direct at once (a one-shot command, the start). */
void recout_line(struct recout *o, FILE *direct, const char *text);
/* A write's failure since the last call (negative errno), or 0. */
int recout_error(struct recout *o);
/* Before exit or re-exec: waits until every queued line is written, or until deadline_ns (CLOCK_MONOTONIC).
 * Returns the lines left unwritten. */
size_t recout_flush(struct recout *o, uint64_t deadline_ns);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* A bounded queue of output lines between the event loop, which must never wait for a reader, and a writer
 * thread, which may. Lines that find no room are dropped and counted; the next line that finds room is preceded
 * by a notice saying how many went missing there, so that a reader sees where the gap is and how large. No I/O,
 * no locking: the caller holds its own lock. */
#ifndef OOMSENTRY_LINEQ_H
#define OOMSENTRY_LINEQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct lineq_line {
	struct lineq_line *next;
	size_t len; /* text's bytes, its newline included */
	char text[];
};

/* Writes the notice for `dropped` lines (without a newline) into buf; returns its length (0: none). */
typedef size_t (*lineq_notice_fn)(uint64_t dropped, char *buf, size_t size, void *ctx);

struct lineq {
	struct lineq_line *head, *tail;
	size_t bytes; /* what the queued lines hold, each counted with its header: the memory a reader owes */
	size_t cap;
	uint64_t dropped;       /* since the last notice went in: the current gap */
	uint64_t dropped_total; /* since the start */
	lineq_notice_fn notice;
	void *notice_ctx;
};

enum lineq_result {
	LINEQ_QUEUED,
	LINEQ_QUEUED_AFTER_GAP, /* queued behind the notice of a gap: a dropping episode ended */
	LINEQ_DROPPED_FIRST,    /* no room: the first line of a new gap */
	LINEQ_DROPPED,          /* no room, in a gap already counted */
};

/* An empty queue holding at most cap bytes (lines with their headers). */
void lineq_init(struct lineq *q, size_t cap, lineq_notice_fn notice, void *ctx);
/* Queues text (len bytes, without its newline; one is added). */
enum lineq_result lineq_push(struct lineq *q, const char *text, size_t len);
/* Queues the notice of the current gap alone, when there is one and room for it (the last words before exit,
 * when no line may come after the gap). True when it went in; without a notice the gap is forgotten. */
bool lineq_close_gap(struct lineq *q);
/* The oldest line, out of the queue (its bytes released); the caller frees it. NULL when empty. */
struct lineq_line *lineq_pop(struct lineq *q);
/* Lines queued. */
size_t lineq_count(const struct lineq *q);
/* Frees every queued line (an output that is gone for good); they are not counted as dropped. */
void lineq_clear(struct lineq *q);

#endif

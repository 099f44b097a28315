// SPDX-License-Identifier: GPL-2.0
#include <stdlib.h>
#include <string.h>
#include "lineq.h"

/* a notice is one record line: the longest the caller formats stays well under this */
#define NOTICE_MAX 1024

void lineq_init(struct lineq *q, size_t cap, lineq_notice_fn notice, void *ctx)
{
	memset(q, 0, sizeof(*q));
	q->cap = cap;
	q->notice = notice;
	q->notice_ctx = ctx;
}

static size_t cost(size_t len)
{
	return sizeof(struct lineq_line) + len + 1;
}

static bool fits(const struct lineq *q, size_t need)
{
	return need <= q->cap && q->bytes <= q->cap - need;
}

static void append(struct lineq *q, struct lineq_line *l)
{
	l->next = NULL;
	if (q->tail)
		q->tail->next = l;
	else
		q->head = l;
	q->tail = l;
	q->bytes += cost(l->len - 1);
}

static struct lineq_line *line_new(const char *text, size_t len)
{
	struct lineq_line *l = malloc(cost(len));

	if (!l)
		return NULL;
	memcpy(l->text, text, len);
	l->text[len] = '\n';
	l->len = len + 1;
	return l;
}

static enum lineq_result drop(struct lineq *q)
{
	q->dropped_total++;
	return q->dropped++ ? LINEQ_DROPPED : LINEQ_DROPPED_FIRST;
}

/* The gap's notice, made but not queued: NULL when the caller formats none (the gap is then only counted). */
static struct lineq_line *notice_new(struct lineq *q, bool *none)
{
	char buf[NOTICE_MAX];
	size_t n = q->notice ? q->notice(q->dropped, buf, sizeof(buf), q->notice_ctx) : 0;

	*none = !n;
	return n ? line_new(buf, n < sizeof(buf) ? n : sizeof(buf) - 1) : NULL;
}

enum lineq_result lineq_push(struct lineq *q, const char *text, size_t len)
{
	struct lineq_line *l, *note = NULL;
	bool gap = q->dropped > 0, none = false;

	if (gap) {
		note = notice_new(q, &none);
		if (!note && !none)
			return drop(q);
	}
	/* a gap is closed only with the line that follows it: a notice queued alone could be followed by yet
	 * another drop, and then it would not say where the gap ends */
	if (!fits(q, cost(len) + (note ? cost(note->len - 1) : 0)) || !(l = line_new(text, len))) {
		free(note);
		return drop(q);
	}
	if (note)
		append(q, note);
	append(q, l);
	q->dropped = 0;
	return gap ? LINEQ_QUEUED_AFTER_GAP : LINEQ_QUEUED;
}

bool lineq_close_gap(struct lineq *q)
{
	struct lineq_line *note;
	bool none;

	if (!q->dropped)
		return false;
	note = notice_new(q, &none);
	if (none)
		q->dropped = 0;
	if (!note || !fits(q, cost(note->len - 1))) {
		free(note);
		return false;
	}
	append(q, note);
	q->dropped = 0;
	return true;
}

struct lineq_line *lineq_pop(struct lineq *q)
{
	struct lineq_line *l = q->head;

	if (!l)
		return NULL;
	q->head = l->next;
	if (!q->head)
		q->tail = NULL;
	q->bytes -= cost(l->len - 1);
	l->next = NULL;
	return l;
}

size_t lineq_count(const struct lineq *q)
{
	size_t n = 0;

	for (const struct lineq_line *l = q->head; l; l = l->next)
		n++;
	return n;
}

void lineq_clear(struct lineq *q)
{
	struct lineq_line *l;

	while ((l = lineq_pop(q)))
		free(l);
}

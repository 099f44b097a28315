// SPDX-License-Identifier: GPL-2.0
/* The running prompt's end as ComfyUI's websocket shows it: status broadcasts, then the prompt ids of execution
 * events (qtrack.h says why each step is sound). */
#include <string.h>
#include "common.h"
#include "qtrack.h"

void qtrack_init(struct qtrack *t)
{
	memset(t, 0, sizeof(*t));
}

static void new_connection(struct qtrack *t, bool connected)
{
	t->conn++;
	t->connected = connected;
	t->seen = 0;
	t->msgs = 0;
	t->n_ids = 0; /* another server's prompts, or events missed meanwhile */
	t->anchored = false;
}

void qtrack_connected(struct qtrack *t)
{
	new_connection(t, true);
}

void qtrack_lost(struct qtrack *t)
{
	new_connection(t, false);
}

void qtrack_status(struct qtrack *t, int64_t queue_remaining)
{
	if (!t->connected)
		return;
	t->ring[t->seen % QTRACK_FRAMES] = queue_remaining;
	t->seen++;
	t->msgs++;
}

void qtrack_event(struct qtrack *t, const char *prompt_id, bool ended)
{
	struct qtrack_idseen *e = t->n_ids ? &t->ids[(t->n_ids - 1) % QTRACK_IDS] : NULL;

	if (!t->connected || !prompt_id || !prompt_id[0] || strlen(prompt_id) >= QTRACK_ID_MAX)
		return;
	/* a prompt's events come in one run (one worker): an entry per run keeps the last prompts; events after its end
	 * are another run (queued again under its id) */
	if (!e || strcmp(e->id, prompt_id) || e->ended) {
		e = &t->ids[t->n_ids++ % QTRACK_IDS];
		memset(e, 0, sizeof(*e));
		strcpy(e->id, prompt_id);
		e->first_at = t->msgs;
	}
	if (ended && !e->ended) {
		e->ended = true;
		e->ended_at = t->msgs;
	}
	t->msgs++;
}

struct qtrack_mark qtrack_mark(const struct qtrack *t)
{
	return (struct qtrack_mark){ .conn = t->conn, .seen = t->seen, .msgs = t->msgs, .connected = t->connected };
}

void qtrack_reply(struct qtrack *t, struct qtrack_mark m, size_t n_running, size_t n_pending)
{
	/* a request sent with no websocket, or on a connection since lost, has no place among the frames */
	t->anchored = m.connected && t->connected && m.conn == t->conn && m.seen <= t->seen;
	t->anchor_conn = m.conn;
	t->anchor_seen = m.seen;
	t->anchor_msgs = m.msgs;
	t->remaining = (int64_t)(n_running + n_pending);
	t->running = n_running > 0;
	t->n_running = n_running;
	t->running_id[0] = 0;
	t->n_pending_ids = 0;
	t->n_posted_ids = 0;
	t->replies++;
	t->own_posts = 0;
	t->tainted = false;
}

void qtrack_reply_item(struct qtrack *t, const char *prompt_id, int64_t number, bool running)
{
	size_t k;

	if (!prompt_id || !prompt_id[0] || strlen(prompt_id) >= QTRACK_ID_MAX)
		return;
	if (running) {
		/* with two running (not ComfyUI's one worker) a start proves nothing of either */
		if (t->n_running == 1)
			strcpy(t->running_id, prompt_id);
		return;
	}
	/* the lowest numbers run first (ComfyUI's heap); keep those */
	if (t->n_pending_ids < QTRACK_PENDING) {
		k = t->n_pending_ids++;
	} else {
		k = 0;
		for (size_t i = 1; i < QTRACK_PENDING; i++)
			if (t->pending_numbers[i] > t->pending_numbers[k])
				k = i;
		if (t->pending_numbers[k] <= number)
			return;
	}
	strcpy(t->pending_ids[k], prompt_id);
	t->pending_numbers[k] = number;
}

/* The entries naming id since the anchor's request was sent; false when one came before it (the id ran before:
 * queued again, its events cannot be placed). */
static bool seen_since(const struct qtrack *t, const char *id, bool ended)
{
	uint64_t first = t->n_ids > QTRACK_IDS ? t->n_ids - QTRACK_IDS : 0;
	bool found = false;

	for (uint64_t k = first; k < t->n_ids; k++) {
		const struct qtrack_idseen *e = &t->ids[k % QTRACK_IDS];

		if (strcmp(e->id, id))
			continue;
		if (ended) {
			/* its last run's end: one followed by events of another run says nothing of that one */
			found = e->ended && e->ended_at >= t->anchor_msgs;
			continue;
		}
		if (e->first_at < t->anchor_msgs)
			return false;
		found = true;
	}
	return found;
}

static enum qtrack_verdict by_ids(const struct qtrack *t)
{
	if (!t->running_id[0] || t->remaining < 1)
		return QTRACK_UNKNOWN;
	if (seen_since(t, t->running_id, true))
		return QTRACK_FINISHED_ENDED;
	for (size_t i = 0; i < t->n_pending_ids; i++)
		if (strcmp(t->pending_ids[i], t->running_id) && seen_since(t, t->pending_ids[i], false))
			return QTRACK_FINISHED_STARTED;
	for (size_t i = 0; i < MIN(t->n_posted_ids, (size_t)QTRACK_PENDING); i++)
		if (strcmp(t->posted_ids[i], t->running_id) && seen_since(t, t->posted_ids[i], false))
			return QTRACK_FINISHED_STARTED;
	return QTRACK_UNKNOWN;
}

uint64_t qtrack_post_sent(struct qtrack *t, const char *prompt_id)
{
	if (prompt_id && prompt_id[0] && strlen(prompt_id) < QTRACK_ID_MAX)
		strcpy(t->posted_ids[t->n_posted_ids++ % QTRACK_PENDING], prompt_id);
	return t->replies;
}

void qtrack_post_accepted(struct qtrack *t, uint64_t ticket)
{
	if (ticket == t->replies)
		t->own_posts++;
	else
		t->tainted = true;
}

enum qtrack_verdict qtrack_running_finished(const struct qtrack *t)
{
	enum qtrack_verdict v = QTRACK_UNKNOWN;
	unsigned rises = 0;
	bool later = false;
	int64_t prev;

	if (!t->anchored || !t->running || !t->connected || t->anchor_conn != t->conn)
		return QTRACK_UNKNOWN;
	/* the counts must be placed after the reply; the ids need no placing */
	if (t->tainted)
		return by_ids(t);
	/* the frames since the request, and the one before them, must still be in the ring */
	if (t->seen - t->anchor_seen + (t->anchor_seen ? 1 : 0) > QTRACK_FRAMES)
		return by_ids(t);
	/* the frame before the window; with none on this connection, the reply's own N */
	prev = t->anchor_seen ? t->ring[(t->anchor_seen - 1) % QTRACK_FRAMES] : t->remaining;
	for (uint64_t k = t->anchor_seen; k < t->seen; k++) {
		int64_t n = t->ring[k % QTRACK_FRAMES];

		if (n > prev + 1)
			return by_ids(t); /* each change is a frame of its own: something was missed */
		if (n == prev + 1) {
			rises++;
			later = true; /* a POST of the daemon's, after the reply (checked below) */
		}
		if (n < t->remaining)
			later = true;
		if (later && v == QTRACK_UNKNOWN) {
			if (n == 0)
				v = QTRACK_FINISHED_EMPTY;
			else if (n == prev && n >= 2)
				v = QTRACK_FINISHED_NEXT;
		}
		prev = n;
	}
	/* a rise that is not the daemon's own may be a put older than the reply: the frames cannot be placed */
	if (rises != t->own_posts)
		return by_ids(t);
	return v != QTRACK_UNKNOWN ? v : by_ids(t);
}

const char *qtrack_verdict_name(enum qtrack_verdict v)
{
	switch (v) {
	case QTRACK_UNKNOWN:
		return "unknown";
	case QTRACK_FINISHED_EMPTY:
		return "finished: the queue emptied";
	case QTRACK_FINISHED_NEXT:
		return "finished: the next prompt started";
	case QTRACK_FINISHED_STARTED:
		return "finished: a prompt pending behind it started";
	case QTRACK_FINISHED_ENDED:
		return "finished: its end event came";
	}
	return "invalid";
}

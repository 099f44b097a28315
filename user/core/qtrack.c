// SPDX-License-Identifier: GPL-2.0
/* The running prompt's end as ComfyUI's status broadcasts show it (qtrack.h says why each step is sound). */
#include <string.h>
#include "qtrack.h"

void qtrack_init(struct qtrack *t)
{
	memset(t, 0, sizeof(*t));
}

void qtrack_connected(struct qtrack *t)
{
	t->conn++;
	t->connected = true;
	t->seen = 0;
	t->anchored = false;
}

void qtrack_lost(struct qtrack *t)
{
	t->conn++;
	t->connected = false;
	t->seen = 0;
	t->anchored = false;
}

void qtrack_status(struct qtrack *t, int64_t queue_remaining)
{
	if (!t->connected)
		return;
	t->ring[t->seen % QTRACK_FRAMES] = queue_remaining;
	t->seen++;
}

struct qtrack_mark qtrack_mark(const struct qtrack *t)
{
	return (struct qtrack_mark){ .conn = t->conn, .seen = t->seen, .connected = t->connected };
}

void qtrack_reply(struct qtrack *t, struct qtrack_mark m, size_t n_running, size_t n_pending)
{
	/* a request sent with no websocket, or on a connection since lost, has no place among the frames */
	t->anchored = m.connected && t->connected && m.conn == t->conn && m.seen <= t->seen;
	t->anchor_conn = m.conn;
	t->anchor_seen = m.seen;
	t->remaining = (int64_t)(n_running + n_pending);
	t->running = n_running > 0;
	t->replies++;
	t->own_posts = 0;
	t->tainted = false;
}

uint64_t qtrack_post_sent(const struct qtrack *t)
{
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

	if (!t->anchored || !t->running || !t->connected || t->anchor_conn != t->conn || t->tainted)
		return QTRACK_UNKNOWN;
	/* the frames since the request, and the one before them, must still be in the ring */
	if (t->seen - t->anchor_seen + (t->anchor_seen ? 1 : 0) > QTRACK_FRAMES)
		return QTRACK_UNKNOWN;
	/* the frame before the window; with none on this connection, the reply's own N */
	prev = t->anchor_seen ? t->ring[(t->anchor_seen - 1) % QTRACK_FRAMES] : t->remaining;
	for (uint64_t k = t->anchor_seen; k < t->seen; k++) {
		int64_t n = t->ring[k % QTRACK_FRAMES];

		if (n > prev + 1)
			return QTRACK_UNKNOWN; /* each change is a frame of its own: something was missed */
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
		return QTRACK_UNKNOWN;
	return v;
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
	}
	return "invalid";
}

// SPDX-License-Identifier: GPL-2.0
/* qtrack.c: whether the prompt a /queue reply showed running finished since, from the status broadcasts, then the
 * prompt ids of execution events. Each row is a sequence of ComfyUI queue changes as its frames show them
 * (queue_remaining after each), split by where the daemon's /queue request was sent; a row that could lose a prompt
 * (the running one still runs, or the frames may be older than the reply) must say "unknown". */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <setjmp.h>
#include <cmocka.h>

#include "qtrack.h"

#define END (-1)

struct row {
	const char *what;
	int64_t before[8];   /* frames received before the request was sent (END-terminated) */
	size_t running, pending; /* the reply */
	int64_t after[40];   /* frames received after the request was sent, before the stop */
	enum qtrack_verdict want;
	unsigned own;        /* the daemon's POSTs sent after the reply was read, accepted before the stop */
	bool early;          /* and one sent before the reply was read, accepted after it */
};

static const struct row rows[] = {
	/* the bug: P runs with 2 pending; it finishes (3 -> 2) and the worker takes the next (2) */
	{ "finished, next started", { 3, 3, END }, 1, 2, { 2, 2, END }, QTRACK_FINISHED_NEXT },
	{ "the last prompt finished", { 1, END }, 1, 0, { 0, END }, QTRACK_FINISHED_EMPTY },
	{ "finished, queue empty after one more", { 2, END }, 1, 1, { 1, 1, 0, END }, QTRACK_FINISHED_EMPTY },
	{ "two finished", { 4, END }, 1, 3, { 3, 3, 2, 2, END }, QTRACK_FINISHED_NEXT },
	{ "no frame since the reply", { 3, END }, 1, 2, { END }, QTRACK_UNKNOWN },
	{ "finish seen before the request: not this prompt's", { 3, 2, 2, END }, 1, 1, { END }, QTRACK_UNKNOWN },
	/* a lone -1 may be a DELETE of a pending prompt while P still runs */
	{ "lone decrease", { 3, END }, 1, 2, { 2, END }, QTRACK_UNKNOWN },
	{ "two deletes", { 4, END }, 1, 3, { 3, 2, END }, QTRACK_UNKNOWN },
	/* DELETE of the last pending prompt: wipe_queue's frame, then delete_queue_item's: same as finish + get */
	{ "delete of the last pending (1, 1)", { 2, END }, 1, 1, { 1, 1, END }, QTRACK_UNKNOWN },
	{ "clear while running (1, 1)", { 3, END }, 1, 2, { 1, 1, END }, QTRACK_UNKNOWN },
	/* a put among the frames: they may all be older than the reply (finish, get, put, then the reply) */
	{ "stale finish then put", { 3, END }, 1, 2, { 2, 2, 3, END }, QTRACK_UNKNOWN },
	{ "put then finish", { 2, END }, 1, 1, { 3, 2, 2, END }, QTRACK_UNKNOWN },
	{ "frame above the reply", { 2, END }, 1, 2, { 4, 3, 3, END }, QTRACK_UNKNOWN },
	/* frames received after the request that the reply already holds: equal to its N */
	{ "stale finish + get, reply after them", { 3, END }, 1, 1, { 2, 2, END }, QTRACK_UNKNOWN },
	{ "get of the reply's prompt only", { 2, END }, 1, 1, { 2, END }, QTRACK_UNKNOWN },
	{ "same N as the reply twice", { 3, END }, 1, 2, { 3, 3, END }, QTRACK_UNKNOWN },
	/* nothing was running at the reply: nothing to decide */
	{ "no running prompt", { 2, END }, 0, 2, { 1, 1, END }, QTRACK_UNKNOWN },
	{ "empty reply", { 0, END }, 0, 0, { 0, END }, QTRACK_UNKNOWN },
	{ "a later rise voids an earlier finish", { 3, END }, 1, 2, { 2, 2, 1, 2, END }, QTRACK_UNKNOWN },
	{ "zero then rise", { 1, END }, 1, 0, { 0, 1, END }, QTRACK_UNKNOWN },
	/* more frames than kept since the request */
	{ "window overflow", { 40, END }, 1, 39,
	  { 39, 39, 38, 38, 37, 37, 36, 36, 35, 35, 34, 34, 33, 33, 32, 32, 31, 31, 30, 30, 29, 29, 28, 28, 27, 27,
	    26, 26, 25, 25, 24, 24, 23, END }, QTRACK_UNKNOWN },
	{ "window full, not over", { 40, END }, 1, 39,
	  { 39, 39, 38, 38, 37, 37, 36, 36, 35, 35, 34, 34, 33, 33, 32, 32, 31, 31, 30, 30, 29, 29, 28, 28, 27, 27,
	    26, 26, 25, 25, 24, END }, QTRACK_FINISHED_NEXT },
	/* the daemon's own POSTs (a resubmission round): their +1 come after the reply */
	{ "queue emptied, then a resubmission", { 1, END }, 1, 0, { 0, 1, 1, END }, QTRACK_FINISHED_EMPTY, 1 },
	{ "finish, next, then a resubmission", { 3, END }, 1, 2, { 2, 2, 3, END }, QTRACK_FINISHED_NEXT, 1 },
	{ "resubmission, then finish and next at the reply's N", { 2, END }, 1, 1, { 3, 2, 2, END },
	  QTRACK_FINISHED_NEXT, 1 },
	{ "a put of someone else's as well", { 2, END }, 1, 1, { 3, 4, 3, 3, END }, QTRACK_UNKNOWN, 1 },
	{ "the resubmission's frame not here", { 1, END }, 1, 0, { 0, END }, QTRACK_UNKNOWN, 1 },
	{ "frames older than the reply, then a resubmission", { 3, END }, 1, 1, { 2, 2, 3, END }, QTRACK_UNKNOWN, 1 },
	{ "a POST sent before the reply was read", { 1, END }, 1, 0, { 0, 1, 1, END }, QTRACK_UNKNOWN, 0, true },
	{ "(1, 1) and a resubmission", { 2, END }, 1, 1, { 1, 1, 2, END }, QTRACK_UNKNOWN, 1 },
	{ "a jump of two", { 1, END }, 1, 0, { 0, 2, END }, QTRACK_UNKNOWN, 2 },
};

static void feed(struct qtrack *t, const int64_t *v)
{
	for (size_t i = 0; v[i] != END; i++)
		qtrack_status(t, v[i]);
}

static void test_rows(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct row *r = &rows[i];
		struct qtrack t;
		struct qtrack_mark m;
		enum qtrack_verdict got;
		uint64_t early;

		qtrack_init(&t);
		qtrack_connected(&t);
		feed(&t, r->before);
		m = qtrack_mark(&t);
		early = qtrack_post_sent(&t, NULL);
		feed(&t, r->after);
		qtrack_reply(&t, m, r->running, r->pending);
		for (unsigned k = 0; k < r->own; k++)
			qtrack_post_accepted(&t, qtrack_post_sent(&t, NULL));
		if (r->early)
			qtrack_post_accepted(&t, early);
		got = qtrack_running_finished(&t);
		if (got != r->want)
			fail_msg("row %zu (%s): %s, want %s", i, r->what, qtrack_verdict_name(got), qtrack_verdict_name(r->want));
	}
}

/* Frames received between the request and its reply count; so do frames after the reply. */
static void test_reply_in_the_middle(void **state)
{
	struct qtrack t;
	struct qtrack_mark m;

	(void)state;
	qtrack_init(&t);
	qtrack_connected(&t);
	qtrack_status(&t, 3);
	m = qtrack_mark(&t);
	qtrack_status(&t, 2);
	qtrack_reply(&t, m, 1, 2);
	assert_int_equal(qtrack_running_finished(&t), QTRACK_UNKNOWN);
	qtrack_status(&t, 2);
	assert_int_equal(qtrack_running_finished(&t), QTRACK_FINISHED_NEXT);
	/* the next reply moves the anchor: its running prompt is another one */
	m = qtrack_mark(&t);
	qtrack_reply(&t, m, 1, 1);
	assert_int_equal(qtrack_running_finished(&t), QTRACK_UNKNOWN);
}

/* A POST sent before a reply and accepted after it taints only that reply's window. */
static void test_early_post(void **state)
{
	struct qtrack t;
	struct qtrack_mark m;
	uint64_t ticket;

	(void)state;
	qtrack_init(&t);
	qtrack_connected(&t);
	qtrack_status(&t, 2);
	m = qtrack_mark(&t);
	ticket = qtrack_post_sent(&t, NULL);
	qtrack_reply(&t, m, 1, 1);
	qtrack_status(&t, 3);
	qtrack_post_accepted(&t, ticket);
	qtrack_status(&t, 2);
	qtrack_status(&t, 2);
	assert_int_equal(qtrack_running_finished(&t), QTRACK_UNKNOWN);
	m = qtrack_mark(&t);
	qtrack_reply(&t, m, 1, 1);
	qtrack_status(&t, 1);
	qtrack_status(&t, 0);
	assert_int_equal(qtrack_running_finished(&t), QTRACK_FINISHED_EMPTY);
}

/* A reconnection (the server restarted, or the websocket dropped) cuts the frames off the reply. */
static void test_connection(void **state)
{
	struct qtrack t;
	struct qtrack_mark m;

	(void)state;
	qtrack_init(&t);
	/* no websocket: frames are not taken, and a reply has no anchor */
	qtrack_status(&t, 0);
	m = qtrack_mark(&t);
	qtrack_reply(&t, m, 1, 0);
	assert_int_equal(qtrack_running_finished(&t), QTRACK_UNKNOWN);

	qtrack_connected(&t);
	qtrack_status(&t, 1);
	m = qtrack_mark(&t);
	qtrack_reply(&t, m, 1, 0);
	qtrack_lost(&t);
	qtrack_connected(&t);
	qtrack_status(&t, 0); /* the new connection's: the changes in the gap are unseen */
	assert_int_equal(qtrack_running_finished(&t), QTRACK_UNKNOWN);

	/* a request sent before the reconnect, answered after it */
	m = qtrack_mark(&t);
	qtrack_lost(&t);
	qtrack_connected(&t);
	qtrack_reply(&t, m, 1, 0);
	qtrack_status(&t, 0);
	assert_int_equal(qtrack_running_finished(&t), QTRACK_UNKNOWN);

	/* a request sent on this connection */
	m = qtrack_mark(&t);
	qtrack_reply(&t, m, 1, 0);
	qtrack_status(&t, 0);
	assert_int_equal(qtrack_running_finished(&t), QTRACK_FINISHED_EMPTY);
	qtrack_lost(&t);
	assert_int_equal(qtrack_running_finished(&t), QTRACK_UNKNOWN);
}

/* Prompt ids where the counts prove nothing. Each row: the reply shows P running and the pending prompts listed
 * (numbers as given), frames and events come as scripted ('s' N: status, 'e' ID: an execution event, 'x' ID: an
 * end event, 'p' ID: the daemon POSTs that prompt, '|': the request is sent here, 'R': the reply is read here,
 * 'L'/'C': the connection is lost/made). */
struct idrow {
	const char *what;
	const char *running[3];
	struct { const char *id; int64_t number; } pending[12];
	const char *script[16];
	enum qtrack_verdict want;
};

static const struct idrow idrows[] = {
	{ "(1, 1) and the pending prompt's progress_state", { "P" }, { { "Q", 2 } },
	  { "s2", "|", "R", "s1", "s1", "eQ" }, QTRACK_FINISHED_STARTED },
	{ "(1, 1) and nothing else: a DELETE of Q looks the same", { "P" }, { { "Q", 2 } },
	  { "s2", "|", "R", "s1", "s1" }, QTRACK_UNKNOWN },
	{ "the event before the reply was read still counts", { "P" }, { { "Q", 2 } },
	  { "s2", "|", "s1", "s1", "eQ", "R" }, QTRACK_FINISHED_STARTED },
	{ "no status frame at all, the pending prompt's event", { "P" }, { { "Q", 2 } },
	  { "s2", "|", "R", "eQ" }, QTRACK_FINISHED_STARTED },
	{ "P's own events prove nothing", { "P" }, { { "Q", 2 } },
	  { "s2", "eP", "|", "R", "eP" }, QTRACK_UNKNOWN },
	{ "a prompt the reply did not show (queued since)", { "P" }, { { "Q", 2 } },
	  { "s2", "|", "R", "eZ" }, QTRACK_UNKNOWN },
	{ "the pending prompt ran before the request: queued again, not placed", { "P" }, { { "Q", 2 } },
	  { "eQ", "s2", "|", "R", "s1", "s1", "eQ" }, QTRACK_UNKNOWN },
	{ "P's end event after the request", { "P" }, { { "Q", 2 } },
	  { "s2", "eP", "|", "R", "xP" }, QTRACK_FINISHED_ENDED },
	{ "P's end event before the request: not this run's", { "P" }, { { "Q", 2 } },
	  { "s2", "xP", "|", "R" }, QTRACK_UNKNOWN },
	{ "P's end event, then another run of P (queued again under its id)", { "P" }, { { "Q", 2 } },
	  { "s2", "eP", "|", "xP", "eP", "R" }, QTRACK_UNKNOWN },
	{ "another run of P ends too", { "P" }, { { "Q", 2 } },
	  { "s2", "eP", "|", "xP", "eP", "R", "xP" }, QTRACK_FINISHED_ENDED },
	{ "two running: not ComfyUI's one worker", { "P", "P2" }, { { "Q", 2 } },
	  { "s3", "|", "R", "eQ" }, QTRACK_UNKNOWN },
	{ "the connection changed in between", { "P" }, { { "Q", 2 } },
	  { "s2", "|", "R", "L", "C", "eQ" }, QTRACK_UNKNOWN },
	{ "nothing running", { NULL }, { { "Q", 2 } },
	  { "s1", "|", "R", "eQ" }, QTRACK_UNKNOWN },
	{ "a rise that is not the daemon's: the counts cannot be placed, the id can", { "P" }, { { "Q", 2 } },
	  { "s2", "|", "R", "s3", "s2", "s2", "eQ" }, QTRACK_FINISHED_STARTED },
	/* the next to run are the lowest numbers, wherever /queue lists them (ComfyUI's heap is not sorted) */
	{ "the next prompt listed last among many", { "P" },
	  { { "A", 20 }, { "B", 21 }, { "C", 22 }, { "D", 23 }, { "E", 24 }, { "F", 25 }, { "G", 26 }, { "H", 27 },
	    { "I", 28 }, { "J", 29 }, { "Q", 3 } },
	  { "s12", "|", "R", "eQ" }, QTRACK_FINISHED_STARTED },
	{ "one of many beyond the kept lowest", { "P" },
	  { { "A", 20 }, { "B", 21 }, { "C", 22 }, { "D", 23 }, { "E", 24 }, { "F", 25 }, { "G", 26 }, { "H", 27 },
	    { "I", 28 }, { "J", 29 }, { "Q", 3 } },
	  { "s12", "|", "R", "eJ" }, QTRACK_UNKNOWN },
	/* a resubmission round: the daemon POSTs the next prompt after reading a reply that shows P running alone */
	{ "the daemon's POST after the reply starts", { "P" }, { { NULL, 0 } },
	  { "s1", "|", "R", "pR", "s2", "s1", "eR" }, QTRACK_FINISHED_STARTED },
	{ "the daemon's POST after the reply, its start only", { "P" }, { { NULL, 0 } },
	  { "s1", "|", "R", "pR", "eR" }, QTRACK_FINISHED_STARTED },
	{ "the daemon's POST sent before the reply was read: it may have run before", { "P" }, { { NULL, 0 } },
	  { "s1", "|", "pR", "R", "eR" }, QTRACK_UNKNOWN },
	{ "the daemon's POST of P itself (a requeue)", { "P" }, { { NULL, 0 } },
	  { "s1", "|", "R", "pP", "eP" }, QTRACK_UNKNOWN },
	{ "the daemon's POST that had run before", { "P" }, { { NULL, 0 } },
	  { "eR", "s1", "|", "R", "pR", "eR" }, QTRACK_UNKNOWN },
};

static void test_ids(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(idrows) / sizeof(idrows[0]); i++) {
		const struct idrow *r = &idrows[i];
		struct qtrack t;
		struct qtrack_mark m = { 0 };
		enum qtrack_verdict got;
		size_t nr = 0, np = 0;

		while (nr < 3 && r->running[nr])
			nr++;
		while (np < 12 && r->pending[np].id)
			np++;
		qtrack_init(&t);
		qtrack_connected(&t);
		for (size_t k = 0; k < 16 && r->script[k]; k++) {
			const char *s = r->script[k];

			switch (s[0]) {
			case 's': qtrack_status(&t, strtoll(s + 1, NULL, 10)); break;
			case 'e': qtrack_event(&t, s + 1, false); break;
			case 'x': qtrack_event(&t, s + 1, true); break;
			case 'p': qtrack_post_sent(&t, s + 1); break;
			case '|': m = qtrack_mark(&t); break;
			case 'L': qtrack_lost(&t); break;
			case 'C': qtrack_connected(&t); break;
			case 'R':
				qtrack_reply(&t, m, nr, np);
				for (size_t j = 0; j < nr; j++)
					qtrack_reply_item(&t, r->running[j], 1, true);
				for (size_t j = 0; j < np; j++)
					qtrack_reply_item(&t, r->pending[j].id, r->pending[j].number, false);
				break;
			}
		}
		got = qtrack_running_finished(&t);
		if (got != r->want)
			fail_msg("id row %zu (%s): %s, want %s", i, r->what, qtrack_verdict_name(got),
				 qtrack_verdict_name(r->want));
	}
}

/* Events of one prompt take one entry: a long run of progress events keeps the prompts before it. */
static void test_id_entries(void **state)
{
	struct qtrack t;
	struct qtrack_mark m;

	(void)state;
	qtrack_init(&t);
	qtrack_connected(&t);
	qtrack_status(&t, 2);
	m = qtrack_mark(&t);
	qtrack_reply(&t, m, 1, 1);
	qtrack_reply_item(&t, "P", 1, true);
	qtrack_reply_item(&t, "Q", 2, false);
	qtrack_event(&t, "Q", false);
	for (int k = 0; k < 10 * QTRACK_IDS; k++)
		qtrack_event(&t, "Q", false);
	assert_int_equal(t.n_ids, 1);
	assert_int_equal(qtrack_running_finished(&t), QTRACK_FINISHED_STARTED);
	/* ids of other prompts push it out at last: then nothing is known */
	for (int k = 0; k < QTRACK_IDS; k++) {
		char id[16];

		snprintf(id, sizeof(id), "Z%d", k);
		qtrack_event(&t, id, false);
	}
	assert_int_equal(qtrack_running_finished(&t), QTRACK_UNKNOWN);
	/* ids that do not fit are not kept */
	qtrack_event(&t, "0123456789012345678901234567890123456789012345678901234567890123456789", false);
	qtrack_event(&t, "", false);
	qtrack_event(&t, NULL, false);
	assert_int_equal(t.n_ids, 1 + QTRACK_IDS);
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(qtrack_verdict_name(QTRACK_UNKNOWN), "unknown");
	assert_string_equal(qtrack_verdict_name((enum qtrack_verdict)99), "invalid");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_reply_in_the_middle),
		cmocka_unit_test(test_early_post),
		cmocka_unit_test(test_connection),
		cmocka_unit_test(test_ids),
		cmocka_unit_test(test_id_entries),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
/* snapshot.c: the queue snapshot kept from /queue, its persisted text, and the exactly-once rule that decides
 * what a restarted server still needs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "comfy.h"
#include "snapshot.h"

/* A /queue reply as comfy_parse_queue would give it. ids: running ones first (n_running of them). */
static void make_queue(struct comfy_queue *q, const char *const *ids, size_t n, size_t n_running)
{
	memset(q, 0, sizeof(*q));
	q->running = calloc(n_running ? n_running : 1, sizeof(*q->running));
	q->pending = calloc(n - n_running ? n - n_running : 1, sizeof(*q->pending));
	assert_non_null(q->running);
	assert_non_null(q->pending);
	for (size_t i = 0; i < n; i++) {
		struct comfy_queue_item *it = i < n_running ? &q->running[q->n_running++] : &q->pending[q->n_pending++];
		char prompt[128];

		snprintf(it->prompt_id, sizeof(it->prompt_id), "%s", ids[i]);
		it->number = (int64_t)i + 10;
		snprintf(prompt, sizeof(prompt), "{\"1\":{\"class_type\":\"KSampler\",\"inputs\":{\"seed\":%zu}}}", i);
		it->prompt_json = strdup(prompt);
		/* as json-c re-serialises it (what comfy_parse_queue hands over): UTF-8 kept, quotes escaped */
		it->extra_data_json = strdup("{\"client_id\":\"c1\",\"extra_pnginfo\":{\"note\":\"\xc3\xa9 \\\"q\\\"\"}}");
		it->outputs_json = strdup("[\"1\"]");
	}
}

static void test_set_and_same(void **state)
{
	const char *ids[] = { "run-a", "p-1", "p-2" };
	struct queue_snapshot s = { 0 };
	struct comfy_queue q, q2;

	(void)state;
	make_queue(&q, ids, 3, 1);
	assert_int_equal(snapshot_set_queue(&s, &q), 0);
	assert_int_equal(s.n, 3);
	assert_true(s.items[0].running);
	assert_false(s.items[1].running);
	assert_int_equal(s.items[2].number, 12);
	assert_true(snapshot_same(&s, &q));
	/* the running prompt finished and p-1 started: not the same queue any more */
	make_queue(&q2, ids + 1, 2, 1);
	assert_false(snapshot_same(&s, &q2));
	s.stop = SNAP_STOP_RESTART;
	assert_int_equal(snapshot_set_queue(&s, &q2), 0);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.stop, SNAP_STOP_RESTART); /* a stop under way is kept across updates */
	assert_string_equal(s.items[0].prompt_id, "p-1");
	comfy_queue_free(&q);
	comfy_queue_free(&q2);
	snapshot_free(&s);
	snapshot_free(&s); /* twice is harmless */
}

/* No silent cap: a queue of thousands is kept whole. */
static void test_no_cap(void **state)
{
	enum { N = 3000 };
	static char idbuf[N][16];
	const char *ids[N];
	struct queue_snapshot s = { 0 };
	struct comfy_queue q;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		snprintf(idbuf[i], sizeof(idbuf[i]), "id-%zu", i);
		ids[i] = idbuf[i];
	}
	make_queue(&q, ids, N, 1);
	assert_int_equal(snapshot_set_queue(&s, &q), 0);
	assert_int_equal(s.n, N);
	assert_string_equal(s.items[N - 1].prompt_id, "id-2999");
	comfy_queue_free(&q);
	snapshot_free(&s);
}

/* Prompts queued between the save and the stop are merged in; those already saved are not doubled. */
static void test_merge(void **state)
{
	const char *first[] = { "run-a", "p-1" }, *later[] = { "run-a", "p-1", "p-new" };
	struct queue_snapshot s = { 0 };
	struct comfy_queue q1, q2;

	(void)state;
	make_queue(&q1, first, 2, 1);
	make_queue(&q2, later, 3, 1);
	assert_int_equal(snapshot_set_queue(&s, &q1), 0);
	assert_int_equal(snapshot_merge_queue(&s, &q2), 1);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.items[2].prompt_id, "p-new");
	assert_int_equal(snapshot_merge_queue(&s, &q2), 0);
	assert_true(snapshot_remove(&s, "run-a"));
	assert_false(snapshot_remove(&s, "run-a"));
	assert_int_equal(s.n, 2);
	assert_string_equal(s.items[0].prompt_id, "p-1");
	comfy_queue_free(&q1);
	comfy_queue_free(&q2);
	snapshot_free(&s);
}

/* A requeue at the front is owed at once, ahead of the prompts that were already pending, behind the running one. */
static void test_add_next(void **state)
{
	const char *ids[] = { "run-a", "p-1", "p-2" };
	struct comfy_queue_item it = { .number = -1, .prompt_json = "{\"1\":{}}", .extra_data_json = "{}" };
	struct queue_snapshot s = { 0 };
	struct comfy_queue q;

	(void)state;
	snprintf(it.prompt_id, sizeof(it.prompt_id), "%s", "requeued");
	assert_int_equal(snapshot_add_next(&s, &it, 5), 1);
	assert_int_equal(s.n, 1);
	assert_false(s.items[0].running);
	snapshot_free(&s);

	make_queue(&q, ids, 3, 1);
	assert_int_equal(snapshot_set_queue(&s, &q), 0);
	assert_int_equal(snapshot_add_next(&s, &it, 5), 1);
	assert_int_equal(s.n, 4);
	assert_string_equal(s.items[0].prompt_id, "run-a");
	assert_string_equal(s.items[1].prompt_id, "requeued");
	assert_false(s.items[1].running);
	assert_int_equal(s.items[1].number, -1);
	assert_string_equal(s.items[1].prompt_json, "{\"1\":{}}");
	assert_string_equal(s.items[2].prompt_id, "p-1");
	assert_string_equal(s.items[3].prompt_id, "p-2");
	/* held already: nothing moves */
	assert_int_equal(snapshot_add_next(&s, &it, 5), 0);
	assert_int_equal(s.n, 4);
	comfy_queue_free(&q);
	snapshot_free(&s);
}

/* The stopped server's last /queue reply, read after the last resort: what it no longer had had finished. */
static void test_drop_left(void **state)
{
	const char *before[] = { "run-a", "p-1", "p-2" }, *late[] = { "p-1", "p-2", "p-new" };
	struct comfy_queue_item it = { .number = -1, .prompt_json = "{}", .extra_data_json = "{}" };
	struct queue_snapshot s = { 0 };
	struct comfy_queue q1, q2;

	(void)state;
	make_queue(&q1, before, 3, 1);
	make_queue(&q2, late, 3, 1); /* run-a finished, p-1 runs, p-new was POSTed */
	/* a mirror: run-a left the queue before the stop; a requeue the daemon made after the request was sent stays */
	assert_int_equal(snapshot_set_queue(&s, &q1), 0);
	snprintf(it.prompt_id, sizeof(it.prompt_id), "%s", "requeued-late");
	assert_int_equal(snapshot_add_next(&s, &it, 200), 1);
	snprintf(it.prompt_id, sizeof(it.prompt_id), "%s", "requeued-early");
	assert_int_equal(snapshot_add_next(&s, &it, 50), 1);
	assert_int_equal(snapshot_drop_left(&s, &q2, true, 100), 2);
	assert_int_equal(snapshot_find(&s, "run-a"), -1);
	assert_int_equal(snapshot_find(&s, "requeued-early"), -1);
	assert_true(snapshot_find(&s, "requeued-late") >= 0);
	assert_true(snapshot_find(&s, "p-1") >= 0);
	assert_true(snapshot_find(&s, "p-2") >= 0);
	assert_int_equal(snapshot_drop_left(&s, &q2, true, 100), 0);
	snapshot_free(&s);
	/* owed from an earlier stop: a resubmission may have been taken after the reply was made, nothing is judged */
	assert_int_equal(snapshot_set_queue(&s, &q1), 0);
	snapshot_held(&s, 0, 42, 4242);
	assert_int_equal(snapshot_drop_left(&s, &q2, false, 100), 0);
	assert_int_equal(s.n, 3);
	snapshot_free(&s);
	comfy_queue_free(&q1);
	comfy_queue_free(&q2);
}

static void test_text_round_trip(void **state)
{
	const char *ids[] = { "run-a", "p-1" };
	struct queue_snapshot s = { 0 }, back = { 0 };
	struct comfy_queue q;
	char *text = NULL, *text2 = NULL;

	(void)state;
	make_queue(&q, ids, 2, 1);
	assert_int_equal(snapshot_set_queue(&s, &q), 0);
	s.stop = SNAP_STOP_LAST_RESORT;
	s.old_pid = 4242;
	s.old_start_ns = 123456789012345ULL;
	s.taken_ms = 1796047449162;
	snapshot_held(&s, 1, 30730, 987654321098765ULL);
	assert_int_equal(snapshot_format(&s, &text), 0);
	assert_int_equal(snapshot_parse(text, strlen(text), &back), 0);
	assert_int_equal(back.n, 2);
	assert_int_equal(back.stop, SNAP_STOP_LAST_RESORT);
	assert_int_equal(back.old_pid, 4242);
	assert_int_equal(back.old_start_ns, 123456789012345ULL);
	assert_int_equal(back.taken_ms, 1796047449162);
	assert_true(back.items[0].running);
	assert_false(back.items[0].submitted);
	assert_true(back.items[1].submitted);
	assert_int_equal(back.items[1].holder_pid, 30730);
	assert_int_equal(back.items[1].holder_start_ns, 987654321098765ULL);
	assert_int_equal(back.items[0].holder_pid, 0);
	assert_int_equal(back.items[1].number, 11);
	assert_string_equal(back.items[0].prompt_json, s.items[0].prompt_json);
	assert_string_equal(back.items[0].extra_json, s.items[0].extra_json);
	assert_int_equal(snapshot_format(&back, &text2), 0);
	assert_string_equal(text, text2);
	free(text);
	free(text2);
	comfy_queue_free(&q);
	snapshot_free(&s);
	snapshot_free(&back);
}

/* Whatever is not exactly understood resubmits nothing. */
static void test_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"version\":2,\"stop\":\"none\",\"old_pid\":0,\"old_start_ns\":0,\"taken_ms\":0,\"items\":[]}",
		"{\"version\":1,\"stop\":\"maybe\",\"old_pid\":0,\"old_start_ns\":0,\"taken_ms\":0,\"items\":[]}",
		"{\"version\":1,\"stop\":\"none\",\"old_pid\":-1,\"old_start_ns\":0,\"taken_ms\":0,\"items\":[]}",
		"{\"version\":1,\"stop\":\"none\",\"old_pid\":0,\"old_start_ns\":0,\"taken_ms\":0}",
		"{\"version\":1,\"stop\":\"none\",\"old_pid\":0,\"old_start_ns\":0,\"taken_ms\":0,\"items\":[{}]}",
		/* truncated */
		"{\"version\":1,\"stop\":\"none\",\"old_pid\":0,\"old_start_ns\":0,\"taken_ms\":0,\"items\":[",
		/* trailing garbage */
		"{\"version\":1,\"stop\":\"none\",\"old_pid\":0,\"old_start_ns\":0,\"taken_ms\":0,\"items\":[]}x",
		/* prompt not an object */
		"{\"version\":1,\"stop\":\"none\",\"old_pid\":0,\"old_start_ns\":0,\"taken_ms\":0,\"items\":[{\"prompt_id\":\"a\","
		"\"number\":1,\"running\":false,\"submitted\":false,\"prompt\":[],\"extra_data\":{}}]}",
		/* the same id twice */
		"{\"version\":1,\"stop\":\"none\",\"old_pid\":0,\"old_start_ns\":0,\"taken_ms\":0,\"items\":[{\"prompt_id\":\"a\","
		"\"number\":1,\"running\":false,\"submitted\":false,\"prompt\":{},\"extra_data\":{}},{\"prompt_id\":\"a\","
		"\"number\":2,\"running\":false,\"submitted\":false,\"prompt\":{},\"extra_data\":{}}]}",
		/* an empty id */
		"{\"version\":1,\"stop\":\"none\",\"old_pid\":0,\"old_start_ns\":0,\"taken_ms\":0,\"items\":[{\"prompt_id\":\"\","
		"\"number\":1,\"running\":false,\"submitted\":false,\"prompt\":{},\"extra_data\":{}}]}",
		/* a holder that is no pid */
		"{\"version\":1,\"stop\":\"none\",\"old_pid\":0,\"old_start_ns\":0,\"taken_ms\":0,\"items\":[{\"prompt_id\":\"a\","
		"\"number\":1,\"running\":false,\"submitted\":true,\"holder_pid\":-1,\"prompt\":{},\"extra_data\":{}}]}",
		"{\"version\":1,\"stop\":\"none\",\"old_pid\":0,\"old_start_ns\":0,\"taken_ms\":0,\"items\":[{\"prompt_id\":\"a\","
		"\"number\":1,\"running\":false,\"submitted\":true,\"holder_start_ns\":\"1\",\"prompt\":{},"
		"\"extra_data\":{}}]}",
	};
	struct queue_snapshot s;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int r = snapshot_parse(bad[i], strlen(bad[i]), &s);
		if (r != -EBADMSG)
			fail_msg("case %zu: %d", i, r);
		assert_int_equal(s.n, 0);
		assert_null(s.items);
	}
}

/* The exactly-once rule, case by case: what the server answering now (pid 200) knows decides what is submitted;
 * what an earlier server (pid 100) was given counts for nothing once another answers, unless it left that
 * server's queue while it was watched (then it ran, and is gone from the snapshot). */
static void test_reconcile_table(void **state)
{
	static const struct {
		const char *name;
		int32_t held_by[3];   /* holder of run-a, p-1, p-2 before (0: not submitted) */
		int32_t server;       /* the server answering now */
		const char *known[4]; /* ids in its /queue or /history */
		size_t n_known;
		size_t want_pending;
		size_t want_n;        /* items left in the snapshot */
		const char *want_next;
	} cases[] = {
		{ "fresh server: everything, running first", { 0, 0, 0 }, 200, { 0 }, 0, 3, 3, "run-a" },
		{ "the interrupted prompt finished before the stop", { 0, 0, 0 }, 200, { "run-a" }, 1, 2, 3, "p-1" },
		{ "a resubmission whose reply was lost is queued already", { 0, 0, 0 }, 200, { "p-1" }, 1, 2, 3, "run-a" },
		{ "everything known: nothing twice", { 0, 0, 0 }, 200, { "run-a", "p-1", "p-2" }, 3, 0, 3, NULL },
		{ "ids the snapshot never had change nothing", { 0, 0, 0 }, 200, { "other", "run-a", "run-a" }, 3, 2, 3,
		  "p-1" },
		/* issue 11/14: resubmitted to pid 100, which was stopped before running them */
		{ "held by a server stopped since: owed again", { 100, 100, 0 }, 200, { 0 }, 0, 3, 3, "run-a" },
		{ "held by a stopped server, queued here already", { 100, 100, 100 }, 200, { "p-2" }, 1, 2, 3, "run-a" },
		{ "held by this server and still queued", { 200, 200, 0 }, 200, { "run-a", "p-1" }, 2, 1, 3, "p-2" },
		{ "held by this server, left its queue: ran, not owed", { 200, 200, 0 }, 200, { "p-1" }, 1, 1, 2, "p-2" },
		{ "the same pid with another start time is another server", { 200, 0, 0 }, 201, { 0 }, 0, 3, 3, "run-a" },
	};
	const char *ids[] = { "run-a", "p-1", "p-2" };
	struct comfy_queue q;

	(void)state;
	make_queue(&q, ids, 3, 1);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct queue_snapshot s = { 0 };
		/* case 10: pid 200 started again (pid reuse): start times tell the two apart */
		int32_t pid = cases[i].server == 201 ? 200 : cases[i].server;
		uint64_t start = cases[i].server == 201 ? 2 : 1;
		ssize_t next;

		assert_int_equal(snapshot_set_queue(&s, &q), 0);
		for (size_t k = 0; k < 3; k++)
			if (cases[i].held_by[k])
				snapshot_held(&s, k, cases[i].held_by[k], 1);
		if (snapshot_reconcile(&s, pid, start, cases[i].known, cases[i].n_known) != cases[i].want_pending)
			fail_msg("%s: %zu pending", cases[i].name, snapshot_pending(&s));
		if (s.n != cases[i].want_n)
			fail_msg("%s: %zu items", cases[i].name, s.n);
		next = snapshot_next(&s);
		if (cases[i].want_next)
			assert_string_equal(s.items[next].prompt_id, cases[i].want_next);
		else
			assert_int_equal(next, -1);
		for (size_t k = 0; k < s.n; k++)
			if (s.items[k].submitted && (s.items[k].holder_pid != pid || s.items[k].holder_start_ns != start))
				fail_msg("%s: %s held by another server", cases[i].name, s.items[k].prompt_id);
		snapshot_free(&s);
	}
	comfy_queue_free(&q);
}

/* The CI timeline of issue 11/14 (short-gens-0.2s-x10): 7 saved prompts; 6 resubmitted to the first successor,
 * which is stopped by a second last resort before running them; the second successor must get all 7, and only
 * prompts seen to leave a live server's queue count as run. */
static void test_two_stops_timeline(void **state)
{
	const char *ids[] = { "A", "B", "C", "D", "E", "F", "G" };
	const char *user_id[] = { "U" };
	struct queue_snapshot s = { 0 };
	struct comfy_queue q, empty = { 0 }, second, user;
	char *text = NULL;

	(void)state;
	make_queue(&q, ids, 7, 1);
	assert_int_equal(snapshot_set_queue(&s, &q), 0);
	s.stop = SNAP_STOP_LAST_RESORT;
	/* first successor (30730, start 1): empty queue, everything owed */
	assert_int_equal(snapshot_observe(&s, 30730, 1, &empty), 7);
	for (size_t k = 0; k < 6; k++) {
		ssize_t i = snapshot_next(&s);
		assert_true(i >= 0);
		snapshot_held(&s, (size_t)i, 30730, 1);
	}
	assert_int_equal(snapshot_pending(&s), 1);
	/* persisted while 30730 is stopped, read back by a daemon that restarts meanwhile: the holders survive */
	assert_int_equal(snapshot_format(&s, &text), 0);
	snapshot_free(&s);
	assert_int_equal(snapshot_parse(text, strlen(text), &s), 0);
	free(text);
	assert_int_equal(s.n, 7);
	/* second successor (30740): knows none of them, so all 7 are owed, not just G */
	assert_int_equal(snapshot_observe(&s, 30740, 1, &empty), 7);
	/* it runs A (left its queue, seen), holds B..G queued, and a user queued U on it meanwhile */
	make_queue(&second, ids + 1, 6, 1);
	for (size_t k = 0; k < 7; k++)
		snapshot_held(&s, k, 30740, 1);
	assert_int_equal(snapshot_observe(&s, 30740, 1, &second), 0);
	assert_int_equal(s.n, 6);
	assert_int_equal(snapshot_find(&s, "A"), -1);
	make_queue(&user, user_id, 1, 0);
	assert_int_equal(snapshot_observe(&s, 30740, 1, &user), 0);
	/* B..G left its queue while watched: ran; U is held by it, and is owed again if it is stopped too */
	assert_int_equal(s.n, 1);
	assert_string_equal(s.items[0].prompt_id, "U");
	assert_int_equal(snapshot_observe(&s, 30750, 1, &empty), 1);
	comfy_queue_free(&q);
	comfy_queue_free(&second);
	comfy_queue_free(&user);
	snapshot_free(&s);
}

/* What /history says of a prompt in the drain's look: not there, finished, or ran and did not finish. */
enum seen { NOT_RUN, FINISHED, STOPPED };

/* The look restart.c's drain makes once nothing of the snapshot runs on the old server: in the worker's order,
 * a finished prompt leaves the snapshot, a stopped one stays, and the first one that never ran ends it. */
static void drain_look(struct queue_snapshot *s, const struct comfy_queue *later, const char *const *ids,
		       const enum seen *seen, size_t n_ids)
{
	ssize_t i;

	snapshot_mark_left(s, later);
	while ((i = snapshot_next_marked(s)) >= 0) {
		enum seen v = NOT_RUN;

		for (size_t k = 0; k < n_ids; k++)
			if (!strcmp(ids[k], s->items[i].prompt_id))
				v = seen[k];
		if (v == NOT_RUN)
			break;
		if (v == FINISHED)
			assert_true(snapshot_remove(s, s->items[i].prompt_id));
		else
			s->items[i].check = false;
	}
	snapshot_unmark(s);
}

static void test_drain_marks_what_left(void **state)
{
	const char *ids[] = { "run-a", "p-1", "p-2", "p-3" };
	struct queue_snapshot s = { 0 };
	struct comfy_queue q, later;

	(void)state;
	make_queue(&q, ids, 4, 1);
	assert_int_equal(snapshot_set_queue(&s, &q), 0);
	/* run-a ended, the worker took p-1 before the deletion landed, p-2 and p-3 were taken out */
	make_queue(&later, ids + 1, 1, 1);
	assert_int_equal(snapshot_mark_left(&s, &later), 3);
	assert_false(s.items[1].check);
	/* the one running at the save first, then by number (the worker takes the lowest) */
	assert_string_equal(s.items[snapshot_next_marked(&s)].prompt_id, "run-a");
	s.items[0].check = false;
	s.items[3].number = 5; /* queued at the front */
	assert_string_equal(s.items[snapshot_next_marked(&s)].prompt_id, "p-3");
	s.items[3].check = false;
	assert_string_equal(s.items[snapshot_next_marked(&s)].prompt_id, "p-2");
	snapshot_unmark(&s);
	assert_int_equal(snapshot_next_marked(&s), -1);
	/* marks are the drain's alone: an update of the mirror starts without them */
	assert_int_equal(snapshot_mark_left(&s, &later), 3);
	assert_int_equal(snapshot_set_queue(&s, &q), 0);
	assert_int_equal(snapshot_next_marked(&s), -1);
	comfy_queue_free(&later);
	comfy_queue_free(&q);
	snapshot_free(&s);
}

static void test_drain_look_table(void **state)
{
	static const char *const saved[] = { "run-a", "p-1", "p-2", "p-3" };
	static const struct {
		const char *name;
		size_t n_later;            /* the old server's last /queue: saved[4 - n_later..], none running */
		enum seen seen[4];         /* /history of run-a, p-1, p-2, p-3 on the old server */
		const char *left[5];       /* what is resubmitted, in snapshot order */
	} t[] = {
		{ "interrupted at once", 0, { STOPPED, NOT_RUN, NOT_RUN, NOT_RUN }, { "run-a", "p-1", "p-2", "p-3" } },
		{ "finished before the interrupt", 0, { FINISHED, NOT_RUN, NOT_RUN, NOT_RUN }, { "p-1", "p-2", "p-3" } },
		/* 0.2 s generations: the worker took p-1 and finished it before the deletion landed */
		{ "next one finished too", 0, { FINISHED, FINISHED, NOT_RUN, NOT_RUN }, { "p-2", "p-3" } },
		{ "next one stopped", 0, { FINISHED, STOPPED, NOT_RUN, NOT_RUN }, { "p-1", "p-2", "p-3" } },
		/* a deletion that did not land: p-3 still queued, p-2 never ran */
		{ "still queued", 1, { FINISHED, NOT_RUN, NOT_RUN, NOT_RUN }, { "p-1", "p-2", "p-3" } },
		/* nothing after the first prompt that never ran is asked about, let alone dropped */
		{ "the look ends at the first not run", 0, { NOT_RUN, FINISHED, FINISHED, FINISHED },
		  { "run-a", "p-1", "p-2", "p-3" } },
	};

	(void)state;
	for (size_t k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		struct queue_snapshot s = { 0 };
		struct comfy_queue q, later;
		size_t n = 0;

		make_queue(&q, saved, 4, 1);
		make_queue(&later, saved + 4 - t[k].n_later, t[k].n_later, 0);
		assert_int_equal(snapshot_set_queue(&s, &q), 0);
		drain_look(&s, &later, saved, t[k].seen, 4);
		while (n < 5 && t[k].left[n])
			n++;
		if (s.n != n)
			fail_msg("%s: %zu prompts left, expected %zu", t[k].name, s.n, n);
		for (size_t i = 0; i < n; i++)
			if (strcmp(s.items[i].prompt_id, t[k].left[i]))
				fail_msg("%s: item %zu is %s, expected %s", t[k].name, i, s.items[i].prompt_id, t[k].left[i]);
		assert_int_equal(snapshot_pending(&s), n);
		assert_int_equal(snapshot_next_marked(&s), -1);
		comfy_queue_free(&later);
		comfy_queue_free(&q);
		snapshot_free(&s);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_and_same),
		cmocka_unit_test(test_no_cap),
		cmocka_unit_test(test_merge),
		cmocka_unit_test(test_add_next),
		cmocka_unit_test(test_drop_left),
		cmocka_unit_test(test_text_round_trip),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_reconcile_table),
		cmocka_unit_test(test_two_stops_timeline),
		cmocka_unit_test(test_drain_marks_what_left),
		cmocka_unit_test(test_drain_look_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

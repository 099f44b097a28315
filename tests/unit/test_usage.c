// SPDX-License-Identifier: GPL-2.0
/* core/usage.c: where a prompt began, the dip after its peak, the running slot of /queue, the reclaim rate. Each
 * table replays what the daemon sees between polls. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "usage.h"

#define END UINT64_MAX
#define POLL (UINT64_MAX - 1) /* a poll at the level measured just before it */

/* A trace of measurements (MiB; POLL marks a poll), then what the levels must say. */
struct levels_case {
	const char *name;
	uint64_t trace_mib[12];
	bool was_running;    /* at the last poll of the trace, a prompt already ran */
	uint64_t now_mib;    /* usage at that poll */
	uint64_t start_mib;  /* where a prompt first seen there began */
	uint64_t residual_mib; /* the residual of a prompt started at the trace's first measurement */
};

static const struct levels_case levels_cases[] = {
	/* the first prompt loaded its model before the poll that saw it: it began at the idle level */
	{ "model load before the poll", { 500, POLL, 520, 2500, 4000, END }, false, 4000, 500, 4000 },
	/* a prompt following another one starts where the poll sees it: the dip belongs to the one before */
	{ "next prompt after another", { 500, POLL, 520, 2500, 4000, END }, true, 4000, 4000, 4000 },
	/* the poll minimum is lower than now only if memory fell: a start is never above usage now */
	{ "usage fell since the poll", { 3000, POLL, 2000, 1000, END }, false, 1000, 1000, 1000 },
	/* peak, then the end of the prompt drops to a residual, then the next prompt climbs before any poll */
	{ "dip between peak and next climb", { 800, 4000, 6000, 1500, 1200, 3000, 5000, END }, true, 5000, 5000, 1200 },
	/* a new peak forgets the earlier dip: the residual is measured after the last peak */
	{ "new peak after a dip", { 800, 4000, 1000, 6000, 2000, END }, true, 2000, 2000, 2000 },
	/* usage now below the dip (memory kept falling): the residual is usage now */
	{ "still falling", { 800, 6000, 3000, END }, true, 2500, 2500, 2500 },
	/* flat: peak and dip are the start */
	{ "flat", { 700, 700, 700, END }, false, 700, 700, 700 },
};

static void test_levels_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(levels_cases); i++) {
		const struct levels_case *c = &levels_cases[i];
		struct usage_levels u = { 0 };
		uint64_t last = 0;

		print_message("case %s\n", c->name);
		for (size_t j = 0; c->trace_mib[j] != END; j++) {
			if (c->trace_mib[j] == POLL) {
				usage_levels_polled(&u, MIB(last));
				continue;
			}
			last = c->trace_mib[j];
			usage_levels_measured(&u, MIB(last));
			if (j == 0)
				usage_levels_prompt_started(&u, MIB(last));
		}
		assert_int_equal(usage_levels_start_bytes(&u, MIB(c->now_mib), c->was_running), MIB(c->start_mib));
		assert_int_equal(usage_levels_residual_bytes(&u, MIB(c->now_mib)), MIB(c->residual_mib));
	}
}

static void test_levels_invalidate(void **state)
{
	struct usage_levels u = { 0 };

	(void)state;
	usage_levels_measured(&u, MIB(300));
	usage_levels_polled(&u, MIB(300));
	/* another server: its levels say nothing about where this one's prompt began */
	usage_levels_invalidate(&u);
	assert_int_equal(usage_levels_start_bytes(&u, MIB(2000), false), MIB(2000));
	/* the first measurement on the new basis is the poll minimum again */
	usage_levels_measured(&u, MIB(900));
	usage_levels_measured(&u, MIB(2000));
	assert_int_equal(usage_levels_start_bytes(&u, MIB(2000), false), MIB(900));
}

static void test_queue_change_table(void **state)
{
	static const struct {
		const char *before, *now;
		enum queue_change want;
	} cases[] = {
		{ "", "", QUEUE_SAME },
		{ NULL, NULL, QUEUE_SAME },
		{ "a", "a", QUEUE_SAME },
		{ "", "a", QUEUE_STARTED },
		{ NULL, "a", QUEUE_STARTED },
		{ "a", "", QUEUE_ENDED },
		{ "a", NULL, QUEUE_ENDED },
		{ "a", "b", QUEUE_NEXT },
		{ "abc", "ab", QUEUE_NEXT },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		enum queue_change c = queue_running_change(cases[i].before, cases[i].now);
		assert_int_equal(c, cases[i].want);
		assert_int_equal(queue_change_ended(c), c == QUEUE_ENDED || c == QUEUE_NEXT);
		assert_int_equal(queue_change_started(c), c == QUEUE_STARTED || c == QUEUE_NEXT);
	}
}

static void test_reclaim_rate_table(void **state)
{
	static const struct {
		const char *name;
		double prev;
		uint64_t prev_count, count, dt_ns;
		double want;
	} cases[] = {
		{ "quiet", 0, 10, 10, NSEC_PER_SEC, 0 },
		{ "a burst counts half", 0, 0, 100, NSEC_PER_SEC, 50 },
		{ "the burst fades", 50, 100, 100, NSEC_PER_SEC, 25 },
		{ "sustained converges", 100, 0, 100, NSEC_PER_SEC, 100 },
		{ "per second, not per interval", 0, 0, 100, 500 * NSEC_PER_MSEC, 100 },
		{ "no time passed", 42, 0, 1000, 0, 42 },
		{ "a counter that went back is no events", 8, 100, 50, NSEC_PER_SEC, 4 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		double r = reclaim_rate_next(cases[i].prev, cases[i].prev_count, cases[i].count, cases[i].dt_ns);
		print_message("case %s\n", cases[i].name);
		assert_true(fabs(r - cases[i].want) < 1e-9);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_levels_table),
		cmocka_unit_test(test_levels_invalidate),
		cmocka_unit_test(test_queue_change_table),
		cmocka_unit_test(test_reclaim_rate_table),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

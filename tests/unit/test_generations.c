// SPDX-License-Identifier: GPL-2.0
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "generations.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

#define S(x) ((uint64_t)(x) * NSEC_PER_SEC)

#define assert_near(a, b, eps)                                                                          \
	do {                                                                                            \
		double _a = (a), _b = (b);                                                              \
		if (!(fabs(_a - _b) <= (eps)))                                                          \
			fail_msg("%s = %.6f, expected %.6f (± %g)", #a, _a, _b, (double)(eps));         \
	} while (0)

/* One generation at ComfyUI's pace: start, samples while running, end, optionally one idle sample. */
static int64_t run_gen(struct gen_tracker *t, const char *id, uint64_t t0_s, uint64_t start_mib, uint64_t peak_mib,
		       uint64_t end_mib)
{
	int64_t seq = gen_start(t, id, S(t0_s), MIB(start_mib));

	assert_true(seq > 0);
	assert_int_equal(gen_sample(t, S(t0_s + 1), MIB(peak_mib)), 0);
	assert_int_equal(gen_end(t, id, GEN_SUCCESS, S(t0_s + 2), MIB(end_mib)), seq);
	return seq;
}

static void test_init(void **state)
{
	struct gen_tracker t;
	char longname[200];

	(void)state;
	assert_int_equal(gen_tracker_init(NULL, "x"), -EINVAL);
	assert_int_equal(gen_tracker_init(&t, NULL), 0);
	assert_string_equal(t.instance, "");
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_int_equal(gen_tracker_init(&t, longname), 0);
	assert_int_equal(strlen(t.instance), GEN_INSTANCE_MAX);
	assert_int_equal(gen_tracker_init(&t, "default"), 0);
	assert_string_equal(t.instance, "default");
	assert_int_equal(gen_count(&t), 0);
	assert_int_equal(gen_count(NULL), 0);
	assert_null(gen_last(&t));
	assert_null(gen_last(NULL));
	assert_null(gen_running(&t));
	assert_null(gen_last_completed(&t));
	assert_int_equal(gen_completed_in_epoch(&t), 0);
	assert_int_equal(t.next_seq, 1);
}

static void test_lifecycle(void **state)
{
	struct gen_tracker t;
	const struct generation *g;

	(void)state;
	gen_tracker_init(&t, "default");
	assert_int_equal(gen_sample(&t, S(1), MIB(25)), 0); /* idle, nothing to attribute */
	assert_int_equal(gen_start(&t, "p1", S(10), MIB(25)), 1);
	g = gen_running(&t);
	assert_non_null(g);
	assert_string_equal(g->prompt_id, "p1");
	assert_int_equal(g->status, GEN_RUNNING);
	assert_true(g->first_in_epoch);
	assert_false(g->has_residual);
	assert_null(gen_last_completed(&t));

	gen_sample(&t, S(11), MIB(525));
	gen_sample(&t, S(12), MIB(1225));
	gen_sample(&t, S(13), MIB(900)); /* lower samples do not lower the peak */
	assert_int_equal(gen_end(&t, "p1", GEN_SUCCESS, S(20), MIB(850)), 1);
	assert_null(gen_running(&t));
	g = gen_last(&t);
	assert_int_equal(g->status, GEN_SUCCESS);
	assert_int_equal(g->start_ns, S(10));
	assert_int_equal(g->end_ns, S(20));
	assert_int_equal(g->usage_start_bytes, MIB(25));
	assert_int_equal(g->peak_bytes, MIB(1225));
	assert_int_equal(g->usage_end_bytes, MIB(850));
	assert_true(g->has_residual);
	assert_int_equal(g->residual_bytes, MIB(850));
	assert_int_equal(g->growth_bytes, (int64_t)MIB(825));

	/* Idle: ComfyUI's gc lowers what stays; the residual follows until the next start. */
	gen_sample(&t, S(25), MIB(825));
	assert_int_equal(g->residual_bytes, MIB(825));
	assert_int_equal(g->growth_bytes, (int64_t)MIB(800));
	assert_int_equal(g->usage_end_bytes, MIB(850));
	assert_ptr_equal(gen_last_completed(&t), g);

	assert_int_equal(gen_start(&t, "p2", S(30), MIB(825)), 2);
	gen_sample(&t, S(31), MIB(1525));
	assert_int_equal(gen_end(&t, "p2", GEN_ERROR, S(40), MIB(1125)), 2);
	gen_sample(&t, S(41), MIB(1125));
	g = gen_last(&t);
	assert_int_equal(g->seq, 2);
	assert_false(g->first_in_epoch);
	assert_int_equal(g->status, GEN_ERROR);
	assert_int_equal(g->growth_bytes, (int64_t)MIB(300)); /* vs the previous residual, not its own start */
	assert_int_equal(gen_get(&t, 1)->residual_bytes, MIB(825)); /* frozen once p2 started */
	assert_int_equal(gen_count(&t), 2);
	assert_int_equal(gen_completed_in_epoch(&t), 2);
	assert_int_equal(t.total, 2);
	assert_int_equal(t.last_usage_bytes, MIB(1125));
	assert_int_equal(t.last_sample_ns, S(41));

	/* Memory released later: negative growth is reported as such. */
	gen_sample(&t, S(50), MIB(700));
	assert_int_equal(g->growth_bytes, -(int64_t)MIB(125));
}

/* A busy queue: the next prompt starts at the instant the previous ends, so the residual is the sample at end. */
static void test_busy_queue(void **state)
{
	struct gen_tracker t;

	(void)state;
	gen_tracker_init(&t, NULL);
	gen_start(&t, "a", S(0), MIB(25));
	gen_sample(&t, S(1), MIB(1225));
	gen_end(&t, "a", GEN_SUCCESS, S(2), MIB(825));
	gen_start(&t, "b", S(2), MIB(825));
	gen_sample(&t, S(3), MIB(1525)); /* goes to b's peak, not a's residual */
	assert_int_equal(gen_get(&t, 1)->residual_bytes, MIB(825));
	assert_int_equal(gen_get(&t, 0)->peak_bytes, MIB(1525));
	assert_int_equal(gen_get(&t, 0)->usage_start_bytes, MIB(825));
}

static void test_start_idempotent_and_missed_end(void **state)
{
	struct gen_tracker t;
	const struct generation *g;

	(void)state;
	gen_tracker_init(&t, NULL);
	assert_int_equal(gen_start(&t, "a", S(0), MIB(100)), 1);
	assert_int_equal(gen_start(&t, "a", S(5), MIB(900)), 1); /* seen running again on the next /queue poll */
	assert_int_equal(gen_count(&t), 1);
	assert_int_equal(gen_running(&t)->start_ns, S(0));
	assert_int_equal(gen_running(&t)->usage_start_bytes, MIB(100));

	/* b running while a is still marked running: a's end was missed. */
	assert_int_equal(gen_start(&t, "b", S(10), MIB(400)), 2);
	g = gen_get(&t, 1);
	assert_string_equal(g->prompt_id, "a");
	assert_int_equal(g->status, GEN_UNKNOWN);
	assert_int_equal(g->end_ns, S(10));
	assert_int_equal(g->residual_bytes, MIB(400));
	assert_int_equal(g->peak_bytes, MIB(400));
	assert_string_equal(gen_running(&t)->prompt_id, "b");

	/* The outcome of a shows up in /history later. */
	assert_int_equal(gen_end(&t, "a", GEN_SUCCESS, S(11), MIB(999)), 1);
	assert_int_equal(g->status, GEN_SUCCESS);
	assert_int_equal(g->residual_bytes, MIB(400)); /* memory untouched */
	assert_int_equal(g->end_ns, S(10));
	/* A known outcome is not replaced. */
	assert_int_equal(gen_end(&t, "a", GEN_ERROR, S(12), MIB(999)), 1);
	assert_int_equal(g->status, GEN_SUCCESS);
	assert_string_equal(gen_running(&t)->prompt_id, "b"); /* b still runs */
}

static void test_end_errors(void **state)
{
	struct gen_tracker t;

	(void)state;
	gen_tracker_init(&t, NULL);
	assert_int_equal(gen_end(&t, "nope", GEN_SUCCESS, S(1), MIB(1)), -ENOENT);
	gen_start(&t, "a", S(0), MIB(100));
	assert_int_equal(gen_end(&t, "b", GEN_SUCCESS, S(1), MIB(1)), -ENOENT);
	assert_non_null(gen_running(&t));
	assert_int_equal(gen_end(NULL, "a", GEN_SUCCESS, S(1), MIB(1)), -EINVAL);
	assert_int_equal(gen_end(&t, NULL, GEN_SUCCESS, S(1), MIB(1)), -EINVAL);
	assert_int_equal(gen_end(&t, "", GEN_SUCCESS, S(1), MIB(1)), -EINVAL);
	assert_int_equal(gen_start(NULL, "a", 0, 0), -EINVAL);
	assert_int_equal(gen_start(&t, NULL, 0, 0), -EINVAL);
	assert_int_equal(gen_start(&t, "", 0, 0), -EINVAL);
	assert_int_equal(gen_sample(NULL, 0, 0), -EINVAL);
	assert_int_equal(gen_server_restarted(NULL, 0, 0), -EINVAL);
	assert_int_equal(gen_new_epoch(NULL, 0, 0), -EINVAL);
	assert_null(gen_find(&t, NULL));
	assert_null(gen_find(&t, ""));
	assert_null(gen_find(NULL, "a"));
	assert_null(gen_get(&t, 1));

	/* Out-of-range and GEN_RUNNING statuses end as unknown. */
	assert_int_equal(gen_end(&t, "a", (enum gen_status)42, S(1), MIB(100)), 1);
	assert_int_equal(gen_last(&t)->status, GEN_UNKNOWN);
	gen_start(&t, "c", S(2), MIB(100));
	assert_int_equal(gen_end(&t, "c", GEN_RUNNING, S(3), MIB(100)), 2);
	assert_int_equal(gen_last(&t)->status, GEN_UNKNOWN);
	/* An unknown outcome may be settled, but never back to running. */
	assert_int_equal(gen_end(&t, "c", GEN_RUNNING, S(4), MIB(100)), 2);
	assert_int_equal(gen_last(&t)->status, GEN_UNKNOWN);
	assert_int_equal(gen_end(&t, "c", GEN_INTERRUPTED, S(4), MIB(100)), 2);
	assert_int_equal(gen_last(&t)->status, GEN_INTERRUPTED);
}

static void test_long_prompt_id(void **state)
{
	struct gen_tracker t;
	char id[101], other[101];

	(void)state;
	memset(id, 'x', 100);
	id[100] = '\0';
	memcpy(other, id, sizeof(other));
	other[99] = 'y'; /* differs only beyond the stored 64 characters */
	gen_tracker_init(&t, NULL);
	assert_int_equal(gen_start(&t, id, S(0), MIB(1)), 1);
	assert_int_equal(strlen(gen_last(&t)->prompt_id), GEN_PROMPT_ID_MAX);
	assert_ptr_equal(gen_find(&t, id), gen_last(&t));
	assert_int_equal(gen_start(&t, other, S(1), MIB(1)), 1); /* same truncated id: still the same prompt */
	assert_int_equal(gen_end(&t, id, GEN_SUCCESS, S(2), MIB(2)), 1);
}

/* The id may come from the slot that is about to be recycled (a prompt requeued with its original id). */
static void test_requeue_id_from_ring(void **state)
{
	struct gen_tracker t;
	char id[16];

	(void)state;
	gen_tracker_init(&t, NULL);
	for (unsigned i = 0; i < GEN_RING_SIZE; i++) {
		snprintf(id, sizeof(id), "p%u", i);
		run_gen(&t, id, i * 10, 100, 200, 100);
	}
	assert_string_equal(gen_get(&t, GEN_RING_SIZE - 1)->prompt_id, "p0");
	assert_int_equal(gen_start(&t, gen_get(&t, GEN_RING_SIZE - 1)->prompt_id, S(1000), MIB(100)), 65);
	assert_string_equal(gen_last(&t)->prompt_id, "p0");
	assert_string_equal(gen_get(&t, GEN_RING_SIZE - 1)->prompt_id, "p1");
}

static void test_time_backwards(void **state)
{
	struct gen_tracker t;

	(void)state;
	gen_tracker_init(&t, NULL);
	gen_start(&t, "a", S(100), MIB(1));
	gen_end(&t, "a", GEN_SUCCESS, S(50), MIB(1));
	assert_int_equal(gen_last(&t)->end_ns, S(100));
}

static void test_ring_wrap(void **state)
{
	struct gen_tracker t;
	struct leak_estimate le;
	char id[16];

	(void)state;
	gen_tracker_init(&t, NULL);
	for (unsigned i = 1; i <= 70; i++) {
		snprintf(id, sizeof(id), "p%u", i);
		/* residual of generation i: 1000 + 10 i MiB */
		run_gen(&t, id, i * 10, 1000 + 10 * (i - 1), 2000, 1000 + 10 * i);
	}
	assert_int_equal(gen_count(&t), GEN_RING_SIZE);
	assert_int_equal(gen_last(&t)->seq, 70);
	assert_int_equal(gen_get(&t, GEN_RING_SIZE - 1)->seq, 7);
	assert_null(gen_get(&t, GEN_RING_SIZE));
	assert_null(gen_find(&t, "p6"));
	assert_non_null(gen_find(&t, "p7"));
	assert_int_equal(t.total, 70);
	assert_int_equal(gen_completed_in_epoch(&t), GEN_RING_SIZE);
	assert_int_equal(gen_get(&t, 0)->growth_bytes, (int64_t)MIB(10));

	/* The epoch's first generation fell out of the ring: nothing to exclude. */
	assert_int_equal(gen_leak_estimate(&t, 0, &le), GEN_RING_SIZE);
	assert_false(le.first_excluded);
	assert_int_equal(le.first_seq, 7);
	assert_int_equal(le.last_seq, 70);
	assert_near(le.slope_bytes_per_gen, (double)MIB(10), 1e-3);
	assert_near(le.intercept_bytes, (double)MIB(1000), 1.0);
	assert_near(le.r2, 1.0, 1e-12);
	assert_near(le.slope_stderr_bytes, 0.0, 1e-3);
}

struct leak_case {
	const char *name;
	unsigned n;
	uint64_t residual_mib[8];
	unsigned n_last;
	int points;
	bool first_excluded;
	uint64_t first_seq, last_seq;
	double slope_mib, intercept_mib, r2, stderr_mib;
};

static const struct leak_case leak_cases[] = {
	{ "none", 0, { 0 }, 0, 0, false, 0, 0, 0, 0, 0, 0 },
	{ "one", 1, { 825 }, 0, 1, false, 1, 1, 0, 825, 0, 0 },
	/* two generations: their difference (the model in residual 1 is also in residual 2) */
	{ "two", 2, { 825, 1125 }, 0, 2, false, 1, 2, 300, 525, 1, 0 },
	/* three: the first one (warm-up) is left out, the slope is 3 - 2 */
	{ "three", 3, { 825, 1125, 1425 }, 0, 2, true, 2, 3, 300, 525, 1, 0 },
	{ "first off the line", 3, { 500, 1125, 1425 }, 0, 2, true, 2, 3, 300, 525, 1, 0 },
	{ "four", 4, { 825, 1125, 1425, 1725 }, 0, 3, true, 2, 4, 300, 525, 1, 0 },
	{ "flat", 4, { 825, 825, 825, 825 }, 0, 3, true, 2, 4, 0, 825, 0, 0 },
	/* x = 2,3,4, y = 900,1100,1000: Sxy = 100, Sxx = 2, Syy = 20000, SSres = 15000 */
	{ "noisy", 4, { 1000, 900, 1100, 1000 }, 0, 3, true, 2, 4, 50, 850, 0.25, 86.60254037844386 },
	{ "falling", 4, { 825, 1000, 900, 800 }, 0, 3, true, 2, 4, -100, 1200, 1, 0 },
	/* window of the last 3: generations 4..6, the first is not in it */
	{ "window", 6, { 825, 100, 100, 1000, 1300, 1600 }, 3, 3, false, 4, 6, 300, -200, 1, 0 },
	/* window of 3 holding the first: it goes, two remain */
	{ "window with first", 3, { 825, 1125, 1425 }, 3, 2, true, 2, 3, 300, 525, 1, 0 },
	{ "window of 2", 4, { 825, 1125, 1425, 1800 }, 2, 2, false, 3, 4, 375, 300, 1, 0 },
	{ "window of 1", 4, { 825, 1125, 1425, 1800 }, 1, 1, false, 4, 4, 0, 1800, 0, 0 },
};

static void test_leak_estimate_table(void **state)
{
	(void)state;
	for (size_t c = 0; c < ARRAY_SIZE(leak_cases); c++) {
		const struct leak_case *lc = &leak_cases[c];
		struct gen_tracker t;
		struct leak_estimate le;
		uint64_t prev = 25;
		char id[16];

		print_message("case %s\n", lc->name);
		gen_tracker_init(&t, "x");
		for (unsigned i = 0; i < lc->n; i++) {
			snprintf(id, sizeof(id), "g%u", i);
			run_gen(&t, id, i * 100, prev, prev + 400, lc->residual_mib[i]);
			prev = lc->residual_mib[i];
		}
		assert_int_equal(gen_leak_estimate(&t, lc->n_last, &le), lc->points);
		assert_int_equal(le.points, lc->points);
		assert_int_equal(le.first_excluded, lc->first_excluded);
		assert_int_equal(le.first_seq, lc->first_seq);
		assert_int_equal(le.last_seq, lc->last_seq);
		assert_near(le.slope_bytes_per_gen, lc->slope_mib * MIB(1), 1e-3);
		assert_near(le.intercept_bytes, lc->intercept_mib * MIB(1), 1e-3);
		assert_near(le.r2, lc->r2, 1e-12);
		assert_near(le.slope_stderr_bytes, lc->stderr_mib * MIB(1), 1e-3);
	}
}

static void test_leak_estimate_skips_running_and_errors(void **state)
{
	struct gen_tracker t;
	struct leak_estimate le;

	(void)state;
	gen_tracker_init(&t, NULL);
	assert_int_equal(gen_leak_estimate(NULL, 0, &le), -EINVAL);
	assert_int_equal(gen_leak_estimate(&t, 0, NULL), -EINVAL);
	run_gen(&t, "a", 0, 25, 1225, 825);
	run_gen(&t, "b", 10, 825, 1525, 1125);
	gen_start(&t, "c", S(20), MIB(1125));
	gen_sample(&t, S(21), MIB(1500));
	/* The running one has no residual yet. */
	assert_int_equal(gen_leak_estimate(&t, 0, &le), 2);
	assert_int_equal(le.last_seq, 2);
	assert_near(le.slope_bytes_per_gen, (double)MIB(300), 1e-3);
	assert_int_equal(gen_completed_in_epoch(&t), 2);
	assert_ptr_equal(gen_last_completed(&t), gen_get(&t, 1));
}

static void test_server_restart(void **state)
{
	struct gen_tracker t;
	struct leak_estimate le;
	const struct generation *g;

	(void)state;
	gen_tracker_init(&t, NULL);
	run_gen(&t, "a", 0, 25, 1225, 825);
	run_gen(&t, "b", 10, 825, 1525, 1125);
	gen_start(&t, "c", S(20), MIB(1125));
	gen_sample(&t, S(21), MIB(1500));

	assert_int_equal(gen_server_restarted(&t, S(30), MIB(25)), 0);
	g = gen_get(&t, 0);
	assert_string_equal(g->prompt_id, "c");
	assert_int_equal(g->status, GEN_INTERRUPTED);
	assert_false(g->has_residual);
	assert_int_equal(g->growth_bytes, 0);
	assert_int_equal(g->peak_bytes, MIB(1500));
	assert_int_equal(g->usage_end_bytes, 0);
	assert_null(gen_running(&t));
	assert_int_equal(t.epoch_start_bytes, MIB(25));
	assert_int_equal(t.epoch_start_ns, S(30));
	assert_int_equal(gen_completed_in_epoch(&t), 0);
	assert_null(gen_last_completed(&t));
	assert_int_equal(gen_leak_estimate(&t, 0, &le), 0);

	/* Idle samples after the restart do not touch the old epoch's residuals. */
	gen_sample(&t, S(31), MIB(30));
	assert_int_equal(gen_get(&t, 1)->residual_bytes, MIB(1125));

	assert_int_equal(run_gen(&t, "d", 40, 25, 1225, 825), 1); /* sequence restarts */
	g = gen_last(&t);
	assert_true(g->first_in_epoch);
	assert_int_equal(g->growth_bytes, (int64_t)MIB(800)); /* vs its own start, not the old 1125 */
	assert_int_equal(gen_leak_estimate(&t, 0, &le), 1);
	assert_near(le.slope_bytes_per_gen, 0, 0);

	assert_int_equal(run_gen(&t, "e", 50, 825, 1525, 1125), 2);
	assert_int_equal(gen_leak_estimate(&t, 0, &le), 2);
	assert_near(le.slope_bytes_per_gen, (double)MIB(300), 1e-3);
	assert_int_equal(le.first_seq, 1);
	assert_int_equal(le.last_seq, 2);
	/* The 5 generations in the ring, 2 in this epoch. */
	assert_int_equal(gen_count(&t), 5);
	assert_int_equal(gen_completed_in_epoch(&t), 2);

	/* Restart while idle. */
	assert_int_equal(gen_server_restarted(&t, S(60), MIB(25)), 0);
	assert_int_equal(gen_last(&t)->status, GEN_SUCCESS);
	assert_int_equal(gen_completed_in_epoch(&t), 0);
}

static void test_new_epoch_after_unload(void **state)
{
	struct gen_tracker t;
	struct leak_estimate le;

	(void)state;
	gen_tracker_init(&t, NULL);
	run_gen(&t, "a", 0, 25, 1225, 825);
	gen_start(&t, "b", S(10), MIB(825));
	assert_int_equal(gen_new_epoch(&t, S(11), MIB(825)), -EBUSY);
	gen_end(&t, "b", GEN_SUCCESS, S(12), MIB(1125));
	assert_int_equal(gen_new_epoch(&t, S(13), MIB(40)), 0);
	gen_sample(&t, S(14), MIB(40));
	assert_int_equal(gen_get(&t, 0)->residual_bytes, MIB(1125)); /* old epoch frozen */
	assert_int_equal(run_gen(&t, "c", 20, 40, 1240, 840), 3); /* sequence goes on */
	assert_true(gen_last(&t)->first_in_epoch);
	assert_int_equal(gen_last(&t)->growth_bytes, (int64_t)MIB(800));
	assert_int_equal(gen_leak_estimate(&t, 0, &le), 1);
}

static void test_overflow_values(void **state)
{
	struct gen_tracker t;
	struct leak_estimate le;

	(void)state;
	gen_tracker_init(&t, NULL);
	gen_start(&t, "a", UINT64_MAX, 0);
	gen_sample(&t, UINT64_MAX, UINT64_MAX);
	gen_end(&t, "a", GEN_SUCCESS, UINT64_MAX, UINT64_MAX);
	assert_int_equal(gen_last(&t)->growth_bytes, INT64_MAX);
	gen_start(&t, "b", 0, UINT64_MAX);
	gen_end(&t, "b", GEN_SUCCESS, 0, 0);
	assert_int_equal(gen_last(&t)->growth_bytes, INT64_MIN);
	assert_int_equal(gen_last(&t)->end_ns, 0);
	gen_start(&t, "c", 0, 0);
	gen_end(&t, "c", GEN_SUCCESS, 0, UINT64_MAX);
	assert_int_equal(gen_leak_estimate(&t, 0, &le), 2);
	assert_true(isfinite(le.slope_bytes_per_gen));
	assert_true(le.r2 >= 0 && le.r2 <= 1);
}

/* A caller may hand in a struct it never initialised; answers may be wrong but memory stays safe. */
static void test_corrupted_tracker(void **state)
{
	struct gen_tracker t;
	struct leak_estimate le;

	(void)state;
	memset(&t, 0, sizeof(t));
	t.count = 1000;
	t.head = 12345;
	t.running = true;
	t.next_seq = UINT64_MAX;
	for (size_t i = 0; i < GEN_RING_SIZE; i++) {
		memset(t.ring[i].prompt_id, 'z', sizeof(t.ring[i].prompt_id)); /* not terminated */
		t.ring[i].status = (enum gen_status)77;
		t.ring[i].seq = UINT64_MAX;
		t.ring[i].residual_bytes = UINT64_MAX - i;
		t.ring[i].has_residual = true;
	}
	assert_true(gen_count(&t) <= GEN_RING_SIZE);
	for (size_t i = 0; i < GEN_RING_SIZE + 2; i++)
		(void)gen_get(&t, i);
	(void)gen_running(&t);
	(void)gen_find(&t, "a");
	(void)gen_last_completed(&t);
	(void)gen_completed_in_epoch(&t);
	assert_true(gen_leak_estimate(&t, 0, &le) >= 0);
	assert_true(gen_sample(&t, 1, 2) == 0);
	assert_int_equal(gen_start(&t, "a", 1, 2), 1);
	assert_true(gen_end(&t, "a", GEN_SUCCESS, 3, 4) > 0);
	assert_int_equal(gen_server_restarted(&t, 5, 6), 0);
}

static void test_status_strings(void **state)
{
	static const struct {
		const char *s;
		int r;
		enum gen_status st;
	} cases[] = {
		{ "running", 0, GEN_RUNNING },	   { "success", 0, GEN_SUCCESS },   { "error", 0, GEN_ERROR },
		{ "interrupted", 0, GEN_INTERRUPTED }, { "unknown", 0, GEN_UNKNOWN }, { "Success", -EINVAL, GEN_UNKNOWN },
		{ "", -EINVAL, GEN_UNKNOWN },	   { NULL, -EINVAL, GEN_UNKNOWN },
	};
	enum gen_status st;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		st = GEN_SUCCESS;
		assert_int_equal(gen_status_from_string(cases[i].s, &st), cases[i].r);
		assert_int_equal(st, cases[i].st);
		if (cases[i].r == 0)
			assert_string_equal(gen_status_to_string(st), cases[i].s);
	}
	assert_int_equal(gen_status_from_string("error", NULL), -EINVAL);
	assert_string_equal(gen_status_to_string((enum gen_status)-1), "invalid");
	assert_string_equal(gen_status_to_string(_GEN_STATUS_MAX), "invalid");
}

/* A /free is judged once memory has settled after the boundary, not by the first sample after it. */
static void test_settle(void **state)
{
	static const struct {
		const char *name;
		uint64_t ref_mib, start_mib;
		struct {
			uint64_t t_ms, mib;
			int want;
		} steps[8];
		uint64_t low_mib, low_ms;
	} table[] = {
		/* ComfyUI lets go 1.2 s after the boundary, in two steps; then the next prompt climbs */
		{ "late release, next prompt climbs", 1400, 1400,
		  { { 500, 1398, 0 }, { 1000, 1401, 0 }, { 1200, 900, 0 }, { 1400, 500, 0 }, { 1500, 505, 0 },
		    { 1700, 700, 1 } },
		  500, 1400 },
		/* idle: the low holds for the quiet time */
		{ "idle, quiet after the drop", 1400, 1300,
		  { { 100, 600, 0 }, { 600, 598, 0 }, { 1099, 590, 0 }, { 1100, 590, 1 } },
		  590, 100 },
		/* a slow decline in steps below the noise adds up */
		{ "slow decline", 1000, 1000,
		  { { 100, 990, 0 }, { 200, 980, 0 }, { 300, 970, 0 }, { 400, 960, 0 }, { 1300, 960, 0 },
		    { 1400, 960, 1 } },
		  960, 400 },
		/* nothing comes back: judged at max */
		{ "nothing released", 1000, 1000,
		  { { 1000, 1001, 0 }, { 4999, 1000, 0 }, { 5000, 1000, 1 } },
		  1000, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		struct gen_settle st;
		uint64_t low = 0, low_ns = 0;
		int r = 0;

		gen_settle_begin(&st, 0, table[i].ref_mib << 20, table[i].start_mib << 20);
		for (size_t j = 0; j < ARRAY_SIZE(table[i].steps) && table[i].steps[j].t_ms; j++) {
			r = gen_settle_sample(&st, table[i].steps[j].t_ms * 1000000ULL, table[i].steps[j].mib << 20,
					      1000000000ULL, 32ULL << 20, 5000000000ULL, &low, &low_ns);
			if (r != table[i].steps[j].want)
				print_error("%s: step %zu returned %d\n", table[i].name, j, r);
			assert_int_equal(r, table[i].steps[j].want);
		}
		assert_int_equal(r, 1);
		assert_int_equal(low, table[i].low_mib << 20);
		assert_int_equal(low_ns, table[i].low_ms * 1000000ULL);
		/* once settled, no longer active */
		assert_int_equal(gen_settle_sample(&st, 99000000000ULL, 0, 1, 1, 1, &low, &low_ns), 0);
	}
	assert_int_equal(gen_settle_sample(NULL, 0, 0, 0, 0, 0, NULL, NULL), -EINVAL);
	gen_settle_begin(NULL, 0, 0, 0);
}

/* The live path saw prompt b from the poll that found it (late, after its climb began) to the poll that found it
 * gone (after c had started climbing); ComfyUI's stamps give its real window, and its neighbour's growth follows. */
static void test_set_window(void **state)
{
	struct gen_tracker t;
	const struct generation *a, *b;

	(void)state;
	gen_tracker_init(&t, "x");
	assert_true(gen_start(&t, "a", 100, MIB(1000)) > 0);
	assert_true(gen_end(&t, "a", GEN_SUCCESS, 200, MIB(1010)) > 0);
	assert_true(gen_start(&t, "b", 400, MIB(1200)) > 0);
	assert_int_equal(gen_set_window(&t, "b", 300, 550, MIB(1010), MIB(1300), MIB(1300), MIB(1020)), -EBUSY);
	assert_true(gen_sample(&t, 450, MIB(1500)) == 0);
	assert_true(gen_end(&t, "b", GEN_SUCCESS, 600, MIB(1400)) > 0);
	b = gen_find(&t, "b");
	assert_int_equal(b->growth_bytes, (int64_t)MIB(390));
	assert_int_equal(gen_set_window(&t, "b", 300, 550, MIB(1010), MIB(1300), MIB(1290), MIB(1020)), 0);
	assert_int_equal(b->start_ns, 300);
	assert_int_equal(b->end_ns, 550);
	assert_int_equal(b->usage_start_bytes, MIB(1010));
	assert_int_equal(b->peak_bytes, MIB(1300));
	assert_int_equal(b->usage_end_bytes, MIB(1290));
	assert_int_equal(b->residual_bytes, MIB(1020));
	assert_int_equal(b->growth_bytes, (int64_t)MIB(10));
	/* an older generation: its own growth and the next one's follow */
	assert_int_equal(gen_set_window(&t, "a", 100, 190, MIB(1000), MIB(1100), MIB(1100), MIB(1005)), 0);
	a = gen_find(&t, "a");
	assert_int_equal(a->growth_bytes, (int64_t)MIB(5));
	assert_int_equal(b->growth_bytes, (int64_t)MIB(15));
	/* the peak is never below the levels it is made of */
	assert_int_equal(gen_set_window(&t, "a", 100, 190, MIB(1000), MIB(900), MIB(1050), MIB(1005)), 0);
	assert_int_equal(a->peak_bytes, MIB(1050));
	assert_int_equal(gen_set_window(&t, "a", 700, 600, 0, 0, 0, 0), -EINVAL);
	assert_int_equal(gen_set_window(&t, "zz", 1, 2, 0, 0, 0, 0), -ENOENT);
	assert_int_equal(gen_set_window(NULL, "a", 1, 2, 0, 0, 0, 0), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_lifecycle),
		cmocka_unit_test(test_busy_queue),
		cmocka_unit_test(test_start_idempotent_and_missed_end),
		cmocka_unit_test(test_end_errors),
		cmocka_unit_test(test_long_prompt_id),
		cmocka_unit_test(test_requeue_id_from_ring),
		cmocka_unit_test(test_time_backwards),
		cmocka_unit_test(test_ring_wrap),
		cmocka_unit_test(test_leak_estimate_table),
		cmocka_unit_test(test_leak_estimate_skips_running_and_errors),
		cmocka_unit_test(test_server_restart),
		cmocka_unit_test(test_new_epoch_after_unload),
		cmocka_unit_test(test_overflow_values),
		cmocka_unit_test(test_corrupted_tracker),
		cmocka_unit_test(test_status_strings),
		cmocka_unit_test(test_settle),
		cmocka_unit_test(test_set_window),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

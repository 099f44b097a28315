// SPDX-License-Identifier: GPL-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "common.h"
#include "dropsync.h"

#define MS 1000000ULL
#define R DROPSYNC_RESYNC
#define B DROPSYNC_BURST
#define E DROPSYNC_BURST_END

struct step {
	uint64_t now_ms, total;
	unsigned want;
	uint64_t due_ms; /* UINT64_MAX: nothing owed */
};

static void replay(const char *name, const struct step *steps, size_t n, struct dropsync *s)
{
	for (size_t i = 0; i < n; i++) {
		unsigned got = dropsync_step(s, steps[i].total, steps[i].now_ms * MS);
		uint64_t due = dropsync_due_ns(s);

		if (got != steps[i].want)
			fail_msg("%s step %zu (t=%llu ms, total %llu): flags %u, want %u", name, i,
				 (unsigned long long)steps[i].now_ms, (unsigned long long)steps[i].total, got, steps[i].want);
		if (due != (steps[i].due_ms == UINT64_MAX ? UINT64_MAX : steps[i].due_ms * MS))
			fail_msg("%s step %zu: due %llu ns, want %llu ms", name, i, (unsigned long long)due,
				 (unsigned long long)steps[i].due_ms);
	}
}

static void test_bursts(void **state)
{
	static const uint64_t N = UINT64_MAX;
	/* a daemon started with drops already counted (another run's probes did not share the map, but a reload of
	 * the probes would): the first read is the baseline */
	static const struct step baseline[] = {
		{ 1000, 7, 0, N },
		{ 1100, 7, 0, N },
	};
	/* one drop: resync at once with the burst's record, the burst ends after the quiet time */
	static const struct step single[] = {
		{ 1000, 0, 0, N },
		{ 1100, 3, R | B, 11100 },
		{ 1200, 3, 0, 11100 },
		{ 11099, 3, 0, 11100 },
		{ 11100, 3, E, N },
		{ 11200, 3, 0, N },
	};
	/* a flood: drops at every look; one resync a second, the last one after the flood ends; one record */
	static const struct step flood[] = {
		{ 1000, 0, 0, N },
		{ 1100, 10, R | B, 11100 },
		{ 1200, 20, 0, 2100 },
		{ 1700, 30, 0, 2100 },
		{ 2100, 40, R, 12100 },
		{ 2500, 50, 0, 3100 },      /* the flood's last drops: a resync is owed... */
		{ 2600, 50, 0, 3100 },      /* ...not before the interval... */
		{ 3100, 50, R, 12500 },     /* ...then it comes although nothing new was dropped */
		{ 12499, 50, 0, 12500 },
		{ 12500, 50, E, N },
		/* a later burst is a new burst: its own record */
		{ 20000, 51, R | B, 30000 },
	};
	/* a drop after a resync but within the interval: held back, never lost */
	static const struct step late[] = {
		{ 0 + 1, 0, 0, N },
		{ 500, 1, R | B, 10500 },
		{ 900, 2, 0, 1500 },
		{ 1499, 2, 0, 1500 },
		{ 1500, 2, R, 10900 },
	};
	/* the count went backwards (probes loaded again): a new baseline, not drops */
	static const struct step reset[] = {
		{ 1000, 5, 0, N },
		{ 1100, 2, 0, N },
		{ 1200, 3, R | B, 11200 },
	};
	struct dropsync s;
	(void)state;

	s = (struct dropsync){ 0 };
	replay("baseline", baseline, ARRAY_SIZE(baseline), &s);
	s = (struct dropsync){ 0 };
	replay("single", single, ARRAY_SIZE(single), &s);
	s = (struct dropsync){ 0 };
	replay("flood", flood, ARRAY_SIZE(flood), &s);
	assert_int_equal(s.burst_drops, 1);
	assert_int_equal(s.burst_resyncs, 1);
	s = (struct dropsync){ 0 };
	replay("late", late, ARRAY_SIZE(late), &s);
	s = (struct dropsync){ 0 };
	replay("reset", reset, ARRAY_SIZE(reset), &s);
}

static void test_burst_totals(void **state)
{
	struct dropsync s = { 0 };
	(void)state;

	dropsync_step(&s, 100, 1 * MS);
	dropsync_step(&s, 110, 2 * MS);
	dropsync_step(&s, 140, 500 * MS);
	dropsync_step(&s, 141, 1500 * MS);
	/* the totals stand until the burst ends and the next begins */
	assert_int_equal(dropsync_step(&s, 141, 20000 * MS), DROPSYNC_BURST_END);
	assert_int_equal(s.burst_drops, 41);
	assert_int_equal(s.burst_resyncs, 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bursts),
		cmocka_unit_test(test_burst_totals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
/* core/rsstep.c: the RSS event step as the headroom under the limit shrinks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "rsstep.h"

#define MIB(x) ((uint64_t)(x) << 20)
#define GIB(x) ((uint64_t)(x) << 30)

struct step_case {
	const char *name;
	uint64_t usage, limit, base;
	uint64_t want;
};

static const struct step_case cases[] = {
	{ "no limit: the configured step", GIB(3), 0, MIB(64), MIB(64) },
	{ "far from the limit: the configured step", GIB(1), GIB(8), MIB(64), MIB(64) },
	{ "headroom/8 exactly the configured step", GIB(1) - MIB(512), GIB(1), MIB(64), MIB(64) },
	{ "headroom/8 just under 64M: 32M", GIB(1) - MIB(511), GIB(1), MIB(64), MIB(32) },
	{ "256M left: 32M", GIB(1) - MIB(256), GIB(1), MIB(64), MIB(32) },
	{ "100M left: 12.5M rounds down to 8M", GIB(1) - MIB(100), GIB(1), MIB(64), MIB(8) },
	{ "40M left: 5M rounds down to the 4M floor", GIB(1) - MIB(40), GIB(1), MIB(64), MIB(4) },
	{ "8M left: the floor", GIB(1) - MIB(8), GIB(1), MIB(64), MIB(4) },
	{ "at the limit: the floor", GIB(1), GIB(1), MIB(64), MIB(4) },
	{ "past the limit (usage counts caches): the floor", GIB(1) + MIB(5), GIB(1), MIB(64), MIB(4) },
	{ "a configured step finer than the floor is the floor", GIB(1) - MIB(8), GIB(1), MIB(1), MIB(1) },
	{ "a configured step finer than the floor, far away", GIB(1), GIB(8), MIB(1), MIB(1) },
	{ "a configured step not a power of two caps the step", GIB(1) - MIB(400), GIB(1), MIB(48), MIB(48) },
	{ "below a non-power-of-two step: a power of two", GIB(1) - MIB(300), GIB(1), MIB(48), MIB(32) },
	{ "huge headroom, huge step", 0, GIB(1024), GIB(1), GIB(1) },
};

static void test_step_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct step_case *c = &cases[i];
		uint64_t got = rss_step_for_headroom(c->usage, c->limit, c->base);

		if (got != c->want)
			fail_msg("%s: got %llu, want %llu", c->name, (unsigned long long)got, (unsigned long long)c->want);
	}
}

/* Climbing to the limit, the step never grows and there are at least RSS_STEP_HEADROOM_DIVISOR events: the policy
 * sees the last stretch in fine steps at any pace. */
static void test_step_climb(void **state)
{
	uint64_t limit = GIB(2), base = MIB(64), last = 0, prev_step = UINT64_MAX;
	int events = 0, events_last_quarter = 0;

	(void)state;
	for (uint64_t rss = 0; rss < limit; rss += MIB(1)) {
		uint64_t step = rss_step_for_headroom(last, limit, base);

		assert_true(step <= prev_step);
		prev_step = step;
		if (rss >= last + step) {
			last = rss;
			events++;
			if (rss >= limit - limit / 4)
				events_last_quarter++;
		}
	}
	assert_int_equal(prev_step, RSS_STEP_MIN_BYTES);
	/* a fixed 64M step would see the last 512M in 8 events; the tightened one sees it in many more */
	assert_true(events_last_quarter > 2 * (int)(limit / 4 / base));
	assert_true(events > (int)(limit / base));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_step_table),
		cmocka_unit_test(test_step_climb),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

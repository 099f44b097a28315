// SPDX-License-Identifier: GPL-2.0
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include "rssarm.h"

#define GiB (1024ULL * 1024 * 1024)

static struct rssarm_view far_idle(void)
{
	return (struct rssarm_view){ .server = true, .usage_bytes = 4 * GiB,
				     .limit_bytes = 32 * GiB, .warn_fraction = 0.75 };
}

/* 32 GiB, warn at 0.75: 24 GiB less 4 GiB of growth in the 1 s lead */
static void test_line_is_the_warn_line_less_a_lead_of_growth(void **state)
{
	(void)state;
	assert_int_equal(rssarm_line(32 * GiB, 0.75, 0), 20 * GiB);
	/* a measured rate faster than the floor, doubled, moves the line down */
	assert_int_equal(rssarm_line(32 * GiB, 0.75, 3.0 * GiB), 18 * GiB);
	/* in whole grains: 25.6 - 4 GiB is 21.6 GiB, notified at 21.5 */
	assert_int_equal(rssarm_line(32 * GiB, 0.8, 0), 21 * GiB + 512 * (1ULL << 20));
	/* a small limit: every usage is near */
	assert_int_equal(rssarm_line(2 * GiB, 0.8, 0), 0);
	/* no warn line: the limit itself */
	assert_int_equal(rssarm_line(32 * GiB, 0, 0), 28 * GiB);
}

static void test_far_and_idle_does_not_want_it(void **state)
{
	struct rssarm_view v = far_idle();

	(void)state;
	assert_false(rssarm_wanted(&v));
	v.usage_bytes = rssarm_line(v.limit_bytes, v.warn_fraction, 0) - 1;
	assert_false(rssarm_wanted(&v));
	v.usage_bytes++;
	assert_true(rssarm_wanted(&v));
}

static void test_each_reason_to_attach(void **state)
{
	struct rssarm_view v;

	(void)state;
	v = far_idle(), v.busy = true;
	assert_true(rssarm_wanted(&v));
	v = far_idle(), v.limit_bytes = 0;
	assert_true(rssarm_wanted(&v));
	v = far_idle(), v.limit_bytes = 4 * GiB;
	assert_true(rssarm_wanted(&v));
	v = far_idle(), v.rate_bps = 12.0 * GiB; /* 24 GiB in the lead: the line is 1.6 GiB */
	assert_true(rssarm_wanted(&v));
}

static void test_no_server_never_wants_it(void **state)
{
	struct rssarm_view v = far_idle();

	(void)state;
	v.server = false;
	v.busy = true;
	assert_false(rssarm_wanted(&v));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_line_is_the_warn_line_less_a_lead_of_growth),
		cmocka_unit_test(test_far_and_idle_does_not_want_it),
		cmocka_unit_test(test_each_reason_to_attach),
		cmocka_unit_test(test_no_server_never_wants_it),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

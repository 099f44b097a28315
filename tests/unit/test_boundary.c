// SPDX-License-Identifier: GPL-2.0
/* Generations measured between ComfyUI's own stamps over a trace of measurements: a 0.2 s generation between
 * two 500 ms polls keeps its own start, peak and residual. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "boundary.h"
#include "common.h"

#define MS(x) ((uint64_t)(x) * NSEC_PER_MSEC)

struct pt {
	unsigned ms;
	unsigned mib;
};

static struct memtrace *trace_of(const struct pt *p, size_t n)
{
	struct memtrace *mt = calloc(1, sizeof(*mt));

	assert_non_null(mt);
	for (size_t i = 0; i < n; i++)
		memtrace_add(mt, MS(p[i].ms), MIB(p[i].mib));
	return mt;
}

/* Ten 0.2 s generations back to back, each climbing 300 MiB over its idle level and leaving 10 MiB more, seen by
 * RSS step events inside them and by 500 ms timer samples that straddle them. */
static void test_ten_short_generations(void **state)
{
	struct memtrace *mt = calloc(1, sizeof(*mt));
	uint64_t base = 1000;

	(void)state;
	assert_non_null(mt);
	for (unsigned g = 0; g < 10; g++) {
		uint64_t t0 = 1000 + g * 250, idle = base + g * 10;
		memtrace_add(mt, MS(t0 - 20), MIB(idle));        /* the trough before */
		memtrace_add(mt, MS(t0 + 60), MIB(idle + 150));  /* rss events while climbing */
		memtrace_add(mt, MS(t0 + 150), MIB(idle + 300));
		memtrace_add(mt, MS(t0 + 230), MIB(idle + 10));   /* released after the end stamp */
	}
	for (unsigned g = 0; g < 10; g++) {
		uint64_t t0 = 1000 + g * 250, idle = base + g * 10;
		struct gen_window w;

		assert_int_equal(memtrace_window(mt, MS(t0), MS(t0 + 200), MS(t0 + 250), &w), 0);
		assert_int_equal(w.usage_start_bytes, MIB(idle));
		assert_int_equal(w.peak_bytes, MIB(idle + 300));
		assert_int_equal(w.usage_end_bytes, MIB(idle + 300));
		assert_true(w.residual_settled);
		assert_int_equal(w.residual_bytes, MIB(idle + 10));
		assert_int_equal(w.points_inside, 2);
	}
	free(mt);
}

static void test_window_edges(void **state)
{
	static const struct pt p[] = { { 100, 500 }, { 200, 800 }, { 300, 900 }, { 400, 600 }, { 500, 550 }, { 600, 700 } };
	static const struct {
		unsigned start, end, settle;
		int r;
		unsigned start_mib, peak_mib, end_mib, residual_mib;
		bool settled;
		unsigned inside;
	} t[] = {
		/* a window with no measurement inside: start level throughout, the later trough settles it */
		{ 110, 190, 250, 0, 500, 500, 500, 800, true, 0 },
		/* a measurement exactly at the start stamp is the start level, not inside */
		{ 200, 350, 450, 0, 800, 900, 900, 600, true, 1 },
		/* the last point before is half-way down a release: the first inside, lower, is the start level */
		{ 350, 450, 450, 0, 600, 600, 600, 600, false, 1 },
		{ 350, 650, 650, 0, 600, 700, 700, 700, false, 3 },
		/* residual: the lowest after the end, up to the next start only */
		{ 200, 350, 550, 0, 800, 900, 900, 550, true, 1 },
		{ 200, 350, 650, 0, 800, 900, 900, 550, true, 1 },
		/* nothing after the end yet: the end level, not settled */
		{ 550, 650, 700, 0, 550, 700, 700, 700, false, 1 },
		/* released before the end stamp: the end level below the peak is a residual already, and a later
		 * climb does not replace it; a lower level after the end still does */
		{ 150, 450, 450, 0, 500, 900, 600, 600, true, 3 },
		{ 150, 450, 600, 0, 500, 900, 600, 550, true, 3 },
		{ 150, 450, 650, 0, 500, 900, 600, 550, true, 3 },
		/* the trace begins inside the window: its first point stands for the start, the rest is measured */
		{ 50, 150, 200, -ENODATA, 500, 500, 500, 800, true, 0 },
		{ 50, 450, 650, -ENODATA, 500, 900, 600, 550, true, 3 },
		/* the trace does not reach back to the end either */
		{ 20, 50, 200, -ENODATA, 0, 0, 0, 0, false, 0 },
		{ 300, 200, 400, -EINVAL, 0, 0, 0, 0, false, 0 },
	};
	struct memtrace *mt = trace_of(p, ARRAY_SIZE(p));

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		struct gen_window w;
		int r = memtrace_window(mt, MS(t[i].start), MS(t[i].end), MS(t[i].settle), &w);

		if (r != t[i].r)
			fail_msg("row %zu: %d, expected %d", i, r, t[i].r);
		assert_int_equal(w.usage_start_bytes, MIB(t[i].start_mib));
		assert_int_equal(w.peak_bytes, MIB(t[i].peak_mib));
		assert_int_equal(w.usage_end_bytes, MIB(t[i].end_mib));
		assert_int_equal(w.residual_bytes, MIB(t[i].residual_mib));
		assert_int_equal(w.residual_settled, t[i].settled);
		assert_int_equal(w.points_inside, t[i].inside);
	}
	assert_int_equal(memtrace_window(NULL, 0, 1, 1, &(struct gen_window){ 0 }), -EINVAL);
	assert_int_equal(memtrace_window(mt, 0, 1, 1, NULL), -EINVAL);
	free(mt);
}

/* ComfyUI frees the sampler's working set when the sampler node returns, before SaveImage and the end stamp, and
 * takes the next prompt at once: its checkpoint load may be the first measurement after the end (a loaded
 * machine, the /ws wake late). The residual is the level after the release, not the next prompt's climb; and
 * with the trace beginning after the start (the daemon idle without timers when the prompt came), the same. */
static void test_released_before_the_end_stamp(void **state)
{
	static const struct pt p[] = {
		{ 1000, 18 },                            /* idle */
		{ 1100, 82 }, { 1300, 318 },             /* checkpoint a loaded */
		{ 1800, 418 }, { 2300, 518 },            /* the sampler's working set */
		{ 2390, 454 }, { 2395, 390 }, { 2396, 318 }, /* released in steps, then measured, before the end */
		{ 2420, 382 }, { 2500, 446 }, { 2700, 618 }, /* after the end: checkpoint b loading */
	};
	struct memtrace *mt = trace_of(p, ARRAY_SIZE(p));
	struct memtrace *late = trace_of(p + 1, ARRAY_SIZE(p) - 1);
	struct gen_window w;

	(void)state;
	assert_int_equal(memtrace_window(mt, MS(1050), MS(2400), MS(2700), &w), 0);
	assert_int_equal(w.usage_start_bytes, MIB(18));
	assert_int_equal(w.peak_bytes, MIB(518));
	assert_int_equal(w.usage_end_bytes, MIB(318));
	assert_int_equal(w.residual_bytes, MIB(318));
	assert_true(w.residual_settled);
	assert_false(w.start_unmeasured);
	/* a release after the end stamp (the end level is the peak) settles after it, as before */
	assert_int_equal(memtrace_window(mt, MS(1050), MS(2300), MS(2420), &w), 0);
	assert_int_equal(w.usage_end_bytes, MIB(518));
	assert_int_equal(w.residual_bytes, MIB(318));
	assert_int_equal(memtrace_window(late, MS(1050), MS(2400), MS(2700), &w), -ENODATA);
	assert_true(w.start_unmeasured);
	assert_int_equal(w.usage_start_bytes, MIB(82));
	assert_int_equal(w.peak_bytes, MIB(518));
	assert_int_equal(w.residual_bytes, MIB(318));
	free(mt);
	free(late);
}

static void test_ring(void **state)
{
	struct memtrace *mt = calloc(1, sizeof(*mt));
	struct gen_window w;

	(void)state;
	assert_non_null(mt);
	assert_int_equal(memtrace_count(mt), 0);
	assert_int_equal(memtrace_oldest_ns(mt), 0);
	for (uint64_t i = 0; i < MEMTRACE_SIZE + 10; i++)
		memtrace_add(mt, MS(i + 1), MIB(i));
	assert_int_equal(memtrace_count(mt), MEMTRACE_SIZE);
	assert_int_equal(memtrace_oldest_ns(mt), MS(11));
	/* the overwritten stretch is gone */
	assert_int_equal(memtrace_window(mt, MS(5), MS(20), MS(30), &w), -ENODATA);
	assert_int_equal(memtrace_window(mt, MS(11), MS(20), MS(20), &w), 0);
	assert_int_equal(w.usage_start_bytes, MIB(10));
	assert_int_equal(w.peak_bytes, MIB(19));
	/* older than everything held in a full ring: dropped */
	memtrace_add(mt, MS(1), MIB(7));
	assert_int_equal(memtrace_count(mt), MEMTRACE_SIZE);
	assert_int_equal(memtrace_oldest_ns(mt), MS(11));
	/* a late RSS event goes where it belongs, and the oldest point makes room */
	memtrace_add(mt, MS(100) + 500, MIB(9999));
	assert_int_equal(memtrace_oldest_ns(mt), MS(12));
	assert_int_equal(memtrace_window(mt, MS(100), MS(101), MS(101), &w), 0);
	assert_int_equal(w.usage_start_bytes, MIB(99));
	assert_int_equal(w.peak_bytes, MIB(9999));
	assert_int_equal(w.usage_end_bytes, MIB(100));
	assert_int_equal(memtrace_window(mt, MS(MEMTRACE_SIZE + 10), MS(MEMTRACE_SIZE + 10), MS(MEMTRACE_SIZE + 10), &w),
			 0);
	assert_int_equal(w.usage_end_bytes, MIB(MEMTRACE_SIZE + 9));
	memtrace_reset(mt);
	assert_int_equal(memtrace_count(mt), 0);
	free(mt);
}

static void test_wall_to_mono(void **state)
{
	const uint64_t real = 1764511200000ULL * NSEC_PER_MSEC, mono = 5000ULL * NSEC_PER_SEC;
	static const struct {
		int64_t wall_ms;
		int r;
		int64_t mono_delta_ms; /* from mono */
	} t[] = {
		{ 1764511200000LL, 0, 0 },
		{ 1764511199800LL, 0, -200 },
		{ 1764511200000LL - 4999000LL, 0, -4999000 },
		{ 1764511200500LL, 0, 0 },      /* within skew: clamped to now */
		{ 1764511203000LL, -ERANGE, 0 }, /* beyond skew */
		{ 1764511200000LL - 5000000LL, -ERANGE, 0 }, /* before the monotonic clock's zero */
		{ 0, -ERANGE, 0 },
		{ -5, -ERANGE, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		uint64_t m = 1;
		int r = boundary_wall_ms_to_mono(t[i].wall_ms, real, mono, 1000, &m);

		if (r != t[i].r)
			fail_msg("row %zu: %d, expected %d", i, r, t[i].r);
		if (!r)
			assert_int_equal((int64_t)m, (int64_t)mono + t[i].mono_delta_ms * (int64_t)NSEC_PER_MSEC);
		else
			assert_int_equal(m, 0);
	}
	assert_int_equal(boundary_wall_ms_to_mono(1, real, mono, 0, NULL), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ten_short_generations),
		cmocka_unit_test(test_window_edges),
		cmocka_unit_test(test_released_before_the_end_stamp),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_wall_to_mono),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
/* Generations measured between ComfyUI's own stamps over a trace of measurements: a 0.2 s generation between
 * two 500 ms polls keeps its own start, peak and residual. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* A late RSS step event placed at its own time. The trace before it: 666 MiB at 1000 ms (the sampler's peak), 900 MiB
 * at 1010 ms (after the event's time: not a bound). Figures of the fall rows are the 6.1 guest's (MiB). */
static void test_event_level(void **state)
{
	static const struct pt before[] = { { 1000, 666 }, { 1010, 900 } };
	static const struct {
		const char *what;
		bool trace;
		unsigned ts_ms, usage, rss_now, rss_event;
		int r;
		unsigned level;
	} t[] = {
		{ "grew since: less the growth", true, 1005, 700, 673, 641, 0, 668 },
		{ "unchanged", true, 1005, 650, 641, 641, 0, 650 },
		{ "grew more than the usage holds", true, 1005, 10, 100, 20, -ERANGE, 0 },
		{ "fell, pages already freed: added back", true, 1005, 469, 477, 641, 0, 633 },
		/* the usage was read mid-munmap (639 still charged), RSS after it (477): 803 counts 162 MiB twice */
		{ "fell, read during the release", true, 1005, 639, 477, 641, 0, 666 },
		{ "fell, nothing before it: the usage now", false, 1005, 639, 477, 641, 0, 639 },
		{ "fell, usage now above the point before", true, 1005, 700, 600, 641, 0, 700 },
		{ "fell, before the first point", true, 999, 639, 477, 641, 0, 639 },
		{ "fell, a later point is no bound", true, 1010, 639, 477, 641, 0, 803 },
	};
	struct memtrace *mt = trace_of(before, ARRAY_SIZE(before));

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(t); i++) {
		uint64_t level = 1;
		int r = memtrace_event_level(t[i].trace ? mt : NULL, MS(t[i].ts_ms), MIB(t[i].usage), MIB(t[i].rss_now),
					     MIB(t[i].rss_event), &level);

		if (r != t[i].r || level != MIB(t[i].level))
			fail_msg("row %zu (%s): %d, %" PRIu64 " bytes; expected %d, %u MiB", i, t[i].what, r, level,
				 t[i].r, t[i].level);
	}
	assert_int_equal(memtrace_event_level(mt, 0, 0, 0, 0, NULL), -EINVAL);
	free(mt);
}

/* The 6.1 guest's first generation (MiB, ms): a peak of 666 measured (RSS 673), then the sampler's 200 MiB unmapped
 * at 1767, just before the end stamp at 1770; its six step events (RSS 641 down to 481, all stamped 1767) read from
 * 1772 on, the first while the cgroup still held the pages (639) and RSS already said 477. The window's peak stays
 * the measured one (not 803) and its end shows the release. */
static void test_release_read_late(void **state)
{
	static const struct { unsigned ms, usage, rss_event; } ev[] = {
		{ 1772, 639, 641 }, { 1774, 469, 609 }, { 1775, 469, 577 },
		{ 1777, 469, 545 }, { 1778, 469, 513 }, { 1779, 469, 481 },
	};
	static const struct pt climb[] = { { 0, 17 }, { 1500, 500 }, { 1734, 666 } };
	struct memtrace *mt = trace_of(climb, ARRAY_SIZE(climb));
	struct gen_window w;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(ev); i++) {
		uint64_t level;

		/* the measurement taken for the event, then the event at its own time */
		memtrace_add(mt, MS(ev[i].ms), MIB(ev[i].usage));
		assert_int_equal(memtrace_event_level(mt, MS(1767), MIB(ev[i].usage), MIB(477), MIB(ev[i].rss_event),
						      &level), 0);
		assert_true(level <= MIB(666));
		memtrace_add(mt, MS(1767), level);
	}
	assert_int_equal(memtrace_window(mt, MS(10), MS(1770), MS(1800), &w), 0);
	assert_int_equal(w.peak_bytes, MIB(666));
	assert_int_equal(w.usage_end_bytes, MIB(469 - 477 + 481));
	assert_true(w.residual_settled);
	assert_int_equal(w.residual_bytes, MIB(469));
	free(mt);
}

/* The CI failure of test_pace's polling run, in figures: a 0.2 s generation whose sampler working set (126 MiB over
 * 117) is released 0.3 ms into the millisecond its end stamp truncates to, and the next prompt starting in that same
 * millisecond. Read as whole-ms instants, the release lay after the end and after the next start: the residual was
 * the peak. Each stamp stands for its whole millisecond. */
static void test_stamps_are_whole_milliseconds(void **state)
{
	const uint64_t real = 1796116461000ULL * NSEC_PER_MSEC, mono = 69392000ULL * NSEC_PER_MSEC;
	const int64_t start_ms = 1796116460700LL, end_ms = 1796116460912LL; /* 300 and 88 ms before now */
	const uint64_t t0 = mono - MS(300), release = mono - MS(88) + 300000, next_climb = mono - MS(40);
	struct memtrace *mt = calloc(1, sizeof(*mt));
	uint64_t s, e, naive_end;
	struct gen_window w;

	(void)state;
	assert_non_null(mt);
	memtrace_add(mt, t0 - MS(5), MIB(117));
	memtrace_add(mt, t0 + MS(60), MIB(181));
	memtrace_add(mt, t0 + MS(120), MIB(243));
	memtrace_add(mt, release, MIB(117));
	memtrace_add(mt, next_climb, MIB(181));
	assert_int_equal(boundary_stamps_to_mono(start_ms, end_ms, real, mono, 2000, &s, &e), 0);
	assert_int_equal(s, t0);
	assert_int_equal(e, mono - MS(88) + MS(1) - 1);
	/* the next prompt started in the end's millisecond: its start stamp is the same instant */
	assert_int_equal(boundary_wall_ms_to_mono(end_ms, real, mono, 2000, &naive_end), 0);
	assert_int_equal(memtrace_window(mt, s, naive_end, naive_end, &w), 0);
	assert_int_equal(w.residual_bytes, MIB(243)); /* what CI saw */
	assert_int_equal(memtrace_window(mt, s, e, naive_end, &w), 0);
	assert_int_equal(w.peak_bytes, MIB(243));
	assert_true(w.residual_settled);
	assert_int_equal(w.residual_bytes, MIB(117));
	/* an end clamps to now; stamps out of order or out of range are refused */
	assert_int_equal(boundary_stamps_to_mono(start_ms, 1796116461000LL, real, mono, 2000, &s, &e), 0);
	assert_int_equal(e, mono);
	assert_int_equal(boundary_stamps_to_mono(end_ms, start_ms, real, mono, 2000, &s, &e), -ERANGE);
	assert_int_equal(boundary_stamps_to_mono(start_ms, 1796116465000LL, real, mono, 2000, &s, &e), -ERANGE);
	assert_int_equal(s, 0);
	assert_int_equal(e, 0);
	assert_int_equal(boundary_stamps_to_mono(start_ms, end_ms, real, mono, 2000, NULL, &e), -EINVAL);
	free(mt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ten_short_generations),
		cmocka_unit_test(test_window_edges),
		cmocka_unit_test(test_released_before_the_end_stamp),
		cmocka_unit_test(test_ring),
		cmocka_unit_test(test_wall_to_mono),
		cmocka_unit_test(test_event_level),
		cmocka_unit_test(test_release_read_late),
		cmocka_unit_test(test_stamps_are_whole_milliseconds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

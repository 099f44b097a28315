// SPDX-License-Identifier: GPL-2.0
/* Generation boundaries from ComfyUI's own stamps over a trace of memory measurements; see boundary.h. */
#include <errno.h>
#include <string.h>

#include "boundary.h"
#include "common.h"

void memtrace_reset(struct memtrace *mt)
{
	if (mt)
		memset(mt, 0, sizeof(*mt));
}

/* i-th oldest point */
static const struct memtrace_point *at(const struct memtrace *mt, size_t i)
{
	size_t n = MIN(mt->n, (size_t)MEMTRACE_SIZE);

	return &mt->pts[(mt->head % MEMTRACE_SIZE + MEMTRACE_SIZE - n + i) % MEMTRACE_SIZE];
}

size_t memtrace_count(const struct memtrace *mt)
{
	return mt ? MIN(mt->n, (size_t)MEMTRACE_SIZE) : 0;
}

uint64_t memtrace_oldest_ns(const struct memtrace *mt)
{
	return memtrace_count(mt) ? at(mt, 0)->ts_ns : 0;
}

static struct memtrace_point *at_mut(struct memtrace *mt, size_t i)
{
	return (struct memtrace_point *)at(mt, i);
}

void memtrace_add(struct memtrace *mt, uint64_t ts_ns, uint64_t bytes)
{
	size_t n, i;

	if (!mt)
		return;
	n = memtrace_count(mt);
	if (n == MEMTRACE_SIZE && ts_ns < at(mt, 0)->ts_ns)
		return;
	mt->pts[mt->head % MEMTRACE_SIZE] = (struct memtrace_point){ ts_ns, bytes };
	mt->head = (mt->head % MEMTRACE_SIZE + 1) % MEMTRACE_SIZE;
	if (n < MEMTRACE_SIZE)
		n++;
	mt->n = n;
	/* late points are rare and a few places late: bubble the new one back */
	for (i = n - 1; i > 0 && at(mt, i - 1)->ts_ns > ts_ns; i--) {
		struct memtrace_point tmp = *at(mt, i - 1);
		*at_mut(mt, i - 1) = *at(mt, i);
		*at_mut(mt, i) = tmp;
	}
}

/* Index of the last point with ts <= t, or -1. */
static long last_at_or_before(const struct memtrace *mt, uint64_t t)
{
	long lo = 0, hi = (long)memtrace_count(mt); /* answer in [lo-1, hi-1] */

	while (lo < hi) {
		long mid = lo + (hi - lo) / 2;
		if (at(mt, (size_t)mid)->ts_ns <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo - 1;
}

int memtrace_event_level(const struct memtrace *mt, uint64_t ts_ns, uint64_t usage_now_bytes, uint64_t rss_now_bytes,
			 uint64_t rss_event_bytes, uint64_t *ret)
{
	uint64_t level, bound = usage_now_bytes;
	long i;

	if (!ret)
		return -EINVAL;
	*ret = 0;
	if (rss_now_bytes >= rss_event_bytes) {
		if (usage_now_bytes < rss_now_bytes - rss_event_bytes)
			return -ERANGE;
		*ret = usage_now_bytes - (rss_now_bytes - rss_event_bytes);
		return 0;
	}
	level = usage_now_bytes + (rss_event_bytes - rss_now_bytes);
	i = mt ? last_at_or_before(mt, ts_ns) : -1;
	if (i >= 0)
		bound = MAX(bound, at(mt, (size_t)i)->bytes);
	*ret = MIN(level, bound);
	return 0;
}

int memtrace_window(const struct memtrace *mt, uint64_t start_ns, uint64_t end_ns, uint64_t settle_ns,
		    struct gen_window *ret)
{
	struct gen_window w = { 0 };
	long i0, i1, n;
	int r = 0;

	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!mt || end_ns < start_ns)
		return -EINVAL;
	n = (long)memtrace_count(mt);
	i0 = last_at_or_before(mt, start_ns);
	if (i0 < 0) {
		/* the trace begins inside the window (the daemon was idle, without timers, when the prompt began):
		 * what it holds from its first point still measures the peak, the end and what was left */
		if (!n || at(mt, 0)->ts_ns > end_ns)
			return -ENODATA;
		i0 = 0;
		w.start_unmeasured = true;
		r = -ENODATA;
	}
	i1 = last_at_or_before(mt, end_ns);
	w.usage_start_bytes = at(mt, (size_t)i0)->bytes;
	/* RSS step events report a drop in steps: the last one before the start may be half-way down from the
	 * previous generation's release, and the first measurement inside the window shows where it ended; a climb
	 * of this generation only makes that one higher */
	if (i0 + 1 <= i1 && !w.start_unmeasured)
		w.usage_start_bytes = MIN(w.usage_start_bytes, at(mt, (size_t)i0 + 1)->bytes);
	w.peak_bytes = w.usage_start_bytes;
	for (long i = i0 + 1; i <= i1; i++) {
		w.peak_bytes = MAX(w.peak_bytes, at(mt, (size_t)i)->bytes);
		w.points_inside++;
	}
	w.usage_end_bytes = at(mt, (size_t)i1)->bytes;
	w.residual_bytes = w.usage_end_bytes;
	/* ComfyUI frees a node's intermediates when the node returns: the sampler's working set is gone before the
	 * end stamp, and the next prompt may climb before any measurement after it. An end level measured inside
	 * the window and below its peak is already past that release; one at the peak (or the start level) is not */
	if (i1 > i0 && w.usage_end_bytes < w.peak_bytes)
		w.residual_settled = true;
	for (long i = i1 + 1; i < n && at(mt, (size_t)i)->ts_ns <= settle_ns; i++) {
		uint64_t b = at(mt, (size_t)i)->bytes;
		if (!w.residual_settled || b < w.residual_bytes)
			w.residual_bytes = b;
		w.residual_settled = true;
	}
	*ret = w;
	return r;
}

int boundary_wall_ms_to_mono(int64_t wall_ms, uint64_t real_now_ns, uint64_t mono_now_ns, uint64_t skew_ms,
			     uint64_t *ret_mono_ns)
{
	uint64_t wall_ns, ago_ns;

	if (!ret_mono_ns)
		return -EINVAL;
	*ret_mono_ns = 0;
	if (wall_ms <= 0 || (uint64_t)wall_ms > UINT64_MAX / NSEC_PER_MSEC)
		return -ERANGE;
	wall_ns = (uint64_t)wall_ms * NSEC_PER_MSEC;
	if (wall_ns > real_now_ns) {
		if (wall_ns - real_now_ns > skew_ms * NSEC_PER_MSEC)
			return -ERANGE;
		*ret_mono_ns = mono_now_ns;
		return 0;
	}
	ago_ns = real_now_ns - wall_ns;
	if (ago_ns >= mono_now_ns)
		return -ERANGE;
	*ret_mono_ns = mono_now_ns - ago_ns;
	return 0;
}

int boundary_stamps_to_mono(int64_t start_ms, int64_t end_ms, uint64_t real_now_ns, uint64_t mono_now_ns,
			    uint64_t skew_ms, uint64_t *ret_start_ns, uint64_t *ret_end_ns)
{
	int r;

	if (!ret_start_ns || !ret_end_ns)
		return -EINVAL;
	*ret_start_ns = *ret_end_ns = 0;
	if (end_ms < start_ms)
		return -ERANGE;
	r = boundary_wall_ms_to_mono(start_ms, real_now_ns, mono_now_ns, skew_ms, ret_start_ns);
	if (r == 0)
		r = boundary_wall_ms_to_mono(end_ms, real_now_ns, mono_now_ns, skew_ms, ret_end_ns);
	if (r < 0) {
		*ret_start_ns = *ret_end_ns = 0;
		return r;
	}
	*ret_end_ns = MIN(*ret_end_ns + NSEC_PER_MSEC - 1, mono_now_ns); /* the conversion never passes now */
	return 0;
}

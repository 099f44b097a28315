// SPDX-License-Identifier: GPL-2.0
#include "rsstep.h"

uint64_t rss_step_for_headroom(uint64_t usage_bytes, uint64_t limit_bytes, uint64_t base_bytes)
{
	uint64_t floor = base_bytes < RSS_STEP_MIN_BYTES ? base_bytes : RSS_STEP_MIN_BYTES;
	uint64_t want, step;

	if (!limit_bytes)
		return base_bytes;
	/* at or past the limit the finest step: the kernel is about to act and every MiB counts */
	if (usage_bytes >= limit_bytes)
		return floor;
	want = (limit_bytes - usage_bytes) / RSS_STEP_HEADROOM_DIVISOR;
	if (want >= base_bytes)
		return base_bytes;
	if (want <= floor)
		return floor;
	step = 1ULL << (63 - __builtin_clzll(want));
	return step < floor ? floor : step;
}

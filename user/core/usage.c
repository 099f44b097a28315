// SPDX-License-Identifier: GPL-2.0
#include <string.h>
#include "common.h"
#include "usage.h"

void usage_levels_measured(struct usage_levels *u, uint64_t usage_bytes)
{
	if (!u->poll_min_valid || usage_bytes < u->poll_min_bytes) {
		u->poll_min_bytes = usage_bytes;
		u->poll_min_valid = true;
	}
	if (usage_bytes >= u->run_peak_bytes) {
		u->run_peak_bytes = usage_bytes;
		u->run_dip_bytes = usage_bytes;
	} else if (usage_bytes < u->run_dip_bytes) {
		u->run_dip_bytes = usage_bytes;
	}
}

void usage_levels_polled(struct usage_levels *u, uint64_t usage_bytes)
{
	u->poll_min_bytes = usage_bytes;
	u->poll_min_valid = true;
}

void usage_levels_invalidate(struct usage_levels *u)
{
	u->poll_min_valid = false;
}

uint64_t usage_levels_start_bytes(const struct usage_levels *u, uint64_t usage_bytes, bool was_running)
{
	if (!was_running && u->poll_min_valid && u->poll_min_bytes < usage_bytes)
		return u->poll_min_bytes;
	return usage_bytes;
}

void usage_levels_prompt_started(struct usage_levels *u, uint64_t usage_bytes)
{
	u->run_peak_bytes = usage_bytes;
	u->run_dip_bytes = usage_bytes;
}

uint64_t usage_levels_residual_bytes(const struct usage_levels *u, uint64_t usage_bytes)
{
	return MIN(u->run_dip_bytes, usage_bytes);
}

enum queue_change queue_running_change(const char *before, const char *now)
{
	bool had = before && before[0], has = now && now[0];

	if (!had)
		return has ? QUEUE_STARTED : QUEUE_SAME;
	if (!has)
		return QUEUE_ENDED;
	return strcmp(before, now) ? QUEUE_NEXT : QUEUE_SAME;
}

double reclaim_rate_next(double prev_rate, uint64_t prev_count, uint64_t count, uint64_t dt_ns)
{
	double inst;

	if (!dt_ns)
		return prev_rate;
	inst = (double)(count > prev_count ? count - prev_count : 0) / ((double)dt_ns / NSEC_PER_SEC);
	return 0.5 * prev_rate + 0.5 * inst;
}

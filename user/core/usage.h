/* SPDX-License-Identifier: GPL-2.0 */
/* What an instance's memory did between two polls of /queue, as generation boundaries need it, and how fast the
 * kernel reclaims in its cgroup. Pure: the caller measures and polls; these only keep levels and averages.
 *
 * ComfyUI starts the next prompt the moment one ends, before any poll can see the boundary, so:
 * - a prompt first seen at a poll began at the lowest level since the previous poll when the queue was idle
 *   before (a first prompt loads its model before the poll that sees it);
 * - a prompt's residual is the dip between its peak and the next climb, tracked on every measurement. */
#ifndef OOMSENTRY_USAGE_H
#define OOMSENTRY_USAGE_H

#include <stdbool.h>
#include <stdint.h>

struct usage_levels {
	uint64_t poll_min_bytes; /* lowest usage since the previous poll */
	bool poll_min_valid;     /* false until measured on the present basis (server, cgroup) */
	uint64_t run_peak_bytes; /* highest usage while the current prompt runs */
	uint64_t run_dip_bytes;  /* lowest usage since that peak */
};

/* Every measurement (timer sample, RSS step, poll). */
void usage_levels_measured(struct usage_levels *u, uint64_t usage_bytes);
/* At a poll, after its measurement: the next poll's window starts at usage_bytes. */
void usage_levels_polled(struct usage_levels *u, uint64_t usage_bytes);
/* Levels measured until now are on another basis (another server process or cgroup): forget the poll minimum. */
void usage_levels_invalidate(struct usage_levels *u);
/* Where a prompt first seen at this poll began: the poll minimum when nothing ran before and it is lower than
 * usage_bytes, else usage_bytes. */
uint64_t usage_levels_start_bytes(const struct usage_levels *u, uint64_t usage_bytes, bool was_running);
/* A prompt started at usage_bytes: its peak and dip start there. */
void usage_levels_prompt_started(struct usage_levels *u, uint64_t usage_bytes);
/* What the prompt that just ended left behind: the dip since its peak, or usage_bytes when that is lower. */
uint64_t usage_levels_residual_bytes(const struct usage_levels *u, uint64_t usage_bytes);

/* The running slot of /queue between two polls. */
enum queue_change {
	QUEUE_SAME = 0,    /* the same prompt runs, or still none */
	QUEUE_STARTED,     /* none ran, one runs */
	QUEUE_ENDED,       /* one ran, none runs */
	QUEUE_NEXT,        /* one ended and another runs */
};

/* before and now are prompt ids, "" (or NULL) for an empty slot. */
enum queue_change queue_running_change(const char *before, const char *now);
static inline bool queue_change_ended(enum queue_change c) { return c == QUEUE_ENDED || c == QUEUE_NEXT; }
static inline bool queue_change_started(enum queue_change c) { return c == QUEUE_STARTED || c == QUEUE_NEXT; }

/* Reclaim events per second, a decaying average (half the previous rate, half the rate over the last interval) so
 * that one burst does not count as sustained pressure. count is the cgroup's cumulative count (a smaller value
 * than prev_count counts as no events); dt_ns 0 returns prev_rate. */
double reclaim_rate_next(double prev_rate, uint64_t prev_count, uint64_t count, uint64_t dt_ns);

#endif

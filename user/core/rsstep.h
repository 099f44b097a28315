/* SPDX-License-Identifier: GPL-2.0 */
/* How finely the kernel reports a process's RSS: the step, per tracked process, after which the rss_stat probe
 * sends an event. Far from the limit a coarse step keeps events (and the daemon's wake-ups) rare; near it the policy
 * needs to see a fast climb in fine steps to time the last resort. Pure: the caller measures and sets the step. */
#ifndef OOMSENTRY_RSSTEP_H
#define OOMSENTRY_RSSTEP_H

#include <stdint.h>

/* The finest step: below it the kernel's own counters lag (per-CPU batches of up to 128 KiB on each CPU since 6.2,
 * per-task caches of 64 page updates before) and the events would cost more daemon work than they tell. */
#define RSS_STEP_MIN_BYTES (4ULL << 20)
/* The step is this fraction of the headroom: eight events at the least between here and the limit at any pace. */
#define RSS_STEP_HEADROOM_DIVISOR 8

/* The step for a process of a cgroup at usage_bytes under limit_bytes (0: no limit): the largest power of two not
 * above headroom / RSS_STEP_HEADROOM_DIVISOR, no coarser than base_bytes (the configured rss_step) and no finer than
 * RSS_STEP_MIN_BYTES (nor than base_bytes, when that is finer). Powers of two so that the step changes (and the
 * kernel's map is written) only when the headroom halves or doubles, not on every event. */
uint64_t rss_step_for_headroom(uint64_t usage_bytes, uint64_t limit_bytes, uint64_t base_bytes);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* What one ComfyUI instance has shown about itself, learnt from every action and generation and kept across
 * restarts of the server and of the daemon: what /free really gives back and how long it takes, what /free
 * cannot release and how fast that grows, what a generation costs from a clean start, how long a restart takes
 * to give memory back, what loading each model costs (lookahead.c's la_costs, kept here so that it is persisted
 * with the rest). From it, each rung's time to effect on this instance now (policy_input.tte_ns).
 *
 * Pure: no I/O, no clock, no logging. The daemon persists learn_format()'s text under its state directory and
 * reads it back with learn_parse(). Sizes in bytes, times in ms unless the name says otherwise. */
#ifndef OOMSENTRY_LEARN_H
#define OOMSENTRY_LEARN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "lookahead.h"
#include "policy.h"

#define LEARN_FORMAT_VERSION 1

/* A running average that starts as a plain mean and settles into an exponential one (weight 1/4 for a new value
 * from the fourth on): early values count fully, and a changed workload shows within a few samples. */
struct learn_avg {
	double value;
	uint32_t n; /* values seen (saturating); 0 = unknown */
};

struct learn_stats {
	struct learn_avg free_released_bytes; /* what a /free gave back (at the moment it took effect) */
	struct learn_avg free_apply_ms;       /* from when ComfyUI could apply the flags to memory released */
	struct learn_avg unreleasable_per_gen_bytes; /* growth of the floor /free leaves, per generation */
	struct learn_avg clean_cost_bytes;    /* peak - start of a generation that (re)loads its models */
	struct learn_avg gen_duration_ms;     /* a generation's wall time */
	struct learn_avg gen_duration_max_ms; /* the longest recent one: the max, decaying by 10 % a generation */
	struct learn_avg interrupt_ms;        /* /interrupt sent to the prompt leaving the running slot */
	struct learn_avg restart_stop_ms;     /* stop sent to the memory released */
	/* SIGKILL sent to every process of the server's tree (their growth stops there; process_mrelease reaps after):
	 * what the last resort at the brink needs, a ms or so where a SIGTERM stop takes what the server's handler
	 * takes */
	struct learn_avg kill_stop_ms;
	struct learn_avg restart_back_ms;     /* stop sent to the server answering again */
	struct learn_avg restart_floor_bytes; /* usage of a fresh server before its first generation */
	struct la_costs models; /* per-model load costs, learnt by lookahead.c */
};

void learn_init(struct learn_stats *l);
/* Adds v (finite, >= 0; other values are ignored). */
void learn_avg_add(struct learn_avg *a, double v);

/* A /free took effect: released_bytes came back, apply_ms after ComfyUI could first apply it. */
void learn_note_free(struct learn_stats *l, uint64_t released_bytes, uint64_t apply_ms);
/* Two floors after /free, gens generations apart: the unreleasable growth per generation (>= 0). */
void learn_note_floors(struct learn_stats *l, uint64_t prev_floor_bytes, uint64_t floor_bytes, uint64_t gens);
/* A completed generation: its duration, and its cost from a clean start when it (re)loaded its models. */
void learn_note_generation(struct learn_stats *l, uint64_t duration_ms, bool clean_start, uint64_t excess_bytes);
void learn_note_interrupt(struct learn_stats *l, uint64_t ms);
/* A restart: stop to memory released, stop to the server answering (0 = not known), usage of the fresh server. */
void learn_note_restart(struct learn_stats *l, uint64_t stop_ms, uint64_t back_ms, uint64_t floor_bytes);

/* A SIGKILL's stop: the time to kill the server's whole tree. */
void learn_note_kill(struct learn_stats *l, uint64_t ms);
/* What a SIGKILL at the brink needs on this instance: the learnt kill_stop_ms (1 ms at least); 0 when never
 * measured. */
uint64_t learn_kill_tte_ns(const struct learn_stats *l);

/* The lag from an event in the kernel (its timestamp) to the daemon handling it: a maximum that forgets by half
 * every LEARN_LAG_HALF_LIFE_NS, so that a spike under load counts for the minutes such load lasts and a quiet
 * machine's margin comes back down. A property of the machine and the daemon, not of an instance: not persisted. */
#define LEARN_LAG_HALF_LIFE_NS (60ULL * 1000000000ULL)
struct learn_lag {
	double max_ns;
	uint64_t at_ns; /* when max_ns was last updated */
	uint64_t n;
};
/* One event handled lag_ns after the kernel stamped it, at now_ns (CLOCK_MONOTONIC); lags beyond 10 s are a
 * clock oddity or a stopped daemon, not the lag of a look, and are ignored. */
void learn_lag_add(struct learn_lag *l, uint64_t lag_ns, uint64_t now_ns);
/* The decayed maximum at now_ns; 0 when nothing was measured. */
uint64_t learn_lag_get(const struct learn_lag *l, uint64_t now_ns);

/* The instance now, for the time to effect. */
struct learn_now {
	bool busy;
	uint64_t running_elapsed_ms; /* since the running prompt started */
	bool progress_known;         /* e.g. from /ws progress events */
	double progress;             /* 0..1 of the running prompt */
	uint64_t orphan_grace_ms;    /* SIGTERM to SIGKILL for orphans */
	uint64_t stop_grace_ms;      /* SIGTERM to SIGKILL for a controlled stop; 0 = not known */
};

/* Each rung's time to effect in ns (index enum policy_rung), for policy_input.tte_ns: 0 where nothing is
 * learnt (the policy's defaults apply), POLICY_TTE_UNKNOWN for a /free while busy when neither progress nor
 * earlier durations say when the running prompt ends.
 *   /free      idle: the learnt apply time; busy: the running prompt's remaining time (from progress, else the
 *              learnt duration * 1.5 - elapsed: durations vary) + the apply time
 *   interrupt  the learnt interrupt latency (until the next node boundary) + the apply time
 *   restart    the learnt stop-to-release time, else the stop grace + 1 s
 *   reap       the orphan grace + 1 s */
void learn_time_to_effect(const struct learn_stats *l, const struct learn_now *now,
			  uint64_t ret_tte_ns[POLICY_RUNG_COUNT]);

/* When the running prompt is expected to end (policy_input.running_ends_in_ns): from its progress, else the
 * longest recent duration minus the time it has run; 0 when not known (idle, nothing learnt, or running longer
 * than any recent prompt: from then on only its growth counts). */
uint64_t learn_running_ends_in_ns(const struct learn_stats *l, const struct learn_now *now);

/* With an unreleasable leak: generations a fresh server can run before the next one no longer fits, from the
 * learnt fresh-server floor, the unreleasable growth per generation and the clean-start cost (an adaptive
 * restart_every_generations). -1 when not known or no leak (no bound), 0 when not even one fits. */
int64_t learn_generations_per_restart(const struct learn_stats *l, uint64_t limit_bytes, double margin);

/* Text form, one "key value count" per line after a "oomsentry-learn VERSION" header; model load costs as
 * "model BYTES SAMPLES LAST_USED NAME" (names with control characters are left out). Returns the length written (NUL-terminated), -EINVAL on NULL, -ENOBUFS when
 * buf is too small. */
int learn_format(const struct learn_stats *l, char *buf, size_t size);
/* Parses learn_format()'s text into *ret (initialised first). Unknown keys and malformed lines are skipped (a
 * newer or damaged file still yields what it can); -EINVAL on NULL or a missing/other-version header. */
int learn_parse(const char *text, struct learn_stats *ret);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* Spots a server that keeps dying: threshold deaths within a window make one crash_loop record naming the causes.
 * Pure (the caller passes the clock). */
#ifndef OOMSENTRY_CRASHLOOP_H
#define OOMSENTRY_CRASHLOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "death.h"

#define CRASHLOOP_DEFAULT_WINDOW_NS (60ULL * 1000000000ULL)
#define CRASHLOOP_DEFAULT_THRESHOLD 3
#define CRASHLOOP_MAX_DEATHS 32 /* deaths kept per loop for the record; also the largest threshold */
#define CRASHLOOP_MAX_GROUPS 8  /* distinct causes named in the summary; the rest are "other causes" */
#define CRASHLOOP_SUMMARY_LEN 384

struct crashloop_group {
	struct death_cause cause; /* core_dumped ignored for grouping */
	uint32_t count;
};

/* Per-instance detector. Treat as opaque; set it up with crashloop_init(). */
struct crashloop {
	uint64_t window_ns;
	uint32_t threshold;
	struct death recent[CRASHLOOP_MAX_DEATHS]; /* ring of the latest deaths, oldest at head */
	size_t head;
	size_t n;
	bool looping;
	uint64_t loop_start_ns; /* first death of the current loop */
	uint64_t last_death_ns;
	uint64_t last_emit_ns;
	uint32_t loop_deaths;
	struct crashloop_group groups[CRASHLOOP_MAX_GROUPS];
	size_t ngroups;
	uint32_t other_count;
};

/* What to put in the one crash_loop record. */
struct crashloop_record {
	uint32_t deaths_total; /* deaths since the loop began; may exceed ndeaths */
	uint64_t first_death_ns;
	uint64_t last_death_ns;
	size_t ndeaths;                             /* the latest deaths of the loop, oldest first */
	struct death deaths[CRASHLOOP_MAX_DEATHS];  /* cause and memory before each */
	char summary[CRASHLOOP_SUMMARY_LEN]; /* "restarted 5 times in 14 s: OOM killer ×3, exit code 0 after an OOM kill of a child ×2" */
};

/* window_ns 0 / threshold 0 mean the defaults (60 s, 3). 0, or -EINVAL (NULL, threshold 1 or above
 * CRASHLOOP_MAX_DEATHS). */
int crashloop_init(struct crashloop *cl, uint64_t window_ns, uint32_t threshold);

/* Records a death at now_ns (monotonic; an earlier value than the previous death is taken as equal to it). When
 * threshold deaths fall within window_ns (inclusive), returns 1 and fills *ret_record (may be NULL): emit one
 * crash_loop record. While the loop goes on it returns 1 again only once a window has passed since the last record,
 * with the updated count; a window without deaths ends the loop. An EXITED 0 death with child_oom_killed_recently is
 * recorded as DEATH_EXIT0_AFTER_CHILD_OOM; DEATH_UNKNOWN deaths count too. Returns 0 when nothing is to be emitted,
 * -EINVAL on NULL, a kind outside enum death_kind or a corrupt detector (nothing recorded then). */
int crashloop_record_death(struct crashloop *cl, uint64_t now_ns, const struct death *d,
			   struct crashloop_record *ret_record);

/* True while a loop is going on: one was reported and the last death is at most a window old. */
bool crashloop_active(const struct crashloop *cl, uint64_t now_ns);

/* The daemon's own stops are no crash, but a server that climbs to the limit while it runs nothing (memory that grows
 * in the server itself: a custom node's background thread, a cache) is stopped again and again. Each stop is needed
 * (the kernel would act first), none cures it, and the restarts alone say nothing of why: threshold stops in a row
 * of a server idle since its start (no prompt run between them) make one record naming the leak, written again each
 * time their count doubles (a slow leak restarts rarely, a fast one every second: bounded either way). */
struct idleloop {
	uint32_t threshold;
	uint32_t stops;       /* idle stops in a row */
	uint32_t next_report; /* the count of stops at which the next record is due */
	uint64_t first_ns;    /* the first of them */
	uint64_t last_ns;
	double growth_sum; /* the growth at each stop, bytes/s */
};

struct idleloop_record {
	uint32_t stops;
	uint64_t first_ns;
	uint64_t last_ns;
	double every_s;            /* mean time between the stops */
	double growth_bytes_per_s; /* mean growth at the stops */
	char summary[CRASHLOOP_SUMMARY_LEN];
};

/* threshold 0 means CRASHLOOP_DEFAULT_THRESHOLD. 0, or -EINVAL (NULL, threshold 1 or above CRASHLOOP_MAX_DEATHS). */
int idleloop_init(struct idleloop *il, uint32_t threshold);

/* A stop of the server by the daemon at now_ns (monotonic; earlier than the previous stop counts as equal to it).
 * idle: nothing ran or was queued when it was stopped, and the server ran no prompt since its start; any other stop
 * ends the row. growth_bytes_per_s: the growth that brought the stop (NaN or < 0 counts as 0). Returns 1 and fills
 * *ret (may be NULL) when a record is due, 0 when not, -EINVAL on NULL or a corrupt detector. */
int idleloop_note_stop(struct idleloop *il, uint64_t now_ns, bool idle, double growth_bytes_per_s,
		       struct idleloop_record *ret);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* When the kernel drops exec/fork/exit events (ring buffer full), the process table no longer matches the
 * machine: processes started meanwhile are not tracked, those that ended still look alive. This decides, from
 * the kernel's running count of such drops, when to rescan /proc (at once, then at most once per
 * DROPSYNC_MIN_INTERVAL_NS while drops go on, and once more after the last drop) and when a burst of drops
 * begins (journaled once) and ends. */
#ifndef OOMSENTRY_DROPSYNC_H
#define OOMSENTRY_DROPSYNC_H

#include <stdbool.h>
#include <stdint.h>

/* a flood of forks drops events for as long as it lasts: a full /proc rescan each time would add to the load */
#define DROPSYNC_MIN_INTERVAL_NS 1000000000ULL
/* drops this far apart belong to one burst (one record) */
#define DROPSYNC_QUIET_NS 10000000000ULL

struct dropsync {
	bool primed;             /* the first count read is the baseline, not drops */
	uint64_t seen;           /* drops accounted for */
	bool pending;            /* drops since the last resync */
	uint64_t last_resync_ns; /* 0: never */
	uint64_t last_drop_ns;   /* when drops were last seen (0: not in a burst) */
	uint64_t burst_drops;    /* drops of the current burst */
	unsigned burst_resyncs;
};

enum {
	DROPSYNC_RESYNC = 1,    /* rescan /proc now */
	DROPSYNC_BURST = 2,     /* a burst begins: journal it (with what this resync finds) */
	DROPSYNC_BURST_END = 4, /* the burst is over (burst_drops, burst_resyncs hold its totals until the next step) */
};

/* total: the kernel's count of lifecycle drops since the probes loaded. Returns DROPSYNC_* flags. */
unsigned dropsync_step(struct dropsync *s, uint64_t total, uint64_t now_ns);
/* When the caller must call dropsync_step again even if nothing wakes it: a resync held back by the interval,
 * or the end of a burst. UINT64_MAX when nothing is owed. */
uint64_t dropsync_due_ns(const struct dropsync *s);

#endif

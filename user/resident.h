/* SPDX-License-Identifier: GPL-2.0 */
/* What of the daemon stays in memory: all of what it uses, locked, and nothing that only its start needed. */
#ifndef OOMSENTRY_RESIDENT_H
#define OOMSENTRY_RESIDENT_H

#include <stdint.h>

struct resident_trim_stats {
	uint64_t dropped_kib;   /* startup's pages of read-only file mappings given back */
	uint64_t mappings;      /* mappings they were in */
	uint64_t own_text_kib;  /* the daemon's own binary, locked whole */
	int failures;           /* mappings the kernel refused to munlock/madvise/mlock (the first error in err) */
	int err;
};

/* Locks every page the daemon touches from now on, as it touches it (MCL_ONFAULT: nothing is populated in
 * advance). Returns 0 or a negative errno (the daemon then runs unlocked). */
int resident_lock(void);

/* Once the daemon has started: returns freed heap to the kernel, drops the pages that startup faulted into
 * read-only file mappings (libraries; the pages stay in the page cache, the loop's come back on their first use
 * and are locked again), and locks the daemon's own code whole, so that the hot path never waits for a page.
 * Returns 0 or a negative errno when /proc/self/smaps cannot be read (nothing dropped). */
int resident_trim(struct resident_trim_stats *ret);

#endif

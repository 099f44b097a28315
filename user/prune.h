/* SPDX-License-Identifier: GPL-2.0 */
/* Keeps the incident directory within a count and size budget. A crash loop writes a report per death: unpruned,
 * it fills a 256 MiB emptyDir and the kubelet evicts the very pod it was meant to explain. The oldest go first; the
 * newest report always stays, whatever its size. */
#ifndef OOMSENTRY_PRUNE_H
#define OOMSENTRY_PRUNE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct prune_item {
	uint64_t mtime_ns;
	uint64_t bytes;
};

/* Pure: marks in ret_remove[] which items to delete so that at most max_count remain and their bytes sum to at
 * most max_bytes (0: no size limit), oldest first, never the newest. Returns how many are marked. */
size_t prune_select(const struct prune_item *items, size_t n, uint64_t max_count, uint64_t max_bytes,
		    bool *ret_remove);

/* Applies prune_select to the incident reports in dir (directories named like "20261130T140000Z-NAME-TRIGGER"
 * that hold an incident.json; nothing else there is touched), removes the marked ones and fsyncs dir. Returns the
 * number removed or a negative errno. */
int prune_incidents(const char *dir, uint64_t max_count, uint64_t max_bytes);

#endif

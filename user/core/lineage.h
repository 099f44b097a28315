/* SPDX-License-Identifier: GPL-2.0 */
/* The lineage a daemon persists for `oomsentry scan` and its own next start: who the instance's server was (its
 * home: uid, exe, cwd, cgroup) and which processes were forked from it. Without it, the children of a server that
 * dies while no daemon runs cannot be proven to be its children. Pure: text in, text out; the file is scan.c's. */
#ifndef OOMSENTRY_LINEAGE_H
#define OOMSENTRY_LINEAGE_H

#include <stddef.h>
#include <stdint.h>
#include "orphans.h"

#define LINEAGE_MAX_ENTRIES 4096 /* more than any ComfyUI tree; a longer file is cut there, not trusted further */
#define LINEAGE_TEXT_MAX (1 << 20)

/* One process forked from a server of the instance. */
struct lineage_entry {
	int32_t pid;
	uint64_t start_ns;
	int32_t server_pid;
	uint64_t server_start_ns;
};

struct lineage {
	struct orphan_home home; /* home.known false: no server was ever located */
	struct lineage_entry entries[LINEAGE_MAX_ENTRIES];
	size_t n;
};

/* Writes l as text into a malloc'd NUL-terminated buffer (*ret, caller frees). Strings are %XX-escaped so that a
 * path with a newline cannot forge an entry. 0, -EINVAL (NULL), -ENOMEM. */
int lineage_format(const struct lineage *l, char **ret);
/* Parses what lineage_format wrote. Unknown lines are skipped (a newer writer), a malformed one fails the whole
 * file: a half-understood lineage must not prove anything. 0, or -EINVAL / -EBADMSG with *ret zeroed. */
int lineage_parse(const char *text, size_t len, struct lineage *ret);
/* The entry for (pid, start_ns), or NULL. */
const struct lineage_entry *lineage_find(const struct lineage *l, int32_t pid, uint64_t start_ns);

#endif

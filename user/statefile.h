/* SPDX-License-Identifier: GPL-2.0 */
/* Files under the state directory that must survive a crash whole or not at all: written to a temporary file,
 * fsync'd, renamed over the old one, and the directory fsync'd, so a crash at any point leaves the old content or
 * the new, never half of either. Read back only when root owns them and nobody else can write them. */
#ifndef OOMSENTRY_STATEFILE_H
#define OOMSENTRY_STATEFILE_H

#include <stddef.h>

/* Writes text as dir/name (dir created 0700 when missing). 0 or negative errno. */
int statefile_write(const char *dir, const char *name, const char *text);
/* Reads dir/name into a malloc'd NUL-terminated buffer of at most max bytes (*ret, *ret_len). -ENOENT when there
 * is none, -EPERM when it is not a regular file owned by us and unwritable by group and others, -EFBIG beyond
 * max, other negative errno. */
int statefile_read(const char *dir, const char *name, size_t max, char **ret, size_t *ret_len);
/* Removes dir/name (and syncs the directory); a missing file is success. */
int statefile_remove(const char *dir, const char *name);

#endif

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
/* The same write done by a worker thread, so that the caller (the event loop) never waits for a disk: queued in
 * order, a queued write of the same file replaced by the newer text. 0 when queued (or, without a worker, written
 * here), negative errno. A failure of a queued write is reported by statefile_async_error(). */
int statefile_write_async(const char *dir, const char *name, const char *text);
/* The last queued write's error since the previous call (negative errno), or 0. */
int statefile_async_error(void);
/* Waits until every queued write is on disk (before exit or re-exec). */
void statefile_flush(void);
/* Removes dir/name (and syncs the directory); a missing file is success. */
int statefile_remove(const char *dir, const char *name);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* Where what an instance has learnt (learn.c) lives between runs: STATE_DIR/learn-NAME-HOST_PORT, written
 * atomically (a temporary file, fsync, rename, fsync of the directory), so that a crash leaves the old file or
 * the new one, never half of either. The URL's host and port are in the name: a different server under the same
 * instance name starts from nothing. */
#ifndef OOMSENTRY_LEARN_STORE_H
#define OOMSENTRY_LEARN_STORE_H

#include <stddef.h>
#include "learn.h"

/* 0, -EINVAL, -ENAMETOOLONG. Characters other than [A-Za-z0-9._-] in the name and URL become '_'. */
int learn_store_path(const char *state_dir, const char *instance, const char *url, char *buf, size_t len);
/* Fills *ret (initialised first). 0; -ENOENT when there is no file yet; -EINVAL when it is not ours or damaged
 * beyond use; other negative errno from reading. */
int learn_store_load(const char *path, struct learn_stats *ret);
/* Creates the directory (0700) when missing. 0 or negative errno. */
int learn_store_save(const char *path, const struct learn_stats *l);
/* The same content, written by statefile's writer thread (the event loop never waits for the disk). */
int learn_store_save_async(const char *path, const struct learn_stats *l);

#endif

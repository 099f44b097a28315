/* SPDX-License-Identifier: GPL-2.0 */
/* The brake's mark under state_dir: while memory.high is held, the daemon keeps on disk which cgroup it holds, at
 * what value, and what was there before. A daemon that dies while braked (SIGKILL, a crash, the OOM killer) would
 * otherwise leave the server throttled for good; the next daemon reads the mark and puts memory.high back, but
 * only in the cgroup the mark names, once that is its instance's cgroup, and only while memory.high still holds
 * the value the brake wrote (anything else was written by someone else since, and is theirs). Pure: JSON text in
 * and out; the file is statefile.c's. */
#ifndef OOMSENTRY_BRAKEMARK_H
#define OOMSENTRY_BRAKEMARK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "cgroup.h"
#include "common.h"

#define BRAKE_MARK_VERSION 1
#define BRAKE_MARK_TEXT_MAX 16384u
#define BRAKE_MARK_DIR_MAX 4096

struct brake_mark {
	char cgroup[BRAKE_MARK_DIR_MAX]; /* the cgroup directory whose memory.high is held */
	uint64_t held;                   /* the value the brake wrote */
	uint64_t saved;                  /* memory.high before the brake; CG_UNLIMITED ("max") for none */
	int32_t pid;                     /* the daemon that wrote it */
};

/* 0, -EINVAL (NULL, an empty or too long cgroup, held of 0 or "max"), -ENOMEM. *ret malloc'd. */
int brake_mark_to_json(const struct brake_mark *m, char **ret);
/* 0, -EBADMSG (not a mark of this version, a field missing or of the wrong type or range), -ENOMEM.
 * *ret is zeroed first and filled only on success. */
int brake_mark_parse(const char *text, size_t len, struct brake_mark *ret);

/* memory.high reads current_high after the brake wrote held: the kernel keeps it in whole pages, so the value
 * written reads back rounded down to one. Anything else was written by someone else since. */
bool brake_high_held(uint64_t current_high, uint64_t held);

enum brake_leftover {
	BRAKE_LEFT_RESTORE,   /* this cgroup, still at the brake's value: write the saved value back */
	BRAKE_LEFT_CHANGED,   /* this cgroup, but memory.high was changed since: leave it, drop the mark */
	BRAKE_LEFT_ELSEWHERE, /* another cgroup than the instance's: touch nothing, keep the mark */
};

/* What a daemon does with a mark it finds, its instance's cgroup being dir with memory.high at current_high
 * (CG_UNLIMITED for "max"). */
enum brake_leftover brake_mark_leftover(const struct brake_mark *m, const char *dir, uint64_t current_high);

#endif

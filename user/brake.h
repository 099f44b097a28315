/* SPDX-License-Identifier: GPL-2.0 */
/* The memory.high brake (cgroup v2 only): while a gentle rung works against a near limit, allocation above
 * memory.high is throttled (the kernel reclaims and makes the allocating task sleep) instead of reaching
 * memory.max, where the OOM killer waits. The value is policy_brake_high_bytes(); this file only reads and writes
 * the knob. */
#ifndef OOMSENTRY_BRAKE_H
#define OOMSENTRY_BRAKE_H

#include <stdbool.h>
#include <stdint.h>
#include "cgroup.h"

/* memory.high exists in dir (cgroup v2) and this process may write it. Never true on v1. */
bool brake_available(const char *dir, enum cg_version version);
/* Reads memory.high: bytes, or CG_UNLIMITED for "max". 0 or negative errno (-ENOENT on v1). */
int brake_read_high(const char *dir, uint64_t *ret);
/* Writes memory.high: bytes, or "max" for CG_UNLIMITED. 0 or negative errno. */
int brake_write_high(const char *dir, uint64_t bytes);

#endif

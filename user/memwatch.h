/* SPDX-License-Identifier: GPL-2.0 */
/* The kernel tells when a cgroup v1 memory cgroup's usage crosses a line (cgroup.event_control with
 * memory.usage_in_bytes, an eventfd per line): an idle daemon needs no timer to see a cgroup fill by what RSS
 * steps do not show (page cache, tmpfs, processes outside the server's tree). cgroup v2 has no such notification;
 * there the reclaim probe (at the limit) is the backstop. */
#ifndef OOMSENTRY_MEMWATCH_H
#define OOMSENTRY_MEMWATCH_H

#include <stdint.h>

/* An eventfd (non-blocking, close-on-exec) that becomes readable each time the usage of the v1 memory cgroup
 * cgroup_dir crosses threshold_bytes, up or down. Closing it ends the notification. Returns the fd or a negative
 * errno. */
int memwatch_v1_arm(const char *cgroup_dir, uint64_t threshold_bytes);

/* Reads what the eventfd counted (how many crossings since the last read); 0 when none. */
uint64_t memwatch_drain(int efd);

#endif

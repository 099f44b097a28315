/* SPDX-License-Identifier: GPL-2.0 */
/* Finding an instance's ComfyUI server (pid file, port, cmdline pattern) and its memory cgroup, and measuring the
 * memory it uses. */
#ifndef OOMSENTRY_LOCATE_H
#define OOMSENTRY_LOCATE_H

#include <stdint.h>

struct instance;

/* Finds the server (pid file, port, cmdline pattern) unless the known one still is it. */
void instance_locate_server(struct instance *in, uint64_t now_ns);
/* Usage and limit now (cgroup working set, or the server tree's RSS against MemTotal). */
/* Measures the instance's memory: 0 from its cgroup, 1 from its process tree (no cgroup, or the cgroup could not be
 * read: said once in the journal, and again when it reads again), negative errno when not even MemTotal is known. */
int instance_measure(struct instance *in);

#endif

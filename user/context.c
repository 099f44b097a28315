// SPDX-License-Identifier: GPL-2.0
#include <time.h>
#include "common.h"
#include "context.h"
#include "probes.h"
#include "proctree.h"

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t now_mono_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

uint64_t mono_to_real_ns(uint64_t mono_ns)
{
	uint64_t mono = now_mono_ns();

	return clock_ns(CLOCK_REALTIME) - (mono > mono_ns ? mono - mono_ns : 0);
}

uint64_t now_boot_ns(void)
{
	return clock_ns(CLOCK_BOOTTIME);
}

void daemon_watch_cgroup(struct daemon *d, uint64_t cgroup_id)
{
	if (d->probes && cgroup_id)
		probes_watch_cgroup(d->probes, cgroup_id);
}

struct proc *daemon_track(struct daemon *d, int pid, uint32_t flags)
{
	struct proc *p = proctree_add(d->pt, pid, flags);

	if (p && d->probes)
		probes_track(d->probes, (uint32_t)pid, flags);
	if (p)
		daemon_watch_cgroup(d, p->cgroup_id);
	return p;
}

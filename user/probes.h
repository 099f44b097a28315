/* SPDX-License-Identifier: GPL-2.0 */
/* Loads and attaches bpf/oomsentry.bpf.c, owns its ring buffer and filter maps. A probe that cannot attach is
 * reported and skipped; when nothing can load at all the caller falls back to /proc + cgroup polling. */
#ifndef OOMSENTRY_PROBES_H
#define OOMSENTRY_PROBES_H

#include <stdbool.h>
#include <stdint.h>
#include "oomsentry/events.h"

struct probes;

struct probes_config {
	uint64_t rss_step_bytes;
	uint64_t mmap_min_bytes;
	uint64_t reclaim_interval_ns;
	const char (*comm_prefixes)[16];
	int n_comm_prefixes;
	const uint64_t *filter_cgroup_ids; /* configured scope cgroups (memory cgroup ids) */
	int n_filter_cgroups;
	bool memcg_events; /* attach tp_btf/count_memcg_events (costs on every page fault of every process) */
	uint64_t ring_bytes; /* 0: the object's own size */
	int verbose;
};

/* Called for every event from the ring buffer; return 0 to continue. */
typedef int (*probes_event_fn)(void *ctx, const struct os_event *e);

/* Returns 0 and a probe set with at least the core programs attached, or negative errno (-EPERM without
 * privileges, -ENOENT/-EINVAL when the object cannot load); errors are logged. */
int probes_start(const struct probes_config *pc, probes_event_fn fn, void *ctx, struct probes **ret);
void probes_stop(struct probes *p);
int probes_epoll_fd(const struct probes *p);
/* Drains the ring buffer; returns the number of events consumed or negative errno. */
int probes_consume(struct probes *p);
int probes_track(struct probes *p, uint32_t pid, uint32_t flags);
int probes_untrack(struct probes *p, uint32_t pid);
/* The RSS step after which the kernel reports this tracked process (0: the configured rss_step again); -ENOENT when
 * the kernel does not track pid. Cheap enough per event, but callers set it when it changes (core/rsstep.h). */
int probes_set_rss_step(struct probes *p, uint32_t pid, uint64_t step_bytes);
/* Attach (on) or detach the rss_stat probe, which runs on every page fault of every process (core/rssarm.h says
 * when it is wanted). 0, or negative errno with the probe left as it was; 0 when this kernel has no such probe. */
int probes_rss_attach(struct probes *p, bool on);
bool probes_rss_attached(const struct probes *p);
int probes_watch_cgroup(struct probes *p, uint64_t cgroup_id);
int probes_read_stats(const struct probes *p, uint64_t ret_stats[OS_STAT_MAX]);
/* One counter of the stats map summed over the CPUs (one syscall: cheap enough for every loop iteration). */
int probes_read_stat(const struct probes *p, enum os_stat which, uint64_t *ret);
/* Every tgid the kernel side tracks (its own view: exec/fork/exit update it even when their events are dropped),
 * possibly some twice. Returns how many are in *ret (malloc'd, caller frees) or negative errno. */
int probes_list_tracked(const struct probes *p, uint32_t **ret);
/* Human summary such as "9 of 10 probes attached (missing: mmap: tracefs unavailable)". */
const char *probes_summary(const struct probes *p);
/* The two numbers of that summary: programs attached, and programs this kernel and configuration ask for. */
void probes_count(const struct probes *p, int *ret_attached, int *ret_total);

#endif

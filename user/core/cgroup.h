/* SPDX-License-Identifier: GPL-2.0 */
/* Which memory cgroup a process lives in and how close that cgroup is to its limit, for cgroup v1 and v2: the
 * kernel's OOM killer acts on the cgroup's limit, so usage against that limit is what we forecast.
 * Parsers are pure functions over a file's text; the readers (cgroup-read.h) take the cgroup directory so tests
 * can use fixtures.
 *
 * Return contract: >= 0 on success, negative errno on failure:
 *   -EINVAL   bad argument;  -EPROTO malformed text;  -ERANGE a number does not fit
 *   -ENOENT   the cgroup (or process) is gone: a normal race
 *   -ENODATA  the process has no memory cgroup we can see (no memory controller mounted)
 *   -EXDEV    the process's cgroup lies outside our cgroup namespace or mount
 *   -ENAMETOOLONG  the caller's buffer cannot hold the path (never silently truncated: a cut path is another cgroup)
 * All sizes are bytes; CG_UNLIMITED stands for "no limit". */
#ifndef OOMSENTRY_CGROUP_H
#define OOMSENTRY_CGROUP_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "procfs.h"

enum cg_version { CG_V1 = 1, CG_V2 = 2 };

#define CG_UNLIMITED UINT64_MAX
/* v1 reports "no limit" as PAGE_COUNTER_MAX * PAGE_SIZE (9223372036854771712 with 4 KiB pages). Anything at or
 * above the value for 64 KiB pages is treated as unlimited, so every page size maps to CG_UNLIMITED. */
#define CG_V1_UNLIMITED_MIN ((uint64_t)(INT64_MAX / 65536) * 65536)
/* cg_find_dir_by_id() does not descend deeper than this below the mount. */
#define CG_FIND_MAX_DEPTH 32

struct cg_mounts {
	bool has_v1_memory;
	bool has_v2;
	bool v2_has_memory;             /* "memory" in the v2 mount's cgroup.controllers (set by cg_mounts_detect) */
	char v1_memory[PATH_MAX];       /* mount point of the v1 memory controller, "" when none */
	char v1_memory_root[PATH_MAX];  /* which part of the hierarchy is mounted there: "/" or e.g. "/docker/ID" */
	char v2[PATH_MAX];              /* cgroup2 mount point, "" when none */
	char v2_root[PATH_MAX];
};

/* From /proc/self/mountinfo text; fills mount points and roots, leaves v2_has_memory false. A mount of the whole
 * hierarchy (root "/") is preferred over a bind mount of a subtree. Returns 0 even when nothing was found. */
int cg_parse_mountinfo(const char *text, struct cg_mounts *ret);
/* True when the cgroup.controllers text lists controller (space separated). */
bool cg_controllers_contain(const char *text, const char *controller);
/* The hierarchy that holds the memory controller: v1 when it is mounted, else v2. */
enum cg_version cg_mounts_memory_version(const struct cg_mounts *m);
/* Its mount point ("" when there is none). */
const char *cg_mounts_memory_root(const struct cg_mounts *m);

/* From /proc/PID/cgroup text ("ID:controllers:path" lines): the v1 line whose controllers include "memory" when
 * mounts has a v1 memory mount, else the v2 line "0::path" when v2 has the memory controller. ret_rel_path gets
 * the path relative to the hierarchy root ("/" or "/system.slice/x.service"). -ENODATA when neither applies,
 * -ENOENT when the cgroup is marked " (deleted)". */
int cg_parse_proc_cgroup(const char *text, const struct cg_mounts *mounts, char *ret_rel_path, size_t len,
			 enum cg_version *ret_version);
/* Joins the mount point of version's hierarchy with rel (from cg_parse_proc_cgroup), stripping the mount's root
 * for bind mounts of a subtree. -EXDEV when rel is not below what is mounted (other cgroup namespace, "/.."). */
int cg_join_dir(const struct cg_mounts *mounts, enum cg_version version, const char *rel, char *ret, size_t len);

struct cg_memory {
	enum cg_version version;
	uint64_t usage_bytes;           /* v1 memory.usage_in_bytes, v2 memory.current (page cache included) */
	uint64_t limit_bytes;           /* this cgroup's own hard limit (v1 limit_in_bytes, v2 memory.max) */
	uint64_t effective_limit_bytes; /* tightest hard limit of the cgroup and its ancestors: what is enforced */
	uint64_t high_bytes;            /* v2 memory.high (throttling starts); CG_UNLIMITED when none or on v1 */
	uint64_t peak_bytes;            /* v1 max_usage_in_bytes, v2 memory.peak (5.19+) */
	uint64_t swap_bytes;            /* v1 total_swap (needs swap accounting), v2 memory.swap.current */

	/* memory.stat; hierarchical (v1: total_* when present, else the cgroup's own values) */
	uint64_t anon_bytes;            /* v1 rss, v2 anon */
	uint64_t file_bytes;            /* page cache, shmem included: v1 cache, v2 file */
	uint64_t shmem_bytes;
	uint64_t mapped_file_bytes;     /* v1 mapped_file, v2 file_mapped */
	uint64_t kernel_bytes;          /* v2 kernel (5.18+); 0 on v1 */
	uint64_t slab_bytes;            /* v2 slab; 0 on v1 */
	uint64_t inactive_file_bytes;   /* reclaimable first: usage minus this is the working set */
	uint64_t active_file_bytes;
	uint64_t pgfault;               /* counts, not bytes */
	uint64_t pgmajfault;
	uint64_t pgscan;                /* v2 pages scanned by reclaim (kswapd + direct + khugepaged) */
	uint64_t pgsteal;               /* v2 pages reclaimed */
	uint64_t pgscan_direct;         /* v2 reclaim done by the allocating tasks themselves: they stall */
	uint64_t pgsteal_direct;

	/* events */
	uint64_t failcnt;               /* v1 memory.failcnt: times usage hit the limit */
	uint64_t oom_kill;              /* tasks killed by the OOM killer: v1 oom_control (this cgroup only, not
					 * its children), v2 memory.events (whole subtree) */
	uint64_t oom_events;            /* v2 "oom": the limit was hit and reclaim could not make room */
	uint64_t oom_group_kill;        /* v2 (5.17+) */
	uint64_t events_low;            /* v2 memory.events low/high/max */
	uint64_t events_high;
	uint64_t events_max;
	bool under_oom;                 /* v1: tasks are stuck waiting for the OOM (oom_kill_disable) */
	bool oom_kill_disable;          /* v1 */
	struct psi psi;                 /* memory.pressure */

	bool has_peak;
	bool has_high;
	bool has_swap;
	bool has_stat;                  /* memory.stat parsed */
	bool has_reclaim;               /* pgscan/pgsteal valid */
	bool has_events;                /* v2 memory.events / v1 oom_control parsed */
	bool has_oom_kill;              /* oom_kill valid (v1 needs 4.13+) */
	bool has_failcnt;
	bool has_psi;
};

/* Single-value files: a number or "max" (CG_UNLIMITED), optional trailing newline. */
int cg_parse_value(const char *text, uint64_t *ret);
/* v1's "no limit" sentinel to CG_UNLIMITED, other values unchanged. */
uint64_t cg_v1_normalize_limit(uint64_t bytes);
/* Fill the memory.stat fields of m (and, for v1, effective_limit_bytes from hierarchical_memory_limit). Unknown
 * keys are skipped (new kernels add them); a known key with a bad value is -EPROTO/-ERANGE; no known key at all
 * is -EPROTO. */
int cg_parse_memory_stat(const char *text, enum cg_version version, struct cg_memory *m);
/* v2 memory.events into m. */
int cg_parse_memory_events(const char *text, struct cg_memory *m);
/* v1 memory.oom_control into m. */
int cg_parse_oom_control(const char *text, struct cg_memory *m);

/* usage - inactive_file, floored at 0: the memory that reclaim cannot easily take back (as kubelet computes it). */
uint64_t cg_memory_working_set(const struct cg_memory *m);

#endif

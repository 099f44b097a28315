/* SPDX-License-Identifier: GPL-2.0 */
/* cgroup readers: find the memory controller's mounts, a process's memory cgroup, and read a cgroup directory's
 * memory files (parsed by core/cgroup.h, whose return contract they share). */
#ifndef OOMSENTRY_CGROUP_READ_H
#define OOMSENTRY_CGROUP_READ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "cgroup.h"

/* Reads mountinfo_path ("/proc/self/mountinfo" when NULL) and <v2>/cgroup.controllers. */
int cg_mounts_detect(const char *mountinfo_path, struct cg_mounts *ret);
/* Absolute directory of the memory cgroup of pid (0: self) as seen through mounts: reads
 * <proc_root>/PID/cgroup (proc_root NULL: "/proc") and joins the mount point with the relative path. */
int cg_pid_memory_dir(const char *proc_root, pid_t pid, const struct cg_mounts *mounts, char *ret_abs_dir,
		      size_t len, enum cg_version *ret_version);
/* Reads the cgroup directory dir. usage (and on v1 the limit) are required: -ENOENT means the cgroup is gone.
 * Every other file is optional: when absent or unreadable its has_* flag stays false. On v2 the effective limit
 * is found by walking up the parent directories while they have a memory.max. */
int cg_read_memory(const char *dir, enum cg_version version, struct cg_memory *ret);
/* st_ino of the cgroup directory: equals the kernfs id that BPF reports (bpf_get_current_cgroup_id, memcg ids). */
int cg_dir_id(const char *dir, uint64_t *ret);
/* Walks mount_root (at most CG_FIND_MAX_DEPTH levels, one filesystem) for the directory whose id is id.
 * -ENOENT when none has it (the cgroup was removed). */
int cg_find_dir_by_id(const char *mount_root, uint64_t id, char *ret, size_t len);

#endif

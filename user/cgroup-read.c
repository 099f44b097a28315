// SPDX-License-Identifier: GPL-2.0
/* cgroup readers: mountinfo, /proc/PID/cgroup and the memory files of a cgroup directory, parsed by core/cgroup.c. */
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include "common.h"
#include "cgroup.h"
#include "cgroup-read.h"
#include "procfs-read.h"

static int copy_str(char *dst, size_t dst_len, const char *src, size_t n)
{
	if (n >= dst_len)
		return -ENAMETOOLONG;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

/* cgroup control files are a few KiB; memory.stat of 6.x is about 1.5 KiB. */
#define CG_TEXT_MAX (64u << 10)
/* Bound for the walk up to find the effective v2 limit. */
#define CG_MAX_ANCESTORS 64

int cg_mounts_detect(const char *mountinfo_path, struct cg_mounts *ret)
{
	_cleanup_free_ char *text = NULL, *ctrl = NULL;
	char path[PATH_MAX];
	int r, n;

	if (!ret)
		return -EINVAL;
	r = procfs_read_text(mountinfo_path ? mountinfo_path : "/proc/self/mountinfo", PROCFS_TEXT_MAX, &text, NULL);
	if (r < 0)
		return r;
	r = cg_parse_mountinfo(text, ret);
	if (r < 0)
		return r;
	if (!ret->has_v2)
		return 0;
	n = snprintf(path, sizeof(path), "%s/cgroup.controllers", ret->v2);
	if (n < 0 || (size_t)n >= sizeof(path))
		return 0;
	/* Unreadable controllers: assume no memory there rather than read files that do not exist. */
	if (procfs_read_text(path, CG_TEXT_MAX, &ctrl, NULL) >= 0)
		ret->v2_has_memory = cg_controllers_contain(ctrl, "memory");
	return 0;
}

int cg_pid_memory_dir(const char *proc_root, pid_t pid, const struct cg_mounts *mounts, char *ret_abs_dir,
		      size_t len, enum cg_version *ret_version)
{
	_cleanup_free_ char *text = NULL;
	char path[PATH_MAX], rel[PATH_MAX];
	enum cg_version v;
	int n, r;

	if (!mounts || !ret_abs_dir || len == 0 || !ret_version || pid < 0)
		return -EINVAL;
	ret_abs_dir[0] = '\0';
	if (!proc_root || !*proc_root)
		proc_root = PROCFS_DEFAULT_ROOT;
	if (pid == 0)
		n = snprintf(path, sizeof(path), "%s/self/cgroup", proc_root);
	else
		n = snprintf(path, sizeof(path), "%s/%d/cgroup", proc_root, (int)pid);
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	r = procfs_read_text(path, CG_TEXT_MAX, &text, NULL);
	if (r < 0)
		return r;
	r = cg_parse_proc_cgroup(text, mounts, rel, sizeof(rel), &v);
	if (r < 0)
		return r;
	r = cg_join_dir(mounts, v, rel, ret_abs_dir, len);
	if (r < 0)
		return r;
	*ret_version = v;
	return 0;
}

/* ---------------------------------------------------------------- readers */

static int read_dir_text(const char *dir, const char *file, char **ret)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/%s", dir, file);

	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	return procfs_read_text(path, CG_TEXT_MAX, ret, NULL);
}

static int read_dir_value(const char *dir, const char *file, uint64_t *ret)
{
	_cleanup_free_ char *text = NULL;
	int r = read_dir_text(dir, file, &text);

	if (r < 0)
		return r;
	return cg_parse_value(text, ret);
}

/* Optional files: any failure leaves the has_ flag false; only the caller's required files decide success. */
static bool read_optional(const char *dir, const char *file, int (*parse)(const char *, struct cg_memory *),
			  struct cg_memory *m)
{
	_cleanup_free_ char *text = NULL;
	struct cg_memory tmp = *m;

	if (read_dir_text(dir, file, &text) < 0 || parse(text, &tmp) < 0)
		return false;
	*m = tmp;
	return true;
}

static int parse_stat_v1_cb(const char *text, struct cg_memory *m)
{
	return cg_parse_memory_stat(text, CG_V1, m);
}

static int parse_stat_v2_cb(const char *text, struct cg_memory *m)
{
	return cg_parse_memory_stat(text, CG_V2, m);
}

static void read_psi(const char *dir, struct cg_memory *m)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof(path), "%s/memory.pressure", dir);

	m->has_psi = n > 0 && (size_t)n < sizeof(path) && procfs_read_psi(path, &m->psi) >= 0;
	if (!m->has_psi)
		memset(&m->psi, 0, sizeof(m->psi));
}

static int read_v1(const char *dir, struct cg_memory *m)
{
	uint64_t v;
	int r;

	r = read_dir_value(dir, "memory.usage_in_bytes", &m->usage_bytes);
	if (r < 0)
		return r;
	r = read_dir_value(dir, "memory.limit_in_bytes", &v);
	if (r < 0)
		return r;
	m->limit_bytes = cg_v1_normalize_limit(v);
	m->effective_limit_bytes = m->limit_bytes;
	m->has_peak = read_dir_value(dir, "memory.max_usage_in_bytes", &m->peak_bytes) >= 0;
	m->has_failcnt = read_dir_value(dir, "memory.failcnt", &m->failcnt) >= 0;
	read_optional(dir, "memory.oom_control", cg_parse_oom_control, m);
	read_optional(dir, "memory.stat", parse_stat_v1_cb, m);
	/* hierarchical_memory_limit already folds in every ancestor; never let it loosen our own limit. */
	m->effective_limit_bytes = MIN(m->effective_limit_bytes, m->limit_bytes);
	/* Only kernels with cgroup1 PSI support have it. */
	read_psi(dir, m);
	return 0;
}

static uint64_t v2_ancestor_limit(const char *dir, uint64_t limit)
{
	char path[PATH_MAX];
	size_t n = strlen(dir);

	if (n >= sizeof(path))
		return limit;
	memcpy(path, dir, n + 1);
	for (int depth = 0; depth < CG_MAX_ANCESTORS; depth++) {
		char *slash;
		uint64_t v;

		while (n > 1 && path[n - 1] == '/')
			path[--n] = '\0';
		slash = strrchr(path, '/');
		if (!slash || slash == path)
			break;
		*slash = '\0';
		n = (size_t)(slash - path);
		/* The root cgroup has no memory.max: the walk ends at the top of the hierarchy. */
		if (read_dir_value(path, "memory.max", &v) < 0)
			break;
		limit = MIN(limit, v);
	}
	return limit;
}

static int read_v2(const char *dir, struct cg_memory *m)
{
	int r;

	r = read_dir_value(dir, "memory.current", &m->usage_bytes);
	if (r < 0)
		return r;
	if (read_dir_value(dir, "memory.max", &m->limit_bytes) < 0)
		m->limit_bytes = CG_UNLIMITED;
	m->effective_limit_bytes = v2_ancestor_limit(dir, m->limit_bytes);
	m->has_high = read_dir_value(dir, "memory.high", &m->high_bytes) >= 0;
	if (!m->has_high)
		m->high_bytes = CG_UNLIMITED;
	m->has_peak = read_dir_value(dir, "memory.peak", &m->peak_bytes) >= 0;
	m->has_swap = read_dir_value(dir, "memory.swap.current", &m->swap_bytes) >= 0;
	if (!m->has_swap)
		m->swap_bytes = 0;
	read_optional(dir, "memory.events", cg_parse_memory_events, m);
	read_optional(dir, "memory.stat", parse_stat_v2_cb, m);
	read_psi(dir, m);
	return 0;
}

int cg_read_memory(const char *dir, enum cg_version version, struct cg_memory *ret)
{
	struct cg_memory m = {0};
	int r;

	if (!dir || !*dir || !ret || (version != CG_V1 && version != CG_V2))
		return -EINVAL;
	m.version = version;
	m.high_bytes = CG_UNLIMITED;
	r = version == CG_V1 ? read_v1(dir, &m) : read_v2(dir, &m);
	if (r < 0)
		return r;
	if (!m.has_peak)
		m.peak_bytes = 0;
	if (!m.has_failcnt)
		m.failcnt = 0;
	*ret = m;
	return 0;
}

/* ---------------------------------------------------------------- ids */

int cg_dir_id(const char *dir, uint64_t *ret)
{
	struct stat sb;

	if (!dir || !ret)
		return -EINVAL;
	if (stat(dir, &sb) < 0)
		return -errno;
	if (!S_ISDIR(sb.st_mode))
		return -ENOTDIR;
	*ret = (uint64_t)sb.st_ino;
	return 0;
}

/* nftw has no user pointer; the walk is synchronous, so per-thread state is enough. */
static _Thread_local struct {
	uint64_t id;
	char *ret;
	size_t len;
	int result;
} find_ctx;

static int find_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	if (type != FTW_D)
		return FTW_CONTINUE;
	if ((uint64_t)sb->st_ino == find_ctx.id) {
		find_ctx.result = copy_str(find_ctx.ret, find_ctx.len, path, strlen(path));
		return FTW_STOP;
	}
	if (ftw->level >= CG_FIND_MAX_DEPTH)
		return FTW_SKIP_SUBTREE;
	return FTW_CONTINUE;
}

int cg_find_dir_by_id(const char *mount_root, uint64_t id, char *ret, size_t len)
{
	int r;

	if (!mount_root || !*mount_root || !ret || len == 0)
		return -EINVAL;
	ret[0] = '\0';
	find_ctx.id = id;
	find_ctx.ret = ret;
	find_ctx.len = len;
	find_ctx.result = -ENOENT;
	r = nftw(mount_root, find_cb, 16, FTW_PHYS | FTW_MOUNT | FTW_ACTIONRETVAL);
	if (r < 0 && find_ctx.result == -ENOENT)
		return -errno;
	if (find_ctx.result < 0)
		ret[0] = '\0';
	return find_ctx.result;
}

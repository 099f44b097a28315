// SPDX-License-Identifier: GPL-2.0
/* cgroup text parsers and path rules: pure (cgroup-read.c reads the files). */
#include <ftw.h>
#include <string.h>
#include <sys/stat.h>
#include "common.h"
#include "cgroup.h"

/* Is word (len n) one of the sep-separated items of list (len m)? */
static bool list_contains(const char *list, size_t m, char sep, const char *word)
{
	size_t n = strlen(word);
	const char *p = list, *end = list + m;

	while (p < end) {
		const char *q = memchr(p, sep, (size_t)(end - p));
		size_t k = q ? (size_t)(q - p) : (size_t)(end - p);

		if (k == n && memcmp(p, word, n) == 0)
			return true;
		if (!q)
			break;
		p = q + 1;
	}
	return false;
}

static int copy_str(char *dst, size_t dst_len, const char *src, size_t n)
{
	if (n >= dst_len)
		return -ENAMETOOLONG;
	memcpy(dst, src, n);
	dst[n] = '\0';
	return 0;
}

/* ---------------------------------------------------------------- mounts */

/* mountinfo escapes space, tab, newline and backslash as \ooo. Returns false for a field we cannot hold. */
static bool unescape_field(const char *s, size_t n, char *out, size_t out_len)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (c == '\\' && i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
		    s[i + 3] >= '0' && s[i + 3] <= '7') {
			c = (char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
			i += 3;
		}
		if (c == '\0' || o + 1 >= out_len)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

#define MI_MAX_TOKENS 64

struct mi_candidate {
	char point[PATH_MAX];
	char root[PATH_MAX];
};

static void take_candidate(bool *has, char *point, char *root, const struct mi_candidate *c)
{
	/* First mount wins, but a mount of the whole hierarchy beats an earlier bind mount of a subtree. */
	if (*has && !(strcmp(root, "/") != 0 && strcmp(c->root, "/") == 0))
		return;
	strcpy(point, c->point);
	strcpy(root, c->root);
	*has = true;
}

int cg_parse_mountinfo(const char *text, struct cg_mounts *ret)
{
	const char *pos = text, *line;
	struct mi_candidate c;
	size_t len;

	if (!text || !ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	while (procfs_next_line(&pos, &line, &len)) {
		const char *tok[MI_MAX_TOKENS];
		size_t tlen[MI_MAX_TOKENS], ntok = 0, sep = 0;
		const char *p = line, *end = line + len;
		bool v1;

		while (p < end && ntok < MI_MAX_TOKENS) {
			while (p < end && *p == ' ')
				p++;
			if (p == end)
				break;
			tok[ntok] = p;
			while (p < end && *p != ' ')
				p++;
			tlen[ntok] = (size_t)(p - tok[ntok]);
			ntok++;
		}
		/* id parent maj:min root mountpoint options [optional...] - fstype source superoptions */
		for (size_t i = 6; i < ntok; i++)
			if (tlen[i] == 1 && tok[i][0] == '-') {
				sep = i;
				break;
			}
		if (!sep || ntok < sep + 4)
			continue;
		if (tlen[sep + 1] == 6 && memcmp(tok[sep + 1], "cgroup", 6) == 0)
			v1 = true;
		else if (tlen[sep + 1] == 7 && memcmp(tok[sep + 1], "cgroup2", 7) == 0)
			v1 = false;
		else
			continue;
		if (v1 && !list_contains(tok[sep + 3], tlen[sep + 3], ',', "memory"))
			continue;
		if (!unescape_field(tok[3], tlen[3], c.root, sizeof(c.root)) ||
		    !unescape_field(tok[4], tlen[4], c.point, sizeof(c.point)) || c.point[0] != '/' || c.root[0] != '/')
			continue;
		if (v1)
			take_candidate(&ret->has_v1_memory, ret->v1_memory, ret->v1_memory_root, &c);
		else
			take_candidate(&ret->has_v2, ret->v2, ret->v2_root, &c);
	}
	return 0;
}

bool cg_controllers_contain(const char *text, const char *controller)
{
	const char *pos = text, *line;
	size_t len;

	if (!text || !controller || !*controller)
		return false;
	while (procfs_next_line(&pos, &line, &len)) {
		/* list_contains on ' ' handles runs of spaces as empty items, which never match a name. */
		if (list_contains(line, len, ' ', controller))
			return true;
	}
	return false;
}

/* ---------------------------------------------------------------- which cgroup */

int cg_parse_proc_cgroup(const char *text, const struct cg_mounts *mounts, char *ret_rel_path, size_t len,
			 enum cg_version *ret_version)
{
	static const char deleted[] = " (deleted)";
	const char *pos = text, *line, *v1_path = NULL, *v2_path = NULL, *path;
	size_t llen, v1_len = 0, v2_len = 0, plen;
	enum cg_version version;

	if (!text || !mounts || !ret_rel_path || len == 0 || !ret_version)
		return -EINVAL;
	ret_rel_path[0] = '\0';
	while (procfs_next_line(&pos, &line, &llen)) {
		const char *c1, *c2, *end = line + llen;

		c1 = memchr(line, ':', llen);
		if (!c1 || c1 == line)
			continue;
		c2 = memchr(c1 + 1, ':', (size_t)(end - c1 - 1));
		if (!c2)
			continue;
		for (const char *d = line; d < c1; d++)
			if (*d < '0' || *d > '9')
				goto next;
		if (c2 == c1 + 1) {
			/* The v2 line is "0::path". */
			if (c1 - line == 1 && line[0] == '0' && !v2_path) {
				v2_path = c2 + 1;
				v2_len = (size_t)(end - c2 - 1);
			}
		} else if (!v1_path && list_contains(c1 + 1, (size_t)(c2 - c1 - 1), ',', "memory")) {
			v1_path = c2 + 1;
			v1_len = (size_t)(end - c2 - 1);
		}
next:;
	}
	if (v1_path && mounts->has_v1_memory) {
		path = v1_path;
		plen = v1_len;
		version = CG_V1;
	} else if (v2_path && mounts->has_v2 && mounts->v2_has_memory) {
		path = v2_path;
		plen = v2_len;
		version = CG_V2;
	} else {
		return -ENODATA;
	}
	if (plen == 0 || path[0] != '/' || memchr(path, '\0', plen))
		return -EPROTO;
	/* v2 marks a removed cgroup that still holds a zombie; its directory is gone. */
	if (plen >= sizeof(deleted) - 1 && memcmp(path + plen - (sizeof(deleted) - 1), deleted, sizeof(deleted) - 1) == 0)
		return -ENOENT;
	if (copy_str(ret_rel_path, len, path, plen) < 0) {
		ret_rel_path[0] = '\0';
		return -ENAMETOOLONG;
	}
	*ret_version = version;
	return 0;
}

static bool has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")); p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == '\0'))
			return true;
	return false;
}

int cg_join_dir(const struct cg_mounts *mounts, enum cg_version version, const char *rel, char *ret, size_t len)
{
	const char *point, *mount_root;
	size_t rl;
	int n;

	if (!mounts || !rel || !ret || len == 0)
		return -EINVAL;
	ret[0] = '\0';
	if (version == CG_V1 && mounts->has_v1_memory) {
		point = mounts->v1_memory;
		mount_root = mounts->v1_memory_root;
	} else if (version == CG_V2 && mounts->has_v2) {
		point = mounts->v2;
		mount_root = mounts->v2_root;
	} else {
		return version == CG_V1 || version == CG_V2 ? -ENODATA : -EINVAL;
	}
	if (rel[0] != '/')
		return -EINVAL;
	rl = strlen(mount_root);
	/* Outside our cgroup namespace the kernel shows paths like "/../../x": not reachable through our mount. */
	if (has_dotdot(rel))
		return -EXDEV;
	if (strcmp(mount_root, "/") != 0) {
		/* A bind mount of a subtree (containers without cgroupns): strip the subtree prefix. */
		if (strncmp(rel, mount_root, rl) != 0 || (rel[rl] != '/' && rel[rl] != '\0'))
			return -EXDEV;
		rel += rl;
	}
	if (strcmp(rel, "/") == 0)
		rel = "";
	/* A mount point of "/" (cgroupfs at the root of a test chroot) must not give "//x". */
	if (strcmp(point, "/") == 0 && *rel)
		point = "";
	n = snprintf(ret, len, "%s%s", point, rel);
	if (n < 0 || (size_t)n >= len) {
		ret[0] = '\0';
		return -ENAMETOOLONG;
	}
	return 0;
}

/* ---------------------------------------------------------------- memory files */

static int next_u64_eol(const char **pos, uint64_t *ret)
{
	const char *p = *pos;
	int r = procfs_next_u64(&p, 10, ret);

	if (r < 0)
		return r;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\n' && *p != '\0')
		return -EPROTO;
	*pos = p;
	return 0;
}

int cg_parse_value(const char *text, uint64_t *ret)
{
	const char *p = text;
	uint64_t v;
	int r;

	if (!text || !ret)
		return -EINVAL;
	while (*p == ' ' || *p == '\t')
		p++;
	if (strncmp(p, "max", 3) == 0) {
		p += 3;
		v = CG_UNLIMITED;
	} else {
		r = procfs_next_u64(&p, 10, &v);
		if (r < 0)
			return r;
	}
	while (*p == ' ' || *p == '\t' || *p == '\n')
		p++;
	if (*p)
		return -EPROTO;
	*ret = v;
	return 0;
}

uint64_t cg_v1_normalize_limit(uint64_t bytes)
{
	return bytes >= CG_V1_UNLIMITED_MIN ? CG_UNLIMITED : bytes;
}

struct kv_key {
	const char *key;
	size_t idx;
};

/* "key value" lines: values of the keys listed go to vals[idx] and set seen[idx]. Returns 0, or -EPROTO when no
 * listed key is there (not the file we meant to read), or the error of a value that is not a number. */
static int parse_kv(const char *text, const struct kv_key *keys, size_t nkeys, uint64_t *vals, bool *seen)
{
	const char *pos = text, *line;
	size_t len;
	int matched = 0;

	while (procfs_next_line(&pos, &line, &len)) {
		const char *sp = memchr(line, ' ', len);
		size_t klen;

		if (!sp)
			continue;
		klen = (size_t)(sp - line);
		for (size_t i = 0; i < nkeys; i++) {
			const char *v = sp;
			int r;

			if (strlen(keys[i].key) != klen || memcmp(keys[i].key, line, klen) != 0)
				continue;
			r = next_u64_eol(&v, &vals[keys[i].idx]);
			if (r < 0)
				return r;
			seen[keys[i].idx] = true;
			matched++;
			break;
		}
	}
	return matched ? 0 : -EPROTO;
}

enum {
	S_CACHE, S_RSS, S_SHMEM, S_MAPPED, S_SWAP, S_PGFAULT, S_PGMAJ, S_INACT_FILE, S_ACT_FILE,
	S_V1_LOCAL_N,
	/* total_* mirror the above at +S_V1_LOCAL_N */
	S_HIER_LIMIT = 2 * S_V1_LOCAL_N,
	S_V1_N,
};

enum {
	V2_ANON, V2_FILE, V2_KERNEL, V2_SHMEM, V2_MAPPED, V2_SLAB, V2_INACT_FILE, V2_ACT_FILE, V2_PGFAULT,
	V2_PGMAJ, V2_PGSCAN, V2_PGSTEAL, V2_PGSCAN_DIRECT, V2_PGSTEAL_DIRECT, V2_N,
};

static int parse_stat_v1(const char *text, struct cg_memory *m)
{
	static const struct kv_key keys[] = {
		{ "cache", S_CACHE }, { "rss", S_RSS }, { "shmem", S_SHMEM }, { "mapped_file", S_MAPPED },
		{ "swap", S_SWAP }, { "pgfault", S_PGFAULT }, { "pgmajfault", S_PGMAJ },
		{ "inactive_file", S_INACT_FILE }, { "active_file", S_ACT_FILE },
		{ "total_cache", S_V1_LOCAL_N + S_CACHE }, { "total_rss", S_V1_LOCAL_N + S_RSS },
		{ "total_shmem", S_V1_LOCAL_N + S_SHMEM }, { "total_mapped_file", S_V1_LOCAL_N + S_MAPPED },
		{ "total_swap", S_V1_LOCAL_N + S_SWAP }, { "total_pgfault", S_V1_LOCAL_N + S_PGFAULT },
		{ "total_pgmajfault", S_V1_LOCAL_N + S_PGMAJ },
		{ "total_inactive_file", S_V1_LOCAL_N + S_INACT_FILE },
		{ "total_active_file", S_V1_LOCAL_N + S_ACT_FILE },
		{ "hierarchical_memory_limit", S_HIER_LIMIT },
	};
	uint64_t v[S_V1_N] = {0}, out[S_V1_LOCAL_N];
	bool seen[S_V1_N] = {0};
	int r;

	r = parse_kv(text, keys, ARRAY_SIZE(keys), v, seen);
	if (r < 0)
		return r;
	/* usage_in_bytes counts the children too, so the hierarchical total_* are the comparable numbers. */
	for (size_t i = 0; i < S_V1_LOCAL_N; i++)
		out[i] = seen[S_V1_LOCAL_N + i] ? v[S_V1_LOCAL_N + i] : v[i];
	m->file_bytes = out[S_CACHE];
	m->anon_bytes = out[S_RSS];
	m->shmem_bytes = out[S_SHMEM];
	m->mapped_file_bytes = out[S_MAPPED];
	m->pgfault = out[S_PGFAULT];
	m->pgmajfault = out[S_PGMAJ];
	m->inactive_file_bytes = out[S_INACT_FILE];
	m->active_file_bytes = out[S_ACT_FILE];
	m->kernel_bytes = 0;
	m->slab_bytes = 0;
	m->has_swap = seen[S_SWAP] || seen[S_V1_LOCAL_N + S_SWAP];
	m->swap_bytes = m->has_swap ? out[S_SWAP] : 0;
	if (seen[S_HIER_LIMIT])
		m->effective_limit_bytes = cg_v1_normalize_limit(v[S_HIER_LIMIT]);
	m->has_reclaim = false;
	m->has_stat = true;
	return 0;
}

static int parse_stat_v2(const char *text, struct cg_memory *m)
{
	static const struct kv_key keys[] = {
		{ "anon", V2_ANON }, { "file", V2_FILE }, { "kernel", V2_KERNEL }, { "shmem", V2_SHMEM },
		{ "file_mapped", V2_MAPPED }, { "slab", V2_SLAB }, { "inactive_file", V2_INACT_FILE },
		{ "active_file", V2_ACT_FILE }, { "pgfault", V2_PGFAULT }, { "pgmajfault", V2_PGMAJ },
		{ "pgscan", V2_PGSCAN }, { "pgsteal", V2_PGSTEAL }, { "pgscan_direct", V2_PGSCAN_DIRECT },
		{ "pgsteal_direct", V2_PGSTEAL_DIRECT },
	};
	uint64_t v[V2_N] = {0};
	bool seen[V2_N] = {0};
	int r;

	r = parse_kv(text, keys, ARRAY_SIZE(keys), v, seen);
	if (r < 0)
		return r;
	m->anon_bytes = v[V2_ANON];
	m->file_bytes = v[V2_FILE];
	m->kernel_bytes = v[V2_KERNEL];
	m->shmem_bytes = v[V2_SHMEM];
	m->mapped_file_bytes = v[V2_MAPPED];
	m->slab_bytes = v[V2_SLAB];
	m->inactive_file_bytes = v[V2_INACT_FILE];
	m->active_file_bytes = v[V2_ACT_FILE];
	m->pgfault = v[V2_PGFAULT];
	m->pgmajfault = v[V2_PGMAJ];
	m->pgscan = v[V2_PGSCAN];
	m->pgsteal = v[V2_PGSTEAL];
	m->pgscan_direct = v[V2_PGSCAN_DIRECT];
	m->pgsteal_direct = v[V2_PGSTEAL_DIRECT];
	m->has_reclaim = seen[V2_PGSCAN] && seen[V2_PGSTEAL];
	m->has_stat = true;
	return 0;
}

int cg_parse_memory_stat(const char *text, enum cg_version version, struct cg_memory *m)
{
	if (!text || !m)
		return -EINVAL;
	if (version == CG_V1)
		return parse_stat_v1(text, m);
	if (version == CG_V2)
		return parse_stat_v2(text, m);
	return -EINVAL;
}

int cg_parse_memory_events(const char *text, struct cg_memory *m)
{
	enum { E_LOW, E_HIGH, E_MAX, E_OOM, E_OOM_KILL, E_OOM_GROUP_KILL, E_N };
	static const struct kv_key keys[] = {
		{ "low", E_LOW }, { "high", E_HIGH }, { "max", E_MAX }, { "oom", E_OOM },
		{ "oom_kill", E_OOM_KILL }, { "oom_group_kill", E_OOM_GROUP_KILL },
	};
	uint64_t v[E_N] = {0};
	bool seen[E_N] = {0};
	int r;

	if (!text || !m)
		return -EINVAL;
	r = parse_kv(text, keys, ARRAY_SIZE(keys), v, seen);
	if (r < 0)
		return r;
	m->events_low = v[E_LOW];
	m->events_high = v[E_HIGH];
	m->events_max = v[E_MAX];
	m->oom_events = v[E_OOM];
	m->oom_kill = v[E_OOM_KILL];
	m->oom_group_kill = v[E_OOM_GROUP_KILL];
	m->has_oom_kill = seen[E_OOM_KILL];
	m->has_events = true;
	return 0;
}

int cg_parse_oom_control(const char *text, struct cg_memory *m)
{
	enum { O_DISABLE, O_UNDER, O_KILL, O_N };
	static const struct kv_key keys[] = {
		{ "oom_kill_disable", O_DISABLE }, { "under_oom", O_UNDER }, { "oom_kill", O_KILL },
	};
	uint64_t v[O_N] = {0};
	bool seen[O_N] = {0};
	int r;

	if (!text || !m)
		return -EINVAL;
	r = parse_kv(text, keys, ARRAY_SIZE(keys), v, seen);
	if (r < 0)
		return r;
	if (!seen[O_UNDER])
		return -EPROTO;
	if (v[O_DISABLE] > 1 || v[O_UNDER] > 1)
		return -ERANGE;
	m->oom_kill_disable = v[O_DISABLE];
	m->under_oom = v[O_UNDER];
	m->oom_kill = v[O_KILL];
	m->has_oom_kill = seen[O_KILL];
	m->has_events = true;
	return 0;
}

uint64_t cg_memory_working_set(const struct cg_memory *m)
{
	if (!m)
		return 0;
	return m->usage_bytes > m->inactive_file_bytes ? m->usage_bytes - m->inactive_file_bytes : 0;
}

enum cg_version cg_mounts_memory_version(const struct cg_mounts *m)
{
	return m->has_v1_memory ? CG_V1 : CG_V2;
}

const char *cg_mounts_memory_root(const struct cg_mounts *m)
{
	return m->has_v1_memory ? m->v1_memory : m->v2;
}

// SPDX-License-Identifier: GPL-2.0
/* cgroup-read.c: the readers against real v1 files (a memcg with a 64 MiB limit after an OOM kill in its child, 6.18) and
 * hand-written v2 files of a 6.x kernel (tests/fixtures/cgroup), plus malformed inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include "common.h"
#include "helpers.h"
#include "cgroup.h"
#include "cgroup-read.h"
#include "procfs-read.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif
#define CG FIXTURES "/cgroup"
#define PROC FIXTURES "/proc"
#define V1_UNLIMITED 9223372036854771712ULL

static struct cg_mounts *mounts_from(const char *path)
{
	struct cg_mounts *m = calloc(1, sizeof(*m));
	char *text = fixture_text(path);

	assert_non_null(m);
	assert_int_equal(cg_parse_mountinfo(text, m), 0);
	free(text);
	return m;
}

static int rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static char *make_tmpdir(void)
{
	char *dir = strdup("/tmp/oomsentry-test-cgroup-XXXXXX");

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	return dir;
}

static void remove_tmpdir(char *dir)
{
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	free(dir);
}

static void write_file(const char *dir, const char *name, const char *content)
{
	char path[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "we");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

/* ---------------------------------------------------------------- mounts */

static void test_mounts_detect(void **state)
{
	char *dir = make_tmpdir(), path[PATH_MAX], line[PATH_MAX * 4 + 128], esc[PATH_MAX * 4];
	struct cg_mounts *m = calloc(1, sizeof(*m));
	const char *v2 = CG "/v2";
	size_t o = 0;

	(void)state;
	assert_non_null(m);
	/* A mountinfo whose cgroup2 is the fixture tree, so the controllers file is read from it. */
	for (const char *p = v2; *p && o + 5 < sizeof(esc); p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\\')
			o += (size_t)snprintf(esc + o, sizeof(esc) - o, "\\%03o", (unsigned char)*p);
		else
			esc[o++] = *p;
	}
	esc[o] = '\0';
	snprintf(line, sizeof(line), "32 22 0:27 / %s rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n", esc);
	write_file(dir, "mountinfo", line);
	snprintf(path, sizeof(path), "%s/mountinfo", dir);
	assert_int_equal(cg_mounts_detect(path, m), 0);
	assert_true(m->has_v2);
	assert_string_equal(m->v2, v2);
	assert_true(m->v2_has_memory);
	assert_false(m->has_v1_memory);

	/* cgroup2 without the memory controller (this machine's /sys/fs/cgroup/unified). */
	snprintf(line, sizeof(line), "32 22 0:27 / %s rw,nosuid - cgroup2 cgroup2 rw\n", dir);
	write_file(dir, "mountinfo", line);
	write_file(dir, "cgroup.controllers", "cpu io pids\n");
	assert_int_equal(cg_mounts_detect(path, m), 0);
	assert_true(m->has_v2);
	assert_false(m->v2_has_memory);

	assert_int_equal(cg_mounts_detect(CG "/nope", m), -ENOENT);
	/* The real one must at least parse. */
	assert_int_equal(cg_mounts_detect(NULL, m), 0);
	free(m);
	remove_tmpdir(dir);
}

/* ---------------------------------------------------------------- which cgroup */

static void test_pid_memory_dir(void **state)
{
	struct cg_mounts *hybrid = mounts_from(PROC "/mountinfo/hybrid");
	struct cg_mounts *v2 = mounts_from(PROC "/mountinfo/v2");
	const struct {
		const struct cg_mounts *m;
		pid_t pid;
		int r;
		const char *dir;
		enum cg_version v;
	} cases[] = {
		{ hybrid, 6217, 0, "/sys/fs/cgroup/memory/system.slice/comfyui.service", CG_V1 },
		{ v2, 6217, 0, "/sys/fs/cgroup/system.slice/comfyui.service", CG_V2 },
		{ v2, 4242, 0, "/sys/fs/cgroup/comfy.slice/comfyui.service", CG_V2 },
		{ v2, 1, 0, "/sys/fs/cgroup/init.scope", CG_V2 },
		{ hybrid, 1, -ENODATA, "", 0 },   /* pure v2 process, but this host's memory is on v1 */
		{ v2, 4243, -ENOENT, "", 0 },     /* cgroup removed */
		{ v2, 4244, -EXDEV, "", 0 },      /* outside our cgroup namespace */
		{ v2, 5555, -ENOENT, "", 0 },     /* process gone */
		{ v2, -1, -EINVAL, "", 0 },
	};
	char dir[PATH_MAX];
	enum cg_version ver;

	(void)state;
	v2->v2_has_memory = true;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r;

		ver = 0;
		r = cg_pid_memory_dir(PROC, cases[i].pid, cases[i].m, dir, sizeof(dir), &ver);
		if (r != cases[i].r)
			fail_msg("case %zu pid %d: got %d, want %d", i, (int)cases[i].pid, r, cases[i].r);
		assert_string_equal(dir, cases[i].dir);
		if (r == 0)
			assert_int_equal(ver, cases[i].v);
	}
	free(hybrid);
	free(v2);
}

/* ---------------------------------------------------------------- values */

/* ---------------------------------------------------------------- v1 */

static void test_read_v1_limited(void **state)
{
	struct cg_memory m;

	(void)state;
	/* The cgroup holding the 64 MiB limit; its own memory.stat counters are 0, everything sits in child/. */
	assert_int_equal(cg_read_memory(CG "/v1/limited", CG_V1, &m), 0);
	assert_int_equal(m.version, CG_V1);
	assert_int_equal(m.usage_bytes, 34271232);
	assert_int_equal(m.limit_bytes, 67108864);
	assert_int_equal(m.effective_limit_bytes, 67108864);
	assert_int_equal(m.high_bytes, CG_UNLIMITED);
	assert_false(m.has_high);
	assert_true(m.has_peak);
	assert_int_equal(m.peak_bytes, 67108864);
	assert_true(m.has_failcnt);
	assert_int_equal(m.failcnt, 468);
	assert_true(m.has_events);
	assert_true(m.has_oom_kill);
	assert_int_equal(m.oom_kill, 0); /* v1 counts the kill in the victim's cgroup only */
	assert_false(m.under_oom);
	assert_false(m.oom_kill_disable);
	assert_true(m.has_stat);
	/* total_* (hierarchical), not the cgroup's own zeros */
	assert_int_equal(m.file_bytes, 5664768);
	assert_int_equal(m.anon_bytes, 28008448);
	assert_int_equal(m.shmem_bytes, 4194304);
	assert_int_equal(m.mapped_file_bytes, 823296);
	assert_int_equal(m.inactive_file_bytes, 1454080);
	assert_int_equal(m.active_file_bytes, 16384);
	assert_int_equal(m.pgfault, 26095);
	assert_int_equal(m.pgmajfault, 8);
	assert_int_equal(m.kernel_bytes, 0);
	assert_true(m.has_swap);
	assert_int_equal(m.swap_bytes, 0);
	assert_false(m.has_reclaim);
	assert_false(m.has_psi);
	assert_int_equal(cg_memory_working_set(&m), 34271232 - 1454080);
}

static void test_read_v1_child(void **state)
{
	struct cg_memory m;

	(void)state;
	/* No limit of its own, but the parent's 64 MiB applies (hierarchical_memory_limit). */
	assert_int_equal(cg_read_memory(CG "/v1/limited/child", CG_V1, &m), 0);
	assert_int_equal(m.usage_bytes, 34258944);
	assert_int_equal(m.limit_bytes, CG_UNLIMITED);
	assert_int_equal(m.effective_limit_bytes, 67108864);
	assert_int_equal(m.peak_bytes, 67358720);
	assert_int_equal(m.failcnt, 0);
	assert_true(m.has_oom_kill);
	assert_int_equal(m.oom_kill, 1);
	assert_int_equal(m.anon_bytes, 28008448);
	assert_int_equal(m.file_bytes, 5664768);
	assert_int_equal(cg_memory_working_set(&m), 34258944 - 1454080);
}

static void test_read_v1_minimal(void **state)
{
	char *dir = make_tmpdir();
	struct cg_memory m;

	(void)state;
	/* Only the two required files; a garbage memory.stat and an old oom_control degrade, not fail. */
	write_file(dir, "memory.usage_in_bytes", "1000\n");
	write_file(dir, "memory.limit_in_bytes", "9223372036854771712\n");
	write_file(dir, "memory.stat", "rss banana\n");
	write_file(dir, "memory.oom_control", "oom_kill_disable 1\nunder_oom 1\n");
	assert_int_equal(cg_read_memory(dir, CG_V1, &m), 0);
	assert_int_equal(m.usage_bytes, 1000);
	assert_int_equal(m.limit_bytes, CG_UNLIMITED);
	assert_int_equal(m.effective_limit_bytes, CG_UNLIMITED);
	assert_false(m.has_stat);
	assert_false(m.has_peak);
	assert_false(m.has_failcnt);
	assert_false(m.has_swap);
	assert_true(m.has_events);
	assert_false(m.has_oom_kill); /* kernel < 4.13 */
	assert_true(m.under_oom);
	assert_true(m.oom_kill_disable);
	assert_int_equal(cg_memory_working_set(&m), 1000);

	/* Only the cgroup's own counters (no total_*), a looser hierarchical limit must not loosen ours. */
	write_file(dir, "memory.limit_in_bytes", "4096\n");
	write_file(dir, "memory.stat", "cache 10\nrss 20\ninactive_file 5000\nhierarchical_memory_limit 8192\n");
	assert_int_equal(cg_read_memory(dir, CG_V1, &m), 0);
	assert_true(m.has_stat);
	assert_int_equal(m.file_bytes, 10);
	assert_int_equal(m.anon_bytes, 20);
	assert_int_equal(m.effective_limit_bytes, 4096);
	assert_false(m.has_swap);
	assert_int_equal(cg_memory_working_set(&m), 0); /* floored */

	/* Required files broken. */
	write_file(dir, "memory.limit_in_bytes", "unlimited\n");
	assert_int_equal(cg_read_memory(dir, CG_V1, &m), -EPROTO);
	write_file(dir, "memory.usage_in_bytes", "");
	assert_int_equal(cg_read_memory(dir, CG_V1, &m), -EPROTO);
	remove_tmpdir(dir);
}

/* ---------------------------------------------------------------- v2 */

static void test_read_v2_service(void **state)
{
	struct cg_memory m;

	(void)state;
	assert_int_equal(cg_read_memory(CG "/v2/comfy.slice/comfyui.service", CG_V2, &m), 0);
	assert_int_equal(m.version, CG_V2);
	assert_int_equal(m.usage_bytes, 6547308544ULL);
	assert_int_equal(m.limit_bytes, CG_UNLIMITED);
	/* memory.max of comfy.slice; the walk stops at the root, which has no memory.max. */
	assert_int_equal(m.effective_limit_bytes, 8589934592ULL);
	assert_true(m.has_high);
	assert_int_equal(m.high_bytes, 6442450944ULL);
	assert_false(m.has_peak);
	assert_int_equal(m.peak_bytes, 0);
	assert_false(m.has_swap);
	assert_true(m.has_events);
	assert_int_equal(m.events_low, 0);
	assert_int_equal(m.events_high, 1187);
	assert_int_equal(m.events_max, 0);
	assert_int_equal(m.oom_events, 0);
	assert_true(m.has_oom_kill);
	assert_int_equal(m.oom_kill, 1);
	assert_int_equal(m.oom_group_kill, 0);
	assert_true(m.has_stat);
	assert_int_equal(m.anon_bytes, 5368709120ULL);
	assert_int_equal(m.file_bytes, 1073741824ULL);
	assert_int_equal(m.kernel_bytes, 104857600ULL);
	assert_int_equal(m.shmem_bytes, 2097152ULL);
	assert_int_equal(m.mapped_file_bytes, 536870912ULL);
	assert_int_equal(m.slab_bytes, 52428800ULL);
	assert_int_equal(m.inactive_file_bytes, 803209216ULL);
	assert_int_equal(m.active_file_bytes, 268435456ULL);
	assert_int_equal(m.pgfault, 9823411);
	assert_int_equal(m.pgmajfault, 1204);
	assert_true(m.has_reclaim);
	assert_int_equal(m.pgscan, 183245);
	assert_int_equal(m.pgsteal, 170112);
	assert_int_equal(m.pgscan_direct, 12034);
	assert_int_equal(m.pgsteal_direct, 11020);
	assert_false(m.has_failcnt);
	assert_true(m.has_psi);
	assert_float_equal(m.psi.some.avg10, 12.40, 1e-9);
	assert_float_equal(m.psi.some.avg60, 6.05, 1e-9);
	assert_float_equal(m.psi.some.avg300, 1.71, 1e-9);
	assert_int_equal(m.psi.some.total_us, 91233877);
	assert_true(m.psi.has_full);
	assert_float_equal(m.psi.full.avg10, 8.12, 1e-9);
	assert_int_equal(m.psi.full.total_us, 60318021);
	assert_int_equal(cg_memory_working_set(&m), 6547308544ULL - 803209216ULL);
}

static void test_read_v2_slice(void **state)
{
	struct cg_memory m;

	(void)state;
	/* Trailing slash on purpose. */
	assert_int_equal(cg_read_memory(CG "/v2/comfy.slice/", CG_V2, &m), 0);
	assert_int_equal(m.usage_bytes, 6551502848ULL);
	assert_int_equal(m.limit_bytes, 8589934592ULL);
	assert_int_equal(m.effective_limit_bytes, 8589934592ULL);
	assert_true(m.has_high);
	assert_int_equal(m.high_bytes, CG_UNLIMITED);
	assert_true(m.has_peak);
	assert_int_equal(m.peak_bytes, 8321499136ULL);
	assert_true(m.has_swap);
	assert_int_equal(m.swap_bytes, 0);
	assert_int_equal(m.events_max, 413);
	assert_int_equal(m.oom_events, 2);
	assert_int_equal(m.oom_kill, 1);
	assert_int_equal(m.anon_bytes, 5372903424ULL);
	assert_int_equal(m.pgfault, 9901288);
	assert_float_equal(m.psi.some.avg10, 12.51, 1e-9);
}

static void test_read_v2_errors(void **state)
{
	char *dir = make_tmpdir(), sub[PATH_MAX];
	struct cg_memory m;

	(void)state;
	/* The v2 root has no memory.current: not a cgroup this reader can watch. */
	assert_int_equal(cg_read_memory(CG "/v2", CG_V2, &m), -ENOENT);
	/* A cgroup removed under our feet. */
	assert_int_equal(cg_read_memory(CG "/v2/gone.scope", CG_V2, &m), -ENOENT);
	assert_int_equal(cg_read_memory(CG "/v2/comfy.slice", 3, &m), -EINVAL);
	assert_int_equal(cg_read_memory("", CG_V2, &m), -EINVAL);
	assert_int_equal(cg_read_memory(NULL, CG_V2, &m), -EINVAL);

	/* Malformed optional files degrade to has_* = false; the parent's limit still applies. */
	write_file(dir, "memory.max", "1073741824\n");
	snprintf(sub, sizeof(sub), "%s/leaf", dir);
	assert_int_equal(mkdir(sub, 0755), 0);
	write_file(sub, "memory.current", "4096\n");
	write_file(sub, "memory.max", "max\n");
	write_file(sub, "memory.high", "high\n");
	write_file(sub, "memory.peak", "-1\n");
	write_file(sub, "memory.events", "oom_kill x\n");
	write_file(sub, "memory.stat", "");
	write_file(sub, "memory.pressure", "some avg10=0.00\n");
	assert_int_equal(cg_read_memory(sub, CG_V2, &m), 0);
	assert_int_equal(m.usage_bytes, 4096);
	assert_int_equal(m.limit_bytes, CG_UNLIMITED);
	assert_int_equal(m.effective_limit_bytes, 1073741824);
	assert_false(m.has_high);
	assert_int_equal(m.high_bytes, CG_UNLIMITED);
	assert_false(m.has_peak);
	assert_int_equal(m.peak_bytes, 0);
	assert_false(m.has_events);
	assert_false(m.has_oom_kill);
	assert_false(m.has_stat);
	assert_false(m.has_psi);
	assert_int_equal(m.oom_kill, 0);

	write_file(sub, "memory.current", "4096 bytes\n");
	assert_int_equal(cg_read_memory(sub, CG_V2, &m), -EPROTO);
	write_file(sub, "memory.current", "99999999999999999999\n");
	assert_int_equal(cg_read_memory(sub, CG_V2, &m), -ERANGE);
	remove_tmpdir(dir);
}

/* ---------------------------------------------------------------- ids */

static void test_dir_id(void **state)
{
	char *dir = make_tmpdir(), path[PATH_MAX], found[PATH_MAX];
	uint64_t id_c, id_root, id_svc;
	struct stat sb;

	(void)state;
	snprintf(path, sizeof(path), "%s/a", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/a/b", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	write_file(path, "memory.current", "1\n");
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(cg_dir_id(path, &id_c), 0);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(id_c, (uint64_t)sb.st_ino);
	assert_int_equal(cg_find_dir_by_id(dir, id_c, found, sizeof(found)), 0);
	assert_string_equal(found, path);
	assert_int_equal(cg_dir_id(dir, &id_root), 0);
	assert_int_equal(cg_find_dir_by_id(dir, id_root, found, sizeof(found)), 0);
	assert_string_equal(found, dir);
	/* A file's inode is not a cgroup. */
	snprintf(path, sizeof(path), "%s/a/b/memory.current", dir);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(cg_find_dir_by_id(dir, sb.st_ino, found, sizeof(found)), -ENOENT);
	assert_string_equal(found, "");
	assert_int_equal(cg_dir_id(path, &id_c), -ENOTDIR);
	assert_int_equal(cg_find_dir_by_id(dir, id_c, found, 8), -ENAMETOOLONG);
	assert_string_equal(found, "");
	assert_int_equal(cg_dir_id(CG "/nope", &id_c), -ENOENT);
	assert_int_equal(cg_find_dir_by_id(CG "/nope", 1, found, sizeof(found)), -ENOENT);

	assert_int_equal(cg_dir_id(CG "/v2/comfy.slice/comfyui.service", &id_svc), 0);
	assert_int_equal(cg_find_dir_by_id(CG, id_svc, found, sizeof(found)), 0);
	assert_string_equal(found, CG "/v2/comfy.slice/comfyui.service");
	remove_tmpdir(dir);
}

static void test_find_depth_bound(void **state)
{
	char *dir = make_tmpdir(), path[PATH_MAX], found[PATH_MAX];
	uint64_t at_limit, below_limit;
	size_t o = (size_t)snprintf(path, sizeof(path), "%s", dir);

	(void)state;
	for (int level = 1; level <= CG_FIND_MAX_DEPTH + 1; level++) {
		o += (size_t)snprintf(path + o, sizeof(path) - o, "/d");
		assert_int_equal(mkdir(path, 0755), 0);
		if (level == CG_FIND_MAX_DEPTH)
			assert_int_equal(cg_dir_id(path, &at_limit), 0);
	}
	assert_int_equal(cg_dir_id(path, &below_limit), 0);
	assert_int_equal(cg_find_dir_by_id(dir, at_limit, found, sizeof(found)), 0);
	assert_int_equal(cg_find_dir_by_id(dir, below_limit, found, sizeof(found)), -ENOENT);
	remove_tmpdir(dir);
}

/* ---------------------------------------------------------------- this machine */

static void test_real_system(void **state)
{
	struct cg_mounts *mounts = calloc(1, sizeof(*mounts));
	char dir[PATH_MAX], found[PATH_MAX];
	enum cg_version v;
	struct cg_memory m;
	uint64_t id;
	int r;

	(void)state;
	assert_non_null(mounts);
	assert_int_equal(cg_mounts_detect(NULL, mounts), 0);
	r = cg_pid_memory_dir(NULL, 0, mounts, dir, sizeof(dir), &v);
	if (r < 0) {
		/* No memory controller visible (some CI containers): nothing more to check here. */
		assert_true(r == -ENODATA || r == -EXDEV || r == -ENOENT);
		free(mounts);
		skip();
	}
	r = cg_read_memory(dir, v, &m);
	if (r == -ENOENT) {
		/* The v2 root cgroup has no memory.current. */
		free(mounts);
		skip();
	}
	assert_int_equal(r, 0);
	assert_true(m.usage_bytes > 0);
	assert_true(m.effective_limit_bytes <= m.limit_bytes);
	assert_int_equal(cg_dir_id(dir, &id), 0);
	assert_int_equal(cg_find_dir_by_id(v == CG_V1 ? mounts->v1_memory : mounts->v2, id, found, sizeof(found)), 0);
	assert_string_equal(found, dir);
	free(mounts);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mounts_detect),
		cmocka_unit_test(test_pid_memory_dir),
		cmocka_unit_test(test_read_v1_limited),
		cmocka_unit_test(test_read_v1_child),
		cmocka_unit_test(test_read_v1_minimal),
		cmocka_unit_test(test_read_v2_service),
		cmocka_unit_test(test_read_v2_slice),
		cmocka_unit_test(test_read_v2_errors),
		cmocka_unit_test(test_dir_id),
		cmocka_unit_test(test_find_depth_bound),
		cmocka_unit_test(test_real_system),
	};

	return cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
}

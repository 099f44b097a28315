// SPDX-License-Identifier: GPL-2.0
/* core/cgroup.c: the parsers and path rules against real v1 files (a memcg with a 64 MiB limit after an OOM kill
 * in its child, 6.18) and hand-written v2 files of a 6.x kernel (tests/fixtures/cgroup), plus malformed inputs. */
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

/* ---------------------------------------------------------------- mounts */

static void test_mountinfo_hybrid(void **state)
{
	/* This machine: v1 controllers under /sys/fs/cgroup, an empty cgroup2 at /sys/fs/cgroup/unified. */
	struct cg_mounts *m = mounts_from(PROC "/mountinfo/hybrid");

	(void)state;
	assert_true(m->has_v1_memory);
	assert_string_equal(m->v1_memory, "/sys/fs/cgroup/memory");
	assert_string_equal(m->v1_memory_root, "/");
	assert_true(m->has_v2);
	assert_string_equal(m->v2, "/sys/fs/cgroup/unified");
	assert_string_equal(m->v2_root, "/");
	assert_false(m->v2_has_memory);
	free(m);
}

static void test_mountinfo_v2(void **state)
{
	struct cg_mounts *m = mounts_from(PROC "/mountinfo/v2");

	(void)state;
	assert_false(m->has_v1_memory);
	assert_string_equal(m->v1_memory, "");
	assert_true(m->has_v2);
	assert_string_equal(m->v2, "/sys/fs/cgroup");
	assert_string_equal(m->v2_root, "/");
	free(m);
}

static void test_mountinfo_docker(void **state)
{
	/* A container without cgroupns: the host's subtree bind-mounted over /sys/fs/cgroup/memory. */
	struct cg_mounts *m = mounts_from(PROC "/mountinfo/v1-docker");

	(void)state;
	assert_true(m->has_v1_memory);
	assert_string_equal(m->v1_memory, "/sys/fs/cgroup/memory");
	assert_string_equal(m->v1_memory_root, "/docker/4f3c9a1b2e7d");
	assert_true(m->has_v2);
	assert_string_equal(m->v2, "/sys/fs/cgroup/unified");
	assert_string_equal(m->v2_root, "/docker/4f3c9a1b2e7d");
	free(m);
}

static void test_mountinfo_inline(void **state)
{
	struct cg_mounts *m = calloc(1, sizeof(*m));

	(void)state;
	assert_non_null(m);
	/* Escaped mount point, multi-controller hierarchy, a later whole-hierarchy mount beats an earlier bind. */
	assert_int_equal(cg_parse_mountinfo(
		"garbage\n"
		"\n"
		"1 2 0:1 / /x rw - cgroup cgroup rw,memoryx\n"
		"1 2 0:1 / /y rw shared:1 - cgroup cgroup rw,cpu,memory_recursiveprot\n"
		"1 2 0:1 /sub /bind\\040mem rw - cgroup cgroup rw,cpu,memory\n"
		"1 2 0:1 / /cg\\040v1\\134mem rw shared:3 master:4 - cgroup cgroup rw,cpu,memory\n"
		"1 2 0:1 / /later rw - cgroup cgroup rw,memory\n"
		"1 2 0:2 / /sys/fs/cgroup\\011v2 rw - cgroup2 cgroup2 rw,nsdelegate\n"
		"1 2 0:2 / /short rw - cgroup2\n"
		"1 2 0:2 / relative rw - cgroup2 cgroup2 rw\n", m), 0);
	assert_true(m->has_v1_memory);
	assert_string_equal(m->v1_memory, "/cg v1\\mem");
	assert_string_equal(m->v1_memory_root, "/");
	assert_true(m->has_v2);
	assert_string_equal(m->v2, "/sys/fs/cgroup\tv2");

	assert_int_equal(cg_parse_mountinfo("", m), 0);
	assert_false(m->has_v1_memory);
	assert_false(m->has_v2);
	/* \000 would cut the path short: the line is ignored. */
	assert_int_equal(cg_parse_mountinfo("1 2 0:2 / /a\\000b rw - cgroup2 cgroup2 rw\n", m), 0);
	assert_false(m->has_v2);
	/* Unfinished escapes stay literal. */
	assert_int_equal(cg_parse_mountinfo("1 2 0:2 / /a\\04 rw - cgroup2 cgroup2 rw\n", m), 0);
	assert_string_equal(m->v2, "/a\\04");
	assert_int_equal(cg_parse_mountinfo(NULL, m), -EINVAL);
	free(m);
}

static void test_controllers(void **state)
{
	(void)state;
	assert_true(cg_controllers_contain("cpuset cpu io memory hugetlb pids rdma misc\n", "memory"));
	assert_true(cg_controllers_contain("memory", "memory"));
	assert_true(cg_controllers_contain("cpu  memory\n", "memory"));
	assert_false(cg_controllers_contain("cpuset cpu io hugetlb pids\n", "memory"));
	assert_false(cg_controllers_contain("memoryx cpu\n", "memory"));
	assert_false(cg_controllers_contain("hugetlb\n", "memory"));
	assert_false(cg_controllers_contain("", "memory"));
	assert_false(cg_controllers_contain("memory", ""));
	assert_false(cg_controllers_contain(NULL, "memory"));
}

/* ---------------------------------------------------------------- which cgroup */

static void test_proc_cgroup(void **state)
{
	struct cg_mounts *hybrid = mounts_from(PROC "/mountinfo/hybrid");
	struct cg_mounts *v2 = mounts_from(PROC "/mountinfo/v2");
	struct cg_mounts *v2_nomem = mounts_from(PROC "/mountinfo/v2");
	static const char v1_text[] = "9:name=systemd:/system.slice/comfyui.service\n"
				      "4:memory:/system.slice/comfyui.service\n"
				      "2:cpu,cpuacct:/system.slice\n"
				      "0::/system.slice/comfyui.service\n";
	const struct {
		const char *text;
		const struct cg_mounts *m;
		int r;
		const char *path;
		enum cg_version v;
	} cases[] = {
		{ v1_text, hybrid, 0, "/system.slice/comfyui.service", CG_V1 },
		{ v1_text, v2, 0, "/system.slice/comfyui.service", CG_V2 },
		{ v1_text, v2_nomem, -ENODATA, "", 0 },
		{ "0::/comfy.slice/comfyui.service\n", v2, 0, "/comfy.slice/comfyui.service", CG_V2 },
		{ "0::/comfy.slice/comfyui.service", v2, 0, "/comfy.slice/comfyui.service", CG_V2 },
		{ "0::/\n", v2, 0, "/", CG_V2 },
		{ "0::/a:b:c\n", v2, 0, "/a:b:c", CG_V2 },
		{ "11:blkio,memory,pids:/x\n", hybrid, 0, "/x", CG_V1 },
		{ "11:blkio,memoryx:/x\n0::/y\n", hybrid, -ENODATA, "", 0 },
		{ "0::/comfy.slice/comfyui.service\n", hybrid, -ENODATA, "", 0 },
		{ "4:memory:/x\n", v2, -ENODATA, "", 0 },
		{ "", v2, -ENODATA, "", 0 },
		{ "garbage\n::\nx:memory:/a\n:memory:/b\n", hybrid, -ENODATA, "", 0 },
		{ "1::/x\n", v2, -ENODATA, "", 0 },
		{ "4:memory:\n", hybrid, -EPROTO, "", 0 },
		{ "4:memory:relative\n", hybrid, -EPROTO, "", 0 },
		{ "0::/comfy.slice/old.service (deleted)\n", v2, -ENOENT, "", 0 },
		/* The first memory line counts. */
		{ "4:memory:/a\n5:memory:/b\n", hybrid, 0, "/a", CG_V1 },
	};
	char rel[PATH_MAX];
	enum cg_version v;

	(void)state;
	v2->v2_has_memory = true;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r;

		v = 0;
		r = cg_parse_proc_cgroup(cases[i].text, cases[i].m, rel, sizeof(rel), &v);
		if (r != cases[i].r)
			fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].text, r, cases[i].r);
		assert_string_equal(rel, cases[i].path);
		if (r == 0)
			assert_int_equal(v, cases[i].v);
	}
	/* Never a truncated path. */
	assert_int_equal(cg_parse_proc_cgroup("0::/comfy.slice\n", v2, rel, 12, &v), -ENAMETOOLONG);
	assert_string_equal(rel, "");
	assert_int_equal(cg_parse_proc_cgroup("0::/comfy.slice\n", v2, rel, 13, &v), 0);
	assert_int_equal(cg_parse_proc_cgroup(NULL, v2, rel, sizeof(rel), &v), -EINVAL);
	assert_int_equal(cg_parse_proc_cgroup("0::/\n", NULL, rel, sizeof(rel), &v), -EINVAL);
	free(hybrid);
	free(v2);
	free(v2_nomem);
}

static void test_join_dir(void **state)
{
	struct cg_mounts *docker = mounts_from(PROC "/mountinfo/v1-docker");
	struct cg_mounts *v2 = mounts_from(PROC "/mountinfo/v2");
	const struct {
		const struct cg_mounts *m;
		enum cg_version v;
		const char *rel;
		int r;
		const char *dir;
	} cases[] = {
		{ v2, CG_V2, "/", 0, "/sys/fs/cgroup" },
		{ v2, CG_V2, "/comfy.slice/comfyui.service", 0, "/sys/fs/cgroup/comfy.slice/comfyui.service" },
		{ v2, CG_V2, "/../../user.slice", -EXDEV, "" },
		{ v2, CG_V2, "/a/..", -EXDEV, "" },
		{ v2, CG_V2, "/a..b/c..", 0, "/sys/fs/cgroup/a..b/c.." },
		{ v2, CG_V1, "/x", -ENODATA, "" },
		{ v2, CG_V2, "x", -EINVAL, "" },
		{ v2, 7, "/x", -EINVAL, "" },
		{ docker, CG_V1, "/docker/4f3c9a1b2e7d", 0, "/sys/fs/cgroup/memory" },
		{ docker, CG_V1, "/docker/4f3c9a1b2e7d/worker", 0, "/sys/fs/cgroup/memory/worker" },
		{ docker, CG_V1, "/docker/4f3c9a1b2e7dx", -EXDEV, "" },
		{ docker, CG_V1, "/docker/other", -EXDEV, "" },
		{ docker, CG_V1, "/", -EXDEV, "" },
		{ docker, CG_V2, "/docker/4f3c9a1b2e7d", 0, "/sys/fs/cgroup/unified" },
	};
	char dir[PATH_MAX];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = cg_join_dir(cases[i].m, cases[i].v, cases[i].rel, dir, sizeof(dir));

		if (r != cases[i].r)
			fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].rel, r, cases[i].r);
		assert_string_equal(dir, cases[i].dir);
	}
	assert_int_equal(cg_join_dir(v2, CG_V2, "/comfy.slice", dir, 26), -ENAMETOOLONG);
	assert_string_equal(dir, "");
	assert_int_equal(cg_join_dir(v2, CG_V2, "/comfy.slice", dir, 27), 0);
	assert_string_equal(dir, "/sys/fs/cgroup/comfy.slice");
	free(docker);
	free(v2);
}

/* ---------------------------------------------------------------- values */

static void test_parse_value(void **state)
{
	static const struct {
		const char *text;
		int r;
		uint64_t v;
	} cases[] = {
		{ "123\n", 0, 123 },
		{ "0", 0, 0 },
		{ "max\n", 0, CG_UNLIMITED },
		{ "9223372036854771712\n", 0, V1_UNLIMITED },
		{ "18446744073709551615\n", 0, UINT64_MAX },
		{ "18446744073709551616\n", -ERANGE, 0 },
		{ "", -EPROTO, 0 },
		{ "\n", -EPROTO, 0 },
		{ "-1\n", -EPROTO, 0 },
		{ "12 34\n", -EPROTO, 0 },
		{ "12\n34\n", -EPROTO, 0 },
		{ "maxx\n", -EPROTO, 0 },
		{ "Max\n", -EPROTO, 0 },
		{ "1k\n", -EPROTO, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint64_t v = 5;
		int r = cg_parse_value(cases[i].text, &v);

		if (r != cases[i].r)
			fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].text, r, cases[i].r);
		assert_int_equal(v, r == 0 ? cases[i].v : 5);
	}
}

static void test_v1_normalize(void **state)
{
	(void)state;
	assert_int_equal(cg_v1_normalize_limit(V1_UNLIMITED), CG_UNLIMITED);                 /* 4 KiB pages */
	assert_int_equal(cg_v1_normalize_limit(9223372036854710272ULL), CG_UNLIMITED);       /* 64 KiB pages */
	assert_int_equal(cg_v1_normalize_limit(9223372036854710271ULL), 9223372036854710271ULL);
	assert_int_equal(cg_v1_normalize_limit(UINT64_MAX), CG_UNLIMITED);
	assert_int_equal(cg_v1_normalize_limit(67108864), 67108864);
	assert_int_equal(cg_v1_normalize_limit(0), 0);
}

/* ---------------------------------------------------------------- v1 */

/* ---------------------------------------------------------------- v2 */

static void test_parse_stat_malformed(void **state)
{
	static const struct {
		const char *text;
		enum cg_version v;
		int r;
	} cases[] = {
		{ "", CG_V2, -EPROTO },
		{ "\n", CG_V1, -EPROTO },
		{ "foo 1\nbar 2\n", CG_V2, -EPROTO },
		{ "anon abc\n", CG_V2, -EPROTO },
		{ "anon 1 2\n", CG_V2, -EPROTO },
		{ "anon -1\n", CG_V2, -EPROTO },
		{ "anon\n", CG_V2, -EPROTO },
		{ "anon 99999999999999999999\n", CG_V2, -ERANGE },
		{ "total_rss 1x\n", CG_V1, -EPROTO },
		{ "anon 1\n", 0, -EINVAL },
		/* unknown keys may be anything; known ones must be numbers */
		{ "foo bar\nanon 5\n", CG_V2, 0 },
		{ "anon 5\nanon_thp 2MB\n", CG_V2, 0 },
		{ "anon 5 \n", CG_V2, 0 },
		{ "anon 5", CG_V2, 0 },
	};
	struct cg_memory m = {0};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = cg_parse_memory_stat(cases[i].text, cases[i].v, &m);

		if (r != cases[i].r)
			fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].text, r, cases[i].r);
		if (r == 0)
			assert_int_equal(m.anon_bytes, 5);
	}
	/* v1 without pgscan: no reclaim counters; v2 without them (4.x): none either. */
	assert_int_equal(cg_parse_memory_stat("rss 1\ntotal_rss 7\nswap 3\n", CG_V1, &m), 0);
	assert_int_equal(m.anon_bytes, 7);
	assert_true(m.has_swap);
	assert_int_equal(m.swap_bytes, 3);
	assert_false(m.has_reclaim);
	assert_int_equal(cg_parse_memory_stat("anon 1\npgscan 4\n", CG_V2, &m), 0);
	assert_false(m.has_reclaim);
}

static void test_parse_events(void **state)
{
	struct cg_memory m = {0};

	(void)state;
	/* Kernel before oom_group_kill (5.17) and before oom_kill (4.13). */
	assert_int_equal(cg_parse_memory_events("low 1\nhigh 2\nmax 3\noom 4\noom_kill 5\n", &m), 0);
	assert_int_equal(m.events_low, 1);
	assert_int_equal(m.events_high, 2);
	assert_int_equal(m.events_max, 3);
	assert_int_equal(m.oom_events, 4);
	assert_int_equal(m.oom_kill, 5);
	assert_int_equal(m.oom_group_kill, 0);
	assert_true(m.has_oom_kill);
	assert_int_equal(cg_parse_memory_events("low 0\nhigh 0\nmax 0\noom 9\n", &m), 0);
	assert_false(m.has_oom_kill);
	assert_int_equal(m.oom_events, 9);
	assert_int_equal(cg_parse_memory_events("", &m), -EPROTO);
	assert_int_equal(cg_parse_memory_events("oom x\n", &m), -EPROTO);
	assert_int_equal(cg_parse_memory_events("oom_kill 18446744073709551616\n", &m), -ERANGE);

	assert_int_equal(cg_parse_oom_control("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", &m), 0);
	assert_int_equal(m.oom_kill, 3);
	assert_true(m.has_oom_kill);
	assert_int_equal(cg_parse_oom_control("oom_kill_disable 0\noom_kill 3\n", &m), -EPROTO);
	assert_int_equal(cg_parse_oom_control("oom_kill_disable 0\nunder_oom 2\n", &m), -ERANGE);
	assert_int_equal(cg_parse_oom_control("under_oom yes\n", &m), -EPROTO);
	assert_int_equal(cg_parse_oom_control(NULL, &m), -EINVAL);
}

/* ---------------------------------------------------------------- ids */

/* ---------------------------------------------------------------- this machine */

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mountinfo_hybrid),
		cmocka_unit_test(test_mountinfo_v2),
		cmocka_unit_test(test_mountinfo_docker),
		cmocka_unit_test(test_mountinfo_inline),
		cmocka_unit_test(test_controllers),
		cmocka_unit_test(test_proc_cgroup),
		cmocka_unit_test(test_join_dir),
		cmocka_unit_test(test_parse_value),
		cmocka_unit_test(test_v1_normalize),
		cmocka_unit_test(test_parse_stat_malformed),
		cmocka_unit_test(test_parse_events),
	};

	return cmocka_run_group_tests_name("cgroup", tests, NULL, NULL);
}

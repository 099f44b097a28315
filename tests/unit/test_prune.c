// SPDX-License-Identifier: GPL-2.0
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>
#include "common.h"
#include "prune.h"

static void test_select(void **state)
{
	/* mtimes out of order on purpose; 10 MiB each except the newest (index 2, 40 MiB) */
	static const struct prune_item items[] = {
		{ 300, MIB(10) }, { 100, MIB(10) }, { 900, MIB(40) }, { 200, MIB(10) }, { 500, MIB(10) },
	};
	static const struct {
		uint64_t max_count, max_bytes;
		size_t removed;
		bool rm[5];
	} cases[] = {
		{ 10, 0, 0, { 0, 0, 0, 0, 0 } },               /* within budget */
		{ 3, 0, 2, { 0, 1, 0, 1, 0 } },                /* oldest two: mtimes 100, 200 */
		{ 1, 0, 4, { 1, 1, 0, 1, 1 } },                /* only the newest stays */
		{ 10, MIB(60), 2, { 0, 1, 0, 1, 0 } },         /* 80 MiB -> 60 MiB */
		{ 10, MIB(5), 4, { 1, 1, 0, 1, 1 } },          /* the newest alone is over: it stays anyway */
		{ 4, MIB(70), 1, { 0, 1, 0, 0, 0 } },          /* both limits, one removal meets both */
	};
	bool rm[5];
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(prune_select(items, 5, cases[i].max_count, cases[i].max_bytes, rm), cases[i].removed);
		for (size_t j = 0; j < 5; j++)
			if (rm[j] != cases[i].rm[j])
				fail_msg("case %zu item %zu: got %d", i, j, rm[j]);
	}
	assert_int_equal(prune_select(NULL, 5, 1, 0, rm), 0);
	assert_int_equal(prune_select(items, 0, 1, 0, rm), 0);
}

static void mk(const char *dir, const char *name, const char *file, size_t bytes, time_t mtime)
{
	char path[512];
	struct timespec ts[2] = { { mtime, 0 }, { mtime, 0 } };
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	mkdir(path, 0750);
	if (file) {
		snprintf(path, sizeof(path), "%s/%s/%s", dir, name, file);
		f = fopen(path, "w");
		assert_non_null(f);
		for (size_t i = 0; i < bytes; i++)
			fputc('x', f);
		fclose(f);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	utimensat(AT_FDCWD, path, ts, 0);
}

static void test_prune_dir(void **state)
{
	char dir[] = "/tmp/oomsentry-prune-XXXXXX", path[512], cmd[600];
	(void)state;

	assert_non_null(mkdtemp(dir));
	for (int i = 0; i < 6; i++) {
		char name[64];
		snprintf(name, sizeof(name), "20261130T14000%dZ-default-oom", i);
		mk(dir, name, "incident.json", 1000, 1000000000 + i);
	}
	mk(dir, "20261130T130000Z-not-a-report", "notes.txt", 10, 1); /* no incident.json: not ours */
	mk(dir, "lost+found", NULL, 0, 1);
	assert_int_equal(prune_incidents(dir, 2, 0), 4);
	snprintf(path, sizeof(path), "%s/20261130T140005Z-default-oom/incident.json", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/20261130T140004Z-default-oom", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/20261130T140003Z-default-oom", dir);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/20261130T130000Z-not-a-report/notes.txt", dir);
	assert_int_equal(access(path, F_OK), 0);
	snprintf(path, sizeof(path), "%s/lost+found", dir);
	assert_int_equal(access(path, F_OK), 0);
	/* by size: 2000 bytes left, budget 1500 */
	assert_int_equal(prune_incidents(dir, 10, 1500), 1);
	assert_int_equal(prune_incidents("/nonexistent/oomsentry", 1, 0), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_select),
		cmocka_unit_test(test_prune_dir),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

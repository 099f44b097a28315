// SPDX-License-Identifier: GPL-2.0
/* Unit tests for learn-store.c: what an instance learnt, kept in a file under the state directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "common.h"
#include "learn.h"
#include "learn-store.h"

static void test_store(void **state)
{
	char dir[] = "/tmp/oomsentry-learn-XXXXXX", path[512], sub[256], tmp[600];
	struct learn_stats l, back;
	struct stat st;
	FILE *f;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(learn_store_path(dir, "default", "http://127.0.0.1:8188/", path, sizeof(path)), 0);
	assert_int_equal(strncmp(path + strlen(dir), "/learn-default-127.0.0.1_8188", 30), 0);
	assert_int_equal(learn_store_path(dir, "a/../b", "https://[::1]:8189", path, sizeof(path)), 0);
	assert_null(strstr(path + strlen(dir) + 1, "/"));
	assert_int_equal(learn_store_path(dir, "x", "http://h:1", path, 10), -ENAMETOOLONG);
	assert_int_equal(learn_store_path(NULL, "x", "http://h:1", path, sizeof(path)), -EINVAL);

	/* nothing yet; then a save into a directory that does not exist yet, and back */
	snprintf(sub, sizeof(sub), "%s/state/deeper", dir);
	assert_int_equal(learn_store_path(sub, "default", "http://127.0.0.1:8188", path, sizeof(path)), 0);
	assert_int_equal(learn_store_load(path, &back), -ENOENT);
	learn_init(&l);
	learn_note_restart(&l, 1500, 9000, 200ULL << 20);
	learn_note_generation(&l, 3000, true, 700ULL << 20);
	assert_int_equal(learn_store_save(path, &l), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_not_equal(access(tmp, F_OK), 0);
	assert_int_equal(learn_store_load(path, &back), 0);
	assert_true(back.restart_stop_ms.value == 1500);
	assert_true(back.clean_cost_bytes.value == (double)(700ULL << 20));
	/* a second save replaces the first */
	learn_note_restart(&l, 500, 0, 0);
	assert_int_equal(learn_store_save(path, &l), 0);
	assert_int_equal(learn_store_load(path, &back), 0);
	assert_int_equal(back.restart_stop_ms.n, 2);

	/* a foreign file is refused, not half read */
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("not ours\n", f);
	fclose(f);
	assert_int_equal(learn_store_load(path, &back), -EINVAL);
	assert_int_equal(back.restart_stop_ms.n, 0);
	assert_int_equal(learn_store_save("relative", &l), -EINVAL);

	unlink(path);
	rmdir(sub);
	snprintf(sub, sizeof(sub), "%s/state", dir);
	rmdir(sub);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_store),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
/* statefile.c: atomic writes under the state directory, and reads that trust only our own, unshared files. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "statefile.h"

static void test_statefile(void **state)
{
	char dir[] = "/tmp/oomsentry-unit-XXXXXX", sub[256], *text;
	size_t len;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(sub, sizeof(sub), "%s/state/deeper", dir);
	assert_int_equal(statefile_read(sub, "q.json", 100, &text, &len), -ENOENT);
	assert_int_equal(statefile_write(sub, "q.json", "first"), 0);
	assert_int_equal(statefile_write(sub, "q.json", "second, longer"), 0);
	assert_int_equal(statefile_read(sub, "q.json", 100, &text, &len), 0);
	assert_string_equal(text, "second, longer");
	assert_int_equal(len, 14);
	free(text);
	assert_int_equal(statefile_read(sub, "q.json", 4, &text, &len), -EFBIG);
	{
		char path[300];
		snprintf(path, sizeof(path), "%s/q.json", sub);
		assert_int_equal(chmod(path, 0666), 0);
		/* writable by others: not trusted */
		assert_int_equal(statefile_read(sub, "q.json", 100, &text, &len), -EPERM);
	}
	assert_int_equal(statefile_remove(sub, "q.json"), 0);
	assert_int_equal(statefile_remove(sub, "q.json"), 0);
	assert_int_equal(statefile_read(sub, "q.json", 100, &text, &len), -ENOENT);
	{
		char cmd[300];
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		assert_int_equal(system(cmd), 0);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statefile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

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

/* Writes queued to the writer thread: in order, the newest text of a file wins, all on disk after the flush;
 * a write that cannot be done is reported once. */
static void test_async(void **state)
{
	char dir[] = "/tmp/oomsentry-unit-XXXXXX", *text, name[32], cmd[300];
	size_t len;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(statefile_async_error(), 0);
	for (int i = 0; i < 200; i++) {
		char body[32];

		snprintf(name, sizeof(name), "f%d.json", i % 7);
		snprintf(body, sizeof(body), "text %d", i);
		assert_int_equal(statefile_write_async(dir, name, body), 0);
	}
	statefile_flush();
	for (int k = 0; k < 7; k++) {
		char want[32];
		int last = 199 - ((199 - k) % 7);

		snprintf(name, sizeof(name), "f%d.json", k);
		snprintf(want, sizeof(want), "text %d", last);
		assert_int_equal(statefile_read(dir, name, 100, &text, &len), 0);
		assert_string_equal(text, want);
		free(text);
	}
	assert_int_equal(statefile_async_error(), 0);
	/* a directory that cannot be made: the error comes back once */
	assert_int_equal(statefile_write_async("/proc/oomsentry-unit-no", "x.json", "x"), 0);
	statefile_flush();
	assert_true(statefile_async_error() < 0);
	assert_int_equal(statefile_async_error(), 0);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_statefile),
		cmocka_unit_test(test_async),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

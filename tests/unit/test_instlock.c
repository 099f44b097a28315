// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "common.h"
#include "config.h"
#include "instlock.h"

static void test_names(void **state)
{
	static const struct {
		const char *url, *name;
	} cases[] = {
		{ "http://127.0.0.1:8188", "instance-127.0.0.1_8188.lock" },
		{ "http://127.0.0.1:8188/", "instance-127.0.0.1_8188.lock" },
		{ "https://comfy.example", "instance-comfy.example_443.lock" },
		{ "http://[::1]:8189/x", "instance-___1__8189.lock" },
		{ "http://../../etc:80", "instance-.._80.lock" }, /* the host ends at the first slash */
	};
	char buf[128];
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(instlock_name(cases[i].url, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].name);
	}
	assert_int_equal(instlock_name("no-scheme", buf, sizeof(buf)), -EINVAL);
	assert_int_equal(instlock_name("http://127.0.0.1:8188", buf, 10), -ENAMETOOLONG);
	assert_int_equal(instlock_name(NULL, buf, sizeof(buf)), -EINVAL);
}

static void test_second_holder_refused(void **state)
{
	static struct config cfg;
	char dir[] = "/tmp/oomsentry-lock-XXXXXX", err[512], cmd[128];
	int a[CONFIG_MAX_INSTANCES], b[CONFIG_MAX_INSTANCES];
	(void)state;

	assert_non_null(mkdtemp(dir));
	config_defaults(&cfg);
	snprintf(cfg.runtime_dir, sizeof(cfg.runtime_dir), "%s/run", dir);
	assert_int_equal(instlock_acquire(&cfg, a, err, sizeof(err)), 0);
	assert_true(a[0] >= 0);
	assert_int_equal(a[1], -1);
	/* a second open file description of the same lock: what a second daemon has */
	assert_int_equal(instlock_acquire(&cfg, b, err, sizeof(err)), -EBUSY);
	assert_non_null(strstr(err, "already watched by another oomsentry"));
	{
		char pid[32];
		snprintf(pid, sizeof(pid), "pid %d ", (int)getpid());
		assert_non_null(strstr(err, pid));
	}
	for (int i = 0; i < CONFIG_MAX_INSTANCES; i++)
		assert_int_equal(b[i], -1);
	/* another URL is another instance */
	snprintf(cfg.instances[0].url, sizeof(cfg.instances[0].url), "http://127.0.0.1:8189");
	assert_int_equal(instlock_acquire(&cfg, b, err, sizeof(err)), 0);
	instlock_release(b);
	snprintf(cfg.instances[0].url, sizeof(cfg.instances[0].url), "http://127.0.0.1:8188");
	instlock_release(a);
	assert_int_equal(a[0], -1);
	assert_int_equal(instlock_acquire(&cfg, b, err, sizeof(err)), 0);
	instlock_release(b);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_second_holder_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

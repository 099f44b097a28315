// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
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
#include "pidfile.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

/* tests/fixtures/proc/6217 is root's `python3 main.py ... --output-directory /srv/comfy`; nothing listens there */
#define PROC FIXTURES "/proc"

static char dir[64];

static void put(const char *name, const char *text, mode_t mode)
{
	char path[128];
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	fchmod(fd, mode);
	close(fd);
}

static int read_as(const char *name, const char *pattern, char *why, size_t len)
{
	char path[128];
	struct pidfile_expect e = { .proc_root = PROC, .cmdline_pattern = pattern };

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return pidfile_read_server(path, &e, why, len);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/oomsentry-pidfile-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];
	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static void test_parse(void **state)
{
	static const struct {
		const char *text;
		int r;
		pid_t pid;
	} cases[] = {
		{ "4242\n", 0, 4242 }, { "  4242 \r\n", 0, 4242 }, { "4242", 0, 4242 }, { "1\n", -EINVAL, 0 },
		{ "0", -EINVAL, 0 },   { "-5", -EINVAL, 0 },       { "", -EINVAL, 0 },   { "42 43", -EINVAL, 0 },
		{ "2147483648", -EINVAL, 0 }, { "4242x", -EINVAL, 0 }, { "\n", -EINVAL, 0 },
	};
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		pid_t pid = 0;
		assert_int_equal(pidfile_parse(cases[i].text, strlen(cases[i].text), &pid), cases[i].r);
		assert_int_equal(pid, cases[i].pid);
	}
	assert_int_equal(pidfile_parse(NULL, 0, NULL), -EINVAL);
}

static void test_only_the_provable_server(void **state)
{
	char why[192], path[128], target[128];
	(void)state;

	put("good.pid", "6217\n", 0644);
	assert_int_equal(read_as("good.pid", "/srv/comfy", why, sizeof(why)), 6217);
	assert_string_equal(why, "pid 6217, matched by its cmdline pattern");

	/* an unrelated process: nothing configured proves it is the server */
	assert_int_equal(read_as("good.pid", "train.py", why, sizeof(why)), -EACCES);
	assert_string_equal(why, "pid 6217 matches neither the cmdline pattern, the URL's port nor the cgroup");
	assert_int_equal(read_as("good.pid", NULL, why, sizeof(why)), -EACCES);

	/* stale: fall through to the port */
	put("stale.pid", "31999\n", 0644);
	assert_int_equal(read_as("stale.pid", "/srv/comfy", why, sizeof(why)), -ESRCH);
	assert_string_equal(why, "pid 31999 is not running (a stale file)");

	put("junk.pid", "hello\n", 0644);
	assert_int_equal(read_as("junk.pid", "/srv/comfy", why, sizeof(why)), -EINVAL);
	put("big.pid", "6217                                                                        \n", 0644);
	assert_int_equal(read_as("big.pid", "/srv/comfy", why, sizeof(why)), -EINVAL);

	put("open.pid", "6217\n", 0666);
	assert_int_equal(read_as("open.pid", "/srv/comfy", why, sizeof(why)), -EPERM);
	assert_string_equal(why, "anyone may write it");

	snprintf(path, sizeof(path), "%s/link.pid", dir);
	snprintf(target, sizeof(target), "%s/good.pid", dir);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(read_as("link.pid", "/srv/comfy", why, sizeof(why)), -ELOOP);
	assert_string_equal(why, "it is a symbolic link");

	/* a FIFO must neither block the daemon nor be read */
	snprintf(path, sizeof(path), "%s/fifo.pid", dir);
	assert_int_equal(mkfifo(path, 0644), 0);
	assert_int_equal(read_as("fifo.pid", "/srv/comfy", why, sizeof(why)), -EBADF);
	assert_string_equal(why, "it is not a regular file");

	assert_int_equal(read_as("missing.pid", "/srv/comfy", why, sizeof(why)), -ENOENT);

	if (geteuid() == 0) {
		/* owned by someone who is neither root nor the server's user (the fixture's uid is 0) */
		snprintf(path, sizeof(path), "%s/good.pid", dir);
		assert_int_equal(chown(path, 4321, 4321), 0);
		assert_int_equal(read_as("good.pid", "/srv/comfy", why, sizeof(why)), -EPERM);
		assert_string_equal(why, "its owner uid 4321 is neither root nor the server's uid 0");
		assert_int_equal(chown(path, 0, 0), 0);
		assert_int_equal(read_as("good.pid", "/srv/comfy", why, sizeof(why)), 6217);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test_setup_teardown(test_only_the_provable_server, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

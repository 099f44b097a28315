// SPDX-License-Identifier: GPL-2.0
/* resolve.c: which hosts need no lookup, and a lookup that runs off the caller's thread (polled, never waited on). */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "resolve.h"

static void test_numeric(void **state)
{
	static const struct {
		const char *host;
		bool numeric;
	} cases[] = {
		{ "127.0.0.1", true },    { "10.1.2.3", true },	     { "::1", true },	       { "[::1]", true },
		{ "fe80::1", true },      { "[fe80::1]", true },     { "localhost", false },  { "comfyui", false },
		{ "comfy.svc.local", false }, { "127.0.0", false },  { "[::1", false },      { "", false },
		{ "[]", false },          { "1.2.3.4.5", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (resolve_is_numeric(cases[i].host) != cases[i].numeric)
			fail_msg("%s: expected %d", cases[i].host, cases[i].numeric);
	}
}

static void test_localhost_resolves_off_thread(void **state)
{
	struct resolve *r = NULL;
	char addr[64] = "";
	const char *why = NULL;
	int rc = -EINPROGRESS;

	(void)state;
	assert_int_equal(resolve_start("localhost", &r), 0);
	for (int i = 0; i < 500 && rc == -EINPROGRESS; i++) {
		rc = resolve_poll(r, addr, sizeof(addr), &why);
		if (rc == -EINPROGRESS)
			usleep(10000);
	}
	assert_int_equal(rc, 0);
	assert_true(!strcmp(addr, "127.0.0.1") || !strcmp(addr, "::1"));
	assert_true(resolve_is_numeric(addr));
	resolve_free(r);
}

static void test_name_too_long(void **state)
{
	char name[400];
	struct resolve *r = NULL;

	(void)state;
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = 0;
	assert_int_equal(resolve_start(name, &r), -ENAMETOOLONG);
	resolve_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_numeric),
		cmocka_unit_test(test_localhost_resolves_off_thread),
		cmocka_unit_test(test_name_too_long),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

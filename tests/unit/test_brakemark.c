// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "brakemark.h"
#include "common.h"

#define MIB(x) ((uint64_t)(x) << 20)
#define DIR_ "/sys/fs/cgroup/comfyui.slice/comfyui.service"

static void test_round_trip(void **state)
{
	static const uint64_t saved[] = { CG_UNLIMITED, MIB(3000), 0 };
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(saved); i++) {
		struct brake_mark m = { .held = MIB(1016) + 12345, .saved = saved[i], .pid = 4242 }, back;
		_cleanup_free_ char *text = NULL;

		snprintf(m.cgroup, sizeof(m.cgroup), "%s", DIR_);
		assert_int_equal(brake_mark_to_json(&m, &text), 0);
		assert_int_equal(brake_mark_parse(text, strlen(text), &back), 0);
		assert_string_equal(back.cgroup, DIR_);
		assert_true(back.held == m.held);
		assert_true(back.saved == saved[i]);
		assert_int_equal(back.pid, 4242);
	}
	/* "max" in the file, the way memory.high itself says it */
	{
		struct brake_mark m = { .held = MIB(1), .saved = CG_UNLIMITED };
		_cleanup_free_ char *text = NULL;

		snprintf(m.cgroup, sizeof(m.cgroup), "/x");
		assert_int_equal(brake_mark_to_json(&m, &text), 0);
		assert_non_null(strstr(text, "\"saved\":\"max\""));
	}
}

static void test_refused_to_write(void **state)
{
	struct brake_mark m = { .held = MIB(1), .saved = CG_UNLIMITED };
	char *text = (char *)1;
	(void)state;

	assert_int_equal(brake_mark_to_json(&m, &text), -EINVAL); /* no cgroup */
	assert_null(text);
	snprintf(m.cgroup, sizeof(m.cgroup), "/x");
	m.held = 0;
	assert_int_equal(brake_mark_to_json(&m, &text), -EINVAL);
	m.held = CG_UNLIMITED; /* "max" is no brake */
	assert_int_equal(brake_mark_to_json(&m, &text), -EINVAL);
	m.held = MIB(1);
	memset(m.cgroup, 'a', sizeof(m.cgroup)); /* not terminated */
	assert_int_equal(brake_mark_to_json(&m, &text), -EINVAL);
	assert_int_equal(brake_mark_to_json(NULL, &text), -EINVAL);
}

static void test_refused_to_read(void **state)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"version\":1,\"cgroup\":\"/a\",\"held\":1048576,\"saved\":\"max\",\"pid\":1} trailing",
		"{\"version\":2,\"cgroup\":\"/a\",\"held\":1048576,\"saved\":\"max\",\"pid\":1}",
		"{\"cgroup\":\"/a\",\"held\":1048576,\"saved\":\"max\",\"pid\":1}",
		"{\"version\":1,\"cgroup\":\"a/b\",\"held\":1048576,\"saved\":\"max\",\"pid\":1}", /* relative */
		"{\"version\":1,\"cgroup\":\"\",\"held\":1048576,\"saved\":\"max\",\"pid\":1}",
		"{\"version\":1,\"cgroup\":7,\"held\":1048576,\"saved\":\"max\",\"pid\":1}",
		"{\"version\":1,\"cgroup\":\"/a\",\"held\":0,\"saved\":\"max\",\"pid\":1}",
		"{\"version\":1,\"cgroup\":\"/a\",\"held\":-5,\"saved\":\"max\",\"pid\":1}",
		"{\"version\":1,\"cgroup\":\"/a\",\"held\":\"1048576\",\"saved\":\"max\",\"pid\":1}",
		"{\"version\":1,\"cgroup\":\"/a\",\"held\":1048576,\"saved\":\"infinity\",\"pid\":1}",
		"{\"version\":1,\"cgroup\":\"/a\",\"held\":1048576,\"saved\":-1,\"pid\":1}",
		"{\"version\":1,\"cgroup\":\"/a\",\"held\":1048576,\"pid\":1}",
		"{\"version\":1,\"cgroup\":\"/a\",\"held\":1048576,\"saved\":\"max\"}",
		"{\"version\":1,\"cgroup\":\"/a\",\"held\":1048576,\"saved\":\"max\",\"pid\":4294967296}",
		"{\"version\":1,\"cgroup\":\"/a\",\"held\":1.5,\"saved\":\"max\",\"pid\":1}",
	};
	struct brake_mark m;
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&m, 0x5a, sizeof(m));
		if (brake_mark_parse(bad[i], strlen(bad[i]), &m) != -EBADMSG)
			fail_msg("case %zu accepted: %s", i, bad[i]);
		assert_int_equal(m.held, 0); /* zeroed, not half filled */
	}
	assert_int_equal(brake_mark_parse(NULL, 0, &m), -EBADMSG);
	assert_int_equal(brake_mark_parse("{}", 2, NULL), -EINVAL);
}

static void test_leftover(void **state)
{
	const uint64_t held = MIB(1016) + 1000; /* not a whole page: it reads back rounded down */
	static const struct {
		const char *dir;
		uint64_t current;
		enum brake_leftover want;
	} cases[] = {
		{ DIR_, MIB(1016) + 1000, BRAKE_LEFT_RESTORE },
		{ DIR_, MIB(1016), BRAKE_LEFT_RESTORE },               /* rounded down to a 4 KiB page */
		{ DIR_, MIB(1016) + 1000 - 65535, BRAKE_LEFT_RESTORE }, /* to a 64 KiB one */
		{ DIR_, MIB(1016) + 1000 - 65536, BRAKE_LEFT_CHANGED }, /* someone wrote a lower value */
		{ DIR_, MIB(1017), BRAKE_LEFT_CHANGED },                /* a higher one */
		{ DIR_, CG_UNLIMITED, BRAKE_LEFT_CHANGED },             /* someone let go already */
		{ DIR_ "/child", MIB(1016), BRAKE_LEFT_ELSEWHERE },     /* not the instance's cgroup: untouched */
		{ "/sys/fs/cgroup/other", MIB(1016), BRAKE_LEFT_ELSEWHERE },
	};
	struct brake_mark m = { .held = held, .saved = CG_UNLIMITED, .pid = 1 };
	(void)state;

	snprintf(m.cgroup, sizeof(m.cgroup), "%s", DIR_);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (brake_mark_leftover(&m, cases[i].dir, cases[i].current) != cases[i].want)
			fail_msg("case %zu: want %d", i, cases[i].want);
	assert_int_equal(brake_mark_leftover(NULL, DIR_, held), BRAKE_LEFT_ELSEWHERE);
	assert_int_equal(brake_mark_leftover(&m, NULL, held), BRAKE_LEFT_ELSEWHERE);
	assert_false(brake_high_held(0, 0));
	assert_false(brake_high_held(CG_UNLIMITED, CG_UNLIMITED));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_refused_to_write),
		cmocka_unit_test(test_refused_to_read),
		cmocka_unit_test(test_leftover),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

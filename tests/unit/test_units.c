// SPDX-License-Identifier: GPL-2.0
/* core/units.c: the one byte formatter. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "units.h"

static void test_format_bytes(void **state)
{
	static const struct {
		uint64_t v;
		const char *s;
	} cases[] = {
		{ 0, "0 B" },
		{ 17, "17 B" },
		{ 1023, "1023 B" },
		{ 1024, "1 KiB" },
		{ KIB(512), "512 KiB" },
		{ KIB(1023) + 600, "1 MiB" }, /* 1023.6 KiB rounds to 1024 KiB: shown one unit up */
		{ MIB(300), "300 MiB" },
		{ MIB(1023), "1023 MiB" },
		{ MIB(1023) + KIB(600), "1.00 GiB" },
		{ MIB(1024), "1.00 GiB" },
		{ MIB(1536), "1.50 GiB" },
		{ MIB(1825), "1.78 GiB" },
		{ GIB(1023) + MIB(1020), "1.00 TiB" },
		{ GIB(1024), "1.00 TiB" },
		{ UINT64_MAX, "16.00 EiB" },
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(format_bytes(cases[i].v, buf, sizeof(buf)), strlen(cases[i].s));
		assert_string_equal(buf, cases[i].s);
	}
	assert_int_equal(format_bytes(MIB(300), NULL, 10), -EINVAL);
	assert_int_equal(format_bytes(MIB(300), buf, 0), -EINVAL);
	assert_int_equal(format_bytes(MIB(300), buf, 4), -ENOBUFS);
	assert_string_equal(buf, "300");
	assert_int_equal(format_bytes(MIB(300), buf, 8), 7);
	assert_int_equal(format_bytes(MIB(300), buf, 7), -ENOBUFS);
}

static void test_bytes_str(void **state)
{
	char buf[BYTES_STR_MAX], small[4];

	(void)state;
	assert_string_equal(FMT_BYTES(buf, UINT64_MAX), "16.00 EiB");
	assert_true(strlen(buf) < BYTES_STR_MAX);
	/* truncated, still a string */
	assert_string_equal(FMT_BYTES(small, MIB(300)), "300");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_bytes),
		cmocka_unit_test(test_bytes_str),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "utf8.h"

static void test_escape_terminal(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "python3", "python3" },
		{ "/sys/fs/cgroup/memory/comfy.slice", "/sys/fs/cgroup/memory/comfy.slice" },
		{ "python\x1b]0;pwn\x07\n", "python\\x1b]0;pwn\\x07\\x0a" },       /* OSC retitle, BEL, a forged line */
		{ "a\x1b[2Jb", "a\\x1b[2Jb" },                                    /* clear screen */
		{ "tab\there\r", "tab\\x09here\\x0d" },
		{ "del\x7f", "del\\x7f" },
		{ "c1\xc2\x9b" "31m", "c1\\xc2\\x9b31m" },                        /* C1 CSI in UTF-8 */
		{ "nbsp\xc2\xa0ok", "nbsp\xc2\xa0ok" },                           /* U+00A0 is text */
		{ "Gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93", "Gr\xc3\xbc\xc3\x9f" "e \xe2\x9c\x93" },
		{ "bad\xff\xc3", "bad\\xff\\xc3" },                               /* invalid and truncated UTF-8 */
		{ "back\\x1b", "back\\\\x1b" },                                   /* a literal backslash cannot fake one */
		{ "", "" },
	};
	char buf[128];
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_string_equal(utf8_escape_terminal(cases[i].in, buf, sizeof(buf)), cases[i].out);
	assert_string_equal(utf8_escape_terminal(NULL, buf, sizeof(buf)), "");
	/* short buffers cut at a whole escape and stay terminated */
	assert_string_equal(utf8_escape_terminal("ab\x1b", buf, 5), "ab");
	assert_string_equal(utf8_escape_terminal("ab\x1b", buf, 7), "ab\\x1b");
	assert_string_equal(utf8_escape_terminal("\xe2\x9c\x93\xe2\x9c\x93", buf, 5), "\xe2\x9c\x93");
	assert_null(utf8_escape_terminal("x", NULL, 0));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_terminal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "lineage.h"

static struct lineage *sample(void)
{
	struct lineage *l = calloc(1, sizeof(*l));

	assert_non_null(l);
	l->home = (struct orphan_home){ .known = true, .alive = true, .pid = 5000, .start_ns = 9000000000ULL,
					.uid = 1000, .port = 8188 };
	/* a path with a newline and a percent sign must not forge a line or change on the way back */
	strcpy(l->home.exe, "/opt/Comfy UI/venv/bin/python3.11");
	strcpy(l->home.cwd, "/opt/Comfy\nUI/100%");
	strcpy(l->home.cgroup, "/system.slice/comfyui.service");
	strcpy(l->home.cmdline, "python main.py --listen 0.0.0.0");
	l->entries[0] = (struct lineage_entry){ 5010, 9001000000ULL, 5000, 9000000000ULL };
	l->entries[1] = (struct lineage_entry){ 3010, 5001000000ULL, 3000, 5000000000ULL };
	l->n = 2;
	return l;
}

static void test_round_trip(void **state)
{
	struct lineage *l = sample(), *back = calloc(1, sizeof(*back));
	char *text = NULL;
	(void)state;

	assert_int_equal(lineage_format(l, &text), 0);
	assert_null(strstr(text, "Comfy\nUI"));
	assert_non_null(strstr(text, "cwd /opt/Comfy%0AUI/100%25\n"));
	assert_non_null(strstr(text, "\n5010 9001000000 5000 9000000000\n"));
	assert_int_equal(lineage_parse(text, strlen(text), back), 0);
	assert_true(back->home.known);
	assert_false(back->home.alive); /* a file cannot say that the server still runs */
	assert_int_equal(back->home.pid, 5000);
	assert_int_equal(back->home.uid, 1000);
	assert_int_equal(back->home.port, 8188);
	assert_string_equal(back->home.exe, l->home.exe);
	assert_string_equal(back->home.cwd, l->home.cwd);
	assert_string_equal(back->home.cgroup, l->home.cgroup);
	assert_string_equal(back->home.cmdline, l->home.cmdline);
	assert_int_equal(back->n, 2);
	assert_non_null(lineage_find(back, 3010, 5001000000ULL));
	assert_int_equal(lineage_find(back, 3010, 5001000000ULL)->server_pid, 3000);
	assert_null(lineage_find(back, 3010, 5001000001ULL)); /* the pid was reused */
	assert_null(lineage_find(back, 0, 0));
	free(text);
	free(l);
	free(back);
}

static void test_no_server_yet(void **state)
{
	struct lineage *l = calloc(1, sizeof(*l)), *back = calloc(1, sizeof(*back));
	char *text = NULL;
	(void)state;

	assert_int_equal(lineage_format(l, &text), 0);
	assert_string_equal(text, "oomsentry-lineage 1\n");
	assert_int_equal(lineage_parse(text, strlen(text), back), 0);
	assert_false(back->home.known);
	assert_int_equal(back->n, 0);
	free(text);
	free(l);
	free(back);
}

static void test_malformed_proves_nothing(void **state)
{
	static const char *const bad[] = {
		"",
		"oomsentry-lineage 2\n",
		"garbage\n5010 1 5000 1\n",
		"oomsentry-lineage 1\n5010 1 5000\n",
		"oomsentry-lineage 1\n5010 1 5000 1 7\n",
		"oomsentry-lineage 1\n-5 1 5000 1\n",
		"oomsentry-lineage 1\n5010 0 5000 1\n",
		"oomsentry-lineage 1\n5010 99999999999999999999 5000 1\n",
		"oomsentry-lineage 1\n5010 1 2147483648 1\n",
		"oomsentry-lineage 1\nserver 5000 9 1000 8188\nexe /x\ncwd /y\ncgroup /z\n", /* cmdline missing */
		"oomsentry-lineage 1\nserver 5000 9 1000 8188\nexe /x\ncwd /y%0\ncgroup /z\ncmdline c\n",
		"oomsentry-lineage 1\nserver 5000 9 1000 8188\nexe /x\ncwd /y%00\ncgroup /z\ncmdline c\n",
		"oomsentry-lineage 1\nserver 5000 9 1000 70000\nexe /x\ncwd /y\ncgroup /z\ncmdline c\n",
		"oomsentry-lineage 1\nexe /x\n",
		"oomsentry-lineage 1\nserver 5000 9 1000 8188\nserver 5001 9 1000 8188\nexe /x\ncwd /y\ncgroup /z\n"
		"cmdline c\n",
	};
	struct lineage *back = calloc(1, sizeof(*back));
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		back->n = 7;
		if (lineage_parse(bad[i], strlen(bad[i]), back) != -EBADMSG)
			fail_msg("case %zu accepted: %s", i, bad[i]);
		assert_int_equal(back->n, 0);
		assert_false(back->home.known);
	}
	assert_int_equal(lineage_parse(NULL, 0, back), -EINVAL);
	assert_int_equal(lineage_parse("x", 1, NULL), -EINVAL);
	assert_int_equal(lineage_format(NULL, NULL), -EINVAL);
	free(back);
}

static void test_newer_lines_skipped_and_entries_capped(void **state)
{
	size_t cap = 64 + 40 * (LINEAGE_MAX_ENTRIES + 10), len = 0;
	struct lineage *back = calloc(1, sizeof(*back));
	char *text = malloc(cap);
	(void)state;

	len += (size_t)snprintf(text + len, cap - len, "oomsentry-lineage 1\nfuture-key whatever\n");
	for (int i = 0; i < LINEAGE_MAX_ENTRIES + 10; i++)
		len += (size_t)snprintf(text + len, cap - len, "%d 7 2 9\n", i + 10);
	assert_int_equal(lineage_parse(text, len, back), 0);
	assert_int_equal(back->n, LINEAGE_MAX_ENTRIES);
	free(text);
	free(back);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_no_server_yet),
		cmocka_unit_test(test_malformed_proves_nothing),
		cmocka_unit_test(test_newer_lines_skipped_and_entries_capped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

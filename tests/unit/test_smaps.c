// SPDX-License-Identifier: GPL-2.0
/* /proc/self/smaps as the kernel writes it, and which mappings the daemon may drop after its start. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "smaps.h"

static const char TEXT[] =
	"55d0c0a00000-55d0c0a86000 r-xp 00010000 fe:01 1234                       /usr/sbin/oomsentry\n"
	"Size:                536 kB\n"
	"Rss:                 536 kB\n"
	"Anonymous:             0 kB\n"
	"Locked:              536 kB\n"
	"VmFlags: rd ex mr mw me lo dw sd\n"
	"7f0000000000-7f0000100000 r-xp 00028000 fe:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"Rss:                1400 kB\n"
	"Anonymous:             0 kB\n"
	"Locked:               80 kB\n"
	"7f0000100000-7f0000104000 r--p 001d6000 fe:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"Rss:                  16 kB\n"
	"Anonymous:            16 kB\n"
	"7f0000104000-7f0000106000 rw-p 001da000 fe:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
	"Rss:                   8 kB\n"
	"Anonymous:             8 kB\n"
	"7f0000200000-7f0000400000 r--s 00000000 00:0e 7    anon_inode:bpf-map\n"
	"Rss:                2060 kB\n"
	"7f0000400000-7f0000500000 rw-p 00000000 00:00 0 \n"
	"Rss:                 172 kB\n"
	"Anonymous:           172 kB\n"
	"7f0000500000-7f0000600000 r--p 00000000 fe:01 55 /usr/lib/x86_64-linux-gnu/libcrypto.so.3 (deleted)\n"
	"Rss:                 300 kB\n"
	"Anonymous:             0 kB\n"
	"7f0000600000-7f0000700000 r--p 00000000 fe:01 56 /usr/lib/x86_64-linux-gnu/libm.so.6\n"
	"Anonymous:             0 kB\n"
	"7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                          [stack]\n"
	"Rss:                  72 kB\n"
	"Anonymous:            72 kB";

static void test_parse_and_rule(void **state)
{
	static const struct {
		uint64_t start, end;
		const char *perms, *path;
		bool file;
		uint64_t rss, anon, locked;
		bool droppable;
	} want[] = {
		/* the daemon's own code: the hot path, kept */
		{ 0x55d0c0a00000, 0x55d0c0a86000, "r-xp", "/usr/sbin/oomsentry", true, 536, 0, 536, false },
		/* library text with only page-cache pages: startup's pages go */
		{ 0x7f0000000000, 0x7f0000100000, "r-xp", "/usr/lib/x86_64-linux-gnu/libc.so.6", true, 1400, 0, 80, true },
		/* RELRO: read-only now, but its pages were written by relocation: dropping them would undo it */
		{ 0x7f0000100000, 0x7f0000104000, "r--p", "/usr/lib/x86_64-linux-gnu/libc.so.6", true, 16, 16, 0, false },
		/* writable data */
		{ 0x7f0000104000, 0x7f0000106000, "rw-p", "/usr/lib/x86_64-linux-gnu/libc.so.6", true, 8, 8, 0, false },
		/* the ring buffer: not a file, shared */
		{ 0x7f0000200000, 0x7f0000400000, "r--s", "anon_inode:bpf-map", false, 2060, 0, 0, false },
		/* anonymous memory, no path at all */
		{ 0x7f0000400000, 0x7f0000500000, "rw-p", "", false, 172, 172, 0, false },
		/* a library replaced by an upgrade is still the mapped inode's page cache */
		{ 0x7f0000500000, 0x7f0000600000, "r--p", "/usr/lib/x86_64-linux-gnu/libcrypto.so.3 (deleted)", true, 300, 0, 0,
		  true },
		/* nothing resident: nothing to drop */
		{ 0x7f0000600000, 0x7f0000700000, "r--p", "/usr/lib/x86_64-linux-gnu/libm.so.6", true, 0, 0, 0, false },
		{ 0x7ffc00000000, 0x7ffc00021000, "rw-p", "[stack]", false, 72, 72, 0, false },
	};
	struct smaps_mapping m;
	size_t pos = 0, i = 0;
	int r;

	(void)state;
	while ((r = smaps_next(TEXT, &pos, &m)) == 1) {
		assert_true(i < ARRAY_SIZE(want));
		assert_int_equal(m.start, want[i].start);
		assert_int_equal(m.end, want[i].end);
		assert_string_equal(m.perms, want[i].perms);
		assert_string_equal(m.path, want[i].path);
		assert_int_equal(m.file, want[i].file);
		assert_int_equal(m.rss_kib, want[i].rss);
		assert_int_equal(m.anonymous_kib, want[i].anon);
		assert_int_equal(m.locked_kib, want[i].locked);
		assert_int_equal(smaps_droppable(&m, "/usr/sbin/oomsentry"), want[i].droppable);
		i++;
	}
	assert_int_equal(r, 0);
	assert_int_equal(i, ARRAY_SIZE(want));
}

static void test_own_binary_only_by_path(void **state)
{
	struct smaps_mapping m = { .file = true, .perms = "r-xp", .path = "/usr/sbin/oomsentry", .rss_kib = 4 };

	(void)state;
	assert_false(smaps_droppable(&m, "/usr/sbin/oomsentry"));
	/* not knowing its own path, the daemon still drops nothing of it it can tell apart: only by path */
	assert_true(smaps_droppable(&m, ""));
	assert_true(smaps_droppable(&m, NULL));
}

static void test_bad_lines(void **state)
{
	static const char *bad[] = {
		"Rss: 4 kB\n",                       /* a key line where a header belongs */
		"zzzz-1000 r-xp 0 fe:01 1 /x\n",     /* not hex */
		"2000-1000 r-xp 0 fe:01 1 /x\n",     /* end before start */
		"1000-2000 r-x 0 fe:01 1 /x\n",      /* three permission letters */
		"1000-2000\n",                       /* truncated */
	};
	struct smaps_mapping m;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		size_t pos = 0;

		assert_int_equal(smaps_next(bad[i], &pos, &m), -EINVAL);
		/* the caller can go on after it */
		assert_int_equal(pos, strlen(bad[i]));
		assert_int_equal(smaps_next(bad[i], &pos, &m), 0);
	}
	/* a bad header followed by a good mapping: the good one is still read */
	{
		const char *t = "junk\n1000-2000 r-xp 0 fe:01 1 /lib/x.so\nRss: 8 kB\n";
		size_t pos = 0;

		assert_int_equal(smaps_next(t, &pos, &m), -EINVAL);
		assert_int_equal(smaps_next(t, &pos, &m), 1);
		assert_string_equal(m.path, "/lib/x.so");
		assert_int_equal(m.rss_kib, 8);
	}
}

static void test_long_path_truncated(void **state)
{
	char text[1024];
	struct smaps_mapping m;
	size_t pos = 0;

	(void)state;
	snprintf(text, sizeof(text), "1000-2000 r-xp 0 fe:01 1 /%0600d\nRss: 4 kB\n", 0);
	assert_int_equal(smaps_next(text, &pos, &m), 1);
	assert_int_equal(strlen(m.path), SMAPS_PATH_MAX - 1);
	assert_int_equal(m.rss_kib, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_and_rule),
		cmocka_unit_test(test_own_binary_only_by_path),
		cmocka_unit_test(test_bad_lines),
		cmocka_unit_test(test_long_path_truncated),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

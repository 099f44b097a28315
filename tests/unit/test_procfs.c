// SPDX-License-Identifier: GPL-2.0
/* core/procfs.c: the parsers against fixtures copied from a real 6.18 /proc (tests/fixtures/proc) and malformed
 * inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include "common.h"
#include "procfs.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif
#define PROC FIXTURES "/proc"
/* ---------------------------------------------------------------- temp trees */
/* ---------------------------------------------------------------- helpers */

static void test_next_u64(void **state)
{
	static const struct {
		const char *in;
		int base;
		int r;
		uint64_t v;
		size_t consumed;
	} cases[] = {
		{ "123", 10, 0, 123, 3 },
		{ " \t42x", 10, 0, 42, 4 },
		{ "18446744073709551615", 10, 0, UINT64_MAX, 20 },
		{ "18446744073709551616", 10, -ERANGE, 0, 0 },
		{ "-1", 10, -EPROTO, 0, 0 },
		{ "+1", 10, -EPROTO, 0, 0 },
		{ "\n5", 10, -EPROTO, 0, 0 },
		{ "", 10, -EPROTO, 0, 0 },
		{ "abc", 10, -EPROTO, 0, 0 },
		{ "1FFC:", 16, 0, 8188, 4 },
		{ "0x1F", 16, -EPROTO, 0, 0 },
		{ "g", 16, -EPROTO, 0, 0 },
		{ "1", 8, -EINVAL, 0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const char *p = cases[i].in;
		uint64_t v = 7;

		assert_int_equal(procfs_next_u64(&p, cases[i].base, &v), cases[i].r);
		if (cases[i].r == 0) {
			assert_int_equal(v, cases[i].v);
			assert_ptr_equal(p, cases[i].in + cases[i].consumed);
		} else {
			assert_ptr_equal(p, cases[i].in);
			assert_int_equal(v, 7);
		}
	}
}

/* ---------------------------------------------------------------- stat */

static void test_stat_start_ns(void **state)
{
	const char *text = "42 (x) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 4 0 12345 4096 3\n";
	struct proc_stat st;

	(void)state;
	assert_int_equal(procfs_parse_stat(text, 100, &st), 0);
	assert_int_equal(st.starttime_ticks, 12345);
	assert_int_equal(st.start_ns, 123450000000ULL);
	assert_int_equal(st.num_threads, 4);
	assert_int_equal(st.utime_ticks, 7);
	assert_int_equal(st.stime_ticks, 3);
	assert_int_equal(procfs_parse_stat(text, 1000, &st), 0);
	assert_int_equal(st.start_ns, 12345000000ULL);
	assert_int_equal(procfs_parse_stat(text, 0, &st), -EINVAL);
	assert_int_equal(procfs_parse_stat(text, -100, &st), -EINVAL);
	/* Fits in ticks, not in ns. */
	assert_int_equal(procfs_parse_stat("42 (x) R 1 42 42 0 -1 0 0 0 0 0 7 3 0 0 20 0 4 0 "
					   "18446744073709551615 4096 3\n", 100, &st), -ERANGE);
}

static void test_stat_comm(void **state)
{
	static const struct {
		const char *text;
		const char *comm;
		char st;
	} cases[] = {
		{ "7 (x)) R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", "x)", 'R' },
		{ "7 () R 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", "", 'R' },
		{ "7 ( ) S ( ) Z 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", " ) S ( ", 'Z' },
		{ "7 (a\nb) D 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", "a\nb", 'D' },
		{ "7 (kworker/u8:2-events_unbound) I 2 0 0 0 -1 69238880 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0",
		  "kworker/u8:2-events_unbound", 'I' },
		/* 70 characters: truncated to PROCFS_COMM_LEN - 1. */
		{ "7 (0123456789012345678901234567890123456789012345678901234567890123456789) S 1 1 1 0 -1 0 0 0 0 0 0 0 "
		  "0 0 20 0 1 0 5 0 0",
		  "012345678901234567890123456789012345678901234567890123456789012", 'S' },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct proc_stat st;

		assert_int_equal(procfs_parse_stat(cases[i].text, 100, &st), 0);
		assert_string_equal(st.comm, cases[i].comm);
		assert_int_equal(st.state, cases[i].st);
		assert_int_equal(st.pid, 7);
		assert_int_equal(st.ppid, cases[i].st == 'I' ? 2 : 1);
	}
}

static void test_stat_malformed(void **state)
{
	static const struct {
		const char *text;
		int r;
	} cases[] = {
		{ "", -EPROTO },
		{ "\n", -EPROTO },
		{ "abc", -EPROTO },
		{ "12", -EPROTO },
		{ "12 (x", -EPROTO },
		{ "12 x) S 1", -EPROTO },
		{ "12(x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", -EPROTO },
		{ "12 (x)", -EPROTO },
		{ "12 (x) ", -EPROTO },
		{ "12 (x) S", -EPROTO },
		{ "12 (x) 5 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", -EPROTO },
		{ "12 (x) SS 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", -EPROTO },
		/* truncated after ppid, after flags, just before rss */
		{ "12 (x) S 1", -EPROTO },
		{ "12 (x) S 1 1 1 0 -1 0", -EPROTO },
		{ "12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0", -EPROTO },
		/* non-numeric fields */
		{ "12 (x) S a 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", -EPROTO },
		{ "12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0x", -EPROTO },
		{ "12 (x) S 1 1 1 0 -1 0 0 0 0 0 1.5 0 0 0 20 0 1 0 5 0 0", -EPROTO },
		{ "12 (x) S 1 1 1 0 - 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", -EPROTO },
		/* negative where the kernel prints unsigned */
		{ "12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 -4096 0", -EPROTO },
		{ "12 (x) S -1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", -ERANGE },
		{ "12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 -1 0 5 0 0", -ERANGE },
		/* out of range */
		{ "0 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", -ERANGE },
		{ "-12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", -ERANGE },
		{ "2147483648 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", -ERANGE },
		{ "12 (x) S 2147483648 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", -ERANGE },
		{ "12 (x) S 1 1 1 0 -1 4294967296 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", -ERANGE },
		{ "12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 18446744073709551616 0", -ERANGE },
		{ "12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 99999999999999999999999", -ERANGE },
		{ "12 (x) S 1 1 1 9999999999 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5 0 0", -ERANGE },
	};
	struct proc_stat st = { .pid = 99 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = procfs_parse_stat(cases[i].text, 100, &st);

		if (r != cases[i].r)
			fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].text, r, cases[i].r);
		assert_int_equal(st.pid, 99); /* untouched on failure */
	}
	assert_int_equal(procfs_parse_stat(NULL, 100, &st), -EINVAL);
	assert_int_equal(procfs_parse_stat("1 (x) S", 100, NULL), -EINVAL);
}

/* ---------------------------------------------------------------- status */

static void test_status_inline(void **state)
{
	const char *text = "Name:\t a\\nb\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t300\nPid:\t301\nPPid:\t1\n"
			   "Uid:\t1000\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\nNSpid:\t301\t17\t5\n"
			   "VmRSS:\t18014398509481983 kB\nRssAnon:\t1 kB\nVmSwap:\t  2048 kB\n";
	struct proc_status s;

	(void)state;
	assert_int_equal(procfs_parse_status(text, &s), 0);
	assert_string_equal(s.name, " a\\nb");
	assert_int_equal(s.tgid, 300);
	assert_int_equal(s.ppid, 1);
	assert_int_equal(s.uid_real, 1000);
	assert_int_equal(s.uid_effective, 0);
	assert_int_equal(s.nspid_count, 3);
	assert_int_equal(s.nspid[2], 5);
	assert_int_equal(s.vm_rss_bytes, 18014398509481983ULL * 1024);
	assert_int_equal(s.rss_anon_bytes, 1024);
	assert_int_equal(s.vm_swap_bytes, 2048ULL * 1024);
	assert_true(s.has_memory);

	/* No NSpid (kernel < 4.1): count 0, not an error. */
	assert_int_equal(procfs_parse_status("Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t0\t0\t0\t0\n", &s), 0);
	assert_int_equal(s.nspid_count, 0);
	assert_false(s.has_memory);
	/* No trailing newline. */
	assert_int_equal(procfs_parse_status("Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t7\t8\t9\t10", &s), 0);
	assert_int_equal(s.uid_effective, 8);
}

static void test_status_malformed(void **state)
{
	static const struct {
		const char *text;
		int r;
	} cases[] = {
		{ "", -EPROTO },
		{ "garbage\n", -EPROTO },
		{ "Tgid:\t5\nPPid:\t1\nUid:\t0\t0\t0\t0\n", -EPROTO },
		{ "Name:\tx\nPPid:\t1\nUid:\t0\t0\t0\t0\n", -EPROTO },
		{ "Name:\tx\nTgid:\t5\nUid:\t0\t0\t0\t0\n", -EPROTO },
		{ "Name:\tx\nTgid:\t5\nPPid:\t1\n", -EPROTO },
		{ "Name:\tx\nTgid:\tabc\nPPid:\t1\nUid:\t0\t0\t0\t0\n", -EPROTO },
		{ "Name:\tx\nTgid:\t\nPPid:\t1\nUid:\t0\t0\t0\t0\n", -EPROTO },
		{ "Name:\tx\nTgid:\t0\nPPid:\t1\nUid:\t0\t0\t0\t0\n", -ERANGE },
		{ "Name:\tx\nTgid:\t5\nPPid:\t-1\nUid:\t0\t0\t0\t0\n", -ERANGE },
		{ "Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t0\n", -EPROTO },
		{ "Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t4294967296\t0\t0\t0\n", -ERANGE },
		{ "Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t0\t0\t0\t0\nNSpid:\t\n", -EPROTO },
		{ "Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t0\t0\t0\t0\nNSpid:\t5\tx\n", -EPROTO },
		{ "Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t0\t0\t0\t0\nNSpid:\t5\t0\n", -ERANGE },
		{ "Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t0\t0\t0\t0\nVmRSS:\t12\n", -EPROTO },
		{ "Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t0\t0\t0\t0\nVmRSS:\t12 MB\n", -EPROTO },
		{ "Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t0\t0\t0\t0\nVmRSS:\t12 kBx\n", -EPROTO },
		{ "Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t0\t0\t0\t0\nVmRSS:\t18014398509481984 kB\n", -ERANGE },
		{ "Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t0\t0\t0\t0\nRssShmem:\t-4 kB\n", -EPROTO },
	};
	char many[1024];
	size_t off;
	struct proc_status s;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = procfs_parse_status(cases[i].text, &s);

		if (r != cases[i].r)
			fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].text, r, cases[i].r);
	}
	/* One level more than the kernel can nest. */
	off = (size_t)snprintf(many, sizeof(many), "Name:\tx\nTgid:\t5\nPPid:\t1\nUid:\t0\t0\t0\t0\nNSpid:");
	for (int i = 0; i < PROCFS_NSPID_MAX + 1; i++)
		off += (size_t)snprintf(many + off, sizeof(many) - off, "\t%d", 100 + i);
	snprintf(many + off, sizeof(many) - off, "\n");
	assert_int_equal(procfs_parse_status(many, &s), -ERANGE);
	assert_int_equal(procfs_parse_status(NULL, &s), -EINVAL);
}

/* ---------------------------------------------------------------- cmdline, comm, exe, cwd */

static void test_strip_deleted(void **state)
{
	static const struct {
		const char *in;
		const char *out;
		bool deleted;
	} cases[] = {
		{ "/a/b (deleted)", "/a/b", true },
		{ "/a/b", "/a/b", false },
		{ " (deleted)", " (deleted)", false },
		{ "/a (deleted) (deleted)", "/a (deleted)", true },
		{ "/a(deleted)", "/a(deleted)", false },
		{ "", "", false },
	};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		assert_int_equal(procfs_strip_deleted(buf), cases[i].deleted);
		assert_string_equal(buf, cases[i].out);
	}
	assert_false(procfs_strip_deleted(NULL));
}

/* ---------------------------------------------------------------- pids */

/* ---------------------------------------------------------------- meminfo */

/* ---------------------------------------------------------------- PSI */

static void test_psi_malformed(void **state)
{
	static const struct {
		const char *text;
		int r;
	} cases[] = {
		{ "", -EPROTO },
		{ "\n\n", -EPROTO },
		{ "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n", -EPROTO },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00\n", -EPROTO },
		{ "some avg10=0.00 avg60=0.00 total=0\n", -EPROTO },
		{ "some avg10=abc avg60=0.00 avg300=0.00 total=0\n", -EPROTO },
		{ "some avg10=1. avg60=0.00 avg300=0.00 total=0\n", -EPROTO },
		{ "some avg10=.5 avg60=0.00 avg300=0.00 total=0\n", -EPROTO },
		{ "some avg10=-1.00 avg60=0.00 avg300=0.00 total=0\n", -EPROTO },
		{ "some avg10=1,50 avg60=0.00 avg300=0.00 total=0\n", -EPROTO },
		{ "some avg10=1.0000000000 avg60=0.00 avg300=0.00 total=0\n", -EPROTO },
		{ "some avg10=100.01 avg60=0.00 avg300=0.00 total=0\n", 0 },
		{ "some avg10=101.00 avg60=0.00 avg300=0.00 total=0\n", -ERANGE },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00 total=18446744073709551616\n", -ERANGE },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00 total=-5\n", -EPROTO },
		{ "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00\n", -EPROTO },
		{ "some avg60=0.00 avg10=0.00 avg300=0.00 total=0\n", -EPROTO },
	};
	struct psi psi;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		int r = procfs_parse_psi(cases[i].text, &psi);

		if (r != cases[i].r)
			fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].text, r, cases[i].r);
	}
}

/* ---------------------------------------------------------------- sockets */

static void test_tcp_line(void **state)
{
	static const struct {
		const char *line;
		int r;
		uint16_t port;
		unsigned st;
		uint64_t inode;
	} cases[] = {
		{ "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", 0 },
		{ "", 0 },
		{ "   \n", 0 },
		{ "   0: 00000000:1FFC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12852 1 "
		  "00000000d0e84aa8 100 0 0 10 0                     \n", 1, 8188, 0x0A, 12852 },
		{ "   3: 0100007F:1FFC 0100007F:A0A8 01 00000000:00000000 00:00000000 00000000     0        0 12855 1",
		  1, 8188, 0x01, 12855 },
		{ "   0: 00000000000000000000000000000000:1FFC 00000000000000000000000000000000:0000 0A "
		  "00000000:00000000 00:00000000 00000000     0        0 12853 1 0000000090fa7e74 100 0 0 10 0",
		  1, 8188, 0x0A, 12853 },
		{ "   4: 0100007F:FFFF 0100007F:A0AA 06 00000000:00000000 03:000016A8 00000000     0        0 0 3 0",
		  1, 65535, 0x06, 0 },
		/* malformed */
		{ "   0: 00000000:1FFC 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0", -EPROTO },
		{ "garbage", -EPROTO },
		{ "   0: 0000000:1FFC 00000000:0000 0A 0:0 0:0 0 0 0 12852", -EPROTO },
		{ "   0: 00000000:1FFC0 00000000:0000 0A 0:0 0:0 0 0 0 12852", -EPROTO },
		{ "   0: 00000000:1FF 00000000:0000 0A 0:0 0:0 0 0 0 12852", -EPROTO },
		{ "   0: 0000000G:1FFC 00000000:0000 0A 0:0 0:0 0 0 0 12852", -EPROTO },
		{ "   0: 00000000:1FFG 00000000:0000 0A 0:0 0:0 0 0 0 12852", -EPROTO },
		{ "   0: 000000000000:1FFC 00000000:0000 0A 0:0 0:0 0 0 0 12852", -EPROTO },
		{ "   0: 000000001FFC 00000000:0000 0A 0:0 0:0 0 0 0 12852", -EPROTO },
		{ "   0: 00000000:1FFC 00000000:0000 0G 0:0 0:0 0 0 0 12852", -EPROTO },
		{ "   0: 00000000:1FFC 00000000:0000 A 0:0 0:0 0 0 0 12852", -EPROTO },
		{ "   0: 00000000:1FFC 00000000:0000 0A 0:0 0:0 0 0 0 abc", -EPROTO },
		{ "   0: 00000000:1FFC 00000000:0000 0A 0:0 0:0 0 0 0 -1", -EPROTO },
		{ "   0: 00000000:1FFC 00000000:0000 0A 0:0 0:0 0 0 0 18446744073709551616", -ERANGE },
		{ "   0: 00000000:1FFC 00000000:0000 0A 0:0 0:0 0 0 0 123456789012345678901234567890123", -EPROTO },
		{ "   0 00000000:1FFC 00000000:0000 0A 0:0 0:0 0 0 0 12852", -EPROTO },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint16_t port = 1;
		unsigned st = 1;
		uint64_t inode = 1;
		int r = procfs_parse_tcp_line(cases[i].line, &port, &st, &inode);

		if (r != cases[i].r)
			fail_msg("case %zu \"%s\": got %d, want %d", i, cases[i].line, r, cases[i].r);
		if (r == 1) {
			assert_int_equal(port, cases[i].port);
			assert_int_equal(st, cases[i].st);
			assert_int_equal(inode, cases[i].inode);
		}
	}
}

/* ---------------------------------------------------------------- pid namespace */
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_next_u64),
		cmocka_unit_test(test_stat_start_ns),
		cmocka_unit_test(test_stat_comm),
		cmocka_unit_test(test_stat_malformed),
		cmocka_unit_test(test_status_inline),
		cmocka_unit_test(test_status_malformed),
		cmocka_unit_test(test_strip_deleted),
		cmocka_unit_test(test_psi_malformed),
		cmocka_unit_test(test_tcp_line),
	};

	return cmocka_run_group_tests_name("procfs", tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
/* procfs-read.c: the readers, and the parsers through them, against fixtures copied from a real 6.18 /proc
 * (tests/fixtures/proc) and malformed inputs. */
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
#include "helpers.h"
#include "procfs.h"
#include "procfs-read.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif
#define PROC FIXTURES "/proc"

static char *slurp(const char *path)
{
	return fixture_text(path);
}

/* ---------------------------------------------------------------- temp trees */

static int rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static void rm_rf(const char *dir)
{
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static void mkdirf(const char *fmt, ...) _printf_(1, 2);
static void mkdirf(const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	assert_int_equal(mkdir(path, 0755), 0);
}

static void symlinkf(const char *target, const char *fmt, ...) _printf_(2, 3);
static void symlinkf(const char *target, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	assert_int_equal(symlink(target, path), 0);
}

/* A fake proc root with fd/, exe and cwd links (git fixtures cannot hold dangling "socket:[N]" links portably):
 *   6217  ComfyUI: listening sockets 12852 (tcp :8188) and 12853 (tcp6 :8188), exe deleted
 *   7001  orphaned child that inherited the tcp6 listener
 *   7002  holds only the established connection 12854 on :8188 (not a listener)
 *   7003  no fd directory (exited while we looked)
 *   7004  sshd-like listener 1075 on :22
 *   net -> fixtures' net (tcp, tcp6) */
static int make_fake_proc(void **state)
{
	char *dir = strdup("/tmp/oomsentry-test-procfs-XXXXXX");

	assert_non_null(dir);
	assert_non_null(mkdtemp(dir));
	symlinkf(PROC "/net", "%s/net", dir);
	mkdirf("%s/6217", dir);
	mkdirf("%s/6217/fd", dir);
	symlinkf("/dev/null", "%s/6217/fd/0", dir);
	symlinkf("socket:[12852]", "%s/6217/fd/3", dir);
	symlinkf("socket:[12853]", "%s/6217/fd/4", dir);
	symlinkf("pipe:[13463]", "%s/6217/fd/251", dir);
	symlinkf("/usr/bin/python3.11 (deleted)", "%s/6217/exe", dir);
	symlinkf("/srv/comfy", "%s/6217/cwd", dir);
	mkdirf("%s/7001", dir);
	mkdirf("%s/7001/fd", dir);
	symlinkf("socket:[12853]", "%s/7001/fd/9", dir);
	mkdirf("%s/7002", dir);
	mkdirf("%s/7002/fd", dir);
	symlinkf("socket:[12854]", "%s/7002/fd/5", dir);
	symlinkf("socket:[128520]", "%s/7002/fd/6", dir);
	symlinkf("socket:[12852", "%s/7002/fd/7", dir);
	mkdirf("%s/7003", dir);
	mkdirf("%s/7004", dir);
	mkdirf("%s/7004/fd", dir);
	symlinkf("socket:[1075]", "%s/7004/fd/3", dir);
	*state = dir;
	return 0;
}

static int remove_fake_proc(void **state)
{
	rm_rf(*state);
	free(*state);
	return 0;
}

/* ---------------------------------------------------------------- helpers */

static void test_read_text(void **state)
{
	char *text = NULL;
	size_t len = 0;

	(void)state;
	assert_int_equal(procfs_read_text(PROC "/6217/comm", 64, &text, &len), 0);
	assert_string_equal(text, "py) (worker\n");
	assert_int_equal(len, 12);
	free(text);
	text = NULL;
	/* Exactly at the cap is fine, one byte over is not. */
	assert_int_equal(procfs_read_text(PROC "/6217/comm", 12, &text, &len), 0);
	free(text);
	text = NULL;
	assert_int_equal(procfs_read_text(PROC "/6217/comm", 11, &text, &len), -EFBIG);
	assert_null(text);
	assert_int_equal(procfs_read_text(PROC "/nope", 64, &text, &len), -ENOENT);
	assert_int_equal(procfs_read_text(NULL, 64, &text, &len), -EINVAL);
	assert_int_equal(procfs_read_text(PROC "/6217/comm", 0, &text, &len), -EINVAL);
	/* Large file through several reallocs. */
	assert_int_equal(procfs_read_text(FIXTURES "/cgroup/v2/comfy.slice/memory.stat", 4096, &text, &len), 0);
	assert_int_equal(len, strlen(text));
	assert_true(len > 1000);
	free(text);
}

/* ---------------------------------------------------------------- stat */

static void test_stat_fixture(void **state)
{
	struct proc_stat st;

	(void)state;
	/* Real file of a process whose comm is "py) (worker". */
	assert_int_equal(procfs_read_stat(PROC, 6217, &st), 0);
	assert_int_equal(st.pid, 6217);
	assert_string_equal(st.comm, "py) (worker");
	assert_int_equal(st.state, 'S');
	assert_int_equal(st.ppid, 6216);
	assert_int_equal(st.pgrp, 6209);
	assert_int_equal(st.session, 3043);
	assert_int_equal(st.tty_nr, 0);
	assert_int_equal(st.flags, 4194368);
	assert_int_equal(st.utime_ticks, 2);
	assert_int_equal(st.stime_ticks, 2);
	assert_int_equal(st.num_threads, 1);
	assert_int_equal(st.starttime_ticks, 57925);
	assert_int_equal(st.vsize_bytes, 32604160);
	assert_int_equal(st.rss_pages, 6188);
	assert_int_equal(st.start_ns, 57925ULL * NSEC_PER_SEC / (uint64_t)sysconf(_SC_CLK_TCK));

	/* kthreadd: no mm, parent 0. */
	assert_int_equal(procfs_read_stat(PROC, 2, &st), 0);
	assert_string_equal(st.comm, "kthreadd");
	assert_int_equal(st.ppid, 0);
	assert_int_equal(st.flags, 2129984);
	assert_int_equal(st.vsize_bytes, 0);
	assert_int_equal(st.rss_pages, 0);
	assert_int_equal(st.starttime_ticks, 20);

	assert_int_equal(procfs_read_stat(PROC, 1, &st), 0);
	assert_string_equal(st.comm, "systemd");
	assert_int_equal(st.pgrp, 1);
	assert_int_equal(st.vsize_bytes, 171352064);
	assert_int_equal(st.rss_pages, 3301);

	/* A process that exited between readdir and read. */
	assert_int_equal(procfs_read_stat(PROC, 5555, &st), -ENOENT);
	assert_int_equal(procfs_read_stat(PROC, 0, &st), -EINVAL);
	assert_int_equal(procfs_read_stat(PROC, -3, &st), -EINVAL);
}

/* ---------------------------------------------------------------- status */

static void test_status_fixture(void **state)
{
	struct proc_status s;

	(void)state;
	assert_int_equal(procfs_read_status(PROC, 6217, &s), 0);
	assert_string_equal(s.name, "py) (worker");
	assert_int_equal(s.tgid, 6217);
	assert_int_equal(s.ppid, 6216);
	assert_int_equal(s.uid_real, 0);
	assert_int_equal(s.uid_effective, 0);
	/* Inside "unshare -p -f": pid 2 in its own namespace. */
	assert_int_equal(s.nspid_count, 2);
	assert_int_equal(s.nspid[0], 6217);
	assert_int_equal(s.nspid[1], 2);
	assert_true(s.has_memory);
	assert_int_equal(s.vm_rss_bytes, 24852ULL * 1024);
	assert_int_equal(s.rss_anon_bytes, 20776ULL * 1024);
	assert_int_equal(s.rss_file_bytes, 4076ULL * 1024);
	assert_int_equal(s.rss_shmem_bytes, 0);
	assert_int_equal(s.vm_swap_bytes, 0);

	/* Kernel thread: no Vm lines. */
	assert_int_equal(procfs_read_status(PROC, 2, &s), 0);
	assert_string_equal(s.name, "kthreadd");
	assert_int_equal(s.ppid, 0);
	assert_false(s.has_memory);
	assert_int_equal(s.vm_rss_bytes, 0);
	assert_int_equal(s.nspid_count, 1);
	assert_int_equal(s.nspid[0], 2);

	assert_int_equal(procfs_read_status(PROC, 1, &s), 0);
	assert_string_equal(s.name, "systemd");
	assert_int_equal(s.vm_rss_bytes, 13780ULL * 1024);
	assert_int_equal(s.rss_shmem_bytes, 6600ULL * 1024);

	assert_int_equal(procfs_read_status(PROC, 5555, &s), -ENOENT);
}

/* ---------------------------------------------------------------- cmdline, comm, exe, cwd */

static void test_cmdline(void **state)
{
	static const char full[] = "/usr/bin/python3 main.py --listen 0.0.0.0 --port 8188 --output-directory /srv/comfy out";
	static const struct {
		size_t len;
		const char *want;
	} cases[] = {
		{ 256, full },
		{ sizeof(full), full },
		{ sizeof(full) - 1, "/usr/bin/python3 main.py --listen 0.0.0.0 --port 8188 --output-directory /srv/comfy ou" },
		{ 17, "/usr/bin/python3" },
		{ 18, "/usr/bin/python3" }, /* the separator after argv[0] is trimmed */
		{ 11, "/usr/bin/p" },
		{ 1, "" },
	};
	char buf[256];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(buf, 'X', sizeof(buf));
		assert_int_equal(procfs_read_cmdline(PROC, 6217, buf, cases[i].len), (int)strlen(cases[i].want));
		assert_string_equal(buf, cases[i].want);
	}
	/* Kernel thread: empty cmdline. */
	assert_int_equal(procfs_read_cmdline(PROC, 2, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(procfs_read_cmdline(PROC, 1, buf, sizeof(buf)), 17);
	assert_string_equal(buf, "/sbin/init splash");
	assert_int_equal(procfs_read_cmdline(PROC, 5555, buf, sizeof(buf)), -ENOENT);
	assert_string_equal(buf, "");
	assert_int_equal(procfs_read_cmdline(PROC, 6217, buf, 0), -EINVAL);
}

static void test_cmdline_to_string(void **state)
{
	static const struct {
		const char *raw;
		size_t raw_len;
		size_t len;
		const char *want;
	} cases[] = {
		{ "a\0b\0", 4, 16, "a b" },
		{ "a\tb\nc\x7f" "d", 7, 16, "a b c d" },
		{ "\0\0\0", 3, 16, "" },
		{ "", 0, 16, "" },
		{ "abc", 3, 3, "ab" },
		{ "a\0\0\0b", 5, 16, "a   b" },
		{ "\xc3\xa9t\xc3\xa9", 6, 16, "\xc3\xa9t\xc3\xa9" },
	};
	char buf[16];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		assert_int_equal(procfs_cmdline_to_string(cases[i].raw, cases[i].raw_len, buf, cases[i].len),
				 (int)strlen(cases[i].want));
		assert_string_equal(buf, cases[i].want);
	}
	/* In place, as procfs_read_cmdline does. */
	memcpy(buf, "x\0y\0", 4);
	assert_int_equal(procfs_cmdline_to_string(buf, 4, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "x y");
	assert_int_equal(procfs_cmdline_to_string(NULL, 3, buf, sizeof(buf)), -EINVAL);
	assert_int_equal(procfs_cmdline_to_string("a", 1, buf, 0), -EINVAL);
}

static void test_comm(void **state)
{
	char buf[PROCFS_COMM_LEN];

	(void)state;
	assert_int_equal(procfs_read_comm(PROC, 6217, buf, sizeof(buf)), 11);
	assert_string_equal(buf, "py) (worker");
	assert_int_equal(procfs_read_comm(PROC, 6217, buf, 4), 3);
	assert_string_equal(buf, "py)");
	assert_int_equal(procfs_read_comm(PROC, 2, buf, sizeof(buf)), 8);
	assert_string_equal(buf, "kthreadd");
	assert_int_equal(procfs_read_comm(PROC, 5555, buf, sizeof(buf)), -ENOENT);
	assert_string_equal(buf, "");
}

static void test_exe_cwd(void **state)
{
	const char *root = *state;
	char buf[64];
	bool deleted = false;

	assert_int_equal(procfs_read_exe(root, 6217, buf, sizeof(buf), &deleted), 19);
	assert_string_equal(buf, "/usr/bin/python3.11");
	assert_true(deleted);
	assert_int_equal(procfs_read_cwd(root, 6217, buf, sizeof(buf), &deleted), 10);
	assert_string_equal(buf, "/srv/comfy");
	assert_false(deleted);
	assert_int_equal(procfs_read_cwd(root, 6217, buf, sizeof(buf), NULL), 10);
	/* Too small for the whole link: an error, not a misleading prefix. */
	assert_int_equal(procfs_read_exe(root, 6217, buf, 20, &deleted), -ENAMETOOLONG);
	assert_string_equal(buf, "");
	assert_int_equal(procfs_read_cwd(root, 6217, buf, 10, &deleted), -ENAMETOOLONG);
	assert_int_equal(procfs_read_cwd(root, 6217, buf, 11, &deleted), 10);
	/* Kernel thread / gone. */
	assert_int_equal(procfs_read_exe(root, 7001, buf, sizeof(buf), &deleted), -ENOENT);
	assert_false(deleted);
	assert_int_equal(procfs_read_exe(root, 0, buf, sizeof(buf), &deleted), -EINVAL);
}

/* ---------------------------------------------------------------- pids */

static void test_list_pids(void **state)
{
	static const pid_t want[] = { 1, 2, 4242, 4243, 4244, 6217 };
	pid_t *pids = NULL;
	size_t n = 99;

	(void)state;
	/* "99" is a regular file, "net", "mountinfo", "pressure" are not numeric. */
	assert_int_equal(procfs_list_pids(PROC, &pids, &n), (int)ARRAY_SIZE(want));
	assert_int_equal(n, ARRAY_SIZE(want));
	for (size_t i = 0; i < n; i++)
		assert_int_equal(pids[i], want[i]);
	free(pids);

	assert_int_equal(procfs_list_pids(PROC "/net", &pids, &n), 0);
	assert_null(pids);
	assert_int_equal(n, 0);
	assert_int_equal(procfs_list_pids(PROC "/nope", &pids, &n), -ENOENT);
	assert_int_equal(procfs_list_pids(PROC, NULL, &n), -EINVAL);
}

static void test_list_pids_real(void **state)
{
	pid_t *pids = NULL;
	size_t n = 0;
	bool self = false;

	(void)state;
	assert_true(procfs_list_pids(NULL, &pids, &n) > 0);
	for (size_t i = 0; i < n; i++) {
		if (pids[i] == getpid())
			self = true;
		if (i)
			assert_true(pids[i - 1] < pids[i]);
	}
	assert_true(self);
	free(pids);
}

static void test_read_stat_real(void **state)
{
	struct proc_stat st;
	struct proc_status s;

	(void)state;
	assert_int_equal(procfs_read_stat(NULL, getpid(), &st), 0);
	assert_int_equal(st.pid, getpid());
	assert_int_equal(st.ppid, getppid());
	assert_int_equal(st.state, 'R');
	assert_true(st.rss_pages > 0);
	assert_int_equal(procfs_read_status(NULL, getpid(), &s), 0);
	assert_int_equal(s.tgid, getpid());
	assert_string_equal(s.name, st.comm);
	assert_true(s.has_memory);
	assert_true(s.nspid_count >= 1);
	assert_int_equal(s.nspid[s.nspid_count - 1], getpid());
}

/* ---------------------------------------------------------------- meminfo */

static void test_meminfo(void **state)
{
	struct meminfo mi;

	(void)state;
	assert_int_equal(procfs_read_meminfo(PROC, &mi), 0);
	assert_int_equal(mi.mem_total_bytes, 24683620ULL * 1024);
	assert_int_equal(mi.mem_available_bytes, 24338508ULL * 1024);
	assert_true(mi.has_mem_available);
	assert_int_equal(mi.swap_total_bytes, 0);
	assert_int_equal(mi.swap_free_bytes, 0);

	assert_int_equal(procfs_parse_meminfo("MemTotal: 1000 kB\nMemFree: 300 kB\nSwapTotal: 8 kB\nSwapFree: 4 kB\n",
					      &mi), 0);
	assert_false(mi.has_mem_available);
	assert_int_equal(mi.mem_available_bytes, 300ULL * 1024);
	assert_int_equal(mi.swap_total_bytes, 8192);
	assert_int_equal(mi.swap_free_bytes, 4096);
	/* HugePages_* have no unit and must not disturb us. */
	assert_int_equal(procfs_parse_meminfo("MemTotal: 1 kB\nHugePages_Total:       0\nMemAvailable: 1 kB", &mi), 0);

	assert_int_equal(procfs_parse_meminfo("", &mi), -EPROTO);
	assert_int_equal(procfs_parse_meminfo("MemFree: 300 kB\n", &mi), -EPROTO);
	assert_int_equal(procfs_parse_meminfo("MemTotal: abc kB\n", &mi), -EPROTO);
	assert_int_equal(procfs_parse_meminfo("MemTotal: 1000\n", &mi), -EPROTO);
	assert_int_equal(procfs_parse_meminfo("MemTotal: 1000 kB\nMemAvailable: 18014398509481984 kB\n", &mi), -ERANGE);
	assert_int_equal(procfs_parse_meminfo(NULL, &mi), -EINVAL);
	assert_int_equal(procfs_read_meminfo(PROC "/nope", &mi), -ENOENT);

	/* The real one, sanity only. */
	assert_int_equal(procfs_read_meminfo(NULL, &mi), 0);
	assert_true(mi.mem_total_bytes > 0 && mi.mem_available_bytes <= mi.mem_total_bytes);
}

/* ---------------------------------------------------------------- PSI */

static void test_psi(void **state)
{
	struct psi psi;

	(void)state;
	assert_int_equal(procfs_read_psi(PROC "/pressure/memory", &psi), 0);
	assert_float_equal(psi.some.avg10, 3.17, 1e-9);
	assert_float_equal(psi.some.avg60, 1.02, 1e-9);
	assert_float_equal(psi.some.avg300, 0.25, 1e-9);
	assert_int_equal(psi.some.total_us, 48213377);
	assert_true(psi.has_full);
	assert_float_equal(psi.full.avg10, 1.50, 1e-9);
	assert_float_equal(psi.full.avg60, 0.48, 1e-9);
	assert_float_equal(psi.full.avg300, 0.11, 1e-9);
	assert_int_equal(psi.full.total_us, 21800412);

	/* Kernel without PSI. */
	assert_int_equal(procfs_read_psi(PROC "/pressure/nope", &psi), -ENOENT);

	assert_int_equal(procfs_parse_psi("some avg10=100.00 avg60=0 avg300=0.5 total=18446744073709551615\n", &psi), 0);
	assert_false(psi.has_full);
	assert_float_equal(psi.some.avg10, 100.0, 1e-9);
	assert_float_equal(psi.some.avg300, 0.5, 1e-9);
	assert_int_equal(psi.some.total_us, UINT64_MAX);
}

/* ---------------------------------------------------------------- sockets */

static void test_tcp_listeners(void **state)
{
	char *tcp = slurp(PROC "/net/tcp"), *tcp6 = slurp(PROC "/net/tcp6");
	uint64_t inodes[8] = {0};

	(void)state;
	/* Listener on 0.0.0.0:8188; the established pair and the TIME_WAIT on 8188 do not count. */
	assert_int_equal(procfs_parse_tcp_listeners(tcp, 8188, inodes, ARRAY_SIZE(inodes)), 1);
	assert_int_equal(inodes[0], 12852);
	assert_int_equal(procfs_parse_tcp_listeners(tcp6, 8188, inodes, ARRAY_SIZE(inodes)), 1);
	assert_int_equal(inodes[0], 12853);
	assert_int_equal(procfs_parse_tcp_listeners(tcp, 22, inodes, ARRAY_SIZE(inodes)), 1);
	assert_int_equal(inodes[0], 1075);
	assert_int_equal(procfs_parse_tcp_listeners(tcp, 41128, inodes, ARRAY_SIZE(inodes)), 0);
	assert_int_equal(procfs_parse_tcp_listeners(tcp, 1234, inodes, ARRAY_SIZE(inodes)), 0);
	assert_int_equal(procfs_parse_tcp_listeners(tcp, 8188, NULL, 0), 0);
	assert_int_equal(procfs_parse_tcp_listeners(tcp, 8188, NULL, 1), -EINVAL);
	assert_int_equal(procfs_parse_tcp_listeners("", 8188, inodes, 8), 0);
	assert_int_equal(procfs_parse_tcp_listeners("  sl local\n 0: bad\n", 8188, inodes, 8), -EPROTO);

	assert_int_equal(procfs_listening_inodes(PROC, 8188, inodes, ARRAY_SIZE(inodes)), 2);
	assert_int_equal(inodes[0], 12852);
	assert_int_equal(inodes[1], 12853);
	assert_int_equal(procfs_listening_inodes(PROC, 9464, inodes, ARRAY_SIZE(inodes)), 2);
	assert_int_equal(inodes[0], 13001);
	assert_int_equal(inodes[1], 13002);
	/* Capped at max. */
	assert_int_equal(procfs_listening_inodes(PROC, 8188, inodes, 1), 1);
	assert_int_equal(inodes[0], 12852);
	assert_int_equal(procfs_listening_inodes(PROC "/nope", 8188, inodes, 1), -ENOENT);
	free(tcp);
	free(tcp6);
}

static void test_port_owners(void **state)
{
	const char *root = *state;
	const uint64_t listen8188[] = { 12852, 12853 };
	pid_t pids[8] = {0};

	assert_int_equal(procfs_pid_has_socket_inode(root, 6217, listen8188, 2), 1);
	assert_int_equal(procfs_pid_has_socket_inode(root, 7001, listen8188, 2), 1);
	/* Established connection, lookalike inodes and a broken link: none is the listener. */
	assert_int_equal(procfs_pid_has_socket_inode(root, 7002, listen8188, 2), 0);
	assert_int_equal(procfs_pid_has_socket_inode(root, 7003, listen8188, 2), -ENOENT);
	assert_int_equal(procfs_pid_has_socket_inode(root, 7004, listen8188, 2), 0);
	assert_int_equal(procfs_pid_has_socket_inode(root, 6217, listen8188, 0), 0);
	assert_int_equal(procfs_pid_has_socket_inode(root, 0, listen8188, 2), -EINVAL);

	/* The server and the orphan that inherited its socket; 7003 (gone) is skipped quietly. */
	assert_int_equal(procfs_find_port_owners(root, 8188, pids, ARRAY_SIZE(pids)), 2);
	assert_int_equal(pids[0], 6217);
	assert_int_equal(pids[1], 7001);
	assert_int_equal(procfs_find_port_owners(root, 8188, pids, 1), 1);
	assert_int_equal(pids[0], 6217);
	assert_int_equal(procfs_find_port_owners(root, 22, pids, ARRAY_SIZE(pids)), 1);
	assert_int_equal(pids[0], 7004);
	/* 9464 listeners exist but nobody in this tree holds them. */
	assert_int_equal(procfs_find_port_owners(root, 9464, pids, ARRAY_SIZE(pids)), 0);
	assert_int_equal(procfs_find_port_owners(root, 1234, pids, ARRAY_SIZE(pids)), 0);
	/* by inode (what sock_diag reports), without reading net/tcp */
	assert_int_equal(procfs_find_socket_owners(root, listen8188, 2, pids, ARRAY_SIZE(pids)), 2);
	assert_int_equal(pids[0], 6217);
	assert_int_equal(pids[1], 7001);
	/* 12852 alone: 7002's lookalikes (128520, an unterminated link) are not it */
	assert_int_equal(procfs_find_socket_owners(root, listen8188, 1, pids, ARRAY_SIZE(pids)), 1);
	assert_int_equal(pids[0], 6217);
	assert_int_equal(procfs_find_socket_owners(root, listen8188, 0, pids, ARRAY_SIZE(pids)), 0);
	assert_int_equal(procfs_find_socket_owners(root, NULL, 2, pids, ARRAY_SIZE(pids)), -EINVAL);
}

static void test_port_owners_real(void **state)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof(sa);
	pid_t pids[16];
	bool self = false;
	int fd, n;

	(void)state;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 1), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
	n = procfs_find_port_owners(NULL, ntohs(sa.sin_port), pids, ARRAY_SIZE(pids));
	assert_true(n >= 1);
	for (int i = 0; i < n; i++)
		self |= pids[i] == getpid();
	assert_true(self);
	close(fd);
}

/* ---------------------------------------------------------------- pid namespace */

static void test_pidns(void **state)
{
	struct pidns_info ns;
	struct stat sb;

	(void)state;
	assert_int_equal(procfs_read_pidns(PROC, 6217, &ns), 0);
	assert_int_equal(stat(PROC "/6217/ns/pid", &sb), 0);
	assert_int_equal(ns.dev, (uint64_t)sb.st_dev);
	assert_int_equal(ns.ino, (uint64_t)sb.st_ino);
	assert_int_equal(ns.level, 1);
	assert_int_equal(procfs_read_pidns(PROC, 2, &ns), -ENOENT);
	assert_int_equal(procfs_read_pidns(PROC, -1, &ns), -EINVAL);

	assert_int_equal(procfs_self_pidns(&ns), 0);
	assert_int_equal(stat("/proc/self/ns/pid", &sb), 0);
	assert_int_equal(ns.dev, (uint64_t)sb.st_dev);
	assert_int_equal(ns.ino, (uint64_t)sb.st_ino);
	assert_true(ns.level < PROCFS_NSPID_MAX);
}

/* Local addresses: host-order hex words back to network byte order; the URL's address or the wildcard serve. */
static void test_tcp_addresses(void **state)
{
	struct procfs_addr a, want;
	uint16_t port;
	unsigned st;
	uint64_t ino, inodes[8];
	int n;

	(void)state;
	assert_int_equal(procfs_parse_tcp_line_addr("   2: 0100007F:1FFC 00000000:0000 0A 00000000:00000000 00:00000000 "
						    "00000000     0        0 777 1 0000000000000000 100 0 0 10 0",
						    &port, &st, &ino, &a), 1);
	assert_int_equal(a.len, 4);
	assert_memory_equal(a.bytes, ((uint8_t[]){ 127, 0, 0, 1 }), 4);
	assert_int_equal(port, 8188);
	assert_int_equal(procfs_parse_tcp_line_addr("   1: 00000000000000000000000001000000:24F8 "
						    "00000000000000000000000000000000:0000 0A 00000000:00000000 "
						    "00:00000000 00000000   998        0 13002 1 0000000000000000 100 0 0 "
						    "10 0", &port, &st, &ino, &a), 1);
	assert_int_equal(a.len, 16);
	assert_memory_equal(a.bytes, ((uint8_t[]){ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }), 16);

	assert_int_equal(procfs_addr_from_host("localhost", &want), 0);
	assert_memory_equal(want.bytes, ((uint8_t[]){ 127, 0, 0, 1 }), 4);
	assert_int_equal(procfs_addr_from_host("[::1]", &want), 0);
	assert_int_equal(want.len, 16);
	assert_int_equal(procfs_addr_from_host("comfy.internal", &want), -EINVAL);
	/* the fixture's 8188 listeners are on the wildcard: they serve 127.0.0.3 too */
	assert_int_equal(procfs_addr_from_host("127.0.0.3", &want), 0);
	n = procfs_listening_inodes_on(FIXTURES "/proc", 8188, &want, inodes, 8);
	assert_int_equal(n, procfs_listening_inodes(FIXTURES "/proc", 8188, inodes, 8));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_text),
		cmocka_unit_test(test_stat_fixture),
		cmocka_unit_test(test_status_fixture),
		cmocka_unit_test(test_cmdline),
		cmocka_unit_test(test_cmdline_to_string),
		cmocka_unit_test(test_comm),
		cmocka_unit_test_setup_teardown(test_exe_cwd, make_fake_proc, remove_fake_proc),
		cmocka_unit_test(test_list_pids),
		cmocka_unit_test(test_list_pids_real),
		cmocka_unit_test(test_read_stat_real),
		cmocka_unit_test(test_meminfo),
		cmocka_unit_test(test_psi),
		cmocka_unit_test(test_tcp_listeners),
		cmocka_unit_test(test_tcp_addresses),
		cmocka_unit_test_setup_teardown(test_port_owners, make_fake_proc, remove_fake_proc),
		cmocka_unit_test(test_port_owners_real),
		cmocka_unit_test(test_pidns),
	};

	return cmocka_run_group_tests_name("procfs", tests, NULL, NULL);
}

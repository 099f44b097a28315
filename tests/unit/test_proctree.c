// SPDX-License-Identifier: GPL-2.0
/* proctree over a fake /proc built at run time under a mkdtemp directory (each test changes it: exec, pid reuse,
 * new processes), with a fake cgroup2 mount next to it:
 *
 *   1 systemd
 *   ├─ 100 bash ── 200 python3 (the ComfyUI server) ─┬─ 201 python3 (worker)
 *   │                                                 └─ 202 sh ── 300 ffmpeg
 *   ├─ 400 comfyui-mgr
 *   ├─ 500 nginx ── 501 nginx
 *   ├─ 600 cron (cgroup /watched.slice/cron.service) ── 601 sleep
 *   ├─ 700 postgres (cgroup /watched.slice2/pg.service)
 *   └─ getpid() python3 (this test: never tracked by the scan)
 *   999: a broken stat file; "self": not a pid
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <cmocka.h>
#include "common.h"
#include "procfs-read.h"
#include "cgroup.h"
#include "orphans.h"
#include "proctree.h"
#include "oomsentry/events.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

#define S(x) ((uint64_t)(x) * NSEC_PER_SEC)

/* short buffers, so that the compiler can see every path built from them fits in PATH_MAX */
static char tmp[64];    /* the mkdtemp directory */
static char root[80];   /* tmp/proc */
static char cgmnt[80];  /* tmp/cg: the fake cgroup2 mount */
static struct cg_mounts mounts;
static struct proctree *t;
static struct proctree *t2; /* a second table when a test needs one; teardown frees both */
static char buf[256];

/* ---------------------------------------------------------------- the fake /proc */

static void write_file(const char *text, size_t len, const char *fmt, ...) _printf_(3, 4);
static void write_file(const char *text, size_t len, const char *fmt, ...)
{
	char path[PATH_MAX];
	va_list ap;
	FILE *f;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static void mkdir_p(const char *path)
{
	char p[PATH_MAX];

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s == '/') {
			*s = 0;
			mkdir(p, 0755);
			*s = '/';
		}
	}
	mkdir(p, 0755);
}

static uint64_t start_ticks(pid_t pid)
{
	return 10000 + (uint64_t)pid;
}

/* What procfs_read_stat makes of start_ticks(pid). */
static uint64_t start_ns_of(uint64_t ticks)
{
	long tck = sysconf(_SC_CLK_TCK);

	return ticks * NSEC_PER_SEC / (uint64_t)(tck > 0 ? tck : 100);
}

/* (Re)writes pid's stat, status, cmdline, exe, cwd and, with cgroup_rel, its cgroup file. cmdline: arguments
 * separated by '|', written NUL-separated as the kernel does. */
static void fake_proc_at(pid_t pid, pid_t ppid, const char *comm, uint64_t ticks, uint64_t rss_kb,
			 const char *cmdline, const char *cgroup_rel)
{
	char dir[128], text[1024], link[PATH_MAX];
	int n;

	snprintf(dir, sizeof(dir), "%s/%d", root, pid);
	mkdir(dir, 0755);
	n = snprintf(text, sizeof(text),
		     "%d (%s) S %d %d %d 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 %llu 123456789 %llu 18446744073709551615 "
		     "0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
		     pid, comm, ppid, pid, 1, (unsigned long long)ticks, (unsigned long long)(rss_kb / 4));
	write_file(text, (size_t)n, "%s/stat", dir);
	n = snprintf(text, sizeof(text),
		     "Name:\t%s\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t%d\nNgid:\t0\nPid:\t%d\nPPid:\t%d\n"
		     "TracerPid:\t0\nUid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\nNSpid:\t%d\n"
		     "VmPeak:\t  999999 kB\nVmRSS:\t%8llu kB\nRssAnon:\t%8llu kB\nThreads:\t1\n",
		     comm, pid, pid, ppid, pid, (unsigned long long)rss_kb, (unsigned long long)rss_kb);
	write_file(text, (size_t)n, "%s/status", dir);
	n = snprintf(text, sizeof(text), "%s", cmdline ? cmdline : comm);
	for (int i = 0; i < n; i++)
		if (text[i] == '|')
			text[i] = 0;
	write_file(text, (size_t)n + 1, "%s/cmdline", dir);
	n = snprintf(text, sizeof(text), "%s\n", comm);
	write_file(text, (size_t)n, "%s/comm", dir);
	snprintf(link, sizeof(link), "%s/exe", dir);
	unlink(link);
	snprintf(text, sizeof(text), "/usr/bin/%s", comm);
	assert_int_equal(symlink(text, link), 0);
	snprintf(link, sizeof(link), "%s/cwd", dir);
	unlink(link);
	assert_int_equal(symlink("/srv/comfy", link), 0);
	if (cgroup_rel) {
		n = snprintf(text, sizeof(text), "0::%s\n", cgroup_rel);
		write_file(text, (size_t)n, "%s/cgroup", dir);
		snprintf(link, sizeof(link), "%s%s", cgmnt, cgroup_rel);
		mkdir_p(link);
	}
}

static void fake_proc(pid_t pid, pid_t ppid, const char *comm, uint64_t rss_kb, const char *cmdline,
		      const char *cgroup_rel)
{
	fake_proc_at(pid, ppid, comm, start_ticks(pid), rss_kb, cmdline, cgroup_rel);
}

static int rm_cb(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)type;
	(void)ftw;
	return remove(path) < 0 ? -1 : 0;
}

static void fake_gone(pid_t pid)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof(dir), "%s/%d", root, pid);
	nftw(dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

static int setup(void **state)
{
	(void)state;
	snprintf(tmp, sizeof(tmp), "/tmp/test_proctree.XXXXXX");
	if (!mkdtemp(tmp))
		return -1;
	snprintf(root, sizeof(root), "%s/proc", tmp);
	snprintf(cgmnt, sizeof(cgmnt), "%s/cg", tmp);
	mkdir(root, 0755);
	mkdir(cgmnt, 0755);
	memset(&mounts, 0, sizeof(mounts));
	mounts.has_v2 = true;
	mounts.v2_has_memory = true;
	snprintf(mounts.v2, sizeof(mounts.v2), "%s", cgmnt);
	snprintf(mounts.v2_root, sizeof(mounts.v2_root), "/");

	fake_proc(1, 0, "systemd", 8000, "/sbin/init|splash", "/init.scope");
	fake_proc(100, 1, "bash", 4000, "-bash", "/user.slice");
	fake_proc(200, 100, "python3", 3000000, "python3|main.py|--port|8188", "/comfy.slice/comfyui.service");
	fake_proc(201, 200, "python3", 1000000, "python3|-c|from multiprocessing.spawn import spawn_main",
		  "/comfy.slice/comfyui.service");
	fake_proc(202, 200, "sh", 1000, "/bin/sh|-c|ffmpeg -i in.mp4", "/comfy.slice/comfyui.service");
	fake_proc(300, 202, "ffmpeg", 200000, "ffmpeg|-i|in.mp4", "/comfy.slice/comfyui.service");
	fake_proc(400, 1, "comfyui-mgr", 50000, NULL, "/system.slice/mgr.service");
	fake_proc(500, 1, "nginx", 10000, NULL, "/system.slice/nginx.service");
	fake_proc(501, 500, "nginx", 10000, NULL, "/system.slice/nginx.service");
	fake_proc(600, 1, "cron", 3000, NULL, "/watched.slice/cron.service");
	fake_proc(601, 600, "sleep", 800, "sleep|60", "/watched.slice/cron.service");
	fake_proc(700, 1, "postgres", 90000, NULL, "/watched.slice2/pg.service");
	fake_proc(getpid(), 1, "python3", 5000, "python3|oomsentry-test", "/comfy.slice/comfyui.service");
	snprintf(buf, sizeof(buf), "%s/999", root);
	mkdir(buf, 0755);
	write_file("garbage\n", 8, "%s/999/stat", root);
	snprintf(buf, sizeof(buf), "%s/self", root);
	mkdir(buf, 0755);
	write_file("1 (self) S 0\n", 13, "%s/self/stat", root);

	t = proctree_new(root, NULL);
	return t ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	proctree_free(t);
	proctree_free(t2);
	t = t2 = NULL;
	nftw(tmp, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

static struct proc *add(pid_t pid)
{
	struct proc *p = proctree_add(t, pid, OS_TRACKED_SEEDED);

	if (!p)
		fail_msg("proctree_add(%d) failed", pid);
	return p;
}

static const char *death_str(pid_t pid)
{
	struct proc *p = proctree_get(t, pid);

	assert_non_null(p);
	return proc_death_str(p, buf, sizeof(buf));
}

/* ---------------------------------------------------------------- table basics */

static void test_new(void **state)
{
	struct proctree *d = t2 = proctree_new(NULL, NULL);

	(void)state;
	assert_non_null(d);
	assert_string_equal(proctree_root(d), "/proc");
	assert_int_equal(proctree_count_alive(d), 0);
	assert_null(proctree_get(d, 1));
	proctree_free(NULL);
	assert_string_equal(proctree_root(t), root);
}

static void test_add_details(void **state)
{
	struct proc *p;

	(void)state;
	p = proctree_add(t, 200, OS_TRACKED_COMM);
	assert_non_null(p);
	assert_ptr_equal(proctree_get(t, 200), p);
	assert_int_equal(p->pid, 200);
	assert_int_equal(p->ppid, 100);
	assert_int_equal(p->first_ppid, 100);
	assert_int_equal(p->pgid, 200);
	assert_int_equal(p->sid, 1);
	assert_int_equal(p->uid, 1000);
	assert_int_equal(p->start_ns, start_ns_of(start_ticks(200)));
	assert_string_equal(p->comm, "python3");
	assert_string_equal(p->cmdline, "python3 main.py --port 8188");
	assert_string_equal(p->exe, "/usr/bin/python3");
	assert_string_equal(p->cwd, "/srv/comfy");
	assert_string_equal(p->cgroup_dir, ""); /* no mounts given */
	assert_int_equal(p->cgroup_id, 0);
	assert_int_equal(p->rss_bytes, KIB(3000000));
	assert_int_equal(p->rss_peak_bytes, KIB(3000000));
	assert_int_equal(p->track_flags, OS_TRACKED_COMM);
	assert_true(p->details);
	assert_int_equal(p->server_pid, 0);
	assert_int_equal(p->server_instance, -1);
	assert_false(p->is_server);
	assert_int_equal(p->death, PROC_ALIVE);
	assert_false(p->oom_victim);
	assert_string_equal(proc_death_str(p, buf, sizeof(buf)), "running");
	assert_int_equal(proctree_count_alive(t), 1);

	/* adding it again (exec) keeps the entry and ORs the flags */
	assert_ptr_equal(proctree_add(t, 200, OS_TRACKED_CGROUP), p);
	assert_int_equal(p->track_flags, OS_TRACKED_COMM | OS_TRACKED_CGROUP);
	assert_int_equal(proctree_count_alive(t), 1);
	assert_null(proctree_get(t, 201));
	assert_null(proctree_get(t, 0));
	assert_null(proctree_get(t, -5));
}

static void test_add_with_cgroup(void **state)
{
	struct proctree *c = t2 = proctree_new(root, &mounts);
	struct proc *p;
	char dir[PATH_MAX];
	struct stat sb;

	(void)state;
	assert_non_null(c);
	p = proctree_add(c, 600, 0);
	if (!p)
		fail_msg("proctree_add(600) failed");
	snprintf(dir, sizeof(dir), "%s/watched.slice/cron.service", cgmnt);
	assert_int_equal(stat(dir, &sb), 0);
	if (strcmp(p->cgroup_dir, dir) || p->cgroup_id != (uint64_t)sb.st_ino) {
		fail_msg("cgroup_dir '%s' id %llu, want '%s' id %llu", p->cgroup_dir, (unsigned long long)p->cgroup_id,
			 dir, (unsigned long long)sb.st_ino);
	}
	/* no cgroup file: no cgroup, still added */
	snprintf(dir, sizeof(dir), "%s/500/cgroup", root);
	unlink(dir);
	p = proctree_add(c, 500, 0);
	assert_non_null(p);
	assert_string_equal(p->cgroup_dir, "");
	assert_int_equal(p->cgroup_id, 0);
}

static void test_add_gone(void **state)
{
	struct proc *p;

	(void)state;
	assert_null(proctree_add(t, 0, 0));
	assert_null(proctree_add(t, -1, 0));
	assert_null(proctree_add(t, 12345, OS_TRACKED_CHILD));
	assert_null(proctree_add(t, 999, OS_TRACKED_CHILD)); /* unparsable stat */
	assert_int_equal(proctree_count_alive(t), 0);
	/* whatever is kept for a pid that could not be read is not alive */
	p = proctree_get(t, 12345);
	if (p) {
		assert_int_not_equal(p->death, PROC_ALIVE);
		assert_string_equal(proc_death_str(p, buf, sizeof(buf)), "vanished (cause unknown without the BPF probes)");
	}
	/* it was never seen alive: no exit to record */
	assert_null(proctree_on_exit(t, 12345, 0, S(1)));
	assert_int_equal(proctree_count_alive(t), 0);
}

static void test_refresh(void **state)
{
	struct proc *p;

	(void)state;
	p = add(201);
	assert_int_equal(p->rss_bytes, KIB(1000000));
	/* RSS goes up then down: the peak stays */
	fake_proc(201, 200, "python3", 2000000, NULL, NULL);
	assert_int_equal(proctree_refresh(t, p), 0);
	assert_int_equal(p->rss_bytes, KIB(2000000));
	fake_proc(201, 200, "python3", 500000, NULL, NULL);
	assert_int_equal(proctree_refresh(t, p), 0);
	assert_int_equal(p->rss_bytes, KIB(500000));
	assert_int_equal(p->rss_peak_bytes, KIB(2000000));
	/* exec: name, command line and exe change; proctree_add on the live entry rereads them */
	fake_proc(201, 200, "ffmpeg", 100, "ffmpeg|-version", NULL);
	assert_ptr_equal(proctree_add(t, 201, OS_TRACKED_COMM), p);
	assert_string_equal(p->comm, "ffmpeg");
	assert_string_equal(p->cmdline, "ffmpeg -version");
	assert_string_equal(p->exe, "/usr/bin/ffmpeg");
	assert_int_equal(p->track_flags, OS_TRACKED_SEEDED | OS_TRACKED_COMM);
	/* gone: refresh says so, the entry stays as it was */
	fake_gone(201);
	assert_int_equal(proctree_refresh(t, p), -ENOENT);
	assert_string_equal(p->comm, "ffmpeg");
	assert_int_equal(p->death, PROC_ALIVE);
}

/* After dropped events: is an entry still its process? A zombie, another process under the pid, or none is not. */
static void test_check_alive(void **state)
{
	char path[PATH_MAX], text[1024], *s;
	struct proc *p;
	FILE *f;
	size_t n;

	(void)state;
	p = add(201);
	assert_int_equal(proctree_check_alive(t, p), 1);
	/* a zombie: its exit has been through the probes, its event (if any) is in the ring */
	snprintf(path, sizeof(path), "%s/201/stat", root);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[n] = 0;
	s = strstr(text, ") S ");
	assert_non_null(s);
	s[2] = 'Z';
	write_file(text, n, "%s", path);
	assert_int_equal(proctree_check_alive(t, p), 0);
	/* the pid belongs to a process started later */
	fake_proc_at(201, 200, "python3", start_ticks(201) + 50, 1000, NULL, NULL);
	assert_int_equal(proctree_check_alive(t, p), 0);
	fake_proc(201, 200, "python3", 1000, NULL, NULL);
	assert_int_equal(proctree_check_alive(t, p), 1);
	fake_gone(201);
	assert_int_equal(proctree_check_alive(t, p), 0);
	/* closed with its cause lost, and said so */
	proctree_mark_exit_lost(t, p, S(5));
	assert_int_equal(p->death, PROC_DEATH_UNKNOWN);
	assert_int_equal(p->exit_ns, S(5));
	assert_true(p->exit_lost);
	assert_string_equal(proc_death_str(p, buf, sizeof(buf)), "vanished (its exit event was dropped: cause unknown)");
	assert_int_equal(proctree_count_alive(t), 0);
	/* a second call changes nothing */
	proctree_mark_exit_lost(t, p, S(9));
	assert_int_equal(p->exit_ns, S(5));
}

/* ---------------------------------------------------------------- lineage */

static void test_mark_server_existing(void **state)
{
	struct proc *srv, *w, *sh, *ff, *bash, *ng;

	(void)state;
	/* seen by the /proc scan before the server was known; children before their parents on purpose */
	ff = add(300);
	sh = add(202);
	w = add(201);
	srv = add(200);
	bash = add(100);
	ng = add(500);
	assert_int_equal(ff->server_pid, 0);
	assert_int_equal(w->server_pid, 0);

	proctree_mark_server(t, srv, 1);
	assert_true(srv->is_server);
	assert_int_equal(srv->server_instance, 1);
	assert_int_equal(srv->server_pid, 0);
	for (int i = 0; i < 3; i++) {
		struct proc *c = (struct proc *[]){ w, sh, ff }[i];

		if (c->server_pid != 200 || c->server_start_ns != srv->start_ns || c->server_instance != 1)
			fail_msg("pid %d: server %d/%llu/%d, want 200/%llu/1", c->pid, c->server_pid,
				 (unsigned long long)c->server_start_ns, c->server_instance,
				 (unsigned long long)srv->start_ns);
	}
	assert_int_equal(bash->server_pid, 0);
	assert_int_equal(bash->server_instance, -1);
	assert_int_equal(ng->server_pid, 0);
	assert_int_equal(ng->server_instance, -1);
}

static void test_mark_server_skips_dead(void **state)
{
	struct proc *srv, *w, *sh, *ff;

	(void)state;
	srv = add(200);
	w = add(201);
	sh = add(202);
	ff = add(300);
	assert_non_null(proctree_on_exit(t, 202, 0, S(5)));
	proctree_mark_server(t, srv, 0);
	assert_int_equal(w->server_pid, 200);
	assert_int_equal(w->server_instance, 0);
	assert_int_equal(sh->server_pid, 0); /* dead before the server was known */
	assert_int_equal(ff->server_pid, 0); /* its parent is dead: the chain is broken */
}

static void test_lineage_on_fork(void **state)
{
	struct proc *srv, *c, *g;

	(void)state;
	fake_gone(201);
	fake_gone(202);
	fake_gone(300);
	srv = add(200);
	proctree_mark_server(t, srv, 2);
	/* the server forks a worker, the worker a helper: both inherit the lineage as they appear */
	fake_proc(210, 200, "python3", 1000, NULL, NULL);
	proctree_on_fork(t, 200, 210);
	c = proctree_get(t, 210);
	assert_non_null(c);
	assert_int_equal(c->track_flags, OS_TRACKED_CHILD);
	assert_int_equal(c->first_ppid, 200);
	assert_int_equal(c->server_pid, 200);
	assert_int_equal(c->server_start_ns, srv->start_ns);
	assert_int_equal(c->server_instance, 2);
	fake_proc(211, 210, "git", 1000, NULL, NULL);
	proctree_on_fork(t, 210, 211);
	g = proctree_get(t, 211);
	assert_non_null(g);
	assert_int_equal(g->server_pid, 200);
	assert_int_equal(g->server_instance, 2);
	assert_int_equal(proctree_count_alive(t), 3);
	/* a fork of a child already gone: nothing added */
	proctree_on_fork(t, 210, 212);
	assert_int_equal(proctree_count_alive(t), 3);
	/* an unrelated process: no lineage */
	fake_proc(510, 500, "nginx", 1000, NULL, NULL);
	proctree_on_fork(t, 500, 510);
	assert_int_equal(proctree_get(t, 510)->server_pid, 0);
	assert_int_equal(proctree_get(t, 510)->server_instance, -1);
	/* the lineage outlives the server: a child of its surviving worker still descends from it */
	assert_non_null(proctree_on_exit(t, 200, 0x0f, S(9)));
	fake_proc(213, 210, "python3", 1000, NULL, NULL);
	proctree_on_fork(t, 210, 213);
	assert_int_equal(proctree_get(t, 213)->server_pid, 200);
	assert_int_equal(proctree_get(t, 213)->server_start_ns, srv->start_ns);
}

/* The fork event is handled after the child is already visible in /proc. When the worker that forked it died in
 * between (OOM kill of the worker, crash), the child has been reparented: /proc says ppid 1. on_fork's
 * "trust the event" fix-up only applies when !c->first_ppid, but proctree_add always sets first_ppid = ppid, so the
 * child records first_ppid 1 (a daemon started by init, not an orphan) and loses the server lineage. */
static void test_fork_after_reparent(void **state)
{
	struct proc *srv, *c;

	(void)state;
	srv = add(200);
	proctree_mark_server(t, srv, 0);
	add(201);
	/* 201 forks 220, then dies before the event is read: 220 now has ppid 1 */
	fake_proc(220, 1, "python3", 1000, NULL, NULL);
	proctree_on_exit(t, 201, 9, S(3));
	proctree_on_fork(t, 201, 220);
	c = proctree_get(t, 220);
	assert_non_null(c);
	assert_int_equal(c->ppid, 1);
	assert_int_equal(c->first_ppid, 201);
	assert_int_equal(c->server_pid, 200);
	assert_int_equal(c->server_instance, 0);
}

/* ---------------------------------------------------------------- deaths */

static void test_deaths(void **state)
{
	static const struct {
		pid_t pid;
		bool oom;
		uint32_t raw;
		enum proc_death death;
		enum death_kind kind;
		const char *str;
	} cases[] = {
		{ 201, true, 9, PROC_DEATH_OOM, DEATH_OOM_KILLED, "killed by the OOM killer" },
		{ 202, false, 0x300, PROC_DEATH_EXIT, DEATH_EXITED, "exited with code 3" },
		{ 300, false, 0xf, PROC_DEATH_SIGNAL, DEATH_SIGNALED, "killed by signal 15 (SIGTERM)" },
		{ 400, false, 9, PROC_DEATH_SIGNAL, DEATH_SIGNALED, "killed by signal 9 (SIGKILL)" },
		{ 500, false, 0x86, PROC_DEATH_SIGNAL, DEATH_SIGNALED, "killed by signal 6 (SIGABRT), core dumped" },
		{ 501, false, 0, PROC_DEATH_EXIT, DEATH_EXITED, "exited with code 0" },
		{ 600, false, 0xff00, PROC_DEATH_EXIT, DEATH_EXITED, "exited with code 255" },
		/* an OOM victim that ends by another signal was not killed by the OOM killer */
		{ 601, true, 0xf, PROC_DEATH_SIGNAL, DEATH_SIGNALED, "killed by signal 15 (SIGTERM)" },
		/* a value the kernel cannot produce */
		{ 700, false, 0x10000, PROC_DEATH_UNKNOWN, DEATH_UNKNOWN, NULL },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		add(cases[i].pid);
	assert_int_equal(proctree_count_alive(t), ARRAY_SIZE(cases));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct proc *p;

		if (cases[i].oom) {
			p = proctree_on_oom_victim(t, cases[i].pid, GIB(3), S(100));
			assert_ptr_equal(p, proctree_get(t, cases[i].pid));
			assert_true(p->oom_victim);
			assert_int_equal(p->oom_ns, S(100));
			assert_int_equal(p->rss_at_oom_bytes, GIB(3));
			assert_int_equal(p->death, PROC_ALIVE);
		}
		p = proctree_on_exit(t, cases[i].pid, cases[i].raw, S(101));
		assert_non_null(p);
		assert_int_equal(p->exit_code_raw, cases[i].raw);
		assert_int_equal(p->exit_ns, S(101));
		if (p->death != cases[i].death || p->cause.kind != cases[i].kind)
			fail_msg("pid %d raw %#x: death %d kind %d, want %d %d", cases[i].pid, cases[i].raw, p->death,
				 p->cause.kind, cases[i].death, cases[i].kind);
		if (cases[i].str)
			assert_string_equal(proc_death_str(p, buf, sizeof(buf)), cases[i].str);
		assert_int_equal(proctree_count_alive(t), ARRAY_SIZE(cases) - 1 - i);
		/* a second exit for the same process is ignored */
		assert_null(proctree_on_exit(t, cases[i].pid, 0, S(102)));
		assert_int_equal(p->exit_code_raw, cases[i].raw);
	}
	assert_int_equal(proctree_count_alive(t), 0);
	/* a pid never seen */
	assert_null(proctree_on_exit(t, 4321, 0, S(1)));
	assert_int_equal(proctree_count_alive(t), 0);
	/* proc_death_str truncates safely */
	char small[8];
	assert_string_equal(proc_death_str(proctree_get(t, 201), small, sizeof(small)), "killed ");
}

static void test_oom_victim_unknown_pid(void **state)
{
	struct proc *p;

	(void)state;
	/* the victim was not tracked yet: it is added from /proc */
	p = proctree_on_oom_victim(t, 501, MIB(10), S(50));
	assert_non_null(p);
	assert_int_equal(p->pid, 501);
	assert_string_equal(p->comm, "nginx");
	assert_true(p->oom_victim);
	assert_int_equal(proctree_count_alive(t), 1);
	/* already gone from /proc: nothing to record */
	assert_null(proctree_on_oom_victim(t, 4321, MIB(10), S(50)));
	assert_int_equal(proctree_count_alive(t), 1);
}

/* seeds/003: the server "exits with code 0" right after the OOM killer took one of its children */
static void test_exit0_after_child_oom(void **state)
{
	struct proc *srv;

	(void)state;
	srv = add(200);
	proctree_mark_server(t, srv, 0);
	add(201);
	add(100);
	add(500);
	add(501);
	assert_non_null(proctree_on_oom_victim(t, 201, GIB(20), S(1000)));
	assert_non_null(proctree_on_exit(t, 201, 9, S(1000) + 1000));
	assert_string_equal(death_str(201), "killed by the OOM killer");

	/* the server, 3 s later, with code 0 */
	assert_non_null(proctree_on_exit(t, 200, 0, S(1003)));
	assert_int_equal(srv->death, PROC_DEATH_EXIT);
	assert_int_equal(srv->cause.kind, DEATH_EXIT0_AFTER_CHILD_OOM);
	assert_string_equal(death_str(200), "exited with code 0 after the OOM killer killed a child");
	/* not for a process that is not the victim's parent or server */
	assert_non_null(proctree_on_exit(t, 500, 0, S(1003)));
	assert_int_equal(proctree_get(t, 500)->cause.kind, DEATH_EXITED);
	assert_string_equal(death_str(500), "exited with code 0");
	/* nor for a non-zero exit */
	assert_non_null(proctree_on_exit(t, 100, 0x100, S(1003)));
	assert_string_equal(death_str(100), "exited with code 1");
}

static void test_exit0_long_after_child_oom(void **state)
{
	struct proc *srv;

	(void)state;
	srv = add(200);
	add(201);
	assert_non_null(proctree_on_oom_victim(t, 201, GIB(20), S(1000)));
	assert_non_null(proctree_on_exit(t, 201, 9, S(1000)));
	/* 10 s after the OOM kill is no longer "right after" */
	assert_non_null(proctree_on_exit(t, 200, 0, S(1010)));
	assert_int_equal(srv->cause.kind, DEATH_EXITED);
	assert_string_equal(death_str(200), "exited with code 0");
}

/* ---------------------------------------------------------------- pid reuse, gc */

static void test_pid_reuse(void **state)
{
	struct proc *srv, *p, *again;

	(void)state;
	srv = add(200);
	proctree_mark_server(t, srv, 3);
	p = proctree_add(t, 201, OS_TRACKED_CHILD | OS_TRACKED_COMM);
	assert_non_null(p);
	assert_int_equal(p->server_pid, 200);
	assert_non_null(proctree_on_oom_victim(t, 201, GIB(5), S(10)));
	assert_non_null(proctree_on_exit(t, 201, 9, S(11)));
	assert_int_equal(proctree_count_alive(t), 1);

	/* pid 201 comes back as another process: a shell of bash (100), started later, smaller */
	fake_proc_at(201, 100, "bash", start_ticks(201) + 5000, 2000, "bash|-c|true", NULL);
	again = proctree_add(t, 201, OS_TRACKED_SEEDED);
	assert_ptr_equal(again, p); /* the same slot, reset */
	assert_int_equal(p->death, PROC_ALIVE);
	assert_int_equal(p->cause.kind, DEATH_UNKNOWN);
	assert_false(p->oom_victim);
	assert_int_equal(p->oom_ns, 0);
	assert_int_equal(p->rss_at_oom_bytes, 0);
	assert_int_equal(p->exit_ns, 0);
	assert_int_equal(p->exit_code_raw, 0);
	assert_int_equal(p->track_flags, OS_TRACKED_SEEDED);
	assert_int_equal(p->ppid, 100);
	assert_int_equal(p->first_ppid, 100);
	assert_int_equal(p->start_ns, start_ns_of(start_ticks(201) + 5000));
	assert_string_equal(p->comm, "bash");
	assert_string_equal(p->cmdline, "bash -c true");
	assert_int_equal(p->rss_bytes, KIB(2000));
	assert_int_equal(p->rss_peak_bytes, KIB(2000)); /* not the 1 GB of the dead worker */
	assert_int_equal(p->server_pid, 0);             /* bash is not below the server */
	assert_int_equal(p->server_start_ns, 0);
	assert_int_equal(p->server_instance, -1);
	assert_false(p->is_server);
	assert_string_equal(proc_death_str(p, buf, sizeof(buf)), "running");
	assert_int_equal(proctree_count_alive(t), 2);
	/* it can die again, on its own account */
	assert_non_null(proctree_on_exit(t, 201, 0x200, S(20)));
	assert_string_equal(death_str(201), "exited with code 2");

	/* a reused server pid is no longer a server */
	assert_non_null(proctree_on_exit(t, 200, 0xf, S(21)));
	fake_proc_at(200, 1, "python3", start_ticks(200) + 9000, 1000, NULL, NULL);
	p = proctree_add(t, 200, 0);
	assert_non_null(p);
	assert_false(p->is_server);
	assert_int_equal(p->server_instance, -1);
}

/* proctree_add on a dead entry resets it before reading /proc. When the pid is still gone, the record of how the
 * process died is wiped (cause, exit time, OOM flags) and left as "vanished" with exit_ns 0, which the next gc
 * drops. instance.c:370 does exactly that: after the server dies, locate_server() finds its pid in pid_file and
 * calls daemon_track() -> proctree_add() on the dead pid. */
static void test_add_gone_keeps_dead_record(void **state)
{
	struct proc *p;

	(void)state;
	p = add(201);
	assert_non_null(proctree_on_oom_victim(t, 201, GIB(7), S(40)));
	assert_non_null(proctree_on_exit(t, 201, 9, S(41)));
	fake_gone(201);
	assert_null(proctree_add(t, 201, OS_TRACKED_SEEDED));
	assert_ptr_equal(proctree_get(t, 201), p);
	assert_int_equal(proctree_count_alive(t), 0);
	assert_int_equal(p->death, PROC_DEATH_OOM);
	assert_string_equal(proc_death_str(p, buf, sizeof(buf)), "killed by the OOM killer");
	assert_int_equal(p->exit_ns, S(41));
	assert_true(p->oom_victim);
	assert_int_equal(p->rss_at_oom_bytes, GIB(7));
}

/* The exit of a tracked process can be missed (ring buffer overflow under a fork storm; polling mode between two
 * polls) and its pid reused. proctree_add and proctree_refresh then update the live entry in place although
 * start_ns, which "with pid, identifies the process", changed: the new process inherits is_server, the OOM-victim
 * mark (a later SIGKILL reads as "killed by the OOM killer"), the lineage and the old peak RSS. */
static void test_missed_exit_pid_reuse(void **state)
{
	struct proc *srv, *p;

	(void)state;
	srv = add(200);
	proctree_mark_server(t, srv, 0);
	p = add(201);
	assert_non_null(proctree_on_oom_victim(t, 201, GIB(5), S(10)));
	/* no exit event; pid 201 is now a small process of bash */
	fake_proc_at(201, 100, "bash", start_ticks(201) + 7000, 2000, NULL, NULL);
	assert_ptr_equal(proctree_add(t, 201, OS_TRACKED_COMM), p);
	assert_int_equal(p->start_ns, start_ns_of(start_ticks(201) + 7000));
	assert_int_equal(proctree_count_alive(t), 2);
	assert_false(p->oom_victim);
	assert_int_equal(p->server_pid, 0);
	assert_int_equal(p->server_instance, -1);
	assert_int_equal(p->first_ppid, 100);
	assert_int_equal(p->rss_peak_bytes, KIB(2000));
	assert_non_null(proctree_on_exit(t, 201, 9, S(60)));
	assert_string_equal(proc_death_str(p, buf, sizeof(buf)), "killed by signal 9 (SIGKILL)");
}

static void test_gc(void **state)
{
	struct proc *p;

	(void)state;
	add(201);
	add(202);
	add(300);
	add(500);
	assert_non_null(proctree_on_exit(t, 201, 9, S(100)));
	assert_non_null(proctree_on_exit(t, 202, 0, S(200)));
	assert_non_null(proctree_on_exit(t, 300, 0, 0)); /* died at boot-relative 0 */

	/* keep 600 s: at 700 s, 201 (100 + 600) is kept, at exactly the limit */
	proctree_gc(t, S(700), S(600));
	assert_non_null(proctree_get(t, 201));
	assert_non_null(proctree_get(t, 202));
	assert_null(proctree_get(t, 300));
	proctree_gc(t, S(700) + 1, S(600));
	assert_null(proctree_get(t, 201));
	assert_non_null(proctree_get(t, 202));
	/* the living are never dropped */
	proctree_gc(t, S(1000000), 0);
	assert_null(proctree_get(t, 202));
	p = proctree_get(t, 500);
	assert_non_null(p);
	assert_int_equal(p->death, PROC_ALIVE);
	assert_int_equal(proctree_count_alive(t), 1);
	/* a pid dropped by gc comes back as a new entry */
	p = add(201);
	assert_int_equal(p->death, PROC_ALIVE);
	assert_int_equal(proctree_count_alive(t), 2);
}

/* 10,000 short-lived processes through a table of 64: dead ones go first (oldest exit first), then live ones
 * without a server; the server and its lineage stay, even past the cap; the entry that died last is kept for the
 * caller that is still handling its exit. */
static void test_cap_evicts_dead_first(void **state)
{
	struct proctree_stats st;
	struct proc *srv, *worker, *last = NULL;

	(void)state;
	proctree_set_cap(t, 64);
	srv = add(200);
	proctree_mark_server(t, srv, 0);
	worker = add(201);
	assert_int_equal(worker->server_pid, 200);
	add(500); /* alive, no server: may go once the dead are gone */
	for (int i = 0; i < 10000; i++) {
		pid_t pid = 2000 + i % 20000;
		fake_proc(pid, 100, "python3", 100, NULL, NULL);
		assert_non_null(proctree_add(t, pid, OS_TRACKED_COMM));
		last = proctree_on_exit(t, pid, 0, S(10) + (uint64_t)i);
		assert_non_null(last);
		fake_gone(pid);
		proctree_stats(t, &st);
		assert_true(st.entries <= 64);
	}
	assert_ptr_equal(proctree_get(t, 2000 + 9999), last);
	assert_non_null(proctree_get(t, 200));
	assert_non_null(proctree_get(t, 201));
	assert_non_null(proctree_get(t, 500));
	proctree_stats(t, &st);
	assert_int_equal(st.cap, 64);
	assert_true(st.evicted >= 10000 - 64);
	assert_int_equal(st.refused, 0);

	/* only live processes left: a server-less one makes room, the lineage never does */
	proctree_gc(t, S(1000000), 0);
	for (int i = 0; i < 61; i++) {
		fake_proc(30000 + i, 100, "python3", 100, NULL, NULL);
		assert_non_null(proctree_add(t, 30000 + i, OS_TRACKED_COMM));
	}
	proctree_stats(t, &st);
	assert_int_equal(st.entries, 64);
	fake_proc(31000, 100, "python3", 100, NULL, NULL);
	assert_non_null(proctree_add(t, 31000, OS_TRACKED_COMM));
	assert_null(proctree_get(t, 500)); /* the oldest server-less process went */
	assert_non_null(proctree_get(t, 200));
	assert_non_null(proctree_get(t, 201));
	proctree_stats(t, &st);
	assert_int_equal(st.entries, 64);
	assert_int_equal(st.alive, 64);
}

/* pids that share a hash bucket (1024 buckets): lookups, gc unlinking from the middle of a chain */
static void test_bucket_chain(void **state)
{
	static const pid_t pids[] = { 7, 7 + 1024, 7 + 2048, 7 + 4096 };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(pids); i++) {
		fake_proc(pids[i], 1, "python3", 1000 + i, NULL, NULL);
		assert_int_equal(add(pids[i])->pid, pids[i]);
	}
	for (size_t i = 0; i < ARRAY_SIZE(pids); i++)
		assert_int_equal(proctree_get(t, pids[i])->pid, pids[i]);
	assert_null(proctree_get(t, 7 + 3072));
	proctree_on_exit(t, pids[1], 0, S(1));
	proctree_on_exit(t, pids[2], 0, S(1));
	proctree_gc(t, S(10), S(1));
	assert_null(proctree_get(t, pids[1]));
	assert_null(proctree_get(t, pids[2]));
	assert_int_equal(proctree_get(t, pids[0])->pid, pids[0]);
	assert_int_equal(proctree_get(t, pids[3])->pid, pids[3]);
	assert_int_equal(proctree_count_alive(t), 2);
}

static void count_cb(struct proc *p, void *ctx)
{
	int *seen = ctx;

	assert_true(p->pid > 0 && p->pid < 1000);
	seen[p->pid]++;
}

static void test_foreach(void **state)
{
	static int seen[1000];
	static const pid_t pids[] = { 1, 100, 200, 201, 202, 300, 400, 500 };

	(void)state;
	memset(seen, 0, sizeof(seen));
	for (size_t i = 0; i < ARRAY_SIZE(pids); i++)
		add(pids[i]);
	proctree_on_exit(t, 300, 0, S(1)); /* the dead are visited too */
	proctree_foreach(t, count_cb, seen);
	int total = 0;
	for (int i = 0; i < 1000; i++)
		total += seen[i];
	assert_int_equal(total, ARRAY_SIZE(pids));
	for (size_t i = 0; i < ARRAY_SIZE(pids); i++)
		assert_int_equal(seen[pids[i]], 1);
}

/* ---------------------------------------------------------------- scope and the /proc scan */

static void test_comm_matches(void **state)
{
	static const char prefixes[3][16] = { "python", "comfy", "" };
	static const struct {
		const char *comm;
		int n;
		bool match;
	} cases[] = {
		{ "python3", 2, true },  { "python", 2, true },   { "python3.11", 2, true }, { "comfyui", 2, true },
		{ "comfy", 2, true },    { "pytho", 2, false },   { "Python3", 2, false },  { "ipython", 2, false },
		{ "bash", 2, false },    { "", 2, false },        { "python3", 0, false },  { "comfyui", 1, false },
		{ "bash", 3, false }, /* an empty prefix matches nothing, not everything */
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		if (proctree_comm_matches(cases[i].comm, prefixes, cases[i].n) != cases[i].match)
			fail_msg("proctree_comm_matches(\"%s\", %d) != %d", cases[i].comm, cases[i].n, cases[i].match);
}

struct scan_log {
	pid_t pids[64];
	int n;
};

static void scan_cb(struct proc *p, void *ctx)
{
	struct scan_log *log = ctx;

	assert_true(log->n < 64);
	log->pids[log->n++] = p->pid;
}

static void expect_pids(const struct scan_log *log, const pid_t *want, int n)
{
	char got[512] = "";
	size_t len = 0;

	for (int i = 0; i < log->n; i++)
		len += (size_t)snprintf(got + len, sizeof(got) - len, " %d", log->pids[i]);
	if (log->n != n)
		fail_msg("scan reported%s (%d), want %d", got, log->n, n);
	for (int i = 0; i < n; i++)
		if (log->pids[i] != want[i])
			fail_msg("scan reported%s, want pid %d at %d", got, want[i], i);
}

static void test_scan_prefixes(void **state)
{
	static const char prefixes[2][16] = { "python", "comfy" };
	static const pid_t want[] = { 200, 201, 202, 300, 400 }; /* ascending: parents before children */
	struct scan_log log = { 0 };
	struct proc *srv, *p;

	(void)state;
	assert_int_equal(proctree_scan(t, prefixes, 2, NULL, 0, scan_cb, &log), ARRAY_SIZE(want));
	expect_pids(&log, want, ARRAY_SIZE(want));
	/* sh and ffmpeg are in as descendants of the python3 server, with the flag of the scan */
	assert_string_equal(proctree_get(t, 300)->comm, "ffmpeg");
	assert_int_equal(proctree_get(t, 300)->track_flags, OS_TRACKED_SEEDED);
	/* not: init, bash (the server's parent), nginx, cron, ourselves, the broken 999 */
	static const pid_t not_in[] = { 1, 100, 500, 501, 600, 601, 700, 999 };
	for (size_t i = 0; i < ARRAY_SIZE(not_in); i++)
		assert_null(proctree_get(t, not_in[i]));
	assert_null(proctree_get(t, getpid()));
	assert_int_equal(proctree_count_alive(t), ARRAY_SIZE(want));

	/* a rescan reports only what is new; new processes below the (now known) server inherit its lineage */
	srv = proctree_get(t, 200);
	proctree_mark_server(t, srv, 4);
	log.n = 0;
	assert_int_equal(proctree_scan(t, prefixes, 2, NULL, 0, scan_cb, &log), 0);
	fake_proc(205, 201, "cc1plus", 1000, NULL, NULL);
	fake_proc(650, 1, "node", 1000, NULL, NULL);
	assert_int_equal(proctree_scan(t, prefixes, 2, NULL, 0, scan_cb, &log), 1);
	expect_pids(&log, (const pid_t[]){ 205 }, 1);
	p = proctree_get(t, 205);
	assert_int_equal(p->server_pid, 200);
	assert_int_equal(p->server_instance, 4);
	assert_null(proctree_get(t, 650));

	/* no prefixes, no cgroups: nothing; fn may be NULL */
	t2 = proctree_new(root, NULL);
	assert_non_null(t2);
	assert_int_equal(proctree_scan(t2, prefixes, 0, NULL, 0, NULL, NULL), 0);
	/* "python" alone: 200 201 and their descendants 202 300 205 */
	assert_int_equal(proctree_scan(t2, prefixes, 1, NULL, 0, NULL, NULL), 5);
	assert_null(proctree_get(t2, 400));
	proctree_free(t2);
	/* a root that does not exist */
	t2 = proctree_new("/nonexistent/proc", NULL);
	assert_non_null(t2);
	assert_int_equal(proctree_scan(t2, prefixes, 2, NULL, 0, NULL, NULL), -ENOENT);
}

static void test_scan_cgroups(void **state)
{
	static const char prefixes[1][16] = { "nomatch" };
	char cgroups[2][256];
	struct scan_log log = { 0 };
	struct proctree *c = t2 = proctree_new(root, &mounts);

	(void)state;
	assert_non_null(c);
	snprintf(cgroups[0], sizeof(cgroups[0]), "%s/watched.slice", cgmnt);
	snprintf(cgroups[1], sizeof(cgroups[1]), "%s/system.slice/nginx.service", cgmnt);
	int r = proctree_scan(c, prefixes, 1, (const char (*)[256])cgroups, 2, scan_cb, &log);
	/* cron and sleep live below watched.slice (not watched.slice2), nginx and its child in nginx.service */
	static const pid_t want[] = { 500, 501, 600, 601 };
	if (r != (int)ARRAY_SIZE(want))
		fail_msg("proctree_scan = %d, want %zu", r, ARRAY_SIZE(want));
	expect_pids(&log, want, ARRAY_SIZE(want));
	assert_null(proctree_get(c, 700));
	assert_null(proctree_get(c, 200));

	/* without mounts, cgroups cannot be matched */
	log.n = 0;
	assert_int_equal(proctree_scan(t, prefixes, 1, (const char (*)[256])cgroups, 2, scan_cb, &log), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cap_evicts_dead_first, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_details, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_with_cgroup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_gone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refresh, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_alive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_server_existing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_server_skips_dead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lineage_on_fork, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork_after_reparent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deaths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oom_victim_unknown_pid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit0_after_child_oom, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit0_long_after_child_oom, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pid_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_add_gone_keeps_dead_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_missed_exit_pid_reuse, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gc, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bucket_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreach, setup, teardown),
		cmocka_unit_test(test_comm_matches),
		cmocka_unit_test_setup_teardown(test_scan_prefixes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_scan_cgroups, setup, teardown),
	};

	return cmocka_run_group_tests_name("proctree", tests, NULL, NULL);
}

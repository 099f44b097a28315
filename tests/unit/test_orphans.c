// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "crashloop.h"
#include "death.h"
#include "orphans.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

#define S(x) ((uint64_t)(x) * NSEC_PER_SEC)
#define NOW S(10000)
#define SELF_PID 700
#define SELF_PPID 650

/* ---- a recorded process table: ComfyUI 5000 (restarted at 9000 s) after an earlier one was SIGKILLed ---- */

static const struct orphan_server live_server = {
	.pid = 5000,
	.ppid = 4900,
	.pgid = 5000,
	.sid = 5000,
	.start_ns = S(9000),
	.cwd = "/opt/ComfyUI",
	.cmdline = "/opt/ComfyUI/venv/bin/python main.py --listen 0.0.0.0 --port 8188",
	.port = 8188,
};

/* The instance's own server as the scope knows it: what heuristic finds must share before they are reaped. */
static const struct orphan_home live_home = {
	.known = true,
	.alive = true,
	.pid = 5000,
	.start_ns = S(9000),
	.uid = 1000,
	.port = 8188,
	.exe = "/opt/ComfyUI/venv/bin/python3.11",
	.cwd = "/opt/ComfyUI",
	.cgroup = "/system.slice/comfyui.service",
	.cmdline = "/opt/ComfyUI/venv/bin/python main.py --listen 0.0.0.0 --port 8188",
};

/* PY() fills the fields every in-scope python shares; cases override some of them on purpose. */
#pragma GCC diagnostic ignored "-Woverride-init"
#define PY(...) (struct orphan_proc){ .comm = "python3", .exe = "/opt/ComfyUI/venv/bin/python3.11", \
				       .cgroup = "/system.slice/comfyui.service", .uid = 1000, .rss_bytes = GIB(1), \
				       __VA_ARGS__ }
#define SPAWN_CMD "/opt/ComfyUI/venv/bin/python -c from multiprocessing.spawn import spawn_main; " \
		  "spawn_main(tracker_fd=5, pipe_handle=7) --multiprocessing-fork"

struct table_case {
	const char *name;
	struct orphan_proc proc;
	enum orphan_verdict_kind verdict;
	enum orphan_reason reason;
	int32_t server_pid;
	const char *text;
};

static const struct table_case server_killed_table[] = {
	{ "init", { .pid = 1, .ppid = 0, .comm = "systemd", .exe = "/usr/lib/systemd/systemd",
		    .cmdline = "/sbin/init", .start_ns = S(1) },
	  ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 0, "pid 1 (init)" },
	{ "self by pid", PY(.pid = SELF_PID, .ppid = 1, .start_ns = S(10), .cmdline = "python3 fake-self",
			    .was_child_of_server = true, .reparented = true),
	  ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 0, "oomsentry itself" },
	{ "self by flag", PY(.pid = 701, .ppid = 1, .start_ns = S(10), .cmdline = "python3 x", .is_self = true,
			     .listen_port = 8188),
	  ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 0, "oomsentry itself" },
	{ "parent of self", PY(.pid = SELF_PPID, .ppid = 1, .start_ns = S(10), .cmdline = "python3 supervisor.py",
			       .was_child_of_server = true, .reparented = true),
	  ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 0, "parent of oomsentry" },
	{ "parent of self by flag", PY(.pid = 651, .ppid = 1, .start_ns = S(10), .cmdline = SPAWN_CMD,
				       .is_self_parent = true),
	  ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 0, "parent of oomsentry" },
	{ "kernel thread named like python", { .pid = 90, .ppid = 2, .comm = "python_kthread", .start_ns = S(1) },
	  ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 0, "kernel thread (no exe, no cmdline)" },
	{ "the live server", PY(.pid = 5000, .ppid = 4900, .pgid = 5000, .sid = 5000, .start_ns = S(9000),
				.cwd = "/opt/ComfyUI", .listen_port = 8188,
				.cmdline = "/opt/ComfyUI/venv/bin/python main.py --listen 0.0.0.0 --port 8188",
				.rss_bytes = GIB(20)),
	  ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 5000, "live ComfyUI server" },
	{ "worker of the live server", PY(.pid = 5010, .ppid = 5000, .pgid = 5000, .sid = 5000,
					  .start_ns = S(9001), .cwd = "/opt/ComfyUI", .cmdline = SPAWN_CMD),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 5000, "child of live ComfyUI server pid 5000" },
	{ "grandchild in the live server's group", PY(.pid = 5020, .ppid = 5010, .pgid = 5000, .sid = 5000,
						      .start_ns = S(9002), .cwd = "/opt/ComfyUI", .cmdline = SPAWN_CMD,
						      .listen_port = 8188),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 5000,
	  "in the process group of live ComfyUI server pid 5000" },
	{ "descendant by lineage", PY(.pid = 5030, .ppid = 1, .pgid = 5030, .sid = 5030, .start_ns = S(9003),
				      .cmdline = SPAWN_CMD, .descends_from_live_server = true, .reparented = true),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0, "descends from a live ComfyUI server" },
	{ "launcher that started the live server (same cmdline, older)",
	  PY(.pid = 4900, .ppid = 1, .pgid = 4900, .sid = 4900, .start_ns = S(8999), .cwd = "/opt/ComfyUI",
	     .cmdline = "/opt/ComfyUI/venv/bin/python main.py --listen 0.0.0.0 --port 8188"),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 5000, "parent of live ComfyUI server pid 5000" },
	{ "worker of the SIGKILLed server", PY(.pid = 3010, .ppid = 1, .pgid = 3000, .sid = 3000, .start_ns = S(5001),
					       .cwd = "/opt/ComfyUI", .cmdline = SPAWN_CMD, .rss_bytes = GIB(11),
					       .was_child_of_server = true, .reparented = true),
	  ORPHAN_VERDICT_ORPHAN, ORPHAN_REASON_PARENT_DIED, 0, "its ComfyUI server died; reparented to pid 1" },
	{ "its second worker, reparented to a subreaper", PY(.pid = 3011, .ppid = 44, .pgid = 3000, .sid = 3000,
							     .start_ns = S(5002), .cwd = "/opt/ComfyUI",
							     .cmdline = SPAWN_CMD, .rss_bytes = GIB(12),
							     .was_child_of_server = true, .reparented = true),
	  ORPHAN_VERDICT_ORPHAN, ORPHAN_REASON_PARENT_DIED, 0, "its ComfyUI server died; reparented to pid 44" },
	{ "worker known from the persisted lineage", PY(.pid = 3012, .ppid = 1, .pgid = 3000, .sid = 3000,
							.start_ns = S(5002), .cwd = "/tmp", .cmdline = "python3 w.py",
							.rss_bytes = MIB(5), .was_child_of_server = true,
							.lineage_persisted = true, .reparented = true),
	  ORPHAN_VERDICT_ORPHAN, ORPHAN_REASON_PARENT_DIED, 0,
	  "its ComfyUI server died; reparented to pid 1 (lineage persisted by the daemon before it stopped)" },
	{ "grandchild of the dead server whose own parent lives", PY(.pid = 3020, .ppid = 3010, .pgid = 3000,
								     .sid = 3000, .start_ns = S(5003),
								     .cmdline = "python3 helper.py",
								     .cwd = "/opt/ComfyUI",
								     .was_child_of_server = true),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0,
	  "child of a dead ComfyUI server, but its parent pid 3010 is alive" },
	{ "sleep reparented to init", { .pid = 3100, .ppid = 1, .comm = "sleep", .exe = "/usr/bin/sleep",
					.cmdline = "sleep 3600", .start_ns = S(100), .rss_bytes = MIB(1),
					.was_child_of_server = true, .reparented = true },
	  ORPHAN_VERDICT_NOT_IN_SCOPE, ORPHAN_REASON_NONE, 0, "not in scope: comm 'sleep' matches no configured prefix" },
	{ "user's own python service under init", PY(.pid = 800, .ppid = 1, .pgid = 800, .sid = 800,
						     .start_ns = S(20), .cwd = "/srv/app",
						     .cmdline = "/usr/bin/python3 /srv/app/service.py"),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0, "reparented to pid 1 with no known ComfyUI lineage" },
	{ "older instance, same cmdline", PY(.pid = 3000, .ppid = 1, .pgid = 2990, .sid = 2990, .start_ns = S(5000),
					     .cwd = "/opt/ComfyUI", .rss_bytes = GIB(9),
					     .cmdline = "/opt/ComfyUI/venv/bin/python main.py --listen 0.0.0.0 --port 8188"),
	  ORPHAN_VERDICT_ORPHAN, ORPHAN_REASON_OLDER_INSTANCE, 5000,
	  "older ComfyUI instance: same command line as live server pid 5000, started 4000 s before it; "
	  "same uid, cgroup, exe and cwd as server pid 5000" },
	{ "identical server of another pod (other cgroup)", PY(.pid = 3050, .ppid = 1, .pgid = 3040, .sid = 3040,
							       .start_ns = S(5000), .cwd = "/opt/ComfyUI",
							       .cgroup = "/kubepods/pod-b/comfyui",
							       .cmdline = "/opt/ComfyUI/venv/bin/python main.py "
									  "--listen 0.0.0.0 --port 8188"),
	  ORPHAN_VERDICT_NOT_IN_SCOPE, ORPHAN_REASON_NONE, 0, "not in scope: cgroup outside the configured prefixes" },
	{ "identical server of another user", PY(.pid = 3060, .ppid = 1, .pgid = 3040, .sid = 3040,
						 .start_ns = S(5000), .cwd = "/opt/ComfyUI", .uid = 1001,
						 .cmdline = "/opt/ComfyUI/venv/bin/python main.py "
							    "--listen 0.0.0.0 --port 8188"),
	  ORPHAN_VERDICT_NOT_IN_SCOPE, ORPHAN_REASON_NONE, 0, "not in scope: uid 1001 is not the configured uid 1000" },
	{ "seeds/004: child of a server SIGKILLed with no watchdog", PY(.pid = 3210, .ppid = 1, .pgid = 3200,
									.sid = 3100, .start_ns = S(4001),
									.cwd = "/opt/ComfyUI", .rss_bytes = MIB(80),
									.cmdline = "python3 -c import worker"),
	  ORPHAN_VERDICT_ORPHAN, ORPHAN_REASON_REPARENTED, 0,
	  "reparented to pid 1, its parent is gone, and it leads no process group (3200) or session (3100); "
	  "same uid, cgroup, exe and cwd as server pid 5000" },
	{ "child of a container's init shell (pid 1 is its parent and group leader)",
	  PY(.pid = 3215, .ppid = 1, .pgid = 1, .sid = 1, .start_ns = S(4001), .cwd = "/opt/ComfyUI",
	     .cmdline = "python3 download_models.py", .group_leader_alive = true),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0, "reparented to pid 1 with no known ComfyUI lineage" },
	{ "reparented non-leader elsewhere (a nohup job in another directory)",
	  PY(.pid = 3220, .ppid = 1, .pgid = 3200, .sid = 3100, .start_ns = S(4001), .cwd = "/home/u",
	     .cmdline = "python3 train.py"),
	  ORPHAN_VERDICT_SUSPECT, ORPHAN_REASON_REPARENTED, 0,
	  "reparented to pid 1, its parent is gone, and it leads no process group (3200) or session (3100); "
	  "not reaped: its working directory is not the server's" },
	{ "another instance's server, not located yet", PY(.pid = 3230, .ppid = 1, .pgid = 3200, .sid = 3100,
							   .start_ns = S(4001), .cwd = "/opt/ComfyUI",
							   .cmdline = "python3 main.py --port 8189",
							   .other_instance = true),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0,
	  "belongs to another instance (its lineage or its port): that instance decides" },
	{ "older instance, same script and cwd", PY(.pid = 2500, .ppid = 1, .pgid = 2500, .sid = 2500,
						    .start_ns = S(4000), .cwd = "/opt/ComfyUI/",
						    .cmdline = "python3 -u ./main.py --listen 127.0.0.1"),
	  ORPHAN_VERDICT_SUSPECT, ORPHAN_REASON_OLDER_INSTANCE, 5000,
	  "older ComfyUI instance: same script and working directory as live server pid 5000, started 5000 s before it; "
	  "not reaped: its working directory is not the server's" },
	{ "second instance from the same install on another port", PY(.pid = 2600, .ppid = 1, .pgid = 2600,
								      .sid = 2600, .start_ns = S(4000),
								      .cwd = "/opt/ComfyUI",
								      .cmdline = "python3 main.py --port=8189"),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0, "reparented to pid 1 with no known ComfyUI lineage" },
	{ "same script started after the live server", PY(.pid = 6000, .ppid = 1, .pgid = 6000, .sid = 6000,
							  .start_ns = S(9500), .cwd = "/opt/ComfyUI",
							  .cmdline = "python3 main.py"),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0, "reparented to pid 1 with no known ComfyUI lineage" },
	{ "python -X option argument is not the script", PY(.pid = 2900, .ppid = 1, .pgid = 2900, .sid = 2900,
							     .start_ns = S(4000), .cwd = "/opt/ComfyUI",
							     .cmdline = "python3 -X main.py tool.py"),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0, "reparented to pid 1 with no known ComfyUI lineage" },
	{ "older instance via absolute script path", PY(.pid = 2950, .ppid = 1, .pgid = 2950, .sid = 2950,
							.start_ns = S(4500), .cwd = "/",
							.cmdline = "/usr/bin/python3.11 /opt/ComfyUI/main.py --port 8188"),
	  ORPHAN_VERDICT_SUSPECT, ORPHAN_REASON_OLDER_INSTANCE, 5000,
	  "older ComfyUI instance: same script and working directory as live server pid 5000, started 4500 s before it; "
	  "not reaped: its working directory is not the server's" },
	{ "another script in the same cwd", PY(.pid = 2700, .ppid = 1, .pgid = 2700, .sid = 2700, .start_ns = S(4000),
					       .cwd = "/opt/ComfyUI", .cmdline = "python3 scripts/train.py"),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0, "reparented to pid 1 with no known ComfyUI lineage" },
	{ "python -c in the same cwd (its code is not a script path)",
	  PY(.pid = 2800, .ppid = 1, .pgid = 2800, .sid = 2800, .start_ns = S(4000), .cwd = "/opt/ComfyUI",
	     .cmdline = "python3 -c main.py"),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0, "reparented to pid 1 with no known ComfyUI lineage" },
	{ "port holder", PY(.pid = 3500, .ppid = 1, .pgid = 3500, .sid = 3500, .start_ns = S(7000),
			    .cwd = "/home/u", .cmdline = "python3 /home/u/proxy.py", .listen_port = 8188,
			    .rss_bytes = MIB(300)),
	  ORPHAN_VERDICT_SUSPECT, ORPHAN_REASON_PORT_HOLDER, 5000,
	  "holds ComfyUI port 8188 but is not its live server (pid 5000); not reaped: its working directory is not the "
	  "server's" },
	{ "port holder of the same install on the URL's address", PY(.pid = 3510, .ppid = 1, .pgid = 3510,
								     .sid = 3510, .start_ns = S(7000),
								     .cwd = "/opt/ComfyUI", .listen_port = 8188,
								     .serves_url_address = true,
								     .cmdline = "python3 proxy.py"),
	  ORPHAN_VERDICT_ORPHAN, ORPHAN_REASON_PORT_HOLDER, 5000,
	  "holds ComfyUI port 8188 but is not its live server (pid 5000); same uid, cgroup, exe and cwd as server pid "
	  "5000" },
	{ "same install listening on another address of the port", PY(.pid = 3520, .ppid = 1, .pgid = 3520,
								      .sid = 3520, .start_ns = S(7000),
								      .cwd = "/opt/ComfyUI", .listen_port = 8188,
								      .cmdline = "python3 proxy.py"),
	  ORPHAN_VERDICT_SUSPECT, ORPHAN_REASON_PORT_HOLDER, 5000,
	  "holds ComfyUI port 8188 but is not its live server (pid 5000); not reaped: it listens on another address "
	  "than the URL's: another server" },
	{ "stale forkserver worker without lineage", PY(.pid = 3600, .ppid = 1, .pgid = 3600, .sid = 3600,
							.start_ns = S(3000), .cwd = "/tmp",
							.cmdline = "python3 -c from multiprocessing.forkserver "
								   "import main; main(8, 9, ['__main__'])",
							.rss_bytes = MIB(700)),
	  ORPHAN_VERDICT_SUSPECT, ORPHAN_REASON_STALE_WORKER, 0,
	  "multiprocessing worker whose parent is gone (reparented to pid 1); not reaped: its working directory is not "
	  "the server's" },
	{ "mp worker whose parent is alive", PY(.pid = 3700, .ppid = 3690, .pgid = 3690, .sid = 3690,
						.start_ns = S(3000), .cmdline = SPAWN_CMD),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0, "parent pid 3690 is alive" },
	{ "too young", PY(.pid = 7000, .ppid = 1, .start_ns = NOW - S(2), .cmdline = SPAWN_CMD, .reparented = true,
			  .was_child_of_server = true),
	  ORPHAN_VERDICT_NOT_IN_SCOPE, ORPHAN_REASON_NONE, 0, "not in scope: younger than the minimum age of 10000 ms" },
	{ "started in the future (clock mix-up)", PY(.pid = 7001, .ppid = 1, .start_ns = NOW + S(5),
						     .cmdline = SPAWN_CMD, .reparented = true),
	  ORPHAN_VERDICT_NOT_IN_SCOPE, ORPHAN_REASON_NONE, 0, "not in scope: younger than the minimum age of 10000 ms" },
	{ "start time unknown", PY(.pid = 7002, .ppid = 1, .start_ns = 0, .cmdline = SPAWN_CMD, .reparented = true,
				   .was_child_of_server = true),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0,
	  "start time unknown: could not be told apart from a recycled pid" },
};

static void run_table(const struct orphan_scope *scope, const struct orphan_server *servers, size_t nservers,
		      const struct table_case *cases, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct table_case *c = &cases[i];
		struct orphan_verdict v;
		int r = orphan_classify(scope, servers, nservers, &c->proc, NOW, &v);

		if (r != 0 || v.verdict != c->verdict || v.reason != c->reason || v.server_pid != c->server_pid ||
		    strcmp(v.text, c->text) != 0)
			fail_msg("case '%s': got rc %d %s/%s server %d \"%s\", want %s/%s server %d \"%s\"", c->name, r,
				 orphan_verdict_kind_str(v.verdict), orphan_reason_str(v.reason), v.server_pid, v.text,
				 orphan_verdict_kind_str(c->verdict), orphan_reason_str(c->reason), c->server_pid,
				 c->text);
		assert_int_equal(v.pid, c->proc.pid);
		assert_int_equal(v.start_ns, c->proc.start_ns);
		assert_int_equal(v.rss_bytes, c->proc.rss_bytes);
	}
}

static void test_server_killed_table(void **state)
{
	struct orphan_scope scope;
	(void)state;

	orphan_scope_init(&scope, SELF_PID, SELF_PPID);
	scope.home = live_home;
	assert_int_equal(orphan_scope_default_to_home(&scope), 0);
	run_table(&scope, &live_server, 1, server_killed_table, ARRAY_SIZE(server_killed_table));
}

static void test_scan_counts_orphans_and_bytes(void **state)
{
	struct orphan_proc procs[ARRAY_SIZE(server_killed_table)];
	struct orphan_verdict v[ARRAY_SIZE(server_killed_table)];
	struct orphan_scope scope;
	uint64_t bytes = 1;
	(void)state;

	orphan_scope_init(&scope, SELF_PID, SELF_PPID);
	scope.home = live_home;
	assert_int_equal(orphan_scope_default_to_home(&scope), 0);
	for (size_t i = 0; i < ARRAY_SIZE(procs); i++)
		procs[i] = server_killed_table[i].proc;
	/* reapable: 2 parent-died (11+12 GiB), the older instance with the server's home (9 GiB), the seeds/004 child
	 * (80 MiB), the port holder of the same install (1 GiB); suspects are reported, never counted */
	assert_int_equal(orphan_scan(&scope, &live_server, 1, procs, ARRAY_SIZE(procs), NOW, v, &bytes), 6);
	assert_int_equal(bytes, GIB(33) + MIB(85));
	for (size_t i = 0; i < ARRAY_SIZE(procs); i++)
		assert_int_equal(v[i].verdict, server_killed_table[i].verdict);

	assert_int_equal(orphan_scan(&scope, &live_server, 1, procs, 0, NOW, NULL, &bytes), 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(orphan_scan(&scope, &live_server, 1, NULL, 3, NOW, v, &bytes), -EINVAL);
	assert_int_equal(orphan_scan(&scope, &live_server, 1, procs, 3, NOW, NULL, NULL), -EINVAL);
	assert_int_equal(orphan_scan(NULL, &live_server, 1, procs, 3, NOW, v, NULL), -EINVAL);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(v[i].verdict, ORPHAN_VERDICT_NOT_IN_SCOPE);
	assert_int_equal(orphan_scan(&scope, NULL, 1, procs, 3, NOW, v, NULL), -EINVAL);
}

static void test_scan_saturates_bytes(void **state)
{
	struct orphan_proc procs[2] = {
		PY(.pid = 10, .ppid = 1, .start_ns = S(1), .cmdline = SPAWN_CMD, .rss_bytes = UINT64_MAX - 5,
		   .reparented = true, .was_child_of_server = true),
		PY(.pid = 11, .ppid = 1, .start_ns = S(1), .cmdline = SPAWN_CMD, .rss_bytes = 100, .reparented = true,
		   .was_child_of_server = true),
	};
	struct orphan_verdict v[2];
	struct orphan_scope scope;
	uint64_t bytes;
	(void)state;

	orphan_scope_init(&scope, SELF_PID, SELF_PPID);
	assert_int_equal(orphan_scan(&scope, NULL, 0, procs, 2, NOW, v, &bytes), 2);
	assert_true(bytes == UINT64_MAX);
}

/* No live server and none known: OLDER_INSTANCE does not apply, a port holder is only reported (it may be the server
 * starting again), lineage alone still proves a dead server's worker. */
static const struct table_case server_down_table[] = {
	{ "old server, no live one", PY(.pid = 3000, .ppid = 1, .pgid = 3000, .sid = 3000, .start_ns = S(5000),
					.cwd = "/opt/ComfyUI",
					.cmdline = "/opt/ComfyUI/venv/bin/python main.py --listen 0.0.0.0 --port 8188"),
	  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0, "reparented to pid 1 with no known ComfyUI lineage" },
	{ "port held while the server is down", PY(.pid = 3001, .ppid = 1, .pgid = 3000, .sid = 3000,
						   .start_ns = S(5000), .cwd = "/opt/ComfyUI", .listen_port = 8188,
						   .cmdline = "/opt/ComfyUI/venv/bin/python main.py"),
	  ORPHAN_VERDICT_SUSPECT, ORPHAN_REASON_PORT_HOLDER, 0,
	  "holds ComfyUI port 8188 while the configured server is down; not reaped: the instance's server is not known, "
	  "so nothing proves it belongs to it" },
	{ "seeds/004 child with no server to compare with", PY(.pid = 3210, .ppid = 1, .pgid = 3200, .sid = 3100,
							       .start_ns = S(4001), .cwd = "/opt/ComfyUI",
							       .cmdline = "python3 -c import worker"),
	  ORPHAN_VERDICT_SUSPECT, ORPHAN_REASON_REPARENTED, 0,
	  "reparented to pid 1, its parent is gone, and it leads no process group (3200) or session (3100); "
	  "not reaped: the instance's server is not known, so nothing proves it belongs to it" },
	{ "dead server's worker", PY(.pid = 3010, .ppid = 1, .start_ns = S(5001), .cmdline = SPAWN_CMD,
				     .was_child_of_server = true, .reparented = true),
	  ORPHAN_VERDICT_ORPHAN, ORPHAN_REASON_PARENT_DIED, 0, "its ComfyUI server died; reparented to pid 1" },
};

static void test_server_down_table(void **state)
{
	struct orphan_scope scope;
	(void)state;

	orphan_scope_init(&scope, SELF_PID, SELF_PPID);
	run_table(&scope, NULL, 0, server_down_table, ARRAY_SIZE(server_down_table));
}

/* The server died; the daemon persisted who it was. Its home decides, but whoever serves the port now may be the
 * server starting again, and an older instance needs a live server to be older than. */
static void test_dead_home_table(void **state)
{
	static const struct table_case cases[] = {
		{ "seeds/004 child of the persisted server's install", PY(.pid = 3210, .ppid = 1, .pgid = 3200,
									  .sid = 3100, .start_ns = S(4001),
									  .cwd = "/opt/ComfyUI",
									  .cmdline = "python3 -c import worker"),
		  ORPHAN_VERDICT_ORPHAN, ORPHAN_REASON_REPARENTED, 0,
		  "reparented to pid 1, its parent is gone, and it leads no process group (3200) or session (3100); "
		  "same uid, cgroup, exe and cwd as server pid 5000" },
		{ "serves the URL while no server is known", PY(.pid = 5100, .ppid = 1, .pgid = 5100, .sid = 5100,
								 .start_ns = S(9900), .cwd = "/opt/ComfyUI",
								 .listen_port = 8188, .serves_url_address = true,
								 .cmdline = "/opt/ComfyUI/venv/bin/python main.py --listen 0.0.0.0 --port 8188"),
		  ORPHAN_VERDICT_SUSPECT, ORPHAN_REASON_PORT_HOLDER, 0,
		  "holds ComfyUI port 8188 while the configured server is down; not reaped: while no live server is "
		  "known, whoever serves the port may be the server starting again" },
		{ "a group leader of the same install is someone's job", PY(.pid = 3300, .ppid = 1, .pgid = 3300,
									    .sid = 3100, .start_ns = S(4001),
									    .cwd = "/opt/ComfyUI",
									    .cmdline = "python3 main.py"),
		  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0, "reparented to pid 1 with no known ComfyUI lineage" },
	};
	struct orphan_scope scope;
	(void)state;

	orphan_scope_init(&scope, SELF_PID, SELF_PPID);
	scope.home = live_home;
	scope.home.alive = false;
	assert_int_equal(orphan_scope_default_to_home(&scope), 0);
	run_table(&scope, NULL, 0, cases, ARRAY_SIZE(cases));
}

static void test_scope_defaults_to_home(void **state)
{
	struct orphan_scope scope;
	(void)state;

	/* nothing known: every user and cgroup stays in scope (lineage still decides what is reaped) */
	orphan_scope_init(&scope, 0, 0);
	assert_int_equal(orphan_scope_default_to_home(&scope), 0);
	assert_int_equal(scope.uid, -1);
	assert_int_equal(scope.n_cgroup_prefixes, 0);

	scope.home = live_home;
	assert_int_equal(orphan_scope_default_to_home(&scope), 0);
	assert_int_equal(scope.uid, 1000);
	assert_int_equal(scope.n_cgroup_prefixes, 1);
	assert_string_equal(scope.cgroup_prefixes[0], "/system.slice/comfyui.service");

	/* what the user configured wins */
	orphan_scope_init(&scope, 0, 0);
	scope.home = live_home;
	scope.uid = 0;
	assert_int_equal(orphan_scope_add_cgroup_prefix(&scope, "/comfy.slice"), 0);
	assert_int_equal(orphan_scope_default_to_home(&scope), 0);
	assert_int_equal(scope.uid, 0);
	assert_int_equal(scope.n_cgroup_prefixes, 1);
	assert_string_equal(scope.cgroup_prefixes[0], "/comfy.slice");
	assert_int_equal(orphan_scope_default_to_home(NULL), -EINVAL);

	/* a corrupt home never classifies anything as reapable */
	scope.home.exe[0] = 'x';
	memset(scope.home.exe, 'x', sizeof(scope.home.exe));
	{
		struct orphan_proc p = PY(.pid = 10, .ppid = 1, .start_ns = S(1), .cmdline = SPAWN_CMD,
					  .reparented = true, .was_child_of_server = true);
		struct orphan_verdict v;
		assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, &v), -EINVAL);
		assert_int_equal(v.verdict, ORPHAN_VERDICT_NOT_IN_SCOPE);
	}
}

/* Two instances on one host, seen from instance B's scan: A's server is protected, B's older start and a holder of
 * B's port are compared with B's server; A's workers and a process holding A's port belong to A. */
static void test_multi_instance(void **state)
{
	static const struct orphan_server servers[] = {
		{ .pid = 5000, .start_ns = S(9000), .cwd = "/opt/ComfyUI", .cmdline = "python3 main.py --port 8188",
		  .port = 8188 },
		{ .pid = 6000, .start_ns = S(9500), .cwd = "/opt/ComfyUI", .cmdline = "python3 main.py --port 8189",
		  .port = 8189 },
	};
	static const struct table_case cases[] = {
		{ "instance A is not an older B", PY(.pid = 5000, .start_ns = S(9000), .ppid = 1, .cwd = "/opt/ComfyUI",
						     .cmdline = "python3 main.py --port 8188", .listen_port = 8188),
		  ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 5000, "live ComfyUI server" },
		{ "old B", PY(.pid = 4000, .pgid = 4000, .sid = 4000, .start_ns = S(8000), .ppid = 1,
			      .cwd = "/opt/ComfyUI", .cmdline = "python3 main.py --port 8189"),
		  ORPHAN_VERDICT_ORPHAN, ORPHAN_REASON_OLDER_INSTANCE, 6000,
		  "older ComfyUI instance: same command line as live server pid 6000, started 1500 s before it; "
		  "same uid, cgroup, exe and cwd as server pid 6000" },
		{ "holds B's port", PY(.pid = 4100, .pgid = 4100, .sid = 4100, .start_ns = S(8000), .ppid = 1,
				       .cmdline = "python3 x.py", .listen_port = 8189),
		  ORPHAN_VERDICT_SUSPECT, ORPHAN_REASON_PORT_HOLDER, 6000,
		  "holds ComfyUI port 8189 but is not its live server (pid 6000); not reaped: its working directory is "
		  "not the server's" },
		{ "an A that B's scan cannot see as older (other port)", PY(.pid = 4200, .pgid = 4200, .sid = 4200,
									    .start_ns = S(8000), .ppid = 1,
									    .cwd = "/opt/ComfyUI",
									    .cmdline = "python3 main.py --port 8188"),
		  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0, "reparented to pid 1 with no known ComfyUI lineage" },
		{ "holds A's port", PY(.pid = 4300, .pgid = 4200, .sid = 4200, .start_ns = S(8000), .ppid = 1,
				       .cwd = "/opt/ComfyUI", .cmdline = "python3 main.py", .other_instance = true),
		  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 0,
		  "belongs to another instance (its lineage or its port): that instance decides" },
	};
	struct orphan_scope scope;
	(void)state;

	orphan_scope_init(&scope, SELF_PID, SELF_PPID);
	scope.home = live_home;
	scope.home.pid = 6000;
	scope.home.start_ns = S(9500);
	scope.home.port = 8189;
	snprintf(scope.home.cmdline, sizeof(scope.home.cmdline), "python3 main.py --port 8189");
	run_table(&scope, servers, ARRAY_SIZE(servers), cases, ARRAY_SIZE(cases));
}

/* In a container the server may be pid 1 itself: its workers have ppid 1 but a live parent. */
static void test_server_is_pid1_in_container(void **state)
{
	static const struct orphan_server server = { .pid = 1, .start_ns = S(100), .cwd = "/app",
						     .cmdline = "python main.py", .port = 8188 };
	static const struct table_case cases[] = {
		{ "server", PY(.pid = 1, .start_ns = S(100), .cmdline = "python main.py", .listen_port = 8188),
		  ORPHAN_VERDICT_PROTECTED, ORPHAN_REASON_NONE, 0, "pid 1 (init)" },
		{ "worker", PY(.pid = 30, .ppid = 1, .pgid = 1, .sid = 1, .start_ns = S(101), .cmdline = SPAWN_CMD),
		  ORPHAN_VERDICT_NOT_ORPHAN, ORPHAN_REASON_NONE, 1, "child of live ComfyUI server pid 1" },
	};
	struct orphan_scope scope;
	(void)state;

	orphan_scope_init(&scope, 0, 0);
	run_table(&scope, &server, 1, cases, ARRAY_SIZE(cases));
}

static void test_scope_filters(void **state)
{
	static const struct table_case cases[] = {
		{ "other cgroup", PY(.pid = 10, .ppid = 1, .start_ns = S(1), .cmdline = SPAWN_CMD, .reparented = true,
				     .cgroup = "/user.slice/user-1000.slice"),
		  ORPHAN_VERDICT_NOT_IN_SCOPE, ORPHAN_REASON_NONE, 0, "not in scope: cgroup outside the configured prefixes" },
		{ "cgroup prefix is not a path component", PY(.pid = 11, .ppid = 1, .start_ns = S(1), .cmdline = SPAWN_CMD,
							       .reparented = true,
							       .cgroup = "/system.slice/comfyui.service-old"),
		  ORPHAN_VERDICT_NOT_IN_SCOPE, ORPHAN_REASON_NONE, 0, "not in scope: cgroup outside the configured prefixes" },
		{ "sub-cgroup is in", PY(.pid = 12, .ppid = 1, .start_ns = S(1), .cmdline = SPAWN_CMD, .reparented = true,
					 .cgroup = "/system.slice/comfyui.service/worker", .was_child_of_server = true),
		  ORPHAN_VERDICT_ORPHAN, ORPHAN_REASON_PARENT_DIED, 0, "its ComfyUI server died; reparented to pid 1" },
		{ "other uid", PY(.pid = 13, .ppid = 1, .start_ns = S(1), .cmdline = SPAWN_CMD, .reparented = true,
				  .uid = 0),
		  ORPHAN_VERDICT_NOT_IN_SCOPE, ORPHAN_REASON_NONE, 0, "not in scope: uid 0 is not the configured uid 1000" },
		{ "cmdline pattern missing", PY(.pid = 14, .ppid = 1, .start_ns = S(1), .reparented = true,
						.cmdline = "python3 -c from multiprocessing.spawn import x"),
		  ORPHAN_VERDICT_NOT_IN_SCOPE, ORPHAN_REASON_NONE, 0, "not in scope: cmdline matches no configured pattern" },
		{ "too small", PY(.pid = 15, .ppid = 1, .start_ns = S(1), .cmdline = SPAWN_CMD, .reparented = true,
				  .rss_bytes = MIB(10)),
		  ORPHAN_VERDICT_NOT_IN_SCOPE, ORPHAN_REASON_NONE, 0,
		  "not in scope: rss 10485760 bytes is below the minimum of 67108864" },
		{ "comm prefix is case-insensitive", PY(.pid = 16, .ppid = 1, .start_ns = S(1), .cmdline = SPAWN_CMD,
							.reparented = true, .comm = "ComfyUI-worker"),
		  ORPHAN_VERDICT_SUSPECT, ORPHAN_REASON_STALE_WORKER, 0,
		  "multiprocessing worker whose parent is gone (reparented to pid 1); not reaped: the instance's server "
		  "is not known, so nothing proves it belongs to it" },
		{ "hostile comm is sanitised", { .pid = 17, .ppid = 1, .start_ns = S(1), .comm = "ba\nd\x1b[2J",
						 .exe = "/x", .cmdline = "x" },
		  ORPHAN_VERDICT_NOT_IN_SCOPE, ORPHAN_REASON_NONE, 0,
		  "not in scope: comm 'ba?d?[2J' matches no configured prefix" },
	};
	struct orphan_scope scope;
	(void)state;

	orphan_scope_init(&scope, SELF_PID, SELF_PPID);
	assert_int_equal(orphan_scope_add_cgroup_prefix(&scope, "/system.slice/comfyui.service"), 0);
	assert_int_equal(orphan_scope_add_cmdline_pattern(&scope, "multiprocessing-fork"), 0);
	scope.uid = 1000;
	scope.min_rss_bytes = MIB(64);
	run_table(&scope, NULL, 0, cases, ARRAY_SIZE(cases));
}

static void test_scope_empty_matches_nothing(void **state)
{
	struct orphan_proc p = PY(.pid = 10, .ppid = 1, .start_ns = S(1), .cmdline = SPAWN_CMD, .reparented = true,
				  .was_child_of_server = true);
	struct orphan_scope scope;
	struct orphan_verdict v;
	(void)state;

	orphan_scope_init(&scope, 0, 0);
	scope.n_comm_prefixes = 0;
	assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, &v), 0);
	assert_int_equal(v.verdict, ORPHAN_VERDICT_NOT_IN_SCOPE);
	assert_string_equal(v.text, "not in scope: the scope names no comm prefix or cmdline pattern");

	/* a cmdline pattern alone is enough to define a scope */
	assert_int_equal(orphan_scope_add_cmdline_pattern(&scope, "multiprocessing"), 0);
	assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, &v), 0);
	assert_int_equal(v.verdict, ORPHAN_VERDICT_ORPHAN);
}

static void test_scope_helpers(void **state)
{
	char long_comm[ORPHAN_COMM_LEN + 1], long_path[ORPHAN_PATH_LEN + 4];
	struct orphan_scope scope;
	(void)state;

	orphan_scope_init(&scope, 42, 41);
	assert_int_equal(scope.n_comm_prefixes, 2);
	assert_string_equal(scope.comm_prefixes[0], "python");
	assert_string_equal(scope.comm_prefixes[1], "comfy");
	assert_int_equal(scope.uid, -1);
	assert_int_equal(scope.min_age_ns, ORPHAN_DEFAULT_MIN_AGE_NS);
	assert_int_equal(scope.self_pid, 42);
	assert_int_equal(scope.self_ppid, 41);

	memset(long_comm, 'a', sizeof(long_comm) - 1);
	long_comm[sizeof(long_comm) - 1] = '\0';
	memset(long_path, '/', sizeof(long_path) - 1);
	long_path[sizeof(long_path) - 1] = '\0';
	assert_int_equal(orphan_scope_add_comm_prefix(&scope, long_comm), -ENAMETOOLONG);
	long_comm[ORPHAN_COMM_LEN - 1] = '\0';
	assert_int_equal(orphan_scope_add_comm_prefix(&scope, long_comm), 0);
	assert_int_equal(orphan_scope_add_cgroup_prefix(&scope, long_path), -ENAMETOOLONG);
	assert_int_equal(orphan_scope_add_comm_prefix(&scope, ""), -EINVAL);
	assert_int_equal(orphan_scope_add_comm_prefix(&scope, NULL), -EINVAL);
	assert_int_equal(orphan_scope_add_comm_prefix(NULL, "x"), -EINVAL);
	assert_int_equal(orphan_scope_add_cmdline_pattern(&scope, ""), -EINVAL);
	for (int i = 0; i < ORPHAN_SCOPE_MAX; i++)
		assert_int_equal(orphan_scope_add_cmdline_pattern(&scope, "p"), 0);
	assert_int_equal(orphan_scope_add_cmdline_pattern(&scope, "p"), -ENOSPC);
	assert_int_equal(scope.n_cmdline_patterns, ORPHAN_SCOPE_MAX);
	orphan_scope_init(NULL, 0, 0); /* must not crash */
}

static void test_invalid_input_never_orphan(void **state)
{
	struct orphan_proc p = PY(.pid = 10, .ppid = 1, .start_ns = S(1), .cmdline = SPAWN_CMD, .reparented = true,
				  .was_child_of_server = true);
	struct orphan_server bad_server = live_server;
	struct orphan_scope scope;
	struct orphan_verdict v;
	(void)state;

	orphan_scope_init(&scope, SELF_PID, SELF_PPID);
	assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, &v), 0);
	assert_int_equal(v.verdict, ORPHAN_VERDICT_ORPHAN);

	memset(p.comm, 'p', sizeof(p.comm)); /* unterminated */
	assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, &v), -EINVAL);
	assert_int_equal(v.verdict, ORPHAN_VERDICT_NOT_IN_SCOPE);
	assert_int_equal(v.reason, ORPHAN_REASON_NONE);
	assert_int_equal(v.pid, 10);
	assert_string_equal(v.text, "invalid input: corrupt process record");
	strcpy(p.comm, "python3");

	memset(p.cmdline, 'x', sizeof(p.cmdline));
	assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, &v), -EINVAL);
	assert_int_equal(v.verdict, ORPHAN_VERDICT_NOT_IN_SCOPE);
	strcpy(p.cmdline, SPAWN_CMD);

	p.pid = 0;
	assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, &v), -EINVAL);
	p.pid = -5;
	assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, &v), -EINVAL);
	p.pid = 10;
	p.ppid = -1;
	assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, &v), -EINVAL);
	p.ppid = 1;

	memset(bad_server.cwd, 'c', sizeof(bad_server.cwd));
	assert_int_equal(orphan_classify(&scope, &bad_server, 1, &p, NOW, &v), -EINVAL);
	assert_string_equal(v.text, "invalid input: corrupt live-server record");
	bad_server = live_server;
	bad_server.pid = 0;
	assert_int_equal(orphan_classify(&scope, &bad_server, 1, &p, NOW, &v), -EINVAL);
	assert_int_equal(orphan_classify(&scope, NULL, 1, &p, NOW, &v), -EINVAL);

	scope.n_comm_prefixes = ORPHAN_SCOPE_MAX + 1;
	assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, &v), -EINVAL);
	assert_string_equal(v.text, "invalid input: corrupt scope");
	orphan_scope_init(&scope, SELF_PID, SELF_PPID);
	scope.uid = -7;
	assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, &v), -EINVAL);
	orphan_scope_init(&scope, SELF_PID, SELF_PPID);
	memset(scope.comm_prefixes[0], 'p', ORPHAN_COMM_LEN);
	assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, &v), -EINVAL);

	assert_int_equal(orphan_classify(NULL, NULL, 0, &p, NOW, &v), -EINVAL);
	assert_int_equal(v.verdict, ORPHAN_VERDICT_NOT_IN_SCOPE);
	assert_int_equal(orphan_classify(&scope, NULL, 0, NULL, NOW, &v), -EINVAL);
	assert_int_equal(v.verdict, ORPHAN_VERDICT_NOT_IN_SCOPE);
	assert_int_equal(orphan_classify(&scope, NULL, 0, &p, NOW, NULL), -EINVAL);
}

static void test_enum_strings(void **state)
{
	(void)state;
	assert_string_equal(orphan_verdict_kind_str(ORPHAN_VERDICT_ORPHAN), "orphan");
	assert_string_equal(orphan_verdict_kind_str((enum orphan_verdict_kind)99), "invalid");
	assert_string_equal(orphan_reason_str(ORPHAN_REASON_OLDER_INSTANCE), "older-instance");
	assert_string_equal(orphan_reason_str(ORPHAN_REASON_REPARENTED), "reparented");
	assert_string_equal(orphan_verdict_kind_str(ORPHAN_VERDICT_SUSPECT), "suspect");
	assert_string_equal(orphan_reason_str((enum orphan_reason)-1), "invalid");
	assert_string_equal(orphan_reap_outcome_str(ORPHAN_REAP_PID_REUSED), "pid-reused");
	assert_string_equal(orphan_reap_outcome_str((enum orphan_reap_outcome)42), "invalid");
}

/* ---- reaping ---- */

static void test_same_process(void **state)
{
	static const struct {
		struct orphan_identity a, b;
		bool same;
	} cases[] = {
		{ { 3010, S(5001) }, { 3010, S(5001) }, true },
		{ { 3010, S(5001) }, { 3010, S(9999) }, false }, /* pid recycled */
		{ { 3010, S(5001) }, { 3011, S(5001) }, false },
		{ { 3010, 0 }, { 3010, 0 }, false },             /* start unknown: never "same" */
		{ { 0, S(1) }, { 0, S(1) }, false },
		{ { -4, S(1) }, { -4, S(1) }, false },
	};
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		assert_int_equal(orphan_same_process(&cases[i].a, &cases[i].b), cases[i].same);
	assert_false(orphan_same_process(NULL, &cases[0].b));
	assert_false(orphan_same_process(&cases[0].a, NULL));
}

static const struct orphan_identity target = { .pid = 3010, .start_ns = S(5001) };
static const struct orphan_identity recycled = { .pid = 3010, .start_ns = S(9990) };

static void step(struct orphan_reap *r, uint64_t now_ns, const struct orphan_identity *seen,
		 enum orphan_reap_action want, uint64_t want_wake_ns)
{
	enum orphan_reap_action a;
	uint64_t wake = 123;

	assert_int_equal(orphan_reap_next_step(r, now_ns, seen, &a, &wake), 0);
	assert_int_equal(a, want);
	assert_int_equal(wake, want_wake_ns);
}

static void test_reap_exits_after_sigterm(void **state)
{
	struct orphan_reap r;
	(void)state;

	assert_int_equal(orphan_reap_init(&r, &target, 0), 0);
	assert_int_equal(r.grace_ns, S(5));
	step(&r, S(100), &target, ORPHAN_REAP_SEND_SIGTERM, 0);
	assert_int_equal(orphan_reap_signal_result(&r, 0), 0);
	step(&r, S(101), &target, ORPHAN_REAP_WAIT, S(105));
	step(&r, S(102), NULL, ORPHAN_REAP_FINISHED, 0);
	assert_int_equal(r.outcome, ORPHAN_REAP_EXITED_AFTER_SIGTERM);
	assert_int_equal(r.state, ORPHAN_REAP_DONE);
	step(&r, S(103), &target, ORPHAN_REAP_FINISHED, 0); /* stays done */
}

static void test_reap_escalates_to_sigkill(void **state)
{
	struct orphan_reap r;
	(void)state;

	assert_int_equal(orphan_reap_init(&r, &target, S(2)), 0);
	step(&r, S(100), &target, ORPHAN_REAP_SEND_SIGTERM, 0);
	assert_int_equal(orphan_reap_signal_result(&r, 0), 0);
	step(&r, S(101), &target, ORPHAN_REAP_WAIT, S(102));
	step(&r, S(102), &target, ORPHAN_REAP_SEND_SIGKILL, 0);
	assert_int_equal(orphan_reap_signal_result(&r, 0), 0);
	step(&r, S(103), &target, ORPHAN_REAP_WAIT, S(107));
	step(&r, S(103) + 1, NULL, ORPHAN_REAP_FINISHED, 0);
	assert_int_equal(r.outcome, ORPHAN_REAP_KILLED);
	assert_int_equal(r.error, 0);
}

static void test_reap_stuck_after_sigkill(void **state)
{
	struct orphan_reap r;
	(void)state;

	assert_int_equal(orphan_reap_init(&r, &target, 0), 0);
	step(&r, S(100), &target, ORPHAN_REAP_SEND_SIGTERM, 0);
	step(&r, S(105), &target, ORPHAN_REAP_SEND_SIGKILL, 0);
	step(&r, S(110), &target, ORPHAN_REAP_FINISHED, 0);
	assert_int_equal(r.outcome, ORPHAN_REAP_STUCK);
}

static void test_reap_pid_reuse_sends_nothing(void **state)
{
	struct orphan_reap r;
	(void)state;

	/* recycled before the first signal: skip */
	assert_int_equal(orphan_reap_init(&r, &target, 0), 0);
	step(&r, S(100), &recycled, ORPHAN_REAP_FINISHED, 0);
	assert_int_equal(r.outcome, ORPHAN_REAP_PID_REUSED);
	assert_int_equal(orphan_reap_signal_result(&r, 0), -EINVAL);

	/* recycled during the grace period: ours exited, the newcomer must not get SIGKILL */
	assert_int_equal(orphan_reap_init(&r, &target, 0), 0);
	step(&r, S(100), &target, ORPHAN_REAP_SEND_SIGTERM, 0);
	assert_int_equal(orphan_reap_signal_result(&r, 0), 0);
	step(&r, S(106), &recycled, ORPHAN_REAP_FINISHED, 0);
	assert_int_equal(r.outcome, ORPHAN_REAP_EXITED_AFTER_SIGTERM);
}

static void test_reap_exit_between_scan_and_signal(void **state)
{
	struct orphan_reap r;
	(void)state;

	/* the re-read finds it still there, but it exits before pidfd_send_signal: ESRCH */
	assert_int_equal(orphan_reap_init(&r, &target, 0), 0);
	step(&r, S(100), &target, ORPHAN_REAP_SEND_SIGTERM, 0);
	assert_int_equal(orphan_reap_signal_result(&r, -ESRCH), 0);
	assert_int_equal(r.state, ORPHAN_REAP_DONE);
	assert_int_equal(r.outcome, ORPHAN_REAP_VANISHED);
	assert_int_equal(r.error, 0);
	step(&r, S(101), NULL, ORPHAN_REAP_FINISHED, 0);

	/* already gone at the re-read */
	assert_int_equal(orphan_reap_init(&r, &target, 0), 0);
	step(&r, S(100), NULL, ORPHAN_REAP_FINISHED, 0);
	assert_int_equal(r.outcome, ORPHAN_REAP_VANISHED);

	/* it exits from SIGTERM just as the SIGKILL goes out */
	assert_int_equal(orphan_reap_init(&r, &target, 0), 0);
	step(&r, S(100), &target, ORPHAN_REAP_SEND_SIGTERM, 0);
	assert_int_equal(orphan_reap_signal_result(&r, 0), 0);
	step(&r, S(105), &target, ORPHAN_REAP_SEND_SIGKILL, 0);
	assert_int_equal(orphan_reap_signal_result(&r, -ESRCH), 0);
	assert_int_equal(r.outcome, ORPHAN_REAP_EXITED_AFTER_SIGTERM);
}

static void test_reap_signal_failure(void **state)
{
	struct orphan_reap r;
	enum orphan_reap_action a;
	(void)state;

	assert_int_equal(orphan_reap_init(&r, &target, 0), 0);
	step(&r, S(100), &target, ORPHAN_REAP_SEND_SIGTERM, 0);
	assert_int_equal(orphan_reap_signal_result(&r, -EPERM), 0);
	assert_int_equal(r.outcome, ORPHAN_REAP_FAILED);
	assert_int_equal(r.error, -EPERM);
	step(&r, S(110), &target, ORPHAN_REAP_FINISHED, 0); /* no SIGKILL after a failed SIGTERM */

	/* bad arguments and a corrupt state */
	assert_int_equal(orphan_reap_init(NULL, &target, 0), -EINVAL);
	assert_int_equal(orphan_reap_init(&r, NULL, 0), -EINVAL);
	assert_int_equal(orphan_reap_init(&r, &(struct orphan_identity){ 1, S(1) }, 0), -EINVAL);
	assert_int_equal(orphan_reap_init(&r, &(struct orphan_identity){ 99, 0 }, 0), -EINVAL);
	assert_int_equal(orphan_reap_next_step(NULL, 0, &target, &a, NULL), -EINVAL);
	assert_int_equal(a, ORPHAN_REAP_FINISHED);
	assert_int_equal(orphan_reap_next_step(&r, 0, &target, NULL, NULL), -EINVAL);
	assert_int_equal(orphan_reap_signal_result(NULL, 0), -EINVAL);
	assert_int_equal(orphan_reap_init(&r, &target, 0), 0);
	r.state = (enum orphan_reap_state)77;
	assert_int_equal(orphan_reap_next_step(&r, 0, &target, &a, NULL), -EINVAL);
	assert_int_equal(a, ORPHAN_REAP_FINISHED);
	assert_int_equal(r.outcome, ORPHAN_REAP_FAILED);
}

/* ---- deaths ---- */

static void test_exit_code_decoding(void **state)
{
	static const struct {
		uint32_t raw;
		bool oom_victim, child_oom;
		int rc;
		enum death_kind kind;
		int32_t code;
		bool core;
		const char *text;
	} cases[] = {
		{ 0x300, false, false, 0, DEATH_EXITED, 3, false, "exited with code 3" },
		{ 0x000, false, false, 0, DEATH_EXITED, 0, false, "exited with code 0" },
		{ 0xff00, false, false, 0, DEATH_EXITED, 255, false, "exited with code 255" },
		{ 0x000, false, true, 0, DEATH_EXIT0_AFTER_CHILD_OOM, 0, false,
		  "exited with code 0 after the OOM killer killed a child" },
		{ 0x100, false, true, 0, DEATH_EXITED, 1, false, "exited with code 1" },
		{ 0xf, false, false, 0, DEATH_SIGNALED, 15, false, "killed by signal 15 (SIGTERM)" },
		{ 0x9, false, false, 0, DEATH_SIGNALED, 9, false, "killed by signal 9 (SIGKILL)" },
		{ 0x9, true, false, 0, DEATH_OOM_KILLED, 9, false, "killed by the OOM killer" },
		{ 0xf, true, false, 0, DEATH_SIGNALED, 15, false, "killed by signal 15 (SIGTERM)" },
		{ 0x8b, false, false, 0, DEATH_SIGNALED, 11, true, "killed by signal 11 (SIGSEGV), core dumped" },
		{ 0x86, false, false, 0, DEATH_SIGNALED, 6, true, "killed by signal 6 (SIGABRT), core dumped" },
		{ 0x28, false, false, 0, DEATH_SIGNALED, 40, false, "killed by signal 40" },
		{ 0x10000, false, false, -EINVAL, DEATH_UNKNOWN, 0x10000, false, "died for an unknown reason" },
		{ 0x30f, false, false, -EINVAL, DEATH_UNKNOWN, 0x30f, false, "died for an unknown reason" },
		{ 0x7f, false, false, -EINVAL, DEATH_UNKNOWN, 0x7f, false, "died for an unknown reason" },
		{ 0x80, false, false, -EINVAL, DEATH_UNKNOWN, 0x80, false, "died for an unknown reason" },
		{ 0xffffffff, true, true, -EINVAL, DEATH_UNKNOWN, 0x7fffffff, false, "died for an unknown reason" },
	};
	char buf[DEATH_CAUSE_STR_MAX];
	(void)state;

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct death_cause c;

		int r = death_from_exit_code(cases[i].raw, cases[i].oom_victim, cases[i].child_oom, &c);

		death_cause_str(&c, buf, sizeof(buf));
		if (r != cases[i].rc || c.kind != cases[i].kind || c.code != cases[i].code ||
		    c.core_dumped != cases[i].core || strcmp(buf, cases[i].text) != 0)
			fail_msg("raw 0x%x: got rc %d kind %d code %d core %d \"%s\"", cases[i].raw, r, c.kind, c.code,
				 c.core_dumped, buf);
	}
	assert_int_equal(death_from_exit_code(0, false, false, NULL), -EINVAL);
}

static void test_death_cause_str_edges(void **state)
{
	struct death_cause c = { .kind = DEATH_SIGNALED, .code = 15 };
	char small[8];
	(void)state;

	assert_string_equal(death_cause_str(&c, small, sizeof(small)), "killed ");
	assert_string_equal(death_cause_str(&c, NULL, 10), "");
	assert_string_equal(death_cause_str(&c, small, 0), "");
	assert_string_equal(death_cause_str(NULL, small, sizeof(small)), "died fo");
	c.kind = (enum death_kind)99;
	assert_string_equal(death_cause_str(&c, small, sizeof(small)), "died fo");
	assert_string_equal(death_signal_name(15), "SIGTERM");
	assert_string_equal(death_signal_name(31), "SIGSYS");
	assert_null(death_signal_name(0));
	assert_null(death_signal_name(32));
	assert_null(death_signal_name(-1));
}

/* ---- crash loops ---- */

static struct death oom_death(int32_t pid, uint64_t rss)
{
	return (struct death){ .pid = pid, .cause = { .kind = DEATH_OOM_KILLED, .code = 9 }, .rss_bytes_before = rss,
			       .cgroup_usage_bytes_before = rss + GIB(1) };
}

static struct death exit0_death(int32_t pid, uint64_t rss, bool child_oom)
{
	return (struct death){ .pid = pid, .cause = { .kind = DEATH_EXITED, .code = 0 }, .rss_bytes_before = rss,
			       .cgroup_usage_bytes_before = rss + GIB(2), .child_oom_killed_recently = child_oom };
}

static void test_crashloop_five_deaths_one_record(void **state)
{
	const struct death deaths[] = {
		oom_death(100, GIB(14)), oom_death(101, GIB(15)), exit0_death(102, GIB(13), true),
		oom_death(103, GIB(14)), exit0_death(104, GIB(12), true),
	};
	const uint64_t at[] = { S(1000), S(1007), S(1014), S(1021), S(1028) };
	static const enum death_kind want_kind[] = { DEATH_OOM_KILLED, DEATH_OOM_KILLED, DEATH_EXIT0_AFTER_CHILD_OOM };
	struct crashloop_record rec, first = { 0 };
	struct crashloop cl;
	int records = 0;
	(void)state;

	assert_int_equal(crashloop_init(&cl, 0, 0), 0);
	assert_int_equal(cl.window_ns, S(60));
	assert_int_equal(cl.threshold, 3);
	for (size_t i = 0; i < ARRAY_SIZE(deaths); i++) {
		int r = crashloop_record_death(&cl, at[i], &deaths[i], &rec);
		assert_true(r == 0 || r == 1);
		if (r == 1) {
			assert_int_equal(i, 2); /* the third death crosses the threshold */
			first = rec;
		}
		records += r;
	}
	assert_int_equal(records, 1);
	assert_int_equal(first.deaths_total, 3);
	assert_int_equal(first.ndeaths, 3);
	assert_int_equal(first.first_death_ns, S(1000));
	assert_int_equal(first.last_death_ns, S(1014));
	for (size_t i = 0; i < 3; i++) {
		assert_int_equal(first.deaths[i].pid, 100 + (int)i);
		assert_int_equal(first.deaths[i].cause.kind, want_kind[i]);
		assert_int_equal(first.deaths[i].rss_bytes_before, deaths[i].rss_bytes_before);
		assert_int_equal(first.deaths[i].cgroup_usage_bytes_before, deaths[i].cgroup_usage_bytes_before);
		assert_int_equal(first.deaths[i].at_ns, at[i]);
	}
	assert_string_equal(first.summary,
			    "restarted 3 times in 14 s: OOM killer ×2, exit code 0 after an OOM kill of a child ×1");
	assert_true(crashloop_active(&cl, S(1028) + S(60)));
	assert_false(crashloop_active(&cl, S(1028) + S(60) + 1));

	/* still looping a window after the record: one more record with the updated count and all causes in order */
	assert_int_equal(crashloop_record_death(&cl, S(1074), &deaths[0], &rec), 1);
	assert_int_equal(rec.deaths_total, 6);
	assert_int_equal(rec.ndeaths, 6);
	assert_int_equal(rec.deaths[3].pid, 103);
	assert_int_equal(rec.deaths[4].cause.kind, DEATH_EXIT0_AFTER_CHILD_OOM);
	assert_int_equal(rec.deaths[5].at_ns, S(1074));
	assert_string_equal(rec.summary,
			    "restarted 6 times in 74 s: OOM killer ×4, exit code 0 after an OOM kill of a child ×2");
	assert_int_equal(crashloop_record_death(&cl, S(1080), &deaths[0], &rec), 0);

	/* a quiet window ends it: the next death starts over */
	assert_int_equal(crashloop_record_death(&cl, S(1141), &deaths[0], &rec), 0);
	assert_false(cl.looping);
	assert_int_equal(cl.n, 1);
	assert_int_equal(crashloop_record_death(&cl, S(1142), &deaths[0], &rec), 0);
	assert_int_equal(crashloop_record_death(&cl, S(1143), &deaths[1], NULL), 1);
}

/* The daemon's own stops of a server idle since its start (idle-growth at 10x pace: the server climbs back to the
 * limit about a second after each restart, with nothing to run): a row of them is one record that names the leak,
 * again when the row has doubled; a stop of a server that ran something ends the row. */
static void test_idleloop_rows(void **state)
{
	static const struct {
		const char *what;
		uint64_t at_ms;
		bool idle;
		double mib_s;
		int want;          /* idleloop_note_stop's return */
		uint32_t stops;    /* the record's count when want == 1 */
		const char *has;   /* in the record's summary when want == 1 */
	} rows[] = {
		{ "a stop after prompts ran: no row", 1000, false, 600, 0, 0, NULL },
		{ "first idle stop", 2000, true, 600, 0, 0, NULL },
		{ "second", 3000, true, 700, 0, 0, NULL },
		{ "third: the record", 4100, true, 800, 1, 3, "3 times in a row in 2.1 s (every 1.1 s)" },
		{ "fourth: nothing new", 5000, true, 600, 0, 0, NULL },
		{ "fifth", 6000, true, 600, 0, 0, NULL },
		{ "sixth: the row doubled", 7000, true, 600, 1, 6, "grows 650 MiB/s while nothing runs" },
		{ "a clock going back counts as the same moment", 6500, true, 600, 0, 0, NULL },
		{ "a prompt ran: the row ends", 8000, false, 600, 0, 0, NULL },
		{ "idle again: a new row", 9000, true, NAN, 0, 0, NULL },
		{ "", 10000, true, -5, 0, 0, NULL },
		{ "a new row's record, growth unknown", 29000, true, 0, 1, 3, "every 10 s), idle each time" },
	};
	struct idleloop il;
	struct idleloop_record rec;

	(void)state;
	assert_int_equal(idleloop_init(&il, 0), 0);
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		int r;

		memset(&rec, 0, sizeof(rec));
		r = idleloop_note_stop(&il, rows[i].at_ms * NSEC_PER_MSEC, rows[i].idle, rows[i].mib_s * 1024 * 1024, &rec);
		if (r != rows[i].want)
			fail_msg("row %zu (%s): returned %d, want %d", i, rows[i].what, r, rows[i].want);
		if (r != 1)
			continue;
		assert_int_equal(rec.stops, rows[i].stops);
		if (!strstr(rec.summary, rows[i].has))
			fail_msg("row %zu (%s): \"%s\" not in \"%s\"", i, rows[i].what, rows[i].has, rec.summary);
		assert_non_null(strstr(rec.summary, "none cures the leak"));
	}
	/* the last row's summary says nothing of a growth it did not know */
	assert_null(strstr(rec.summary, "MiB/s"));
	/* a record is due whether or not the caller wants its text */
	assert_int_equal(idleloop_init(&il, 2), 0);
	assert_int_equal(idleloop_note_stop(&il, S(1), true, 1, NULL), 0);
	assert_int_equal(idleloop_note_stop(&il, S(2), true, 1, NULL), 1);
	assert_int_equal(idleloop_note_stop(&il, S(3), true, 1, NULL), 0);
	assert_int_equal(idleloop_note_stop(&il, S(4), true, 1, NULL), 1);
	assert_int_equal(idleloop_init(NULL, 3), -EINVAL);
	assert_int_equal(idleloop_init(&il, 1), -EINVAL);
	assert_int_equal(idleloop_init(&il, CRASHLOOP_MAX_DEATHS + 1), -EINVAL);
	assert_int_equal(idleloop_note_stop(NULL, 0, true, 0, NULL), -EINVAL);
	il.threshold = 0;
	assert_int_equal(idleloop_note_stop(&il, 0, true, 0, NULL), -EINVAL);
}

static void test_crashloop_spread_deaths_none(void **state)
{
	struct crashloop cl;
	struct crashloop_record rec;
	(void)state;

	assert_int_equal(crashloop_init(&cl, 0, 0), 0);
	for (int i = 0; i <= 10; i++) { /* one per minute plus a second, over 10 minutes */
		struct death d = oom_death(100 + i, GIB(10));
		assert_int_equal(crashloop_record_death(&cl, S(61) * (uint64_t)i, &d, &rec), 0);
	}
	assert_false(crashloop_active(&cl, S(610)));
}

static void test_crashloop_window_is_inclusive(void **state)
{
	struct death d = exit0_death(1, GIB(1), false);
	struct crashloop_record rec;
	struct crashloop cl;
	(void)state;

	assert_int_equal(crashloop_init(&cl, S(10), 3), 0);
	assert_int_equal(crashloop_record_death(&cl, S(0), &d, &rec), 0);
	assert_int_equal(crashloop_record_death(&cl, S(5), &d, &rec), 0);
	assert_int_equal(crashloop_record_death(&cl, S(10), &d, &rec), 1);
	assert_string_equal(rec.summary, "restarted 3 times in 10 s: exit code 0 ×3");

	assert_int_equal(crashloop_init(&cl, S(10), 3), 0);
	assert_int_equal(crashloop_record_death(&cl, S(0), &d, &rec), 0);
	assert_int_equal(crashloop_record_death(&cl, S(5), &d, &rec), 0);
	assert_int_equal(crashloop_record_death(&cl, S(10) + 1, &d, &rec), 0); /* first one fell out */
	assert_int_equal(crashloop_record_death(&cl, S(11), &d, &rec), 1);
	assert_int_equal(rec.deaths_total, 3);
	assert_int_equal(rec.ndeaths, 3);
	assert_int_equal(rec.first_death_ns, S(5));
	assert_string_equal(rec.summary, "restarted 3 times in 6.0 s: exit code 0 ×3");
}

static void test_crashloop_mixed_causes_and_short_span(void **state)
{
	struct death d[] = {
		{ .pid = 1, .cause = { .kind = DEATH_SIGNALED, .code = 15 } },
		{ .pid = 2, .cause = { .kind = DEATH_EXITED, .code = 3 } },
		{ .pid = 3, .cause = { .kind = DEATH_EXITED, .code = 3 } },
		{ .pid = 4, .cause = { .kind = DEATH_UNKNOWN } },
		{ .pid = 5, .cause = { .kind = DEATH_SIGNALED, .code = 40 } },
	};
	struct crashloop_record rec;
	struct crashloop cl;
	(void)state;

	assert_int_equal(crashloop_init(&cl, S(60), 5), 0);
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(crashloop_record_death(&cl, S(100) + i * 600 * NSEC_PER_MSEC, &d[i], &rec), 0);
	assert_int_equal(crashloop_record_death(&cl, S(100) + 2450 * NSEC_PER_MSEC, &d[4], &rec), 1);
	assert_string_equal(rec.summary, "restarted 5 times in 2.4 s: exit code 3 ×2, signal 15 (SIGTERM) ×1, "
					 "unknown cause ×1, signal 40 ×1");
}

static void test_crashloop_long_loop_keeps_latest(void **state)
{
	struct crashloop_record rec;
	struct crashloop cl;
	int records = 0;
	(void)state;

	assert_int_equal(crashloop_init(&cl, S(60), 3), 0);
	/* 100 deaths every 3 s with 10 distinct exit codes: 5 minutes of loop, records once a minute */
	for (int i = 0; i < 100; i++) {
		struct death d = { .pid = 1000 + i, .cause = { .kind = DEATH_EXITED, .code = i % 10 } };
		int r = crashloop_record_death(&cl, S(3) * (uint64_t)i, &d, &rec);
		assert_true(r == 0 || r == 1);
		records += r;
	}
	assert_int_equal(records, 5); /* at 6 s, 66 s, 126 s, 186 s, 246 s */
	assert_int_equal(rec.deaths_total, 83);
	assert_int_equal(rec.ndeaths, CRASHLOOP_MAX_DEATHS);
	assert_int_equal(rec.deaths[CRASHLOOP_MAX_DEATHS - 1].pid, 1082);
	assert_int_equal(rec.deaths[0].pid, 1082 - CRASHLOOP_MAX_DEATHS + 1);
	assert_string_equal(rec.summary, "restarted 83 times in 246 s: exit code 0 ×9, exit code 1 ×9, exit code 2 ×9, "
					 "exit code 3 ×8, exit code 4 ×8, exit code 5 ×8, exit code 6 ×8, "
					 "exit code 7 ×8, other causes ×16");
}

static void test_crashloop_invalid(void **state)
{
	struct death d = oom_death(1, 0);
	struct crashloop cl;
	(void)state;

	assert_int_equal(crashloop_init(NULL, 0, 0), -EINVAL);
	assert_int_equal(crashloop_init(&cl, 0, 1), -EINVAL);
	assert_int_equal(crashloop_init(&cl, 0, CRASHLOOP_MAX_DEATHS + 1), -EINVAL);
	assert_int_equal(crashloop_init(&cl, 0, CRASHLOOP_MAX_DEATHS), 0);
	assert_int_equal(crashloop_record_death(NULL, 0, &d, NULL), -EINVAL);
	assert_int_equal(crashloop_record_death(&cl, 0, NULL, NULL), -EINVAL);
	d.cause.kind = DEATH_KIND_MAX;
	assert_int_equal(crashloop_record_death(&cl, 0, &d, NULL), -EINVAL);
	d.cause.kind = (enum death_kind)-1;
	assert_int_equal(crashloop_record_death(&cl, 0, &d, NULL), -EINVAL);
	assert_int_equal(cl.n, 0);
	d.cause.kind = DEATH_OOM_KILLED;
	cl.head = CRASHLOOP_MAX_DEATHS; /* corrupt */
	assert_int_equal(crashloop_record_death(&cl, 0, &d, NULL), -EINVAL);
	assert_false(crashloop_active(NULL, 0));

	/* a clock going backwards is clamped, not trusted */
	assert_int_equal(crashloop_init(&cl, S(10), 2), 0);
	assert_int_equal(crashloop_record_death(&cl, S(100), &d, NULL), 0);
	assert_int_equal(crashloop_record_death(&cl, S(50), &d, NULL), 1);
	assert_int_equal(cl.last_death_ns, S(100));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_killed_table),
		cmocka_unit_test(test_scan_counts_orphans_and_bytes),
		cmocka_unit_test(test_scan_saturates_bytes),
		cmocka_unit_test(test_server_down_table),
		cmocka_unit_test(test_dead_home_table),
		cmocka_unit_test(test_scope_defaults_to_home),
		cmocka_unit_test(test_multi_instance),
		cmocka_unit_test(test_server_is_pid1_in_container),
		cmocka_unit_test(test_scope_filters),
		cmocka_unit_test(test_scope_empty_matches_nothing),
		cmocka_unit_test(test_scope_helpers),
		cmocka_unit_test(test_invalid_input_never_orphan),
		cmocka_unit_test(test_enum_strings),
		cmocka_unit_test(test_same_process),
		cmocka_unit_test(test_reap_exits_after_sigterm),
		cmocka_unit_test(test_reap_escalates_to_sigkill),
		cmocka_unit_test(test_reap_stuck_after_sigkill),
		cmocka_unit_test(test_reap_pid_reuse_sends_nothing),
		cmocka_unit_test(test_reap_exit_between_scan_and_signal),
		cmocka_unit_test(test_reap_signal_failure),
		cmocka_unit_test(test_exit_code_decoding),
		cmocka_unit_test(test_death_cause_str_edges),
		cmocka_unit_test(test_crashloop_five_deaths_one_record),
		cmocka_unit_test(test_crashloop_spread_deaths_none),
		cmocka_unit_test(test_crashloop_window_is_inclusive),
		cmocka_unit_test(test_crashloop_mixed_causes_and_short_span),
		cmocka_unit_test(test_crashloop_long_loop_keeps_latest),
		cmocka_unit_test(test_crashloop_invalid),
		cmocka_unit_test(test_idleloop_rows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

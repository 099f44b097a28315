// SPDX-License-Identifier: GPL-2.0
/* unitjob.c: RestartUnit on the loop, against a private dbus-daemon (DBUS_SYSTEM_BUS_ADDRESS) on which this test
 * plays systemd's manager: RestartUnit answers a job path and then sends JobRemoved with the job's result, as
 * systemd does for the client that queued the job. The call never blocks the caller; done runs from
 * unitjob_dispatch() with the job's result; a method error and a failed job are failures; a cancelled job's done
 * never runs; no bus at all is an error at once. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <cmocka.h>

#include "unitjob.h"

enum { TAG_BUS = 5, TAG_FAKE = 6 };

static char dir[] = "/tmp/oomsentry-unitjob-XXXXXX";
static char address[128];
static pid_t daemon_pid;
static int epfd = -1;
static sd_bus *fake;
static unsigned job_id;

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* systemd's manager, as far as RestartUnit goes: "ok.service" ends done, "bad.service" failed, others do not exist */
static int method_restart_unit(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	const char *unit, *mode;
	char path[64];
	int r;

	(void)userdata;
	r = sd_bus_message_read(m, "ss", &unit, &mode);
	if (r < 0)
		return r;
	if (strcmp(unit, "ok.service") && strcmp(unit, "bad.service"))
		return sd_bus_error_setf(error, "org.freedesktop.systemd1.NoSuchUnit", "Unit %s not found.", unit);
	snprintf(path, sizeof(path), "/org/freedesktop/systemd1/job/%u", ++job_id);
	r = sd_bus_reply_method_return(m, "o", path);
	if (r < 0)
		return r;
	return sd_bus_emit_signal(fake, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager", "JobRemoved",
				  "uoss", job_id, path, unit, strcmp(unit, "ok.service") ? "failed" : "done");
}

static const sd_bus_vtable manager_vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("RestartUnit", "ss", "o", method_restart_unit, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_SIGNAL("JobRemoved", "uoss", 0),
	SD_BUS_VTABLE_END,
};

static void fake_events(void)
{
	struct epoll_event ev = { .events = (uint32_t)sd_bus_get_events(fake), .data.u64 = TAG_FAKE };

	epoll_ctl(epfd, EPOLL_CTL_MOD, sd_bus_get_fd(fake), &ev);
}

/* The daemon's loop in miniature: bus events to unitjob_dispatch, the fake manager served in between. */
static void run_loop(int ms)
{
	uint64_t end = now_ms() + (uint64_t)ms;

	while (now_ms() < end) {
		struct epoll_event evs[8];
		int t = unitjob_timeout_ms(), n;

		if (t < 0 || t > 20)
			t = 20;
		n = epoll_wait(epfd, evs, 8, t);
		for (int i = 0; i < n; i++)
			if (evs[i].data.u64 == TAG_BUS)
				unitjob_dispatch();
		while (sd_bus_process(fake, NULL) > 0)
			;
		fake_events();
		if (unitjob_timeout_ms() == 0)
			unitjob_dispatch();
	}
}

static int group_setup(void **state)
{
	char sock[96], line[256];
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_FAKE };
	int pfd[2];
	ssize_t n;

	(void)state;
	if (!mkdtemp(dir))
		return -1;
	snprintf(sock, sizeof(sock), "%s/bus", dir);
	snprintf(address, sizeof(address), "unix:path=%s", sock);
	/* the daemon prints its address once it listens: no connection is tried before */
	if (pipe(pfd) < 0)
		return -1;
	daemon_pid = fork();
	if (daemon_pid == 0) {
		char arg[160];

		close(pfd[0]);
		if (pfd[1] != 3) {
			dup2(pfd[1], 3);
			close(pfd[1]);
		}
		snprintf(arg, sizeof(arg), "--address=%s", address);
		execlp("dbus-daemon", "dbus-daemon", "--session", "--nofork", "--nopidfile", "--nosyslog",
		       "--print-address=3", arg, (char *)NULL);
		_exit(127);
	}
	close(pfd[1]);
	n = read(pfd[0], line, sizeof(line) - 1);
	close(pfd[0]);
	if (n <= 0)
		return -1; /* no dbus-daemon (scripts/deps.sh installs it) */
	setenv("DBUS_SYSTEM_BUS_ADDRESS", address, 1);
	if (sd_bus_new(&fake) < 0 || sd_bus_set_address(fake, address) < 0 || sd_bus_set_bus_client(fake, 1) < 0 ||
	    sd_bus_start(fake) < 0)
		return -1;
	if (sd_bus_add_object_vtable(fake, NULL, "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
				     manager_vtable, NULL) < 0 ||
	    sd_bus_request_name(fake, "org.freedesktop.systemd1", 0) < 0)
		return -1;
	epfd = epoll_create1(EPOLL_CLOEXEC);
	epoll_ctl(epfd, EPOLL_CTL_ADD, sd_bus_get_fd(fake), &ev);
	unitjob_setup(epfd, TAG_BUS);
	return 0;
}

static int group_teardown(void **state)
{
	char sock[96];

	(void)state;
	unitjob_shutdown();
	fake = sd_bus_flush_close_unref(fake);
	if (daemon_pid > 0) {
		kill(daemon_pid, SIGTERM);
		waitpid(daemon_pid, NULL, 0);
	}
	snprintf(sock, sizeof(sock), "%s/bus", dir);
	unlink(sock);
	rmdir(dir);
	close(epfd);
	return 0;
}

struct outcome {
	int calls, r;
	char result[64];
};

static void done(int r, const char *result, void *ctx)
{
	struct outcome *o = ctx;

	o->calls++;
	o->r = r;
	snprintf(o->result, sizeof(o->result), "%s", result);
}

static void wait_done(struct outcome *o)
{
	for (uint64_t end = now_ms() + 5000; !o->calls && now_ms() < end;)
		run_loop(20);
}

static void test_a_job_done(void **state)
{
	struct outcome o = { 0 };
	struct unitjob *j = NULL;
	uint64_t t0 = now_ms();

	(void)state;
	assert_int_equal(unitjob_restart("ok.service", done, &o, &j), 0);
	assert_non_null(j);
	/* nothing was waited for: the call is queued, the manager has not even seen it */
	assert_true(now_ms() - t0 < 100);
	assert_int_equal(o.calls, 0);
	assert_int_equal(unitjob_pending(), 1);
	wait_done(&o);
	assert_int_equal(o.calls, 1);
	assert_int_equal(o.r, 0);
	assert_string_equal(o.result, "done");
	assert_int_equal(unitjob_pending(), 0);
}

static void test_a_failed_job(void **state)
{
	struct outcome o = { 0 };
	struct unitjob *j = NULL;

	(void)state;
	assert_int_equal(unitjob_restart("bad.service", done, &o, &j), 0);
	wait_done(&o);
	assert_int_equal(o.calls, 1);
	assert_true(o.r < 0);
	assert_string_equal(o.result, "failed");
}

static void test_no_such_unit(void **state)
{
	struct outcome o = { 0 };
	struct unitjob *j = NULL;

	(void)state;
	assert_int_equal(unitjob_restart("missing.service", done, &o, &j), 0);
	wait_done(&o);
	assert_int_equal(o.calls, 1);
	assert_true(o.r < 0);
	assert_string_equal(o.result, "org.freedesktop.systemd1.NoSuchUnit");
}

static void test_two_jobs_each_their_own_end(void **state)
{
	struct outcome a = { 0 }, b = { 0 };
	struct unitjob *ja = NULL, *jb = NULL;

	(void)state;
	assert_int_equal(unitjob_restart("bad.service", done, &a, &ja), 0);
	assert_int_equal(unitjob_restart("ok.service", done, &b, &jb), 0);
	wait_done(&a);
	wait_done(&b);
	assert_int_equal(a.calls, 1);
	assert_int_equal(b.calls, 1);
	assert_string_equal(a.result, "failed");
	assert_string_equal(b.result, "done");
}

static void test_cancelled_job_never_calls_back(void **state)
{
	struct outcome o = { 0 };
	struct unitjob *j = NULL;

	(void)state;
	assert_int_equal(unitjob_restart("ok.service", done, &o, &j), 0);
	unitjob_cancel(j);
	assert_int_equal(unitjob_pending(), 0);
	run_loop(300);
	assert_int_equal(o.calls, 0);
}

static void test_no_bus_fails_at_once(void **state)
{
	struct outcome o = { 0 };
	struct unitjob *j = NULL;

	(void)state;
	unitjob_shutdown();
	setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/oomsentry-test-bus", 1);
	assert_true(unitjob_restart("ok.service", done, &o, &j) < 0);
	assert_int_equal(unitjob_pending(), 0);
	setenv("DBUS_SYSTEM_BUS_ADDRESS", address, 1);
	/* and the next call connects again */
	assert_int_equal(unitjob_restart("ok.service", done, &o, &j), 0);
	wait_done(&o);
	assert_string_equal(o.result, "done");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_job_done),
		cmocka_unit_test(test_a_failed_job),
		cmocka_unit_test(test_no_such_unit),
		cmocka_unit_test(test_two_jobs_each_their_own_end),
		cmocka_unit_test(test_cancelled_job_never_calls_back),
		cmocka_unit_test(test_no_bus_fails_at_once),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "actions.h"
#include "common.h"
#include "journal.h"
#include "log.h"
#include "procfs.h"
#include "procfs-read.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif
#ifndef SYS_process_mrelease
#define SYS_process_mrelease 448
#endif

/* Opens a pidfd and only then checks the start time: once the pidfd exists the pid cannot be recycled under us. */
static int pidfd_for(const char *proc_root, pid_t pid, uint64_t start_ns)
{
	struct proc_stat st;
	int fd, r;

	if (pid <= 1)
		return -EPERM;
	fd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (fd < 0)
		return -errno;
	if (start_ns) {
		r = procfs_read_stat(proc_root, pid, &st);
		if (r < 0 || st.start_ns != start_ns || st.state == 'Z') {
			close(fd);
			return -ESRCH;
		}
	}
	return fd;
}

int action_signal(const char *proc_root, pid_t pid, uint64_t start_ns, int sig)
{
	_cleanup_close_ int fd = pidfd_for(proc_root, pid, start_ns);

	if (fd < 0)
		return fd;
	if (syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) < 0)
		return -errno;
	return 0;
}

int action_kill_fd(const char *proc_root, pid_t pid, uint64_t start_ns)
{
	int fd = pidfd_for(proc_root, pid, start_ns);

	if (fd < 0)
		return fd;
	if (syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0) < 0) {
		int r = -errno;

		close(fd);
		return r;
	}
	return fd;
}

void action_release(int fd, pid_t pid)
{
	if (fd < 0)
		return;
	/* may fail with EINVAL while the victim still runs its exit path: the kill itself already happened */
	if (syscall(SYS_process_mrelease, fd, 0) < 0)
		log_debug_errno(-errno, "process_mrelease(%d)", pid);
	close(fd);
}

struct release_job {
	int n;
	int fds[];
};

static void *release_thread(void *arg)
{
	struct release_job *j = arg;
	sigset_t all;

	/* the daemon's signals stay with the loop */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (int i = 0; i < j->n; i++) {
		/* EINVAL while a victim still runs its exit path is no failure: it frees its memory itself */
		(void)syscall(SYS_process_mrelease, j->fds[i], 0);
		close(j->fds[i]);
	}
	free(j);
	return NULL;
}

void action_release_async(const int *fds, const pid_t *pids, int n)
{
	struct release_job *j;
	pthread_attr_t attr;
	pthread_t t;
	bool started = false;

	if (n <= 0)
		return;
	j = malloc(sizeof(*j) + (size_t)n * sizeof(int));
	if (j && pthread_attr_init(&attr) == 0) {
		j->n = n;
		memcpy(j->fds, fds, (size_t)n * sizeof(int));
		started = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
			  pthread_create(&t, &attr, release_thread, j) == 0;
		pthread_attr_destroy(&attr);
	}
	if (started)
		return;
	free(j);
	for (int i = 0; i < n; i++)
		action_release(fds[i], pids[i]);
}

int action_kill_release(const char *proc_root, pid_t pid, uint64_t start_ns)
{
	int fd = action_kill_fd(proc_root, pid, start_ns);

	if (fd < 0)
		return fd;
	action_release(fd, pid);
	return 0;
}

/* Commands we started and have not reaped yet: their exit status is journaled when they end. */
#define SPAWNED_MAX 8
static struct {
	pid_t pid;
	char instance[64];
	char cmd[128];
} spawned[SPAWNED_MAX];

static void close_inherited_fds(void)
{
	/* libcurl's sockets (and anything a library opened without O_CLOEXEC) must not reach the command */
	if (close_range(3, ~0U, 0) == 0)
		return;
	for (int fd = 3; fd < 65536; fd++)
		close(fd);
}

pid_t action_spawn_command(const char *cmd, const char *instance)
{
	/* what a restart script needs and nothing of ours: no OOMSENTRY_* (the auth header), no NOTIFY_SOCKET */
	static char *const envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				      "LANG=C.UTF-8", NULL };
	pid_t pid = fork();

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);
		sigset_t all;

		/* the daemon blocks SIGTERM/SIGINT for its signalfd; the command must not inherit that */
		sigfillset(&all);
		sigprocmask(SIG_UNBLOCK, &all, NULL);
		setsid();
		if (null >= 0) {
			dup2(null, 0);
			dup2(null, 1);
			dup2(null, 2);
		}
		close_inherited_fds();
		/* the daemon's own protection from the OOM killer (a unit's OOMScoreAdjust=-1000) is not for what the
		 * command starts: a ComfyUI that inherited it would make the kernel kill anything else first */
		{
			int adj = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
			if (adj >= 0) {
				(void)!write(adj, "0\n", 2);
				close(adj);
			}
		}
		execle("/bin/sh", "sh", "-c", cmd, (char *)NULL, envp);
		_exit(127);
	}
	for (size_t i = 0; i < SPAWNED_MAX; i++)
		if (!spawned[i].pid) {
			spawned[i].pid = pid;
			snprintf(spawned[i].instance, sizeof(spawned[i].instance), "%s", instance ? instance : "");
			snprintf(spawned[i].cmd, sizeof(spawned[i].cmd), "%s", cmd);
			break;
		}
	return pid;
}

static void journal_command_exit(size_t i, int status)
{
	bool ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
	struct rec r;

	rec_init(&r, REC_ACTION, ok ? LOG_INFO : LOG_ERR);
	rec_add(&r, "INSTANCE", "%s", spawned[i].instance);
	rec_add(&r, "ACTION", "restart_command");
	rec_add_pid(&r, "PID", spawned[i].pid);
	rec_add(&r, "RESULT", "%s", ok ? "ok" : "failed");
	if (WIFEXITED(status)) {
		rec_add(&r, "EXIT_STATUS", "%d", WEXITSTATUS(status));
		rec_message(&r, "instance %s: restart command '%s' exited with status %d", spawned[i].instance,
			    spawned[i].cmd, WEXITSTATUS(status));
	} else {
		rec_add(&r, "SIGNAL", "%d", WTERMSIG(status));
		rec_message(&r, "instance %s: restart command '%s' was killed by signal %d", spawned[i].instance,
			    spawned[i].cmd, WTERMSIG(status));
	}
	rec_emit(&r);
}

int action_reap_children(void)
{
	int status, failed = 0;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
		for (size_t i = 0; i < SPAWNED_MAX; i++)
			if (spawned[i].pid == pid) {
				journal_command_exit(i, status);
				failed += !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
				spawned[i].pid = 0;
			}
	return failed;
}

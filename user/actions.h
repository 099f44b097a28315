/* SPDX-License-Identifier: GPL-2.0 */
/* Effects on processes and services. Signals go through pidfds and every target is re-identified by its start
 * time after the pidfd is open, so a recycled pid is never hit. ComfyUI calls live in comfy.c; the decision of
 * what to do lives in policy.c; this file only does. */
#ifndef OOMSENTRY_ACTIONS_H
#define OOMSENTRY_ACTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Sends sig to pid if it is still the process that started at start_ns (boot-relative ns; 0 = do not check).
 * Returns 0, -ESRCH when it is gone or the pid now belongs to another process, or another negative errno. */
int action_signal(const char *proc_root, pid_t pid, uint64_t start_ns, int sig);
/* SIGKILL, then process_mrelease() so that the victim's memory returns now rather than when it is reaped. */
int action_kill_release(const char *proc_root, pid_t pid, uint64_t start_ns);
/* The two halves, so that a process tree is killed whole before any of it is reaped: the kill stops its growth at
 * once, the reap (in the caller's context: tens of ms for a GiB on a loaded machine) only gives memory back sooner.
 * action_kill_fd returns the pidfd the SIGKILL went through (>= 0, for action_release) or a negative errno as
 * action_signal; action_release runs process_mrelease on it and closes it (fd < 0: nothing). */
int action_kill_fd(const char *proc_root, pid_t pid, uint64_t start_ns);
void action_release(int fd, pid_t pid);
/* action_release of n pidfds (taken over) in a thread of its own, so that the loop goes on looking at memory
 * while a GiB is reaped (50-100 ms on a loaded machine: every event meanwhile would wait); inline when no thread
 * can be started. */
void action_release_async(const int *fds, const pid_t *pids, int n);
/* Starts "/bin/sh -c cmd" detached from us: own session, stdio to /dev/null, no descriptor above 2 and only PATH
 * and LANG in its environment (never the auth header or NOTIFY_SOCKET). Returns the child's pid or -errno; the
 * caller reaps it with action_reap_children(). */
pid_t action_spawn_command(const char *cmd, const char *instance);
/* waitpid(WNOHANG) on our own children; a command started by action_spawn_command gets an action record
 * (restart_command, RESULT ok/failed, EXIT_STATUS or SIGNAL). Returns how many of them failed. */
int action_reap_children(void);

#endif

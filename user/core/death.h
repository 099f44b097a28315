/* SPDX-License-Identifier: GPL-2.0 */
/* How a process died, decoded from the kernel's exit code: what the process table records and the journal says.
 * Pure (no I/O, no clock). */
#ifndef OOMSENTRY_DEATH_H
#define OOMSENTRY_DEATH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum death_kind {
	DEATH_UNKNOWN = 0,
	DEATH_EXITED,                /* code = exit status */
	DEATH_SIGNALED,              /* code = signal number */
	DEATH_OOM_KILLED,            /* code = signal number (SIGKILL) */
	DEATH_EXIT0_AFTER_CHILD_OOM, /* exited 0, but the OOM killer had just killed its child: not a clean exit */
	DEATH_KIND_MAX,
};

struct death_cause {
	enum death_kind kind;
	int32_t code;
	bool core_dumped;
};

#define DEATH_CAUSE_STR_MAX 80

/* Decodes the kernel's raw task->exit_code ((code << 8) | signal, 0x80 = core dumped) as seen at
 * sched_process_exit. A SIGKILL of an OOM victim becomes DEATH_OOM_KILLED; exit code 0 with
 * child_oom_killed_recently becomes DEATH_EXIT0_AFTER_CHILD_OOM. Returns 0, or -EINVAL (NULL ret, or a value the
 * kernel cannot produce: above 0xffff, both code and signal set, signal > 64) with ret->kind DEATH_UNKNOWN. */
int death_from_exit_code(uint32_t raw_task_exit_code, bool oom_victim, bool child_oom_killed_recently,
			 struct death_cause *ret);

/* "killed by the OOM killer", "killed by signal 15 (SIGTERM)", "exited with code 3", "exited with code 0 after the
 * OOM killer killed a child", "died for an unknown reason"; ", core dumped" appended when set. Writes into buf
 * (always NUL-terminated, truncated to buflen) and returns buf; returns "" when buf is NULL or buflen is 0. */
const char *death_cause_str(const struct death_cause *c, char *buf, size_t buflen);

/* "SIGTERM" for 1..31, NULL otherwise. */
const char *death_signal_name(int sig);

struct death {
	int32_t pid;
	struct death_cause cause;
	uint64_t rss_bytes_before;          /* last known rss of the process before it died */
	uint64_t cgroup_usage_bytes_before; /* its memory cgroup's usage just before */
	bool child_oom_killed_recently;     /* an OOM kill of a child or in the same cgroup happened seconds before */
	uint64_t at_ns;                     /* set by crashloop_record_death */
};

#endif

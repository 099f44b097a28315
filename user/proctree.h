/* SPDX-License-Identifier: GPL-2.0 */
/* The process table: every tracked process (from BPF exec/fork/exit and the /proc scan at start), who its
 * parent was when we first saw it, which ComfyUI server it descends from, its memory, and — once it is gone —
 * why it died. Dead entries stay a while so that late questions (crash loops, incidents) can be answered. */
#ifndef OOMSENTRY_PROCTREE_H
#define OOMSENTRY_PROCTREE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include "cgroup.h"
#include "death.h"

#define PROC_CMDLINE_MAX 512
#define PROC_PATH_MAX 256

enum proc_death {
	PROC_ALIVE = 0,
	PROC_DEATH_OOM,    /* chosen by the OOM killer (mark_victim seen) */
	PROC_DEATH_SIGNAL, /* fatal signal */
	PROC_DEATH_EXIT,   /* exit(code) */
	PROC_DEATH_UNKNOWN /* vanished while polling without BPF: the cause cannot be known */
};

struct proc {
	pid_t pid; /* in the daemon's pid namespace */
	pid_t ppid;
	pid_t first_ppid; /* parent when first seen: tells a reparented orphan from a daemon started by init */
	pid_t pgid;
	pid_t sid;
	uid_t uid;
	uint64_t start_ns; /* boot-relative, from /proc/PID/stat: with pid, identifies the process */
	char comm[16];
	char exe[PROC_PATH_MAX];
	char cmdline[PROC_CMDLINE_MAX];
	char cwd[PROC_PATH_MAX];
	char cgroup_dir[PROC_PATH_MAX]; /* memory cgroup directory */
	uint64_t cgroup_id;
	uint64_t rss_bytes;
	uint64_t rss_peak_bytes;
	uint32_t track_flags; /* OS_TRACKED_* */
	uint64_t rss_step_bytes; /* the RSS event step last set in the kernel's map for it; 0: the configured one */
	bool details; /* /proc was read successfully */
	/* lineage: the ComfyUI server this process was forked from (directly or not), if any */
	pid_t server_pid;
	uint64_t server_start_ns;
	int server_instance; /* -1: none */
	bool is_server;
	/* death */
	enum proc_death death;
	uint32_t exit_code_raw; /* task->exit_code as the kernel keeps it */
	struct death_cause cause;
	bool exit_lost; /* gone while the kernel dropped events: its exit was never seen */
	bool oom_victim;
	uint64_t oom_ns;
	uint64_t exit_ns;
	uint64_t rss_at_oom_bytes;
	struct proc *next;
	/* the table's list of dead entries in the order they died: the first to go when the table is full */
	struct proc *dead_prev, *dead_next;
	bool dead_listed;
};

struct proctree;

#define PROCTREE_DEFAULT_CAP 2048

struct proctree_stats {
	size_t entries; /* alive and dead */
	size_t alive;
	size_t cap;
	uint64_t evicted;
	uint64_t refused;
};

/* root: "/proc" normally; tests use fixture trees. Returns NULL only without memory. */
struct proctree *proctree_new(const char *proc_root, const struct cg_mounts *mounts);
void proctree_free(struct proctree *t);
const char *proctree_root(const struct proctree *t);
/* At most cap entries (0: no cap; default PROCTREE_DEFAULT_CAP). A new one makes room by dropping the dead entry
 * that died first, then the oldest live process that belongs to no server; a server's lineage is never dropped and
 * may exceed the cap; anything else is not tracked while nothing can go. */
void proctree_set_cap(struct proctree *t, size_t cap);
void proctree_stats(const struct proctree *t, struct proctree_stats *ret);

struct proc *proctree_get(struct proctree *t, pid_t pid);
/* Adds (or revives, after pid reuse) an entry and reads its details from /proc; returns NULL when the process is
 * already gone. */
struct proc *proctree_add(struct proctree *t, pid_t pid, uint32_t track_flags);
int proctree_refresh(struct proctree *t, struct proc *p);
void proctree_on_fork(struct proctree *t, pid_t parent, pid_t child);
/* Records the death; returns the entry (NULL when the pid was never seen). */
struct proc *proctree_on_exit(struct proctree *t, pid_t pid, uint32_t exit_code_raw, uint64_t now_ns);
/* Polling mode (no BPF): the process is gone and nobody can say why. */
void proctree_mark_vanished(struct proctree *t, struct proc *p, uint64_t now_ns);
/* With BPF: the process is gone and its exit event was dropped (ring buffer full); the cause is lost. */
void proctree_mark_exit_lost(struct proctree *t, struct proc *p, uint64_t now_ns);
/* Whether p's pid still is that process and not yet a zombie (a zombie's exit has been through the probes):
 * 1 alive, 0 ended (or the pid is another process now), negative errno when /proc cannot say. */
int proctree_check_alive(struct proctree *t, const struct proc *p);
struct proc *proctree_on_oom_victim(struct proctree *t, pid_t pid, uint64_t rss_bytes, uint64_t now_ns);
/* Marks a process as the server of an instance; its descendants inherit the lineage as they fork. */
void proctree_mark_server(struct proctree *t, struct proc *p, int instance);

/* "killed by the OOM killer", "killed by signal 15 (SIGTERM)", "exited with code 3", "exited with code 0 after
 * the OOM killer killed a child" (death_cause_str), or "running" / "vanished …". */
const char *proc_death_str(const struct proc *p, char *buf, size_t len);

typedef void (*proctree_fn)(struct proc *p, void *ctx);
void proctree_foreach(struct proctree *t, proctree_fn fn, void *ctx);
size_t proctree_count_alive(const struct proctree *t);
/* Drops dead entries older than keep_ns. */
void proctree_gc(struct proctree *t, uint64_t now_ns, uint64_t keep_ns);

/* Scope test used at the /proc scan: comm prefix match. */
bool proctree_comm_matches(const char *comm, const char (*prefixes)[16], int n);
/* Seeds the table from /proc: processes whose comm matches, or who live in one of the given cgroup dirs,
 * and all their descendants. Calls fn for each process added. Returns the number added or negative errno. */
int proctree_scan(struct proctree *t, const char (*prefixes)[16], int n_prefixes, const char (*cgroups)[256],
		  int n_cgroups, proctree_fn fn, void *ctx);

#endif

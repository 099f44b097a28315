// SPDX-License-Identifier: GPL-2.0
#include <string.h>
#include "common.h"
#include "cgroup-read.h"
#include "log.h"
#include "procfs.h"
#include "procfs-read.h"
#include "proctree.h"
#include "oomsentry/events.h"

#define PT_BUCKETS 1024

struct proctree {
	char root[PROC_PATH_MAX];
	struct cg_mounts mounts;
	bool has_mounts;
	struct proc *buckets[PT_BUCKETS];
	size_t n_alive;
	size_t n_entries;       /* alive and dead */
	size_t cap;             /* 0: none */
	uint64_t evicted;       /* entries dropped to stay within cap */
	uint64_t refused;       /* processes not tracked because nothing could be dropped */
	uint64_t last_exit_ns;  /* the entry that died last may still be in a caller's hands */
	struct proc *dead_head, *dead_tail; /* dead entries, oldest death first: eviction takes the head */
};

struct proctree *proctree_new(const char *proc_root, const struct cg_mounts *mounts)
{
	struct proctree *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	snprintf(t->root, sizeof(t->root), "%s", proc_root ? proc_root : "/proc");
	t->cap = PROCTREE_DEFAULT_CAP;
	if (mounts) {
		t->mounts = *mounts;
		t->has_mounts = true;
	}
	return t;
}

void proctree_free(struct proctree *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < PT_BUCKETS; i++) {
		struct proc *p = t->buckets[i];
		while (p) {
			struct proc *n = p->next;
			free(p);
			p = n;
		}
	}
	free(t);
}

void proctree_set_cap(struct proctree *t, size_t cap)
{
	t->cap = cap;
}

void proctree_stats(const struct proctree *t, struct proctree_stats *ret)
{
	*ret = (struct proctree_stats){ .entries = t->n_entries, .alive = t->n_alive, .cap = t->cap,
					.evicted = t->evicted, .refused = t->refused };
}

static void dead_append(struct proctree *t, struct proc *p)
{
	p->dead_prev = t->dead_tail;
	p->dead_next = NULL;
	if (t->dead_tail)
		t->dead_tail->dead_next = p;
	else
		t->dead_head = p;
	t->dead_tail = p;
	p->dead_listed = true;
}

static void dead_unlink(struct proctree *t, struct proc *p)
{
	if (!p->dead_listed)
		return;
	if (p->dead_prev)
		p->dead_prev->dead_next = p->dead_next;
	else
		t->dead_head = p->dead_next;
	if (p->dead_next)
		p->dead_next->dead_prev = p->dead_prev;
	else
		t->dead_tail = p->dead_prev;
	p->dead_prev = p->dead_next = NULL;
	p->dead_listed = false;
}

/* Unlinks and frees p, which must be in its bucket. */
static void drop(struct proctree *t, struct proc *p)
{
	for (struct proc **pp = &t->buckets[(unsigned)p->pid % PT_BUCKETS]; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			dead_unlink(t, p);
			if (p->death == PROC_ALIVE && t->n_alive)
				t->n_alive--;
			free(p);
			t->n_entries--;
			t->evicted++;
			return;
		}
}

/* Makes room for one entry: the dead entry that died first goes, then a live one that belongs to no server
 * (the oldest start); never a server, its lineage, or the entry that died last (its caller may still use it).
 * False when nothing may go. */
static bool make_room(struct proctree *t)
{
	struct proc *alive = NULL;

	/* a burst of short-lived processes fills the table with the dead: the oldest goes at once */
	for (struct proc *d = t->dead_head; d; d = d->dead_next)
		if (d->exit_ns != t->last_exit_ns) {
			drop(t, d);
			return true;
		}
	for (size_t i = 0; i < PT_BUCKETS; i++)
		for (struct proc *p = t->buckets[i]; p; p = p->next)
			if (p->death == PROC_ALIVE && !p->is_server && !p->server_pid && !p->oom_victim &&
			    (!alive || p->start_ns < alive->start_ns))
				alive = p;
	if (!alive)
		return false;
	drop(t, alive);
	return true;
}

const char *proctree_root(const struct proctree *t)
{
	return t->root;
}

struct proc *proctree_get(struct proctree *t, pid_t pid)
{
	for (struct proc *p = t->buckets[(unsigned)pid % PT_BUCKETS]; p; p = p->next)
		if (p->pid == pid)
			return p;
	return NULL;
}

int proctree_refresh(struct proctree *t, struct proc *p)
{
	struct proc_stat st;
	struct proc_status ss;
	enum cg_version ver;
	int r;

	r = procfs_read_stat(t->root, p->pid, &st);
	if (r < 0)
		return r;
	/* start time and pid identify a process: another start time is another process (its exit was missed) */
	if (p->start_ns && st.start_ns != p->start_ns)
		return -ESRCH;
	/* a zombie has no memory, cmdline or cgroup worth reading; its exit event is on the way */
	p->ppid = st.ppid;
	p->pgid = st.pgrp;
	p->sid = st.session;
	p->start_ns = st.start_ns;
	snprintf(p->comm, sizeof(p->comm), "%.15s", st.comm);
	if (procfs_read_status(t->root, p->pid, &ss) == 0) {
		p->uid = ss.uid_real;
		if (ss.has_memory) {
			p->rss_bytes = ss.vm_rss_bytes;
			p->rss_peak_bytes = MAX(p->rss_peak_bytes, p->rss_bytes);
		}
	}
	procfs_read_cmdline(t->root, p->pid, p->cmdline, sizeof(p->cmdline));
	if (procfs_read_exe(t->root, p->pid, p->exe, sizeof(p->exe), NULL) < 0)
		p->exe[0] = 0;
	if (procfs_read_cwd(t->root, p->pid, p->cwd, sizeof(p->cwd), NULL) < 0)
		p->cwd[0] = 0;
	if (t->has_mounts &&
	    cg_pid_memory_dir(t->root, p->pid, &t->mounts, p->cgroup_dir, sizeof(p->cgroup_dir), &ver) == 0)
		cg_dir_id(p->cgroup_dir, &p->cgroup_id);
	p->details = true;
	return 0;
}

static void proc_reset(struct proc *p, pid_t pid)
{
	struct proc *next = p->next;

	memset(p, 0, sizeof(*p));
	p->next = next;
	p->pid = pid;
	p->server_instance = -1;
}

struct proc *proctree_add(struct proctree *t, pid_t pid, uint32_t track_flags)
{
	struct proc *p, fresh;
	unsigned b = (unsigned)pid % PT_BUCKETS;
	int r;

	if (pid <= 0)
		return NULL;
	p = proctree_get(t, pid);
	if (p && p->death == PROC_ALIVE) {
		/* exec replaced the image: name, cmdline, exe and memory are the new program's */
		uint64_t peak = p->rss_peak_bytes;

		p->rss_peak_bytes = 0;
		r = proctree_refresh(t, p);
		if (r < 0)
			p->rss_peak_bytes = peak;
		if (r != -ESRCH) {
			p->track_flags |= track_flags;
			return p;
		}
		/* the pid was reused: the old process is gone */
		if (t->n_alive)
			t->n_alive--;
		p->death = PROC_DEATH_UNKNOWN;
		dead_append(t, p);
	}
	/* read the new process first: a dead entry keeps its record while the pid is still gone */
	proc_reset(&fresh, pid);
	fresh.track_flags = track_flags;
	if (proctree_refresh(t, &fresh) < 0)
		return NULL;
	fresh.first_ppid = fresh.ppid;
	/* inherit the server lineage from a parent we know */
	struct proc *parent = proctree_get(t, fresh.ppid);
	if (parent && parent->death == PROC_ALIVE) {
		if (parent->is_server) {
			fresh.server_pid = parent->pid;
			fresh.server_start_ns = parent->start_ns;
			fresh.server_instance = parent->server_instance;
		} else if (parent->server_pid) {
			fresh.server_pid = parent->server_pid;
			fresh.server_start_ns = parent->server_start_ns;
			fresh.server_instance = parent->server_instance;
		}
	}
	if (!p) {
		/* a server's own processes are few and must be known; anything else waits for room */
		if (t->cap && t->n_entries >= t->cap && !make_room(t) && !fresh.server_pid) {
			t->refused++;
			return NULL;
		}
		p = calloc(1, sizeof(*p));
		if (!p)
			return NULL;
		p->next = t->buckets[b];
		t->buckets[b] = p;
		t->n_entries++;
	}
	dead_unlink(t, p); /* a dead entry of the same pid becomes the new process */
	fresh.next = p->next;
	*p = fresh;
	t->n_alive++;
	return p;
}

void proctree_on_fork(struct proctree *t, pid_t parent, pid_t child)
{
	struct proc *c = proctree_add(t, child, OS_TRACKED_CHILD);
	struct proc *pp;

	/* read after its parent died, the child shows init or a subreaper as parent: trust the event */
	if (!c || c->ppid == parent)
		return;
	c->first_ppid = parent;
	pp = proctree_get(t, parent);
	if (pp && !c->server_pid && !c->is_server) {
		c->server_pid = pp->is_server ? pp->pid : pp->server_pid;
		c->server_start_ns = pp->is_server ? pp->start_ns : pp->server_start_ns;
		c->server_instance = c->server_pid ? pp->server_instance : -1;
	}
}

struct proc *proctree_on_oom_victim(struct proctree *t, pid_t pid, uint64_t rss_bytes, uint64_t now_ns)
{
	struct proc *p = proctree_get(t, pid);

	if (!p || p->death != PROC_ALIVE)
		p = proctree_add(t, pid, 0);
	if (!p)
		return NULL;
	p->oom_victim = true;
	p->oom_ns = now_ns;
	p->rss_at_oom_bytes = rss_bytes;
	return p;
}

/* seeds/003: a server that "exited with code 0" right after the OOM killer took one of its children */
static bool child_oom_killed_recently(struct proctree *t, pid_t pid, uint64_t now_ns)
{
	for (size_t i = 0; i < PT_BUCKETS; i++)
		for (struct proc *c = t->buckets[i]; c; c = c->next)
			if (c->oom_victim && (c->first_ppid == pid || c->ppid == pid || c->server_pid == pid) &&
			    c->oom_ns + 10 * NSEC_PER_SEC > now_ns)
				return true;
	return false;
}

struct proc *proctree_on_exit(struct proctree *t, pid_t pid, uint32_t exit_code_raw, uint64_t now_ns)
{
	struct proc *p = proctree_get(t, pid);

	if (!p || p->death != PROC_ALIVE)
		return NULL;
	p->exit_code_raw = exit_code_raw;
	p->exit_ns = now_ns;
	t->last_exit_ns = now_ns;
	death_from_exit_code(exit_code_raw, p->oom_victim, exit_code_raw == 0 && child_oom_killed_recently(t, pid, now_ns),
			     &p->cause);
	switch (p->cause.kind) {
	case DEATH_OOM_KILLED: p->death = PROC_DEATH_OOM; break;
	case DEATH_SIGNALED: p->death = PROC_DEATH_SIGNAL; break;
	case DEATH_EXITED:
	case DEATH_EXIT0_AFTER_CHILD_OOM: p->death = PROC_DEATH_EXIT; break;
	default: p->death = PROC_DEATH_UNKNOWN; break;
	}
	dead_append(t, p);
	if (t->n_alive)
		t->n_alive--;
	return p;
}

void proctree_mark_vanished(struct proctree *t, struct proc *p, uint64_t now_ns)
{
	if (p->death != PROC_ALIVE)
		return;
	p->death = PROC_DEATH_UNKNOWN;
	p->cause.kind = DEATH_UNKNOWN;
	p->exit_ns = now_ns;
	t->last_exit_ns = now_ns;
	dead_append(t, p);
	if (t->n_alive)
		t->n_alive--;
}

void proctree_mark_exit_lost(struct proctree *t, struct proc *p, uint64_t now_ns)
{
	if (p->death != PROC_ALIVE)
		return;
	proctree_mark_vanished(t, p, now_ns);
	p->exit_lost = true;
}

int proctree_check_alive(struct proctree *t, const struct proc *p)
{
	struct proc_stat st;
	int r = procfs_read_stat(t->root, p->pid, &st);

	if (r == -ENOENT || r == -ESRCH)
		return 0;
	if (r < 0)
		return r;
	if (p->start_ns && st.start_ns != p->start_ns)
		return 0;
	return st.state == 'Z' || st.state == 'X' || st.state == 'x' ? 0 : 1;
}

void proctree_mark_server(struct proctree *t, struct proc *p, int instance)
{
	bool changed = true;

	p->is_server = true;
	p->server_instance = instance;
	p->server_pid = 0;
	/* processes seen before the server was known (the /proc scan) inherit its lineage now */
	while (changed) {
		changed = false;
		for (size_t i = 0; i < PT_BUCKETS; i++) {
			for (struct proc *c = t->buckets[i]; c; c = c->next) {
				struct proc *parent;

				if (c->death != PROC_ALIVE || c->is_server || (c->server_pid == p->pid &&
									     c->server_start_ns == p->start_ns))
					continue;
				parent = proctree_get(t, c->ppid);
				if (parent == p || (parent && parent->death == PROC_ALIVE && parent->server_pid == p->pid &&
						    parent->server_start_ns == p->start_ns)) {
					c->server_pid = p->pid;
					c->server_start_ns = p->start_ns;
					c->server_instance = instance;
					changed = true;
				}
			}
		}
	}
}

const char *proc_death_str(const struct proc *p, char *buf, size_t len)
{
	if (p->death == PROC_ALIVE)
		snprintf(buf, len, "running");
	else if (p->death == PROC_DEATH_UNKNOWN && p->cause.kind == DEATH_UNKNOWN && p->exit_lost)
		snprintf(buf, len, "vanished (its exit event was dropped: cause unknown)");
	else if (p->death == PROC_DEATH_UNKNOWN && p->cause.kind == DEATH_UNKNOWN)
		snprintf(buf, len, "vanished (cause unknown without the BPF probes)");
	else
		death_cause_str(&p->cause, buf, len);
	return buf;
}

void proctree_foreach(struct proctree *t, proctree_fn fn, void *ctx)
{
	for (size_t i = 0; i < PT_BUCKETS; i++) {
		struct proc *p = t->buckets[i];
		while (p) {
			struct proc *n = p->next; /* fn may not free, but keep iteration robust */
			fn(p, ctx);
			p = n;
		}
	}
}

size_t proctree_count_alive(const struct proctree *t)
{
	return t->n_alive;
}

void proctree_gc(struct proctree *t, uint64_t now_ns, uint64_t keep_ns)
{
	for (size_t i = 0; i < PT_BUCKETS; i++) {
		struct proc **pp = &t->buckets[i];
		while (*pp) {
			struct proc *p = *pp;
			if (p->death != PROC_ALIVE && p->exit_ns + keep_ns < now_ns) {
				*pp = p->next;
				dead_unlink(t, p);
				free(p);
				t->n_entries--;
			} else {
				pp = &p->next;
			}
		}
	}
}

bool proctree_comm_matches(const char *comm, const char (*prefixes)[16], int n)
{
	for (int i = 0; i < n; i++)
		if (prefixes[i][0] && !strncmp(comm, prefixes[i], strlen(prefixes[i])))
			return true;
	return false;
}

static bool in_cgroups(const char *dir, const char (*cgroups)[256], int n)
{
	for (int i = 0; i < n; i++) {
		size_t len = strlen(cgroups[i]);
		if (len && !strncmp(dir, cgroups[i], len) && (dir[len] == 0 || dir[len] == '/'))
			return true;
	}
	return false;
}

int proctree_scan(struct proctree *t, const char (*prefixes)[16], int n_prefixes, const char (*cgroups)[256],
		  int n_cgroups, proctree_fn fn, void *ctx)
{
	_cleanup_free_ pid_t *pids = NULL;
	_cleanup_free_ pid_t *ppids = NULL;
	_cleanup_free_ bool *want = NULL;
	size_t n = 0;
	int added = 0, r;
	bool changed = true;

	r = procfs_list_pids(t->root, &pids, &n);
	if (r < 0)
		return r;
	ppids = calloc(n ? n : 1, sizeof(*ppids));
	want = calloc(n ? n : 1, sizeof(*want));
	if (!ppids || !want)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct proc_stat st;
		char dir[PROC_PATH_MAX];
		enum cg_version ver;

		if (procfs_read_stat(t->root, pids[i], &st) < 0)
			continue;
		ppids[i] = st.ppid;
		want[i] = proctree_comm_matches(st.comm, prefixes, n_prefixes);
		if (!want[i] && n_cgroups && t->has_mounts &&
		    cg_pid_memory_dir(t->root, pids[i], &t->mounts, dir, sizeof(dir), &ver) == 0)
			want[i] = in_cgroups(dir, cgroups, n_cgroups);
	}
	/* descendants of tracked processes are tracked too: propagate until nothing changes */
	while (changed) {
		changed = false;
		for (size_t i = 0; i < n; i++) {
			if (want[i])
				continue;
			for (size_t j = 0; j < n; j++) {
				if (want[j] && pids[j] == ppids[i]) {
					want[i] = changed = true;
					break;
				}
			}
		}
	}
	/* parents first (ascending pids mostly are), so that lineage is inherited */
	for (size_t i = 0; i < n; i++) {
		struct proc *p;

		struct proc *known = proctree_get(t, pids[i]);

		/* rescans (polling mode) only report what is new */
		if (!want[i] || pids[i] == getpid() || (known && known->death == PROC_ALIVE))
			continue;
		p = proctree_add(t, pids[i], OS_TRACKED_SEEDED);
		if (!p)
			continue;
		added++;
		if (fn)
			fn(p, ctx);
	}
	return added;
}

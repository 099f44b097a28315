// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>
#include "common.h"
#include "cgroup-read.h"
#include "comfy-client.h"
#include "curl-loop.h"
#include "incident.h"
#include "incident-store.h"
#include "instance.h"
#include "instlock.h"
#include "journal.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "metrics-http.h"
#include "probes.h"
#include "procfs.h"
#include "procfs-read.h"
#include "proctree.h"
#include "prekill.h"
#include "prune.h"
#include "rssarm.h"
#include "resident.h"
#include "status.h"
#include "units.h"
#include "utf8.h"
#include "comfy-ws.h"
#include "unitjob.h"
#include "localconn.h"
#include "statefile.h"

/* epoll tags */
enum { TAG_RB = 1, TAG_SIG, TAG_SAMPLE, TAG_POLL, TAG_METRICS, TAG_STATUS, TAG_PREKILL, TAG_WS, TAG_CURL, TAG_BUS, TAG_CONN,
       TAG_USAGE, TAG_FAR };

static const char *cgroup_name(const struct daemon *d, uint64_t id, char *buf, size_t len)
{
	const char *root = cg_mounts_memory_root(&d->mounts);

	if (!id || !root[0] || cg_find_dir_by_id(root, id, buf, len) < 0)
		snprintf(buf, len, "%s", id ? "?" : "");
	return buf;
}

static void add_proc_fields(struct rec *r, const struct os_event *e, const struct proc *p)
{
	rec_add_pid(r, "PID", e->pid);
	rec_add(r, "COMM", "%.16s", e->comm);
	if (p && p->cgroup_dir[0])
		rec_add(r, "CGROUP", "%s", p->cgroup_dir);
	if (e->cgroup_id)
		rec_add_u64(r, "CGROUP_ID", e->cgroup_id);
}

static void emit_exec(struct daemon *d, const struct os_event *e, struct proc *p)
{
	struct rec r;

	rec_init(&r, REC_EXEC, LOG_INFO);
	add_proc_fields(&r, e, p);
	rec_add_pid(&r, "PPID", e->ppid);
	rec_add(&r, "FILENAME", "%s", e->exec.filename);
	if (p)
		rec_add(&r, "CMDLINE", "%s", p->cmdline);
	rec_message(&r, "exec pid %u %.16s (%s) parent %u%s%s", e->pid, e->comm, e->exec.filename, e->ppid,
		    p && p->cgroup_dir[0] ? " cgroup " : "", p ? p->cgroup_dir : "");
	rec_emit(&r);
	for (int i = 0; p && i < d->n_instances; i++)
		instance_on_new_proc(d->instances[i], p, e->ts_ns);
}

static void on_exec(struct daemon *d, const struct os_event *e)
{
	emit_exec(d, e, daemon_track(d, (int)e->pid, 0));
}

static void on_fork(struct daemon *d, const struct os_event *e)
{
	struct proc *c;
	struct rec r;

	proctree_on_fork(d->pt, (pid_t)e->pid, (pid_t)e->fork.child_pid);
	c = proctree_get(d->pt, (pid_t)e->fork.child_pid);
	if (c)
		daemon_watch_cgroup(d, c->cgroup_id);
	rec_init(&r, REC_FORK, LOG_INFO);
	add_proc_fields(&r, e, c);
	rec_add_pid(&r, "CHILD_PID", e->fork.child_pid);
	rec_message(&r, "fork pid %u %.16s -> child %u", e->pid, e->comm, e->fork.child_pid);
	rec_emit(&r);
	for (int i = 0; c && i < d->n_instances; i++)
		instance_on_new_proc(d->instances[i], c, e->ts_ns);
}

/* Stable machine-readable names for OOMSENTRY_CAUSE. */
static const char *death_kind_key(enum death_kind k)
{
	switch (k) {
	case DEATH_EXITED: return "exit";
	case DEATH_SIGNALED: return "signal";
	case DEATH_OOM_KILLED: return "oom";
	case DEATH_EXIT0_AFTER_CHILD_OOM: return "exit0_after_child_oom";
	default: return "unknown";
	}
}

/* One exit record, whatever told us: dc is the cause (p's when the process was known). */
static void emit_exit(struct daemon *d, const struct os_event *e, struct proc *p, const struct death_cause *dc,
		      uint64_t now_ns)
{
	char cause[96], rss[32];
	struct rec r;

	rec_init(&r, REC_EXIT,
		 dc->kind == DEATH_OOM_KILLED || dc->kind == DEATH_EXIT0_AFTER_CHILD_OOM ? LOG_WARNING : LOG_INFO);
	add_proc_fields(&r, e, p);
	if (p)
		proc_death_str(p, cause, sizeof(cause));
	else
		death_cause_str(dc, cause, sizeof(cause));
	rec_add(&r, "CAUSE", "%s", death_kind_key(dc->kind));
	rec_add(&r, "EXIT_CODE", "%d",
		dc->kind == DEATH_EXITED || dc->kind == DEATH_EXIT0_AFTER_CHILD_OOM ? dc->code : -1);
	rec_add(&r, "SIGNAL", "%d", dc->kind == DEATH_SIGNALED || dc->kind == DEATH_OOM_KILLED ? dc->code : 0);
	rec_add(&r, "REASON", "%s", cause);
	if (p) {
		rec_add_bytes(&r, "RSS_BYTES", p->rss_bytes);
		rec_add_bytes(&r, "RSS_PEAK_BYTES", p->rss_peak_bytes);
	}
	FMT_BYTES(rss, p ? p->rss_peak_bytes : 0);
	rec_message(&r, "exit pid %u %.16s: %s (peak RSS %s)", e->pid, e->comm, cause, rss);
	rec_emit(&r);
	for (int i = 0; p && i < d->n_instances; i++)
		instance_on_exit(d->instances[i], p, now_ns);
}

static void on_exit_event(struct daemon *d, const struct os_event *e)
{
	struct proc *p = proctree_on_exit(d->pt, (pid_t)e->pid, e->exit.exit_code, e->ts_ns);
	struct death_cause dc;

	if (p) {
		/* the kernel's high-water mark beats our samples, which only see RSS in rss_step steps */
		p->rss_peak_bytes = MAX(p->rss_peak_bytes, e->exit.maxrss_pages * (uint64_t)getpagesize());
		dc = p->cause;
	} else {
		death_from_exit_code(e->exit.exit_code, false, false, &dc);
	}
	emit_exit(d, e, p, &dc, e->ts_ns);
}

static void on_oom_victim(struct daemon *d, const struct os_event *e)
{
	uint64_t page = e->oom.page_size ? e->oom.page_size : 4096;
	uint64_t rss = (e->oom.anon_rss_pages + e->oom.file_rss_pages + e->oom.shmem_rss_pages) * page;
	struct proc *p = proctree_on_oom_victim(d->pt, (pid_t)e->pid, rss, e->ts_ns);
	char cg[PROC_PATH_MAX], rssbuf[32], limbuf[32] = "unknown";
	struct cg_memory m;
	struct rec r;

	if (p && p->cgroup_dir[0])
		snprintf(cg, sizeof(cg), "%s", p->cgroup_dir);
	else
		cgroup_name(d, e->cgroup_id, cg, sizeof(cg));
	rec_init(&r, REC_OOM_VICTIM, LOG_CRIT);
	rec_add_pid(&r, "PID", e->pid);
	rec_add(&r, "COMM", "%.16s", e->comm);
	rec_add(&r, "CGROUP", "%s", cg);
	rec_add_u64(&r, "CGROUP_ID", e->cgroup_id);
	rec_add_bytes(&r, "RSS_BYTES", rss);
	rec_add_bytes(&r, "ANON_RSS_BYTES", e->oom.anon_rss_pages * page);
	rec_add_bytes(&r, "FILE_RSS_BYTES", e->oom.file_rss_pages * page);
	rec_add_bytes(&r, "SHMEM_RSS_BYTES", e->oom.shmem_rss_pages * page);
	rec_add_bytes(&r, "TOTAL_VM_BYTES", e->oom.total_vm_pages * page);
	rec_add(&r, "OOM_SCORE_ADJ", "%d", e->oom.oom_score_adj);
	if (cg[0] && cg[0] != '?' && cg_read_memory(cg, cg_mounts_memory_version(&d->mounts), &m) == 0 &&
	    m.effective_limit_bytes != CG_UNLIMITED) {
		rec_add_bytes(&r, "LIMIT_BYTES", m.effective_limit_bytes);
		FMT_BYTES(limbuf, m.effective_limit_bytes);
	}
	FMT_BYTES(rssbuf, rss);
	rec_message(&r, "OOM killer chose pid %u %.16s (RSS %s, cgroup %s, limit %s)", e->pid, e->comm, rssbuf,
		    cg[0] ? cg : "/", limbuf);
	rec_emit(&r);
	for (int i = 0; p && i < d->n_instances; i++)
		instance_on_oom(d->instances[i], p, e->ts_ns);
}

static void on_rss(struct daemon *d, const struct os_event *e)
{
	struct proc *p = proctree_get(d->pt, (pid_t)e->pid);
	uint64_t now = now_mono_ns();
	char buf[32];
	struct rec r;

	/* an event queued while the daemon started (BPF attached, /proc read, the state files) waited for no look */
	if (now >= e->ts_ns && e->ts_ns >= d->looking_since_ns)
		learn_lag_add(&d->event_lag, now - e->ts_ns, now);
	if (p) {
		p->rss_bytes = e->rss.rss_bytes;
		p->rss_peak_bytes = MAX(p->rss_peak_bytes, p->rss_bytes);
	}
	rec_init(&r, REC_RSS, LOG_INFO);
	add_proc_fields(&r, e, p);
	rec_add_bytes(&r, "RSS_BYTES", e->rss.rss_bytes);
	rec_add_bytes(&r, "ANON_BYTES", e->rss.anon_bytes);
	rec_add_bytes(&r, "FILE_BYTES", e->rss.file_bytes);
	rec_add_bytes(&r, "SHMEM_BYTES", e->rss.shmem_bytes);
	/* when the kernel saw the step: what the reaction benchmark measures the action against */
	rec_add_u64(&r, "EVENT_MONOTONIC_NS", e->ts_ns);
	FMT_BYTES(buf, e->rss.rss_bytes);
	rec_message(&r, "rss pid %u %.16s now %s", e->pid, e->comm, buf);
	rec_emit(&r);
	for (int i = 0; p && i < d->n_instances; i++)
		instance_on_rss(d->instances[i], p, e->ts_ns);
}

static void on_mmap(struct daemon *d, const struct os_event *e)
{
	struct proc *p = proctree_get(d->pt, (pid_t)e->pid);
	char link[96], path[PROC_PATH_MAX] = "[anonymous]", buf[32];
	bool unmap = e->type == OS_EV_MUNMAP;
	struct rec r;
	ssize_t n;

	if (!unmap && e->mmap.fd >= 0) {
		/* map_files names the mapping itself, so it survives the fd being closed right after mmap() */
		snprintf(link, sizeof(link), "%s/%u/map_files/%llx-%llx", proctree_root(d->pt), e->pid,
			 (unsigned long long)e->mmap.addr, (unsigned long long)(e->mmap.addr + e->mmap.len));
		n = readlink(link, path, sizeof(path) - 1);
		if (n < 0) {
			snprintf(link, sizeof(link), "%s/%u/fd/%d", proctree_root(d->pt), e->pid, e->mmap.fd);
			n = readlink(link, path, sizeof(path) - 1);
		}
		path[n > 0 ? n : 0] = 0;
		if (n <= 0)
			snprintf(path, sizeof(path), "fd %d (gone)", e->mmap.fd);
	}
	rec_init(&r, unmap ? REC_MUNMAP : REC_MMAP, LOG_INFO);
	add_proc_fields(&r, e, p);
	rec_add_bytes(&r, "SIZE_BYTES", e->mmap.len);
	rec_add(&r, "ADDR", "0x%llx", (unsigned long long)e->mmap.addr);
	if (!unmap)
		rec_add(&r, "PATH", "%s", path);
	FMT_BYTES(buf, e->mmap.len);
	if (unmap)
		rec_message(&r, "munmap pid %u %.16s %s at 0x%llx", e->pid, e->comm, buf, (unsigned long long)e->mmap.addr);
	else
		rec_message(&r, "mmap pid %u %.16s %s of %s", e->pid, e->comm, buf, path);
	rec_emit(&r);
}

static void on_reclaim(struct daemon *d, const struct os_event *e)
{
	struct proc *p = proctree_get(d->pt, (pid_t)e->pid);
	char cg[PROC_PATH_MAX];
	struct rec r;

	if (p && p->cgroup_dir[0])
		snprintf(cg, sizeof(cg), "%s", p->cgroup_dir);
	else
		cgroup_name(d, e->cgroup_id, cg, sizeof(cg));
	rec_init(&r, REC_RECLAIM, LOG_WARNING);
	add_proc_fields(&r, e, p);
	if (!(p && p->cgroup_dir[0]) && cg[0])
		rec_add(&r, "CGROUP", "%s", cg);
	rec_add(&r, "KIND", "%s", e->reclaim.kind == OS_RECLAIM_MEMCG ? "memcg" : "direct");
	rec_add_u64(&r, "COUNT", e->reclaim.count);
	rec_add_u64(&r, "SUPPRESSED", e->reclaim.suppressed);
	rec_message(&r, "%s reclaim: pid %u %.16s waits for memory in %s (%llu reclaims so far)",
		    e->reclaim.kind == OS_RECLAIM_MEMCG ? "cgroup limit" : "direct", e->pid, e->comm,
		    cg[0] ? cg : "/", (unsigned long long)e->reclaim.count);
	rec_emit(&r);
	for (int i = 0; i < d->n_instances; i++)
		instance_on_reclaim(d->instances[i], e->cgroup_id, e->reclaim.count, e->ts_ns);
}

static void on_memcg(struct daemon *d, const struct os_event *e)
{
	char cg[PROC_PATH_MAX];
	bool oom = e->memcg.item == OS_MEMCG_OOM_KILL;
	struct rec r;

	cgroup_name(d, e->cgroup_id, cg, sizeof(cg));
	rec_init(&r, REC_MEMCG, oom ? LOG_WARNING : LOG_DEBUG);
	rec_add(&r, "CGROUP", "%s", cg);
	rec_add_u64(&r, "CGROUP_ID", e->cgroup_id);
	rec_add(&r, "ITEM", "%s", oom ? "oom_kill" : "pgscan_direct");
	rec_add_u64(&r, "TOTAL", e->memcg.total);
	rec_message(&r, "cgroup %s: %s (total %llu)", cg, oom ? "OOM kill" : "direct reclaim scanning",
		    (unsigned long long)e->memcg.total);
	if (oom || log_get_max_priority() >= LOG_DEBUG)
		rec_emit(&r);
}

static int on_event(void *ctx, const struct os_event *e)
{
	struct daemon *d = ctx;

	if (e->type < ARRAY_SIZE(d->events_by_type))
		d->events_by_type[e->type]++;
	switch (e->type) {
	case OS_EV_EXEC: on_exec(d, e); break;
	case OS_EV_FORK: on_fork(d, e); break;
	case OS_EV_EXIT: on_exit_event(d, e); break;
	case OS_EV_OOM_VICTIM: on_oom_victim(d, e); break;
	case OS_EV_RSS: on_rss(d, e); break;
	case OS_EV_MMAP:
	case OS_EV_MUNMAP: on_mmap(d, e); break;
	case OS_EV_RECLAIM: on_reclaim(d, e); break;
	case OS_EV_MEMCG: on_memcg(d, e); break;
	default: log_debug("unknown BPF event type %u", e->type); break;
	}
	return 0;
}

/* ---- fallback without BPF: what /proc can still tell ---- */

struct poll_ctx {
	struct daemon *d;
	uint64_t now;
};

static void poll_one(struct proc *p, void *ctx)
{
	struct poll_ctx *pc = ctx;
	struct os_event e = { 0 };
	uint64_t before = p->rss_bytes;

	if (p->death != PROC_ALIVE)
		return;
	e.pid = (uint32_t)p->pid;
	e.ts_ns = pc->now;
	e.cgroup_id = p->cgroup_id;
	memcpy(e.comm, p->comm, sizeof(e.comm));
	if (proctree_refresh(pc->d->pt, p) < 0) {
		proctree_mark_vanished(pc->d->pt, p, pc->now);
		emit_exit(pc->d, &e, p, &p->cause, pc->now);
		return;
	}
	if (p->rss_bytes + pc->d->cfg->rss_step_bytes <= before || p->rss_bytes >= before + pc->d->cfg->rss_step_bytes) {
		e.rss.rss_bytes = p->rss_bytes;
		on_rss(pc->d, &e);
	}
}

static void poll_new(struct proc *p, void *ctx)
{
	struct daemon *d = ctx;
	struct os_event e = { .type = OS_EV_EXEC };

	e.pid = (uint32_t)p->pid;
	e.ppid = (uint32_t)p->ppid;
	memcpy(e.comm, p->comm, sizeof(e.comm));
	snprintf(e.exec.filename, sizeof(e.exec.filename), "%s", p->exe);
	/* the scan has just read it from /proc: only the record is missing */
	emit_exec(d, &e, p);
}

static void polling_tick(struct daemon *d, uint64_t now)
{
	struct poll_ctx pc = { d, now };

	proctree_foreach(d->pt, poll_one, &pc);
	/* new processes: a rescan finds those that match the scope; known ones are skipped */
	proctree_scan(d->pt, d->cfg->comm_prefixes, d->cfg->n_comm_prefixes, d->cfg->cgroups, d->cfg->n_cgroups,
			  poll_new, d);
}

/* ---- lost exec/fork/exit events: the process table resynced from /proc ---- */

/* how often the kernel's drop count is read while events flow: a full ring fills within this at most */
#define DROP_CHECK_NS (100 * NSEC_PER_MSEC)

struct gone {
	pid_t pid;
	uint64_t start_ns;
};

struct resync_ctx {
	struct daemon *d;
	struct gone *gone;
	size_t n_gone, cap_gone;
};

/* Alive in the table: is it still, and as what? (an exec whose event was dropped changed its name) */
static void resync_check_one(struct proc *p, void *ctx)
{
	struct resync_ctx *rc = ctx;
	int r;

	if (p->death != PROC_ALIVE)
		return;
	r = proctree_check_alive(rc->d->pt, p);
	if (r > 0 && proctree_refresh(rc->d->pt, p) != -ESRCH)
		return;
	if (r < 0 && r != -ESRCH)
		return; /* /proc could not say: leave it to its exit event or the next resync */
	if (rc->n_gone == rc->cap_gone) {
		size_t cap = rc->cap_gone ? 2 * rc->cap_gone : 64;
		struct gone *g = realloc(rc->gone, cap * sizeof(*g));

		if (!g)
			return;
		rc->gone = g;
		rc->cap_gone = cap;
	}
	rc->gone[rc->n_gone++] = (struct gone){ p->pid, p->start_ns };
}

struct found {
	pid_t pid;
	uint64_t start_ns;
};

static int found_cmp(const void *a, const void *b)
{
	const struct found *x = a, *y = b;

	if (x->start_ns != y->start_ns)
		return x->start_ns < y->start_ns ? -1 : 1;
	return (x->pid > y->pid) - (x->pid < y->pid);
}

/* One "process" record for a pid taken from /proc, at start (source NULL) or by a resync after dropped events. */
static void emit_tracking(const struct proc *p, const char *source)
{
	char rss[BYTES_STR_MAX];
	struct rec r;

	rec_init(&r, REC_PROCESS, LOG_INFO);
	rec_add_pid(&r, "PID", p->pid);
	rec_add_pid(&r, "PPID", p->ppid);
	rec_add(&r, "COMM", "%s", p->comm);
	rec_add_bytes(&r, "RSS_BYTES", p->rss_bytes);
	rec_add(&r, "CGROUP", "%s", p->cgroup_dir);
	rec_add(&r, "CMDLINE", "%s", p->cmdline);
	if (source)
		rec_add(&r, "SOURCE", "%s", source);
	rec_message(&r, "tracking pid %d %s (%s)%s: %.120s", p->pid, p->comm, FMT_BYTES(rss, p->rss_bytes),
		    source ? ", found in /proc after dropped events" : "", p->cmdline);
	rec_emit(&r);
}

/* The kernel's tracked map is right even when events were dropped (exec, fork and exit update it before they
 * reserve their event): what it holds that the table does not started meanwhile; what the table holds alive
 * that /proc no longer has (or has as a zombie, or under another start time) ended meanwhile. */
static void resync_process_table(struct daemon *d, uint64_t now, unsigned *ret_found, unsigned *ret_gone)
{
	_cleanup_free_ uint32_t *tracked = NULL;
	_cleanup_free_ struct found *found = NULL;
	struct resync_ctx rc = { .d = d };
	size_t n_found = 0;
	unsigned n_new = 0, n_ended = 0;
	int n;

	/* what is still in the ring is not lost: the table first takes it in */
	probes_consume(d->probes);
	n = probes_list_tracked(d->probes, &tracked);
	if (n > 0)
		found = calloc((size_t)n, sizeof(*found));
	for (int i = 0; found && i < n; i++) {
		struct proc *p = proctree_get(d->pt, (pid_t)tracked[i]);
		struct proc_stat st;
		bool dup = false;

		if ((p && p->death == PROC_ALIVE) || (pid_t)tracked[i] == getpid())
			continue;
		for (size_t j = 0; j < n_found && !dup; j++)
			dup = found[j].pid == (pid_t)tracked[i];
		if (dup || procfs_read_stat(proctree_root(d->pt), (pid_t)tracked[i], &st) < 0 || st.state == 'Z')
			continue;
		found[n_found++] = (struct found){ (pid_t)tracked[i], st.start_ns };
	}
	/* parents started before their children: in that order each inherits its parent's lineage */
	if (n_found)
		qsort(found, n_found, sizeof(*found), found_cmp);
	for (size_t i = 0; i < n_found; i++) {
		struct proc *p = daemon_track(d, found[i].pid, OS_TRACKED_SEEDED);

		if (!p)
			continue;
		n_new++;
		emit_tracking(p, "resync");
		for (int j = 0; j < d->n_instances; j++)
			instance_on_new_proc(d->instances[j], p, now);
	}

	proctree_foreach(d->pt, resync_check_one, &rc);
	/* an exit that happened while /proc was read has its event in the ring, with its real cause */
	probes_consume(d->probes);
	for (size_t i = 0; i < rc.n_gone; i++) {
		struct proc *p = proctree_get(d->pt, rc.gone[i].pid);
		struct os_event e = { .type = OS_EV_EXIT };

		if (!p || p->death != PROC_ALIVE || p->start_ns != rc.gone[i].start_ns)
			continue;
		proctree_mark_exit_lost(d->pt, p, now);
		e.pid = (uint32_t)p->pid;
		e.ts_ns = now;
		e.cgroup_id = p->cgroup_id;
		memcpy(e.comm, p->comm, sizeof(e.comm));
		emit_exit(d, &e, p, &p->cause, now);
		n_ended++;
	}
	free(rc.gone);
	*ret_found = n_new;
	*ret_gone = n_ended;
}

static void check_drops(struct daemon *d, uint64_t now)
{
	uint64_t total;
	unsigned flags, found = 0, gone = 0;
	struct rec r;

	d->drops_checked_ns = now;
	d->drops_check_owed = false;
	if (probes_read_stat(d->probes, OS_STAT_LIFECYCLE_DROPS, &total) < 0)
		return;
	flags = dropsync_step(&d->drops, total, now);
	if (flags & DROPSYNC_RESYNC) {
		resync_process_table(d, now, &found, &gone);
		d->resyncs++;
		metrics_set_counter(METRIC_RESYNCS_TOTAL, "", (double)d->resyncs);
		log_debug("process table resynced from /proc after dropped events: %u found, %u ended", found, gone);
	}
	if (flags & DROPSYNC_BURST) {
		rec_init(&r, REC_DAEMON, LOG_WARNING);
		rec_add(&r, "STATE", "resync");
		rec_add_u64(&r, "DROPPED", d->drops.burst_drops);
		rec_add_u64(&r, "FOUND", found);
		rec_add_u64(&r, "GONE", gone);
		rec_message(&r, "the kernel dropped %llu exec/fork/exit events (ring buffer full: the daemon fell behind); "
				"the process table was resynced from /proc: %u processes started meanwhile are tracked, "
				"%u that ended are closed; while drops go on it is resynced every second",
			    (unsigned long long)d->drops.burst_drops, found, gone);
		rec_emit(&r);
	}
	if (flags & DROPSYNC_BURST_END)
		log_notice("no more dropped events: %llu exec/fork/exit events were lost in all, the process table was "
			   "resynced %u times", (unsigned long long)d->drops.burst_drops, d->drops.burst_resyncs);
}

/* ---- setup ---- */

static int timer_arm(int fd, uint64_t interval_ms)
{
	struct itimerspec its = {
		.it_interval = { (time_t)(interval_ms / 1000), (long)(interval_ms % 1000) * 1000000L },
		.it_value = { 0, 1000000 },
	};

	return timerfd_settime(fd, 0, &its, NULL) < 0 ? -errno : 0;
}

static void timer_disarm(int fd)
{
	struct itimerspec its = { 0 };

	timerfd_settime(fd, 0, &its, NULL);
}

static int epoll_add(int epfd, int fd, uint64_t tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void seed_one(struct proc *p, void *ctx)
{
	struct daemon *d = ctx;

	if (d->probes)
		probes_track(d->probes, (uint32_t)p->pid, OS_TRACKED_SEEDED);
	daemon_watch_cgroup(d, p->cgroup_id);
	emit_tracking(p, NULL);
}

static void daemon_free(struct daemon *d)
{
	/* before the instances: its connections point at them */
	d->ws = comfy_ws_free(d->ws);
	for (int i = 0; i < d->n_instances; i++)
		instance_free(d->instances[i]);
	curl_loop_free(d->curl);
	d->curl = NULL;
	unitjob_shutdown();
	if (d->metrics_on)
		metrics_server_stop();
	localconn_shutdown();
	status_server_stop(d->status_fd, d->cfg->socket_path);
	prekill_server_stop(d->prekill_fd, d->cfg->prekill_hook);
	probes_stop(d->probes);
	proctree_free(d->pt);
	int fds[] = { d->epfd, d->sigfd, d->sample_tfd, d->poll_tfd, d->far_tfd };

	for (size_t i = 0; i < ARRAY_SIZE(fds); i++)
		if (fds[i] >= 0)
			close(fds[i]);
}

static void emit_daemon_record(const char *state, const char *msg)
{
	struct rec r;

	rec_init(&r, REC_DAEMON, LOG_NOTICE);
	rec_add(&r, "STATE", "%s", state);
	rec_message(&r, "%s", msg);
	rec_emit(&r);
}

/* systemd-oomd will kill cgroup once every hook has answered: the instances in it act first. */
static void on_prekill(const char *cgroup, void *ctx)
{
	struct daemon *d = ctx;
	uint64_t now = now_mono_ns();
	bool any = false;

	for (int i = 0; i < d->n_instances; i++)
		any |= instance_prekill(d->instances[i], cgroup, now);
	if (!any)
		log_notice("systemd-oomd is about to kill cgroup %s: no ComfyUI instance in it", cgroup);
}

static void update_metrics(struct daemon *d)
{
	uint64_t stats[OS_STAT_MAX];
	const char *full;

	metrics_set_gauge(METRIC_TRACKED_PROCESSES, "", (double)proctree_count_alive(d->pt));
	if (d->probes) {
		int attached, total;

		probes_count(d->probes, &attached, &total);
		metrics_set_gauge(METRIC_PROBES_ATTACHED, "", attached);
		metrics_set_gauge(METRIC_PROBES_EXPECTED, "", total);
	} else {
		/* polling: what the kernel would have offered is unknown, none of it is in use */
		metrics_set_gauge(METRIC_PROBES_ATTACHED, "", 0);
	}
	for (size_t i = 1; i < ARRAY_SIZE(d->events_by_type) && i < OS_EV_MAX; i++) {
		static const char *const names[OS_EV_MAX] = { "", "exec", "fork", "exit", "oom_victim", "rss", "mmap",
							      "munmap", "reclaim", "memcg" };
		char lab[64];
		metrics_labels(lab, sizeof(lab), "type", names[i], NULL);
		metrics_set_counter(METRIC_EVENTS_TOTAL, lab, (double)d->events_by_type[i]);
	}
	if (d->probes && probes_read_stats(d->probes, stats) == 0) {
		metrics_set_counter(METRIC_BPF_DROPS_TOTAL, "", (double)stats[OS_STAT_DROPS]);
		/* once a minute at most: a flood drops at every sample, and the resync has its own record */
		if (stats[OS_STAT_DROPS] > d->bpf_drops_reported &&
		    (!d->bpf_drops_warned_ns || now_mono_ns() - d->bpf_drops_warned_ns >= 60 * NSEC_PER_SEC)) {
			d->bpf_drops_warned_ns = now_mono_ns();
			log_warn("the BPF ring buffer dropped %llu events (total %llu): the daemon is too slow or events "
				 "too frequent; raise rss_step or ring_buffer_size",
				 (unsigned long long)(stats[OS_STAT_DROPS] - d->bpf_drops_reported),
				 (unsigned long long)stats[OS_STAT_DROPS]);
			d->bpf_drops_reported = stats[OS_STAT_DROPS];
		}
	}
	full = metrics_take_full_warning();
	if (full)
		log_warn("metrics: %s full (%u families, %u series); further series are dropped", full,
			 (unsigned)METRICS_MAX_FAMILIES, (unsigned)METRICS_MAX_SERIES);
}

static int daemon_setup(struct daemon *d)
{
	struct probes_config pc = {
		.rss_step_bytes = d->cfg->rss_step_bytes,
		.mmap_min_bytes = d->cfg->mmap_threshold_bytes,
		.reclaim_interval_ns = d->cfg->reclaim_report_interval_ms * NSEC_PER_MSEC,
		.comm_prefixes = d->cfg->comm_prefixes,
		.n_comm_prefixes = d->cfg->n_comm_prefixes,
		.memcg_events = d->cfg->memcg_events_probe,
		.ring_bytes = d->cfg->ring_buffer_bytes,
		.verbose = d->cfg->verbose,
	};
	uint64_t ids[CONFIG_MAX_LIST];
	sigset_t mask;
	int r, n_ids = 0;
	char msg[600];

	if (cg_mounts_detect("/proc/self/mountinfo", &d->mounts) < 0)
		log_warn("no cgroup memory controller found: cgroup limits and usage are unknown, MemTotal is the limit");
	d->pt = proctree_new("/proc", &d->mounts);
	if (d->pt)
		proctree_set_cap(d->pt, (size_t)d->cfg->max_processes);
	if (!d->pt)
		return -ENOMEM;
	for (int i = 0; i < d->cfg->n_cgroups; i++)
		if (cg_dir_id(d->cfg->cgroups[i], &ids[n_ids]) == 0)
			n_ids++;
		else
			log_warn("configured cgroup %s does not exist (yet); it is not part of the kernel filter",
				 d->cfg->cgroups[i]);
	pc.filter_cgroup_ids = ids;
	pc.n_filter_cgroups = n_ids;

	if (d->cfg->bpf) {
		r = probes_start(&pc, on_event, d, &d->probes);
		/* the counters start at zero with the maps: a drop before the first look is a drop */
		d->drops = (struct dropsync){ .primed = true };
		d->drops_check_owed = true;
		/* a counter exists at 0 from the start: rate() and increase() need a sample before the first step */
		metrics_add_counter(METRIC_RESYNCS_TOTAL, "", 0);
		if (r < 0) {
			log_error("BPF PROBES UNAVAILABLE: falling back to /proc and cgroup polling every %llu ms; exit "
				  "causes and OOM victims cannot be attributed in this mode",
				  (unsigned long long)d->cfg->sample_interval_ms);
			d->polling = true;
		}
	} else {
		log_notice("BPF disabled by configuration: polling /proc and cgroups");
		d->polling = true;
	}

	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->usage_tag = TAG_USAGE;
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	d->sample_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->poll_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->far_tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->epfd < 0 || d->sigfd < 0 || d->sample_tfd < 0 || d->poll_tfd < 0 || d->far_tfd < 0)
		return log_error_errno(-errno, "cannot set up the event loop");
	if (d->probes)
		epoll_add(d->epfd, probes_epoll_fd(d->probes), TAG_RB);
	epoll_add(d->epfd, d->sigfd, TAG_SIG);
	epoll_add(d->epfd, d->sample_tfd, TAG_SAMPLE);
	epoll_add(d->epfd, d->poll_tfd, TAG_POLL);
	epoll_add(d->epfd, d->far_tfd, TAG_FAR);
	/* a kernel without the probe (or where it failed to attach at start) has nothing to attach on demand */
	d->rss_on_demand = d->probes && probes_rss_attached(d->probes) && d->mode == MODE_RUN &&
			   d->cfg->rss_probe_on_demand;
	timer_arm(d->sample_tfd, d->cfg->sample_interval_ms);
	timer_arm(d->poll_tfd, d->cfg->poll_interval_ms);
	d->timers_on = true;

	/* an address, or a boolean: yes = the default address, no/off = none */
	const char *listen = d->cfg->metrics_listen;
	bool on;
	if (!listen[0])
		listen = NULL;
	else if (config_parse_bool(listen, &on) == 0)
		listen = on ? METRICS_DEFAULT_LISTEN : NULL;
	if (listen) {
		metrics_describe_oomsentry();
		r = metrics_server_start(listen);
		if (r < 0) {
			log_warn_errno(r, "metrics endpoint %s unavailable%s; continuing without it", listen,
				       r == -EINVAL ? " (want HOST:PORT, [IPV6]:PORT or off)" : "");
		} else if (r > 0) {
			d->metrics_on = true;
			epoll_add(d->epfd, metrics_server_fd(), TAG_METRICS);
		}
	}
	/* the status and pre-kill clients: served on the loop, each with a deadline */
	localconn_setup(d->epfd, TAG_CONN);
	d->status_fd = status_server_start(d->cfg->socket_path);
	if (d->status_fd >= 0)
		epoll_add(d->epfd, d->status_fd, TAG_STATUS);
	else if (d->status_fd == -EADDRINUSE) /* status is a convenience */
		log_warn("status socket %s belongs to another running oomsentry; 'oomsentry status' will not reach this one",
			 d->cfg->socket_path);
	else
		log_warn_errno(d->status_fd, "status socket %s unavailable; 'oomsentry status' will not answer",
			       d->cfg->socket_path);
	/* observe acts on nothing, so it has nothing to tell oomd before a kill */
	if (d->mode == MODE_RUN && d->cfg->prekill_hook[0] && strcmp(d->cfg->prekill_hook, "off")) {
		d->prekill_fd = prekill_server_start(d->cfg->prekill_hook);
		if (d->prekill_fd >= 0)
			epoll_add(d->epfd, d->prekill_fd, TAG_PREKILL);
	}

	comfy_global_init();
	/* ComfyUI requests run on this loop: a server that accepts and never answers holds nothing else up */
	r = curl_loop_new(d->epfd, TAG_CURL, &d->curl);
	/* RestartUnit too: the bus connection opens with the first restart = systemd stop */
	unitjob_setup(d->epfd, TAG_BUS);
	if (r < 0)
		return log_error_errno(r, "cannot set up the HTTP client loop");
	for (int i = 0; i < d->cfg->n_instances; i++) {
		d->instances[d->n_instances] = instance_new(d, &d->cfg->instances[i], i);
		if (d->instances[d->n_instances])
			d->n_instances++;
	}
	bool tls = false;
	for (int i = 0; i < d->cfg->n_instances; i++)
		tls |= !strncmp(d->cfg->instances[i].url, "https://", 8);
	r = comfy_ws_new(d->epfd, TAG_WS, tls, &d->ws);
	if (r < 0)
		log_warn_errno(r, "no websocket client (libwebsockets); following ComfyUI by polling /queue every %llu ms",
			       (unsigned long long)d->cfg->poll_interval_ms);
	for (int i = 0; i < d->n_instances; i++)
		instance_connect_ws(d->instances[i], d->ws);

	r = proctree_scan(d->pt, d->cfg->comm_prefixes, d->cfg->n_comm_prefixes, d->cfg->cgroups, d->cfg->n_cgroups,
			  seed_one, d);
	snprintf(msg, sizeof(msg), "oomsentry %s %s: %s; %d processes tracked from /proc; journal %s",
		 OOMSENTRY_VERSION, d->mode == MODE_RUN ? (d->cfg->dry_run ? "run (dry run)" : "run") : "observe",
		 d->probes ? probes_summary(d->probes) : "polling /proc (no BPF)", r < 0 ? 0 : r,
		 journal_connected() ? "connected" : d->cfg->journal ? "not available" : "off");
	emit_daemon_record("started", msg);
	for (int i = 0; i < d->n_instances; i++)
		instance_after_scan(d->instances[i], now_mono_ns());
	return 0;
}

struct table_ctx {
	FILE *out;
};

static void print_proc(struct proc *p, void *ctx)
{
	struct table_ctx *c = ctx;
	char rss[BYTES_STR_MAX], peak[BYTES_STR_MAX];

	if (p->death != PROC_ALIVE)
		return;
	char comm[4 * sizeof(p->comm)], cgroup[4 * sizeof(p->cgroup_dir)];

	/* the name and cgroup are chosen by whoever runs the process: no terminal control may pass */
	fprintf(c->out, "  %7d %7d %-15s %10s %10s %s%s\n", p->pid, p->ppid,
		utf8_escape_terminal(p->comm, comm, sizeof(comm)), FMT_BYTES(rss, p->rss_bytes),
		FMT_BYTES(peak, p->rss_peak_bytes), p->is_server ? "[server] " : "",
		utf8_escape_terminal(p->cgroup_dir, cgroup, sizeof(cgroup)));
}

/* The live table `oomsentry status` prints; status.c only carries it. */
static void render_status(FILE *out, void *ctx)
{
	struct daemon *d = ctx;
	struct table_ctx c = { .out = out };
	struct proctree_stats ps;

	fprintf(out, "oomsentry %s (%s, %s)\n", OOMSENTRY_VERSION, d->mode == MODE_RUN ? "run" : "observe",
		d->probes ? probes_summary(d->probes) : "polling /proc, no BPF");
	if (d->rss_on_demand)
		fprintf(out, "rss probe: %s (on demand: while a server is busy or near its limit; attached %llu times)\n",
			probes_rss_attached(d->probes) ? "attached" : "detached", (unsigned long long)d->rss_attaches);
	for (int i = 0; i < d->n_instances; i++)
		instance_status(d->instances[i], out);
	proctree_stats(d->pt, &ps);
	fprintf(out, "process table: %zu entries (cap %zu), %zu alive, %llu evicted, %llu not tracked for lack of room\n",
		ps.entries, ps.cap, ps.alive, (unsigned long long)ps.evicted, (unsigned long long)ps.refused);
	fprintf(out, "tracked processes: %zu\n      PID    PPID COMM                   RSS       PEAK CGROUP\n",
		proctree_count_alive(d->pt));
	proctree_foreach(d->pt, print_proc, &c);
}

static void drain_timer(int fd)
{
	uint64_t n;

	if (read(fd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		log_debug_errno(-errno, "timerfd read");
}

static void handle_signal(struct daemon *d)
{
	struct signalfd_siginfo si;

	while (read(d->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			char err[512] = "";

			if (d->reload_check && d->reload_check(err, sizeof(err)) == 0) {
				log_notice("SIGHUP: the configuration loads; restarting with it");
				sd_notify(0, "RELOADING=1");
				d->reload = d->exiting = true;
			} else {
				log_error("SIGHUP: the new configuration does not load (%s); keeping the running one", err);
			}
		} else {
			d->exiting = true;
		}
	}
}

/* No fixed-rate work while nothing happens: the sample and poll timers run only while some instance needs them
 * (a generation, queued prompts, a restart, a verification, usage near the limit, activity in the last seconds, no
 * /ws, polling without BPF). Idle, the daemon sleeps in epoll_wait until a BPF event (an RSS step, exec, exit,
 * reclaim in a watched cgroup), a /ws message, a request or a signal; the first of them that makes an instance
 * busy arms the timers again, with a sample at once. */
static void arm_timers(struct daemon *d, uint64_t now)
{
	bool want = d->polling || d->rss_missing;

	for (int i = 0; !want && i < d->n_instances; i++)
		want = instance_needs_timers(d->instances[i], now);
	if (want == d->timers_on)
		return;
	d->timers_on = want;
	if (want) {
		timer_arm(d->sample_tfd, d->cfg->sample_interval_ms);
		timer_arm(d->poll_tfd, d->cfg->poll_interval_ms);
	} else {
		timer_disarm(d->sample_tfd);
		timer_disarm(d->poll_tfd);
	}
	log_debug("%s", want ? "activity: sampling and polling again" : "idle: timers stopped, waiting for events");
}

/* An attach patches kernel text: a generation's end must not detach the probe that the next one, a second later,
 * attaches again. */
#define RSS_PROBE_LINGER_NS (10 * NSEC_PER_SEC)

/* core/rssarm.h: in run mode the rss_stat probe, which runs on every page fault of every process, is attached while
 * some instance wants it and RSS_PROBE_LINGER_NS after; the idle instances that no v1 notification watches are read
 * every RSSARM_LEAD_NS, attached or not (their usage decides, both ways). A failed attach is retried each second
 * and the timers sample meanwhile. */
static void arm_rss(struct daemon *d, uint64_t now)
{
	bool want = false, poll = false, attached;
	int r;

	if (!d->rss_on_demand)
		return;
	for (int i = 0; i < d->n_instances; i++) {
		want = want || instance_wants_rss(d->instances[i]);
		poll = poll || instance_far_polled(d->instances[i]);
	}
	if (want)
		d->rss_wanted_until_ns = now + RSS_PROBE_LINGER_NS;
	attached = probes_rss_attached(d->probes);
	if (want && !attached && now >= d->rss_retry_ns) {
		uint64_t t0 = now_mono_ns();

		r = probes_rss_attach(d->probes, true);
		if (r < 0) {
			if (!d->rss_missing)
				log_error_errno(r, "cannot attach the rss probe again; sampling every %llu ms until it does",
						(unsigned long long)d->cfg->sample_interval_ms);
			d->rss_retry_ns = now + NSEC_PER_SEC;
		} else {
			if (d->rss_missing)
				log_notice("the rss probe is attached again");
			d->rss_attaches++;
			log_debug("rss probe attached in %.2f ms: an instance is busy or near its limit",
				  (double)(now_mono_ns() - t0) / 1e6);
		}
	} else if (!want && attached && now >= d->rss_wanted_until_ns) {
		uint64_t t0 = now_mono_ns();

		probes_rss_attach(d->probes, false);
		log_debug("rss probe detached in %.2f ms: every instance is idle and far from its limit",
			  (double)(now_mono_ns() - t0) / 1e6);
	}
	attached = probes_rss_attached(d->probes);
	d->rss_missing = want && !attached;
	d->rss_lingering = !want && attached;
	if (poll != d->far_on) {
		d->far_on = poll;
		if (poll)
			timer_arm(d->far_tfd, RSSARM_LEAD_NS / NSEC_PER_MSEC);
		else
			timer_disarm(d->far_tfd);
	}
}

/* Idle, nothing samples: what a scrape or `oomsentry status` shows is measured when it is asked for. */
static void sample_if_idle(struct daemon *d, uint64_t now)
{
	if (d->timers_on)
		return;
	for (int j = 0; j < d->n_instances; j++)
		instance_sample(d->instances[j], now);
	update_metrics(d);
}

static int daemon_loop(struct daemon *d)
{
	uint64_t last_watchdog = 0, last_gc = 0, wd_usec = 0;
	/* under systemd's watchdog the loop wakes at least twice per WatchdogSec; otherwise only for events */
	int wd_ms = sd_watchdog_enabled(0, &wd_usec) > 0 ? (int)MAX(wd_usec / 2000, 1) : -1;

	sd_notify(0, "READY=1\nSTATUS=watching");
	d->looking_since_ns = now_mono_ns();
	arm_rss(d, d->looking_since_ns);
	while (!d->exiting) {
		struct epoll_event evs[16];
		int timeout = wd_ms, n;
		uint64_t now, due;

		/* libmicrohttpd may hold buffered work that no fd event will announce */
		if (d->metrics_on) {
			int t = metrics_server_timeout_ms();
			if (t >= 0 && (timeout < 0 || t < timeout))
				timeout = t;
		}
		/* a probe kept attached past its need is detached when its linger ends, not at some later event */
		if (d->rss_lingering) {
			now = now_mono_ns();
			uint64_t ms = d->rss_wanted_until_ns > now ?
					      (d->rss_wanted_until_ns - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC : 0;

			if (timeout < 0 || (uint64_t)timeout > ms)
				timeout = (int)MIN(ms, (uint64_t)INT_MAX);
		}
		/* a drop check owed (events came, or a resync was held back) must not wait for the next event */
		if (d->probes) {
			now = now_mono_ns();
			due = dropsync_due_ns(&d->drops);
			if (d->drops_check_owed)
				due = MIN(due, d->drops_checked_ns + DROP_CHECK_NS);
			if (due != UINT64_MAX) {
				uint64_t ms = due > now ? (due - now + NSEC_PER_MSEC - 1) / NSEC_PER_MSEC : 0;

				if (timeout < 0 || (uint64_t)timeout > ms)
					timeout = (int)MIN(ms, (uint64_t)INT_MAX);
			}
		}
		{
			int t = unitjob_timeout_ms(), tc = localconn_timeout_ms();
			/* timeout -1: nothing else is due, the loop sleeps until an event */
			if (t >= 0 && (timeout < 0 || t < timeout))
				timeout = t;
			if (tc >= 0 && (timeout < 0 || tc < timeout))
				timeout = tc;
		}
		n = epoll_wait(d->epfd, evs, ARRAY_SIZE(evs), timeout);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return log_error_errno(-errno, "epoll_wait failed");
		}
		for (int i = 0; i < n; i++) {
			now = now_mono_ns();
			/* the curl loop's fds carry their fd above its tag */
			if ((evs[i].data.u64 & 0xffffffffu) == TAG_CURL) {
				curl_loop_dispatch(d->curl, &evs[i]);
				continue;
			}
			/* so do the local clients, their slot */
			if ((evs[i].data.u64 & 0xffffffffu) == TAG_CONN) {
				localconn_dispatch(&evs[i]);
				continue;
			}
			/* an instance's usage notification: each instance reads its own eventfd (non-blocking) */
			if ((evs[i].data.u64 & 0xffffffffu) == TAG_USAGE) {
				for (int j = 0; j < d->n_instances; j++)
					instance_on_usage_line(d->instances[j], now);
				continue;
			}
			switch (evs[i].data.u64) {
			case TAG_RB:
				if (probes_consume(d->probes) < 0)
					log_debug("ring buffer consume failed");
				d->drops_check_owed = true;
				break;
			case TAG_SIG:
				handle_signal(d);
				break;
			case TAG_SAMPLE:
				drain_timer(d->sample_tfd);
				if (d->polling)
					polling_tick(d, now);
				for (int j = 0; j < d->n_instances; j++)
					instance_sample(d->instances[j], now);
				update_metrics(d);
				break;
			case TAG_FAR:
				drain_timer(d->far_tfd);
				for (int j = 0; j < d->n_instances; j++)
					if (instance_far_polled(d->instances[j]))
						instance_far_check(d->instances[j], now);
				break;
			case TAG_POLL:
				drain_timer(d->poll_tfd);
				for (int j = 0; j < d->n_instances; j++)
					instance_poll(d->instances[j], now);
				break;
			case TAG_METRICS:
				sample_if_idle(d, now);
				metrics_server_process();
				break;
			case TAG_STATUS:
				sample_if_idle(d, now);
				status_server_accept(d->status_fd, render_status, d);
				break;
			case TAG_BUS:
				unitjob_dispatch();
				break;
			case TAG_PREKILL:
				prekill_server_accept(d->prekill_fd, OOMSENTRY_VERSION, on_prekill, d);
				break;
			case TAG_WS:
				comfy_ws_service(d->ws, now);
				/* a queue change or a boundary: read /queue + /history now, not at the next poll */
				for (int j = 0; j < d->n_instances; j++)
					instance_ws_wake(d->instances[j], now_mono_ns());
				break;
			}
		}
		if (d->metrics_on && metrics_server_timeout_ms() == 0)
			metrics_server_process();
		/* a wake that came while a poll was being answered is served now that it is (a no-op otherwise) */
		for (int j = 0; j < d->n_instances; j++)
			instance_ws_wake(d->instances[j], now_mono_ns());
		if (unitjob_timeout_ms() == 0)
			unitjob_dispatch();
		localconn_expire();
		now = now_mono_ns();
		if (d->probes && ((d->drops_check_owed && now - d->drops_checked_ns >= DROP_CHECK_NS) ||
				  now >= dropsync_due_ns(&d->drops)))
			check_drops(d, now);
		if (wd_ms > 0 && now - last_watchdog > MIN(2 * NSEC_PER_SEC, wd_usec * 1000 / 2)) {
			sd_notify(0, "WATCHDOG=1");
			last_watchdog = now;
		}
		if (now - last_gc > 60 * NSEC_PER_SEC) {
			proctree_gc(d->pt, now, 600 * NSEC_PER_SEC);
			last_gc = now;
		}
		arm_timers(d, now);
		arm_rss(d, now);
	}
	sd_notify(0, "STOPPING=1");
	return 0;
}

/* `oomsentry scan [--reap]`: the startup scan alone, without probes, then reaping to the end. */
static int orphans_scan_cmd(struct daemon *d, bool reap)
{
	int r = 0;

	if (cg_mounts_detect("/proc/self/mountinfo", &d->mounts) < 0)
		log_debug("no cgroup memory controller found");
	d->pt = proctree_new("/proc", &d->mounts);
	if (d->pt)
		proctree_set_cap(d->pt, (size_t)d->cfg->max_processes);
	if (!d->pt)
		return 2;
	comfy_global_init();
	for (int i = 0; i < d->cfg->n_instances; i++) {
		d->instances[d->n_instances] = instance_new(d, &d->cfg->instances[i], i);
		if (d->instances[d->n_instances])
			d->n_instances++;
	}
	proctree_scan(d->pt, d->cfg->comm_prefixes, d->cfg->n_comm_prefixes, d->cfg->cgroups, d->cfg->n_cgroups, NULL,
		      NULL);
	for (int i = 0; i < d->n_instances; i++)
		if (instance_scan(d->instances[i], now_mono_ns(), reap) < 0)
			r = 2;
	return r;
}

/* What only the start needed leaves memory; what the loop uses is locked as it first runs (docs/performance.md). */
static void trim_startup(void)
{
	struct resident_trim_stats st;
	int r = resident_trim(&st);

	if (r < 0) {
		log_debug_errno(r, "cannot read /proc/self/smaps; startup's pages stay resident");
		return;
	}
	log_debug("gave back %llu KiB that startup faulted into %llu library mappings; own code locked (%llu KiB)",
		  (unsigned long long)st.dropped_kib, (unsigned long long)st.mappings,
		  (unsigned long long)st.own_text_kib);
	if (st.failures)
		log_debug_errno(st.err, "%d mappings could not be trimmed or locked", st.failures);
}

/* The reaction to a step over the line starts when the daemon gets a CPU: on a busy host, behind every task at
 * the default priority (bench/reaction.py). `priority` raises it as earlyoom -p does (nice -20) or makes it
 * real-time; whatever it runs (restart_command) starts at the host's defaults again (SCHED_RESET_ON_FORK). */
static void apply_priority(const struct config *cfg)
{
	struct sched_param sp = { 0 };
	int nice_value, fifo, policy;

	if (config_parse_priority(cfg->priority, &nice_value, &fifo) < 0)
		return; /* config_finalize refused it already */
	if (fifo) {
		sp.sched_priority = fifo;
		if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) < 0)
			log_warn_errno(-errno, "priority %s: SCHED_FIFO refused; reactions wait for a CPU like any task",
				       cfg->priority);
		return;
	}
	if (nice_value <= 0 && setpriority(PRIO_PROCESS, 0, nice_value) < 0)
		log_warn_errno(-errno, "priority %s: cannot set nice %d; reactions wait for a CPU like any task",
			       cfg->priority, nice_value);
	/* keep what the daemon was started with (a unit's CPUSchedulingPolicy=), only not for its children */
	policy = sched_getscheduler(0);
	if (policy >= 0 && sched_getparam(0, &sp) == 0)
		sched_setscheduler(0, (policy & ~SCHED_RESET_ON_FORK) | SCHED_RESET_ON_FORK, &sp);
}

/* What the writer threads hold goes out before this image exits or re-executes (a test, a supervisor, reads the
 * last records), but a reader that does not read delays the exit, or the SIGTERM's restart, by this at most. */
#define OUTPUT_FLUSH_NS (2 * NSEC_PER_SEC)

static void flush_output(void)
{
	uint64_t deadline = now_mono_ns() + OUTPUT_FLUSH_NS;
	size_t left = journal_flush(deadline);

	if (left)
		log_warn("%zu records were not written to standard output: it was not read", left);
	log_flush(deadline);
}

static int check_privileges(void)
{
	_cleanup_free_ char *text = NULL;
	unsigned long long caps = 0;
	const char *p;

	if (geteuid() == 0)
		return 0;
	if (procfs_read_text("/proc/self/status", 1 << 16, &text, NULL) == 0 && (p = strstr(text, "CapEff:")))
		caps = strtoull(p + 7, NULL, 16);
	/* CAP_BPF 39, CAP_PERFMON 38 load and attach; CAP_SYS_ADMIN 21 covers both on older kernels */
	if ((caps & (1ULL << 21)) || ((caps & (1ULL << 39)) && (caps & (1ULL << 38))))
		return 0;
	fprintf(stderr, "oomsentry: missing capability CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN): run it as root, "
			"e.g. 'sudo oomsentry observe', or grant them (see deploy/oomsentry.service)\n");
	return -EPERM;
}

int daemon_main(const struct config *cfg, enum daemon_mode mode, bool reap, const char *arg,
		reload_check_fn reload_check)
{
	struct daemon d = { .cfg = cfg, .mode = mode, .epfd = -1, .sigfd = -1, .sample_tfd = -1, .poll_tfd = -1,
			    .far_tfd = -1, .status_fd = -1, .prekill_fd = -1, .reload_check = reload_check };
	int locks[CONFIG_MAX_INSTANCES] = { -1, -1, -1, -1, -1, -1, -1, -1 };
	int r;

	if (mode == MODE_STATUS)
		return status_client(cfg->socket_path, stdout) < 0 ? 2 : 0;
	if (mode == MODE_REPORT)
		return incident_load_and_print(arg, stdout) < 0 ? 1 : 0;
	if (check_privileges() < 0)
		return 2;
	if (mode == MODE_OBSERVE || mode == MODE_RUN) {
		char err[768];
		/* before anything else is set up or said: a second daemon leaves no trace, not even a log line */
		if (instlock_acquire(cfg, locks, err, sizeof(err)) < 0) {
			fprintf(stderr, "oomsentry: %s\n", err);
			return 1;
		}
	}
	journal_setup(stdout, cfg->json, cfg->journal);
	if (mode == MODE_OBSERVE || mode == MODE_RUN)
		log_queue_stderr();
	if (mode == MODE_OBSERVE || mode == MODE_RUN) {
		/* what an earlier run (a crash loop, say) left beyond the budget goes before anything new is added */
		r = prune_incidents(cfg->incident_dir, cfg->incident_max_count, cfg->incident_max_bytes);
		if (r > 0)
			log_info("removed %d old incident reports beyond the budget in %s", r, cfg->incident_dir);
	}
	if (cfg->journal && journal_connected())
		log_setup(log_get_max_priority(),
			  (journal_is_stream(STDERR_FILENO) ? 0 : LOG_TARGET_STDERR) | LOG_TARGET_JOURNAL);
	if (mode == MODE_SCAN) {
		r = orphans_scan_cmd(&d, reap);
		daemon_free(&d);
		flush_output();
		return r;
	}

	apply_priority(cfg);
	r = resident_lock();
	if (r < 0)
		log_debug_errno(r, "mlockall failed; continuing unlocked");
	r = daemon_setup(&d);
	if (r == 0) {
		trim_startup();
		r = daemon_loop(&d);
	}
	/* before the instances let go of anything (instance_free): what is in flight goes to the next image */
	for (int i = 0; r == 0 && d.reload && i < d.n_instances; i++)
		instance_carry_save(d.instances[i], now_mono_ns());
	/* what the next `oomsentry scan` or the next start needs to prove whose processes these are */
	for (int i = 0; i < d.n_instances; i++)
		instance_persist_lineage(d.instances[i]);
	emit_daemon_record(d.reload ? "reloading" : "stopped", d.reload ? "oomsentry restarts with the new configuration" :
									 "oomsentry stopped");
	daemon_free(&d);
	/* the state files queued to the writer thread are on disk before this image exits or re-executes */
	statefile_flush();
	flush_output();
	instlock_release(locks);
	if (r == 0 && d.reload) {
		/* the signals stay blocked across execv: a SIGTERM that arrives before the new image has its signalfd
		 * stays pending and is read there, instead of killing the daemon with the default action in between.
		 * What is in flight and must survive is under state_dir: a stop owed, the saved queue and what was learnt
		 * always, the rest (a requeue, cooldowns, the open incident) written by instance_carry_save above. */
		return DAEMON_REEXEC;
	}
	return r < 0 ? 2 : 0;
}

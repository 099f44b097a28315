// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include "actions.h"
#include "common.h"
#include "context.h"
#include "instance-state.h"
#include "journal.h"
#include "log.h"
#include "metrics.h"
#include "procfs.h"
#include "procfs-read.h"
#include "proctree.h"
#include "scan.h"

#define MAX_PORTS CONFIG_MAX_INSTANCES
#define REPORTED_MAX 512

/* Orphans already journaled: one record per process, however often it is classified. */
static struct orphan_identity reported[REPORTED_MAX];
static size_t n_reported, reported_next; /* a ring: the oldest identities make room */

struct build_ctx {
	struct daemon *d;
	struct scan_result *sr;
	size_t cap;
	pid_t owners[MAX_PORTS][64];
	int n_owners[MAX_PORTS];
	uint16_t ports[MAX_PORTS];
	int n_ports;
};

static bool proc_alive_known(struct daemon *d, pid_t pid, uint64_t start_ns)
{
	struct proc *p = proctree_get(d->pt, pid);

	return p && p->death == PROC_ALIVE && (!start_ns || p->start_ns == start_ns);
}

static void add_proc(struct proc *p, void *ctx)
{
	struct build_ctx *c = ctx;
	struct orphan_proc *o;
	struct proc *parent;

	if (p->death != PROC_ALIVE || c->sr->n >= c->cap)
		return;
	/* the parent may have died since we last looked: the kernel has reparented it by now */
	if (proctree_refresh(c->d->pt, p) < 0)
		return;
	o = &c->sr->procs[c->sr->n++];
	memset(o, 0, sizeof(*o));
	o->pid = p->pid;
	o->ppid = p->ppid;
	o->pgid = p->pgid;
	o->sid = p->sid;
	o->uid = p->uid;
	o->start_ns = p->start_ns;
	snprintf(o->comm, sizeof(o->comm), "%s", p->comm);
	snprintf(o->cmdline, sizeof(o->cmdline), "%s", p->cmdline);
	snprintf(o->cwd, sizeof(o->cwd), "%s", p->cwd);
	snprintf(o->exe, sizeof(o->exe), "%s", p->exe);
	snprintf(o->cgroup, sizeof(o->cgroup), "%s", p->cgroup_dir);
	o->rss_bytes = p->rss_bytes;
	for (int i = 0; i < c->n_ports; i++)
		for (int j = 0; j < c->n_owners[i]; j++)
			if (c->owners[i][j] == p->pid)
				o->listen_port = c->ports[i];
	if (p->server_pid) {
		bool server_alive = proc_alive_known(c->d, p->server_pid, p->server_start_ns);
		o->descends_from_live_server = server_alive;
		o->was_child_of_server = !server_alive;
	}
	/* the parent we first saw is gone and someone else (init or a subreaper) adopted it */
	parent = proctree_get(c->d->pt, p->first_ppid);
	o->reparented = p->ppid == 1 || (p->first_ppid && p->ppid != p->first_ppid &&
					 (!parent || parent->death != PROC_ALIVE));
	o->is_self = p->pid == getpid();
	o->is_self_parent = p->pid == getppid();
}

int scan_orphans(struct daemon *d, const struct instance_config *ic, const struct orphan_server *servers,
		 size_t nservers, struct scan_result *ret)
{
	struct orphan_scope scope;
	struct build_ctx *c;
	int r;

	memset(ret, 0, sizeof(*ret));
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->d = d;
	c->sr = ret;
	c->cap = proctree_count_alive(d->pt) + 16;
	ret->procs = calloc(c->cap, sizeof(*ret->procs));
	ret->verdicts = calloc(c->cap, sizeof(*ret->verdicts));
	if (!ret->procs || !ret->verdicts) {
		free(c);
		scan_result_free(ret);
		return -ENOMEM;
	}
	for (int i = 0; i < d->cfg->n_instances && c->n_ports < MAX_PORTS; i++) {
		uint16_t port;
		if (config_url_port(d->cfg->instances[i].url, &port) < 0)
			continue;
		c->ports[c->n_ports] = port;
		r = procfs_find_port_owners(proctree_root(d->pt), port, c->owners[c->n_ports], 64);
		c->n_owners[c->n_ports++] = r < 0 ? 0 : r;
	}
	proctree_foreach(d->pt, add_proc, c);
	free(c);

	orphan_scope_init(&scope, getpid(), getppid());
	scope.n_comm_prefixes = 0;
	for (int i = 0; i < d->cfg->n_comm_prefixes; i++)
		orphan_scope_add_comm_prefix(&scope, d->cfg->comm_prefixes[i]);
	if (ic->cmdline_pattern[0])
		orphan_scope_add_cmdline_pattern(&scope, ic->cmdline_pattern);
	for (int i = 0; i < d->cfg->n_cgroups; i++)
		orphan_scope_add_cgroup_prefix(&scope, d->cfg->cgroups[i]);
	scope.min_rss_bytes = d->cfg->orphan_min_rss_bytes;
	scope.min_age_ns = d->cfg->orphan_min_age_ms * NSEC_PER_MSEC;
	scope.uid = d->cfg->orphan_uid;
	r = orphan_scan(&scope, servers, nservers, ret->procs, ret->n, now_boot_ns(), ret->verdicts, &ret->orphan_bytes);
	if (r < 0) {
		scan_result_free(ret);
		return log_warn_errno(r, "orphan scan failed");
	}
	ret->n_orphans = (size_t)r;
	return 0;
}

void scan_result_free(struct scan_result *sr)
{
	free(sr->procs);
	free(sr->verdicts);
	sr->procs = NULL;
	sr->verdicts = NULL;
	sr->n = 0;
}

static bool was_reported(const struct orphan_identity *id)
{
	for (size_t i = 0; i < n_reported; i++)
		if (orphan_same_process(&reported[i], id))
			return true;
	return false;
}

int scan_report_new(const struct scan_result *sr, const char *instance)
{
	uint64_t now = now_boot_ns();
	int n = 0;

	for (size_t i = 0; i < sr->n; i++) {
		const struct orphan_verdict *v = &sr->verdicts[i];
		const struct orphan_proc *p = &sr->procs[i];
		struct orphan_identity id = { v->pid, v->start_ns };
		struct rec r;

		if (v->verdict != ORPHAN_VERDICT_ORPHAN || was_reported(&id))
			continue;
		reported[reported_next] = id;
		reported_next = (reported_next + 1) % REPORTED_MAX;
		n_reported = MIN(n_reported + 1, (size_t)REPORTED_MAX);
		rec_init(&r, REC_ORPHAN, LOG_WARNING);
		rec_add(&r, "INSTANCE", "%s", instance);
		rec_add(&r, "PID", "%d", p->pid);
		rec_add(&r, "PPID", "%d", p->ppid);
		rec_add(&r, "COMM", "%s", p->comm);
		rec_add(&r, "RSS_BYTES", "%llu", (unsigned long long)p->rss_bytes);
		rec_add(&r, "AGE_S", "%llu", (unsigned long long)(now > p->start_ns ? (now - p->start_ns) / NSEC_PER_SEC : 0));
		rec_add(&r, "ORPHAN_REASON", "%s", orphan_reason_str(v->reason));
		rec_add(&r, "REASON", "%s", v->text);
		rec_add(&r, "CMDLINE", "%s", p->cmdline);
		rec_add(&r, "CGROUP", "%s", p->cgroup);
		rec_message(&r, "orphan pid %d %s (%.1f MiB, %llu s old): %s", p->pid, p->comm,
			    (double)p->rss_bytes / (1 << 20),
			    (unsigned long long)(now > p->start_ns ? (now - p->start_ns) / NSEC_PER_SEC : 0), v->text);
		rec_emit(&r);
		n++;
	}
	return n;
}

void scan_reap_start(const struct scan_result *sr, struct orphan_reap *reaps, uint64_t *rss, size_t *n, size_t max,
		     uint64_t grace_ms, uint64_t now_ns)
{
	(void)now_ns;
	for (size_t i = 0; i < sr->n && *n < max; i++) {
		const struct orphan_verdict *v = &sr->verdicts[i];
		struct orphan_identity id = { v->pid, v->start_ns };
		bool busy = false;

		if (v->verdict != ORPHAN_VERDICT_ORPHAN)
			continue;
		for (size_t j = 0; j < *n; j++)
			busy |= orphan_same_process(&reaps[j].target, &id);
		if (busy || orphan_reap_init(&reaps[*n], &id, grace_ms * NSEC_PER_MSEC) < 0)
			continue;
		rss[*n] = sr->procs[i].rss_bytes;
		(*n)++;
	}
}

static void journal_reap(const char *instance, const struct orphan_reap *rp, uint64_t rss)
{
	bool gone = rp->outcome == ORPHAN_REAP_EXITED_AFTER_SIGTERM || rp->outcome == ORPHAN_REAP_KILLED;
	struct rec r;

	rec_init(&r, REC_ACTION, gone ? LOG_NOTICE : LOG_WARNING);
	rec_add(&r, "INSTANCE", "%s", instance);
	rec_add(&r, "ACTION", "reap_orphan");
	rec_add(&r, "PID", "%d", rp->target.pid);
	rec_add(&r, "RESULT", "%s", orphan_reap_outcome_str(rp->outcome));
	rec_add(&r, "FREED_BYTES", "%llu", (unsigned long long)(gone ? rss : 0));
	rec_message(&r, "instance %s: orphan pid %d %s%s; gave back %.1f MiB", instance, rp->target.pid,
		    orphan_reap_outcome_str(rp->outcome), rp->error ? " (error)" : "", gone ? (double)rss / (1 << 20) : 0.0);
	rec_emit(&r);
}

uint64_t scan_reap_step(struct daemon *d, const char *instance, struct orphan_reap *reaps, uint64_t *rss, size_t *n,
			uint64_t now_ns)
{
	uint64_t freed = 0;

	for (size_t i = 0; i < *n;) {
		struct orphan_reap *rp = &reaps[i];
		struct proc_stat st;
		struct orphan_identity seen;
		const struct orphan_identity *seenp = NULL;
		enum orphan_reap_action act;
		uint64_t wake;

		if (procfs_read_stat(proctree_root(d->pt), rp->target.pid, &st) == 0 && st.state != 'Z') {
			seen = (struct orphan_identity){ st.pid, st.start_ns };
			seenp = &seen;
		}
		orphan_reap_next_step(rp, now_ns, seenp, &act, &wake);
		if (act == ORPHAN_REAP_SEND_SIGTERM || act == ORPHAN_REAP_SEND_SIGKILL) {
			int sig = act == ORPHAN_REAP_SEND_SIGTERM ? SIGTERM : SIGKILL;
			orphan_reap_signal_result(rp, action_signal(proctree_root(d->pt), rp->target.pid, rp->target.start_ns,
								    sig));
			continue; /* look again at once: it may be finished already */
		}
		if (act == ORPHAN_REAP_FINISHED) {
			journal_reap(instance, rp, rss[i]);
			if (rp->outcome == ORPHAN_REAP_EXITED_AFTER_SIGTERM || rp->outcome == ORPHAN_REAP_KILLED)
				freed += rss[i];
			reaps[i] = reaps[*n - 1];
			rss[i] = rss[*n - 1];
			(*n)--;
			continue;
		}
		i++;
	}
	return freed;
}

/* ---- one instance: its orphans against every instance's live server ---- */

static int instance_server(const struct instance *in, struct orphan_server *ret)
{
	struct proc *p = in->server_pid ? proctree_get(in->d->pt, in->server_pid) : NULL;

	if (!p || !instance_owns_proc((struct instance *)in, p))
		return -ENOENT;
	memset(ret, 0, sizeof(*ret));
	ret->pid = p->pid;
	ret->ppid = p->ppid;
	ret->pgid = p->pgid;
	ret->sid = p->sid;
	ret->start_ns = p->start_ns;
	snprintf(ret->cwd, sizeof(ret->cwd), "%s", p->cwd);
	snprintf(ret->cmdline, sizeof(ret->cmdline), "%s", p->cmdline);
	ret->port = in->port;
	return 0;
}

static int scan_instance_orphans(struct instance *in, struct scan_result *ret)
{
	struct orphan_server servers[CONFIG_MAX_INSTANCES];
	struct daemon *d = in->d;
	size_t n = 0;

	for (int i = 0; i < d->n_instances && n < ARRAY_SIZE(servers); i++)
		if (instance_server(d->instances[i], &servers[n]) == 0)
			n++;
	return scan_orphans(d, in->ic, servers, n, ret);
}

void scan_instance(struct instance *in, uint64_t now_ns, bool reap)
{
	struct scan_result sr;

	if (scan_instance_orphans(in, &sr) < 0)
		return;
	in->orphan_count = (uint32_t)sr.n_orphans;
	in->orphan_bytes = sr.orphan_bytes;
	metrics_set_gauge(METRIC_ORPHANS, in->labels, (double)sr.n_orphans);
	scan_report_new(&sr, in->ic->name);
	if (reap)
		scan_reap_start(&sr, in->reaps, in->reap_rss, &in->n_reaps, MAX_REAPS, in->d->cfg->orphan_grace_ms, now_ns);
	scan_reap_step(in->d, in->ic->name, in->reaps, in->reap_rss, &in->n_reaps, now_ns);
	scan_result_free(&sr);
}

int scan_instance_to_end(struct instance *in, uint64_t now_ns, bool reap)
{
	struct scan_result sr;
	uint64_t freed = 0;
	size_t n;

	if (scan_instance_orphans(in, &sr) < 0)
		return -EIO;
	n = sr.n_orphans;
	scan_report_new(&sr, in->ic->name);
	if (reap)
		scan_reap_start(&sr, in->reaps, in->reap_rss, &in->n_reaps, MAX_REAPS, in->d->cfg->orphan_grace_ms, now_ns);
	scan_result_free(&sr);
	while (in->n_reaps) {
		freed += scan_reap_step(in->d, in->ic->name, in->reaps, in->reap_rss, &in->n_reaps, now_mono_ns());
		if (in->n_reaps)
			usleep(100 * 1000);
	}
	if (reap) {
		char buf[32];
		struct rec r;
		instance_rec(&r, in, REC_ACTION, LOG_NOTICE);
		rec_add(&r, "ACTION", "reap_orphans");
		rec_add(&r, "FREED_BYTES", "%llu", (unsigned long long)freed);
		rec_add(&r, "COUNT", "%zu", n);
		rec_message(&r, "instance %s: reaped %zu orphans, %s given back", in->ic->name, n,
			    fmt_bytes(freed, buf, sizeof(buf)));
		rec_emit(&r);
	}
	return (int)n;
}

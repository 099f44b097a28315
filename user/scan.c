// SPDX-License-Identifier: GPL-2.0
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "actions.h"
#include "common.h"
#include "context.h"
#include "instance-state.h"
#include "journal.h"
#include "lineage.h"
#include "log.h"
#include "metrics.h"
#include "procfs.h"
#include "procfs-read.h"
#include "proctree.h"
#include "scan.h"
#include "statefile.h"
#include "units.h"

#define MAX_PORTS CONFIG_MAX_INSTANCES
#define OWNERS_MAX 64
#define REPORTED_MAX 512

/* Orphans already journaled: one record per process, however often it is classified. */
static struct orphan_identity reported[REPORTED_MAX];
static size_t n_reported, reported_next; /* a ring: the oldest identities make room */

/* Per configured instance: its last known server (the home heuristic finds are compared with once it died), the
 * lineage read from the state directory, and what was written there last. */
static struct orphan_home last_home[CONFIG_MAX_INSTANCES];
static struct lineage *persisted[CONFIG_MAX_INSTANCES];
static bool persisted_loaded[CONFIG_MAX_INSTANCES];
static char *persisted_text[CONFIG_MAX_INSTANCES];

struct build_ctx {
	struct daemon *d;
	struct scan_result *sr;
	size_t cap;
	int index; /* the instance being scanned */
	pid_t owners[OWNERS_MAX];     /* hold its port on any address */
	int n_owners;
	pid_t url_owners[OWNERS_MAX]; /* of those, the ones serving the URL's address (or the wildcard) */
	int n_url_owners;
	pid_t other_owners[OWNERS_MAX * MAX_PORTS]; /* hold another instance's port */
	int n_other_owners;
	const struct lineage *persisted;
};

static bool pid_in(const pid_t *pids, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (pids[i] == pid)
			return true;
	return false;
}

static bool proc_alive_known(struct daemon *d, pid_t pid, uint64_t start_ns)
{
	struct proc *p = proctree_get(d->pt, pid);

	return p && p->death == PROC_ALIVE && (!start_ns || p->start_ns == start_ns);
}

/* The process table may not hold a server that died before this daemon started: ask /proc. */
static bool identity_alive(struct daemon *d, pid_t pid, uint64_t start_ns)
{
	struct proc_stat st;

	return procfs_read_stat(proctree_root(d->pt), pid, &st) == 0 && st.start_ns == start_ns && st.state != 'Z';
}

static void add_proc(struct proc *p, void *ctx)
{
	struct build_ctx *c = ctx;
	const struct lineage_entry *e;
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
	if (pid_in(c->owners, c->n_owners, p->pid)) {
		uint16_t port = 0;
		config_url_port(c->d->cfg->instances[c->index].url, &port);
		o->listen_port = port;
		o->serves_url_address = pid_in(c->url_owners, c->n_url_owners, p->pid);
	}
	/* a server of another instance that has not been located yet looks like anything else but holds its port */
	o->other_instance = pid_in(c->other_owners, c->n_other_owners, p->pid);
	if (p->server_pid) {
		bool server_alive = proc_alive_known(c->d, p->server_pid, p->server_start_ns);
		if (server_alive)
			o->descends_from_live_server = true;
		else if (p->server_instance == c->index)
			o->was_child_of_server = true;
		else
			o->other_instance = true;
	} else if (c->persisted && (e = lineage_find(c->persisted, p->pid, p->start_ns))) {
		bool server_alive = identity_alive(c->d, e->server_pid, e->server_start_ns);
		o->descends_from_live_server = server_alive;
		o->was_child_of_server = !server_alive;
		o->lineage_persisted = true;
	}
	if (p->pgid > 0 && p->pgid != p->pid) {
		struct proc_stat leader;
		/* the leader must have started before p: a recycled pid is not its family */
		o->group_leader_alive = procfs_read_stat(proctree_root(c->d->pt), p->pgid, &leader) == 0 &&
					leader.state != 'Z' && leader.start_ns <= p->start_ns;
	}
	/* the parent we first saw is gone and someone else (init or a subreaper) adopted it */
	parent = proctree_get(c->d->pt, p->first_ppid);
	o->reparented = p->ppid == 1 || (p->first_ppid && p->ppid != p->first_ppid &&
					 (!parent || parent->death != PROC_ALIVE));
	o->is_self = p->pid == getpid();
	o->is_self_parent = p->pid == getppid();
}

static void home_from_proc(const struct proc *p, uint16_t port, struct orphan_home *ret)
{
	memset(ret, 0, sizeof(*ret));
	ret->known = true;
	ret->alive = true;
	ret->pid = p->pid;
	ret->start_ns = p->start_ns;
	ret->uid = p->uid;
	ret->port = port;
	snprintf(ret->exe, sizeof(ret->exe), "%s", p->exe);
	snprintf(ret->cwd, sizeof(ret->cwd), "%s", p->cwd);
	snprintf(ret->cgroup, sizeof(ret->cgroup), "%s", p->cgroup_dir);
	snprintf(ret->cmdline, sizeof(ret->cmdline), "%s", p->cmdline);
}

/* file name under state_dir; the instance name comes from the config: keep it to one harmless path component */
static void lineage_name(const struct config *cfg, int index, char *buf, size_t len)
{
	char name[64];
	size_t i = 0;

	for (const char *s = cfg->instances[index].name; *s && i + 1 < sizeof(name); s++, i++)
		name[i] = (isalnum((unsigned char)*s) || *s == '-' || *s == '_' || *s == '.') && !(i == 0 && *s == '.') ?
				  *s : '_';
	name[i] = 0;
	snprintf(buf, len, "lineage-%s", name);
}

static void lineage_path(const struct config *cfg, int index, char *buf, size_t len)
{
	char name[80];

	lineage_name(cfg, index, name, sizeof(name));
	snprintf(buf, len, "%s/%s", cfg->state_dir, name);
}

/* Reads the lineage a daemon persisted. Only a regular file that root (or we) own and nobody else can write is
 * believed: it decides what gets signalled. Returns NULL when there is none or it is not trusted. */
static struct lineage *lineage_load(const struct config *cfg, int index)
{
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int fd = -1;
	struct lineage *l = NULL;
	char path[PATH_MAX];
	struct stat st;
	size_t len = 0;
	ssize_t n;

	lineage_path(cfg, index, path, sizeof(path));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT)
			log_warn_errno(-errno, "lineage %s not read", path);
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_uid != 0 && st.st_uid != geteuid()) ||
	    (st.st_mode & 0022) || st.st_size > LINEAGE_TEXT_MAX) {
		log_warn("lineage %s ignored: not a regular file owned by root and writable only by it", path);
		return NULL;
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text)
		return NULL;
	while (len < (size_t)st.st_size && (n = read(fd, text + len, (size_t)st.st_size - len)) > 0)
		len += (size_t)n;
	text[len] = 0;
	l = malloc(sizeof(*l));
	if (!l)
		return NULL;
	if (lineage_parse(text, len, l) < 0) {
		log_warn("lineage %s ignored: not understood", path);
		free(l);
		return NULL;
	}
	return l;
}

struct lineage_ctx {
	struct lineage *l;
	int index;
};

static void collect_lineage(struct proc *p, void *ctx)
{
	struct lineage_ctx *c = ctx;

	if (p->death != PROC_ALIVE || !p->server_pid || p->server_instance != c->index || c->l->n >= LINEAGE_MAX_ENTRIES)
		return;
	c->l->entries[c->l->n++] = (struct lineage_entry){ p->pid, p->start_ns, p->server_pid, p->server_start_ns };
}

/* Persists who the server is and what it forked, when that changed since the last write. */
static void lineage_persist(struct daemon *d, int index, const struct orphan_home *home)
{
	_cleanup_free_ char *text = NULL;
	struct lineage *l = calloc(1, sizeof(*l));
	struct lineage_ctx c = { l, index };
	char path[PATH_MAX], name[80];
	int r;

	if (!l)
		return;
	if (home->known)
		l->home = *home;
	proctree_foreach(d->pt, collect_lineage, &c);
	/* what an earlier daemon knew and this one could not see being forked */
	for (size_t i = 0; persisted[index] && i < persisted[index]->n && l->n < LINEAGE_MAX_ENTRIES; i++) {
		const struct lineage_entry *e = &persisted[index]->entries[i];
		if (!lineage_find(l, e->pid, e->start_ns) && identity_alive(d, e->pid, e->start_ns))
			l->entries[l->n++] = *e;
	}
	r = lineage_format(l, &text);
	free(l);
	if (r < 0 || (persisted_text[index] && !strcmp(persisted_text[index], text)))
		return;
	lineage_name(d->cfg, index, name, sizeof(name));
	lineage_path(d->cfg, index, path, sizeof(path));
	r = statefile_write(d->cfg->state_dir, name, text);
	if (r < 0) {
		log_warn_errno(r, "cannot persist the lineage to %s", path);
		return;
	}
	free(persisted_text[index]);
	persisted_text[index] = TAKE_PTR(text);
}

static int instance_index(struct daemon *d, const struct instance_config *ic)
{
	for (int i = 0; i < d->cfg->n_instances; i++)
		if (&d->cfg->instances[i] == ic)
			return i;
	return -1;
}

/* Port owners of instance i: all of them, those serving the URL's address, and (into others) none of ours. */
static void find_owners(struct daemon *d, struct build_ctx *c)
{
	const char *root = proctree_root(d->pt);
	uint64_t inodes[OWNERS_MAX];
	struct procfs_addr want;
	char host[128];
	uint16_t port;
	int r, ni = -1;

	for (int i = 0; i < d->cfg->n_instances; i++) {
		if (config_url_port(d->cfg->instances[i].url, &port) < 0)
			continue;
		if (i == c->index) {
			r = procfs_find_port_owners(root, port, c->owners, OWNERS_MAX);
			c->n_owners = r < 0 ? 0 : r;
			if (config_url_host(d->cfg->instances[i].url, host, sizeof(host)) == 0 &&
			    procfs_addr_from_host(host, &want) == 0)
				ni = procfs_listening_inodes_on(root, port, &want, inodes, ARRAY_SIZE(inodes));
			for (int j = 0; j < c->n_owners; j++)
				/* a host name we cannot resolve to an address: only the wildcard is sure to serve it */
				if (ni > 0 && procfs_pid_has_socket_inode(root, c->owners[j], inodes, (size_t)ni) > 0)
					c->url_owners[c->n_url_owners++] = c->owners[j];
		} else if (c->n_other_owners < (int)ARRAY_SIZE(c->other_owners)) {
			r = procfs_find_port_owners(root, port, c->other_owners + c->n_other_owners,
						    ARRAY_SIZE(c->other_owners) - (size_t)c->n_other_owners);
			c->n_other_owners += r < 0 ? 0 : r;
		}
	}
}

int scan_orphans(struct daemon *d, const struct instance_config *ic, const struct orphan_server *servers,
		 size_t nservers, const struct orphan_home *live_home, struct scan_result *ret)
{
	struct orphan_home home = { 0 };
	struct orphan_scope scope;
	struct build_ctx *c;
	int r, index = instance_index(d, ic);

	memset(ret, 0, sizeof(*ret));
	if (index < 0)
		return -EINVAL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->d = d;
	c->sr = ret;
	c->index = index;
	c->cap = proctree_count_alive(d->pt) + 16;
	ret->procs = calloc(c->cap, sizeof(*ret->procs));
	ret->verdicts = calloc(c->cap, sizeof(*ret->verdicts));
	if (!ret->procs || !ret->verdicts) {
		free(c);
		scan_result_free(ret);
		return -ENOMEM;
	}
	if (!persisted_loaded[index]) {
		persisted[index] = lineage_load(d->cfg, index);
		persisted_loaded[index] = true;
	}
	c->persisted = persisted[index];
	/* the live server, else the last one this daemon knew, else the one a daemon persisted: what a heuristic
	 * find must share with it before it may be reaped */
	if (live_home && live_home->known) {
		home = *live_home;
		last_home[index] = home;
	} else if (last_home[index].known) {
		home = last_home[index];
		home.alive = false;
	} else if (persisted[index] && persisted[index]->home.known) {
		home = persisted[index]->home;
		home.alive = false;
	}
	find_owners(d, c);
	proctree_foreach(d->pt, add_proc, c);
	free(c);
	if (d->mode != MODE_SCAN)
		lineage_persist(d, index, &home);

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
	scope.home = home;
	orphan_scope_default_to_home(&scope);
	r = orphan_scan(&scope, servers, nservers, ret->procs, ret->n, now_boot_ns(), ret->verdicts, &ret->orphan_bytes);
	if (r < 0) {
		scan_result_free(ret);
		return r;
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
		char rss[BYTES_STR_MAX];
		struct rec r;

		if ((v->verdict != ORPHAN_VERDICT_ORPHAN && v->verdict != ORPHAN_VERDICT_SUSPECT) || was_reported(&id))
			continue;
		reported[reported_next] = id;
		reported_next = (reported_next + 1) % REPORTED_MAX;
		n_reported = MIN(n_reported + 1, (size_t)REPORTED_MAX);
		rec_init(&r, REC_ORPHAN, LOG_WARNING);
		rec_add(&r, "INSTANCE", "%s", instance);
		rec_add_pid(&r, "PID", p->pid);
		rec_add_pid(&r, "PPID", p->ppid);
		rec_add(&r, "COMM", "%s", p->comm);
		rec_add_bytes(&r, "RSS_BYTES", p->rss_bytes);
		rec_add_u64(&r, "AGE_S", now > p->start_ns ? (now - p->start_ns) / NSEC_PER_SEC : 0);
		rec_add(&r, "VERDICT", "%s", orphan_verdict_kind_str(v->verdict));
		rec_add(&r, "ORPHAN_REASON", "%s", orphan_reason_str(v->reason));
		rec_add(&r, "REASON", "%s", v->text);
		rec_add(&r, "CMDLINE", "%s", p->cmdline);
		rec_add(&r, "CGROUP", "%s", p->cgroup);
		rec_message(&r, "%s pid %d %s (%s, %llu s old): %s",
			    v->verdict == ORPHAN_VERDICT_ORPHAN ? "orphan" : "suspected orphan (not reaped)", p->pid, p->comm,
			    FMT_BYTES(rss, p->rss_bytes),
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
	char freed[BYTES_STR_MAX];
	struct rec r;

	rec_init(&r, REC_ACTION, gone ? LOG_NOTICE : LOG_WARNING);
	rec_add(&r, "INSTANCE", "%s", instance);
	rec_add(&r, "ACTION", "reap_orphan");
	rec_add_pid(&r, "PID", rp->target.pid);
	rec_add(&r, "RESULT", "%s", orphan_reap_outcome_str(rp->outcome));
	rec_add_bytes(&r, "FREED_BYTES", gone ? rss : 0);
	rec_message(&r, "instance %s: orphan pid %d %s%s; gave back %s", instance, rp->target.pid,
		    orphan_reap_outcome_str(rp->outcome), rp->error ? " (error)" : "", FMT_BYTES(freed, gone ? rss : 0));
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
	struct orphan_home home = { 0 };
	struct daemon *d = in->d;
	struct proc *sp;
	uint16_t port = 0;
	size_t n = 0;

	for (int i = 0; i < d->n_instances && n < ARRAY_SIZE(servers); i++)
		if (instance_server(d->instances[i], &servers[n]) == 0)
			n++;
	sp = in->server_pid ? proctree_get(d->pt, in->server_pid) : NULL;
	if (sp && instance_owns_proc(in, sp)) {
		config_url_port(in->ic->url, &port);
		home_from_proc(sp, port, &home);
	}
	return scan_orphans(d, in->ic, servers, n, &home, ret);
}

void scan_persist_lineage(struct instance *in)
{
	struct orphan_home home = { 0 };
	struct proc *sp = in->server_pid ? proctree_get(in->d->pt, in->server_pid) : NULL;
	int index = instance_index(in->d, in->ic);
	uint16_t port = 0;

	if (index < 0)
		return;
	if (sp && instance_owns_proc(in, sp)) {
		config_url_port(in->ic->url, &port);
		home_from_proc(sp, port, &home);
	} else if (last_home[index].known) {
		home = last_home[index];
		home.alive = false;
	}
	lineage_persist(in->d, index, &home);
}

int scan_instance(struct instance *in, uint64_t now_ns, bool reap)
{
	struct scan_result sr;
	int r, n;

	r = scan_instance_orphans(in, &sr);
	if (r < 0)
		return r;
	n = (int)sr.n_orphans;
	in->orphan_count = (uint32_t)sr.n_orphans;
	in->orphan_bytes = sr.orphan_bytes;
	metrics_set_gauge(METRIC_ORPHANS, in->labels, (double)sr.n_orphans);
	scan_report_new(&sr, in->ic->name);
	if (reap)
		scan_reap_start(&sr, in->reaps, in->reap_rss, &in->n_reaps, MAX_REAPS, in->d->cfg->orphan_grace_ms, now_ns);
	scan_reap_step(in->d, in->ic->name, in->reaps, in->reap_rss, &in->n_reaps, now_ns);
	scan_result_free(&sr);
	return n;
}

int scan_instance_to_end(struct instance *in, uint64_t now_ns, bool reap)
{
	struct scan_result sr;
	uint64_t freed = 0;
	size_t n;
	int r;

	r = scan_instance_orphans(in, &sr);
	if (r < 0)
		return r;
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
		rec_add_bytes(&r, "FREED_BYTES", freed);
		rec_add_u64(&r, "COUNT", n);
		rec_message(&r, "instance %s: reaped %zu orphans, %s given back", in->ic->name, n,
			    bytes_str(freed, buf, sizeof(buf)));
		rec_emit(&r);
	}
	return (int)n;
}

// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>
#include "cgroup.h"
#include "cgroup-read.h"
#include "common.h"
#include "context.h"
#include "generations.h"
#include "comfy-ws.h"
#include "instance-state.h"
#include "journal.h"
#include "locate.h"
#include "log.h"
#include "memwatch.h"
#include "pidfile.h"
#include "probes.h"
#include "procfs.h"
#include "procfs-read.h"
#include "proctree.h"
#include "sockdiag.h"
#include "usage.h"
#include "oomsentry/events.h"

/* The pid in the configured pid file when it is provably the server; 0 (say why, once) to fall through to the port. */
static pid_t read_pid_file(struct instance *in)
{
	struct procfs_addr want;
	char host[128], why[192];
	bool have_addr = config_url_host(in->ic->url, host, sizeof(host)) == 0 && procfs_addr_from_host(host, &want) == 0;
	struct pidfile_expect e = {
		.proc_root = proctree_root(in->d->pt),
		.cmdline_pattern = in->ic->cmdline_pattern,
		.port = in->port,
		.addr = have_addr ? &want : NULL,
		.cgroup_dir = in->ic->cgroup,
		.mounts = &in->d->mounts,
	};
	int r = pidfile_read_server(in->ic->pid_file, &e, why, sizeof(why));

	if (r > 1)
		return (pid_t)r;
	if (strcmp(why, in->pidfile_why) != 0) {
		snprintf(in->pidfile_why, sizeof(in->pidfile_why), "%s", why);
		log_warn("instance %s: pid file %s not used: %s; looking for the server by its port", in->ic->name,
			 in->ic->pid_file, why);
	}
	return 0;
}

/* The host of http://HOST:PORT/..., IPv6 brackets kept. */
static void url_host(const char *url, char *buf, size_t len)
{
	const char *p = strstr(url, "://"), *end;

	buf[0] = 0;
	if (!p)
		return;
	p += 3;
	end = *p == '[' ? strchr(p, ']') : p + strcspn(p, ":/");
	if (!end)
		return;
	if (*p == '[')
		end++;
	snprintf(buf, len, "%.*s", (int)MIN((size_t)(end - p), len - 1), p);
}

/* Listening sockets on the port: from sock_diag in the daemon's own /proc view (it walks only listeners), else
 * from /proc/net/tcp{,6} (a /proc other than ours, or netlink refused). */
static int listening_inodes(struct instance *in, const struct procfs_addr *want, uint64_t *inodes, size_t max)
{
	const char *root = proctree_root(in->d->pt);
	int n = -ENOENT;

	if (!root || !strcmp(root, "/proc"))
		n = sockdiag_listening_inodes(in->port, want, inodes, max);
	if (n < 0)
		n = procfs_listening_inodes_on(root, in->port, want, inodes, max);
	return n;
}

/* The server among the processes that hold the port: one that serves the URL's address (listens on it or on
 * the wildcard), highest in the tree (workers inherit the socket), and among unrelated ones the newest. */
static pid_t pick_port_owner(struct instance *in)
{
	const char *root = proctree_root(in->d->pt);
	pid_t owners[64], best = 0;
	uint64_t inodes[64], best_start = 0;
	struct procfs_addr want;
	char host[128];
	bool best_serves = false;
	/* the port's listeners through listening_inodes (sock_diag): /proc/net/tcp is the kernel's walk of every
	 * established-connection bucket, 3 ms a read here, and this runs at every poll while the server is down
	 * (bench/overhead.sh: 2 a second, a third of the daemon's CPU during a 4 GiB fault run) */
	int n = listening_inodes(in, NULL, inodes, ARRAY_SIZE(inodes)), ni = -1;

	if (n <= 0)
		return 0;
	n = procfs_find_socket_owners(root, inodes, (size_t)n, owners, ARRAY_SIZE(owners));
	url_host(in->ic->url, host, sizeof(host));
	if (procfs_addr_from_host(host, &want) == 0)
		ni = listening_inodes(in, &want, inodes, ARRAY_SIZE(inodes));
	for (int i = 0; i < n; i++) {
		struct proc_stat st;
		bool parent_owns = false, serves;

		if (procfs_read_stat(root, owners[i], &st) < 0)
			continue;
		for (int j = 0; j < n; j++)
			if (owners[j] == st.ppid)
				parent_owns = true;
		if (parent_owns)
			continue;
		if (in->ic->cmdline_pattern[0]) {
			char cmd[512];
			procfs_read_cmdline(root, owners[i], cmd, sizeof(cmd));
			if (!strstr(cmd, in->ic->cmdline_pattern))
				continue;
		}
		/* with the URL's address known, only a process that serves it can be the server: another address of the
		 * port is another server (another pod on the node, another user), even while ours is down */
		serves = ni < 0 || (ni > 0 && procfs_pid_has_socket_inode(root, owners[i], inodes, (size_t)ni) > 0);
		if (ni >= 0 && !serves)
			continue;
		if (best && best_serves && !serves)
			continue;
		if (!best || (serves && !best_serves) || st.start_ns > best_start ||
		    (st.start_ns == best_start && owners[i] > best)) {
			best = owners[i];
			best_start = st.start_ns;
			best_serves = serves;
		}
	}
	return best;
}

/* A server found by its port stays the server only while it listens there (the port may change hands). */
static bool still_owns_port(struct instance *in)
{
	uint64_t inodes[16];
	int n;

	if (in->ic->pid_file[0] || !in->port)
		return true;
	n = listening_inodes(in, NULL, inodes, ARRAY_SIZE(inodes));
	if (n <= 0)
		return n == 0 ? false : true; /* an unreadable /proc/net/tcp is no reason to drop the server */
	n = procfs_pid_has_socket_inode(proctree_root(in->d->pt), in->server_pid, inodes, (size_t)n);
	/* a server that is gone owns nothing: were it taken for the owner, its successor on the port (a supervisor's
	 * restart after a last resort) would never be looked for; other errors (-EACCES) are no reason to drop it */
	return n > 0 || (n < 0 && n != -ENOENT && n != -ESRCH);
}

struct pattern_ctx {
	const char *pattern;
	struct proc *best;
};

static void match_pattern(struct proc *p, void *ctx)
{
	struct pattern_ctx *c = ctx;

	if (p->death == PROC_ALIVE && strstr(p->cmdline, c->pattern) && (!c->best || p->start_ns > c->best->start_ns))
		c->best = p;
}

/* A v1 notification (memwatch.c) on *efd that usage crossed line; registered again only when the line moved. */
static void watch_line(struct instance *in, uint64_t line, int *efd, uint64_t *cur, uint64_t tag_high)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int fd;

	if (*efd >= 0 && line == *cur)
		return;
	fd = memwatch_v1_arm(in->cgroup_dir, line);
	if (fd < 0) {
		log_debug_errno(fd, "instance %s: no usage notification for %s; samples only", in->ic->name,
				in->cgroup_dir);
		return;
	}
	ev.data.u64 = in->d->usage_tag | (tag_high << 32); /* unique per instance and line */
	if (epoll_ctl(in->d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		close(fd);
		return;
	}
	if (*efd >= 0)
		close(*efd); /* the old line's notification ends with its eventfd */
	*efd = fd;
	*cur = line;
}

/* v1: the kernel wakes the daemon when usage crosses the warn line of the limit, so that an idle daemon needs no
 * timer to see the cgroup fill, and when it crosses the line where the rss_stat probe is wanted (core/rssarm.h);
 * armed again when a line moves (the limit or the measured growth changed). */
static void watch_usage_line(struct instance *in)
{
	uint64_t arm;

	if (!in->use_cgroup || in->cgv != CG_V1 || !in->d->usage_tag || !in->limit_bytes)
		return;
	watch_line(in, (uint64_t)(in->pp.warn_usage_fraction * (double)in->limit_bytes), &in->usage_efd,
		   &in->usage_line, (uint64_t)(in->index + 1));
	arm = instance_rss_line(in);
	if (arm)
		watch_line(in, arm, &in->arm_efd, &in->arm_line, (uint64_t)(in->index + 1) | 1ULL << 16);
	else if (in->arm_efd >= 0) {
		close(in->arm_efd);
		in->arm_efd = -1;
	}
}

static void instance_set_cgroup(struct instance *in, const struct proc *p)
{
	const char *dir = in->ic->cgroup[0] ? in->ic->cgroup : p ? p->cgroup_dir : "";
	struct cg_memory m;

	if (strcmp(dir, in->cgroup_dir)) {
		if (in->usage_efd >= 0)
			close(in->usage_efd);
		if (in->arm_efd >= 0)
			close(in->arm_efd);
		in->usage_efd = in->arm_efd = -1;
	}
	snprintf(in->cgroup_dir, sizeof(in->cgroup_dir), "%s", dir);
	in->use_cgroup = false;
	in->cgroup_id = 0;
	if (!in->cgroup_dir[0])
		return;
	in->cgv = cg_mounts_memory_version(&in->d->mounts);
	if (cg_read_memory(in->cgroup_dir, in->cgv, &m) < 0)
		return;
	cg_dir_id(in->cgroup_dir, &in->cgroup_id);
	in->oom_kill_count = m.oom_kill;
	/* a cgroup without a limit says nothing about when the OOM killer comes: use the machine then */
	in->use_cgroup = m.effective_limit_bytes != CG_UNLIMITED;
	if (in->d->probes && in->cgroup_id)
		daemon_watch_cgroup(in->d, in->cgroup_id);
	in->brake_leftover_due = true; /* prevent.c looks for a brake a killed daemon left here */
}

static void server_found(struct instance *in, struct proc *p, uint64_t now_ns)
{
	bool restarted = in->server_pid != 0;
	char rss[32];
	struct rec r;

	in->server_pid = p->pid;
	in->server_start_ns = p->start_ns;
	proctree_mark_server(in->d->pt, p, in->index);
	instance_set_cgroup(in, p);
	if (restarted)
		gen_server_restarted(&in->gens, now_ns, in->usage_bytes);
	igen_models_unloaded(in); /* a new server holds no models */
	in->floor_valid = false;
	in->free_pending_prompt[0] = 0;
	in->server_gone = false;
	usage_levels_invalidate(&in->lv); /* measured on another basis (or another process) until now */
	in->generations_completed = 0;
	/* a server found at the daemon's start may have run prompts before: only a successor is known fresh */
	in->server_ran_prompt = !restarted;
	in->fresh_id[0] = 0;
	forecast_rate_init(&in->own_rate); /* another process: its growth starts from its own level */
	in->own_low_bytes = 0;
	saved_prompt_clear(&in->running);
	comfy_ws_retry_now(in->ws); /* a new server: listen from its first prompt, not after a grown backoff */
	instance_rec(&r, in, REC_COMFY, LOG_NOTICE);
	rec_add_pid(&r, "PID", p->pid);
	rec_add(&r, "COMM", "%s", p->comm);
	rec_add(&r, "CGROUP", "%s", in->cgroup_dir);
	rec_add_bytes(&r, "RSS_BYTES", p->rss_bytes);
	rec_message(&r, "instance %s: ComfyUI server is pid %d (%s, RSS %s)%s%s", in->ic->name, p->pid, p->comm,
		    bytes_str(p->rss_bytes, rss, sizeof(rss)), in->use_cgroup ? ", memory cgroup " : "",
		    in->use_cgroup ? in->cgroup_dir : ", no cgroup limit: the machine's memory is the limit");
	rec_emit(&r);
}

void instance_locate_server(struct instance *in, uint64_t now_ns)
{
	struct proc *cur = in->server_pid ? proctree_get(in->d->pt, in->server_pid) : NULL;
	struct proc *p = NULL;
	pid_t pid = 0;

	if (cur && instance_owns_proc(in, cur) && still_owns_port(in))
		return;
	if (in->ic->pid_file[0])
		pid = read_pid_file(in);
	if (!pid && in->port)
		pid = pick_port_owner(in);
	if (pid) {
		struct proc_stat st;

		p = proctree_get(in->d->pt, pid);
		/* a server killed a moment ago still holds its socket until its exit closes it: it is not tracked
		 * again as if it lived (it would stand for the server, alive, long after its exit was seen) */
		if (p && p->death != PROC_ALIVE && procfs_read_stat(proctree_root(in->d->pt), pid, &st) == 0 &&
		    st.start_ns == p->start_ns)
			p = NULL;
		else if (!p || p->death != PROC_ALIVE)
			p = daemon_track(in->d, pid, OS_TRACKED_SEEDED);
	} else if (in->ic->cmdline_pattern[0]) {
		struct pattern_ctx c = { in->ic->cmdline_pattern, NULL };
		proctree_foreach(in->d->pt, match_pattern, &c);
		p = c.best;
	}
	if (p && !(p->pid == in->server_pid && p->start_ns == in->server_start_ns))
		server_found(in, p, now_ns);
}

struct tree_ctx {
	struct instance *in;
	uint64_t rss;
};

static void sum_tree(struct proc *p, void *ctx)
{
	struct tree_ctx *c = ctx;

	if (p->death == PROC_ALIVE && instance_tree_has(c->in, p))
		c->rss += p->rss_bytes;
}

/* A cgroup that cannot be read (removed under us, a /sys race, a permission change) leaves the instance measured by
 * its process tree; the journal hears it once when it starts and once when it ends, not at every sample. */
static void cgroup_read_changed(struct instance *in, int err)
{
	struct rec r;

	if (err == in->measure_err)
		return;
	in->measure_err = err;
	instance_rec(&r, in, REC_COMFY, err ? LOG_WARNING : LOG_NOTICE);
	rec_add(&r, "CGROUP", "%s", in->cgroup_dir);
	if (err) {
		rec_add(&r, "ERRNO", "%d", -err);
		rec_message(&r, "instance %s: cannot read memory cgroup %s (%s); measuring the server's process tree "
				"against MemTotal until it reads again",
			    in->ic->name, in->cgroup_dir, strerror(-err));
	} else {
		rec_message(&r, "instance %s: memory cgroup %s reads again", in->ic->name, in->cgroup_dir);
	}
	rec_emit(&r);
}

/* Another watched server lives in the same limited memory cgroup. */
static bool cgroup_shared(const struct instance *in)
{
	for (int i = 0; i < in->d->n_instances; i++) {
		const struct instance *o = in->d->instances[i];

		if (o && o != in && o->use_cgroup && o->server_pid && !strcmp(o->cgroup_dir, in->cgroup_dir))
			return true;
	}
	return false;
}

static void refresh_tree(struct proc *p, void *ctx)
{
	struct tree_ctx *c = ctx;

	if (p->death == PROC_ALIVE && instance_tree_has(c->in, p))
		proctree_refresh(c->in->d->pt, p);
}

/* RSS of the server's process tree: the server read now, the others as their RSS events left them; all read now
 * when exact figures are wanted (RSS events come only every rss_step). */
static uint64_t tree_rss(struct instance *in, bool exact)
{
	struct tree_ctx c = { in, 0 };

	if (in->server_pid) {
		struct proc *s = proctree_get(in->d->pt, in->server_pid);

		if (exact)
			proctree_foreach(in->d->pt, refresh_tree, &c);
		else if (s && s->death == PROC_ALIVE)
			proctree_refresh(in->d->pt, s);
		proctree_foreach(in->d->pt, sum_tree, &c);
	}
	return c.rss;
}

static void own_low_note(struct instance *in)
{
	if (in->server_pid && (!in->own_low_bytes || in->own_bytes < in->own_low_bytes))
		in->own_low_bytes = in->own_bytes;
}

/* Working set of the cgroup (usage minus inactive file cache, which the kernel reclaims before any OOM kill)
 * when the server has a limited cgroup; else the RSS of its process tree against MemTotal. The server's own
 * memory is the cgroup's unless another watched server shares it. */
int instance_measure(struct instance *in)
{
	struct cg_memory m;
	struct meminfo mi;
	int r;

	in->prev_usage_bytes = in->usage_bytes;
	if (in->use_cgroup) {
		r = cg_read_memory(in->cgroup_dir, in->cgv, &m);
		cgroup_read_changed(in, r < 0 ? r : 0);
		if (r == 0) {
			in->usage_bytes = cg_memory_working_set(&m);
			in->raw_usage_bytes = m.usage_bytes;
			in->limit_bytes = m.effective_limit_bytes;
			watch_usage_line(in);
			in->oom_kill_count = m.oom_kill;
			in->psi_some_avg10 = m.has_psi ? m.psi.some.avg10 : -1;
			in->cgroup_shared = cgroup_shared(in);
			in->own_bytes = in->cgroup_shared ? MIN(tree_rss(in, true), in->usage_bytes) : in->usage_bytes;
			own_low_note(in);
			usage_levels_measured(&in->lv, in->usage_bytes);
			igen_measured(in, now_mono_ns());
			return 0;
		}
	}
	in->cgroup_shared = false;
	/* the others' RSS as their events left it, unless the rss probe is off (loop.c arm_rss): then read them all */
	in->usage_bytes = tree_rss(in, in->d->probes && !probes_rss_attached(in->d->probes));
	in->own_bytes = in->usage_bytes;
	own_low_note(in);
	usage_levels_measured(&in->lv, in->usage_bytes);
	igen_measured(in, now_mono_ns());
	r = procfs_read_meminfo(proctree_root(in->d->pt), &mi);
	if (r < 0)
		return in->limit_bytes ? 1 : r; /* the last MemTotal read still holds: memory does not change size */
	in->limit_bytes = mi.mem_total_bytes;
	return 1;
}

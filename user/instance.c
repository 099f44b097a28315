// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/sdt.h>
#include <unistd.h>
#include "actions.h"
#include "cgroup.h"
#include "comfy.h"
#include "common.h"
#include "forecast.h"
#include "generations.h"
#include "incident.h"
#include "instance.h"
#include "instance-impl.h"
#include "journal.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "orphans.h"
#include "policy.h"
#include "procfs.h"
#include "proctree.h"
#include "scan.h"
#include "oomsentry/events.h"

void saved_prompt_clear(struct saved_prompt *s)
{
	free(s->prompt_json);
	free(s->extra_json);
	memset(s, 0, sizeof(*s));
}

int saved_prompt_from_item(struct saved_prompt *s, const struct comfy_queue_item *it)
{
	saved_prompt_clear(s);
	snprintf(s->prompt_id, sizeof(s->prompt_id), "%s", it->prompt_id);
	s->number = it->number;
	s->prompt_json = strdup(it->prompt_json ? it->prompt_json : "{}");
	s->extra_json = strdup(it->extra_data_json ? it->extra_data_json : "{}");
	return s->prompt_json && s->extra_json ? 0 : -ENOMEM;
}

struct rec *instance_rec(struct rec *r, struct instance *in, enum rec_kind kind, int prio)
{
	rec_init(r, kind, prio);
	rec_add(r, "INSTANCE", "%s", in->ic->name);
	return r;
}

struct instance *instance_new(struct daemon *d, const struct instance_config *ic, int index)
{
	struct comfy_config cc = {
		.base_url = ic->url,
		.auth_header = ic->auth_header[0] ? ic->auth_header : NULL,
		.connect_timeout_ms = (int)MIN(d->cfg->http_timeout_ms, 1000),
		.total_timeout_ms = (int)d->cfg->http_timeout_ms,
	};
	struct instance *in = calloc(1, sizeof(*in));
	int r;

	if (!in)
		return NULL;
	in->d = d;
	in->ic = ic;
	in->index = index;
	in->reachable = true; /* until proven otherwise: say "unreachable" once, not at start */
	in->psi_some_avg10 = -1;
	config_url_port(ic->url, &in->port);
	metrics_labels(in->labels, sizeof(in->labels), "instance", ic->name, NULL);
	r = comfy_client_new(&cc, &in->comfy);
	if (r < 0) {
		log_error_errno(r, "instance %s: cannot create the HTTP client for %s", ic->name, ic->url);
		free(in);
		return NULL;
	}
	gen_tracker_init(&in->gens, ic->name);
	forecast_params_default(&in->fcp);
	in->fcp.margin = d->cfg->forecast_margin;
	in->pp = policy_params_default();
	in->pp.act_usage_fraction = d->cfg->act_usage_fraction;
	if (in->pp.warn_usage_fraction >= in->pp.act_usage_fraction)
		in->pp.warn_usage_fraction = in->pp.act_usage_fraction * 0.9;
	for (int i = 0; i < POLICY_RUNG_COUNT; i++)
		in->pp.cooldown_ms[i] = d->cfg->cooldown_ms;
	in->pp.enabled[POLICY_RUNG_KILL] = d->cfg->kill;
	in->pp.enabled[POLICY_RUNG_REAP_ORPHANS] = d->cfg->reap_orphans;
	in->pp.enabled[POLICY_RUNG_RESTART] = ic->restart_method != RESTART_NONE;
	in->pp.verify_ms[POLICY_RUNG_RESTART] = ic->restart_timeout_ms + 10000;
	in->pp.verify_after_generation_ms = 2000;
	in->pp.dry_run = d->cfg->dry_run;
	in->pp.free_after_each_generation = ic->free_after_each_generation;
	in->pp.restart_every_generations = (uint32_t)MIN(ic->restart_every_generations, UINT32_MAX);
	if (policy_params_validate(&in->pp) < 0) {
		log_error("instance %s: act_usage_fraction %.2f leaves no room for the policy's hysteresis; using 0.90",
			  ic->name, in->pp.act_usage_fraction);
		in->pp.act_usage_fraction = 0.90;
	}
	policy_state_init(&in->ps);
	crashloop_init(&in->cl, d->cfg->crashloop_window_ms * NSEC_PER_MSEC, (uint32_t)d->cfg->crashloop_threshold);
	return in;
}

void instance_free(struct instance *in)
{
	if (!in)
		return;
	comfy_client_free(in->comfy);
	saved_prompt_clear(&in->running);
	saved_prompt_clear(&in->requeue);
	for (size_t i = 0; i < in->n_saved; i++)
		saved_prompt_clear(&in->saved[i]);
	incident_free(in->incident);
	free(in);
}

/* ---- finding the server and its memory ---- */

bool instance_owns_proc(struct instance *in, const struct proc *p)
{
	return p && p->death == PROC_ALIVE && p->pid == in->server_pid && p->start_ns == in->server_start_ns;
}

bool instance_tree_has(struct instance *in, const struct proc *p)
{
	return in->server_pid && p &&
	       (instance_owns_proc(in, p) || (p->server_pid == in->server_pid && p->server_start_ns == in->server_start_ns));
}

static pid_t read_pid_file(const char *path)
{
	_cleanup_free_ char *text = NULL;
	long v;
	char *end;

	if (procfs_read_text(path, 64, &text, NULL) < 0)
		return 0;
	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || v <= 1 || v > INT_MAX)
		return 0;
	return (pid_t)v;
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
	int n = procfs_find_port_owners(root, in->port, owners, ARRAY_SIZE(owners)), ni = -1;

	url_host(in->ic->url, host, sizeof(host));
	if (procfs_addr_from_host(host, &want) == 0)
		ni = procfs_listening_inodes_on(root, in->port, &want, inodes, ARRAY_SIZE(inodes));
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
		serves = ni <= 0 || procfs_pid_has_socket_inode(root, owners[i], inodes, (size_t)ni) > 0;
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
	n = procfs_listening_inodes(proctree_root(in->d->pt), in->port, inodes, ARRAY_SIZE(inodes));
	if (n <= 0)
		return n == 0 ? false : true; /* an unreadable /proc/net/tcp is no reason to drop the server */
	return procfs_pid_has_socket_inode(proctree_root(in->d->pt), in->server_pid, inodes, (size_t)n) != 0;
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

static void instance_set_cgroup(struct instance *in, const struct proc *p)
{
	const char *dir = in->ic->cgroup[0] ? in->ic->cgroup : p ? p->cgroup_dir : "";
	struct cg_memory m;

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
	in->floor_valid = false;
	in->free_pending_prompt[0] = 0;
	in->server_gone = false;
	in->poll_min_valid = false; /* measured on another basis (or another process) until now */
	in->generations_completed = 0;
	saved_prompt_clear(&in->running);
	instance_rec(&r, in, REC_COMFY, LOG_NOTICE);
	rec_add(&r, "PID", "%d", p->pid);
	rec_add(&r, "COMM", "%s", p->comm);
	rec_add(&r, "CGROUP", "%s", in->cgroup_dir);
	rec_add(&r, "RSS_BYTES", "%llu", (unsigned long long)p->rss_bytes);
	rec_message(&r, "instance %s: ComfyUI server is pid %d (%s, RSS %s)%s%s", in->ic->name, p->pid, p->comm,
		    fmt_bytes(p->rss_bytes, rss, sizeof(rss)), in->use_cgroup ? ", memory cgroup " : "",
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
		pid = read_pid_file(in->ic->pid_file);
	if (!pid && in->port)
		pid = pick_port_owner(in);
	if (pid) {
		p = proctree_get(in->d->pt, pid);
		if (!p || p->death != PROC_ALIVE)
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

/* With a busy queue the next prompt starts allocating the moment the previous one ends, before any poll can
 * see the boundary: the residual is the dip between the running prompt's peak and that next climb. */
static void track_dip(struct instance *in)
{
	if (!in->poll_min_valid || in->usage_bytes < in->poll_min_bytes) {
		in->poll_min_bytes = in->usage_bytes;
		in->poll_min_valid = true;
	}
	if (in->usage_bytes >= in->run_peak_bytes) {
		in->run_peak_bytes = in->usage_bytes;
		in->run_dip_bytes = in->usage_bytes;
	} else if (in->usage_bytes < in->run_dip_bytes) {
		in->run_dip_bytes = in->usage_bytes;
	}
}

/* Working set of the cgroup (usage minus inactive file cache, which the kernel reclaims before any OOM kill)
 * when the server has a limited cgroup; else the RSS of its process tree against MemTotal. */
void instance_measure(struct instance *in)
{
	struct cg_memory m;
	struct meminfo mi;

	in->prev_usage_bytes = in->usage_bytes;
	if (in->use_cgroup && cg_read_memory(in->cgroup_dir, in->cgv, &m) == 0) {
		in->usage_bytes = cg_memory_working_set(&m);
		in->limit_bytes = m.effective_limit_bytes;
		in->oom_kill_count = m.oom_kill;
		in->psi_some_avg10 = m.has_psi ? m.psi.some.avg10 : -1;
		track_dip(in);
		return;
	}
	struct tree_ctx c = { in, 0 };
	if (in->server_pid) {
		struct proc *s = proctree_get(in->d->pt, in->server_pid);
		if (s && s->death == PROC_ALIVE)
			proctree_refresh(in->d->pt, s);
		proctree_foreach(in->d->pt, sum_tree, &c);
	}
	in->usage_bytes = c.rss;
	track_dip(in);
	if (procfs_read_meminfo(proctree_root(in->d->pt), &mi) == 0)
		in->limit_bytes = mi.mem_total_bytes;
}

/* ---- generations ---- */

static void emit_generation(struct instance *in, const struct generation *g)
{
	char peak[32], res[32], growth[32];
	struct rec r;

	instance_rec(&r, in, REC_GENERATION, LOG_INFO);
	rec_add(&r, "PROMPT_ID", "%s", g->prompt_id);
	rec_add(&r, "GENERATION", "%llu", (unsigned long long)g->seq);
	rec_add(&r, "STATUS", "%s", gen_status_to_string(g->status));
	rec_add(&r, "USAGE_START_BYTES", "%llu", (unsigned long long)g->usage_start_bytes);
	rec_add(&r, "PEAK_BYTES", "%llu", (unsigned long long)g->peak_bytes);
	rec_add(&r, "RESIDUAL_BYTES", "%llu", (unsigned long long)g->residual_bytes);
	rec_add(&r, "GROWTH_BYTES", "%lld", (long long)g->growth_bytes);
	rec_add(&r, "LIMIT_BYTES", "%llu", (unsigned long long)in->limit_bytes);
	rec_add(&r, "DURATION_MS", "%llu", (unsigned long long)((g->end_ns - g->start_ns) / NSEC_PER_MSEC));
	rec_add(&r, "PID", "%d", in->server_pid);
	fmt_bytes(g->peak_bytes, peak, sizeof(peak));
	fmt_bytes(g->residual_bytes, res, sizeof(res));
	if (g->growth_bytes >= 0)
		fmt_bytes((uint64_t)g->growth_bytes, growth, sizeof(growth));
	else
		snprintf(growth, sizeof(growth), "-%s", fmt_bytes((uint64_t)-g->growth_bytes, peak + 16, 16));
	rec_message(&r, "instance %s: generation %llu (prompt %.36s) %s: peak %s, residual %s (%s%s)", in->ic->name,
		    (unsigned long long)g->seq, g->prompt_id, gen_status_to_string(g->status), peak, res,
		    g->growth_bytes >= 0 ? "+" : "", growth);
	rec_emit(&r);
	{
		char lab[192];
		metrics_labels(lab, sizeof(lab), "instance", in->ic->name, "status", gen_status_to_string(g->status), NULL);
		metrics_add_counter(METRIC_GENERATIONS_TOTAL, lab, 1);
	}
	metrics_set_gauge(METRIC_GENERATION_PEAK_BYTES, in->labels, (double)g->peak_bytes);
	metrics_set_gauge(METRIC_GENERATION_RESIDUAL_BYTES, in->labels, (double)g->residual_bytes);
	if (in->incident)
		incident_add_eventf(in->incident, mono_to_real_ns(g->end_ns), INCIDENT_EVENT_GENERATION,
				    "generation %llu (prompt %.36s) %s, peak %s", (unsigned long long)g->seq, g->prompt_id,
				    gen_status_to_string(g->status), fmt_bytes(g->peak_bytes, peak, sizeof(peak)));
	DTRACE_PROBE3(oomsentry, generation, g->seq, g->peak_bytes, g->residual_bytes);
}

static enum gen_status status_from_history(struct instance *in, const char *prompt_id)
{
	struct comfy_history_item h;

	if (comfy_get_history_item(in->comfy, prompt_id, &h) < 0 || !h.found)
		return GEN_UNKNOWN;
	if (h.msg_interrupted)
		return GEN_INTERRUPTED;
	if (h.status == COMFY_STATUS_SUCCESS || h.msg_success)
		return GEN_SUCCESS;
	if (h.status == COMFY_STATUS_ERROR || h.msg_error)
		return GEN_ERROR;
	return GEN_UNKNOWN;
}

/* ComfyUI applied the /free flags the moment the prompt they waited for ended: the dip that follows is what
 * the free could not release. The next generation loads its models again: a new epoch, not a leak. */
static void free_took_effect(struct instance *in, uint64_t now_ns)
{
	uint64_t dip = MIN(in->run_dip_bytes, in->usage_bytes);
	uint64_t freed = in->free_sent_usage_bytes > dip ? in->free_sent_usage_bytes - dip : 0;

	in->free_pending_prompt[0] = 0;
	in->floor_bytes = dip;
	in->floor_valid = true;
	gen_new_epoch(&in->gens, now_ns, dip);
	policy_record_outcome(&in->ps, in->ps.last_rung, freed >= in->limit_bytes / 20, freed, now_ns);
}

static void update_forecast(struct instance *in, uint64_t now_ns);

/* After each completed generation: where the next one is expected to peak and how many more fit. */
static void emit_forecast(struct instance *in, uint64_t now_ns)
{
	char peak[32], limit[32];
	struct rec r;

	update_forecast(in, now_ns);
	if (!in->fc_valid || !in->fc.predicted_next_peak_bytes)
		return;
	instance_rec(&r, in, REC_FORECAST, LOG_INFO);
	rec_add(&r, "GENERATION", "%llu", (unsigned long long)in->gens.next_seq);
	rec_add(&r, "PREDICTED_PEAK_BYTES", "%llu", (unsigned long long)in->fc.predicted_next_peak_bytes);
	rec_add(&r, "HEADROOM_BYTES", "%lld", (long long)in->fc.headroom_bytes);
	rec_add(&r, "GENERATIONS_LEFT", "%lld", (long long)in->fc.generations_left);
	rec_add(&r, "LEAK_BYTES_PER_GENERATION", "%lld", (long long)in->fc.leak_bytes_per_gen);
	rec_add(&r, "NEXT_FITS", "%d", in->fc.next_fits);
	rec_add(&r, "CONFIDENCE", "%.2f", in->fc.confidence);
	rec_add(&r, "LIMIT_BYTES", "%llu", (unsigned long long)in->limit_bytes);
	rec_add(&r, "REASON", "%s", in->fc.reason);
	if (in->fc.generations_left >= 0)
		rec_message(&r, "instance %s: next generation expected to peak at %s of %s; %lld more fit", in->ic->name,
			    fmt_bytes(in->fc.predicted_next_peak_bytes, peak, sizeof(peak)),
			    fmt_bytes(in->limit_bytes, limit, sizeof(limit)), (long long)in->fc.generations_left);
	else
		rec_message(&r, "instance %s: next generation expected to peak at %s of %s; no growth, no bound",
			    in->ic->name, fmt_bytes(in->fc.predicted_next_peak_bytes, peak, sizeof(peak)),
			    fmt_bytes(in->limit_bytes, limit, sizeof(limit)));
	rec_emit(&r);
}

static void generation_ended(struct instance *in, const char *prompt_id, uint64_t now_ns)
{
	enum gen_status st = status_from_history(in, prompt_id);
	const struct generation *g;
	int64_t seq;

	seq = gen_end(&in->gens, prompt_id, st, now_ns, MIN(in->run_dip_bytes, in->usage_bytes));
	if (seq < 0)
		return;
	g = gen_find(&in->gens, prompt_id);
	if (!g)
		return;
	if (st != GEN_INTERRUPTED) {
		in->generations_completed++;
		in->generation_just_ended = true;
	}
	emit_generation(in, g);
	if (in->free_pending_prompt[0] && !strcmp(in->free_pending_prompt, prompt_id))
		free_took_effect(in, now_ns);
	else if (st != GEN_INTERRUPTED)
		emit_forecast(in, now_ns);
}

static void requeue_submit(struct instance *in)
{
	char new_id[COMFY_PROMPT_ID_MAX];
	struct rec r;
	int ret;

	ret = comfy_submit_prompt(in->comfy, in->requeue.prompt_json, in->requeue.extra_json, in->requeue.prompt_id, true,
				  -1, new_id);
	instance_rec(&r, in, REC_ACTION, ret < 0 ? LOG_ERR : LOG_NOTICE);
	rec_add(&r, "ACTION", "requeue");
	rec_add(&r, "PROMPT_ID", "%s", in->requeue.prompt_id);
	if (ret < 0) {
		rec_add(&r, "RESULT", "failed");
		rec_message(&r, "instance %s: could not requeue interrupted prompt %s: %s", in->ic->name,
			    in->requeue.prompt_id, comfy_last_error(in->comfy));
	} else {
		rec_add(&r, "RESULT", "ok");
		rec_add(&r, "NEW_PROMPT_ID", "%s", new_id);
		rec_message(&r, "instance %s: requeued interrupted prompt %s at the front (prompt id %s)", in->ic->name,
			    in->requeue.prompt_id, new_id);
		snprintf(in->requeued_id, sizeof(in->requeued_id), "%s", new_id);
	}
	rec_emit(&r);
	in->requeue_pending = false;
	saved_prompt_clear(&in->requeue);
}

static void comfy_unreachable(struct instance *in, int err)
{
	struct rec r;

	if (in->unreachable_reported)
		return;
	in->unreachable_reported = true;
	instance_rec(&r, in, REC_COMFY, LOG_WARNING);
	rec_add(&r, "URL", "%s", in->ic->url);
	rec_add(&r, "ERRNO", "%d", -err);
	rec_message(&r, "instance %s: ComfyUI API at %s does not answer usefully (%s); generations are not followed "
			"until it does",
		    in->ic->name, in->ic->url, comfy_last_error(in->comfy));
	rec_emit(&r);
}

void instance_poll(struct instance *in, uint64_t now_ns)
{
	struct comfy_queue q = { 0 };
	const char *running_id = "";
	int r;

	instance_locate_server(in, now_ns);
	if (in->rs == RS_STOPPING || in->rs == RS_STARTING)
		return; /* the restart state machine owns the API while it runs */
	r = comfy_get_queue(in->comfy, &q);
	if (r < 0) {
		in->reachable = false;
		comfy_unreachable(in, r);
		return;
	}
	if (!in->reachable || in->unreachable_reported) {
		struct rec rr;
		instance_rec(&rr, in, REC_COMFY, LOG_NOTICE);
		rec_message(&rr, "instance %s: ComfyUI API at %s answers", in->ic->name, in->ic->url);
		if (in->unreachable_reported)
			rec_emit(&rr);
	}
	in->reachable = true;
	in->unreachable_reported = false;
	if (q.n_running)
		running_id = q.running[0].prompt_id;
	/* one measurement per poll serves the boundary (if any) and the next poll's start level */
	instance_measure(in);
	if (strcmp(running_id, in->running.prompt_id)) {
		bool was_running = in->running.prompt_id[0] != 0;
		if (was_running) {
			generation_ended(in, in->running.prompt_id, now_ns);
			saved_prompt_clear(&in->running);
		}
		if (running_id[0]) {
			/* the prompt may have run for a poll interval already (and loaded its model): when the queue was
			 * idle before, it began at the lowest level seen since the previous poll */
			uint64_t start = in->usage_bytes;
			if (!was_running && in->poll_min_valid && in->poll_min_bytes < start)
				start = in->poll_min_bytes;
			saved_prompt_from_item(&in->running, &q.running[0]);
			gen_start(&in->gens, running_id, now_ns, start);
			in->run_peak_bytes = in->run_dip_bytes = in->usage_bytes;
			in->running_started_ns = now_ns;
		}
	}
	in->poll_min_bytes = in->usage_bytes;
	in->poll_min_valid = true;
	/* an interrupted prompt goes back once the worker has let go of it */
	if (in->requeue_pending && (strcmp(running_id, in->requeue.prompt_id) || now_ns > in->requeue_deadline_ns))
		requeue_submit(in);
	comfy_queue_free(&q);
}

/* ---- orphans ---- */

static void orphan_report_and_reap(struct instance *in, uint64_t now_ns, bool reap);

static void schedule_orphan_check(struct instance *in, uint64_t now_ns)
{
	/* the kernel reparents children after the exit tracepoint: look a moment later */
	if (!in->orphan_check_ns)
		in->orphan_check_ns = now_ns + 200 * NSEC_PER_MSEC;
}

/* ---- prevention ---- */

static void incident_begin(struct instance *in, enum incident_trigger trig, uint64_t now_ns)
{
	if (in->incident || incident_new(in->ic->name, trig, mono_to_real_ns(now_ns), &in->incident) < 0)
		return;
	for (size_t i = 0; i < in->n_samples; i++) {
		const struct mem_sample *s = &in->samples[(in->sample_head + SAMPLE_RING - in->n_samples + i) % SAMPLE_RING];
		incident_add_sample(in->incident, mono_to_real_ns(s->ts_ns), s->usage_bytes, s->limit_bytes);
	}
	for (size_t i = gen_count(&in->gens); i-- > 0;) {
		const struct generation *g = gen_get(&in->gens, i);
		if (g && g->has_residual)
			incident_add_generation(in->incident, g->seq, g->prompt_id, g->peak_bytes, g->residual_bytes);
	}
}

static void incident_finish(struct instance *in, enum incident_outcome outcome, const char *text, uint64_t freed)
{
	char path[PATH_MAX];
	struct rec r;

	if (!in->incident)
		return;
	incident_set_outcome(in->incident, outcome, text, freed);
	if (incident_write(in->incident, in->d->cfg->incident_dir, path, sizeof(path)) == 0) {
		instance_rec(&r, in, REC_INCIDENT, LOG_NOTICE);
		rec_add(&r, "PATH", "%s", path);
		rec_message(&r, "instance %s: incident report written to %s (oomsentry report %s)", in->ic->name, path, path);
		rec_emit(&r);
	} else {
		log_warn("instance %s: cannot write the incident report under %s", in->ic->name, in->d->cfg->incident_dir);
	}
	incident_free(in->incident);
	in->incident = NULL;
}

struct largest_ctx {
	struct instance *in;
	struct proc *best;
};

static void find_largest(struct proc *p, void *ctx)
{
	struct largest_ctx *c = ctx;

	if (p->death != PROC_ALIVE || p->pid <= 1 || p->pid == getpid())
		return;
	if (!instance_tree_has(c->in, p))
		return;
	if (!c->best || p->rss_bytes > c->best->rss_bytes)
		c->best = p;
}

/* Carries out one rung. Returns 0 when it was done, negative errno when it could not be. */
static int act(struct instance *in, const struct policy_decision *dec, uint64_t now_ns, char *detail, size_t len)
{
	int r = 0;

	detail[0] = 0;
	switch (dec->rung) {
	case POLICY_RUNG_REAP_ORPHANS:
		orphan_report_and_reap(in, now_ns, true);
		snprintf(detail, len, "%zu orphans signalled", in->n_reaps);
		break;
	case POLICY_RUNG_FREE_MODELS:
	case POLICY_RUNG_FREE_ALL:
		r = comfy_free(in->comfy, dec->unload_models, dec->free_memory);
		if (r == 0 && dec->deferred && in->running.prompt_id[0]) {
			snprintf(in->free_pending_prompt, sizeof(in->free_pending_prompt), "%s", in->running.prompt_id);
			/* what would have stayed after this generation without the free: its transient goes anyway */
			in->free_sent_usage_bytes = in->fc_valid && in->fc.predicted_residual_after_running_bytes ?
							    in->fc.predicted_residual_after_running_bytes : in->usage_bytes;
		}
		snprintf(detail, len, "POST /free {\"unload_models\": true%s}%s", dec->free_memory ? ", \"free_memory\": true" : "",
			 dec->deferred ? " (applied when the running prompt ends)" : "");
		break;
	case POLICY_RUNG_INTERRUPT_REQUEUE:
		r = comfy_free(in->comfy, true, true);
		if (r == 0 && in->running.prompt_id[0]) {
			saved_prompt_clear(&in->requeue);
			snprintf(in->requeue.prompt_id, sizeof(in->requeue.prompt_id), "%s", in->running.prompt_id);
			in->requeue.number = in->running.number;
			in->requeue.prompt_json = strdup(in->running.prompt_json ? in->running.prompt_json : "{}");
			in->requeue.extra_json = strdup(in->running.extra_json ? in->running.extra_json : "{}");
			r = comfy_interrupt(in->comfy, in->running.prompt_id);
			if (r == 0) {
				snprintf(in->free_pending_prompt, sizeof(in->free_pending_prompt), "%s", in->running.prompt_id);
				in->free_sent_usage_bytes = in->usage_bytes;
				in->requeue_pending = true;
				in->requeue_deadline_ns = now_ns + 30 * NSEC_PER_SEC;
			}
		}
		snprintf(detail, len, "POST /free (all) + /interrupt of prompt %.36s, requeued at the front when it stops",
			 in->requeue.prompt_id);
		break;
	case POLICY_RUNG_RESTART:
		r = restart_begin(in, now_ns, detail, len);
		break;
	case POLICY_RUNG_KILL: {
		struct largest_ctx c = { in, NULL };
		proctree_foreach(in->d->pt, find_largest, &c);
		if (!c.best)
			return -ESRCH;
		r = action_kill_release(proctree_root(in->d->pt), c.best->pid, c.best->start_ns);
		snprintf(detail, len, "SIGKILL + process_mrelease of pid %d %s (%llu MiB)", c.best->pid, c.best->comm,
			 (unsigned long long)(c.best->rss_bytes >> 20));
		break;
	}
	case POLICY_RUNG_NONE:
		break;
	}
	if (r < 0 && (dec->rung == POLICY_RUNG_FREE_MODELS || dec->rung == POLICY_RUNG_FREE_ALL ||
		      dec->rung == POLICY_RUNG_INTERRUPT_REQUEUE))
		snprintf(detail + strlen(detail), len - strlen(detail), ": %s", comfy_last_error(in->comfy));
	return r;
}

static void journal_decision(struct instance *in, const struct policy_decision *dec, int result, const char *detail,
			     uint64_t now_ns)
{
	const char *name = policy_rung_name(dec->rung);
	char usage[32], limit[32];
	struct rec r;

	instance_rec(&r, in, dec->dry_run ? REC_DECISION : REC_ACTION, result < 0 ? LOG_ERR : LOG_WARNING);
	rec_add(&r, "ACTION", "%s", name);
	rec_add(&r, "REASON", "%s", dec->reason);
	rec_add(&r, "DRY_RUN", "%d", dec->dry_run);
	rec_add(&r, "PROACTIVE", "%d", dec->proactive);
	rec_add(&r, "RSS_BYTES", "%llu", (unsigned long long)in->usage_bytes);
	rec_add(&r, "LIMIT_BYTES", "%llu", (unsigned long long)in->limit_bytes);
	rec_add(&r, "PID", "%d", in->server_pid);
	if (in->running.prompt_id[0])
		rec_add(&r, "PROMPT_ID", "%s", in->running.prompt_id);
	rec_add(&r, "RESULT", "%s", dec->dry_run ? "dry_run" : result < 0 ? "failed" : "done");
	rec_message(&r, "instance %s: %s%s at %s of %s: %s%s%s", in->ic->name, dec->dry_run ? "would " : "", name,
		    fmt_bytes(in->usage_bytes, usage, sizeof(usage)), fmt_bytes(in->limit_bytes, limit, sizeof(limit)),
		    dec->reason, detail[0] ? " -> " : "", detail);
	rec_emit(&r);
	snprintf(in->last_action, sizeof(in->last_action), "%s%s (%s)", dec->dry_run ? "would " : "", name,
		 result < 0 ? "failed" : "done");
	in->actions_total++;
	if (!dec->dry_run) {
		char lab[192];
		metrics_labels(lab, sizeof(lab), "instance", in->ic->name, "action", name, "result",
			       result < 0 ? "failed" : "done", NULL);
		metrics_add_counter(METRIC_ACTIONS_TOTAL, lab, 1);
	}
	if (in->incident)
		incident_add_eventf(in->incident, mono_to_real_ns(now_ns), INCIDENT_EVENT_ACTION, "%s%s%s%s", dec->dry_run ? "would " : "",
				    name, detail[0] ? ": " : "", detail);
	DTRACE_PROBE3(oomsentry, action, (int)dec->rung, in->usage_bytes, in->limit_bytes);
}

static void journal_outcome(struct instance *in, const struct policy_decision *dec, uint64_t now_ns)
{
	const char *name = policy_rung_name(dec->outcome.rung);
	char freed[32];
	struct rec r;

	/* in a dry run nothing was done: what follows is the verdict on a decision, not on an action */
	instance_rec(&r, in, dec->dry_run ? REC_DECISION : REC_ACTION, dec->outcome.ok ? LOG_NOTICE : LOG_WARNING);
	rec_add(&r, "ACTION", "%s", name);
	rec_add(&r, "RESULT", "%s", dec->outcome.ok ? "worked" : "insufficient");
	rec_add(&r, "DRY_RUN", "%d", dec->dry_run);
	rec_add(&r, "PID", "%d", in->server_pid);
	rec_add(&r, "REASON", "%s", dec->reason);
	rec_add(&r, "FREED_BYTES", "%llu", (unsigned long long)dec->outcome.freed_bytes);
	rec_add(&r, "RSS_BYTES", "%llu", (unsigned long long)in->usage_bytes);
	rec_add(&r, "LIMIT_BYTES", "%llu", (unsigned long long)in->limit_bytes);
	rec_add(&r, "VERIFIED", "1");
	rec_message(&r, "instance %s: %s freed %s%s", in->ic->name, name,
		    fmt_bytes(dec->outcome.freed_bytes, freed, sizeof(freed)),
		    dec->outcome.ok ? "" : dec->outcome.escalated ? ": not enough, escalating" : ": not enough");
	rec_emit(&r);
	if (!dec->dry_run) {
		char lab[160];
		metrics_labels(lab, sizeof(lab), "instance", in->ic->name, "action", name, NULL);
		metrics_add_counter(METRIC_FREED_BYTES_TOTAL, lab, (double)dec->outcome.freed_bytes);
	}
	if (in->incident) {
		incident_add_eventf(in->incident, mono_to_real_ns(now_ns), INCIDENT_EVENT_RESULT, "%s freed %s", name, freed);
		if (dec->outcome.ok)
			incident_finish(in, dec->dry_run ? INCIDENT_OUTCOME_DRY_RUN : INCIDENT_OUTCOME_PREVENTED, r.message,
					dec->outcome.freed_bytes);
	}
}

/* Pressure with nothing to do (every useful rung cooling down, or none left) is said once, not every sample. */
static void report_blocked(struct instance *in, const struct policy_decision *dec)
{
	struct rec r;

	if (!dec->pressure || !(dec->cooldown || dec->exhausted)) {
		in->blocked_reported = false;
		return;
	}
	if (in->blocked_reported)
		return;
	in->blocked_reported = true;
	instance_rec(&r, in, REC_DECISION, LOG_WARNING);
	rec_add(&r, "ACTION", "none");
	rec_add(&r, "RESULT", "%s", dec->exhausted ? "exhausted" : "cooldown");
	rec_add(&r, "REASON", "%s", dec->reason);
	rec_add(&r, "DRY_RUN", "%d", dec->dry_run);
	rec_add(&r, "PROACTIVE", "0");
	rec_add(&r, "PID", "%d", in->server_pid);
	rec_add(&r, "RSS_BYTES", "%llu", (unsigned long long)in->usage_bytes);
	rec_add(&r, "LIMIT_BYTES", "%llu", (unsigned long long)in->limit_bytes);
	rec_message(&r, "instance %s: under pressure but %s: %s", in->ic->name,
		    dec->exhausted ? "no rung that can help is left" : "the rung that would help is cooling down",
		    dec->reason);
	rec_emit(&r);
	if (dec->exhausted)
		incident_finish(in, INCIDENT_OUTCOME_FAILED, r.message, 0);
}

static void run_policy(struct instance *in, uint64_t now_ns)
{
	const struct generation *running = gen_running(&in->gens);
	struct policy_decision dec;
	struct policy_input pi = {
		.now_ns = now_ns,
		.usage_bytes = in->usage_bytes,
		.limit_bytes = in->limit_bytes,
		.reclaim_events_per_s = in->reclaim_rate,
		.psi_some_avg10_pct = in->psi_some_avg10,
		.orphan_bytes = in->orphan_bytes,
		.orphan_count = in->orphan_count,
		.comfy_reachable = in->reachable,
		.busy = running != NULL,
		.running_requeued = running && in->requeued_id[0] && !strcmp(running->prompt_id, in->requeued_id),
		.generation_just_ended = in->generation_just_ended,
		.generations_completed = in->generations_completed,
		.restart_configured = in->ic->restart_method != RESTART_NONE,
		.free_cannot_make_room = in->floor_valid && in->clean_cost_bytes &&
					 in->floor_bytes + in->clean_cost_bytes > (uint64_t)((double)in->limit_bytes * in->fcp.margin),
		.forecast_known = in->fc_valid,
		.next_fits = in->fc.next_fits,
		.running_fits = in->fc.running_fits,
		.leak_suspected = in->fc.leak_suspected,
		.predicted_next_peak_bytes = in->fc.predicted_next_peak_bytes,
		.confidence = in->fc.confidence,
		.forecast_reason = in->fc_valid ? in->fc.reason : NULL,
	};
	char detail[384];
	int r;

	in->generation_just_ended = false;
	if (in->rs != RS_IDLE || in->requeue_pending)
		return; /* an action is under way; the policy judges it when it is done */
	if (in->server_gone || !in->server_pid)
		return; /* nothing to protect until a server is back */
	if (policy_decide(&in->pp, &in->ps, &pi, &dec) < 0)
		return;
	if (dec.outcome.rung != POLICY_RUNG_NONE) {
		journal_outcome(in, &dec, now_ns);
		/* models are gone: the next generation loads them again, which is not a leak */
		if (dec.outcome.ok && !running && !in->free_pending_prompt[0] &&
		    (dec.outcome.rung == POLICY_RUNG_FREE_MODELS || dec.outcome.rung == POLICY_RUNG_FREE_ALL)) {
			gen_new_epoch(&in->gens, now_ns, in->usage_bytes);
			in->floor_bytes = in->usage_bytes;
			in->floor_valid = true;
		}
	}
	if (dec.rung == POLICY_RUNG_NONE) {
		report_blocked(in, &dec);
		return;
	}
	in->blocked_reported = false;
	if (!dec.proactive)
		incident_begin(in, in->fc_valid && !in->fc.next_fits ? INCIDENT_TRIGGER_FORECAST :
				   in->reclaim_rate > 0 ? INCIDENT_TRIGGER_RECLAIM : INCIDENT_TRIGGER_USAGE, now_ns);
	r = dec.dry_run ? 0 : act(in, &dec, now_ns, detail, sizeof(detail));
	if (dec.dry_run)
		detail[0] = 0;
	journal_decision(in, &dec, r, detail, now_ns);
	/* a rung that could not even be carried out did not work: climb at the next sample, not at its deadline */
	if (r < 0)
		policy_record_outcome(&in->ps, dec.rung, false, 0, now_ns);
}

static void update_forecast(struct instance *in, uint64_t now_ns)
{
	struct forecast_input fi;
	char rate[32];
	struct rec r;

	(void)now_ns;
	if (forecast_input_from_tracker(&in->gens, in->limit_bytes, in->usage_bytes, &fi) < 0)
		return;
	fi.reclaim_per_sec = in->reclaim_rate;
	fi.psi_some_avg10 = in->psi_some_avg10;
	if (forecast_next(&fi, &in->fcp, &in->fc) < 0) {
		in->fc_valid = false;
		return;
	}
	in->fc_valid = true;
	in->clean_cost_bytes = MAX(in->clean_cost_bytes, forecast_clean_cost(&in->gens));
	forecast_apply_clean_start(&in->fc, &in->gens, in->clean_cost_bytes, in->floor_valid, in->floor_bytes,
				   in->usage_bytes, in->limit_bytes, in->fcp.margin);
	forecast_apply_running_edge(&in->fc, &in->gens, in->usage_bytes, in->prev_usage_bytes, in->limit_bytes,
				    in->fcp.margin);
	metrics_set_gauge(METRIC_LEAK_BYTES_PER_GENERATION, in->labels, (double)in->fc.leak_bytes_per_gen);
	metrics_set_gauge(METRIC_FORECAST_GENERATIONS_LEFT, in->labels, (double)in->fc.generations_left);
	/* one warning per epoch when the leak is found, and one more when the next generation stops fitting */
	bool new_leak = in->fc.leak_suspected && (!in->leak_warned || in->leak_warned_epoch != in->gens.epoch);
	bool new_nofit = !in->fc.next_fits && in->fc.predicted_next_peak_bytes &&
			 (!in->nofit_warned || in->nofit_warned_epoch != in->gens.epoch);
	if (new_leak || new_nofit) {
		if (in->fc.leak_suspected) {
			in->leak_warned = true;
			in->leak_warned_epoch = in->gens.epoch;
		}
		if (!in->fc.next_fits) {
			in->nofit_warned = true;
			in->nofit_warned_epoch = in->gens.epoch;
		}
		instance_rec(&r, in, REC_LEAK_SUSPECTED, LOG_WARNING);
		rec_add(&r, "LEAK_BYTES_PER_GENERATION", "%lld", (long long)in->fc.leak_bytes_per_gen);
		rec_add(&r, "GENERATIONS_LEFT", "%lld", (long long)in->fc.generations_left);
		rec_add(&r, "PREDICTED_PEAK_BYTES", "%llu", (unsigned long long)in->fc.predicted_next_peak_bytes);
		rec_add(&r, "NEXT_FITS", "%d", in->fc.next_fits);
		rec_add(&r, "RUNNING_FITS", "%d", in->fc.running_fits);
		rec_add(&r, "CONFIDENCE", "%.2f", in->fc.confidence);
		rec_add(&r, "LIMIT_BYTES", "%llu", (unsigned long long)in->limit_bytes);
		rec_add(&r, "RSS_BYTES", "%llu", (unsigned long long)in->usage_bytes);
		rec_add(&r, "GENERATION", "%llu", (unsigned long long)in->gens.next_seq);
		rec_add(&r, "REASON", "%s", in->fc.reason);
		fmt_bytes((uint64_t)MAX(in->fc.leak_bytes_per_gen, 0), rate, sizeof(rate));
		rec_message(&r, "instance %s: %s", in->ic->name, in->fc.reason);
		rec_emit(&r);
		DTRACE_PROBE2(oomsentry, leak, in->fc.leak_bytes_per_gen, in->fc.generations_left);
	}
}

void instance_sample(struct instance *in, uint64_t now_ns)
{
	struct mem_sample *s;

	restart_step(in, now_ns);
	instance_measure(in);
	if (in->reclaim_prev_ns && now_ns > in->reclaim_prev_ns) {
		double dt = (double)(now_ns - in->reclaim_prev_ns) / NSEC_PER_SEC;
		/* a decaying average so that one burst does not count as sustained pressure */
		double inst = (double)(in->reclaim_count - in->reclaim_count_prev) / dt;
		in->reclaim_rate = 0.5 * in->reclaim_rate + 0.5 * inst;
	}
	in->reclaim_count_prev = in->reclaim_count;
	in->reclaim_prev_ns = now_ns;
	gen_sample(&in->gens, now_ns, in->usage_bytes);
	s = &in->samples[in->sample_head];
	*s = (struct mem_sample){ now_ns, in->usage_bytes, in->limit_bytes };
	in->sample_head = (in->sample_head + 1) % SAMPLE_RING;
	in->n_samples = MIN(in->n_samples + 1, SAMPLE_RING);
	if (in->incident)
		incident_add_sample(in->incident, mono_to_real_ns(now_ns), in->usage_bytes, in->limit_bytes);
	metrics_set_gauge(METRIC_MEMORY_USAGE_BYTES, in->labels, (double)in->usage_bytes);
	metrics_set_gauge(METRIC_MEMORY_LIMIT_BYTES, in->labels, (double)in->limit_bytes);
	if (in->orphan_check_ns && now_ns >= in->orphan_check_ns) {
		in->orphan_check_ns = 0;
		orphan_report_and_reap(in, now_ns, false);
	}
	if (in->n_reaps)
		orphan_report_and_reap(in, now_ns, false);
	update_forecast(in, now_ns);
	if (in->d->mode == MODE_RUN)
		run_policy(in, now_ns);
}

void instance_on_rss(struct instance *in, struct proc *p, uint64_t now_ns)
{
	/* an RSS step of the server or its workers: sample now so that a generation's peak is not missed between
	 * two timer ticks */
	if (!instance_tree_has(in, p))
		return;
	instance_measure(in);
	gen_sample(&in->gens, now_ns, in->usage_bytes);
	/* memory moves faster than the sampling timer: decide now, at most every 100 ms */
	if (in->d->mode == MODE_RUN && now_ns - in->last_rss_policy_ns > 100 * NSEC_PER_MSEC) {
		in->last_rss_policy_ns = now_ns;
		update_forecast(in, now_ns);
		run_policy(in, now_ns);
	}
}

void instance_on_reclaim(struct instance *in, uint64_t cgroup_id, uint64_t count, uint64_t now_ns)
{
	(void)now_ns;
	if (cgroup_id && cgroup_id == in->cgroup_id && count > in->reclaim_count)
		in->reclaim_count = count;
}

void instance_on_new_proc(struct instance *in, struct proc *p, uint64_t now_ns)
{
	(void)p;
	/* a new server after a crash or restart: look for it now rather than at the next poll, but a burst of
	 * execs must not become a burst of /proc walks */
	if ((!in->server_pid || !instance_owns_proc(in, proctree_get(in->d->pt, in->server_pid))) &&
	    now_ns - in->last_locate_ns > 100 * NSEC_PER_MSEC) {
		in->last_locate_ns = now_ns;
		instance_locate_server(in, now_ns);
	}
}

void instance_on_exit(struct instance *in, struct proc *p, uint64_t now_ns)
{
	bool server = p->pid == in->server_pid && p->start_ns == in->server_start_ns;
	bool child = !server && instance_tree_has(in, p);
	struct crashloop_record cr;
	char cause[DEATH_CAUSE_STR_MAX];
	struct rec r;

	if (!server && !child)
		return;
	if (child) {
		/* a worker exiting may leave its own children behind */
		schedule_orphan_check(in, now_ns);
		return;
	}
	struct death dth = {
		.pid = p->pid,
		.cause = p->cause,
		.rss_bytes_before = p->rss_peak_bytes,
		.cgroup_usage_bytes_before = in->usage_bytes,
		.child_oom_killed_recently = p->cause.kind == DEATH_EXIT0_AFTER_CHILD_OOM,
	};
	death_cause_str(&p->cause, cause, sizeof(cause));
	instance_rec(&r, in, REC_COMFY, p->cause.kind == DEATH_EXITED && !p->cause.code ? LOG_NOTICE : LOG_ERR);
	rec_add(&r, "PID", "%d", p->pid);
	rec_add(&r, "REASON", "%s", cause);
	rec_add(&r, "RSS_BYTES", "%llu", (unsigned long long)p->rss_peak_bytes);
	rec_message(&r, "instance %s: ComfyUI server pid %d %s", in->ic->name, p->pid, cause);
	rec_emit(&r);
	if (in->running.prompt_id[0]) {
		gen_end(&in->gens, in->running.prompt_id, GEN_INTERRUPTED, now_ns, in->usage_bytes);
		saved_prompt_clear(&in->running);
	}
	/* what was known about this server's generations says nothing about its successor */
	gen_server_restarted(&in->gens, now_ns, 0);
	in->server_gone = true;
	in->fc_valid = false;
	schedule_orphan_check(in, now_ns);
	/* a controlled restart is not a crash */
	if (in->rs != RS_IDLE && p->pid == in->rs_old_pid)
		return;
	if (crashloop_record_death(&in->cl, now_ns, &dth, &cr) == 1) {
		char causes[1024] = "";
		instance_rec(&r, in, REC_CRASH_LOOP, LOG_CRIT);
		rec_add(&r, "DEATHS", "%u", cr.deaths_total);
		rec_add(&r, "WINDOW_MS", "%llu", (unsigned long long)((cr.last_death_ns - cr.first_death_ns) / NSEC_PER_MSEC));
		for (size_t i = 0; i < cr.ndeaths; i++) {
			char one[DEATH_CAUSE_STR_MAX];
			size_t len = strlen(causes);
			snprintf(causes + len, sizeof(causes) - len, "%spid %d %s (RSS %llu MiB, cgroup %llu MiB)", i ? "; " : "",
				 cr.deaths[i].pid, death_cause_str(&cr.deaths[i].cause, one, sizeof(one)),
				 (unsigned long long)(cr.deaths[i].rss_bytes_before >> 20),
				 (unsigned long long)(cr.deaths[i].cgroup_usage_bytes_before >> 20));
		}
		rec_add(&r, "CAUSES", "%s", causes);
		rec_add(&r, "REASON", "%s", cr.summary);
		rec_message(&r, "instance %s: crash loop: %s", in->ic->name, cr.summary);
		rec_emit(&r);
		metrics_add_counter(METRIC_CRASH_LOOPS_TOTAL, in->labels, 1);
	}
}

void instance_on_oom(struct instance *in, struct proc *victim, uint64_t now_ns)
{
	char rss[32];

	if (!instance_tree_has(in, victim) && !(in->cgroup_id && victim->cgroup_id == in->cgroup_id))
		return;
	incident_begin(in, INCIDENT_TRIGGER_OOM_KILL, now_ns);
	incident_add_eventf(in->incident, mono_to_real_ns(now_ns), INCIDENT_EVENT_OOM_KILL, "OOM killer chose pid %d %s (RSS %s)",
			    victim->pid, victim->comm, fmt_bytes(victim->rss_at_oom_bytes, rss, sizeof(rss)));
	incident_finish(in, INCIDENT_OUTCOME_OOM_KILLED, "the kernel OOM killer acted", 0);
	{
		char lab[PATH_MAX + 16];
		metrics_labels(lab, sizeof(lab), "cgroup", victim->cgroup_dir, NULL);
		metrics_add_counter(METRIC_OOM_KILLS_TOTAL, lab, 1);
	}
}

void instance_after_scan(struct instance *in, uint64_t now_ns)
{
	instance_locate_server(in, now_ns);
	instance_measure(in);
	orphan_report_and_reap(in, now_ns, false);
}

int instance_server(const struct instance *in, struct orphan_server *ret)
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

void instance_status(struct instance *in, FILE *out)
{
	char usage[32], limit[32];
	const struct generation *g = gen_last(&in->gens);

	fprintf(out, "instance %s  %s  server pid %d  %s\n", in->ic->name, in->ic->url, in->server_pid,
		in->reachable ? "reachable" : "UNREACHABLE");
	fprintf(out, "  memory %s of %s (%s)\n", fmt_bytes(in->usage_bytes, usage, sizeof(usage)),
		fmt_bytes(in->limit_bytes, limit, sizeof(limit)), in->use_cgroup ? in->cgroup_dir : "machine");
	fprintf(out, "  generations %llu  last: %s\n", (unsigned long long)in->gens.total,
		g ? gen_status_to_string(g->status) : "-");
	if (in->fc_valid)
		fprintf(out, "  forecast: %s\n", in->fc.reason);
	fprintf(out, "  orphans %u (%llu MiB)  actions %llu  last action: %s\n", in->orphan_count,
		(unsigned long long)(in->orphan_bytes >> 20), (unsigned long long)in->actions_total,
		in->last_action[0] ? in->last_action : "-");
}

/* ---- orphans: classification through orphans.c, signals through actions.c ---- */

static void orphan_report_and_reap(struct instance *in, uint64_t now_ns, bool reap)
{
	struct scan_result sr;

	if (scan_orphans(in->d, in->ic, &sr) < 0)
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

int instance_scan(struct instance *in, uint64_t now_ns, bool reap)
{
	struct scan_result sr;
	uint64_t freed = 0;
	size_t n;

	instance_locate_server(in, now_ns);
	if (scan_orphans(in->d, in->ic, &sr) < 0)
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

// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/sdt.h>
#include <unistd.h>
#include "actions.h"
#include "brake.h"
#include "brakemark.h"
#include "cgroup-read.h"
#include "comfy-client.h"
#include "common.h"
#include "context.h"
#include "generations.h"
#include "incident.h"
#include "incident-store.h"
#include "instance-state.h"
#include "journal.h"
#include "learn.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "prevent.h"
#include "prune.h"
#include "proctree.h"
#include "restart.h"
#include "snapshot.h"
#include "scan.h"
#include "statefile.h"

void prevent_incident_begin(struct instance *in, enum incident_trigger trig, uint64_t now_ns)
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

void prevent_incident_finish(struct instance *in, enum incident_outcome outcome, const char *text, uint64_t freed)
{
	char path[PATH_MAX];
	struct rec r;
	int w;

	if (!in->incident)
		return;
	incident_set_outcome(in->incident, outcome, text, freed);
	w = incident_write(in->incident, in->d->cfg->incident_dir, path, sizeof(path));
	if (w == 0) {
		instance_rec(&r, in, REC_INCIDENT, LOG_NOTICE);
		rec_add(&r, "PATH", "%s", path);
		rec_message(&r, "instance %s: incident report written to %s (oomsentry report %s)", in->ic->name, path, path);
		rec_emit(&r);
		prune_incidents(in->d->cfg->incident_dir, in->d->cfg->incident_max_count, in->d->cfg->incident_max_bytes);
	} else {
		log_warn_errno(w, "instance %s: cannot write the incident report under %s", in->ic->name,
			       in->d->cfg->incident_dir);
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

/* What became of a request a rung sent (comfy_start_*): a failure is journaled and reported to the policy, which
 * climbs at the next sample instead of waiting for the rung's verification deadline. */
struct act_req {
	struct instance *in;
	enum policy_rung rung;
	const char *what;
	bool is_interrupt;
};

static void act_done(struct comfy_client *c, int r, void *ctx)
{
	struct act_req *a = ctx;
	struct instance *in = a->in;
	struct rec rec;

	if (a->is_interrupt)
		restart_interrupt_answered(in);
	if (a->is_interrupt && in->interrupts_in_flight)
		in->interrupts_in_flight--;
	else if (!a->is_interrupt && in->frees_in_flight)
		in->frees_in_flight--;
	if (!in->frees_in_flight)
		in->in_flight_unload = in->in_flight_free_memory = false;
	if (r < 0) {
		instance_rec(&rec, in, REC_ACTION, LOG_ERR);
		rec_add(&rec, "ACTION", "%s", policy_rung_name(a->rung));
		rec_add(&rec, "RESULT", "failed");
		rec_add(&rec, "REASON", "%s", comfy_last_error(c));
		rec_message(&rec, "instance %s: %s: %s failed: %s", in->ic->name, policy_rung_name(a->rung), a->what,
			    comfy_last_error(c));
		rec_emit(&rec);
		in->free_pending_prompt[0] = 0;
		if (a->rung == POLICY_RUNG_INTERRUPT_REQUEUE) {
			in->requeue_pending = false;
			saved_prompt_clear(&in->requeue);
		}
		policy_record_outcome(&in->ps, a->rung, false, 0, now_mono_ns());
	}
	free(a);
}

static int act_send(struct instance *in, enum policy_rung rung, const char *what, bool is_interrupt, bool unload,
		    bool free_memory, const char *prompt_id)
{
	struct act_req *a = malloc(sizeof(*a));
	int r;

	if (!a)
		return -ENOMEM;
	*a = (struct act_req){ in, rung, what, is_interrupt };
	r = is_interrupt ? comfy_start_interrupt(in->comfy_act, prompt_id, act_done, a) :
			   comfy_start_free(in->comfy_act, unload, free_memory, act_done, a);
	if (r < 0) {
		free(a);
		return r;
	}
	if (is_interrupt) {
		restart_interrupt_sent(in);
		in->interrupts_in_flight++;
		snprintf(in->in_flight_interrupt, sizeof(in->in_flight_interrupt), "%s", prompt_id ? prompt_id : "");
	} else {
		in->frees_in_flight++;
		in->in_flight_unload |= unload;
		in->in_flight_free_memory |= free_memory;
	}
	return 0;
}

int prevent_resend(struct instance *in, bool free, bool unload, bool free_memory, const char *interrupt_id)
{
	enum policy_rung rung = in->ps.last_rung != POLICY_RUNG_NONE ? in->ps.last_rung : POLICY_RUNG_FREE_ALL;
	int r = 0;

	/* in the order they were sent: ComfyUI reads the /free flags when the interrupt stops the prompt */
	if (free)
		r = act_send(in, rung, "POST /free (sent again after the reload)", false, unload, free_memory, NULL);
	if (r == 0 && interrupt_id && interrupt_id[0])
		r = act_send(in, rung, "POST /interrupt (sent again after the reload)", true, false, false, interrupt_id);
	return r;
}

/* Carries out one rung. Returns 0 when it was done, negative errno when it could not be. */
static int act(struct instance *in, const struct policy_decision *dec, uint64_t now_ns, char *detail, size_t len)
{
	int r = 0;

	detail[0] = 0;
	switch (dec->rung) {
	case POLICY_RUNG_REAP_ORPHANS:
		r = scan_instance(in, now_ns, true);
		if (r < 0) {
			snprintf(detail, len, "orphan scan failed: %s", strerror(-r));
			break;
		}
		r = 0;
		snprintf(detail, len, "%zu orphans signalled", in->n_reaps);
		break;
	case POLICY_RUNG_FREE_MODELS:
	case POLICY_RUNG_FREE_ALL:
		/* sent on the loop; a failure comes back through act_done */
		r = act_send(in, dec->rung, "POST /free", false, dec->unload_models, dec->free_memory, NULL);
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
		if (in->requeue_pending) {
			/* the prompt is already saved for its requeue: only ask again */
			r = act_send(in, dec->rung, "POST /interrupt", true, false, false, in->requeue.prompt_id);
			snprintf(detail, len, "POST /interrupt of prompt %.36s again", in->requeue.prompt_id);
			break;
		}
		r = act_send(in, dec->rung, "POST /free", false, true, true, NULL);
		if (r == 0 && in->running.prompt_id[0]) {
			saved_prompt_clear(&in->requeue);
			snprintf(in->requeue.prompt_id, sizeof(in->requeue.prompt_id), "%s", in->running.prompt_id);
			in->requeue.number = in->running.number;
			in->requeue.prompt_json = strdup(in->running.prompt_json ? in->running.prompt_json : "{}");
			in->requeue.extra_json = strdup(in->running.extra_json ? in->running.extra_json : "{}");
			/* queued behind the /free: the worker reads both flags when the interrupt stops the prompt */
			r = act_send(in, dec->rung, "POST /interrupt", true, false, false, in->running.prompt_id);
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
		/* urgent: nothing gentler takes effect before the limit, the server may not even answer: the last
		 * resort stops it from the snapshot */
		r = restart_begin(in, now_ns, dec->urgent, dec->urgent ? dec->ttl_ns : UINT64_MAX, detail, len);
		break;
	case POLICY_RUNG_KILL: {
		struct largest_ctx c = { in, NULL };
		char rss[BYTES_STR_MAX];

		proctree_foreach(in->d->pt, find_largest, &c);
		if (!c.best)
			return -ESRCH;
		r = action_kill_release(proctree_root(in->d->pt), c.best->pid, c.best->start_ns);
		snprintf(detail, len, "SIGKILL + process_mrelease of pid %d %s (%s)", c.best->pid, c.best->comm,
			 FMT_BYTES(rss, c.best->rss_bytes));
		break;
	}
	case POLICY_RUNG_NONE:
		break;
	}
	if (r < 0 && (dec->rung == POLICY_RUNG_FREE_MODELS || dec->rung == POLICY_RUNG_FREE_ALL ||
		      dec->rung == POLICY_RUNG_INTERRUPT_REQUEUE))
		snprintf(detail + strlen(detail), len - strlen(detail), ": %s", comfy_last_error(in->comfy_act));
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
	rec_add_bytes(&r, "RSS_BYTES", in->usage_bytes);
	rec_add_bytes(&r, "LIMIT_BYTES", in->limit_bytes);
	rec_add_pid(&r, "PID", in->server_pid);
	if (in->running.prompt_id[0])
		rec_add_id(&r, "PROMPT_ID", in->running.prompt_id);
	rec_add(&r, "RESULT", "%s", dec->dry_run ? "dry_run" : result < 0 ? "failed" : "done");
	if (dec->ttl_ns != UINT64_MAX)
		rec_add(&r, "TTL_MS", "%llu", (unsigned long long)(dec->ttl_ns / NSEC_PER_MSEC));
	if (dec->urgent) {
		rec_add(&r, "URGENT", "1");
		/* the deadline it met: what the last resort needed, and the daemon's event lag in it */
		rec_add(&r, "NEEDS_MS", "%llu", (unsigned long long)(dec->last_resort_needs_ns / NSEC_PER_MSEC));
		rec_add(&r, "EVENT_LAG_US", "%llu",
			(unsigned long long)(learn_lag_get(&in->d->event_lag, now_ns) / 1000));
	}
	if (dec->brake)
		rec_add(&r, "BRAKE", "1");
	rec_message(&r, "instance %s: %s%s at %s of %s: %s%s%s", in->ic->name, dec->dry_run ? "would " : "", name,
		    bytes_str(in->usage_bytes, usage, sizeof(usage)), bytes_str(in->limit_bytes, limit, sizeof(limit)),
		    dec->reason, detail[0] ? " -> " : "", detail);
	rec_emit(&r);
	snprintf(in->last_action, sizeof(in->last_action), "%s%s (%s)", dec->dry_run ? "would " : "", name,
		 result < 0 ? "failed" : "done");
	in->actions_total++;
	if (!dec->dry_run) {
		char lab[192];
		metrics_labels(lab, sizeof(lab), METRIC_LABEL_INSTANCE, in->ic->name, "action", name, "result",
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
	rec_add_pid(&r, "PID", in->server_pid);
	rec_add(&r, "REASON", "%s", dec->reason);
	rec_add_bytes(&r, "FREED_BYTES", dec->outcome.freed_bytes);
	rec_add_bytes(&r, "RSS_BYTES", in->usage_bytes);
	rec_add_bytes(&r, "LIMIT_BYTES", in->limit_bytes);
	/* FREED_BYTES is the drop of the same figure the policy watches: say which one it was */
	rec_add(&r, "VERIFIED", "%s", in->use_cgroup ? "cgroup_working_set" : "process_tree_rss");
	rec_message(&r, "instance %s: %s freed %s%s", in->ic->name, name,
		    bytes_str(dec->outcome.freed_bytes, freed, sizeof(freed)),
		    dec->outcome.ok ? "" : dec->outcome.escalated ? ": not enough, escalating" : ": not enough");
	rec_emit(&r);
	if (!dec->dry_run) {
		char lab[160];
		metrics_labels(lab, sizeof(lab), METRIC_LABEL_INSTANCE, in->ic->name, "action", name, NULL);
		metrics_add_counter(METRIC_FREED_BYTES_TOTAL, lab, (double)dec->outcome.freed_bytes);
	}
	if (in->incident) {
		incident_add_eventf(in->incident, mono_to_real_ns(now_ns), INCIDENT_EVENT_RESULT, "%s freed %s", name, freed);
		if (dec->outcome.ok)
			prevent_incident_finish(in, dec->dry_run ? INCIDENT_OUTCOME_DRY_RUN : INCIDENT_OUTCOME_PREVENTED, r.message,
					dec->outcome.freed_bytes);
	}
}

/* Pressure with nothing to do (every useful rung cooling down, or none left) is said once, not every sample. */
static void report_blocked(struct instance *in, const struct policy_decision *dec)
{
	struct rec r;

	if (!dec->pressure || !(dec->cooldown || dec->exhausted || dec->held)) {
		in->blocked_reported = false;
		return;
	}
	if (in->blocked_reported)
		return;
	in->blocked_reported = true;
	if (dec->held) {
		/* not blocked: the first prompt of a fresh server climbs, and the last resort waits for its deadline */
		instance_rec(&r, in, REC_DECISION, LOG_NOTICE);
		rec_add(&r, "ACTION", "none");
		rec_add(&r, "RESULT", "held");
		rec_add(&r, "REASON", "%s", dec->reason);
		rec_add(&r, "DRY_RUN", "%d", dec->dry_run);
		rec_add(&r, "PROACTIVE", "0");
		rec_add_pid(&r, "PID", in->server_pid);
		rec_add_bytes(&r, "RSS_BYTES", in->usage_bytes);
		rec_add_bytes(&r, "LIMIT_BYTES", in->limit_bytes);
		rec_message(&r, "instance %s: under pressure, holding: %s", in->ic->name, dec->reason);
		rec_emit(&r);
		return;
	}
	instance_rec(&r, in, REC_DECISION, LOG_WARNING);
	rec_add(&r, "ACTION", "none");
	rec_add(&r, "RESULT", "%s", dec->exhausted ? "exhausted" : "cooldown");
	rec_add(&r, "REASON", "%s", dec->reason);
	rec_add(&r, "DRY_RUN", "%d", dec->dry_run);
	rec_add(&r, "PROACTIVE", "0");
	rec_add_pid(&r, "PID", in->server_pid);
	rec_add_bytes(&r, "RSS_BYTES", in->usage_bytes);
	rec_add_bytes(&r, "LIMIT_BYTES", in->limit_bytes);
	rec_message(&r, "instance %s: under pressure but %s: %s", in->ic->name,
		    dec->exhausted ? "no rung that can help is left" : "the rung that would help is cooling down",
		    dec->reason);
	rec_emit(&r);
	if (dec->exhausted) {
		metrics_add_counter(METRIC_LADDER_EXHAUSTED_TOTAL, in->labels, 1);
		prevent_incident_finish(in, INCIDENT_OUTCOME_FAILED, r.message, 0);
	}
}

/* ---- the memory.high brake (cgroup v2) ---- */

/* state_dir/brake-NAME.json while the brake is held (core/brakemark.h) */
static void brake_mark_name(const struct instance *in, char *buf, size_t len)
{
	size_t n = (size_t)snprintf(buf, len, "brake-%s.json", in->ic->name);

	/* an instance name is a config section name: keep it a single file name whatever it holds */
	for (size_t i = 6; i + 5 < n && i < len; i++)
		if (!(buf[i] == '-' || buf[i] == '_' || (buf[i] >= '0' && buf[i] <= '9') || (buf[i] >= 'a' && buf[i] <= 'z') ||
		      (buf[i] >= 'A' && buf[i] <= 'Z')))
			buf[i] = '_';
}

static void brake_mark_remove(struct instance *in)
{
	char name[PATH_MAX];

	if (!in->d->cfg->state_dir[0])
		return;
	brake_mark_name(in, name, sizeof(name));
	statefile_remove(in->d->cfg->state_dir, name);
}

/* On disk before memory.high is written (written here, not queued: a daemon killed right after the write must
 * leave the mark behind). The brake is held even when it cannot be written: throttled is not killed, and every
 * stop of the daemon but SIGKILL or a crash lets it go. */
static void brake_mark_write(struct instance *in)
{
	_cleanup_free_ char *text = NULL;
	struct brake_mark m = { .held = in->brake_held, .saved = in->brake_saved_high, .pid = (int32_t)getpid() };
	char name[PATH_MAX];
	int r;

	if (!in->d->cfg->state_dir[0])
		return;
	snprintf(m.cgroup, sizeof(m.cgroup), "%s", in->brake_dir);
	brake_mark_name(in, name, sizeof(name));
	r = brake_mark_to_json(&m, &text);
	if (r >= 0)
		r = statefile_write(in->d->cfg->state_dir, name, text);
	if (r < 0)
		log_warn_errno(r, "instance %s: cannot write %s/%s: a daemon killed while the brake is held would leave "
			       "memory.high of %s held", in->ic->name, in->d->cfg->state_dir, name, in->brake_dir);
}

static void journal_brake(struct instance *in, const char *dir, const char *result, uint64_t high, int err,
			  const char *why)
{
	char hs[32], us[32];
	struct rec r;
	const char *verb = !strcmp(result, "set") ? "held at" : !strcmp(result, "left") ? "left at" : "restored to";

	instance_rec(&r, in, REC_ACTION, err < 0 ? LOG_ERR : LOG_NOTICE);
	rec_add(&r, "ACTION", "brake");
	rec_add(&r, "RESULT", "%s", err < 0 ? "failed" : result);
	rec_add_bytes(&r, "MEMORY_HIGH_BYTES", high);
	rec_add_bytes(&r, "RSS_BYTES", in->usage_bytes);
	rec_add_bytes(&r, "LIMIT_BYTES", in->limit_bytes);
	rec_add(&r, "CGROUP", "%s", dir);
	rec_add(&r, "REASON", "%s", why);
	if (high == CG_UNLIMITED)
		snprintf(hs, sizeof(hs), "max");
	else
		bytes_str(high, hs, sizeof(hs));
	rec_message(&r, "instance %s: memory.high %s %s at %s%s%s: %s", in->ic->name, verb, hs,
		    bytes_str(in->usage_bytes, us, sizeof(us)), err < 0 ? " failed: " : "", err < 0 ? strerror(-err) : "",
		    why);
	rec_emit(&r);
}

void prevent_brake_release(struct instance *in, const char *why)
{
	uint64_t cur;
	char reason[256];
	int r;

	if (!in->brake_on)
		return;
	in->brake_on = false;
	/* the cgroup the brake was set in, whatever the instance's is now (a new server may live elsewhere); and
	 * only while it still holds the brake's value: one written since is someone else's */
	r = brake_read_high(in->brake_dir, &cur);
	if (r == 0 && !brake_high_held(cur, in->brake_held)) {
		snprintf(reason, sizeof(reason), "%s; memory.high was changed by someone else while the brake held it, "
			 "and is theirs", why);
		journal_brake(in, in->brake_dir, "left", cur, 0, reason);
	} else if (r == -ENOENT) {
		/* the cgroup went with its server (a stopped unit): there is nothing left to hold back */
		snprintf(reason, sizeof(reason), "%s; the cgroup is gone", why);
		journal_brake(in, in->brake_dir, "left", in->brake_held, 0, reason);
	} else {
		r = brake_write_high(in->brake_dir, in->brake_saved_high);
		journal_brake(in, in->brake_dir, "restored", in->brake_saved_high, r, why);
	}
	brake_mark_remove(in);
}

void prevent_brake_leftover(struct instance *in)
{
	_cleanup_free_ char *text = NULL;
	struct brake_mark m;
	char name[PATH_MAX], why[160];
	uint64_t cur;
	size_t len = 0;
	int r;

	if (in->brake_on || in->d->mode != MODE_RUN || in->d->cfg->dry_run || !in->d->cfg->state_dir[0] ||
	    in->cgv != CG_V2 || !in->cgroup_dir[0])
		return;
	brake_mark_name(in, name, sizeof(name));
	r = statefile_read(in->d->cfg->state_dir, name, BRAKE_MARK_TEXT_MAX, &text, &len);
	if (r == -ENOENT)
		return;
	if (r < 0 || brake_mark_parse(text, len, &m) < 0) {
		log_warn("instance %s: %s/%s is unreadable (%s); removed, memory.high left as it is", in->ic->name,
			 in->d->cfg->state_dir, name, r < 0 ? strerror(-r) : "malformed");
		brake_mark_remove(in);
		return;
	}
	/* never a cgroup this instance does not act on: the mark waits until the instance's cgroup is the one it
	 * names (its server found there again) */
	if (strcmp(m.cgroup, in->cgroup_dir) || brake_read_high(in->cgroup_dir, &cur) < 0)
		return;
	snprintf(why, sizeof(why), "held by a daemon (pid %d) that ended without letting go", (int)m.pid);
	switch (brake_mark_leftover(&m, in->cgroup_dir, cur)) {
	case BRAKE_LEFT_RESTORE:
		r = brake_write_high(in->cgroup_dir, m.saved);
		journal_brake(in, in->cgroup_dir, "restored", m.saved, r, why);
		if (r < 0)
			return;
		break;
	case BRAKE_LEFT_CHANGED:
		snprintf(why + strlen(why), sizeof(why) - strlen(why), "; changed by someone else since, and theirs");
		journal_brake(in, in->cgroup_dir, "left", cur, 0, why);
		break;
	case BRAKE_LEFT_ELSEWHERE:
		return;
	}
	brake_mark_remove(in);
}

/* The policy says whether the brake is to be held now: set it once, let go once. */
static void brake_apply(struct instance *in, const struct policy_decision *dec)
{
	struct cg_memory m;
	uint64_t high;
	int r;

	if (!dec->brake) {
		prevent_brake_release(in, "the rung it held for was judged");
		return;
	}
	if (in->brake_on || dec->dry_run || cg_read_memory(in->cgroup_dir, in->cgv, &m) < 0)
		return;
	high = policy_brake_high_bytes(m.usage_bytes, in->limit_bytes);
	if (!high)
		return;
	in->brake_saved_high = m.has_high ? m.high_bytes : CG_UNLIMITED;
	in->brake_held = high;
	snprintf(in->brake_dir, sizeof(in->brake_dir), "%s", in->cgroup_dir);
	brake_mark_write(in);
	r = brake_write_high(in->brake_dir, high);
	in->brake_on = r == 0;
	if (!in->brake_on)
		brake_mark_remove(in);
	journal_brake(in, in->brake_dir, "set", high, r, dec->reason);
}

void prevent_say_unpreventable(struct instance *in)
{
	struct rec r;

	if (in->ic->restart_method != RESTART_NONE)
		return;
	instance_rec(&r, in, REC_DECISION, LOG_WARNING);
	rec_add(&r, "ACTION", "none");
	rec_add(&r, "RESULT", "unpreventable");
	rec_add(&r, "DRY_RUN", "%d", in->d->cfg->dry_run);
	rec_add(&r, "REASON", "restart = none%s", in->d->cfg->kill ? ", kill = yes" : ", kill = no");
	rec_message(&r, "instance %s: restart = none: without a controlled restart%s, these cannot be prevented: a leak "
			"that /free cannot release (a custom node keeping memory per run), a prompt that needs more than the "
			"limit even on a fresh server, growth faster than /free or interrupt take effect, and pressure while "
			"the ComfyUI API does not answer; set restart = signal, command or systemd",
		    in->ic->name, in->d->cfg->kill ? " (kill = yes remains, and loses the queue)" : " or kill");
	rec_emit(&r);
}

/* ---- per-prompt give-up ---- */

struct give_up {
	enum policy_giveup_verdict verdict; /* KEEP: not given up */
	const char *id; /* the prompt */
	uint32_t stops;
	uint64_t need;  /* its largest own growth above where it started */
	uint64_t floor; /* where it started then */
};

static void journal_give_up(struct instance *in, const char *prompt_id, const struct give_up *gu, const char *rung)
{
	char ns[32], fs[32], ls[32];
	bool proven = gu->verdict == POLICY_GIVEUP_PROVEN;
	struct rec r;

	bytes_str(gu->need, ns, sizeof(ns));
	bytes_str(gu->floor, fs, sizeof(fs));
	bytes_str(in->limit_bytes, ls, sizeof(ls));
	instance_rec(&r, in, REC_ACTION, LOG_ERR);
	rec_add(&r, "ACTION", "give_up");
	rec_add_id(&r, "PROMPT_ID", prompt_id);
	rec_add_u64(&r, "STOPS", gu->stops);
	rec_add_bytes(&r, "NEEDED_BYTES", gu->need);
	rec_add_bytes(&r, "FLOOR_BYTES", gu->floor);
	rec_add_bytes(&r, "LIMIT_BYTES", in->limit_bytes);
	rec_add(&r, "RESULT", "removed");
	rec_add(&r, "EVIDENCE", proven ? "fresh_start" : "inconclusive");
	if (proven) {
		rec_add(&r, "REASON", "stopped %u times (%s now), %llu of them on a fresh server, from a clean start, "
				      "at the last resort's deadline: its own growth would have reached the limit before a "
				      "later stop could take effect: it cannot fit",
			gu->stops, rung, (unsigned long long)in->ic->give_up_after);
		rec_message(&r, "instance %s: prompt %.36s given up after %u interrupts/restarts, %llu of them on a fresh "
				"server: it grew by at least %s from %s, and its own growth would have reached the %s "
				"limit before a later stop could take effect; removed, the prompts behind it run",
			    in->ic->name, prompt_id, gu->stops, (unsigned long long)in->ic->give_up_after, ns, fs, ls);
	} else {
		rec_add(&r, "REASON", "stopped %u times (%s now), never shown to need more than the limit on a fresh "
				      "server: removed so that it does not hold the queue in a loop",
			gu->stops, rung);
		rec_message(&r, "instance %s: prompt %.36s given up after %u interrupts/restarts although none showed it "
				"cannot fit (it grew by at least %s from %s, limit %s): removed so that the prompts behind "
				"it run",
			    in->ic->name, prompt_id, gu->stops, ns, fs, ls);
	}
	rec_emit(&r);
}

/* A prompt given up on is not resubmitted by the restart under way: out of the snapshot now, and out of the
 * /queue reply the restart is still waiting for (restart.c drops rs_drop_id from it). */
static void drop_saved(struct instance *in, const char *prompt_id)
{
	size_t n = strnlen(prompt_id, sizeof(in->rs_drop_id) - 1);

	snapshot_remove(&in->snap, prompt_id);
	memcpy(in->rs_drop_id, prompt_id, n);
	in->rs_drop_id[n] = 0;
}

/* What follows a rung that was carried out: timings to learn, the settle of an idle /free, a give-up. */
/* A stop of a server that ran nothing since its start and had nothing to run: in a row, they are a leak in the
 * server itself, which restarts hold off but never cure; said once per row (and when it doubles) as a crash_loop
 * record, since the server cannot stay up, with the cause its own. */
static void note_stop(struct instance *in, bool idle, double growth_bytes_per_s, uint64_t now_ns)
{
	struct idleloop_record ilr;
	char mib[32] = "";
	struct rec r;

	if (idleloop_note_stop(&in->il, now_ns, idle, growth_bytes_per_s, &ilr) != 1)
		return;
	if (ilr.growth_bytes_per_s >= (double)MIB(1) / 2)
		snprintf(mib, sizeof(mib), ", growing %.0f MiB/s", ilr.growth_bytes_per_s / (double)MIB(1));
	instance_rec(&r, in, REC_CRASH_LOOP, LOG_CRIT);
	rec_add_u64(&r, "DEATHS", ilr.stops);
	rec_add_ms(&r, "WINDOW_MS", ilr.last_ns - ilr.first_ns);
	rec_add(&r, "CAUSES", "stopped by oomsentry at the limit while idle ×%u (every %.1f s%s)", ilr.stops,
		ilr.every_s, mib);
	rec_add(&r, "REASON", "%s", ilr.summary);
	rec_message(&r, "instance %s: crash loop: %s", in->ic->name, ilr.summary);
	rec_emit(&r);
	metrics_add_counter(METRIC_CRASH_LOOPS_TOTAL, in->labels, 1);
}

static void after_act(struct instance *in, const struct policy_decision *dec, const struct generation *running,
		      const struct give_up *gu, uint64_t now_ns)
{
	bool give_up = gu->verdict != POLICY_GIVEUP_KEEP;

	switch (dec->rung) {
	case POLICY_RUNG_FREE_MODELS:
	case POLICY_RUNG_FREE_ALL:
		if (!dec->deferred && !dec->proactive) {
			/* applied at once: judged once memory settles from here */
			gen_settle_begin(&in->settle, now_ns, in->usage_bytes, in->usage_bytes);
			in->settle_boundary_ns = now_ns;
			in->settle_idle = true;
		}
		break;
	case POLICY_RUNG_INTERRUPT_REQUEUE:
		in->interrupt_sent_ns = now_ns;
		if (give_up && in->requeue_pending && running && !strcmp(in->requeue.prompt_id, gu->id)) {
			saved_prompt_clear(&in->requeue);
			in->requeue_pending = false;
			journal_give_up(in, gu->id, gu, "interrupted, not requeued");
		}
		break;
	case POLICY_RUNG_RESTART:
		in->restart_sent_ns = now_ns;
		in->restart_stop_ms = 0;
		in->restart_exit_seen = false;
		/* an interrupted prompt waiting for its requeue goes back with the saved queue, once: restart.c moves
		 * it into the snapshot (and ends the requeue) when it saves */
		if (give_up) {
			/* the id may live in the snapshot that drop_saved changes */
			char id[COMFY_PROMPT_ID_MAX];
			size_t n = strnlen(gu->id, sizeof(id) - 1);

			memcpy(id, gu->id, n);
			id[n] = 0;
			drop_saved(in, id);
			journal_give_up(in, id, gu, "restarted, not resubmitted");
		}
		prevent_brake_release(in, "the server restarts");
		break;
	default:
		break;
	}
}

/* The largest own growth of the other servers in this one's memory cgroup. */
static double others_max_growth(const struct instance *in)
{
	double m = 0.0;

	for (int i = 0; i < in->d->n_instances; i++) {
		const struct instance *o = in->d->instances[i];

		if (o && o != in && o->use_cgroup && o->server_pid && !strcmp(o->cgroup_dir, in->cgroup_dir))
			m = MAX(m, forecast_rate_get(&o->own_rate));
	}
	return m;
}

/* The daemon looks again at the next RSS event of the server's tree (one RSS step of growth, as tightened near the
 * limit) or at the next timer sample, whichever comes first: what the policy's deadline must leave room for. */
static uint64_t next_look_ns(const struct instance *in, double growth_bytes_per_s)
{
	uint64_t sample = in->d->cfg->sample_interval_ms * NSEC_PER_MSEC;
	uint64_t step = in->rss_step_bytes ? in->rss_step_bytes : in->d->cfg->rss_step_bytes;
	double step_s;

	if (!(growth_bytes_per_s > 0.0) || !step)
		return sample;
	step_s = (double)step / growth_bytes_per_s;
	return step_s * 1e9 < (double)sample ? (uint64_t)(step_s * 1e9) : sample;
}

/* The prompt a stop interrupts, for the give-up: the running generation; or, while a resubmission round has the
 * poll off (the generation tracker then sees nothing start), the one the round's last look saw running — a prompt
 * that climbs to the limit within the round is otherwise stopped and resubmitted forever. */
struct stopped {
	const char *id;
	bool fresh;           /* it ran from a clean start on a fresh server */
	uint64_t start_bytes; /* its server's own memory where it started */
};

/* While a resubmission round has the poll off, the prompt its last look saw running on the server answering now;
 * and after the round, until a poll's /queue reply (not the round's last look) has said what runs: at x10 the
 * first resubmitted prompt climbed to the warn line 160 ms after the round ended, before the poll had seen it,
 * and was stopped as an idle server's climb. */
static bool round_running(const struct instance *in)
{
	if (!in->resubmit_running_id[0] || in->server_pid != in->resubmit_pid ||
	    in->server_start_ns != in->resubmit_start_ns)
		return false;
	return in->snap.stop != SNAP_STOP_NONE || (in->look_sent_ns && in->qt_last_sent_ns == in->look_sent_ns);
}

/* A round's looks come one per resubmitted prompt at best, and the first prompt it gave a fresh server may climb
 * to the limit before any look saw it run (x10: a 1 GiB load in 0.6 s, a round of four prompts takes as long).
 * Until a look says what runs, and while none was seen to run there before, what this server holds of the
 * snapshot runs lowest number first (ComfyUI's queue is a heap by number, and resubmissions keep theirs): that
 * prompt is the one climbing, from the clean start the server answered on. Without it the climb read as an idle
 * server's and was stopped at the warn line, uncounted, again and again. */
static const struct snap_item *round_first_held(const struct instance *in)
{
	const struct snap_item *first = NULL;

	if (in->snap.stop == SNAP_STOP_NONE || in->resubmit_running_id[0] || in->resubmit_ran_before ||
	    !in->resubmit_base_bytes || in->server_pid != in->resubmit_pid ||
	    in->server_start_ns != in->resubmit_start_ns)
		return NULL;
	for (size_t i = 0; i < in->snap.n; i++) {
		const struct snap_item *it = &in->snap.items[i];

		if (it->submitted && it->holder_pid == in->server_pid && it->holder_start_ns == in->server_start_ns &&
		    (!first || it->number < first->number))
			first = it;
	}
	return first;
}

static struct stopped stopped_prompt(const struct instance *in, const struct generation *running)
{
	const struct snap_item *held;

	if (running)
		/* where ComfyUI's stamps put the start, unless a shared cgroup's level is not the server's own */
		return (struct stopped){ running->prompt_id, in->fresh_id[0] && !strcmp(running->prompt_id, in->fresh_id),
					 in->cgroup_shared ? in->own_start_bytes : running->usage_start_bytes };
	if (round_running(in))
		return (struct stopped){ in->resubmit_running_id, in->resubmit_running_first && in->resubmit_base_bytes,
					 in->cgroup_shared ? in->own_low_bytes : in->resubmit_base_bytes };
	held = round_first_held(in);
	if (held)
		return (struct stopped){ held->prompt_id, true,
					 in->cgroup_shared ? in->own_low_bytes : in->resubmit_base_bytes };
	return (struct stopped){ 0 };
}

void prevent_run(struct instance *in, uint64_t now_ns)
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
		/* in a cgroup shared with another server, the growth this one causes */
		.growth_bytes_per_s = policy_growth_answered(in->cgroup_shared, forecast_rate_get(&in->rate),
							     forecast_rate_get(&in->own_rate),
							     in->cgroup_shared ? others_max_growth(in) : 0.0),
		/* the running generation's peak as this instance's history predicts it: growth stops there */
		.bound_bytes = in->fc_valid && running ? in->fc.predicted_running_peak_bytes : 0,
		.brake_available = in->ic->brake && in->use_cgroup && brake_available(in->cgroup_dir, in->cgv),
		.outcome_pending = in->settle.active,
		.next_needs_unload = igen_next_needs_unload(in),
	};
	/* the prompt that runs, also while a resubmission round has the poll off */
	struct stopped sp = stopped_prompt(in, running);
	/* a prompt that loads a checkpoint mid-way climbs by the checkpoint's size: what its workflow says it loads
	 * bounds the climb better than the history of generations that did not load it */
	pi.bound_bytes = MAX(pi.bound_bytes, igen_running_peak_bytes(in));
	/* a resubmitted prompt running within the round is running for the policy too: the first the fresh server
	 * runs is a fresh start (sp.fresh), whose last resort keeps to its own deadline, not an idle server's */
	if (!running && sp.id)
		pi.busy = true;
	struct learn_now ln = {
		.busy = pi.busy,
		.running_elapsed_ms = running && now_ns > in->running_started_ns ?
					      (now_ns - in->running_started_ns) / NSEC_PER_MSEC : 0,
		.orphan_grace_ms = in->d->cfg->orphan_grace_ms,
	};
	uint64_t thr = (uint64_t)((double)in->limit_bytes * in->fcp.margin), unreleasable;
	bool since;
	struct give_up gu = { .verdict = POLICY_GIVEUP_KEEP };
	char detail[384];
	int r;

	/* the server's cgroup is known anew: a brake a killed daemon left there is put back first */
	if (in->brake_leftover_due) {
		in->brake_leftover_due = false;
		prevent_brake_leftover(in);
	}
	uint64_t grace_left = restart_grace_left_ns(in, now_ns);

	pi.event_lag_ns = learn_lag_get(&in->d->event_lag, now_ns);
	in->generation_just_ended = false;
	/* a stop whose SIGTERM has not ended the server while memory still climbs into the limit: its grace would end
	 * after the kernel's kill (a server that handles SIGTERM slowly, or ignores it) */
	if (grace_left && policy_escalate_stop(&in->pp, pi.usage_bytes, pi.limit_bytes, pi.growth_bytes_per_s, grace_left,
					       next_look_ns(in, pi.growth_bytes_per_s), pi.event_lag_ns)) {
		snprintf(detail, sizeof(detail), "still climbs %.0f MiB/s %llu MiB below the limit, %llu ms before its "
			 "SIGKILL was due", pi.growth_bytes_per_s / (double)MIB(1),
			 (unsigned long long)((pi.limit_bytes - MIN(pi.usage_bytes, pi.limit_bytes)) / MIB(1)),
			 (unsigned long long)(grace_left / NSEC_PER_MSEC));
		restart_escalate(in, now_ns, detail);
		return;
	}
	/* the restart state machine owns the server until it answers again; a controlled restart still saving or
	 * draining (the server may not answer) can give way to the last resort only */
	if (in->rs != RS_IDLE && in->rs != RS_SAVING && in->rs != RS_DRAINING)
		return;
	if (in->server_gone || !in->server_pid)
		return; /* nothing to protect until a server is back */
	pi.fresh_start = sp.fresh;
	learn_time_to_effect(&in->learn, &ln, pi.tte_ns);
	pi.kill_tte_ns = learn_kill_tte_ns(&in->learn);
	pi.last_resort_grace_ns = in->ic->last_resort_grace_ms * NSEC_PER_MSEC;
	pi.next_look_ns = next_look_ns(in, pi.growth_bytes_per_s);
	pi.running_ends_in_ns = learn_running_ends_in_ns(&in->learn, &ln);
	/* /free cannot make room for the next generation when what it cannot release (the floor, grown by the
	 * unreleasable leak per generation since, or all an idle server grew to since the /free) plus a generation
	 * from a clean start passes the threshold: an adaptive restart_every_generations, at the boundary before the
	 * generation that would not fit; on an idle server, now, before a prompt comes (before, a futile /free was
	 * awaited while it grew, and the stop came as the next batch was POSTed, losing a prompt the snapshot did
	 * not have yet) */
	since = in->generations_completed >= in->floor_gens;
	unreleasable = forecast_unreleasable_bytes(
		in->floor_valid, in->floor_bytes,
		since && in->learn.unreleasable_per_gen_bytes.n ? in->learn.unreleasable_per_gen_bytes.value : 0.0,
		since ? in->generations_completed - in->floor_gens : 0,
		!pi.busy && !in->settle.active && gen_completed_in_epoch(&in->gens) == 0, in->usage_bytes);
	pi.free_cannot_make_room = in->floor_valid && in->clean_cost_bytes && unreleasable + in->clean_cost_bytes > thr;
	if (policy_decide(&in->pp, &in->ps, &pi, &dec) < 0)
		return;
	if (dec.outcome.rung != POLICY_RUNG_NONE)
		journal_outcome(in, &dec, now_ns);
	brake_apply(in, &dec);
	if (dec.rung == POLICY_RUNG_NONE) {
		report_blocked(in, &dec);
		return;
	}
	if ((in->rs == RS_SAVING || in->rs == RS_DRAINING) && !(dec.urgent && dec.rung == POLICY_RUNG_RESTART))
		return;
	in->blocked_reported = false;
	if (!dec.proactive)
		prevent_incident_begin(in, in->fc_valid && !in->fc.next_fits ? INCIDENT_TRIGGER_FORECAST :
				   in->reclaim_rate > 0 ? INCIDENT_TRIGGER_RECLAIM : INCIDENT_TRIGGER_USAGE, now_ns);
	/* a prompt stopped again and again for not fitting is given up once a fresh server showed that it cannot fit */
	if (!dec.dry_run && !dec.proactive && sp.id && in->ic->give_up_after &&
	    (dec.rung == POLICY_RUNG_INTERRUPT_REQUEUE || dec.rung == POLICY_RUNG_RESTART)) {
		struct policy_stop st = {
			.fresh = sp.fresh,
			.start_bytes = sp.start_bytes,
			.own_bytes = in->own_bytes,
			.own_growth_bytes_per_s = forecast_rate_get(in->cgroup_shared ? &in->own_rate : &in->rate),
			.horizon_ns = dec.last_resort_needs_ns,
			.limit_bytes = in->limit_bytes,
		};
		int v = policy_giveup_note(&in->giveup, sp.id, &st, (uint32_t)MIN(in->ic->give_up_after, UINT32_MAX),
					   now_ns, &gu.stops, &gu.need, &gu.floor);

		gu.verdict = v < 0 ? POLICY_GIVEUP_KEEP : (enum policy_giveup_verdict)v;
		gu.id = sp.id;
	}
	r = dec.dry_run ? 0 : act(in, &dec, now_ns, detail, sizeof(detail));
	if (dec.dry_run)
		detail[0] = 0;
	journal_decision(in, &dec, r, detail, now_ns);
	if (r == 0 && !dec.dry_run)
		after_act(in, &dec, running, &gu, now_ns);
	if (r == 0 && !dec.dry_run && dec.rung == POLICY_RUNG_RESTART && !dec.proactive)
		note_stop(in, !pi.busy && !in->generations_completed && !in->snap.n, pi.growth_bytes_per_s, now_ns);
	/* a rung that could not even be carried out did not work: climb at the next sample, not at its deadline */
	if (r < 0)
		policy_record_outcome(&in->ps, dec.rung, false, 0, now_ns);
}

void prevent_prekill(struct instance *in, const char *cgroup, uint64_t now_ns)
{
	struct policy_decision dec = { 0 };
	char detail[256] = "";
	int r = 0;

	/* oomd kills the cgroup once the hooks have answered, whatever they did: /free cannot avert it, a restart that
	 * saved the queue can make it lose nothing (the new server's prompts come back with their ids) */
	dec.rung = in->ic->restart_method != RESTART_NONE ? POLICY_RUNG_RESTART : POLICY_RUNG_FREE_ALL;
	dec.free_memory = true;
	/* oomd kills once we answer: the stop cannot wait for a /queue a stalled server may not give; the snapshot of
	 * its last answer (at most a poll old) is the queue */
	dec.urgent = true;
	dec.dry_run = in->d->cfg->dry_run;
	snprintf(dec.reason, sizeof(dec.reason), "systemd-oomd is about to kill cgroup %s (pre-kill hook): %s", cgroup,
		 dec.rung == POLICY_RUNG_RESTART ? "the queue is saved and ComfyUI restarted before the kill"
						 : "no restart method configured: /free is all there is time for");
	if (dec.rung == POLICY_RUNG_RESTART && in->rs != RS_IDLE) {
		log_info("instance %s: %s; a restart is already under way", in->ic->name, dec.reason);
		return;
	}
	if (!dec.dry_run)
		r = act(in, &dec, now_ns, detail, sizeof(detail));
	journal_decision(in, &dec, r, detail, now_ns);
}

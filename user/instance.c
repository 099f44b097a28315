// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>
#include <sys/sdt.h>
#include <unistd.h>
#include "comfy-client.h"
#include "comfy-ws.h"
#include "common.h"
#include "carry-store.h"
#include "context.h"
#include "crashloop.h"
#include "death.h"
#include "forecast.h"
#include "generations.h"
#include "incident.h"
#include "instance.h"
#include "unitjob.h"
#include "instance-state.h"
#include "journal.h"
#include "learn.h"
#include "learn-store.h"
#include "locate.h"
#include "memwatch.h"
#include "log.h"
#include "metrics.h"
#include "utf8.h"
#include "policy.h"
#include "prevent.h"
#include "probes.h"
#include "proctree.h"
#include "restart.h"
#include "rsstep.h"
#include "rssarm.h"
#include "snapshot.h"
#include "scan.h"
#include "usage.h"
#include "varlink.h"
#include "oomsentry/events.h"

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
	in->usage_efd = -1;
	in->arm_efd = -1;
	in->reachable = true; /* until proven otherwise: say "unreachable" once, not at start */
	in->psi_some_avg10 = -1;
	config_url_port(ic->url, &in->port);
	metrics_labels(in->labels, sizeof(in->labels), METRIC_LABEL_INSTANCE, ic->name, NULL);
	/* counters exist at 0 from the start: rate() and increase() need a sample before the first step */
	metrics_add_counter(METRIC_CRASH_LOOPS_TOTAL, in->labels, 0);
	metrics_add_counter(METRIC_LADDER_EXHAUSTED_TOTAL, in->labels, 0);
	r = comfy_client_new(&cc, &in->comfy);
	if (r == 0) {
		r = comfy_client_new(&cc, &in->comfy_act);
		if (r < 0)
			comfy_client_free(in->comfy);
	}
	if (r < 0) {
		log_error_errno(r, "instance %s: cannot create the HTTP client for %s", ic->name, ic->url);
		free(in);
		return NULL;
	}
	if (igen_init(in) < 0) {
		comfy_client_free(in->comfy);
		comfy_client_free(in->comfy_act);
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
	in->pp.brake = ic->brake;
	in->pp.restart_every_generations = (uint32_t)MIN(ic->restart_every_generations, UINT32_MAX);
	if (policy_params_validate(&in->pp) < 0) {
		log_error("instance %s: act_usage_fraction %.2f leaves no room for the policy's hysteresis; using 0.90",
			  ic->name, in->pp.act_usage_fraction);
		in->pp.act_usage_fraction = 0.90;
	}
	policy_state_init(&in->ps);
	forecast_rate_init(&in->rate);
	forecast_rate_init(&in->own_rate);
	learn_init(&in->learn);
	/* what this instance showed before a restart of the daemon or of the server is where judgment starts */
	if ((d->mode == MODE_RUN || d->mode == MODE_OBSERVE) && d->cfg->state_dir[0] &&
	    learn_store_path(d->cfg->state_dir, ic->name, ic->url, in->learn_path, sizeof(in->learn_path)) == 0) {
		r = learn_store_load(in->learn_path, &in->learn);
		if (r == 0)
			log_info("instance %s: what it has shown before read from %s", ic->name, in->learn_path);
		else if (r != -ENOENT)
			log_warn("instance %s: cannot use %s (%s); learning from nothing", ic->name, in->learn_path,
				 strerror(-r));
	} else {
		in->learn_path[0] = 0;
	}
	if (in->learn.clean_cost_bytes.n)
		in->clean_cost_bytes = (uint64_t)in->learn.clean_cost_bytes.value;
	/* per-model load costs are the look-ahead's table, kept with the rest */
	in->la_costs = in->learn.models;
	crashloop_init(&in->cl, d->cfg->crashloop_window_ms * NSEC_PER_MSEC, (uint32_t)d->cfg->crashloop_threshold);
	idleloop_init(&in->il, (uint32_t)d->cfg->crashloop_threshold);
	/* a reload in the middle of a prevention goes on where the image before it was */
	carry_store_load(in, now_mono_ns());
	if (d->curl) {
		comfy_client_attach(in->comfy, d->curl);
		comfy_client_attach(in->comfy_act, d->curl);
		if (in->pending_resend.free || in->pending_resend.interrupt[0])
			prevent_resend(in, in->pending_resend.free, in->pending_resend.unload,
				       in->pending_resend.free_memory, in->pending_resend.interrupt);
		in->pending_resend = (struct resend){ 0 };
		/* a stop that a previous daemon began (it was killed in the middle) is finished by this one */
		restart_resume(in, now_mono_ns());
	}
	return in;
}

void instance_free(struct instance *in)
{
	if (!in)
		return;
	prevent_brake_release(in, "the daemon stops");
	unitjob_cancel(in->rs_job);
	instance_learn_flush(in, 0, true);
	if (in->usage_efd >= 0)
		close(in->usage_efd);
	if (in->arm_efd >= 0)
		close(in->arm_efd);
	comfy_client_free(in->comfy);
	comfy_client_free(in->comfy_act);
	igen_free(in);
	saved_prompt_clear(&in->running);
	saved_prompt_clear(&in->requeue);
	snapshot_free(&in->snap);
	comfy_queue_free(&in->pending_q);
	incident_free(in->incident);
	free(in);
}

/* A URL's host name is looked up off the loop (comfy-client.c); the websocket connects to the address found. */
static void instance_resolve_tick(struct instance *in)
{
	comfy_client_tick(in->comfy);
	comfy_client_tick(in->comfy_act);
	if (in->ws)
		comfy_ws_set_address(in->ws, comfy_client_address(in->comfy));
}

/* ---- generations ---- */

static void emit_generation(struct instance *in, const struct generation *g)
{
	char peak[32], res[32], growth[32];
	struct rec r;

	instance_rec(&r, in, REC_GENERATION, LOG_INFO);
	rec_add_id(&r, "PROMPT_ID", g->prompt_id);
	rec_add_u64(&r, "GENERATION", g->seq);
	rec_add(&r, "STATUS", "%s", gen_status_to_string(g->status));
	rec_add_bytes(&r, "USAGE_START_BYTES", g->usage_start_bytes);
	rec_add_bytes(&r, "PEAK_BYTES", g->peak_bytes);
	rec_add_bytes(&r, "RESIDUAL_BYTES", g->residual_bytes);
	rec_add_i64(&r, "GROWTH_BYTES", g->growth_bytes);
	rec_add_bytes(&r, "LIMIT_BYTES", in->limit_bytes);
	rec_add_ms(&r, "DURATION_MS", g->end_ns - g->start_ns);
	rec_add_pid(&r, "PID", in->server_pid);
	bytes_str(g->peak_bytes, peak, sizeof(peak));
	bytes_str(g->residual_bytes, res, sizeof(res));
	if (g->growth_bytes >= 0)
		bytes_str((uint64_t)g->growth_bytes, growth, sizeof(growth));
	else
		snprintf(growth, sizeof(growth), "-%s", bytes_str((uint64_t)-g->growth_bytes, peak + 16, 16));
	rec_message(&r, "instance %s: generation %llu (prompt %.36s) %s: peak %s, residual %s (%s%s)", in->ic->name,
		    (unsigned long long)g->seq, g->prompt_id, gen_status_to_string(g->status), peak, res,
		    g->growth_bytes >= 0 ? "+" : "", growth);
	rec_emit(&r);
	{
		char lab[192];
		metrics_labels(lab, sizeof(lab), METRIC_LABEL_INSTANCE, in->ic->name, "status", gen_status_to_string(g->status), NULL);
		metrics_add_counter(METRIC_GENERATIONS_TOTAL, lab, 1);
	}
	metrics_set_gauge(METRIC_GENERATION_PEAK_BYTES, in->labels, (double)g->peak_bytes);
	metrics_set_gauge(METRIC_GENERATION_RESIDUAL_BYTES, in->labels, (double)g->residual_bytes);
	if (in->incident)
		incident_add_eventf(in->incident, mono_to_real_ns(g->end_ns), INCIDENT_EVENT_GENERATION,
				    "generation %llu (prompt %.36s) %s, peak %s", (unsigned long long)g->seq, g->prompt_id,
				    gen_status_to_string(g->status), bytes_str(g->peak_bytes, peak, sizeof(peak)));
	DTRACE_PROBE3(oomsentry, generation, g->seq, g->peak_bytes, g->residual_bytes);
}

enum gen_status instance_history_status(const struct comfy_history_item *h)
{
	if (!h->found)
		return GEN_UNKNOWN;
	if (h->msg_interrupted)
		return GEN_INTERRUPTED;
	if (h->status == COMFY_STATUS_SUCCESS || h->msg_success)
		return GEN_SUCCESS;
	if (h->status == COMFY_STATUS_ERROR || h->msg_error)
		return GEN_ERROR;
	return GEN_UNKNOWN;
}

/* ComfyUI applies the /free flags the moment the prompt they waited for ends. The next generation loads its
 * models again: a new epoch, not a leak. What the free gave back, and the floor it leaves, are judged once memory
 * has settled after this boundary (instance_settle_step), not by the sample at it: ComfyUI may not have let go
 * yet. */
static void free_took_effect(struct instance *in, uint64_t now_ns)
{
	uint64_t dip = usage_levels_residual_bytes(&in->lv, in->usage_bytes);

	in->free_pending_prompt[0] = 0;
	gen_new_epoch(&in->gens, now_ns, dip);
	igen_models_unloaded(in);
	gen_settle_begin(&in->settle, now_ns, in->free_sent_usage_bytes, dip);
	in->settle_boundary_ns = now_ns;
	in->settle_idle = false;
}

static void instance_settle_step(struct instance *in, uint64_t now_ns)
{
	uint64_t low, low_ns, freed, noise = MAX(MIB(32), in->limit_bytes / 50);

	if (gen_settle_sample(&in->settle, now_ns, in->usage_bytes, NSEC_PER_SEC, noise, 10 * NSEC_PER_SEC, &low,
			      &low_ns) != 1)
		return;
	freed = in->settle.ref_bytes > low ? in->settle.ref_bytes - low : 0;
	/* an idle /free left the models unloaded too: the next generation reloads them */
	if (in->settle_idle && !gen_running(&in->gens)) {
		gen_new_epoch(&in->gens, now_ns, low);
		igen_models_unloaded(in);
	}
	learn_note_free(&in->learn, freed, (low_ns - in->settle_boundary_ns) / NSEC_PER_MSEC);
	/* what /free could not release grew by this much since the last floor: the unreleasable leak */
	if (in->floor_valid && in->generations_completed > in->floor_gens)
		learn_note_floors(&in->learn, in->floor_bytes, low, in->generations_completed - in->floor_gens);
	in->floor_bytes = low;
	in->floor_valid = true;
	in->floor_gens = in->generations_completed;
	policy_record_outcome(&in->ps, in->ps.last_rung, freed >= in->limit_bytes / 20, freed, now_ns);
	instance_learnt(in);
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
	rec_add_u64(&r, "GENERATION", in->gens.next_seq);
	rec_add_bytes(&r, "PREDICTED_PEAK_BYTES", in->fc.predicted_next_peak_bytes);
	rec_add_i64(&r, "HEADROOM_BYTES", in->fc.headroom_bytes);
	rec_add_i64(&r, "GENERATIONS_LEFT", in->fc.generations_left);
	rec_add_i64(&r, "LEAK_BYTES_PER_GENERATION", in->fc.leak_bytes_per_gen);
	rec_add(&r, "NEXT_FITS", "%d", in->fc.next_fits);
	rec_add(&r, "CONFIDENCE", "%.2f", in->fc.confidence);
	rec_add_bytes(&r, "LIMIT_BYTES", in->limit_bytes);
	rec_add(&r, "REASON", "%s", in->fc.reason);
	{
		int64_t per_restart = learn_generations_per_restart(&in->learn, in->limit_bytes, in->fcp.margin);
		if (per_restart >= 0)
			rec_add_i64(&r, "GENERATIONS_PER_RESTART", per_restart);
	}
	instance_learnt(in);
	if (in->fc.generations_left >= 0)
		rec_message(&r, "instance %s: next generation expected to peak at %s of %s; %lld more fit", in->ic->name,
			    bytes_str(in->fc.predicted_next_peak_bytes, peak, sizeof(peak)),
			    bytes_str(in->limit_bytes, limit, sizeof(limit)), (long long)in->fc.generations_left);
	else
		rec_message(&r, "instance %s: next generation expected to peak at %s of %s; no growth, no bound",
			    in->ic->name, bytes_str(in->fc.predicted_next_peak_bytes, peak, sizeof(peak)),
			    bytes_str(in->limit_bytes, limit, sizeof(limit)));
	rec_emit(&r);
}

/* h: the prompt's /history entry (found false when it could not be read); residual_bytes: what it left as of the
 * /queue reply that showed it gone (measurements since, during the /history round trip, may hold the next
 * prompt's first load) */
static void generation_ended(struct instance *in, const char *prompt_id, const struct comfy_history_item *hp,
			     uint64_t now_ns, uint64_t residual_bytes)
{
	struct comfy_history_item h = *hp;
	enum gen_status st = instance_history_status(&h);

	if (gen_end(&in->gens, prompt_id, st, now_ns, residual_bytes) < 0)
		return;
	/* the poll saw it end late (and maybe start late): ComfyUI's stamps say when it really ran */
	igen_exact(in, prompt_id, &h, now_ns);
	instance_generation_done(in, prompt_id, st, now_ns);
}

void instance_generation_done(struct instance *in, const char *prompt_id, enum gen_status st, uint64_t now_ns)
{
	const struct generation *g = gen_find(&in->gens, prompt_id);

	if (!g)
		return;
	igen_ended(in, g);
	if (st != GEN_INTERRUPTED) {
		in->generations_completed++;
		in->generation_just_ended = true;
		if (g->has_residual)
			learn_note_generation(&in->learn, (g->end_ns - g->start_ns) / NSEC_PER_MSEC, g->first_in_epoch,
					      g->peak_bytes > g->usage_start_bytes ? g->peak_bytes - g->usage_start_bytes : 0);
		if (st == GEN_SUCCESS)
			policy_giveup_forget(&in->giveup, prompt_id);
	}
	/* the interrupted prompt left the running slot: the next node boundary came this long after /interrupt */
	if (in->interrupt_sent_ns && in->requeue_pending && !strcmp(prompt_id, in->requeue.prompt_id)) {
		learn_note_interrupt(&in->learn, (now_ns - in->interrupt_sent_ns) / NSEC_PER_MSEC);
		in->interrupt_sent_ns = 0;
	}
	emit_generation(in, g);
	if (in->free_pending_prompt[0] && !strcmp(in->free_pending_prompt, prompt_id))
		free_took_effect(in, now_ns);
	else if (st != GEN_INTERRUPTED)
		emit_forecast(in, now_ns);
}

static void requeue_done(struct comfy_client *c, int r, void *ctx)
{
	struct instance *in = ctx;
	char new_id[COMFY_PROMPT_ID_MAX];
	struct rec rec;

	in->poll_busy = false;
	r = comfy_take_submit(c, r, new_id);
	instance_rec(&rec, in, REC_ACTION, r < 0 ? LOG_ERR : LOG_NOTICE);
	rec_add(&rec, "ACTION", "requeue");
	rec_add_id(&rec, "PROMPT_ID", in->requeue.prompt_id);
	if (r < 0) {
		/* kept: the next poll sees whether it got in after all (/queue, /history) before it tries again */
		rec_add(&rec, "RESULT", "failed");
		rec_message(&rec, "instance %s: could not requeue interrupted prompt %s: %s; trying again after the next "
				  "look at /queue and /history", in->ic->name, in->requeue.prompt_id, comfy_last_error(c));
		rec_emit(&rec);
		return;
	}
	qtrack_post_accepted(&in->qt, in->requeue_ticket);
	rec_add(&rec, "RESULT", "ok");
	rec_add_id(&rec, "NEW_PROMPT_ID", new_id);
	rec_message(&rec, "instance %s: requeued interrupted prompt %s at the front (prompt id %s)", in->ic->name,
		    in->requeue.prompt_id, new_id);
	snprintf(in->requeued_id, sizeof(in->requeued_id), "%s", new_id);
	rec_emit(&rec);
	restart_snapshot_owe(in, new_id, in->requeue.prompt_id, in->requeue.number, in->requeue.prompt_json, in->requeue.extra_json);
	in->requeue_pending = false;
	saved_prompt_clear(&in->requeue);
}

/* The interrupted prompt goes back only when ComfyUI has no result for it: an interrupt that came too late (the
 * prompt finished first) must not make it run twice. */
static void requeue_history_done(struct comfy_client *c, int r, void *ctx)
{
	struct instance *in = ctx;
	struct comfy_history_item h;
	struct rec rec;

	r = comfy_take_history_item(c, r, in->requeue.prompt_id, &h);
	if (r < 0) {
		in->poll_busy = false; /* unknown: ask again at the next poll rather than risk a second run */
		return;
	}
	if (h.found && !h.msg_interrupted && (h.status == COMFY_STATUS_SUCCESS || h.msg_success)) {
		in->poll_busy = false;
		instance_rec(&rec, in, REC_ACTION, LOG_NOTICE);
		rec_add(&rec, "ACTION", "requeue");
		rec_add_id(&rec, "PROMPT_ID", in->requeue.prompt_id);
		rec_add(&rec, "RESULT", "finished");
		rec_message(&rec, "instance %s: interrupted prompt %s finished before the interrupt took effect; not "
				  "requeued", in->ic->name, in->requeue.prompt_id);
		rec_emit(&rec);
		in->requeue_pending = false;
		saved_prompt_clear(&in->requeue);
		return;
	}
	in->requeue_ticket = qtrack_post_sent(&in->qt, in->requeue.prompt_id);
	if (comfy_start_submit(c, in->requeue.prompt_json, in->requeue.extra_json, in->requeue.prompt_id, true, -1,
			       requeue_done, in) < 0)
		in->poll_busy = false;
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

static bool queue_has(const struct comfy_queue *q, const char *id)
{
	for (size_t i = 0; i < q->n_running; i++)
		if (!strcmp(q->running[i].prompt_id, id))
			return true;
	for (size_t i = 0; i < q->n_pending; i++)
		if (!strcmp(q->pending[i].prompt_id, id))
			return true;
	return false;
}

static void poll_finish(struct instance *in, struct comfy_queue *q, enum queue_change change, uint64_t now_ns,
			uint64_t usage_bytes);

/* The prompts that ran between two polls are recorded: the poll goes on with its /queue reply. */
static void unseen_done(struct instance *in)
{
	struct comfy_queue q = in->pending_q;

	memset(&in->pending_q, 0, sizeof(in->pending_q));
	in->poll_busy = false;
	poll_finish(in, &q, (enum queue_change)in->pending_change, in->pending_now_ns, in->pending_usage_bytes);
}

/* The rest of a poll, once the /history entry of a prompt that left the running slot is known (h; found false when
 * none left or it could not be read). Owns q. usage_bytes and residual_bytes: the levels as of q's reply. */
static void poll_apply(struct instance *in, struct comfy_queue *q, const struct comfy_history_item *h, uint64_t now_ns,
		       uint64_t usage_bytes, uint64_t residual_bytes)
{
	const char *running_id = q->n_running ? q->running[0].prompt_id : "";
	enum queue_change change = queue_running_change(in->running.prompt_id, running_id);
	char ended[COMFY_PROMPT_ID_MAX];

	snprintf(ended, sizeof(ended), "%s", queue_change_ended(change) ? in->running.prompt_id : "");
	if (queue_change_ended(change)) {
		generation_ended(in, in->running.prompt_id, h, now_ns, residual_bytes);
		saved_prompt_clear(&in->running);
	}
	/* short prompts may have come and gone since the last poll, unless the same one ran all along: their /history
	 * is read on the loop, and this poll goes on once they are recorded (they ran before the one running now) */
	if ((change != QUEUE_SAME || !running_id[0]) && igen_unseen_start(in, q, ended, now_ns, unseen_done)) {
		in->pending_q = *q;
		in->pending_now_ns = now_ns;
		in->pending_change = (int)change;
		/* the level as of this reply: the prompt running now climbs while the lookups run */
		in->pending_usage_bytes = usage_bytes;
		in->poll_busy = true;
		return;
	}
	poll_finish(in, q, change, now_ns, usage_bytes);
}

/* usage_bytes: the measurement that goes with q (taken when it came) */
static void poll_finish(struct instance *in, struct comfy_queue *q, enum queue_change change, uint64_t now_ns,
			uint64_t usage_bytes)
{
	const char *running_id = q->n_running ? q->running[0].prompt_id : "";

	if (queue_change_started(change)) {
		/* the prompt may have run for a poll interval already (and loaded its model) */
		uint64_t start = usage_levels_start_bytes(&in->lv, usage_bytes, change == QUEUE_NEXT);
		saved_prompt_from_item(&in->running, &q->running[0]);
		instance_prompt_started(in, running_id);
		gen_start(&in->gens, running_id, now_ns, start);
		igen_started(in, &q->running[0]);
		usage_levels_prompt_started(&in->lv, usage_bytes);
		in->running_started_ns = now_ns;
	}
	igen_queue_seen(in, q, now_ns, usage_bytes);
	usage_levels_polled(&in->lv, usage_bytes);
	/* an interrupted prompt goes back once the worker has let go of it, unless it is queued already */
	if (in->requeue_pending && queue_has(q, in->requeue.prompt_id) && strcmp(running_id, in->requeue.prompt_id)) {
		in->requeue_pending = false;
		saved_prompt_clear(&in->requeue);
	} else if (in->requeue_pending &&
		   (strcmp(running_id, in->requeue.prompt_id) || now_ns > in->requeue_deadline_ns) &&
		   comfy_start_history_item(in->comfy, in->requeue.prompt_id, requeue_history_done, in) == 0) {
		in->poll_busy = true;
	}
	comfy_queue_free(q);
}

static void poll_history_done(struct comfy_client *c, int r, void *ctx)
{
	struct instance *in = ctx;
	struct comfy_history_item h;
	struct comfy_queue q = in->pending_q;

	memset(&in->pending_q, 0, sizeof(in->pending_q));
	in->poll_busy = false;
	if (comfy_take_history_item(c, r, in->running.prompt_id, &h) < 0)
		h.found = false;
	poll_apply(in, &q, &h, in->pending_now_ns, in->pending_usage_bytes, in->pending_residual_bytes);
}

static void poll_done(struct comfy_client *c, int r, void *ctx)
{
	struct instance *in = ctx;
	struct comfy_queue q;
	uint64_t now_ns = now_mono_ns();

	in->poll_busy = false;
	r = comfy_take_queue(c, r, &q);
	if (in->rs != RS_IDLE || in->snap.stop != SNAP_STOP_NONE) {
		/* a stop began meanwhile: the restart owns the API; but what the old server held when it answered
		 * (a prompt POSTed just before the last resort) is owed with the rest */
		if (r == 0)
			restart_late_queue(in, &q, in->poll_sent_ns);
		comfy_queue_free(&q);
		return;
	}
	if (r < 0) {
		in->reachable = false;
		comfy_unreachable(in, r);
		return;
	}
	if (!in->reachable || in->unreachable_reported) {
		struct rec rr;
		igen_server_answers(in);
		instance_rec(&rr, in, REC_COMFY, LOG_NOTICE);
		rec_message(&rr, "instance %s: ComfyUI API at %s answers", in->ic->name, in->ic->url);
		if (in->unreachable_reported)
			rec_emit(&rr);
	}
	in->reachable = true;
	in->unreachable_reported = false;
	/* what a stop would have to put back, as of this reply, and where the status broadcasts since its request
	 * begin */
	restart_snapshot_update(in, &q);
	restart_queue_anchor(in, &q, in->poll_mark, in->poll_sent_ns);
	/* one measurement per poll serves the boundary (if any) and the next poll's start level */
	instance_measure(in);
	if (queue_change_ended(queue_running_change(in->running.prompt_id, q.n_running ? q.running[0].prompt_id : "")) &&
	    comfy_start_history_item(c, in->running.prompt_id, poll_history_done, in) == 0) {
		in->pending_q = q;
		in->pending_now_ns = now_ns;
		in->pending_usage_bytes = in->usage_bytes;
		in->pending_residual_bytes = usage_levels_residual_bytes(&in->lv, in->usage_bytes);
		in->poll_busy = true;
		return;
	}
	{
		struct comfy_history_item none = { .found = false };
		poll_apply(in, &q, &none, now_ns, in->usage_bytes, usage_levels_residual_bytes(&in->lv, in->usage_bytes));
	}
}

void instance_poll(struct instance *in, uint64_t now_ns)
{
	instance_resolve_tick(in);
	instance_locate_server(in, now_ns);
	if (in->rs != RS_IDLE || in->snap.stop != SNAP_STOP_NONE)
		return; /* the restart state machine owns the API while it runs */
	if (in->poll_busy)
		return; /* the previous poll has not been answered yet: no pile-up on a slow server */
	if (!in->d->curl)
		return; /* `oomsentry scan` has no loop and does not poll */
	if (comfy_start_queue(in->comfy, poll_done, in) == 0) {
		in->poll_busy = true;
		in->poll_sent_ns = now_mono_ns();
		in->poll_mark = qtrack_mark(&in->qt);
	}
}

/* ---- orphans ---- */

/* Orphans left by the server's workers, and reaps under way. */
static void check_orphans(struct instance *in, uint64_t now_ns)
{
	int r = scan_instance(in, now_ns, false);

	if (r < 0)
		log_warn_errno(r, "instance %s: orphan scan failed", in->ic->name);
}

static void schedule_orphan_check(struct instance *in, uint64_t now_ns)
{
	/* the kernel reparents children after the exit tracepoint: look a moment later */
	if (!in->orphan_check_ns)
		in->orphan_check_ns = now_ns + 200 * NSEC_PER_MSEC;
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
		rec_add_i64(&r, "LEAK_BYTES_PER_GENERATION", in->fc.leak_bytes_per_gen);
		rec_add_i64(&r, "GENERATIONS_LEFT", in->fc.generations_left);
		rec_add_bytes(&r, "PREDICTED_PEAK_BYTES", in->fc.predicted_next_peak_bytes);
		rec_add(&r, "NEXT_FITS", "%d", in->fc.next_fits);
		rec_add(&r, "RUNNING_FITS", "%d", in->fc.running_fits);
		rec_add(&r, "CONFIDENCE", "%.2f", in->fc.confidence);
		rec_add_bytes(&r, "LIMIT_BYTES", in->limit_bytes);
		rec_add_bytes(&r, "RSS_BYTES", in->usage_bytes);
		rec_add_u64(&r, "GENERATION", in->gens.next_seq);
		rec_add(&r, "REASON", "%s", in->fc.reason);
		bytes_str((uint64_t)MAX(in->fc.leak_bytes_per_gen, 0), rate, sizeof(rate));
		rec_message(&r, "instance %s: %s", in->ic->name, in->fc.reason);
		rec_emit(&r);
		DTRACE_PROBE2(oomsentry, leak, in->fc.leak_bytes_per_gen, in->fc.generations_left);
	}
}

/* A controlled restart is measured: stop to memory released (the old server's exit), stop to answering again, and
 * the fresh server's level before any resubmitted prompt runs. It ends here (before: not idle) or, when the
 * resubmission round ended it from its callback (resubmit_complete: a restart with nothing or little to resubmit,
 * as an idle server's), at the first sample after, once its old server's exit was seen. Before, such a restart was
 * never learnt, and the last resort's deadline kept the 5 s default stop: a fresh server's first prompt was stopped
 * at the warn line with the limit 1.8 s away (idle-growth x1), where a learnt 150 ms stop holds it. */
static void restart_measured(struct instance *in, enum restart_state before, uint64_t now_ns)
{
	if (!in->restart_sent_ns || in->rs != RS_IDLE ||
	    (before == RS_IDLE && (!in->restart_exit_seen || in->server_gone || !in->server_pid)))
		return;
	learn_note_restart(&in->learn, in->restart_stop_ms, (now_ns - in->restart_sent_ns) / NSEC_PER_MSEC,
			   in->usage_bytes);
	in->restart_sent_ns = 0;
	in->restart_stop_ms = 0;
	in->restart_exit_seen = false;
	instance_learnt(in);
}

struct step_walk {
	struct instance *in;
	uint64_t step;
};

static void set_proc_step(struct instance *in, struct proc *p, uint64_t step)
{
	if (p->death != PROC_ALIVE || p->rss_step_bytes == step)
		return;
	/* a process the kernel does not track (yet) gets its step at its next event */
	if (probes_set_rss_step(in->d->probes, (uint32_t)p->pid, step) == 0)
		p->rss_step_bytes = step;
}

static void step_one(struct proc *p, void *ctx)
{
	struct step_walk *w = ctx;

	if (instance_tree_has(w->in, p))
		set_proc_step(w->in, p, w->step);
}

/* Fine RSS events near the limit, coarse far from it: the step follows the headroom after each measurement. The
 * whole tree is walked only when the step changes (the headroom halved or doubled); a process that missed it (forked
 * since, or not yet in the kernel's map) is caught up at its own next event. */
static void tune_rss_step(struct instance *in, struct proc *event_proc)
{
	uint64_t step;

	if (!in->d->probes || !in->server_pid)
		return;
	step = rss_step_for_headroom(in->usage_bytes, in->limit_bytes, in->d->cfg->rss_step_bytes);
	if (step != in->rss_step_bytes) {
		struct step_walk w = { in, step };

		in->rss_step_bytes = step;
		proctree_foreach(in->d->pt, step_one, &w);
	} else if (event_proc) {
		set_proc_step(in, event_proc, step);
	}
}

void instance_sample(struct instance *in, uint64_t now_ns)
{
	enum restart_state rs_before = in->rs;
	struct mem_sample *s;

	instance_resolve_tick(in);
	restart_step(in, now_ns);
	restart_measured(in, rs_before, now_ns);
	instance_measure(in);
	tune_rss_step(in, NULL);
	forecast_rate_add(&in->rate, now_ns, in->usage_bytes, 1.0);
	forecast_rate_add(&in->own_rate, now_ns, in->own_bytes, 1.0);
	instance_settle_step(in, now_ns);
	instance_learn_flush(in, now_ns, false);
	if (in->reclaim_prev_ns && now_ns > in->reclaim_prev_ns)
		in->reclaim_rate = reclaim_rate_next(in->reclaim_rate, in->reclaim_count_prev, in->reclaim_count,
						     now_ns - in->reclaim_prev_ns);
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
		check_orphans(in, now_ns);
	}
	if (in->n_reaps)
		check_orphans(in, now_ns);
	update_forecast(in, now_ns);
	if (in->d->mode == MODE_RUN)
		prevent_run(in, now_ns);
}

void instance_on_rss(struct instance *in, struct proc *p, uint64_t now_ns)
{
	/* an RSS step of the server or its workers: sample now so that a generation's peak is not missed between
	 * two timer ticks */
	uint64_t event_rss = p->rss_bytes; /* the event's, before a refresh replaces it */

	if (!instance_tree_has(in, p))
		return;
	instance_keep_awake(in, now_ns);
	instance_measure(in);
	tune_rss_step(in, p);
	igen_rss_event(in, p, event_rss, now_ns);
	forecast_rate_add(&in->rate, now_ns, in->usage_bytes, 1.0);
	forecast_rate_add(&in->own_rate, now_ns, in->own_bytes, 1.0);
	instance_settle_step(in, now_ns);
	gen_sample(&in->gens, now_ns, in->usage_bytes);
	/* memory moves faster than the sampling timer: decide now. At most every 100 ms while usage is below the warn
	 * level (a burst of steps must not become a burst of decisions), but every step above it: the step that
	 * crosses the line arrives within 100 ms of the one before at any fast growth, and skipping it left the
	 * action to the next timer sample (bench/reaction.py: p90 300-400 ms instead of ms) */
	bool near = in->limit_bytes && (double)in->usage_bytes >= in->pp.warn_usage_fraction * (double)in->limit_bytes;
	/* a restart whose new server answers is over: end it now rather than at the next timer sample, so that the
	 * policy (which waits while a restart is under way) sees a resubmitted prompt climb back at once */
	if (in->rs == RS_STARTING && in->rs_answered) {
		enum restart_state rs_before = in->rs;

		restart_step(in, now_ns);
		restart_measured(in, rs_before, now_ns);
	}
	if (in->d->mode == MODE_RUN && (near || now_ns - in->last_rss_policy_ns > 100 * NSEC_PER_MSEC)) {
		in->last_rss_policy_ns = now_ns;
		update_forecast(in, now_ns);
		prevent_run(in, now_ns);
	}
}

void instance_on_reclaim(struct instance *in, uint64_t cgroup_id, uint64_t count, uint64_t now_ns)
{
	if (!cgroup_id || cgroup_id != in->cgroup_id)
		return;
	if (count > in->reclaim_count)
		in->reclaim_count = count;
	/* the cgroup reclaims at its limit: growth no RSS step showed (page cache, tmpfs, a process outside the
	 * server's tree) got it there. The timers run again, and the first sample comes at once */
	instance_keep_awake(in, now_ns);
}

void instance_on_new_proc(struct instance *in, struct proc *p, uint64_t now_ns)
{
	/* the server forked: its lineage changed, and a later `oomsentry scan` must be able to prove it */
	if (p && !instance_owns_proc(in, p) && instance_tree_has(in, p)) {
		instance_keep_awake(in, now_ns);
		schedule_orphan_check(in, now_ns);
	}
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
	instance_keep_awake(in, now_ns);
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
	rec_add_pid(&r, "PID", p->pid);
	rec_add(&r, "REASON", "%s", cause);
	rec_add_bytes(&r, "RSS_BYTES", p->rss_peak_bytes);
	rec_message(&r, "instance %s: ComfyUI server pid %d %s", in->ic->name, p->pid, cause);
	rec_emit(&r);
	if (in->running.prompt_id[0]) {
		gen_end(&in->gens, in->running.prompt_id, GEN_INTERRUPTED, now_ns, in->usage_bytes);
		saved_prompt_clear(&in->running);
	}
	/* what was known about this server's generations says nothing about its successor */
	gen_server_restarted(&in->gens, now_ns, 0);
	igen_models_unloaded(in);
	in->generations_completed = 0; /* counted since the server's start: the policy sees the restart */
	in->server_gone = true;
	in->fc_valid = false;
	in->settle.active = false;
	in->floor_valid = false; /* what /free could not release died with the server */
	schedule_orphan_check(in, now_ns);
	prevent_brake_release(in, "the server ended");
	/* a controlled restart is not a crash; its stop took this long to give the memory back */
	if (in->rs != RS_IDLE && p->pid == in->rs_old_pid) {
		if (in->restart_sent_ns) {
			in->restart_stop_ms = (now_ns - in->restart_sent_ns) / NSEC_PER_MSEC;
			in->restart_exit_seen = true;
		}
		return;
	}
	/* a gentle rung awaiting its effect did not make it: the server died first (the kernel, or a crash). Its
	 * memory coming back with the death is no credit to it. */
	if (in->ps.awaiting && in->ps.last_rung != POLICY_RUNG_RESTART && in->ps.last_rung != POLICY_RUNG_KILL)
		policy_record_outcome(&in->ps, in->ps.last_rung, false, 0, now_ns);
	if (crashloop_record_death(&in->cl, now_ns, &dth, &cr) == 1) {
		char causes[1024] = "";
		instance_rec(&r, in, REC_CRASH_LOOP, LOG_CRIT);
		rec_add_u64(&r, "DEATHS", cr.deaths_total);
		rec_add_ms(&r, "WINDOW_MS", cr.last_death_ns - cr.first_death_ns);
		for (size_t i = 0; i < cr.ndeaths; i++) {
			char one[DEATH_CAUSE_STR_MAX], rss[BYTES_STR_MAX], cg[BYTES_STR_MAX];
			size_t len = strlen(causes);
			snprintf(causes + len, sizeof(causes) - len, "%spid %d %s (RSS %s, cgroup %s)", i ? "; " : "",
				 cr.deaths[i].pid, death_cause_str(&cr.deaths[i].cause, one, sizeof(one)),
				 FMT_BYTES(rss, cr.deaths[i].rss_bytes_before),
				 FMT_BYTES(cg, cr.deaths[i].cgroup_usage_bytes_before));
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
	prevent_incident_begin(in, INCIDENT_TRIGGER_OOM_KILL, now_ns);
	incident_add_eventf(in->incident, mono_to_real_ns(now_ns), INCIDENT_EVENT_OOM_KILL, "OOM killer chose pid %d %s (RSS %s)",
			    victim->pid, victim->comm, bytes_str(victim->rss_at_oom_bytes, rss, sizeof(rss)));
	prevent_incident_finish(in, INCIDENT_OUTCOME_OOM_KILLED, "the kernel OOM killer acted", 0);
	{
		char lab[PATH_MAX + 16];
		metrics_labels(lab, sizeof(lab), "cgroup", victim->cgroup_dir, NULL);
		metrics_add_counter(METRIC_OOM_KILLS_TOTAL, lab, 1);
	}
}

/* work the samples and polls carry forward */
static bool instance_busy(const struct instance *in)
{
	return in->running.prompt_id[0] || in->snap.n || in->rs != RS_IDLE || in->snap.stop != SNAP_STOP_NONE ||
	       in->requeue_pending || in->settle.active || in->n_reaps || in->orphan_check_ns || in->ps.awaiting ||
	       in->brake_on || in->incident || in->learn_dirty || in->generation_just_ended || in->poll_busy ||
	       in->resubmit_busy;
}

bool instance_needs_timers(const struct instance *in, uint64_t now_ns)
{
	bool near = in->limit_bytes && (double)in->usage_bytes >= in->pp.warn_usage_fraction * (double)in->limit_bytes;

	/* without /ws nothing but a poll tells a queue change; without a known, answering server nothing but a
	 * poll finds it */
	if (!comfy_ws_connected(in->ws) || !in->server_pid || in->server_gone || !in->reachable)
		return true;
	if (instance_busy(in))
		return true;
	/* v1 tells when usage crosses the line, not when it climbs further above it (page cache can hold it there) */
	if (in->usage_efd >= 0 && in->raw_usage_bytes >= in->usage_line)
		return true;
	return near || now_ns < in->awake_until_ns;
}

/* a generation or other work whose memory the RSS steps measure; without /ws a generation's start is seen a poll
 * late, and its first peak with it */
static bool instance_rss_busy(const struct instance *in)
{
	return instance_busy(in) || !comfy_ws_connected(in->ws) || !in->reachable;
}

bool instance_wants_rss(const struct instance *in)
{
	struct rssarm_view v = {
		.server = in->server_pid && !in->server_gone,
		.busy = instance_rss_busy(in),
		.usage_bytes = in->use_cgroup ? MAX(in->usage_bytes, in->raw_usage_bytes) : in->usage_bytes,
		.limit_bytes = in->limit_bytes,
		.warn_fraction = in->pp.warn_usage_fraction,
		.rate_bps = forecast_rate_get(&in->rate),
	};

	return rssarm_wanted(&v);
}

bool instance_far_polled(const struct instance *in)
{
	/* only while the choice rests on the usage, and nothing but a read tells it: no v1 notification, idle (no
	 * timers sample it), and a limit far enough for a line; on both sides of the line, since nothing else says
	 * when usage falls back under it */
	return in->server_pid && !in->server_gone && in->arm_efd < 0 && !instance_rss_busy(in) && instance_rss_line(in);
}

void instance_far_check(struct instance *in, uint64_t now_ns)
{
	instance_measure(in);
	forecast_rate_add(&in->rate, now_ns, in->usage_bytes, 1.0);
}

void instance_on_usage_line(struct instance *in, uint64_t now_ns)
{
	bool warn = in->usage_efd >= 0 && memwatch_drain(in->usage_efd);
	bool arm = in->arm_efd >= 0 && memwatch_drain(in->arm_efd);

	if (!warn && !arm)
		return;
	/* the cgroup crossed a line without an RSS step of the server's tree saying so: look now */
	instance_keep_awake(in, now_ns);
	instance_sample(in, now_ns);
}

void instance_after_scan(struct instance *in, uint64_t now_ns)
{
	instance_keep_awake(in, now_ns);
	instance_locate_server(in, now_ns);
	instance_measure(in);
	check_orphans(in, now_ns);
	if (in->d->mode == MODE_RUN)
		prevent_say_unpreventable(in);
}

void instance_persist_lineage(struct instance *in)
{
	scan_persist_lineage(in);
}

void instance_carry_save(struct instance *in, uint64_t now_ns)
{
	carry_store_save(in, now_ns);
}

/* The ladder as the policy holds it: its level, the rung awaiting a verdict, the rungs in cooldown, a requeue owed. */
static void status_ladder(struct instance *in, FILE *out)
{
	uint64_t now = now_mono_ns();
	char cool[256] = "", id[4 * COMFY_PROMPT_ID_MAX];
	size_t n = 0;

	for (int i = 1; i < POLICY_RUNG_COUNT && n < sizeof(cool); i++) {
		uint64_t cd = in->pp.cooldown_ms[i] * NSEC_PER_MSEC;

		if (in->ps.acted[i] && now - in->ps.acted_ns[i] < cd)
			n += (size_t)snprintf(cool + n, sizeof(cool) - n, "%s%s %.1f s", n ? ", " : "",
					      policy_rung_name((enum policy_rung)i),
					      (double)(in->ps.acted_ns[i] + cd - now) / NSEC_PER_SEC);
	}
	fprintf(out, "  ladder: level %s; awaiting %s; in cooldown: %s; requeue owed: %s\n", policy_rung_name(in->ps.floor),
		in->ps.awaiting ? policy_rung_name(in->ps.last_rung) : "-", cool[0] ? cool : "-",
		/* a prompt id is whatever the client that queued it chose */
		in->requeue_pending ? utf8_escape_terminal(in->requeue.prompt_id, id, sizeof(id)) : "-");
}

void instance_status(struct instance *in, FILE *out)
{
	char usage[32], limit[32], esc[4 * PATH_MAX];
	const struct generation *g = gen_last(&in->gens);

	fprintf(out, "instance %s  %s  server pid %d  %s\n", in->ic->name, in->ic->url, in->server_pid,
		in->reachable ? "reachable" : "UNREACHABLE");
	fprintf(out, "  memory %s of %s (%s)\n", bytes_str(in->usage_bytes, usage, sizeof(usage)),
		bytes_str(in->limit_bytes, limit, sizeof(limit)),
		in->use_cgroup ? utf8_escape_terminal(in->cgroup_dir, esc, sizeof(esc)) : "machine");
	fprintf(out, "  generations %llu  last: %s\n", (unsigned long long)in->gens.total,
		g ? gen_status_to_string(g->status) : "-");
	if (in->fc_valid)
		fprintf(out, "  forecast: %s\n", in->fc.reason);
	fprintf(out, "  orphans %u (%s)  actions %llu  last action: %s\n", in->orphan_count,
		FMT_BYTES(usage, in->orphan_bytes), (unsigned long long)in->actions_total,
		in->last_action[0] ? utf8_escape_terminal(in->last_action, esc, sizeof(esc)) : "-");
	status_ladder(in, out);
}

int instance_scan(struct instance *in, uint64_t now_ns, bool reap)
{
	instance_locate_server(in, now_ns);
	return scan_instance_to_end(in, now_ns, reap);
}

bool instance_prekill(struct instance *in, const char *cgroup, uint64_t now_ns)
{
	const struct cg_mounts *m = &in->d->mounts;
	bool v1 = cg_mounts_memory_version(m) == CG_V1;

	if (!in->cgroup_dir[0] || !in->server_pid ||
	    !varlink_cgroup_contains(cgroup, cg_mounts_memory_root(m), v1 ? m->v1_memory_root : m->v2_root, in->cgroup_dir))
		return false;
	prevent_prekill(in, cgroup, now_ns);
	return true;
}

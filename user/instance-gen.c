// SPDX-License-Identifier: GPL-2.0
/* One instance's generations at any pace (issue 14): ComfyUI's /ws wakes the daemon on every queue change, each
 * generation is cut from the trace of measurements at the instants ComfyUI stamped in /history (not at the polls
 * that happened to see it), prompts that ran entirely between two polls are found by what left the pending list,
 * and the pending queue's next workflow is weighed against the models already loaded. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "comfy-client.h"
#include "comfy-ws.h"
#include "common.h"
#include "config.h"
#include "instance.h"
#include "instance-state.h"
#include "journal.h"
#include "log.h"
#include "context.h"
#include "locate.h"
#include "procfs.h"
#include "procfs-read.h"
#include "proctree.h"
#include "restart.h"

/* ComfyUI stamps with its own time.time(); on this host that is our realtime clock, read a moment apart */
#define STAMP_SKEW_MS 2000
/* history lookups for prompts that ran unseen, per poll: a deep queue flushed at once is caught up over polls */
#define UNSEEN_MAX 16

static uint64_t real_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

int igen_init(struct instance *in)
{
	in->trace = calloc(1, sizeof(*in->trace));
	if (!in->trace)
		return -ENOMEM;
	comfy_ws_make_client_id(in->ws_client_id, sizeof(in->ws_client_id));
	la_costs_init(&in->la_costs);
	la_loaded_clear(&in->la_loaded);
	return 0;
}

void igen_free(struct instance *in)
{
	free(in->unseen); /* its request went with the client's queue */
	in->unseen = NULL;
	free(in->trace);
	in->trace = NULL;
}

/* ---- the websocket ---- */

static void ws_message(void *userdata, const struct wsmsg *m, uint64_t now_ns)
{
	struct instance *in = userdata;

	(void)now_ns;
	if (wsmsg_wakes(m))
		in->ws_wake = true;
	/* the connection's own first status carries its sid and is sent outside the broadcasts' order */
	if (m->type == WSMSG_STATUS && m->has_queue_remaining && !m->sid[0])
		qtrack_status(&in->qt, m->queue_remaining);
	/* every execution event names the prompt the worker runs: the last resort's proof that the one before it left */
	if (m->type != WSMSG_STATUS && m->type != WSMSG_OTHER && m->prompt_id[0])
		qtrack_event(&in->qt, m->prompt_id, wsmsg_ends_prompt(m));
	if (m->type == WSMSG_PROGRESS && m->prompt_id[0]) {
		snprintf(in->ws_progress_prompt, sizeof(in->ws_progress_prompt), "%s", m->prompt_id);
		in->ws_progress_value = m->progress_value;
		in->ws_progress_max = m->progress_max;
	}
}

static void ws_state(void *userdata, enum comfy_ws_state st, const char *why, uint64_t now_ns)
{
	struct instance *in = userdata;
	struct rec r;

	(void)now_ns;
	if (st == COMFY_WS_CONNECTED) {
		in->ws_wake = true; /* whatever changed while we were not listening */
		qtrack_connected(&in->qt);
		/* reconnecting after a restart of the server is routine: the first connection is worth a record */
		if (in->ws_up_reported) {
			log_info("instance %s: websocket at %s connected again", in->ic->name, in->ic->url);
			return;
		}
		in->ws_up_reported = true;
		instance_rec(&r, in, REC_COMFY, LOG_NOTICE);
		rec_add(&r, "URL", "%s", in->ic->url);
		rec_add(&r, "WEBSOCKET", "connected");
		rec_message(&r, "instance %s: following ComfyUI's websocket at %s (client id %s): every queue change "
				"wakes the daemon to read /queue and /history",
			    in->ic->name, in->ic->url, in->ws_client_id);
		rec_emit(&r);
	} else if (st == COMFY_WS_DOWN) {
		qtrack_lost(&in->qt);
		/* comfy_ws reports a loss once until the next successful connection; one that worked before is
		 * being retried (the server restarts), one that never worked is the news: said once */
		if (in->ws_up_reported || in->ws_down_reported) {
			log_info("instance %s: websocket at %s lost (%s); polling /queue meanwhile, reconnecting with backoff",
				 in->ic->name, in->ic->url, why);
			return;
		}
		in->ws_down_reported = true;
		instance_rec(&r, in, REC_COMFY, LOG_WARNING);
		rec_add(&r, "URL", "%s", in->ic->url);
		rec_add(&r, "WEBSOCKET", "unavailable");
		rec_add(&r, "REASON", "%s", why);
		rec_message(&r, "instance %s: ComfyUI's websocket at %s is unavailable (%s); following generations by "
				"polling /queue and /history every %llu ms, retrying the websocket with backoff",
			    in->ic->name, in->ic->url, why, (unsigned long long)in->d->cfg->poll_interval_ms);
		rec_emit(&r);
	}
}

void igen_connect(struct instance *in, struct comfy_ws *ws)
{
	static const struct comfy_ws_callbacks cb = { .on_message = ws_message, .on_state = ws_state };
	int r;

	if (!in->ic->websocket) {
		log_info("instance %s: websocket off by configuration; polling /queue every %llu ms", in->ic->name,
			 (unsigned long long)in->d->cfg->poll_interval_ms);
		return;
	}
	if (!ws)
		return; /* the daemon said once that it has no websocket client */
	r = comfy_ws_connect(ws, in->ic->url, in->ic->auth_header, in->ws_client_id, &cb, in, &in->ws);
	if (r < 0)
		log_warn_errno(r, "instance %s: cannot follow the websocket of %s; polling /queue only", in->ic->name,
			       in->ic->url);
}

void igen_server_answers(struct instance *in)
{
	/* a finished prompt's `status` is how the snapshot learns in time that a stop must not resubmit it: a
	 * restarted server (a generation of 0.2 s, a last resort a second later) cannot wait out a backoff set by
	 * the loss of the one before */
	comfy_ws_retry_now(in->ws);
}

bool igen_take_wake(struct instance *in)
{
	bool w = in->ws_wake;

	in->ws_wake = false;
	return w;
}

void igen_measured(struct instance *in, uint64_t now_ns)
{
	if (in->trace)
		memtrace_add(in->trace, now_ns, in->usage_bytes);
}

void igen_rss_event(struct instance *in, struct proc *p, uint64_t rss_bytes, uint64_t ts_ns)
{
	uint64_t now = now_mono_ns(), counted, level;
	struct proc_stat st;

	if (!in->trace)
		return;
	/* read at once, the measurement just taken stands for the event, at the kernel's time of it as well as at
	 * its own: a release handled a millisecond later must still fall before the end stamp it preceded, not after
	 * the next generation's start */
	if (ts_ns + 2 * NSEC_PER_MSEC >= now) {
		if (ts_ns < now)
			memtrace_add(in->trace, ts_ns, in->usage_bytes);
		return;
	}
	/* what the measurement counted for p: the cgroup holds its RSS of now; the tree sum holds p->rss_bytes,
	 * refreshed from /proc for the server, the event's own for the others */
	if (in->use_cgroup) {
		if (procfs_read_stat(proctree_root(in->d->pt), p->pid, &st) < 0)
			return;
		counted = st.rss_pages * (uint64_t)sysconf(_SC_PAGESIZE);
	} else {
		counted = p->rss_bytes;
	}
	/* the usage now, less what this process did since the kernel reported it; a fall no further up than the
	 * trace already was (a usage read during a release still holds the pages being freed) */
	if (memtrace_event_level(in->trace, ts_ns, in->usage_bytes, counted, rss_bytes, &level) < 0)
		return;
	memtrace_add(in->trace, ts_ns, level);
}

/* ---- exact boundaries ---- */

/* The stamps of h on our monotonic clock; false when absent or implausible (another host's clock). */
static bool stamps(const struct comfy_history_item *h, uint64_t *start_ns, uint64_t *end_ns)
{
	/* a missing (0) stamp is refused by the conversion as out of range */
	return h->found && boundary_stamps_to_mono(h->start_ms, h->end_ms, real_now_ns(), now_mono_ns(), STAMP_SKEW_MS,
						   start_ns, end_ns) == 0;
}

void igen_exact(struct instance *in, const char *prompt_id, const struct comfy_history_item *h, uint64_t now_ns)
{
	uint64_t start_ns, end_ns;
	struct gen_window w;

	int r;

	if (!in->trace || !stamps(h, &start_ns, &end_ns)) {
		log_debug("instance %s: prompt %s has no usable stamps in /history (found %d, %lld..%lld): measured "
			  "between polls", in->ic->name, prompt_id, h->found, (long long)h->start_ms, (long long)h->end_ms);
		return;
	}
	/* the measurement of this very poll counts: it may be the first after the working set was dropped */
	r = memtrace_window(in->trace, start_ns, end_ns, MAX(now_ns, now_mono_ns()), &w);
	if (r == -ENODATA) {
		/* the trace begins after its start (the daemon started during it, or slept without timers when it
		 * was queued): the stamps still give its time, the live measurements its start level, and the trace
		 * what came after. The live end level is not used: it was read at the poll after the /history round
		 * trip, when the next prompt may have loaded its models already */
		const struct generation *g = gen_find(&in->gens, prompt_id);
		if (g && w.start_unmeasured) {
			uint64_t start = MIN(g->usage_start_bytes, w.usage_start_bytes);
			r = gen_set_window(&in->gens, prompt_id, start_ns, end_ns, start, MAX(w.peak_bytes, start),
					   w.usage_end_bytes, w.residual_bytes);
		} else if (g) {
			gen_set_window(&in->gens, prompt_id, start_ns, end_ns, g->usage_start_bytes, g->peak_bytes,
				       g->usage_end_bytes, g->residual_bytes);
		}
	} else if (r == 0)
		r = gen_set_window(&in->gens, prompt_id, start_ns, end_ns, w.usage_start_bytes, w.peak_bytes,
				   w.usage_end_bytes, w.residual_bytes);
	if (r < 0) {
		log_debug_errno(r, "instance %s: prompt %s not measured between its stamps", in->ic->name, prompt_id);
		return;
	}
	in->exact_generations++;
}

struct unseen {
	char id[COMFY_PROMPT_ID_MAX];
	struct comfy_history_item h;
	uint64_t start_ns, end_ns;
	bool stamped;
};

static int cmp_unseen(const void *a, const void *b)
{
	const struct unseen *x = a, *y = b;

	if (x->stamped != y->stamped)
		return x->stamped ? -1 : 1;
	return x->start_ns < y->start_ns ? -1 : x->start_ns > y->start_ns;
}

static bool in_queue(const struct comfy_queue *q, const char *id)
{
	for (size_t i = 0; i < q->n_pending; i++)
		if (!strcmp(q->pending[i].prompt_id, id))
			return true;
	for (size_t i = 0; i < q->n_running; i++)
		if (!strcmp(q->running[i].prompt_id, id))
			return true;
	return false;
}

static const struct la_prompt *cached_workflow(struct instance *in, const char *id)
{
	for (size_t i = 0; i < LA_PENDING_CACHE; i++)
		if (in->la_cache_id[i][0] && !strcmp(in->la_cache_id[i], id))
			return &in->la_cache[i];
	return NULL;
}

struct unseen_lookup {
	char ids[UNSEEN_MAX][COMFY_PROMPT_ID_MAX];
	size_t n_ids, next;
	struct unseen u[UNSEEN_MAX];
	size_t n;
	uint64_t now_ns;
	igen_then_fn then;
};

/* Every lookup answered: the generations in the order they ran. */
static void unseen_record(struct instance *in, struct unseen *u, size_t n, uint64_t now_ns)
{
	qsort(u, n, sizeof(*u), cmp_unseen);
	for (size_t i = 0; i < n; i++) {
		enum gen_status st = instance_history_status(&u[i].h);
		/* the residual may settle until the next one starts */
		uint64_t settle = i + 1 < n && u[i + 1].stamped ? u[i + 1].start_ns : MAX(now_ns, now_mono_ns());
		const struct la_prompt *wf = cached_workflow(in, u[i].id);
		struct gen_window w;

		if (u[i].stamped && in->trace && memtrace_window(in->trace, u[i].start_ns, u[i].end_ns, settle, &w) == 0) {
			instance_prompt_started(in, u[i].id);
			gen_start(&in->gens, u[i].id, u[i].start_ns, w.usage_start_bytes);
			gen_sample(&in->gens, u[i].end_ns, w.peak_bytes);
			gen_end(&in->gens, u[i].id, st, u[i].end_ns, w.residual_bytes);
			gen_set_window(&in->gens, u[i].id, u[i].start_ns, u[i].end_ns, w.usage_start_bytes, w.peak_bytes,
				       w.usage_end_bytes, w.residual_bytes);
			in->exact_generations++;
		} else {
			/* no stamps or no trace that far back: it ran, its memory is unknown */
			instance_prompt_started(in, u[i].id);
			gen_start(&in->gens, u[i].id, now_ns, in->usage_bytes);
			gen_end(&in->gens, u[i].id, st, now_ns, in->usage_bytes);
		}
		in->unseen_generations++;
		if (wf) {
			in->la_running = *wf;
			in->la_running_valid = true;
			in->la_loaded_before = in->la_loaded;
		} else {
			in->la_running_valid = false;
		}
		instance_generation_done(in, u[i].id, st, now_ns);
		in->la_running_valid = false;
	}
}

static void unseen_history_done(struct comfy_client *c, int r, void *ctx);

/* The next lookup on the loop; false when none is left (or none could start). */
static bool unseen_next(struct instance *in)
{
	struct unseen_lookup *l = in->unseen;

	while (l->next < l->n_ids)
		if (comfy_start_history_item(in->comfy, l->ids[l->next++], unseen_history_done, in) == 0)
			return true;
	return false;
}

static void unseen_history_done(struct comfy_client *c, int r, void *ctx)
{
	struct instance *in = ctx;
	struct unseen_lookup *l = in->unseen;
	const char *id = l->ids[l->next - 1];
	struct unseen *u = &l->u[l->n];

	/* gone from the queue without running (deleted by a client) leaves no history; a lookup that failed is a
	 * prompt whose memory stays unknown, as a synchronous one that failed was */
	if (comfy_take_history_item(c, r, id, &u->h) == 0 && u->h.found) {
		memcpy(u->id, id, sizeof(u->id)); /* both COMFY_PROMPT_ID_MAX, NUL-ended */
		u->stamped = stamps(&u->h, &u->start_ns, &u->end_ns);
		l->n++;
	}
	if (unseen_next(in))
		return;
	in->unseen = NULL;
	unseen_record(in, l->u, l->n, l->now_ns);
	l->then(in);
	free(l);
}

bool igen_unseen_start(struct instance *in, const struct comfy_queue *q, const char *ended_id, uint64_t now_ns,
		       igen_then_fn then)
{
	struct unseen_lookup *l;

	if (!in->n_seen_pending || in->unseen || !in->d->curl)
		return false;
	l = calloc(1, sizeof(*l));
	if (!l)
		return false;
	for (size_t i = 0; i < in->n_seen_pending && l->n_ids < UNSEEN_MAX; i++) {
		const char *id = in->seen_pending[i];

		if (in_queue(q, id) || (ended_id && !strcmp(id, ended_id)) || gen_find(&in->gens, id))
			continue;
		snprintf(l->ids[l->n_ids++], COMFY_PROMPT_ID_MAX, "%s", id);
	}
	l->now_ns = now_ns;
	l->then = then;
	in->unseen = l;
	if (l->n_ids && unseen_next(in))
		return true;
	in->unseen = NULL;
	free(l);
	return false;
}

/* ---- look-ahead ---- */

static const struct la_prompt *workflow(struct instance *in, const struct comfy_queue_item *it)
{
	const struct la_prompt *p = cached_workflow(in, it->prompt_id);
	size_t slot;

	if (p)
		return p;
	slot = in->la_cache_next++ % LA_PENDING_CACHE;
	if (la_parse_prompt(it->prompt_json, it->prompt_json ? strlen(it->prompt_json) : 0, &in->la_cache[slot]) < 0) {
		in->la_cache_id[slot][0] = 0;
		return NULL;
	}
	snprintf(in->la_cache_id[slot], sizeof(in->la_cache_id[slot]), "%s", it->prompt_id);
	return &in->la_cache[slot];
}

void igen_started(struct instance *in, const struct comfy_queue_item *it)
{
	const struct la_prompt *p = workflow(in, it);

	in->la_running_valid = p != NULL;
	if (p)
		in->la_running = *p;
	in->la_loaded_before = in->la_loaded;
}

void igen_ended(struct instance *in, const struct generation *g)
{
	int64_t leak;
	uint64_t load, excess, pixels;

	if (!in->la_running_valid || !g)
		return;
	if (g->status == GEN_SUCCESS && g->has_residual) {
		/* a /free that waited for it unloads its models when it ends, while its residual is measured: what it
		 * left then says nothing of what they cost */
		bool unloaded = in->free_pending_prompt[0] && !strcmp(in->free_pending_prompt, g->prompt_id);

		leak = in->fc_valid && in->fc.leak_suspected ? in->fc.leak_bytes_per_gen : 0;
		/* kept with the rest of what the instance learnt, across restarts of the server and the daemon */
		if (!unloaded && la_learn_generation(&in->la_costs, &in->la_running, &in->la_loaded_before,
						     g->growth_bytes, leak, in->gens.total) > 0)
			instance_learnt(in);
		/* its own working set: what it climbed above its start, less the models it loaded */
		load = la_load_bytes(&in->la_costs, &in->la_running, &in->la_loaded_before, NULL);
		excess = g->peak_bytes > g->usage_start_bytes + load ? g->peak_bytes - g->usage_start_bytes - load : 0;
		pixels = la_prompt_pixels(&in->la_running);
		if (excess && (!in->la_excess_bytes || pixels == in->la_excess_pixels || !pixels)) {
			in->la_excess_bytes = in->la_excess_bytes ? in->la_excess_bytes / 2 + excess / 2 : excess;
		} else if (excess) {
			/* another latent size: keep the newest pair, the forecast scales from it */
			in->la_excess_bytes = excess;
		}
		if (excess)
			in->la_excess_pixels = pixels;
	}
	/* interrupted or failed, its models were still loaded */
	la_loaded_add_prompt(&in->la_loaded, &in->la_running);
	in->la_running_valid = false;
}

void igen_models_unloaded(struct instance *in)
{
	la_loaded_clear(&in->la_loaded);
	la_loaded_clear(&in->la_loaded_before);
}

static const struct comfy_queue_item *next_pending(const struct comfy_queue *q)
{
	const struct comfy_queue_item *best = NULL;

	/* /queue lists ComfyUI's heap as it lies, not in run order: the lowest number runs first */
	for (size_t i = 0; i < q->n_pending; i++)
		if (!best || q->pending[i].number < best->number)
			best = &q->pending[i];
	return best;
}

static void report_lookahead(struct instance *in, const struct la_prompt *next)
{
	char peak[32], limit[32], after[32], models[512] = "";
	struct rec r;
	size_t n = 0;

	if (!strcmp(in->la_reported_id, in->la_next_id))
		return;
	snprintf(in->la_reported_id, sizeof(in->la_reported_id), "%s", in->la_next_id);
	for (size_t i = 0; i < next->n_models && n < sizeof(models) - 1; i++)
		n += (size_t)snprintf(models + n, sizeof(models) - n, "%s%s", i ? ", " : "", next->models[i].name);
	if (n >= sizeof(models))
		n = sizeof(models) - 1;
	instance_rec(&r, in, REC_FORECAST, LOG_NOTICE);
	rec_add_id(&r, "NEXT_PROMPT_ID", in->la_next_id);
	rec_add(&r, "NEXT_MODELS", "%s", models);
	rec_add_bytes(&r, "PREDICTED_PEAK_BYTES", in->la_fc.peak_bytes);
	rec_add_bytes(&r, "PEAK_AFTER_UNLOAD_BYTES", in->la_fc.peak_after_unload_bytes);
	rec_add_bytes(&r, "LOAD_BYTES", in->la_fc.load_bytes);
	rec_add_bytes(&r, "LIMIT_BYTES", in->limit_bytes);
	rec_add(&r, "NEXT_FITS", "%d", in->la_fc.fits);
	rec_add(&r, "UNLOAD_AT_BOUNDARY", "%d", in->la_fc.unload_at_boundary);
	bytes_str(in->la_fc.peak_bytes, peak, sizeof(peak));
	bytes_str(in->limit_bytes, limit, sizeof(limit));
	bytes_str(in->la_fc.peak_after_unload_bytes, after, sizeof(after));
	if (in->la_fc.unload_at_boundary)
		rec_message(&r, "instance %s: next prompt %.36s loads %s: beside the loaded models it would peak at %s of "
				"%s, alone at %s; unloading the models when the running prompt ends",
			    in->ic->name, in->la_next_id, models, peak, limit, after);
	else
		rec_message(&r, "instance %s: next prompt %.36s loads %s: it would peak at %s of %s even alone (%s)",
			    in->ic->name, in->la_next_id, models, peak, limit, after);
	rec_emit(&r);
}

void igen_queue_seen(struct instance *in, const struct comfy_queue *q, uint64_t now_ns, uint64_t usage_bytes)
{
	const struct comfy_queue_item *it = next_pending(q);
	const struct generation *running = gen_running(&in->gens), *last = gen_last(&in->gens);
	const struct la_prompt *next;
	struct la_loaded loaded = in->la_loaded;
	uint64_t base = usage_bytes;

	(void)now_ns;
	in->n_seen_pending = 0;
	for (size_t i = 0; i < q->n_pending && in->n_seen_pending < SEEN_PENDING_MAX; i++)
		snprintf(in->seen_pending[in->n_seen_pending++], COMFY_PROMPT_ID_MAX, "%s", q->pending[i].prompt_id);
	/* parse the next few in run order ahead of time: a prompt that runs unseen keeps its models known */
	for (size_t k = 0, lo_done = 0; k < LA_PENDING_CACHE && k < q->n_pending; k++) {
		const struct comfy_queue_item *pick = NULL;
		int64_t floor = k ? q->pending[lo_done].number : INT64_MIN;
		for (size_t i = 0; i < q->n_pending; i++)
			if ((k == 0 || q->pending[i].number > floor) && (!pick || q->pending[i].number < pick->number))
				pick = &q->pending[i];
		if (!pick)
			break;
		lo_done = (size_t)(pick - q->pending);
		workflow(in, pick);
	}

	in->la_fc_valid = false;
	if (!it || !in->limit_bytes)
		return;
	next = workflow(in, it);
	if (!next)
		return;
	if (running && in->la_running_valid) {
		/* after the running prompt: what it leaves (its transient gone) and the models it loads, resident; the
		 * generic forecast does not know that it loads a checkpoint it has never seen */
		base = running->usage_start_bytes + la_load_bytes(&in->la_costs, &in->la_running, &in->la_loaded_before,
								  NULL);
		if (in->fc_valid && in->fc.predicted_residual_after_running_bytes > base)
			base = in->fc.predicted_residual_after_running_bytes;
		la_loaded_add_prompt(&loaded, &in->la_running);
	} else if (running) {
		return; /* what the running prompt holds is not known */
	} else if (last && last->status != GEN_RUNNING && last->has_residual && last->epoch == in->gens.epoch &&
		   last->residual_bytes < base) {
		/* nothing ran when /queue answered, but ComfyUI takes the next prompt at once: a measurement after
		 * the reply may hold its first load already, and that load is what is being forecast. Between two
		 * prompts the level is what the last one left */
		base = last->residual_bytes;
	}
	if (la_forecast_next(&in->la_costs, &loaded, next, base, in->limit_bytes, in->la_excess_bytes,
			     in->la_excess_pixels, in->fcp.margin, &in->la_fc) < 0)
		return;
	in->la_fc_valid = in->la_fc.known;
	snprintf(in->la_next_id, sizeof(in->la_next_id), "%s", it->prompt_id);
	if (in->la_fc_valid && !in->la_fc.fits)
		report_lookahead(in, next);
}

bool igen_next_needs_unload(const struct instance *in)
{
	return in->la_fc_valid && in->la_fc.unload_at_boundary && in->la_loaded.n + (in->la_running_valid ? 1 : 0) > 0;
}

void instance_connect_ws(struct instance *in, struct comfy_ws *ws)
{
	igen_connect(in, ws);
}

void instance_ws_wake(struct instance *in, uint64_t now_ns)
{
	/* a queue change that comes while a poll is answered may be later than what that poll sees (a prompt POSTed
	 * meanwhile): the wake waits for the poll to end instead of being lost until the next poll_interval, so the
	 * snapshot the last resort works from holds it one round trip later (the loop calls this every iteration) */
	if (in->poll_busy && in->rs == RS_IDLE && in->snap.stop == SNAP_STOP_NONE)
		return;
	if (!igen_take_wake(in))
		return;
	instance_keep_awake(in, now_ns);
	if (in->snap.stop != SNAP_STOP_NONE)
		restart_queue_changed(in); /* a resubmission round owns the API: it looks instead of the poll */
	/* a boundary just passed: measure before the HTTP round trip, while the next prompt has not climbed yet,
	 * so that the trace holds the residual between the two */
	instance_measure(in);
	instance_poll(in, now_ns);
}

uint64_t igen_running_peak_bytes(const struct instance *in)
{
	const struct generation *running = gen_running(&in->gens);
	uint64_t load, excess = in->la_excess_bytes, pixels;
	unsigned unknown = 0;

	if (!running || !in->la_running_valid || !in->la_excess_bytes)
		return 0;
	load = la_load_bytes(&in->la_costs, &in->la_running, &in->la_loaded_before, &unknown);
	if (unknown)
		return 0;
	pixels = la_prompt_pixels(&in->la_running);
	if (pixels && in->la_excess_pixels)
		excess = (uint64_t)((double)excess * ((double)pixels / (double)in->la_excess_pixels));
	return running->usage_start_bytes + load + excess;
}

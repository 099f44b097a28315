// SPDX-License-Identifier: GPL-2.0
/*
 * The prevention ladder. Everything here is arithmetic on struct policy_input; the daemon does the I/O.
 *
 * Shape of a pressure episode:
 *   pressure (usage >= act, forecast "will not fit", sustained reclaim, PSI)
 *     -> first rung >= floor that is enabled and can help in this situation, unless in cooldown
 *     -> awaiting verification: nothing fires until the rung's deadline (idempotent on every sample)
 *     -> worked (usage fell by >= min_freed_fraction of the limit, or pressure gone at the deadline):
 *          floor stays, the same rung may fire again after its cooldown
 *        did not work: floor = that rung + 1, the next rung is chosen in the same call
 *   pressure cleared (usage below act - hysteresis and no other signal) -> floor reset to the start.
 *
 * ComfyUI applies /free flags only between prompts, so a /free sent while busy is judged after the running
 * generation ends; a generation that will not survive on its own needs /interrupt, which cannot wait for that.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "policy.h"

static const char *const rung_names[POLICY_RUNG_COUNT] = {
	[POLICY_RUNG_NONE] = "none",
	[POLICY_RUNG_REAP_ORPHANS] = "reap_orphans",
	[POLICY_RUNG_FREE_MODELS] = "free_models",
	[POLICY_RUNG_FREE_ALL] = "free_all",
	[POLICY_RUNG_INTERRUPT_REQUEUE] = "interrupt_requeue",
	[POLICY_RUNG_RESTART] = "restart",
	[POLICY_RUNG_KILL] = "kill",
};

const char *policy_rung_name(enum policy_rung rung)
{
	if ((unsigned)rung >= POLICY_RUNG_COUNT)
		return "unknown";
	return rung_names[rung];
}

int policy_rung_from_name(const char *name, enum policy_rung *ret_rung)
{
	if (!name || !ret_rung)
		return -EINVAL;
	for (unsigned i = 0; i < POLICY_RUNG_COUNT; i++)
		if (strcmp(name, rung_names[i]) == 0) {
			*ret_rung = (enum policy_rung)i;
			return 0;
		}
	return -EINVAL;
}

struct policy_params policy_params_default(void)
{
	struct policy_params p = {
		.act_usage_fraction = 0.90,
		.warn_usage_fraction = 0.80,
		.hysteresis_fraction = 0.05,
		.act_on_forecast = true,
		.min_forecast_confidence = 0.0,
		.act_on_reclaim = true,
		.reclaim_events_per_s = 100.0,
		.reclaim_sustain_ms = 3000,
		.psi_some_avg10_pct = 0.0,
		.climb_min_bytes = MIB(8),
		.min_orphan_bytes = MIB(64),
		.min_freed_fraction = 0.05,
		.negligible_freed_fraction = 0.01,
		.verify_after_generation_ms = 5000,
		.verify_busy_max_ms = 30 * 60 * 1000,
	};

	for (unsigned r = POLICY_RUNG_REAP_ORPHANS; r < POLICY_RUNG_COUNT; r++) {
		p.enabled[r] = r != POLICY_RUNG_KILL;
		p.cooldown_ms[r] = 30000;
	}
	p.verify_ms[POLICY_RUNG_REAP_ORPHANS] = 10000;
	p.verify_ms[POLICY_RUNG_FREE_MODELS] = 5000;
	p.verify_ms[POLICY_RUNG_FREE_ALL] = 5000;
	p.verify_ms[POLICY_RUNG_INTERRUPT_REQUEUE] = 30000;
	p.verify_ms[POLICY_RUNG_RESTART] = 120000;
	p.verify_ms[POLICY_RUNG_KILL] = 5000;
	return p;
}

static bool in_range(double v, double lo, double hi)
{
	return isfinite(v) && v >= lo && v <= hi;
}

int policy_params_validate(const struct policy_params *p)
{
	if (!p)
		return -EINVAL;
	if (!in_range(p->act_usage_fraction, 0.0, 1.0) || p->act_usage_fraction <= 0.0)
		return -EINVAL;
	if (!in_range(p->warn_usage_fraction, 0.0, p->act_usage_fraction))
		return -EINVAL;
	if (!in_range(p->hysteresis_fraction, 0.0, p->act_usage_fraction) ||
	    p->hysteresis_fraction >= p->act_usage_fraction)
		return -EINVAL;
	if (!in_range(p->min_forecast_confidence, 0.0, 1.0))
		return -EINVAL;
	if (p->act_on_reclaim && (!isfinite(p->reclaim_events_per_s) || p->reclaim_events_per_s <= 0.0))
		return -EINVAL;
	if (!isfinite(p->psi_some_avg10_pct) || p->psi_some_avg10_pct < 0.0)
		return -EINVAL;
	if (!in_range(p->min_freed_fraction, 0.0, 1.0) || p->min_freed_fraction <= 0.0)
		return -EINVAL;
	if (!in_range(p->negligible_freed_fraction, 0.0, p->min_freed_fraction))
		return -EINVAL;
	return 0;
}

void policy_state_init(struct policy_state *s)
{
	if (s)
		*s = (struct policy_state){ .floor = POLICY_RUNG_NONE, .last_rung = POLICY_RUNG_NONE };
}

/* ---- saturating time and size arithmetic: inputs are untrusted, wrap-around would fire or block rungs ---- */

static uint64_t ms_to_ns(uint64_t ms)
{
	return ms > UINT64_MAX / NSEC_PER_MSEC ? UINT64_MAX : ms * NSEC_PER_MSEC;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* A clock that went backwards counts as no time elapsed: keeps cooldowns and deadlines conservative. */
static uint64_t elapsed_ns(uint64_t now, uint64_t then)
{
	return now > then ? now - then : 0;
}

static uint64_t fraction_of(double f, uint64_t base)
{
	double v = f * (double)base;

	if (!(v > 0.0))
		return 0;
	if (v >= 18446744073709551616.0) /* 2^64 */
		return UINT64_MAX;
	return (uint64_t)v;
}

static bool is_free_rung(enum policy_rung r)
{
	return r == POLICY_RUNG_FREE_MODELS || r == POLICY_RUNG_FREE_ALL;
}

/* ---- reason text ---- */

struct sbuf {
	char *buf;
	size_t size;
	size_t len;
};

static void sb_init(struct sbuf *sb, char *buf, size_t size)
{
	*sb = (struct sbuf){ .buf = buf, .size = size };
	if (size)
		buf[0] = '\0';
}

_printf_(2, 3) static void sb_printf(struct sbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (sb->len + 1 >= sb->size)
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->len, sb->size - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sb->len = MIN(sb->len + (size_t)n, sb->size - 1);
}

#define BYTES_BUF 32
static const char *fmt_bytes(uint64_t b, char buf[static BYTES_BUF])
{
	if (b >= GIB(1)) {
		/* Integer rounding to 1/100 GiB: exact for any uint64_t and bounded in length. */
		uint64_t whole = b >> 30, hundredths = ((b & (GIB(1) - 1)) * 100 + GIB(1) / 2) >> 30;

		if (hundredths >= 100) {
			whole++;
			hundredths -= 100;
		}
		snprintf(buf, BYTES_BUF, "%" PRIu64 ".%02" PRIu64 " GiB", whole, hundredths);
	} else if (b >= MIB(1))
		snprintf(buf, BYTES_BUF, "%" PRIu64 " MiB", b >> 20);
	else if (b >= KIB(1))
		snprintf(buf, BYTES_BUF, "%" PRIu64 " KiB", b >> 10);
	else
		snprintf(buf, BYTES_BUF, "%" PRIu64 " B", b);
	return buf;
}

static double ns_to_s(uint64_t ns)
{
	return (double)ns / (double)NSEC_PER_SEC;
}

/* ---- signals ---- */

struct signals {
	bool limit_known;
	double usage_fraction;
	bool over_act;       /* usage >= act now, without hysteresis */
	bool usage_pressure; /* with hysteresis */
	bool warn;
	bool climbing;
	double reclaim_rate;
	uint64_t reclaim_for_ns;
	bool reclaim_pressure;
	double psi;
	bool psi_pressure;
	bool forecast_usable;
	bool next_wont_fit;
	bool running_wont_fit;
	bool running_at_risk; /* busy and the running generation is expected to cross the limit */
	bool leak;
	bool server_restarted; /* generations_completed went down */
	bool pressure;
};

static void compute_signals(const struct policy_params *p, struct policy_state *s, const struct policy_input *in,
			    struct signals *sig)
{
	double conf;

	*sig = (struct signals){ 0 };

	sig->limit_known = in->limit_bytes > 0;
	if (sig->limit_known) {
		sig->usage_fraction = (double)in->usage_bytes / (double)in->limit_bytes;
		sig->over_act = sig->usage_fraction >= p->act_usage_fraction;
		if (sig->over_act)
			s->usage_pressure = true;
		else if (sig->usage_fraction < p->act_usage_fraction - p->hysteresis_fraction)
			s->usage_pressure = false;
		sig->warn = p->warn_usage_fraction > 0.0 && sig->usage_fraction >= p->warn_usage_fraction;
	} else
		s->usage_pressure = false;
	sig->usage_pressure = s->usage_pressure;

	sig->climbing = s->have_prev && in->usage_bytes > s->prev_usage_bytes &&
			in->usage_bytes - s->prev_usage_bytes >= MAX(p->climb_min_bytes, (uint64_t)1);

	sig->reclaim_rate = isfinite(in->reclaim_events_per_s) && in->reclaim_events_per_s > 0.0 ?
				    in->reclaim_events_per_s : 0.0;
	if (p->act_on_reclaim && sig->reclaim_rate >= p->reclaim_events_per_s) {
		if (!s->reclaim_high) {
			s->reclaim_high = true;
			s->reclaim_since_ns = in->now_ns;
		}
		sig->reclaim_for_ns = elapsed_ns(in->now_ns, s->reclaim_since_ns);
		sig->reclaim_pressure = sig->reclaim_for_ns >= ms_to_ns(p->reclaim_sustain_ms);
	} else
		s->reclaim_high = false;

	sig->psi = isfinite(in->psi_some_avg10_pct) ? in->psi_some_avg10_pct : -1.0;
	sig->psi_pressure = p->psi_some_avg10_pct > 0.0 && sig->psi >= p->psi_some_avg10_pct;

	conf = isfinite(in->confidence) ? MAX(0.0, MIN(1.0, in->confidence)) : 0.0;
	sig->forecast_usable = p->act_on_forecast && in->forecast_known && conf >= p->min_forecast_confidence;
	sig->next_wont_fit = sig->forecast_usable && !in->next_fits;
	sig->running_wont_fit = sig->forecast_usable && in->busy && !in->running_fits;
	/* Past the act line and still rising is the fallback when no forecast vouches for the running generation. */
	sig->running_at_risk = in->busy && (sig->running_wont_fit ||
					    (sig->over_act && sig->climbing &&
					     !(sig->forecast_usable && in->running_fits)));
	sig->leak = sig->forecast_usable && in->leak_suspected;

	sig->server_restarted = s->have_generations && in->generations_completed < s->last_generations;

	sig->pressure = sig->usage_pressure || sig->reclaim_pressure || sig->psi_pressure || sig->next_wont_fit ||
			sig->running_wont_fit;
}

static void describe_signals(struct sbuf *sb, const struct policy_params *p, const struct policy_input *in,
			     const struct signals *sig)
{
	char b1[BYTES_BUF], b2[BYTES_BUF];

	if (sig->limit_known) {
		sb_printf(sb, "usage %s of %s (%.1f%%)", fmt_bytes(in->usage_bytes, b1),
			  fmt_bytes(in->limit_bytes, b2), sig->usage_fraction * 100.0);
		if (sig->over_act)
			sb_printf(sb, " >= act %.0f%%", p->act_usage_fraction * 100.0);
		else if (sig->usage_pressure)
			sb_printf(sb, ", above the %.0f%% release level",
				  (p->act_usage_fraction - p->hysteresis_fraction) * 100.0);
		else if (sig->warn)
			sb_printf(sb, " >= warn %.0f%%", p->warn_usage_fraction * 100.0);
		if (sig->over_act && sig->climbing)
			sb_printf(sb, " and climbing");
	} else
		sb_printf(sb, "usage %s (limit unknown)", fmt_bytes(in->usage_bytes, b1));

	if (sig->reclaim_pressure)
		sb_printf(sb, "; memcg reclaim %.0f/s for %.1f s", sig->reclaim_rate, ns_to_s(sig->reclaim_for_ns));
	if (sig->psi_pressure)
		sb_printf(sb, "; PSI some avg10 %.1f%%", sig->psi);
	if (in->orphan_count > 0)
		sb_printf(sb, "; %" PRIu32 " orphan%s hold %s", in->orphan_count, in->orphan_count == 1 ? "" : "s",
			  fmt_bytes(in->orphan_bytes, b1));
	if (!in->comfy_reachable)
		sb_printf(sb, "; ComfyUI API unreachable");
	else if (in->busy) {
		sb_printf(sb, "; busy");
		if (in->progress_known && isfinite(in->progress_fraction))
			sb_printf(sb, " at %.0f%%", MAX(0.0, MIN(1.0, in->progress_fraction)) * 100.0);
		if (in->queue_pending)
			sb_printf(sb, ", %" PRIu32 " queued", in->queue_pending);
	} else
		sb_printf(sb, "; idle");
	if (sig->running_wont_fit)
		sb_printf(sb, "; running generation will not fit");
	if (sig->next_wont_fit) {
		sb_printf(sb, "; next generation will not fit");
		if (in->predicted_next_peak_bytes)
			sb_printf(sb, " (peak %s)", fmt_bytes(in->predicted_next_peak_bytes, b1));
	}
	if (sig->leak)
		sb_printf(sb, "; leak suspected");
	if (sig->forecast_usable && (sig->next_wont_fit || sig->running_wont_fit || sig->leak) &&
	    in->forecast_reason && in->forecast_reason[0])
		sb_printf(sb, "; forecast: %s", in->forecast_reason);
}

/* ---- choosing a rung ---- */

static bool in_cooldown(const struct policy_params *p, const struct policy_state *s, enum policy_rung r,
			uint64_t now, uint64_t *ret_left_ns)
{
	uint64_t cd = ms_to_ns(p->cooldown_ms[r]), el;

	*ret_left_ns = 0;
	if (!s->acted[r])
		return false;
	el = elapsed_ns(now, s->acted_ns[r]);
	if (el >= cd)
		return false;
	*ret_left_ns = cd - el;
	return true;
}

/* Whether rung r can help in this situation; rungs that cannot are skipped, not tried. */
static bool rung_helps(const struct policy_params *p, const struct policy_state *s, const struct policy_input *in,
		       const struct signals *sig, enum policy_rung r)
{
	switch (r) {
	case POLICY_RUNG_REAP_ORPHANS:
		return in->orphan_count > 0 && in->orphan_bytes > 0 && in->orphan_bytes >= p->min_orphan_bytes;
	case POLICY_RUNG_FREE_MODELS:
		/* A suspected leak is what free_memory is for: go straight to free_all when it is available. */
		if (sig->leak && p->enabled[POLICY_RUNG_FREE_ALL])
			return false;
		__attribute__((fallthrough));
	case POLICY_RUNG_FREE_ALL:
		/* A /free while the running generation is at risk would only land after it died. */
		return in->comfy_reachable && !s->free_futile && !sig->running_at_risk && !in->free_cannot_make_room;
	case POLICY_RUNG_INTERRUPT_REQUEUE:
		return in->comfy_reachable && in->busy && sig->running_at_risk && !in->free_cannot_make_room;
	case POLICY_RUNG_RESTART:
		return in->restart_configured;
	case POLICY_RUNG_KILL:
		return true;
	default:
		return false;
	}
}

static enum policy_rung choose_rung(const struct policy_params *p, const struct policy_state *s,
				    const struct policy_input *in, const struct signals *sig, enum policy_rung from)
{
	for (unsigned r = MAX((unsigned)from, (unsigned)POLICY_RUNG_REAP_ORPHANS); r < POLICY_RUNG_COUNT; r++)
		if (p->enabled[r] && rung_helps(p, s, in, sig, (enum policy_rung)r))
			return (enum policy_rung)r;
	return POLICY_RUNG_NONE;
}

/* Fill the decision for rung r and advance the state as if it was carried out (also in dry-run). */
static void act(const struct policy_params *p, struct policy_state *s, const struct policy_input *in,
		enum policy_rung r, bool proactive, struct policy_decision *ret)
{
	uint64_t now = in->now_ns;

	ret->rung = r;
	ret->proactive = proactive;
	ret->unload_models = r == POLICY_RUNG_FREE_MODELS || r == POLICY_RUNG_FREE_ALL ||
			     r == POLICY_RUNG_INTERRUPT_REQUEUE;
	ret->free_memory = r == POLICY_RUNG_FREE_ALL || r == POLICY_RUNG_INTERRUPT_REQUEUE;
	ret->deferred = is_free_rung(r) && in->busy;
	ret->requeue = (r == POLICY_RUNG_INTERRUPT_REQUEUE && !in->running_requeued) ||
		       (r == POLICY_RUNG_RESTART && in->busy);

	s->acted[r] = true;
	s->acted_ns[r] = now;
	s->last_rung = r;
	s->last_act_ns = now;
	s->last_act_usage_bytes = in->usage_bytes;
	s->last_act_generations = in->generations_completed;
	s->reported = false;
	s->reported_ok = false;
	s->reported_freed_bytes = 0;
	/* A proactive free is routine hygiene: nothing to escalate, and it must not block the ladder. */
	s->awaiting = !proactive || r == POLICY_RUNG_RESTART;
	s->await_proactive = proactive;
	s->await_generation_end = ret->deferred && s->awaiting;
	if (s->await_generation_end) {
		s->deadline_ns = 0;
		s->cap_ns = sat_add(now, ms_to_ns(p->verify_busy_max_ms));
	} else {
		s->deadline_ns = sat_add(now, ms_to_ns(p->verify_ms[r]));
		s->cap_ns = s->deadline_ns;
	}
	ret->deadline_ns = s->awaiting ? s->deadline_ns : 0;
}

static void describe_action(struct sbuf *sb, const struct policy_input *in, const struct signals *sig,
			    const struct policy_decision *d)
{
	char b[BYTES_BUF];

	sb_printf(sb, "%s", policy_rung_name(d->rung));
	switch (d->rung) {
	case POLICY_RUNG_REAP_ORPHANS:
		sb_printf(sb, " (%" PRIu32 " orphan%s, %s)", in->orphan_count, in->orphan_count == 1 ? "" : "s",
			  fmt_bytes(in->orphan_bytes, b));
		break;
	case POLICY_RUNG_FREE_MODELS:
	case POLICY_RUNG_FREE_ALL:
		if (d->rung == POLICY_RUNG_FREE_ALL && sig && sig->leak)
			sb_printf(sb, " (leak suspected)");
		sb_printf(sb, d->deferred ? " now, applied when the running prompt ends" : " now, idle: applies at once");
		break;
	case POLICY_RUNG_INTERRUPT_REQUEUE:
		sb_printf(sb, " (with free_all flags)");
		if (!d->requeue)
			sb_printf(sb, ", not requeued: it was requeued once already");
		break;
	case POLICY_RUNG_RESTART:
		sb_printf(sb, d->requeue ? " (queue and running prompt preserved)" : " (queue preserved)");
		break;
	case POLICY_RUNG_KILL:
		sb_printf(sb, " (largest tracked process)");
		break;
	default:
		break;
	}
	sb_printf(sb, ": ");
}

/* Judge the action awaiting verification. Returns true when it is settled (ret->outcome filled). */
static bool verify(const struct policy_params *p, struct policy_state *s, const struct policy_input *in,
		   const struct signals *sig, struct policy_decision *ret, struct sbuf *sb)
{
	enum policy_rung r = s->last_rung;
	uint64_t now = in->now_ns, base, min_freed, freed;
	bool gen_ended, judge = false, ok = false, superseded = false;
	char b[BYTES_BUF];

	if ((unsigned)r >= POLICY_RUNG_COUNT || r == POLICY_RUNG_NONE) {
		/* A corrupted state must not wedge the ladder. */
		s->awaiting = false;
		return true;
	}

	gen_ended = !in->busy || in->generation_just_ended || in->generations_completed != s->last_act_generations;
	if (s->await_generation_end && gen_ended) {
		s->await_generation_end = false;
		s->deadline_ns = MIN(sat_add(now, ms_to_ns(p->verify_after_generation_ms)), s->cap_ns);
	}

	freed = s->last_act_usage_bytes > in->usage_bytes ? s->last_act_usage_bytes - in->usage_bytes : 0;
	if (s->reported && s->reported_ok)
		freed = MAX(freed, s->reported_freed_bytes);
	base = in->limit_bytes ? in->limit_bytes : s->last_act_usage_bytes;
	min_freed = MAX(fraction_of(p->min_freed_fraction, base), (uint64_t)1);

	if (s->await_proactive) {
		/* Proactive actions only need to finish; a restart finishes when the server comes back. */
		if (sig->server_restarted || now >= s->deadline_ns || (s->reported && !s->reported_ok)) {
			s->awaiting = false;
			ret->outcome.rung = r;
			ret->outcome.ok = !(s->reported && !s->reported_ok) &&
					  (sig->server_restarted || freed >= min_freed);
			ret->outcome.freed_bytes = freed;
			sb_printf(sb, "proactive %s %s; ", policy_rung_name(r),
				  ret->outcome.ok ? "done" : "not confirmed");
			return true;
		}
		return false;
	}

	if (s->reported && !s->reported_ok) {
		judge = true;
		ok = false;
	} else if (s->await_generation_end) {
		if (now >= s->cap_ns) {
			judge = true;
			ok = freed >= min_freed || !sig->pressure;
		} else if (sig->running_at_risk && is_free_rung(r)) {
			/* The deferred /free lands only after the running generation, which will not survive: move
			 * on if a stronger rung can act now. The flags stay set in ComfyUI either way. */
			enum policy_rung next = choose_rung(p, s, in, sig, POLICY_RUNG_INTERRUPT_REQUEUE);
			uint64_t left;

			if (next != POLICY_RUNG_NONE && !in_cooldown(p, s, next, now, &left))
				superseded = true;
		}
	} else if (freed >= min_freed) {
		judge = true;
		ok = true;
	} else if (now >= s->deadline_ns) {
		judge = true;
		ok = !sig->pressure;
	}

	if (!judge && !superseded)
		return false;

	s->awaiting = false;
	s->await_generation_end = false;
	ret->outcome.rung = r;
	ret->outcome.ok = ok && !superseded;
	ret->outcome.escalated = !ret->outcome.ok;
	ret->outcome.freed_bytes = freed;

	if (superseded) {
		s->floor = MAX(s->floor, POLICY_RUNG_INTERRUPT_REQUEUE);
		sb_printf(sb, "%s superseded, the running generation will not fit; ", policy_rung_name(r));
		return true;
	}

	sb_printf(sb, "%s freed %s in %.1f s", policy_rung_name(r), fmt_bytes(freed, b),
		  ns_to_s(elapsed_ns(now, s->last_act_ns)));
	if (s->reported && !s->reported_ok)
		sb_printf(sb, ", reported failed");
	if (ok) {
		sb_printf(sb, ": worked; ");
		if (r == POLICY_RUNG_RESTART || r == POLICY_RUNG_KILL)
			s->free_futile = false;
		return true;
	}
	sb_printf(sb, ": did not work, escalating; ");
	s->floor = MAX(s->floor, (enum policy_rung)(r + 1));
	if (r == POLICY_RUNG_FREE_ALL && freed < fraction_of(p->negligible_freed_fraction, base) &&
	    !(s->reported && !s->reported_ok))
		s->free_futile = true;
	return true;
}

static bool try_proactive(const struct policy_params *p, struct policy_state *s, const struct policy_input *in,
			  struct policy_decision *ret, struct sbuf *sb)
{
	uint64_t left;

	/* Restart "between prompts": when idle, or at the generation boundary even if the next prompt has already
	 * started (a busy queue may never be idle); then the just-started prompt is requeued with its prompt_id. */
	if (p->restart_every_generations > 0 && p->enabled[POLICY_RUNG_RESTART] && in->restart_configured &&
	    (!in->busy || in->generation_just_ended) &&
	    !in_cooldown(p, s, POLICY_RUNG_RESTART, in->now_ns, &left)) {
		uint64_t mark = s->restart_mark_valid && s->restart_mark <= in->generations_completed ? s->restart_mark
											      : 0;

		if (in->generations_completed - mark >= p->restart_every_generations) {
			act(p, s, in, POLICY_RUNG_RESTART, true, ret);
			s->restart_mark_valid = true;
			s->restart_mark = in->generations_completed;
			describe_action(sb, in, NULL, ret);
			sb_printf(sb, "proactive, %" PRIu64 " generations since the last restart (every %" PRIu32 ")",
				  in->generations_completed - mark, p->restart_every_generations);
			return true;
		}
	}

	/* Once per completed generation; generations_completed dedupes a repeated edge when the caller counts. */
	if (p->free_after_each_generation && in->generation_just_ended && in->comfy_reachable &&
	    p->enabled[POLICY_RUNG_FREE_MODELS] &&
	    !(in->generations_completed > 0 && s->free_mark_valid && s->free_mark == in->generations_completed)) {
		act(p, s, in, POLICY_RUNG_FREE_MODELS, true, ret);
		s->free_mark_valid = true;
		s->free_mark = in->generations_completed;
		describe_action(sb, in, NULL, ret);
		sb_printf(sb, "proactive, after generation %" PRIu64, in->generations_completed);
		return true;
	}
	return false;
}

int policy_decide(const struct policy_params *p, struct policy_state *s, const struct policy_input *in,
		  struct policy_decision *ret)
{
	struct signals sig;
	struct sbuf sb;
	uint64_t left;
	int r;

	if (!ret)
		return -EINVAL;
	*ret = (struct policy_decision){ .rung = POLICY_RUNG_NONE, .outcome.rung = POLICY_RUNG_NONE };
	sb_init(&sb, ret->reason, sizeof(ret->reason));
	if (!p || !s || !in) {
		sb_printf(&sb, "invalid arguments");
		return -EINVAL;
	}
	r = policy_params_validate(p);
	if (r < 0) {
		sb_printf(&sb, "invalid policy parameters");
		return r;
	}
	if ((unsigned)s->floor >= POLICY_RUNG_COUNT + 1)
		s->floor = POLICY_RUNG_NONE;

	ret->dry_run = p->dry_run;
	if (p->dry_run)
		sb_printf(&sb, "[dry-run] ");

	compute_signals(p, s, in, &sig);
	ret->pressure = sig.pressure;
	ret->warn = sig.warn;
	if (sig.server_restarted) {
		/* A fresh server: what /free could not release may be gone, and the proactive counters restart. */
		s->free_futile = false;
		s->restart_mark_valid = false;
		s->free_mark_valid = false;
	}

	if (s->awaiting && !verify(p, s, in, &sig, ret, &sb)) {
		ret->awaiting = true;
		ret->deadline_ns = s->await_generation_end ? 0 : s->deadline_ns;
		sb_printf(&sb, "awaiting %s verification ", policy_rung_name(s->last_rung));
		if (s->await_generation_end)
			sb_printf(&sb, "until the running prompt ends: ");
		else
			sb_printf(&sb, "for %.1f s more: ", ns_to_s(elapsed_ns(s->deadline_ns, in->now_ns)));
		describe_signals(&sb, p, in, &sig);
		goto done;
	}

	if (!sig.pressure) {
		if (s->floor != POLICY_RUNG_NONE) {
			s->floor = POLICY_RUNG_NONE;
			sb_printf(&sb, "pressure cleared, ladder reset; ");
		}
		if (!try_proactive(p, s, in, ret, &sb)) {
			sb_printf(&sb, "no pressure: ");
			describe_signals(&sb, p, in, &sig);
			goto done;
		}
		sb_printf(&sb, "; ");
		describe_signals(&sb, p, in, &sig);
		goto done;
	}

	enum policy_rung rung = choose_rung(p, s, in, &sig, s->floor);
	if (rung == POLICY_RUNG_NONE) {
		ret->exhausted = true;
		sb_printf(&sb, "nothing left to try");
		if (!in->restart_configured)
			sb_printf(&sb, " (restart: no method configured");
		else
			sb_printf(&sb, " (restart: %s", p->enabled[POLICY_RUNG_RESTART] ? "tried" : "disabled");
		sb_printf(&sb, ", kill: %s): ", p->enabled[POLICY_RUNG_KILL] ? "tried" : "disabled");
		describe_signals(&sb, p, in, &sig);
		goto done;
	}
	if (in_cooldown(p, s, rung, in->now_ns, &left)) {
		ret->cooldown = true;
		sb_printf(&sb, "%s in cooldown for %.1f s more: ", policy_rung_name(rung), ns_to_s(left));
		describe_signals(&sb, p, in, &sig);
		goto done;
	}
	act(p, s, in, rung, false, ret);
	describe_action(&sb, in, &sig, ret);
	describe_signals(&sb, p, in, &sig);

done:
	s->have_prev = true;
	s->prev_usage_bytes = in->usage_bytes;
	s->have_generations = true;
	s->last_generations = in->generations_completed;
	return ret->rung != POLICY_RUNG_NONE ? 1 : 0;
}

int policy_record_outcome(struct policy_state *s, enum policy_rung rung, bool ok, uint64_t freed_bytes,
			  uint64_t now_ns)
{
	if (!s || (unsigned)rung >= POLICY_RUNG_COUNT || rung == POLICY_RUNG_NONE)
		return -EINVAL;
	if (!s->awaiting || s->last_rung != rung)
		return -ENOENT;
	if (now_ns < s->last_act_ns)
		return -ESTALE;
	s->reported = true;
	s->reported_ok = ok;
	s->reported_freed_bytes = ok ? freed_bytes : 0;
	return 0;
}

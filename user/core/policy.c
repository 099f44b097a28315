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
 *
 * Over all of it stands the decision rule: the time to the limit at the present growth against what each rung
 * needs to give memory back on this instance. A rung that will not take effect in time is passed over, a rung in
 * cooldown is skipped, an awaited rung that will be late gives way, and when nothing takes effect in time the
 * last resort fires now: cooldowns and verifications bound flapping, never safety.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "policy.h"
#include "units.h"

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
	p.tte_default_ms[POLICY_RUNG_REAP_ORPHANS] = 5000;
	p.tte_default_ms[POLICY_RUNG_FREE_MODELS] = 3000;
	p.tte_default_ms[POLICY_RUNG_FREE_ALL] = 3000;
	p.tte_default_ms[POLICY_RUNG_INTERRUPT_REQUEUE] = 3000;
	p.tte_default_ms[POLICY_RUNG_RESTART] = 5000;
	p.tte_default_ms[POLICY_RUNG_KILL] = 1000;
	p.tte_margin_fraction = 0.5;
	p.tte_margin_ms = 1000;
	p.look_lag_floor_ms = 10;
	p.brake = true;
	p.restart_at_boundary = true;
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
	if (!in_range(p->tte_margin_fraction, 0.0, 100.0))
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

#define BYTES_BUF BYTES_STR_MAX
static const char *fmt_bytes(uint64_t b, char buf[static BYTES_BUF])
{
	return bytes_str(b, buf, BYTES_BUF);
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
	/* time to the limit */
	double growth;         /* bytes/s, >= 0 */
	bool bounded;          /* growth expected to stop below the limit */
	uint64_t ttl_ns;       /* UINT64_MAX: not in sight */
	enum policy_rung last_resort; /* restart, else kill, else NONE */
	bool ttl_pressure;     /* the last resort's deadline: the limit no farther than it needs (from the warn line) */
};

/* ---- the decision rule: time to the limit against time to effect ---- */

static uint64_t tte_of(const struct policy_params *p, const struct policy_input *in, enum policy_rung r)
{
	if ((unsigned)r >= POLICY_RUNG_COUNT)
		return POLICY_TTE_UNKNOWN;
	return in->tte_ns[r] ? in->tte_ns[r] : ms_to_ns(p->tte_default_ms[r]);
}

/* What a rung needs before the limit: its time to effect with the margin; UINT64_MAX when unknown. */
static uint64_t required_ns(const struct policy_params *p, uint64_t tte)
{
	double v;

	if (tte == POLICY_TTE_UNKNOWN)
		return UINT64_MAX;
	v = (double)tte * (1.0 + p->tte_margin_fraction);
	if (!(v < 18e18))
		return UINT64_MAX;
	return sat_add((uint64_t)v, ms_to_ns(p->tte_margin_ms));
}

static uint64_t rung_required_ns(const struct policy_params *p, const struct policy_input *in, enum policy_rung r)
{
	return required_ns(p, tte_of(p, in, r));
}

/* Takes effect before the limit, with margin. */
static bool in_time(const struct policy_params *p, const struct policy_input *in, const struct signals *sig,
		    enum policy_rung r)
{
	return sig->ttl_ns == UINT64_MAX || rung_required_ns(p, in, r) < sig->ttl_ns;
}

uint64_t policy_look_margin_ns(const struct policy_params *p, uint64_t event_lag_ns)
{
	return MAX(ms_to_ns(p->look_lag_floor_ms), event_lag_ns);
}

static uint64_t with_fraction(const struct policy_params *p, uint64_t tte)
{
	double v;

	if (tte == POLICY_TTE_UNKNOWN)
		return UINT64_MAX;
	v = (double)tte * (1.0 + p->tte_margin_fraction);
	return v < 18e18 ? (uint64_t)v : UINT64_MAX;
}

/* What the last resort needs before the limit: its deadline's horizon, counted from now, so the time until the
 * daemon looks again (input.next_look_ns) is in it: a decision not taken now is taken at the next look at the
 * earliest, and memory grows meanwhile. On a fresh start a stop gains nothing but the prompt's end, so it comes at
 * the latest moment the daemon can still make: the stop's own time to effect, the next look and that look's lag
 * (policy_look_margin_ns), not tte_margin_ms. A deadline shorter than the last resort's SIGTERM grace is met by a
 * SIGKILL at once, so the stop's time to effect is the kill's; a SIGTERM stop's learnt time is no shorter, and
 * stands in until a kill was measured. */
static uint64_t last_resort_required_ns(const struct policy_params *p, const struct policy_input *in,
					const struct signals *sig)
{
	uint64_t look, kill, killed_by;

	if (sig->last_resort == POLICY_RUNG_NONE)
		return 0;
	if (!in->fresh_start)
		return sat_add(rung_required_ns(p, in, sig->last_resort), in->next_look_ns);
	look = sat_add(policy_look_margin_ns(p, in->event_lag_ns), in->next_look_ns);
	kill = in->kill_tte_ns ? in->kill_tte_ns : tte_of(p, in, sig->last_resort);
	killed_by = sat_add(with_fraction(p, kill), look);
	/* a restart at a deadline beyond its SIGTERM grace sends SIGTERM and waits: its own time to effect */
	if (sig->last_resort == POLICY_RUNG_RESTART && in->last_resort_grace_ns && killed_by >= in->last_resort_grace_ns)
		return MAX(killed_by, sat_add(with_fraction(p, tte_of(p, in, sig->last_resort)), look));
	return killed_by;
}

static bool is_gentle(enum policy_rung r)
{
	return r == POLICY_RUNG_FREE_MODELS || r == POLICY_RUNG_FREE_ALL || r == POLICY_RUNG_INTERRUPT_REQUEUE;
}

/* Growth expected to stop at stop_bytes (a peak predicted from history, the running prompt's end) is a bet. It is
 * taken only while it can be refuted in time: once usage passes stop_bytes still growing at the present rate, the
 * last resort must still take effect before the limit. Otherwise the bet would be the guarantee's last word, and a
 * prompt unlike those before it (bigger, slower, loading more) reaches the kernel first. Without a last resort
 * there is no deadline to protect and every bet stands. */
static bool bet_refutable(const struct policy_params *p, const struct policy_input *in, const struct signals *sig,
			  double stop_bytes)
{
	double beyond_s;

	if (sig->last_resort == POLICY_RUNG_NONE || !(sig->growth > 0.0))
		return true;
	if (stop_bytes >= (double)in->limit_bytes)
		return false;
	beyond_s = ((double)in->limit_bytes - stop_bytes) / sig->growth;
	return beyond_s * 1e9 > (double)last_resort_required_ns(p, in, sig);
}

static void compute_ttl(const struct policy_params *p, const struct policy_input *in, struct signals *sig)
{
	uint64_t headroom;
	double secs;

	sig->last_resort = p->enabled[POLICY_RUNG_RESTART] && in->restart_configured ? POLICY_RUNG_RESTART :
			   p->enabled[POLICY_RUNG_KILL]                               ? POLICY_RUNG_KILL :
											    POLICY_RUNG_NONE;
	sig->growth = isfinite(in->growth_bytes_per_s) && in->growth_bytes_per_s > 0.0 ? in->growth_bytes_per_s : 0.0;
	sig->ttl_ns = UINT64_MAX;
	if (!sig->limit_known)
		return;
	headroom = in->limit_bytes > in->usage_bytes ? in->limit_bytes - in->usage_bytes : 0;
	/* A generation whose peak this instance's history predicts below the limit stops growing there; one that
	 * ends before its present growth reaches the limit stops growing at its end (the next one is the
	 * forecast's business), unless the forecast says it will not fit (a reload of its models on a high floor
	 * also takes longer than prompts usually do). */
	sig->bounded = in->bound_bytes && in->usage_bytes < in->bound_bytes && in->bound_bytes < in->limit_bytes &&
		       bet_refutable(p, in, sig, (double)in->bound_bytes);
	if (in->busy && in->running_ends_in_ns && sig->growth > 0.0 && !sig->running_wont_fit) {
		double stop_at = (double)in->usage_bytes + sig->growth * ((double)in->running_ends_in_ns / 1e9);

		if (stop_at < (double)in->limit_bytes && bet_refutable(p, in, sig, stop_at))
			sig->bounded = true;
	}
	if (headroom == 0)
		sig->ttl_ns = 0;
	else if (sig->growth > 0.0 && !sig->bounded) {
		secs = (double)headroom / sig->growth;
		sig->ttl_ns = secs * 1e9 < 18e18 ? (uint64_t)(secs * 1e9) : UINT64_MAX;
	}
	/* The last resort's deadline: later it would take effect after the limit. Before it, growth may still stop
	 * by itself (a generation climbing to its peak extrapolates to the limit within seconds at any pace), and
	 * gentler rungs get their chance. Below the warn line a fast climb is most often a model load that stops
	 * by itself (a bound from history says so where there is history). */
	sig->ttl_pressure = sig->warn && sig->last_resort != POLICY_RUNG_NONE && sig->ttl_ns != UINT64_MAX &&
			    sig->ttl_ns <= last_resort_required_ns(p, in, sig);
}

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

	compute_ttl(p, in, sig);

	sig->pressure = sig->usage_pressure || sig->reclaim_pressure || sig->psi_pressure || sig->next_wont_fit ||
			sig->running_wont_fit || sig->ttl_pressure;
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
	if (sig->ttl_ns != UINT64_MAX)
		sb_printf(sb, "; limit in %.1f s at %s/s", ns_to_s(sig->ttl_ns), fmt_bytes((uint64_t)sig->growth, b1));
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
		/* On a fresh start it would only run the prompt again the same way. */
		return in->comfy_reachable && in->busy && sig->running_at_risk && !in->free_cannot_make_room &&
		       !in->fresh_start;
	case POLICY_RUNG_RESTART:
		return in->restart_configured;
	case POLICY_RUNG_KILL:
		return true;
	default:
		return false;
	}
}

struct choice {
	enum policy_rung rung; /* NONE: nothing fires */
	bool brake;            /* a gentle rung too slow on its own, with the brake */
	bool urgent;           /* nothing gentler takes effect before the limit: the last resort, now */
	bool at_boundary;      /* the restart waits for the running generation to end */
	bool held;             /* a fresh start: the last resort waits for its deadline */
	bool cooldown;         /* a rung that would help was skipped for its cooldown */
	bool helpful;          /* some enabled rung could help */
};

static bool brake_ok(const struct policy_params *p, const struct policy_input *in, const struct signals *sig,
		     enum policy_rung r)
{
	/* The brake buys time for a rung too slow on its own whose effect time is known, while the last resort
	 * stays in reach: every sample checks again, and at the last resort's deadline a late rung gives way. */
	return p->brake && in->brake_available && is_gentle(r) && tte_of(p, in, r) != POLICY_TTE_UNKNOWN &&
	       !in_time(p, in, sig, r) && sig->last_resort != POLICY_RUNG_NONE &&
	       in_time(p, in, sig, sig->last_resort);
}

/* The decision rule. Notes why rungs were passed over into sb (may be NULL). */
static struct choice choose(const struct policy_params *p, const struct policy_state *s, const struct policy_input *in,
			    const struct signals *sig, enum policy_rung from, struct sbuf *sb)
{
	struct choice c = { .rung = POLICY_RUNG_NONE };
	enum policy_rung last = POLICY_RUNG_NONE, slow = POLICY_RUNG_NONE;
	uint64_t left;

	/* At the deadline the last resort is there whatever the escalation level: a restart judged a failure once
	 * is still the one stop that keeps the queue */
	if (sig->ttl_pressure && sig->last_resort != POLICY_RUNG_NONE)
		from = MIN(from, sig->last_resort);
	for (unsigned u = MAX((unsigned)from, (unsigned)POLICY_RUNG_REAP_ORPHANS); u < POLICY_RUNG_COUNT; u++) {
		enum policy_rung r = (enum policy_rung)u;
		bool cd;

		if (!p->enabled[r] || !rung_helps(p, s, in, sig, r))
			continue;
		c.helpful = true;
		if (r == POLICY_RUNG_RESTART || r == POLICY_RUNG_KILL)
			last = last == POLICY_RUNG_NONE ? r : last;
		/* The first prompt of a fresh server: a stop before the deadline would end a prompt that may still
		 * stop below the limit, and free nothing else; its cooldown does not matter then. */
		if ((r == POLICY_RUNG_RESTART || r == POLICY_RUNG_KILL) && in->fresh_start && in->busy &&
		    sig->running_at_risk && !sig->ttl_pressure) {
			c.held = true;
			return c;
		}
		cd = in_cooldown(p, s, r, in->now_ns, &left);
		if (cd) {
			c.cooldown = true;
			if (sb)
				sb_printf(sb, "%s in cooldown for %.1f s, skipped; ", policy_rung_name(r), ns_to_s(left));
			continue;
		}
		/* Before the last resort's deadline every rung gets its chance (one too slow on its own with the
		 * brake where there is one); at it, only the last resort or a stronger rung that takes effect in
		 * time: a gentler one, even in time itself, would leave the last resort late should it fail. */
		if (!sig->ttl_pressure || (r >= sig->last_resort && in_time(p, in, sig, r))) {
			/* Not in the middle of a prompt unless the deadline says so */
			if (r == POLICY_RUNG_RESTART && p->restart_at_boundary && in->busy && !in->generation_just_ended &&
			    !sig->running_at_risk && !sig->ttl_pressure) {
				c.at_boundary = true;
				return c;
			}
			c.rung = r;
			c.brake = brake_ok(p, in, sig, r);
			/* at the deadline a restart stops at once from the snapshot: asking the server for its queue
			 * first (and draining) takes longer than the stop-to-release time the deadline counts on */
			c.urgent = sig->ttl_pressure && r == POLICY_RUNG_RESTART;
			return c;
		}
		if (slow == POLICY_RUNG_NONE)
			slow = r;
		if (sb) {
			uint64_t tte = tte_of(p, in, r);

			if (r < sig->last_resort && in_time(p, in, sig, r))
				sb_printf(sb, "%s needs %.1f s, limit in %.1f s, too late for the %s should it fail; ",
					  policy_rung_name(r), ns_to_s(tte), ns_to_s(sig->ttl_ns),
					  policy_rung_name(sig->last_resort));
			else if (tte == POLICY_TTE_UNKNOWN)
				sb_printf(sb, "%s: time to effect unknown, limit in %.1f s; ", policy_rung_name(r),
					  ns_to_s(sig->ttl_ns));
			else
				sb_printf(sb, "%s needs %.1f s, limit in %.1f s; ", policy_rung_name(r), ns_to_s(tte),
					  ns_to_s(sig->ttl_ns));
		}
	}
	if (last == POLICY_RUNG_NONE) {
		/* No last resort configured: the gentlest rung that helps, late or not, beats doing nothing. */
		c.rung = slow;
		return c;
	}
	/* At the deadline nothing that can act now takes effect in time: the kernel would act first, and the last
	 * resort fires now, whatever its cooldown. Waiting for another rung's cooldown to end is no option: should
	 * that rung then fail, the last resort would come after its deadline. */
	if (!sig->ttl_pressure)
		return c;
	c.rung = last;
	c.urgent = true;
	return c;
}

/* Fill the decision for rung r and advance the state as if it was carried out (also in dry-run). */
static void act(const struct policy_params *p, struct policy_state *s, const struct policy_input *in,
		enum policy_rung r, bool proactive, bool brake, struct policy_decision *ret)
{
	uint64_t now = in->now_ns, tte = tte_of(p, in, r);

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
	/* A proactive free while another action awaits its verdict leaves that verdict alone. */
	if (proactive && r != POLICY_RUNG_RESTART && s->awaiting) {
		ret->deadline_ns = 0;
		return;
	}
	s->last_rung = r;
	s->last_act_ns = now;
	s->last_act_usage_bytes = in->usage_bytes;
	s->last_act_generations = in->generations_completed;
	s->reported = false;
	s->reported_ok = false;
	s->reported_freed_bytes = 0;
	s->effect_at_ns = tte == POLICY_TTE_UNKNOWN ? UINT64_MAX : sat_add(now, tte);
	s->braking = brake;
	s->brake_until_ns = brake ? sat_add(now, required_ns(p, tte)) : 0;
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
	bool gen_ended, judge = false, ok = false, superseded = false, late = false, braked_out = false;
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
		if (sig->server_restarted || now >= s->deadline_ns || (s->reported && !s->reported_ok) ||
		    sig->ttl_pressure) {
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
			if (choose(p, s, in, sig, POLICY_RUNG_INTERRUPT_REQUEUE, NULL).rung != POLICY_RUNG_NONE)
				superseded = true;
		}
	} else if (in->outcome_pending && now < s->cap_ns) {
		/* the caller measures the effect at the moment it happens and reports it: a drop seen before that
		 * (a transient ending, a sample before ComfyUI let go) is not the verdict */
	} else if (freed >= min_freed) {
		judge = true;
		ok = true;
	} else if (now >= s->deadline_ns) {
		judge = true;
		ok = !sig->pressure;
	}

	/* Awaiting never holds back a faster rung: at the last resort's deadline a gentle rung whose effect is not
	 * due in time (or overdue) gives way. */
	uint64_t remaining = is_free_rung(r) && s->await_generation_end ? tte_of(p, in, r) :
			     s->effect_at_ns > now			   ? s->effect_at_ns - now :
									     0;
	if (!judge && !superseded && is_gentle(r) && sig->ttl_pressure &&
	    (remaining == 0 || required_ns(p, remaining) >= sig->ttl_ns)) {
		superseded = true;
		late = true;
	}
	/* The brake is held for the rung's time to effect (with margin), no longer: a climb held just above usage
	 * may be the very prompt whose end a deferred /free waits for, and it hardly moves while braked. Past that
	 * time the rung gives way and the ladder goes on, with the brake let go. */
	if (!judge && !superseded && s->braking && now >= s->brake_until_ns) {
		superseded = true;
		late = true;
		braked_out = true;
	}
	/* A gentle rung chosen while the limit was far (at a generation boundary, say) that the climb since has made
	 * too slow on its own gets the brake as it would have had when chosen now: the last resort still in reach
	 * and not yet at its deadline. */
	if (!judge && !superseded && !s->braking && p->brake && in->brake_available && is_gentle(r) &&
	    !sig->ttl_pressure && remaining != 0 && remaining != POLICY_TTE_UNKNOWN &&
	    required_ns(p, remaining) >= sig->ttl_ns && sig->last_resort != POLICY_RUNG_NONE &&
	    in_time(p, in, sig, sig->last_resort)) {
		s->braking = true;
		s->brake_until_ns = sat_add(now, required_ns(p, remaining));
		sb_printf(sb, "memory.high brake on, %s too slow on its own (needs %.1f s, limit in %.1f s); ",
			  policy_rung_name(r), ns_to_s(required_ns(p, remaining)), ns_to_s(sig->ttl_ns));
	}

	/* Nor does awaiting a restart's (or kill's) verdict: prevent.c asks the policy only once a stop is over (the
	 * new server answers), and a fresh server climbing back fast may not let usage show the drop that judges it
	 * before the next deadline; its time to effect may still be the 5 s default, far longer than the stop took. */
	if (!judge && !superseded && !is_gentle(r) && sig->ttl_pressure) {
		judge = true;
		ok = freed >= min_freed;
	}

	if (!judge && !superseded)
		return false;

	s->awaiting = false;
	s->await_generation_end = false;
	s->braking = false;
	ret->outcome.rung = r;
	ret->outcome.ok = ok && !superseded;
	ret->outcome.escalated = !ret->outcome.ok;
	ret->outcome.freed_bytes = freed;

	if (braked_out) {
		s->floor = MAX(s->floor, (enum policy_rung)(r + 1));
		sb_printf(sb, "%s gives way, it did not take effect in the time the memory.high brake held for it; ",
			  policy_rung_name(r));
		return true;
	}
	if (late) {
		s->floor = MAX(s->floor, (enum policy_rung)(r + 1));
		sb_printf(sb, "%s gives way, it would take effect after the limit (in %.1f s); ", policy_rung_name(r),
			  ns_to_s(sig->ttl_ns));
		return true;
	}
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
			  bool free_only, struct policy_decision *ret, struct sbuf *sb)
{
	uint64_t left;

	/* Restart "between prompts": when idle, or at the generation boundary even if the next prompt has already
	 * started (a busy queue may never be idle); then the just-started prompt is requeued with its prompt_id. */
	if (!free_only && p->restart_every_generations > 0 && p->enabled[POLICY_RUNG_RESTART] && in->restart_configured &&
	    (!in->busy || in->generation_just_ended) &&
	    !in_cooldown(p, s, POLICY_RUNG_RESTART, in->now_ns, &left)) {
		uint64_t mark = s->restart_mark_valid && s->restart_mark <= in->generations_completed ? s->restart_mark
											      : 0;

		if (in->generations_completed - mark >= p->restart_every_generations) {
			act(p, s, in, POLICY_RUNG_RESTART, true, false, ret);
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
		act(p, s, in, POLICY_RUNG_FREE_MODELS, true, false, ret);
		s->free_mark_valid = true;
		s->free_mark = in->generations_completed;
		describe_action(sb, in, NULL, ret);
		sb_printf(sb, "proactive, after generation %" PRIu64, in->generations_completed);
		return true;
	}

	/* The next prompt's models will not fit beside the loaded ones: unload them at the boundary rather than let
	 * the load climb into the limit in the middle of the next generation. Once per generation. */
	if (!free_only && in->next_needs_unload && in->comfy_reachable && p->enabled[POLICY_RUNG_FREE_MODELS] &&
	    !(s->unload_mark_valid && s->unload_mark == in->generations_completed)) {
		act(p, s, in, POLICY_RUNG_FREE_MODELS, true, false, ret);
		s->unload_mark_valid = true;
		s->unload_mark = in->generations_completed;
		describe_action(sb, in, NULL, ret);
		sb_printf(sb, "proactive, the next prompt's models will not fit beside the loaded ones");
		return true;
	}
	return false;
}

int policy_decide(const struct policy_params *p, struct policy_state *s, const struct policy_input *in,
		  struct policy_decision *ret)
{
	struct signals sig;
	struct sbuf sb;
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
		s->unload_mark_valid = false;
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
		/* free_after_each_generation is after each generation, also while a pressure action awaits its verdict
		 * (not while a restart is under way; a look-ahead unload is what the awaited /free does anyway) */
		if (s->last_rung != POLICY_RUNG_RESTART && s->last_rung != POLICY_RUNG_KILL) {
			struct sbuf pb;
			char pbuf[160];

			sb_init(&pb, pbuf, sizeof(pbuf));
			if (try_proactive(p, s, in, true, ret, &pb))
				sb_printf(&sb, "; and %s", pbuf);
		}
		goto done;
	}

	if (!sig.pressure) {
		if (s->floor != POLICY_RUNG_NONE) {
			s->floor = POLICY_RUNG_NONE;
			sb_printf(&sb, "pressure cleared, ladder reset; ");
		}
		if (!try_proactive(p, s, in, false, ret, &sb)) {
			sb_printf(&sb, "no pressure: ");
			describe_signals(&sb, p, in, &sig);
			goto done;
		}
		sb_printf(&sb, "; ");
		describe_signals(&sb, p, in, &sig);
		goto done;
	}

	struct sbuf notes;
	char notes_buf[POLICY_REASON_MAX / 2];
	sb_init(&notes, notes_buf, sizeof(notes_buf));
	struct choice ch = choose(p, s, in, &sig, s->floor, &notes);
	enum policy_rung rung = ch.rung;

	if (ch.at_boundary) {
		ret->at_boundary = true;
		sb_printf(&sb, "%srestart at the end of the running generation: ", notes_buf);
		describe_signals(&sb, p, in, &sig);
		goto done;
	}
	if (ch.held) {
		ret->held = true;
		sb_printf(&sb, "%sthe first prompt of a fresh server, from a clean start: nothing but its own end makes "
			  "room, the %s waits for its deadline: ", notes_buf, policy_rung_name(sig.last_resort));
		describe_signals(&sb, p, in, &sig);
		goto done;
	}
	if (rung == POLICY_RUNG_NONE && ch.cooldown) {
		ret->cooldown = true;
		sb_printf(&sb, "%sall that would help is cooling down: ", notes_buf);
		describe_signals(&sb, p, in, &sig);
		goto done;
	}
	if (rung == POLICY_RUNG_NONE) {
		ret->exhausted = true;
		sb_printf(&sb, "%s", notes_buf);
		sb_printf(&sb, "nothing left to try");
		if (!in->restart_configured)
			sb_printf(&sb, " (restart: no method configured");
		else
			sb_printf(&sb, " (restart: %s", p->enabled[POLICY_RUNG_RESTART] ? "tried" : "disabled");
		sb_printf(&sb, ", kill: %s): ", p->enabled[POLICY_RUNG_KILL] ? "tried" : "disabled");
		describe_signals(&sb, p, in, &sig);
		goto done;
	}
	act(p, s, in, rung, false, ch.brake, ret);
	ret->urgent = ch.urgent;
	sb_printf(&sb, "%s", notes_buf);
	if (ch.urgent)
		sb_printf(&sb, "last resort now, nothing else takes effect before the limit: ");
	else if (ch.brake)
		sb_printf(&sb, "with the memory.high brake, too slow on its own: ");
	describe_action(&sb, in, &sig, ret);
	describe_signals(&sb, p, in, &sig);

done:
	ret->ttl_ns = sig.ttl_ns;
	ret->last_resort_needs_ns = last_resort_required_ns(p, in, &sig);
	ret->brake = s->awaiting && s->braking;
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

static double rate_or_zero(double v)
{
	return isfinite(v) && v > 0.0 ? v : 0.0;
}

double policy_growth_answered(bool shared, double cgroup_bytes_per_s, double own_bytes_per_s,
			      double others_max_bytes_per_s)
{
	double own = rate_or_zero(own_bytes_per_s);

	if (!shared)
		return rate_or_zero(cgroup_bytes_per_s);
	return own >= rate_or_zero(others_max_bytes_per_s) && own > 0.0 ? MAX(rate_or_zero(cgroup_bytes_per_s), own)
									  : own;
}

bool policy_escalate_stop(const struct policy_params *p, uint64_t usage_bytes, uint64_t limit_bytes,
			  double growth_bytes_per_s, uint64_t grace_left_ns, uint64_t next_look_ns,
			  uint64_t event_lag_ns)
{
	double growth = rate_or_zero(growth_bytes_per_s);

	if (!limit_bytes || grace_left_ns == 0)
		return false; /* no limit to meet, or the grace is over and the SIGKILL goes anyway */
	if (usage_bytes >= limit_bytes)
		return true;
	if (growth <= 0.0)
		return false;
	return (double)(limit_bytes - usage_bytes) / growth * 1e9 <
	       (double)grace_left_ns + (double)next_look_ns + (double)policy_look_margin_ns(p, event_lag_ns);
}

static bool giveup_id_equal(const char *stored, const char *id)
{
	return strncmp(stored, id, sizeof(((struct policy_giveup *)0)->e[0].prompt_id) - 1) == 0;
}

bool policy_stop_conclusive(const struct policy_stop *st)
{
	double growth, reach;

	if (!st || !st->fresh || !st->limit_bytes || st->own_bytes <= st->start_bytes)
		return false;
	growth = isfinite(st->own_growth_bytes_per_s) && st->own_growth_bytes_per_s > 0.0 ? st->own_growth_bytes_per_s
											 : 0.0;
	/* where its own growth alone would have taken it by the time a later stop took effect */
	reach = (double)st->own_bytes + growth * ((double)st->horizon_ns / 1e9);
	return reach >= (double)st->limit_bytes;
}

int policy_giveup_note(struct policy_giveup *g, const char *prompt_id, const struct policy_stop *st,
		       uint32_t give_up_after, uint64_t now_ns, uint32_t *ret_stops, uint64_t *ret_need_bytes,
		       uint64_t *ret_floor_bytes)
{
	unsigned slot = 0;
	bool found = false, conclusive;
	uint64_t need;

	if (!g || !prompt_id || !prompt_id[0] || !st)
		return -EINVAL;
	for (unsigned i = 0; i < POLICY_GIVEUP_SLOTS; i++) {
		if (g->e[i].stops && giveup_id_equal(g->e[i].prompt_id, prompt_id)) {
			slot = i;
			found = true;
			break;
		}
		/* An empty slot, else the least recently stopped prompt, makes room. */
		if (!g->e[i].stops ? g->e[slot].stops != 0 : g->e[slot].stops && g->e[i].seen_ns < g->e[slot].seen_ns)
			slot = i;
	}
	if (!found) {
		memset(&g->e[slot], 0, sizeof(g->e[slot]));
		snprintf(g->e[slot].prompt_id, sizeof(g->e[slot].prompt_id), "%s", prompt_id);
	}
	if (g->e[slot].stops < UINT32_MAX)
		g->e[slot].stops++;
	conclusive = policy_stop_conclusive(st);
	need = st->own_bytes > st->start_bytes ? st->own_bytes - st->start_bytes : 0;
	/* the figures said are those of the stop that says most: a conclusive one, else the largest growth */
	if (conclusive && !g->e[slot].conclusive) {
		g->e[slot].need_bytes = need;
		g->e[slot].floor_bytes = st->start_bytes;
	} else if (conclusive == g->e[slot].conclusive && need >= g->e[slot].need_bytes) {
		g->e[slot].need_bytes = need;
		g->e[slot].floor_bytes = st->start_bytes;
	}
	g->e[slot].conclusive |= conclusive;
	if (conclusive && g->e[slot].conclusive_stops < UINT32_MAX)
		g->e[slot].conclusive_stops++;
	g->e[slot].seen_ns = now_ns;
	if (ret_stops)
		*ret_stops = g->e[slot].stops;
	if (ret_need_bytes)
		*ret_need_bytes = g->e[slot].need_bytes;
	if (ret_floor_bytes)
		*ret_floor_bytes = g->e[slot].floor_bytes;
	if (!give_up_after)
		return POLICY_GIVEUP_KEEP;
	if (g->e[slot].conclusive_stops >= give_up_after)
		return POLICY_GIVEUP_PROVEN;
	if ((uint64_t)g->e[slot].stops >= (uint64_t)give_up_after * GIVEUP_INCONCLUSIVE_FACTOR)
		return POLICY_GIVEUP_INCONCLUSIVE;
	return POLICY_GIVEUP_KEEP;
}

void policy_giveup_forget(struct policy_giveup *g, const char *prompt_id)
{
	if (!g || !prompt_id || !prompt_id[0])
		return;
	for (unsigned i = 0; i < POLICY_GIVEUP_SLOTS; i++)
		if (g->e[i].stops && giveup_id_equal(g->e[i].prompt_id, prompt_id))
			memset(&g->e[i], 0, sizeof(g->e[i]));
}

uint64_t policy_brake_high_bytes(uint64_t current_bytes, uint64_t limit_bytes)
{
	uint64_t margin;

	if (!limit_bytes || limit_bytes == UINT64_MAX)
		return 0;
	margin = MAX(MIB(16), limit_bytes / 100);
	if (limit_bytes <= margin || current_bytes >= limit_bytes - margin)
		return 0;
	return MIN(sat_add(current_bytes, margin), limit_bytes - margin);
}

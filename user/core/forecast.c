// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "common.h"
#include "forecast.h"
#include "units.h"

void forecast_params_default(struct forecast_params *ret)
{
	if (!ret)
		return;
	*ret = (struct forecast_params){
		.margin = 0.95,
		.min_generations = 2,
		.noise_floor_bytes = MIB(32),
		.noise_floor_fraction = 0.02,
		.reclaim_high_per_sec = 50,
		.psi_some_high = 10,
	};
}

static struct forecast_params params_sanitize(const struct forecast_params *p)
{
	struct forecast_params d, r;

	forecast_params_default(&d);
	if (!p)
		return d;
	r = *p;
	if (!(r.margin > 0 && r.margin <= 1))
		r.margin = d.margin;
	if (r.min_generations < 2) /* a slope needs two points */
		r.min_generations = 2;
	if (!(r.noise_floor_fraction >= 0 && r.noise_floor_fraction <= 1))
		r.noise_floor_fraction = d.noise_floor_fraction;
	if (!(r.reclaim_high_per_sec > 0 && isfinite(r.reclaim_high_per_sec)))
		r.reclaim_high_per_sec = d.reclaim_high_per_sec;
	if (!(r.psi_some_high > 0 && r.psi_some_high <= 100))
		r.psi_some_high = d.psi_some_high;
	return r;
}

/* Saturating arithmetic: inputs come from the kernel and from other modules, and a garbage value must give a
 * pessimistic answer, not a wrapped optimistic one. */
static uint64_t add_sat(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t sub_floor(uint64_t a, uint64_t b)
{
	return a > b ? a - b : 0;
}

static uint64_t mul2_sat(uint64_t a)
{
	return add_sat(a, a);
}

static int64_t diff_sat(uint64_t a, uint64_t b)
{
	if (a >= b)
		return a - b > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(a - b);
	return b - a > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)(b - a);
}

/* double -> uint64_t is undefined outside [0, 2^64); NaN counts as 0. */
static uint64_t u64_from_double(double v)
{
	if (!(v > 0))
		return 0;
	if (v >= 18446744073709551616.0)
		return UINT64_MAX;
	return (uint64_t)v;
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return MAX(a, b);
}

static void reason_add(struct forecast *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reason_add(struct forecast *f, const char *fmt, ...)
{
	size_t n = strnlen(f->reason, sizeof(f->reason));
	va_list ap;

	if (n >= sizeof(f->reason) - 1)
		return;
	va_start(ap, fmt);
	(void)!vsnprintf(f->reason + n, sizeof(f->reason) - n, fmt, ap);
	va_end(ap);
}

static void fallback(struct forecast *f, const char *why)
{
	memset(f, 0, sizeof(*f));
	f->next_fits = true;
	f->running_fits = true;
	f->generations_left = -1;
	snprintf(f->reason, sizeof(f->reason), "%s", why);
}

static bool leak_valid(const struct leak_estimate *l)
{
	return l->points >= 2 && isfinite(l->slope_bytes_per_gen) && isfinite(l->r2) &&
	       isfinite(l->slope_stderr_bytes) && l->slope_stderr_bytes >= 0;
}

/* Out-of-range pressure figures are garbage from a failed read; they count as unknown. */
static bool reclaim_known(const struct forecast_input *in)
{
	return in->reclaim_per_sec >= 0 && in->reclaim_per_sec < 1e12;
}

static bool psi_known(const struct forecast_input *in)
{
	return in->psi_some_avg10 >= 0 && in->psi_some_avg10 <= 100;
}

static void next_label(char *buf, size_t size, uint64_t next_seq)
{
	if (next_seq > 0)
		snprintf(buf, size, "generation %llu", (unsigned long long)next_seq);
	else
		snprintf(buf, size, "the next generation");
}

static void reason_limit(struct forecast *f, uint64_t peak, uint64_t limit, double margin)
{
	char b[32];

	if (peak >= limit)
		reason_add(f, "above the %s limit", FMT_BYTES(b, limit));
	else
		reason_add(f, "above %.0f %% of the %s limit", margin * 100.0, FMT_BYTES(b, limit));
}

int forecast_next(const struct forecast_input *in, const struct forecast_params *params, struct forecast *ret)
{
	struct forecast_params p = params_sanitize(params);
	uint64_t limit, thr, floor_bytes, growth = 0, excess, base, leak_reg = 0;
	double conf;
	bool suspected = false;
	char b1[32], b2[32], b3[32], next[48];

	if (!ret)
		return -EINVAL;
	if (!in) {
		fallback(ret, "no input, no forecast");
		return -EINVAL;
	}
	limit = in->limit_bytes;
	if (limit == 0) {
		fallback(ret, "memory limit unknown, no forecast");
		return -EINVAL;
	}
	memset(ret, 0, sizeof(*ret));
	ret->running_fits = true;
	ret->generations_left = -1;

	thr = u64_from_double((double)limit * p.margin);
	if (thr > limit)
		thr = limit;
	ret->threshold_bytes = thr;
	floor_bytes = max_u64(p.noise_floor_bytes, u64_from_double((double)limit * p.noise_floor_fraction));
	next_label(next, sizeof(next), in->next_seq);

	/* Pressure: memcg reclaim means usage already sits at the limit and the kernel is taking pages back. */
	ret->pressure_high = (reclaim_known(in) && in->reclaim_per_sec >= p.reclaim_high_per_sec) ||
			     (psi_known(in) && in->psi_some_avg10 >= p.psi_some_high);

	if (leak_valid(&in->leak) && in->completed >= p.min_generations && in->leak.slope_bytes_per_gen > 0) {
		const struct leak_estimate *l = &in->leak;
		uint64_t slope = u64_from_double(l->slope_bytes_per_gen);
		uint64_t need = l->points == 2 ? mul2_sat(floor_bytes) : floor_bytes;

		suspected = slope > need && (l->points < 3 || l->slope_bytes_per_gen >= 2.0 * l->slope_stderr_bytes);
		if (suspected)
			leak_reg = slope;
	}
	ret->leak_suspected = suspected;
	growth = leak_reg;

	if (in->completed == 0) {
		/* Nothing of this epoch has finished: the model load is still ahead or under way and no excess is
		 * known. Only the present can be judged. */
		ret->headroom_bytes = diff_sat(limit, in->usage_bytes);
		ret->next_fits = in->usage_bytes < thr;
		if (!ret->next_fits)
			ret->generations_left = 0;
		if (in->running) {
			ret->predicted_running_peak_bytes = max_u64(in->running_peak_bytes, in->usage_bytes);
			ret->running_fits = ret->predicted_running_peak_bytes < limit;
			reason_add(ret, "first generation since the start is running at %s of the %s limit, no history "
				   "to forecast from", FMT_BYTES(b1, in->usage_bytes), FMT_BYTES(b2, limit));
		} else {
			reason_add(ret, "no completed generation yet; usage %s of the %s limit",
				   FMT_BYTES(b1, in->usage_bytes), FMT_BYTES(b2, limit));
		}
		goto pressure;
	}

	if (in->running && in->leak.points < 2) {
		uint64_t so_far = sub_floor(max_u64(in->running_peak_bytes, in->usage_bytes), in->running_start_bytes);
		uint64_t beyond = sub_floor(so_far, in->max_transient_bytes);

		if (beyond > mul2_sat(floor_bytes)) {
			growth = beyond;
			ret->from_running = true;
		}
	}
	excess = max_u64(in->max_excess_bytes, add_sat(in->max_transient_bytes, growth));

	if (in->running) {
		ret->predicted_running_peak_bytes =
			max_u64(max_u64(in->running_peak_bytes, in->usage_bytes), add_sat(in->running_start_bytes, excess));
		ret->running_fits = ret->predicted_running_peak_bytes < limit;
		ret->predicted_residual_after_running_bytes = add_sat(in->running_start_bytes, growth);
		base = ret->predicted_residual_after_running_bytes;
	} else {
		base = max_u64(in->last_residual_bytes, in->usage_bytes);
	}
	ret->predicted_next_peak_bytes = add_sat(base, excess);
	ret->next_fits = ret->predicted_next_peak_bytes < thr;
	ret->headroom_bytes = diff_sat(limit, ret->predicted_next_peak_bytes);
	ret->leak_bytes_per_gen = growth > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)growth;
	if (!ret->next_fits) {
		ret->generations_left = 0;
	} else if (growth > 0) {
		uint64_t room = thr - ret->predicted_next_peak_bytes;
		uint64_t k = room / growth + (room % growth != 0);

		ret->generations_left = k > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)k;
	}

	conf = (double)in->completed / ((double)in->completed + 2.0);
	if (suspected && in->leak.points >= 3)
		conf *= 0.5 + 0.5 * in->leak.r2;
	if (ret->from_running)
		conf *= 0.5;
	ret->confidence = conf < 0 ? 0 : conf > 1 ? 1 : conf;

	if (in->running && !ret->running_fits) {
		if (in->next_seq > 1)
			reason_add(ret, "running generation %llu ", (unsigned long long)(in->next_seq - 1));
		else
			reason_add(ret, "running generation ");
		reason_add(ret, "started at %s is expected to peak at %s, ", FMT_BYTES(b1, in->running_start_bytes),
			   FMT_BYTES(b2, ret->predicted_running_peak_bytes));
		reason_limit(ret, ret->predicted_running_peak_bytes, limit, p.margin);
		goto pressure;
	}
	if (suspected)
		reason_add(ret, "residual grows %s per generation; ", FMT_BYTES(b1, growth));
	else if (ret->from_running)
		reason_add(ret, "running generation holds %s beyond the last transient; if it keeps it, ",
			   FMT_BYTES(b1, growth));
	if (!ret->next_fits) {
		reason_add(ret, "%s will peak at %s, ", next, FMT_BYTES(b2, ret->predicted_next_peak_bytes));
		reason_limit(ret, ret->predicted_next_peak_bytes, limit, p.margin);
	} else if (growth > 0) {
		reason_add(ret, "%s will peak at %s; %lld more fit below %s", next,
			   FMT_BYTES(b2, ret->predicted_next_peak_bytes), (long long)ret->generations_left,
			   FMT_BYTES(b3, thr));
	} else if (in->completed == 1 && !in->running) {
		reason_add(ret, "one generation seen, no leak estimate yet; %s should peak near %s of the %s limit",
			   next, FMT_BYTES(b2, ret->predicted_next_peak_bytes), FMT_BYTES(b3, limit));
	} else {
		reason_add(ret, "no leak seen; %s should peak near %s, %s below the %s limit", next,
			   FMT_BYTES(b1, ret->predicted_next_peak_bytes),
			   FMT_BYTES(b2, (uint64_t)(ret->headroom_bytes > 0 ? ret->headroom_bytes : 0)),
			   FMT_BYTES(b3, limit));
	}

pressure:
	if (ret->pressure_high) {
		if (in->running && in->usage_bytes >= thr && ret->running_fits) {
			/* Reclaim at the threshold: the running generation is already living on pages the kernel
			 * steals back; one more allocation burst and it is the OOM killer's. */
			ret->running_fits = false;
			reason_add(ret, "; running generation is at %s under reclaim", FMT_BYTES(b1, in->usage_bytes));
		}
		if (reclaim_known(in))
			reason_add(ret, "; memcg reclaim %.0f/s", in->reclaim_per_sec);
		if (psi_known(in))
			reason_add(ret, "; PSI some %.1f %%", in->psi_some_avg10);
	}
	return 0;
}

int forecast_input_from_tracker(const struct gen_tracker *t, uint64_t limit_bytes, uint64_t usage_bytes,
				struct forecast_input *ret)
{
	const struct generation *last, *run;
	uint64_t first_transient = 0;
	bool has_first = false;
	size_t n;

	if (ret) {
		memset(ret, 0, sizeof(*ret));
		ret->reclaim_per_sec = -1;
		ret->psi_some_avg10 = -1;
	}
	if (!t || !ret)
		return -EINVAL;
	ret->limit_bytes = limit_bytes;
	ret->usage_bytes = usage_bytes;
	ret->next_seq = t->next_seq;

	n = gen_count(t);
	for (size_t i = 0; i < n; i++) {
		const struct generation *g = gen_get(t, i);
		uint64_t transient;

		if (g->epoch != t->epoch)
			break;
		if (g->status == GEN_RUNNING || !g->has_residual)
			continue;
		ret->completed++;
		transient = sub_floor(g->peak_bytes, g->residual_bytes);
		if (g->first_in_epoch) {
			first_transient = transient;
			has_first = true;
			continue;
		}
		ret->max_transient_bytes = max_u64(ret->max_transient_bytes, transient);
		ret->max_excess_bytes = max_u64(ret->max_excess_bytes, sub_floor(g->peak_bytes, g->usage_start_bytes));
	}
	/* The first generation's peak may hold load-time copies (weights read, then cast): use its transient only
	 * while there is nothing else. */
	if (ret->completed == 1 && has_first)
		ret->max_transient_bytes = first_transient;
	last = gen_last_completed(t);
	if (last)
		ret->last_residual_bytes = last->residual_bytes;
	run = gen_running(t);
	if (run) {
		ret->running = true;
		ret->running_start_bytes = run->usage_start_bytes;
		ret->running_peak_bytes = run->peak_bytes;
	}
	(void)gen_leak_estimate(t, FORECAST_LEAK_WINDOW, &ret->leak);
	return 0;
}

uint64_t forecast_clean_cost(const struct gen_tracker *t)
{
	uint64_t cost = 0;

	for (size_t i = 0; i < gen_count(t); i++) {
		const struct generation *g = gen_get(t, i);

		if (g && g->first_in_epoch && g->has_residual && g->peak_bytes > g->usage_start_bytes &&
		    g->peak_bytes - g->usage_start_bytes > cost)
			cost = g->peak_bytes - g->usage_start_bytes;
	}
	return cost;
}

uint64_t forecast_unreleasable_bytes(bool floor_valid, uint64_t floor_bytes, double per_gen_bytes,
				     uint64_t gens_since_floor, bool idle_since_floor, uint64_t usage_bytes)
{
	uint64_t out = floor_bytes;

	if (!floor_valid)
		return 0;
	if (isfinite(per_gen_bytes) && per_gen_bytes > 0) {
		double grown = per_gen_bytes * ((double)gens_since_floor + 1.0);

		out = add_sat(out, grown >= 18e18 ? UINT64_MAX : (uint64_t)grown);
	}
	if (idle_since_floor && !gens_since_floor)
		out = MAX(out, usage_bytes);
	return out;
}

void forecast_apply_clean_start(struct forecast *fc, const struct gen_tracker *t, uint64_t clean_cost_bytes,
				bool floor_valid, uint64_t floor_bytes, uint64_t usage_bytes, uint64_t limit_bytes,
				double margin)
{
	const struct generation *run = gen_running(t);
	char start_s[32], cost_s[32], pred_s[32], limit_s[32];
	uint64_t start, pred;

	if (!fc || !t || !clean_cost_bytes || !limit_bytes)
		return;
	if (run && run->first_in_epoch) {
		start = floor_valid && floor_bytes < run->usage_start_bytes ? floor_bytes : run->usage_start_bytes;
		pred = add_sat(start, clean_cost_bytes);
		if (pred <= limit_bytes || !fc->running_fits)
			return;
		fc->running_fits = false;
		fc->predicted_running_peak_bytes = pred;
		format_bytes(start, start_s, sizeof(start_s));
		format_bytes(clean_cost_bytes, cost_s, sizeof(cost_s));
		format_bytes(pred, pred_s, sizeof(pred_s));
		format_bytes(limit_bytes, limit_s, sizeof(limit_s));
		snprintf(fc->reason, sizeof(fc->reason),
			 "generation %llu reloads its models from %s and will need %s: it will peak at %s, above the %s limit",
			 (unsigned long long)run->seq, start_s, cost_s, pred_s, limit_s);
	} else if (!run && floor_valid && gen_completed_in_epoch(t) == 0) {
		pred = add_sat(usage_bytes, clean_cost_bytes);
		if (pred <= (uint64_t)((double)limit_bytes * margin) || !fc->next_fits)
			return;
		fc->next_fits = false;
		fc->predicted_next_peak_bytes = pred;
		format_bytes(usage_bytes, start_s, sizeof(start_s));
		format_bytes(clean_cost_bytes, cost_s, sizeof(cost_s));
		format_bytes(pred, pred_s, sizeof(pred_s));
		format_bytes(limit_bytes, limit_s, sizeof(limit_s));
		snprintf(fc->reason, sizeof(fc->reason),
			 "/free left %s that it cannot release; the next generation reloads its models and needs %s: it "
			 "will peak at %s, above %.0f %% of the %s limit",
			 start_s, cost_s, pred_s, margin * 100, limit_s);
	}
}

void forecast_apply_running_edge(struct forecast *fc, const struct gen_tracker *t, uint64_t usage_bytes,
				 uint64_t prev_usage_bytes, uint64_t limit_bytes, double margin)
{
	const struct generation *run = t ? gen_running(t) : NULL;
	char usage_s[32], limit_s[32];

	if (!fc || !run || !fc->running_fits || !limit_bytes || usage_bytes <= prev_usage_bytes ||
	    usage_bytes < (uint64_t)((double)limit_bytes * margin))
		return;
	fc->running_fits = false;
	format_bytes(usage_bytes, usage_s, sizeof(usage_s));
	format_bytes(limit_bytes, limit_s, sizeof(limit_s));
	snprintf(fc->reason, sizeof(fc->reason), "generation %llu is at %s, past %.0f %% of the %s limit and still climbing",
		 (unsigned long long)run->seq, usage_s, margin * 100, limit_s);
}

void forecast_rate_init(struct forecast_rate *r)
{
	if (r)
		memset(r, 0, sizeof(*r));
}

void forecast_rate_add(struct forecast_rate *r, uint64_t now_ns, uint64_t usage_bytes, double tau_s)
{
	double dt, inst, w;

	if (!r)
		return;
	if (!r->have || now_ns < r->last_ns) {
		forecast_rate_init(r);
		r->have = true;
		r->last_ns = now_ns;
		r->last_bytes = usage_bytes;
		return;
	}
	dt = (double)(now_ns - r->last_ns) / 1e9;
	/* Memory comes in bursts (a tensor, a step's activations: tens of MiB in a few ms), and near the limit RSS
	 * events come every few MiB: the rate over a shorter interval is the burst's, not the climb's, and the
	 * last resort would fire on a generation peaking well below the limit. */
	if (dt < FORECAST_RATE_MIN_INTERVAL_S)
		return;
	inst = ((double)usage_bytes - (double)r->last_bytes) / dt;
	w = tau_s > 0 && isfinite(tau_s) ? 1.0 - exp(-dt / tau_s) : 1.0;
	r->avg += w * (inst - r->avg);
	r->last = inst;
	r->last_ns = now_ns;
	r->last_bytes = usage_bytes;
}

double forecast_rate_get(const struct forecast_rate *r)
{
	double v;

	if (!r || !r->have)
		return 0;
	v = MAX(r->avg, r->last);
	return isfinite(v) && v > 0 ? v : 0;
}

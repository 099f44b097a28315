// SPDX-License-Identifier: GPL-2.0
/* Unit tests for policy.c: the ladder replayed sample by sample with exact expectations. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <cmocka.h>

#include "common.h"
#include "policy.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

#define LIMIT MIB(1536)
#define T0_NS (1000 * NSEC_PER_SEC) /* a monotonic clock that is not at zero */

enum {
	I_BUSY = 1 << 0,
	I_UNREACH = 1 << 1,      /* ComfyUI API does not answer */
	I_NEXT_NOFIT = 1 << 2,   /* forecast: next generation will not fit */
	I_RUN_NOFIT = 1 << 3,    /* forecast: running generation will not fit */
	I_LEAK = 1 << 4,
	I_GEN_END = 1 << 5,
	I_RESTART = 1 << 6,      /* restart method configured */
	I_NOFC = 1 << 7,         /* no forecast */
	I_REQUEUED = 1 << 8,     /* the running prompt was requeued by us already */
	I_LOWCONF = 1 << 9,      /* forecast confidence 0.1 */
	I_BRAKE = 1 << 10,       /* memory.high brake available */
	I_PENDING = 1 << 11,     /* the caller still measures the awaited action */
	I_UNLOAD_NEXT = 1 << 12, /* look-ahead: the next prompt fits only once the loaded models are unloaded */
	I_FRESH = 1 << 13,       /* the running prompt is the first of a fresh server */
};

/* Decision fields compared exactly on every step. */
enum {
	E_PRESSURE = 1 << 0,
	E_WARN = 1 << 1,
	E_AWAIT = 1 << 2,
	E_COOLDOWN = 1 << 3,
	E_EXHAUSTED = 1 << 4,
	E_DEFERRED = 1 << 5,
	E_REQUEUE = 1 << 6,
	E_PROACTIVE = 1 << 7,
	E_DRY = 1 << 8,
	E_URGENT = 1 << 9,
	E_BOUNDARY = 1 << 10,
	E_BRAKE = 1 << 11,
	E_HELD = 1 << 12,
};

#define TTE_UNKNOWN_MS UINT32_MAX

struct step {
	uint64_t t_ms;
	double pct; /* usage in % of LIMIT */
	unsigned in;
	uint64_t gens;
	uint32_t orphans; /* each holds 256 MiB */
	double reclaim;
	enum policy_rung want;
	unsigned expect;
	enum policy_rung outcome; /* judged in this step, NONE if none */
	bool outcome_ok;
	/* time to the limit against time to effect */
	double grow;       /* MiB/s */
	double bound_pct;  /* growth expected to stop here, % of LIMIT; 0 = no bound */
	uint32_t tfree_ms; /* time to effect of /free (both), interrupt, restart; 0 = default, TTE_UNKNOWN_MS */
	uint32_t tir_ms;
	uint32_t trs_ms;
	uint32_t ends_ms;  /* the running prompt is expected to end in; 0 = not known */
	uint32_t look_ms;  /* the daemon looks again in (next RSS event or sample); 0 = at once */
};

static uint64_t tte_in(uint32_t ms)
{
	return ms == TTE_UNKNOWN_MS ? POLICY_TTE_UNKNOWN : (uint64_t)ms * NSEC_PER_MSEC;
}

#define FM POLICY_RUNG_FREE_MODELS
#define FA POLICY_RUNG_FREE_ALL
#define IR POLICY_RUNG_INTERRUPT_REQUEUE
#define RS POLICY_RUNG_RESTART
#define KL POLICY_RUNG_KILL
#define RO POLICY_RUNG_REAP_ORPHANS
#define NO POLICY_RUNG_NONE

static struct policy_input make_input(const struct step *st)
{
	struct policy_input in = {
		.now_ns = T0_NS + st->t_ms * NSEC_PER_MSEC,
		.usage_bytes = (uint64_t)((double)LIMIT * st->pct / 100.0),
		.limit_bytes = LIMIT,
		.reclaim_events_per_s = st->reclaim,
		.psi_some_avg10_pct = -1.0,
		.orphan_count = st->orphans,
		.orphan_bytes = (uint64_t)st->orphans * MIB(256),
		.comfy_reachable = !(st->in & I_UNREACH),
		.busy = st->in & I_BUSY,
		.generation_just_ended = st->in & I_GEN_END,
		.generations_completed = st->gens,
		.restart_configured = st->in & I_RESTART,
		.running_requeued = st->in & I_REQUEUED,
		.forecast_known = !(st->in & I_NOFC),
		.next_fits = !(st->in & I_NEXT_NOFIT),
		.running_fits = !(st->in & I_RUN_NOFIT),
		.leak_suspected = st->in & I_LEAK,
		.confidence = (st->in & I_LOWCONF) ? 0.1 : 0.8,
		.growth_bytes_per_s = st->grow * (double)MIB(1),
		.bound_bytes = (uint64_t)((double)LIMIT * st->bound_pct / 100.0),
		.brake_available = st->in & I_BRAKE,
		.outcome_pending = st->in & I_PENDING,
		.running_ends_in_ns = (uint64_t)st->ends_ms * NSEC_PER_MSEC,
		.next_needs_unload = st->in & I_UNLOAD_NEXT,
		.fresh_start = st->in & I_FRESH,
		.next_look_ns = (uint64_t)st->look_ms * NSEC_PER_MSEC,
	};
	in.tte_ns[FM] = in.tte_ns[FA] = tte_in(st->tfree_ms);
	in.tte_ns[IR] = tte_in(st->tir_ms);
	in.tte_ns[RS] = tte_in(st->trs_ms);
	return in;
}

#define assert_prefix(str, prefix)                                                                               \
	do {                                                                                                     \
		if (strncmp((str), (prefix), strlen(prefix)) != 0)                                               \
			print_error("got:  %s\nwant: %s...\n", (str), (prefix));                                  \
		assert_int_equal(strncmp((str), (prefix), strlen(prefix)), 0);                                  \
	} while (0)

static unsigned decision_bits(const struct policy_decision *d)
{
	return (d->pressure ? E_PRESSURE : 0) | (d->warn ? E_WARN : 0) | (d->awaiting ? E_AWAIT : 0) |
	       (d->cooldown ? E_COOLDOWN : 0) | (d->exhausted ? E_EXHAUSTED : 0) | (d->deferred ? E_DEFERRED : 0) |
	       (d->requeue ? E_REQUEUE : 0) | (d->proactive ? E_PROACTIVE : 0) | (d->dry_run ? E_DRY : 0) |
	       (d->urgent ? E_URGENT : 0) | (d->at_boundary ? E_BOUNDARY : 0) | (d->brake ? E_BRAKE : 0) |
	       (d->held ? E_HELD : 0);
}

#define check(cond, ...)                                                                                         \
	do {                                                                                                     \
		if (!(cond)) {                                                                                   \
			print_error("%s step %zu (t=%" PRIu64 " ms): ", name, i, st->t_ms);                      \
			print_error(__VA_ARGS__);                                                                \
			print_error("\n  reason: %s\n", d.reason);                                               \
			fail();                                                                                  \
		}                                                                                                \
	} while (0)

/* Replays steps on one state; the body-shape invariants (/free flags follow the rung) are checked on every step. */
static void run_steps_on(const char *name, const struct policy_params *p, struct policy_state *s,
			 const struct step *steps, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct step *st = &steps[i];
		struct policy_input in = make_input(st);
		struct policy_decision d;
		int r = policy_decide(p, s, &in, &d);

		check(r == (st->want != NO ? 1 : 0), "returned %d", r);
		check(d.rung == st->want, "rung %s, want %s", policy_rung_name(d.rung), policy_rung_name(st->want));
		check(decision_bits(&d) == st->expect, "flags 0x%x, want 0x%x", decision_bits(&d), st->expect);
		check(d.outcome.rung == st->outcome, "outcome %s, want %s", policy_rung_name(d.outcome.rung),
		      policy_rung_name(st->outcome));
		if (st->outcome != NO)
			check(d.outcome.ok == st->outcome_ok, "outcome ok %d, want %d", d.outcome.ok, st->outcome_ok);
		check(d.unload_models == (d.rung == FM || d.rung == FA || d.rung == IR), "unload_models %d",
		      d.unload_models);
		check(d.free_memory == (d.rung == FA || d.rung == IR), "free_memory %d", d.free_memory);
		check(strlen(d.reason) > 0 && strlen(d.reason) < POLICY_REASON_MAX, "reason length");
	}
}

static void run_steps(const char *name, const struct policy_params *p, const struct step *steps, size_t n)
{
	struct policy_state s;

	policy_state_init(&s);
	run_steps_on(name, p, &s, steps, n);
}

#define RUN(p, steps) run_steps(__func__, (p), (steps), ARRAY_SIZE(steps))

/* ---------------------------------------------------------------------------------------------------------- */

static void test_rung_names(void **state)
{
	static const struct {
		enum policy_rung rung;
		const char *name;
	} table[] = {
		{ NO, "none" }, { RO, "reap_orphans" }, { FM, "free_models" }, { FA, "free_all" },
		{ IR, "interrupt_requeue" }, { RS, "restart" }, { KL, "kill" },
	};
	enum policy_rung r;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		assert_string_equal(policy_rung_name(table[i].rung), table[i].name);
		r = (enum policy_rung)-1;
		assert_int_equal(policy_rung_from_name(table[i].name, &r), 0);
		assert_int_equal(r, table[i].rung);
	}
	assert_string_equal(policy_rung_name((enum policy_rung)POLICY_RUNG_COUNT), "unknown");
	assert_string_equal(policy_rung_name((enum policy_rung)-1), "unknown");
	assert_int_equal(policy_rung_from_name("Kill", &r), -EINVAL);
	assert_int_equal(policy_rung_from_name("", &r), -EINVAL);
	assert_int_equal(policy_rung_from_name(NULL, &r), -EINVAL);
	assert_int_equal(policy_rung_from_name("kill", NULL), -EINVAL);
}

static void test_params_default(void **state)
{
	struct policy_params p = policy_params_default();

	(void)state;
	assert_int_equal(policy_params_validate(&p), 0);
	assert_true(p.act_usage_fraction == 0.90);
	assert_true(p.warn_usage_fraction == 0.80);
	assert_true(p.hysteresis_fraction == 0.05);
	assert_true(p.act_on_forecast);
	assert_true(p.act_on_reclaim);
	assert_true(p.min_freed_fraction == 0.05);
	assert_false(p.dry_run);
	assert_false(p.free_after_each_generation);
	assert_int_equal(p.restart_every_generations, 0);
	assert_false(p.enabled[KL]);
	for (unsigned r = RO; r < KL; r++) {
		assert_true(p.enabled[r]);
		assert_int_equal(p.cooldown_ms[r], 30000);
	}
	assert_int_equal(p.verify_ms[RO], 10000);
	assert_int_equal(p.verify_ms[FM], 5000);
	assert_int_equal(p.verify_ms[FA], 5000);
	assert_int_equal(p.verify_ms[IR], 30000);
	assert_int_equal(p.verify_ms[RS], 120000);
	assert_int_equal(p.verify_after_generation_ms, 5000);
}

static void test_params_validate(void **state)
{
	static const struct {
		const char *field;
		double value;
		int want;
	} table[] = {
		{ "act", 0.0, -EINVAL }, { "act", 1.0, 0 },       { "act", 1.01, -EINVAL }, { "act", NAN, -EINVAL },
		{ "act", INFINITY, -EINVAL }, { "warn", 0.0, 0 }, { "warn", 0.95, -EINVAL }, { "hyst", 0.0, 0 },
		{ "hyst", 0.90, -EINVAL }, { "hyst", -0.1, -EINVAL }, { "conf", 1.5, -EINVAL }, { "reclaim", 0.0, -EINVAL },
		{ "reclaim", NAN, -EINVAL }, { "psi", -1.0, -EINVAL }, { "psi", 20.0, 0 }, { "freed", 0.0, -EINVAL },
		{ "freed", 1.0, 0 }, { "negl", 0.06, -EINVAL }, { "negl", 0.0, 0 },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		struct policy_params p = policy_params_default();
		const char *f = table[i].field;
		double v = table[i].value;

		if (!strcmp(f, "act"))
			p.act_usage_fraction = v;
		else if (!strcmp(f, "warn"))
			p.warn_usage_fraction = v;
		else if (!strcmp(f, "hyst"))
			p.hysteresis_fraction = v;
		else if (!strcmp(f, "conf"))
			p.min_forecast_confidence = v;
		else if (!strcmp(f, "reclaim"))
			p.reclaim_events_per_s = v;
		else if (!strcmp(f, "psi"))
			p.psi_some_avg10_pct = v;
		else if (!strcmp(f, "freed"))
			p.min_freed_fraction = v;
		else if (!strcmp(f, "negl"))
			p.negligible_freed_fraction = v;
		if (policy_params_validate(&p) != table[i].want)
			print_error("row %zu: %s = %g\n", i, f, v);
		assert_int_equal(policy_params_validate(&p), table[i].want);
	}
	assert_int_equal(policy_params_validate(NULL), -EINVAL);
	/* reclaim threshold only matters when reclaim is acted on */
	struct policy_params p = policy_params_default();
	p.act_on_reclaim = false;
	p.reclaim_events_per_s = 0;
	assert_int_equal(policy_params_validate(&p), 0);
}

/* One decision from a fresh state. */
enum {
	P_KILL = 1 << 0,
	P_NOFC = 1 << 1,         /* act_on_forecast = false */
	P_RECLAIM_NOW = 1 << 2,  /* reclaim_sustain_ms = 0 */
	P_PSI20 = 1 << 3,        /* psi threshold 20 % */
	P_NO_FM = 1 << 4,        /* free_models disabled */
	P_NO_FA = 1 << 5,        /* free_all disabled */
	P_MINCONF = 1 << 6,      /* min_forecast_confidence = 0.5 */
	P_NO_RESTART = 1 << 7,
};

static struct policy_params make_params(unsigned pm)
{
	struct policy_params p = policy_params_default();

	p.enabled[KL] = pm & P_KILL;
	p.act_on_forecast = !(pm & P_NOFC);
	if (pm & P_RECLAIM_NOW)
		p.reclaim_sustain_ms = 0;
	if (pm & P_PSI20)
		p.psi_some_avg10_pct = 20.0;
	if (pm & P_NO_FM)
		p.enabled[FM] = false;
	if (pm & P_NO_FA)
		p.enabled[FA] = false;
	if (pm & P_MINCONF)
		p.min_forecast_confidence = 0.5;
	if (pm & P_NO_RESTART)
		p.enabled[RS] = false;
	return p;
}

static void test_single_decisions(void **state)
{
	static const struct {
		const char *name;
		unsigned params;
		double psi;
		struct step st;
	} table[] = {
		{ "no pressure", 0, -1, { .pct = 50, .want = NO, .expect = 0 } },
		{ "warn only", 0, -1, { .pct = 85, .want = NO, .expect = E_WARN } },
		{ "orphans, no pressure", 0, -1, { .pct = 50, .orphans = 3, .want = NO, .expect = 0 } },
		{ "idle over act", 0, -1, { .pct = 91, .want = FM, .expect = E_PRESSURE | E_WARN } },
		{ "orphans first", 0, -1,
		  { .pct = 95, .in = I_BUSY | I_RUN_NOFIT, .orphans = 2, .want = RO, .expect = E_PRESSURE | E_WARN } },
		{ "no orphans", 0, -1,
		  { .pct = 95, .orphans = 0, .want = FM, .expect = E_PRESSURE | E_WARN } },
		{ "idle, leak: free_all", 0, -1,
		  { .pct = 60, .in = I_NEXT_NOFIT | I_LEAK, .want = FA, .expect = E_PRESSURE } },
		{ "idle, leak, free_all disabled", P_NO_FA, -1,
		  { .pct = 60, .in = I_NEXT_NOFIT | I_LEAK, .want = FM, .expect = E_PRESSURE } },
		{ "idle, free_models disabled", P_NO_FM, -1, { .pct = 91, .want = FA, .expect = E_PRESSURE | E_WARN } },
		{ "busy, next won't fit: free now, not interrupt", 0, -1,
		  { .pct = 60, .in = I_BUSY | I_NEXT_NOFIT, .want = FM, .expect = E_PRESSURE | E_DEFERRED } },
		{ "busy, next won't fit, leak: free_all now", 0, -1,
		  { .pct = 60, .in = I_BUSY | I_NEXT_NOFIT | I_LEAK, .want = FA, .expect = E_PRESSURE | E_DEFERRED } },
		{ "busy over act, forecast says running fits", 0, -1,
		  { .pct = 92, .in = I_BUSY, .want = FM, .expect = E_PRESSURE | E_WARN | E_DEFERRED } },
		{ "busy, running won't fit", 0, -1,
		  { .pct = 70, .in = I_BUSY | I_RUN_NOFIT | I_NEXT_NOFIT, .want = IR, .expect = E_PRESSURE | E_REQUEUE } },
		{ "running won't fit, already requeued once", 0, -1,
		  { .pct = 70, .in = I_BUSY | I_RUN_NOFIT | I_REQUEUED, .want = IR, .expect = E_PRESSURE } },
		{ "unreachable: restart", 0, -1,
		  { .pct = 95, .in = I_UNREACH | I_RESTART, .want = RS, .expect = E_PRESSURE | E_WARN } },
		{ "unreachable, busy (stale), running won't fit: restart", 0, -1,
		  { .pct = 95, .in = I_UNREACH | I_RESTART | I_BUSY | I_RUN_NOFIT, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_REQUEUE } },
		{ "unreachable, no restart method, kill off: exhausted", 0, -1,
		  { .pct = 95, .in = I_UNREACH, .want = NO, .expect = E_PRESSURE | E_WARN | E_EXHAUSTED } },
		{ "unreachable, restart disabled, kill on", P_KILL | P_NO_RESTART, -1,
		  { .pct = 95, .in = I_UNREACH | I_RESTART, .want = KL, .expect = E_PRESSURE | E_WARN } },
		{ "unreachable, orphans", 0, -1,
		  { .pct = 95, .in = I_UNREACH, .orphans = 1, .want = RO, .expect = E_PRESSURE | E_WARN } },
		{ "forecast ignored when act_on_forecast=no", P_NOFC, -1,
		  { .pct = 60, .in = I_BUSY | I_NEXT_NOFIT | I_RUN_NOFIT, .want = NO, .expect = 0 } },
		{ "forecast below min confidence", P_MINCONF, -1,
		  { .pct = 60, .in = I_NEXT_NOFIT | I_LOWCONF, .want = NO, .expect = 0 } },
		{ "forecast unknown", 0, -1, { .pct = 60, .in = I_NEXT_NOFIT | I_NOFC, .want = NO, .expect = 0 } },
		{ "usage > limit", 0, -1, { .pct = 130, .want = FM, .expect = E_PRESSURE | E_WARN } },
		{ "reclaim, sustain 0", P_RECLAIM_NOW, -1,
		  { .pct = 50, .reclaim = 150, .want = FM, .expect = E_PRESSURE } },
		{ "reclaim below threshold", P_RECLAIM_NOW, -1, { .pct = 50, .reclaim = 99, .want = NO, .expect = 0 } },
		{ "reclaim NaN", P_RECLAIM_NOW, -1, { .pct = 50, .reclaim = NAN, .want = NO, .expect = 0 } },
		{ "PSI over threshold", P_PSI20, 25.0, { .pct = 50, .want = FM, .expect = E_PRESSURE } },
		{ "PSI under threshold", P_PSI20, 19.9, { .pct = 50, .want = NO, .expect = 0 } },
		{ "PSI NaN", P_PSI20, NAN, { .pct = 50, .want = NO, .expect = 0 } },
		{ "PSI off by default", 0, 90.0, { .pct = 50, .want = NO, .expect = 0 } },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		struct policy_params p = make_params(table[i].params);
		struct policy_state s;
		struct policy_input in = make_input(&table[i].st);
		struct policy_decision d;
		const struct step *st = &table[i].st;
		const char *name = table[i].name;

		in.psi_some_avg10_pct = table[i].psi;
		policy_state_init(&s);
		int r = policy_decide(&p, &s, &in, &d);
		check(r == (st->want != NO), "returned %d", r);
		check(d.rung == st->want, "rung %s, want %s", policy_rung_name(d.rung), policy_rung_name(st->want));
		check(decision_bits(&d) == st->expect, "flags 0x%x, want 0x%x", decision_bits(&d), st->expect);
		check(d.outcome.rung == NO, "outcome %s", policy_rung_name(d.outcome.rung));
	}

	/* interrupt disabled: a running generation at risk goes to restart */
	struct policy_params p = policy_params_default();
	struct policy_state s;
	struct policy_decision d;
	struct step st = { .pct = 70, .in = I_BUSY | I_RUN_NOFIT | I_RESTART };
	struct policy_input in = make_input(&st);

	p.enabled[IR] = false;
	policy_state_init(&s);
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_int_equal(d.rung, RS);
	assert_true(d.requeue);
}

static void test_reason_text(void **state)
{
	struct policy_params p = policy_params_default();
	struct policy_state s;
	struct policy_decision d;
	struct policy_input in = {
		.now_ns = T0_NS, .usage_bytes = MIB(1400), .limit_bytes = LIMIT, .comfy_reachable = true,
		.psi_some_avg10_pct = -1, .forecast_known = true, .next_fits = true, .running_fits = true,
	};

	(void)state;
	policy_state_init(&s);
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_string_equal(d.reason, "free_models now, idle: applies at once: usage 1.37 GiB of 1.50 GiB (91.1%) >= act 90%; idle");

	in = (struct policy_input){
		.now_ns = T0_NS, .usage_bytes = MIB(900), .limit_bytes = LIMIT, .comfy_reachable = true, .busy = true,
		.psi_some_avg10_pct = -1, .progress_known = true, .progress_fraction = 0.43, .queue_pending = 2,
		.forecast_known = true, .next_fits = false, .running_fits = true, .confidence = 0.4,
		.predicted_next_peak_bytes = MIB(1802),
		.forecast_reason = "residual grows 300 MiB per generation",
	};
	policy_state_init(&s);
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_string_equal(d.reason, "free_models now, applied when the running prompt ends: usage 900 MiB of 1.50 GiB "
				      "(58.6%); busy at 43%, 2 queued; next generation will not fit (peak 1.76 GiB); "
				      "forecast: residual grows 300 MiB per generation");
	in.now_ns += NSEC_PER_SEC;
	assert_int_equal(policy_decide(&p, &s, &in, &d), 0);
	assert_string_equal(d.reason, "awaiting free_models verification until the running prompt ends: usage 900 MiB of "
				      "1.50 GiB (58.6%); busy at 43%, 2 queued; next generation will not fit (peak 1.76 GiB); "
				      "forecast: residual grows 300 MiB per generation");

	/* limit unknown, no pressure */
	in = (struct policy_input){ .now_ns = T0_NS, .usage_bytes = KIB(3), .psi_some_avg10_pct = -1 };
	policy_state_init(&s);
	assert_int_equal(policy_decide(&p, &s, &in, &d), 0);
	assert_string_equal(d.reason, "no pressure: usage 3 KiB (limit unknown); ComfyUI API unreachable");

	/* a very long forecast sentence is truncated, NUL-terminated */
	char longtext[4096];
	memset(longtext, 'x', sizeof(longtext) - 1);
	longtext[sizeof(longtext) - 1] = '\0';
	in = (struct policy_input){ .now_ns = T0_NS, .usage_bytes = MIB(100), .limit_bytes = LIMIT,
				    .comfy_reachable = true, .forecast_known = true, .next_fits = false,
				    .running_fits = true, .forecast_reason = longtext };
	policy_state_init(&s);
	p.dry_run = true;
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_int_equal(strlen(d.reason), POLICY_REASON_MAX - 1);
	assert_prefix(d.reason, "[dry-run] free_models now, idle: applies at once: usage 100 MiB of 1.50 GiB (6.5%); idle; "
				"next generation will not fit; forecast: xxxx");
}

/* Idle, nothing frees: free_models -> free_all -> (freed ~0: /free futile) restart -> kill only when enabled. */
static void test_escalation_idle(void **state)
{
	static const struct step steps[] = {
		{ 0, 95, I_RESTART, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 1000, 95, I_RESTART, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 4999, 95, I_RESTART, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 5000, 95, I_RESTART, .want = FA, .expect = E_PRESSURE | E_WARN, .outcome = FM, .outcome_ok = false },
		{ 9000, 95, I_RESTART, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 10000, 95, I_RESTART, .want = RS, .expect = E_PRESSURE | E_WARN, .outcome = FA, .outcome_ok = false },
		{ 100000, 95, I_RESTART, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 130000, 95, I_RESTART, .want = NO, .expect = E_PRESSURE | E_WARN | E_EXHAUSTED, .outcome = RS,
		  .outcome_ok = false },
		{ 131000, 95, I_RESTART, .want = NO, .expect = E_PRESSURE | E_WARN | E_EXHAUSTED },
		/* pressure clears: ladder reset; /free freed nothing last time and no restart happened since, so the
		 * next episode skips it */
		{ 140000, 50, I_RESTART, .want = NO, .expect = 0 },
		{ 141000, 95, I_RESTART, .want = RS, .expect = E_PRESSURE | E_WARN },
	};
	static const struct step with_kill[] = {
		{ 0, 95, I_RESTART, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 5000, 95, I_RESTART, .want = FA, .expect = E_PRESSURE | E_WARN, .outcome = FM, .outcome_ok = false },
		{ 10000, 95, I_RESTART, .want = RS, .expect = E_PRESSURE | E_WARN, .outcome = FA, .outcome_ok = false },
		{ 130000, 95, I_RESTART, .want = KL, .expect = E_PRESSURE | E_WARN, .outcome = RS, .outcome_ok = false },
		{ 134000, 95, I_RESTART, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 135000, 95, I_RESTART, .want = NO, .expect = E_PRESSURE | E_WARN | E_EXHAUSTED, .outcome = KL,
		  .outcome_ok = false },
	};
	/* no restart method: after /free freed nothing, straight to kill (when enabled) */
	static const struct step no_restart_kill[] = {
		{ 0, 95, 0, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 5000, 95, 0, .want = FA, .expect = E_PRESSURE | E_WARN, .outcome = FM, .outcome_ok = false },
		{ 10000, 95, 0, .want = KL, .expect = E_PRESSURE | E_WARN, .outcome = FA, .outcome_ok = false },
	};
	static const struct step no_restart_no_kill[] = {
		{ 0, 95, 0, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 5000, 95, 0, .want = FA, .expect = E_PRESSURE | E_WARN, .outcome = FM, .outcome_ok = false },
		{ 10000, 95, 0, .want = NO, .expect = E_PRESSURE | E_WARN | E_EXHAUSTED, .outcome = FA,
		  .outcome_ok = false },
	};
	struct policy_params p = policy_params_default();
	struct policy_params pk = make_params(P_KILL);

	(void)state;
	RUN(&p, steps);
	RUN(&pk, with_kill);
	RUN(&pk, no_restart_kill);
	RUN(&p, no_restart_no_kill);
}

/* free_all freed something but not enough: not "futile"; with the running generation at risk, interrupt. */
static void test_escalation_partial_free_busy(void **state)
{
	static const struct step steps[] = {
		{ 0, 95, I_BUSY | I_RESTART, .gens = 4, .want = FM, .expect = E_PRESSURE | E_WARN | E_DEFERRED },
		{ 1000, 95, I_BUSY | I_RESTART | I_GEN_END, .gens = 5, .want = NO,
		  .expect = E_PRESSURE | E_WARN | E_AWAIT },
		/* deadline = generation end + 5 s; 2 % freed < 5 % */
		{ 6000, 93, I_BUSY | I_RESTART, .gens = 5, .want = FA, .expect = E_PRESSURE | E_WARN | E_DEFERRED,
		  .outcome = FM, .outcome_ok = false },
		{ 7000, 93, I_BUSY | I_RESTART | I_GEN_END, .gens = 6, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		/* 3 % freed: not negligible, so /free is not marked futile; the running generation is now at risk */
		{ 12000, 90, I_BUSY | I_RESTART | I_RUN_NOFIT, .gens = 6, .want = IR,
		  .expect = E_PRESSURE | E_WARN | E_REQUEUE, .outcome = FA, .outcome_ok = false },
		{ 42000, 96, I_BUSY | I_RESTART | I_RUN_NOFIT | I_REQUEUED, .gens = 6, .want = RS,
		  .expect = E_PRESSURE | E_WARN | E_REQUEUE, .outcome = IR, .outcome_ok = false },
	};
	struct policy_params p = policy_params_default();

	(void)state;
	RUN(&p, steps);
}

/* Never fire the same rung twice inside a deadline or a cooldown: a rung in cooldown is skipped to the next one,
 * and with every rung that helps cooling down (and the limit not in sight) nothing fires. */
static void test_no_double_fire(void **state)
{
	static const struct step steps[] = {
		{ 0, 95, 0, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 1000, 95, 0, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 2000, 84, 0, .want = NO, .expect = E_WARN, .outcome = FM, .outcome_ok = true },
		/* free_models cools down until 30 s: skipped to free_all */
		{ 5000, 95, 0, .want = FA, .expect = E_PRESSURE | E_WARN },
		{ 6000, 84, 0, .want = NO, .expect = E_WARN, .outcome = FA, .outcome_ok = true },
		{ 7000, 95, 0, .want = NO, .expect = E_PRESSURE | E_WARN | E_COOLDOWN },
		{ 29999, 95, 0, .want = NO, .expect = E_PRESSURE | E_WARN | E_COOLDOWN },
		{ 30000, 95, 0, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 30001, 95, 0, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
	};
	/* an interrupt awaits its 30 s deadline even though the generation stays at risk */
	static const struct step interrupt[] = {
		{ 0, 81, I_BUSY | I_RUN_NOFIT, .want = IR, .expect = E_PRESSURE | E_WARN | E_REQUEUE },
		{ 10000, 85, I_BUSY | I_RUN_NOFIT, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 29999, 89, I_BUSY | I_RUN_NOFIT, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		/* worked (usage fell 49 % of the limit) and the 30 s cooldown is over too: the next prompt at risk is
		 * interrupted, once */
		{ 30000, 40, I_BUSY | I_RUN_NOFIT, .want = IR, .expect = E_PRESSURE | E_REQUEUE, .outcome = IR,
		  .outcome_ok = true },
		{ 30001, 45, I_BUSY | I_RUN_NOFIT, .want = NO, .expect = E_PRESSURE | E_AWAIT },
	};
	struct policy_params p = policy_params_default();

	(void)state;
	RUN(&p, steps);
	RUN(&p, interrupt);
}

/* Usage hovering around the act line does not flap. */
static void test_hysteresis(void **state)
{
	static const struct step held[] = {
		{ 0, 89, 0, .want = NO, .expect = E_WARN },
		{ 1000, 91, 0, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 2000, 87, 0, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 3000, 89.9, 0, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 4000, 90.5, 0, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 5000, 86.5, 0, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		/* deadline: 3 % freed and still held above 85 %: escalate, once */
		{ 6000, 88, 0, .want = FA, .expect = E_PRESSURE | E_WARN, .outcome = FM, .outcome_ok = false },
	};
	static const struct step released[] = {
		{ 0, 91, 0, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 1000, 84, 0, .want = NO, .expect = E_WARN, .outcome = FM, .outcome_ok = true },
		{ 2000, 89, 0, .want = NO, .expect = E_WARN },
		{ 3000, 89.9, 0, .want = NO, .expect = E_WARN },
		{ 4000, 86, 0, .want = NO, .expect = E_WARN },
		{ 5000, 88, 0, .want = NO, .expect = E_WARN },
		/* free_models cooling down: the next rung */
		{ 6000, 90.1, 0, .want = FA, .expect = E_PRESSURE | E_WARN },
		{ 7000, 87, 0, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 8000, 84.9, 0, .want = NO, .expect = E_WARN, .outcome = FA, .outcome_ok = true },
	};
	struct policy_params p = policy_params_default();

	(void)state;
	RUN(&p, held);
	RUN(&p, released);
}

/* Busy, the next generation will not fit but the running one will: /free now, judged after it ends. */
static void test_busy_deferred_free(void **state)
{
	static const struct step worked[] = {
		{ 0, 60, I_BUSY | I_NEXT_NOFIT, .gens = 1, .want = FM, .expect = E_PRESSURE | E_DEFERRED },
		{ 10000, 70, I_BUSY | I_NEXT_NOFIT, .gens = 1, .want = NO, .expect = E_PRESSURE | E_AWAIT },
		{ 60000, 85, I_BUSY | I_NEXT_NOFIT, .gens = 1, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		/* generation 2 ended; the worker now consumes the flags */
		{ 61000, 85, I_GEN_END | I_NEXT_NOFIT, .gens = 2, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 62000, 10, 0, .gens = 2, .want = NO, .expect = 0, .outcome = FM, .outcome_ok = true },
	};
	/* the next prompt started at once and nothing came back by end + 5 s: free_all, deferred again */
	static const struct step failed[] = {
		{ 0, 60, I_BUSY | I_NEXT_NOFIT, .gens = 1, .want = FM, .expect = E_PRESSURE | E_DEFERRED },
		{ 61000, 72, I_BUSY | I_GEN_END | I_NEXT_NOFIT, .gens = 2, .want = NO, .expect = E_PRESSURE | E_AWAIT },
		{ 65999, 72, I_BUSY | I_NEXT_NOFIT, .gens = 2, .want = NO, .expect = E_PRESSURE | E_AWAIT },
		{ 66000, 72, I_BUSY | I_NEXT_NOFIT, .gens = 2, .want = FA, .expect = E_PRESSURE | E_DEFERRED,
		  .outcome = FM, .outcome_ok = false },
	};
	/* the generation end is noticed from the counter alone (the next prompt already running, edge missed) */
	static const struct step counter[] = {
		{ 0, 60, I_BUSY | I_NEXT_NOFIT, .gens = 1, .want = FM, .expect = E_PRESSURE | E_DEFERRED },
		{ 61000, 72, I_BUSY | I_NEXT_NOFIT, .gens = 2, .want = NO, .expect = E_PRESSURE | E_AWAIT },
		{ 66000, 72, I_BUSY | I_NEXT_NOFIT, .gens = 2, .want = FA, .expect = E_PRESSURE | E_DEFERRED,
		  .outcome = FM, .outcome_ok = false },
	};
	/* a generation that never ends: judged at verify_busy_max_ms */
	static const struct step capped[] = {
		{ 0, 60, I_BUSY | I_NEXT_NOFIT, .gens = 1, .want = FM, .expect = E_PRESSURE | E_DEFERRED },
		{ 1799999, 60, I_BUSY | I_NEXT_NOFIT, .gens = 1, .want = NO, .expect = E_PRESSURE | E_AWAIT },
		{ 1800000, 60, I_BUSY | I_NEXT_NOFIT, .gens = 1, .want = FA, .expect = E_PRESSURE | E_DEFERRED,
		  .outcome = FM, .outcome_ok = false },
	};
	struct policy_params p = policy_params_default();

	(void)state;
	RUN(&p, worked);
	RUN(&p, failed);
	RUN(&p, counter);
	RUN(&p, capped);
}

/* A deferred /free cannot save the running generation: interrupt supersedes it. */
static void test_deferred_free_superseded(void **state)
{
	static const struct step steps[] = {
		{ 0, 60, I_BUSY | I_NEXT_NOFIT, .gens = 1, .want = FM, .expect = E_PRESSURE | E_DEFERRED },
		{ 5000, 75, I_BUSY | I_NEXT_NOFIT | I_RUN_NOFIT, .gens = 1, .want = IR, .expect = E_PRESSURE | E_REQUEUE,
		  .outcome = FM, .outcome_ok = false },
		{ 6000, 81, I_BUSY | I_NEXT_NOFIT | I_RUN_NOFIT, .gens = 1, .want = NO,
		  .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 35000, 90, I_BUSY | I_NEXT_NOFIT | I_RUN_NOFIT | I_RESTART, .gens = 1, .want = RS,
		  .expect = E_PRESSURE | E_WARN | E_REQUEUE, .outcome = IR, .outcome_ok = false },
	};
	/* interrupt disabled and no restart method: keep waiting for the deferred /free */
	static const struct step no_stronger[] = {
		{ 0, 60, I_BUSY | I_NEXT_NOFIT, .gens = 1, .want = FM, .expect = E_PRESSURE | E_DEFERRED },
		{ 5000, 75, I_BUSY | I_NEXT_NOFIT | I_RUN_NOFIT, .gens = 1, .want = NO, .expect = E_PRESSURE | E_AWAIT },
	};
	struct policy_params p = policy_params_default();
	struct policy_params noir = policy_params_default();

	(void)state;
	noir.enabled[IR] = false;
	RUN(&p, steps);
	RUN(&noir, no_stronger);
}

/* Without a forecast, past the act line and climbing while busy means the running generation is at risk. */
static void test_climbing_fallback(void **state)
{
	static const struct step no_forecast[] = {
		{ 0, 88, I_BUSY | I_NOFC, .want = NO, .expect = E_WARN },
		{ 1000, 91, I_BUSY | I_NOFC, .want = IR, .expect = E_PRESSURE | E_WARN | E_REQUEUE },
	};
	static const struct step forecast_vouches[] = {
		{ 0, 88, I_BUSY, .want = NO, .expect = E_WARN },
		{ 1000, 91, I_BUSY, .want = FM, .expect = E_PRESSURE | E_WARN | E_DEFERRED },
	};
	static const struct step not_climbing[] = {
		{ 0, 91, I_BUSY | I_NOFC, .want = FM, .expect = E_PRESSURE | E_WARN | E_DEFERRED },
	};
	/* a rise below climb_min_bytes (8 MiB) is noise */
	static const struct step tiny_rise[] = {
		{ 0, 90.5, I_BUSY | I_NOFC, .want = FM, .expect = E_PRESSURE | E_WARN | E_DEFERRED },
		{ 1000, 90.7, I_BUSY | I_NOFC, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
	};
	struct policy_params p = policy_params_default();

	(void)state;
	RUN(&p, no_forecast);
	RUN(&p, forecast_vouches);
	RUN(&p, not_climbing);
	RUN(&p, tiny_rise);
}

/* ComfyUI unreachable: reap -> restart -> kill, no HTTP rung. */
static void test_unreachable_skips_http(void **state)
{
	static const struct step steps[] = {
		{ 0, 95, I_UNREACH | I_RESTART, .orphans = 2, .want = RO, .expect = E_PRESSURE | E_WARN },
		{ 9999, 95, I_UNREACH | I_RESTART, .orphans = 2, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 10000, 95, I_UNREACH | I_RESTART, .orphans = 2, .want = RS, .expect = E_PRESSURE | E_WARN,
		  .outcome = RO, .outcome_ok = false },
		{ 130000, 95, I_UNREACH | I_RESTART, .want = KL, .expect = E_PRESSURE | E_WARN, .outcome = RS,
		  .outcome_ok = false },
		{ 135000, 95, I_UNREACH | I_RESTART, .want = NO, .expect = E_PRESSURE | E_WARN | E_EXHAUSTED,
		  .outcome = KL, .outcome_ok = false },
	};
	/* reaping worked but pressure stays: orphans are gone, so the next rung is the first HTTP one */
	static const struct step reap_worked[] = {
		{ 0, 99, 0, .orphans = 1, .want = RO, .expect = E_PRESSURE | E_WARN },
		{ 3000, 92, 0, .want = FM, .expect = E_PRESSURE | E_WARN, .outcome = RO, .outcome_ok = true },
	};
	struct policy_params p = make_params(P_KILL);

	(void)state;
	RUN(&p, steps);
	RUN(&p, reap_worked);
}

/* Dry-run: the same ladder, every decision flagged, the state advancing as if acted. */
static void test_dry_run(void **state)
{
	static const struct step steps[] = {
		{ 0, 50, I_RESTART, .want = NO, .expect = E_DRY },
		{ 1000, 95, I_RESTART, .want = FM, .expect = E_PRESSURE | E_WARN | E_DRY },
		{ 2000, 95, I_RESTART, .want = NO, .expect = E_PRESSURE | E_WARN | E_AWAIT | E_DRY },
		{ 6000, 95, I_RESTART, .want = FA, .expect = E_PRESSURE | E_WARN | E_DRY, .outcome = FM,
		  .outcome_ok = false },
		{ 11000, 95, I_RESTART, .want = RS, .expect = E_PRESSURE | E_WARN | E_DRY, .outcome = FA,
		  .outcome_ok = false },
		{ 131000, 95, I_RESTART, .want = NO, .expect = E_PRESSURE | E_WARN | E_EXHAUSTED | E_DRY, .outcome = RS,
		  .outcome_ok = false },
	};
	struct policy_params p = policy_params_default();
	struct policy_state s;
	struct policy_decision d;
	struct policy_input in = make_input(&steps[1]);

	(void)state;
	p.dry_run = true;
	RUN(&p, steps);

	policy_state_init(&s);
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_prefix(d.reason, "[dry-run] free_models now, idle: applies at once: usage 1.42 GiB of 1.50 GiB (95.0%) >= act 90%; idle");
}

static void test_free_after_each_generation(void **state)
{
	static const struct step steps[] = {
		{ 0, 50, 0, .gens = 0, .want = NO, .expect = 0 },
		{ 1000, 50, I_GEN_END, .gens = 1, .want = FM, .expect = E_PROACTIVE },
		/* the same edge reported twice: once per generation */
		{ 2000, 50, I_GEN_END, .gens = 1, .want = NO, .expect = 0 },
		{ 3000, 50, I_BUSY, .gens = 1, .want = NO, .expect = 0 },
		/* the next prompt already runs: the flags apply after it */
		{ 4000, 50, I_BUSY | I_GEN_END, .gens = 2, .want = FM, .expect = E_PROACTIVE | E_DEFERRED },
		/* proactive frees are not verified: nothing awaits */
		{ 5000, 50, I_BUSY, .gens = 2, .want = NO, .expect = 0 },
		{ 6000, 50, I_BUSY | I_GEN_END | I_UNREACH, .gens = 3, .want = NO, .expect = 0 },
		/* a caller that does not count generations still gets one free per edge */
		{ 7000, 50, I_GEN_END, .gens = 0, .want = FM, .expect = E_PROACTIVE },
		{ 8000, 50, I_GEN_END, .gens = 0, .want = FM, .expect = E_PROACTIVE },
	};
	/* a pressure /free awaiting its verdict at this boundary does not hold back the next proactive one, nor does
	 * the proactive one disturb that verdict */
	static const struct step awaiting[] = {
		{ 0, 60, I_BUSY | I_NEXT_NOFIT, .gens = 1, .want = FM, .expect = E_PRESSURE | E_DEFERRED },
		{ 1000, 60, I_BUSY | I_GEN_END | I_NEXT_NOFIT, .gens = 2, .want = FM,
		  .expect = E_PRESSURE | E_AWAIT | E_DEFERRED | E_PROACTIVE },
		{ 2000, 30, I_BUSY, .gens = 2, .want = NO, .expect = 0, .outcome = FM, .outcome_ok = true },
	};
	struct policy_params p = policy_params_default();
	struct policy_params off = policy_params_default();
	static const struct step off_steps[] = {
		{ 1000, 50, I_GEN_END, .gens = 1, .want = NO, .expect = 0 },
	};

	(void)state;
	p.free_after_each_generation = true;
	RUN(&p, steps);
	RUN(&p, awaiting);
	RUN(&off, off_steps);
}

/* Queue look-ahead: the next checkpoint does not fit beside the loaded ones, so they are unloaded at the boundary
 * (a /free while the running prompt runs is applied when it ends), once per generation, and not while another
 * action awaits verification; under pressure the ladder decides as before. */
static void test_unload_for_next_model(void **state)
{
	static const struct step steps[] = {
		{ 0, 60, I_BUSY, .gens = 1, .want = NO, .expect = 0 },
		{ 1000, 60, I_BUSY | I_UNLOAD_NEXT, .gens = 1, .want = FM, .expect = E_PROACTIVE | E_DEFERRED },
		/* still the same boundary: once */
		{ 1500, 62, I_BUSY | I_UNLOAD_NEXT, .gens = 1, .want = NO, .expect = 0 },
		/* the next prompt again needs room after the following generation: again */
		{ 5000, 40, I_BUSY | I_UNLOAD_NEXT, .gens = 2, .want = FM, .expect = E_PROACTIVE | E_DEFERRED },
		/* idle with the prompt about to start: at once */
		{ 9000, 40, I_UNLOAD_NEXT, .gens = 3, .want = FM, .expect = E_PROACTIVE },
		/* the API does not answer: nothing to send */
		{ 12000, 40, I_UNLOAD_NEXT | I_UNREACH, .gens = 4, .want = NO, .expect = 0 },
		/* pressure: the ladder's own choice (free_models cools down: free_all) and its verification */
		{ 14000, 95, I_BUSY | I_UNLOAD_NEXT, .gens = 5, .want = FA, .expect = E_PRESSURE | E_WARN | E_DEFERRED },
		{ 15000, 60, I_BUSY | I_UNLOAD_NEXT, .gens = 5, .want = NO, .expect = E_AWAIT },
	};
	struct policy_params p = policy_params_default();
	struct policy_params nofree = policy_params_default();
	static const struct step off_steps[] = {
		{ 1000, 60, I_BUSY | I_UNLOAD_NEXT, .gens = 1, .want = NO, .expect = 0 },
	};
	struct policy_state s;
	struct policy_decision d;
	struct policy_input in = make_input(&steps[1]);

	(void)state;
	RUN(&p, steps);
	nofree.enabled[POLICY_RUNG_FREE_MODELS] = false;
	RUN(&nofree, off_steps);
	policy_state_init(&s);
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_true(d.unload_models && !d.free_memory && d.proactive);
	assert_non_null(strstr(d.reason, "the next prompt's models will not fit beside the loaded ones"));
}

static void test_restart_every_generations(void **state)
{
	/* waits for the queue to be between prompts */
	static const struct step idle[] = {
		{ 0, 50, I_BUSY | I_RESTART, .gens = 2, .want = NO, .expect = 0 },
		{ 1000, 50, I_BUSY | I_RESTART, .gens = 3, .want = NO, .expect = 0 },
		{ 2000, 50, I_RESTART, .gens = 3, .want = RS, .expect = E_PROACTIVE },
		{ 3000, 50, I_RESTART, .gens = 3, .want = NO, .expect = E_AWAIT },
		/* the server came back: counter reset */
		{ 10000, 3, I_RESTART, .gens = 0, .want = NO, .expect = 0, .outcome = RS, .outcome_ok = true },
		{ 11000, 3, I_RESTART, .gens = 1, .want = NO, .expect = 0 },
		{ 50000, 3, I_RESTART | I_GEN_END, .gens = 3, .want = RS, .expect = E_PROACTIVE },
	};
	/* a busy queue: at the generation boundary, the just-started prompt is requeued; the counter never resets
	 * (dry-run or a failed restart) so the next restart waits another N generations */
	static const struct step busy[] = {
		{ 0, 50, I_BUSY | I_RESTART | I_GEN_END, .gens = 3, .want = RS, .expect = E_PROACTIVE | E_REQUEUE },
		{ 119999, 50, I_BUSY | I_RESTART, .gens = 3, .want = NO, .expect = E_AWAIT },
		{ 120000, 50, I_BUSY | I_RESTART, .gens = 3, .want = NO, .expect = 0, .outcome = RS,
		  .outcome_ok = false },
		{ 200000, 50, I_RESTART, .gens = 5, .want = NO, .expect = 0 },
		{ 300000, 50, I_BUSY | I_RESTART | I_GEN_END, .gens = 6, .want = RS, .expect = E_PROACTIVE | E_REQUEUE },
	};
	/* no restart method configured: never */
	static const struct step unconfigured[] = {
		{ 0, 50, 0, .gens = 9, .want = NO, .expect = 0 },
	};
	struct policy_params p = policy_params_default();

	(void)state;
	p.restart_every_generations = 3;
	RUN(&p, idle);
	RUN(&p, busy);
	RUN(&p, unconfigured);
}

/* A rung that worked resets the ladder once pressure clears. */
static void test_deescalation(void **state)
{
	static const struct step steps[] = {
		{ 0, 95, 0, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 5000, 95, 0, .want = FA, .expect = E_PRESSURE | E_WARN, .outcome = FM, .outcome_ok = false },
		{ 7000, 50, 0, .want = NO, .expect = 0, .outcome = FA, .outcome_ok = true },
		{ 40000, 95, 0, .want = FM, .expect = E_PRESSURE | E_WARN },
	};
	/* worked by pressure clearing at the deadline, without a big drop */
	static const struct step cleared[] = {
		{ 0, 60, I_NEXT_NOFIT, .want = FM, .expect = E_PRESSURE },
		{ 4999, 59, 0, .want = NO, .expect = E_AWAIT },
		{ 5000, 59, 0, .want = NO, .expect = 0, .outcome = FM, .outcome_ok = true },
	};
	struct policy_params p = policy_params_default();
	struct policy_state s;
	struct policy_input in;
	struct policy_decision d;
	const struct step st = { 7000, 50 };

	(void)state;
	RUN(&p, steps);
	RUN(&p, cleared);

	/* the reset is said in the reason */
	policy_state_init(&s);
	run_steps_on(__func__, &p, &s, steps, 2);
	in = make_input(&st);
	assert_int_equal(policy_decide(&p, &s, &in, &d), 0);
	assert_prefix(d.reason, "free_all freed 691 MiB in 2.0 s: worked; pressure cleared, ladder reset; no pressure: ");
}

static void test_reclaim_sustained(void **state)
{
	static const struct step steps[] = {
		{ 0, 50, 0, .reclaim = 200, .want = NO, .expect = 0 },
		{ 2000, 50, 0, .reclaim = 200, .want = NO, .expect = 0 },
		{ 2500, 50, 0, .reclaim = 10, .want = NO, .expect = 0 },
		{ 3000, 50, 0, .reclaim = 200, .want = NO, .expect = 0 },
		{ 5999, 50, 0, .reclaim = 200, .want = NO, .expect = 0 },
		{ 6000, 50, 0, .reclaim = 200, .want = FM, .expect = E_PRESSURE },
		/* reclaim stopped and nothing else presses: worked */
		{ 11000, 50, 0, .reclaim = 0, .want = NO, .expect = 0, .outcome = FM, .outcome_ok = true },
	};
	struct policy_params p = policy_params_default();
	struct policy_params off = policy_params_default();
	static const struct step off_steps[] = {
		{ 0, 50, 0, .reclaim = 1e6, .want = NO, .expect = 0 },
		{ 10000, 50, 0, .reclaim = 1e6, .want = NO, .expect = 0 },
	};

	(void)state;
	off.act_on_reclaim = false;
	RUN(&p, steps);
	RUN(&off, off_steps);
}

static void test_record_outcome(void **state)
{
	struct policy_params p = policy_params_default();
	struct policy_state s;
	struct policy_decision d;
	struct step st = { 0, 95, I_RESTART, .orphans = 1 };
	struct policy_input in = make_input(&st);
	uint64_t t_act = in.now_ns;

	(void)state;
	policy_state_init(&s);
	assert_int_equal(policy_record_outcome(&s, RO, true, 0, t_act), -ENOENT);
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_int_equal(d.rung, RO);

	assert_int_equal(policy_record_outcome(NULL, RO, true, 0, t_act), -EINVAL);
	assert_int_equal(policy_record_outcome(&s, NO, true, 0, t_act), -EINVAL);
	assert_int_equal(policy_record_outcome(&s, (enum policy_rung)99, true, 0, t_act), -EINVAL);
	assert_int_equal(policy_record_outcome(&s, (enum policy_rung)-3, true, 0, t_act), -EINVAL);
	assert_int_equal(policy_record_outcome(&s, FM, true, 0, t_act), -ENOENT);
	assert_int_equal(policy_record_outcome(&s, RO, true, 0, t_act - 1), -ESTALE);

	/* nothing to reap after all: escalate at the next sample instead of waiting 10 s */
	assert_int_equal(policy_record_outcome(&s, RO, false, 0, t_act + 1), 0);
	in.now_ns = t_act + NSEC_PER_SEC;
	in.orphan_count = 0;
	in.orphan_bytes = 0;
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_int_equal(d.outcome.rung, RO);
	assert_false(d.outcome.ok);
	assert_true(d.outcome.escalated);
	assert_int_equal(d.rung, FM);

	/* the caller measured the effect itself: 200 MiB >= 5 % of 1.5 GiB counts even before usage shows it */
	assert_int_equal(policy_record_outcome(&s, FM, true, MIB(200), in.now_ns), 0);
	in.now_ns += NSEC_PER_SEC;
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_int_equal(d.outcome.rung, FM);
	assert_true(d.outcome.ok);
	assert_false(d.outcome.escalated);
	assert_int_equal(d.outcome.freed_bytes, MIB(200));
	/* still under pressure, free_models cooling down: the next rung */
	assert_int_equal(d.rung, FA);

	/* reports after the verdict are late */
	assert_int_equal(policy_record_outcome(&s, FM, true, MIB(200), in.now_ns), -ENOENT);

	/* a failed report on free_all does not mark /free futile: interrupt-less idle goes to restart anyway */
	policy_state_init(&s);
	st = (struct step){ 0, 95, I_RESTART };
	in = make_input(&st);
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_int_equal(d.rung, FM);
	assert_int_equal(policy_record_outcome(&s, FM, false, 0, in.now_ns), 0);
	in.now_ns += NSEC_PER_MSEC;
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_int_equal(d.rung, FA);
	assert_int_equal(policy_record_outcome(&s, FA, false, 0, in.now_ns), 0);
	in.now_ns += NSEC_PER_MSEC;
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_int_equal(d.rung, RS);
	assert_false(s.free_futile);
}

/* /free freed nothing: the memory is not releasable by /free; restart, and remember it until the server restarts. */
static void test_futile_free_goes_to_restart(void **state)
{
	static const struct step steps[] = {
		{ 0, 95, I_RESTART, .gens = 5, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 5000, 95, I_RESTART, .gens = 5, .want = FA, .expect = E_PRESSURE | E_WARN, .outcome = FM,
		  .outcome_ok = false },
		{ 10000, 95, I_RESTART, .gens = 5, .want = RS, .expect = E_PRESSURE | E_WARN, .outcome = FA,
		  .outcome_ok = false },
		/* someone else freed memory: the restart "worked" (pressure gone), ladder reset */
		{ 11000, 40, I_RESTART, .gens = 5, .want = NO, .expect = 0, .outcome = RS, .outcome_ok = true },
		/* a restart that worked gives /free its chances back */
		{ 50000, 95, I_RESTART, .gens = 6, .want = FM, .expect = E_PRESSURE | E_WARN },
	};
	struct policy_params p = policy_params_default();

	(void)state;
	RUN(&p, steps);
}

static void test_futile_reset_by_server_restart(void **state)
{
	static const struct step steps[] = {
		{ 0, 95, 0, .gens = 5, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 5000, 95, 0, .gens = 5, .want = FA, .expect = E_PRESSURE | E_WARN, .outcome = FM, .outcome_ok = false },
		{ 10000, 95, 0, .gens = 5, .want = NO, .expect = E_PRESSURE | E_WARN | E_EXHAUSTED, .outcome = FA,
		  .outcome_ok = false },
		{ 20000, 20, 0, .gens = 0, .want = NO, .expect = 0 },
		/* fresh server, fresh chances for /free */
		{ 60000, 95, 0, .gens = 1, .want = FM, .expect = E_PRESSURE | E_WARN },
	};
	/* without a server restart, /free stays futile across episodes */
	static const struct step remembered[] = {
		{ 0, 95, 0, .gens = 5, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 5000, 95, 0, .gens = 5, .want = FA, .expect = E_PRESSURE | E_WARN, .outcome = FM, .outcome_ok = false },
		{ 10000, 95, 0, .gens = 5, .want = NO, .expect = E_PRESSURE | E_WARN | E_EXHAUSTED, .outcome = FA,
		  .outcome_ok = false },
		{ 20000, 20, 0, .gens = 5, .want = NO, .expect = 0 },
		{ 60000, 95, 0, .gens = 6, .want = NO, .expect = E_PRESSURE | E_WARN | E_EXHAUSTED },
	};
	struct policy_params p = policy_params_default();

	(void)state;
	RUN(&p, steps);
	RUN(&p, remembered);
}

/* The simulator scenario from DESIGN/forecast: 1.5 GiB, 500 MiB model, 300 MiB leak per generation. */
static void test_third_generation_scenario(void **state)
{
	static const struct step steps[] = {
		{ 0, 1.6, 0, .gens = 0, .want = NO, .expect = 0 },
		/* gen 1 */
		{ 10000, 40, I_BUSY | I_NOFC, .gens = 0, .want = NO, .expect = 0 },
		{ 30000, 79, I_BUSY | I_NOFC, .gens = 0, .want = NO, .expect = 0 },
		{ 40000, 53.7, I_GEN_END | I_NOFC, .gens = 1, .want = NO, .expect = 0 },
		/* gen 2 starts at 825 MiB; the forecast already says gen 3 will not fit */
		{ 41000, 53.7, I_BUSY | I_NEXT_NOFIT | I_LEAK, .gens = 1, .want = FA,
		  .expect = E_PRESSURE | E_DEFERRED },
		{ 60000, 85, I_BUSY | I_NEXT_NOFIT | I_LEAK, .gens = 1, .want = NO,
		  .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 70000, 99, I_BUSY | I_NEXT_NOFIT | I_LEAK, .gens = 1, .want = NO,
		  .expect = E_PRESSURE | E_WARN | E_AWAIT },
		/* gen 2 ends; the worker applies unload + free: back to the baseline */
		{ 75000, 73, I_GEN_END | I_NEXT_NOFIT | I_LEAK, .gens = 2, .want = NO,
		  .expect = E_PRESSURE | E_AWAIT },
		{ 76000, 1.6, I_NOFC, .gens = 2, .want = NO, .expect = 0, .outcome = FA, .outcome_ok = true },
		/* gen 3 loads the model again and fits */
		{ 90000, 60, I_BUSY, .gens = 2, .want = NO, .expect = 0 },
	};
	struct policy_params p = policy_params_default();

	(void)state;
	RUN(&p, steps);
}

static void test_degenerate_inputs(void **state)
{
	struct policy_params p = policy_params_default();
	struct policy_params bad = policy_params_default();
	struct policy_state s;
	struct policy_decision d;
	struct policy_input zero = { 0 };
	struct policy_input in;

	(void)state;
	policy_state_init(&s);
	policy_state_init(NULL);

	assert_int_equal(policy_decide(NULL, &s, &zero, &d), -EINVAL);
	assert_int_equal(d.rung, NO);
	assert_string_equal(d.reason, "invalid arguments");
	assert_int_equal(policy_decide(&p, NULL, &zero, &d), -EINVAL);
	assert_int_equal(policy_decide(&p, &s, NULL, &d), -EINVAL);
	assert_int_equal(policy_decide(&p, &s, &zero, NULL), -EINVAL);
	bad.act_usage_fraction = NAN;
	assert_int_equal(policy_decide(&bad, &s, &zero, &d), -EINVAL);
	assert_string_equal(d.reason, "invalid policy parameters");
	assert_int_equal(d.rung, NO);

	/* zero-initialised input: nothing known, nothing done, repeatedly */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(policy_decide(&p, &s, &zero, &d), 0);
		assert_int_equal(d.rung, NO);
		assert_false(d.pressure);
	}

	/* limit unknown: usage alone never acts, however large */
	in = (struct policy_input){ .now_ns = 1, .usage_bytes = UINT64_MAX, .comfy_reachable = true,
				    .psi_some_avg10_pct = -1 };
	assert_int_equal(policy_decide(&p, &s, &in, &d), 0);
	assert_false(d.pressure);

	/* extreme values everywhere */
	in = (struct policy_input){
		.now_ns = UINT64_MAX, .usage_bytes = UINT64_MAX, .limit_bytes = 1, .reclaim_events_per_s = INFINITY,
		.psi_some_avg10_pct = NAN, .orphan_bytes = UINT64_MAX, .orphan_count = UINT32_MAX,
		.comfy_reachable = true, .busy = true, .queue_pending = UINT32_MAX, .progress_known = true,
		.progress_fraction = NAN, .generations_completed = UINT64_MAX, .forecast_known = true,
		.confidence = NAN, .predicted_next_peak_bytes = UINT64_MAX,
	};
	policy_state_init(&s);
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_int_equal(d.rung, RO);
	assert_int_equal(d.deadline_ns, UINT64_MAX);
	/* the clock jumps back to 0: no wrap-around, the reap still awaits */
	in.now_ns = 0;
	assert_int_equal(policy_decide(&p, &s, &in, &d), 0);
	assert_true(d.awaiting);

	/* usage > limit, huge: a sane rung */
	in = (struct policy_input){ .now_ns = T0_NS, .usage_bytes = GIB(1024), .limit_bytes = MIB(1),
				    .comfy_reachable = true, .psi_some_avg10_pct = -1 };
	policy_state_init(&s);
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_int_equal(d.rung, FM);

	/* a corrupted state does not wedge or crash the ladder */
	policy_state_init(&s);
	s.floor = (enum policy_rung)1234;
	s.awaiting = true;
	s.last_rung = (enum policy_rung)77;
	assert_int_equal(policy_decide(&p, &s, &in, &d), 1);
	assert_int_equal(d.rung, FM);

	/* huge configured times saturate instead of wrapping */
	struct policy_params huge = policy_params_default();
	for (unsigned r = RO; r < POLICY_RUNG_COUNT; r++) {
		huge.cooldown_ms[r] = UINT64_MAX;
		huge.verify_ms[r] = UINT64_MAX;
	}
	huge.verify_after_generation_ms = UINT64_MAX;
	huge.verify_busy_max_ms = UINT64_MAX;
	huge.reclaim_sustain_ms = UINT64_MAX;
	policy_state_init(&s);
	assert_int_equal(policy_decide(&huge, &s, &in, &d), 1);
	assert_int_equal(d.deadline_ns, UINT64_MAX);
	in.now_ns = UINT64_MAX - 1;
	assert_int_equal(policy_decide(&huge, &s, &in, &d), 0);
	assert_true(d.awaiting);
}

/* The decision rule, one sample each: time to the limit at the present growth against each rung's time to effect
 * (defaults: /free and interrupt 3 s, restart 5 s, kill 1 s; required = tte * 1.5 + 1 s). */
static void test_time_to_effect_rule(void **state)
{
	static const struct {
		const char *name;
		unsigned params;
		bool unbounded; /* the limit is not in sight (ttl UINT64_MAX) */
		struct step st;
	} table[] = {
		/* Growth expected to stop below the limit is a bet, taken only while the last resort (restart: 5 s
		 * default, needs 8.5 s) could still act once usage passes where growth was to stop.
		 * 70 %: 461 MiB at 20 MiB/s = 23 s; a bound at 80 % leaves 307 MiB = 15 s beyond it */
		{ "a peak predicted by history stands while it can be refuted in time", 0, true,
		  { .pct = 70, .in = I_BUSY | I_RESTART, .grow = 20, .bound_pct = 80, .want = NO, .expect = 0 } },
		/* a bound at 95 % leaves 77 MiB = 3.8 s beyond it: wrong, it would be found out too late */
		{ "... not when it would be found wrong too late", 0, false,
		  { .pct = 70, .in = I_BUSY | I_RESTART, .grow = 20, .bound_pct = 95, .want = NO, .expect = 0 } },
		/* 85 %: 230 MiB at 200 MiB/s = 1.2 s, the restart needs 8.5 s: a bound at 88 % does not hold it back
		 * (a prompt bigger than those before it climbs on past it, and then it is too late) */
		{ "a peak predicted below the limit does not hold back the last resort", 0, false,
		  { .pct = 85, .in = I_BUSY | I_RESTART, .grow = 200, .bound_pct = 88, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		{ "growth past its bound counts", 0, false,
		  { .pct = 89, .in = I_BUSY | I_RESTART, .grow = 200, .bound_pct = 88, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		/* 85 %: the prompt is expected to end in 1 s (+200 MiB, below the limit); should it run on (a bigger
		 * prompt takes longer), the restart would come too late */
		{ "nor does the running prompt's expected end", 0, false,
		  { .pct = 85, .in = I_BUSY | I_RESTART, .grow = 200, .ends_ms = 1000, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		/* 70 %: 23 s to go at 20 MiB/s; it ends in 5 s (+100 MiB) leaving 18 s: refutable */
		{ "an end in time to refute it stands", 0, true,
		  { .pct = 70, .in = I_BUSY | I_RESTART, .grow = 20, .ends_ms = 5000, .want = NO, .expect = 0 } },
		/* 85 %: 230 MiB at 20 MiB/s = 11.5 s, the restart needs 8.5 s (5 s x 1.5 + 1 s); the next look (an RSS
		 * step of 64 MiB away) in 3.2 s: a decision left to it would come 0.2 s after the deadline */
		{ "the deadline comes one look early", 0, false,
		  { .pct = 85, .in = I_RESTART, .grow = 20, .look_ms = 3200, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT } },
		{ "... and not before", 0, false,
		  { .pct = 85, .in = I_RESTART, .grow = 20, .look_ms = 2900, .want = NO, .expect = E_WARN } },
		/* the learnt restart: 50 ms stop-to-release needs 1.075 s, look 100 ms; 230 MiB at 200 MiB/s = 1.15 s */
		{ "a learnt fast restart: the deadline at its own time", 0, false,
		  { .pct = 85, .in = I_RESTART, .grow = 200, .trs_ms = 50, .look_ms = 100, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT } },
		{ "... not earlier", 0, false,
		  { .pct = 85, .in = I_RESTART, .grow = 150, .trs_ms = 50, .look_ms = 100, .want = NO,
		    .expect = E_WARN } },
		/* the first prompt of a fresh server: 75 ms + the look's lag (the 10 ms floor) + the look, 100 ms;
		 * 230 MiB at 1300 MiB/s = 0.18 s */
		{ "a fresh start: the deadline with the daemon's own margin", 0, false,
		  { .pct = 85, .in = I_BUSY | I_RESTART | I_FRESH, .grow = 1300, .trs_ms = 50, .look_ms = 100, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		{ "a prompt expected to end after the limit", 0, false,
		  { .pct = 85, .in = I_BUSY | I_RESTART, .grow = 200, .ends_ms = 1200, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		{ "... nor when the forecast says the running generation will not fit", 0, false,
		  { .pct = 85, .in = I_BUSY | I_RESTART | I_RUN_NOFIT, .grow = 200, .ends_ms = 1000, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		{ "... nor when idle", 0, false,
		  { .pct = 85, .in = I_RESTART, .grow = 200, .ends_ms = 1000, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT } },
		{ "far below warn a fast climb is a model load", 0, false,
		  { .pct = 30, .in = I_BUSY | I_RESTART, .grow = 500, .want = NO, .expect = 0 } },
		/* 85 %: 230 MiB to go at 50 MiB/s = 4.6 s; /free needs 5.5 s, restart 8.5 s */
		{ "limit nearer than every rung: the last resort now", 0, false,
		  { .pct = 85, .in = I_BUSY | I_RESTART, .grow = 50, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		/* the running prompt ends in 2 s: /free would take effect in time (3 s of 4.6 s), but should it fail
		 * the restart (8.5 s) would come after the limit */
		{ "at the deadline a gentle rung in time itself does not go first", 0, false,
		  { .pct = 85, .in = I_BUSY | I_RESTART, .grow = 50, .tfree_ms = 2000, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		{ "... nor without a forecast's warning: the restart's deadline is the last resort's", 0, false,
		  { .pct = 85, .in = I_BUSY | I_RESTART | I_NOFC, .grow = 50, .tfree_ms = 2000, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		/* 85 %: 230 MiB at 20 MiB/s = 11.5 s, outside the restart's 8.5 s: /free has its chance */
		{ "before the deadline /free in time goes first", 0, false,
		  { .pct = 85, .in = I_BUSY | I_NEXT_NOFIT | I_RESTART, .grow = 20, .tfree_ms = 2000, .want = FM,
		    .expect = E_PRESSURE | E_WARN | E_DEFERRED } },
		/* 81 %: 292 MiB at 100 MiB/s = 2.9 s */
		/* a restart learnt at 0.5 s needs 1.75 s: its deadline is not yet */
		{ "running at risk, node boundary in 1 s: interrupt", 0, false,
		  { .pct = 81, .in = I_BUSY | I_RUN_NOFIT | I_RESTART, .grow = 100, .tir_ms = 1000, .trs_ms = 500,
		    .want = IR,
		    .expect = E_PRESSURE | E_WARN | E_REQUEUE } },
		{ "running at risk, interrupt and restart too slow: restart now", 0, false,
		  { .pct = 81, .in = I_BUSY | I_RUN_NOFIT | I_RESTART, .grow = 100, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		{ "kill enabled and in time beats a late restart", P_KILL, false,
		  { .pct = 81, .in = I_BUSY | I_RUN_NOFIT | I_RESTART, .grow = 100, .want = KL,
		    .expect = E_PRESSURE | E_WARN } },
		{ "no last resort: the gentlest rung that helps, late or not", 0, false,
		  { .pct = 81, .in = I_BUSY | I_RUN_NOFIT, .grow = 100, .want = IR,
		    .expect = E_PRESSURE | E_WARN | E_REQUEUE } },
		/* 60 %: 614 MiB at 50 MiB/s = 12.3 s; /free after the prompt's 10 s needs 16 s; restart 8.5 s */
		{ "brake: a gentle rung too slow on its own, last resort in reach", 0, false,
		  { .pct = 60, .in = I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .grow = 50, .tfree_ms = 10000,
		    .want = FM, .expect = E_PRESSURE | E_DEFERRED | E_BRAKE } },
		{ "no brake: before the last resort's deadline the gentlest rung has its chance", 0, false,
		  { .pct = 60, .in = I_BUSY | I_NEXT_NOFIT | I_RESTART, .grow = 50, .tfree_ms = 10000, .want = FM,
		    .expect = E_PRESSURE | E_DEFERRED } },
		{ "no brake with an unknown time to effect", 0, false,
		  { .pct = 60, .in = I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .grow = 50,
		    .tfree_ms = TTE_UNKNOWN_MS, .want = FM, .expect = E_PRESSURE | E_DEFERRED } },
		/* 81 %: 292 MiB at 40 MiB/s = 7.3 s, inside the restart's 8.5 s: its deadline */
		{ "at the deadline a rung not in time is passed over, brake or not", 0, false,
		  { .pct = 81, .in = I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .grow = 40, .tfree_ms = 10000,
		    .want = RS, .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		{ "at the deadline a rung in time is passed over too: it would leave the restart late", 0, false,
		  { .pct = 81, .in = I_BUSY | I_NEXT_NOFIT | I_RESTART, .grow = 40, .tfree_ms = 4000, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		{ "brake is for gentle rungs only: none left in reach", P_NO_FM | P_NO_FA, false,
		  { .pct = 81, .in = I_BUSY | I_RUN_NOFIT | I_RESTART | I_BRAKE, .grow = 100, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE } },
		{ "no growth: the gentlest rung that helps, as ever", 0, true,
		  { .pct = 60, .in = I_BUSY | I_NEXT_NOFIT | I_RESTART, .tfree_ms = TTE_UNKNOWN_MS, .want = FM,
		    .expect = E_PRESSURE | E_DEFERRED } },
		{ "a restart that is not urgent waits for the boundary", P_NO_FM | P_NO_FA, true,
		  { .pct = 60, .in = I_BUSY | I_NEXT_NOFIT | I_RESTART, .want = NO,
		    .expect = E_PRESSURE | E_BOUNDARY } },
		{ "... and fires at it", P_NO_FM | P_NO_FA, true,
		  { .pct = 60, .in = I_BUSY | I_NEXT_NOFIT | I_RESTART | I_GEN_END, .want = RS,
		    .expect = E_PRESSURE | E_REQUEUE } },
		{ "... or at once when idle", P_NO_FM | P_NO_FA, true,
		  { .pct = 60, .in = I_NEXT_NOFIT | I_RESTART, .want = RS, .expect = E_PRESSURE } },
		{ "usage at the limit, not growing, nothing in time, no last resort: still the gentlest", 0, false,
		  { .pct = 100, .want = FM, .expect = E_PRESSURE | E_WARN } },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		struct policy_params p = make_params(table[i].params);
		const struct step *st = &table[i].st;
		const char *name = table[i].name;
		struct policy_state s;
		struct policy_input in = make_input(st);
		struct policy_decision d;

		policy_state_init(&s);
		int r = policy_decide(&p, &s, &in, &d);
		check(r == (st->want != NO), "returned %d", r);
		check(d.rung == st->want, "rung %s, want %s", policy_rung_name(d.rung), policy_rung_name(st->want));
		check(decision_bits(&d) == st->expect, "flags 0x%x, want 0x%x", decision_bits(&d), st->expect);
		check((d.ttl_ns == UINT64_MAX) == table[i].unbounded, "ttl %" PRIu64, d.ttl_ns);
	}
}

/* The guarantee at any pace: a prompt climbing at a constant rate past where history says it peaks and past when
 * prompts usually end, looked at on every RSS step (64 MiB) or sample (500 ms), with a restart learnt to stop in
 * 50 ms. Whatever the rate, the restart fires while the limit is still farther than it needs, unless the warn line
 * held it back until then (a climb too fast for it is met at the first look past the line); a /free sent at the act
 * line and awaiting its verdict does not hold it back. */
static void test_deadline_any_rate(void **state)
{
	static const double rates[] = { 2, 10, 50, 126, 200, 500, 1300, 5000, 20000 }; /* MiB/s */
	struct policy_params p = policy_params_default();
	const char *name = __func__;

	(void)state;
	for (size_t i = 0; i < 2 * ARRAY_SIZE(rates); i++) {
		/* the first prompt of a fresh server has the tighter margin, any other the stop's full one */
		bool fresh = i >= ARRAY_SIZE(rates);
		double g = rates[i % ARRAY_SIZE(rates)], look_s = MIN(64.0 / g, 0.5), t = 0, pct = 50, prev_pct = 0;
		struct step stv = { 0 }, *st = &stv;
		struct policy_state s;
		struct policy_decision d = { 0 };
		uint64_t required = (75 + (fresh ? p.look_lag_floor_ms : p.tte_margin_ms)) * NSEC_PER_MSEC;

		policy_state_init(&s);
		for (;;) {
			*st = (struct step){ .t_ms = (uint64_t)(t * 1000), .pct = pct,
					     .in = I_BUSY | I_RESTART | (fresh ? I_FRESH : 0),
					     .grow = g, .bound_pct = 92, .ends_ms = 300, .trs_ms = 50,
					     .look_ms = (uint32_t)(look_s * 1000) };
			struct policy_input in = make_input(st);

			/* gentler rungs before the deadline are awaited meanwhile: their verification must not delay it */
			if ((policy_decide(&p, &s, &in, &d) == 1 && d.rung >= RS) || pct >= 100)
				break;
			prev_pct = pct;
			t += look_s;
			pct += g * look_s * 100.0 / 1536.0;
		}
		check(d.rung == RS && d.urgent, "rate %.0f MiB/s (fresh %d): rung %s urgent %d at %.1f %%", g, fresh,
		      policy_rung_name(d.rung), d.urgent, pct);
		check(pct < 100 && (d.ttl_ns > required || prev_pct < 80), "rate %.0f MiB/s: restart at %.1f %% "
		      "(look before at %.1f %%), the limit in %.3f s", g, pct, prev_pct, (double)d.ttl_ns / 1e9);
		/* ... and not a look earlier than needed: then the limit was farther than the restart needs plus
		 * one look */
		check(prev_pct < 80 || (100 - prev_pct) * 1536.0 / 100.0 / g > (double)required / 1e9 + look_s,
		      "rate %.0f MiB/s: the look before (%.1f %%) was already at the deadline", g, prev_pct);
	}
}

/* Cooldowns bound flapping, never safety: a rung in cooldown is skipped to the next one; with everything
 * cooling down and the limit not in sight nothing fires; when the kernel would act first the last resort fires
 * whatever its cooldown. */
static void test_cooldown_skipping(void **state)
{
	static const struct step steps[] = {
		{ 0, 91, I_RESTART, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 1000, 84, I_RESTART, .want = NO, .expect = E_WARN, .outcome = FM, .outcome_ok = true },
		{ 2000, 91, I_RESTART, .want = FA, .expect = E_PRESSURE | E_WARN },
		{ 3000, 84, I_RESTART, .want = NO, .expect = E_WARN, .outcome = FA, .outcome_ok = true },
		{ 4000, 91, I_RESTART, .want = RS, .expect = E_PRESSURE | E_WARN },
		{ 5000, 50, I_RESTART, .want = NO, .expect = 0, .outcome = RS, .outcome_ok = true },
		{ 6000, 91, I_RESTART, .want = NO, .expect = E_PRESSURE | E_WARN | E_COOLDOWN },
		/* 93 % at 100 MiB/s: the limit in 1.1 s, the restart's cooldown has 28 s left */
		{ 7000, 93, I_RESTART, .grow = 100, .want = RS, .expect = E_PRESSURE | E_WARN | E_URGENT },
	};
	/* at the deadline a cooldown is not waited for, even one that ends early enough for its rung to act in
	 * time: should that rung then fail, the last resort would come after its deadline */
	static const struct step waits[] = {
		{ 0, 91, I_RESTART, .want = FM, .expect = E_PRESSURE | E_WARN },
		{ 1000, 84, I_RESTART, .want = NO, .expect = E_WARN, .outcome = FM, .outcome_ok = true },
		{ 2000, 91, I_RESTART, .want = FA, .expect = E_PRESSURE | E_WARN },
		{ 3000, 84, I_RESTART, .want = NO, .expect = E_WARN, .outcome = FA, .outcome_ok = true },
		{ 4000, 91, I_RESTART, .want = RS, .expect = E_PRESSURE | E_WARN },
		{ 5000, 50, I_RESTART, .want = NO, .expect = 0, .outcome = RS, .outcome_ok = true },
		/* 91 % at 3 MiB/s: 46 s to go, far from the restart's deadline */
		{ 6000, 91, I_RESTART, .grow = 3, .want = NO, .expect = E_PRESSURE | E_WARN | E_COOLDOWN },
		/* at 18.5 MiB/s 7.5 s: the restart's deadline (8.5 s); free_models is free again in 2 s and needs 5.5 s */
		{ 28000, 91, I_RESTART, .grow = 18.5, .want = RS, .expect = E_PRESSURE | E_WARN | E_URGENT },
	};
	/* a restart awaiting its verdict: the new server climbs back so fast that no look saw the drop (85 % again
	 * at the first look 2 s later); the next deadline does not wait for the verdict, nor for the cooldown */
	static const struct step again[] = {
		{ 0, 85, I_BUSY | I_RESTART, .grow = 500, .trs_ms = 50, .look_ms = 100, .want = RS,
		  .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE },
		{ 2000, 85, I_BUSY | I_RESTART, .grow = 500, .trs_ms = 50, .look_ms = 100, .want = RS,
		  .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE, .outcome = RS, .outcome_ok = false },
	};
	struct policy_params p = policy_params_default();

	(void)state;
	RUN(&p, steps);
	RUN(&p, waits);
	RUN(&p, again);
}

/* Awaiting a rung's verification never holds back a faster rung when the limit comes sooner than that rung. */
static void test_awaiting_gives_way(void **state)
{
	/* 81 %: 292 MiB at 40 MiB/s = 7.3 s, the restart's deadline (8.5 s); the deferred /free still needs 19 s */
	static const struct step late_free[] = {
		{ 0, 60, I_BUSY | I_NEXT_NOFIT | I_RESTART, .tfree_ms = 20000, .want = FM,
		  .expect = E_PRESSURE | E_DEFERRED },
		/* 70 % at 20 MiB/s is 23 s away: no deadline yet, the /free races on */
		{ 1000, 70, I_BUSY | I_NEXT_NOFIT | I_RESTART, .grow = 20, .tfree_ms = 19000, .want = NO,
		  .expect = E_PRESSURE | E_AWAIT },
		{ 2000, 81, I_BUSY | I_NEXT_NOFIT | I_RESTART, .grow = 40, .tfree_ms = 18000, .want = RS,
		  .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE, .outcome = FM, .outcome_ok = false },
	};
	/* ... while a prompt that ends in 4 s (7 s with margin) keeps the /free waiting */
	static const struct step timely_free[] = {
		{ 0, 60, I_BUSY | I_NEXT_NOFIT | I_RESTART, .tfree_ms = 5000, .want = FM,
		  .expect = E_PRESSURE | E_DEFERRED },
		{ 1000, 81, I_BUSY | I_NEXT_NOFIT | I_RESTART, .grow = 40, .tfree_ms = 4000, .want = NO,
		  .expect = E_PRESSURE | E_WARN | E_AWAIT },
	};
	/* an interrupt past its expected effect while the limit comes nearer than the restart needs */
	static const struct step overdue[] = {
		{ 0, 85, I_BUSY | I_RUN_NOFIT | I_RESTART, .want = IR, .expect = E_PRESSURE | E_WARN | E_REQUEUE },
		{ 2000, 88, I_BUSY | I_RUN_NOFIT | I_RESTART, .grow = 10, .want = NO,
		  .expect = E_PRESSURE | E_WARN | E_AWAIT },
		{ 4000, 95, I_BUSY | I_RUN_NOFIT | I_RESTART, .grow = 50, .want = RS,
		  .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE, .outcome = IR, .outcome_ok = false },
	};
	/* the caller still measures a deferred /free's effect: its deadline waits */
	static const struct step pending[] = {
		{ 0, 60, I_BUSY | I_NEXT_NOFIT, .gens = 1, .want = FM, .expect = E_PRESSURE | E_DEFERRED },
		{ 10000, 60, I_GEN_END | I_NEXT_NOFIT, .gens = 2, .want = NO, .expect = E_PRESSURE | E_AWAIT },
		{ 15000, 60, I_NEXT_NOFIT | I_PENDING, .gens = 2, .want = NO, .expect = E_PRESSURE | E_AWAIT },
		/* a drop while the caller still measures is not the verdict */
		{ 15500, 40, I_PENDING, .gens = 2, .want = NO, .expect = E_AWAIT },
		{ 16000, 40, 0, .gens = 2, .want = NO, .expect = 0, .outcome = FM, .outcome_ok = true },
	};
	/* the brake is held while its rung works and let go when it is judged */
	static const struct step brake[] = {
		{ 0, 60, I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .gens = 1, .grow = 50, .tfree_ms = 10000,
		  .want = FM, .expect = E_PRESSURE | E_DEFERRED | E_BRAKE },
		{ 1000, 61, I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .gens = 1, .grow = 5, .tfree_ms = 9000,
		  .want = NO, .expect = E_PRESSURE | E_AWAIT | E_BRAKE },
		{ 11000, 40, I_RESTART | I_BRAKE | I_GEN_END, .gens = 2, .want = NO, .expect = 0, .outcome = FM,
		  .outcome_ok = true },
	};
	/* the brake is held for the rung's time to effect with margin (10 s * 1.5 + 1 s), no longer: the braked
	 * climb may be the very prompt whose end the /free waits for; then the ladder goes on without it */
	static const struct step brake_hold[] = {
		{ 0, 60, I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .gens = 1, .grow = 50, .tfree_ms = 10000,
		  .want = FM, .expect = E_PRESSURE | E_DEFERRED | E_BRAKE },
		{ 15900, 62, I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .gens = 1, .grow = 2, .tfree_ms = 9000,
		  .want = NO, .expect = E_PRESSURE | E_AWAIT | E_BRAKE },
		{ 16000, 62, I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .gens = 1, .grow = 2, .tfree_ms = 9000,
		  .want = FA, .expect = E_PRESSURE | E_DEFERRED, .outcome = FM, .outcome_ok = false },
	};
	/* a /free chosen while nothing climbed (at the generation boundary) gets the brake once the climb makes it
	 * too slow on its own, the restart still in reach: 614 MiB at 50 MiB/s = 12.3 s, /free needs 16 s */
	static const struct step brake_later[] = {
		{ 0, 40, I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .gens = 1, .tfree_ms = 10000, .want = FM,
		  .expect = E_PRESSURE | E_DEFERRED },
		{ 1000, 50, I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .gens = 1, .grow = 20, .tfree_ms = 9000,
		  .want = NO, .expect = E_PRESSURE | E_AWAIT },
		{ 2000, 60, I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .gens = 1, .grow = 50, .tfree_ms = 10000,
		  .want = NO, .expect = E_PRESSURE | E_AWAIT | E_BRAKE },
		{ 3000, 61, I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .gens = 1, .grow = 2, .tfree_ms = 9000,
		  .want = NO, .expect = E_PRESSURE | E_AWAIT | E_BRAKE },
		{ 9000, 20, I_RESTART | I_BRAKE | I_GEN_END, .gens = 2, .want = NO, .expect = 0, .outcome = FM,
		  .outcome_ok = true },
	};
	/* without the brake available, the same climb only waits (and the deadline decides, as above) */
	static const struct step no_brake_later[] = {
		{ 0, 40, I_BUSY | I_NEXT_NOFIT | I_RESTART, .gens = 1, .tfree_ms = 10000, .want = FM,
		  .expect = E_PRESSURE | E_DEFERRED },
		{ 2000, 60, I_BUSY | I_NEXT_NOFIT | I_RESTART, .gens = 1, .grow = 50, .tfree_ms = 10000, .want = NO,
		  .expect = E_PRESSURE | E_AWAIT },
	};
	/* nor when the restart, the last resort, is not in reach: 307 MiB at 50 MiB/s = 6.1 s < 8.5 s */
	static const struct step brake_later_too_late[] = {
		{ 0, 40, I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .gens = 1, .tfree_ms = 10000, .want = FM,
		  .expect = E_PRESSURE | E_DEFERRED },
		{ 2000, 79, I_BUSY | I_NEXT_NOFIT | I_RESTART | I_BRAKE, .gens = 1, .grow = 50, .tfree_ms = 10000,
		  .want = NO, .expect = E_PRESSURE | E_AWAIT },
	};
	struct policy_params p = policy_params_default();

	(void)state;
	RUN(&p, late_free);
	RUN(&p, timely_free);
	RUN(&p, overdue);
	RUN(&p, pending);
	RUN(&p, brake);
	RUN(&p, brake_hold);
	RUN(&p, brake_later);
	RUN(&p, no_brake_later);
	RUN(&p, brake_later_too_late);
	p.brake = false;
	RUN(&p, no_brake_later);
}

/* The first prompt of a fresh server: nothing but its own end makes room, so it is not stopped before the last
 * resort's deadline, which has the tighter fresh margin (tte * 1.5 + the look's lag, 10 ms at least), and interrupt +
 * requeue (which would run it again the same way) is not a rung for it. Restart learnt at 100 ms (no kill measured:
 * it stands in): 160 ms fresh, 1150 ms otherwise. */
static void test_fresh_start(void **state)
{
	static const struct {
		const char *name;
		unsigned params;
		struct step st;
		uint64_t needs_ms;
	} table[] = {
		/* 91 %: 138 MiB at 200 MiB/s = 0.69 s */
		{ "not fresh: at the deadline the last resort now", 0,
		  { .pct = 91, .in = I_BUSY | I_RUN_NOFIT | I_RESTART, .grow = 200, .trs_ms = 100, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE }, 1150 },
		{ "fresh: the same climb is held until the fresh deadline", 0,
		  { .pct = 91, .in = I_BUSY | I_RUN_NOFIT | I_RESTART | I_FRESH, .grow = 200, .trs_ms = 100, .want = NO,
		    .expect = E_PRESSURE | E_WARN | E_HELD }, 160 },
		/* 98 %: 31 MiB at 200 MiB/s = 0.15 s */
		{ "fresh: at its deadline the last resort fires", 0,
		  { .pct = 98, .in = I_BUSY | I_RUN_NOFIT | I_RESTART | I_FRESH, .grow = 200, .trs_ms = 100, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE }, 160 },
		/* 81 %: 292 MiB at 100 MiB/s = 2.9 s; the node boundary in 1 s */
		{ "not fresh: an interrupt in time", 0,
		  { .pct = 81, .in = I_BUSY | I_RUN_NOFIT | I_RESTART, .grow = 100, .tir_ms = 1000, .trs_ms = 100,
		    .want = IR, .expect = E_PRESSURE | E_WARN | E_REQUEUE }, 1150 },
		{ "fresh: no interrupt, it would run the prompt again the same way", 0,
		  { .pct = 81, .in = I_BUSY | I_RUN_NOFIT | I_RESTART | I_FRESH, .grow = 100, .tir_ms = 1000,
		    .trs_ms = 100, .want = NO, .expect = E_PRESSURE | E_WARN | E_HELD }, 160 },
		{ "fresh, no last resort: the interrupt is all there is, and still no rung for it", 0,
		  { .pct = 95, .in = I_BUSY | I_RUN_NOFIT | I_FRESH, .grow = 100, .tir_ms = 1000, .want = NO,
		    .expect = E_PRESSURE | E_WARN | E_EXHAUSTED }, 0 },
		/* a resubmission round: the prompt runs, the caller does not follow it as the running generation */
		{ "fresh, not followed as running: its deadline is the fresh one, not yet here", 0,
		  { .pct = 91, .in = I_RESTART | I_FRESH, .grow = 200, .trs_ms = 100, .want = FM,
		    .expect = E_PRESSURE | E_WARN }, 160 },
		{ "fresh, not followed as running: at the fresh deadline the last resort, nothing held", 0,
		  { .pct = 98, .in = I_RESTART | I_FRESH, .grow = 200, .trs_ms = 100, .want = RS,
		    .expect = E_PRESSURE | E_WARN | E_URGENT }, 160 },
		{ "fresh, running not at risk: a restart waits for the boundary as ever", P_NO_FM | P_NO_FA,
		  { .pct = 60, .in = I_BUSY | I_NEXT_NOFIT | I_RESTART | I_FRESH, .trs_ms = 100, .want = NO,
		    .expect = E_PRESSURE | E_BOUNDARY }, 160 },
		{ "fresh: a /free for the next prompt still goes (deferred)", 0,
		  { .pct = 60, .in = I_BUSY | I_NEXT_NOFIT | I_RESTART | I_FRESH, .want = FM,
		    .expect = E_PRESSURE | E_DEFERRED }, 7510 }, /* restart time not learnt: 5 s * 1.5 + 10 ms */
		/* restart time unknown: the fresh deadline cannot be computed, it is there at once */
		{ "fresh with an unknown restart time: the last resort at the warn line", 0,
		  { .pct = 91, .in = I_BUSY | I_RUN_NOFIT | I_RESTART | I_FRESH, .grow = 200, .trs_ms = TTE_UNKNOWN_MS,
		    .want = RS, .expect = E_PRESSURE | E_WARN | E_URGENT | E_REQUEUE }, UINT64_MAX / NSEC_PER_MSEC },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		struct policy_params p = make_params(table[i].params);
		const struct step *st = &table[i].st;
		const char *name = table[i].name;
		struct policy_state s;
		struct policy_input in = make_input(st);
		struct policy_decision d;

		policy_state_init(&s);
		int r = policy_decide(&p, &s, &in, &d);
		check(r == (st->want != NO), "returned %d", r);
		check(d.rung == st->want, "rung %s, want %s", policy_rung_name(d.rung), policy_rung_name(st->want));
		check(decision_bits(&d) == st->expect, "flags 0x%x, want 0x%x", decision_bits(&d), st->expect);
		check(d.last_resort_needs_ns / NSEC_PER_MSEC == table[i].needs_ms, "last resort needs %" PRIu64 " ns",
		      d.last_resort_needs_ns);
		if (d.held)
			check(strstr(d.reason, "fresh server") != NULL, "reason");
	}
}

/* A stop proves that a prompt cannot fit only from a clean start on a fresh server, when its own growth alone
 * would have reached the limit (less what others in the cgroup hold) within the last resort's horizon. */
static void test_stop_conclusive(void **state)
{
	static const struct {
		const char *name;
		struct policy_stop st;
		bool want;
	} table[] = {
		/* bigger-than-before: 1125 MiB on a fresh server under 1200, stopped at 1022 climbing 255 MiB/s */
		{ "fresh, stopped 76 MiB short of where a later stop lands: it may fit",
		  { true, MIB(22), MIB(1022), 255.0 * MIB(1), 300 * NSEC_PER_MSEC, MIB(1200) }, false },
		{ "the same stop with the wide horizon would have looked conclusive",
		  { true, MIB(22), MIB(1022), 255.0 * MIB(1), 1150 * NSEC_PER_MSEC, MIB(1200) }, true },
		{ "fresh, at the brink climbing 500 MiB/s: it cannot fit",
		  { true, MIB(25), MIB(1150), 500.0 * MIB(1), 300 * NSEC_PER_MSEC, MIB(1200) }, true },
		{ "at the limit itself", { true, MIB(25), MIB(1200), 0.0, 0, MIB(1200) }, true },
		{ "not fresh: the models and leaks of earlier prompts were there",
		  { false, MIB(425), MIB(1150), 500.0 * MIB(1), 300 * NSEC_PER_MSEC, MIB(1200) }, false },
		/* two servers in 1434 MiB: this one holds 600 (from 30, growing 200 MiB/s), the other 800 */
		{ "shared cgroup: what the other server holds is not this prompt's need",
		  { true, MIB(30), MIB(600), 200.0 * MIB(1), 300 * NSEC_PER_MSEC, MIB(1434) }, false },
		{ "shared cgroup: its own memory alone reaches the limit",
		  { true, MIB(30), MIB(1300), 500.0 * MIB(1), 300 * NSEC_PER_MSEC, MIB(1434) }, true },
		{ "it did not grow", { true, MIB(900), MIB(900), 500.0 * MIB(1), 300 * NSEC_PER_MSEC, MIB(900) }, false },
		{ "room unknown", { true, MIB(25), MIB(1200), 500.0 * MIB(1), 300 * NSEC_PER_MSEC, 0 }, false },
		{ "NaN growth counts as none",
		  { true, MIB(25), MIB(1100), NAN, 300 * NSEC_PER_MSEC, MIB(1200) }, false },
	};

	(void)state;
	assert_false(policy_stop_conclusive(NULL));
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		if (policy_stop_conclusive(&table[i].st) != table[i].want)
			print_error("%s: want %d\n", table[i].name, table[i].want);
		assert_int_equal(policy_stop_conclusive(&table[i].st), table[i].want);
	}
}

/* Two servers in one cgroup: the one whose growth is the largest answers for the cgroup's, the other for its own. */
static void test_growth_answered(void **state)
{
	(void)state;
	/* alone: the cgroup's growth, whatever the tree's */
	assert_true(policy_growth_answered(false, 300.0, 100.0, 0.0) == 300.0);
	assert_true(policy_growth_answered(false, NAN, 100.0, 0.0) == 0.0);
	/* shared, the larger grower: the cgroup's (its own, should the cgroup's read lower between samples) */
	assert_true(policy_growth_answered(true, 650.0, 600.0, 50.0) == 650.0);
	assert_true(policy_growth_answered(true, 500.0, 600.0, 50.0) == 600.0);
	/* shared, the smaller grower: its own only */
	assert_true(policy_growth_answered(true, 650.0, 50.0, 600.0) == 50.0);
	/* shared, not growing: nothing to answer for, even when the others do not grow either */
	assert_true(policy_growth_answered(true, 650.0, 0.0, 0.0) == 0.0);
	assert_true(policy_growth_answered(true, 650.0, -5.0, NAN) == 0.0);
	/* equal growth: each answers for the cgroup's (neither may wait for the other) */
	assert_true(policy_growth_answered(true, 400.0, 200.0, 200.0) == 400.0);
}

/* A stop's SIGTERM that has not ended a server still climbing: SIGKILL now only when the limit would come first. */
static void test_escalate_stop(void **state)
{
	struct policy_params p = policy_params_default();
	const uint64_t ms = 1000000ULL, limit = MIB(1200);
	const struct {
		const char *name;
		uint64_t usage;
		double growth;
		uint64_t grace_left_ns, next_look_ns, lag_ns;
		bool want;
	} table[] = {
		/* 300 MiB at 150 MiB/s: 2 s away, the SIGKILL due in 1.5 s comes first (look 50 ms, lag 10 ms floor) */
		{ "limit after the grace", MIB(900), 150.0 * MIB(1), 1500 * ms, 50 * ms, 0, false },
		/* the idle-growth failure: a prompt POSTed after the SIGTERM loads at 1.7 GiB/s, 2 s of grace left */
		{ "load after SIGTERM", MIB(900), 1700.0 * MIB(1), 2000 * ms, 50 * ms, 0, true },
		/* just outside: limit in 2 s, SIGKILL due in 1.9 s + look 50 ms + lag 10 ms = 1.96 s */
		{ "limit just after", MIB(900), 150.0 * MIB(1), 1900 * ms, 50 * ms, 0, false },
		{ "limit just before", MIB(900), 150.0 * MIB(1), 1945 * ms, 50 * ms, 0, true },
		/* a measured lag under the floor changes nothing; one above it is the look's margin: 1.8 + 0.05 + 0.2 */
		{ "a lag under the floor", MIB(900), 150.0 * MIB(1), 1900 * ms, 50 * ms, 3 * ms, false },
		{ "a loaded machine's lag", MIB(900), 150.0 * MIB(1), 1800 * ms, 50 * ms, 200 * ms, true },
		{ "... less loaded", MIB(900), 150.0 * MIB(1), 1800 * ms, 50 * ms, 100 * ms, false },
		/* it stopped growing (SIGTERM took effect, or it frees): the grace is kept */
		{ "not growing", MIB(1190), 0.0, 2000 * ms, 50 * ms, 0, false },
		{ "freeing", MIB(1190), -500.0 * MIB(1), 2000 * ms, 50 * ms, 0, false },
		{ "rate unknown", MIB(1190), NAN, 2000 * ms, 50 * ms, 0, false },
		/* at the limit already: nothing to wait for */
		{ "at the limit", MIB(1200), 0.0, 2000 * ms, 50 * ms, 0, true },
		/* the grace is over: restart_step's own SIGKILL goes; no limit known: nothing to compare */
		{ "no grace left", MIB(1190), 1700.0 * MIB(1), 0, 50 * ms, 0, false },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		bool got = policy_escalate_stop(&p, table[i].usage, limit, table[i].growth, table[i].grace_left_ns,
						table[i].next_look_ns, table[i].lag_ns);
		if (got != table[i].want)
			print_error("%s: want %d\n", table[i].name, table[i].want);
		assert_int_equal(got, table[i].want);
	}
	assert_false(policy_escalate_stop(&p, MIB(1190), 0, 1700.0 * MIB(1), 2000 * ms, 0, 0));
}

/* The fresh start's deadline is the latest the daemon can make: the kill's measured time to effect (the last
 * resort kills at once when the limit comes before its SIGTERM grace), the next look and that look's measured lag
 * (at least the floor) -- not the stop's SIGTERM time and a fixed 100 ms. bigger-than-before at x10: a prompt
 * that peaks 75 MiB below the limit while climbing 1.5 GiB/s was stopped at ~1040 MiB and given up. */
static void test_fresh_deadline_margin(void **state)
{
	const uint64_t ms = NSEC_PER_MSEC;
	const struct {
		const char *name;
		bool fresh;
		uint64_t headroom_mib;
		double grow_mib_s;
		uint64_t trs_ms, kill_ms, lag_ms, look_ms, grace_ms;
		enum policy_rung want;
		uint64_t needs_us; /* decision.last_resort_needs_ns / 1000 */
	} table[] = {
		/* 75 MiB at 1536 MiB/s = 48.8 ms; kill 2 ms * 1.5 + lag 10 ms (floor) + look 6 ms = 19 ms: held (the
		 * old rule: 50 ms * 1.5 + 100 ms + 6 ms = 181 ms, a stop 280 MiB below the limit) */
		{ "the peak 75 MiB below the limit is let through", true, 75, 1536, 50, 2, 5, 6, 2000, NO, 19000 },
		/* the same climb 25 MiB (16 ms) away: the deadline */
		{ "... and the limit itself is not", true, 25, 1536, 50, 2, 5, 6, 2000, RS, 19000 },
		/* a lag of 60 ms measured on a loaded machine: 3 + 60 + 6 = 69 ms > 48.8 */
		{ "a loaded machine's lag moves the deadline", true, 75, 1536, 50, 2, 60, 6, 2000, RS, 69000 },
		/* no kill measured yet: the SIGTERM stop's learnt 50 ms stands in, 75 + 10 + 6 = 91 ms */
		{ "no kill measured: the stop's own time", true, 75, 1536, 50, 0, 5, 6, 2000, RS, 91000 },
		/* not a fresh start: a stop earlier costs nothing, the full margin (75 + 1000 + 6 ms) */
		{ "not fresh: the full margin", false, 75, 1536, 50, 2, 5, 6, 2000, RS, 1081000 },
		/* 100 MiB at 100 MiB/s = 1 s; kill 1 ms: 1.5 + 10 + 500 = 511.5 ms, beyond a 400 ms grace: that stop
		 * would be a SIGTERM, whose learnt second counts (1500 + 10 + 500 = 2010 ms) */
		{ "a deadline beyond the SIGTERM grace waits on a SIGTERM", true, 100, 100, 1000, 1, 5, 500, 400, RS,
		  2010000 },
		{ "... within the grace, the kill", true, 100, 100, 1000, 1, 5, 500, 2000, NO, 511500 },
	};
	struct policy_params p = policy_params_default();
	const struct step st0 = { 0 }, *st = &st0; /* for check()'s message */

	(void)state;
	/* only the last resort is in question (a /free would be deferred to the prompt's end anyway) */
	p.enabled[FM] = p.enabled[FA] = false;
	for (size_t i = 0; i < ARRAY_SIZE(table); i++) {
		const char *name = table[i].name;
		struct policy_state s;
		struct policy_decision d;
		struct policy_input in = {
			.now_ns = T0_NS,
			.usage_bytes = LIMIT - MIB(table[i].headroom_mib),
			.limit_bytes = LIMIT,
			.psi_some_avg10_pct = -1.0,
			.comfy_reachable = true,
			.busy = true,
			.restart_configured = true,
			.forecast_known = false,
			.confidence = 0.8,
			.growth_bytes_per_s = table[i].grow_mib_s * (double)MIB(1),
			.fresh_start = table[i].fresh,
			.next_look_ns = table[i].look_ms * ms,
			.kill_tte_ns = table[i].kill_ms * ms,
			.event_lag_ns = table[i].lag_ms * ms,
			.last_resort_grace_ns = table[i].grace_ms * ms,
		};

		in.tte_ns[RS] = table[i].trs_ms * ms;
		policy_state_init(&s);
		policy_decide(&p, &s, &in, &d);
		check(d.rung == table[i].want, "rung %s, want %s (ttl %" PRIu64 " ms, needs %" PRIu64 " us)",
		      policy_rung_name(d.rung), policy_rung_name(table[i].want), d.ttl_ns / ms,
		      d.last_resort_needs_ns / 1000);
		check(d.last_resort_needs_ns / 1000 == table[i].needs_us, "needs %" PRIu64 " us, want %" PRIu64,
		      d.last_resort_needs_ns / 1000, table[i].needs_us);
		check(d.rung != RS || d.urgent, "a restart here is the last resort");
	}
}

static void test_giveup(void **state)
{
	const struct policy_stop late = { false, MIB(500), MIB(1400), 500.0 * MIB(1), 300 * NSEC_PER_MSEC, LIMIT };
	const struct policy_stop unsure = { true, MIB(25), MIB(1000), 200.0 * MIB(1), 300 * NSEC_PER_MSEC, LIMIT };
	const struct policy_stop proof = { true, MIB(25), MIB(1500), 500.0 * MIB(1), 300 * NSEC_PER_MSEC, LIMIT };
	struct policy_giveup g;
	uint32_t stops = 0;
	uint64_t need = 0, floor = 0;
	char id[80];

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_int_equal(policy_giveup_note(NULL, "a", &proof, 2, 1, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(policy_giveup_note(&g, "", &proof, 2, 1, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(policy_giveup_note(&g, NULL, &proof, 2, 1, NULL, NULL, NULL), -EINVAL);
	assert_int_equal(policy_giveup_note(&g, "a", NULL, 2, 1, NULL, NULL, NULL), -EINVAL);
	/* stopped on a server with earlier prompts' memory, then on a fresh one short of the limit: keep it */
	assert_int_equal(policy_giveup_note(&g, "big", &late, 2, 1, &stops, &need, &floor), POLICY_GIVEUP_KEEP);
	assert_int_equal(policy_giveup_note(&g, "big", &unsure, 2, 2, &stops, &need, &floor), POLICY_GIVEUP_KEEP);
	assert_int_equal(stops, 2);
	assert_int_equal(need, MIB(975)); /* the largest growth, from where it began then */
	assert_int_equal(floor, MIB(25));
	/* a fresh server shows it cannot fit: the figures are that stop's; but the two stops before it were made
	 * before its peak was known and never saw it near the limit: they are no evidence, so one more is needed */
	assert_int_equal(policy_giveup_note(&g, "big", &proof, 2, 3, &stops, &need, &floor), POLICY_GIVEUP_KEEP);
	assert_int_equal(stops, 3);
	assert_int_equal(need, MIB(1475));
	assert_int_equal(floor, MIB(25));
	assert_int_equal(policy_giveup_note(&g, "big", &proof, 2, 4, &stops, &need, &floor), POLICY_GIVEUP_PROVEN);
	assert_int_equal(stops, 4);
	/* shown once, then an early stop: still one piece of evidence, kept (bigger-than-before at x10: a stop with
	 * other prompts' leaks in memory and one fresh stop dropped a prompt that fits); a second showing gives it up */
	assert_int_equal(policy_giveup_note(&g, "first", &proof, 2, 4, &stops, NULL, NULL), POLICY_GIVEUP_KEEP);
	assert_int_equal(policy_giveup_note(&g, "first", &late, 2, 5, &stops, &need, &floor), POLICY_GIVEUP_KEEP);
	assert_int_equal(need, MIB(1475)); /* the conclusive stop's figures, not the larger inconclusive one */
	assert_int_equal(floor, MIB(25));
	assert_int_equal(policy_giveup_note(&g, "first", &proof, 2, 6, &stops, NULL, NULL), POLICY_GIVEUP_PROVEN);
	assert_int_equal(stops, 3);
	/* never conclusive: kept, until 3 * give_up_after stops say it would hold the queue in a loop */
	for (unsigned k = 1; k < 3 * 2; k++)
		assert_int_equal(policy_giveup_note(&g, "loop", &unsure, 2, 10 + k, &stops, NULL, NULL),
				 POLICY_GIVEUP_KEEP);
	assert_int_equal(policy_giveup_note(&g, "loop", &unsure, 2, 20, &stops, NULL, NULL), POLICY_GIVEUP_INCONCLUSIVE);
	assert_int_equal(stops, 6);
	/* 0 = never give up */
	for (unsigned k = 0; k < 10; k++)
		assert_int_equal(policy_giveup_note(&g, "never", &proof, 0, 30 + k, &stops, NULL, NULL),
				 POLICY_GIVEUP_KEEP);
	/* forgotten: counted from scratch */
	policy_giveup_forget(&g, "big");
	assert_int_equal(policy_giveup_note(&g, "big", &proof, 2, 50, &stops, NULL, NULL), POLICY_GIVEUP_KEEP);
	assert_int_equal(stops, 1);
	/* a full table forgets the least recently stopped prompt, never crashes */
	for (unsigned i = 0; i < 3 * POLICY_GIVEUP_SLOTS; i++) {
		snprintf(id, sizeof(id), "p%u", i);
		assert_int_equal(policy_giveup_note(&g, id, &late, 2, 100 + i, &stops, NULL, NULL), POLICY_GIVEUP_KEEP);
		assert_int_equal(stops, 1);
	}
	/* ids beyond 64 characters match on their first 64 */
	memset(id, 'x', 79);
	id[79] = 0;
	assert_int_equal(policy_giveup_note(&g, id, &proof, 2, 1000, &stops, NULL, NULL), POLICY_GIVEUP_KEEP);
	id[70] = 'y';
	assert_int_equal(policy_giveup_note(&g, id, &proof, 2, 1001, &stops, NULL, NULL), POLICY_GIVEUP_PROVEN);
	policy_giveup_forget(NULL, "x");
	policy_giveup_forget(&g, NULL);
}

static void test_brake_high(void **state)
{
	(void)state;
	/* 1.5 GiB: 16 MiB above current */
	assert_int_equal(policy_brake_high_bytes(MIB(1000), LIMIT), MIB(1016));
	/* 24 GiB: 1 % */
	assert_int_equal(policy_brake_high_bytes(GIB(20), GIB(24)), GIB(20) + GIB(24) / 100);
	/* never within the margin of the limit */
	assert_int_equal(policy_brake_high_bytes(LIMIT - MIB(20), LIMIT), LIMIT - MIB(16));
	assert_int_equal(policy_brake_high_bytes(LIMIT - MIB(16), LIMIT), 0);
	assert_int_equal(policy_brake_high_bytes(LIMIT + 1, LIMIT), 0);
	assert_int_equal(policy_brake_high_bytes(MIB(1), 0), 0);
	assert_int_equal(policy_brake_high_bytes(MIB(1), UINT64_MAX), 0);
	assert_int_equal(policy_brake_high_bytes(0, MIB(8)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rung_names),
		cmocka_unit_test(test_params_default),
		cmocka_unit_test(test_params_validate),
		cmocka_unit_test(test_single_decisions),
		cmocka_unit_test(test_reason_text),
		cmocka_unit_test(test_escalation_idle),
		cmocka_unit_test(test_escalation_partial_free_busy),
		cmocka_unit_test(test_no_double_fire),
		cmocka_unit_test(test_hysteresis),
		cmocka_unit_test(test_busy_deferred_free),
		cmocka_unit_test(test_deferred_free_superseded),
		cmocka_unit_test(test_climbing_fallback),
		cmocka_unit_test(test_unreachable_skips_http),
		cmocka_unit_test(test_dry_run),
		cmocka_unit_test(test_free_after_each_generation),
		cmocka_unit_test(test_unload_for_next_model),
		cmocka_unit_test(test_restart_every_generations),
		cmocka_unit_test(test_deescalation),
		cmocka_unit_test(test_reclaim_sustained),
		cmocka_unit_test(test_record_outcome),
		cmocka_unit_test(test_futile_free_goes_to_restart),
		cmocka_unit_test(test_futile_reset_by_server_restart),
		cmocka_unit_test(test_third_generation_scenario),
		cmocka_unit_test(test_degenerate_inputs),
		cmocka_unit_test(test_time_to_effect_rule),
		cmocka_unit_test(test_deadline_any_rate),
		cmocka_unit_test(test_cooldown_skipping),
		cmocka_unit_test(test_awaiting_gives_way),
		cmocka_unit_test(test_fresh_start),
		cmocka_unit_test(test_stop_conclusive),
		cmocka_unit_test(test_growth_answered),
		cmocka_unit_test(test_escalate_stop),
		cmocka_unit_test(test_fresh_deadline_margin),
		cmocka_unit_test(test_giveup),
		cmocka_unit_test(test_brake_high),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>
#include "common.h"
#include "forecast.h"
#include "generations.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

#define S(x) ((uint64_t)(x) * NSEC_PER_SEC)
#define LIMIT_1536 MIB(1536)
/* 0.95 × 1536 MiB, truncated to bytes */
#define THR_1536 1530082099ULL

#define assert_near(a, b, eps)                                                                          \
	do {                                                                                            \
		double _a = (a), _b = (b);                                                              \
		if (!(fabs(_a - _b) <= (eps)))                                                          \
			fail_msg("%s = %.6f, expected %.6f (± %g)", #a, _a, _b, (double)(eps));         \
	} while (0)

#define assert_contains(hay, needle)                                                                    \
	do {                                                                                            \
		if (!strstr((hay), (needle)))                                                           \
			fail_msg("\"%s\" does not contain \"%s\"", (hay), (needle));                    \
	} while (0)

/* Forecast for the tracker's state right now, as the daemon would compute it. */
static struct forecast fc_now(const struct gen_tracker *t, uint64_t limit, uint64_t usage)
{
	struct forecast_input in;
	struct forecast f;

	assert_int_equal(forecast_input_from_tracker(t, limit, usage, &in), 0);
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	return f;
}

static struct forecast_input base_input(void)
{
	struct forecast_input in;

	memset(&in, 0, sizeof(in));
	in.reclaim_per_sec = -1;
	in.psi_some_avg10 = -1;
	return in;
}

/* ---- formatting ---- */

static void test_params(void **state)
{
	struct forecast_params p;
	struct forecast_input in = base_input();
	struct forecast f;

	(void)state;
	forecast_params_default(&p);
	assert_near(p.margin, 0.95, 0);
	assert_int_equal(p.min_generations, 2);
	assert_int_equal(p.noise_floor_bytes, MIB(32));
	assert_near(p.noise_floor_fraction, 0.02, 0);
	forecast_params_default(NULL);

	/* Out-of-range knobs fall back to defaults. */
	in.limit_bytes = LIMIT_1536;
	in.usage_bytes = MIB(100);
	p.margin = NAN;
	p.noise_floor_fraction = -1;
	p.reclaim_high_per_sec = INFINITY;
	p.psi_some_high = 1000;
	p.min_generations = 0;
	assert_int_equal(forecast_next(&in, &p, &f), 0);
	assert_int_equal(f.threshold_bytes, THR_1536);

	p.margin = 0.5;
	assert_int_equal(forecast_next(&in, &p, &f), 0);
	assert_int_equal(f.threshold_bytes, MIB(768));
}

/* ---- scenario 1: the simulator's leak in a 1.5 GiB cgroup ----
 * baseline 25 MiB; model 500 MiB loaded by generation 1; transient 400 MiB; leak 300 MiB per generation.
 * gen1: 25 -> peak 1225 -> residual 825; gen2: 825 -> 1525 -> 1125; gen3 would peak at 1825 > 1536. */
static void test_scenario_leak(void **state)
{
	struct gen_tracker t;
	struct forecast f;

	(void)state;
	gen_tracker_init(&t, "default");
	gen_sample(&t, S(0), MIB(25));
	f = fc_now(&t, LIMIT_1536, MIB(25));
	assert_true(f.next_fits);
	assert_false(f.leak_suspected);
	assert_near(f.confidence, 0, 0);
	assert_int_equal(f.predicted_next_peak_bytes, 0);
	assert_int_equal(f.headroom_bytes, (int64_t)MIB(1511));
	assert_string_equal(f.reason, "no completed generation yet; usage 25 MiB of the 1.50 GiB limit");

	/* Generation 1 loads the model: nothing to forecast from while it runs. */
	gen_start(&t, "p1", S(1), MIB(25));
	gen_sample(&t, S(2), MIB(525));
	gen_sample(&t, S(3), MIB(1225));
	f = fc_now(&t, LIMIT_1536, MIB(1225));
	assert_true(f.running_fits);
	assert_true(f.next_fits);
	assert_int_equal(f.predicted_running_peak_bytes, MIB(1225));
	assert_int_equal(f.predicted_residual_after_running_bytes, 0);
	assert_near(f.confidence, 0, 0);
	assert_contains(f.reason, "first generation since the start is running at 1.20 GiB");

	gen_end(&t, "p1", GEN_SUCCESS, S(4), MIB(825));
	gen_sample(&t, S(5), MIB(825));

	/* One generation: it cannot tell its model load from a leak. Next peak = residual + its transient. */
	f = fc_now(&t, LIMIT_1536, MIB(825));
	assert_true(f.next_fits);
	assert_true(f.running_fits);
	assert_false(f.leak_suspected);
	assert_false(f.from_running);
	assert_int_equal(f.predicted_next_peak_bytes, MIB(1225));
	assert_int_equal(f.headroom_bytes, (int64_t)MIB(311));
	assert_int_equal(f.generations_left, -1);
	assert_int_equal(f.leak_bytes_per_gen, 0);
	assert_near(f.confidence, 1.0 / 3.0, 1e-12);
	assert_string_equal(f.reason, "one generation seen, no leak estimate yet; generation 2 should peak near "
				      "1.20 GiB of the 1.50 GiB limit");

	/* Generation 2 runs. Up to gen 1's transient nothing is unusual. */
	gen_start(&t, "p2", S(6), MIB(825));
	gen_sample(&t, S(7), MIB(1000));
	f = fc_now(&t, LIMIT_1536, MIB(1000));
	assert_true(f.next_fits);
	assert_true(f.running_fits);
	assert_int_equal(f.predicted_running_peak_bytes, MIB(1225));
	assert_int_equal(f.predicted_residual_after_running_bytes, MIB(825));
	assert_int_equal(f.predicted_next_peak_bytes, MIB(1225));

	gen_sample(&t, S(8), MIB(1225));
	f = fc_now(&t, LIMIT_1536, MIB(1225));
	assert_true(f.next_fits);
	assert_false(f.from_running);

	/* 175 MiB beyond gen 1's transient: if gen 2 keeps it, gen 3 starts at 1000 and peaks at 1575. */
	gen_sample(&t, S(9), MIB(1400));
	f = fc_now(&t, LIMIT_1536, MIB(1400));
	assert_true(f.running_fits);
	assert_false(f.next_fits);
	assert_true(f.from_running);
	assert_false(f.leak_suspected);
	assert_int_equal(f.predicted_residual_after_running_bytes, MIB(1000));
	assert_int_equal(f.predicted_next_peak_bytes, MIB(1575));
	assert_int_equal(f.leak_bytes_per_gen, (int64_t)MIB(175));
	assert_int_equal(f.generations_left, 0);
	assert_near(f.confidence, 1.0 / 6.0, 1e-12);

	/* At gen 2's peak: the warning the daemon needs while /free can still be queued behind gen 2. */
	gen_sample(&t, S(10), MIB(1525));
	f = fc_now(&t, LIMIT_1536, MIB(1525));
	assert_true(f.running_fits);
	assert_false(f.next_fits);
	assert_true(f.from_running);
	assert_int_equal(f.predicted_running_peak_bytes, MIB(1525));
	assert_int_equal(f.predicted_residual_after_running_bytes, MIB(1125));
	assert_int_equal(f.predicted_next_peak_bytes, MIB(1825));
	assert_int_equal(f.headroom_bytes, -(int64_t)MIB(289));
	assert_int_equal(f.leak_bytes_per_gen, (int64_t)MIB(300));
	assert_string_equal(f.reason, "running generation holds 300 MiB beyond the last transient; if it keeps it, "
				      "generation 3 will peak at 1.78 GiB, above the 1.50 GiB limit");

	/* Gen 2 ended: two residuals, 300 MiB apart. */
	gen_end(&t, "p2", GEN_SUCCESS, S(11), MIB(1125));
	gen_sample(&t, S(12), MIB(1125));
	f = fc_now(&t, LIMIT_1536, MIB(1125));
	assert_false(f.next_fits);
	assert_true(f.running_fits);
	assert_true(f.leak_suspected);
	assert_false(f.from_running);
	assert_int_equal(f.leak_bytes_per_gen, (int64_t)MIB(300));
	assert_int_equal(f.predicted_next_peak_bytes, MIB(1825));
	assert_int_equal(f.headroom_bytes, -(int64_t)MIB(289));
	assert_int_equal(f.generations_left, 0);
	assert_int_equal(f.threshold_bytes, THR_1536);
	assert_near(f.confidence, 0.5, 1e-12);
	assert_string_equal(f.reason, "residual grows 300 MiB per generation; generation 3 will peak at 1.78 GiB, "
				      "above the 1.50 GiB limit");

	/* Scenario 6: generation 3 starts at 1125 with ~700 MiB excess: it alone crosses the limit. */
	gen_start(&t, "p3", S(13), MIB(1125));
	gen_sample(&t, S(14), MIB(1200));
	f = fc_now(&t, LIMIT_1536, MIB(1200));
	assert_false(f.running_fits);
	assert_false(f.next_fits);
	assert_true(f.leak_suspected);
	assert_int_equal(f.predicted_running_peak_bytes, MIB(1825));
	assert_int_equal(f.predicted_residual_after_running_bytes, MIB(1425));
	assert_int_equal(f.predicted_next_peak_bytes, MIB(2125));
	assert_string_equal(f.reason, "running generation 3 started at 1.10 GiB is expected to peak at 1.78 GiB, "
				      "above the 1.50 GiB limit");
}

/* Same leak, busy queue: generation 2 starts the instant generation 1 ends; no idle sample in between. */
static void test_scenario_leak_busy_queue(void **state)
{
	struct gen_tracker t;
	struct forecast f;

	(void)state;
	gen_tracker_init(&t, NULL);
	gen_start(&t, "p1", S(1), MIB(25));
	gen_sample(&t, S(2), MIB(1225));
	gen_end(&t, "p1", GEN_SUCCESS, S(3), MIB(825));
	gen_start(&t, "p2", S(3), MIB(825));
	gen_sample(&t, S(4), MIB(1525));
	f = fc_now(&t, LIMIT_1536, MIB(1525));
	assert_false(f.next_fits);
	assert_int_equal(f.predicted_next_peak_bytes, MIB(1825));
	gen_end(&t, "p2", GEN_SUCCESS, S(5), MIB(1125));
	gen_start(&t, "p3", S(5), MIB(1125));
	f = fc_now(&t, LIMIT_1536, MIB(1125));
	assert_true(f.leak_suspected);
	assert_false(f.running_fits);
	assert_int_equal(f.predicted_running_peak_bytes, MIB(1825));
	assert_int_equal(f.leak_bytes_per_gen, (int64_t)MIB(300));
}

/* ---- scenario 2: no leak, residuals flat at 825 MiB ± 20 MiB ---- */
static void test_scenario_no_leak(void **state)
{
	static const int noise_mib[] = { 0, 20, -20, 15, -15, 5, -5, 20, -20, 0, 20, -20 };
	static const int peak_noise_mib[] = { 0, 20, -20, 20, 20, -20, 0, 20, -20, 20, 0, 20 };
	struct gen_tracker t;
	struct forecast f;
	uint64_t start = 25;
	char id[16];

	(void)state;
	gen_tracker_init(&t, NULL);
	for (size_t i = 0; i < ARRAY_SIZE(noise_mib); i++) {
		uint64_t peak = (i == 0 ? 1225 : start + 400) + peak_noise_mib[i];
		uint64_t residual = 825 + noise_mib[i];
		uint64_t samples[] = { start + 100, start + 250, peak, peak - 50 };

		snprintf(id, sizeof(id), "p%zu", i);
		gen_start(&t, id, S(i * 10), MIB(start));
		for (size_t k = 0; k < ARRAY_SIZE(samples); k++) {
			gen_sample(&t, S(i * 10 + 1 + k), MIB(samples[k]));
			f = fc_now(&t, LIMIT_1536, MIB(samples[k]));
			assert_false(f.leak_suspected);
			assert_true(f.running_fits);
			assert_true(f.next_fits);
			assert_false(f.from_running);
			assert_int_equal(f.leak_bytes_per_gen, 0);
		}
		gen_end(&t, id, GEN_SUCCESS, S(i * 10 + 6), MIB(residual));
		gen_sample(&t, S(i * 10 + 7), MIB(residual));
		f = fc_now(&t, LIMIT_1536, MIB(residual));
		assert_false(f.leak_suspected);
		assert_true(f.next_fits);
		assert_int_equal(f.generations_left, -1);
		assert_true(f.predicted_next_peak_bytes < MIB(1330));
		start = residual;
	}
	/* Twelve generations seen: the "no leak" verdict is now well founded. */
	assert_near(f.confidence, 12.0 / 14.0, 1e-12);
	assert_contains(f.reason, "no leak seen; generation 13 should peak near");
}

/* ---- scenario 3: a single generation ---- */
static void test_scenario_single(void **state)
{
	struct gen_tracker t;
	struct forecast f;

	(void)state;
	gen_tracker_init(&t, NULL);
	gen_start(&t, "only", S(0), MIB(25));
	gen_sample(&t, S(1), MIB(1225));
	gen_end(&t, "only", GEN_SUCCESS, S(2), MIB(825));
	f = fc_now(&t, LIMIT_1536, MIB(825));
	assert_false(f.leak_suspected);
	assert_int_equal(f.leak_bytes_per_gen, 0);
	assert_true(f.confidence < 0.34);
	assert_true(f.next_fits);
	assert_int_equal(f.generations_left, -1);

	/* A large first generation (model load 800 MiB) still is no leak claim. */
	gen_tracker_init(&t, NULL);
	gen_start(&t, "only", S(0), MIB(25));
	gen_sample(&t, S(1), MIB(1400));
	gen_end(&t, "only", GEN_SUCCESS, S(2), MIB(1300));
	f = fc_now(&t, LIMIT_1536, MIB(1300));
	assert_false(f.leak_suspected);
	assert_int_equal(f.leak_bytes_per_gen, 0);
	/* 1300 + transient 100 = 1400 < 1459: fits, honestly only as far as one generation can tell. */
	assert_true(f.next_fits);
	assert_int_equal(f.predicted_next_peak_bytes, MIB(1400));
}

/* ---- scenario 4: server restart mid-series ---- */
static void test_scenario_restart(void **state)
{
	struct gen_tracker t;
	struct forecast f;
	struct forecast_input in;

	(void)state;
	gen_tracker_init(&t, NULL);
	gen_start(&t, "p1", S(0), MIB(25));
	gen_sample(&t, S(1), MIB(1225));
	gen_end(&t, "p1", GEN_SUCCESS, S(2), MIB(825));
	gen_start(&t, "p2", S(3), MIB(825));
	gen_sample(&t, S(4), MIB(1525));
	gen_end(&t, "p2", GEN_SUCCESS, S(5), MIB(1125));
	assert_true(fc_now(&t, LIMIT_1536, MIB(1125)).leak_suspected);

	/* The daemon restarted ComfyUI; memory is back at the baseline. */
	gen_server_restarted(&t, S(10), MIB(25));
	gen_sample(&t, S(11), MIB(25));
	f = fc_now(&t, LIMIT_1536, MIB(25));
	assert_false(f.leak_suspected);
	assert_int_equal(f.leak_bytes_per_gen, 0);
	assert_true(f.next_fits);
	assert_near(f.confidence, 0, 0);
	assert_int_equal(forecast_input_from_tracker(&t, LIMIT_1536, MIB(25), &in), 0);
	assert_int_equal(in.completed, 0);
	assert_int_equal(in.leak.points, 0);
	assert_int_equal(in.next_seq, 1);

	/* First generation of the new epoch: growth 800 vs its own start, no slope from 1125 down to 825. */
	gen_start(&t, "p3", S(12), MIB(25));
	gen_sample(&t, S(13), MIB(1225));
	gen_end(&t, "p3", GEN_SUCCESS, S(14), MIB(825));
	assert_int_equal(forecast_input_from_tracker(&t, LIMIT_1536, MIB(825), &in), 0);
	assert_int_equal(in.completed, 1);
	assert_int_equal(in.leak.points, 1);
	assert_near(in.leak.slope_bytes_per_gen, 0, 0);
	assert_int_equal(in.max_excess_bytes, 0);
	assert_int_equal(in.max_transient_bytes, MIB(400));
	f = fc_now(&t, LIMIT_1536, MIB(825));
	assert_false(f.leak_suspected);
	assert_true(f.next_fits);
	assert_int_equal(f.predicted_next_peak_bytes, MIB(1225));
	assert_int_equal(f.leak_bytes_per_gen, 0);

	/* The regression restarts: the leak is found again from this epoch alone. */
	gen_start(&t, "p4", S(15), MIB(825));
	gen_sample(&t, S(16), MIB(1525));
	gen_end(&t, "p4", GEN_SUCCESS, S(17), MIB(1125));
	f = fc_now(&t, LIMIT_1536, MIB(1125));
	assert_true(f.leak_suspected);
	assert_int_equal(f.leak_bytes_per_gen, (int64_t)MIB(300));
	assert_false(f.next_fits);
	assert_contains(f.reason, "generation 3 will peak at 1.78 GiB");
}

/* ---- scenario 5: ±3 % noise on every value ---- */
static uint64_t lcg_state;

static double noise(double frac)
{
	lcg_state = lcg_state * 6364136223846793005ULL + 1442695040888963407ULL;
	return 1.0 + frac * (2.0 * (double)(lcg_state >> 11) / (double)(1ULL << 53) - 1.0);
}

static uint64_t noisy_mib(double mib)
{
	return (uint64_t)(mib * noise(0.03) * (double)MIB(1));
}

/* Feeds generations with leak_mib per generation (transient 400, baseline 25) and returns the
 * forecast after each one in out[]. */
static void noisy_series(uint64_t limit, double model_mib, double leak_mib, unsigned gens, struct forecast *out)
{
	struct gen_tracker t;
	double start = 25;
	char id[16];

	gen_tracker_init(&t, NULL);
	for (unsigned i = 0; i < gens; i++) {
		double residual = (i == 0 ? start + model_mib : start) + leak_mib;
		double peak = residual + 400;
		uint64_t last = 0;

		snprintf(id, sizeof(id), "p%u", i);
		gen_start(&t, id, S(i * 10), noisy_mib(start));
		for (unsigned k = 1; k <= 4; k++)
			gen_sample(&t, S(i * 10 + k), noisy_mib(start + (peak - start) * k / 4));
		gen_end(&t, id, GEN_SUCCESS, S(i * 10 + 5), noisy_mib(residual));
		for (unsigned k = 6; k <= 8; k++) {
			last = noisy_mib(residual);
			gen_sample(&t, S(i * 10 + k), last);
		}
		out[i] = fc_now(&t, limit, last);
		start = residual;
	}
}

static void test_scenario_noise(void **state)
{
	struct forecast f[6];

	(void)state;
	for (uint64_t seed = 1; seed <= 500; seed++) {
		lcg_state = seed;
		/* 4 GiB so the leak can run long enough to be measured. */
		noisy_series(GIB(4), 500, 300, 6, f);
		for (unsigned i = 0; i < 6; i++) {
			if (i >= 2 && !f[i].leak_suspected)
				fail_msg("seed %llu: leak missed after generation %u: %s", (unsigned long long)seed, i + 1,
					 f[i].reason);
			if (i >= 2) {
				assert_in_range(f[i].leak_bytes_per_gen, MIB(200), MIB(400));
				assert_true(f[i].confidence >= 0.5);
			}
		}
		/* No false alarm on a series that never leaks, with the same noise, in the tight 1.5 GiB cgroup. */
		lcg_state = seed * 7919;
		noisy_series(LIMIT_1536, 800, 0, 6, f);
		for (unsigned i = 0; i < 6; i++) {
			if (f[i].leak_suspected || !f[i].next_fits)
				fail_msg("seed %llu: false alarm after generation %u: %s", (unsigned long long)seed, i + 1,
					 f[i].reason);
		}
	}
}

/* ---- scenario 7: degenerate inputs ---- */
static void test_degenerate(void **state)
{
	struct forecast_input in = base_input();
	struct forecast f;

	(void)state;
	assert_int_equal(forecast_next(&in, NULL, NULL), -EINVAL);
	memset(f.reason, 'x', sizeof(f.reason));
	assert_int_equal(forecast_next(NULL, NULL, &f), -EINVAL);
	assert_true(f.next_fits);
	assert_true(f.running_fits);
	assert_near(f.confidence, 0, 0);
	assert_string_equal(f.reason, "no input, no forecast");

	/* Unknown limit: no opinion. */
	in.usage_bytes = MIB(900);
	in.completed = 3;
	in.last_residual_bytes = MIB(900);
	assert_int_equal(forecast_next(&in, NULL, &f), -EINVAL);
	assert_true(f.next_fits);
	assert_true(f.running_fits);
	assert_false(f.leak_suspected);
	assert_int_equal(f.generations_left, -1);
	assert_near(f.confidence, 0, 0);
	assert_string_equal(f.reason, "memory limit unknown, no forecast");

	/* Usage already above the limit, nothing known about generations. */
	in = base_input();
	in.limit_bytes = LIMIT_1536;
	in.usage_bytes = MIB(2000);
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_false(f.next_fits);
	assert_int_equal(f.headroom_bytes, -(int64_t)MIB(464));
	assert_int_equal(f.predicted_next_peak_bytes, 0);
	assert_int_equal(f.generations_left, 0);
	assert_near(f.confidence, 0, 0);

	/* Usage above the limit while idle with history: the next one starts from there. */
	in.completed = 2;
	in.last_residual_bytes = MIB(800);
	in.max_transient_bytes = MIB(100);
	in.max_excess_bytes = MIB(100);
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_false(f.next_fits);
	assert_int_equal(f.predicted_next_peak_bytes, MIB(2100));
	assert_int_equal(f.generations_left, 0);

	/* Everything at the top of its range. */
	in = base_input();
	in.limit_bytes = UINT64_MAX;
	in.usage_bytes = UINT64_MAX;
	in.completed = UINT32_MAX;
	in.last_residual_bytes = UINT64_MAX;
	in.max_excess_bytes = UINT64_MAX;
	in.max_transient_bytes = UINT64_MAX;
	in.running = true;
	in.running_start_bytes = UINT64_MAX;
	in.running_peak_bytes = UINT64_MAX;
	in.next_seq = UINT64_MAX;
	in.leak = (struct leak_estimate){ .slope_bytes_per_gen = 1e300, .r2 = 1, .points = 5 };
	in.reclaim_per_sec = INFINITY;
	in.psi_some_avg10 = 100;
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_false(f.next_fits);
	assert_false(f.running_fits);
	assert_true(f.leak_suspected);
	assert_true(f.pressure_high);
	assert_int_equal(f.predicted_next_peak_bytes, UINT64_MAX);
	assert_int_equal(f.predicted_residual_after_running_bytes, UINT64_MAX);
	assert_int_equal(f.leak_bytes_per_gen, INT64_MAX);
	assert_true(f.confidence >= 0 && f.confidence <= 1);
	assert_true(strlen(f.reason) < FORECAST_REASON_MAX);

	/* Garbage in the leak estimate is no leak. */
	in = base_input();
	in.limit_bytes = LIMIT_1536;
	in.usage_bytes = MIB(825);
	in.completed = 4;
	in.last_residual_bytes = MIB(825);
	in.max_transient_bytes = MIB(400);
	in.max_excess_bytes = MIB(400);
	in.leak = (struct leak_estimate){ .slope_bytes_per_gen = NAN, .r2 = 1, .points = 3 };
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_false(f.leak_suspected);
	assert_true(f.next_fits);
	in.leak = (struct leak_estimate){ .slope_bytes_per_gen = 1e9, .r2 = NAN, .points = 3 };
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_false(f.leak_suspected);
	in.leak = (struct leak_estimate){ .slope_bytes_per_gen = 1e9, .slope_stderr_bytes = -1, .points = 3 };
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_false(f.leak_suspected);
	/* A falling series is no leak and no "negative growth" either. */
	in.leak = (struct leak_estimate){ .slope_bytes_per_gen = -3e8, .r2 = 1, .points = 3 };
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_false(f.leak_suspected);
	assert_int_equal(f.leak_bytes_per_gen, 0);
	assert_int_equal(f.generations_left, -1);
	assert_int_equal(f.predicted_next_peak_bytes, MIB(1225));

	/* Tracker helpers reject NULL. */
	assert_int_equal(forecast_input_from_tracker(NULL, 1, 1, &in), -EINVAL);
	assert_near(in.reclaim_per_sec, -1, 0);
	assert_int_equal(forecast_input_from_tracker(NULL, 1, 1, NULL), -EINVAL);
}

/* The leak claim: above the floor, enough generations, and a slope that stands out of its own noise. */
static void test_leak_claim_table(void **state)
{
	static const struct {
		const char *name;
		unsigned completed, points;
		double slope_mib, stderr_mib, r2;
		bool suspected;
	} cases[] = {
		{ "two points, 300", 2, 2, 300, 0, 1, true },
		{ "two points, 40 (noise of two ±20 samples)", 2, 2, 40, 0, 1, false },
		{ "two points, 64 (twice the floor)", 2, 2, 64, 0, 1, false },
		{ "two points, 65", 2, 2, 65, 0, 1, true },
		{ "three points, 33", 4, 3, 33, 1, 0.99, true },
		{ "three points, 32 (floor)", 4, 3, 32, 1, 0.99, false },
		{ "three points, within its noise", 4, 3, 100, 60, 0.3, false },
		{ "three points, twice its stderr", 4, 3, 100, 50, 0.6, true },
		{ "one completed", 1, 2, 300, 0, 1, false },
		{ "one point", 2, 1, 300, 0, 1, false },
		{ "negative", 4, 3, -300, 1, 1, false },
	};
	struct forecast f;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct forecast_input in = base_input();

		print_message("case %s\n", cases[i].name);
		in.limit_bytes = LIMIT_1536; /* floor = max(32 MiB, 2 % = 30.7 MiB) = 32 MiB */
		in.usage_bytes = MIB(800);
		in.completed = cases[i].completed;
		in.last_residual_bytes = MIB(800);
		in.max_transient_bytes = MIB(100);
		in.leak.points = cases[i].points;
		in.leak.slope_bytes_per_gen = cases[i].slope_mib * MIB(1);
		in.leak.slope_stderr_bytes = cases[i].stderr_mib * MIB(1);
		in.leak.r2 = cases[i].r2;
		assert_int_equal(forecast_next(&in, NULL, &f), 0);
		assert_int_equal(f.leak_suspected, cases[i].suspected);
		assert_int_equal(f.leak_bytes_per_gen, cases[i].suspected ? (int64_t)(cases[i].slope_mib * MIB(1)) : 0);
	}
}

static void test_generations_left(void **state)
{
	struct forecast_input in = base_input();
	struct forecast f;

	(void)state;
	/* 10 GiB: threshold 9728 MiB. Next peak 2000 + 700 = 2700; peaks 2700, 3000, … 9600 fit: 24. */
	in.limit_bytes = GIB(10);
	in.usage_bytes = MIB(2000);
	in.next_seq = 5;
	in.completed = 4;
	in.last_residual_bytes = MIB(2000);
	in.max_excess_bytes = MIB(700);
	in.max_transient_bytes = MIB(400);
	in.leak = (struct leak_estimate){ .slope_bytes_per_gen = (double)MIB(300), .r2 = 1, .points = 3 };
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_true(f.next_fits);
	assert_true(f.leak_suspected);
	assert_int_equal(f.predicted_next_peak_bytes, MIB(2700));
	assert_int_equal(f.generations_left, 24);
	assert_int_equal(f.headroom_bytes, (int64_t)MIB(7540));
	assert_near(f.confidence, 4.0 / 6.0, 1e-12);
	assert_string_equal(f.reason, "residual grows 300 MiB per generation; generation 5 will peak at 2.64 GiB; "
				      "24 more fit below 9.50 GiB");

	/* r² lowers the confidence of a leak claim. */
	in.leak.r2 = 0.5;
	in.leak.slope_stderr_bytes = (double)MIB(10);
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_near(f.confidence, 4.0 / 6.0 * 0.75, 1e-12);

	/* The excess follows a slope larger than what was observed: next = 2000 + max(700, 400 + 328) = 2728;
	 * room 7000 MiB = 21.34 slopes: generations 1..22 peak below 9728 MiB (the 22nd at 2728 + 21 × 328 = 9616). */
	in.leak.slope_bytes_per_gen = (double)MIB(328);
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_int_equal(f.predicted_next_peak_bytes, MIB(2728));
	assert_int_equal(f.generations_left, 22);
	/* A peak exactly at the threshold does not fit: room 7000 MiB = 20 × 350 → generations 1..20. */
	in.max_excess_bytes = MIB(700);
	in.max_transient_bytes = MIB(378);
	in.leak.slope_bytes_per_gen = (double)MIB(350);
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_int_equal(f.predicted_next_peak_bytes, MIB(2728));
	assert_int_equal(f.generations_left, 20);

	/* A tiny leak against a huge limit saturates instead of overflowing. */
	in = base_input();
	in.limit_bytes = UINT64_MAX;
	in.completed = 3;
	in.last_residual_bytes = 0;
	in.leak = (struct leak_estimate){ .slope_bytes_per_gen = 1e18, .r2 = 1, .points = 2 };
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_true(f.leak_suspected); /* twice 2 % of 16 EiB is 7.4e17 */
	assert_true(f.next_fits);
	assert_int_equal(f.predicted_next_peak_bytes, 1000000000000000000ULL);
	assert_int_equal(f.generations_left, 17); /* (0.95 × 2^64 - 1e18) / 1e18 = 16.5 */
	in.leak.slope_bytes_per_gen = 7e17;
	assert_int_equal(forecast_next(&in, NULL, &f), 0);
	assert_false(f.leak_suspected);
	assert_int_equal(f.generations_left, -1);
}

static void test_pressure(void **state)
{
	struct forecast_input in = base_input();
	struct forecast_params p;
	struct forecast f;

	(void)state;
	forecast_params_default(&p);
	in.limit_bytes = LIMIT_1536;
	in.usage_bytes = MIB(1500);
	in.completed = 3;
	in.last_residual_bytes = MIB(825);
	in.max_excess_bytes = MIB(400);
	in.max_transient_bytes = MIB(400);
	in.running = true;
	in.running_start_bytes = MIB(825);
	in.running_peak_bytes = MIB(1500);
	in.leak = (struct leak_estimate){ .points = 3 }; /* flat */
	assert_int_equal(forecast_next(&in, &p, &f), 0);
	assert_true(f.running_fits); /* 1500 < 1536 and no pressure known */
	assert_false(f.from_running);
	assert_string_equal(f.reason, "no leak seen; the next generation should peak near 1.20 GiB, 311 MiB below the "
				      "1.50 GiB limit");
	assert_false(f.pressure_high);

	in.reclaim_per_sec = 49;
	assert_int_equal(forecast_next(&in, &p, &f), 0);
	assert_false(f.pressure_high);
	in.reclaim_per_sec = 120;
	assert_int_equal(forecast_next(&in, &p, &f), 0);
	assert_true(f.pressure_high);
	assert_false(f.running_fits); /* reclaiming above 95 % of the limit */
	assert_contains(f.reason, "; running generation is at 1.46 GiB under reclaim; memcg reclaim 120/s");

	in.reclaim_per_sec = -1;
	in.psi_some_avg10 = 25.5;
	assert_int_equal(forecast_next(&in, &p, &f), 0);
	assert_true(f.pressure_high);
	assert_false(f.running_fits);
	assert_contains(f.reason, "; PSI some 25.5 %");

	/* Pressure below the threshold usage: reported, not a verdict on the running generation. */
	in.usage_bytes = MIB(1000);
	in.running_peak_bytes = MIB(1000);
	assert_int_equal(forecast_next(&in, &p, &f), 0);
	assert_true(f.pressure_high);
	assert_true(f.running_fits);

	in.psi_some_avg10 = NAN;
	assert_int_equal(forecast_next(&in, &p, &f), 0);
	assert_false(f.pressure_high);
}

static void test_input_from_tracker(void **state)
{
	struct gen_tracker t;
	struct forecast_input in;

	(void)state;
	gen_tracker_init(&t, NULL);
	gen_start(&t, "p1", S(0), MIB(25));
	gen_sample(&t, S(1), MIB(1225));
	gen_end(&t, "p1", GEN_SUCCESS, S(2), MIB(825));
	gen_start(&t, "p2", S(3), MIB(825));
	gen_sample(&t, S(4), MIB(1525));
	gen_end(&t, "p2", GEN_SUCCESS, S(5), MIB(1125));
	gen_start(&t, "p3", S(6), MIB(1125));
	gen_sample(&t, S(7), MIB(1300));
	assert_int_equal(forecast_input_from_tracker(&t, LIMIT_1536, MIB(1300), &in), 0);
	assert_int_equal(in.limit_bytes, LIMIT_1536);
	assert_int_equal(in.usage_bytes, MIB(1300));
	assert_int_equal(in.next_seq, 4);
	assert_int_equal(in.completed, 2);
	assert_int_equal(in.last_residual_bytes, MIB(1125));
	assert_int_equal(in.max_excess_bytes, MIB(700)); /* gen 1's 1200 (model load) left out */
	assert_int_equal(in.max_transient_bytes, MIB(400));
	assert_true(in.running);
	assert_int_equal(in.running_start_bytes, MIB(1125));
	assert_int_equal(in.running_peak_bytes, MIB(1300));
	assert_int_equal(in.leak.points, 2);
	assert_near(in.leak.slope_bytes_per_gen, (double)MIB(300), 1e-3);
	assert_near(in.reclaim_per_sec, -1, 0);
	assert_near(in.psi_some_avg10, -1, 0);

	/* Generation 1 peaked high while loading (weights read, then cast): its transient only counts alone. */
	gen_tracker_init(&t, NULL);
	gen_start(&t, "p1", S(0), MIB(25));
	gen_sample(&t, S(1), MIB(1500));
	gen_end(&t, "p1", GEN_SUCCESS, S(2), MIB(825));
	assert_int_equal(forecast_input_from_tracker(&t, LIMIT_1536, MIB(825), &in), 0);
	assert_int_equal(in.max_transient_bytes, MIB(675));
	assert_int_equal(in.max_excess_bytes, 0);
	gen_start(&t, "p2", S(3), MIB(825));
	gen_sample(&t, S(4), MIB(1225));
	gen_end(&t, "p2", GEN_SUCCESS, S(5), MIB(825));
	assert_int_equal(forecast_input_from_tracker(&t, LIMIT_1536, MIB(825), &in), 0);
	assert_int_equal(in.max_transient_bytes, MIB(400));
	assert_int_equal(in.max_excess_bytes, MIB(400));
	assert_int_equal(fc_now(&t, LIMIT_1536, MIB(825)).predicted_next_peak_bytes, MIB(1225));
}

/* The custom-node leak of the restart scenario: 300 MiB per generation that /free cannot release. Generation 1
 * loads the 450 MiB model from 30 MiB and peaks at 1130: a clean start costs 1100 MiB. After a /free the floor is
 * 630 MiB: generation 3 reloads its models there and would peak at 1730 MiB. */
static void test_clean_start(void **state)
{
	struct gen_tracker t;
	struct forecast f;

	(void)state;
	gen_tracker_init(&t, "x");
	assert_int_equal(forecast_clean_cost(&t), 0);
	gen_start(&t, "a", S(1), MIB(30));
	gen_sample(&t, S(2), MIB(1130));
	gen_end(&t, "a", GEN_SUCCESS, S(3), MIB(780));
	gen_start(&t, "b", S(4), MIB(780));
	gen_sample(&t, S(5), MIB(1430));
	gen_end(&t, "b", GEN_SUCCESS, S(6), MIB(1080));
	/* the second generation did not load models: its excess does not count */
	assert_int_equal(forecast_clean_cost(&t), MIB(1100));

	/* idle right after the /free took effect: the next generation will not fit */
	assert_int_equal(gen_new_epoch(&t, S(7), MIB(630)), 0);
	f = fc_now(&t, LIMIT_1536, MIB(630));
	forecast_apply_clean_start(&f, &t, MIB(1100), true, MIB(630), MIB(630), LIMIT_1536, 0.95);
	assert_false(f.next_fits);
	assert_int_equal(f.predicted_next_peak_bytes, MIB(1730));
	assert_contains(f.reason, "cannot release");

	/* running, first of its epoch, started before the floor was seen: the floor is where it really started */
	gen_start(&t, "c", S(8), MIB(700));
	f = fc_now(&t, LIMIT_1536, MIB(700));
	f.running_fits = true;
	forecast_apply_clean_start(&f, &t, MIB(1100), true, MIB(630), MIB(700), LIMIT_1536, 0.95);
	assert_false(f.running_fits);
	assert_int_equal(f.predicted_running_peak_bytes, MIB(1730));
	assert_contains(f.reason, "generation 3 reloads its models from 630 MiB");

	/* a releasable leak: the floor after /free is the bare interpreter, and it fits */
	f = fc_now(&t, LIMIT_1536, MIB(700));
	f.running_fits = true;
	forecast_apply_clean_start(&f, &t, MIB(1100), true, MIB(30), MIB(700), LIMIT_1536, 0.95);
	assert_true(f.running_fits);
	/* nothing known: no change, no crash */
	forecast_apply_clean_start(&f, &t, 0, true, MIB(630), MIB(700), LIMIT_1536, 0.95);
	forecast_apply_clean_start(&f, &t, MIB(1100), true, MIB(630), MIB(700), 0, 0.95);
	forecast_apply_clean_start(NULL, &t, MIB(1100), true, MIB(630), MIB(700), LIMIT_1536, 0.95);
	assert_true(f.running_fits);
}

/* A prompt bigger than any before: past 95 % of the limit and still climbing, the running one is at risk. */
static void test_running_edge(void **state)
{
	static const struct {
		uint64_t usage, prev;
		bool running, fits;
	} cases[] = {
		{ MIB(1470), MIB(1440), true, false }, /* past 1459 MiB, climbing */
		{ MIB(1470), MIB(1470), true, true },  /* past, but not climbing */
		{ MIB(1470), MIB(1500), true, true },  /* falling */
		{ MIB(1400), MIB(1300), true, true },  /* climbing, below the edge */
		{ MIB(1470), MIB(1440), false, true }, /* nothing runs */
	};
	struct gen_tracker t;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		struct forecast f = { .running_fits = true };

		gen_tracker_init(&t, "x");
		if (cases[i].running)
			gen_start(&t, "big", S(1), MIB(780));
		forecast_apply_running_edge(&f, &t, cases[i].usage, cases[i].prev, LIMIT_1536, 0.95);
		if (f.running_fits != cases[i].fits)
			fail_msg("case %zu: running_fits %d, expected %d", i, f.running_fits, cases[i].fits);
		if (!cases[i].fits)
			assert_contains(f.reason, "past 95 % of the 1.50 GiB limit and still climbing");
	}
	forecast_apply_running_edge(NULL, &t, MIB(1470), 0, LIMIT_1536, 0.95);
}

static void test_rate(void **state)
{
	struct forecast_rate r;
	const double mib = 1048576.0;

	(void)state;
	forecast_rate_init(&r);
	assert_true(forecast_rate_get(&r) == 0);
	forecast_rate_add(&r, 1000000000ULL, 100ULL << 20, 1.0);
	assert_true(forecast_rate_get(&r) == 0);
	/* +50 MiB in 100 ms: 500 MiB/s counts at once */
	forecast_rate_add(&r, 1100000000ULL, 150ULL << 20, 1.0);
	assert_true(fabs(forecast_rate_get(&r) - 500 * mib) < 1);
	/* a point 5 ms later counts towards the next interval: no absurd rate */
	forecast_rate_add(&r, 1105000000ULL, 200ULL << 20, 1.0);
	assert_true(fabs(forecast_rate_get(&r) - 500 * mib) < 1);
	/* 500 ms later at 200 MiB: 100 MiB/s over that interval, above the average that is still catching up */
	forecast_rate_add(&r, 1600000000ULL, 200ULL << 20, 1.0);
	assert_true(fabs(forecast_rate_get(&r) - 100 * mib) < 1);
	assert_true(r.avg < 100 * mib && r.avg > 50 * mib);
	/* a burst: +22 MiB 30 ms after a point is not a 700 MiB/s climb; over the 130 ms to the next point it is
	 * 170 MiB/s */
	forecast_rate_init(&r);
	forecast_rate_add(&r, 1000000000ULL, 500ULL << 20, 1.0);
	forecast_rate_add(&r, 1030000000ULL, 522ULL << 20, 1.0);
	assert_true(forecast_rate_get(&r) == 0);
	forecast_rate_add(&r, 1130000000ULL, 522ULL << 20, 1.0);
	assert_true(fabs(forecast_rate_get(&r) - 22 * mib / 0.13) < 1);
	/* falling: no growth */
	for (int i = 0; i < 10; i++)
		forecast_rate_add(&r, 2000000000ULL + i * 500000000ULL, (190ULL - i * 10) << 20, 1.0);
	assert_true(forecast_rate_get(&r) == 0);
	/* the clock going back restarts */
	forecast_rate_add(&r, 1, 1ULL << 30, 1.0);
	assert_true(forecast_rate_get(&r) == 0);
	forecast_rate_add(NULL, 1, 1, 1);
	assert_true(forecast_rate_get(NULL) == 0);
}

/* What /free cannot release before the next generation: the floor, grown by the learnt unreleasable leak per
 * generation, and on a server idle since the /free all it grew to (idle-growth: free_all left 333 MiB, the server
 * grew to 549 MiB while idle; with a 428 MiB clean start the next generation peaks at 977 MiB, above 95 % of
 * 1 GiB, so /free cannot make room: restart now, while idle, not after a futile free_models while it grows). */
static void test_unreleasable_bytes(void **state)
{
	static const struct {
		const char *what;
		bool floor_valid;
		uint64_t floor, usage, gens_since;
		double per_gen;
		bool idle;
		uint64_t want;
	} rows[] = {
		{ "no floor: nothing known", false, MIB(300), MIB(900), 0, MIB(100), true, 0 },
		{ "the floor alone", true, MIB(300), MIB(900), 0, 0, false, MIB(300) },
		{ "plus the next generation's leak", true, MIB(300), MIB(900), 0, MIB(100), false, MIB(400) },
		{ "plus two done since and the next", true, MIB(300), MIB(900), 2, MIB(100), false, MIB(600) },
		{ "NaN or negative growth is none", true, MIB(300), MIB(900), 2, NAN, false, MIB(300) },
		{ "", true, MIB(300), MIB(900), 2, -50.0 * 1024 * 1024, false, MIB(300) },
		{ "idle since the /free: all it holds", true, MIB(333), MIB(549), 0, 0, true, MIB(549) },
		{ "idle, below the floor and its leak: those", true, MIB(333), MIB(340), 0, MIB(100), true, MIB(433) },
		{ "idle after generations since the floor: not all of it", true, MIB(300), MIB(900), 1, MIB(100), true,
		  MIB(500) },
		{ "saturates", true, UINT64_MAX - MIB(1), 0, 3, MIB(100), false, UINT64_MAX },
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(rows); i++) {
		uint64_t got = forecast_unreleasable_bytes(rows[i].floor_valid, rows[i].floor, rows[i].per_gen,
							   rows[i].gens_since, rows[i].idle, rows[i].usage);

		if (got != rows[i].want)
			fail_msg("row %zu (%s): %llu, want %llu", i, rows[i].what, (unsigned long long)got,
				 (unsigned long long)rows[i].want);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_scenario_leak),
		cmocka_unit_test(test_scenario_leak_busy_queue),
		cmocka_unit_test(test_scenario_no_leak),
		cmocka_unit_test(test_scenario_single),
		cmocka_unit_test(test_scenario_restart),
		cmocka_unit_test(test_scenario_noise),
		cmocka_unit_test(test_degenerate),
		cmocka_unit_test(test_leak_claim_table),
		cmocka_unit_test(test_generations_left),
		cmocka_unit_test(test_pressure),
		cmocka_unit_test(test_input_from_tracker),
		cmocka_unit_test(test_clean_start),
		cmocka_unit_test(test_running_edge),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_unreleasable_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

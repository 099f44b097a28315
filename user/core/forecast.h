/* SPDX-License-Identifier: GPL-2.0 */
/* Predicts, from the generation history of one ComfyUI instance, whether the running and the next generation
 * will stay below the memory limit, so the policy can act while a generation still runs (/free only takes effect
 * after the running prompt, so waiting for the OOM generation to start is too late).
 *
 * Pure: no I/O, no clock, no logging. Sizes are in bytes.
 *
 * The model (terms as in generations.h):
 *   next peak      = where the next generation starts + its excess
 *   start          = the last residual (idle: or the current usage if higher), or, during a generation, the
 *                    predicted residual after it: its usage_start + the growth per generation
 *   excess         = max(largest excess of the epoch's later generations, largest transient + growth), where
 *                    transient = peak - residual (what a generation gives back). The epoch's first generation is
 *                    left out: its excess and growth contain the model load, a one-time step, and its peak may
 *                    hold load-time copies; only while it is the sole completed one, its transient stands in.
 *   growth         = the regression slope when a leak is suspected, else 0 — except with a single completed
 *                    generation while the second runs: then the running one's excess beyond the first one's
 *                    transient (above twice the noise floor) is taken as growth. That is the only honest early
 *                    signal: the first generation alone cannot tell its model load from a leak. The forecast then
 *                    says so in its reason and halves its confidence; leak_suspected stays false.
 * A leak is suspected when at least min_generations generations of the epoch completed and the slope is above the
 * noise floor (max(noise_floor_bytes, noise_floor_fraction × limit); doubled when the slope rests on only two
 * points, which cannot show their noise) and, with three or more points, at least twice its standard error. */
#ifndef OOMSENTRY_FORECAST_H
#define OOMSENTRY_FORECAST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "generations.h"

#define FORECAST_REASON_MAX 256
#define FORECAST_LEAK_WINDOW 16 /* completed generations forecast_input_from_tracker() regresses over */

struct forecast_params {
	double margin;               /* (0,1]: the next peak must stay below limit × margin; default 0.95 */
	unsigned min_generations;    /* completed generations in the epoch before a leak is claimed; default 2 */
	uint64_t noise_floor_bytes;  /* default 32 MiB */
	double noise_floor_fraction; /* of the limit; default 0.02 */
	double reclaim_high_per_sec; /* memcg reclaim events/s counted as pressure; default 50 */
	double psi_some_high;        /* PSI memory some avg10 (percent) counted as pressure; default 10 */
};

struct forecast_input {
	uint64_t limit_bytes; /* cgroup limit, else MemTotal; 0 = unknown */
	uint64_t usage_bytes; /* now */
	uint64_t next_seq;    /* sequence number the next generation to start gets; 0 = unknown (only for the text) */
	unsigned completed;   /* completed generations (with residual) of the epoch */
	uint64_t last_residual_bytes; /* of the newest completed generation of the epoch */
	uint64_t max_excess_bytes; /* max peak - usage_start over completed generations but the epoch's first */
	uint64_t max_transient_bytes; /* max peak - residual over the same; the first's when it is the only one */
	struct leak_estimate leak;
	bool running;
	uint64_t running_start_bytes;
	uint64_t running_peak_bytes; /* so far */
	double reclaim_per_sec;      /* memcg reclaim events per second over the last window; < 0 = unknown */
	double psi_some_avg10;       /* percent; < 0 = unknown */
};

struct forecast {
	bool next_fits;    /* predicted_next_peak_bytes < limit × margin */
	bool running_fits; /* the running generation is expected to peak below the limit (true when idle) */
	bool leak_suspected;
	bool pressure_high; /* reclaim or PSI above the params' thresholds */
	bool from_running;  /* growth came from the running generation alone (one completed generation) */
	uint64_t predicted_next_peak_bytes;   /* 0 = no basis (no completed generation in the epoch) */
	uint64_t predicted_running_peak_bytes; /* 0 when idle */
	uint64_t predicted_residual_after_running_bytes; /* 0 when idle or no basis */
	uint64_t threshold_bytes;              /* limit × margin */
	int64_t headroom_bytes;  /* limit - predicted next peak (limit - usage without basis); may be negative */
	int64_t generations_left; /* generations after the running one that peak below the threshold; -1 = no bound
				   * known (no growth), 0 = the next one already does not fit */
	int64_t leak_bytes_per_gen; /* growth used for the prediction (>= 0) */
	double confidence;          /* [0,1] */
	char reason[FORECAST_REASON_MAX];
};

void forecast_params_default(struct forecast_params *ret);

/* Fills *ret from in and params (NULL = defaults; out-of-range fields fall back to their defaults).
 * Returns 0; -EINVAL for NULL in/ret or an unknown (0) limit, in which case *ret (if not NULL) still holds a safe
 * "no opinion" forecast: everything fits, confidence 0, the reason says why. */
int forecast_next(const struct forecast_input *in, const struct forecast_params *params, struct forecast *ret);

/* Builds the input from a tracker: its current epoch, the leak estimate over the last FORECAST_LEAK_WINDOW
 * completed generations, running state. Pressure fields are set to unknown (-1) for the caller to fill.
 * Returns 0 or -EINVAL (*ret zeroed, pressure unknown). */
int forecast_input_from_tracker(const struct gen_tracker *t, uint64_t limit_bytes, uint64_t usage_bytes,
				struct forecast_input *ret);


/* Largest peak - start of a completed generation in the ring that (re)loaded its models (the first of its
 * epoch): what a generation costs from a clean start. 0 when none is known. */
uint64_t forecast_clean_cost(const struct gen_tracker *t);

/* What /free cannot release before the next generation (policy_input.free_cannot_make_room compares it, plus the
 * clean-start cost, with margin × limit): the floor the last /free left, grown by the learnt unreleasable growth
 * per generation (per_gen_bytes; <= 0 or NaN: none learnt) for each generation completed since and the next one.
 * On a server idle since that /free with no generation completed (idle_since_floor: the same case as the
 * forecast's "/free left X that it cannot release"), all it holds now counts: what grew while nothing ran is no
 * model or cache (the /free unloaded those), and no /free gives it back. 0 when no floor is known. */
uint64_t forecast_unreleasable_bytes(bool floor_valid, uint64_t floor_bytes, double per_gen_bytes,
				     uint64_t gens_since_floor, bool idle_since_floor, uint64_t usage_bytes);

/* A generation that starts by loading its models (after a start, a /free or a restart) has no basis in its
 * epoch; it costs what such a generation cost before. Running: it will peak at start + clean_cost (start is the
 * floor /free left, when one is known) and running_fits turns false above the limit. Idle after a /free (epoch
 * without a completed generation): next_fits turns false when usage + clean_cost passes margin × limit. The
 * reason text is replaced when a verdict changes. */
void forecast_apply_clean_start(struct forecast *fc, const struct gen_tracker *t, uint64_t clean_cost_bytes,
				bool floor_valid, uint64_t floor_bytes, uint64_t usage_bytes, uint64_t limit_bytes,
				double margin);

/* A prompt bigger than any before it: no forecast learnt from earlier generations bounds it, and the running
 * prediction only follows usage up. Usage past margin × limit and still climbing (above prev_usage_bytes) while
 * a generation runs turns running_fits false: the last moment to stop it before the kernel does. */
void forecast_apply_running_edge(struct forecast *fc, const struct gen_tracker *t, uint64_t usage_bytes,
				 uint64_t prev_usage_bytes, uint64_t limit_bytes, double margin);

/* The present growth of usage, for the time to the limit: an exponential average over tau of the rates between
 * successive measurements (timer samples and RSS events), reported as the larger of it and the latest rate, so
 * that a sudden climb (a model load) counts at once and a single quiet sample does not hide a steady one. */
struct forecast_rate {
	bool have;
	uint64_t last_ns;
	uint64_t last_bytes;
	double avg;  /* bytes/s, signed */
	double last; /* bytes/s of the newest interval, signed */
};

/* The shortest interval a rate is measured over. */
#define FORECAST_RATE_MIN_INTERVAL_S 0.1

void forecast_rate_init(struct forecast_rate *r);
/* Adds a measurement. Points less than FORECAST_RATE_MIN_INTERVAL_S after the previous one only move the usage
 * (their rate is an allocation burst's, not the climb's); a clock that goes backwards restarts the estimate. */
void forecast_rate_add(struct forecast_rate *r, uint64_t now_ns, uint64_t usage_bytes, double tau_s);
/* The growth to extrapolate (bytes/s, >= 0): max(average, newest), 0 when falling or unknown. */
double forecast_rate_get(const struct forecast_rate *r);

#endif

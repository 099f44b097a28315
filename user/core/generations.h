/* SPDX-License-Identifier: GPL-2.0 */
/* Per-instance history of ComfyUI generations (prompt runs) with the memory each one took and left behind,
 * so that a leak can be told apart from a model load and measured in bytes per generation.
 *
 * Pure: no I/O, no clock, no logging. The daemon feeds it prompt boundaries (from /queue + /history) and memory
 * samples (cgroup usage or the server's RSS, whichever it measures for the instance; this module does not care).
 * All times are in ns of whatever monotonic clock the caller uses, all sizes in bytes.
 *
 * Vocabulary:
 *   epoch      a stretch of history that may be regressed as one series. A server restart starts a new epoch
 *              and restarts sequence numbers at 1; gen_new_epoch() starts one without resetting them (use it after
 *              models were unloaded through /free: the next generation loads them again, like after a start).
 *   excess     peak_bytes - usage_start_bytes: what running a generation costs above where it began.
 *   residual   memory after the generation ended: the sample at its end, replaced by later samples while the
 *              server stays idle (ComfyUI collects garbage after the prompt), frozen when the next one starts.
 *   growth     residual - the previous generation's residual (same epoch); for the epoch's first generation
 *              residual - usage_start_bytes, which therefore also contains the model load. */
#ifndef OOMSENTRY_GENERATIONS_H
#define OOMSENTRY_GENERATIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GEN_RING_SIZE 64
#define GEN_PROMPT_ID_MAX 64 /* longer ids are truncated and matched on their first 64 characters */
#define GEN_INSTANCE_MAX 64

enum gen_status {
	GEN_RUNNING = 0,
	GEN_SUCCESS,
	GEN_ERROR,
	GEN_INTERRUPTED,
	GEN_UNKNOWN, /* ended, outcome not (yet) known: gone from /queue, not yet in /history */
	_GEN_STATUS_MAX,
};

struct generation {
	char prompt_id[GEN_PROMPT_ID_MAX + 1];
	uint64_t seq;   /* 1, 2, 3 … since the server started; restarts at 1 after gen_server_restarted() */
	uint32_t epoch; /* tracker epoch the generation belongs to */
	bool first_in_epoch; /* its growth and excess include the (re)load of models */
	enum gen_status status;
	uint64_t start_ns;
	uint64_t end_ns; /* 0 while running */
	uint64_t usage_start_bytes;
	uint64_t peak_bytes; /* max of usage_start, samples while running and the usage at the end */
	uint64_t usage_end_bytes; /* 0 when unknown (cut off by a server restart) */
	bool has_residual; /* false while running, and for a generation cut off by a server restart */
	uint64_t residual_bytes;
	int64_t growth_bytes; /* saturated to the int64_t range; 0 without residual */
};

struct gen_tracker {
	char instance[GEN_INSTANCE_MAX + 1];
	struct generation ring[GEN_RING_SIZE];
	size_t head;  /* slot the next generation is written to */
	size_t count; /* valid slots, at most GEN_RING_SIZE */
	bool running; /* the newest slot is a running generation */
	uint64_t total;    /* generations ever started */
	uint64_t next_seq; /* sequence number the next generation gets */
	uint32_t epoch;
	uint64_t epoch_start_ns;
	uint64_t epoch_start_bytes; /* usage when the epoch began (baseline after a restart) */
	bool epoch_has_gen;         /* a generation was started in the current epoch */
	uint64_t last_sample_ns;
	uint64_t last_usage_bytes;
};

/* Least-squares fit of residual_bytes against seq over completed generations of the current epoch.
 * Choice on the model load: every residual contains the models (they are loaded once and stay), so the load
 * cancels in the slope; but the epoch's first generation also carries one-off warm-up (allocator arenas, lazily
 * loaded encoders/VAE, torch caches) that puts its residual off the line. It is therefore left out as soon as two
 * later generations exist (>= 3 completed); with exactly 2 completed generations the slope is their difference
 * (residual 2 - residual 1), the only estimate there is. */
struct leak_estimate {
	double slope_bytes_per_gen;
	double intercept_bytes;    /* fitted residual at seq 0 */
	double r2;                 /* [0,1]; 1 for two distinct points, 0 when the residuals do not vary */
	double slope_stderr_bytes; /* standard error of the slope; 0 with fewer than 3 points */
	unsigned points;           /* generations used; the slope means nothing below 2 */
	uint64_t first_seq, last_seq;
	bool first_excluded; /* the epoch's first generation was in the window and left out */
};

/* Resets *t; instance (may be NULL) is copied, truncated to GEN_INSTANCE_MAX. Returns 0 or -EINVAL. */
int gen_tracker_init(struct gen_tracker *t, const char *instance);

/* A prompt was seen running. Returns its sequence number (>= 1), or -EINVAL.
 * Idempotent for the prompt that is already running. If another prompt is still marked running, its end was
 * missed: it is ended now with GEN_UNKNOWN and usage_bytes as its end usage. */
int64_t gen_start(struct gen_tracker *t, const char *prompt_id, uint64_t now_ns, uint64_t usage_bytes);

/* A prompt left the running slot. Returns its sequence number, -EINVAL, or -ENOENT when prompt_id is neither
 * running nor in the history. For a prompt already ended, only a GEN_UNKNOWN status is replaced (the outcome
 * often shows up in /history after the prompt left /queue); its memory figures are not touched.
 * status GEN_RUNNING is treated as GEN_UNKNOWN. */
int64_t gen_end(struct gen_tracker *t, const char *prompt_id, enum gen_status status, uint64_t now_ns,
		uint64_t usage_bytes);

/* Replaces what the live path measured for an ended generation with what ComfyUI's own stamps say
 * (boundary.c): its start and end, start level, peak, end level and residual; growth is recomputed (and that of the generation after
 * it, whose growth is relative to this residual). The live path sees a prompt from the poll that found it running
 * to the poll that found it gone, which for short generations is mostly someone else's memory. Returns 0, -EINVAL
 * (start after its end), -ENOENT (not in the ring), -EBUSY (still running). */
int gen_set_window(struct gen_tracker *t, const char *prompt_id, uint64_t start_ns, uint64_t end_ns,
		   uint64_t usage_start_bytes, uint64_t peak_bytes, uint64_t usage_end_bytes, uint64_t residual_bytes);

/* A memory sample: raises the running generation's peak, or, while idle, replaces the residual of the last
 * generation of the current epoch. Returns 0 or -EINVAL. */
int gen_sample(struct gen_tracker *t, uint64_t now_ns, uint64_t usage_bytes);

/* The server process was replaced: new epoch, sequence restarts at 1. A generation still marked running died
 * with the server: it ends as GEN_INTERRUPTED without a residual. Returns 0 or -EINVAL. */
int gen_server_restarted(struct gen_tracker *t, uint64_t now_ns, uint64_t usage_bytes);

/* Models were dropped (verified /free) while the server kept running: new epoch, sequence goes on.
 * Returns 0, -EINVAL, or -EBUSY while a generation runs (ComfyUI applies /free only after the running prompt,
 * so call this once the drop has been seen, i.e. while idle). */
int gen_new_epoch(struct gen_tracker *t, uint64_t now_ns, uint64_t usage_bytes);

/* Generations held (at most GEN_RING_SIZE); 0 for NULL. */
size_t gen_count(const struct gen_tracker *t);
/* The i-th most recent generation (0 = newest), borrowed from *t and valid until the next mutation; NULL when
 * out of range. */
const struct generation *gen_get(const struct gen_tracker *t, size_t i);
const struct generation *gen_last(const struct gen_tracker *t);
/* The running generation or NULL. */
const struct generation *gen_running(const struct gen_tracker *t);
/* The most recent generation with this prompt id (first GEN_PROMPT_ID_MAX characters) or NULL. */
const struct generation *gen_find(const struct gen_tracker *t, const char *prompt_id);
/* The most recent completed generation (has a residual) of the current epoch, or NULL. */
const struct generation *gen_last_completed(const struct gen_tracker *t);
/* Completed generations (with residual) of the current epoch still in the ring; 0 for NULL. */
unsigned gen_completed_in_epoch(const struct gen_tracker *t);

/* Fits the last n_last completed generations of the current epoch (0 = all in the ring), see struct
 * leak_estimate. *ret is always filled (zeroed slope below 2 points). Returns the number of points used, or
 * -EINVAL. */
int gen_leak_estimate(const struct gen_tracker *t, unsigned n_last, struct leak_estimate *ret);

/* "running", "success", "error", "interrupted", "unknown"; "invalid" for out-of-range values. Static strings. */
const char *gen_status_to_string(enum gen_status s);
/* Parses the names above (ComfyUI's history status_str is "success" or "error"). Returns 0, or -EINVAL for NULL
 * or unrecognised text, in which case *ret (if not NULL) is set to GEN_UNKNOWN. */
int gen_status_from_string(const char *s, enum gen_status *ret);

/* After a boundary memory falls for a while: ComfyUI applies /free flags, unloads models, collects garbage. What
 * a /free gave back, and the floor it leaves, are judged once that has settled, not from a sample taken before
 * ComfyUI let go:
 *   settled when memory fell below the reference by more than noise and made no new low (by more than noise)
 *   for quiet_ns, or climbed back above the low by more than noise (the next generation began: the low was the
 *   floor), or max_ns passed (nothing fell: the free gave back nothing). */
struct gen_settle {
	bool active;
	uint64_t start_ns;
	uint64_t ref_bytes; /* what would have stayed without the release */
	uint64_t low_bytes;    /* lowest seen */
	uint64_t low_ns;       /* when the low last moved by more than noise */
	uint64_t anchor_bytes; /* the low at low_ns */
	bool dropped;
};

void gen_settle_begin(struct gen_settle *s, uint64_t now_ns, uint64_t ref_bytes, uint64_t usage_bytes);
/* Returns 1 when settled (then *ret_low_bytes and *ret_low_ns tell the floor and when it was reached; the settle
 * is no longer active), 0 while settling or not active, -EINVAL on NULL. */
int gen_settle_sample(struct gen_settle *s, uint64_t now_ns, uint64_t usage_bytes, uint64_t quiet_ns,
		      uint64_t noise_bytes, uint64_t max_ns, uint64_t *ret_low_bytes, uint64_t *ret_low_ns);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* The prevention ladder (DESIGN.md §5): which rung to act on now, from plain numbers, with hysteresis, cooldowns,
 * verification of every action and dry-run. Pure (no I/O, no clock, no logging) so every decision replays in a test. */
#ifndef OOMSENTRY_POLICY_H
#define OOMSENTRY_POLICY_H

#include <stdbool.h>
#include <stdint.h>

/* Least destructive first; the numeric order is the ladder order. */
enum policy_rung {
	POLICY_RUNG_NONE = 0,
	POLICY_RUNG_REAP_ORPHANS,      /* SIGTERM/SIGKILL orphaned pythons */
	POLICY_RUNG_FREE_MODELS,       /* POST /free {"unload_models":true} */
	POLICY_RUNG_FREE_ALL,          /* POST /free {"unload_models":true,"free_memory":true} */
	POLICY_RUNG_INTERRUPT_REQUEUE, /* free_all flags + POST /interrupt + resubmit at the front with its prompt_id */
	POLICY_RUNG_RESTART,           /* controlled restart preserving the queue */
	POLICY_RUNG_KILL,              /* SIGKILL the largest tracked process (off by default) */
};
#define POLICY_RUNG_COUNT (POLICY_RUNG_KILL + 1)

/* A time to effect that cannot be given (a deferred /free while nothing says when the running prompt ends): the
 * rung never counts as taking effect before the limit when the limit is near. */
#define POLICY_TTE_UNKNOWN UINT64_MAX

/* Long enough for the numbers plus the forecast's sentence; longer text is truncated, always NUL-terminated. */
#define POLICY_REASON_MAX 640

/* "none", "reap_orphans", "free_models", "free_all", "interrupt_requeue", "restart", "kill"; "unknown" when out of
 * range. Static storage, never NULL. */
const char *policy_rung_name(enum policy_rung rung);
/* Inverse of policy_rung_name() (exact, case-sensitive). 0 on success, -EINVAL on NULL or an unknown name. */
int policy_rung_from_name(const char *name, enum policy_rung *ret_rung);

/* Tunables, from the config. Fractions are of limit_bytes. Arrays are indexed by enum policy_rung (index 0 unused). */
struct policy_params {
	double act_usage_fraction;  /* pressure when usage >= this (0.90) */
	double warn_usage_fraction; /* decision.warn when usage >= this (0.80); 0 = never */
	double hysteresis_fraction; /* usage pressure holds until usage < act - this (0.05) */

	bool act_on_forecast;           /* forecast "will not fit" counts as pressure (true); false ignores the forecast */
	double min_forecast_confidence; /* forecasts with lower confidence are ignored (0.0: all are used) */

	bool act_on_reclaim;           /* sustained memcg reclaim counts as pressure (true) */
	double reclaim_events_per_s;   /* ... at or above this rate (100/s) */
	uint64_t reclaim_sustain_ms;   /* ... for at least this long (3000 ms) */
	double psi_some_avg10_pct;     /* memory PSI some avg10 at or above this counts as pressure; 0 = off (0) */

	uint64_t climb_min_bytes;         /* usage rising by at least this between two samples is "climbing" (8 MiB) */
	uint64_t min_orphan_bytes;        /* orphans holding less than this are not worth reaping for pressure (64 MiB) */
	double min_freed_fraction;        /* a rung worked when usage fell by >= this of the limit (0.05) */
	double negligible_freed_fraction; /* free_all freeing less than this means /free cannot release it (0.01) */

	bool enabled[POLICY_RUNG_COUNT];      /* all true except kill; restart also needs input.restart_configured */
	/* A rung inside its cooldown is skipped to the next one (it bounds flapping); the last resort ignores its
	 * cooldown when nothing else takes effect before the limit (30000 ms each). */
	uint64_t cooldown_ms[POLICY_RUNG_COUNT];

	/* The decision rule (docs/architecture.md): rung r takes effect in time when
	 *   tte(r) * (1 + tte_margin_fraction) + tte_margin_ms < time to the limit.
	 * tte(r) is input.tte_ns[r], or tte_default_ms[r] while the instance has not shown it (0 in the input). */
	uint64_t tte_default_ms[POLICY_RUNG_COUNT]; /* reap 5 s, free 3 s (idle), interrupt 3 s, restart 5 s, kill 1 s */
	double tte_margin_fraction; /* 0.5 */
	uint64_t tte_margin_ms;     /* 1000 ms: sampling and reaction latency */
	/* The last resort's deadline while the running prompt is the first of a fresh server (input.fresh_start): a
	 * stop then gains nothing but the prompt's end, so it comes at the latest moment that still beats the kernel:
	 * the stop's time to effect (the SIGKILL's, input.kill_tte_ns, when the deadline is shorter than the last
	 * resort's SIGTERM grace, since the last resort then kills at once) * (1 + tte_margin_fraction), plus the time
	 * until the daemon looks again (input.next_look_ns), plus the lag of that look: the daemon's measured event
	 * lag (input.event_lag_ns, a slowly forgetting maximum), never less than this floor (10 ms: over the quiet
	 * p99 of 6 ms measured here, for when nothing was measured yet). Under load the lag grows, and so does the
	 * margin. */
	uint64_t look_lag_floor_ms;
	bool brake;                 /* memory.high may brake growth while a gentle rung works (true) */
	/* How long to wait for a rung's effect before judging it: reap 10 s, free_* when idle 5 s, interrupt 30 s,
	 * restart 120 s, kill 5 s. A /free sent while busy is judged verify_after_generation_ms after the running
	 * generation ends (ComfyUI applies the flags then), but no later than verify_busy_max_ms after it was sent. */
	uint64_t verify_ms[POLICY_RUNG_COUNT];
	uint64_t verify_after_generation_ms; /* 5000 ms */
	uint64_t verify_busy_max_ms;         /* 1800000 ms (30 min) */

	bool dry_run;                      /* decide and advance the state as if acted; decision.dry_run set */
	bool restart_at_boundary;          /* a restart that is not urgent waits for the generation boundary (true) */
	bool free_after_each_generation;   /* proactive free_models once per completed generation */
	uint32_t restart_every_generations; /* proactive restart after N completed generations; 0 = off */
};

/* Defaults as documented above. */
struct policy_params policy_params_default(void);
/* 0 when usable, -EINVAL when a fraction is NaN/out of range (act in (0,1], warn in [0,act], hysteresis in
 * [0,act), min_freed in (0,1], negligible in [0,min_freed], confidence in [0,1], reclaim rate > 0 and finite when
 * act_on_reclaim, PSI threshold finite and >= 0). */
int policy_params_validate(const struct policy_params *p);

/* One sample of everything the policy looks at; plain numbers filled by the daemon. A zero-initialised input is
 * valid and means "nothing known": no pressure. */
struct policy_input {
	uint64_t now_ns;      /* CLOCK_MONOTONIC */
	uint64_t usage_bytes; /* memory of the watched instance (cgroup usage or RSS of its tree) */
	uint64_t limit_bytes; /* cgroup limit, else MemTotal; 0 = unknown (usage-based pressure off) */

	double reclaim_events_per_s; /* recent memcg reclaim rate; <= 0 or NaN: none/unknown */
	double psi_some_avg10_pct;   /* memory PSI some avg10; < 0 or NaN: unknown */

	uint64_t orphan_bytes;  /* memory held by reapable orphans */
	uint32_t orphan_count;

	bool comfy_reachable;       /* the HTTP API answers; false skips the HTTP rungs */
	bool busy;                  /* a prompt is running */
	uint32_t queue_pending;     /* prompts waiting (reason text only) */
	bool progress_known;        /* progress_fraction is valid */
	double progress_fraction;   /* 0..1 of the running prompt (reason text only) */
	bool running_requeued;      /* the running prompt is one we already interrupted and requeued: don't requeue again */
	bool generation_just_ended; /* a generation completed since the previous sample (edge, one sample only) */
	uint64_t generations_completed; /* since the server's last (re)start; a decrease means it restarted */
	bool restart_configured;    /* the instance has a restart method (unit, command or process group) */
	/* What /free cannot release (the floor measured after one) plus what a generation needs from a clean start
	 * exceeds the limit: /free and interrupt cannot make room, only a restart can (a "custom node" leak). */
	bool free_cannot_make_room;
	/* Queue look-ahead (lookahead.h): the next prompt will not fit beside the models loaded now, but will once
	 * they are unloaded. A /free sent while a prompt runs is applied by ComfyUI when it ends, before the next
	 * one starts: the unload lands at the boundary. */
	bool next_needs_unload;

	/* From forecast.c; ignored unless forecast_known (and confidence >= min_forecast_confidence). */
	bool forecast_known;
	bool next_fits;    /* the next generation's peak stays below the limit */
	bool running_fits; /* the running generation finishes below the limit (meaningful when busy) */
	bool leak_suspected;
	uint64_t predicted_next_peak_bytes;
	double confidence;           /* 0..1 */
	const char *forecast_reason; /* the forecast's sentence; borrowed for the call, may be NULL */

	/* Time to the limit against time to effect. */
	double growth_bytes_per_s; /* present growth of usage (RSS events, samples); <= 0 or NaN: not growing */
	uint64_t bound_bytes;      /* growth is expected to stop here (the running generation's peak predicted from
				    * this instance's history); 0 = no bound known. Ignored once usage reaches it. */
	uint64_t running_ends_in_ns; /* the running prompt is expected to end this soon (its progress, or what
				      * prompts took before); 0 = not known. Growth that reaches the limit only
				      * after it ends does not count against this generation, unless the forecast
				      * says the running generation will not fit. */
	uint64_t tte_ns[POLICY_RUNG_COUNT]; /* what each rung needs on this instance now; 0 = params default;
					     * POLICY_TTE_UNKNOWN = cannot say */
	/* How soon the daemon looks again at the present growth: the next RSS event (one rss_step of growth) or the
	 * next timer sample, whichever comes first; 0 = at once. The last resort's deadline comes this much earlier. */
	uint64_t next_look_ns;
	/* A prompt runs that is the first this server runs, from a clean start: nothing of earlier prompts (models,
	 * leaks) is in memory, so no rung makes room for it but its own end. Its last resort's deadline is the
	 * latest the daemon can make (look_lag_floor_ms). While busy (the caller follows it as the running generation),
	 * interrupt + requeue, which would run it again the same way, is no rung, and a stop before that deadline,
	 * which would end a prompt that may still stop below the limit, waits for it (decision.held). */
	bool fresh_start;
	/* The fresh start's deadline (see look_lag_floor_ms): SIGKILL sent to the server's exit as measured on this
	 * instance (0 = never measured: the last resort's tte_ns stands in, a SIGTERM stop being no quicker); the
	 * last resort's SIGTERM grace, below which it kills at once (0 = unknown: it is taken to kill); the daemon's
	 * event lag, kernel timestamp to handling (0 = not measured: the floor). */
	uint64_t kill_tte_ns;
	uint64_t last_resort_grace_ns;
	uint64_t event_lag_ns;
	bool brake_available; /* cgroup v2 with a writable memory.high */
	bool outcome_pending; /* the caller still measures the awaited action's effect (memory falling after a
			       * boundary) and will report it (policy_record_outcome): until then, up to the
			       * verification cap, neither a drop in usage nor the deadline judges it */
};

/* What to do now. rung NONE = nothing; the booleans tell why not (awaiting, cooldown, exhausted) or how to act. */
struct policy_decision {
	enum policy_rung rung;
	bool dry_run;        /* params.dry_run: journal it, do not act */
	bool proactive;      /* free_after_each_generation / restart_every_generations, not pressure */
	bool unload_models;  /* /free body for free_models, free_all, interrupt_requeue */
	bool free_memory;
	bool deferred;       /* /free sent while busy: ComfyUI applies it when the running prompt ends */
	bool requeue;        /* resubmit the running prompt at the front with its original prompt_id and extra_data */
	uint64_t deadline_ns; /* when the effect will be judged; 0 = when the running generation ends + grace, or not
			       * judged at all (proactive free) */

	bool pressure; /* any pressure signal this sample (usage with hysteresis, forecast, reclaim, PSI) */
	bool warn;     /* usage >= warn fraction */
	bool awaiting; /* an earlier action is still inside its verification window (nothing fires) */
	bool cooldown; /* the rung that would fire is inside its cooldown */
	bool exhausted; /* pressure, but no enabled rung that can help is left on the ladder */
	bool urgent;    /* the limit is nearer than the gentler rungs can act: rung is the last resort, now */
	bool at_boundary; /* a restart is due and waits for the running generation to end */
	bool held;        /* input.fresh_start: the last resort waits for its deadline, nothing else would help */
	bool brake;     /* hold memory.high just above usage now (level: false means restore it) */
	uint64_t ttl_ns; /* time to the limit at the present growth; UINT64_MAX = not in sight */
	uint64_t last_resort_needs_ns; /* what the last resort needs before the limit (its deadline's horizon, as
					* used for this decision); 0 when there is no last resort */

	/* Set when an earlier action was judged during this call; rung NONE otherwise. */
	struct {
		enum policy_rung rung;
		bool ok;            /* usage fell by >= min_freed_fraction of the limit, or pressure cleared */
		bool escalated;     /* it did not work: the ladder moved past it */
		uint64_t freed_bytes; /* usage drop since the action (or the caller's report, whichever is larger) */
	} outcome;

	/* One line with the numbers (MiB/GiB, %) and the forecast's sentence, for OOMSENTRY_REASON. */
	char reason[POLICY_REASON_MAX];
};

/* Owned by the caller, one per instance; initialise with policy_state_init(). Fields are the policy's own. */
struct policy_state {
	bool usage_pressure; /* latched with hysteresis */
	bool have_prev;
	uint64_t prev_usage_bytes;
	bool reclaim_high;
	uint64_t reclaim_since_ns;
	bool have_generations;
	uint64_t last_generations;

	enum policy_rung floor; /* escalation level: rungs below it are not tried again until pressure clears */
	bool free_futile;       /* free_all freed ~nothing: /free cannot release this memory (until a restart) */

	/* The last action and its verification. */
	bool awaiting;
	bool await_proactive;
	bool await_generation_end; /* /free sent while busy: judged after the running generation ends */
	enum policy_rung last_rung;
	uint64_t last_act_ns;
	uint64_t last_act_usage_bytes;
	uint64_t last_act_generations;
	uint64_t deadline_ns;
	uint64_t cap_ns;
	bool reported;
	bool reported_ok;
	uint64_t reported_freed_bytes;

	bool acted[POLICY_RUNG_COUNT];
	uint64_t acted_ns[POLICY_RUNG_COUNT];

	uint64_t effect_at_ns;  /* when the awaited rung was expected to take effect */
	bool braking;           /* the awaited rung works with the brake on */
	uint64_t brake_until_ns; /* the brake is held no longer: the rung's time to effect with margin */

	bool restart_mark_valid; /* generations_completed at the last proactive restart */
	uint64_t restart_mark;
	bool free_mark_valid;    /* generations_completed at the last proactive free */
	uint64_t free_mark;
	bool unload_mark_valid;  /* generations_completed at the last look-ahead unload */
	uint64_t unload_mark;
};

void policy_state_init(struct policy_state *s);

/* Decide for one sample; call on every sample. *ret is always filled (reason included). Returns 1 when ret->rung is
 * an action to take, 0 when nothing is to be done, -EINVAL on NULL arguments or invalid params (ret->rung NONE).
 *
 * Time to the limit (ttl) = (limit - usage) / growth, unbounded when not growing, or while growth is expected to
 * stop below the limit (usage below the running generation's predicted peak, or the running prompt expected to end
 * first) and that bet can be refuted in time: from where growth was to stop, the limit at the present growth is
 * still farther than the last resort needs. From the warn line on, ttl no longer than the last resort's (restart,
 * else kill) required time plus input.next_look_ns is its deadline, and pressure in itself; no bet postpones it.
 *
 * Under pressure, the first rung >= the escalation level that is enabled, can help and is not in cooldown (skipped
 * to the next). Before the deadline every such rung has its chance; a gentle one (free, interrupt) that will not
 * take effect in time on its own is flagged decision.brake when the brake is available and the last resort is in
 * time. At the deadline only the last resort or a stronger rung that takes effect in time (see struct
 * policy_params) fires: a gentler one would leave the last resort late should it fail. Otherwise the last resort
 * fires now (decision.urgent; a restart chosen at the deadline is always urgent), whatever its cooldown, and no
 * other rung's cooldown is waited for. A restart before the deadline and not for a running generation at risk
 * waits for the generation boundary (decision.at_boundary). The first prompt of a fresh server (input.fresh_start)
 * is not stopped before the last resort's deadline, which then is the kill's time to effect, the next look and its
 * lag (look_lag_floor_ms; decision.held).
 * Which rungs can help:
 *   reap_orphans      orphan_count > 0 and orphan_bytes >= min_orphan_bytes
 *   free_models       API reachable, /free not known futile, running generation not at risk; skipped for
 *                     free_all when a leak is suspected. Sent while busy it is deferred (judged after the
 *                     running generation ends + grace), so "next won't fit, running fits" frees now.
 *   free_all          as free_models
 *   interrupt_requeue API reachable, busy, not a fresh start and the running generation at risk: the forecast
 *                     says it won't fit, or
 *                     (no forecast vouching for it) usage >= act and climbing by >= climb_min_bytes per sample.
 *                     requeue unless input.running_requeued (no endless interrupt/requeue loop).
 *   restart           input.restart_configured (requeue when busy)
 *   kill              only enabled
 * Nothing fires while an action awaits verification, except that at the deadline a gentle rung whose effect is
 * not due in time (or overdue) gives way, and a deferred /free gives way when the running generation becomes at
 * risk and a stronger rung can act. At its verification deadline an action
 * worked when usage fell by >= min_freed_fraction of the limit (earlier if so) or pressure is gone; otherwise the
 * escalation level moves past it and the next rung is chosen in the same call. free_all freeing less than
 * negligible_freed_fraction marks /free futile until a restart (verified, or generations_completed going down).
 * The escalation level resets when pressure clears (usage < act - hysteresis, no other signal).
 *
 * Without pressure: restart_every_generations restarts when generations_completed has grown by N since the last
 * proactive restart (or the server's start) and the queue is idle or a generation just ended (a busy queue may
 * never be idle: the just-started prompt is then requeued); it awaits until generations_completed goes down or
 * its verify deadline. free_after_each_generation sends free_models on generation_just_ended (once per
 * generations_completed value when counted), not verified and not blocking the ladder; skipped while another
 * action awaits verification. */
int policy_decide(const struct policy_params *p, struct policy_state *s, const struct policy_input *in,
		  struct policy_decision *ret);

/* Optional report from actions.c about the action awaiting verification: ok=false (the action could not be carried
 * out, e.g. HTTP error or no process to signal) fails it at the next policy_decide() and escalates; ok=true with
 * freed_bytes (e.g. RSS of reaped processes) counts towards its verification. 0 when applied; -EINVAL on NULL or
 * a bad rung; -ENOENT when that rung is not awaiting verification (late or proactive report: state unchanged);
 * -ESTALE when now_ns is before the action. */
int policy_record_outcome(struct policy_state *s, enum policy_rung rung, bool ok, uint64_t freed_bytes,
			  uint64_t now_ns);

/* memory.high for the brake: just above current (memory.current, page cache included, which the kernel reclaims
 * first) by max(16 MiB, 1 % of the limit), so that the running work goes on throttled, never above
 * limit - that margin; 0 when no sensible value exists (limit unknown, or current already within the margin of
 * the limit: the brake would act as the limit itself). */
uint64_t policy_brake_high_bytes(uint64_t current_bytes, uint64_t limit_bytes);

/* The growth an instance answers for (policy_input.growth_bytes_per_s). Alone in its memory cgroup: the cgroup's.
 * In a cgroup shared with other servers, the cgroup's when its own growth is the largest of them (it is the
 * cause: it acts at the deadline the cgroup's growth sets), else its own only, so that a server whose prompt
 * grows slowly is not stopped for the growth of another; its own growth still brings its own deadline.
 * Rates <= 0 or NaN count as 0. */
double policy_growth_answered(bool shared, double cgroup_bytes_per_s, double own_bytes_per_s,
			      double others_max_bytes_per_s);

/* The lag the daemon allows a look at memory: the measured event lag (a slowly forgetting maximum), at least
 * p->look_lag_floor_ms. */
uint64_t policy_look_margin_ns(const struct policy_params *p, uint64_t event_lag_ns);

/* A stop under way whose SIGTERM has not ended the server yet (grace_left_ns until its SIGKILL) while memory still
 * climbs: true when the limit comes before that SIGKILL would, counting the next look at the memory and its lag
 * (policy_look_margin_ns) — the kernel would otherwise kill first. A server that handles SIGTERM slowly, or ignores
 * it, is then killed now; one that stopped growing keeps its grace. */
bool policy_escalate_stop(const struct policy_params *p, uint64_t usage_bytes, uint64_t limit_bytes,
			  double growth_bytes_per_s, uint64_t grace_left_ns, uint64_t next_look_ns,
			  uint64_t event_lag_ns);

/* Per-prompt give-up: a prompt that cannot fit even on a fresh server would be interrupted or restarted forever.
 * The caller notes every interrupt or restart a running prompt caused (not proactive ones), with what the stop
 * shows about the prompt's own need. A stop is conclusive only when the prompt ran from a clean start on a fresh
 * server (the first prompt that server ran) and its server's own memory, grown at its own present rate for as long
 * as the last resort needed, would have reached the limit: own_bytes + own_growth * horizon >= limit. In a memory
 * cgroup shared with other servers "own" is this server's processes: what the others hold or add is theirs to
 * answer for (policy_growth_answered), never evidence against this prompt. A stop on a server that held earlier
 * prompts' models or leaks, or short of that reach, says nothing about whether the prompt fits: it is
 * resubmitted, and it runs first on the fresh server the stop made.
 * The prompt is given up after give_up_after conclusive stops: a stop on a server that held other prompts' memory,
 * or one short of the last resort's deadline, was made before the prompt's peak was known and never saw it come
 * near the limit, so it is no evidence, and only stops that are count. And, so that a prompt whose stops are
 * never conclusive cannot hold the queue in a loop, after GIVEUP_INCONCLUSIVE_FACTOR * give_up_after stops
 * whatever they showed (policy_giveup_verdict says which). Pure bookkeeping; the oldest entry makes room when the
 * table is full. */
#define POLICY_GIVEUP_SLOTS 32
#define GIVEUP_INCONCLUSIVE_FACTOR 3

/* One stop of a running prompt, in the instance's own memory (its server's processes when the cgroup is shared,
 * else the cgroup's usage). */
struct policy_stop {
	bool fresh;             /* it ran from a clean start on a fresh server */
	uint64_t start_bytes;   /* own memory when the prompt started */
	uint64_t own_bytes;     /* own memory at the stop */
	double own_growth_bytes_per_s; /* present growth of own memory; <= 0 or NaN: not growing */
	uint64_t horizon_ns;    /* what the last resort needed before the limit (decision.last_resort_needs_ns) */
	uint64_t limit_bytes;   /* the memory cgroup's limit; 0 = unknown (never conclusive) */
};

/* Whether a stop proves the prompt cannot fit (see above). False on NULL. */
bool policy_stop_conclusive(const struct policy_stop *st);

enum policy_giveup_verdict {
	POLICY_GIVEUP_KEEP = 0,     /* resubmit or requeue it */
	POLICY_GIVEUP_PROVEN,       /* give_up_after conclusive stops */
	POLICY_GIVEUP_INCONCLUSIVE, /* GIVEUP_INCONCLUSIVE_FACTOR * give_up_after stops, none conclusive */
};

struct policy_giveup {
	struct {
		char prompt_id[65]; /* first 64 characters */
		uint32_t stops;
		bool conclusive;     /* one of the stops proved it cannot fit */
		uint32_t conclusive_stops;
		uint64_t need_bytes; /* the most it grew above where it started before it was stopped */
		uint64_t floor_bytes; /* where it started in the stop that says most (conclusive first) */
		uint64_t seen_ns;
	} e[POLICY_GIVEUP_SLOTS];
};

/* Counts one stop of prompt_id. Returns the verdict (>= 0), -EINVAL on NULL or an empty id. *ret_stops (may be
 * NULL) is its count, *ret_need_bytes (may be NULL) its largest own growth, *ret_floor_bytes (may be NULL) where
 * it started then. give_up_after 0 never gives up. */
int policy_giveup_note(struct policy_giveup *g, const char *prompt_id, const struct policy_stop *st,
		       uint32_t give_up_after, uint64_t now_ns, uint32_t *ret_stops, uint64_t *ret_need_bytes,
		       uint64_t *ret_floor_bytes);
/* A prompt that finished (or was given up) is forgotten. */
void policy_giveup_forget(struct policy_giveup *g, const char *prompt_id);

#endif

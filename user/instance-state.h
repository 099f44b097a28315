/* SPDX-License-Identifier: GPL-2.0 */
/* What instance.c and the modules it drives (locate, prevent, restart, scan) share about one ComfyUI instance: its
 * state and a few helpers (instance-state.c). Not an API: the loop goes through instance.h. */
#ifndef OOMSENTRY_INSTANCE_STATE_H
#define OOMSENTRY_INSTANCE_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include "boundary.h"
#include "cgroup.h"
#include "comfy.h"
#include "crashloop.h"
#include "forecast.h"
#include "generations.h"
#include "incident.h"
#include "journal.h"
#include "learn.h"
#include "lookahead.h"
#include "orphans.h"
#include "policy.h"
#include "qtrack.h"
#include "snapshot.h"
#include "units.h"
#include "usage.h"

struct comfy_ws;
struct comfy_ws_conn;
struct daemon;
struct proc;

#define SAMPLE_RING 2400    /* 20 min at the default 500 ms: what an incident report shows */
#define MAX_REAPS 64
#define SEEN_PENDING_MAX 64 /* pending prompts remembered between polls, to find those that ran unseen */
#define LA_PENDING_CACHE 4  /* pending workflows parsed for the look-ahead */

struct saved_prompt {
	char prompt_id[COMFY_PROMPT_ID_MAX];
	int64_t number;
	char *prompt_json;
	char *extra_json;
};

struct mem_sample {
	uint64_t ts_ns;
	uint64_t usage_bytes;
	uint64_t limit_bytes;
};

/* Timers keep running this long after the last sign of activity (an RSS step of the server's tree, a /ws
 * message, a queue change): what follows activity (a /history read, a settle, a verdict) is done by samples. */
#define INSTANCE_AWAKE_LINGER_NS (10ULL * 1000000000ULL)

/* IDLE; SAVING: a controlled restart asked /queue before the stop; DRAINING: it took the pending prompts out of
 * the server's queue and interrupted the running one, and waits to learn whether that one finished; STOPPING: the stop was sent, the old server is
 * going; STARTING: it is gone, a new one is awaited. A resubmission is owed whenever snap.stop != SNAP_STOP_NONE,
 * whatever rs says (it outlives a restart that timed out, and the daemon's own restart). */
enum restart_state { RS_IDLE = 0, RS_SAVING, RS_DRAINING, RS_STOPPING, RS_STARTING };

struct instance {
	struct daemon *d;
	const struct instance_config *ic;
	int index;
	uint16_t port;
	char labels[128]; /* metrics: comfyui="NAME" */
	struct comfy_client *comfy;
	/* the rungs' requests (POST /free, /interrupt) on a client and connection of their own: a client runs one
	 * transfer at a time, and an action queued behind a /queue poll that a busy server answers late went out only
	 * with that reply (bench/reaction.py: 39 ms after the decision) */
	struct comfy_client *comfy_act;
	bool reachable;
	bool unreachable_reported;
	/* the server process */
	pid_t server_pid;
	uint64_t server_start_ns;
	bool server_reported;
	char pidfile_why[192]; /* why the pid file was last not used: said once per change */
	/* memory */
	char cgroup_dir[PATH_MAX];
	enum cg_version cgv;
	uint64_t cgroup_id;
	bool use_cgroup;
	int measure_err; /* the last failure to read the cgroup (negative errno), 0 when it reads: said once per change */
	uint64_t usage_bytes;
	uint64_t prev_usage_bytes; /* at the measurement before: is it climbing */
	uint64_t limit_bytes;
	uint64_t rss_step_bytes; /* the RSS event step its processes have in the kernel (core/rsstep.h); 0: not set */
	uint64_t oom_kill_count;
	uint64_t reclaim_count;
	uint64_t reclaim_count_prev;
	uint64_t reclaim_prev_ns;
	double reclaim_rate;
	double psi_some_avg10; /* memory.pressure of a v2 cgroup; -1 unknown (v1 has none per cgroup) */
	/* generations */
	struct gen_tracker gens;
	struct saved_prompt running;
	uint64_t running_started_ns;
	bool server_gone;          /* the server died and no successor is known yet */
	struct usage_levels lv;    /* the levels between polls: where a prompt began, the dip after its peak */
	uint64_t generations_completed;
	bool generation_just_ended;
	struct forecast_params fcp;
	struct forecast fc;
	bool fc_valid;
	uint32_t leak_warned_epoch;
	bool leak_warned;
	uint32_t nofit_warned_epoch;
	bool nofit_warned;
	/* what /free can and cannot give back */
	char free_pending_prompt[COMFY_PROMPT_ID_MAX]; /* a /free was sent while this prompt ran */
	uint64_t free_sent_usage_bytes;
	bool floor_valid;
	uint64_t floor_bytes;      /* usage right after a /free took effect: what it cannot release */
	uint64_t clean_cost_bytes; /* largest peak - start of a generation that (re)loaded its models */
	uint64_t floor_gens;       /* generations_completed when floor_bytes was measured */
	struct gen_settle settle;  /* memory falling after a /free took effect: judged once it settled */
	uint64_t settle_boundary_ns;
	bool settle_idle;          /* the /free was applied at once (idle), not at a generation boundary */
	/* what this instance has shown (learn.c), kept in learn_path across restarts */
	struct learn_stats learn;
	char learn_path[PATH_MAX];
	bool learn_dirty;
	uint64_t learn_saved_ns;
	struct forecast_rate rate; /* growth of usage now: the time to the limit */
	/* The server's own memory: its process tree when another watched server shares the memory cgroup (the cgroup's
	 * usage is then theirs too), else the cgroup's usage. What a prompt is charged with when it is stopped. */
	bool cgroup_shared;
	uint64_t own_bytes;
	uint64_t own_start_bytes;      /* own memory when the running prompt started */
	uint64_t own_low_bytes;        /* the lowest own memory since the last prompt started (0: none yet): a prompt
					* is seen running a poll after it began, its start is the low before */
	struct forecast_rate own_rate; /* growth of own memory now */
	/* The first prompt the server runs from its start: it runs from a clean start (policy_input.fresh_start) */
	char fresh_id[COMFY_PROMPT_ID_MAX];
	bool server_ran_prompt; /* a prompt was seen running on this server, or it was found already running */
	uint64_t interrupt_sent_ns; /* an /interrupt awaits the prompt leaving the running slot: its latency */
	uint64_t restart_sent_ns;   /* a restart is measured: stop to release, stop to answering */
	uint64_t restart_stop_ms;
	bool restart_exit_seen;    /* the stopped server's exit was seen: restart_stop_ms is measured */
	bool brake_on;             /* memory.high is held just above usage */
	uint64_t brake_saved_high; /* memory.high before the brake, restored after */
	uint64_t brake_held;       /* the value the brake wrote */
	char brake_dir[PATH_MAX];  /* the cgroup it was written in */
	bool brake_leftover_due;   /* the cgroup is new: a mark a killed daemon left may name it */
	struct policy_giveup giveup;
	uint64_t last_rss_policy_ns;
	int usage_efd;             /* v1: the kernel's notification that usage crossed usage_line (memwatch.c), -1 none */
	uint64_t usage_line;       /* bytes of memory.usage_in_bytes: the warn line of the limit */
	uint64_t raw_usage_bytes;  /* usage with page cache, what the notification compares */
	int arm_efd;               /* v1: the notification that usage crossed arm_line (core/rssarm.h), -1 none */
	uint64_t arm_line;         /* bytes of memory.usage_in_bytes where the rss_stat probe is wanted */
	uint64_t awake_until_ns;   /* the timers run at least until then: activity was seen (instance_keep_awake) */
	uint64_t last_locate_ns;
	bool blocked_reported;
	/* prevention */
	struct policy_params pp;
	struct policy_state ps;
	/* what a reload must send again, once the HTTP client is on the loop (instance_new) */
	struct resend {
		bool free, unload, free_memory;
		char interrupt[COMFY_PROMPT_ID_MAX];
	} pending_resend;
	/* a rung's /free and /interrupt sent and not answered yet: a reload drops the request, so it sends them again */
	unsigned frees_in_flight, interrupts_in_flight;
	bool in_flight_unload, in_flight_free_memory; /* the flags of those /free */
	char in_flight_interrupt[COMFY_PROMPT_ID_MAX];  /* the prompt of the last /interrupt */
	struct saved_prompt requeue;
	bool requeue_pending;
	uint64_t requeue_deadline_ns;
	uint64_t requeue_ticket;   /* qtrack_post_sent of the requeue in flight */
	char requeued_id[COMFY_PROMPT_ID_MAX];
	enum restart_state rs;
	bool rs_last_resort;       /* the stop works from the snapshot, without asking the server */
	uint64_t rs_began_ns;      /* when the last stop began */
	bool rs_snap_mirror;       /* the last resort's snapshot mirrored the stopped server's queue (no earlier stop's) */
	uint64_t rs_deadline_ns;   /* STOPPING: escalate to SIGKILL then; STARTING: the server is late */
	uint64_t rs_giveup_ns;     /* STOPPING: the old server outlived SIGKILL: give up, protect as before */
	bool rs_killed;            /* SIGKILL + process_mrelease were sent to the old server */
	bool rs_answered;          /* STARTING: a new server answered; restart_step ends the restart */
	char rs_drop_id[COMFY_PROMPT_ID_MAX]; /* given up on: not resubmitted by the restart under way */
	char rs_running_id[COMFY_PROMPT_ID_MAX]; /* DRAINING: the prompt that ran at the save */
	bool rs_drain_busy;
	bool rs_drain_checked;     /* DRAINING: what left the queue was looked up in /history; the next quiet look stops */
	bool rs_drain_last;        /* DRAINING: the lookups under way end in the stop (no /queue answer, grace over) */
	struct qtrack_mark rs_look_mark; /* DRAINING: the status broadcasts received when the last /queue was asked */
	pid_t rs_old_pid;
	uint64_t rs_old_start_ns;
	pid_t rs_command_pid;      /* restart_command running (its exit status decides) */
	struct unitjob *rs_job;    /* RestartUnit's job under way (its result decides) */
	/* the queue as of the last /queue reply, persisted under state_dir: what any stop resubmits */
	struct queue_snapshot snap;
	bool snap_dirty;           /* changed since it was last written */
	/* the loop's requests in flight (comfy_start_*): one poll chain, one resubmission chain at a time */
	bool poll_busy;
	uint64_t poll_sent_ns;     /* when the poll being answered was sent */
	struct qtrack_mark poll_mark; /* the websocket's status frames received when it was sent */
	/* ComfyUI's status broadcasts since the /queue reply the snapshot mirrors (core/qtrack.h): a prompt that
	 * finished in the round trip of the /queue its own broadcast woke is not owed again by a last resort */
	struct qtrack qt;
	char qt_running_id[COMFY_PROMPT_ID_MAX]; /* the prompt that reply showed running */
	uint64_t qt_before_sent_ns;  /* the request of the last reply that did not show it running yet (0: none) */
	uint64_t qt_last_sent_ns;    /* the request of that reply */
	/* every /interrupt the daemon sends (a rung's or a controlled restart's): the prompt it stops has not finished
	 * as far as resubmission goes, and one that lands late stops the next prompt instead */
	unsigned own_interrupts_open;
	uint64_t own_interrupt_answered_ns; /* when the last one was answered (0: never) */
	bool resubmit_busy;
	/* the server this round of resubmission talks to (from its /queue on): a round goes on only while that server
	 * is the one answering and is not being stopped, so that nothing it holds is taken for held by another */
	int32_t resubmit_pid;
	uint64_t resubmit_start_ns;
	uint64_t resubmit_look_ns; /* when this round last read the server's /queue */
	struct qtrack_mark look_mark; /* that look's request: the status frames received when it was sent */
	uint64_t look_sent_ns;
	uint64_t resubmit_ticket;  /* qtrack_post_sent of the resubmission in flight */
	bool resubmit_unlooked;    /* a prompt was resubmitted since that look */
	/* while a round runs the poll is off, so the generation tracker does not see what runs: the round's own looks
	 * say which prompt runs, for the give-up (a prompt that climbs to the limit within the round) */
	char resubmit_running_id[COMFY_PROMPT_ID_MAX];
	bool resubmit_running_first; /* it is the first prompt this server ran: it started from a clean start */
	bool resubmit_ran_before;    /* a look saw another prompt run on this server before */
	uint64_t resubmit_base_bytes;  /* usage when the server answered, before any resubmitted prompt ran */
	bool stats_busy;
	struct comfy_queue pending_q; /* a /queue reply waiting for the /history of the prompt that left */
	uint64_t pending_now_ns;
	int pending_change;           /* enum queue_change of pending_q, while the unseen prompts are looked up */
	uint64_t pending_usage_bytes; /* the measurement taken with pending_q */
	uint64_t pending_residual_bytes; /* what the prompt that left the running slot left, as of pending_q */
	struct unseen_lookup *unseen; /* /history lookups of prompts that ran between two polls, under way */
	struct incident *incident;
	/* orphans */
	struct orphan_reap reaps[MAX_REAPS];
	uint64_t reap_rss[MAX_REAPS];
	size_t n_reaps;
	uint64_t orphan_check_ns;
	uint64_t orphan_bytes;
	uint32_t orphan_count;
	struct crashloop cl;
	struct idleloop il; /* the daemon's own stops of a server that ran nothing: a leak while idle */
	/* ComfyUI's websocket, exact generation boundaries and queue look-ahead (instance-gen.c) */
	struct comfy_ws_conn *ws;
	char ws_client_id[48];
	bool ws_wake;              /* a queue change or boundary came in: read /queue + /history now */
	bool ws_up_reported;       /* it connected once: later losses and reconnects are routine */
	bool ws_down_reported;     /* it never connected and that was said */
	char ws_progress_prompt[COMFY_PROMPT_ID_MAX]; /* progress events (only for prompts routed to us) */
	int64_t ws_progress_value, ws_progress_max;
	struct memtrace *trace;    /* every measurement: generations are cut from it at ComfyUI's stamps */
	char seen_pending[SEEN_PENDING_MAX][COMFY_PROMPT_ID_MAX];
	size_t n_seen_pending;
	uint64_t exact_generations;  /* measured between ComfyUI's stamps */
	uint64_t unseen_generations; /* ran between two polls, found in /history */
	struct la_costs la_costs;
	struct la_loaded la_loaded;        /* models believed resident */
	struct la_loaded la_loaded_before; /* ... when the running prompt started */
	struct la_prompt la_running;
	bool la_running_valid;
	char la_cache_id[LA_PENDING_CACHE][COMFY_PROMPT_ID_MAX];
	struct la_prompt la_cache[LA_PENDING_CACHE];
	size_t la_cache_next;
	uint64_t la_excess_bytes;  /* a generation's own working set, models' load taken out */
	uint64_t la_excess_pixels; /* ... at this latent size */
	struct la_forecast la_fc;
	bool la_fc_valid;
	char la_next_id[COMFY_PROMPT_ID_MAX];
	char la_reported_id[COMFY_PROMPT_ID_MAX];
	/* history for incidents */
	struct mem_sample samples[SAMPLE_RING];
	size_t n_samples, sample_head;
	uint64_t actions_total;
	char last_action[256];
};

void saved_prompt_clear(struct saved_prompt *s);
int saved_prompt_from_item(struct saved_prompt *s, const struct comfy_queue_item *it);
/* A record of this instance (INSTANCE= filled in). */
struct rec *instance_rec(struct rec *r, struct instance *in, enum rec_kind kind, int prio);
/* Something new was learnt; instance_learn_flush() persists it to learn_path (at most once a second unless
 * forced). */
void instance_learnt(struct instance *in);
void instance_learn_flush(struct instance *in, uint64_t now_ns, bool force);
/* p is the live server of this instance. */
bool instance_owns_proc(struct instance *in, const struct proc *p);
/* Activity: the timers run for INSTANCE_AWAKE_LINGER_NS from now (instance_needs_timers). */
void instance_keep_awake(struct instance *in, uint64_t now_ns);
/* The usage at which this instance wants the rss_stat probe (core/rssarm.h), from its limit and measured growth;
 * 0: every usage */
uint64_t instance_rss_line(const struct instance *in);
/* p is the live server or a process forked from it, directly or not (false while no server is known). */
bool instance_tree_has(struct instance *in, const struct proc *p);

/* A prompt began on the server (seen running, or found in /history between two polls): the first since the server
 * started is its fresh one, and own memory now is where it started. */
void instance_prompt_started(struct instance *in, const char *prompt_id);

/* instance.c: what follows a generation's end (counting, its record, a /free that took effect, the forecast). */
void instance_generation_done(struct instance *in, const char *prompt_id, enum gen_status st, uint64_t now_ns);
enum gen_status instance_history_status(const struct comfy_history_item *h);

/* instance-gen.c: ComfyUI's websocket as a wake-up, generations cut at ComfyUI's own stamps, prompts that ran
 * between two polls, and the queue look-ahead. */
int igen_init(struct instance *in);
void igen_free(struct instance *in);
/* Follow /ws (unless configured off); ws may be NULL (no websocket client: polling only, said once). */
void igen_connect(struct instance *in, struct comfy_ws *ws);
/* A message asked for /queue + /history now; clears the request. */
bool igen_take_wake(struct instance *in);
void igen_measured(struct instance *in, uint64_t now_ns);
/* An RSS step of p (rss_bytes at ts_ns, when the kernel saw it) read after instance_measure(): when it is read
 * late (the loop was busy), the trace also gets the usage it implies at ts_ns. */
void igen_rss_event(struct instance *in, struct proc *p, uint64_t rss_bytes, uint64_t ts_ns);
/* After gen_end() of a prompt the live path saw: its start, peak and residual from the stamps in h. */
void igen_exact(struct instance *in, const char *prompt_id, const struct comfy_history_item *h, uint64_t now_ns);
/* Prompts that left the pending list without being seen running: their /history entries are read on the loop, one
 * request after the other, and the generations recorded in order once all have answered; then(in) runs after that.
 * ended_id: the one the live path just ended ("" none). true: lookups run and then() comes later; false: none was
 * owed (or none could start), nothing was recorded and the caller goes on at once. */
typedef void (*igen_then_fn)(struct instance *in);
bool igen_unseen_start(struct instance *in, const struct comfy_queue *q, const char *ended_id, uint64_t now_ns,
		       igen_then_fn then);
void igen_started(struct instance *in, const struct comfy_queue_item *it);
/* A generation was recorded: learn the load cost of the models it brought in. */
void igen_ended(struct instance *in, const struct generation *g);
/* Every poll: remember the pending prompts, forecast the next one against the loaded models. */
void igen_queue_seen(struct instance *in, const struct comfy_queue *q, uint64_t now_ns, uint64_t usage_bytes);
/* Models were dropped (a /free took effect, the server restarted). */
void igen_models_unloaded(struct instance *in);
/* The server answers /queue again after a restart or an outage: follow its websocket at once. */
void igen_server_answers(struct instance *in);
/* The next prompt will not fit beside the loaded models but will alone: unload when the running prompt ends. */
bool igen_next_needs_unload(const struct instance *in);
/* Where the running prompt is expected to peak from what its workflow loads (its start level, the models it
 * brings in at their learnt cost, a generation's own working set at its latent size); 0 when not known. */
uint64_t igen_running_peak_bytes(const struct instance *in);

#endif

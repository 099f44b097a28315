/* SPDX-License-Identifier: GPL-2.0 */
/* What instance.c and the modules it drives (locate, prevent, restart, scan) share about one ComfyUI instance: its
 * state and a few helpers (instance-state.c). Not an API: the loop goes through instance.h. */
#ifndef OOMSENTRY_INSTANCE_STATE_H
#define OOMSENTRY_INSTANCE_STATE_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include "cgroup.h"
#include "comfy.h"
#include "crashloop.h"
#include "forecast.h"
#include "generations.h"
#include "incident.h"
#include "journal.h"
#include "learn.h"
#include "orphans.h"
#include "policy.h"
#include "usage.h"

struct daemon;
struct proc;

#define SAMPLE_RING 2400    /* 20 min at the default 500 ms: what an incident report shows */
#define MAX_SAVED 256       /* prompts a controlled restart carries over */
#define MAX_REAPS 64

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

enum restart_state { RS_IDLE = 0, RS_STOPPING, RS_STARTING };

struct instance {
	struct daemon *d;
	const struct instance_config *ic;
	int index;
	uint16_t port;
	char labels[128]; /* metrics: comfyui="NAME" */
	struct comfy_client *comfy;
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
	uint64_t usage_bytes;
	uint64_t prev_usage_bytes; /* at the measurement before: is it climbing */
	uint64_t limit_bytes;
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
	uint64_t interrupt_sent_ns; /* an /interrupt awaits the prompt leaving the running slot: its latency */
	uint64_t restart_sent_ns;   /* a restart is measured: stop to release, stop to answering */
	uint64_t restart_stop_ms;
	bool brake_on;             /* memory.high is held just above usage */
	uint64_t brake_saved_high; /* memory.high before the brake, restored after */
	struct policy_giveup giveup;
	uint64_t last_rss_policy_ns;
	uint64_t last_locate_ns;
	bool blocked_reported;
	/* prevention */
	struct policy_params pp;
	struct policy_state ps;
	struct saved_prompt requeue;
	bool requeue_pending;
	uint64_t requeue_deadline_ns;
	char requeued_id[COMFY_PROMPT_ID_MAX];
	enum restart_state rs;
	struct saved_prompt saved[MAX_SAVED];
	size_t n_saved;
	uint64_t rs_deadline_ns;
	pid_t rs_old_pid;
	uint64_t rs_old_start_ns;
	struct incident *incident;
	/* orphans */
	struct orphan_reap reaps[MAX_REAPS];
	uint64_t reap_rss[MAX_REAPS];
	size_t n_reaps;
	uint64_t orphan_check_ns;
	uint64_t orphan_bytes;
	uint32_t orphan_count;
	struct crashloop cl;
	/* history for incidents */
	struct mem_sample samples[SAMPLE_RING];
	size_t n_samples, sample_head;
	uint64_t actions_total;
	char last_action[256];
};

static inline const char *fmt_bytes(uint64_t b, char *buf, size_t len)
{
	forecast_format_bytes(b, buf, len);
	return buf;
}

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
/* p is the live server or a process forked from it, directly or not (false while no server is known). */
bool instance_tree_has(struct instance *in, const struct proc *p);

#endif

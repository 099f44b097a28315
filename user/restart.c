// SPDX-License-Identifier: GPL-2.0
/* Controlled restart: save the queue, stop ComfyUI, wait for it to answer again, resubmit every prompt with its
 * original prompt_id and number, journal the mapping. */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include "actions.h"
#include "comfy-client.h"
#include "common.h"
#include "context.h"
#include "instance-state.h"
#include "locate.h"
#include "log.h"
#include "proctree.h"
#include "restart.h"
#include "usage.h"

static int save_queue(struct instance *in)
{
	struct comfy_queue q = { 0 };
	const struct comfy_queue *from = &q;
	int r = comfy_get_queue(in->comfy, &q);

	for (size_t i = 0; i < in->n_saved; i++)
		saved_prompt_clear(&in->saved[i]);
	in->n_saved = 0;
	if (r < 0) {
		/* a server stalled by memory pressure may not answer in time: the last poll's queue is at most a poll
		 * interval old, and a prompt it lacks is at worst submitted once more */
		if (!in->last_queue.n_running && !in->last_queue.n_pending)
			return r;
		log_warn("instance %s: /queue does not answer (%s); saving the queue of the last poll", in->ic->name,
			 comfy_last_error(in->comfy));
		from = &in->last_queue;
	}
	/* running first: it was interrupted by the restart and is the oldest */
	for (size_t i = 0; i < from->n_running && in->n_saved < MAX_SAVED; i++)
		saved_prompt_from_item(&in->saved[in->n_saved++], &from->running[i]);
	for (size_t i = 0; i < from->n_pending && in->n_saved < MAX_SAVED; i++)
		saved_prompt_from_item(&in->saved[in->n_saved++], &from->pending[i]);
	comfy_queue_free(&q);
	return (int)in->n_saved;
}

struct tree_signal_ctx {
	struct instance *in;
	int sig;
	int sent;
};

static void signal_tree(struct proc *p, void *ctx)
{
	struct tree_signal_ctx *c = ctx;

	if (p->death != PROC_ALIVE || p->is_server || !instance_tree_has(c->in, p))
		return;
	if (action_signal(proctree_root(c->in->d->pt), p->pid, p->start_ns, c->sig) == 0)
		c->sent++;
}

int restart_begin(struct instance *in, uint64_t now_ns, char *detail, size_t len)
{
	int n = save_queue(in), r = 0;

	/* what was saved is resubmitted once; a second restart before the next poll must not send it again */
	comfy_queue_free(&in->last_queue);

	if (n < 0)
		log_warn("instance %s: could not save the queue before the restart (%s); restarting anyway", in->ic->name,
			 comfy_last_error(in->comfy));
	in->rs_old_pid = in->server_pid;
	in->rs_old_start_ns = in->server_start_ns;
	switch (in->ic->restart_method) {
	case RESTART_SIGNAL: {
		/* the server and its workers, each through its own pidfd; the supervisor starts the server again */
		struct tree_signal_ctx c = { in, SIGTERM, 0 };
		r = action_signal(proctree_root(in->d->pt), in->server_pid, in->server_start_ns, SIGTERM);
		proctree_foreach(in->d->pt, signal_tree, &c);
		snprintf(detail, len, "SIGTERM to pid %d and %d workers", in->server_pid, c.sent);
		break;
	}
	case RESTART_COMMAND:
		r = action_spawn_command(in->ic->restart_command, in->ic->name);
		snprintf(detail, len, "ran '%.100s'", in->ic->restart_command);
		r = r < 0 ? r : 0;
		break;
	case RESTART_SYSTEMD:
		r = action_restart_unit(in->ic->systemd_unit);
		snprintf(detail, len, "RestartUnit %s", in->ic->systemd_unit);
		break;
	case RESTART_NONE:
		r = -EOPNOTSUPP;
		break;
	}
	if (r < 0)
		return r;
	in->rs = RS_STOPPING;
	in->rs_deadline_ns = now_ns + in->ic->restart_timeout_ms * NSEC_PER_MSEC;
	snprintf(detail + strlen(detail), len - strlen(detail), ", %zu prompts saved", in->n_saved);
	return 0;
}

static void restart_resubmit(struct instance *in)
{
	for (size_t i = 0; i < in->n_saved; i++) {
		char new_id[COMFY_PROMPT_ID_MAX] = "";
		struct rec r;
		int ret = comfy_submit_prompt(in->comfy, in->saved[i].prompt_json, in->saved[i].extra_json,
					      in->saved[i].prompt_id, false, in->saved[i].number, new_id);

		instance_rec(&r, in, REC_ACTION, ret < 0 ? LOG_ERR : LOG_INFO);
		rec_add(&r, "ACTION", "resubmit");
		rec_add_id(&r, "PROMPT_ID", in->saved[i].prompt_id);
		rec_add_id(&r, "NEW_PROMPT_ID", new_id);
		rec_add(&r, "RESULT", "%s", ret < 0 ? "failed" : "ok");
		if (ret < 0)
			rec_message(&r, "instance %s: could not resubmit prompt %s after the restart: %s", in->ic->name,
				    in->saved[i].prompt_id, comfy_last_error(in->comfy));
		else
			rec_message(&r, "instance %s: resubmitted prompt %s -> %s after the restart", in->ic->name,
				    in->saved[i].prompt_id, new_id);
		rec_emit(&r);
		saved_prompt_clear(&in->saved[i]);
	}
	in->n_saved = 0;
}

void restart_step(struct instance *in, uint64_t now_ns)
{
	struct comfy_system_stats st;
	struct rec r;

	action_reap_children();
	if (in->rs == RS_IDLE)
		return;
	instance_locate_server(in, now_ns);
	if (in->rs == RS_STOPPING && !(in->server_pid == in->rs_old_pid && in->server_start_ns == in->rs_old_start_ns))
		in->rs = RS_STARTING;
	if (in->rs == RS_STARTING && comfy_get_system_stats(in->comfy, &st) == 0 &&
	    !(in->server_pid == in->rs_old_pid && in->server_start_ns == in->rs_old_start_ns)) {
		instance_rec(&r, in, REC_ACTION, LOG_NOTICE);
		rec_add(&r, "ACTION", "restart_complete");
		rec_add_pid(&r, "PID", in->server_pid);
		rec_message(&r, "instance %s: ComfyUI is back as pid %d; resubmitting %zu prompts", in->ic->name,
			    in->server_pid, in->n_saved);
		rec_emit(&r);
		/* the clean level before any resubmitted prompt starts: the next generation starts from here */
		instance_measure(in);
		usage_levels_polled(&in->lv, in->usage_bytes);
		saved_prompt_clear(&in->running);
		restart_resubmit(in);
		in->rs = RS_IDLE;
		return;
	}
	if (now_ns > in->rs_deadline_ns) {
		instance_rec(&r, in, REC_ACTION, LOG_ERR);
		rec_add(&r, "ACTION", "restart_complete");
		rec_add(&r, "RESULT", "timeout");
		rec_message(&r, "instance %s: ComfyUI did not come back within %llu ms; %zu saved prompts are kept and "
				"resubmitted when it answers",
			    in->ic->name, (unsigned long long)in->ic->restart_timeout_ms, in->n_saved);
		rec_emit(&r);
		in->rs = RS_STARTING;
		in->rs_deadline_ns = UINT64_MAX;
	}
}


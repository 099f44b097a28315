// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include "comfy.h"
#include "config.h"
#include "instance-state.h"
#include "journal.h"
#include "learn-store.h"
#include "log.h"
#include "proctree.h"
#include "rssarm.h"

void saved_prompt_clear(struct saved_prompt *s)
{
	free(s->prompt_json);
	free(s->extra_json);
	memset(s, 0, sizeof(*s));
}

int saved_prompt_from_item(struct saved_prompt *s, const struct comfy_queue_item *it)
{
	saved_prompt_clear(s);
	snprintf(s->prompt_id, sizeof(s->prompt_id), "%s", it->prompt_id);
	s->number = it->number;
	s->prompt_json = strdup(it->prompt_json ? it->prompt_json : "{}");
	s->extra_json = strdup(it->extra_data_json ? it->extra_data_json : "{}");
	return s->prompt_json && s->extra_json ? 0 : -ENOMEM;
}

struct rec *instance_rec(struct rec *r, struct instance *in, enum rec_kind kind, int prio)
{
	rec_init(r, kind, prio);
	rec_add(r, "INSTANCE", "%s", in->ic->name);
	return r;
}

uint64_t instance_rss_line(const struct instance *in)
{
	return rssarm_line(in->limit_bytes, in->pp.warn_usage_fraction, forecast_rate_get(&in->rate));
}

void instance_keep_awake(struct instance *in, uint64_t now_ns)
{
	in->awake_until_ns = MAX(in->awake_until_ns, now_ns + INSTANCE_AWAKE_LINGER_NS);
}

bool instance_owns_proc(struct instance *in, const struct proc *p)
{
	return p && p->death == PROC_ALIVE && p->pid == in->server_pid && p->start_ns == in->server_start_ns;
}

bool instance_tree_has(struct instance *in, const struct proc *p)
{
	return in->server_pid && p &&
	       (instance_owns_proc(in, p) || (p->server_pid == in->server_pid && p->server_start_ns == in->server_start_ns));
}

void instance_prompt_started(struct instance *in, const char *prompt_id)
{
	if (!in->server_ran_prompt) {
		snprintf(in->fresh_id, sizeof(in->fresh_id), "%s", prompt_id);
		in->server_ran_prompt = true;
	}
	in->own_start_bytes = in->own_low_bytes ? MIN(in->own_low_bytes, in->own_bytes) : in->own_bytes;
	in->own_low_bytes = in->own_bytes;
}

void instance_learnt(struct instance *in)
{
	in->learn_dirty = true;
}

void instance_learn_flush(struct instance *in, uint64_t now_ns, bool force)
{
	int r;

	/* one small atomic write a second at most: a 0.2 s generation must not mean five fsyncs a second */
	if (!in->learn_dirty || !in->learn_path[0] || (!force && now_ns - in->learn_saved_ns < NSEC_PER_SEC))
		return;
	in->learn_dirty = false;
	in->learn_saved_ns = now_ns;
	in->learn.models = in->la_costs;
	r = learn_store_save_async(in->learn_path, &in->learn);
	if (r < 0) {
		/* said once: learning goes on in memory */
		log_warn("instance %s: cannot keep what it learnt in %s (%s); it is kept in memory only", in->ic->name,
			 in->learn_path, strerror(-r));
		in->learn_path[0] = 0;
	}
}

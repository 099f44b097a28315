// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <string.h>
#include "comfy.h"
#include "config.h"
#include "instance-state.h"
#include "journal.h"
#include "proctree.h"

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

bool instance_owns_proc(struct instance *in, const struct proc *p)
{
	return p && p->death == PROC_ALIVE && p->pid == in->server_pid && p->start_ns == in->server_start_ns;
}

bool instance_tree_has(struct instance *in, const struct proc *p)
{
	return in->server_pid && p &&
	       (instance_owns_proc(in, p) || (p->server_pid == in->server_pid && p->server_start_ns == in->server_start_ns));
}

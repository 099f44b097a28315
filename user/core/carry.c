// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include "carry.h"
#include "jsontext.h"

enum ftype { F_BOOL, F_U64, F_RUNG };

struct field {
	const char *name;
	enum ftype type;
	size_t offset;
};

#define PS(n, t) { #n, t, offsetof(struct policy_state, n) }
/* every field of struct policy_state but the per-rung arrays, which go as arrays */
static const struct field ps_fields[] = {
	PS(usage_pressure, F_BOOL), PS(have_prev, F_BOOL), PS(prev_usage_bytes, F_U64), PS(reclaim_high, F_BOOL),
	PS(reclaim_since_ns, F_U64), PS(have_generations, F_BOOL), PS(last_generations, F_U64), PS(floor, F_RUNG),
	PS(free_futile, F_BOOL), PS(awaiting, F_BOOL), PS(await_proactive, F_BOOL), PS(await_generation_end, F_BOOL),
	PS(last_rung, F_RUNG), PS(last_act_ns, F_U64), PS(last_act_usage_bytes, F_U64),
	PS(last_act_generations, F_U64), PS(deadline_ns, F_U64), PS(cap_ns, F_U64), PS(reported, F_BOOL),
	PS(reported_ok, F_BOOL), PS(reported_freed_bytes, F_U64), PS(effect_at_ns, F_U64), PS(braking, F_BOOL), PS(brake_until_ns, F_U64),
	PS(restart_mark_valid, F_BOOL), PS(restart_mark, F_U64), PS(free_mark_valid, F_BOOL), PS(free_mark, F_U64),
	PS(unload_mark_valid, F_BOOL), PS(unload_mark, F_U64),
};

#define C(n, t) { #n, t, offsetof(struct carry, n) }
static const struct field carry_fields[] = {
	C(written_ns, F_U64), C(server_start_ns, F_U64), C(requeue_pending, F_BOOL), C(requeue_deadline_ns, F_U64),
	C(interrupt_sent_ns, F_U64), C(generations_completed, F_U64), C(free_sent_usage_bytes, F_U64),
	C(floor_valid, F_BOOL), C(floor_bytes, F_U64), C(floor_gens, F_U64), C(restart_sent_ns, F_U64),
	C(resend_free, F_BOOL), C(resend_unload, F_BOOL), C(resend_free_memory, F_BOOL),
};

void carry_free(struct carry *c)
{
	if (!c)
		return;
	free(c->requeue_prompt_json);
	free(c->requeue_extra_json);
	free(c->incident_json);
	memset(c, 0, sizeof(*c));
}

static int add_fields(json_object *o, const void *base, const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *p = (const char *)base + f[i].offset;
		json_object *v;

		switch (f[i].type) {
		case F_BOOL: v = json_object_new_boolean(*(const bool *)p); break;
		case F_U64: v = json_object_new_uint64(*(const uint64_t *)p); break;
		case F_RUNG:
			if ((unsigned)*(const enum policy_rung *)p >= POLICY_RUNG_COUNT)
				return -EINVAL;
			v = json_object_new_int(*(const enum policy_rung *)p);
			break;
		default: return -EINVAL;
		}
		if (!v || json_object_object_add(o, f[i].name, v) < 0) {
			json_object_put(v);
			return -ENOMEM;
		}
	}
	return 0;
}

static bool get(json_object *o, const char *key, enum json_type type, json_object **ret)
{
	return json_object_object_get_ex(o, key, ret) && json_object_is_type(*ret, type);
}

static int read_fields(json_object *o, void *base, const struct field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char *p = (char *)base + f[i].offset;
		json_object *v;

		switch (f[i].type) {
		case F_BOOL:
			if (!get(o, f[i].name, json_type_boolean, &v))
				return -EBADMSG;
			*(bool *)p = json_object_get_boolean(v);
			break;
		case F_U64:
			if (!get(o, f[i].name, json_type_int, &v))
				return -EBADMSG;
			*(uint64_t *)p = json_object_get_uint64(v);
			break;
		case F_RUNG:
			if (!get(o, f[i].name, json_type_int, &v) || json_object_get_int64(v) < 0 ||
			    json_object_get_int64(v) >= POLICY_RUNG_COUNT)
				return -EBADMSG;
			*(enum policy_rung *)p = (enum policy_rung)json_object_get_int64(v);
			break;
		}
	}
	return 0;
}

static int add_str(json_object *o, const char *key, const char *s)
{
	json_object *v = json_object_new_string(s ? s : "");

	if (!v || json_object_object_add(o, key, v) < 0) {
		json_object_put(v);
		return -ENOMEM;
	}
	return 0;
}

/* a string field into buf (size bytes, NUL included): -EBADMSG when absent, not a string or too long */
static int read_str(json_object *o, const char *key, char *buf, size_t size)
{
	json_object *v;

	if (!get(o, key, json_type_string, &v) || (size_t)json_object_get_string_len(v) >= size)
		return -EBADMSG;
	memcpy(buf, json_object_get_string(v), (size_t)json_object_get_string_len(v) + 1);
	return 0;
}

static int policy_to_json(const struct policy_state *ps, json_object **ret)
{
	json_object *o = json_object_new_object(), *acted = json_object_new_array(), *acted_ns = json_object_new_array();
	int r = -ENOMEM;

	if (!o || !acted || !acted_ns || (r = add_fields(o, ps, ps_fields, ARRAY_SIZE(ps_fields))) < 0)
		goto fail;
	r = -ENOMEM;
	for (int i = 0; i < POLICY_RUNG_COUNT; i++) {
		if (json_object_array_add(acted, json_object_new_boolean(ps->acted[i])) < 0 ||
		    json_object_array_add(acted_ns, json_object_new_uint64(ps->acted_ns[i])) < 0)
			goto fail;
	}
	json_object_object_add(o, "acted", acted);
	json_object_object_add(o, "acted_ns", acted_ns);
	*ret = o;
	return 0;
fail:
	json_object_put(acted);
	json_object_put(acted_ns);
	json_object_put(o);
	return r;
}

static int policy_from_json(json_object *o, struct policy_state *ps)
{
	json_object *acted, *acted_ns;

	if (read_fields(o, ps, ps_fields, ARRAY_SIZE(ps_fields)) < 0 || !get(o, "acted", json_type_array, &acted) ||
	    !get(o, "acted_ns", json_type_array, &acted_ns) || json_object_array_length(acted) != POLICY_RUNG_COUNT ||
	    json_object_array_length(acted_ns) != POLICY_RUNG_COUNT)
		return -EBADMSG;
	for (size_t i = 0; i < POLICY_RUNG_COUNT; i++) {
		json_object *a = json_object_array_get_idx(acted, i), *t = json_object_array_get_idx(acted_ns, i);

		if (!json_object_is_type(a, json_type_boolean) || !json_object_is_type(t, json_type_int))
			return -EBADMSG;
		ps->acted[i] = json_object_get_boolean(a);
		ps->acted_ns[i] = json_object_get_uint64(t);
	}
	return 0;
}

static json_object *giveup_to_json(const struct policy_giveup *g)
{
	json_object *arr = json_object_new_array();

	for (size_t i = 0; arr && i < POLICY_GIVEUP_SLOTS; i++) {
		json_object *o;

		if (!g->e[i].prompt_id[0])
			continue;
		o = json_object_new_object();
		if (!o || json_object_array_add(arr, o) < 0) {
			json_object_put(o);
			json_object_put(arr);
			return NULL;
		}
		json_object_object_add(o, "slot", json_object_new_int((int)i));
		add_str(o, "prompt_id", g->e[i].prompt_id);
		json_object_object_add(o, "stops", json_object_new_int64(g->e[i].stops));
		json_object_object_add(o, "conclusive", json_object_new_boolean(g->e[i].conclusive));
		json_object_object_add(o, "need_bytes", json_object_new_uint64(g->e[i].need_bytes));
		json_object_object_add(o, "floor_bytes", json_object_new_uint64(g->e[i].floor_bytes));
		json_object_object_add(o, "seen_ns", json_object_new_uint64(g->e[i].seen_ns));
	}
	return arr;
}

static int giveup_from_json(json_object *arr, struct policy_giveup *g)
{
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *o = json_object_array_get_idx(arr, i), *slot, *stops, *conclusive, *need, *floor, *seen;
		int64_t s;

		if (!json_object_is_type(o, json_type_object) || !get(o, "slot", json_type_int, &slot) ||
		    !get(o, "stops", json_type_int, &stops) || !get(o, "conclusive", json_type_boolean, &conclusive) ||
		    !get(o, "need_bytes", json_type_int, &need) || !get(o, "floor_bytes", json_type_int, &floor) ||
		    !get(o, "seen_ns", json_type_int, &seen))
			return -EBADMSG;
		s = json_object_get_int64(slot);
		if (s < 0 || s >= POLICY_GIVEUP_SLOTS || g->e[s].prompt_id[0] || json_object_get_int64(stops) < 0 ||
		    json_object_get_int64(stops) > UINT32_MAX ||
		    read_str(o, "prompt_id", g->e[s].prompt_id, sizeof(g->e[s].prompt_id)) < 0 || !g->e[s].prompt_id[0])
			return -EBADMSG;
		g->e[s].stops = (uint32_t)json_object_get_int64(stops);
		g->e[s].conclusive = json_object_get_boolean(conclusive);
		g->e[s].need_bytes = json_object_get_uint64(need);
		g->e[s].floor_bytes = json_object_get_uint64(floor);
		g->e[s].seen_ns = json_object_get_uint64(seen);
	}
	return 0;
}

/* text that must be a JSON object (a prompt, its extra_data) goes in as one, not as a string to reparse */
static int add_object_text(json_object *o, const char *key, const char *text)
{
	json_object *v = NULL;

	if (!text)
		return 0;
	if (jsontext_parse_object(text, strlen(text), 64, &v, NULL, 0) < 0)
		return -EINVAL;
	json_object_object_add(o, key, v);
	return 0;
}

static char *compact(json_object *o)
{
	const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	return t ? strdup(t) : NULL;
}

int carry_to_json(const struct carry *c, char **ret)
{
	_cleanup_json_ json_object *root = NULL;
	json_object *v;
	const char *txt;
	int r;

	if (!c || !ret)
		return -EINVAL;
	*ret = NULL;
	root = json_object_new_object();
	if (!root)
		return -ENOMEM;
	json_object_object_add(root, "version", json_object_new_int(CARRY_VERSION));
	json_object_object_add(root, "pid", json_object_new_int(c->pid));
	json_object_object_add(root, "server_pid", json_object_new_int(c->server_pid));
	json_object_object_add(root, "requeue_number", json_object_new_int64(c->requeue_number));
	if ((r = add_str(root, "boot_id", c->boot_id)) < 0 || (r = add_str(root, "url", c->url)) < 0 ||
	    (r = add_str(root, "requeue_id", c->requeue_id)) < 0 ||
	    (r = add_str(root, "requeued_id", c->requeued_id)) < 0 ||
	    (r = add_str(root, "free_pending_prompt", c->free_pending_prompt)) < 0 ||
	    (r = add_str(root, "resend_interrupt", c->resend_interrupt)) < 0 ||
	    (r = add_fields(root, c, carry_fields, ARRAY_SIZE(carry_fields))) < 0 ||
	    (r = add_object_text(root, "requeue_prompt", c->requeue_prompt_json)) < 0 ||
	    (r = add_object_text(root, "requeue_extra_data", c->requeue_extra_json)) < 0)
		return r;
	if (c->incident_json && (r = add_str(root, "incident", c->incident_json)) < 0)
		return r;
	if ((r = policy_to_json(&c->ps, &v)) < 0)
		return r;
	json_object_object_add(root, "policy", v);
	v = giveup_to_json(&c->giveup);
	if (!v)
		return -ENOMEM;
	json_object_object_add(root, "giveup", v);
	txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	*ret = txt ? strdup(txt) : NULL;
	return *ret ? 0 : -ENOMEM;
}

int carry_parse(const char *text, size_t len, struct carry *ret)
{
	_cleanup_json_ json_object *root = NULL;
	struct carry c = { 0 };
	json_object *v;
	int r = -EBADMSG;

	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!text || len > CARRY_TEXT_MAX)
		return -EBADMSG;
	if (jsontext_parse_object(text, len, 64, &root, NULL, 0) < 0)
		return -EBADMSG;
	if (!get(root, "version", json_type_int, &v) || json_object_get_int64(v) != CARRY_VERSION)
		goto out;
	if (!get(root, "pid", json_type_int, &v) || json_object_get_int64(v) <= 0 || json_object_get_int64(v) > INT32_MAX)
		goto out;
	c.pid = (int32_t)json_object_get_int64(v);
	if (!get(root, "server_pid", json_type_int, &v) || json_object_get_int64(v) < 0 ||
	    json_object_get_int64(v) > INT32_MAX)
		goto out;
	c.server_pid = (int32_t)json_object_get_int64(v);
	if (!get(root, "requeue_number", json_type_int, &v))
		goto out;
	c.requeue_number = json_object_get_int64(v);
	if (read_str(root, "boot_id", c.boot_id, sizeof(c.boot_id)) < 0 || read_str(root, "url", c.url, sizeof(c.url)) < 0 ||
	    read_str(root, "requeue_id", c.requeue_id, sizeof(c.requeue_id)) < 0 ||
	    read_str(root, "requeued_id", c.requeued_id, sizeof(c.requeued_id)) < 0 ||
	    read_str(root, "free_pending_prompt", c.free_pending_prompt, sizeof(c.free_pending_prompt)) < 0 ||
	    read_str(root, "resend_interrupt", c.resend_interrupt, sizeof(c.resend_interrupt)) < 0 ||
	    read_fields(root, &c, carry_fields, ARRAY_SIZE(carry_fields)) < 0)
		goto out;
	/* a requeue owed needs the prompt it sends */
	if (c.requeue_pending) {
		if (!c.requeue_id[0] || !get(root, "requeue_prompt", json_type_object, &v))
			goto out;
		c.requeue_prompt_json = compact(v);
		if (!get(root, "requeue_extra_data", json_type_object, &v))
			goto out;
		c.requeue_extra_json = compact(v);
		if (!c.requeue_prompt_json || !c.requeue_extra_json) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (json_object_object_get_ex(root, "incident", &v)) {
		if (!json_object_is_type(v, json_type_string))
			goto out;
		c.incident_json = strdup(json_object_get_string(v));
		if (!c.incident_json) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (!get(root, "policy", json_type_object, &v) || policy_from_json(v, &c.ps) < 0)
		goto out;
	if (!get(root, "giveup", json_type_array, &v) || giveup_from_json(v, &c.giveup) < 0)
		goto out;
	*ret = c;
	return 0;
out:
	carry_free(&c);
	return r;
}

bool carry_applies(const struct carry *c, const char *boot_id, int32_t pid, uint64_t now_ns)
{
	return c && boot_id && boot_id[0] && !strcmp(c->boot_id, boot_id) && c->pid == pid && c->written_ns <= now_ns &&
	       now_ns - c->written_ns <= CARRY_MAX_AGE_NS;
}

// SPDX-License-Identifier: GPL-2.0
/* The queue snapshot and the exactly-once rule (snapshot.h). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "snapshot.h"

typedef struct json_object json_object;

static void item_clear(struct snap_item *it)
{
	free(it->prompt_json);
	free(it->extra_json);
	memset(it, 0, sizeof(*it));
}

void snapshot_free(struct queue_snapshot *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n; i++)
		item_clear(&s->items[i]);
	free(s->items);
	memset(s, 0, sizeof(*s));
}

static int reserve(struct queue_snapshot *s, size_t n)
{
	struct snap_item *p;
	size_t cap;

	if (n <= s->cap)
		return 0;
	cap = s->cap ? s->cap : 16;
	while (cap < n)
		cap *= 2;
	p = realloc(s->items, cap * sizeof(*p));
	if (!p)
		return -ENOMEM;
	memset(p + s->cap, 0, (cap - s->cap) * sizeof(*p));
	s->items = p;
	s->cap = cap;
	return 0;
}

static int item_from_queue(struct snap_item *it, const struct comfy_queue_item *q, bool running)
{
	memset(it, 0, sizeof(*it));
	snprintf(it->prompt_id, sizeof(it->prompt_id), "%s", q->prompt_id);
	it->number = q->number;
	it->running = running;
	it->prompt_json = strdup(q->prompt_json ? q->prompt_json : "{}");
	it->extra_json = strdup(q->extra_data_json ? q->extra_data_json : "{}");
	if (!it->prompt_json || !it->extra_json) {
		item_clear(it);
		return -ENOMEM;
	}
	return 0;
}

ssize_t snapshot_find(const struct queue_snapshot *s, const char *prompt_id)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->items[i].prompt_id, prompt_id))
			return (ssize_t)i;
	return -1;
}

/* Appends q's items not in s (running first); on -ENOMEM s keeps what it had. */
static int add_missing(struct queue_snapshot *s, const struct comfy_queue *q)
{
	size_t before = s->n;
	int r = reserve(s, s->n + q->n_running + q->n_pending);

	if (r < 0)
		return r;
	for (size_t k = 0; k < q->n_running + q->n_pending; k++) {
		bool running = k < q->n_running;
		const struct comfy_queue_item *qi = running ? &q->running[k] : &q->pending[k - q->n_running];

		if (snapshot_find(s, qi->prompt_id) >= 0)
			continue;
		r = item_from_queue(&s->items[s->n], qi, running);
		if (r < 0) {
			while (s->n > before)
				item_clear(&s->items[--s->n]);
			return r;
		}
		s->n++;
	}
	return (int)(s->n - before);
}

int snapshot_set_queue(struct queue_snapshot *s, const struct comfy_queue *q)
{
	struct queue_snapshot fresh = { 0 };
	int r = add_missing(&fresh, q);

	if (r < 0)
		return r;
	fresh.stop = s->stop;
	fresh.old_pid = s->old_pid;
	fresh.old_start_ns = s->old_start_ns;
	fresh.taken_ms = s->taken_ms;
	snapshot_free(s);
	*s = fresh;
	return 0;
}

int snapshot_merge_queue(struct queue_snapshot *s, const struct comfy_queue *q)
{
	return add_missing(s, q);
}

bool snapshot_same(const struct queue_snapshot *s, const struct comfy_queue *q)
{
	if (s->n != q->n_running + q->n_pending)
		return false;
	for (size_t k = 0; k < s->n; k++) {
		bool running = k < q->n_running;
		const struct comfy_queue_item *qi = running ? &q->running[k] : &q->pending[k - q->n_running];

		if (strcmp(s->items[k].prompt_id, qi->prompt_id) || s->items[k].running != running)
			return false;
	}
	return true;
}

bool snapshot_remove(struct queue_snapshot *s, const char *prompt_id)
{
	ssize_t i = snapshot_find(s, prompt_id);

	if (i < 0)
		return false;
	item_clear(&s->items[i]);
	memmove(&s->items[i], &s->items[i + 1], (s->n - (size_t)i - 1) * sizeof(s->items[0]));
	s->n--;
	memset(&s->items[s->n], 0, sizeof(s->items[0]));
	return true;
}

int snapshot_add_next(struct queue_snapshot *s, const struct comfy_queue_item *qi, uint64_t now_ns)
{
	size_t at = 0;
	int r;

	if (snapshot_find(s, qi->prompt_id) >= 0)
		return 0;
	r = reserve(s, s->n + 1);
	if (r < 0)
		return r;
	while (at < s->n && s->items[at].running)
		at++;
	memmove(&s->items[at + 1], &s->items[at], (s->n - at) * sizeof(s->items[0]));
	r = item_from_queue(&s->items[at], qi, false);
	if (r < 0) {
		memmove(&s->items[at], &s->items[at + 1], (s->n - at) * sizeof(s->items[0]));
		memset(&s->items[s->n], 0, sizeof(s->items[0]));
		return r;
	}
	s->items[at].added_ns = now_ns;
	s->n++;
	return 1;
}

static bool queue_holds(const struct comfy_queue *q, const char *prompt_id)
{
	for (size_t k = 0; k < q->n_running; k++)
		if (!strcmp(q->running[k].prompt_id, prompt_id))
			return true;
	for (size_t k = 0; k < q->n_pending; k++)
		if (!strcmp(q->pending[k].prompt_id, prompt_id))
			return true;
	return false;
}

size_t snapshot_drop_left(struct queue_snapshot *s, const struct comfy_queue *q, bool mirror, uint64_t sent_ns)
{
	size_t i = 0, dropped = 0;

	while (i < s->n) {
		const struct snap_item *it = &s->items[i];
		/* a prompt resubmitted to it is not judged: its POST may have been taken after this reply was made */
		bool was_there = mirror && !it->submitted;

		if (was_there && !(it->added_ns && it->added_ns >= sent_ns) && !queue_holds(q, it->prompt_id)) {
			snapshot_remove(s, it->prompt_id);
			dropped++;
		} else {
			i++;
		}
	}
	return dropped;
}

/* ---- the drain of a controlled restart ---- */

size_t snapshot_mark_left(struct queue_snapshot *s, const struct comfy_queue *q)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++) {
		s->items[i].check = !queue_holds(q, s->items[i].prompt_id);
		n += s->items[i].check;
	}
	return n;
}

ssize_t snapshot_next_marked(const struct queue_snapshot *s)
{
	ssize_t best = -1;

	for (size_t i = 0; i < s->n; i++) {
		const struct snap_item *it = &s->items[i];

		if (!it->check)
			continue;
		if (best < 0 || (it->running && !s->items[best].running) ||
		    (it->running == s->items[best].running && it->number < s->items[best].number))
			best = (ssize_t)i;
	}
	return best;
}

void snapshot_unmark(struct queue_snapshot *s)
{
	for (size_t i = 0; i < s->n; i++)
		s->items[i].check = false;
}

/* ---- text ---- */

static const char *const stop_names[] = { "none", "restart", "last_resort" };

static json_object *parse_object(const char *text, size_t len)
{
	struct json_tokener *tok = json_tokener_new_ex(128);
	json_object *o;

	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)len);
	if (o && (json_tokener_get_error(tok) != json_tokener_success ||
		  json_tokener_get_parse_end(tok) != len)) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

int snapshot_format(const struct queue_snapshot *s, char **ret)
{
	json_object *root, *items;
	const char *txt;
	int r = -ENOMEM;

	if (!s || !ret || (unsigned)s->stop >= sizeof(stop_names) / sizeof(stop_names[0]))
		return -EINVAL;
	*ret = NULL;
	root = json_object_new_object();
	items = json_object_new_array();
	if (!root || !items)
		goto out;
	json_object_object_add(root, "version", json_object_new_int(SNAPSHOT_VERSION));
	json_object_object_add(root, "stop", json_object_new_string(stop_names[s->stop]));
	json_object_object_add(root, "old_pid", json_object_new_int(s->old_pid));
	json_object_object_add(root, "old_start_ns", json_object_new_uint64(s->old_start_ns));
	json_object_object_add(root, "taken_ms", json_object_new_int64(s->taken_ms));
	for (size_t i = 0; i < s->n; i++) {
		const struct snap_item *it = &s->items[i];
		json_object *o = json_object_new_object();
		json_object *prompt = parse_object(it->prompt_json, strlen(it->prompt_json));
		json_object *extra = parse_object(it->extra_json, strlen(it->extra_json));

		if (!o || !prompt || !extra || !json_object_is_type(prompt, json_type_object) ||
		    !json_object_is_type(extra, json_type_object)) {
			json_object_put(o);
			json_object_put(prompt);
			json_object_put(extra);
			r = o ? -EINVAL : -ENOMEM;
			goto out;
		}
		json_object_object_add(o, "prompt_id", json_object_new_string(it->prompt_id));
		json_object_object_add(o, "number", json_object_new_int64(it->number));
		json_object_object_add(o, "running", json_object_new_boolean(it->running));
		json_object_object_add(o, "submitted", json_object_new_boolean(it->submitted));
		json_object_object_add(o, "holder_pid", json_object_new_int(it->holder_pid));
		json_object_object_add(o, "holder_start_ns", json_object_new_uint64(it->holder_start_ns));
		json_object_object_add(o, "prompt", prompt);
		json_object_object_add(o, "extra_data", extra);
		json_object_array_add(items, o);
	}
	json_object_object_add(root, "items", items);
	items = NULL;
	txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	*ret = txt ? strdup(txt) : NULL;
	r = *ret ? 0 : -ENOMEM;
out:
	json_object_put(items);
	json_object_put(root);
	return r;
}

static bool get(json_object *o, const char *key, enum json_type type, json_object **ret)
{
	return json_object_object_get_ex(o, key, ret) && json_object_is_type(*ret, type);
}

static char *compact(json_object *o)
{
	const char *t = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	return t ? strdup(t) : NULL;
}

int snapshot_parse(const char *text, size_t len, struct queue_snapshot *ret)
{
	struct queue_snapshot s = { 0 };
	json_object *root, *v, *items;
	const char *stop;
	int r = -EBADMSG;

	if (!text || !ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (len > SNAPSHOT_TEXT_MAX)
		return -EBADMSG;
	root = parse_object(text, len);
	if (!root || !json_object_is_type(root, json_type_object))
		goto out;
	if (!get(root, "version", json_type_int, &v) || json_object_get_int(v) != SNAPSHOT_VERSION)
		goto out;
	if (!get(root, "stop", json_type_string, &v))
		goto out;
	stop = json_object_get_string(v);
	for (size_t i = 0; stop && i < sizeof(stop_names) / sizeof(stop_names[0]); i++)
		if (!strcmp(stop, stop_names[i])) {
			s.stop = (enum snap_stop)i;
			stop = NULL;
		}
	if (stop)
		goto out;
	if (!get(root, "old_pid", json_type_int, &v) || json_object_get_int64(v) < 0 ||
	    json_object_get_int64(v) > INT32_MAX)
		goto out;
	s.old_pid = (int32_t)json_object_get_int64(v);
	if (!get(root, "old_start_ns", json_type_int, &v))
		goto out;
	s.old_start_ns = json_object_get_uint64(v);
	if (!get(root, "taken_ms", json_type_int, &v))
		goto out;
	s.taken_ms = json_object_get_int64(v);
	if (!get(root, "items", json_type_array, &items))
		goto out;
	if (reserve(&s, json_object_array_length(items)) < 0) {
		r = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(items); i++) {
		json_object *o = json_object_array_get_idx(items, i), *id, *num, *run, *sub, *prompt, *extra;
		struct snap_item *it = &s.items[s.n];

		if (!json_object_is_type(o, json_type_object) || !get(o, "prompt_id", json_type_string, &id) ||
		    !get(o, "number", json_type_int, &num) || !get(o, "running", json_type_boolean, &run) ||
		    !get(o, "submitted", json_type_boolean, &sub) || !get(o, "prompt", json_type_object, &prompt) ||
		    !get(o, "extra_data", json_type_object, &extra))
			goto out;
		if (!json_object_get_string_len(id) || json_object_get_string_len(id) >= COMFY_PROMPT_ID_MAX ||
		    snapshot_find(&s, json_object_get_string(id)) >= 0)
			goto out;
		snprintf(it->prompt_id, sizeof(it->prompt_id), "%s", json_object_get_string(id));
		it->number = json_object_get_int64(num);
		it->running = json_object_get_boolean(run);
		it->submitted = json_object_get_boolean(sub);
		/* absent in a snapshot written before holders were kept: held by no server, so the next /queue and
		 * /history of whichever server answers decide (a holder of 0 matches none) */
		if (json_object_object_get_ex(o, "holder_pid", &v)) {
			if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0 ||
			    json_object_get_int64(v) > INT32_MAX)
				goto out;
			it->holder_pid = (int32_t)json_object_get_int64(v);
		}
		if (json_object_object_get_ex(o, "holder_start_ns", &v)) {
			if (!json_object_is_type(v, json_type_int))
				goto out;
			it->holder_start_ns = json_object_get_uint64(v);
		}
		it->prompt_json = compact(prompt);
		it->extra_json = compact(extra);
		s.n++;
		if (!it->prompt_json || !it->extra_json) {
			r = -ENOMEM;
			goto out;
		}
	}
	*ret = s;
	memset(&s, 0, sizeof(s));
	r = 0;
out:
	snapshot_free(&s);
	json_object_put(root);
	return r;
}

/* ---- exactly once ---- */

static bool held_by(const struct snap_item *it, int32_t pid, uint64_t start_ns)
{
	return it->submitted && it->holder_pid == pid && it->holder_start_ns == start_ns;
}

void snapshot_held(struct queue_snapshot *s, size_t i, int32_t pid, uint64_t start_ns)
{
	s->items[i].submitted = true;
	s->items[i].holder_pid = pid;
	s->items[i].holder_start_ns = start_ns;
}

size_t snapshot_reconcile(struct queue_snapshot *s, int32_t pid, uint64_t start_ns, const char *const *known_ids,
			  size_t n_known)
{
	size_t i = 0;

	while (i < s->n) {
		struct snap_item *it = &s->items[i];
		bool known = false;

		for (size_t k = 0; k < n_known && !known; k++)
			known = known_ids[k] && !strcmp(known_ids[k], it->prompt_id);
		if (known) {
			snapshot_held(s, i++, pid, start_ns);
		} else if (held_by(it, pid, start_ns)) {
			snapshot_remove(s, it->prompt_id);
		} else {
			/* never submitted, or held by a server that is gone: its queue went with it */
			it->submitted = false;
			it->holder_pid = 0;
			it->holder_start_ns = 0;
			i++;
		}
	}
	return snapshot_pending(s);
}

ssize_t snapshot_observe(struct queue_snapshot *s, int32_t pid, uint64_t start_ns, const struct comfy_queue *q)
{
	const char **ids = calloc(q->n_running + q->n_pending + 1, sizeof(*ids));
	size_t n = 0, pending;
	int r;

	if (!ids)
		return -ENOMEM;
	r = add_missing(s, q);
	if (r < 0) {
		free(ids);
		return r;
	}
	for (size_t k = 0; k < q->n_running; k++)
		ids[n++] = q->running[k].prompt_id;
	for (size_t k = 0; k < q->n_pending; k++)
		ids[n++] = q->pending[k].prompt_id;
	pending = snapshot_reconcile(s, pid, start_ns, ids, n);
	free(ids);
	return (ssize_t)pending;
}

size_t snapshot_pending(const struct queue_snapshot *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->n; i++)
		n += !s->items[i].submitted;
	return n;
}

ssize_t snapshot_next(const struct queue_snapshot *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->items[i].submitted && s->items[i].running)
			return (ssize_t)i;
	for (size_t i = 0; i < s->n; i++)
		if (!s->items[i].submitted)
			return (ssize_t)i;
	return -1;
}

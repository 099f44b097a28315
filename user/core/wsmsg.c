// SPDX-License-Identifier: GPL-2.0
/* ComfyUI websocket messages; see wsmsg.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <json-c/json.h>

#include "common.h"
#include "jsontext.h"
#include "wsmsg.h"

/* ComfyUI's numbers are Python ints or time.time()*1000; nothing real exceeds 2^53. */
#define NUMBER_LIMIT (INT64_C(1) << 53)

static const char *const type_names[_WSMSG_TYPE_MAX] = {
	[WSMSG_OTHER] = "other",
	[WSMSG_STATUS] = "status",
	[WSMSG_EXECUTION_START] = "execution_start",
	[WSMSG_EXECUTION_CACHED] = "execution_cached",
	[WSMSG_EXECUTING] = "executing",
	[WSMSG_PROGRESS] = "progress",
	[WSMSG_EXECUTED] = "executed",
	[WSMSG_EXECUTION_SUCCESS] = "execution_success",
	[WSMSG_EXECUTION_ERROR] = "execution_error",
	[WSMSG_EXECUTION_INTERRUPTED] = "execution_interrupted",
	[WSMSG_PROGRESS_STATE] = "progress_state",
};

const char *wsmsg_type_name(enum wsmsg_type t)
{
	return (unsigned)t < _WSMSG_TYPE_MAX ? type_names[t] : "invalid";
}

static int _printf_(4, 5) fail(char *err, size_t err_size, int r, const char *fmt, ...)
{
	va_list ap;

	if (err && err_size) {
		va_start(ap, fmt);
		vsnprintf(err, err_size, fmt, ap);
		va_end(ap);
	}
	return r;
}

/* An id member: absent or null leaves "" (allowed_null reports null), a string must fit and not be empty. */
static int get_id(struct json_object *data, const char *key, char buf[WSMSG_ID_MAX], bool *ret_null, char *err,
		  size_t err_size)
{
	struct json_object *v;
	size_t len;

	if (ret_null)
		*ret_null = false;
	if (!json_object_object_get_ex(data, key, &v) || !v) {
		if (ret_null && json_object_object_get_ex(data, key, &v))
			*ret_null = true;
		return 0;
	}
	/* node ids are strings in the API format, but a hand-written prompt may use numbers */
	if (json_object_is_type(v, json_type_int)) {
		snprintf(buf, WSMSG_ID_MAX, "%lld", (long long)json_object_get_int64(v));
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return fail(err, err_size, -EPROTO, "data.%s: expected a string, got %s", key,
			    json_type_to_name(json_object_get_type(v)));
	len = (size_t)json_object_get_string_len(v);
	if (!len || len >= WSMSG_ID_MAX || memchr(json_object_get_string(v), '\0', len))
		return fail(err, err_size, -EPROTO, "data.%s: %zu bytes is not an id", key, len);
	memcpy(buf, json_object_get_string(v), len + 1);
	return 0;
}

static int get_number(struct json_object *obj, const char *path, const char *key, int64_t *ret, char *err,
		      size_t err_size)
{
	struct json_object *v;
	double d;

	if (!json_object_object_get_ex(obj, key, &v) || !v)
		return 0;
	if (json_object_is_type(v, json_type_int)) {
		int64_t i = json_object_get_int64(v);
		/* json-c saturates what does not fit in int64; a uint64 above it still reads as int */
		if (i < 0 || i > NUMBER_LIMIT || json_object_get_uint64(v) > (uint64_t)NUMBER_LIMIT)
			return fail(err, err_size, -EPROTO, "%s.%s: out of range", path, key);
		*ret = i;
		return 0;
	}
	if (!json_object_is_type(v, json_type_double))
		return fail(err, err_size, -EPROTO, "%s.%s: expected a number, got %s", path, key,
			    json_type_to_name(json_object_get_type(v)));
	d = json_object_get_double(v);
	if (!isfinite(d) || d < 0 || d > (double)NUMBER_LIMIT)
		return fail(err, err_size, -EPROTO, "%s.%s: out of range", path, key);
	*ret = (int64_t)d;
	return 0;
}

static enum wsmsg_type type_from_name(const char *s)
{
	for (unsigned i = 1; i < _WSMSG_TYPE_MAX; i++)
		if (!strcmp(s, type_names[i]))
			return (enum wsmsg_type)i;
	return WSMSG_OTHER;
}

static int parse_status(struct json_object *data, struct wsmsg *m, char *err, size_t err_size)
{
	struct json_object *st, *ei;
	int r;

	r = get_id(data, "sid", m->sid, NULL, err, err_size);
	if (r < 0)
		return r;
	if (!json_object_object_get_ex(data, "status", &st) || !st)
		return 0;
	if (!json_object_is_type(st, json_type_object))
		return fail(err, err_size, -EPROTO, "data.status: expected an object");
	if (!json_object_object_get_ex(st, "exec_info", &ei) || !ei)
		return 0;
	if (!json_object_is_type(ei, json_type_object))
		return fail(err, err_size, -EPROTO, "data.status.exec_info: expected an object");
	if (!json_object_object_get_ex(ei, "queue_remaining", NULL))
		return 0;
	m->queue_remaining = -1;
	r = get_number(ei, "data.status.exec_info", "queue_remaining", &m->queue_remaining, err, err_size);
	if (r < 0)
		return r;
	m->has_queue_remaining = m->queue_remaining >= 0;
	if (!m->has_queue_remaining)
		m->queue_remaining = 0;
	return 0;
}

static int parse_data(struct json_object *data, struct wsmsg *m, char *err, size_t err_size)
{
	const char *s;
	int r;

	if (m->type == WSMSG_STATUS)
		return parse_status(data, m, err, err_size);
	r = get_id(data, "prompt_id", m->prompt_id, NULL, err, err_size);
	if (r < 0)
		return r;
	r = get_number(data, "data", "timestamp", &m->timestamp_ms, err, err_size);
	if (r < 0)
		return r;
	switch (m->type) {
	case WSMSG_EXECUTING:
		return get_id(data, "node", m->node, &m->node_null, err, err_size);
	case WSMSG_PROGRESS:
		r = get_number(data, "data", "value", &m->progress_value, err, err_size);
		if (!r)
			r = get_number(data, "data", "max", &m->progress_max, err, err_size);
		if (!r)
			r = get_id(data, "node", m->node, NULL, err, err_size);
		return r;
	case WSMSG_EXECUTED:
		return get_id(data, "node", m->node, NULL, err, err_size);
	case WSMSG_EXECUTION_ERROR:
		s = jsontext_get_string(data, "exception_type");
		if (s)
			snprintf(m->exception_type, sizeof(m->exception_type), "%s", s);
		return 0;
	default:
		return 0;
	}
}

int wsmsg_parse(const char *text, size_t len, struct wsmsg *ret, char *err, size_t err_size)
{
	struct json_object *root = NULL, *data;
	struct wsmsg m = { 0 };
	const char *type;
	int r;

	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	r = jsontext_parse_object(text, len, WSMSG_MAX_DEPTH, &root, err, err_size);
	if (r < 0)
		return r;
	type = jsontext_get_string(root, "type");
	if (!type) {
		r = fail(err, err_size, -EPROTO, "no \"type\" string");
		goto out;
	}
	snprintf(m.type_name, sizeof(m.type_name), "%s", type);
	m.type = type_from_name(type);
	if (m.type == WSMSG_OTHER)
		goto done; /* a custom node's event: its data is none of our business */
	if (!json_object_object_get_ex(root, "data", &data) || !json_object_is_type(data, json_type_object)) {
		r = fail(err, err_size, -EPROTO, "%s: \"data\" is not an object", m.type_name);
		goto out;
	}
	r = parse_data(data, &m, err, err_size);
	if (r < 0)
		goto out;
done:
	*ret = m;
	r = 0;
out:
	json_object_put(root);
	return r;
}

bool wsmsg_ends_prompt(const struct wsmsg *m)
{
	if (!m)
		return false;
	switch (m->type) {
	case WSMSG_EXECUTION_SUCCESS:
	case WSMSG_EXECUTION_ERROR:
	case WSMSG_EXECUTION_INTERRUPTED:
		return true;
	case WSMSG_EXECUTING:
		return m->node_null;
	default:
		return false;
	}
}

bool wsmsg_wakes(const struct wsmsg *m)
{
	if (!m)
		return false;
	switch (m->type) {
	case WSMSG_STATUS:
	case WSMSG_EXECUTION_START:
	case WSMSG_EXECUTION_SUCCESS:
	case WSMSG_EXECUTION_ERROR:
	case WSMSG_EXECUTION_INTERRUPTED:
		return true;
	case WSMSG_EXECUTING:
		return m->node_null; /* the prompt is done */
	default:
		return false;
	}
}

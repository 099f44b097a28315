// SPDX-License-Identifier: GPL-2.0
/* ComfyUI websocket messages; see wsmsg.h. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- progress_state without its nodes ----
 * ComfyUI sends progress_state at every node's start, step and end, to every websocket, and it carries the state
 * of every node of the prompt that has started (comfy_execution/progress.py): ~90 KiB for 500 nodes, which json-c
 * took 1.7 ms to turn into objects (52 MB/s) for a prompt_id. The members the daemon does not read (data.nodes of
 * progress_state, the data of an event it does not know) are only checked for JSON structure by the scanner below
 * and replaced by null before json-c parses the rest; anything the scanner does not follow exactly (an escape in a
 * key or in the type, a duplicate key, a malformed text) goes to json-c whole, which also words the error. */

struct span {
	size_t start, end; /* [start, end) of text; end 0: absent */
};

static void skip_ws(const char *s, size_t len, size_t *i)
{
	while (*i < len && (s[*i] == ' ' || s[*i] == '\t' || s[*i] == '\n' || s[*i] == '\r'))
		(*i)++;
}

/* a string at *i; *escaped: it held a backslash (its raw bytes are not its value) */
static bool skip_string(const char *s, size_t len, size_t *i, bool *escaped)
{
	if (*i >= len || s[*i] != '"')
		return false;
	for (size_t j = *i + 1; j < len; j++) {
		unsigned char c = (unsigned char)s[j];

		if (c == '"') {
			*i = j + 1;
			return true;
		}
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (escaped)
				*escaped = true;
			if (++j >= len)
				return false;
		}
	}
	return false;
}

static bool skip_value(const char *s, size_t len, size_t *i, int depth)
{
	size_t j;

	skip_ws(s, len, i);
	if (*i >= len)
		return false;
	if (s[*i] == '"')
		return skip_string(s, len, i, NULL);
	if (s[*i] == '{' || s[*i] == '[') {
		char close = s[*i] == '{' ? '}' : ']';
		bool obj = close == '}';

		if (depth <= 0)
			return false;
		(*i)++;
		skip_ws(s, len, i);
		if (*i < len && s[*i] == close) {
			(*i)++;
			return true;
		}
		for (;;) {
			if (obj) {
				skip_ws(s, len, i);
				if (!skip_string(s, len, i, NULL))
					return false;
				skip_ws(s, len, i);
				if (*i >= len || s[*i] != ':')
					return false;
				(*i)++;
			}
			if (!skip_value(s, len, i, depth - 1))
				return false;
			skip_ws(s, len, i);
			if (*i >= len)
				return false;
			if (s[*i] == close) {
				(*i)++;
				return true;
			}
			if (s[*i] != ',')
				return false;
			(*i)++;
		}
	}
	/* numbers, true/false/null, NaN/Infinity (Python's json writes them): a word; json-c checks what it parses */
	for (j = *i; j < len && (((s[j] | 0x20) >= 'a' && (s[j] | 0x20) <= 'z') || (s[j] >= '0' && s[j] <= '9') ||
				 s[j] == '-' || s[j] == '+' || s[j] == '.');
	     j++)
		;
	if (j == *i)
		return false;
	*i = j;
	return true;
}

/* The values of the members named keys[0..n) (no escapes) of the object at *i, which is skipped whole. false: not
 * an object, malformed, a key with an escape or a key twice (json-c's reading of those is left to json-c). */
static bool find_members(const char *s, size_t len, size_t *i, int depth, const char *const *keys, struct span *ret,
			 size_t n)
{
	for (size_t m = 0; m < n; m++)
		ret[m] = (struct span){ 0, 0 };
	skip_ws(s, len, i);
	if (*i >= len || s[*i] != '{' || depth <= 0)
		return false;
	(*i)++;
	skip_ws(s, len, i);
	if (*i < len && s[*i] == '}') {
		(*i)++;
		return true;
	}
	for (;;) {
		size_t k = *i, match = n;
		bool escaped = false;

		if (!skip_string(s, len, i, &escaped))
			return false;
		for (size_t m = 0; m < n; m++)
			if (*i - k - 2 == strlen(keys[m]) && !memcmp(s + k + 1, keys[m], *i - k - 2))
				match = m;
		if (escaped)
			return false;
		skip_ws(s, len, i);
		if (*i >= len || s[*i] != ':')
			return false;
		(*i)++;
		skip_ws(s, len, i);
		k = *i;
		if (!skip_value(s, len, i, depth - 1))
			return false;
		if (match < n) {
			if (ret[match].end)
				return false;
			ret[match] = (struct span){ k, *i };
		}
		skip_ws(s, len, i);
		if (*i >= len)
			return false;
		if (s[*i] == '}') {
			(*i)++;
			return true;
		}
		if (s[*i] != ',')
			return false;
		(*i)++;
		skip_ws(s, len, i);
	}
}

/* The span of text to read as null: data.nodes of a progress_state, the data of an event type not known. */
static bool bulk_to_skip(const char *text, size_t len, struct span *ret)
{
	static const char *const root_keys[] = { "type", "data" }, *const nodes_key[] = { "nodes" };
	struct span f[2];
	size_t i = 0, j;
	bool escaped = false;
	enum wsmsg_type t;
	char name[WSMSG_TYPE_MAX];

	if (!find_members(text, len, &i, WSMSG_MAX_DEPTH, root_keys, f, 2) || !f[0].end || !f[1].end)
		return false;
	skip_ws(text, len, &i);
	j = f[0].start;
	if (i != len || text[j] != '"' || !skip_string(text, len, &j, &escaped) || escaped ||
	    f[0].end - f[0].start - 2 >= sizeof(name))
		return false;
	memcpy(name, text + f[0].start + 1, f[0].end - f[0].start - 2);
	name[f[0].end - f[0].start - 2] = 0;
	t = type_from_name(name);
	if (t == WSMSG_OTHER) {
		*ret = f[1];
		return true;
	}
	if (t != WSMSG_PROGRESS_STATE)
		return false;
	j = f[1].start;
	return find_members(text, len, &j, WSMSG_MAX_DEPTH - 1, nodes_key, ret, 1) && ret->end;
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
	struct span skip;
	char *copy = NULL;
	const char *type;
	int r;

	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (text && len && !memchr(text, '\0', len) && bulk_to_skip(text, len, &skip)) {
		size_t n = skip.start + 4 + (len - skip.end);

		copy = malloc(n);
		if (!copy)
			return fail(err, err_size, -ENOMEM, "out of memory");
		memcpy(copy, text, skip.start);
		memcpy(copy + skip.start, "null", 4);
		memcpy(copy + skip.start + 4, text + skip.end, len - skip.end);
		text = copy;
		len = n;
	}
	r = jsontext_parse_object(text, len, WSMSG_MAX_DEPTH, &root, err, err_size);
	free(copy);
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

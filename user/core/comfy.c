// SPDX-License-Identifier: GPL-2.0
/* ComfyUI reply parsers (json-c): pure, tested and fuzzed without a server. The libcurl transport is comfy-client.c. */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>
#include <json-c/json.h>

#include "comfy.h"
#include "common.h"
#include "jsontext.h"

/* Sizes beyond 1 EiB cannot be real RAM/VRAM; they only come from clamped or hostile numbers. */
#define BYTES_LIMIT (INT64_C(1) << 60)

#define streq(a, b) (strcmp((a), (b)) == 0)

typedef struct json_object json_object;

/* ======================================================================================================= */
/* Parser helpers                                                                                           */
/* ======================================================================================================= */

struct perr {
	char *buf;
	size_t size;
};

static int _printf_(3, 4) perr_set(const struct perr *e, int r, const char *fmt, ...)
{
	va_list ap;

	if (e->buf && e->size > 0) {
		va_start(ap, fmt);
		vsnprintf(e->buf, e->size, fmt, ap);
		va_end(ap);
	}
	return r;
}

static const char *jtype(json_object *o)
{
	return json_type_to_name(json_object_get_type(o));
}

/* Replies and caller-supplied prompt/extra_data text go through the same strict entry point as the websocket
 * and queue parsers, so all untrusted JSON is refused for the same reasons with the same words. */
static int json_parse_object(const char *json, size_t len, json_object **ret, const struct perr *e)
{
	return jsontext_parse_object(json, len, COMFY_JSON_MAX_DEPTH, ret, e->buf, e->size);
}

/* Looks up key in obj. Missing or null: *ret = NULL and 0 when optional, -EPROTO when required. Present with
 * another type than `type`: -EPROTO. */
static int member(json_object *obj, const char *path, const char *key, enum json_type type, bool required,
		  json_object **ret, const struct perr *e)
{
	json_object *v = NULL;

	*ret = NULL;
	if (!json_object_object_get_ex(obj, key, &v) || !v) {
		if (required)
			return perr_set(e, -EPROTO, "%s%s%s: missing", path, *path ? "." : "", key);
		return 0;
	}
	if (!json_object_is_type(v, type))
		return perr_set(e, -EPROTO, "%s%s%s: expected %s, got %s", path, *path ? "." : "", key,
				json_type_to_name(type), jtype(v));
	*ret = v;
	return 0;
}

/* JSON number (int, or double rounded down) within [min, max]. ComfyUI stores client-chosen queue numbers
 * as Python floats, so doubles are normal here. json-c clamps integer overflow to INT64/UINT64 limits, which
 * the range check (limits well inside int64) turns into an error. */
static int number_i64(json_object *v, const char *what, int64_t min, int64_t max, int64_t *ret,
		      const struct perr *e)
{
	if (json_object_is_type(v, json_type_int)) {
		int64_t i = json_object_get_int64(v);

		if (i == INT64_MAX && json_object_get_uint64(v) > (uint64_t)INT64_MAX)
			goto range;
		if (i < min || i > max)
			goto range;
		*ret = i;
		return 0;
	}
	if (json_object_is_type(v, json_type_double)) {
		double d = json_object_get_double(v);

		if (!isfinite(d))
			goto range;
		d = floor(d);
		if (d < (double)min || d > (double)max)
			goto range;
		*ret = (int64_t)d;
		return 0;
	}
	return perr_set(e, -EPROTO, "%s: expected a number, got %s", what, jtype(v));
range:
	return perr_set(e, -EPROTO, "%s: number %.40s out of range [%" PRId64 ", %" PRId64 "]", what,
			json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN), min, max);
}

/* Optional numeric member; absent or null leaves *ret untouched. */
static int member_i64(json_object *obj, const char *path, const char *key, int64_t min, int64_t max,
		      bool required, int64_t *ret, const struct perr *e)
{
	char what[256];
	json_object *v = NULL;

	if (!json_object_object_get_ex(obj, key, &v) || !v) {
		if (required)
			return perr_set(e, -EPROTO, "%s%s%s: missing", path, *path ? "." : "", key);
		return 0;
	}
	fmt_trunc(what, sizeof(what), "%s%s%s", path, *path ? "." : "", key);
	return number_i64(v, what, min, max, ret, e);
}

static int member_bytes(json_object *obj, const char *path, const char *key, bool required, uint64_t *ret,
			const struct perr *e)
{
	int64_t v = 0;
	int r = member_i64(obj, path, key, 0, BYTES_LIMIT, required, &v, e);

	if (r < 0)
		return r;
	*ret = (uint64_t)v;
	return 0;
}

/* Optional string member copied (truncated) into buf; absent or null gives "". Embedded NULs truncate. */
static int member_str(json_object *obj, const char *path, const char *key, char *buf, size_t size,
		      const struct perr *e)
{
	json_object *v;
	int r = member(obj, path, key, json_type_string, false, &v, e);

	if (r < 0)
		return r;
	fmt_trunc(buf, size, "%s", v ? json_object_get_string(v) : "");
	return 0;
}

/* A prompt id we can put in a URL path, a log line and a fixed buffer: 1..63 bytes, no control bytes. */
bool comfy_prompt_id_ok(const char *s, size_t len)
{
	if (len == 0 || len >= COMFY_PROMPT_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static int prompt_id_copy(json_object *v, const char *what, char ret[COMFY_PROMPT_ID_MAX], const struct perr *e)
{
	const char *s;
	int len;

	if (!json_object_is_type(v, json_type_string))
		return perr_set(e, -EPROTO, "%s (prompt_id): expected string, got %s", what, jtype(v));
	s = json_object_get_string(v);
	len = json_object_get_string_len(v);
	if (len <= 0 || len >= COMFY_PROMPT_ID_MAX)
		return perr_set(e, -EPROTO, "%s (prompt_id): %d bytes, expected 1..%d", what, len,
				COMFY_PROMPT_ID_MAX - 1);
	if (strlen(s) != (size_t)len || !comfy_prompt_id_ok(s, (size_t)len))
		return perr_set(e, -EPROTO, "%s (prompt_id): contains control characters", what);
	memcpy(ret, s, (size_t)len + 1);
	return 0;
}

static int json_text_dup(json_object *v, char **ret, const struct perr *e)
{
	const char *s = json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	*ret = s ? strdup(s) : NULL;
	if (!*ret)
		return perr_set(e, -ENOMEM, "out of memory");
	return 0;
}

/* ======================================================================================================= */
/* /system_stats                                                                                            */
/* ======================================================================================================= */

static int parse_system_stats(json_object *root, struct comfy_system_stats *ret, const struct perr *e)
{
	json_object *sys, *devs, *dev;
	int r;

	r = member(root, "", "system", json_type_object, true, &sys, e);
	if (r < 0)
		return r;
	if ((r = member_bytes(sys, "system", "ram_total", true, &ret->ram_total_bytes, e)) < 0 ||
	    (r = member_bytes(sys, "system", "ram_free", true, &ret->ram_free_bytes, e)) < 0 ||
	    (r = member_str(sys, "system", "os", ret->os, sizeof(ret->os), e)) < 0 ||
	    (r = member_str(sys, "system", "comfyui_version", ret->comfyui_version, sizeof(ret->comfyui_version),
			    e)) < 0 ||
	    (r = member_str(sys, "system", "python_version", ret->python_version, sizeof(ret->python_version),
			    e)) < 0 ||
	    (r = member_str(sys, "system", "pytorch_version", ret->pytorch_version, sizeof(ret->pytorch_version),
			    e)) < 0)
		return r;

	r = member(root, "", "devices", json_type_array, false, &devs, e);
	if (r < 0 || !devs)
		return r;
	ret->n_devices = json_object_array_length(devs);
	if (ret->n_devices == 0)
		return 0;
	dev = json_object_array_get_idx(devs, 0);
	if (!json_object_is_type(dev, json_type_object))
		return perr_set(e, -EPROTO, "devices[0]: expected object, got %s", jtype(dev));
	if ((r = member_str(dev, "devices[0]", "name", ret->device_name, sizeof(ret->device_name), e)) < 0 ||
	    (r = member_str(dev, "devices[0]", "type", ret->device_type, sizeof(ret->device_type), e)) < 0 ||
	    (r = member_bytes(dev, "devices[0]", "vram_total", false, &ret->vram_total_bytes, e)) < 0 ||
	    (r = member_bytes(dev, "devices[0]", "vram_free", false, &ret->vram_free_bytes, e)) < 0 ||
	    (r = member_bytes(dev, "devices[0]", "torch_vram_total", false, &ret->torch_vram_total_bytes, e)) < 0 ||
	    (r = member_bytes(dev, "devices[0]", "torch_vram_free", false, &ret->torch_vram_free_bytes, e)) < 0)
		return r;
	return 0;
}

int comfy_parse_system_stats(const char *json, size_t len, struct comfy_system_stats *ret, char *ret_error,
			     size_t error_size)
{
	const struct perr e = { ret_error, error_size };
	_cleanup_json_ json_object *root = NULL;
	int r;

	if (!ret)
		return perr_set(&e, -EINVAL, "no result struct");
	*ret = (struct comfy_system_stats){};
	r = json_parse_object(json, len, &root, &e);
	if (r >= 0)
		r = parse_system_stats(root, ret, &e);
	if (r < 0)
		*ret = (struct comfy_system_stats){};
	return r;
}

/* ======================================================================================================= */
/* /queue                                                                                                   */
/* ======================================================================================================= */

static void queue_items_free(struct comfy_queue_item *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(items[i].prompt_json);
		free(items[i].extra_data_json);
		free(items[i].outputs_json);
	}
	free(items);
}

void comfy_queue_free(struct comfy_queue *q)
{
	if (!q)
		return;
	queue_items_free(q->running, q->n_running);
	queue_items_free(q->pending, q->n_pending);
	*q = (struct comfy_queue){};
}

static int parse_queue_item(json_object *v, const char *path, struct comfy_queue_item *it, const struct perr *e)
{
	char what[96];
	json_object *el;
	size_t n;
	int r;

	if (!json_object_is_type(v, json_type_array))
		return perr_set(e, -EPROTO, "%s: expected array, got %s", path, jtype(v));
	/* [number, prompt_id, prompt, extra_data, outputs_to_execute]; newer servers may append fields. */
	n = json_object_array_length(v);
	if (n < 5)
		return perr_set(e, -EPROTO, "%s: expected at least 5 elements, got %zu", path, n);

	fmt_trunc(what, sizeof(what), "%s[0] (number)", path);
	r = number_i64(json_object_array_get_idx(v, 0), what, -COMFY_NUMBER_LIMIT, COMFY_NUMBER_LIMIT,
		       &it->number, e);
	if (r < 0)
		return r;
	fmt_trunc(what, sizeof(what), "%s[1]", path);
	r = prompt_id_copy(json_object_array_get_idx(v, 1), what, it->prompt_id, e);
	if (r < 0)
		return r;

	el = json_object_array_get_idx(v, 2);
	if (!json_object_is_type(el, json_type_object))
		return perr_set(e, -EPROTO, "%s[2] (prompt): expected object, got %s", path, jtype(el));
	r = json_text_dup(el, &it->prompt_json, e);
	if (r < 0)
		return r;
	el = json_object_array_get_idx(v, 3);
	if (!json_object_is_type(el, json_type_object))
		return perr_set(e, -EPROTO, "%s[3] (extra_data): expected object, got %s", path, jtype(el));
	r = json_text_dup(el, &it->extra_data_json, e);
	if (r < 0)
		return r;
	el = json_object_array_get_idx(v, 4);
	if (!json_object_is_type(el, json_type_array))
		return perr_set(e, -EPROTO, "%s[4] (outputs): expected array, got %s", path, jtype(el));
	return json_text_dup(el, &it->outputs_json, e);
}

static int parse_queue_list(json_object *root, const char *key, struct comfy_queue_item **ret_items,
			    size_t *ret_n, const struct perr *e)
{
	json_object *list;
	size_t n;
	int r;

	r = member(root, "", key, json_type_array, true, &list, e);
	if (r < 0)
		return r;
	n = json_object_array_length(list);
	if (n == 0)
		return 0;
	*ret_items = calloc(n, sizeof(**ret_items));
	if (!*ret_items)
		return perr_set(e, -ENOMEM, "out of memory");
	/* Count as we go so comfy_queue_free() releases exactly what was filled on a partial failure. */
	for (size_t i = 0; i < n; i++) {
		char path[64];

		*ret_n = i + 1;
		fmt_trunc(path, sizeof(path), "%s[%zu]", key, i);
		r = parse_queue_item(json_object_array_get_idx(list, i), path, &(*ret_items)[i], e);
		if (r < 0)
			return r;
	}
	return 0;
}

int comfy_parse_queue(const char *json, size_t len, struct comfy_queue *ret, char *ret_error, size_t error_size)
{
	const struct perr e = { ret_error, error_size };
	_cleanup_json_ json_object *root = NULL;
	int r;

	if (!ret)
		return perr_set(&e, -EINVAL, "no result struct");
	*ret = (struct comfy_queue){};
	r = json_parse_object(json, len, &root, &e);
	if (r >= 0)
		r = parse_queue_list(root, "queue_running", &ret->running, &ret->n_running, &e);
	if (r >= 0)
		r = parse_queue_list(root, "queue_pending", &ret->pending, &ret->n_pending, &e);
	if (r < 0)
		comfy_queue_free(ret);
	return r;
}

/* ======================================================================================================= */
/* /history/{prompt_id}                                                                                     */
/* ======================================================================================================= */

static int parse_history_messages(json_object *msgs, struct comfy_history_item *ret, const struct perr *e)
{
	size_t n = json_object_array_length(msgs);

	for (size_t i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(msgs, i), *ev, *data;
		char path[64];
		const char *name;
		int64_t ts = 0;
		bool terminal = false;
		int r;

		fmt_trunc(path, sizeof(path), "status.messages[%zu]", i);
		/* Each message is [event, {..., "timestamp": ms}]. */
		if (!json_object_is_type(m, json_type_array))
			return perr_set(e, -EPROTO, "%s: expected array, got %s", path, jtype(m));
		if (json_object_array_length(m) < 2)
			return perr_set(e, -EPROTO, "%s: expected 2 elements, got %zu", path,
					json_object_array_length(m));
		ev = json_object_array_get_idx(m, 0);
		data = json_object_array_get_idx(m, 1);
		if (!json_object_is_type(ev, json_type_string))
			return perr_set(e, -EPROTO, "%s[0] (event): expected string, got %s", path, jtype(ev));
		if (!json_object_is_type(data, json_type_object))
			return perr_set(e, -EPROTO, "%s[1]: expected object, got %s", path, jtype(data));
		fmt_trunc(path + strlen(path), sizeof(path) - strlen(path), "[1]");
		r = member_i64(data, path, "timestamp", 0, COMFY_NUMBER_LIMIT, false, &ts, e);
		if (r < 0)
			return r;

		name = json_object_get_string(ev);
		if (streq(name, "execution_start")) {
			if (ret->start_ms == 0)
				ret->start_ms = ts;
		} else if (streq(name, "execution_success")) {
			ret->msg_success = terminal = true;
		} else if (streq(name, "execution_interrupted")) {
			ret->msg_interrupted = terminal = true;
		} else if (streq(name, "execution_error")) {
			ret->msg_error = terminal = true;
			if ((r = member_str(data, path, "exception_type", ret->exception_type,
					    sizeof(ret->exception_type), e)) < 0 ||
			    (r = member_str(data, path, "exception_message", ret->exception_message,
					    sizeof(ret->exception_message), e)) < 0)
				return r;
		}
		if (terminal && ts > 0)
			ret->end_ms = ts;
	}
	return 0;
}

static int parse_history_entry(json_object *entry, struct comfy_history_item *ret, const struct perr *e)
{
	json_object *status, *v;
	const char *s;
	int r;

	r = member(entry, "", "status", json_type_object, false, &status, e);
	if (r < 0 || !status)
		return r;
	r = member(status, "status", "status_str", json_type_string, true, &v, e);
	if (r < 0)
		return r;
	s = json_object_get_string(v);
	fmt_trunc(ret->status_str, sizeof(ret->status_str), "%s", s);
	ret->status = streq(s, "success") ? COMFY_STATUS_SUCCESS :
		      streq(s, "error")   ? COMFY_STATUS_ERROR :
					    COMFY_STATUS_OTHER;
	r = member(status, "status", "completed", json_type_boolean, true, &v, e);
	if (r < 0)
		return r;
	ret->completed = json_object_get_boolean(v);
	r = member(status, "status", "messages", json_type_array, false, &v, e);
	if (r < 0 || !v)
		return r;
	return parse_history_messages(v, ret, e);
}

int comfy_parse_history_item(const char *json, size_t len, const char *prompt_id, struct comfy_history_item *ret,
			     char *ret_error, size_t error_size)
{
	const struct perr e = { ret_error, error_size };
	_cleanup_json_ json_object *root = NULL;
	json_object *entry = NULL;
	int r;

	if (!ret || !prompt_id)
		return perr_set(&e, -EINVAL, "no prompt id or result struct");
	*ret = (struct comfy_history_item){};
	r = json_parse_object(json, len, &root, &e);
	if (r < 0)
		return r;
	/* `{}` until the prompt finished; the server keys the reply by the id we asked for. */
	if (!json_object_object_get_ex(root, prompt_id, &entry))
		return 0;
	if (!json_object_is_type(entry, json_type_object)) {
		r = perr_set(&e, -EPROTO, "history entry: expected object, got %s", jtype(entry));
		goto fail;
	}
	ret->found = true;
	r = parse_history_entry(entry, ret, &e);
	if (r >= 0)
		return 0;
fail:
	*ret = (struct comfy_history_item){};
	return r;
}

/* ======================================================================================================= */
/* POST /prompt reply                                                                                       */
/* ======================================================================================================= */

static int parse_prompt_error(json_object *err, struct comfy_prompt_reply *ret, const struct perr *e)
{
	char message[sizeof(ret->error_message)] = "", details[sizeof(ret->error_message)] = "";
	int r;

	if (json_object_is_type(err, json_type_string)) {
		/* Older servers: {"error": "no prompt", "node_errors": []}. */
		fmt_trunc(ret->error_message, sizeof(ret->error_message), "%s", json_object_get_string(err));
		return 0;
	}
	if (!json_object_is_type(err, json_type_object))
		return perr_set(e, -EPROTO, "error: expected object or string, got %s", jtype(err));
	if ((r = member_str(err, "error", "type", ret->error_type, sizeof(ret->error_type), e)) < 0 ||
	    (r = member_str(err, "error", "message", message, sizeof(message), e)) < 0 ||
	    (r = member_str(err, "error", "details", details, sizeof(details), e)) < 0)
		return r;
	if (*details && !streq(details, message))
		fmt_trunc(ret->error_message, sizeof(ret->error_message), "%s%s%s", message, *message ? ": " : "",
			 details);
	else
		fmt_trunc(ret->error_message, sizeof(ret->error_message), "%s", message);
	return 0;
}

static int parse_prompt_reply(json_object *root, struct comfy_prompt_reply *ret, const struct perr *e)
{
	json_object *v = NULL;
	int r;

	if (json_object_object_get_ex(root, "node_errors", &v) && v) {
		if (json_object_is_type(v, json_type_object))
			ret->n_node_errors = (size_t)json_object_object_length(v);
		else if (json_object_is_type(v, json_type_array))
			ret->n_node_errors = json_object_array_length(v);
		else
			return perr_set(e, -EPROTO, "node_errors: expected object, got %s", jtype(v));
	}

	if (json_object_object_get_ex(root, "error", &v) && v) {
		r = parse_prompt_error(v, ret, e);
		if (r < 0)
			return r;
		if (ret->n_node_errors > 0)
			return perr_set(e, -EBADMSG, "ComfyUI rejected the prompt: %s (%zu node errors)",
					*ret->error_message ? ret->error_message : "no message", ret->n_node_errors);
		return perr_set(e, -EBADMSG, "ComfyUI rejected the prompt: %s",
				*ret->error_message ? ret->error_message : "no message");
	}

	r = member(root, "", "prompt_id", json_type_string, true, &v, e);
	if (r < 0)
		return r;
	r = prompt_id_copy(v, "prompt_id", ret->prompt_id, e);
	if (r < 0)
		return r;
	return member_i64(root, "", "number", -COMFY_NUMBER_LIMIT, COMFY_NUMBER_LIMIT, true, &ret->number, e);
}

int comfy_parse_prompt_reply(const char *json, size_t len, struct comfy_prompt_reply *ret, char *ret_error,
			     size_t error_size)
{
	const struct perr e = { ret_error, error_size };
	_cleanup_json_ json_object *root = NULL;
	int r;

	if (!ret)
		return perr_set(&e, -EINVAL, "no result struct");
	*ret = (struct comfy_prompt_reply){ .number = COMFY_NUMBER_NONE };
	r = json_parse_object(json, len, &root, &e);
	if (r >= 0)
		r = parse_prompt_reply(root, ret, &e);
	if (r == -EBADMSG) { /* a well-formed rejection: keep what it said */
		ret->prompt_id[0] = '\0';
		ret->number = COMFY_NUMBER_NONE;
	} else if (r < 0) {
		*ret = (struct comfy_prompt_reply){ .number = COMFY_NUMBER_NONE };
	}
	return r;
}

int comfy_parse_object(const char *json, size_t len, struct json_object **ret, char *ret_error, size_t error_size)
{
	const struct perr e = { ret_error, error_size };

	if (!ret)
		return -EINVAL;
	return json_parse_object(json, len, ret, &e);
}

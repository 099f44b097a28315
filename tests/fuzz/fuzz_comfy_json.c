// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: every ComfyUI reply parser on the same bytes, plus invariants on what they return
 * (NUL-terminated ids, re-serialised JSON that parses again, zeroed results on error). */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>

#include "comfy.h"

/* The id the history seeds are keyed by; a second, short one reaches the "not found" and odd-key paths. */
#define FUZZ_ID "3f0c6a1e-9d4b-4c56-8a0e-2b7f5e1d9c01"

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

static void check_error(int r, const char *err)
{
	check(r < 0 ? memchr(err, '\0', COMFY_ERROR_MAX) != NULL && err[0] != '\0' : true);
}

/* Text the queue parser hands out is resubmitted verbatim: it must be one JSON value of the right type. */
static void check_json_text(const char *text, enum json_type type)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t len;

	check(text != NULL);
	len = strlen(text);
	tok = json_tokener_new_ex(COMFY_JSON_MAX_DEPTH + 1);
	check(tok != NULL);
	o = json_tokener_parse_ex(tok, text, (int)len);
	check(o != NULL && json_tokener_get_parse_end(tok) == len && json_object_is_type(o, type));
	json_object_put(o);
	json_tokener_free(tok);
}

static void check_items(const struct comfy_queue_item *it, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		size_t idlen = strnlen(it[i].prompt_id, COMFY_PROMPT_ID_MAX);

		check(idlen > 0 && idlen < COMFY_PROMPT_ID_MAX);
		check(it[i].number >= -COMFY_NUMBER_LIMIT && it[i].number <= COMFY_NUMBER_LIMIT);
		check_json_text(it[i].prompt_json, json_type_object);
		check_json_text(it[i].extra_data_json, json_type_object);
		check_json_text(it[i].outputs_json, json_type_array);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *json = (const char *)data;
	char err[COMFY_ERROR_MAX];
	int r;

	{
		struct comfy_system_stats s;

		r = comfy_parse_system_stats(json, size, &s, err, sizeof(err));
		check_error(r, err);
		check(r == 0 || r == -EPROTO || r == -ENOMEM);
		check(memchr(s.comfyui_version, '\0', sizeof(s.comfyui_version)) != NULL);
		check(memchr(s.device_name, '\0', sizeof(s.device_name)) != NULL);
		check(r == 0 || (s.ram_total_bytes == 0 && s.n_devices == 0));
	}
	{
		struct comfy_queue q;

		r = comfy_parse_queue(json, size, &q, err, sizeof(err));
		check_error(r, err);
		check(r == 0 || r == -EPROTO || r == -ENOMEM);
		if (r == 0) {
			check_items(q.running, q.n_running);
			check_items(q.pending, q.n_pending);
		} else {
			check(!q.running && !q.pending && q.n_running == 0 && q.n_pending == 0);
		}
		comfy_queue_free(&q);
	}
	static const char *const ids[] = { FUZZ_ID, "p" };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		struct comfy_history_item h;

		r = comfy_parse_history_item(json, size, ids[i], &h, err, sizeof(err));
		check_error(r, err);
		check(r == 0 || r == -EPROTO || r == -ENOMEM);
		check(r == 0 || !h.found);
		check(memchr(h.exception_message, '\0', sizeof(h.exception_message)) != NULL);
		check(h.start_ms >= 0 && h.end_ms >= 0);
	}
	{
		struct comfy_prompt_reply p;

		r = comfy_parse_prompt_reply(json, size, &p, err, sizeof(err));
		check_error(r, err);
		check(r == 0 || r == -EBADMSG || r == -EPROTO || r == -ENOMEM);
		check(r == 0 ? p.prompt_id[0] != '\0' : p.prompt_id[0] == '\0');
		check(memchr(p.error_message, '\0', sizeof(p.error_message)) != NULL);
	}
	/* Bytes as a caller-supplied, NUL-terminated string too (strlen stops at an embedded NUL). */
	if (size < 4096) {
		char *s = malloc(size + 1);
		struct comfy_queue q;

		if (s) {
			memcpy(s, data, size);
			s[size] = '\0';
			r = comfy_parse_queue(s, strlen(s), &q, NULL, 0);
			check(r == 0 || r == -EPROTO || r == -ENOMEM);
			comfy_queue_free(&q);
			free(s);
		}
	}
	return 0;
}

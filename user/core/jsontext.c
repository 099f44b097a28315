// SPDX-License-Identifier: GPL-2.0
/* Strict JSON text to json-c object; see jsontext.h. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "jsontext.h"

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

int jsontext_parse_object(const char *text, size_t len, int max_depth, struct json_object **ret, char *err,
			  size_t err_size)
{
	struct json_tokener *tok;
	enum json_tokener_error jerr;
	struct json_object *obj;
	size_t end;

	if (!ret)
		return -EINVAL;
	*ret = NULL;
	if (err && err_size)
		err[0] = 0;
	if ((!text && len) || max_depth < 1)
		return fail(err, err_size, -EINVAL, "no input");
	if (!len)
		return fail(err, err_size, -EPROTO, "not JSON: empty");
	if (len >= INT_MAX) /* json-c takes an int length */
		return fail(err, err_size, -EPROTO, "not JSON: %zu bytes is too large to parse", len);
	if (memchr(text, '\0', len))
		return fail(err, err_size, -EPROTO, "not JSON: NUL byte at byte %zu",
			    (size_t)((const char *)memchr(text, '\0', len) - text));
	tok = json_tokener_new_ex(max_depth);
	if (!tok)
		return fail(err, err_size, -ENOMEM, "out of memory");
	/* Not JSON_TOKENER_STRICT: Python's json module writes NaN/Infinity, which strict mode refuses. */
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* an object cannot be left open legitimately; one NUL tells the tokener the input ended */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
		if (jerr == json_tokener_continue)
			jerr = json_tokener_error_parse_eof;
	}
	json_tokener_free(tok);
	if (jerr != json_tokener_success) {
		json_object_put(obj);
		if (jerr == json_tokener_error_depth)
			return fail(err, err_size, -EPROTO, "not JSON: nesting deeper than %d levels at byte %zu",
				    max_depth, end);
		return fail(err, err_size, -EPROTO, "not JSON: %s at byte %zu", json_tokener_error_desc(jerr), end);
	}
	while (end < len && (text[end] == ' ' || text[end] == '\t' || text[end] == '\n' || text[end] == '\r'))
		end++;
	if (end < len) {
		json_object_put(obj);
		return fail(err, err_size, -EPROTO, "not JSON: trailing garbage at byte %zu", end);
	}
	if (!json_object_is_type(obj, json_type_object)) {
		int r = fail(err, err_size, -EPROTO, "expected a JSON object, got %s",
			     json_type_to_name(json_object_get_type(obj)));
		json_object_put(obj);
		return r;
	}
	*ret = obj;
	return 0;
}

const char *jsontext_get_string(struct json_object *obj, const char *key)
{
	struct json_object *v;

	if (!obj || !json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

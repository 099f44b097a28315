/* SPDX-License-Identifier: GPL-2.0 */
/* One strict entry point from untrusted JSON text to a json-c object, shared by the parsers of what ComfyUI
 * sends on its websocket, of its HTTP replies and of the prompts in its queue. Pure: no I/O, no logging. */
#ifndef OOMSENTRY_JSONTEXT_H
#define OOMSENTRY_JSONTEXT_H

#include <stddef.h>
#include <json-c/json.h>
#include "common.h"

/* Parses exactly one JSON object filling [text, text+len) (surrounding whitespace allowed) into *ret, nesting at
 * most max_depth levels. Returns 0, -EPROTO (not JSON, a NUL byte, invalid UTF-8, trailing garbage, too deep, not
 * an object), -EINVAL (text NULL with len > 0, max_depth < 1) or -ENOMEM, with a one-line reason in err (may be
 * NULL; err_size bytes, NUL-terminated). The caller owns *ret (json_object_put); NULL on error. */
int jsontext_parse_object(const char *text, size_t len, int max_depth, struct json_object **ret, char *err,
			  size_t err_size);

static inline void json_putp(struct json_object **o)
{
	if (*o)
		json_object_put(*o);
}
#define _cleanup_json_ _cleanup_(json_putp)

/* obj[key] when it is a string, else NULL (borrowed from obj). */
const char *jsontext_get_string(struct json_object *obj, const char *key);

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* ComfyUI reply fixtures (tests/fixtures/comfy) and a semantic JSON comparison, shared by the parser tests
 * (test_comfy.c) and the client tests (test_comfy_client.c); include after <cmocka.h>. */
#ifndef OOMSENTRY_TEST_COMFY_FIXTURES_H
#define OOMSENTRY_TEST_COMFY_FIXTURES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "comfy.h"

#ifndef FIXTURES
#define FIXTURES "tests/fixtures"
#endif

#define ID_RUNNING "3f0c6a1e-9d4b-4c56-8a0e-2b7f5e1d9c01"
#define ID_FRONT "b2c4e6a8-1111-4222-8333-944455556666"
#define ID_FLOAT "c0ffee00-0000-4000-8000-000000000014"
#define ID_OOM "5d6e7f80-aaaa-4bbb-8ccc-dddddddddddd"

static inline char *read_fixture(const char *name, size_t *ret_len)
{
	char path[512];
	FILE *f;
	char *buf;
	long n;

	snprintf(path, sizeof(path), "%s/comfy/%s", FIXTURES, name);
	f = fopen(path, "re");
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	if (ret_len)
		*ret_len = (size_t)n;
	return buf;
}

/* Compares JSON text semantically (json-c re-serialises, key order and spacing may differ). */
static inline void assert_json_equal(const char *a, const char *b)
{
	struct json_tokener *tok = json_tokener_new_ex(COMFY_JSON_MAX_DEPTH);
	json_object *ja, *jb;

	ja = json_tokener_parse_ex(tok, a, (int)strlen(a));
	json_tokener_reset(tok);
	jb = json_tokener_parse_ex(tok, b, (int)strlen(b));
	json_tokener_free(tok);
	assert_non_null(ja);
	assert_non_null(jb);
	if (!json_object_equal(ja, jb))
		fail_msg("JSON differs:\n%s\n%s", a, b);
	json_object_put(ja);
	json_object_put(jb);
}

#endif

// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "brakemark.h"
#include "jsontext.h"

/* the largest page the kernel rounds memory.high down to (64 KiB pages on some arm64 and ppc64 kernels) */
#define PAGE_MAX_BYTES (64u << 10)

int brake_mark_to_json(const struct brake_mark *m, char **ret)
{
	_cleanup_json_ json_object *root = NULL;
	const char *txt;
	size_t n;

	if (!m || !ret)
		return -EINVAL;
	*ret = NULL;
	n = strnlen(m->cgroup, sizeof(m->cgroup));
	if (!n || n == sizeof(m->cgroup) || !m->held || m->held == CG_UNLIMITED)
		return -EINVAL;
	root = json_object_new_object();
	if (!root)
		return -ENOMEM;
	if (json_object_object_add(root, "version", json_object_new_int(BRAKE_MARK_VERSION)) < 0 ||
	    json_object_object_add(root, "cgroup", json_object_new_string(m->cgroup)) < 0 ||
	    json_object_object_add(root, "held", json_object_new_uint64(m->held)) < 0 ||
	    json_object_object_add(root, "saved", m->saved == CG_UNLIMITED ? json_object_new_string("max") :
									   json_object_new_uint64(m->saved)) < 0 ||
	    json_object_object_add(root, "pid", json_object_new_int(m->pid)) < 0)
		return -ENOMEM;
	txt = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	if (!txt)
		return -ENOMEM;
	*ret = strdup(txt);
	return *ret ? 0 : -ENOMEM;
}

/* a non-negative JSON integer */
static int get_u64(json_object *root, const char *key, uint64_t *ret)
{
	json_object *v;

	if (!json_object_object_get_ex(root, key, &v) || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)
		return -EBADMSG;
	*ret = json_object_get_uint64(v);
	return 0;
}

int brake_mark_parse(const char *text, size_t len, struct brake_mark *ret)
{
	_cleanup_json_ json_object *root = NULL;
	struct brake_mark m = { 0 };
	json_object *v;
	const char *s;
	uint64_t u;
	int r;

	if (!ret)
		return -EINVAL;
	memset(ret, 0, sizeof(*ret));
	if (!text || len > BRAKE_MARK_TEXT_MAX)
		return -EBADMSG;
	r = jsontext_parse_object(text, len, 4, &root, NULL, 0);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return -EBADMSG;
	if (get_u64(root, "version", &u) < 0 || u != BRAKE_MARK_VERSION)
		return -EBADMSG;
	s = jsontext_get_string(root, "cgroup");
	/* an absolute directory: the mark says where to write, and a relative one would be relative to anything */
	if (!s || s[0] != '/' || strlen(s) >= sizeof(m.cgroup))
		return -EBADMSG;
	memcpy(m.cgroup, s, strlen(s) + 1);
	if (get_u64(root, "held", &m.held) < 0 || !m.held)
		return -EBADMSG;
	if (!json_object_object_get_ex(root, "saved", &v))
		return -EBADMSG;
	if (json_object_is_type(v, json_type_string)) {
		if (strcmp(json_object_get_string(v), "max"))
			return -EBADMSG;
		m.saved = CG_UNLIMITED;
	} else if (get_u64(root, "saved", &m.saved) < 0)
		return -EBADMSG;
	if (get_u64(root, "pid", &u) < 0 || u > INT32_MAX)
		return -EBADMSG;
	m.pid = (int32_t)u;
	*ret = m;
	return 0;
}

bool brake_high_held(uint64_t current_high, uint64_t held)
{
	return held && held != CG_UNLIMITED && current_high <= held && held - current_high < PAGE_MAX_BYTES;
}

enum brake_leftover brake_mark_leftover(const struct brake_mark *m, const char *dir, uint64_t current_high)
{
	if (!m || !dir || strcmp(m->cgroup, dir))
		return BRAKE_LEFT_ELSEWHERE;
	return brake_high_held(current_high, m->held) ? BRAKE_LEFT_RESTORE : BRAKE_LEFT_CHANGED;
}

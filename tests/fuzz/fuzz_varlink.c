// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: a Varlink message on the systemd-oomd pre-kill hook socket. Whatever comes in, the answer is one
 * JSON object (or none), and a Notify names an absolute cgroup path without "." or ".." components. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include "varlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char cgroup[VARLINK_CGROUP_MAX], *reply = NULL;
	int v = varlink_handle((const char *)data, size, "fuzz", &reply, cgroup, sizeof(cgroup));

	if (v < 0)
		return 0;
	if (reply) {
		json_object *o = json_tokener_parse(reply);

		if (!o || !json_object_is_type(o, json_type_object))
			abort();
		json_object_put(o);
		free(reply);
	}
	if (v == VARLINK_NOTIFY && (cgroup[0] != '/' || strstr(cgroup, "/../") || strstr(cgroup, "/./")))
		abort();
	if (v != VARLINK_NOTIFY && cgroup[0])
		abort();
	return 0;
}

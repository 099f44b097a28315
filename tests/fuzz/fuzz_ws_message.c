// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: what arrives on ComfyUI's websocket (wsmsg_parse) and what sits in its queue's workflows
 * (la_parse_prompt) on the same bytes, with invariants on what they return: NUL-terminated strings, ranges,
 * zeroed results on error. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lookahead.h"
#include "wsmsg.h"

static void check(bool ok)
{
	if (!ok)
		__builtin_trap();
}

static bool terminated(const char *s, size_t size)
{
	return memchr(s, '\0', size) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct wsmsg zero_msg;
	static const struct la_prompt zero_prompt;
	char err[WSMSG_ERROR_MAX];
	struct la_prompt p;
	struct wsmsg m;
	int r;

	r = wsmsg_parse((const char *)data, size, &m, err, sizeof(err));
	check(r == 0 || r == -EPROTO || r == -ENOMEM);
	if (r == 0) {
		check((unsigned)m.type < _WSMSG_TYPE_MAX);
		check(terminated(m.type_name, sizeof(m.type_name)) && terminated(m.sid, sizeof(m.sid)));
		check(terminated(m.prompt_id, sizeof(m.prompt_id)) && terminated(m.node, sizeof(m.node)));
		check(terminated(m.exception_type, sizeof(m.exception_type)));
		check(m.queue_remaining >= 0 && m.timestamp_ms >= 0 && m.progress_value >= 0 && m.progress_max >= 0);
		check(!m.node_null || !m.node[0]);
		(void)wsmsg_wakes(&m);
	} else {
		check(!memcmp(&m, &zero_msg, sizeof(m)));
		check(terminated(err, sizeof(err)) && err[0]);
	}

	r = la_parse_prompt((const char *)data, size, &p);
	check(r == 0 || r == -EPROTO || r == -ENOMEM);
	if (r == 0) {
		check(p.n_models <= LA_MAX_MODELS);
		for (size_t i = 0; i < p.n_models; i++) {
			check(terminated(p.models[i].name, sizeof(p.models[i].name)) && p.models[i].name[0]);
			check((unsigned)p.models[i].kind < _LA_KIND_MAX);
		}
		check(!p.latent_known || (p.width && p.height && p.batch && p.frames));
		(void)la_prompt_pixels(&p);
	} else {
		check(!memcmp(&p, &zero_prompt, sizeof(p)));
	}
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: incident.json as `oomsentry report` reads it (an incident directory may be copied around,
 * edited or planted), then everything the report prints from it: the timeline, the SVG and the JSON again. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "incident.h"
#include "incident-render.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct incident *inc = NULL;
	char *text = malloc(size + 1), *out = NULL;

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (incident_from_json(text, &inc) == 0) {
		if (incident_render_timeline(inc, &out) == 0)
			free(out);
		out = NULL;
		if (incident_render_svg(inc, &out) == 0)
			free(out);
		out = NULL;
		if (incident_to_json(inc, &out) == 0)
			free(out);
		incident_free(inc);
	}
	free(text);
	return 0;
}

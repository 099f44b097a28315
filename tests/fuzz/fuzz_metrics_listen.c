// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: the metrics listen address (metrics_listen, OOMSENTRY_METRICS_LISTEN, a flag). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include "metrics-http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage addr;
	socklen_t len = 0;
	bool enabled = false;
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = 0;
	if (metrics_parse_listen(text, &addr, &len, &enabled) == 0 && enabled && (len == 0 || len > sizeof(addr)))
		abort();
	free(text);
	return 0;
}

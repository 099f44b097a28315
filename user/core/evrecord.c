// SPDX-License-Identifier: GPL-2.0
#include <string.h>
#include "evrecord.h"

bool evrecord_decode(const void *data, size_t size, struct os_event *out)
{
	__u32 type;

	if (!data || size < OS_EVENT_HEADER_SIZE)
		return false;
	memcpy(&type, data, sizeof(type));
	if (size < os_event_size(type))
		return false;
	memset(out, 0, sizeof(*out));
	memcpy(out, data, size < sizeof(*out) ? size : sizeof(*out));
	return true;
}

// SPDX-License-Identifier: GPL-2.0
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include "common.h"
#include "units.h"

int format_bytes(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	unsigned u = 0;
	double v = (double)bytes;
	int n;

	if (!buf || size == 0)
		return -EINVAL;
	while (u + 1 < ARRAY_SIZE(units) && v >= 1024.0) {
		v /= 1024.0;
		u++;
	}
	/* Round as printed; "1024 MiB" must read "1.00 GiB". */
	if (u < 3 && u + 1 < ARRAY_SIZE(units) && floor(v + 0.5) >= 1024.0) {
		v /= 1024.0;
		u++;
	}
	if (u >= 3 && u + 1 < ARRAY_SIZE(units) && v >= 1023.995) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		n = snprintf(buf, size, "%llu B", (unsigned long long)bytes);
	else if (u < 3)
		n = snprintf(buf, size, "%.0f %s", v, units[u]);
	else
		n = snprintf(buf, size, "%.2f %s", v, units[u]);
	if (n < 0) {
		buf[0] = '\0';
		return -EINVAL;
	}
	return (size_t)n >= size ? -ENOBUFS : n;
}

/* SPDX-License-Identifier: GPL-2.0 */
/* The one way oomsentry writes a size for people: journal messages, the status table, forecasts and policy
 * reasons, incident timelines and plots. Fields for machines carry plain bytes (rec_add_bytes, metrics). */
#ifndef OOMSENTRY_UNITS_H
#define OOMSENTRY_UNITS_H

#include <stddef.h>
#include <stdint.h>

#define BYTES_STR_MAX 32 /* any uint64_t fits: "16.00 EiB", "1023 MiB" */

/* Human size: "300 MiB", "1.50 GiB", "512 KiB", "17 B"; binary units, rounded as printed ("1024 MiB" reads
 * "1.00 GiB"), two decimals from GiB up. Always NUL-terminates when size > 0. Returns the length written,
 * -EINVAL (NULL buf or size 0) or -ENOBUFS (truncated). */
int format_bytes(uint64_t bytes, char *buf, size_t size);

/* format_bytes() into buf, which it returns: for printf arguments. */
static inline const char *bytes_str(uint64_t bytes, char *buf, size_t size)
{
	format_bytes(bytes, buf, size);
	return buf;
}

/* The same into the caller's array buf. */
#define FMT_BYTES(buf, v) bytes_str((v), (buf), sizeof(buf))

#endif

/* SPDX-License-Identifier: GPL-2.0 */
/* UTF-8 validation: process names and command lines are arbitrary bytes, but JSON, XML (SVG) and the
 * Prometheus text format must be valid UTF-8. */
#ifndef OOMSENTRY_UTF8_H
#define OOMSENTRY_UTF8_H

#include <stddef.h>

/* Length (1-4) of the valid UTF-8 sequence at s, or 0 when the bytes there are not valid UTF-8 (overlong forms,
 * surrogates and code points above U+10FFFF included). s must be NUL-terminated. */
size_t utf8_seq_len(const unsigned char *s);

/* Copies src (NULL: "") into dst for a terminal, always NUL-terminated and cut at a whole escape when cap is
 * short: valid printable UTF-8 stays, a backslash becomes "\\", every other byte (C0 controls, DEL, C1 controls,
 * bytes of invalid sequences) becomes "\xNN". Process names and cgroup paths are chosen by whoever runs the
 * process; they must not move the cursor, retitle the window or forge a line. Returns dst. */
char *utf8_escape_terminal(const char *src, char *dst, size_t cap);

#endif

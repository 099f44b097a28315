// SPDX-License-Identifier: GPL-2.0
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include "utf8.h"

size_t utf8_seq_len(const unsigned char *s)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

char *utf8_escape_terminal(const char *src, char *dst, size_t cap)
{
	const unsigned char *s = (const unsigned char *)(src ? src : "");
	size_t o = 0;

	if (!dst || !cap)
		return dst;
	while (*s) {
		size_t n = utf8_seq_len(s);
		/* C0, DEL and the C1 controls (U+0080..U+009F, which some terminals obey as CSI/OSC) */
		bool control = n == 1 ? (*s < 0x20 || *s == 0x7f) : n == 2 && s[0] == 0xc2 && s[1] < 0xa0;

		if (n && !control && *s != '\\') {
			if (o + n >= cap)
				break;
			memcpy(dst + o, s, n);
			o += n;
			s += n;
			continue;
		}
		if (*s == '\\') {
			if (o + 2 >= cap)
				break;
			dst[o++] = '\\';
			dst[o++] = '\\';
			s++;
			continue;
		}
		/* one escape per byte: an invalid sequence is shown byte by byte, a C1 control as its two bytes */
		for (size_t i = 0; i < (n ? n : 1); i++) {
			if (o + 4 >= cap)
				goto out;
			snprintf(dst + o, cap - o, "\\x%02x", s[i]);
			o += 4;
		}
		s += n ? n : 1;
	}
out:
	dst[o] = 0;
	return dst;
}
